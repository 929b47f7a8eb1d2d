"""Validation of change events: a reason naming the field and the limit, or None.

A rejected event goes to the dead-letter stream with this reason (DESIGN §6); the rest of its
batch is applied. Limits here are the engine's storage limits (``engine.state``) and the
quantity and money bounds that keep every product inside int64 (``engine.money``).

Growth: applying a batch interns the new codes its events name (a new SKU, location,
account, …). :func:`check_batch` also checks, before anything is written, that these fit
the code tables' limits (``engine.state.CODE_TABLE_LIMITS``, set by how ids are packed):
walking the batch in order, an event whose new codes would take a table past its limit is
rejected, and the codes it names are not counted for the events after it. Every code a
valid event names counts, whether or not its version then applies, so the count is an
upper bound on what the apply interns. Inventory events whose codes are all known (the
high-volume case, checked as columns) are not walked at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.catalog import MAX_BASE_QTY, MAX_UOM_FACTOR
from engine.codes import CodeTable, validate_code
from engine.errors import InvalidInput
from engine.state import (
    CODE_TABLE_LIMIT_REASONS,
    CODE_TABLE_LIMITS,
    MAX_GROUPS_PER_ACCOUNT,
    MAX_TIERS,
    MAX_UOMS,
    State,
)

__all__ = [
    "MAX_BPS_COST_PLUS",
    "MAX_HOLD_LINES",
    "MAX_HOLD_TTL_MS",
    "MAX_PRICE_MICROS",
    "MAX_RECEIPTS",
    "CheckedBatch",
    "check_batch",
    "event_problem",
    "event_problems",
    "group_by_kind",
]

MAX_PRICE_MICROS = 10**13  # 10 million per unit: keeps price × (10000 + bps) in int64
MAX_BPS_COST_PLUS = 100_000  # a markup of at most 1000%
MAX_RECEIPTS = 1_000  # inbound receipts per SKU-location
MAX_HOLD_LINES = 5_000
MAX_HOLD_TTL_MS = 7 * 86_400_000
MAX_LEAD_TIME_DAYS = 3_650
_FIRST_RECEIPT = dt.date(1970, 1, 1)
_LAST_RECEIPT = _FIRST_RECEIPT + dt.timedelta(days=(1 << 20) - 1)
STATUSES = ("ACTIVE", "DISCONTINUED", "BLOCKED")
KINDS = ("NET", "DISCOUNT", "COST_PLUS")
DISCLOSURES = ("EXACT", "CAPPED", "BUCKETS")


def _int(field: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise InvalidInput(field, f"{value} out of range", f"{low}..{high}")


def _date(field: str, value: Any) -> None:
    if value is not None and not isinstance(value, dt.date):
        raise InvalidInput(field, f"must be a date, got {value!r}")


def _codes(kind: str, field: str, values: Iterable[Any], most: int) -> None:
    values = list(values)
    if len(values) > most:
        raise InvalidInput(field, f"{len(values)} entries", f"at most {most}")
    for i, value in enumerate(values):
        validate_code(kind, value, f"{field}[{i}]")


def _window(start: dt.date | None, end: dt.date | None) -> None:
    _date("valid_from", start)
    _date("valid_to", end)
    if start is not None and end is not None and end <= start:
        raise InvalidInput("valid_to", f"{end} is not after valid_from {start}")


def _tiers(tiers: Any, low: int, high: int, what: str) -> None:
    if not tiers:
        raise InvalidInput("tiers", "empty", f"1..{MAX_TIERS} tiers")
    if len(tiers) > MAX_TIERS:
        raise InvalidInput("tiers", f"{len(tiers)} tiers", f"at most {MAX_TIERS}")
    previous = -1
    for i, tier in enumerate(tiers):
        if not isinstance(tier, (tuple, list)) or len(tier) != 2:
            raise InvalidInput(f"tiers[{i}]", "must be a pair (min_qty, value)")
        minimum, value = tier
        _int(f"tiers[{i}].min_qty", minimum, 0, MAX_BASE_QTY)
        _int(f"tiers[{i}].{what}", value, low, high)
        if minimum <= previous:
            raise InvalidInput(f"tiers[{i}].min_qty", "minimums must strictly increase")
        previous = minimum


def _check(event: Any) -> None:
    kind = type(event).__name__  # dispatch by name: see engine.events on duck-typed events
    _int("version", event.version, 0, 2**63 - 1)
    _int("ts_ms", event.ts_ms, 0, 2**63 - 1)
    if kind == "ItemUpsert":
        validate_code("sku", event.sku)
        if event.status not in STATUSES:
            raise InvalidInput("status", f"{event.status!r} unknown", "|".join(STATUSES))
        validate_code("uom", event.base_uom, "base_uom")
        if len(event.uoms) > MAX_UOMS - 1:
            raise InvalidInput("uoms", f"{len(event.uoms)} alternates", f"at most {MAX_UOMS - 1}")
        for code, factor in event.uoms.items():
            validate_code("uom", code, "uoms")
            if code == event.base_uom:
                raise InvalidInput(f"uoms.{code}", "repeats the base UoM")
            _int(f"uoms.{code}", factor, 1, MAX_UOM_FACTOR)
        _int("min_order_qty", event.min_order_qty, 0, MAX_BASE_QTY)
        _int("order_multiple", event.order_multiple, 1, MAX_BASE_QTY)
        if event.product_group is not None:
            validate_code("product_group", event.product_group)
        if event.replacement_cost_micros is not None:
            _int("replacement_cost_micros", event.replacement_cost_micros, 0, MAX_PRICE_MICROS)
        validate_code("currency", event.cost_currency, "cost_currency")
        if event.lead_time_days is not None:
            _int("lead_time_days", event.lead_time_days, 0, MAX_LEAD_TIME_DAYS)
    elif kind == "ProductGroupUpsert":
        validate_code("product_group", event.product_group)
        if event.parent is not None:
            validate_code("product_group", event.parent, "parent")
    elif kind == "LocationUpsert":
        validate_code("location", event.location)
    elif kind == "RegionUpsert":
        validate_code("region", event.region)
        _codes("location", "locations", event.locations, 4096)
    elif kind == "AccountUpsert":
        validate_code("account", event.account)
        if event.parent is not None:
            validate_code("account", event.parent, "parent")
            if event.parent == event.account:
                raise InvalidInput("parent", "an account cannot be its own parent")
        _codes("price_group", "price_groups", event.price_groups, MAX_GROUPS_PER_ACCOUNT)
        if event.price_list is not None:
            validate_code("price_list", event.price_list)
        validate_code("currency", event.currency)
        if event.disclosure not in DISCLOSURES:
            raise InvalidInput("disclosure", f"{event.disclosure!r}", "|".join(DISCLOSURES))
        _int("disclosure_cap", event.disclosure_cap, 0, MAX_BASE_QTY)
    elif kind == "InventorySet":
        validate_code("sku", event.sku)
        validate_code("location", event.location)
        for name in ("on_hand", "allocated", "safety_stock"):
            _int(name, getattr(event, name), 0, MAX_BASE_QTY)
    elif kind == "InventoryAdjust":
        validate_code("sku", event.sku)
        validate_code("location", event.location)
        if not isinstance(event.event_id, str) or not 1 <= len(event.event_id) <= 128:
            raise InvalidInput("event_id", "must be a string", "1..128 characters")
        _int("on_hand_delta", event.on_hand_delta, -MAX_BASE_QTY, MAX_BASE_QTY)
        _int("allocated_delta", event.allocated_delta, -MAX_BASE_QTY, MAX_BASE_QTY)
    elif kind == "InboundSet":
        validate_code("sku", event.sku)
        validate_code("location", event.location)
        if len(event.receipts) > MAX_RECEIPTS:
            raise InvalidInput("receipts", f"{len(event.receipts)}", f"at most {MAX_RECEIPTS}")
        for i, receipt in enumerate(event.receipts):
            if not isinstance(receipt, (tuple, list)) or len(receipt) != 2:
                raise InvalidInput(f"receipts[{i}]", "must be a pair (date, qty)")
            if not isinstance(receipt[0], dt.date):
                raise InvalidInput(f"receipts[{i}].date", f"must be a date, got {receipt[0]!r}")
            if not _FIRST_RECEIPT <= receipt[0] <= _LAST_RECEIPT:
                # the inbound key packs the date into 20 bits of days since 1970
                raise InvalidInput(
                    f"receipts[{i}].date",
                    f"{receipt[0]} out of range",
                    f"{_FIRST_RECEIPT}..{_LAST_RECEIPT}; omit a receipt that has no date",
                )
            _int(f"receipts[{i}].qty", receipt[1], 1, MAX_BASE_QTY)
    elif kind in ("PriceSet", "PriceDelete"):
        validate_code("price_list", event.price_list)
        validate_code("currency", event.currency)
        validate_code("sku", event.sku)
        if kind == "PriceSet":
            if event.uom is not None:
                validate_code("uom", event.uom)
            _tiers(event.tiers, 0, MAX_PRICE_MICROS, "price_micros")
            _window(event.valid_from, event.valid_to)
    elif kind == "ContractUpsert":
        validate_code("contract", event.contract)
        validate_code("currency", event.currency)
        _int("priority", event.priority, -(2**31), 2**31 - 1)
        _window(event.valid_from, event.valid_to)
        _codes("account", "accounts", event.accounts, 100_000)
        _codes("price_group", "price_groups", event.price_groups, 10_000)
    elif kind == "ContractDelete":
        validate_code("contract", event.contract)
    elif kind in ("ContractLineSet", "ContractLineDelete"):
        validate_code("contract", event.contract)
        if (event.sku is None) == (event.product_group is None):
            raise InvalidInput("sku", "exactly one of sku and product_group must be set")
        if event.sku is not None:
            validate_code("sku", event.sku)
        else:
            validate_code("product_group", event.product_group)
        if kind == "ContractLineSet":
            if event.kind not in KINDS:
                raise InvalidInput("kind", f"{event.kind!r} unknown", "|".join(KINDS))
            if event.uom is not None:
                validate_code("uom", event.uom)
            high = {"NET": MAX_PRICE_MICROS, "DISCOUNT": 10_000, "COST_PLUS": MAX_BPS_COST_PLUS}
            what = "price_micros" if event.kind == "NET" else "basis_points"
            _tiers(event.tiers, 0, high[event.kind], what)
    elif kind == "HoldPlace":
        if not isinstance(event.hold_key, str) or not 1 <= len(event.hold_key) <= 128:
            raise InvalidInput("hold_key", "must be a string", "1..128 characters")
        if event.account != "":  # "": an entry written before holds had accounts
            validate_code("account", event.account)
        if not 1 <= len(event.lines) <= MAX_HOLD_LINES:
            raise InvalidInput("lines", f"{len(event.lines)} lines", f"1..{MAX_HOLD_LINES}")
        for i, line in enumerate(event.lines):
            if not isinstance(line, (tuple, list)) or len(line) != 3:
                raise InvalidInput(f"lines[{i}]", "must be (sku, location, qty)")
            validate_code("sku", line[0], f"lines[{i}].sku")
            validate_code("location", line[1], f"lines[{i}].location")
            _int(f"lines[{i}].qty", line[2], 1, MAX_BASE_QTY)
        _int("ttl_ms", event.ttl_ms, 1, MAX_HOLD_TTL_MS)
    elif kind == "HoldRelease":
        if not isinstance(event.hold_key, str) or not 1 <= len(event.hold_key) <= 128:
            raise InvalidInput("hold_key", "must be a string", "1..128 characters")
        if event.account != "":
            validate_code("account", event.account)
    else:
        raise InvalidInput("event", f"unknown event type {type(event).__name__}")


I64 = npt.NDArray[np.int64]
#: per inventory kind: the positions of its events in the batch, and the columns read
Resolved = dict[str, tuple[I64, dict[str, I64]]]
_MAX_VERSION = 2**63 - 1
_MAX_ID = 128
#: The high-volume events, checked as columns: (integer field, lowest, highest) each.
_COLUMNAR: dict[str, tuple[tuple[str, int, int], ...]] = {
    "InventorySet": (
        ("version", 0, _MAX_VERSION),
        ("ts_ms", 0, _MAX_VERSION),
        ("on_hand", 0, MAX_BASE_QTY),
        ("allocated", 0, MAX_BASE_QTY),
        ("safety_stock", 0, MAX_BASE_QTY),
    ),
    "InventoryAdjust": (
        ("version", 0, _MAX_VERSION),
        ("ts_ms", 0, _MAX_VERSION),
        ("on_hand_delta", -MAX_BASE_QTY, MAX_BASE_QTY),
        ("allocated_delta", -MAX_BASE_QTY, MAX_BASE_QTY),
    ),
}


def _of_type(values: list[Any], kind: type) -> npt.NDArray[np.bool_]:
    """True where a value is exactly ``kind`` (a bool is not an int here)."""
    same: npt.NDArray[np.bool_] = np.array(list(map(type, values)), dtype=object) == kind
    return same


def _plainly_valid(
    batch: list[Any], kind: str, skus: CodeTable, locations: CodeTable
) -> tuple[npt.NDArray[np.bool_], dict[str, I64]]:
    """The common case of the high-volume events, checked as columns: known codes
    (validated when they were interned) and in-range integers of type int. False means
    "check this one properly", not "invalid". One C-level pass per field, instead of a
    Python function call per event.

    Also returns the columns it read, so the apply need not read them again: "sku" and
    "location" as ids (-1: unknown; at 1M SKUs each lookup is a few cache misses) and
    each integer field whose values are all of type int (the apply reads any other field
    from the events again)."""
    n = len(batch)
    none = np.zeros(n, dtype=np.bool_)
    try:
        columns = {
            "sku": skus.lookup(list(map(_SKU, batch))),
            "location": locations.lookup(list(map(_LOCATION, batch))),
        }
    except TypeError:  # an unhashable code: each event gets its own reason
        return none, {}
    ok = (columns["sku"] >= 0) & (columns["location"] >= 0)
    for name, low, high in _COLUMNAR[kind]:
        column = list(map(attrgetter(name), batch))
        exact = set(map(type, column)) == {int}
        if not exact:  # a float, a bool, an int subclass…: those rows are checked one by one
            typed = _of_type(column, int)
            ok &= typed
            column = [v if t else 0 for v, t in zip(column, typed.tolist(), strict=True)]
        try:
            values = np.fromiter(column, np.int64, n)
        except OverflowError:  # beyond int64: every limit here is inside it
            return none, {}
        ok &= (values >= low) & (values <= high)
        if exact:  # a row zeroed above may still be valid (an int subclass): not handed on
            columns[name] = values
    if kind == "InventoryAdjust":
        ids = list(map(attrgetter("event_id"), batch))
        if set(map(type, ids)) != {str}:
            ok &= _of_type(ids, str)
            ids = [i if type(i) is str else "" for i in ids]
        length = np.fromiter(map(len, ids), np.int64, n)
        ok &= (length >= 1) & (length <= _MAX_ID)
    return ok, columns


_SKU, _LOCATION = attrgetter("sku"), attrgetter("location")


def group_by_kind(events: Sequence[Any]) -> dict[str, list[int]]:
    """Positions of the events of each kind (type name), in batch order. One C-level pass
    over the types, then one array comparison per kind (a batch has a handful of kinds)."""
    types = list(map(type, events))
    distinct = list(dict.fromkeys(types))  # first-seen order
    if len(distinct) == 1:  # one kind of event: the usual stream batch
        return {distinct[0].__name__: list(range(len(events)))}
    number = {kind: i for i, kind in enumerate(distinct)}
    codes = np.fromiter(map(number.__getitem__, types), np.int64, len(types))
    return {kind.__name__: np.flatnonzero(codes == i).tolist() for i, kind in enumerate(distinct)}


@dataclass(frozen=True, slots=True)
class CheckedBatch:
    """What validating a batch found, reusable on any state equal to the one it was
    checked against (the multi-process writer applies each batch to two equal instances).

    ``problems``: per event, None or the reason it is rejected. ``groups``: positions per
    kind (:func:`group_by_kind`). ``resolved``: per inventory kind, (positions, columns):
    SKU and location ids as looked up (-1 where a code was unknown then) and the integer
    fields, read once for validation and apply.
    """

    problems: list[str | None]
    groups: dict[str, list[int]]
    resolved: Resolved


def check_batch(events: Sequence[Any], state: State) -> CheckedBatch:
    """Validate a batch against ``state`` (see :func:`event_problems`), keeping what the
    apply can reuse."""
    groups = group_by_kind(events)
    resolved: Resolved = {}
    problems = event_problems(events, state, resolved, groups)
    return CheckedBatch(problems, groups, resolved)


def event_problems(
    events: Sequence[Any],
    state: State,
    resolved: Resolved | None = None,
    groups: dict[str, list[int]] | None = None,
) -> list[str | None]:
    """:func:`event_problem` for a batch, then the growth check against ``state``'s code
    tables (see the module docstring). Inventory events whose codes ``state`` already
    knows are checked as columns and cost no more.

    ``resolved`` (if given) receives, per inventory kind, the positions of its events in
    the batch and the columns read (see :class:`CheckedBatch`). ``groups``:
    :func:`group_by_kind` of ``events``, when the caller has it already."""
    problems: list[str | None] = [None] * len(events)
    if groups is None:
        groups = group_by_kind(events)
    naming: list[int] = []  # valid events that name a code the state does not know
    for name, indices in groups.items():
        if name in _COLUMNAR:
            # plainly valid ones have known codes (and name no others): not walked below
            batch = [events[i] for i in indices]
            good, columns = _plainly_valid(batch, name, state.skus, state.locations)
            if resolved is not None and columns:
                resolved[name] = (np.asarray(indices, dtype=np.int64), columns)
            indices = [indices[i] for i in np.flatnonzero(~good).tolist()]
        for index in indices:
            problems[index] = event_problem(events[index])
        spec = _INTERNED.get(name)
        if spec is not None:
            valid = [index for index in indices if problems[index] is None]
            naming += _naming_new_codes(events, valid, spec, state)
    if naming:
        naming.sort()  # batch order decides which event finds a table full
        _check_growth(events, naming, state, problems)
    return problems


#: The codes each kind of event interns when applied, as (code table, field) pairs; the
#: field holds one code or None, except the fields of :data:`_MANY`. Holds intern nothing
#: (``engine.inventory_apply.place_hold``).
_INTERNED: dict[str, tuple[tuple[str, str], ...]] = {
    "ItemUpsert": (
        ("skus", "sku"),
        ("uoms", "base_uom"),
        ("uoms", "uoms"),
        ("product_groups", "product_group"),
        ("currencies", "cost_currency"),
    ),
    "ProductGroupUpsert": (("product_groups", "product_group"), ("product_groups", "parent")),
    "LocationUpsert": (("locations", "location"),),
    "RegionUpsert": (("regions", "region"), ("locations", "locations")),
    "AccountUpsert": (
        ("accounts", "account"),
        ("accounts", "parent"),
        ("price_groups", "price_groups"),
        ("price_lists", "price_list"),
        ("currencies", "currency"),
    ),
    "InventorySet": (("skus", "sku"), ("locations", "location")),
    "InventoryAdjust": (("skus", "sku"), ("locations", "location")),
    "InboundSet": (("skus", "sku"), ("locations", "location")),
    "PriceSet": (
        ("price_lists", "price_list"),
        ("currencies", "currency"),
        ("skus", "sku"),
        ("uoms", "uom"),
    ),
    "PriceDelete": (("price_lists", "price_list"), ("currencies", "currency"), ("skus", "sku")),
    "ContractUpsert": (
        ("contracts", "contract"),
        ("currencies", "currency"),
        ("accounts", "accounts"),
        ("price_groups", "price_groups"),
    ),
    "ContractDelete": (("contracts", "contract"),),
    "ContractLineSet": (
        ("contracts", "contract"),
        ("skus", "sku"),
        ("product_groups", "product_group"),
        ("uoms", "uom"),
    ),
    "ContractLineDelete": (
        ("contracts", "contract"),
        ("skus", "sku"),
        ("product_groups", "product_group"),
    ),
}
#: Fields holding several codes: a sequence, or a dict keyed by codes (ItemUpsert.uoms).
_MANY = frozenset({"uoms", "locations", "price_groups", "accounts"})
#: What a table's codes are called in a reason: (one, many).
_NOUNS = {
    "skus": ("SKU", "SKUs"),
    "locations": ("location", "locations"),
    "regions": ("region", "regions"),
    "accounts": ("account", "accounts"),
    "contracts": ("contract", "contracts"),
    "price_lists": ("price list", "price lists"),
    "price_groups": ("price group", "price groups"),
    "product_groups": ("product group", "product groups"),
    "uoms": ("UoM", "UoMs"),
    "currencies": ("currency", "currencies"),
}


def _naming_new_codes(
    events: Sequence[Any], indices: list[int], spec: tuple[tuple[str, str], ...], state: State
) -> list[int]:
    """The events of ``indices`` (valid, of one kind) that name a code ``state`` does not
    know: the only ones :func:`_check_growth` needs to walk. One C-level pass per field
    (a set of its codes, less the table's); the events are looked at one by one only for
    a field that does name a new code."""
    batch = [events[i] for i in indices]
    naming = np.zeros(len(batch), dtype=np.bool_)
    for table, field in spec:
        values: list[Any] = list(map(attrgetter(field), batch))
        owner = None
        if field in _MANY:  # one row per code, and the event it came from
            owner = np.repeat(np.arange(len(batch)), np.fromiter(map(len, values), np.int64))
            values = list(chain.from_iterable(values))  # a dict gives its keys: the codes
        distinct = [value for value in set(values) if value is not None]
        found = getattr(state, table).lookup(distinct)
        new = {distinct[i] for i in np.flatnonzero(found < 0).tolist()}
        if new:
            hit = np.fromiter(map(new.__contains__, values), np.bool_, len(values))
            naming[hit if owner is None else owner[hit]] = True
    return [indices[i] for i in np.flatnonzero(naming).tolist()]


def _named_codes(event: Any) -> Iterable[tuple[str, str, str]]:
    """(code table, field, code) for every code a valid ``event`` names, in field order."""
    for table, field in _INTERNED[type(event).__name__]:
        value = getattr(event, field)
        if value is None:
            continue
        if field not in _MANY:
            yield table, field, value
        elif isinstance(value, Mapping):
            for code in sorted(value):  # the apply interns alternate UoMs in code order
                yield table, f"{field}.{code}", code
        else:
            for i, code in enumerate(value):
                yield table, f"{field}[{i}]", code


def _check_growth(
    events: Sequence[Any], indices: list[int], state: State, problems: list[str | None]
) -> None:
    """Reject (in ``problems``) each event of ``indices`` (valid, in batch order) whose new
    codes would take a code table past its limit; the new codes of the others add up."""
    added: dict[str, set[str]] = {}  # new codes of the events accepted so far, per table
    for index in indices:
        new: dict[str, dict[str, str]] = {}  # table → new code → the field naming it first
        for table, field, code in _named_codes(events[index]):
            if code in getattr(state, table) or code in added.get(table, ()):
                continue
            new.setdefault(table, {}).setdefault(code, field)
        problem = None
        for table, codes in new.items():
            have = len(getattr(state, table)) + len(added.get(table, ()))
            limit = CODE_TABLE_LIMITS[table]
            if have + len(codes) > limit:
                position = max(limit - have, 0)  # the first new code past the limit
                code, field = list(codes.items())[position]
                one, many = _NOUNS[table]
                problem = InvalidInput(
                    field,
                    f"new {one} {code!r} would be {one} number {have + position + 1}",
                    f"at most {limit} {many}: {CODE_TABLE_LIMIT_REASONS[table]}",
                )
                break
        if problem is not None:
            problems[index] = str(problem)
            continue
        for table, codes in new.items():
            added.setdefault(table, set()).update(codes)


def event_problem(event: Any) -> str | None:
    """Why ``event`` cannot be applied (a message naming the field), or None if it can."""
    try:
        _check(event)
    except InvalidInput as problem:
        return str(problem)
    except (AttributeError, TypeError) as problem:
        return f"event: malformed {type(event).__name__}: {problem}"
    return None
