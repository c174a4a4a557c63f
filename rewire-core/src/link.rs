//! The host link: how the SDS, the host agents and their peers frame bytes
//! over TCP (docs/transport.md). Sans-IO like the rest of the core: an
//! encoder, and a strict incremental decoder that callers feed whatever the
//! socket gave them.
//!
//! Nothing here is trusted. A frame carries bytes the monitors and the SDS
//! judge themselves (signed messages, TLS records between monitors); the
//! link only has to be unambiguous and bounded so that a hostile peer cannot
//! make an agent buffer without limit or mis-route a frame.
//!
//! ```text
//! frame = "RL" ‖ version u8 (1) ‖ type u8 ‖ length u32 big-endian ‖ payload[length]
//! ```

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};

/// The link version this build speaks.
pub const VERSION: u8 = 1;
/// Bytes before a frame's payload.
pub const HEADER: usize = 8;
/// Cap on a frame's payload: the largest monitor output (128 KiB) with room
/// for its header. Anything longer is refused before it is buffered.
pub const MAX_PAYLOAD: usize = 128 * 1024 + 64;
/// Cap on the entries of a peer directory.
pub const MAX_PEERS: usize = 256;
/// Cap on a host name or address in a directory, and on an error's text.
pub const MAX_TEXT: usize = 255;
const MAGIC: &[u8; 2] = b"RL";

// The largest monitor output (OUT_MAX, 128 KiB) fits as a Peer frame (from[32]
// conn[16]) or as a Report (one type byte), and the cap stays well under what
// a decoder may buffer for two frames.
const _: () = assert!(MAX_PAYLOAD >= 128 * 1024 + 49 && MAX_PAYLOAD <= 129 * 1024);
const _: () = assert!(HEADER == 8 && MAX_TEXT == 255 && MAX_PEERS == 256);

/// What a frame is. The numbers are on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Client → agent, first frame: asks for [`Kind::Info`]. Empty payload.
    Hello = 1,
    /// Agent → client: the monitor's identity (`host_id[32] ‖
    /// sm_measurement[32] ‖ enclave_measurement[32] ‖ sm_certificate`).
    Info = 2,
    /// SDS → agent: one SDS message for the monitor.
    ToMonitor = 3,
    /// Agent → SDS: one message the monitor addressed to the SDS.
    FromMonitor = 4,
    /// SDS → agent: an operator command for the host (`command u8 ‖ args`).
    Command = 5,
    /// Agent → SDS: what the host reported (`report u8 ‖ bytes`).
    Report = 6,
    /// SDS → agent: where the other hosts' agents listen (see [`Directory`]).
    Peers = 7,
    /// Agent → agent: TLS bytes between two monitors (`from[32] ‖ conn[16] ‖ bytes`).
    Peer = 8,
    /// Either way, last frame before closing: why (`code u16 ‖ utf-8 text`).
    Error = 9,
    /// SDS → agent (empty): asks for counters; agent → SDS: the counters,
    /// UTF-8 lines `name value` (metrics for operators; nothing secret).
    Stats = 10,
}

impl Kind {
    fn from_u8(b: u8) -> Result<Kind> {
        Ok(match b {
            1 => Kind::Hello,
            2 => Kind::Info,
            3 => Kind::ToMonitor,
            4 => Kind::FromMonitor,
            5 => Kind::Command,
            6 => Kind::Report,
            7 => Kind::Peers,
            8 => Kind::Peer,
            9 => Kind::Error,
            10 => Kind::Stats,
            _ => return Err(Error::WrongMessageType),
        })
    }
}

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Its type.
    pub kind: Kind,
    /// Its payload (at most [`MAX_PAYLOAD`] bytes).
    pub payload: Vec<u8>,
}

/// Encode one frame. [`Error::TooLarge`] past [`MAX_PAYLOAD`].
pub fn encode(kind: Kind, payload: &[u8]) -> Result<Vec<u8>> {
    if payload.len() > MAX_PAYLOAD {
        return Err(Error::TooLarge);
    }
    let len = u32::try_from(payload.len()).map_err(|_| Error::TooLarge)?;
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(kind as u8);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Incremental, strict decoder. Feed it bytes as they arrive; take frames
/// with [`Decoder::next`]. The first bad header is an error and the decoder
/// stays failed: a link that sent garbage is closed, not resynchronised.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    failed: Option<Error>,
}

impl Decoder {
    /// A decoder with nothing buffered.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Bytes received and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Append bytes read from the link. Refuses (and fails the decoder) once
    /// the buffer would hold more than one whole maximal frame: a peer must
    /// not make us buffer without bound even if the caller never calls `next`.
    pub fn push(&mut self, bytes: &[u8]) -> Result<()> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.buf.len() + bytes.len() > 2 * (HEADER + MAX_PAYLOAD) {
            return Err(self.fail(Error::TooLarge));
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn fail(&mut self, e: Error) -> Error {
        self.failed = Some(e);
        self.buf.clear();
        e
    }

    /// The next whole frame, `Ok(None)` if more bytes are needed. Errors:
    /// [`Error::Decode`] (not a link frame), [`Error::UnsupportedVersion`],
    /// [`Error::WrongMessageType`], [`Error::TooLarge`] (the header announces
    /// more than [`MAX_PAYLOAD`]: refused before the payload arrives).
    #[allow(clippy::should_implement_trait)] // fallible, not an Iterator
    pub fn next(&mut self) -> Result<Option<Frame>> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let m = self.buf.len().min(MAGIC.len());
        if self.buf[..m] != MAGIC[..m] {
            return Err(self.fail(Error::Decode));
        }
        if self.buf.len() < HEADER {
            return Ok(None);
        }
        if self.buf[2] != VERSION {
            return Err(self.fail(Error::UnsupportedVersion));
        }
        let kind = match Kind::from_u8(self.buf[3]) {
            Ok(k) => k,
            Err(e) => return Err(self.fail(e)),
        };
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(self.fail(Error::TooLarge));
        }
        if self.buf.len() < HEADER + len {
            return Ok(None);
        }
        let payload = self.buf[HEADER..HEADER + len].to_vec();
        self.buf.drain(..HEADER + len);
        Ok(Some(Frame { kind, payload }))
    }
}

/// The monitor's identity as an agent reports it in [`Kind::Info`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// The host id (the device's public key).
    pub host_id: [u8; 32],
    /// The SM measurement the monitor reports (the SDS decides from its own record).
    pub sm_measurement: [u8; 32],
    /// The measurement of the enclave code the host offers to launch.
    pub enclave_measurement: [u8; 32],
    /// The device-signed SM certificate.
    pub certificate: Vec<u8>,
}

impl Info {
    /// Decode an [`Kind::Info`] payload.
    pub fn decode(p: &[u8]) -> Result<Info> {
        if p.len() < 96 {
            return Err(Error::Decode);
        }
        if p.len() > 96 + crate::wire::MAX_SIGNED {
            return Err(Error::TooLarge);
        }
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        let mut c = [0u8; 32];
        a.copy_from_slice(&p[..32]);
        b.copy_from_slice(&p[32..64]);
        c.copy_from_slice(&p[64..96]);
        if p.len() == 96 {
            return Err(Error::Truncated);
        }
        Ok(Info {
            host_id: a,
            sm_measurement: b,
            enclave_measurement: c,
            certificate: p[96..].to_vec(),
        })
    }

    /// Encode as an [`Kind::Info`] payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(96 + self.certificate.len());
        v.extend_from_slice(&self.host_id);
        v.extend_from_slice(&self.sm_measurement);
        v.extend_from_slice(&self.enclave_measurement);
        v.extend_from_slice(&self.certificate);
        v
    }
}

/// One host in a [`Directory`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its host id.
    pub host_id: [u8; 32],
    /// Its name in the operator's ledger: its agent's certificate names `NAME.agent.rewire.invalid`.
    pub name: String,
    /// Where its agent listens (`host:port`).
    pub address: String,
}

/// The peer directory the SDS gives each agent ([`Kind::Peers`]):
/// `count u16 ‖ (host_id[32] ‖ name_len u8 ‖ name ‖ addr_len u8 ‖ addr)*`.
/// Names are what the agent's TLS checks a peer's certificate against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory(pub Vec<Peer>);

fn text(p: &[u8], at: &mut usize) -> Result<String> {
    let n = *p.get(*at).ok_or(Error::Truncated)? as usize;
    let s = p.get(*at + 1..*at + 1 + n).ok_or(Error::Truncated)?;
    *at += 1 + n;
    let s = core::str::from_utf8(s).map_err(|_| Error::Decode)?;
    if s.is_empty() {
        return Err(Error::Decode);
    }
    Ok(String::from(s))
}

/// A name an agent may carry: what its certificate's DNS name is built from.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

impl Directory {
    /// Decode a [`Kind::Peers`] payload (strict: caps, valid names, no
    /// duplicate host id, no trailing bytes).
    pub fn decode(p: &[u8]) -> Result<Directory> {
        if p.len() < 2 {
            return Err(Error::Truncated);
        }
        let count = u16::from_be_bytes([p[0], p[1]]) as usize;
        if count > MAX_PEERS {
            return Err(Error::TooLarge);
        }
        let mut at = 2;
        let mut out: Vec<Peer> = Vec::with_capacity(count);
        for _ in 0..count {
            let id = p.get(at..at + 32).ok_or(Error::Truncated)?;
            let mut host_id = [0u8; 32];
            host_id.copy_from_slice(id);
            at += 32;
            let name = text(p, &mut at)?;
            let address = text(p, &mut at)?;
            if !valid_name(&name) {
                return Err(Error::InvalidArgument);
            }
            if out.iter().any(|q| q.host_id == host_id || q.name == name) {
                return Err(Error::Duplicate);
            }
            out.push(Peer {
                host_id,
                name,
                address,
            });
        }
        if at != p.len() {
            return Err(Error::TrailingBytes);
        }
        Ok(Directory(out))
    }

    /// Encode as a [`Kind::Peers`] payload; [`Error::InvalidArgument`] for a
    /// name that is not a DNS label or text over [`MAX_TEXT`] bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        if self.0.len() > MAX_PEERS {
            return Err(Error::TooLarge);
        }
        let mut v = Vec::new();
        v.extend_from_slice(&(self.0.len() as u16).to_be_bytes());
        for p in &self.0 {
            if !valid_name(&p.name) || p.address.is_empty() || p.address.len() > MAX_TEXT {
                return Err(Error::InvalidArgument);
            }
            v.extend_from_slice(&p.host_id);
            v.push(p.name.len() as u8);
            v.extend_from_slice(p.name.as_bytes());
            v.push(p.address.len() as u8);
            v.extend_from_slice(p.address.as_bytes());
        }
        Ok(v)
    }
}

/// An [`Kind::Error`] payload: the code of the [`Error`] that made the
/// sender close, and a short text (never secrets).
pub fn encode_error(code: u16, text: &str) -> Vec<u8> {
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut v = Vec::with_capacity(2 + end);
    v.extend_from_slice(&code.to_be_bytes());
    v.extend_from_slice(&text.as_bytes()[..end]);
    v
}

/// Decode an [`Kind::Error`] payload.
pub fn decode_error(p: &[u8]) -> Result<(u16, String)> {
    if p.len() < 2 {
        return Err(Error::Truncated);
    }
    if p.len() > 2 + MAX_TEXT {
        return Err(Error::TooLarge);
    }
    let s = core::str::from_utf8(&p[2..]).map_err(|_| Error::Decode)?;
    Ok((u16::from_be_bytes([p[0], p[1]]), String::from(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;

    fn all(d: &mut Decoder) -> Result<Vec<Frame>> {
        let mut v = Vec::new();
        while let Some(f) = d.next()? {
            v.push(f);
        }
        Ok(v)
    }

    #[test]
    fn frames_round_trip_byte_by_byte() {
        let mut wire = encode(Kind::ToMonitor, b"abc").unwrap(); // safe: test
        wire.extend(encode(Kind::Hello, b"").unwrap()); // safe: test
        let mut d = Decoder::new();
        let mut got = Vec::new();
        // The bytes of the frame in progress are counted until it is whole.
        for (i, b) in wire.iter().enumerate() {
            d.push(core::slice::from_ref(b)).unwrap(); // safe: test
            got.extend(all(&mut d).unwrap()); // safe: test
            let expect = if i < 10 { (i + 1) % 11 } else { i - 10 };
            assert_eq!(
                d.buffered(),
                if i == 10 || i == 18 { 0 } else { expect },
                "after byte {i}"
            );
        }
        assert_eq!(
            got,
            vec![
                Frame {
                    kind: Kind::ToMonitor,
                    payload: b"abc".to_vec()
                },
                Frame {
                    kind: Kind::Hello,
                    payload: vec![]
                }
            ]
        );
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn every_kind_round_trips_and_its_number_is_fixed() {
        let all = [
            (Kind::Hello, 1),
            (Kind::Info, 2),
            (Kind::ToMonitor, 3),
            (Kind::FromMonitor, 4),
            (Kind::Command, 5),
            (Kind::Report, 6),
            (Kind::Peers, 7),
            (Kind::Peer, 8),
            (Kind::Error, 9),
            (Kind::Stats, 10),
        ];
        for (k, n) in all {
            let f = encode(k, &[n]).unwrap(); // safe: test
            assert_eq!(f[3], n, "{k:?} is {n} on the wire");
            let mut d = Decoder::new();
            d.push(&f).unwrap(); // safe: test
            assert_eq!(
                d.next(),
                Ok(Some(Frame {
                    kind: k,
                    payload: vec![n]
                }))
            );
        }
    }

    #[test]
    fn oversized_frame_is_refused_from_its_header() {
        let mut h = b"RL\x01\x03".to_vec();
        h.extend_from_slice(&((MAX_PAYLOAD as u32) + 1).to_be_bytes());
        let mut d = Decoder::new();
        d.push(&h).unwrap(); // safe: test
        assert_eq!(d.next(), Err(Error::TooLarge));
        // and stays failed
        assert_eq!(d.push(b"RL"), Err(Error::TooLarge));
        assert_eq!(
            encode(Kind::Peer, &vec![0; MAX_PAYLOAD + 1]),
            Err(Error::TooLarge)
        );
        assert!(encode(Kind::Peer, &vec![0; MAX_PAYLOAD]).is_ok());
        let mut h = b"RL\x01\x03".to_vec();
        h.extend_from_slice(&(MAX_PAYLOAD as u32).to_be_bytes());
        let mut d = Decoder::new();
        d.push(&h).unwrap(); // safe: test
        assert_eq!(d.next(), Ok(None));
    }

    #[test]
    fn garbage_version_and_type_are_typed_errors() {
        for (bytes, e) in [
            (&b"GET / HTTP/1.1\r\n"[..], Error::Decode),
            (&b"R"[..], Error::Decode),
            (&b"RL\x02\x01\0\0\0\0"[..], Error::UnsupportedVersion),
            (&b"RL\x01\x00\0\0\0\0"[..], Error::WrongMessageType),
            (&b"RL\x01\x0b\0\0\0\0"[..], Error::WrongMessageType),
        ] {
            let mut d = Decoder::new();
            d.push(bytes).unwrap(); // safe: test
            if bytes == b"R" {
                // a lone first byte that is not 'R' fails at once; 'R' waits
                assert_eq!(d.next(), Ok(None));
                d.push(b"X").unwrap(); // safe: test
            }
            assert_eq!(d.next(), Err(e), "{bytes:?}");
        }
    }

    #[test]
    fn push_is_bounded_even_without_next() {
        let mut d = Decoder::new();
        let chunk = vec![0u8; HEADER + MAX_PAYLOAD];
        d.push(&chunk).unwrap(); // safe: test
        d.push(&chunk).unwrap(); // safe: test
        assert_eq!(d.push(b"x"), Err(Error::TooLarge));
    }

    #[test]
    fn directory_is_strict() {
        let dir = Directory(vec![
            Peer {
                host_id: [1; 32],
                name: "host-A".into(),
                address: "127.0.0.1:7401".into(),
            },
            Peer {
                host_id: [2; 32],
                name: "host-B".into(),
                address: "[::1]:7402".into(),
            },
        ]);
        let p = dir.encode().unwrap(); // safe: test
        assert_eq!(Directory::decode(&p), Ok(dir.clone()));
        let mut t = p.clone();
        t.push(0);
        assert_eq!(Directory::decode(&t), Err(Error::TrailingBytes));
        assert_eq!(Directory::decode(&p[..p.len() - 1]), Err(Error::Truncated));
        let dup = Directory(vec![dir.0[0].clone(), dir.0[0].clone()])
            .encode()
            .unwrap(); // safe: test
        assert_eq!(Directory::decode(&dup), Err(Error::Duplicate));
        for bad in ["", "a.b", "-a", "a b", "é"] {
            let d = Directory(vec![Peer {
                host_id: [1; 32],
                name: bad.into(),
                address: "x:1".into(),
            }]);
            assert_eq!(d.encode(), Err(Error::InvalidArgument), "{bad}");
        }
        let mut big = vec![0xff, 0xff];
        big.extend_from_slice(&[0; 64]);
        assert_eq!(Directory::decode(&big), Err(Error::TooLarge));
    }

    #[test]
    fn directory_bounds_are_exact() {
        assert_eq!(Directory::decode(&[]), Err(Error::Truncated));
        assert_eq!(Directory::decode(&[0]), Err(Error::Truncated));
        assert_eq!(Directory::decode(&[0, 0]), Ok(Directory::default()));
        let peer = |i: usize| Peer {
            host_id: [i as u8; 32],
            name: format!("h{i}"),
            address: "a:1".into(),
        };
        // MAX_PEERS peers is a directory; one more is not. (Host ids repeat past 255: give the
        // last one a distinct id.)
        let mut full = Directory((0..MAX_PEERS).map(peer).collect());
        full.0[MAX_PEERS - 1].host_id = [0xee; 32];
        full.0[MAX_PEERS - 1].host_id[0] = 1;
        let p = full.encode().unwrap(); // safe: test
        assert_eq!(Directory::decode(&p), Ok(full.clone()));
        full.0.push(Peer {
            host_id: [0xfe; 32],
            name: "one-more".into(),
            address: "a:1".into(),
        });
        assert_eq!(full.encode(), Err(Error::TooLarge));
        // Same name under another id is a duplicate too.
        let mut a = peer(1);
        let b = Peer {
            host_id: [9; 32],
            ..peer(1)
        };
        let two = Directory(vec![a.clone(), b]).encode().unwrap(); // safe: test
        assert_eq!(Directory::decode(&two), Err(Error::Duplicate));
        // An address: not empty, at most MAX_TEXT bytes.
        a.address = "x".repeat(MAX_TEXT);
        assert!(Directory(vec![a.clone()]).encode().is_ok());
        a.address.push('x');
        assert_eq!(
            Directory(vec![a.clone()]).encode(),
            Err(Error::InvalidArgument)
        );
        a.address.clear();
        assert_eq!(Directory(vec![a]).encode(), Err(Error::InvalidArgument));
    }

    #[test]
    fn info_and_error_payloads() {
        let i = Info {
            host_id: [1; 32],
            sm_measurement: [2; 32],
            enclave_measurement: [3; 32],
            certificate: vec![9; 5],
        };
        assert_eq!(Info::decode(&i.encode()), Ok(i));
        assert_eq!(Info::decode(&[0; 95]), Err(Error::Decode));
        assert_eq!(Info::decode(&[0; 96]), Err(Error::Truncated));
        assert_eq!(
            Info::decode(&vec![0; 97 + crate::wire::MAX_SIGNED]),
            Err(Error::TooLarge)
        );
        // a certificate of exactly the cap is taken
        assert!(Info::decode(&vec![0; 96 + crate::wire::MAX_SIGNED]).is_ok());
        let e = encode_error(101, &"é".repeat(200));
        let (c, s) = decode_error(&e).unwrap(); // safe: test
        assert_eq!(c, 101);
        assert!(s.len() <= MAX_TEXT && s.chars().all(|c| c == 'é'));
        assert_eq!(decode_error(&[0]), Err(Error::Truncated));
        assert_eq!(decode_error(&[0, 7]), Ok((7, String::new())));
        let mut e = vec![0, 1];
        e.extend_from_slice(&[b'a'; MAX_TEXT]);
        assert_eq!(
            decode_error(&e).map(|(c, t)| (c, t.len())),
            Ok((1, MAX_TEXT))
        );
        e.push(b'a');
        assert_eq!(decode_error(&e), Err(Error::TooLarge));
        assert_eq!(
            decode_error(&e[..3 + MAX_TEXT / 2]).map(|(_, t)| t.len()),
            Ok(1 + MAX_TEXT / 2)
        );
        assert_eq!(decode_error(&[0, 1, 0xff]), Err(Error::Decode));
    }
}
