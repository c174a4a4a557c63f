//! The untrusted network between node processes: a TCP relay on 127.0.0.1
//! that every node connects to. It forwards frames by their `to` field and,
//! as the adversary, drops, duplicates and delays them (a delayed frame is
//! overtaken by later ones: reordering) and cuts connections. It can keep a
//! capture of everything it forwards.

use std::collections::{BTreeMap, BinaryHeap};
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::frame::{read_frame, write_frame, Frame, Kind};
use crate::Rng;

/// Fault probabilities, in parts per million of frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    pub drop: u32,
    pub dup: u32,
    /// Hold a frame back 5–80 ms (later frames overtake it).
    pub delay: u32,
    /// Close the connection of the frame's destination (the frame is lost).
    pub cut: u32,
}

impl Faults {
    pub const NONE: Faults = Faults {
        drop: 0,
        dup: 0,
        delay: 0,
        cut: 0,
    };
}

/// What the relay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub received: u64,
    pub forwarded: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub delayed: u64,
    /// Frames forwarded after a frame that arrived later than them.
    pub reordered: u64,
    pub cuts: u64,
    /// Frames whose destination was not connected (down or cut).
    pub undeliverable: u64,
}

/// One forwarded frame, as captured.
#[derive(Debug, Clone)]
pub struct Captured {
    pub at: Duration,
    pub frame: Frame,
}

struct Queued {
    at: Instant,
    seq: u64,
    frame: Frame,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    // Min-heap on (time, sequence).
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct State {
    /// party → (connection generation, writer).
    conns: BTreeMap<u8, (u64, Arc<TcpStream>)>,
    next_gen: u64,
    faults: Faults,
    rng: Rng,
    queue: BinaryHeap<Queued>,
    seq: u64,
    /// Highest sequence number forwarded so far.
    max_forwarded: Option<u64>,
    capture: Option<Vec<Captured>>,
    stats: Stats,
    last_activity: Instant,
    stop: bool,
}

struct Shared {
    st: Mutex<State>,
    cv: Condvar,
    t0: Instant,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking relay thread must not hide the test's own failure.
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running relay. Dropping it stops forwarding and closes every connection.
pub struct Relay {
    pub addr: std::net::SocketAddr,
    shared: Arc<Shared>,
}

impl Relay {
    pub fn start(seed: u64) -> io::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            st: Mutex::new(State {
                conns: BTreeMap::new(),
                next_gen: 0,
                faults: Faults::NONE,
                rng: Rng::new(seed ^ 0x5e1a_7000),
                queue: BinaryHeap::new(),
                seq: 0,
                max_forwarded: None,
                capture: None,
                stats: Stats::default(),
                last_activity: Instant::now(),
                stop: false,
            }),
            cv: Condvar::new(),
            t0: Instant::now(),
        });
        let s = shared.clone();
        thread::spawn(move || {
            for c in listener.incoming() {
                if s.lock().stop {
                    return;
                }
                let Ok(c) = c else { continue };
                let s = s.clone();
                thread::spawn(move || reader(s, c));
            }
        });
        let s = shared.clone();
        thread::spawn(move || router(s));
        Ok(Relay { addr, shared })
    }

    pub fn set_faults(&self, f: Faults) {
        self.shared.lock().faults = f;
    }
    pub fn start_capture(&self) {
        self.shared.lock().capture = Some(Vec::new());
    }
    pub fn take_capture(&self) -> Vec<Captured> {
        self.shared.lock().capture.take().unwrap_or_default()
    }
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats
    }
    /// Whether `party` is connected.
    pub fn connected(&self, party: u8) -> bool {
        self.shared.lock().conns.contains_key(&party)
    }
    /// Nothing queued, and no frame received or forwarded for `quiet`.
    pub fn is_quiet(&self, quiet: Duration) -> bool {
        let st = self.shared.lock();
        st.queue.is_empty() && st.last_activity.elapsed() >= quiet
    }
    /// Wait until quiet (or `max` passed); returns whether it got quiet.
    pub fn wait_quiet(&self, quiet: Duration, max: Duration) -> bool {
        let t = Instant::now();
        while t.elapsed() < max {
            if self.is_quiet(quiet) {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        false
    }
    /// Cut the connection of `party` now.
    pub fn cut(&self, party: u8) {
        let mut st = self.shared.lock();
        if let Some((_, c)) = st.conns.remove(&party) {
            let _ = c.shutdown(Shutdown::Both);
            st.stats.cuts += 1;
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.stop = true;
        for (_, (_, c)) in std::mem::take(&mut st.conns) {
            let _ = c.shutdown(Shutdown::Both);
        }
        drop(st);
        self.shared.cv.notify_all();
        // Wake the accept loop so that it sees `stop`.
        let _ = TcpStream::connect(self.addr);
    }
}

fn reader(s: Arc<Shared>, mut c: TcpStream) {
    let _ = c.set_nodelay(true);
    let Ok(Some(hello)) = read_frame(&mut c) else {
        return;
    };
    if hello.kind != Kind::Hello {
        return;
    }
    let party = hello.from;
    let Ok(w) = c.try_clone() else { return };
    let gen = {
        let mut st = s.lock();
        let gen = st.next_gen;
        st.next_gen += 1;
        if let Some((_, old)) = st.conns.insert(party, (gen, Arc::new(w))) {
            let _ = old.shutdown(Shutdown::Both);
        }
        gen
    };
    while let Ok(Some(mut f)) = read_frame(&mut c) {
        f.from = party;
        let mut st = s.lock();
        if st.stop {
            return;
        }
        st.stats.received += 1;
        st.last_activity = Instant::now();
        let fl = st.faults;
        let now = Instant::now();
        if st.rng.below(1_000_000) < fl.drop as u64 {
            st.stats.dropped += 1;
            continue;
        }
        if st.rng.below(1_000_000) < fl.cut as u64 {
            st.stats.cuts += 1;
            st.stats.dropped += 1;
            if let Some((_, d)) = st.conns.remove(&f.to) {
                let _ = d.shutdown(Shutdown::Both);
            }
            continue;
        }
        let mut at = now;
        if st.rng.below(1_000_000) < fl.delay as u64 {
            st.stats.delayed += 1;
            at += Duration::from_millis(5 + st.rng.below(75));
        }
        let copies = if st.rng.below(1_000_000) < fl.dup as u64 {
            st.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let seq = st.seq;
            st.seq += 1;
            st.queue.push(Queued {
                at,
                seq,
                frame: f.clone(),
            });
        }
        drop(st);
        s.cv.notify_all();
    }
    // The connection ended: forget it unless a newer one replaced it.
    let mut st = s.lock();
    if st.conns.get(&party).is_some_and(|(g, _)| *g == gen) {
        st.conns.remove(&party);
    }
}

fn router(s: Arc<Shared>) {
    let mut st = s.lock();
    loop {
        if st.stop {
            return;
        }
        let now = Instant::now();
        let wait = match st.queue.peek() {
            None => Duration::from_millis(100),
            Some(q) if q.at <= now => Duration::ZERO,
            Some(q) => q.at - now,
        };
        if !wait.is_zero() {
            st =
                s.cv.wait_timeout(st, wait)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            continue;
        }
        let Some(q) = st.queue.pop() else { continue };
        let dest = st.conns.get(&q.frame.to).cloned();
        let Some((gen, w)) = dest else {
            st.stats.undeliverable += 1;
            continue;
        };
        drop(st);
        let ok = write_frame(&mut &*w, &q.frame).is_ok();
        st = s.lock();
        st.last_activity = Instant::now();
        if ok {
            st.stats.forwarded += 1;
            match st.max_forwarded {
                Some(m) if q.seq < m => st.stats.reordered += 1,
                _ => st.max_forwarded = Some(q.seq),
            }
            let at = s.t0.elapsed();
            if let Some(c) = st.capture.as_mut() {
                c.push(Captured { at, frame: q.frame });
            }
        } else {
            st.stats.undeliverable += 1;
            if st.conns.get(&q.frame.to).is_some_and(|(g, _)| *g == gen) {
                st.conns.remove(&q.frame.to);
            }
        }
    }
}
