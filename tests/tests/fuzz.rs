//! Arbitrary and mutated bytes into every decoder and every state-machine
//! input: nothing panics, every failure is a typed error, and (G6) the
//! enclave stays runnable where it was.

use proptest::prelude::*;
use rewire_core::crypto::Secret;
use rewire_core::wire::{
    verify_as, Decision, EnclavePolicy, HostEndorsement, Message, MigrationRequest, Ready, Signed,
    SmCertificate, TargetAck,
};
use rewire_core::{seal, Sds};
use rewire_tests::*;

const EID: [u8; 16] = *b"enclave-fuzzed-1";

fn world() -> (World, Image) {
    let mut w = World::new(&[2, 2]);
    let img = Image::sample(4, 2000);
    w.deploy(0, EID, &img, 1);
    (w, img)
}

/// Every message to a monitor in one honest migration, in order. (Proofs to
/// the SDS are left out: replayed into another world with the same keys they
/// would be proofs of a history that world never had — something only an SM
/// that lost its journal *and* its counter could sign.)
fn recorded() -> Vec<Packet> {
    let (mut w, _) = world();
    w.order(&EID, 1, [3; 16]).unwrap();
    let mut all = Vec::new();
    loop {
        w.collect(4);
        let Some(p) = w.net.pop_front() else { break };
        if p.to != To::Sds {
            all.push(p.clone());
        }
        w.deliver(p);
    }
    all
}

fn decoders(bytes: &[u8]) {
    let k = sds_key().public();
    let _ = Message::decode(bytes);
    let _ = Signed::parse(bytes);
    let _ = verify_as::<MigrationRequest>(bytes, &k);
    let _ = verify_as::<HostEndorsement>(bytes, &k);
    let _ = verify_as::<EnclavePolicy>(bytes, &k);
    let _ = verify_as::<SmCertificate>(bytes, &k);
    let _ = verify_as::<Ready>(bytes, &k);
    let _ = verify_as::<Decision>(bytes, &k);
    let _ = verify_as::<TargetAck>(bytes, &k);
    let key = Secret::from_bytes([1; 32]);
    let _ = seal::unseal(&key, bytes);
    let _ = seal::chunk_layout(bytes, bytes.len() as u64);
    let _ = Sds::from_bytes(sds_key(), bytes);
    // Signed objects' payloads: wrap the bytes as a payload signed by the right key.
    if let Ok(m) = Message::decode(bytes) {
        let _ = m.encode();
    }
}

#[derive(Debug, Clone)]
enum Op {
    Sds(Vec<u8>),
    Peer {
        conn: u8,
        bytes: Vec<u8>,
    },
    Closed(u8),
    Tick(u32),
    Ledger(Vec<u8>),
    Replay {
        index: usize,
        flip: Option<(usize, u8)>,
        cut: Option<usize>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600).prop_map(Op::Sds),
        (0u8..3, proptest::collection::vec(any::<u8>(), 0..600))
            .prop_map(|(conn, bytes)| Op::Peer { conn, bytes }),
        (0u8..3).prop_map(Op::Closed),
        any::<u32>().prop_map(Op::Tick),
        proptest::collection::vec(any::<u8>(), 0..600).prop_map(Op::Ledger),
        (
            any::<usize>(),
            proptest::option::of((any::<usize>(), 1u8..=255)),
            proptest::option::of(any::<usize>())
        )
            .prop_map(|(index, flip, cut)| Op::Replay { index, flip, cut }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_into_every_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        decoders(&bytes);
    }

    #[test]
    fn mutated_valid_objects_into_every_decoder(index in any::<usize>(), pos in any::<usize>(), bit in 0u8..8, cut in any::<bool>()) {
        let all = recorded();
        let mut b = all[index % all.len()].bytes.clone();
        if !b.is_empty() {
            let i = pos % b.len();
            if cut { b.truncate(i) } else { b[i] ^= 1 << bit }
        }
        decoders(&b);
        if let Ok(Message::Order(o)) = Message::decode(&all[0].bytes) {
            let mut r = o.request.clone();
            let i = pos % r.len();
            r[i] ^= 1 << bit;
            decoders(&r);
        }
    }

    /// Random sequences of inputs to the source and target monitors and the
    /// SDS, mixing garbage with real (possibly mutated, replayed) messages.
    #[test]
    fn state_machines_take_any_input(ops in proptest::collection::vec(op(), 1..24)) {
        let all = recorded();
        let (mut w, img) = world();
        let conns = [[3u8; 16], [9; 16], [0; 16]];
        for op in ops {
            match op {
                Op::Sds(b) => { let _ = w.mon(0).handle_sds(&b); let _ = w.mon(1).handle_sds(&b); }
                Op::Peer { conn, bytes } => {
                    let from = w.hosts[1].id;
                    let _ = w.mon(0).handle_peer(from, conns[conn as usize], &bytes);
                    let from = w.hosts[0].id;
                    let _ = w.mon(1).handle_peer(from, conns[conn as usize], &bytes);
                }
                Op::Closed(c) => { let _ = w.mon(0).handle_peer_closed(conns[c as usize]); let _ = w.mon(1).handle_peer_closed(conns[c as usize]); }
                Op::Tick(ms) => { w.clock.advance(ms as u64); let _ = w.mon(0).tick(); let _ = w.mon(1).tick(); }
                Op::Ledger(b) => { let _ = w.sds().handle(&b); }
                Op::Replay { index, flip, cut } => {
                    let mut p = all[index % all.len()].clone();
                    if let Some((i, x)) = flip { if !p.bytes.is_empty() { let i = i % p.bytes.len(); p.bytes[i] ^= x; } }
                    if let Some(c) = cut { if !p.bytes.is_empty() { p.bytes.truncate(c % p.bytes.len()); } }
                    w.deliver(p);
                }
            }
            w.collect(64);
            w.assert_no_fork(&EID);
        }
        // Whatever happened, a quiet period leaves exactly one intact copy.
        w.net.clear();
        w.settle();
        w.assert_exactly_one(&EID, &img);
    }

    /// Arbitrary journal bytes: the monitor refuses to start, never panics.
    #[test]
    fn arbitrary_journal_is_refused(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let (mut w, _) = world();
        w.crash(0);
        w.hosts[0].parked.as_mut().unwrap().0.journal = Some(bytes);
        prop_assert!(w.restart(0).is_err());
    }
}
