//! The monitor's migration journal: every enclave record, sealed under a key
//! only this SM on this device derives, and bound to the trusted monotonic
//! counter so that an older copy is detected (G5).
//!
//! Every blob carries the counter value `v` at which it becomes valid and a
//! flag saying whether it is a *fence* blob. The monitor acts on a state
//! (host operations, messages out) only when it is *settled*: its blob is
//! counted (`v == counter`) and was written by this run after a fence.
//!
//! * **Commit** (settled at `c`): write a normal blob `v = c + 1`, increment
//!   to `c + 1`; settled again.
//! * **Fence** from counter `x` with state `S`: write a fence blob
//!   `v = x + 2` holding `S`, increment twice; settled at `x + 2`.
//! * **Recovery** at counter `c` with blob `b`:
//!   - `b.v == c + 1`: a commit or fence whose increment was cut off. Increment
//!     to `c + 1`, adopt `b`, fence from `c + 1`;
//!   - `b.v == c`: adopt `b`, fence from `c`;
//!   - `b` is a fence blob with `b.v == c + 2` (cut off before its first
//!     increment): adopt it, fence from `c` again;
//!   - no blob and `c == 0`: a fresh monitor; fence from 0;
//!   - anything else: [`Error::Rollback`]; the monitor refuses to start.
//!
//! Why the fence: a blob written but never counted (power cut between write
//! and increment) may be kept by the adversary and presented later. Because a
//! recovered run always fences before it acts, and a fence writes `x + 2`,
//! the only run that writes a normal blob of value `w` is the one settled at
//! `w - 1`, during which no recovery can have happened at `w - 2` or `w - 1`;
//! so every blob of a given value carries the same state, and whatever the
//! adversary presents, an adopted state always extends what was acted on.
//! `journal::tests::adversarial_storage_never_rolls_back` checks this
//! exhaustively against an adversary that keeps every blob and cuts power
//! between any two storage or counter operations.

use alloc::vec::Vec;

use ciborium::value::Value;

use crate::cbor::{self, as_array, as_bytes, as_u64, int, Builder, Fields, MsgType};
use crate::crypto::{PublicKey, Secret, SecretBytes};
use crate::error::{Error, Result};
use crate::platform::Platform;
use crate::seal;
use crate::wire::{
    Decision, EnclaveId, HostId, Measurement, RequestId, SignedBody, TargetAck, MAX_SIGNED,
};

/// Cap on the journal plaintext.
pub const MAX_JOURNAL: usize = 1 << 20;
/// Cap on enclave records one monitor keeps.
pub const MAX_RECORDS: usize = 1024;

/// Where an enclave stands on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecState {
    /// Runnable here at `epoch`.
    Running,
    /// SMS: paused for migration `request_id` to `target`; not committed.
    Frozen {
        request_id: RequestId,
        target: HostId,
    },
    /// SMS: committed; the copy is destroyed; it never runs here again.
    Migrated,
    /// SMT: import of `request_id` in progress.
    Receiving {
        request_id: RequestId,
        source_sm: PublicKey,
    },
    /// SMT: imported and attested; waits for RELEASE or ABORT from `source_sm`.
    Pending {
        request_id: RequestId,
        source: HostId,
        source_sm: PublicKey,
        ready: Vec<u8>,
    },
    /// Not here (dropped after ABORT, or a failed import); `epoch` is the floor.
    Gone,
}

/// The last settled migration of a record and its proof, re-sent on
/// duplicates and to the SDS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settled {
    pub request_id: RequestId,
    pub proof: Proof,
}

/// A settled migration's proof, journaled **unsigned**: the monitor signs it
/// in memory (`Monitor::settled_message`; Ed25519 is deterministic, so every
/// copy is the same bytes) and sends it only once the commit that records it
/// is counted; the signature is never written. No
/// journal blob — counted or torn, leaked or not — holds a signed RELEASE,
/// ABORT, ACTIVE or DROPPED: a blob the counter later disowns cannot be
/// turned into a proof for the other side (issue 12, item 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Proof {
    /// RELEASE or ABORT (the source's).
    Decision(Decision),
    /// ACTIVE or DROPPED (the target's).
    Ack(TargetAck),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub id: EnclaveId,
    pub measurement: Measurement,
    pub policy: Vec<u8>,
    pub epoch: u64,
    pub state: RecState,
    pub last: Option<Settled>,
    /// The salt of the latest committed checkpoint's blob, which names
    /// that blob (monitor/checkpoint.rs); a new record (install, import)
    /// has none.
    pub checkpoint: Option<[u8; 32]>,
}

const S_RUNNING: u64 = 0;
const S_FROZEN: u64 = 1;
const S_MIGRATED: u64 = 2;
const S_RECEIVING: u64 = 3;
const S_PENDING: u64 = 4;
const S_GONE: u64 = 5;

impl Record {
    fn to_value(&self) -> Value {
        let state = match &self.state {
            RecState::Running => Value::Array(alloc::vec![int(S_RUNNING)]),
            RecState::Frozen { request_id, target } => Value::Array(alloc::vec![
                int(S_FROZEN),
                Value::Bytes(request_id.to_vec()),
                Value::Bytes(target.0.to_vec()),
            ]),
            RecState::Migrated => Value::Array(alloc::vec![int(S_MIGRATED)]),
            RecState::Receiving {
                request_id,
                source_sm,
            } => Value::Array(alloc::vec![
                int(S_RECEIVING),
                Value::Bytes(request_id.to_vec()),
                Value::Bytes(source_sm.0.to_vec()),
            ]),
            RecState::Pending {
                request_id,
                source,
                source_sm,
                ready,
            } => Value::Array(alloc::vec![
                int(S_PENDING),
                Value::Bytes(request_id.to_vec()),
                Value::Bytes(source.0.to_vec()),
                Value::Bytes(source_sm.0.to_vec()),
                Value::Bytes(ready.clone()),
            ]),
            RecState::Gone => Value::Array(alloc::vec![int(S_GONE)]),
        };
        let last = match &self.last {
            None => Value::Array(alloc::vec![]),
            Some(s) => Value::Array(alloc::vec![
                Value::Bytes(s.request_id.to_vec()),
                match &s.proof {
                    Proof::Decision(d) => d.to_value(),
                    Proof::Ack(a) => a.to_value(),
                },
            ]),
        };
        let checkpoint = match &self.checkpoint {
            None => Value::Array(alloc::vec![]),
            Some(salt) => Value::Array(alloc::vec![Value::Bytes(salt.to_vec())]),
        };
        Value::Array(alloc::vec![
            Value::Bytes(self.id.to_vec()),
            Value::Bytes(self.measurement.to_vec()),
            Value::Bytes(self.policy.clone()),
            int(self.epoch),
            state,
            last,
            checkpoint,
        ])
    }

    fn from_value(v: Value) -> Result<Record> {
        let Value::Array(items) = v else {
            return Err(Error::Decode);
        };
        let [id, m, policy, epoch, state, last, checkpoint]: [Value; 7] =
            items.try_into().map_err(|_| Error::Decode)?;
        let Value::Array(state) = state else {
            return Err(Error::Decode);
        };
        let mut st = state.into_iter();
        let tag = as_u64(st.next().ok_or(Error::Decode)?)?;
        let mut next = || st.next().ok_or(Error::Decode);
        let state = match tag {
            S_RUNNING => RecState::Running,
            S_FROZEN => RecState::Frozen {
                request_id: as_array(next()?)?,
                target: PublicKey(as_array(next()?)?),
            },
            S_MIGRATED => RecState::Migrated,
            S_RECEIVING => RecState::Receiving {
                request_id: as_array(next()?)?,
                source_sm: PublicKey(as_array(next()?)?),
            },
            S_PENDING => RecState::Pending {
                request_id: as_array(next()?)?,
                source: PublicKey(as_array(next()?)?),
                source_sm: PublicKey(as_array(next()?)?),
                ready: as_bytes(next()?, MAX_SIGNED)?,
            },
            S_GONE => RecState::Gone,
            _ => return Err(Error::Decode),
        };
        if next().is_ok() {
            return Err(Error::Decode);
        }
        let Value::Array(last) = last else {
            return Err(Error::Decode);
        };
        let last = match <[Value; 2]>::try_from(last) {
            Ok([rid, proof]) => {
                let request_id: RequestId = as_array(rid)?;
                let proof = match cbor::peek_type(&proof) {
                    Some(t) if t == MsgType::Release as u64 || t == MsgType::Abort as u64 => {
                        Proof::Decision(Decision::from_value(proof)?)
                    }
                    Some(t)
                        if t == MsgType::ActiveAck as u64 || t == MsgType::DroppedAck as u64 =>
                    {
                        Proof::Ack(TargetAck::from_value(proof)?)
                    }
                    _ => return Err(Error::Decode),
                };
                let named = match &proof {
                    Proof::Decision(d) => d.request_id,
                    Proof::Ack(a) => a.request_id,
                };
                if named != request_id {
                    return Err(Error::Decode); // the proof settles another request
                }
                Some(Settled { request_id, proof })
            }
            Err(v) if v.is_empty() => None,
            Err(_) => return Err(Error::Decode),
        };
        let Value::Array(checkpoint) = checkpoint else {
            return Err(Error::Decode);
        };
        let checkpoint = match <[Value; 1]>::try_from(checkpoint) {
            Ok([salt]) => Some(as_array(salt)?),
            Err(v) if v.is_empty() => None,
            Err(_) => return Err(Error::Decode),
        };
        Ok(Record {
            id: as_array(id)?,
            measurement: as_array(m)?,
            policy: as_bytes(policy, MAX_SIGNED)?,
            epoch: as_u64(epoch)?,
            state,
            last,
            checkpoint,
        })
    }
}

/// Encode the journal plaintext: value `v`, fence flag, records.
pub(crate) fn encode(v: u64, fence: bool, records: &[Record]) -> Result<Vec<u8>> {
    Builder::new(MsgType::Journal)
        .u64(v)
        .u64(fence as u64)
        .value(Value::Array(records.iter().map(Record::to_value).collect()))
        .encode()
}

/// Decode a journal plaintext into (value, fence flag, records).
pub(crate) fn decode(bytes: &[u8]) -> Result<(u64, bool, Vec<Record>)> {
    let mut f = Fields::open(cbor::decode(bytes, MAX_JOURNAL)?, MsgType::Journal, 3)?;
    let v = f.u64()?;
    let fence = match f.u64()? {
        0 => false,
        1 => true,
        _ => return Err(Error::Decode),
    };
    let records = f
        .list(MAX_RECORDS)?
        .into_iter()
        .map(Record::from_value)
        .collect::<Result<Vec<_>>>()?;
    Ok((v, fence, records))
}

/// Seal and write the records as value `v`.
pub(crate) fn write<P: Platform>(
    p: &mut P,
    key: &Secret,
    v: u64,
    fence: bool,
    records: &[Record],
) -> Result<()> {
    let plain = SecretBytes::new(encode(v, fence, records)?);
    if plain.len() > MAX_JOURNAL {
        return Err(Error::Capacity);
    }
    let mut salt = [0u8; 32];
    p.random(&mut salt)?;
    let salt = crate::crypto::bind_salt(&salt, &plain)?;
    let blob = seal::seal(key, salt, &plain)?;
    // Random and Capacity mean "nothing written" to the caller (the monitor
    // is not poisoned): storage must not be able to claim them.
    p.journal_write(&blob)
        .map_err(|e| after_write(e, Error::Storage))
}

/// An error from storage or the counter, once a write may have happened:
/// never one that says nothing was written.
fn after_write(e: Error, instead: Error) -> Error {
    match e {
        Error::Random | Error::Capacity => instead,
        e => e,
    }
}

/// Increment the counter and check it reached `v`.
pub(crate) fn count_to<P: Platform>(p: &mut P, v: u64) -> Result<()> {
    let c = p
        .counter_increment()
        .map_err(|e| after_write(e, Error::Counter))?;
    if c != v {
        return Err(Error::Counter);
    }
    Ok(())
}

/// Commit `records` while settled at `counter`; returns the new counter.
pub(crate) fn commit<P: Platform>(
    p: &mut P,
    key: &Secret,
    counter: u64,
    records: &[Record],
) -> Result<u64> {
    let v = counter.checked_add(1).ok_or(Error::Counter)?;
    write(p, key, v, false, records)?;
    count_to(p, v)?;
    Ok(v)
}

/// Fence from counter `x`: returns the counter the state is settled at.
fn fence<P: Platform>(p: &mut P, key: &Secret, x: u64, records: &[Record]) -> Result<u64> {
    let v = x.checked_add(2).ok_or(Error::Counter)?;
    write(p, key, v, true, records)?;
    count_to(p, x + 1)?;
    count_to(p, v)?;
    Ok(v)
}

/// Recover per the rules above: the adopted records, settled at the returned counter.
pub(crate) fn recover<P: Platform>(p: &mut P, key: &Secret) -> Result<(Vec<Record>, u64)> {
    let c = p.counter_read()?;
    let (v, is_fence, records) = match p.journal_read()? {
        // No journal reads as the empty one at 0: the counter check below
        // refuses it (Rollback) unless the counter is at 0 too.
        None => (0, false, Vec::new()),
        Some(blob) => {
            let plain = seal::unseal(key, &blob).map_err(|_| Error::Rollback)?;
            decode(&plain)?
        }
    };
    let from = if c.checked_add(1) == Some(v) {
        count_to(p, v)?;
        v
    } else if v == c || (is_fence && c.checked_add(2) == Some(v)) {
        c
    } else {
        return Err(Error::Rollback);
    };
    let settled = fence(p, key, from, &records)?;
    Ok((records, settled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip() {
        let recs = alloc::vec![
            Record {
                id: [1; 16],
                measurement: [2; 32],
                policy: alloc::vec![1, 2],
                epoch: 3,
                state: RecState::Pending {
                    request_id: [4; 16],
                    source: PublicKey([5; 32]),
                    source_sm: PublicKey([6; 32]),
                    ready: alloc::vec![7; 10],
                },
                last: Some(Settled {
                    request_id: [8; 16],
                    proof: Proof::Decision(decision()),
                }),
                checkpoint: Some([12; 32]),
            },
            Record {
                id: [2; 16],
                measurement: [2; 32],
                policy: alloc::vec![],
                epoch: 0,
                state: RecState::Frozen {
                    request_id: [1; 16],
                    target: PublicKey([3; 32]),
                },
                last: Some(Settled {
                    request_id: [9; 16],
                    proof: Proof::Ack(ack()),
                }),
                checkpoint: None,
            },
        ];
        let bytes = encode(42, true, &recs).unwrap(); // safe: test code
        assert_eq!(decode(&bytes).unwrap(), (42, true, recs)); // safe: test code
    }

    fn decision() -> Decision {
        Decision {
            kind: crate::wire::DecisionKind::Release,
            request_id: [8; 16],
            enclave_id: [1; 16],
            epoch: 4,
            source: PublicKey([5; 32]),
            target: PublicKey([6; 32]),
        }
    }

    fn ack() -> TargetAck {
        TargetAck {
            kind: crate::wire::AckKind::Dropped,
            request_id: [9; 16],
            enclave_id: [2; 16],
            epoch: 1,
            host: PublicKey([7; 32]),
        }
    }

    /// A settled proof is journaled as its unsigned fields: what the record
    /// holds decodes to exactly that, and anything else in its place (a
    /// signed message, another kind of object) is refused.
    #[test]
    fn a_settled_proof_is_journaled_unsigned_and_strictly() {
        let at = running(
            alloc::vec![],
            Some(Settled {
                request_id: [8; 16],
                proof: Proof::Decision(decision()),
            }),
        );
        assert_eq!(Record::from_value(at.to_value()), Ok(at.clone()));
        let key = crate::crypto::SigningKey::from_seed(Secret::from_bytes([1; 32])).unwrap(); // safe: test
        let signed = decision().sign(&key).unwrap(); // safe: test
        let policy = crate::wire::EnclavePolicy {
            enclave_id: [1; 16],
            measurement: [2; 32],
            platform: crate::wire::PLATFORM_RISCV64,
            min_atl: 1,
        }
        .to_value();
        for bad in [Value::Bytes(signed), policy, Value::Array(alloc::vec![])] {
            let mut v = at.to_value();
            if let Value::Array(fields) = &mut v {
                fields[5] = Value::Array(alloc::vec![Value::Bytes(alloc::vec![8; 16]), bad]);
            }
            assert_eq!(Record::from_value(v), Err(Error::Decode));
        }
        // A proof of another request than the one the record says it settled.
        let mut other = at.clone();
        other.last.as_mut().unwrap().request_id = [9; 16]; // safe: test
        assert_eq!(Record::from_value(other.to_value()), Err(Error::Decode));
    }

    fn running(policy: Vec<u8>, last: Option<Settled>) -> Record {
        Record {
            id: [1; 16],
            measurement: [2; 32],
            policy,
            epoch: 0,
            state: RecState::Running,
            last,
            checkpoint: None,
        }
    }

    #[test]
    fn record_decoding_is_strict_and_caps_are_exact() {
        // The pending READY: at its cap kept, one byte over refused.
        let pending = |n: usize| Record {
            state: RecState::Pending {
                request_id: [4; 16],
                source: PublicKey([5; 32]),
                source_sm: PublicKey([6; 32]),
                ready: alloc::vec![7; n],
            },
            ..running(alloc::vec![], None)
        };
        let ok = pending(MAX_SIGNED);
        assert_eq!(Record::from_value(ok.to_value()), Ok(ok));
        assert_eq!(
            Record::from_value(pending(MAX_SIGNED + 1).to_value()),
            Err(Error::TooLarge)
        );
        let at = running(
            alloc::vec![],
            Some(Settled {
                request_id: [3; 16],
                proof: Proof::Ack(ack()),
            }),
        );
        // `last` is either empty or [request id, proof], and the
        // checkpoint either empty or [salt of 32 bytes].
        let item = |n: usize| Value::Bytes(alloc::vec![3; n]);
        for (field, items) in [
            (5, alloc::vec![item(16)]),
            (6, alloc::vec![item(32), item(32)]),
            (6, alloc::vec![item(16)]),
        ] {
            let mut v = at.to_value();
            if let Value::Array(fields) = &mut v {
                fields[field] = Value::Array(items);
            }
            assert_eq!(Record::from_value(v), Err(Error::Decode), "field {field}");
        }
        let none = running(alloc::vec![], None);
        assert_eq!(Record::from_value(none.to_value()), Ok(none));
    }

    #[test]
    fn a_journal_over_its_cap_is_not_written() {
        let mut p = storage(0);
        let key = Secret::from_bytes([9; 32]);
        // The encoding's overhead is the same for every policy of this size.
        let probe = 200_000;
        let overhead = encode(1, false, &[running(alloc::vec![0; probe], None)])
            .unwrap() // safe: test
            .len()
            - probe;
        let fits = MAX_JOURNAL - overhead;
        assert_eq!(
            write(
                &mut p,
                &key,
                1,
                false,
                &[running(alloc::vec![0; fits], None)]
            ),
            Ok(())
        );
        assert_eq!(p.blobs.len(), 1);
        assert_eq!(
            write(
                &mut p,
                &key,
                1,
                false,
                &[running(alloc::vec![0; fits + 1], None)]
            ),
            Err(Error::Capacity)
        );
        assert_eq!(p.blobs.len(), 1, "nothing written");
    }

    /// Storage or a counter that answers "Random" or "Capacity" (which tell
    /// the monitor nothing was written) gets Storage / Counter instead.
    #[test]
    fn storage_cannot_claim_that_nothing_was_written() {
        struct Lying(Adversarial, Error);
        impl Platform for Lying {
            fn random(&mut self, buf: &mut [u8]) -> Result<()> {
                self.0.random(buf)
            }
            fn monotonic_ms(&mut self) -> u64 {
                0
            }
            fn wall_time(&mut self) -> Option<u64> {
                None
            }
            fn journal_read(&mut self) -> Result<Option<Vec<u8>>> {
                self.0.journal_read()
            }
            fn journal_write(&mut self, _: &[u8]) -> Result<()> {
                Err(self.1)
            }
            fn counter_read(&mut self) -> Result<u64> {
                self.0.counter_read()
            }
            fn counter_increment(&mut self) -> Result<u64> {
                Err(self.1)
            }
        }
        let key = Secret::from_bytes([9; 32]);
        for lie in [Error::Random, Error::Capacity] {
            let adv = storage(0);
            let mut p = Lying(adv, lie);
            assert_eq!(write(&mut p, &key, 1, false, &[]), Err(Error::Storage));
            assert_eq!(count_to(&mut p, 1), Err(Error::Counter));
        }
        // Other errors pass as they are.
        let adv = storage(0);
        let mut p = Lying(adv, Error::Host);
        assert_eq!(write(&mut p, &key, 1, false, &[]), Err(Error::Host));
        assert_eq!(count_to(&mut p, 1), Err(Error::Host));
    }

    #[test]
    fn a_missing_journal_after_the_first_count_is_a_rollback() {
        let key = Secret::from_bytes([9; 32]);
        for counter in [1, 2, 7] {
            let mut p = Adversarial {
                counter,
                blobs: Vec::new(),
                present: None,
                budget: None,
                salt: 0,
            };
            assert_eq!(
                recover(&mut p, &key),
                Err(Error::Rollback),
                "counter {counter}"
            );
        }
        // A fresh monitor (counter 0, no journal) starts empty.
        let mut p = storage(0);
        let (records, c) = recover(&mut p, &key).unwrap(); // safe: test
        assert!(records.is_empty());
        assert_eq!(c, 2, "fenced from 0");
    }

    /// Untrusted storage that keeps every blob ever written and presents
    /// whichever the adversary picks; power is cut after `budget` writes or
    /// increments.
    struct Adversarial {
        counter: u64,
        blobs: Vec<Vec<u8>>,
        present: Option<usize>,
        budget: Option<usize>,
        salt: u64,
    }

    impl Adversarial {
        fn spend(&mut self) -> Result<()> {
            match &mut self.budget {
                Some(0) => Err(Error::Storage),
                Some(n) => {
                    *n -= 1;
                    Ok(())
                }
                None => Ok(()),
            }
        }
    }

    impl Platform for Adversarial {
        fn random(&mut self, buf: &mut [u8]) -> Result<()> {
            self.salt += 1;
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (self.salt as u8).wrapping_add(i as u8);
            }
            Ok(())
        }
        fn monotonic_ms(&mut self) -> u64 {
            0
        }
        fn wall_time(&mut self) -> Option<u64> {
            None
        }
        fn journal_read(&mut self) -> Result<Option<Vec<u8>>> {
            Ok(self.present.map(|i| self.blobs[i].clone()))
        }
        fn journal_write(&mut self, blob: &[u8]) -> Result<()> {
            self.spend()?;
            self.blobs.push(blob.to_vec());
            Ok(())
        }
        fn counter_read(&mut self) -> Result<u64> {
            Ok(self.counter)
        }
        fn counter_increment(&mut self) -> Result<u64> {
            self.spend()?;
            self.counter += 1;
            Ok(self.counter)
        }
    }

    /// Honest storage at `counter`, nothing written yet.
    fn storage(counter: u64) -> Adversarial {
        Adversarial {
            counter,
            blobs: Vec::new(),
            present: None,
            budget: None,
            salt: 0,
        }
    }

    /// A history of inputs, kept in a record's policy field.
    fn records(history: &[u8]) -> Vec<Record> {
        alloc::vec![Record {
            id: [0; 16],
            measurement: [0; 32],
            policy: history.to_vec(),
            epoch: 0,
            state: RecState::Running,
            last: None,
            checkpoint: None,
        }]
    }

    fn history(records: &[Record]) -> Vec<u8> {
        records
            .first()
            .map(|r| r.policy.clone())
            .unwrap_or_default()
    }

    #[derive(Clone)]
    struct World {
        counter: u64,
        blobs: Vec<Vec<u8>>,
        /// The last history the monitor acted on.
        acted: Vec<u8>,
        /// The running monitor's (history, settled counter), or None after a crash.
        run: Option<(Vec<u8>, u64)>,
    }

    impl World {
        fn key(&self, k: &Secret) -> alloc::vec::Vec<(u64, bool, Vec<u8>)> {
            let mut abs: Vec<_> = self
                .blobs
                .iter()
                .map(|b| {
                    let (v, f, r) = decode(&seal::unseal(k, b).unwrap()).unwrap(); // safe: test code
                    (v, f, history(&r))
                })
                .collect();
            abs.sort();
            abs.dedup();
            abs
        }
    }

    /// Exhaustive: every sequence (up to a depth) of commits with any input,
    /// power cuts between any two storage or counter operations, and restarts
    /// from any blob ever written (or none). Whatever the adversary presents,
    /// an adopted state extends what the monitor has acted on, and honest
    /// storage (the last blob written) always recovers.
    #[test]
    fn adversarial_storage_never_rolls_back() {
        let key = Secret::from_bytes([5; 32]);
        let mut frontier = alloc::vec![World {
            counter: 0,
            blobs: Vec::new(),
            acted: Vec::new(),
            run: None
        }];
        let mut seen = alloc::collections::BTreeSet::new();
        let (mut states, mut recoveries) = (0u64, 0u64);
        let depth: usize = option_env!("REWIRE_JOURNAL_DEPTH")
            .and_then(|d| d.parse().ok())
            .unwrap_or(8);
        for _depth in 0..depth {
            let mut next = Vec::new();
            for w in frontier {
                let sig = (w.counter, w.key(&key), w.acted.clone(), w.run.clone());
                if !seen.insert(sig) {
                    continue;
                }
                states += 1;
                match &w.run {
                    None => {
                        let choices = core::iter::once(None).chain((0..w.blobs.len()).map(Some));
                        for present in choices {
                            for budget in [Some(0), Some(1), Some(2), None] {
                                let mut p = Adversarial {
                                    counter: w.counter,
                                    blobs: w.blobs.clone(),
                                    present,
                                    budget,
                                    salt: w.blobs.len() as u64 * 100,
                                };
                                let r = recover(&mut p, &key);
                                let mut n = World {
                                    counter: p.counter,
                                    blobs: p.blobs,
                                    acted: w.acted.clone(),
                                    run: None,
                                };
                                if let Ok((recs, settled)) = r {
                                    recoveries += 1;
                                    let h = history(&recs);
                                    assert!(
                                        h.starts_with(&w.acted),
                                        "ROLLBACK: adopted {h:?} after acting on {:?}",
                                        w.acted
                                    );
                                    assert_eq!(settled, n.counter);
                                    n.acted = h.clone();
                                    n.run = Some((h, settled));
                                }
                                // Honest storage (the last blob written) must recover.
                                if present == w.blobs.len().checked_sub(1)
                                    && budget.is_none()
                                    && !w.blobs.is_empty()
                                {
                                    assert!(n.run.is_some(), "honest storage failed to recover");
                                }
                                next.push(n);
                            }
                        }
                    }
                    Some((h, c)) => {
                        for input in [0u8, 1] {
                            for budget in [Some(0), Some(1), None] {
                                let mut p = Adversarial {
                                    counter: w.counter,
                                    blobs: w.blobs.clone(),
                                    present: None,
                                    budget,
                                    salt: w.blobs.len() as u64 * 100,
                                };
                                let mut nh = h.clone();
                                nh.push(input);
                                let r = commit(&mut p, &key, *c, &records(&nh));
                                let mut n = World {
                                    counter: p.counter,
                                    blobs: p.blobs,
                                    acted: w.acted.clone(),
                                    run: None,
                                };
                                if let Ok(v) = r {
                                    n.acted = nh.clone();
                                    n.run = Some((nh, v));
                                }
                                next.push(n);
                            }
                        }
                    }
                }
            }
            frontier = next;
        }
        std::println!("journal model: depth {depth}, {states} states, {recoveries} recoveries");
        assert!(
            states > 1000 && recoveries > 1000,
            "explored {states} states, {recoveries} recoveries"
        );
    }
}
