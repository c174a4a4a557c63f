//! `make demo`: an in-process migration of a sample enclave between two
//! software monitors, printing each protocol step and the elapsed time.
//! Everything the monitors and the SDS do is rewire-core; this program only
//! carries bytes between them (as the untrusted OS and network would).

use std::time::Instant;

use rewire_core::{EnclaveState, Error};
use rewire_tests::*;

const EID: [u8; 16] = *b"demo-counter-001";
const BIG: [u8; 16] = *b"demo-bigstate-01";

fn main() {
    println!(
        "librewire {} — in-process migration demo\n",
        rewire_core::VERSION
    );
    let mut w = World::new(&[2, 3, 1]);
    let names = ["A", "B", "C"];
    for (i, n) in names.iter().enumerate() {
        let id = w.hosts[i].id;
        let atl = w.sds().host(&id).map(|h| h.atl).unwrap_or(0);
        let sm = w.mon(i).identity().sm_public();
        println!("host {n}: device key {id:?}, SM key {sm:?}, ATL {atl}");
    }

    // An enclave with 1 KiB of state and a sealed secret, on host A.
    let mut img = Image::sample(42, 1024);
    w.deploy(0, EID, &img, 2);
    println!(
        "\nenclave {:?} deployed on A (policy: minimum ATL 2)",
        String::from_utf8_lossy(&EID)
    );
    for _ in 0..5 {
        w.mon(0).enclave_host().step(&EID);
    }
    img.state = w
        .mon(0)
        .enclave_host_ref()
        .get(&EID)
        .expect("enclave")
        .state
        .clone();
    println!(
        "it ran 5 steps on A; its counter byte is now {}",
        img.state[img.state.len() - 1]
    );

    println!("\n== migrate A → B (1 KiB state) ==");
    w.verbose = true;
    w.t0 = Instant::now();
    w.order(&EID, 1, [0xa1; 16]).expect("order");
    let order = w.net.back().expect("order queued").bytes.clone();
    w.run_with(|w| w.assert_no_fork(&EID));
    let took = w.t0.elapsed();
    w.verbose = false;
    let at = w.assert_exactly_one(&EID, &img);
    println!(
        "done in {:.3} ms: the enclave runs on {} at epoch {}, state byte-exact",
        took.as_secs_f64() * 1000.0,
        names[at],
        w.mon(at).status(&EID).expect("status").epoch
    );
    println!(
        "sealed data re-sealed on B: opens with B's key: {}, with A's key: {}",
        w.sealed_opens_with(1, &EID, 1, &img),
        w.sealed_opens_with(1, &EID, 0, &img)
    );
    w.mon(1).enclave_host().step(&EID);
    img.state = w
        .mon(1)
        .enclave_host_ref()
        .get(&EID)
        .expect("enclave")
        .state
        .clone();
    println!(
        "it runs on B: counter byte now {}",
        img.state[img.state.len() - 1]
    );

    println!("\n== the old copy on A ==");
    let a = w.mon(0);
    println!(
        "A's monitor says: {:?}; may run: {}; image present: {}",
        a.status(&EID).expect("status").state,
        a.may_run(&EID),
        a.enclave_host_ref().get(&EID).is_some()
    );
    w.errors.clear();
    w.send_to(0, order);
    w.run();
    println!(
        "replaying the migration request at A: refused with {}",
        w.errors.first().map(|e| e.1).unwrap_or(Error::Decode)
    );

    println!("\n== migrate B → C (ATL 1 < policy 2) ==");
    match w.order(&EID, 2, [0xa2; 16]) {
        Err(e) => println!("the SDS refuses to sign it: {e}"),
        Ok(()) => println!("unexpected: ordered"),
    }
    let req = w.request(&EID, 2, [0xa3; 16]);
    let forged = w.craft_order(&sds_key(), &req, 1, 2);
    w.errors.clear();
    w.send_to(1, forged);
    w.run();
    println!(
        "a signed request for it anyway: B refuses with {}",
        w.errors.first().map(|e| e.1).unwrap_or(Error::Decode)
    );
    w.assert_exactly_one(&EID, &img);
    assert_eq!(
        w.mon(1).status(&EID).expect("status").state,
        EnclaveState::Running
    );

    println!("\n== migrate a 64 MiB enclave A → B ==");
    let big = Image::sample(7, 64 << 20);
    w.deploy(0, BIG, &big, 1);
    let t = Instant::now();
    w.order(&BIG, 1, [0xb1; 16]).expect("order");
    w.run();
    let took = t.elapsed();
    w.assert_exactly_one(&BIG, &big);
    println!(
        "64 MiB state migrated in {:.1} ms ({:.0} MiB/s), byte-exact",
        took.as_secs_f64() * 1000.0,
        64.0 / took.as_secs_f64()
    );

    println!("\n== timing (in-process, no printing) ==");
    let mut t1k = Vec::new();
    for i in 0..21u8 {
        let mut w = World::new(&[1, 1]);
        let img = Image::sample(i, 1024);
        w.deploy(0, EID, &img, 1);
        let t = Instant::now();
        w.order(&EID, 1, [i; 16]).expect("order");
        w.run();
        t1k.push(t.elapsed().as_secs_f64() * 1000.0);
        w.assert_exactly_one(&EID, &img);
    }
    t1k.sort_by(|a, b| a.total_cmp(b));
    println!("1 KiB migration, request to ACTIVE and ledger updated: median {:.3} ms over {} runs (min {:.3}, max {:.3})",
        t1k[t1k.len() / 2], t1k.len(), t1k[0], t1k[t1k.len() - 1]);

    println!("\n== SDS ledger ==");
    let sds = w.sds.as_ref().expect("sds");
    for (id, e) in sds.enclaves() {
        let host = w.index_of(&e.location).map(|i| names[i]).unwrap_or("?");
        println!(
            "{:<18} on {host} at epoch {} (policy min ATL {}){}",
            String::from_utf8_lossy(id),
            e.epoch,
            e.min_atl,
            if e.migration.is_some() {
                ", migration open"
            } else {
                ""
            }
        );
    }
}
