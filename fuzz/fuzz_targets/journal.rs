//! Journal recovery (G5): a monitor starts from an arbitrary stored blob and
//! counter through a SoftPlatform. The blob is raw bytes, or a fuzzer
//! plaintext sealed under host 0's journal key (so the journal decoder
//! behind the AEAD is reached). A monitor that started must run, and must
//! restart from what it wrote itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rewire_core::seal::seal;
use rewire_core::soft::{Clock, SoftHost, SoftPlatform};
use rewire_core::Monitor;
use rewire_fuzz::{config, fixtures, identity, image, journal_key, typed, Reader, EID, WALL0};

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let mode = r.u8();
    let counter = match mode & 3 {
        0 => r.u8() as u64,
        1 => r.u64(),
        2 => u64::MAX - r.u8() as u64,
        _ => 0,
    };
    let blob = match (mode >> 2) % 3 {
        0 => None,
        1 => Some(r.rest().to_vec()),
        _ => {
            let salt = r.array::<32>();
            Some(seal(&journal_key(0), salt, r.rest()).expect("seals")) // safe: any plaintext seals
        }
    };
    let mut p = SoftPlatform::new(7, Clock::default(), Some(WALL0));
    p.journal = blob;
    p.counter = counter;
    let mut host = SoftHost::default();
    if mode & 0x40 != 0 {
        let img = image();
        host.load(EID, img.code, img.state, img.sealed);
    }
    let mut m = match Monitor::start(p, host, identity(0), config()) {
        Ok(m) => m,
        Err(e) => return typed(e),
    };
    // It runs: status, outputs, time, a policy install, an SDS query.
    let _ = m.status(&EID);
    while m.poll_output().is_some() {}
    if let Err(e) = m.tick() {
        typed(e);
    }
    if let Err(e) = m.install(&fixtures().policy) {
        typed(e);
    }
    let q = rewire_core::wire::Message::Query { enclave_id: EID }
        .encode()
        .expect("encodes"); // safe: well-formed message
    if let Err(e) = m.handle_sds(&q) {
        typed(e);
    }
    while m.poll_output().is_some() {}
    let status = m.status(&EID);
    // What it wrote, it recovers (unless its counter is exhausted: a
    // recovery fence needs two more increments).
    let (p, h) = m.into_parts();
    let exhausted = p.counter > u64::MAX - 4;
    let m = match Monitor::start(p, h, identity(0), config()) {
        Ok(m) => m,
        Err(e) if exhausted => return typed(e),
        Err(e) => panic!("a monitor cannot restart from its own journal: {e:?}"),
    };
    if let (Some(a), Some(b)) = (status, m.status(&EID)) {
        assert_eq!(a.epoch, b.epoch, "epoch changed across a restart");
    }
});
