//! A multi-process world: the SDS and each monitor run as separate OS
//! processes (`rewire-node`), with durable state on disk, connected through
//! an adversarial TCP relay. Used by `tests/tests/processes.rs` (kills at
//! every protocol step, concurrent migrations under faults) and
//! `tests/tests/wire_capture.rs` (what crosses the wire).

pub mod frame;
pub mod relay;
/// File-backed platform and framework (they live in rewire-sim).
pub use rewire_sim::files as store;
pub mod world;
