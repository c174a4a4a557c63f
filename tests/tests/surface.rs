//! The monitor's API surface beyond the protocol: output flow control, the
//! session cap, a poisoned monitor, what `Debug` shows. Each test pins a
//! behaviour that mutation testing (make mutants) found no test checking.

use rewire_core::channel::{Channel, Cipher};
use rewire_core::crypto::Secret;
use rewire_core::{EnclaveState, Error, Event, SigningKey};
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
        Channel::client(&k, WALL0, Cipher::detect())
            .unwrap()
            .exchange(&[])
            .0
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
    until_streaming(&mut w);
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
    // The identity shows its host and SM key, and no secret either.
    let id = m.identity();
    let s = format!("{id:?}");
    assert_eq!(
        s,
        format!(
            "Identity {{ host: {:?}, sm_key: {:?}, .. }}",
            id.host_id(),
            id.sm_public()
        )
    );
    assert_eq!(id.sm_measurement(), SM_MEASUREMENT);
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

/// Deliver until host 0 has verified the target: both sessions are then
/// open and streaming. The clock does not move meanwhile.
fn until_streaming(w: &mut World) {
    while !w
        .events
        .iter()
        .any(|(h, _, e)| *h == 0 && *e == Event::TargetVerified)
    {
        w.collect(1);
        let p = w.net.pop_front().expect("stalled before streaming");
        w.deliver(p);
    }
}

fn aborted(w: &World, host: usize) -> Vec<Error> {
    w.events
        .iter()
        .filter_map(|(h, _, e)| match e {
            Event::Aborted(why) if *h == host => Some(*why),
            _ => None,
        })
        .collect()
}

/// Sessions time out after exactly `timeout_ms` without activity, not at
/// it and not before; an active session never does.
#[test]
fn sessions_time_out_after_the_timeout_and_not_at_it() {
    let (mut w, img) = world(1 << 20);
    w.order(&EID, 1, [1; 16]).unwrap();
    until_streaming(&mut w);
    w.tick_all();
    assert_eq!((aborted(&w, 0), aborted(&w, 1)), (vec![], vec![]));
    let importing = w.mon(1).status(&EID);
    assert!(importing.is_some());
    // What the target has said so far is lost (the source is left unpolled:
    // polling it streams more, which is activity).
    while w.mon(1).poll_output().is_some() {}
    let t = w.timeout_ms;
    w.clock.advance(t);
    w.tick_all();
    assert_eq!((aborted(&w, 0), aborted(&w, 1)), (vec![], vec![]));
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    // Neither side has given up: the target still holds its import and
    // has nothing to say.
    assert_eq!(w.mon(1).status(&EID), importing);
    assert_eq!(w.mon(1).poll_output(), None, "the target gave up");
    w.clock.advance(1);
    w.tick_all();
    assert_eq!(aborted(&w, 0), vec![Error::Timeout]);
    // The target dropped its half-received import.
    assert_eq!(w.mon(1).status(&EID).unwrap().state, EnclaveState::Gone); // safe: test
    w.run();
    w.assert_intact_at(0, &EID, &img);
}

/// A target whose import stalls tells the source why (REFUSE with
/// `Timeout`) before it drops the import.
#[test]
fn a_stalled_import_is_refused_with_timeout() {
    let (mut w, img) = world(1 << 20);
    w.order(&EID, 1, [1; 16]).unwrap();
    until_streaming(&mut w);
    w.clock.advance(w.timeout_ms + 1);
    assert_eq!(w.mon(1).tick(), Ok(()));
    // Only the target's words reach the source (which has not timed out).
    w.net.clear();
    w.collect(64);
    let to_source: Vec<_> = w.net.drain(..).filter(|p| p.from == Some(1)).collect();
    assert!(!to_source.is_empty());
    for p in to_source {
        w.deliver(p);
    }
    assert_eq!(aborted(&w, 0), vec![Error::Timeout]);
    w.run();
    w.assert_intact_at(0, &EID, &img);
}

/// A poisoned monitor (a commit failed) takes no more input of any kind.
#[test]
fn a_poisoned_monitor_refuses_all_input() {
    let (mut w, _) = world(1000);
    let other = *b"enclave-surface2";
    w.deploy(0, other, &Image::sample(34, 100), 1);
    w.order(&other, 2, [2; 16]).unwrap();
    let order = w.net.pop_back().unwrap().bytes;
    w.mon(0).platform().fail_next_write = true;
    assert_eq!(w.mon(0).handle_sds(&order), Err(Error::Storage));
    w.order(&EID, 1, [1; 16]).unwrap();
    let order = w.net.pop_back().unwrap().bytes;
    assert_eq!(w.mon(0).handle_sds(&order), Err(Error::Storage));
    assert_eq!(w.mon(0).tick(), Err(Error::Storage));
    let from = w.hosts[1].id;
    assert_eq!(
        w.mon(0).handle_peer(from, [3; 16], &[22, 3, 1]),
        Err(Error::Storage)
    );
}

/// READY's report data, as frameworks must compute it:
/// SHA-256("rewire/report-data/v2" ‖ request id ‖ the three section lengths,
/// each 8 bytes big-endian).
#[test]
fn report_data_is_the_documented_hash() {
    let rid = [7u8; 16];
    let lengths = [3000u64, 1 << 20, 0x0102_0304_0506_0708];
    let mut input = b"rewire/report-data/v2".to_vec();
    input.extend_from_slice(&rid);
    for l in &lengths {
        input.extend_from_slice(&l.to_be_bytes());
    }
    assert_eq!(
        rewire_core::monitor::report_data(&rid, &lengths),
        rewire_core::crypto::sha256(&input)
    );
    // Every length is bound.
    for i in 0..3 {
        let mut other = lengths;
        other[i] += 1;
        assert_ne!(
            rewire_core::monitor::report_data(&rid, &other),
            rewire_core::monitor::report_data(&rid, &lengths)
        );
    }
}

/// The SDS: registering the same enclave again returns the same policy;
/// any other registration of it is refused, also after it moved.
#[test]
fn sds_registers_an_enclave_again_only_unchanged() {
    let (mut w, img) = world(1000);
    let (h0, h1) = (w.hosts[0].id, w.hosts[1].id);
    let m = img.measurement();
    let policy = w.sds().enclave(&EID).unwrap().policy.clone();
    assert_eq!(
        w.sds()
            .register_enclave(EID, m, rewire_core::wire::PLATFORM_RISCV64, 1, h0),
        Ok(policy)
    );
    let mut other = m;
    other[0] ^= 1;
    assert_eq!(
        w.sds()
            .register_enclave(EID, other, rewire_core::wire::PLATFORM_RISCV64, 1, h0),
        Err(Error::Busy)
    );
    assert_eq!(
        w.sds()
            .register_enclave(EID, m, rewire_core::wire::PLATFORM_RISCV64, 2, h0),
        Err(Error::Busy)
    );
    assert_eq!(
        w.sds()
            .register_enclave(EID, m, rewire_core::wire::PLATFORM_RISCV64, 1, h1),
        Err(Error::Busy)
    );
    assert_eq!(
        w.sds().enclaves().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![EID]
    );
    w.order(&EID, 1, [1; 16]).unwrap();
    w.run();
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
    // Where it is now, but at epoch 1: not the registration it was.
    assert_eq!(
        w.sds()
            .register_enclave(EID, m, rewire_core::wire::PLATFORM_RISCV64, 1, h1),
        Err(Error::Busy)
    );
    let shown = format!("{:?}", w.sds());
    assert!(
        shown.starts_with("Sds {") && shown.contains("hosts: 3"),
        "{shown}"
    );
}

/// An endorsement names at most MAX_SM_MEASUREMENTS SM builds.
#[test]
fn sds_endorsement_takes_up_to_the_cap_of_sm_builds() {
    let (mut w, _) = world(1000);
    let cert = w.mon(0).identity().certificate().to_vec();
    let sm = w.mon(0).identity().sm_measurement();
    let cap = rewire_core::wire::MAX_SM_MEASUREMENTS;
    let mut builds = vec![sm; cap];
    for (i, b) in builds.iter_mut().enumerate().skip(1) {
        b[0] = i as u8;
    }
    assert!(w
        .sds()
        .endorse_host(
            &cert,
            builds.clone(),
            rewire_core::wire::PLATFORM_RISCV64,
            2,
            0,
            u64::MAX
        )
        .is_ok());
    builds.push([0xee; 32]);
    assert_eq!(
        w.sds().endorse_host(
            &cert,
            builds,
            rewire_core::wire::PLATFORM_RISCV64,
            2,
            0,
            u64::MAX
        ),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        w.sds().endorse_host(
            &cert,
            vec![],
            rewire_core::wire::PLATFORM_RISCV64,
            2,
            0,
            u64::MAX
        ),
        Err(Error::InvalidArgument)
    );
}

/// The SDS withdraws an order only while it is unsent and only by its own
/// request id; after the source committed it is too late.
#[test]
fn sds_withdraws_only_an_unsent_order_by_its_own_id() {
    let (mut w, img) = world(1000);
    w.order(&EID, 1, [1; 16]).unwrap();
    w.net.pop_back().expect("the order, never sent");
    assert_eq!(w.sds().withdraw(&EID, &[2; 16]), Err(Error::InvalidState));
    assert_eq!(
        w.sds().withdraw(&[9; 16], &[1; 16]),
        Err(Error::UnknownEnclave)
    );
    assert!(w.sds().enclave(&EID).unwrap().migration.is_some());
    assert_eq!(w.sds().withdraw(&EID, &[1; 16]), Ok(()));
    assert!(w.sds().enclave(&EID).unwrap().migration.is_none());
    assert_eq!(w.sds().withdraw(&EID, &[1; 16]), Err(Error::InvalidState));
    // Ordered again; once the SDS holds the source's RELEASE, too late.
    w.order(&EID, 1, [3; 16]).unwrap();
    while !matches!(
        w.sds()
            .enclave(&EID)
            .unwrap()
            .migration
            .as_ref()
            .map(|m| &m.phase),
        Some(rewire_core::sds::MigrationPhase::Released(_))
    ) {
        w.collect(1);
        let p = w.net.pop_front().expect("stalled before RELEASE");
        w.deliver(p);
    }
    assert_eq!(w.sds().withdraw(&EID, &[3; 16]), Err(Error::InvalidState));
    w.run();
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
}

/// A monitor keeps at most 1024 unpolled events (a caller that never polls
/// cannot make it grow without bound); the oldest are kept.
#[test]
fn unpolled_events_are_capped_at_1024() {
    let (mut w, img) = world(100);
    // Each refused migration: Validated, Frozen, then Aborted(Timeout).
    let mut n = 0u32;
    while n * 3 < 1024 + 6 {
        let rid = [
            (n % 251) as u8,
            (n / 251) as u8,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
        ];
        w.order(&EID, 1, rid).unwrap();
        let order = w.net.pop_back().unwrap().bytes;
        w.mon(0).handle_sds(&order).unwrap();
        w.clock.advance(w.timeout_ms + 1);
        w.mon(0).tick().unwrap();
        // The ABORT settles the order at the SDS; events stay unpolled.
        while let Some(o) = w.mon(0).poll_output() {
            if o.dest == rewire_core::Dest::Sds {
                w.sds().handle(&o.bytes).unwrap();
            }
        }
        n += 1;
    }
    let mut events = Vec::new();
    while let Some(e) = w.mon(0).poll_event() {
        events.push(e);
    }
    assert_eq!(events.len(), 1024);
    assert_eq!(events[0].1, Event::Validated);
    assert_eq!(events[2].1, Event::Aborted(Error::Timeout));
    w.assert_intact_at(0, &EID, &img);
}

fn until_released(w: &mut World) -> rewire_core::sds::Migration {
    loop {
        if let Some(m) = w.sds().enclave(&EID).unwrap().migration.clone() {
            if matches!(m.phase, rewire_core::sds::MigrationPhase::Released(_)) {
                return m;
            }
        }
        w.collect(1);
        let p = w.net.pop_front().expect("stalled before RELEASE");
        w.deliver(p);
    }
}

/// A released migration keeps the order it released, and no other: a
/// RELEASE for an order the SDS had replaced keeps none.
#[test]
fn sds_keeps_the_order_of_the_released_request_only() {
    let (mut w, img) = world(1000);
    w.order(&EID, 1, [1; 16]).unwrap();
    let order = w.net.back().unwrap().bytes.clone();
    let m = until_released(&mut w);
    // The migration from epoch 0 (the RELEASE names epoch 1).
    assert_eq!((m.request_id, m.order, m.epoch), ([1; 16], order, 0));
    assert_eq!(w.sds().enclave(&EID).unwrap().epoch, 1);
    w.run();
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);

    let (mut w, img) = world(1000);
    w.order(&EID, 1, [1; 16]).unwrap();
    w.sds().withdraw(&EID, &[1; 16]).unwrap();
    w.order(&EID, 2, [2; 16]).unwrap();
    w.net.pop_back().expect("the second order, never sent");
    // The first order was on its way: the source acts on it.
    let m = until_released(&mut w);
    assert_eq!(m.request_id, [1; 16]);
    assert!(m.order.is_empty(), "not the replaced order's bytes");
    w.run();
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
}

/// Every output of monitor `h` meant for the SDS, handed to the SDS; what
/// it answered to each.
fn to_sds(w: &mut World, h: usize) -> Vec<Result<rewire_core::LedgerEvent, Error>> {
    let mut answers = Vec::new();
    while let Some(o) = w.mon(h).poll_output() {
        if o.dest == rewire_core::Dest::Sds {
            answers.push(w.sds().handle(&o.bytes));
        }
    }
    answers
}

/// The SDS clears a pending ABORT only on the DROPPED acknowledgement of
/// that request from that target, once.
#[test]
fn sds_clears_exactly_the_acknowledged_cleanup() {
    let (mut w, _) = world(100);
    let other = *b"enclave-surface2";
    w.deploy(0, other, &Image::sample(34, 100), 1);
    // Two migrations to host 1, both aborted by the source (timeout) once
    // the target has accepted them.
    w.order(&EID, 1, [1; 16]).unwrap();
    w.order(&other, 1, [2; 16]).unwrap();
    while w
        .events
        .iter()
        .filter(|(h, _, e)| *h == 1 && *e == Event::OfferAccepted)
        .count()
        < 2
    {
        w.collect(1);
        let p = w.net.pop_front().expect("stalled before the offers");
        w.deliver(p);
    }
    w.net.clear();
    w.clock.advance(w.timeout_ms + 1);
    w.mon(0).tick().unwrap();
    assert_eq!(to_sds(&mut w, 0).len(), 2);
    assert!(!w.sds().is_settled_all());
    // The SDS sends each ABORT to the target, which acknowledges it.
    let aborts = w.sds().resolution();
    assert_eq!(aborts.len(), 2);
    let owed: Vec<Vec<u8>> = aborts.iter().map(|(_, m)| m.clone()).collect();
    let t = w.hosts[1].id;
    let mut acks = Vec::new();
    for (host, msg) in aborts {
        assert_eq!(host, t);
        let _ = w.mon(1).handle_sds(&msg);
        while let Some(o) = w.mon(1).poll_output() {
            if o.dest == rewire_core::Dest::Sds {
                acks.push(o.bytes);
            }
        }
    }
    assert_eq!(acks.len(), 2);
    // The first clears its own request only; again, it is a duplicate.
    assert!(matches!(
        w.sds().handle(&acks[0]),
        Ok(rewire_core::LedgerEvent::Dropped { .. })
    ));
    assert_eq!(w.sds().handle(&acks[0]), Err(Error::Duplicate));
    let left = w.sds().resolution();
    assert_eq!(left.len(), 1, "the other request's ABORT is still owed");
    assert_eq!(left[0].1, owed[1], "the other request's, not this one's");
    assert!(matches!(
        w.sds().handle(&acks[1]),
        Ok(rewire_core::LedgerEvent::Dropped { .. })
    ));
    assert!(w.sds().is_settled_all());
}

/// An ACTIVE the ledger already holds is a duplicate, not a second move.
#[test]
fn sds_takes_an_active_acknowledgement_once() {
    let (mut w, img) = world(1000);
    w.order(&EID, 1, [1; 16]).unwrap();
    let active = loop {
        w.collect(1);
        let p = w.net.pop_front().expect("stalled before ACTIVE");
        if matches!(p.to, To::Sds) && p.kind() == "active" {
            break p.bytes.clone();
        }
        w.deliver(p);
    };
    assert!(matches!(
        w.sds().handle(&active),
        Ok(rewire_core::LedgerEvent::Activated { epoch: 1, .. })
    ));
    assert_eq!(w.sds().handle(&active), Err(Error::Duplicate));
    assert!(w.sds().is_settled_all());
    w.run();
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
}

/// An ABORT the target never acknowledges is re-sent for eight resolution
/// rounds, then given up (the target drops a stale import on its own).
#[test]
fn sds_resends_an_unacknowledged_abort_for_eight_rounds() {
    let (mut w, img) = world(100);
    w.order(&EID, 1, [1; 16]).unwrap();
    let order = w.net.pop_back().unwrap().bytes;
    w.mon(0).handle_sds(&order).unwrap();
    w.clock.advance(w.timeout_ms + 1);
    w.mon(0).tick().unwrap();
    assert_eq!(to_sds(&mut w, 0).len(), 1);
    let t = w.hosts[1].id;
    for round in 0..8 {
        let r = w.sds().resolution();
        assert_eq!(r.len(), 1, "round {round}");
        assert_eq!(r[0].0, t);
    }
    assert!(w.sds().resolution().is_empty());
    assert!(w.sds().is_settled_all());
    w.assert_intact_at(0, &EID, &img);
}

/// Audit asks the enclave's recorded host and the other end of an open
/// migration, whichever side the ledger has it on.
#[test]
fn sds_audit_asks_both_ends_of_an_open_migration() {
    let (mut w, img) = world(1000);
    let mut both = vec![w.hosts[0].id, w.hosts[1].id];
    both.sort();
    let asked = |w: &mut World| {
        let mut h: Vec<_> = rewire_core::Sds::audit(w.sds())
            .into_iter()
            .map(|(h, _)| h)
            .collect();
        h.sort();
        h
    };
    assert_eq!(
        asked(&mut w),
        vec![w.hosts[0].id],
        "nothing open: the host only"
    );
    w.order(&EID, 1, [1; 16]).unwrap();
    assert_eq!(asked(&mut w), both, "ordered: at the source");
    until_released(&mut w);
    assert_eq!(asked(&mut w), both, "released: at the target");
    w.run();
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
}

/// Late bytes on a channel that finished are dropped quietly, also once
/// later channels have finished (the monitor remembers the last 64).
#[test]
fn late_bytes_on_finished_channels_are_dropped_quietly() {
    let (mut w, img) = world(1000);
    let other = *b"enclave-surface2";
    let img2 = Image::sample(34, 100);
    w.deploy(0, other, &img2, 1);
    w.order(&EID, 1, [1; 16]).unwrap();
    w.run();
    w.order(&other, 1, [2; 16]).unwrap();
    w.run();
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
    assert_eq!(w.assert_exactly_one(&other, &img2), 1);
    w.tick_all(); // reaps finished sessions
    let from = w.hosts[0].id;
    let late = [23, 3, 3, 0, 1, 0];
    assert_eq!(w.mon(1).handle_peer(from, [1; 16], &late), Ok(()));
    assert_eq!(w.mon(1).handle_peer(from, [2; 16], &late), Ok(()));
    let shown = format!("{:?}", w.mon_ref(1));
    assert!(
        shown.contains("incoming: 0"),
        "no session opened for them: {shown}"
    );
}
