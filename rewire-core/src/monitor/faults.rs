//! Test-only misbehaviour (feature `fault-injection`, never in a product
//! build): a monitor made the counterpart a compromised or broken host would
//! be. Everything a fault does to a message is here, in one file that
//! mutation testing leaves out (`.cargo/mutants.toml`): its code is not a
//! check, and a mutant of it only changes what a test attacks with.

use alloc::vec::Vec;

use crate::crypto::{Secret, SigningKey};
use crate::error::{Error, Result};
use crate::platform::Section;
use crate::wire::{HostId, MigrationRequest, Ready};

#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// SMS: send END after this many chunks.
    pub truncate_after: Option<usize>,
    /// SMS: send this code instead of the enclave's (the measurement won't match).
    pub replace_code: Option<Vec<u8>>,
    /// SMT: accept offers that name another target (a rogue but endorsed host).
    pub accept_any_target: bool,
    /// SMT: sign READY for another request id.
    pub ready_wrong_request: bool,
    /// SMS (deliberately broken): after journaling MIGRATED and sending
    /// RELEASE, keep the copy and resume it instead of destroying it (a fork).
    pub resume_after_release: bool,
    /// SMT (deliberately broken): time out a PENDING import like a stalled
    /// one and drop it, breaking §7.2 rule 3 (loses a released enclave).
    pub drop_pending_on_timeout: bool,
    /// SMT (deliberately broken): run the imported copy as soon as it is
    /// PENDING, without waiting for RELEASE.
    pub activate_without_release: bool,

    // A compromised counterpart: each lets a test exercise one party's
    // checks alone, against a peer that would never refuse on its own.
    /// SMT (compromised): accept any decodable OFFER, skipping every check
    /// of the request, the source and the policy (the source's checks are
    /// then the only ones between the enclave and this host).
    pub accept_any_offer: bool,
    /// SMT (compromised): present this SM certificate in ACCEPT instead of
    /// its own (another host's genuine certificate over this host's TLS key).
    pub accept_certificate: Option<Vec<u8>>,
    /// SMT (compromised): sign READY with a field changed.
    pub ready_tamper: Option<ReadyTamper>,
    /// SMS (compromised): forward any SDS-signed order for an enclave it
    /// holds, skipping every check of the request but its signature (the
    /// target's checks are then the only ones left).
    pub skip_order_checks: bool,
    /// SMS (compromised): misplace or reshape image chunks.
    pub chunk_tamper: Option<ChunkTamper>,
    /// SMS (compromised): sign RELEASE with a field changed.
    pub release_tamper: Option<DecisionTamper>,
}

/// Which field of READY a compromised target changes.
#[derive(Debug, Clone)]
pub enum ReadyTamper {
    /// Signed by this key instead of the target's SM key.
    Signer([u8; 32]),
    Epoch,
    /// Names the source as target.
    Target,
    Measurement,
    ReportData,
}

/// How a compromised source misplaces or reshapes image chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkTamper {
    /// The last state chunk carries one byte more than the section's length.
    Oversize,
    /// The first state chunk names the next offset.
    WrongOffset,
    /// The first state chunk names the sealed section.
    WrongSection,
    /// One more state chunk after the whole image, just before END.
    AfterEnd,
    /// Sealed data in pieces of this many bytes (legal: any size up to a chunk).
    SealedPieces(usize),
}

/// Which field of a decision a compromised source changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionTamper {
    Epoch,
    /// Names the source as target.
    Target,
}

impl Faults {
    /// SMS: send END instead of chunk number `chunks_sent`.
    pub(super) fn truncate(&self, chunks_sent: usize) -> bool {
        self.truncate_after.is_some_and(|n| chunks_sent >= n)
    }

    /// SMS: how many bytes of sealed data go in one chunk (`full` unless
    /// the test asks for smaller pieces).
    pub(super) fn sealed_piece(&self, full: usize) -> usize {
        match self.chunk_tamper {
            Some(ChunkTamper::SealedPieces(n)) => n.clamp(1, full),
            _ => full,
        }
    }

    /// SMS: how many bytes more (0 or 1) the chunk that ends at `end` carries:
    /// one on the chunk that ends the state section (`len` its length).
    pub(super) fn oversize(&self, section: Section, end: u64, len: u64) -> usize {
        usize::from(
            self.chunk_tamper == Some(ChunkTamper::Oversize)
                && section == Section::State
                && end == len,
        )
    }

    /// SMS: name another place for the first state chunk.
    pub(super) fn misplace(&self, section: &mut Section, offset: &mut u64) {
        if *section == Section::State && *offset == 0 {
            match self.chunk_tamper {
                Some(ChunkTamper::WrongOffset) => *offset += 1,
                Some(ChunkTamper::WrongSection) => *section = Section::Sealed,
                _ => {}
            }
        }
    }

    /// SMS: what a compromised source's RELEASE names instead.
    pub(super) fn release_names(&self, named: &mut MigrationRequest, epoch: &mut u64) {
        match self.release_tamper {
            Some(DecisionTamper::Epoch) => *epoch += 1,
            Some(DecisionTamper::Target) => named.target = named.source,
            None => {}
        }
    }

    /// SMT: drop a PENDING import on a timeout while awaiting the decision.
    pub(super) fn drops_pending(&self, why: Error, awaiting_decision: bool) -> bool {
        self.drop_pending_on_timeout && why == Error::Timeout && awaiting_decision
    }

    /// SMT: change a field of READY, or return the key to sign it with
    /// instead of the SM key.
    pub(super) fn tamper_ready(
        &self,
        ready: &mut Ready,
        source: HostId,
    ) -> Result<Option<SigningKey>> {
        match &self.ready_tamper {
            Some(ReadyTamper::Signer(seed)) => {
                return Ok(Some(SigningKey::from_seed(Secret::from_bytes(*seed))?))
            }
            Some(ReadyTamper::Epoch) => ready.epoch += 1,
            Some(ReadyTamper::Target) => ready.target = source,
            Some(ReadyTamper::Measurement) => ready.measurement[0] ^= 1,
            Some(ReadyTamper::ReportData) => ready.report_data[0] ^= 1,
            None => {}
        }
        Ok(None)
    }
}
