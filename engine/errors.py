"""The one rooted error tree of pacache.

Every error the engine raises derives from :class:`PacacheError`, so an adapter catches one
type and maps it to a transport status in one table (``server`` does it for gRPC)::

    PacacheError
    ├── InvalidInput          a request or event field is malformed or out of its limit
    │   └── LimitExceeded     too many lines, too large a batch (the limit is named)
    ├── UnknownCode           a code (account, location, region …) that is not in the state
    ├── Conflict              an idempotency key reused with other content
    ├── SnapshotError         a snapshot that is missing, torn or fails its checksum
    └── StaleData             data the state cannot vouch for (a stream gap): reload needed

Per-line problems (unknown SKU, no price, blocked item) are *not* exceptions: they are line
statuses in a batch answer, so one bad line never fails the call.
"""

from __future__ import annotations

__all__ = [
    "SHOWN_CHARS",
    "Conflict",
    "InvalidInput",
    "LimitExceeded",
    "PacacheError",
    "SnapshotError",
    "StaleData",
    "UnknownCode",
    "shown",
]

#: How much of a caller's value an error message quotes: enough to recognise it, never a
#: megabyte echoed back (a gRPC error travels in trailing metadata, capped at 8 KB).
SHOWN_CHARS = 64


def shown(value: object, limit: int = SHOWN_CHARS, *, quote: bool = True) -> str:
    """``value`` for an error message: ``repr`` (or ``str`` with ``quote=False``), cut to
    ``limit`` characters with the full length said, e.g. ``'AAAA…' (1048576 chars)``."""
    text = repr(value) if quote else str(value)
    if len(text) <= limit:
        return text
    length = len(value) if isinstance(value, (str, bytes)) else len(text)
    return f"{text[:limit]}… ({length} chars)"


class PacacheError(Exception):
    """Root of every error pacache raises on purpose."""


class InvalidInput(PacacheError):
    """A field is malformed or out of range. ``field`` names it, ``limit`` states the rule."""

    def __init__(self, field: str, problem: str, limit: str | None = None) -> None:
        self.field = field
        self.problem = problem
        self.limit = limit
        text = f"{field}: {problem}"
        if limit:
            text += f" (limit: {limit})"
        super().__init__(text)


class LimitExceeded(InvalidInput):
    """A request or batch is larger than a configured limit."""


class UnknownCode(PacacheError):
    """A code that must already exist (an account, a region, a location) does not."""

    def __init__(self, field: str, code: str) -> None:
        self.field = field
        self.code = code
        super().__init__(f"{field}: unknown code {shown(code)}")


class Conflict(PacacheError):
    """The same idempotency key was used with different content."""


class SnapshotError(PacacheError):
    """A snapshot cannot be loaded: missing files, wrong format version, bad checksum."""


class StaleData(PacacheError):
    """The state cannot vouch for some data (e.g. a stream was trimmed past our position)."""
