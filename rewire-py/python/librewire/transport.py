"""How the SDS reaches hosts: a two-method protocol, and a framed stream
implementation (pipes, sockets) used across processes."""

from __future__ import annotations

import struct
from typing import BinaryIO, Optional

try:  # Python 3.8+: typing.Protocol
    from typing import Protocol
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol  # type: ignore


class Transport(Protocol):
    """Carries SDS-side messages. Untrusted: it may drop, duplicate, reorder
    or rewrite anything; the ledger moves only on signed proofs."""

    def send(self, host: bytes, message: bytes) -> None:
        """Send ``message`` to the host whose id is ``host`` (32 bytes)."""
        ...

    def receive(self, timeout: float) -> Optional[bytes]:
        """The next message for the SDS, or None after ``timeout`` seconds
        (for simulated transports: a quiet period of simulated time)."""
        ...


def _write_frame(w: BinaryIO, payload: bytes) -> None:
    w.write(struct.pack(">I", len(payload)) + payload)
    w.flush()


def _read_exact(r: BinaryIO, n: int) -> Optional[bytes]:
    buf = b""
    while len(buf) < n:
        chunk = r.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame(r: BinaryIO, limit: int = 1 << 20) -> Optional[bytes]:
    """One length-prefixed frame, or None at end of stream."""
    head = _read_exact(r, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    if n > limit:
        raise ValueError("frame too large")
    return _read_exact(r, n)


def write_frame(w: BinaryIO, payload: bytes) -> None:
    _write_frame(w, payload)


class StreamTransport:
    """Transport over a pair of binary streams to a relay (see
    :func:`rewire.sim.serve`). Frames: ``S host msg`` (send), ``R ms``
    (receive request); answers ``M msg`` or ``N`` (nothing)."""

    def __init__(self, reader: BinaryIO, writer: BinaryIO) -> None:
        self._r = reader
        self._w = writer

    def send(self, host: bytes, message: bytes) -> None:
        if len(host) != 32:
            raise ValueError("host id must be 32 bytes")
        _write_frame(self._w, b"S" + host + message)

    def receive(self, timeout: float) -> Optional[bytes]:
        _write_frame(self._w, b"R" + struct.pack(">Q", int(timeout * 1000)))
        f = read_frame(self._r)
        if f is None:
            raise EOFError("relay closed the stream")
        if f[:1] == b"M":
            return f[1:]
        return None
