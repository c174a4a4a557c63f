//! Shared harness of librewire's cargo-fuzz targets (`fuzz/fuzz_targets`).
//!
//! The keys, the enclave and the world are those of `rewire-tests` (same
//! seeds, same SM build, same wall clock), so that a crashing input found
//! here replays in `tests/tests/fuzz_regressions.rs` with the in-process
//! world of the test suite.
//!
//! Every target checks two things whatever the input: nothing panics (a
//! panic aborts the fuzzer, libfuzzer-sys installs that hook), and every
//! failure is a typed [`Error`] of the class the API documents ([`typed`],
//! [`typed_in`]). Where a decoder has an encoder, a decoded value must encode
//! back to exactly the input bytes (decoding is strict and canonical).

use std::collections::VecDeque;
use std::sync::OnceLock;

use rewire_core::crypto::{hkdf, Secret, SigningKey};
use rewire_core::error::Category;
use rewire_core::sds::MigrationPhase;
use rewire_core::soft::{Clock, SoftHost, SoftPlatform};
use rewire_core::wire::{Message, SignedBody};
use rewire_core::{Dest, EnclaveId, EnclaveState, Error, HostId, Monitor, RequestId, Sds};

pub use rewire_core;

pub mod peer;

// The keys, the SM build, the clock, the test image and the packet types are
// rewire-tests' own, so that fuzz inputs replay in its in-process world.
pub use rewire_tests::{
    config, device_secret, identity, sds_key, HostSlot as Slot, Image, Mon, Packet, To,
    SM_MEASUREMENT, TIMEOUT_MS, WALL0,
};
/// The enclave every world deploys on host 0 (as tests/tests/fuzz.rs).
pub const EID: EnclaveId = *b"enclave-fuzzed-1";
/// The request id of the recorded migration.
pub const RID: RequestId = [3; 16];
/// Hosts in a world, with these ATLs.
pub const ATLS: [u64; 2] = [2, 2];

// ---------------------------------------------------------------------------
// Keys (fixed seeds)

/// Host `i`'s device signing key (signs its SM certificate), derived as `Identity::derive` does.
pub fn device_key(i: usize) -> SigningKey {
    let seed = hkdf(device_secret(i).expose(), b"rewire/device-key/v1", &[]).expect("hkdf"); // safe: fixed inputs
    SigningKey::from_seed(seed).expect("seed") // safe: any 32 bytes are a seed
}

/// Host `i`'s SM signing key (TLS key; signs READY, decisions, acks).
pub fn sm_key(i: usize) -> SigningKey {
    let seed = hkdf(
        device_secret(i).expose(),
        b"rewire/sm-key/v1",
        &[&SM_MEASUREMENT],
    )
    .expect("hkdf"); // safe: fixed inputs
    SigningKey::from_seed(seed).expect("seed") // safe: any 32 bytes are a seed
}

/// Host `i`'s journal key (docs/protocol.md §1.2).
pub fn journal_key(i: usize) -> Secret {
    hkdf(
        device_secret(i).expose(),
        b"rewire/journal/v1",
        &[&SM_MEASUREMENT],
    )
    .expect("hkdf") // safe: fixed inputs
}

// ---------------------------------------------------------------------------
// Checks

/// Whether `REWIRE_FUZZ_TRACE` is set: targets then say what an input did
/// (to check that seeds reach where they should).
pub fn tracing() -> bool {
    static T: OnceLock<bool> = OnceLock::new();
    *T.get_or_init(|| std::env::var_os("REWIRE_FUZZ_TRACE").is_some())
}

/// `eprintln!` when [`tracing`].
#[macro_export]
macro_rules! trace {
    ($($t:tt)*) => {
        if $crate::tracing() {
            eprintln!($($t)*);
        }
    };
}

/// A failure must be one of rewire-core's stable error codes, and never the
/// "internal" code that stands for a caught panic.
pub fn typed(e: Error) {
    assert_eq!(Error::from_code(e.code()), Some(e), "untyped error {e:?}");
    assert_ne!(e, Error::Internal, "internal error");
}

/// [`typed`], and of one of these classes.
pub fn typed_in(e: Error, classes: &[Category]) {
    typed(e);
    assert!(
        classes.contains(&e.category()),
        "{e:?} ({:?}) not in {classes:?}",
        e.category()
    );
}

/// What a decoder of signed objects may answer.
pub const DECODE_OR_AUTH: &[Category] = &[Category::Decode, Category::Authorisation];

/// Sign arbitrary payload bytes as librewire's COSE_Sign1 profile does
/// (`wire::sign`): so the fuzzer reaches the payload decoders behind the
/// signature check.
pub fn sign_payload(key: &SigningKey, payload: Vec<u8>) -> Vec<u8> {
    use coset::{iana, CborSerializable, CoseSign1Builder, HeaderBuilder};
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .key_id(key.public().0.to_vec())
        .build();
    CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(b"", |tbs| key.sign(tbs))
        .build()
        .to_vec()
        .expect("COSE_Sign1 encodes") // safe: a well-formed structure always encodes
}

/// Fuzz one signed-object decoder. `data[0]` picks the mode: even, the rest
/// is a whole COSE_Sign1; odd, the rest is a payload that the harness signs
/// with `key`. Whatever verifies must re-sign to exactly the same bytes
/// (Ed25519 is deterministic; the payload encoding is canonical).
pub fn signed_decoder<T: SignedBody + PartialEq + std::fmt::Debug>(
    data: &[u8],
    key: &SigningKey,
    verify: impl Fn(&[u8]) -> rewire_core::Result<T>,
) -> Option<T> {
    let (&mode, rest) = data.split_first()?;
    let bytes = if mode & 1 == 0 {
        if let Err(e) = rewire_core::wire::Signed::parse(rest) {
            typed_in(e, &[Category::Decode]);
        }
        rest.to_vec()
    } else {
        sign_payload(key, rest.to_vec())
    };
    match verify(&bytes) {
        Ok(v) => {
            let again = v.sign(key).expect("a decoded object encodes"); // safe: fuzz assertion
            assert_eq!(again, bytes, "decode → encode is not the identity");
            Some(v)
        }
        Err(e) => {
            typed_in(e, DECODE_OR_AUTH);
            None
        }
    }
}

/// `Message::decode`, and for what decodes: encode gives back the input.
pub fn message_round_trip(bytes: &[u8]) -> Option<Message> {
    match Message::decode(bytes) {
        Ok(m) => {
            let enc = m.encode().expect("a decoded message encodes"); // safe: fuzz assertion
            assert_eq!(enc, bytes, "Message decode → encode is not the identity");
            assert_eq!(Message::decode(&enc).as_ref(), Ok(&m));
            Some(m)
        }
        Err(e) => {
            typed_in(e, &[Category::Decode]);
            None
        }
    }
}

// ---------------------------------------------------------------------------
// Input reader

/// Reads fuzzer bytes as a sequence of choices; exhausted input reads as zeros.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    pub fn u64(&mut self) -> u64 {
        (self.u32() as u64) | ((self.u32() as u64) << 32)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.u8() as usize % n
        }
    }
    /// Up to `n` bytes (fewer when the input runs out).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }
    /// A length-prefixed (u16) byte string.
    pub fn blob(&mut self) -> &'a [u8] {
        let n = self.u16() as usize;
        self.bytes(n)
    }
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        let b = self.bytes(N);
        a[..b.len()].copy_from_slice(b);
        a
    }
    pub fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.data.len())
    }
}

/// Mutate `b` as chosen by `r`: nothing, flip a byte, truncate, or extend.
pub fn mutate(b: &mut Vec<u8>, r: &mut Reader) {
    match r.u8() % 4 {
        0 => {}
        1 => {
            if !b.is_empty() {
                let i = r.u16() as usize % b.len();
                let x = r.u8().max(1);
                b[i] ^= x;
            }
        }
        2 => {
            if !b.is_empty() {
                let i = r.u16() as usize % b.len();
                b.truncate(i);
            }
        }
        _ => {
            let extra = r.blob();
            b.extend_from_slice(extra);
        }
    }
}

// ---------------------------------------------------------------------------
// The enclave

/// The test image: rewire-tests' `Image::sample(4, 2000)`.
pub fn image() -> Image {
    Image::sample(4, 2000)
}

// ---------------------------------------------------------------------------
// The world: one SDS, two software monitors, a relay the fuzzer controls.

pub struct World {
    pub clock: Clock,
    pub sds: Sds,
    pub hosts: Vec<Slot>,
    pub net: VecDeque<Packet>,
    /// The enclave's signed policy.
    pub policy: Vec<u8>,
    /// Signed endorsements of the hosts.
    pub endorsements: Vec<Vec<u8>>,
}

impl World {
    /// Two hosts (ATL 2), the enclave deployed on host 0 under a policy of ATL 1.
    pub fn new() -> World {
        let clock = Clock::default();
        let mut sds = Sds::new(sds_key());
        let mut hosts = Vec::new();
        let mut endorsements = Vec::new();
        for (i, &atl) in ATLS.iter().enumerate() {
            let id = identity(i);
            let e = sds
                .endorse_host(
                    id.certificate(),
                    vec![SM_MEASUREMENT],
                    atl,
                    WALL0 - 10,
                    WALL0 + 86_400 * 365,
                )
                .expect("endorse"); // safe: fixed valid inputs
            endorsements.push(e);
            let platform = SoftPlatform::new(1000 + i as u64, clock.clone(), Some(WALL0));
            let m = Monitor::start(platform, SoftHost::default(), id, config()).expect("start"); // safe: fresh platform
            hosts.push(Slot {
                id: m.host_id(),
                monitor: Some(m),
                parked: None,
            });
        }
        let img = image();
        let policy = sds
            .register_enclave(EID, img.measurement(), 1, hosts[0].id)
            .expect("register"); // safe: fixed valid inputs
        let mut w = World {
            clock,
            sds,
            hosts,
            net: VecDeque::new(),
            policy,
            endorsements,
        };
        let policy = w.policy.clone();
        let m = w.hosts[0].monitor.as_mut().expect("up"); // safe: just started
        m.enclave_host()
            .load(EID, img.code.clone(), img.state.clone(), Vec::new());
        m.install(&policy).expect("install"); // safe: valid policy, loaded enclave
        let blob = m.seal_data(&EID, &img.sealed).expect("seal"); // safe: installed enclave
        m.enclave_host()
            .enclaves
            .get_mut(&EID)
            .expect("loaded") // safe: loaded above
            .sealed = blob;
        w
    }

    pub fn index_of(&self, id: &HostId) -> Option<usize> {
        self.hosts.iter().position(|h| &h.id == id)
    }

    /// The SDS orders a migration of the enclave to `target`; the order goes onto the network.
    pub fn order(&mut self, target: usize, rid: RequestId) -> rewire_core::Result<()> {
        let tid = self.hosts[target % self.hosts.len()].id;
        let deadline = WALL0 + self.clock.now_ms() / 1000 + 3600;
        let bytes = self.sds.order(&EID, tid, rid, deadline)?;
        let loc = self
            .sds
            .enclave(&EID)
            .and_then(|e| self.index_of(&e.location))
            .unwrap_or(0);
        self.net.push_back(Packet {
            from: None,
            to: To::Host {
                idx: loc,
                conn: None,
            },
            bytes,
        });
        Ok(())
    }

    /// Move every monitor's outputs (at most `per_host` each) onto the network.
    pub fn collect(&mut self, per_host: usize) -> usize {
        let mut n = 0;
        for i in 0..self.hosts.len() {
            for _ in 0..per_host {
                let Some(m) = self.hosts[i].monitor.as_mut() else {
                    break;
                };
                let Some(o) = m.poll_output() else { break };
                while m.poll_event().is_some() {}
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

    /// Deliver one packet; returns the receiver's verdict (`Ok` for a party that is down).
    pub fn deliver(&mut self, p: Packet) -> rewire_core::Result<()> {
        match p.to {
            To::Sds => self.sds.handle(&p.bytes).map(|_| ()),
            To::Host { idx, conn } => {
                let from_id = p.from.map(|f| self.hosts[f % self.hosts.len()].id);
                let Some(m) = self.hosts[idx % ATLS.len()].monitor.as_mut() else {
                    return Ok(());
                };
                let from_id = from_id.unwrap_or(m.host_id());
                match conn {
                    None => m.handle_sds(&p.bytes),
                    Some(c) => m.handle_peer(from_id, c, &p.bytes),
                }
            }
        }
    }

    /// Faithful network until nothing moves (bounded); every verdict must be typed.
    pub fn run(&mut self, max_steps: usize) {
        for _ in 0..max_steps {
            self.collect(4);
            let Some(p) = self.net.pop_front() else {
                if self.collect(4) == 0 {
                    return;
                }
                continue;
            };
            if let Err(e) = self.deliver(p) {
                typed(e);
            }
        }
    }

    pub fn crash(&mut self, i: usize) {
        if let Some(m) = self.hosts[i].monitor.take() {
            self.hosts[i].parked = Some(m.into_parts());
        }
    }

    pub fn restart(&mut self, i: usize) -> rewire_core::Result<()> {
        let Some((p, h)) = self.hosts[i].parked.take() else {
            return Ok(());
        };
        match Monitor::start_or_return(p, h, identity(i), config()) {
            Ok(m) => {
                self.hosts[i].monitor = Some(m);
                Ok(())
            }
            Err(f) => {
                self.hosts[i].parked = Some((f.platform, f.host));
                Err(f.error)
            }
        }
    }

    fn framework(&self, i: usize) -> Option<&SoftHost> {
        match (&self.hosts[i].monitor, &self.hosts[i].parked) {
            (Some(m), _) => Some(m.enclave_host_ref()),
            (None, Some((_, h))) => Some(h),
            _ => None,
        }
    }

    pub fn running_copies(&self) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|&i| self.framework(i).is_some_and(|h| h.is_running(&EID)))
            .collect()
    }

    /// G2: at most one host runs the enclave, and only where its monitor allows it.
    pub fn assert_no_fork(&self) {
        let running = self.running_copies();
        assert!(running.len() <= 1, "FORK: enclave runs on {running:?}");
        for i in running {
            if let Some(m) = &self.hosts[i].monitor {
                assert!(m.may_run(&EID), "host{i} runs what its monitor forbids");
            }
        }
    }

    /// Host `i` runs the enclave only if its monitor allows it.
    pub fn assert_no_fork_at(&self, i: usize) {
        if self.framework(i).is_some_and(|h| h.is_running(&EID)) {
            if let Some(m) = &self.hosts[i].monitor {
                assert!(m.may_run(&EID), "host{i} runs what its monitor forbids");
            }
        }
    }

    /// Quiet period: faithful network, timeouts, the SDS's resolution and
    /// audit. Returns whether everything settled within `rounds`.
    pub fn settle(&mut self, rounds: usize) -> bool {
        for _ in 0..self.hosts.len() {
            let _ = self.restart_all_quiet();
        }
        for _ in 0..rounds {
            self.run(2000);
            let idle = self
                .hosts
                .iter()
                .all(|h| h.monitor.as_ref().is_none_or(|m| !m.in_flight()));
            if idle && self.sds.is_settled_all() {
                // Last, the ledger catches up on anything it never heard of
                // (an order it signed but did not keep): settled once an
                // audit changes nothing.
                let before = self.sds.to_bytes().ok();
                for (h, bytes) in self.sds.audit() {
                    if let Some(idx) = self.index_of(&h) {
                        self.net.push_back(Packet {
                            from: None,
                            to: To::Host { idx, conn: None },
                            bytes,
                        });
                    }
                }
                self.run(2000);
                if self.sds.to_bytes().ok() == before {
                    return true;
                }
                continue;
            }
            trace!(
                "settle: in flight {:?}, SDS settled {}, migration (id, epoch, ordered) {:?}, status {:?}",
                self.hosts
                    .iter()
                    .map(|h| h.monitor.as_ref().map(|m| m.in_flight()))
                    .collect::<Vec<_>>(),
                self.sds.is_settled_all(),
                self.sds
                    .enclave(&EID)
                    .and_then(|e| e.migration.as_ref())
                    .map(|m| (m.request_id, m.epoch, m.phase == MigrationPhase::Ordered)),
                self.hosts
                    .iter()
                    .map(|h| h.monitor.as_ref().and_then(|m| m.status(&EID)))
                    .collect::<Vec<_>>(),
            );
            self.clock.advance(TIMEOUT_MS + 1000);
            for i in 0..self.hosts.len() {
                if let Some(m) = self.hosts[i].monitor.as_mut() {
                    if let Err(e) = m.tick() {
                        typed(e);
                        if e == Error::Storage {
                            // Poisoned by a failed commit: the operator reboots it.
                            self.crash(i);
                            if let Err(e) = self.restart(i) {
                                panic!("host{i} cannot restart after a failed commit: {e:?}");
                            }
                        }
                    }
                }
            }
            for (h, bytes) in self.sds.resolution() {
                if let Some(idx) = self.index_of(&h) {
                    self.net.push_back(Packet {
                        from: None,
                        to: To::Host { idx, conn: None },
                        bytes,
                    });
                }
            }
        }
        false
    }

    fn restart_all_quiet(&mut self) -> rewire_core::Result<()> {
        for i in 0..self.hosts.len() {
            self.restart(i)?;
        }
        Ok(())
    }

    /// G3 after a quiet period: exactly one running copy, byte-exact, where the ledger says.
    pub fn assert_exactly_one(&self, img: &Image) {
        let running = self.running_copies();
        assert_eq!(running.len(), 1, "expected one running copy: {running:?}");
        let h = running[0];
        let m = self.hosts[h].monitor.as_ref().expect("up"); // safe: settle restarted every monitor
        let st = m.status(&EID).expect("record"); // safe: fuzz assertion
        assert_eq!(st.state, EnclaveState::Running);
        let e = m.enclave_host_ref().get(&EID).expect("image"); // safe: it runs
        assert!(e.code == img.code && e.state == img.state, "image changed");
        let plain = m.unseal_data(&EID, &e.sealed).expect("sealed data opens"); // safe: fuzz assertion
        assert_eq!(&plain[..], &img.sealed[..]);
        let entry = self.sds.enclave(&EID).expect("ledger entry"); // safe: registered
        assert_eq!(self.index_of(&entry.location), Some(h), "ledger location");
        assert_eq!(entry.epoch, st.epoch, "ledger epoch");
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

/// Every packet of one honest migration of the enclave from host 0 to host
/// 1 (request id [`RID`]), in delivery order, computed once per process.
pub fn recorded() -> &'static [Packet] {
    static REC: OnceLock<Vec<Packet>> = OnceLock::new();
    REC.get_or_init(|| {
        let mut w = World::new();
        w.order(1, RID).expect("order"); // safe: fixed valid world
        let mut all = Vec::new();
        for _ in 0..10_000 {
            w.collect(4);
            let Some(p) = w.net.pop_front() else { break };
            all.push(p.clone());
            let _ = w.deliver(p);
        }
        all
    })
}

/// The recorded orders and queries (SDS → monitor): signed by the SDS, so
/// they verify in any world with the same keys. Proofs (RELEASE, ABORT,
/// ACTIVE, DROPPED) are left out: replayed into another world with the same
/// keys they would be proofs of a history that world never had (something
/// only an SM that lost its journal *and* its counter could sign).
pub fn recorded_sds_path() -> Vec<&'static Packet> {
    recorded()
        .iter()
        .filter(|p| {
            matches!(p.to, To::Host { conn: None, .. })
                && matches!(
                    Message::decode(&p.bytes),
                    Ok(Message::Order(_) | Message::Query { .. })
                )
        })
        .collect()
}

/// Keys derived once per process.
pub struct Keys {
    pub sds: SigningKey,
    pub device: [SigningKey; 2],
    pub sm: [SigningKey; 2],
}

pub fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| Keys {
        sds: sds_key(),
        device: [device_key(0), device_key(1)],
        sm: [sm_key(0), sm_key(1)],
    })
}

/// Objects of a fresh world, made once per process.
#[derive(Debug)]
pub struct Fixtures {
    /// Signed endorsements of host 0 and host 1.
    pub endorsements: Vec<Vec<u8>>,
    /// The enclave's signed policy.
    pub policy: Vec<u8>,
    /// The hosts' device-signed SM certificates.
    pub certificates: Vec<Vec<u8>>,
    pub host_ids: Vec<HostId>,
    /// The SDS ledger right after registration.
    pub ledger: Vec<u8>,
}

pub fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let w = World::new();
        Fixtures {
            endorsements: w.endorsements.clone(),
            policy: w.policy.clone(),
            certificates: w
                .hosts
                .iter()
                .filter_map(|h| h.monitor.as_ref())
                .map(|m| m.identity().certificate().to_vec())
                .collect(),
            host_ids: w.hosts.iter().map(|h| h.id).collect(),
            ledger: w.sds.to_bytes().expect("ledger encodes"), // safe: fresh ledger
        }
    })
}
