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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from engine.arrays import expand_ranges, segment_starts, segmented_cumsum
from engine.catalog import ItemRows, item_rows
from engine.errors import UnknownCode
from engine.state import ItemStatus, State

__all__ = [
    "Availability",
    "DateSource",
    "availability",
    "available_now",
    "earliest_dates",
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


# plain ints for array work (numpy compares an IntEnum member ~6x slower)
_STOCK, _INBOUND, _LEAD_TIME = (
    int(DateSource.STOCK),
    int(DateSource.INBOUND),
    int(DateSource.LEAD_TIME),
)
_ACTIVE = int(ItemStatus.ACTIVE)


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
        region_id = state.regions.get(region)
        if region_id < 0 or region_id not in state.region_locations:
            raise UnknownCode("region", region)
        ranked = state.region_locations[region_id]
        active: I64 = ranked[state.location_rows["active"][ranked]]  # closed ones drop out
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


def earliest_dates(
    state: State,
    sku: I64,
    need: I64,
    locations: I64,
    now: I64,
    today: int,
    network_now: I64 | None = None,
    items: ItemRows | None = None,
) -> tuple[I64, npt.NDArray[np.int8]]:
    """Earliest date (days) on which ``need`` base units can ship from ``locations``.

    ``now`` is the raw available_now block (n, L) from :func:`available_now`;
    ``network_now`` its clipped row sums and ``items`` the SKUs' item rows, when the
    caller has them. Returns the dates (-1: none) and the :class:`DateSource` of each.
    Array work over the receipts of the short lines only; O(n·L + receipts log receipts).
    """
    n = sku.size
    if network_now is None:
        network_now = np.maximum(now, 0).sum(axis=1)
    if items is None:
        items = item_rows(state, sku)
    date = np.full(n, -1, dtype=np.int64)
    source = np.zeros(n, dtype=np.int8)
    in_stock = network_now >= need
    date[in_stock] = today
    source[in_stock] = _STOCK
    status = items.status
    short = np.nonzero(~in_stock & (status == _ACTIVE))[0]
    if short.size and state.inbound_keys.size:
        which, location, day, qty, _ = receipts_of(state, sku[short])
        slot_of = np.full(state.inventory.location_capacity, -1, dtype=np.int64)
        slot_of[locations] = np.arange(locations.size)
        slot = slot_of[location]
        keep = slot >= 0
        which, slot, qty = which[keep], slot[keep], qty[keep]
        day = np.maximum(day[keep], today)
        if which.size:
            # receipts per (line, location) in date order: what each adds to the network
            order = np.lexsort((day, slot, which))
            which, slot, qty, day = which[order], slot[order], qty[order], day[order]
            after = segmented_cumsum(qty, segment_starts(which, slot))
            base = now[short[which], slot]
            gain = np.maximum(base + after, 0) - np.maximum(base + after - qty, 0)
            # then per line in date order: the network total after each receipt
            order = np.lexsort((day, which))
            which, gain, day = which[order], gain[order], day[order]
            reached = network_now[short[which]] + segmented_cumsum(gain, segment_starts(which))
            hit = reached >= need[short[which]]
            # reached only grows within a line: its first hit is a segment start of hits
            first = np.nonzero(hit & segment_starts(np.where(hit, which, -1 - which)))[0]
            lines = short[which[first]]
            date[lines] = day[first]
            source[lines] = _INBOUND
    lead = items.lead_time_days
    by_lead = (date < 0) & (status == _ACTIVE) & (lead >= 0)
    date[by_lead] = today + lead[by_lead]
    source[by_lead] = _LEAD_TIME
    return date, source


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
    items: ItemRows | None = None,
) -> Availability:
    """Stock by location, network total and earliest date for each line (SKU ids ≥ 0).

    ``items``: the SKUs' item rows, when the caller has already gathered them."""
    now = available_now(state, sku, locations)
    clipped = np.maximum(now, 0)
    network = clipped.sum(axis=1)
    date, source = earliest_dates(state, sku, need, locations, now, today, network, items)
    return Availability(locations, clipped, now < 0, network, date, source)
