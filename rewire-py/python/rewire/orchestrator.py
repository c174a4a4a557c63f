"""Drive migrations to hosts over a transport, to a settled ledger.

The loop only carries bytes: the core signs orders, judges proofs
(``Sds.handle``), and says what to re-send when something is in doubt
(``Sds.resolution``) and what to ask hosts (``Sds.audit``). Every change is
committed by the :class:`~rewire.Ledger` before anything is sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Optional

from ._rewire import LedgerEvent, RewireError, error_for_code
from .ledger import Ledger, Order
from .transport import Transport

log = logging.getLogger("rewire")


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
        """Order a migration (persisted first), send it, and settle. Raises
        the core's error if the order is refused (e.g. AuthorisationError for
        an ATL below the enclave's policy)."""
        order = self.ledger.order(enclave_id, target, ttl=ttl)
        log.info("order %s persisted; sending to the source", order.request_id.hex())
        self.send_order(order)
        self.settle()
        return self.outcome(order.request_id)

    def outcome(self, request_id: bytes) -> MigrationOutcome:
        row = self.ledger.migration(request_id)
        if row is None:
            raise error_for_code(405)
        rec = self.ledger.enclave(bytes(row["enclave_id"]))
        assert rec is not None
        return MigrationOutcome(request_id, bytes(row["enclave_id"]), row["state"], rec.location, rec.epoch)

    def _receive_all(self) -> bool:
        """Take proofs until a quiet period; True if the ledger changed."""
        changed = False
        while True:
            msg = self.transport.receive(self.timeout)
            if msg is None:
                return changed
            try:
                ev = self.ledger.record(msg)
            except RewireError as e:
                # Duplicates and stale proofs are normal on a lossy network.
                log.debug("proof not taken: %s", e)
                continue
            changed = True
            log.info("ledger: %s at epoch %s", ev.kind, ev.epoch)
            if self._on_event is not None:
                self._on_event(ev)

    def settle(self) -> int:
        """Bring every migration in the ledger to a decided state (also after
        a restart: this is recovery). Returns the rounds used; raises
        rewire.TimeoutError after ``retries`` rounds without settling."""
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
        raise error_for_code(408)
