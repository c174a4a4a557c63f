//! What travels on the TCP connections between a node process and the relay:
//! length-prefixed frames.
//!
//! ```text
//! frame = len: u32 big-endian ‖ kind: u8 ‖ from: u8 ‖ to: u8 ‖ conn: [u8; 16] ‖ payload
//! ```
//!
//! `len` counts everything after it. Parties are host indices `0..n`, and
//! [`SDS_PARTY`] for the SDS. A node's first frame is [`Kind::Hello`] with its
//! own party in `from`. `from` of every later frame is set by the relay from
//! the connection it arrived on (the node's claim is not used).

use std::io::{self, Read, Write};

use rewire_core::RequestId;

/// The SDS's party number.
pub const SDS_PARTY: u8 = 0xff;
/// Largest frame accepted (a monitor output is at most a few TLS records).
pub const MAX_FRAME: usize = 1 << 20;
const HEADER: usize = 1 + 1 + 1 + 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// First frame on a connection: `from` names the node.
    Hello = 0,
    /// SDS path: ORDER, QUERY, RELEASE, ABORT, ACTIVE, DROPPED (unprotected CBOR).
    Sds = 1,
    /// Channel bytes (TLS records) of migration `conn`.
    Peer = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub from: u8,
    pub to: u8,
    pub conn: RequestId,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let len = HEADER + self.payload.len();
        let mut b = Vec::with_capacity(4 + len);
        b.extend_from_slice(&(len as u32).to_be_bytes());
        b.push(self.kind as u8);
        b.push(self.from);
        b.push(self.to);
        b.extend_from_slice(&self.conn);
        b.extend_from_slice(&self.payload);
        b
    }
}

pub fn write_frame(w: &mut impl Write, f: &Frame) -> io::Result<()> {
    w.write_all(&f.encode())?;
    w.flush()
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Read one frame; `Ok(None)` on a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if !(HEADER..=MAX_FRAME).contains(&len) {
        return Err(bad("frame length"));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    let kind = match body[0] {
        0 => Kind::Hello,
        1 => Kind::Sds,
        2 => Kind::Peer,
        _ => return Err(bad("frame kind")),
    };
    let mut conn = [0u8; 16];
    conn.copy_from_slice(&body[3..HEADER]);
    Ok(Some(Frame {
        kind,
        from: body[1],
        to: body[2],
        conn,
        payload: body[HEADER..].to_vec(),
    }))
}

/// The name of an SDS-path message kind (for step names), from its tag.
pub fn message_kind(bytes: &[u8]) -> &'static str {
    use rewire_core::wire::Message;
    match Message::decode(bytes) {
        Ok(Message::Order(_)) => "Order",
        Ok(Message::Query { .. }) => "Query",
        Ok(Message::Release(_)) => "Release",
        Ok(Message::Abort(_)) => "Abort",
        Ok(Message::Active(_)) => "Active",
        Ok(Message::Dropped(_)) => "Dropped",
        Ok(_) => "Other",
        Err(_) => "Garbage",
    }
}
