//! Strict deterministic CBOR for librewire's payloads.
//!
//! Every payload is a CBOR array `[type, version, field...]` of a fixed length:
//! arrays have no keys, so there are no duplicate keys to reject and no key order
//! to canonicalise. Decoding is strict: a size cap before parsing, a small
//! nesting limit, no trailing bytes, and the input must be byte-for-byte the
//! deterministic encoding of what it decodes to (RFC 8949 §4.2: shortest
//! integer forms, definite lengths), checked by re-encoding.

use alloc::vec::Vec;

use ciborium::value::{Integer, Value};

use crate::error::{Error, Result};

/// Format version of every payload defined by this crate.
pub const VERSION: u64 = 1;

/// Nesting limit for payloads: the deepest schema is an array of arrays.
const MAX_DEPTH: usize = 8;

/// Type tags: the first element of every payload array. A signature over one
/// kind of object can never be mistaken for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MsgType {
    MigrationRequest = 1,
    HostEndorsement = 2,
    EnclavePolicy = 3,
    SmCertificate = 4,
    Ready = 6,
    Release = 7,
    Abort = 8,
    ActiveAck = 9,
    DroppedAck = 10,
    Order = 11,
    Offer = 20,
    Accept = 21,
    Chunk = 22,
    End = 23,
    Query = 24,
    Journal = 25,
    SdsState = 26,
    Refuse = 27,
    DeviceCertificate = 28,
}

/// A data item's head in its shortest form (RFC 8949 §4.2.1): major type
/// `major` with argument `n`, written at the start of `out` (which has room
/// for 9 bytes). Returns its length.
pub(crate) fn head(major: u8, n: u64, out: &mut [u8]) -> usize {
    let m = major << 5;
    let (first, rest): (u8, &[u8]) = match n {
        0..=23 => (m | n as u8, &[]),
        24..=0xff => (m | 24, &n.to_be_bytes()[7..]),
        0x100..=0xffff => (m | 25, &n.to_be_bytes()[6..]),
        0x1_0000..=0xffff_ffff => (m | 26, &n.to_be_bytes()[4..]),
        _ => (m | 27, &n.to_be_bytes()[..]),
    };
    out[0] = first;
    out[1..1 + rest.len()].copy_from_slice(rest);
    1 + rest.len()
}

/// Read a head of major type `major` in its shortest form from the start of
/// `bytes`: its argument and the bytes after it. `None` for another major
/// type, an indefinite length, a longer form than needed, or too few bytes.
pub(crate) fn read_head(major: u8, bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (&first, rest) = bytes.split_first()?;
    if first >> 5 != major {
        return None;
    }
    let (width, min) = match first & 0x1f {
        n @ 0..=23 => return Some((n as u64, rest)),
        24 => (1, 24),
        25 => (2, 0x100),
        26 => (4, 0x1_0000),
        27 => (8, 0x1_0000_0000),
        _ => return None,
    };
    let arg = rest.get(..width)?;
    let mut be = [0u8; 8];
    be[8 - width..].copy_from_slice(arg);
    let n = u64::from_be_bytes(be);
    if n < min {
        return None;
    }
    Some((n, &rest[width..]))
}

/// Encode a value deterministically.
pub(crate) fn encode(value: &Value) -> Result<Vec<u8>> {
    // Sized up front: growing would free copies of the bytes unwiped.
    let mut out = Vec::with_capacity(bound(value));
    ciborium::ser::into_writer(value, &mut out).map_err(|_| Error::Decode)?;
    Ok(out)
}

/// An upper bound of a value's encoded length (a head is at most 9 bytes).
fn bound(v: &Value) -> usize {
    9 + match v {
        Value::Bytes(b) => b.len(),
        Value::Text(t) => t.len(),
        Value::Array(items) => items.iter().map(bound).sum(),
        Value::Map(entries) => entries.iter().map(|(k, v)| bound(k) + bound(v)).sum(),
        Value::Tag(_, inner) => bound(inner),
        _ => 0,
    }
}

/// Decode one value, strictly.
pub(crate) fn decode(bytes: &[u8], cap: usize) -> Result<Value> {
    if bytes.len() > cap {
        return Err(Error::TooLarge);
    }
    let mut rest = bytes;
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_DEPTH)
        .map_err(|_| Error::Decode)?;
    if !rest.is_empty() {
        wipe(value);
        return Err(Error::TrailingBytes);
    }
    let mut again = encode(&value)?;
    let canonical = again == bytes;
    crate::crypto::wipe_vec(&mut again);
    if !canonical {
        wipe(value);
        return Err(Error::NonCanonical);
    }
    Ok(value)
}

/// Builder for a payload array.
pub(crate) struct Builder(Vec<Value>);

impl Builder {
    pub fn new(ty: MsgType) -> Self {
        let mut v = Vec::with_capacity(12);
        v.push(Value::Integer((ty as u8).into()));
        v.push(Value::Integer(VERSION.into()));
        Builder(v)
    }
    pub fn u64(mut self, x: u64) -> Self {
        self.0.push(Value::Integer(x.into()));
        self
    }
    pub fn bytes(mut self, b: &[u8]) -> Self {
        self.0.push(Value::Bytes(b.to_vec()));
        self
    }
    pub fn value(mut self, v: Value) -> Self {
        self.0.push(v);
        self
    }
    pub fn build(mut self) -> Value {
        Value::Array(core::mem::take(&mut self.0))
    }
    pub fn encode(self) -> Result<Vec<u8>> {
        let v = self.build();
        let r = encode(&v);
        wipe(v);
        r
    }
}

/// Byte strings may hold enclave state (chunks): wiped when dropped.
impl Drop for Builder {
    fn drop(&mut self) {
        for v in self.0.drain(..) {
            wipe(v);
        }
    }
}

/// Zeroize every byte string in a value, then drop it.
pub(crate) fn wipe(v: Value) {
    match v {
        Value::Bytes(mut b) => crate::crypto::wipe_vec(&mut b),
        Value::Array(items) => items.into_iter().for_each(wipe),
        Value::Map(entries) => entries.into_iter().for_each(|(k, v)| {
            wipe(k);
            wipe(v)
        }),
        Value::Tag(_, inner) => wipe(*inner),
        _ => {}
    }
}

/// Reader over a payload array whose type, version and length were checked.
pub(crate) struct Fields(alloc::vec::IntoIter<Value>);

/// Fields not taken are wiped, like those of a [`Builder`].
impl Drop for Fields {
    fn drop(&mut self) {
        self.0.by_ref().for_each(wipe);
    }
}

impl Fields {
    /// Check `[ty, VERSION, ...]` with exactly `n` fields after the header.
    pub fn open(value: Value, ty: MsgType, n: usize) -> Result<Self> {
        let Value::Array(items) = value else {
            wipe(value);
            return Err(Error::Decode);
        };
        let mut f = Fields(items.into_iter());
        let it = &mut f.0;
        let got_ty = it.next().ok_or(Error::Decode)?;
        if as_u64(got_ty)? != ty as u64 {
            return Err(Error::WrongMessageType);
        }
        let ver = it.next().ok_or(Error::Decode)?;
        if as_u64(ver)? != VERSION {
            return Err(Error::UnsupportedVersion);
        }
        if it.len() != n {
            return Err(Error::Decode);
        }
        Ok(f)
    }

    fn next(&mut self) -> Result<Value> {
        self.0.next().ok_or(Error::Decode)
    }
    pub fn u64(&mut self) -> Result<u64> {
        as_u64(self.next()?)
    }
    pub fn bytes(&mut self, max: usize) -> Result<Vec<u8>> {
        as_bytes(self.next()?, max)
    }
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        as_array(self.next()?)
    }
    pub fn list(&mut self, max: usize) -> Result<Vec<Value>> {
        match self.next()? {
            Value::Array(v) if v.len() <= max => Ok(v),
            Value::Array(_) => Err(Error::TooLarge),
            _ => Err(Error::Decode),
        }
    }
}

/// Peek at the type tag of an encoded payload without decoding the rest.
pub(crate) fn peek_type(value: &Value) -> Option<u64> {
    match value {
        Value::Array(items) => items.first().cloned().and_then(|v| as_u64(v).ok()),
        _ => None,
    }
}

pub(crate) fn as_u64(v: Value) -> Result<u64> {
    match v {
        Value::Integer(i) => u64::try_from(i).map_err(|_| Error::Decode),
        _ => Err(Error::Decode),
    }
}

pub(crate) fn as_bytes(v: Value, max: usize) -> Result<Vec<u8>> {
    match v {
        Value::Bytes(b) if b.len() <= max => Ok(b),
        Value::Bytes(mut b) => {
            crate::crypto::wipe_vec(&mut b);
            Err(Error::TooLarge)
        }
        v => {
            wipe(v);
            Err(Error::Decode)
        }
    }
}

pub(crate) fn as_array<const N: usize>(v: Value) -> Result<[u8; N]> {
    match v {
        Value::Bytes(b) => b.as_slice().try_into().map_err(|_| Error::Decode),
        _ => Err(Error::Decode),
    }
}

pub(crate) fn int(x: u64) -> Value {
    Value::Integer(Integer::from(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `encode` sizes its buffer with `bound` so that it never grows (a
    /// grown Vec frees the old copy unwiped): the bound is exact arithmetic
    /// over every kind of value, and the buffer keeps the capacity asked for.
    #[test]
    fn the_encoding_bound_covers_every_kind_and_the_buffer_never_grows() {
        let b = |n: usize| Value::Bytes(alloc::vec![7; n]);
        let t = |s: &str| Value::Text(s.into());
        let cases = [
            (b(3), 9 + 3),
            (t("hello"), 9 + 5),
            (Value::Integer(70000.into()), 9),
            (Value::Array(alloc::vec![b(3), t("ab")]), 9 + 12 + 11),
            (
                Value::Map(alloc::vec![(t("k"), b(40)), (b(1), b(2))]),
                9 + (10 + 49) + (10 + 11),
            ),
            (Value::Tag(24, alloc::boxed::Box::new(b(300))), 9 + 309),
            (
                Value::Array(alloc::vec![Value::Array(alloc::vec![b(1000)])]),
                9 + 9 + 1009,
            ),
        ];
        for (v, want) in cases {
            assert_eq!(bound(&v), want, "{v:?}");
            let out = encode(&v).unwrap(); // safe: test
            assert!(out.len() <= want);
            assert_eq!(out.capacity(), want, "grown: {v:?}");
        }
    }

    #[test]
    fn round_trip_and_strictness() {
        let bytes = Builder::new(MsgType::Query)
            .u64(7)
            .bytes(b"ab")
            .encode()
            .unwrap();
        let v = decode(&bytes, 64).unwrap();
        let mut f = Fields::open(v, MsgType::Query, 2).unwrap();
        assert_eq!(f.u64().unwrap(), 7);
        assert_eq!(f.bytes(2).unwrap(), b"ab");

        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(decode(&trailing, 64), Err(Error::TrailingBytes));
        assert_eq!(decode(&bytes, 3), Err(Error::TooLarge));
        // 7 encoded in a non-shortest form (0x18 0x07) is refused.
        let mut long_int = bytes.clone();
        let pos = long_int.iter().position(|&b| b == 0x07).unwrap();
        long_int.splice(pos..=pos, [0x18, 0x07]);
        assert_eq!(decode(&long_int, 64), Err(Error::NonCanonical));
        // Indefinite-length array is refused.
        let indefinite = [0x9f, 0x18, 24, 0x01, 0xff];
        assert_eq!(decode(&indefinite, 64), Err(Error::NonCanonical));
        let v = decode(&bytes, 64).unwrap();
        assert!(matches!(
            Fields::open(v, MsgType::Chunk, 2),
            Err(Error::WrongMessageType)
        ));
        let v = decode(&bytes, 64).unwrap();
        assert!(matches!(
            Fields::open(v, MsgType::Query, 3),
            Err(Error::Decode)
        ));
        let bad_ver = Builder(alloc::vec![int(MsgType::Query as u64), int(2)])
            .encode()
            .unwrap();
        let v = decode(&bad_ver, 64).unwrap();
        assert!(matches!(
            Fields::open(v, MsgType::Query, 0),
            Err(Error::UnsupportedVersion)
        ));
    }

    #[test]
    fn size_caps_are_exact() {
        let bytes = Builder::new(MsgType::Query)
            .bytes(b"abcd")
            .value(Value::Array(alloc::vec![int(1), int(2), int(3)]))
            .encode()
            .unwrap();
        // A cap equal to the length is enough; one less is not.
        assert!(decode(&bytes, bytes.len()).is_ok());
        assert_eq!(decode(&bytes, bytes.len() - 1), Err(Error::TooLarge));
        let fields = || Fields::open(decode(&bytes, 64).unwrap(), MsgType::Query, 2).unwrap();
        // Byte strings: at the cap accepted, over it TooLarge (not Decode).
        assert_eq!(fields().bytes(4).unwrap(), b"abcd");
        assert_eq!(fields().bytes(3), Err(Error::TooLarge));
        // Lists: the same.
        let mut f = fields();
        f.bytes(4).unwrap();
        assert_eq!(f.list(3).unwrap().len(), 3);
        let mut f = fields();
        f.bytes(4).unwrap();
        assert_eq!(f.list(2), Err(Error::TooLarge));
        // The wrong kind of item is a decode error.
        assert_eq!(fields().list(8), Err(Error::Decode));
        assert_eq!(as_bytes(int(1), 8), Err(Error::Decode));
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let mut deep = alloc::vec![0x81u8; 10_000];
        deep.push(0x00);
        assert!(decode(&deep, 1 << 20).is_err());
    }
}
