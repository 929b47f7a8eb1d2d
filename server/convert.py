"""The one place protobuf messages become engine arrays and engine results become messages.

No protobuf object goes past this module into the engine. The API is per line
(``QuoteLine`` in, ``QuotedLine`` out); the engine works on columns, so requests are read
into columns here (:func:`request_lines`) and answers built back per line. The hot answers
(Quote, GetPrices, GetAvailability, QuoteStream) are encoded to wire bytes in compiled code
by ``server._wire``; :func:`build_answer` builds the same message with protobuf's own
classes, as the reference that encoder is checked against and the baseline it is measured
against. Messages off the hot path (Promise, Watch, Reserve, admin) are built here.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from engine._kernels._quote import LINE_ROWS
from engine.atp import Availability
from engine.catalog import MAX_BASE_QTY
from engine.contexts import Level
from engine.deltas import day_number
from engine.errors import InvalidInput, LimitExceeded, UnknownCode, shown
from engine.pricing import Policy
from engine.quote import AsOf, QuoteResult
from engine.state import Disclosure, State
from server import _wire
from server._proto.pacache.v1 import pacache_pb2 as pb

__all__ = [
    "DISCLOSURE_PB",
    "MAX_LINE_ID",
    "AnswerInputs",
    "RequestLines",
    "answer_inputs",
    "availability_message",
    "build_answer",
    "days_to_iso",
    "encode_answer",
    "error_text",
    "fill_as_of",
    "network_shown",
    "parse_date",
    "policy_of",
    "promise_response",
    "request_lines",
    "wire_codes",
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


_LINES_FIELD: dict[Any, int] = {}


def request_lines(request: Any, max_lines: int) -> RequestLines:
    """The ``repeated QuoteLine lines`` of a request message as columns; errors name the
    field and the limit. Quantities are not judged here: zero, negative or too large is a
    line status.

    The lines are read from the request's wire bytes by compiled code
    (``server._wire.decode_lines``): through protobuf's Python objects each field of each
    line costs an object (~1 µs a line). The message is serialised again for it (a few µs:
    the handler is given the parsed message); a message it cannot read is read the slow
    way, with the same answer."""
    kind = type(request)
    field = _LINES_FIELD.get(kind)
    if field is None:
        field = _LINES_FIELD[kind] = request.DESCRIPTOR.fields_by_name["lines"].number
    decoded = _wire.decode_lines(request.SerializeToString(), field, max_lines, MAX_LINE_ID)
    if decoded is None:
        return _read_lines(request.lines, max_lines)
    if isinstance(decoded, int):
        _check_count(decoded, max_lines)
    line_ids, skus, quantities, uoms, too_long = decoded
    if too_long >= 0:
        _long_line_id(too_long, line_ids[too_long])
    return RequestLines(line_ids, skus, quantities, uoms)


def _check_count(n: int, max_lines: int) -> None:
    if n == 0:
        raise InvalidInput("lines", "no lines", "at least 1")
    if n > max_lines:
        raise LimitExceeded("lines", f"{n} lines", f"at most {max_lines} per request")


def _long_line_id(i: int, line_id: str) -> None:
    raise InvalidInput(
        f"lines[{i}].line_id", f"{len(line_id)} characters", f"at most {MAX_LINE_ID}"
    )


def _read_lines(lines: Any, max_lines: int) -> RequestLines:
    """``request_lines`` through protobuf's Python objects (the reference and fallback)."""
    n = len(lines)
    _check_count(n, max_lines)
    line_ids = [line.line_id for line in lines]
    for i, line_id in enumerate(line_ids):
        if len(line_id) > MAX_LINE_ID:
            _long_line_id(i, line_id)
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


KIND_QUOTE: int = _wire.KIND_QUOTE
KIND_PRICES: int = _wire.KIND_PRICES
KIND_AVAILABILITY: int = _wire.KIND_AVAILABILITY
RESPONSES: dict[int, Any] = {
    KIND_QUOTE: pb.QuoteResponse,
    KIND_PRICES: pb.GetPricesResponse,
    KIND_AVAILABILITY: pb.GetAvailabilityResponse,
}
_NO_STOCK_64 = np.zeros((0, 0), dtype=np.int64)
_NO_STOCK_8 = np.zeros((0, 0), dtype=np.uint8)
_NO_LOCATIONS = np.zeros(0, dtype=np.int64)
_ROWS = LINE_ROWS


class AnswerInputs(NamedTuple):
    """Everything a Quote / GetPrices / GetAvailability answer is made of, in the order
    ``server._wire.encode_answer`` takes it (see there for each field)."""

    kind: int
    version: int
    stream_ids: dict[str, str]
    newest_ts_ms: int
    currency: str
    policy: int
    disclosure: int
    line_ids: list[str]
    skus: list[str]
    quantities: I64
    uoms: list[str] | None
    out64: I64
    out8: npt.NDArray[np.int8]
    flags: npt.NDArray[np.uint8]
    prices_filled: bool
    location_ids: I64
    shown: I64
    oversold: npt.NDArray[np.uint8]
    bucket: npt.NDArray[np.int8]
    codes: _wire.Codes
    explanations: list[bytes] | None


_CODES_KEY = "wire-codes"
_CODES_KEPT = 2  # one per left-right instance, as engine.tables keeps the kernel's wraps


def wire_codes(state: State) -> _wire.Codes:
    """The code arenas an answer names, as the wire encoder reads them. Wrapping takes a
    typed memoryview per array (~2.5 µs), so a wrap is kept in the state's context cache
    while its arrays and counts are the same (a table that grows gets new arrays)."""
    contracts, lists, groups, uoms, locations = (
        state.contracts,
        state.price_lists,
        state.product_groups,
        state.uoms,
        state.locations,
    )
    arrays = (contracts.arena, lists.arena, groups.arena, uoms.arena, locations.arena,
              state.items.data["base_uom"])  # fmt: skip
    counts = (contracts.n, lists.n, groups.n, uoms.n, locations.n)
    kept: list[tuple[tuple[Any, ...], tuple[int, ...], _wire.Codes]] = state.contexts.setdefault(
        _CODES_KEY, []
    )
    for held, held_counts, codes in kept:
        if held_counts == counts and all(map(operator.is_, held, arrays)):
            return codes
    codes = _wire.Codes(
        state.contracts.arena, len(state.contracts),
        state.price_lists.arena, len(state.price_lists),
        state.product_groups.arena, len(state.product_groups),
        state.uoms.arena, len(state.uoms),
        state.locations.arena, len(state.locations),
        state.items["base_uom"],
    )  # fmt: skip
    kept.insert(0, (arrays, counts, codes))
    del kept[_CODES_KEPT:]
    return codes


def answer_inputs(
    kind: int, state: State, result: QuoteResult, lines: RequestLines, policy: Policy
) -> AnswerInputs:
    """Gather an answer's parts from the engine's result (no work per line but explain's)."""
    explanations = None
    prices = result.prices
    if prices is not None and prices.candidates is not None:
        explanations = []
        for line, candidates in enumerate(prices.candidates):
            message = pb.Explanation()
            if result.status[line] == 0:
                _explanation(message, state, candidates)
            explanations.append(message.SerializeToString())
    stock = result.stock if kind != KIND_PRICES else None
    out64, out8, flags = result.blocks
    return AnswerInputs(
        kind,
        result.as_of.version,
        result.as_of.stream_ids,
        result.as_of.newest_ts_ms,
        result.currency,
        _POLICY_PB[policy],
        int(result.disclosure),
        lines.line_ids,
        lines.skus,
        lines.quantities,
        lines.uoms,
        out64,
        out8,
        flags,
        prices is not None,
        _NO_LOCATIONS if stock is None else stock.locations,
        _NO_STOCK_64 if stock is None else result.shown_available,  # type: ignore[arg-type]
        _NO_STOCK_8 if stock is None else stock.oversold.view(np.uint8),
        _NO_STOCK_8.view(np.int8) if stock is None else result.bucket,  # type: ignore[arg-type]
        wire_codes(state),
        explanations,
    )


def encode_answer(inputs: AnswerInputs) -> bytes:
    """The answer's wire bytes, written by the compiled encoder."""
    return _wire.encode_answer(*inputs)


def _arena_code(arena: npt.NDArray[np.uint8], n: int, code_id: int, /) -> str:
    if not 0 <= code_id < n:
        return ""
    return bytes(arena[code_id]).split(b"\0", 1)[0].decode()


def build_answer(inputs: AnswerInputs) -> Any:
    """The same answer built with protobuf's own classes, one message per line: the
    reference ``server._wire`` is checked against (``tests/unit/test_wire.py``) and the
    baseline it is measured against (``bench/micro/test_wire.py``)."""
    (kind, version, stream_ids, newest_ts_ms, currency, policy, disclosure, line_ids, skus,
     quantities, uoms, out64, out8, flags, prices_filled, location_ids, shown, oversold,
     bucket, codes, explanations) = inputs  # fmt: skip
    arenas = codes.arenas()
    out = RESPONSES[kind]()
    out.as_of.version = version
    out.as_of.newest_source_ts_ms = newest_ts_ms
    out.as_of.stream_ids.update(stream_ids)
    with_prices = kind != KIND_AVAILABILITY
    with_stock = kind != KIND_PRICES
    if with_prices:
        out.currency = currency
        out.policy = policy
    if with_stock:
        out.disclosure = disclosure + 1
        locations = [_arena_code(*arenas["locations"], int(j)) for j in location_ids]
        out.locations.extend(locations)
    r = _ROWS
    for i in range(len(skus)):
        status = int(out8[r["status"], i])
        line = out.lines.add(
            line_id=line_ids[i], index=i, sku=skus[i], quantity=int(quantities[i]),
            uom=uoms[i] if uoms is not None else "", status=status + 1,
            base_qty=int(out64[r["base_qty"], i]),
        )  # fmt: skip
        if with_prices:
            price = line.price
            price.SetInParent()  # present on every line when prices were asked
            if prices_filled and status == 0:
                source = int(out8[r["source"], i])
                price.unit_price_micros = int(out64[r["unit"], i])
                price.extended_micros = int(out64[r["extended"], i])
                price.source = source
                table = {1: "contracts", 2: "price_lists"}.get(source)
                if table is not None:
                    price.source_id = _arena_code(*arenas[table], int(out64[r["source_id"], i]))
                price.level = max(int(out8[r["level"], i]), 0) + 1
                price.kind = int(out8[r["kind"], i])
                price.target_group = _arena_code(
                    *arenas["groups"], int(out64[r["target_group"], i])
                )
                price.tier_index = int(out64[r["tier_index"], i])
                price.tier_min_qty = int(out64[r["tier_min"], i])
                price.tier_uom = _arena_code(*arenas["uoms"], int(out64[r["tier_uom"], i]))
                if out64[r["next_qty"], i] > 0:
                    price.next_break_qty = int(out64[r["next_qty"], i])
                    price.next_break_unit_price_micros = int(out64[r["next_unit"], i])
            rules = line.sell_rules
            rules.SetInParent()
            rules.below_minimum = bool(flags[r["below_minimum"], i])
            rules.not_multiple = bool(flags[r["not_multiple"], i])
            rules.suggested_qty = int(out64[r["suggested"], i])
            sku = int(out64[r["sku"], i])
            base_uom = codes.base_uom_of(sku)
            if base_uom is not None:
                uom = int(out64[r["uom"], i])
                if uom < 0 or flags[r["suggested_in_base"], i]:
                    uom = base_uom
                rules.suggested_uom = _arena_code(*arenas["uoms"], uom)
        if with_stock:
            stock = line.availability
            stock.SetInParent()
            for j, location in enumerate(locations):
                stock.locations.add(
                    location=location,
                    available=int(shown[i, j]),
                    bucket=int(bucket[i, j]) + 1,
                    oversold=bool(oversold[i, j]) if disclosure == Disclosure.EXACT else False,
                )
            if disclosure == Disclosure.EXACT:
                stock.network_available = int(out64[r["network"], i])
            elif disclosure == Disclosure.CAPPED:
                stock.network_available = int(shown[i].sum())
            else:
                stock.network_available = -1
            stock.earliest_date = days_to_iso(np.array([out64[r["earliest"], i]]))[0]
            stock.date_source = int(out8[r["date_source"], i]) + 1
        if explanations is not None:
            line.explanation.SetInParent()
            line.explanation.MergeFromString(explanations[i])
    return out


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
    numbered in the order their first allocation appears. Columns become lists once and
    each message is made by one constructor call (``.add()`` per field costs ~8x more)."""
    n = len(lines)
    alloc_line = plan.alloc_line.tolist()
    keys = list(zip(plan.alloc_location.tolist(), plan.alloc_date.tolist(), strict=True))
    quantities = plan.alloc_qty.tolist()
    locations = state.locations.codes_at(plan.alloc_location)
    ship_dates = days_to_iso(plan.alloc_date)
    numbers: dict[tuple[int, int], int] = {}
    shipments: list[tuple[str, str, list[int]]] = []
    allocations: list[list[pb.Allocation]] = [[] for _ in range(n)]
    for k, i in enumerate(alloc_line):
        number = numbers.get(keys[k])
        if number is None:
            number = numbers[keys[k]] = len(shipments)
            shipments.append((locations[k], ship_dates[k], []))
        on = shipments[number][2]
        if not on or on[-1] != i:
            on.append(i)
        allocations[i].append(
            pb.Allocation(
                location=locations[k], quantity=quantities[k], ship_date=ship_dates[k],
                shipment=number,
            )
        )  # fmt: skip
    status = (plan.status.astype(np.int64) + 1).tolist()
    base_qty = plan.base_qty.tolist()
    backordered = plan.backorder_qty.tolist()
    backorder_date = days_to_iso(plan.backorder_date)
    line_date = days_to_iso(plan.line_date)
    meets = plan.line_meets_need_by.tolist() if plan.line_meets_need_by is not None else None
    quantity = lines.quantities.tolist()
    uoms = lines.uoms if lines.uoms is not None else [""] * n
    out = [
        pb.PromisedLine(
            line_id=lines.line_ids[i], index=i, sku=lines.skus[i], quantity=quantity[i],
            uom=uoms[i], status=status[i], base_qty=base_qty[i], allocations=allocations[i],
            backordered_qty=backordered[i], backorder_date=backorder_date[i],
            complete_date=line_date[i], meets_need_by=None if meets is None else meets[i],
        )
        for i in range(n)
    ]  # fmt: skip
    response = pb.PromiseResponse(
        lines=out,
        shipments=[
            pb.Shipment(location=location, ship_date=day, line_indexes=on)
            for location, day, on in shipments
        ],
        complete_date=days_to_iso(np.array([plan.complete_date], dtype=np.int64))[0],
    )
    fill_as_of(response.as_of, plan.as_of)
    if plan.meets_need_by is not None:
        response.meets_need_by = plan.meets_need_by
    return response
