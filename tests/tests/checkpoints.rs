//! State continuity (rewire-core monitor/checkpoint.rs): a host that keeps
//! an enclave's checkpoints cannot roll one back, relabel it as another
//! enclave's, swap in one never committed, or bring back one from before the
//! enclave left and returned. Each attack asserts the exact error and that
//! the enclave and its committed checkpoint are intact.

use rewire_core::monitor::{CHECKPOINT_KEY_ID, MAX_SEALED_CHECKPOINTS};
use rewire_core::{EnclaveState, Error};
use rewire_tests::*;

const X: [u8; 16] = *b"enclave-ckpt-xxx";
const Y: [u8; 16] = *b"enclave-ckpt-yyy";

fn world() -> (World, Image) {
    let mut w = World::new(&[2, 2, 2]);
    let img = Image::sample(40, 2000);
    w.deploy(0, X, &img, 1);
    (w, img)
}

/// Seal and commit a checkpoint of `image` for `eid` at host `h`.
fn checkpoint(w: &mut World, h: usize, eid: &[u8; 16], image: &[u8]) -> Vec<u8> {
    let blob = w.mon(h).seal_checkpoint(eid, image).expect("seal"); // safe: test
    assert_eq!(w.mon(h).commit_checkpoint(eid, &blob), Ok(()));
    blob
}

/// Deliver one packet at a time until host `h` holds X in `state`.
fn until(w: &mut World, h: usize, state: EnclaveState) {
    for _ in 0..10_000 {
        if w.mon(h).status(&X).map(|s| s.state) == Some(state) {
            return;
        }
        w.collect(1);
        let p = w.net.pop_front().expect("stalled"); // safe: test
        w.deliver(p);
    }
    panic!("host{h} never reached {state:?}");
}

fn restore(w: &mut World, h: usize, eid: &[u8; 16], blob: &[u8]) -> Result<Vec<u8>, Error> {
    w.mon(h).restore_checkpoint(eid, blob).map(|i| i.to_vec())
}

#[test]
fn the_committed_checkpoint_restores_after_a_restart_and_no_older_one() {
    let (mut w, img) = world();
    let first = checkpoint(&mut w, 0, &X, b"state one");
    let second = checkpoint(&mut w, 0, &X, b"state two");
    w.crash(0);
    w.restart(0).unwrap(); // safe: test
    assert_eq!(restore(&mut w, 0, &X, &second), Ok(b"state two".to_vec()));
    // Rolled back to the first: refused.
    assert_eq!(restore(&mut w, 0, &X, &first), Err(Error::StaleCheckpoint));
    // Nor can the older one be committed again.
    assert_eq!(
        w.mon(0).commit_checkpoint(&X, &first),
        Err(Error::StaleCheckpoint)
    );
    assert_eq!(restore(&mut w, 0, &X, &second), Ok(b"state two".to_vec()));
    w.assert_intact_at(0, &X, &img);
}

#[test]
fn a_checkpoint_never_committed_does_not_open_and_commits_once() {
    let (mut w, img) = world();
    // Nothing committed yet: nothing opens, not even a genuine blob.
    let sealed = w.mon(0).seal_checkpoint(&X, b"state").unwrap(); // safe: test
    assert_eq!(restore(&mut w, 0, &X, &sealed), Err(Error::StaleCheckpoint));
    let committed = checkpoint(&mut w, 0, &X, b"committed");
    // Two blobs sealed after it, neither committed.
    let older = w.mon(0).seal_checkpoint(&X, b"older").unwrap(); // safe: test
    let newer = w.mon(0).seal_checkpoint(&X, b"newer").unwrap(); // safe: test

    // A swap: same enclave, same epoch, but not the one committed.
    assert_eq!(restore(&mut w, 0, &X, &older), Err(Error::StaleCheckpoint));
    assert_eq!(
        restore(&mut w, 0, &X, &committed),
        Ok(b"committed".to_vec())
    );
    // The committed blob cannot be committed again, nor the older seal
    // handed back in place of the newer one: nothing changes.
    let (status, counter) = (w.mon(0).status(&X), w.mon(0).platform().counter);
    for blob in [&committed, &older] {
        assert_eq!(
            w.mon(0).commit_checkpoint(&X, blob),
            Err(Error::StaleCheckpoint)
        );
    }
    assert_eq!(w.mon(0).status(&X), status);
    assert_eq!(w.mon(0).platform().counter, counter, "nothing committed");
    assert_eq!(w.mon(0).commit_checkpoint(&X, &newer), Ok(()));
    // Once committed, it is not committed twice.
    assert_eq!(
        w.mon(0).commit_checkpoint(&X, &newer),
        Err(Error::StaleCheckpoint)
    );
    assert_eq!(restore(&mut w, 0, &X, &newer), Ok(b"newer".to_vec()));
    assert_eq!(restore(&mut w, 0, &X, &older), Err(Error::StaleCheckpoint));
    w.assert_intact_at(0, &X, &img);
}

#[test]
fn another_enclaves_checkpoint_does_not_open_even_with_the_same_code() {
    let (mut w, img) = world();
    // Y runs the very same code on the same host.
    w.deploy(0, Y, &img, 1);
    let x = checkpoint(&mut w, 0, &X, b"x state");
    let y = checkpoint(&mut w, 0, &Y, b"y state");
    // X's checkpoint relabelled as Y's (and the reverse): refused.
    assert_eq!(restore(&mut w, 0, &Y, &x), Err(Error::StaleCheckpoint));
    assert_eq!(restore(&mut w, 0, &X, &y), Err(Error::StaleCheckpoint));
    // Sealed for X, not committed, presented as Y's: refused too.
    let x2 = w.mon(0).seal_checkpoint(&X, b"x next").unwrap(); // safe: test
    assert_eq!(
        w.mon(0).commit_checkpoint(&Y, &x2),
        Err(Error::StaleCheckpoint)
    );
    // Committing one enclave's checkpoint leaves the other's sealed one
    // committable.
    let y2 = w.mon(0).seal_checkpoint(&Y, b"y next").unwrap(); // safe: test
    assert_eq!(w.mon(0).commit_checkpoint(&X, &x2), Ok(()));
    assert_eq!(w.mon(0).commit_checkpoint(&Y, &y2), Ok(()));
    let (x, y) = (x2, y2);
    // Each still opens as its own.
    assert_eq!(restore(&mut w, 0, &Y, &y), Ok(b"y next".to_vec()));
    assert_eq!(restore(&mut w, 0, &X, &x), Ok(b"x next".to_vec()));
    // Behind the anchor, the key binds the enclave id: X's blob does not
    // open with Y's key.
    let y_key = w
        .mon(0)
        .identity()
        .sealing_key(&img.measurement(), &Y, CHECKPOINT_KEY_ID)
        .unwrap(); // safe: test
    assert_eq!(
        rewire_core::seal::unseal(&y_key, &x).map(|_| ()),
        Err(Error::Unseal)
    );
    w.assert_intact_at(0, &X, &img);
    w.assert_intact_at(0, &Y, &img);
}

#[test]
fn sealed_data_and_tampered_blobs_are_not_checkpoints() {
    let (mut w, img) = world();
    let good = checkpoint(&mut w, 0, &X, b"state");
    // The enclave's own sealed data is not a checkpoint.
    let data = w.mon(0).seal_data(&X, b"state").unwrap(); // safe: test
    assert_eq!(restore(&mut w, 0, &X, &data), Err(Error::StaleCheckpoint));
    assert_eq!(
        w.mon(0).commit_checkpoint(&X, &data),
        Err(Error::StaleCheckpoint)
    );
    // The committed blob with its body changed: does not open.
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(restore(&mut w, 0, &X, &bad), Err(Error::Unseal));
    // With its salt changed: not the committed blob.
    let mut bad = good.clone();
    bad[20] ^= 1;
    assert_eq!(restore(&mut w, 0, &X, &bad), Err(Error::StaleCheckpoint));
    // Not a blob at all.
    assert_eq!(restore(&mut w, 0, &X, b"RWSL"), Err(Error::Unseal));
    assert_eq!(w.mon(0).commit_checkpoint(&X, b"RW"), Err(Error::Unseal));
    assert_eq!(restore(&mut w, 0, &X, &good), Ok(b"state".to_vec()));
    // An empty image is an image.
    let empty = checkpoint(&mut w, 0, &X, b"");
    assert_eq!(restore(&mut w, 0, &X, &empty), Ok(Vec::new()));
    w.assert_intact_at(0, &X, &img);
    // Unknown enclaves have no checkpoints.
    assert_eq!(
        w.mon(0).seal_checkpoint(&Y, b"").map(|_| ()),
        Err(Error::UnknownEnclave)
    );
    assert_eq!(restore(&mut w, 0, &Y, &good), Err(Error::UnknownEnclave));
}

/// A → B → A: what A checkpointed before the enclave left never opens
/// again — not while it is away, not once it is back (a new stay, a new
/// epoch) — and B's device cannot open it either.
#[test]
fn after_leaving_and_coming_back_no_checkpoint_from_before_opens() {
    let (mut w, img) = world();
    let before = checkpoint(&mut w, 0, &X, b"epoch 0");
    let unused = w.mon(0).seal_checkpoint(&X, b"epoch 0, later").unwrap(); // safe: test
    w.order(&X, 1, [1; 16]).unwrap(); // safe: test
    w.run();
    assert_eq!(w.mon(0).status(&X).unwrap().state, EnclaveState::Migrated); // safe: test
    assert_eq!(restore(&mut w, 0, &X, &before), Err(Error::Migrated));
    assert_eq!(
        w.mon(0).seal_checkpoint(&X, b"").map(|_| ()),
        Err(Error::Migrated)
    );
    assert_eq!(
        w.mon(0).commit_checkpoint(&X, &before),
        Err(Error::Migrated)
    );
    // B: another device, another anchor.
    assert_eq!(restore(&mut w, 1, &X, &before), Err(Error::StaleCheckpoint));
    let at_b = checkpoint(&mut w, 1, &X, b"epoch 1");
    w.order(&X, 0, [2; 16]).unwrap(); // safe: test
    w.run();
    assert_eq!(w.mon(0).status(&X).unwrap().state, EnclaveState::Running); // safe: test

    // Back at A (epoch 2): the old checkpoint is not anchored; one A
    // sealed at epoch 0 and never committed cannot be committed now.
    assert_eq!(restore(&mut w, 0, &X, &before), Err(Error::StaleCheckpoint));
    assert_eq!(
        w.mon(0).commit_checkpoint(&X, &unused),
        Err(Error::StaleCheckpoint)
    );
    assert_eq!(restore(&mut w, 1, &X, &at_b), Err(Error::Migrated));
    let back = checkpoint(&mut w, 0, &X, b"epoch 2");
    assert_eq!(restore(&mut w, 0, &X, &back), Ok(b"epoch 2".to_vec()));
    w.assert_intact_at(0, &X, &img);
}

/// The target checkpoints its PENDING import; after a crash it restores
/// exactly that, and after RELEASE the same checkpoint stays valid. While
/// the import is still arriving there is nothing to checkpoint; a dropped
/// import has nothing to restore.
#[test]
fn a_pending_import_is_checkpointed_and_restored() {
    let (mut w, img) = world();
    w.order(&X, 1, [1; 16]).unwrap(); // safe: test
    until(&mut w, 1, EnclaveState::Receiving);
    assert_eq!(
        w.mon(1).seal_checkpoint(&X, b"").map(|_| ()),
        Err(Error::InvalidState)
    );
    until(&mut w, 1, EnclaveState::Pending);
    let pending = checkpoint(&mut w, 1, &X, b"imported");
    // READY reaches the source, which commits; then the target crashes.
    w.collect(64);
    let to_source: Vec<_> = w.net.drain(..).filter(|p| p.from == Some(1)).collect();
    for p in to_source {
        w.deliver(p);
    }
    assert_eq!(w.mon(0).status(&X).unwrap().state, EnclaveState::Migrated); // safe: test
    w.crash(1);
    w.restart(1).unwrap(); // safe: test
    assert_eq!(restore(&mut w, 1, &X, &pending), Ok(b"imported".to_vec()));
    // The session died with the crash: the decision comes through the SDS.
    w.settle();
    assert_eq!(w.mon(1).status(&X).unwrap().state, EnclaveState::Running); // safe: test
    assert_eq!(restore(&mut w, 1, &X, &pending), Ok(b"imported".to_vec()));
    w.assert_intact_at(1, &X, &img);
}

#[test]
fn a_gone_record_has_no_checkpoint() {
    let (mut w, img) = world();
    w.order(&X, 1, [1; 16]).unwrap(); // safe: test
    until(&mut w, 1, EnclaveState::Receiving);
    // The source gives up before the end: the target drops its import.
    w.clock.advance(w.timeout_ms + 1);
    w.tick_all();
    w.run();
    assert_eq!(w.mon(1).status(&X).unwrap().state, EnclaveState::Gone); // safe: test
    assert_eq!(
        w.mon(1).seal_checkpoint(&X, b"").map(|_| ()),
        Err(Error::InvalidState)
    );
    w.assert_intact_at(0, &X, &img);
}

/// A commit that fails to reach storage poisons the monitor (as every
/// failed journal write does); the anchor it did not write is not used.
#[test]
fn a_failed_commit_changes_no_anchor() {
    let (mut w, _img) = world();
    let good = checkpoint(&mut w, 0, &X, b"good");
    let next = w.mon(0).seal_checkpoint(&X, b"next").unwrap(); // safe: test
    w.mon(0).platform().fail_next_write = true;
    assert_eq!(w.mon(0).commit_checkpoint(&X, &next), Err(Error::Storage));
    // Poisoned: every call refuses.
    assert_eq!(restore(&mut w, 0, &X, &good), Err(Error::Storage));
    assert_eq!(
        w.mon(0).seal_checkpoint(&X, b"").map(|_| ()),
        Err(Error::Storage)
    );
    assert_eq!(w.mon(0).commit_checkpoint(&X, &next), Err(Error::Storage));
    w.crash(0);
    w.restart(0).unwrap(); // safe: test
    assert_eq!(restore(&mut w, 0, &X, &good), Ok(b"good".to_vec()));
    assert_eq!(restore(&mut w, 0, &X, &next), Err(Error::StaleCheckpoint));
}

/// Sealed checkpoints live in memory until committed: a restart forgets
/// them, and a monitor remembers one for at most MAX_SEALED_CHECKPOINTS
/// enclaves (the one sealed longest ago is forgotten first).
#[test]
fn a_sealed_checkpoint_is_forgotten_on_restart_and_beyond_the_cap() {
    let (mut w, img) = world();
    let sealed = w.mon(0).seal_checkpoint(&X, b"before the crash").unwrap(); // safe: test
    w.crash(0);
    w.restart(0).unwrap(); // safe: test
    assert_eq!(
        w.mon(0).commit_checkpoint(&X, &sealed),
        Err(Error::StaleCheckpoint)
    );
    let x = w.mon(0).seal_checkpoint(&X, b"x").unwrap(); // safe: test
    let others: Vec<[u8; 16]> = (0..MAX_SEALED_CHECKPOINTS as u8)
        .map(|i| {
            let mut eid = *b"enclave-ckpt-o00";
            eid[15] = b'a' + i;
            w.deploy(0, eid, &Image::sample(41 + i, 100), 1);
            eid
        })
        .collect();
    let blobs: Vec<Vec<u8>> = others
        .iter()
        .map(|e| w.mon(0).seal_checkpoint(e, b"o").unwrap()) // safe: test
        .collect();
    assert_eq!(
        w.mon(0).commit_checkpoint(&X, &x),
        Err(Error::StaleCheckpoint),
        "X's is forgotten"
    );
    for (e, b) in others.iter().zip(&blobs) {
        assert_eq!(w.mon(0).commit_checkpoint(e, b), Ok(()));
    }
    w.assert_intact_at(0, &X, &img);
}

/// A commit that fails before anything is written (the random source
/// refuses the journal's salt) changes no anchor and does not poison: the
/// same blob commits once the source is fixed.
#[test]
fn a_commit_refused_before_writing_changes_nothing() {
    let (mut w, img) = world();
    let good = checkpoint(&mut w, 0, &X, b"good");
    let next = w.mon(0).seal_checkpoint(&X, b"next").unwrap(); // safe: test
    let counter = w.mon(0).platform().counter;
    // The next draw repeats the one before: refused (crate::rng).
    w.mon(0).platform().stuck_random = Some([5; 32]);
    let _ = w.mon(0).seal_data(&X, b"one draw of the stuck value");
    assert_eq!(w.mon(0).commit_checkpoint(&X, &next), Err(Error::Random));
    assert_eq!(w.mon(0).platform().counter, counter);
    assert_eq!(restore(&mut w, 0, &X, &good), Ok(b"good".to_vec()));
    w.mon(0).platform().stuck_random = None;
    assert_eq!(w.mon(0).commit_checkpoint(&X, &next), Ok(()));
    assert_eq!(restore(&mut w, 0, &X, &next), Ok(b"next".to_vec()));
    w.assert_intact_at(0, &X, &img);
}
