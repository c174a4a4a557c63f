//! The test driver's side of a multi-process world: it sets up the durable
//! state of every party in-process (SDS registry and ledger, each monitor's
//! journal, counter and enclave files), then runs each party as a
//! `rewire-node` process connected through the [`Relay`], kills them with
//! SIGKILL, restarts them from disk, lets the world settle and checks the
//! guarantees from what is on disk and what the monitors report.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rewire_core::monitor::SEALED_DATA_KEY_ID;
use rewire_core::{EnclaveId, Monitor, Sds};

use super::relay::Relay;
use super::store::{atomic_write, hex, unix_now, FileHost, FilePlatform};
use crate::{config, identity, sds_key, Image, SM_MEASUREMENT};

/// Lines a node printed, shared with the thread that reads its stdout.
#[derive(Default)]
pub struct Lines {
    v: Mutex<Vec<String>>,
    cv: Condvar,
}

impl Lines {
    pub fn snapshot(&self) -> Vec<String> {
        self.v.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// Wait for a line from index `from` on that satisfies `pred`.
    pub fn wait(
        &self,
        from: usize,
        timeout: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Option<(usize, String)> {
        let end = Instant::now() + timeout;
        let mut v = self.v.lock().unwrap_or_else(|p| p.into_inner());
        let mut i = from;
        loop {
            while i < v.len() {
                if pred(&v[i]) {
                    return Some((i, v[i].clone()));
                }
                i += 1;
            }
            let now = Instant::now();
            if now >= end {
                return None;
            }
            v = self
                .cv
                .wait_timeout(v, end - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
    fn len(&self) -> usize {
        self.v.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

struct NodeProc {
    child: Child,
    stdin: ChildStdin,
    lines: Arc<Lines>,
}

/// A monitor's view of one enclave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonStatus {
    pub state: String,
    pub epoch: u64,
    pub may_run: bool,
}

pub struct ProcWorld {
    pub root: PathBuf,
    pub n: usize,
    pub relay: Relay,
    bin: PathBuf,
    nodes: Vec<Option<NodeProc>>,
    /// Output of every process ever started: (party, lines).
    pub runs: Vec<(usize, Arc<Lines>)>,
    pub images: BTreeMap<EnclaveId, Image>,
    nonce: u64,
    pub kills: u64,
    pub verbose: bool,
}

const REPLY: Duration = Duration::from_secs(30);

impl ProcWorld {
    /// A world of `n` hosts (ATL 2 each) under `root` (wiped first).
    pub fn new(bin: &Path, root: &Path, n: usize, seed: u64) -> ProcWorld {
        let _ = std::fs::remove_dir_all(root);
        std::fs::create_dir_all(root.join("sds")).expect("root dir"); // safe: test setup
        let mut sds = Sds::new(sds_key());
        sds.add_device_root(crate::keys::manufacturer_key().public());
        let now = unix_now();
        for i in 0..n {
            sds.certify_device(&crate::keys::device_certificate(i))
                .expect("certify"); // safe: test setup
            sds.endorse_host(
                identity(i).certificate(),
                vec![SM_MEASUREMENT],
                rewire_core::wire::PLATFORM_RISCV64,
                2,
                now - 600,
                now + 86_400 * 365,
            )
            .expect("endorse"); // safe: test setup
        }
        let w = ProcWorld {
            root: root.to_path_buf(),
            n,
            relay: Relay::start(seed).expect("relay"), // safe: test setup
            bin: bin.to_path_buf(),
            nodes: (0..=n).map(|_| None).collect(),
            runs: Vec::new(),
            images: BTreeMap::new(),
            nonce: 0,
            kills: 0,
            verbose: std::env::var_os("REWIRE_PROC_VERBOSE").is_some(),
        };
        w.save_ledger(&sds);
        w
    }

    /// The SDS's party number.
    pub fn sds(&self) -> usize {
        self.n
    }
    pub fn host_dir(&self, h: usize) -> PathBuf {
        self.root.join(format!("host{h}"))
    }
    fn ledger_path(&self) -> PathBuf {
        self.root.join("sds").join("ledger")
    }
    fn save_ledger(&self, sds: &Sds) {
        let b = sds.to_bytes().expect("ledger"); // safe: test setup
        atomic_write(&self.ledger_path(), &b).expect("ledger write"); // safe: test setup
    }
    /// The SDS's ledger as persisted.
    pub fn ledger(&self) -> Sds {
        let b = std::fs::read(self.ledger_path()).expect("ledger file"); // safe: test code
        Sds::from_bytes(sds_key(), &b).expect("ledger decodes") // safe: test code
    }
    pub fn ledger_bytes(&self) -> Vec<u8> {
        std::fs::read(self.ledger_path()).unwrap_or_default()
    }

    /// Register and install enclaves before the processes start:
    /// `(host, id, image)`, policy minimum ATL 1.
    pub fn deploy(&mut self, list: &[(usize, EnclaveId, Image)]) {
        let mut sds = self.ledger();
        type Install<'a> = Vec<(EnclaveId, Vec<u8>, &'a Image)>;
        let mut by_host: BTreeMap<usize, Install<'_>> = BTreeMap::new();
        for (h, eid, img) in list {
            let hid = identity(*h).host_id();
            let policy = sds
                .register_enclave(
                    *eid,
                    img.measurement(),
                    rewire_core::wire::PLATFORM_RISCV64,
                    1,
                    hid,
                )
                .expect("register"); // safe: test setup
            by_host.entry(*h).or_default().push((*eid, policy, img));
            self.images.insert(*eid, img.clone());
        }
        self.save_ledger(&sds);
        for (h, items) in by_host {
            let dir = self.host_dir(h);
            let p = FilePlatform::open(&dir).expect("platform"); // safe: test setup
            let fh = FileHost::open(&dir).expect("framework"); // safe: test setup
            for (eid, _, img) in &items {
                fh.load(eid, &img.code, &img.state, &[]).expect("load"); // safe: test setup
            }
            let mut m = Monitor::start(p, fh, identity(h), config()).expect("start"); // safe: test setup
            for (eid, policy, img) in &items {
                m.install(policy).expect("install"); // safe: test setup
                let blob = m.seal_data(eid, &img.sealed).expect("seal"); // safe: test setup
                m.enclave_host_ref()
                    .store_sealed(eid, &blob)
                    .expect("store sealed"); // safe: test setup
            }
        }
    }

    fn party_name(&self, p: usize) -> String {
        if p == self.n {
            "sds".into()
        } else {
            format!("host{p}")
        }
    }

    /// Start party `p` (a host index, or [`ProcWorld::sds`]) from its disk
    /// state; with `halt`, it stops for good at that step.
    pub fn spawn(&mut self, p: usize, halt: Option<&str>) {
        assert!(
            self.nodes[p].is_none(),
            "{} is already up",
            self.party_name(p)
        );
        let addr = self.relay.addr.to_string();
        let mut cmd = Command::new(&self.bin);
        if p == self.n {
            cmd.arg("sds").arg(self.root.join("sds"));
        } else {
            cmd.arg("monitor").arg(p.to_string()).arg(self.host_dir(p));
        }
        cmd.arg(&addr).arg(self.n.to_string());
        if let Some(h) = halt {
            cmd.arg("--halt").arg(h);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn rewire-node"); // safe: test code
        let stdin = child.stdin.take().expect("stdin"); // safe: piped above
        let stdout = child.stdout.take().expect("stdout"); // safe: piped above
        let lines = Arc::new(Lines::default());
        let l2 = lines.clone();
        let name = self.party_name(p);
        let verbose = self.verbose;
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if verbose {
                    eprintln!("[{name}] {line}");
                }
                l2.v.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                l2.cv.notify_all();
            }
        });
        let up = lines.wait(0, REPLY, |l| {
            l == "UP" || l.starts_with("FATAL") || l.starts_with("HALT ")
        });
        let halted = match up {
            Some((_, l)) if l == "UP" => false,
            // Halted inside its start (recovery), as the test asked.
            Some((_, l)) if l.starts_with("HALT ") => true,
            other => panic!("{} did not start: {other:?}", self.party_name(p)),
        };
        self.runs.push((p, lines.clone()));
        self.nodes[p] = Some(NodeProc {
            child,
            stdin,
            lines,
        });
        // Wait until the relay knows it, so that nothing sent to it right away is lost.
        let t = Instant::now();
        while !halted && !self.relay.connected(party_byte(self.n, p)) && t.elapsed() < REPLY {
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn spawn_all(&mut self) {
        for p in 0..=self.n {
            if self.nodes[p].is_none() {
                self.spawn(p, None);
            }
        }
    }

    pub fn is_up(&self, p: usize) -> bool {
        self.nodes[p].is_some()
    }

    /// SIGKILL party `p`.
    pub fn kill(&mut self, p: usize) {
        if let Some(mut n) = self.nodes[p].take() {
            let _ = n.child.kill();
            let _ = n.child.wait();
            self.kills += 1;
        }
    }

    /// The lines of the current process of party `p`.
    pub fn lines(&self, p: usize) -> Option<Arc<Lines>> {
        self.nodes[p].as_ref().map(|n| n.lines.clone())
    }

    /// Send a command and return its reply lines (without the `R <nonce> ` prefix).
    pub fn request(&mut self, p: usize, verb: &str) -> Vec<String> {
        self.nonce += 1;
        let nonce = self.nonce;
        let name = self.party_name(p);
        let node = self.nodes[p]
            .as_mut()
            .unwrap_or_else(|| panic!("{name} is down"));
        let from = node.lines.len();
        writeln!(node.stdin, "{nonce} {verb}").expect("command to node"); // safe: test code
        let prefix = format!("R {nonce} ");
        let end = format!("R {nonce} END");
        // A node that halts (at a step the test chose) never answers.
        if node
            .lines
            .wait(from, REPLY, |l| l == end || l.starts_with("HALT "))
            .is_none()
        {
            panic!("{name} did not answer `{verb}`");
        }
        node.lines
            .snapshot()
            .into_iter()
            .skip(from)
            .filter(|l| l.starts_with(&prefix) && *l != end)
            .map(|l| l[prefix.len()..].to_string())
            .collect()
    }

    /// The SDS orders `eid` to host `target`: Ok(request id) or the SDS's error.
    pub fn order(&mut self, eid: &EnclaveId, target: usize) -> Result<String, String> {
        let r = self.request(self.n, &format!("order {} {target}", hex(eid)));
        match r.first().map(|s| s.split_whitespace().collect::<Vec<_>>()) {
            Some(w) if w.first() == Some(&"ORDERED") => Ok(w.get(1).unwrap_or(&"").to_string()),
            Some(w) => Err(w.get(1).unwrap_or(&"?").to_string()),
            None => Err("no reply".into()),
        }
    }

    /// What monitor `h` says of each enclave, and whether it has anything in flight.
    pub fn status(&mut self, h: usize, eids: &[EnclaveId]) -> (Vec<Option<MonStatus>>, bool) {
        let list: Vec<String> = eids.iter().map(|e| hex(e)).collect();
        let r = self.request(h, &format!("status {}", list.join(" ")));
        let mut out = vec![None; eids.len()];
        let mut inflight = false;
        for l in r {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.first() {
                Some(&"ST") if w.len() == 5 => {
                    if let Some(i) = list.iter().position(|e| e == w[1]) {
                        if w[2] != "None" {
                            out[i] = Some(MonStatus {
                                state: w[2].to_string(),
                                epoch: w[3].parse().unwrap_or(u64::MAX),
                                may_run: w[4] == "1",
                            });
                        }
                    }
                }
                Some(&"INFLIGHT") => inflight = w.get(1) == Some(&"1"),
                _ => {}
            }
        }
        (out, inflight)
    }

    /// Quiet period: faithful network, every party up; time passes on the
    /// monitors (timeouts fire), the SDS re-sends what is in doubt, and last
    /// audits. Returns the rounds used.
    pub fn settle(&mut self) -> usize {
        self.relay.set_faults(super::relay::Faults::NONE);
        self.spawn_all();
        for round in 0..150 {
            self.relay
                .wait_quiet(Duration::from_millis(120), Duration::from_secs(20));
            let mut idle = true;
            for h in 0..self.n {
                idle &= !self.status(h, &[]).1;
            }
            let settled = self.request(self.n, "settled") == ["SETTLED 1"];
            if idle && settled {
                let before = self.ledger_bytes();
                self.request(self.n, "audit");
                self.relay
                    .wait_quiet(Duration::from_millis(120), Duration::from_secs(20));
                // Let the SDS finish handling what arrived.
                self.request(self.n, "settled");
                if self.ledger_bytes() == before {
                    return round;
                }
                continue;
            }
            // A channel must be idle for three of these to time out.
            for h in 0..self.n {
                self.request(h, "advance 11000");
            }
            self.request(self.n, "resolve");
        }
        panic!("world did not settle in 150 rounds");
    }

    /// Hosts whose disk says the enclave is scheduled.
    pub fn disk_running(&self, eid: &EnclaveId) -> Vec<usize> {
        (0..self.n)
            .filter(|&h| FileHost::inspect(&self.host_dir(h), eid).is_some_and(|e| e.running))
            .collect()
    }

    /// G2 at this instant: at most one host has the enclave scheduled.
    pub fn check_no_fork(&self, eid: &EnclaveId) -> Result<(), String> {
        let r = self.disk_running(eid);
        if r.len() > 1 {
            return Err(format!("FORK: {} scheduled on hosts {r:?}", hex(eid)));
        }
        Ok(())
    }

    /// G3 after settling: exactly one runnable copy, byte-exact (sealed data
    /// opened with that host's sealing key), its monitor says Running, and the
    /// ledger names that host at that epoch. Returns the host.
    pub fn check_exactly_one(&mut self, eids: &[EnclaveId]) -> Result<Vec<usize>, String> {
        let mut status = Vec::new();
        for h in 0..self.n {
            status.push(self.status(h, eids).0);
        }
        let ledger = self.ledger();
        let mut out = Vec::new();
        for (k, eid) in eids.iter().enumerate() {
            let img = &self.images[eid];
            let name = hex(eid);
            let running = self.disk_running(eid);
            if running.len() != 1 {
                return Err(format!("{name}: scheduled on hosts {running:?}"));
            }
            let h = running[0];
            let st = status[h][k]
                .clone()
                .ok_or(format!("{name}: host{h} has no record"))?;
            if st.state != "Running" || !st.may_run {
                return Err(format!("{name}: host{h} runs it but says {st:?}"));
            }
            for (o, s) in status.iter().enumerate() {
                if o != h && s[k].as_ref().is_some_and(|s| s.may_run) {
                    return Err(format!("{name}: host{o} also says it may run"));
                }
            }
            let e = FileHost::inspect(&self.host_dir(h), eid).ok_or("vanished")?;
            if e.code != img.code {
                return Err(format!("{name}: code differs at host{h}"));
            }
            if e.state != img.state {
                return Err(format!("{name}: state differs at host{h}"));
            }
            let key = identity(h)
                .sealing_key(&img.measurement(), eid, SEALED_DATA_KEY_ID)
                .map_err(|e| format!("{e:?}"))?;
            let plain = rewire_core::seal::unseal(&key, &e.sealed)
                .map_err(|er| format!("{name}: sealed data does not open at host{h}: {er:?}"))?;
            if plain[..] != img.sealed[..] {
                return Err(format!("{name}: sealed data differs at host{h}"));
            }
            let entry = ledger.enclave(eid).ok_or("not in ledger")?;
            if entry.location != identity(h).host_id() {
                return Err(format!("{name}: ledger location is not host{h}"));
            }
            if entry.epoch != st.epoch {
                return Err(format!(
                    "{name}: ledger epoch {} != host{h} epoch {}",
                    entry.epoch, st.epoch
                ));
            }
            out.push(h);
        }
        Ok(out)
    }

    /// Count lines matching `pred` over every process run so far.
    pub fn count_lines(&self, pred: impl Fn(usize, &str) -> bool) -> usize {
        self.runs
            .iter()
            .map(|(p, l)| l.snapshot().iter().filter(|s| pred(*p, s)).count())
            .sum()
    }

    pub fn shutdown(&mut self) {
        for p in 0..=self.n {
            if let Some(mut n) = self.nodes[p].take() {
                let _ = n.child.kill();
                let _ = n.child.wait();
            }
        }
    }
}

impl Drop for ProcWorld {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The relay's party byte for party `p` of a world of `n` hosts.
pub fn party_byte(n: usize, p: usize) -> u8 {
    if p == n {
        super::frame::SDS_PARTY
    } else {
        p as u8
    }
}
