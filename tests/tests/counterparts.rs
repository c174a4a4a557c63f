//! Each party alone against a compromised counterpart.
//!
//! The attack tests in attacks.rs attack a pair of honest monitors: when one
//! side's check is gone, the other side (or a later, generic check) still
//! refuses, and the test cannot tell who did. Here the counterpart is
//! compromised (rewire-core's test-only `Faults`, or a hand-driven TLS
//! peer): it passes or skips every check but the one under test. Each test
//! asserts the exact typed error of that check, from that party, and that
//! the enclave is intact where it was. Deleting any one of these checks makes
//! its test fail (docs/security.md, "Tests that notice").

use rewire_core::channel::{Channel, Cipher};
use rewire_core::crypto::Secret;
use rewire_core::monitor::{ChunkTamper, DecisionTamper, ReadyTamper};
use rewire_core::wire::{Decision, DecisionKind, Message, Offer, SignedBody};
use rewire_core::{Dest, EnclaveState, Error, Event, SigningKey};
use rewire_tests::*;

const EID: [u8; 16] = *b"enclave-compromi";
const RID: [u8; 16] = [0x31; 16];

/// Hosts with these ATLs; the enclave on host 0 under a policy of `min_atl`.
fn world(atls: &[u64], min_atl: u64) -> (World, Image) {
    let mut w = World::new(atls);
    let img = Image::sample(21, 20_000);
    w.deploy(0, EID, &img, min_atl);
    (w, img)
}

const RISCV: u64 = rewire_core::wire::PLATFORM_RISCV64;
const AARCH64: u64 = rewire_core::wire::PLATFORM_AARCH64;

/// A mixed fleet at ATL 2: (endorsed platform, platform the monitor knows
/// it runs) per host; a RISC-V enclave on host 0.
fn mixed(hosts: &[(u64, Option<u64>)]) -> (World, Image) {
    let mut w = World::with_platforms(&vec![2; hosts.len()], hosts);
    let img = Image::sample(21, 20_000);
    w.deploy(0, EID, &img, 1);
    (w, img)
}

fn rogue_key() -> SigningKey {
    SigningKey::from_seed(Secret::from_bytes([0x66; 32])).unwrap()
}

fn run(w: &mut World) {
    w.run_with(|w| w.assert_no_fork(&EID));
}

/// Every target trusts any offer: only the source's checks stand.
fn compromised_targets(w: &mut World) {
    for i in 1..w.hosts.len() {
        w.mon(i).faults.accept_any_offer = true;
    }
}

fn froze(w: &World, host: usize) -> bool {
    w.events
        .iter()
        .any(|(h, _, e)| *h == host && *e == Event::Frozen)
}

/// The first error a party returned: the check that stopped it.
fn first_error(w: &World, host: usize) -> Option<Error> {
    w.errors.iter().find(|(h, _)| *h == host).map(|(_, e)| *e)
}

fn reached(w: &World, host: usize, ev: Event) -> bool {
    w.events.iter().any(|(h, _, e)| *h == host && *e == ev)
}

/// The source refused `order` itself: exactly `e` from host 0, the enclave
/// never frozen (its epoch unchanged: nothing was consumed), still running
/// there intact, and no other host ever heard of it.
fn source_refuses(w: &mut World, order: Vec<u8>, e: Error, img: &Image) {
    let epoch = w.mon(0).status(&EID).unwrap().epoch;
    w.send_to(0, order);
    run(w);
    assert_eq!(w.errors, vec![(0, e)], "the source itself must refuse");
    assert!(!froze(w, 0), "the source froze the enclave before refusing");
    assert_eq!(w.mon(0).status(&EID).unwrap().epoch, epoch);
    w.assert_intact_at(0, &EID, img);
    for i in 1..w.hosts.len() {
        assert!(w.mon(i).status(&EID).is_none(), "host{i} heard of it");
    }
}

// ---------------------------------------------------------------------------
// The source alone (targets accept any offer)

#[test]
fn source_alone_refuses_target_endorsement_of_another_host() {
    let (mut w, img) = world(&[2, 2, 2], 1);
    compromised_targets(&mut w);
    let req = w.request(&EID, 1, RID);
    let order = w.craft_order(&sds_key(), &req, 0, 2);
    source_refuses(&mut w, order, Error::WrongTarget, &img);
}

#[test]
fn source_alone_refuses_source_endorsement_of_another_host() {
    // The request names this host as source, but the source endorsement it
    // binds is host 2's.
    let (mut w, img) = world(&[2, 2, 2], 1);
    compromised_targets(&mut w);
    let req = w.request(&EID, 1, RID);
    let order = w.craft_order(&sds_key(), &req, 2, 1);
    source_refuses(&mut w, order, Error::WrongSource, &img);
}

#[test]
fn source_alone_refuses_request_for_another_measurement() {
    let (mut w, img) = world(&[2, 2], 1);
    compromised_targets(&mut w);
    let mut req = w.request(&EID, 1, RID);
    req.measurement = [0x77; 32];
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    source_refuses(&mut w, order, Error::WrongEnclave, &img);
}

#[test]
fn source_alone_refuses_target_of_another_platform() {
    // Against a target that would accept anything, a source without this
    // check would stream the enclave to a host that cannot run its code,
    // then destroy its own copy once that target attests.
    let (mut w, img) = mixed(&[(RISCV, None), (AARCH64, None)]);
    compromised_targets(&mut w);
    let req = w.request(&EID, 1, RID);
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    source_refuses(&mut w, order, Error::PlatformMismatch, &img);
}

#[test]
fn source_alone_refuses_low_atl_target() {
    // Against a malicious low-ATL target that answers ACCEPT, a source
    // without this check would stream the enclave's plaintext state to it.
    let (mut w, img) = world(&[2, 1], 2);
    compromised_targets(&mut w);
    let req = w.request(&EID, 1, RID);
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    source_refuses(&mut w, order, Error::AtlTooLow, &img);
}

#[test]
fn source_alone_refuses_when_its_own_sm_is_not_endorsed() {
    let mut w = World::new(&[2, 2]);
    compromised_targets(&mut w);
    // Host 0 runs an SM build its endorsement does not list.
    w.reboot_with_sm(0, [0xbb; 32]);
    let img = Image::sample(21, 20_000);
    w.deploy(0, EID, &img, 1);
    let req = w.request(&EID, 1, RID);
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    source_refuses(&mut w, order, Error::SmNotEndorsed, &img);
}

#[test]
fn source_alone_refuses_genuine_target_certificate_over_another_tls_key() {
    // The relay sends the source's connection to host 2 (endorsed,
    // compromised), which presents host 1's genuine certificate over its
    // own TLS key.
    let (mut w, img) = world(&[2, 2, 2], 1);
    let cert1 = w.mon(1).identity().certificate().to_vec();
    w.mon(2).faults.accept_any_offer = true;
    w.mon(2).faults.accept_certificate = Some(cert1);
    w.redirect.insert(1, 2);
    w.order(&EID, 1, RID).unwrap();
    run(&mut w);
    assert_eq!(
        first_error(&w, 0),
        Some(Error::PeerMismatch),
        "{:?}",
        w.errors
    );
    // Nothing was streamed to host 2: it never held an image to make READY of.
    assert!(!reached(&w, 2, Event::PendingReady));
    w.assert_intact_at(0, &EID, &img);
}

#[test]
fn source_alone_refuses_an_expired_request_and_settles_it() {
    let (mut w, img) = world(&[2, 2], 1);
    compromised_targets(&mut w);
    let mut req = w.request(&EID, 1, RID);
    req.deadline = WALL0 - 1;
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    w.send_to(0, order);
    run(&mut w);
    assert_eq!(
        first_error(&w, 0),
        Some(Error::DeadlinePassed),
        "{:?}",
        w.errors
    );
    // Never paused, never offered; settled for good (its epoch is spent).
    assert!(!froze(&w, 0));
    assert!(w.mon(1).status(&EID).is_none());
    assert_eq!(w.mon(0).status(&EID).unwrap().epoch, 1);
    w.assert_intact_at(0, &EID, &img);
}

#[test]
fn a_request_is_valid_up_to_its_deadline_second() {
    let (mut w, img) = world(&[2, 2], 1);
    let mut req = w.request(&EID, 1, RID);
    req.deadline = w.now_wall();
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    w.send_to(0, order);
    run(&mut w);
    assert!(w.errors.is_empty(), "{:?}", w.errors);
    assert!(reached(&w, 1, Event::Activated));
    assert!(w.running_copies(&EID) == vec![1]);
    let m = w.mon_ref(1);
    assert!(m.enclave_host_ref().get(&EID).unwrap().state == img.state);
}

#[test]
fn an_order_whose_request_id_names_a_live_channel_is_refused() {
    // Channels are keyed by request id: host 1, receiving enclave X under
    // RID, is ordered to send enclave Y under the same RID. Busy, and
    // neither migration is disturbed.
    let (mut w, img) = world(&[2, 2, 2], 1);
    let y = *b"enclave-second-2";
    let img_y = Image::sample(23, 3_000);
    w.deploy(1, y, &img_y, 1);
    w.order(&EID, 1, RID).unwrap();
    while w.mon(1).status(&EID).map(|s| s.state) != Some(EnclaveState::Receiving) {
        w.collect(4);
        let p = w.net.pop_front().expect("stalled before RECEIVING");
        w.deliver(p);
    }
    let req = w.request(&y, 2, RID);
    let order = w.craft_order(&sds_key(), &req, 1, 2);
    let verdict = w.mon(1).handle_sds(&order);
    assert_eq!(verdict, Err(Error::Busy));
    assert!(!froze(&w, 1));
    w.assert_intact_at(1, &y, &img_y);
    assert_eq!(w.mon(1).status(&y).unwrap().epoch, 0);
    run(&mut w);
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
}

#[test]
fn source_refuses_a_second_order_while_frozen() {
    // A second, validly signed order for the same enclave (another target)
    // arrives while the first migration is under way: Busy, and the first
    // completes untouched.
    let (mut w, img) = world(&[2, 2, 2], 1);
    w.order(&EID, 1, RID).unwrap();
    let p = w.net.pop_front().unwrap();
    w.deliver(p);
    assert!(froze(&w, 0));
    let req = w.request(&EID, 2, [0x55; 16]);
    let second = w.craft_order(&sds_key(), &req, 0, 2);
    w.send_to(0, second);
    let p = w.net.pop_back().unwrap();
    w.deliver(p);
    assert_eq!(w.errors, vec![(0, Error::Busy)]);
    run(&mut w);
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
}

/// The target signs READY with one field changed: the source must refuse it
/// with exactly `e`, resume, and the target's copy must never run.
fn source_refuses_ready(tamper: ReadyTamper, e: Error) {
    let (mut w, img) = world(&[2, 2], 1);
    w.mon(1).faults.ready_tamper = Some(tamper.clone());
    w.order(&EID, 1, RID).unwrap();
    run(&mut w);
    assert_eq!(
        first_error(&w, 0),
        Some(e),
        "{tamper:?}: want {e:?} from the source, got {:?}",
        w.errors
    );
    assert!(!reached(&w, 0, Event::Committed), "{tamper:?}");
    // The target's PENDING copy is dropped by the in-channel ABORT, then the
    // REFUSE closes its channel.
    assert!(reached(&w, 1, Event::Dropped), "{tamper:?}");
    assert!(
        w.has_error(1, Error::ChannelClosed),
        "{tamper:?}: {:?}",
        w.errors
    );
    w.assert_intact_at(0, &EID, &img);
    assert!(!w.mon(1).enclave_host_ref().is_running(&EID));
    w.settle();
    assert_eq!(w.assert_exactly_one(&EID, &img), 0);
}

#[test]
fn source_alone_refuses_ready_signed_by_another_key() {
    source_refuses_ready(ReadyTamper::Signer([0x66; 32]), Error::UnknownSigner);
}

#[test]
fn source_alone_refuses_ready_for_another_epoch() {
    source_refuses_ready(ReadyTamper::Epoch, Error::WrongRequest);
}

#[test]
fn source_alone_refuses_ready_naming_another_target() {
    source_refuses_ready(ReadyTamper::Target, Error::WrongRequest);
}

#[test]
fn source_alone_refuses_ready_for_another_measurement() {
    source_refuses_ready(ReadyTamper::Measurement, Error::MeasurementMismatch);
}

#[test]
fn source_alone_refuses_ready_not_binding_the_stream_lengths() {
    source_refuses_ready(ReadyTamper::ReportData, Error::Integrity);
}

// ---------------------------------------------------------------------------
// The target alone (the source forwards any SDS-signed order)

/// The compromised source forwards `order`; the target must refuse it with
/// exactly `e`, keep no record of it, and the source ends where it was.
fn target_refuses(w: &mut World, order: Vec<u8>, e: Error, img: &Image) {
    w.mon(0).faults.skip_order_checks = true;
    w.send_to(0, order);
    run(w);
    assert_eq!(
        first_error(w, 1),
        Some(e),
        "want {e:?} from the target: {:?}",
        w.errors
    );
    assert!(!reached(w, 1, Event::OfferAccepted), "the target accepted");
    assert!(w
        .mon(1)
        .status(&EID)
        .is_none_or(|s| s.state == EnclaveState::Gone));
    w.assert_intact_at(0, &EID, img);
}

#[test]
fn target_alone_refuses_when_its_platform_cannot_run_the_enclave() {
    // A mixed fleet: host 1 is an aarch64 host, the enclave a RISC-V build.
    // Imported there, it would measure right and attest, the source would be
    // destroyed, and the enclave could never run again: lost.
    let (mut w, img) = mixed(&[(RISCV, None), (AARCH64, None)]);
    let req = w.request(&EID, 1, RID);
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    target_refuses(&mut w, order, Error::PlatformMismatch, &img);
}

#[test]
fn target_alone_refuses_an_endorsement_that_mislabels_its_platform() {
    // The operator endorsed an aarch64 host as riscv64: every signed object
    // agrees, and only the target monitor knows better.
    let (mut w, img) = mixed(&[(RISCV, Some(RISCV)), (RISCV, Some(AARCH64))]);
    let req = w.request(&EID, 1, RID);
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    target_refuses(&mut w, order, Error::PlatformMismatch, &img);
}

#[test]
fn target_alone_refuses_expired_request() {
    let (mut w, img) = world(&[2, 2], 1);
    let mut req = w.request(&EID, 1, RID);
    req.deadline = WALL0 - 1;
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    target_refuses(&mut w, order, Error::DeadlinePassed, &img);
}

#[test]
fn target_alone_refuses_when_its_atl_is_below_policy() {
    let (mut w, img) = world(&[2, 1], 2);
    let req = w.request(&EID, 1, RID);
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    target_refuses(&mut w, order, Error::AtlTooLow, &img);
}

#[test]
fn target_alone_refuses_request_naming_another_target() {
    let (mut w, img) = world(&[2, 2, 2], 1);
    let req = w.request(&EID, 2, RID);
    // The request names host 2; the compromised source connects to host 1.
    w.redirect.insert(2, 1);
    let order = w.craft_order(&sds_key(), &req, 0, 2);
    target_refuses(&mut w, order, Error::WrongTarget, &img);
}

#[test]
fn target_alone_refuses_target_endorsement_of_another_host() {
    // The request names host 1, the target endorsement it binds is host 2's.
    let (mut w, img) = world(&[2, 2, 2], 1);
    let req = w.request(&EID, 1, RID);
    let order = w.craft_order(&sds_key(), &req, 0, 2);
    target_refuses(&mut w, order, Error::WrongTarget, &img);
}

#[test]
fn target_alone_refuses_source_endorsement_of_another_host() {
    // The request names host 0 as source, the source endorsement it binds
    // is host 2's.
    let (mut w, img) = world(&[2, 2, 2], 1);
    let req = w.request(&EID, 1, RID);
    let order = w.craft_order(&sds_key(), &req, 2, 1);
    target_refuses(&mut w, order, Error::WrongSource, &img);
}

#[test]
fn target_alone_refuses_request_for_another_measurement() {
    // The genuine policy, a request naming other code.
    let (mut w, img) = world(&[2, 2], 1);
    let mut req = w.request(&EID, 1, RID);
    req.measurement = [0x77; 32];
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    target_refuses(&mut w, order, Error::WrongEnclave, &img);
}

#[test]
fn target_alone_refuses_expired_endorsements() {
    // A year and a day later every endorsement has expired; the request
    // itself is fresh.
    let (mut w, img) = world(&[2, 2], 1);
    w.clock.advance((86_400 * 366) * 1000);
    let req = w.request(&EID, 1, RID);
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    target_refuses(&mut w, order, Error::EndorsementExpired, &img);
}

#[test]
fn target_alone_refuses_when_its_own_sm_is_not_endorsed() {
    let (mut w, img) = world(&[2, 2], 1);
    w.reboot_with_sm(1, [0xbb; 32]);
    let req = w.request(&EID, 1, RID);
    let order = w.craft_order(&sds_key(), &req, 0, 1);
    target_refuses(&mut w, order, Error::SmNotEndorsed, &img);
}

#[test]
fn target_alone_refuses_an_older_epoch_than_it_has_seen() {
    let (mut w, img) = world(&[2, 2], 1);
    // A -> B (epoch 0 -> 1), then B -> A (1 -> 2): B has seen epoch 2.
    w.order(&EID, 1, RID).unwrap();
    let old_order = w.net.back().unwrap().bytes.clone();
    run(&mut w);
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
    w.order(&EID, 0, [0x32; 16]).unwrap();
    run(&mut w);
    assert_eq!(w.assert_exactly_one(&EID, &img), 0);
    // Both reboot (their recent-channel memory is volatile), and the
    // compromised source replays the epoch-0 order to B.
    for i in 0..2 {
        w.crash(i);
        w.restart(i).unwrap();
    }
    w.errors.clear();
    w.events.clear();
    w.mon(0).faults.skip_order_checks = true;
    w.send_to(0, old_order);
    run(&mut w);
    assert_eq!(
        first_error(&w, 1),
        Some(Error::StaleEpoch),
        "{:?}",
        w.errors
    );
    assert!(!reached(&w, 1, Event::OfferAccepted));
    assert_eq!(w.mon(1).status(&EID).unwrap().state, EnclaveState::Migrated);
    w.assert_intact_at(0, &EID, &img);
}

#[test]
fn target_alone_refuses_a_chunk_beyond_its_section() {
    let (mut w, img) = world(&[2, 2], 1);
    w.mon(0).faults.chunk_tamper = Some(ChunkTamper::Oversize);
    w.order(&EID, 1, RID).unwrap();
    run(&mut w);
    assert_eq!(first_error(&w, 1), Some(Error::Integrity), "{:?}", w.errors);
    assert!(!reached(&w, 1, Event::PendingReady));
    w.assert_intact_at(0, &EID, &img);
}

#[test]
fn target_alone_refuses_misplaced_chunks() {
    for tamper in [
        ChunkTamper::WrongOffset,
        ChunkTamper::WrongSection,
        ChunkTamper::AfterEnd,
    ] {
        let (mut w, img) = world(&[2, 2], 1);
        w.mon(0).faults.chunk_tamper = Some(tamper);
        w.order(&EID, 1, RID).unwrap();
        run(&mut w);
        assert_eq!(
            first_error(&w, 1),
            Some(Error::Integrity),
            "{tamper:?}: {:?}",
            w.errors
        );
        assert!(!reached(&w, 0, Event::Committed), "{tamper:?}");
        assert!(!w.mon(1).enclave_host_ref().is_running(&EID));
        w.assert_intact_at(0, &EID, &img);
    }
}

#[test]
fn sealed_data_in_small_pieces_is_resealed_whole() {
    // Any piece size is legal: the target re-seals in its own chunks.
    for piece in [1000usize, 16_383] {
        let mut w = World::new(&[2, 2]);
        let mut img = Image::sample(24, 3_000);
        img.sealed = (0..40_000u32).map(|i| (i % 241) as u8).collect();
        w.deploy(0, EID, &img, 1);
        w.mon(0).faults.chunk_tamper = Some(ChunkTamper::SealedPieces(piece));
        w.order(&EID, 1, RID).unwrap();
        run(&mut w);
        assert!(w.errors.is_empty(), "{piece}: {:?}", w.errors);
        assert_eq!(w.assert_exactly_one(&EID, &img), 1, "{piece}");
    }
}

#[test]
fn target_alone_refuses_abort_of_an_import_signed_by_another_key() {
    // Anyone can sign a decision with a key of their own: during the import
    // only the source's SM key may abort it.
    let (mut w, img) = world(&[2, 2], 1);
    w.order(&EID, 1, RID).unwrap();
    loop {
        w.collect(4);
        if w.mon(1).status(&EID).map(|s| s.state) == Some(EnclaveState::Receiving) {
            break;
        }
        let p = w.net.pop_front().expect("stalled before RECEIVING");
        w.deliver(p);
    }
    let forged = Decision {
        kind: DecisionKind::Abort,
        request_id: RID,
        enclave_id: EID,
        epoch: 1,
        source: w.hosts[0].id,
        target: w.hosts[1].id,
    }
    .sign(&rogue_key())
    .unwrap();
    let m = Message::Abort(forged).encode().unwrap();
    w.mon(1)
        .handle_sds(&m)
        .map_err(|e| w.errors.push((1, e)))
        .ok();
    assert_eq!(w.errors, vec![(1, Error::NotSource)]);
    assert_eq!(
        w.mon(1).status(&EID).unwrap().state,
        EnclaveState::Receiving
    );
    // The import goes on and the migration completes.
    run(&mut w);
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
}

/// The source signs RELEASE with one field changed: the target must refuse
/// it with exactly `WrongRequest` and keep its copy PENDING, not running.
fn target_refuses_release(tamper: DecisionTamper) {
    let (mut w, img) = world(&[2, 2], 1);
    w.mon(0).faults.release_tamper = Some(tamper);
    w.order(&EID, 1, RID).unwrap();
    run(&mut w);
    assert_eq!(
        first_error(&w, 1),
        Some(Error::WrongRequest),
        "{tamper:?}: {:?}",
        w.errors
    );
    assert!(!reached(&w, 1, Event::Activated), "{tamper:?}");
    assert_eq!(w.mon(1).status(&EID).unwrap().state, EnclaveState::Pending);
    assert!(w.running_copies(&EID).is_empty());
    // The image is intact at the target, waiting for a valid decision.
    let m = w.mon_ref(1);
    let e = m.enclave_host_ref().get(&EID).unwrap();
    assert!(e.code == img.code && e.state == img.state);
    assert_eq!(
        &m.unseal_data(&EID, &e.sealed).unwrap()[..],
        &img.sealed[..]
    );
}

#[test]
fn target_alone_refuses_release_for_another_epoch() {
    target_refuses_release(DecisionTamper::Epoch);
}

#[test]
fn target_alone_refuses_release_naming_another_target() {
    target_refuses_release(DecisionTamper::Target);
}

/// A hand-driven TLS peer (a key of its own, claiming to be host 0): a
/// handshake with host `to` on channel `conn`, then `msg` in the channel.
/// Returns the host's verdicts on each delivery.
fn tls_peer(w: &mut World, to: usize, conn: [u8; 16], msg: Vec<u8>) -> Vec<Result<(), Error>> {
    let from = w.hosts[0].id;
    let mut ch = Channel::client(&rogue_key(), WALL0, Cipher::detect()).unwrap();
    let mut incoming = Vec::new();
    let mut verdicts = Vec::new();
    let mut msg = Some(msg);
    for _ in 0..16 {
        if ch.is_established() {
            if let Some(m) = msg.take() {
                ch.send(m).unwrap();
            }
        }
        let (out, _msgs, r) = ch.exchange(&std::mem::take(&mut incoming));
        r.unwrap();
        if !out.is_empty() {
            verdicts.push(w.mon(to).handle_peer(from, conn, &out));
        }
        while let Some(o) = w.mon(to).poll_output() {
            if let Dest::Peer { conn: c, .. } = o.dest {
                assert_eq!(c, conn);
                incoming.extend(o.bytes);
            }
        }
        if msg.is_none() && incoming.is_empty() {
            break;
        }
    }
    assert!(msg.is_none(), "the handshake did not complete");
    verdicts
}

#[test]
fn target_alone_refuses_genuine_source_certificate_over_another_tls_key() {
    // The genuine order and host 0's genuine SM certificate, over a TLS key
    // that is not host 0's SM key.
    let (mut w, img) = world(&[2, 2], 1);
    w.order(&EID, 1, RID).unwrap();
    let order_bytes = w.net.pop_back().unwrap().bytes;
    let Message::Order(order) = Message::decode(&order_bytes).unwrap() else {
        panic!("not an order")
    };
    let offer = Offer {
        order,
        policy: w.sds().enclave(&EID).unwrap().policy.clone(),
        source_certificate: w.mon(0).identity().certificate().to_vec(),
        lengths: [
            img.code.len() as u64,
            img.state.len() as u64,
            img.sealed.len() as u64,
        ],
    };
    let verdicts = tls_peer(&mut w, 1, RID, Message::Offer(offer).encode().unwrap());
    let refusals: Vec<Error> = verdicts.into_iter().filter_map(|r| r.err()).collect();
    assert_eq!(refusals, vec![Error::PeerMismatch]);
    assert!(w.mon(1).status(&EID).is_none());
    w.assert_intact_at(0, &EID, &img);
}

#[test]
fn target_alone_refuses_a_decision_on_a_foreign_session() {
    // The relay drops the in-channel RELEASE and delivers the genuine RELEASE
    // (taken from the SDS path) on another session: accepted there, it would
    // leave the request's own session waiting for ever, holding a slot.
    let (mut w, img) = world(&[2, 2, 2], 1);
    w.order(&EID, 1, RID).unwrap();
    while !reached(&w, 0, Event::Committed) {
        w.collect(4);
        let p = w.net.pop_front().expect("stalled before the commit");
        w.deliver(p);
    }
    w.collect(usize::MAX);
    let proof = w
        .net
        .iter()
        .find(|p| p.to == To::Sds && p.kind() == "release")
        .expect("the RELEASE to the SDS")
        .clone();
    w.net.clear();
    assert_eq!(w.mon(1).status(&EID).unwrap().state, EnclaveState::Pending);
    let verdicts = tls_peer(&mut w, 1, [0x99; 16], proof.bytes.clone());
    let refusals: Vec<Error> = verdicts.into_iter().filter_map(|r| r.err()).collect();
    assert_eq!(refusals, vec![Error::WrongRequest]);
    assert_eq!(w.mon(1).status(&EID).unwrap().state, EnclaveState::Pending);
    assert!(w.running_copies(&EID).is_empty());
    // Through the SDS the decision settles the request and closes its own
    // session: with a single session slot, host 1 takes the next migration in.
    w.deliver(proof.clone());
    w.send_to(1, proof.bytes);
    run(&mut w);
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
    w.mon(1).set_max_sessions(1);
    let other = *b"enclave-second-1";
    let img2 = Image::sample(22, 5_000);
    w.deploy(2, other, &img2, 1);
    w.order(&other, 1, [0x32; 16]).unwrap();
    w.run();
    assert_eq!(w.assert_exactly_one(&other, &img2), 1, "{:?}", w.errors);
}

#[test]
fn a_session_waiting_for_its_decision_times_out_and_the_copy_stays_pending() {
    let (mut w, img) = world(&[2, 2], 1);
    w.order(&EID, 1, RID).unwrap();
    while w.mon(1).status(&EID).map(|s| s.state) != Some(EnclaveState::Pending) {
        w.collect(4);
        let p = w.net.pop_front().expect("stalled before PENDING");
        w.deliver(p);
    }
    // The relay goes silent. Past the timeout the session closes (freeing its
    // slot); the PENDING copy stays and the SDS settles it.
    w.net.clear();
    w.mon(1).set_max_sessions(1);
    w.clock.advance(TIMEOUT_MS + 1);
    w.mon(1).tick().unwrap();
    assert_eq!(w.mon(1).status(&EID).unwrap().state, EnclaveState::Pending);
    let from = w.hosts[0].id;
    let k = SigningKey::from_seed(Secret::from_bytes([7; 32])).unwrap();
    let hello = Channel::client(&k, WALL0, Cipher::detect())
        .unwrap()
        .exchange(&[])
        .0;
    assert_eq!(w.mon(1).handle_peer(from, [0x77; 16], &hello), Ok(()));
    w.net.clear();
    w.settle();
    w.assert_no_fork(&EID);
    w.assert_exactly_one(&EID, &img);
}
