//! `rewire._rewire`: the Rust half of the Python package `rewire`.
//!
//! A thin skin over rewire-core: the SDS state machine, keys, the
//! simulated fleet (real monitors over the software platform) and object
//! inspection. All protocol logic stays in the core; every core error is
//! mapped to one exception class by `errors::to_py`.
#![forbid(unsafe_code)]

use pyo3::prelude::*;

mod errors;
mod inspect;
mod keys;
mod link;
mod log;
mod sds;
mod sim;

#[pymodule]
fn _rewire(m: &Bound<'_, PyModule>) -> PyResult<()> {
    log::install();
    m.add("__version__", rewire_core::VERSION)?;
    errors::register(m)?;
    keys::register(m)?;
    sds::register(m)?;
    sim::register(m)?;
    link::register(m)?;
    m.add_function(wrap_pyfunction!(inspect::inspect, m)?)?;
    Ok(())
}
