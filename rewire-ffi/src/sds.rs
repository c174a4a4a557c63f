//! `rewire_sds`: the operator's control plane (registry, requests, ledger).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use rewire_core::{Error, LedgerEvent, PublicKey, Sds, SigningKey};

use crate::{
    array, free_handle, guard, input, new_handle, output, output_array, put, rewire_result,
};

/// An opaque SDS handle.
pub struct rewire_sds {
    inner: Sds,
    /// Messages from the last `rewire_sds_resolve` / `rewire_sds_audit`, taken by `rewire_sds_poll`.
    queue: VecDeque<(PublicKey, Vec<u8>)>,
}

/// Ledger events (`rewire_sds_handle`).
pub const REWIRE_LEDGER_RELEASED: u32 = 1;
pub const REWIRE_LEDGER_ACTIVATED: u32 = 2;
pub const REWIRE_LEDGER_ABORTED: u32 = 3;
pub const REWIRE_LEDGER_DROPPED: u32 = 4;

unsafe fn sds<'a>(s: *const rewire_sds) -> Result<&'a rewire_sds, Error> {
    // safe: a handle from rewire_sds_new/load, or NULL.
    unsafe { s.as_ref() }.ok_or(Error::NullPointer)
}

unsafe fn sds_mut<'a>(s: *mut rewire_sds) -> Result<&'a mut rewire_sds, Error> {
    // safe: as above, not aliased during the call.
    unsafe { s.as_mut() }.ok_or(Error::NullPointer)
}

unsafe fn key(seed: *const u8) -> Result<SigningKey, Error> {
    SigningKey::from_seed(unsafe { crate::secret(seed)? })
}

fn handle(inner: Sds) -> rewire_sds {
    rewire_sds {
        inner,
        queue: VecDeque::new(),
    }
}

/// A new, empty SDS with the Ed25519 signing key of the 32-byte `seed`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_sds_new(
    seed: *const u8,
    out: *mut *mut rewire_sds,
) -> rewire_result {
    guard(|| unsafe {
        if out.is_null() {
            return Err(Error::NullPointer);
        }
        new_handle(out, handle(Sds::new(key(seed)?)))
    })
}

/// An SDS restored from a ledger saved by `rewire_sds_save` for the same key.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_sds_load(
    seed: *const u8,
    ledger: *const u8,
    len: usize,
    out: *mut *mut rewire_sds,
) -> rewire_result {
    guard(|| unsafe {
        if out.is_null() {
            return Err(Error::NullPointer);
        }
        new_handle(
            out,
            handle(Sds::from_bytes(key(seed)?, input(ledger, len)?)?),
        )
    })
}

/// Release an SDS handle (NULL is ignored).
#[no_mangle]
pub unsafe extern "C" fn rewire_sds_free(s: *mut rewire_sds) {
    unsafe { free_handle(s) }
}

/// The durable ledger (registry and locations; no secrets). Persist it after every change.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_sds_save(
    s: *const rewire_sds,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> rewire_result {
    guard(|| unsafe { output(&sds(s)?.inner.to_bytes()?, buf, cap, out_len) })
}

/// The SDS public key (32 bytes), which monitors are provisioned with.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_sds_public_key(
    s: *const rewire_sds,
    out: *mut u8,
) -> rewire_result {
    guard(|| unsafe { output_array(&sds(s)?.inner.public_key().0, out) })
}

/// Endorse a host from its SM certificate: `count` accepted SM measurements
/// (32 bytes each, back to back), the platform whose code it runs
/// (`REWIRE_PLATFORM_RISCV64`, `REWIRE_PLATFORM_AARCH64`, …; 0 is
/// `INVALID_ARGUMENT`), its ATL and validity window (Unix seconds). Writes
/// the signed endorsement. The certificate's device key
/// must have provenance first (`rewire_sds_certify_device`, or
/// `rewire_sds_pin_device`): `DEVICE_NOT_CERTIFIED` otherwise.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_sds_endorse_host(
    s: *mut rewire_sds,
    certificate: *const u8,
    certificate_len: usize,
    sm_measurements: *const u8,
    count: usize,
    platform: u64,
    atl: u64,
    not_before: u64,
    not_after: u64,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> rewire_result {
    guard(|| unsafe {
        // The core checks the count (1..=16); this only bounds the read.
        let raw = input(
            sm_measurements,
            count.checked_mul(32).ok_or(Error::InvalidArgument)?,
        )?;
        let ms = raw
            .chunks_exact(32)
            .map(|c| {
                let mut m = [0u8; 32];
                m.copy_from_slice(c);
                m
            })
            .collect();
        let cert = input(certificate, certificate_len)?;
        let e = sds_mut(s)?
            .inner
            .endorse_host(cert, ms, platform, atl, not_before, not_after)?;
        output(&e, buf, cap, out_len)
    })
}

/// Trust a device-key provenance root (32-byte public key of a manufacturer
/// or the operator's CA) to certify device keys.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_sds_add_device_root(
    s: *mut rewire_sds,
    root: *const u8,
) -> rewire_result {
    guard(|| unsafe {
        let r = PublicKey(array::<32>(root)?);
        sds_mut(s)?.inner.add_device_root(r);
        Ok(())
    })
}

/// Record a device key's provenance from its device certificate (signed by
/// a registered root, obtained out of band, never from the host). Writes
/// the device key (the host id, 32 bytes) to `out_host`. Errors:
/// `DEVICE_NOT_CERTIFIED` (no registered root signed it), `BAD_SIGNATURE`,
/// decode errors.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_sds_certify_device(
    s: *mut rewire_sds,
    certificate: *const u8,
    certificate_len: usize,
    out_host: *mut u8,
) -> rewire_result {
    guard(|| unsafe {
        if out_host.is_null() {
            return Err(Error::NullPointer);
        }
        let cert = input(certificate, certificate_len)?;
        let host = sds_mut(s)?.inner.certify_device(cert)?;
        output_array(&host.0, out_host)
    })
}

/// The operator vouches for a device key (32 bytes) by hand, without a
/// root's certificate: the explicit exception, kept in the ledger.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_sds_pin_device(
    s: *mut rewire_sds,
    host: *const u8,
) -> rewire_result {
    guard(|| unsafe {
        let h = PublicKey(array::<32>(host)?);
        sds_mut(s)?.inner.pin_device(h);
        Ok(())
    })
}

/// Register an enclave (16-byte id, 32-byte measurement), its code built for
/// `platform`, placed on `host` at epoch 0 with a minimum ATL. Writes its
/// signed policy (for `rewire_monitor_install`). A host of another platform
/// is `PLATFORM_MISMATCH`; so is a later order to one.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_sds_register_enclave(
    s: *mut rewire_sds,
    enclave_id: *const u8,
    measurement: *const u8,
    platform: u64,
    min_atl: u64,
    host: *const u8,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> rewire_result {
    guard(|| unsafe {
        let id = array::<16>(enclave_id)?;
        let m = array::<32>(measurement)?;
        let h = PublicKey(array::<32>(host)?);
        let p = sds_mut(s)?
            .inner
            .register_enclave(id, m, platform, min_atl, h)?;
        output(&p, buf, cap, out_len)
    })
}

/// Order a migration of an enclave to `target` (32 bytes). `request_id` (16
/// bytes) must be fresh randomness; `deadline` is Unix seconds. Writes the
/// order message for the enclave's current host (`rewire_sds_location`).
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_sds_order(
    s: *mut rewire_sds,
    enclave_id: *const u8,
    target: *const u8,
    request_id: *const u8,
    deadline: u64,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> rewire_result {
    guard(|| unsafe {
        let id = array::<16>(enclave_id)?;
        let t = PublicKey(array::<32>(target)?);
        let rid = array::<16>(request_id)?;
        if out_len.is_null() {
            return Err(Error::NullPointer);
        }
        let sds = sds_mut(s)?;
        let order = sds.inner.order(&id, t, rid, deadline)?;
        if let Err(e) = output(&order, buf, cap, out_len) {
            // Outputs only on success: the order was not taken, withdraw it.
            sds.inner.withdraw(&id, &rid)?;
            return Err(e);
        }
        Ok(())
    })
}

/// Take a proof from a monitor (RELEASE, ABORT, ACTIVE, DROPPED). On success
/// `*out_event` is a `REWIRE_LEDGER_*`. Forged or stale proofs change nothing.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_sds_handle(
    s: *mut rewire_sds,
    msg: *const u8,
    len: usize,
    out_event: *mut u32,
) -> rewire_result {
    guard(|| unsafe {
        if out_event.is_null() {
            return Err(Error::NullPointer);
        }
        let ev = sds_mut(s)?.inner.handle(input(msg, len)?)?;
        put(
            out_event,
            match ev {
                LedgerEvent::Released { .. } => REWIRE_LEDGER_RELEASED,
                LedgerEvent::Activated { .. } => REWIRE_LEDGER_ACTIVATED,
                LedgerEvent::Aborted { .. } => REWIRE_LEDGER_ABORTED,
                LedgerEvent::Dropped { .. } => REWIRE_LEDGER_DROPPED,
            },
        )
    })
}

/// Where the ledger says an enclave lives: host (32 bytes) and epoch.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_sds_location(
    s: *const rewire_sds,
    enclave_id: *const u8,
    out_host: *mut u8,
    out_epoch: *mut u64,
) -> rewire_result {
    guard(|| unsafe {
        let id = array::<16>(enclave_id)?;
        let e = sds(s)?.inner.enclave(&id).ok_or(Error::UnknownEnclave)?;
        if out_epoch.is_null() {
            return Err(Error::NullPointer);
        }
        output_array(&e.location.0, out_host)?;
        put(out_epoch, e.epoch)
    })
}

/// Whether no migration is in doubt.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_sds_is_settled(s: *const rewire_sds) -> bool {
    let mut yes = false;
    let _ = guard(|| unsafe {
        yes = sds(s)?.inner.is_settled_all();
        Ok(())
    });
    yes
}

/// Queue what settles in-doubt migrations (re-sent orders, forwarded
/// RELEASE/ABORT); take them with `rewire_sds_poll`. Call it periodically.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_sds_resolve(s: *mut rewire_sds) -> rewire_result {
    guard(|| unsafe {
        let sds = sds_mut(s)?;
        let msgs = sds.inner.resolution();
        sds.queue.extend(msgs);
        Ok(())
    })
}

/// Queue audit queries (each enclave's host is asked for its latest proof).
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_sds_audit(s: *mut rewire_sds) -> rewire_result {
    guard(|| unsafe {
        let sds = sds_mut(s)?;
        let msgs = sds.inner.audit();
        sds.queue.extend(msgs);
        Ok(())
    })
}

/// Take the next queued message: the host to send it to (32 bytes) and the
/// bytes (deliver with `rewire_monitor_handle_sds`). `REWIRE_ERR_EMPTY` when none.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_sds_poll(
    s: *mut rewire_sds,
    out_host: *mut u8,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> rewire_result {
    guard(|| unsafe {
        let sds = sds_mut(s)?;
        if out_host.is_null() || out_len.is_null() {
            return Err(Error::NullPointer);
        }
        let (h, m) = sds.queue.front().ok_or(Error::Empty)?;
        output(m, buf, cap, out_len)?;
        output_array(&h.0, out_host)?;
        sds.queue.pop_front();
        Ok(())
    })
}
