//! Criterion benchmarks behind P1 and P4 (`cargo bench -p rewire-tests --bench criterion`):
//! statistically careful timings of each measured operation and its baseline.
//! `make bench` prints the ratios of all goals from one run (benches/ratios.rs).

mod common;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rewire_core::crypto::Secret;
use rewire_core::seal::Sealer;

fn direct(_: usize, f: &mut dyn FnMut()) {
    f()
}

fn p1(c: &mut Criterion) {
    let mut g = c.benchmark_group("p1_latency");
    g.sample_size(30);
    g.bench_function("tls13_mutual_rpk_handshake_plus_1KiB", |b| {
        b.iter(common::handshake_1k)
    });
    g.bench_function("migration_1KiB_request_to_active", |b| {
        b.iter_batched(
            || common::fleet(1024),
            |mut f| common::migrate(&mut f, 1, &direct),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn p4(c: &mut Criterion) {
    let mut g = c.benchmark_group("p4_sealing_16KiB_chunk");
    let key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &[7; 32]).unwrap(),
    );
    let mut buf = vec![1u8; 16384];
    let mut n = 0u64;
    g.bench_function("ring_chacha20_poly1305_seal", |b| {
        b.iter(|| {
            n += 1;
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&n.to_be_bytes());
            key.seal_in_place_separate_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::empty(),
                &mut buf,
            )
            .unwrap()
        })
    });
    let secret = Secret::from_bytes([3; 32]);
    let mut sealer = Sealer::new(&secret, [1; 32], 14).unwrap();
    let mut chunk = Vec::with_capacity(16384 + 16);
    g.bench_function("rewire_seal_in_place", |b| {
        b.iter(|| {
            chunk.clear();
            chunk.resize(16384, 1);
            sealer.seal_in_place(&mut chunk, false).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, p1, p4);
criterion_main!(benches);
