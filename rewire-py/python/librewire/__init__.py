"""librewire for Python.

The SDS control plane (keys, registry, request signing, a durable SQLite
ledger, orchestration over a pluggable transport), simulated security
monitors (:mod:`rewire.sim`) and the ``rewire`` CLI. Every protocol decision
is made by the Rust core (``rewire-core``); this package stores and carries
bytes.
"""

import logging as _logging

from ._rewire import (
    SIM_SM_MEASUREMENT,
    PLATFORM_RISCV64,
    PLATFORM_AARCH64,
    ApiError,
    AuthorisationError,
    ChannelError,
    DecodeError,
    EnclaveRecord,
    HostIdentity,
    HostRecord,
    IntegrityError,
    LedgerEvent,
    MigrationRecord,
    PlatformError,
    ReplayError,
    RewireError,
    RollbackError,
    Sds,
    SigningKey,
    StateError,
    MigrationTimeout,
    __version__,
    error_codes,
    error_for_code,
    device_public_key,
    inspect,
    sha256,
)
from .ledger import Ledger, Order
from .net import Agent, AgentError, AgentInfo, LinkTls, TcpTransport
from .orchestrator import MigrationAborted, MigrationOutcome, Orchestrator, OutcomeInDoubt
from .transport import StreamTransport, Transport

_logging.getLogger("librewire").addHandler(_logging.NullHandler())

#: Deprecated name of :class:`MigrationTimeout` (not exported by ``import *``:
#: it would shadow Python's TimeoutError).
TimeoutError = MigrationTimeout

__all__ = [
    "SIM_SM_MEASUREMENT",
    "PLATFORM_RISCV64",
    "PLATFORM_AARCH64",
    "Agent",
    "AgentError",
    "AgentInfo",
    "ApiError",
    "AuthorisationError",
    "ChannelError",
    "DecodeError",
    "EnclaveRecord",
    "HostIdentity",
    "HostRecord",
    "IntegrityError",
    "Ledger",
    "LedgerEvent",
    "LinkTls",
    "MigrationAborted",
    "MigrationOutcome",
    "MigrationRecord",
    "MigrationTimeout",
    "Orchestrator",
    "OutcomeInDoubt",
    "Order",
    "PlatformError",
    "ReplayError",
    "RewireError",
    "RollbackError",
    "Sds",
    "SigningKey",
    "StateError",
    "StreamTransport",
    "TcpTransport",
    "Transport",
    "__version__",
    "device_public_key",
    "error_codes",
    "error_for_code",
    "inspect",
    "sha256",
]
