"""pacache engine: the state and the pure computations on it.

numpy, the standard library and compiled kernels of its own (``engine._kernels``: Cython,
built at install); an import-linter contract keeps grpc, protobuf, redis, loaders and
server out. Modules:
``codes`` (interning), ``money`` (exact rounding), ``state`` and ``table`` (storage),
``catalog`` (UoMs, sell rules), ``contexts`` and ``pricing`` (DESIGN §4), ``atp`` and
``promise`` (§5), ``events``, ``validate``, ``deltas`` and ``inventory_apply`` (§6),
``snapshot`` (§7), ``quote`` (batch evaluation), ``checksum`` (a state's logical digest),
``shared`` (left-right publication to reader processes, §9).

The functions ``quote`` and ``promise`` are not re-exported here: they would shadow the
submodules of the same name (``import engine.quote`` must give the module).
"""

from engine.checksum import state_checksum
from engine.deltas import ApplyResult, apply_batch, day_number
from engine.errors import (
    Conflict,
    InvalidInput,
    LimitExceeded,
    PacacheError,
    SnapshotError,
    StaleData,
    UnknownCode,
)
from engine.inventory_apply import hold_of
from engine.pricing import Policy
from engine.promise import PromisePlan
from engine.quote import LineStatus, QuoteResult
from engine.state import State

__all__ = [
    "ApplyResult",
    "Conflict",
    "InvalidInput",
    "LimitExceeded",
    "LineStatus",
    "PacacheError",
    "Policy",
    "PromisePlan",
    "QuoteResult",
    "SnapshotError",
    "StaleData",
    "State",
    "UnknownCode",
    "apply_batch",
    "day_number",
    "hold_of",
    "state_checksum",
]
