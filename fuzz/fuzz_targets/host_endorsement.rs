//! HostEndorsement (signed by the SDS), and its validity window.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rewire_core::error::Category;
use rewire_core::sds::verify_endorsement;
use rewire_core::wire::HostEndorsement;
use rewire_fuzz::{keys, signed_decoder, typed_in, WALL0};

fuzz_target!(|data: &[u8]| {
    let k = &keys().sds;
    let pk = k.public();
    if let Some(e) = signed_decoder::<HostEndorsement>(data, k, |b| verify_endorsement(b, &pk)) {
        assert!(e.sm_measurements.len() <= rewire_core::wire::MAX_SM_MEASUREMENTS);
        for now in [
            None,
            Some(WALL0),
            Some(e.not_before),
            Some(e.not_after),
            Some(u64::MAX),
        ] {
            if let Err(err) = e.check_valid(now) {
                typed_in(err, &[Category::Authorisation]);
                if let Some(t) = now {
                    assert!(t < e.not_before || t > e.not_after);
                }
            }
        }
    }
});
