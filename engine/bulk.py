"""Bulk build: a whole :class:`~engine.state.State` from the columnar tables of an extract.

A full reload (DESIGN §7) starts from a bulk extract shaped like an ERP export: one table
per entity, given as columns. :func:`build_state` gives the state that applying the
*equivalent events* (below) in one batch through :func:`engine.deltas.apply_batch` gives —
the same code ids, the same rows in the same order, the same indexes and versions — with
array work instead of one Python object per row: 10M contract lines take seconds.

Tables (:data:`EXTRACT_SCHEMA` lists the columns; ``?`` marks an optional or nullable one;
every table may also carry ``version``, the source change number, which defaults to the
extract version). Equivalent events:

- ``product_groups`` row → ProductGroupUpsert. ``locations`` row → LocationUpsert.
- ``regions`` rows of one region → RegionUpsert, locations ordered by ``rank`` (rows
  without a rank last, in file order); version: the highest of its rows.
- ``items`` row → ItemUpsert with ``uoms`` from its ``item_uoms`` rows: a dict in file
  order (the last row of a UoM wins), without the base UoM when its factor is 1. A bad
  UoM row rejects the item.
- ``accounts`` row → AccountUpsert (``price_groups`` is an ordered list of codes).
- ``contracts`` row → ContractUpsert with the ``contract_assignments`` rows of that
  contract in file order: ``assign_to`` ACCOUNT or PRICE_GROUP with ``code``, or ALL. An
  invalid assignment row is rejected on its own; the contract keeps the others.
- ``price_lists`` row (one price entry: list, currency, SKU) → PriceSet with the
  ``price_breaks`` rows of the same ``price_id`` as tiers, sorted by ``min_qty``.
- ``contract_lines`` row → ContractLineSet with the ``contract_line_breaks`` rows of the
  same ``line_id`` as tiers, sorted by ``min_qty``.
- ``stock`` row → InventorySet. ``inbound`` rows of one SKU-location → InboundSet with
  the receipts in file order; version: the highest of its rows.

Invalid rows are skipped exactly as ``apply_batch`` rejects the event, and reported to
``on_reject(table, rows, reason)``; without a handler the first one raises
:class:`~engine.errors.InvalidInput`. Break rows whose id matches no row are reported too.
An extract with more distinct codes of a kind than its code table may hold
(``engine.state.CODE_TABLE_LIMITS``) fails the build with
:class:`~engine.errors.LimitExceeded` before those codes are interned (the small master
tables, applied as events, reject the rows past the limit instead).

Input columns: a code column is a sequence of ``str`` (``None`` = null) or a :class:`Coded`
(dictionary-encoded: what Parquet and Arrow hand over, so each distinct code is validated
and interned once); an integer column is an integer array (:data:`NULL_INT` = null) or a
sequence of ``int``/``None``; a date column is days since 1970-01-01 as integers, a
``datetime64[D]`` array (NaT = null) or a sequence of ``datetime.date``/``None``. Floats
are refused: money is integer micros.

Cost: O(rows) array work plus a few sorts — O(n log n) in the contract lines and breaks.
Small master tables (groups, locations, regions, accounts, contracts) go through
``apply_batch`` itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from engine import events as ev
from engine.catalog import MAX_BASE_QTY, MAX_UOM_FACTOR
from engine.codes import CodeTable, validate_code
from engine.deltas import EPOCH, apply_batch
from engine.errors import InvalidInput, LimitExceeded
from engine.inventory_apply import set_positions
from engine.state import (
    CODE_TABLE_LIMIT_REASONS,
    CODE_TABLE_LIMITS,
    GROUP_TARGET,
    MAX_TIERS,
    MAX_UOMS,
    NO_END,
    ItemStatus,
    LineKind,
    State,
    contract_line_key,
    inbound_key,
    price_key,
)
from engine.validate import (
    KINDS,
    MAX_BPS_COST_PLUS,
    MAX_LEAD_TIME_DAYS,
    MAX_PRICE_MICROS,
    MAX_RECEIPTS,
    STATUSES,
)

__all__ = [
    "EXTRACT_SCHEMA",
    "NULL_INT",
    "STAGES",
    "Coded",
    "Progress",
    "RejectHandler",
    "build_state",
]

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
NULL_INT = int(np.iinfo(np.int64).min)  # null in an integer or date column
Progress = Callable[[str, int, int], None]  # (stage, done, total)
RejectHandler = Callable[[str, I64, str], None]  # (table, row numbers, reason)
_BIG = np.iinfo(np.int64).max
_MAX_VERSION = np.iinfo(np.int64).max
_MIN_DAY = (dt.date.min - EPOCH).days
_MAX_DAY = (dt.date.max - EPOCH).days
#: code kind → the State's code table of it (``CODE_TABLE_LIMITS`` is by table)
_TABLE_OF_KIND = {
    "sku": "skus",
    "location": "locations",
    "region": "regions",
    "account": "accounts",
    "contract": "contracts",
    "price_list": "price_lists",
    "price_group": "price_groups",
    "product_group": "product_groups",
    "uom": "uoms",
    "currency": "currencies",
}

#: Tables of an extract → column → kind (code, str, int, date, bool, codes); "?": optional.
EXTRACT_SCHEMA: dict[str, dict[str, str]] = {
    "product_groups": {"product_group": "code", "parent": "code?"},
    "locations": {"location": "code", "active": "bool?"},
    "regions": {"region": "code", "location": "code", "rank": "int?"},
    "items": {
        "sku": "code", "status": "str?", "base_uom": "code?", "product_group": "code?",
        "min_order_qty": "int?", "order_multiple": "int?", "replacement_cost_micros": "int?",
        "cost_currency": "code?", "lead_time_days": "int?",
    },
    "item_uoms": {"sku": "code", "uom": "code", "factor": "int"},
    "accounts": {
        "account": "code", "parent": "code?", "price_list": "code?", "currency": "code?",
        "price_groups": "codes?", "disclosure": "str?", "disclosure_cap": "int?",
    },
    "contracts": {
        "contract": "code", "currency": "code?", "priority": "int?", "valid_from": "date?",
        "valid_to": "date?",
    },
    "contract_assignments": {"contract": "code", "assign_to": "str", "code": "code?"},
    "price_lists": {
        "price_id": "int", "price_list": "code", "currency": "code", "sku": "code",
        "uom": "code?", "valid_from": "date?", "valid_to": "date?",
    },
    "price_breaks": {"price_id": "int", "min_qty": "int", "price_micros": "int"},
    "contract_lines": {
        "line_id": "int", "contract": "code", "sku": "code?", "product_group": "code?",
        "kind": "str?", "uom": "code?",
    },
    "contract_line_breaks": {"line_id": "int", "min_qty": "int", "value": "int"},
    "stock": {
        "sku": "code", "location": "code", "on_hand": "int?", "allocated": "int?",
        "safety_stock": "int?",
    },
    "inbound": {"sku": "code", "location": "code", "expected_date": "date", "qty": "int"},
}  # fmt: skip
_BREAKS = {"price_breaks", "contract_line_breaks", "item_uoms", "contract_assignments"}
for _name, _columns in EXTRACT_SCHEMA.items():
    if _name not in _BREAKS:
        _columns["version"] = "int?"

#: Progress stages, in the order :func:`build_state` reports them.
STAGES = (
    "master data", "items", "accounts and contracts", "price lists", "contract lines",
    "stock", "inbound",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Coded:
    """A dictionary-encoded code column: row i holds ``values[indices[i]]``; -1 is null."""

    indices: npt.NDArray[np.integer[Any]]
    values: Sequence[object]

    def __len__(self) -> int:
        return int(self.indices.size)


# ---------------------------------------------------------------------------------------
# Column normalisation and row checks


@dataclass(frozen=True, slots=True)
class _Ints:
    values: I64  # the default where null
    null: B
    bad: B  # not an integer at all (a row that cannot be an event)


class _Table:
    """One input table: typed access to its columns and the running verdict of its rows."""

    def __init__(self, name: str, columns: Mapping[str, Any] | None, on_reject: Any) -> None:
        self.name = name
        self.columns = dict(columns or {})
        self.on_reject: RejectHandler | None = on_reject
        lengths = {len(column) for column in self.columns.values()}
        if len(lengths) > 1:
            raise InvalidInput(name, f"columns of different lengths {sorted(lengths)}")
        self.n = lengths.pop() if lengths else 0
        for column, kind in EXTRACT_SCHEMA[name].items():
            if self.n and not kind.endswith("?") and column not in self.columns:
                raise InvalidInput(f"{name}.{column}", "missing column")
        self.ok = np.ones(self.n, dtype=np.bool_)

    def reject(self, bad: B, field: str, problem: str, limit: str | None = None) -> None:
        """Mark rows ``bad`` (not yet rejected) as rejected for one reason."""
        new = np.nonzero(bad & self.ok)[0]
        if new.size == 0:
            return
        self.ok[new] = False
        if self.on_reject is None:
            raise InvalidInput(f"{self.name}[{int(new[0])}].{field}", problem, limit)
        self.on_reject(self.name, new.astype(np.int64), str(InvalidInput(field, problem, limit)))

    def codes(self, column: str, default: str | None = None) -> tuple[I64, list[object]]:
        """(value index per row, -1 null; distinct values) with nulls read as ``default``."""
        data = self.columns.get(column)
        if data is None:
            indices, values = np.full(self.n, -1, dtype=np.int64), []
        elif isinstance(data, Coded):
            indices, values = np.asarray(data.indices, dtype=np.int64), list(data.values)
        else:
            seen: dict[object, int] = {}
            indices = np.fromiter(
                (-1 if v is None else seen.setdefault(_text(v), len(seen)) for v in data),
                dtype=np.int64,
                count=self.n,
            )
            values = list(seen)
        if default is not None:
            null = indices < 0
            if null.any():
                values = [*values, default]
                indices = np.where(null, len(values) - 1, indices)
        return indices, values

    def ints(self, column: str, default: int | None = None, *, date: bool = False) -> _Ints:
        """An integer (or date, as days) column; nulls read as ``default`` when given."""
        data = self.columns.get(column)
        fill = NULL_INT if default is None else default
        if data is None:
            values = np.full(self.n, fill, dtype=np.int64)
            null = np.full(self.n, default is None)
            return _Ints(values, null, np.zeros(self.n, dtype=np.bool_))
        array = data if isinstance(data, np.ndarray) else None
        if array is not None and array.dtype.kind == "M":
            days = array.astype("datetime64[D]")
            values = days.astype(np.int64)
            null = np.isnat(days)
        elif array is not None and array.dtype.kind in "iu":
            values = array.astype(np.int64)
            null = values == NULL_INT
        elif array is not None and array.dtype.kind in "fcb":
            raise InvalidInput(f"{self.name}.{column}", f"{array.dtype} values", "integers")
        else:
            items = [_py_int(v, date) for v in data]
            null = np.fromiter((v is None for v in items), dtype=np.bool_, count=self.n)
            bad = np.fromiter((v is False for v in items), dtype=np.bool_, count=self.n)
            values = np.fromiter(
                (v if type(v) is int else NULL_INT for v in items), dtype=np.int64, count=self.n
            )
            values = np.where(null, fill, values)
            return _Ints(values, null & (default is None), bad)
        values = np.where(null, fill, values)
        return _Ints(values, null & (default is None), np.zeros(self.n, dtype=np.bool_))

    def pylist(self, column: str, kind: str) -> list[Any]:
        """A column as Python values (None for null), for the small master tables."""
        data = self.columns.get(column)
        if data is None:
            return [None] * self.n
        if kind in ("code", "str"):
            indices, values = self.codes(column)
            return [None if i < 0 else values[i] for i in indices.tolist()]
        if kind in ("int", "date"):
            ints = self.ints(column, date=kind == "date")
            out: list[Any] = []
            for value, null, bad in zip(
                ints.values.tolist(), ints.null.tolist(), ints.bad.tolist(), strict=True
            ):
                if bad:
                    out.append(data[len(out)])  # not an integer: let validation name it
                elif null:
                    out.append(None)
                elif kind == "date":
                    out.append(_to_date(value))
                else:
                    out.append(value)
            return out
        if kind == "bool":
            return [None if v is None else bool(v) for v in np.asarray(data, dtype=object)]
        return [None if v is None else (_split(v) if isinstance(v, str) else v) for v in data]

    def check_ints(
        self, ints: _Ints, field: str, low: int, high: int, *, required: bool = False
    ) -> None:
        """Reject rows whose value is not an integer in [low, high] (null: if required)."""
        self.reject(ints.bad, field, "must be an integer")
        if required:
            self.reject(ints.null, field, "missing")
        out = ~ints.null & ((ints.values < low) | (ints.values > high))
        self.reject(out, field, "out of range", f"{low}..{high}")

    def check_codes(
        self,
        kind: str,
        indices: I64,
        values: list[object],
        field: str,
        known: CodeTable | None = None,
        *,
        required: bool = True,
    ) -> None:
        """Reject rows whose code is not a valid ``kind`` code (null: if required)."""
        bad = np.zeros(len(values) + 1, dtype=np.bool_)
        for i, value in enumerate(values):
            if known is not None and value in known:
                continue
            try:
                validate_code(kind, value, field)
            except InvalidInput:
                bad[i] = True
        if required:
            self.reject(indices < 0, field, "missing")
        self.reject(bad[indices], field, f"not a valid {kind} code")


def _text(value: object) -> object:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value


def _split(value: str) -> list[str]:
    return [part for part in value.split("|") if part] if value else []


def _py_int(value: object, date: bool) -> int | bool | None:
    """An int (days for dates), None for null, False when it is not one."""
    if value is None:
        return None
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value
    if date and isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return (value - EPOCH).days
    if isinstance(value, np.integer):
        return int(value)
    return False


def _to_date(days: int) -> dt.date | int:
    if _MIN_DAY <= days <= _MAX_DAY:
        return EPOCH + dt.timedelta(days=days)
    return days  # not a date: validation rejects it


def _intern_in_order(table: CodeTable, values: list[object], sequence: I64) -> I64:
    """Id of each value, interning new ones in order of first appearance in ``sequence``.

    ``sequence`` holds value indices (-1 skipped) in the order apply_batch would meet them.
    Values that stay unknown (not in the sequence) get -1.
    """
    ids = table.lookup(cast(Sequence[str], values)) if values else np.zeros(0, np.int64)
    new = ids < 0
    seq = sequence[sequence >= 0]
    if seq.size and new[seq].any():
        seq = seq[new[seq]]
        unique, first = np.unique(seq, return_index=True)
        _check_room(table, unique.size)
        for value in unique[np.argsort(first)].tolist():
            ids[value] = table.intern(cast(str, values[value]))
    return ids


def _check_room(table: CodeTable, new: int) -> None:
    """Raise :class:`LimitExceeded` before interning ``new`` codes that would take
    ``table`` past its limit (``engine.state.CODE_TABLE_LIMITS``): an extract that large
    cannot be held, and a row must never alias another (see ``engine.validate``)."""
    name = _TABLE_OF_KIND[table.kind]
    limit = CODE_TABLE_LIMITS[name]
    if len(table) + new > limit:
        raise LimitExceeded(
            name,
            f"{len(table) + new} distinct {table.kind} codes",
            f"at most {limit}: {CODE_TABLE_LIMIT_REASONS[name]}",
        )


def _ids(value_ids: I64, indices: I64) -> I64:
    if value_ids.size == 0:
        return np.full(indices.shape, -1, dtype=np.int64)
    return np.where(indices >= 0, value_ids[np.maximum(indices, 0)], -1)


def _winners(key: I64, version: I64) -> I64:
    """Positions of the newest row per key (first seen on a tie), in first-seen key order."""
    if key.size == 0:
        return np.zeros(0, dtype=np.int64)
    ordered = np.sort(key)
    if (ordered[1:] != ordered[:-1]).all():
        return np.arange(key.size, dtype=np.int64)
    position = np.arange(key.size, dtype=np.int64)
    order = np.lexsort((position, -version, key))
    starts = np.ones(order.size, dtype=np.bool_)
    starts[1:] = key[order[1:]] != key[order[:-1]]
    first_seen = np.minimum.reduceat(order, np.nonzero(starts)[0])
    return order[starts][np.argsort(first_seen)]


def _picker(win: I64, n: int) -> Callable[[npt.NDArray[Any]], npt.NDArray[Any]]:
    """Rows ``win`` of an array; when every row won, in order, the array itself (no copy)."""
    if win.size == n:  # no rejects and no repeated keys: win is 0..n-1
        return lambda array: array
    return lambda array: array[win]


def _segments(sorted_keys: I64) -> tuple[B, I64]:
    """Segment starts of a sorted array, and each element's position in its segment."""
    starts = np.ones(sorted_keys.size, dtype=np.bool_)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    begin = np.maximum.accumulate(np.where(starts, np.arange(sorted_keys.size), 0))
    return starts, np.arange(sorted_keys.size) - begin


# ---------------------------------------------------------------------------------------
# Quantity breaks: a break table joined to its rows as inline tiers


@dataclass(frozen=True, slots=True)
class _Tiers:
    count: I64
    minimum: I64  # (n, MAX_TIERS)
    value: I64  # (n, MAX_TIERS)
    broken: B  # a break of the row is null or not an integer, or repeats a minimum


def _join_tiers(table: _Table, id_column: str, breaks: _Table, value_column: str) -> _Tiers:
    """Tiers of each row of ``table`` from the rows of ``breaks`` with the same id."""
    n = table.n
    row_id = table.ints(id_column)
    has_id = np.nonzero(~row_id.null & ~row_id.bad)[0]
    order = has_id[np.argsort(row_id.values[has_id], kind="stable")]
    sorted_ids = row_id.values[order]
    count = np.zeros(n, dtype=np.int64)
    minimum = np.full((n, MAX_TIERS), _BIG, dtype=np.int64)
    value = np.zeros((n, MAX_TIERS), dtype=np.int64)
    broken = np.zeros(n, dtype=np.bool_)
    if breaks.n == 0:
        return _Tiers(count, minimum, value, broken)
    b_id, b_min, b_value = (breaks.ints(c) for c in (id_column, "min_qty", value_column))
    b_bad = b_min.null | b_min.bad | b_value.null | b_value.bad
    ids, mins = b_id.values, b_min.values
    diff = np.diff(ids)
    if not ((diff > 0) | ((diff == 0) & (np.diff(mins) > 0))).all():
        b_order = np.lexsort((mins, ids))
    else:
        b_order = np.arange(breaks.n, dtype=np.int64)
    ids, mins = ids[b_order], mins[b_order]
    slot = np.minimum(np.searchsorted(sorted_ids, ids), max(sorted_ids.size - 1, 0))
    matched = ~(b_id.null | b_id.bad)[b_order]
    if sorted_ids.size:
        matched &= sorted_ids[slot] == ids
    else:
        matched[:] = False
    orphan = np.empty(breaks.n, dtype=np.bool_)
    orphan[b_order] = ~matched
    breaks.reject(orphan, id_column, f"no such {table.name} row")
    keep = np.nonzero(matched)[0]
    target = order[slot[keep]]  # first row with that id
    starts, position = _segments(ids[keep])
    repeated = ~starts & (np.diff(mins[keep], prepend=0) == 0)
    count += np.bincount(target, minlength=n)
    fits = position < MAX_TIERS
    minimum[target[fits], position[fits]] = mins[keep][fits]
    value[target[fits], position[fits]] = b_value.values[b_order][keep][fits]
    broken[target[b_bad[b_order][keep] | repeated]] = True
    first_row = order[np.searchsorted(sorted_ids, sorted_ids)]
    twin = first_row != order  # rows repeating an earlier row's id share its tiers
    if twin.any():
        twins, source = order[twin], first_row[twin]
        count[twins], minimum[twins] = count[source], minimum[source]
        value[twins], broken[twins] = value[source], broken[source]
    return _Tiers(count, minimum, value, broken)


def _check_tiers(table: _Table, tiers: _Tiers, low: I64 | int, high: I64 | int) -> None:
    table.reject(np.asarray(tiers.count == 0), "tiers", "empty", f"1..{MAX_TIERS} tiers")
    table.reject(
        np.asarray(tiers.count > MAX_TIERS), "tiers", "too many tiers", f"at most {MAX_TIERS}"
    )
    table.reject(tiers.broken, "tiers", "a break has no integer min_qty and value, or repeats one")
    used = np.arange(MAX_TIERS) < tiers.count[:, None]
    bad_min = used & ((tiers.minimum < 0) | (tiers.minimum > MAX_BASE_QTY))
    table.reject(
        np.asarray(bad_min.any(axis=1)), "tiers.min_qty", "out of range", f"0..{MAX_BASE_QTY}"
    )
    low_, high_ = np.asarray(low)[..., None], np.asarray(high)[..., None]
    bad_value = used & ((tiers.value < low_) | (tiers.value > high_))
    table.reject(
        np.asarray(bad_value.any(axis=1)), "tiers.value", "out of range for the line's kind"
    )


def _check_window(table: _Table, start: _Ints, end: _Ints) -> None:
    for ints, field in ((start, "valid_from"), (end, "valid_to")):
        table.reject(ints.bad, field, "must be a date")
        out = ~ints.null & ((ints.values < _MIN_DAY) | (ints.values > _MAX_DAY))
        table.reject(out, field, "not a date")
    both = ~start.null & ~end.null
    table.reject(both & (end.values <= start.values), "valid_to", "is not after valid_from")


# ---------------------------------------------------------------------------------------
# Stages


def _apply_small(state: State, tables: list[tuple[_Table, list[tuple[Any, I64]]]]) -> int:
    """Apply the events of small master tables with apply_batch; returns events applied."""
    batch: list[Any] = []
    origin: list[tuple[_Table, I64]] = []
    for table, events in tables:
        for event, rows in events:
            batch.append(event)
            origin.append((table, rows))
    if not batch:
        return 0
    result = apply_batch(state, batch)
    for index, reason in result.rejected:
        table, rows = origin[index]
        field, _, problem = reason.partition(": ")
        mask = np.zeros(table.n, dtype=np.bool_)
        mask[rows] = True
        table.reject(mask, field, problem)
    return len(batch) - len(result.rejected)


def _by_code(indices: I64) -> dict[int, I64]:
    """Rows of each value index, values in order of first appearance (-1 skipped)."""
    rows = np.nonzero(indices >= 0)[0]
    order = rows[np.argsort(indices[rows], kind="stable")]
    starts, _ = _segments(indices[order])
    groups = np.split(order, np.nonzero(starts)[0][1:]) if order.size else []
    ordered = sorted(groups, key=lambda g: int(g[0]))
    return {int(indices[g[0]]): g for g in ordered}


def _newest_version(versions: list[Any]) -> Any:
    """The highest version of the rows of one event; a non-integer one, for validation."""
    odd = [v for v in versions if type(v) is not int]
    return odd[0] if odd else max(versions)


def _master_events(
    groups: _Table, locations: _Table, regions: _Table, version: int, ts_ms: int
) -> list[tuple[_Table, list[tuple[Any, I64]]]]:
    def ver(table: _Table) -> list[Any]:
        return [version if v is None else v for v in table.pylist("version", "int")]

    out: list[tuple[_Table, list[tuple[Any, I64]]]] = []
    parents = groups.pylist("parent", "code")
    out.append((groups, [
        (ev.ProductGroupUpsert(product_group=code, parent=parent, version=v, ts_ms=ts_ms),
         np.array([i]))
        for i, (code, parent, v) in enumerate(
            zip(groups.pylist("product_group", "code"), parents, ver(groups), strict=True))
    ]))  # fmt: skip
    active = locations.pylist("active", "bool")
    out.append((locations, [
        (ev.LocationUpsert(location=code, active=a is not False, version=v, ts_ms=ts_ms),
         np.array([i]))
        for i, (code, a, v) in enumerate(
            zip(locations.pylist("location", "code"), active, ver(locations), strict=True))
    ]))  # fmt: skip
    region_index, region_values = regions.codes("region")
    where, rank = regions.pylist("location", "code"), regions.pylist("rank", "int")
    versions = ver(regions)
    events = []
    for value, rows in _by_code(region_index).items():
        ranked = sorted(rows.tolist(), key=lambda r: (rank[r] is None, rank[r] or 0, r))
        event = ev.RegionUpsert(
            region=cast(str, region_values[value]),
            locations=tuple(where[r] for r in ranked),
            version=_newest_version([versions[r] for r in ranked]),
            ts_ms=ts_ms,
        )
        events.append((event, rows))
    regions.reject(region_index < 0, "region", "missing")
    out.append((regions, events))
    return out


def _account_events(
    accounts: _Table, contracts: _Table, assignments: _Table, version: int, ts_ms: int
) -> list[tuple[_Table, list[tuple[Any, I64]]]]:
    def col(table: _Table, name: str) -> list[Any]:
        return table.pylist(name, EXTRACT_SCHEMA[table.name][name].rstrip("?"))

    a_version = [version if v is None else v for v in col(accounts, "version")]
    account_events = []
    for i, (code, parent, book, currency, groups, disclosure, cap, v) in enumerate(
        zip(
            *(col(accounts, c) for c in ("account", "parent", "price_list", "currency")),
            col(accounts, "price_groups"),
            col(accounts, "disclosure"),
            col(accounts, "disclosure_cap"),
            a_version,
            strict=True,
        )
    ):
        event = ev.AccountUpsert(
            account=code, parent=parent, price_list=book,
            currency="USD" if currency is None else currency,
            price_groups=tuple(groups or ()),
            disclosure="EXACT" if disclosure is None else disclosure,
            disclosure_cap=0 if cap is None else cap, version=v, ts_ms=ts_ms,
        )  # fmt: skip
        account_events.append((event, np.array([i])))

    # Assignments: each row stands alone; the contract gets its valid ones in file order.
    to = assignments.pylist("assign_to", "str")
    codes = assignments.pylist("code", "code")
    owners = assignments.pylist("contract", "code")
    kinds = {"ACCOUNT": "account", "PRICE_GROUP": "price_group"}
    targets: dict[object, dict[str, list[str]]] = {}
    contract_codes = set(col(contracts, "contract"))
    bad_reason: dict[str, list[int]] = {}
    for row, (owner, assign_to, code) in enumerate(zip(owners, to, codes, strict=True)):
        reason = None
        if owner not in contract_codes:
            reason = "contract: no such contract"
        elif assign_to not in ("ACCOUNT", "PRICE_GROUP", "ALL"):
            reason = f"assign_to: {assign_to!r} unknown (limit: ACCOUNT|PRICE_GROUP|ALL)"
        elif assign_to != "ALL":
            try:
                validate_code(kinds[assign_to], code, "code")
            except InvalidInput as error:
                reason = str(error)
        if reason is not None:
            bad_reason.setdefault(reason, []).append(row)
            continue
        slot = targets.setdefault(owner, {"account": [], "price_group": [], "ALL": []})
        slot[kinds.get(assign_to, "ALL")].append(code)
    for reason, rows in bad_reason.items():
        field, _, text = reason.partition(": ")
        mask = np.zeros(assignments.n, dtype=np.bool_)
        mask[rows] = True
        assignments.reject(mask, field, text)

    c_version = [version if v is None else v for v in col(contracts, "version")]
    contract_events = []
    for i, (code, currency, priority, start, end, v) in enumerate(
        zip(
            *(col(contracts, c) for c in ("contract", "currency", "priority")),
            col(contracts, "valid_from"),
            col(contracts, "valid_to"),
            c_version,
            strict=True,
        )
    ):
        slot = targets.get(code, {"account": [], "price_group": [], "ALL": []})
        contract = ev.ContractUpsert(
            contract=code, currency="USD" if currency is None else currency,
            priority=0 if priority is None else priority,
            valid_from=start, valid_to=end, accounts=tuple(slot["account"]),
            price_groups=tuple(slot["price_group"]), all_accounts=bool(slot["ALL"]),
            version=v, ts_ms=ts_ms,
        )  # fmt: skip
        contract_events.append((contract, np.array([i])))
    return [(accounts, account_events), (contracts, contract_events)]


def _items(state: State, items: _Table, uoms: _Table, version: int) -> int:
    """ItemUpsert rows, vectorised (with their item_uoms)."""
    n = items.n
    sku_i, sku_v = items.codes("sku")
    status_i, status_v = items.codes("status", "ACTIVE")
    base_i, base_v = items.codes("base_uom", "EA")
    group_i, group_v = items.codes("product_group")
    currency_i, currency_v = items.codes("cost_currency", "USD")
    moq, multiple = items.ints("min_order_qty", 0), items.ints("order_multiple", 1)
    cost, lead = items.ints("replacement_cost_micros"), items.ints("lead_time_days")
    versions = items.ints("version", version)

    # The UoM rows of each item: dict semantics (last row of a UoM wins), sorted by code.
    u_sku_i, u_sku_v = uoms.codes("sku")
    u_uom_i, u_uom_v = uoms.codes("uom")
    factor = uoms.ints("factor")
    joint = list(dict.fromkeys([*base_v, *u_uom_v]))
    position = {value: i for i, value in enumerate(joint)}
    base_j = np.array([position[v] for v in base_v], dtype=np.int64)[base_i]
    u_j = _ids(np.array([position[v] for v in u_uom_v], dtype=np.int64), u_uom_i)
    rank = np.empty(len(joint) + 1, dtype=np.int64)
    by_text = sorted(
        range(len(joint)), key=lambda j: (not isinstance(joint[j], str), str(joint[j]))
    )
    rank[by_text] = np.arange(len(joint))
    rank[-1] = -1  # a null UoM: invalid anyway
    sku_pos = {value: i for i, value in enumerate(sku_v)}
    u_item = _ids(np.array([sku_pos.get(v, -1) for v in u_sku_v], dtype=np.int64), u_sku_i)
    uoms.reject(u_item < 0, "sku", "no such item")
    live = np.nonzero(u_item >= 0)[0]
    u_key = u_item[live] * (len(joint) + 1) + np.where(u_j[live] >= 0, u_j[live], len(joint))
    _, last = np.unique(u_key[::-1], return_index=True)
    kept = live[::-1][last]
    kept = kept[np.lexsort((rank[u_j[kept]], u_item[kept]))]
    per_value = np.bincount(u_item[kept], minlength=len(sku_v))
    value_start = np.cumsum(per_value) - per_value
    row_value = np.maximum(sku_i, 0)
    row_count = np.where(sku_i >= 0, per_value[row_value], 0)
    e_row = np.repeat(np.arange(n), row_count)
    e_offset = np.arange(e_row.size) - np.repeat(np.cumsum(row_count) - row_count, row_count)
    entry = kept[value_start[row_value[e_row]] + e_offset]
    e_j, e_factor = u_j[entry], factor.values[entry]
    e_null = factor.null[entry] | factor.bad[entry]
    dropped = (e_j == base_j[e_row]) & (e_factor == 1) & ~e_null
    e_row, entry, e_j, e_factor, e_null = (
        a[~dropped] for a in (e_row, entry, e_j, e_factor, e_null)
    )
    alternates = np.bincount(e_row, minlength=n)

    items.check_ints(versions, "version", 0, _MAX_VERSION)
    items.check_codes("sku", sku_i, sku_v, "sku", state.skus)
    status_code = np.array(
        [ItemStatus[s] if s in STATUSES else 0 for s in status_v], dtype=np.int64
    )
    items.reject(status_code[status_i] == 0, "status", "unknown", "|".join(STATUSES))
    items.check_codes("uom", base_i, base_v, "base_uom", state.uoms)
    items.reject(alternates > MAX_UOMS - 1, "uoms", "too many alternates", f"{MAX_UOMS - 1}")
    bad_uom = np.zeros(len(joint) + 1, dtype=np.bool_)
    for j, value in enumerate(joint):
        try:
            validate_code("uom", value)
        except InvalidInput:
            bad_uom[j] = True
    bad_uom[-1] = True
    per_row = np.zeros(n, dtype=np.bool_)
    per_row[e_row[bad_uom[e_j]]] = True
    items.reject(per_row, "uoms", "not a valid uom code")
    per_row[:] = False
    per_row[e_row[e_j == base_j[e_row]]] = True
    items.reject(per_row, "uoms", "repeats the base UoM")
    per_row[:] = False
    per_row[e_row[e_null | (e_factor < 1) | (e_factor > MAX_UOM_FACTOR)]] = True
    items.reject(per_row, "uoms", "factor out of range", f"1..{MAX_UOM_FACTOR}")
    items.check_ints(moq, "min_order_qty", 0, MAX_BASE_QTY)
    items.check_ints(multiple, "order_multiple", 1, MAX_BASE_QTY)
    items.check_codes("product_group", group_i, group_v, "product_group", required=False)
    items.check_ints(cost, "replacement_cost_micros", 0, MAX_PRICE_MICROS)
    items.check_codes("currency", currency_i, currency_v, "cost_currency", state.currencies)
    items.check_ints(lead, "lead_time_days", 0, MAX_LEAD_TIME_DAYS)

    ok = np.nonzero(items.ok)[0]
    sku_ids = _ids(_intern_in_order(state.skus, sku_v, sku_i[ok]), sku_i)
    win = ok[_winners(sku_ids[ok], versions.values[ok])]
    # UoMs are interned item by item: the base, then the alternates in code order.
    turn = np.full(n, -1, dtype=np.int64)
    turn[win] = np.arange(win.size)
    mine = np.nonzero(turn[e_row] >= 0)[0]
    _, slot_in_row = _segments(e_row[mine])
    slot_in_row += 1
    seq_key = np.concatenate([turn[win] * MAX_UOMS, turn[e_row[mine]] * MAX_UOMS + slot_in_row])
    seq = np.concatenate([base_j[win], e_j[mine]])[np.argsort(seq_key, kind="stable")]
    uom_ids = _intern_in_order(state.uoms, joint, seq)
    groups_before = len(state.product_groups)
    group_ids = _ids(_intern_in_order(state.product_groups, group_v, group_i[win]), group_i)
    currency_ids = _ids(_intern_in_order(state.currencies, currency_v, currency_i[win]), currency_i)
    state.ensure_rows()
    if len(state.product_groups) != groups_before:
        state.recompute_group_chains()

    rows, table = sku_ids[win], state.items
    table["status"][rows] = status_code[status_i[win]]
    table["version"][rows] = versions.values[win]
    table["base_uom"][rows] = uom_ids[base_j[win]]
    table["uom_code"][rows, 0] = uom_ids[base_j[win]]
    table["uom_factor"][rows, 0] = 1
    alt_rows = sku_ids[e_row[mine]]
    table["uom_code"][alt_rows, slot_in_row] = uom_ids[e_j[mine]]
    table["uom_factor"][alt_rows, slot_in_row] = e_factor[mine]
    table["min_order_qty"][rows] = moq.values[win]
    table["order_multiple"][rows] = multiple.values[win]
    table["product_group"][rows] = group_ids[win]
    table["cost_micros"][rows] = np.where(cost.null[win], -1, cost.values[win])
    table["cost_currency"][rows] = currency_ids[win]
    table["lead_time_days"][rows] = np.where(lead.null[win], -1, lead.values[win])
    return int(win.size)


def _prices(state: State, entries: _Table, breaks: _Table, version: int) -> int:
    """PriceSet rows, vectorised; rows appended in first-seen key order, then indexed."""
    pid = entries.ints("price_id")
    book_i, book_v = entries.codes("price_list")
    currency_i, currency_v = entries.codes("currency")
    sku_i, sku_v = entries.codes("sku")
    uom_i, uom_v = entries.codes("uom")
    start, end = entries.ints("valid_from", date=True), entries.ints("valid_to", date=True)
    versions = entries.ints("version", version)
    tiers = _join_tiers(entries, "price_id", breaks, "price_micros")
    entries.check_ints(versions, "version", 0, _MAX_VERSION)
    entries.check_ints(pid, "price_id", NULL_INT + 1, _BIG, required=True)
    entries.check_codes("price_list", book_i, book_v, "price_list", state.price_lists)
    entries.check_codes("currency", currency_i, currency_v, "currency", state.currencies)
    entries.check_codes("sku", sku_i, sku_v, "sku", state.skus)
    entries.check_codes("uom", uom_i, uom_v, "uom", state.uoms, required=False)
    _check_tiers(entries, tiers, 0, MAX_PRICE_MICROS)
    _check_window(entries, start, end)

    ok = np.nonzero(entries.ok)[0]
    sku = _ids(_intern_in_order(state.skus, sku_v, sku_i[ok]), sku_i)
    book = _ids(_intern_in_order(state.price_lists, book_v, book_i[ok]), book_i)
    currency = _ids(_intern_in_order(state.currencies, currency_v, currency_i[ok]), currency_i)
    state.ensure_rows()
    key = price_key(book, currency, sku)
    win = ok[_winners(key[ok], versions.values[ok])]
    uom = _ids(_intern_in_order(state.uoms, uom_v, uom_i[win]), uom_i)
    prices, pick = state.prices, _picker(win, entries.n)
    rows = slice(prices.n, prices.n + win.size)
    prices.append_blank(win.size)
    prices["key"][rows] = pick(key)
    prices["uom"][rows] = pick(uom)
    prices["valid_from"][rows] = np.where(pick(start.null), 0, pick(start.values))
    prices["valid_to"][rows] = np.where(pick(end.null), NO_END, pick(end.values))
    prices["version"][rows] = pick(versions.values)
    prices["active"][rows] = True
    prices["n_tiers"][rows] = pick(tiers.count)
    prices["tier_min"][rows] = pick(tiers.minimum)
    prices["tier_value"][rows] = pick(tiers.value)
    state.price_index.rebuild(prices["key"][: prices.n])
    return int(win.size)


def _lines(state: State, lines: _Table, breaks: _Table, version: int) -> int:
    """ContractLineSet rows, vectorised; rows appended in first-seen key order."""
    contract_i, contract_v = lines.codes("contract")
    sku_i, sku_v = lines.codes("sku")
    group_i, group_v = lines.codes("product_group")
    kind_i, kind_v = lines.codes("kind", "NET")
    uom_i, uom_v = lines.codes("uom")
    versions = lines.ints("version", version)
    tiers = _join_tiers(lines, "line_id", breaks, "value")
    kind_code = np.array([LineKind[k] if k in KINDS else 0 for k in kind_v] + [0], dtype=np.int64)
    kind = kind_code[kind_i]
    lines.check_ints(versions, "version", 0, _MAX_VERSION)
    lines.check_ints(lines.ints("line_id"), "line_id", NULL_INT + 1, _BIG, required=True)
    lines.check_codes("contract", contract_i, contract_v, "contract", state.contracts)
    is_sku = sku_i >= 0
    lines.reject(is_sku == (group_i >= 0), "sku", "exactly one of sku and product_group")
    lines.check_codes("sku", sku_i, sku_v, "sku", state.skus, required=False)
    groups = state.product_groups
    lines.check_codes("product_group", group_i, group_v, "product_group", groups, required=False)
    lines.reject(kind == 0, "kind", "unknown", "|".join(KINDS))
    lines.check_codes("uom", uom_i, uom_v, "uom", state.uoms, required=False)
    high = np.array([0, MAX_PRICE_MICROS, 10_000, MAX_BPS_COST_PLUS], dtype=np.int64)[kind]
    _check_tiers(lines, tiers, 0, high)

    ok = np.nonzero(lines.ok)[0]
    contracts_before = len(state.contracts)
    contract = _ids(_intern_in_order(state.contracts, contract_v, contract_i[ok]), contract_i)
    sku = _ids(_intern_in_order(state.skus, sku_v, sku_i[ok]), sku_i)
    groups_before = len(groups)
    group = _ids(_intern_in_order(groups, group_v, group_i[ok]), group_i)
    state.ensure_rows()
    if len(groups) != groups_before:
        state.recompute_group_chains()
    target = np.where(is_sku, sku, GROUP_TARGET + group)
    key = contract_line_key(target, contract)
    win = ok[_winners(key[ok], versions.values[ok])]
    uom = _ids(_intern_in_order(state.uoms, uom_v, uom_i[win]), uom_i)
    table, pick = state.lines, _picker(win, lines.n)
    rows = slice(table.n, table.n + win.size)
    table.append_blank(win.size)
    table["key"][rows] = pick(key)
    table["contract"][rows] = pick(contract)
    table["target"][rows] = pick(target)
    table["kind"][rows] = pick(kind)
    table["uom"][rows] = pick(uom)
    table["version"][rows] = pick(versions.values)
    table["active"][rows] = True
    table["n_tiers"][rows] = pick(tiers.count)
    table["tier_min"][rows] = pick(tiers.minimum)
    table["tier_value"][rows] = pick(tiers.value)
    state.line_index.rebuild(table["key"][: table.n])
    group_lines = bool((lines.ok & (group_i >= 0)).any())
    if len(state.contracts) != contracts_before or group_lines:
        # as apply_batch: contexts are sized by the contract count and hold the group lines
        state.pricing_epoch += 1
    return int(win.size)


def _stock(state: State, stock: _Table, version: int) -> int:
    """InventorySet rows through :func:`engine.inventory_apply.set_positions`."""
    sku_i, sku_v = stock.codes("sku")
    location_i, location_v = stock.codes("location")
    quantities = [stock.ints(c, 0) for c in ("on_hand", "allocated", "safety_stock")]
    versions = stock.ints("version", version)
    stock.check_ints(versions, "version", 0, _MAX_VERSION)
    stock.check_codes("sku", sku_i, sku_v, "sku", state.skus)
    stock.check_codes("location", location_i, location_v, "location", state.locations)
    for ints, name in zip(quantities, ("on_hand", "allocated", "safety_stock"), strict=True):
        stock.check_ints(ints, name, 0, MAX_BASE_QTY)
    ok = np.nonzero(stock.ok)[0]
    if ok.size == 0:
        return 0
    sku = _ids(_intern_in_order(state.skus, sku_v, sku_i[ok]), sku_i)[ok]
    location = _ids(_intern_in_order(state.locations, location_v, location_i[ok]), location_i)
    state.ensure_rows()
    on_hand, allocated, safety = (q.values[ok] for q in quantities)
    set_positions(state, sku, location[ok], versions.values[ok], on_hand, allocated, safety)
    return int(ok.size)


def _inbound(state: State, inbound: _Table, version: int) -> int:
    """One InboundSet per SKU-location (receipts in file order), vectorised."""
    sku_i, sku_v = inbound.codes("sku")
    location_i, location_v = inbound.codes("location")
    date, qty = inbound.ints("expected_date", date=True), inbound.ints("qty")
    versions = inbound.ints("version", version)
    inbound.check_codes("sku", sku_i, sku_v, "sku", state.skus)
    inbound.check_codes("location", location_i, location_v, "location", state.locations)
    inbound.check_ints(versions, "version", 0, _MAX_VERSION)
    # the inbound key packs the date into 20 bits of days (as engine.validate checks)
    inbound.check_ints(date, "expected_date", 0, (1 << 20) - 1, required=True)
    inbound.check_ints(qty, "qty", 1, MAX_BASE_QTY, required=True)
    if inbound.n == 0:
        return 0
    # One event per SKU-location: a receipt's problem rejects all receipts of its cell.
    both = (sku_i >= 0) & (location_i >= 0)
    cell = np.where(both, sku_i * (len(location_v) + 1) + location_i, -1)
    _, cell_of, receipts = np.unique(cell, return_inverse=True, return_counts=True)
    inbound.reject(receipts[cell_of] > MAX_RECEIPTS, "receipts", "too many", f"{MAX_RECEIPTS}")
    cell_bad = np.zeros(receipts.size, dtype=np.bool_)
    cell_bad[cell_of[~inbound.ok]] = True
    inbound.reject(cell_bad[cell_of], "receipts", "another receipt of the SKU-location is bad")
    ok = np.nonzero(inbound.ok)[0]
    if ok.size == 0:
        return 0
    sku = _ids(_intern_in_order(state.skus, sku_v, sku_i[ok]), sku_i)
    location = _ids(_intern_in_order(state.locations, location_v, location_i[ok]), location_i)
    state.ensure_rows()
    keys = inbound_key(sku[ok], date.values[ok], location[ok])
    order = np.argsort(keys, kind="stable")
    state.inbound_keys = keys[order]
    state.inbound_qty = qty.values[ok][order]
    newest = np.full(receipts.size, -1, dtype=np.int64)
    np.maximum.at(newest, cell_of[ok], versions.values[ok])
    first = ok[np.unique(cell_of[ok], return_index=True)[1]]
    first = first[np.argsort(first)]
    state.inbound_versions = dict(
        zip(
            zip(sku[first].tolist(), location[first].tolist(), strict=True),
            newest[cell_of[first]].tolist(),
            strict=True,
        )
    )
    return int(first.size)


def build_state(
    tables: Mapping[str, Mapping[str, Any]],
    *,
    version: int = 1,
    ts_ms: int = 0,
    stream_ids: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    on_reject: RejectHandler | None = None,
) -> State:
    """Build a fresh :class:`State` from the tables of an extract (see the module doc).

    ``version`` is the entity version of rows without a ``version`` column (the source
    change number of the extract); ``ts_ms`` its source time; ``stream_ids`` the stream
    positions the extract is consistent with (the writer replays from them). The state
    has version 1, as after one applied batch. ``progress(stage, done, total)`` is told
    as each of :data:`STAGES` starts and ends. O(rows + sorts of the large tables).
    """
    unknown = set(tables) - set(EXTRACT_SCHEMA)
    if unknown:
        raise InvalidInput("tables", f"unknown tables {sorted(unknown)}", ", ".join(EXTRACT_SCHEMA))
    t = {name: _Table(name, tables.get(name), on_reject) for name in EXTRACT_SCHEMA}
    state = State()
    applied = 0

    def stage(name: str, total: int, run: Callable[[], int]) -> None:
        nonlocal applied
        if progress is not None:
            progress(name, 0, total)
        applied += run()
        if progress is not None:
            progress(name, total, total)

    master = (t["product_groups"], t["locations"], t["regions"])
    stage(
        STAGES[0],
        sum(table.n for table in master),
        lambda: _apply_small(state, _master_events(*master, version, ts_ms)),
    )
    stage(STAGES[1], t["items"].n, lambda: _items(state, t["items"], t["item_uoms"], version))
    stage(
        STAGES[2],
        t["accounts"].n + t["contracts"].n,
        lambda: _apply_small(
            state,
            _account_events(
                t["accounts"], t["contracts"], t["contract_assignments"], version, ts_ms
            ),
        ),
    )
    stage(
        STAGES[3],
        t["price_lists"].n,
        lambda: _prices(state, t["price_lists"], t["price_breaks"], version),
    )
    stage(
        STAGES[4],
        t["contract_lines"].n,
        lambda: _lines(state, t["contract_lines"], t["contract_line_breaks"], version),
    )
    stage(STAGES[5], t["stock"].n, lambda: _stock(state, t["stock"], version))
    stage(STAGES[6], t["inbound"].n, lambda: _inbound(state, t["inbound"], version))
    state.ensure_rows()
    state.version = 1
    state.newest_ts_ms = state.clock_ms = ts_ms if applied else 0
    if stream_ids:
        state.stream_ids.update(stream_ids)
    return state
