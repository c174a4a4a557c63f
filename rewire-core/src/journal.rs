//! The monitor's migration journal: every enclave record, sealed under a key
//! only this SM on this device derives, and bound to the trusted monotonic
//! counter so that an older copy is detected (G5).
//!
//! Commit protocol (write-ahead, then count):
//! 1. write blob `v = counter + 1`; 2. increment the counter to `v`;
//! 3. only then act on the new state (host operations, messages out).
//!
//! Recovery reads the blob and the counter:
//! * `v == counter + 1` — the write landed, the increment did not: increment now.
//! * `v == counter` — normal. A blob `counter + 1` may exist that was written
//!   but never counted (nothing was acted on from it). To make sure it can
//!   never be accepted later, *fence*: write the recovered state as
//!   `counter + 2` and increment twice. Value `counter + 1` is never written
//!   again, so every value the counter reaches names exactly one history.
//! * anything else (`v < counter`, `v > counter + 1`, no blob although the
//!   counter moved) — [`Error::Rollback`]: the monitor refuses to start.

use alloc::vec::Vec;

use ciborium::value::Value;

use crate::cbor::{self, as_array, as_bytes, as_u64, int, Builder, Fields, MsgType};
use crate::crypto::{hkdf, PublicKey, Secret};
use crate::error::{Error, Result};
use crate::platform::Platform;
use crate::seal;
use crate::wire::{EnclaveId, HostId, Measurement, RequestId, MAX_SIGNED};

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

/// The last settled migration of a record and its signed proof, re-sent on
/// duplicates and to the SDS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settled {
    pub request_id: RequestId,
    /// Encoded `Message` carrying the proof.
    pub message: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub id: EnclaveId,
    pub measurement: Measurement,
    pub policy: Vec<u8>,
    pub epoch: u64,
    pub state: RecState,
    pub last: Option<Settled>,
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
                Value::Bytes(s.message.clone()),
            ]),
        };
        Value::Array(alloc::vec![
            Value::Bytes(self.id.to_vec()),
            Value::Bytes(self.measurement.to_vec()),
            Value::Bytes(self.policy.clone()),
            int(self.epoch),
            state,
            last,
        ])
    }

    fn from_value(v: Value) -> Result<Record> {
        let Value::Array(items) = v else {
            return Err(Error::Decode);
        };
        let [id, m, policy, epoch, state, last]: [Value; 6] =
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
            Ok([rid, msg]) => Some(Settled {
                request_id: as_array(rid)?,
                message: as_bytes(msg, MAX_SIGNED + 64)?,
            }),
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
        })
    }
}

/// Encode the journal plaintext for counter value `v`.
pub(crate) fn encode(v: u64, records: &[Record]) -> Result<Vec<u8>> {
    Builder::new(MsgType::Journal)
        .u64(v)
        .value(Value::Array(records.iter().map(Record::to_value).collect()))
        .encode()
}

/// Decode a journal plaintext into (counter value, records).
pub(crate) fn decode(bytes: &[u8]) -> Result<(u64, Vec<Record>)> {
    let mut f = Fields::open(cbor::decode(bytes, MAX_JOURNAL)?, MsgType::Journal, 2)?;
    let v = f.u64()?;
    let records = f
        .list(MAX_RECORDS)?
        .into_iter()
        .map(Record::from_value)
        .collect::<Result<Vec<_>>>()?;
    Ok((v, records))
}

/// The journal key: this device, this SM build.
pub(crate) fn journal_key(device_secret: &Secret, sm_measurement: &Measurement) -> Result<Secret> {
    hkdf(
        device_secret.expose(),
        b"rewire/journal/v1",
        &[sm_measurement],
    )
}

/// Seal and write the records as value `v`.
pub(crate) fn write<P: Platform>(
    p: &mut P,
    key: &Secret,
    v: u64,
    records: &[Record],
) -> Result<()> {
    let plain = zeroize::Zeroizing::new(encode(v, records)?);
    if plain.len() > MAX_JOURNAL {
        return Err(Error::Capacity);
    }
    let mut salt = [0u8; 32];
    p.random(&mut salt)?;
    let blob = seal::seal(key, salt, &plain)?;
    p.journal_write(&blob)
}

/// Increment the counter and check it reached `v`.
pub(crate) fn count_to<P: Platform>(p: &mut P, v: u64) -> Result<()> {
    let c = p.counter_increment()?;
    if c != v {
        return Err(Error::Counter);
    }
    Ok(())
}

/// Recover (records, counter) per the rules above. Returns the records and the
/// counter value they are committed at.
pub(crate) fn recover<P: Platform>(p: &mut P, key: &Secret) -> Result<(Vec<Record>, u64)> {
    let counter = p.counter_read()?;
    let (v, records) = match p.journal_read()? {
        None if counter == 0 => (0, Vec::new()),
        None => return Err(Error::Rollback),
        Some(blob) => {
            let plain = seal::unseal(key, &blob).map_err(|_| Error::Rollback)?;
            decode(&plain)?
        }
    };
    if v == counter.wrapping_add(1) && v != 0 {
        count_to(p, v)?;
        Ok((records, v))
    } else if v == counter {
        let fenced = counter.checked_add(2).ok_or(Error::Counter)?;
        write(p, key, fenced, &records)?;
        count_to(p, counter + 1)?;
        count_to(p, fenced)?;
        Ok((records, fenced))
    } else {
        Err(Error::Rollback)
    }
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
                    message: alloc::vec![9],
                }),
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
                last: None,
            },
        ];
        let bytes = encode(42, &recs).unwrap();
        assert_eq!(decode(&bytes).unwrap(), (42, recs));
    }
}
