//! Software implementations of [`Platform`] and [`EnclaveHost`], for tests,
//! simulations and the in-process demo. Nothing here is secure: the
//! randomness is a seeded hash chain, the "counter" is a field.
//!
//! Both are plain data, so a test can keep them across a simulated monitor
//! crash ([`crate::Monitor::into_parts`]) and tamper with them as the
//! adversary would: roll the journal back, corrupt stored blobs.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::crypto::{sha256, Digest};
use crate::error::{Error, Result};
use crate::platform::{EnclaveHost, Platform, Section};
use crate::wire::EnclaveId;

/// A clock shared by simulated hosts: monotonic milliseconds; wall time is
/// `wall_base + ms / 1000`.
#[derive(Debug, Clone, Default)]
pub struct Clock(Arc<AtomicU64>);

impl Clock {
    pub fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

/// Deterministic software platform.
#[derive(Debug, Clone)]
pub struct SoftPlatform {
    rng_state: Digest,
    rng_count: u64,
    pub clock: Clock,
    /// Wall time at clock 0; `None` models a platform without trusted wall time.
    pub wall_base: Option<u64>,
    /// The journal blob the untrusted storage returns.
    pub journal: Option<Vec<u8>>,
    /// Every blob ever written, oldest first (what an adversary could keep).
    pub journal_history: Vec<Vec<u8>>,
    pub counter: u64,
    /// Make the next journal write fail (storage fault).
    pub fail_next_write: bool,
    /// Make the next counter increment fail: the power is cut between the
    /// journal write and the increment (a torn commit).
    pub fail_next_increment: bool,
    /// A stuck or repeating random source: every request gets these bytes.
    pub stuck_random: Option<[u8; 32]>,
}

impl SoftPlatform {
    pub fn new(seed: u64, clock: Clock, wall_base: Option<u64>) -> Self {
        SoftPlatform {
            rng_state: sha256(&seed.to_le_bytes()),
            rng_count: 0,
            clock,
            wall_base,
            journal: None,
            journal_history: Vec::new(),
            counter: 0,
            fail_next_write: false,
            fail_next_increment: false,
            stuck_random: None,
        }
    }
}

impl Platform for SoftPlatform {
    fn random(&mut self, buf: &mut [u8]) -> Result<()> {
        if let Some(stuck) = self.stuck_random {
            for chunk in buf.chunks_mut(32) {
                chunk.copy_from_slice(&stuck[..chunk.len()]);
            }
            return Ok(());
        }
        for chunk in buf.chunks_mut(32) {
            let mut input = [0u8; 40];
            input[..32].copy_from_slice(&self.rng_state);
            input[32..].copy_from_slice(&self.rng_count.to_le_bytes());
            self.rng_count += 1;
            let block = sha256(&input);
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
    fn monotonic_ms(&mut self) -> u64 {
        self.clock.now_ms()
    }
    fn wall_time(&mut self) -> Option<u64> {
        self.wall_base.map(|b| b + self.clock.now_ms() / 1000)
    }
    fn journal_read(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(self.journal.clone())
    }
    fn journal_write(&mut self, blob: &[u8]) -> Result<()> {
        if core::mem::take(&mut self.fail_next_write) {
            return Err(Error::Storage);
        }
        self.journal = Some(blob.to_vec());
        self.journal_history.push(blob.to_vec());
        Ok(())
    }
    fn counter_read(&mut self) -> Result<u64> {
        Ok(self.counter)
    }
    fn counter_increment(&mut self) -> Result<u64> {
        if core::mem::take(&mut self.fail_next_increment) {
            return Err(Error::Counter);
        }
        self.counter += 1;
        Ok(self.counter)
    }
}

/// [`EnclaveHost::export`] over a section held as bytes: up to `buf.len()`
/// bytes from `offset` (fewer only at the end).
pub fn export_from(data: &[u8], offset: u64, buf: &mut [u8]) -> Result<usize> {
    let start = usize::try_from(offset)
        .map_err(|_| Error::Host)?
        .min(data.len());
    let n = buf.len().min(data.len() - start);
    buf[..n].copy_from_slice(&data[start..start + n]);
    Ok(n)
}

/// The software framework's (unsigned, simulated) attestation evidence:
/// SHA-256 of the code, then the report data.
pub fn evidence(code: &[u8], report_data: &Digest) -> Vec<u8> {
    let mut ev = Vec::with_capacity(64);
    ev.extend_from_slice(&sha256(code));
    ev.extend_from_slice(report_data);
    ev
}

/// One software enclave: its image and whether it may be scheduled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoftEnclave {
    pub code: Vec<u8>,
    pub state: Vec<u8>,
    pub sealed: Vec<u8>,
    pub running: bool,
}

impl SoftEnclave {
    fn section(&self, s: Section) -> &Vec<u8> {
        match s {
            Section::Code => &self.code,
            Section::State => &self.state,
            Section::Sealed => &self.sealed,
        }
    }
    fn section_mut(&mut self, s: Section) -> &mut Vec<u8> {
        match s {
            Section::Code => &mut self.code,
            Section::State => &mut self.state,
            Section::Sealed => &mut self.sealed,
        }
    }
}

/// Software enclave framework. The measurement is SHA-256 of the code.
#[derive(Debug, Clone, Default)]
pub struct SoftHost {
    pub enclaves: BTreeMap<EnclaveId, SoftEnclave>,
    /// Number of operations performed, by name (for assertions).
    pub ops: BTreeMap<&'static str, u64>,
    /// Make the next `n` calls of an operation (by name) fail with `Error::Host`.
    pub fail: BTreeMap<&'static str, u32>,
    /// Make `attest` return evidence of exactly this many bytes.
    pub evidence_len: Option<usize>,
}

impl SoftHost {
    /// Load an enclave (paused) as a deployment would.
    pub fn load(&mut self, id: EnclaveId, code: Vec<u8>, state: Vec<u8>, sealed: Vec<u8>) {
        self.enclaves.insert(
            id,
            SoftEnclave {
                code,
                state,
                sealed,
                running: false,
            },
        );
    }
    pub fn get(&self, id: &EnclaveId) -> Option<&SoftEnclave> {
        self.enclaves.get(id)
    }
    /// Whether the enclave exists here and is scheduled.
    pub fn is_running(&self, id: &EnclaveId) -> bool {
        self.enclaves.get(id).is_some_and(|e| e.running)
    }
    /// The enclave does some work: its state changes (only while running).
    pub fn step(&mut self, id: &EnclaveId) -> bool {
        match self.enclaves.get_mut(id) {
            Some(e) if e.running => {
                let n = e.state.len();
                if n > 0 {
                    e.state[n - 1] = e.state[n - 1].wrapping_add(1);
                }
                true
            }
            _ => false,
        }
    }
    fn count(&mut self, op: &'static str) -> Result<()> {
        *self.ops.entry(op).or_insert(0) += 1;
        match self.fail.get_mut(op) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Err(Error::Host)
            }
            _ => Ok(()),
        }
    }
}

impl EnclaveHost for SoftHost {
    fn pause(&mut self, id: &EnclaveId) -> Result<()> {
        self.count("pause")?;
        self.enclaves.get_mut(id).ok_or(Error::Host)?.running = false;
        Ok(())
    }
    fn resume(&mut self, id: &EnclaveId) -> Result<()> {
        self.count("resume")?;
        self.enclaves.get_mut(id).ok_or(Error::Host)?.running = true;
        Ok(())
    }
    fn destroy(&mut self, id: &EnclaveId) -> Result<()> {
        self.count("destroy")?;
        if let Some(mut e) = self.enclaves.remove(id) {
            crate::crypto::wipe_vec(&mut e.code);
            crate::crypto::wipe_vec(&mut e.state);
            crate::crypto::wipe_vec(&mut e.sealed);
        }
        Ok(())
    }
    fn export_len(&mut self, id: &EnclaveId, section: Section) -> Result<u64> {
        Ok(self
            .enclaves
            .get(id)
            .ok_or(Error::Host)?
            .section(section)
            .len() as u64)
    }
    fn export(
        &mut self,
        id: &EnclaveId,
        section: Section,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        export_from(
            self.enclaves.get(id).ok_or(Error::Host)?.section(section),
            offset,
            buf,
        )
    }
    fn import(&mut self, id: &EnclaveId, section: Section, offset: u64, data: &[u8]) -> Result<()> {
        let e = self.enclaves.entry(*id).or_default();
        if e.running {
            return Err(Error::Host);
        }
        let v = e.section_mut(section);
        if offset != v.len() as u64 {
            return Err(Error::Host);
        }
        v.extend_from_slice(data);
        Ok(())
    }
    fn measure(&mut self, id: &EnclaveId) -> Result<Digest> {
        Ok(sha256(&self.enclaves.get(id).ok_or(Error::Host)?.code))
    }
    fn attest(&mut self, id: &EnclaveId, report_data: &Digest) -> Result<Vec<u8>> {
        let mut ev = evidence(&self.enclaves.get(id).ok_or(Error::Host)?.code, report_data);
        if let Some(n) = self.evidence_len {
            ev.resize(n, 0xe5);
        }
        Ok(ev)
    }
}
