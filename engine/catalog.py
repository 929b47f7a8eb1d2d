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
    "ItemRows",
    "LineStatus",
    "ResolvedLines",
    "SellRules",
    "factors_on_items",
    "item_rows",
    "resolve_lines",
    "sell_rules",
    "uom_factors",
]

I64 = npt.NDArray[np.int64]
MAX_BASE_QTY = 10**12  # DESIGN §2: a line's base quantity is at most 10^12
MAX_UOM_FACTOR = 10**6  # keeps qty × factor and break minimums inside int64


@dataclass(frozen=True, slots=True)
class ItemRows:
    """The item-master columns a quote reads, gathered once for a batch (row i: line i).

    At the large scale every read of a 1M-row column by SKU is a cache (and TLB) miss, so
    a quote gathers each column once here and the pricing and ATP steps index these small
    arrays instead of going back to the table. Unknown SKUs (-1) read row 0.
    """

    status: npt.NDArray[np.int8]
    uom_code: npt.NDArray[np.int16]  # (n, MAX_UOMS)
    uom_factor: I64  # (n, MAX_UOMS)
    min_order_qty: I64
    order_multiple: I64
    product_group: npt.NDArray[np.int32]
    cost_micros: I64
    cost_currency: npt.NDArray[np.int16]
    lead_time_days: npt.NDArray[np.int32]

    def take(self, rows: I64) -> ItemRows:
        """The rows ``rows`` of this batch."""
        return ItemRows(*(getattr(self, name).take(rows, axis=0) for name in self.__slots__))


def item_rows(state: State, sku: I64) -> ItemRows:
    """Gather :class:`ItemRows` for a batch of SKU ids; O(n × MAX_UOMS)."""
    rows = np.maximum(sku, 0)
    items = state.items
    return ItemRows(*(items[name].take(rows, axis=0) for name in ItemRows.__slots__))


def factors_on_items(uom_code: npt.NDArray[np.int16], uom_factor: I64, uom: I64) -> I64:
    """Factor to base of ``uom`` given each line's item UoM rows (``ItemRows.uom_code`` /
    ``uom_factor``); 0 where the item has no such UoM, 1 for ``uom`` -1 (the base UoM)."""
    match = uom_code == uom[:, None]
    line, slot = np.arange(uom.size), match.argmax(axis=1)  # the first slot that matches
    factor: I64 = uom_factor[line, slot] * match[line, slot]  # × 0 where none does
    factor[uom < 0] = 1
    return factor


def uom_factors(state: State, sku: I64, uom: I64) -> I64:
    """Factor to base of ``uom`` for each SKU; 0 where the item has no such UoM.

    ``uom`` -1 means the item's base UoM (factor 1). Unknown SKUs (-1) give 0.
    O(n × MAX_UOMS), no Python loop.
    """
    rows = np.maximum(sku, 0)
    items = state.items
    factor = factors_on_items(
        items["uom_code"].take(rows, axis=0), items["uom_factor"].take(rows, axis=0), uom
    )
    factor[sku < 0] = 0
    return factor


@dataclass(frozen=True, slots=True)
class SellRules:
    """Sell-rule verdict per line: flags, and the suggestion where a flag is raised."""

    below_minimum: npt.NDArray[np.bool_]
    not_multiple: npt.NDArray[np.bool_]
    suggested_qty: I64  # in the line's UoM where it converts exactly, else in base
    suggested_in_base: npt.NDArray[np.bool_]


def _ceil_to(value: I64, step: I64) -> I64:
    return -(-value // step) * step


def sell_rules(
    state: State, sku: I64, base_qty: I64, factor: I64, items: ItemRows | None = None
) -> SellRules:
    """Check min order qty and order multiple; O(n).

    ``suggested_qty`` is the smallest base quantity ≥ max(request, min_order_qty) that is a
    multiple of ``order_multiple``, expressed in the line's UoM when it divides exactly.
    Where no flag is raised it equals the request. ``items``: the SKUs' rows, when the
    caller has already gathered them.
    """
    if items is None:
        items = item_rows(state, sku)
    minimum = items.min_order_qty
    multiple = np.maximum(items.order_multiple, 1)
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
    items: ItemRows  # the lines' item rows (row 0's where the SKU is unknown)


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
    items = item_rows(state, sku)
    unknown_sku = sku < 0
    item_status = items.status.copy()
    item_status[unknown_sku] = _UNKNOWN_ITEM
    if uoms is None:
        uom = np.full(n, -1, dtype=np.int64)
        factor = np.ones(n, dtype=np.int64)
    else:
        # '' is the base UoM: the lookup gives -1 for it, as for an unknown code
        uom = state.uoms.lookup(uoms)
        factor = factors_on_items(items.uom_code, items.uom_factor, uom)
        if (uom < 0).any():
            given = np.fromiter(map(bool, uoms), dtype=np.bool_, count=n)
            factor[given & (uom < 0)] = 0
    factor[unknown_sku] = 0
    # statuses in increasing precedence, so the first problem of a line is the one it says
    status = np.zeros(n, dtype=np.int8)
    status[item_status == _BLOCKED] = _ITEM_BLOCKED
    status[(quantities < 0) | (quantities > MAX_BASE_QTY // np.maximum(factor, 1))] = _QTY_RANGE
    status[factor == 0] = _UNKNOWN_UOM
    status[item_status == _UNKNOWN_ITEM] = _UNKNOWN_SKU  # incl. a SKU known only from stock
    base_qty = quantities * np.maximum(factor, 1)
    base_qty[status != _OK] = 0
    return ResolvedLines(sku, uom, factor, base_qty, item_status, status, items)
