//! The host link's framing (`rewire_core::link`) for `rewire.net`: Python
//! does the sockets and TLS, the core decides what a frame is.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rewire_core::link::{self, Decoder, Directory, Info, Kind, Peer};
use rewire_core::Error;

use crate::errors::IntoPy;

fn kind(k: u8) -> Result<Kind, Error> {
    // The decoder is the one place that knows the numbers: decode a header.
    let mut d = Decoder::new();
    d.push(&[b'R', b'L', link::VERSION, k, 0, 0, 0, 0])?;
    match d.next()? {
        Some(f) => Ok(f.kind),
        None => Err(Error::Internal),
    }
}

/// Encode one link frame of type `kind` (`rewire.net.K_*`).
#[pyfunction]
pub fn link_encode<'py>(
    py: Python<'py>,
    kind_: u8,
    payload: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let k = kind(kind_).py_err()?;
    Ok(PyBytes::new(py, &link::encode(k, payload).py_err()?))
}

/// Strict incremental decoder of link frames (one per connection).
#[pyclass(module = "librewire._rewire")]
pub struct LinkDecoder(Decoder);

#[pymethods]
impl LinkDecoder {
    #[new]
    fn new() -> Self {
        LinkDecoder(Decoder::new())
    }

    /// Append received bytes (DecodeError once more than two frames' worth is buffered).
    fn push(&mut self, data: &[u8]) -> PyResult<()> {
        self.0.push(data).py_err()
    }

    /// The next whole frame as ``(kind, payload)``, or None if more bytes are needed.
    fn next<'py>(&mut self, py: Python<'py>) -> PyResult<Option<(u8, Bound<'py, PyBytes>)>> {
        Ok(self
            .0
            .next()
            .py_err()?
            .map(|f| (f.kind as u8, PyBytes::new(py, &f.payload))))
    }
}

/// The payload of a PEERS frame: ``[(host_id, name, address), ...]``.
#[pyfunction]
pub fn link_directory<'py>(
    py: Python<'py>,
    peers: Vec<(Vec<u8>, String, String)>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut d = Directory::default();
    for (h, name, address) in peers {
        let host_id: [u8; 32] = h
            .as_slice()
            .try_into()
            .map_err(|_| Error::InvalidArgument)
            .py_err()?;
        d.0.push(Peer {
            host_id,
            name,
            address,
        });
    }
    Ok(PyBytes::new(py, &d.encode().py_err()?))
}

type Bytes4<'py> = (
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
);

/// An INFO payload as ``(host_id, sm_measurement, enclave_measurement, sm_certificate)``.
#[pyfunction]
pub fn link_info<'py>(py: Python<'py>, payload: &[u8]) -> PyResult<Bytes4<'py>> {
    let i = Info::decode(payload).py_err()?;
    Ok((
        PyBytes::new(py, &i.host_id),
        PyBytes::new(py, &i.sm_measurement),
        PyBytes::new(py, &i.enclave_measurement),
        PyBytes::new(py, &i.certificate),
    ))
}

/// An ERROR payload as ``(code, text)``; and the payload for one.
#[pyfunction]
pub fn link_error(payload: &[u8]) -> PyResult<(u16, String)> {
    link::decode_error(payload).py_err()
}

/// Whether ``name`` can name a host on the link (a DNS label).
#[pyfunction]
pub fn link_valid_name(name: &str) -> bool {
    link::valid_name(name)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LinkDecoder>()?;
    m.add_function(wrap_pyfunction!(link_encode, m)?)?;
    m.add_function(wrap_pyfunction!(link_directory, m)?)?;
    m.add_function(wrap_pyfunction!(link_info, m)?)?;
    m.add_function(wrap_pyfunction!(link_error, m)?)?;
    m.add_function(wrap_pyfunction!(link_valid_name, m)?)?;
    m.add("LINK_MAX_PAYLOAD", link::MAX_PAYLOAD)?;
    Ok(())
}
