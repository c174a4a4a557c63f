"""System tests: the reference monitor on QEMU, migrating a real enclave.

Run by `make test-qemu` (part of `make test`) with the venv that has the
`rewire` wheel. Each test boots its own hosts (workdir under target/) and
every wait is bounded, so a hang fails instead of stalling CI.

Every test runs the RISC-V monitor (monitor/riscv). A representative subset
also runs the Arm monitor (monitor/arm: EL3, TrustZone; parameter
``aarch64``, ~1 min in all): the migration end to end with the isolation
probe, a source killed mid-migration (before and after its commit) and
restarted, a forged order, a rolled-back journal, the hostile host's flash
commands and its out-of-region and oversize arguments, a checkpoint that does
not reach flash (either side), a dead entropy source, a checkpoint from before
a round trip, the whole-image measurement, and the adversarial-host suite of
issue 13 (four slots, checkpoints swapped between slots, timer preemption,
10 000 random SBI calls with leak scans). RISC-V only: the PMP lock on the
device root (the Arm monitor has no equivalent: monitor/README.md).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "monitor" / "linux"))
import demo  # noqa: E402
import qemu_world as q  # noqa: E402

pytestmark = pytest.mark.skipif(not q.ELF.exists(), reason="monitor.elf not built (make monitor)")
# The architectures of the representative subset (see the module's docstring).
BOTH = ["riscv64", pytest.param("aarch64", marks=pytest.mark.skipif(
    not q.elf_of("aarch64").exists(), reason="monitor-arm/monitor.elf not built (make -C monitor arm)"))]


@pytest.fixture
def world(request):
    """Two endorsed hosts; RISC-V unless the test parametrises ``world`` indirectly with an arch."""
    arch = getattr(request, "param", "riscv64")
    workdir = ROOT / "target" / "qemu-tests" / request.node.name
    shutil.rmtree(workdir, ignore_errors=True)
    w = demo.fleet(workdir, verbose=False, arch=arch)
    yield w
    w.shutdown()
    if not request.session.testsfailed:
        shutil.rmtree(workdir, ignore_errors=True)  # 64 MiB of flash images per test


@contextlib.contextmanager
def world_of(request, elf_a: Path, elf_b: Path = q.ELF):
    """host-A booted from elf_a, host-B from elf_b, both endorsed for the build they run."""
    workdir = ROOT / "target" / "qemu-tests" / request.node.name
    shutil.rmtree(workdir, ignore_errors=True)
    w = q.World(workdir)
    try:
        A, B = w.add_host("host-A", elf=elf_a), w.add_host("host-B", elf=elf_b)
        for h in (A, B):
            w.boot(h)
        for h in (A, B):
            w.endorse(h)
        yield w
    finally:
        w.shutdown()
    if not request.session.testsfailed:
        shutil.rmtree(workdir, ignore_errors=True)


def statuses(w: q.World, eid: bytes) -> dict:
    return {n: w.status(h, eid) for n, h in w.hosts.items() if h.alive()}


def runnable_at(w: q.World, eid: bytes) -> list:
    return sorted(n for n, s in statuses(w, eid).items() if s["runnable"])


def settle(w: q.World, eid: bytes, timeout: float = 90) -> str:
    """Let the SDS resolve and audit until exactly one host runs the enclave and the ledger agrees."""
    t0 = time.time()
    while True:
        end = time.time() + 1.0
        while time.time() < end:
            w.pump()
        w.resolve()
        run = runnable_at(w, eid)
        if len(run) == 1 and w.sds.is_settled() and demo.at(w, eid) == run[0]:
            return run[0]
        assert len(run) <= 1, f"forked: runnable at {run}"
        if time.time() - t0 > timeout:
            raise TimeoutError(f"not settled: runnable at {run}, ledger at {demo.at(w, eid)}")


def counts_on(w: q.World, h: q.Host, n: int, after: int = 0) -> None:
    w.wait(lambda: len([c for c in h.counters() if c > after]) >= n, f"{h.name} counting", 60)


def first_long_bstr(b: bytes, min_len: int = 100):
    """(offset, length) of the first CBOR byte string of at least min_len bytes, walking b in order."""
    i = 0
    while i < len(b):
        major, info = b[i] >> 5, b[i] & 31
        i += 1
        if info < 24:
            arg = info
        else:
            k = 1 << (info - 24)
            arg = int.from_bytes(b[i:i + k], "big")
            i += k
        if major in (2, 3):
            if major == 2 and arg >= min_len:
                return i, arg
            i += arg
    raise ValueError("no long byte string")


def migrate_and_check_it_goes_on(w, eid, A, B):
    """Migrate A -> B: the ledger moves to B, B counts on from where A
    stopped with its state intact, and the sealed note opens there. Returns
    A's last counter."""
    w.run(B, 100)
    demo.migrate(w, eid, A, B)
    w.wait(lambda: demo.at(w, eid) == "host-B", "ledger at B", 60)
    counts_on(w, B, 3)
    last_a, first_b = A.counters()[-1], B.counters()[0]
    assert first_b == last_a + 1, (last_a, first_b)
    assert all(l.endswith("intact") for l in B.console() if "] counter=" in l)
    assert any("sealed note opens" in l for l in B.console())
    return last_a


@pytest.mark.parametrize("world", BOTH, indirect=True)
def test_migration_end_to_end(world):
    w = world
    A, B = w.hosts["host-A"], w.hosts["host-B"]
    eid = demo.launch(w, A, 1024)
    counts_on(w, A, 3)
    assert w.probe(A) != 0, "the host read the enclave's memory"
    # The console (UART, a pipe read by its own thread) may lag the frame that carried the result.
    if w.arch == "riscv64":
        w.wait(lambda: any("PMP: host load from 0x0000000085020000 denied" in l for l in A.console()),
               "the monitor's PMP log line", 10)
    else:  # a secure-only address: the NS access aborts (QEMU takes it at the host's own EL1 vectors)
        w.wait(lambda: any("[host] ...denied by TrustZone" in l for l in A.console()), "the host's abort", 10)
    last_a = migrate_and_check_it_goes_on(w, eid, A, B)
    w.run(A, 50)
    w.wait(lambda: any(r[1] == "host-A" and r[2] == q.F_RUN and r[3] == -409 for r in w.results),
           "A refuses the old copy", 30)
    assert runnable_at(w, eid) == ["host-B"]
    st = w.status(A, eid)
    assert st["state"] == "migrated" and not st["present"]
    assert len(A.counters()) == last_a  # A never stepped again


@pytest.mark.parametrize("world", BOTH, indirect=True)
@pytest.mark.parametrize("kill_on", [("host-B", "pending ready"), ("host-A", "committed")])
def test_source_killed_mid_migration_and_restarted(world, kill_on):
    """QEMU A is SIGKILLed after its state reached B (before or after its commit), then restarted
    from its flash: the protocol resolves with exactly one runnable copy, whose state is intact."""
    w = world
    A, B = w.hosts["host-A"], w.hosts["host-B"]
    eid = demo.launch(w, A, 1024)
    w.run(B, 100)
    counts_on(w, A, 4)
    killed = []

    def on_event(h: q.Host, e: str) -> None:
        if (h.name, e) == kill_on and not killed:
            A.kill()
            killed.append(time.time())

    w.on_event = on_event
    demo.migrate(w, eid, A, B)
    w.wait(lambda: bool(killed), f"{kill_on[1]} at {kill_on[0]}", 60)
    last_a = A.counters()[-1]
    time.sleep(0.5)
    w.boot(A)
    w.run(A, 100)
    where = settle(w, eid)
    expected = "host-A" if kill_on[1] == "pending ready" else "host-B"
    assert where == expected
    h = w.hosts[where]
    counts_on(w, h, 2, after=last_a)
    nxt = [c for c in h.counters() if c > last_a][0]
    assert nxt == last_a + 1, (last_a, nxt)
    assert all(l.endswith("intact") for l in h.console() if "] counter=" in l)
    if expected == "host-A":
        assert any("enclave restored from its checkpoint" in l for l in A.console())
        assert statuses(w, eid)["host-B"]["present"] is False


@pytest.mark.parametrize("world", BOTH, indirect=True)
def test_order_with_bad_signature_is_refused_and_enclave_keeps_running(world):
    w = world
    A, B = w.hosts["host-A"], w.hosts["host-B"]
    eid = demo.launch(w, A, 1024)
    counts_on(w, A, 3)

    def flip_signature(h: q.Host, msg: bytes) -> bytes:
        # The order's first byte string is the SDS-signed request (COSE_Sign1), whose last
        # field is the Ed25519 signature: flip the signature's last bit.
        off, n = first_long_bstr(msg)
        end = off + n - 1
        return msg[:end] + bytes([msg[end] ^ 1]) + msg[end + 1:]

    w.sds_tamper = flip_signature
    before = len(w.results)
    demo.migrate(w, eid, A, B)
    w.wait(lambda: any(r[2] == q.F_SDS for r in w.results[before:]), "A's answer", 30)
    res = [r for r in w.results[before:] if r[2] == q.F_SDS][0]
    assert res[1] == "host-A" and res[3] == -200  # REWIRE_ERR_BAD_SIGNATURE
    n = len(A.counters())
    counts_on(w, A, n + 3)
    st = w.status(A, eid)
    assert st["state"] == "running" and st["runnable"] and st["epoch"] == 0
    assert w.status(B, eid)["present"] is False
    assert demo.at(w, eid) == "host-A"


@pytest.mark.parametrize("world", BOTH, indirect=True)
def test_rolled_back_journal_is_refused(world):
    """The host restores an older copy of its storage (journal slots included) after a migration:
    the monitor's counter, out of the host's reach, exposes it and librewire refuses to start."""
    w = world
    A, B = w.hosts["host-A"], w.hosts["host-B"]
    eid = demo.launch(w, A, 1024)
    counts_on(w, A, 2)
    old = A.flash.read_bytes()[: 16 << 20]  # the untrusted storage (journal, checkpoints), before the migration
    demo.migrate(w, eid, A, B)
    w.wait(lambda: demo.at(w, eid) == "host-B", "ledger at B", 60)
    A.kill()
    with open(A.flash, "r+b") as f:
        f.write(old)
    A.start()
    assert A.proc is not None
    assert A.wait_exit(timeout=30) != 0  # the monitor powers off: it will not run on a rolled-back journal
    w.wait(lambda: "[monitor] librewire refused to start: journal rolled back" in A.console(),
           "the monitor refusing its rolled-back journal", 10)
    assert settle(w, eid) == "host-B"


CKPT_SLOT0, CKPT_SLOT1, CKPT_SLOT_SIZE = q.ckpt_slot(0, 0), q.ckpt_slot(0, 1), q.CKPT_SLOT_SIZE  # slot 0's pair


@pytest.mark.parametrize("world", BOTH, indirect=True)
def test_checkpoint_from_before_a_round_trip_is_refused(world):
    """State continuity (protocol.md §8.5): A -> B -> A, then the host puts A's launch checkpoint,
    from before the enclave left, into both checkpoint slots and reboots A. librewire opens only
    the checkpoint A committed last, so the enclave's old state never runs again (with a checkpoint
    sealed by the enclave's key alone, A would resume it from before the round trip)."""
    w = world
    A, B = w.hosts["host-A"], w.hosts["host-B"]
    eid = demo.launch(w, A, 1024)
    counts_on(w, A, 2)
    launch_ckpt = A.flash.read_bytes()[CKPT_SLOT0:CKPT_SLOT0 + CKPT_SLOT_SIZE]
    migrate_and_check_it_goes_on(w, eid, A, B)
    w.run(A, 100)
    demo.migrate(w, eid, B, A)
    w.wait(lambda: demo.at(w, eid) == "host-A", "ledger back at A", 60)
    last = B.counters()[-1]
    counts_on(w, A, 2, after=last)
    A.kill()
    with open(A.flash, "r+b") as f:
        for off in (CKPT_SLOT0, CKPT_SLOT1):
            f.seek(off)
            f.write(launch_ckpt)
    w.boot(A)
    w.wait(lambda: "[monitor] no checkpoint to restore in slot 0" in A.console(), "A refusing both slots", 30)
    refused = [l for l in A.console() if "checkpoint slot refused" in l]
    assert len(refused) == 2 and all("stale checkpoint" in l for l in refused), refused
    assert not any("enclave restored from its checkpoint" in l for l in A.console())
    st = w.status(A, eid)
    assert st["state"] == "running" and st["epoch"] == 2 and st["present"] is False, st


@pytest.mark.parametrize("arch", BOTH)
def test_host_flash_command_never_runs_the_host_in_m_mode(request, arch):
    """Issue 13: the untrusted host writes a CFI command to its own half of pflash before every
    call (monitor-hostile.elf), every command the device knows in turn: read status, read ID, CFI
    query, clear status, and the first halves of lock, erase, write-to-buffer, program and
    suspend. QEMU's pflash1 has one command state for both halves, so an M-mode read of the root
    of trust sees status, ID or query words, and the monitor's first write completes the host's
    command. The monitor must
    keep serving correctly (the enclave counts on, intact, under its host's name, and migrates)
    and the host must never run in M-mode: its canary, a load from the monitor's memory right
    after H_RUN returns, is denied by PMP."""
    workdir = ROOT / "target" / "qemu-tests" / request.node.name
    shutil.rmtree(workdir, ignore_errors=True)
    w = q.World(workdir)
    try:
        A = w.add_host("host-A", elf=q.elf_of(arch, "hostile"))
        B = w.add_host("host-B", elf=q.elf_of(arch))
        for h in (A, B):
            w.boot(h)
        for h in (A, B):
            w.endorse(h)
        eid = demo.launch(w, A, 1024)
        counts_on(w, A, 3)
        before = len(A.counters())
        assert w.probe(A) != 0, "the host read the enclave's memory"  # also arms the attack
        w.wait(lambda: not A.alive() or len(A.counters()) >= before + 5
               or any("MONITOR'S MEMORY" in l or "trap" in l for l in A.console()),
               "host-A counting on (or failing) under the attack", 60)
        time.sleep(0.5)  # the console may lag
        con = A.console()
        assert not [l for l in con if "unexpected trap" in l], "\n".join(con[-12:])
        assert not [l for l in con if "MONITOR'S MEMORY" in l], "the host ran in M-mode:\n" + "\n".join(con[-12:])
        assert not [l for l in con if "trap in M-mode" in l], "the monitor halted:\n" + "\n".join(con[-12:])
        assert A.alive()
        assert any("hostile: putting pflash into a command mode before every call" in l for l in con)
        w.wait(lambda: sum("hostile: the monitor's memory is out of reach (" in l for l in A.console()) == 3,
               "the host's canary, denied in U-mode", 10)
        steps = [l for l in con if "] counter=" in l]
        assert len(A.counters()) >= before + 5
        assert all(l.startswith("[enclave@host-A] ") and l.endswith("intact") for l in steps), steps[-3:]
        st = w.status(A, eid)
        assert st["state"] == "running" and st["runnable"]
        # Still under attack: the migration checkpoints, writes the journal and bumps the counter.
        migrate_and_check_it_goes_on(w, eid, A, B)
        assert not [l for l in A.console() if "trap" in l or "MONITOR'S MEMORY" in l]
        assert w.status(A, eid)["state"] == "migrated"
    finally:
        w.shutdown()
    if not request.session.testsfailed:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.parametrize("arch", BOTH)
def test_oversize_and_out_of_region_arguments_are_refused(request, arch):
    """Issue 13, finding 3: the monitor copies every host argument into its own memory before
    librewire sees it. The hostile host (host.c, F_ABUSE_REQ) passes lengths over the copy's cap
    (typed MON_ERR_TOO_LARGE, before librewire is called) and buffers in the monitor's or the
    enclave's memory, across the end of its region or with a wrapping length (MON_ERR_BAD_POINTER).
    The enclave counts on, intact, and still migrates through the copied buffers. The host's
    registers (every general register and, on Arm, every SIMD register) come back from a call
    exactly as it set them: the world switch restores them all."""
    too_large, bad = -q.MON_ERR_TOO_LARGE, -q.MON_ERR_BAD_POINTER
    with world_of(request, q.elf_of(arch, "hostile"), q.elf_of(arch)) as w:
        A, B = w.hosts["host-A"], w.hosts["host-B"]
        eid = demo.launch(w, A, 1024)
        counts_on(w, A, 3)
        got = w.abuse(A)
        # The last entry: how many of the host's registers (general and, on Arm, SIMD) came back
        # changed from a call into the monitor (user_arch.h): none, so nothing the monitor or
        # librewire computed is left in them.
        # Then DESTROY of the enclave in slot 0 (only the SDS ends an enclave) and a call in an
        # extension the monitor does not have (SBI's NOT_SUPPORTED, -2).
        assert got == [too_large] * 3 + [bad] * 9 + [-q.KS_ERR_NOT_DESTROYABLE, q.SBI_ERR_NOT_SUPPORTED, 0], got
        n = len(A.counters())
        counts_on(w, A, n + 3)
        assert all(l.endswith("intact") for l in A.console() if "] counter=" in l)
        assert not [l for l in A.console() if "trap" in l]
        st = w.status(A, eid)
        assert st["state"] == "running" and st["runnable"]
        migrate_and_check_it_goes_on(w, eid, A, B)


@pytest.mark.parametrize("arch", BOTH)
@pytest.mark.parametrize("faulty", ["host-A", "host-B"])
def test_checkpoint_failure_withholds_the_migration(request, faulty, arch):
    """Issue 13, finding 4: a checkpoint the migration depends on does not reach flash
    (monitor-faulty.elf: every checkpoint after launch fails). The monitor must not let the
    migration go on without it: at the source (host-A) it refuses the order once the FROZEN
    checkpoint fails; at the target (host-B) it withholds READY once the PENDING checkpoint fails.
    Either way the ecall answers MON_ERR_NOT_DURABLE, the enclave is never activated at B, and it
    runs on at A from where it stopped, state intact, with the ledger agreeing."""
    good, bad = q.elf_of(arch), q.elf_of(arch, "faulty")
    elf_a, elf_b = (bad, good) if faulty == "host-A" else (good, bad)
    with world_of(request, elf_a, elf_b) as w:
        A, B = w.hosts["host-A"], w.hosts["host-B"]
        eid = demo.launch(w, A, 1024)
        w.run(B, 100)
        counts_on(w, A, 3)
        before = len(w.results)
        demo.migrate(w, eid, A, B)
        cmd = q.F_SDS if faulty == "host-A" else q.F_PEER
        w.wait(lambda: any(r[1] == faulty and r[2] == cmd for r in w.results[before:]), f"{faulty}'s answer", 60)
        res = [r for r in w.results[before:] if r[1] == faulty and r[2] == cmd][0]
        assert res[3] == -q.MON_ERR_NOT_DURABLE, res
        w.wait(lambda: any("CHECKPOINT FAILED" in l for l in w.hosts[faulty].console()), "the failure logged", 10)
        last_a = A.counters()[-1]
        # The source aborts (at once when its own checkpoint failed, after its inactivity
        # timeout when READY never comes) and resumes the enclave; the SDS settles at A.
        assert settle(w, eid, timeout=120) == "host-A"
        counts_on(w, A, 3, after=last_a)
        nxt = [c for c in A.counters() if c > last_a][0]
        assert nxt == last_a + 1, (last_a, nxt)
        assert all(l.endswith("intact") for l in A.console() if "] counter=" in l)
        assert w.event_time("host-B", "activated") is None
        assert not B.counters(), "the enclave ran at B"
        st = w.status(A, eid)
        assert st["state"] == "running" and st["runnable"] and st["epoch"] == 1
        w.wait(lambda: not w.status(B, eid)["present"], "B without a copy", 60, resolve_every=1.0)


@pytest.mark.parametrize("arch", BOTH)
def test_dead_entropy_source_fails_closed(request, arch):
    """Issue 13, finding 5: the Zkr seed CSR reads DEAD (monitor-deadseed.elf, once the enclave is
    launched). The monitor must not spin: every random request fails with a typed result, so
    librewire refuses what needs randomness (here the migration order, before anything is frozen
    or journaled) while the enclave, which needs none to run, counts on where it is."""
    with world_of(request, q.elf_of(arch, "deadseed"), q.elf_of(arch)) as w:
        A, B = w.hosts["host-A"], w.hosts["host-B"]
        eid = demo.launch(w, A, 1024)
        w.run(B, 100)
        counts_on(w, A, 3)
        assert any("entropy source DEAD" in l for l in A.console())
        before = len(w.results)
        demo.migrate(w, eid, A, B)
        w.wait(lambda: any(r[1] == "host-A" and r[2] == q.F_SDS for r in w.results[before:]), "A's answer", 30)
        res = [r for r in w.results[before:] if r[1] == "host-A" and r[2] == q.F_SDS][0]
        assert res[3] < 0, res  # a typed refusal (librewire reports the TLS channel it could not open)
        n = len(A.counters())
        counts_on(w, A, n + 3)
        assert all(l.endswith("intact") for l in A.console() if "] counter=" in l)
        st = w.status(A, eid)
        assert st["state"] == "running" and st["runnable"] and st["epoch"] == 0
        assert w.status(B, eid)["present"] is False
        assert demo.at(w, eid) == "host-A"


def test_the_sm_cannot_read_the_device_root_after_its_boot_stage(request):
    """Issue 12, item 1: the boot stage measures the whole SM image, hands the SM {SM secret,
    certificate, device public key} (rewire_boot_handoff) and locks the device root behind a
    locked PMP entry, which binds M-mode too. monitor-peekroot.elf is the SM reaching for the
    root after the handoff: the load traps in M-mode at the root's address and the host halts
    before librewire starts or the host program runs; no byte of the root is printed. (Every
    other test boots through the same boot stage: their migrations show the handoff works and
    the SDS endorses the whole-image measurement the boot stage takes.)"""
    workdir = ROOT / "target" / "qemu-tests" / request.node.name
    shutil.rmtree(workdir, ignore_errors=True)
    w = q.World(workdir)
    try:
        A = w.add_host("host-A", elf=q.PEEKROOT_ELF)
        A.start()
        w.wait(lambda: any("trap in M-mode" in l for l in A.console()), "the M-mode trap", 60)
        w.wait(lambda: not A.alive(), "the host halting", 30)
        con = A.console()
        assert any("peeking at the device root" in l for l in con), con
        trap = [l for l in con if "trap in M-mode" in l]
        assert "(cause 5," in trap[0] and f"mtval 0x{q.ROOT_ADDRESS:016x}" in trap[0].lower(), trap
        assert not any("read the device root after the boot stage" in l for l in con), con
        assert not any("running the host program" in l for l in con), con
        assert not A.hello.is_set()
    finally:
        w.shutdown()
    if not request.session.testsfailed:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.parametrize("arch", BOTH)
def test_a_build_differing_only_in_read_only_data_is_another_build(request, tmp_path, arch):
    """Issue 13, finding 6: the SM measurement covers the whole image, not only .text. A copy of
    monitor.elf with one byte of .rodata changed (a console string; code identical) boots, and
    its boot stage measures another build: the SDS, knowing only the real build, refuses to
    endorse it (SmNotEndorsed), so it can never take part in a migration. Under the old
    text-only measurement both builds had the same measurement."""
    import hashlib

    elf = q.elf_of(arch).read_bytes()
    at = elf.index(b"librewire panicked")
    patched = tmp_path / "monitor-rodata.elf"
    patched.write_bytes(elf[:at] + b"L" + elf[at + 1:])

    def text_of(b: bytes) -> bytes:  # the old measurement's input: .text only
        import struct
        shoff, = struct.unpack_from("<Q", b, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", b, 0x3A)
        secs = [struct.unpack_from("<IIQQQQ", b, shoff + i * shentsize) for i in range(shnum)]
        stroff = secs[shstrndx][4]
        name, _, _, _, off, size = next(s for s in secs if b[stroff + s[0]:stroff + s[0] + 6] == b".text\0")
        return b[off:off + size]

    assert hashlib.sha256(text_of(elf)).digest() == hashlib.sha256(text_of(patched.read_bytes())).digest()
    real, other = q.sm_measurement_of(q.elf_of(arch)), q.sm_measurement_of(patched)
    assert real != other
    workdir = ROOT / "target" / "qemu-tests" / request.node.name
    shutil.rmtree(workdir, ignore_errors=True)
    w = q.World(workdir)
    try:
        A = w.add_host("host-A", elf=patched)
        w.boot(A)
        assert A.sm_measurement == other  # what its boot stage measured, reported in H_INFO
        assert w.sds.certify_device(w.device_certificates["host-A"]) == A.host_id
        now = int(time.time())
        with pytest.raises(q.rewire.AuthorisationError) as e:
            w.sds.endorse_host(A.certificate, [real], 2, now - 60, now + 3600, **q.platform_of(arch))
        assert e.value.name == "SmNotEndorsed"
        assert w.sds.host(A.host_id) is None
    finally:
        w.shutdown()
    if not request.session.testsfailed:
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------- slots, preemption, the hostile host
def launch_result(w: q.World, h: q.Host, state_len: int) -> tuple:
    """Launch one more enclave on h: (its id, the monitor's result: 0 or -error)."""
    eid = os.urandom(16)
    policy = w.sds.register_enclave(eid, h.enclave_measurement, 2, h.host_id, **q.platform_of(h.arch))
    before = len(w.results)
    w.launch(h, eid, policy, state_len)
    w.wait(lambda: any(r[1] == h.name and r[2] == q.F_LAUNCH for r in w.results[before:]), "launch result")
    return eid, [r for r in w.results[before:] if r[1] == h.name and r[2] == q.F_LAUNCH][-1][3]


def counts_in(w: q.World, h: q.Host, slot: int, n: int, after: int = 0, timeout: float = 60) -> None:
    w.wait(lambda: len([c for c in h.counters(slot) if c > after]) >= n, f"{h.name} slot {slot} counting", timeout)


def intact(h: q.Host) -> bool:
    steps = [l for l in h.console() if "] counter=" in l]
    return bool(steps) and all(l.endswith("intact") for l in steps)


@pytest.mark.parametrize("arch", BOTH)
def test_four_slots_a_fifth_refused_one_migrates_and_its_slot_is_reused(request, arch):
    """Issue 13: at least four enclave slots, each with its own memory, sealed data and checkpoint
    pair. A fifth launch is refused (Keystone's NO_FREE_RESOURCE) and loses nothing; one enclave
    migrates out of slot 2 while the other three count on; it arrives in B's free slot and counts
    on from where it stopped (the code is position-independent: same bytes, same measurement, in
    any slot); A's slot 2 takes a new enclave."""
    with world_of(request, q.elf_of(arch), q.elf_of(arch)) as w:
        A, B = w.hosts["host-A"], w.hosts["host-B"]
        eids = [demo.launch(w, A, 1024 + 8 * i) for i in range(q.ENC_SLOTS)]
        for i in range(q.ENC_SLOTS):
            counts_in(w, A, i, 2)
        assert sorted(w.status(A, e)["slot"] for e in eids) == list(range(q.ENC_SLOTS))
        extra, res = launch_result(w, A, 1024)
        assert res == -q.KS_ERR_NO_FREE_RESOURCE, res
        assert w.status(A, extra)["present"] is False
        moving = next(e for e in eids if w.status(A, e)["slot"] == 2)
        last = A.counters(2)[-1]
        w.run(B, 100)
        demo.migrate(w, moving, A, B)
        w.wait(lambda: demo.at(w, moving) == "host-B", "ledger at B", 60)
        counts_in(w, B, 0, 2)
        assert B.counters(0)[0] == last + 1 or B.counters(0)[0] > last, (last, B.counters(0))
        st = w.status(B, moving)
        assert st["runnable"] and st["slot"] == 0
        assert w.status(A, moving)["state"] == "migrated" and w.status(A, moving)["present"] is False
        for i in (0, 1, 3):
            counts_in(w, A, i, 2, after=A.counters(i)[-1])
        assert intact(A) and intact(B)
        assert any("sealed note opens" in l for l in B.console())
        newer, res = launch_result(w, A, 1024)
        assert res == 0 and w.status(A, newer)["slot"] == 2
        for e in eids:
            if e != moving:
                assert runnable_at(w, e) == ["host-A"]
        assert runnable_at(w, moving) == ["host-B"]


def two_enclaves_then_power_cut(w: q.World) -> tuple:
    """host-A with an enclave counting in slot 0 and another in slot 1, then killed: (A, ids)."""
    A = w.hosts["host-A"]
    e0, e1 = demo.launch(w, A, 1024), demo.launch(w, A, 2048)
    counts_in(w, A, 0, 2)
    counts_in(w, A, 1, 2)
    A.kill()
    return A, e0, e1


@pytest.mark.parametrize("arch", BOTH)
def test_checkpoints_swapped_between_slots_restore_and_a_copied_one_is_refused(request, arch):
    """Issue 13: the host swaps two enclaves' checkpoint pairs on flash, then copies one pair over
    the other. A committed blob restores wherever it lies (the slot is only a place), each enclave
    once, state intact; a second copy of an enclave already restored is refused, so nothing
    forks. The enclave whose checkpoints the host destroyed is not runnable anywhere (the host can
    always deny service to its own enclaves; it cannot make two of one)."""
    with world_of(request, q.elf_of(arch), q.elf_of(arch)) as w:
        A, e0, e1 = two_enclaves_then_power_cut(w)
        pair = 2 * q.CKPT_SLOT_SIZE
        img = bytearray(A.flash.read_bytes())
        p0, p1 = q.ckpt_slot(0, 0), q.ckpt_slot(1, 0)
        img[p0:p0 + pair], img[p1:p1 + pair] = img[p1:p1 + pair], img[p0:p0 + pair]
        A.flash.write_bytes(bytes(img))
        w.boot(A)
        w.run(A, 100)
        assert w.status(A, e0)["slot"] == 1 and w.status(A, e1)["slot"] == 0
        n0, n1 = len(A.counters(0)), len(A.counters(1))
        counts_in(w, A, 0, n0 + 2)
        counts_in(w, A, 1, n1 + 2)
        assert intact(A)
        assert runnable_at(w, e0) == ["host-A"] and runnable_at(w, e1) == ["host-A"]
        A.kill()
        n1 = len(A.counters(1))
        img = bytearray(A.flash.read_bytes())
        img[p1:p1 + pair] = img[p0:p0 + pair]  # e1's pair (now in slot 0's place) over e0's
        A.flash.write_bytes(bytes(img))
        w.boot(A)
        w.wait(lambda: "[monitor] checkpoint refused: a second copy of an enclave restored already" in A.console(),
               "the copied checkpoint refused", 30)
        w.run(A, 100)
        assert w.status(A, e1)["present"] and w.status(A, e1)["slot"] == 0
        assert not w.status(A, e0)["present"]
        assert runnable_at(w, e1) == ["host-A"] and runnable_at(w, e0) == []
        counts_in(w, A, 0, len(A.counters(0)) + 2)
        assert len(A.counters(1)) == n1  # slot 1 stays empty
        assert intact(A)


@pytest.mark.parametrize("arch", BOTH)
def test_the_timer_preempts_a_spinning_enclave_and_a_step_resumes_exactly(request, arch):
    """Issue 13: timer preemption (RISC-V: the CLINT's machine timer; Arm: the secure physical
    timer as FIQ to EL3). monitor-hostile.elf's test enclave spins for ever after its first step
    when its state length is 1 mod 4, and spends many time slices on each step when it is 2 mod 4,
    with its thread register set (a resume must keep it, and every other register) and a stop for
    its host halfway (Keystone's STOP_ENCLAVE as an edge call: RESUME continues after it). The monitor's timer hands the CPU back to the host (Keystone's INTERRUPTED), the
    host resumes each step (RESUME), the long steps end with their state intact, a third enclave
    counts on beside them, the host keeps answering, and that third enclave migrates. An order
    for the spinning one is refused (a preempted enclave does not pause: its registers are not
    what migrates) and it stays where it was, runnable: nothing lost."""
    with world_of(request, q.elf_of(arch, "hostile"), q.elf_of(arch)) as w:
        A, B = w.hosts["host-A"], w.hosts["host-B"]
        spinning = demo.launch(w, A, 1025)
        long_steps = demo.launch(w, A, 1026)
        normal = demo.launch(w, A, 1024)
        for i in (0, 1):
            w.wait(lambda i=i: f"[host] slot {i}: the monitor's timer preempted a step; resuming it" in A.console(),
                   f"slot {i} preempted", 60)
        w.wait(lambda: "[host] slot 1: the enclave stopped for the host (an edge call); resuming it" in A.console(),
               "slot 1's edge call (Keystone's STOP_ENCLAVE)", 60)
        counts_in(w, A, 1, 3, timeout=120)  # each of these steps spanned many time slices
        counts_in(w, A, 2, 5)
        assert A.counters(0) == [1], A.counters(0)  # its first step, then spinning for ever
        assert intact(A)
        for e in (spinning, long_steps, normal):
            st = w.status(A, e)
            assert st["state"] == "running" and st["runnable"], st
        w.run(B, 100)
        demo.migrate(w, normal, A, B)
        w.wait(lambda: demo.at(w, normal) == "host-B", "ledger at B", 60)
        counts_in(w, B, 0, 2)
        before = len(w.events)
        demo.migrate(w, spinning, A, B)
        w.wait(lambda: any(e[1] == "host-A" and e[2] == "aborted" for e in w.events[before:]),
               "the order for the spinning enclave aborted at A", 60)
        try:
            assert settle(w, spinning) == "host-A"
        except Exception:
            print("\n".join(A.console()[-60:]))
            print(w.status(A, spinning))
            raise
        assert w.status(A, spinning)["runnable"] and not w.status(B, spinning)["present"]
        assert settle(w, normal) == "host-B"
        counts_in(w, A, 1, len(A.counters(1)) + 1, timeout=120)
        assert intact(A) and intact(B)
        assert not [l for l in A.console() if "THREAD REGISTER LOST" in l or "STOP FAILED" in l]


CALLS = 10000  # the random SBI calls of the hostile host (monitor/README.md reports the outcome)
MARKER_NOTE = b"sealed note: born on host-"  # the enclave's sealed plaintext (enclave.c)
MARKER_STATE = bytes((i * 131 + 7) & 0xff for i in range(100, 132))  # ballast bytes it never rewrites early


@pytest.mark.parametrize("arch", BOTH)
def test_random_sbi_calls_then_no_secret_anywhere_the_host_can_read(request, arch):
    """Issue 13, the adversarial-host suite: the hostile host makes 10 000 random SBI calls (seeded:
    random extensions, functions and arguments from a pool of edges: pointers into the monitor,
    the enclave slots, across its region's end, misaligned, wrapping lengths, random bytes in its
    buffers), each after a CFI command to the shared flash. Every call gets an answer, the monitor never halts, the host never runs in M-mode,
    the enclave counts on intact and migrates. Then the host searches every byte it can read,
    its memory and its flash, for the enclave's sealed plaintext and a run of its state, and tries
    to load from the monitor and every slot: nothing, before and after the migration (both hosts
    hostile); the flash images on disk hold neither in clear."""
    hostile = q.elf_of(arch, "hostile")
    with world_of(request, hostile, hostile) as w:
        A, B = w.hosts["host-A"], w.hosts["host-B"]
        eid = demo.launch(w, A, 1024)
        counts_on(w, A, 3)
        assert w.probe(A) != 0  # also arms the flash commands: one before each of the calls below
        got = w.fuzz(A, seed=13, calls=CALLS)
        assert got["calls"] == CALLS, got
        for k in ("ok", "not_supported", "not_accessible", "too_large", "invalid_id", "other"):
            assert got[k] > 0, got
        assert sum(got[k] for k in got if k != "calls") == CALLS, got
        n = len(A.counters())
        counts_on(w, A, n + 3)
        con = A.console()
        assert not [l for l in con if "trap" in l or "MONITOR'S MEMORY" in l or "panicked" in l], con[-12:]
        assert intact(A) and A.alive()
        st = w.status(A, eid)
        assert st["state"] == "running" and st["runnable"]
        for h in (A, B):
            for m in (MARKER_NOTE, MARKER_STATE):
                assert w.scan(h, m) == {"memory": 0, "flash": 0, "reads": 0}, (h.name, m)
        # A control: the host's search does find what it can read (its own console strings).
        assert w.scan(A, b"[host] ")["memory"] > 0
        migrate_and_check_it_goes_on(w, eid, A, B)
        for h in (A, B):
            for m in (MARKER_NOTE, MARKER_STATE):
                assert w.scan(h, m) == {"memory": 0, "flash": 0, "reads": 0}, (h.name, m)
            storage = h.flash.read_bytes()[: 16 << 20]
            assert MARKER_NOTE not in storage and MARKER_STATE not in storage
        assert settle(w, eid) == "host-B"


@pytest.mark.parametrize("arch", BOTH)
def test_an_enclave_cannot_read_host_fp_registers_or_halt_the_monitor(request, arch):
    """Review findings on the slots change. The hostile host turns its FP unit on and leaves a
    marker in f5/d5; a test enclave (state length 3 mod 8) reads that register, another (7 mod
    8) runs an instruction the monitor's mode traps straight to it (Arm: PACGA at S-EL0, which
    SCR_EL3.API traps to EL3 without the S-EL1 vector; RISC-V: csrr mstatus). Each must fault
    only itself: the FP unit is off while an enclave runs (RISC-V mstatus.FS, Arm CPACR), and a
    trap from S-EL0 to EL3 is the enclave's fault, not the monitor's (it used to halt the
    machine). A third enclave counts on, and the monitor never halts."""
    with world_of(request, q.elf_of(arch, "hostile"), q.elf_of(arch)) as w:
        A = w.hosts["host-A"]
        normal = demo.launch(w, A, 1024)
        assert w.probe(A) != 0  # arms the host: FP marker set (and the flash commands)
        fp = demo.launch(w, A, 1027)
        forbidden = demo.launch(w, A, 1031)
        for i in (1, 2):
            w.wait(lambda i=i: any(l.startswith("[host] the monitor refuses to run the enclave in slot %d" % i)
                                   for l in A.console()), f"slot {i}'s enclave faulting", 60)
        counts_in(w, A, 0, len(A.counters(0)) + 3)
        con = A.console()
        assert not [l for l in con if "FP READ" in l or "FORBIDDEN INSTRUCTION RAN" in l], con[-20:]
        assert not [l for l in con if "trap in " in l or "halting" in l], con[-20:]
        assert len([l for l in con if "unexpected trap" in l and "in the enclave" in l]) >= 2
        for i in (1, 2):  # each step ends with a typed error, NOT_ACCESSIBLE (a fault in the enclave)
            assert f"[host] the monitor refuses to run the enclave in slot {i}: {-q.MON_ERR_BAD_POINTER}" in con
        assert A.alive() and intact(A)
        for e in (normal, fp, forbidden):  # each still in its slot, runnable where it was
            st = w.status(A, e)
            assert st["present"] and st["runnable"] and st["state"] == "running", st
        assert runnable_at(w, normal) == ["host-A"]


@pytest.mark.parametrize("arch", BOTH)
@pytest.mark.parametrize("into", [1, 0])
def test_a_copy_of_another_slots_blob_does_not_hide_the_slots_own(request, arch, into):
    """Review findings: the host writes a copy of one enclave's committed checkpoint into the
    other slot's spare copy, with a higher sequence number: X's (slot 0) into slot 1, or Y's
    (slot 1) into slot 0. At boot the monitor opens every copy first and then gives each slot
    at most one, each enclave at most once, restoring as many as it can: both come back, each in
    its own slot (before the fix, the copy hid the slot's own blob, and the monitor later wrote
    over it)."""
    with world_of(request, q.elf_of(arch), q.elf_of(arch)) as w:
        A, x, y = two_enclaves_then_power_cut(w)
        img = bytearray(A.flash.read_bytes())
        # launch checkpoints go to copy 0 (sequence 1); the spare copy 1 is empty
        src, dst = q.ckpt_slot(1 - into, 0), q.ckpt_slot(into, 1)
        assert img[dst:dst + 4] == b"\xff" * 4
        img[dst:dst + q.CKPT_SLOT_SIZE] = img[src:src + q.CKPT_SLOT_SIZE]
        img[dst + 4:dst + 8] = (7).to_bytes(4, "little")  # newer than Y's copy
        A.flash.write_bytes(bytes(img))
        w.boot(A)
        w.wait(lambda: "[monitor] checkpoint refused: a second copy of an enclave restored already" in A.console(),
               "the copy refused", 30)
        w.run(A, 100)
        assert w.status(A, x)["slot"] == 0 and w.status(A, y)["slot"] == 1
        counts_in(w, A, 1, len(A.counters(1)) + 2)
        assert runnable_at(w, x) == ["host-A"] and runnable_at(w, y) == ["host-A"]
        assert intact(A)


@pytest.mark.parametrize("arch", BOTH)
def test_a_relabelled_checkpoint_and_a_replayed_journal_region_are_refused(request, arch):
    """Issue 13: the host relabels Y's checkpoint as X's (the enclave id in clear in front of the
    blob), and, on another boot, puts back only the journal region from before a launch. The
    relabelled blob does not open as X's (librewire, not the label, decides; X restores once from
    its own), and the replayed journal is caught by the monitor's counter: librewire refuses to
    start, and nothing runs twice."""
    with world_of(request, q.elf_of(arch), q.elf_of(arch)) as w:
        A = w.hosts["host-A"]
        x = demo.launch(w, A, 1024)
        counts_in(w, A, 0, 2)
        journal_before = A.flash.read_bytes()[q.JOURNAL_SLOT0:q.JOURNAL_SLOT0 + 2 * q.JOURNAL_SLOT_SIZE]
        y = demo.launch(w, A, 2048)
        counts_in(w, A, 1, 2)
        A.kill()
        img = bytearray(A.flash.read_bytes())
        yc = q.ckpt_slot(1, 0)
        assert img[yc + 16:yc + 32] == y  # the label: Y's id in clear after the slot header
        img[yc + 16:yc + 32] = x
        A.flash.write_bytes(bytes(img))
        w.boot(A)
        w.wait(lambda: any(l.startswith("[monitor] checkpoint slot refused") for l in A.console()),
               "the relabelled blob refused", 30)
        w.run(A, 100)
        assert w.status(A, x)["slot"] == 0 and not w.status(A, y)["present"]
        assert runnable_at(w, x) == ["host-A"] and runnable_at(w, y) == []
        counts_in(w, A, 0, len(A.counters(0)) + 2)
        A.kill()
        img = bytearray(A.flash.read_bytes())
        img[q.JOURNAL_SLOT0:q.JOURNAL_SLOT0 + len(journal_before)] = journal_before
        A.flash.write_bytes(bytes(img))
        A.start()
        assert A.wait_exit(timeout=30) != 0
        w.wait(lambda: "[monitor] librewire refused to start: journal rolled back" in A.console(),
               "the monitor refusing the replayed journal region", 10)
