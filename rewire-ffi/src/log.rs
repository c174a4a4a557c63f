//! `rewire_set_log`: rewire-core's `tracing` events to a C callback.
//!
//! A minimal `Subscriber` (no spans), installed as the process-wide default
//! the first time `rewire_set_log` is called (from one thread at start-up); every event at or above the
//! chosen level is rendered by `rewire_core::log::render` into a fixed
//! buffer (no allocation) and handed to the callback. The events carry step
//! names and error codes, never secrets. Built without the `log` feature
//! (a size-minimal bare-metal archive) the core has no events: the callback
//! is accepted and never called.

use core::ffi::{c_char, c_void};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use rewire_core::Error;

use crate::rewire_result;

/// Log levels (`rewire_set_log`): 0 turns logging off.
pub const REWIRE_LOG_OFF: u32 = 0;
pub const REWIRE_LOG_ERROR: u32 = 1;
pub const REWIRE_LOG_WARN: u32 = 2;
pub const REWIRE_LOG_INFO: u32 = 3;
pub const REWIRE_LOG_DEBUG: u32 = 4;
pub const REWIRE_LOG_TRACE: u32 = 5;

/// Longest line a log callback receives, without its NUL.
pub const REWIRE_MAX_LOG_LINE: usize = 255;

/// A log callback: `level` (`REWIRE_LOG_ERROR` … `_TRACE`) and one line of
/// text, NUL-terminated, `len` bytes before the NUL (at most
/// `REWIRE_MAX_LOG_LINE`; longer lines are cut). The line is valid only
/// during the call.
pub type rewire_log_fn = Option<
    unsafe extern "C" fn(userdata: *mut c_void, level: u32, message: *const c_char, len: usize),
>;

static LOG_FN: AtomicUsize = AtomicUsize::new(0);
static LOG_USERDATA: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
static LOG_MAX: AtomicU32 = AtomicU32::new(REWIRE_LOG_OFF);
/// Held while the three above change together, and while they are read.
static LOG_LOCK: AtomicBool = AtomicBool::new(false);
#[cfg(feature = "log")]
static INSTALLED: AtomicBool = AtomicBool::new(false);

fn locked<R>(f: impl FnOnce() -> R) -> R {
    while LOG_LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        core::hint::spin_loop();
    }
    let r = f();
    LOG_LOCK.store(false, Ordering::Release);
    r
}

#[cfg(feature = "log")]
mod subscriber {
    use super::*;
    use crate::text::Text;
    use rewire_core::log::{LineSink, Lines};
    use tracing_core::{Event, Level};

    fn level_number(l: &Level) -> u32 {
        match *l {
            Level::ERROR => REWIRE_LOG_ERROR,
            Level::WARN => REWIRE_LOG_WARN,
            Level::INFO => REWIRE_LOG_INFO,
            Level::DEBUG => REWIRE_LOG_DEBUG,
            _ => REWIRE_LOG_TRACE,
        }
    }

    struct CLog;

    /// A handle on the installed dispatcher. tracing keeps the global one
    /// through a pointer into its allocation, which leak checkers (valgrind,
    /// LeakSanitizer) report as lost; this keeps it reachable.
    struct Keep(core::cell::UnsafeCell<Option<tracing_core::Dispatch>>);
    // safe: written once under LOG_LOCK and never read.
    unsafe impl Sync for Keep {}
    static KEEP: Keep = Keep(core::cell::UnsafeCell::new(None));

    impl LineSink for CLog {
        fn enabled(&self, level: &Level) -> bool {
            level_number(level) <= LOG_MAX.load(Ordering::Relaxed)
        }
        fn event(&self, event: &Event<'_>) {
            let level = level_number(event.metadata().level());
            let (f, userdata, max) = locked(|| {
                (
                    LOG_FN.load(Ordering::Relaxed),
                    LOG_USERDATA.load(Ordering::Relaxed),
                    LOG_MAX.load(Ordering::Relaxed),
                )
            });
            if f == 0 || level > max {
                return;
            }
            let mut line = Text::<{ REWIRE_MAX_LOG_LINE + 1 }>::new();
            rewire_core::log::render(event, &mut line);
            type LogFn = unsafe extern "C" fn(*mut c_void, u32, *const c_char, usize);
            // safe: stored from a rewire_log_fn in rewire_set_log.
            let f = unsafe { core::mem::transmute::<usize, LogFn>(f) };
            // safe: the line is NUL-terminated and lives across the call.
            unsafe { f(userdata, level, line.as_ptr(), line.len()) }
        }
    }

    /// Install the subscriber once (under LOG_LOCK).
    pub(super) fn install() -> Result<(), Error> {
        if !INSTALLED.load(Ordering::SeqCst) {
            let d = tracing_core::Dispatch::new(Lines(CLog));
            if tracing_core::dispatcher::set_global_default(d.clone()).is_err() {
                return Err(Error::InvalidState);
            }
            // safe: written once, under LOG_LOCK, before INSTALLED is set.
            unsafe { *KEEP.0.get() = Some(d) };
            INSTALLED.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// Send librewire's log lines at `max_level` and more severe
/// (`REWIRE_LOG_ERROR` … `REWIRE_LOG_TRACE`) to `log`, with `userdata`;
/// `REWIRE_LOG_OFF` or a NULL `log` turns logging off. The lines name
/// protocol steps and result codes, never secrets. Call it at start-up
/// (on bare metal after `rewire_init`: it allocates once); a later call replaces the
/// callback, but an event already being delivered on another thread may
/// still reach the previous one. The callback must not call librewire.
/// `REWIRE_ERR_INVALID_ARGUMENT` for a level above `REWIRE_LOG_TRACE`;
/// `REWIRE_ERR_INVALID_STATE` if the program installed another `tracing`
/// subscriber first (Rust programs that link librewire).
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_set_log(
    log: rewire_log_fn,
    userdata: *mut c_void,
    max_level: u32,
) -> rewire_result {
    crate::guard(|| {
        if max_level > REWIRE_LOG_TRACE {
            return Err(Error::InvalidArgument);
        }
        locked(|| {
            #[cfg(feature = "log")]
            subscriber::install()?;
            let max = if log.is_some() {
                max_level
            } else {
                REWIRE_LOG_OFF
            };
            LOG_FN.store(log.map_or(0, |f| f as usize), Ordering::Relaxed);
            LOG_USERDATA.store(userdata, Ordering::Relaxed);
            LOG_MAX.store(max, Ordering::Relaxed);
            Ok::<(), Error>(())
        })?;
        #[cfg(feature = "log")]
        tracing_core::callsite::rebuild_interest_cache();
        Ok(())
    })
}

#[cfg(all(test, feature = "log"))]
mod tests {
    use super::*;
    use core::ffi::CStr;
    use std::string::{String, ToString};
    use std::sync::Mutex;
    use std::vec::Vec;

    static LINES: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());

    unsafe extern "C" fn capture(_: *mut c_void, level: u32, msg: *const c_char, len: usize) {
        // safe: the callback contract: a NUL-terminated line.
        let text = unsafe { CStr::from_ptr(msg) }.to_str();
        let s = text.expect("utf-8").to_string(); // safe: test
        assert_eq!(s.len(), len, "len is the length before the NUL");
        LINES.lock().expect("lock").push((level, s)); // safe: test
    }

    /// Only this test's lines: other tests in this binary drive monitors.
    fn mine() -> Vec<(u32, String)> {
        let lines = LINES.lock().expect("lock"); // safe: test
        lines
            .iter()
            .filter(|(_, s)| s.starts_with("t:"))
            .cloned()
            .collect()
    }

    #[test]
    fn levels_filter_long_lines_are_cut_and_null_turns_logging_off() {
        let set =
            |f: rewire_log_fn, level| unsafe { rewire_set_log(f, core::ptr::null_mut(), level) };
        assert_eq!(
            set(Some(capture), REWIRE_LOG_TRACE + 1),
            Error::InvalidArgument.code()
        );
        assert_eq!(set(Some(capture), REWIRE_LOG_INFO), 0);
        tracing::info!(code = 7u32, "t:kept");
        tracing::debug!("t:dropped, below the level");
        assert_eq!(set(Some(capture), REWIRE_LOG_DEBUG), 0);
        tracing::debug!("t:debug");
        tracing::trace!("t:dropped, below debug");
        assert_eq!(set(Some(capture), REWIRE_LOG_INFO), 0);
        tracing::warn!("t:{}", "x".repeat(400));
        assert_eq!(set(Some(capture), REWIRE_LOG_ERROR), 0);
        tracing::warn!("t:dropped, below the new level");
        tracing::error!("t:error");
        assert_eq!(set(None, REWIRE_LOG_TRACE), 0);
        tracing::error!("t:dropped, logging off");
        let lines = mine();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines[0], (REWIRE_LOG_INFO, "t:kept code=7".to_string()));
        assert_eq!(lines[1], (REWIRE_LOG_DEBUG, "t:debug".to_string()));
        assert_eq!(lines[2].0, REWIRE_LOG_WARN);
        assert_eq!(lines[2].1.len(), REWIRE_MAX_LOG_LINE);
        assert_eq!(lines[3], (REWIRE_LOG_ERROR, "t:error".to_string()));
    }
}
