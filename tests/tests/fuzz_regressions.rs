//! Regressions from the cargo-fuzz targets (`fuzz/`, `scripts/fuzz.sh`):
//! each test is an input a target stopped on, kept inline, and the scenario
//! it exercises replayed on the test world (same keys, same enclave, same
//! request id as the fuzz harness, so the bytes below replay there too:
//! `fuzz/target/x86_64-unknown-linux-gnu/release/<target> <file>`).

use rewire_core::wire::Message;
use rewire_core::EnclaveState;
use rewire_tests::*;

const EID: [u8; 16] = *b"enclave-fuzzed-1";
const RID: [u8; 16] = [3; 16];

/// Host `i`'s SM signing key, as the world's boot stage hands it over
/// (docs/protocol.md §1.2).
fn sm_key(i: usize) -> rewire_core::SigningKey {
    let mut ds = [0u8; 32];
    ds[0] = 0xde;
    ds[1] = i as u8;
    ds[31] = 0x77;
    let h = rewire_core::boot::handoff(
        &rewire_core::crypto::Secret::from_bytes(ds),
        &SM_MEASUREMENT,
    )
    .expect("handoff");
    let key = rewire_core::boot::sm_key(&h.sm_secret).expect("sm key");
    assert_eq!(key.public(), identity(i).sm_public());
    key
}

fn world() -> (World, Image) {
    let mut w = World::new(&[2, 2]);
    let img = Image::sample(4, 2000);
    w.deploy(0, EID, &img, 1);
    (w, img)
}

/// `monitor` target, crash-4c21c60ea14c9aab2dfe7f3e076526004b6471ec: an order
/// the SDS signed but never kept in its ledger (replayed by the relay) moves
/// the enclave; the target is left PENDING (the in-channel RELEASE is lost)
/// and the ledger still places the enclave at the source, epoch 0. Nothing
/// is in flight and the SDS sees nothing open, yet the world is not settled:
/// only the audit (the source answers with its RELEASE) catches the ledger
/// up, after which the RELEASE is forwarded and the target activates.
/// The fuzz harness first declared the world settled before that audit had
/// changed anything, and found no running copy.
#[test]
fn order_the_ledger_never_kept_settles_through_the_audit() {
    /// The fuzz input (fuzz/fuzz_targets/monitor.rs): no initial order;
    /// deliveries and drops; op 9 replays the recorded ORDER to host 0.
    const INPUT: &[u8] = &[
        0x0d, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x34,
        0x00, 0x80, 0x7e, 0x00, 0x00, 0x00, 0x40, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xd4, 0xd4, 0xd4, 0xd4, 0xd4, 0xd4, 0xd4, 0xd4, 0xd9, 0xd4, 0xd4, 0xd4, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    assert_eq!(INPUT.len(), 52);

    let (mut w, img) = world();
    // The SDS signs the order, then loses it (a crash before its ledger write).
    let saved = w.sds_saved.clone();
    w.order(&EID, 1, RID).expect("order");
    w.sds_saved = saved;
    w.crash_sds();
    w.restart_sds();
    assert!(w.sds().enclave(&EID).expect("ledger").migration.is_none());
    // The migration runs until the source has committed; every later packet is lost.
    loop {
        w.collect(4);
        if w.mon_ref(0).status(&EID).map(|s| s.state) == Some(EnclaveState::Migrated) {
            break;
        }
        let Some(p) = w.net.pop_front() else { break };
        w.deliver(p);
    }
    w.net.clear();
    assert_eq!(
        w.mon_ref(0).status(&EID).map(|s| s.state),
        Some(EnclaveState::Migrated)
    );
    assert_eq!(
        w.mon_ref(1).status(&EID).map(|s| s.state),
        Some(EnclaveState::Pending)
    );
    assert_eq!(w.location(&EID), 0, "the ledger never heard of it");
    assert!(w.sds().is_settled_all());
    w.settle();
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
}

/// `sds` target, crash-070dadaa77ce9a543272ddbd36981f199426497a: a decision
/// signed by a registered source SM at epoch u64::MAX, for a request the SDS
/// never ordered, is taken (SMs are trusted; the ledger follows their signed
/// epochs), and the SDS must keep working with a saturated epoch: persist,
/// reload, audit, refuse further decisions, order.
#[test]
fn ledger_at_the_last_epoch_keeps_working() {
    const INPUT: &[u8] = &[
        0x41, 0x01, 0xae, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x71, 0x23, 0xa2,
        0x32, 0x0b, 0xaa, 0x44, 0xcb, 0xe0, 0xab, 0x8d, 0x41, 0xab,
    ];
    assert_eq!(INPUT.len(), 25);

    use rewire_core::wire::{Decision, DecisionKind, SignedBody};
    let (mut w, _) = world();
    let (src, tgt) = (w.hosts[0].id, w.hosts[1].id);
    let sm0 = sm_key(0);
    let abort = |epoch| {
        let d = Decision {
            kind: DecisionKind::Abort,
            request_id: RID,
            enclave_id: EID,
            epoch,
            source: src,
            target: tgt,
        };
        Message::Abort(d.sign(&sm0).expect("sign"))
            .encode()
            .expect("encode")
    };
    w.sds()
        .handle(&abort(u64::MAX))
        .expect("a trusted SM's decision");
    let e = w.sds().enclave(&EID).expect("ledger").clone();
    assert_eq!((e.epoch, e.location), (u64::MAX, src));
    assert!(w.sds().handle(&abort(u64::MAX)).is_err(), "a duplicate");
    let bytes = w.sds().to_bytes().expect("save");
    let again = rewire_core::Sds::from_bytes(sds_key(), &bytes).expect("load");
    assert_eq!(again.to_bytes().expect("save"), bytes);
    let _ = w.sds().resolution();
    let _ = w.sds().audit();
    let _ = w.sds().order(&EID, tgt, [9; 16], WALL0 + 60);
}
