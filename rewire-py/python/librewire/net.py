"""The SDS's side of the host link: TCP with mutual TLS to each host's
``rewire-agent`` (docs/transport.md).

:class:`TcpTransport` is a :class:`rewire.Transport` over agents: the
:class:`rewire.Orchestrator` (or ``rewire migrate``) drives real hosts with
it. Frames are encoded and decoded by the core (``rewire_core::link``);
this module only opens sockets. Everything the link carries is untrusted:
the ledger moves only on signed proofs.

TLS: the SDS presents ``sds.pem`` (DNS name ``sds.rewire.invalid``) issued by
the operator's CA; an agent must present a certificate from the same CA for
``NAME.agent.rewire.invalid``, NAME being the host's name in the ledger.
``rewire-agent cert`` issues both.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional, Tuple, Union

from . import _rewire as rw

log = logging.getLogger("librewire.net")

# Link frame types (rewire_core::link::Kind).
K_HELLO, K_INFO, K_TO_MONITOR, K_FROM_MONITOR, K_COMMAND, K_REPORT, K_PEERS, K_PEER, K_ERROR, K_STATS = range(1, 11)
# Reports and commands of the reference monitor's host program (monitor/abi.h).
F_EVENT, F_RESULT, F_STATUS, F_PROBE = 4, 5, 6, 7
F_SDS, F_LAUNCH, F_RUN, F_STATUS_REQ, F_PROBE_REQ, F_OFF = 32, 35, 36, 37, 38, 39
#: Monitor events (F_EVENT), by number.
EVENTS = {1: "validated", 2: "frozen", 3: "channel up", 4: "offered", 5: "offer accepted", 6: "target verified",
          7: "stream done", 8: "pending ready", 9: "committed", 10: "activated", 11: "aborted", 12: "dropped"}


def agent_dns_name(name: str) -> str:
    """The DNS name in the certificate of host ``name``'s agent."""
    return f"{name}.agent.rewire.invalid"


class AgentError(rw.RewireError, ConnectionError):
    """An agent could not be reached, refused us, or closed the link; the
    text names the host and says why. Also a Python ConnectionError."""

    code = 0
    name = "AgentError"


@dataclass(frozen=True)
class LinkTls:
    """The SDS's credentials on the link: the operator CA and its own certificate and key (PEM files)."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def from_dir(cls, d: Union[str, Path]) -> "LinkTls":
        """``d/ca.pem``, ``d/sds.pem``, ``d/sds.key`` (what ``rewire-agent cert`` writes)."""
        d = Path(d)
        return cls(d / "ca.pem", d / "sds.pem", d / "sds.key")

    def context(self) -> ssl.SSLContext:
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.minimum_version = ssl.TLSVersion.TLSv1_3
        c.load_verify_locations(cafile=str(self.ca))
        c.load_cert_chain(str(self.cert), str(self.key))
        return c


@dataclass(frozen=True)
class Agent:
    """Where a host's agent listens."""

    name: str
    address: str  # "host:port"

    def endpoint(self) -> Tuple[str, int]:
        host, _, port = self.address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"bad agent address {self.address!r} (expected HOST:PORT)")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class AgentInfo:
    """What a host's monitor says of itself (its agent relays the monitor's HELLO)."""

    host_id: bytes
    sm_measurement: bytes
    enclave_measurement: bytes
    certificate: bytes


Report = Tuple[bytes, int, bytes]  # (host id, monitor frame type, payload)
#: Seconds a send may block on an agent that does not read.
SEND_TIMEOUT = 30.0
#: Messages from monitors waiting for the orchestrator; beyond, the oldest go (the protocol re-sends).
INBOX = 4096


class _Conn:
    """One TLS connection to an agent: a reader thread, and senders from any
    thread. OpenSSL objects must not be used from two threads at once, so TLS
    runs on memory BIOs under a lock and no lock is held while the socket
    blocks for reading (the same shape as the agent's own connections)."""

    def __init__(self, host_id: bytes, agent: Agent, tls: ssl.SSLContext, timeout: float,
                 on_frame: Callable[["_Conn", int, bytes], None]) -> None:
        self.host_id = host_id
        self.agent = agent
        host, port = agent.endpoint()
        try:
            self.raw = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise AgentError(f"cannot reach the agent of {agent.name} at {agent.address}: {e.strerror or e}") from None
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = tls.wrap_bio(self._in, self._out, server_hostname=agent_dns_name(agent.name))
        self._lock = threading.Lock()  # the TLS object
        self._send_lock = threading.Lock()  # the socket's write side, in record order
        try:
            deadline = time.monotonic() + timeout
            self._handshake(deadline)
            self._exact_name()
        except ssl.SSLCertVerificationError as e:
            self.raw.close()
            raise AgentError(f"the agent at {agent.address} is not {agent.name}'s: {e.verify_message}") from None
        except (ssl.SSLError, OSError, EOFError) as e:
            self.raw.close()
            raise AgentError(f"TLS with the agent of {agent.name} at {agent.address} failed: {e}") from None
        # Reads wait as long as they must (the reader loops on timeouts); a send
        # to an agent that stopped reading fails after this instead of hanging.
        self.raw.settimeout(SEND_TIMEOUT)
        self._on_frame = on_frame
        self.closed = threading.Event()
        self.why = ""
        threading.Thread(target=self._read, daemon=True, name=f"rewire-agent-{agent.name}").start()

    def _exact_name(self) -> None:
        """The certificate names exactly this agent: one DNS name, no wildcard (a role is a name)."""
        cert: Dict[str, Any] = dict(self._tls.getpeercert() or {})
        sans: Tuple[Tuple[str, str], ...] = tuple(cert.get("subjectAltName", ()))
        names = [v for k, v in sans if k == "DNS"]
        if names != [agent_dns_name(self.agent.name)]:
            raise ssl.SSLCertVerificationError(
                f"the certificate must name exactly {agent_dns_name(self.agent.name)}, not {names}")

    def _handshake(self, deadline: float) -> None:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise OSError("handshake took too long")
            self.raw.settimeout(left)
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.raw.sendall(self._out.read())
                data = self.raw.recv(1 << 16)
                if not data:
                    raise EOFError("the agent closed the connection during the handshake")
                self._in.write(data)
        self.raw.sendall(self._out.read())

    def send(self, kind: int, payload: bytes) -> None:
        frame = rw.link_encode(kind, payload)
        try:
            with self._send_lock:
                with self._lock:
                    view = memoryview(frame)
                    while view:  # a whole frame or nothing: never a partial one in the stream
                        view = view[self._tls.write(view):]
                    data = self._out.read()
                self.raw.sendall(data)
        except (OSError, ssl.SSLError) as e:
            self.close(f"send: {e}")
            raise AgentError(f"the link to {self.agent.name} broke: {e}") from None

    def _read(self) -> None:
        dec = rw.LinkDecoder()
        # The handshake may have taken records the agent sent right after it
        # (its backlog): they are in the BIO already, so look before blocking.
        first = True
        try:
            while True:
                if first:
                    first, data = False, b""
                else:
                    try:
                        data = self.raw.recv(1 << 16)
                    except socket.timeout:
                        continue  # the send timeout; reading waits on
                    if not data:
                        self.close("closed by the agent")
                        return
                plain = b""
                with self._lock:
                    if data:
                        self._in.write(data)
                    while True:
                        try:
                            chunk = self._tls.read(1 << 16)
                        except ssl.SSLWantReadError:
                            break
                        except ssl.SSLZeroReturnError:
                            self.close("closed by the agent")
                            break
                        if not chunk:
                            break
                        plain += chunk
                # Anything TLS wants to say back (rare in TLS 1.3) goes out with the next send.
                if plain:
                    dec.push(plain)
                    while True:
                        f = dec.next()
                        if f is None:
                            break
                        self._on_frame(self, f[0], f[1])
                if self.closed.is_set():
                    return
        except rw.RewireError as e:
            self.close(f"the agent sent a bad frame: {e}")
        except (OSError, ssl.SSLError) as e:
            self.close(f"receive: {e}")
        except Exception as e:  # noqa: BLE001 - a callback's or a parser's: never a silently dead reader
            log.warning("link to %s: %r: closing", self.agent.name, e)
            self.close(f"internal: {e!r}")

    def close(self, why: str = "closed") -> None:
        if not self.closed.is_set():
            self.why = why
            self.closed.set()
            try:
                self.raw.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                self.raw.close()
            except OSError:
                pass


class TcpTransport:
    """A :class:`rewire.Transport` to hosts through their agents.

    ``agents`` maps host ids to :class:`Agent`. Connections open on first use
    and reopen after a failure; on each (re)connection the SDS sends the
    agent the peer directory (every agent's name, host id and address).
    ``on_report(host_id, ftype, payload)`` sees what monitors report
    (events, command results, status). Thread-safe.
    """

    def __init__(self, agents: Dict[bytes, Agent], tls: LinkTls, *, connect_timeout: float = 5.0,
                 on_report: Optional[Callable[[bytes, int, bytes], None]] = None,
                 send_directory: bool = True) -> None:
        self.agents = dict(agents)
        self._tls = tls.context()
        self._timeout = connect_timeout
        self._inbox: "queue.Queue[bytes]" = queue.Queue(INBOX)
        self._conns: Dict[bytes, _Conn] = {}
        self._lock = threading.Lock()
        self._host_locks: Dict[bytes, threading.Lock] = {}
        self._send_directory = send_directory
        self.unreachable: Dict[bytes, str] = {}
        self._info: Dict[bytes, AgentInfo] = {}
        self._stats: Dict[bytes, Dict[str, int]] = {}
        self._info_cv = threading.Condition()
        self.on_report = on_report

    # -- connections
    def _directory(self) -> bytes:
        return rw.link_directory([(h, a.name, a.address) for h, a in self.agents.items()])

    def connection(self, host: bytes) -> _Conn:
        """The open connection to ``host``'s agent (opened if needed). Raises :class:`AgentError`.
        One host's slow agent never holds up another's: each host has its own lock."""
        with self._lock:
            agent = self.agents.get(host)
            if agent is None:
                raise AgentError(f"no agent known for host {host.hex()[:16]}")
            lock = self._host_locks.setdefault(host, threading.Lock())
        with lock:
            c = self._conns.get(host)
            if c is not None and not c.closed.is_set():
                return c
            try:
                c = _Conn(host, agent, self._tls, self._timeout, self._frame)
            except AgentError as e:
                self.unreachable[host] = str(e)
                raise
            self.unreachable.pop(host, None)
            with self._lock:
                self._conns[host] = c
            if self._send_directory:
                c.send(K_PEERS, self._directory())
            c.send(K_HELLO, b"")
        log.info("link to %s (%s) up", agent.name, agent.address)
        return c

    def connect_all(self, hosts: Optional[Iterable[bytes]] = None) -> None:
        """Open these hosts' (default: every agent's) connections now: clear errors up front."""
        for h in (self.agents if hosts is None else hosts):
            self.connection(h)

    def _frame(self, c: _Conn, kind: int, payload: bytes) -> None:
        host = c.host_id
        if kind == K_FROM_MONITOR:
            while True:
                try:
                    self._inbox.put_nowait(payload)
                    break
                except queue.Full:
                    try:
                        self._inbox.get_nowait()
                        log.warning("SDS inbox full: the oldest message from the hosts dropped")
                    except queue.Empty:
                        pass
        elif kind == K_INFO:
            hid, sm, em, cert = rw.link_info(payload)
            with self._info_cv:
                self._info[host] = AgentInfo(hid, sm, em, cert)
                self._info_cv.notify_all()
        elif kind == K_STATS:
            stats: Dict[str, int] = {}
            for line in payload.decode("utf-8", "replace").splitlines():
                key, _, value = line.rpartition(" ")
                if key and value.isascii() and value.isdigit() and len(value) <= 20:
                    stats[key] = int(value)
            with self._info_cv:
                self._stats[host] = stats
                self._info_cv.notify_all()
        elif kind == K_REPORT and payload:
            if self.on_report is not None:
                self.on_report(host, payload[0], payload[1:])
        elif kind == K_ERROR:
            code, text = rw.link_error(payload)
            log.warning("agent %s closed the link: %s (%d)", c.agent.name, text, code)
            c.close(f"the agent refused: {text}")
        else:
            log.warning("agent %s sent frame type %d: closing", c.agent.name, kind)
            c.close(f"unexpected frame type {kind}")

    # -- Transport
    def send(self, host: bytes, message: bytes) -> None:
        """Send an SDS message to ``host``'s monitor. The link is lossy by
        contract: a host that cannot be reached is logged, and the
        orchestrator's next round re-sends."""
        for attempt in (0, 1):
            try:
                self.connection(host).send(K_TO_MONITOR, message)
                return
            except AgentError as e:
                if attempt:
                    log.warning("%s", e)

    def receive(self, timeout: float) -> Optional[bytes]:
        try:
            return self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    # -- operator commands
    def _ask(self, host: bytes, kind: int, table: Dict[bytes, Any], what: str, timeout: float) -> Any:
        table.pop(host, None)
        c = self.connection(host)
        c.send(kind, b"")
        deadline = time.monotonic() + timeout
        with self._info_cv:
            while host not in table:
                left = deadline - time.monotonic()
                if left <= 0 or c.closed.is_set():
                    why = c.why or f"no answer in {timeout:.0f} s"
                    raise AgentError(f"the agent of {c.agent.name} did not {what}: {why}")
                self._info_cv.wait(min(left, 0.1))
            return table[host]

    def info(self, host: bytes, timeout: float = 10.0) -> AgentInfo:
        """The monitor's identity as its agent reports it (raises AgentError after ``timeout``)."""
        info: AgentInfo = self._ask(host, K_HELLO, self._info, "say who its monitor is", timeout)
        return info

    def stats(self, host: bytes, timeout: float = 10.0) -> Dict[str, int]:
        """The agent's counters (``peer_bytes_sent host-B``: TLS bytes its monitor sent to host-B's, drops, ...)."""
        st: Dict[str, int] = self._ask(host, K_STATS, self._stats, "send its counters", timeout)
        return st

    def command(self, host: bytes, ftype: int, payload: bytes = b"") -> None:
        """Pass an operator command (F_LAUNCH, F_RUN, F_STATUS_REQ, ...) to the host."""
        self.connection(host).send(K_COMMAND, bytes([ftype]) + payload)

    def close(self) -> None:
        with self._lock:
            for c in self._conns.values():
                c.close()
            self._conns.clear()

    def __enter__(self) -> "TcpTransport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe_agent(address: str, name: str, tls: LinkTls, timeout: float = 10.0) -> AgentInfo:
    """Ask the agent at ``address`` (whose certificate must name ``name``) who its monitor is.
    Sends no directory: the agent keeps the one the SDS gave it."""
    t = TcpTransport({b"?" * 32: Agent(name, address)}, tls, connect_timeout=timeout, send_directory=False)
    try:
        return t.info(b"?" * 32, timeout)
    finally:
        t.close()


def decode_event(payload: bytes) -> Tuple[str, bytes, int]:
    """An F_EVENT report: (event name, request id, reason code)."""
    if len(payload) != 24:
        raise ValueError("not an event report")
    e, req, why = struct.unpack("<I16sI", payload)
    return EVENTS.get(e, f"event {e}"), req, why
