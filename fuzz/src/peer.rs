//! The harness as one end of the attested channel, so that fuzzer-chosen
//! in-channel messages reach a real monitor past TLS: as the source SM
//! (host 0's SM key) against a real target monitor, or as the target SM
//! (host 1's SM key) against a real source monitor. It knows the keys, so it
//! can also sign valid READY, RELEASE, ABORT and ACTIVE, and the fuzzer gets
//! past the signature checks; it then mutates fields and bytes at will.

use rewire_core::channel::{Channel, Cipher};
use rewire_core::error::Category;
use rewire_core::monitor::report_data;
use rewire_core::platform::Section;
use rewire_core::wire::{
    verify_as, AckKind, Decision, DecisionKind, Message, MigrationRequest, Offer, Ready,
    SignedBody, TargetAck, CHUNK_DATA,
};
use rewire_core::{Dest, EnclaveState, Error, RequestId};

use crate::{image, mutate, sds_key, sm_key, typed, Image, Reader, World, EID, WALL0};

/// Drive the channel: feed `incoming`, pump, and return (TLS bytes out, messages in).
fn pump(ch: &mut Channel, incoming: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let (out, msgs, r) = ch.exchange(incoming);
    if let Err(e) = r {
        typed(e);
    }
    (out, msgs.into_iter().map(|m| m.to_vec()).collect())
}

/// Handshake two in-process channels (client first).
pub fn handshake(client: &mut Channel, server: &mut Channel) {
    let mut to_server = Vec::new();
    let mut to_client = Vec::new();
    for _ in 0..16 {
        let (o, _) = pump(client, &std::mem::take(&mut to_client));
        to_server.extend(o);
        let (o, _) = pump(server, &std::mem::take(&mut to_server));
        to_client.extend(o);
        if client.is_established() && server.is_established() && to_client.is_empty() {
            return;
        }
    }
}

/// A session between the harness and the real monitor `real` of a world.
struct Session {
    w: World,
    real: usize,
    me: usize,
    rid: RequestId,
    ch: Channel,
    /// In-channel messages the monitor sent us.
    got: Vec<Message>,
    req: MigrationRequest,
}

impl Session {
    /// Feed TLS bytes to the real monitor, as from the harness's host.
    fn to_monitor(&mut self, bytes: &[u8]) {
        let from = self.w.hosts[self.me].id;
        if let Some(m) = self.w.hosts[self.real].monitor.as_mut() {
            if let Err(e) = m.handle_peer(from, self.rid, bytes) {
                typed(e);
            }
        }
    }

    /// Move bytes both ways until quiet (bounded), `polls` outputs per round.
    fn exchange(&mut self, polls: usize) {
        let mut incoming = Vec::new();
        for _ in 0..8 {
            let (out, msgs) = pump(&mut self.ch, &std::mem::take(&mut incoming));
            for m in msgs {
                match Message::decode(&m) {
                    Ok(msg) => self.got.push(msg),
                    Err(e) => panic!("the monitor sent an undecodable message: {e:?}"),
                }
            }
            if !out.is_empty() {
                self.to_monitor(&out);
            }
            let sim = &mut self.w.sim;
            let Some(m) = sim.hosts[self.real].monitor.as_mut() else {
                return;
            };
            for _ in 0..polls {
                let Some(o) = m.poll_output() else { break };
                match o.dest {
                    Dest::Peer { conn, .. } if conn == self.rid => incoming.extend(o.bytes),
                    Dest::Peer { .. } => {}
                    Dest::Sds => {
                        let sds = sim.sds.as_mut().expect("SDS is up"); // safe: the fuzz world never stops it
                        if let Err(e) = sds.handle(&o.bytes) {
                            typed(e);
                        }
                    }
                }
            }
            while m.poll_event().is_some() {}
            if incoming.is_empty() && out.is_empty() {
                return;
            }
        }
    }

    fn send(&mut self, msg: Vec<u8>, polls: usize) {
        if let Err(e) = self.ch.send(msg) {
            typed(e);
        }
        self.exchange(polls);
    }

    /// Fuzzer-driven steps common to both roles; returns false if `op` is not one of them.
    fn common(&mut self, op: u8, r: &mut Reader) -> bool {
        match op {
            // Arbitrary message bytes in the channel.
            10 => {
                let b = r.blob().to_vec();
                self.send(b, 16);
            }
            // Raw TLS bytes on this or another channel.
            11 => {
                let b = r.blob().to_vec();
                if r.u8() & 1 == 0 {
                    self.to_monitor(&b);
                } else {
                    let from = self.w.hosts[self.me].id;
                    let conn = r.array::<16>();
                    if let Some(m) = self.w.hosts[self.real].monitor.as_mut() {
                        if let Err(e) = m.handle_peer(from, conn, &b) {
                            typed(e);
                        }
                    }
                }
                self.exchange(16);
            }
            // Time passes.
            12 => {
                self.w.clock.advance(r.u16() as u64 * 100);
                if let Some(m) = self.w.hosts[self.real].monitor.as_mut() {
                    if let Err(e) = m.tick() {
                        typed(e);
                    }
                }
                self.exchange(16);
            }
            // The relay says the channel is gone.
            13 => {
                if let Some(m) = self.w.hosts[self.real].monitor.as_mut() {
                    if let Err(e) = m.handle_peer_closed(self.rid) {
                        typed(e);
                    }
                }
                self.exchange(16);
            }
            // The real monitor crashes and restarts from its journal.
            14 => {
                self.w.crash(self.real);
                if let Err(e) = self.w.restart(self.real) {
                    typed(e);
                }
                self.exchange(16);
            }
            // Let the monitor produce more (image chunks).
            15 => self.exchange(64),
            // A REFUSE.
            16 => {
                let code = r.u32();
                let m = Message::Refuse {
                    request_id: self.rid,
                    code,
                };
                self.send(m.encode().expect("encodes"), 16); // safe: well-formed message
            }
            _ => return false,
        }
        true
    }

    fn encode_mutated(&self, m: Message, r: &mut Reader) -> Vec<u8> {
        let mut b = m.encode().expect("encodes"); // safe: well-formed message
        mutate(&mut b, r);
        b
    }
}

/// A message's name, for traces.
fn kind(m: &Message) -> &'static str {
    match m {
        Message::Order(_) => "ORDER",
        Message::Query { .. } => "QUERY",
        Message::Offer(_) => "OFFER",
        Message::Accept { .. } => "ACCEPT",
        Message::Refuse { .. } => "REFUSE",
        Message::Chunk { .. } => "CHUNK",
        Message::End { .. } => "END",
        Message::Ready(_) => "READY",
        Message::Release(_) => "RELEASE",
        Message::Abort(_) => "ABORT",
        Message::Active(_) => "ACTIVE",
        Message::Dropped(_) => "DROPPED",
    }
}

fn decision(req: &MigrationRequest, kind: DecisionKind) -> Decision {
    Decision {
        kind,
        request_id: req.request_id,
        enclave_id: req.enclave_id,
        epoch: req.epoch + 1,
        source: req.source,
        target: req.target,
    }
}

/// Run one fuzzer-chosen session. `data[0]` picks the role.
pub fn session(data: &[u8]) {
    let mut r = Reader::new(data);
    if r.u8() & 1 == 0 {
        as_source(&mut r)
    } else {
        as_target(&mut r)
    }
}

/// The harness is the source SM (host 0); host 1's real monitor is the target.
fn as_source(r: &mut Reader) {
    let img = image();
    let mut w = World::new();
    let rid = r.array::<16>();
    let deadline = WALL0 + 3600;
    let target = w.hosts[1].id;
    let order_bytes = match w.sds().order(&EID, target, rid, deadline) {
        Ok(b) => b,
        Err(e) => return typed(e),
    };
    let Ok(Message::Order(order)) = Message::decode(&order_bytes) else {
        panic!("the SDS's order does not decode");
    };
    let req: MigrationRequest = match verify_as(&order.request, &sds_key().public()) {
        Ok(q) => q,
        Err(e) => panic!("the SDS's request does not verify: {e:?}"),
    };
    let cert = w.hosts[0]
        .monitor
        .as_ref()
        .map(|m| m.identity().certificate().to_vec())
        .unwrap_or_default();
    let offer = Offer {
        order,
        policy: w.policy.clone(),
        source_certificate: cert,
        lengths: [
            img.code.len() as u64,
            img.state.len() as u64,
            img.sealed.len() as u64,
        ],
    };
    // ChaCha20-Poly1305 on every CPU, so that a crash input replays anywhere.
    let ch = match Channel::client(&sm_key(0), WALL0, Cipher::ChaCha20Poly1305) {
        Ok(c) => c,
        Err(e) => return typed(e),
    };
    let mut s = Session {
        w,
        real: 1,
        me: 0,
        rid,
        ch,
        got: Vec::new(),
        req,
    };
    s.exchange(16);
    // Where the honest stream stands: section, offset.
    let sections: [&[u8]; 3] = [&img.code, &img.state, &img.sealed];
    let (mut sec, mut off) = (0usize, 0usize);
    let mut released = false;
    for _ in 0..64 {
        if r.is_empty() {
            break;
        }
        let op = r.u8() % 17;
        match op {
            0 => {
                let mut o = offer.clone();
                if r.u8() % 4 == 0 {
                    let i = r.below(3);
                    o.lengths[i] = r.u64();
                }
                let b = s.encode_mutated(Message::Offer(o), r);
                s.send(b, 16);
            }
            1 | 2 | 3 => {
                // The next chunk of the honest stream, of a chosen size.
                while sec < 3 && off >= sections[sec].len() {
                    sec += 1;
                    off = 0;
                }
                if sec < 3 {
                    let n = (r.u16() as usize % CHUNK_DATA + 1).min(sections[sec].len() - off);
                    let m = Message::Chunk {
                        section: Section::ALL[sec],
                        offset: off as u64,
                        data: sections[sec][off..off + n].to_vec().into(),
                    };
                    off += n;
                    let b = s.encode_mutated(m, r);
                    s.send(b, 16);
                }
            }
            4 => {
                let m = Message::End;
                let b = s.encode_mutated(m, r);
                s.send(b, 16);
            }
            5 | 6 => {
                let kind = if op == 5 {
                    DecisionKind::Release
                } else {
                    DecisionKind::Abort
                };
                let mut d = decision(&s.req, kind);
                if r.u8() % 4 == 0 {
                    d.epoch = r.u64();
                }
                let signed = d.sign(&sm_key(0)).expect("signs"); // safe: well-formed object
                let m = if kind == DecisionKind::Release {
                    Message::Release(signed)
                } else {
                    Message::Abort(signed)
                };
                let b = s.encode_mutated(m, r);
                if kind == DecisionKind::Release {
                    released = true;
                }
                if r.u8() & 1 == 0 {
                    s.send(b, 16);
                } else if let Some(m) = s.w.hosts[1].monitor.as_mut() {
                    // The same decision on the SDS path.
                    if let Err(e) = m.handle_sds(&b) {
                        typed(e);
                    }
                    s.exchange(16);
                }
            }
            _ => {
                s.common(op, r);
            }
        }
        s.w.assert_no_fork_at(1);
    }
    crate::trace!(
        "as source: target status {:?}, got {:?}",
        s.w.hosts[1].monitor.as_ref().and_then(|m| m.status(&EID)),
        s.got.iter().map(kind).collect::<Vec<_>>()
    );
    // G4: whatever ran at the target is the image, byte for byte; and it
    // runs only after a RELEASE signed by the source.
    if let Some(m) = s.w.hosts[1].monitor.as_ref() {
        if m.may_run(&EID) {
            assert!(released, "the target runs the enclave without any RELEASE");
            check_image(m, &img);
        }
    }
    for msg in &s.got {
        if let Message::Ready(b) = msg {
            let ready: Ready = verify_as(b, &sm_key(1).public()).expect("READY verifies"); // safe: fuzz assertion
            assert_eq!(ready.request_id, rid);
        }
    }
}

fn check_image(m: &crate::Mon, img: &Image) {
    let e = m
        .enclave_host_ref()
        .get(&EID)
        .expect("runnable enclave exists"); // safe: fuzz assertion
    assert!(e.code == img.code, "code differs");
    assert!(e.state == img.state, "state differs");
    let plain = m.unseal_data(&EID, &e.sealed).expect("sealed data opens"); // safe: fuzz assertion
    assert_eq!(&plain[..], &img.sealed[..], "sealed data differs");
}

/// The harness is the target SM (host 1); host 0's real monitor is the source.
fn as_target(r: &mut Reader) {
    let img = image();
    let mut w = World::new();
    let rid = r.array::<16>();
    if let Err(e) = w.order(1, rid) {
        return typed(e);
    }
    // Deliver the order to the source.
    while let Some(p) = w.net.pop_front() {
        if let Err(e) = w.deliver(p) {
            typed(e);
        }
    }
    let Some(Ok(req)) = w.sds().enclave(&EID).and_then(|e| {
        e.migration.as_ref().map(|mig| {
            let Ok(Message::Order(o)) = Message::decode(&mig.order) else {
                return Err(Error::Decode);
            };
            verify_as::<MigrationRequest>(&o.request, &sds_key().public())
        })
    }) else {
        panic!("the SDS keeps its order");
    };
    let ch = match Channel::server(&sm_key(1), WALL0, Cipher::ChaCha20Poly1305) {
        Ok(c) => c,
        Err(e) => return typed(e),
    };
    let mut s = Session {
        w,
        real: 0,
        me: 1,
        rid,
        ch,
        got: Vec::new(),
        req,
    };
    s.exchange(16);
    let cert = crate::identity(1).certificate().to_vec();
    let mut ready_sent = false;
    for _ in 0..64 {
        if r.is_empty() {
            break;
        }
        let op = r.u8() % 17;
        match op {
            0 | 1 => {
                let m = Message::Accept {
                    request_id: rid,
                    target_certificate: cert.clone(),
                };
                let b = s.encode_mutated(m, r);
                s.send(b, 16);
            }
            2..=4 => {
                // READY over the lengths the stream carries.
                let lengths = img.lengths();
                let mut ready = Ready {
                    request_id: rid,
                    enclave_id: EID,
                    epoch: s.req.epoch + 1,
                    target: s.w.hosts[1].id,
                    measurement: img.measurement(),
                    report_data: report_data(&rid, &lengths),
                    framework_evidence: {
                        let n = r.u8() as usize;
                        r.bytes(n).to_vec()
                    },
                };
                match r.u8() % 8 {
                    0 => ready.epoch = r.u64(),
                    1 => ready.measurement = r.array(),
                    2 => ready.report_data = r.array(),
                    3 => ready.framework_evidence = vec![0; 1025],
                    _ => {}
                }
                let signed = ready.sign(&sm_key(1)).expect("signs"); // safe: well-formed object
                let b = s.encode_mutated(Message::Ready(signed), r);
                ready_sent = true;
                s.send(b, 16);
            }
            5 => {
                let kind = if r.u8() & 1 == 0 {
                    AckKind::Active
                } else {
                    AckKind::Dropped
                };
                let ack = TargetAck {
                    kind,
                    request_id: rid,
                    enclave_id: EID,
                    epoch: s.req.epoch + 1,
                    host: s.w.hosts[1].id,
                };
                let signed = ack.sign(&sm_key(1)).expect("signs"); // safe: well-formed object
                let m = match kind {
                    AckKind::Active => Message::Active(signed),
                    AckKind::Dropped => Message::Dropped(signed),
                };
                let b = s.encode_mutated(m, r);
                s.send(b, 16);
            }
            6 => {
                // A signed decision on the SDS path (as a relay could replay one).
                let kind = if r.u8() & 1 == 0 {
                    DecisionKind::Release
                } else {
                    DecisionKind::Abort
                };
                let signed = decision(&s.req, kind).sign(&sm_key(0)).expect("signs"); // safe: well-formed object
                let m = match kind {
                    DecisionKind::Release => Message::Release(signed),
                    DecisionKind::Abort => Message::Abort(signed),
                };
                let b = s.encode_mutated(m, r);
                if let Some(m) = s.w.hosts[0].monitor.as_mut() {
                    if let Err(e) = m.handle_sds(&b) {
                        typed(e);
                    }
                }
                s.exchange(16);
            }
            _ => {
                s.common(op, r);
            }
        }
        s.w.assert_no_fork_at(0);
    }
    crate::trace!(
        "as target: source status {:?}, got {:?}",
        s.w.hosts[0].monitor.as_ref().and_then(|m| m.status(&EID)),
        s.got.iter().map(kind).collect::<Vec<_>>()
    );
    if let Some(m) = s.w.hosts[0].monitor.as_ref() {
        if let Some(st) = m.status(&EID) {
            if st.state == EnclaveState::Migrated {
                assert!(ready_sent, "the source committed without any READY");
            }
        }
    }
    // G6: a quiet period leaves the source either committed or running the intact image.
    s.w.clock.advance(crate::TIMEOUT_MS * 2);
    if let Some(m) = s.w.hosts[0].monitor.as_mut() {
        if let Err(e) = m.tick() {
            typed(e);
        }
        while m.poll_output().is_some() {}
        if let Some(st) = m.status(&EID) {
            match st.state {
                EnclaveState::Migrated => assert!(!m.enclave_host_ref().is_running(&EID)),
                EnclaveState::Running => check_image(m, &img),
                other => panic!("source left in {other:?} after its timeout"),
            }
        }
    }
    let _ = Category::Decode;
}

/// Two channel ends in-process: raw TLS bytes into fresh ends, then an
/// established pair carrying fuzzer messages with fuzzer-chosen record
/// splits and corruption. Uncorrupted, every message arrives intact and in order.
pub fn channel(data: &[u8]) {
    let mut r = Reader::new(data);
    let (ck, sk) = (sm_key(0), sm_key(1));
    match r.u8() % 3 {
        0 => {
            // Raw bytes into a fresh server.
            let Ok(mut server) = Channel::server(&sk, WALL0, Cipher::ChaCha20Poly1305) else {
                return;
            };
            while !r.is_empty() {
                let b = r.blob();
                let _ = pump(&mut server, b);
            }
        }
        1 => {
            // Raw bytes into a client that has sent its ClientHello.
            let Ok(mut client) = Channel::client(&ck, WALL0, Cipher::ChaCha20Poly1305) else {
                return;
            };
            let _ = pump(&mut client, &[]);
            while !r.is_empty() {
                let b = r.blob();
                let _ = pump(&mut client, b);
            }
        }
        _ => {
            let (Ok(mut client), Ok(mut server)) =
                (Channel::client(&ck, WALL0, Cipher::ChaCha20Poly1305), Channel::server(&sk, WALL0, Cipher::ChaCha20Poly1305))
            else {
                return;
            };
            handshake(&mut client, &mut server);
            assert!(client.is_established() && server.is_established());
            assert_eq!(client.peer_key(), Some(sk.public()));
            assert_eq!(server.peer_key(), Some(ck.public()));
            let mut sent = Vec::new();
            let mut got = Vec::new();
            let mut corrupted = false;
            let mut wire = Vec::new();
            while !r.is_empty() {
                match r.u8() % 4 {
                    0 | 1 => {
                        let n = r.u16() as usize;
                        let fill = r.u8();
                        let msg = vec![fill; n];
                        match client.send(msg.clone()) {
                            Ok(()) => sent.push(msg),
                            Err(e) => typed(e),
                        }
                        let (o, _) = pump(&mut client, &[]);
                        wire.extend(o);
                    }
                    2 => {
                        // Deliver a prefix of what is on the wire (a relay
                        // hands over at most 16 KiB at once: the channel
                        // refuses to buffer more than 65 KiB, TooLarge).
                        let n = (r.u16() as usize % (16 * 1024 + 1)).min(wire.len());
                        let part: Vec<u8> = wire.drain(..n).collect();
                        let (_, msgs) = pump(&mut server, &part);
                        got.extend(msgs);
                    }
                    _ => {
                        if !wire.is_empty() {
                            let i = r.u16() as usize % wire.len();
                            wire[i] ^= r.u8().max(1);
                            corrupted = true;
                        }
                    }
                }
            }
            for part in wire.chunks(16 * 1024) {
                let (_, msgs) = pump(&mut server, part);
                got.extend(msgs);
            }
            let lens = |v: &[Vec<u8>]| v.iter().map(|m| m.len()).collect::<Vec<_>>();
            if !corrupted {
                assert!(
                    got == sent,
                    "channel lost, reordered or changed messages: sent {:?}, got {:?}",
                    lens(&sent),
                    lens(&got)
                );
            } else {
                assert!(
                    sent.starts_with(&got),
                    "a corrupted record was accepted: sent {:?}, got {:?}",
                    lens(&sent),
                    lens(&got)
                );
            }
        }
    }
}
