//! Key material: the SDS signing key and simulated hosts' device secrets.
//!
//! Secrets never cross into Python: they are generated from the OS's
//! randomness, written to and read from files (mode 0600) here in Rust, held
//! in zeroizing buffers, and print as `[redacted]`.
//!
//! File formats:
//! * SDS signing key: PKCS#8 v1 PEM of the Ed25519 seed (RFC 8410), i.e.
//!   `-----BEGIN PRIVATE KEY-----` around base64 of
//!   `302e020100300506032b657004220420 || seed`. OpenSSL reads it.
//! * Device secret of a simulated host: `-----BEGIN REWIRE DEVICE SECRET-----`
//!   around base64 of the 32-byte secret.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rewire_core::{Error, Identity, Secret};
use zeroize::Zeroizing;

use crate::errors::{to_py, IntoPy};

const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const PEM_KEY: &str = "PRIVATE KEY";
const PEM_DEVICE: &str = "REWIRE DEVICE SECRET";

/// The SM build every simulated host runs (the software SM's "measurement").
pub const SIM_SM_MEASUREMENT: [u8; 32] = [0x5a; 32];

/// 32 bytes from the OS's CSPRNG.
pub fn os_random32() -> PyResult<Secret> {
    let mut b = Zeroizing::new([0u8; 32]);
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b[..]))
        .map_err(|_| to_py(Error::Random))?;
    Secret::from_slice(&b[..]).ok_or_else(|| to_py(Error::Random))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(data: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(data.len().div_ceil(3) * 4));
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(text: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() / 4 * 3));
    let mut acc: u32 = 0;
    let mut bits = 0;
    for ch in text.bytes() {
        if ch == b'=' {
            break;
        }
        let v = B64.iter().position(|&x| x == ch).ok_or(Error::Decode)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

fn pem_encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let b = b64_encode(der);
    let mut s = Zeroizing::new(format!("-----BEGIN {label}-----\n"));
    for line in b.as_bytes().chunks(64) {
        s.push_str(core::str::from_utf8(line).unwrap_or(""));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

fn pem_decode(label: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).ok_or(Error::Decode)? + begin.len();
    let stop = text[start..].find(&end).ok_or(Error::Decode)? + start;
    let body: Zeroizing<String> = Zeroizing::new(
        text[start..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    );
    b64_decode(&body)
}

/// Write a secret file: mode 0600 from creation, durable, replaced atomically.
fn write_secret(path: &PathBuf, contents: &[u8], overwrite: bool) -> PyResult<()> {
    if !overwrite && path.exists() {
        return Err(pyo3::exceptions::PyFileExistsError::new_err(format!(
            "{} exists (refusing to overwrite a key)",
            path.display()
        )));
    }
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    Ok(())
}

fn read_secret_file(path: &PathBuf) -> PyResult<Zeroizing<String>> {
    let bytes = Zeroizing::new(fs::read(path)?);
    let s = core::str::from_utf8(&bytes).map_err(|_| to_py(Error::Decode))?;
    Ok(Zeroizing::new(s.to_owned()))
}

fn seed_array(v: &[u8]) -> Result<Secret, Error> {
    Secret::from_slice(v).ok_or(Error::Decode)
}

fn short_hex(b: &[u8]) -> String {
    b.iter().take(8).map(|x| format!("{x:02x}")).collect()
}

/// The SDS's Ed25519 signing key.
#[pyclass(module = "librewire", frozen)]
pub struct SigningKey {
    pub key: rewire_core::SigningKey,
}

#[pymethods]
impl SigningKey {
    /// A fresh key from the OS's randomness.
    #[staticmethod]
    fn generate() -> PyResult<SigningKey> {
        Ok(SigningKey {
            key: rewire_core::SigningKey::from_seed(os_random32()?).py_err()?,
        })
    }

    /// Read a PKCS#8 PEM Ed25519 key file.
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<SigningKey> {
        let text = read_secret_file(&path)?;
        let der = pem_decode(PEM_KEY, &text).py_err()?;
        if der.len() != 48 || der[..16] != PKCS8_PREFIX {
            return Err(to_py(Error::Decode));
        }
        Ok(SigningKey {
            key: rewire_core::SigningKey::from_seed(seed_array(&der[16..]).py_err()?).py_err()?,
        })
    }

    /// Write the key as PKCS#8 PEM, mode 0600. Refuses to overwrite unless asked.
    #[pyo3(signature = (path, overwrite = false))]
    fn save(&self, path: PathBuf, overwrite: bool) -> PyResult<()> {
        let mut der = Zeroizing::new(Vec::with_capacity(48));
        der.extend_from_slice(&PKCS8_PREFIX);
        der.extend_from_slice(self.key.seed().expose());
        let pem = pem_encode(PEM_KEY, &der);
        write_secret(&path, pem.as_bytes(), overwrite)
    }

    /// The 32-byte Ed25519 public key.
    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.key.public().0)
    }

    /// As a device-key provenance root (a manufacturer or the operator's
    /// CA): certify that `device` (32 bytes) is a real device's key. The SDS
    /// accepts the result once this key is one of its device roots.
    fn certify_device<'py>(&self, py: Python<'py>, device: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        use rewire_core::wire::{DeviceCertificate, SignedBody};
        let device = rewire_core::PublicKey(crate::sds::arr::<32>(device)?);
        let cert = DeviceCertificate { device }.sign(&self.key).py_err()?;
        Ok(PyBytes::new(py, &cert))
    }

    fn __repr__(&self) -> String {
        format!(
            "SigningKey(public={}…, secret=[redacted])",
            short_hex(&self.key.public().0)
        )
    }
}

/// A simulated host's device secret (its device root), and what its boot
/// stage hands the SM: the SM secret and the device-signed SM certificate
/// (`rewire_core::boot`). The monitor's identity is built from the handoff
/// alone, as on a real boot chain; the root is kept only to `save` it.
#[pyclass(module = "librewire", frozen)]
pub struct HostIdentity {
    pub secret: Secret,
    pub sm_measurement: [u8; 32],
    sm_secret: Secret,
    host_id: [u8; 32],
    certificate: Vec<u8>,
}

impl HostIdentity {
    pub fn from_secret(secret: Secret, sm_measurement: [u8; 32]) -> PyResult<HostIdentity> {
        let handoff = rewire_core::boot::handoff(&secret, &sm_measurement).py_err()?;
        let host_id = rewire_core::boot::device_public(&secret).py_err()?.0;
        Ok(HostIdentity {
            secret,
            sm_measurement,
            sm_secret: handoff.sm_secret.clone(),
            host_id,
            certificate: handoff.certificate.clone(),
        })
    }

    pub fn identity(&self) -> PyResult<Identity> {
        Identity::from_handoff(
            self.sm_secret.clone(),
            &self.certificate,
            &rewire_core::PublicKey(self.host_id),
        )
        .py_err()
    }

    pub fn host_id_bytes(&self) -> [u8; 32] {
        self.host_id
    }
}

fn measurement_arg(m: Option<Vec<u8>>) -> PyResult<[u8; 32]> {
    match m {
        None => Ok(SIM_SM_MEASUREMENT),
        Some(v) => v
            .as_slice()
            .try_into()
            .map_err(|_| to_py(Error::InvalidArgument)),
    }
}

#[pymethods]
impl HostIdentity {
    /// A fresh device secret. `sm_measurement` defaults to the simulated SM build.
    #[staticmethod]
    #[pyo3(signature = (sm_measurement = None))]
    fn generate(sm_measurement: Option<Vec<u8>>) -> PyResult<HostIdentity> {
        HostIdentity::from_secret(os_random32()?, measurement_arg(sm_measurement)?)
    }

    /// Read a device secret file.
    #[staticmethod]
    #[pyo3(signature = (path, sm_measurement = None))]
    fn load(path: PathBuf, sm_measurement: Option<Vec<u8>>) -> PyResult<HostIdentity> {
        let text = read_secret_file(&path)?;
        let raw = pem_decode(PEM_DEVICE, &text).py_err()?;
        HostIdentity::from_secret(seed_array(&raw).py_err()?, measurement_arg(sm_measurement)?)
    }

    /// Write the device secret, mode 0600.
    #[pyo3(signature = (path, overwrite = false))]
    fn save(&self, path: PathBuf, overwrite: bool) -> PyResult<()> {
        let pem = pem_encode(PEM_DEVICE, self.secret.expose());
        write_secret(&path, pem.as_bytes(), overwrite)
    }

    /// The host id: the device public key (32 bytes).
    #[getter]
    fn host_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.host_id)
    }

    /// The device-signed SM certificate the SDS endorses.
    #[getter]
    fn certificate<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.certificate)
    }

    #[getter]
    fn sm_measurement<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.sm_measurement)
    }

    fn __repr__(&self) -> String {
        format!(
            "HostIdentity(host_id={}…, secret=[redacted])",
            short_hex(&self.host_id)
        )
    }
}

/// SHA-256, as the software enclave framework measures code.
#[pyfunction]
pub fn sha256<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &rewire_core::crypto::sha256(data))
}

/// The device public key (the host id) a 32-byte device root gives, for
/// provisioning: what a manufacturer records, and certifies, when it
/// writes the root into a device (`rewire_core::boot::device_public`).
#[pyfunction]
pub fn device_public_key<'py>(
    py: Python<'py>,
    device_root: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let root = Secret::from_slice(device_root).ok_or_else(|| to_py(Error::InvalidArgument))?;
    let public = rewire_core::boot::device_public(&root).py_err()?;
    Ok(PyBytes::new(py, &public.0))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SigningKey>()?;
    m.add_class::<HostIdentity>()?;
    m.add_function(wrap_pyfunction!(sha256, m)?)?;
    m.add_function(wrap_pyfunction!(device_public_key, m)?)?;
    m.add(
        "SIM_SM_MEASUREMENT",
        PyBytes::new(m.py(), &SIM_SM_MEASUREMENT),
    )?;
    m.add("PLATFORM_RISCV64", rewire_core::wire::PLATFORM_RISCV64)?;
    m.add("PLATFORM_AARCH64", rewire_core::wire::PLATFORM_AARCH64)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn b64_round_trip() {
        for n in 0..70 {
            let v: Vec<u8> = (0..n as u8).collect();
            let e = b64_encode(&v);
            assert_eq!(&b64_decode(&e).unwrap()[..], &v[..]); // safe: test code
        }
        assert_eq!(&*b64_encode(b"foob"), "Zm9vYg==");
    }
}
