//! rewire-sim: the one in-process world of librewire's tests, fuzz targets,
//! demo, benchmarks and Python `rewire.sim` fleets.
//!
//! One SDS, N software monitors (the real `rewire_core::Monitor` over the
//! software platform and framework of `rewire_core::soft`), and an untrusted
//! network between them that the caller controls packet by packet (deliver,
//! drop, duplicate, reorder, corrupt, delay, redirect, hooks, a seeded fault
//! policy); crashes and restarts of any party from its durable state, power
//! cuts between a journal write and its counter increment, journal rollback,
//! time jumps; and the fleet invariants (G2: at most one runnable copy; G3:
//! exactly one, byte-exact, where the ledger says).
//!
//! Nothing here holds protocol logic: the world routes bytes and keeps score.

pub mod describe;
#[cfg(feature = "files")]
pub mod files;
pub mod keys;
pub mod net;
pub mod persist;
pub mod world;

pub use describe::{describe, describe_event, event_name, state_name};
pub use keys::{
    config, device_secret, identity, sds_key, Image, SM_MEASUREMENT, TIMEOUT_MS, WALL0,
};
pub use net::{Envelope, Fault, NetFaults, Packet, Rng, To, Verdict};
pub use world::{HostSlot, Mon, SdsPort, World, SDS};
