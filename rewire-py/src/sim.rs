//! rewire.sim: simulated security monitors and an adversarial network.
//!
//! A thin skin over `rewire-sim`'s world (the one the Rust test suites,
//! fuzz targets and benchmarks run against): every host runs the real
//! `rewire_core::Monitor` over the software platform and framework; the
//! network is a queue of packets that a script controls (deliver, drop,
//! duplicate, reorder, tamper, per-packet hooks or a seeded fault policy);
//! any host can be crashed and restarted from its journal, and its storage
//! rolled back. This file converts arguments and holds no logic of its own.

use std::collections::VecDeque;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use rewire_core::{EnclaveId, Error, HostId, LedgerEvent as CoreEvent, RequestId, Secret};
use rewire_sim::{
    describe_event, event_name, persist, state_name, Envelope, NetFaults, SdsPort, Verdict, SDS,
};

use crate::errors::{error_name, to_py, IntoPy};
use crate::keys::{os_random32, HostIdentity, SIM_SM_MEASUREMENT};
use crate::sds::{arr, bytes, host_arg, ledger_event, LedgerEvent, Sds};

/// The fleet's SDS side: a Python `Sds` object, or an inbox that an external
/// SDS (rewire.Orchestrator) drains through `receive()`.
enum FleetSds {
    Attached(Py<Sds>),
    Inbox(VecDeque<Vec<u8>>),
}

impl FleetSds {
    fn with<T>(&mut self, f: impl FnOnce(&mut rewire_core::Sds) -> T) -> Result<T, Error> {
        match self {
            FleetSds::Inbox(_) => Err(Error::InvalidState),
            FleetSds::Attached(s) => Python::attach(|py| {
                let mut b = s.bind(py).try_borrow_mut().map_err(|_| Error::Busy)?;
                Ok(f(&mut b.inner))
            }),
        }
    }
}

impl SdsPort for FleetSds {
    fn handle(&mut self, bytes: &[u8]) -> Result<Option<CoreEvent>, Error> {
        if let FleetSds::Inbox(q) = self {
            q.push_back(bytes.to_vec());
            return Ok(None);
        }
        self.with(|s| s.handle(bytes))?.map(Some)
    }
    fn resolution(&mut self) -> Result<Vec<(HostId, Vec<u8>)>, Error> {
        match self {
            FleetSds::Inbox(_) => Ok(Vec::new()),
            FleetSds::Attached(_) => self.with(rewire_core::Sds::resolution),
        }
    }
    fn audit(&mut self) -> Result<Vec<(HostId, Vec<u8>)>, Error> {
        match self {
            FleetSds::Inbox(_) => Ok(Vec::new()),
            FleetSds::Attached(_) => self.with(|s| rewire_core::Sds::audit(s)),
        }
    }
    fn is_settled_all(&self) -> bool {
        match self {
            FleetSds::Inbox(_) => true,
            FleetSds::Attached(s) => Python::attach(|py| {
                s.bind(py)
                    .try_borrow()
                    .is_ok_and(|b| b.inner.is_settled_all())
            }),
        }
    }
    fn snapshot(&self) -> Result<Option<Vec<u8>>, Error> {
        match self {
            FleetSds::Inbox(_) => Ok(None),
            FleetSds::Attached(s) => Python::attach(|py| {
                let b = s.bind(py).try_borrow().map_err(|_| Error::Busy)?;
                b.inner.to_bytes().map(Some)
            }),
        }
    }
    /// The Python program owns the ledger (rewire.Ledger): no copy here.
    fn keeps_ledger(&self) -> bool {
        false
    }
}

type SimWorld = rewire_sim::World<FleetSds>;

/// A packet on the simulated network, as a script sees it.
#[pyclass(module = "librewire.sim", frozen, get_all)]
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

fn to_packet(py: Python<'_>, e: Envelope<'_>) -> Packet {
    let id = |h: Option<HostId>| h.map(|h| bytes(py, &h.0));
    Packet {
        source: id(e.from),
        dest: id(e.to),
        channel: e.conn.as_ref().map(|c| bytes(py, c)),
        kind: e.packet.kind(),
        data: bytes(py, &e.packet.bytes),
    }
}

/// What a hook's return value asks for.
fn verdict(r: &Bound<'_, PyAny>) -> PyResult<Verdict> {
    if r.is_none() {
        return Ok(Verdict::Deliver);
    }
    if let Ok(b) = r.extract::<bool>() {
        return Ok(if b { Verdict::Deliver } else { Verdict::Drop });
    }
    if let Ok(s) = r.extract::<String>() {
        return match s.as_str() {
            "deliver" => Ok(Verdict::Deliver),
            "drop" => Ok(Verdict::Drop),
            "defer" => Ok(Verdict::Defer),
            _ => Err(invalid()),
        };
    }
    if let Ok(b) = r.cast::<PyBytes>() {
        return Ok(Verdict::Replace(b.as_bytes().to_vec()));
    }
    if let Ok(l) = r.cast::<PyList>() {
        let mut all = Vec::new();
        for item in l.iter() {
            all.push(item.cast::<PyBytes>()?.as_bytes().to_vec());
        }
        return Ok(Verdict::Many(all));
    }
    Err(invalid())
}

fn invalid() -> PyErr {
    to_py(Error::InvalidArgument)
}

/// A fleet of simulated SM hosts on an adversarial network.
///
/// With an `Sds`, the fleet delivers SDS-bound proofs to it and can register,
/// deploy and order by itself (a whole world in one object). Without one
/// (give `sds_public_key`), SDS-bound messages wait in an inbox that
/// `receive()` hands out, and `send()` injects SDS-side messages: that is the
/// transport an external SDS (rewire.Orchestrator) drives.
#[pyclass(module = "librewire.sim")]
pub struct Fleet {
    w: SimWorld,
    seed: u64,
    hook: Option<Py<PyAny>>,
}

/// Deliveries per `run` or quiet-period round at most.
const MAX_RUN: u64 = 10_000_000;

impl Fleet {
    fn idx(&self, host: &[u8]) -> PyResult<usize> {
        self.w.index_of(&host_arg(host)?).ok_or_else(invalid)
    }

    fn host_bytes(&self, py: Python<'_>, i: usize) -> Py<PyBytes> {
        bytes(py, &self.w.hosts[i].id.0)
    }

    fn with_sds<T>(
        &mut self,
        f: impl FnOnce(&mut rewire_core::Sds) -> Result<T, Error>,
    ) -> PyResult<T> {
        let sds = self
            .w
            .sds
            .as_mut()
            .ok_or_else(|| to_py(Error::InvalidState))?;
        sds.with(f).and_then(|r| r).py_err()
    }

    /// One adversarial step: the hook, then the fault policy. False when nothing moves.
    fn step_one(&mut self, py: Python<'_>) -> PyResult<bool> {
        let hook = self.hook.as_ref().map(|h| h.clone_ref(py));
        let mut decide = |e: Envelope<'_>| -> PyResult<Verdict> {
            match &hook {
                None => Ok(Verdict::Deliver),
                Some(h) => {
                    let pk = Py::new(py, to_packet(py, e))?;
                    verdict(h.call1(py, (pk,))?.bind(py))
                }
            }
        };
        Ok(self.w.step_with(4, &mut decide)?.is_some())
    }
}

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
        let (port, sds_key) = match (sds, sds_public_key) {
            (Some(s), None) => {
                let k = s.bind(py).try_borrow()?.inner.public_key();
                (FleetSds::Attached(s), k)
            }
            (None, Some(k)) => (FleetSds::Inbox(VecDeque::new()), host_arg(&k)?),
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
            w: SimWorld::empty(Some(port), sds_key, wall0, timeout_ms, seed),
            seed,
            hook: None,
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
        let i = self.w.hosts.len();
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
        let id = HostIdentity::from_secret(secret.clone(), sm)?.identity()?;
        if self.w.index_of(&id.host_id()).is_some() {
            return Err(to_py(Error::Busy));
        }
        if let (Some(atl), Some(FleetSds::Attached(_))) = (atl, &self.w.sds) {
            let cert = id.certificate().to_vec();
            let (nb, na) = (
                self.w.wall0.saturating_sub(10),
                self.w.wall0.saturating_add(86_400 * 365),
            );
            // A simulated device has no manufacturer: its key is pinned.
            let device = id.host_id();
            self.with_sds(|s| {
                s.pin_device(device);
                s.endorse_host(
                    &cert,
                    vec![sm],
                    rewire_core::wire::PLATFORM_RISCV64,
                    atl,
                    nb,
                    na,
                )
            })?;
        }
        let mut platform = self
            .w
            .platform(self.seed.wrapping_mul(1000).wrapping_add(i as u64 + 1));
        let mut host = rewire_core::soft::SoftHost::default();
        if let Some(st) = state {
            persist::decode_host(&st, &mut platform, &mut host).py_err()?;
        }
        let i = self.w.add_host(secret, sm, platform, host).py_err()?;
        Ok(PyBytes::new(py, &self.w.hosts[i].id.0))
    }

    /// Host ids, in the order they were added.
    fn hosts(&self, py: Python<'_>) -> Vec<Py<PyBytes>> {
        (0..self.w.hosts.len())
            .map(|i| self.host_bytes(py, i))
            .collect()
    }

    /// The host's device-signed SM certificate (what the SDS endorses).
    fn certificate<'py>(&self, py: Python<'py>, host: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let id = self.w.hosts[self.idx(host)?].identity().py_err()?;
        Ok(PyBytes::new(py, id.certificate()))
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
        let hid = self.w.hosts[i].id;
        let policy = match policy {
            Some(p) => p,
            None => {
                let m = rewire_core::crypto::sha256(&code);
                self.with_sds(|s| {
                    s.register_enclave(eid, m, rewire_core::wire::PLATFORM_RISCV64, min_atl, hid)
                })?
            }
        };
        self.w
            .install_enclave(i, eid, code, state, &sealed, &policy)
            .py_err()?;
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
        let tid = self.w.hosts[self.idx(target)?].id;
        let rid: RequestId = match request_id {
            Some(r) => arr(&r)?,
            None => arr(&os_random32()?.expose()[..16])?,
        };
        let deadline = deadline.unwrap_or(self.w.now_wall().saturating_add(3600));
        let (order, loc) = self.with_sds(|s| {
            let b = s.order(&eid, tid, rid, deadline)?;
            let loc = s.enclave(&eid).map(|e| e.location);
            Ok((b, loc.ok_or(Error::UnknownEnclave)?))
        })?;
        let src = self.w.index_of(&loc).ok_or_else(invalid)?;
        self.w.send_to(src, order);
        Ok(PyBytes::new(py, &rid))
    }

    /// Put an SDS-side message (order, forwarded RELEASE/ABORT, query) on the wire to `host`.
    fn send(&mut self, host: &[u8], message: Vec<u8>) -> PyResult<()> {
        let idx = self.idx(host)?;
        self.w.send_to(idx, message);
        Ok(())
    }

    /// Without an attached SDS: the next SDS-bound message, running the
    /// network (with its faults) until one arrives or nothing moves.
    fn receive<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        loop {
            if let Some(FleetSds::Inbox(q)) = self.w.sds.as_mut() {
                if let Some(b) = q.pop_front() {
                    return Ok(Some(PyBytes::new(py, &b)));
                }
            }
            if !self.step_one(py)? {
                return Ok(None);
            }
        }
    }

    /// Deliver one packet (hook and fault policy apply). False when nothing moves.
    fn step(&mut self, py: Python<'_>) -> PyResult<bool> {
        self.step_one(py)
    }

    /// Deliver packets until nothing moves (or `max_steps`). Returns how many.
    #[pyo3(signature = (max_steps = 10000000))]
    fn run(&mut self, py: Python<'_>, max_steps: u64) -> PyResult<u64> {
        let mut n = 0;
        while n < max_steps && self.step_one(py)? {
            n += 1;
        }
        Ok(n)
    }

    /// Simulated time passes (monitor timeouts, deadlines).
    fn advance(&mut self, ms: u64) {
        self.w.clock.advance(ms);
    }

    /// Every running monitor checks its timeouts.
    fn tick(&mut self) {
        self.w.tick_all();
    }

    /// Quiet period: a faithful network, time passing past the monitors'
    /// timeout, and (with an attached SDS) its resolution and audit re-sent,
    /// until nothing is in doubt. Returns the rounds used; raises
    /// StateError(Timeout) if it does not settle.
    #[pyo3(signature = (max_rounds = 400))]
    fn settle(&mut self, max_rounds: usize) -> PyResult<usize> {
        self.w
            .settle_rounds(max_rounds, MAX_RUN)
            .ok_or_else(|| to_py(Error::Timeout))
    }

    /// Crash a host: its monitor's volatile state is gone; storage and the
    /// enclave framework survive.
    fn crash(&mut self, host: &[u8]) -> PyResult<()> {
        let i = self.idx(host)?;
        self.w.crash(i);
        Ok(())
    }

    /// Restart a crashed host from its journal and counter (a rolled-back
    /// journal raises RollbackError and the host stays down).
    fn restart(&mut self, host: &[u8]) -> PyResult<()> {
        let i = self.idx(host)?;
        self.w.restart(i).py_err()
    }

    fn is_up(&self, host: &[u8]) -> PyResult<bool> {
        Ok(self.w.is_up(self.idx(host)?))
    }

    /// The adversary rolls a crashed host's journal storage back to the
    /// `index`-th blob it ever wrote (negative counts from the end).
    fn rollback_journal(&mut self, host: &[u8], index: i64) -> PyResult<()> {
        let i = self.idx(host)?;
        self.w.rollback_journal(i, index).py_err()
    }

    /// The host's durable state (journal, counter, enclave images) as bytes.
    fn save_host<'py>(&mut self, py: Python<'py>, host: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let i = self.idx(host)?;
        Ok(PyBytes::new(py, &self.w.save_host(i).py_err()?))
    }

    /// Hosts whose framework schedules the enclave (G2: at most one).
    fn running_copies(&self, py: Python<'_>, enclave_id: &[u8]) -> PyResult<Vec<Py<PyBytes>>> {
        let eid: EnclaveId = arr(enclave_id)?;
        Ok(self
            .w
            .running_copies(&eid)
            .into_iter()
            .map(|i| self.host_bytes(py, i))
            .collect())
    }

    /// What the host's monitor says of the enclave: (state, epoch), or None.
    fn status(&self, host: &[u8], enclave_id: &[u8]) -> PyResult<Option<(&'static str, u64)>> {
        let i = self.idx(host)?;
        let eid: EnclaveId = arr(enclave_id)?;
        Ok(self.w.hosts[i]
            .monitor
            .as_ref()
            .and_then(|m| m.status(&eid))
            .map(|s| (state_name(s.state), s.epoch)))
    }

    /// Whether the host's monitor lets the enclave run.
    fn may_run(&self, host: &[u8], enclave_id: &[u8]) -> PyResult<bool> {
        let i = self.idx(host)?;
        let eid: EnclaveId = arr(enclave_id)?;
        Ok(self.w.hosts[i]
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
        let Some(m) = self.w.hosts[i].monitor.as_ref() else {
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
        Ok(self.w.work(i, &eid))
    }

    /// Packets in flight, in delivery order.
    fn packets(&self, py: Python<'_>) -> Vec<Packet> {
        self.w
            .net
            .iter()
            .map(|p| to_packet(py, self.w.envelope(p)))
            .collect()
    }

    /// Move monitors' pending outputs onto the network (so `packets()` shows them).
    fn flush(&mut self) -> usize {
        self.w.collect(usize::MAX)
    }

    /// Deliver the packet at `index` now, bypassing hook and faults.
    #[pyo3(signature = (index = 0))]
    fn deliver_at(&mut self, index: usize) -> PyResult<()> {
        self.w.deliver_at(index).py_err()
    }

    /// Drop the packet at `index`; returns it.
    fn drop_at(&mut self, py: Python<'_>, index: usize) -> PyResult<Packet> {
        let p = self.w.drop_at(index).py_err()?;
        Ok(to_packet(py, self.w.envelope(&p)))
    }

    /// Queue a copy of the packet at `index` at the end.
    fn duplicate_at(&mut self, index: usize) -> PyResult<()> {
        self.w.duplicate_at(index).py_err()
    }

    /// Move the packet at `index` to position `to`.
    fn move_packet(&mut self, index: usize, to: usize) -> PyResult<()> {
        self.w.move_packet(index, to).py_err()
    }

    /// Flip bits (`xor`) of byte `offset` (default: the middle) of the packet at `index`.
    #[pyo3(signature = (index, offset = None, xor = 1))]
    fn tamper_at(&mut self, index: usize, offset: Option<usize>, xor: u8) -> PyResult<()> {
        self.w.tamper_at(index, offset, xor).py_err()
    }

    /// Replace the bytes of the packet at `index`.
    fn replace_at(&mut self, index: usize, data: Vec<u8>) -> PyResult<()> {
        self.w.replace_at(index, data).py_err()
    }

    /// Seeded random faults applied by step/run/receive (not by settle):
    /// probabilities per delivered packet.
    #[pyo3(signature = (*, drop = 0.0, duplicate = 0.0, reorder = 0.0, corrupt = 0.0, delay = 0.0, seed = None))]
    fn set_faults(
        &mut self,
        drop: f64,
        duplicate: f64,
        reorder: f64,
        corrupt: f64,
        delay: f64,
        seed: Option<u64>,
    ) -> PyResult<()> {
        let f = NetFaults {
            drop,
            duplicate,
            reorder,
            corrupt,
            delay,
        };
        if !f.is_valid() {
            return Err(invalid());
        }
        self.w.faults = f;
        if let Some(s) = seed {
            self.w.rng = rewire_sim::Rng::new(s);
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
        std::mem::take(&mut self.w.events)
            .into_iter()
            .map(|(i, rid, e)| {
                (
                    self.host_bytes(py, i),
                    bytes(py, &rid),
                    event_name(e),
                    describe_event(e),
                )
            })
            .collect()
    }

    /// Errors parties returned, in order: [(host or None for the SDS, code, name)].
    fn errors(&self, py: Python<'_>) -> Vec<(Option<Py<PyBytes>>, u32, String)> {
        self.w
            .errors
            .iter()
            .map(|&(h, e)| {
                let who = (h != SDS).then(|| self.host_bytes(py, h));
                (who, e.code(), error_name(e))
            })
            .collect()
    }

    fn clear_errors(&mut self) {
        self.w.errors.clear();
    }

    /// Ledger events of the attached SDS, in order.
    fn ledger_events(&self, py: Python<'_>) -> Vec<LedgerEvent> {
        self.w.ledger.iter().map(|e| ledger_event(py, e)).collect()
    }

    /// Simulated monotonic time (ms) and wall time (s).
    #[getter]
    fn now_ms(&self) -> u64 {
        self.w.clock.now_ms()
    }

    #[getter]
    fn wall_time(&self) -> u64 {
        self.w.now_wall()
    }

    /// Packets delivered so far.
    #[getter]
    fn delivered(&self) -> u64 {
        self.w.delivered
    }

    /// Whether every monitor is idle (no migration in flight) and nothing is queued.
    fn is_quiet(&self) -> bool {
        let inbox_empty = match &self.w.sds {
            Some(FleetSds::Inbox(q)) => q.is_empty(),
            _ => true,
        };
        self.w.is_quiet() && inbox_empty
    }

    fn __repr__(&self) -> String {
        format!(
            "Fleet(hosts={}, in_flight_packets={}, delivered={})",
            self.w.hosts.len(),
            self.w.net.len(),
            self.w.delivered
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Fleet>()?;
    m.add_class::<Packet>()?;
    Ok(())
}
