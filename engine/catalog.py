"""Item master rules: UoM conversion, line statuses and sell rules (DESIGN §2).

Every item has a base UoM (factor 1) and up to ``MAX_UOMS - 1`` alternates with positive
integer factors to base. A line's base quantity is ``qty × factor`` and must not exceed
``MAX_BASE_QTY``. Sell rules (``min_order_qty``, ``order_multiple``, in base units) flag a
line without refusing it, and suggest the smallest valid quantity at or above the request:
the smallest multiple of ``order_multiple`` at or above max(request, ``min_order_qty``),
in the line's UoM where it converts exactly, else in base units.

A line's status, in increasing precedence (the first problem of a line is the one it
says): ITEM_BLOCKED, ZERO_QUANTITY (0, which is also what proto3 sends for a quantity
left unset: a client bug more often than a question), QTY_OUT_OF_RANGE (negative, or a
base quantity past the limit),
UNKNOWN_UOM (a UoM named that the item does not have), UNKNOWN_SKU (incl. a SKU known only
from stock). These rules run in one place, the compiled quote kernel
(``engine._kernels._quote``): quotes get them inside their one call, and
:func:`resolve_lines` (Promise) calls the same code without pricing or availability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from engine._kernels import _quote
from engine.errors import InvalidInput
from engine.state import State
from engine.tables import kernel_tables

__all__ = [
    "MAX_BASE_QTY",
    "MAX_UOM_FACTOR",
    "LineStatus",
    "ResolvedLines",
    "SellRules",
    "resolve_lines",
]

I64 = npt.NDArray[np.int64]
MAX_BASE_QTY = 10**12  # DESIGN §2: a line's base quantity is at most 10^12
MAX_UOM_FACTOR = 10**6  # keeps qty × factor and break minimums inside int64


@dataclass(frozen=True, slots=True)
class SellRules:
    """Sell-rule verdict per line: flags, and the suggestion where a flag is raised."""

    below_minimum: npt.NDArray[np.bool_]
    not_multiple: npt.NDArray[np.bool_]
    suggested_qty: I64  # in the line's UoM where it converts exactly, else in base
    suggested_in_base: npt.NDArray[np.bool_]


class LineStatus(IntEnum):
    """Per-line outcome of a request; only OK lines are priced or planned."""

    OK = 0
    UNKNOWN_SKU = 1
    UNKNOWN_UOM = 2
    ITEM_BLOCKED = 3
    NO_PRICE = 4
    QTY_OUT_OF_RANGE = 5
    AMOUNT_OVERFLOW = 6
    ZERO_QUANTITY = 7


@dataclass(frozen=True, slots=True)
class ResolvedLines:
    """Request lines in engine terms: ids, factors, base quantities and a status each."""

    sku: I64  # -1 where unknown
    uom: I64  # -1: the base UoM (or an unknown code: see status)
    factor: I64  # 0 where the UoM is unknown or not on the item
    base_qty: I64  # 0 where the status is not OK
    item_status: npt.NDArray[np.int8]
    status: npt.NDArray[np.int8]


def resolve_lines(
    state: State, skus: Sequence[str], qty: Sequence[int] | I64, uoms: Sequence[str] | None
) -> ResolvedLines:
    """Look up a batch of (SKU, qty, UoM) lines and give each its :class:`LineStatus`.

    '' or None as a UoM means the base UoM. Raises :class:`InvalidInput` only when the
    columns disagree in length. One call of the quote kernel's resolution step (no prices,
    no availability), O(n), no Python object per line.
    """
    n = len(skus)
    quantities = np.ascontiguousarray(qty, dtype=np.int64)
    if quantities.shape != (n,):
        raise InvalidInput("qty", f"{quantities.size} quantities for {n} lines")
    if uoms is not None and len(uoms) != n:
        raise InvalidInput("uoms", f"{len(uoms)} UoMs for {n} lines")
    rows = _quote.LINE_ROWS
    out64 = np.empty((rows["int64"], n), dtype=np.int64)
    out8 = np.empty((rows["int8"], n), dtype=np.int8)
    flags = np.empty((rows["flags"], n), dtype=np.uint8)
    no_stock = np.empty((n, 0), dtype=np.int64)
    no_flags = np.empty((n, 0), dtype=np.uint8)
    _quote.quote_batch(
        kernel_tables(state), None, skus, quantities, uoms, len(state.skus), len(state.uoms),
        _PRICES_NOT_ASKED, 1, 0, _NO_LOCATIONS, False, 0, 0, 0, out64, out8, flags,
        no_stock, no_stock, no_flags, no_flags.view(np.int8), _NO_HITS,
    )  # fmt: skip
    return ResolvedLines(
        out64[rows["sku"]], out64[rows["uom"]], out64[rows["factor"]], out64[rows["base_qty"]],
        out8[rows["item_status"]], out8[rows["status"]],
    )  # fmt: skip


_PRICES_NOT_ASKED = 0
_NO_LOCATIONS = np.zeros(0, dtype=np.int64)
_NO_HITS = np.zeros((_quote.LINE_ROWS["hits"], 0), dtype=np.int64)
