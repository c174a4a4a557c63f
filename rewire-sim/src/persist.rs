//! A simulated host's durable state (journal, counter, enclave images) as
//! bytes: what `rewire.sim.Fleet.save_host` hands out and `add_host(state=)`
//! takes back. Strict: unknown magic, short input and trailing bytes are
//! typed errors.

use rewire_core::soft::{SoftHost, SoftPlatform};
use rewire_core::{EnclaveId, Error};

const STATE_MAGIC: &[u8; 8] = b"RWSIMH01";

fn put(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(Error::Decode);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| Error::Decode)?,
        ))
    }
    fn blob(&mut self) -> Result<Vec<u8>, Error> {
        let n = usize::try_from(self.u64()?).map_err(|_| Error::Decode)?;
        Ok(self.take(n)?.to_vec())
    }
}

/// Encode the durable part of a host: counter, current journal blob, enclaves.
pub fn encode_host(p: &SoftPlatform, h: &SoftHost) -> Vec<u8> {
    let mut out = STATE_MAGIC.to_vec();
    out.extend_from_slice(&p.counter.to_le_bytes());
    match &p.journal {
        None => out.push(0),
        Some(j) => {
            out.push(1);
            put(&mut out, j);
        }
    }
    out.extend_from_slice(&(h.enclaves.len() as u64).to_le_bytes());
    for (id, e) in &h.enclaves {
        out.extend_from_slice(id);
        out.push(e.running as u8);
        put(&mut out, &e.code);
        put(&mut out, &e.state);
        put(&mut out, &e.sealed);
    }
    out
}

/// Load what [`encode_host`] wrote into a fresh platform and framework.
pub fn decode_host(b: &[u8], p: &mut SoftPlatform, h: &mut SoftHost) -> Result<(), Error> {
    let mut r = Reader(b);
    if r.take(8)? != STATE_MAGIC {
        return Err(Error::UnsupportedVersion);
    }
    p.counter = r.u64()?;
    p.journal = match r.take(1)?[0] {
        0 => None,
        1 => Some(r.blob()?),
        _ => return Err(Error::Decode),
    };
    let n = r.u64()?;
    for _ in 0..n {
        let id: EnclaveId = r.take(16)?.try_into().map_err(|_| Error::Decode)?;
        let running = match r.take(1)?[0] {
            0 => false,
            1 => true,
            _ => return Err(Error::Decode),
        };
        let (code, state, sealed) = (r.blob()?, r.blob()?, r.blob()?);
        if h.enclaves.contains_key(&id) {
            return Err(Error::Decode);
        }
        h.load(id, code, state, sealed);
        if let Some(e) = h.enclaves.get_mut(&id) {
            e.running = running;
        }
    }
    if !r.0.is_empty() {
        return Err(Error::TrailingBytes);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rewire_core::soft::Clock;

    #[test]
    fn round_trip_and_strictness() {
        let mut p = SoftPlatform::new(1, Clock::default(), None);
        p.counter = 7;
        p.journal = Some(vec![1, 2, 3]);
        let mut h = SoftHost::default();
        h.load([4; 16], vec![5; 10], vec![6; 3], vec![]);
        h.enclaves.get_mut(&[4; 16]).unwrap().running = true; // safe: test
        let b = encode_host(&p, &h);

        let (mut p2, mut h2) = (
            SoftPlatform::new(2, Clock::default(), None),
            SoftHost::default(),
        );
        decode_host(&b, &mut p2, &mut h2).unwrap(); // safe: test
        assert_eq!((p2.counter, p2.journal.clone()), (7, Some(vec![1, 2, 3])));
        assert_eq!(h2.enclaves, h.enclaves);

        let mut long = b.clone();
        long.push(0);
        let fresh = || {
            (
                SoftPlatform::new(3, Clock::default(), None),
                SoftHost::default(),
            )
        };
        let (mut p3, mut h3) = fresh();
        assert_eq!(
            decode_host(&long, &mut p3, &mut h3),
            Err(Error::TrailingBytes)
        );
        let (mut p3, mut h3) = fresh();
        assert_eq!(
            decode_host(&b[..b.len() - 1], &mut p3, &mut h3),
            Err(Error::Decode)
        );
        let (mut p3, mut h3) = fresh();
        assert_eq!(
            decode_host(b"RWSIMH99", &mut p3, &mut h3),
            Err(Error::UnsupportedVersion)
        );
    }
}
