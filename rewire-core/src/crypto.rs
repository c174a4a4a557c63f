//! Cryptographic primitives, all through ring: Ed25519, SHA-256, HKDF-SHA256,
//! ChaCha20-Poly1305. Secrets live in types that zeroize on drop and print as
//! `[redacted]`; ring's key objects are wrapped in [`Wiped`].

use alloc::vec::Vec;
use core::fmt;

use ring::signature::{self, Ed25519KeyPair, KeyPair};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// A 32-byte secret (device secret, key seed, sealing key). Zeroized on drop.
#[derive(Clone)]
pub struct Secret(Zeroizing<[u8; 32]>);

impl Secret {
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Secret(Zeroizing::new(b))
    }
    /// Copy 32 bytes straight into zeroizing storage (no intermediate array,
    /// as `from_bytes` needs); `None` if `b` is not 32 bytes long.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        let mut s = Secret(Zeroizing::new([0; 32]));
        if b.len() != 32 {
            return None;
        }
        s.0.copy_from_slice(b);
        Some(s)
    }
    /// The secret bytes. Callers must not copy them into non-zeroizing storage.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Wipe a byte vector's whole allocation (also the capacity past its
/// length) and leave it empty. zeroize's `Vec` impl stores one volatile byte
/// at a time, which took about a fifth of a large migration; its slice path
/// is one `memset` followed by an optimisation barrier the compiler cannot
/// see through (an `asm!` block given the buffer), on every target librewire
/// builds for.
pub fn wipe_vec(v: &mut Vec<u8>) {
    v.clear();
    v.spare_capacity_mut().zeroize();
}

/// Bytes that may be secret (enclave state, plaintext): the whole allocation
/// is wiped with [`wipe_vec`] when dropped, and `Debug` prints no content.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(v: Vec<u8>) -> Self {
        SecretBytes(v)
    }
    /// The bytes, no longer wiped on drop: the caller takes over the duty.
    pub fn into_inner(mut self) -> Vec<u8> {
        core::mem::take(&mut self.0)
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        SecretBytes(v)
    }
}

impl core::ops::Deref for SecretBytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl core::ops::DerefMut for SecretBytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Zeroize for SecretBytes {
    fn zeroize(&mut self) {
        wipe_vec(&mut self.0);
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        wipe_vec(&mut self.0);
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([redacted; {}])", self.0.len())
    }
}

/// ring's key objects (Ed25519 key pairs, AEAD keys, HKDF pseudo-random
/// keys) keep their key material in plain memory and have no zeroizing drop.
/// A `Wiped` key has a blank key (one made from all-zero key material)
/// written over it in place when it is dropped.
pub(crate) struct Wiped<T: Blank>(T);

/// A ring key type that can be wiped: it has no drop glue, and a blank value.
pub(crate) trait Blank: Sized {
    fn blank() -> Self;
}

impl<T: Blank> Wiped<T> {
    pub fn new(key: T) -> Self {
        Wiped(key)
    }
}

impl<T: Blank> core::ops::Deref for Wiped<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Blank> Drop for Wiped<T> {
    fn drop(&mut self) {
        // With drop glue, the old value's own drop could run first and free
        // memory that the blank does not overwrite.
        const {
            assert!(
                !core::mem::needs_drop::<T>(),
                "a wiped key must have no drop glue"
            )
        };
        // Assigning writes the blank over the key in place (no unsafe code in
        // rewire-core); `black_box` keeps the store although the memory is
        // freed next.
        self.0 = T::blank();
        core::hint::black_box(&mut self.0);
    }
}

impl Blank for Ed25519KeyPair {
    fn blank() -> Self {
        // ring refuses a seed only if it is not 32 bytes long.
        Ed25519KeyPair::from_seed_unchecked(&[0; 32]).expect("a 32-byte seed") // safe: see above
    }
}

impl Blank for ring::aead::LessSafeKey {
    fn blank() -> Self {
        // ring refuses a key only if its length is not the algorithm's.
        let k = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &[0; 32])
            .expect("a 32-byte key"); // safe: see above
        ring::aead::LessSafeKey::new(k)
    }
}

impl Blank for ring::hkdf::Prk {
    fn blank() -> Self {
        ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &[]).extract(&[])
    }
}

/// SHA-256 digest or measurement.
pub type Digest = [u8; 32];

pub fn sha256(data: &[u8]) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Incremental SHA-256.
#[derive(Clone)]
pub struct Hasher(ring::digest::Context);

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hasher")
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher(ring::digest::Context::new(&ring::digest::SHA256))
    }
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data)
    }
    pub fn finish(self) -> Digest {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        out
    }
}

/// HKDF-SHA256 (RFC 5869) of the whole input key material into 32 bytes.
pub fn hkdf(ikm: &[u8], salt: &[u8], info: &[&[u8]]) -> Result<Secret> {
    struct Len32;
    impl ring::hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let prk = Wiped::new(ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(ikm));
    let okm = prk.expand(info, Len32).map_err(|_| Error::Crypto)?;
    let mut out = Zeroizing::new([0u8; 32]);
    okm.fill(&mut out[..]).map_err(|_| Error::Crypto)?;
    Ok(Secret(out))
}

/// Whether random output is plainly broken: every byte the same (a zeroed
/// or stuck source). Used on every draw (crate::rng, and on bare metal on
/// TLS randoms too).
pub fn random_is_stuck(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| Some(&b) == bytes.first())
}

/// A salt bound to what it seals: HKDF of the random salt and a digest of
/// the context (the plaintext, or what identifies it). Two blobs can then
/// share a key and nonces only if they seal the same thing, whatever the
/// random source did (a source that repeats after a reset, a start that
/// failed after drawing).
pub fn bind_salt(random: &[u8; 32], context: &[u8]) -> Result<[u8; 32]> {
    let s = hkdf(random, b"rewire/salt/v1", &[&sha256(context)])?;
    Ok(*s.expose())
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(")?;
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the SPKI is this plus the 32-byte key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl PublicKey {
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<()> {
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.0)
            .verify(msg, sig)
            .map_err(|_| Error::BadSignature)
    }

    /// The key as a DER SubjectPublicKeyInfo, the form TLS raw public keys take (RFC 7250).
    pub fn to_spki(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(44);
        v.extend_from_slice(&ED25519_SPKI_PREFIX);
        v.extend_from_slice(&self.0);
        v
    }

    /// Parse an Ed25519 SubjectPublicKeyInfo; anything else is refused.
    pub fn from_spki(spki: &[u8]) -> Result<Self> {
        if spki.len() != 44 || spki[..12] != ED25519_SPKI_PREFIX {
            return Err(Error::PeerMismatch);
        }
        let mut k = [0u8; 32];
        k.copy_from_slice(&spki[12..]);
        Ok(PublicKey(k))
    }
}

/// An Ed25519 signing key derived from a 32-byte seed.
pub struct SigningKey {
    seed: Secret,
    pair: Wiped<Ed25519KeyPair>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({:?})", self.public())
    }
}

impl Clone for SigningKey {
    fn clone(&self) -> Self {
        // from_seed accepted this seed when self was built and is deterministic.
        SigningKey::from_seed(self.seed.clone()).expect("seed valid") // safe: see above
    }
}

impl SigningKey {
    pub fn from_seed(seed: Secret) -> Result<Self> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed.expose()).map_err(|_| Error::Crypto)?;
        Ok(SigningKey {
            seed,
            pair: Wiped::new(pair),
        })
    }
    pub fn public(&self) -> PublicKey {
        let mut k = [0u8; 32];
        k.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(k)
    }
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        self.pair.sign(msg).as_ref().to_vec()
    }
    pub fn seed(&self) -> &Secret {
        &self.seed
    }
}

/// AEAD: ChaCha20-Poly1305 (see docs/protocol.md for the choice).
pub(crate) struct Aead(Wiped<ring::aead::LessSafeKey>);

pub(crate) const TAG_LEN: usize = 16;

impl Aead {
    pub fn new(key: &Secret) -> Result<Self> {
        let k = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, key.expose())
            .map_err(|_| Error::Crypto)?;
        Ok(Aead(Wiped::new(ring::aead::LessSafeKey::new(k))))
    }

    /// Encrypt `buf` in place and append the tag.
    pub fn seal(&self, nonce: [u8; 12], aad: &[u8], buf: &mut Vec<u8>) -> Result<()> {
        let nonce = ring::aead::Nonce::assume_unique_for_key(nonce);
        self.0
            .seal_in_place_append_tag(nonce, ring::aead::Aad::from(aad), buf)
            .map_err(|_| Error::Crypto)
    }

    /// Decrypt `buf` (ciphertext + tag) in place; on success `buf` holds the plaintext.
    pub fn open(&self, nonce: [u8; 12], aad: &[u8], buf: &mut Vec<u8>) -> Result<()> {
        let nonce = ring::aead::Nonce::assume_unique_for_key(nonce);
        match self
            .0
            .open_in_place(nonce, ring::aead::Aad::from(aad), buf.as_mut_slice())
        {
            Ok(plain) => {
                let n = plain.len();
                buf.truncate(n);
                Ok(())
            }
            Err(_) => {
                wipe_vec(buf);
                Err(Error::Unseal)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secret bytes print their length only; `into_inner` hands them over
    /// and `wipe_vec` empties a vector.
    #[test]
    fn secret_bytes_print_no_content() {
        let b = SecretBytes::new(alloc::vec![0x41, 0x42, 0x43]);
        assert_eq!(alloc::format!("{b:?}"), "SecretBytes([redacted; 3])");
        assert_eq!(b.into_inner(), alloc::vec![0x41, 0x42, 0x43]);
        let mut v = alloc::vec![1u8; 40];
        wipe_vec(&mut v);
        assert!(v.is_empty() && v.capacity() >= 40);
        let mut z = SecretBytes::new(alloc::vec![1u8; 5]);
        z.zeroize();
        assert!(z.is_empty());
    }

    #[test]
    fn sign_verify_and_spki() {
        let k = SigningKey::from_seed(Secret::from_bytes([7; 32])).unwrap();
        let sig = k.sign(b"hello");
        k.public().verify(b"hello", &sig).unwrap();
        assert_eq!(k.public().verify(b"hellp", &sig), Err(Error::BadSignature));
        let spki = k.public().to_spki();
        assert_eq!(PublicKey::from_spki(&spki).unwrap(), k.public());
        assert!(PublicKey::from_spki(&spki[1..]).is_err());
        // Ring's own key pair from the same seed is the same key (the
        // wrapper changes nothing but the drop).
        let p = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap(); // safe: test
        assert_eq!(p.public_key().as_ref(), &k.public().0);
        assert_eq!(k.sign(b"m"), p.sign(b"m").as_ref());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::from_bytes([0xab; 32]);
        let text = alloc::format!("{s:?}");
        assert_eq!(text, "Secret([redacted])");
        let k = SigningKey::from_seed(Secret::from_bytes([0xab; 32])).unwrap(); // safe: test
        let p = k.public();
        let text = alloc::format!("{k:?}");
        assert_eq!(text, alloc::format!("SigningKey({p:?})"));
        assert_eq!(
            alloc::format!("{p:?}"),
            alloc::format!(
                "PublicKey({:02x}{:02x}{:02x}{:02x}{:02x}{:02x}…)",
                p.0[0],
                p.0[1],
                p.0[2],
                p.0[3],
                p.0[4],
                p.0[5]
            )
        );
        assert_eq!(alloc::format!("{:?}", Hasher::default()), "Hasher");
    }

    #[test]
    fn secret_from_slice_takes_exactly_32_bytes() {
        assert_eq!(Secret::from_slice(&[5; 32]).unwrap().expose(), &[5; 32]); // safe: test
        assert!(Secret::from_slice(&[5; 31]).is_none());
        assert!(Secret::from_slice(&[5; 33]).is_none());
    }

    #[test]
    fn spki_must_be_exactly_an_ed25519_key() {
        let spki = SigningKey::from_seed(Secret::from_bytes([7; 32]))
            .unwrap() // safe: test
            .public()
            .to_spki();
        // Right length, wrong prefix (an X25519 key's OID).
        let mut other = spki.clone();
        other[9] = 0x6e;
        assert_eq!(PublicKey::from_spki(&other), Err(Error::PeerMismatch));
        // Right prefix, one byte too many or too few.
        let mut long = spki.clone();
        long.push(0);
        assert_eq!(PublicKey::from_spki(&long), Err(Error::PeerMismatch));
        assert_eq!(PublicKey::from_spki(&spki[..43]), Err(Error::PeerMismatch));
        assert_eq!(PublicKey::from_spki(&spki[..5]), Err(Error::PeerMismatch));
    }

    #[test]
    fn hkdf_uses_the_whole_secret() {
        let mut a = [1u8; 64];
        let k1 = hkdf(&a, b"s", &[b"i"]).unwrap();
        a[63] = 2; // differs only in the last byte
        let k2 = hkdf(&a, b"s", &[b"i"]).unwrap();
        assert_ne!(k1.expose(), k2.expose());
    }

    #[test]
    fn aead_round_trip_and_tamper() {
        let a = Aead::new(&Secret::from_bytes([3; 32])).unwrap();
        let mut buf = b"state".to_vec();
        a.seal([0; 12], b"aad", &mut buf).unwrap();
        let mut t = buf.clone();
        t[0] ^= 1;
        assert_eq!(a.open([0; 12], b"aad", &mut t), Err(Error::Unseal));
        a.open([0; 12], b"aad", &mut buf).unwrap();
        assert_eq!(buf, b"state");
    }
}
