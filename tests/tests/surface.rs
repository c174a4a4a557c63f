//! The monitor's API surface beyond the protocol: output flow control, the
//! session cap, a poisoned monitor, what `Debug` shows. Each test pins a
//! behaviour that mutation testing (make mutants) found no test checking.

use rewire_core::channel::Channel;
use rewire_core::crypto::Secret;
use rewire_core::{Error, Event, SigningKey};
use rewire_tests::*;

const EID: [u8; 16] = *b"enclave-surface1";

fn world(state: usize) -> (World, Image) {
    let mut w = World::new(&[2, 2, 2]);
    let img = Image::sample(33, state);
    w.deploy(0, EID, &img, 1);
    (w, img)
}

#[test]
fn unpolled_output_comes_back_first() {
    let (mut w, img) = world(1000);
    w.order(&EID, 1, [1; 16]).unwrap();
    let p = w.net.pop_front().unwrap();
    w.deliver(p);
    let first = w.mon(0).poll_output().expect("the ClientHello");
    let again = first.clone();
    w.mon(0).unpoll_output(first);
    assert_eq!(w.mon(0).poll_output(), Some(again.clone()));
    // Given back, the migration goes on as if nothing happened.
    w.mon(0).unpoll_output(again);
    w.run();
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
}

#[test]
fn session_cap_refuses_one_more_incoming_channel() {
    let (mut w, _) = world(1000);
    w.mon(1).set_max_sessions(1);
    let from = w.hosts[0].id;
    let hello = |seed: u8| {
        let k = SigningKey::from_seed(Secret::from_bytes([seed; 32])).unwrap();
        Channel::client(&k, WALL0).unwrap().exchange(&[]).0
    };
    assert_eq!(w.mon(1).handle_peer(from, [1; 16], &hello(1)), Ok(()));
    assert_eq!(
        w.mon(1).handle_peer(from, [2; 16], &hello(2)),
        Err(Error::Capacity)
    );
    // A cap of zero means one.
    w.mon(2).set_max_sessions(0);
    assert_eq!(w.mon(2).handle_peer(from, [3; 16], &hello(3)), Ok(()));
    assert_eq!(
        w.mon(2).handle_peer(from, [4; 16], &hello(4)),
        Err(Error::Capacity)
    );
}

#[test]
fn a_poisoned_monitor_produces_no_more_chunks() {
    // Host 0 streams a 1 MiB enclave (dozens of chunks, produced one per
    // poll). A failed commit for another enclave poisons it mid-stream:
    // from then on it may hand out what was already queued, nothing new.
    let (mut w, _) = world(1 << 20);
    let other = *b"enclave-surface2";
    let img2 = Image::sample(34, 100);
    w.deploy(0, other, &img2, 1);
    w.order(&EID, 1, [1; 16]).unwrap();
    while !w
        .events
        .iter()
        .any(|(h, _, e)| *h == 0 && *e == Event::TargetVerified)
    {
        w.collect(1);
        let p = w.net.pop_front().expect("stalled before streaming");
        w.deliver(p);
    }
    w.order(&other, 2, [2; 16]).unwrap();
    let order = w.net.pop_back().unwrap().bytes;
    w.mon(0).platform().fail_next_write = true;
    assert_eq!(w.mon(0).handle_sds(&order), Err(Error::Storage));
    let mut after = 0;
    while w.mon(0).poll_output().is_some() {
        after += 1;
        assert!(after < 8, "a poisoned monitor keeps streaming");
    }
}

#[test]
fn debug_shows_the_host_and_no_secret() {
    let (w, _) = world(100);
    let m = w.mon_ref(0);
    let s = format!("{m:?}");
    assert!(s.starts_with("Monitor {"), "{s}");
    assert!(s.contains("records: 1"), "{s}");
    let secret = device_secret(0);
    let hex: String = secret.expose()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!s.contains(&hex), "{s}");
}

#[test]
fn in_flight_covers_source_and_target_alike() {
    let (mut w, img) = world(40_000);
    assert!(!w.mon_ref(0).in_flight() && !w.mon_ref(1).in_flight());
    w.order(&EID, 1, [1; 16]).unwrap();
    let mut seen = [false; 2];
    let mut streamed = false;
    assert!(!w.mon_ref(0).is_streaming());
    loop {
        w.collect(1);
        let Some(p) = w.net.pop_front() else { break };
        w.deliver(p);
        use rewire_core::EnclaveState::{Frozen, Receiving};
        if w.mon_ref(0).status(&EID).map(|s| s.state) == Some(Frozen) {
            assert!(w.mon_ref(0).in_flight(), "a frozen source is in flight");
            seen[0] = true;
        }
        if w.mon_ref(0).is_streaming() {
            streamed = true;
        }
        if w.mon_ref(1).status(&EID).map(|s| s.state) == Some(Receiving) {
            assert!(w.mon_ref(1).in_flight(), "an import under way is in flight");
            seen[1] = true;
        }
    }
    assert_eq!(seen, [true, true]);
    assert!(
        streamed,
        "is_streaming never said so while the image went out"
    );
    assert!(!w.mon_ref(0).is_streaming());
    assert!(!w.mon_ref(0).in_flight() && !w.mon_ref(1).in_flight());
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
}

#[test]
fn framework_evidence_is_capped_exactly() {
    use rewire_core::wire::MAX_FRAMEWORK_EVIDENCE;
    // At the cap the migration goes through; one byte over, the target
    // refuses (Capacity) and the enclave stays at the source.
    for (n, ok) in [
        (MAX_FRAMEWORK_EVIDENCE, true),
        (MAX_FRAMEWORK_EVIDENCE + 1, false),
    ] {
        let (mut w, img) = world(2_000);
        w.mon(1).enclave_host().evidence_len = Some(n);
        w.order(&EID, 1, [1; 16]).unwrap();
        w.run();
        if ok {
            assert!(w.errors.is_empty(), "{n}: {:?}", w.errors);
            assert_eq!(w.running_copies(&EID), vec![1]);
        } else {
            assert!(w.has_error(1, Error::Capacity), "{n}: {:?}", w.errors);
            w.assert_intact_at(0, &EID, &img);
        }
    }
}

/// A stuck or repeating random source (crate::rng's health check): every
/// use of randomness is refused with `Random`, the monitor is not poisoned,
/// and the enclave runs on where it was; once the source is fixed the same
/// order migrates it.
#[test]
fn a_stuck_random_source_fails_closed_and_the_enclave_stays() {
    let (mut w, img) = world(1000);
    w.mon(0).platform().stuck_random = Some([0; 32]);
    assert_eq!(w.mon(0).seal_data(&EID, b"data"), Err(Error::Random));
    // Repeating output: the first draw passes, the same one again does not.
    let mut repeating = [0u8; 32];
    repeating[0] = 1;
    w.mon(0).platform().stuck_random = Some(repeating);
    assert!(w.mon(0).seal_data(&EID, b"data").is_ok());
    assert_eq!(w.mon(0).seal_data(&EID, b"data"), Err(Error::Random));
    // The source cannot journal the freeze: the order is refused.
    let before = w.mon(0).status(&EID).unwrap();
    w.order(&EID, 1, [1; 16]).unwrap();
    let order = w.net.pop_back().unwrap().bytes;
    assert_eq!(w.mon(0).handle_sds(&order), Err(Error::Random));
    assert_eq!(w.mon(0).status(&EID), Some(before));
    w.assert_intact_at(0, &EID, &img);
    // Not poisoned: with the source fixed the same order goes through.
    w.mon(0).platform().stuck_random = None;
    assert_eq!(w.mon(0).handle_sds(&order), Ok(()));
    w.run();
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
}
