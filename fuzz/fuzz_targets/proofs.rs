//! The signed proofs: RELEASE / ABORT (Decision, source SM key) and ACTIVE /
//! DROPPED (TargetAck, target SM key). `data[0]` bit 1 picks the kind.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rewire_core::wire::{verify_as, Decision, TargetAck};
use rewire_fuzz::{keys, signed_decoder};

fuzz_target!(|data: &[u8]| {
    let k = keys();
    if data.first().is_some_and(|b| b & 2 == 0) {
        let pk = k.sm[0].public();
        let _ = signed_decoder::<Decision>(data, &k.sm[0], |b| verify_as(b, &pk));
    } else {
        let pk = k.sm[1].public();
        let _ = signed_decoder::<TargetAck>(data, &k.sm[1], |b| verify_as(b, &pk));
    }
});
