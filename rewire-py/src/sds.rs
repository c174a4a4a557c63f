//! The SDS state machine (rewire_core::Sds) as a Python class. Registry,
//! request signing and the ledger's logic are all the core's; this only
//! converts arguments and results.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rewire_core::sds::MigrationPhase;
use rewire_core::{EnclaveId, Error, HostId, LedgerEvent as CoreEvent, PublicKey, RequestId};

use crate::errors::{to_py, IntoPy};
use crate::keys::SigningKey;

/// `("certified", root)` or `("pinned", None)`.
type Provenance<'py> = (&'static str, Option<Bound<'py, PyBytes>>);

pub fn arr<const N: usize>(v: &[u8]) -> PyResult<[u8; N]> {
    v.try_into().map_err(|_| to_py(Error::InvalidArgument))
}

pub fn host_arg(v: &[u8]) -> PyResult<HostId> {
    Ok(PublicKey(arr::<32>(v)?))
}

pub fn bytes<'py>(py: Python<'py>, b: &[u8]) -> Py<PyBytes> {
    PyBytes::new(py, b).unbind()
}

/// What a signed proof changed in the ledger.
#[pyclass(module = "librewire", frozen, get_all)]
pub struct LedgerEvent {
    /// "released", "activated", "aborted" or "dropped".
    pub kind: &'static str,
    pub enclave_id: Py<PyBytes>,
    /// The host the enclave now belongs to (released/activated/aborted), or
    /// the host whose pending copy is gone (dropped).
    pub host: Py<PyBytes>,
    /// The enclave's epoch after the event (None for dropped).
    pub epoch: Option<u64>,
}

#[pymethods]
impl LedgerEvent {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "LedgerEvent(kind={:?}, enclave_id={}, host={}…, epoch={})",
            self.kind,
            hex(self.enclave_id.as_bytes(py)),
            &hex(self.host.as_bytes(py))[..16],
            self.epoch.map_or("None".to_string(), |e| e.to_string())
        )
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn ledger_event(py: Python<'_>, e: &CoreEvent) -> LedgerEvent {
    let (kind, enclave, host, epoch) = match e {
        CoreEvent::Released {
            enclave,
            target,
            epoch,
        } => ("released", enclave, target, Some(*epoch)),
        CoreEvent::Activated {
            enclave,
            host,
            epoch,
        } => ("activated", enclave, host, Some(*epoch)),
        CoreEvent::Aborted {
            enclave,
            host,
            epoch,
        } => ("aborted", enclave, host, Some(*epoch)),
        CoreEvent::Dropped { enclave, host } => ("dropped", enclave, host, None),
    };
    LedgerEvent {
        kind,
        enclave_id: bytes(py, enclave),
        host: bytes(py, &host.0),
        epoch,
    }
}

/// An open migration in the ledger.
#[pyclass(module = "librewire", frozen, get_all)]
pub struct MigrationRecord {
    pub request_id: Py<PyBytes>,
    pub source: Py<PyBytes>,
    pub target: Py<PyBytes>,
    /// The epoch the request was made at.
    pub epoch: u64,
    /// "ordered" (no proof yet) or "released" (the source committed).
    pub phase: &'static str,
    /// The encoded order for the source (empty if unknown).
    pub order: Py<PyBytes>,
}

/// An enclave in the registry and ledger.
#[pyclass(module = "librewire", frozen, get_all)]
pub struct EnclaveRecord {
    pub enclave_id: Py<PyBytes>,
    pub measurement: Py<PyBytes>,
    pub platform: u64,
    pub min_atl: u64,
    pub policy: Py<PyBytes>,
    /// The host the enclave belongs to, and its epoch there.
    pub location: Py<PyBytes>,
    pub epoch: u64,
    pub migration: Option<Py<MigrationRecord>>,
}

#[pymethods]
impl EnclaveRecord {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "EnclaveRecord(enclave_id={}, location={}…, epoch={}, migrating={})",
            hex(self.enclave_id.as_bytes(py)),
            &hex(self.location.as_bytes(py))[..16],
            self.epoch,
            if self.migration.is_some() {
                "True"
            } else {
                "False"
            }
        )
    }
}

/// A host in the registry.
#[pyclass(module = "librewire", frozen, get_all)]
pub struct HostRecord {
    pub host_id: Py<PyBytes>,
    pub platform: u64,
    pub atl: u64,
    pub sm_key: Py<PyBytes>,
    pub endorsement: Py<PyBytes>,
}

/// The SDS: registry of hosts and enclaves, request signing, and the ledger,
/// all in the core's state machine. Persist `to_bytes()` after every change.
#[pyclass(module = "librewire")]
pub struct Sds {
    pub inner: rewire_core::Sds,
}

#[pymethods]
impl Sds {
    #[new]
    fn new(key: &SigningKey) -> Sds {
        Sds {
            inner: rewire_core::Sds::new(key.key.clone()),
        }
    }

    /// Restore a ledger written by `to_bytes()` for the same key.
    #[staticmethod]
    fn from_bytes(key: &SigningKey, snapshot: &[u8]) -> PyResult<Sds> {
        Ok(Sds {
            inner: rewire_core::Sds::from_bytes(key.key.clone(), snapshot).py_err()?,
        })
    }

    /// The whole registry and ledger as deterministic CBOR (no secrets).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.inner.to_bytes().py_err()?))
    }

    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.public_key().0)
    }

    /// Trust a device-key provenance root (a manufacturer's or the
    /// operator's CA public key) to certify device keys.
    fn add_device_root(&mut self, root: &[u8]) -> PyResult<()> {
        self.inner.add_device_root(PublicKey(arr::<32>(root)?));
        Ok(())
    }

    /// Record a device key's provenance from its device certificate (signed
    /// by a registered root, obtained out of band). Returns the device key.
    fn certify_device<'py>(
        &mut self,
        py: Python<'py>,
        certificate: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        let d = self.inner.certify_device(certificate).py_err()?;
        Ok(PyBytes::new(py, &d.0))
    }

    /// `certify_device` for the device `sm_certificate` names (PeerMismatch
    /// for another device's certificate, nothing recorded).
    fn certify_device_of<'py>(
        &mut self,
        py: Python<'py>,
        device_certificate: &[u8],
        sm_certificate: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        let d = self
            .inner
            .certify_device_of(device_certificate, sm_certificate)
            .py_err()?;
        Ok(PyBytes::new(py, &d.0))
    }

    /// The operator vouches for a device key by hand: the recorded exception.
    fn pin_device(&mut self, host_id: &[u8]) -> PyResult<()> {
        self.inner.pin_device(PublicKey(arr::<32>(host_id)?));
        Ok(())
    }

    /// Why the SDS accepts a device key: ``("certified", root)``,
    /// ``("pinned", None)``, or None.
    fn provenance<'py>(
        &self,
        py: Python<'py>,
        host_id: &[u8],
    ) -> PyResult<Option<Provenance<'py>>> {
        Ok(
            match self.inner.provenance(&PublicKey(arr::<32>(host_id)?)) {
                None => None,
                Some(rewire_core::sds::Provenance::Pinned) => Some(("pinned", None)),
                Some(rewire_core::sds::Provenance::Certified { root }) => {
                    Some(("certified", Some(PyBytes::new(py, &root.0))))
                }
            },
        )
    }

    /// Register or re-endorse a host from its device-signed SM certificate.
    /// Its device key needs provenance first (`certify_device` or
    /// `pin_device`). `platform` (keyword) says what code the host runs
    /// (`PLATFORM_RISCV64`, `PLATFORM_AARCH64`). Returns the SDS-signed
    /// HostEndorsement.
    #[pyo3(signature = (certificate, sm_measurements, atl, not_before, not_after, *, platform))]
    #[allow(clippy::too_many_arguments)] // the Python signature
    fn endorse_host<'py>(
        &mut self,
        py: Python<'py>,
        certificate: &[u8],
        sm_measurements: Vec<Vec<u8>>,
        atl: u64,
        not_before: u64,
        not_after: u64,
        platform: u64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let ms = sm_measurements
            .iter()
            .map(|m| arr::<32>(m))
            .collect::<PyResult<Vec<_>>>()?;
        let e = self
            .inner
            .endorse_host(certificate, ms, platform, atl, not_before, not_after)
            .py_err()?;
        Ok(PyBytes::new(py, &e))
    }

    /// Register an enclave, its code built for `platform` (keyword), placed
    /// on `host` at epoch 0. Returns its signed policy. A host of another
    /// platform is `PlatformMismatch`.
    #[pyo3(signature = (enclave_id, measurement, min_atl, host, *, platform))]
    fn register_enclave<'py>(
        &mut self,
        py: Python<'py>,
        enclave_id: &[u8],
        measurement: &[u8],
        min_atl: u64,
        host: &[u8],
        platform: u64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let p = self
            .inner
            .register_enclave(
                arr(enclave_id)?,
                arr(measurement)?,
                platform,
                min_atl,
                host_arg(host)?,
            )
            .py_err()?;
        Ok(PyBytes::new(py, &p))
    }

    /// Sign a migration order. `request_id` must be 16 fresh random bytes;
    /// `deadline` is wall time in seconds. Returns the order for the source.
    fn order<'py>(
        &mut self,
        py: Python<'py>,
        enclave_id: &[u8],
        target: &[u8],
        request_id: &[u8],
        deadline: u64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let o = self
            .inner
            .order(
                &arr(enclave_id)?,
                host_arg(target)?,
                arr(request_id)?,
                deadline,
            )
            .py_err()?;
        Ok(PyBytes::new(py, &o))
    }

    /// Withdraw an order that was certainly never sent.
    fn withdraw(&mut self, enclave_id: &[u8], request_id: &[u8]) -> PyResult<()> {
        self.inner
            .withdraw(&arr(enclave_id)?, &arr(request_id)?)
            .py_err()
    }

    /// Take a signed proof from an SM (RELEASE, ABORT, ACTIVE, DROPPED).
    /// Forged, misdirected or stale proofs raise and change nothing.
    fn handle(&mut self, py: Python<'_>, message: &[u8]) -> PyResult<LedgerEvent> {
        let e = self.inner.handle(message).py_err()?;
        Ok(ledger_event(py, &e))
    }

    /// Messages to re-send to settle what is in doubt: [(host, message)].
    fn resolution(&mut self, py: Python<'_>) -> Vec<(Py<PyBytes>, Py<PyBytes>)> {
        self.inner
            .resolution()
            .into_iter()
            .map(|(h, m)| (bytes(py, &h.0), bytes(py, &m)))
            .collect()
    }

    /// Queries asking each enclave's host for its latest proof: [(host, message)].
    fn audit(&self, py: Python<'_>) -> Vec<(Py<PyBytes>, Py<PyBytes>)> {
        self.inner
            .audit()
            .into_iter()
            .map(|(h, m)| (bytes(py, &h.0), bytes(py, &m)))
            .collect()
    }

    /// Whether nothing is in doubt: no open migration, no pending cleanup.
    fn is_settled(&self) -> bool {
        self.inner.is_settled_all()
    }

    fn host(&self, py: Python<'_>, host_id: &[u8]) -> PyResult<Option<HostRecord>> {
        let h = host_arg(host_id)?;
        Ok(self.inner.host(&h).map(|e| HostRecord {
            host_id: bytes(py, &h.0),
            platform: e.platform,
            atl: e.atl,
            sm_key: bytes(py, &e.sm_key.0),
            endorsement: bytes(py, &e.endorsement),
        }))
    }

    fn enclave(&self, py: Python<'_>, enclave_id: &[u8]) -> PyResult<Option<EnclaveRecord>> {
        let id: EnclaveId = arr(enclave_id)?;
        match self.inner.enclave(&id) {
            None => Ok(None),
            Some(_) => Ok(Some(enclave_record(py, &self.inner, &id)?)),
        }
    }

    fn enclaves(&self, py: Python<'_>) -> PyResult<Vec<EnclaveRecord>> {
        let ids: Vec<EnclaveId> = self.inner.enclaves().map(|(id, _)| *id).collect();
        ids.iter()
            .map(|id| enclave_record(py, &self.inner, id))
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "Sds(public_key={}…, enclaves={})",
            &hex(&self.inner.public_key().0)[..16],
            self.inner.enclaves().count()
        )
    }
}

pub fn enclave_record(
    py: Python<'_>,
    sds: &rewire_core::Sds,
    id: &EnclaveId,
) -> PyResult<EnclaveRecord> {
    let e = sds
        .enclave(id)
        .ok_or_else(|| to_py(Error::UnknownEnclave))?;
    let migration = match &e.migration {
        None => None,
        Some(m) => Some(Py::new(
            py,
            MigrationRecord {
                request_id: bytes(py, &m.request_id),
                source: bytes(py, &m.source.0),
                target: bytes(py, &m.target.0),
                epoch: m.epoch,
                phase: match m.phase {
                    MigrationPhase::Ordered => "ordered",
                    MigrationPhase::Released(_) => "released",
                },
                order: bytes(py, &m.order),
            },
        )?),
    };
    Ok(EnclaveRecord {
        enclave_id: bytes(py, id),
        measurement: bytes(py, &e.measurement),
        platform: e.platform,
        min_atl: e.min_atl,
        policy: bytes(py, &e.policy),
        location: bytes(py, &e.location.0),
        epoch: e.epoch,
        migration,
    })
}

/// A fresh request id is 16 random bytes; helper kept in Rust for one place.
#[allow(dead_code)]
pub fn request_id_arg(v: &[u8]) -> PyResult<RequestId> {
    arr(v)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Sds>()?;
    m.add_class::<LedgerEvent>()?;
    m.add_class::<EnclaveRecord>()?;
    m.add_class::<MigrationRecord>()?;
    m.add_class::<HostRecord>()?;
    Ok(())
}
