//! MigrationRequest (signed by the SDS): whole COSE objects, or payloads the
//! harness signs; then the endorsements and policy it vouches for.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rewire_core::wire::{verify_as, MigrationRequest};
use rewire_fuzz::{fixtures, keys, signed_decoder, typed_in, DECODE_OR_AUTH};

fuzz_target!(|data: &[u8]| {
    let k = &keys().sds;
    let pk = k.public();
    if let Some(req) = signed_decoder::<MigrationRequest>(data, k, |b| verify_as(b, &pk)) {
        let f = fixtures();
        match req.vouched_endorsements(&f.endorsements[0], &f.endorsements[1]) {
            Ok((s, t)) => {
                assert_eq!(s.host, f.host_ids[0]);
                assert_eq!(t.host, f.host_ids[1]);
            }
            Err(e) => typed_in(e, DECODE_OR_AUTH),
        }
        if let Err(e) = req.vouched_policy(&f.policy) {
            typed_in(e, DECODE_OR_AUTH);
        }
    }
});
