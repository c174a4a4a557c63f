//! The source role (SMS): validate an order, freeze the enclave, stream its
//! image to the target, then commit on READY or abort.

use alloc::vec;
use alloc::vec::Vec;

use crate::crypto::SecretBytes;

use super::session::{OutPhase, OutSession, SendStream};
use super::{next_epoch, report_data, Dest, Event, Monitor};
use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::journal::{Proof, RecState, Settled};
use crate::platform::{EnclaveHost, Platform, Section};
use crate::seal::{self, Unsealer};
use crate::wire::{
    verify_as, Decision, DecisionKind, EnclaveId, EnclavePolicy, HostEndorsement, HostId, Message,
    MigrationRequest, Offer, Order, Ready, RequestId, Signed, SignedBody, SmCertificate,
    CHUNK_DATA,
};

impl<P: Platform, H: EnclaveHost> Monitor<P, H> {
    // -----------------------------------------------------------------------
    // SMS: source side

    fn decision(kind: DecisionKind, req: &MigrationRequest, epoch: u64) -> Decision {
        Decision {
            kind,
            request_id: req.request_id,
            enclave_id: req.enclave_id,
            epoch,
            source: req.source,
            target: req.target,
        }
    }

    /// Validate an order completely (G1). Returns the parsed parts.
    fn validate_order(
        &mut self,
        order: &Order,
    ) -> Result<(MigrationRequest, HostEndorsement, usize)> {
        let sds = self.cfg.sds_key;
        let req: MigrationRequest = verify_as(&order.request, &sds)?;
        let (src_end, tgt_end) =
            req.vouched_endorsements(&order.source_endorsement, &order.target_endorsement)?;
        if fault!(self.skip_order_checks) {
            let i = self.find(&req.enclave_id).ok_or(Error::UnknownEnclave)?;
            return Ok((req, tgt_end, i));
        }
        if req.source != self.host_id() || src_end.host != self.host_id() {
            return Err(Error::WrongSource);
        }
        if tgt_end.host != req.target || req.target == req.source {
            return Err(Error::WrongTarget);
        }
        let i = self.find(&req.enclave_id).ok_or(Error::UnknownEnclave)?;
        let rec = &self.records[i];
        if rec.measurement != req.measurement {
            return Err(Error::WrongEnclave);
        }
        if let Some(last) = &rec.last {
            if last.request_id == req.request_id {
                let m = self.settled_message(last)?;
                self.push(Dest::Sds, m);
                return Err(Error::Replay);
            }
        }
        match &rec.state {
            RecState::Frozen { request_id, .. } if *request_id == req.request_id => {
                return Err(Error::Duplicate)
            }
            RecState::Frozen { .. } => return Err(Error::Busy),
            RecState::Migrated | RecState::Running if req.epoch != rec.epoch => {
                // The SDS is behind: tell it what settled the newer epoch.
                let proof = match &rec.last {
                    Some(l) => Some(self.settled_message(l)?),
                    None => None,
                };
                let e = if rec.state == RecState::Migrated {
                    Error::Migrated
                } else {
                    Error::StaleEpoch
                };
                if let Some(m) = proof {
                    self.push(Dest::Sds, m);
                }
                return Err(e);
            }
            RecState::Running => {}
            _ => return Err(Error::InvalidState),
        }
        // Both outcomes consume the epoch: refuse before anything changes if none is left.
        next_epoch(rec.epoch)?;
        // Verified at install and kept in the sealed journal; the request must name it.
        let policy: EnclavePolicy = req.vouched_policy(&rec.policy)?;
        let now = self.platform.wall_time();
        if now.is_none() {
            return Err(Error::NoTrustedTime);
        }
        src_end.check_valid(now)?;
        tgt_end.check_valid(now)?;
        // The target's platform runs the code (PlatformMismatch), at a high
        // enough ATL (AtlTooLow).
        policy.admits(&tgt_end)?;
        if !src_end.sm_measurements.contains(&self.id.sm_measurement) {
            return Err(Error::SmNotEndorsed);
        }
        Ok((req, tgt_end, i))
    }

    pub(super) fn on_order(&mut self, order: Order) -> Result<()> {
        let (req, tgt_end, i) = self.validate_order(&order)?;
        let rid = req.request_id;
        if self.wall_time()? > req.deadline && !fault!(self.skip_order_checks) {
            // A valid request that can never start now. Settle it for good, so
            // that it can never start later and the SDS has a signed answer:
            // ABORT consumes the epoch exactly as an aborted migration does.
            self.records[i].state = RecState::Frozen {
                request_id: rid,
                target: req.target,
            };
            self.abort_outgoing_record(i, rid, req.target, Error::DeadlinePassed)?;
            return Err(Error::DeadlinePassed);
        }
        self.event(rid, Event::Validated);
        if self.outgoing.contains_key(&rid)
            || self.incoming.contains_key(&rid)
            || self.finished.contains(&rid)
        {
            return Err(Error::Busy);
        }
        let now = self.wall_time()?;
        let channel = Channel::client(&self.id.sm_key, now, self.cfg.cipher)?;
        self.records[i].state = RecState::Frozen {
            request_id: rid,
            target: req.target,
        };
        self.commit()?;
        if let Err(e) = self.host.pause(&req.enclave_id) {
            // Nothing may leave an enclave that did not stop: abort at once.
            self.abort_outgoing_record(i, rid, req.target, e)?;
            return Err(e);
        }
        self.event(rid, Event::Frozen);
        let last_activity_ms = self.platform.monotonic_ms();
        self.outgoing.insert(
            rid,
            OutSession {
                req,
                order,
                target_end: tgt_end,
                channel,
                phase: OutPhase::Connecting,
                target_sm: None,
                last_activity_ms,
                stream: None,
            },
        );
        if let Err(e) = self.flush_out(rid) {
            return self.outgoing_failed(rid, e).and(Err(e));
        }
        Ok(())
    }

    pub(super) fn outgoing_bytes(&mut self, conn: RequestId, bytes: &[u8]) -> Result<()> {
        let r = self.outgoing_bytes_inner(conn, bytes);
        if let Err(e) = r {
            let committed = self
                .outgoing
                .get(&conn)
                .is_some_and(|s| matches!(s.phase, OutPhase::Done));
            if !committed {
                self.outgoing_failed(conn, e)?;
            }
        }
        r
    }

    fn outgoing_bytes_inner(&mut self, conn: RequestId, bytes: &[u8]) -> Result<()> {
        let now = self.platform.monotonic_ms();
        let s = self.outgoing.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        s.last_activity_ms = now;
        let host = s.req.target;
        let (out, msgs, res) = s.channel.exchange(bytes);
        if !out.is_empty() {
            self.push(Dest::Peer { host, conn }, out);
        }
        let mut result = res;
        for m in msgs {
            if result.is_err() {
                break;
            }
            result = self.outgoing_message(conn, &m);
        }
        result?;
        // Handshake finished: send OFFER once.
        let s = self.outgoing.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        if matches!(s.phase, OutPhase::Connecting) && s.channel.is_established() {
            let eid = s.req.enclave_id;
            let lengths_raw = [
                self.host.export_len(&eid, Section::Code)?,
                self.host.export_len(&eid, Section::State)?,
                self.host.export_len(&eid, Section::Sealed)?,
            ];
            let mut stream = self.open_stream(&eid, lengths_raw)?;
            #[cfg(feature = "fault-injection")]
            if let Some(code) = &self.faults.replace_code {
                stream.lengths[0] = code.len() as u64;
                stream.raw[0] = code.len() as u64;
            }
            stream.chunks_sent = 0;
            let policy = self.records[self.find(&eid).ok_or(Error::UnknownEnclave)?]
                .policy
                .clone();
            let s = self.outgoing.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
            let offer = Message::Offer(Offer {
                order: s.order.clone(),
                policy,
                source_certificate: self.id.certificate.clone(),
                lengths: stream.lengths,
            });
            s.stream = Some(stream);
            Self::send_on(&mut s.channel, &offer)?;
            s.phase = OutPhase::AwaitAccept;
            self.event(conn, Event::ChannelUp);
            self.event(conn, Event::Offered);
            self.flush_out(conn)?;
        }
        Ok(())
    }

    fn open_stream(&mut self, eid: &EnclaveId, raw: [u64; 3]) -> Result<SendStream> {
        let mut lengths = raw;
        let mut unsealer = None;
        let mut sealed_chunks = 0;
        let mut sealed_raw_offset = 0;
        if raw[2] > 0 {
            let mut header = [0u8; seal::HEADER_LEN];
            let n = self.host.export(eid, Section::Sealed, 0, &mut header)?;
            if n != header.len() {
                return Err(Error::Unseal);
            }
            let (plain_len, chunks) = seal::chunk_layout(&header, raw[2])?;
            let key = self.sealing_key(eid)?;
            unsealer = Some(Unsealer::new(&key, &header)?);
            lengths[2] = plain_len;
            sealed_chunks = chunks;
            sealed_raw_offset = seal::HEADER_LEN as u64;
        }
        Ok(SendStream {
            section: 0,
            offset: 0,
            raw,
            lengths,
            unsealer,
            sealed_chunks,
            sealed_index: 0,
            sealed_raw_offset,
            plain_buf: SecretBytes::new(Vec::new()),
            plain_pos: 0,
            chunks_sent: 0,
        })
    }

    fn outgoing_message(&mut self, conn: RequestId, bytes: &[u8]) -> Result<()> {
        let msg = Message::decode(bytes)?;
        let s = self.outgoing.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        match (msg, &s.phase) {
            (
                Message::Accept {
                    request_id,
                    target_certificate,
                },
                OutPhase::AwaitAccept,
            ) => {
                if request_id != s.req.request_id {
                    return Err(Error::WrongRequest);
                }
                // G1/G4: the peer is the named target, running an endorsed SM, and
                // the TLS key is that SM's key.
                let cert = SmCertificate::verify_against(&target_certificate, &s.target_end)?;
                if cert.device != s.req.target {
                    return Err(Error::PeerMismatch);
                }
                if s.channel.peer_key() != Some(cert.sm_key) {
                    return Err(Error::PeerMismatch);
                }
                s.target_sm = Some(cert.sm_key);
                s.phase = OutPhase::Streaming;
                self.event(conn, Event::TargetVerified);
                Ok(())
            }
            (Message::Refuse { request_id, code }, _) => {
                if request_id != s.req.request_id {
                    return Err(Error::WrongRequest);
                }
                Err(Error::from_code(code).unwrap_or(Error::InvalidState))
            }
            (Message::Ready(b), OutPhase::AwaitReady) => self.on_ready(conn, &b),
            (Message::Active(_), _) => Ok(()),
            (Message::Ready(_), OutPhase::Done) => Err(Error::Duplicate),
            _ => Err(Error::InvalidState),
        }
    }

    /// Produce the next chunk of an outgoing stream (bounded: one per call).
    pub(super) fn produce_chunk(&mut self) -> Result<()> {
        let Some(conn) = self
            .outgoing
            .iter()
            .find(|(_, s)| matches!(s.phase, OutPhase::Streaming))
            .map(|(k, _)| *k)
        else {
            return Ok(());
        };
        let r = self.produce_chunk_for(conn);
        if let Err(e) = r {
            self.outgoing_failed(conn, e)?;
        }
        r
    }

    fn produce_chunk_for(&mut self, conn: RequestId) -> Result<()> {
        let now = self.platform.monotonic_ms();
        if let Some(s) = self.outgoing.get_mut(&conn) {
            s.last_activity_ms = now;
        }
        #[cfg(feature = "fault-injection")]
        let faults = self.faults.clone();
        let s = self.outgoing.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        let eid = s.req.enclave_id;
        let st = s.stream.as_mut().ok_or(Error::InvalidState)?;
        #[cfg(feature = "fault-injection")]
        let truncate = faults.truncate(st.chunks_sent);
        #[cfg(not(feature = "fault-injection"))]
        let truncate = false;
        while st.section < 3 && st.offset >= st.lengths[st.section] {
            st.section += 1;
            st.offset = 0;
        }
        if st.section >= 3 || truncate {
            if !truncate {
                // Open every sealed chunk, also an empty final one: a blob cut
                // at a chunk boundary must fail on its last-chunk flag.
                while st.unsealer.is_some() && st.sealed_index < st.sealed_chunks {
                    st.open_next_sealed(&mut self.host, &eid)?;
                    if !st.plain_buf.is_empty() {
                        return Err(Error::Unseal);
                    }
                }
            }
            s.phase = OutPhase::AwaitReady;
            #[cfg(feature = "fault-injection")]
            if faults.chunk_tamper == Some(super::ChunkTamper::AfterEnd) {
                let extra = Message::Chunk {
                    section: Section::State,
                    offset: 0,
                    data: vec![0x5a].into(),
                };
                s.channel.send(extra.encode()?)?;
            }
            self.event(conn, Event::StreamDone);
            let s = self.outgoing.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
            s.channel.send(Message::End.encode()?)?;
            return self.flush_out(conn);
        }
        // One CHUNK, built in place in its channel frame: the data goes from
        // the framework (or the opened sealed chunk) straight into the frame
        // that TLS encrypts; nothing else copies it.
        let section = Section::ALL[st.section];
        let offset = st.offset;
        let want = if section == Section::Sealed {
            #[cfg(feature = "fault-injection")]
            let piece = faults.sealed_piece(CHUNK_DATA);
            #[cfg(not(feature = "fault-injection"))]
            let piece = CHUNK_DATA;
            // Full pieces, across the blob's own chunk boundaries (a blob
            // sealed in small chunks still streams in full chunks).
            (piece as u64).min(st.lengths[2] - offset) as usize
        } else {
            (CHUNK_DATA as u64).min(st.lengths[st.section] - offset) as usize
        };
        if want == 0 {
            return Err(Error::Unseal);
        }
        #[cfg(feature = "fault-injection")]
        let extra = faults.oversize(section, offset + want as u64, st.lengths[st.section]);
        #[cfg(not(feature = "fault-injection"))]
        let extra = 0;
        #[allow(unused_mut)]
        let (mut named_section, mut named_offset) = (section, offset);
        #[cfg(feature = "fault-injection")]
        faults.misplace(&mut named_section, &mut named_offset);
        // What this CHUNK carries: `want` bytes of the section (and, from a
        // compromised source in tests, `extra` zero bytes more).
        let sent = want + extra;
        let (prefix, at) = crate::wire::chunk_prefix(named_section, named_offset, sent);
        let mut frame = Channel::frame(at + sent)?;
        let body = &mut frame[crate::channel::FRAME_HEAD..];
        body[..at].copy_from_slice(&prefix[..at]);
        let data = &mut body[at..at + want];
        if section == Section::Sealed {
            // Each opened chunk advances `sealed_index`, so this ends.
            let mut filled = 0;
            while filled < want {
                if st.plain_pos >= st.plain_buf.len() {
                    st.open_next_sealed(&mut self.host, &eid)?;
                }
                let n = (want - filled).min(st.plain_buf.len() - st.plain_pos);
                data[filled..filled + n]
                    .copy_from_slice(&st.plain_buf[st.plain_pos..st.plain_pos + n]);
                st.plain_pos += n;
                filled += n;
            }
        } else {
            // A compromised source (tests only) sends other code; every
            // build checks the framework's export the same way.
            #[cfg(feature = "fault-injection")]
            let substitute = match (section, &faults.replace_code) {
                (Section::Code, Some(code)) => code.get(offset as usize..offset as usize + want),
                _ => None,
            };
            #[cfg(not(feature = "fault-injection"))]
            let substitute: Option<&[u8]> = None;
            match substitute {
                Some(code) => data.copy_from_slice(code),
                None => {
                    if self.host.export(&eid, section, offset, data)? != want {
                        return Err(Error::Host);
                    }
                }
            }
        }
        st.offset += sent as u64;
        st.chunks_sent += 1;
        s.channel.send_frame(frame)?;
        self.flush_out(conn)
    }

    fn on_ready(&mut self, conn: RequestId, bytes: &[u8]) -> Result<()> {
        let s = self.outgoing.get(&conn).ok_or(Error::UnknownEnclave)?;
        let target_sm = s.target_sm.ok_or(Error::InvalidState)?;
        // Signed by the SM key the ACCEPT proved (`verify` refuses any other
        // signer with UnknownSigner before it checks the signature).
        let ready = Ready::from_value(Signed::parse(bytes)?.verify(&target_sm)?)?;
        let req = s.req.clone();
        if ready.request_id != req.request_id || ready.enclave_id != req.enclave_id {
            return Err(Error::WrongRequest);
        }
        let next = next_epoch(req.epoch)?;
        if ready.target != req.target || ready.epoch != next {
            return Err(Error::WrongRequest);
        }
        if ready.measurement != req.measurement {
            return Err(Error::MeasurementMismatch);
        }
        // READY is taken only in AwaitReady, after END: the lengths are what
        // this source streamed in full over this channel (protocol §4.5).
        let lengths = s
            .stream
            .as_ref()
            .map(|st| st.lengths)
            .ok_or(Error::InvalidState)?;
        if ready.report_data != report_data(&req.request_id, &lengths) {
            return Err(Error::Integrity);
        }
        // Commit point (G2): only from FROZEN for this very request — an
        // aborted migration never commits, whatever arrives late.
        let i = self.find(&req.enclave_id).ok_or(Error::UnknownEnclave)?;
        if !matches!(self.records[i].state, RecState::Frozen { request_id, .. } if request_id == conn)
        {
            return Err(Error::InvalidState);
        }
        // Journal MIGRATED with the RELEASE proof, then destroy.
        // What RELEASE names: the request and the next epoch (a compromised
        // source, in tests only, names something else; one signing path).
        #[allow(unused_mut)]
        let (mut named, mut named_epoch) = (req.clone(), next);
        #[cfg(feature = "fault-injection")]
        self.faults.release_names(&mut named, &mut named_epoch);
        let settled = Settled {
            request_id: req.request_id,
            proof: Proof::Decision(Self::decision(DecisionKind::Release, &named, named_epoch)),
        };
        // Signed here, in memory only, so that a failure changes nothing; the
        // journal keeps the unsigned fields (journal.rs, `Proof`).
        let message = self.settled_message(&settled)?;
        self.records[i].state = RecState::Migrated;
        self.records[i].epoch = next;
        self.records[i].last = Some(settled.clone());
        if let Some(s) = self.outgoing.get_mut(&conn) {
            s.phase = OutPhase::Done;
        }
        self.commit()?;
        #[cfg(feature = "fault-injection")]
        let keep_copy = self.faults.resume_after_release;
        #[cfg(not(feature = "fault-injection"))]
        let keep_copy = false;
        if !keep_copy {
            self.apply(&req.enclave_id);
        }
        self.event(conn, Event::Committed);
        self.push(Dest::Sds, message.clone());
        if let Some(s) = self.outgoing.get_mut(&conn) {
            s.channel.send(message)?;
        }
        if keep_copy {
            let _ = self.host.resume(&req.enclave_id);
        }
        self.flush_out(conn)
    }

    /// Abort an uncommitted outgoing migration: journal the bumped epoch and
    /// the signed ABORT, resume the enclave, tell the SDS (and the target).
    pub(super) fn outgoing_failed(&mut self, conn: RequestId, why: Error) -> Result<()> {
        let Some(s) = self.outgoing.get(&conn) else {
            return Ok(());
        };
        if matches!(s.phase, OutPhase::Done) {
            return Ok(());
        }
        let (eid, target) = (s.req.enclave_id, s.req.target);
        event!(info, error = why.code(), "aborting outgoing migration");
        // Done first: whatever happens below, this session never commits.
        if let Some(s) = self.outgoing.get_mut(&conn) {
            s.phase = OutPhase::Done;
        }
        let i = self.find(&eid).ok_or(Error::UnknownEnclave)?;
        let abort = self.abort_outgoing_record(i, conn, target, why)?;
        if let Some(s) = self.outgoing.get_mut(&conn) {
            // ABORT first: the target acts on it (drops its copy) before the
            // REFUSE that tells it why ends the channel.
            let refusal = Message::Refuse {
                request_id: conn,
                code: why.code(),
            };
            let mut last = vec![abort];
            last.extend(refusal.encode().ok());
            let bytes = s.channel.send_last_and_close(last);
            if !bytes.is_empty() {
                self.push(Dest::Peer { host: target, conn }, bytes);
            }
        }
        Ok(())
    }

    /// Journal ABORTED for record `i` (frozen for `rid`), resume, emit ABORT. Returns the message.
    pub(super) fn abort_outgoing_record(
        &mut self,
        i: usize,
        rid: RequestId,
        target: HostId,
        why: Error,
    ) -> Result<Vec<u8>> {
        let rec = &self.records[i];
        let RecState::Frozen { request_id, .. } = rec.state else {
            return Err(Error::InvalidState);
        };
        if request_id != rid {
            return Err(Error::WrongRequest);
        }
        let req = MigrationRequest {
            request_id: rid,
            enclave_id: rec.id,
            measurement: rec.measurement,
            source: self.host_id(),
            target,
            epoch: rec.epoch,
            deadline: 0,
            endorsements: [[0; 32]; 2],
            policy: [0; 32],
        };
        let new_epoch = next_epoch(rec.epoch)?;
        let settled = Settled {
            request_id: rid,
            proof: Proof::Decision(Self::decision(DecisionKind::Abort, &req, new_epoch)),
        };
        // Signed here, in memory only, so that a failure changes nothing; the
        // journal keeps the unsigned fields (journal.rs, `Proof`).
        let message = self.settled_message(&settled)?;
        let eid = rec.id;
        let rec = &mut self.records[i];
        rec.state = RecState::Running;
        rec.epoch = new_epoch;
        rec.last = Some(settled.clone());
        self.commit()?;
        self.apply(&eid);
        self.event(rid, Event::Aborted(why));
        self.push(Dest::Sds, message.clone());
        Ok(message)
    }
}
