//! `make bench`: librewire's performance goals, each measured against its
//! baseline in the same process run, printed as one table.
//!
//! P1 latency    full 1 KiB migration ÷ bare mutual-RPK TLS 1.3 handshake + 1 KiB (same rustls config)
//! P2 throughput 256 MiB migration bytes/s ÷ ring AEAD seal bytes/s (16 KiB chunks)
//! P3 memory     peak heap of the SMS and the SMT (tagged allocator) for 1, 64, 256 MiB
//! P4 sealing    librewire seal / unseal bytes/s ÷ ring AEAD seal bytes/s, same chunk size
//! P5 size       linked text of a bare-metal monitor using librewire (measured by `make bench`, passed in)
//!
//! Timing uses medians of repeated runs; nothing here asserts a time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::Instant;

use rewire_core::channel::Channel;
use rewire_core::crypto::{sha256, Digest, Secret, SigningKey};
use rewire_core::seal::{Sealer, Unsealer};
use rewire_core::soft::{Clock, SoftPlatform};
use rewire_core::{Config, Dest, EnclaveHost, EnclaveId, Identity, Monitor, Sds, Section};

// ---------------------------------------------------------------------------
// P3: an allocator that charges every allocation to the party running now.

const PARTIES: usize = 4; // 0: driver, 1: SMS, 2: SMT, 3: SDS
static LIVE: [AtomicIsize; PARTIES] = [const { AtomicIsize::new(0) }; PARTIES];
static PEAK: [AtomicUsize; PARTIES] = [const { AtomicUsize::new(0) }; PARTIES];
thread_local!(static PARTY: Cell<usize> = const { Cell::new(0) });
const HDR: usize = 16;

struct Tagged;

unsafe impl GlobalAlloc for Tagged {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let party = PARTY.try_with(|p| p.get()).unwrap_or(0);
        let lay = Layout::from_size_align(l.size() + HDR, l.align().max(HDR)).unwrap();
        let p = unsafe { System.alloc(lay) };
        if p.is_null() {
            return p;
        }
        unsafe { (p as *mut usize).write(party) };
        let live = LIVE[party].fetch_add(l.size() as isize, Ordering::Relaxed) + l.size() as isize;
        PEAK[party].fetch_max(live.max(0) as usize, Ordering::Relaxed);
        unsafe { p.add(HDR) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let base = unsafe { p.sub(HDR) };
        let party = unsafe { (base as *const usize).read() };
        LIVE[party].fetch_sub(l.size() as isize, Ordering::Relaxed);
        let lay = Layout::from_size_align(l.size() + HDR, l.align().max(HDR)).unwrap();
        unsafe { System.dealloc(base, lay) }
    }
}

#[global_allocator]
static ALLOC: Tagged = Tagged;

fn as_party<T>(party: usize, f: impl FnOnce() -> T) -> T {
    let prev = PARTY.with(|p| p.replace(party));
    let r = f();
    PARTY.with(|p| p.set(prev));
    r
}

fn reset_peaks() {
    for i in 0..PARTIES {
        PEAK[i].store(
            LIVE[i].load(Ordering::Relaxed).max(0) as usize,
            Ordering::Relaxed,
        );
    }
}

// ---------------------------------------------------------------------------
// An enclave framework that streams: the source generates its state on the
// fly, the target hashes what it imports. No image is held in memory, so the
// heap that remains is the monitors'.

const CODE: &[u8] = b"bench enclave code: this is what gets measured";

#[derive(Default)]
struct StreamHost {
    state_len: u64,
    sealed: Vec<u8>,
    imported: [u64; 3],
    running: bool,
    present: bool,
    digest: Option<rewire_core::crypto::Hasher>,
}

fn pattern(offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = ((offset + i as u64) as u32)
            .wrapping_mul(2654435761)
            .to_le_bytes()[1];
    }
}

impl EnclaveHost for StreamHost {
    fn pause(&mut self, _: &EnclaveId) -> rewire_core::Result<()> {
        self.running = false;
        Ok(())
    }
    fn resume(&mut self, _: &EnclaveId) -> rewire_core::Result<()> {
        self.running = true;
        Ok(())
    }
    fn destroy(&mut self, _: &EnclaveId) -> rewire_core::Result<()> {
        self.present = false;
        self.imported = [0; 3];
        Ok(())
    }
    fn export_len(&mut self, _: &EnclaveId, s: Section) -> rewire_core::Result<u64> {
        Ok(match s {
            Section::Code => CODE.len() as u64,
            Section::State => self.state_len,
            Section::Sealed => self.sealed.len() as u64,
        })
    }
    fn export(
        &mut self,
        _: &EnclaveId,
        s: Section,
        off: u64,
        buf: &mut [u8],
    ) -> rewire_core::Result<usize> {
        let src: &[u8] = match s {
            Section::Code => CODE,
            Section::Sealed => &self.sealed,
            Section::State => {
                let n = (buf.len() as u64).min(self.state_len - off) as usize;
                pattern(off, &mut buf[..n]);
                return Ok(n);
            }
        };
        let n = buf.len().min(src.len() - off as usize);
        buf[..n].copy_from_slice(&src[off as usize..off as usize + n]);
        Ok(n)
    }
    fn import(
        &mut self,
        _: &EnclaveId,
        s: Section,
        _off: u64,
        data: &[u8],
    ) -> rewire_core::Result<()> {
        self.present = true;
        if s == Section::Code {
            self.digest
                .get_or_insert_with(Default::default)
                .update(data);
        }
        self.imported[s as usize] += data.len() as u64;
        Ok(())
    }
    fn measure(&mut self, _: &EnclaveId) -> rewire_core::Result<Digest> {
        Ok(match &self.digest {
            Some(h) => h.clone().finish(),
            None => sha256(CODE),
        })
    }
    fn attest(&mut self, _: &EnclaveId, rd: &Digest) -> rewire_core::Result<Vec<u8>> {
        Ok(rd.to_vec())
    }
}

type Mon = Monitor<SoftPlatform, StreamHost>;
const EID: EnclaveId = *b"bench-enclave-01";
const WALL: u64 = 1_800_000_000;

struct Fleet {
    sds: Sds,
    mons: [Mon; 2],
}

fn fleet(state_len: u64) -> Fleet {
    let clock = Clock::default();
    let sds_key = SigningKey::from_seed(Secret::from_bytes([9; 32])).unwrap();
    let mut sds = Sds::new(sds_key);
    let mk = |i: u8| {
        let id = Identity::derive(Secret::from_bytes([i; 32]), [0x5a; 32]).unwrap();
        let host = StreamHost {
            state_len: if i == 1 { state_len } else { 0 },
            present: i == 1,
            ..Default::default()
        };
        (id, host)
    };
    let (id_a, host_a) = mk(1);
    let (id_b, host_b) = mk(2);
    for id in [&id_a, &id_b] {
        sds.endorse_host(
            id.certificate(),
            vec![[0x5a; 32]],
            1,
            WALL - 10,
            WALL + 10_000,
        )
        .unwrap();
    }
    let cfg = Config::new(sds.public_key());
    let a = Monitor::start(
        SoftPlatform::new(1, clock.clone(), Some(WALL)),
        host_a,
        id_a,
        cfg.clone(),
    )
    .unwrap();
    let b = Monitor::start(SoftPlatform::new(2, clock, Some(WALL)), host_b, id_b, cfg).unwrap();
    let mut f = Fleet { sds, mons: [a, b] };
    let host_a = f.mons[0].host_id();
    let policy = f
        .sds
        .register_enclave(EID, sha256(CODE), 1, host_a)
        .unwrap();
    f.mons[0].install(&policy).unwrap();
    let blob = f.mons[0]
        .seal_data(&EID, b"the enclave's sealed secret")
        .unwrap();
    f.mons[0].enclave_host().sealed = blob;
    f
}

/// Order and run the migration to completion; every output is delivered at once.
fn migrate(f: &mut Fleet, rid: u8) {
    let target = f.mons[1].host_id();
    let order = as_party(3, || f.sds.order(&EID, target, [rid; 16], WALL + 3600)).unwrap();
    as_party(1, || f.mons[0].handle_sds(&order)).unwrap();
    let ids = [f.mons[0].host_id(), f.mons[1].host_id()];
    loop {
        let mut moved = false;
        for i in 0..2 {
            while let Some(o) = as_party(1 + i, || f.mons[i].poll_output()) {
                moved = true;
                match o.dest {
                    Dest::Sds => {
                        let _ = as_party(3, || f.sds.handle(&o.bytes));
                    }
                    Dest::Peer { host, conn } => {
                        let j = if host == ids[0] { 0 } else { 1 };
                        let _ = as_party(1 + j, || f.mons[j].handle_peer(ids[i], conn, &o.bytes));
                    }
                }
            }
        }
        if !moved {
            break;
        }
    }
    assert!(f.mons[1].may_run(&EID), "migration did not complete");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------
// Baselines

/// Bare handshake + 1 KiB, same rustls configuration as the monitors' channel.
fn handshake_1k() -> f64 {
    let a = SigningKey::from_seed(Secret::from_bytes([1; 32])).unwrap();
    let b = SigningKey::from_seed(Secret::from_bytes([2; 32])).unwrap();
    let t = Instant::now();
    let mut c = Channel::client(&a, WALL).unwrap();
    let mut s = Channel::server(&b, WALL).unwrap();
    c.send(vec![7; 1024]).unwrap();
    let mut to_s = c.exchange(&[]).0;
    let mut got = 0;
    for _ in 0..10 {
        let (to_c, msgs, r) = s.exchange(&to_s);
        r.unwrap();
        got += msgs.len();
        let (out, _, r) = c.exchange(&to_c);
        r.unwrap();
        to_s = out;
        if got > 0 {
            break;
        }
    }
    let (_, msgs, _) = s.exchange(&to_s);
    assert!(got + msgs.len() >= 1, "1 KiB did not arrive");
    t.elapsed().as_secs_f64()
}

fn ring_seal_rate(chunk: usize, total: usize, alg: &'static ring::aead::Algorithm) -> f64 {
    let key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(alg, &[7u8; 32][..alg.key_len()]).unwrap(),
    );
    let mut buf = vec![5u8; chunk];
    let t = Instant::now();
    let mut n = 0u64;
    for _ in 0..total / chunk {
        n += 1;
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&n.to_be_bytes());
        let tag = key
            .seal_in_place_separate_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::empty(),
                &mut buf,
            )
            .unwrap();
        std::hint::black_box(&tag);
    }
    total as f64 / t.elapsed().as_secs_f64()
}

fn seal_rates(chunk_log2: u8, total: usize) -> (f64, f64) {
    let key = Secret::from_bytes([3; 32]);
    let chunk = 1usize << chunk_log2;
    let data = vec![9u8; chunk];
    let mut s = Sealer::new(&key, [1; 32], chunk_log2).unwrap();
    let header = *s.header();
    let n = total / chunk;
    let t = Instant::now();
    let mut sealed = Vec::with_capacity(4);
    for i in 0..n {
        let c = s.seal_chunk(&data, i + 1 == n).unwrap();
        if i < 4 || i + 1 == n {
            sealed.push(c);
        } else {
            std::hint::black_box(&c);
        }
    }
    let seal = total as f64 / t.elapsed().as_secs_f64();
    // Unseal the same number of chunks (re-seal a full stream to open it).
    let mut s = Sealer::new(&key, [1; 32], chunk_log2).unwrap();
    let all: Vec<Vec<u8>> = (0..n)
        .map(|i| s.seal_chunk(&data, i + 1 == n).unwrap())
        .collect();
    let mut u = Unsealer::new(&key, &header).unwrap();
    let t = Instant::now();
    for (i, c) in all.into_iter().enumerate() {
        let mut c = c;
        u.open_chunk(&mut c, i + 1 == n).unwrap();
        std::hint::black_box(&c);
    }
    (seal, total as f64 / t.elapsed().as_secs_f64())
}

fn main() {
    let quick = std::env::var("REWIRE_BENCH_QUICK").is_ok();
    let mib = 1024.0 * 1024.0;
    println!("librewire benchmarks (release build, one process; medians)\n");

    // P1
    let runs = if quick { 15 } else { 101 };
    let hs = median((0..runs).map(|_| handshake_1k()).collect());
    let mig = median(
        (0..runs)
            .map(|i| {
                let mut f = fleet(1024);
                let t = Instant::now();
                migrate(&mut f, i as u8);
                t.elapsed().as_secs_f64()
            })
            .collect(),
    );

    // P2 + P3
    let sizes: &[u64] = if quick {
        &[1 << 20, 16 << 20]
    } else {
        &[1 << 20, 64 << 20, 256 << 20]
    };
    let mut peaks = Vec::new();
    let mut rate = 0.0;
    for &len in sizes {
        let mut f = fleet(len);
        reset_peaks();
        let t = Instant::now();
        migrate(&mut f, 0xb0);
        let secs = t.elapsed().as_secs_f64();
        peaks.push((
            len,
            PEAK[1].load(Ordering::Relaxed),
            PEAK[2].load(Ordering::Relaxed),
        ));
        assert_eq!(
            f.mons[1].enclave_host_ref().imported[1],
            len,
            "state fully imported"
        );
        rate = len as f64 / secs;
    }
    let big = *sizes.last().unwrap();
    let aead_chacha = ring_seal_rate(16384, 256 << 20, &ring::aead::CHACHA20_POLY1305);
    let aead_aes = ring_seal_rate(16384, 256 << 20, &ring::aead::AES_256_GCM);

    // P4
    let (seal_r, unseal_r) = seal_rates(14, if quick { 32 << 20 } else { 256 << 20 });

    let p5: Option<u64> = std::env::var("REWIRE_P5_TEXT")
        .ok()
        .and_then(|s| s.parse().ok());

    println!("| goal | measured | baseline | ratio | target | met |");
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, m: String, b: String, ratio: f64, target: &str, ok: bool| {
        println!(
            "| {name} | {m} | {b} | {ratio:.2} | {target} | {} |",
            if ok { "yes" } else { "NO" }
        );
    };
    let p1 = mig / hs;
    row(
        "P1 latency: 1 KiB migration ÷ handshake+1 KiB",
        format!("{:.0} µs", mig * 1e6),
        format!("{:.0} µs", hs * 1e6),
        p1,
        "≤ 1.5",
        p1 <= 1.5,
    );
    let p2 = rate / aead_chacha;
    row(
        &format!(
            "P2 throughput: {} MiB migration ÷ ring ChaCha20-Poly1305 seal",
            big >> 20
        ),
        format!("{:.0} MiB/s", rate / mib),
        format!("{:.0} MiB/s", aead_chacha / mib),
        p2,
        "≥ 0.20",
        p2 >= 0.20,
    );
    for (len, sms, smt) in &peaks {
        let worst = (*sms).max(*smt);
        row(
            &format!("P3 memory: peak heap, {} MiB (SMS / SMT)", len >> 20),
            format!(
                "{:.0} / {:.0} KiB",
                *sms as f64 / 1024.0,
                *smt as f64 / 1024.0
            ),
            "512 KiB".into(),
            worst as f64 / (512.0 * 1024.0),
            "≤ 1.0, flat",
            worst <= 512 * 1024,
        );
    }
    row(
        "P4 sealing: seal ÷ ring AEAD (16 KiB chunks)",
        format!("{:.0} MiB/s", seal_r / mib),
        format!("{:.0} MiB/s", aead_chacha / mib),
        seal_r / aead_chacha,
        "≥ 0.95",
        seal_r / aead_chacha >= 0.95,
    );
    row(
        "P4 sealing: unseal ÷ ring AEAD (16 KiB chunks)",
        format!("{:.0} MiB/s", unseal_r / mib),
        format!("{:.0} MiB/s", aead_chacha / mib),
        unseal_r / aead_chacha,
        "≥ 0.95",
        unseal_r / aead_chacha >= 0.95,
    );
    match p5 {
        Some(t) => row(
            "P5 size: linked text, riscv64 bare-metal monitor",
            format!("{:.0} KiB", t as f64 / 1024.0),
            "300 KiB".into(),
            t as f64 / (300.0 * 1024.0),
            "≤ 1.0",
            t <= 300 * 1024,
        ),
        None => println!("| P5 size | (run `make bench` to measure) | | | | |"),
    }
    println!("\nAEAD choice on this machine (ring, 16 KiB chunks): ChaCha20-Poly1305 {:.0} MiB/s, AES-256-GCM {:.0} MiB/s", aead_chacha / mib, aead_aes / mib);
}
