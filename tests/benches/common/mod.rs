//! Shared by the benchmarks: an enclave framework that streams (the source
//! generates its state, the target hashes what it imports, so no image is
//! held in memory) and a two-monitor fleet that runs one migration.

use std::time::Instant;

use rewire_core::channel::{Channel, Cipher};
use rewire_core::crypto::{sha256, Digest, Secret, SigningKey};
use rewire_core::soft::{Clock, SoftPlatform};
use rewire_core::{Config, Dest, EnclaveHost, EnclaveId, Identity, Monitor, Sds, Section};

// ---------------------------------------------------------------------------
// An enclave framework that streams: the source generates its state on the
// fly, the target hashes what it imports. No image is held in memory, so the
// heap that remains is the monitors'.

pub const CODE: &[u8] = b"bench enclave code: this is what gets measured";

#[derive(Default)]
pub struct StreamHost {
    pub state_len: u64,
    pub sealed: Vec<u8>,
    pub imported: [u64; 3],
    running: bool,
    present: bool,
    digest: Option<rewire_core::crypto::Hasher>,
}

/// The state's bytes: byte 1 of `offset × 2654435761`, which repeats every
/// 64 KiB. Exporting copies from a table, as a framework copies enclave
/// memory: the benchmark should time librewire, not a generator.
pub fn pattern(offset: u64, buf: &mut [u8]) {
    static TABLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    const PERIOD: usize = 1 << 16;
    let table = TABLE.get_or_init(|| {
        (0..2 * PERIOD as u32)
            .map(|o| o.wrapping_mul(2654435761).to_le_bytes()[1])
            .collect()
    });
    let mut done = 0;
    while done < buf.len() {
        let at = (offset as usize + done) % PERIOD;
        let n = (buf.len() - done).min(PERIOD);
        buf[done..done + n].copy_from_slice(&table[at..at + n]);
        done += n;
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

pub type Mon = Monitor<SoftPlatform, StreamHost>;
pub const EID: EnclaveId = *b"bench-enclave-01";
pub const WALL: u64 = 1_800_000_000;

pub struct Fleet {
    pub sds: Sds,
    pub mons: [Mon; 2],
}

pub fn fleet(state_len: u64) -> Fleet {
    fleet_with(state_len, rewire_core::channel::Cipher::detect())
}

/// A fleet whose monitors prefer `cipher` for their channel.
pub fn fleet_with(state_len: u64, cipher: rewire_core::channel::Cipher) -> Fleet {
    // The state table is the driver's, not a monitor's (P3 charges each
    // allocation to the party running).
    pattern(0, &mut [0u8; 1]);
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
        sds.pin_device(id.host_id());
        sds.endorse_host(
            id.certificate(),
            vec![[0x5a; 32]],
            rewire_core::wire::PLATFORM_RISCV64,
            1,
            WALL - 10,
            WALL + 10_000,
        )
        .unwrap();
    }
    let mut cfg = Config::new(sds.public_key());
    cfg.cipher = cipher;
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
        .register_enclave(
            EID,
            sha256(CODE),
            rewire_core::wire::PLATFORM_RISCV64,
            1,
            host_a,
        )
        .unwrap();
    f.mons[0].install(&policy).unwrap();
    let blob = f.mons[0]
        .seal_data(&EID, b"the enclave's sealed secret")
        .unwrap();
    f.mons[0].enclave_host().sealed = blob;
    f
}

/// Order and run the migration to completion; every output is delivered at once.
/// Run one migration to quiescence. Returns the time from the source taking
/// the order (request validation) to the target's enclave becoming runnable
/// (ACTIVE), the span P1 names; the SDS's signing and ledger work are outside it.
pub fn migrate(f: &mut Fleet, rid: u8, as_party: &dyn Fn(usize, &mut dyn FnMut())) -> f64 {
    let target = f.mons[1].host_id();
    let mut order = Vec::new();
    as_party(3, &mut || {
        order = f.sds.order(&EID, target, [rid; 16], WALL + 3600).unwrap()
    });
    let start = Instant::now();
    let mut active = None;
    as_party(1, &mut || f.mons[0].handle_sds(&order).unwrap());
    let ids = [f.mons[0].host_id(), f.mons[1].host_id()];
    loop {
        let mut moved = false;
        for i in 0..2 {
            loop {
                let mut out = None;
                as_party(1 + i, &mut || out = f.mons[i].poll_output());
                let Some(o) = out else { break };
                moved = true;
                match o.dest {
                    Dest::Sds => as_party(3, &mut || {
                        let _ = f.sds.handle(&o.bytes);
                    }),
                    Dest::Peer { host, conn } => {
                        let j = if host == ids[0] { 0 } else { 1 };
                        as_party(1 + j, &mut || {
                            let _ = f.mons[j].handle_peer(ids[i], conn, &o.bytes);
                        });
                        if active.is_none() && j == 1 && f.mons[1].may_run(&EID) {
                            active = Some(start.elapsed().as_secs_f64());
                        }
                    }
                }
            }
        }
        if !moved {
            break;
        }
    }
    assert!(f.mons[1].may_run(&EID), "migration did not complete");
    active.unwrap_or_else(|| start.elapsed().as_secs_f64())
}

/// Bare handshake + 1 KiB, same rustls configuration as the monitors' channel.
pub fn handshake_1k() -> f64 {
    let a = SigningKey::from_seed(Secret::from_bytes([1; 32])).unwrap();
    let b = SigningKey::from_seed(Secret::from_bytes([2; 32])).unwrap();
    let t = Instant::now();
    let mut c = Channel::client(&a, WALL, Cipher::detect()).unwrap();
    let mut s = Channel::server(&b, WALL, Cipher::detect()).unwrap();
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
