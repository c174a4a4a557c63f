//! Exhaustive, bounded model check of SDS + source monitor (SMS) + target
//! monitor (SMT), driving the real `rewire_core` state machines
//! (`Monitor<SoftPlatform, SoftHost>`, `Sds`). Nothing is abstracted: TLS,
//! signatures, sealing and journals are the real ones.
//!
//! **Model.** One enclave on host 0 (SMS), one signed ORDER moving it to host 1
//! (SMT). A state is reached by a *trace* of adversary choices and is
//! re-executed from the start (monitors are neither `Clone` nor hashable); it
//! is identified by a fingerprint of everything observable: each monitor's
//! journal blob, blob history, counter, framework (enclave images and
//! whether they run), status, and a log of its volatile progress since its
//! last start (events, TLS batches consumed, ticks); the SDS ledger bytes;
//! the set of SDS-path messages in flight and of every one ever sent; the
//! TLS pipe's batches; the clock. Breadth first, with a visited set.
//!
//! **Adversary.** SDS-path messages (ORDER, QUERY, RELEASE, ABORT, ACTIVE,
//! DROPPED) are fully adversarial: any in-flight message can be delivered in
//! any order (free), dropped, or any message ever sent replayed — also
//! duplicated or redirected — to any party that takes its type (faults). The
//! TLS channel is one pipe per direction, delivered batch by batch in order
//! (rustls guarantees order and integrity; `attacks.rs` tampers records); it
//! can be stalled (free) or cut (fault). Faults also: a time jump past the
//! timeout (every monitor ticks), crash + restart of either monitor from its
//! journal, a power cut between a journal write and its counter increment
//! (at the monitor's next commit, or inside its next recovery), and after
//! such a torn commit a restart that presents the previous (counted) blob.
//! The SDS persists its ledger after every change, so an SDS crash is a
//! dropped message, except for the one crash that matters: between signing
//! the ORDER and persisting it (the second initial state). SDS retries
//! (`resolution`, `audit`) are honest but their timing is the adversary's,
//! bounded separately.
//!
//! **Checks at every reachable state.**
//! * G1: every epoch ≤ the number of requests issued (1); every proof on the
//!   wire is for the issued request, signed by the right SM; the target holds
//!   the enclave only after the source validated the order; the ledger moves
//!   to the target only with a RELEASE or ACTIVE on record.
//! * G2: at most one framework runs the enclave; a running copy is `may_run`
//!   for its monitor; its epoch is the newest any record holds and never
//!   goes back along the trace.
//! * G5: every older journal blob the monitor ever wrote, presented at a
//!   restart, is refused with `Error::Rollback` (a blob adopted instead must
//!   hold exactly the current state: the twin a re-run recovery fence writes).
//! * State continuity (protocol.md §8.5), at every new journal state of
//!   each monitor, on a restarted copy: the checkpoint committed at
//!   deployment opens byte-exact only at the source while it holds the
//!   enclave; every checkpoint an earlier probe sealed and committed (at
//!   the other monitor, at older states) is refused; a seal never committed
//!   is refused, an older seal cannot be committed after a newer one, and
//!   after a commit only the newest opens; none of it moves the enclave.
//! * G3: from the state, the faults stop (poisoned monitors restarted,
//!   power cuts disarmed), and the world is driven to quiescence: every
//!   message delivered, SDS resolution and audit, time jumps past the
//!   timeout. Then exactly one copy runs, byte-exact (code, state, sealed
//!   data opening under its host's key), and the ledger agrees on host and
//!   epoch; G2 holds after every step of that run.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use rewire_core::crypto::sha256;
use rewire_core::monitor::Faults;
use rewire_core::soft::{Clock, SoftHost, SoftPlatform};
use rewire_core::wire::{verify_as, Decision, Message, Signed, TargetAck};
use rewire_core::{
    Dest, EnclaveId, EnclaveState, Error, Event, HostId, LedgerEvent, Monitor, PublicKey,
    RequestId, Sds,
};

use crate::{config, identity, sds_key, Image, Mon, SM_MEASUREMENT, TIMEOUT_MS, WALL0};

pub const EID: EnclaveId = *b"enclave-model-01";
pub const RID: RequestId = [0x4d; 16];
const SOURCE: usize = 0;
const TARGET: usize = 1;
/// Party index of the SDS in message destinations.
const SDS: u8 = 2;
/// The one request the SDS issues: no epoch may go beyond it.
const MAX_EPOCH: u64 = 1;
/// Checkpoints kept to present at later states (the first ones probes
/// commit: at the source before and after the freeze, at the target).
const MAX_CHECKPOINT_POOL: usize = 48;

/// The enclave: small, so that the stream is three chunks and END.
pub fn image() -> Image {
    Image {
        code: b"\x7fELF model-checked enclave code".to_vec(),
        state: (0..48u8).collect(),
        sealed: b"sealed secret of the model enclave".to_vec(),
    }
}

/// One adversary choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Deliver the k-th in-flight SDS-path message (in canonical order) and remove it.
    Deliver(u8),
    /// Deliver the next TLS batch to host d.
    Pipe(u8),
    /// SDS retry: `Sds::resolution`.
    Resolve,
    /// SDS retry: `Sds::audit`.
    Audit,
    /// Fault: drop the k-th in-flight SDS-path message.
    Drop(u8),
    /// Fault: deliver the j-th message ever sent (canonical order) to party `to`.
    Replay(u8, u8),
    /// Fault: cut the TLS pipe (everything in flight and later is lost).
    Cut,
    /// Fault: time jumps past the timeout; every monitor ticks.
    Tick,
    /// Fault: crash host h and restart it from its journal.
    Crash(u8),
    /// Fault: after a torn commit, restart host h presenting the previous blob.
    CrashPrevious(u8),
    /// Fault: cut the power of host h at its next counter increment.
    PowerCut(u8),
}

/// Names of the action kinds, indexed by [`Action::kind`].
pub const ACTION_KINDS: [&str; 11] = [
    "deliver",
    "pipe",
    "resolve",
    "audit",
    "drop",
    "replay",
    "cut",
    "tick",
    "crash",
    "crash-previous",
    "power-cut",
];

impl Action {
    pub fn kind(self) -> usize {
        match self {
            Action::Deliver(_) => 0,
            Action::Pipe(_) => 1,
            Action::Resolve => 2,
            Action::Audit => 3,
            Action::Drop(_) => 4,
            Action::Replay(..) => 5,
            Action::Cut => 6,
            Action::Tick => 7,
            Action::Crash(_) => 8,
            Action::CrashPrevious(_) => 9,
            Action::PowerCut(_) => 10,
        }
    }
    /// Whether this choice spends the fault budget. Restarting a monitor
    /// whose commit a power cut tore is part of that power cut, not another
    /// fault (either blob it presents is legitimate).
    fn is_fault(self, sim: &Sim) -> bool {
        match self {
            Action::Deliver(_) | Action::Pipe(_) | Action::Resolve | Action::Audit => false,
            Action::Crash(h) | Action::CrashPrevious(h) => {
                !sim.hosts.get(h as usize).is_some_and(|x| x.torn)
            }
            _ => true,
        }
    }
    fn is_retry(self) -> bool {
        matches!(self, Action::Resolve | Action::Audit)
    }
}

/// Bounds of the exploration.
#[derive(Debug, Clone)]
pub struct Bounds {
    /// Longest trace.
    pub depth: usize,
    /// Faults per trace.
    pub faults: usize,
    /// SDS retries (resolution, audit) per trace.
    pub retries: usize,
    /// Stop after this many distinct states (0: no cap).
    pub max_states: usize,
    /// Run the G3 completion from every state (else only from leaves).
    pub g3_everywhere: bool,
}

impl Bounds {
    /// CI bound, overridable by REWIRE_MODEL_DEPTH, REWIRE_MODEL_FAULTS,
    /// REWIRE_MODEL_RETRIES, REWIRE_MODEL_MAX_STATES.
    pub fn from_env(depth: usize, faults: usize, retries: usize) -> Bounds {
        let get = |k: &str, d: usize| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(d)
        };
        Bounds {
            depth: get("REWIRE_MODEL_DEPTH", depth),
            faults: get("REWIRE_MODEL_FAULTS", faults),
            retries: get("REWIRE_MODEL_RETRIES", retries),
            max_states: get("REWIRE_MODEL_MAX_STATES", 0),
            g3_everywhere: true,
        }
    }
}

/// Deliberately broken monitors (see `rewire_core::monitor::Faults`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Variant {
    pub resume_after_release: bool,
    pub drop_pending_on_timeout: bool,
    pub activate_without_release: bool,
}

impl Variant {
    fn faults(self) -> Faults {
        Faults {
            resume_after_release: self.resume_after_release,
            drop_pending_on_timeout: self.drop_pending_on_timeout,
            activate_without_release: self.activate_without_release,
            ..Faults::default()
        }
    }
}

/// Which guarantee a violation breaks, and how.
#[derive(Debug, Clone)]
pub struct Counterexample {
    pub init: u8,
    pub trace: Vec<Action>,
    pub violation: String,
    /// Found while driving the state to quiescence (G3), not in the state itself.
    pub in_completion: bool,
    /// The trace replayed step by step, in words.
    pub steps: Vec<String>,
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "VIOLATION: {}{}",
            self.violation,
            if self.in_completion {
                " (found while driving the state after the trace to quiescence)"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "initial state: {}",
            if self.init == 0 {
                "ORDER on the wire, SDS persisted it"
            } else {
                "ORDER on the wire, SDS crashed before persisting it"
            }
        )?;
        let n = self.steps.len();
        for (i, s) in self.steps.iter().enumerate() {
            // A completion that loops is long: show its start and its end.
            if n > 80 && (50..n - 20).contains(&i) {
                if i == 50 {
                    writeln!(f, "      … {} more steps …", n - 70)?;
                }
                continue;
            }
            writeln!(f, "  {s}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Distinct fingerprints.
    pub states: usize,
    /// Traces executed (each is one transition from its parent).
    pub transitions: u64,
    /// Steps executed, replays included.
    pub steps: u64,
    pub g3_runs: u64,
    pub g5_probes: u64,
    /// Monitor states given checkpoints to open ([`Sim::check_checkpoints`]).
    pub checkpoint_probes: u64,
    /// Distinct checkpoints kept and presented at later states.
    pub checkpoints: usize,
    pub max_depth: usize,
    pub truncated: bool,
    pub seconds: f64,
    /// Transitions executed, by the kind of their last action ([`ACTION_KINDS`]).
    pub by_kind: [u64; 11],
    /// G3 completions that ended with the enclave at the source (aborted,
    /// or never started) and at the target (migrated).
    pub ended_at: [u64; 2],
    pub counterexample: Option<Counterexample>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} distinct states, {} transitions ({} steps executed with replays), \
             {} G3 completions, {} G5 rollback probes, {} checkpoint probes \
             ({} checkpoints presented), depth {}{}, {:.1} s",
            self.states,
            self.transitions,
            self.steps,
            self.g3_runs,
            self.g5_probes,
            self.checkpoint_probes,
            self.checkpoints,
            self.max_depth,
            if self.truncated {
                " (state cap hit)"
            } else {
                ""
            },
            self.seconds
        )?;
        write!(
            f,
            "\n  quiescence: enclave at the source {} times, at the target {} times",
            self.ended_at[0], self.ended_at[1]
        )?;
        write!(f, "\n  transitions by last action:")?;
        for (k, n) in ACTION_KINDS.iter().zip(self.by_kind) {
            write!(f, " {k} {n}")?;
        }
        Ok(())
    }
}

/// A TLS batch in the pipe, identified by its sender's incarnation and
/// sequence number (its bytes are random: rustls draws its own randomness).
struct Batch {
    conn: RequestId,
    from: usize,
    inc: u32,
    seq: u32,
    bytes: Vec<u8>,
}

struct Host {
    id: HostId,
    mon: Option<Mon>,
    /// Incarnation (starts so far) and batches sent in this one.
    inc: u32,
    seq: u32,
    /// Volatile progress since the last start: events, batches consumed, ticks.
    log: Vec<u64>,
    /// A power cut is armed for the next counter increment.
    armed: bool,
    /// A commit was torn: the newest blob is written but not counted.
    torn: bool,
}

/// The world one trace runs in.
pub struct Sim {
    variant: Variant,
    clock: Clock,
    sds: Sds,
    sds_saved: Vec<u8>,
    hosts: Vec<Host>,
    /// In-flight SDS-path messages: (destination party, bytes).
    net: BTreeSet<(u8, Vec<u8>)>,
    /// Every SDS-path message ever sent.
    pool: BTreeSet<Vec<u8>>,
    /// TLS batches in flight, by destination host.
    pipe: [VecDeque<Batch>; 2],
    cut: bool,
    ticks: u32,
    /// Ghosts for the checks.
    validated: bool,
    max_run_epoch: Option<u64>,
    img: Image,
    verbose: bool,
    nstep: usize,
    pub steps: Vec<String>,
}

fn h32(b: &[u8]) -> [u8; 32] {
    sha256(b)
}

/// Tags of the volatile-progress log entries.
const EVENT_TOKEN: u64 = 1 << 60;
const PIPE_TOKEN: u64 = 2 << 60;
const TICK_TOKEN: u64 = 3 << 60;

fn event_token(e: Event) -> u64 {
    EVENT_TOKEN
        | match e {
            Event::Validated => 1,
            Event::Frozen => 2,
            Event::ChannelUp => 3,
            Event::Offered => 4,
            Event::OfferAccepted => 5,
            Event::TargetVerified => 6,
            Event::StreamDone => 7,
            Event::PendingReady => 8,
            Event::Committed => 9,
            Event::Activated => 10,
            Event::Aborted(e) => 1000 + u64::from(e.code()),
            Event::Dropped => 11,
        }
}

fn msg_name(bytes: &[u8]) -> &'static str {
    match Message::decode(bytes) {
        Ok(Message::Order(_)) => "ORDER",
        Ok(Message::Query { .. }) => "QUERY",
        Ok(Message::Release(_)) => "RELEASE",
        Ok(Message::Abort(_)) => "ABORT",
        Ok(Message::Active(_)) => "ACTIVE",
        Ok(Message::Dropped(_)) => "DROPPED",
        Ok(_) => "other",
        Err(_) => "garbage",
    }
}

fn party_name(p: u8) -> &'static str {
    match p {
        0 => "SMS",
        1 => "SMT",
        _ => "SDS",
    }
}

/// Parties that take a message of this type on their SDS path.
fn takers(bytes: &[u8]) -> &'static [u8] {
    match Message::decode(bytes) {
        Ok(Message::Release(_) | Message::Abort(_)) => &[0, 1, SDS],
        Ok(Message::Active(_) | Message::Dropped(_)) => &[SDS],
        Ok(Message::Order(_) | Message::Query { .. }) => &[0, 1],
        _ => &[],
    }
}

fn state_name(s: Option<rewire_core::EnclaveStatus>) -> String {
    match s {
        Some(s) => format!("{:?}@{}", s.state, s.epoch),
        None => "no record".into(),
    }
}

/// The initial world, built once: enclave deployed on host 0, ORDER signed.
/// Each trace starts from copies of it (restarting both monitors from their
/// journals), which costs less than building it again.
struct Seed {
    parts: Vec<(SoftPlatform, SoftHost)>,
    /// Ledger after the order (init 0) and before it (init 1: the SDS
    /// crashed after signing the order, before persisting it).
    ledgers: [Vec<u8>; 2],
    order: Vec<u8>,
    /// The checkpoint the source's framework committed at deployment (of
    /// the enclave's state): the only one the source may open, and only
    /// while it holds the enclave.
    checkpoint: Vec<u8>,
}

static SEED: OnceLock<Result<Seed, String>> = OnceLock::new();

impl Seed {
    fn build() -> Result<Seed, String> {
        let e = |what: &str, err: Error| format!("setup: {what}: {err:?}");
        let clock = Clock::default();
        let mut sds = Sds::new(sds_key());
        let img = image();
        let mut hosts = Vec::new();
        for i in 0..2 {
            let id = identity(i);
            sds.pin_device(id.host_id());
            sds.endorse_host(
                id.certificate(),
                vec![SM_MEASUREMENT],
                rewire_core::wire::PLATFORM_RISCV64,
                2,
                WALL0 - 10,
                WALL0 + 86_400 * 365,
            )
            .map_err(|x| e("endorse", x))?;
            let platform = SoftPlatform::new(1000 + i as u64, clock.clone(), Some(WALL0));
            let m = Monitor::start(platform, SoftHost::default(), id, config())
                .map_err(|x| e("start", x))?;
            hosts.push(m);
        }
        let (source, target) = (hosts[SOURCE].host_id(), hosts[TARGET].host_id());
        let policy = sds
            .register_enclave(
                EID,
                img.measurement(),
                rewire_core::wire::PLATFORM_RISCV64,
                1,
                source,
            )
            .map_err(|x| e("register", x))?;
        let m = &mut hosts[SOURCE];
        m.enclave_host()
            .load(EID, img.code.clone(), img.state.clone(), Vec::new());
        m.install(&policy).map_err(|x| e("install", x))?;
        let blob = m.seal_data(&EID, &img.sealed).map_err(|x| e("seal", x))?;
        m.enclave_host()
            .enclaves
            .get_mut(&EID)
            .ok_or("setup: enclave not loaded")?
            .sealed = blob;
        let checkpoint = m
            .seal_checkpoint(&EID, &img.state)
            .map_err(|x| e("seal checkpoint", x))?;
        m.commit_checkpoint(&EID, &checkpoint)
            .map_err(|x| e("commit checkpoint", x))?;
        let before_order = sds.to_bytes().map_err(|x| e("ledger", x))?;
        let order = sds
            .order(&EID, target, RID, WALL0 + 3600)
            .map_err(|x| e("order", x))?;
        let after_order = sds.to_bytes().map_err(|x| e("ledger", x))?;
        Ok(Seed {
            parts: hosts.into_iter().map(Monitor::into_parts).collect(),
            ledgers: [after_order, before_order],
            order,
            checkpoint,
        })
    }
}

impl Sim {
    /// The initial state: enclave deployed on host 0, ORDER to host 1 on the
    /// wire. `init` 1: the SDS crashed after signing the order, before
    /// persisting it.
    pub fn new(init: u8, variant: Variant, verbose: bool) -> Result<Sim, String> {
        let seed = SEED.get_or_init(Seed::build).as_ref()?;
        let clock = Clock::default();
        let mut hosts = Vec::new();
        for (i, (p, fw)) in seed.parts.iter().enumerate() {
            let mut p = p.clone();
            p.clock = clock.clone();
            let mut m = Monitor::start(p, fw.clone(), identity(i), config())
                .map_err(|x| format!("setup: start: {x:?}"))?;
            m.faults = variant.faults();
            hosts.push(Host {
                id: m.host_id(),
                mon: Some(m),
                inc: 0,
                seq: 0,
                log: Vec::new(),
                armed: false,
                torn: false,
            });
        }
        let ledger = &seed.ledgers[usize::from(init.min(1))];
        let sds =
            Sds::from_bytes(sds_key(), ledger).map_err(|x| format!("setup: ledger: {x:?}"))?;
        let mut sim = Sim {
            variant,
            clock,
            sds,
            sds_saved: ledger.clone(),
            hosts,
            net: BTreeSet::new(),
            pool: BTreeSet::new(),
            pipe: [VecDeque::new(), VecDeque::new()],
            cut: false,
            ticks: 0,
            validated: false,
            max_run_epoch: None,
            img: image(),
            verbose,
            nstep: 0,
            steps: Vec::new(),
        };
        sim.send(SOURCE as u8, seed.order.clone());
        sim.drain();
        Ok(sim)
    }

    /// Re-execute a trace from the initial state.
    pub fn replay(
        init: u8,
        trace: &[Action],
        variant: Variant,
        verbose: bool,
    ) -> Result<Sim, String> {
        let mut s = Sim::new(init, variant, verbose)?;
        for &a in trace {
            s.apply(a)?;
        }
        Ok(s)
    }

    fn send(&mut self, to: u8, bytes: Vec<u8>) {
        self.pool.insert(bytes.clone());
        self.net.insert((to, bytes));
    }

    fn idx(&self, h: &HostId) -> Option<usize> {
        self.hosts.iter().position(|x| &x.id == h)
    }

    fn note(&mut self, s: String) {
        if self.verbose {
            self.steps.push(s);
        }
    }

    /// Move every monitor's outputs and events out.
    fn drain(&mut self) {
        for i in 0..self.hosts.len() {
            let mut outs = Vec::new();
            let mut events = Vec::new();
            if let Some(m) = self.hosts[i].mon.as_mut() {
                while let Some(o) = m.poll_output() {
                    outs.push(o);
                }
                while let Some((_, e)) = m.poll_event() {
                    events.push(e);
                }
            }
            for e in events {
                if i == SOURCE && e == Event::Validated {
                    self.validated = true;
                }
                self.hosts[i].log.push(event_token(e));
                if self.verbose {
                    self.steps
                        .push(format!("        {}: event {e:?}", party_name(i as u8)));
                }
            }
            for o in outs {
                match o.dest {
                    Dest::Sds => self.send(SDS, o.bytes),
                    Dest::Peer { host, conn } => {
                        let Some(to) = self.idx(&host) else { continue };
                        if self.cut {
                            continue;
                        }
                        let h = &mut self.hosts[i];
                        let b = Batch {
                            conn,
                            from: i,
                            inc: h.inc,
                            seq: h.seq,
                            bytes: o.bytes,
                        };
                        h.seq += 1;
                        self.pipe[to].push_back(b);
                    }
                }
            }
            // A power cut armed before a commit has now torn it.
            let h = &mut self.hosts[i];
            if h.armed {
                if let Some(m) = h.mon.as_mut() {
                    if !m.platform().fail_next_increment {
                        h.armed = false;
                        h.torn = true;
                    }
                }
            }
        }
    }

    fn deliver(&mut self, to: u8, bytes: &[u8]) -> String {
        if to == SDS {
            let r = self.sds.handle(bytes);
            if r.is_ok() {
                if let Ok(b) = self.sds.to_bytes() {
                    self.sds_saved = b;
                }
            }
            match r {
                Ok(LedgerEvent::Released { epoch, .. }) => {
                    format!("ledger: released, epoch {epoch}")
                }
                Ok(LedgerEvent::Activated { epoch, .. }) => {
                    format!("ledger: active, epoch {epoch}")
                }
                Ok(LedgerEvent::Aborted { epoch, .. }) => format!("ledger: aborted, epoch {epoch}"),
                Ok(LedgerEvent::Dropped { .. }) => "ledger: dropped".into(),
                Err(e) => format!("{e:?}"),
            }
        } else {
            let Some(m) = self.hosts[to as usize].mon.as_mut() else {
                return "host down".into();
            };
            match m.handle_sds(bytes) {
                Ok(()) => "ok".into(),
                Err(e) => format!("{e:?}"),
            }
        }
    }

    fn sds_out(&mut self, msgs: Vec<(HostId, Vec<u8>)>) -> usize {
        let n = msgs.len();
        for (h, b) in msgs {
            if let Some(i) = self.idx(&h) {
                self.send(i as u8, b);
            }
        }
        n
    }

    fn tick_all(&mut self) {
        self.clock.advance(TIMEOUT_MS + 1000);
        self.ticks += 1;
        for h in self.hosts.iter_mut() {
            if let Some(m) = h.mon.as_mut() {
                let _ = m.tick();
                h.log.push(TICK_TOKEN);
            }
        }
    }

    /// Crash host i and restart it from its journal (the previous blob if `previous`).
    fn crash(&mut self, i: usize, previous: bool) -> Result<(), String> {
        let variant = self.variant;
        let h = &mut self.hosts[i];
        let m = h.mon.take().ok_or("crash: host already down")?;
        let (mut p, mut fw) = m.into_parts();
        if previous {
            let n = p.journal_history.len();
            if n < 2 {
                return Err("crash: no previous blob".into());
            }
            p.journal = Some(p.journal_history[n - 2].clone());
        }
        for _ in 0..3 {
            match Monitor::start_or_return(p, fw, identity(i), config()) {
                Ok(mut m) => {
                    m.faults = variant.faults();
                    h.mon = Some(m);
                    h.inc += 1;
                    h.seq = 0;
                    h.log.clear();
                    h.armed = false;
                    h.torn = false;
                    return Ok(());
                }
                // A power cut inside the recovery itself: start again.
                Err(f) if f.error == Error::Counter && h.armed => {
                    h.armed = false;
                    p = f.platform;
                    fw = f.host;
                }
                Err(f) => {
                    return Err(format!(
                        "G3: host{i} does not restart from honest storage: {:?}",
                        f.error
                    ))
                }
            }
        }
        Err(format!("G3: host{i} does not restart"))
    }

    /// Execute one adversary choice (and collect what it produced).
    pub fn apply(&mut self, a: Action) -> Result<(), String> {
        let known = match a {
            Action::Pipe(h) | Action::Crash(h) | Action::CrashPrevious(h) | Action::PowerCut(h) => {
                usize::from(h) < self.hosts.len()
            }
            Action::Replay(_, to) => to == SDS || usize::from(to) < self.hosts.len(),
            _ => true,
        };
        if !known {
            return Err(format!("no such party in {a:?}"));
        }
        let mark = self.steps.len();
        let what = match a {
            Action::Deliver(k) | Action::Drop(k) => {
                let (to, bytes) = self
                    .net
                    .iter()
                    .nth(k as usize)
                    .cloned()
                    .ok_or("replay: no such message")?;
                self.net.remove(&(to, bytes.clone()));
                if let Action::Drop(_) = a {
                    format!("DROP {} → {}", msg_name(&bytes), party_name(to))
                } else {
                    let r = self.deliver(to, &bytes);
                    format!("deliver {} → {}: {r}", msg_name(&bytes), party_name(to))
                }
            }
            Action::Replay(j, to) => {
                let bytes = self
                    .pool
                    .iter()
                    .nth(j as usize)
                    .cloned()
                    .ok_or("replay: no such message")?;
                let r = self.deliver(to, &bytes);
                format!("REPLAY {} → {}: {r}", msg_name(&bytes), party_name(to))
            }
            Action::Pipe(d) => {
                let d = d as usize;
                let b = self.pipe[d].pop_front().ok_or("replay: pipe empty")?;
                let from = self.hosts[b.from].id;
                let h = &mut self.hosts[d];
                h.log.push(
                    PIPE_TOKEN | (b.from as u64) << 48 | u64::from(b.inc) << 24 | u64::from(b.seq),
                );
                let r = match h.mon.as_mut() {
                    Some(m) => match m.handle_peer(from, b.conn, &b.bytes) {
                        Ok(()) => "ok".to_string(),
                        Err(e) => format!("{e:?}"),
                    },
                    None => "host down".into(),
                };
                format!(
                    "TLS batch {}#{}.{} ({} B) → {}: {r}",
                    party_name(b.from as u8),
                    b.inc,
                    b.seq,
                    b.bytes.len(),
                    party_name(d as u8)
                )
            }
            Action::Resolve => {
                let m = self.sds.resolution();
                let n = self.sds_out(m);
                if let Ok(b) = self.sds.to_bytes() {
                    self.sds_saved = b;
                }
                format!("SDS resolution: {n} message(s)")
            }
            Action::Audit => {
                let m = self.sds.audit();
                let n = self.sds_out(m);
                format!("SDS audit: {n} QUERY")
            }
            Action::Cut => {
                self.pipe = [VecDeque::new(), VecDeque::new()];
                self.cut = true;
                "CUT the TLS connection".into()
            }
            Action::Tick => {
                self.tick_all();
                format!(
                    "TIME JUMP past the timeout; monitors tick (t = {} s)",
                    self.clock.now_ms() / 1000
                )
            }
            Action::Crash(h) => {
                self.crash(h as usize, false)?;
                format!("CRASH {} and restart from its journal", party_name(h))
            }
            Action::CrashPrevious(h) => {
                self.crash(h as usize, true)?;
                format!(
                    "CRASH {} and restart presenting the previous (counted) blob",
                    party_name(h)
                )
            }
            Action::PowerCut(h) => {
                let m = self.hosts[h as usize]
                    .mon
                    .as_mut()
                    .ok_or("power cut: host down")?;
                m.platform().fail_next_increment = true;
                self.hosts[h as usize].armed = true;
                format!(
                    "arm a POWER CUT at {}'s next counter increment",
                    party_name(h)
                )
            }
        };
        self.drain();
        if self.verbose {
            let st = |s: &Sim, i: usize| {
                state_name(s.hosts[i].mon.as_ref().and_then(|m| m.status(&EID)))
            };
            self.nstep += 1;
            let line = format!(
                "{:>3}. {what}   [SMS {}, SMT {}]",
                self.nstep,
                st(self, SOURCE),
                st(self, TARGET)
            );
            // The action goes before the events it caused.
            self.steps.insert(mark.min(self.steps.len()), line);
        }
        Ok(())
    }

    /// Choices available here, within the remaining budgets.
    pub fn enabled(&self, faults_left: bool, retries_left: bool) -> Vec<Action> {
        let mut v = Vec::new();
        for k in 0..self.net.len() {
            v.push(Action::Deliver(k as u8));
        }
        for d in 0..2u8 {
            if !self.pipe[d as usize].is_empty() {
                v.push(Action::Pipe(d));
            }
        }
        if retries_left {
            if !self.sds.is_settled_all() {
                v.push(Action::Resolve);
            }
            v.push(Action::Audit);
        }
        for h in 0..2u8 {
            // The restart after a torn commit belongs to its power cut.
            if self.hosts[h as usize].torn {
                v.push(Action::Crash(h));
                v.push(Action::CrashPrevious(h));
            }
        }
        if faults_left {
            for k in 0..self.net.len() {
                v.push(Action::Drop(k as u8));
            }
            for (j, b) in self.pool.iter().enumerate() {
                for &to in takers(b) {
                    v.push(Action::Replay(j as u8, to));
                }
            }
            if !self.cut {
                v.push(Action::Cut);
            }
            v.push(Action::Tick);
            for h in 0..2u8 {
                let host = &self.hosts[h as usize];
                if !host.torn {
                    v.push(Action::Crash(h));
                }
                if !host.armed && !host.torn {
                    v.push(Action::PowerCut(h));
                }
            }
        }
        v
    }

    /// A fingerprint of everything that determines what can happen next.
    pub fn fingerprint(&mut self) -> [u8; 32] {
        let mut b: Vec<u8> = Vec::with_capacity(4096);
        for h in self.hosts.iter_mut() {
            b.extend_from_slice(&h.inc.to_le_bytes());
            b.extend_from_slice(&h.seq.to_le_bytes());
            b.push(u8::from(h.armed) | u8::from(h.torn) << 1);
            b.extend_from_slice(&(h.log.len() as u64).to_le_bytes());
            for t in &h.log {
                b.extend_from_slice(&t.to_le_bytes());
            }
            let Some(m) = h.mon.as_mut() else {
                b.push(0xff);
                continue;
            };
            let st = m.status(&EID);
            b.extend_from_slice(state_name(st).as_bytes());
            b.push(u8::from(m.in_flight()) | u8::from(m.is_streaming()) << 1);
            let p = m.platform();
            b.extend_from_slice(&p.counter.to_le_bytes());
            b.push(u8::from(p.fail_next_increment) | u8::from(p.fail_next_write) << 1);
            b.extend_from_slice(&h32(p.journal.as_deref().unwrap_or(b"none")));
            b.extend_from_slice(&(p.journal_history.len() as u64).to_le_bytes());
            for j in &p.journal_history {
                b.extend_from_slice(&h32(j));
            }
            for (id, e) in &m.enclave_host_ref().enclaves {
                b.extend_from_slice(id);
                b.extend_from_slice(&h32(&e.code));
                b.extend_from_slice(&h32(&e.state));
                b.extend_from_slice(&h32(&e.sealed));
                b.push(u8::from(e.running));
            }
            b.push(0xfe);
        }
        b.extend_from_slice(&h32(&self.sds_saved));
        for (to, m) in &self.net {
            b.push(*to);
            b.extend_from_slice(&h32(m));
        }
        b.push(0xfd);
        for m in &self.pool {
            b.extend_from_slice(&h32(m));
        }
        for d in &self.pipe {
            b.push(0xfc);
            for x in d {
                b.extend_from_slice(&x.conn);
                b.push(x.from as u8);
                b.extend_from_slice(&x.inc.to_le_bytes());
                b.extend_from_slice(&x.seq.to_le_bytes());
                b.extend_from_slice(&(x.bytes.len() as u64).to_le_bytes());
            }
        }
        b.push(u8::from(self.cut) | u8::from(self.validated) << 1);
        b.extend_from_slice(&self.ticks.to_le_bytes());
        b.extend_from_slice(&self.max_run_epoch.map_or(u64::MAX, |e| e).to_le_bytes());
        h32(&b)
    }

    /// G2: at most one copy runs; it may run; no old epoch runs.
    pub fn check_g2(&mut self) -> Result<(), String> {
        let mut running = Vec::new();
        let mut newest = 0u64;
        for (i, h) in self.hosts.iter().enumerate() {
            let Some(m) = &h.mon else { continue };
            if let Some(s) = m.status(&EID) {
                newest = newest.max(s.epoch);
            }
            if m.enclave_host_ref().is_running(&EID) {
                running.push(i);
            }
        }
        if running.len() > 1 {
            return Err(format!("G2 FORK: the enclave runs on hosts {running:?}"));
        }
        for &i in &running {
            let Some(m) = &self.hosts[i].mon else {
                continue;
            };
            if !m.may_run(&EID) {
                return Err(format!(
                    "G2: {} runs the enclave while its monitor says {}",
                    party_name(i as u8),
                    state_name(m.status(&EID))
                ));
            }
            let e = m.status(&EID).map_or(0, |s| s.epoch);
            if e < newest {
                return Err(format!(
                    "G2: {} runs epoch {e} while epoch {newest} exists",
                    party_name(i as u8)
                ));
            }
            if self.max_run_epoch.is_some_and(|m| e < m) {
                return Err(format!(
                    "G2: {} runs old epoch {e} after epoch {:?} ran",
                    party_name(i as u8),
                    self.max_run_epoch
                ));
            }
            self.max_run_epoch = Some(self.max_run_epoch.map_or(e, |m| m.max(e)));
        }
        Ok(())
    }

    /// G1: nothing moves without the one valid request.
    pub fn check_g1(&self) -> Result<(), String> {
        static SM_KEYS: OnceLock<[PublicKey; 2]> = OnceLock::new();
        let [sms, smt] =
            *SM_KEYS.get_or_init(|| [identity(SOURCE).sm_public(), identity(TARGET).sm_public()]);
        for (i, h) in self.hosts.iter().enumerate() {
            let Some(m) = &h.mon else { continue };
            if let Some(s) = m.status(&EID) {
                if s.epoch > MAX_EPOCH {
                    return Err(format!(
                        "G1: {} at epoch {} > requests issued",
                        party_name(i as u8),
                        s.epoch
                    ));
                }
                if i == TARGET && !self.validated {
                    return Err(
                        "G1: the target holds the enclave before the source validated an order"
                            .into(),
                    );
                }
            }
            if i == TARGET && !self.validated && m.enclave_host_ref().get(&EID).is_some() {
                return Err("G1: the target framework holds the enclave without an order".into());
            }
        }
        for b in &self.pool {
            let (body, want) = match Message::decode(b) {
                Ok(Message::Release(x) | Message::Abort(x)) => (x, sms),
                Ok(Message::Active(x) | Message::Dropped(x)) => (x, smt),
                _ => continue,
            };
            let kid = Signed::parse(&body)
                .map_err(|e| format!("G1: proof does not parse: {e:?}"))?
                .kid;
            if kid != want {
                return Err(format!("G1: {} signed by the wrong SM", msg_name(b)));
            }
            let (rid, eid, epoch) = match Message::decode(b) {
                Ok(Message::Release(_) | Message::Abort(_)) => {
                    let d: Decision =
                        verify_as(&body, &kid).map_err(|e| format!("G1: bad decision {e:?}"))?;
                    (d.request_id, d.enclave_id, d.epoch)
                }
                _ => {
                    let a: TargetAck =
                        verify_as(&body, &kid).map_err(|e| format!("G1: bad ack {e:?}"))?;
                    (a.request_id, a.enclave_id, a.epoch)
                }
            };
            if rid != RID || eid != EID || epoch > MAX_EPOCH {
                return Err(format!(
                    "G1: {} for request {rid:02x?} epoch {epoch} was never ordered",
                    msg_name(b)
                ));
            }
        }
        let ledger = Sds::from_bytes(sds_key(), &self.sds_saved)
            .map_err(|e| format!("ledger does not load: {e:?}"))?;
        let entry = ledger.enclave(&EID).ok_or("ledger lost the enclave")?;
        if entry.epoch > MAX_EPOCH {
            return Err(format!("G1: ledger epoch {}", entry.epoch));
        }
        if entry.location == self.hosts[TARGET].id
            && !self
                .pool
                .iter()
                .any(|b| matches!(msg_name(b), "RELEASE" | "ACTIVE"))
        {
            return Err("G1: the ledger moved to the target without RELEASE or ACTIVE".into());
        }
        Ok(())
    }

    /// G5: every older blob presented at a restart is refused as Rollback.
    pub fn check_g5(
        &mut self,
        memo: &Mutex<HashSet<[u8; 32]>>,
        probes: &AtomicU64,
    ) -> Result<(), String> {
        for i in 0..self.hosts.len() {
            let h = &mut self.hosts[i];
            if h.torn || h.armed {
                continue; // a torn commit has two legitimate blobs: see journal.rs's own check
            }
            let Some(m) = h.mon.as_mut() else { continue };
            let fw = m.enclave_host_ref().clone();
            let p = m.platform().clone();
            let current = p.journal.clone().unwrap_or_default();
            let hist: BTreeSet<Vec<u8>> = p.journal_history.iter().cloned().collect();
            for old in hist {
                if old == current {
                    continue;
                }
                let mut key = Vec::new();
                key.push(i as u8);
                key.extend_from_slice(&p.counter.to_le_bytes());
                key.extend_from_slice(&h32(&old));
                key.extend_from_slice(&h32(&current));
                let fresh = memo
                    .lock()
                    .map(|mut m| m.insert(h32(&key)))
                    .unwrap_or(false);
                if !fresh {
                    continue;
                }
                probes.fetch_add(1, Ordering::Relaxed);
                let mut q = p.clone();
                q.journal = Some(old);
                match Monitor::start_or_return(q, fw.clone(), identity(i), config()) {
                    Err(f) if f.error == Error::Rollback => {}
                    Err(f) => {
                        return Err(format!(
                            "G5: {} given an older journal blob fails with {:?}, not Rollback",
                            party_name(i as u8),
                            f.error
                        ))
                    }
                    Ok(adopted) => {
                        let honest = Monitor::start(p.clone(), fw.clone(), identity(i), config())
                            .map_err(|e| format!("G5: honest probe fails: {e:?}"))?;
                        if adopted.status(&EID) != honest.status(&EID) {
                            return Err(format!(
                                "G5 ROLLBACK: {} adopted an older journal blob ({} instead of {})",
                                party_name(i as u8),
                                state_name(adopted.status(&EID)),
                                state_name(honest.status(&EID))
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// State continuity (docs/protocol.md §8.5): at every new journal state
    /// of each monitor, a copy restarted from it (the real monitor is left
    /// alone) is handed checkpoints a host could keep and present:
    /// * the one committed at deployment: it opens, byte-exact, only at the
    ///   source and only while the source holds the enclave (running or
    ///   frozen); anywhere else, or once the enclave has migrated, it is
    ///   refused;
    /// * every checkpoint earlier probes sealed and committed, at either
    ///   monitor, at other states and epochs (older and other hosts'
    ///   ones): always refused, never opened;
    /// * one it seals and does not commit (a swap): refused; an older seal
    ///   handed to commit after a newer one: refused; the newer one commits
    ///   and then only it opens.
    ///
    /// Each refusal leaves the enclave's state and epoch as they were.
    pub fn check_checkpoints(
        &mut self,
        memo: &Mutex<HashSet<[u8; 32]>>,
        pool: &Mutex<Vec<Vec<u8>>>,
        probes: &AtomicU64,
    ) -> Result<(), String> {
        use EnclaveState as S;
        let seed = SEED.get_or_init(Seed::build).as_ref()?;
        let refused = |e: &Error| {
            matches!(
                e,
                Error::StaleCheckpoint
                    | Error::Unseal
                    | Error::Migrated
                    | Error::InvalidState
                    | Error::UnknownEnclave
            )
        };
        for i in 0..self.hosts.len() {
            let h = &mut self.hosts[i];
            if h.torn || h.armed {
                continue; // as for G5: two legitimate journals
            }
            let Some(m) = h.mon.as_mut() else { continue };
            let p = m.platform().clone();
            let mut key = b"checkpoint".to_vec();
            key.push(i as u8);
            key.extend_from_slice(&p.counter.to_le_bytes());
            key.extend_from_slice(&h32(&p.journal.clone().unwrap_or_default()));
            let fresh = memo
                .lock()
                .map(|mut m| m.insert(h32(&key)))
                .unwrap_or(false);
            if !fresh {
                continue;
            }
            probes.fetch_add(1, Ordering::Relaxed);
            let who = party_name(i as u8);
            let fw = m.enclave_host_ref().clone();
            let mut q = Monitor::start(p.clone(), fw, identity(i), config())
                .map_err(|e| format!("checkpoint probe: {who} does not restart: {e:?}"))?;
            let before = q.status(&EID);
            let holds = matches!(before, Some(s) if matches!(s.state, S::Running | S::Frozen));

            // The deployment checkpoint.
            match q.restore_checkpoint(&EID, &seed.checkpoint) {
                Ok(plain) if i == SOURCE && holds => {
                    if plain[..] != self.img.state[..] {
                        return Err("CHECKPOINT: the committed checkpoint opens to other bytes".into());
                    }
                }
                Ok(_) => {
                    return Err(format!(
                        "CHECKPOINT ROLLBACK: {who} opened the source's deployment checkpoint in state {}",
                        state_name(before)
                    ))
                }
                Err(e) if i == SOURCE && holds => {
                    return Err(format!(
                        "CHECKPOINT LOST: the source holds the enclave ({}) and its committed checkpoint fails with {e:?}",
                        state_name(before)
                    ))
                }
                Err(e) if !refused(&e) => {
                    return Err(format!("checkpoint: {who} refuses a checkpoint with {e:?}"))
                }
                Err(_) => {}
            }

            // Every checkpoint an earlier probe committed: older, or another host's.
            let seen: Vec<Vec<u8>> = pool.lock().map(|p| p.clone()).unwrap_or_default();
            for blob in &seen {
                match q.restore_checkpoint(&EID, blob) {
                    Ok(_) => {
                        return Err(format!(
                            "CHECKPOINT ROLLBACK: {who} opened a checkpoint it never committed (state {})",
                            state_name(before)
                        ))
                    }
                    Err(e) if !refused(&e) => {
                        return Err(format!("checkpoint: {who} refuses a checkpoint with {e:?}"))
                    }
                    Err(_) => {}
                }
            }

            // A framework's own round: seal a, seal b, commit.
            let tag = format!("{who} at counter {}", p.counter);
            let (ia, ib) = (format!("a: {tag}"), format!("b: {tag}"));
            let a = match q.seal_checkpoint(&EID, ia.as_bytes()) {
                Ok(a) => a,
                Err(e)
                    if refused(&e)
                        && !matches!(before, Some(s) if matches!(s.state, S::Running | S::Frozen | S::Pending)) =>
                {
                    continue;
                }
                Err(e) => {
                    return Err(format!(
                        "checkpoint: {who} cannot seal a checkpoint in state {}: {e:?}",
                        state_name(before)
                    ))
                }
            };
            if q.restore_checkpoint(&EID, &a) != Err(Error::StaleCheckpoint) {
                return Err(format!(
                    "CHECKPOINT SWAP: {who} opens a checkpoint sealed but never committed"
                ));
            }
            let b = q
                .seal_checkpoint(&EID, ib.as_bytes())
                .map_err(|e| format!("checkpoint: {who}: second seal: {e:?}"))?;
            if q.commit_checkpoint(&EID, &a) != Err(Error::StaleCheckpoint) {
                return Err(format!(
                    "CHECKPOINT SWAP: {who} commits an older seal after a newer one"
                ));
            }
            q.commit_checkpoint(&EID, &b)
                .map_err(|e| format!("checkpoint: {who}: commit: {e:?}"))?;
            match q.restore_checkpoint(&EID, &b) {
                Ok(plain) if plain[..] == *ib.as_bytes() => {}
                other => {
                    return Err(format!(
                        "checkpoint: {who}: the committed checkpoint does not open: {:?}",
                        other.map(|_| "other bytes")
                    ))
                }
            }
            for old in [&a, &seed.checkpoint] {
                if q.restore_checkpoint(&EID, old) != Err(Error::StaleCheckpoint) {
                    return Err(format!(
                        "CHECKPOINT ROLLBACK: {who} opens an older checkpoint after a newer commit"
                    ));
                }
            }
            if q.status(&EID) != before {
                return Err(format!(
                    "checkpoint: {who}: checkpoints moved the enclave from {} to {}",
                    state_name(before),
                    state_name(q.status(&EID))
                ));
            }
            if let Ok(mut pl) = pool.lock() {
                for blob in [a, b] {
                    if pl.len() < MAX_CHECKPOINT_POOL && !pl.contains(&blob) {
                        pl.push(blob);
                    }
                }
            }
        }
        Ok(())
    }

    /// Deliver everything in flight, faithfully, until nothing moves.
    fn flush(&mut self, budget: &mut usize) -> Result<(), String> {
        loop {
            if *budget == 0 {
                return Err("G3: the world does not quiesce (message storm)".into());
            }
            let a = if !self.pipe[0].is_empty() {
                Action::Pipe(0)
            } else if !self.pipe[1].is_empty() {
                Action::Pipe(1)
            } else if !self.net.is_empty() {
                Action::Deliver(0)
            } else {
                return Ok(());
            };
            *budget -= 1;
            self.apply(a)?;
            self.check_g2()?;
        }
    }

    /// G3: the faults stop; drive to quiescence; exactly one copy, byte-exact.
    /// Returns the host the enclave ends on.
    pub fn complete(&mut self) -> Result<usize, String> {
        for i in 0..self.hosts.len() {
            let h = &mut self.hosts[i];
            h.armed = false;
            let mut poisoned = h.torn;
            if let Some(m) = h.mon.as_mut() {
                m.platform().fail_next_increment = false;
                poisoned |= m.handle_sds(&[]) == Err(Error::Storage);
            }
            if poisoned {
                // The operator restarts a monitor that lost its storage.
                self.note(format!(
                    "(faults stop) restart poisoned {}",
                    party_name(i as u8)
                ));
                self.crash(i, false)?;
                self.drain();
            }
        }
        let mut budget = 2000;
        let mut settled = false;
        for _ in 0..40 {
            self.flush(&mut budget)?;
            let idle = self
                .hosts
                .iter()
                .all(|h| h.mon.as_ref().is_some_and(|m| !m.in_flight()));
            if idle && self.sds.is_settled_all() {
                let before = self.sds_saved.clone();
                self.apply(Action::Audit)?;
                self.flush(&mut budget)?;
                if self.sds_saved == before {
                    settled = true;
                    break;
                }
                continue;
            }
            self.apply(Action::Tick)?;
            self.check_g2()?;
            self.apply(Action::Resolve)?;
        }
        if !settled {
            let copies = match self.check_exactly_one() {
                Ok(_) => "one copy runs".to_string(),
                Err(e) => e,
            };
            return Err(format!(
                "G3: no quiescence after 40 rounds of delivery, resolution and timeouts; {copies}"
            ));
        }
        self.check_exactly_one()
    }

    fn check_exactly_one(&self) -> Result<usize, String> {
        let running: Vec<usize> = (0..self.hosts.len())
            .filter(|&i| {
                self.hosts[i]
                    .mon
                    .as_ref()
                    .is_some_and(|m| m.enclave_host_ref().is_running(&EID))
            })
            .collect();
        if running.len() != 1 {
            let st: Vec<String> = self
                .hosts
                .iter()
                .map(|h| state_name(h.mon.as_ref().and_then(|m| m.status(&EID))))
                .collect();
            return Err(format!(
                "G3: after quiescence {} running copies (hosts {running:?}; SMS {}, SMT {})",
                running.len(),
                st[0],
                st[1]
            ));
        }
        let i = running[0];
        let m = self.hosts[i].mon.as_ref().ok_or("down")?;
        let st = m.status(&EID).ok_or("G3: running copy without record")?;
        if st.state != EnclaveState::Running {
            return Err(format!("G3: running copy in state {:?}", st.state));
        }
        let e = m.enclave_host_ref().get(&EID).ok_or("G3: no image")?;
        if e.code != self.img.code || e.state != self.img.state {
            return Err("G3: the image is not byte-exact".into());
        }
        let plain = m
            .unseal_data(&EID, &e.sealed)
            .map_err(|x| format!("G3: sealed data does not open on its host: {x:?}"))?;
        if plain[..] != self.img.sealed[..] {
            return Err("G3: sealed data differs".into());
        }
        let entry = self.sds.enclave(&EID).ok_or("ledger lost the enclave")?;
        if entry.location != self.hosts[i].id || entry.epoch != st.epoch {
            return Err(format!(
                "G3: ledger says host {:?} epoch {}, the copy runs on {} at epoch {}",
                self.idx(&entry.location),
                entry.epoch,
                party_name(i as u8),
                st.epoch
            ));
        }
        Ok(i)
    }
}

#[derive(Clone)]
struct Node {
    init: u8,
    trace: Vec<Action>,
    faults: u8,
    retries: u8,
}

/// The first violation: the trace, what broke, whether in the G3 completion.
type Found = (Node, String, bool);

/// Fingerprint → the (faults, retries) budgets it was reached with (Pareto-minimal).
type Visited = HashMap<[u8; 32], Vec<(u8, u8)>>;

/// What the workers share.
struct Shared<'a> {
    bounds: &'a Bounds,
    variant: Variant,
    visited: Mutex<Visited>,
    memo: Mutex<HashSet<[u8; 32]>>,
    checkpoints: Mutex<Vec<Vec<u8>>>,
    stop: AtomicBool,
    found: Mutex<Option<Found>>,
    states: AtomicUsize,
    transitions: AtomicU64,
    steps: AtomicU64,
    g3_runs: AtomicU64,
    g5_probes: AtomicU64,
    checkpoint_probes: AtomicU64,
    max_depth: AtomicUsize,
    truncated: AtomicBool,
    by_kind: [AtomicU64; 11],
    ends: [AtomicU64; 2],
}

impl Shared<'_> {
    fn report(&self, n: &Node, violation: String, in_completion: bool) {
        if let Ok(mut f) = self.found.lock() {
            if f.is_none() {
                *f = Some((n.clone(), violation, in_completion));
            }
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Execute one trace: dedup, check, expand. Returns its children.
    fn process(&self, n: &Node) -> Vec<Node> {
        let t = self.transitions.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(a) = n.trace.last() {
            self.by_kind[a.kind()].fetch_add(1, Ordering::Relaxed);
        }
        self.steps
            .fetch_add(n.trace.len() as u64, Ordering::Relaxed);
        let mut sim = match Sim::replay(n.init, &n.trace, self.variant, false) {
            Ok(s) => s,
            Err(v) => {
                self.report(n, v, false);
                return Vec::new();
            }
        };
        let fp = sim.fingerprint();
        // The dedup rests on replays being deterministic (TLS bytes are not:
        // rustls draws its own randomness; the fingerprint leaves them out).
        if t <= 64 || t & 0x3ff == 0 {
            let again =
                Sim::replay(n.init, &n.trace, self.variant, false).map(|mut s| s.fingerprint());
            if again.as_ref().ok() != Some(&fp) {
                self.report(
                    n,
                    "model: a replay of this trace reached another state".into(),
                    false,
                );
                return Vec::new();
            }
        }
        let new = {
            let Ok(mut visited) = self.visited.lock() else {
                return Vec::new();
            };
            let seen = visited.entry(fp).or_default();
            if seen.iter().any(|&(f, r)| f <= n.faults && r <= n.retries) {
                return Vec::new();
            }
            seen.push((n.faults, n.retries));
            seen.len() == 1
        };
        if new {
            let k = self.states.fetch_add(1, Ordering::Relaxed) + 1;
            self.max_depth.fetch_max(n.trace.len(), Ordering::Relaxed);
            if self.bounds.max_states > 0 && k >= self.bounds.max_states {
                self.truncated.store(true, Ordering::SeqCst);
                self.stop.store(true, Ordering::SeqCst);
            }
            let checks = sim
                .check_g2()
                .and_then(|()| sim.check_g1())
                .and_then(|()| sim.check_g5(&self.memo, &self.g5_probes))
                .and_then(|()| {
                    sim.check_checkpoints(&self.memo, &self.checkpoints, &self.checkpoint_probes)
                });
            if let Err(v) = checks {
                self.report(n, v, false);
                return Vec::new();
            }
        }
        let mut children = Vec::new();
        let leaf = n.trace.len() >= self.bounds.depth;
        if !leaf {
            let faults_left = (n.faults as usize) < self.bounds.faults;
            let retries_left = (n.retries as usize) < self.bounds.retries;
            for a in sim.enabled(faults_left, retries_left) {
                let mut trace = n.trace.clone();
                trace.push(a);
                children.push(Node {
                    init: n.init,
                    trace,
                    faults: n.faults + u8::from(a.is_fault(&sim)),
                    retries: n.retries + u8::from(a.is_retry()),
                });
            }
        }
        if new && (self.bounds.g3_everywhere || leaf) {
            self.g3_runs.fetch_add(1, Ordering::Relaxed);
            match sim.complete() {
                Ok(h) => {
                    self.ends[h.min(1)].fetch_add(1, Ordering::Relaxed);
                }
                Err(v) => self.report(n, v, true),
            }
        }
        children
    }
}

/// Worker threads: REWIRE_MODEL_THREADS, default 1. (REWIRE_MODEL_PROGRESS
/// set: a line per BFS level on stderr.)
fn threads() -> usize {
    std::env::var("REWIRE_MODEL_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .max(1)
}

/// Breadth-first exploration of every trace within the bounds, level by
/// level (so a counterexample found is among the shortest), on
/// `REWIRE_MODEL_THREADS` worker threads.
pub fn explore(bounds: &Bounds, variant: Variant) -> Report {
    let t0 = Instant::now();
    let sh = Shared {
        bounds,
        variant,
        visited: Mutex::new(HashMap::new()),
        memo: Mutex::new(HashSet::new()),
        checkpoints: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        found: Mutex::new(None),
        states: AtomicUsize::new(0),
        transitions: AtomicU64::new(0),
        steps: AtomicU64::new(0),
        g3_runs: AtomicU64::new(0),
        g5_probes: AtomicU64::new(0),
        checkpoint_probes: AtomicU64::new(0),
        max_depth: AtomicUsize::new(0),
        truncated: AtomicBool::new(false),
        by_kind: Default::default(),
        ends: Default::default(),
    };
    let mut level: Vec<Node> = [0u8, 1]
        .iter()
        .map(|&init| Node {
            init,
            trace: Vec::new(),
            faults: 0,
            retries: 0,
        })
        .collect();
    let workers = threads();
    let progress = std::env::var_os("REWIRE_MODEL_PROGRESS").is_some();
    let mut depth = 0usize;
    while !level.is_empty() && !sh.stop.load(Ordering::SeqCst) {
        let next = Mutex::new(Vec::new());
        let at = AtomicUsize::new(0);
        std::thread::scope(|sc| {
            for _ in 0..workers {
                sc.spawn(|| loop {
                    let k = at.fetch_add(1, Ordering::Relaxed);
                    if k >= level.len() || sh.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let children = sh.process(&level[k]);
                    if let Ok(mut nx) = next.lock() {
                        nx.extend(children);
                    }
                });
            }
        });
        level = next.into_inner().unwrap_or_default();
        depth += 1;
        if progress {
            let _ = writeln!(
                std::io::stderr(),
                "model: depth {depth} done: {} states, {} transitions, {} traces next, {:.0} s",
                sh.states.load(Ordering::Relaxed),
                sh.transitions.load(Ordering::Relaxed),
                level.len(),
                t0.elapsed().as_secs_f64()
            );
        }
        // Same order whatever the threads did: the run is reproducible.
        level.sort_by(|a, b| (a.init, &a.trace).cmp(&(b.init, &b.trace)));
    }
    let mut rep = Report {
        states: sh.states.load(Ordering::SeqCst),
        transitions: sh.transitions.load(Ordering::SeqCst),
        steps: sh.steps.load(Ordering::SeqCst),
        g3_runs: sh.g3_runs.load(Ordering::SeqCst),
        g5_probes: sh.g5_probes.load(Ordering::SeqCst),
        checkpoint_probes: sh.checkpoint_probes.load(Ordering::SeqCst),
        checkpoints: sh.checkpoints.lock().map(|p| p.len()).unwrap_or(0),
        max_depth: sh.max_depth.load(Ordering::SeqCst),
        truncated: sh.truncated.load(Ordering::SeqCst),
        seconds: 0.0,
        by_kind: sh.by_kind.each_ref().map(|n| n.load(Ordering::SeqCst)),
        ended_at: sh.ends.each_ref().map(|n| n.load(Ordering::SeqCst)),
        counterexample: None,
    };
    let found = sh.found.into_inner().ok().flatten();
    if let Some((n, violation, in_completion)) = found {
        let steps = match Sim::replay(n.init, &n.trace, variant, true) {
            Ok(mut s) => {
                // Re-run the failing completion verbosely: the trace shows its tail too.
                if in_completion {
                    s.steps
                        .push("  -- faults stop; drive to quiescence --".into());
                    let _ = s.complete();
                }
                s.steps
            }
            Err(e) => vec![e],
        };
        rep.counterexample = Some(Counterexample {
            init: n.init,
            trace: n.trace,
            violation,
            in_completion,
            steps,
        });
    }
    rep.seconds = t0.elapsed().as_secs_f64();
    rep
}
