//! # librewire C ABI
//!
//! A thin skin over rewire-core: opaque handles (`rewire_monitor`,
//! `rewire_sds`) driven by bytes in and bytes out, and the two porting traits
//! as structs of C callbacks that each take an explicit `void *userdata`.
//! There is no protocol logic here.
//!
//! Conventions (those of rustls-ffi):
//! * every function returns a `uint32_t` result: 0 is success, anything else
//!   is one of rewire-core's stable error codes (`rewire_result_text`);
//! * inputs come first, then outputs; an output buffer is followed by its
//!   capacity and a `size_t *out_len`; outputs are written only on success,
//!   except that `REWIRE_ERR_BUFFER_TOO_SMALL` writes the required length to
//!   `*out_len`;
//! * every pointer is checked; NULL where a value is required returns
//!   `REWIRE_ERR_NULL_POINTER`; enums cross as `uint32_t` and are checked;
//! * handles are created by `_new` and released by `_free` (NULL is ignored);
//! * in hosted (std) builds every entry point catches panics
//!   (`REWIRE_ERR_INTERNAL`); nothing is thread-local.
#![cfg_attr(not(feature = "std"), no_std)]
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

extern crate alloc;

mod boot;
mod callbacks;
mod monitor;
mod sds;

mod log;
#[cfg(any(rewire_baremetal, feature = "log"))]
mod text;

/// Bare metal (`rewire_baremetal`, set by build.rs): OS "none" (RISC-V), and
/// a no_std staticlib for a `-linux-gnu` target: aarch64 bare metal
/// (docs/building.md §4.1), x86_64 for the C tests under valgrind and ASan.
#[cfg(rewire_baremetal)]
mod baremetal;

use core::ffi::c_char;

use rewire_core::Error;

#[cfg(rewire_baremetal)]
pub use baremetal::*;
pub use boot::*;
pub use callbacks::{rewire_enclave_callbacks, rewire_platform_callbacks};
pub use log::*;
pub use monitor::*;
pub use sds::*;

/// Result code of every call: 0 is success.
pub type rewire_result = u32;

/// Success. The error codes (`REWIRE_ERR_*`) are generated from
/// rewire-core's error enum into the header.
pub const REWIRE_OK: rewire_result = 0;

/// Length of a host id, an SDS key, a device secret, a measurement.
pub const REWIRE_KEY_LEN: usize = 32;
/// Length of an enclave id and a request id.
pub const REWIRE_ID_LEN: usize = 16;

// Sizes for static buffers (docs/c-api.md §3.7); each equals rewire-core's
// cap, checked at compile time below.
/// Largest signed object: an SM or device certificate, an endorsement, a
/// policy (`rewire_monitor_certificate`, `rewire_sds_endorse_host`, …).
pub const REWIRE_MAX_SIGNED: usize = 4096;
/// Largest message on the SDS path: an ORDER (`rewire_sds_order`), anything
/// `rewire_sds_poll` or a `REWIRE_DEST_SDS` output carries, and the cap a
/// receiver enforces.
pub const REWIRE_MAX_MESSAGE: usize = 24 * 1024;
/// Platforms (`rewire_sds_endorse_host`, `rewire_sds_register_enclave`):
/// what code a host runs, what an enclave's code is built for.
pub const REWIRE_PLATFORM_RISCV64: u64 = 1;
pub const REWIRE_PLATFORM_AARCH64: u64 = 2;
/// Largest framework evidence `attest` may return.
pub const REWIRE_MAX_EVIDENCE: usize = 1024;
/// Most SM measurements one endorsement names.
pub const REWIRE_MAX_SM_MEASUREMENTS: usize = 16;
const _: () = {
    assert!(REWIRE_MAX_SIGNED == rewire_core::wire::MAX_SIGNED);
    assert!(REWIRE_MAX_MESSAGE == rewire_core::wire::MAX_MESSAGE);
    assert!(REWIRE_MAX_EVIDENCE == rewire_core::wire::MAX_FRAMEWORK_EVIDENCE);
    assert!(REWIRE_MAX_SM_MEASUREMENTS == rewire_core::wire::MAX_SM_MEASUREMENTS);
    assert!(REWIRE_PLATFORM_RISCV64 == rewire_core::wire::PLATFORM_RISCV64);
    assert!(REWIRE_PLATFORM_AARCH64 == rewire_core::wire::PLATFORM_AARCH64);
};

/// Run an entry point: map the result to a code; in std builds, a panic
/// becomes `REWIRE_ERR_INTERNAL` instead of unwinding into C.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), Error>) -> rewire_result {
    // Bare metal: no heap before rewire_init, so every call would end in the
    // allocation-failure panic; refuse it instead.
    #[cfg(rewire_baremetal)]
    if !baremetal::initialised() {
        return Error::InvalidState.code();
    }
    #[cfg(feature = "std")]
    let r =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(Err(Error::Internal));
    #[cfg(not(feature = "std"))]
    let r = f();
    match r {
        Ok(()) => REWIRE_OK,
        Err(e) => e.code(),
    }
}

/// A C input buffer. NULL is allowed only with length 0.
pub(crate) unsafe fn input<'a>(p: *const u8, len: usize) -> Result<&'a [u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::NullPointer);
    }
    if len > isize::MAX as usize {
        return Err(Error::InvalidArgument);
    }
    // safe: non-null, and the caller promises `len` readable bytes.
    Ok(unsafe { core::slice::from_raw_parts(p, len) })
}

/// A fixed-size C input array.
pub(crate) unsafe fn array<const N: usize>(p: *const u8) -> Result<[u8; N], Error> {
    if p.is_null() {
        return Err(Error::NullPointer);
    }
    let mut a = [0u8; N];
    // safe: non-null, and the caller promises N readable bytes.
    a.copy_from_slice(unsafe { core::slice::from_raw_parts(p, N) });
    Ok(a)
}

/// A 32-byte secret copied from C straight into zeroizing storage.
pub(crate) unsafe fn secret(p: *const u8) -> Result<rewire_core::Secret, Error> {
    if p.is_null() {
        return Err(Error::NullPointer);
    }
    // safe: non-null, and the caller promises 32 readable bytes.
    rewire_core::Secret::from_slice(unsafe { core::slice::from_raw_parts(p, 32) })
        .ok_or(Error::InvalidArgument)
}

/// Copy `data` to a C output buffer of capacity `cap`, and its length to `out_len`.
pub(crate) unsafe fn output(
    data: &[u8],
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> Result<(), Error> {
    if out_len.is_null() {
        return Err(Error::NullPointer);
    }
    if data.len() > cap {
        // safe: checked non-null above.
        unsafe { *out_len = data.len() };
        return Err(Error::BufferTooSmall);
    }
    if !data.is_empty() {
        if buf.is_null() {
            return Err(Error::NullPointer);
        }
        // safe: non-null, and the caller promises `cap >= data.len()` writable bytes.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len()) };
    }
    // safe: checked non-null above.
    unsafe { *out_len = data.len() };
    Ok(())
}

/// Write a fixed-size array to a C output.
pub(crate) unsafe fn output_array<const N: usize>(
    data: &[u8; N],
    out: *mut u8,
) -> Result<(), Error> {
    if out.is_null() {
        return Err(Error::NullPointer);
    }
    // safe: non-null, and the caller promises N writable bytes.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), out, N) };
    Ok(())
}

/// Write one value to a C out-pointer.
pub(crate) unsafe fn put<T>(out: *mut T, v: T) -> Result<(), Error> {
    if out.is_null() {
        return Err(Error::NullPointer);
    }
    // safe: non-null and properly aligned as the C type requires.
    unsafe { out.write(v) };
    Ok(())
}

/// Hand a new handle to C through `out`.
pub(crate) unsafe fn new_handle<T>(out: *mut *mut T, value: T) -> Result<(), Error> {
    if out.is_null() {
        return Err(Error::NullPointer);
    }
    // safe: checked non-null.
    unsafe {
        put(
            out,
            alloc::boxed::Box::into_raw(alloc::boxed::Box::new(value)),
        )
    }
}

/// Release a handle made by `new_handle` (NULL is ignored).
pub(crate) unsafe fn free_handle<T>(p: *mut T) {
    if !p.is_null() {
        let _ = guard(|| {
            // safe: p came from Box::into_raw in new_handle and is freed once.
            drop(unsafe { alloc::boxed::Box::from_raw(p) });
            Ok(())
        });
    }
}

/// A fixed, secret-free, NUL-terminated description of a result code. Never NULL.
#[no_mangle]
pub extern "C" fn rewire_result_text(result: rewire_result) -> *const c_char {
    if result == REWIRE_OK {
        return c"ok".as_ptr();
    }
    match Error::from_code(result) {
        Some(e) => e.as_cstr().as_ptr(),
        None => c"unknown result code".as_ptr(),
    }
}

/// The library version, e.g. "0.1.0" (equal to `REWIRE_VERSION`).
#[no_mangle]
pub extern "C" fn rewire_version() -> *const c_char {
    VERSION_C.as_ptr()
}

const VERSION_C: &core::ffi::CStr =
    match core::ffi::CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes())
    {
        Ok(s) => s,
        Err(_) => c"unknown",
    };
