//! The target role (SMT): accept an offer, receive and re-seal the image,
//! sign READY, then activate on RELEASE or drop on ABORT.

use alloc::vec;
use alloc::vec::Vec;

use crate::crypto::SecretBytes;

use super::session::{InPhase, RecvStream};
use super::{next_epoch, report_data, Dest, Event, Monitor, SEALED_DATA_KEY_ID};
use crate::error::{Error, Result};
use crate::journal::{Proof, RecState, Record, Settled, MAX_RECORDS};
use crate::platform::{EnclaveHost, Platform, Section};
use crate::seal::{self, Sealer};
use crate::wire::{
    verify_as, AckKind, Decision, DecisionKind, EnclavePolicy, Message, MigrationRequest, Offer,
    Ready, RequestId, Signed, SignedBody, SmCertificate, TargetAck, MAX_FRAMEWORK_EVIDENCE,
};

impl<P: Platform, H: EnclaveHost> Monitor<P, H> {
    // -----------------------------------------------------------------------
    // SMT: target side

    pub(super) fn incoming_bytes(&mut self, conn: RequestId, bytes: &[u8]) -> Result<()> {
        if self
            .incoming
            .get(&conn)
            .is_some_and(|s| matches!(s.phase, InPhase::Done))
        {
            return Err(Error::ChannelClosed);
        }
        let now = self.platform.monotonic_ms();
        let s = self.incoming.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        s.last_activity_ms = now;
        let host = s.peer;
        let (out, msgs, res) = s.channel.exchange(bytes);
        if !out.is_empty() {
            self.push(Dest::Peer { host, conn }, out);
        }
        if let Err(e) = res {
            self.incoming_failed(conn, e, false);
            return Err(e);
        }
        for m in msgs {
            if let Err(e) = self.incoming_message(conn, &m) {
                let refuse = !matches!(e, Error::Duplicate);
                self.incoming_failed(conn, e, refuse);
                return Err(e);
            }
        }
        self.flush_in(conn);
        Ok(())
    }

    /// A failure on an incoming channel: drop a half-received import; a
    /// PENDING enclave stays (only RELEASE or ABORT settles it).
    pub(super) fn incoming_failed(&mut self, conn: RequestId, why: Error, refuse: bool) {
        let Some(s) = self.incoming.get_mut(&conn) else {
            return;
        };
        let phase = core::mem::replace(&mut s.phase, InPhase::Done);
        let mut last = Vec::new();
        if refuse && !s.channel.is_closed() {
            let refusal = Message::Refuse {
                request_id: conn,
                code: why.code(),
            };
            last.extend(refusal.encode().ok());
        }
        let bytes = s.channel.send_last_and_close(last);
        let host = s.peer;
        if !bytes.is_empty() {
            self.push(Dest::Peer { host, conn }, bytes);
        }
        #[cfg(feature = "fault-injection")]
        if self
            .faults
            .drops_pending(why, matches!(phase, InPhase::AwaitDecision))
        {
            let pending = self.records.iter().position(
                |r| matches!(r.state, RecState::Pending { request_id, .. } if request_id == conn),
            );
            if let Some(i) = pending {
                let _ = self.drop_import(i, conn);
            }
        }
        // A half-received import is dropped. A PENDING enclave stays pending:
        // its decision can come via the SDS.
        if let InPhase::Receiving(rs) = phase {
            let eid = rs.req.enclave_id;
            if let Some(i) = self.find(&eid) {
                if matches!(self.records[i].state, RecState::Receiving { request_id, .. } if request_id == conn)
                {
                    let _ = self.drop_import(i, conn);
                }
            }
        }
    }

    fn incoming_message(&mut self, conn: RequestId, bytes: &[u8]) -> Result<()> {
        let msg = Message::decode(bytes)?;
        let s = self.incoming.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        match (msg, &mut s.phase) {
            (Message::Offer(offer), InPhase::AwaitOffer) => self.on_offer(conn, offer),
            (
                Message::Chunk {
                    section,
                    offset,
                    data,
                },
                InPhase::Receiving(rs),
            ) => Self::on_chunk(&mut self.host, rs, section, offset, &data),
            (Message::End, InPhase::Receiving(_)) => self.on_end(conn),
            (Message::Refuse { .. }, _) => Err(Error::ChannelClosed),
            (Message::Release(b) | Message::Abort(b), _) => self.on_decision(&b, Some(conn)),
            _ => Err(Error::InvalidState),
        }
    }

    fn on_offer(&mut self, conn: RequestId, offer: Offer) -> Result<()> {
        let sds = self.cfg.sds_key;
        let req: MigrationRequest = verify_as(&offer.order.request, &sds)?;
        let (src_end, tgt_end) = req.vouched_endorsements(
            &offer.order.source_endorsement,
            &offer.order.target_endorsement,
        )?;
        let policy: EnclavePolicy = req.vouched_policy(&offer.policy)?;
        if req.request_id != conn {
            return Err(Error::WrongRequest);
        }
        let any_offer = fault!(self.accept_any_offer);
        let any_target = fault!(self.accept_any_target) || any_offer;
        if !any_target && (req.target != self.host_id() || tgt_end.host != self.host_id()) {
            return Err(Error::WrongTarget);
        }
        if src_end.host != req.source && !any_offer {
            return Err(Error::WrongSource);
        }
        // The TLS peer is the named source, running an endorsed SM.
        let cert = SmCertificate::verify_against(&offer.source_certificate, &src_end)?;
        let s = self.incoming.get(&conn).ok_or(Error::UnknownEnclave)?;
        if s.channel.peer_key() != Some(cert.sm_key) && !any_offer {
            return Err(Error::PeerMismatch);
        }
        if (policy.enclave_id != req.enclave_id || policy.measurement != req.measurement)
            && !any_offer
        {
            return Err(Error::WrongEnclave);
        }
        let now = self.platform.wall_time();
        let now_s = now.ok_or(Error::NoTrustedTime)?;
        if now_s > req.deadline && !any_offer {
            return Err(Error::DeadlinePassed);
        }
        if !any_offer {
            src_end.check_valid(now)?;
            tgt_end.check_valid(now)?;
        }
        if !tgt_end.sm_measurements.contains(&self.id.sm_measurement) && !any_target {
            return Err(Error::SmNotEndorsed);
        }
        if !any_offer {
            policy.admits(&tgt_end)?;
        }
        // Whatever the SDS signed: this host runs the platform it is
        // endorsed for (else a mislabelled endorsement would let the source
        // be destroyed for a copy that can never run here).
        self.cfg.runs(tgt_end.platform)?;
        next_epoch(req.epoch)?;
        // G2: never accept an epoch older than one this host has seen.
        let idx = self.find(&req.enclave_id);
        if let Some(i) = idx {
            let rec = &self.records[i];
            if rec
                .last
                .as_ref()
                .is_some_and(|l| l.request_id == req.request_id)
            {
                return Err(Error::Replay);
            }
            match rec.state {
                RecState::Migrated | RecState::Gone => {
                    if req.epoch < rec.epoch && !any_offer {
                        return Err(Error::StaleEpoch);
                    }
                }
                _ => return Err(Error::Busy),
            }
        } else if self.records.len() >= MAX_RECORDS {
            return Err(Error::Capacity);
        }
        self.check_journal_room()?;
        // Journal RECEIVING, then accept.
        let rec = Record {
            id: req.enclave_id,
            measurement: req.measurement,
            policy: offer.policy.clone(),
            epoch: req.epoch,
            state: RecState::Receiving {
                request_id: req.request_id,
                source_sm: cert.sm_key,
            },
            last: idx.and_then(|i| self.records[i].last.clone()),
            checkpoint: None,
        };
        match idx {
            Some(i) => self.records[i] = rec,
            None => self.records.push(rec),
        }
        self.commit()?;
        // Clear anything a failed earlier import left behind.
        if let Err(e) = self.host.destroy(&req.enclave_id) {
            let i = self.find(&req.enclave_id).ok_or(Error::UnknownEnclave)?;
            self.drop_import(i, req.request_id)?;
            return Err(e);
        }
        let resealer = if offer.lengths[2] > 0 {
            let key = self
                .id
                .sealing_key(&req.measurement, &req.enclave_id, SEALED_DATA_KEY_ID)?;
            let mut salt = [0u8; 32];
            self.drbg.fill(&mut self.platform, &mut salt)?;
            // The data is not here yet: bind what identifies this import.
            let mut context = [0u8; 32];
            context[..16].copy_from_slice(&req.request_id);
            context[16..].copy_from_slice(&req.enclave_id);
            let salt = crate::crypto::bind_salt(&salt, &context)?;
            Some(Sealer::new(&key, salt, seal::DEFAULT_CHUNK_LOG2)?)
        } else {
            None
        };
        // Room for one whole chunk: growing would free plaintext unwiped.
        let seal_cap = resealer.as_ref().map_or(0, Sealer::chunk_size);
        let rs = RecvStream {
            req: req.clone(),
            source_sm: cert.sm_key,
            lengths: offer.lengths,
            section: 0,
            offset: 0,
            resealer,
            seal_buf: SecretBytes::new(Vec::with_capacity(seal_cap)),
            sealed_out: 0,
        };
        #[cfg(feature = "fault-injection")]
        let presented = self.faults.accept_certificate.clone();
        #[cfg(not(feature = "fault-injection"))]
        let presented: Option<Vec<u8>> = None;
        #[allow(clippy::unnecessary_literal_unwrap)] // None in product builds
        let cert_bytes = presented.unwrap_or_else(|| self.id.certificate.clone());
        let s = self.incoming.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        s.phase = InPhase::Receiving(alloc::boxed::Box::new(rs));
        Self::send_on(
            &mut s.channel,
            &Message::Accept {
                request_id: conn,
                target_certificate: cert_bytes,
            },
        )?;
        self.event(conn, Event::OfferAccepted);
        Ok(())
    }

    fn on_chunk(
        host: &mut H,
        rs: &mut RecvStream,
        section: Section,
        offset: u64,
        data: &[u8],
    ) -> Result<()> {
        while rs.section < 3 && rs.offset >= rs.lengths[rs.section] {
            rs.section += 1;
            rs.offset = 0;
        }
        if rs.section >= 3 || section as usize != rs.section || offset != rs.offset {
            return Err(Error::Integrity);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(Error::Integrity)?;
        if data.is_empty() || end > rs.lengths[rs.section] {
            return Err(Error::Integrity);
        }
        rs.offset = end;
        let eid = rs.req.enclave_id;
        if section == Section::Sealed {
            // Re-seal under this device's key as the plaintext arrives.
            let sealer = rs.resealer.as_mut().ok_or(Error::Integrity)?;
            if rs.sealed_out == 0 {
                host.import(&eid, Section::Sealed, 0, sealer.header())?;
                rs.sealed_out = seal::HEADER_LEN as u64;
            }
            let mut rest = data;
            while !rest.is_empty() {
                let room = sealer.chunk_size() - rs.seal_buf.len();
                let take = room.min(rest.len());
                rs.seal_buf.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                let finished = rs.offset == rs.lengths[2] && rest.is_empty();
                if rs.seal_buf.len() == sealer.chunk_size() && !finished {
                    let c = sealer.seal_chunk(&rs.seal_buf, false)?;
                    host.import(&eid, Section::Sealed, rs.sealed_out, &c)?;
                    rs.sealed_out += c.len() as u64;
                    crate::crypto::wipe_vec(&mut rs.seal_buf);
                }
            }
            Ok(())
        } else {
            host.import(&eid, section, offset, data)
        }
    }

    fn on_end(&mut self, conn: RequestId) -> Result<()> {
        let s = self.incoming.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        let InPhase::Receiving(rs) = &mut s.phase else {
            return Err(Error::InvalidState);
        };
        while rs.section < 3 && rs.offset >= rs.lengths[rs.section] {
            rs.section += 1;
            rs.offset = 0;
        }
        if rs.section < 3 {
            return Err(Error::Truncated);
        }
        let req = rs.req.clone();
        let rs_lengths = rs.lengths;
        let source_sm = rs.source_sm;
        let eid = req.enclave_id;
        if let Some(sealer) = rs.resealer.as_mut() {
            let c = sealer.seal_chunk(&rs.seal_buf, true)?;
            self.host.import(&eid, Section::Sealed, rs.sealed_out, &c)?;
            crate::crypto::wipe_vec(&mut rs.seal_buf);
        }
        // G4: the code as loaded measures to what the SDS named.
        if self.host.measure(&eid)? != req.measurement {
            return Err(Error::MeasurementMismatch);
        }
        let rd = report_data(&req.request_id, &rs_lengths);
        let mut evidence = self.host.attest(&eid, &rd)?;
        if evidence.len() > MAX_FRAMEWORK_EVIDENCE {
            return Err(Error::Capacity);
        }
        #[cfg(feature = "fault-injection")]
        let ready_rid = if self.faults.ready_wrong_request {
            [0xee; 16]
        } else {
            req.request_id
        };
        #[cfg(not(feature = "fault-injection"))]
        let ready_rid = req.request_id;
        #[allow(unused_mut)]
        let mut ready = Ready {
            request_id: ready_rid,
            enclave_id: eid,
            epoch: next_epoch(req.epoch)?,
            target: self.host_id(),
            measurement: req.measurement,
            report_data: rd,
            framework_evidence: core::mem::take(&mut evidence),
        };
        // A compromised target (tests only) changes a field or the signer;
        // one signing path for every build.
        #[cfg(feature = "fault-injection")]
        let signer = self.faults.tamper_ready(&mut ready, req.source)?;
        #[cfg(not(feature = "fault-injection"))]
        let signer: Option<crate::crypto::SigningKey> = None;
        let ready = ready.sign(signer.as_ref().unwrap_or(&self.id.sm_key))?;
        let i = self.find(&eid).ok_or(Error::UnknownEnclave)?;
        self.records[i].state = RecState::Pending {
            request_id: req.request_id,
            source: req.source,
            source_sm,
            ready: ready.clone(),
        };
        self.records[i].epoch = next_epoch(req.epoch)?;
        self.commit()?;
        #[cfg(feature = "fault-injection")]
        if self.faults.activate_without_release {
            let _ = self.host.resume(&eid);
        }
        self.event(conn, Event::PendingReady);
        let s = self.incoming.get_mut(&conn).ok_or(Error::UnknownEnclave)?;
        s.phase = InPhase::AwaitDecision;
        Self::send_on(&mut s.channel, &Message::Ready(ready))
    }

    /// Give up a half-received import: journal GONE with a signed DROPPED ack
    /// (so the SDS can stop forwarding ABORT), then destroy the partial copy.
    pub(super) fn drop_import(&mut self, i: usize, request_id: RequestId) -> Result<()> {
        let eid = self.records[i].id;
        let settled = Settled {
            request_id,
            proof: Proof::Ack(TargetAck {
                kind: AckKind::Dropped,
                request_id,
                enclave_id: eid,
                epoch: self.records[i].epoch,
                host: self.host_id(),
            }),
        };
        // Signed here, in memory only, so that a failure changes nothing; the
        // journal keeps the unsigned fields (journal.rs, `Proof`).
        let message = self.settled_message(&settled)?;
        self.records[i].state = RecState::Gone;
        self.records[i].last = Some(settled.clone());
        self.commit()?;
        self.apply(&eid);
        self.event(request_id, Event::Dropped);
        self.push(Dest::Sds, message);
        Ok(())
    }

    /// RELEASE or ABORT for a pending enclave, in-channel or forwarded by the SDS.
    pub(super) fn on_decision(&mut self, bytes: &[u8], conn: Option<RequestId>) -> Result<()> {
        let signed = Signed::parse(bytes)?;
        let kid = signed.kid;
        // Find the record this decision is about by the signer-independent fields first.
        let d = Decision::from_value(signed.verify(&kid)?)?;
        // In-channel, a decision counts only on its own request's connection:
        // one delivered on another session would settle the request while
        // its own session waited for ever (a relay could strand every slot).
        if conn.is_some_and(|c| c != d.request_id) {
            return Err(Error::WrongRequest);
        }
        let i = self.find(&d.enclave_id).ok_or(Error::UnknownEnclave)?;
        let rec = &self.records[i];
        if rec
            .last
            .as_ref()
            .is_some_and(|l| l.request_id == d.request_id)
        {
            // Already settled: re-send our ack, act on nothing.
            if matches!(rec.state, RecState::Running | RecState::Gone) {
                if let Some(l) = &rec.last {
                    let m = self.settled_message(l)?;
                    self.push(Dest::Sds, m);
                }
            }
            return Err(Error::Duplicate);
        }
        if let RecState::Receiving {
            request_id,
            source_sm,
        } = rec.state
        {
            // ABORT for an import still under way: drop it (RELEASE is impossible here).
            if request_id != d.request_id {
                return Err(Error::WrongRequest);
            }
            if kid != source_sm {
                return Err(Error::NotSource);
            }
            if d.kind != DecisionKind::Abort {
                return Err(Error::InvalidState);
            }
            if let Some(s) = self.incoming.get_mut(&request_id) {
                s.phase = InPhase::Done;
                let mut bytes = Vec::new();
                s.channel.close(&mut bytes);
            }
            return self.drop_import(i, request_id);
        }
        let RecState::Pending {
            request_id,
            source,
            source_sm,
            ..
        } = rec.state.clone()
        else {
            return Err(Error::InvalidState);
        };
        if request_id != d.request_id {
            return Err(Error::WrongRequest);
        }
        // Only the source SM that sent the image may decide (G2).
        if kid != source_sm || d.source != source {
            return Err(Error::NotSource);
        }
        if d.target != self.host_id() || d.epoch != rec.epoch {
            return Err(Error::WrongRequest);
        }
        let eid = d.enclave_id;
        let kind = match d.kind {
            DecisionKind::Release => AckKind::Active,
            DecisionKind::Abort => AckKind::Dropped,
        };
        let settled = Settled {
            request_id: d.request_id,
            proof: Proof::Ack(TargetAck {
                kind,
                request_id: d.request_id,
                enclave_id: eid,
                epoch: d.epoch,
                host: self.host_id(),
            }),
        };
        // Signed here, in memory only, so that a failure changes nothing; the
        // journal keeps the unsigned fields (journal.rs, `Proof`).
        let message = self.settled_message(&settled)?;
        let rec = &mut self.records[i];
        rec.state = match kind {
            AckKind::Active => RecState::Running,
            AckKind::Dropped => RecState::Gone,
        };
        rec.last = Some(settled.clone());
        self.commit()?;
        self.apply(&eid);
        self.event(
            d.request_id,
            match kind {
                AckKind::Active => Event::Activated,
                AckKind::Dropped => Event::Dropped,
            },
        );
        self.push(Dest::Sds, message.clone());
        // Close the request's own session, whichever path the decision took.
        let conn = d.request_id;
        if let Some(s) = self.incoming.get_mut(&conn) {
            s.phase = InPhase::Done;
            let bytes = s.channel.send_last_and_close(vec![message]);
            let host = s.peer;
            if !bytes.is_empty() {
                self.push(Dest::Peer { host, conn }, bytes);
            }
        }
        Ok(())
    }
}
