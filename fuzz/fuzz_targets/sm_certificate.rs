//! SmCertificate (signed by a device key) checked against host 0's
//! endorsement as both monitors and the SDS do; then the SDS endorsing it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rewire_core::sds::verify_endorsement;
use rewire_core::wire::SmCertificate;
use rewire_core::Sds;
use rewire_fuzz::{fixtures, keys, sds_key, signed_decoder, typed, SM_MEASUREMENT, WALL0};

fuzz_target!(|data: &[u8]| {
    let k = keys();
    let f = fixtures();
    let end = verify_endorsement(&f.endorsements[0], &k.sds.public()).expect("fixture verifies"); // safe: fixture
    let cert = signed_decoder::<SmCertificate>(data, &k.device[0], |b| {
        SmCertificate::verify_against(b, &end)
    });
    if let Some(c) = cert {
        assert_eq!(c.device, end.host);
        assert!(end.sm_measurements.contains(&c.sm_measurement));
    }
    // The SDS endorses from a certificate: the same bytes through `endorse_host`.
    if data.len() > 1 && data[0] & 2 == 2 {
        let mut sds = Sds::new(sds_key());
        sds.pin_device(end.host); // host 0's device key has provenance
        match sds.endorse_host(&data[1..], vec![SM_MEASUREMENT], rewire_core::wire::PLATFORM_RISCV64, 1, WALL0, WALL0 + 10) {
            Ok(e) => {
                assert!(verify_endorsement(&e, &k.sds.public()).is_ok());
            }
            Err(e) => typed(e),
        }
    }
});
