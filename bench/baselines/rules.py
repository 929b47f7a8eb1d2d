"""The baselines' answers: a request's rows → a fresh reference model → protobuf responses.

Every baseline (Redis, PostgreSQL, plain Python) reads the rows one request needs — the
account and its ancestors, the candidate contracts, contract lines of the SKUs and of their
product-group chains, list prices, items, stock, inbound, locations — as engine events, and
hands them here. :func:`request_model` puts them into a fresh
:class:`~bench.reference.Reference` (the project's plain-Python model of DESIGN §2–§5), and
the ``*_response`` functions answer from it with the protobuf shapes ``server.convert``
gives pacache's answers, placeholders included, so answers compare field by field.

Promise is not in the reference model; :func:`promise_response` implements the sourcing
rules of ``engine.promise`` (its module docstring is the specification) over plain lists,
with the engine's own plain-Python step 2–3 filler (``engine.promise.fill_lines``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.reference import EPOCH, QuoteLine, Reference, UnknownCodeError, entity_key
from engine import events as ev
from engine.errors import InvalidInput, UnknownCode
from engine.promise import fill_lines
from server import convert
from server._proto.pacache.v1 import pacache_pb2 as pb

__all__ = [
    "Needs",
    "promise_response",
    "quote_response",
    "request_model",
    "request_needs",
]

_SIZED = ("OK", "NO_PRICE", "AMOUNT_OVERFLOW")  # lines the engine sizes (others hold 0)
_NEVER = 2**63 - 1


class _RequestModel(Reference):
    """The reference model over one request's rows; candidate contracts are worked out once
    per request instead of once per line (same answer, far less repeated work)."""

    def __init__(self) -> None:
        super().__init__()
        self._candidates: dict[tuple[str, str, int], Any] = {}

    def _candidate_contracts(self, account: str, currency: str, date: int) -> Any:
        key = (account, currency, date)
        if key not in self._candidates:
            self._candidates[key] = super()._candidate_contracts(account, currency, date)
        return self._candidates[key]


def request_model(events: Iterable[Any]) -> Reference:
    """A reference model holding ``events`` (already validated when the store was loaded;
    one event per entity key). Locations keep the order they come in: "all locations" is
    ranked in that order, as pacache ranks them by location id."""
    model = _RequestModel()
    for event in events:
        model.latest[entity_key(event)] = event
    return model


@dataclass(frozen=True, slots=True)
class Needs:
    """What a request asks a store for (the lines are already validated)."""

    account: str  # "": none (Promise does not price)
    skus: list[str]  # distinct, in request order
    currency: str | None  # None: the account's
    region: str | None
    prices: bool  # contracts, contract lines, list prices
    stock: bool  # locations, the region, stock and inbound


def request_needs(request: Any, skus: Sequence[str], *, prices: bool, stock: bool) -> Needs:
    """The rows a Quote / GetPrices / GetAvailability / Promise request needs."""
    return Needs(
        account=request.account if prices or not isinstance(request, pb.PromiseRequest) else "",
        skus=list(dict.fromkeys(skus)),
        currency=getattr(request, "currency", "") or None,
        region=(getattr(request, "region", "") or None) if stock else None,
        prices=prices,
        stock=stock,
    )


def _iso(days: int | None) -> str:
    return "" if days is None or days < 0 else (EPOCH + dt.timedelta(days=days)).isoformat()


def _check_locations(model: Reference, locations: Sequence[str]) -> None:
    """pacache refuses a named location it does not know (NOT_FOUND)."""
    known = {key[1] for key in model.latest if key[0] == "location"}
    for code in locations:
        if code not in known:
            raise UnknownCode("locations", code)


def _line_uom_code(model: Reference, sku: str, uom: str) -> str:
    item = model.item(sku)
    return uom or (item.base_uom if item is not None else "")


def quote_response(
    model: Reference,
    request: Any,
    out: Any,
    *,
    lines: tuple[list[str], list[int], list[str] | None],
    today: int,
    policy: str,
    with_prices: bool,
    with_stock: bool,
) -> None:
    """Fill a Quote / GetPrices / GetAvailability response, as ``server.convert`` does."""
    skus, quantities, uoms = lines
    uom_list = uoms if uoms is not None else [""] * len(skus)
    pricing_date = convert.parse_date(getattr(request, "pricing_date", ""), "pricing_date", today)
    if model.account(request.account) is None:
        raise UnknownCode("account", request.account)
    locations = list(getattr(request, "locations", ())) if with_stock else []
    region = (getattr(request, "region", "") or None) if with_stock else None
    if locations:
        _check_locations(model, locations)
    try:
        answer = model.quote(
            account=request.account,
            lines=[(s, q, u or None) for s, q, u in zip(skus, quantities, uom_list, strict=True)],
            currency=getattr(request, "currency", "") or None,
            pricing_date=pricing_date,
            today=today,
            locations=locations or None,
            region=region,
            policy=policy,
        )
    except UnknownCodeError as unknown:
        raise UnknownCode("region", str(unknown)) from None
    account = model.account(request.account)
    assert account is not None
    statuses = [
        line.status if with_prices or line.status not in _SIZED else "OK" for line in answer
    ]
    out.status.extend(pb.LineStatus.Value(f"LINE_STATUS_{s}") for s in statuses)
    out.base_qty.extend((line.base_qty or 0) if line.status in _SIZED else 0 for line in answer)
    if with_prices:
        out.currency = getattr(request, "currency", "") or account.currency
        _price_columns(out.prices, answer)
        _sell_columns(out.sell_rules, model, answer, skus, quantities, uom_list)
    if with_stock:
        _availability_columns(out.availability, model, account, answer, today)


def _price_columns(out: pb.PriceColumns, answer: list[QuoteLine]) -> None:
    for line in answer:
        price = line.price if line.status == "OK" else None
        if price is None:
            out.unit_price_micros.append(0)
            out.extended_micros.append(0)
            out.source.append(0)
            out.source_id.append("")
            out.level.append(0)
            out.kind.append(0)
            out.target_group.append("")
            out.tier_index.append(0)
            out.tier_min_qty.append(0)
            out.tier_uom.append("")
            out.next_break_qty.append(0)
            out.next_break_unit_price_micros.append(0)
            continue
        out.unit_price_micros.append(price.unit_price_micros)
        out.extended_micros.append(price.extended_micros)
        out.source.append(pb.PriceSource.Value(f"PRICE_SOURCE_{price.source}"))
        out.source_id.append(price.source_code)
        out.level.append(pb.PriceLevel.Value(f"PRICE_LEVEL_{price.level}"))
        out.kind.append(pb.LineKind.Value(f"LINE_KIND_{price.kind}") if price.kind else 0)
        out.target_group.append(price.target_group or "")
        out.tier_index.append(price.tier_index)
        out.tier_min_qty.append(price.tier_min)
        out.tier_uom.append(price.tier_uom or "")
        has_next = price.next_break_qty is not None and price.next_break_qty > 0
        out.next_break_qty.append(price.next_break_qty or 0 if has_next else 0)
        out.next_break_unit_price_micros.append(
            (price.next_break_unit_price_micros or 0) if has_next else 0
        )


def _ceil_to(value: int, step: int) -> int:
    return -(-value // step) * step


def _sell_columns(
    out: pb.SellRuleColumns,
    model: Reference,
    answer: list[QuoteLine],
    skus: Sequence[str],
    quantities: Sequence[int],
    uoms: Sequence[str],
) -> None:
    """Sell rules; a line pacache does not size is checked as 0 base units, as it does."""
    for line, sku, uom in zip(answer, skus, uoms, strict=True):
        item = model.item(sku)
        if line.status in _SIZED and line.sell is not None:
            sell = line.sell
            below, not_multiple = sell.below_minimum, sell.not_multiple
            suggested, in_base = sell.suggested_qty, sell.suggested_in_base
        elif item is not None:
            factor = model.uom_factor(item, uom or None) or 1
            base = _ceil_to(item.min_order_qty, max(item.order_multiple, 1))
            below, not_multiple = item.min_order_qty > 0, False
            in_base = base % factor != 0
            suggested = base if in_base else base // factor
        else:
            below = not_multiple = in_base = False
            suggested = 0
        out.below_minimum.append(below)
        out.not_multiple.append(not_multiple)
        out.suggested_qty.append(suggested)
        if item is None:
            out.suggested_uom.append("")
        else:
            out.suggested_uom.append(item.base_uom if in_base else _line_uom_code(model, sku, uom))


def _availability_columns(
    out: pb.AvailabilityColumns,
    model: Reference,
    account: ev.AccountUpsert,
    answer: list[QuoteLine],
    today: int,
) -> None:
    """Availability matrices row-major (line i, location j at i × L + j), disclosure applied."""
    mode = account.disclosure
    locations = answer[0].stock.locations if answer else ()
    out.locations.extend(locations)
    for line in answer:
        stock = line.stock
        out.available.extend(stock.shown[loc] for loc in locations)
        out.buckets.extend(
            pb.StockBucket.Value(f"STOCK_BUCKET_{stock.bucket[loc]}") for loc in locations
        )
        if mode == "EXACT":
            out.oversold.extend(stock.oversold[loc] for loc in locations)
            out.network_available.append(stock.network_available)
        elif mode == "CAPPED":
            out.network_available.append(sum(stock.shown[loc] for loc in locations))
        if line.status in _SIZED or line.status == "UNKNOWN_SKU":
            date, source = stock.earliest_date, stock.date_source
        else:  # pacache looks for 0 base units on lines it does not size: in stock today
            date, source = today, "STOCK"
        out.earliest_date.append(_iso(date))
        out.date_source.append(pb.DateSource.Value(f"DATE_SOURCE_{source}"))
    out.disclosure = pb.Disclosure.Value(f"DISCLOSURE_{mode}")


# --------------------------------------------------------------------------- promise


def _resolve(model: Reference, sku: str, qty: int, uom: str) -> tuple[str, int]:
    """(status, base qty) as engine.catalog.resolve_lines: 0 units unless the line is OK."""
    item = model.item(sku)
    if item is None:
        return "UNKNOWN_SKU", 0
    factor = model.uom_factor(item, uom or None)
    if factor is None:
        return "UNKNOWN_UOM", 0
    if not 0 <= qty <= 10**12 // factor:
        return "QTY_OUT_OF_RANGE", 0
    if qty == 0:
        return "ZERO_QUANTITY", 0
    if item.status == "BLOCKED":
        return "ITEM_BLOCKED", 0
    return "OK", qty * factor


def _promise_receipts(
    model: Reference, sku: str, locations: Sequence[str], raw: list[int], today: int
) -> list[list[int]]:
    """[date, rank, usable qty] in (date, rank, schedule) order; usable is what is left once
    an oversold location's shortfall is covered; past-due receipts arrive today."""
    found = []
    for rank, location in enumerate(locations):
        cumulative = raw[rank]
        for position, (day, qty) in enumerate(model.receipts(sku, location)):
            before, cumulative = cumulative, cumulative + qty
            usable = max(cumulative, 0) - max(before, 0)
            found.append((max(day, today), rank, position, usable))
    found.sort()
    return [[date, rank, usable] for date, rank, _, usable in found if usable > 0]


def _single_location(
    stock: list[list[int]], need: list[int], receipts: list[list[list[int]]], today: int,
    latest: int, n_locations: int,
) -> tuple[int, int] | None:  # fmt: skip
    """(rank, date) of the location completing the order earliest (then by rank) from its own
    stock and receipts, when that date is ≤ ``latest``."""
    done = [[today if stock[u][k] >= need[u] else _NEVER for k in range(n_locations)]
            for u in range(len(need))]  # fmt: skip
    for u, found in enumerate(receipts):
        have = list(stock[u])
        for date, rank, qty in found:
            have[rank] += qty
            if have[rank] >= need[u] and done[u][rank] == _NEVER:
                done[u][rank] = date
    by_location = [max((row[k] for row in done), default=-_NEVER) for k in range(n_locations)]
    if not by_location:
        return None
    best = min(range(n_locations), key=lambda k: (by_location[k], k))
    return None if by_location[best] > latest else (best, by_location[best])


def promise_response(
    model: Reference,
    request: pb.PromiseRequest,
    *,
    lines: tuple[list[str], list[int], list[str] | None],
    today: int,
) -> pb.PromiseResponse:
    """The sourcing plan of engine.promise (DESIGN §5), computed over plain lists."""
    skus, quantities, uoms = lines
    uom_list = uoms if uoms is not None else [""] * len(skus)
    if request.max_shipments < 0:
        raise InvalidInput("max_shipments", f"{request.max_shipments}", ">= 0 (0: no limit)")
    need_by = convert.parse_date(request.need_by, "need_by", -1) if request.need_by else None
    named = list(request.locations)
    if named:
        _check_locations(model, named)
    try:
        chosen_set = model.location_set(named or None, request.region or None)
    except UnknownCodeError as unknown:
        raise UnknownCode("region", str(unknown)) from None
    locs = list(model.active_locations() if chosen_set is None else chosen_set)
    resolved = [
        _resolve(model, s, q, u) for s, q, u in zip(skus, quantities, uom_list, strict=True)
    ]
    status = [s for s, _ in resolved]
    base_qty = [b for _, b in resolved]
    n, n_locs = len(skus), len(locs)

    planned = [i for i in range(n) if base_qty[i] > 0]
    distinct: dict[str, int] = {}
    uidx = [distinct.setdefault(skus[i], len(distinct)) for i in planned]
    usku = list(distinct)
    need = [0] * len(usku)
    for line, u in zip(planned, uidx, strict=True):
        need[u] += base_qty[line]
    items = [model.item(s) for s in usku]
    raw = [[model.available_now(s, loc) for loc in locs] for s in usku]
    stock = [[max(v, 0) for v in row] for row in raw]
    lead = [-1 if i is None or i.lead_time_days is None else i.lead_time_days for i in items]
    active = [i is not None and i.status == "ACTIVE" for i in items]
    backorder = [0] * n
    backorder_date = [-1] * n

    whole = [k for k in range(n_locs) if all(stock[u][k] >= need[u] for u in range(len(usku)))]
    single = (whole[0], today) if whole else None
    parts: list[tuple[int, int, int, int]] = []
    if single is None:
        budget = float("inf") if not request.max_shipments else request.max_shipments
        receipts = [
            _promise_receipts(model, s, locs, raw[u], today) if active[u] else []
            for u, s in enumerate(usku)
        ]
        args = (planned, uidx, base_qty)
        parts, rest = fill_lines(*args, stock, receipts, budget, request.ship_complete, today)
        dated = [active[u] and lead[u] >= 0 for u in uidx]
        for at, line in enumerate(planned):
            backorder[line] = rest[at]
            if dated[at] and rest[at] > 0:
                backorder_date[line] = today + lead[uidx[at]]
        if request.ship_complete:
            dates = [part[2] for part in parts] + [
                backorder_date[i] for i in range(n) if backorder[i] > 0
            ]
            undated = any(r > 0 and not d for r, d in zip(rest, dated, strict=True)) or not dates
            complete = -1 if undated else max(dates)
            latest = _NEVER - 1 if undated else complete
            single = _single_location(stock, need, receipts, today, latest, n_locs)
            if single is None and not undated:  # all ships on one date: re-source by then
                by_then = [list(row) for row in stock]
                for u, found in enumerate(receipts):
                    for date, rank, q in found:
                        by_then[u][rank] += q if date <= complete else 0
                again, rest_again = fill_lines(
                    *args, by_then, [[] for _ in usku], budget, True, complete
                )
                if rest_again == rest and len({p[1] for p in again}) <= len({p[1] for p in parts}):
                    parts = again
            parts = [(line, rank, complete, q) for line, rank, _, q in parts]
            for i in range(n):
                if backorder[i] > 0:
                    backorder_date[i] = complete
    if single is not None:
        parts = [(line, single[0], single[1], base_qty[line]) for line in planned]
        backorder, backorder_date = [0] * n, [-1] * n

    merged: dict[tuple[int, int, int], int] = {}
    for line, rank, date, q in parts:
        merged[(line, date, rank)] = merged.get((line, date, rank), 0) + q
    allocations = sorted(merged.items())
    ok = [s == "OK" for s in status]
    line_date = [today if ok[i] else -1 for i in range(n)]
    for (line, date, _), _q in allocations:
        line_date[line] = max(line_date[line], date)
    for i in range(n):
        if backorder[i] > 0:
            line_date[i] = max(line_date[i], backorder_date[i]) if backorder_date[i] >= 0 else -1
    for (line, date, _), _q in allocations:
        if date < 0:
            line_date[line] = -1
    ok_dates = [line_date[i] for i in range(n) if ok[i]]
    complete_date = -1 if not ok_dates or min(ok_dates) < 0 else max(ok_dates)

    response = pb.PromiseResponse(
        base_qty=base_qty,
        allocation_line=[line for (line, _, _), _ in allocations],
        allocation_location=[locs[rank] for (_, _, rank), _ in allocations],
        allocation_qty=[q for _, q in allocations],
        allocation_ship_date=[_iso(date) for (_, date, _), _ in allocations],
        backordered_qty=backorder,
        backorder_date=[_iso(d) for d in backorder_date],
        shipment_count=len({(rank, date) for (_, date, rank), _ in allocations}),
        complete_date=_iso(complete_date),
        line_complete_date=[_iso(d) for d in line_date],
    )
    if need_by is not None:
        response.meets_need_by = 0 <= complete_date <= need_by
        response.line_meets_need_by.extend(ok[i] and 0 <= line_date[i] <= need_by for i in range(n))
    response.status.extend(pb.LineStatus.Value(f"LINE_STATUS_{s}") for s in status)
    return response
