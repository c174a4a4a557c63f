"""The Python API: keys, registry, requests, ledger, orchestration, errors, logging."""

import logging
import os
import stat
import time

import pytest

import librewire as rewire
from librewire.sim import Fleet, FleetTransport

from conftest import CODE, SEALED, STATE, assert_exactly_one, assert_intact_at, error_codes_at


def test_signing_key_pem_round_trip_mode_0600_and_redacted(tmp_path):
    k = rewire.SigningKey.generate()
    p = tmp_path / "sds.pem"
    k.save(p)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    text = p.read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----\n")
    import base64

    der = base64.b64decode("".join(text.splitlines()[1:-1]))
    assert der[:16] == bytes.fromhex("302e020100300506032b657004220420") and len(der) == 48
    assert rewire.SigningKey.load(p).public_key == k.public_key
    seed_hex = der[16:].hex()
    assert seed_hex not in repr(k) and "redacted" in repr(k)
    with pytest.raises(FileExistsError):
        k.save(p)
    p.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(rewire.DecodeError) as e:
        rewire.SigningKey.load(p)
    assert e.value.code == 100 and e.value.name == "Decode"


def test_host_identity_round_trip(tmp_path):
    h = rewire.HostIdentity.generate()
    h.save(tmp_path / "h.secret")
    assert stat.S_IMODE(os.stat(tmp_path / "h.secret").st_mode) == 0o600
    h2 = rewire.HostIdentity.load(tmp_path / "h.secret")
    assert h2.host_id == h.host_id and h2.certificate == h.certificate
    assert "redacted" in repr(h)
    info = rewire.inspect(h.certificate)
    assert info["type"] == "SmCertificate" and info["signature"] == "valid"
    assert info["fields"]["device"] == h.host_id.hex()


def test_error_hierarchy_matches_core_codes():
    table = rewire.error_codes()
    assert len(table) >= 40
    groups = {1: rewire.DecodeError, 2: rewire.AuthorisationError, 3: rewire.IntegrityError,
              4: rewire.StateError, 5: rewire.PlatformError, 6: rewire.ChannelError, 7: rewire.ApiError}
    for code, name, text in table:
        e = rewire.error_for_code(code)
        assert isinstance(e, rewire.RewireError) and isinstance(e, groups[code // 100])
        assert e.code == code and e.name == name and text in str(e)
    assert type(rewire.error_for_code(401)) is rewire.ReplayError
    assert type(rewire.error_for_code(402)) is rewire.ReplayError
    assert type(rewire.error_for_code(400)) is rewire.ReplayError
    assert type(rewire.error_for_code(404)) is rewire.RollbackError
    assert type(rewire.error_for_code(408)) is rewire.MigrationTimeout is rewire.TimeoutError
    assert rewire.MigrationTimeout is not TimeoutError and issubclass(rewire.MigrationTimeout, rewire.RewireError)
    assert issubclass(rewire.OutcomeInDoubt, TimeoutError) and issubclass(rewire.OutcomeInDoubt, rewire.RewireError)
    assert "TimeoutError" not in rewire.__all__
    with pytest.raises(rewire.ApiError):
        rewire.error_for_code(99)


def test_fleet_happy_path_moves_state_and_reseals(world):
    w = world
    a, b, _ = w.hosts
    w.fleet.order(w.eid, b)
    w.fleet.run()
    assert w.fleet.running_copies(w.eid) == [b]
    assert w.fleet.status(a, w.eid) == ("migrated", 1)
    assert w.fleet.image(a, w.eid) is None  # source copy destroyed
    w.fleet.settle()
    assert assert_exactly_one(w) == b
    assert [e.kind for e in w.fleet.ledger_events()] == ["released", "activated"]
    names = [e[2] for e in w.fleet.take_events()]
    assert names == ["validated", "frozen", "channel_up", "offered", "offer_accepted", "target_verified",
                     "stream_done", "pending_ready", "committed", "activated"]


def test_enclave_state_written_at_target_moves_on(world):
    w = world
    a, b, _ = w.hosts
    w.fleet.order(w.eid, b)
    w.fleet.settle()
    assert w.fleet.work(b, w.eid) and not w.fleet.work(a, w.eid)
    img = w.fleet.image(b, w.eid)
    assert img is not None and img[1] != STATE


def test_atl_violation_refused_by_sds_and_by_monitor(world):
    w = world
    a, _, c = w.hosts
    with pytest.raises(rewire.AuthorisationError) as e:
        w.fleet.order(w.eid, c)
    assert e.value.code == 205 and e.value.name == "AtlTooLow"
    # A buggy or hostile SDS key signs it anyway: the source refuses (not its SDS).
    rogue = rewire.Sds(rewire.SigningKey.generate())
    for h in w.hosts:
        rogue.pin_device(h)
        rogue.endorse_host(w.fleet.certificate(h), [rewire.SIM_SM_MEASUREMENT], 3, 0, 2**40,
                           platform=rewire.PLATFORM_RISCV64)
    rogue.register_enclave(w.eid, rewire.sha256(CODE), 0, a, platform=rewire.PLATFORM_RISCV64)
    w.fleet.send(a, rogue.order(w.eid, c, os.urandom(16), w.fleet.wall_time + 600))
    w.fleet.run()
    assert 201 in error_codes_at(w, a)  # UnknownSigner
    assert_intact_at(w, a)


def test_forged_request_signature_rejected(world):
    w = world
    a, b, _ = w.hosts
    w.fleet.order(w.eid, b)
    pk = w.fleet.packets()
    assert pk[0].kind == "order"
    order = bytearray(pk[0].data)
    # Flip a byte inside the signed request's signature (the request leads the order).
    info = rewire.inspect(bytes(order), {w.sds.public_key: "sds"})
    assert info["type"] == "Order" and info["signed"]["request"]["trusted"]
    w.fleet.replace_at(0, bytes(order[:60]) + bytes([order[60] ^ 0x40]) + bytes(order[61:]))
    w.fleet.run()
    # Byte 60 lies inside the signed payload: the signature check refuses it.
    errs = error_codes_at(w, a)
    assert errs == {200}, errs  # BadSignature
    assert_intact_at(w, a)


def test_replayed_request_rejected(world):
    w = world
    a, b, _ = w.hosts
    w.fleet.order(w.eid, b)
    w.fleet.flush()
    order = w.fleet.packets()[0].data
    w.fleet.settle()
    assert assert_exactly_one(w) == b
    w.fleet.clear_errors()
    w.fleet.send(a, order)   # replay to the old source
    w.fleet.send(b, order)   # and to the new home
    w.fleet.run()
    # The old source has settled that very request: Replay. The new home is
    # not the request's source: WrongSource (then Duplicate for the proof
    # the old source re-sends).
    assert error_codes_at(w, a) == {401}, w.fleet.errors()
    assert 202 in error_codes_at(w, b), w.fleet.errors()
    assert error_codes_at(w, b) <= {202, 402}, w.fleet.errors()
    w.fleet.settle()
    assert assert_exactly_one(w) == b


def test_expired_request_refused_enclave_stays(world):
    w = world
    a, b, _ = w.hosts
    w.fleet.order(w.eid, b, deadline=w.fleet.wall_time - 5)
    w.fleet.run()
    assert 204 in error_codes_at(w, a)
    assert_intact_at(w, a)
    w.fleet.settle()
    assert assert_exactly_one(w) == a


def test_tampered_stream_detected_and_settles(world):
    w = world
    a, b, _ = w.hosts
    tampered = []

    def hook(p):
        if p.kind == "tls" and p.dest == b and len(p.data) > 2000 and not tampered:
            d = bytearray(p.data)
            d[len(d) // 2] ^= 1
            tampered.append(1)
            return bytes(d)
        return None

    w.fleet.set_hook(hook)
    w.fleet.order(w.eid, b)
    w.fleet.run()
    w.fleet.set_hook(None)
    assert tampered
    assert 600 in error_codes_at(w, b)  # TLS record authentication failed
    assert len(w.fleet.running_copies(w.eid)) <= 1
    w.fleet.settle()
    assert assert_exactly_one(w) in (a, b)


def test_tampered_proof_does_not_move_ledger(world):
    w = world
    a, b, _ = w.hosts

    def hook(p):
        if p.dest is None and p.kind == "release":
            d = bytearray(p.data)
            d[-3] ^= 1
            return bytes(d)
        return None

    w.fleet.set_hook(hook)
    w.fleet.order(w.eid, b)
    w.fleet.run()
    rec = w.sds.enclave(w.eid)
    assert rec is not None
    assert not [e for e in w.fleet.ledger_events() if e.kind == "released"]
    assert any(h is None for (h, _c, _n) in w.fleet.errors())
    w.fleet.set_hook(None)
    w.fleet.settle()
    assert assert_exactly_one(w) == b


@pytest.mark.parametrize("seed", range(12))
def test_adversarial_network_never_forks_and_settles(world, seed):
    w = world
    a, b, _ = w.hosts
    w.fleet.set_faults(drop=0.08, duplicate=0.08, reorder=0.1, corrupt=0.03, seed=seed)
    w.fleet.order(w.eid, b)
    for i in range(4000):
        if not w.fleet.step():
            break
        assert len(w.fleet.running_copies(w.eid)) <= 1
        if seed % 3 == 0 and i == 15:
            w.fleet.crash(b)
            w.fleet.restart(b)
    w.fleet.set_faults()
    w.fleet.settle()
    assert assert_exactly_one(w) in (a, b)


def test_crash_restart_and_rollback(world):
    w = world
    a, b, _ = w.hosts
    w.fleet.order(w.eid, b)
    for _ in range(12):
        w.fleet.step()
    w.fleet.crash(a)
    assert not w.fleet.is_up(a)
    w.fleet.restart(a)
    w.fleet.settle()
    h = assert_exactly_one(w)
    w.fleet.crash(h)
    w.fleet.rollback_journal(h, 0)
    with pytest.raises(rewire.RollbackError) as e:
        w.fleet.restart(h)
    assert e.value.code == 404


def test_host_state_survives_save_and_reload(world):
    w = world
    a, b, _ = w.hosts
    w.fleet.order(w.eid, b)
    w.fleet.settle()
    saved = w.fleet.save_host(b)
    f2 = Fleet(sds_public_key=w.sds.public_key, seed=99)
    # Same identity is needed for the journal to open: rebuild with seed 7's derivation.
    f3 = Fleet(sds_public_key=w.sds.public_key, seed=7)
    f3.add_host()
    hb = f3.add_host(state=saved)
    assert hb == b and f3.status(hb, w.eid) == ("running", 1)
    assert f3.running_copies(w.eid) == [b]
    del f2


def test_ledger_orchestrator_over_fleet(tmp_path):
    key = rewire.SigningKey.generate()
    steps = []
    led = rewire.Ledger(tmp_path / "l.sqlite", key, on_step=steps.append)
    fleet = Fleet(sds_public_key=key.public_key, seed=3)
    hosts = [fleet.add_host() for _ in range(3)]
    for h, atl in zip(hosts, (3, 3, 1)):
        led.pin_device(h)
        led.endorse_host(fleet.certificate(h), atl=atl, name=h.hex()[:4])
    eid = os.urandom(16)
    pol = led.register_enclave(eid, rewire.sha256(CODE), min_atl=2, host=hosts[0], name="app")
    fleet.deploy(eid, CODE, hosts[0], state=STATE, sealed=SEALED, policy=pol)
    orch = rewire.Orchestrator(led, FleetTransport(fleet), on_step=steps.append)
    out = orch.migrate(eid, hosts[1])
    assert out.state == "completed" and out.location == hosts[1] and out.epoch == 1
    assert fleet.running_copies(eid) == [hosts[1]]
    assert steps.index("order-persisted") < steps.index("order-sent")
    kinds = [p["kind"] for p in led.proofs(out.request_id)]
    assert kinds == ["released", "activated"]
    assert all(rewire.inspect(bytes(p["message"]))["type"] in ("Release", "Active") for p in led.proofs())
    with pytest.raises(rewire.AuthorisationError):
        orch.migrate(eid, hosts[2])
    out2 = orch.migrate(eid, hosts[0])
    assert out2.state == "completed" and out2.epoch == 2
    snap = led.snapshot()
    led.close()
    led2 = rewire.Ledger(tmp_path / "l.sqlite", key)
    assert led2.snapshot() == snap and led2.enclaves()[0]["epoch"] == 2
    with pytest.raises(rewire.AuthorisationError):
        rewire.Ledger(tmp_path / "l.sqlite", rewire.SigningKey.generate())
    # Forged proofs change nothing.
    with pytest.raises(rewire.RewireError):
        led2.record(bytes(led2.proofs()[0]["message"]))  # stale (duplicate)
    with pytest.raises(rewire.DecodeError):
        led2.record(b"\xa1garbage")
    assert led2.snapshot() == snap


def test_inspect_every_object_and_bad_signature(world):
    w = world
    a, b, _ = w.hosts
    end = w.sds.host(a)
    assert end is not None
    keys = {w.sds.public_key: "sds"}
    info = rewire.inspect(end.endorsement, keys)
    assert info["type"] == "HostEndorsement" and info["trusted"] and info["fields"]["atl"] == 3
    rec = w.sds.enclave(w.eid)
    assert rec is not None
    assert rewire.inspect(rec.policy, keys)["fields"]["min_atl"] == 2
    bad = bytearray(rec.policy)
    bad[-1] ^= 1
    assert rewire.inspect(bytes(bad), keys)["signature"] == "invalid"
    assert not rewire.inspect(rec.policy)["trusted"]
    with pytest.raises(rewire.DecodeError):
        rewire.inspect(b"not cbor at all")


def test_core_events_reach_python_logging(world, caplog):
    w = world
    caplog.set_level(logging.INFO, logger="librewire")
    w.fleet.order(w.eid, w.hosts[1])
    w.fleet.run()
    msgs = [r.getMessage() for r in caplog.records if r.name == "librewire"]
    assert any("migration step" in m and "Committed" in m for m in msgs), msgs
    assert not any(SEALED.decode() in m for m in msgs)


def test_ledger_schema_version_refusals(tmp_path):
    """issue 15, item 2 / issue 16, item 3: PRAGMA user_version. A ledger from before platforms
    (versions 0 and 1: its signed endorsements and policies name none) and one from a newer
    librewire are refused with LedgerVersionError, and left untouched."""
    import sqlite3

    from librewire.ledger import SCHEMA_VERSION, LedgerVersionError

    key = rewire.SigningKey.generate()
    path = tmp_path / "l.sqlite"
    with rewire.Ledger(path, key) as led:
        led.pin_device(b"\x01" * 32)
        led.add_host(b"\x02" * 32, b"certificate", name="old")
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    for old in (0, 1):
        db.execute(f"PRAGMA user_version={old}")
        db.commit()
        with pytest.raises(LedgerVersionError, match="predates platforms"):
            rewire.Ledger(path, key)
        assert [r[0] for r in sqlite3.connect(path).execute("PRAGMA user_version")] == [old]
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(LedgerVersionError, match="newer"):
        rewire.Ledger(path, key)
    assert [r[0] for r in sqlite3.connect(path).execute("PRAGMA user_version")] == [SCHEMA_VERSION + 1]


def test_ledger_reads_see_another_writer(tmp_path):
    """issue 15, item 2: is_settled/enclave read the durable state, not a stale copy."""
    key = rewire.SigningKey.generate()
    path = tmp_path / "l.sqlite"
    fleet = Fleet(sds_public_key=key.public_key, seed=9)
    a, b = fleet.add_host(), fleet.add_host()
    eid = os.urandom(16)
    reader = rewire.Ledger(path, key)
    with rewire.Ledger(path, key) as writer:
        for h in (a, b):
            writer.pin_device(h)
            writer.endorse_host(fleet.certificate(h), atl=3)
        writer.register_enclave(eid, rewire.sha256(CODE), min_atl=2, host=a)
        assert reader.enclave(eid) is not None and reader.is_settled()
        writer.order(eid, b)
        assert not reader.is_settled()  # the other Ledger's order, seen at once
        assert reader.enclave(eid).migration is not None
    reader.close()


def test_migrate_many_overlaps_and_reports_each_job(tmp_path):
    """issue 15, item 2: many migrations at once, one loop, one result per job (an outcome or
    the error that ended it), every enclave in exactly one place afterwards."""
    key = rewire.SigningKey.generate()
    led = rewire.Ledger(tmp_path / "l.sqlite", key)
    fleet = Fleet(sds_public_key=key.public_key, seed=21)
    hosts = [fleet.add_host() for _ in range(4)]
    for h, atl in zip(hosts, (3, 3, 3, 1)):
        led.pin_device(h)
        led.endorse_host(fleet.certificate(h), atl=atl)
    eids = [os.urandom(16) for _ in range(3)]
    for i, eid in enumerate(eids):
        pol = led.register_enclave(eid, rewire.sha256(CODE), min_atl=2, host=hosts[i])
        fleet.deploy(eid, CODE, hosts[i], state=STATE, sealed=SEALED, policy=pol)
    orch = rewire.Orchestrator(led, FleetTransport(fleet))
    # 0 -> 1 and 1 -> 2 at the same time (host 1 is source and target at once), 2 -> 3 refused (ATL 1).
    out = orch.migrate_many([(eids[0], hosts[1]), (eids[1], hosts[2]), (eids[2], hosts[3])])
    assert [type(o).__name__ for o in out] == ["MigrationOutcome", "MigrationOutcome", "AuthorisationError"]
    assert out[0].location == hosts[1] and out[1].location == hosts[2]
    assert [fleet.running_copies(e) for e in eids] == [[hosts[1]], [hosts[2]], [hosts[2]]]
    assert led.is_settled()
