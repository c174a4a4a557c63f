//! rewire-core's `tracing` events as one line of text, `message k=v …`: the
//! rendering both the C ABI's log callback and the Python binding's
//! `logging` forwarder use. The events carry step names and error codes,
//! never secrets.

use core::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing::Event;

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
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Metadata, Subscriber};

    struct Capture(Arc<Mutex<String>>);

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut line = String::new();
            render(event, &mut line);
            *self.0.lock().unwrap() = line;
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn message_first_then_fields_in_order() {
        let out = Arc::new(Mutex::new(String::new()));
        tracing::subscriber::with_default(Capture(out.clone()), || {
            tracing::info!(error = 301u32, step = "offer", "aborting {}", "now");
        });
        assert_eq!(*out.lock().unwrap(), "aborting now error=301 step=offer");
        // A message given as a plain str (record_str, not record_debug).
        tracing::subscriber::with_default(Capture(out.clone()), || {
            tracing::info!(step = "commit", message = "plain");
        });
        assert_eq!(*out.lock().unwrap(), "plain step=commit");
    }

    #[test]
    fn a_full_buffer_truncates_without_failing() {
        struct Small(String);
        impl Write for Small {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                for c in s.chars() {
                    if self.0.len() >= 8 {
                        return Err(fmt::Error);
                    }
                    self.0.push(c);
                }
                Ok(())
            }
        }
        struct Cap(Arc<Mutex<String>>);
        impl Subscriber for Cap {
            fn enabled(&self, _: &Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &Attributes<'_>) -> Id {
                Id::from_u64(1)
            }
            fn record(&self, _: &Id, _: &Record<'_>) {}
            fn record_follows_from(&self, _: &Id, _: &Id) {}
            fn event(&self, event: &Event<'_>) {
                let mut s = Small(String::new());
                render(event, &mut s);
                *self.0.lock().unwrap() = s.0;
            }
            fn enter(&self, _: &Id) {}
            fn exit(&self, _: &Id) {}
        }
        let out = Arc::new(Mutex::new(String::new()));
        tracing::subscriber::with_default(Cap(out.clone()), || {
            tracing::warn!(code = 7u32, "a long message");
        });
        assert_eq!(*out.lock().unwrap(), "a long m");
    }
}
