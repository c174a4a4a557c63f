//! The world: an SDS, software monitors, the network between them, and the
//! faults and invariants of the threat model.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use rewire_core::monitor::SEALED_DATA_KEY_ID;
use rewire_core::soft::{Clock, SoftHost, SoftPlatform};
use rewire_core::wire::{Message, MigrationRequest, Order, SignedBody};
use rewire_core::{
    Config, Dest, EnclaveId, EnclaveState, Error, Event, HostId, Identity, LedgerEvent,
    Measurement, Monitor, PublicKey, RequestId, Sds, Secret, SigningKey,
};

use crate::describe::{describe, describe_event};
use crate::keys::{self, Image, SM_MEASUREMENT, TIMEOUT_MS, WALL0};
use crate::net::{Envelope, Fault, NetFaults, Packet, Rng, To, Verdict};
use crate::persist;

/// A software monitor.
pub type Mon = Monitor<SoftPlatform, SoftHost>;

/// The party index of the SDS in [`World::errors`].
pub const SDS: usize = usize::MAX;

/// The SDS side of the world: the real `Sds`, or something standing for it
/// (a Python-owned SDS, an inbox that an external orchestrator drains).
pub trait SdsPort {
    /// A message a monitor sent to the SDS. `Ok(None)`: taken, no ledger event.
    fn handle(&mut self, bytes: &[u8]) -> Result<Option<LedgerEvent>, Error>;
    /// What settles in-doubt migrations, per host.
    fn resolution(&mut self) -> Result<Vec<(HostId, Vec<u8>)>, Error>;
    /// A query per enclave for its host's latest proof.
    fn audit(&mut self) -> Result<Vec<(HostId, Vec<u8>)>, Error>;
    /// Whether no migration is in doubt.
    fn is_settled_all(&self) -> bool;
    /// The ledger's bytes: what a quiet period compares before and after an
    /// audit; `Ok(None)` for a port without a ledger of its own.
    fn snapshot(&self) -> Result<Option<Vec<u8>>, Error>;
    /// Whether the world keeps a durable copy after every change (to restart
    /// the SDS from, and to check the invariants against).
    fn keeps_ledger(&self) -> bool {
        true
    }
}

impl SdsPort for Sds {
    fn handle(&mut self, bytes: &[u8]) -> Result<Option<LedgerEvent>, Error> {
        Sds::handle(self, bytes).map(Some)
    }
    fn resolution(&mut self) -> Result<Vec<(HostId, Vec<u8>)>, Error> {
        Ok(Sds::resolution(self))
    }
    fn audit(&mut self) -> Result<Vec<(HostId, Vec<u8>)>, Error> {
        Ok(Sds::audit(self))
    }
    fn is_settled_all(&self) -> bool {
        Sds::is_settled_all(self)
    }
    fn snapshot(&self) -> Result<Option<Vec<u8>>, Error> {
        self.to_bytes().map(Some)
    }
}

/// One simulated host.
pub struct HostSlot {
    pub id: HostId,
    /// What the host's monitor is started from (its identity is derived again at each restart).
    pub secret: Secret,
    pub sm: Measurement,
    pub monitor: Option<Mon>,
    /// Platform and framework of a crashed monitor (they survive the crash).
    pub parked: Option<(SoftPlatform, SoftHost)>,
}

impl HostSlot {
    pub fn identity(&self) -> Result<Identity, Error> {
        Identity::derive(self.secret.clone(), self.sm)
    }
}

pub struct World<S: SdsPort = Sds> {
    pub clock: Clock,
    /// Wall time at clock 0.
    pub wall0: u64,
    /// The SDS key every monitor trusts, and their timeout.
    pub sds_public: PublicKey,
    pub timeout_ms: u64,
    pub sds: Option<S>,
    /// The SDS's durable ledger, written after every change.
    pub sds_saved: Vec<u8>,
    pub hosts: Vec<HostSlot>,
    pub net: VecDeque<Packet>,
    /// Relay rewrites: peer traffic for host a goes to host b.
    pub redirect: BTreeMap<usize, usize>,
    /// Errors returned by parties, in order: (party, error). Party [`SDS`] is the SDS.
    pub errors: Vec<(usize, Error)>,
    /// Monitor progress events, in order: (host, request, event).
    pub events: Vec<(usize, RequestId, Event)>,
    pub ledger: Vec<LedgerEvent>,
    /// The seeded fault policy of adversarial steps, and its randomness.
    pub faults: NetFaults,
    pub rng: Rng,
    /// In a quiet period, reboot a monitor that a failed commit poisoned (as an operator would).
    pub reboot_poisoned: bool,
    /// Print each step (the demo), with real elapsed time since `t0`.
    pub verbose: bool,
    pub t0: Instant,
    pub delivered: u64,
    /// The platform each host's monitor knows it runs (`Config::platform`),
    /// by host id; absent: it does not know (the default).
    pub runs: BTreeMap<HostId, u64>,
}

impl<S: SdsPort> World<S> {
    /// A world with no hosts yet.
    pub fn empty(
        sds: Option<S>,
        sds_public: PublicKey,
        wall0: u64,
        timeout_ms: u64,
        seed: u64,
    ) -> Self {
        let sds_saved = match &sds {
            Some(s) if s.keeps_ledger() => s.snapshot().ok().flatten().unwrap_or_default(),
            _ => Vec::new(),
        };
        World {
            clock: Clock::default(),
            wall0,
            sds_public,
            timeout_ms,
            sds,
            sds_saved,
            hosts: Vec::new(),
            net: VecDeque::new(),
            redirect: BTreeMap::new(),
            errors: Vec::new(),
            events: Vec::new(),
            ledger: Vec::new(),
            faults: NetFaults::default(),
            rng: Rng::new(seed),
            reboot_poisoned: false,
            runs: BTreeMap::new(),
            verbose: false,
            t0: Instant::now(),
            delivered: 0,
        }
    }

    /// The monitors' configuration.
    pub fn config(&self) -> Config {
        let mut c = Config::new(self.sds_public);
        c.timeout_ms = self.timeout_ms;
        c
    }

    /// The configuration of host `id`'s monitor: [`World::config`], and the
    /// platform it runs if [`World::runs`] names one.
    pub fn config_of(&self, id: &HostId) -> Config {
        let mut c = self.config();
        c.platform = self.runs.get(id).copied();
        c
    }

    /// Wall time now (seconds).
    pub fn now_wall(&self) -> u64 {
        self.wall0.saturating_add(self.clock.now_ms() / 1000)
    }

    /// A fresh software platform for a new host, on the world's clock.
    pub fn platform(&self, seed: u64) -> SoftPlatform {
        SoftPlatform::new(seed, self.clock.clone(), Some(self.wall0))
    }

    /// Start a monitor on `platform` and `host` and add it; returns its index.
    pub fn add_host(
        &mut self,
        secret: Secret,
        sm: Measurement,
        platform: SoftPlatform,
        host: SoftHost,
    ) -> Result<usize, Error> {
        let id = Identity::derive(secret.clone(), sm)?;
        let hid = id.host_id();
        if self.index_of(&hid).is_some() {
            return Err(Error::Busy);
        }
        let cfg = self.config_of(&hid);
        let m = Monitor::start_or_return(platform, host, id, cfg).map_err(|f| f.error)?;
        self.hosts.push(HostSlot {
            id: hid,
            secret,
            sm,
            monitor: Some(m),
            parked: None,
        });
        let i = self.hosts.len() - 1;
        self.take_events(i);
        Ok(i)
    }

    pub fn sds(&mut self) -> &mut S {
        self.sds.as_mut().expect("SDS is up") // safe: test-world accessor; a down SDS is a test bug
    }

    pub fn mon(&mut self, i: usize) -> &mut Mon {
        self.hosts[i].monitor.as_mut().expect("monitor is up") // safe: test-world accessor
    }

    pub fn mon_ref(&self, i: usize) -> &Mon {
        self.hosts[i].monitor.as_ref().expect("monitor is up") // safe: test-world accessor
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.hosts[i].monitor.is_some()
    }

    pub fn index_of(&self, id: &HostId) -> Option<usize> {
        self.hosts.iter().position(|h| &h.id == id)
    }

    /// Write the SDS's durable ledger now (the world does after every change it makes).
    pub fn save_sds(&mut self) {
        let Some(sds) = self.sds.as_ref().filter(|s| s.keeps_ledger()) else {
            return;
        };
        match sds.snapshot() {
            Ok(Some(b)) => self.sds_saved = b,
            Ok(None) => {}
            // A ledger that does not encode is an SDS failure the test sees.
            Err(e) => self.errors.push((SDS, e)),
        }
    }

    pub fn log(&self, s: String) {
        if self.verbose {
            println!(
                "  [{:>9.3} ms] {s}",
                self.t0.elapsed().as_secs_f64() * 1000.0
            );
        }
    }

    /// Record a monitor's progress events; an abort's reason counts as its error.
    pub fn take_events(&mut self, i: usize) {
        let mut events = Vec::new();
        if let Some(m) = self.hosts[i].monitor.as_mut() {
            while let Some(e) = m.poll_event() {
                events.push(e);
            }
        }
        for (rid, e) in events {
            self.log(format!("host{i}: {}", describe_event(e)));
            if let Event::Aborted(why) = e {
                self.errors.push((i, why));
            }
            self.events.push((i, rid, e));
        }
    }

    /// Move every monitor's pending outputs (at most `per_host` each) onto the network.
    pub fn collect(&mut self, per_host: usize) -> usize {
        let mut n = 0;
        for i in 0..self.hosts.len() {
            for _ in 0..per_host {
                let Some(m) = self.hosts[i].monitor.as_mut() else {
                    break;
                };
                let Some(o) = m.poll_output() else { break };
                self.take_events(i);
                let to = match o.dest {
                    Dest::Sds => To::Sds,
                    Dest::Peer { host, conn } => {
                        let Some(mut idx) = self.index_of(&host) else {
                            continue;
                        };
                        if let Some(r) = self.redirect.get(&idx) {
                            idx = *r;
                        }
                        To::Host {
                            idx,
                            conn: Some(conn),
                        }
                    }
                };
                self.net.push_back(Packet {
                    from: Some(i),
                    to,
                    bytes: o.bytes,
                });
                n += 1;
            }
        }
        n
    }

    /// Deliver one packet; returns the receiver's verdict (`Ok` for a party
    /// that is down, or a message queued for an external SDS). Errors are
    /// also recorded in [`World::errors`].
    pub fn deliver_verdict(&mut self, p: Packet) -> Result<(), Error> {
        self.delivered += 1;
        match p.to {
            To::Sds => {
                let Some(sds) = self.sds.as_mut() else {
                    return Ok(());
                };
                match sds.handle(&p.bytes) {
                    Ok(Some(ev)) => {
                        self.log(format!("SDS ledger: {}", describe(&ev)));
                        self.ledger.push(ev);
                        self.save_sds();
                        Ok(())
                    }
                    Ok(None) => Ok(()),
                    Err(e) => {
                        self.errors.push((SDS, e));
                        Err(e)
                    }
                }
            }
            To::Host { idx, conn } => {
                let from_id = p.from.and_then(|f| self.hosts.get(f)).map(|h| h.id);
                let slot = self.hosts.get_mut(idx).ok_or(Error::InvalidArgument)?;
                let Some(m) = slot.monitor.as_mut() else {
                    return Ok(());
                };
                let r = match conn {
                    None => m.handle_sds(&p.bytes),
                    Some(c) => m.handle_peer(from_id.unwrap_or(m.host_id()), c, &p.bytes),
                };
                self.take_events(idx);
                if let Err(e) = r {
                    self.log(format!("host{idx}: rejected: {e}"));
                    self.errors.push((idx, e));
                }
                r
            }
        }
    }

    /// Deliver one packet to its destination (dropped if that party is down).
    pub fn deliver(&mut self, p: Packet) {
        let _ = self.deliver_verdict(p);
    }

    /// Run the faithful network until nothing moves or `max_steps`
    /// deliveries; `check` runs after every delivery. Returns the deliveries.
    pub fn run_bounded(&mut self, max_steps: u64, mut check: impl FnMut(&World<S>)) -> u64 {
        let mut n = 0;
        while n < max_steps {
            self.collect(4);
            let Some(p) = self.net.pop_front() else {
                if self.collect(4) == 0 {
                    break;
                }
                continue;
            };
            self.deliver(p);
            n += 1;
            check(self);
        }
        n
    }

    /// Run the faithful network until nothing moves. `check` runs after every delivery.
    pub fn run_with(&mut self, check: impl FnMut(&World<S>)) {
        self.run_bounded(u64::MAX, check);
    }

    pub fn run(&mut self) {
        self.run_with(|_| {})
    }

    /// One adversarial step: move outputs (at most `per_host` each) onto the
    /// network, take the first packet, let `hook` decide, then apply the
    /// seeded fault policy. `Ok(None)` when nothing moves.
    pub fn step_with<E>(
        &mut self,
        per_host: usize,
        hook: &mut dyn FnMut(Envelope<'_>) -> Result<Verdict, E>,
    ) -> Result<Option<Fault>, E> {
        self.collect(per_host);
        let Some(mut p) = self.net.pop_front() else {
            return Ok((self.collect(per_host) > 0).then_some(Fault::Collected));
        };
        match hook(self.envelope(&p))? {
            Verdict::Deliver => {}
            Verdict::Drop => return Ok(Some(Fault::Hooked)),
            Verdict::Defer => {
                self.net.push_back(p);
                return Ok(Some(Fault::Hooked));
            }
            Verdict::Replace(b) => p.bytes = b,
            Verdict::Many(list) => {
                for bytes in list {
                    self.deliver(Packet { bytes, ..p.clone() });
                }
                return Ok(Some(Fault::Hooked));
            }
        }
        Ok(Some(self.apply_faults(p)))
    }

    /// A packet with its parties named by host id.
    pub fn envelope<'a>(&self, p: &'a Packet) -> Envelope<'a> {
        let id = |i: usize| self.hosts.get(i).map(|h| h.id);
        let (to, conn) = match p.to {
            To::Sds => (None, None),
            To::Host { idx, conn } => (id(idx), conn),
        };
        Envelope {
            from: p.from.and_then(id),
            to,
            conn,
            packet: p,
        }
    }

    /// One adversarial step without a hook.
    pub fn step(&mut self, per_host: usize) -> Option<Fault> {
        let r: Result<_, std::convert::Infallible> =
            self.step_with(per_host, &mut |_| Ok(Verdict::Deliver));
        match r {
            Ok(f) => f,
            Err(e) => match e {},
        }
    }

    /// The seeded fault policy on one packet, then delivery of what remains.
    /// The kinds are tried in turn (drop, reorder, delay, then duplicate and
    /// corrupt, which still deliver), each with its own probability.
    fn apply_faults(&mut self, mut p: Packet) -> Fault {
        let f = self.faults;
        if !f.any() {
            self.deliver(p);
            return Fault::Delivered;
        }
        if self.rng.chance(f.drop) {
            return Fault::Dropped;
        }
        if self.rng.chance(f.reorder) && !self.net.is_empty() {
            let at = self.rng.below(self.net.len() as u64 + 1) as usize;
            self.net.insert(at, p);
            return Fault::Reordered;
        }
        if self.rng.chance(f.delay) {
            self.net.push_back(p);
            return Fault::Delayed;
        }
        let mut what = Fault::Delivered;
        if self.rng.chance(f.duplicate) {
            // The copy arrives again at a random later point: right after
            // this one (an immediate replay) up to after everything queued.
            let at = self.rng.below(self.net.len() as u64 + 1) as usize;
            self.net.insert(at, p.clone());
            what = Fault::Duplicated;
        }
        if self.rng.chance(f.corrupt) && !p.bytes.is_empty() {
            let at = self.rng.below(p.bytes.len() as u64) as usize;
            p.bytes[at] ^= 1 << self.rng.below(8);
            what = Fault::Corrupted;
        }
        self.deliver(p);
        what
    }

    /// Every running monitor checks its timeouts.
    pub fn tick_all(&mut self) {
        for i in 0..self.hosts.len() {
            let Some(m) = self.hosts[i].monitor.as_mut() else {
                continue;
            };
            let r = m.tick();
            self.take_events(i);
            if let Err(e) = r {
                self.errors.push((i, e));
                if e == Error::Storage && self.reboot_poisoned {
                    // Poisoned by a failed commit: the operator reboots it.
                    self.crash(i);
                    if let Err(e) = self.restart(i) {
                        panic!("host{i} cannot restart: {e:?}"); // safe: test world
                    }
                }
            }
        }
    }

    /// The SDS re-sends what settles in-doubt migrations.
    pub fn resolve(&mut self) {
        let msgs = match self.sds.as_mut().map(|s| s.resolution()) {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                self.errors.push((SDS, e));
                return;
            }
            None => return,
        };
        self.save_sds();
        self.send_all(msgs);
    }

    /// The SDS asks every enclave's host for its latest proof.
    pub fn audit(&mut self) {
        match self.sds.as_mut().map(|s| s.audit()) {
            Some(Ok(m)) => self.send_all(m),
            Some(Err(e)) => self.errors.push((SDS, e)),
            None => {}
        }
    }

    fn send_all(&mut self, msgs: Vec<(HostId, Vec<u8>)>) {
        for (h, bytes) in msgs {
            if let Some(idx) = self.index_of(&h) {
                self.send_to(idx, bytes);
            }
        }
    }

    fn all_idle(&self) -> bool {
        self.hosts
            .iter()
            .all(|h| h.monitor.as_ref().is_none_or(|m| !m.in_flight()))
    }

    /// Whether every monitor is idle and nothing is queued on the network.
    pub fn is_quiet(&self) -> bool {
        self.all_idle() && self.net.is_empty()
    }

    /// Quiet period: faithful network (at most `max_steps` deliveries per
    /// run), time passing past the monitors' timeout, and the SDS's
    /// resolution and audit, until nothing is in doubt and an audit changes
    /// nothing. Returns the rounds used, `None` if it did not settle.
    pub fn settle_rounds(&mut self, max_rounds: usize, max_steps: u64) -> Option<usize> {
        for round in 0..max_rounds {
            self.run_bounded(max_steps, |_| {});
            // A crashed SDS never counts as settled: it must be restarted.
            let sds_settled = self.sds.as_ref().is_some_and(|s| s.is_settled_all());
            if self.all_idle() && sds_settled {
                // Last, the ledger catches up on anything it never heard of
                // (an order it signed but did not keep).
                let before = self.sds.as_ref().map(|s| s.snapshot());
                self.audit();
                self.run_bounded(max_steps, |_| {});
                let after = self.sds.as_ref().map(|s| s.snapshot());
                if matches!(&before, Some(Ok(_))) && after == before {
                    return Some(round);
                }
                continue;
            }
            self.clock.advance(self.timeout_ms.saturating_add(1000));
            self.tick_all();
            self.resolve();
        }
        None
    }

    /// [`World::settle_rounds`] with the test suites' bounds; panics if the world does not settle.
    pub fn settle(&mut self) -> usize {
        if let Some(r) = self.settle_rounds(400, u64::MAX) {
            return r;
        }
        let sds = self.sds.as_ref().map(|s| s.is_settled_all());
        let idle = self.all_idle();
        let why = format!("did not settle in 400 rounds: all idle {idle}, SDS settled {sds:?}");
        panic!("{why}"); // safe: test world, the caller asked for a settled world
    }

    /// Crash a monitor: its volatile state is gone; platform and framework stay.
    pub fn crash(&mut self, i: usize) {
        if let Some(m) = self.hosts[i].monitor.take() {
            self.hosts[i].parked = Some(m.into_parts());
            self.log(format!("host{i}: CRASH"));
        }
    }

    /// Restart a crashed monitor from its journal and counter.
    pub fn restart(&mut self, i: usize) -> Result<(), Error> {
        let Some((p, h)) = self.hosts[i].parked.take() else {
            return Ok(());
        };
        let id = match self.hosts[i].identity() {
            Ok(id) => id,
            Err(e) => {
                self.hosts[i].parked = Some((p, h));
                return Err(e);
            }
        };
        let cfg = self.config_of(&self.hosts[i].id);
        match Monitor::start_or_return(p, h, id, cfg) {
            Ok(m) => {
                self.hosts[i].monitor = Some(m);
                self.take_events(i);
                self.log(format!("host{i}: restarted from journal"));
                Ok(())
            }
            Err(f) => {
                // What the failed start wrote stays written.
                self.hosts[i].parked = Some((f.platform, f.host));
                Err(f.error)
            }
        }
    }

    /// The adversary rolls a crashed host's journal storage back to the
    /// `index`-th blob it ever wrote (negative counts from the end).
    pub fn rollback_journal(&mut self, i: usize, index: i64) -> Result<(), Error> {
        let (p, _) = self.hosts[i].parked.as_mut().ok_or(Error::InvalidState)?;
        let n = p.journal_history.len() as i64;
        let k = if index < 0 { n + index } else { index };
        if k < 0 || k >= n {
            return Err(Error::InvalidArgument);
        }
        p.journal = Some(p.journal_history[k as usize].clone());
        Ok(())
    }

    /// Host `i`'s durable state (journal, counter, enclave images) as bytes.
    pub fn save_host(&mut self, i: usize) -> Result<Vec<u8>, Error> {
        let slot = &mut self.hosts[i];
        match (&mut slot.monitor, &slot.parked) {
            (Some(m), _) => {
                let h = m.enclave_host_ref().clone();
                Ok(persist::encode_host(m.platform(), &h))
            }
            (None, Some((p, h))) => Ok(persist::encode_host(p, h)),
            _ => Err(Error::InvalidState),
        }
    }

    /// The enclave framework of host `i`, up or crashed.
    pub fn framework(&self, i: usize) -> Option<&SoftHost> {
        match (&self.hosts[i].monitor, &self.hosts[i].parked) {
            (Some(m), _) => Some(m.enclave_host_ref()),
            (None, Some((_, h))) => Some(h),
            _ => None,
        }
    }

    /// Hosts where the enclave is scheduled by the framework.
    pub fn running_copies(&self, eid: &EnclaveId) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|&i| self.framework(i).is_some_and(|h| h.is_running(eid)))
            .collect()
    }

    /// Host `i` runs the enclave only if its monitor allows it.
    pub fn assert_no_fork_at(&self, i: usize, eid: &EnclaveId) {
        if self.framework(i).is_some_and(|h| h.is_running(eid)) {
            if let Some(m) = &self.hosts[i].monitor {
                assert!(
                    m.may_run(eid),
                    "host{i} runs an enclave its monitor does not allow"
                );
            }
        }
    }

    /// G2: at most one host runs the enclave, and a running copy is one its
    /// monitor says may run.
    pub fn assert_no_fork(&self, eid: &EnclaveId) {
        let running = self.running_copies(eid);
        assert!(
            running.len() <= 1,
            "FORK: enclave runs on hosts {running:?}"
        );
        for i in running {
            self.assert_no_fork_at(i, eid);
        }
    }

    /// The enclave is runnable at `h` with the image intact (rejection checks).
    pub fn assert_intact_at(&self, h: usize, eid: &EnclaveId, img: &Image) {
        assert_eq!(
            self.running_copies(eid),
            vec![h],
            "enclave must run only at host{h}"
        );
        let m = self.mon_ref(h);
        assert!(m.may_run(eid));
        let e = m.enclave_host_ref().get(eid).expect("image"); // safe: test assertion
        assert!(e.code == img.code && e.state == img.state, "image changed");
        let plain = m.unseal_data(eid, &e.sealed).expect("sealed data"); // safe: test assertion
        assert_eq!(&plain[..], &img.sealed[..]);
    }

    /// Whether the enclave's sealed blob at host `h` opens with host `other`'s key.
    pub fn sealed_opens_with(&self, h: usize, eid: &EnclaveId, other: usize, img: &Image) -> bool {
        let blob = &self
            .framework(h)
            .expect("up") // safe: test assertion
            .get(eid)
            .expect("image") // safe: test assertion
            .sealed;
        let key = self.hosts[other]
            .identity()
            .and_then(|id| id.sealing_key(&img.measurement(), eid, SEALED_DATA_KEY_ID))
            .expect("key"); // safe: test assertion
        rewire_core::seal::unseal(&key, blob).is_ok()
    }

    /// Load an enclave on host `h` and install it under its SDS-signed
    /// policy; `sealed` is plaintext that the host's monitor seals. Nothing
    /// stays loaded on failure.
    pub fn install_enclave(
        &mut self,
        h: usize,
        eid: EnclaveId,
        code: Vec<u8>,
        state: Vec<u8>,
        sealed: &[u8],
        policy: &[u8],
    ) -> Result<(), Error> {
        let m = self.hosts[h].monitor.as_mut().ok_or(Error::InvalidState)?;
        if m.enclave_host_ref().get(&eid).is_some() {
            return Err(Error::Busy);
        }
        m.enclave_host().load(eid, code, state, Vec::new());
        match m.install(policy).and_then(|()| m.seal_data(&eid, sealed)) {
            Ok(blob) => {
                if let Some(e) = m.enclave_host().enclaves.get_mut(&eid) {
                    e.sealed = blob;
                }
                Ok(())
            }
            Err(e) => {
                if m.status(&eid).is_none() {
                    m.enclave_host().enclaves.remove(&eid);
                }
                Err(e)
            }
        }
    }

    /// The enclave does some work at host `h` (its state changes) if its monitor lets it run.
    pub fn work(&mut self, h: usize, eid: &EnclaveId) -> bool {
        match self.hosts[h].monitor.as_mut() {
            Some(m) if m.may_run(eid) => m.enclave_host().step(eid),
            _ => false,
        }
    }

    /// Put SDS-side bytes on the wire to host `h`.
    pub fn send_to(&mut self, h: usize, bytes: Vec<u8>) {
        self.net.push_back(Packet {
            from: None,
            to: To::Host { idx: h, conn: None },
            bytes,
        });
    }

    pub fn has_error(&self, party: usize, e: Error) -> bool {
        self.errors.contains(&(party, e))
    }

    /// Deliver the packet at `index` now, bypassing hook and faults.
    pub fn deliver_at(&mut self, index: usize) -> Result<(), Error> {
        let p = self.net.remove(index).ok_or(Error::InvalidArgument)?;
        self.deliver(p);
        Ok(())
    }

    /// Remove the packet at `index` from the network.
    pub fn drop_at(&mut self, index: usize) -> Result<Packet, Error> {
        self.net.remove(index).ok_or(Error::InvalidArgument)
    }

    /// Queue a copy of the packet at `index` at the end.
    pub fn duplicate_at(&mut self, index: usize) -> Result<(), Error> {
        let p = self.net.get(index).ok_or(Error::InvalidArgument)?.clone();
        self.net.push_back(p);
        Ok(())
    }

    /// Move the packet at `index` to position `to` (clamped to the end).
    pub fn move_packet(&mut self, index: usize, to: usize) -> Result<(), Error> {
        let p = self.net.remove(index).ok_or(Error::InvalidArgument)?;
        let to = to.min(self.net.len());
        self.net.insert(to, p);
        Ok(())
    }

    /// Flip bits (`xor`) of byte `offset` (default: the middle) of the packet at `index`.
    pub fn tamper_at(&mut self, index: usize, offset: Option<usize>, xor: u8) -> Result<(), Error> {
        let p = self.net.get_mut(index).ok_or(Error::InvalidArgument)?;
        if p.bytes.is_empty() {
            return Err(Error::InvalidArgument);
        }
        let at = offset.unwrap_or(p.bytes.len() / 2).min(p.bytes.len() - 1);
        p.bytes[at] ^= xor;
        Ok(())
    }

    /// Replace the bytes of the packet at `index`.
    pub fn replace_at(&mut self, index: usize, data: Vec<u8>) -> Result<(), Error> {
        self.net.get_mut(index).ok_or(Error::InvalidArgument)?.bytes = data;
        Ok(())
    }
}

/// The fixed world of the Rust test suites: the SDS of [`keys::sds_key`],
/// hosts with [`keys::device_secret`] running [`SM_MEASUREMENT`].
impl World<Sds> {
    /// `atls[i]` is host i's ATL; every host is endorsed for a year, as a
    /// RISC-V host.
    pub fn new(atls: &[u64]) -> World {
        let platforms: Vec<(u64, Option<u64>)> = atls
            .iter()
            .map(|_| (rewire_core::wire::PLATFORM_RISCV64, None))
            .collect();
        World::with_platforms(atls, &platforms)
    }

    /// A mixed fleet: host i has ATL `atls[i]`; `platforms[i]` is (the
    /// platform the SDS endorses it for, the platform its monitor knows it
    /// runs, if it knows).
    pub fn with_platforms(atls: &[u64], platforms: &[(u64, Option<u64>)]) -> World {
        let mut sds = Sds::new(keys::sds_key());
        sds.add_device_root(keys::manufacturer_key().public());
        let mut w = World::empty(Some(sds), keys::sds_key().public(), WALL0, TIMEOUT_MS, 0);
        for (i, &atl) in atls.iter().enumerate() {
            w.sds()
                .certify_device(&keys::device_certificate(i))
                .expect("certify"); // safe: fixed valid inputs
            w.sds()
                .endorse_host(
                    keys::identity(i).certificate(),
                    vec![SM_MEASUREMENT],
                    platforms[i].0,
                    atl,
                    WALL0 - 10,
                    WALL0 + 86_400 * 365,
                )
                .expect("endorse"); // safe: fixed valid inputs
            if let Some(p) = platforms[i].1 {
                w.runs.insert(keys::identity(i).host_id(), p);
            }
            let platform = w.platform(1000 + i as u64);
            w.add_host(
                keys::device_secret(i),
                SM_MEASUREMENT,
                platform,
                SoftHost::default(),
            )
            .expect("start"); // safe: fresh platform
        }
        w.save_sds();
        w
    }

    /// Deploy an enclave built for `platform` on host `h` under a policy
    /// with `min_atl`; returns the policy.
    pub fn deploy_for(
        &mut self,
        platform: u64,
        h: usize,
        eid: EnclaveId,
        img: &Image,
        min_atl: u64,
    ) -> Vec<u8> {
        let hid = self.hosts[h].id;
        let policy = self
            .sds()
            .register_enclave(eid, img.measurement(), platform, min_atl, hid)
            .expect("register"); // safe: test setup
        self.save_sds();
        self.install_enclave(
            h,
            eid,
            img.code.clone(),
            img.state.clone(),
            &img.sealed,
            &policy,
        )
        .expect("install"); // safe: test setup
        policy
    }

    /// Deploy an enclave on host `h` under a policy with `min_atl`; returns the policy.
    pub fn deploy(&mut self, h: usize, eid: EnclaveId, img: &Image, min_atl: u64) -> Vec<u8> {
        self.deploy_for(rewire_core::wire::PLATFORM_RISCV64, h, eid, img, min_atl)
    }

    /// The SDS orders a migration; the order goes onto the network.
    pub fn order(&mut self, eid: &EnclaveId, target: usize, rid: RequestId) -> Result<(), Error> {
        let deadline = self.now_wall().saturating_add(3600);
        self.order_until(eid, target, rid, deadline)
    }

    /// [`World::order`] with a deadline.
    pub fn order_until(
        &mut self,
        eid: &EnclaveId,
        target: usize,
        rid: RequestId,
        deadline: u64,
    ) -> Result<(), Error> {
        let tid = self.hosts.get(target).ok_or(Error::InvalidArgument)?.id;
        let bytes = self.sds().order(eid, tid, rid, deadline)?;
        self.save_sds();
        let loc = self.sds().enclave(eid).map(|e| e.location);
        let src = loc
            .and_then(|l| self.index_of(&l))
            .ok_or(Error::UnknownEnclave)?;
        self.log(format!(
            "SDS → host{src}: signed MigrationRequest ({} B order)",
            bytes.len()
        ));
        self.send_to(src, bytes);
        Ok(())
    }

    /// The ledger as saved (what survives an SDS crash).
    pub fn saved_ledger(&self) -> Sds {
        Sds::from_bytes(keys::sds_key(), &self.sds_saved).expect("ledger") // safe: written by this world
    }

    /// Host index of the ledger's location for an enclave.
    pub fn location(&self, eid: &EnclaveId) -> usize {
        let loc = self.saved_ledger().enclave(eid).expect("known").location; // safe: test assertion
        self.index_of(&loc).expect("known host") // safe: test assertion
    }

    pub fn crash_sds(&mut self) {
        self.sds = None;
        self.log("SDS: CRASH".into());
    }

    pub fn restart_sds(&mut self) {
        self.sds = Some(self.saved_ledger());
        self.log("SDS: restarted from ledger".into());
    }

    pub fn restart_all(&mut self) {
        for i in 0..self.hosts.len() {
            self.restart(i).expect("restart"); // safe: test helper
        }
        if self.sds.is_none() {
            self.restart_sds();
        }
    }

    /// G3: exactly one runnable copy, byte-exact, and the ledger agrees.
    pub fn assert_exactly_one(&self, eid: &EnclaveId, img: &Image) -> usize {
        let running = self.running_copies(eid);
        assert_eq!(
            running.len(),
            1,
            "expected exactly one running copy, got {running:?}"
        );
        let h = running[0];
        let m = self.mon_ref(h);
        let st = m.status(eid).expect("record"); // safe: test assertion
        assert_eq!(st.state, EnclaveState::Running);
        let e = m.enclave_host_ref().get(eid).expect("image"); // safe: test assertion
        assert!(e.code == img.code, "code differs");
        assert!(e.state == img.state, "state differs");
        let plain = m
            .unseal_data(eid, &e.sealed)
            .expect("sealed data opens on its host"); // safe: test assertion
        assert_eq!(&plain[..], &img.sealed[..], "sealed data differs");
        let sds = self.saved_ledger();
        let entry = sds.enclave(eid).expect("ledger entry"); // safe: test assertion
        assert_eq!(self.index_of(&entry.location), Some(h), "ledger location");
        assert_eq!(entry.epoch, st.epoch, "ledger epoch");
        h
    }

    /// Restart host `i` running another SM build (fresh platform: a new SM
    /// cannot open the old SM's journal).
    pub fn reboot_with_sm(&mut self, i: usize, sm: Measurement) {
        self.hosts[i].sm = sm;
        let id = self.hosts[i].identity().expect("identity"); // safe: test helper
        let platform = self.platform(5000 + i as u64);
        let cfg = self.config_of(&self.hosts[i].id);
        self.hosts[i].parked = None;
        let m = Monitor::start(platform, SoftHost::default(), id, cfg);
        self.hosts[i].monitor = Some(m.expect("start")); // safe: test helper, fresh platform
    }

    /// An order signed by `key` for an arbitrary request, with the SDS's
    /// endorsements of `source` and `target_end` — what an attacker (or a
    /// buggy SDS) could put on the wire.
    pub fn craft_order(
        &mut self,
        key: &SigningKey,
        req: &MigrationRequest,
        source: usize,
        target_end: usize,
    ) -> Vec<u8> {
        let (s, t) = (self.hosts[source].id, self.hosts[target_end].id);
        let sds = self.sds();
        let source_endorsement = sds.host(&s).expect("host").endorsement.clone(); // safe: test helper
        let target_endorsement = sds.host(&t).expect("host").endorsement.clone(); // safe: test helper

        // The signer binds the endorsements it sends, as the SDS does.
        let mut req = req.clone();
        req.endorsements = [
            rewire_core::crypto::sha256(&source_endorsement),
            rewire_core::crypto::sha256(&target_endorsement),
        ];
        Message::Order(Order {
            request: req.sign(key).expect("sign"), // safe: test helper
            source_endorsement,
            target_endorsement,
        })
        .encode()
        .expect("encode") // safe: test helper
    }

    /// The request an honest SDS would sign for moving `eid` to `target` now.
    pub fn request(&mut self, eid: &EnclaveId, target: usize, rid: RequestId) -> MigrationRequest {
        let tid = self.hosts[target].id;
        let deadline = self.now_wall().saturating_add(3600);
        let e = self.sds().enclave(eid).expect("enclave").clone(); // safe: test helper
        let endorsement = |w: &mut World, h: HostId| {
            let e = &w.sds().host(&h).expect("host").endorsement; // safe: test helper
            rewire_core::crypto::sha256(e)
        };
        let endorsements = [endorsement(self, e.location), endorsement(self, tid)];
        MigrationRequest {
            request_id: rid,
            enclave_id: *eid,
            measurement: e.measurement,
            source: e.location,
            target: tid,
            epoch: e.epoch,
            deadline,
            endorsements,
            policy: rewire_core::crypto::sha256(&e.policy),
        }
    }
}
