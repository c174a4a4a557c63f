//! The porting traits as structs of C callbacks.

use alloc::vec;
use alloc::vec::Vec;
use core::ffi::c_void;

use rewire_core::{EnclaveHost, EnclaveId};
use rewire_core::{Error, Platform, Section};

/// What the platform under the monitor provides. Every callback receives
/// `userdata` first and returns 0 on success (any other value is a failure).
/// All callbacks are required. Set `struct_size = sizeof(rewire_platform_callbacks)`:
/// callbacks added later go at the end, and a library reads only the
/// members the caller's `struct_size` covers.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct rewire_platform_callbacks {
    /// `sizeof(rewire_platform_callbacks)` as the caller compiled it.
    pub struct_size: usize,
    pub userdata: *mut c_void,
    /// Fill `buf[0..len]` with cryptographically secure random bytes.
    pub random:
        Option<unsafe extern "C" fn(userdata: *mut c_void, buf: *mut u8, len: usize) -> u32>,
    /// Milliseconds from an arbitrary origin, never decreasing.
    pub monotonic_ms: Option<unsafe extern "C" fn(userdata: *mut c_void) -> u64>,
    /// Trusted wall time (seconds since the Unix epoch) into `*out_secs`;
    /// return non-zero if the platform has none (migrations then fail closed).
    pub wall_time: Option<unsafe extern "C" fn(userdata: *mut c_void, out_secs: *mut u64) -> u32>,
    /// Copy the stored journal blob into `buf` (capacity `cap`) and its length
    /// to `*out_len`; `*out_len = 0` if none is stored. If `cap` is too small,
    /// set `*out_len` to the length needed and return non-zero: librewire asks again.
    pub journal_read: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            buf: *mut u8,
            cap: usize,
            out_len: *mut usize,
        ) -> u32,
    >,
    /// Replace the stored journal blob durably.
    pub journal_write:
        Option<unsafe extern "C" fn(userdata: *mut c_void, buf: *const u8, len: usize) -> u32>,
    /// Read the trusted monotonic counter.
    pub counter_read: Option<unsafe extern "C" fn(userdata: *mut c_void, out: *mut u64) -> u32>,
    /// Increment the counter by one, durably; the new value into `*out`.
    pub counter_increment:
        Option<unsafe extern "C" fn(userdata: *mut c_void, out: *mut u64) -> u32>,
}

/// What the enclave framework provides. `id` points to 16 bytes; `section`
/// is `REWIRE_SECTION_CODE`, `_STATE` or `_SEALED`. Every operation must be
/// idempotent (see docs/c-api.md). All callbacks are required. Set
/// `struct_size = sizeof(rewire_enclave_callbacks)` (as for the platform's).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct rewire_enclave_callbacks {
    /// `sizeof(rewire_enclave_callbacks)` as the caller compiled it.
    pub struct_size: usize,
    pub userdata: *mut c_void,
    pub pause: Option<unsafe extern "C" fn(userdata: *mut c_void, id: *const u8) -> u32>,
    pub resume: Option<unsafe extern "C" fn(userdata: *mut c_void, id: *const u8) -> u32>,
    /// Destroy and zeroize; an absent enclave is success.
    pub destroy: Option<unsafe extern "C" fn(userdata: *mut c_void, id: *const u8) -> u32>,
    pub export_len: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            id: *const u8,
            section: u32,
            out_len: *mut u64,
        ) -> u32,
    >,
    /// Read up to `len` bytes of a section at `offset` into `buf`; the count into `*out_read`.
    pub export_data: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            id: *const u8,
            section: u32,
            offset: u64,
            buf: *mut u8,
            len: usize,
            out_read: *mut usize,
        ) -> u32,
    >,
    /// Write bytes of a section of an incoming (paused, not runnable) enclave at `offset`.
    pub import_data: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            id: *const u8,
            section: u32,
            offset: u64,
            data: *const u8,
            len: usize,
        ) -> u32,
    >,
    /// The framework's measurement of the enclave's code, 32 bytes into `out`.
    pub measure:
        Option<unsafe extern "C" fn(userdata: *mut c_void, id: *const u8, out: *mut u8) -> u32>,
    /// Framework evidence bound to `report_data` (32 bytes) into `buf`
    /// (capacity `cap`, at most 1024 bytes are used); its length into `*out_len`.
    pub attest: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            id: *const u8,
            report_data: *const u8,
            buf: *mut u8,
            cap: usize,
            out_len: *mut usize,
        ) -> u32,
    >,
}

/// A `struct_size` above this is not a size: most likely a program built
/// against a header from before `struct_size`, whose first member (a
/// pointer) lands here.
const MAX_STRUCT_SIZE: usize = 4096;

/// Copy a versioned C struct (its first member is `size_t struct_size`), as
/// Linux's `copy_struct_from_user` does. `NullPointer` for NULL.
/// `InvalidArgument` when `struct_size` is below the first version's layout
/// (today's: only one version exists; a later library reads older, shorter
/// structs and treats the members they lack as absent) or above
/// `MAX_STRUCT_SIZE`, and when a caller built against a later header set a
/// member this library does not know (the bytes past its layout must be
/// zero: otherwise a callback the caller relies on would silently never
/// run).
pub(crate) unsafe fn versioned<T: Copy>(p: *const T) -> Result<T, Error> {
    if p.is_null() {
        return Err(Error::NullPointer);
    }
    // safe: every versioned struct starts with its size_t struct_size.
    let size = unsafe { core::ptr::read_unaligned(p as *const usize) };
    let ours = core::mem::size_of::<T>();
    if size < ours || size > MAX_STRUCT_SIZE {
        return Err(Error::InvalidArgument);
    }
    // safe: the caller's struct is `size` bytes long.
    let later = unsafe { core::slice::from_raw_parts((p as *const u8).add(ours), size - ours) };
    if later.iter().any(|&b| b != 0) {
        return Err(Error::InvalidArgument);
    }
    // safe: the caller's struct is at least size_of::<T>() bytes long.
    Ok(unsafe { core::ptr::read_unaligned(p) })
}

impl rewire_platform_callbacks {
    /// All callbacks present.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let ok = self.random.is_some()
            && self.monotonic_ms.is_some()
            && self.wall_time.is_some()
            && self.journal_read.is_some()
            && self.journal_write.is_some()
            && self.counter_read.is_some()
            && self.counter_increment.is_some();
        if ok {
            Ok(())
        } else {
            Err(Error::NullPointer)
        }
    }
}

impl rewire_enclave_callbacks {
    pub(crate) fn check(&self) -> Result<(), Error> {
        let ok = self.pause.is_some()
            && self.resume.is_some()
            && self.destroy.is_some()
            && self.export_len.is_some()
            && self.export_data.is_some()
            && self.import_data.is_some()
            && self.measure.is_some()
            && self.attest.is_some();
        if ok {
            Ok(())
        } else {
            Err(Error::NullPointer)
        }
    }
}

fn ok(rc: u32, e: Error) -> Result<(), Error> {
    if rc == 0 {
        Ok(())
    } else {
        Err(e)
    }
}

/// Largest journal librewire reads back.
const MAX_JOURNAL_BLOB: usize = 2 << 20;

// The `check()` at construction guarantees every callback is present; a
// missing one still fails safely (`Error::NullPointer`) instead of panicking.
macro_rules! cb {
    ($s:expr, $f:ident) => {
        $s.$f.ok_or(Error::NullPointer)
    };
}

impl Platform for rewire_platform_callbacks {
    fn random(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        let f = cb!(self, random)?;
        // safe: the callback contract (docs/c-api.md): buf is valid for len bytes.
        ok(
            unsafe { f(self.userdata, buf.as_mut_ptr(), buf.len()) },
            Error::Random,
        )
    }
    fn monotonic_ms(&mut self) -> u64 {
        match self.monotonic_ms {
            // safe: callback contract.
            Some(f) => unsafe { f(self.userdata) },
            None => 0,
        }
    }
    fn wall_time(&mut self) -> Option<u64> {
        let f = self.wall_time?;
        let mut t = 0u64;
        // safe: callback contract; &mut t is a valid u64 pointer.
        (unsafe { f(self.userdata, &mut t) } == 0).then_some(t)
    }
    fn journal_read(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let f = cb!(self, journal_read)?;
        let mut buf = vec![0u8; 4096];
        for _ in 0..2 {
            let mut len = 0usize;
            // safe: buf is valid for buf.len() bytes; len is a valid pointer.
            let rc = unsafe { f(self.userdata, buf.as_mut_ptr(), buf.len(), &mut len) };
            if rc == 0 && len <= buf.len() {
                if len == 0 {
                    return Ok(None);
                }
                buf.truncate(len);
                return Ok(Some(buf));
            }
            if len <= buf.len() || len > MAX_JOURNAL_BLOB {
                return Err(Error::Storage);
            }
            // The length comes from untrusted storage: never let it abort the monitor.
            buf.try_reserve_exact(len - buf.len())
                .map_err(|_| Error::Storage)?;
            buf.resize(len, 0);
        }
        Err(Error::Storage)
    }
    fn journal_write(&mut self, blob: &[u8]) -> Result<(), Error> {
        let f = cb!(self, journal_write)?;
        // safe: callback contract.
        ok(
            unsafe { f(self.userdata, blob.as_ptr(), blob.len()) },
            Error::Storage,
        )
    }
    fn counter_read(&mut self) -> Result<u64, Error> {
        let f = cb!(self, counter_read)?;
        let mut v = 0u64;
        // safe: callback contract.
        ok(unsafe { f(self.userdata, &mut v) }, Error::Counter)?;
        Ok(v)
    }
    fn counter_increment(&mut self) -> Result<u64, Error> {
        let f = cb!(self, counter_increment)?;
        let mut v = 0u64;
        // safe: callback contract.
        ok(unsafe { f(self.userdata, &mut v) }, Error::Counter)?;
        Ok(v)
    }
}

impl EnclaveHost for rewire_enclave_callbacks {
    fn pause(&mut self, id: &EnclaveId) -> Result<(), Error> {
        let f = cb!(self, pause)?;
        // safe: callback contract; id is 16 readable bytes.
        ok(unsafe { f(self.userdata, id.as_ptr()) }, Error::Host)
    }
    fn resume(&mut self, id: &EnclaveId) -> Result<(), Error> {
        let f = cb!(self, resume)?;
        // safe: as above.
        ok(unsafe { f(self.userdata, id.as_ptr()) }, Error::Host)
    }
    fn destroy(&mut self, id: &EnclaveId) -> Result<(), Error> {
        let f = cb!(self, destroy)?;
        // safe: as above.
        ok(unsafe { f(self.userdata, id.as_ptr()) }, Error::Host)
    }
    fn export_len(&mut self, id: &EnclaveId, section: Section) -> Result<u64, Error> {
        let f = cb!(self, export_len)?;
        let mut n = 0u64;
        // safe: as above.
        ok(
            unsafe { f(self.userdata, id.as_ptr(), section as u32, &mut n) },
            Error::Host,
        )?;
        Ok(n)
    }
    fn export(
        &mut self,
        id: &EnclaveId,
        section: Section,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, Error> {
        let f = cb!(self, export_data)?;
        let mut n = 0usize;
        // safe: buf is valid for buf.len() bytes.
        let rc = unsafe {
            f(
                self.userdata,
                id.as_ptr(),
                section as u32,
                offset,
                buf.as_mut_ptr(),
                buf.len(),
                &mut n,
            )
        };
        ok(rc, Error::Host)?;
        if n > buf.len() {
            return Err(Error::Host);
        }
        Ok(n)
    }
    fn import(
        &mut self,
        id: &EnclaveId,
        section: Section,
        offset: u64,
        data: &[u8],
    ) -> Result<(), Error> {
        let f = cb!(self, import_data)?;
        // safe: data is valid for data.len() bytes.
        let rc = unsafe {
            f(
                self.userdata,
                id.as_ptr(),
                section as u32,
                offset,
                data.as_ptr(),
                data.len(),
            )
        };
        ok(rc, Error::Host)
    }
    fn measure(&mut self, id: &EnclaveId) -> Result<[u8; 32], Error> {
        let f = cb!(self, measure)?;
        let mut m = [0u8; 32];
        // safe: m is 32 writable bytes.
        ok(
            unsafe { f(self.userdata, id.as_ptr(), m.as_mut_ptr()) },
            Error::Host,
        )?;
        Ok(m)
    }
    fn attest(&mut self, id: &EnclaveId, report_data: &[u8; 32]) -> Result<Vec<u8>, Error> {
        let f = cb!(self, attest)?;
        let mut buf = vec![0u8; rewire_core::wire::MAX_FRAMEWORK_EVIDENCE];
        let mut n = 0usize;
        // safe: buf is valid for buf.len() bytes.
        let rc = unsafe {
            f(
                self.userdata,
                id.as_ptr(),
                report_data.as_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut n,
            )
        };
        ok(rc, Error::Host)?;
        if n > buf.len() {
            return Err(Error::Host);
        }
        buf.truncate(n);
        Ok(buf)
    }
}

/// The callbacks as a hostile or failing C platform and framework would
/// behave: every failure code maps to its typed error, and every length a
/// callback reports is checked before librewire uses it.
#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// What the fake C side answers; `userdata` points to one of these.
    #[derive(Default)]
    struct Fake {
        rc: u32,
        value: u64,
        /// The journal: its length as reported, the bytes copied.
        journal: Vec<u8>,
        journal_claim: Option<usize>,
        journal_calls: RefCell<Vec<usize>>,
        /// The count export/attest report, whatever they wrote.
        count: Option<usize>,
        written: RefCell<Vec<u8>>,
    }

    fn fake(ud: *mut c_void) -> &'static Fake {
        // safe: every test passes a pointer to a live Fake as userdata.
        unsafe { &*(ud as *const Fake) }
    }

    unsafe extern "C" fn random(ud: *mut c_void, buf: *mut u8, len: usize) -> u32 {
        // safe: the contract: buf is valid for len bytes.
        unsafe { core::ptr::write_bytes(buf, 0xA5, len) };
        fake(ud).rc
    }
    unsafe extern "C" fn ms(ud: *mut c_void) -> u64 {
        fake(ud).value
    }
    unsafe extern "C" fn wall(ud: *mut c_void, out: *mut u64) -> u32 {
        // safe: out is a valid u64.
        unsafe { *out = fake(ud).value };
        fake(ud).rc
    }
    unsafe extern "C" fn jread(ud: *mut c_void, buf: *mut u8, cap: usize, out: *mut usize) -> u32 {
        let f = fake(ud);
        f.journal_calls.borrow_mut().push(cap);
        let len = f.journal_claim.unwrap_or(f.journal.len());
        // safe: out is valid; buf is valid for cap bytes.
        unsafe { *out = len };
        if len > cap {
            return 1;
        }
        let n = f.journal.len().min(cap);
        unsafe { core::ptr::copy_nonoverlapping(f.journal.as_ptr(), buf, n) };
        f.rc
    }
    unsafe extern "C" fn jwrite(ud: *mut c_void, buf: *const u8, len: usize) -> u32 {
        // safe: buf is valid for len bytes.
        let s = unsafe { core::slice::from_raw_parts(buf, len) };
        fake(ud).written.borrow_mut().extend_from_slice(s);
        fake(ud).rc
    }
    unsafe extern "C" fn counter(ud: *mut c_void, out: *mut u64) -> u32 {
        // safe: out is a valid u64.
        unsafe { *out = fake(ud).value };
        fake(ud).rc
    }
    unsafe extern "C" fn id_op(ud: *mut c_void, _id: *const u8) -> u32 {
        fake(ud).rc
    }
    unsafe extern "C" fn export_len(
        ud: *mut c_void,
        _id: *const u8,
        _s: u32,
        out: *mut u64,
    ) -> u32 {
        // safe: out is a valid u64.
        unsafe { *out = fake(ud).value };
        fake(ud).rc
    }
    unsafe extern "C" fn export_data(
        ud: *mut c_void,
        _id: *const u8,
        _s: u32,
        _off: u64,
        buf: *mut u8,
        len: usize,
        out: *mut usize,
    ) -> u32 {
        // safe: buf is valid for len bytes; out is valid.
        unsafe {
            core::ptr::write_bytes(buf, 7, len);
            *out = fake(ud).count.unwrap_or(len);
        }
        fake(ud).rc
    }
    unsafe extern "C" fn import_data(
        ud: *mut c_void,
        _id: *const u8,
        _s: u32,
        _off: u64,
        data: *const u8,
        len: usize,
    ) -> u32 {
        // safe: data is valid for len bytes.
        let s = unsafe { core::slice::from_raw_parts(data, len) };
        fake(ud).written.borrow_mut().extend_from_slice(s);
        fake(ud).rc
    }
    unsafe extern "C" fn measure(ud: *mut c_void, _id: *const u8, out: *mut u8) -> u32 {
        // safe: out is 32 writable bytes.
        unsafe { core::ptr::write_bytes(out, 3, 32) };
        fake(ud).rc
    }
    unsafe extern "C" fn attest(
        ud: *mut c_void,
        _id: *const u8,
        _rd: *const u8,
        buf: *mut u8,
        cap: usize,
        out: *mut usize,
    ) -> u32 {
        let n = fake(ud).count.unwrap_or(5);
        // safe: buf is valid for cap bytes; out is valid.
        unsafe {
            core::ptr::write_bytes(buf, 9, n.min(cap));
            *out = n;
        }
        fake(ud).rc
    }

    fn platform(f: &Fake) -> rewire_platform_callbacks {
        rewire_platform_callbacks {
            struct_size: core::mem::size_of::<rewire_platform_callbacks>(),
            userdata: f as *const Fake as *mut c_void,
            random: Some(random),
            monotonic_ms: Some(ms),
            wall_time: Some(wall),
            journal_read: Some(jread),
            journal_write: Some(jwrite),
            counter_read: Some(counter),
            counter_increment: Some(counter),
        }
    }

    fn enclave(f: &Fake) -> rewire_enclave_callbacks {
        rewire_enclave_callbacks {
            struct_size: core::mem::size_of::<rewire_enclave_callbacks>(),
            userdata: f as *const Fake as *mut c_void,
            pause: Some(id_op),
            resume: Some(id_op),
            destroy: Some(id_op),
            export_len: Some(export_len),
            export_data: Some(export_data),
            import_data: Some(import_data),
            measure: Some(measure),
            attest: Some(attest),
        }
    }

    const ID: EnclaveId = [1; 16];

    #[test]
    fn every_callback_is_required() {
        let f = Fake::default();
        assert_eq!(platform(&f).check(), Ok(()));
        for i in 0..7 {
            let mut p = platform(&f);
            match i {
                0 => p.random = None,
                1 => p.monotonic_ms = None,
                2 => p.wall_time = None,
                3 => p.journal_read = None,
                4 => p.journal_write = None,
                5 => p.counter_read = None,
                _ => p.counter_increment = None,
            }
            assert_eq!(p.check(), Err(Error::NullPointer), "platform callback {i}");
        }
        assert_eq!(enclave(&f).check(), Ok(()));
        for i in 0..8 {
            let mut e = enclave(&f);
            match i {
                0 => e.pause = None,
                1 => e.resume = None,
                2 => e.destroy = None,
                3 => e.export_len = None,
                4 => e.export_data = None,
                5 => e.import_data = None,
                6 => e.measure = None,
                _ => e.attest = None,
            }
            assert_eq!(e.check(), Err(Error::NullPointer), "enclave callback {i}");
        }
    }

    #[test]
    fn platform_answers_pass_through_and_failures_are_typed() {
        let mut f = Fake {
            value: 1234,
            ..Fake::default()
        };
        let mut p = platform(&f);
        let mut buf = [0u8; 8];
        assert_eq!(p.random(&mut buf), Ok(()));
        assert_eq!(buf, [0xA5; 8]);
        assert_eq!(p.monotonic_ms(), 1234);
        assert_eq!(p.wall_time(), Some(1234));
        assert_eq!(p.counter_read(), Ok(1234));
        assert_eq!(p.counter_increment(), Ok(1234));
        assert_eq!(p.journal_write(b"blob"), Ok(()));
        assert_eq!(*f.written.borrow(), b"blob");

        f.rc = 1;
        let mut p = platform(&f);
        assert_eq!(p.random(&mut buf), Err(Error::Random));
        assert_eq!(p.wall_time(), None, "no trusted time: fail closed");
        assert_eq!(p.counter_read(), Err(Error::Counter));
        assert_eq!(p.counter_increment(), Err(Error::Counter));
        assert_eq!(p.journal_write(b"x"), Err(Error::Storage));
        // A missing callback (past check()) fails without calling anything.
        p.monotonic_ms = None;
        assert_eq!(p.monotonic_ms(), 0);
        p.random = None;
        assert_eq!(p.random(&mut buf), Err(Error::NullPointer));
    }

    #[test]
    fn journal_read_grows_once_within_the_cap() {
        // Nothing stored.
        let f = Fake::default();
        assert_eq!(platform(&f).journal_read(), Ok(None));
        // Small: read in one call, truncated to its length.
        let f = Fake {
            journal: b"small journal".to_vec(),
            ..Fake::default()
        };
        assert_eq!(
            platform(&f).journal_read(),
            Ok(Some(b"small journal".to_vec()))
        );
        assert_eq!(*f.journal_calls.borrow(), [4096]);
        // Exactly the first buffer.
        let f = Fake {
            journal: vec![4; 4096],
            ..Fake::default()
        };
        assert_eq!(platform(&f).journal_read(), Ok(Some(vec![4; 4096])));
        // Larger: asked again with the length the platform named, up to the cap.
        for len in [4097, MAX_JOURNAL_BLOB] {
            let f = Fake {
                journal: vec![5; len],
                ..Fake::default()
            };
            assert_eq!(platform(&f).journal_read(), Ok(Some(vec![5; len])), "{len}");
            assert_eq!(*f.journal_calls.borrow(), [4096, len]);
        }
        // Over the cap: refused without a second call (no allocation from
        // an untrusted length).
        let f = Fake {
            journal_claim: Some(MAX_JOURNAL_BLOB + 1),
            ..Fake::default()
        };
        assert_eq!(platform(&f).journal_read(), Err(Error::Storage));
        assert_eq!(*f.journal_calls.borrow(), [4096]);
        // A failure that names a length that fits is a failure, not a retry.
        let f = Fake {
            rc: 1,
            journal: b"abc".to_vec(),
            ..Fake::default()
        };
        assert_eq!(platform(&f).journal_read(), Err(Error::Storage));
        assert_eq!(*f.journal_calls.borrow(), [4096]);
        // A platform that names a larger length every time gets two calls.
        unsafe extern "C" fn growing(
            _: *mut c_void,
            _: *mut u8,
            cap: usize,
            out: *mut usize,
        ) -> u32 {
            // safe: out is valid.
            unsafe { *out = cap + 1 };
            1
        }
        let f = Fake::default();
        let mut p = platform(&f);
        p.journal_read = Some(growing);
        assert_eq!(p.journal_read(), Err(Error::Storage));
    }

    #[test]
    fn enclave_answers_pass_through_and_failures_are_typed() {
        let f = Fake {
            value: 77,
            ..Fake::default()
        };
        let mut e = enclave(&f);
        assert_eq!(e.pause(&ID), Ok(()));
        assert_eq!(e.resume(&ID), Ok(()));
        assert_eq!(e.destroy(&ID), Ok(()));
        assert_eq!(e.export_len(&ID, Section::State), Ok(77));
        let mut buf = [0u8; 10];
        assert_eq!(e.export(&ID, Section::Code, 0, &mut buf), Ok(10));
        assert_eq!(buf, [7; 10]);
        assert_eq!(e.import(&ID, Section::Code, 0, b"in"), Ok(()));
        assert_eq!(*f.written.borrow(), b"in");
        assert_eq!(e.measure(&ID), Ok([3; 32]));
        assert_eq!(e.attest(&ID, &[0; 32]), Ok(vec![9; 5]));

        let f = Fake {
            rc: 2,
            ..Fake::default()
        };
        let mut e = enclave(&f);
        assert_eq!(e.pause(&ID), Err(Error::Host));
        assert_eq!(e.resume(&ID), Err(Error::Host));
        assert_eq!(e.destroy(&ID), Err(Error::Host));
        assert_eq!(e.export_len(&ID, Section::State), Err(Error::Host));
        assert_eq!(e.export(&ID, Section::Code, 0, &mut buf), Err(Error::Host));
        assert_eq!(e.import(&ID, Section::Code, 0, b"in"), Err(Error::Host));
        assert_eq!(e.measure(&ID), Err(Error::Host));
        assert_eq!(e.attest(&ID, &[0; 32]), Err(Error::Host));
    }

    #[test]
    fn lengths_a_framework_reports_are_checked() {
        let mut buf = [0u8; 10];
        // export: more than the buffer holds is a lie.
        let f = Fake {
            count: Some(11),
            ..Fake::default()
        };
        assert_eq!(
            enclave(&f).export(&ID, Section::State, 0, &mut buf),
            Err(Error::Host)
        );
        // attest: evidence at the cap is kept whole; one more is refused.
        let cap = rewire_core::wire::MAX_FRAMEWORK_EVIDENCE;
        let f = Fake {
            count: Some(cap),
            ..Fake::default()
        };
        assert_eq!(enclave(&f).attest(&ID, &[0; 32]), Ok(vec![9; cap]));
        let f = Fake {
            count: Some(cap + 1),
            ..Fake::default()
        };
        assert_eq!(enclave(&f).attest(&ID, &[0; 32]), Err(Error::Host));
    }
}
