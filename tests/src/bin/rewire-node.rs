//! One party of a multi-process librewire world: a security monitor over a
//! file-backed platform, or the SDS over a file-backed ledger. Each connects
//! to the relay (the untrusted network) over TCP and is driven by commands on
//! stdin; it reports its progress on stdout, one line each:
//!
//! * `UP` — started (a monitor: recovered from its journal and counter);
//! * `STEP <name>` — a point where it can be stopped: `rx-sds:<Kind>` (an
//!   SDS-path message arrived, not yet handled), `rx-peer:<n>` (the n-th
//!   channel frame arrived), `ev:<Event>` (the monitor reported the event; its
//!   outputs are not sent yet); at the SDS `rx:<Kind>`, `done:<Kind>` (proof
//!   handled, ledger persisted) and `ordered` (order persisted, not sent);
//! * `HALT <name>` — with `--halt <name>`, the node stops there for good
//!   (the driver then SIGKILLs it);
//! * `EV <request id> <event>`, `LEDGER <event>`, `ERR <where> <error>`;
//! * `R <nonce> …` — replies to the command `<nonce> <verb> …`, ended by
//!   `R <nonce> END`.
//!
//! Usage:
//! `rewire-node monitor <index> <dir> <relay addr> <hosts> [--halt <step>]`,
//! `rewire-node sds <dir> <relay addr> <hosts> [--halt <step>]`.
//!
//! Nothing secret is printed: errors are codes, ids are public.

use std::io::{BufRead, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rewire_core::{HostId, Monitor, Sds};
use rewire_tests::node::frame::{message_kind, read_frame, write_frame, Frame, Kind, SDS_PARTY};
use rewire_tests::node::store::{
    atomic_write, hex, unhex, unix_now, urandom, FileHost, FilePlatform,
};
use rewire_tests::{config, identity, sds_key};

enum Input {
    Frame(Frame),
    Line(String),
    Connected(TcpStream),
    Lost,
}

struct Node {
    halt: Option<String>,
    writer: Option<TcpStream>,
    me: u8,
}

/// Report a step; stop for good if it is the one to halt at.
fn step(halt: Option<&str>, name: &str) {
    println!("STEP {name}");
    if halt == Some(name) {
        println!("HALT {name}");
        let _ = std::io::stdout().flush();
        loop {
            thread::sleep(Duration::from_secs(3600));
        }
    }
}

impl Node {
    fn step(&self, name: &str) {
        step(self.halt.as_deref(), name)
    }
    fn send(&mut self, kind: Kind, to: u8, conn: [u8; 16], payload: Vec<u8>) {
        let f = Frame {
            kind,
            from: self.me,
            to,
            conn,
            payload,
        };
        if let Some(w) = self.writer.as_mut() {
            if write_frame(w, &f).is_err() {
                // Lost with the connection, as the network would lose it.
                self.writer = None;
            }
        }
    }
}

fn fatal(what: &str) -> ! {
    println!("FATAL {what}");
    let _ = std::io::stdout().flush();
    std::process::exit(2)
}

/// Connect to the relay (again and again), feeding frames into `tx`.
fn connector(addr: String, me: u8, tx: Sender<Input>) {
    loop {
        if let Ok(mut s) = TcpStream::connect(&addr) {
            let _ = s.set_nodelay(true);
            let hello = Frame {
                kind: Kind::Hello,
                from: me,
                to: me,
                conn: [0; 16],
                payload: Vec::new(),
            };
            if let (Ok(()), Ok(w)) = (write_frame(&mut s, &hello), s.try_clone()) {
                if tx.send(Input::Connected(w)).is_err() {
                    return;
                }
                while let Ok(Some(f)) = read_frame(&mut s) {
                    if tx.send(Input::Frame(f)).is_err() {
                        return;
                    }
                }
                if tx.send(Input::Lost).is_err() {
                    return;
                }
            }
        }
        thread::sleep(Duration::from_millis(30));
    }
}

/// Commands from the driver; the node exits when the driver goes away.
fn stdin_reader(tx: Sender<Input>) {
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if tx.send(Input::Line(line)).is_err() {
            return;
        }
    }
    std::process::exit(0)
}

fn start_io(addr: &str, me: u8) -> std::sync::mpsc::Receiver<Input> {
    let (tx, rx) = channel();
    let t2 = tx.clone();
    let a = addr.to_string();
    thread::spawn(move || connector(a, me, tx));
    thread::spawn(move || stdin_reader(t2));
    rx
}

fn eid_of(s: &str) -> Option<[u8; 16]> {
    unhex(s)?.try_into().ok()
}

type FileMonitor = Monitor<FilePlatform, FileHost>;

fn emit_events(node: &Node, m: &mut FileMonitor) {
    while let Some((rid, e)) = m.poll_event() {
        let name = format!("{e:?}");
        println!("EV {} {name}", hex(&rid));
        let short = name.split('(').next().unwrap_or(&name).to_string();
        node.step(&format!("ev:{short}"));
    }
}

fn run_monitor(idx: usize, dir: &Path, addr: &str, hosts: &[HostId], halt: Option<String>) {
    let me = idx as u8;
    let mut plat = FilePlatform::open(dir).unwrap_or_else(|_| fatal("platform"));
    // Storage steps: `start-io:…` inside the recovery of `Monitor::start`
    // (its fence, and the commits that settle what was in flight), `io:…`
    // after it.
    let started = Arc::new(AtomicBool::new(false));
    let (h2, s2) = (halt.clone(), started.clone());
    plat.hook = Some(Arc::new(move |s: &str| {
        if s2.load(Ordering::SeqCst) {
            step(h2.as_deref(), s)
        } else {
            step(h2.as_deref(), &format!("start-{s}"))
        }
    }));
    let skew = plat.skew_ms.clone();
    let fh = FileHost::open(dir).unwrap_or_else(|_| fatal("enclave host"));
    let mut m = match Monitor::start(plat, fh, identity(idx), config()) {
        Ok(m) => m,
        Err(e) => fatal(&format!("start {e:?}")),
    };
    started.store(true, Ordering::SeqCst);
    let rx = start_io(addr, me);
    let mut node = Node {
        halt,
        writer: None,
        me,
    };
    println!("UP");
    emit_events(&node, &mut m);
    let mut peer_frames = 0u64;
    let mut last_tick = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(Input::Connected(s)) => node.writer = Some(s),
            Ok(Input::Lost) => node.writer = None,
            Ok(Input::Frame(f)) => match f.kind {
                Kind::Sds => {
                    node.step(&format!("rx-sds:{}", message_kind(&f.payload)));
                    if let Err(e) = m.handle_sds(&f.payload) {
                        println!("ERR sds {e:?}");
                    }
                }
                Kind::Peer => {
                    peer_frames += 1;
                    node.step(&format!("rx-peer:{peer_frames}"));
                    let Some(from) = hosts.get(f.from as usize) else {
                        continue;
                    };
                    if let Err(e) = m.handle_peer(*from, f.conn, &f.payload) {
                        println!("ERR peer {e:?}");
                    }
                }
                Kind::Hello => {}
            },
            Ok(Input::Line(l)) => {
                let w: Vec<&str> = l.split_whitespace().collect();
                let (Some(nonce), Some(verb)) = (w.first(), w.get(1)) else {
                    continue;
                };
                match *verb {
                    "tick" => {
                        if let Err(e) = m.tick() {
                            println!("ERR tick {e:?}");
                        }
                    }
                    "advance" => {
                        let ms: u64 = w.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
                        skew.fetch_add(ms, Ordering::SeqCst);
                        if let Err(e) = m.tick() {
                            println!("ERR tick {e:?}");
                        }
                    }
                    "status" => {
                        for e in &w[2..] {
                            let Some(eid) = eid_of(e) else { continue };
                            match m.status(&eid) {
                                Some(s) => println!(
                                    "R {nonce} ST {e} {:?} {} {}",
                                    s.state,
                                    s.epoch,
                                    u8::from(m.may_run(&eid))
                                ),
                                None => println!("R {nonce} ST {e} None 0 0"),
                            }
                        }
                        println!("R {nonce} INFLIGHT {}", u8::from(m.in_flight()));
                    }
                    _ => {}
                }
                emit_events(&node, &mut m);
                pump(&mut node, &mut m, hosts);
                println!("R {nonce} END");
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        emit_events(&node, &mut m);
        pump(&mut node, &mut m, hosts);
        if last_tick.elapsed() > Duration::from_millis(100) {
            last_tick = Instant::now();
            if let Err(e) = m.tick() {
                println!("ERR tick {e:?}");
            }
            emit_events(&node, &mut m);
            pump(&mut node, &mut m, hosts);
        }
    }
}

/// Send what the monitor has to send (bounded per round, to stay responsive).
fn pump(node: &mut Node, m: &mut FileMonitor, hosts: &[HostId]) {
    for _ in 0..64 {
        let Some(o) = m.poll_output() else { return };
        emit_events(node, m);
        match o.dest {
            rewire_core::Dest::Sds => node.send(Kind::Sds, SDS_PARTY, [0; 16], o.bytes),
            rewire_core::Dest::Peer { host, conn } => {
                if let Some(t) = hosts.iter().position(|h| *h == host) {
                    node.send(Kind::Peer, t as u8, conn, o.bytes);
                }
            }
        }
    }
}

fn run_sds(dir: &Path, addr: &str, hosts: &[HostId], halt: Option<String>) {
    let path = dir.join("ledger");
    let saved = std::fs::read(&path).unwrap_or_else(|_| fatal("no ledger"));
    let mut sds = match Sds::from_bytes(sds_key(), &saved) {
        Ok(s) => s,
        Err(e) => fatal(&format!("ledger {e:?}")),
    };
    let persist = |sds: &Sds| match sds.to_bytes() {
        Ok(b) => {
            if atomic_write(&path, &b).is_err() {
                fatal("ledger write");
            }
        }
        Err(e) => fatal(&format!("ledger encode {e:?}")),
    };
    let rx = start_io(addr, SDS_PARTY);
    let mut node = Node {
        halt,
        writer: None,
        me: SDS_PARTY,
    };
    let index = |h: &HostId| hosts.iter().position(|x| x == h).map(|i| i as u8);
    println!("UP");
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Input::Connected(s)) => node.writer = Some(s),
            Ok(Input::Lost) => node.writer = None,
            Ok(Input::Frame(f)) if f.kind == Kind::Sds => {
                let kind = message_kind(&f.payload);
                node.step(&format!("rx:{kind}"));
                match sds.handle(&f.payload) {
                    Ok(ev) => {
                        persist(&sds);
                        println!("LEDGER {ev:?}");
                        node.step(&format!("done:{kind}"));
                    }
                    Err(e) => println!("ERR handle {e:?}"),
                }
            }
            Ok(Input::Frame(_)) => {}
            Ok(Input::Line(l)) => {
                let w: Vec<&str> = l.split_whitespace().collect();
                let (Some(nonce), Some(verb)) = (w.first(), w.get(1)) else {
                    continue;
                };
                match *verb {
                    "order" => {
                        let eid = w.get(2).and_then(|s| eid_of(s));
                        let t: Option<usize> = w.get(3).and_then(|s| s.parse().ok());
                        let (Some(eid), Some(Some(target))) = (eid, t.map(|t| hosts.get(t))) else {
                            println!("R {nonce} ERR usage");
                            println!("R {nonce} END");
                            continue;
                        };
                        let Some(src) = sds.enclave(&eid).and_then(|e| index(&e.location)) else {
                            println!("R {nonce} ERR UnknownEnclave");
                            println!("R {nonce} END");
                            continue;
                        };
                        let mut rid = [0u8; 16];
                        if urandom(&mut rid).is_err() {
                            fatal("urandom");
                        }
                        match sds.order(&eid, *target, rid, unix_now() + 3600) {
                            Ok(bytes) => {
                                // Persisted before it is sent: a crash in
                                // between is settled by resolution.
                                persist(&sds);
                                println!("R {nonce} ORDERED {} {src}", hex(&rid));
                                node.step("ordered");
                                node.send(Kind::Sds, src, [0; 16], bytes);
                            }
                            Err(e) => println!("R {nonce} ERR {e:?}"),
                        }
                    }
                    "resolve" => {
                        let msgs = sds.resolution();
                        persist(&sds);
                        for (h, b) in msgs {
                            if let Some(i) = index(&h) {
                                node.send(Kind::Sds, i, [0; 16], b);
                            }
                        }
                    }
                    "audit" => {
                        for (h, b) in sds.audit() {
                            if let Some(i) = index(&h) {
                                node.send(Kind::Sds, i, [0; 16], b);
                            }
                        }
                    }
                    "settled" => println!("R {nonce} SETTLED {}", u8::from(sds.is_settled_all())),
                    _ => {}
                }
                println!("R {nonce} END");
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let halt = args
        .iter()
        .position(|a| a == "--halt")
        .and_then(|i| args.get(i + 1).cloned());
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| fatal("usage"));
    let mode = arg(1);
    let (idx, rest) = match mode.as_str() {
        "monitor" => (Some(arg(2).parse().unwrap_or_else(|_| fatal("index"))), 3),
        "sds" => (None, 2),
        _ => fatal("usage: rewire-node monitor|sds …"),
    };
    let dir = PathBuf::from(arg(rest));
    let addr = arg(rest + 1);
    let n: usize = arg(rest + 2).parse().unwrap_or_else(|_| fatal("hosts"));
    let hosts: Vec<HostId> = (0..n).map(|i| identity(i).host_id()).collect();
    match idx {
        Some(i) => run_monitor(i, &dir, &addr, &hosts, halt),
        None => run_sds(&dir, &addr, &hosts, halt),
    }
}
