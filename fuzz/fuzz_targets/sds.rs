//! The SDS state machine fed fuzzer-chosen sequences: recorded proofs of a
//! real migration (mutated or not), proofs the harness signs with the real
//! SM keys (so the ledger logic is reached), arbitrary bytes, orders,
//! withdrawals, endorsements, registrations, resolution, audit, reload.
//! The ledger never loses the enclave and its epoch never goes back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rewire_core::wire::{AckKind, Decision, DecisionKind, Message, SignedBody, TargetAck};
use rewire_core::{PublicKey, Sds};
use rewire_fuzz::{
    fixtures, keys, message_round_trip, mutate, recorded, sds_key, typed, Reader, To, EID,
    SM_MEASUREMENT, WALL0,
};

fuzz_target!(|data: &[u8]| {
    let f = fixtures();
    let k = keys();
    let mut sds = Sds::from_bytes(sds_key(), &f.ledger).expect("fixture ledger"); // safe: fixture
    let mut r = Reader::new(data);
    let proofs: Vec<&[u8]> = recorded()
        .iter()
        .filter(|p| p.to == To::Sds)
        .map(|p| &p.bytes[..])
        .collect();
    let mut epoch = 0u64;
    let mut rids: Vec<[u8; 16]> = vec![[3; 16]];
    for _ in 0..48 {
        if r.is_empty() {
            break;
        }
        match r.u8() % 10 {
            0 => {
                let mut b = proofs[r.below(proofs.len())].to_vec();
                mutate(&mut b, &mut r);
                if let Err(e) = sds.handle(&b) {
                    typed(e);
                }
            }
            1 => {
                if let Err(e) = sds.handle(r.blob()) {
                    typed(e);
                }
            }
            2 => {
                let t = f.host_ids[r.below(2)];
                let rid = r.array::<16>();
                let deadline = WALL0.wrapping_add(r.u16() as u64);
                match sds.order(&EID, t, rid, deadline) {
                    Ok(o) => {
                        rids.push(rid);
                        message_round_trip(&o).expect("well-formed order"); // safe: fuzz assertion
                    }
                    Err(e) => typed(e),
                }
            }
            3 => {
                let rid = rids[r.below(rids.len())];
                if let Err(e) = sds.withdraw(&EID, &rid) {
                    typed(e);
                }
            }
            4 | 5 => {
                // A proof signed with a real SM key, fields chosen by the fuzzer.
                let rid = rids[r.below(rids.len())];
                let (src, tgt) = (f.host_ids[0], f.host_ids[1]);
                let (src, tgt) = if r.u8() & 1 == 0 {
                    (src, tgt)
                } else {
                    (tgt, src)
                };
                let ep = match r.u8() % 4 {
                    0 => epoch,
                    // (SMs are trusted: an honest one never signs a huge
                    // epoch, but the ledger must not break on one.)
                    1 => epoch.saturating_add(1),
                    2 => epoch.saturating_add(2),
                    _ => r.u64(),
                };
                let signer = &k.sm[if src == f.host_ids[0] { 0 } else { 1 }];
                let other = &k.sm[if src == f.host_ids[0] { 1 } else { 0 }];
                let msg = match r.u8() % 4 {
                    0 | 1 => {
                        let kind = if r.u8() & 1 == 0 {
                            DecisionKind::Release
                        } else {
                            DecisionKind::Abort
                        };
                        let d = Decision {
                            kind,
                            request_id: rid,
                            enclave_id: EID,
                            epoch: ep,
                            source: src,
                            target: tgt,
                        };
                        let s = d.sign(signer).expect("signs"); // safe: well-formed object
                        match kind {
                            DecisionKind::Release => Message::Release(s),
                            DecisionKind::Abort => Message::Abort(s),
                        }
                    }
                    _ => {
                        let kind = if r.u8() & 1 == 0 {
                            AckKind::Active
                        } else {
                            AckKind::Dropped
                        };
                        let a = TargetAck {
                            kind,
                            request_id: rid,
                            enclave_id: EID,
                            epoch: ep,
                            host: tgt,
                        };
                        let s = a.sign(other).expect("signs"); // safe: well-formed object
                        match kind {
                            AckKind::Active => Message::Active(s),
                            AckKind::Dropped => Message::Dropped(s),
                        }
                    }
                };
                let mut b = msg.encode().expect("encodes"); // safe: well-formed message
                if r.u8() % 4 == 0 {
                    mutate(&mut b, &mut r);
                }
                if let Err(e) = sds.handle(&b) {
                    typed(e);
                }
            }
            6 => {
                let i = r.below(2);
                let mut cert = f.certificates[i].clone();
                mutate(&mut cert, &mut r);
                let n = r.below(18);
                let ms = (0..n)
                    .map(|j| {
                        if j == 0 {
                            SM_MEASUREMENT
                        } else {
                            [j as u8; 32]
                        }
                    })
                    .collect();
                let (atl, nb, na) = (r.u8() as u64 % 4, WALL0 - 10, WALL0 + r.u32() as u64);
                let platform = r.u8() as u64 % 3; // 0 (refused), RISC-V, aarch64
                if let Err(e) = sds.endorse_host(&cert, ms, platform, atl, nb, na) {
                    typed(e);
                }
            }
            7 => {
                let id = if r.u8() & 1 == 0 { EID } else { r.array() };
                let host = if r.u8() & 1 == 0 {
                    f.host_ids[r.below(2)]
                } else {
                    PublicKey(r.array())
                };
                let platform = r.u8() as u64 % 3;
                if let Err(e) = sds.register_enclave(id, r.array(), platform, r.u8() as u64 % 4, host)
                {
                    typed(e);
                }
            }
            8 => {
                for (_, m) in sds.resolution().into_iter().chain(sds.audit()) {
                    message_round_trip(&m).expect("well-formed"); // safe: fuzz assertion
                }
            }
            _ => {
                let b = sds.to_bytes().expect("saves"); // safe: fuzz assertion
                sds = Sds::from_bytes(sds_key(), &b).expect("reloads"); // safe: fuzz assertion
                assert_eq!(sds.to_bytes().expect("saves"), b); // safe: fuzz assertion
            }
        }
        let e = sds
            .enclave(&EID)
            .expect("the ledger never loses the enclave"); // safe: fuzz assertion
        assert!(e.epoch >= epoch, "ledger epoch went back");
        epoch = e.epoch;
        assert!(
            f.host_ids.contains(&e.location),
            "the enclave is placed on an unknown host"
        );
    }
});
