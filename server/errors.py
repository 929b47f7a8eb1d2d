"""Server-side errors and the one table that maps every error to a gRPC status code.

The engine's tree (``engine.errors``) is extended here with what only a server can say:

    PacacheError
    ├── … (engine.errors)
    ├── Unauthenticated     no or unknown bearer token
    ├── PermissionDenied    a token asking for an account or scope it does not hold
    ├── Overloaded          too many calls in flight: fail fast, let the client back off
    ├── NotServing          the state is not loaded, or a stream gap makes it untrustworthy
    ├── VersionTimeout      ``min_version`` not reached within the deadline
    ├── DeadlinePassed      the caller's deadline passed while the call waited its turn
    └── NotDurable          a change asked of a server with nowhere durable to keep it
"""

from __future__ import annotations

import grpc

from engine.errors import (
    Conflict,
    InvalidInput,
    LimitExceeded,
    PacacheError,
    SnapshotError,
    StaleData,
    UnknownCode,
)

__all__ = [
    "STATUS_OF",
    "DeadlinePassed",
    "NotDurable",
    "NotServing",
    "Overloaded",
    "PermissionDenied",
    "Unauthenticated",
    "VersionTimeout",
    "WalBroken",
    "status_of",
]


class Unauthenticated(PacacheError):
    """No bearer token, or one the server does not know."""


class PermissionDenied(PacacheError):
    """The token lacks the scope, or may not act for the account asked for."""


class Overloaded(PacacheError):
    """More calls in flight than the configured limit."""


class NotServing(PacacheError):
    """The state is not loaded or not trustworthy; ask again later or reload."""


class WalBroken(NotServing):
    """The write-ahead log could not be written (disk full, I/O error): nothing more can be
    made durable until the process restarts and the operator has looked. UNAVAILABLE, as
    any change refused for a server-side reason: the caller may send it again elsewhere."""


class VersionTimeout(PacacheError):
    """The state did not reach the requested ``min_version`` before the deadline."""


class DeadlinePassed(PacacheError):
    """The call's deadline passed before the engine got to it: the work is skipped."""


class NotDurable(PacacheError):
    """A change (Ingest, Reserve, Release) asked of a server that could not keep it: no
    ``--redis-url`` to publish it to and no ``--snapshot-dir`` for a write-ahead log."""


#: Most specific class first: the first ``isinstance`` match decides the code.
STATUS_OF: tuple[tuple[type[PacacheError], grpc.StatusCode], ...] = (
    (LimitExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (UnknownCode, grpc.StatusCode.NOT_FOUND),
    (Conflict, grpc.StatusCode.ALREADY_EXISTS),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (VersionTimeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (DeadlinePassed, grpc.StatusCode.DEADLINE_EXCEEDED),
    (NotDurable, grpc.StatusCode.FAILED_PRECONDITION),
    (NotServing, grpc.StatusCode.UNAVAILABLE),
    (StaleData, grpc.StatusCode.UNAVAILABLE),
    (SnapshotError, grpc.StatusCode.FAILED_PRECONDITION),
)


def status_of(error: PacacheError) -> grpc.StatusCode:
    """The gRPC status code for ``error`` (INTERNAL for an unmapped subclass)."""
    for kind, code in STATUS_OF:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL
