//! The monitor's keys and evidence.

use alloc::vec::Vec;

use crate::crypto::{hkdf, PublicKey, Secret, SigningKey};
use crate::error::Result;
use crate::seal;
use crate::wire::{EnclaveId, HostId, Measurement, SignedBody, SmCertificate};

/// A monitor's keys and evidence, derived from the device secret as a boot ROM
/// would (Keystone: the bootloader derives the SM key from the device secret
/// and the SM hash, signs the SM report with the device key, then forgets the
/// device key).
pub struct Identity {
    pub(super) device_secret: Secret,
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
    /// Derive every key from the whole device secret and the SM measurement.
    pub fn derive(device_secret: Secret, sm_measurement: Measurement) -> Result<Identity> {
        let device_key =
            SigningKey::from_seed(hkdf(device_secret.expose(), b"rewire/device-key/v1", &[])?)?;
        let sm_key = SigningKey::from_seed(hkdf(
            device_secret.expose(),
            b"rewire/sm-key/v1",
            &[&sm_measurement],
        )?)?;
        let certificate = SmCertificate {
            device: device_key.public(),
            sm_measurement,
            sm_key: sm_key.public(),
        }
        .sign(&device_key)?;
        Ok(Identity {
            device_public: device_key.public(),
            device_secret,
            sm_measurement,
            sm_key,
            certificate,
        })
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
        seal::sealing_key(&self.device_secret, measurement, enclave_id, key_id)
    }
}
