//! ORDER (SDS → source monitor): the message, then everything inside it as
//! the source checks it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rewire_core::sds::verify_endorsement;
use rewire_core::wire::{verify_as, Message, MigrationRequest};
use rewire_fuzz::{keys, message_round_trip, typed_in, DECODE_OR_AUTH};

fuzz_target!(|data: &[u8]| {
    let pk = keys().sds.public();
    let Some(Message::Order(o)) = message_round_trip(data) else {
        return;
    };
    match verify_as::<MigrationRequest>(&o.request, &pk) {
        Ok(req) => {
            if let Err(e) = req.vouched_endorsements(&o.source_endorsement, &o.target_endorsement) {
                typed_in(e, DECODE_OR_AUTH);
            }
        }
        Err(e) => typed_in(e, DECODE_OR_AUTH),
    }
    for e in [&o.source_endorsement, &o.target_endorsement] {
        if let Err(e) = verify_endorsement(e, &pk) {
            typed_in(e, DECODE_OR_AUTH);
        }
    }
});
