//! An in-process world for librewire's system tests and the demo: one SDS,
//! N software monitors, and an untrusted network between them that the test
//! controls packet by packet (deliver, drop, duplicate, reorder, corrupt,
//! redirect), plus crashes and restarts of any party from its durable state.
//!
//! Nothing here contains protocol logic: it only routes bytes and keeps
//! score. The invariants it checks are the guarantees (G2 no fork, G3 no loss).

use std::collections::{BTreeMap, VecDeque};

pub mod model;

pub mod node;

use rewire_core::monitor::SEALED_DATA_KEY_ID;
use rewire_core::soft::{Clock, SoftHost, SoftPlatform};
use rewire_core::wire::{Message, MigrationRequest, Order, SignedBody};
use rewire_core::{
    Config, Dest, EnclaveId, EnclaveState, Error, HostId, Identity, LedgerEvent, Monitor,
    RequestId, Sds, Secret, SigningKey,
};

pub type Mon = Monitor<SoftPlatform, SoftHost>;

/// The SM build every simulated host runs.
pub const SM_MEASUREMENT: [u8; 32] = [0x5a; 32];
/// Wall time at clock 0.
pub const WALL0: u64 = 1_800_000_000;
/// Monitor timeout used in the world.
pub const TIMEOUT_MS: u64 = 30_000;

pub fn sds_key() -> SigningKey {
    SigningKey::from_seed(Secret::from_bytes([0x5d; 32])).expect("valid seed")
}

/// Host `i`'s device secret (fixed, so that tests and fuzz seeds agree).
pub fn device_secret(i: usize) -> Secret {
    let mut s = [0u8; 32];
    s[0] = 0xde;
    s[1] = i as u8;
    s[31] = 0x77;
    Secret::from_bytes(s)
}

pub fn identity(i: usize) -> Identity {
    Identity::derive(device_secret(i), SM_MEASUREMENT).expect("identity")
}

/// Where a packet goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum To {
    Sds,
    /// A monitor; `conn` is the channel for peer traffic, `None` for SDS traffic.
    Host {
        idx: usize,
        conn: Option<RequestId>,
    },
}

#[derive(Debug, Clone)]
pub struct Packet {
    pub from: Option<usize>,
    pub to: To,
    pub bytes: Vec<u8>,
}

pub struct HostSlot {
    pub id: HostId,
    pub monitor: Option<Mon>,
    /// Platform and framework of a crashed monitor (they survive the crash).
    pub parked: Option<(SoftPlatform, SoftHost)>,
}

/// What a test enclave looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub code: Vec<u8>,
    pub state: Vec<u8>,
    pub sealed: Vec<u8>,
}

impl Image {
    /// A deterministic image with `state_len` bytes of state.
    pub fn sample(tag: u8, state_len: usize) -> Image {
        let mut code = b"\x7fELF enclave ".to_vec();
        code.extend((0..3000u32).map(|i| (i as u8).wrapping_mul(31).wrapping_add(tag)));
        let state = (0..state_len)
            .map(|i| ((i as u32).wrapping_mul(2654435761) >> 13) as u8 ^ tag)
            .collect();
        let sealed = format!("sealed secret of enclave {tag}: MARKER-{tag:03}").into_bytes();
        Image {
            code,
            state,
            sealed,
        }
    }
    pub fn measurement(&self) -> [u8; 32] {
        rewire_core::crypto::sha256(&self.code)
    }
    /// SHA-256 of each section's plaintext (what END carries).
    pub fn digests(&self) -> [[u8; 32]; 3] {
        use rewire_core::crypto::sha256;
        [
            sha256(&self.code),
            sha256(&self.state),
            sha256(&self.sealed),
        ]
    }
}

pub struct World {
    pub clock: Clock,
    pub sds: Option<Sds>,
    /// The SDS's durable ledger, written after every change.
    pub sds_saved: Vec<u8>,
    pub hosts: Vec<HostSlot>,
    pub net: VecDeque<Packet>,
    /// Relay rewrites: peer traffic for host a goes to host b.
    pub redirect: BTreeMap<usize, usize>,
    /// Errors returned by parties, in order: (party, error). Party `usize::MAX` is the SDS.
    pub errors: Vec<(usize, Error)>,
    pub ledger: Vec<LedgerEvent>,
    /// Print each step (the demo), with real elapsed time since `t0`.
    pub verbose: bool,
    pub t0: std::time::Instant,
    pub delivered: u64,
}

pub const SDS: usize = usize::MAX;

impl World {
    /// `atls[i]` is host i's ATL.
    pub fn new(atls: &[u64]) -> World {
        let clock = Clock::default();
        let mut sds = Sds::new(sds_key());
        let mut hosts = Vec::new();
        for (i, &atl) in atls.iter().enumerate() {
            let id = identity(i);
            sds.endorse_host(
                id.certificate(),
                vec![SM_MEASUREMENT],
                atl,
                WALL0 - 10,
                WALL0 + 86_400 * 365,
            )
            .expect("endorse");
            let platform = SoftPlatform::new(1000 + i as u64, clock.clone(), Some(WALL0));
            let m = Monitor::start(platform, SoftHost::default(), id, config()).expect("start");
            hosts.push(HostSlot {
                id: m.host_id(),
                monitor: Some(m),
                parked: None,
            });
        }
        let sds_saved = sds.to_bytes().expect("ledger");
        World {
            clock,
            sds: Some(sds),
            sds_saved,
            hosts,
            net: VecDeque::new(),
            redirect: BTreeMap::new(),
            errors: Vec::new(),
            ledger: Vec::new(),
            verbose: false,
            t0: std::time::Instant::now(),
            delivered: 0,
        }
    }

    pub fn sds(&mut self) -> &mut Sds {
        self.sds.as_mut().expect("SDS is up")
    }

    pub fn mon(&mut self, i: usize) -> &mut Mon {
        self.hosts[i].monitor.as_mut().expect("monitor is up")
    }

    pub fn mon_ref(&self, i: usize) -> &Mon {
        self.hosts[i].monitor.as_ref().expect("monitor is up")
    }

    fn save_sds(&mut self) {
        if let Some(s) = &self.sds {
            self.sds_saved = s.to_bytes().expect("ledger");
        }
    }

    /// Deploy an enclave on host `h` under a policy with `min_atl`.
    pub fn deploy(&mut self, h: usize, eid: EnclaveId, img: &Image, min_atl: u64) {
        let hid = self.hosts[h].id;
        let policy = self
            .sds()
            .register_enclave(eid, img.measurement(), min_atl, hid)
            .expect("register");
        self.save_sds();
        let m = self.mon(h);
        m.enclave_host()
            .load(eid, img.code.clone(), img.state.clone(), Vec::new());
        m.install(&policy).expect("install");
        let blob = m.seal_data(&eid, &img.sealed).expect("seal");
        m.enclave_host()
            .enclaves
            .get_mut(&eid)
            .expect("loaded")
            .sealed = blob;
    }

    /// The SDS orders a migration; the order goes onto the network.
    pub fn order(&mut self, eid: &EnclaveId, target: usize, rid: RequestId) -> Result<(), Error> {
        let tid = self.hosts[target].id;
        let deadline = WALL0 + self.clock.now_ms() / 1000 + 3600;
        let bytes = self.sds().order(eid, tid, rid, deadline)?;
        self.save_sds();
        let src = self.location(eid);
        self.log(format!(
            "SDS → host{src}: signed MigrationRequest ({} B order)",
            bytes.len()
        ));
        self.net.push_back(Packet {
            from: None,
            to: To::Host {
                idx: src,
                conn: None,
            },
            bytes,
        });
        Ok(())
    }

    /// Host index of the ledger's location for an enclave.
    pub fn location(&self, eid: &EnclaveId) -> usize {
        let sds = Sds::from_bytes(sds_key(), &self.sds_saved).expect("ledger");
        let loc = sds.enclave(eid).expect("known").location;
        self.index_of(&loc).expect("known host")
    }

    pub fn index_of(&self, id: &HostId) -> Option<usize> {
        self.hosts.iter().position(|h| &h.id == id)
    }

    fn log(&self, s: String) {
        if self.verbose {
            println!(
                "  [{:>9.3} ms] {s}",
                self.t0.elapsed().as_secs_f64() * 1000.0
            );
        }
    }

    /// Log a monitor's progress events; an abort's reason counts as its error.
    fn take_events(&mut self, i: usize) {
        let mut events = Vec::new();
        if let Some(m) = self.hosts[i].monitor.as_mut() {
            while let Some((_, e)) = m.poll_event() {
                events.push(e);
            }
        }
        for e in events {
            self.log(format!("host{i}: {}", describe_event(e)));
            if let rewire_core::Event::Aborted(why) = e {
                self.errors.push((i, why));
            }
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

    /// Deliver one packet to its destination (dropped if that party is down).
    pub fn deliver(&mut self, p: Packet) {
        self.delivered += 1;
        match p.to {
            To::Sds => {
                let Some(sds) = self.sds.as_mut() else { return };
                match sds.handle(&p.bytes) {
                    Ok(ev) => {
                        self.log(format!("SDS ledger: {}", describe(&ev)));
                        self.ledger.push(ev);
                        self.save_sds();
                    }
                    Err(e) => self.errors.push((SDS, e)),
                }
            }
            To::Host { idx, conn } => {
                let from_id = p.from.map(|f| self.hosts[f].id);
                let Some(m) = self.hosts[idx].monitor.as_mut() else {
                    return;
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
            }
        }
    }

    /// Run the faithful network until nothing moves. `check` runs after every delivery.
    pub fn run_with(&mut self, mut check: impl FnMut(&World)) {
        loop {
            self.collect(4);
            let Some(p) = self.net.pop_front() else {
                if self.collect(4) == 0 {
                    return;
                }
                continue;
            };
            self.deliver(p);
            check(self);
        }
    }

    pub fn run(&mut self) {
        self.run_with(|_| {})
    }

    /// Quiet period: faithful network, time passes (timeouts fire), and the
    /// SDS re-sends what settles in-doubt migrations. Returns rounds used.
    pub fn settle(&mut self) -> usize {
        for round in 0..400 {
            self.run();
            let idle = self
                .hosts
                .iter()
                .all(|h| h.monitor.as_ref().is_none_or(|m| !m.in_flight()));
            if idle && self.sds.as_ref().is_some_and(|s| s.is_settled_all()) {
                // Last, the ledger catches up on anything it never heard of.
                let before = self.sds_saved.clone();
                self.audit();
                self.run();
                if self.sds_saved == before {
                    return round;
                }
                continue;
            }
            self.clock.advance(TIMEOUT_MS + 1000);
            for i in 0..self.hosts.len() {
                if let Some(m) = self.hosts[i].monitor.as_mut() {
                    if let Err(e) = m.tick() {
                        self.errors.push((i, e));
                    }
                }
            }
            let msgs = match self.sds.as_mut() {
                Some(s) => s.resolution(),
                None => Vec::new(),
            };
            self.save_sds();
            for (h, bytes) in msgs {
                if let Some(idx) = self.index_of(&h) {
                    self.net.push_back(Packet {
                        from: None,
                        to: To::Host { idx, conn: None },
                        bytes,
                    });
                }
            }
        }
        let idle: Vec<bool> = self
            .hosts
            .iter()
            .map(|h| h.monitor.as_ref().is_none_or(|m| !m.in_flight()))
            .collect();
        let sds = self.sds.as_ref().map(|s| s.is_settled_all());
        panic!("world did not settle in 400 rounds: idle {idle:?}, sds {sds:?}");
    }

    /// The SDS asks every enclave's host for its latest proof.
    pub fn audit(&mut self) {
        let msgs = match self.sds.as_ref() {
            Some(s) => s.audit(),
            None => return,
        };
        for (h, bytes) in msgs {
            if let Some(idx) = self.index_of(&h) {
                self.send_to(idx, bytes);
            }
        }
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
        match Monitor::start_or_return(p, h, identity(i), config()) {
            Ok(m) => {
                self.hosts[i].monitor = Some(m);
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

    pub fn crash_sds(&mut self) {
        self.sds = None;
        self.log("SDS: CRASH".into());
    }

    pub fn restart_sds(&mut self) {
        self.sds = Some(Sds::from_bytes(sds_key(), &self.sds_saved).expect("ledger"));
        self.log("SDS: restarted from ledger".into());
    }

    pub fn restart_all(&mut self) {
        for i in 0..self.hosts.len() {
            self.restart(i).expect("restart");
        }
        if self.sds.is_none() {
            self.restart_sds();
        }
    }

    fn framework(&self, i: usize) -> Option<&SoftHost> {
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

    /// G2: at most one host runs the enclave, and a running copy is one its
    /// monitor says may run.
    pub fn assert_no_fork(&self, eid: &EnclaveId) {
        let running = self.running_copies(eid);
        assert!(
            running.len() <= 1,
            "FORK: enclave runs on hosts {running:?}"
        );
        for i in running {
            if let Some(m) = &self.hosts[i].monitor {
                assert!(
                    m.may_run(eid),
                    "host{i} runs an enclave its monitor does not allow"
                );
            }
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
        let m = self.hosts[h].monitor.as_ref().expect("up");
        let st = m.status(eid).expect("record");
        assert_eq!(st.state, EnclaveState::Running);
        let e = m.enclave_host_ref().get(eid).expect("image");
        assert!(e.code == img.code, "code differs");
        assert!(e.state == img.state, "state differs");
        let plain = m
            .unseal_data(eid, &e.sealed)
            .expect("sealed data opens on its host");
        assert_eq!(&plain[..], &img.sealed[..], "sealed data differs");
        let sds = Sds::from_bytes(sds_key(), &self.sds_saved).expect("ledger");
        let entry = sds.enclave(eid).expect("ledger entry");
        assert_eq!(self.index_of(&entry.location), Some(h), "ledger location");
        assert_eq!(entry.epoch, st.epoch, "ledger epoch");
        h
    }

    /// The enclave is runnable at `h` with the image intact (rejection checks).
    pub fn assert_intact_at(&self, h: usize, eid: &EnclaveId, img: &Image) {
        assert_eq!(
            self.running_copies(eid),
            vec![h],
            "enclave must run only at host{h}"
        );
        let m = self.hosts[h].monitor.as_ref().expect("up");
        assert!(m.may_run(eid));
        let e = m.enclave_host_ref().get(eid).expect("image");
        assert!(e.code == img.code && e.state == img.state, "image changed");
        let plain = m.unseal_data(eid, &e.sealed).expect("sealed data");
        assert_eq!(&plain[..], &img.sealed[..]);
    }

    /// Whether the enclave's sealed blob at host `h` opens with host `other`'s key.
    pub fn sealed_opens_with(&self, h: usize, eid: &EnclaveId, other: usize, img: &Image) -> bool {
        let blob = &self
            .framework(h)
            .expect("up")
            .get(eid)
            .expect("image")
            .sealed;
        let key = identity(other)
            .sealing_key(&img.measurement(), SEALED_DATA_KEY_ID)
            .expect("key");
        rewire_core::seal::unseal(&key, blob).is_ok()
    }

    /// Restart host `i` running another SM build (fresh platform: a new SM
    /// cannot open the old SM's journal).
    pub fn reboot_with_sm(&mut self, i: usize, sm: [u8; 32]) {
        let id = Identity::derive(device_secret(i), sm).expect("identity");
        let platform = SoftPlatform::new(5000 + i as u64, self.clock.clone(), Some(WALL0));
        self.hosts[i].monitor =
            Some(Monitor::start(platform, SoftHost::default(), id, config()).expect("start"));
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
        let source_endorsement = sds.host(&s).expect("host").endorsement.clone();
        let target_endorsement = sds.host(&t).expect("host").endorsement.clone();
        // The signer binds the endorsements it sends, as the SDS does.
        let mut req = req.clone();
        req.endorsements = [
            rewire_core::crypto::sha256(&source_endorsement),
            rewire_core::crypto::sha256(&target_endorsement),
        ];
        Message::Order(Order {
            request: req.sign(key).expect("sign"),
            source_endorsement,
            target_endorsement,
        })
        .encode()
        .expect("encode")
    }

    /// The request an honest SDS would sign for moving `eid` to `target` now.
    pub fn request(&mut self, eid: &EnclaveId, target: usize, rid: RequestId) -> MigrationRequest {
        let tid = self.hosts[target].id;
        let deadline = WALL0 + self.clock.now_ms() / 1000 + 3600;
        let e = self.sds().enclave(eid).expect("enclave").clone();
        let endorsement = |w: &mut World, h: HostId| {
            rewire_core::crypto::sha256(&w.sds().host(&h).expect("host").endorsement)
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
}

pub fn config() -> Config {
    let mut c = Config::new(sds_key().public());
    c.timeout_ms = TIMEOUT_MS;
    c
}

pub fn describe_event(e: rewire_core::Event) -> String {
    use rewire_core::Event::*;
    match e {
        Validated => "SMS: request verified (SDS signature, names me as source, epoch, deadline, target ATL >= policy)".into(),
        Frozen => "SMS: FROZEN journaled (sealed, counter-bound), enclave paused".into(),
        ChannelUp => "SMS: TLS 1.3 handshake done (mutual raw public keys = SM keys)".into(),
        Offered => "SMS: OFFER sent (request, endorsements, policy, SM certificate, sizes)".into(),
        OfferAccepted => "SMT: OFFER verified (request names me, source evidence = TLS key, policy, ATL, epoch); RECEIVING journaled; ACCEPT sent".into(),
        TargetVerified => "SMS: target evidence verified (endorsed device, endorsed SM, = TLS key); streaming code, state, unsealed data".into(),
        StreamDone => "SMS: image sent; END with SHA-256 digests".into(),
        PendingReady => "SMT: digests + code measurement verified, sealed data re-sealed under my key; PENDING journaled; READY (signed report) sent".into(),
        Committed => "SMS: READY verified; MIGRATED journaled; source copy destroyed; RELEASE sent".into(),
        Activated => "SMT: RELEASE verified (source SM key); ACTIVE journaled; enclave runs".into(),
        Aborted(e) => format!("SMS: aborted ({e}); ABORTED journaled; enclave resumed"),
        Dropped => "SMT: incoming copy dropped".into(),
    }
}

pub fn describe(e: &LedgerEvent) -> String {
    match e {
        LedgerEvent::Released { epoch, .. } => {
            format!("RELEASE received: enclave belongs to the target at epoch {epoch}")
        }
        LedgerEvent::Activated { epoch, .. } => {
            format!("ACTIVE received: migration complete at epoch {epoch}")
        }
        LedgerEvent::Aborted { epoch, .. } => {
            format!("ABORT received: enclave stays at the source, epoch {epoch}")
        }
        LedgerEvent::Dropped { .. } => "DROPPED received: target's pending copy is gone".into(),
    }
}

/// A small deterministic PRNG for adversarial schedules (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}
