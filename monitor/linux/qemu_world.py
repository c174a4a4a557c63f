"""The Linux side of the reference monitor demo: QEMU hosts, the relay, the SDS.

Each host is one QEMU `virt` machine running a reference monitor: RISC-V
(`qemu-system-riscv64`, target/monitor/monitor.elf, the default) or Arm
(`qemu-system-aarch64 -machine virt,secure=on`, target/monitor-arm/monitor.elf;
``arch="aarch64"``). Its UART is the console (QEMU's stdout, read line by line
here); its virtio console carries frames (monitor/abi.h) to this relay over a
Unix socket; its flash is a file here (the untrusted storage and, where only
the monitor reaches, the monotonic counter and the simulated fuses), so a
killed QEMU restarts with its journal, checkpoints and counter. On RISC-V that
is one file, pflash1 (`NAME.flash`: the host's half, then the monitor's); on
Arm `NAME.flash` is the non-secure pflash1 (untrusted storage, the same
layout as the RISC-V host half) and `NAME.secure.flash` the secure-only
pflash0: the boot image (written from the ELF at every start), then the
counter and the fuses.

The relay is the untrusted network: it routes frames between hosts and the
SDS (the `rewire` Python package) and may drop, rewrite or delay any of them
(`World.tamper`). It holds no protocol logic: it forwards bytes by the host id
and channel id the monitors put on them, and asks the SDS what to re-send.
"""
from __future__ import annotations

import ctypes
import os
import queue
import signal
import socket
import struct
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import librewire as rewire
from librewire import net

ROOT = Path(__file__).resolve().parents[2]
ARCHS = ("riscv64", "aarch64")
BUILD_DIR = {"riscv64": ROOT / "target" / "monitor", "aarch64": ROOT / "target" / "monitor-arm"}


def elf_of(arch: str = "riscv64", variant: str = "") -> Path:
    """A monitor build: ``variant`` "" (monitor.elf), "hostile", "faulty", "deadseed", ..."""
    return BUILD_DIR[arch] / (f"monitor-{variant}.elf" if variant else "monitor.elf")


def arch_of(elf: Path) -> str:
    """riscv64 or aarch64, from the ELF header's e_machine."""
    with open(elf, "rb") as f:
        head = f.read(20)
    return "aarch64" if struct.unpack_from("<H", head, 18)[0] == 183 else "riscv64"


ELF = elf_of("riscv64")
# The same monitor with a hostile host program (host.c built with -DHOSTILE_FLASH_CMD).
HOSTILE_ELF = ROOT / "target" / "monitor" / "monitor-hostile.elf"
# The monitor built with -DFAULT_CHECKPOINT: every checkpoint after launch fails to reach flash.
FAULTY_ELF = ROOT / "target" / "monitor" / "monitor-faulty.elf"
# The monitor built with -DFAULT_SEED_DEAD: its entropy source reads DEAD once an enclave is launched.
DEADSEED_ELF = ROOT / "target" / "monitor" / "monitor-deadseed.elf"
# The monitor built with -DFAULT_PEEK_ROOT: the SM reads the device root after its boot stage locked it.
PEEKROOT_ELF = ROOT / "target" / "monitor" / "monitor-peekroot.elf"
# Where the simulated fuses keep the device root (FLASH_MON + ROT_OFF + offsetof(device_secret)).
ROOT_ADDRESS = 0x23000000 + 0xF00000 + 8

# frames (monitor/abi.h)
F_HELLO, F_TO_SDS, F_TO_PEER, F_EVENT, F_RESULT, F_STATUS, F_PROBE, F_ABUSE = 1, 2, 3, 4, 5, 6, 7, 8
F_SDS, F_PEER, F_CLOSED, F_LAUNCH, F_RUN, F_STATUS_REQ, F_PROBE_REQ, F_OFF = 32, 33, 34, 35, 36, 37, 38, 39
F_ABUSE_REQ = 40  # hostile host only
F_FUZZ, F_SCAN, F_FUZZ_REQ, F_SCAN_REQ = 9, 10, 42, 43  # hostile host only
# monitor/abi.h: the monitor's errors (Keystone's where Keystone has one), and its flash layout.
MON_ERR_BAD_POINTER, MON_ERR_NO_ENCLAVE, MON_ERR_NOT_RUNNABLE = 100007, 100001, 100004
MON_ERR_TOO_LARGE, MON_ERR_NOT_DURABLE = 100904, 100905
KS_ERR_NOT_DESTROYABLE, KS_ERR_NO_FREE_RESOURCE = 100005, 100013
SBI_ERR_NOT_SUPPORTED = -2
ENC_SLOTS = 4
JOURNAL_SLOT0, JOURNAL_SLOT_SIZE = 0x000000, 0x200000  # two slots from JOURNAL_SLOT0
CKPT_SLOT0, CKPT_SLOT_SIZE = 0x400000, 0x180000


def ckpt_slot(slot: int, k: int) -> int:
    """Offset in the host flash of enclave slot ``slot``'s checkpoint copy ``k`` (abi.h CKPT_SLOT)."""
    return CKPT_SLOT0 + (2 * slot + k) * CKPT_SLOT_SIZE
EVENTS = net.EVENTS  # monitor events (F_EVENT) by number: one table, in librewire.net
STATES = {0: "unknown", 1: "running", 2: "frozen", 3: "migrated", 4: "receiving", 5: "pending", 6: "gone"}
FLASH_SIZE = 32 << 20
ROT_OFFSET = 0x1000000 + 0xF00000  # FLASH_MON + ROT_OFF, from the start of pflash1
# Arm (monitor/arm/platform.h): two 64 MiB flashes. pflash0 (secure-only): the boot image in the
# first 16 MiB, FLASH_MON (counter, fuses) at 16 MiB; pflash1 (non-secure): untrusted storage.
ARM_FLASH_SIZE = 64 << 20
ARM_BOOT_ROM_SIZE = 16 << 20
ARM_ROT_OFFSET = 0x1000000 + 0xF00000  # FLASH_MON + ROT_OFF, from the start of pflash0
SM_ATL = {"host-A": 2, "host-B": 3, "host-C": 3}


def sm_measurement_of(elf: Path = ELF) -> bytes:
    """The SM measurement the SDS expects: SHA-256 of the monitor's whole image as loaded
    (__mon_text_start..__mon_image_end: code, read-only data, initialised data), which is what
    the monitor's boot stage hashes before anything runs. Taken from the build, not from what a
    host claims."""
    import hashlib

    b = elf.read_bytes()
    shoff, = struct.unpack_from("<Q", b, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", b, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", b, shoff + i * shentsize) for i in range(shnum)]
    symbols = {}
    for _, kind, _, _, off, size, link, _, _, entsize in sections:
        if kind != 2:  # SHT_SYMTAB
            continue
        stroff = sections[link][4]
        for k in range(size // entsize):
            name, _, _, _, value, _ = struct.unpack_from("<IBBHQQ", b, off + k * entsize)
            end = b.index(b"\0", stroff + name)
            symbols[b[stroff + name:end]] = value
    lo, hi = symbols[b"__mon_text_start"], symbols[b"__mon_image_end"]
    image = bytearray(hi - lo)
    for _, kind, flags, addr, off, size, _, _, _, _ in sections:
        if flags & 2 and kind != 8 and addr < hi and addr + size > lo:  # SHF_ALLOC, not NOBITS
            a, z = max(addr, lo), min(addr + size, hi)
            image[a - lo:z - lo] = b[off + a - addr:off + z - addr]
    return hashlib.sha256(bytes(image)).digest()


def platform_of(arch: str, name: bool = False) -> dict:
    """The ``platform`` keyword for the SDS's endorse_host / register_enclave: the code a host
    runs or an enclave is built for (``rewire.Sds`` takes a number, ``rewire.Ledger`` a name).
    Empty with a librewire that predates platforms."""
    if not hasattr(rewire, "PLATFORM_RISCV64"):
        return {}
    if name:
        return {"platform": arch}
    return {"platform": rewire.PLATFORM_AARCH64 if arch == "aarch64" else rewire.PLATFORM_RISCV64}


def first_event(events: List[Tuple[float, str, str, bytes, int]], host: str, event: str) -> Optional[float]:
    """When ``host`` first reported ``event`` in a (time, host, event, request, reason) list."""
    for t, hn, e, _, _ in events:
        if hn == host and e == event:
            return t
    return None


def _die_with_parent() -> None:
    """In the QEMU child: get SIGKILL when the relay goes away, so no emulated host outlives a test."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def arm_boot_image(elf: Path) -> bytes:
    """The first 16 MiB of the Arm secure flash: every loaded segment of the monitor's ELF at its
    load address (the reset vector at 0 copies them to secure and NS RAM)."""
    b = elf.read_bytes()
    phoff, = struct.unpack_from("<Q", b, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", b, 0x36)
    img = bytearray(b"\xff" * ARM_BOOT_ROM_SIZE)
    for i in range(phnum):
        kind, _, off, _, paddr, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", b, phoff + i * phentsize)
        if kind == 1 and filesz:  # PT_LOAD
            if paddr + filesz > ARM_BOOT_ROM_SIZE:
                raise ValueError(f"{elf}: segment at {paddr:#x} is not in the boot ROM")
            img[paddr:paddr + filesz] = b[off:off + filesz]
    return bytes(img)


class Host:
    def __init__(self, world: "World", name: str, elf: Optional[Path] = None):
        self.world = world
        self.name = name
        self.elf = elf or elf_of(world.arch)
        self.arch = arch_of(self.elf)
        self.flash = world.workdir / f"{name}.flash"  # the host-visible flash (untrusted storage first)
        self.secure_flash = world.workdir / f"{name}.secure.flash"  # Arm only
        # Unix socket paths are limited to 108 bytes: keep them in a short temporary directory.
        self.sock_path = world.sockdir / f"{name}.sock"
        self.proc: Optional[subprocess.Popen] = None
        self.sock: Optional[socket.socket] = None
        self.lines: List[Tuple[float, str]] = []
        self.host_id = b""
        self.sm_measurement = b""
        self.enclave_measurement = b""
        self.certificate = b""
        self.hello = threading.Event()
        self.boots = 0
        self._counted = False
        self._lock = threading.Lock()

    # -- provisioning: the simulated fuses (device secret, SDS key, name) in M-mode-only flash
    def provision(self, sds_public_key: bytes, manufacturer: rewire.SigningKey) -> bytes:
        """Write the fuses, as a factory would, and return the device certificate the
        manufacturer issues for the device key (out of band: the SDS never takes the device key
        from what the host later says)."""
        root = os.urandom(32)
        fuses = b"RWROT001" + root + sds_public_key + self.name.encode().ljust(16, b"\0")
        if self.arch == "aarch64":
            with open(self.flash, "wb") as f:
                f.write(b"\xff" * ARM_FLASH_SIZE)
            with open(self.secure_flash, "wb") as f:
                f.write(b"\xff" * ARM_FLASH_SIZE)
                f.seek(ARM_ROT_OFFSET)
                f.write(fuses)
        else:
            with open(self.flash, "wb") as f:
                f.write(b"\xff" * FLASH_SIZE)
                f.seek(ROT_OFFSET)
                f.write(fuses)
        return manufacturer.certify_device(rewire.device_public_key(root))

    def qemu_command(self) -> List[str]:
        console = ["-display", "none", "-monitor", "none", "-serial", "stdio",
                   "-global", "virtio-mmio.force-legacy=false",
                   "-chardev", f"socket,id=relay,path={self.sock_path},server=on,wait=on",
                   "-device", "virtio-serial-device", "-device", "virtconsole,chardev=relay"]
        if self.arch == "aarch64":
            # The boot ROM is the secure flash's first 16 MiB: this build's image, at every start
            # (the counter and the fuses after it stay).
            with open(self.secure_flash, "r+b") as f:
                f.write(arm_boot_image(self.elf))
            return ["qemu-system-aarch64", "-machine", "virt,secure=on", "-cpu", "max", "-m", "256M", *console,
                    "-drive", f"if=pflash,unit=0,format=raw,file={self.secure_flash},cache=unsafe",
                    "-drive", f"if=pflash,unit=1,format=raw,file={self.flash},cache=unsafe"]
        return ["qemu-system-riscv64", "-machine", "virt", "-cpu", "rv64,zkr=true", "-m", "256M", "-bios", "none",
                *console,
                "-drive", f"if=pflash,unit=1,format=raw,file={self.flash},cache=unsafe",
                # -kernel would not boot at 0x80000000 once a pflash drive is given: load the ELF directly
                "-device", f"loader,file={self.elf},cpu-num=0"]

    def wait_exit(self, timeout: float) -> int:
        """Wait for QEMU to stop; the monitor's exit code. RISC-V: QEMU's exit status (the test
        device); Arm: the secure GPIO powers off with status 0, so the code the monitor printed
        ("[monitor] power off, code N") before it."""
        assert self.proc is not None
        rc = self.proc.wait(timeout=timeout)
        if self.arch != "aarch64":
            return rc
        deadline = time.time() + 5  # the console thread may lag the exit
        while time.time() < deadline:
            for l in reversed(self.console()):
                if l.startswith("[monitor] power off, code "):
                    return int(l.split()[-1])
            time.sleep(0.05)
        return rc

    def start(self, relay: bool = True) -> None:
        """Boot QEMU. With ``relay`` this process connects to the console socket and routes its
        frames (the adversarial-network harness); without, a host agent connects to it
        (``rewire-agent run --monitor qemu:SOCK``) and QEMU waits for it before booting."""
        self.hello.clear()
        self._counted = False
        if self.sock_path.exists():
            self.sock_path.unlink()
        cmd = self.qemu_command() + os.environ.get("REWIRE_QEMU_ARGS", "").split()  # e.g. "-d int -D q.log"
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)
        self.boots += 1
        threading.Thread(target=self._read_console, args=(self.proc,), daemon=True).start()
        if not relay:
            return
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.time() + 20
        while True:
            try:
                s.connect(str(self.sock_path))
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError(f"{self.name}: QEMU did not open its console socket")
                time.sleep(0.02)
        self.sock = s
        threading.Thread(target=self._read_frames, args=(s,), daemon=True).start()

    def kill(self) -> None:
        """SIGKILL: the machine loses power; pflash (journal, checkpoints, counter) stays."""
        if self.proc:
            self.proc.kill()
            self.proc.wait()
        if self.sock:
            self.sock.close()
        self.proc, self.sock = None, None
        self.world.note(f"{self.name}: QEMU killed (SIGKILL)")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _read_console(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line.startswith("qemu-system-") and "-chardev" in line and "waiting for connection" in line:
                continue
            if "Write to buffer emulation is flawed" in line:  # QEMU's pflash, on stderr, once
                continue
            t = time.time()
            with self._lock:
                self.lines.append((t, line))
            if self.world.verbose and line and self._worth_printing(line):
                print(f"  {self.name} | {line}", flush=True)

    def _worth_printing(self, line: str) -> bool:
        """All of the console but the enclave's routine counting: its first step here and every 10th."""
        i = line.find("] counter=")
        if not line.startswith("[enclave@") or i < 0:
            return True
        n = int(line[i + 10:].split()[0])
        first = not self._counted
        self._counted = True
        return first or n % 10 == 0

    def _read_frames(self, s: socket.socket) -> None:
        buf = b""
        try:
            while True:
                d = s.recv(1 << 20)
                if not d:
                    break
                buf += d
                while len(buf) >= 7:
                    if buf[:2] != b"RW":
                        buf = buf[1:]
                        continue
                    n = struct.unpack_from("<I", buf, 3)[0]
                    if len(buf) < 7 + n:
                        break
                    self.world.inbox.put((self, buf[2], buf[7:7 + n], time.time()))
                    buf = buf[7 + n:]
        except OSError:
            pass

    def send(self, ftype: int, payload: bytes = b"") -> bool:
        if not self.sock:
            return False
        try:
            self.sock.sendall(b"RW" + bytes([ftype]) + struct.pack("<I", len(payload)) + payload)
            return True
        except OSError:
            return False

    def console(self) -> List[str]:
        with self._lock:
            return [l for _, l in self.lines]

    def counters(self, slot: Optional[int] = None) -> List[int]:
        """The enclave counter values printed on this host, in order: every slot's, or one slot's
        ("[enclave@NAME] " is slot 0, "[enclave@NAME#2] " slot 2)."""
        out = []
        tag = None if slot is None else f"[enclave@{self.name}]" if slot == 0 else f"[enclave@{self.name}#{slot}]"
        for l in self.console():
            i = l.find("] counter=")
            if l.startswith("[enclave@") and i >= 0 and (tag is None or l.startswith(tag)):
                out.append(int(l[i + 10:].split()[0]))
        return out


class World:
    def __init__(self, workdir: Path, verbose: bool = False, timeout_s: float = 120.0, arch: str = "riscv64"):
        if arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}")
        self.arch = arch  # the default monitor build of add_host
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.sockdir = Path(tempfile.mkdtemp(prefix="rewire-qemu-"))
        self.verbose = verbose
        self.timeout_s = timeout_s
        self.inbox: "queue.Queue[Tuple[Host, int, bytes, float]]" = queue.Queue()
        self.key = rewire.SigningKey.generate()
        self.sds = rewire.Sds(self.key)
        # The devices' manufacturer: the SDS's device-key provenance root.
        self.manufacturer = rewire.SigningKey.generate()
        self.sds.add_device_root(self.manufacturer.public_key)
        self.device_certificates: Dict[str, bytes] = {}
        self.hosts: Dict[str, Host] = {}
        self.by_id: Dict[bytes, Host] = {}
        self.events: List[Tuple[float, str, str, bytes, int]] = []  # (time, host, event, request, reason)
        self.results: List[Tuple[float, str, int, int]] = []  # (time, host, command, result)
        self.statuses: Dict[Tuple[str, bytes], dict] = {}
        self.probes: Dict[str, int] = {}
        self.abuses: Dict[str, List[int]] = {}
        self.fuzzes: Dict[str, List[int]] = {}
        self.scans: Dict[str, List[int]] = {}
        self.ledger: List[Tuple[float, str]] = []
        self.peer_bytes: Dict[Tuple[str, str], int] = {}
        self.captured: List[bytes] = []
        # tamper(src, ftype, payload) -> payload to forward, or None to drop it
        self.tamper: Optional[Callable[[Host, int, bytes], Optional[bytes]]] = None
        self.sds_tamper: Optional[Callable[[Host, bytes], Optional[bytes]]] = None
        self.on_event: Optional[Callable[[Host, str], None]] = None

    def note(self, s: str) -> None:
        if self.verbose:
            print(f"relay | {s}", flush=True)

    def add_host(self, name: str, elf: Optional[Path] = None) -> Host:
        h = Host(self, name, elf)
        self.device_certificates[name] = h.provision(self.sds.public_key, self.manufacturer)
        self.hosts[name] = h
        return h

    def boot(self, h: Host) -> None:
        h.start()
        self.wait(h.hello.is_set, f"{h.name} says hello", 60)
        self.by_id[h.host_id] = h

    def endorse(self, h: Host, now: Optional[int] = None) -> None:
        """Endorse the host's device for the SM build measured from the ELF it boots (if the host
        runs anything else, its certificate names another measurement and migrations refuse it)."""
        now = now or int(time.time())
        # Provenance from the factory's certificate, never from the host's HELLO: a host that
        # made its own device key is refused (DeviceNotCertified).
        if self.sds.certify_device(self.device_certificates[h.name]) != h.host_id:
            raise ValueError(f"{h.name} presents another device key than the one provisioned")
        self.sds.endorse_host(h.certificate, [sm_measurement_of(h.elf)], SM_ATL.get(h.name, 2), now - 3600, now + 86400,
                              **platform_of(h.arch))

    # -- the relay
    def pump(self, timeout: float = 0.05) -> None:
        try:
            h, ftype, payload, t = self.inbox.get(timeout=timeout)
        except queue.Empty:
            return
        self.route(h, ftype, payload, t)
        while True:
            try:
                h, ftype, payload, t = self.inbox.get_nowait()
            except queue.Empty:
                return
            self.route(h, ftype, payload, t)

    def route(self, h: Host, ftype: int, payload: bytes, t: float) -> None:
        if self.tamper and ftype in (F_TO_SDS, F_TO_PEER):
            p = self.tamper(h, ftype, payload)
            if p is None:
                return
            payload = p
        if ftype == F_HELLO:
            h.host_id, h.sm_measurement, h.enclave_measurement = payload[:32], payload[32:64], payload[64:96]
            h.certificate = payload[96:]
            h.hello.set()
        elif ftype == F_TO_SDS:
            self.captured.append(payload)
            try:
                ev = self.sds.handle(payload)
                self.ledger.append((t, f"{ev.kind} {self.name_of(ev.host)}"))
                self.note(f"SDS ledger: {ev.kind} at {self.name_of(ev.host)}")
            except rewire.RewireError as e:
                self.note(f"SDS ignored a message from {h.name}: {e}")
        elif ftype == F_TO_PEER:
            self.captured.append(payload)
            dest = self.by_id.get(payload[:32])
            if dest is None:
                return
            key = (h.name, dest.name)
            self.peer_bytes[key] = self.peer_bytes.get(key, 0) + len(payload) - 48
            dest.send(F_PEER, h.host_id + payload[32:])
        elif ftype == F_EVENT:
            e, req, why = struct.unpack("<I16sI", payload)
            self.events.append((t, h.name, EVENTS.get(e, "?"), req, why))
            if self.on_event:
                self.on_event(h, EVENTS.get(e, "?"))
        elif ftype == F_RESULT:
            self.results.append((t, h.name, payload[0], struct.unpack("<i", payload[1:5])[0]))
        elif ftype == F_STATUS:
            st, ep, runnable, present, slot = struct.unpack("<IQIIi", payload[:24])
            self.statuses[(h.name, payload[24:40])] = {"state": STATES.get(st, "?"), "epoch": ep,
                                                       "runnable": bool(runnable), "present": bool(present),
                                                       "slot": slot if present else None}
        elif ftype == F_PROBE:
            self.probes[h.name] = struct.unpack("<i", payload)[0]
        elif ftype == F_ABUSE:
            self.abuses[h.name] = list(struct.unpack(f"<{len(payload) // 4}i", payload))
        elif ftype == F_FUZZ:
            self.fuzzes[h.name] = list(struct.unpack("<7I", payload))
        elif ftype == F_SCAN:
            self.scans[h.name] = list(struct.unpack("<3I", payload))

    def name_of(self, host_id: bytes) -> str:
        h = self.by_id.get(host_id)
        return h.name if h else host_id.hex()[:8]

    def to_sds_path(self, host_id: bytes, msg: bytes) -> None:
        h = self.by_id.get(host_id)
        if h is None:
            return
        if self.sds_tamper:
            m = self.sds_tamper(h, msg)
            if m is None:
                return
            msg = m
        self.captured.append(msg)
        h.send(F_SDS, msg)

    def resolve(self) -> None:
        """What an SDS operator's loop does periodically: re-send what settles in-doubt migrations, audit."""
        for host, msg in self.sds.resolution():
            self.to_sds_path(host, msg)
        for host, msg in self.sds.audit():
            self.to_sds_path(host, msg)

    def wait(self, cond: Callable[[], bool], what: str, timeout: Optional[float] = None,
             resolve_every: Optional[float] = None) -> float:
        t0 = time.time()
        last = t0
        while not cond():
            if time.time() - t0 > (timeout or self.timeout_s):
                raise TimeoutError(f"timed out waiting for: {what}")
            self.pump()
            if resolve_every and time.time() - last > resolve_every:
                self.resolve()
                last = time.time()
        return time.time() - t0

    # -- commands to a host
    def launch(self, h: Host, eid: bytes, policy: bytes, state_len: int) -> None:
        h.send(F_LAUNCH, struct.pack("<I", state_len) + eid + policy)

    def run(self, h: Host, period_ms: int) -> None:
        h.send(F_RUN, struct.pack("<I", period_ms))

    def status(self, h: Host, eid: bytes, timeout: float = 20) -> dict:
        self.statuses.pop((h.name, eid), None)
        h.send(F_STATUS_REQ, eid)
        self.wait(lambda: (h.name, eid) in self.statuses, f"status from {h.name}", timeout)
        return self.statuses[(h.name, eid)]

    def probe(self, h: Host) -> int:
        self.probes.pop(h.name, None)
        h.send(F_PROBE_REQ)
        self.wait(lambda: h.name in self.probes, f"probe result from {h.name}", 20)
        return self.probes[h.name]

    def abuse(self, h: Host) -> List[int]:
        """The hostile host's bad ecalls (host.c, F_ABUSE_REQ): the monitor's result for each, then
        the number of registers a call changed (0 expected)."""
        self.abuses.pop(h.name, None)
        h.send(F_ABUSE_REQ)
        self.wait(lambda: h.name in self.abuses, f"bad-call results from {h.name}", 20)
        return self.abuses[h.name]

    def fuzz(self, h: Host, seed: int, calls: int, timeout: float = 120) -> dict:
        """The hostile host's random SBI calls (host.c, F_FUZZ_REQ): how many, and how they ended."""
        self.fuzzes.pop(h.name, None)
        h.send(F_FUZZ_REQ, struct.pack("<II", seed, calls))
        self.wait(lambda: h.name in self.fuzzes, f"fuzz results from {h.name}", timeout)
        keys = ("calls", "ok", "not_supported", "not_accessible", "too_large", "invalid_id", "other")
        return dict(zip(keys, self.fuzzes[h.name]))

    def scan(self, h: Host, marker: bytes, timeout: float = 120) -> dict:
        """The hostile host searches every byte it can read (its memory, its flash) for ``marker``
        and tries to read the monitor's memory and every slot's (host.c, F_SCAN_REQ)."""
        self.scans.pop(h.name, None)
        h.send(F_SCAN_REQ, bytes(b ^ 0xff for b in marker))
        self.wait(lambda: h.name in self.scans, f"scan results from {h.name}", timeout)
        ram, flash, reads = self.scans[h.name]
        return {"memory": ram, "flash": flash, "reads": reads}

    def event_time(self, host: str, event: str) -> Optional[float]:
        return first_event(self.events, host, event)

    def shutdown(self) -> None:
        for h in self.hosts.values():
            if h.alive():
                h.send(F_OFF)
        time.sleep(0.2)
        for h in self.hosts.values():
            if h.proc:
                h.proc.kill()
                h.proc.wait()
        shutil.rmtree(self.sockdir, ignore_errors=True)
