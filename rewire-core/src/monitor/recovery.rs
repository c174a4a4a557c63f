//! Starting from the journal: recover the records (refusing a rolled-back
//! copy), bring every enclave to the state its record calls for, and the
//! journal commits every transition goes through.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

#[cfg(feature = "fault-injection")]
use super::Faults;
use super::{Config, Dest, Identity, Monitor, StartFailure};
use crate::error::{Error, Result};
use crate::journal::{self, RecState};
use crate::platform::{EnclaveHost, Platform};
use crate::rng::{Conditioned, Drbg};
use crate::wire::EnclaveId;

/// Journal space kept free for recovery's own commits.
pub(super) const JOURNAL_HEADROOM: usize = 64 * 1024;

impl<P: Platform, H: EnclaveHost> Monitor<P, H> {
    /// [`Monitor::start`], but a failure hands the platform and framework
    /// back (with whatever the failed start wrote), e.g. to retry.
    pub fn start_or_return(
        mut platform: P,
        host: H,
        id: Identity,
        cfg: Config,
    ) -> core::result::Result<Self, StartFailure<P, H>> {
        let journal_key = match crate::boot::journal_key(&id.sm_secret) {
            Ok(k) => k,
            Err(error) => {
                return Err(StartFailure {
                    error,
                    platform,
                    host,
                })
            }
        };
        // Random bytes pass through a DRBG seeded from the counter as it
        // stands now (crate::rng).
        let mut drbg = match platform
            .counter_read()
            .and_then(|c| Drbg::new(&journal_key, c))
        {
            Ok(d) => d,
            Err(error) => {
                return Err(StartFailure {
                    error,
                    platform,
                    host,
                })
            }
        };
        let recovered = journal::recover(
            &mut Conditioned {
                platform: &mut platform,
                drbg: &mut drbg,
            },
            &journal_key,
        );
        let (records, counter) = match recovered {
            Ok(r) => r,
            Err(error) => {
                return Err(StartFailure {
                    error,
                    platform,
                    host,
                })
            }
        };
        let mut m = Monitor {
            platform,
            host,
            id,
            cfg,
            journal_key,
            drbg,
            durable: records.clone(),
            records,
            counter,
            poisoned: false,
            out: VecDeque::new(),
            outgoing: BTreeMap::new(),
            incoming: BTreeMap::new(),
            events: VecDeque::new(),
            finished: VecDeque::new(),
            owed: Vec::new(),
            sealed_checkpoints: VecDeque::new(),
            #[cfg(feature = "fault-injection")]
            faults: Faults::default(),
        };
        match m.recover_records() {
            Ok(()) => Ok(m),
            Err(error) => Err(StartFailure {
                error,
                platform: m.platform,
                host: m.host,
            }),
        }
    }

    fn recover_records(&mut self) -> Result<()> {
        let ids: Vec<EnclaveId> = self.records.iter().map(|r| r.id).collect();
        for eid in ids {
            let Some(i) = self.find(&eid) else { continue };
            match self.records[i].state.clone() {
                RecState::Frozen { request_id, target } => {
                    self.abort_outgoing_record(i, request_id, target, Error::Timeout)?;
                }
                RecState::Receiving { request_id, .. } => self.drop_import(i, request_id)?,
                RecState::Migrated => {
                    self.apply(&eid);
                    if let Some(s) = &self.records[i].last {
                        let message = self.settled_message(s)?;
                        self.push(Dest::Sds, message);
                    }
                }
                RecState::Running | RecState::Gone | RecState::Pending { .. } => self.apply(&eid),
            }
        }
        Ok(())
    }

    /// Perform the framework side effect the record's committed state calls
    /// for (Running: resume; Frozen: pause; Migrated, Gone: destroy). A
    /// failure is remembered and retried by `tick`: the journal already says
    /// what must happen, and every EnclaveHost operation is idempotent.
    pub(super) fn apply(&mut self, eid: &EnclaveId) {
        let Some(i) = self.find(eid) else { return };
        let r = match self.records[i].state {
            RecState::Running => self.host.resume(eid),
            RecState::Frozen { .. } => self.host.pause(eid),
            RecState::Migrated | RecState::Gone => self.host.destroy(eid),
            RecState::Receiving { .. } | RecState::Pending { .. } => Ok(()),
        };
        match r {
            Ok(()) => self.owed.retain(|e| e != eid),
            Err(e) => {
                event!(
                    warn,
                    error = e.code(),
                    "enclave framework operation failed; will retry"
                );
                if !self.owed.contains(eid) {
                    self.owed.push(*eid);
                }
            }
        }
    }

    /// Persist the records: write-ahead, then count. On failure the monitor
    /// stops taking input; restarting it recovers from the journal.
    pub(super) fn commit(&mut self) -> Result<()> {
        match journal::commit(
            &mut Conditioned {
                platform: &mut self.platform,
                drbg: &mut self.drbg,
            },
            &self.journal_key,
            self.counter,
            &self.records,
        ) {
            Ok(v) => {
                self.counter = v;
                self.durable.clone_from(&self.records);
                Ok(())
            }
            Err(e) => {
                // Capacity and a refused random source are found before
                // anything is written: nothing to recover.
                self.poisoned = !matches!(e, Error::Capacity | Error::Random);
                self.records.clone_from(&self.durable);
                Err(e)
            }
        }
    }

    /// Refuse new records when the journal could not also take the abort or
    /// drop of everything in flight (a full journal must never stop recovery).
    pub(super) fn check_journal_room(&self) -> Result<()> {
        let len = journal::encode(self.counter, false, &self.records)?.len();
        if len + JOURNAL_HEADROOM > journal::MAX_JOURNAL {
            return Err(Error::Capacity);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{PublicKey, Secret};
    use crate::journal::Record;
    use crate::monitor::{Config, Identity};
    use crate::soft::{Clock, SoftHost, SoftPlatform};

    fn record(policy: usize) -> Record {
        Record {
            id: [1; 16],
            measurement: [2; 32],
            policy: alloc::vec![0; policy],
            epoch: 0,
            state: RecState::Running,
            last: None,
            checkpoint: None,
        }
    }

    /// New records are refused while the journal could not also take 64 KiB
    /// of recovery's own commits.
    #[test]
    fn journal_headroom_is_64_kib_exactly() {
        let id = Identity::derive(Secret::from_bytes([1; 32]), [2; 32]).unwrap(); // safe: test
        let p = SoftPlatform::new(1, Clock::default(), Some(1_800_000_000));
        let mut m =
            Monitor::start(p, SoftHost::default(), id, Config::new(PublicKey([3; 32]))).unwrap(); // safe: test

        // The encoding's overhead is the same for every policy of this size.
        let probe = 200_000;
        m.records = alloc::vec![record(probe)];
        let overhead = journal::encode(m.counter, false, &m.records).unwrap().len() - probe; // safe: test
                                                                                             // 64 KiB written out: the test pins the constant's value too.
        let fits = journal::MAX_JOURNAL - 64 * 1024 - overhead;
        m.records = alloc::vec![record(fits)];
        assert_eq!(m.check_journal_room(), Ok(()));
        m.records = alloc::vec![record(fits + 1)];
        assert_eq!(m.check_journal_room(), Err(Error::Capacity));
    }
}
