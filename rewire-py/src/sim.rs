//! rewire.sim: simulated security monitors and an adversarial network.
//!
//! Every host runs the real `rewire_core::Monitor` over the software platform
//! and enclave framework (`rewire_core::soft`). The network is a queue of
//! packets that a test script controls: deliver, drop, duplicate, reorder,
//! tamper, per-packet hooks or a seeded random fault policy; any host can be
//! crashed and restarted from its journal, and its storage rolled back. This
//! mirrors the Rust test world (tests/src/lib.rs): it routes bytes and keeps
//! score, and holds no protocol logic.

use std::collections::VecDeque;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use rewire_core::soft::{Clock, SoftHost, SoftPlatform};
use rewire_core::wire::Message;
use rewire_core::{
    Config, Dest, EnclaveId, EnclaveState, Error, Event, HostId, LedgerEvent as CoreEvent, Monitor,
    PublicKey, RequestId, Secret,
};

use crate::errors::{error_name, to_py, IntoPy};
use crate::keys::{os_random32, HostIdentity, SIM_SM_MEASUREMENT};
use crate::sds::{arr, bytes, host_arg, ledger_event, LedgerEvent, Sds};

type Mon = Monitor<SoftPlatform, SoftHost>;

struct HostSlot {
    id: HostId,
    secret: Secret,
    sm: [u8; 32],
    monitor: Option<Mon>,
    /// Platform and framework of a crashed monitor (they survive the crash).
    parked: Option<(SoftPlatform, SoftHost)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum To {
    Sds,
    Host { idx: usize, conn: Option<RequestId> },
}

#[derive(Clone, Debug)]
struct Pkt {
    from: Option<usize>,
    to: To,
    bytes: Vec<u8>,
}

/// xorshift64* for seeded fault schedules.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next_u64() >> 11) as f64 / ((1u64 << 53) as f64)) < p
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % (n.max(1) as u64)) as usize
    }
}

#[derive(Default, Clone, Copy)]
struct Faults {
    drop: f64,
    duplicate: f64,
    reorder: f64,
    corrupt: f64,
}

impl Faults {
    fn any(&self) -> bool {
        self.drop > 0.0 || self.duplicate > 0.0 || self.reorder > 0.0 || self.corrupt > 0.0
    }
}

/// A packet on the simulated network, as a script sees it.
#[pyclass(module = "rewire.sim", frozen, get_all)]
pub struct Packet {
    /// Sending host, or None for the SDS.
    pub source: Option<Py<PyBytes>>,
    /// Receiving host, or None for the SDS.
    pub dest: Option<Py<PyBytes>>,
    /// The migration channel for monitor-to-monitor TLS records, else None.
    pub channel: Option<Py<PyBytes>>,
    /// "order", "query", "release", "abort", "active", "dropped" for SDS-side
    /// traffic, "tls" for records between monitors, "garbage" otherwise.
    pub kind: &'static str,
    pub data: Py<PyBytes>,
}

#[pymethods]
impl Packet {
    fn __repr__(&self, py: Python<'_>) -> String {
        let h = |b: &Option<Py<PyBytes>>| match b {
            None => "SDS".to_string(),
            Some(b) => crate::sds::hex(&b.as_bytes(py)[..4]),
        };
        format!(
            "Packet({} -> {}, kind={}, {} bytes)",
            h(&self.source),
            h(&self.dest),
            self.kind,
            self.data.as_bytes(py).len()
        )
    }
}

fn kind_of(p: &Pkt) -> &'static str {
    if matches!(p.to, To::Host { conn: Some(_), .. }) {
        return "tls";
    }
    match Message::decode(&p.bytes) {
        Ok(Message::Order(_)) => "order",
        Ok(Message::Query { .. }) => "query",
        Ok(Message::Release(_)) => "release",
        Ok(Message::Abort(_)) => "abort",
        Ok(Message::Active(_)) => "active",
        Ok(Message::Dropped(_)) => "dropped",
        Ok(_) => "message",
        Err(_) => "garbage",
    }
}

pub fn event_name(e: Event) -> &'static str {
    match e {
        Event::Validated => "validated",
        Event::Frozen => "frozen",
        Event::ChannelUp => "channel_up",
        Event::Offered => "offered",
        Event::OfferAccepted => "offer_accepted",
        Event::TargetVerified => "target_verified",
        Event::StreamDone => "stream_done",
        Event::PendingReady => "pending_ready",
        Event::Committed => "committed",
        Event::Activated => "activated",
        Event::Aborted(_) => "aborted",
        Event::Dropped => "dropped",
    }
}

pub fn describe_event(e: Event) -> String {
    match e {
        Event::Validated => "SMS: request verified (SDS signature, names me as source, epoch, deadline, target ATL >= policy)".into(),
        Event::Frozen => "SMS: FROZEN journaled, enclave paused".into(),
        Event::ChannelUp => "SMS: TLS 1.3 handshake done (mutual raw public keys = SM keys)".into(),
        Event::Offered => "SMS: OFFER sent (request, endorsements, policy, SM certificate, sizes)".into(),
        Event::OfferAccepted => "SMT: OFFER verified; RECEIVING journaled; ACCEPT sent".into(),
        Event::TargetVerified => "SMS: target evidence verified; streaming code, state, unsealed data".into(),
        Event::StreamDone => "SMS: image sent; END with SHA-256 digests".into(),
        Event::PendingReady => "SMT: digests and measurement verified, data re-sealed; PENDING journaled; READY sent".into(),
        Event::Committed => "SMS: READY verified; MIGRATED journaled; source copy destroyed; RELEASE sent".into(),
        Event::Activated => "SMT: RELEASE verified; ACTIVE journaled; enclave runs".into(),
        Event::Aborted(e) => format!("SMS: aborted ({e}); ABORTED journaled; enclave resumed"),
        Event::Dropped => "SMT: incoming copy dropped".into(),
    }
}

fn state_name(s: EnclaveState) -> &'static str {
    match s {
        EnclaveState::Running => "running",
        EnclaveState::Frozen => "frozen",
        EnclaveState::Migrated => "migrated",
        EnclaveState::Receiving => "receiving",
        EnclaveState::Pending => "pending",
        EnclaveState::Gone => "gone",
    }
}

fn invalid() -> PyErr {
    to_py(Error::InvalidArgument)
}

// Durable host state (journal, counter, enclave images) for save_host/add_host.
const STATE_MAGIC: &[u8; 8] = b"RWSIMH01";

fn put(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);
impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(Error::Decode);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| Error::Decode)?,
        ))
    }
    fn blob(&mut self) -> Result<Vec<u8>, Error> {
        let n = usize::try_from(self.u64()?).map_err(|_| Error::Decode)?;
        Ok(self.take(n)?.to_vec())
    }
}

fn encode_state(p: &SoftPlatform, h: &SoftHost) -> Vec<u8> {
    let mut out = STATE_MAGIC.to_vec();
    out.extend_from_slice(&p.counter.to_le_bytes());
    match &p.journal {
        None => out.push(0),
        Some(j) => {
            out.push(1);
            put(&mut out, j);
        }
    }
    out.extend_from_slice(&(h.enclaves.len() as u64).to_le_bytes());
    for (id, e) in &h.enclaves {
        out.extend_from_slice(id);
        out.push(e.running as u8);
        put(&mut out, &e.code);
        put(&mut out, &e.state);
        put(&mut out, &e.sealed);
    }
    out
}

fn decode_state(b: &[u8], p: &mut SoftPlatform, h: &mut SoftHost) -> Result<(), Error> {
    let mut r = Reader(b);
    if r.take(8)? != STATE_MAGIC {
        return Err(Error::UnsupportedVersion);
    }
    p.counter = r.u64()?;
    p.journal = match r.take(1)?[0] {
        0 => None,
        _ => Some(r.blob()?),
    };
    let n = r.u64()?;
    for _ in 0..n {
        let id: EnclaveId = r.take(16)?.try_into().map_err(|_| Error::Decode)?;
        let running = r.take(1)?[0] != 0;
        let (code, state, sealed) = (r.blob()?, r.blob()?, r.blob()?);
        h.load(id, code, state, sealed);
        if let Some(e) = h.enclaves.get_mut(&id) {
            e.running = running;
        }
    }
    if !r.0.is_empty() {
        return Err(Error::TrailingBytes);
    }
    Ok(())
}

/// A fleet of simulated SM hosts on an adversarial network.
///
/// With an `Sds`, the fleet delivers SDS-bound proofs to it and can register,
/// deploy and order by itself (a whole world in one object). Without one
/// (give `sds_public_key`), SDS-bound messages wait in an inbox that
/// `receive()` hands out, and `send()` injects SDS-side messages: that is the
/// transport an external SDS (rewire.Orchestrator) drives.
#[pyclass(module = "rewire.sim")]
pub struct Fleet {
    clock: Clock,
    wall0: u64,
    sds_key: PublicKey,
    timeout_ms: u64,
    seed: u64,
    sds: Option<Py<Sds>>,
    hosts: Vec<HostSlot>,
    net: VecDeque<Pkt>,
    inbox: VecDeque<Vec<u8>>,
    errors: Vec<(Option<usize>, Error)>,
    events: Vec<(usize, RequestId, Event)>,
    ledger: Vec<CoreEvent>,
    faults: Faults,
    rng: Rng,
    hook: Option<Py<PyAny>>,
    delivered: u64,
}

impl Fleet {
    fn config(&self) -> Config {
        let mut c = Config::new(self.sds_key);
        c.timeout_ms = self.timeout_ms;
        c
    }

    fn idx(&self, host: &[u8]) -> PyResult<usize> {
        let h = host_arg(host)?;
        self.hosts
            .iter()
            .position(|s| s.id == h)
            .ok_or_else(invalid)
    }

    fn index_of(&self, h: &HostId) -> Option<usize> {
        self.hosts.iter().position(|s| &s.id == h)
    }

    fn mon(&mut self, i: usize) -> PyResult<&mut Mon> {
        self.hosts[i]
            .monitor
            .as_mut()
            .ok_or_else(|| to_py(Error::InvalidState))
    }

    fn framework(&self, i: usize) -> Option<&SoftHost> {
        match (&self.hosts[i].monitor, &self.hosts[i].parked) {
            (Some(m), _) => Some(m.enclave_host_ref()),
            (None, Some((_, h))) => Some(h),
            _ => None,
        }
    }

    fn with_sds<T>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut rewire_core::Sds) -> Result<T, Error>,
    ) -> PyResult<T> {
        let s = self
            .sds
            .as_ref()
            .ok_or_else(|| to_py(Error::InvalidState))?;
        let mut b = s.bind(py).try_borrow_mut()?;
        f(&mut b.inner).py_err()
    }

    fn now_wall(&self) -> u64 {
        self.wall0 + self.clock.now_ms() / 1000
    }

    fn drain_events(&mut self, i: usize) {
        if let Some(m) = self.hosts[i].monitor.as_mut() {
            while let Some((rid, e)) = m.poll_event() {
                if let Event::Aborted(why) = e {
                    self.errors.push((Some(i), why));
                }
                self.events.push((i, rid, e));
            }
        }
    }

    /// Move every monitor's pending outputs (at most `per_host` each) onto the network.
    fn collect(&mut self, per_host: usize) -> usize {
        let mut n = 0;
        for i in 0..self.hosts.len() {
            for _ in 0..per_host {
                let Some(m) = self.hosts[i].monitor.as_mut() else {
                    break;
                };
                let Some(o) = m.poll_output() else { break };
                self.drain_events(i);
                let to = match o.dest {
                    Dest::Sds => To::Sds,
                    Dest::Peer { host, conn } => match self.index_of(&host) {
                        Some(idx) => To::Host {
                            idx,
                            conn: Some(conn),
                        },
                        None => continue,
                    },
                };
                self.net.push_back(Pkt {
                    from: Some(i),
                    to,
                    bytes: o.bytes,
                });
                n += 1;
            }
        }
        n
    }

    fn deliver(&mut self, py: Python<'_>, p: Pkt) {
        self.delivered += 1;
        match p.to {
            To::Sds => match &self.sds {
                None => self.inbox.push_back(p.bytes),
                Some(s) => {
                    let r = match s.bind(py).try_borrow_mut() {
                        Ok(mut b) => b.inner.handle(&p.bytes),
                        Err(_) => Err(Error::Busy),
                    };
                    match r {
                        Ok(ev) => self.ledger.push(ev),
                        Err(e) => self.errors.push((None, e)),
                    }
                }
            },
            To::Host { idx, conn } => {
                let from_id = p.from.map(|f| self.hosts[f].id);
                let Some(m) = self.hosts[idx].monitor.as_mut() else {
                    return;
                };
                let r = match conn {
                    None => m.handle_sds(&p.bytes),
                    Some(c) => m.handle_peer(from_id.unwrap_or(m.host_id()), c, &p.bytes),
                };
                self.drain_events(idx);
                if let Err(e) = r {
                    self.errors.push((Some(idx), e));
                }
            }
        }
    }

    fn to_packet(&self, py: Python<'_>, p: &Pkt) -> Packet {
        let (dest, channel) = match &p.to {
            To::Sds => (None, None),
            To::Host { idx, conn } => (
                Some(bytes(py, &self.hosts[*idx].id.0)),
                conn.as_ref().map(|c| bytes(py, c)),
            ),
        };
        Packet {
            source: p.from.map(|f| bytes(py, &self.hosts[f].id.0)),
            dest,
            channel,
            kind: kind_of(p),
            data: bytes(py, &p.bytes),
        }
    }

    /// Apply the hook and the fault policy to one packet, then deliver what remains.
    fn step_one(&mut self, py: Python<'_>, faithful: bool) -> PyResult<bool> {
        self.collect(4);
        let Some(mut p) = self.net.pop_front() else {
            return Ok(self.collect(4) > 0);
        };
        if !faithful {
            if let Some(hook) = self.hook.as_ref().map(|h| h.clone_ref(py)) {
                let pk = Py::new(py, self.to_packet(py, &p))?;
                let r = hook.call1(py, (pk,))?;
                let r = r.bind(py);
                if r.is_none() || r.extract::<bool>().ok() == Some(true) {
                    // deliver as is
                } else if r.extract::<bool>().ok() == Some(false) {
                    return Ok(true);
                } else if let Ok(s) = r.extract::<String>() {
                    match s.as_str() {
                        "drop" => return Ok(true),
                        "deliver" => {}
                        "defer" => {
                            self.net.push_back(p);
                            return Ok(true);
                        }
                        _ => return Err(invalid()),
                    }
                } else if let Ok(b) = r.cast::<PyBytes>() {
                    p.bytes = b.as_bytes().to_vec();
                } else if let Ok(l) = r.cast::<PyList>() {
                    for item in l.iter() {
                        let b: Vec<u8> = item.cast::<PyBytes>()?.as_bytes().to_vec();
                        self.deliver(
                            py,
                            Pkt {
                                bytes: b,
                                ..p.clone()
                            },
                        );
                    }
                    return Ok(true);
                } else {
                    return Err(invalid());
                }
            }
            if self.faults.any() {
                let f = self.faults;
                if self.rng.chance(f.drop) {
                    return Ok(true);
                }
                if self.rng.chance(f.reorder) && !self.net.is_empty() {
                    let at = self.rng.below(self.net.len() + 1);
                    self.net.insert(at, p);
                    return Ok(true);
                }
                if self.rng.chance(f.duplicate) {
                    self.net.push_back(p.clone());
                }
                if self.rng.chance(f.corrupt) && !p.bytes.is_empty() {
                    let at = self.rng.below(p.bytes.len());
                    p.bytes[at] ^= 1 << self.rng.below(8);
                }
            }
        }
        self.deliver(py, p);
        Ok(true)
    }

    fn run_inner(&mut self, py: Python<'_>, faithful: bool, max_steps: u64) -> PyResult<u64> {
        let mut n = 0;
        while n < max_steps && self.step_one(py, faithful)? {
            n += 1;
        }
        Ok(n)
    }

    fn all_idle(&self) -> bool {
        self.hosts
            .iter()
            .all(|h| h.monitor.as_ref().is_none_or(|m| !m.in_flight()))
    }

    fn tick_all(&mut self) {
        for i in 0..self.hosts.len() {
            if let Some(m) = self.hosts[i].monitor.as_mut() {
                if let Err(e) = m.tick() {
                    self.errors.push((Some(i), e));
                }
                self.drain_events(i);
            }
        }
    }

    fn sds_snapshot(&self, py: Python<'_>) -> Vec<u8> {
        self.with_sds(py, |s| s.to_bytes()).unwrap_or_default()
    }
}

const MAX_RUN: u64 = 10_000_000;

#[pymethods]
impl Fleet {
    #[new]
    #[pyo3(signature = (sds = None, *, sds_public_key = None, wall_time = None, timeout_ms = 30000, seed = None))]
    fn new(
        py: Python<'_>,
        sds: Option<Py<Sds>>,
        sds_public_key: Option<Vec<u8>>,
        wall_time: Option<u64>,
        timeout_ms: u64,
        seed: Option<u64>,
    ) -> PyResult<Fleet> {
        let sds_key = match (&sds, sds_public_key) {
            (Some(s), None) => s.bind(py).try_borrow()?.inner.public_key(),
            (None, Some(k)) => host_arg(&k)?,
            _ => return Err(invalid()),
        };
        let wall0 = match wall_time {
            Some(w) => w,
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| invalid())?
                .as_secs(),
        };
        let seed = match seed {
            Some(s) => s,
            None => u64::from_le_bytes(
                os_random32()?.expose()[..8]
                    .try_into()
                    .map_err(|_| invalid())?,
            ),
        };
        Ok(Fleet {
            clock: Clock::default(),
            wall0,
            sds_key,
            timeout_ms,
            seed,
            sds,
            hosts: Vec::new(),
            net: VecDeque::new(),
            inbox: VecDeque::new(),
            errors: Vec::new(),
            events: Vec::new(),
            ledger: Vec::new(),
            faults: Faults::default(),
            rng: Rng::new(seed),
            hook: None,
            delivered: 0,
        })
    }

    /// Start a simulated host and return its id. With an attached SDS and an
    /// `atl`, the SDS endorses it (valid from now for a year). `identity`
    /// defaults to one derived from the fleet seed; `state` is what
    /// `save_host` returned (journal, counter and enclave images).
    #[pyo3(signature = (atl = None, *, identity = None, state = None))]
    fn add_host<'py>(
        &mut self,
        py: Python<'py>,
        atl: Option<u64>,
        identity: Option<PyRef<'_, HostIdentity>>,
        state: Option<Vec<u8>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let i = self.hosts.len();
        let (secret, sm) = match &identity {
            Some(id) => (id.secret.clone(), id.sm_measurement),
            None => {
                let mut s = [0u8; 32];
                s[..8].copy_from_slice(&self.seed.to_le_bytes());
                s[8..16].copy_from_slice(&(i as u64).to_le_bytes());
                s[16] = 0xde;
                (Secret::from_bytes(s), SIM_SM_MEASUREMENT)
            }
        };
        let ident = HostIdentity::from_secret(secret.clone(), sm)?;
        let id = ident.identity()?;
        let hid = id.host_id();
        if self.index_of(&hid).is_some() {
            return Err(to_py(Error::Busy));
        }
        if let Some(atl) = atl {
            if self.sds.is_some() {
                let cert = id.certificate().to_vec();
                let (nb, na) = (self.wall0.saturating_sub(10), self.wall0 + 86_400 * 365);
                self.with_sds(py, |s| s.endorse_host(&cert, vec![sm], atl, nb, na))?;
            }
        }
        let mut platform = SoftPlatform::new(
            self.seed.wrapping_mul(1000).wrapping_add(i as u64 + 1),
            self.clock.clone(),
            Some(self.wall0),
        );
        let mut host = SoftHost::default();
        if let Some(st) = state {
            decode_state(&st, &mut platform, &mut host).py_err()?;
        }
        let m = match Monitor::start_or_return(platform, host, id, self.config()) {
            Ok(m) => m,
            Err(f) => return Err(to_py(f.error)),
        };
        self.hosts.push(HostSlot {
            id: hid,
            secret,
            sm,
            monitor: Some(m),
            parked: None,
        });
        self.drain_events(i);
        Ok(PyBytes::new(py, &hid.0))
    }

    /// Host ids, in the order they were added.
    fn hosts(&self, py: Python<'_>) -> Vec<Py<PyBytes>> {
        self.hosts.iter().map(|h| bytes(py, &h.id.0)).collect()
    }

    /// The host's device-signed SM certificate (what the SDS endorses).
    fn certificate<'py>(&self, py: Python<'py>, host: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let i = self.idx(host)?;
        let s = &self.hosts[i];
        let id = HostIdentity::from_secret(s.secret.clone(), s.sm)?;
        let cert = id.identity()?.certificate().to_vec();
        Ok(PyBytes::new(py, &cert))
    }

    /// Load an enclave on `host` and install it under its SDS-signed policy
    /// (with an attached SDS and no `policy`, the SDS registers it first with
    /// `min_atl`). `sealed` is plaintext: the host's monitor seals it.
    /// Returns the policy.
    #[pyo3(signature = (enclave_id, code, host, *, state = Vec::new(), sealed = Vec::new(), min_atl = 0, policy = None))]
    #[allow(clippy::too_many_arguments)]
    fn deploy<'py>(
        &mut self,
        py: Python<'py>,
        enclave_id: &[u8],
        code: Vec<u8>,
        host: &[u8],
        state: Vec<u8>,
        sealed: Vec<u8>,
        min_atl: u64,
        policy: Option<Vec<u8>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let eid: EnclaveId = arr(enclave_id)?;
        let i = self.idx(host)?;
        let hid = self.hosts[i].id;
        let policy = match policy {
            Some(p) => p,
            None => {
                let m = rewire_core::crypto::sha256(&code);
                self.with_sds(py, |s| s.register_enclave(eid, m, min_atl, hid))?
            }
        };
        let m = self.mon(i)?;
        if m.enclave_host_ref().get(&eid).is_some() {
            return Err(to_py(Error::Busy));
        }
        m.enclave_host().load(eid, code, state, Vec::new());
        let r = m.install(&policy).and_then(|()| m.seal_data(&eid, &sealed));
        match r {
            Ok(blob) => {
                if let Some(e) = m.enclave_host().enclaves.get_mut(&eid) {
                    e.sealed = blob;
                }
            }
            Err(e) => {
                if m.status(&eid).is_none() {
                    m.enclave_host().enclaves.remove(&eid);
                }
                return Err(to_py(e));
            }
        }
        Ok(PyBytes::new(py, &policy))
    }

    /// The attached SDS orders a migration of `enclave_id` to `target`; the
    /// order goes onto the network to the source. Returns the request id.
    #[pyo3(signature = (enclave_id, target, *, request_id = None, deadline = None))]
    fn order<'py>(
        &mut self,
        py: Python<'py>,
        enclave_id: &[u8],
        target: &[u8],
        request_id: Option<Vec<u8>>,
        deadline: Option<u64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let eid: EnclaveId = arr(enclave_id)?;
        let t = self.idx(target)?;
        let tid = self.hosts[t].id;
        let rid: RequestId = match request_id {
            Some(r) => arr(&r)?,
            None => arr(&os_random32()?.expose()[..16])?,
        };
        let deadline = deadline.unwrap_or(self.now_wall() + 3600);
        let bytes_ = self.with_sds(py, |s| s.order(&eid, tid, rid, deadline))?;
        let loc = self.with_sds(py, |s| {
            s.enclave(&eid)
                .map(|e| e.location)
                .ok_or(Error::UnknownEnclave)
        })?;
        let src = self.index_of(&loc).ok_or_else(invalid)?;
        self.net.push_back(Pkt {
            from: None,
            to: To::Host {
                idx: src,
                conn: None,
            },
            bytes: bytes_,
        });
        Ok(PyBytes::new(py, &rid))
    }

    /// Put an SDS-side message (order, forwarded RELEASE/ABORT, query) on the wire to `host`.
    fn send(&mut self, host: &[u8], message: Vec<u8>) -> PyResult<()> {
        let idx = self.idx(host)?;
        self.net.push_back(Pkt {
            from: None,
            to: To::Host { idx, conn: None },
            bytes: message,
        });
        Ok(())
    }

    /// Without an attached SDS: the next SDS-bound message, running the
    /// network (with its faults) until one arrives or nothing moves.
    fn receive<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        loop {
            if let Some(b) = self.inbox.pop_front() {
                return Ok(Some(PyBytes::new(py, &b)));
            }
            if !self.step_one(py, false)? {
                return Ok(None);
            }
        }
    }

    /// Deliver one packet (hook and fault policy apply). False when nothing moves.
    fn step(&mut self, py: Python<'_>) -> PyResult<bool> {
        self.step_one(py, false)
    }

    /// Deliver packets until nothing moves (or `max_steps`). Returns how many.
    #[pyo3(signature = (max_steps = 10000000))]
    fn run(&mut self, py: Python<'_>, max_steps: u64) -> PyResult<u64> {
        self.run_inner(py, false, max_steps)
    }

    /// Simulated time passes (monitor timeouts, deadlines).
    fn advance(&mut self, ms: u64) {
        self.clock.advance(ms);
    }

    /// Every running monitor checks its timeouts.
    fn tick(&mut self) {
        self.tick_all();
    }

    /// Quiet period: a faithful network, time passing past the monitors'
    /// timeout, and (with an attached SDS) its resolution and audit re-sent,
    /// until nothing is in doubt. Returns the rounds used; raises
    /// StateError(Timeout) if it does not settle.
    #[pyo3(signature = (max_rounds = 400))]
    fn settle(&mut self, py: Python<'_>, max_rounds: usize) -> PyResult<usize> {
        for round in 0..max_rounds {
            self.run_inner(py, true, MAX_RUN)?;
            let idle = self.all_idle();
            let sds_settled = match &self.sds {
                None => true,
                Some(s) => s.bind(py).try_borrow()?.inner.is_settled_all(),
            };
            if idle && sds_settled {
                if self.sds.is_none() {
                    return Ok(round);
                }
                let before = self.sds_snapshot(py);
                let q = self.with_sds(py, |s| Ok(s.audit()))?;
                for (h, b) in q {
                    if let Some(idx) = self.index_of(&h) {
                        self.net.push_back(Pkt {
                            from: None,
                            to: To::Host { idx, conn: None },
                            bytes: b,
                        });
                    }
                }
                self.run_inner(py, true, MAX_RUN)?;
                if self.sds_snapshot(py) == before {
                    return Ok(round);
                }
                continue;
            }
            self.clock.advance(self.timeout_ms + 1000);
            self.tick_all();
            if self.sds.is_some() {
                let msgs = self.with_sds(py, |s| Ok(s.resolution()))?;
                for (h, b) in msgs {
                    if let Some(idx) = self.index_of(&h) {
                        self.net.push_back(Pkt {
                            from: None,
                            to: To::Host { idx, conn: None },
                            bytes: b,
                        });
                    }
                }
            }
        }
        Err(to_py(Error::Timeout))
    }

    /// Crash a host: its monitor's volatile state is gone; storage and the
    /// enclave framework survive.
    fn crash(&mut self, host: &[u8]) -> PyResult<()> {
        let i = self.idx(host)?;
        if let Some(m) = self.hosts[i].monitor.take() {
            self.hosts[i].parked = Some(m.into_parts());
        }
        Ok(())
    }

    /// Restart a crashed host from its journal and counter (a rolled-back
    /// journal raises RollbackError and the host stays down).
    fn restart(&mut self, host: &[u8]) -> PyResult<()> {
        let i = self.idx(host)?;
        let Some((p, h)) = self.hosts[i].parked.take() else {
            return Ok(());
        };
        let id = HostIdentity::from_secret(self.hosts[i].secret.clone(), self.hosts[i].sm)?
            .identity()?;
        match Monitor::start_or_return(p, h, id, self.config()) {
            Ok(m) => {
                self.hosts[i].monitor = Some(m);
                self.drain_events(i);
                Ok(())
            }
            Err(f) => {
                self.hosts[i].parked = Some((f.platform, f.host));
                Err(to_py(f.error))
            }
        }
    }

    fn is_up(&self, host: &[u8]) -> PyResult<bool> {
        Ok(self.hosts[self.idx(host)?].monitor.is_some())
    }

    /// The adversary rolls a crashed host's journal storage back to the
    /// `index`-th blob it ever wrote (negative counts from the end).
    fn rollback_journal(&mut self, host: &[u8], index: i64) -> PyResult<()> {
        let i = self.idx(host)?;
        let (p, _) = self.hosts[i]
            .parked
            .as_mut()
            .ok_or_else(|| to_py(Error::InvalidState))?;
        let n = p.journal_history.len() as i64;
        let k = if index < 0 { n + index } else { index };
        if k < 0 || k >= n {
            return Err(invalid());
        }
        p.journal = Some(p.journal_history[k as usize].clone());
        Ok(())
    }

    /// The host's durable state (journal, counter, enclave images) as bytes.
    fn save_host<'py>(&mut self, py: Python<'py>, host: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let i = self.idx(host)?;
        let slot = &mut self.hosts[i];
        let b = match (&mut slot.monitor, &slot.parked) {
            (Some(m), _) => {
                let h = m.enclave_host_ref().clone();
                encode_state(m.platform(), &h)
            }
            (None, Some((p, h))) => encode_state(p, h),
            _ => return Err(to_py(Error::InvalidState)),
        };
        Ok(PyBytes::new(py, &b))
    }

    /// Hosts whose framework schedules the enclave (G2: at most one).
    fn running_copies(&self, py: Python<'_>, enclave_id: &[u8]) -> PyResult<Vec<Py<PyBytes>>> {
        let eid: EnclaveId = arr(enclave_id)?;
        Ok((0..self.hosts.len())
            .filter(|&i| self.framework(i).is_some_and(|h| h.is_running(&eid)))
            .map(|i| bytes(py, &self.hosts[i].id.0))
            .collect())
    }

    /// What the host's monitor says of the enclave: (state, epoch), or None.
    fn status(&self, host: &[u8], enclave_id: &[u8]) -> PyResult<Option<(&'static str, u64)>> {
        let i = self.idx(host)?;
        let eid: EnclaveId = arr(enclave_id)?;
        Ok(self.hosts[i]
            .monitor
            .as_ref()
            .and_then(|m| m.status(&eid))
            .map(|s| (state_name(s.state), s.epoch)))
    }

    /// Whether the host's monitor lets the enclave run.
    fn may_run(&self, host: &[u8], enclave_id: &[u8]) -> PyResult<bool> {
        let i = self.idx(host)?;
        let eid: EnclaveId = arr(enclave_id)?;
        Ok(self.hosts[i]
            .monitor
            .as_ref()
            .is_some_and(|m| m.may_run(&eid)))
    }

    /// The enclave's image at `host`: (code, state, sealed data opened with
    /// that host's key, or None if it does not open there).
    #[allow(clippy::type_complexity)]
    fn image(
        &self,
        py: Python<'_>,
        host: &[u8],
        enclave_id: &[u8],
    ) -> PyResult<Option<(Py<PyBytes>, Py<PyBytes>, Option<Py<PyBytes>>)>> {
        let i = self.idx(host)?;
        let eid: EnclaveId = arr(enclave_id)?;
        let Some(m) = self.hosts[i].monitor.as_ref() else {
            return Ok(None);
        };
        let Some(e) = m.enclave_host_ref().get(&eid) else {
            return Ok(None);
        };
        let plain = m.unseal_data(&eid, &e.sealed).ok().map(|p| bytes(py, &p));
        Ok(Some((bytes(py, &e.code), bytes(py, &e.state), plain)))
    }

    /// The enclave does some work at `host` (its state changes) if it runs there.
    fn work(&mut self, host: &[u8], enclave_id: &[u8]) -> PyResult<bool> {
        let i = self.idx(host)?;
        let eid: EnclaveId = arr(enclave_id)?;
        let Some(m) = self.hosts[i].monitor.as_mut() else {
            return Ok(false);
        };
        if !m.may_run(&eid) {
            return Ok(false);
        }
        Ok(m.enclave_host().step(&eid))
    }

    /// Packets in flight, in delivery order.
    fn packets(&self, py: Python<'_>) -> Vec<Packet> {
        self.net.iter().map(|p| self.to_packet(py, p)).collect()
    }

    /// Move monitors' pending outputs onto the network (so `packets()` shows them).
    fn flush(&mut self) -> usize {
        self.collect(usize::MAX)
    }

    /// Deliver the packet at `index` now, bypassing hook and faults.
    #[pyo3(signature = (index = 0))]
    fn deliver_at(&mut self, py: Python<'_>, index: usize) -> PyResult<()> {
        let p = self.net.remove(index).ok_or_else(invalid)?;
        self.deliver(py, p);
        Ok(())
    }

    /// Drop the packet at `index`; returns it.
    fn drop_at(&mut self, py: Python<'_>, index: usize) -> PyResult<Packet> {
        let p = self.net.remove(index).ok_or_else(invalid)?;
        Ok(self.to_packet(py, &p))
    }

    /// Queue a copy of the packet at `index` at the end.
    fn duplicate_at(&mut self, index: usize) -> PyResult<()> {
        let p = self.net.get(index).ok_or_else(invalid)?.clone();
        self.net.push_back(p);
        Ok(())
    }

    /// Move the packet at `index` to position `to`.
    fn move_packet(&mut self, index: usize, to: usize) -> PyResult<()> {
        let p = self.net.remove(index).ok_or_else(invalid)?;
        let to = to.min(self.net.len());
        self.net.insert(to, p);
        Ok(())
    }

    /// Flip bits (`xor`) of byte `offset` (default: the middle) of the packet at `index`.
    #[pyo3(signature = (index, offset = None, xor = 1))]
    fn tamper_at(&mut self, index: usize, offset: Option<usize>, xor: u8) -> PyResult<()> {
        let p = self.net.get_mut(index).ok_or_else(invalid)?;
        if p.bytes.is_empty() {
            return Err(invalid());
        }
        let at = offset.unwrap_or(p.bytes.len() / 2).min(p.bytes.len() - 1);
        p.bytes[at] ^= xor;
        Ok(())
    }

    /// Replace the bytes of the packet at `index`.
    fn replace_at(&mut self, index: usize, data: Vec<u8>) -> PyResult<()> {
        self.net.get_mut(index).ok_or_else(invalid)?.bytes = data;
        Ok(())
    }

    /// Seeded random faults applied by step/run/receive (not by settle):
    /// probabilities per delivered packet.
    #[pyo3(signature = (*, drop = 0.0, duplicate = 0.0, reorder = 0.0, corrupt = 0.0, seed = None))]
    fn set_faults(
        &mut self,
        drop: f64,
        duplicate: f64,
        reorder: f64,
        corrupt: f64,
        seed: Option<u64>,
    ) -> PyResult<()> {
        for p in [drop, duplicate, reorder, corrupt] {
            if !(0.0..=1.0).contains(&p) {
                return Err(invalid());
            }
        }
        self.faults = Faults {
            drop,
            duplicate,
            reorder,
            corrupt,
        };
        if let Some(s) = seed {
            self.rng = Rng::new(s);
        }
        Ok(())
    }

    /// A callable run on each packet before delivery (not during settle). It
    /// returns None/True/"deliver" to deliver, False/"drop" to drop, "defer"
    /// to queue it at the end, bytes to deliver instead, or a list of bytes to
    /// deliver each (duplicates). It must not call back into this fleet.
    #[pyo3(signature = (hook = None))]
    fn set_hook(&mut self, hook: Option<Py<PyAny>>) {
        self.hook = hook;
    }

    /// Progress events since the last call: [(host, request_id, name, description)].
    #[allow(clippy::type_complexity)]
    fn take_events(
        &mut self,
        py: Python<'_>,
    ) -> Vec<(Py<PyBytes>, Py<PyBytes>, &'static str, String)> {
        std::mem::take(&mut self.events)
            .into_iter()
            .map(|(i, rid, e)| {
                (
                    bytes(py, &self.hosts[i].id.0),
                    bytes(py, &rid),
                    event_name(e),
                    describe_event(e),
                )
            })
            .collect()
    }

    /// Errors parties returned, in order: [(host or None for the SDS, code, name)].
    fn errors(&self, py: Python<'_>) -> Vec<(Option<Py<PyBytes>>, u32, String)> {
        self.errors
            .iter()
            .map(|(h, e)| {
                (
                    h.map(|i| bytes(py, &self.hosts[i].id.0)),
                    e.code(),
                    error_name(*e),
                )
            })
            .collect()
    }

    fn clear_errors(&mut self) {
        self.errors.clear();
    }

    /// Ledger events of the attached SDS, in order.
    fn ledger_events(&self, py: Python<'_>) -> Vec<LedgerEvent> {
        self.ledger.iter().map(|e| ledger_event(py, e)).collect()
    }

    /// Simulated monotonic time (ms) and wall time (s).
    #[getter]
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    #[getter]
    fn wall_time(&self) -> u64 {
        self.now_wall()
    }

    /// Packets delivered so far.
    #[getter]
    fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Whether every monitor is idle (no migration in flight) and nothing is queued.
    fn is_quiet(&self) -> bool {
        self.all_idle() && self.net.is_empty() && self.inbox.is_empty()
    }

    fn __repr__(&self) -> String {
        format!(
            "Fleet(hosts={}, in_flight_packets={}, delivered={})",
            self.hosts.len(),
            self.net.len(),
            self.delivered
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Fleet>()?;
    m.add_class::<Packet>()?;
    Ok(())
}
