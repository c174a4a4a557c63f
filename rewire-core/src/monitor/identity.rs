//! The monitor's keys and evidence.

use alloc::vec::Vec;

use crate::boot;
use crate::crypto::{PublicKey, Secret, SigningKey};
use crate::error::{Error, Result};
use crate::wire::{verify_as, EnclaveId, HostId, Measurement, SmCertificate};

/// A monitor's keys and evidence, built from what its boot stage hands it
/// ([`crate::boot`]): the SM secret and the device-signed certificate of
/// this SM build. It never holds the device root.
pub struct Identity {
    pub(super) sm_secret: Secret,
    pub(super) sm_measurement: Measurement,
    device_public: PublicKey,
    pub(super) sm_key: SigningKey,
    pub(super) certificate: Vec<u8>,
}

impl core::fmt::Debug for Identity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Identity")
            .field("host", &self.device_public)
            .field("sm_key", &self.sm_key.public())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// The SM's identity from its boot stage's handoff ([`boot::handoff`]):
    /// the SM secret, the certificate, and the device public key the boot
    /// stage (or the hardware) vouches for. Refused: a certificate not
    /// signed by that device key or naming another device (`UnknownSigner`,
    /// `BadSignature`, `PeerMismatch`, decode errors), or naming an SM key
    /// the secret does not give (`InvalidArgument`: the secret and the
    /// certificate come from different builds or devices).
    pub fn from_handoff(
        sm_secret: Secret,
        certificate: &[u8],
        device_public: &PublicKey,
    ) -> Result<Identity> {
        let cert: SmCertificate = verify_as(certificate, device_public)?;
        if cert.device != *device_public {
            return Err(Error::PeerMismatch);
        }
        let sm_key = boot::sm_key(&sm_secret)?;
        if sm_key.public() != cert.sm_key {
            return Err(Error::InvalidArgument);
        }
        Ok(Identity {
            sm_secret,
            sm_measurement: cert.sm_measurement,
            device_public: *device_public,
            sm_key,
            certificate: certificate.to_vec(),
        })
    }

    /// Both halves in one place: the boot stage ([`boot::handoff`]) run on
    /// `device_root`, then [`Identity::from_handoff`]. For simulations,
    /// tests and hosts that have no boot stage of their own; a monitor whose
    /// boot chain hands it the SM secret uses `from_handoff` and never sees
    /// the root.
    pub fn derive(device_root: Secret, sm_measurement: Measurement) -> Result<Identity> {
        let h = boot::handoff(&device_root, &sm_measurement)?;
        let device = boot::device_public(&device_root)?;
        drop(device_root);
        Identity::from_handoff(h.sm_secret, &h.certificate, &device)
    }
    /// The host id: the device public key.
    pub fn host_id(&self) -> HostId {
        self.device_public
    }
    pub fn sm_public(&self) -> PublicKey {
        self.sm_key.public()
    }
    pub fn sm_measurement(&self) -> Measurement {
        self.sm_measurement
    }
    /// The device-signed SM certificate (evidence, first link).
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }
    /// The SM's signing key, for crate tests that play a compromised SM.
    #[cfg(test)]
    pub(crate) fn sm_signing_key(&self) -> &SigningKey {
        &self.sm_key
    }
    /// An enclave's sealing key on this device (see [`crate::seal`]).
    pub fn sealing_key(
        &self,
        measurement: &Measurement,
        enclave_id: &EnclaveId,
        key_id: &[u8],
    ) -> Result<Secret> {
        boot::sealing_key(&self.sm_secret, measurement, enclave_id, key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::{device_key, device_public, handoff};
    use crate::wire::SignedBody;

    const ROOT: [u8; 32] = [0x11; 32];
    const BUILD_A: Measurement = [0xa; 32];
    const BUILD_B: Measurement = [0xb; 32];

    fn root() -> Secret {
        Secret::from_bytes(ROOT)
    }

    #[test]
    fn the_handoff_gives_the_identity_derive_gives() {
        let h = handoff(&root(), &BUILD_A).unwrap(); // safe: test
        let dev = device_public(&root()).unwrap(); // safe: test
        let a = Identity::from_handoff(h.sm_secret, &h.certificate, &dev).unwrap(); // safe: test
        let b = Identity::derive(root(), BUILD_A).unwrap(); // safe: test
        assert_eq!(a.host_id(), dev);
        assert_eq!(
            (
                a.host_id(),
                a.sm_public(),
                a.sm_measurement(),
                a.certificate()
            ),
            (
                b.host_id(),
                b.sm_public(),
                b.sm_measurement(),
                b.certificate()
            )
        );
        let k = |i: &Identity| *i.sealing_key(&[1; 32], &[2; 16], b"k").unwrap().expose(); // safe: test
        assert_eq!(k(&a), k(&b));
    }

    /// One SM build, given its own handoff, cannot pass for another build
    /// of the same device: the other build's certificate names an SM key its
    /// secret does not give.
    #[test]
    fn a_secret_with_another_builds_certificate_is_refused() {
        let a = handoff(&root(), &BUILD_A).unwrap(); // safe: test
        let b = handoff(&root(), &BUILD_B).unwrap(); // safe: test
        let dev = device_public(&root()).unwrap(); // safe: test
        assert_eq!(
            Identity::from_handoff(a.sm_secret, &b.certificate, &dev).unwrap_err(),
            Error::InvalidArgument
        );
    }

    #[test]
    fn a_certificate_from_another_device_is_refused() {
        let other = Secret::from_bytes([0x22; 32]);
        let h = handoff(&other, &BUILD_A).unwrap(); // safe: test
        let dev = device_public(&root()).unwrap(); // safe: test
        assert_eq!(
            Identity::from_handoff(h.sm_secret, &h.certificate, &dev).unwrap_err(),
            Error::UnknownSigner
        );
    }

    #[test]
    fn a_certificate_naming_another_device_is_refused() {
        let h = handoff(&root(), &BUILD_A).unwrap(); // safe: test
        let dev = device_key(&root()).unwrap(); // safe: test
        let cert = SmCertificate {
            device: PublicKey([0x33; 32]),
            sm_measurement: BUILD_A,
            sm_key: boot::sm_key(&h.sm_secret).unwrap().public(), // safe: test
        }
        .sign(&dev)
        .unwrap(); // safe: test
        assert_eq!(
            Identity::from_handoff(h.sm_secret, &cert, &dev.public()).unwrap_err(),
            Error::PeerMismatch
        );
    }

    #[test]
    fn a_tampered_certificate_is_refused() {
        let h = handoff(&root(), &BUILD_A).unwrap(); // safe: test
        let dev = device_public(&root()).unwrap(); // safe: test
        let mut cert = h.certificate.clone();
        let n = cert.len();
        cert[n - 70] ^= 1; // inside the payload, before the signature
        assert_eq!(
            Identity::from_handoff(h.sm_secret.clone(), &cert, &dev).unwrap_err(),
            Error::BadSignature
        );
        cert = h.certificate.clone();
        cert.push(0);
        assert_eq!(
            Identity::from_handoff(h.sm_secret, &cert, &dev).unwrap_err(),
            Error::TrailingBytes
        );
    }

    /// What an old or modified build learns from its own handoff opens
    /// nothing of another build's: every key differs.
    #[test]
    fn builds_on_one_device_share_no_key() {
        let a = Identity::derive(root(), BUILD_A).unwrap(); // safe: test
        let b = Identity::derive(root(), BUILD_B).unwrap(); // safe: test
        assert_eq!(a.host_id(), b.host_id());
        assert_ne!(a.sm_public(), b.sm_public());
        let k = |i: &Identity| *i.sealing_key(&[1; 32], &[2; 16], b"k").unwrap().expose(); // safe: test
        assert_ne!(k(&a), k(&b));
        assert_ne!(
            boot::journal_key(&a.sm_secret).unwrap().expose(), // safe: test
            boot::journal_key(&b.sm_secret).unwrap().expose()  // safe: test
        );
    }
}
