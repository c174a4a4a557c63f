//! Seal `len` bytes in place with ring's ChaCha20-Poly1305 or AES-256-GCM,
//! for a bare-metal harness that counts retired instructions around the call.
#![no_std]

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};

fn no_random(_: &mut [u8]) -> Result<(), getrandom::Error> {
    Err(getrandom::Error::UNSUPPORTED)
}
getrandom::register_custom_getrandom!(no_random);

/// alg 0: ChaCha20-Poly1305, 1: AES-256-GCM. Returns 0 on success.
#[no_mangle]
pub extern "C" fn bench_seal(alg: u32, buf: *mut u8, len: usize, tag: *mut u8) -> u32 {
    if buf.is_null() || tag.is_null() {
        return 1;
    }
    let a = if alg == 0 {
        &CHACHA20_POLY1305
    } else {
        &AES_256_GCM
    };
    let Ok(k) = UnboundKey::new(a, &[7u8; 32]) else {
        return 2;
    };
    let key = LessSafeKey::new(k);
    // safe: the harness passes a buffer of `len` bytes and a 16-byte tag buffer.
    let data = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    match key.seal_in_place_separate_tag(Nonce::assume_unique_for_key([1; 12]), Aad::empty(), data)
    {
        Ok(t) => {
            // safe: 16 writable bytes.
            unsafe { core::ptr::copy_nonoverlapping(t.as_ref().as_ptr(), tag, 16) };
            0
        }
        Err(_) => 3,
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// ring is built with `alloc` in this workspace; sealing does not allocate,
/// so an allocator that always fails is enough.
struct NoAlloc;
unsafe impl core::alloc::GlobalAlloc for NoAlloc {
    unsafe fn alloc(&self, _: core::alloc::Layout) -> *mut u8 {
        core::ptr::null_mut()
    }
    unsafe fn dealloc(&self, _: *mut u8, _: core::alloc::Layout) {}
}
#[global_allocator]
static A: NoAlloc = NoAlloc;
