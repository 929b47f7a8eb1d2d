"""Promise (sourcing), DESIGN §5: from where and when each line of an order ships.

(1) The highest-ranked location that can ship every line now, as one shipment; (2) else
each line, in request order, from stock: locations the plan already ships from today
first (in rank order), then new ones within ``max_shipments``; (3) the rest from inbound
receipts, earliest first; (4) the rest is backordered, dated today + lead time when the
item has one. A shipment is a distinct (location, ship date). What one line takes is gone
for later lines of the same SKU: stock left is tracked per (SKU, location), receipts once.

Decisions where DESIGN is silent:
- Step 2 opens, for a line's remainder, the highest-ranked location that covers all of it
  (step 1 at line level: no needless split); if none does, it fills in rank order.
- Receipts go in (date, rank, schedule order); a past-due one counts as today. Stock and
  receipts at an oversold location first cover its shortfall, as ``engine.atp`` counts.
  With the budget spent, a receipt that would open a new shipment is skipped; one on an
  existing shipment is used. Backorders have no location and are not shipments.
- DISCONTINUED items ship from stock only and backorder without a date.
- ``ship_complete``: every line ships on one date D, when the order is complete (-1 with
  all dates -1 if some part has no date). A single location that completes the order from
  its own stock and receipts (earliest, then rank) wins if no later than steps 2–4 (where
  a shipment is then a location). Else the steps 2–4 plan, re-sourced with step 2 over
  stock plus receipts due by D when that keeps the backorders and uses no more locations.
  "Minimal set of locations" is thus greedy, not an exact set cover.
- ``need_by`` is reported, never used to choose. Lines whose status is not OK are outside
  the plan; ``complete_date``/``meets_need_by`` cover planned lines (zero quantity: today).
  Sell rules are Quote's: the plan covers the quantity asked. Locations come from
  ``engine.atp.location_set``, as for Quote ("all" is ranked by location id).
- Allocations are merged per (line, location, date) and ordered by line, date, rank.

Complexity: O(n log n + U·L) array work (n lines, U distinct SKUs, L locations), then a
Python loop of O(L + R) per line, R the receipts of its SKU; ``ship_complete`` adds
O(U·L + R) for the single-location check and at most one more pass of step 2.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.arrays import segment_starts, segmented_cumsum
from engine.atp import available_now, location_set, receipts_of
from engine.catalog import LineStatus, resolve_lines
from engine.errors import InvalidInput, LimitExceeded
from engine.quote import DEFAULT_MAX_LINES, AsOf
from engine.state import ItemStatus, State

__all__ = ["Part", "PromisePlan", "fill_lines", "promise"]

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
_NEVER = np.iinfo(np.int64).max  # "not by any date"
Part = tuple[int, int, int, int]  # (line, location rank, ship date, base qty)


@dataclass(frozen=True, slots=True)
class PromisePlan:
    """Columnar plan: line arrays are (n,), allocation arrays (m,) in line, date, rank order."""

    as_of: AsOf
    locations: I64  # ranked location ids planned from
    sku: I64  # -1 where unknown
    status: npt.NDArray[np.int8]  # LineStatus; only OK lines are planned
    base_qty: I64
    alloc_line: I64
    alloc_location: I64  # location id
    alloc_qty: I64  # base units
    alloc_date: I64  # ship date, days since 1970-01-01; -1: none (ship_complete only)
    backorder_qty: I64
    backorder_date: I64  # -1: no date
    line_date: I64  # when the line is complete; -1: no date or not planned
    line_meets_need_by: Bools | None
    shipments: int  # distinct (location, ship date) pairs
    complete_date: int  # -1 when some planned part has no date
    meets_need_by: bool | None


def _receipts(
    state: State, usku: I64, active: Bools, locs: I64, raw: I64, today: int
) -> list[list[list[int]]]:
    """Per distinct SKU: [date, rank, usable qty] receipts in (date, rank, schedule) order.

    Usable is what is left once the location's oversold shortfall is covered; array work,
    O(R log R) for the R receipts of the SKUs at the ranked locations.
    """
    which, location, date, qty, pos = receipts_of(state, usku)
    keep = active[which]
    rank_of = np.full(max(state.n_locations, 1), -1, dtype=np.int64)
    rank_of[locs] = np.arange(locs.size)
    rank = rank_of[location]
    keep &= rank >= 0
    which, rank, pos, qty, date = which[keep], rank[keep], pos[keep], qty[keep], date[keep]
    order = np.lexsort((pos, rank, which))  # per cell in schedule (= date) order
    which, rank, pos, qty, date = which[order], rank[order], pos[order], qty[order], date[order]
    after = raw[which, rank] + segmented_cumsum(qty, segment_starts(which, rank))
    usable = np.maximum(after, 0) - np.maximum(after - qty, 0)
    date = np.maximum(date, today)
    order = np.lexsort((pos, rank, date, which))
    order = order[usable[order] > 0]
    bounds = np.searchsorted(which[order], np.arange(usku.size + 1)).tolist()
    found = np.stack([date[order], rank[order], usable[order]], axis=1).tolist()
    return [found[bounds[u] : bounds[u + 1]] for u in range(usku.size)]


def fill_lines(
    lines: list[int], uidx: list[int], base_qty: list[int], stock: I64 | Sequence[Sequence[int]],
    receipts: list[list[list[int]]], budget: float, ship_complete: bool, today: int,
) -> tuple[list[Part], list[int]]:  # fmt: skip
    """Steps 2 and 3 for every line; returns the parts and the unfilled rest per line.

    ``lines`` are the planned line indexes in request order, ``uidx`` each one's distinct
    SKU, ``stock`` (SKUs × ranked locations) the clipped stock and ``receipts`` per SKU
    [date, rank, usable qty] in the order they are used (see :func:`_receipts`); neither
    is changed. Plain Python over lists, O(L + R) per line: the one loop per line of a
    promise. The benchmark baselines call it too, so the greedy rule exists once.
    """
    left = stock.tolist() if isinstance(stock, np.ndarray) else [list(row) for row in stock]
    receipts = [[list(receipt) for receipt in found] for found in receipts]  # consumed here
    opened: set[tuple[int, int]] = set()  # shipments: (rank, date; -1 under ship_complete)
    chosen: list[int] = []  # ranks shipping today, sorted
    parts: list[Part] = []
    rest: list[int] = []
    today_key = -1 if ship_complete else today
    for line, u in zip(lines, uidx, strict=True):
        row, need = left[u], base_qty[line]
        spare = need - sum(row[k] for k in chosen)  # what reuse cannot cover
        new = [k for k in range(len(row)) if row[k] > 0 and k not in chosen]
        for rank in chosen + ([k for k in new if row[k] >= spare][:1] or new):
            if not need or (rank not in chosen and len(opened) >= budget):
                break
            take = min(row[rank], need)
            if not take:
                continue
            if rank not in chosen:
                opened.add((rank, today_key))
                bisect.insort(chosen, rank)
            row[rank] -= take
            need -= take
            parts.append((line, rank, today, take))
        rest.append(need)
    for at, u in enumerate(uidx):
        line, need = lines[at], rest[at]
        for receipt in receipts[u]:
            if not need:
                break
            date, rank, usable = receipt
            shipment = (rank, -1 if ship_complete else date)
            if not usable or (shipment not in opened and len(opened) >= budget):
                continue
            opened.add(shipment)
            take = min(usable, need)
            receipt[2] -= take
            need -= take
            parts.append((line, rank, date, take))
        rest[at] = need
    return parts, rest


def _single_location(
    stock: I64, need: I64, receipts: list[list[list[int]]], today: int, latest: int
) -> tuple[int, int] | None:
    """(rank, date) of the location that completes the order earliest (then by rank) from
    its own stock and receipts, if that date is ≤ ``latest``; else None. O(U·L + R)."""
    done = np.where(stock >= need[:, None], today, _NEVER)  # (U, L) day each SKU is covered
    for u, found in enumerate(receipts):
        have = stock[u].tolist()
        for date, rank, qty in found:
            have[rank] += qty
            if have[rank] >= need[u] and done[u, rank] == _NEVER:
                done[u, rank] = date
    by_location = done.max(axis=0)
    rank = int(by_location.argmin()) if by_location.size else -1  # first minimum: best rank
    return None if rank < 0 or by_location[rank] > latest else (rank, int(by_location[rank]))


def promise(
    state: State,
    *,
    skus: Sequence[str],
    qty: Sequence[int] | I64,
    uoms: Sequence[str] | None = None,
    region: str | None = None,
    locations: Sequence[str] | None = None,
    today: int,
    ship_complete: bool = False,
    max_shipments: int | None = None,
    need_by: int | None = None,
    max_lines: int = DEFAULT_MAX_LINES,
) -> PromisePlan:
    """Sourcing plan for an order: per line (location, base qty, ship date) and backorder.

    Quantities are in each line's UoM ('' or None: base); dates are days since 1970-01-01.
    Raises :class:`InvalidInput` / :class:`UnknownCode` for request-level problems only.
    Deterministic for one state and request; see the module docstring for the rules.
    """
    n = len(skus)
    if n == 0:
        raise InvalidInput("lines", "no lines", "at least 1")
    if n > max_lines:
        raise LimitExceeded("lines", f"{n} lines", f"at most {max_lines} per request")
    if max_shipments is not None and max_shipments < 1:
        raise InvalidInput("max_shipments", f"{max_shipments}", "at least 1")
    locs = location_set(state, locations, region)
    lines = resolve_lines(state, skus, qty, uoms)
    sku, status, base_qty = lines.sku, lines.status, lines.base_qty
    planned = np.nonzero(base_qty > 0)[0]
    usku, uidx = np.unique(sku[planned], return_inverse=True)
    need = np.zeros(usku.size, dtype=np.int64)
    np.add.at(need, uidx, base_qty[planned])
    raw = available_now(state, usku, locs)
    stock = np.clip(raw, 0, None)
    lead = state.items["lead_time_days"][usku].astype(np.int64)
    active = state.items["status"][usku] == int(ItemStatus.ACTIVE)
    backorder = np.zeros(n, dtype=np.int64)
    backorder_date = np.full(n, -1, dtype=np.int64)

    whole = np.nonzero((stock >= need[:, None]).all(axis=0))[0]
    single = (int(whole[0]), today) if whole.size else None
    parts: list[Part] = []
    if single is None:
        budget = float("inf") if max_shipments is None else max_shipments
        args = (planned.tolist(), uidx.tolist(), base_qty.tolist())
        receipts = _receipts(state, usku, active, locs, raw, today)
        parts, rest = fill_lines(*args, stock, receipts, budget, ship_complete, today)
        backorder[planned] = short = np.array(rest, dtype=np.int64)
        dated = active[uidx] & (lead[uidx] >= 0)
        backorder_date[planned] = np.where(dated & (short > 0), today + lead[uidx], -1)
        if ship_complete:
            dates = [part[2] for part in parts] + backorder_date[backorder > 0].tolist()
            undated = bool(((short > 0) & ~dated).any()) or not dates
            complete = -1 if undated else max(dates)
            single = _single_location(
                stock, need, receipts, today, _NEVER - 1 if undated else complete
            )
            if single is None and not undated:  # all ships on one date: re-source by then
                by_then = stock.copy()
                for u, found in enumerate(receipts):
                    for date, rank, q in found:
                        by_then[u, rank] += q if date <= complete else 0
                again, rest_again = fill_lines(
                    *args, by_then, [[]] * len(usku), budget, True, complete
                )
                if rest_again == rest and len({p[1] for p in again}) <= len({p[1] for p in parts}):
                    parts = again
            parts = [(line, rank, complete, q) for line, rank, _, q in parts]
            backorder_date[backorder > 0] = complete
    if single is not None:
        parts = [(line, single[0], single[1], base_qty[line]) for line in planned.tolist()]
        backorder[:], backorder_date[:] = 0, -1

    merged: dict[tuple[int, int, int], int] = {}
    for line, rank, date, q in parts:
        merged[(line, date, rank)] = merged.get((line, date, rank), 0) + q
    cols = np.array([(*k, q) for k, q in sorted(merged.items())], dtype=np.int64).reshape(-1, 4)
    alloc_line, alloc_date, alloc_rank, alloc_qty = np.ascontiguousarray(cols.T)
    ok = status == int(LineStatus.OK)
    line_date = np.where(ok, today, -1).astype(np.int64)
    np.maximum.at(line_date, alloc_line, alloc_date)
    has_backorder = backorder > 0
    line_date = np.where(has_backorder, np.maximum(line_date, backorder_date), line_date)
    line_date[has_backorder & (backorder_date < 0)] = -1
    line_date[alloc_line[alloc_date < 0]] = -1  # ship_complete without a date
    complete = -1 if not ok.any() or (line_date[ok] < 0).any() else int(line_date[ok].max())
    line_meets = None if need_by is None else ok & (line_date >= 0) & (line_date <= need_by)
    return PromisePlan(
        AsOf(state.version, dict(state.stream_ids), state.newest_ts_ms),
        locs, sku, status, base_qty,
        alloc_line, locs[alloc_rank], alloc_qty, alloc_date,
        backorder, backorder_date, line_date, line_meets,
        len(set(zip(alloc_rank.tolist(), alloc_date.tolist(), strict=True))),
        complete, None if need_by is None else 0 <= complete <= need_by,
    )  # fmt: skip
