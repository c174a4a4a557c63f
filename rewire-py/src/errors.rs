//! The exception hierarchy, and the one function that maps a core error to it.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyList;
use rewire_core::Error;

create_exception!(
    librewire,
    RewireError,
    PyException,
    "Any librewire failure; `.code` and `.name` say which."
);
create_exception!(
    librewire,
    DecodeError,
    RewireError,
    "1xx: not a well-formed librewire object."
);
create_exception!(
    librewire,
    AuthorisationError,
    RewireError,
    "2xx: authorisation (G1) refused."
);
create_exception!(
    librewire,
    IntegrityError,
    RewireError,
    "3xx: integrity (G4) check failed."
);
create_exception!(
    librewire,
    StateError,
    RewireError,
    "4xx: replay or protocol state."
);
create_exception!(
    librewire,
    ReplayError,
    StateError,
    "Replay, Duplicate or StaleEpoch: already acted on."
);
create_exception!(
    librewire,
    RollbackError,
    StateError,
    "The journal was rolled back."
);
create_exception!(
    librewire,
    MigrationTimeout,
    StateError,
    "408: the migration timed out before it committed and was aborted (a decided outcome). \
     Not Python's TimeoutError: giving up waiting is `rewire.OutcomeInDoubt`."
);
create_exception!(
    librewire,
    PlatformError,
    RewireError,
    "5xx: platform or enclave framework."
);
create_exception!(
    librewire,
    ChannelError,
    RewireError,
    "6xx: the attested channel."
);
create_exception!(
    librewire,
    ApiError,
    RewireError,
    "7xx: API misuse at the language boundary."
);

/// The variant's name, e.g. "StaleEpoch" (fieldless enum: Debug is the name).
pub fn error_name(e: Error) -> String {
    format!("{e:?}")
}

/// Map a core error to its exception class, with `.code` and `.name` set.
/// The text is the core's fixed, secret-free description.
pub fn to_py(e: Error) -> PyErr {
    Python::attach(|py| {
        let msg = e.to_string();
        let err = match e {
            Error::Replay | Error::Duplicate | Error::StaleEpoch => ReplayError::new_err(msg),
            Error::Rollback => RollbackError::new_err(msg),
            Error::Timeout => MigrationTimeout::new_err(msg),
            _ => match e.code() / 100 {
                1 => DecodeError::new_err(msg),
                2 => AuthorisationError::new_err(msg),
                3 => IntegrityError::new_err(msg),
                4 => StateError::new_err(msg),
                5 => PlatformError::new_err(msg),
                6 => ChannelError::new_err(msg),
                7 => ApiError::new_err(msg),
                _ => RewireError::new_err(msg),
            },
        };
        let v = err.value(py);
        // Setting attributes on a fresh exception instance cannot fail in
        // practice; if it did, the exception is still the right class.
        let _ = v.setattr("code", e.code());
        let _ = v.setattr("name", error_name(e));
        err
    })
}

/// `?`-friendly conversion.
pub trait IntoPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, Error> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// The exception for a code (for tools that get codes over the wire).
#[pyfunction]
pub fn error_for_code(
    py: Python<'_>,
    code: u32,
) -> PyResult<Py<pyo3::exceptions::PyBaseException>> {
    match Error::from_code(code) {
        Some(e) => Ok(to_py(e).into_value(py)),
        None => Err(to_py(Error::InvalidArgument)),
    }
}

/// Every error: (code, name, description).
#[pyfunction]
pub fn error_codes(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let rows: Vec<(u32, String, &'static str)> = Error::ALL
        .iter()
        .map(|e| (e.code(), error_name(*e), e.as_str()))
        .collect();
    PyList::new(py, rows)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let classes = [
        py.get_type::<RewireError>(),
        py.get_type::<DecodeError>(),
        py.get_type::<AuthorisationError>(),
        py.get_type::<IntegrityError>(),
        py.get_type::<StateError>(),
        py.get_type::<ReplayError>(),
        py.get_type::<RollbackError>(),
        py.get_type::<MigrationTimeout>(),
        py.get_type::<PlatformError>(),
        py.get_type::<ChannelError>(),
        py.get_type::<ApiError>(),
    ];
    for c in classes {
        // Class-level defaults for exceptions raised from Python code.
        if c.is(py.get_type::<RewireError>()) {
            c.setattr("code", 0u32)?;
            c.setattr("name", "RewireError")?;
        }
        m.add(c.name()?, c)?;
    }
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(error_for_code, m)?)?;
    Ok(())
}
