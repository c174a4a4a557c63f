//! File-backed [`Platform`] and [`EnclaveHost`]: everything a monitor process
//! needs to survive SIGKILL lives in one directory (the multi-process world of
//! `tests/src/node`, the `rewire-node` binary). The enclave framework's
//! semantics are `rewire_core::soft`'s, on files.
//!
//! ```text
//! <dir>/journal            the journal blob (untrusted storage)
//! <dir>/counter            the "trusted" monotonic counter, decimal
//! <dir>/enclaves/<hex id>/{code,state,sealed,running}
//! ```
//!
//! Whole-file replacements (journal, counter, running flag) are atomic:
//! write a temporary file, fsync it, rename it over the old one, fsync the
//! directory. Imports append to a section file and fsync it before returning,
//! so an imported image is durable before the monitor journals PENDING (the
//! requirement of docs/protocol.md §12.2 on ports). Randomness comes from
//! `/dev/urandom`: a restarted process must never reuse a sealing salt.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rewire_core::crypto::{sha256, Digest};
use rewire_core::soft::{self, SoftEnclave};
use rewire_core::{EnclaveHost, EnclaveId, Error, Platform, Result, Section};

/// Replace `path` with `data` atomically and durably.
pub fn atomic_write(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

/// Read a whole file; `None` if it does not exist.
pub fn read_opt(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Current Unix time in seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Fill `buf` from the kernel's CSPRNG.
pub fn urandom(buf: &mut [u8]) -> io::Result<()> {
    File::open("/dev/urandom")?.read_exact(buf)
}

/// Called after each durable journal write (`io:journal:<n>`) and counter
/// increment (`io:counter:<n>`), numbered from 1 in this process.
pub type IoHook = Arc<dyn Fn(&str) + Send + Sync>;

/// The platform of a monitor process. Time is real time plus a skew that the
/// test driver advances (`advance`) to make timeouts fire without waiting.
#[derive(Clone)]
pub struct FilePlatform {
    dir: PathBuf,
    start: Instant,
    /// Milliseconds added to real time (monotonic and wall).
    pub skew_ms: Arc<AtomicU64>,
    /// Observes storage steps (the node prints them and may halt there: a
    /// kill between a journal write and its counter increment is a torn commit).
    pub hook: Option<IoHook>,
    writes: u64,
    increments: u64,
}

impl std::fmt::Debug for FilePlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilePlatform")
            .field("dir", &self.dir)
            .field("writes", &self.writes)
            .field("increments", &self.increments)
            .finish_non_exhaustive()
    }
}

impl FilePlatform {
    pub fn open(dir: &Path) -> io::Result<FilePlatform> {
        fs::create_dir_all(dir)?;
        Ok(FilePlatform {
            dir: dir.to_path_buf(),
            start: Instant::now(),
            skew_ms: Arc::new(AtomicU64::new(0)),
            hook: None,
            writes: 0,
            increments: 0,
        })
    }
    fn counter_path(&self) -> PathBuf {
        self.dir.join("counter")
    }
    /// The counter as stored (for the driver's inspection).
    pub fn read_counter(dir: &Path) -> io::Result<u64> {
        match read_opt(&dir.join("counter"))? {
            None => Ok(0),
            Some(b) => String::from_utf8_lossy(&b)
                .trim()
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "counter file")),
        }
    }
}

impl Platform for FilePlatform {
    fn random(&mut self, buf: &mut [u8]) -> Result<()> {
        urandom(buf).map_err(|_| Error::Random)
    }
    fn monotonic_ms(&mut self) -> u64 {
        self.start.elapsed().as_millis() as u64 + self.skew_ms.load(Ordering::SeqCst)
    }
    fn wall_time(&mut self) -> Option<u64> {
        Some(unix_now() + self.skew_ms.load(Ordering::SeqCst) / 1000)
    }
    fn journal_read(&mut self) -> Result<Option<Vec<u8>>> {
        read_opt(&self.dir.join("journal")).map_err(|_| Error::Storage)
    }
    fn journal_write(&mut self, blob: &[u8]) -> Result<()> {
        atomic_write(&self.dir.join("journal"), blob).map_err(|_| Error::Storage)?;
        self.writes += 1;
        if let Some(h) = &self.hook {
            h(&format!("io:journal:{}", self.writes));
        }
        Ok(())
    }
    fn counter_read(&mut self) -> Result<u64> {
        Self::read_counter(&self.dir).map_err(|_| Error::Counter)
    }
    fn counter_increment(&mut self) -> Result<u64> {
        let v = self.counter_read()? + 1;
        atomic_write(&self.counter_path(), v.to_string().as_bytes()).map_err(|_| Error::Counter)?;
        self.increments += 1;
        if let Some(h) = &self.hook {
            h(&format!("io:counter:{}", self.increments));
        }
        Ok(v)
    }
}

/// The enclave framework of a monitor process: each enclave is a directory.
#[derive(Debug, Clone)]
pub struct FileHost {
    dir: PathBuf,
}

fn section_name(s: Section) -> &'static str {
    match s {
        Section::Code => "code",
        Section::State => "state",
        Section::Sealed => "sealed",
    }
}

impl FileHost {
    pub fn open(dir: &Path) -> io::Result<FileHost> {
        let dir = dir.join("enclaves");
        fs::create_dir_all(&dir)?;
        Ok(FileHost { dir })
    }
    fn edir(&self, id: &EnclaveId) -> PathBuf {
        self.dir.join(hex(id))
    }
    fn exists(&self, id: &EnclaveId) -> bool {
        self.edir(id).join("running").exists()
    }
    fn set_running(&self, id: &EnclaveId, running: bool) -> Result<()> {
        if !self.exists(id) {
            return Err(Error::Host);
        }
        let flag: &[u8] = if running { b"1" } else { b"0" };
        atomic_write(&self.edir(id).join("running"), flag).map_err(|_| Error::Host)
    }
    fn read_section(&self, id: &EnclaveId, s: Section) -> Result<Vec<u8>> {
        if !self.exists(id) {
            return Err(Error::Host);
        }
        Ok(read_opt(&self.edir(id).join(section_name(s)))
            .map_err(|_| Error::Host)?
            .unwrap_or_default())
    }
    /// Load an enclave (paused), as a deployment would.
    pub fn load(&self, id: &EnclaveId, code: &[u8], state: &[u8], sealed: &[u8]) -> io::Result<()> {
        let d = self.edir(id);
        fs::create_dir_all(&d)?;
        atomic_write(&d.join("code"), code)?;
        atomic_write(&d.join("state"), state)?;
        atomic_write(&d.join("sealed"), sealed)?;
        atomic_write(&d.join("running"), b"0")
    }
    /// Replace the stored sealed blob (deployment).
    pub fn store_sealed(&self, id: &EnclaveId, blob: &[u8]) -> io::Result<()> {
        atomic_write(&self.edir(id).join("sealed"), blob)
    }
    /// What the disk holds for an enclave in the host directory `dir`.
    pub fn inspect(dir: &Path, id: &EnclaveId) -> Option<SoftEnclave> {
        let d = dir.join("enclaves").join(hex(id));
        let running = fs::read(d.join("running")).ok()?;
        let get = |n: &str| fs::read(d.join(n)).unwrap_or_default();
        Some(SoftEnclave {
            code: get("code"),
            state: get("state"),
            sealed: get("sealed"),
            running: running == b"1",
        })
    }
}

impl EnclaveHost for FileHost {
    fn pause(&mut self, id: &EnclaveId) -> Result<()> {
        self.set_running(id, false)
    }
    fn resume(&mut self, id: &EnclaveId) -> Result<()> {
        self.set_running(id, true)
    }
    fn destroy(&mut self, id: &EnclaveId) -> Result<()> {
        let d = self.edir(id);
        if !d.exists() {
            return Ok(());
        }
        // Not runnable first, then zeroize and remove: a kill in between
        // leaves a stopped remnant that the next destroy (recovery re-applies
        // it) removes.
        if self.exists(id) {
            self.set_running(id, false)?;
        }
        for s in Section::ALL {
            let p = d.join(section_name(s));
            if let Ok(m) = fs::metadata(&p) {
                let _ = fs::write(&p, vec![0u8; m.len() as usize]);
            }
        }
        fs::remove_dir_all(&d).map_err(|_| Error::Host)?;
        File::open(&self.dir)
            .and_then(|f| f.sync_all())
            .map_err(|_| Error::Host)
    }
    fn export_len(&mut self, id: &EnclaveId, section: Section) -> Result<u64> {
        if !self.exists(id) {
            return Err(Error::Host);
        }
        match fs::metadata(self.edir(id).join(section_name(section))) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(_) => Err(Error::Host),
        }
    }
    fn export(
        &mut self,
        id: &EnclaveId,
        section: Section,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        soft::export_from(&self.read_section(id, section)?, offset, buf)
    }
    fn import(&mut self, id: &EnclaveId, section: Section, offset: u64, data: &[u8]) -> Result<()> {
        let d = self.edir(id);
        if !self.exists(id) {
            fs::create_dir_all(&d).map_err(|_| Error::Host)?;
            for s in Section::ALL {
                File::create(d.join(section_name(s))).map_err(|_| Error::Host)?;
            }
            atomic_write(&d.join("running"), b"0").map_err(|_| Error::Host)?;
        }
        if fs::read(d.join("running")).map_err(|_| Error::Host)? == b"1" {
            return Err(Error::Host);
        }
        let p = d.join(section_name(section));
        let mut f = OpenOptions::new()
            .append(true)
            .open(&p)
            .map_err(|_| Error::Host)?;
        let len = f.metadata().map_err(|_| Error::Host)?.len();
        if offset != len {
            return Err(Error::Host);
        }
        f.write_all(data).map_err(|_| Error::Host)?;
        f.sync_all().map_err(|_| Error::Host)
    }
    fn measure(&mut self, id: &EnclaveId) -> Result<Digest> {
        Ok(sha256(&self.read_section(id, Section::Code)?))
    }
    fn attest(&mut self, id: &EnclaveId, report_data: &Digest) -> Result<Vec<u8>> {
        Ok(soft::evidence(
            &self.read_section(id, Section::Code)?,
            report_data,
        ))
    }
}
