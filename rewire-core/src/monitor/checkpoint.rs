//! State continuity: checkpoints a host cannot roll back, relabel or swap.
//!
//! A framework keeps a durable copy of each enclave it may have to resume
//! after a crash (docs/porting.md). The copy lives on storage the host
//! controls, so the host can hand back an older copy, another enclave's
//! copy, or a copy the framework never meant to keep. librewire makes that
//! impossible to get wrong:
//!
//! * **Sealed to the enclave.** The key is bound to this device, the
//!   enclave's measurement *and* its id, under a key id of its own (sealed
//!   data cannot be presented as a checkpoint, nor the reverse): another
//!   enclave's checkpoint does not open (`Unseal`).
//! * **Anchored in the journal.** Committing a checkpoint writes its
//!   sequence number and SHA-256 into the enclave's journal record, which
//!   the monotonic counter protects: only that one blob opens afterwards;
//!   an older one, one sealed but never committed, or one from before the
//!   enclave last left and came back is `StaleCheckpoint`. An import starts a
//!   new record without an anchor, so nothing from an earlier stay opens.
//!
//! Two steps, so that a crash never leaves an anchor without its blob:
//! [`Monitor::seal_checkpoint`] seals (nothing changes here), the framework
//! stores the blob durably *next to* the previous one, then
//! [`Monitor::commit_checkpoint`] anchors it (one journal commit and counter
//! step). A crash between the two leaves the previous checkpoint the valid
//! one. An enclave's output that depends on its state must wait for the
//! commit.

use zeroize::Zeroizing;

use super::Monitor;
use crate::crypto::{bind_salt, sha256};
use crate::error::{Error, Result};
use crate::journal::{Anchor, RecState};
use crate::platform::{EnclaveHost, Platform};
use crate::seal;
use crate::wire::EnclaveId;

/// Key id of checkpoints (sealed data has its own, `SEALED_DATA_KEY_ID`).
pub const CHECKPOINT_KEY_ID: &[u8] = b"rewire/checkpoint";

/// The sealed plaintext starts with the epoch and the sequence number
/// (8 bytes each, big-endian); the framework's image follows.
const HEADER: usize = 16;

impl<P: Platform, H: EnclaveHost> Monitor<P, H> {
    /// The record of an enclave that may be checkpointed or restored here:
    /// running, frozen for a migration, or imported and pending.
    fn checkpointable(&self, eid: &EnclaveId) -> Result<usize> {
        let i = self.find(eid).ok_or(Error::UnknownEnclave)?;
        match self.records[i].state {
            RecState::Running | RecState::Frozen { .. } | RecState::Pending { .. } => Ok(i),
            RecState::Migrated => Err(Error::Migrated),
            RecState::Receiving { .. } | RecState::Gone => Err(Error::InvalidState),
        }
    }

    fn checkpoint_key(&self, i: usize) -> Result<crate::crypto::Secret> {
        let r = &self.records[i];
        self.id
            .sealing_key(&r.measurement, &r.id, CHECKPOINT_KEY_ID)
    }

    /// Open a checkpoint with the enclave's key: (epoch, seq, image).
    fn open(&self, i: usize, blob: &[u8]) -> Result<(u64, u64, Zeroizing<alloc::vec::Vec<u8>>)> {
        let plain = seal::unseal(&self.checkpoint_key(i)?, blob)?;
        if plain.len() < HEADER {
            return Err(Error::Decode);
        }
        let (header, image) = plain.split_at(HEADER);
        let (epoch, seq) = header.split_at(8);
        let epoch = u64::from_be_bytes(epoch.try_into().map_err(|_| Error::Decode)?);
        let seq = u64::from_be_bytes(seq.try_into().map_err(|_| Error::Decode)?);
        Ok((epoch, seq, Zeroizing::new(image.to_vec())))
    }

    /// Seal a checkpoint of an enclave's image (whatever the framework needs
    /// to resume it: code, state, sealed data, in its own format). Nothing
    /// changes here until [`Monitor::commit_checkpoint`]: store the blob
    /// durably first, keeping the previous one until the commit returns.
    pub fn seal_checkpoint(
        &mut self,
        eid: &EnclaveId,
        image: &[u8],
    ) -> Result<alloc::vec::Vec<u8>> {
        self.check_alive()?;
        let i = self.checkpointable(eid)?;
        let seq = match self.records[i].checkpoint {
            Some(a) => a.seq.checked_add(1).ok_or(Error::Capacity)?,
            None => 1,
        };
        let mut plain = Zeroizing::new(alloc::vec::Vec::new());
        plain
            .try_reserve_exact(HEADER + image.len())
            .map_err(|_| Error::Capacity)?;
        plain.extend_from_slice(&self.records[i].epoch.to_be_bytes());
        plain.extend_from_slice(&seq.to_be_bytes());
        plain.extend_from_slice(image);
        let key = self.checkpoint_key(i)?;
        let mut salt = [0u8; 32];
        self.drbg.fill(&mut self.platform, &mut salt)?;
        let salt = bind_salt(&salt, &plain)?;
        seal::seal(&key, salt, &plain)
    }

    /// Make a stored checkpoint the only one [`Monitor::restore_checkpoint`]
    /// opens from now on (one journal commit). Refused, with nothing changed:
    /// a blob that does not open for this enclave (`Unseal`), one sealed at
    /// another epoch, or one not newer than the committed one
    /// (`StaleCheckpoint`).
    pub fn commit_checkpoint(&mut self, eid: &EnclaveId, blob: &[u8]) -> Result<()> {
        self.check_alive()?;
        let i = self.checkpointable(eid)?;
        let (epoch, seq, _) = self.open(i, blob)?;
        if epoch != self.records[i].epoch {
            return Err(Error::StaleCheckpoint);
        }
        if self.records[i].checkpoint.is_some_and(|a| seq <= a.seq) {
            return Err(Error::StaleCheckpoint);
        }
        self.records[i].checkpoint = Some(Anchor {
            seq,
            digest: sha256(blob),
        });
        self.commit()
    }

    /// Open an enclave's checkpoint, after a restart, to resume it: only the
    /// one committed last, and only while the enclave is held here (running,
    /// frozen or pending). Refused: another enclave's or a tampered blob
    /// (`Unseal`), any other checkpoint of this enclave (`StaleCheckpoint`),
    /// an enclave that has migrated away (`Migrated`).
    pub fn restore_checkpoint(
        &self,
        eid: &EnclaveId,
        blob: &[u8],
    ) -> Result<Zeroizing<alloc::vec::Vec<u8>>> {
        self.check_alive()?;
        let i = self.checkpointable(eid)?;
        let (_, _, image) = self.open(i, blob)?;
        match self.records[i].checkpoint {
            Some(a) if a.digest == sha256(blob) => Ok(image),
            _ => Err(Error::StaleCheckpoint),
        }
    }
}
