"""The state's arrays wrapped for the quote kernel (``engine._kernels._quote.Tables``).

Wrapping acquires a typed memoryview per array (a buffer request and a format check each,
~45 arrays): too much to pay per quote, so a wrap is kept in the state's context cache and
made again only when one of its arrays was replaced (a table grew, an index was merged, a
reader mapped a new file). Values written in place are read live through the same views.
A shared-memory reader alternates between two instances' arrays, so two wraps are kept.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from engine._kernels import _quote
from engine.state import State

__all__ = ["kernel_tables"]

_KEY = "kernel-tables"
_KEPT = 2  # one per left-right instance


def _bytes(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A bool column as bytes, the dtype the kernel's memoryviews read (no copy)."""
    return array.view(np.uint8) if array.dtype == np.bool_ else array


def _arrays(state: State) -> tuple[np.ndarray[Any, Any], ...]:
    lines, prices, items = state.lines.data, state.prices.data, state.items.data
    line_index, price_index, inventory = state.line_index, state.price_index, state.inventory
    return (
        lines["contract"], lines["kind"], lines["uom"], lines["active"], lines["n_tiers"],
        lines["tier_min"], lines["tier_value"],
        line_index.keys, line_index.rows, line_index.ptr, line_index.dense_slot,
        line_index.dense,
        prices["uom"], prices["valid_from"], prices["valid_to"], prices["active"],
        prices["n_tiers"], prices["tier_min"], prices["tier_value"],
        price_index.keys, price_index.rows, price_index.ptr,
        state.groups.data["chain"],
        items["status"], items["uom_code"], items["uom_factor"], items["min_order_qty"],
        items["order_multiple"], items["product_group"], items["cost_micros"],
        items["cost_currency"], items["lead_time_days"],
        inventory.on_hand, inventory.allocated, inventory.held, inventory.safety_stock,
        state.inbound_keys, state.inbound_qty,
        state.skus.arena, state.skus.slots, state.uoms.arena, state.uoms.slots,
    )  # fmt: skip


def kernel_tables(state: State) -> _quote.Tables:
    """The kernel's wrap of ``state``'s arrays (kept while they are the same arrays)."""
    arrays = _arrays(state)
    kept: list[tuple[tuple[Any, ...], _quote.Tables]] = state.contexts.setdefault(_KEY, [])
    for held, tables in kept:
        if all(map(operator.is_, held, arrays)):
            return tables
    tables = _quote.Tables(*map(_bytes, arrays))
    kept.insert(0, (arrays, tables))
    del kept[_KEPT:]
    return tables
