//! A line of text for C in a fixed buffer: the log callback's lines and the
//! panic handler's message and file name. No allocation; it truncates, keeps
//! a NUL at the end, and turns a NUL inside the text into `?` (it would end
//! the C string early).

use core::ffi::c_char;

/// At most `N - 1` bytes of text and the NUL after them.
pub(crate) struct Text<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Text<N> {
    pub(crate) fn new() -> Self {
        Text {
            buf: [0; N],
            len: 0,
        }
    }

    /// The text's length, without the NUL (the log callback's `len`).
    #[cfg_attr(not(feature = "log"), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The NUL-terminated text.
    pub(crate) fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr() as *const c_char
    }
}

impl<const N: usize> core::fmt::Write for Text<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if self.len + 1 >= N {
                return Err(core::fmt::Error);
            }
            self.buf[self.len] = if b == 0 { b'?' } else { b };
            self.len += 1;
        }
        Ok(())
    }
}
