//! Adversarial tests of the `rewire-agent` binary, run as a separate process.
//!
//! The test plays every party the agent talks to:
//! - the monitor: a Unix socket the agent connects to (`--monitor qemu:PATH`),
//!   carrying `"RW" ‖ type u8 ‖ length u32 LE ‖ payload` frames;
//! - the SDS and peer agents: rustls clients presenting certificates issued by
//!   `rewire-agent cert` (or by another CA), speaking `rewire_core::link` frames.
//!
//! Synchronisation never relies on sleeping: every "nothing else happened"
//! claim is checked by sending a marker afterwards and asserting that the
//! marker is the very next thing to arrive (the agent's router handles the
//! events of one source in order), and every "the agent has seen X" by a
//! round trip (a Stats request answered after X on the same connection).

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use rewire_core::link::{decode_error, encode, Decoder, Directory, Frame, Kind, Peer, MAX_PAYLOAD};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

const BIN: &str = env!("CARGO_BIN_EXE_rewire-agent");
/// Every blocking read in this file gives up after this long.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The agent under test.
const AGENT: &str = "host-A";

// Monitor frames (monitor/abi.h), written out here rather than imported from
// the agent so that a renumbering in the agent shows up as a failure.
const F_HELLO: u8 = 1;
const F_TO_SDS: u8 = 2;
const F_EVENT: u8 = 4;
const F_SDS: u8 = 32;
const F_PEER: u8 = 33;
const F_LAUNCH: u8 = 35;
const F_RUN: u8 = 36;
const F_STATUS_REQ: u8 = 37;
const F_PROBE_REQ: u8 = 38;
const F_OFF: u8 = 39;
const F_HELLO_REQ: u8 = 41;

// Error codes on the wire (rewire_core::Error).
const DECODE: u16 = 100;
const TOO_LARGE: u16 = 101;
const UNSUPPORTED_VERSION: u16 = 104;
const WRONG_MESSAGE_TYPE: u16 = 105;
const PEER_MISMATCH: u16 = 207;
const TRUNCATED: u16 = 301;
const INVALID_ARGUMENT: u16 = 702;

const HOST_A: [u8; 32] = [0xAA; 32];
const HOST_B: [u8; 32] = [0xBB; 32];
const HOST_C: [u8; 32] = [0xCC; 32];

/// What the monitor sends the SDS first in [`Agent::sds_ready`].
const BOOT: &[u8] = b"boot: monitor up";

#[test]
fn wire_numbers_match_the_core() {
    use rewire_core::Error;
    for (code, e) in [
        (DECODE, Error::Decode),
        (TOO_LARGE, Error::TooLarge),
        (UNSUPPORTED_VERSION, Error::UnsupportedVersion),
        (WRONG_MESSAGE_TYPE, Error::WrongMessageType),
        (PEER_MISMATCH, Error::PeerMismatch),
        (TRUNCATED, Error::Truncated),
        (INVALID_ARGUMENT, Error::InvalidArgument),
    ] {
        assert_eq!(code, e as u16, "{e:?}");
    }
}

// ---------------------------------------------------------------- harness

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        // Short: the monitor's Unix socket lives here (108-byte path limit).
        let p = std::env::temp_dir().join(format!(
            "rwa-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("temp dir"); // safe: test
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Run `rewire-agent ARGS` to completion; it must succeed.
fn cli(args: &[&str]) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run rewire-agent"); // safe: test
    assert!(
        out.status.success(),
        "rewire-agent {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path") // safe: test
}

/// An operator CA made with `rewire-agent cert ca`, and what it issued.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: PathBuf) -> Pki {
        cli(&["cert", "ca", "--out", s(&dir.join("ca"))]);
        Pki { dir }
    }

    fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca").join("ca.pem")
    }

    /// `(cert, key)` for agent `name`, or for the SDS with `None`.
    fn issue(&self, name: Option<&str>) -> (PathBuf, PathBuf) {
        let out = self.dir.join("issued");
        let ca = self.dir.join("ca");
        let mut args = vec!["cert", "issue", "--ca", s(&ca), "--out", s(&out)];
        match name {
            Some(n) => args.extend(["--name", n]),
            None => args.push("--sds"),
        }
        cli(&args);
        let f = name.unwrap_or("sds");
        (out.join(format!("{f}.pem")), out.join(format!("{f}.key")))
    }
}

/// A TLS client configuration trusting `ca` and presenting `cert` (if any).
fn client_config(ca: &Path, cert: Option<&(PathBuf, PathBuf)>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let cas = CertificateDer::pem_file_iter(ca).expect("ca.pem"); // safe: test
    for c in cas {
        roots.add(c.expect("ca cert")).expect("root"); // safe: test
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3") // safe: test
        .with_root_certificates(roots);
    let cfg = match cert {
        None => b.with_no_client_auth(),
        Some((c, k)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(c)
                .expect("cert pem") // safe: test
                .collect::<Result<_, _>>()
                .expect("cert"); // safe: test
            let key = PrivateKeyDer::from_pem_file(k).expect("key"); // safe: test
            b.with_client_auth_cert(chain, key).expect("client cert") // safe: test
        }
    };
    Arc::new(cfg)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The monitor's end of the agent's monitor port.
struct Monitor(UnixStream);

impl Monitor {
    fn send(&mut self, ftype: u8, payload: &[u8]) {
        let mut v = b"RW".to_vec();
        v.push(ftype);
        v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        v.extend_from_slice(payload);
        self.0
            .write_all(&v)
            .expect("write to the agent's monitor port"); // safe: test
    }

    fn recv(&mut self) -> (u8, Vec<u8>) {
        let mut h = [0u8; 7];
        self.0
            .read_exact(&mut h)
            .expect("a frame for the monitor in time"); // safe: test
        assert_eq!(&h[..2], b"RW", "the agent sent the monitor a non-frame");
        let len = u32::from_le_bytes([h[3], h[4], h[5], h[6]]) as usize;
        let mut p = vec![0u8; len];
        self.0.read_exact(&mut p).expect("the frame's payload"); // safe: test
        (h[2], p)
    }

    /// The next frame the agent sends the monitor is exactly this one. A
    /// HELLO_REQ in between is skipped: the agent re-asks a silent monitor
    /// once a second, which a loaded machine can make happen at any point.
    fn want(&mut self, ftype: u8, payload: &[u8]) {
        let (mut t, mut p) = self.recv();
        while t == F_HELLO_REQ && ftype != F_HELLO_REQ {
            (t, p) = self.recv();
        }
        assert_eq!(
            (t, p.len()),
            (ftype, payload.len()),
            "monitor expected type {ftype}"
        );
        assert!(p == payload, "monitor: type {t} payload differs");
    }
}

/// The rewire-agent process; killed on drop.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running agent named [`AGENT`], with the monitor port accepted.
struct Agent {
    child: ChildGuard,
    addr: SocketAddr,
    /// Kept so that the agent can reopen its monitor port.
    listener: UnixListener,
    monitor: Monitor,
    pki: Pki,
    sds_cert: (PathBuf, PathBuf),
    log: PathBuf,
    dir: TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        if thread::panicking() {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("---- rewire-agent stderr ----\n{log}----");
        }
    }
}

fn start() -> Agent {
    let dir = TempDir::new();
    let pki = Pki::new(dir.0.join("pki"));
    let (cert, key) = pki.issue(Some(AGENT));
    let sds_cert = pki.issue(None);
    let sock = dir.0.join("m.sock");
    let listener = UnixListener::bind(&sock).expect("bind the monitor socket"); // safe: test
    let log = dir.0.join("agent.log");
    let err = File::create(&log).expect("log file"); // safe: test
    let monitor_arg = format!("qemu:{}", s(&sock));
    let ca = pki.ca_pem();
    let args = [
        "run",
        "--name",
        AGENT,
        "--listen",
        "127.0.0.1:0",
        "--monitor",
        monitor_arg.as_str(),
        "--ca",
        s(&ca),
        "--cert",
        s(&cert),
        "--key",
        s(&key),
        "-v",
    ];
    let child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .expect("spawn rewire-agent"); // safe: test
    let mut child = ChildGuard(child);
    let stdout = child.0.stdout.take().expect("stdout"); // safe: test
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        let _ = tx.send(r.read_line(&mut line).map(|_| line));
        // Keep draining so that the agent never writes into a closed pipe.
        let _ = io::copy(&mut r, &mut io::sink());
    });
    let line = rx.recv_timeout(TIMEOUT).expect("first stdout line in time"); // safe: test
    let line = line.expect("read stdout"); // safe: test
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse::<SocketAddr>().ok());
    let Some(addr) = addr else {
        let e = fs::read_to_string(&log).unwrap_or_default();
        panic!("unexpected first line {line:?}; stderr: {e}");
    };
    let monitor = accept_monitor(&listener, &mut child.0);
    let mut a = Agent {
        child,
        addr,
        listener,
        monitor,
        pki,
        sds_cert,
        log,
        dir,
    };
    // The agent asks a freshly opened monitor who it is.
    a.monitor.want(F_HELLO_REQ, b"");
    a
}

/// Accept the agent's connection to the monitor socket.
fn accept_monitor(listener: &UnixListener, child: &mut Child) -> Monitor {
    listener.set_nonblocking(true).expect("nonblocking"); // safe: test
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match listener.accept() {
            Ok((st, _)) => {
                st.set_nonblocking(false).expect("blocking"); // safe: test
                st.set_read_timeout(Some(TIMEOUT)).expect("timeout"); // safe: test
                st.set_write_timeout(Some(TIMEOUT)).expect("timeout"); // safe: test
                return Monitor(st);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("rewire-agent exited ({status}) before opening the monitor port");
                }
                assert!(
                    Instant::now() < deadline,
                    "the agent never connected to its monitor"
                );
                // Polling an accept, not an assertion: the agent retries every 100 ms.
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

impl Agent {
    /// Open a TLS connection presenting `cert` (or none); errors are returned.
    fn try_connect(&self, cfg: Arc<ClientConfig>) -> io::Result<Client> {
        let sock = TcpStream::connect_timeout(&self.addr, TIMEOUT)?;
        sock.set_read_timeout(Some(TIMEOUT))?;
        sock.set_write_timeout(Some(TIMEOUT))?;
        let name = ServerName::try_from(format!("{AGENT}.agent.rewire.invalid"))
            .map_err(io::Error::other)?;
        let conn = ClientConnection::new(cfg, name).map_err(io::Error::other)?;
        let mut st = StreamOwned::new(conn, sock);
        while st.conn.is_handshaking() {
            st.conn.complete_io(&mut st.sock)?;
        }
        Ok(Client {
            st,
            dec: Decoder::new(),
        })
    }

    fn connect_as(&self, cert: &(PathBuf, PathBuf)) -> Client {
        let cfg = client_config(&self.pki.ca_pem(), Some(cert));
        self.try_connect(cfg).expect("TLS connection to the agent") // safe: test
    }

    /// A new SDS connection.
    fn sds(&self) -> Client {
        self.connect_as(&self.sds_cert)
    }

    /// The test's first SDS connection, once the agent routes to and from
    /// the monitor: the monitor sends [`BOOT`] for the SDS and the SDS
    /// receives it (first thing on the connection, from the backlog or
    /// live). The agent reports the monitor port open before routing its
    /// frames, so from here on frames for the monitor are not dropped.
    fn sds_ready(&mut self) -> Client {
        self.monitor.send(F_TO_SDS, BOOT);
        let mut c = self.sds();
        c.want(Kind::FromMonitor, BOOT);
        c
    }

    /// A certificate for agent `name` from the operator's CA.
    fn agent_cert(&self, name: &str) -> (PathBuf, PathBuf) {
        self.pki.issue(Some(name))
    }

    /// `sds` gives the agent `dir` and waits until it has taken it.
    fn give_directory(&self, sds: &mut Client, dir: &Directory) -> String {
        sds.send(Kind::Peers, &dir.encode().expect("directory")); // safe: test
        sds.stats()
    }

    /// Proof that nothing reached the monitor since its last expected frame:
    /// a marker the SDS sends now is the very next frame.
    fn monitor_got_nothing_else(&mut self, sds: &mut Client, marker: &[u8]) {
        sds.send(Kind::ToMonitor, marker);
        self.monitor.want(F_SDS, marker);
    }
}

/// A TLS client on the host link.
struct Client {
    st: StreamOwned<ClientConnection, TcpStream>,
    dec: Decoder,
}

impl Client {
    fn send(&mut self, kind: Kind, payload: &[u8]) {
        let f = encode(kind, payload).expect("encode"); // safe: test
        self.raw(&f);
    }

    /// Bytes inside TLS, framed or not.
    fn raw(&mut self, bytes: &[u8]) {
        self.st.write_all(bytes).expect("write to the agent"); // safe: test
        self.st.flush().expect("flush to the agent"); // safe: test
    }

    /// Like [`Client::raw`] but tolerating a connection the agent already killed.
    fn try_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.st.write_all(bytes)?;
        self.st.flush()
    }

    /// The next frame, `Ok(None)` once the agent closed the connection.
    fn next(&mut self) -> io::Result<Option<Frame>> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.dec.next() {
                Ok(Some(f)) => return Ok(Some(f)),
                Ok(None) => {}
                Err(e) => return Err(io::Error::other(format!("agent sent a non-frame: {e}"))),
            }
            let n = self.st.read(&mut buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.dec
                .push(&buf[..n])
                .map_err(|e| io::Error::other(format!("{e}")))?;
        }
    }

    fn recv(&mut self) -> Frame {
        match self.next() {
            Ok(Some(f)) => f,
            Ok(None) => panic!("the agent closed the connection"),
            Err(e) if is_timeout(&e) => panic!("no frame from the agent in {TIMEOUT:?}"),
            Err(e) => panic!("connection failed: {e}"),
        }
    }

    fn want(&mut self, kind: Kind, payload: &[u8]) {
        let f = self.recv();
        assert_eq!(f.kind, kind, "unexpected frame {f:?}");
        assert!(f.payload == payload, "{kind:?}: payload differs");
    }

    /// An Error frame with `code`; its text.
    fn want_error(&mut self, code: u16) -> String {
        let f = self.recv();
        assert_eq!(f.kind, Kind::Error, "expected an Error frame, got {f:?}");
        let (c, text) = decode_error(&f.payload).expect("error payload"); // safe: test
        assert_eq!(c, code, "error text: {text}");
        text
    }

    /// The agent closed the connection, sending nothing more.
    fn want_closed(&mut self) {
        match self.next() {
            Ok(None) => {}
            Ok(Some(f)) => panic!("frame after the agent should have closed: {f:?}"),
            Err(e) if is_timeout(&e) => panic!("the agent left the connection open"),
            // An abortive close is a close too (no frame came through).
            Err(_) => {}
        }
    }

    /// Ask for the counters: the answer is the next frame.
    fn stats(&mut self) -> String {
        self.send(Kind::Stats, b"");
        let f = self.recv();
        assert_eq!(f.kind, Kind::Stats, "expected Stats, got {f:?}");
        String::from_utf8(f.payload).expect("stats are UTF-8") // safe: test
    }
}

/// Counter `name` in a Stats text (`name value` lines, or `name host value`).
fn stat(text: &str, name: &str) -> u64 {
    for line in text.lines() {
        if let Some((k, v)) = line.rsplit_once(' ') {
            if k == name {
                match v.parse() {
                    Ok(n) => return n,
                    Err(_) => panic!("{name}: bad value in {line:?}"),
                }
            }
        }
    }
    panic!("no {name:?} in stats:\n{text}");
}

fn assert_stats(text: &str, want: &[(&str, u64)]) {
    for (name, v) in want {
        assert_eq!(stat(text, name), *v, "{name} in\n{text}");
    }
}

/// The monitor's HELLO: host id, SM and enclave measurements, a certificate.
fn hello_payload() -> Vec<u8> {
    let mut v = HOST_A.to_vec();
    v.extend_from_slice(&[0x5A; 32]);
    v.extend_from_slice(&[0xE7; 32]);
    v.extend((0..100u8).map(|i| i.wrapping_mul(7) ^ 0x3C));
    v
}

/// A Peer frame's payload: `from[32] ‖ conn[16] ‖ bytes`.
fn peer_payload(from: [u8; 32], conn: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = from.to_vec();
    v.extend_from_slice(&[conn; 16]);
    v.extend_from_slice(bytes);
    v
}

fn directory() -> Directory {
    let peer = |host_id, name: &str| Peer {
        host_id,
        name: name.into(),
        // Never dialled here: the fake monitor sends no F_TO_PEER.
        address: "127.0.0.1:9".into(),
    };
    Directory(vec![
        peer(HOST_A, "host-A"),
        peer(HOST_B, "host-B"),
        peer(HOST_C, "host-C"),
    ])
}

/// A link header: `version`, frame type `kind`, announcing `len` payload bytes.
fn header(version: u8, kind: u8, len: u32) -> Vec<u8> {
    let mut h = encode(Kind::ToMonitor, b"").expect("encode"); // safe: test
    h[2] = version;
    h[3] = kind;
    h[4..8].copy_from_slice(&len.to_be_bytes());
    h
}

/// A client the agent must turn away during the TLS handshake: the
/// handshake or the first read fails with the agent's TLS alert (or the
/// reset of a socket it closed), and no frame ever arrives. Returns why.
fn refused_at_tls(a: &Agent, cfg: Arc<ClientConfig>) -> String {
    let refused = |e: &io::Error| {
        assert!(!is_timeout(e), "the agent left a stranger connected: {e}");
        assert!(
            e.to_string().contains("alert") || e.kind() == io::ErrorKind::ConnectionReset,
            "not a TLS refusal: {e}"
        );
        e.to_string()
    };
    match a.try_connect(cfg) {
        Err(e) => refused(&e),
        Ok(mut c) => {
            // TLS 1.3: the client finishes before the server judged its
            // certificate. Try to get a frame through anyway.
            let f = encode(Kind::ToMonitor, b"from a stranger").expect("encode"); // safe: test
            let _ = c.try_raw(&f);
            match c.next() {
                Ok(Some(f)) => panic!("a refused client received {f:?}"),
                Ok(None) => panic!("a refused client saw a clean TLS close"),
                Err(e) => refused(&e),
            }
        }
    }
}

// ------------------------------------------------------------------ cases

/// Case 1: Info, messages to and from the monitor, nothing lost or duplicated.
#[test]
fn happy_path_info_and_messages_both_ways() {
    let mut a = start();
    let mut sds = a.sds_ready();
    let st = a.give_directory(&mut sds, &Directory(vec![]));
    assert_stats(&st, &[("sds_connections", 1)]);
    sds.send(Kind::Hello, b"");
    // No identity yet, and the agent asked the monitor when the port opened
    // (start() saw that request). Make sure the agent has taken the Hello
    // (Stats is answered in order) before the monitor answers: otherwise the
    // SDS gets Info twice, once as the broadcast and once as the reply.
    sds.stats();
    let hello = hello_payload();
    a.monitor.send(F_HELLO, &hello);
    sds.want(Kind::Info, &hello);

    sds.send(Kind::ToMonitor, b"x");
    a.monitor.want(F_SDS, b"x");
    a.monitor.send(F_TO_SDS, b"for the sds");
    sds.want(Kind::FromMonitor, b"for the sds");

    // A second Hello is answered from the agent's copy; the monitor is not asked again.
    sds.send(Kind::Hello, b"");
    sds.want(Kind::Info, &hello);
    a.monitor_got_nothing_else(&mut sds, b"end");

    let st = sds.stats();
    assert_stats(
        &st,
        &[
            ("monitor_frames_in", 3),
            ("monitor_frames_dropped", 0),
            ("sds_messages_dropped", 0),
            ("peer_frames_dropped", 0),
            ("connections_refused", 0),
            ("sds_connections", 1),
        ],
    );
}

/// Case 2: Garbage inside TLS: Decode, closed; another SDS is unaffected.
#[test]
fn garbage_from_one_sds_is_refused_and_the_other_keeps_working() {
    let mut a = start();
    let mut good = a.sds_ready();
    let mut bad = a.sds();
    bad.raw(b"GET / HTTP/1.1\r\n\r\n");
    let text = bad.want_error(DECODE);
    assert!(!text.is_empty());
    bad.want_closed();

    // Nothing of the garbage reached the monitor, and the good SDS still works.
    a.monitor_got_nothing_else(&mut good, b"still here");
    a.monitor.send(F_TO_SDS, b"to the good one");
    good.want(Kind::FromMonitor, b"to the good one");
    let st = good.stats();
    assert_stats(
        &st,
        &[
            ("sds_connections", 1),
            ("monitor_frames_dropped", 0),
            ("sds_messages_dropped", 0),
        ],
    );
    // And a new connection is served as well.
    let mut again = a.sds();
    a.monitor_got_nothing_else(&mut again, b"new sds");
}

/// Case 3: A header announcing more than MAX_PAYLOAD is refused at once.
#[test]
fn oversized_frame_header_is_refused_before_its_payload() {
    let mut a = start();
    let mut good = a.sds_ready();
    let mut bad = a.sds();
    // Only the header: the agent must not wait for 128 KiB that never come.
    bad.raw(&header(1, Kind::ToMonitor as u8, MAX_PAYLOAD as u32 + 1));
    bad.want_error(TOO_LARGE);
    bad.want_closed();
    a.monitor_got_nothing_else(&mut good, b"after the giant");

    // The largest allowed frame passes intact.
    let big: Vec<u8> = (0..MAX_PAYLOAD).map(|i| (i % 251) as u8).collect();
    good.send(Kind::ToMonitor, &big);
    a.monitor.want(F_SDS, &big);
    let st = good.stats();
    assert_stats(
        &st,
        &[("sds_connections", 1), ("monitor_frames_dropped", 0)],
    );
}

/// Case 4: A version this agent does not speak: UnsupportedVersion.
#[test]
fn unsupported_version_is_refused() {
    let mut a = start();
    let mut good = a.sds_ready();
    for v in [0u8, 2, 0xff] {
        let mut bad = a.sds();
        let mut f = header(v, Kind::ToMonitor as u8, 3);
        f.extend_from_slice(b"abc");
        bad.raw(&f);
        bad.want_error(UNSUPPORTED_VERSION);
        bad.want_closed();
    }
    a.monitor_got_nothing_else(&mut good, b"versions refused");
    let st = good.stats();
    assert_stats(&st, &[("sds_connections", 1)]);
}

/// Case 4b: Frame types the codec does not know: WrongMessageType.
#[test]
fn unknown_frame_type_is_refused() {
    let mut a = start();
    let mut good = a.sds_ready();
    for t in [0u8, 11, 0xff] {
        let mut bad = a.sds();
        bad.raw(&header(1, t, 0));
        bad.want_error(WRONG_MESSAGE_TYPE);
        bad.want_closed();
    }
    a.monitor_got_nothing_else(&mut good, b"types refused");
}

/// Case 5: Certificates from another CA, no certificate, no TLS at all: turned
/// away during the handshake; nothing reaches the monitor; others served.
#[test]
fn strangers_fail_the_tls_handshake_and_the_agent_keeps_serving() {
    let mut a = start();
    let mut good = a.sds_ready();
    // A client that hangs in the handshake does not hold up anyone.
    let idle = TcpStream::connect(a.addr).expect("idle TCP"); // safe: test

    let other = Pki::new(a.dir.0.join("other-pki"));
    // The SDS's own name and a directory host's name, from another CA. The
    // client trusts the real CA: it is the agent that must say no.
    for cert in [other.issue(None), other.issue(Some("host-B"))] {
        let why = refused_at_tls(&a, client_config(&a.pki.ca_pem(), Some(&cert)));
        eprintln!("foreign CA: {why}");
    }
    let why = refused_at_tls(&a, client_config(&a.pki.ca_pem(), None));
    eprintln!("no certificate: {why}");

    // Not TLS at all.
    let mut raw = TcpStream::connect(a.addr).expect("TCP"); // safe: test
    raw.set_read_timeout(Some(TIMEOUT)).expect("timeout"); // safe: test
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write"); // safe: test
    let mut got = Vec::new();
    match raw.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) => assert!(!is_timeout(&e), "plain TCP left open"),
    }
    assert!(!got.starts_with(b"RL"), "a link frame to a non-TLS client");

    a.monitor_got_nothing_else(&mut good, b"after strangers");
    let mut fresh = a.sds();
    a.monitor_got_nothing_else(&mut fresh, b"fresh sds");
    let st = good.stats();
    assert_stats(
        &st,
        &[("sds_connections", 2), ("monitor_frames_dropped", 0)],
    );
    drop(idle);
}

/// Case 6: A CA-issued certificate for a host not in the directory: PeerMismatch.
#[test]
fn certificate_for_a_host_outside_the_directory_is_refused() {
    let mut a = start();
    let mut sds = a.sds_ready();
    a.give_directory(&mut sds, &directory());
    let z = a.agent_cert("host-Z");
    let mut c = a.connect_as(&z);
    c.want_error(PEER_MISMATCH);
    c.want_closed();

    // One that sends at once: its frames are not routed either.
    let mut c = a.connect_as(&z);
    let _ = c.try_raw(&encode(Kind::ToMonitor, b"z speaks").expect("encode")); // safe: test
    let _ = c.try_raw(&encode(Kind::Peer, &peer_payload(HOST_B, 1, b"z")).expect("encode")); // safe: test
    match c.next() {
        Ok(Some(f)) => {
            assert_eq!(f.kind, Kind::Error);
            let (code, _) = decode_error(&f.payload).expect("error"); // safe: test
            assert_eq!(code, PEER_MISMATCH);
            c.want_closed();
        }
        Ok(None) => {}
        Err(e) => assert!(!is_timeout(&e), "refused connection left open"),
    }
    a.monitor_got_nothing_else(&mut sds, b"after host-Z");
    let st = sds.stats();
    assert_stats(&st, &[("connections_refused", 2), ("sds_connections", 1)]);
}

/// Case 7: A peer agent may only send bytes in its own host's name.
#[test]
fn peer_frames_must_carry_the_peers_own_host_id() {
    let mut a = start();
    let mut sds = a.sds_ready();
    let st = a.give_directory(&mut sds, &directory());
    assert_stats(&st, &[("peer_bytes_received host-B", 0)]);
    let b = a.agent_cert("host-B");

    for forged in [HOST_C, HOST_A] {
        let mut p = a.connect_as(&b);
        p.send(
            Kind::Peer,
            &peer_payload(forged, 3, b"\x17\x03\x03 forged record"),
        );
        p.want_error(PEER_MISMATCH);
        p.want_closed();
    }
    a.monitor_got_nothing_else(&mut sds, b"after forgeries");

    // Too short to carry an id and a connection id.
    let mut p = a.connect_as(&b);
    p.send(Kind::Peer, &HOST_B[..]);
    p.want_error(TRUNCATED);
    p.want_closed();
    a.monitor_got_nothing_else(&mut sds, b"after truncated");

    // In its own name: byte-identical to the monitor, and the link stays up.
    let mut p = a.connect_as(&b);
    let one = peer_payload(HOST_B, 7, b"\x16\x03\x01 client hello");
    let two = peer_payload(HOST_B, 7, &[0u8; 1000]);
    p.send(Kind::Peer, &one);
    a.monitor.want(F_PEER, &one);
    p.send(Kind::Peer, &two);
    a.monitor.want(F_PEER, &two);
    a.monitor_got_nothing_else(&mut sds, b"after honest peer");
    let st = sds.stats();
    assert_stats(
        &st,
        &[
            (
                "peer_bytes_received host-B",
                (one.len() - 48 + two.len() - 48) as u64,
            ),
            ("peer_bytes_received host-C", 0),
            ("peer_bytes_received host-A", 0),
            ("monitor_frames_dropped", 0),
            ("sds_connections", 1),
        ],
    );
}

/// Case 7b: Roles come from certificates: a peer cannot act as the SDS, the SDS
/// cannot inject peer bytes.
#[test]
fn roles_are_enforced() {
    let mut a = start();
    let mut sds = a.sds_ready();
    a.give_directory(&mut sds, &directory());
    let b = a.agent_cert("host-B");
    for (kind, payload) in [
        (Kind::ToMonitor, b"peer posing as sds".to_vec()),
        (Kind::Command, vec![F_RUN, 1, 2, 3, 4]),
        (Kind::Peers, Directory(vec![]).encode().expect("dir")), // safe: test
        (Kind::Stats, vec![]),
        (Kind::FromMonitor, b"x".to_vec()),
    ] {
        let mut p = a.connect_as(&b);
        p.send(kind, &payload);
        p.want_error(WRONG_MESSAGE_TYPE);
        p.want_closed();
    }
    a.monitor_got_nothing_else(&mut sds, b"after the peer's attempts");
    // The directory the peer tried to wipe is intact.
    let st = sds.stats();
    assert_stats(&st, &[("peer_bytes_received host-B", 0)]);

    let mut other = a.sds();
    other.send(Kind::Peer, &peer_payload(HOST_B, 1, b"sds posing as peer"));
    other.want_error(WRONG_MESSAGE_TYPE);
    other.want_closed();
    a.monitor_got_nothing_else(&mut sds, b"after the sds's attempt");
}

/// Case 8: Only allow-listed operator commands reach the monitor.
#[test]
fn commands_outside_the_allowlist_are_refused() {
    let mut a = start();
    let mut sds = a.sds_ready();
    sds.send(Kind::Command, &[F_RUN, 1, 2, 3, 4]);
    a.monitor.want(F_RUN, &[1, 2, 3, 4]);
    sds.send(Kind::Command, &[40, 9, 9]);
    sds.want_error(INVALID_ARGUMENT);
    sds.want_closed();

    let mut probe = a.sds();
    a.monitor_got_nothing_else(&mut probe, b"after 40");
    // Monitor frame types an SDS must not be able to forge, and nonsense.
    let bad: [&[u8]; 8] = [
        &[],
        &[0],
        &[F_HELLO],
        &[F_SDS, 1],
        &[F_PEER, 1],
        &[34],
        &[F_HELLO_REQ],
        &[0xff, 1],
    ];
    for payload in bad {
        let mut c = a.sds();
        c.send(Kind::Command, payload);
        c.want_error(INVALID_ARGUMENT);
        c.want_closed();
    }
    a.monitor_got_nothing_else(&mut probe, b"after the forgeries");
    for (i, c) in [F_LAUNCH, F_RUN, F_STATUS_REQ, F_PROBE_REQ, F_OFF]
        .into_iter()
        .enumerate()
    {
        let args = vec![c ^ 0x55; i];
        let mut cmd = vec![c];
        cmd.extend_from_slice(&args);
        probe.send(Kind::Command, &cmd);
        a.monitor.want(c, &args);
    }
    let st = probe.stats();
    assert_stats(
        &st,
        &[("monitor_frames_dropped", 0), ("sds_connections", 1)],
    );
}

/// Case 9: Messages for the SDS while none is connected are kept, in order.
#[test]
fn messages_for_an_absent_sds_are_delivered_in_order() {
    let mut a = start();
    let msgs: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 1 + 50 * i as usize]).collect();
    for m in &msgs {
        a.monitor.send(F_TO_SDS, m);
    }
    // The monitor's host restarts. When the agent has reopened the port, it
    // has read (and queued for its router) everything the old stream carried:
    // all of it is routed before any SDS can connect.
    let old = std::mem::replace(&mut a.monitor, Monitor(UnixStream::pair().expect("pair").0)); // safe: test
    drop(old);
    a.monitor = accept_monitor(&a.listener, &mut a.child.0);
    a.monitor.want(F_HELLO_REQ, b"");

    let mut sds = a.sds();
    for m in &msgs {
        sds.want(Kind::FromMonitor, m);
    }
    // Live again afterwards, through the reopened port, both ways.
    a.monitor.send(F_TO_SDS, b"live");
    sds.want(Kind::FromMonitor, b"live");
    a.monitor_got_nothing_else(&mut sds, b"to the new monitor stream");
    let st = sds.stats();
    assert_stats(
        &st,
        &[
            ("sds_messages_dropped", 0),
            ("monitor_frames_in", msgs.len() as u64 + 1),
            ("sds_connections", 1),
        ],
    );
    // Delivered once: a second SDS does not get the backlog again.
    let mut second = a.sds();
    let st = second.stats();
    assert_stats(&st, &[("sds_connections", 2)]);
}

/// Case 9b: The backlog is bounded: the oldest go first, and are counted.
#[test]
fn sds_backlog_overflow_drops_the_oldest_and_counts_them() {
    const BACKLOG: usize = 256; // rewire_agent::agent::SDS_BACKLOG
    let mut a = start();
    let n = BACKLOG + 44;
    for i in 0..n {
        a.monitor.send(F_TO_SDS, format!("m{i}").as_bytes());
    }
    let old = std::mem::replace(&mut a.monitor, Monitor(UnixStream::pair().expect("pair").0)); // safe: test
    drop(old);
    a.monitor = accept_monitor(&a.listener, &mut a.child.0);
    a.monitor.want(F_HELLO_REQ, b"");
    let mut sds = a.sds();
    for i in n - BACKLOG..n {
        sds.want(Kind::FromMonitor, format!("m{i}").as_bytes());
    }
    let st = sds.stats();
    assert_stats(&st, &[("sds_messages_dropped", (n - BACKLOG) as u64)]);
}

/// Case 10: Stats: counters reflect the refusals, and asking changes nothing.
#[test]
fn stats_count_refused_certificate_names() {
    let mut a = start();
    let mut sds = a.sds_ready();
    let st = sds.stats();
    assert!(st.contains("connections_refused 0"), "{st}");
    a.give_directory(&mut sds, &directory());
    for name in ["host-Y", "host-Z"] {
        let cert = a.agent_cert(name);
        let mut c = a.connect_as(&cert);
        c.want_error(PEER_MISMATCH);
        c.want_closed();
    }
    let st = sds.stats();
    assert!(st.contains("connections_refused 2"), "{st}");
    assert_stats(
        &st,
        &[
            ("connections_refused", 2),
            ("sds_connections", 1),
            ("monitor_frames_in", 1),
            ("monitor_frames_dropped", 0),
        ],
    );
    // Stats reach neither the monitor nor anyone else.
    a.monitor_got_nothing_else(&mut sds, b"after stats");
    // A Stats request with a payload is not a Stats request.
    let mut c = a.sds();
    c.send(Kind::Stats, b"all");
    c.want_error(WRONG_MESSAGE_TYPE);
    c.want_closed();
}

/// Strangers turned away in the TLS handshake (a certificate from another
/// CA, or none) are counted in `connections_refused` (they once were not:
/// only refusals by certificate name were).
#[test]
fn stats_count_tls_handshake_refusals() {
    let mut a = start();
    let mut sds = a.sds_ready();
    let other = Pki::new(a.dir.0.join("other-pki"));
    refused_at_tls(&a, client_config(&a.pki.ca_pem(), Some(&other.issue(None))));
    refused_at_tls(&a, client_config(&a.pki.ca_pem(), None));
    // The agent may count a handshake failure after the client saw it fail:
    // ask until it shows, for at most TIMEOUT.
    let deadline = Instant::now() + TIMEOUT;
    let mut st = sds.stats();
    while stat(&st, "connections_refused") < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
        st = sds.stats();
    }
    assert_stats(&st, &[("connections_refused", 2)]);
}

/// The largest monitor frame the agent accepts still fits a Report (`type u8
/// ‖ payload`): it reaches the SDS whole, and the SDS stays connected (once,
/// a report one byte over the link's cap made the agent drop every SDS).
#[test]
fn monitor_report_at_the_frame_cap_does_not_disconnect_the_sds() {
    let mut a = start();
    let mut sds = a.sds_ready();
    a.monitor.send(F_EVENT, &vec![0x42; MAX_PAYLOAD - 1]);
    a.monitor.send(F_TO_SDS, b"after the big report");
    let f = sds.recv();
    assert_eq!(f.kind, Kind::Report, "{:?}", f.kind);
    assert_eq!(f.payload.len(), MAX_PAYLOAD);
    assert_eq!(f.payload[0], F_EVENT);
    let f = sds.recv();
    assert_eq!(f.kind, Kind::FromMonitor, "{:?}", f.kind);
    assert_eq!(f.payload, b"after the big report");
}

/// A burst of large frames is carried whole and in order. The agent once
/// batched queued frames into rustls' send buffer (64 KiB by default), which
/// took part of a frame and dropped the rest: the next frame then started
/// mid-stream and the receiver saw garbage (Decode) — a 64 KiB enclave's
/// migration died that way.
#[test]
fn a_burst_of_large_frames_arrives_whole_and_in_order() {
    let mut a = start();
    let mut sds = a.sds_ready();
    let n = 24u8;
    for i in 0..n {
        a.monitor.send(F_TO_SDS, &vec![i; 120 * 1024]);
    }
    for i in 0..n {
        let f = sds.recv();
        assert_eq!(f.kind, Kind::FromMonitor, "frame {i}: {:?}", f.kind);
        assert_eq!(f.payload.len(), 120 * 1024, "frame {i}");
        assert!(
            f.payload.iter().all(|b| *b == i),
            "frame {i} mixed with another"
        );
    }
}

/// Write a certificate with exactly `names`, issued by the test's operator CA
/// (as any operator PKI could): `(cert, key)` files.
fn issue_with_names(pki: &Pki, names: &[&str], file: &str) -> (PathBuf, PathBuf) {
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256,
    };
    let ca_dir = pki.dir.join("ca");
    let ca_key = KeyPair::from_pem(&fs::read_to_string(ca_dir.join("ca.key")).expect("ca.key")) // safe: test
        .expect("ca key"); // safe: test
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params"); // safe: test
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "librewire operator CA");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    let issuer = ca.self_signed(&ca_key).expect("issuer"); // safe: test
    let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .expect("params"); // safe: test
    p.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key"); // safe: test
    let cert = p.signed_by(&key, &issuer, &ca_key).expect("sign"); // safe: test
    let (c, k) = (
        pki.dir.join(format!("{file}.pem")),
        pki.dir.join(format!("{file}.key")),
    );
    fs::write(&c, cert.pem()).expect("write"); // safe: test
    fs::write(&k, key.serialize_pem()).expect("write"); // safe: test
    (c, k)
}

/// A role is exactly one name: a CA-issued certificate that names the SDS
/// *and* a host, or a wildcard over the link's names, is no role at all
/// (PeerMismatch), even when the host is in the directory; and the agent
/// keeps serving the real SDS.
#[test]
fn certificates_naming_more_than_one_role_or_a_wildcard_are_refused() {
    let mut a = start();
    let mut sds = a.sds_ready();
    let dir = directory();
    a.give_directory(&mut sds, &dir);
    let host_b = format!("{}.agent.rewire.invalid", dir.0[0].name);
    for (names, file) in [
        (vec!["sds.rewire.invalid", host_b.as_str()], "two"),
        (vec!["*.rewire.invalid"], "wild"),
        (vec!["*.agent.rewire.invalid"], "wild-agent"),
    ] {
        let cert = issue_with_names(&a.pki, &names, file);
        let mut c = a.connect_as(&cert);
        c.send(Kind::ToMonitor, b"must not arrive");
        c.want_error(PEER_MISMATCH);
        c.want_closed();
    }
    a.monitor_got_nothing_else(&mut sds, b"still the SDS");
}

/// Strangers holding TLS handshakes open take at most MAX_HANDSHAKES slots;
/// the next connection is turned away at once (counted), an SDS connected
/// before is not affected, and the slots come back when the strangers go.
#[test]
fn connections_stuck_in_the_handshake_are_capped() {
    let mut a = start();
    let mut sds = a.sds_ready();
    let idle: Vec<TcpStream> = (0..32)
        .map(|_| TcpStream::connect_timeout(&a.addr, TIMEOUT).expect("connect")) // safe: test
        .collect();
    // Wait until the agent holds all 32 (its accept loop is asynchronous to us).
    let deadline = Instant::now() + TIMEOUT;
    let turned_away = loop {
        let extra = TcpStream::connect_timeout(&a.addr, TIMEOUT).expect("connect"); // safe: test
        extra
            .set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout"); // safe: test
        let mut b = [0u8; 1];
        if let Ok(0) = (&extra).read(&mut b) {
            break stat(&sds.stats(), "connections_turned_away");
        }
        assert!(
            Instant::now() < deadline,
            "the 33rd handshake was never turned away"
        );
    };
    assert!(turned_away >= 1);
    a.monitor_got_nothing_else(&mut sds, b"the SDS is unaffected");
    drop(idle);
    // Their handshakes end with the sockets; a new SDS gets in.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Ok(mut c) = a.try_connect(client_config(&a.pki.ca_pem(), Some(&a.sds_cert))) {
            c.send(Kind::ToMonitor, b"new sds");
            a.monitor.want(F_SDS, b"new sds");
            break;
        }
        assert!(Instant::now() < deadline, "the slots never came back");
        thread::sleep(Duration::from_millis(50));
    }
}
