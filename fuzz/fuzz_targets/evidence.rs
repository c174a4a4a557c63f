//! READY (signed by the target SM key): the SM's report of the imported
//! enclave, with the framework's evidence embedded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rewire_core::wire::{verify_as, Ready, MAX_FRAMEWORK_EVIDENCE};
use rewire_fuzz::{keys, signed_decoder};

fuzz_target!(|data: &[u8]| {
    let k = &keys().sm[1];
    let pk = k.public();
    if let Some(r) = signed_decoder::<Ready>(data, k, |b| verify_as(b, &pk)) {
        assert!(r.framework_evidence.len() <= MAX_FRAMEWORK_EVIDENCE);
    }
});
