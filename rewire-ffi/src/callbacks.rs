//! The porting traits as structs of C callbacks.

use alloc::vec;
use alloc::vec::Vec;
use core::ffi::c_void;

use rewire_core::{EnclaveHost, EnclaveId};
use rewire_core::{Error, Platform, Section};

/// What the platform under the monitor provides. Every callback receives
/// `userdata` first and returns 0 on success (any other value is a failure).
/// All callbacks are required.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct rewire_platform_callbacks {
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
/// idempotent (see docs/c-api.md). All callbacks are required.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct rewire_enclave_callbacks {
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
