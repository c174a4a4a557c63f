"""The ``rewire`` command: an SDS whose state lives in a directory.

Exit codes: 0 success; 1 a librewire error (or a file that cannot be
read/written) — one line on stderr naming the error and its code; 2 usage;
3 a migration whose outcome is still in doubt (``rewire resolve`` finishes it).

Layout of ``--home`` (default ``./.rewire``)::

    sds.pem              SDS signing key, PKCS#8 PEM, mode 0600
    ledger.sqlite        registry + ledger (WAL)
    tls/                 the SDS's link credentials: ca.pem, sds.pem, sds.key
                         (``rewire-agent cert``; or ``--tls DIR``)
    hosts/NAME.secret    device secrets of simulated hosts, mode 0600
    enclaves/NAME/       code, state, sealed of registered enclaves (for --sim)
    sim/NAME.state       durable state of simulated hosts between runs
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import struct
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from . import _rewire as rw
from . import net
from .ledger import PLATFORMS, Ledger, Order
from .orchestrator import MigrationAborted, Orchestrator, OutcomeInDoubt

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_IN_DOUBT = 3


class CliError(Exception):
    """A user-facing failure that is not a librewire error."""


def _home(args: argparse.Namespace) -> Path:
    return Path(args.home)


def _key(args: argparse.Namespace) -> rw.SigningKey:
    p = _home(args) / "sds.pem"
    if not p.exists():
        raise CliError(f"no SDS key at {p} (run: rewire keygen --home {args.home})")
    return rw.SigningKey.load(p)


def _ledger(args: argparse.Namespace) -> Ledger:
    return Ledger(_home(args) / "ledger.sqlite", _key(args))


def _u32(text: str) -> int:
    """An argparse type: 0 .. 2**32 - 1 (what the monitor's commands carry)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= v < 1 << 32:
        raise argparse.ArgumentTypeError(f"{v} is out of range (0 .. 4294967295)")
    return v


def _name_ok(name: str) -> str:
    if not name or "/" in name or name.startswith(".") or len(name) > 64:
        raise CliError(f"bad name {name!r}")
    return name


def _tls(args: argparse.Namespace) -> net.LinkTls:
    d = Path(args.tls) if args.tls else _home(args) / "tls"
    t = net.LinkTls.from_dir(d)
    for f in (t.ca, t.cert, t.key):
        if not f.exists():
            raise CliError(f"no {f.name} in {d}: the SDS's link credentials (rewire-agent cert ca --out {d}; "
                           f"rewire-agent cert issue --ca {d} --sds --out {d})")
    return t


def _transport(args: argparse.Namespace, led: Ledger, on_report: Any = None) -> net.TcpTransport:
    agents = {hid: net.Agent(name, addr) for hid, (name, addr) in led.agents().items()}
    if not agents:
        raise CliError("no host has an agent address (rewire host add NAME --agent HOST:PORT)")
    return net.TcpTransport(agents, _tls(args), on_report=on_report)


def _agent_of(led: Ledger, name: str) -> bytes:
    hid = led.host_id(name)
    if hid not in led.agents():
        raise CliError(f"host {name!r} has no agent address (rewire host add {name} --agent HOST:PORT)")
    return hid


def cmd_keygen(args: argparse.Namespace) -> int:
    home = _home(args)
    home.mkdir(parents=True, exist_ok=True)
    if (home / "ledger.sqlite").exists() and (home / "sds.pem").exists():
        # --force used to replace it: the ledger then refused to open for good.
        raise CliError(f"{home / 'sds.pem'} is the key of the ledger {home / 'ledger.sqlite'}: replacing it would "
                       f"make the ledger unreadable; move both away to start a new SDS")
    k = rw.SigningKey.generate()
    k.save(home / "sds.pem", overwrite=args.force)
    Ledger(home / "ledger.sqlite", k).close()
    print(f"SDS key written to {home / 'sds.pem'} (mode 0600)")
    print(f"public key: {k.public_key.hex()}")
    return EXIT_OK


def cmd_host_add(args: argparse.Namespace) -> int:
    name = _name_ok(args.name)
    with _ledger(args) as led:
        if args.agent:
            if not rw.link_valid_name(name):
                raise CliError(f"bad host name {name!r} for an agent: letters, digits and '-' (a DNS label)")
            ai = net.probe_agent(args.agent, name, _tls(args), timeout=args.timeout)
            # The agent is untrusted: what it says must be a device-signed SM certificate for
            # the host id it claims, and must not take over another host's name or id.
            info = rw.inspect(ai.certificate)
            if (info.get("type") != "SmCertificate" or info.get("signature") != "valid"
                    or bytes.fromhex(info["fields"]["device"]) != ai.host_id):
                raise CliError(f"the agent at {args.agent} sent no valid SM certificate for the host id it claims")
            for h in led.hosts():
                if bytes(h["host_id"]) == ai.host_id and h["name"] not in (None, name):
                    raise CliError(f"that monitor is already registered as host {h['name']!r}")
                if h["name"] == name and bytes(h["host_id"]) != ai.host_id:
                    raise CliError(f"host {name!r} is already registered with another device key "
                                   f"({bytes(h['host_id']).hex()[:16]}): pick another name")
            led.add_host(ai.host_id, ai.certificate, name=name)
            led.set_agent(ai.host_id, args.agent)
            print(f"host {name}: {ai.host_id.hex()} (agent at {args.agent})")
            print(f"  SM measurement it reports: {ai.sm_measurement.hex()} (endorse the build you ship, not this)")
            print(f"  enclave it offers:         {ai.enclave_measurement.hex()}")
            return EXIT_OK
        if args.certificate:
            cert = Path(args.certificate).read_bytes()
            info = rw.inspect(cert)
            if info.get("type") != "SmCertificate" or info.get("signature") != "valid":
                raise CliError("not a valid SM certificate")
            hid = bytes.fromhex(info["fields"]["device"])
        else:
            d = _home(args) / "hosts"
            d.mkdir(parents=True, exist_ok=True)
            ident = rw.HostIdentity.generate()
            ident.save(d / f"{name}.secret")
            cert, hid = ident.certificate, ident.host_id
            print(f"simulated host: device secret in {d / (name + '.secret')} (mode 0600)")
        led.add_host(hid, cert, name=name)
    print(f"host {name}: {hid.hex()}")
    return EXIT_OK


def cmd_host_endorse(args: argparse.Namespace) -> int:
    with _ledger(args) as led:
        hid = led.host_id(args.name)
        rows = [h for h in led.hosts() if bytes(h["host_id"]) == hid]
        if not rows or rows[0]["certificate"] is None:
            raise CliError(f"unknown host {args.name!r} (rewire host add first)")
        ms = [bytes.fromhex(m) for m in args.sm_measurement] if args.sm_measurement else [rw.SIM_SM_MEASUREMENT]
        dev_cert = Path(args.device_cert).read_bytes() if args.device_cert else None
        end = led.endorse_host(bytes(rows[0]["certificate"]), atl=args.atl, platform=args.platform,
                               sm_measurements=ms, valid_for=args.valid_days * 86400,
                               device_certificate=dev_cert, pin=args.pin)
        if args.pin:
            print(f"host {args.name}: device key pinned by the operator (recorded in the ledger)")
        if args.out:
            Path(args.out).write_bytes(end)
        platform = next(h["platform"] for h in led.hosts() if bytes(h["host_id"]) == hid)
    print(f"host {args.name} endorsed ({platform}) at ATL {args.atl} for {args.valid_days} days "
          f"({len(end)} B endorsement)")
    return EXIT_OK


def cmd_device_root(args: argparse.Namespace) -> int:
    try:
        root = bytes.fromhex(args.public_key)
    except ValueError:
        root = b""
    if len(root) != 32:
        raise CliError("the root's public key must be 64 hex digits")
    with _ledger(args) as led:
        led.add_device_root(root)
    print(f"device root {root.hex()} trusted to certify device keys")
    return EXIT_OK


def cmd_host_list(args: argparse.Namespace) -> int:
    with _ledger(args) as led:
        for h in led.hosts():
            atl = "-" if h["atl"] is None else h["atl"]
            agent = f"  agent {h['agent']}" if h.get("agent") else ""
            print(f"{h['name'] or '-':12} {bytes(h['host_id']).hex()}  {h['platform'] or '-':8} ATL {atl}{agent}")
    return EXIT_OK


def cmd_enclave_register(args: argparse.Namespace) -> int:
    name = _name_ok(args.name)
    if args.measurement:
        try:
            measurement = bytes.fromhex(args.measurement)
        except ValueError:
            measurement = b""
        if len(measurement) != 32:
            raise CliError("--measurement must be 64 hex digits (SHA-256)")
        code = b""
    else:
        code = Path(args.code).read_bytes()
        measurement = rw.sha256(code)
    state = Path(args.state).read_bytes() if args.state else b""
    sealed = Path(args.sealed).read_bytes() if args.sealed else b""
    eid = bytes.fromhex(args.id) if args.id else os.urandom(16)
    if len(eid) != 16:
        raise CliError("--id must be 16 bytes of hex")
    with _ledger(args) as led:
        host = led.host_id(args.host)
        led.register_enclave(eid, measurement, min_atl=args.min_atl, host=host, platform=args.platform, name=name)
    d = _home(args) / "enclaves" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "code").write_bytes(code)
    (d / "state").write_bytes(state)
    fd = os.open(d / "sealed", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(sealed)
    print(f"enclave {name}: {eid.hex()} ({args.platform}) on {args.host}, min ATL {args.min_atl}")
    return EXIT_OK


def _wait_report(t: net.TcpTransport, seen: List[Any], what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not seen:
        if time.monotonic() > deadline:
            raise CliError(f"no {what} within {timeout:.0f} s")
        time.sleep(0.02)
    return seen[0]


def cmd_enclave_launch(args: argparse.Namespace) -> int:
    """The reference monitor's launch command (monitor/abi.h F_LAUNCH), through the host's agent."""
    with _ledger(args) as led:
        eid = led.enclave_id(args.name)
        rows = [e for e in led.enclaves() if bytes(e["enclave_id"]) == eid]
        if not rows:
            raise CliError(f"no such enclave {args.name!r}")
        hid = bytes(rows[0]["location"])
        _agent_of(led, led.host_name(hid))
        results: List[int] = []

        def on_report(host: bytes, ftype: int, p: bytes) -> None:
            if host == hid and ftype == net.F_RESULT and len(p) == 5 and p[0] == net.F_LAUNCH:
                results.append(struct.unpack("<i", p[1:])[0])

        with _transport(args, led, on_report) as t:
            t.command(hid, net.F_LAUNCH, struct.pack("<I", args.state) + eid + bytes(rows[0]["policy"]))
            r = _wait_report(t, results, "launch result from the host", args.timeout)
            if r != 0:
                raise CliError(f"{led.host_name(hid)}'s monitor refused to launch {args.name}: {r}")
            if args.run:
                t.command(hid, net.F_RUN, struct.pack("<I", args.run))
        where = led.host_name(hid)
    print(f"enclave {args.name} launched on {where}" + (f", stepping every {args.run} ms" if args.run else ""))
    return EXIT_OK


def cmd_host_run(args: argparse.Namespace) -> int:
    """Tell a host's program to step (or stop stepping) whatever enclave its monitor lets it run."""
    with _ledger(args) as led:
        hid = _agent_of(led, args.name)
        with _transport(args, led) as t:
            t.command(hid, net.F_RUN, struct.pack("<I", args.period))
    print(f"host {args.name}: stepping every {args.period} ms" if args.period else f"host {args.name}: stopped")
    return EXIT_OK


def cmd_request_sign(args: argparse.Namespace) -> int:
    with _ledger(args) as led:
        eid = led.enclave_id(args.enclave)
        order = led.order(eid, led.host_id(args.to), ttl=args.ttl)
    Path(args.out).write_bytes(order.message)
    print(f"request {order.request_id.hex()} signed and recorded; order for the source in {args.out}")
    return EXIT_OK


def _sim_fleet(args: argparse.Namespace, led: Ledger) -> "tuple[Any, Dict[bytes, str]]":
    from .sim import Fleet

    fleet = Fleet(sds_public_key=led.public_key)
    names: Dict[bytes, str] = {}
    simdir = _home(args) / "sim"
    simdir.mkdir(parents=True, exist_ok=True)
    for h in led.hosts():
        name = h["name"]
        secret = _home(args) / "hosts" / f"{name}.secret"
        if h["atl"] is None or not secret.exists():
            continue
        st = simdir / f"{name}.state"
        ident = rw.HostIdentity.load(secret)
        hid = fleet.add_host(identity=ident, state=st.read_bytes() if st.exists() else None)
        names[hid] = name
        if not st.exists():
            # A fresh simulated host: load the enclaves the ledger places here.
            for e in led.enclaves():
                if bytes(e["location"]) == hid and e["epoch"] == 0 and e["name"]:
                    d = _home(args) / "enclaves" / e["name"]
                    fleet.deploy(bytes(e["enclave_id"]), (d / "code").read_bytes(), hid,
                                 state=(d / "state").read_bytes(), sealed=(d / "sealed").read_bytes(),
                                 policy=bytes(e["policy"]))
    return fleet, names


def _save_fleet(args: argparse.Namespace, fleet: Any, names: Dict[bytes, str]) -> None:
    for hid, name in names.items():
        p = _home(args) / "sim" / f"{name}.state"
        tmp = p.with_suffix(".tmp")
        tmp.write_bytes(fleet.save_host(hid))
        os.replace(tmp, p)


def cmd_request_withdraw(args: argparse.Namespace) -> int:
    with _ledger(args) as led:
        ordered = [m for m in led.migrations() if m["state"] == "ordered"]
        rows = [m for m in ordered if bytes(m["request_id"]).hex() == args.request.lower()]
        if not rows:
            eid = led.enclave_id(args.request)
            rows = [m for m in ordered if bytes(m["enclave_id"]) == eid]
        if not rows:
            raise CliError(f"no open order for {args.request!r} (rewire ledger show)")
        if not args.never_sent:
            raise CliError("withdraw only an order that never left this machine; if it may have reached the source, "
                           "run `rewire resolve` (the source executes it or, past its deadline, aborts). "
                           "Pass --never-sent to withdraw.")
        m = rows[0]
        led.withdraw(Order(bytes(m["request_id"]), bytes(m["enclave_id"]), bytes(m["source"]), bytes(m["target"]),
                           m["deadline"], bytes(m["order_msg"])))
    print(f"request {bytes(m['request_id']).hex()} withdrawn")
    return EXIT_OK


def cmd_proof_record(args: argparse.Namespace) -> int:
    data = Path(args.file).read_bytes()
    with _ledger(args) as led:
        ev = led.record(data)
        print(f"proof recorded: {ev.kind} from {led.host_name(ev.host)}, epoch {ev.epoch}")
    return EXIT_OK


def _progress(t0: float, names: Dict[bytes, str]) -> Any:
    def ms() -> str:
        return f"[{(time.monotonic() - t0) * 1000:8.1f} ms]"

    def on_report(host: bytes, ftype: int, p: bytes) -> None:
        if ftype == net.F_EVENT and len(p) == 24:
            e, _, why = net.decode_event(p)
            print(f"{ms()} {names.get(host, host.hex()[:8])}: {e}" + (f" (reason {why})" if why else ""), flush=True)

    return ms, on_report


def cmd_migrate_agents(args: argparse.Namespace, target_name: str) -> int:
    t0 = time.monotonic()
    with _ledger(args) as led:
        eid = led.enclave_id(args.enclave)
        target = _agent_of(led, target_name)
        names = {hid: name for hid, (name, _) in led.agents().items()}
        ms, on_report = _progress(t0, names)

        def on_ledger(ev: rw.LedgerEvent) -> None:
            print(f"{ms()} SDS ledger: {ev.kind} -> {led.host_name(ev.host)} epoch {ev.epoch}", flush=True)

        rec = led.enclave(eid)
        if rec is None:
            raise CliError(f"no such enclave {args.enclave!r}")
        with _transport(args, led, on_report) as t:
            t.connect_all([rec.location, target])  # the two it needs; others are not its business
            orch = Orchestrator(led, t, timeout=args.timeout, retries=args.retries, on_event=on_ledger)
            return _run_migration(args, led, orch, eid, target, ms)


def _run_migration(args: argparse.Namespace, led: Ledger, orch: Orchestrator, eid: bytes, target: bytes,
                   ms: Any) -> int:
    """Order and wait, with the CLI's outcome lines and exit codes (over agents or simulated)."""
    print(f"{ms()} SDS: ordering {args.enclave} -> {args.to} (persisted before sending)", flush=True)
    try:
        out = orch.migrate(eid, target, ttl=args.ttl)
    except MigrationAborted as e:
        print(f"rewire: migration aborted: {args.enclave} stays at {led.host_name(e.outcome.location)}, "
              f"epoch {e.outcome.epoch} [MigrationAborted]", file=sys.stderr)
        return EXIT_ERROR
    except OutcomeInDoubt as e:
        print(f"rewire: {e}", file=sys.stderr)
        return EXIT_IN_DOUBT
    print(f"{ms()} migration {out.state}: {args.enclave} at {led.host_name(out.location)}, epoch {out.epoch}")
    return EXIT_OK


def cmd_resolve(args: argparse.Namespace) -> int:
    with _ledger(args) as led:
        names = {hid: name for hid, (name, _) in led.agents().items()}
        _, on_report = _progress(time.monotonic(), names)
        with _transport(args, led, on_report) as t:
            orch = Orchestrator(led, t, timeout=args.timeout, retries=args.retries)
            try:
                rounds = orch.settle()
            except OutcomeInDoubt as e:
                print(f"rewire: {e}", file=sys.stderr)
                return EXIT_IN_DOUBT
            missed = dict(t.unreachable)
        if missed:
            for h, why in missed.items():
                print(f"rewire: {why}", file=sys.stderr)
            print("rewire: the ledger is settled, but not every host was asked: run again when they are reachable",
                  file=sys.stderr)
            return EXIT_IN_DOUBT
        print(f"settled after {rounds + 1} round(s): nothing in doubt")
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    with _ledger(args) as led:
        before = led.snapshot()
        with _transport(args, led) as t:
            for host, msg in led.audit():
                t.send(host, msg)
            taken = 0
            while True:
                got = t.receive(args.timeout)
                if got is None:
                    break
                try:
                    ev = led.record(got)
                    taken += 1
                    print(f"proof taken: {ev.kind} from {led.host_name(ev.host)}, epoch {ev.epoch}")
                except rw.RewireError:
                    pass  # what the ledger already has
            missed = dict(t.unreachable)
        changed = led.snapshot() != before
        for h, why in missed.items():
            print(f"rewire: {why}", file=sys.stderr)
        if missed:
            print(f"audit: {taken} new proof(s) from the hosts reached; {len(missed)} not reached", file=sys.stderr)
            return EXIT_ERROR
        print(f"audit: {taken} new proof(s); the ledger {'changed' if changed else 'agrees with the hosts'}")
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    target_name = args.to or args.target
    if not target_name:
        raise CliError("which host? rewire migrate ENCLAVE TARGET")
    if args.to and args.target and args.to != args.target:
        raise CliError("two different targets given")
    args.to = target_name
    if not args.sim:
        return cmd_migrate_agents(args, target_name)
    from .sim import FleetTransport

    t0 = time.monotonic()
    with _ledger(args) as led:
        fleet, names = _sim_fleet(args, led)
        eid = led.enclave_id(args.enclave)
        target = led.host_id(args.to)

        def ms() -> str:
            return f"[{(time.monotonic() - t0) * 1000:8.1f} ms]"

        def on_event(e: "tuple[bytes, bytes, str, str]") -> None:
            print(f"{ms()} {names.get(e[0], e[0].hex()[:8])}: {e[3]}")

        def on_ledger(ev: rw.LedgerEvent) -> None:
            print(f"{ms()} SDS ledger: {ev.kind} -> {led.host_name(ev.host)} epoch {ev.epoch}")

        tr = FleetTransport(fleet, on_event=on_event)
        orch = Orchestrator(led, tr, on_event=on_ledger)
        try:
            return _run_migration(args, led, orch, eid, target, ms)
        finally:
            _save_fleet(args, fleet, names)


def _ledger_dict(led: Ledger) -> Dict[str, Any]:
    def h(b: Any) -> Optional[str]:
        return None if b is None else bytes(b).hex()

    return {
        "sds_public_key": led.public_key.hex(),
        "hosts": [{"name": r["name"], "host_id": h(r["host_id"]), "platform": r["platform"], "atl": r["atl"],
                   "not_after": r["not_after"]} for r in led.hosts()],
        "enclaves": [{"name": r["name"], "enclave_id": h(r["enclave_id"]), "platform": r["platform"],
                      "location": led.host_name(bytes(r["location"])), "epoch": r["epoch"],
                      "min_atl": r["min_atl"]} for r in led.enclaves()],
        "migrations": [{"request_id": h(r["request_id"]), "enclave_id": h(r["enclave_id"]),
                        "source": led.host_name(bytes(r["source"])), "target": led.host_name(bytes(r["target"])),
                        "epoch": r["epoch"], "state": r["state"]} for r in led.migrations()],
        "proofs": [{"request_id": h(r["request_id"]), "kind": r["kind"], "host": led.host_name(bytes(r["host"])),
                    "epoch": r["epoch"], "bytes": len(r["message"])} for r in led.proofs()],
        "settled": led.is_settled(),
    }


def cmd_ledger_show(args: argparse.Namespace) -> int:
    with _ledger(args) as led:
        d = _ledger_dict(led)
    if args.json:
        print(json.dumps(d, indent=2))
        return EXIT_OK
    print(f"SDS {d['sds_public_key'][:16]}…  settled: {d['settled']}")
    print("hosts:")
    for x in d["hosts"]:
        print(f"  {x['name'] or '-':12} {x['platform'] or '-':8} ATL {x['atl'] if x['atl'] is not None else '-':>3}  "
              f"{x['host_id'][:16]}…")
    print("enclaves:")
    for x in d["enclaves"]:
        print(f"  {x['name'] or '-':12} {x['platform']:8} at {x['location']:12} epoch {x['epoch']}  "
              f"(min ATL {x['min_atl']})")
    print("migrations:")
    for x in d["migrations"]:
        print(f"  {x['request_id'][:16]}… {x['source']} -> {x['target']} from epoch {x['epoch']}: {x['state']}")
    print(f"proofs: {len(d['proofs'])} ({', '.join(p['kind'] for p in d['proofs'])})")
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    data = Path(args.file).read_bytes()
    keys: Dict[bytes, str] = {}
    if (_home(args) / "sds.pem").exists():
        with _ledger(args) as led:
            keys = dict(led.iter_known_keys())
    info = rw.inspect(data, keys)
    print(json.dumps(info, indent=2))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rewire",
        description="librewire SDS: keys, hosts, enclaves, signed migration requests, the ledger.",
        epilog="exit codes: 0 ok, 1 rewire error (one line naming it and its code), 2 usage, "
               "3 migration outcome in doubt (rewire resolve)",
    )
    p.add_argument("--home", default=os.environ.get("REWIRE_HOME", ".rewire"),
                   help="state directory (default: ./.rewire, or $REWIRE_HOME)")
    p.add_argument("--tls", help="the SDS's link credentials: ca.pem, sds.pem, sds.key (default: HOME/tls)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log what the SDS and the core do (-vv: more)")
    p.add_argument("--version", action="version", version=f"rewire {rw.__version__}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("keygen", help="generate the SDS signing key and an empty ledger")
    s.add_argument("--force", action="store_true", help="replace an existing key that no ledger uses yet")
    s.set_defaults(func=cmd_keygen)

    host = sub.add_parser("host", help="register and endorse hosts")
    hs = host.add_subparsers(dest="hostcmd", metavar="SUBCOMMAND")
    hs.required = True
    s = hs.add_parser("add", help="add a host: from its agent (--agent), from its SM certificate, or simulated")
    s.add_argument("name")
    src = s.add_mutually_exclusive_group()
    src.add_argument("--agent", metavar="HOST:PORT", help="the host's rewire-agent: fetch its monitor's SM "
                     "certificate over TLS (the agent's certificate must name NAME) and record the address")
    src.add_argument("--certificate", help="the host's device-signed SM certificate (file); default: simulate a host")
    s.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the agent (default 10)")
    s.set_defaults(func=cmd_host_add)
    s = hs.add_parser("run", help="tell a host (through its agent) to step its enclave every PERIOD ms (0: stop)")
    s.add_argument("name")
    s.add_argument("period", type=_u32)
    s.set_defaults(func=cmd_host_run)
    s = hs.add_parser("endorse", help="sign the host's endorsement (ATL, accepted SM builds, validity)")
    s.add_argument("name")
    s.add_argument("--atl", type=int, required=True, help="authorisation trust level")
    s.add_argument("--platform", choices=sorted(PLATFORMS),
                   help="what code the host runs (default: as endorsed before, else riscv64; it never changes); "
                        "orders only go to hosts of the enclave's platform")
    s.add_argument("--sm-measurement", action="append", help="accepted SM measurement (hex); repeatable; default: the simulated SM")
    s.add_argument("--valid-days", type=int, default=365)
    s.add_argument("--out", help="also write the endorsement to this file")
    prov = s.add_mutually_exclusive_group()
    prov.add_argument("--device-cert", help="the device certificate a registered root issued for this host's device key "
                      "(file, obtained out of band); without it or --pin the device must already have provenance")
    prov.add_argument("--pin", action="store_true",
                      help="vouch for the device key by hand, without a root's certificate (recorded in the ledger)")
    s.set_defaults(func=cmd_host_endorse)
    s = hs.add_parser("root-add", help="trust a manufacturer's or operator CA's key to certify device keys")
    s.add_argument("public_key", help="the root's Ed25519 public key (64 hex digits)")
    s.set_defaults(func=cmd_device_root)
    s = hs.add_parser("list", help="list hosts")
    s.set_defaults(func=cmd_host_list)

    enc = sub.add_parser("enclave", help="register enclaves")
    es = enc.add_subparsers(dest="enccmd", metavar="SUBCOMMAND")
    es.required = True
    s = es.add_parser("register", help="register an enclave on a host under a signed policy")
    s.add_argument("name")
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--code", help="enclave code (its SHA-256 is the measurement)")
    what.add_argument("--measurement", help="the enclave's measurement, 64 hex digits (as its framework measures it)")
    s.add_argument("--host", required=True, help="host (name or hex id) it runs on now")
    s.add_argument("--min-atl", type=int, required=True, help="lowest ATL of any host that may run it")
    s.add_argument("--platform", choices=sorted(PLATFORMS), default="riscv64",
                   help="what its code is built for (default riscv64): it is placed and ordered only on hosts of it")
    s.add_argument("--state", help="initial runtime state (simulation)")
    s.add_argument("--sealed", help="sealed data plaintext (simulation)")
    s.add_argument("--id", help="enclave id, 32 hex digits (default: random)")
    s.set_defaults(func=cmd_enclave_register)

    s = es.add_parser("launch", help="launch a registered enclave on its host (the reference monitor, via its agent)")
    s.add_argument("name")
    s.add_argument("--state", type=_u32, default=1024, help="bytes of runtime state (default 1024)")
    s.add_argument("--run", type=_u32, default=100, metavar="MS", help="step it every MS ms (0: do not start it)")
    s.add_argument("--timeout", type=float, default=30.0)
    s.set_defaults(func=cmd_enclave_launch)

    req = sub.add_parser("request", help="sign migration requests")
    rs = req.add_subparsers(dest="reqcmd", metavar="SUBCOMMAND")
    rs.required = True
    s = rs.add_parser("sign", help="sign and record a migration order for delivery to the source")
    s.add_argument("enclave")
    s.add_argument("--to", required=True, help="target host")
    s.add_argument("--ttl", type=int, default=3600, help="seconds until the deadline")
    s.add_argument("--out", required=True, help="file for the order")
    s.set_defaults(func=cmd_request_sign)
    s = rs.add_parser("withdraw", help="withdraw an open order that never left this machine")
    s.add_argument("request", help="request id (32 hex digits) or enclave name")
    s.add_argument("--never-sent", action="store_true", help="confirm the order never reached the source")
    s.set_defaults(func=cmd_request_withdraw)

    prf = sub.add_parser("proof", help="signed proofs from hosts")
    ps = prf.add_subparsers(dest="proofcmd", metavar="SUBCOMMAND")
    ps.required = True
    s = ps.add_parser("record", help="record a proof (RELEASE, ABORT, ACTIVE, DROPPED) carried by hand")
    s.add_argument("file")
    s.set_defaults(func=cmd_proof_record)

    s = sub.add_parser("migrate", help="migrate an enclave through the hosts' agents, printing each protocol step")
    s.add_argument("enclave")
    s.add_argument("target", nargs="?", help="target host")
    s.add_argument("--to", help=argparse.SUPPRESS)
    s.add_argument("--sim", action="store_true", help="over simulated monitors (state kept in HOME/sim)")
    s.add_argument("--ttl", type=int, default=3600)
    s.add_argument("--timeout", type=float, default=3.0, help="seconds of quiet before re-sending (default 3)")
    s.add_argument("--retries", type=int, default=20, help="quiet rounds before giving up, outcome in doubt (exit 3)")
    s.set_defaults(func=cmd_migrate)

    s = sub.add_parser("resolve", help="settle every migration in doubt through the agents, then audit")
    s.add_argument("--timeout", type=float, default=3.0)
    s.add_argument("--retries", type=int, default=20)
    s.set_defaults(func=cmd_resolve)

    s = sub.add_parser("audit", help="ask every enclave's host for its latest proof; record what the ledger missed")
    s.add_argument("--timeout", type=float, default=3.0)
    s.set_defaults(func=cmd_audit)

    led = sub.add_parser("ledger", help="the ledger")
    ls = led.add_subparsers(dest="ledcmd", metavar="SUBCOMMAND")
    ls.required = True
    s = ls.add_parser("show", help="hosts, enclaves, migrations and proofs")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_ledger_show)

    s = sub.add_parser("inspect", help="decode a librewire COSE/CBOR object and check its signature")
    s.add_argument("file")
    s.set_defaults(func=cmd_inspect)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or usage error (2)
        return int(e.code or 0)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else logging.INFO, stream=sys.stderr,
                            format="%(name)s: %(message)s")
    try:
        return int(args.func(args))
    except rw.RewireError as e:
        print(f"rewire: error: {e} [{getattr(e, 'name', '?')}]", file=sys.stderr)
        return EXIT_ERROR
    except CliError as e:
        print(f"rewire: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except (OSError, ValueError, KeyError, ArithmeticError) as e:
        msg = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        where = f": {e.filename}" if isinstance(e, OSError) and e.filename else ""
        print(f"rewire: error: {msg}{where}", file=sys.stderr)
        return EXIT_ERROR
    except sqlite3.Error as e:
        print(f"rewire: error: ledger: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
