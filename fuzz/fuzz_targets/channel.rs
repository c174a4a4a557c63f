//! The attested channel (TLS 1.3, raw public keys, length-framed messages).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rewire_fuzz::peer::channel(data));
