//! G2/G3 under a seeded adversarial network: every packet may be delivered,
//! dropped, duplicated, reordered, corrupted or delayed; time jumps fire
//! timeouts; the SDS retries; hosts crash and restart. After every step no
//! host runs a second copy; after a quiet period exactly one host runs the
//! enclave with its exact state. A failure names its seed:
//! `REWIRE_SEED=<n> cargo test -p rewire-tests --test adversary one_seed`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rewire_tests::*;

const EID: [u8; 16] = *b"enclave-adversar";

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    delivered: u64,
    dropped: u64,
    duplicated: u64,
    reordered: u64,
    corrupted: u64,
    delayed: u64,
    ticks: u64,
    crashes: u64,
    committed: u64,
    aborted: u64,
}

fn run_seed(seed: u64, t: &mut Tally) {
    let mut rng = Rng::new(seed);
    let mut w = World::new(&[2, 2, 2]);
    let img = Image::sample(seed as u8, 1 + rng.below(6000) as usize);
    w.deploy(0, EID, &img, 1);
    let target = 1 + rng.below(2) as usize;
    w.order(&EID, target, [seed as u8 ^ 0x5a; 16]).unwrap();
    // Fault intensity varies by seed: from a clean network to a hostile one.
    let fault_pct = [0u64, 1, 3, 8, 20, 50][(seed % 6) as usize];
    let crash_pct = [0u64, 0, 1, 2, 3, 5][(seed / 6 % 6) as usize];
    let budget = 60 + rng.below(400);
    // Each kind of fault with a fifth of the seed's fault rate.
    w.faults = NetFaults::uniform(fault_pct as f64 / 500.0);
    w.rng = Rng::new(seed ^ 0xadd5);
    for _ in 0..budget {
        w.collect(1 + rng.below(3) as usize);
        if w.net.is_empty() || rng.below(100) < 2 {
            if w.net.is_empty() && w.sds.as_ref().is_some_and(|s| s.is_settled_all()) {
                break;
            }
            // Time jumps: timeouts fire, the SDS retries.
            w.clock.advance(rng.below(2 * TIMEOUT_MS));
            w.tick_all();
            w.resolve();
            t.ticks += 1;
            continue;
        }
        if rng.below(100) < crash_pct {
            let who = rng.below(4) as usize;
            if who == 3 {
                w.crash_sds();
                w.restart_sds();
            } else {
                w.crash(who);
                w.restart(who).expect("restart from the latest journal");
            }
            t.crashes += 1;
        }
        // rewire-sim's seeded fault policy decides what happens to the next packet.
        match w.step(0) {
            Some(Fault::Dropped) => t.dropped += 1,
            Some(Fault::Duplicated) => t.duplicated += 1,
            Some(Fault::Reordered) => t.reordered += 1,
            Some(Fault::Corrupted) => t.corrupted += 1,
            Some(Fault::Delayed) => t.delayed += 1,
            Some(_) => t.delivered += 1,
            None => continue,
        }
        w.assert_no_fork(&EID);
    }
    // Quiet period.
    w.settle();
    w.assert_no_fork(&EID);
    let h = w.assert_exactly_one(&EID, &img);
    if h == target {
        t.committed += 1;
    } else {
        assert_eq!(
            h, 0,
            "the enclave is at the source or the target, nowhere else"
        );
        t.aborted += 1;
    }
}

fn run_seeds(seeds: std::ops::Range<u64>) -> Tally {
    let mut t = Tally::default();
    for seed in seeds {
        let r = catch_unwind(AssertUnwindSafe(|| run_seed(seed, &mut t)));
        if r.is_err() {
            panic!("adversarial run failed for seed {seed} (rerun: REWIRE_SEED={seed})");
        }
    }
    t
}

#[test]
fn adversarial_network_600_seeds() {
    let n: u64 = std::env::var("REWIRE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let t = run_seeds(0..n);
    println!("{n} seeds: {t:?}");
    // The schedule really exercised both outcomes and every fault.
    assert!(t.committed > 0 && t.aborted > 0, "{t:?}");
    assert!(
        t.dropped > 0 && t.duplicated > 0 && t.reordered > 0 && t.corrupted > 0 && t.crashes > 0
    );
}

#[test]
fn one_seed() {
    if let Some(seed) = std::env::var("REWIRE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        let mut t = Tally::default();
        run_seed(seed, &mut t);
        println!("{t:?}");
    }
}
