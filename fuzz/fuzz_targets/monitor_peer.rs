//! A real monitor against the harness as its TLS peer: fuzzer-chosen
//! in-channel messages (valid, field-mutated, byte-mutated, arbitrary) reach
//! the target's import and the source's commit logic past TLS.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rewire_fuzz::peer::session(data));
