//! The key hierarchy, and the boot stage's half of it.
//!
//! A monitor's keys come from a boot chain, the way Keystone's secure boot
//! and TF-A's measured boot hand them out (docs/porting.md, "Boot chain"):
//!
//! ```text
//! device root (fused; only the boot stage reads it)
//!  ├─ device key            signs the SmCertificate; its public half is the host id
//!  └─ SM secret             bound to the measurement of the whole SM image
//!      ├─ SM key            TLS key; signs READY and the decisions
//!      ├─ journal key       seals the journal
//!      └─ sealing keys      per enclave (measurement, id, key id)
//! ```
//!
//! The boot stage (ROM or first-stage loader) measures the SM image it is
//! about to run, calls [`handoff`], gives the SM the [`Handoff`] and the
//! device public key, wipes the root (and locks it away, where the hardware
//! can) and jumps. The SM builds its [`crate::monitor::Identity`] with
//! [`crate::monitor::Identity::from_handoff`]: it never holds the device
//! root, so no SM build, an old vulnerable one or a modified one, can derive
//! another build's SM key, journal key or sealing keys, nor sign a
//! certificate for a build it is not.
//!
//! Every derivation is HKDF-SHA256 with the label as salt and the context
//! as info (docs/protocol.md §1.2); this module is the only place that
//! spells them.

use alloc::vec::Vec;

use crate::crypto::{hkdf, sha256, PublicKey, Secret, SigningKey};
use crate::error::Result;
use crate::wire::{EnclaveId, Measurement, SignedBody, SmCertificate};

/// What the boot stage hands the SM (with the device public key, which the
/// certificate also names): the SM secret and the device-signed certificate
/// of this SM build. The secret is wiped on drop and never printed.
pub struct Handoff {
    /// The SM-bound secret every SM key is derived from.
    pub sm_secret: Secret,
    /// `SmCertificate { device, sm_measurement, sm_key }` signed by the
    /// device key (COSE_Sign1, docs/protocol.md §2).
    pub certificate: Vec<u8>,
}

impl core::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Handoff")
            .field("certificate_len", &self.certificate.len())
            .finish_non_exhaustive()
    }
}

/// The measurement of an SM image: SHA-256 of every byte the boot stage
/// loads and runs (code, read-only data and initialised data, as one
/// contiguous image), not only its text.
pub fn measure_image(image: &[u8]) -> Measurement {
    sha256(image)
}

/// The device key, from the device root (boot stage and provisioning only).
pub fn device_key(device_root: &Secret) -> Result<SigningKey> {
    SigningKey::from_seed(hkdf(device_root.expose(), b"rewire/device-key/v1", &[])?)
}

/// The host id a device root gives: its device public key (what a
/// manufacturer or operator records at provisioning).
pub fn device_public(device_root: &Secret) -> Result<PublicKey> {
    Ok(device_key(device_root)?.public())
}

/// The SM secret of the SM build measured `sm_measurement` on this device.
fn sm_secret(device_root: &Secret, sm_measurement: &Measurement) -> Result<Secret> {
    hkdf(
        device_root.expose(),
        b"rewire/sm-secret/v1",
        &[sm_measurement],
    )
}

/// The boot stage: derive the SM secret of the SM image measured
/// `sm_measurement` and sign its certificate with the device key, which is
/// dropped (wiped) before this returns. Call it with the measurement of the
/// whole image ([`measure_image`]), then wipe the root before jumping to
/// the SM.
pub fn handoff(device_root: &Secret, sm_measurement: &Measurement) -> Result<Handoff> {
    let device = device_key(device_root)?;
    let secret = sm_secret(device_root, sm_measurement)?;
    let certificate = SmCertificate {
        device: device.public(),
        sm_measurement: *sm_measurement,
        sm_key: sm_key(&secret)?.public(),
    }
    .sign(&device)?;
    Ok(Handoff {
        sm_secret: secret,
        certificate,
    })
}

/// The SM key (Ed25519), from the SM secret.
pub fn sm_key(sm_secret: &Secret) -> Result<SigningKey> {
    SigningKey::from_seed(hkdf(sm_secret.expose(), b"rewire/sm-key/v2", &[])?)
}

/// The journal key, from the SM secret (so bound to this device and this
/// SM build).
pub fn journal_key(sm_secret: &Secret) -> Result<Secret> {
    hkdf(sm_secret.expose(), b"rewire/journal/v2", &[])
}

/// An enclave's sealing key under one key id, from the SM secret: bound to
/// this device, this SM build, the enclave's measurement *and* its id, so
/// that two enclaves running the same code on one host cannot open each
/// other's sealed data.
pub fn sealing_key(
    sm_secret: &Secret,
    measurement: &Measurement,
    enclave_id: &EnclaveId,
    key_id: &[u8],
) -> Result<Secret> {
    hkdf(
        sm_secret.expose(),
        b"rewire/seal/v3",
        &[measurement, enclave_id, key_id],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::verify_as;

    #[test]
    fn a_handoff_carries_a_certificate_for_its_own_secret_and_build() {
        let root = Secret::from_bytes([7; 32]);
        let h = handoff(&root, &[1; 32]).unwrap(); // safe: test
        let cert: SmCertificate =
            verify_as(&h.certificate, &device_public(&root).unwrap()).unwrap(); // safe: test
        assert_eq!(cert.sm_measurement, [1; 32]);
        assert_eq!(cert.sm_key, sm_key(&h.sm_secret).unwrap().public()); // safe: test
        let shown = alloc::format!("{h:?}");
        assert!(shown.contains("certificate_len") && !shown.contains("sm_secret"));
    }

    #[test]
    fn another_build_gets_another_secret_and_every_key_differs() {
        let root = Secret::from_bytes([7; 32]);
        let (a, b) = (
            handoff(&root, &[1; 32]).unwrap(), // safe: test
            handoff(&root, &[2; 32]).unwrap(), // safe: test
        );
        assert_ne!(a.sm_secret.expose(), b.sm_secret.expose());
        assert_ne!(
            journal_key(&a.sm_secret).unwrap().expose(), // safe: test
            journal_key(&b.sm_secret).unwrap().expose()  // safe: test
        );
        let seal_a = sealing_key(&a.sm_secret, &[3; 32], &[4; 16], b"k").unwrap(); // safe: test
        let seal_b = sealing_key(&b.sm_secret, &[3; 32], &[4; 16], b"k").unwrap(); // safe: test
        assert_ne!(seal_a.expose(), seal_b.expose());
        // The same build on another device: another secret too.
        let c = handoff(&Secret::from_bytes([8; 32]), &[1; 32]).unwrap(); // safe: test
        assert_ne!(a.sm_secret.expose(), c.sm_secret.expose());
    }

    #[test]
    fn the_image_measurement_covers_every_byte() {
        let mut image = alloc::vec![0u8; 4096];
        let m = measure_image(&image);
        image[4095] ^= 1; // a byte of initialised data, at the very end
        assert_ne!(measure_image(&image), m);
    }
}
