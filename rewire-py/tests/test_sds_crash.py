"""G3 for the SDS: kill the SDS process (SIGKILL) after every ledger step of a
migration, restart it from the SQLite file, finish: nothing is lost and the
enclave is in exactly one place, where the ledger says, at the ledger's epoch.

The hosts live in this (the test) process, in a Fleet; the SDS runs in a
child process and reaches them through rewire.StreamTransport over pipes."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import librewire as rewire
from librewire.sim import Fleet, serve

from conftest import CODE, SEALED, STATE

CHILD = str(Path(__file__).with_name("sds_child.py"))


def setup(home: Path):
    home.mkdir()
    key = rewire.SigningKey.generate()
    key.save(home / "sds.pem")
    fleet = Fleet(sds_public_key=key.public_key, seed=11)
    src, dst = fleet.add_host(), fleet.add_host()
    eid = os.urandom(16)
    with rewire.Ledger(home / "ledger.sqlite", key) as led:
        led.pin_device(src)
        led.pin_device(dst)
        led.endorse_host(fleet.certificate(src), atl=2, name="source")
        led.endorse_host(fleet.certificate(dst), atl=2, name="target")
        pol = led.register_enclave(eid, rewire.sha256(CODE), min_atl=1, host=src, name="app")
    fleet.deploy(eid, CODE, src, state=STATE, sealed=SEALED, policy=pol)
    return key, fleet, eid, src, dst


def run_sds(home: Path, fleet: Fleet, mode: str, crash_at: int):
    p = subprocess.Popen(
        [sys.executable, CHILD, str(home), mode, str(crash_at)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert p.stdout is not None and p.stdin is not None
    serve(fleet, p.stdout, p.stdin)
    try:
        p.stdin.close()
    except OSError:
        pass
    err = p.stderr.read().decode() if p.stderr else ""
    return p.wait(timeout=60), err


def steps_of(err: str) -> int:
    return int([ln for ln in err.splitlines() if ln.startswith("STEPS")][-1].split()[1])


def check(home: Path, key, fleet: Fleet, eid: bytes):
    with rewire.Ledger(home / "ledger.sqlite", key) as led:
        assert led.is_settled()
        rec = led.enclave(eid)
        assert rec is not None
        assert fleet.running_copies(eid) == [rec.location]
        assert fleet.status(rec.location, eid) == ("running", rec.epoch)
        img = fleet.image(rec.location, eid)
        assert img is not None and img == (CODE, STATE, SEALED)
        migs = led.migrations(eid)
        assert len(migs) == 1 and migs[0]["state"] in ("completed", "aborted")
        assert (migs[0]["state"] == "completed") == (rec.location == bytes(migs[0]["target"]))
        assert led.enclaves()[0]["epoch"] == rec.epoch
        return migs[0]["state"]


def test_uncrashed_run_counts_steps(tmp_path):
    key, fleet, eid, src, dst = setup(tmp_path / "h")
    rc, err = run_sds(tmp_path / "h", fleet, "migrate", 0)
    assert rc == 0, err
    # order persisted, order sent, RELEASE recorded, ACTIVE recorded: migrate returns on ACTIVE
    assert steps_of(err) >= 4
    assert check(tmp_path / "h", key, fleet, eid) == "completed"


def test_sds_killed_at_every_step(tmp_path):
    n = None
    k = 1
    while n is None or k <= n:
        home = tmp_path / f"h{k}"
        key, fleet, eid, src, dst = setup(home)
        rc, err = run_sds(home, fleet, "migrate", k)
        if rc == 0:
            n = steps_of(err)
            assert k > n
            break
        assert rc == -9, err  # SIGKILL
        # The hosts go on without the SDS: the network drains.
        fleet.run()
        rc, err = run_sds(home, fleet, "recover", 0)
        assert rc == 0, err
        # The order was persisted before it was sent, so it always got through.
        assert check(home, key, fleet, eid) == "completed", f"crash at step {k}"
        k += 1
    assert k >= 5, "crashed at every one of the >= 4 steps"
