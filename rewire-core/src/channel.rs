//! The attested channel: TLS 1.3 between two SMs through rustls 0.23's
//! unbuffered (sans-IO) API, mutual authentication with raw public keys
//! (RFC 7250), one group (X25519), no resumption, no early data. The suite is
//! TLS13_CHACHA20_POLY1305_SHA256, or TLS13_AES_256_GCM_SHA384 when both ends
//! have AES instructions ([`Cipher`]; the `aes-gcm` feature).
//!
//! Each side's TLS key *is* its SM key. During the handshake each side only
//! proves possession of its key; right after it, the SMs exchange their
//! device-signed [`crate::wire::SmCertificate`]s (OFFER / ACCEPT) and the
//! monitor checks that the certified SM key equals [`Channel::peer_key`] and
//! that the device key is the one the SDS endorsed for the host the request
//! names. Nothing secret is sent before that check. The evidence stays out of
//! the handshake, so handshake messages stay small (cf. MigTD's issue with
//! evidence in X.509 extensions exceeding rustls' 64 KiB limit).
//!
//! Application data is framed as `u32 big-endian length ‖ message`.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use core::fmt;
use zeroize::Zeroize;

use crate::crypto::{wipe_vec, SecretBytes};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{AlwaysResolvesClientRawPublicKeys, UnbufferedClientConnection};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{AlwaysResolvesServerRawPublicKeys, UnbufferedServerConnection};
use rustls::sign::CertifiedKey;
use rustls::time_provider::TimeProvider;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::crypto::{PublicKey, SigningKey};
use crate::error::{Error, Result};
use crate::wire::MAX_MESSAGE;

/// Cap on buffered, not yet processed TLS bytes from the peer.
const MAX_INCOMING: usize = 64 * 1024 + 1024;
/// A frame is `u32 big-endian length ‖ message`.
pub const FRAME_HEAD: usize = 4;
/// Name used for SNI; identities come from raw public keys, not names.
const SERVER_NAME: &str = "sm.rewire.invalid";

/// The AEAD a channel's records use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    /// TLS13_CHACHA20_POLY1305_SHA256: constant-time in plain integer code,
    /// the fast choice on CPUs without AES instructions (RISC-V without Zkne).
    ChaCha20Poly1305,
    /// TLS13_AES_256_GCM_SHA384: about three times faster where the CPU has
    /// AES and carry-less multiply instructions (x86 AES-NI, Armv8 AES).
    Aes256Gcm,
}

impl Cipher {
    /// AES-256-GCM where this CPU has AES and carry-less multiply
    /// instructions and the `aes-gcm` feature is built; ChaCha20-Poly1305
    /// elsewhere (bare metal: the port decides, `Config::cipher`).
    pub fn detect() -> Cipher {
        #[cfg(all(feature = "std", feature = "aes-gcm", target_arch = "x86_64"))]
        if std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
        {
            return Cipher::Aes256Gcm;
        }
        #[cfg(all(feature = "std", feature = "aes-gcm", target_arch = "aarch64"))]
        if std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
        {
            return Cipher::Aes256Gcm;
        }
        Cipher::ChaCha20Poly1305
    }
}

/// The whole provider, built from parts so that nothing else is reachable
/// (ring's `default_provider()` would link every suite, group and signature
/// algorithm it knows: AES, P-256, P-384, RSA). One group, Ed25519 for
/// handshake signatures (verified in [`RawKeyVerifier`]), and the suites:
/// ChaCha20-Poly1305 always; AES-256-GCM first when this end prefers it.
///
/// The client lists its suites in its order and the server takes the
/// client's first one it supports, so AES-GCM is used exactly when both ends
/// have AES instructions, and ChaCha20-Poly1305 otherwise. The choice cannot
/// be downgraded on the path: ClientHello and ServerHello are in the
/// transcript each side signs (CertificateVerify, with its SM key) and MACs
/// (Finished).
fn provider(cipher: Cipher) -> CryptoProvider {
    let mut suites = Vec::with_capacity(2);
    #[cfg(feature = "aes-gcm")]
    if cipher == Cipher::Aes256Gcm {
        suites.push(rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384);
    }
    #[cfg(not(feature = "aes-gcm"))]
    let _ = cipher;
    suites.push(rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256);
    CryptoProvider {
        cipher_suites: suites,
        kx_groups: vec![rustls::crypto::ring::kx_group::X25519],
        signature_verification_algorithms: ED25519_ONLY,
        secure_random: &RingRandom,
        key_provider: &Ed25519Keys,
    }
}

static ED25519_ONLY: rustls::crypto::WebPkiSupportedAlgorithms =
    rustls::crypto::WebPkiSupportedAlgorithms {
        all: &[&Ed25519Verify],
        mapping: &[(SignatureScheme::ED25519, &[&Ed25519Verify])],
    };

#[derive(Debug)]
struct Ed25519Verify;

impl rustls::pki_types::SignatureVerificationAlgorithm for Ed25519Verify {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> core::result::Result<(), rustls::pki_types::InvalidSignature> {
        let key: [u8; 32] = public_key
            .try_into()
            .map_err(|_| rustls::pki_types::InvalidSignature)?;
        PublicKey(key)
            .verify(message, signature)
            .map_err(|_| rustls::pki_types::InvalidSignature)
    }
    fn public_key_alg_id(&self) -> rustls::pki_types::AlgorithmIdentifier {
        rustls::pki_types::alg_id::ED25519
    }
    fn signature_alg_id(&self) -> rustls::pki_types::AlgorithmIdentifier {
        rustls::pki_types::alg_id::ED25519
    }
}

/// TLS randoms through ring (on bare metal: getrandom's custom hook, bound
/// to the platform's random callback by the C ABI).
#[derive(Debug)]
struct RingRandom;

impl rustls::crypto::SecureRandom for RingRandom {
    fn fill(&self, buf: &mut [u8]) -> core::result::Result<(), rustls::crypto::GetRandomFailed> {
        use ring::rand::SecureRandom;
        ring::rand::SystemRandom::new()
            .fill(buf)
            .map_err(|_| rustls::crypto::GetRandomFailed)
    }
}

/// Only Ed25519 PKCS#8 keys (the SM key).
#[derive(Debug)]
struct Ed25519Keys;

impl rustls::crypto::KeyProvider for Ed25519Keys {
    fn load_private_key(
        &self,
        key_der: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> core::result::Result<Arc<dyn rustls::sign::SigningKey>, rustls::Error> {
        match &key_der {
            rustls::pki_types::PrivateKeyDer::Pkcs8(k) => {
                rustls::crypto::ring::sign::any_eddsa_type(k)
            }
            _ => Err(rustls::Error::General(alloc::string::String::from(
                "Ed25519 PKCS#8 only",
            ))),
        }
    }
}

/// Wall time for rustls, taken from the platform when the channel is made.
/// With raw public keys rustls does not check validity periods with it.
#[derive(Debug)]
struct FixedTime(u64);

impl TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(core::time::Duration::from_secs(
            self.0,
        )))
    }
}

/// Accepts any Ed25519 raw public key whose handshake signature verifies; the
/// monitor binds the key to evidence right after the handshake.
#[derive(Debug)]
struct RawKeyVerifier;

fn check_raw_key(cert: &CertificateDer<'_>) -> core::result::Result<(), rustls::Error> {
    PublicKey::from_spki(cert.as_ref())
        .map(|_| ())
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))
}

fn verify_sig(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> core::result::Result<HandshakeSignatureValid, rustls::Error> {
    let key = PublicKey::from_spki(cert.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::NoSignatureSchemesInCommon,
        ));
    }
    key.verify(message, dss.signature())
        .map(|_| HandshakeSignatureValid::assertion())
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature))
}

/// TLS 1.2 is never negotiated (the configs allow only 1.3).
fn no_tls12() -> core::result::Result<HandshakeSignatureValid, rustls::Error> {
    Err(rustls::Error::PeerIncompatible(
        rustls::PeerIncompatible::Tls13RequiredForQuic,
    ))
}

impl ServerCertVerifier for RawKeyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> core::result::Result<ServerCertVerified, rustls::Error> {
        if !intermediates.is_empty() {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadEncoding,
            ));
        }
        check_raw_key(end_entity).map(|_| ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _m: &[u8],
        _c: &CertificateDer<'_>,
        _d: &DigitallySignedStruct,
    ) -> core::result::Result<HandshakeSignatureValid, rustls::Error> {
        no_tls12()
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> core::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_sig(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

impl ClientCertVerifier for RawKeyVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> core::result::Result<ClientCertVerified, rustls::Error> {
        if !intermediates.is_empty() {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadEncoding,
            ));
        }
        check_raw_key(end_entity).map(|_| ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _m: &[u8],
        _c: &CertificateDer<'_>,
        _d: &DigitallySignedStruct,
    ) -> core::result::Result<HandshakeSignatureValid, rustls::Error> {
        no_tls12()
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> core::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_sig(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

fn certified_key(key: &SigningKey, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>> {
    // Our own signer over the SM key: its key pair is wiped when the last
    // channel using it is dropped (rustls's ring signer is not), and the
    // seed never leaves the zeroizing types.
    let signer: Arc<dyn rustls::sign::SigningKey> = Arc::new(SmSigner(Arc::new(key.clone())));
    let _ = provider;
    let spki = CertificateDer::from(key.public().to_spki());
    Ok(Arc::new(CertifiedKey::new(vec![spki], signer)))
}

/// Handshake signatures with the SM key (Ed25519 only).
#[derive(Debug)]
struct SmSigner(Arc<SigningKey>);

impl rustls::sign::SigningKey for SmSigner {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        offered
            .contains(&SignatureScheme::ED25519)
            .then(|| Box::new(SmSigner(self.0.clone())) as Box<dyn rustls::sign::Signer>)
    }
    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ED25519
    }
}

impl rustls::sign::Signer for SmSigner {
    fn sign(&self, message: &[u8]) -> core::result::Result<Vec<u8>, rustls::Error> {
        Ok(self.0.sign(message))
    }
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

enum Conn {
    Client(UnbufferedClientConnection),
    Server(UnbufferedServerConnection),
}

/// One end of an attested channel.
pub struct Channel {
    conn: Box<Conn>,
    incoming: Vec<u8>,
    /// Decrypted application bytes not yet framed into messages.
    plain: Vec<u8>,
    /// Messages waiting for the handshake to finish.
    pending_send: Vec<Vec<u8>>,
    established: bool,
    closed: bool,
    /// TLS failed: rustls must not be driven again (its alert was collected).
    failed: bool,
}

impl Drop for Channel {
    /// Plaintext of image chunks passes through these buffers: wipe them.
    fn drop(&mut self) {
        wipe_vec(&mut self.incoming);
        wipe_vec(&mut self.plain);
        for m in self.pending_send.iter_mut() {
            wipe_vec(m);
        }
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("established", &self.established)
            .field("closed", &self.closed)
            .finish()
    }
}

impl Channel {
    /// The SMS side. Returns the channel; call [`Channel::pump`] to get the ClientHello.
    pub fn client(key: &SigningKey, wall_time: u64, cipher: Cipher) -> Result<Channel> {
        let provider = provider(cipher);
        let ck = certified_key(key, &provider)?;
        let mut cfg = rustls::ClientConfig::builder_with_details(
            Arc::new(provider),
            Arc::new(FixedTime(wall_time)),
        )
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|_| Error::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RawKeyVerifier))
        .with_client_cert_resolver(Arc::new(AlwaysResolvesClientRawPublicKeys::new(ck)));
        cfg.resumption = rustls::client::Resumption::disabled();
        cfg.enable_early_data = false;
        let name = ServerName::try_from(SERVER_NAME).map_err(|_| Error::Tls)?;
        let conn = UnbufferedClientConnection::new(Arc::new(cfg), name).map_err(tls_error)?;
        Ok(Channel::with(Conn::Client(conn)))
    }

    /// The SMT side.
    pub fn server(key: &SigningKey, wall_time: u64, cipher: Cipher) -> Result<Channel> {
        let provider = provider(cipher);
        let ck = certified_key(key, &provider)?;
        let mut cfg = rustls::ServerConfig::builder_with_details(
            Arc::new(provider),
            Arc::new(FixedTime(wall_time)),
        )
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|_| Error::Tls)?
        .with_client_cert_verifier(Arc::new(RawKeyVerifier))
        .with_cert_resolver(Arc::new(AlwaysResolvesServerRawPublicKeys::new(ck)));
        cfg.send_tls13_tickets = 0;
        cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        cfg.max_early_data_size = 0;
        let conn = UnbufferedServerConnection::new(Arc::new(cfg)).map_err(tls_error)?;
        Ok(Channel::with(Conn::Server(conn)))
    }

    fn with(conn: Conn) -> Channel {
        Channel {
            conn: Box::new(conn),
            incoming: Vec::new(),
            plain: Vec::new(),
            pending_send: Vec::new(),
            established: false,
            closed: false,
            failed: false,
        }
    }

    pub fn is_established(&self) -> bool {
        self.established
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The suite the handshake settled on (`None` before ServerHello).
    pub fn cipher(&self) -> Option<Cipher> {
        let suite = match &*self.conn {
            Conn::Client(c) => c.negotiated_cipher_suite(),
            Conn::Server(c) => c.negotiated_cipher_suite(),
        }?;
        match suite.suite() {
            rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => Some(Cipher::ChaCha20Poly1305),
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => Some(Cipher::Aes256Gcm),
            // No other suite is configured.
            _ => None,
        }
    }

    /// The peer's raw public key, once the handshake has verified it.
    pub fn peer_key(&self) -> Option<PublicKey> {
        let certs = match &*self.conn {
            Conn::Client(c) => c.peer_certificates(),
            Conn::Server(c) => c.peer_certificates(),
        }?;
        match certs {
            [one] => PublicKey::from_spki(one.as_ref()).ok(),
            _ => None,
        }
    }

    /// Take TLS bytes from the peer.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        if self.failed || self.closed {
            return Err(Error::ChannelClosed);
        }
        if self.incoming.len() + bytes.len() > MAX_INCOMING {
            return Err(Error::TooLarge);
        }
        extend_wiped(&mut self.incoming, bytes);
        Ok(())
    }

    /// Feed peer bytes (may be empty) and pump: returns the TLS bytes to send,
    /// the complete messages received, and whether the channel is still good.
    pub fn exchange(&mut self, bytes: &[u8]) -> (Vec<u8>, Vec<SecretBytes>, Result<()>) {
        let mut out = Vec::new();
        let mut msgs = Vec::new();
        let r = self
            .feed(bytes)
            .and_then(|_| self.pump(&mut out, &mut msgs));
        (out, msgs, r)
    }

    /// A frame for one message of `len` bytes, to be built in place: the
    /// first [`FRAME_HEAD`] bytes hold the length, the message goes after
    /// them (zeroed until written). Queue it with [`Channel::send_frame`].
    pub fn frame(len: usize) -> Result<SecretBytes> {
        if len > MAX_MESSAGE {
            return Err(Error::TooLarge);
        }
        let mut f = SecretBytes::new(vec![0u8; FRAME_HEAD + len]);
        f[..FRAME_HEAD].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(f)
    }

    /// Queue a frame from [`Channel::frame`], as [`Channel::send`] queues a
    /// message, without copying it. A frame whose length head does not
    /// match its length is refused (`InvalidArgument`).
    pub fn send_frame(&mut self, frame: SecretBytes) -> Result<()> {
        if self.closed {
            return Err(Error::ChannelClosed);
        }
        let head = frame
            .get(..FRAME_HEAD)
            .and_then(|h| <[u8; 4]>::try_from(h).ok())
            .map(u32::from_be_bytes);
        if head != Some((frame.len() - FRAME_HEAD.min(frame.len())) as u32)
            || frame.len() > FRAME_HEAD + MAX_MESSAGE
        {
            return Err(Error::InvalidArgument);
        }
        self.pending_send.push(frame.into_inner());
        Ok(())
    }

    /// Queue one framed message; it is encrypted on the next [`Channel::pump`].
    /// The message may hold enclave state: it is wiped once copied.
    pub fn send(&mut self, mut msg: Vec<u8>) -> Result<()> {
        if msg.len() > MAX_MESSAGE || self.closed {
            wipe_vec(&mut msg);
            return Err(if self.closed {
                Error::ChannelClosed
            } else {
                Error::TooLarge
            });
        }
        let mut framed = Vec::with_capacity(FRAME_HEAD + msg.len());
        framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        framed.extend_from_slice(&msg);
        wipe_vec(&mut msg);
        self.pending_send.push(framed);
        Ok(())
    }

    /// Drive TLS: process received records, encrypt queued messages. TLS bytes
    /// to send are appended to `out`; complete received messages to `msgs`.
    pub fn pump(&mut self, out: &mut Vec<u8>, msgs: &mut Vec<SecretBytes>) -> Result<()> {
        if self.failed {
            return Err(Error::Tls);
        }
        let r = self.pump_inner(out);
        if r.is_err() {
            // One more call yields the fatal alert for the peer; after that,
            // rustls is never driven again.
            // rustls keeps offsets into the incoming buffer between calls
            // (handshake messages spanning records): that call must see the
            // same buffer, never an empty one.
            self.failed = true;
            self.closed = true;
            let mut ignored = Vec::new();
            let _ = match &mut *self.conn {
                Conn::Client(c) => step(
                    c.process_tls_records(&mut self.incoming),
                    out,
                    &mut ignored,
                    &mut Vec::new(),
                    &mut false,
                    &mut false,
                ),
                Conn::Server(c) => step(
                    c.process_tls_records(&mut self.incoming),
                    out,
                    &mut ignored,
                    &mut Vec::new(),
                    &mut false,
                    &mut false,
                ),
            };
            wipe_vec(&mut self.plain);
            wipe_vec(&mut self.incoming);
            return r;
        }
        self.take_messages(msgs)
    }

    fn pump_inner(&mut self, out: &mut Vec<u8>) -> Result<()> {
        loop {
            let (discard, progressed) = match &mut *self.conn {
                Conn::Client(c) => {
                    let status = c.process_tls_records(&mut self.incoming);
                    step(
                        status,
                        out,
                        &mut self.plain,
                        &mut self.pending_send,
                        &mut self.established,
                        &mut self.closed,
                    )
                }
                Conn::Server(c) => {
                    let status = c.process_tls_records(&mut self.incoming);
                    step(
                        status,
                        out,
                        &mut self.plain,
                        &mut self.pending_send,
                        &mut self.established,
                        &mut self.closed,
                    )
                }
            };
            // Always apply the discard, also on error.
            let discard = discard.min(self.incoming.len());
            drain_front(&mut self.incoming, discard);
            // `plain` needs no cap of its own: it holds at most one partial
            // message (`take_messages` refuses a frame over MAX_MESSAGE)
            // plus the records of one feed (at most MAX_INCOMING). A cap of
            // MAX_INCOMING here refused a stream a relay fed in large pieces.
            if !progressed? {
                return Ok(());
            }
        }
    }

    fn take_messages(&mut self, msgs: &mut Vec<SecretBytes>) -> Result<()> {
        loop {
            if self.plain.len() < 4 {
                return Ok(());
            }
            let len =
                u32::from_be_bytes([self.plain[0], self.plain[1], self.plain[2], self.plain[3]])
                    as usize;
            if len > MAX_MESSAGE {
                self.closed = true;
                return Err(Error::TooLarge);
            }
            if self.plain.len() < 4 + len {
                return Ok(());
            }
            msgs.push(SecretBytes::new(self.plain[4..4 + len].to_vec()));
            drain_front(&mut self.plain, 4 + len);
        }
    }

    /// End the channel: send these last messages (best effort), then
    /// close_notify. Returns the TLS bytes to transmit.
    pub fn send_last_and_close(&mut self, last: Vec<Vec<u8>>) -> Vec<u8> {
        let mut bytes = Vec::new();
        if !last.is_empty() {
            for m in last {
                let _ = self.send(m);
            }
            let mut msgs = Vec::new();
            let _ = self.pump(&mut bytes, &mut msgs);
        }
        self.close(&mut bytes);
        bytes
    }

    /// Queue a close_notify alert.
    pub fn close(&mut self, out: &mut Vec<u8>) {
        if self.failed || self.closed || !self.established {
            self.closed = true;
            return;
        }
        let mut buf = vec![0u8; 64];
        let _ = match &mut *self.conn {
            Conn::Client(c) => close_notify(c.process_tls_records(&mut self.incoming), &mut buf),
            Conn::Server(c) => close_notify(c.process_tls_records(&mut self.incoming), &mut buf),
        }
        .map(|n| out.extend_from_slice(&buf[..n]));
        self.closed = true;
    }
}

/// A TLS failure as librewire's error: the platform's random source failing
/// (rustls draws its randoms through it) is `Random`, not a channel fault.
fn tls_error(e: rustls::Error) -> Error {
    match e {
        rustls::Error::FailedToGetRandomBytes => Error::Random,
        _ => Error::Tls,
    }
}

/// Remove the first `n` bytes, wiping the bytes the shift leaves behind
/// (decrypted records and messages are processed in place).
fn drain_front(v: &mut Vec<u8>, n: usize) {
    let n = n.min(v.len());
    if n == 0 {
        return;
    }
    let rest = v.len() - n;
    v.copy_within(n.., 0);
    v[rest..].zeroize();
    v.truncate(rest);
}

/// Append, never leaving a copy in a buffer freed by growth.
fn extend_wiped(v: &mut Vec<u8>, data: &[u8]) {
    if v.capacity() - v.len() < data.len() {
        let mut grown = Vec::with_capacity((v.len() + data.len()).max(2 * v.capacity()));
        grown.extend_from_slice(v);
        wipe_vec(v);
        *v = grown;
    }
    v.extend_from_slice(data);
}

fn close_notify<Data>(status: UnbufferedStatus<'_, '_, Data>, buf: &mut [u8]) -> Result<usize> {
    match status.state.map_err(|_| Error::Tls)? {
        ConnectionState::WriteTraffic(mut w) => w.queue_close_notify(buf).map_err(|_| Error::Tls),
        _ => Err(Error::InvalidState),
    }
}

/// One step of the unbuffered state machine. Returns (discard, Ok(progressed)).
fn step<Data>(
    status: UnbufferedStatus<'_, '_, Data>,
    out: &mut Vec<u8>,
    plain: &mut Vec<u8>,
    pending_send: &mut Vec<Vec<u8>>,
    established: &mut bool,
    closed: &mut bool,
) -> (usize, Result<bool>) {
    let UnbufferedStatus { discard, state } = status;
    let state = match state {
        Ok(s) => s,
        Err(e) => {
            event!(debug, error = ?e, "tls error");
            // After an error, one more process call yields the alert to send;
            // the caller closes the channel, the peer learns of it on its next read.
            return (discard, Err(tls_error(e)));
        }
    };
    let r = match state {
        ConnectionState::ReadTraffic(mut r) => {
            while let Some(rec) = r.next_record() {
                match rec {
                    Ok(rec) => extend_wiped(plain, rec.payload),
                    Err(_) => return (discard, Err(Error::Tls)),
                }
            }
            Ok(true)
        }
        ConnectionState::EncodeTlsData(mut e) => {
            let mut buf = vec![0u8; 4096];
            loop {
                match e.encode(&mut buf) {
                    Ok(n) => {
                        out.extend_from_slice(&buf[..n]);
                        break Ok(true);
                    }
                    Err(EncodeError::InsufficientSize(s)) => buf.resize(s.required_size, 0),
                    Err(_) => break Err(Error::Tls),
                }
            }
        }
        ConnectionState::TransmitTlsData(t) => {
            t.done();
            Ok(true)
        }
        ConnectionState::BlockedHandshake => Ok(false),
        ConnectionState::WriteTraffic(mut w) => {
            *established = true;
            if pending_send.is_empty() {
                Ok(false)
            } else {
                let mut result = Ok(true);
                for mut msg in pending_send.drain(..) {
                    // Records are encrypted straight onto the end of `out`.
                    let start = out.len();
                    out.resize(start + msg.len() + 256, 0);
                    loop {
                        match w.encrypt(&msg, &mut out[start..]) {
                            Ok(n) => {
                                out.truncate(start + n);
                                break;
                            }
                            Err(EncryptError::InsufficientSize(s)) => {
                                out.resize(start + s.required_size, 0)
                            }
                            Err(_) => {
                                out.truncate(start);
                                result = Err(Error::Tls);
                                break;
                            }
                        }
                    }
                    wipe_vec(&mut msg);
                }
                result
            }
        }
        ConnectionState::PeerClosed | ConnectionState::Closed => {
            *closed = true;
            Ok(false)
        }
        // Early data is disabled; anything else is unexpected.
        _ => Err(Error::Tls),
    };
    (discard, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Secret;

    const T: u64 = 1_800_000_000;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_seed(Secret::from_bytes([b; 32])).unwrap() // safe: test
    }

    fn handshake(c: &mut Channel, s: &mut Channel) {
        let (mut to_s, mut to_c) = (Vec::new(), Vec::new());
        for _ in 0..16 {
            let (o, _, r) = c.exchange(&core::mem::take(&mut to_c));
            r.unwrap(); // safe: test
            to_s.extend(o);
            let (o, _, r) = s.exchange(&core::mem::take(&mut to_s));
            r.unwrap(); // safe: test
            to_c.extend(o);
            if c.is_established() && s.is_established() && to_c.is_empty() && to_s.is_empty() {
                return;
            }
        }
    }

    /// extend_wiped grows a buffer itself (wiping the old one) exactly when
    /// the data does not fit, to max(needed, twice the capacity): never a
    /// growth the Vec would do on its own, unwiped.
    #[test]
    fn extend_wiped_grows_only_when_needed_and_by_its_own_rule() {
        let mut v = Vec::with_capacity(8);
        extend_wiped(&mut v, &[1; 8]);
        assert_eq!((v.len(), v.capacity()), (8, 8), "it fitted: no growth");
        extend_wiped(&mut v, &[2; 3]);
        assert_eq!((v.len(), v.capacity()), (11, 16), "twice the capacity");
        extend_wiped(&mut v, &[3; 40]);
        assert_eq!((v.len(), v.capacity()), (51, 51), "what is needed");
        let mut empty = Vec::new();
        extend_wiped(&mut empty, &[4; 3]);
        assert_eq!(empty.capacity(), 3, "not the Vec's own minimum of 8");
        assert_eq!(&v[..12], &[1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3]);
    }

    #[test]
    fn client_hello_random_is_fresh() {
        let hello = || {
            Channel::client(&key(1), T, Cipher::ChaCha20Poly1305)
                .unwrap() // safe: test
                .exchange(&[])
                .0
        };
        let (a, b) = (hello(), hello());
        // Record header (5), handshake header (4), legacy version (2), random (32).
        assert_eq!((a[0], a[5]), (22, 1), "a ClientHello record");
        assert_ne!(a[11..43], [0u8; 32]);
        assert_ne!(a[11..43], b[11..43]);
    }

    #[test]
    fn established_closed_and_peer_key_say_so() {
        let mut c = Channel::client(&key(1), T, Cipher::ChaCha20Poly1305).unwrap(); // safe: test
        let mut s = Channel::server(&key(2), T, Cipher::ChaCha20Poly1305).unwrap(); // safe: test
        assert!(!c.is_established() && !s.is_established());
        assert!(!c.is_closed() && !s.is_closed());
        assert_eq!(c.peer_key(), None);
        handshake(&mut c, &mut s);
        assert!(c.is_established() && s.is_established());
        assert_eq!(c.peer_key(), Some(key(2).public()));
        assert_eq!(s.peer_key(), Some(key(1).public()));
        let mut out = Vec::new();
        c.close(&mut out);
        assert!(c.is_closed());
        let shown = alloc::format!("{c:?}");
        assert!(shown.starts_with("Channel {") && shown.contains("closed: true"));
    }

    /// AES-256-GCM exactly when both ends prefer it; ChaCha20-Poly1305
    /// otherwise, whichever end lacks AES. Data flows either way.
    #[test]
    fn suite_is_aes_gcm_only_when_both_ends_prefer_it() {
        use Cipher::{Aes256Gcm as Aes, ChaCha20Poly1305 as ChaCha};
        for (client, server, want) in [
            (ChaCha, ChaCha, ChaCha),
            (Aes, ChaCha, ChaCha),
            (ChaCha, Aes, ChaCha),
            (
                Aes,
                Aes,
                if cfg!(feature = "aes-gcm") {
                    Aes
                } else {
                    ChaCha
                },
            ),
        ] {
            let mut c = Channel::client(&key(1), T, client).unwrap(); // safe: test
            let mut s = Channel::server(&key(2), T, server).unwrap(); // safe: test
            assert_eq!(c.cipher(), None, "no suite before the handshake");
            handshake(&mut c, &mut s);
            assert_eq!((c.cipher(), s.cipher()), (Some(want), Some(want)));
            c.send(vec![9; 3000]).unwrap(); // safe: test
            let (bytes, _, r) = c.exchange(&[]);
            r.unwrap(); // safe: test
            let (_, msgs, r) = s.exchange(&bytes);
            r.unwrap(); // safe: test
            assert_eq!(msgs.len(), 1);
            assert_eq!(&msgs[0][..], &[9; 3000][..]);
        }
    }

    /// A ClientHello from which an on-path attacker struck AES-256-GCM (so
    /// that the server picks ChaCha20-Poly1305) fails the handshake: the
    /// ClientHello is in the transcript the keys and Finished depend on.
    #[test]
    fn struck_suite_in_client_hello_fails_the_handshake() {
        let mut c = Channel::client(&key(1), T, Cipher::Aes256Gcm).unwrap(); // safe: test
        let mut s = Channel::server(&key(2), T, Cipher::Aes256Gcm).unwrap(); // safe: test
        let (mut hello, _, r) = c.exchange(&[]);
        r.unwrap(); // safe: test
                    // Record header 5, handshake header 4, version 2, random 32,
                    // session id 1 + n, then the suites' length (2) and the suites.
        let at = 5 + 4 + 2 + 32 + 1 + hello[5 + 4 + 2 + 32] as usize;
        let n = u16::from_be_bytes([hello[at], hello[at + 1]]) as usize;
        let suites = &mut hello[at + 2..at + 2 + n];
        if cfg!(feature = "aes-gcm") {
            assert_eq!(&suites[..2], &[0x13, 0x02], "AES-256-GCM offered first");
            // TLS_AES_128_GCM_SHA256, which the server does not support.
            suites[..2].copy_from_slice(&[0x13, 0x01]);
        }
        let (flight, _, r) = s.exchange(&hello);
        r.unwrap(); // safe: test
        let (_, _, r) = c.exchange(&flight);
        if cfg!(feature = "aes-gcm") {
            assert_eq!(r, Err(Error::Tls));
            assert!(!c.is_established());
        }
    }

    /// A ServerHello whose suite an on-path attacker rewrote fails the
    /// handshake: the suite is in the transcript both ends sign.
    #[test]
    fn rewritten_suite_in_server_hello_fails_the_handshake() {
        let mut c = Channel::client(&key(1), T, Cipher::Aes256Gcm).unwrap(); // safe: test
        let mut s = Channel::server(&key(2), T, Cipher::Aes256Gcm).unwrap(); // safe: test
        let (hello, _, r) = c.exchange(&[]);
        r.unwrap(); // safe: test
        let (mut flight, _, r) = s.exchange(&hello);
        r.unwrap(); // safe: test
                    // ServerHello: record header 5, handshake header 4, version 2,
                    // random 32, session id length 1 + 32 (rustls echoes the client's).
        let at = 5 + 4 + 2 + 32 + 1 + flight[5 + 4 + 2 + 32] as usize;
        let chacha = [0x13, 0x03];
        let aes = [0x13, 0x02];
        let was = [flight[at], flight[at + 1]];
        flight[at..at + 2].copy_from_slice(if was == aes { &chacha } else { &aes });
        let (_, _, r) = c.exchange(&flight);
        assert_eq!(r, Err(Error::Tls));
        assert!(!c.is_established());
    }

    fn pair() -> (Channel, Channel) {
        let mut c = Channel::client(&key(1), T, Cipher::ChaCha20Poly1305).unwrap(); // safe: test
        let mut s = Channel::server(&key(2), T, Cipher::ChaCha20Poly1305).unwrap(); // safe: test
        handshake(&mut c, &mut s);
        (c, s)
    }

    /// Everything `from` has queued, as TLS bytes.
    fn flight(from: &mut Channel) -> Vec<u8> {
        let (out, _, r) = from.exchange(&[]);
        r.unwrap(); // safe: test
        out
    }

    #[test]
    fn handshake_takes_one_exchange_per_flight() {
        let mut c = Channel::client(&key(1), T, Cipher::ChaCha20Poly1305).unwrap(); // safe: test
        let mut s = Channel::server(&key(2), T, Cipher::ChaCha20Poly1305).unwrap(); // safe: test
        let hello = flight(&mut c);
        let (server_flight, _, r) = s.exchange(&hello);
        r.unwrap(); // safe: test
        let (client_finished, _, r) = c.exchange(&server_flight);
        r.unwrap(); // safe: test
        assert!(
            c.is_established(),
            "the client is done after the server's one flight"
        );
        let (_, _, r) = s.exchange(&client_finished);
        r.unwrap(); // safe: test
        assert!(s.is_established());
        assert_eq!(s.peer_key(), Some(key(1).public()));
    }

    #[test]
    fn a_failed_random_source_is_reported_as_such() {
        assert_eq!(
            tls_error(rustls::Error::FailedToGetRandomBytes),
            Error::Random
        );
        assert_eq!(tls_error(rustls::Error::DecryptError), Error::Tls);
    }

    #[test]
    fn feed_and_send_caps_are_exact() {
        let mut c = Channel::client(&key(1), T, Cipher::ChaCha20Poly1305).unwrap(); // safe: test
        assert_eq!(c.feed(&vec![0; MAX_INCOMING]), Ok(()));
        assert_eq!(c.feed(&[0]), Err(Error::TooLarge));
        let mut c = Channel::client(&key(1), T, Cipher::ChaCha20Poly1305).unwrap(); // safe: test
        assert_eq!(c.feed(&vec![0; MAX_INCOMING - 10]), Ok(()));
        assert_eq!(c.feed(&[0; 10]), Ok(()));
        assert_eq!(c.feed(&[0]), Err(Error::TooLarge));

        let (mut c, mut s) = pair();
        assert_eq!(c.send(vec![7; MAX_MESSAGE]), Ok(()));
        assert_eq!(c.send(vec![7; MAX_MESSAGE + 1]), Err(Error::TooLarge));
        // An empty message is a message too.
        assert_eq!(c.send(Vec::new()), Ok(()));
        let (_, msgs, r) = s.exchange(&flight(&mut c));
        r.unwrap(); // safe: test
        assert_eq!(msgs.len(), 2);
        assert_eq!(*msgs[0], vec![7; MAX_MESSAGE]);
        assert!(msgs[1].is_empty());
    }

    /// A frame built in place arrives as the message it holds; a frame
    /// whose head does not match its length, or that is too long, is refused.
    #[test]
    fn frames_built_in_place_arrive_and_bad_ones_are_refused() {
        let (mut c, mut s) = pair();
        assert_eq!(
            Channel::frame(MAX_MESSAGE + 1).unwrap_err(),
            Error::TooLarge
        );
        // The largest message fits, built in place and sent whole.
        let mut big = Channel::frame(MAX_MESSAGE).unwrap(); // safe: test
        big[FRAME_HEAD..].fill(7);
        c.send_frame(big).unwrap(); // safe: test
        let mut f = Channel::frame(5).unwrap(); // safe: test
        assert_eq!(&f[..FRAME_HEAD], &[0, 0, 0, 5]);
        f[FRAME_HEAD..].copy_from_slice(b"hello");
        c.send_frame(f).unwrap(); // safe: test
        let mut bad = Channel::frame(5).unwrap(); // safe: test
        bad.push(0);
        assert_eq!(c.send_frame(bad), Err(Error::InvalidArgument));
        assert_eq!(
            c.send_frame(SecretBytes::new(vec![0, 0])),
            Err(Error::InvalidArgument)
        );
        let mut huge = SecretBytes::new(vec![0; FRAME_HEAD + MAX_MESSAGE + 1]);
        huge[..FRAME_HEAD].copy_from_slice(&((MAX_MESSAGE + 1) as u32).to_be_bytes());
        assert_eq!(c.send_frame(huge), Err(Error::InvalidArgument));
        let (_, msgs, r) = s.exchange(&flight(&mut c));
        r.unwrap(); // safe: test
        assert_eq!(msgs.len(), 2, "only the good frames were queued");
        assert_eq!(*msgs[0], vec![7; MAX_MESSAGE]);
        assert_eq!(&msgs[1][..], b"hello");
        let mut out = Vec::new();
        c.close(&mut out);
        assert_eq!(
            c.send_frame(Channel::frame(1).unwrap()), // safe: test
            Err(Error::ChannelClosed)
        );
    }

    #[test]
    fn a_closed_channel_takes_nothing() {
        let mut c = Channel::client(&key(1), T, Cipher::ChaCha20Poly1305).unwrap(); // safe: test
        let mut out = Vec::new();
        c.close(&mut out);
        assert!(out.is_empty(), "nothing to close before the handshake");
        assert!(c.is_closed());
        assert_eq!(c.feed(&[22]), Err(Error::ChannelClosed));
        assert_eq!(c.send(vec![1]), Err(Error::ChannelClosed));
    }

    #[test]
    fn close_sends_one_close_notify_and_the_peer_sees_it() {
        let (mut c, mut s) = pair();
        let mut out = Vec::new();
        c.close(&mut out);
        assert!(!out.is_empty(), "a close_notify alert");
        let mut again = Vec::new();
        c.close(&mut again);
        assert!(again.is_empty(), "only once");
        assert!(!s.is_closed());
        let (_, msgs, r) = s.exchange(&out);
        assert_eq!((msgs.len(), r), (0, Ok(())));
        assert!(s.is_closed());
        // A failed channel sends no close_notify either.
        let (mut c, _s) = pair();
        let (_, _, r) = c.exchange(&[23, 3, 3, 0, 1, 0]);
        assert_eq!(r, Err(Error::Tls));
        let mut out = Vec::new();
        c.close(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_peer_frame_over_the_message_cap_closes_the_channel() {
        let (mut c, mut s) = pair();
        // Framed by hand: `send` refuses to make it.
        let mut framed = ((MAX_MESSAGE + 1) as u32).to_be_bytes().to_vec();
        framed.resize(4 + MAX_MESSAGE + 1, 1);
        c.pending_send.push(framed);
        let (_, msgs, r) = s.exchange(&flight(&mut c));
        assert_eq!((msgs.len(), r), (0, Err(Error::TooLarge)));
        assert!(s.is_closed());
        // At the cap it is delivered.
        let (mut c, mut s) = pair();
        let mut framed = (MAX_MESSAGE as u32).to_be_bytes().to_vec();
        framed.resize(4 + MAX_MESSAGE, 1);
        c.pending_send.push(framed);
        let (_, msgs, r) = s.exchange(&flight(&mut c));
        assert_eq!((msgs.len(), r), (1, Ok(())));
    }

    /// A relay may deliver a stream in any pieces the feed cap allows: a
    /// partly received message plus a full feed is not an overrun.
    #[test]
    fn a_stream_fed_in_the_largest_pieces_arrives_whole() {
        let (mut c, mut s) = pair();
        let sent: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; MAX_MESSAGE - 100]).collect();
        for m in &sent {
            c.send(m.clone()).unwrap(); // safe: test
        }
        let mut wire = flight(&mut c);
        // First a piece that ends inside a message, then the largest pieces.
        let mut got = Vec::new();
        let mut first = true;
        while !wire.is_empty() {
            let room = if first {
                30_000
            } else {
                MAX_INCOMING - s.incoming.len()
            };
            first = false;
            let piece: Vec<u8> = wire.drain(..room.min(wire.len())).collect();
            let (_, msgs, r) = s.exchange(&piece);
            assert_eq!(r, Ok(()));
            got.extend(msgs.into_iter().map(|m| m.to_vec()));
        }
        assert_eq!(got, sent);
    }
}
