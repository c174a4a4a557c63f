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

use std::sync::OnceLock;

use rewire_core::boot;
use rewire_core::crypto::{Secret, SigningKey};
use rewire_core::error::Category;
use rewire_core::wire::{Message, SignedBody};
use rewire_core::{EnclaveId, Error, HostId, RequestId};

pub use rewire_core;

pub mod peer;

// The keys, the SM build, the clock, the test image, the packet types and the
// world are rewire-sim's, so that fuzz inputs replay in the test suites' world.
pub use rewire_sim::{
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

/// Host `i`'s device signing key (signs its SM certificate; `rewire_core::boot`).
pub fn device_key(i: usize) -> SigningKey {
    boot::device_key(&device_secret(i)).expect("device key") // safe: fixed inputs
}

/// Host `i`'s SM secret, as its boot stage hands it over.
fn sm_secret(i: usize) -> Secret {
    boot::handoff(&device_secret(i), &SM_MEASUREMENT)
        .expect("handoff") // safe: fixed inputs
        .sm_secret
}

/// Host `i`'s SM signing key (TLS key; signs READY, decisions, acks).
pub fn sm_key(i: usize) -> SigningKey {
    boot::sm_key(&sm_secret(i)).expect("sm key") // safe: fixed inputs
}

/// Host `i`'s journal key (docs/protocol.md §1.2).
pub fn journal_key(i: usize) -> Secret {
    boot::journal_key(&sm_secret(i)).expect("journal key") // safe: fixed inputs
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
// The world: rewire-sim's, with two hosts (ATL 2) and the enclave deployed
// on host 0 under a policy of ATL 1; the fuzzer is the relay.

pub struct World {
    pub sim: rewire_sim::World,
    /// The enclave's signed policy.
    pub policy: Vec<u8>,
    /// Signed endorsements of the hosts.
    pub endorsements: Vec<Vec<u8>>,
}

impl std::ops::Deref for World {
    type Target = rewire_sim::World;
    fn deref(&self) -> &rewire_sim::World {
        &self.sim
    }
}

impl std::ops::DerefMut for World {
    fn deref_mut(&mut self) -> &mut rewire_sim::World {
        &mut self.sim
    }
}

impl World {
    pub fn new() -> World {
        let mut sim = rewire_sim::World::new(&ATLS);
        // A monitor poisoned by a failed commit is rebooted in a quiet period.
        sim.reboot_poisoned = true;
        let ids: Vec<HostId> = sim.hosts.iter().map(|h| h.id).collect();
        let endorsements = ids
            .iter()
            .map(|h| sim.sds().host(h).expect("endorsed").endorsement.clone()) // safe: endorsed by World::new
            .collect();
        let policy = sim.deploy(0, EID, &image(), 1);
        World {
            sim,
            policy,
            endorsements,
        }
    }

    /// The SDS orders a migration of the enclave to `target`; the order goes onto the network.
    pub fn order(&mut self, target: usize, rid: RequestId) -> rewire_core::Result<()> {
        let t = target % self.sim.hosts.len();
        self.sim.order(&EID, t, rid)
    }

    /// Deliver one packet; returns the receiver's verdict (`Ok` for a party that is down).
    pub fn deliver(&mut self, p: Packet) -> rewire_core::Result<()> {
        self.sim.deliver_verdict(p)
    }

    /// Faithful network until nothing moves (bounded); every verdict must be typed.
    pub fn run(&mut self, max_steps: u64) {
        let n = self.sim.errors.len();
        self.sim.run_bounded(max_steps, |_| {});
        self.check_errors_since(n);
    }

    fn check_errors_since(&self, n: usize) {
        for (_, e) in &self.sim.errors[n..] {
            typed(*e);
        }
    }

    pub fn running_copies(&self) -> Vec<usize> {
        self.sim.running_copies(&EID)
    }

    /// G2: at most one host runs the enclave, and only where its monitor allows it.
    pub fn assert_no_fork(&self) {
        self.sim.assert_no_fork(&EID)
    }

    /// Host `i` runs the enclave only if its monitor allows it.
    pub fn assert_no_fork_at(&self, i: usize) {
        self.sim.assert_no_fork_at(i, &EID)
    }

    /// Quiet period: every host restarted, then rewire-sim's quiet period
    /// (faithful network, timeouts, the SDS's resolution and audit; a
    /// monitor poisoned by a failed commit is rebooted). Returns whether
    /// everything settled within `rounds`; every error seen must be typed.
    pub fn settle(&mut self, rounds: usize) -> bool {
        for _ in 0..self.sim.hosts.len() {
            for i in 0..self.sim.hosts.len() {
                if self.sim.restart(i).is_err() {
                    break;
                }
            }
        }
        let n = self.sim.errors.len();
        let settled = self.sim.settle_rounds(rounds, 2000).is_some();
        self.check_errors_since(n);
        if !settled {
            trace!(
                "settle: in flight {:?}, SDS settled {:?}, status {:?}",
                self.sim
                    .hosts
                    .iter()
                    .map(|h| h.monitor.as_ref().map(|m| m.in_flight()))
                    .collect::<Vec<_>>(),
                self.sim.sds.as_ref().map(|s| s.is_settled_all()),
                self.sim
                    .hosts
                    .iter()
                    .map(|h| h.monitor.as_ref().and_then(|m| m.status(&EID)))
                    .collect::<Vec<_>>(),
            );
        }
        settled
    }

    /// G3 after a quiet period: exactly one running copy, byte-exact, where the ledger says.
    pub fn assert_exactly_one(&mut self, img: &Image) {
        self.sim.save_sds();
        self.sim.assert_exactly_one(&EID, img);
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
            ledger: w.sds.as_ref().expect("SDS up").to_bytes().expect("ledger encodes"), // safe: fresh ledger
        }
    })
}
