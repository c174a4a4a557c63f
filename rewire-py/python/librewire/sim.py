"""Simulated security monitors and an adversarial network.

:class:`Fleet` runs the real monitor state machine of rewire-core for every
host (software platform and enclave framework) on a network a script
controls packet by packet. :class:`FleetTransport` lets an external SDS
(:class:`rewire.Orchestrator`) drive a fleet; :func:`serve` relays a
:class:`rewire.StreamTransport` in another process to a fleet here.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Callable, Optional, Tuple

from ._rewire import Fleet, Packet
from .transport import read_frame, write_frame

__all__ = ["Fleet", "FleetTransport", "Packet", "serve"]

EventSink = Callable[[Tuple[bytes, bytes, str, str]], None]


class FleetTransport:
    """A :class:`rewire.Transport` onto a fleet without an attached SDS.
    ``receive`` runs the simulated network; when it is quiet, simulated time
    advances by ``quiet_ms`` (past the monitors' timeout) and monitors tick,
    which is what a real quiet period of ``timeout`` would do."""

    def __init__(self, fleet: Fleet, *, quiet_ms: int = 31_000, on_event: Optional[EventSink] = None) -> None:
        self.fleet = fleet
        self.quiet_ms = quiet_ms
        self.on_event = on_event

    def _events(self) -> None:
        if self.on_event is not None:
            for e in self.fleet.take_events():
                self.on_event(e)

    def send(self, host: bytes, message: bytes) -> None:
        self.fleet.send(host, message)

    def receive(self, timeout: float) -> Optional[bytes]:
        m = self.fleet.receive()
        self._events()
        if m is not None:
            return m
        self.fleet.advance(self.quiet_ms)
        self.fleet.tick()
        m = self.fleet.receive()
        self._events()
        return m


def serve(fleet: Fleet, reader: BinaryIO, writer: BinaryIO, transport: Optional[FleetTransport] = None) -> int:
    """Relay frames from a :class:`rewire.StreamTransport` to ``fleet`` until
    the stream ends (e.g. the SDS process died). Returns frames handled."""
    t = transport or FleetTransport(fleet)
    n = 0
    while True:
        try:
            f = read_frame(reader)
        except (OSError, ValueError):
            return n
        if f is None:
            return n
        n += 1
        if f[:1] == b"S" and len(f) >= 33:
            t.send(f[1:33], f[33:])
        elif f[:1] == b"R" and len(f) == 9:
            (ms,) = struct.unpack(">Q", f[1:])
            m = t.receive(ms / 1000)
            try:
                write_frame(writer, b"N" if m is None else b"M" + m)
            except OSError:
                return n
