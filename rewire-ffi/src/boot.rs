//! The boot stage's half of the identity (`rewire_core::boot`), for a ROM or
//! first-stage loader that links librewire.a. It needs no monitor, no
//! callbacks and no state; it uses a few hundred bytes of heap while it
//! signs.

use rewire_core::{boot, Error};

use crate::{array, guard, input, output, output_array, rewire_result};

/// Measure an SM image: SHA-256 of all `len` bytes the boot stage loads and
/// runs (code, read-only data, initialised data), 32 bytes into `out`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_boot_measure(
    image: *const u8,
    len: usize,
    out: *mut u8,
) -> rewire_result {
    guard(|| unsafe { output_array(&boot::measure_image(input(image, len)?), out) })
}

/// The boot stage: from the 32-byte device root and the SM image's
/// measurement, write the SM secret (32 bytes, `sm_secret_out`), the
/// device-signed SM certificate (`cert_buf`, capacity `cert_cap`, length
/// into `*cert_len`; `REWIRE_ERR_BUFFER_TOO_SMALL` sets the length needed
/// and writes nothing else) and the device public key (32 bytes,
/// `device_public_out`). Hand those three to the SM
/// (`rewire_monitor_new_from_handoff`), then wipe the root and the secret
/// from the boot stage's memory before jumping to it.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_boot_handoff(
    device_root: *const u8,
    sm_measurement: *const u8,
    sm_secret_out: *mut u8,
    cert_buf: *mut u8,
    cert_cap: usize,
    cert_len: *mut usize,
    device_public_out: *mut u8,
) -> rewire_result {
    guard(|| unsafe {
        if sm_secret_out.is_null() || device_public_out.is_null() {
            return Err(Error::NullPointer);
        }
        let root = crate::secret(device_root)?;
        let h = boot::handoff(&root, &array::<32>(sm_measurement)?)?;
        let public = boot::device_public(&root)?;
        output(&h.certificate, cert_buf, cert_cap, cert_len)?;
        output_array(h.sm_secret.expose(), sm_secret_out)?;
        output_array(&public.0, device_public_out)
    })
}
