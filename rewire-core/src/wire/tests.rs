//! Unit tests of the wire objects: signing round trips and rejections,
//! message encodings.

use super::*;
use crate::crypto::Secret;

fn key(b: u8) -> SigningKey {
    SigningKey::from_seed(Secret::from_bytes([b; 32])).unwrap()
}

fn request() -> MigrationRequest {
    MigrationRequest {
        request_id: [1; 16],
        enclave_id: [2; 16],
        measurement: [3; 32],
        source: key(4).public(),
        target: key(5).public(),
        epoch: 9,
        deadline: 1000,
        endorsements: [[6; 32], [7; 32]],
        policy: [8; 32],
    }
}

#[test]
fn signed_round_trip_and_rejections() {
    let k = key(1);
    let bytes = request().sign(&k).unwrap();
    assert_eq!(
        verify_as::<MigrationRequest>(&bytes, &k.public()).unwrap(),
        request()
    );
    // Wrong key.
    assert_eq!(
        verify_as::<MigrationRequest>(&bytes, &key(2).public()).unwrap_err(),
        Error::UnknownSigner
    );
    // A different key that claims the right kid fails the signature.
    let forged = {
        let mut s = Signed::parse(&request().sign(&key(2)).unwrap()).unwrap();
        s.kid = k.public();
        s.sign1.protected = coset::ProtectedHeader {
            original_data: None,
            header: protected_header(&k.public()),
        };
        s.sign1.to_vec().unwrap()
    };
    assert_eq!(
        verify_as::<MigrationRequest>(&forged, &k.public()).unwrap_err(),
        Error::BadSignature
    );
    // Another kind of object signed by the same key is not a request.
    let pol = EnclavePolicy {
        enclave_id: [0; 16],
        measurement: [0; 32],
        platform: crate::wire::PLATFORM_RISCV64,
        min_atl: 1,
    }
    .sign(&k)
    .unwrap();
    assert_eq!(
        verify_as::<MigrationRequest>(&pol, &k.public()).unwrap_err(),
        Error::WrongMessageType
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(Signed::parse(&trailing).err(), Some(Error::TrailingBytes));
}

#[test]
fn messages_round_trip() {
    let msgs = [
        Message::Chunk {
            section: Section::Sealed,
            offset: 77,
            data: alloc::vec![1; 100].into(),
        },
        Message::End,
        Message::Refuse {
            request_id: [1; 16],
            code: 205,
        },
        Message::Release(alloc::vec![1, 2, 3]),
        Message::Query {
            enclave_id: [4; 16],
        },
    ];
    for m in msgs {
        assert_eq!(Message::decode(&m.encode().unwrap()).unwrap(), m);
    }
}

/// A COSE_Sign1 built by hand: librewire's protected header and a
/// signature by `k`, with the given changes.
fn cose(
    k: &SigningKey,
    payload: Option<Vec<u8>>,
    unprotected: coset::Header,
    sig_len: usize,
) -> Vec<u8> {
    let mut b = CoseSign1Builder::new()
        .protected(protected_header(&k.public()))
        .unprotected(unprotected);
    if let Some(p) = payload {
        b = b.payload(p);
    }
    let mut s = b.create_signature(b"", |tbs| k.sign(tbs)).build();
    s.signature.resize(sig_len, 0);
    s.to_vec().unwrap() // safe: test
}

#[test]
fn signed_envelopes_are_checked_field_by_field() {
    let k = key(1);
    let none = coset::Header::default();
    assert!(Signed::parse(&cose(&k, Some(alloc::vec![1]), none.clone(), 64)).is_ok());
    let unprotected = HeaderBuilder::new().key_id(alloc::vec![1]).build();
    for (what, bytes) in [
        (
            "unprotected header",
            cose(&k, Some(alloc::vec![1]), unprotected, 64),
        ),
        ("detached payload", cose(&k, None, none.clone(), 64)),
        (
            "short signature",
            cose(&k, Some(alloc::vec![1]), none.clone(), 63),
        ),
        (
            "long signature",
            cose(&k, Some(alloc::vec![1]), none.clone(), 65),
        ),
    ] {
        assert_eq!(Signed::parse(&bytes).err(), Some(Error::Decode), "{what}");
    }
}

#[test]
fn signed_objects_are_capped_exactly() {
    let k = key(1);
    // The envelope's overhead is the same for every payload of this size.
    let probe = 1000;
    let overhead = sign(&k, alloc::vec![0; probe]).unwrap().len() - probe; // safe: test
    let at = sign(&k, alloc::vec![0; MAX_SIGNED - overhead]).unwrap(); // safe: test
    assert_eq!(at.len(), MAX_SIGNED);
    assert!(Signed::parse(&at).is_ok());
    let over = sign(&k, alloc::vec![0; MAX_SIGNED - overhead + 1]).unwrap(); // safe: test
    assert_eq!(Signed::parse(&over).err(), Some(Error::TooLarge));
}

#[test]
fn chunks_carry_up_to_16_kib() {
    let chunk = |n: usize| Message::Chunk {
        section: Section::State,
        offset: 0,
        data: alloc::vec![1; n].into(),
    };
    let at = chunk(16 * 1024).encode().unwrap(); // safe: test
    assert_eq!(Message::decode(&at), Ok(chunk(16 * 1024)));
    let over = chunk(16 * 1024 + 1).encode().unwrap(); // safe: test
    assert_eq!(Message::decode(&over), Err(Error::TooLarge));
}

#[test]
fn endorsements_are_valid_from_not_before_to_not_after_inclusive() {
    let e = HostEndorsement {
        host: key(1).public(),
        sm_measurements: alloc::vec![[1; 32]],
        platform: crate::wire::PLATFORM_RISCV64,
        atl: 1,
        not_before: 100,
        not_after: 200,
    };
    assert_eq!(e.check_valid(None), Err(Error::NoTrustedTime));
    for (now, ok) in [
        (98, false),
        (99, false),
        (100, true),
        (200, true),
        (201, false),
    ] {
        let want = if ok {
            Ok(())
        } else {
            Err(Error::EndorsementExpired)
        };
        assert_eq!(e.check_valid(Some(now)), want, "at {now}");
    }
}

#[test]
fn offered_sections_are_capped_at_1_tib_each() {
    let offer = |lengths: [u64; 3]| {
        Message::Offer(Offer {
            order: Order {
                request: alloc::vec![1],
                source_endorsement: alloc::vec![2],
                target_endorsement: alloc::vec![3],
            },
            policy: alloc::vec![4],
            source_certificate: alloc::vec![5],
            lengths,
        })
    };
    let max = MAX_SECTION_LEN;
    let at = offer([max, max, max]);
    assert_eq!(Message::decode(&at.encode().unwrap()), Ok(at)); // safe: test
    for i in 0..3 {
        let mut l = [1, 1, 1];
        l[i] = max + 1;
        let over = offer(l).encode().unwrap(); // safe: test
        assert_eq!(Message::decode(&over), Err(Error::TooLarge), "section {i}");
    }
}

/// A CHUNK built in place (prefix, then data) is byte for byte the one
/// `Message::encode` gives, at every head width of offset and length, and
/// decodes back to it.
#[test]
fn chunk_prefix_is_the_deterministic_encoding() {
    let widths = [
        0u64,
        1,
        23,
        24,
        255,
        256,
        65_535,
        65_536,
        u32::MAX as u64,
        u32::MAX as u64 + 1,
        u64::MAX,
    ];
    for section in Section::ALL {
        for &offset in &widths {
            for len in [0usize, 1, 23, 24, 255, 256, 16_384] {
                let data: alloc::vec::Vec<u8> = (0..len).map(|i| i as u8).collect();
                let m = Message::Chunk {
                    section,
                    offset,
                    data: data.clone().into(),
                };
                let (p, at) = chunk_prefix(section, offset, len);
                let mut built = p[..at].to_vec();
                built.extend_from_slice(&data);
                assert_eq!(built, m.encode().unwrap(), "{section:?} {offset} {len}"); // safe: test
                assert_eq!(Message::decode(&built).unwrap(), m); // safe: test
            }
        }
    }
}

/// The CHUNK fast path reads every deterministic CHUNK, and whatever it
/// accepts the general strict decoder accepts as the same message: on
/// well-formed CHUNKs and on mutated, truncated and extended ones.
mod chunk_fast_path {
    use super::*;
    use proptest::prelude::*;

    fn chunk(section: usize, offset: u64, len: usize) -> alloc::vec::Vec<u8> {
        let (p, at) = chunk_prefix(Section::ALL[section % 3], offset, len);
        let mut b = p[..at].to_vec();
        b.extend((0..len).map(|i| (i * 7) as u8));
        b
    }

    proptest! {
        #[test]
        fn agrees_with_the_general_decoder(
            section in 0usize..3,
            offset in prop_oneof![0u64..30, 200u64..300, 60_000u64..70_000, any::<u64>()],
            len in prop_oneof![0usize..30, 250usize..260, (CHUNK_DATA - 2)..(CHUNK_DATA + 2)],
            edit in 0u8..4,
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut b = chunk(section, offset, len);
            if len <= CHUNK_DATA {
                prop_assert!(Message::decode_chunk(&b).is_some(), "fast path taken");
            }
            match edit {
                0 => {}
                1 => { let i = at.index(b.len()); b[i] = byte; }
                2 => { let i = at.index(b.len()); b.truncate(i); }
                _ => b.push(byte),
            }
            if let Some(fast) = Message::decode_chunk(&b) {
                prop_assert_eq!(Message::decode_value(&b), Ok(fast));
            }
        }
    }

    /// Heads in a longer form than needed are not the fast path's, and the
    /// general decoder refuses them.
    #[test]
    fn non_shortest_heads_are_refused() {
        // offset 5 as a one-byte argument (0x18 0x05), then bstr(0).
        let b = [0x85, 22, 1, 1, 0x18, 0x05, 0x40];
        assert!(Message::decode_chunk(&b).is_none());
        assert_eq!(Message::decode(&b), Err(Error::NonCanonical));
        // bstr(1) with a two-byte length.
        let b = [0x85, 22, 1, 1, 0x00, 0x59, 0x00, 0x01, 0xaa];
        assert!(Message::decode_chunk(&b).is_none());
        assert_eq!(Message::decode(&b), Err(Error::NonCanonical));
        // One byte of data more than CHUNK_DATA.
        let b = chunk(1, 0, CHUNK_DATA + 1);
        assert!(Message::decode_chunk(&b).is_none());
        assert_eq!(Message::decode(&b), Err(Error::TooLarge));
    }
}
