//! Two real monitors and the SDS, with the fuzzer as the untrusted relay:
//! it delivers, drops, duplicates, reorders, corrupts and truncates packets,
//! injects arbitrary bytes and recorded SDS-path messages of a real
//! migration (signed: they verify here), orders migrations, lets time pass,
//! cuts power mid-commit and crashes monitors. G2 holds after every step;
//! after a quiet period exactly one intact copy runs where the ledger says.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rewire_core::Error;
use rewire_fuzz::{image, mutate, recorded_sds_path, typed, Packet, Reader, To, World, RID};

fuzz_target!(|data: &[u8]| {
    let img = image();
    let mut w = World::new();
    let mut r = Reader::new(data);
    let sds_path = recorded_sds_path();
    let conns = [RID, [9; 16], [0; 16]];
    let mut fresh = 0x40u8;
    if r.u8() & 1 == 0 {
        // Most sequences start from an honest order.
        if let Err(e) = w.order(1, RID) {
            typed(e);
        }
    }
    for _ in 0..64 {
        if r.is_empty() {
            break;
        }
        match r.u8() % 16 {
            0..=3 => {
                if let Some(p) = w.net.pop_front() {
                    if let Err(e) = w.deliver(p) {
                        typed(e);
                    }
                }
            }
            4 => {
                w.net.pop_front();
            }
            5 => {
                if let Some(p) = w.net.front().cloned() {
                    w.net.push_back(p);
                }
            }
            6 => {
                if w.net.len() > 1 {
                    let i = r.below(w.net.len());
                    w.net.swap(0, i);
                }
            }
            7 => {
                if let Some(mut p) = w.net.pop_front() {
                    mutate(&mut p.bytes, &mut r);
                    if let Err(e) = w.deliver(p) {
                        typed(e);
                    }
                }
            }
            8 => {
                let idx = r.below(2);
                let bytes = r.blob().to_vec();
                let conn = if r.u8() & 1 == 0 {
                    None
                } else {
                    Some(conns[r.below(3)])
                };
                let p = Packet {
                    from: Some(1 - idx),
                    to: To::Host { idx, conn },
                    bytes,
                };
                if let Err(e) = w.deliver(p) {
                    typed(e);
                }
            }
            9 => {
                let mut p = sds_path[r.below(sds_path.len())].clone();
                mutate(&mut p.bytes, &mut r);
                if r.u8() & 1 == 1 {
                    // Redirected to the other party.
                    p.to = match p.to {
                        To::Sds => To::Host { idx: 0, conn: None },
                        To::Host { idx, .. } => To::Host {
                            idx: 1 - idx,
                            conn: None,
                        },
                    };
                }
                if let Err(e) = w.deliver(p) {
                    typed(e);
                }
            }
            10 => {
                w.clock.advance(r.u16() as u64 * 50);
                for i in 0..2 {
                    if let Some(m) = w.hosts[i].monitor.as_mut() {
                        if let Err(e) = m.tick() {
                            typed(e);
                        }
                    }
                }
            }
            11 => {
                let (i, c) = (r.below(2), conns[r.below(3)]);
                if let Some(m) = w.hosts[i].monitor.as_mut() {
                    if let Err(e) = m.handle_peer_closed(c) {
                        typed(e);
                    }
                }
            }
            12 => {
                let i = r.below(2);
                if w.hosts[i].monitor.is_some() {
                    w.crash(i);
                } else if let Err(e) = w.restart(i) {
                    // Only a power cut armed by op 13 may fail a restart.
                    typed(e);
                    assert!(
                        e == Error::Storage || e == Error::Counter,
                        "host{i} cannot restart after a crash: {e:?}"
                    );
                }
            }
            13 => {
                // Power cut inside the next commit: the write or the increment fails.
                let i = r.below(2);
                let write = r.u8() & 1 == 0;
                if let Some(m) = w.hosts[i].monitor.as_mut() {
                    if write {
                        m.platform().fail_next_write = true;
                    } else {
                        m.platform().fail_next_increment = true;
                    }
                }
            }
            14 => {
                w.resolve();
                w.audit();
            }
            _ => {
                // A new order, under a fresh request id (the SDS's caller
                // must never reuse one: docs/protocol.md §1.1).
                let t = r.below(2);
                fresh += 1;
                let rid = [fresh; 16];
                if let Err(e) = w.order(t, rid) {
                    typed(e);
                }
            }
        }
        w.collect(8);
        w.assert_no_fork();
    }
    rewire_fuzz::trace!(
        "monitor: before the quiet period: {:?} / {:?}, ledger {:?}",
        w.hosts[0]
            .monitor
            .as_ref()
            .and_then(|m| m.status(&rewire_fuzz::EID)),
        w.hosts[1]
            .monitor
            .as_ref()
            .and_then(|m| m.status(&rewire_fuzz::EID)),
        w.sds
            .as_ref()
            .and_then(|s| s.enclave(&rewire_fuzz::EID))
            .map(|e| e.epoch)
    );
    // Whatever happened, a quiet period leaves exactly one intact copy.
    w.net.clear();
    for i in 0..2 {
        if let Some(m) = w.hosts[i].monitor.as_mut() {
            m.platform().fail_next_write = false;
            m.platform().fail_next_increment = false;
        }
        if let Some((p, _)) = w.hosts[i].parked.as_mut() {
            p.fail_next_write = false;
            p.fail_next_increment = false;
        }
    }
    for i in 0..2 {
        if let Err(e) = w.restart(i) {
            panic!("host{i} cannot restart: {e:?}");
        }
    }
    assert!(w.settle(200), "the world did not settle");
    w.assert_no_fork();
    w.assert_exactly_one(&img);
});
