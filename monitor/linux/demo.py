"""make demo: migrate a running enclave between two QEMU hosts, step by step.

  python monitor/linux/demo.py [--state BYTES] [--quiet] [--arch riscv64|aarch64]

Boots host A and host B (each QEMU virt running the reference monitor, which
links librewire.a: RISC-V M-mode, or with --arch aarch64 the Arm EL3 monitor
under TrustZone) and a `rewire-agent` process for each; the SDS (the
`rewire` Python package: Ledger, TcpTransport, Orchestrator) reaches the
agents over TCP with mutual TLS on 127.0.0.1, endorses both hosts,
launches the enclave on A, shows that A's untrusted host cannot read the
enclave's memory, migrates the enclave to B mid-run, shows its counter going
on at B from where A stopped and A refusing to run the old copy, and prints
the downtime (pause on A -> running on B) and the bytes that crossed the wire.
"""
from __future__ import annotations

import argparse
import os
import struct
import sys
import time
from pathlib import Path
from typing import Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import agents  # noqa: E402
import qemu_world as q  # noqa: E402
from librewire import net  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def step(s: str) -> None:
    print(f"\n==> {s}", flush=True)


# The relay world (qemu_world.World) for the system tests and the stack measurement: an
# untrusted network the tests script byte by byte.
def fleet(workdir: Path, verbose: bool, names=("host-A", "host-B"), elf: Optional[Path] = None,
          arch: str = "riscv64") -> q.World:
    w = q.World(workdir, verbose=verbose, arch=arch)
    for n in names:
        w.add_host(n, elf=elf)
    for h in w.hosts.values():
        w.boot(h)
    for h in w.hosts.values():
        w.endorse(h)
    return w


def launch(w: q.World, h: q.Host, state_len: int, period_ms: int = 100) -> bytes:
    eid = os.urandom(16)
    policy = w.sds.register_enclave(eid, h.enclave_measurement, 2, h.host_id, **q.platform_of(h.arch))
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
    ap.add_argument("--arch", choices=q.ARCHS, default="riscv64",
                    help="riscv64: the M-mode monitor (make demo); aarch64: the EL3 monitor (make demo-arm)")
    args = ap.parse_args()
    if not q.elf_of(args.arch).exists():
        print(f"{q.elf_of(args.arch)} missing: make monitor (riscv64) or make -C monitor arm (aarch64)", file=sys.stderr)
        return 1
    verbose = not args.quiet
    t_start = time.time()

    what = ("QEMU virt, monitor.elf = M-mode reference monitor + librewire.a" if args.arch == "riscv64" else
            "QEMU virt,secure=on, monitor-arm/monitor.elf = EL3 reference monitor + librewire.a, host in the normal world")
    step(f"boot host A and host B under {what}, each with its own rewire-agent process")
    w = agents.AgentWorld(ROOT / "target" / ("qemu-demo" if args.arch == "riscv64" else "qemu-demo-arm"), verbose,
                          arch=args.arch)
    A, B = w.add_host("host-A"), w.add_host("host-B")
    try:
        for h in (A, B):
            w.boot(h)
        step("the SDS (rewire.Ledger + rewire.Orchestrator) reaches each agent over TCP + mutual TLS; "
             "registers and endorses both hosts")
        for h in (A, B):
            w.register(h)
            print(f"    {h.name}: agent at {w.agents[h.name].address}, host id {h.host_id.hex()[:16]}..., "
                  f"SM {h.sm_measurement.hex()[:16]}..., ATL {q.SM_ATL[h.name]}")
        w.connect()
        step("the SDS registers the enclave (min ATL 2) on A; A launches it")
        eid = w.launch(A, args.state)
        w.command(B, net.F_RUN, struct.pack("<I", 100))  # B's host tries too: its monitor refuses until the enclave is there
        w.wait(lambda: len(A.counters()) >= 3, "the enclave counting on A")

        step("A's untrusted host tries to read the enclave's memory")
        r = w.probe(A)
        fence = "PMP" if args.arch == "riscv64" else "TrustZone"
        print(f"    probe: {'denied by ' + fence if r != 0 else 'READ SUCCEEDED (isolation broken)'}")

        w.wait(lambda: len(A.counters()) >= 8, "the enclave counting on A")
        step("the SDS orders the migration A -> B (signed request); the agents carry every byte")
        t_order = time.time()
        out = w.orchestrator().migrate(eid, B.host_id)
        t_done = time.time()
        print(f"    Orchestrator.migrate returned {out.state!r} after {1000 * (t_done - t_order):.0f} ms: "
              f"the enclave is at {w.q.name_of(out.location)}, epoch {out.epoch}")
        w.wait(lambda: len(B.counters()) >= 5, "the enclave counting on B")
        last_a = A.counters()[-1]
        first_b = B.counters()[0]
        print(f"    counter on A stopped at {last_a}; on B it went on at {first_b}")

        step("A's host asks its monitor to run the old copy")
        before = len(w.results)
        w.command(A, net.F_RUN, struct.pack("<I", 100))
        w.wait(lambda: any(r[1] == "host-A" and r[2] == net.F_RUN and r[3] == -409 for r in w.results[before:]),
               "A's monitor refusing")
        st = w.status(A, eid)
        print(f"    A's monitor: {st['state']} (epoch {st['epoch']}), runnable: {st['runnable']}")
        st = w.status(B, eid)
        print(f"    B's monitor: {st['state']} (epoch {st['epoch']}), runnable: {st['runnable']}")

        active = w.event_time("host-B", "activated")
        first_step_b = next(t for t, l in B.lines if l.startswith("[enclave@") and "counter=" in l)
        assert w.transport is not None
        wire = sum(v for k, v in w.transport.stats(A.host_id).items() if k.startswith("peer_bytes_"))
        step("figures")
        assert active
        print(f"    enclave state: {args.state} bytes; bytes on the wire between the monitors (TLS, "
              f"both ways, counted by A's agent): {wire}")
        print(f"    downtime (pause on A -> running on B) <= {1000 * (active - t_order):.0f} ms"
              f" (order sent to A -> B's ACTIVE report; B's first step after "
              f"{1000 * (first_step_b - t_order):.0f} ms); QEMU TCG, the SDS's clock")
        print("    timeline (the SDS's clock, ms after the order was sent):")
        for t, hn, e, _, _ in w.events:
            if t >= t_order:
                print(f"      {1000 * (t - t_order):7.0f}  {hn}: {e}")
        print(f"    whole demo: {time.time() - t_start:.1f} s")
        ok = first_b == last_a + 1 and out.state == "completed"
        print(f"\nmake {'demo' if args.arch == 'riscv64' else 'demo-arm'}: {'OK' if ok else 'FAILED'} - the enclave ran on A, then only on B, state intact")
        return 0 if ok else 1
    finally:
        w.shutdown()


if __name__ == "__main__":
    sys.exit(main())
