//! Session bookkeeping: the per-channel state of outgoing (SMS) and incoming
//! (SMT) migrations, and the helpers that move their TLS bytes.

use alloc::vec;
use alloc::vec::Vec;

use crate::crypto::SecretBytes;

use super::{Dest, Monitor};
use crate::channel::Channel;
use crate::crypto::PublicKey;
use crate::error::{Error, Result};
use crate::platform::{EnclaveHost, Platform, Section};
use crate::seal::{Sealer, Unsealer};
use crate::wire::{
    EnclaveId, HostEndorsement, HostId, Message, MigrationRequest, Order, RequestId,
};

pub(super) enum OutPhase {
    Connecting,
    AwaitAccept,
    Streaming,
    AwaitReady,
    Done,
}

pub(super) struct SendStream {
    pub(super) section: usize,
    pub(super) offset: u64,
    /// Raw lengths as exported (Sealed: the sealed blob's length).
    pub(super) raw: [u64; 3],
    /// Plaintext lengths as announced.
    pub(super) lengths: [u64; 3],
    pub(super) unsealer: Option<Unsealer>,
    pub(super) sealed_chunks: u64,
    pub(super) sealed_index: u64,
    pub(super) sealed_raw_offset: u64,
    pub(super) plain_buf: SecretBytes,
    pub(super) plain_pos: usize,
    #[allow(dead_code)]
    pub(super) chunks_sent: usize,
}

impl SendStream {
    /// Read and open the next chunk of the sealed blob into `plain_buf`.
    pub(super) fn open_next_sealed<H: EnclaveHost>(
        &mut self,
        host: &mut H,
        eid: &EnclaveId,
    ) -> Result<()> {
        let u = self.unsealer.as_mut().ok_or(Error::InvalidState)?;
        if self.sealed_index >= self.sealed_chunks {
            return Err(Error::Unseal);
        }
        let want =
            (u.sealed_chunk_len() as u64).min(self.raw[2].saturating_sub(self.sealed_raw_offset));
        let mut buf = vec![0u8; want as usize];
        let n = host.export(eid, Section::Sealed, self.sealed_raw_offset, &mut buf)?;
        if n != buf.len() {
            return Err(Error::Unseal);
        }
        let last = self.sealed_index + 1 == self.sealed_chunks;
        u.open_chunk(&mut buf, last)?;
        self.sealed_index += 1;
        self.sealed_raw_offset += want;
        self.plain_buf = SecretBytes::new(buf);
        self.plain_pos = 0;
        Ok(())
    }
}

pub(super) struct OutSession {
    pub(super) req: MigrationRequest,
    pub(super) order: Order,
    pub(super) target_end: HostEndorsement,
    pub(super) channel: Channel,
    pub(super) phase: OutPhase,
    pub(super) target_sm: Option<PublicKey>,
    pub(super) last_activity_ms: u64,
    pub(super) stream: Option<SendStream>,
}

pub(super) struct RecvStream {
    pub(super) req: MigrationRequest,
    pub(super) source_sm: PublicKey,
    pub(super) lengths: [u64; 3],
    pub(super) section: usize,
    pub(super) offset: u64,
    pub(super) resealer: Option<Sealer>,
    pub(super) seal_buf: SecretBytes,
    pub(super) sealed_out: u64,
}

pub(super) enum InPhase {
    AwaitOffer,
    Receiving(alloc::boxed::Box<RecvStream>),
    AwaitDecision,
    Done,
}

pub(super) struct InSession {
    pub(super) peer: HostId,
    pub(super) channel: Channel,
    pub(super) phase: InPhase,
    pub(super) last_activity_ms: u64,
}

impl<P: Platform, H: EnclaveHost> Monitor<P, H> {
    pub(super) fn reap_sessions(&mut self) {
        let done: Vec<RequestId> = self
            .incoming
            .iter()
            .filter(|(_, s)| matches!(s.phase, InPhase::Done))
            .map(|(k, _)| *k)
            .chain(
                self.outgoing
                    .iter()
                    .filter(|(_, s)| matches!(s.phase, OutPhase::Done))
                    .map(|(k, _)| *k),
            )
            .collect();
        for k in done {
            self.incoming.remove(&k);
            self.outgoing.remove(&k);
            if self.finished.len() >= 64 {
                self.finished.pop_front();
            }
            self.finished.push_back(k);
        }
    }

    pub(super) fn send_on(channel: &mut Channel, msg: &Message) -> Result<()> {
        channel.send(msg.encode()?)
    }

    pub(super) fn flush_out(&mut self, conn: RequestId) -> Result<()> {
        let Some(s) = self.outgoing.get_mut(&conn) else {
            return Ok(());
        };
        let mut bytes = Vec::new();
        let mut msgs = Vec::new();
        let r = s.channel.pump(&mut bytes, &mut msgs);
        let host = s.req.target;
        if !bytes.is_empty() {
            self.push(Dest::Peer { host, conn }, bytes);
        }
        r
    }

    pub(super) fn flush_in(&mut self, conn: RequestId) {
        let Some(s) = self.incoming.get_mut(&conn) else {
            return;
        };
        let mut bytes = Vec::new();
        let mut msgs = Vec::new();
        let _ = s.channel.pump(&mut bytes, &mut msgs);
        let host = s.peer;
        if !bytes.is_empty() {
            self.push(Dest::Peer { host, conn }, bytes);
        }
    }
}
