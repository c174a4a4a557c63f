//! Bare-metal support: the heap the monitor hands librewire, the randomness
//! hook ring needs for TLS, and the panic handler.
//!
//! Call `rewire_init` once, before any other function.

use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use linked_list_allocator::LockedHeap;

use crate::rewire_result;
use rewire_core::Error;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

static RANDOM: AtomicUsize = AtomicUsize::new(0);
static RANDOM_USERDATA: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
static PANIC: AtomicUsize = AtomicUsize::new(0);
static INITIALISED: AtomicBool = AtomicBool::new(false);

type RandomFn = unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> u32;
type PanicFn = unsafe extern "C" fn() -> !;

/// Bare metal only: give librewire its heap (`heap_len` bytes at `heap`) and
/// the randomness source
/// used inside TLS (the same contract as `rewire_platform_callbacks.random`).
/// `on_panic` (may be NULL) is called if librewire hits an internal bug; it
/// must not return. Without it librewire spins forever. Heap: about 100 KiB
/// per migration in flight plus up to 70 KiB per open incoming channel (see
/// `rewire_monitor_set_max_sessions`, 2 by default on bare metal); 256 KiB
/// serves one migration and two incoming channels. An allocation that does
/// not fit ends in `on_panic`: size the heap for the sessions allowed.
/// Calling it twice returns `REWIRE_ERR_INVALID_STATE`.
#[no_mangle]
pub unsafe extern "C" fn rewire_init(
    heap: *mut u8,
    heap_len: usize,
    random: Option<unsafe extern "C" fn(userdata: *mut c_void, buf: *mut u8, len: usize) -> u32>,
    random_userdata: *mut c_void,
    on_panic: Option<unsafe extern "C" fn() -> !>,
) -> rewire_result {
    let Some(random) = random else {
        return Error::NullPointer.code();
    };
    if heap.is_null() {
        return Error::NullPointer.code();
    }
    if heap_len < 64 * 1024 {
        return Error::InvalidArgument.code();
    }
    if INITIALISED.swap(true, Ordering::SeqCst) {
        return Error::InvalidState.code();
    }
    RANDOM_USERDATA.store(random_userdata, Ordering::SeqCst);
    RANDOM.store(random as usize, Ordering::SeqCst);
    if let Some(p) = on_panic {
        PANIC.store(p as usize, Ordering::SeqCst);
    }
    // safe: the monitor gives librewire exclusive use of this region, once.
    unsafe { HEAP.lock().init(heap, heap_len) };
    0
}

fn platform_getrandom(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    let f = RANDOM.load(Ordering::SeqCst);
    if f == 0 {
        return Err(getrandom::Error::UNSUPPORTED);
    }
    // safe: the value was stored from a RandomFn in rewire_init.
    let f: RandomFn = unsafe { core::mem::transmute::<usize, RandomFn>(f) };
    // safe: callback contract; buf is valid for its length.
    match unsafe {
        f(
            RANDOM_USERDATA.load(Ordering::SeqCst),
            buf.as_mut_ptr(),
            buf.len(),
        )
    } {
        0 => healthy(buf),
        _ => Err(getrandom::Error::UNSUPPORTED),
    }
}

/// TLS randoms and X25519 keys reach ring through getrandom, not through
/// the monitor's DRBG: refuse a stuck request (all bytes equal) or one that
/// starts like the previous one, as rewire-core's rng does for its draws.
fn healthy(buf: &[u8]) -> Result<(), getrandom::Error> {
    static LAST: AtomicU64 = AtomicU64::new(0);
    if buf.len() < 16 {
        return Ok(());
    }
    if rewire_core::crypto::random_is_stuck(buf) {
        return Err(getrandom::Error::UNSUPPORTED);
    }
    let mut head = [0u8; 8];
    head.copy_from_slice(&buf[..8]);
    let head = u64::from_le_bytes(head);
    if LAST.swap(head, Ordering::SeqCst) == head {
        return Err(getrandom::Error::UNSUPPORTED);
    }
    Ok(())
}

getrandom::register_custom_getrandom!(platform_getrandom);

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    let p = PANIC.load(Ordering::SeqCst);
    if p != 0 {
        // safe: stored from a PanicFn in rewire_init.
        let f: PanicFn = unsafe { core::mem::transmute::<usize, PanicFn>(p) };
        // safe: the monitor's handler does not return.
        unsafe { f() }
    }
    loop {
        core::hint::spin_loop();
    }
}
