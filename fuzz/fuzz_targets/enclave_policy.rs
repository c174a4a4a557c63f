//! EnclavePolicy (signed by the SDS).
#![no_main]
use libfuzzer_sys::fuzz_target;
use rewire_core::wire::{verify_as, EnclavePolicy};
use rewire_fuzz::{keys, signed_decoder};

fuzz_target!(|data: &[u8]| {
    let k = &keys().sds;
    let pk = k.public();
    let _ = signed_decoder::<EnclavePolicy>(data, k, |b| verify_as(b, &pk));
});
