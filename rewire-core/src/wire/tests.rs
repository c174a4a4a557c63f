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
        Message::End {
            digests: [[1; 32], [2; 32], [3; 32]],
        },
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
