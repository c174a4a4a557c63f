//! The agent's router: one thread owns all routing state; connections, the
//! listener, dialers and the monitor port feed it events.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rewire_core::link::{self, Directory, Kind};
use rewire_core::Error;
use rustls::pki_types::ServerName;

use crate::conn::{self, Out};
use crate::port::{self, MonitorPort};
use crate::tls::{self, Tls};
use crate::{AgentError, Ev};

/// Messages from the monitor to the SDS kept while no SDS is connected.
pub const SDS_BACKLOG: usize = 256;
/// Frames for a peer kept while its link is being dialled.
pub const PEER_BACKLOG: usize = 1024;
/// Frames queued for the monitor before the agent drops them (the protocol
/// recovers from loss; a blocked router would stall every connection).
pub const MONITOR_QUEUE: usize = 4096;
/// Events queued for the router: readers block beyond this (TCP backpressure).
pub const EVENTS: usize = 4096;
/// Connections (any state) an agent serves at once; more are closed on accept.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections still in their TLS handshake (strangers included) at once.
pub const MAX_HANDSHAKES: usize = 32;
/// SDS frames queued for the monitor, apart from (and ahead of) peer traffic:
/// a peer that floods cannot push the operator's messages out.
pub const MONITOR_SDS_QUEUE: usize = 1024;

/// A queue of encoded frames.
type Frames = SyncSender<Vec<u8>>;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// How the agent is run.
pub struct Config {
    /// This host's name (its certificate is `NAME.agent.rewire.invalid`).
    pub name: String,
    /// Address to listen on (`127.0.0.1:0` picks a port).
    pub listen: String,
    pub tls: Tls,
    pub port: Box<dyn MonitorPort>,
    /// 0 quiet, 1 connections and routing decisions, 2 also every frame (type and size).
    pub verbose: u8,
}

#[derive(Clone, Debug)]
enum Role {
    Sds,
    /// Another host's agent that dialled us.
    Peer {
        name: String,
        host_id: [u8; 32],
    },
    /// Our link to another host's agent.
    Dialed {
        host_id: [u8; 32],
    },
}

struct Router {
    name: String,
    verbose: u8,
    tls: Arc<Tls>,
    ev: SyncSender<Ev>,
    conns: HashMap<u64, (Role, Out)>,
    /// Links we are dialling: conn id → (peer host id, frames waiting).
    dialing: HashMap<u64, ([u8; 32], VecDeque<Vec<u8>>)>,
    /// Established links: peer host id → conn id.
    links: HashMap<[u8; 32], u64>,
    info: Option<Vec<u8>>,
    /// (peer traffic, the SDS's frames) to the monitor.
    monitor: Option<(Frames, Frames)>,
    directory: Directory,
    backlog: VecDeque<Vec<u8>>,
    stats: Stats,
    gate: Arc<Gate>,
    /// When a HELLO_REQ last went to the monitor: however many ask, at most one a second.
    hello_asked: Option<std::time::Instant>,
    /// Refusals are logged at most once a second (strangers choose how often they knock).
    quiet_until: Option<std::time::Instant>,
}

/// Counters an SDS can ask for ([`Kind::Stats`]).
#[derive(Default)]
struct Stats {
    /// TLS bytes between the monitors, by peer host: (sent, received).
    peer_bytes: HashMap<[u8; 32], (u64, u64)>,
    monitor_frames_in: u64,
    monitor_frames_dropped: u64,
    sds_messages_dropped: u64,
    peer_frames_dropped: u64,
    connections_refused: u64,
}

/// Bind, start every thread, and route until the process is killed. Prints
/// `listening on ADDR` on stdout once the socket is bound.
pub fn run(cfg: Config) -> Result<(), AgentError> {
    let listener = TcpListener::bind(&cfg.listen)
        .map_err(|e| AgentError::Config(format!("listen {}: {e}", cfg.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| AgentError::Io(format!("listen: {e}")))?;
    println!("listening on {addr}");
    let _ = std::io::stdout().flush();
    let (tx, rx) = sync_channel::<Ev>(EVENTS);
    let tls = Arc::new(cfg.tls);
    let gate = Arc::new(Gate::default());
    {
        let tx = tx.clone();
        let server = tls.server.clone();
        let gate = gate.clone();
        thread::Builder::new()
            .spawn(move || accept(listener, server, tx, gate))
            .map_err(|e| AgentError::Io(format!("thread: {e}")))?;
    }
    {
        let tx = tx.clone();
        let (verbose, name) = (cfg.verbose, cfg.name.clone());
        let port = cfg.port;
        thread::Builder::new()
            .spawn(move || monitor_port(port, tx, verbose, name))
            .map_err(|e| AgentError::Io(format!("thread: {e}")))?;
    }
    let mut r = Router {
        name: cfg.name,
        verbose: cfg.verbose,
        tls,
        ev: tx,
        conns: HashMap::new(),
        dialing: HashMap::new(),
        links: HashMap::new(),
        info: None,
        monitor: None,
        directory: Directory::default(),
        backlog: VecDeque::new(),
        stats: Stats::default(),
        gate,
        hello_asked: None,
        quiet_until: None,
    };
    r.route(rx);
    Ok(())
}

/// Counts a connection while it lives (and while it handshakes).
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn take_slot(n: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
    if n.fetch_add(1, Ordering::Relaxed) >= max {
        n.fetch_sub(1, Ordering::Relaxed);
        return None;
    }
    Some(Slot(n.clone()))
}

/// Shared with the accept thread: what it turned away before the router saw it.
#[derive(Default)]
struct Gate {
    live: Arc<AtomicUsize>,
    handshaking: Arc<AtomicUsize>,
    turned_away: AtomicU64,
}

fn accept(
    listener: TcpListener,
    server: Arc<rustls::ServerConfig>,
    tx: SyncSender<Ev>,
    gate: Arc<Gate>,
) {
    for s in listener.incoming() {
        let sock = match s {
            Ok(sock) => sock,
            Err(e) => {
                // Out of descriptors or memory: back off instead of spinning.
                eprintln!("rewire-agent: accept: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let Some(live) = take_slot(&gate.live, MAX_CONNECTIONS) else {
            gate.turned_away.fetch_add(1, Ordering::Relaxed);
            continue; // dropping `sock` closes it
        };
        let Some(hs) = take_slot(&gate.handshaking, MAX_HANDSHAKES) else {
            gate.turned_away.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let id = next_id();
        let c = match rustls::ServerConnection::new(server.clone()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("rewire-agent: TLS: {e}");
                continue;
            }
        };
        let tx = tx.clone();
        let spawned = thread::Builder::new().spawn(move || {
            let _live = live;
            conn::run(id, sock, rustls::Connection::Server(c), tx, Some(hs));
        });
        if let Err(e) = spawned {
            gate.turned_away.fetch_add(1, Ordering::Relaxed);
            eprintln!("rewire-agent: no thread for a connection: {e}");
        }
    }
}

fn monitor_port(mut port: Box<dyn MonitorPort>, tx: SyncSender<Ev>, verbose: u8, name: String) {
    let mut said = false;
    loop {
        let (mut r, mut w) = match port.open() {
            Ok(rw) => rw,
            Err(e) => {
                if !said {
                    eprintln!("rewire-agent {name}: waiting for {}: {e}", port.describe());
                    said = true;
                }
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        said = false;
        if verbose > 0 {
            eprintln!("rewire-agent {name}: {} open", port.describe());
        }
        let (mtx, mrx) = sync_channel::<Vec<u8>>(MONITOR_QUEUE);
        let (stx, srx) = sync_channel::<Vec<u8>>(MONITOR_SDS_QUEUE);
        let _ = stx.try_send(port::encode(port::F_HELLO_REQ, &[]));
        let writer = thread::Builder::new().spawn(move || loop {
            // The SDS's frames first; peer traffic when there are none.
            let f = match srx.try_recv() {
                Ok(f) => f,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
                Err(std::sync::mpsc::TryRecvError::Empty) => {
                    match mrx.recv_timeout(Duration::from_millis(5)) {
                        Ok(f) => f,
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            if w.write_all(&f).and_then(|_| w.flush()).is_err() {
                break;
            }
        });
        if let Err(e) = writer {
            eprintln!("rewire-agent {name}: no thread for the monitor port: {e}");
            thread::sleep(Duration::from_millis(500));
            continue;
        }
        if tx
            .send(Ev::MonitorUp {
                peer: mtx,
                sds: stx,
            })
            .is_err()
        {
            return;
        }
        let why = loop {
            match port::read_frame(&mut *r) {
                Ok(Some((t, p))) => {
                    if tx.send(Ev::Monitor(t, p)).is_err() {
                        return;
                    }
                }
                Ok(None) => break "closed".to_string(),
                Err(e) => break e.to_string(),
            }
        };
        if tx.send(Ev::MonitorDown(why)).is_err() {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn dial(
    id: u64,
    address: String,
    peer_name: String,
    client: Arc<rustls::ClientConfig>,
    tx: SyncSender<Ev>,
) {
    let mut last = String::new();
    for attempt in 0..5u64 {
        if attempt > 0 {
            thread::sleep(Duration::from_millis(200 * attempt));
        }
        let addrs = match address.to_socket_addrs() {
            Ok(a) => a.collect::<Vec<_>>(),
            Err(e) => {
                last = format!("{address}: {e}");
                continue;
            }
        };
        for a in addrs {
            match TcpStream::connect_timeout(&a, Duration::from_secs(5)) {
                Ok(sock) => {
                    let sn = match ServerName::try_from(tls::agent_dns_name(&peer_name)) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = tx.send(Ev::Closed {
                                id,
                                why: format!("bad peer name: {e}"),
                            });
                            return;
                        }
                    };
                    match rustls::ClientConnection::new(client, sn) {
                        Ok(c) => conn::run(id, sock, rustls::Connection::Client(c), tx, None::<()>),
                        Err(e) => {
                            let _ = tx.send(Ev::Closed {
                                id,
                                why: format!("TLS: {e}"),
                            });
                        }
                    }
                    return;
                }
                Err(e) => last = format!("{a}: {e}"),
            }
        }
    }
    let _ = tx.send(Ev::Closed {
        id,
        why: format!("cannot reach {address}: {last}"),
    });
}

impl Router {
    fn trace(&self, s: &str) {
        if self.verbose > 1 {
            eprintln!("rewire-agent {}: {s}", self.name);
        }
    }

    fn log(&self, s: &str) {
        if self.verbose > 0 {
            eprintln!("rewire-agent {}: {s}", self.name);
        }
    }

    fn route(&mut self, rx: Receiver<Ev>) {
        for ev in rx {
            match ev {
                Ev::Monitor(t, p) => self.on_monitor(t, p),
                Ev::MonitorUp { peer, sds } => {
                    self.monitor = Some((peer, sds));
                    self.hello_asked = Some(std::time::Instant::now()); // the port asks on open
                }
                Ev::MonitorDown(why) => {
                    self.log(&format!("monitor port closed: {why}"));
                    self.monitor = None;
                }
                Ev::Up { id, cert, out } => self.up(id, &cert, out),
                Ev::Frame { id, frame } => self.frame(id, frame),
                Ev::Bad { id, error } => self.refuse(id, error, "not a link frame"),
                Ev::Closed { id, why } => self.closed(id, &why),
            }
        }
    }

    fn send_monitor(&mut self, ftype: u8, payload: &[u8]) {
        self.trace(&format!(
            "to the monitor: type {ftype}, {} bytes",
            payload.len()
        ));
        let sent = match &self.monitor {
            Some((peer, sds)) => match if ftype == port::F_PEER { peer } else { sds }
                .try_send(port::encode(ftype, payload))
            {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    eprintln!(
                        "rewire-agent {}: monitor not reading: frame dropped",
                        self.name
                    );
                    false
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.log("monitor port closed: frame dropped");
                    false
                }
            },
            None => {
                self.log("monitor port not open: frame dropped");
                false
            }
        };
        if !sent {
            self.stats.monitor_frames_dropped += 1;
        }
    }

    fn stats_text(&self) -> String {
        let s = &self.stats;
        let mut t = format!(
            "monitor_frames_in {}\nmonitor_frames_dropped {}\nsds_messages_dropped {}\npeer_frames_dropped {}\nconnections_refused {}\nconnections_turned_away {}\nconnections_live {}\nsds_connections {}\n",
            s.monitor_frames_in,
            s.monitor_frames_dropped,
            s.sds_messages_dropped,
            s.peer_frames_dropped,
            s.connections_refused,
            self.gate.turned_away.load(Ordering::Relaxed),
            self.gate.live.load(Ordering::Relaxed),
            self.sds_outs().len(),
        );
        for p in &self.directory.0 {
            let (o, i) = s.peer_bytes.get(&p.host_id).copied().unwrap_or_default();
            t.push_str(&format!(
                "peer_bytes_sent {} {o}\npeer_bytes_received {} {i}\n",
                p.name, p.name
            ));
        }
        t
    }

    fn sds_outs(&self) -> Vec<(u64, Out)> {
        self.conns
            .iter()
            .filter(|(_, (r, _))| matches!(r, Role::Sds))
            .map(|(i, (_, o))| (*i, o.clone()))
            .collect()
    }

    /// Send to every SDS connection; false if there was none that took it.
    fn send_sds(&mut self, kind: Kind, payload: &[u8]) -> bool {
        let frame = match link::encode(kind, payload) {
            Ok(f) => f,
            Err(e) => {
                // Not the SDS's fault: the monitor's frame cannot be carried (see MAX_MONITOR_FRAME).
                eprintln!(
                    "rewire-agent {}: a monitor frame of {} bytes cannot be carried: {e}",
                    self.name,
                    payload.len()
                );
                self.stats.monitor_frames_dropped += 1;
                return false;
            }
        };
        let mut any = false;
        for (id, o) in self.sds_outs() {
            if o.send_encoded(frame.clone()) {
                any = true;
            } else {
                self.drop_conn(id, "SDS connection too slow or gone");
            }
        }
        any
    }

    fn drop_conn(&mut self, id: u64, why: &str) {
        if let Some((role, _)) = self.conns.remove(&id) {
            self.log(&format!("connection {id} ({role:?}) dropped: {why}"));
            if let Role::Dialed { host_id } = role {
                if self.links.get(&host_id) == Some(&id) {
                    self.links.remove(&host_id);
                }
            }
        }
    }

    fn on_monitor(&mut self, t: u8, p: Vec<u8>) {
        self.stats.monitor_frames_in += 1;
        self.trace(&format!("from the monitor: type {t}, {} bytes", p.len()));
        match t {
            port::F_HELLO => {
                self.hello_asked = None;
                if link::Info::decode(&p).is_err() {
                    eprintln!(
                        "rewire-agent {}: the monitor's HELLO does not decode",
                        self.name
                    );
                    return;
                }
                self.send_sds(Kind::Info, &p);
                self.info = Some(p);
            }
            port::F_TO_SDS => {
                if !self.send_sds(Kind::FromMonitor, &p) {
                    if self.backlog.len() == SDS_BACKLOG {
                        self.backlog.pop_front();
                        self.stats.sds_messages_dropped += 1;
                        eprintln!(
                            "rewire-agent {}: no SDS connected: oldest message dropped",
                            self.name
                        );
                    }
                    self.backlog.push_back(p);
                }
            }
            port::F_TO_PEER => self.send_peer(p),
            t if port::REPORTS.contains(&t) => {
                let mut v = Vec::with_capacity(1 + p.len());
                v.push(t);
                v.extend_from_slice(&p);
                self.send_sds(Kind::Report, &v);
            }
            _ => self.log(&format!("monitor frame type {t} ignored")),
        }
    }

    fn send_peer(&mut self, p: Vec<u8>) {
        let Some(info) = &self.info else {
            self.log("peer bytes before the monitor's HELLO: dropped");
            return;
        };
        if p.len() < 48 {
            self.stats.peer_frames_dropped += 1;
            return;
        }
        let mut dest = [0u8; 32];
        dest.copy_from_slice(&p[..32]);
        let mut frame = Vec::with_capacity(p.len());
        frame.extend_from_slice(&info[..32]);
        frame.extend_from_slice(&p[32..]);
        if self.directory.0.iter().any(|q| q.host_id == dest) {
            self.stats.peer_bytes.entry(dest).or_default().0 += (p.len() - 48) as u64;
        }
        if let Some(id) = self.links.get(&dest).copied() {
            if let Some((_, o)) = self.conns.get(&id) {
                if o.send(Kind::Peer, &frame) {
                    return;
                }
            }
            self.drop_conn(id, "peer link too slow or gone");
        }
        if let Some((_, q)) = self.dialing.values_mut().find(|(h, _)| *h == dest) {
            if q.len() < PEER_BACKLOG {
                q.push_back(frame);
            } else {
                eprintln!(
                    "rewire-agent {}: peer link backlog full: frame dropped",
                    self.name
                );
                self.stats.peer_frames_dropped += 1;
            }
            return;
        }
        let Some(peer) = self.directory.0.iter().find(|q| q.host_id == dest).cloned() else {
            eprintln!(
                "rewire-agent {}: no address for host {}: frame dropped",
                self.name,
                hex8(&dest)
            );
            self.stats.peer_frames_dropped += 1;
            return;
        };
        let id = next_id();
        self.log(&format!("dialling {} at {}", peer.name, peer.address));
        let mut q = VecDeque::new();
        q.push_back(frame);
        self.dialing.insert(id, (dest, q));
        let (tx, client) = (self.ev.clone(), self.tls.client.clone());
        if let Err(e) =
            thread::Builder::new().spawn(move || dial(id, peer.address, peer.name, client, tx))
        {
            eprintln!("rewire-agent {}: no thread to dial a peer: {e}", self.name);
            if let Some((_, q)) = self.dialing.remove(&id) {
                self.stats.peer_frames_dropped += q.len() as u64;
            }
        }
    }

    fn up(&mut self, id: u64, cert: &rustls::pki_types::CertificateDer<'_>, out: Out) {
        if let Some((host_id, q)) = self.dialing.remove(&id) {
            // Our own dial: rustls already checked the peer's name.
            let n = q.len();
            for (k, f) in q.into_iter().enumerate() {
                if !out.send(Kind::Peer, &f) {
                    self.stats.peer_frames_dropped += (n - k) as u64;
                    break;
                }
            }
            self.links.insert(host_id, id);
            self.conns.insert(id, (Role::Dialed { host_id }, out));
            return;
        }
        let role = if tls::names(cert, tls::SDS_DNS_NAME) {
            Role::Sds
        } else if let Some(p) = self
            .directory
            .0
            .iter()
            .find(|p| tls::names(cert, &tls::agent_dns_name(&p.name)))
        {
            Role::Peer {
                name: p.name.clone(),
                host_id: p.host_id,
            }
        } else {
            let _ = out.send(
                Kind::Error,
                &link::encode_error(
                    Error::PeerMismatch as u16,
                    "certificate names neither the SDS nor a host in this agent's directory",
                ),
            );
            self.log(&format!(
                "connection {id} refused: unknown certificate name"
            ));
            self.stats.connections_refused += 1;
            return;
        };
        self.log(&format!("connection {id}: {role:?}"));
        if matches!(role, Role::Sds) {
            while let Some(m) = self.backlog.pop_front() {
                if !out.send(Kind::FromMonitor, &m) {
                    self.backlog.push_front(m); // kept for the next SDS
                    break;
                }
            }
        }
        self.conns.insert(id, (role, out));
    }

    /// After a new directory: a peer that no longer fits it (its name gone, or
    /// now another host's) is dropped, and so is a link to an old address.
    fn recheck_roles(&mut self) {
        let stale: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, (role, _))| match role {
                Role::Sds => false,
                Role::Peer { name, host_id } => !self
                    .directory
                    .0
                    .iter()
                    .any(|p| &p.name == name && &p.host_id == host_id),
                Role::Dialed { host_id } => !self.directory.0.iter().any(|p| &p.host_id == host_id),
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.refuse(id, Error::PeerMismatch, "no longer in the directory");
        }
    }

    fn refuse(&mut self, id: u64, e: Error, why: &str) {
        if let Some((_, o)) = self.conns.get(&id) {
            let _ = o.send(
                Kind::Error,
                &link::encode_error(e as u16, &format!("{why}: {e}")),
            );
        }
        self.drop_conn(id, why);
    }

    fn frame(&mut self, id: u64, f: link::Frame) {
        self.trace(&format!(
            "connection {id}: {:?}, {} bytes",
            f.kind,
            f.payload.len()
        ));
        let Some((role, out)) = self.conns.get(&id).cloned() else {
            return;
        };
        match (role, f.kind) {
            (_, Kind::Hello) => match &self.info {
                Some(i) => {
                    if !out.send(Kind::Info, i) {
                        self.drop_conn(id, "too slow or gone");
                    }
                }
                None => {
                    let now = std::time::Instant::now();
                    if self
                        .hello_asked
                        .map_or(true, |t| now.duration_since(t) >= Duration::from_secs(1))
                    {
                        self.hello_asked = Some(now);
                        self.send_monitor(port::F_HELLO_REQ, &[]);
                    }
                }
            },
            (_, Kind::Error) => {
                let (code, text) = link::decode_error(&f.payload).unwrap_or((0, String::from("?")));
                self.drop_conn(id, &format!("the other side closed: {text} ({code})"));
            }
            (Role::Sds, Kind::ToMonitor) => self.send_monitor(port::F_SDS, &f.payload),
            (Role::Sds, Kind::Stats) if f.payload.is_empty() => {
                if !out.send(Kind::Stats, self.stats_text().as_bytes()) {
                    self.drop_conn(id, "SDS connection too slow or gone");
                }
            }
            (Role::Sds, Kind::Command) => match f.payload.split_first() {
                Some((c, args)) if port::COMMANDS.contains(c) => self.send_monitor(*c, args),
                _ => self.refuse(id, Error::InvalidArgument, "not an operator command"),
            },
            (Role::Sds, Kind::Peers) => match Directory::decode(&f.payload) {
                Ok(d) => {
                    self.log(&format!("directory: {} hosts", d.0.len()));
                    self.directory = d;
                    self.recheck_roles();
                }
                Err(e) => self.refuse(id, e, "bad directory"),
            },
            (Role::Peer { host_id, name }, Kind::Peer) => {
                if f.payload.len() < 48 {
                    self.refuse(id, Error::Truncated, "peer frame");
                } else if f.payload[..32] != host_id {
                    self.refuse(
                        id,
                        Error::PeerMismatch,
                        &format!("{name} sent bytes in another host's name"),
                    );
                } else {
                    self.stats.peer_bytes.entry(host_id).or_default().1 +=
                        (f.payload.len() - 48) as u64;
                    self.send_monitor(port::F_PEER, &f.payload);
                }
            }
            (_, _) => self.refuse(
                id,
                Error::WrongMessageType,
                "frame not allowed on this connection",
            ),
        }
    }

    fn closed(&mut self, id: u64, why: &str) {
        if !self.conns.contains_key(&id)
            && !self.dialing.contains_key(&id)
            && why.starts_with("TLS handshake")
        {
            // A stranger (no certificate, another CA) or a broken client: refused before it was
            // anyone. Always said: it is what an operator looks for when something knocks.
            self.stats.connections_refused += 1;
            let now = std::time::Instant::now();
            if self.quiet_until.map_or(true, |t| now >= t) {
                eprintln!(
                    "rewire-agent {}: connection {id} refused: {why} ({} refused so far)",
                    self.name, self.stats.connections_refused
                );
                self.quiet_until = Some(now + Duration::from_secs(1));
            }
            return;
        }
        if let Some((host_id, q)) = self.dialing.remove(&id) {
            self.stats.peer_frames_dropped += q.len() as u64;
            eprintln!(
                "rewire-agent {}: link to host {} failed ({why}): {} frames dropped",
                self.name,
                hex8(&host_id),
                q.len()
            );
            return;
        }
        self.drop_conn(id, why);
    }
}

fn hex8(b: &[u8]) -> String {
    b.iter().take(8).map(|x| format!("{x:02x}")).collect()
}
