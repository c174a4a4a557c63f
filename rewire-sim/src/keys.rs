//! The fixed keys, SM build, clock origin and test enclave of the simulated
//! world. Fixed, so that tests, fuzz seeds and regression inputs agree.

use rewire_core::wire::{DeviceCertificate, SignedBody};
use rewire_core::{Config, Identity, Measurement, Secret, SigningKey};

/// The SM build every simulated host runs (unless a test reboots one with another).
pub const SM_MEASUREMENT: Measurement = [0x5a; 32];
/// Wall time at clock 0.
pub const WALL0: u64 = 1_800_000_000;
/// Monitor timeout used in the world.
pub const TIMEOUT_MS: u64 = 30_000;

/// The SDS signing key of the fixed world.
pub fn sds_key() -> SigningKey {
    SigningKey::from_seed(Secret::from_bytes([0x5d; 32])).expect("valid seed") // safe: any 32 bytes are a seed
}

/// The manufacturer of the fixed world's devices: the SDS's device-key
/// provenance root.
pub fn manufacturer_key() -> SigningKey {
    SigningKey::from_seed(Secret::from_bytes([0x3f; 32])).expect("valid seed") // safe: any 32 bytes are a seed
}

/// Host `i`'s device certificate, as its manufacturer issued it (out of
/// band: the SDS never takes it from the host).
pub fn device_certificate(i: usize) -> Vec<u8> {
    DeviceCertificate {
        device: identity(i).host_id(),
    }
    .sign(&manufacturer_key())
    .expect("sign") // safe: fixed valid inputs
}

/// Host `i`'s device secret.
pub fn device_secret(i: usize) -> Secret {
    let mut s = [0u8; 32];
    s[0] = 0xde;
    s[1] = i as u8;
    s[31] = 0x77;
    Secret::from_bytes(s)
}

/// Host `i`'s identity running [`SM_MEASUREMENT`].
pub fn identity(i: usize) -> Identity {
    Identity::derive(device_secret(i), SM_MEASUREMENT).expect("identity") // safe: fixed valid inputs
}

/// The monitors' configuration in the fixed world.
pub fn config() -> Config {
    let mut c = Config::new(sds_key().public());
    c.timeout_ms = TIMEOUT_MS;
    c
}

/// What a test enclave looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub code: Vec<u8>,
    pub state: Vec<u8>,
    pub sealed: Vec<u8>,
}

impl Image {
    /// A deterministic image with `state_len` bytes of state.
    pub fn sample(tag: u8, state_len: usize) -> Image {
        let mut code = b"\x7fELF enclave ".to_vec();
        code.extend((0..3000u32).map(|i| (i as u8).wrapping_mul(31).wrapping_add(tag)));
        let state = (0..state_len)
            .map(|i| ((i as u32).wrapping_mul(2654435761) >> 13) as u8 ^ tag)
            .collect();
        let sealed = format!("sealed secret of enclave {tag}: MARKER-{tag:03}").into_bytes();
        Image {
            code,
            state,
            sealed,
        }
    }
    pub fn measurement(&self) -> [u8; 32] {
        rewire_core::crypto::sha256(&self.code)
    }
    /// SHA-256 of each section's plaintext (what END carries).
    /// The plaintext length of each section, as OFFER announces them and
    /// READY's report data binds them.
    pub fn lengths(&self) -> [u64; 3] {
        [
            self.code.len() as u64,
            self.state.len() as u64,
            self.sealed.len() as u64,
        ]
    }
}
