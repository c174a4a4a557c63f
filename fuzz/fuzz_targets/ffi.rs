//! The C ABI (rewire-ffi linked as the rlib `rewire`), called as C would
//! with fuzzer bytes: rewire_sds_load, rewire_monitor_install,
//! rewire_monitor_handle_sds, rewire_monitor_handle_peer,
//! rewire_monitor_unseal, rewire_sds_handle, rewire_sds_endorse_host, and
//! the output side (poll_output with any capacity, poll_event, status,
//! tick), on valid handles built from fixed seeds, with NULL pointers now and
//! then. Every result is REWIRE_OK or a known code, never REWIRE_ERR_INTERNAL
//! (a caught panic).
#![no_main]
use core::ffi::c_void;
use core::ptr::{null, null_mut};

use libfuzzer_sys::fuzz_target;
use rewire::*;
use rewire_core::soft::{Clock, SoftHost, SoftPlatform};
use rewire_core::{EnclaveHost, Error, Platform, Section};
use rewire_fuzz::{
    device_secret, fixtures, image, mutate, recorded, Reader, To, EID, SM_MEASUREMENT, WALL0,
};

struct Ctx {
    p: SoftPlatform,
    h: SoftHost,
}

unsafe fn ctx<'a>(ud: *mut c_void) -> &'a mut Ctx {
    // safe: userdata is the live Box<Ctx> of this run.
    unsafe { &mut *(ud as *mut Ctx) }
}

fn rc<T>(r: rewire_core::Result<T>) -> u32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.code(),
    }
}

unsafe fn id16<'a>(id: *const u8) -> &'a [u8; 16] {
    // safe: the library passes 16 readable bytes.
    unsafe { &*(id as *const [u8; 16]) }
}

fn section(s: u32) -> Option<Section> {
    Section::ALL.get(s as usize).copied()
}

unsafe extern "C" fn random(ud: *mut c_void, buf: *mut u8, len: usize) -> u32 {
    let s = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    rc(unsafe { ctx(ud) }.p.random(s))
}
unsafe extern "C" fn monotonic_ms(ud: *mut c_void) -> u64 {
    unsafe { ctx(ud) }.p.monotonic_ms()
}
unsafe extern "C" fn wall_time(ud: *mut c_void, out: *mut u64) -> u32 {
    match unsafe { ctx(ud) }.p.wall_time() {
        Some(t) => {
            unsafe { *out = t };
            0
        }
        None => 1,
    }
}
unsafe extern "C" fn journal_read(
    ud: *mut c_void,
    buf: *mut u8,
    cap: usize,
    out: *mut usize,
) -> u32 {
    match &unsafe { ctx(ud) }.p.journal {
        None => {
            unsafe { *out = 0 };
            0
        }
        Some(j) => {
            unsafe { *out = j.len() };
            if j.len() > cap {
                return 1;
            }
            unsafe { core::ptr::copy_nonoverlapping(j.as_ptr(), buf, j.len()) };
            0
        }
    }
}
unsafe extern "C" fn journal_write(ud: *mut c_void, buf: *const u8, len: usize) -> u32 {
    let s = unsafe { core::slice::from_raw_parts(buf, len) };
    rc(unsafe { ctx(ud) }.p.journal_write(s))
}
unsafe extern "C" fn counter_read(ud: *mut c_void, out: *mut u64) -> u32 {
    match unsafe { ctx(ud) }.p.counter_read() {
        Ok(v) => {
            unsafe { *out = v };
            0
        }
        Err(e) => e.code(),
    }
}
unsafe extern "C" fn counter_increment(ud: *mut c_void, out: *mut u64) -> u32 {
    match unsafe { ctx(ud) }.p.counter_increment() {
        Ok(v) => {
            unsafe { *out = v };
            0
        }
        Err(e) => e.code(),
    }
}
unsafe extern "C" fn pause(ud: *mut c_void, id: *const u8) -> u32 {
    rc(unsafe { ctx(ud) }.h.pause(unsafe { id16(id) }))
}
unsafe extern "C" fn resume(ud: *mut c_void, id: *const u8) -> u32 {
    rc(unsafe { ctx(ud) }.h.resume(unsafe { id16(id) }))
}
unsafe extern "C" fn destroy(ud: *mut c_void, id: *const u8) -> u32 {
    rc(unsafe { ctx(ud) }.h.destroy(unsafe { id16(id) }))
}
unsafe extern "C" fn export_len(ud: *mut c_void, id: *const u8, s: u32, out: *mut u64) -> u32 {
    let Some(s) = section(s) else { return 1 };
    match unsafe { ctx(ud) }.h.export_len(unsafe { id16(id) }, s) {
        Ok(n) => {
            unsafe { *out = n };
            0
        }
        Err(e) => e.code(),
    }
}
unsafe extern "C" fn export_data(
    ud: *mut c_void,
    id: *const u8,
    s: u32,
    offset: u64,
    buf: *mut u8,
    len: usize,
    out: *mut usize,
) -> u32 {
    let Some(s) = section(s) else { return 1 };
    let b = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    match unsafe { ctx(ud) }
        .h
        .export(unsafe { id16(id) }, s, offset, b)
    {
        Ok(n) => {
            unsafe { *out = n };
            0
        }
        Err(e) => e.code(),
    }
}
unsafe extern "C" fn import_data(
    ud: *mut c_void,
    id: *const u8,
    s: u32,
    offset: u64,
    data: *const u8,
    len: usize,
) -> u32 {
    let Some(s) = section(s) else { return 1 };
    let d = unsafe { core::slice::from_raw_parts(data, len) };
    rc(unsafe { ctx(ud) }
        .h
        .import(unsafe { id16(id) }, s, offset, d))
}
unsafe extern "C" fn measure(ud: *mut c_void, id: *const u8, out: *mut u8) -> u32 {
    match unsafe { ctx(ud) }.h.measure(unsafe { id16(id) }) {
        Ok(m) => {
            unsafe { core::ptr::copy_nonoverlapping(m.as_ptr(), out, 32) };
            0
        }
        Err(e) => e.code(),
    }
}
unsafe extern "C" fn attest(
    ud: *mut c_void,
    id: *const u8,
    rd: *const u8,
    buf: *mut u8,
    cap: usize,
    out: *mut usize,
) -> u32 {
    let rd = unsafe { &*(rd as *const [u8; 32]) };
    match unsafe { ctx(ud) }.h.attest(unsafe { id16(id) }, rd) {
        Ok(ev) if ev.len() <= cap => {
            unsafe { core::ptr::copy_nonoverlapping(ev.as_ptr(), buf, ev.len()) };
            unsafe { *out = ev.len() };
            0
        }
        Ok(_) => 1,
        Err(e) => e.code(),
    }
}

/// A result of the C ABI: OK or a known code, never the one for a caught panic.
fn check(code: rewire_result) {
    if code != REWIRE_OK {
        assert!(
            Error::from_code(code).is_some(),
            "unknown result code {code}"
        );
        assert_ne!(
            code,
            Error::Internal.code(),
            "REWIRE_ERR_INTERNAL: a panic was caught"
        );
    }
}

/// A pointer to `b`, or NULL now and then (the library must refuse NULL with a length).
fn ptr(b: &[u8], null_it: bool, nulled: &mut bool) -> *const u8 {
    if null_it && !b.is_empty() {
        *nulled = true;
        null()
    } else {
        b.as_ptr()
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixtures();
    let img = image();
    let seed = [0x5du8; 32];
    let sds_pub = rewire_fuzz::keys().sds.public().0;
    let mut r = Reader::new(data);
    let mut sds: *mut rewire_sds = null_mut();
    check(unsafe { rewire_sds_load(seed.as_ptr(), f.ledger.as_ptr(), f.ledger.len(), &mut sds) });
    assert!(!sds.is_null());

    let mut host = SoftHost::default();
    host.load(EID, img.code.clone(), img.state.clone(), Vec::new());
    let ud = Box::into_raw(Box::new(Ctx {
        p: SoftPlatform::new(1000, Clock::default(), Some(WALL0)),
        h: host,
    })) as *mut c_void;
    let pcb = rewire_platform_callbacks {
        struct_size: std::mem::size_of::<rewire_platform_callbacks>(),
        userdata: ud,
        random: Some(random),
        monotonic_ms: Some(monotonic_ms),
        wall_time: Some(wall_time),
        journal_read: Some(journal_read),
        journal_write: Some(journal_write),
        counter_read: Some(counter_read),
        counter_increment: Some(counter_increment),
    };
    let ecb = rewire_enclave_callbacks {
        struct_size: std::mem::size_of::<rewire_enclave_callbacks>(),
        userdata: ud,
        pause: Some(pause),
        resume: Some(resume),
        destroy: Some(destroy),
        export_len: Some(export_len),
        export_data: Some(export_data),
        import_data: Some(import_data),
        measure: Some(measure),
        attest: Some(attest),
    };
    let ds = *device_secret(0).expose();
    let mut m: *mut rewire_monitor = null_mut();
    check(unsafe {
        rewire_monitor_new(
            ds.as_ptr(),
            SM_MEASUREMENT.as_ptr(),
            sds_pub.as_ptr(),
            0,
            &pcb,
            &ecb,
            &mut m,
        )
    });
    assert!(!m.is_null());
    let pol = &f.policy;
    assert_eq!(
        unsafe { rewire_monitor_install(m, pol.as_ptr(), pol.len()) },
        REWIRE_OK
    );
    let mut sealed = vec![0u8; 4096];
    let mut sealed_len = 0usize;
    let s = &img.sealed;
    check(unsafe {
        rewire_monitor_seal(
            m,
            EID.as_ptr(),
            s.as_ptr(),
            s.len(),
            sealed.as_mut_ptr(),
            sealed.len(),
            &mut sealed_len,
        )
    });
    sealed.truncate(sealed_len);

    let to_monitor: Vec<&[u8]> = recorded()
        .iter()
        .filter(|p| matches!(p.to, To::Host { idx: 0, conn: None }))
        .map(|p| &p.bytes[..])
        .collect();
    let to_sds: Vec<&[u8]> = recorded()
        .iter()
        .filter(|p| p.to == To::Sds)
        .map(|p| &p.bytes[..])
        .collect();
    let mut out = vec![0u8; 64 * 1024];
    for _ in 0..32 {
        if r.is_empty() {
            break;
        }
        let op = r.u8();
        let null_it = op & 0x80 != 0 && r.u8() % 8 == 0;
        let mut nulled = false;
        let code = match op % 9 {
            0 => {
                let b = r.blob();
                let mut s2: *mut rewire_sds = null_mut();
                let c = unsafe {
                    rewire_sds_load(
                        seed.as_ptr(),
                        ptr(b, null_it, &mut nulled),
                        b.len(),
                        &mut s2,
                    )
                };
                if c == REWIRE_OK {
                    let mut n = 0usize;
                    check(unsafe { rewire_sds_save(s2, out.as_mut_ptr(), out.len(), &mut n) });
                    unsafe { rewire_sds_free(s2) };
                }
                c
            }
            1 => {
                let mut b = if r.u8() & 1 == 0 {
                    pol.clone()
                } else {
                    r.blob().to_vec()
                };
                mutate(&mut b, &mut r);
                unsafe { rewire_monitor_install(m, ptr(&b, null_it, &mut nulled), b.len()) }
            }
            2 => {
                let mut b = if r.u8() & 1 == 0 && !to_monitor.is_empty() {
                    to_monitor[r.below(to_monitor.len())].to_vec()
                } else {
                    r.blob().to_vec()
                };
                mutate(&mut b, &mut r);
                unsafe { rewire_monitor_handle_sds(m, ptr(&b, null_it, &mut nulled), b.len()) }
            }
            3 => {
                let from = if r.u8() & 1 == 0 {
                    f.host_ids[1].0
                } else {
                    r.array()
                };
                let conn = if r.u8() & 1 == 0 {
                    [3u8; 16]
                } else {
                    r.array()
                };
                let b = r.blob();
                unsafe {
                    rewire_monitor_handle_peer(
                        m,
                        from.as_ptr(),
                        conn.as_ptr(),
                        ptr(b, null_it, &mut nulled),
                        b.len(),
                    )
                }
            }
            4 => {
                let id = if r.u8() & 1 == 0 { EID } else { r.array() };
                let mut b = if r.u8() & 1 == 0 {
                    sealed.clone()
                } else {
                    r.blob().to_vec()
                };
                mutate(&mut b, &mut r);
                let cap = match r.u8() % 3 {
                    0 => 0,
                    1 => r.u16() as usize,
                    _ => out.len(),
                };
                let mut n = 0usize;
                let c = unsafe {
                    rewire_monitor_unseal(
                        m,
                        id.as_ptr(),
                        ptr(&b, null_it, &mut nulled),
                        b.len(),
                        out.as_mut_ptr(),
                        cap,
                        &mut n,
                    )
                };
                if c == REWIRE_OK {
                    assert!(n <= cap);
                    if b == sealed && id == EID {
                        assert_eq!(&out[..n], &img.sealed[..]);
                    }
                }
                c
            }
            5 => {
                let mut b = if r.u8() & 1 == 0 && !to_sds.is_empty() {
                    to_sds[r.below(to_sds.len())].to_vec()
                } else {
                    r.blob().to_vec()
                };
                mutate(&mut b, &mut r);
                let mut ev = 0u32;
                let c = unsafe {
                    rewire_sds_handle(sds, ptr(&b, null_it, &mut nulled), b.len(), &mut ev)
                };
                if c == REWIRE_OK {
                    assert!((1..=4).contains(&ev));
                }
                c
            }
            6 => {
                let i = r.below(2);
                let mut cert = if r.u8() & 1 == 0 {
                    f.certificates[i].clone()
                } else {
                    r.blob().to_vec()
                };
                mutate(&mut cert, &mut r);
                let count = r.below(20);
                let mut ms = vec![0u8; count * 32];
                for (j, c) in ms.chunks_mut(32).enumerate() {
                    if j == 0 {
                        c.copy_from_slice(&SM_MEASUREMENT);
                    } else {
                        c.fill(r.u8());
                    }
                }
                let (atl, nb, na) = (r.u8() as u64, r.u64(), r.u64());
                let cap = if r.u8() & 1 == 0 {
                    out.len()
                } else {
                    r.u16() as usize % 256
                };
                let mut n = 0usize;
                unsafe {
                    rewire_sds_endorse_host(
                        sds,
                        ptr(&cert, null_it, &mut nulled),
                        cert.len(),
                        ms.as_ptr(),
                        count, r.u8() as u64 % 3,
                        atl,
                        nb,
                        na,
                        out.as_mut_ptr(),
                        cap,
                        &mut n,
                    )
                }
            }
            7 => {
                let cap = match r.u8() % 3 {
                    0 => 0,
                    1 => r.u16() as usize,
                    _ => out.len(),
                };
                let (mut dest, mut host, mut conn, mut n) = (0u32, [0u8; 32], [0u8; 16], 0usize);
                let c = unsafe {
                    rewire_monitor_poll_output(
                        m,
                        &mut dest,
                        host.as_mut_ptr(),
                        conn.as_mut_ptr(),
                        out.as_mut_ptr(),
                        cap,
                        &mut n,
                    )
                };
                if c == REWIRE_OK {
                    assert!(dest == REWIRE_DEST_SDS || dest == REWIRE_DEST_PEER);
                    assert!(n <= cap);
                }
                let (mut ev, mut rid, mut why) = (0u32, [0u8; 16], 0u32);
                check(unsafe { rewire_monitor_poll_event(m, &mut ev, rid.as_mut_ptr(), &mut why) });
                c
            }
            _ => {
                unsafe { ctx(ud) }.p.clock.advance(r.u16() as u64 * 100);
                check(unsafe { rewire_monitor_tick(m) });
                let (mut st, mut ep) = (0u32, 0u64);
                check(unsafe { rewire_monitor_status(m, EID.as_ptr(), &mut st, &mut ep) });
                let _ = unsafe { rewire_monitor_may_run(m, EID.as_ptr()) };
                unsafe { rewire_monitor_peer_closed(m, [3u8; 16].as_ptr()) }
            }
        };
        check(code);
        if nulled {
            assert!(code == Error::NullPointer.code(), "NULL input gave {code}");
        }
    }
    unsafe { rewire_monitor_free(m) };
    // safe: the handle that used it is gone.
    drop(unsafe { Box::from_raw(ud as *mut Ctx) });
    unsafe { rewire_sds_free(sds) };
});
