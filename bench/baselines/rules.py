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
from engine.errors import InvalidInput, UnknownCode
from engine.pricing import Policy
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
    lines: convert.RequestLines,
    today: int,
    policy: str,
    with_prices: bool,
    with_stock: bool,
) -> None:
    """Fill a Quote / GetPrices / GetAvailability response, as ``server.convert`` does: one
    ``QuotedLine`` per request line, echoing it, with ``price`` and ``sell_rules`` on every
    line when prices are asked and ``availability`` on every line when stock is asked.
    ``policy`` ("priority" or "lowest_price") is the server's default, used when the
    request leaves its own ``policy`` UNSPECIFIED."""
    skus, quantities, uoms = _columns(lines)
    applied = convert.policy_of(getattr(request, "policy", 0), Policy[policy.upper()])
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
            lines=[(s, q, u or None) for s, q, u in zip(skus, quantities, uoms, strict=True)],
            currency=getattr(request, "currency", "") or None,
            pricing_date=pricing_date,
            today=today,
            locations=locations or None,
            region=region,
            policy=applied.name.lower(),
        )
    except UnknownCodeError as unknown:
        raise UnknownCode("region", str(unknown)) from None
    account = model.account(request.account)
    assert account is not None
    mode = account.disclosure
    location_set = list(answer[0].stock.locations) if answer else []
    if with_prices:
        out.currency = getattr(request, "currency", "") or account.currency
        out.policy = pb.Policy.Value(f"POLICY_{applied.name}")
    if with_stock:
        out.disclosure = pb.Disclosure.Value(f"DISCLOSURE_{mode}")
        out.locations.extend(location_set)
    for i, (line, sku, qty, uom) in enumerate(zip(answer, skus, quantities, uoms, strict=True)):
        status = line.status if with_prices or line.status not in _SIZED else "OK"
        quoted = out.lines.add(
            line_id=lines.line_ids[i],
            index=i,
            sku=sku,
            quantity=qty,
            uom=uom,
            status=pb.LineStatus.Value(f"LINE_STATUS_{status}"),
            base_qty=(line.base_qty or 0) if line.status in _SIZED else 0,
        )
        if with_prices:
            _price(quoted.price, line)
            _sell_rules(quoted.sell_rules, model, line, sku, uom)
        if with_stock:
            _availability(quoted.availability, line, location_set, mode, today)


def _columns(lines: convert.RequestLines) -> tuple[list[str], list[int], list[str]]:
    """(skus, quantities, uoms) of a request's lines; "" where a line has no UoM."""
    uoms = lines.uoms if lines.uoms is not None else [""] * len(lines)
    return lines.skus, [int(q) for q in lines.quantities.tolist()], uoms


def _price(out: pb.Price, line: QuoteLine) -> None:
    """A line's price; present (all zero / "") where the line is not OK, as pacache's."""
    out.SetInParent()
    price = line.price if line.status == "OK" else None
    if price is None:
        return
    out.unit_price_micros = price.unit_price_micros
    out.extended_micros = price.extended_micros
    out.source = pb.PriceSource.Value(f"PRICE_SOURCE_{price.source}")
    out.source_id = price.source_code
    out.level = pb.PriceLevel.Value(f"PRICE_LEVEL_{price.level}")
    if price.kind:  # UNSPECIFIED for a price-list price
        out.kind = pb.LineKind.Value(f"LINE_KIND_{price.kind}")
    out.target_group = price.target_group or ""
    out.tier_index = price.tier_index
    out.tier_min_qty = price.tier_min
    out.tier_uom = price.tier_uom or ""
    if price.next_break_qty is not None and price.next_break_qty > 0:
        out.next_break_qty = price.next_break_qty
        out.next_break_unit_price_micros = price.next_break_unit_price_micros or 0


def _ceil_to(value: int, step: int) -> int:
    return -(-value // step) * step


def _sell_rules(out: pb.SellRules, model: Reference, line: QuoteLine, sku: str, uom: str) -> None:
    """Sell rules; a line pacache does not size is checked as 0 base units, as it does."""
    out.SetInParent()
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
    out.below_minimum = below
    out.not_multiple = not_multiple
    out.suggested_qty = suggested
    if item is not None:
        out.suggested_uom = item.base_uom if in_base else _line_uom_code(model, sku, uom)


def _availability(
    out: pb.Availability, line: QuoteLine, locations: Sequence[str], mode: str, today: int
) -> None:
    """A line's availability over the location set, the account's disclosure applied."""
    out.SetInParent()
    stock = line.stock
    for location in locations:
        out.locations.add(
            location=location,
            available=stock.shown[location],
            bucket=pb.StockBucket.Value(f"STOCK_BUCKET_{stock.bucket[location]}"),
            oversold=stock.oversold[location] if mode == "EXACT" else False,
        )
    if mode == "EXACT":
        out.network_available = stock.network_available
    elif mode == "CAPPED":
        out.network_available = sum(stock.shown[location] for location in locations)
    else:
        out.network_available = -1
    if line.status in _SIZED or line.status == "UNKNOWN_SKU":
        date, source = stock.earliest_date, stock.date_source
    else:  # pacache looks for 0 base units on lines it does not size: in stock today
        date, source = today, "STOCK"
    out.earliest_date = _iso(date)
    out.date_source = pb.DateSource.Value(f"DATE_SOURCE_{source}")


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
    lines: convert.RequestLines,
    today: int,
) -> pb.PromiseResponse:
    """The sourcing plan of engine.promise (DESIGN §5), computed over plain lists, answered
    as ``server.convert.promise_response``: one ``PromisedLine`` per request line with its
    allocations nested, and the shipments numbered in the order their first allocation
    appears."""
    skus, quantities, uom_list = _columns(lines)
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

    response = pb.PromiseResponse(complete_date=_iso(complete_date))
    if need_by is not None:
        response.meets_need_by = 0 <= complete_date <= need_by
    out_lines = []
    for i in range(n):
        promised = response.lines.add(
            line_id=lines.line_ids[i],
            index=i,
            sku=skus[i],
            quantity=quantities[i],
            uom=uom_list[i],
            status=pb.LineStatus.Value(f"LINE_STATUS_{status[i]}"),
            base_qty=base_qty[i],
            backordered_qty=backorder[i],
            backorder_date=_iso(backorder_date[i]),
            complete_date=_iso(line_date[i]),
        )
        if need_by is not None:
            promised.meets_need_by = ok[i] and 0 <= line_date[i] <= need_by
        out_lines.append(promised)
    shipments: dict[tuple[int, int], int] = {}
    for (line_index, date, rank), q in allocations:
        number = shipments.setdefault((rank, date), len(shipments))
        if number == len(response.shipments):
            response.shipments.add(location=locs[rank], ship_date=_iso(date))
        shipment = response.shipments[number]
        if not shipment.line_indexes or shipment.line_indexes[-1] != line_index:
            shipment.line_indexes.append(line_index)
        out_lines[line_index].allocations.add(
            location=locs[rank], quantity=q, ship_date=_iso(date), shipment=number
        )
    return response
