"""The one place protobuf messages become engine arrays and engine results become messages.

No protobuf object goes past this module into the engine. Line data is columnar on the wire
(``pacache.v1.Lines`` and the ``*Columns`` messages), so every conversion here is a handful
of ``extend``/``tolist`` calls per column, never a Python loop per line.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.atp import Availability
from engine.catalog import MAX_BASE_QTY, SellRules
from engine.contexts import Level
from engine.deltas import day_number
from engine.errors import InvalidInput, LimitExceeded, UnknownCode, shown
from engine.pricing import PriceResult
from engine.quote import AsOf, QuoteResult
from engine.state import Disclosure, State
from server._proto.pacache.v1 import pacache_pb2 as pb

__all__ = [
    "availability_columns",
    "days_to_iso",
    "error_text",
    "fill_as_of",
    "lines_from_proto",
    "parse_date",
    "price_columns",
    "quote_response",
    "sell_rule_columns",
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


def lines_from_proto(lines: pb.Lines, max_lines: int) -> tuple[list[str], I64, list[str] | None]:
    """(skus, quantities, uoms) of a request; errors name the field and the limit."""
    skus = list(lines.skus)
    n = len(skus)
    if n == 0:
        raise InvalidInput("lines.skus", "no lines", "at least 1")
    if n > max_lines:
        raise LimitExceeded("lines.skus", f"{n} lines", f"at most {max_lines} per request")
    if len(lines.quantities) != n:
        raise InvalidInput("lines.quantities", f"{len(lines.quantities)} quantities for {n} skus")
    quantities = np.array(lines.quantities, dtype=np.int64)
    negative = np.nonzero(quantities < 0)[0]
    if negative.size:
        raise InvalidInput(f"lines.quantities[{int(negative[0])}]", "negative", ">= 0")
    uoms = list(lines.uoms) if len(lines.uoms) else None
    if uoms is not None and len(uoms) != n:
        raise InvalidInput("lines.uoms", f"{len(uoms)} UoMs for {n} skus", "0 or one per line")
    return skus, quantities, uoms


def fill_as_of(message: pb.AsOf, as_of: AsOf) -> None:
    message.version = as_of.version
    message.newest_source_ts_ms = as_of.newest_ts_ms
    if as_of.stream_ids:
        message.stream_ids.update(as_of.stream_ids)


def _status(status: npt.NDArray[np.int8]) -> list[int]:
    return (status.astype(np.int64) + 1).tolist()  # type: ignore[no-any-return]


_DISCLOSURE_PB = {mode: pb.Disclosure.Value(f"DISCLOSURE_{mode.name}") for mode in Disclosure}
_LEVEL_TO_PB = np.array([int(level) + 1 for level in Level], dtype=np.int64)


def price_columns(
    out: pb.PriceColumns, state: State, ok: npt.NDArray[np.bool_], prices: PriceResult
) -> None:
    """Fill ``out`` from a :class:`PriceResult`; lines that are not OK get zeros / ""."""
    contract = ok & (prices.source == 1)
    listed = ok & (prices.source == 2)
    source_id = np.where(ok, prices.source_id, -1)
    contract_codes = state.contracts.codes_at(np.where(contract, source_id, -1))
    list_codes = state.price_lists.codes_at(np.where(listed, source_id, -1))
    out.unit_price_micros.extend(np.where(ok, prices.unit_price_micros, 0).tolist())
    out.extended_micros.extend(np.where(ok, prices.extended_micros, 0).tolist())
    out.source.extend(np.where(ok, prices.source, 0).tolist())
    out.source_id.extend([c or p for c, p in zip(contract_codes, list_codes, strict=True)])
    out.level.extend(np.where(ok, _LEVEL_TO_PB[np.maximum(prices.level, 0)], 0).tolist())
    out.kind.extend(np.where(ok, prices.kind, 0).tolist())
    out.target_group.extend(state.product_groups.codes_at(np.where(ok, prices.target_group, -1)))
    out.tier_index.extend(np.where(ok, prices.tier_index, 0).tolist())
    out.tier_min_qty.extend(np.where(ok, prices.tier_min, 0).tolist())
    out.tier_uom.extend(state.uoms.codes_at(np.where(ok, prices.tier_uom, -1)))
    has_next = ok & (prices.next_break_qty > 0)
    out.next_break_qty.extend(np.where(has_next, prices.next_break_qty, 0).tolist())
    out.next_break_unit_price_micros.extend(
        np.where(has_next, prices.next_break_unit_price_micros, 0).tolist()
    )
    if prices.candidates is not None:
        for line, candidates in enumerate(prices.candidates):
            explanation = out.explanations.add()
            if not ok[line]:
                continue
            for candidate in candidates:
                codes = state.contracts if candidate.source == 1 else state.price_lists
                explanation.candidates.add(
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


def sell_rule_columns(
    out: pb.SellRuleColumns, state: State, sku: I64, uom_ids: I64, sell: SellRules
) -> None:
    """Fill sell-rule verdicts; the suggested UoM is the line's, or the base UoM."""
    base_uom = state.items["base_uom"][np.maximum(sku, 0)].astype(np.int64)
    line_uom = np.where(uom_ids >= 0, uom_ids, base_uom)
    suggested_uom = np.where(sell.suggested_in_base, base_uom, line_uom)
    out.below_minimum.extend(sell.below_minimum.tolist())
    out.not_multiple.extend(sell.not_multiple.tolist())
    out.suggested_qty.extend(sell.suggested_qty.tolist())
    out.suggested_uom.extend(state.uoms.codes_at(np.where(sku >= 0, suggested_uom, -1)))


def availability_columns(
    out: pb.AvailabilityColumns,
    state: State,
    stock: Availability,
    shown: I64,
    bucket: npt.NDArray[np.int8],
    disclosure: Disclosure,
) -> None:
    """Fill availability (matrices row-major: line i, location j at i × L + j)."""
    out.locations.extend(state.locations.codes_at(stock.locations))
    out.available.extend(shown.ravel().tolist())
    out.buckets.extend((bucket.ravel().astype(np.int64) + 1).tolist())
    if disclosure == Disclosure.EXACT:
        out.oversold.extend(stock.oversold.ravel().tolist())
        out.network_available.extend(stock.network_available.tolist())
    elif disclosure == Disclosure.CAPPED:
        out.network_available.extend(shown.sum(axis=1).tolist())
    out.earliest_date.extend(days_to_iso(stock.earliest_date))
    out.date_source.extend((stock.date_source.astype(np.int64) + 1).tolist())
    out.disclosure = _DISCLOSURE_PB[disclosure]


def quote_response(
    out: Any,
    state: State,
    result: QuoteResult,
    *,
    with_prices: bool,
    with_availability: bool,
) -> None:
    """Fill a Quote/GetPrices/GetAvailability response from a :class:`QuoteResult`."""
    fill_as_of(out.as_of, result.as_of)
    out.status.extend(_status(result.status))
    out.base_qty.extend(result.base_qty.tolist())
    if with_prices:
        out.currency = result.currency
        if result.prices is not None:
            price_columns(out.prices, state, result.status == 0, result.prices)
        sell_rule_columns(out.sell_rules, state, result.sku, result.uom, result.sell)
    if with_availability and result.stock is not None:
        assert result.shown_available is not None and result.bucket is not None
        availability_columns(
            out.availability,
            state,
            result.stock,
            result.shown_available,
            result.bucket,
            result.disclosure,
        )


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


def promise_response(state: State, plan: Any) -> pb.PromiseResponse:
    """Answer for an ``engine.promise.PromisePlan``."""
    response = pb.PromiseResponse(
        base_qty=plan.base_qty.tolist(),
        allocation_line=plan.alloc_line.tolist(),
        allocation_location=state.locations.codes_at(plan.alloc_location),
        allocation_qty=plan.alloc_qty.tolist(),
        allocation_ship_date=days_to_iso(plan.alloc_date),
        backordered_qty=plan.backorder_qty.tolist(),
        backorder_date=days_to_iso(plan.backorder_date),
        shipment_count=plan.shipments,
        complete_date=days_to_iso(np.array([plan.complete_date], dtype=np.int64))[0],
        line_complete_date=days_to_iso(plan.line_date),
    )
    if plan.meets_need_by is not None:
        response.meets_need_by = plan.meets_need_by
        response.line_meets_need_by.extend(plan.line_meets_need_by.tolist())
    response.status.extend(_status(plan.status))
    fill_as_of(response.as_of, plan.as_of)
    return response
