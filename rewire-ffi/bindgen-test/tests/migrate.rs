//! A migration driven only through the bindgen-generated declarations of
//! include/rewire.h: if the header disagreed with the ABI (a missing symbol,
//! a changed struct layout or signature), this would not link or not work.
//! Callbacks forward to rewire-core's software platform and framework.

use std::ffi::{c_void, CStr};

use rewire_core::soft::{Clock, SoftHost, SoftPlatform};
use rewire_core::{EnclaveHost, Platform, Section};
use rewire_ffi_bindgen_test as c;

struct Host {
    platform: SoftPlatform,
    enclaves: SoftHost,
}

unsafe fn host<'a>(ud: *mut c_void) -> &'a mut Host {
    unsafe { &mut *(ud as *mut Host) }
}
unsafe fn id(p: *const u8) -> [u8; 16] {
    unsafe { *(p as *const [u8; 16]) }
}
fn rc<T>(r: rewire_core::Result<T>) -> u32 {
    if r.is_ok() {
        0
    } else {
        1
    }
}
fn section(s: u32) -> Section {
    match s {
        0 => Section::Code,
        1 => Section::State,
        _ => Section::Sealed,
    }
}

unsafe extern "C" fn random(ud: *mut c_void, buf: *mut u8, len: usize) -> u32 {
    rc(unsafe { host(ud) }
        .platform
        .random(unsafe { std::slice::from_raw_parts_mut(buf, len) }))
}
unsafe extern "C" fn monotonic_ms(ud: *mut c_void) -> u64 {
    unsafe { host(ud) }.platform.monotonic_ms()
}
unsafe extern "C" fn wall_time(ud: *mut c_void, out: *mut u64) -> u32 {
    match unsafe { host(ud) }.platform.wall_time() {
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
    out_len: *mut usize,
) -> u32 {
    let blob = unsafe { host(ud) }
        .platform
        .journal_read()
        .unwrap_or(None)
        .unwrap_or_default();
    unsafe { *out_len = blob.len() };
    if blob.len() > cap {
        return 1;
    }
    unsafe { std::ptr::copy_nonoverlapping(blob.as_ptr(), buf, blob.len()) };
    0
}
unsafe extern "C" fn journal_write(ud: *mut c_void, buf: *const u8, len: usize) -> u32 {
    rc(unsafe { host(ud) }
        .platform
        .journal_write(unsafe { std::slice::from_raw_parts(buf, len) }))
}
unsafe extern "C" fn counter_read(ud: *mut c_void, out: *mut u64) -> u32 {
    unsafe { *out = host(ud).platform.counter_read().unwrap_or(0) };
    0
}
unsafe extern "C" fn counter_increment(ud: *mut c_void, out: *mut u64) -> u32 {
    match unsafe { host(ud) }.platform.counter_increment() {
        Ok(v) => {
            unsafe { *out = v };
            0
        }
        Err(_) => 1,
    }
}
unsafe extern "C" fn pause(ud: *mut c_void, e: *const u8) -> u32 {
    rc(unsafe { host(ud).enclaves.pause(&id(e)) })
}
unsafe extern "C" fn resume(ud: *mut c_void, e: *const u8) -> u32 {
    rc(unsafe { host(ud).enclaves.resume(&id(e)) })
}
unsafe extern "C" fn destroy(ud: *mut c_void, e: *const u8) -> u32 {
    rc(unsafe { host(ud).enclaves.destroy(&id(e)) })
}
unsafe extern "C" fn export_len(ud: *mut c_void, e: *const u8, s: u32, out: *mut u64) -> u32 {
    match unsafe { host(ud).enclaves.export_len(&id(e), section(s)) } {
        Ok(n) => {
            unsafe { *out = n };
            0
        }
        Err(_) => 1,
    }
}
unsafe extern "C" fn export_data(
    ud: *mut c_void,
    e: *const u8,
    s: u32,
    off: u64,
    buf: *mut u8,
    len: usize,
    out: *mut usize,
) -> u32 {
    let b = unsafe { std::slice::from_raw_parts_mut(buf, len) };
    match unsafe { host(ud).enclaves.export(&id(e), section(s), off, b) } {
        Ok(n) => {
            unsafe { *out = n };
            0
        }
        Err(_) => 1,
    }
}
unsafe extern "C" fn import_data(
    ud: *mut c_void,
    e: *const u8,
    s: u32,
    off: u64,
    data: *const u8,
    len: usize,
) -> u32 {
    rc(unsafe {
        host(ud).enclaves.import(
            &id(e),
            section(s),
            off,
            std::slice::from_raw_parts(data, len),
        )
    })
}
unsafe extern "C" fn measure(ud: *mut c_void, e: *const u8, out: *mut u8) -> u32 {
    match unsafe { host(ud).enclaves.measure(&id(e)) } {
        Ok(m) => {
            unsafe { std::ptr::copy_nonoverlapping(m.as_ptr(), out, 32) };
            0
        }
        Err(_) => 1,
    }
}
unsafe extern "C" fn attest(
    ud: *mut c_void,
    e: *const u8,
    rd: *const u8,
    buf: *mut u8,
    cap: usize,
    out: *mut usize,
) -> u32 {
    let rd = unsafe { *(rd as *const [u8; 32]) };
    match unsafe { host(ud).enclaves.attest(&id(e), &rd) } {
        Ok(ev) if ev.len() <= cap => {
            unsafe {
                std::ptr::copy_nonoverlapping(ev.as_ptr(), buf, ev.len());
                *out = ev.len();
            }
            0
        }
        _ => 1,
    }
}

fn ok(r: u32) {
    assert_eq!(
        r,
        c::REWIRE_OK,
        "{}",
        unsafe { CStr::from_ptr(c::rewire_result_text(r)) }.to_string_lossy()
    );
}

#[test]
fn migration_through_generated_bindings() {
    let clock = Clock::default();
    let now = 1_800_000_000u64;
    let mut hosts: Vec<Box<Host>> = (0..2)
        .map(|i| {
            Box::new(Host {
                platform: SoftPlatform::new(i, clock.clone(), Some(now)),
                enclaves: SoftHost::default(),
            })
        })
        .collect();
    unsafe {
        assert_eq!(
            CStr::from_ptr(c::rewire_version()).to_str().unwrap(),
            env!("CARGO_PKG_VERSION")
        );
        let mut sds: *mut c::rewire_sds = std::ptr::null_mut();
        ok(c::rewire_sds_new([7u8; 32].as_ptr(), &mut sds));
        let mut sds_key = [0u8; 32];
        ok(c::rewire_sds_public_key(sds, sds_key.as_mut_ptr()));
        let sm = [0x5au8; 32];
        let mut mons = [std::ptr::null_mut::<c::rewire_monitor>(); 2];
        let mut ids = [[0u8; 32]; 2];
        for i in 0..2 {
            let ud = &mut *hosts[i] as *mut Host as *mut c_void;
            let p = c::rewire_platform_callbacks {
                struct_size: std::mem::size_of::<c::rewire_platform_callbacks>(),
                userdata: ud,
                random: Some(random),
                monotonic_ms: Some(monotonic_ms),
                wall_time: Some(wall_time),
                journal_read: Some(journal_read),
                journal_write: Some(journal_write),
                counter_read: Some(counter_read),
                counter_increment: Some(counter_increment),
            };
            let f = c::rewire_enclave_callbacks {
                struct_size: std::mem::size_of::<c::rewire_enclave_callbacks>(),
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
            let secret = [i as u8 + 1; 32];
            ok(c::rewire_monitor_new(
                secret.as_ptr(),
                sm.as_ptr(),
                sds_key.as_ptr(),
                0,
                &p,
                &f,
                &mut mons[i],
            ));
            ok(c::rewire_monitor_host_id(mons[i], ids[i].as_mut_ptr()));
            ok(c::rewire_sds_pin_device(sds, ids[i].as_ptr()));
            let (mut cert, mut len) = ([0u8; 512], 0usize);
            ok(c::rewire_monitor_certificate(
                mons[i],
                cert.as_mut_ptr(),
                cert.len(),
                &mut len,
            ));
            let (mut e, mut elen) = ([0u8; 1024], 0usize);
            ok(c::rewire_sds_endorse_host(
                sds,
                cert.as_ptr(),
                len,
                sm.as_ptr(),
                1,
                c::REWIRE_PLATFORM_RISCV64 as u64,
                2,
                now - 10,
                now + 1000,
                e.as_mut_ptr(),
                e.len(),
                &mut elen,
            ));
        }
        // An enclave on host 0.
        let eid = *b"bindgen-enclave1";
        let code = b"code of the enclave".to_vec();
        let state: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        hosts[0]
            .enclaves
            .load(eid, code.clone(), state.clone(), Vec::new());
        let m = rewire_core::crypto::sha256(&code);
        let (mut pol, mut plen) = ([0u8; 1024], 0usize);
        ok(c::rewire_sds_register_enclave(
            sds,
            eid.as_ptr(),
            m.as_ptr(),
            c::REWIRE_PLATFORM_RISCV64 as u64,
            1,
            ids[0].as_ptr(),
            pol.as_mut_ptr(),
            pol.len(),
            &mut plen,
        ));
        ok(c::rewire_monitor_install(mons[0], pol.as_ptr(), plen));
        let (mut order, mut olen) = ([0u8; 4096], 0usize);
        ok(c::rewire_sds_order(
            sds,
            eid.as_ptr(),
            ids[1].as_ptr(),
            [9u8; 16].as_ptr(),
            now + 100,
            order.as_mut_ptr(),
            order.len(),
            &mut olen,
        ));
        ok(c::rewire_monitor_handle_sds(mons[0], order.as_ptr(), olen));
        // Relay until quiet.
        let mut buf = vec![0u8; 1 << 16];
        let mut moved = true;
        while moved {
            moved = false;
            for i in 0..2 {
                loop {
                    let (mut dest, mut host_id, mut conn, mut len) =
                        (0u32, [0u8; 32], [0u8; 16], 0usize);
                    let r = c::rewire_monitor_poll_output(
                        mons[i],
                        &mut dest,
                        host_id.as_mut_ptr(),
                        conn.as_mut_ptr(),
                        buf.as_mut_ptr(),
                        buf.len(),
                        &mut len,
                    );
                    if r == c::REWIRE_ERR_EMPTY {
                        break;
                    }
                    ok(r);
                    moved = true;
                    if dest == c::REWIRE_DEST_SDS {
                        let mut ev = 0u32;
                        let _ = c::rewire_sds_handle(sds, buf.as_ptr(), len, &mut ev);
                    } else {
                        let j = ids.iter().position(|h| *h == host_id).expect("known host");
                        let _ = c::rewire_monitor_handle_peer(
                            mons[j],
                            ids[i].as_ptr(),
                            conn.as_ptr(),
                            buf.as_ptr(),
                            len,
                        );
                    }
                }
            }
        }
        let (mut st, mut epoch) = (0u32, 0u64);
        ok(c::rewire_monitor_status(
            mons[1],
            eid.as_ptr(),
            &mut st,
            &mut epoch,
        ));
        assert_eq!((st, epoch), (c::REWIRE_STATE_RUNNING, 1));
        ok(c::rewire_monitor_status(
            mons[0],
            eid.as_ptr(),
            &mut st,
            &mut epoch,
        ));
        assert_eq!(st, c::REWIRE_STATE_MIGRATED);
        assert!(!c::rewire_monitor_may_run(mons[0], eid.as_ptr()));
        assert!(c::rewire_monitor_may_run(mons[1], eid.as_ptr()));
        assert_eq!(hosts[1].enclaves.get(&eid).unwrap().state, state);
        assert_eq!(
            c::rewire_monitor_handle_sds(mons[0], order.as_ptr(), olen),
            c::REWIRE_ERR_REPLAY
        );
        let (mut loc, mut ep) = ([0u8; 32], 0u64);
        ok(c::rewire_sds_location(
            sds,
            eid.as_ptr(),
            loc.as_mut_ptr(),
            &mut ep,
        ));
        assert_eq!((loc, ep), (ids[1], 1));
        for m in mons {
            c::rewire_monitor_free(m);
        }
        c::rewire_sds_free(sds);
    }
}
