"""Inventory, inbound and hold changes, applied as arrays (the high-volume part of §6).

The columnar functions (:func:`set_positions`, :func:`adjust_positions`) are the hot path:
100k changes are a handful of numpy calls. The event-list wrappers only turn a list of
events into columns. See ``engine.deltas`` for the rules these implement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from engine import events as ev
from engine.arrays import expand_ranges
from engine.state import Hold, Inventory, State, cell_key, inbound_key
from engine.table import KeyIndex

__all__ = [
    "ADJUST_LOG_LIMIT",
    "HOLD_RETENTION_MS",
    "adjust_positions",
    "apply_adjusts",
    "apply_inbound",
    "apply_sets",
    "distinct_skus",
    "expire_holds",
    "hold_of",
    "place_hold",
    "release_hold",
    "set_positions",
]

I64 = npt.NDArray[np.int64]
ADJUST_LOG_LIMIT = 1_000_000
#: How long a hold's record outlives its expiry (see :func:`expire_holds`).
HOLD_RETENTION_MS = 86_400_000
Interner = Callable[[State, str], int]
#: columns of a batch already read by validation (``engine.validate.CheckedBatch``)
Known = dict[str, I64] | None
_DATE_MASK = (1 << 20) - 1
_LOC_MASK = (1 << 12) - 1


def _newest_per_cell(cell: I64, version: I64) -> I64:
    """Indices of the highest-version change per cell (first seen on a tie)."""
    order = np.lexsort((np.arange(cell.size), -version, cell))
    first = np.ones(order.size, dtype=np.bool_)
    first[1:] = cell[order[1:]] != cell[order[:-1]]
    return order[first]


def _flat(inv: Inventory, sku: I64, location: I64) -> I64:
    """Positions of cells in the raveled (SKU × location) arrays: a 1-D ``take`` / ``put``
    on them costs a fraction of 2-D fancy indexing."""
    return sku * inv.location_capacity + location


def distinct_skus(state: State, sku: I64) -> I64:
    """The distinct SKU ids of a batch, ascending. A mark per SKU then one scan is several
    times cheaper than ``np.unique`` (hash or sort) at stream batch sizes."""
    if sku.size < 1024:
        return np.unique(sku)
    mark = np.zeros(state.inventory.sku_capacity, dtype=np.bool_)
    mark[sku] = True
    return np.flatnonzero(mark)


def _cells(array: I64) -> I64:
    """A (SKU × location) array as one flat *view*: writes through it must reach the state,
    so this refuses (ValueError) rather than silently copying a non-contiguous array."""
    return np.reshape(array, -1, copy=False)


def _log_index(state: State) -> KeyIndex:
    """The adjust log's rows sorted by cell, (re)built when it is missing or out of step
    (a loaded snapshot, a compaction): a set then finds the adjusts of its cells with one
    sorted search instead of scanning the whole log (up to ``ADJUST_LOG_LIMIT`` rows)."""
    log = state.adjust_log
    index = state.adjust_index
    if index is None or len(index) != log.n:
        index = KeyIndex()
        index.rebuild(cell_key(log["sku"][: log.n], log["location"][: log.n]))
        state.adjust_index = index
    return index


def set_positions(
    state: State,
    sku: I64,
    location: I64,
    version: I64,
    on_hand: I64,
    allocated: I64,
    safety_stock: I64,
) -> I64:
    """Apply absolute stock positions; returns the SKU ids that changed. O(n log n).

    A position applies when its version beats the cell's last set. Adjusts in the log that
    are newer than the applied set are re-added, so arrival order does not matter.
    """
    inv = state.inventory
    cell = _flat(inv, sku, location)
    pick = _newest_per_cell(cell, version)
    cell, version = cell[pick], version[pick]
    newer = np.nonzero(version > _cells(inv.set_version).take(cell))[0]
    pick = pick[newer]
    cell, version = cell[newer], version[newer]
    sku, location = sku[pick], location[pick]
    new_on_hand, new_allocated = on_hand[pick], allocated[pick]
    log = state.adjust_log
    if log.n and sku.size:
        index = _log_index(state)
        keys = cell_key(sku, location)
        # sorted needles: numpy's binary search then starts each search where the last
        # one ended, which keeps the walk over the (large) log index cache-friendly
        order = np.argsort(keys)
        sorted_keys = keys[order]
        which, pos = expand_ranges(
            np.searchsorted(index.keys, sorted_keys),
            np.searchsorted(index.keys, sorted_keys, side="right"),
        )
        target, row = order[which], index.rows[pos]
        live = log["live"][row]
        target, row = target[live], row[live]
        if row.size:
            newer_adjust = log["version"][row] > version[target]
            add = row[newer_adjust]
            np.add.at(new_on_hand, target[newer_adjust], log["on_hand"][add])
            np.add.at(new_allocated, target[newer_adjust], log["allocated"][add])
            log["live"][row[~newer_adjust]] = False  # absorbed by this set
            _compact_log(state)
    _cells(inv.on_hand).put(cell, new_on_hand)
    _cells(inv.allocated).put(cell, new_allocated)
    _cells(inv.safety_stock).put(cell, safety_stock[pick])
    _cells(inv.set_version).put(cell, version)
    return distinct_skus(state, sku)


def _compact_log(state: State, limit: int | None = None) -> None:
    """Drop absorbed adjust-log rows once they are half the log (amortised O(1) per row),
    and the oldest rows beyond ``limit``. A dropped id is forgotten: a replay of it is
    then refused by version instead (it is no newer than the set that absorbed it)."""
    log = state.adjust_log
    live = log["live"][: log.n]
    dead = log.n - int(live.sum())
    over = 0 if limit is None else max(0, log.n - dead - limit)
    if dead * 2 < max(log.n, 1024) and not over:
        return
    keep = live.copy()
    if over:
        keep[np.nonzero(keep)[0][:over]] = False  # oldest first
    ids = list(state.adjust_ids)
    kept_ids = [event_id for event_id, k in zip(ids, keep.tolist(), strict=True) if k]
    kept = int(keep.sum())
    for name in log.schema:
        column = log.data[name]
        column[:kept] = column[: log.n][keep]
    log.n = kept
    state.adjust_ids = {event_id: i for i, event_id in enumerate(kept_ids)}
    state.adjust_index = None  # rows moved: rebuilt on next use


def _first_unseen(seen: dict[str, int], event_ids: Sequence[str]) -> npt.NDArray[np.bool_]:
    """True for each event id not applied before and not earlier in this batch.

    Membership runs as C-level ``map``; the per-id Python loop is only for a batch that
    repeats an id (a producer's retry landing in one read), which is rare.
    """
    n = len(event_ids)
    take = np.fromiter(map(seen.__contains__, event_ids), dtype=np.bool_, count=n)
    np.logical_not(take, out=take)
    if len(set(event_ids)) < n:
        first: dict[str, int] = {}
        again = np.fromiter(
            (first.setdefault(e, i) != i for i, e in enumerate(event_ids)), np.bool_, n
        )
        take &= ~again
    return take


def adjust_positions(
    state: State,
    sku: I64,
    location: I64,
    version: I64,
    on_hand_delta: I64,
    allocated_delta: I64,
    event_ids: Sequence[str],
) -> tuple[int, I64]:
    """Apply relative changes, deduplicated by event id; returns (applied, SKUs changed).

    An adjust older than (or as old as) its cell's last set is already counted in that set
    and is skipped. Applied adjusts enter the log (see ``engine.deltas``).
    """
    inv = state.inventory
    cell = _flat(inv, sku, location)
    take = _first_unseen(state.adjust_ids, event_ids)
    take &= version > _cells(inv.set_version).take(cell)
    rows = np.nonzero(take)[0]
    if rows.size == 0:
        return 0, np.zeros(0, dtype=np.int64)
    sku, location, cell = sku[rows], location[rows], cell[rows]
    np.add.at(_cells(inv.on_hand), cell, on_hand_delta[rows])
    np.add.at(_cells(inv.allocated), cell, allocated_delta[rows])
    log = state.adjust_log
    index = _log_index(state)  # in step with the log before the append
    new = log.append_blank(rows.size)
    log["sku"][new] = sku
    log["location"][new] = location
    log["version"][new] = version[rows]
    log["on_hand"][new] = on_hand_delta[rows]
    log["allocated"][new] = allocated_delta[rows]
    index.insert(cell_key(sku, location), new)
    base = int(new[0])
    taken = map(event_ids.__getitem__, rows.tolist())
    state.adjust_ids.update(zip(taken, range(base, base + rows.size), strict=True))
    if log.n > ADJUST_LOG_LIMIT:
        _compact_log(state, ADJUST_LOG_LIMIT)
    return int(rows.size), distinct_skus(state, sku)


def _ids(
    state: State, codes: list[str], table: Any, intern: Interner, known: I64 | None = None
) -> I64:
    """Ids of a column of codes: one bulk lookup (or ``known``, the ids the validation
    already looked up, -1 where unknown), interning only the new ones."""
    ids: I64 = table.lookup(codes) if known is None else known.copy()
    for row in np.nonzero(ids < 0)[0].tolist():  # new codes only (rare)
        ids[row] = intern(state, codes[row])
    return ids


def _codes(batch: Sequence[Any], name: str) -> list[Any]:
    return list(map(attrgetter(name), batch))


def _int64(batch: Sequence[Any], name: str) -> I64:
    # one C-level pass per field: measured cheaper than one tuple per event (attrgetter of
    # several fields), and far cheaper than transposing those tuples with zip(*rows)
    return np.fromiter(map(attrgetter(name), batch), np.int64, len(batch))


def _code_ids(
    state: State, batch: Sequence[Any], sku_of: Interner, loc_of: Interner, known: Known
) -> tuple[I64, I64]:
    """SKU and location ids of a batch of inventory events (interning new codes)."""
    known = known or {}
    return (
        _ids(state, _codes(batch, "sku"), state.skus, sku_of, known.get("sku")),
        _ids(state, _codes(batch, "location"), state.locations, loc_of, known.get("location")),
    )


def _column(batch: Sequence[Any], name: str, known: Known) -> I64:
    found = None if known is None else known.get(name)
    return _int64(batch, name) if found is None else found


def apply_sets(
    state: State,
    batch: Sequence[ev.InventorySet],
    sku_of: Interner,
    loc_of: Interner,
    known: Known = None,
) -> tuple[int, I64]:
    """InventorySet events → :func:`set_positions`. ``known``: columns validation already
    read for this batch (code ids -1 where unknown then)."""
    sku, location = _code_ids(state, batch, sku_of, loc_of, known)
    cell = _flat(state.inventory, sku, location)
    before = _cells(state.inventory.set_version).take(cell)
    changed = set_positions(
        state,
        sku,
        location,
        _column(batch, "version", known),
        _column(batch, "on_hand", known),
        _column(batch, "allocated", known),
        _column(batch, "safety_stock", known),
    )
    applied = int((_cells(state.inventory.set_version).take(cell) != before).sum())
    return min(applied, len(batch)), changed


def apply_adjusts(
    state: State,
    batch: Sequence[ev.InventoryAdjust],
    sku_of: Interner,
    loc_of: Interner,
    known: Known = None,
) -> tuple[int, I64]:
    """InventoryAdjust events → :func:`adjust_positions` (``known`` as for sets)."""
    sku, location = _code_ids(state, batch, sku_of, loc_of, known)
    return adjust_positions(
        state,
        sku,
        location,
        _column(batch, "version", known),
        _column(batch, "on_hand_delta", known),
        _column(batch, "allocated_delta", known),
        _codes(batch, "event_id"),
    )


def apply_inbound(
    state: State,
    batch: Sequence[ev.InboundSet],
    sku_of: Interner,
    loc_of: Interner,
    known: Known = None,
) -> tuple[int, I64]:
    """Replace the receipt schedules of SKU-locations whose InboundSet is newer.
    (``known`` is accepted for a signature shared with the other appliers; unused.)"""
    from engine.deltas import day_number  # local: deltas imports this module

    newest: dict[tuple[int, int], ev.InboundSet] = {}
    for e in batch:
        cell = (sku_of(state, e.sku), loc_of(state, e.location))
        held = newest.get(cell)
        if held is None or e.version > held.version:
            newest[cell] = e
    winners = {
        cell: e for cell, e in newest.items() if e.version > state.inbound_versions.get(cell, -1)
    }
    if not winners:
        return 0, np.zeros(0, dtype=np.int64)
    keys = state.inbound_keys
    drop_sku = keys >> 32
    drop_loc = keys & _LOC_MASK
    cells = np.array(list(winners), dtype=np.int64).reshape(-1, 2)
    cap = 1 << 12
    dropped = np.isin(drop_sku * cap + drop_loc, cells[:, 0] * cap + cells[:, 1])
    new_keys: list[int] = []
    new_qty: list[int] = []
    for (sku, location), e in winners.items():
        state.inbound_versions[(sku, location)] = e.version
        for date, qty in e.receipts:
            new_keys.append(int(inbound_key(sku, day_number(date), location)))
            new_qty.append(qty)
    kept_keys, kept_qty = keys[~dropped], state.inbound_qty[~dropped]
    add_keys = np.array(new_keys, dtype=np.int64)
    add_qty = np.array(new_qty, dtype=np.int64)
    order = np.argsort(add_keys, kind="stable")
    add_keys, add_qty = add_keys[order], add_qty[order]
    # Same key twice (two receipts on one day) stays as two rows; order is stable.
    pos = np.searchsorted(kept_keys, add_keys, side="right")
    state.inbound_keys = np.insert(kept_keys, pos, add_keys)
    state.inbound_qty = np.insert(kept_qty, pos, add_qty)
    return len(winners), np.unique(cells[:, 0])


def _hold_delta(state: State, hold: Hold, sign: int) -> None:
    np.add.at(state.inventory.held, (hold.sku, hold.location), sign * hold.qty)


def expire_holds(state: State, clock_ms: int) -> list[int]:
    """Release every active hold whose expiry is at or before ``clock_ms``, and forget the
    holds that expired :data:`HOLD_RETENTION_MS` or more before it.

    Why forget: a hold record is kept after it ends so a Reserve retried with the same key
    gets the same (inactive) hold back instead of holding stock twice; kept for ever, the
    records of every order ever reserved would grow the state without bound. After the
    retention the key is free: a Reserve with it places a new hold. Time is the batch
    clock (stream time), so every replica forgets the same holds in the same batch."""
    changed: list[int] = []
    for hold in state.holds.values():
        if hold.active and hold.expires_at_ms <= clock_ms:
            hold.active = False
            _hold_delta(state, hold, -1)
            changed.extend(hold.sku.tolist())
    stale = [key for key, hold in state.holds.items()
             if not hold.active and hold.expires_at_ms + HOLD_RETENTION_MS <= clock_ms]  # fmt: skip
    for key in stale:
        del state.holds[key]
    return changed


def place_hold(state: State, e: ev.HoldPlace, clock_ms: int, placed_ms: int) -> str | None:
    """Place a hold at ``placed_ms`` (its own stream time), or return why not; it is
    active while the batch clock ``clock_ms`` is before its expiry. Same key and same
    lines: the same hold, unchanged.

    A hold only lowers stock that the state already knows of: its SKUs and locations are
    looked up, never interned, so a Reserve naming junk codes cannot grow the code tables
    (nor make the junk price in a quote). An unknown code rejects the whole hold, naming
    the line. Checked here, at hold-apply time, because holds are applied after the
    master and inventory events of their batch, which may bring the codes.
    """
    fingerprint = tuple(sorted((sku, loc, qty) for sku, loc, qty in e.lines))
    existing = hold_of(state, e.account, e.hold_key)
    if existing is not None:
        if existing.fingerprint != fingerprint:
            return f"hold_key: {e.hold_key!r} was already used with other lines"
        return None
    sku = np.array([state.skus.get(line[0]) for line in e.lines], dtype=np.int64)
    location = np.array([state.locations.get(line[1]) for line in e.lines], dtype=np.int64)
    unknown = np.flatnonzero((sku < 0) | (location < 0))
    if unknown.size:  # the first line with an unknown code names the problem
        i = int(unknown[0])
        if sku[i] < 0:
            return f"lines[{i}].sku: unknown SKU {e.lines[i][0]!r} (a hold never creates one)"
        return f"lines[{i}].location: unknown location {e.lines[i][1]!r} (a hold never creates one)"
    qty = np.array([line[2] for line in e.lines], dtype=np.int64)
    hold = Hold(
        e.hold_key, e.account, sku, location, qty, placed_ms + e.ttl_ms, fingerprint, placed_ms
    )
    state.holds[e.account, e.hold_key] = hold
    if hold.expires_at_ms > clock_ms:
        _hold_delta(state, hold, +1)
    else:
        hold.active = False
    return None


def hold_of(state: State, account: str, hold_key: str) -> Hold | None:
    """The hold ``account`` placed under ``hold_key``, or None: another account's hold of
    the same key is not found (holds are keyed by (account, hold key))."""
    return state.holds.get((account, hold_key))


def release_hold(state: State, account: str, hold_key: str) -> None:
    """Release ``account``'s hold ``hold_key`` early; releasing an unknown or inactive
    hold (another account's included) changes nothing."""
    hold = hold_of(state, account, hold_key)
    if hold is not None and hold.active:
        hold.active = False
        _hold_delta(state, hold, -1)
