//! rewire-core's `tracing` events → Python's `logging`, logger "librewire".
//!
//! A `rewire_core::log::LineSink` (the subscriber and the rendering are the
//! core's, shared with C's log callback): each event as `message k=v …`, handed to
//! `logging.getLogger("librewire").log(level, text)`. The core's events carry
//! step names and error codes only, never secrets.

use pyo3::prelude::*;
use rewire_core::log::{LineSink, Lines};
use tracing_core::{Event, Level};

struct PyLogger;

fn py_level(l: &Level) -> u32 {
    match *l {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        _ => 5,
    }
}

impl LineSink for PyLogger {
    fn enabled(&self, _: &Level) -> bool {
        true
    }
    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let level = py_level(meta.level());
        let mut line = String::new();
        rewire_core::log::render(event, &mut line);
        Python::attach(|py| {
            let r = (|| -> PyResult<()> {
                let logger = py
                    .import("logging")?
                    .call_method1("getLogger", ("librewire",))?;
                if !logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
                    return Ok(());
                }
                let text = format!("{line} [{}]", meta.target());
                logger.call_method1("log", (level, text))?;
                Ok(())
            })();
            // A failing logging handler must not turn into a protocol error.
            if let Err(e) = r {
                drop(e);
            }
        });
    }
}

/// Install the forwarder as the process-wide default (once; a host program
/// that installed its own subscriber first keeps it).
pub fn install() {
    let _ = tracing::subscriber::set_global_default(Lines(PyLogger));
}
