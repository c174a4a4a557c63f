//! G3/G4 happy path: migrations of several state sizes arrive byte-exact,
//! re-sealed under the target's key, with the source destroyed and the ledger
//! moved only by signed proofs.

use rewire_core::{EnclaveState, Error, LedgerEvent};
use rewire_tests::*;

const EID: [u8; 16] = *b"enclave-00000001";

fn migrate(state_len: usize) {
    let mut w = World::new(&[2, 2]);
    let img = Image::sample(7, state_len);
    w.deploy(0, EID, &img, 1);
    w.assert_intact_at(0, &EID, &img);
    w.order(&EID, 1, [1; 16]).unwrap();
    w.run_with(|w| w.assert_no_fork(&EID));
    assert!(w.errors.is_empty(), "errors: {:?}", w.errors);
    // Byte-exact at the target; exactly one copy; ledger at target, epoch 1.
    assert_eq!(w.assert_exactly_one(&EID, &img), 1);
    // Re-sealed under the target key, which the source key does not open.
    assert!(w.sealed_opens_with(1, &EID, 1, &img));
    assert!(!w.sealed_opens_with(1, &EID, 0, &img));
    // The source copy is gone and its monitor will never run it.
    let src = w.mon(0);
    assert_eq!(src.status(&EID).unwrap().state, EnclaveState::Migrated);
    assert!(src.enclave_host_ref().get(&EID).is_none());
    assert!(!src.may_run(&EID));
    assert_eq!(w.mon(1).status(&EID).unwrap().epoch, 1);
    // The ledger saw RELEASE then ACTIVE, and nothing else.
    assert!(matches!(
        w.ledger[..],
        [
            LedgerEvent::Released { epoch: 1, .. },
            LedgerEvent::Activated { epoch: 1, .. }
        ]
    ));
}

#[test]
fn migrate_empty_state() {
    migrate(0);
}

#[test]
fn migrate_1_kib() {
    migrate(1024);
}

#[test]
fn migrate_1_mib() {
    migrate(1 << 20);
}

#[test]
fn migrate_64_mib() {
    migrate(64 << 20);
}

#[test]
fn migrate_there_and_back_and_on() {
    let mut w = World::new(&[2, 2, 3]);
    let img = Image::sample(3, 5000);
    w.deploy(0, EID, &img, 2);
    for (i, target) in [1usize, 0, 2, 1].into_iter().enumerate() {
        w.order(&EID, target, [10 + i as u8; 16]).unwrap();
        w.run_with(|w| w.assert_no_fork(&EID));
        assert_eq!(w.assert_exactly_one(&EID, &img), target);
        assert_eq!(w.mon(target).status(&EID).unwrap().epoch, i as u64 + 1);
    }
    assert!(w.errors.is_empty(), "{:?}", w.errors);
}

#[test]
fn ledger_moves_only_on_signed_proofs() {
    let mut w = World::new(&[2, 2]);
    let img = Image::sample(1, 100);
    w.deploy(0, EID, &img, 1);
    w.order(&EID, 1, [2; 16]).unwrap();
    // Let the protocol run but hold back every message to the SDS.
    let mut held = Vec::new();
    loop {
        w.collect(4);
        let Some(p) = w.net.pop_front() else { break };
        if p.to == To::Sds {
            held.push(p);
        } else {
            w.deliver(p);
        }
    }
    assert_eq!(
        w.location(&EID),
        0,
        "no proof yet: the ledger still says source"
    );
    // A RELEASE signed by the *target's* SM key (not the source) is refused.
    let target_ack = held
        .iter()
        .find(|p| p.from == Some(1))
        .expect("target ack")
        .bytes
        .clone();
    let forged = rewire_core::wire::Message::Release(
        match rewire_core::wire::Message::decode(&target_ack).unwrap() {
            rewire_core::wire::Message::Active(b) => b,
            m => panic!("{m:?}"),
        },
    )
    .encode()
    .unwrap();
    assert!(w.sds().handle(&forged).is_err());
    // A proof from the right host for another enclave's epoch does not move it.
    assert_eq!(w.location(&EID), 0);
    // ACTIVE from the target proves the release too (an honest target
    // activates only on RELEASE): the ledger follows it even if RELEASE is lost.
    assert!(matches!(
        w.sds().handle(&target_ack),
        Ok(LedgerEvent::Activated { epoch: 1, .. })
    ));
    assert_eq!(w.sds().handle(&target_ack), Err(Error::Duplicate));
    let sds_bytes = w.sds().to_bytes().unwrap();
    w.sds_saved = sds_bytes;
    assert_eq!(w.location(&EID), 1);
    for p in held {
        w.deliver(p);
    }
    assert_eq!(w.location(&EID), 1);
    w.assert_exactly_one(&EID, &img);
}

#[test]
fn migrate_an_enclave_that_never_sealed_anything() {
    // An empty Sealed section (the framework never stored a blob) is no
    // sealed data, not a blob to unseal.
    let mut w = World::new(&[2, 2]);
    let img = Image::sample(8, 500);
    let hid = w.hosts[0].id;
    let policy = w
        .sds()
        .register_enclave(
            EID,
            img.measurement(),
            rewire_core::wire::PLATFORM_RISCV64,
            1,
            hid,
        )
        .unwrap();
    w.save_sds();
    let m = w.mon(0);
    m.enclave_host()
        .load(EID, img.code.clone(), img.state.clone(), Vec::new());
    m.install(&policy).unwrap();
    w.order(&EID, 1, [1; 16]).unwrap();
    w.run_with(|w| w.assert_no_fork(&EID));
    assert!(w.errors.is_empty(), "errors: {:?}", w.errors);
    assert_eq!(w.running_copies(&EID), vec![1]);
    let e = w.mon_ref(1).enclave_host_ref().get(&EID).unwrap();
    assert!(e.code == img.code && e.state == img.state && e.sealed.is_empty());
}

#[test]
fn migrate_empty_and_whole_chunk_sealed_data() {
    // No sealed plaintext at all (the blob is one empty, final chunk, which
    // the source opens for its last-chunk flag and sends nothing of), and
    // whole chunks of it.
    for n in [0usize, 16_384, 32_768] {
        let mut w = World::new(&[2, 2]);
        let mut img = Image::sample(9, 100);
        img.sealed = (0..n).map(|i| (i % 253) as u8).collect();
        w.deploy(0, EID, &img, 1);
        w.order(&EID, 1, [1; 16]).unwrap();
        w.run_with(|w| w.assert_no_fork(&EID));
        assert!(w.errors.is_empty(), "{n}: {:?}", w.errors);
        if n == 0 {
            // Nothing to re-seal: the target holds no blob ("no sealed data").
            assert_eq!(w.running_copies(&EID), vec![1]);
            let e = w.mon_ref(1).enclave_host_ref().get(&EID).unwrap();
            assert!(e.state == img.state && e.sealed.is_empty());
        } else {
            assert_eq!(w.assert_exactly_one(&EID, &img), 1, "{n}");
            // The re-sealed blob has `seal`'s layout: whole chunks, the last
            // one final, no empty chunk after them.
            let e = w.mon_ref(1).enclave_host_ref().get(&EID).unwrap();
            let layout = rewire_core::seal::chunk_layout(&e.sealed, e.sealed.len() as u64);
            assert_eq!(layout, Ok((n as u64, (n / 16_384) as u64)), "{n}");
        }
    }
}
