//! One TLS connection on the host link, as two threads: a reader that feeds
//! the TLS state and decodes frames, and the only writer of the socket. No
//! lock is held across blocking I/O, so a peer that stops reading cannot
//! stall our reading (and through it the whole agent).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rewire_core::link::{self, Decoder, Frame, Kind};
use rustls::pki_types::CertificateDer;

use crate::Ev;

/// Frames queued for one connection before it counts as too slow and is closed.
pub const QUEUE: usize = 1024;
/// How long a TLS handshake may take.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// What the router holds for a live connection.
#[derive(Clone)]
pub struct Out {
    pub tx: SyncSender<Vec<u8>>,
}

impl Out {
    /// Queue an encoded frame; false if the connection is gone or too slow
    /// (the router then forgets it and the writer closes it).
    pub fn send(&self, kind: Kind, payload: &[u8]) -> bool {
        match link::encode(kind, payload) {
            Ok(f) => self.send_encoded(f),
            Err(_) => false,
        }
    }

    /// Queue a frame already encoded (one encoding for many connections).
    pub fn send_encoded(&self, frame: Vec<u8>) -> bool {
        self.tx.try_send(frame).is_ok()
    }
}

/// Complete the handshake on a blocking socket, then run the connection:
/// report `Ev::Up` with the peer's certificate, then frames, then `Ev::Closed`.
/// `handshaking` is released when the handshake ends, whatever its outcome.
pub fn run<T>(
    id: u64,
    sock: TcpStream,
    mut conn: rustls::Connection,
    ev: SyncSender<Ev>,
    handshaking: Option<T>,
) {
    let hs = handshake(&sock, &mut conn);
    drop(handshaking);
    let peer_cert = match hs {
        Ok(c) => c,
        Err(e) => {
            let _ = ev.send(Ev::Closed {
                id,
                why: format!("TLS handshake: {e}"),
            });
            return;
        }
    };
    let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
    // Our queue bounds what waits; rustls must take a whole frame or nothing
    // (with its default 64 KiB limit, a write could stop mid-frame).
    conn.set_buffer_limit(None);
    let conn = Arc::new(Mutex::new(conn));
    let wsock = match sock.try_clone() {
        Ok(s) => s,
        Err(e) => {
            let _ = ev.send(Ev::Closed {
                id,
                why: format!("socket: {e}"),
            });
            return;
        }
    };
    let c2 = conn.clone();
    let (kick_tx, kick_rx) = sync_channel::<()>(1);
    thread::spawn(move || writer(wsock, c2, rx, kick_rx));
    if ev
        .send(Ev::Up {
            id,
            cert: peer_cert,
            out: Out { tx },
        })
        .is_err()
    {
        return;
    }
    // The writer closes the socket once the router lets go of this
    // connection, after any last frame (an Error saying why) has gone out.
    let why = reader(id, &sock, &conn, &ev, &kick_tx);
    let _ = ev.send(Ev::Closed { id, why });
}

fn handshake(
    sock: &TcpStream,
    conn: &mut rustls::Connection,
) -> io::Result<CertificateDer<'static>> {
    sock.set_read_timeout(Some(HANDSHAKE))?;
    sock.set_write_timeout(Some(HANDSHAKE))?;
    sock.set_nodelay(true)?;
    let mut s = sock;
    while conn.is_handshaking() {
        conn.complete_io(&mut s)?;
    }
    // Anything the handshake left to send (the server's last flight).
    while conn.wants_write() {
        conn.write_tls(&mut s)?;
    }
    sock.set_read_timeout(None)?;
    sock.set_write_timeout(Some(Duration::from_secs(30)))?;
    conn.peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned())
        .ok_or_else(|| io::Error::new(io::ErrorKind::PermissionDenied, "no peer certificate"))
}

fn reader(
    id: u64,
    sock: &TcpStream,
    conn: &Mutex<rustls::Connection>,
    ev: &SyncSender<Ev>,
    kick: &SyncSender<()>,
) -> String {
    let mut s = sock;
    let mut buf = vec![0u8; 64 * 1024];
    let mut dec = Decoder::new();
    let mut plain = vec![0u8; 64 * 1024];
    // The handshake may have read past its last message: records the peer
    // sent right after it (a TLS 1.3 client's first frame follows its
    // Finished at once) are already inside rustls. Take them before
    // blocking on the socket, or they would wait for bytes that never come.
    let mut first = true;
    loop {
        let n = if first {
            first = false;
            0
        } else {
            match s.read(&mut buf) {
                Ok(0) => return "closed by the peer".into(),
                Ok(n) => n,
                Err(e) => return format!("read: {e}"),
            }
        };
        let mut frames: Vec<Frame> = Vec::new();
        let mut eof = false;
        {
            let Ok(mut c) = conn.lock() else {
                return "internal: poisoned".into();
            };
            let mut src = &buf[..n];
            loop {
                if !src.is_empty() {
                    if let Err(e) = c.read_tls(&mut src) {
                        return format!("tls: {e}");
                    }
                }
                let st = match c.process_new_packets() {
                    Ok(st) => st,
                    Err(e) => return format!("tls: {e}"),
                };
                if st.peer_has_closed() {
                    eof = true;
                }
                loop {
                    match c.reader().read(&mut plain) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(k) => {
                            if let Err(e) = dec.push(&plain[..k]) {
                                return bad(ev, id, e);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return format!("tls: {e}"),
                    }
                }
                if src.is_empty() {
                    break;
                }
            }
            if c.wants_write() {
                let _ = kick.try_send(());
            }
        }
        loop {
            match dec.next() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => {
                    for f in frames.drain(..) {
                        let _ = ev.send(Ev::Frame { id, frame: f });
                    }
                    return bad(ev, id, e);
                }
            }
        }
        for f in frames {
            // Blocks when the router is behind: TCP flow control pushes back on the peer.
            if ev.send(Ev::Frame { id, frame: f }).is_err() {
                return "agent stopping".into();
            }
        }
        if eof {
            return "closed by the peer".into();
        }
    }
}

fn bad(ev: &SyncSender<Ev>, id: u64, e: rewire_core::Error) -> String {
    let _ = ev.send(Ev::Bad { id, error: e });
    format!("bad frame: {e}")
}

fn writer(
    sock: TcpStream,
    conn: Arc<Mutex<rustls::Connection>>,
    rx: Receiver<Vec<u8>>,
    kick: Receiver<()>,
) {
    let mut s = &sock;
    loop {
        // Frames to send, or a kick from the reader (TLS wants to answer something).
        let msg = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(m) => Some(m),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if kick.try_recv().is_err() {
                    continue;
                }
                None
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut tls = Vec::new();
        let mut failed = false;
        {
            let Ok(mut c) = conn.lock() else { break };
            // Encrypt frame by frame, whatever else is queued too, into one
            // socket write. rustls' own send buffer is unlimited (see run):
            // a frame is either wholly in the stream or not at all.
            let mut next = msg;
            loop {
                if let Some(m) = next.take() {
                    if c.writer().write_all(&m).is_err() {
                        failed = true;
                        break;
                    }
                }
                while c.wants_write() {
                    if c.write_tls(&mut tls).is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed || tls.len() >= 256 * 1024 {
                    break;
                }
                match rx.try_recv() {
                    Ok(m) => next = Some(m),
                    Err(_) => break,
                }
            }
        }
        if failed || s.write_all(&tls).and_then(|_| s.flush()).is_err() {
            break;
        }
    }
    close(&sock, &conn);
}

/// The router dropped us (closed, refused or too slow), or the socket
/// failed: say goodbye and close.
fn close(sock: &TcpStream, conn: &Mutex<rustls::Connection>) {
    let mut s = sock;
    if let Ok(mut c) = conn.lock() {
        c.send_close_notify();
        let mut tls = Vec::new();
        while c.wants_write() {
            if c.write_tls(&mut tls).is_err() {
                break;
            }
        }
        let _ = s.write_all(&tls);
    }
    let _ = sock.shutdown(Shutdown::Both);
}
