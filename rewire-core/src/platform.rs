//! The whole porting surface: two traits.
//!
//! * [`Platform`] — what the security monitor's hardware gives: randomness,
//!   time, journal storage (untrusted: the host OS keeps the bytes) and a
//!   monotonic counter (trusted: it never goes back, e.g. RPMB, a fuse bank, a
//!   TPM NV counter, or a replay-protected flash region).
//! * [`EnclaveHost`] — what the enclave framework gives: lifecycle and memory
//!   of enclaves.
//!
//! Every `EnclaveHost` operation must be idempotent (pausing a paused enclave,
//! resuming a running one or destroying an absent one succeeds): after a crash
//! the monitor re-applies the side effects of its last journaled state.

use alloc::vec::Vec;

use crate::crypto::Digest;
use crate::error::Result;
use crate::ids::EnclaveId;
pub use crate::ids::Section;

/// Services of the platform under the monitor.
pub trait Platform {
    /// Fill `buf` with cryptographically secure random bytes, or fail with `Error::Random`.
    fn random(&mut self, buf: &mut [u8]) -> Result<()>;
    /// Milliseconds from an arbitrary origin; never decreases while the monitor runs.
    fn monotonic_ms(&mut self) -> u64;
    /// Trusted wall time in seconds since the Unix epoch, if the platform has one.
    /// Without it, deadlines and endorsement validity cannot be checked and
    /// migrations are refused with `Error::NoTrustedTime` (fail closed).
    fn wall_time(&mut self) -> Option<u64>;
    /// The last journal blob written, if any. Untrusted storage: the bytes may be
    /// any earlier copy, or garbage.
    fn journal_read(&mut self) -> Result<Option<Vec<u8>>>;
    /// Replace the journal blob. It must be durable when this returns.
    fn journal_write(&mut self, blob: &[u8]) -> Result<()>;
    /// Current value of the trusted monotonic counter.
    fn counter_read(&mut self) -> Result<u64>;
    /// Increment the counter by one, durably, and return the new value.
    fn counter_increment(&mut self) -> Result<u64>;
}

/// Services of the enclave framework (Keystone's SM enclave lifecycle, CURE, OP-TEE TAs).
pub trait EnclaveHost {
    /// Stop scheduling the enclave; its memory stays intact.
    fn pause(&mut self, id: &EnclaveId) -> Result<()>;
    /// Make the enclave runnable (also the first run of an imported one).
    fn resume(&mut self, id: &EnclaveId) -> Result<()>;
    /// Destroy the enclave and zeroize its memory. Absent enclave: success.
    fn destroy(&mut self, id: &EnclaveId) -> Result<()>;
    /// Length in bytes of a section of a (paused) enclave.
    fn export_len(&mut self, id: &EnclaveId, section: Section) -> Result<u64>;
    /// Read `buf.len()` bytes (fewer only at the end) of a section at `offset`.
    fn export(
        &mut self,
        id: &EnclaveId,
        section: Section,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize>;
    /// Write bytes of a section of an incoming enclave at `offset`. The first
    /// call creates the instance, paused and not runnable; sections arrive in
    /// order Code, State, Sealed, each from offset 0 upwards.
    fn import(&mut self, id: &EnclaveId, section: Section, offset: u64, data: &[u8]) -> Result<()>;
    /// The framework's measurement of the enclave's code as loaded.
    fn measure(&mut self, id: &EnclaveId) -> Result<Digest>;
    /// Framework-specific attestation of the loaded instance bound to
    /// `report_data` (e.g. Keystone's native enclave report). May be empty; it
    /// is carried, size-capped, inside the SM-signed READY report.
    fn attest(&mut self, id: &EnclaveId, report_data: &Digest) -> Result<Vec<u8>>;
}
