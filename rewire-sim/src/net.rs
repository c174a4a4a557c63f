//! Packets on the untrusted network, the seeded fault policy and the
//! verdicts a hook may give.

use rewire_core::wire::Message;
use rewire_core::{HostId, RequestId};

/// Where a packet goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum To {
    Sds,
    /// A monitor; `conn` is the channel for peer traffic, `None` for SDS traffic.
    Host {
        idx: usize,
        conn: Option<RequestId>,
    },
}

/// One packet in flight: `from` is the sending host's index (`None` for the SDS).
#[derive(Debug, Clone)]
pub struct Packet {
    pub from: Option<usize>,
    pub to: To,
    pub bytes: Vec<u8>,
}

impl Packet {
    /// What the packet carries: "tls" for records between monitors;
    /// "order", "query", "release", "abort", "active", "dropped" for
    /// SDS-side messages; "message" for another message, "garbage" otherwise.
    pub fn kind(&self) -> &'static str {
        if matches!(self.to, To::Host { conn: Some(_), .. }) {
            return "tls";
        }
        match Message::decode(&self.bytes) {
            Ok(Message::Order(_)) => "order",
            Ok(Message::Query { .. }) => "query",
            Ok(Message::Release(_)) => "release",
            Ok(Message::Abort(_)) => "abort",
            Ok(Message::Active(_)) => "active",
            Ok(Message::Dropped(_)) => "dropped",
            Ok(_) => "message",
            Err(_) => "garbage",
        }
    }
}

/// A packet as a hook sees it: parties by host id.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// Sending host, `None` for the SDS.
    pub from: Option<HostId>,
    /// Receiving host, `None` for the SDS.
    pub to: Option<HostId>,
    /// The migration channel of monitor-to-monitor records.
    pub conn: Option<RequestId>,
    pub packet: &'a Packet,
}

/// What a hook decides for one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Deliver,
    Drop,
    /// Queue it at the end.
    Defer,
    /// Deliver these bytes instead.
    Replace(Vec<u8>),
    /// Deliver each of these (duplicates, or a split).
    Many(Vec<Vec<u8>>),
}

/// What the network did with a packet in an adversarial step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Delivered as sent.
    Delivered,
    Dropped,
    /// Delivered, and a copy queued at the end.
    Duplicated,
    /// Put back at a random place in the queue.
    Reordered,
    /// One bit flipped, then delivered.
    Corrupted,
    /// Queued at the end.
    Delayed,
    /// Handled as the hook said.
    Hooked,
    /// Nothing was queued: monitors' outputs were moved onto the network.
    Collected,
}

/// Seeded random faults: a probability per delivered packet for each kind.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct NetFaults {
    pub drop: f64,
    pub duplicate: f64,
    pub reorder: f64,
    pub corrupt: f64,
    pub delay: f64,
}

impl NetFaults {
    /// Every kind with the same probability.
    pub fn uniform(p: f64) -> NetFaults {
        NetFaults {
            drop: p,
            duplicate: p,
            reorder: p,
            corrupt: p,
            delay: p,
        }
    }
    fn all(&self) -> [f64; 5] {
        [
            self.drop,
            self.duplicate,
            self.reorder,
            self.corrupt,
            self.delay,
        ]
    }
    pub fn any(&self) -> bool {
        self.all().iter().any(|p| *p > 0.0)
    }
    /// Whether every probability is in [0, 1].
    pub fn is_valid(&self) -> bool {
        self.all().iter().all(|p| (0.0..=1.0).contains(p))
    }
}

/// A small deterministic PRNG for adversarial schedules (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (`0` for `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.next_u64() >> 11) as f64 / ((1u64 << 53) as f64)) < p
    }
}
