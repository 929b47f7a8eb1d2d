"""Versioned, idempotent application of change events to the state (DESIGN §6).

``apply_batch`` applies a whole batch at once: readers of the state see it before or after,
never in between (the writer runs it between reads). The rules that make replays,
duplicates and out-of-order delivery converge to one state:

- A keyed event applies only when its ``version`` is greater than the stored version of its
  key; within a batch, the highest version per key wins. Deletes leave tombstones that keep
  their version, so an older replayed set cannot resurrect a deleted row.
- ``InventorySet`` is absolute; ``InventoryAdjust`` is relative, deduplicated by
  ``event_id``, and applies only when its version is greater than the last set of its
  SKU-location. Adjusts newer than the last set are kept in the *adjust log*; when an
  older-versioned set arrives after them, they are re-added on top of it, so the result is
  ``set(max version) + Σ adjusts newer than it`` whatever the arrival order. The log drops
  entries a newer set has absorbed; it is capped at ``ADJUST_LOG_LIMIT`` entries (oldest
  forgotten first) — feed periodic absolute counts, as WMS cycle counts do.
- Unknown SKUs and locations in an event are **registered implicitly**: the event is stored
  and the SKU stays invisible to quotes (status UNKNOWN) until its ItemUpsert arrives, so
  nothing is lost or parked. The count of such SKUs is in :func:`implicit_skus`. A hold is
  the exception: it never creates a code (a Reserve naming junk codes would otherwise grow
  the state and make the junk price); a hold naming an unknown SKU or location is rejected.
- Code tables never outgrow how their ids are packed (``engine.state.CODE_TABLE_LIMITS``:
  4096 locations, 2**31 SKUs, 2**30 contracts, 1024 currencies, …): validation
  (``engine.validate.check_batch``) rejects, before anything is written, each event whose
  new codes would take a table past its limit, naming the field and the limit; the rest of
  the batch applies. A code id past its packing would alias another row or cell.
- Holds are decided in stream order, with time from the batch clock (stream ids), never the
  replica's wall clock. A hold belongs to an account: it is keyed by (account, hold key),
  so another account's hold of the same key is another hold, and only its account releases
  it; the same account reusing a key with other lines is rejected.

Order inside a batch: master data, then pricing, then inventory, then holds — equivalent to
stream order for versioned events, since each key converges to its highest version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from engine import events as ev
from engine.inventory_apply import (
    apply_adjusts,
    apply_inbound,
    apply_sets,
    distinct_skus,
    expire_holds,
    hold_of,
    place_hold,
    release_hold,
)
from engine.state import (
    GROUP_TARGET,
    MAX_TIERS,
    NO_END,
    Disclosure,
    ItemStatus,
    LineKind,
    State,
    contract_line_key,
    price_key,
)
from engine.validate import CheckedBatch, check_batch

__all__ = ["ApplyResult", "apply_batch", "day_number", "implicit_skus"]

I64 = npt.NDArray[np.int64]
EPOCH = dt.date(1970, 1, 1)


def day_number(value: dt.date | None, default: int = 0) -> int:
    """Days since 1970-01-01 (the engine's date unit); ``default`` for None."""
    return default if value is None else (value - EPOCH).days


@dataclass
class ApplyResult:
    """What one batch did. ``rejected`` holds (index in the batch, reason) for the DLQ."""

    version: int
    applied: int = 0
    stale: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    skus_changed: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ApplyResult):
            return NotImplemented
        return (self.version, self.applied, self.stale, self.rejected) == (
            other.version, other.applied, other.stale, other.rejected,
        ) and np.array_equal(self.skus_changed, other.skus_changed)  # fmt: skip

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value


def implicit_skus(state: State) -> int:
    """How many SKUs are known only from events, still waiting for their ItemUpsert."""
    return int((state.items["status"][: state.items.n] == ItemStatus.UNKNOWN).sum())


def _newest(indexed: Iterable[tuple[int, Any]], key_of: Any) -> list[tuple[int, Any]]:
    """Highest-version event per key (first seen wins a tie), as (batch index, event)."""
    best: dict[Any, tuple[int, Any]] = {}
    for index, event in indexed:
        key = key_of(event)
        held = best.get(key)
        if held is None or event.version > held[1].version:
            best[key] = (index, event)
    return list(best.values())


def _tiers_arrays(tiers: Sequence[tuple[int, int]]) -> tuple[I64, I64]:
    mins = np.full(MAX_TIERS, np.iinfo(np.int64).max, dtype=np.int64)
    values = np.zeros(MAX_TIERS, dtype=np.int64)
    for i, (minimum, value) in enumerate(tiers):
        mins[i], values[i] = minimum, value
    return mins, values


def _sku(state: State, code: str) -> int:
    sku = state.skus.intern(code)
    if sku >= state.items.n:
        state.ensure_skus()
    return sku


def _location(state: State, code: str) -> int:
    location = state.locations.intern(code)
    if location >= state.location_rows.n:
        state.ensure_locations()
    return location


def _upsert_item(state: State, e: ev.ItemUpsert) -> bool:
    sku = _sku(state, e.sku)
    items = state.items
    if e.version <= items["version"][sku]:
        return False
    uoms = [(state.uoms.intern(e.base_uom), 1)] + [
        (state.uoms.intern(code), factor) for code, factor in sorted(e.uoms.items())
    ]
    items["uom_code"][sku] = -1
    items["uom_factor"][sku] = 0
    for slot, (code, factor) in enumerate(uoms):
        items["uom_code"][sku, slot] = code
        items["uom_factor"][sku, slot] = factor
    group = -1
    if e.product_group is not None:
        group = state.product_groups.intern(e.product_group)
        if group >= state.groups.n:
            state.ensure_rows()
            state.recompute_group_chains()
    items["status"][sku] = ItemStatus[e.status]
    items["version"][sku] = e.version
    items["base_uom"][sku] = uoms[0][0]
    items["min_order_qty"][sku] = e.min_order_qty
    items["order_multiple"][sku] = e.order_multiple
    items["product_group"][sku] = group
    cost = e.replacement_cost_micros
    items["cost_micros"][sku] = -1 if cost is None else cost
    items["cost_currency"][sku] = state.currency_id(e.cost_currency)
    items["lead_time_days"][sku] = -1 if e.lead_time_days is None else e.lead_time_days
    return True


def _upsert_group(state: State, e: ev.ProductGroupUpsert) -> bool:
    group = state.product_groups.intern(e.product_group)
    parent = -1 if e.parent is None else state.product_groups.intern(e.parent)
    state.ensure_rows()
    if e.version <= state.groups["version"][group]:
        return False
    state.groups["version"][group] = e.version
    state.groups["parent"][group] = parent
    state.recompute_group_chains()
    return True


def _upsert_location(state: State, e: ev.LocationUpsert) -> bool:
    location = _location(state, e.location)
    rows = state.location_rows
    if e.version <= rows["version"][location]:
        return False
    rows["version"][location] = e.version
    rows["active"][location] = e.active
    return True


def _upsert_region(state: State, e: ev.RegionUpsert) -> bool:
    region = state.regions.intern(e.region)
    if e.version <= state.region_versions.get(region, -1):
        return False
    ranked = [_location(state, code) for code in e.locations]
    state.region_locations[region] = np.array(list(dict.fromkeys(ranked)), dtype=np.int64)
    state.region_versions[region] = e.version
    return True


def _upsert_account(state: State, e: ev.AccountUpsert) -> bool:
    account = state.accounts.intern(e.account)
    parent = -1 if e.parent is None else state.accounts.intern(e.parent)
    groups = [state.price_groups.intern(code) for code in e.price_groups]
    state.ensure_rows()
    rows = state.account_rows
    if e.version <= rows["version"][account]:
        return False
    rows["version"][account] = e.version
    rows["parent"][account] = parent
    rows["price_list"][account] = (
        -1 if e.price_list is None else state.price_lists.intern(e.price_list)
    )
    rows["currency"][account] = state.currency_id(e.currency)
    rows["price_groups"][account] = -1
    rows["price_groups"][account, : len(groups)] = groups
    rows["disclosure"][account] = Disclosure[e.disclosure]
    rows["disclosure_cap"][account] = e.disclosure_cap
    return True


def _upsert_contract(state: State, e: Any) -> bool:
    # e: ContractUpsert or ContractDelete (duck-typed, told apart by class name)
    contract = state.contracts.intern(e.contract)
    state.ensure_rows()
    rows = state.contract_rows
    if e.version <= rows["version"][contract]:
        return False
    rows["version"][contract] = e.version
    if type(e).__name__ == "ContractDelete":
        rows["active"][contract] = False
        rows["assign_all"][contract] = False
        state.contract_accounts.pop(contract, None)
        state.contract_price_groups.pop(contract, None)
        return True
    rows["active"][contract] = True
    rows["currency"][contract] = state.currency_id(e.currency)
    rows["priority"][contract] = e.priority
    rows["valid_from"][contract] = day_number(e.valid_from, 0)
    rows["valid_to"][contract] = day_number(e.valid_to, NO_END)
    rows["assign_all"][contract] = e.all_accounts
    state.contract_accounts[contract] = tuple(state.accounts.intern(a) for a in e.accounts)
    state.contract_price_groups[contract] = tuple(
        state.price_groups.intern(g) for g in e.price_groups
    )
    state.ensure_rows()
    return True


def _keyed_row(columns: Any, index: Any, key: int, pending: dict[int, int]) -> int:
    """Row of ``key``, appending a blank row (indexed at the end of the batch) if new."""
    found = pending.get(key)
    if found is not None:
        return found
    row = int(index.find(np.array([key], dtype=np.int64))[0])
    if row < 0:
        row = int(columns.append_blank(1)[0])
        columns["key"][row] = key
        pending[key] = row
    return row


def _set_price(state: State, e: Any, pending: dict[int, int]) -> bool:
    # e: PriceSet or PriceDelete
    sku = _sku(state, e.sku)
    book = state.price_lists.intern(e.price_list)
    key = int(price_key(book, state.currency_id(e.currency), sku))
    row = _keyed_row(state.prices, state.price_index, key, pending)
    prices = state.prices
    if e.version <= prices["version"][row]:
        return False
    prices["version"][row] = e.version
    prices["active"][row] = type(e).__name__ == "PriceSet"
    if type(e).__name__ == "PriceSet":
        prices["uom"][row] = -1 if e.uom is None else state.uoms.intern(e.uom)
        prices["valid_from"][row] = day_number(e.valid_from, 0)
        prices["valid_to"][row] = day_number(e.valid_to, NO_END)
        prices["n_tiers"][row] = len(e.tiers)
        prices["tier_min"][row], prices["tier_value"][row] = _tiers_arrays(e.tiers)
    return True


def _set_line(state: State, e: Any, pending: dict[int, int]) -> bool:
    # e: ContractLineSet or ContractLineDelete
    contract = state.contracts.intern(e.contract)
    state.ensure_rows()
    if e.sku is not None:
        target = _sku(state, e.sku)
    else:
        assert e.product_group is not None
        target = GROUP_TARGET + state.product_groups.intern(e.product_group)
        state.ensure_rows()
        state.recompute_group_chains()
    key = int(contract_line_key(target, contract))
    lines = state.lines
    row = _keyed_row(lines, state.line_index, key, pending)
    if e.version <= lines["version"][row]:
        return False
    lines["version"][row] = e.version
    lines["contract"][row] = contract
    lines["target"][row] = target
    lines["active"][row] = type(e).__name__ == "ContractLineSet"
    if type(e).__name__ == "ContractLineSet":
        lines["kind"][row] = LineKind[e.kind]
        lines["uom"][row] = -1 if e.uom is None else state.uoms.intern(e.uom)
        lines["n_tiers"][row] = len(e.tiers)
        lines["tier_min"][row], lines["tier_value"][row] = _tiers_arrays(e.tiers)
    return True


_MASTER: dict[str, Any] = {
    "ProductGroupUpsert": (_upsert_group, lambda e: e.product_group),
    "ItemUpsert": (_upsert_item, lambda e: e.sku),
    "LocationUpsert": (_upsert_location, lambda e: e.location),
    "RegionUpsert": (_upsert_region, lambda e: e.region),
    "AccountUpsert": (_upsert_account, lambda e: e.account),
    "ContractUpsert": (_upsert_contract, lambda e: e.contract),
    "ContractDelete": (_upsert_contract, lambda e: e.contract),
}
_PRICING_EPOCH = ("AccountUpsert", "ContractUpsert", "ContractDelete", "ProductGroupUpsert")


def _known_columns(
    resolved: tuple[I64, dict[str, I64]] | None, grouped: list[tuple[int, Any]], whole: bool
) -> dict[str, I64] | None:
    """The columns validation read for the events of ``grouped`` (the valid ones of a
    kind, in batch order); ``whole``: they are the whole batch."""
    if resolved is None:
        return None
    positions, columns = resolved
    if whole or positions.size == len(grouped):
        return columns
    kept = np.fromiter((index for index, _ in grouped), np.int64, len(grouped))
    at = np.searchsorted(positions, kept)
    return {name: column[at] for name, column in columns.items()}


def apply_batch(
    state: State,
    events: Sequence[Any],
    *,
    stream_ids: Mapping[str, str] | None = None,
    clock_ms: int | None = None,
    event_ms: Sequence[int] | None = None,
    checked: CheckedBatch | None = None,
) -> ApplyResult:
    """Apply a batch of events to ``state`` in place; returns what happened.

    ``clock_ms`` is the batch's stream time (the newest stream id in it): holds expire
    against it; it defaults to the newest ``ts_ms`` applied so far, this batch included
    (the clock never goes back). ``event_ms`` gives each
    event its own stream time, when a hold is placed; without it, a hold is placed at its
    ``ts_ms`` (or the batch clock). Both come from the stream, so replicas that split the
    same entries into different batches still place and expire holds alike. The state
    version goes up by one per call. Invalid events are rejected with a reason and
    skipped; the rest applies. ``checked`` may pass in ``engine.validate.check_batch``
    already computed for these events on an equal state (the multi-process writer applies
    each batch to two equal instances and validates once).
    """
    result = ApplyResult(version=state.version + 1)
    changed: list[I64] = []  # SKU ids whose stock may have changed, per step
    by_type: dict[str, list[tuple[int, Any]]] = {}
    holds: list[tuple[int, Any]] = []
    newest_ts = state.newest_ts_ms
    if checked is None:
        checked = check_batch(events, state)
    problems, groups, resolved = checked.problems, checked.groups, checked.resolved
    all_valid = problems.count(None) == len(events)
    valid: Sequence[Any] = events
    if all_valid:  # the usual stream batch: grouped by kind without a loop per event
        for kind, indices in groups.items():
            grouped = (
                list(enumerate(events))
                if len(groups) == 1
                else list(zip(indices, map(events.__getitem__, indices), strict=True))
            )
            if kind in ("HoldPlace", "HoldRelease"):
                holds += grouped
            else:
                by_type[kind] = grouped
        holds.sort(key=itemgetter(0))  # places and releases, in batch order
    else:
        valid = []
        for index, event in enumerate(events):
            problem = problems[index]
            if problem is not None:
                result.rejected.append((index, problem))
                continue
            valid.append(event)
            kind = type(event).__name__
            if kind in ("HoldPlace", "HoldRelease"):
                holds.append((index, event))
            else:
                by_type.setdefault(kind, []).append((index, event))
    newest_ts = max(map(attrgetter("ts_ms"), valid), default=newest_ts)
    newest_ts = max(newest_ts, state.newest_ts_ms)
    clock = max(state.clock_ms, clock_ms if clock_ms is not None else newest_ts)

    def count(applied: bool) -> None:
        if applied:
            result.applied += 1
        else:
            result.stale += 1

    for kind, (apply_one, key_of) in _MASTER.items():
        batch = by_type.get(kind, [])
        newest = _newest(batch, key_of)
        result.stale += len(batch) - len(newest)
        for _, event in newest:
            count(apply_one(state, event))
        if kind in _PRICING_EPOCH and batch:
            state.pricing_epoch += 1

    contracts_before = len(state.contracts)
    for kinds, setter, key_index, key_of in (
        (
            ("PriceSet", "PriceDelete"),
            _set_price,
            state.price_index,
            lambda e: (e.price_list, e.currency, e.sku),
        ),
        (
            ("ContractLineSet", "ContractLineDelete"),
            _set_line,
            state.line_index,
            lambda e: (e.contract, e.sku, e.product_group),
        ),
    ):
        batch = [item for kind in kinds for item in by_type.get(kind, [])]
        newest = _newest(batch, key_of)
        result.stale += len(batch) - len(newest)
        pending: dict[int, int] = {}
        for _, event in newest:
            count(setter(state, event, pending))
        if pending:
            keys = np.fromiter(pending.keys(), dtype=np.int64, count=len(pending))
            rows = np.fromiter(pending.values(), dtype=np.int64, count=len(pending))
            key_index.insert(keys, rows)
    group_lines = any(e.product_group is not None for _, e in by_type.get("ContractLineSet", []))
    if len(state.contracts) != contracts_before or group_lines:
        # cached contexts are sized by the contract count and hold the group lines
        state.pricing_epoch += 1

    appliers: tuple[tuple[str, Callable[..., tuple[int, I64]]], ...] = (
        ("InventorySet", apply_sets),
        ("InventoryAdjust", apply_adjusts),
        ("InboundSet", apply_inbound),
    )
    for kind, applier in appliers:
        grouped = by_type.get(kind, [])
        whole = len(grouped) == len(events)
        stock: Sequence[Any] = events if whole else [e for _, e in grouped]
        if stock:
            known = _known_columns(resolved.get(kind), grouped, whole)
            applied, skus = applier(state, stock, _sku, _location, known)
            result.applied += applied
            result.stale += len(stock) - applied
            changed.append(np.asarray(skus, dtype=np.int64))

    changed.append(np.array(expire_holds(state, clock), dtype=np.int64))
    for index, event in holds:
        if type(event).__name__ == "HoldPlace":
            placed = event_ms[index] if event_ms is not None else (event.ts_ms or clock)
            problem = place_hold(state, event, clock, placed)
            if problem is not None:
                result.rejected.append((index, problem))
                continue
        else:
            release_hold(state, event.account, event.hold_key)
        result.applied += 1
        hold = hold_of(state, event.account, event.hold_key)
        if hold is not None:
            changed.append(hold.sku)

    result.skus_changed = (
        distinct_skus(state, np.concatenate(changed)) if changed else result.skus_changed
    )
    state.clock_ms = clock
    state.newest_ts_ms = newest_ts
    if stream_ids:
        state.stream_ids.update(stream_ids)
    state.version = result.version
    return result
