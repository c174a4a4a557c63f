//! The one error type of librewire.
//!
//! Every variant has a stable numeric code (the C ABI returns it as `uint32_t`,
//! Python maps it to an exception class). Codes are grouped by hundreds:
//! 1xx decoding, 2xx authorisation (G1), 3xx integrity (G4), 4xx replay and
//! protocol state (G2/G5), 5xx platform and enclave framework, 6xx channel.
//! Codes are never reused or renumbered; new variants take new numbers.
//!
//! Variants carry no data on purpose: error text must never contain secrets or
//! attacker-chosen bytes, and a fieldless enum makes that impossible to get wrong.

use core::fmt;

/// Everything that can go wrong in librewire. `0` is never a code: it means success at the C ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum Error {
    // 1xx: decoding. The bytes are not a well-formed librewire object.
    /// Not well-formed CBOR/COSE, or a field of the wrong type or size.
    Decode = 100,
    /// Input larger than the cap for its kind.
    TooLarge = 101,
    /// Bytes left over after the object.
    TrailingBytes = 102,
    /// Not in deterministic (canonical) CBOR encoding.
    NonCanonical = 103,
    /// Unknown format version.
    UnsupportedVersion = 104,
    /// A valid object of another kind than the one expected here.
    WrongMessageType = 105,

    // 2xx: authorisation (G1).
    /// A signature does not verify.
    BadSignature = 200,
    /// Signed by a key this party does not know or trust for that object.
    UnknownSigner = 201,
    /// The request names another host as source.
    WrongSource = 202,
    /// The request names another host as target, or the peer is not the named target.
    WrongTarget = 203,
    /// The request's deadline has passed.
    DeadlinePassed = 204,
    /// The target's ATL is below the enclave policy's minimum.
    AtlTooLow = 205,
    /// The host's SM measurement is not one the SDS endorsed for it.
    SmNotEndorsed = 206,
    /// The TLS peer's key is not the SM key certified for the named host.
    PeerMismatch = 207,
    /// A host endorsement is outside its validity window.
    EndorsementExpired = 208,
    /// The request names another enclave or measurement than the one here.
    WrongEnclave = 209,
    /// RELEASE or ABORT not signed by the migration's source SM.
    NotSource = 210,
    /// A deadline or validity check needs trusted wall time and the platform has none.
    NoTrustedTime = 211,
    /// A host endorsement is not the one the request was signed with.
    EndorsementMismatch = 212,
    /// The SDS has no provenance for this device key: no registered
    /// manufacturer or operator root certified it, and no operator pinned it.
    DeviceNotCertified = 213,
    /// The target's endorsed platform cannot run the enclave's code (the
    /// policy names another platform: a RISC-V build ordered to an Arm host).
    PlatformMismatch = 214,

    // 3xx: integrity (G4).
    /// A digest or size in the stream does not match the manifest.
    Integrity = 300,
    /// END arrived before the announced lengths were streamed. (A channel that
    /// closes mid-stream is `ChannelClosed` or `Tls`.)
    Truncated = 301,
    /// The imported code does not measure to the request's measurement.
    MeasurementMismatch = 302,
    /// A sealed blob does not open (wrong key, tampered, truncated or reordered).
    Unseal = 303,

    // 4xx: replay and protocol state (G2, G5).
    /// The request's epoch is not the enclave's current epoch.
    StaleEpoch = 400,
    /// This request id was already used.
    Replay = 401,
    /// A message that was already acted on; the stored answer is re-sent, nothing changes.
    Duplicate = 402,
    /// A message for another migration than the one it is sent in.
    WrongRequest = 403,
    /// The journal copy is older than the monotonic counter says: storage was rolled back.
    Rollback = 404,
    /// No enclave or migration with that id here.
    UnknownEnclave = 405,
    /// The message or call is not valid in the current state.
    InvalidState = 406,
    /// The enclave is already migrating.
    Busy = 407,
    /// The migration timed out before commit and was aborted.
    Timeout = 408,
    /// The source has committed (MIGRATED): the enclave will never run here again.
    Migrated = 409,
    /// A checkpoint that is not the enclave's latest committed one here (an
    /// older one, one never committed, one from an earlier epoch).
    StaleCheckpoint = 410,

    // 5xx: platform and enclave framework.
    /// The enclave framework (EnclaveHost) reported a failure.
    Host = 500,
    /// Journal storage failed.
    Storage = 501,
    /// The monotonic counter failed.
    Counter = 502,
    /// The platform's randomness source failed.
    Random = 503,
    /// A key could not be derived or parsed.
    Crypto = 504,
    /// An internal limit (journal entries, message size) would be exceeded.
    Capacity = 505,

    // 6xx: the attested channel.
    /// TLS failed (handshake, record decryption, alert from the peer).
    Tls = 600,
    /// The channel was closed by the peer.
    ChannelClosed = 601,

    // 7xx: API misuse at a language boundary (C ABI, Python).
    /// A required pointer was NULL.
    NullPointer = 700,
    /// An output buffer is too small; the required length was reported.
    BufferTooSmall = 701,
    /// An argument is out of range (an unknown enum value, a bad length).
    InvalidArgument = 702,
    /// librewire hit an internal bug and refused the call (a panic was caught).
    Internal = 703,
    /// Nothing to return (no output or event queued).
    Empty = 704,
}

/// Short alias used throughout the crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    /// Every variant, for tables and exhaustive tests.
    pub const ALL: &'static [Error] = &[
        Error::Decode,
        Error::TooLarge,
        Error::TrailingBytes,
        Error::NonCanonical,
        Error::UnsupportedVersion,
        Error::WrongMessageType,
        Error::BadSignature,
        Error::UnknownSigner,
        Error::WrongSource,
        Error::WrongTarget,
        Error::DeadlinePassed,
        Error::AtlTooLow,
        Error::SmNotEndorsed,
        Error::PeerMismatch,
        Error::EndorsementExpired,
        Error::WrongEnclave,
        Error::NotSource,
        Error::NoTrustedTime,
        Error::EndorsementMismatch,
        Error::DeviceNotCertified,
        Error::PlatformMismatch,
        Error::Integrity,
        Error::Truncated,
        Error::MeasurementMismatch,
        Error::Unseal,
        Error::StaleEpoch,
        Error::Replay,
        Error::Duplicate,
        Error::WrongRequest,
        Error::Rollback,
        Error::UnknownEnclave,
        Error::InvalidState,
        Error::Busy,
        Error::Timeout,
        Error::Migrated,
        Error::StaleCheckpoint,
        Error::Host,
        Error::Storage,
        Error::Counter,
        Error::Random,
        Error::Crypto,
        Error::Capacity,
        Error::Tls,
        Error::ChannelClosed,
        Error::NullPointer,
        Error::BufferTooSmall,
        Error::InvalidArgument,
        Error::Internal,
        Error::Empty,
    ];

    /// The stable numeric code.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The variant for a code, if any.
    pub fn from_code(code: u32) -> Option<Error> {
        Error::ALL.iter().copied().find(|e| e.code() == code)
    }

    /// The guarantee class of the error, as its hundreds digit names it.
    pub const fn category(self) -> Category {
        match self.code() / 100 {
            1 => Category::Decode,
            2 => Category::Authorisation,
            3 => Category::Integrity,
            4 => Category::State,
            5 => Category::Platform,
            6 => Category::Channel,
            _ => Category::Api,
        }
    }

    /// A fixed, secret-free description, NUL-terminated for C.
    pub const fn as_cstr(self) -> &'static core::ffi::CStr {
        match self {
            Error::Decode => c"malformed object",
            Error::TooLarge => c"object larger than allowed",
            Error::TrailingBytes => c"trailing bytes after object",
            Error::NonCanonical => c"object not in deterministic CBOR",
            Error::UnsupportedVersion => c"unsupported format version",
            Error::WrongMessageType => c"unexpected kind of object",
            Error::BadSignature => c"signature does not verify",
            Error::UnknownSigner => c"signed by an unknown or untrusted key",
            Error::WrongSource => c"request names another source host",
            Error::WrongTarget => c"request names another target host",
            Error::DeadlinePassed => c"request deadline has passed",
            Error::AtlTooLow => c"target ATL below the enclave policy",
            Error::SmNotEndorsed => c"SM measurement not endorsed for this host",
            Error::PeerMismatch => c"channel peer is not the named host",
            Error::EndorsementExpired => c"host endorsement not valid now",
            Error::WrongEnclave => c"request names another enclave or measurement",
            Error::NotSource => c"proof not signed by the migration source",
            Error::NoTrustedTime => c"no trusted wall time for a deadline check",
            Error::EndorsementMismatch => c"endorsement is not the one the request names",
            Error::DeviceNotCertified => {
                c"device key not certified by a registered root, nor pinned"
            }
            Error::PlatformMismatch => c"target platform cannot run the enclave's code",
            Error::Integrity => c"stream digest or size mismatch",
            Error::Truncated => c"image stream truncated",
            Error::MeasurementMismatch => c"code measurement does not match the request",
            Error::Unseal => c"sealed data does not open",
            Error::StaleEpoch => c"stale epoch",
            Error::Replay => c"request id already used",
            Error::Duplicate => c"duplicate message, already acted on",
            Error::WrongRequest => c"message for another migration",
            Error::Rollback => c"journal rolled back",
            Error::UnknownEnclave => c"unknown enclave or migration",
            Error::InvalidState => c"not valid in the current state",
            Error::Busy => c"enclave already migrating",
            Error::Timeout => c"migration timed out and was aborted",
            Error::Migrated => c"enclave migrated away; it never runs here again",
            Error::StaleCheckpoint => c"stale checkpoint: not the one committed or sealed last",
            Error::Host => c"enclave framework failure",
            Error::Storage => c"journal storage failure",
            Error::Counter => c"monotonic counter failure",
            Error::Random => c"randomness source failure",
            Error::Crypto => c"key derivation or parsing failure",
            Error::Capacity => c"internal limit exceeded",
            Error::Tls => c"TLS failure",
            Error::ChannelClosed => c"channel closed by peer",
            Error::NullPointer => c"required pointer is NULL",
            Error::BufferTooSmall => c"output buffer too small",
            Error::InvalidArgument => c"argument out of range",
            Error::Internal => c"internal error; call refused",
            Error::Empty => c"nothing to return",
        }
    }

    /// A fixed, secret-free description.
    pub fn as_str(self) -> &'static str {
        core::str::from_utf8(self.as_cstr().to_bytes()).unwrap_or("rewire error")
    }
}

/// Coarse classes, one per hundreds digit of the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Decode,
    Authorisation,
    Integrity,
    State,
    Platform,
    Channel,
    Api,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (rewire error {})", self.as_str(), self.code())
    }
}

impl core::error::Error for Error {}

impl From<coset::CoseError> for Error {
    fn from(e: coset::CoseError) -> Self {
        match e {
            coset::CoseError::ExtraneousData => Error::TrailingBytes,
            _ => Error::Decode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_nonzero_and_round_trip() {
        for (i, e) in Error::ALL.iter().enumerate() {
            assert_ne!(e.code(), 0);
            assert_eq!(Error::from_code(e.code()), Some(*e));
            for other in &Error::ALL[i + 1..] {
                assert_ne!(e.code(), other.code());
            }
        }
        assert_eq!(Error::from_code(0), None);
        assert_eq!(Error::from_code(99), None);
    }

    #[test]
    fn categories_follow_the_hundreds_digit() {
        assert_eq!(Error::Decode.category(), Category::Decode);
        assert_eq!(Error::AtlTooLow.category(), Category::Authorisation);
        assert_eq!(Error::Integrity.category(), Category::Integrity);
        assert_eq!(Error::Rollback.category(), Category::State);
        assert_eq!(Error::Host.category(), Category::Platform);
        assert_eq!(Error::Tls.category(), Category::Channel);
        assert_eq!(Error::NullPointer.category(), Category::Api);
    }

    #[test]
    fn texts_are_the_c_texts_distinct_and_shown_with_the_code() {
        for (i, e) in Error::ALL.iter().enumerate() {
            assert_eq!(e.as_str().as_bytes(), e.as_cstr().to_bytes());
            assert!(!e.as_str().is_empty());
            for other in &Error::ALL[i + 1..] {
                assert_ne!(e.as_str(), other.as_str(), "{e:?} and {other:?}");
            }
        }
        assert_eq!(Error::Internal.as_str(), "internal error; call refused");
        assert_eq!(
            alloc::format!("{}", Error::Internal),
            alloc::format!(
                "internal error; call refused (rewire error {})",
                Error::Internal.code()
            )
        );
    }
}
