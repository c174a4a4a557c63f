//! Writes the seed corpora `fuzz/corpus/<target>/` from a real migration
//! between two software monitors (rewire-core's soft platform), so that the
//! fuzzer starts from valid, signed objects and gets past the signature
//! checks where it can. Deterministic except for TLS bytes (the `channel`
//! seeds), which carry fresh randomness.
//!
//! `cargo run --release --manifest-path fuzz/Cargo.toml --example gen_corpus [DIR]`
//! (DIR defaults to fuzz/corpus; existing seeds of the same name are replaced).

use std::fs;
use std::path::{Path, PathBuf};

use coset::{CborSerializable, CoseSign1};
use rewire_core::monitor::report_data;
use rewire_core::platform::Section;
use rewire_core::seal::{seal, unseal};
use rewire_core::wire::{
    AckKind, Decision, DecisionKind, Message, Offer, Order, Ready, SignedBody, TargetAck,
};
use rewire_fuzz::{
    fixtures, identity, image, journal_key, keys, recorded, To, World, EID, RID, WALL0,
};

struct Out {
    dir: PathBuf,
    total: usize,
}

impl Out {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let d = self.dir.join(target);
        fs::create_dir_all(&d).expect("corpus dir"); // safe: generator, fails loudly
        fs::write(d.join(name), bytes).expect("seed written"); // safe: generator
        self.total += bytes.len();
    }
}

fn payload(cose: &[u8]) -> Vec<u8> {
    CoseSign1::from_slice(cose)
        .expect("COSE_Sign1") // safe: generator input is valid
        .payload
        .expect("payload") // safe: as above
}

/// `[mode] ‖ bytes`: mode even → the whole COSE object, odd → its payload.
fn signed_seeds(o: &mut Out, target: &str, name: &str, cose: &[u8], extra_bit: u8) {
    let mut a = vec![extra_bit];
    a.extend_from_slice(cose);
    o.put(target, &format!("{name}-cose"), &a);
    let mut b = vec![extra_bit | 1];
    b.extend_from_slice(&payload(cose));
    o.put(target, &format!("{name}-payload"), &b);
}

fn blob(v: &[u8]) -> Vec<u8> {
    let mut b = (v.len() as u16).to_le_bytes().to_vec();
    b.extend_from_slice(v);
    b
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let mut o = Out { dir, total: 0 };
    let k = keys();
    let f = fixtures();
    let img = image();
    let rec = recorded();
    eprintln!("recorded migration: {} packets", rec.len());

    // The order, the request inside it, the proofs to the SDS.
    let order_bytes = rec[0].bytes.clone();
    let Ok(Message::Order(order)) = Message::decode(&order_bytes) else {
        panic!("first packet is the order");
    };
    o.put("order", "order", &order_bytes);
    o.put("message", "order", &order_bytes);
    signed_seeds(&mut o, "migration_request", "request", &order.request, 0);
    for (i, e) in f.endorsements.iter().enumerate() {
        signed_seeds(&mut o, "host_endorsement", &format!("host{i}"), e, 0);
    }
    signed_seeds(&mut o, "enclave_policy", "policy", &f.policy, 0);
    for (i, c) in f.certificates.iter().enumerate() {
        signed_seeds(&mut o, "sm_certificate", &format!("host{i}"), c, 0);
        signed_seeds(&mut o, "sm_certificate", &format!("host{i}-endorse"), c, 2);
    }
    let mut n = 0;
    for p in rec
        .iter()
        .filter(|p| matches!(p.to, To::Sds | To::Host { conn: None, .. }))
    {
        let m = Message::decode(&p.bytes).expect("recorded messages decode"); // safe: generator
        n += 1;
        o.put("message", &format!("sds-path-{n}"), &p.bytes);
        match m {
            Message::Release(b) | Message::Abort(b) => {
                signed_seeds(&mut o, "proofs", &format!("decision-{n}"), &b, 0)
            }
            Message::Active(b) | Message::Dropped(b) => {
                signed_seeds(&mut o, "proofs", &format!("ack-{n}"), &b, 2)
            }
            _ => {}
        }
    }

    // In-channel messages as the monitors build them.
    let req_epoch = 0u64;
    let ready = Ready {
        request_id: RID,
        enclave_id: EID,
        epoch: req_epoch + 1,
        target: f.host_ids[1],
        measurement: img.measurement(),
        report_data: report_data(&RID, &img.lengths()),
        framework_evidence: {
            let mut ev = img.measurement().to_vec();
            ev.extend_from_slice(&report_data(&RID, &img.lengths()));
            ev
        },
    }
    .sign(&k.sm[1])
    .expect("signs"); // safe: generator
    signed_seeds(&mut o, "evidence", "ready", &ready, 0);
    let abort = Decision {
        kind: DecisionKind::Abort,
        request_id: RID,
        enclave_id: EID,
        epoch: 1,
        source: f.host_ids[0],
        target: f.host_ids[1],
    }
    .sign(&k.sm[0])
    .expect("signs"); // safe: generator
    signed_seeds(&mut o, "proofs", "abort", &abort, 0);
    let dropped = TargetAck {
        kind: AckKind::Dropped,
        request_id: RID,
        enclave_id: EID,
        epoch: 1,
        host: f.host_ids[1],
    }
    .sign(&k.sm[1])
    .expect("signs"); // safe: generator
    signed_seeds(&mut o, "proofs", "dropped", &dropped, 2);
    let offer = Message::Offer(Offer {
        order: Order {
            request: order.request.clone(),
            source_endorsement: order.source_endorsement.clone(),
            target_endorsement: order.target_endorsement.clone(),
        },
        policy: f.policy.clone(),
        source_certificate: f.certificates[0].clone(),
        lengths: [
            img.code.len() as u64,
            img.state.len() as u64,
            img.sealed.len() as u64,
        ],
    });
    let in_channel = [
        ("offer", offer),
        (
            "accept",
            Message::Accept {
                request_id: RID,
                target_certificate: f.certificates[1].clone(),
            },
        ),
        (
            "refuse",
            Message::Refuse {
                request_id: RID,
                code: 302,
            },
        ),
        (
            "chunk",
            Message::Chunk {
                section: Section::State,
                offset: 0,
                data: img.state[..256].to_vec().into(),
            },
        ),
        (
            "end",
            Message::End,
        ),
        ("ready", Message::Ready(ready.clone())),
        ("abort", Message::Abort(abort.clone())),
        ("dropped", Message::Dropped(dropped.clone())),
        ("query", Message::Query { enclave_id: EID }),
    ];
    for (name, m) in &in_channel {
        o.put("message", name, &m.encode().expect("encodes")); // safe: generator
    }

    // Sealed blobs (key of the `sealed` target) and seal/edit programs.
    let skey = rewire_core::crypto::Secret::from_bytes([0x5e; 32]);
    for (name, data) in [
        ("empty", &[][..]),
        ("secret", &img.sealed[..]),
        ("state", &img.state[..]),
    ] {
        let mut b = vec![0u8];
        b.extend(seal(&skey, [7; 32], data).expect("seals")); // safe: generator
        o.put("sealed", name, &b);
    }
    // mode 1, log2 10, salt, len 3000, fill, 2 edits: swap, flip.
    let mut prog = vec![1u8, 0];
    prog.extend([9u8; 32]);
    prog.extend(3000u16.to_le_bytes());
    prog.extend([0x33, 2, 1, 0, 2, 0, 0, 5, 0x40]);
    o.put("sealed", "program", &prog);

    // Journals: the real ones after a migration, raw (host 0's key) and as plaintext.
    let mut w = World::new();
    w.order(1, RID).expect("order"); // safe: generator
    let mut journals = Vec::new();
    for step in 0..10_000 {
        w.collect(4);
        let Some(p) = w.net.pop_front() else { break };
        let _ = w.deliver(p);
        if step % 3 == 0 {
            for i in 0..2 {
                if let Some(m) = w.hosts[i].monitor.as_mut() {
                    let p = m.platform();
                    if let Some(j) = p.journal.clone() {
                        journals.push((i, p.counter, j));
                    }
                }
            }
        }
    }
    journals.dedup_by(|a, b| a.2 == b.2);
    let mut seen = std::collections::BTreeSet::new();
    for (i, counter, j) in journals {
        let plain = unseal(&journal_key(i), &j).expect("own journal opens"); // safe: generator
        if !seen.insert(plain.to_vec()) {
            continue;
        }
        let c = u8::try_from(counter).expect("small counter"); // safe: a short run
        if i == 0 {
            // mode: counter as u8, raw blob; the enclave loaded (0x40).
            let mut b = vec![0x40 | (1 << 2), c];
            b.extend_from_slice(&j);
            o.put("journal", &format!("raw-host0-c{c}"), &b);
        }
        // mode: counter as u8, plaintext sealed by the harness.
        let mut b = vec![0x40 | (2 << 2), c];
        b.extend([1u8; 32]);
        b.extend_from_slice(&plain);
        o.put("journal", &format!("plain-host{i}-c{c}"), &b);
    }
    o.put("journal", "none-c0", &[0, 0]);

    // Ledgers: fresh, ordered, and after the migration.
    o.put("sds_state", "fresh", &f.ledger);
    o.put("sds_state", "settled", &w.sds().to_bytes().expect("ledger")); // safe: generator
    let mut w2 = World::new();
    w2.order(1, RID).expect("order"); // safe: generator
    o.put("sds_state", "ordered", &w2.sds().to_bytes().expect("ledger")); // safe: generator

    // SDS programs (see fuzz_targets/sds.rs): proofs in order; a signed proof; reload.
    let proofs: Vec<usize> = (0..rec.iter().filter(|p| p.to == To::Sds).count()).collect();
    let mut prog = vec![2u8, 1];
    prog.extend(RID);
    prog.extend([0x10, 0x0e]); // deadline WALL0 + 3600
    for i in &proofs {
        prog.extend([0u8, *i as u8, 0]);
    }
    prog.extend([8u8, 9]);
    o.put("sds", "migration", &prog);
    let mut prog = vec![2u8, 1];
    prog.extend(RID);
    prog.extend([0x10, 0x0e]);
    prog.extend([4u8, 1, 0, 1, 0, 0, 1]); // RELEASE at epoch+1, signed by host 0
    prog.extend([4u8, 1, 0, 1, 2, 0, 1]); // ACTIVE at epoch+1, signed by host 1
    prog.extend([6u8, 1, 0, 2, 1, 0, 0, 0, 0, 9]);
    o.put("sds", "signed", &prog);

    // Monitor world programs (see fuzz_targets/monitor.rs): honest delivery,
    // with a crash, with a power cut, with a timeout.
    let honest: Vec<u8> = std::iter::once(0u8).chain([0u8; 63]).collect();
    o.put("monitor", "honest", &honest);
    let mut crash = vec![0u8];
    crash.extend([0u8; 6]);
    crash.extend([12, 0, 12, 0]);
    crash.extend([0u8; 30]);
    o.put("monitor", "crash-source", &crash);
    let mut cut = vec![0u8, 0, 13, 1, 1];
    cut.extend([0u8; 20]);
    cut.extend([12, 1, 12, 1]);
    cut.extend([0u8; 20]);
    o.put("monitor", "power-cut", &cut);
    let mut late = vec![0u8];
    late.extend([0u8; 8]);
    late.extend([10, 0xff, 0xff, 4, 4, 14]);
    late.extend([0u8; 20]);
    o.put("monitor", "timeout", &late);

    // Peer programs (see fuzz/src/peer.rs).
    let mut src = vec![0u8];
    src.extend(RID);
    src.extend([0, 1, 0]); // OFFER
    for _ in 0..3 {
        src.extend([1, 0xff, 0x3f, 0]); // one chunk per section
    }
    src.extend([4, 0]); // END
    src.extend([5, 1, 0, 0]); // RELEASE in the channel
    src.extend([12, 0, 1]);
    o.put("monitor_peer", "as-source", &src);
    let mut tgt = vec![1u8];
    tgt.extend(RID);
    tgt.extend([0, 0]); // ACCEPT
    tgt.extend([15, 15]); // let it stream
    tgt.extend([2, 0, 4, 0]); // READY
    tgt.extend([15, 5, 0, 0]); // ACTIVE
    o.put("monitor_peer", "as-target", &tgt);
    let mut refuse = vec![1u8];
    refuse.extend(RID);
    refuse.extend([16, 0x2e, 1, 0, 0, 12, 0xff, 0xff]);
    o.put("monitor_peer", "refuse", &refuse);

    // Channel: raw flights, and a message program.
    let client_hello = rec
        .iter()
        .find(|p| {
            matches!(
                p.to,
                To::Host {
                    idx: 1,
                    conn: Some(_)
                }
            )
        })
        .map(|p| p.bytes.clone())
        .unwrap_or_default();
    let mut ch = vec![0u8];
    ch.extend(blob(&client_hello));
    o.put("channel", "client-hello", &ch);
    let server_flight = rec
        .iter()
        .find(|p| {
            matches!(
                p.to,
                To::Host {
                    idx: 0,
                    conn: Some(_)
                }
            )
        })
        .map(|p| p.bytes.clone())
        .unwrap_or_default();
    let mut ch = vec![1u8];
    ch.extend(blob(&server_flight));
    o.put("channel", "server-flight", &ch);
    o.put(
        "channel",
        "messages",
        &[
            2, 0, 0x10, 0, 7, 1, 0, 0x40, 9, 2, 0x20, 0, 2, 0xff, 0xff, 0, 0, 1, 1, 2, 0xff, 0xff,
        ],
    );

    // The C ABI (see fuzz_targets/ffi.rs).
    let mut ffi = vec![2u8, 0, 0, 0]; // the recorded order
    ffi.extend([7, 2, 7, 2]); // poll outputs
    ffi.extend([4, 0, 0, 0, 2]); // unseal the real blob
    ffi.extend([5, 0, 0, 0]); // a recorded proof to the SDS
    ffi.extend([6, 0, 0, 0, 1, 2]); // endorse host 0 from its certificate
    ffi.extend((WALL0 - 10).to_le_bytes());
    ffi.extend((WALL0 + 1000).to_le_bytes());
    ffi.extend([0]);
    ffi.extend([1, 0, 0]); // the policy again
    ffi.extend([8, 0x10, 0]); // tick
    o.put("ffi", "calls", &ffi);
    let mut ffi = vec![0u8];
    ffi.extend(blob(&f.ledger));
    ffi.extend([3, 0, 0]);
    ffi.extend(blob(&client_hello));
    ffi.extend([0x83, 0, 0, 0, 4, 0, 1, 2, 3]);
    o.put("ffi", "load-and-peer", &ffi);

    let _ = identity;
    eprintln!("wrote {} bytes of seeds under {}", o.total, o.dir.display());
}
