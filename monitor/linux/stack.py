"""make bench-stack: peak stack of every monitor ecall (and so of every librewire entry point
behind it) on riscv64 bare metal (or, with --arch aarch64, on the Arm EL3 monitor), under QEMU.

  python monitor/linux/stack.py [--state BYTES ...] [--arch riscv64|aarch64]

Boots two hosts from monitor-stack.elf (monitor.c built with -DSTACK_PROBE: the trap stack is
painted, and each ecall's deepest overwritten word is reported as "stack peak: NAME BYTES B"),
launches an enclave on A, migrates it to B, restarts A (recovery of a migrated record) and
repeats for each state size. Prints the largest peak per ecall over all runs and hosts. The
figures include the monitor's own frames (the trap handler, the copy-in, and the draining of
librewire's events with the checkpoints they call for, which every host ecall ends with),
measured from the trap frame at 8-byte resolution; after an ecall's first call, anything under
512 bytes reads as about 512 (the probe leaves its own frame unpainted).
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo  # noqa: E402
import qemu_world as q  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STACK_ELF = q.elf_of("riscv64", "stack")
PEAK = re.compile(r"stack peak: (.+) (\d+) B$")

# What each ecall runs in librewire (monitor.c's host_call / enclave_call).
CALLS = {
    "boot (handoff, start, recovery, restore)": "rewire_boot_handoff, rewire_monitor_new_from_handoff, "
                                                "rewire_monitor_checkpoint_open, rewire_monitor_tick",
    "H_INFO": "rewire_monitor_host_id, rewire_monitor_certificate",
    "H_LAUNCH": "rewire_monitor_install, rewire_monitor_checkpoint_seal/_commit",
    "H_SDS": "rewire_monitor_handle_sds (ORDER: validate, freeze, TLS ClientHello)",
    "H_PEER": "rewire_monitor_handle_peer (TLS, OFFER/ACCEPT/CHUNK/END/READY/RELEASE)",
    "H_CLOSED": "rewire_monitor_peer_closed",
    "H_TICK": "rewire_monitor_tick",
    "H_POLL_OUT": "rewire_monitor_poll_output",
    "H_POLL_EVENT": "rewire_monitor_poll_event",
    "H_RUN": "rewire_monitor_may_run, then the enclave",
    "H_STATUS": "rewire_monitor_status",
    "E_SEAL": "rewire_monitor_seal",
    "E_UNSEAL": "rewire_monitor_unseal",
}


def run(state: int, peaks: Dict[str, int], arch: str = "riscv64") -> None:
    w = demo.fleet(ROOT / "target" / "qemu-stack", verbose=False, elf=q.elf_of(arch, "stack"), arch=arch)
    try:
        A, B = w.hosts["host-A"], w.hosts["host-B"]
        eid = demo.launch(w, A, state)
        w.run(B, 100)
        w.wait(lambda: len(A.counters()) >= 3, "the enclave counting on A")
        demo.migrate(w, eid, A, B)
        w.wait(lambda: demo.at(w, eid) == "host-B" and len(B.counters()) >= 3, "the enclave counting on B", 300)
        w.status(A, eid)
        A.kill()
        time.sleep(0.3)
        w.boot(A)  # recovery of the migrated record
        w.status(A, eid)
        time.sleep(0.5)  # the console may lag
        for h in (A, B):
            for line in h.console():
                m = PEAK.search(line)
                if m:
                    peaks[m.group(1)] = max(peaks.get(m.group(1), 0), int(m.group(2)))
    finally:
        w.shutdown()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", type=int, action="append", help="enclave state sizes (default 1024 and 1 MiB; Arm: 1024 and 384 KiB)")
    ap.add_argument("--arch", choices=q.ARCHS, default="riscv64")
    args = ap.parse_args()
    elf = q.elf_of(args.arch, "stack")
    if not elf.exists():
        print(f"{elf} missing: make monitor", file=sys.stderr)
        return 1
    # The largest state a slot holds (abi.h, platform.h): 1 MiB on RISC-V; 384 KiB on Arm, whose
    # four slots share the 2 MiB of QEMU's secure RAM the monitor leaves them.
    sizes = args.state or [1024, (1 << 20) if args.arch == "riscv64" else 384 << 10]
    peaks: Dict[str, int] = {}
    for s in sizes:
        run(s, peaks, args.arch)
    target = "riscv64imac bare metal (QEMU virt)" if args.arch == "riscv64" else "aarch64 EL3 (QEMU virt,secure=on)"
    print(f"P8: peak stack per ecall, {target}, states {sizes} bytes, "
          f"{time.strftime('%Y-%m-%d')}")
    print(f"| ecall | librewire calls | peak stack (bytes) |")
    print(f"|---|---|---|")
    for name, b in sorted(peaks.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {CALLS.get(name, '')} | {b} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
