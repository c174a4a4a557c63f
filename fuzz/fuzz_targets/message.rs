//! Every `wire::Message` (SDS path and in-channel): decode → encode is the
//! identity; the signed objects inside are checked with the key that signs them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rewire_core::wire::{verify_as, Decision, Message, Ready, SmCertificate, TargetAck};
use rewire_core::wire::{MAX_MESSAGE, MAX_SECTION_LEN};
use rewire_fuzz::{keys, message_round_trip, typed_in, DECODE_OR_AUTH};

fn check<T>(r: rewire_core::Result<T>) {
    if let Err(e) = r {
        typed_in(e, DECODE_OR_AUTH);
    }
}

fuzz_target!(|data: &[u8]| {
    let k = keys();
    let Some(m) = message_round_trip(data) else {
        return;
    };
    assert!(data.len() <= MAX_MESSAGE);
    match m {
        Message::Offer(o) => {
            assert!(o.lengths.iter().all(|&l| l <= MAX_SECTION_LEN));
            check(verify_as::<SmCertificate>(
                &o.source_certificate,
                &k.device[0].public(),
            ));
        }
        Message::Accept {
            target_certificate, ..
        } => check(verify_as::<SmCertificate>(
            &target_certificate,
            &k.device[1].public(),
        )),
        Message::Ready(b) => check(verify_as::<Ready>(&b, &k.sm[1].public())),
        Message::Release(b) | Message::Abort(b) => {
            check(verify_as::<Decision>(&b, &k.sm[0].public()))
        }
        Message::Active(b) | Message::Dropped(b) => {
            check(verify_as::<TargetAck>(&b, &k.sm[1].public()))
        }
        _ => {}
    }
});
