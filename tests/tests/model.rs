//! Exhaustive bounded model check of SDS + SMS + SMT against G1, G2, G3 and
//! G5 (see `rewire_tests::model` for the model, the adversary and the
//! checks). The CI bound (traces of 15 choices, 1 fault, 1 SDS retry) runs
//! here; a deeper one is selected by environment: `REWIRE_MODEL_DEPTH`,
//! `REWIRE_MODEL_FAULTS`, `REWIRE_MODEL_RETRIES`, with
//! `REWIRE_MODEL_THREADS` workers, `REWIRE_MODEL_PROGRESS` for a line per
//! level and `REWIRE_MODEL_MAX_STATES` to cap the states. The deep bound:
//!
//! ```sh
//! REWIRE_MODEL_DEPTH=17 REWIRE_MODEL_FAULTS=2 REWIRE_MODEL_RETRIES=1 \
//! REWIRE_MODEL_THREADS=2 REWIRE_MODEL_PROGRESS=1 \
//!   cargo test --release -p rewire-tests --test model model_check_sds_sms_smt -- --nocapture
//! ```

use std::io::Write;

use rewire_tests::model::{explore, Bounds, Report, Sim, Variant, ACTION_KINDS};

/// Printed whether or not the harness captures output.
fn say(s: &str) {
    let _ = writeln!(std::io::stderr(), "{s}");
}

#[test]
fn model_check_sds_sms_smt() {
    let b = Bounds::from_env(15, 1, 1);
    let rep = explore(&b, Variant::default());
    say(&format!(
        "model check (depth {}, faults {}, retries {}): {rep}",
        b.depth, b.faults, b.retries
    ));
    if let Some(c) = &rep.counterexample {
        panic!("{c}");
    }
    // A broken explorer that explores nothing must fail: at the CI bound
    // (or deeper) thousands of states, every state driven to quiescence,
    // rollback probes made, and every kind of adversary choice taken.
    assert!(rep.states > 100, "only {} states explored", rep.states);
    if b.depth >= 15 && b.faults >= 1 && b.retries >= 1 {
        assert!(rep.states >= 5000, "only {} states explored", rep.states);
        assert!(rep.ended_at[0] > 0 && rep.ended_at[1] > 0, "both outcomes");
        for (k, n) in ACTION_KINDS.iter().zip(rep.by_kind) {
            assert!(n > 0, "the adversary never chose {k}");
        }
    }
    assert!(rep.g3_runs as usize >= rep.states && rep.g5_probes > 0);
    assert!(
        rep.checkpoint_probes > 0 && rep.checkpoints > 0,
        "checkpoints never presented"
    );
}

/// A deliberately broken monitor is caught; returns the report.
fn caught(v: Variant, faults: usize) -> Report {
    let b = Bounds {
        depth: 16,
        faults,
        retries: 0,
        max_states: 0,
        g3_everywhere: true,
    };
    let rep = explore(&b, v);
    say(&format!("{v:?}: {rep}"));
    let Some(c) = &rep.counterexample else {
        panic!("the checker missed a broken variant: {v:?}");
    };
    say(&format!("{c}"));
    // The counterexample is a trace: replaying it reproduces the violation.
    let mut sim = Sim::replay(c.init, &c.trace, v, false).expect("the trace replays");
    let again = if c.in_completion {
        sim.complete().map(|_| ())
    } else {
        sim.check_g2().and_then(|()| sim.check_g1())
    };
    assert!(again.is_err(), "the counterexample does not reproduce");
    rep
}

#[test]
fn broken_resume_after_release_is_caught() {
    let rep = caught(
        Variant {
            resume_after_release: true,
            ..Variant::default()
        },
        0,
    );
    let c = rep.counterexample.unwrap(); // safe: caught() checked it
    assert!(c.violation.starts_with("G2"), "{}", c.violation);
}

#[test]
fn broken_drop_pending_on_timeout_is_caught() {
    let rep = caught(
        Variant {
            drop_pending_on_timeout: true,
            ..Variant::default()
        },
        1,
    );
    let c = rep.counterexample.unwrap(); // safe: caught() checked it
    assert!(c.violation.starts_with("G3"), "{}", c.violation);
}

#[test]
fn broken_activate_without_release_is_caught() {
    let rep = caught(
        Variant {
            activate_without_release: true,
            ..Variant::default()
        },
        0,
    );
    let c = rep.counterexample.unwrap(); // safe: caught() checked it
    assert!(c.violation.starts_with("G2"), "{}", c.violation);
}
