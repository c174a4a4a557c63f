//! librewire's host agent: the untrusted process on each host that carries
//! its security monitor's bytes to the SDS and to the agents of other hosts
//! (docs/transport.md). It holds no protocol logic and no secret the
//! protocol depends on: monitors talk TLS to each other end to end and the
//! SDS judges only signed proofs. The agent's own mutual TLS keeps strangers
//! off the link and lets it route by certificate name.

pub mod agent;
pub mod cert;
pub mod conn;
pub mod port;
pub mod tls;

use std::fmt;
use std::path::Path;
use std::sync::mpsc::SyncSender;

use rewire_core::link::Frame;
use rustls::pki_types::CertificateDer;

/// An agent failure a user can act on.
#[derive(Debug)]
pub enum AgentError {
    /// Bad configuration: a file, a name, an address.
    Config(String),
    /// An I/O error on a named file or socket.
    Io(String),
}

impl AgentError {
    pub(crate) fn io(path: &Path, e: std::io::Error) -> AgentError {
        AgentError::Io(format!("{}: {e}", path.display()))
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Config(s) | AgentError::Io(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for AgentError {}

/// What the agent's threads tell its router.
pub enum Ev {
    /// A frame from the monitor.
    Monitor(u8, Vec<u8>),
    /// The monitor port opened: frames for the monitor go here (peer
    /// traffic, and the SDS's frames, which the port writes first).
    MonitorUp {
        peer: SyncSender<Vec<u8>>,
        sds: SyncSender<Vec<u8>>,
    },
    /// The monitor port closed.
    MonitorDown(String),
    /// A TLS connection is up; its peer presented `cert` (verified against the CA).
    Up {
        id: u64,
        cert: CertificateDer<'static>,
        out: conn::Out,
    },
    /// A frame on connection `id`.
    Frame { id: u64, frame: Frame },
    /// Connection `id` sent something that is not a link frame.
    Bad { id: u64, error: rewire_core::Error },
    /// Connection `id` ended (or never came up).
    Closed { id: u64, why: String },
}
