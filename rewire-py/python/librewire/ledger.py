"""The SDS's durable ledger: SQLite (WAL), one transaction per change.

Each transaction stores the core's ``Sds.to_bytes()`` snapshot together with
the human-facing tables (hosts, enclaves, migrations, proofs), so a crash
between any two steps loses nothing: the order is persisted *before* it is
sent (write-ahead), and a proof's effect and its raw bytes land together.
The tables only mirror what the core decided (``Sds.handle`` results); the
snapshot is the authority when the SDS restarts.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from ._rewire import (
    PLATFORM_AARCH64,
    PLATFORM_RISCV64,
    SIM_SM_MEASUREMENT,
    EnclaveRecord,
    LedgerEvent,
    RewireError,
    Sds,
    SigningKey,
    error_for_code,
    inspect,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS hosts (
    host_id BLOB PRIMARY KEY, name TEXT UNIQUE, certificate BLOB,
    atl INTEGER, endorsement BLOB, not_before INTEGER, not_after INTEGER,
    agent TEXT, platform TEXT);
CREATE TABLE IF NOT EXISTS enclaves (
    enclave_id BLOB PRIMARY KEY, name TEXT UNIQUE, measurement BLOB NOT NULL,
    min_atl INTEGER NOT NULL, policy BLOB NOT NULL,
    location BLOB NOT NULL, epoch INTEGER NOT NULL, platform TEXT);
CREATE TABLE IF NOT EXISTS migrations (
    request_id BLOB PRIMARY KEY, enclave_id BLOB NOT NULL,
    source BLOB NOT NULL, target BLOB NOT NULL, epoch INTEGER NOT NULL,
    deadline INTEGER NOT NULL, order_msg BLOB NOT NULL,
    state TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    host_id BLOB PRIMARY KEY, provenance TEXT NOT NULL, root BLOB, certificate BLOB,
    recorded REAL NOT NULL);
CREATE TABLE IF NOT EXISTS proofs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, request_id BLOB, enclave_id BLOB NOT NULL,
    kind TEXT NOT NULL, host BLOB NOT NULL, epoch INTEGER,
    message BLOB NOT NULL, received REAL NOT NULL);
"""

#: The schema this code writes (``PRAGMA user_version``). 0 is a ledger from
#: before versioning (0.1.0 before the host link): same tables, no hosts.agent.
#: 2 added platforms, which are inside every signed endorsement and policy.
SCHEMA_VERSION = 2

#: Upgrades, each in the transaction that sets the new version: from version k to k + 1
#: (none since platforms: nothing older than _OLDEST_READABLE can be upgraded).
_UPGRADES: Dict[int, List[str]] = {}

#: Ledgers older than this cannot be upgraded: their signed objects predate a field.
_OLDEST_READABLE = 2

#: Platform names (the ledger, the CLI) and their numbers in signed objects.
PLATFORMS = {"riscv64": PLATFORM_RISCV64, "aarch64": PLATFORM_AARCH64}


def platform_number(name: str) -> int:
    """The number of a platform name (``riscv64``, ``aarch64``)."""
    try:
        return PLATFORMS[name]
    except KeyError:
        raise ValueError(f"unknown platform {name!r}: one of {', '.join(PLATFORMS)}") from None


class LedgerVersionError(RewireError):
    """The ledger file was written by a newer librewire than this one."""

    code = 0
    name = "LedgerVersionError"


class NoSuchName(RewireError, KeyError):
    """A host or enclave name (or hex id) the ledger does not know."""

    code = 0
    name = "NoSuchName"

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "no such name"


#: migrations.state after each kind of proof.
_STATE_AFTER = {"released": "released", "activated": "completed", "aborted": "aborted"}


@dataclass(frozen=True)
class Order:
    """A signed, persisted migration order, ready to send to ``source``."""

    request_id: bytes
    enclave_id: bytes
    source: bytes
    target: bytes
    deadline: int
    message: bytes


def _proof_request_id(message: bytes) -> Optional[bytes]:
    """The request id inside a proof (decoded by the core's inspector)."""
    try:
        info = inspect(message)
        for entry in info.get("signed", {}).values():
            rid = entry.get("fields", {}).get("request_id")
            if rid:
                return bytes.fromhex(rid)
    except RewireError:
        pass
    return None


class Ledger:
    """Registry, request signing and ledger of one SDS, persisted in SQLite.

    ``on_step(name)`` is called after every committed transaction (for
    progress reporting and crash testing).

    Threads and processes: a ``Ledger`` object belongs to the thread that
    opened it (SQLite's ``check_same_thread``); open one per thread or
    process on the same file. Every change runs in an immediate transaction
    that starts from the durable snapshot, and every read of the core's
    state (``enclave``, ``is_settled``, ``audit``, ``snapshot``) reloads it
    inside a read transaction, so no object acts on a stale copy.
    """

    def __init__(
        self,
        path: "os.PathLike[str] | str",
        key: SigningKey,
        *,
        on_step: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.path = os.fspath(path)
        self._key = key
        self._on_step = on_step
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._migrate()
        row = self._db.execute("SELECT value FROM meta WHERE key='sds'").fetchone()
        if row is None:
            self._sds = Sds(key)
            with self._tx("init") as c:
                c.execute("INSERT OR REPLACE INTO meta VALUES ('sds_public_key', ?)", (key.public_key,))
        else:
            self._sds = Sds.from_bytes(key, bytes(row[0]))

    def _migrate(self) -> None:
        """Create or upgrade the schema to :data:`SCHEMA_VERSION` (refuses a newer one)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            v = db.execute("PRAGMA user_version").fetchone()[0]
            fresh = db.execute("SELECT name FROM sqlite_master WHERE name='hosts'").fetchone() is None
            if v > SCHEMA_VERSION:
                raise LedgerVersionError(f"{self.path}: ledger schema {v} is newer than this librewire's "
                                         f"({SCHEMA_VERSION}): upgrade librewire")
            if not fresh and v < _OLDEST_READABLE:
                raise LedgerVersionError(f"{self.path}: ledger schema {v} predates platforms: its signed "
                                         "endorsements and policies name none, so no order could be checked "
                                         "against them; start a new ledger and endorse the hosts again")
            for stmt in SCHEMA.split(";"):  # CREATE TABLE IF NOT EXISTS: also tables newer than an old file
                if stmt.strip():
                    db.execute(stmt)
            if not fresh:
                for k in range(v, SCHEMA_VERSION):
                    for stmt in _UPGRADES[k]:
                        db.execute(stmt)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _fresh(self) -> None:
        """Reload the core's state from the durable snapshot, inside a read transaction."""
        self._db.execute("BEGIN")
        try:
            self._reload()
        finally:
            self._db.execute("COMMIT")

    # -- transactions ---------------------------------------------------

    class _Tx:
        def __init__(self, ledger: "Ledger", step: str) -> None:
            self.ledger = ledger
            self.step = step

        def __enter__(self) -> sqlite3.Connection:
            self.ledger._db.execute("BEGIN IMMEDIATE")
            # Another process (another Ledger on the same file) may have
            # committed since: start every change from the durable snapshot,
            # never from a stale in-memory copy.
            self.ledger._reload()
            return self.ledger._db

        def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
            led = self.ledger
            if et is None:
                try:
                    led._db.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('sds', ?)", (led._sds.to_bytes(),)
                    )
                    led._db.execute("COMMIT")
                except BaseException:
                    led._db.execute("ROLLBACK")
                    led._reload()
                    raise
                if led._on_step is not None:
                    led._on_step(self.step)
            else:
                led._db.execute("ROLLBACK")
                led._reload()

    def _tx(self, step: str) -> "Ledger._Tx":
        return Ledger._Tx(self, step)

    def _reload(self) -> None:
        """Drop in-memory changes that did not commit: back to the durable snapshot."""
        row = self._db.execute("SELECT value FROM meta WHERE key='sds'").fetchone()
        self._sds = Sds(self._key) if row is None else Sds.from_bytes(self._key, bytes(row[0]))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def sds(self) -> Sds:
        """The core state machine (read it; change it only through the ledger)."""
        return self._sds

    @property
    def public_key(self) -> bytes:
        return self._sds.public_key

    # -- registry -------------------------------------------------------

    def add_host(
        self,
        host_id: bytes,
        certificate: bytes,
        *,
        name: Optional[str] = None,
    ) -> None:
        """Record a host (its device-signed SM certificate) before endorsing it."""
        with self._tx("host-added") as c:
            c.execute(
                "INSERT INTO hosts (host_id, name, certificate) VALUES (?, ?, ?) "
                "ON CONFLICT(host_id) DO UPDATE SET certificate=excluded.certificate, "
                "name=COALESCE(excluded.name, hosts.name)",
                (host_id, name, certificate),
            )

    def add_device_root(self, root: bytes) -> None:
        """Trust ``root`` (a manufacturer's or the operator's CA public key) to certify device keys."""
        with self._tx("device-root-added"):
            self._sds.add_device_root(root)

    def certify_device(self, certificate: bytes) -> bytes:
        """Record a device key's provenance from its device certificate (signed by a registered
        root, obtained out of band from the host). Returns the device key (the host id)."""
        with self._tx("device-certified") as c:
            return self._certify(c, certificate)

    def pin_device(self, host_id: bytes) -> None:
        """The operator vouches for a device key by hand (no root certified it): the explicit
        exception, recorded in the ledger (``devices`` table and the core's snapshot)."""
        with self._tx("device-pinned") as c:
            self._pin(c, host_id)

    def _certify(self, c: sqlite3.Connection, certificate: bytes, sm_certificate: Optional[bytes] = None) -> bytes:
        if sm_certificate is None:
            host_id = self._sds.certify_device(certificate)
        else:  # the device certificate must name the device of this SM certificate (PeerMismatch)
            host_id = self._sds.certify_device_of(certificate, sm_certificate)
        prov = self._sds.provenance(host_id)
        c.execute(
            "INSERT INTO devices VALUES (?, 'certified', ?, ?, ?) ON CONFLICT(host_id) DO UPDATE SET "
            "provenance='certified', root=excluded.root, certificate=excluded.certificate, "
            "recorded=excluded.recorded",
            (host_id, prov[1] if prov else None, certificate, time.time()),
        )
        return host_id

    def _pin(self, c: sqlite3.Connection, host_id: bytes) -> None:
        self._sds.pin_device(host_id)
        c.execute(
            "INSERT INTO devices VALUES (?, 'pinned', NULL, NULL, ?) ON CONFLICT(host_id) DO NOTHING",
            (host_id, time.time()),
        )

    def devices(self) -> List[sqlite3.Row]:
        """Every device key with provenance, and how it got it."""
        return list(self._db.execute("SELECT * FROM devices ORDER BY recorded"))

    def endorse_host(
        self,
        certificate: bytes,
        *,
        atl: int,
        platform: Optional[str] = None,
        sm_measurements: Sequence[bytes] = (SIM_SM_MEASUREMENT,),
        not_before: Optional[int] = None,
        not_after: Optional[int] = None,
        valid_for: int = 365 * 86400,
        name: Optional[str] = None,
        device_certificate: Optional[bytes] = None,
        pin: bool = False,
    ) -> bytes:
        """Endorse a host (the core verifies the certificate and signs a
        HostEndorsement with its platform — ``riscv64`` or ``aarch64``, what code it runs;
        by default the one it was endorsed for before, else ``riscv64``; a device's platform
        never changes (``PlatformMismatch``) —, ATL and validity). Its device key needs provenance:
        from earlier (:meth:`certify_device`, :meth:`pin_device`), or given here as
        ``device_certificate`` (which must name the certificate's device: ``PeerMismatch``
        otherwise) or ``pin=True``, in the same transaction: a refused endorsement records
        no provenance either. Returns the endorsement."""
        if device_certificate is not None and pin:
            raise error_for_code(702)  # InvalidArgument: one source of provenance
        if platform is None:
            device = bytes.fromhex(inspect(certificate)["fields"]["device"])
            row = self._db.execute("SELECT platform FROM hosts WHERE host_id = ?", (device,)).fetchone()
            platform = row[0] if row is not None and row[0] else "riscv64"
        number = platform_number(platform)
        nb = int(time.time()) - 60 if not_before is None else not_before
        na = nb + valid_for if not_after is None else not_after
        with self._tx("host-endorsed") as c:
            if device_certificate is not None:
                self._certify(c, device_certificate, certificate)
            elif pin:
                self._pin(c, bytes.fromhex(inspect(certificate)["fields"]["device"]))
            end = self._sds.endorse_host(certificate, list(sm_measurements), atl, nb, na, platform=number)
            info = inspect(end)
            host_id = bytes.fromhex(info["fields"]["host"])
            c.execute(
                "INSERT INTO hosts (host_id, name, certificate, atl, endorsement, not_before, not_after, platform) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(host_id) DO UPDATE SET "
                "certificate=excluded.certificate, atl=excluded.atl, endorsement=excluded.endorsement, "
                "not_before=excluded.not_before, not_after=excluded.not_after, platform=excluded.platform, "
                "name=COALESCE(excluded.name, hosts.name)",
                (host_id, name, certificate, atl, end, nb, na, platform),
            )
        return end

    def register_enclave(
        self,
        enclave_id: bytes,
        measurement: bytes,
        *,
        min_atl: int,
        host: bytes,
        platform: str = "riscv64",
        name: Optional[str] = None,
    ) -> bytes:
        """Register an enclave, its code built for ``platform``, placed on ``host`` at
        epoch 0; returns its signed policy. A host of another platform is
        ``PlatformMismatch``, and so is any later order to one."""
        number = platform_number(platform)
        with self._tx("enclave-registered") as c:
            policy = self._sds.register_enclave(enclave_id, measurement, min_atl, host, platform=number)
            c.execute(
                "INSERT INTO enclaves (enclave_id, name, measurement, min_atl, policy, location, epoch, platform) "
                "VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
                (enclave_id, name, measurement, min_atl, policy, host, platform),
            )
        return policy

    # -- requests -------------------------------------------------------

    def order(
        self,
        enclave_id: bytes,
        target: bytes,
        *,
        ttl: int = 3600,
        now: Optional[int] = None,
        request_id: Optional[bytes] = None,
    ) -> Order:
        """Sign a migration order (fresh random request id, deadline = now +
        ttl) and persist it before returning: send it only after this."""
        rid = os.urandom(16) if request_id is None else request_id
        deadline = (int(time.time()) if now is None else now) + ttl
        with self._tx("order-persisted") as c:
            msg = self._sds.order(enclave_id, target, rid, deadline)
            rec = self._sds.enclave(enclave_id)
            assert rec is not None and rec.migration is not None  # the core just opened it
            t = time.time()
            c.execute(
                "INSERT INTO migrations VALUES (?, ?, ?, ?, ?, ?, ?, 'ordered', ?, ?)",
                (rid, enclave_id, rec.location, target, rec.epoch, deadline, msg, t, t),
            )
        return Order(rid, enclave_id, rec.location, target, deadline, msg)

    def withdraw(self, order: Order) -> None:
        """Withdraw an order that was certainly never sent."""
        with self._tx("order-withdrawn") as c:
            self._sds.withdraw(order.enclave_id, order.request_id)
            c.execute(
                "UPDATE migrations SET state='withdrawn', updated=? WHERE request_id=?",
                (time.time(), order.request_id),
            )

    # -- proofs ---------------------------------------------------------

    def record(self, message: bytes) -> LedgerEvent:
        """Take a signed proof (RELEASE, ABORT, ACTIVE, DROPPED) from a host.
        The core verifies it and decides; the ledger stores the result and
        the raw proof in one transaction. Invalid, forged or stale proofs
        raise and change nothing."""
        with self._tx("proof") as c:
            ev = self._sds.handle(message)
            rid = _proof_request_id(message)
            t = time.time()
            c.execute(
                "INSERT INTO proofs (request_id, enclave_id, kind, host, epoch, message, received) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (rid, ev.enclave_id, ev.kind, ev.host, ev.epoch, message, t),
            )
            self._mirror_enclave(c, ev.enclave_id)
            state = _STATE_AFTER.get(ev.kind)
            if state is not None and rid is not None:
                c.execute(
                    "UPDATE migrations SET state=?, updated=? WHERE request_id=? AND state NOT IN ('completed', 'aborted')",
                    (state, t, rid),
                )
                if ev.kind == "activated":
                    # ACTIVE newer than the ledger proves the RELEASE too.
                    pass
        return ev

    def _mirror_enclave(self, c: sqlite3.Connection, enclave_id: bytes) -> None:
        rec = self._sds.enclave(enclave_id)
        if rec is not None:
            c.execute(
                "UPDATE enclaves SET location=?, epoch=? WHERE enclave_id=?",
                (rec.location, rec.epoch, enclave_id),
            )

    def resolution(self) -> List[Tuple[bytes, bytes]]:
        """What to re-send to settle in-doubt migrations: [(host, message)]
        (the core decides; its cleanup counters are persisted)."""
        with self._tx("resolution"):
            msgs = self._sds.resolution()
        return msgs

    def audit(self) -> List[Tuple[bytes, bytes]]:
        """Queries asking each enclave's host for its latest proof."""
        self._fresh()
        return self._sds.audit()

    def is_settled(self) -> bool:
        self._fresh()
        return self._sds.is_settled()

    def snapshot(self) -> bytes:
        self._fresh()
        return self._sds.to_bytes()

    # -- reading --------------------------------------------------------

    def enclave(self, enclave_id: bytes) -> Optional[EnclaveRecord]:
        self._fresh()
        return self._sds.enclave(enclave_id)

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> List[Dict[str, Any]]:
        cur = self._db.execute(sql, tuple(args))
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def hosts(self) -> List[Dict[str, Any]]:
        return self._rows("SELECT * FROM hosts ORDER BY rowid")

    def enclaves(self) -> List[Dict[str, Any]]:
        return self._rows("SELECT * FROM enclaves ORDER BY rowid")

    def migrations(self, enclave_id: Optional[bytes] = None) -> List[Dict[str, Any]]:
        if enclave_id is None:
            return self._rows("SELECT * FROM migrations ORDER BY created")
        return self._rows("SELECT * FROM migrations WHERE enclave_id=? ORDER BY created", (enclave_id,))

    def migration(self, request_id: bytes) -> Optional[Dict[str, Any]]:
        rows = self._rows("SELECT * FROM migrations WHERE request_id=?", (request_id,))
        return rows[0] if rows else None

    def proofs(self, request_id: Optional[bytes] = None) -> List[Dict[str, Any]]:
        if request_id is None:
            return self._rows("SELECT * FROM proofs ORDER BY id")
        return self._rows("SELECT * FROM proofs WHERE request_id=? ORDER BY id", (request_id,))

    def host_id(self, name_or_hex: str) -> bytes:
        """A host id from a registered name or a hex id (:class:`NoSuchName` otherwise)."""
        row = self._db.execute("SELECT host_id FROM hosts WHERE name=?", (name_or_hex,)).fetchone()
        if row is not None:
            return bytes(row[0])
        hid = _hex_id(name_or_hex, 32)
        if hid is None:
            raise NoSuchName(f"no such host {name_or_hex!r} (rewire host list)")
        return hid

    def set_agent(self, host_id: bytes, address: str) -> None:
        """Record where the host's agent listens (``HOST:PORT``)."""
        with self._tx("agent-set") as c:
            if c.execute("UPDATE hosts SET agent=? WHERE host_id=?", (address, host_id)).rowcount != 1:
                raise NoSuchName(f"no such host {host_id.hex()[:16]}")

    def agents(self) -> Dict[bytes, Tuple[str, str]]:
        """host id -> (name, agent address) for every host with an agent."""
        return {bytes(r["host_id"]): (r["name"], r["agent"]) for r in self.hosts() if r["agent"] and r["name"]}

    def host_name(self, host_id: bytes) -> str:
        row = self._db.execute("SELECT name FROM hosts WHERE host_id=?", (host_id,)).fetchone()
        return row[0] if row and row[0] else host_id.hex()[:16]

    def enclave_id(self, name_or_hex: str) -> bytes:
        row = self._db.execute("SELECT enclave_id FROM enclaves WHERE name=?", (name_or_hex,)).fetchone()
        if row is not None:
            return bytes(row[0])
        eid = _hex_id(name_or_hex, 16)
        if eid is None:
            raise NoSuchName(f"no such enclave {name_or_hex!r} (rewire ledger show)")
        return eid

    def iter_known_keys(self) -> Iterator[Tuple[bytes, str]]:
        """(public key, name) of the SDS, every host's device key and SM key."""
        yield self.public_key, "sds"
        for h in self.hosts():
            name = h["name"] or bytes(h["host_id"]).hex()[:16]
            yield bytes(h["host_id"]), f"{name} (device)"
            rec = self._sds.host(bytes(h["host_id"]))
            if rec is not None:
                yield rec.sm_key, f"{name} (SM)"


def _hex_id(text: str, n: int) -> Optional[bytes]:
    try:
        b = bytes.fromhex(text)
    except ValueError:
        return None
    return b if len(b) == n else None
