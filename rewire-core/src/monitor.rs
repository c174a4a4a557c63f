//! The security monitor's side of the protocol: one state machine per host
//! that is source (SMS) for enclaves moving out and target (SMT) for enclaves
//! moving in. Sans-IO: it takes bytes and events, and returns bytes through
//! [`Monitor::poll_output`]; the platform and the enclave framework are reached
//! only through the [`Platform`] and [`EnclaveHost`] traits.
//!
//! Rule of every transition: validate fully, then journal (write + count),
//! then act (pause/resume/destroy, messages). A rejection changes nothing.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec;
use alloc::vec::Vec;

use zeroize::Zeroizing;

use crate::channel::Channel;
use crate::crypto::{hkdf, sha256, Digest, Hasher, PublicKey, Secret, SigningKey};
use crate::error::{Error, Result};
use crate::journal::{self, RecState, Record, Settled, MAX_RECORDS};
use crate::platform::{EnclaveHost, Platform, Section};
use crate::seal::{self, Sealer, Unsealer};
use crate::wire::{
    verify_as, AckKind, Decision, DecisionKind, EnclaveId, EnclavePolicy, HostEndorsement, HostId,
    Measurement, Message, MigrationRequest, Offer, Order, Ready, RequestId, Signed, SignedBody,
    SmCertificate, TargetAck, CHUNK_DATA, MAX_FRAMEWORK_EVIDENCE,
};

/// A monitor's keys and evidence, derived from the device secret as a boot ROM
/// would (Keystone: the bootloader derives the SM key from the device secret
/// and the SM hash, signs the SM report with the device key, then forgets the
/// device key).
pub struct Identity {
    device_secret: Secret,
    sm_measurement: Measurement,
    device_public: PublicKey,
    sm_key: SigningKey,
    certificate: Vec<u8>,
}

impl core::fmt::Debug for Identity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Identity")
            .field("host", &self.device_public)
            .field("sm_key", &self.sm_key.public())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Derive every key from the whole device secret and the SM measurement.
    pub fn derive(device_secret: Secret, sm_measurement: Measurement) -> Result<Identity> {
        let device_key =
            SigningKey::from_seed(hkdf(device_secret.expose(), b"rewire/device-key/v1", &[])?)?;
        let sm_key = SigningKey::from_seed(hkdf(
            device_secret.expose(),
            b"rewire/sm-key/v1",
            &[&sm_measurement],
        )?)?;
        let certificate = SmCertificate {
            device: device_key.public(),
            sm_measurement,
            sm_key: sm_key.public(),
        }
        .sign(&device_key)?;
        Ok(Identity {
            device_public: device_key.public(),
            device_secret,
            sm_measurement,
            sm_key,
            certificate,
        })
    }
    /// The host id: the device public key.
    pub fn host_id(&self) -> HostId {
        self.device_public
    }
    pub fn sm_public(&self) -> PublicKey {
        self.sm_key.public()
    }
    pub fn sm_measurement(&self) -> Measurement {
        self.sm_measurement
    }
    /// The device-signed SM certificate (evidence, first link).
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }
    /// An enclave's sealing key on this device (see [`crate::seal`]).
    pub fn sealing_key(&self, measurement: &Measurement, key_id: &[u8]) -> Result<Secret> {
        seal::sealing_key(&self.device_secret, measurement, key_id)
    }
}

/// Journal space kept free for recovery's own commits.
const JOURNAL_HEADROOM: usize = 64 * 1024;

/// Key id under which the monitor seals an enclave's persistent data.
pub const SEALED_DATA_KEY_ID: &[u8] = b"rewire/sealed-data";

/// Settings of a monitor.
#[derive(Debug, Clone)]
pub struct Config {
    /// The SDS's public key (provisioned with the monitor).
    pub sds_key: PublicKey,
    /// Abort an uncommitted outgoing migration after this long (monotonic ms).
    pub timeout_ms: u64,
    /// Cap on concurrent incoming channels.
    pub max_sessions: usize,
}

impl Config {
    pub fn new(sds_key: PublicKey) -> Config {
        Config {
            sds_key,
            timeout_ms: 30_000,
            max_sessions: 8,
        }
    }
}

/// Where an output goes. The relay (untrusted) routes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    Sds,
    /// The peer monitor `host`, on the channel for migration `conn`.
    Peer {
        host: HostId,
        conn: RequestId,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub dest: Dest,
    pub bytes: Vec<u8>,
}

/// What the monitor says of an enclave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnclaveState {
    Running,
    Frozen,
    Migrated,
    Receiving,
    Pending,
    Gone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnclaveStatus {
    pub state: EnclaveState,
    pub epoch: u64,
}

/// A migration step, for progress reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// SMS: the order passed every check (signature, source, epoch, deadline, ATL).
    Validated,
    /// SMS: FROZEN journaled, enclave paused.
    Frozen,
    /// SMS: TLS handshake complete.
    ChannelUp,
    /// SMS: OFFER sent.
    Offered,
    /// SMT: OFFER verified, RECEIVING journaled, ACCEPT sent.
    OfferAccepted,
    /// SMS: the target's evidence verified against the TLS key; streaming starts.
    TargetVerified,
    /// SMS: the whole image sent, END with digests.
    StreamDone,
    /// SMT: digests and measurement verified, state re-sealed, PENDING journaled, READY sent.
    PendingReady,
    /// SMS: READY verified, MIGRATED journaled, source copy destroyed, RELEASE sent.
    Committed,
    /// SMT: RELEASE verified, ACTIVE journaled, enclave resumed.
    Activated,
    /// SMS: the outgoing migration was aborted for this reason; ABORTED
    /// journaled, the enclave runs here again.
    Aborted(Error),
    /// SMT: the incoming copy was dropped (ABORT, failure or timeout).
    Dropped,
}

#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// SMS: flip a byte of this chunk (by index) after digesting it.
    pub tamper_chunk: Option<usize>,
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
}

enum OutPhase {
    Connecting,
    AwaitAccept,
    Streaming,
    AwaitReady,
    Done,
}

struct SendStream {
    section: usize,
    offset: u64,
    /// Raw lengths as exported (Sealed: the sealed blob's length).
    raw: [u64; 3],
    /// Plaintext lengths as announced.
    lengths: [u64; 3],
    hashers: [Hasher; 3],
    unsealer: Option<Unsealer>,
    sealed_chunks: u64,
    sealed_index: u64,
    sealed_raw_offset: u64,
    plain_buf: Zeroizing<Vec<u8>>,
    plain_pos: usize,
    digests: Option<[Digest; 3]>,
    #[allow(dead_code)]
    chunks_sent: usize,
}

impl SendStream {
    /// Read and open the next chunk of the sealed blob into `plain_buf`.
    fn open_next_sealed<H: EnclaveHost>(&mut self, host: &mut H, eid: &EnclaveId) -> Result<()> {
        let u = self.unsealer.as_mut().ok_or(Error::InvalidState)?;
        if self.sealed_index >= self.sealed_chunks {
            return Err(Error::Unseal);
        }
        let want =
            (u.sealed_chunk_len() as u64).min(self.raw[2].saturating_sub(self.sealed_raw_offset));
        let mut buf = vec![0u8; want as usize];
        let n = host.export(eid, Section::Sealed, self.sealed_raw_offset, &mut buf)?;
        if n != buf.len() {
            return Err(Error::Unseal);
        }
        let last = self.sealed_index + 1 == self.sealed_chunks;
        u.open_chunk(&mut buf, last)?;
        self.sealed_index += 1;
        self.sealed_raw_offset += want;
        self.plain_buf = Zeroizing::new(buf);
        self.plain_pos = 0;
        Ok(())
    }
}

struct OutSession {
    req: MigrationRequest,
    order: Order,
    target_end: HostEndorsement,
    channel: Channel,
    phase: OutPhase,
    target_sm: Option<PublicKey>,
    last_activity_ms: u64,
    stream: Option<SendStream>,
}

struct RecvStream {
    req: MigrationRequest,
    source_sm: PublicKey,
    lengths: [u64; 3],
    section: usize,
    offset: u64,
    hashers: [Hasher; 3],
    resealer: Option<Sealer>,
    seal_buf: Zeroizing<Vec<u8>>,
    sealed_out: u64,
}

enum InPhase {
    AwaitOffer,
    Receiving(alloc::boxed::Box<RecvStream>),
    AwaitDecision,
    Done,
}

struct InSession {
    peer: HostId,
    channel: Channel,
    phase: InPhase,
    last_activity_ms: u64,
}

impl<P: Platform, H: EnclaveHost> core::fmt::Debug for Monitor<P, H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Monitor")
            .field("host", &self.id.host_id())
            .field("records", &self.records.len())
            .field("counter", &self.counter)
            .field("outgoing", &self.outgoing.len())
            .field("incoming", &self.incoming.len())
            .finish_non_exhaustive()
    }
}

/// Why a monitor did not start, with its platform and framework handed back.
#[derive(Debug)]
pub struct StartFailure<P, H> {
    pub error: Error,
    pub platform: P,
    pub host: H,
}

/// A security monitor running librewire.
pub struct Monitor<P: Platform, H: EnclaveHost> {
    platform: P,
    host: H,
    id: Identity,
    cfg: Config,
    journal_key: Secret,
    records: Vec<Record>,
    /// The records as last committed: what the monitor falls back to when a
    /// commit fails, so that its view never runs ahead of its journal.
    durable: Vec<Record>,
    counter: u64,
    poisoned: bool,
    out: VecDeque<Output>,
    outgoing: BTreeMap<RequestId, OutSession>,
    incoming: BTreeMap<RequestId, InSession>,
    events: VecDeque<(RequestId, Event)>,
    /// Recently finished channels: late bytes on them are dropped quietly.
    finished: VecDeque<RequestId>,
    /// Enclaves whose framework side effect (pause, resume, destroy) failed
    /// after its journal commit; `tick` retries them.
    owed: Vec<EnclaveId>,
    #[cfg(feature = "fault-injection")]
    pub faults: Faults,
}

impl<P: Platform, H: EnclaveHost> Monitor<P, H> {
    /// Start the monitor: recover the journal (refusing a rolled-back copy),
    /// then bring every enclave to a defined state: an uncommitted outgoing
    /// migration is aborted and the enclave resumed; a committed one has its
    /// copy destroyed and its RELEASE re-sent; a half-received import is
    /// dropped; a PENDING enclave stays pending.
    pub fn start(platform: P, host: H, id: Identity, cfg: Config) -> Result<Self> {
        Self::start_or_return(platform, host, id, cfg).map_err(|f| f.error)
    }

    /// [`Monitor::start`], but a failure hands the platform and framework
    /// back (with whatever the failed start wrote), e.g. to retry.
    pub fn start_or_return(
        mut platform: P,
        host: H,
        id: Identity,
        cfg: Config,
    ) -> core::result::Result<Self, StartFailure<P, H>> {
        let journal_key = match journal::journal_key(&id.device_secret, &id.sm_measurement) {
            Ok(k) => k,
            Err(error) => {
                return Err(StartFailure {
                    error,
                    platform,
                    host,
                })
            }
        };
        let (records, counter) = match journal::recover(&mut platform, &journal_key) {
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
                        let message = s.message.clone();
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
    fn apply(&mut self, eid: &EnclaveId) {
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

    /// Give back the platform and framework (to simulate a crash, or to shut down).
    pub fn into_parts(self) -> (P, H) {
        (self.platform, self.host)
    }

    pub fn identity(&self) -> &Identity {
        &self.id
    }
    pub fn host_id(&self) -> HostId {
        self.id.host_id()
    }
    pub fn platform(&mut self) -> &mut P {
        &mut self.platform
    }
    pub fn enclave_host(&mut self) -> &mut H {
        &mut self.host
    }
    pub fn enclave_host_ref(&self) -> &H {
        &self.host
    }

    /// The status of an enclave on this host.
    pub fn status(&self, eid: &EnclaveId) -> Option<EnclaveStatus> {
        let r = &self.records[self.find(eid)?];
        let state = match r.state {
            RecState::Running => EnclaveState::Running,
            RecState::Frozen { .. } => EnclaveState::Frozen,
            RecState::Migrated => EnclaveState::Migrated,
            RecState::Receiving { .. } => EnclaveState::Receiving,
            RecState::Pending { .. } => EnclaveState::Pending,
            RecState::Gone => EnclaveState::Gone,
        };
        Some(EnclaveStatus {
            state,
            epoch: r.epoch,
        })
    }

    /// The next message to send, if any. Image chunks are produced here, one
    /// per call, so memory stays bounded: call it when the link can take more.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.out.is_empty() && !self.poisoned {
            if let Err(e) = self.produce_chunk() {
                event!(debug, error = e.code(), "stream failed");
            }
        }
        self.out.pop_front()
    }

    /// Put an output back at the head of the queue (a caller whose buffer
    /// was too small takes it again later).
    pub fn unpoll_output(&mut self, o: Output) {
        self.out.push_front(o);
    }

    /// The next progress event, if any.
    pub fn poll_event(&mut self) -> Option<(RequestId, Event)> {
        self.events.pop_front()
    }

    /// Cap the incoming channels open at once.
    pub fn set_max_sessions(&mut self, n: usize) {
        self.cfg.max_sessions = n.max(1);
    }

    /// Whether anything is in flight here (a frozen source, an import under
    /// way, a channel still open, or a framework operation to retry on `tick`).
    pub fn in_flight(&self) -> bool {
        !self.owed.is_empty()
            || self.records.iter().any(|r| {
                matches!(
                    r.state,
                    RecState::Frozen { .. } | RecState::Receiving { .. }
                )
            })
            || self
                .outgoing
                .values()
                .any(|s| !matches!(s.phase, OutPhase::Done))
    }

    /// Whether an outgoing migration still has image bytes to send.
    pub fn is_streaming(&self) -> bool {
        self.outgoing
            .values()
            .any(|s| matches!(s.phase, OutPhase::Streaming))
    }

    /// Install an enclave that the framework has loaded, under its SDS-signed
    /// policy, at epoch 0. Its measurement must match the policy.
    pub fn install(&mut self, policy: &[u8]) -> Result<()> {
        self.check_alive()?;
        let pol: EnclavePolicy = verify_as(policy, &self.cfg.sds_key)?;
        if self.find(&pol.enclave_id).is_some() {
            return Err(Error::Busy);
        }
        if self.records.len() >= MAX_RECORDS {
            return Err(Error::Capacity);
        }
        if self.host.measure(&pol.enclave_id)? != pol.measurement {
            return Err(Error::MeasurementMismatch);
        }
        self.check_journal_room()?;
        self.records.push(Record {
            id: pol.enclave_id,
            measurement: pol.measurement,
            policy: policy.to_vec(),
            epoch: 0,
            state: RecState::Running,
            last: None,
        });
        self.commit()?;
        self.apply(&pol.enclave_id);
        Ok(())
    }

    /// Whether the enclave may run here now. A framework must ask this before
    /// scheduling an enclave (and the monitor's own resume calls follow it).
    pub fn may_run(&self, eid: &EnclaveId) -> bool {
        matches!(self.status(eid), Some(s) if s.state == EnclaveState::Running)
    }

    /// An enclave's sealing key on this device, for the monitor's seal API.
    pub fn sealing_key(&self, eid: &EnclaveId) -> Result<Secret> {
        let i = self.find(eid).ok_or(Error::UnknownEnclave)?;
        self.id
            .sealing_key(&self.records[i].measurement, SEALED_DATA_KEY_ID)
    }

    /// Seal an enclave's data into a blob the framework stores as its Sealed section.
    pub fn seal_data(&mut self, eid: &EnclaveId, data: &[u8]) -> Result<Vec<u8>> {
        let key = self.sealing_key(eid)?;
        let mut salt = [0u8; 32];
        self.platform.random(&mut salt)?;
        seal::seal(&key, salt, data)
    }

    /// Open an enclave's sealed blob.
    pub fn unseal_data(&self, eid: &EnclaveId, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        seal::unseal(&self.sealing_key(eid)?, blob)
    }

    // -----------------------------------------------------------------------
    // Inputs

    /// A message from the SDS (or any relay of SDS-side messages): an order,
    /// or a forwarded RELEASE / ABORT.
    pub fn handle_sds(&mut self, bytes: &[u8]) -> Result<()> {
        self.check_alive()?;
        match Message::decode(bytes)? {
            Message::Order(order) => self.on_order(order),
            Message::Query { enclave_id } => {
                let i = self.find(&enclave_id).ok_or(Error::UnknownEnclave)?;
                if let Some(last) = &self.records[i].last {
                    let m = last.message.clone();
                    self.push(Dest::Sds, m);
                }
                Ok(())
            }
            Message::Release(b) | Message::Abort(b) => self.on_decision(&b, None),
            _ => Err(Error::WrongMessageType),
        }
    }

    /// TLS bytes from the peer on channel `conn`. `from` is the relay's claim
    /// of who sent them; it is not trusted (the channel authenticates).
    pub fn handle_peer(&mut self, from: HostId, conn: RequestId, bytes: &[u8]) -> Result<()> {
        self.check_alive()?;
        if self.outgoing.contains_key(&conn) {
            return self.outgoing_bytes(conn, bytes);
        }
        if self.finished.contains(&conn) {
            return Ok(());
        }
        if !self.incoming.contains_key(&conn) {
            if self.incoming.len() >= self.cfg.max_sessions {
                self.reap_sessions();
                if self.incoming.len() >= self.cfg.max_sessions {
                    return Err(Error::Capacity);
                }
            }
            let now = self.platform.wall_time().unwrap_or(0);
            let channel = Channel::server(&self.id.sm_key, now)?;
            self.incoming.insert(
                conn,
                InSession {
                    peer: from,
                    channel,
                    phase: InPhase::AwaitOffer,
                    last_activity_ms: self.platform.monotonic_ms(),
                },
            );
        }
        self.incoming_bytes(conn, bytes)
    }

    /// The relay reports that channel `conn` is gone.
    pub fn handle_peer_closed(&mut self, conn: RequestId) -> Result<()> {
        self.check_alive()?;
        if self.outgoing.contains_key(&conn) {
            return self.outgoing_failed(conn, Error::ChannelClosed);
        }
        if self.incoming.contains_key(&conn) {
            self.incoming_failed(conn, Error::ChannelClosed, false);
        }
        Ok(())
    }

    /// Time passed: abort uncommitted outgoing migrations past the timeout.
    pub fn tick(&mut self) -> Result<()> {
        self.check_alive()?;
        let mut first_err = None;
        for eid in self.owed.clone() {
            self.apply(&eid);
        }
        let now = self.platform.monotonic_ms();
        let late: Vec<RequestId> = self
            .outgoing
            .iter()
            .filter(|(_, s)| {
                !matches!(s.phase, OutPhase::Done)
                    && now.saturating_sub(s.last_activity_ms) > self.cfg.timeout_ms
            })
            .map(|(k, _)| *k)
            .collect();
        for conn in late {
            if let Err(e) = self.outgoing_failed(conn, Error::Timeout) {
                first_err.get_or_insert(e);
            }
        }
        // An import that stalls is dropped: always safe, since the source
        // cannot commit before it has READY, which is sent only once PENDING.
        #[cfg(feature = "fault-injection")]
        let pending_times_out = self.faults.drop_pending_on_timeout;
        #[cfg(not(feature = "fault-injection"))]
        let pending_times_out = false;
        let stalled: Vec<RequestId> = self
            .incoming
            .iter()
            .filter(|(_, s)| {
                (matches!(s.phase, InPhase::AwaitOffer | InPhase::Receiving(_))
                    || (pending_times_out && matches!(s.phase, InPhase::AwaitDecision)))
                    && now.saturating_sub(s.last_activity_ms) > self.cfg.timeout_ms
            })
            .map(|(k, _)| *k)
            .collect();
        for conn in stalled {
            self.incoming_failed(conn, Error::Timeout, true);
        }
        self.reap_sessions();
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    // -----------------------------------------------------------------------
    // Helpers

    fn check_alive(&self) -> Result<()> {
        if self.poisoned {
            Err(Error::Storage)
        } else {
            Ok(())
        }
    }

    fn find(&self, eid: &EnclaveId) -> Option<usize> {
        self.records.iter().position(|r| &r.id == eid)
    }

    fn push(&mut self, dest: Dest, bytes: Vec<u8>) {
        self.out.push_back(Output { dest, bytes });
    }

    fn event(&mut self, rid: RequestId, e: Event) {
        event!(info, event = ?e, "migration step");
        if self.events.len() < 1024 {
            self.events.push_back((rid, e));
        }
    }

    /// Persist the records: write-ahead, then count. On failure the monitor
    /// stops taking input; restarting it recovers from the journal.
    fn commit(&mut self) -> Result<()> {
        match journal::commit(
            &mut self.platform,
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
                // Capacity is found before anything is written: nothing to recover.
                self.poisoned = e != Error::Capacity;
                self.records.clone_from(&self.durable);
                Err(e)
            }
        }
    }

    /// Refuse new records when the journal could not also take the abort or
    /// drop of everything in flight (a full journal must never stop recovery).
    fn check_journal_room(&self) -> Result<()> {
        let len = journal::encode(self.counter, false, &self.records)?.len();
        if len + JOURNAL_HEADROOM > journal::MAX_JOURNAL {
            return Err(Error::Capacity);
        }
        Ok(())
    }

    fn wall_time(&mut self) -> Result<u64> {
        self.platform.wall_time().ok_or(Error::NoTrustedTime)
    }

    fn reap_sessions(&mut self) {
        let done: Vec<RequestId> = self
            .incoming
            .iter()
            .filter(|(_, s)| matches!(s.phase, InPhase::Done))
            .map(|(k, _)| *k)
            .chain(
                self.outgoing
                    .iter()
                    .filter(|(_, s)| matches!(s.phase, OutPhase::Done))
                    .map(|(k, _)| *k),
            )
            .collect();
        for k in done {
            self.incoming.remove(&k);
            self.outgoing.remove(&k);
            if self.finished.len() >= 64 {
                self.finished.pop_front();
            }
            self.finished.push_back(k);
        }
    }

    fn send_on(channel: &mut Channel, msg: &Message) -> Result<()> {
        channel.send(msg.encode()?)
    }

    fn flush_out(&mut self, conn: RequestId) -> Result<()> {
        let Some(s) = self.outgoing.get_mut(&conn) else {
            return Ok(());
        };
        let mut bytes = Vec::new();
        let mut msgs = Vec::new();
        let r = s.channel.pump(&mut bytes, &mut msgs);
        let host = s.req.target;
        if !bytes.is_empty() {
            self.push(Dest::Peer { host, conn }, bytes);
        }
        r
    }

    fn flush_in(&mut self, conn: RequestId) {
        let Some(s) = self.incoming.get_mut(&conn) else {
            return;
        };
        let mut bytes = Vec::new();
        let mut msgs = Vec::new();
        let _ = s.channel.pump(&mut bytes, &mut msgs);
        let host = s.peer;
        if !bytes.is_empty() {
            self.push(Dest::Peer { host, conn }, bytes);
        }
    }

    fn sign_decision(
        &self,
        kind: DecisionKind,
        req: &MigrationRequest,
        epoch: u64,
    ) -> Result<Vec<u8>> {
        Decision {
            kind,
            request_id: req.request_id,
            enclave_id: req.enclave_id,
            epoch,
            source: req.source,
            target: req.target,
        }
        .sign(&self.id.sm_key)
    }

    // -----------------------------------------------------------------------
    // SMS: source side

    /// Validate an order completely (G1). Returns the parsed parts.
    fn validate_order(
        &mut self,
        order: &Order,
    ) -> Result<(MigrationRequest, HostEndorsement, usize)> {
        let sds = self.cfg.sds_key;
        let req: MigrationRequest = verify_as(&order.request, &sds)?;
        let (src_end, tgt_end) =
            req.vouched_endorsements(&order.source_endorsement, &order.target_endorsement)?;
        if req.source != self.host_id() || src_end.host != self.host_id() {
            return Err(Error::WrongSource);
        }
        if tgt_end.host != req.target || req.target == req.source {
            return Err(Error::WrongTarget);
        }
        let i = self.find(&req.enclave_id).ok_or(Error::UnknownEnclave)?;
        let rec = &self.records[i];
        if rec.measurement != req.measurement {
            return Err(Error::WrongEnclave);
        }
        if let Some(last) = &rec.last {
            if last.request_id == req.request_id {
                let m = last.message.clone();
                self.push(Dest::Sds, m);
                return Err(Error::Replay);
            }
        }
        match &rec.state {
            RecState::Frozen { request_id, .. } if *request_id == req.request_id => {
                return Err(Error::Duplicate)
            }
            RecState::Frozen { .. } => return Err(Error::Busy),
            RecState::Migrated | RecState::Running if req.epoch != rec.epoch => {
                // The SDS is behind: tell it what settled the newer epoch.
                let proof = rec.last.as_ref().map(|l| l.message.clone());
                let e = if rec.state == RecState::Migrated {
                    Error::Migrated
                } else {
                    Error::StaleEpoch
                };
                if let Some(m) = proof {
                    self.push(Dest::Sds, m);
                }
                return Err(e);
            }
            RecState::Running => {}
            _ => return Err(Error::InvalidState),
        }
        // Both outcomes consume the epoch: refuse before anything changes if none is left.
        next_epoch(rec.epoch)?;
        // Verified at install and kept in the sealed journal; the request must name it.
        let policy: EnclavePolicy = req.vouched_policy(&rec.policy)?;
        let now = self.platform.wall_time();
        if now.is_none() {
            return Err(Error::NoTrustedTime);
        }
        src_end.check_valid(now)?;
        tgt_end.check_valid(now)?;
        if tgt_end.atl < policy.min_atl {
            return Err(Error::AtlTooLow);
        }
        if !src_end.sm_measurements.contains(&self.id.sm_measurement) {
            return Err(Error::SmNotEndorsed);
        }
        Ok((req, tgt_end, i))
    }

    fn on_order(&mut self, order: Order) -> Result<()> {
        let (req, tgt_end, i) = self.validate_order(&order)?;
        let rid = req.request_id;
        if self.wall_time()? > req.deadline {
            // A valid request that can never start now. Settle it for good, so
            // that it can never start later and the SDS has a signed answer:
            // ABORT consumes the epoch exactly as an aborted migration does.
            self.records[i].state = RecState::Frozen {
                request_id: rid,
                target: req.target,
            };
            self.abort_outgoing_record(i, rid, req.target, Error::DeadlinePassed)?;
            return Err(Error::DeadlinePassed);
        }
        self.event(rid, Event::Validated);
        if self.outgoing.contains_key(&rid)
            || self.incoming.contains_key(&rid)
            || self.finished.contains(&rid)
        {
            return Err(Error::Busy);
        }
        let now = self.wall_time()?;
        let channel = Channel::client(&self.id.sm_key, now)?;
        self.records[i].state = RecState::Frozen {
            request_id: rid,
            target: req.target,
        };
        self.commit()?;
        if let Err(e) = self.host.pause(&req.enclave_id) {
            // Nothing may leave an enclave that did not stop: abort at once.
            self.abort_outgoing_record(i, rid, req.target, e)?;
            return Err(e);
        }
        self.event(rid, Event::Frozen);
        let last_activity_ms = self.platform.monotonic_ms();
        self.outgoing.insert(
            rid,
            OutSession {
                req,
                order,
                target_end: tgt_end,
                channel,
                phase: OutPhase::Connecting,
                target_sm: None,
                last_activity_ms,
                stream: None,
            },
        );
        if let Err(e) = self.flush_out(rid) {
            return self.outgoing_failed(rid, e).and(Err(e));
        }
        Ok(())
    }

    fn outgoing_bytes(&mut self, conn: RequestId, bytes: &[u8]) -> Result<()> {
        let r = self.outgoing_bytes_inner(conn, bytes);
        if let Err(e) = r {
            let committed = self
                .outgoing
                .get(&conn)
                .is_some_and(|s| matches!(s.phase, OutPhase::Done));
            if !committed {
                self.outgoing_failed(conn, e)?;
            }
        }
        r
    }

    fn outgoing_bytes_inner(&mut self, conn: RequestId, bytes: &[u8]) -> Result<()> {
        let now = self.platform.monotonic_ms();
        let s = self.outgoing.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        s.last_activity_ms = now;
        let host = s.req.target;
        let (out, msgs, res) = s.channel.exchange(bytes);
        if !out.is_empty() {
            self.push(Dest::Peer { host, conn }, out);
        }
        let mut result = res;
        for m in msgs {
            if result.is_err() {
                break;
            }
            result = self.outgoing_message(conn, &m);
        }
        result?;
        // Handshake finished: send OFFER once.
        let s = self.outgoing.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        if matches!(s.phase, OutPhase::Connecting) && s.channel.is_established() {
            let eid = s.req.enclave_id;
            let lengths_raw = [
                self.host.export_len(&eid, Section::Code)?,
                self.host.export_len(&eid, Section::State)?,
                self.host.export_len(&eid, Section::Sealed)?,
            ];
            let mut stream = self.open_stream(&eid, lengths_raw)?;
            #[cfg(feature = "fault-injection")]
            if let Some(code) = &self.faults.replace_code {
                stream.lengths[0] = code.len() as u64;
                stream.raw[0] = code.len() as u64;
            }
            stream.chunks_sent = 0;
            let policy = self.records[self.find(&eid).ok_or(Error::UnknownEnclave)?]
                .policy
                .clone();
            let s = self.outgoing.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
            let offer = Message::Offer(Offer {
                order: s.order.clone(),
                policy,
                source_certificate: self.id.certificate.clone(),
                lengths: stream.lengths,
            });
            s.stream = Some(stream);
            Self::send_on(&mut s.channel, &offer)?;
            s.phase = OutPhase::AwaitAccept;
            self.event(conn, Event::ChannelUp);
            self.event(conn, Event::Offered);
            self.flush_out(conn)?;
        }
        Ok(())
    }

    fn open_stream(&mut self, eid: &EnclaveId, raw: [u64; 3]) -> Result<SendStream> {
        let mut lengths = raw;
        let mut unsealer = None;
        let mut sealed_chunks = 0;
        let mut sealed_raw_offset = 0;
        if raw[2] > 0 {
            let mut header = [0u8; seal::HEADER_LEN];
            let n = self.host.export(eid, Section::Sealed, 0, &mut header)?;
            if n != header.len() {
                return Err(Error::Unseal);
            }
            let (plain_len, chunks) = seal::chunk_layout(&header, raw[2])?;
            let key = self.sealing_key(eid)?;
            unsealer = Some(Unsealer::new(&key, &header)?);
            lengths[2] = plain_len;
            sealed_chunks = chunks;
            sealed_raw_offset = seal::HEADER_LEN as u64;
        }
        Ok(SendStream {
            section: 0,
            offset: 0,
            raw,
            lengths,
            hashers: Default::default(),
            unsealer,
            sealed_chunks,
            sealed_index: 0,
            sealed_raw_offset,
            plain_buf: Zeroizing::new(Vec::new()),
            plain_pos: 0,
            digests: None,
            chunks_sent: 0,
        })
    }

    fn outgoing_message(&mut self, conn: RequestId, bytes: &[u8]) -> Result<()> {
        let msg = Message::decode(bytes)?;
        let s = self.outgoing.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        match (msg, &s.phase) {
            (
                Message::Accept {
                    request_id,
                    target_certificate,
                },
                OutPhase::AwaitAccept,
            ) => {
                if request_id != s.req.request_id {
                    return Err(Error::WrongRequest);
                }
                // G1/G4: the peer is the named target, running an endorsed SM, and
                // the TLS key is that SM's key.
                let cert = SmCertificate::verify_against(&target_certificate, &s.target_end)?;
                if cert.device != s.req.target {
                    return Err(Error::PeerMismatch);
                }
                if s.channel.peer_key() != Some(cert.sm_key) {
                    return Err(Error::PeerMismatch);
                }
                s.target_sm = Some(cert.sm_key);
                s.phase = OutPhase::Streaming;
                self.event(conn, Event::TargetVerified);
                Ok(())
            }
            (Message::Refuse { request_id, code }, _) => {
                if request_id != s.req.request_id {
                    return Err(Error::WrongRequest);
                }
                Err(Error::from_code(code).unwrap_or(Error::InvalidState))
            }
            (Message::Ready(b), OutPhase::AwaitReady) => self.on_ready(conn, &b),
            (Message::Active(_), _) => Ok(()),
            (Message::Ready(_), OutPhase::Done) => Err(Error::Duplicate),
            _ => Err(Error::InvalidState),
        }
    }

    /// Produce the next chunk of an outgoing stream (bounded: one per call).
    fn produce_chunk(&mut self) -> Result<()> {
        let Some(conn) = self
            .outgoing
            .iter()
            .find(|(_, s)| matches!(s.phase, OutPhase::Streaming))
            .map(|(k, _)| *k)
        else {
            return Ok(());
        };
        let r = self.produce_chunk_for(conn);
        if let Err(e) = r {
            self.outgoing_failed(conn, e)?;
        }
        r
    }

    fn produce_chunk_for(&mut self, conn: RequestId) -> Result<()> {
        let now = self.platform.monotonic_ms();
        if let Some(s) = self.outgoing.get_mut(&conn) {
            s.last_activity_ms = now;
        }
        #[cfg(feature = "fault-injection")]
        let faults = self.faults.clone();
        let s = self.outgoing.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        let eid = s.req.enclave_id;
        let st = s.stream.as_mut().ok_or(Error::InvalidState)?;
        #[cfg(feature = "fault-injection")]
        let truncate = faults.truncate_after.is_some_and(|n| st.chunks_sent >= n);
        #[cfg(not(feature = "fault-injection"))]
        let truncate = false;
        while st.section < 3 && st.offset >= st.lengths[st.section] {
            st.section += 1;
            st.offset = 0;
        }
        let msg = if st.section >= 3 || truncate {
            if !truncate {
                // Open every sealed chunk, also an empty final one: a blob cut
                // at a chunk boundary must fail on its last-chunk flag.
                while st.unsealer.is_some() && st.sealed_index < st.sealed_chunks {
                    st.open_next_sealed(&mut self.host, &eid)?;
                    if !st.plain_buf.is_empty() {
                        return Err(Error::Unseal);
                    }
                }
            }
            let hashers = core::mem::take(&mut st.hashers);
            let [a, b, c] = hashers;
            let digests = [a.finish(), b.finish(), c.finish()];
            st.digests = Some(digests);
            s.phase = OutPhase::AwaitReady;
            self.event(conn, Event::StreamDone);
            Message::End { digests }
        } else {
            let section = Section::ALL[st.section];
            let offset = st.offset;
            let mut data = if section == Section::Sealed {
                if st.plain_pos >= st.plain_buf.len() {
                    st.open_next_sealed(&mut self.host, &eid)?;
                }
                let end = (st.plain_pos + CHUNK_DATA).min(st.plain_buf.len());
                let d = st.plain_buf[st.plain_pos..end].to_vec();
                st.plain_pos = end;
                d
            } else {
                let want = (CHUNK_DATA as u64).min(st.lengths[st.section] - offset) as usize;
                let mut buf = vec![0u8; want];
                #[cfg(feature = "fault-injection")]
                if let (Section::Code, Some(code)) = (section, &faults.replace_code) {
                    buf.copy_from_slice(&code[offset as usize..offset as usize + want]);
                } else {
                    let n = self.host.export(&eid, section, offset, &mut buf)?;
                    if n != want {
                        return Err(Error::Host);
                    }
                }
                #[cfg(not(feature = "fault-injection"))]
                {
                    let n = self.host.export(&eid, section, offset, &mut buf)?;
                    if n != want {
                        return Err(Error::Host);
                    }
                }
                buf
            };
            if data.is_empty() {
                return Err(Error::Unseal);
            }
            st.hashers[st.section].update(&data);
            st.offset += data.len() as u64;
            #[cfg(feature = "fault-injection")]
            if faults.tamper_chunk == Some(st.chunks_sent) {
                data[0] ^= 0x80;
            }
            st.chunks_sent += 1;
            Message::Chunk {
                section,
                offset,
                data: core::mem::take(&mut data),
            }
        };
        let bytes = msg.encode()?;
        let s = self.outgoing.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        s.channel.send(bytes)?;
        self.flush_out(conn)
    }

    fn on_ready(&mut self, conn: RequestId, bytes: &[u8]) -> Result<()> {
        let s = self.outgoing.get(&conn).ok_or(Error::UnknownEnclave)?;
        let target_sm = s.target_sm.ok_or(Error::InvalidState)?;
        let signed = Signed::parse(bytes)?;
        if signed.kid != target_sm {
            return Err(Error::UnknownSigner);
        }
        let ready = Ready::from_value(signed.verify(&target_sm)?)?;
        let req = s.req.clone();
        if ready.request_id != req.request_id || ready.enclave_id != req.enclave_id {
            return Err(Error::WrongRequest);
        }
        let next = next_epoch(req.epoch)?;
        if ready.target != req.target || ready.epoch != next {
            return Err(Error::WrongRequest);
        }
        if ready.measurement != req.measurement {
            return Err(Error::MeasurementMismatch);
        }
        let digests = s
            .stream
            .as_ref()
            .and_then(|st| st.digests)
            .ok_or(Error::InvalidState)?;
        if ready.report_data != report_data(&req.request_id, &digests) {
            return Err(Error::Integrity);
        }
        // Commit point (G2): only from FROZEN for this very request — an
        // aborted migration never commits, whatever arrives late.
        let i = self.find(&req.enclave_id).ok_or(Error::UnknownEnclave)?;
        if !matches!(self.records[i].state, RecState::Frozen { request_id, .. } if request_id == conn)
        {
            return Err(Error::InvalidState);
        }
        // Journal MIGRATED with the RELEASE proof, then destroy.
        let release = self.sign_decision(DecisionKind::Release, &req, next)?;
        let message = Message::Release(release).encode()?;
        self.records[i].state = RecState::Migrated;
        self.records[i].epoch = next;
        self.records[i].last = Some(Settled {
            request_id: req.request_id,
            message: message.clone(),
        });
        if let Some(s) = self.outgoing.get_mut(&conn) {
            s.phase = OutPhase::Done;
        }
        self.commit()?;
        #[cfg(feature = "fault-injection")]
        let keep_copy = self.faults.resume_after_release;
        #[cfg(not(feature = "fault-injection"))]
        let keep_copy = false;
        if !keep_copy {
            self.apply(&req.enclave_id);
        }
        self.event(conn, Event::Committed);
        self.push(Dest::Sds, message.clone());
        if let Some(s) = self.outgoing.get_mut(&conn) {
            s.channel.send(message)?;
        }
        if keep_copy {
            let _ = self.host.resume(&req.enclave_id);
        }
        self.flush_out(conn)
    }

    /// Abort an uncommitted outgoing migration: journal the bumped epoch and
    /// the signed ABORT, resume the enclave, tell the SDS (and the target).
    fn outgoing_failed(&mut self, conn: RequestId, why: Error) -> Result<()> {
        let Some(s) = self.outgoing.get(&conn) else {
            return Ok(());
        };
        if matches!(s.phase, OutPhase::Done) {
            return Ok(());
        }
        let (eid, target) = (s.req.enclave_id, s.req.target);
        event!(info, error = why.code(), "aborting outgoing migration");
        // Done first: whatever happens below, this session never commits.
        if let Some(s) = self.outgoing.get_mut(&conn) {
            s.phase = OutPhase::Done;
        }
        let i = self.find(&eid).ok_or(Error::UnknownEnclave)?;
        let abort = self.abort_outgoing_record(i, conn, target, why)?;
        if let Some(s) = self.outgoing.get_mut(&conn) {
            // ABORT first: the target acts on it (drops its copy) before the
            // REFUSE that tells it why ends the channel.
            let _ = s.channel.send(abort);
            let _ = Self::send_on(
                &mut s.channel,
                &Message::Refuse {
                    request_id: conn,
                    code: why.code(),
                },
            );
            let mut bytes = Vec::new();
            let mut msgs = Vec::new();
            let _ = s.channel.pump(&mut bytes, &mut msgs);
            s.channel.close(&mut bytes);
            if !bytes.is_empty() {
                self.push(Dest::Peer { host: target, conn }, bytes);
            }
        }
        Ok(())
    }

    /// Journal ABORTED for record `i` (frozen for `rid`), resume, emit ABORT. Returns the message.
    fn abort_outgoing_record(
        &mut self,
        i: usize,
        rid: RequestId,
        target: HostId,
        why: Error,
    ) -> Result<Vec<u8>> {
        let rec = &self.records[i];
        let RecState::Frozen { request_id, .. } = rec.state else {
            return Err(Error::InvalidState);
        };
        if request_id != rid {
            return Err(Error::WrongRequest);
        }
        let req = MigrationRequest {
            request_id: rid,
            enclave_id: rec.id,
            measurement: rec.measurement,
            source: self.host_id(),
            target,
            epoch: rec.epoch,
            deadline: 0,
            endorsements: [[0; 32]; 2],
            policy: [0; 32],
        };
        let new_epoch = next_epoch(rec.epoch)?;
        let abort = self.sign_decision(DecisionKind::Abort, &req, new_epoch)?;
        let message = Message::Abort(abort).encode()?;
        let eid = rec.id;
        let rec = &mut self.records[i];
        rec.state = RecState::Running;
        rec.epoch = new_epoch;
        rec.last = Some(Settled {
            request_id: rid,
            message: message.clone(),
        });
        self.commit()?;
        self.apply(&eid);
        self.event(rid, Event::Aborted(why));
        self.push(Dest::Sds, message.clone());
        Ok(message)
    }

    // -----------------------------------------------------------------------
    // SMT: target side

    fn incoming_bytes(&mut self, conn: RequestId, bytes: &[u8]) -> Result<()> {
        if self
            .incoming
            .get(&conn)
            .is_some_and(|s| matches!(s.phase, InPhase::Done))
        {
            return Err(Error::ChannelClosed);
        }
        let now = self.platform.monotonic_ms();
        let s = self.incoming.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        s.last_activity_ms = now;
        let host = s.peer;
        let (out, msgs, res) = s.channel.exchange(bytes);
        if !out.is_empty() {
            self.push(Dest::Peer { host, conn }, out);
        }
        if let Err(e) = res {
            self.incoming_failed(conn, e, false);
            return Err(e);
        }
        for m in msgs {
            if let Err(e) = self.incoming_message(conn, &m) {
                let refuse = !matches!(e, Error::Duplicate);
                self.incoming_failed(conn, e, refuse);
                return Err(e);
            }
        }
        self.flush_in(conn);
        Ok(())
    }

    /// A failure on an incoming channel: drop a half-received import; a
    /// PENDING enclave stays (only RELEASE or ABORT settles it).
    fn incoming_failed(&mut self, conn: RequestId, why: Error, refuse: bool) {
        let Some(s) = self.incoming.get_mut(&conn) else {
            return;
        };
        let phase = core::mem::replace(&mut s.phase, InPhase::Done);
        let mut bytes = Vec::new();
        if refuse && !s.channel.is_closed() {
            let _ = Self::send_on(
                &mut s.channel,
                &Message::Refuse {
                    request_id: conn,
                    code: why.code(),
                },
            );
            let mut msgs = Vec::new();
            let _ = s.channel.pump(&mut bytes, &mut msgs);
        }
        s.channel.close(&mut bytes);
        let host = s.peer;
        if !bytes.is_empty() {
            self.push(Dest::Peer { host, conn }, bytes);
        }
        #[cfg(feature = "fault-injection")]
        if self.faults.drop_pending_on_timeout
            && why == Error::Timeout
            && matches!(phase, InPhase::AwaitDecision)
        {
            let pending = self.records.iter().position(
                |r| matches!(r.state, RecState::Pending { request_id, .. } if request_id == conn),
            );
            if let Some(i) = pending {
                let _ = self.drop_import(i, conn);
            }
        }
        // A half-received import is dropped. A PENDING enclave stays pending:
        // its decision can come via the SDS.
        if let InPhase::Receiving(rs) = phase {
            let eid = rs.req.enclave_id;
            if let Some(i) = self.find(&eid) {
                if matches!(self.records[i].state, RecState::Receiving { request_id, .. } if request_id == conn)
                {
                    let _ = self.drop_import(i, conn);
                }
            }
        }
    }

    fn incoming_message(&mut self, conn: RequestId, bytes: &[u8]) -> Result<()> {
        let msg = Message::decode(bytes)?;
        let s = self.incoming.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        match (msg, &mut s.phase) {
            (Message::Offer(offer), InPhase::AwaitOffer) => self.on_offer(conn, offer),
            (
                Message::Chunk {
                    section,
                    offset,
                    data,
                },
                InPhase::Receiving(rs),
            ) => Self::on_chunk(&mut self.host, rs, section, offset, &data),
            (Message::End { digests }, InPhase::Receiving(_)) => self.on_end(conn, digests),
            (Message::Release(b) | Message::Abort(b), InPhase::AwaitDecision) => {
                self.on_decision(&b, Some(conn))
            }
            (Message::Refuse { .. }, _) => Err(Error::ChannelClosed),
            (Message::Release(b) | Message::Abort(b), _) => self.on_decision(&b, Some(conn)),
            _ => Err(Error::InvalidState),
        }
    }

    fn on_offer(&mut self, conn: RequestId, offer: Offer) -> Result<()> {
        let sds = self.cfg.sds_key;
        let req: MigrationRequest = verify_as(&offer.order.request, &sds)?;
        let (src_end, tgt_end) = req.vouched_endorsements(
            &offer.order.source_endorsement,
            &offer.order.target_endorsement,
        )?;
        let policy: EnclavePolicy = req.vouched_policy(&offer.policy)?;
        if req.request_id != conn {
            return Err(Error::WrongRequest);
        }
        #[cfg(feature = "fault-injection")]
        let any_target = self.faults.accept_any_target;
        #[cfg(not(feature = "fault-injection"))]
        let any_target = false;
        if !any_target && (req.target != self.host_id() || tgt_end.host != self.host_id()) {
            return Err(Error::WrongTarget);
        }
        if src_end.host != req.source {
            return Err(Error::WrongSource);
        }
        // The TLS peer is the named source, running an endorsed SM.
        let cert = SmCertificate::verify_against(&offer.source_certificate, &src_end)?;
        let s = self.incoming.get(&conn).ok_or(Error::UnknownEnclave)?;
        if s.channel.peer_key() != Some(cert.sm_key) {
            return Err(Error::PeerMismatch);
        }
        if policy.enclave_id != req.enclave_id || policy.measurement != req.measurement {
            return Err(Error::WrongEnclave);
        }
        let now = self.platform.wall_time();
        let now_s = now.ok_or(Error::NoTrustedTime)?;
        if now_s > req.deadline {
            return Err(Error::DeadlinePassed);
        }
        src_end.check_valid(now)?;
        tgt_end.check_valid(now)?;
        if !tgt_end.sm_measurements.contains(&self.id.sm_measurement) && !any_target {
            return Err(Error::SmNotEndorsed);
        }
        if tgt_end.atl < policy.min_atl {
            return Err(Error::AtlTooLow);
        }
        next_epoch(req.epoch)?;
        // G2: never accept an epoch older than one this host has seen.
        let idx = self.find(&req.enclave_id);
        if let Some(i) = idx {
            let rec = &self.records[i];
            if rec
                .last
                .as_ref()
                .is_some_and(|l| l.request_id == req.request_id)
            {
                return Err(Error::Replay);
            }
            match rec.state {
                RecState::Migrated | RecState::Gone => {
                    if req.epoch < rec.epoch {
                        return Err(Error::StaleEpoch);
                    }
                }
                _ => return Err(Error::Busy),
            }
        } else if self.records.len() >= MAX_RECORDS {
            return Err(Error::Capacity);
        }
        self.check_journal_room()?;
        // Journal RECEIVING, then accept.
        let rec = Record {
            id: req.enclave_id,
            measurement: req.measurement,
            policy: offer.policy.clone(),
            epoch: req.epoch,
            state: RecState::Receiving {
                request_id: req.request_id,
                source_sm: cert.sm_key,
            },
            last: idx.and_then(|i| self.records[i].last.clone()),
        };
        match idx {
            Some(i) => self.records[i] = rec,
            None => self.records.push(rec),
        }
        self.commit()?;
        // Clear anything a failed earlier import left behind.
        if let Err(e) = self.host.destroy(&req.enclave_id) {
            let i = self.find(&req.enclave_id).ok_or(Error::UnknownEnclave)?;
            self.drop_import(i, req.request_id)?;
            return Err(e);
        }
        let resealer = if offer.lengths[2] > 0 {
            let key = self.id.sealing_key(&req.measurement, SEALED_DATA_KEY_ID)?;
            let mut salt = [0u8; 32];
            self.platform.random(&mut salt)?;
            Some(Sealer::new(&key, salt, seal::DEFAULT_CHUNK_LOG2)?)
        } else {
            None
        };
        let rs = RecvStream {
            req: req.clone(),
            source_sm: cert.sm_key,
            lengths: offer.lengths,
            section: 0,
            offset: 0,
            hashers: Default::default(),
            resealer,
            seal_buf: Zeroizing::new(Vec::new()),
            sealed_out: 0,
        };
        let cert_bytes = self.id.certificate.clone();
        let s = self.incoming.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        s.phase = InPhase::Receiving(alloc::boxed::Box::new(rs));
        Self::send_on(
            &mut s.channel,
            &Message::Accept {
                request_id: conn,
                target_certificate: cert_bytes,
            },
        )?;
        self.event(conn, Event::OfferAccepted);
        Ok(())
    }

    fn on_chunk(
        host: &mut H,
        rs: &mut RecvStream,
        section: Section,
        offset: u64,
        data: &[u8],
    ) -> Result<()> {
        while rs.section < 3 && rs.offset >= rs.lengths[rs.section] {
            rs.section += 1;
            rs.offset = 0;
        }
        if rs.section >= 3 || section as usize != rs.section || offset != rs.offset {
            return Err(Error::Integrity);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(Error::Integrity)?;
        if data.is_empty() || end > rs.lengths[rs.section] {
            return Err(Error::Integrity);
        }
        rs.hashers[rs.section].update(data);
        rs.offset = end;
        let eid = rs.req.enclave_id;
        if section == Section::Sealed {
            // Re-seal under this device's key as the plaintext arrives.
            let sealer = rs.resealer.as_mut().ok_or(Error::Integrity)?;
            if rs.sealed_out == 0 {
                host.import(&eid, Section::Sealed, 0, sealer.header())?;
                rs.sealed_out = seal::HEADER_LEN as u64;
            }
            let mut rest = data;
            while !rest.is_empty() {
                let room = sealer.chunk_size() - rs.seal_buf.len();
                let take = room.min(rest.len());
                rs.seal_buf.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                let finished = rs.offset == rs.lengths[2] && rest.is_empty();
                if rs.seal_buf.len() == sealer.chunk_size() && !finished {
                    let c = sealer.seal_chunk(&rs.seal_buf, false)?;
                    host.import(&eid, Section::Sealed, rs.sealed_out, &c)?;
                    rs.sealed_out += c.len() as u64;
                    zeroize::Zeroize::zeroize(&mut *rs.seal_buf);
                    rs.seal_buf.clear();
                }
            }
            Ok(())
        } else {
            host.import(&eid, section, offset, data)
        }
    }

    fn on_end(&mut self, conn: RequestId, digests: [Digest; 3]) -> Result<()> {
        let s = self.incoming.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        let InPhase::Receiving(rs) = &mut s.phase else {
            return Err(Error::InvalidState);
        };
        while rs.section < 3 && rs.offset >= rs.lengths[rs.section] {
            rs.section += 1;
            rs.offset = 0;
        }
        if rs.section < 3 {
            return Err(Error::Truncated);
        }
        let hashers = core::mem::take(&mut rs.hashers);
        let [a, b, c] = hashers;
        let got = [a.finish(), b.finish(), c.finish()];
        if got != digests {
            return Err(Error::Integrity);
        }
        let req = rs.req.clone();
        let source_sm = rs.source_sm;
        let eid = req.enclave_id;
        if let Some(sealer) = rs.resealer.as_mut() {
            let c = sealer.seal_chunk(&rs.seal_buf, true)?;
            self.host.import(&eid, Section::Sealed, rs.sealed_out, &c)?;
            zeroize::Zeroize::zeroize(&mut *rs.seal_buf);
        }
        // G4: the code as loaded measures to what the SDS named.
        if self.host.measure(&eid)? != req.measurement {
            return Err(Error::MeasurementMismatch);
        }
        let rd = report_data(&req.request_id, &digests);
        let mut evidence = self.host.attest(&eid, &rd)?;
        if evidence.len() > MAX_FRAMEWORK_EVIDENCE {
            return Err(Error::Capacity);
        }
        #[cfg(feature = "fault-injection")]
        let ready_rid = if self.faults.ready_wrong_request {
            [0xee; 16]
        } else {
            req.request_id
        };
        #[cfg(not(feature = "fault-injection"))]
        let ready_rid = req.request_id;
        let ready = Ready {
            request_id: ready_rid,
            enclave_id: eid,
            epoch: next_epoch(req.epoch)?,
            target: self.host_id(),
            measurement: req.measurement,
            report_data: rd,
            framework_evidence: core::mem::take(&mut evidence),
        }
        .sign(&self.id.sm_key)?;
        let i = self.find(&eid).ok_or(Error::UnknownEnclave)?;
        self.records[i].state = RecState::Pending {
            request_id: req.request_id,
            source: req.source,
            source_sm,
            ready: ready.clone(),
        };
        self.records[i].epoch = next_epoch(req.epoch)?;
        self.commit()?;
        #[cfg(feature = "fault-injection")]
        if self.faults.activate_without_release {
            let _ = self.host.resume(&eid);
        }
        self.event(conn, Event::PendingReady);
        let s = self.incoming.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        s.phase = InPhase::AwaitDecision;
        Self::send_on(&mut s.channel, &Message::Ready(ready))
    }

    /// Give up a half-received import: journal GONE with a signed DROPPED ack
    /// (so the SDS can stop forwarding ABORT), then destroy the partial copy.
    fn drop_import(&mut self, i: usize, request_id: RequestId) -> Result<()> {
        let eid = self.records[i].id;
        let ack = TargetAck {
            kind: AckKind::Dropped,
            request_id,
            enclave_id: eid,
            epoch: self.records[i].epoch,
            host: self.host_id(),
        }
        .sign(&self.id.sm_key)?;
        let message = Message::Dropped(ack).encode()?;
        self.records[i].state = RecState::Gone;
        self.records[i].last = Some(Settled {
            request_id,
            message: message.clone(),
        });
        self.commit()?;
        self.apply(&eid);
        self.event(request_id, Event::Dropped);
        self.push(Dest::Sds, message);
        Ok(())
    }

    /// RELEASE or ABORT for a pending enclave, in-channel or forwarded by the SDS.
    fn on_decision(&mut self, bytes: &[u8], conn: Option<RequestId>) -> Result<()> {
        let signed = Signed::parse(bytes)?;
        let kid = signed.kid;
        // Find the record this decision is about by the signer-independent fields first.
        let d = Decision::from_value(signed.verify(&kid)?)?;
        let i = self.find(&d.enclave_id).ok_or(Error::UnknownEnclave)?;
        let rec = &self.records[i];
        if rec
            .last
            .as_ref()
            .is_some_and(|l| l.request_id == d.request_id)
        {
            // Already settled: re-send our ack, act on nothing.
            let m = rec
                .last
                .as_ref()
                .map(|l| l.message.clone())
                .unwrap_or_default();
            if matches!(rec.state, RecState::Running | RecState::Gone) {
                self.push(Dest::Sds, m);
            }
            return Err(Error::Duplicate);
        }
        if let RecState::Receiving {
            request_id,
            source_sm,
        } = rec.state
        {
            // ABORT for an import still under way: drop it (RELEASE is impossible here).
            if request_id != d.request_id {
                return Err(Error::WrongRequest);
            }
            if kid != source_sm {
                return Err(Error::NotSource);
            }
            if d.kind != DecisionKind::Abort {
                return Err(Error::InvalidState);
            }
            if let Some(s) = self.incoming.get_mut(&request_id) {
                s.phase = InPhase::Done;
                let mut bytes = Vec::new();
                s.channel.close(&mut bytes);
            }
            return self.drop_import(i, request_id);
        }
        let RecState::Pending {
            request_id,
            source,
            source_sm,
            ..
        } = rec.state.clone()
        else {
            return Err(Error::InvalidState);
        };
        if request_id != d.request_id {
            return Err(Error::WrongRequest);
        }
        // Only the source SM that sent the image may decide (G2).
        if kid != source_sm || d.source != source {
            return Err(Error::NotSource);
        }
        if d.target != self.host_id() || d.epoch != rec.epoch {
            return Err(Error::WrongRequest);
        }
        let eid = d.enclave_id;
        let kind = match d.kind {
            DecisionKind::Release => AckKind::Active,
            DecisionKind::Abort => AckKind::Dropped,
        };
        let ack = TargetAck {
            kind,
            request_id: d.request_id,
            enclave_id: eid,
            epoch: d.epoch,
            host: self.host_id(),
        }
        .sign(&self.id.sm_key)?;
        let message = match kind {
            AckKind::Active => Message::Active(ack),
            AckKind::Dropped => Message::Dropped(ack),
        }
        .encode()?;
        let rec = &mut self.records[i];
        rec.state = match kind {
            AckKind::Active => RecState::Running,
            AckKind::Dropped => RecState::Gone,
        };
        rec.last = Some(Settled {
            request_id: d.request_id,
            message: message.clone(),
        });
        self.commit()?;
        self.apply(&eid);
        self.event(
            d.request_id,
            match kind {
                AckKind::Active => Event::Activated,
                AckKind::Dropped => Event::Dropped,
            },
        );
        self.push(Dest::Sds, message.clone());
        let conn = conn.unwrap_or(d.request_id);
        if let Some(s) = self.incoming.get_mut(&conn) {
            s.phase = InPhase::Done;
            let _ = s.channel.send(message);
            let mut bytes = Vec::new();
            let mut msgs = Vec::new();
            let _ = s.channel.pump(&mut bytes, &mut msgs);
            s.channel.close(&mut bytes);
            let host = s.peer;
            if !bytes.is_empty() {
                self.push(Dest::Peer { host, conn }, bytes);
            }
        }
        Ok(())
    }
}

/// The epoch after `e`; an enclave that has used every epoch can move no more.
fn next_epoch(e: u64) -> Result<u64> {
    e.checked_add(1).ok_or(Error::Capacity)
}

/// What READY's report data binds: the request and the three stream digests.
pub fn report_data(request_id: &RequestId, digests: &[Digest; 3]) -> Digest {
    let mut buf = [0u8; 16 + 96];
    buf[..16].copy_from_slice(request_id);
    for (i, d) in digests.iter().enumerate() {
        buf[16 + 32 * i..48 + 32 * i].copy_from_slice(d);
    }
    sha256(&buf)
}
