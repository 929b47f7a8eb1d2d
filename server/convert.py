"""The one place protobuf messages become engine arrays and engine results become messages.

No protobuf object goes past this module into the engine. The API is per line
(``QuoteLine`` in, ``QuotedLine`` out); the engine works on columns, so requests are read
into columns here (:func:`request_lines`) and answers built back per line. The hot answers
(Quote, GetPrices, GetAvailability, QuoteStream) are encoded to wire bytes in compiled code
by ``server._wire``; :func:`quote_response` builds the same message with protobuf's own
classes, as the reference that encoder is checked against and the baseline it is measured
against. Messages off the hot path (Promise, Watch, Reserve, admin) are built here.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.atp import Availability
from engine.catalog import MAX_BASE_QTY
from engine.contexts import Level
from engine.deltas import day_number
from engine.errors import InvalidInput, LimitExceeded, UnknownCode, shown
from engine.pricing import Policy
from engine.quote import AsOf, QuoteResult
from engine.state import Disclosure, State
from server._proto.pacache.v1 import pacache_pb2 as pb

__all__ = [
    "DISCLOSURE_PB",
    "MAX_LINE_ID",
    "RequestLines",
    "availability_message",
    "days_to_iso",
    "error_text",
    "fill_as_of",
    "network_shown",
    "parse_date",
    "policy_of",
    "promise_response",
    "quote_response",
    "request_lines",
]

I64 = npt.NDArray[np.int64]
_EPOCH = np.datetime64("1970-01-01", "D")


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def parse_date(text: str, field: str, default: int) -> int:
    """A ``YYYY-MM-DD`` date field as engine days; ``default`` when empty. Only that form:
    Python would also take ``20250301`` and ``2025-W10-1``, which a caller in another
    language would not expect to be dates here."""
    if not text:
        return default
    if not _ISO_DATE.fullmatch(text):
        raise InvalidInput(field, f"{shown(text)} is not a date", "YYYY-MM-DD")
    try:
        return day_number(dt.date.fromisoformat(text))
    except ValueError:
        raise InvalidInput(field, f"{shown(text)} is not a date", "YYYY-MM-DD") from None


def error_text(error: BaseException) -> str:
    """An error's message as a caller gets it: at most ~1,000 characters."""
    return shown(str(error), 1_000, quote=False)


def days_to_iso(days: I64) -> list[str]:
    """Engine days as ISO strings, "" where negative (no date); vectorised."""
    text = (_EPOCH + np.maximum(days, 0).astype("timedelta64[D]")).astype(str)
    return np.where(days >= 0, text, "").tolist()  # type: ignore[no-any-return]


#: The longest ``line_id`` a request line may carry (an echo: long enough for any cart or
#: EDI line reference, short enough that echoing it never dominates an answer).
MAX_LINE_ID = 64


@dataclass(frozen=True, slots=True)
class RequestLines:
    """A request's lines as columns: what the engine takes, plus the echo of each line."""

    line_ids: list[str]
    skus: list[str]
    quantities: I64
    uoms: list[str] | None  # None: every line in its item's base UoM

    def __len__(self) -> int:
        return len(self.skus)


def request_lines(lines: Any, max_lines: int) -> RequestLines:
    """The ``repeated QuoteLine`` of a request as columns; errors name the field and the
    limit. Quantities are not judged here: zero, negative or too large is a line status."""
    n = len(lines)
    if n == 0:
        raise InvalidInput("lines", "no lines", "at least 1")
    if n > max_lines:
        raise LimitExceeded("lines", f"{n} lines", f"at most {max_lines} per request")
    line_ids = [line.line_id for line in lines]
    for i, line_id in enumerate(line_ids):
        if len(line_id) > MAX_LINE_ID:
            raise InvalidInput(
                f"lines[{i}].line_id", f"{len(line_id)} characters", f"at most {MAX_LINE_ID}"
            )
    uoms = [line.uom for line in lines]
    return RequestLines(
        line_ids,
        [line.sku for line in lines],
        np.fromiter((line.quantity for line in lines), dtype=np.int64, count=n),
        uoms if any(uoms) else None,
    )


def fill_as_of(message: pb.AsOf, as_of: AsOf) -> None:
    message.version = as_of.version
    message.newest_source_ts_ms = as_of.newest_ts_ms
    if as_of.stream_ids:
        message.stream_ids.update(as_of.stream_ids)


DISCLOSURE_PB = {mode: pb.Disclosure.Value(f"DISCLOSURE_{mode.name}") for mode in Disclosure}
_LEVEL_TO_PB = [int(level) + 1 for level in Level]
_POLICY_PB = {policy: pb.Policy.Value(f"POLICY_{policy.name}") for policy in Policy}


def policy_of(value: int, default: Policy) -> Policy:
    """A request's ``policy`` field as the engine's; UNSPECIFIED is the server's default."""
    if value == pb.POLICY_UNSPECIFIED:
        return default
    for policy, number in _POLICY_PB.items():
        if number == value:
            return policy
    raise InvalidInput("policy", f"{value} is not a policy", "PRIORITY or LOWEST_PRICE")


def _explanation(out: pb.Explanation, state: State, candidates: Any) -> None:
    for candidate in candidates:
        codes = state.contracts if candidate.source == 1 else state.price_lists
        out.candidates.add(
            source=int(candidate.source),
            source_id=codes.code(candidate.source_id),
            level=int(candidate.level) + 1,
            target_group=(
                state.product_groups.code(candidate.target_group)
                if candidate.target_group >= 0
                else ""
            ),
            kind=candidate.kind,
            tier_index=candidate.tier_index,
            unit_price_micros=candidate.unit_price_micros,
            lost=int(candidate.lost) + 1,
        )


def network_shown(stock: Availability, shown: I64, disclosure: Disclosure) -> I64:
    """The network total a caller may see: exact, the sum of the capped numbers, or -1."""
    if disclosure == Disclosure.EXACT:
        return stock.network_available
    if disclosure == Disclosure.CAPPED:
        return shown.sum(axis=1)  # type: ignore[no-any-return]
    return np.full(shown.shape[0], -1, dtype=np.int64)


def availability_message(
    out: pb.Availability,
    i: int,
    location_codes: list[str],
    stock: Availability,
    shown: I64,
    bucket: npt.NDArray[np.int8],
    disclosure: Disclosure,
    network: I64,
    earliest: list[str],
) -> None:
    """Fill the availability of line (or watched SKU) ``i``."""
    exact = disclosure == Disclosure.EXACT
    for j, location in enumerate(location_codes):
        out.locations.add(
            location=location,
            available=int(shown[i, j]),
            bucket=int(bucket[i, j]) + 1,
            oversold=bool(stock.oversold[i, j]) if exact else False,
        )
    out.network_available = int(network[i])
    out.earliest_date = earliest[i]
    out.date_source = int(stock.date_source[i]) + 1  # type: ignore[assignment]


def quote_response(
    out: Any,
    state: State,
    result: QuoteResult,
    lines: RequestLines,
    *,
    with_prices: bool,
    with_availability: bool,
    policy: Policy,
) -> None:
    """Fill a Quote/GetPrices/GetAvailability response from a :class:`QuoteResult` with
    protobuf's own message construction, one message per line.

    The serving path encodes the same answer in compiled code (``server._wire``); this is
    the reference it is checked against (``tests/unit/test_wire.py``) and the baseline it
    is measured against (``bench/micro``)."""
    fill_as_of(out.as_of, result.as_of)
    n = len(lines)
    ok = result.status == 0
    prices = result.prices if with_prices else None
    if with_prices:
        out.currency = result.currency
        out.policy = _POLICY_PB[policy]
        base_uom = state.items["base_uom"][np.maximum(result.sku, 0)].astype(np.int64)
        line_uom = np.where(result.uom >= 0, result.uom, base_uom)
        sell = result.sell
        suggested_uom = state.uoms.codes_at(
            np.where(result.sku >= 0, np.where(sell.suggested_in_base, base_uom, line_uom), -1)
        )
        if prices is not None:
            contract = ok & (prices.source == 1)
            listed = ok & (prices.source == 2)
            source_ids = [
                c or p
                for c, p in zip(
                    state.contracts.codes_at(np.where(contract, prices.source_id, -1)),
                    state.price_lists.codes_at(np.where(listed, prices.source_id, -1)),
                    strict=True,
                )
            ]
            groups = state.product_groups.codes_at(np.where(ok, prices.target_group, -1))
            tier_uoms = state.uoms.codes_at(np.where(ok, prices.tier_uom, -1))
    stock = result.stock if with_availability else None
    if stock is not None:
        assert result.shown_available is not None and result.bucket is not None
        shown, bucket = result.shown_available, result.bucket
        out.disclosure = DISCLOSURE_PB[result.disclosure]
        location_codes = state.locations.codes_at(stock.locations)
        out.locations.extend(location_codes)
        network = network_shown(stock, shown, result.disclosure)
        earliest = days_to_iso(stock.earliest_date)
    for i in range(n):
        line = out.lines.add(
            line_id=lines.line_ids[i],
            index=i,
            sku=lines.skus[i],
            quantity=int(lines.quantities[i]),
            uom=lines.uoms[i] if lines.uoms is not None else "",
            status=int(result.status[i]) + 1,
            base_qty=int(result.base_qty[i]),
        )
        if with_prices:
            price = line.price
            price.SetInParent()  # present on every line when prices were asked
            if prices is not None and ok[i]:
                price.unit_price_micros = int(prices.unit_price_micros[i])
                price.extended_micros = int(prices.extended_micros[i])
                price.source = int(prices.source[i])
                price.source_id = source_ids[i]
                price.level = _LEVEL_TO_PB[max(int(prices.level[i]), 0)]
                price.kind = int(prices.kind[i])
                price.target_group = groups[i]
                price.tier_index = int(prices.tier_index[i])
                price.tier_min_qty = int(prices.tier_min[i])
                price.tier_uom = tier_uoms[i]
                if prices.next_break_qty[i] > 0:
                    price.next_break_qty = int(prices.next_break_qty[i])
                    price.next_break_unit_price_micros = int(prices.next_break_unit_price_micros[i])
            rules = line.sell_rules
            rules.SetInParent()
            rules.below_minimum = bool(sell.below_minimum[i])
            rules.not_multiple = bool(sell.not_multiple[i])
            rules.suggested_qty = int(sell.suggested_qty[i])
            rules.suggested_uom = suggested_uom[i]
            if prices is not None and prices.candidates is not None:
                line.explanation.SetInParent()
                if ok[i]:
                    _explanation(line.explanation, state, prices.candidates[i])
        if stock is not None:
            line.availability.SetInParent()
            availability_message(
                line.availability, i, location_codes, stock, shown, bucket,
                result.disclosure, network, earliest,
            )  # fmt: skip


def as_of(state: State) -> AsOf:
    """The freshness stamp of the current state."""
    return AsOf(state.version, dict(state.stream_ids), state.newest_ts_ms)


def hold_lines(state: State, lines: Any) -> tuple[tuple[str, str, int], ...]:
    """Reserve lines as (sku, location, base qty); UoMs converted with the item's factors.

    An unknown SKU or location is NOT_FOUND naming the line (a hold never creates one); a
    quantity whose base units pass ``MAX_BASE_QTY`` is INVALID_ARGUMENT naming the line.
    """
    out = []
    for i, line in enumerate(lines):
        if line.quantity <= 0:
            raise InvalidInput(f"lines[{i}].quantity", f"{line.quantity}", "> 0")
        sku = state.skus.get(line.sku)
        if sku < 0 or state.items["version"][sku] < 0:
            raise UnknownCode(f"lines[{i}].sku", line.sku)
        if state.locations.get(line.location) < 0:
            raise UnknownCode(f"lines[{i}].location", line.location)
        factor = 1
        if line.uom:
            uom = state.uoms.get(line.uom)
            found = state.items["uom_code"][sku] == uom if uom >= 0 else None
            if found is None or not found.any():
                raise InvalidInput(
                    f"lines[{i}].uom", f"{shown(line.uom)} is not a UoM of {shown(line.sku)}"
                )
            factor = int(state.items["uom_factor"][sku][found.argmax()])
        base = int(line.quantity) * factor
        if base > MAX_BASE_QTY:
            raise InvalidInput(
                f"lines[{i}].quantity",
                f"{line.quantity} {line.uom or 'base units'} is {base} base units",
                f"at most {MAX_BASE_QTY}",
            )
        out.append((line.sku, line.location, base))
    return tuple(out)


def reserve_response(state: State, hold: Any) -> pb.ReserveResponse:
    """Answer for a placed (or found again) hold, with the shortfall per line now."""
    inv = state.inventory
    raw = (
        inv.on_hand[hold.sku, hold.location]
        - inv.allocated[hold.sku, hold.location]
        - inv.held[hold.sku, hold.location]
        - inv.safety_stock[hold.sku, hold.location]
    )
    shortfall = np.minimum(hold.qty, np.maximum(-raw, 0)) if hold.active else hold.qty * 0
    response = pb.ReserveResponse(
        hold_key=hold.key,
        expires_at_ms=hold.expires_at_ms,
        active=hold.active,
        shortfall=shortfall.tolist(),
    )
    fill_as_of(response.as_of, as_of(state))
    return response


def promise_response(state: State, plan: Any, lines: RequestLines) -> pb.PromiseResponse:
    """Answer for an ``engine.promise.PromisePlan``: one message per line with its
    allocations nested, and the shipments (distinct location and ship date) as messages,
    numbered in the order their first allocation appears."""
    response = pb.PromiseResponse(
        complete_date=days_to_iso(np.array([plan.complete_date], dtype=np.int64))[0]
    )
    fill_as_of(response.as_of, plan.as_of)
    if plan.meets_need_by is not None:
        response.meets_need_by = plan.meets_need_by
    backorder_date = days_to_iso(plan.backorder_date)
    line_date = days_to_iso(plan.line_date)
    out_lines = []
    for i in range(len(lines)):
        line = response.lines.add(
            line_id=lines.line_ids[i],
            index=i,
            sku=lines.skus[i],
            quantity=int(lines.quantities[i]),
            uom=lines.uoms[i] if lines.uoms is not None else "",
            status=int(plan.status[i]) + 1,
            base_qty=int(plan.base_qty[i]),
            backordered_qty=int(plan.backorder_qty[i]),
            backorder_date=backorder_date[i],
            complete_date=line_date[i],
        )
        if plan.line_meets_need_by is not None:
            line.meets_need_by = bool(plan.line_meets_need_by[i])
        out_lines.append(line)
    shipments: dict[tuple[int, int], pb.Shipment] = {}
    numbers: dict[tuple[int, int], int] = {}
    locations = state.locations.codes_at(plan.alloc_location)
    ship_dates = days_to_iso(plan.alloc_date)
    for k, (i, location, day) in enumerate(
        zip(plan.alloc_line.tolist(), plan.alloc_location.tolist(), plan.alloc_date.tolist(),
            strict=True)
    ):  # fmt: skip
        key = (location, day)
        if key not in shipments:
            numbers[key] = len(shipments)
            shipments[key] = response.shipments.add(location=locations[k], ship_date=ship_dates[k])
        shipment = shipments[key]
        if not shipment.line_indexes or shipment.line_indexes[-1] != i:
            shipment.line_indexes.append(i)
        out_lines[i].allocations.add(
            location=locations[k],
            quantity=int(plan.alloc_qty[k]),
            ship_date=ship_dates[k],
            shipment=numbers[key],
        )
    return response
