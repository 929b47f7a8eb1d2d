"""Hypothesis strategies for random but meaningful pacache worlds and requests.

A *world* is a small distributor: a few locations and regions, items with UoMs and product
groups, accounts with parent chains and price groups, price lists with breaks and validity
windows, contracts (tied priorities, assignments to accounts, groups and ALL, currencies) and
their lines of all three kinds, stock positions, adjusts and inbound schedules — as a list of
``engine.events`` in *version order* (versions increase per entity key along the stream),
with a few updates, deletes and deliberately invalid events mixed in.

Codes come from small pools so that keys collide, lines compete and ties happen; values come
from small sets around the interesting edges (break minimums, validity ends, rounding).
Everything stays small enough for hundreds of examples a second.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import engine as _hypothesis_engine

from engine import events as ev

__all__ = [
    "ACCOUNTS",
    "D0",
    "D0_DAY",
    "HOLD_ACCOUNTS",
    "HOLD_KEYS",
    "LOCATIONS",
    "PROPERTIES",
    "SKUS",
    "HoldBatch",
    "HoldStream",
    "QuoteRequest",
    "World",
    "batches",
    "deliveries",
    "hold_streams",
    "quote_requests",
    "worlds",
]

D0 = dt.date(2024, 6, 1)  # "today" in every world: validity ends and receipts sit around it
D0_DAY = (D0 - dt.date(1970, 1, 1)).days
SKUS = ("S1", "S2", "S3", "S4")
UNKNOWN_SKUS = ("S9", "s1")  # never upserted ("S9" may still get stock events)
LOCATIONS = ("W1", "W2", "W3")
REGIONS = ("R1", "R2")
GROUPS = ("G1", "G2", "G3", "G4")
ACCOUNTS = ("A1", "A2", "A3")
PRICE_GROUPS = ("PG1", "PG2", "PG3")
PRICE_LISTS = ("LIST", "LIST", "PL1")
CURRENCIES = ("USD",) * 6 + ("JPY", "KWD")
CONTRACTS = ("K2", "K1", "K3", "B9")  # listed out of code order on purpose
ALT_UOMS = ("BX", "CS", "PL")
HOLD_KEYS = ("h1", "h2", "h3")
# a key is per account; "" is what an entry written before holds had accounts decodes to
HOLD_ACCOUNTS = ("A1", "A2", "")


@dataclass(frozen=True)
class World:
    """Events in version order, plus what the request strategies need to aim well."""

    events: tuple[Any, ...]
    skus: tuple[str, ...]
    factors: tuple[int, ...]  # every UoM factor in the world
    minimums: tuple[int, ...]  # every break minimum in the world
    uoms: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (SKU, alternate UoMs it ever had)


@dataclass(frozen=True)
class QuoteRequest:
    account: str
    lines: tuple[tuple[str, int, str | None], ...]  # (SKU, qty in the line's UoM, UoM)
    pricing_date: int
    currency: str | None = None
    today: int | None = None
    locations: tuple[str, ...] | None = None
    region: str | None = None


def _day_number(value: dt.date) -> int:
    return (value - dt.date(1970, 1, 1)).days


_INDEXES: dict[int, st.SearchStrategy[int]] = {}
_RANGES: dict[tuple[int, int], st.SearchStrategy[int]] = {}


def _between(draw: Any, low: int, high: int) -> int:
    """An int in [low, high], shrinking towards low (strategies cached: drawing is hot)."""
    strategy = _RANGES.get((low, high))
    if strategy is None:
        strategy = _RANGES[(low, high)] = st.integers(low, high)
    return int(draw(strategy))


def _pick(draw: Any, options: tuple[Any, ...] | list[Any]) -> Any:
    """One of ``options``, shrinking towards the first; repeat an option to weight it."""
    return options[_between(draw, 0, len(options) - 1)]


def _some(draw: Any, options: tuple[Any, ...], most: int, unique: bool = False) -> list[Any]:
    count = _between(draw, 0, most)
    chosen = [_pick(draw, options) for _ in range(count)]
    return list(dict.fromkeys(chosen)) if unique else chosen


def _shuffled(draw: Any, items: list[Any]) -> list[Any]:
    """A permutation of ``items`` that shrinks towards the original order."""
    items = list(items)
    for i in range(len(items) - 1):
        j = i + _between(draw, 0, len(items) - 1 - i)
        items[i], items[j] = items[j], items[i]
    return items


_BIG_PRICE = 10**13  # the largest valid price: products leave int64 (exact paths)
_BIG_FACTOR = 10**6  # the largest valid UoM factor
_MICROS = (0, 1, 5, 333_333, 1_000_000, 1_234_567, 2_500_000, 9_999_999, 123_456_789, _BIG_PRICE)
_VALUES = {
    "NET": _MICROS,
    "DISCOUNT": (0, 1, 250, 500, 3333, 5000, 9999, 10_000),
    "COST_PLUS": (0, 1, 1000, 2500, 33_333, 100_000),
}
_FACTORS = (2, 3, 4, 6, 10, 12, 24, 100, 1000, _BIG_FACTOR)
_SENTINEL_DAYS = (dt.date(1900, 1, 1), dt.date(9999, 12, 31))  # ERP "no date" placeholders


def _day(draw: Any) -> dt.date:
    return D0 + dt.timedelta(days=_between(draw, -3, 6))


def _window(draw: Any) -> tuple[dt.date | None, dt.date | None]:
    """A validity window with its ends around D0 (and often open)."""
    start = _pick(draw, (None,) * 6 + (-1, 0, 1, 2))
    end = _pick(draw, (None,) * 6 + (0, 1, 2, 4))
    if start is not None and end is not None and end <= start:
        end = None  # an empty window is an invalid event; those are drawn elsewhere
    return (
        None if start is None else D0 + dt.timedelta(days=start),
        None if end is None else D0 + dt.timedelta(days=end),
    )


def _tiers(draw: Any, values: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """1–3 breaks with strictly increasing minimums (the first usually 0)."""
    minimums = {_pick(draw, (0, 0, 0, 1, 2, 5, 12))}
    for _ in range(_between(draw, 0, 2)):
        minimums.add(max(minimums) + _pick(draw, (1, 2, 5, 7, 10, 12, 24, 50)))
    return tuple((m, _pick(draw, values)) for m in sorted(minimums))


def _item(draw: Any, sku: str) -> ev.ItemUpsert:
    alternates = _some(draw, ALT_UOMS, 3, unique=True)
    return ev.ItemUpsert(
        sku=sku,
        version=0,
        status=_pick(draw, ("ACTIVE",) * 6 + ("DISCONTINUED", "BLOCKED")),
        base_uom=_pick(draw, ("EA", "EA", "KG")),
        uoms={code: _pick(draw, _FACTORS) for code in alternates},
        min_order_qty=_pick(draw, (0, 0, 0, 1, 5, 12, 100)),
        order_multiple=_pick(draw, (1, 1, 1, 2, 3, 5, 10, 12, 24)),
        product_group=_pick(draw, (None, *GROUPS)),
        replacement_cost_micros=_pick(draw, (None, 1, 333_333, 1_000_000, _BIG_PRICE)),
        cost_currency=_pick(draw, CURRENCIES),
        lead_time_days=_pick(draw, (None, None, 0, 3, 14)),
    )


def _account(draw: Any, account: str) -> ev.AccountUpsert:
    return ev.AccountUpsert(
        account=account,
        version=0,
        parent=_pick(draw, (None, *(a for a in ACCOUNTS if a != account), "A9")),
        price_groups=tuple(_some(draw, PRICE_GROUPS, 3)),
        price_list=_pick(draw, (None, None, "LIST", "PL1", "PL2")),
        currency=_pick(draw, CURRENCIES),
        disclosure=_pick(draw, ("EXACT", "EXACT", "CAPPED", "BUCKETS")),
        disclosure_cap=_pick(draw, (0, 5, 50)),
    )


def _price(draw: Any, sku: str) -> ev.PriceSet:
    start, end = _window(draw)
    return ev.PriceSet(
        price_list=_pick(draw, PRICE_LISTS),
        currency=_pick(draw, CURRENCIES),
        sku=sku,
        version=0,
        uom=_pick(draw, (None, None, None, "EA", *ALT_UOMS)),
        tiers=_tiers(draw, _MICROS),
        valid_from=start,
        valid_to=end,
    )


def _contract(draw: Any, contract: str) -> ev.ContractUpsert:
    start, end = _window(draw)
    return ev.ContractUpsert(
        contract=contract,
        version=0,
        currency=_pick(draw, CURRENCIES),
        priority=_pick(draw, (0, 0, 1, 2, -1)),
        valid_from=start,
        valid_to=end,
        accounts=tuple(_some(draw, (*ACCOUNTS, "A9"), 3)),
        price_groups=tuple(_some(draw, PRICE_GROUPS, 2)),
        all_accounts=_pick(draw, (False, False, True)),
    )


def _contract_line(draw: Any, contract: str, skus: list[str]) -> ev.ContractLineSet:
    kind = _pick(draw, ("NET", "NET", "DISCOUNT", "COST_PLUS"))
    on_sku = _pick(draw, (True, False))
    return ev.ContractLineSet(
        contract=contract,
        version=0,
        sku=_pick(draw, skus) if on_sku else None,
        product_group=None if on_sku else _pick(draw, GROUPS),
        kind=kind,
        uom=_pick(draw, (None, None, None, "EA", *ALT_UOMS)),
        tiers=_tiers(draw, _VALUES[kind]),
    )


def _stock_event(draw: Any, event_id: str, skus: list[str]) -> Any:
    sku, location = _pick(draw, (*skus, "S9")), _pick(draw, LOCATIONS)
    kind = _pick(draw, ("set", "set", "adjust", "adjust", "inbound"))
    if kind == "set":
        return ev.InventorySet(
            sku=sku,
            location=location,
            version=0,
            on_hand=_between(draw, 0, 200),
            allocated=_pick(draw, (0, 0, 3, 40, 250)),
            safety_stock=_pick(draw, (0, 0, 5, 20)),
        )
    if kind == "adjust":
        return ev.InventoryAdjust(
            sku=sku,
            location=location,
            event_id=event_id,
            version=0,
            on_hand_delta=_between(draw, -60, 60),
            allocated_delta=_pick(draw, (0, 0, -5, 7)),
        )
    receipts = []
    for _ in range(_between(draw, 0, 3)):
        when = _day(draw) if _between(draw, 0, 19) else _pick(draw, _SENTINEL_DAYS)
        receipts.append((when, _between(draw, 1, 120)))
    return ev.InboundSet(sku=sku, location=location, version=0, receipts=tuple(receipts))


_INVALID_EVENTS = (
    ev.PriceSet(price_list="LIST", currency="USD", sku="S1", version=1, tiers=()),
    ev.PriceSet(price_list="LIST", currency="USD", sku="S2", version=1, tiers=((5, 1), (5, 2))),
    ev.ContractUpsert(contract="K1", version=1, valid_from=D0, valid_to=D0),
    ev.AccountUpsert(account="A1", version=1, parent="A1"),
    ev.AccountUpsert(account="A2", version=1, currency="US"),
    ev.ItemUpsert(sku="S3", version=1, uoms={"EA": 2}),
    ev.ItemUpsert(sku="S4", version=1, uoms={"BX": 0}),
    ev.InboundSet(sku="S1", location="W1", version=1, receipts=((D0, 0),)),
    ev.ContractLineSet(contract="K2", version=1, sku="S1", product_group="G1", tiers=((0, 1),)),
    ev.ContractLineSet(contract="K2", version=1, sku="S1", kind="DISCOUNT", tiers=((0, 10_001),)),
    ev.InventorySet(sku=" S1", location="W1", version=1),
    ev.LocationUpsert(location="W1", version=-1),
)  # events the engine must reject, and the reference with it


def _key(e: Any) -> tuple[Any, ...]:
    """The version key of an event (inventory sets and adjusts share their cell's)."""
    if isinstance(e, (ev.InventorySet, ev.InventoryAdjust)):
        return ("stock", e.sku, e.location)
    if isinstance(e, ev.InboundSet):
        return ("inbound", e.sku, e.location)
    if isinstance(e, (ev.PriceSet, ev.PriceDelete)):
        return ("price", e.price_list, e.currency, e.sku)
    if isinstance(e, (ev.ContractLineSet, ev.ContractLineDelete)):
        return ("line", e.contract, e.sku, e.product_group)
    if isinstance(e, (ev.ContractUpsert, ev.ContractDelete)):
        return ("contract", e.contract)
    if isinstance(e, ev.ItemUpsert):
        return ("item", e.sku)
    if isinstance(e, ev.ProductGroupUpsert):
        return ("group", e.product_group)
    if isinstance(e, ev.LocationUpsert):
        return ("location", e.location)
    if isinstance(e, ev.RegionUpsert):
        return ("region", e.region)
    if isinstance(e, ev.AccountUpsert):
        return ("account", e.account)
    raise TypeError(type(e).__name__)


def _deletion(e: Any) -> Any:
    if isinstance(e, ev.PriceSet):
        return ev.PriceDelete(price_list=e.price_list, currency=e.currency, sku=e.sku, version=0)
    if isinstance(e, ev.ContractUpsert):
        return ev.ContractDelete(contract=e.contract, version=0)
    if isinstance(e, ev.ContractLineSet):
        return ev.ContractLineDelete(
            contract=e.contract, version=0, sku=e.sku, product_group=e.product_group
        )
    return None


@st.composite
def worlds(draw: Any, invalid: bool = True) -> World:
    """A random world as events in version order (see the module docstring)."""
    pool: list[Any] = []
    skus = _shuffled(draw, list(SKUS))[: _between(draw, 1, len(SKUS))]
    for sku in skus:
        pool += [_item(draw, sku) for _ in range(_between(draw, 1, 2))]
    for group in _shuffled(draw, list(GROUPS))[: _between(draw, 0, len(GROUPS))]:
        parent = _pick(draw, (None, *(g for g in GROUPS if g != group)))
        pool.append(ev.ProductGroupUpsert(product_group=group, version=0, parent=parent))
    for location in LOCATIONS:
        active = _pick(draw, (True, True, True, False))
        pool.append(ev.LocationUpsert(location=location, version=0, active=active))
    for region in REGIONS:
        ranked = tuple(_some(draw, (*LOCATIONS, "W9"), 4))
        pool.append(ev.RegionUpsert(region=region, version=0, locations=ranked))
    for account in ACCOUNTS:
        pool += [_account(draw, account) for _ in range(_between(draw, 1, 2))]
    contracts = _shuffled(draw, list(CONTRACTS))[: _between(draw, 0, len(CONTRACTS))]
    for contract in contracts:
        pool += [_contract(draw, contract) for _ in range(_between(draw, 1, 2))]
    for sku in skus:
        if _pick(draw, (True, True, False)):  # the usual case: an open LIST price in USD
            tiers = _tiers(draw, _MICROS)
            pool.append(
                ev.PriceSet(price_list="LIST", currency="USD", sku=sku, version=0, tiers=tiers)
            )
        pool += [_price(draw, sku) for _ in range(_between(draw, 0, 2))]
    for contract in contracts:
        pool += [_contract_line(draw, contract, skus) for _ in range(_between(draw, 1, 3))]
    pool += [_stock_event(draw, f"adj-{i}", skus) for i in range(_between(draw, 0, 8))]
    pool += [d for d in (_deletion(_pick(draw, pool)) for _ in range(_between(draw, 0, 2))) if d]

    # stream order, then versions that increase per key along it
    last: dict[tuple[Any, ...], int] = {}
    versioned: list[Any] = []
    for e in _shuffled(draw, pool):
        key = _key(e)
        version = last.get(key, 0) + _pick(draw, (1, 1, 2, 5))
        if isinstance(e, ev.InventoryAdjust) and key in last and _pick(draw, (False, True)):
            version = last[key]  # as old as the cell's last change: a set absorbs it
        last[key] = version
        versioned.append(replace(e, version=version, ts_ms=1000 * len(versioned)))
    if invalid and _between(draw, 0, 3) == 0:
        versioned.insert(_between(draw, 0, len(versioned)), _pick(draw, _INVALID_EVENTS))

    items = [e for e in versioned if isinstance(e, ev.ItemUpsert)]
    factors = {1} | {f for e in items for f in e.uoms.values() if f > 0}
    uoms = {sku: tuple(sorted({u for e in items if e.sku == sku for u in e.uoms})) for sku in skus}
    minimums = {
        m for e in versioned if isinstance(e, (ev.PriceSet, ev.ContractLineSet)) for m, _ in e.tiers
    }
    return World(
        tuple(versioned),
        tuple(skus),
        tuple(sorted(factors)),
        tuple(sorted(minimums)),
        tuple(sorted(uoms.items())),
    )


def _quantity(draw: Any, world: World) -> int:
    """A line quantity near a break minimum in some UoM, small, or past the base limit."""
    kind = _between(draw, 0, 9)
    if kind <= 4 and world.minimums:
        base = _pick(draw, world.minimums) * _pick(draw, world.factors)
        return max(0, int(base // _pick(draw, world.factors) + _pick(draw, (0, -1, 1))))
    if kind == 9:
        per = _pick(draw, world.factors)
        return int(_pick(draw, (10**12 // per, 10**12 // per + 1, -1)))
    return _between(draw, 0, 30)


def _line(draw: Any, world: World) -> tuple[str, int, str | None]:
    sku = _pick(draw, world.skus * 4 + UNKNOWN_SKUS)
    alternates = dict(world.uoms).get(sku, ())
    kind = _between(draw, 0, 9)
    if kind <= 5:
        uom = _pick(draw, (None, None, ""))
    elif kind <= 8 and alternates:
        uom = _pick(draw, alternates)
    else:
        uom = _pick(draw, ("EA", "KG", *ALT_UOMS, "ZZ"))
    return sku, _quantity(draw, world), uom


@st.composite
def quote_requests(draw: Any, world: World) -> QuoteRequest:
    """A quote request aimed at the world: known and unknown SKUs, UoMs the item has and
    lacks, quantities around the breaks, dates around validity and receipt edges."""
    lines = tuple(_line(draw, world) for _ in range(_between(draw, 1, 5)))
    pricing_date = _day_number(D0 + dt.timedelta(days=_pick(draw, (0, 1, -1, 2, 4, -3))))
    where = _pick(draw, ("all", "all", "named", "region"))
    return QuoteRequest(
        account=_pick(draw, ACCOUNTS * 4 + ("A9",)),
        lines=lines,
        pricing_date=pricing_date,
        currency=_pick(draw, (None,) * 6 + ("USD", "JPY", "KWD", "EUR")),
        today=_pick(draw, (None, None, pricing_date - 1, pricing_date + 2)),
        locations=tuple(_some(draw, LOCATIONS, 3)) or ("W1",) if where == "named" else None,
        region=_pick(draw, REGIONS) if where == "region" else None,
    )


def batches(draw: Callable[..., Any], events: list[Any]) -> list[list[Any]]:
    """Split ``events`` at random boundaries (every batch non-empty; one batch shrinks)."""
    cuts = {_between(draw, 1, max(1, len(events) - 1)) for _ in range(_between(draw, 0, 5))}
    edges = [0, *sorted(c for c in cuts if c < len(events)), len(events)]
    return [events[a:b] for a, b in itertools.pairwise(edges) if a < b]


@st.composite
def deliveries(draw: Any, events: tuple[Any, ...]) -> list[list[Any]]:
    """How a stream may really arrive: shuffled, with duplicates, in random batches."""
    stream = list(events)
    stream += _some(draw, events, 6) if events else []
    return batches(draw, _shuffled(draw, stream))


@dataclass(frozen=True)
class HoldBatch:
    events: tuple[Any, ...]
    clock_ms: int | None  # the batch's stream time; None: from the events' ts_ms
    event_ms: tuple[int, ...] | None = None  # each entry's own stream time


@dataclass(frozen=True)
class HoldStream:
    setup: tuple[Any, ...]  # items, locations, stock: applied first
    batches: tuple[HoldBatch, ...] = field(default=())


@st.composite
def hold_streams(draw: Any) -> HoldStream:
    """Stock for two SKUs at two locations, then batches of HoldPlace / HoldRelease in
    stream order (exact duplicates, reused keys, the same key in other accounts, invalid
    TTLs, holds placed in the past)
    with a clock that moves forward: explicit stream times, or the events' own ts_ms."""
    setup: list[Any] = [ev.LocationUpsert(location=loc, version=1) for loc in LOCATIONS[:2]]
    setup.append(ev.AccountUpsert(account="A1", version=1))
    for sku in SKUS[:2]:
        setup.append(ev.ItemUpsert(sku=sku, version=1))
        for loc in LOCATIONS[:2]:
            on_hand = _between(draw, 0, 30)
            setup.append(ev.InventorySet(sku=sku, location=loc, version=1, on_hand=on_hand))
    explicit = _pick(draw, (True, False))
    clock = 10_000
    out = []
    for _ in range(_between(draw, 1, 6)):
        clock += _pick(draw, (0, 1, 500, 1000, 5000))
        events: list[Any] = []
        for _ in range(_between(draw, 1, 4)):
            key = _pick(draw, HOLD_KEYS)
            account = _pick(draw, HOLD_ACCOUNTS)
            if _between(draw, 0, 3) == 0:
                events.append(ev.HoldRelease(hold_key=key, ts_ms=clock, account=account))
                continue
            lines = tuple(
                (_pick(draw, SKUS[:2]), _pick(draw, LOCATIONS[:2]), _between(draw, 1, 12))
                for _ in range(_between(draw, 1, 2))
            )
            events.append(
                ev.HoldPlace(
                    hold_key=key,
                    account=account,
                    lines=lines,
                    ttl_ms=_pick(draw, (1000, 1, 500, 3000, 0)),  # 0 is invalid
                    ts_ms=_pick(draw, (0, clock, clock - 700)),
                )
            )
        if _pick(draw, (False, True)):
            events.append(_pick(draw, events))  # an exact duplicate
        event_ms = None
        if explicit and _pick(draw, (False, True)):
            event_ms = tuple(sorted(_between(draw, clock - 1500, clock) for _ in events))
        out.append(HoldBatch(tuple(events), clock if explicit else None, event_ms))
    return HoldStream(tuple(setup), tuple(out))


# A failing world takes thousands of runs to shrink; Hypothesis gives up after 300 s by
# default, past pytest's per-test timeout, which would hide the example. One minute still
# reaches a small example.
if hasattr(_hypothesis_engine, "MAX_SHRINKING_SECONDS"):
    _hypothesis_engine.MAX_SHRINKING_SECONDS = min(_hypothesis_engine.MAX_SHRINKING_SECONDS, 60)

#: The settings every reference property runs with: at least 500 examples (CI), more when
#: ``PACACHE_PROPERTY_EXAMPLES`` asks for it, no deadline (the first example pays numpy's
#: warm-up).
settings.register_profile(
    "reference-properties",
    max_examples=int(os.environ.get("PACACHE_PROPERTY_EXAMPLES", "500")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROPERTIES = settings.get_profile("reference-properties")
