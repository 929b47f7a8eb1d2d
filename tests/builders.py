"""Builders for engine tests (cosmicpython's ``make_batch_and_line`` style).

Each ``make_...`` function returns one canonical event from :mod:`engine.events` with the
defaults a distributor would expect, and a fresh version unless one is given.
:func:`make_state` applies a list of them with :func:`engine.deltas.apply_batch` and fails
loudly if the engine rejects any (so a typo in a test's set-up never passes silently);
:func:`apply` applies more events to an existing state and returns the
:class:`~engine.deltas.ApplyResult` for tests that look at rejections and stale counts.

:func:`quote_line` and :func:`quote_lines` run :func:`engine.quote.quote` and turn each row
of the columnar answer into a :class:`Line` with codes instead of dense ids, so assertions
read like the business rule they check. Money is written as exact decimal strings through
:func:`micros` ("12.34" → 12_340_000); floats never hold money, not even in tests.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine import events as ev
from engine.atp import DateSource
from engine.contexts import Level
from engine.deltas import ApplyResult, apply_batch, day_number
from engine.pricing import Lost, Policy, Source
from engine.quote import Bucket, LineStatus, QuoteResult, quote
from engine.state import LIST_CODE, State

__all__ = [
    "ACCOUNT",
    "LIST_CODE",
    "SKU",
    "TODAY",
    "CandidateView",
    "Line",
    "apply",
    "day",
    "make_account",
    "make_adjust",
    "make_contract",
    "make_contract_delete",
    "make_cost_plus_line",
    "make_discount_line",
    "make_group",
    "make_hold",
    "make_inbound",
    "make_item",
    "make_line_delete",
    "make_location",
    "make_net_line",
    "make_price",
    "make_price_delete",
    "make_region",
    "make_release",
    "make_state",
    "make_stock",
    "micros",
    "quote_line",
    "quote_lines",
]

TODAY = dt.date(2025, 3, 3)  # a Monday; every test prices and promises on it by default
ACCOUNT = "ACME-0001"
SKU = "BOLT-M8"

_versions = itertools.count(1)


def _version(version: int | None) -> int:
    return next(_versions) if version is None else version


def day(offset: int = 0, base: dt.date = TODAY) -> dt.date:
    """The date ``offset`` days after ``base`` (TODAY by default)."""
    return base + dt.timedelta(days=offset)


def micros(amount: str) -> int:
    """An exact decimal amount of a major unit as int micros: ``micros("12.34")``."""
    value = Decimal(amount) * 1_000_000
    if value != value.to_integral_value():
        raise ValueError(f"{amount} has more than 6 decimals")
    return int(value)


# --- master data -------------------------------------------------------------------------


def make_item(
    sku: str = SKU,
    *,
    uoms: dict[str, Any] | None = None,
    base_uom: str = "EA",
    status: str = "ACTIVE",
    min_order_qty: int = 0,
    order_multiple: int = 1,
    product_group: str | None = None,
    cost: int | None = None,
    cost_currency: str = "USD",
    lead_time_days: int | None = None,
    version: int | None = None,
) -> ev.ItemUpsert:
    """An item; ``uoms`` maps alternate UoMs to their factor to base (EA)."""
    return ev.ItemUpsert(
        sku=sku,
        version=_version(version),
        status=status,
        base_uom=base_uom,
        uoms=dict(uoms or {}),
        min_order_qty=min_order_qty,
        order_multiple=order_multiple,
        product_group=product_group,
        replacement_cost_micros=cost,
        cost_currency=cost_currency,
        lead_time_days=lead_time_days,
    )


def make_group(name: str, parent: str | None = None) -> ev.ProductGroupUpsert:
    """A product group under ``parent``."""
    return ev.ProductGroupUpsert(product_group=name, parent=parent, version=_version(None))


def make_location(code: str, *, active: bool = True) -> ev.LocationUpsert:
    """A stocking location."""
    return ev.LocationUpsert(location=code, active=active, version=_version(None))


def make_region(code: str, *ranked_locations: str) -> ev.RegionUpsert:
    """A region with its locations ranked best first."""
    return ev.RegionUpsert(region=code, locations=ranked_locations, version=_version(None))


def make_account(
    code: str = ACCOUNT,
    *,
    parent: str | None = None,
    price_groups: Sequence[str] = (),
    price_list: str | None = None,
    currency: str = "USD",
    disclosure: str = "EXACT",
    disclosure_cap: int = 0,
    version: int | None = None,
) -> ev.AccountUpsert:
    """An account; price groups in the account's order of preference."""
    return ev.AccountUpsert(
        account=code,
        version=_version(version),
        parent=parent,
        price_groups=tuple(price_groups),
        price_list=price_list,
        currency=currency,
        disclosure=disclosure,
        disclosure_cap=disclosure_cap,
    )


# --- pricing -----------------------------------------------------------------------------


def _tiers(price: int | None, tiers: Sequence[tuple[int, int]] | None) -> tuple[Any, ...]:
    if tiers is not None:
        return tuple(tuple(t) for t in tiers)
    if price is None:
        raise ValueError("give a price or tiers")
    return ((0, price),)


def make_price(
    sku: str = SKU,
    price: int | None = None,
    *,
    tiers: Sequence[tuple[int, int]] | None = None,
    price_list: str = LIST_CODE,
    currency: str = "USD",
    uom: str | None = None,
    valid_from: dt.date | None = None,
    valid_to: dt.date | None = None,
    version: int | None = None,
) -> ev.PriceSet:
    """A price-list entry: one price (micros per ``uom``) or ``tiers`` of (min qty, price)."""
    return ev.PriceSet(
        price_list=price_list,
        currency=currency,
        sku=sku,
        version=_version(version),
        uom=uom,
        tiers=_tiers(price, tiers),
        valid_from=valid_from,
        valid_to=valid_to,
    )


def make_price_delete(
    sku: str = SKU,
    *,
    price_list: str = LIST_CODE,
    currency: str = "USD",
    version: int | None = None,
) -> ev.PriceDelete:
    """Delete a price-list entry (leaves a tombstone)."""
    return ev.PriceDelete(
        price_list=price_list, currency=currency, sku=sku, version=_version(version)
    )


def make_contract(
    code: str,
    *,
    accounts: Sequence[str] = (),
    price_groups: Sequence[str] = (),
    all_accounts: bool = False,
    priority: int = 0,
    currency: str = "USD",
    valid_from: dt.date | None = None,
    valid_to: dt.date | None = None,
    version: int | None = None,
) -> ev.ContractUpsert:
    """A contract header and its assignments."""
    return ev.ContractUpsert(
        contract=code,
        version=_version(version),
        currency=currency,
        priority=priority,
        valid_from=valid_from,
        valid_to=valid_to,
        accounts=tuple(accounts),
        price_groups=tuple(price_groups),
        all_accounts=all_accounts,
    )


def make_contract_delete(code: str, *, version: int | None = None) -> ev.ContractDelete:
    """Delete a contract header."""
    return ev.ContractDelete(contract=code, version=_version(version))


def _line(
    contract: str,
    kind: str,
    value: int | None,
    tiers: Sequence[tuple[int, int]] | None,
    sku: str | None,
    group: str | None,
    uom: str | None,
    version: int | None,
) -> ev.ContractLineSet:
    return ev.ContractLineSet(
        contract=contract,
        version=_version(version),
        sku=None if group is not None else sku,
        product_group=group,
        kind=kind,
        uom=uom,
        tiers=_tiers(value, tiers),
    )


def make_net_line(
    contract: str,
    price: int | None = None,
    *,
    tiers: Sequence[tuple[int, int]] | None = None,
    sku: str = SKU,
    group: str | None = None,
    uom: str | None = None,
    version: int | None = None,
) -> ev.ContractLineSet:
    """A NET contract line (micros per ``uom``) for a SKU, or for ``group`` when given."""
    return _line(contract, "NET", price, tiers, sku, group, uom, version)


def make_discount_line(
    contract: str,
    bps: int | None = None,
    *,
    tiers: Sequence[tuple[int, int]] | None = None,
    sku: str = SKU,
    group: str | None = None,
    uom: str | None = None,
    version: int | None = None,
) -> ev.ContractLineSet:
    """A DISCOUNT contract line: basis points off the list price."""
    return _line(contract, "DISCOUNT", bps, tiers, sku, group, uom, version)


def make_cost_plus_line(
    contract: str,
    bps: int | None = None,
    *,
    tiers: Sequence[tuple[int, int]] | None = None,
    sku: str = SKU,
    group: str | None = None,
    uom: str | None = None,
    version: int | None = None,
) -> ev.ContractLineSet:
    """A COST_PLUS contract line: basis points over the item's replacement cost."""
    return _line(contract, "COST_PLUS", bps, tiers, sku, group, uom, version)


def make_line_delete(
    contract: str, *, sku: str = SKU, version: int | None = None
) -> ev.ContractLineDelete:
    """Delete a contract's SKU line (leaves a tombstone)."""
    return ev.ContractLineDelete(contract=contract, sku=sku, version=_version(version))


# --- inventory ---------------------------------------------------------------------------


def make_stock(
    sku: str = SKU,
    location: str = "DC-EAST",
    on_hand: int = 0,
    *,
    allocated: int = 0,
    safety_stock: int = 0,
    version: int | None = None,
) -> ev.InventorySet:
    """An absolute stock position (base units)."""
    return ev.InventorySet(
        sku=sku,
        location=location,
        version=_version(version),
        on_hand=on_hand,
        allocated=allocated,
        safety_stock=safety_stock,
    )


def make_adjust(
    event_id: str,
    on_hand_delta: int = 0,
    *,
    allocated_delta: int = 0,
    sku: str = SKU,
    location: str = "DC-EAST",
    version: int | None = None,
) -> ev.InventoryAdjust:
    """A relative stock change, deduplicated by ``event_id``."""
    return ev.InventoryAdjust(
        sku=sku,
        location=location,
        event_id=event_id,
        version=_version(version),
        on_hand_delta=on_hand_delta,
        allocated_delta=allocated_delta,
    )


def make_inbound(
    *receipts: tuple[dt.date, int],
    sku: str = SKU,
    location: str = "DC-EAST",
    version: int | None = None,
) -> ev.InboundSet:
    """The receipt schedule of a SKU-location: (expected date, base qty) pairs."""
    return ev.InboundSet(
        sku=sku, location=location, version=_version(version), receipts=tuple(receipts)
    )


def make_hold(
    key: str,
    *lines: tuple[str, str, int],
    ttl_ms: int = 600_000,
    ts_ms: int = 0,
    account: str = ACCOUNT,
) -> ev.HoldPlace:
    """A soft hold of ``account`` on (sku, location, base qty) lines."""
    return ev.HoldPlace(
        hold_key=key, lines=tuple(lines), ttl_ms=ttl_ms, ts_ms=ts_ms, account=account
    )


def make_release(key: str, *, account: str = ACCOUNT) -> ev.HoldRelease:
    """Release ``account``'s hold early."""
    return ev.HoldRelease(hold_key=key, account=account)


# --- applying ----------------------------------------------------------------------------


def apply(state: State, *events: Any, clock_ms: int | None = None) -> ApplyResult:
    """Apply ``events`` as one batch; the result says what was applied, stale or rejected."""
    return apply_batch(state, list(events), clock_ms=clock_ms)


def make_state(*events: Any, clock_ms: int | None = None) -> State:
    """A fresh state holding ``events``; raises if the engine rejects any of them."""
    state = State()
    result = apply(state, *events, clock_ms=clock_ms)
    if result.rejected:
        raise AssertionError(f"set-up events rejected: {result.rejected}")
    return state


# --- quoting -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CandidateView:
    """One explain candidate, with codes: ``source`` is a contract or price-list code."""

    source: str
    kind: Source
    level: Level
    target: str  # the SKU line's SKU, or the product group code
    unit_price_micros: int | None
    lost: Lost


@dataclass(frozen=True, slots=True)
class Line:
    """One answered line of a quote, with codes instead of dense ids."""

    status: LineStatus
    base_qty: int
    factor: int
    unit_price_micros: int
    extended_micros: int
    source: Source
    source_code: str | None
    level: Level | None
    target: str | None  # product group code of a group line; None for a SKU line or list
    tier_index: int
    tier_min: int
    next_break_qty: int
    next_break_unit_price_micros: int
    below_minimum: bool
    not_multiple: bool
    suggested_qty: int
    suggested_in_base: bool
    available_now: dict[str, int]
    oversold: dict[str, bool]
    network_available: int
    earliest_date: dt.date | None
    date_source: DateSource
    shown: dict[str, int]
    bucket: dict[str, Bucket]
    candidates: list[CandidateView]


def _date_of(days: int) -> dt.date | None:
    return None if days < 0 else dt.date(1970, 1, 1) + dt.timedelta(days=days)


def _line_view(state: State, result: QuoteResult, row: int, skus: Sequence[str]) -> Line:
    prices, stock = result.prices, result.stock
    source = Source(int(prices.source[row])) if prices is not None else Source.NONE
    source_code = None
    level = None
    target = None
    candidates: list[CandidateView] = []
    if prices is not None and source != Source.NONE:
        table = state.contracts if source == Source.CONTRACT else state.price_lists
        source_code = table.code(int(prices.source_id[row]))
        level = Level(int(prices.level[row]))
        group = int(prices.target_group[row])
        target = state.product_groups.code(group) if group >= 0 else None
    if prices is not None and prices.candidates is not None:
        for c in prices.candidates[row]:
            table = state.contracts if c.source == Source.CONTRACT else state.price_lists
            candidates.append(
                CandidateView(
                    source=table.code(c.source_id),
                    kind=c.source,
                    level=c.level,
                    target=skus[row]
                    if c.target_group < 0
                    else state.product_groups.code(c.target_group),
                    unit_price_micros=c.unit_price_micros,
                    lost=c.lost,
                )
            )
    locations = [] if stock is None else [state.locations.code(i) for i in stock.locations.tolist()]

    def by_location(block: Any, cast: Any) -> dict[str, Any]:
        if block is None:
            return {}
        return {code: cast(v) for code, v in zip(locations, block[row].tolist(), strict=True)}

    def price_field(name: str) -> int:
        return 0 if prices is None else int(getattr(prices, name)[row])

    return Line(
        status=LineStatus(int(result.status[row])),
        base_qty=int(result.base_qty[row]),
        factor=int(result.factor[row]),
        unit_price_micros=price_field("unit_price_micros"),
        extended_micros=price_field("extended_micros"),
        source=source,
        source_code=source_code,
        level=level,
        target=target,
        tier_index=price_field("tier_index") if prices is not None else -1,
        tier_min=price_field("tier_min") if prices is not None else -1,
        next_break_qty=price_field("next_break_qty") if prices is not None else -1,
        next_break_unit_price_micros=price_field("next_break_unit_price_micros"),
        below_minimum=bool(result.sell.below_minimum[row]),
        not_multiple=bool(result.sell.not_multiple[row]),
        suggested_qty=int(result.sell.suggested_qty[row]),
        suggested_in_base=bool(result.sell.suggested_in_base[row]),
        available_now=by_location(None if stock is None else stock.available_now, int),
        oversold=by_location(None if stock is None else stock.oversold, bool),
        network_available=0 if stock is None else int(stock.network_available[row]),
        earliest_date=None if stock is None else _date_of(int(stock.earliest_date[row])),
        date_source=DateSource.NONE if stock is None else DateSource(int(stock.date_source[row])),
        shown=by_location(result.shown_available, int),
        bucket=by_location(result.bucket, Bucket),
        candidates=candidates,
    )


def quote_lines(
    state: State,
    lines: Sequence[tuple[str, int] | tuple[str, int, str]],
    *,
    account: str = ACCOUNT,
    on: dt.date = TODAY,
    today: dt.date | None = None,
    currency: str | None = None,
    locations: Sequence[str] | None = None,
    region: str | None = None,
    policy: Policy = Policy.PRIORITY,
    explain: bool = False,
) -> list[Line]:
    """Quote (sku, qty[, uom]) lines for ``account`` priced ``on`` a date; one Line each."""
    skus = [line[0] for line in lines]
    qty = [line[1] for line in lines]
    uoms = [line[2] if len(line) > 2 else "" for line in lines]  # type: ignore[misc]
    result = quote(
        state,
        account=account,
        skus=skus,
        qty=qty,
        uoms=uoms,
        currency=currency,
        pricing_date=day_number(on),
        today=None if today is None else day_number(today),
        locations=locations,
        region=region,
        policy=policy,
        explain=explain,
    )
    return [_line_view(state, result, row, skus) for row in range(len(lines))]


def quote_line(state: State, sku: str = SKU, qty: int = 1, uom: str = "", **options: Any) -> Line:
    """Quote one line (see :func:`quote_lines` for the options)."""
    return quote_lines(state, [(sku, qty, uom)], **options)[0]
