import os
from typing import Iterator, NamedTuple

import pytest

import librewire as rewire
from librewire.sim import Fleet

CODE = b"\x7fELF enclave " + bytes((i * 31 + 7) % 256 for i in range(3000))
STATE = bytes((i * 2654435761 >> 13) % 256 for i in range(5000))
SEALED = b"sealed secret of the enclave: MARKER-042"


class World(NamedTuple):
    key: rewire.SigningKey
    sds: rewire.Sds
    fleet: Fleet
    hosts: list  # [A (ATL 3), B (ATL 3), C (ATL 1)]
    eid: bytes


@pytest.fixture
def world() -> Iterator[World]:
    key = rewire.SigningKey.generate()
    sds = rewire.Sds(key)
    fleet = Fleet(sds, seed=7)
    hosts = [fleet.add_host(3), fleet.add_host(3), fleet.add_host(1)]
    eid = os.urandom(16)
    fleet.deploy(eid, CODE, hosts[0], state=STATE, sealed=SEALED, min_atl=2)
    yield World(key, sds, fleet, hosts, eid)


def assert_exactly_one(w: World, expected_state: bytes = STATE) -> bytes:
    """G3: exactly one running copy, byte-exact, sealed data opens there, ledger agrees."""
    running = w.fleet.running_copies(w.eid)
    assert len(running) == 1, f"expected one running copy, got {len(running)}"
    h = running[0]
    st = w.fleet.status(h, w.eid)
    assert st is not None and st[0] == "running"
    img = w.fleet.image(h, w.eid)
    assert img is not None
    code, state, sealed = img
    assert code == CODE and state == expected_state and sealed == SEALED
    rec = w.sds.enclave(w.eid)
    assert rec is not None and rec.location == h and rec.epoch == st[1]
    return h


def assert_intact_at(w: World, h: bytes) -> None:
    assert w.fleet.running_copies(w.eid) == [h]
    assert w.fleet.may_run(h, w.eid)
    img = w.fleet.image(h, w.eid)
    assert img is not None and img[0] == CODE and img[1] == STATE and img[2] == SEALED


def error_codes_at(w: World, host: object) -> set:
    return {code for (h, code, _name) in w.fleet.errors() if h == host}
