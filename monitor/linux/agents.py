"""QEMU hosts behind real host agents: the operator's path.

Each host is a QEMU reference monitor (qemu_world.Host, booted without the
relay) whose console socket its own `rewire-agent` process connects to; the
SDS is the operator's code, a `rewire.Ledger` + `rewire.Orchestrator`
reaching the agents through `rewire.TcpTransport`: TCP with mutual TLS on
127.0.0.1, certificates from an operator CA (`rewire-agent cert`).
Nothing in this file routes a protocol byte.
"""
from __future__ import annotations

import os
import queue
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import librewire as rewire
from librewire import net

import qemu_world as q

ROOT = Path(__file__).resolve().parents[2]
AGENT = Path(os.environ.get("REWIRE_AGENT", ROOT / "target" / "debug" / "rewire-agent"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agent_cmd(*args: str) -> str:
    r = subprocess.run([str(AGENT), *args], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"rewire-agent {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def make_pki(tlsdir: Path, names: List[str]) -> None:
    """The operator CA, the SDS's certificate, and one per host's agent."""
    if not (tlsdir / "ca.pem").exists():
        agent_cmd("cert", "ca", "--out", str(tlsdir))
    if not (tlsdir / "sds.pem").exists():
        agent_cmd("cert", "issue", "--ca", str(tlsdir), "--sds", "--out", str(tlsdir))
    for n in names:
        if not (tlsdir / f"{n}.pem").exists():
            agent_cmd("cert", "issue", "--ca", str(tlsdir), "--name", n, "--out", str(tlsdir))


class AgentProc:
    """One `rewire-agent run` process for a host (a fixed port, so a restarted agent is where
    the ledger says it is)."""

    def __init__(self, host: q.Host, tlsdir: Path, logdir: Path, verbose: bool = False):
        self.host = host
        self.tlsdir = tlsdir
        self.port = free_port()
        self.log = logdir / f"{host.name}.agent.log"
        self.log.write_bytes(b"")  # one world's log (restarts append)
        self.verbose = verbose
        self.proc: Optional[subprocess.Popen] = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        n = self.host.name
        cmd = [str(AGENT), "run", "--name", n, "--listen", self.address, "--monitor", f"qemu:{self.host.sock_path}",
               "--ca", str(self.tlsdir / "ca.pem"), "--cert", str(self.tlsdir / f"{n}.pem"),
               "--key", str(self.tlsdir / f"{n}.key"), os.environ.get("REWIRE_AGENT_VERBOSE", "-v")]
        err = open(self.log, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                     preexec_fn=q._die_with_parent)
        err.close()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening on"):
            raise RuntimeError(f"{n}'s agent did not start: {self.log.read_text()[-400:]}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class AgentWorld:
    """QEMU hosts, their agents, and an SDS (ledger on disk) that reaches them over TCP + TLS."""

    def __init__(self, workdir: Path, verbose: bool = False, timeout: float = 3.0, arch: str = "riscv64"):
        self.q = q.World(workdir, verbose=verbose, arch=arch)
        self.workdir = workdir
        self.verbose = verbose
        self.tlsdir = workdir / "tls"
        self.tls = net.LinkTls.from_dir(self.tlsdir)
        db = workdir / "ledger.sqlite"
        for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            if p.exists():
                p.unlink()
        self.key = self.q.key  # the SDS key the hosts' fuses name
        self.key_path = workdir / "sds.pem"
        self.ledger = rewire.Ledger(db, self.key)
        self.ledger.add_device_root(self.q.manufacturer.public_key)
        self.agents: Dict[str, AgentProc] = {}
        self.timeout = timeout
        self.events: List[Tuple[float, str, str, bytes, int]] = []  # (time, host, event, request, reason)
        self.results: List[Tuple[float, str, int, int]] = []  # (time, host, command, result)
        self.statuses: Dict[Tuple[str, bytes], dict] = {}
        self.probes: Dict[str, int] = {}
        self._lock = threading.Lock()
        self.transport: Optional[net.TcpTransport] = None
        #: called with (host name, event name) for every monitor event report (tests kill things here)
        self.on_event: Optional[Callable[[str, str], None]] = None
        self.key.save(self.key_path, overwrite=True)  # for the CLI: rewire --home WORKDIR --tls WORKDIR/tls
        # Children get SIGKILL when the thread that started them ends (PR_SET_PDEATHSIG is per
        # thread): restarts from callbacks run on this long-lived thread instead.
        self._jobs: "queue.Queue[Tuple[float, Callable[[], None]]]" = queue.Queue()
        threading.Thread(target=self._worker, daemon=True).start()

    def _worker(self) -> None:
        while True:
            at, fn = self._jobs.get()
            time.sleep(max(0.0, at - time.time()))
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - reported, the test then times out with a reason
                print(f"agents: background job failed: {e!r}", flush=True)

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` after ``delay`` seconds on the world's own thread (see above)."""
        self._jobs.put((time.time() + delay, fn))

    @property
    def hosts(self) -> Dict[str, q.Host]:
        return self.q.hosts

    def add_host(self, name: str, elf: Optional[Path] = None) -> q.Host:
        h = self.q.add_host(name, elf=elf)  # the factory: fuses and device certificate
        make_pki(self.tlsdir, [name])
        self.agents[name] = AgentProc(h, self.tlsdir, self.workdir, self.verbose)
        return h

    def boot(self, h: q.Host) -> None:
        """Start QEMU (it waits for its agent) and the agent."""
        h.start(relay=False)
        self.agents[h.name].start()

    def register(self, h: q.Host, atl: Optional[int] = None) -> net.AgentInfo:
        """What an operator does once per host: ask its agent who the monitor is, record it, its
        agent's address, and endorse it (device provenance from the factory's certificate, the
        SM build from the ELF the operator ships, not from what the host says)."""
        a = self.agents[h.name]
        deadline = time.time() + 60
        while True:
            try:
                info = net.probe_agent(a.address, h.name, self.tls, timeout=5)
                break
            except net.AgentError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        h.host_id, h.sm_measurement, h.enclave_measurement = info.host_id, info.sm_measurement, info.enclave_measurement
        h.certificate = info.certificate
        self.q.by_id[h.host_id] = h
        self.ledger.add_host(info.host_id, info.certificate, name=h.name)
        self.ledger.set_agent(info.host_id, a.address)
        self.ledger.endorse_host(info.certificate, atl=atl if atl is not None else q.SM_ATL.get(h.name, 2),
                                 **q.platform_of(h.arch, name=True),
                                 sm_measurements=[q.sm_measurement_of(h.elf)],
                                 device_certificate=self.q.device_certificates[h.name])
        return info

    def connect(self) -> net.TcpTransport:
        if self.transport is not None:
            self.transport.close()
        agents = {hid: net.Agent(name, addr) for hid, (name, addr) in self.ledger.agents().items()}
        self.transport = net.TcpTransport(agents, self.tls, on_report=self._report)
        self.transport.connect_all()
        return self.transport

    def orchestrator(self) -> rewire.Orchestrator:
        assert self.transport is not None
        return rewire.Orchestrator(self.ledger, self.transport, timeout=self.timeout, retries=60)

    def _report(self, host_id: bytes, ftype: int, p: bytes) -> None:
        t = time.time()
        name = self.q.name_of(host_id)
        with self._lock:
            if ftype == net.F_EVENT and len(p) == 24:
                e, req, why = net.decode_event(p)
                self.events.append((t, name, e, req, why))
                if self.verbose:
                    print(f"  SDS   | {name}: {e}", flush=True)
            elif ftype == net.F_RESULT and len(p) == 5:
                self.results.append((t, name, p[0], struct.unpack("<i", p[1:5])[0]))
            elif ftype == net.F_STATUS and len(p) >= 40:
                st, ep, runnable, present = struct.unpack("<IQII", p[:20])
                self.statuses[(name, p[24:40])] = {"state": q.STATES.get(st, "?"), "epoch": ep,
                                                   "runnable": bool(runnable), "present": bool(present)}
            elif ftype == net.F_PROBE and len(p) == 4:
                self.probes[name] = struct.unpack("<i", p)[0]
        if ftype == net.F_EVENT and len(p) == 24 and self.on_event is not None:
            self.on_event(name, net.decode_event(p)[0])

    def wait(self, cond, what: str, timeout: float = 120.0) -> float:
        t0 = time.time()
        while not cond():
            if time.time() - t0 > timeout:
                raise TimeoutError(f"timed out waiting for: {what}")
            time.sleep(0.02)
        return time.time() - t0

    # -- the reference monitor's operator commands, through the agent
    def command(self, h: q.Host, ftype: int, payload: bytes = b"") -> None:
        assert self.transport is not None
        self.transport.command(h.host_id, ftype, payload)

    def launch(self, h: q.Host, state_len: int, period_ms: int = 100, min_atl: int = 2) -> bytes:
        eid = os.urandom(16)
        policy = self.ledger.register_enclave(eid, h.enclave_measurement, min_atl=min_atl, host=h.host_id, name="app",
                                              **q.platform_of(h.arch, name=True))
        before = len(self.results)
        self.command(h, net.F_LAUNCH, struct.pack("<I", state_len) + eid + policy)
        self.wait(lambda: any(r[1] == h.name and r[2] == net.F_LAUNCH for r in self.results[before:]), "launch result")
        res = [r for r in self.results[before:] if r[1] == h.name and r[2] == net.F_LAUNCH][-1][3]
        if res != 0:
            raise RuntimeError(f"launch refused: {res}")
        self.command(h, net.F_RUN, struct.pack("<I", period_ms))
        return eid

    def status(self, h: q.Host, eid: bytes) -> dict:
        self.statuses.pop((h.name, eid), None)
        self.command(h, net.F_STATUS_REQ, eid)
        self.wait(lambda: (h.name, eid) in self.statuses, f"status from {h.name}", 20)
        return self.statuses[(h.name, eid)]

    def probe(self, h: q.Host) -> int:
        self.probes.pop(h.name, None)
        self.command(h, net.F_PROBE_REQ)
        self.wait(lambda: h.name in self.probes, f"probe result from {h.name}", 20)
        return self.probes[h.name]

    def at(self, eid: bytes) -> str:
        rec = self.ledger.enclave(eid)
        assert rec is not None
        return self.q.name_of(rec.location)

    def event_time(self, host: str, event: str) -> Optional[float]:
        return q.first_event(self.events, host, event)

    def shutdown(self) -> None:
        for h in self.hosts.values():  # for a failed test's post-mortem
            (self.workdir / f"{h.name}.console").write_text("\n".join(h.console()) + "\n")
        if self.transport is not None:
            for h in self.hosts.values():
                if h.host_id and h.alive():
                    try:
                        self.command(h, net.F_OFF)
                    except net.AgentError:
                        pass
            time.sleep(0.2)
            self.transport.close()
        for a in self.agents.values():
            a.kill()
        self.q.shutdown()
        self.ledger.close()
