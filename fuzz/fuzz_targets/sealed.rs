//! Sealed blobs. Mode 0: arbitrary bytes unsealed with a fixed key (a blob
//! that opens must re-seal to the same bytes). Mode 1: a blob the harness
//! seals (fuzzer plaintext, chunk size, salt), then edits (flip, cut, swap,
//! drop, duplicate chunks): it opens to the plaintext iff it is unedited.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rewire_core::crypto::Secret;
use rewire_core::error::Category;
use rewire_core::seal::{chunk_layout, seal, unseal, Sealer, Unsealer, HEADER_LEN};
use rewire_fuzz::{typed_in, Reader};

const TAG: usize = 16;

fn key() -> Secret {
    Secret::from_bytes([0x5e; 32])
}

fn opens(blob: &[u8]) -> Option<Vec<u8>> {
    if let Err(e) = chunk_layout(blob, blob.len() as u64) {
        typed_in(e, &[Category::Decode, Category::Integrity]);
    }
    match unseal(&key(), blob) {
        Ok(p) => Some(p.to_vec()),
        Err(e) => {
            typed_in(
                e,
                &[
                    Category::Decode,
                    Category::Integrity,
                    Category::State,
                    Category::Platform,
                ],
            );
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    if r.u8() & 1 == 0 {
        let blob = r.rest();
        if let Some(p) = opens(blob) {
            if blob[5] == rewire_core::seal::DEFAULT_CHUNK_LOG2 {
                let salt: [u8; 32] = blob[8..40].try_into().expect("header"); // safe: it opened
                assert_eq!(seal(&key(), salt, &p).expect("seals"), blob); // safe: fuzz assertion
            }
        }
        // The streaming API on the same bytes, chunk by chunk.
        if let Ok(mut u) = Unsealer::new(&key(), blob) {
            let n = u.sealed_chunk_len();
            let mut rest = &blob[blob.len().min(HEADER_LEN)..];
            while !rest.is_empty() {
                let take = rest.len().min(n);
                let mut buf = rest[..take].to_vec();
                rest = &rest[take..];
                if u.open_chunk(&mut buf, rest.is_empty()).is_err() {
                    break;
                }
            }
        }
        return;
    }
    let log2 = 10 + r.u8() % 11;
    let salt = r.array::<32>();
    let len = r.u16() as usize % (1 << 13);
    let fill = r.u8();
    let plain: Vec<u8> = (0..len).map(|i| fill ^ (i as u8)).collect();
    let mut s = match Sealer::new(&key(), salt, log2) {
        Ok(s) => s,
        Err(e) => return typed_in(e, &[Category::Platform]),
    };
    let chunk = s.chunk_size();
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    if plain.is_empty() {
        chunks.push(s.seal_chunk(&[], true).expect("seals")); // safe: valid use
    } else {
        let n = plain.len().div_ceil(chunk);
        for (i, c) in plain.chunks(chunk).enumerate() {
            chunks.push(s.seal_chunk(c, i + 1 == n).expect("seals")); // safe: valid use
        }
    }
    let header = s.header().to_vec();
    let assemble = |chunks: &[Vec<u8>]| {
        let mut b = header.clone();
        for c in chunks {
            b.extend_from_slice(c);
        }
        b
    };
    let original = assemble(&chunks);
    assert_eq!(
        opens(&original).as_deref(),
        Some(&plain[..]),
        "seal → unseal"
    );
    let mut edited = chunks.clone();
    let mut head = header.clone();
    for _ in 0..(r.u8() % 4) {
        let n = edited.len();
        match r.u8() % 6 {
            0 if n > 0 => {
                let i = r.below(n);
                let j = r.u16() as usize % edited[i].len().max(1);
                if let Some(b) = edited[i].get_mut(j) {
                    *b ^= r.u8().max(1);
                }
            }
            1 if n > 1 => {
                let (i, j) = (r.below(n), r.below(n));
                edited.swap(i, j);
            }
            2 if n > 0 => {
                let i = r.below(n);
                edited.remove(i);
            }
            3 if n > 0 => {
                let i = r.below(n);
                let c = edited[i].clone();
                edited.insert(r.below(n + 1), c);
            }
            4 if n > 0 => {
                let i = r.below(n);
                let cut = r.u16() as usize % (edited[i].len() + 1);
                let keep = cut.max(TAG.min(edited[i].len()));
                edited[i].truncate(keep);
            }
            _ => {
                let i = r.below(HEADER_LEN);
                head[i] ^= r.u8().max(1);
            }
        }
    }
    let mut blob = head;
    for c in &edited {
        blob.extend_from_slice(c);
    }
    let got = opens(&blob);
    if blob == original {
        assert_eq!(got.as_deref(), Some(&plain[..]));
    } else {
        assert_eq!(got, None, "an edited blob opened");
    }
});
