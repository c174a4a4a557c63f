"""Drive migrations to hosts over a transport, to a settled ledger.

The loop only carries bytes: the core signs orders, judges proofs
(``Sds.handle``), and says what to re-send when something is in doubt
(``Sds.resolution``) and what to ask hosts (``Sds.audit``). Every change is
committed by the :class:`~rewire.Ledger` before anything is sent.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from ._rewire import LedgerEvent, RewireError, StateError, error_for_code
from .ledger import Ledger, Order
from .transport import Transport

log = logging.getLogger("librewire")


class MigrationAborted(StateError):
    """The migration was aborted: the source kept the enclave and runs it
    (a decided outcome, from the source's signed ABORT). ``.outcome`` says
    where the enclave is."""

    code = 0
    name = "MigrationAborted"

    def __init__(self, outcome: "MigrationOutcome") -> None:
        super().__init__(f"migration {outcome.request_id.hex()} aborted: the enclave stays at its source "
                         f"(epoch {outcome.epoch})")
        self.outcome = outcome


class OutcomeInDoubt(StateError, TimeoutError):
    """Gave up waiting: the ledger has no decided outcome for the migration
    yet (``.state`` is "ordered" or "released"). Nothing is lost: the enclave
    is runnable at exactly one place once the hosts are reached again, and
    :meth:`Orchestrator.settle` (or ``rewire resolve``) finishes it. Also a
    Python :class:`TimeoutError`."""

    code = 0
    name = "OutcomeInDoubt"

    def __init__(self, request_id: bytes, state: str) -> None:
        super().__init__(f"gave up waiting for migration {request_id.hex()}: state {state!r}, outcome in doubt "
                         f"(run settle/`rewire resolve` once the hosts are reachable)")
        self.request_id = request_id
        self.state = state


@dataclass(frozen=True)
class MigrationOutcome:
    """How a migration ended, as the ledger records it from signed proofs."""

    request_id: bytes
    enclave_id: bytes
    #: "completed" (the target runs it), "aborted" (the source kept it), or
    #: "released" (the source committed; the target's ACTIVE not yet seen).
    state: str
    location: bytes
    epoch: int


class Orchestrator:
    """Orders migrations and settles them: acks are the hosts' signed proofs;
    each quiet ``timeout`` is a retry round in which the core's resolution is
    re-sent; when nothing is in doubt an audit asks hosts for proofs the
    ledger may have missed (e.g. after an SDS crash)."""

    def __init__(
        self,
        ledger: Ledger,
        transport: Transport,
        *,
        timeout: float = 5.0,
        retries: int = 50,
        on_step: Optional[Callable[[str], None]] = None,
        on_event: Optional[Callable[[LedgerEvent], None]] = None,
    ) -> None:
        self.ledger = ledger
        self.transport = transport
        self.timeout = timeout
        self.retries = retries
        self._on_step = on_step
        self._on_event = on_event

    def _step(self, name: str) -> None:
        if self._on_step is not None:
            self._on_step(name)

    def send_order(self, order: Order) -> None:
        self.transport.send(order.source, order.message)
        self._step("order-sent")

    def migrate(self, enclave_id: bytes, target: bytes, *, ttl: int = 3600) -> MigrationOutcome:
        """Order a migration (persisted first), send it, and return as soon
        as the ledger records its outcome: the target's ACTIVE ("completed").
        Raises the core's error if the order is refused (e.g.
        AuthorisationError for an ATL below the enclave's policy),
        :class:`MigrationAborted` if the source's ABORT is recorded, and
        :class:`OutcomeInDoubt` after ``retries`` quiet rounds without an
        outcome (each round re-sends the core's resolution)."""
        order = self.ledger.order(enclave_id, target, ttl=ttl)
        log.info("order %s persisted; sending to the source", order.request_id.hex())
        self.send_order(order)
        return self.wait(order.request_id)

    def wait(self, request_id: bytes) -> MigrationOutcome:
        """Take proofs until migration ``request_id`` is decided (see :meth:`migrate`)."""
        self._wait_all([request_id])
        out = self._result(request_id, raise_=True)  # raises unless completed
        assert isinstance(out, MigrationOutcome)  # safe: _result raised otherwise
        return out

    def migrate_many(
        self, jobs: Sequence[Tuple[bytes, bytes]], *, ttl: int = 3600
    ) -> List[Union[MigrationOutcome, RewireError]]:
        """Order many migrations at once (``(enclave_id, target)`` each) and wait for all of
        them in one loop: their protocol runs overlap on the hosts. Returns, per job in
        order, its :class:`MigrationOutcome` or the error that ended it (a refused order,
        :class:`MigrationAborted`, :class:`OutcomeInDoubt`); never raises for one job."""
        results: List[Union[MigrationOutcome, RewireError, None]] = [None] * len(jobs)
        rids: Dict[int, bytes] = {}
        for i, (eid, target) in enumerate(jobs):
            try:
                order = self.ledger.order(eid, target, ttl=ttl)
            except RewireError as e:
                results[i] = e
                continue
            self.send_order(order)
            rids[i] = order.request_id
        self._wait_all(list(rids.values()))
        for i, rid in rids.items():
            results[i] = self._result(rid, raise_=False)
        return [r for r in results if r is not None]

    def _result(self, request_id: bytes, *, raise_: bool) -> Union[MigrationOutcome, RewireError]:
        out = self.outcome(request_id)
        if out.state == "completed":
            return out
        err: RewireError = (MigrationAborted(out) if out.state in ("aborted", "withdrawn")
                            else OutcomeInDoubt(request_id, out.state))
        if raise_:
            raise err
        return err

    def _wait_all(self, request_ids: List[bytes]) -> None:
        """Rounds until every one is decided or ``retries`` rounds passed; each round takes
        proofs for a quiet period or ``timeout`` in all, then re-sends the core's resolution."""
        for _ in range(self.retries):
            if self._receive_until(request_ids):
                return
            for host, msg in self.ledger.resolution():
                self.transport.send(host, msg)
            self._step("resolution-sent")

    def _decided(self, request_id: bytes) -> bool:
        row = self.ledger.migration(request_id)
        return row is not None and row["state"] in ("completed", "aborted", "withdrawn")

    def _receive_until(self, request_ids: List[bytes]) -> bool:
        """Take proofs until all ``request_ids`` are decided (True), or for one round (False)."""

        def decided() -> bool:
            return all(self._decided(r) for r in request_ids)

        self._round(decided)
        return decided()

    def _round(self, done: Callable[[], bool]) -> bool:
        """Take proofs until ``done()``, a quiet period, or ``timeout`` in all, whichever is
        first (a host that streams stale proofs cannot keep a round open). True if the
        ledger changed."""
        changed = False
        deadline = time.monotonic() + self.timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            msg = self.transport.receive(left)
            if msg is None:
                break
            changed = self._take(msg) or changed
        return changed

    def _take(self, msg: bytes) -> bool:
        try:
            ev = self.ledger.record(msg)
        except RewireError as e:
            # Duplicates and stale proofs are normal on a lossy network.
            log.debug("proof not taken: %s", e)
            return False
        log.info("ledger: %s at epoch %s", ev.kind, ev.epoch)
        if self._on_event is not None:
            self._on_event(ev)
        return True

    def outcome(self, request_id: bytes) -> MigrationOutcome:
        row = self.ledger.migration(request_id)
        if row is None:
            raise error_for_code(405)
        rec = self.ledger.enclave(bytes(row["enclave_id"]))
        assert rec is not None
        return MigrationOutcome(request_id, bytes(row["enclave_id"]), row["state"], rec.location, rec.epoch)

    def _receive_all(self) -> bool:
        """Take proofs for one round; True if the ledger changed."""
        return self._round(lambda: False)

    def settle(self) -> int:
        """Bring every migration in the ledger to a decided state (also after
        a restart: this is recovery), then audit the hosts until an audit
        changes nothing. Returns the rounds used; raises
        :class:`OutcomeInDoubt` after ``retries`` rounds without settling."""
        for rnd in range(self.retries):
            self._receive_all()
            if self.ledger.is_settled():
                before = self.ledger.snapshot()
                for host, msg in self.ledger.audit():
                    self.transport.send(host, msg)
                self._step("audit-sent")
                self._receive_all()
                if self.ledger.is_settled() and self.ledger.snapshot() == before:
                    return rnd
                continue
            for host, msg in self.ledger.resolution():
                self.transport.send(host, msg)
            self._step("resolution-sent")
        pending = [m for m in self.ledger.migrations() if m["state"] not in ("completed", "aborted", "withdrawn")]
        if pending:
            raise OutcomeInDoubt(bytes(pending[0]["request_id"]), pending[0]["state"])
        raise OutcomeInDoubt(b"", "audit still changing the ledger")
