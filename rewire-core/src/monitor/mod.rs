//! The security monitor's side of the protocol: one state machine per host
//! that is source (SMS) for enclaves moving out and target (SMT) for enclaves
//! moving in. Sans-IO: it takes bytes and events, and returns bytes through
//! [`Monitor::poll_output`]; the platform and the enclave framework are reached
//! only through the [`Platform`] and [`EnclaveHost`] traits.
//!
//! Rule of every transition: validate fully, then journal (write + count),
//! then act (pause/resume/destroy, messages). A rejection changes nothing.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::channel::{Channel, Cipher};
use crate::crypto::{sha256, Digest, PublicKey, Secret, SecretBytes};
use crate::error::{Error, Result};
use crate::journal::{Proof, RecState, Record, Settled, MAX_RECORDS};
use crate::platform::{EnclaveHost, Platform};
use crate::rng::Drbg;
use crate::seal;
use crate::wire::{
    verify_as, AckKind, DecisionKind, EnclaveId, EnclavePolicy, HostId, Message, RequestId,
    SignedBody,
};

/// Whether a test-only misbehaviour (`Faults`, feature `fault-injection`)
/// is switched on; `false` in every product build.
macro_rules! fault {
    ($self:ident . $field:ident) => {{
        #[cfg(feature = "fault-injection")]
        let on = $self.faults.$field;
        #[cfg(not(feature = "fault-injection"))]
        let on = false;
        on
    }};
}

mod checkpoint;
#[cfg(feature = "fault-injection")]
mod faults;
mod identity;
mod recovery;
mod session;
mod source;
mod target;

pub use checkpoint::{CHECKPOINT_KEY_ID, MAX_SEALED_CHECKPOINTS};
#[cfg(feature = "fault-injection")]
pub use faults::{ChunkTamper, DecisionTamper, Faults, ReadyTamper};
pub use identity::Identity;
use session::{InPhase, InSession, OutPhase, OutSession};

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
    /// The platform this monitor runs (`wire::PLATFORM_*`), when it knows
    /// it: then it refuses, whatever the SDS signed, to install an enclave
    /// built for another platform, or to take one in as a target whose
    /// endorsement names another platform (`PlatformMismatch`). A mislabelled
    /// endorsement cannot then strand an enclave on a host that cannot run
    /// it. `None` (simulations on a build machine) leaves the check to the
    /// signed objects. The C ABI sets it from the target architecture on
    /// bare metal.
    pub platform: Option<u64>,
    /// The TLS suite this monitor prefers: AES-256-GCM is offered (and
    /// accepted) only when this is [`Cipher::Aes256Gcm`], so a channel uses
    /// it only when both monitors prefer it. [`Cipher::detect`] by default;
    /// a bare-metal port whose CPU has AES instructions sets it (and builds
    /// the `aes-gcm` feature).
    pub cipher: Cipher,
}

impl Config {
    pub fn new(sds_key: PublicKey) -> Config {
        Config {
            sds_key,
            timeout_ms: 30_000,
            max_sessions: 8,
            platform: None,
            cipher: Cipher::detect(),
        }
    }

    /// `PlatformMismatch` unless `platform` is this monitor's (or it does
    /// not know its own).
    pub(crate) fn runs(&self, platform: u64) -> Result<()> {
        match self.platform {
            Some(p) if p != platform => Err(Error::PlatformMismatch),
            _ => Ok(()),
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
    /// SMS: the whole image sent, END sent.
    StreamDone,
    /// SMT: stream complete, measurement verified, state re-sealed, PENDING journaled, READY sent.
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
    /// Every salt the monitor draws comes from here (crate::rng); TLS
    /// randoms come from ring (on bare metal: rewire_init's callback).
    drbg: Drbg,
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
    /// Checkpoints sealed in this run and not committed yet (checkpoint.rs).
    sealed_checkpoints: VecDeque<checkpoint::Sealed>,
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
        self.cfg.runs(pol.platform)?;
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
            checkpoint: None,
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
            .sealing_key(&self.records[i].measurement, eid, SEALED_DATA_KEY_ID)
    }

    /// Seal an enclave's data into a blob the framework stores as its Sealed section.
    pub fn seal_data(&mut self, eid: &EnclaveId, data: &[u8]) -> Result<Vec<u8>> {
        let key = self.sealing_key(eid)?;
        let mut salt = [0u8; 32];
        self.drbg.fill(&mut self.platform, &mut salt)?;
        let salt = crate::crypto::bind_salt(&salt, data)?;
        seal::seal(&key, salt, data)
    }

    /// Open an enclave's sealed blob.
    pub fn unseal_data(&self, eid: &EnclaveId, blob: &[u8]) -> Result<SecretBytes> {
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
                    let m = self.settled_message(last)?;
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
            let channel = Channel::server(&self.id.sm_key, now, self.cfg.cipher)?;
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
        // Every session phase times out. An import that stalls is dropped:
        // always safe, since the source cannot commit before it has READY,
        // which is sent only once PENDING. A session waiting for the decision
        // only closes: its PENDING copy stays, and the decision can still come
        // through the SDS (a relay cannot hold a session slot for ever).
        let stalled: Vec<(RequestId, bool)> = self
            .incoming
            .iter()
            .filter(|(_, s)| {
                !matches!(s.phase, InPhase::Done)
                    && now.saturating_sub(s.last_activity_ms) > self.cfg.timeout_ms
            })
            .map(|(k, s)| (*k, !matches!(s.phase, InPhase::AwaitDecision)))
            .collect();
        for (conn, refuse) in stalled {
            self.incoming_failed(conn, Error::Timeout, refuse);
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

    /// A settled proof as the message to send: signed here, from the fields
    /// the journal keeps (Ed25519 is deterministic: every re-send is the
    /// same bytes). Kept in memory: what is sent leaves only after the
    /// commit that records the proof is counted.
    fn settled_message(&self, s: &Settled) -> Result<Vec<u8>> {
        let key = &self.id.sm_key;
        match &s.proof {
            Proof::Decision(d) => {
                let signed = d.sign(key)?;
                match d.kind {
                    DecisionKind::Release => Message::Release(signed),
                    DecisionKind::Abort => Message::Abort(signed),
                }
            }
            Proof::Ack(a) => {
                let signed = a.sign(key)?;
                match a.kind {
                    AckKind::Active => Message::Active(signed),
                    AckKind::Dropped => Message::Dropped(signed),
                }
            }
        }
        .encode()
    }

    fn event(&mut self, rid: RequestId, e: Event) {
        event!(info, event = ?e, "migration step");
        if self.events.len() < 1024 {
            self.events.push_back((rid, e));
        }
    }

    fn wall_time(&mut self) -> Result<u64> {
        self.platform.wall_time().ok_or(Error::NoTrustedTime)
    }
}

/// The epoch after `e`; an enclave that has used every epoch can move no more.
fn next_epoch(e: u64) -> Result<u64> {
    e.checked_add(1).ok_or(Error::Capacity)
}

/// What READY's report data binds: the request and the three section
/// lengths streamed in full (plaintext lengths, as OFFER announced them).
/// The bytes themselves are bound by the channel, not by a digest: READY is
/// accepted only inside the TLS channel that carried them, after END
/// (docs/protocol.md §4.5).
pub fn report_data(request_id: &RequestId, lengths: &[u64; 3]) -> Digest {
    const TAG: &[u8; 21] = b"rewire/report-data/v2";
    let mut buf = [0u8; 21 + 16 + 24];
    buf[..21].copy_from_slice(TAG);
    buf[21..37].copy_from_slice(request_id);
    for (i, l) in lengths.iter().enumerate() {
        buf[37 + 8 * i..45 + 8 * i].copy_from_slice(&l.to_be_bytes());
    }
    sha256(&buf)
}
