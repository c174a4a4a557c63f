//! State continuity: checkpoints a host cannot roll back, relabel or swap.
//!
//! A framework keeps a durable copy of each enclave it may have to resume
//! after a crash (docs/porting.md). The copy lives on storage the host
//! controls, so the host can hand back an older copy, another enclave's
//! copy, or a copy the framework never meant to keep. librewire decides
//! which copy may be resumed:
//!
//! * **Sealed to the enclave.** The key is bound to this device, the
//!   enclave's measurement *and* its id, under a key id of its own (sealed
//!   data is never a checkpoint, nor the reverse).
//! * **Anchored in the journal.** Committing a checkpoint writes its blob's
//!   salt into the enclave's journal record, which the monotonic counter
//!   protects. Only the monitor seals under the key, drawing a fresh salt
//!   each time, so the salt names one blob: only that blob opens afterwards.
//!   An older one, one sealed but never committed, another enclave's, or
//!   one from before the enclave last left and came back is
//!   `StaleCheckpoint`. An import starts a new record without an anchor, so
//!   nothing from an earlier stay opens; a checkpoint sealed before the
//!   enclave's epoch changed cannot be committed after.
//!
//! Anchoring by salt costs no pass over the data: a checkpoint costs one
//! seal and one journal commit, a restore one unseal.
//!
//! Two steps, so that a crash never leaves an anchor without its blob:
//! [`Monitor::seal_checkpoint`] seals (nothing durable changes), the
//! framework stores the blob *beside* the previous one, then
//! [`Monitor::commit_checkpoint`] anchors it. A crash between the two
//! leaves the previous checkpoint the valid one (and forgets the sealed
//! one: seal again). An enclave's output that depends on its state must
//! wait for the commit.

use crate::crypto::SecretBytes;

use super::Monitor;
use crate::crypto::bind_salt;
use crate::error::{Error, Result};
use crate::journal::RecState;
use crate::platform::{EnclaveHost, Platform};
use crate::seal;
use crate::wire::EnclaveId;

/// Key id of checkpoints (sealed data has its own, `SEALED_DATA_KEY_ID`).
pub const CHECKPOINT_KEY_ID: &[u8] = b"rewire/checkpoint";

/// For how many enclaves at once a monitor remembers a sealed, uncommitted
/// checkpoint (one each, the newest; the enclave sealed longest ago is
/// forgotten first).
pub const MAX_SEALED_CHECKPOINTS: usize = 16;

/// A checkpoint sealed in this run, not committed yet: its enclave, the
/// enclave's epoch then, and its blob's salt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sealed {
    eid: EnclaveId,
    epoch: u64,
    salt: [u8; 32],
}

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

    /// Seal a checkpoint of an enclave's image (whatever the framework needs
    /// to resume it: code, state, sealed data, in its own format). Nothing
    /// durable changes until [`Monitor::commit_checkpoint`]: store the blob
    /// first, keeping the previous one until the commit returns.
    pub fn seal_checkpoint(
        &mut self,
        eid: &EnclaveId,
        image: &[u8],
    ) -> Result<alloc::vec::Vec<u8>> {
        self.check_alive()?;
        let i = self.checkpointable(eid)?;
        let key = self.checkpoint_key(i)?;
        let mut salt = [0u8; 32];
        self.drbg.fill(&mut self.platform, &mut salt)?;
        let salt = bind_salt(&salt, image)?;
        let blob = seal::seal(&key, salt, image)?;
        // Only the newest seal of an enclave may be committed: an older one
        // the host hands back in its place is refused.
        self.sealed_checkpoints.retain(|o| o.eid != *eid);
        if self.sealed_checkpoints.len() >= MAX_SEALED_CHECKPOINTS {
            self.sealed_checkpoints.pop_front();
        }
        self.sealed_checkpoints.push_back(Sealed {
            eid: *eid,
            epoch: self.records[i].epoch,
            salt,
        });
        Ok(blob)
    }

    /// Make a stored checkpoint the only one [`Monitor::restore_checkpoint`]
    /// opens from now on (one journal commit; no pass over the data). Give
    /// it the blob as sealed (the framework's own copy), not one read back
    /// from storage. Refused with `StaleCheckpoint`, nothing changed: any
    /// blob but the newest this run sealed for the enclave (an older one,
    /// another enclave's, one sealed before a restart or forgotten), or one
    /// sealed at another epoch; `Capacity` when the journal is nearly full.
    pub fn commit_checkpoint(&mut self, eid: &EnclaveId, blob: &[u8]) -> Result<()> {
        self.check_alive()?;
        let i = self.checkpointable(eid)?;
        let salt = seal::salt_of(blob)?;
        let s = *self
            .sealed_checkpoints
            .iter()
            .find(|s| s.eid == *eid && s.salt == salt)
            .ok_or(Error::StaleCheckpoint)?;
        if s.epoch != self.records[i].epoch {
            return Err(Error::StaleCheckpoint);
        }
        self.check_journal_room()?;
        self.records[i].checkpoint = Some(salt);
        self.commit()?;
        self.sealed_checkpoints.retain(|o| o.eid != *eid);
        Ok(())
    }

    /// Open an enclave's checkpoint, after a restart, to resume it: only the
    /// one committed last, and only while the enclave is held here (running,
    /// frozen or pending). Refused: any other blob (`StaleCheckpoint`), the
    /// committed one tampered with (`Unseal`), an enclave that has migrated
    /// away (`Migrated`).
    pub fn restore_checkpoint(&self, eid: &EnclaveId, blob: &[u8]) -> Result<SecretBytes> {
        self.check_alive()?;
        let i = self.checkpointable(eid)?;
        let salt = seal::salt_of(blob)?;
        if self.records[i].checkpoint != Some(salt) {
            return Err(Error::StaleCheckpoint);
        }
        seal::unseal(&self.checkpoint_key(i)?, blob)
    }
}

#[cfg(test)]
mod tests {
    use super::super::recovery::JOURNAL_HEADROOM;
    use super::*;
    use crate::crypto::{PublicKey, Secret};
    use crate::journal::{self, Record};
    use crate::monitor::{Config, Identity};
    use crate::soft::{Clock, SoftHost, SoftPlatform};

    /// A commit that would eat into the journal's recovery headroom is
    /// refused with `Capacity` before anything is written.
    #[test]
    fn a_commit_into_the_journal_headroom_is_refused() {
        let id = Identity::derive(Secret::from_bytes([1; 32]), [2; 32]).unwrap(); // safe: test
        let p = SoftPlatform::new(1, Clock::default(), Some(1_800_000_000));
        let mut m =
            Monitor::start(p, SoftHost::default(), id, Config::new(PublicKey([3; 32]))).unwrap(); // safe: test
        let record = |policy: usize| Record {
            id: [1; 16],
            measurement: [2; 32],
            policy: alloc::vec![0; policy],
            epoch: 0,
            state: RecState::Running,
            last: None,
            checkpoint: None,
        };
        let probe = 200_000;
        m.records = alloc::vec![record(probe)];
        let overhead = journal::encode(m.counter, false, &m.records).unwrap().len() - probe; // safe: test
        m.records = alloc::vec![record(
            journal::MAX_JOURNAL - JOURNAL_HEADROOM - overhead + 1
        )];
        m.durable.clone_from(&m.records);
        let blob = m.seal_checkpoint(&[1; 16], b"image").unwrap(); // safe: test
        assert_eq!(m.commit_checkpoint(&[1; 16], &blob), Err(Error::Capacity));
        assert_eq!(m.records[0].checkpoint, None);
        assert!(!m.poisoned);
    }
}
