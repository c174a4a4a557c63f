//! Every security check, attacked. Each test performs the attack, asserts the
//! typed error, and asserts that the enclave is still runnable at the source
//! with its code, state and sealed data intact (G6), and never forked (G2).

use rewire_core::crypto::Secret;
use rewire_core::wire::{Decision, DecisionKind, Message, SignedBody};
use rewire_core::{EnclaveState, Error, SigningKey};
use rewire_tests::*;

const EID: [u8; 16] = *b"enclave-attacked";

fn world() -> (World, Image) {
    let mut w = World::new(&[2, 2, 2]);
    let img = Image::sample(9, 40_000);
    w.deploy(0, EID, &img, 2);
    (w, img)
}

fn rogue_key() -> SigningKey {
    SigningKey::from_seed(Secret::from_bytes([0x66; 32])).unwrap()
}

/// Run the faithful network, checking no fork after every delivery.
fn run(w: &mut World) {
    w.run_with(|w| w.assert_no_fork(&EID));
}

/// Deliver a crafted order to the source and expect `e` from it.
fn order_refused(w: &mut World, order: Vec<u8>, e: Error, img: &Image) {
    w.send_to(0, order);
    run(w);
    assert!(w.has_error(0, e), "want {e:?}, got {:?}", w.errors);
    w.assert_intact_at(0, &EID, img);
    assert_eq!(w.mon(0).status(&EID).unwrap().state, EnclaveState::Running);
    // Nothing reached the target.
    assert!(w.mon(1).status(&EID).is_none());
}

#[test]
fn g1_bad_sds_signature() {
    let (mut w, img) = world();
    let req = w.request(&EID, 1, [1; 16]);
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    let Message::Order(mut o) = Message::decode(&order).unwrap() else {
        panic!()
    };
    let n = o.request.len();
    o.request[n - 5] ^= 0x01; // inside the signature
    order_refused(
        &mut w,
        Message::Order(o).encode().unwrap(),
        Error::BadSignature,
        &img,
    );
}

#[test]
fn g1_request_signed_by_unknown_key() {
    let (mut w, img) = world();
    let req = w.request(&EID, 1, [1; 16]);
    let order = w.craft_order(&rogue_key(), &req, 0, 1);
    order_refused(&mut w, order, Error::UnknownSigner, &img);
}

#[test]
fn g1_request_naming_another_source() {
    let (mut w, img) = world();
    let mut req = w.request(&EID, 1, [1; 16]);
    req.source = w.hosts[2].id;
    let order = w.craft_order(&sds_key(), &req, 2, 1);
    order_refused(&mut w, order, Error::WrongSource, &img);
}

#[test]
fn g1_request_naming_another_target_than_endorsed() {
    let (mut w, img) = world();
    let req = w.request(&EID, 1, [1; 16]);
    // Target endorsement of host 2 with a request naming host 1.
    let order = w.craft_order(&sds_key(), &req, 0, 2);
    order_refused(&mut w, order, Error::WrongTarget, &img);
}

#[test]
fn g1_stale_epoch() {
    let (mut w, img) = world();
    let mut req = w.request(&EID, 1, [1; 16]);
    req.epoch = 5;
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    order_refused(&mut w, order, Error::StaleEpoch, &img);
}

#[test]
fn g1_deadline_passed() {
    let (mut w, img) = world();
    let mut req = w.request(&EID, 1, [1; 16]);
    req.deadline = WALL0 - 1;
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    order_refused(&mut w, order.clone(), Error::DeadlinePassed, &img);
    // The expired request was settled for good: it can never start later.
    w.send_to(0, order);
    run(&mut w);
    assert!(w.has_error(0, Error::Replay));
    w.assert_intact_at(0, &EID, &img);
}

#[test]
fn g1_target_atl_below_policy() {
    let mut w = World::new(&[2, 1, 2]);
    let img = Image::sample(9, 1000);
    w.deploy(0, EID, &img, 2);
    // The SDS itself refuses to order it...
    assert_eq!(w.order(&EID, 1, [1; 16]), Err(Error::AtlTooLow));
    // ...and the source refuses a signed request that asks for it anyway.
    let req = w.request(&EID, 1, [1; 16]);
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    order_refused(&mut w, order, Error::AtlTooLow, &img);
}

#[test]
fn g1_cross_platform_order_refused() {
    // One SDS, a RISC-V and an aarch64 host: the SDS will not order the
    // RISC-V enclave to the aarch64 host, and a signed order for it anyway
    // (a buggy or bypassed SDS) is refused by the monitors.
    use rewire_core::wire::{PLATFORM_AARCH64, PLATFORM_RISCV64};
    let hosts = [
        (PLATFORM_RISCV64, Some(PLATFORM_RISCV64)),
        (PLATFORM_AARCH64, Some(PLATFORM_AARCH64)),
        (PLATFORM_RISCV64, Some(PLATFORM_RISCV64)),
    ];
    let mut w = World::with_platforms(&[2, 2, 2], &hosts);
    let img = Image::sample(9, 40_000);
    w.deploy(0, EID, &img, 2);
    assert_eq!(w.order(&EID, 1, [1; 16]), Err(Error::PlatformMismatch));
    // The SDS will not re-endorse the Arm host as a RISC-V one either.
    let cert = rewire_tests::keys::identity(1).certificate().to_vec();
    let again = w.sds().endorse_host(
        &cert,
        vec![SM_MEASUREMENT],
        PLATFORM_RISCV64,
        2,
        WALL0,
        WALL0 + 10,
    );
    assert_eq!(again, Err(Error::PlatformMismatch));
    let req = w.request(&EID, 1, [1; 16]);
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    order_refused(&mut w, order, Error::PlatformMismatch, &img);
    // A host of the enclave's platform takes it.
    w.order(&EID, 2, [2; 16]).unwrap();
    run(&mut w);
    assert_eq!(w.assert_exactly_one(&EID, &img), 2);
}

#[test]
fn g1_mislabelled_host_cannot_receive_or_install() {
    // The operator endorsed an aarch64 host (which knows what it runs) as
    // riscv64. The SDS orders a RISC-V enclave there, every signed object
    // agreeing; the target refuses and the enclave runs on at the source.
    use rewire_core::wire::{PLATFORM_AARCH64, PLATFORM_RISCV64};
    let hosts = [
        (PLATFORM_RISCV64, Some(PLATFORM_RISCV64)),
        (PLATFORM_RISCV64, Some(PLATFORM_AARCH64)),
        (PLATFORM_RISCV64, Some(PLATFORM_RISCV64)),
    ];
    let mut w = World::with_platforms(&[2, 2, 2], &hosts);
    let img = Image::sample(9, 40_000);
    w.deploy(0, EID, &img, 2);
    w.order(&EID, 1, [1; 16]).unwrap();
    run(&mut w);
    assert!(w.has_error(1, Error::PlatformMismatch), "{:?}", w.errors);
    w.assert_intact_at(0, &EID, &img);
    assert_eq!(w.mon(0).status(&EID).unwrap().state, EnclaveState::Running);
    assert!(w.running_copies(&EID).len() == 1);
    // Nor will it install a RISC-V enclave the SDS placed on it.
    let other = *b"other-enclave-01";
    let h1 = w.hosts[1].id;
    let policy = w
        .sds()
        .register_enclave(other, img.measurement(), PLATFORM_RISCV64, 1, h1)
        .unwrap();
    let r = w.install_enclave(
        1,
        other,
        img.code.clone(),
        img.state.clone(),
        &img.sealed,
        &policy,
    );
    assert_eq!(r, Err(Error::PlatformMismatch));
    assert!(w.mon(1).status(&other).is_none());
}

#[test]
fn g1_no_trusted_time_fails_closed() {
    let (mut w, img) = world();
    w.mon(0).platform().wall_base = None;
    w.order(&EID, 1, [1; 16]).unwrap();
    run(&mut w);
    assert!(w.has_error(0, Error::NoTrustedTime));
    w.mon(0).platform().wall_base = Some(WALL0);
    w.assert_intact_at(0, &EID, &img);
}

#[test]
fn g1_garbage_order() {
    let (mut w, img) = world();
    order_refused(&mut w, vec![0x84, 0x01, 0x02], Error::Decode, &img);
    let mut w2 = world().0;
    w2.send_to(0, vec![0xff; 10]);
    run(&mut w2);
    assert!(w2.errors.iter().all(|(h, _)| *h == 0) && !w2.errors.is_empty());
}

#[test]
fn g1_target_sm_not_endorsed() {
    let (mut w, img) = world();
    w.reboot_with_sm(1, [0xbb; 32]); // host 1 now runs an SM build the SDS never endorsed
    w.order(&EID, 1, [1; 16]).unwrap();
    run(&mut w);
    assert!(w.has_error(0, Error::SmNotEndorsed), "{:?}", w.errors);
    w.assert_intact_at(0, &EID, &img);
}

#[test]
fn g1_tls_peer_is_a_third_endorsed_host() {
    // The relay sends the source's connection to host 2, which is validly
    // endorsed and (compromised) accepts an offer naming another target.
    let (mut w, img) = world();
    w.mon(2).faults.accept_any_target = true;
    w.redirect.insert(1, 2);
    w.order(&EID, 1, [1; 16]).unwrap();
    run(&mut w);
    assert!(w.has_error(0, Error::PeerMismatch), "{:?}", w.errors);
    w.assert_intact_at(0, &EID, &img);
}

#[test]
fn g1_honest_third_host_refuses_offer_for_another_target() {
    let (mut w, img) = world();
    w.redirect.insert(1, 2);
    w.order(&EID, 1, [1; 16]).unwrap();
    run(&mut w);
    assert!(w.has_error(2, Error::WrongTarget), "{:?}", w.errors);
    assert!(w.has_error(0, Error::WrongTarget), "{:?}", w.errors);
    w.assert_intact_at(0, &EID, &img);
    assert!(w.mon(2).status(&EID).is_none());
}

#[test]
fn g4_enclaves_with_the_same_code_cannot_open_each_others_sealed_data() {
    // Two enclaves of one build on one host: sealing keys bind the enclave
    // id, not only the measurement.
    let (mut w, img) = world();
    let twin = *b"enclave-the-twin";
    let twin_img = Image {
        sealed: b"the twin's own secret".to_vec(),
        ..img.clone()
    };
    w.deploy(0, twin, &twin_img, 2);
    assert_eq!(twin_img.measurement(), img.measurement());
    let m = w.mon_ref(0);
    let mine = &m.enclave_host_ref().get(&EID).unwrap().sealed;
    let theirs = &m.enclave_host_ref().get(&twin).unwrap().sealed;
    assert_eq!(m.unseal_data(&twin, mine).unwrap_err(), Error::Unseal);
    assert_eq!(m.unseal_data(&EID, theirs).unwrap_err(), Error::Unseal);
    w.assert_intact_at(0, &EID, &img);
    w.assert_intact_at(0, &twin, &twin_img);
}

#[test]
fn g4_tampered_tls_record_on_the_wire() {
    let (mut w, img) = world();
    w.order(&EID, 1, [1; 16]).unwrap();
    // Corrupt the 6th packet between the monitors.
    let mut n = 0;
    loop {
        w.collect(4);
        let Some(mut p) = w.net.pop_front() else {
            break;
        };
        if matches!(p.to, To::Host { conn: Some(_), .. }) {
            n += 1;
            if n == 6 {
                let l = p.bytes.len();
                p.bytes[l - 3] ^= 0x40;
            }
        }
        w.deliver(p);
        w.assert_no_fork(&EID);
    }
    assert!(w.errors.iter().any(|e| e.1 == Error::Tls), "{:?}", w.errors);
    w.settle();
    w.assert_intact_at(0, &EID, &img);
    w.assert_exactly_one(&EID, &img);
}

#[test]
fn g4_truncated_stream() {
    let (mut w, img) = world();
    w.mon(0).faults.truncate_after = Some(1);
    w.order(&EID, 1, [1; 16]).unwrap();
    run(&mut w);
    assert!(w.has_error(1, Error::Truncated), "{:?}", w.errors);
    w.assert_intact_at(0, &EID, &img);
}

#[test]
fn g4_channel_closed_mid_stream() {
    let (mut w, img) = world();
    w.order(&EID, 1, [1; 16]).unwrap();
    // Deliver until streaming has started, then the relay cuts the connection.
    for _ in 0..12 {
        w.collect(1);
        if let Some(p) = w.net.pop_front() {
            w.deliver(p);
        }
    }
    w.net.clear();
    let conn = [1u8; 16];
    w.mon(1).handle_peer_closed(conn).unwrap();
    w.mon(0).handle_peer_closed(conn).unwrap();
    w.settle();
    w.assert_intact_at(0, &EID, &img);
    w.assert_exactly_one(&EID, &img);
    assert_ne!(
        w.mon(1).status(&EID).map(|s| s.state),
        Some(EnclaveState::Running)
    );
}

#[test]
fn g4_code_measurement_mismatch() {
    let (mut w, img) = world();
    let mut other = img.code.clone();
    other[20] ^= 1;
    w.mon(0).faults.replace_code = Some(other);
    w.order(&EID, 1, [1; 16]).unwrap();
    run(&mut w);
    assert!(w.has_error(1, Error::MeasurementMismatch), "{:?}", w.errors);
    w.mon(0).faults.replace_code = None;
    w.assert_intact_at(0, &EID, &img);
}

#[test]
fn g4_sealed_data_tampered_in_source_storage() {
    let (mut w, img) = world();
    w.mon(0)
        .enclave_host()
        .enclaves
        .get_mut(&EID)
        .unwrap()
        .sealed[50] ^= 1;
    w.order(&EID, 1, [1; 16]).unwrap();
    run(&mut w);
    assert!(w.has_error(0, Error::Unseal), "{:?}", w.errors);
    // Runnable at the source, code and state intact (the sealed blob is what
    // the adversary made of it, and still does not open).
    assert_eq!(w.running_copies(&EID), vec![0]);
    assert!(w.mon(0).may_run(&EID));
    let e = w.mon(0).enclave_host_ref().get(&EID).unwrap().clone();
    assert!(e.code == img.code && e.state == img.state);
    assert!(w.mon(1).enclave_host_ref().get(&EID).is_none());
    // The target took the in-channel ABORT as the source's decision (its
    // import dropped by a verified ABORT, not by a failure), then met the
    // REFUSE that closes the channel.
    let at_target: Vec<Error> = w
        .errors
        .iter()
        .filter(|(h, _)| *h == 1)
        .map(|(_, e)| *e)
        .collect();
    assert_eq!(at_target, vec![Error::ChannelClosed], "{:?}", w.errors);
    assert!(w
        .events
        .iter()
        .any(|(h, _, e)| *h == 1 && *e == rewire_core::Event::Dropped));
}

/// A sealed blob cut at a chunk boundary (plus 16 junk bytes, so its length
/// still parses), or replaced by a header and one junk chunk, is refused: the
/// source opens every chunk, including an empty last one.
#[test]
fn g4_sealed_data_truncated_in_source_storage() {
    for cut in ["chunk boundary", "emptied"] {
        let (mut w, mut img) = world();
        img.sealed = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let blob = w.mon(0).seal_data(&EID, &img.sealed).unwrap();
        let keep = match cut {
            "chunk boundary" => rewire_core::seal::HEADER_LEN + 2 * (16384 + 16),
            _ => rewire_core::seal::HEADER_LEN,
        };
        let mut forged = blob[..keep].to_vec();
        forged.extend_from_slice(&[0x42; 16]);
        w.mon(0)
            .enclave_host()
            .enclaves
            .get_mut(&EID)
            .unwrap()
            .sealed = forged.clone();
        w.order(&EID, 1, [1; 16]).unwrap();
        run(&mut w);
        assert!(w.has_error(0, Error::Unseal), "{cut}: {:?}", w.errors);
        assert_eq!(w.running_copies(&EID), vec![0], "{cut}");
        assert!(w.mon(0).may_run(&EID));
        assert_eq!(
            w.mon(0).enclave_host_ref().get(&EID).unwrap().state,
            img.state
        );
        assert_ne!(
            w.mon(1).status(&EID).map(|s| s.state),
            Some(EnclaveState::Running)
        );
    }
}

#[test]
fn g2_ready_for_another_request() {
    let (mut w, img) = world();
    w.mon(1).faults.ready_wrong_request = true;
    w.order(&EID, 1, [1; 16]).unwrap();
    run(&mut w);
    assert!(w.has_error(0, Error::WrongRequest), "{:?}", w.errors);
    w.assert_intact_at(0, &EID, &img);
    // The target's pending copy never ran, and the source's in-channel ABORT dropped it.
    assert_eq!(w.mon(1).status(&EID).unwrap().state, EnclaveState::Gone);
    assert!(w.mon(1).enclave_host_ref().get(&EID).is_none());
    w.settle();
    w.assert_exactly_one(&EID, &img);
    assert_eq!(w.mon(1).status(&EID).unwrap().state, EnclaveState::Gone);
}

/// Run until the target holds a PENDING copy; hold back everything after READY.
fn until_pending(w: &mut World) {
    loop {
        w.collect(4);
        if w.mon(1).status(&EID).map(|s| s.state) == Some(EnclaveState::Pending) {
            w.net.clear();
            return;
        }
        let p = w.net.pop_front().expect("migration stalled before PENDING");
        w.deliver(p);
        w.assert_no_fork(&EID);
    }
}

#[test]
fn g2_release_forged_by_non_source() {
    let (mut w, img) = world();
    w.order(&EID, 1, [1; 16]).unwrap();
    until_pending(&mut w);
    let req = w.request(&EID, 1, [1; 16]);
    for kind in [DecisionKind::Release, DecisionKind::Abort] {
        let d = Decision {
            kind,
            request_id: req.request_id,
            enclave_id: EID,
            epoch: 1,
            source: w.hosts[0].id,
            target: w.hosts[1].id,
        };
        let signed = d.sign(&rogue_key()).unwrap();
        let m = match kind {
            DecisionKind::Release => Message::Release(signed),
            DecisionKind::Abort => Message::Abort(signed),
        };
        w.send_to(1, m.encode().unwrap());
        run(&mut w);
        assert!(w.has_error(1, Error::NotSource), "{kind:?}: {:?}", w.errors);
        assert_eq!(w.mon(1).status(&EID).unwrap().state, EnclaveState::Pending);
        assert!(!w.mon(1).enclave_host_ref().is_running(&EID));
    }
    // The source is frozen (not runnable) but never lost: after the quiet
    // period it aborted (no READY reached it) and runs again.
    assert!(w.running_copies(&EID).is_empty());
    w.settle();
    w.assert_intact_at(0, &EID, &img);
    w.assert_exactly_one(&EID, &img);
}

#[test]
fn g2_request_replayed_after_success() {
    let (mut w, img) = world();
    w.order(&EID, 1, [1; 16]).unwrap();
    let order = w.net.back().unwrap().bytes.clone();
    run(&mut w);
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
    w.errors.clear();
    w.send_to(0, order);
    run(&mut w);
    assert!(w.has_error(0, Error::Replay), "{:?}", w.errors);
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
}

#[test]
fn g2_old_request_replayed_after_round_trip() {
    // A→B then B→A: the first order (epoch 0) replayed at A is stale.
    let (mut w, img) = world();
    w.order(&EID, 1, [1; 16]).unwrap();
    let first = w.net.back().unwrap().bytes.clone();
    run(&mut w);
    w.order(&EID, 0, [2; 16]).unwrap();
    run(&mut w);
    assert_eq!(w.assert_exactly_one(&EID, &img), 0);
    w.errors.clear();
    w.send_to(0, first);
    run(&mut w);
    assert!(
        w.has_error(0, Error::Replay) || w.has_error(0, Error::StaleEpoch),
        "{:?}",
        w.errors
    );
    w.assert_intact_at(0, &EID, &img);
}

#[test]
fn g2_duplicated_sds_messages_are_never_acted_on_twice() {
    let (mut w, img) = world();
    w.order(&EID, 1, [1; 16]).unwrap();
    // Duplicate every message that does not ride in the TLS channel.
    loop {
        w.collect(4);
        let Some(p) = w.net.pop_front() else { break };
        if !matches!(p.to, To::Host { conn: Some(_), .. }) {
            w.deliver(p.clone());
        }
        w.deliver(p);
        w.assert_no_fork(&EID);
    }
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
    assert_eq!(
        w.ledger.len(),
        2,
        "each proof moved the ledger once: {:?}",
        w.ledger
    );
    assert!(w.has_error(0, Error::Duplicate));
    assert!(w.has_error(SDS, Error::Duplicate) || w.has_error(SDS, Error::WrongRequest));
    // Forwarded RELEASE, duplicated after completion: the target re-acks, nothing else.
    let sds_msgs = w.sds().resolution();
    assert!(sds_msgs.is_empty());
}

#[test]
fn g2_duplicated_or_reordered_tls_records_abort_cleanly() {
    for mode in ["duplicate", "reorder"] {
        let (mut w, img) = world();
        w.order(&EID, 1, [1; 16]).unwrap();
        let mut n = 0;
        let mut reordered = false;
        loop {
            w.collect(4);
            let Some(p) = w.net.pop_front() else { break };
            if matches!(p.to, To::Host { conn: Some(_), .. }) {
                n += 1;
                if mode == "duplicate" && n == 5 {
                    w.deliver(p.clone());
                } else if mode == "reorder" && n >= 5 && !reordered {
                    // A later record on the same link overtakes this one.
                    if let Some(q) = w.net.iter().position(|q| q.to == p.to) {
                        let later = w.net.remove(q).unwrap();
                        w.deliver(later);
                        reordered = true;
                    }
                }
            }
            w.deliver(p);
            w.assert_no_fork(&EID);
        }
        assert!(mode == "duplicate" || reordered, "no record was reordered");
        assert!(
            w.errors.iter().any(|e| e.1 == Error::Tls),
            "{mode}: {:?}",
            w.errors
        );
        w.settle();
        w.assert_exactly_one(&EID, &img);
    }
}

#[test]
fn g5_source_journal_rolled_back_after_commit() {
    let (mut w, img) = world();
    w.order(&EID, 1, [1; 16]).unwrap();
    run(&mut w);
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
    // The adversary restores every older journal copy at the source; each is refused.
    w.crash(0);
    let history = w.hosts[0]
        .parked
        .as_ref()
        .unwrap()
        .0
        .journal_history
        .clone();
    assert!(history.len() >= 3);
    for old in &history[..history.len() - 1] {
        w.hosts[0].parked.as_mut().unwrap().0.journal = Some(old.clone());
        assert_eq!(w.restart(0), Err(Error::Rollback));
        assert!(
            w.running_copies(&EID) == vec![1],
            "the old copy must not resume"
        );
    }
    // Deleting the journal is a rollback too.
    w.hosts[0].parked.as_mut().unwrap().0.journal = None;
    assert_eq!(w.restart(0), Err(Error::Rollback));
    // Garbage in place of the journal.
    w.hosts[0].parked.as_mut().unwrap().0.journal = Some(vec![7; 300]);
    assert_eq!(w.restart(0), Err(Error::Rollback));
    // The true latest copy works.
    w.hosts[0].parked.as_mut().unwrap().0.journal = history.last().cloned();
    w.restart(0).unwrap();
    assert_eq!(w.mon(0).status(&EID).unwrap().state, EnclaveState::Migrated);
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
}

#[test]
fn g5_target_journal_rolled_back_to_pending() {
    let (mut w, img) = world();
    w.order(&EID, 1, [1; 16]).unwrap();
    run(&mut w);
    w.crash(1);
    let history = w.hosts[1]
        .parked
        .as_ref()
        .unwrap()
        .0
        .journal_history
        .clone();
    let pending = history[history.len() - 2].clone();
    w.hosts[1].parked.as_mut().unwrap().0.journal = Some(pending);
    assert_eq!(w.restart(1), Err(Error::Rollback));
    w.hosts[1].parked.as_mut().unwrap().0.journal = history.last().cloned();
    w.restart(1).unwrap();
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
}

#[test]
fn g6_every_error_code_is_stable_and_described() {
    for e in Error::ALL {
        assert_eq!(Error::from_code(e.code()), Some(*e));
        assert!(!e.as_str().is_empty());
        assert!(format!("{e}").contains(&e.code().to_string()));
    }
}

/// The enclave framework fails to resume right after an ABORT was committed
/// (e.g. on timeout), and the target's READY arrives late: the source must
/// never also commit (one request, ABORT and RELEASE both signed, would lose
/// the enclave). It retries the resume and ends with exactly one copy.
#[test]
fn g2_late_ready_after_abort_whose_resume_failed() {
    let (mut w, img) = world();
    w.order(&EID, 1, [1; 16]).unwrap();
    // Run until the target is PENDING; keep what is in flight (READY).
    let mut held = Vec::new();
    loop {
        w.collect(4);
        if w.mon(1).status(&EID).map(|s| s.state) == Some(EnclaveState::Pending) {
            held.extend(w.net.drain(..));
            break;
        }
        let p = w.net.pop_front().expect("stalled");
        w.deliver(p);
    }
    // Timeout at the source; its resume fails once.
    w.mon(0).enclave_host().fail.insert("resume", 1);
    w.clock.advance(TIMEOUT_MS + 1);
    let _ = w.mon(0).tick();
    assert_eq!(
        w.mon(0).status(&EID).unwrap().state,
        EnclaveState::Running,
        "ABORT committed"
    );
    assert!(
        w.running_copies(&EID).is_empty(),
        "resume failed, not yet running"
    );
    // The late READY: refused, nothing committed.
    for p in held {
        w.deliver(p);
    }
    w.assert_no_fork(&EID);
    assert_eq!(w.mon(0).status(&EID).unwrap().state, EnclaveState::Running);
    assert!(
        w.mon(0).enclave_host_ref().get(&EID).is_some(),
        "source copy kept"
    );
    // tick retries the resume; the SDS settles the target's copy with the ABORT.
    w.settle();
    assert_eq!(w.assert_exactly_one(&EID, &img), 0);
    w.assert_intact_at(0, &EID, &img);
    assert_eq!(w.mon(1).status(&EID).unwrap().state, EnclaveState::Gone);
}

/// The framework cannot pause the enclave: the migration is aborted at once,
/// with a typed error, and the enclave keeps running at the source.
#[test]
fn g6_pause_failure_aborts_and_keeps_running() {
    let (mut w, img) = world();
    w.mon(0).enclave_host().fail.insert("pause", 1);
    w.order(&EID, 1, [1; 16]).unwrap();
    run(&mut w);
    assert!(w.has_error(0, Error::Host), "{:?}", w.errors);
    w.assert_intact_at(0, &EID, &img);
    assert!(w.mon(1).status(&EID).is_none());
    w.settle();
    w.assert_exactly_one(&EID, &img);
}

/// A framework failure after a commit on the target (resume after RELEASE)
/// is retried by tick: the enclave runs there in the end.
#[test]
fn g3_resume_failure_at_target_is_retried() {
    let (mut w, img) = world();
    w.mon(1).enclave_host().fail.insert("resume", 2);
    w.order(&EID, 1, [1; 16]).unwrap();
    run(&mut w);
    assert_eq!(w.mon(1).status(&EID).unwrap().state, EnclaveState::Running);
    assert!(w.running_copies(&EID).is_empty());
    w.clock.advance(1);
    let _ = w.mon(1).tick();
    let _ = w.mon(1).tick();
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
}

/// The relay substitutes an older, still valid endorsement of the target (one
/// the SDS has since replaced) in the order: refused, the enclave stays.
#[test]
fn g1_older_endorsement_substituted() {
    let (mut w, img) = world();
    let target = w.hosts[1].id;
    let old = w.sds().host(&target).unwrap().endorsement.clone();
    // The SDS re-endorses host 1 (e.g. after dropping an SM build).
    let cert = identity(1).certificate().to_vec();
    w.sds()
        .endorse_host(
            &cert,
            vec![SM_MEASUREMENT],
            rewire_core::wire::PLATFORM_RISCV64,
            3,
            WALL0 - 5,
            WALL0 + 86_400,
        )
        .unwrap();
    w.order(&EID, 1, [1; 16]).unwrap();
    let p = w.net.pop_back().unwrap();
    let Message::Order(mut o) = Message::decode(&p.bytes).unwrap() else {
        panic!()
    };
    assert_ne!(o.target_endorsement, old);
    o.target_endorsement = old;
    order_refused(
        &mut w,
        Message::Order(o).encode().unwrap(),
        Error::EndorsementMismatch,
        &img,
    );
}

/// A request that names another policy than the enclave's (the digest the
/// signed request binds): refused, the enclave stays.
#[test]
fn g1_request_naming_another_policy() {
    let (mut w, img) = world();
    let mut req = w.request(&EID, 1, [1; 16]);
    req.policy = [0x42; 32];
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    order_refused(&mut w, order, Error::WrongEnclave, &img);
}

/// An endorsement no monitor could accept (more than 16 SM builds) is never signed.
#[test]
fn g1_oversized_endorsement_is_not_signed() {
    let (mut w, _) = world();
    let cert = identity(1).certificate().to_vec();
    let r = w.sds().endorse_host(
        &cert,
        vec![SM_MEASUREMENT; 17],
        rewire_core::wire::PLATFORM_RISCV64,
        2,
        WALL0,
        WALL0 + 10,
    );
    assert_eq!(r, Err(Error::InvalidArgument));
    let r = w.sds().endorse_host(
        &cert,
        vec![],
        rewire_core::wire::PLATFORM_RISCV64,
        2,
        WALL0,
        WALL0 + 10,
    );
    assert_eq!(r, Err(Error::InvalidArgument));
}

/// Issue 12, item 5: a host that made its own device key in software and
/// signed a self-consistent SM certificate for the endorsed SM build is not
/// endorsed (no root certified the key, nobody pinned it): the SDS
/// registers nothing, so no order can name it as a target, and the enclave
/// stays where it runs.
#[test]
fn g1_a_device_key_made_in_software_is_not_endorsed() {
    let (mut w, img) = world();
    let fake =
        rewire_core::Identity::derive(Secret::from_bytes([0x66; 32]), SM_MEASUREMENT).unwrap();
    let before = w.sds().to_bytes().unwrap();
    let r = w.sds().endorse_host(
        fake.certificate(),
        vec![SM_MEASUREMENT],
        rewire_core::wire::PLATFORM_RISCV64,
        3,
        WALL0 - 10,
        WALL0 + 86_400,
    );
    assert_eq!(r, Err(Error::DeviceNotCertified));
    assert!(w.sds().host(&fake.host_id()).is_none());
    assert_eq!(w.sds().to_bytes().unwrap(), before);
    // A device certificate from a key that is not a registered root does not help.
    let forged = rewire_core::wire::DeviceCertificate {
        device: fake.host_id(),
    }
    .sign(&rogue_key())
    .unwrap();
    assert_eq!(
        w.sds().certify_device(&forged),
        Err(Error::DeviceNotCertified)
    );
    assert_eq!(w.sds().to_bytes().unwrap(), before);
    w.assert_intact_at(0, &EID, &img);
}

/// Issue 12, item 4: no journal blob a monitor ever writes — counted, or
/// written and then disowned by the counter (a torn commit), or leaked —
/// holds a signed RELEASE or ACTIVE. The monitor journals a settled proof
/// as its unsigned fields and signs it only after the commit is counted,
/// so a blob an adversary reads cannot be replayed as the other side's
/// proof after it restarts the source on the previous blob. Every blob
/// both monitors wrote in a whole migration is opened with the monitor's
/// journal key and searched for the proofs' signatures.
#[test]
fn g2_no_journal_blob_holds_a_signed_proof() {
    use rewire_core::boot;
    use rewire_core::wire::{AckKind, Decision, DecisionKind, TargetAck};
    let (mut w, img) = world();
    let epoch = w.sds().enclave(&EID).unwrap().epoch;
    let (src, dst) = (w.hosts[0].id, w.hosts[1].id);
    w.order(&EID, 1, [1; 16]).unwrap();
    w.settle();
    w.assert_exactly_one(&EID, &img);
    assert_eq!(w.sds().enclave(&EID).unwrap().location, dst);
    let secret = |i: usize| {
        boot::handoff(&device_secret(i), &SM_MEASUREMENT)
            .unwrap()
            .sm_secret
    };
    let sig = |signed: Vec<u8>| signed[signed.len() - 64..].to_vec();
    let release = Decision {
        kind: DecisionKind::Release,
        request_id: [1; 16],
        enclave_id: EID,
        epoch: epoch + 1,
        source: src,
        target: dst,
    }
    .sign(&boot::sm_key(&secret(0)).unwrap())
    .unwrap();
    let active = TargetAck {
        kind: AckKind::Active,
        request_id: [1; 16],
        enclave_id: EID,
        epoch: epoch + 1,
        host: dst,
    }
    .sign(&boot::sm_key(&secret(1)).unwrap())
    .unwrap();
    for (i, proof) in [(0, sig(release)), (1, sig(active))] {
        let key = boot::journal_key(&secret(i)).unwrap();
        let blobs = w.mon(i).platform().journal_history.clone();
        assert!(blobs.len() >= 2, "host {i} wrote {} blobs", blobs.len());
        for (n, blob) in blobs.iter().enumerate() {
            let plain = rewire_core::seal::unseal(&key, blob).unwrap();
            assert!(
                !plain.windows(64).any(|x| x == proof.as_slice()),
                "host {i}'s journal blob {n} holds its signed proof"
            );
        }
    }
}
