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

/// The randomness ring's TLS draws: the callback given to `rewire_init`,
/// health-checked. `false`: none (not initialised, the callback failed, or a
/// stuck or repeated draw).
fn platform_random(buf: &mut [u8]) -> bool {
    let f = RANDOM.load(Ordering::SeqCst);
    if f == 0 {
        return false;
    }
    // safe: the value was stored from a RandomFn in rewire_init.
    let f: RandomFn = unsafe { core::mem::transmute::<usize, RandomFn>(f) };
    // safe: callback contract; buf is valid for its length.
    let rc = unsafe {
        f(
            RANDOM_USERDATA.load(Ordering::SeqCst),
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    rc == 0 && healthy(buf)
}

#[cfg(target_os = "none")]
fn platform_getrandom(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    if platform_random(buf) {
        Ok(())
    } else {
        Err(getrandom::Error::UNSUPPORTED)
    }
}

#[cfg(target_os = "none")]
getrandom::register_custom_getrandom!(platform_getrandom);

/// aarch64 bare metal is built for the `-linux-gnu` target (docs/building.md
/// §5), so its crypto asks a kernel for two things; librewire.a answers both
/// itself and the monitor links no libc stand-ins for them.
#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
mod linux_shims {
    use core::ffi::{c_int, c_long, c_ulong};
    use core::sync::atomic::{AtomicI32, Ordering};

    const SYS_GETRANDOM: c_long = 278; // aarch64's number
    const AT_HWCAP: c_ulong = 16;
    const ENOSYS: i32 = 38;
    const EIO: i32 = 5;

    static ERRNO: AtomicI32 = AtomicI32::new(0);

    /// getrandom 0.2 fills its buffer with `syscall(SYS_getrandom, buf, len,
    /// 0)`: answered from the `rewire_init` callback. Every other number
    /// fails with ENOSYS. The C prototype is variadic; on AAPCS64 ELF
    /// targets variadic integer arguments travel in x0..x7 exactly like
    /// fixed ones, so this fixed-argument definition receives them.
    #[no_mangle]
    pub unsafe extern "C" fn syscall(nr: c_long, buf: *mut u8, len: usize) -> c_long {
        if nr != SYS_GETRANDOM {
            ERRNO.store(ENOSYS, Ordering::SeqCst);
            return -1;
        }
        if buf.is_null() || len > isize::MAX as usize {
            ERRNO.store(EIO, Ordering::SeqCst);
            return -1;
        }
        // safe: getrandom passes its own buffer of `len` writable bytes.
        let out = unsafe { core::slice::from_raw_parts_mut(buf, len) };
        if super::platform_random(out) {
            len as c_long
        } else {
            out.fill(0);
            ERRNO.store(EIO, Ordering::SeqCst);
            -1
        }
    }

    /// Where getrandom reads the error of a failed `syscall`.
    #[no_mangle]
    pub extern "C" fn __errno_location() -> *mut c_int {
        ERRNO.as_ptr()
    }

    /// ring's CPU-feature probe (`getauxval(AT_HWCAP)`), answered from
    /// ID_AA64ISAR0_EL1, which every exception level a monitor runs at
    /// (EL1..EL3) may read: AES, PMULL, SHA-256 and SHA-512 instructions
    /// select ring's hardware paths. Any other query answers 0.
    #[no_mangle]
    pub extern "C" fn getauxval(kind: c_ulong) -> c_ulong {
        if kind != AT_HWCAP {
            return 0;
        }
        let isar0: u64;
        // safe: a read of an ID register: no memory, no side effect.
        unsafe {
            core::arch::asm!("mrs {}, ID_AA64ISAR0_EL1", out(reg) isar0,
                options(nomem, nostack, preserves_flags))
        };
        hwcap(isar0)
    }

    /// The target's prebuilt `alloc` was compiled to unwind, and its
    /// formatting code names the unwinder; librewire is built with
    /// `panic = "abort"`, so nothing ever unwinds. Both only halt.
    #[no_mangle]
    pub extern "C" fn _Unwind_Resume(_exception: *mut core::ffi::c_void) -> ! {
        panic!("unwinding on bare metal")
    }

    /// See `_Unwind_Resume`: referenced from unwind tables, never called.
    #[no_mangle]
    pub extern "C" fn rust_eh_personality() -> ! {
        panic!("unwinding on bare metal")
    }

    /// AT_HWCAP bits (Linux's arm64 numbering) for an ID_AA64ISAR0_EL1 value.
    pub(super) fn hwcap(isar0: u64) -> c_ulong {
        const HWCAP_AES: c_ulong = 1 << 3;
        const HWCAP_PMULL: c_ulong = 1 << 4;
        const HWCAP_SHA2: c_ulong = 1 << 6;
        const HWCAP_SHA512: c_ulong = 1 << 21;
        let aes = (isar0 >> 4) & 0xf; // 1: AES, 2: AES + PMULL
        let sha2 = (isar0 >> 12) & 0xf; // 1: SHA-256, 2: + SHA-512
        let mut caps = 0;
        if aes >= 1 {
            caps |= HWCAP_AES;
        }
        if aes >= 2 {
            caps |= HWCAP_PMULL;
        }
        if sha2 >= 1 {
            caps |= HWCAP_SHA2;
        }
        if sha2 >= 2 {
            caps |= HWCAP_SHA512;
        }
        caps
    }
}

/// TLS randoms and X25519 keys reach ring through getrandom, not through
/// the monitor's DRBG: refuse a stuck request (all bytes equal) or one that
/// starts like the previous one, as rewire-core's rng does for its draws.
fn healthy(buf: &[u8]) -> bool {
    static LAST: AtomicU64 = AtomicU64::new(0);
    if buf.len() < 16 {
        return true;
    }
    if rewire_core::crypto::random_is_stuck(buf) {
        return false;
    }
    let mut head = [0u8; 8];
    head.copy_from_slice(&buf[..8]);
    let head = u64::from_le_bytes(head);
    LAST.swap(head, Ordering::SeqCst) != head
}

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
