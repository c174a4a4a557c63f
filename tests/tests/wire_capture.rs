//! G4 on the wire: capture everything the relay forwards between the SDS, the
//! SMS and the SMT processes during a migration of an enclave whose state
//! holds a known marker and whose sealed data holds a known plaintext, and
//! check that
//!
//! * neither marker, no 8-byte piece of either, and no 12-byte piece of the
//!   code, the state or the sealed plaintext appears anywhere in the capture
//!   (frame by frame and across frame boundaries);
//! * the peer-to-peer stream is TLS 1.3: outer content types 0x16 (handshake)
//!   then only 0x17 (application data) — besides the one middlebox-
//!   compatibility ChangeCipherSpec — record version 0x0303 (0x0301 is
//!   allowed on the ClientHello only, RFC 8446 §5.1), the ClientHello offering
//!   only 0x0304 in supported_versions and the ServerHello selecting 0x0304;
//!   no plaintext handshake, alert or application data after the hellos.
//!
//! The capture is written to `target/wire-capture/` (a pcap with synthetic
//! IPv4/TCP headers — channel bytes on port 443, SDS-path messages on port
//! 7000 — and a text listing of every frame) for inspection.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

use rewire_core::EnclaveId;
use rewire_tests::node::frame::{message_kind, Kind, SDS_PARTY};
use rewire_tests::node::relay::Captured;
use rewire_tests::node::store::hex;
use rewire_tests::node::world::ProcWorld;
use rewire_tests::Image;

const EID: EnclaveId = *b"wire-capture-001";
const STATE_MARKER: &[u8] = b"STATE-MARKER-7d1e0c59b3a2-enclave-heap";
const SEALED_MARKER: &[u8] = b"SEALED-PLAINTEXT-MARKER-4f6a2e81c9d7";

fn image() -> Image {
    let mut img = Image::sample(0x42, 8000);
    img.state[1000..1000 + STATE_MARKER.len()].copy_from_slice(STATE_MARKER);
    let mut sealed = b"sealing key material follows: ".to_vec();
    sealed.extend_from_slice(SEALED_MARKER);
    sealed.extend((0..500u32).map(|i| (i.wrapping_mul(0x9e37_79b9) >> 24) as u8));
    img.sealed = sealed;
    img
}

struct Record {
    ctype: u8,
    version: u16,
    body: Vec<u8>,
}

fn records(stream: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < stream.len() {
        assert!(i + 5 <= stream.len(), "truncated TLS record header");
        let len = u16::from_be_bytes([stream[i + 3], stream[i + 4]]) as usize;
        assert!(len <= 16384 + 256, "TLS record too long: {len}");
        assert!(i + 5 + len <= stream.len(), "truncated TLS record");
        out.push(Record {
            ctype: stream[i],
            version: u16::from_be_bytes([stream[i + 1], stream[i + 2]]),
            body: stream[i + 5..i + 5 + len].to_vec(),
        });
        i += 5 + len;
    }
    out
}

/// The extensions of a ClientHello (type 1) or ServerHello (type 2).
fn hello_extensions(body: &[u8], hs_type: u8) -> (u16, Vec<(u16, Vec<u8>)>) {
    assert_eq!(body[0], hs_type, "handshake message type");
    let len = u32::from_be_bytes([0, body[1], body[2], body[3]]) as usize;
    let m = &body[4..4 + len];
    assert_eq!(&m[0..2], &[3, 3], "legacy_version 0x0303");
    let mut i = 2 + 32; // random
    let sid = m[i] as usize;
    i += 1 + sid;
    let suite;
    if hs_type == 1 {
        let n = u16::from_be_bytes([m[i], m[i + 1]]) as usize;
        suite = 0;
        i += 2 + n;
        let c = m[i] as usize;
        i += 1 + c;
    } else {
        suite = u16::from_be_bytes([m[i], m[i + 1]]);
        i += 2 + 1; // cipher suite, compression
    }
    let total = u16::from_be_bytes([m[i], m[i + 1]]) as usize;
    i += 2;
    let end = i + total;
    let mut ext = Vec::new();
    while i < end {
        let t = u16::from_be_bytes([m[i], m[i + 1]]);
        let l = u16::from_be_bytes([m[i + 2], m[i + 3]]) as usize;
        ext.push((t, m[i + 4..i + 4 + l].to_vec()));
        i += 4 + l;
    }
    (suite, ext)
}

/// The TLS 1.3 record rules for one direction; returns (records, application data bytes).
fn check_tls13(dir: &str, stream: &[u8], hello_type: u8) -> (usize, usize) {
    let recs = records(stream);
    assert!(recs.len() >= 2, "{dir}: too few records");
    let first = &recs[0];
    assert_eq!(first.ctype, 0x16, "{dir}: first record is a handshake");
    if hello_type == 1 {
        assert!(
            first.version == 0x0301 || first.version == 0x0303,
            "{dir}: ClientHello record version {:#06x}",
            first.version
        );
        let (_, ext) = hello_extensions(&first.body, 1);
        let sv = ext
            .iter()
            .find(|(t, _)| *t == 0x002b)
            .expect("supported_versions");
        assert_eq!(
            &sv.1[..],
            &[2, 0x03, 0x04],
            "{dir}: ClientHello offers TLS 1.3 only"
        );
    } else {
        assert_eq!(first.version, 0x0303, "{dir}: record version");
        let (suite, ext) = hello_extensions(&first.body, 2);
        let sv = ext
            .iter()
            .find(|(t, _)| *t == 0x002b)
            .expect("supported_versions");
        assert_eq!(
            &sv.1[..],
            &[0x03, 0x04],
            "{dir}: ServerHello selects TLS 1.3"
        );
        // Both simulated monitors run on this CPU: AES-256-GCM where it has
        // AES instructions, ChaCha20-Poly1305 otherwise (protocol §4.6).
        let want = match rewire_core::channel::Cipher::detect() {
            rewire_core::channel::Cipher::Aes256Gcm => 0x1302,
            rewire_core::channel::Cipher::ChaCha20Poly1305 => 0x1303,
        };
        assert_eq!(suite, want, "{dir}: the suite both monitors prefer");
    }
    let mut app = 0;
    let mut seen_app = false;
    for (k, r) in recs.iter().enumerate().skip(1) {
        assert_eq!(
            r.version, 0x0303,
            "{dir}: record {k} version {:#06x}",
            r.version
        );
        match r.ctype {
            0x14 => {
                assert!(!seen_app, "{dir}: ChangeCipherSpec after application data");
                assert_eq!(r.body, [1], "{dir}: compatibility ChangeCipherSpec");
            }
            0x17 => {
                seen_app = true;
                app += r.body.len();
            }
            t => panic!("{dir}: plaintext record of type {t:#04x} at {k}"),
        }
    }
    (recs.len(), app)
}

/// All `n`-byte windows of `data`.
fn windows(data: &[u8], n: usize, set: &mut HashSet<Vec<u8>>) {
    for w in data.windows(n) {
        set.insert(w.to_vec());
    }
}

fn leaked(haystacks: &[&[u8]], secret: &[u8], n: usize) -> Option<usize> {
    let mut set = HashSet::new();
    for h in haystacks {
        windows(h, n, &mut set);
    }
    secret.windows(n).position(|w| set.contains(w))
}

/// pcap (LINKTYPE_RAW, IPv4) with synthetic TCP headers, one stream per
/// (sender, receiver, channel).
fn write_pcap(path: &PathBuf, cap: &[Captured]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    let mut h = Vec::new();
    h.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&101u32.to_le_bytes());
    f.write_all(&h)?;
    let mut seqs: std::collections::HashMap<(u8, u8, [u8; 16]), u32> = Default::default();
    let ip = |p: u8| [127, 0, 1, if p == SDS_PARTY { 100 } else { p + 1 }];
    for c in cap {
        let fr = &c.frame;
        // Channel bytes: the SMS (TLS client) talks to port 443 of the SMT.
        let (sport, dport) = match fr.kind {
            Kind::Peer if fr.from < fr.to => (40000 + u16::from(fr.from), 443),
            Kind::Peer => (443, 40000 + u16::from(fr.to)),
            _ if fr.to == SDS_PARTY => (41000 + u16::from(fr.from), 7000),
            _ => (7000, 41000 + u16::from(fr.to)),
        };
        for part in fr.payload.chunks(60000) {
            let seq = seqs.entry((fr.from, fr.to, fr.conn)).or_insert(1);
            let total = 20 + 20 + part.len();
            let mut pkt = Vec::with_capacity(total);
            pkt.extend_from_slice(&[0x45, 0]);
            pkt.extend_from_slice(&(total as u16).to_be_bytes());
            pkt.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
            pkt.extend_from_slice(&ip(fr.from));
            pkt.extend_from_slice(&ip(fr.to));
            let mut sum: u32 = pkt
                .chunks(2)
                .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                .sum();
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            pkt[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
            pkt.extend_from_slice(&sport.to_be_bytes());
            pkt.extend_from_slice(&dport.to_be_bytes());
            pkt.extend_from_slice(&seq.to_be_bytes());
            pkt.extend_from_slice(&[0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
            pkt.extend_from_slice(part);
            *seq = seq.wrapping_add(part.len() as u32);
            let mut rh = Vec::new();
            rh.extend_from_slice(&(c.at.as_secs() as u32).to_le_bytes());
            rh.extend_from_slice(&c.at.subsec_micros().to_le_bytes());
            rh.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
            rh.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
            f.write_all(&rh)?;
            f.write_all(&pkt)?;
        }
    }
    Ok(())
}

#[test]
fn nothing_secret_crosses_the_wire_and_the_channel_is_tls13() {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let mut w = ProcWorld::new(
        &PathBuf::from(env!("CARGO_BIN_EXE_rewire-node")),
        &tmp.join("wire-capture-world"),
        2,
        3,
    );
    let img = image();
    w.deploy(&[(0, EID, img.clone())]);
    w.relay.start_capture();
    w.spawn_all();
    let rid = w.order(&EID, 1).expect("order");
    w.settle();
    let at = w
        .check_exactly_one(&[EID])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(at, vec![1], "the enclave moved");
    let cap = w.relay.take_capture();
    w.shutdown();

    // Keep it for inspection.
    let out = tmp.parent().unwrap_or(&tmp).join("wire-capture");
    std::fs::create_dir_all(&out).expect("capture dir");
    write_pcap(&out.join("migration.pcap"), &cap).expect("pcap");
    let mut listing = String::new();
    for c in &cap {
        let f = &c.frame;
        let party = |p: u8| {
            if p == SDS_PARTY {
                "sds".to_string()
            } else {
                format!("host{p}")
            }
        };
        let what = match f.kind {
            Kind::Peer => format!("channel {}", hex(&f.conn[..4])),
            _ => format!("sds-path {}", message_kind(&f.payload)),
        };
        let head = &f.payload[..f.payload.len().min(16)];
        listing.push_str(&format!(
            "{:>10.6} {:>6} -> {:<6} {what:<20} {:>6} B  {}\n",
            c.at.as_secs_f64(),
            party(f.from),
            party(f.to),
            f.payload.len(),
            hex(head)
        ));
    }
    std::fs::write(out.join("frames.txt"), &listing).expect("listing");
    println!(
        "capture: {} frames, {} bytes, in {}",
        cap.len(),
        cap.iter().map(|c| c.frame.payload.len()).sum::<usize>(),
        out.display()
    );

    // The two directions of the channel, and every payload on its own.
    let conn: [u8; 16] = rewire_tests::node::store::unhex(&rid)
        .and_then(|v| v.try_into().ok())
        .expect("request id");
    let stream = |from: u8| -> Vec<u8> {
        cap.iter()
            .filter(|c| c.frame.kind == Kind::Peer && c.frame.conn == conn && c.frame.from == from)
            .flat_map(|c| c.frame.payload.iter().copied())
            .collect()
    };
    let (c2s, s2c) = (stream(0), stream(1));
    let sds_path: Vec<u8> = cap
        .iter()
        .filter(|c| c.frame.kind == Kind::Sds)
        .flat_map(|c| c.frame.payload.iter().copied())
        .collect();
    let mut hay: Vec<&[u8]> = cap.iter().map(|c| &c.frame.payload[..]).collect();
    hay.push(&c2s);
    hay.push(&s2c);
    hay.push(&sds_path);
    assert!(
        !cap.iter()
            .any(|c| c.frame.kind == Kind::Peer && c.frame.conn != conn),
        "one channel"
    );

    // The detector finds what it looks for.
    assert_eq!(leaked(&[&img.state[..]], STATE_MARKER, 8), Some(0));
    assert!(leaked(&[&img.state[..]], &img.state[5000..5100], 12).is_some());
    for (name, secret, n) in [
        ("state marker", STATE_MARKER, 8),
        ("sealed-data marker", SEALED_MARKER, 8),
        ("state", &img.state[..], 12),
        ("sealed plaintext", &img.sealed[..], 12),
        ("code", &img.code[..], 12),
    ] {
        if let Some(off) = leaked(&hay, secret, n) {
            panic!("{name}: {n} bytes from offset {off} appear on the wire");
        }
    }
    // The sealed blobs are device-bound: the source's blob never travels either.
    assert!(
        c2s.len() > img.state.len() + img.code.len(),
        "the image went through the channel"
    );

    let (nc, app_c) = check_tls13("SMS→SMT", &c2s, 1);
    let (ns, app_s) = check_tls13("SMT→SMS", &s2c, 2);
    assert!(
        app_c > img.code.len() + img.state.len() + img.sealed.len(),
        "the image travelled as application data"
    );
    println!(
        "channel: SMS→SMT {nc} TLS 1.3 records ({app_c} B application data), \
         SMT→SMS {ns} records ({app_s} B); SDS path {} B; no marker, no 8-byte piece of a \
         marker, no 12-byte piece of code, state or sealed plaintext on the wire",
        sds_path.len()
    );
}
