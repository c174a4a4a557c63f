//! Sealing: chunked AEAD so that state of any size seals and unseals in
//! bounded memory.
//!
//! Key: [`sealing_key`] (`crate::boot`: from the SM secret, the enclave's
//! measurement, its id and a key id), so nothing sealed on one device, by
//! one SM build or for one enclave opens under another. Each blob draws a fresh 32-byte salt from the
//! platform and uses `blob_key = HKDF(seal_key, salt, "rewire/seal/blob")`, so
//! nonces never repeat across blobs.
//!
//! Blob layout (version 1):
//! ```text
//! header: "RWSL" | version=1 | log2(chunk size) | 0 | 0 | salt[32]     (40 bytes)
//! chunk i: ChaCha20-Poly1305(blob_key, nonce = be64(i) ‖ 0,0,0,last, aad = header)
//! ```
//! Every chunk but the last holds exactly `chunk size` plaintext bytes; the
//! last holds 0..=chunk size and has the `last` flag in its nonce (the STREAM
//! construction of Hoang et al.), so truncation, reordering, splicing and
//! extension are all detected.

use alloc::vec::Vec;

use crate::crypto::{hkdf, Aead, Secret, SecretBytes, TAG_LEN};
use crate::error::{Error, Result};

pub const HEADER_LEN: usize = 40;
const MAGIC: &[u8; 4] = b"RWSL";
const FORMAT: u8 = 1;
/// Default plaintext chunk size: 16 KiB, one CHUNK message's worth of data.
pub const DEFAULT_CHUNK_LOG2: u8 = 14;
const MIN_CHUNK_LOG2: u8 = 10;
const MAX_CHUNK_LOG2: u8 = 20;

pub use crate::boot::sealing_key;

fn nonce(counter: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&counter.to_be_bytes());
    n[11] = last as u8;
    n
}

fn blob_aead(key: &Secret, salt: &[u8]) -> Result<Aead> {
    Aead::new(&hkdf(key.expose(), salt, &[b"rewire/seal/blob"])?)
}

impl core::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sealer")
            .field("chunk", &self.chunk)
            .finish_non_exhaustive()
    }
}

impl core::fmt::Debug for Unsealer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Unsealer")
            .field("chunk", &self.chunk)
            .finish_non_exhaustive()
    }
}

/// Streaming sealer.
pub struct Sealer {
    aead: Aead,
    header: [u8; HEADER_LEN],
    counter: u64,
    chunk: usize,
    done: bool,
}

impl Sealer {
    pub fn new(key: &Secret, salt: [u8; 32], chunk_log2: u8) -> Result<Self> {
        if !(MIN_CHUNK_LOG2..=MAX_CHUNK_LOG2).contains(&chunk_log2) {
            return Err(Error::Capacity);
        }
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(MAGIC);
        header[4] = FORMAT;
        header[5] = chunk_log2;
        header[8..].copy_from_slice(&salt);
        Ok(Sealer {
            aead: blob_aead(key, &salt)?,
            header,
            counter: 0,
            chunk: 1 << chunk_log2,
            done: false,
        })
    }

    pub fn header(&self) -> &[u8; HEADER_LEN] {
        &self.header
    }

    pub fn chunk_size(&self) -> usize {
        self.chunk
    }

    /// Seal one chunk: exactly `chunk_size` bytes, or up to that for the last.
    pub fn seal_chunk(&mut self, plain: &[u8], last: bool) -> Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(plain.len() + TAG_LEN);
        buf.extend_from_slice(plain);
        if let Err(e) = self.seal_in_place(&mut buf, last) {
            crate::crypto::wipe_vec(&mut buf);
            return Err(e);
        }
        Ok(buf)
    }

    /// Seal one chunk in place: `buf` holds the plaintext and gets the
    /// ciphertext and tag (no copy; give it `TAG_LEN` spare capacity).
    pub fn seal_in_place(&mut self, buf: &mut Vec<u8>, last: bool) -> Result<()> {
        if self.done || buf.len() > self.chunk || (!last && buf.len() != self.chunk) {
            return Err(Error::InvalidState);
        }
        self.aead
            .seal(nonce(self.counter, last), &self.header, buf)?;
        self.counter = self.counter.checked_add(1).ok_or(Error::Capacity)?;
        self.done = last;
        Ok(())
    }
}

/// Streaming unsealer. The caller knows the blob's total length and so which
/// chunk is the last; [`chunk_layout`] computes it.
pub struct Unsealer {
    aead: Aead,
    header: [u8; HEADER_LEN],
    counter: u64,
    chunk: usize,
    done: bool,
}

impl Unsealer {
    pub fn new(key: &Secret, header: &[u8]) -> Result<Self> {
        let chunk = parse_header(header)?;
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&header[..HEADER_LEN]);
        Ok(Unsealer {
            aead: blob_aead(key, &h[8..])?,
            header: h,
            counter: 0,
            chunk,
            done: false,
        })
    }

    /// Sealed size of a full chunk.
    pub fn sealed_chunk_len(&self) -> usize {
        self.chunk + TAG_LEN
    }

    /// Open one sealed chunk in place; `buf` then holds the plaintext.
    pub fn open_chunk(&mut self, buf: &mut Vec<u8>, last: bool) -> Result<()> {
        if self.done || buf.len() < TAG_LEN || buf.len() > self.sealed_chunk_len() {
            return Err(Error::Unseal);
        }
        if !last && buf.len() != self.sealed_chunk_len() {
            return Err(Error::Unseal);
        }
        self.aead
            .open(nonce(self.counter, last), &self.header, buf)?;
        self.counter = self.counter.checked_add(1).ok_or(Error::Capacity)?;
        self.done = last;
        Ok(())
    }
}

/// The salt in a blob's header: it names the blob (every seal draws its
/// own), so a journal can pin one blob by it without hashing the blob.
pub fn salt_of(blob: &[u8]) -> Result<[u8; 32]> {
    parse_header(blob)?;
    let mut salt = [0u8; 32];
    salt.copy_from_slice(&blob[8..HEADER_LEN]);
    Ok(salt)
}

/// Check a header and return the plaintext chunk size.
fn parse_header(header: &[u8]) -> Result<usize> {
    if header.len() < HEADER_LEN || &header[..4] != MAGIC {
        return Err(Error::Unseal);
    }
    if header[4] != FORMAT || header[6] != 0 || header[7] != 0 {
        return Err(Error::UnsupportedVersion);
    }
    let log2 = header[5];
    if !(MIN_CHUNK_LOG2..=MAX_CHUNK_LOG2).contains(&log2) {
        return Err(Error::Unseal);
    }
    Ok(1usize << log2)
}

/// For a blob of `sealed_len` bytes with the given header: the plaintext
/// length, and the number of chunks. Fails if no valid blob has that length.
pub fn chunk_layout(header: &[u8], sealed_len: u64) -> Result<(u64, u64)> {
    let chunk = parse_header(header)? as u64;
    let body = sealed_len
        .checked_sub(HEADER_LEN as u64)
        .ok_or(Error::Unseal)?;
    let full = chunk + TAG_LEN as u64;
    let (n, rem) = (body / full, body % full);
    match rem {
        0 if n > 0 => Ok((n * chunk, n)),
        r if r >= TAG_LEN as u64 => Ok((n * chunk + r - TAG_LEN as u64, n + 1)),
        _ => Err(Error::Unseal),
    }
}

/// Seal a whole buffer (for small objects such as the journal).
pub fn seal(key: &Secret, salt: [u8; 32], data: &[u8]) -> Result<Vec<u8>> {
    let mut s = Sealer::new(key, salt, DEFAULT_CHUNK_LOG2)?;
    // A bare-metal heap may not have room: that is `Capacity`, not an abort.
    let mut out = Vec::new();
    out.try_reserve_exact(HEADER_LEN + data.len() + TAG_LEN * (data.len() / s.chunk + 1))
        .map_err(|_| Error::Capacity)?;
    out.extend_from_slice(s.header());
    let mut chunks = data.chunks(s.chunk).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&s.seal_chunk(&[], true)?);
    }
    while let Some(c) = chunks.next() {
        let last = chunks.peek().is_none();
        out.extend_from_slice(&s.seal_chunk(c, last)?);
    }
    Ok(out)
}

/// Unseal a whole buffer.
pub fn unseal(key: &Secret, blob: &[u8]) -> Result<SecretBytes> {
    let (plain_len, n) = chunk_layout(blob, blob.len() as u64)?;
    let mut u = Unsealer::new(key, blob)?;
    let mut out = SecretBytes::new(Vec::new());
    out.try_reserve_exact(usize::try_from(plain_len).map_err(|_| Error::Capacity)?)
        .map_err(|_| Error::Capacity)?;
    let mut rest = &blob[HEADER_LEN..];
    for i in 0..n {
        let take = rest.len().min(u.sealed_chunk_len());
        let mut buf = rest[..take].to_vec();
        rest = &rest[take..];
        u.open_chunk(&mut buf, i + 1 == n)?;
        out.extend_from_slice(&buf);
        crate::crypto::wipe_vec(&mut buf);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Secret {
        Secret::from_bytes([b; 32])
    }

    #[test]
    fn round_trip_many_sizes() {
        for len in [0usize, 1, 1023, 16384, 16385, 3 * 16384, 100_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let blob = seal(&key(1), [9; 32], &data).unwrap();
            let (pl, _) = chunk_layout(&blob, blob.len() as u64).unwrap();
            assert_eq!(pl as usize, len);
            assert_eq!(&unseal(&key(1), &blob).unwrap()[..], &data[..]);
        }
    }

    #[test]
    fn wrong_key_truncation_and_tamper_are_detected() {
        let data = alloc::vec![5u8; 40_000];
        let blob = seal(&key(1), [9; 32], &data).unwrap();
        assert_eq!(unseal(&key(2), &blob).unwrap_err(), Error::Unseal);
        // Cut at a chunk boundary: the new last chunk was not sealed as last.
        let cut = HEADER_LEN + 2 * (16384 + TAG_LEN);
        assert_eq!(unseal(&key(1), &blob[..cut]).unwrap_err(), Error::Unseal);
        let mut t = blob.clone();
        t[HEADER_LEN + 5] ^= 1;
        assert_eq!(unseal(&key(1), &t).unwrap_err(), Error::Unseal);
        let mut h = blob.clone();
        h[10] ^= 1; // salt
        assert_eq!(unseal(&key(1), &h).unwrap_err(), Error::Unseal);
        // Swap two full chunks.
        let mut s = blob.clone();
        let c = 16384 + TAG_LEN;
        let (a, b) = (HEADER_LEN, HEADER_LEN + c);
        let first = s[a..a + c].to_vec();
        s.copy_within(b..b + c, a);
        s[b..b + c].copy_from_slice(&first);
        assert_eq!(unseal(&key(1), &s).unwrap_err(), Error::Unseal);
    }

    /// `seal` and `unseal` reserve what they need once, up front (a
    /// bare-metal heap cannot afford a growth spike of twice the blob).
    #[test]
    fn whole_buffer_seal_and_unseal_allocate_once() {
        let chunk = 1usize << DEFAULT_CHUNK_LOG2;
        for len in [
            0,
            1,
            1000,
            chunk - 1,
            chunk,
            chunk + 1,
            3 * chunk,
            3 * chunk + 7,
        ] {
            let data = alloc::vec![0x5a; len];
            let blob = seal(&key(1), [3; 32], &data).unwrap(); // safe: test
            assert!(
                blob.capacity() >= blob.len() && blob.capacity() - blob.len() <= TAG_LEN,
                "{len}: {} bytes reserved for {}",
                blob.capacity(),
                blob.len()
            );
            let plain = unseal(&key(1), &blob).unwrap(); // safe: test
            assert_eq!((plain.len(), plain.capacity()), (len, len));
        }
    }

    #[test]
    fn keys_depend_on_measurement_enclave_key_id_and_whole_sm_secret() {
        let ds = Secret::from_bytes([1; 32]);
        let a = sealing_key(&ds, &[1; 32], &[7; 16], b"k").unwrap();
        let b = sealing_key(&ds, &[2; 32], &[7; 16], b"k").unwrap();
        let mut other = [1u8; 32];
        other[31] = 0;
        let c = sealing_key(&Secret::from_bytes(other), &[1; 32], &[7; 16], b"k").unwrap();
        let d = sealing_key(&ds, &[1; 32], &[8; 16], b"k").unwrap();
        let e = sealing_key(&ds, &[1; 32], &[7; 16], b"j").unwrap();
        for k in [&b, &c, &d, &e] {
            assert_ne!(a.expose(), k.expose());
        }
    }

    fn sealer() -> (Secret, Sealer) {
        let key = Secret::from_bytes([3; 32]);
        let s = Sealer::new(&key, [4; 32], MIN_CHUNK_LOG2).unwrap(); // safe: test
        (key, s)
    }

    /// A chunk sealed with the blob's key at any counter, as only the key's
    /// holder could (to show the unsealer's own checks refuse it).
    fn forged(
        key: &Secret,
        header: &[u8; HEADER_LEN],
        counter: u64,
        last: bool,
        plain: &[u8],
    ) -> Vec<u8> {
        let aead = blob_aead(key, &header[8..]).unwrap(); // safe: test
        let mut buf = plain.to_vec();
        aead.seal(nonce(counter, last), header, &mut buf).unwrap(); // safe: test
        buf
    }

    #[test]
    fn sealer_refuses_misshapen_chunks_and_anything_after_the_last() {
        let (_, mut s) = sealer();
        let chunk = s.chunk_size();
        assert_eq!(
            s.seal_chunk(&alloc::vec![1; chunk + 1], true),
            Err(Error::InvalidState)
        );
        assert_eq!(
            s.seal_chunk(&alloc::vec![1; chunk - 1], false),
            Err(Error::InvalidState)
        );
        assert!(s.seal_chunk(&alloc::vec![1; chunk], false).is_ok());
        assert!(s.seal_chunk(&[1], true).is_ok());
        assert_eq!(
            s.seal_chunk(&alloc::vec![1; chunk], false),
            Err(Error::InvalidState)
        );
        let shown = alloc::format!("{s:?}");
        assert!(
            shown.starts_with("Sealer {") && shown.contains("chunk: 1024"),
            "{shown}"
        );
    }

    #[test]
    fn unsealer_refuses_oversize_chunks_and_anything_after_the_last() {
        let (key, s) = sealer();
        let header = *s.header();
        let chunk = s.chunk_size();
        let mut u = Unsealer::new(&key, &header).unwrap(); // safe: test
        let shown = alloc::format!("{u:?}");
        assert!(
            shown.starts_with("Unsealer {") && shown.contains("chunk: 1024"),
            "{shown}"
        );
        // Authentic, but one byte longer than a chunk.
        let mut big = forged(&key, &header, 0, true, &alloc::vec![5; chunk + 1]);
        assert_eq!(u.open_chunk(&mut big, true), Err(Error::Unseal));
        // Shorter than a tag.
        assert_eq!(
            u.open_chunk(&mut alloc::vec![0; TAG_LEN - 1], true),
            Err(Error::Unseal)
        );
        let mut last = forged(&key, &header, 0, true, b"end");
        assert_eq!(u.open_chunk(&mut last, true), Ok(()));
        assert_eq!(last, b"end");
        // Authentic at the next counter, but the blob has ended.
        let mut after = forged(&key, &header, 1, true, b"more");
        assert_eq!(u.open_chunk(&mut after, true), Err(Error::Unseal));
    }

    #[test]
    fn headers_and_layouts_are_checked_field_by_field() {
        let (_, s) = sealer();
        let h = *s.header();
        assert_eq!(parse_header(&h), Ok(1024));
        assert_eq!(parse_header(&h[..HEADER_LEN - 1]), Err(Error::Unseal));
        assert_eq!(parse_header(&h[..3]), Err(Error::Unseal));
        for (at, err) in [
            (0, Error::Unseal),
            (4, Error::UnsupportedVersion),
            (6, Error::UnsupportedVersion),
            (7, Error::UnsupportedVersion),
        ] {
            let mut bad = h;
            bad[at] ^= 1;
            assert_eq!(parse_header(&bad), Err(err), "byte {at}");
        }
        // A blob is at least one (possibly empty) chunk.
        assert_eq!(chunk_layout(&h, HEADER_LEN as u64), Err(Error::Unseal));
        assert_eq!(chunk_layout(&h, (HEADER_LEN + TAG_LEN) as u64), Ok((0, 1)));
        // A last chunk shorter than its tag is no chunk.
        let full = 1024 + TAG_LEN;
        assert_eq!(
            chunk_layout(&h, (HEADER_LEN + full + TAG_LEN - 1) as u64),
            Err(Error::Unseal)
        );
        assert_eq!(
            chunk_layout(&h, (HEADER_LEN + full + TAG_LEN) as u64),
            Ok((1024, 2))
        );
        assert_eq!(
            chunk_layout(&h, (HEADER_LEN + 1024 + TAG_LEN) as u64),
            Ok((1024, 1))
        );
    }
}
