"""Item master computations: UoM conversion and sell rules (DESIGN §2).

Every item has a base UoM (factor 1) and up to ``MAX_UOMS - 1`` alternates with positive
integer factors to base. A line's base quantity is ``qty × factor`` and must not exceed
``MAX_BASE_QTY``. Sell rules (``min_order_qty``, ``order_multiple``, in base units) flag a
line without refusing it, and suggest the smallest valid quantity at or above the request.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.state import State

__all__ = [
    "MAX_BASE_QTY",
    "MAX_UOM_FACTOR",
    "SellRules",
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
