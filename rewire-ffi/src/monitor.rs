//! `rewire_monitor`: one security monitor (source and target roles).

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

use rewire_core::{Config, Dest, EnclaveState, Error, Event, Identity, Monitor, PublicKey};

use crate::callbacks::{rewire_enclave_callbacks, rewire_platform_callbacks};
use crate::{
    array, free_handle, guard, input, new_handle, output, output_array, put, rewire_result,
};

type Mon = Monitor<rewire_platform_callbacks, rewire_enclave_callbacks>;

/// An opaque monitor handle.
///
/// Every call enters the handle exclusively: a callback that calls back into
/// the same handle (which would alias the monitor mid-call) gets
/// `REWIRE_ERR_INVALID_STATE` (and the predicates answer false). In hosted
/// builds a caught panic poisons the handle: every later call returns
/// `REWIRE_ERR_INTERNAL`.
pub struct rewire_monitor {
    busy: AtomicBool,
    poisoned: AtomicBool,
    inner: UnsafeCell<Mon>,
}

/// Exclusive use of a handle for one call.
struct Entered<'a> {
    h: &'a rewire_monitor,
}

impl Deref for Entered<'_> {
    type Target = Mon;
    fn deref(&self) -> &Mon {
        // safe: `busy` gives this guard the only access to `inner`.
        unsafe { &*self.h.inner.get() }
    }
}

impl DerefMut for Entered<'_> {
    fn deref_mut(&mut self) -> &mut Mon {
        // safe: as above.
        unsafe { &mut *self.h.inner.get() }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        #[cfg(feature = "std")]
        if std::thread::panicking() {
            self.h.poisoned.store(true, Ordering::SeqCst);
        }
        self.h.busy.store(false, Ordering::Release);
    }
}

/// Output destinations (`rewire_monitor_poll_output`).
pub const REWIRE_DEST_SDS: u32 = 1;
pub const REWIRE_DEST_PEER: u32 = 2;

/// Image sections (enclave callbacks).
pub const REWIRE_SECTION_CODE: u32 = 0;
pub const REWIRE_SECTION_STATE: u32 = 1;
pub const REWIRE_SECTION_SEALED: u32 = 2;

/// Enclave states (`rewire_monitor_status`).
pub const REWIRE_STATE_RUNNING: u32 = 1;
pub const REWIRE_STATE_FROZEN: u32 = 2;
pub const REWIRE_STATE_MIGRATED: u32 = 3;
pub const REWIRE_STATE_RECEIVING: u32 = 4;
pub const REWIRE_STATE_PENDING: u32 = 5;
pub const REWIRE_STATE_GONE: u32 = 6;

/// Progress events (`rewire_monitor_poll_event`).
pub const REWIRE_EVENT_VALIDATED: u32 = 1;
pub const REWIRE_EVENT_FROZEN: u32 = 2;
pub const REWIRE_EVENT_CHANNEL_UP: u32 = 3;
pub const REWIRE_EVENT_OFFERED: u32 = 4;
pub const REWIRE_EVENT_OFFER_ACCEPTED: u32 = 5;
pub const REWIRE_EVENT_TARGET_VERIFIED: u32 = 6;
pub const REWIRE_EVENT_STREAM_DONE: u32 = 7;
pub const REWIRE_EVENT_PENDING_READY: u32 = 8;
pub const REWIRE_EVENT_COMMITTED: u32 = 9;
pub const REWIRE_EVENT_ACTIVATED: u32 = 10;
pub const REWIRE_EVENT_ABORTED: u32 = 11;
pub const REWIRE_EVENT_DROPPED: u32 = 12;

/// Enter a handle for the duration of one call.
unsafe fn monitor_mut<'a>(m: *const rewire_monitor) -> Result<Entered<'a>, Error> {
    // safe: the caller passes a handle from rewire_monitor_new or NULL.
    let h = unsafe { m.as_ref() }.ok_or(Error::NullPointer)?;
    if h.poisoned.load(Ordering::SeqCst) {
        return Err(Error::Internal);
    }
    if h.busy.swap(true, Ordering::Acquire) {
        return Err(Error::InvalidState);
    }
    Ok(Entered { h })
}

/// Start a monitor: derive its keys from the 32-byte device secret and the
/// SM measurement (both halves of the boot chain in this call: for hosts
/// with no boot stage of their own; a monitor booted by one uses
/// `rewire_monitor_new_from_handoff` and never holds the device secret),
/// recover its journal (refusing a rolled-back copy with
/// `REWIRE_ERR_ROLLBACK`) and settle every in-flight migration. The
/// callback structs are copied; their `userdata` must outlive the handle.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_new(
    device_secret: *const u8,
    sm_measurement: *const u8,
    sds_public_key: *const u8,
    timeout_ms: u64,
    platform: *const rewire_platform_callbacks,
    enclaves: *const rewire_enclave_callbacks,
    out: *mut *mut rewire_monitor,
) -> rewire_result {
    guard(|| unsafe {
        start(sds_public_key, timeout_ms, platform, enclaves, out, || {
            Identity::derive(crate::secret(device_secret)?, array::<32>(sm_measurement)?)
        })
    })
}

/// Start a monitor from what its boot stage handed it
/// (`rewire_boot_handoff`): the 32-byte SM secret, the device-signed SM
/// certificate (`cert_len` bytes) and the 32-byte device public key the
/// boot stage vouches for. Refused before anything starts: a certificate
/// not signed by that device key (`REWIRE_ERR_UNKNOWN_SIGNER`,
/// `REWIRE_ERR_BAD_SIGNATURE`, decode errors), naming another device
/// (`REWIRE_ERR_PEER_MISMATCH`) or an SM key the secret does not give
/// (`REWIRE_ERR_INVALID_ARGUMENT`). Otherwise as `rewire_monitor_new`.
#[no_mangle]
#[must_use]
#[allow(clippy::too_many_arguments)] // the C signature: one argument per input
pub unsafe extern "C" fn rewire_monitor_new_from_handoff(
    sm_secret: *const u8,
    certificate: *const u8,
    cert_len: usize,
    device_public_key: *const u8,
    sds_public_key: *const u8,
    timeout_ms: u64,
    platform: *const rewire_platform_callbacks,
    enclaves: *const rewire_enclave_callbacks,
    out: *mut *mut rewire_monitor,
) -> rewire_result {
    guard(|| unsafe {
        start(sds_public_key, timeout_ms, platform, enclaves, out, || {
            Identity::from_handoff(
                crate::secret(sm_secret)?,
                input(certificate, cert_len)?,
                &PublicKey(array::<32>(device_public_key)?),
            )
        })
    })
}

/// The shared half of the two constructors.
unsafe fn start(
    sds_public_key: *const u8,
    timeout_ms: u64,
    platform: *const rewire_platform_callbacks,
    enclaves: *const rewire_enclave_callbacks,
    out: *mut *mut rewire_monitor,
    identity: impl FnOnce() -> Result<Identity, Error>,
) -> Result<(), Error> {
    if out.is_null() {
        return Err(Error::NullPointer);
    }
    // safe: NULL or structs of at least the struct_size they state.
    let (platform, enclaves) = unsafe {
        (
            crate::callbacks::versioned(platform)?,
            crate::callbacks::versioned(enclaves)?,
        )
    };
    platform.check()?;
    enclaves.check()?;
    let id = identity()?;
    let sds = PublicKey(unsafe { array::<32>(sds_public_key)? });
    let mut cfg = Config::new(sds);
    if timeout_ms > 0 {
        cfg.timeout_ms = timeout_ms;
    }
    // Bare metal: a small heap; unauthenticated channels can each buffer
    // about 70 KiB, so allow two by default (rewire_monitor_set_max_sessions).
    #[cfg(rewire_baremetal)]
    {
        cfg.max_sessions = 2;
    }
    // Bare metal: the monitor runs the code of the architecture it was built
    // for, and refuses endorsements and policies that say otherwise.
    #[cfg(all(rewire_baremetal, target_arch = "riscv64"))]
    {
        cfg.platform = Some(rewire_core::wire::PLATFORM_RISCV64);
    }
    #[cfg(all(rewire_baremetal, target_arch = "aarch64"))]
    {
        cfg.platform = Some(rewire_core::wire::PLATFORM_AARCH64);
    }
    let inner = Monitor::start(platform, enclaves, id, cfg)?;
    let handle = rewire_monitor {
        busy: AtomicBool::new(false),
        poisoned: AtomicBool::new(false),
        inner: UnsafeCell::new(inner),
    };
    unsafe { new_handle(out, handle) }
}

/// Release a monitor (NULL is ignored; so is a call from inside one of its own
/// callbacks). Its journal stays where the platform keeps it.
#[no_mangle]
pub unsafe extern "C" fn rewire_monitor_free(m: *mut rewire_monitor) {
    // safe: a handle from rewire_monitor_new or NULL.
    if unsafe { m.as_ref() }.is_some_and(|h| h.busy.load(Ordering::Acquire)) {
        return;
    }
    unsafe { free_handle(m) }
}

/// The monitor's host id (its device public key), 32 bytes into `out`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_host_id(
    m: *const rewire_monitor,
    out: *mut u8,
) -> rewire_result {
    guard(|| unsafe { output_array(&monitor_mut(m)?.host_id().0, out) })
}

/// The monitor's device-signed SM certificate (what the SDS endorses).
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_certificate(
    m: *const rewire_monitor,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> rewire_result {
    guard(|| unsafe { output(monitor_mut(m)?.identity().certificate(), buf, cap, out_len) })
}

/// Install an enclave the framework has loaded, under its SDS-signed policy.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_install(
    m: *mut rewire_monitor,
    policy: *const u8,
    policy_len: usize,
) -> rewire_result {
    guard(|| unsafe { monitor_mut(m)?.install(input(policy, policy_len)?) })
}

/// A message from the SDS side: an order, a query, a forwarded RELEASE/ABORT.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_handle_sds(
    m: *mut rewire_monitor,
    msg: *const u8,
    len: usize,
) -> rewire_result {
    guard(|| unsafe { monitor_mut(m)?.handle_sds(input(msg, len)?) })
}

/// TLS bytes from peer host `from` (32 bytes, the relay's claim) on channel `conn` (16 bytes).
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_handle_peer(
    m: *mut rewire_monitor,
    from: *const u8,
    conn: *const u8,
    bytes: *const u8,
    len: usize,
) -> rewire_result {
    guard(|| unsafe {
        let from = PublicKey(array::<32>(from)?);
        let conn = array::<16>(conn)?;
        monitor_mut(m)?.handle_peer(from, conn, input(bytes, len)?)
    })
}

/// The relay reports that channel `conn` (16 bytes) is gone.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_peer_closed(
    m: *mut rewire_monitor,
    conn: *const u8,
) -> rewire_result {
    guard(|| unsafe { monitor_mut(m)?.handle_peer_closed(array::<16>(conn)?) })
}

/// Cap the incoming channels open at once (default 8). Each may buffer up to
/// about 70 KiB before it is authenticated: size the bare-metal heap for it.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_set_max_sessions(
    m: *mut rewire_monitor,
    max_sessions: u32,
) -> rewire_result {
    guard(|| unsafe {
        if max_sessions == 0 {
            return Err(Error::InvalidArgument);
        }
        monitor_mut(m)?.set_max_sessions(max_sessions as usize);
        Ok(())
    })
}

/// Let time pass: timeouts fire.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_tick(m: *mut rewire_monitor) -> rewire_result {
    guard(|| unsafe { monitor_mut(m)?.tick() })
}

/// Take the next message to send. Returns `REWIRE_ERR_EMPTY` when there is
/// none. On success: `*out_dest` is `REWIRE_DEST_SDS` or `REWIRE_DEST_PEER`;
/// for a peer, `out_host` (32 bytes) and `out_conn` (16 bytes) say where;
/// the bytes go to `buf`. With `REWIRE_ERR_BUFFER_TOO_SMALL` the message
/// stays queued and `*out_len` says how much room it needs.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_poll_output(
    m: *mut rewire_monitor,
    out_dest: *mut u32,
    out_host: *mut u8,
    out_conn: *mut u8,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> rewire_result {
    guard(|| unsafe {
        let mut mon = monitor_mut(m)?;
        if out_dest.is_null() || out_host.is_null() || out_conn.is_null() || out_len.is_null() {
            return Err(Error::NullPointer);
        }
        let o = mon.poll_output().ok_or(Error::Empty)?;
        if let Err(e) = output(&o.bytes, buf, cap, out_len) {
            mon.unpoll_output(o);
            return Err(e);
        }
        match o.dest {
            Dest::Sds => {
                output_array(&[0u8; 32], out_host)?;
                output_array(&[0u8; 16], out_conn)?;
                put(out_dest, crate::REWIRE_DEST_SDS)
            }
            Dest::Peer { host, conn } => {
                output_array(&host.0, out_host)?;
                output_array(&conn, out_conn)?;
                put(out_dest, crate::REWIRE_DEST_PEER)
            }
        }
    })
}

/// Take the next progress event: `*out_event` is a `REWIRE_EVENT_*`, the
/// migration's request id goes to `out_request` (16 bytes); for
/// `REWIRE_EVENT_ABORTED`, `*out_reason` is the error code (else 0).
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_poll_event(
    m: *mut rewire_monitor,
    out_event: *mut u32,
    out_request: *mut u8,
    out_reason: *mut u32,
) -> rewire_result {
    guard(|| unsafe {
        let mut mon = monitor_mut(m)?;
        if out_event.is_null() || out_request.is_null() || out_reason.is_null() {
            return Err(Error::NullPointer);
        }
        let (rid, e) = mon.poll_event().ok_or(Error::Empty)?;
        let (code, reason) = match e {
            Event::Validated => (crate::REWIRE_EVENT_VALIDATED, 0),
            Event::Frozen => (crate::REWIRE_EVENT_FROZEN, 0),
            Event::ChannelUp => (crate::REWIRE_EVENT_CHANNEL_UP, 0),
            Event::Offered => (crate::REWIRE_EVENT_OFFERED, 0),
            Event::OfferAccepted => (crate::REWIRE_EVENT_OFFER_ACCEPTED, 0),
            Event::TargetVerified => (crate::REWIRE_EVENT_TARGET_VERIFIED, 0),
            Event::StreamDone => (crate::REWIRE_EVENT_STREAM_DONE, 0),
            Event::PendingReady => (crate::REWIRE_EVENT_PENDING_READY, 0),
            Event::Committed => (crate::REWIRE_EVENT_COMMITTED, 0),
            Event::Activated => (crate::REWIRE_EVENT_ACTIVATED, 0),
            Event::Aborted(why) => (crate::REWIRE_EVENT_ABORTED, why.code()),
            Event::Dropped => (crate::REWIRE_EVENT_DROPPED, 0),
        };
        output_array(&rid, out_request)?;
        put(out_reason, reason)?;
        put(out_event, code)
    })
}

/// The state (`REWIRE_STATE_*`) and epoch of an enclave (16-byte id) here.
/// `REWIRE_ERR_UNKNOWN_ENCLAVE` if this monitor has no record of it.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_status(
    m: *const rewire_monitor,
    enclave_id: *const u8,
    out_state: *mut u32,
    out_epoch: *mut u64,
) -> rewire_result {
    guard(|| unsafe {
        let id = array::<16>(enclave_id)?;
        let st = monitor_mut(m)?.status(&id).ok_or(Error::UnknownEnclave)?;
        let s = match st.state {
            EnclaveState::Running => crate::REWIRE_STATE_RUNNING,
            EnclaveState::Frozen => crate::REWIRE_STATE_FROZEN,
            EnclaveState::Migrated => crate::REWIRE_STATE_MIGRATED,
            EnclaveState::Receiving => crate::REWIRE_STATE_RECEIVING,
            EnclaveState::Pending => crate::REWIRE_STATE_PENDING,
            EnclaveState::Gone => crate::REWIRE_STATE_GONE,
        };
        if out_epoch.is_null() {
            return Err(Error::NullPointer);
        }
        put(out_state, s)?;
        put(out_epoch, st.epoch)
    })
}

/// Whether the enclave may be scheduled here now. A framework must ask
/// before it runs an enclave. NULL arguments answer false.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_may_run(
    m: *const rewire_monitor,
    enclave_id: *const u8,
) -> bool {
    let mut yes = false;
    let _ = guard(|| unsafe {
        yes = monitor_mut(m)?.may_run(&array::<16>(enclave_id)?);
        Ok(())
    });
    yes
}

/// Seal data for an installed enclave under this device's key (the blob the
/// framework stores as the enclave's Sealed section).
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_seal(
    m: *mut rewire_monitor,
    enclave_id: *const u8,
    data: *const u8,
    len: usize,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> rewire_result {
    guard(|| unsafe {
        let id = array::<16>(enclave_id)?;
        let blob = monitor_mut(m)?.seal_data(&id, input(data, len)?)?;
        output(&blob, buf, cap, out_len)
    })
}

/// Open a sealed blob of an enclave on this device.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_unseal(
    m: *const rewire_monitor,
    enclave_id: *const u8,
    blob: *const u8,
    len: usize,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> rewire_result {
    guard(|| unsafe {
        let id = array::<16>(enclave_id)?;
        let plain = monitor_mut(m)?.unseal_data(&id, input(blob, len)?)?;
        output(&plain, buf, cap, out_len)
    })
}

/// Seal a checkpoint of an enclave held here (running, frozen or pending):
/// `image` is whatever the framework needs to resume it. Nothing changes
/// until rewire_monitor_checkpoint_commit: store the blob durably first,
/// keeping the previous checkpoint until the commit returns.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_checkpoint_seal(
    m: *mut rewire_monitor,
    enclave_id: *const u8,
    image: *const u8,
    len: usize,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> rewire_result {
    guard(|| unsafe {
        let id = array::<16>(enclave_id)?;
        let blob = monitor_mut(m)?.seal_checkpoint(&id, input(image, len)?)?;
        output(&blob, buf, cap, out_len)
    })
}

/// Make a stored checkpoint the only one rewire_monitor_checkpoint_open
/// accepts from now on (one journal commit). Refused with nothing changed:
/// a blob this monitor did not seal for this enclave since its last commit,
/// or sealed before a restart or at another epoch
/// (REWIRE_ERR_STALE_CHECKPOINT); not a sealed blob (REWIRE_ERR_UNSEAL).
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_checkpoint_commit(
    m: *mut rewire_monitor,
    enclave_id: *const u8,
    blob: *const u8,
    len: usize,
) -> rewire_result {
    guard(|| unsafe {
        let id = array::<16>(enclave_id)?;
        monitor_mut(m)?.commit_checkpoint(&id, input(blob, len)?)
    })
}

/// Open an enclave's checkpoint after a restart: only the one committed
/// last, and only while the enclave is held here. Any other blob is
/// REWIRE_ERR_STALE_CHECKPOINT, the committed one tampered with
/// REWIRE_ERR_UNSEAL, a migrated enclave REWIRE_ERR_MIGRATED.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_monitor_checkpoint_open(
    m: *const rewire_monitor,
    enclave_id: *const u8,
    blob: *const u8,
    len: usize,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> rewire_result {
    guard(|| unsafe {
        let id = array::<16>(enclave_id)?;
        let image = monitor_mut(m)?.restore_checkpoint(&id, input(blob, len)?)?;
        output(&image, buf, cap, out_len)
    })
}
