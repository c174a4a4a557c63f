//! rewire-core's `tracing` events → Python's `logging`, logger "librewire".
//!
//! A minimal `tracing::Subscriber`: no spans, each event rendered as
//! `message k=v …` by `rewire_core::log::render` (as for C's log callback) and handed to
//! `logging.getLogger("librewire").log(level, text)`. The core's events carry
//! step names and error codes only, never secrets.

use pyo3::prelude::*;
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, Metadata, Subscriber};

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

impl Subscriber for PyLogger {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
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
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Install the forwarder as the process-wide default (once; a host program
/// that installed its own subscriber first keeps it).
pub fn install() {
    let _ = tracing::subscriber::set_global_default(PyLogger);
}
