//! The SDS (Software Distribution Service) side: registry of hosts and
//! enclaves, request signing, and the ledger of where each enclave lives.
//!
//! The ledger is, per enclave, the newest (location, epoch) that a signed
//! proof from an SM establishes; epochs only grow. It moves only on:
//! * RELEASE from the migration's source SM → the enclave belongs to the
//!   target at `epoch + 1` (the target may not be running it yet);
//! * ACTIVE from the target SM → the migration is complete;
//! * ABORT from the source SM → the enclave stays at the source at `epoch + 1`;
//! * DROPPED from the target SM → the target's pending copy is gone.
//!
//! [`Sds::resolution`] says what to re-send to settle in-doubt migrations: the
//! order to the source (which answers with its stored proof, or starts it,
//! or — past the deadline — aborts it), RELEASE or ABORT to the target.
//! Persist [`Sds::to_bytes`] after every change: that is the durable ledger.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use ciborium::value::Value;

use crate::cbor::{self, as_array, as_bytes, as_u64, int, Builder, Fields, MsgType};
use crate::crypto::{PublicKey, SigningKey};
use crate::error::{Error, Result};
use crate::wire::{
    verify_as, AckKind, Decision, DecisionKind, DeviceCertificate, EnclaveId, EnclavePolicy,
    HostEndorsement, HostId, Measurement, Message, MigrationRequest, Order, RequestId, Signed,
    SignedBody, SmCertificate, TargetAck, MAX_SIGNED,
};

/// How many resolution rounds an ABORT is forwarded to a target that never answers.
const CLEANUP_ROUNDS: u32 = 8;
/// Cap on ledger size when decoding.
const MAX_ENTRIES: usize = 1 << 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub endorsement: Vec<u8>,
    pub platform: u64,
    pub atl: u64,
    pub sm_key: PublicKey,
}

/// Why the SDS believes a device key belongs to a real device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// A registered root ([`Sds::add_device_root`]) signed its
    /// [`DeviceCertificate`].
    Certified { root: PublicKey },
    /// The operator vouched for it by hand ([`Sds::pin_device`]): kept in the
    /// ledger, so that every pinned device stays visible.
    Pinned,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationPhase {
    /// Ordered; no proof yet.
    Ordered,
    /// The source committed: carries the RELEASE message to forward to the target.
    Released(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub request_id: RequestId,
    /// The encoded `Message::Order` for the source.
    pub order: Vec<u8>,
    pub source: HostId,
    pub target: HostId,
    pub epoch: u64,
    pub phase: MigrationPhase,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnclaveEntry {
    pub policy: Vec<u8>,
    pub measurement: Measurement,
    pub platform: u64,
    pub min_atl: u64,
    /// The host the enclave belongs to, and its epoch there.
    pub location: HostId,
    pub epoch: u64,
    pub migration: Option<Migration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Cleanup {
    target: HostId,
    request_id: RequestId,
    abort: Vec<u8>,
    rounds: u32,
}

/// What a proof changed in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerEvent {
    Released {
        enclave: EnclaveId,
        target: HostId,
        epoch: u64,
    },
    Activated {
        enclave: EnclaveId,
        host: HostId,
        epoch: u64,
    },
    Aborted {
        enclave: EnclaveId,
        host: HostId,
        epoch: u64,
    },
    Dropped {
        enclave: EnclaveId,
        host: HostId,
    },
}

impl core::fmt::Debug for Sds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sds")
            .field("key", &self.key.public())
            .field("hosts", &self.hosts.len())
            .field("enclaves", &self.enclaves)
            .finish_non_exhaustive()
    }
}

/// The SDS state machine.
pub struct Sds {
    key: SigningKey,
    /// Device-key provenance roots: manufacturers or the operator's CA.
    device_roots: BTreeSet<PublicKey>,
    /// Device keys with provenance; only these can be endorsed.
    devices: BTreeMap<HostId, Provenance>,
    hosts: BTreeMap<HostId, HostEntry>,
    enclaves: BTreeMap<EnclaveId, EnclaveEntry>,
    cleanup: Vec<Cleanup>,
}

impl Sds {
    pub fn new(key: SigningKey) -> Sds {
        Sds {
            key,
            device_roots: BTreeSet::new(),
            devices: BTreeMap::new(),
            hosts: BTreeMap::new(),
            enclaves: BTreeMap::new(),
            cleanup: Vec::new(),
        }
    }

    pub fn public_key(&self) -> PublicKey {
        self.key.public()
    }

    pub fn host(&self, h: &HostId) -> Option<&HostEntry> {
        self.hosts.get(h)
    }

    pub fn enclave(&self, e: &EnclaveId) -> Option<&EnclaveEntry> {
        self.enclaves.get(e)
    }

    pub fn enclaves(&self) -> impl Iterator<Item = (&EnclaveId, &EnclaveEntry)> {
        self.enclaves.iter()
    }

    /// Trust `root` (a manufacturer's or the operator's CA key) to certify
    /// device keys ([`Sds::certify_device`]).
    pub fn add_device_root(&mut self, root: PublicKey) {
        self.device_roots.insert(root);
    }

    pub fn device_roots(&self) -> impl Iterator<Item = &PublicKey> {
        self.device_roots.iter()
    }

    /// Record a device key's provenance from its [`DeviceCertificate`]
    /// (issued out of band, not taken from the host that presents the key).
    /// Refused: a certificate not signed by a registered root
    /// (`DeviceNotCertified`), a bad signature or encoding. Returns the
    /// device key (the host id). A device pinned earlier becomes certified.
    pub fn certify_device(&mut self, device_certificate: &[u8]) -> Result<HostId> {
        let (device, root) = self.check_device_certificate(device_certificate)?;
        self.devices.insert(device, Provenance::Certified { root });
        Ok(device)
    }

    /// [`Sds::certify_device`] for the device a host's SM certificate names
    /// (before endorsing it): a device certificate for any other device is
    /// `PeerMismatch`, and nothing is recorded.
    pub fn certify_device_of(
        &mut self,
        device_certificate: &[u8],
        sm_certificate: &[u8],
    ) -> Result<HostId> {
        let named = Signed::parse(sm_certificate)?.kid;
        let (device, root) = self.check_device_certificate(device_certificate)?;
        if device != named {
            return Err(Error::PeerMismatch);
        }
        self.devices.insert(device, Provenance::Certified { root });
        Ok(device)
    }

    /// A device certificate's device and the registered root that signed it.
    fn check_device_certificate(&self, device_certificate: &[u8]) -> Result<(HostId, PublicKey)> {
        let signed = Signed::parse(device_certificate)?;
        let root = signed.kid;
        if !self.device_roots.contains(&root) {
            return Err(Error::DeviceNotCertified);
        }
        let cert = DeviceCertificate::from_value(signed.verify(&root)?)?;
        Ok((cert.device, root))
    }

    /// The operator vouches for a device key by hand (no root certified it):
    /// the explicit exception, kept in the ledger ([`Sds::provenance`]). A
    /// certified device stays certified.
    pub fn pin_device(&mut self, device: HostId) {
        self.devices.entry(device).or_insert(Provenance::Pinned);
    }

    /// Why the SDS accepts a device key, if it does.
    pub fn provenance(&self, device: &HostId) -> Option<Provenance> {
        self.devices.get(device).copied()
    }

    /// Register (or re-endorse) a host from its device-signed SM certificate.
    /// The device key must have provenance first ([`Sds::certify_device`],
    /// or [`Sds::pin_device`]): a host cannot get a software-made device key
    /// endorsed by presenting a self-consistent certificate
    /// (`DeviceNotCertified`). `platform` says what code the host runs
    /// (`wire::PLATFORM_RISCV64`, `PLATFORM_AARCH64`, …; 0 is refused).
    /// Returns the signed endorsement.
    pub fn endorse_host(
        &mut self,
        certificate: &[u8],
        sm_measurements: Vec<Measurement>,
        platform: u64,
        atl: u64,
        not_before: u64,
        not_after: u64,
    ) -> Result<Vec<u8>> {
        if sm_measurements.is_empty()
            || sm_measurements.len() > crate::wire::MAX_SM_MEASUREMENTS
            || platform == 0
        {
            return Err(Error::InvalidArgument);
        }
        let signed = Signed::parse(certificate)?;
        let device = signed.kid;
        if !self.devices.contains_key(&device) {
            return Err(Error::DeviceNotCertified);
        }
        // A device key is one piece of hardware: its platform never changes.
        // Re-endorsing it as another (an operator's slip) would send its
        // enclaves' successors to a host that cannot run them.
        if self
            .hosts
            .get(&device)
            .is_some_and(|h| h.platform != platform)
        {
            return Err(Error::PlatformMismatch);
        }
        let end = HostEndorsement {
            host: device,
            sm_measurements,
            platform,
            atl,
            not_before,
            not_after,
        };
        let cert = SmCertificate::verify_against(certificate, &end)?;
        let bytes = end.sign(&self.key)?;
        self.hosts.insert(
            device,
            HostEntry {
                endorsement: bytes.clone(),
                platform,
                atl,
                sm_key: cert.sm_key,
            },
        );
        Ok(bytes)
    }

    /// Register an enclave, whose code is built for `platform`, placed on
    /// `host` at epoch 0. Returns its signed policy. A host of another
    /// platform is `PlatformMismatch`; 0 is refused.
    pub fn register_enclave(
        &mut self,
        enclave_id: EnclaveId,
        measurement: Measurement,
        platform: u64,
        min_atl: u64,
        host: HostId,
    ) -> Result<Vec<u8>> {
        if platform == 0 {
            return Err(Error::InvalidArgument);
        }
        let h = self.hosts.get(&host).ok_or(Error::UnknownSigner)?;
        if h.platform != platform {
            return Err(Error::PlatformMismatch);
        }
        if h.atl < min_atl {
            return Err(Error::AtlTooLow);
        }
        if let Some(e) = self.enclaves.get(&enclave_id) {
            // The same registration again (e.g. a caller retrying with a
            // bigger buffer) returns the same policy; anything else is refused.
            if e.measurement == measurement
                && e.platform == platform
                && e.min_atl == min_atl
                && e.location == host
                && e.epoch == 0
            {
                return Ok(e.policy.clone());
            }
            return Err(Error::Busy);
        }
        let policy = EnclavePolicy {
            enclave_id,
            measurement,
            platform,
            min_atl,
        }
        .sign(&self.key)?;
        self.enclaves.insert(
            enclave_id,
            EnclaveEntry {
                policy: policy.clone(),
                measurement,
                platform,
                min_atl,
                location: host,
                epoch: 0,
                migration: None,
            },
        );
        Ok(policy)
    }

    /// Order a migration of `enclave` to `target`. `request_id` must be fresh
    /// randomness; `deadline` is wall time in seconds. Returns the encoded
    /// order message for the source host.
    pub fn order(
        &mut self,
        enclave: &EnclaveId,
        target: HostId,
        request_id: RequestId,
        deadline: u64,
    ) -> Result<Vec<u8>> {
        let e = self.enclaves.get(enclave).ok_or(Error::UnknownEnclave)?;
        if e.migration.is_some() {
            return Err(Error::Busy);
        }
        if e.location == target {
            return Err(Error::WrongTarget);
        }
        let t = self.hosts.get(&target).ok_or(Error::WrongTarget)?;
        if t.platform != e.platform {
            return Err(Error::PlatformMismatch);
        }
        if t.atl < e.min_atl {
            return Err(Error::AtlTooLow);
        }
        let s = self.hosts.get(&e.location).ok_or(Error::WrongSource)?;
        let req = MigrationRequest {
            request_id,
            enclave_id: *enclave,
            measurement: e.measurement,
            source: e.location,
            target,
            epoch: e.epoch,
            deadline,
            endorsements: [
                crate::crypto::sha256(&s.endorsement),
                crate::crypto::sha256(&t.endorsement),
            ],
            policy: crate::crypto::sha256(&e.policy),
        };
        let order = Message::Order(Order {
            request: req.sign(&self.key)?,
            source_endorsement: s.endorsement.clone(),
            target_endorsement: t.endorsement.clone(),
        })
        .encode()?;
        let source = e.location;
        let epoch = e.epoch;
        if let Some(e) = self.enclaves.get_mut(enclave) {
            e.migration = Some(Migration {
                request_id,
                order: order.clone(),
                source,
                target,
                epoch,
                phase: MigrationPhase::Ordered,
            });
        }
        Ok(order)
    }

    fn sm_key(&self, host: &HostId) -> Result<PublicKey> {
        Ok(self.hosts.get(host).ok_or(Error::UnknownSigner)?.sm_key)
    }

    /// Withdraw an order that was never sent (e.g. the caller could not take
    /// it). An order that may have reached the source must not be withdrawn:
    /// settle it through [`Sds::resolution`] instead.
    pub fn withdraw(&mut self, enclave: &EnclaveId, request_id: &RequestId) -> Result<()> {
        let e = self
            .enclaves
            .get_mut(enclave)
            .ok_or(Error::UnknownEnclave)?;
        match &e.migration {
            Some(m) if &m.request_id == request_id && m.phase == MigrationPhase::Ordered => {
                e.migration = None;
                Ok(())
            }
            _ => Err(Error::InvalidState),
        }
    }

    /// Take a proof from an SM. Forged, misdirected or stale proofs change nothing.
    pub fn handle(&mut self, bytes: &[u8]) -> Result<LedgerEvent> {
        match Message::decode(bytes)? {
            Message::Release(b) | Message::Abort(b) => self.on_decision(&b),
            Message::Active(b) | Message::Dropped(b) => self.on_ack(&b),
            _ => Err(Error::WrongMessageType),
        }
    }

    fn on_decision(&mut self, b: &[u8]) -> Result<LedgerEvent> {
        let signed = Signed::parse(b)?;
        let kid = signed.kid;
        let d = Decision::from_value(signed.verify(&kid)?)?;
        // Only the SM of the host the decision names as source may make it.
        if kid != self.sm_key(&d.source)? {
            return Err(Error::NotSource);
        }
        if !self.hosts.contains_key(&d.target) {
            return Err(Error::WrongTarget);
        }
        let e = self
            .enclaves
            .get_mut(&d.enclave_id)
            .ok_or(Error::UnknownEnclave)?;
        if d.epoch <= e.epoch {
            // Already known, or older than what the ledger knows.
            return Err(Error::Duplicate);
        }
        let eid = d.enclave_id;
        match d.kind {
            DecisionKind::Release => {
                let order = match &e.migration {
                    Some(m) if m.request_id == d.request_id => m.order.clone(),
                    _ => Vec::new(),
                };
                e.location = d.target;
                e.epoch = d.epoch;
                e.migration = Some(Migration {
                    request_id: d.request_id,
                    order,
                    source: d.source,
                    target: d.target,
                    epoch: d.epoch - 1,
                    phase: MigrationPhase::Released(Message::Release(b.to_vec()).encode()?),
                });
                Ok(LedgerEvent::Released {
                    enclave: eid,
                    target: d.target,
                    epoch: d.epoch,
                })
            }
            DecisionKind::Abort => {
                e.location = d.source;
                e.epoch = d.epoch;
                e.migration = None;
                self.cleanup.push(Cleanup {
                    target: d.target,
                    request_id: d.request_id,
                    abort: Message::Abort(b.to_vec()).encode()?,
                    rounds: CLEANUP_ROUNDS,
                });
                Ok(LedgerEvent::Aborted {
                    enclave: eid,
                    host: d.source,
                    epoch: d.epoch,
                })
            }
        }
    }

    fn on_ack(&mut self, b: &[u8]) -> Result<LedgerEvent> {
        let signed = Signed::parse(b)?;
        let kid = signed.kid;
        let a = TargetAck::from_value(signed.verify(&kid)?)?;
        if kid != self.sm_key(&a.host)? {
            return Err(Error::UnknownSigner);
        }
        match a.kind {
            AckKind::Active => {
                let e = self
                    .enclaves
                    .get_mut(&a.enclave_id)
                    .ok_or(Error::UnknownEnclave)?;
                let completes = a.epoch == e.epoch
                    && e.location == a.host
                    && e.migration.as_ref().is_some_and(|m| {
                        m.request_id == a.request_id
                            && matches!(m.phase, MigrationPhase::Released(_))
                    });
                // An honest target activates only on the source's RELEASE, so an
                // ACTIVE newer than the ledger proves the release too.
                if !(completes || a.epoch > e.epoch) {
                    return Err(Error::Duplicate);
                }
                e.migration = None;
                e.location = a.host;
                e.epoch = a.epoch;
                Ok(LedgerEvent::Activated {
                    enclave: a.enclave_id,
                    host: a.host,
                    epoch: a.epoch,
                })
            }
            AckKind::Dropped => {
                let before = self.cleanup.len();
                self.cleanup
                    .retain(|c| !(c.request_id == a.request_id && c.target == a.host));
                if before == self.cleanup.len() {
                    return Err(Error::Duplicate);
                }
                Ok(LedgerEvent::Dropped {
                    enclave: a.enclave_id,
                    host: a.host,
                })
            }
        }
    }

    /// Whether nothing is in doubt: no open migration and no pending cleanup.
    pub fn is_settled_all(&self) -> bool {
        self.cleanup.is_empty() && self.enclaves.values().all(|e| e.migration.is_none())
    }

    /// Messages to re-send to settle what is in doubt: `(host, message)`.
    pub fn resolution(&mut self) -> Vec<(HostId, Vec<u8>)> {
        let mut out = Vec::new();
        for e in self.enclaves.values() {
            if let Some(m) = &e.migration {
                match &m.phase {
                    // An ordered migration always holds its order (only a
                    // released one can lack it, see `on_decision`).
                    MigrationPhase::Ordered => out.push((m.source, m.order.clone())),
                    MigrationPhase::Released(rel) => out.push((m.target, rel.clone())),
                }
            }
        }
        for c in self.cleanup.iter_mut() {
            out.push((c.target, c.abort.clone()));
            c.rounds = c.rounds.saturating_sub(1);
        }
        self.cleanup.retain(|c| c.rounds > 0);
        out
    }

    /// Audit queries `(host, message)`: ask each enclave's recorded host (and
    /// an open migration's target) for its latest proof, so the ledger
    /// catches up on proofs that were lost or never reached it — e.g. after
    /// the SDS crashed between signing an order and recording it.
    pub fn audit(&self) -> Vec<(HostId, Vec<u8>)> {
        let mut out = Vec::new();
        for (id, e) in &self.enclaves {
            let Ok(q) = Message::Query { enclave_id: *id }.encode() else {
                continue;
            };
            out.push((e.location, q.clone()));
            if let Some(m) = &e.migration {
                out.push((
                    if m.target == e.location {
                        m.source
                    } else {
                        m.target
                    },
                    q,
                ));
            }
        }
        out
    }

    // -----------------------------------------------------------------------
    // Persistence

    /// The whole ledger and registry as deterministic CBOR (no secrets).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let hosts = self
            .hosts
            .iter()
            .map(|(h, e)| {
                Value::Array(alloc::vec![
                    Value::Bytes(h.0.to_vec()),
                    Value::Bytes(e.endorsement.clone()),
                    int(e.platform),
                    int(e.atl),
                    Value::Bytes(e.sm_key.0.to_vec()),
                ])
            })
            .collect();
        let enclaves = self
            .enclaves
            .iter()
            .map(|(id, e)| {
                let mig = match &e.migration {
                    None => Value::Array(alloc::vec![]),
                    Some(m) => Value::Array(alloc::vec![
                        Value::Bytes(m.request_id.to_vec()),
                        Value::Bytes(m.order.clone()),
                        Value::Bytes(m.source.0.to_vec()),
                        Value::Bytes(m.target.0.to_vec()),
                        int(m.epoch),
                        match &m.phase {
                            MigrationPhase::Ordered => Value::Null,
                            MigrationPhase::Released(r) => Value::Bytes(r.clone()),
                        },
                    ]),
                };
                Value::Array(alloc::vec![
                    Value::Bytes(id.to_vec()),
                    Value::Bytes(e.policy.clone()),
                    Value::Bytes(e.measurement.to_vec()),
                    int(e.platform),
                    int(e.min_atl),
                    Value::Bytes(e.location.0.to_vec()),
                    int(e.epoch),
                    mig,
                ])
            })
            .collect();
        let cleanup = self
            .cleanup
            .iter()
            .map(|c| {
                Value::Array(alloc::vec![
                    Value::Bytes(c.target.0.to_vec()),
                    Value::Bytes(c.request_id.to_vec()),
                    Value::Bytes(c.abort.clone()),
                    int(c.rounds as u64),
                ])
            })
            .collect();
        let roots = self
            .device_roots
            .iter()
            .map(|r| Value::Bytes(r.0.to_vec()))
            .collect();
        let devices = self
            .devices
            .iter()
            .map(|(d, p)| {
                Value::Array(alloc::vec![
                    Value::Bytes(d.0.to_vec()),
                    match p {
                        Provenance::Certified { root } => Value::Bytes(root.0.to_vec()),
                        Provenance::Pinned => Value::Null,
                    },
                ])
            })
            .collect();
        Builder::new(MsgType::SdsState)
            .bytes(&self.key.public().0)
            .value(Value::Array(roots))
            .value(Value::Array(devices))
            .value(Value::Array(hosts))
            .value(Value::Array(enclaves))
            .value(Value::Array(cleanup))
            .encode()
    }

    /// Restore a ledger written by [`Sds::to_bytes`] for the same key.
    pub fn from_bytes(key: SigningKey, bytes: &[u8]) -> Result<Sds> {
        let mut f = Fields::open(cbor::decode(bytes, 64 << 20)?, MsgType::SdsState, 6)?;
        if PublicKey(f.array()?) != key.public() {
            return Err(Error::UnknownSigner);
        }
        let mut sds = Sds::new(key);
        let tuple = |v: Value, n: usize| -> Result<Vec<Value>> {
            match v {
                Value::Array(a) if a.len() == n => Ok(a),
                _ => Err(Error::Decode),
            }
        };
        // Canonical, as `to_bytes` writes it: every list in strictly
        // increasing key order (so no key twice), every certified device's
        // root registered, every endorsed host a device with provenance.
        let mut last_root = None;
        for r in f.list(MAX_ENTRIES)? {
            let root = PublicKey(as_array(r)?);
            if last_root.is_some_and(|l| l >= root) {
                return Err(Error::Decode);
            }
            last_root = Some(root);
            sds.device_roots.insert(root);
        }
        for d in f.list(MAX_ENTRIES)? {
            let mut it = tuple(d, 2)?.into_iter();
            let mut n = || it.next().ok_or(Error::Decode);
            let device = PublicKey(as_array(n()?)?);
            let provenance = match n()? {
                Value::Null => Provenance::Pinned,
                v => {
                    let root = PublicKey(as_array(v)?);
                    if !sds.device_roots.contains(&root) {
                        return Err(Error::Decode);
                    }
                    Provenance::Certified { root }
                }
            };
            if sds
                .devices
                .last_key_value()
                .is_some_and(|(l, _)| *l >= device)
            {
                return Err(Error::Decode);
            }
            sds.devices.insert(device, provenance);
        }
        for h in f.list(MAX_ENTRIES)? {
            let mut it = tuple(h, 5)?.into_iter();
            let mut n = || it.next().ok_or(Error::Decode);
            let host = PublicKey(as_array(n()?)?);
            if !sds.devices.contains_key(&host)
                || sds.hosts.last_key_value().is_some_and(|(l, _)| *l >= host)
            {
                return Err(Error::Decode);
            }
            let entry = HostEntry {
                endorsement: as_bytes(n()?, MAX_SIGNED)?,
                platform: as_u64(n()?)?,
                atl: as_u64(n()?)?,
                sm_key: PublicKey(as_array(n()?)?),
            };
            sds.hosts.insert(host, entry);
        }
        for e in f.list(MAX_ENTRIES)? {
            let mut it = tuple(e, 8)?.into_iter();
            let mut n = || it.next().ok_or(Error::Decode);
            let id: EnclaveId = as_array(n()?)?;
            if sds.enclaves.last_key_value().is_some_and(|(l, _)| *l >= id) {
                return Err(Error::Decode);
            }
            let policy = as_bytes(n()?, MAX_SIGNED)?;
            let measurement = as_array(n()?)?;
            let platform = as_u64(n()?)?;
            let min_atl = as_u64(n()?)?;
            let location = PublicKey(as_array(n()?)?);
            let epoch = as_u64(n()?)?;
            let migration = match n()? {
                Value::Array(a) if a.is_empty() => None,
                Value::Array(a) if a.len() == 6 => {
                    let mut it = a.into_iter();
                    let mut n = || it.next().ok_or(Error::Decode);
                    let request_id = as_array(n()?)?;
                    let order = as_bytes(n()?, 4 * MAX_SIGNED)?;
                    let source = PublicKey(as_array(n()?)?);
                    let target = PublicKey(as_array(n()?)?);
                    let epoch = as_u64(n()?)?;
                    let phase = match n()? {
                        // An ordered migration holds its order.
                        Value::Null if order.is_empty() => return Err(Error::Decode),
                        Value::Null => MigrationPhase::Ordered,
                        v => MigrationPhase::Released(as_bytes(v, 2 * MAX_SIGNED)?),
                    };
                    Some(Migration {
                        request_id,
                        order,
                        source,
                        target,
                        epoch,
                        phase,
                    })
                }
                _ => return Err(Error::Decode),
            };
            sds.enclaves.insert(
                id,
                EnclaveEntry {
                    policy,
                    measurement,
                    platform,
                    min_atl,
                    location,
                    epoch,
                    migration,
                },
            );
        }
        for c in f.list(MAX_ENTRIES)? {
            let mut it = tuple(c, 4)?.into_iter();
            let mut n = || it.next().ok_or(Error::Decode);
            sds.cleanup.push(Cleanup {
                target: PublicKey(as_array(n()?)?),
                request_id: as_array(n()?)?,
                abort: as_bytes(n()?, 2 * MAX_SIGNED)?,
                rounds: u32::try_from(as_u64(n()?)?).map_err(|_| Error::Decode)?,
            });
        }
        Ok(sds)
    }
}

/// Verify a host endorsement with the SDS key (for tools that inspect objects).
pub fn verify_endorsement(bytes: &[u8], sds: &PublicKey) -> Result<HostEndorsement> {
    verify_as(bytes, sds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cbor::int;
    use crate::crypto::Secret;
    use crate::wire::PLATFORM_RISCV64;

    fn key() -> SigningKey {
        SigningKey::from_seed(Secret::from_bytes([1; 32])).unwrap() // safe: test
    }

    /// A ledger is read as strictly as any message: a tuple with one item
    /// more than its kind has is refused, not read past.
    #[test]
    fn a_ledger_tuple_with_an_extra_item_is_refused() {
        let mut sds = Sds::new(key());
        let id = crate::monitor::Identity::derive(Secret::from_bytes([2; 32]), [3; 32]).unwrap(); // safe: test
        sds.pin_device(id.host_id());
        sds.endorse_host(
            id.certificate(),
            alloc::vec![[3; 32]],
            PLATFORM_RISCV64,
            1,
            0,
            10,
        )
        .unwrap(); // safe: test
        let bytes = sds.to_bytes().unwrap(); // safe: test
        assert!(Sds::from_bytes(key(), &bytes).is_ok());
        let decoded = cbor::decode(&bytes, 1 << 20).unwrap(); // safe: test
        let Value::Array(mut top) = decoded else {
            // safe: test
            unreachable!("a ledger is an array") // safe: test
        };
        // [type, version, SDS key, roots, devices, hosts, enclaves, cleanup]
        let Value::Array(hosts) = &mut top[5] else {
            unreachable!("hosts") // safe: test
        };
        let Value::Array(host) = &mut hosts[0] else {
            unreachable!("a host tuple") // safe: test
        };
        host.push(int(0));
        let bad = cbor::encode(&Value::Array(top)).unwrap(); // safe: test
        assert_eq!(Sds::from_bytes(key(), &bad).err(), Some(Error::Decode));
    }

    /// An ACTIVE completes a migration only when it is for the request the
    /// ledger released: one from the source's own SM for its open, unreleased
    /// request (a compromised source ending the migration in the ledger
    /// without an ABORT) is a duplicate and changes nothing.
    #[test]
    fn an_active_for_an_unreleased_request_changes_nothing() {
        let id = crate::monitor::Identity::derive(Secret::from_bytes([2; 32]), [3; 32]).unwrap(); // safe: test
        let mut sds = Sds::new(key());
        sds.pin_device(id.host_id());
        sds.endorse_host(
            id.certificate(),
            alloc::vec![[3; 32]],
            PLATFORM_RISCV64,
            1,
            0,
            u64::MAX,
        )
        .unwrap(); // safe: test
        let h = id.host_id();
        let entry = EnclaveEntry {
            policy: alloc::vec![1],
            measurement: [7; 32],
            platform: crate::wire::PLATFORM_RISCV64,
            min_atl: 1,
            location: h,
            epoch: 1,
            migration: Some(Migration {
                request_id: [8; 16],
                order: alloc::vec![1],
                source: h,
                target: PublicKey([5; 32]),
                epoch: 1,
                phase: MigrationPhase::Ordered,
            }),
        };
        sds.enclaves.insert([6; 16], entry.clone());
        let ack = TargetAck {
            kind: AckKind::Active,
            request_id: [8; 16],
            enclave_id: [6; 16],
            epoch: 1,
            host: h,
        }
        .sign(id.sm_signing_key())
        .unwrap(); // safe: test
        let msg = Message::Active(ack).encode().unwrap(); // safe: test
        assert_eq!(sds.handle(&msg), Err(Error::Duplicate));
        assert_eq!(sds.enclaves.get(&[6; 16]), Some(&entry));
    }

    fn device(i: u8) -> crate::monitor::Identity {
        let id = crate::monitor::Identity::derive(Secret::from_bytes([i; 32]), [3; 32]);
        id.unwrap() // safe: test
    }

    fn root(i: u8) -> SigningKey {
        SigningKey::from_seed(Secret::from_bytes([0x70 + i; 32])).unwrap() // safe: test
    }

    fn device_cert(root: &SigningKey, device: HostId) -> Vec<u8> {
        DeviceCertificate { device }.sign(root).unwrap() // safe: test
    }

    /// A host that made its own device key in software and signed a
    /// self-consistent SM certificate with it is not endorsed: no root
    /// certified the key and nobody pinned it. Nothing is registered.
    #[test]
    fn a_device_key_without_provenance_is_not_endorsed() {
        let mut sds = Sds::new(key());
        sds.add_device_root(root(1).public());
        let d = device(2);
        assert_eq!(
            sds.endorse_host(
                d.certificate(),
                alloc::vec![[3; 32]],
                PLATFORM_RISCV64,
                1,
                0,
                10
            ),
            Err(Error::DeviceNotCertified)
        );
        assert!(sds.host(&d.host_id()).is_none());
        assert_eq!(sds.provenance(&d.host_id()), None);
    }

    /// Only a registered root's certificate gives provenance; another key's
    /// (a host's own "manufacturer"), a tampered one, or another kind of
    /// signed object from a registered root does not.
    #[test]
    fn only_a_registered_root_certifies_a_device() {
        let mut sds = Sds::new(key());
        sds.add_device_root(root(1).public());
        let d = device(2);
        assert_eq!(
            sds.certify_device(&device_cert(&root(9), d.host_id())),
            Err(Error::DeviceNotCertified)
        );
        let mut tampered = device_cert(&root(1), d.host_id());
        let n = tampered.len();
        tampered[n - 70] ^= 1; // the device key, inside the payload
        assert_eq!(sds.certify_device(&tampered), Err(Error::BadSignature));
        let other_kind = HostEndorsement {
            host: d.host_id(),
            sm_measurements: alloc::vec![[3; 32]],
            platform: crate::wire::PLATFORM_RISCV64,
            atl: 1,
            not_before: 0,
            not_after: 10,
        }
        .sign(&root(1))
        .unwrap(); // safe: test
        assert_eq!(
            sds.certify_device(&other_kind),
            Err(Error::WrongMessageType)
        );
        assert_eq!(sds.provenance(&d.host_id()), None);
        assert_eq!(
            sds.endorse_host(
                d.certificate(),
                alloc::vec![[3; 32]],
                PLATFORM_RISCV64,
                1,
                0,
                10
            ),
            Err(Error::DeviceNotCertified)
        );
        assert_eq!(
            sds.certify_device(&device_cert(&root(1), d.host_id())),
            Ok(d.host_id())
        );
        assert_eq!(
            sds.provenance(&d.host_id()),
            Some(Provenance::Certified {
                root: root(1).public()
            })
        );
        assert!(sds
            .endorse_host(
                d.certificate(),
                alloc::vec![[3; 32]],
                PLATFORM_RISCV64,
                1,
                0,
                10
            )
            .is_ok());
        assert_eq!(sds.host(&d.host_id()).map(|h| h.atl), Some(1));
    }

    /// A mixed fleet: an enclave is placed and ordered only on hosts of the
    /// platform its code is built for; 0 is no platform; the platforms
    /// survive the ledger.
    #[test]
    fn platforms_bound_placement_and_orders() {
        use crate::wire::PLATFORM_AARCH64;
        let mut sds = Sds::new(key());
        let (rv, rv2, arm) = (device(2), device(3), device(4));
        for d in [&rv, &rv2, &arm] {
            sds.pin_device(d.host_id());
        }
        let ms = || alloc::vec![[3; 32]];
        assert_eq!(
            sds.endorse_host(rv.certificate(), ms(), 0, 1, 0, 10),
            Err(Error::InvalidArgument)
        );
        sds.endorse_host(rv.certificate(), ms(), PLATFORM_RISCV64, 1, 0, 10)
            .unwrap(); // safe: test
        sds.endorse_host(rv2.certificate(), ms(), PLATFORM_RISCV64, 1, 0, 10)
            .unwrap(); // safe: test
        sds.endorse_host(arm.certificate(), ms(), PLATFORM_AARCH64, 1, 0, 10)
            .unwrap(); // safe: test
                       // A device's platform never changes: re-endorsing it as another is refused.
        assert_eq!(
            sds.endorse_host(arm.certificate(), ms(), PLATFORM_RISCV64, 2, 0, 10),
            Err(Error::PlatformMismatch)
        );
        assert!(sds
            .endorse_host(arm.certificate(), ms(), PLATFORM_AARCH64, 2, 0, 10)
            .is_ok());
        let (e1, e2) = ([1; 16], [2; 16]);
        assert_eq!(
            sds.register_enclave(e1, [9; 32], PLATFORM_AARCH64, 1, rv.host_id()),
            Err(Error::PlatformMismatch)
        );
        assert_eq!(
            sds.register_enclave(e1, [9; 32], 0, 1, rv.host_id()),
            Err(Error::InvalidArgument)
        );
        assert!(sds.enclave(&e1).is_none());
        sds.register_enclave(e1, [9; 32], PLATFORM_RISCV64, 1, rv.host_id())
            .unwrap(); // safe: test
        let p2 = sds.register_enclave(e2, [8; 32], PLATFORM_AARCH64, 1, arm.host_id());
        assert!(p2.is_ok());
        // The same id registered again for another platform is refused.
        assert_eq!(
            sds.register_enclave(e1, [9; 32], PLATFORM_AARCH64, 1, arm.host_id()),
            Err(Error::Busy)
        );
        assert_eq!(
            sds.order(&e1, arm.host_id(), [5; 16], 5),
            Err(Error::PlatformMismatch)
        );
        assert_eq!(
            sds.order(&e2, rv.host_id(), [6; 16], 5),
            Err(Error::PlatformMismatch)
        );
        assert!(sds.enclave(&e1).unwrap().migration.is_none()); // safe: test
        assert!(sds.order(&e1, rv2.host_id(), [7; 16], 5).is_ok());
        let back = Sds::from_bytes(key(), &sds.to_bytes().unwrap()).unwrap(); // safe: test
        assert_eq!(
            back.host(&arm.host_id()).map(|h| h.platform),
            Some(PLATFORM_AARCH64)
        );
        assert_eq!(
            back.host(&rv.host_id()).map(|h| h.platform),
            Some(PLATFORM_RISCV64)
        );
        assert_eq!(
            back.enclave(&e2).map(|e| e.platform),
            Some(PLATFORM_AARCH64)
        );
        assert_eq!(
            back.enclave(&e1).map(|e| e.platform),
            Some(PLATFORM_RISCV64)
        );
    }

    /// Pinning is the operator's explicit exception: it endorses, it is
    /// recorded as `Pinned` (and survives the ledger), and it never
    /// downgrades a certified device.
    #[test]
    fn a_pin_is_recorded_and_never_hides_a_certificate() {
        let mut sds = Sds::new(key());
        sds.add_device_root(root(1).public());
        let (p, c) = (device(2), device(3));
        sds.pin_device(p.host_id());
        assert!(sds
            .endorse_host(
                p.certificate(),
                alloc::vec![[3; 32]],
                PLATFORM_RISCV64,
                1,
                0,
                10
            )
            .is_ok());
        sds.certify_device(&device_cert(&root(1), c.host_id()))
            .unwrap(); // safe: test
        sds.pin_device(c.host_id());
        let back = Sds::from_bytes(key(), &sds.to_bytes().unwrap()).unwrap(); // safe: test
        assert_eq!(back.provenance(&p.host_id()), Some(Provenance::Pinned));
        assert_eq!(
            back.provenance(&c.host_id()),
            Some(Provenance::Certified {
                root: root(1).public()
            })
        );
        assert_eq!(
            back.device_roots().collect::<Vec<_>>(),
            alloc::vec![&root(1).public()]
        );
        // A pinned device a root certifies later becomes certified.
        let mut sds = back;
        sds.certify_device(&device_cert(&root(1), p.host_id()))
            .unwrap(); // safe: test
        assert_eq!(
            sds.provenance(&p.host_id()),
            Some(Provenance::Certified {
                root: root(1).public()
            })
        );
    }

    /// A device certificate offered with a host's SM certificate must name
    /// that host's device: another device's is refused and records nothing.
    #[test]
    fn a_device_certificate_for_another_device_is_refused() {
        let mut sds = Sds::new(key());
        sds.add_device_root(root(1).public());
        let (a, b) = (device(2), device(3));
        assert_eq!(
            sds.certify_device_of(&device_cert(&root(1), b.host_id()), a.certificate()),
            Err(Error::PeerMismatch)
        );
        assert_eq!(sds.provenance(&a.host_id()), None);
        assert_eq!(sds.provenance(&b.host_id()), None);
        assert_eq!(
            sds.certify_device_of(&device_cert(&root(1), a.host_id()), a.certificate()),
            Ok(a.host_id())
        );
    }

    /// A ledger naming a root or a device twice is not canonical: refused.
    #[test]
    fn a_ledger_with_a_root_or_device_twice_is_refused() {
        let mut sds = Sds::new(key());
        sds.add_device_root(root(1).public());
        sds.pin_device(PublicKey([4; 32]));
        let bytes = sds.to_bytes().unwrap(); // safe: test
        for at in [3, 4] {
            let decoded = cbor::decode(&bytes, 1 << 20).unwrap(); // safe: test
            let Value::Array(mut top) = decoded else {
                unreachable!("a ledger is an array") // safe: test
            };
            let Value::Array(list) = &mut top[at] else {
                unreachable!("a list") // safe: test
            };
            let first = list[0].clone();
            list.push(first);
            let bad = cbor::encode(&Value::Array(top)).unwrap(); // safe: test
            assert_eq!(Sds::from_bytes(key(), &bad).err(), Some(Error::Decode));
        }
    }

    /// A snapshot is read only in the canonical form `to_bytes` writes:
    /// lists in increasing key order, every certified device's root
    /// registered, every endorsed host a device with provenance.
    #[test]
    fn a_ledger_out_of_canonical_form_is_refused() {
        let mut sds = Sds::new(key());
        sds.add_device_root(root(1).public());
        sds.add_device_root(root(2).public());
        let d = device(2);
        sds.certify_device(&device_cert(&root(1), d.host_id()))
            .unwrap(); // safe: test
        sds.endorse_host(
            d.certificate(),
            alloc::vec![[3; 32]],
            PLATFORM_RISCV64,
            1,
            0,
            10,
        )
        .unwrap(); // safe: test
        let bytes = sds.to_bytes().unwrap(); // safe: test
        assert!(Sds::from_bytes(key(), &bytes).is_ok());
        let edit = |at: usize, f: &dyn Fn(&mut Vec<Value>)| {
            let decoded = cbor::decode(&bytes, 1 << 20).unwrap(); // safe: test
            let Value::Array(mut top) = decoded else {
                unreachable!("a ledger is an array") // safe: test
            };
            let Value::Array(list) = &mut top[at] else {
                unreachable!("a list") // safe: test
            };
            f(list);
            let bad = cbor::encode(&Value::Array(top)).unwrap(); // safe: test
            Sds::from_bytes(key(), &bad).err()
            // safe: test
        };
        // [type, version, SDS key, roots, devices, hosts, enclaves, cleanup]
        assert_eq!(edit(3, &|l| l.reverse()), Some(Error::Decode)); // roots out of order
        assert_eq!(edit(3, &|l| l.clear()), Some(Error::Decode)); // the certifying root unknown
        assert_eq!(edit(4, &|l| l.clear()), Some(Error::Decode)); // an endorsed host without provenance
    }

    fn ledger(order: usize, release: usize, abort: usize) -> Sds {
        let mut sds = Sds::new(key());
        let h = PublicKey([5; 32]);
        sds.enclaves.insert(
            [6; 16],
            EnclaveEntry {
                policy: alloc::vec![1],
                measurement: [7; 32],
                platform: crate::wire::PLATFORM_RISCV64,
                min_atl: 1,
                location: h,
                epoch: 1,
                migration: Some(Migration {
                    request_id: [8; 16],
                    order: alloc::vec![0; order],
                    source: h,
                    target: h,
                    epoch: 0,
                    phase: MigrationPhase::Released(alloc::vec![0; release]),
                }),
            },
        );
        sds.cleanup.push(Cleanup {
            target: h,
            request_id: [9; 16],
            abort: alloc::vec![0; abort],
            rounds: 3,
        });
        sds
    }

    /// Each byte string a ledger holds is read up to its cap and no further.
    #[test]
    fn ledger_caps_are_exact() {
        let (o, r, a) = (4 * MAX_SIGNED, 2 * MAX_SIGNED, 2 * MAX_SIGNED);
        let read = |sds: Sds| Sds::from_bytes(key(), &sds.to_bytes().unwrap()).err(); // safe: test
        assert_eq!(read(ledger(o, r, a)), None);
        assert_eq!(read(ledger(o + 1, r, a)), Some(Error::TooLarge));
        assert_eq!(read(ledger(o, r + 1, a)), Some(Error::TooLarge));
        assert_eq!(read(ledger(o, r, a + 1)), Some(Error::TooLarge));
        // And the migration tuple takes no extra item either.
        let bytes = ledger(1, 1, 1).to_bytes().unwrap(); // safe: test
        let decoded = cbor::decode(&bytes, 1 << 20).unwrap(); // safe: test
        let Value::Array(mut top) = decoded else {
            // safe: test
            unreachable!("a ledger is an array") // safe: test
        };
        let Value::Array(enclaves) = &mut top[6] else {
            unreachable!("enclaves") // safe: test
        };
        let Value::Array(entry) = &mut enclaves[0] else {
            unreachable!("an enclave tuple") // safe: test
        };
        let Value::Array(migration) = &mut entry[7] else {
            unreachable!("its migration") // safe: test
        };
        migration.push(int(0));
        let bad = cbor::encode(&Value::Array(top)).unwrap(); // safe: test
        assert_eq!(Sds::from_bytes(key(), &bad).err(), Some(Error::Decode));
        // An ordered migration without its order is not a ledger the SDS
        // writes: refused (resolution would send the source nothing).
        let mut sds = ledger(0, 1, 1);
        for e in sds.enclaves.values_mut() {
            if let Some(m) = e.migration.as_mut() {
                m.phase = MigrationPhase::Ordered;
            }
        }
        let bytes = sds.to_bytes().unwrap(); // safe: test
        assert_eq!(Sds::from_bytes(key(), &bytes).err(), Some(Error::Decode));
    }
}
