//! The SDS ledger decoder (`Sds::from_bytes`): arbitrary bytes, then a
//! ledger that loads is driven (resolution, audit, order, proofs) and must
//! persist stably (to_bytes ∘ from_bytes is idempotent).
#![no_main]
use libfuzzer_sys::fuzz_target;
use rewire_core::Sds;
use rewire_fuzz::{fixtures, message_round_trip, recorded, sds_key, typed, To, EID, WALL0};

fuzz_target!(|data: &[u8]| {
    let mut sds = match Sds::from_bytes(sds_key(), data) {
        Ok(s) => s,
        Err(e) => return typed(e),
    };
    let once = sds.to_bytes().expect("a loaded ledger saves"); // safe: fuzz assertion
    let again = Sds::from_bytes(sds_key(), &once)
        .expect("a saved ledger loads") // safe: fuzz assertion
        .to_bytes()
        .expect("saves"); // safe: fuzz assertion
    assert_eq!(once, again, "ledger persistence is not stable");
    let _ = sds.is_settled_all();
    // What it re-sends comes from the ledger's own bytes (its storage is
    // trusted): arbitrary here, so only that it does not panic.
    let _ = sds.resolution();
    let _ = sds.audit();
    // The proofs of a real migration.
    for p in recorded().iter().filter(|p| p.to == To::Sds) {
        if let Err(e) = sds.handle(&p.bytes) {
            typed(e);
        }
    }
    for h in &fixtures().host_ids {
        match sds.order(&EID, *h, [9; 16], WALL0 + 60) {
            Ok(o) => {
                message_round_trip(&o).expect("orders are well-formed"); // safe: fuzz assertion
            }
            Err(e) => typed(e),
        }
    }
    let _ = sds.to_bytes().expect("saves"); // safe: fuzz assertion
});
