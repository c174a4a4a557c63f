//! rewire-core's `tracing` events as one line of text, `message k=v …`: the
//! rendering both the C ABI's log callback and the Python binding's
//! `logging` forwarder use. The events carry step names and error codes,
//! never secrets.

use core::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Where rendered events go: [`Lines`] makes a `tracing` subscriber (no
/// spans) of it. The C ABI's log callback and Python's `logging` forwarder
/// are the two sinks.
pub trait LineSink: Send + Sync + 'static {
    /// Whether events at `level` are wanted now.
    fn enabled(&self, level: &Level) -> bool;
    /// One event (render it with [`render`]).
    fn event(&self, event: &Event<'_>);
}

/// A [`LineSink`] as a `tracing` subscriber: events only, spans ignored.
#[derive(Debug)]
pub struct Lines<S>(pub S);

impl<S: LineSink> Subscriber for Lines<S> {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        self.0.enabled(meta.level())
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        self.0.event(event)
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Write `event` as `message k=v …` into `out`. A full `out` (a fixed
/// buffer) truncates the line; nothing fails.
pub fn render(event: &Event<'_>, out: &mut dyn Write) {
    event.record(&mut Pass { out, message: true });
    event.record(&mut Pass {
        out,
        message: false,
    });
}

/// One pass over the fields: the message, or everything else.
struct Pass<'a> {
    out: &'a mut dyn Write,
    message: bool,
}

impl Visit for Pass<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let is_message = field.name() == "message";
        let _ = match (is_message, self.message) {
            (true, true) => write!(self.out, "{value:?}"),
            (false, false) => write!(self.out, " {}={:?}", field.name(), value),
            _ => Ok(()),
        };
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let is_message = field.name() == "message";
        let _ = match (is_message, self.message) {
            (true, true) => self.out.write_str(value),
            (false, false) => write!(self.out, " {}={}", field.name(), value),
            _ => Ok(()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::sync::Arc;
    use std::sync::Mutex;

    /// Renders into a String of at most `cap` bytes (a full fixed buffer).
    struct Capped(String, usize);

    impl Write for Capped {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for c in s.chars() {
                if self.0.len() >= self.1 {
                    return Err(fmt::Error);
                }
                self.0.push(c);
            }
            Ok(())
        }
    }

    /// The last line, rendered into `cap` bytes; events up to `max` wanted.
    struct Capture(Arc<Mutex<String>>, usize, Level);

    impl LineSink for Capture {
        fn enabled(&self, level: &Level) -> bool {
            *level <= self.2
        }
        fn event(&self, event: &Event<'_>) {
            let mut line = Capped(String::new(), self.1);
            render(event, &mut line);
            *self.0.lock().unwrap() = line.0; // safe: test
        }
    }

    fn line_of(cap: usize, emit: impl FnOnce()) -> String {
        line_up_to(Level::TRACE, cap, emit)
    }

    fn line_up_to(max: Level, cap: usize, emit: impl FnOnce()) -> String {
        let out = Arc::new(Mutex::new(String::new()));
        tracing::subscriber::with_default(Lines(Capture(out.clone(), cap, max)), emit);
        let line = out.lock().unwrap().clone(); // safe: test
        line
    }

    #[test]
    fn message_first_then_fields_in_order() {
        let line = line_of(1000, || {
            tracing::info!(error = 301u32, step = "offer", "aborting {}", "now");
        });
        assert_eq!(line, "aborting now error=301 step=offer");
        // A message given as a plain str (record_str, not record_debug).
        let line = line_of(1000, || tracing::info!(step = "commit", message = "plain"));
        assert_eq!(line, "plain step=commit");
    }

    #[test]
    fn the_sink_chooses_the_levels() {
        assert_eq!(line_up_to(Level::INFO, 100, || tracing::debug!("t")), "");
        assert_eq!(line_up_to(Level::INFO, 100, || tracing::warn!("t")), "t");
    }

    #[test]
    fn a_full_buffer_truncates_without_failing() {
        let line = line_of(8, || tracing::warn!(code = 7u32, "a long message"));
        assert_eq!(line, "a long m");
    }
}
