"""System tests of the operator's path: QEMU hosts, each with its own
`rewire-agent` process, and an SDS that reaches them over TCP with mutual
TLS on 127.0.0.1 — the `rewire` CLI as a new user runs it from the README,
and `rewire.Orchestrator` with agents, QEMU hosts and the SDS killed at each
step of a migration. Every case ends with exactly one runnable copy and a
ledger that agrees, or a typed error with the enclave intact.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "monitor" / "linux"))
import agents as ag  # noqa: E402
import qemu_world as q  # noqa: E402

import librewire as rewire  # noqa: E402
from librewire import net  # noqa: E402

pytestmark = pytest.mark.skipif(not (q.ELF.exists() and ag.AGENT.exists()),
                                reason="monitor.elf or rewire-agent not built (make monitor agent)")
PY = sys.executable


class Proc:
    """A background process whose output lines are collected."""

    def __init__(self, cmd: List[str], env=None):
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env=env, preexec_fn=q._die_with_parent)
        self.lines: List[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for raw in self.p.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())

    def wait_line(self, pattern: str, timeout: float = 60) -> re.Match:
        t0 = time.time()
        while time.time() - t0 < timeout:
            for l in list(self.lines):
                m = re.search(pattern, l)
                if m:
                    return m
            if self.p.poll() is not None and time.time() - t0 > 1:
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}: {self.lines[-20:]}")

    def counters(self) -> List[int]:
        return [int(m.group(1)) for l in list(self.lines) for m in [re.search(r"\] counter=(\d+)", l)] if m]

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def run(*cmd: str, ok: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if ok and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def test_readme_path_two_qemu_hosts_rewire_migrate(tmp_path):
    """What the README's "Two real hosts" section says, command for command: no --sim, no relay."""
    home = tmp_path / "sds"
    d = Path(tempfile.mkdtemp(prefix="rw-"))  # short: Unix socket paths
    rw = [PY, "-m", "librewire", "--home", str(home)]
    agent, qh = str(ag.AGENT), [PY, str(ROOT / "monitor" / "linux" / "qemu_host.py")]
    procs: List[Proc] = []
    try:
        sds_public = re.search(r"public key: ([0-9a-f]{64})", run(*rw, "keygen").stdout).group(1)
        tls = str(home / "tls")
        run(agent, "cert", "ca", "--out", tls)
        run(agent, "cert", "issue", "--ca", tls, "--sds", "--out", tls)
        ports = {}
        for n in ("host-A", "host-B"):
            run(agent, "cert", "issue", "--ca", tls, "--name", n, "--out", str(d))
            out = run(*qh, "provision", n, "--dir", str(d), "--sds-public", sds_public).stdout
            manufacturer = re.search(r"manufacturer public key: ([0-9a-f]{64})", out).group(1)
            procs.append(Proc([*qh, "run", n, "--dir", str(d)]))
            ports[n] = ag.free_port()
            a = Proc([agent, "run", "--name", n, "--listen", f"127.0.0.1:{ports[n]}", "--monitor",
                      f"qemu:{d / (n + '.sock')}", "--ca", f"{tls}/ca.pem", "--cert", str(d / f"{n}.pem"),
                      "--key", str(d / f"{n}.key"), "-v"])
            procs.append(a)
            a.wait_line("listening on")
        hosts = {"host-A": procs[0], "host-B": procs[2]}
        run(*rw, "host", "root-add", manufacturer)
        sm = run(*qh, "measure").stdout.strip()
        offered = ""
        for n, atl in (("host-A", "2"), ("host-B", "3")):
            out = run(*rw, "host", "add", n, "--agent", f"127.0.0.1:{ports[n]}", "--timeout", "60").stdout
            offered = re.search(r"enclave it offers: +([0-9a-f]{64})", out).group(1)
            run(*rw, "host", "endorse", n, "--atl", atl, "--sm-measurement", sm, "--device-cert", str(d / f"{n}.devcert"))
        run(*rw, "enclave", "register", "app", "--host", "host-A", "--min-atl", "2", "--measurement", offered)
        run(*rw, "enclave", "launch", "app", "--state", "4096")
        run(*rw, "host", "run", "host-B", "100")
        deadline = time.time() + 60
        while len(hosts["host-A"].counters()) < 3:
            assert time.time() < deadline, hosts["host-A"].lines[-10:]
            time.sleep(0.05)
        r = run(*rw, "migrate", "app", "host-B", ok=False)
        assert r.returncode == 0, (r.stdout, r.stderr, procs[1].lines[-15:], procs[3].lines[-15:])
        assert "migration completed: app at host-B, epoch 1" in r.stdout, r.stdout
        for e in ("host-A: frozen", "host-B: activated", "SDS ledger: released", "SDS ledger: activated"):
            assert e in r.stdout, (e, r.stdout)
        led = json.loads(run(*rw, "ledger", "show", "--json").stdout)
        assert led["settled"] and led["enclaves"][0]["location"] == "host-B" and led["enclaves"][0]["epoch"] == 1
        deadline = time.time() + 60
        while len(hosts["host-B"].counters()) < 3:
            assert time.time() < deadline, hosts["host-B"].lines[-10:]
            time.sleep(0.05)
        a_last, b_first = hosts["host-A"].counters()[-1], hosts["host-B"].counters()[0]
        assert b_first == a_last + 1, (a_last, b_first)
        # Clear, typed errors for the usual mistakes; nothing changes.
        r = run(*rw, "migrate", "app", "host-C", ok=False)
        assert r.returncode == 1 and "no such host 'host-C'" in r.stderr, r.stderr
        r = run(*rw, "keygen", "--force", ok=False)
        assert r.returncode == 1 and "unreadable" in r.stderr, r.stderr
        r = run(*rw, "host", "add", "host-C", "--agent", f"127.0.0.1:{ports['host-A']}", ok=False)
        assert r.returncode == 1 and "is not host-C's" in r.stderr, r.stderr
        assert run(*rw, "audit").stdout.strip().endswith("the ledger agrees with the hosts")
        assert json.loads(run(*rw, "ledger", "show", "--json").stdout) == led
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(d, ignore_errors=True)


# -- faults: agents, QEMU hosts and the SDS killed at each step of a migration over the real path


@pytest.fixture
def aworld(request):
    """Two hosts behind agents; RISC-V unless a test parametrises ``aworld`` indirectly with an arch."""
    arch = getattr(request, "param", "riscv64")
    workdir = ROOT / "target" / "qemu-tests" / request.node.name
    shutil.rmtree(workdir, ignore_errors=True)
    w = ag.AgentWorld(workdir, verbose=False, timeout=1.0, arch=arch)
    try:
        for n in ("host-A", "host-B"):
            w.add_host(n)
        for h in w.hosts.values():
            w.boot(h)
        for h in w.hosts.values():
            w.register(h)
        w.connect()
        yield w
    finally:
        w.shutdown()
    if not request.session.testsfailed:
        shutil.rmtree(workdir, ignore_errors=True)


def launched(w: ag.AgentWorld) -> bytes:
    A, B = w.hosts["host-A"], w.hosts["host-B"]
    eid = w.launch(A, 64 << 10)  # 64 KiB: a stream long enough to be cut in the middle
    w.command(B, net.F_RUN, (100).to_bytes(4, "little"))
    w.wait(lambda: len(A.counters()) >= 2, "the enclave counting on A", 60)
    return eid


def settled_one_copy(w: ag.AgentWorld, eid: bytes) -> str:
    """Settle over the agents, then: exactly one runnable copy, where the ledger says it is."""
    w.connect()
    w.orchestrator().settle()
    assert w.ledger.is_settled()
    st = {n: w.status(h, eid) for n, h in w.hosts.items()}
    runnable = sorted(n for n, s in st.items() if s["runnable"])
    assert runnable == [w.at(eid)], (st, w.at(eid))
    where = w.hosts[runnable[0]]
    before = len(where.counters())
    w.wait(lambda: len(where.counters()) > before + 1, f"the enclave counting on {where.name}", 60)
    return runnable[0]


KILLS = [("agent", "host-A", "frozen"), ("agent", "host-B", "offer accepted"), ("agent", "host-A", "stream done"),
         ("agent", "host-B", "pending ready"), ("agent", "host-A", "committed"), ("qemu", "host-B", "offer accepted"),
         ("qemu", "host-A", "committed")]
# The Arm monitor (monitor/arm) under the same cuts, a subset: an agent at the source's freeze, the
# target's QEMU while it receives, the source's QEMU right after its commit.
ARM_KILLS = [("agent", "host-A", "frozen"), ("qemu", "host-B", "offer accepted"), ("qemu", "host-A", "committed")]
ARM = pytest.mark.skipif(not q.elf_of("aarch64").exists(), reason="monitor-arm/monitor.elf not built")
KILL_CASES = [pytest.param(w, v, s, "riscv64", id=f"{w}-{v}-{s.replace(' ', '-')}") for w, v, s in KILLS] + [
    pytest.param(w, v, s, "aarch64", id=f"aarch64-{w}-{v}-{s.replace(' ', '-')}", marks=ARM) for w, v, s in ARM_KILLS]


@pytest.mark.parametrize("what,victim,step,aworld", KILL_CASES, indirect=["aworld"])
def test_sigkill_during_migration_over_agents(aworld, what, victim, step):
    w = aworld
    eid = launched(w)
    h = w.hosts[victim]
    fired = threading.Event()

    def restart() -> None:
        if what == "agent":
            w.agents[victim].start()
        else:
            h.start(relay=False)  # same flash: journal, checkpoints, counter; its agent reconnects

    def on_event(host: str, event: str) -> None:
        if host == victim and event == step and not fired.is_set():
            fired.set()
            if what == "agent":
                w.agents[victim].kill()
            else:
                h.kill()
            w.later(1.0, restart)

    w.on_event = on_event
    try:
        out = w.orchestrator().migrate(eid, w.hosts["host-B"].host_id)
        assert out.state == "completed"
    except (rewire.MigrationAborted, rewire.OutcomeInDoubt):
        pass  # both are honest outcomes of a cut; settling decides
    assert fired.is_set(), f"{victim} never reported {step!r}"
    w.on_event = None
    w.wait(lambda: w.agents[victim].alive() and (what == "agent" or h.alive()), "the victim restarted", 30)
    settled_one_copy(w, eid)


def test_sds_killed_mid_migration_then_rewire_resolve(aworld):
    """The operator's `rewire migrate` is SIGKILLed after the source froze the enclave (the
    order is persisted, its outcome not yet recorded); `rewire resolve` finishes it. Two SDS
    connections see every agent report meanwhile (the CLI's and this test's)."""
    w = aworld
    eid = launched(w)
    cli = [PY, "-m", "librewire", "--home", str(w.workdir), "--tls", str(w.tlsdir)]
    w.ledger.close()  # the CLI owns the ledger file now; reopened below
    fired = threading.Event()
    p = subprocess.Popen([*cli, "migrate", "app", "host-B"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def on_event(host: str, event: str) -> None:
        if host == "host-A" and event == "frozen" and not fired.is_set():
            fired.set()
            p.kill()

    w.on_event = on_event
    p.wait(120)
    assert fired.is_set() and p.returncode == -signal.SIGKILL
    w.on_event = None
    r = run(*cli, "resolve")
    assert "nothing in doubt" in r.stdout, r.stdout
    led = json.loads(run(*cli, "ledger", "show", "--json").stdout)
    assert led["settled"] and led["migrations"][0]["state"] in ("completed", "aborted"), led
    w.ledger = rewire.Ledger(w.workdir / "ledger.sqlite", w.key)
    assert settled_one_copy(w, eid) == led["enclaves"][0]["location"]


def test_first_frame_in_the_same_segment_as_the_handshake_is_not_stranded(tmp_path):
    """A TLS 1.3 client may send its first frame in the same TCP segment as its Finished. The
    agent's handshake then reads it into rustls; the agent once went on to block on the socket
    and the frame waited for bytes that never came (a migration whose first peer bytes sat
    there timed out: about one run in six)."""
    import socket
    import ssl

    tls = tmp_path / "tls"
    ag.make_pki(tls, [])
    port = ag.free_port()
    p = subprocess.Popen([str(ag.AGENT), "run", "--name", "host-A", "--listen", f"127.0.0.1:{port}", "--monitor",
                          f"qemu:{tmp_path / 'none.sock'}", "--ca", str(tls / "ca.pem"), "--cert", str(tls / "sds.pem"),
                          "--key", str(tls / "sds.key")], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert p.stdout is not None and p.stdout.readline().startswith(b"listening on")
        ctx = net.LinkTls.from_dir(tls).context()
        ctx.check_hostname = False  # the agent here wears the SDS's certificate; names are not the point
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname="sds.rewire.invalid")
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(out.read())
                inc.write(raw.recv(65536))
        obj.write(rewire._rewire.link_encode(net.K_STATS, b""))
        raw.sendall(out.read())  # Finished and the Stats request: one write
        dec = rewire._rewire.LinkDecoder()
        frame = None
        while frame is None:
            data = raw.recv(65536)  # times out (10 s) if the request was stranded
            assert data, "the agent closed the connection"
            inc.write(data)
            try:
                dec.push(obj.read(65536))
            except ssl.SSLWantReadError:
                continue
            frame = dec.next()
        assert frame[0] == net.K_STATS and b"connections_refused" in frame[1]
    finally:
        p.kill()
        p.wait()
