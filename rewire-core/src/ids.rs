//! Identifiers shared by the wire format and the porting surface. Both
//! [`crate::wire`] and [`crate::platform`] re-export them from here, so that
//! neither module has to import the other.

use crate::crypto::{Digest, PublicKey};

pub type EnclaveId = [u8; 16];
pub type RequestId = [u8; 16];
/// A host is named by its device public key (the root of its evidence chain).
pub type HostId = PublicKey;
pub type Measurement = Digest;

/// Which part of an enclave image a transfer is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Section {
    /// The code (what is measured).
    Code = 0,
    /// Runtime state: memory, registers, whatever the framework snapshots.
    State = 1,
    /// The enclave's sealed data, as the blob the monitor sealed with
    /// [`crate::seal`] under this device's key for this enclave.
    Sealed = 2,
}

impl Section {
    pub const ALL: [Section; 3] = [Section::Code, Section::State, Section::Sealed];
}
