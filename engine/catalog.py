"""Item master computations: UoM conversion and sell rules (DESIGN §2).

Every item has a base UoM (factor 1) and up to ``MAX_UOMS - 1`` alternates with positive
integer factors to base. A line's base quantity is ``qty × factor`` and must not exceed
``MAX_BASE_QTY``. Sell rules (``min_order_qty``, ``order_multiple``, in base units) flag a
line without refusing it, and suggest the smallest valid quantity at or above the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from engine.errors import InvalidInput
from engine.state import ItemStatus, State

__all__ = [
    "MAX_BASE_QTY",
    "MAX_UOM_FACTOR",
    "LineStatus",
    "ResolvedLines",
    "SellRules",
    "resolve_lines",
    "sell_rules",
    "uom_factors",
]

I64 = npt.NDArray[np.int64]
MAX_BASE_QTY = 10**12  # DESIGN §2: a line's base quantity is at most 10^12
MAX_UOM_FACTOR = 10**6  # keeps qty × factor and break minimums inside int64


def uom_factors(state: State, sku: I64, uom: I64) -> I64:
    """Factor to base of ``uom`` for each SKU; 0 where the item has no such UoM.

    ``uom`` -1 means the item's base UoM (factor 1). Unknown SKUs (-1) give 0.
    O(n × MAX_UOMS), no Python loop.
    """
    rows = np.maximum(sku, 0)
    codes = state.items["uom_code"][rows]
    match = codes == uom[:, None]
    slot = match.argmax(axis=1)
    factor = state.items["uom_factor"][rows, slot]
    factor = np.where(match.any(axis=1), factor, 0)
    factor = np.where(uom < 0, 1, factor)
    return np.where(sku < 0, 0, factor)


@dataclass(frozen=True, slots=True)
class SellRules:
    """Sell-rule verdict per line: flags, and the suggestion where a flag is raised."""

    below_minimum: npt.NDArray[np.bool_]
    not_multiple: npt.NDArray[np.bool_]
    suggested_qty: I64  # in the line's UoM where it converts exactly, else in base
    suggested_in_base: npt.NDArray[np.bool_]


def _ceil_to(value: I64, step: I64) -> I64:
    return -(-value // step) * step


def sell_rules(state: State, sku: I64, base_qty: I64, factor: I64) -> SellRules:
    """Check min order qty and order multiple; O(n).

    ``suggested_qty`` is the smallest base quantity ≥ max(request, min_order_qty) that is a
    multiple of ``order_multiple``, expressed in the line's UoM when it divides exactly.
    Where no flag is raised it equals the request.
    """
    rows = np.maximum(sku, 0)
    minimum = state.items["min_order_qty"][rows]
    multiple = np.maximum(state.items["order_multiple"][rows], 1)
    below = base_qty < minimum
    not_multiple = base_qty % multiple != 0
    suggested_base = _ceil_to(np.maximum(base_qty, minimum), multiple)
    safe_factor = np.maximum(factor, 1)
    exact = suggested_base % safe_factor == 0
    suggested = np.where(exact, suggested_base // safe_factor, suggested_base)
    return SellRules(below, not_multiple, suggested, ~exact)


class LineStatus(IntEnum):
    """Per-line outcome of a request; only OK lines are priced or planned."""

    OK = 0
    UNKNOWN_SKU = 1
    UNKNOWN_UOM = 2
    ITEM_BLOCKED = 3
    NO_PRICE = 4
    QTY_OUT_OF_RANGE = 5
    AMOUNT_OVERFLOW = 6


# plain ints for array comparisons (numpy compares an IntEnum member ~6x slower)
_OK, _UNKNOWN_SKU, _UNKNOWN_UOM = (
    int(LineStatus.OK),
    int(LineStatus.UNKNOWN_SKU),
    int(LineStatus.UNKNOWN_UOM),
)
_QTY_RANGE, _ITEM_BLOCKED = int(LineStatus.QTY_OUT_OF_RANGE), int(LineStatus.ITEM_BLOCKED)
_UNKNOWN_ITEM, _BLOCKED = int(ItemStatus.UNKNOWN), int(ItemStatus.BLOCKED)


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
    columns disagree in length. O(n), no Python loop per line.
    """
    n = len(skus)
    quantities = np.asarray(qty, dtype=np.int64)
    if quantities.shape != (n,):
        raise InvalidInput("qty", f"{quantities.size} quantities for {n} lines")
    if uoms is not None and len(uoms) != n:
        raise InvalidInput("uoms", f"{len(uoms)} UoMs for {n} lines")
    sku = state.skus.lookup(skus)
    item_status = np.where(
        sku >= 0, state.items["status"][np.maximum(sku, 0)], _UNKNOWN_ITEM
    ).astype(np.int8)
    uom = np.full(n, -1, dtype=np.int64)
    unknown_uom = np.zeros(n, dtype=np.bool_)
    if uoms is not None:
        given = np.fromiter(map(bool, uoms), dtype=np.bool_, count=n)
        uom = np.where(given, state.uoms.lookup(uoms), -1)
        unknown_uom = given & (uom < 0)
    factor = np.where(unknown_uom, 0, uom_factors(state, sku, uom))
    qty_ok = (quantities >= 0) & (quantities <= MAX_BASE_QTY // np.maximum(factor, 1))
    status = np.where(
        item_status == _UNKNOWN_ITEM,
        _UNKNOWN_SKU,
        np.where(
            factor == 0,
            _UNKNOWN_UOM,
            np.where(~qty_ok, _QTY_RANGE, np.where(item_status == _BLOCKED, _ITEM_BLOCKED, _OK)),
        ),
    ).astype(np.int8)
    base_qty = np.where(status == _OK, quantities * np.maximum(factor, 1), 0)
    return ResolvedLines(sku, uom, factor, base_qty, item_status, status)
