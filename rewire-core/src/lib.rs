//! # rewire-core
//!
//! The core of librewire: a sans-IO implementation of secure enclave
//! migration between security monitors, with the sealing and the attested
//! channel around it. `#![no_std]` + `alloc`; it does no I/O and reads no
//! clock or RNG itself (see [`platform`]: two traits are the whole porting
//! surface).
//!
//! * [`monitor::Monitor`] — one per host: source (SMS) and target (SMT) roles.
//! * [`sds::Sds`] — the operator's control plane: registry, requests, ledger.
//! * [`wire`] — COSE_Sign1 / deterministic CBOR objects.
//! * [`seal`] — chunked AEAD sealing in bounded memory.
//! * [`channel`] — TLS 1.3 (rustls unbuffered) between monitors.
//! * [`soft`] — software platform and enclave framework for tests.
//!
//! The protocol, its state machines and how each guarantee is enforced are
//! specified in `docs/protocol.md`.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_debug_implementations)]
// Without `tracing`, values kept only for events go unused.
#![cfg_attr(not(feature = "tracing"), allow(unused_variables))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

/// `tracing` events when the feature is on; nothing otherwise.
macro_rules! event {
    ($level:ident, $($t:tt)*) => {
        #[cfg(feature = "tracing")]
        tracing::$level!($($t)*);
    };
}

pub mod boot;
mod cbor;
pub mod channel;
pub mod crypto;
pub mod error;
mod ids;
mod journal;
pub mod link;
#[cfg(feature = "tracing")]
pub mod log;
pub mod monitor;
pub mod platform;
mod rng;
pub mod sds;
pub mod seal;
pub mod soft;
pub mod wire;

pub use crypto::{PublicKey, Secret, SigningKey};
pub use error::{Error, Result};
pub use monitor::{Config, Dest, EnclaveState, EnclaveStatus, Event, Identity, Monitor, Output};
pub use platform::{EnclaveHost, Platform, Section};
pub use sds::{LedgerEvent, Sds};
pub use wire::{EnclaveId, HostId, Measurement, RequestId};

/// The crate version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
