//! Bare-metal support: the heap the monitor hands librewire (or its own
//! allocator), the randomness hook ring needs for TLS, and the panic handler.
//!
//! Call `rewire_init` or `rewire_init_with` once, before any other function:
//! until then every call returns `REWIRE_ERR_INVALID_STATE`.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::{c_char, c_void};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use linked_list_allocator::LockedHeap;

use crate::rewire_result;
use rewire_core::Error;

/// The built-in heap (`heap`/`heap_len`), or the monitor's allocator hooks.
struct Allocator;

#[global_allocator]
static ALLOCATOR: Allocator = Allocator;
static HEAP: LockedHeap = LockedHeap::empty();
static HOOK_ALLOC: AtomicUsize = AtomicUsize::new(0);
static HOOK_FREE: AtomicUsize = AtomicUsize::new(0);

static USERDATA: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
static RANDOM: AtomicUsize = AtomicUsize::new(0);
static PANIC: AtomicUsize = AtomicUsize::new(0);
static PANIC_WITH: AtomicUsize = AtomicUsize::new(0);
static CLAIMED: AtomicBool = AtomicBool::new(false);
static READY: AtomicBool = AtomicBool::new(false);

type RandomFn = unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> u32;
// Typed as returning: a C handler that returns anyway is not undefined
// behaviour, librewire spins after it.
type PanicFn = unsafe extern "C" fn();
type PanicWithFn = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, u32);
type AllocFn = unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void, *mut c_void, usize, usize);

/// What `rewire_init_with` takes. Zero-initialise it, set `struct_size =
/// sizeof(rewire_init_config)` and the members you use: fields added in later
/// versions go at the end, so a program built against this header keeps
/// working with a later library. Give **either** `heap`/`heap_len` **or**
/// both `alloc` and `free`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct rewire_init_config {
    /// `sizeof(rewire_init_config)` as the caller compiled it.
    pub struct_size: usize,
    /// Passed first to every callback below.
    pub userdata: *mut c_void,
    /// The built-in heap: `heap_len` bytes (at least 64 KiB) at `heap`, for
    /// librewire's exclusive use from now on. Heap sizing: as `rewire_init`.
    pub heap: *mut u8,
    pub heap_len: usize,
    /// Or the monitor's allocator: `alloc` returns `size` bytes aligned to
    /// `align` (a power of two, at most 4096), or NULL when there is no
    /// memory (librewire then ends in `on_panic`, as with a full heap);
    /// `free` releases what `alloc` returned, with the same `size` and
    /// `align`. librewire wipes every block before it frees it. A pointer
    /// not aligned as asked is released again and treated as NULL.
    pub alloc: Option<
        unsafe extern "C" fn(userdata: *mut c_void, size: usize, align: usize) -> *mut c_void,
    >,
    pub free: Option<
        unsafe extern "C" fn(userdata: *mut c_void, ptr: *mut c_void, size: usize, align: usize),
    >,
    /// Required: the randomness used inside TLS (the contract of
    /// `rewire_platform_callbacks.random`).
    pub random:
        Option<unsafe extern "C" fn(userdata: *mut c_void, buf: *mut u8, len: usize) -> u32>,
    /// Called if librewire hits an internal bug (NULL: it spins forever):
    /// the panic message and the source file (NUL-terminated, truncated to
    /// 255 and 127 bytes; they never hold secrets) and line. It should not
    /// return (reset, or stop the hart); if it does, librewire spins.
    pub on_panic: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            message: *const c_char,
            file: *const c_char,
            line: u32,
        ),
    >,
}

/// Whether `rewire_init` or `rewire_init_with` has completed.
pub(crate) fn initialised() -> bool {
    READY.load(Ordering::Acquire)
}

// safe (the impl): each method forwards to the built-in heap or to the
// monitor's hooks, whose contract (rewire_init_config) is GlobalAlloc's.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let a = HOOK_ALLOC.load(Ordering::Acquire);
        if a == 0 {
            // safe: GlobalAlloc's contract, passed on.
            return unsafe { HEAP.alloc(layout) };
        }
        // safe: stored from an AllocFn in rewire_init_with.
        let f = unsafe { core::mem::transmute::<usize, AllocFn>(a) };
        // safe: the hook's contract.
        let p = unsafe {
            f(
                USERDATA.load(Ordering::Acquire),
                layout.size(),
                layout.align(),
            )
        };
        if !p.is_null() && (p as usize) % layout.align() != 0 {
            // safe: p came from alloc with this size and align.
            unsafe { self.dealloc(p as *mut u8, layout) };
            return core::ptr::null_mut();
        }
        p as *mut u8
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Whatever the block held (keys, plaintext chunks, TLS records, the
        // old copy of a grown buffer) is wiped before the memory is reused.
        // safe: GlobalAlloc's contract: `ptr` holds `layout.size()` bytes.
        zeroize::Zeroize::zeroize(unsafe { core::slice::from_raw_parts_mut(ptr, layout.size()) });
        let f = HOOK_FREE.load(Ordering::Acquire);
        if f == 0 {
            // safe: GlobalAlloc's contract, passed on.
            return unsafe { HEAP.dealloc(ptr, layout) };
        }
        // safe: stored from a FreeFn in rewire_init_with.
        let f = unsafe { core::mem::transmute::<usize, FreeFn>(f) };
        // safe: the hook's contract.
        unsafe {
            f(
                USERDATA.load(Ordering::Acquire),
                ptr as *mut c_void,
                layout.size(),
                layout.align(),
            )
        }
    }
}

/// Bare metal only: give librewire its heap (`heap_len` bytes at `heap`) and
/// the randomness source
/// used inside TLS (the same contract as `rewire_platform_callbacks.random`).
/// `on_panic` (may be NULL) is called if librewire hits an internal bug; it
/// should not return (if it does, librewire spins). Without it librewire spins forever. Heap: about 100 KiB
/// per migration in flight plus up to 70 KiB per open incoming channel (see
/// `rewire_monitor_set_max_sessions`, 2 by default on bare metal); 256 KiB
/// serves one migration and two incoming channels. An allocation that does
/// not fit ends in `on_panic`: size the heap for the sessions allowed.
/// Calling it twice returns `REWIRE_ERR_INVALID_STATE`; until it has
/// succeeded, every other call returns `REWIRE_ERR_INVALID_STATE`.
/// `rewire_init_with` is the same with allocator hooks, and an `on_panic`
/// that is told the message and location.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_init(
    heap: *mut u8,
    heap_len: usize,
    random: Option<unsafe extern "C" fn(userdata: *mut c_void, buf: *mut u8, len: usize) -> u32>,
    random_userdata: *mut c_void,
    on_panic: Option<unsafe extern "C" fn()>,
) -> rewire_result {
    let config = rewire_init_config {
        struct_size: core::mem::size_of::<rewire_init_config>(),
        userdata: random_userdata,
        heap,
        heap_len,
        alloc: None,
        free: None,
        random,
        on_panic: None,
    };
    // safe: a valid config on the stack.
    let rc = unsafe { init(&config) };
    if rc == 0 {
        if let Some(p) = on_panic {
            PANIC.store(p as usize, Ordering::SeqCst);
        }
    }
    rc
}

/// Bare metal only: `rewire_init` with a versioned config
/// (`rewire_init_config`): the built-in heap or the monitor's allocator
/// hooks, and an `on_panic` that receives the message and location.
/// `REWIRE_ERR_NULL_POINTER` for a NULL `config` or `random`, or neither
/// heap nor hooks; `REWIRE_ERR_INVALID_ARGUMENT` for a bad `struct_size`,
/// a heap under 64 KiB, a heap and hooks both, or one hook without the
/// other; `REWIRE_ERR_INVALID_STATE` when librewire is already
/// initialised. A refused call changes nothing.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn rewire_init_with(config: *const rewire_init_config) -> rewire_result {
    // safe: NULL or a config of at least the struct_size it states.
    match unsafe { crate::callbacks::versioned(config) } {
        // safe: a copy on this stack.
        Ok(c) => unsafe { init(&c) },
        Err(e) => e.code(),
    }
}

unsafe fn init(c: &rewire_init_config) -> rewire_result {
    let Some(random) = c.random else {
        return Error::NullPointer.code();
    };
    let hooks = match (c.alloc, c.free) {
        (Some(a), Some(f)) => Some((a, f)),
        (None, None) => None,
        _ => return Error::InvalidArgument.code(),
    };
    match hooks {
        // Hooks: no heap as well.
        Some(_) if !c.heap.is_null() || c.heap_len != 0 => return Error::InvalidArgument.code(),
        Some(_) => {}
        // The built-in heap: present, and at least 64 KiB.
        None if c.heap.is_null() => return Error::NullPointer.code(),
        None if c.heap_len < 64 * 1024 => return Error::InvalidArgument.code(),
        None => {}
    }
    if CLAIMED.swap(true, Ordering::SeqCst) {
        return Error::InvalidState.code();
    }
    USERDATA.store(c.userdata, Ordering::SeqCst);
    RANDOM.store(random as usize, Ordering::SeqCst);
    if let Some(p) = c.on_panic {
        PANIC_WITH.store(p as usize, Ordering::SeqCst);
    }
    match hooks {
        Some((a, f)) => {
            HOOK_FREE.store(f as usize, Ordering::SeqCst);
            HOOK_ALLOC.store(a as usize, Ordering::SeqCst);
        }
        // safe: the monitor gives librewire exclusive use of this region, once.
        None => unsafe { HEAP.lock().init(c.heap, c.heap_len) },
    }
    READY.store(true, Ordering::Release);
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
    let rc = unsafe { f(USERDATA.load(Ordering::SeqCst), buf.as_mut_ptr(), buf.len()) };
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

/// A `-linux-gnu` target's prebuilt `alloc` was compiled to unwind, and its
/// formatting code names the unwinder; librewire is built with
/// `panic = "abort"`, so nothing ever unwinds. Both only halt.
#[cfg(target_os = "linux")]
mod unwind_stubs {
    #[no_mangle]
    pub extern "C" fn _Unwind_Resume(_exception: *mut core::ffi::c_void) -> ! {
        panic!("unwinding on bare metal") // safe: unreachable: built with panic = "abort", nothing unwinds
    }

    /// Referenced from unwind tables, never called.
    #[no_mangle]
    pub extern "C" fn rust_eh_personality() -> ! {
        panic!("unwinding on bare metal") // safe: unreachable: built with panic = "abort", nothing unwinds
    }
}

/// aarch64 bare metal is built for the `-linux-gnu` target (docs/building.md
/// §4.1), so its crypto asks a kernel for two things; librewire.a answers both
/// itself and the monitor links no libc stand-ins for them. The x86_64 test
/// build (the bare-metal C tests under valgrind and ASan, linked with glibc)
/// answers getrandom the same way and leaves errno to the C library.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "aarch64", target_arch = "x86_64")
))]
mod linux_shims {
    use core::ffi::{c_int, c_long};

    #[cfg(target_arch = "aarch64")]
    const SYS_GETRANDOM: c_long = 278;
    #[cfg(target_arch = "x86_64")]
    const SYS_GETRANDOM: c_long = 318;
    const ENOSYS: c_int = 38;
    const EIO: c_int = 5;

    #[cfg(not(target_arch = "aarch64"))]
    extern "C" {
        fn __errno_location() -> *mut c_int;
    }

    fn set_errno(e: c_int) {
        // safe: the C library's (or, on aarch64, our own) errno location.
        unsafe { *__errno_location() = e };
    }

    /// getrandom 0.2 fills its buffer with `syscall(SYS_getrandom, buf, len,
    /// 0)`: answered from the `rewire_init` callback. Every other number
    /// fails with ENOSYS. The C prototype is variadic; on AAPCS64 and
    /// x86-64 SysV ELF targets variadic integer arguments travel in the
    /// same registers as fixed ones, so this fixed-argument definition
    /// receives them.
    #[no_mangle]
    pub unsafe extern "C" fn syscall(nr: c_long, buf: *mut u8, len: usize) -> c_long {
        if nr != SYS_GETRANDOM {
            set_errno(ENOSYS);
            return -1;
        }
        if buf.is_null() || len > isize::MAX as usize {
            set_errno(EIO);
            return -1;
        }
        // safe: getrandom passes its own buffer of `len` writable bytes.
        let out = unsafe { core::slice::from_raw_parts_mut(buf, len) };
        if super::platform_random(out) {
            len as c_long
        } else {
            out.fill(0);
            set_errno(EIO);
            -1
        }
    }

    #[cfg(target_arch = "aarch64")]
    pub use aarch64::*;

    /// What a kernel's C library would provide on aarch64 bare metal.
    #[cfg(target_arch = "aarch64")]
    mod aarch64 {
        use core::ffi::{c_int, c_ulong};
        use core::sync::atomic::AtomicI32;

        const AT_HWCAP: c_ulong = 16;
        static ERRNO: AtomicI32 = AtomicI32::new(0);

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
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::fmt::Write;
    let p = PANIC_WITH.load(Ordering::SeqCst);
    if p != 0 {
        let mut message = crate::text::Text::<256>::new();
        let _ = write!(message, "{}", info.message());
        let mut file = crate::text::Text::<128>::new();
        let line = match info.location() {
            Some(l) => {
                let _ = file.write_str(l.file());
                l.line()
            }
            None => 0,
        };
        // safe: stored from a PanicWithFn in rewire_init_with.
        let f: PanicWithFn = unsafe { core::mem::transmute::<usize, PanicWithFn>(p) };
        // safe: both strings are NUL-terminated buffers on this stack.
        unsafe {
            f(
                USERDATA.load(Ordering::SeqCst),
                message.as_ptr(),
                file.as_ptr(),
                line,
            )
        };
    }
    let p = PANIC.load(Ordering::SeqCst);
    if p != 0 {
        // safe: stored from a PanicFn in rewire_init.
        let f: PanicFn = unsafe { core::mem::transmute::<usize, PanicFn>(p) };
        // safe: the callback contract (rewire_init).
        unsafe { f() };
    }
    // A handler that returned: spin, as without one.
    loop {
        core::hint::spin_loop();
    }
}
