"""The rewire CLI, run as a subprocess like a user would."""

import json
import subprocess
import sys

import pytest

CMDS = [[], ["keygen"], ["host"], ["host", "add"], ["host", "endorse"], ["host", "root-add"], ["host", "list"],
        ["enclave"],
        ["enclave", "register"], ["enclave", "launch"], ["host", "run"], ["request"], ["request", "sign"],
        ["request", "withdraw"], ["proof"], ["proof", "record"], ["migrate"], ["resolve"], ["audit"], ["ledger"],
        ["ledger", "show"], ["inspect"]]


def rw(home, *args, check=None):
    p = subprocess.run([sys.executable, "-m", "librewire", "--home", str(home), *args],
                       capture_output=True, text=True, timeout=120)
    if check is not None:
        assert p.returncode == check, p.stdout + p.stderr
    return p


@pytest.mark.parametrize("cmd", CMDS, ids=lambda c: " ".join(c) or "rewire")
def test_help_on_every_command(tmp_path, cmd):
    p = rw(tmp_path, *cmd, "--help", check=0)
    assert "usage:" in p.stdout


def test_usage_errors_exit_2(tmp_path):
    p = rw(tmp_path, "frobnicate", check=2)
    assert "Traceback" not in p.stderr
    rw(tmp_path, "host", "endorse", "x", check=2)  # --atl missing


def test_full_flow(tmp_path):
    home = tmp_path / "home"
    p = rw(home, "keygen", check=0)
    assert "public key:" in p.stdout and "PRIVATE" not in p.stdout
    assert rw(home, "keygen").returncode == 1  # refuses to overwrite
    for name, atl in (("alpha", 3), ("beta", 3), ("gamma", 1)):
        rw(home, "host", "add", name, check=0)
        # A simulated host's device key has no manufacturer: refused until the operator pins it.
        p = rw(home, "host", "endorse", name, "--atl", str(atl), check=1)
        assert "DeviceNotCertified" in p.stderr and "Traceback" not in p.stderr
        rw(home, "host", "endorse", name, "--atl", str(atl), "--pin", check=0)
    code = tmp_path / "code.bin"
    code.write_bytes(b"enclave code" * 100)
    (tmp_path / "sealed").write_bytes(b"the enclave's secret")
    rw(home, "enclave", "register", "app", "--code", str(code), "--host", "alpha", "--min-atl", "2",
       "--sealed", str(tmp_path / "sealed"), check=0)
    p = rw(home, "migrate", "--sim", "app", "--to", "beta", check=0)
    out = p.stdout
    for step in ("request verified", "FROZEN", "TLS 1.3", "OFFER", "READY", "RELEASE", "ACTIVE", "completed"):
        assert step in out, out
    # state kept between runs: a second hop
    rw(home, "migrate", "--sim", "app", "--to", "alpha", check=0)
    p = rw(home, "migrate", "--sim", "app", "--to", "gamma")
    assert p.returncode == 1 and "AtlTooLow" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert "Traceback" not in p.stderr
    d = json.loads(rw(home, "ledger", "show", "--json", check=0).stdout)
    assert d["enclaves"][0]["location"] == "alpha" and d["enclaves"][0]["epoch"] == 2
    assert [m["state"] for m in d["migrations"]] == ["completed", "completed"]
    assert [x["kind"] for x in d["proofs"]] == ["released", "activated"] * 2
    assert "alpha" in rw(home, "ledger", "show", check=0).stdout
    req = tmp_path / "order.cbor"
    rw(home, "request", "sign", "app", "--to", "beta", "--out", str(req), check=0)
    info = json.loads(rw(home, "inspect", str(req), check=0).stdout)
    assert info["type"] == "Order"
    assert info["signed"]["request"]["signer_name"] == "sds" and info["signed"]["request"]["trusted"]
    assert info["signed"]["target_endorsement"]["fields"]["atl"] == 3
    assert info["signed"]["target_endorsement"]["fields"]["platform"] == 1


def test_mixed_fleet_orders_only_within_a_platform(tmp_path):
    """issue 16, item 3: one ledger, RISC-V and aarch64 hosts; an enclave goes only where its
    platform runs. A refused order is one typed line and leaves the ledger as it was."""
    home = tmp_path / "home"
    rw(home, "keygen", check=0)
    for name, platform in (("rv1", "riscv64"), ("rv2", "riscv64"), ("arm1", "aarch64"), ("arm2", "aarch64")):
        rw(home, "host", "add", name, check=0)
        p = rw(home, "host", "endorse", name, "--atl", "2", "--pin", "--platform", platform, check=0)
        assert f"({platform})" in p.stdout
    code = tmp_path / "code.bin"
    code.write_bytes(b"risc-v enclave" * 10)
    p = rw(home, "enclave", "register", "arm-app", "--code", str(code), "--host", "rv1", "--min-atl", "1",
           "--platform", "aarch64")
    assert p.returncode == 1 and "PlatformMismatch" in p.stderr and "Traceback" not in p.stderr
    rw(home, "enclave", "register", "rv-app", "--code", str(code), "--host", "rv1", "--min-atl", "1", check=0)
    rw(home, "enclave", "register", "arm-app", "--code", str(code), "--host", "arm1", "--min-atl", "1",
       "--platform", "aarch64", check=0)
    before = json.loads(rw(home, "ledger", "show", "--json", check=0).stdout)
    for app, target in (("rv-app", "arm1"), ("arm-app", "rv2")):
        p = rw(home, "migrate", "--sim", app, "--to", target)
        assert p.returncode == 1 and "PlatformMismatch" in p.stderr, p.stdout + p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
        p = rw(home, "request", "sign", app, "--to", target, "--out", str(tmp_path / "x"))
        assert p.returncode == 1 and "PlatformMismatch" in p.stderr
    assert json.loads(rw(home, "ledger", "show", "--json", check=0).stdout) == before
    rw(home, "migrate", "--sim", "rv-app", "--to", "rv2", check=0)
    rw(home, "migrate", "--sim", "arm-app", "--to", "arm2", check=0)
    d = json.loads(rw(home, "ledger", "show", "--json", check=0).stdout)
    where = {e["name"]: (e["location"], e["platform"]) for e in d["enclaves"]}
    assert where == {"rv-app": ("rv2", "riscv64"), "arm-app": ("arm2", "aarch64")}
    assert {h["name"]: h["platform"] for h in d["hosts"]} == {
        "rv1": "riscv64", "rv2": "riscv64", "arm1": "aarch64", "arm2": "aarch64"}
    p = rw(home, "host", "endorse", "rv1", "--atl", "2", "--platform", "sparc")
    assert p.returncode == 2 and "invalid choice" in p.stderr
    # Re-endorsing keeps a host's platform (a new ATL for an Arm host stays aarch64); a
    # device's platform never changes.
    p = rw(home, "host", "endorse", "arm1", "--atl", "3", check=0)
    assert "(aarch64)" in p.stdout
    p = rw(home, "host", "endorse", "arm1", "--atl", "3", "--platform", "riscv64")
    assert p.returncode == 1 and "PlatformMismatch" in p.stderr


def test_bad_input_is_one_line_not_a_traceback(tmp_path):
    home = tmp_path / "home"
    rw(home, "keygen", check=0)
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00\x01garbage")
    for args in (["inspect", str(junk)], ["inspect", str(tmp_path / "missing")],
                 ["host", "endorse", "nobody", "--atl", "1"],
                 ["migrate", "--sim", "nope", "--to", "nope"]):
        p = rw(home, *args)
        assert p.returncode == 1, (args, p.stderr)
        assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert p.stderr.startswith("rewire: error:")
    p = rw(tmp_path / "nohome", "ledger", "show")
    assert p.returncode == 1 and "keygen" in p.stderr


def test_bad_numbers_and_corrupt_ledger_give_one_line_errors(tmp_path):
    """Out-of-range integers and a corrupt ledger: one line, exit 1, no traceback."""
    home = tmp_path / "home"
    rw(home, "keygen", check=0)
    for args in (["request", "sign", "web", "--to", "00" * 32, "--ttl", str(2**70)],
                 ["host", "endorse", "x", "--atl", "-1"]):
        p = rw(home, *args)
        assert p.returncode in (1, 2), p.stdout + p.stderr
        assert "Traceback" not in p.stderr, p.stderr
    (home / "ledger.sqlite").write_bytes(b"this is not a database" * 100)
    for wal in ("ledger.sqlite-wal", "ledger.sqlite-shm"):
        (home / wal).unlink(missing_ok=True)
    p = rw(home, "ledger", "show")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_device_provenance_from_a_registered_root(tmp_path):
    """issue 12, item 5: an operator endorses a host only for a device key a registered root
    (manufacturer, operator CA) certified out of band, or one it pins by hand."""
    import librewire as rewire

    home = tmp_path / "home"
    rw(home, "keygen", check=0)
    maker = rewire.SigningKey.generate()
    hid = bytes.fromhex(rw(home, "host", "add", "alpha", check=0).stdout.split()[-1])
    cert = tmp_path / "alpha.devcert"
    cert.write_bytes(maker.certify_device(hid))
    p = rw(home, "host", "endorse", "alpha", "--atl", "2", "--device-cert", str(cert), check=1)
    assert "DeviceNotCertified" in p.stderr  # the maker is not a registered root yet
    rw(home, "host", "root-add", "zz", check=1)
    rw(home, "host", "root-add", maker.public_key.hex(), check=0)
    other = tmp_path / "other.devcert"
    other.write_bytes(maker.certify_device(b"\x07" * 32))
    p = rw(home, "host", "endorse", "alpha", "--atl", "2", "--device-cert", str(other), check=1)
    assert "PeerMismatch" in p.stderr
    # Refused endorsements record no provenance: a pin with a wrong SM build leaves nothing pinned.
    rw(home, "host", "endorse", "alpha", "--atl", "2", "--pin", "--sm-measurement", "ab" * 32, check=1)
    assert "DeviceNotCertified" in rw(home, "host", "endorse", "alpha", "--atl", "2", check=1).stderr
    rw(home, "host", "endorse", "alpha", "--atl", "2", "--device-cert", str(cert), check=0)
    rw(home, "host", "endorse", "alpha", "--atl", "2", "--pin", "--device-cert", str(cert), check=2)


def test_operator_commands_on_a_simulated_ledger(tmp_path):
    """issue 15, item 3: clear errors, keygen that cannot orphan a ledger, --measurement,
    withdraw only what never left, proof record, and commands that need agents say so."""
    home = tmp_path / "home"
    rw(home, "keygen", check=0)
    p = rw(home, "keygen", "--force", check=1)
    assert "unreadable" in p.stderr and "Traceback" not in p.stderr
    for name in ("alpha", "beta"):
        rw(home, "host", "add", name, check=0)
        rw(home, "host", "endorse", name, "--atl", "3", "--pin", check=0)
    p = rw(home, "enclave", "register", "app", "--host", "alpha", "--min-atl", "2", "--measurement", "ab" * 32, check=0)
    shown = json.loads(rw(home, "ledger", "show", "--json", check=0).stdout)
    assert shown["enclaves"][0]["location"] == "alpha"
    p = rw(home, "enclave", "register", "bad", "--host", "alpha", "--min-atl", "2", "--measurement", "ab", check=1)
    assert "64 hex digits" in p.stderr
    p = rw(home, "migrate", "app", "gamma", check=1)
    assert "no such host 'gamma'" in p.stderr and "Traceback" not in p.stderr
    p = rw(home, "migrate", "nope", "beta", check=1)
    assert "no such enclave 'nope'" in p.stderr
    p = rw(home, "migrate", "app", "beta", check=1)  # real path: no agent recorded for these hosts
    assert "has no agent address" in p.stderr
    p = rw(home, "resolve", check=1)
    assert "no host has an agent address" in p.stderr
    # An order signed by hand: withdraw refuses without --never-sent, then frees the enclave.
    order = tmp_path / "order.cbor"
    rw(home, "request", "sign", "app", "--to", "beta", "--out", str(order), check=0)
    assert rw(home, "request", "sign", "app", "--to", "beta", "--out", str(order), check=1).returncode == 1  # busy
    p = rw(home, "request", "withdraw", "app", check=1)
    assert "rewire resolve" in p.stderr
    rw(home, "request", "withdraw", "app", "--never-sent", check=0)
    shown = json.loads(rw(home, "ledger", "show", "--json", check=0).stdout)
    assert shown["migrations"][0]["state"] == "withdrawn"
    rw(home, "request", "sign", "app", "--to", "beta", "--out", str(order), check=0)  # no longer busy
    p = rw(home, "request", "withdraw", "nothing-open", check=1)
    assert "no such enclave" in p.stderr
    # proof record: not a proof is a typed error and changes nothing
    junk = tmp_path / "junk"
    junk.write_bytes(b"\xa1garbage")
    before = rw(home, "ledger", "show", "--json", check=0).stdout
    p = rw(home, "proof", "record", str(junk), check=1)
    assert "[" in p.stderr and "Traceback" not in p.stderr
    assert rw(home, "ledger", "show", "--json", check=0).stdout == before
    p = rw(home, "-v", "ledger", "show", check=0)
    assert "Traceback" not in p.stderr


def test_proof_record_takes_a_real_proof(tmp_path):
    """A RELEASE carried by hand (e.g. read off a host's console) moves the ledger."""
    import os

    import librewire as rewire
    from librewire.sim import Fleet, FleetTransport

    home = tmp_path / "home"
    rw(home, "keygen", check=0)
    key = rewire.SigningKey.load(home / "sds.pem")
    fleet = Fleet(sds_public_key=key.public_key, seed=5)
    a, b = fleet.add_host(), fleet.add_host()
    eid = os.urandom(16)
    with rewire.Ledger(home / "ledger.sqlite", key) as led:
        for h, n in ((a, "a"), (b, "b")):
            led.pin_device(h)
            led.endorse_host(fleet.certificate(h), atl=3, name=n)
        pol = led.register_enclave(eid, rewire.sha256(b"code"), min_atl=2, host=a, name="app")
        fleet.deploy(eid, b"code", a, state=b"s", sealed=b"", policy=pol)
        order = led.order(eid, b)
    t = FleetTransport(fleet)
    t.send(a, order.message)
    proofs = []
    while True:
        m = t.receive(0)
        if m is None:
            break
        proofs.append(m)
    assert proofs
    for i, m in enumerate(proofs):
        f = tmp_path / f"proof{i}"
        f.write_bytes(m)
        p = rw(home, "proof", "record", str(f))
        assert p.returncode in (0, 1) and "Traceback" not in p.stderr
    shown = json.loads(rw(home, "ledger", "show", "--json", check=0).stdout)
    assert shown["migrations"][0]["state"] == "completed" and shown["enclaves"][0]["location"] == "b"
