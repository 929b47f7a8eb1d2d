"""Available-to-promise (DESIGN §5): stock now, cumulative ATP by date, earliest dates.

Per (SKU, location): ``available_now = on_hand − allocated − held − safety_stock``. It is
reported clipped at 0; a negative value is reported as oversold. Cumulative ATP on day d
adds the receipts dated ≤ d. Receipts already past due count as arriving today (the usual
ERP convention: late supply is expected at once).

Over a *set* of locations, network availability is the sum of clipped ``available_now``; on
day d it is Σ_l max(available_now_l + receipts_l(≤ d), 0) — a receipt at an oversold
location first covers that location's shortfall. The earliest date for a quantity Q is
today when the network has Q now, else the first receipt date on which it reaches Q, else
today + the item's supplier lead time, else none (backorder). DISCONTINUED items are
promised from stock only.

A quote computes availability inside its one call of the compiled quote kernel
(``engine._kernels._quote``); :func:`availability` runs the same kernel code, with the
same disclosure, for a list of SKU ids (WatchAvailability). ``available_now`` and
``receipts_of`` are the array passes promise planning (``engine.promise``) reads the same
numbers with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from engine._kernels import _quote
from engine.arrays import expand_ranges
from engine.errors import UnknownCode
from engine.state import _INBOUND_SKU_SHIFT, _LOCATION_BITS, Disclosure, ItemStatus, State

__all__ = [
    "Availability",
    "DateSource",
    "availability",
    "available_now",
    "location_set",
    "receipts_of",
]

I64 = npt.NDArray[np.int64]
_DATE_MASK = (1 << 20) - 1
_LOC_MASK = (1 << 12) - 1


class DateSource(IntEnum):
    """What the earliest date rests on."""

    NONE = 0  # backorder without a date
    STOCK = 1
    INBOUND = 2
    LEAD_TIME = 3


def location_set(
    state: State, locations: Sequence[str] | None = None, region: str | None = None
) -> I64:
    """Ranked location ids: the named ones, a region's active ones in rank order, or every
    active location. A location named explicitly is kept even when inactive: the caller
    asked about it by name."""
    if locations:
        ids = state.locations.lookup(locations)
        missing = np.nonzero(ids < 0)[0]
        if missing.size:
            raise UnknownCode("locations", locations[int(missing[0])])
        return np.array(list(dict.fromkeys(ids.tolist())), dtype=np.int64)
    if region:
        # a region's active locations change only with a new state version: kept per
        # region for the version they were read at (one entry per region, replaced)
        key = ("region-locations", region)
        kept = state.contexts.get(key)
        if kept is not None and kept[0] == state.version:
            found: I64 = kept[1]
            return found
        region_id = state.regions.get(region)
        if region_id < 0 or region_id not in state.region_locations:
            raise UnknownCode("region", region)
        ranked = state.region_locations[region_id]
        active: I64 = ranked[state.location_rows["active"][ranked]]  # closed ones drop out
        active.flags.writeable = False  # shared by every quote of this version
        state.contexts[key] = (state.version, active)
        return active
    n = state.location_rows.n
    return np.nonzero(state.location_rows["active"][:n])[0].astype(np.int64)


def available_now(state: State, sku: I64, locations: I64) -> I64:
    """Raw available_now for each SKU × location (may be negative); shape (n, L).

    Each column is read with one flat ``take`` and combined in place: at the large scale
    ~3x faster than a 2-D ``np.ix_`` gather per column. When the set covers a fair part of
    a row, whole SKU rows (contiguous runs) are gathered first and the set picked out last,
    faster still (~5x); not with thousands of locations, where a row is tens of KB.
    """
    inv = state.inventory
    width = inv.location_capacity
    if 4 * locations.size < width:
        cell = (sku * width)[:, None] + locations
        now = inv.on_hand.reshape(-1).take(cell)
        now -= inv.allocated.reshape(-1).take(cell)
        now -= inv.held.reshape(-1).take(cell)
        now -= inv.safety_stock.reshape(-1).take(cell)
        return now
    now = inv.on_hand.take(sku, axis=0)
    now -= inv.allocated.take(sku, axis=0)
    now -= inv.held.take(sku, axis=0)
    now -= inv.safety_stock.take(sku, axis=0)
    return now.take(locations, axis=1)


def receipts_of(state: State, sku: I64) -> tuple[I64, I64, I64, I64, I64]:
    """Receipts of a batch of SKUs: (which SKU, location, date, qty, schedule position).

    Rows come per SKU in (date, location) order — the inbound key's order. O(R).
    """
    keys = state.inbound_keys
    which, pos = expand_ranges(
        np.searchsorted(keys, sku << 32), np.searchsorted(keys, (sku + 1) << 32)
    )
    row_key = keys[pos]
    return which, row_key & _LOC_MASK, (row_key >> 12) & _DATE_MASK, state.inbound_qty[pos], pos


@dataclass(frozen=True, slots=True)
class Availability:
    """Availability of a batch of lines over one location set."""

    locations: I64  # location ids, ranked
    available_now: I64  # (n, L) clipped at 0
    oversold: npt.NDArray[np.bool_]  # (n, L) raw available_now < 0
    network_available: I64  # (n,)
    earliest_date: I64  # (n,) days, -1 none
    date_source: npt.NDArray[np.int8]


def availability(
    state: State,
    sku: I64,
    need: I64,
    locations: I64,
    today: int,
    disclosure: Disclosure = Disclosure.EXACT,
    cap: int = 0,
) -> tuple[Availability, I64, npt.NDArray[np.int8]]:
    """Stock by location, network total and earliest date for each SKU id (-1: unknown,
    answered "nothing"), and what ``disclosure`` with ``cap`` shows of it: (availability,
    shown quantities with -1 where hidden, StockBucket codes).

    One call of the compiled kernel (the quote kernel's availability and disclosure
    steps): O(lines × locations + receipts of the lines short now), no Python object per
    line."""
    from engine.tables import kernel_tables  # (engine.tables imports the kernel too)

    sku = np.ascontiguousarray(sku, dtype=np.int64)
    n, width = sku.size, locations.size
    available = np.empty((n, width), dtype=np.int64)
    shown = np.empty((n, width), dtype=np.int64)
    oversold = np.empty((n, width), dtype=np.uint8)
    bucket = np.empty((n, width), dtype=np.int8)
    network = np.empty(n, dtype=np.int64)
    date = np.empty(n, dtype=np.int64)
    source = np.empty(n, dtype=np.int8)
    _quote.availability_batch(
        kernel_tables(state), sku, np.ascontiguousarray(need, dtype=np.int64),
        (sku >= 0).view(np.int8), np.ascontiguousarray(locations, dtype=np.int64), today,
        int(disclosure), cap, available, oversold, network, date, source, shown, bucket,
    )  # fmt: skip
    stock = Availability(locations, available, oversold.view(np.bool_), network, date, source)
    return stock, shown, bucket


def _check_kernel_constants() -> None:
    """The kernel hard-codes the inbound key layout and the codes: fail at import, not
    with wrong dates, if they ever drift apart."""
    expected = {
        "INBOUND_SKU_SHIFT": _INBOUND_SKU_SHIFT,
        "LOCATION_BITS": _LOCATION_BITS,
        "ITEM_ACTIVE": int(ItemStatus.ACTIVE),
        "DATE_NONE": int(DateSource.NONE),
        "DATE_STOCK": int(DateSource.STOCK),
        "DATE_INBOUND": int(DateSource.INBOUND),
        "DATE_LEAD_TIME": int(DateSource.LEAD_TIME),
    }
    constants = {k: v for k, v in _quote.QUOTE_CONSTANTS.items() if k in expected}
    if expected != constants:
        raise ImportError(f"engine._kernels._quote is out of step: {_quote.QUOTE_CONSTANTS}")


_check_kernel_constants()
