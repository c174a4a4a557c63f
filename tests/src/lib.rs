//! librewire's cross-crate and system tests. The in-process world they run
//! against (SDS, software monitors, the adversarial network, crashes, power
//! cuts, the fleet invariants) is `rewire-sim`'s, re-exported here; this
//! crate adds the model check (`model`) and the multi-process world (`node`).

pub use rewire_sim::*;

pub mod model;

pub mod node;
