"""One QEMU host for the reference monitor, run by hand (README, "Two real hosts").

  Each command takes --arch riscv64 (default: the M-mode monitor) or aarch64 (the EL3 monitor,
  target/monitor-arm/monitor.elf; D/NAME.flash is then the non-secure flash and
  D/NAME.secure.flash the secure one with the boot image, the counter and the fuses).

  python monitor/linux/qemu_host.py provision NAME --dir D --sds-public HEX
      The factory: writes D/NAME.flash (the simulated fuses: a fresh device root, the SDS's public
      key, the name) and D/NAME.devcert (the device certificate the manufacturer key
      D/manufacturer.pem issues for it; the key is created on first use). Prints the
      manufacturer's public key for `rewire host root-add`.
  python monitor/linux/qemu_host.py run NAME --dir D [--elf monitor.elf]
      Boots QEMU on D/NAME.flash; its console is the Unix socket D/NAME.sock, which QEMU waits
      on until the host's agent connects (`rewire-agent run --monitor qemu:D/NAME.sock`).
      Prints the host's console; Ctrl-C (or SIGTERM) powers it off. The flash keeps its journal.
  python monitor/linux/qemu_host.py measure [--elf monitor.elf]
      The SM measurement of a monitor build: what `rewire host endorse --sm-measurement` takes.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import librewire as rewire  # noqa: E402

import qemu_world as q  # noqa: E402


def _host(d: Path, name: str, elf: Path) -> q.Host:
    w = q.World(d, verbose=True, arch=q.arch_of(elf))
    h = q.Host(w, name, elf)
    h.sock_path = d / f"{name}.sock"
    w.hosts[name] = h
    h._worth_printing = lambda line: True  # type: ignore[method-assign]  # an operator sees all of the console
    if len(str(h.sock_path)) > 100:
        raise SystemExit(f"qemu_host: {h.sock_path} is too long for a Unix socket: use a shorter --dir")
    return h


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("provision")
    p.add_argument("--arch", choices=q.ARCHS, default="riscv64")
    p.add_argument("name")
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--sds-public", required=True, help="the SDS's public key (rewire keygen prints it)")
    p = sub.add_parser("run")
    p.add_argument("--arch", choices=q.ARCHS, default="riscv64")
    p.add_argument("name")
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--elf", type=Path, help="default: the monitor build of --arch")
    p = sub.add_parser("measure")
    p.add_argument("--arch", choices=q.ARCHS, default="riscv64")
    p.add_argument("--elf", type=Path, help="default: the monitor build of --arch")
    a = ap.parse_args()
    if getattr(a, "elf", None) is None:
        a.elf = q.elf_of(a.arch)

    if a.cmd == "measure":
        print(q.sm_measurement_of(a.elf).hex())
        return 0
    a.dir.mkdir(parents=True, exist_ok=True)
    if a.cmd == "provision":
        sds = bytes.fromhex(a.sds_public)
        if len(sds) != 32:
            raise SystemExit("qemu_host: --sds-public must be 64 hex digits")
        mk = a.dir / "manufacturer.pem"
        if mk.exists():
            manufacturer = rewire.SigningKey.load(mk)
        else:
            manufacturer = rewire.SigningKey.generate()
            manufacturer.save(mk)
        h = _host(a.dir, a.name, q.elf_of(a.arch))
        cert = h.provision(sds, manufacturer)
        (a.dir / f"{a.name}.devcert").write_bytes(cert)
        print(f"{h.flash}: fuses written; device certificate in {a.dir / (a.name + '.devcert')}")
        print(f"manufacturer public key: {manufacturer.public_key.hex()}")
        return 0
    h = _host(a.dir, a.name, a.elf)
    if not h.flash.exists():
        raise SystemExit(f"qemu_host: no {h.flash}: provision {a.name} first")
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    h.start(relay=False)
    print(f"qemu_host: {a.name} waits for its agent on {h.sock_path}", flush=True)
    while not stop and h.alive():
        time.sleep(0.2)
    h.world.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
