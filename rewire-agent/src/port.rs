//! The monitor port: how the agent reaches its own host's security monitor.
//!
//! A port is a byte stream carrying the reference monitor's host frames
//! (monitor/abi.h: `"RW" ‖ type u8 ‖ length u32 little-endian ‖ payload`).
//! The QEMU reference monitor's virtio console is such a stream, behind a
//! Unix socket; a Keystone-on-Linux port would open its driver's character
//! device and carry the same frames. [`MonitorPort`] is the whole interface.

use std::io::{self, Read, Write};
use std::path::PathBuf;

/// Monitor → host frames (monitor/abi.h).
pub const F_HELLO: u8 = 1;
pub const F_TO_SDS: u8 = 2;
pub const F_TO_PEER: u8 = 3;
pub const F_EVENT: u8 = 4;
pub const F_RESULT: u8 = 5;
pub const F_STATUS: u8 = 6;
pub const F_PROBE: u8 = 7;
/// Host → monitor frames.
pub const F_SDS: u8 = 32;
pub const F_PEER: u8 = 33;
pub const F_LAUNCH: u8 = 35;
pub const F_RUN: u8 = 36;
pub const F_STATUS_REQ: u8 = 37;
pub const F_PROBE_REQ: u8 = 38;
pub const F_OFF: u8 = 39;
pub const F_HELLO_REQ: u8 = 41;
/// Operator commands an SDS may pass through an agent ([`rewire_core::link::Kind::Command`]).
pub const COMMANDS: &[u8] = &[F_LAUNCH, F_RUN, F_STATUS_REQ, F_PROBE_REQ, F_OFF];
/// What the monitor reports that the agent passes to the SDS ([`rewire_core::link::Kind::Report`]).
pub const REPORTS: &[u8] = &[F_EVENT, F_RESULT, F_STATUS, F_PROBE];
/// Cap on one frame from the monitor: what a link frame can carry with the
/// report-type byte a [`rewire_core::link::Kind::Report`] adds (above the
/// monitor's largest output, OUT_MAX = 128 KiB).
pub const MAX_MONITOR_FRAME: usize = rewire_core::link::MAX_PAYLOAD - 1;

/// A way to reach the monitor: each call opens a fresh stream (the agent
/// calls it again after the monitor's host restarted).
pub trait MonitorPort: Send + 'static {
    /// What it is, for logs.
    fn describe(&self) -> String;
    /// Open the stream: a reader and a writer for the same frames.
    fn open(&mut self) -> io::Result<(Box<dyn Read + Send>, Box<dyn Write + Send>)>;
}

/// The reference monitor under QEMU: its virtio console is a Unix socket
/// QEMU listens on (`-chardev socket,server=on`).
pub struct QemuConsole(pub PathBuf);

impl MonitorPort for QemuConsole {
    fn describe(&self) -> String {
        format!("QEMU console {}", self.0.display())
    }
    fn open(&mut self) -> io::Result<(Box<dyn Read + Send>, Box<dyn Write + Send>)> {
        let s = std::os::unix::net::UnixStream::connect(&self.0)?;
        let w = s.try_clone()?;
        Ok((Box::new(s), Box::new(w)))
    }
}

/// Encode one host frame.
pub fn encode(ftype: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(7 + payload.len());
    v.extend_from_slice(b"RW");
    v.push(ftype);
    v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// Read one frame; `Ok(None)` at end of stream. The monitor's host program
/// is as untrusted as the agent, but it is ours: a frame that is not one
/// ends the stream (the port reopens it) rather than being guessed at.
pub fn read_frame(r: &mut dyn Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut h = [0u8; 7];
    let mut got = 0;
    while got < h.len() {
        let n = r.read(&mut h[got..])?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += n;
    }
    if &h[..2] != b"RW" {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a monitor frame",
        ));
    }
    let len = u32::from_le_bytes([h[3], h[4], h[5], h[6]]) as usize;
    if len > MAX_MONITOR_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "monitor frame too large",
        ));
    }
    let mut p = vec![0u8; len];
    r.read_exact(&mut p)?;
    Ok(Some((h[2], p)))
}
