//! The monitor's random bytes: the platform's, health-checked, and mixed
//! into a state that never repeats, even when the platform's source does.
//!
//! Journal blobs and sealed data take a fresh random salt, from which their
//! key and nonces derive: a salt drawn twice would reuse a ChaCha20 key
//! stream. A port whose source is stuck, or repeats after a reset, must not
//! cause that, so the platform's bytes are never used directly:
//!
//! * **Health check**: 32 bytes are drawn per request; all bytes equal (a
//!   zeroed or stuck source) or a draw equal to the previous one is refused
//!   with [`Error::Random`], and the operation fails closed.
//! * **Conditioning**: the draw is mixed (HKDF-SHA256) into a state seeded
//!   from the journal key and the trusted counter *as the monitor starts*.
//!   Every start moves the counter (recovery always fences), so two runs
//!   never share a state, and within a run the state moves at every draw.
//!   Output comes from the state, and the state is then ratcheted forward, so
//!   a state read out of memory does not give earlier output.
//!
//! What it cannot do: make up for a source that is predictable to the
//! adversary but passes the check. The platform must still give real
//! entropy (docs/porting.md).

use zeroize::Zeroizing;

use crate::crypto::{hkdf, random_is_stuck, sha256, Digest, Secret};
use crate::error::{Error, Result};
use crate::platform::Platform;

const LABEL: &[u8] = b"rewire/drbg/v1";

pub(crate) struct Drbg {
    state: Secret,
    last_draw: Option<Digest>,
}

impl Drbg {
    /// Seeded from the journal key (this device, this SM build) and the
    /// counter value read as the monitor starts.
    pub fn new(journal_key: &Secret, counter: u64) -> Result<Self> {
        Ok(Drbg {
            state: hkdf(
                journal_key.expose(),
                LABEL,
                &[b"seed", &counter.to_be_bytes()],
            )?,
            last_draw: None,
        })
    }

    /// Fill `out` from a fresh, health-checked draw of the platform's source.
    pub fn fill<P: Platform>(&mut self, platform: &mut P, out: &mut [u8]) -> Result<()> {
        let mut raw = Zeroizing::new([0u8; 32]);
        platform.random(&mut raw[..])?;
        if random_is_stuck(&raw[..]) {
            return Err(Error::Random);
        }
        let d = sha256(&raw[..]);
        if self.last_draw == Some(d) {
            return Err(Error::Random);
        }
        self.last_draw = Some(d);
        let mut ikm = Zeroizing::new([0u8; 64]);
        ikm[..32].copy_from_slice(self.state.expose());
        ikm[32..].copy_from_slice(&raw[..]);
        let mixed = hkdf(&ikm[..], LABEL, &[b"mix"])?;
        for (i, piece) in out.chunks_mut(32).enumerate() {
            let block = hkdf(mixed.expose(), LABEL, &[b"out", &(i as u64).to_be_bytes()])?;
            piece.copy_from_slice(&block.expose()[..piece.len()]);
        }
        self.state = hkdf(mixed.expose(), LABEL, &[b"next"])?;
        Ok(())
    }
}

/// The platform as the monitor's code sees it: everything passes through,
/// except that random bytes come from the [`Drbg`].
pub(crate) struct Conditioned<'a, P: Platform> {
    pub platform: &'a mut P,
    pub drbg: &'a mut Drbg,
}

impl<P: Platform> Platform for Conditioned<'_, P> {
    fn random(&mut self, buf: &mut [u8]) -> Result<()> {
        self.drbg.fill(self.platform, buf)
    }
    fn monotonic_ms(&mut self) -> u64 {
        self.platform.monotonic_ms()
    }
    fn wall_time(&mut self) -> Option<u64> {
        self.platform.wall_time()
    }
    fn journal_read(&mut self) -> Result<Option<alloc::vec::Vec<u8>>> {
        self.platform.journal_read()
    }
    fn journal_write(&mut self, blob: &[u8]) -> Result<()> {
        self.platform.journal_write(blob)
    }
    fn counter_read(&mut self) -> Result<u64> {
        self.platform.counter_read()
    }
    fn counter_increment(&mut self) -> Result<u64> {
        self.platform.counter_increment()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A platform whose source gives whatever the test scripts.
    struct Scripted {
        draws: Vec<[u8; 32]>,
        next: usize,
        counter: u64,
        blobs: Vec<Vec<u8>>,
        /// The blob storage presents (default: the last written).
        present: Option<Vec<u8>>,
        /// Power is cut at the next increment.
        cut_increment: bool,
    }

    impl Scripted {
        fn new(draws: Vec<[u8; 32]>, counter: u64) -> Self {
            Scripted {
                draws,
                next: 0,
                counter,
                blobs: Vec::new(),
                present: None,
                cut_increment: false,
            }
        }
    }

    impl Platform for Scripted {
        fn random(&mut self, buf: &mut [u8]) -> Result<()> {
            let d = self.draws.get(self.next).ok_or(Error::Random)?;
            self.next += 1;
            buf.copy_from_slice(&d[..buf.len()]);
            Ok(())
        }
        fn monotonic_ms(&mut self) -> u64 {
            5
        }
        fn wall_time(&mut self) -> Option<u64> {
            Some(6)
        }
        fn journal_read(&mut self) -> Result<Option<Vec<u8>>> {
            Ok(self.present.clone().or_else(|| self.blobs.last().cloned()))
        }
        fn journal_write(&mut self, blob: &[u8]) -> Result<()> {
            self.blobs.push(blob.to_vec());
            Ok(())
        }
        fn counter_read(&mut self) -> Result<u64> {
            Ok(self.counter)
        }
        fn counter_increment(&mut self) -> Result<u64> {
            if self.cut_increment {
                return Err(Error::Counter);
            }
            self.counter += 1;
            Ok(self.counter)
        }
    }

    fn draw(i: u8) -> [u8; 32] {
        let mut d = [0u8; 32];
        for (j, b) in d.iter_mut().enumerate() {
            *b = i.wrapping_mul(31).wrapping_add(j as u8);
        }
        d
    }

    const KEY: [u8; 32] = [4; 32];

    #[test]
    fn a_stuck_or_repeating_source_is_refused() {
        let key = Secret::from_bytes(KEY);
        for stuck in [[0u8; 32], [0xff; 32], [0x5a; 32]] {
            let mut p = Scripted::new(alloc::vec![stuck], 0);
            let mut out = [0u8; 32];
            let mut g = Drbg::new(&key, 0).unwrap(); // safe: test
            assert_eq!(g.fill(&mut p, &mut out), Err(Error::Random));
            assert_eq!(out, [0; 32], "nothing given out");
        }
        let mut p = Scripted::new(alloc::vec![draw(1), draw(1)], 0);
        let mut g = Drbg::new(&key, 0).unwrap(); // safe: test
        let mut out = [0u8; 32];
        assert_eq!(g.fill(&mut p, &mut out), Ok(()));
        assert_eq!(g.fill(&mut p, &mut [0u8; 32]), Err(Error::Random));
        // A failing source fails the request.
        assert_eq!(g.fill(&mut p, &mut [0u8; 32]), Err(Error::Random));
        // One differing byte passes.
        let mut almost = [7u8; 32];
        almost[31] = 8;
        let mut p = Scripted::new(alloc::vec![almost], 0);
        assert_eq!(Drbg::new(&key, 0).unwrap().fill(&mut p, &mut out), Ok(())); // safe: test
    }

    #[test]
    fn output_depends_on_the_start_and_every_draw() {
        let key = Secret::from_bytes(KEY);
        let run = |counter: u64, draws: Vec<[u8; 32]>| -> Vec<[u8; 40]> {
            let n = draws.len();
            let mut p = Scripted::new(draws, counter);
            let mut g = Drbg::new(&key, counter).unwrap(); // safe: test
            (0..n)
                .map(|_| {
                    let mut o = [0u8; 40];
                    g.fill(&mut p, &mut o).unwrap(); // safe: test
                    o
                })
                .collect()
        };
        let a = run(2, alloc::vec![draw(1), draw(2)]);
        // Deterministic in its inputs.
        assert_eq!(a, run(2, alloc::vec![draw(1), draw(2)]));
        // A source that repeats after a reset: another start, other output.
        let b = run(4, alloc::vec![draw(1), draw(2)]);
        assert_ne!(a[0], b[0]);
        assert_ne!(a[1], b[1]);
        // The same start, another draw: other output.
        assert_ne!(a[0], run(2, alloc::vec![draw(3)])[0]);
        // The state moves: a later draw equal to an earlier non-adjacent
        // one does not repeat the output.
        let c = run(2, alloc::vec![draw(1), draw(2), draw(1)]);
        assert_ne!(c[0], c[2]);
        // Not the raw draw, and the 32-byte blocks differ.
        assert_ne!(a[0][..32], draw(1));
        assert_ne!(a[0][..8], a[0][32..]);
    }

    #[test]
    fn a_journal_written_by_two_starts_with_a_repeating_source_never_reuses_a_salt() {
        let key = Secret::from_bytes(KEY);
        let records = [];
        let mut p = Scripted::new(Vec::new(), 0);
        // Each start: the journal and counter where the last one left them,
        // and a source that gives the same bytes after every reset.
        for _ in 0..3 {
            p.draws = alloc::vec![draw(1), draw(2), draw(3)];
            p.next = 0;
            let mut g = Drbg::new(&key, p.counter).unwrap(); // safe: test
            let mut c = Conditioned {
                platform: &mut p,
                drbg: &mut g,
            };
            let (_, settled) = crate::journal::recover(&mut c, &key).unwrap(); // safe: test
            crate::journal::commit(&mut c, &key, settled, &records).unwrap(); // safe: test
        }
        let salts: Vec<&[u8]> = p.blobs.iter().map(|b| &b[..40]).collect();
        for (i, s) in salts.iter().enumerate() {
            for t in &salts[i + 1..] {
                assert_ne!(s, t, "a salt repeated");
            }
        }
        assert_eq!(salts.len(), 6);
    }

    /// Two starts seeded from the same counter (the first failed before it
    /// moved the counter) with a source that repeats: storage presents each
    /// a different blob, so their fences seal different records. Their salts
    /// must differ (salts are bound to what they seal).
    #[test]
    fn a_failed_start_and_the_next_never_share_a_salt_for_different_records() {
        let key = Secret::from_bytes(KEY);
        let c = 4;
        let rec = |policy: u8| crate::journal::Record {
            id: [1; 16],
            measurement: [2; 32],
            policy: alloc::vec![policy],
            epoch: 0,
            state: crate::journal::RecState::Running,
            last: None,
            checkpoint: None,
        };
        // A settled blob at c and a torn commit at c + 1.
        let mut p = Scripted::new(alloc::vec![draw(9), draw(8)], c);
        crate::journal::write(&mut p, &key, c, false, &[rec(1)]).unwrap(); // safe: test
        crate::journal::write(&mut p, &key, c + 1, false, &[rec(2)]).unwrap(); // safe: test
        let (old, torn) = (p.blobs[0].clone(), p.blobs[1].clone());
        let start = |p: &mut Scripted, shown: &[u8], cut: bool| {
            p.draws = alloc::vec![draw(1), draw(2), draw(3)];
            p.next = 0;
            p.present = Some(shown.to_vec());
            p.cut_increment = cut;
            let mut g = Drbg::new(&key, p.counter).unwrap(); // safe: test
            let mut c = Conditioned {
                platform: &mut *p,
                drbg: &mut g,
            };
            let r = crate::journal::recover(&mut c, &key);
            (r, p.blobs.last().unwrap().clone()) // safe: test
        };
        // Start A adopts the settled blob; its fence is written, then the
        // power is cut before the counter moves.
        let (r, fence_a) = start(&mut p, &old, true);
        assert_eq!(r.err(), Some(Error::Counter));
        assert_eq!(p.counter, c);
        // Start B, seeded from the same counter, adopts the torn commit.
        let (r, fence_b) = start(&mut p, &torn, false);
        assert!(r.is_ok());
        assert_ne!(
            fence_a[..40],
            fence_b[..40],
            "a salt repeated for other records"
        );
    }

    #[test]
    fn everything_else_passes_through() {
        let mut p = Scripted::new(Vec::new(), 9);
        let mut g = Drbg::new(&Secret::from_bytes(KEY), 9).unwrap(); // safe: test
        let mut c = Conditioned {
            platform: &mut p,
            drbg: &mut g,
        };
        assert_eq!(c.monotonic_ms(), 5);
        assert_eq!(c.wall_time(), Some(6));
        assert_eq!(c.counter_read(), Ok(9));
        assert_eq!(c.counter_increment(), Ok(10));
        assert_eq!(c.journal_write(b"j"), Ok(()));
        assert_eq!(c.journal_read(), Ok(Some(b"j".to_vec())));
        assert_eq!(
            c.random(&mut [0u8; 4]),
            Err(Error::Random),
            "the source is empty"
        );
    }
}
