//! Wire objects. Signed objects are COSE_Sign1 (RFC 9052) with EdDSA over a
//! deterministic CBOR payload `[type, version, fields...]`; the protected
//! header holds exactly `{alg: EdDSA, kid: signer's Ed25519 public key}`.
//! Unsigned in-channel messages use the same payload form (TLS protects them).
//! See docs/protocol.md for the field tables.

use alloc::vec::Vec;

use crate::crypto::SecretBytes;

use ciborium::value::Value;
use coset::{iana, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder};

use crate::cbor::{self, as_array, Builder, Fields, MsgType};
use crate::crypto::{Digest, PublicKey, SigningKey};
use crate::error::{Error, Result};
use crate::ids::Section;
pub use crate::ids::{EnclaveId, HostId, Measurement, RequestId};

/// Cap on any signed object.
pub const MAX_SIGNED: usize = 4096;
/// Cap on any message (SDS ↔ SM or in-channel frame).
pub const MAX_MESSAGE: usize = 24 * 1024;
/// Bytes of image data per CHUNK message (16 KiB: with framing it spans two TLS records).
pub const CHUNK_DATA: usize = 16 * 1024;
/// Cap on the framework evidence carried in READY.
pub const MAX_FRAMEWORK_EVIDENCE: usize = 1024;
/// Cap on the SM measurements one endorsement accepts.
pub const MAX_SM_MEASUREMENTS: usize = 16;
/// Cap on any image section the protocol moves (1 TiB).
pub const MAX_SECTION_LEN: u64 = 1 << 40;

// ---------------------------------------------------------------------------
// COSE_Sign1 envelope

fn protected_header(kid: &PublicKey) -> coset::Header {
    HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .key_id(kid.0.to_vec())
        .build()
}

/// Sign a payload with `key`.
pub(crate) fn sign(key: &SigningKey, payload: Vec<u8>) -> Result<Vec<u8>> {
    CoseSign1Builder::new()
        .protected(protected_header(&key.public()))
        .payload(payload)
        .create_signature(b"", |tbs| key.sign(tbs))
        .build()
        .to_vec()
        .map_err(|_| Error::Decode)
}

/// A parsed but not yet verified COSE_Sign1.
#[derive(Debug)]
pub struct Signed {
    /// The key the object says signed it.
    pub kid: PublicKey,
    sign1: CoseSign1,
}

impl Signed {
    /// Parse strictly: size cap, no trailing bytes, canonical encoding, exactly
    /// the protected header librewire writes, nothing unprotected, a payload.
    pub fn parse(bytes: &[u8]) -> Result<Signed> {
        if bytes.len() > MAX_SIGNED {
            return Err(Error::TooLarge);
        }
        let sign1 = CoseSign1::from_slice(bytes)?;
        let kid: [u8; 32] = sign1
            .protected
            .header
            .key_id
            .as_slice()
            .try_into()
            .map_err(|_| Error::Decode)?;
        let kid = PublicKey(kid);
        let expected = protected_header(&kid).to_vec().map_err(|_| Error::Decode)?;
        let original = sign1.protected.original_data.as_deref().unwrap_or(&[]);
        let expected_bstr = cbor::encode(&Value::Bytes(expected))?;
        let got_bstr = cbor::encode(&Value::Bytes(original.to_vec()))?;
        if expected_bstr != got_bstr
            || !sign1.unprotected.is_empty()
            || sign1.payload.is_none()
            || sign1.signature.len() != 64
        {
            return Err(Error::Decode);
        }
        if sign1.clone().to_vec().map_err(|_| Error::Decode)? != bytes {
            return Err(Error::NonCanonical);
        }
        Ok(Signed { kid, sign1 })
    }

    /// Verify the signature with `key` (which must also be the kid) and return the payload value.
    pub fn verify(self, key: &PublicKey) -> Result<Value> {
        if self.kid != *key {
            return Err(Error::UnknownSigner);
        }
        self.sign1
            .verify_signature(b"", |sig, tbs| key.verify(tbs, sig))?;
        let payload = self.sign1.payload.ok_or(Error::Decode)?;
        cbor::decode(&payload, MAX_SIGNED)
    }
}

/// Decode a signed object without verifying its signature: only for bytes
/// whose exact value another, verified signature binds (by digest), or that
/// this monitor verified before and keeps in its sealed journal.
pub(crate) fn decode_vouched<T: SignedBody>(bytes: &[u8]) -> Result<T> {
    let s = Signed::parse(bytes)?;
    let payload = s.sign1.payload.ok_or(Error::Decode)?;
    T::from_value(cbor::decode(&payload, MAX_SIGNED)?)
}

/// Parse, check the signer is `key`, verify, and decode as `T`.
pub fn verify_as<T: SignedBody>(bytes: &[u8], key: &PublicKey) -> Result<T> {
    T::from_value(Signed::parse(bytes)?.verify(key)?)
}

/// Objects that travel inside COSE_Sign1.
pub trait SignedBody: Sized {
    fn to_value(&self) -> Value;
    fn from_value(v: Value) -> Result<Self>;
    fn sign(&self, key: &SigningKey) -> Result<Vec<u8>> {
        sign(key, cbor::encode(&self.to_value())?)
    }
}

fn measurements_value(ms: &[Measurement]) -> Value {
    Value::Array(ms.iter().map(|m| Value::Bytes(m.to_vec())).collect())
}

// ---------------------------------------------------------------------------
// Signed objects

/// SDS → SMS: move `enclave` (at `epoch`) from `source` to `target` before `deadline`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationRequest {
    pub request_id: RequestId,
    pub enclave_id: EnclaveId,
    pub measurement: Measurement,
    pub source: HostId,
    pub target: HostId,
    pub epoch: u64,
    /// Wall time, seconds since the Unix epoch.
    pub deadline: u64,
    /// SHA-256 of the source's and the target's signed endorsements (the
    /// COSE bytes) this request is valid with: an older, still valid
    /// endorsement of the same host cannot be substituted on the SDS path.
    pub endorsements: [Digest; 2],
    /// SHA-256 of the enclave's signed EnclavePolicy (the COSE bytes).
    pub policy: Digest,
}

impl SignedBody for MigrationRequest {
    fn to_value(&self) -> Value {
        Builder::new(MsgType::MigrationRequest)
            .bytes(&self.request_id)
            .bytes(&self.enclave_id)
            .bytes(&self.measurement)
            .bytes(&self.source.0)
            .bytes(&self.target.0)
            .u64(self.epoch)
            .u64(self.deadline)
            .bytes(&self.endorsements[0])
            .bytes(&self.endorsements[1])
            .bytes(&self.policy)
            .build()
    }
    fn from_value(v: Value) -> Result<Self> {
        let mut f = Fields::open(v, MsgType::MigrationRequest, 10)?;
        Ok(MigrationRequest {
            request_id: f.array()?,
            enclave_id: f.array()?,
            measurement: f.array()?,
            source: PublicKey(f.array()?),
            target: PublicKey(f.array()?),
            epoch: f.u64()?,
            deadline: f.u64()?,
            endorsements: [f.array()?, f.array()?],
            policy: f.array()?,
        })
    }
}

impl MigrationRequest {
    /// The endorsements beside a (verified) request: checked to be the exact
    /// bytes the request binds, then decoded. The SDS's signature on the
    /// request vouches for them, so their own signatures need no second
    /// verification (two Ed25519 verifications fewer per monitor).
    pub fn vouched_endorsements(
        &self,
        source: &[u8],
        target: &[u8],
    ) -> Result<(HostEndorsement, HostEndorsement)> {
        if crate::crypto::sha256(source) != self.endorsements[0]
            || crate::crypto::sha256(target) != self.endorsements[1]
        {
            return Err(Error::EndorsementMismatch);
        }
        Ok((decode_vouched(source)?, decode_vouched(target)?))
    }

    /// The enclave policy beside a (verified) request, checked to be the
    /// exact bytes the request binds, then decoded.
    pub fn vouched_policy(&self, policy: &[u8]) -> Result<EnclavePolicy> {
        if crate::crypto::sha256(policy) != self.policy {
            return Err(Error::WrongEnclave);
        }
        decode_vouched(policy)
    }
}

/// Platform numbers the project uses (`HostEndorsement::platform`,
/// `EnclavePolicy::platform`): what code a host can run. An operator may
/// number further platforms; 0 is never valid.
pub const PLATFORM_RISCV64: u64 = 1;
/// aarch64 (an Arm secure-world monitor).
pub const PLATFORM_AARCH64: u64 = 2;

/// SDS: this host (device key) may run these SM builds, code built for this
/// platform, at this ATL, in this window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEndorsement {
    pub host: HostId,
    pub sm_measurements: Vec<Measurement>,
    pub platform: u64,
    pub atl: u64,
    pub not_before: u64,
    pub not_after: u64,
}

impl HostEndorsement {
    /// Validity at wall time `now` (seconds).
    pub fn check_valid(&self, now: Option<u64>) -> Result<()> {
        let now = now.ok_or(Error::NoTrustedTime)?;
        if now < self.not_before || now > self.not_after {
            return Err(Error::EndorsementExpired);
        }
        Ok(())
    }
}

impl SignedBody for HostEndorsement {
    fn to_value(&self) -> Value {
        Builder::new(MsgType::HostEndorsement)
            .bytes(&self.host.0)
            .value(measurements_value(&self.sm_measurements))
            .u64(self.platform)
            .u64(self.atl)
            .u64(self.not_before)
            .u64(self.not_after)
            .build()
    }
    fn from_value(v: Value) -> Result<Self> {
        let mut f = Fields::open(v, MsgType::HostEndorsement, 6)?;
        let host = PublicKey(f.array()?);
        let ms = f
            .list(MAX_SM_MEASUREMENTS)?
            .into_iter()
            .map(as_array)
            .collect::<Result<Vec<_>>>()?;
        Ok(HostEndorsement {
            host,
            sm_measurements: ms,
            platform: f.u64()?,
            atl: f.u64()?,
            not_before: f.u64()?,
            not_after: f.u64()?,
        })
    }
}

/// SDS: the enclave `enclave_id` with code `measurement`, built for
/// `platform`, may run only on hosts of that platform and ATL ≥ `min_atl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnclavePolicy {
    pub enclave_id: EnclaveId,
    pub measurement: Measurement,
    pub platform: u64,
    pub min_atl: u64,
}

impl EnclavePolicy {
    /// The checks a host endorsement must pass for this enclave to move
    /// there: its platform runs the code, its ATL is high enough.
    pub fn admits(&self, host: &HostEndorsement) -> Result<()> {
        if host.platform != self.platform {
            return Err(Error::PlatformMismatch);
        }
        if host.atl < self.min_atl {
            return Err(Error::AtlTooLow);
        }
        Ok(())
    }
}

impl SignedBody for EnclavePolicy {
    fn to_value(&self) -> Value {
        Builder::new(MsgType::EnclavePolicy)
            .bytes(&self.enclave_id)
            .bytes(&self.measurement)
            .u64(self.platform)
            .u64(self.min_atl)
            .build()
    }
    fn from_value(v: Value) -> Result<Self> {
        let mut f = Fields::open(v, MsgType::EnclavePolicy, 4)?;
        Ok(EnclavePolicy {
            enclave_id: f.array()?,
            measurement: f.array()?,
            platform: f.u64()?,
            min_atl: f.u64()?,
        })
    }
}

/// Device key: this device booted the SM with `sm_measurement`, whose key is `sm_key`.
/// The first link of the evidence chain (Keystone's SM report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmCertificate {
    pub device: PublicKey,
    pub sm_measurement: Measurement,
    pub sm_key: PublicKey,
}

impl SignedBody for SmCertificate {
    fn to_value(&self) -> Value {
        Builder::new(MsgType::SmCertificate)
            .bytes(&self.device.0)
            .bytes(&self.sm_measurement)
            .bytes(&self.sm_key.0)
            .build()
    }
    fn from_value(v: Value) -> Result<Self> {
        let mut f = Fields::open(v, MsgType::SmCertificate, 3)?;
        Ok(SmCertificate {
            device: PublicKey(f.array()?),
            sm_measurement: f.array()?,
            sm_key: PublicKey(f.array()?),
        })
    }
}

impl SmCertificate {
    /// Verify a certificate against an (already verified) endorsement: signed
    /// by the endorsed device key, for an endorsed SM build. Returns the SM key.
    pub fn verify_against(bytes: &[u8], endorsement: &HostEndorsement) -> Result<SmCertificate> {
        let signed = Signed::parse(bytes)?;
        if signed.kid != endorsement.host {
            return Err(Error::PeerMismatch);
        }
        let cert = SmCertificate::from_value(signed.verify(&endorsement.host)?)?;
        if cert.device != endorsement.host {
            return Err(Error::PeerMismatch);
        }
        if !endorsement.sm_measurements.contains(&cert.sm_measurement) {
            return Err(Error::SmNotEndorsed);
        }
        Ok(cert)
    }
}

/// A device-key provenance root (the manufacturer, or the operator's CA) →
/// SDS: `device` is the public key of a real device's root of trust, issued
/// at manufacture or provisioning, out of band from the host that later
/// presents it. The SDS endorses only devices a registered root certified
/// (or that its operator pinned by hand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCertificate {
    pub device: PublicKey,
}

impl SignedBody for DeviceCertificate {
    fn to_value(&self) -> Value {
        Builder::new(MsgType::DeviceCertificate)
            .bytes(&self.device.0)
            .build()
    }
    fn from_value(v: Value) -> Result<Self> {
        let mut f = Fields::open(v, MsgType::DeviceCertificate, 1)?;
        Ok(DeviceCertificate {
            device: PublicKey(f.array()?),
        })
    }
}

/// SMT → SMS (signed by the target SM key): the enclave is imported, measured
/// and attested, PENDING at `epoch`. Carries the enclave report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub request_id: RequestId,
    pub enclave_id: EnclaveId,
    pub epoch: u64,
    pub target: HostId,
    pub measurement: Measurement,
    /// SHA-256 over the request id and the three stream digests.
    pub report_data: Digest,
    pub framework_evidence: Vec<u8>,
}

impl SignedBody for Ready {
    fn to_value(&self) -> Value {
        Builder::new(MsgType::Ready)
            .bytes(&self.request_id)
            .bytes(&self.enclave_id)
            .u64(self.epoch)
            .bytes(&self.target.0)
            .bytes(&self.measurement)
            .bytes(&self.report_data)
            .bytes(&self.framework_evidence)
            .build()
    }
    fn from_value(v: Value) -> Result<Self> {
        let mut f = Fields::open(v, MsgType::Ready, 7)?;
        Ok(Ready {
            request_id: f.array()?,
            enclave_id: f.array()?,
            epoch: f.u64()?,
            target: PublicKey(f.array()?),
            measurement: f.array()?,
            report_data: f.array()?,
            framework_evidence: f.bytes(MAX_FRAMEWORK_EVIDENCE)?,
        })
    }
}

/// A decision of the source SM about one migration, signed by its SM key:
/// RELEASE (committed: the source copy is destroyed; the target may run at
/// `epoch`) or ABORT (the source runs on at `epoch`; the target must drop its copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub kind: DecisionKind,
    pub request_id: RequestId,
    pub enclave_id: EnclaveId,
    pub epoch: u64,
    pub source: HostId,
    pub target: HostId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    Release,
    Abort,
}

impl DecisionKind {
    fn ty(self) -> MsgType {
        match self {
            DecisionKind::Release => MsgType::Release,
            DecisionKind::Abort => MsgType::Abort,
        }
    }
}

impl SignedBody for Decision {
    fn to_value(&self) -> Value {
        Builder::new(self.kind.ty())
            .bytes(&self.request_id)
            .bytes(&self.enclave_id)
            .u64(self.epoch)
            .bytes(&self.source.0)
            .bytes(&self.target.0)
            .build()
    }
    fn from_value(v: Value) -> Result<Self> {
        let kind = match cbor::peek_type(&v) {
            Some(t) if t == MsgType::Release as u64 => DecisionKind::Release,
            Some(t) if t == MsgType::Abort as u64 => DecisionKind::Abort,
            _ => return Err(Error::WrongMessageType),
        };
        let mut f = Fields::open(v, kind.ty(), 5)?;
        Ok(Decision {
            kind,
            request_id: f.array()?,
            enclave_id: f.array()?,
            epoch: f.u64()?,
            source: PublicKey(f.array()?),
            target: PublicKey(f.array()?),
        })
    }
}

/// SMT → SDS (signed by the target SM key): ACTIVE (the enclave runs here at
/// `epoch`) or DROPPED (the pending copy was destroyed after ABORT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAck {
    pub kind: AckKind,
    pub request_id: RequestId,
    pub enclave_id: EnclaveId,
    pub epoch: u64,
    pub host: HostId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKind {
    Active,
    Dropped,
}

impl AckKind {
    fn ty(self) -> MsgType {
        match self {
            AckKind::Active => MsgType::ActiveAck,
            AckKind::Dropped => MsgType::DroppedAck,
        }
    }
}

impl SignedBody for TargetAck {
    fn to_value(&self) -> Value {
        Builder::new(self.kind.ty())
            .bytes(&self.request_id)
            .bytes(&self.enclave_id)
            .u64(self.epoch)
            .bytes(&self.host.0)
            .build()
    }
    fn from_value(v: Value) -> Result<Self> {
        let kind = match cbor::peek_type(&v) {
            Some(t) if t == MsgType::ActiveAck as u64 => AckKind::Active,
            Some(t) if t == MsgType::DroppedAck as u64 => AckKind::Dropped,
            _ => return Err(Error::WrongMessageType),
        };
        let mut f = Fields::open(v, kind.ty(), 4)?;
        Ok(TargetAck {
            kind,
            request_id: f.array()?,
            enclave_id: f.array()?,
            epoch: f.u64()?,
            host: PublicKey(f.array()?),
        })
    }
}

// ---------------------------------------------------------------------------
// Messages: what crosses between parties. Signed objects ride inside as bytes.

/// The SDS's migration order to the source: the signed request and the two
/// hosts' signed endorsements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub request: Vec<u8>,
    pub source_endorsement: Vec<u8>,
    pub target_endorsement: Vec<u8>,
}

/// SMS → SMT, first message in the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub order: Order,
    pub policy: Vec<u8>,
    pub source_certificate: Vec<u8>,
    /// Lengths of Code, State, and the plaintext of Sealed.
    pub lengths: [u64; 3],
}

/// Every message librewire sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// SDS → SMS.
    Order(Order),
    /// SDS → any SM: re-send your latest signed proof about this enclave.
    Query {
        enclave_id: EnclaveId,
    },
    /// SMS → SMT.
    Offer(Offer),
    /// SMT → SMS: the offer is accepted; here is my certificate.
    Accept {
        request_id: RequestId,
        target_certificate: Vec<u8>,
    },
    /// Either side: refused, with the error code.
    Refuse {
        request_id: RequestId,
        code: u32,
    },
    /// SMS → SMT: image bytes (enclave state: wiped when dropped).
    Chunk {
        section: Section,
        offset: u64,
        data: SecretBytes,
    },
    /// SMS → SMT: end of stream (every section was sent in full).
    End,
    /// Signed objects.
    Ready(Vec<u8>),
    Release(Vec<u8>),
    Abort(Vec<u8>),
    Active(Vec<u8>),
    Dropped(Vec<u8>),
}

/// The encoding of `Message::Chunk { section, offset, data }` up to its
/// data, for `len` bytes of data: array head, type, version, section,
/// offset and the byte string's head, in the deterministic form
/// [`Message::encode`] gives (that encoding is this prefix followed by the
/// data; tested). Returns the buffer and how many of its bytes are used.
pub fn chunk_prefix(section: Section, offset: u64, len: usize) -> ([u8; 22], usize) {
    let mut p = [0u8; 22];
    p[0] = 0x85; // array(5)
    p[1] = MsgType::Chunk as u8; // < 24: one byte
    p[2] = cbor::VERSION as u8; // < 24: one byte
    p[3] = section as u8; // 0..=2
    let mut at = 4;
    at += cbor::head(0, offset, &mut p[at..]);
    at += cbor::head(2, len as u64, &mut p[at..]);
    (p, at)
}

impl Message {
    pub fn encode(&self) -> Result<Vec<u8>> {
        let b = match self {
            Message::Order(o) => Builder::new(MsgType::Order)
                .bytes(&o.request)
                .bytes(&o.source_endorsement)
                .bytes(&o.target_endorsement),
            Message::Query { enclave_id } => Builder::new(MsgType::Query).bytes(enclave_id),
            Message::Offer(o) => Builder::new(MsgType::Offer)
                .bytes(&o.order.request)
                .bytes(&o.order.source_endorsement)
                .bytes(&o.order.target_endorsement)
                .bytes(&o.policy)
                .bytes(&o.source_certificate)
                .u64(o.lengths[0])
                .u64(o.lengths[1])
                .u64(o.lengths[2]),
            Message::Accept {
                request_id,
                target_certificate,
            } => Builder::new(MsgType::Accept)
                .bytes(request_id)
                .bytes(target_certificate),
            Message::Refuse { request_id, code } => Builder::new(MsgType::Refuse)
                .bytes(request_id)
                .u64(*code as u64),
            Message::Chunk {
                section,
                offset,
                data,
            } => Builder::new(MsgType::Chunk)
                .u64(*section as u64)
                .u64(*offset)
                .bytes(data),
            Message::End => Builder::new(MsgType::End),
            Message::Ready(b) => Builder::new(MsgType::Ready).bytes(b),
            Message::Release(b) => Builder::new(MsgType::Release).bytes(b),
            Message::Abort(b) => Builder::new(MsgType::Abort).bytes(b),
            Message::Active(b) => Builder::new(MsgType::ActiveAck).bytes(b),
            Message::Dropped(b) => Builder::new(MsgType::DroppedAck).bytes(b),
        };
        b.encode()
    }

    pub fn decode(bytes: &[u8]) -> Result<Message> {
        if let Some(chunk) = Self::decode_chunk(bytes) {
            return Ok(chunk);
        }
        Self::decode_value(bytes)
    }

    /// The bulk of a migration is CHUNKs: a CHUNK in exactly the
    /// deterministic form `chunk_prefix` gives is read without building a
    /// CBOR value (and without re-encoding it to check its form), copying
    /// its data once. Anything else, including every malformed CHUNK, is
    /// `None` and goes through the general strict decoder, which gives the
    /// error; what this accepts, that decoder accepts as the same message
    /// (tested, also on mutated input).
    fn decode_chunk(bytes: &[u8]) -> Option<Message> {
        let [0x85, ty, version, section, rest @ ..] = bytes else {
            return None;
        };
        if *ty != MsgType::Chunk as u8 || *version as u64 != cbor::VERSION {
            return None;
        }
        let section = *Section::ALL.get(*section as usize)?;
        let (offset, rest) = cbor::read_head(0, rest)?;
        let (len, data) = cbor::read_head(2, rest)?;
        if len != data.len() as u64 || data.len() > CHUNK_DATA {
            return None;
        }
        Some(Message::Chunk {
            section,
            offset,
            data: SecretBytes::new(data.to_vec()),
        })
    }

    fn decode_value(bytes: &[u8]) -> Result<Message> {
        let v = cbor::decode(bytes, MAX_MESSAGE)?;
        let ty = cbor::peek_type(&v).ok_or(Error::Decode)?;
        let signed = |v: Value, ty: MsgType| -> Result<Vec<u8>> {
            Fields::open(v, ty, 1)?.bytes(MAX_SIGNED)
        };
        const ORDER: u64 = MsgType::Order as u64;
        const QUERY: u64 = MsgType::Query as u64;
        const OFFER: u64 = MsgType::Offer as u64;
        const ACCEPT: u64 = MsgType::Accept as u64;
        const REFUSE: u64 = MsgType::Refuse as u64;
        const CHUNK: u64 = MsgType::Chunk as u64;
        const END: u64 = MsgType::End as u64;
        const READY: u64 = MsgType::Ready as u64;
        const RELEASE: u64 = MsgType::Release as u64;
        const ABORT: u64 = MsgType::Abort as u64;
        const ACTIVE: u64 = MsgType::ActiveAck as u64;
        const DROPPED: u64 = MsgType::DroppedAck as u64;
        Ok(match ty {
            ORDER => {
                let mut f = Fields::open(v, MsgType::Order, 3)?;
                Message::Order(Order {
                    request: f.bytes(MAX_SIGNED)?,
                    source_endorsement: f.bytes(MAX_SIGNED)?,
                    target_endorsement: f.bytes(MAX_SIGNED)?,
                })
            }
            QUERY => Message::Query {
                enclave_id: Fields::open(v, MsgType::Query, 1)?.array()?,
            },
            OFFER => {
                let mut f = Fields::open(v, MsgType::Offer, 8)?;
                let order = Order {
                    request: f.bytes(MAX_SIGNED)?,
                    source_endorsement: f.bytes(MAX_SIGNED)?,
                    target_endorsement: f.bytes(MAX_SIGNED)?,
                };
                let policy = f.bytes(MAX_SIGNED)?;
                let source_certificate = f.bytes(MAX_SIGNED)?;
                let mut lengths = [0u64; 3];
                for l in lengths.iter_mut() {
                    *l = f.u64()?;
                    if *l > MAX_SECTION_LEN {
                        return Err(Error::TooLarge);
                    }
                }
                Message::Offer(Offer {
                    order,
                    policy,
                    source_certificate,
                    lengths,
                })
            }
            ACCEPT => {
                let mut f = Fields::open(v, MsgType::Accept, 2)?;
                Message::Accept {
                    request_id: f.array()?,
                    target_certificate: f.bytes(MAX_SIGNED)?,
                }
            }
            REFUSE => {
                let mut f = Fields::open(v, MsgType::Refuse, 2)?;
                let request_id = f.array()?;
                let code = u32::try_from(f.u64()?).map_err(|_| Error::Decode)?;
                Message::Refuse { request_id, code }
            }
            CHUNK => {
                let mut f = Fields::open(v, MsgType::Chunk, 3)?;
                let section = match f.u64()? {
                    0 => Section::Code,
                    1 => Section::State,
                    2 => Section::Sealed,
                    _ => return Err(Error::Decode),
                };
                let offset = f.u64()?;
                let data = SecretBytes::new(f.bytes(CHUNK_DATA)?);
                Message::Chunk {
                    section,
                    offset,
                    data,
                }
            }
            END => {
                Fields::open(v, MsgType::End, 0)?;
                Message::End
            }
            READY => Message::Ready(signed(v, MsgType::Ready)?),
            RELEASE => Message::Release(signed(v, MsgType::Release)?),
            ABORT => Message::Abort(signed(v, MsgType::Abort)?),
            ACTIVE => Message::Active(signed(v, MsgType::ActiveAck)?),
            DROPPED => Message::Dropped(signed(v, MsgType::DroppedAck)?),
            _ => return Err(Error::WrongMessageType),
        })
    }
}

#[cfg(test)]
mod tests;
