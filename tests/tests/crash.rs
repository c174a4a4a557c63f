//! G3/G5: crash the source monitor, the target monitor, the SDS (and pairs of
//! them) at every step of a migration, and cut the power between a journal
//! write and its counter increment at every commit. After restarting from the
//! durable state and a quiet period there is exactly one runnable copy,
//! byte-exact, and the ledger agrees; no step ever runs two copies.

use rewire_core::Error;
use rewire_tests::*;

const EID: [u8; 16] = *b"enclave-crash-01";

fn fresh() -> (World, Image) {
    let mut w = World::new(&[2, 2]);
    let img = Image::sample(5, 3000);
    w.deploy(0, EID, &img, 1);
    w.order(&EID, 1, [7; 16]).unwrap();
    (w, img)
}

/// Deliver `k` packets faithfully; returns false if the run ended first.
fn steps(w: &mut World, k: usize) -> bool {
    for _ in 0..k {
        w.collect(4);
        let Some(p) = w.net.pop_front() else {
            return false;
        };
        w.deliver(p);
        w.assert_no_fork(&EID);
    }
    true
}

fn total_steps() -> usize {
    let (mut w, _) = fresh();
    let mut n = 0;
    while steps(&mut w, 1) {
        n += 1;
    }
    n
}

#[derive(Debug, Clone, Copy)]
enum Who {
    Source,
    Target,
    Sds,
    SourceAndTarget,
    All,
}

fn crash(w: &mut World, who: Who) {
    match who {
        Who::Source => w.crash(0),
        Who::Target => w.crash(1),
        Who::Sds => w.crash_sds(),
        Who::SourceAndTarget => {
            w.crash(0);
            w.crash(1);
        }
        Who::All => {
            w.crash(0);
            w.crash(1);
            w.crash_sds();
        }
    }
}

fn crash_at_every_step(who: Who, down_for: usize) -> usize {
    let n = total_steps();
    assert!(n > 10, "a migration takes more than 10 deliveries ({n})");
    for k in 0..=n {
        let (mut w, img) = fresh();
        steps(&mut w, k);
        crash(&mut w, who);
        // The others go on while it is down (messages to it are lost).
        steps(&mut w, down_for);
        w.restart_all();
        w.settle();
        let h = w.assert_exactly_one(&EID, &img);
        assert!(h == 0 || h == 1);
    }
    n + 1
}

#[test]
fn crash_source_at_every_step() {
    crash_at_every_step(Who::Source, 0);
    crash_at_every_step(Who::Source, 6);
}

#[test]
fn crash_target_at_every_step() {
    crash_at_every_step(Who::Target, 0);
    crash_at_every_step(Who::Target, 6);
}

#[test]
fn crash_sds_at_every_step() {
    crash_at_every_step(Who::Sds, 0);
    crash_at_every_step(Who::Sds, 6);
}

#[test]
fn crash_source_and_target_together_at_every_step() {
    crash_at_every_step(Who::SourceAndTarget, 0);
}

#[test]
fn crash_everyone_at_every_step() {
    crash_at_every_step(Who::All, 3);
}

/// Power cut between the journal write and the counter increment, at every
/// commit of either monitor. On restart the adversary may present the new
/// blob (written, not counted) or the previous one (counted): both must
/// recover, and the one not chosen must never be accepted afterwards.
#[test]
fn torn_commit_at_every_step() {
    let n = total_steps();
    let mut torn = 0;
    for host in [0usize, 1] {
        for k in 0..=n {
            for present_previous in [false, true] {
                let (mut w, img) = fresh();
                steps(&mut w, k);
                w.mon(host).platform().fail_next_increment = true;
                // Run until that commit fails (the monitor then refuses input).
                for _ in 0..n {
                    if !w.mon(host).platform().fail_next_increment {
                        break;
                    }
                    if !steps(&mut w, 1) {
                        break;
                    }
                }
                if w.mon(host).platform().fail_next_increment {
                    continue; // no commit happened after step k
                }
                torn += 1;
                w.crash(host);
                let (p, _) = w.hosts[host].parked.as_mut().unwrap();
                let hist = p.journal_history.clone();
                let not_chosen = if present_previous {
                    p.journal = hist.get(hist.len().wrapping_sub(2)).cloned();
                    hist.last().cloned()
                } else {
                    hist.get(hist.len().wrapping_sub(2)).cloned()
                };
                w.restart_all();
                w.settle();
                w.assert_exactly_one(&EID, &img);
                // The blob that was not chosen is now refused.
                if let Some(old) = not_chosen {
                    w.crash(host);
                    let (p, _) = w.hosts[host].parked.as_mut().unwrap();
                    let current = p.journal.clone();
                    p.journal = Some(old);
                    assert_eq!(w.restart(host), Err(Error::Rollback), "host{host} k={k}");
                    w.hosts[host].parked.as_mut().unwrap().0.journal = current;
                    w.restart(host).unwrap();
                    w.assert_exactly_one(&EID, &img);
                }
            }
        }
    }
    assert!(torn > 8, "torn commits exercised: {torn}");
}

#[test]
fn storage_failure_poisons_then_recovers() {
    let (mut w, img) = fresh();
    steps(&mut w, 1);
    w.mon(0).platform().fail_next_write = true;
    w.run();
    assert!(w.has_error(0, Error::Storage), "{:?}", w.errors);
    // The monitor refuses input until restarted from its journal.
    w.crash(0);
    w.restart_all();
    w.settle();
    w.assert_exactly_one(&EID, &img);
}

/// Power cut inside the recovery fence itself (after its write, before its
/// first increment): the next start recovers from the fence blob.
#[test]
fn power_cut_inside_recovery() {
    let n = total_steps();
    for k in [3usize, n / 2, n - 2] {
        let (mut w, img) = fresh();
        steps(&mut w, k);
        for host in [0usize, 1] {
            w.crash(host);
            w.hosts[host].parked.as_mut().unwrap().0.fail_next_increment = true;
            assert_eq!(w.restart(host), Err(Error::Counter), "host{host} k={k}");
            w.restart(host).expect("recovers from the fence blob");
        }
        w.settle();
        w.assert_exactly_one(&EID, &img);
    }
}
