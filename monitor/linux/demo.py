"""make demo: migrate a running enclave between two QEMU hosts, step by step.

  python monitor/linux/demo.py [--state BYTES] [--quiet]

Boots host A and host B (each QEMU virt running monitor/monitor.elf, which
links librewire.a), endorses both at the SDS (the `rewire` Python package),
launches the enclave on A, shows that A's untrusted host cannot read the
enclave's memory, migrates the enclave to B mid-run, shows its counter going
on at B from where A stopped and A refusing to run the old copy, and prints
the downtime (pause on A -> running on B) and the bytes that crossed the wire.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import qemu_world as q  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def step(s: str) -> None:
    print(f"\n==> {s}", flush=True)


def fleet(workdir: Path, verbose: bool, names=("host-A", "host-B"), elf: Path = q.ELF) -> q.World:
    w = q.World(workdir, verbose=verbose)
    for n in names:
        w.add_host(n, elf=elf)
    for h in w.hosts.values():
        w.boot(h)
    for h in w.hosts.values():
        w.endorse(h)
    return w


def launch(w: q.World, h: q.Host, state_len: int, period_ms: int = 100) -> bytes:
    eid = os.urandom(16)
    policy = w.sds.register_enclave(eid, h.enclave_measurement, 2, h.host_id)
    before = len(w.results)
    w.launch(h, eid, policy, state_len)
    w.wait(lambda: any(r[1] == h.name and r[2] == q.F_LAUNCH for r in w.results[before:]), "launch result")
    res = [r for r in w.results[before:] if r[1] == h.name and r[2] == q.F_LAUNCH][-1][3]
    if res != 0:
        raise RuntimeError(f"launch refused: {res}")
    w.run(h, period_ms)
    return eid


def migrate(w: q.World, eid: bytes, src: q.Host, dst: q.Host, deadline_s: int = 600) -> bytes:
    rid = os.urandom(16)
    order = w.sds.order(eid, dst.host_id, rid, int(time.time()) + deadline_s)
    w.to_sds_path(src.host_id, order)
    return rid


def at(w: q.World, eid: bytes) -> str:
    rec = w.sds.enclave(eid)
    assert rec is not None
    return w.name_of(rec.location)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", type=int, default=1024, help="enclave state size in bytes")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    verbose = not args.quiet
    t_start = time.time()

    step("boot host A and host B under QEMU (monitor.elf = reference monitor + librewire.a)")
    w = fleet(ROOT / "target" / "qemu-demo", verbose)
    A, B = w.hosts["host-A"], w.hosts["host-B"]
    try:
        for h in (A, B):
            print(f"    {h.name}: host id {h.host_id.hex()[:16]}..., SM {h.sm_measurement.hex()[:16]}..., "
                  f"ATL {q.SM_ATL[h.name]}")
        step("SDS endorses both hosts; registers the enclave (min ATL 2) on A; A launches it")
        eid = launch(w, A, args.state)
        w.run(B, 100)  # B's host tries too: its monitor refuses until the enclave is there
        w.wait(lambda: len(A.counters()) >= 3, "the enclave counting on A")

        step("A's untrusted host tries to read the enclave's memory")
        r = w.probe(A)
        print(f"    probe: {'denied by PMP' if r != 0 else 'READ SUCCEEDED (isolation broken)'}")

        w.wait(lambda: len(A.counters()) >= 8, "the enclave counting on A")
        step("SDS orders the migration A -> B (signed request); the relay carries every byte")
        t_order = time.time()
        migrate(w, eid, A, B)
        w.wait(lambda: at(w, eid) == "host-B" and len(B.counters()) >= 5, "the enclave counting on B")
        last_a = A.counters()[-1]
        first_b = B.counters()[0]
        print(f"    counter on A stopped at {last_a}; on B it went on at {first_b}")

        step("A's host asks its monitor to run the old copy")
        w.run(A, 100)
        w.wait(lambda: any(r[1] == "host-A" and r[2] == q.F_RUN and r[3] == -409 for r in w.results),
               "A's monitor refusing")
        st = w.status(A, eid)
        print(f"    A's monitor: {st['state']} (epoch {st['epoch']}), runnable: {st['runnable']}")
        st = w.status(B, eid)
        print(f"    B's monitor: {st['state']} (epoch {st['epoch']}), runnable: {st['runnable']}")

        frozen = w.event_time("host-A", "frozen")
        active = w.event_time("host-B", "activated")
        first_step_b = next(t for t, l in B.lines if l.startswith("[enclave@") and "counter=" in l)
        wire = sum(w.peer_bytes.values())
        step("figures")
        assert frozen and active
        print(f"    enclave state: {args.state} bytes; bytes on the wire between the monitors (TLS): {wire}")
        # A pauses the enclave right after validating the order; its FROZEN event reaches the relay
        # only after A's checkpoint is on flash. So: order delivered -> B activated bounds the downtime.
        print(f"    downtime (pause on A -> running on B) <= {1000 * (active - t_order):.0f} ms"
              f" (order handed to A -> B activated; B's first step after "
              f"{1000 * (first_step_b - t_order):.0f} ms); QEMU TCG, relay clock")
        print("    timeline (relay clock, ms after the order was handed to A):")
        for t, hn, e, _, _ in w.events:
            if t >= t_order:
                print(f"      {1000 * (t - t_order):7.0f}  {hn}: {e}")
        print(f"    whole demo: {time.time() - t_start:.1f} s")
        ok = first_b == last_a + 1
        print(f"\nmake demo: {'OK' if ok else 'FAILED'} - the enclave ran on A, then only on B, state intact")
        return 0 if ok else 1
    finally:
        w.shutdown()


if __name__ == "__main__":
    sys.exit(main())
