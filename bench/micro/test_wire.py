"""Encoding a Quote answer: the compiled encoder against protobuf's own construction.

- ``test_encode_quote_response_50_lines`` / ``_1000_lines``: the wire bytes of a real
  QuoteResponse — a seeded cart quoted on the reference state over 18 locations — from
  the engine's result: gathering the parts (``server.convert.answer_inputs``) and writing
  them (``server._wire.encode_answer``), which is what the server does per Quote after
  the engine.
- ``test_protobuf_quote_response_*``: the same message built with protobuf's Python
  classes (upb) and serialised — the way a Python gRPC service builds a per-line answer,
  written for speed (columns turned to lists once, one constructor call per message) —
  the baseline the encoder's ratio is taken against, measured in the same run. Before
  timing, both are checked to give the same message.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.datagen import Workload
from engine.pricing import Policy
from engine.quote import QuoteResult, quote
from engine.state import Disclosure, State
from server._proto.pacache.v1 import pacache_pb2 as pb
from server.convert import (
    KIND_QUOTE,
    AnswerInputs,
    RequestLines,
    answer_inputs,
    days_to_iso,
    encode_answer,
)

LOCATIONS = 18


def _answers(state: State, extract_dir: Path, lines: int, count: int) -> list[Any]:
    """(result, request lines) of ``count`` seeded carts over 18 locations (all of them
    at a scale with fewer: the small one has 16)."""
    workload = Workload.from_extract(extract_dir, seed=11)
    locations = state.locations.codes()[:LOCATIONS]
    out = []
    for k in range(count):
        cart = workload.cart(lines)
        request = RequestLines(
            [f"line-{k}-{i}" for i in range(lines)],
            list(cart.skus),
            np.asarray(cart.qty, dtype=np.int64),
            None if cart.uoms is None else list(cart.uoms),
        )
        result = quote(
            state, account=cart.account, skus=request.skus, qty=request.quantities,
            uoms=request.uoms, locations=locations, pricing_date=cart.pricing_date,
        )  # fmt: skip
        assert result.stock is not None and len(result.stock.locations) == len(locations)
        out.append((result, request))
    return out


def _encode(state: State, result: QuoteResult, lines: RequestLines) -> bytes:
    return encode_answer(answer_inputs(KIND_QUOTE, state, result, lines, Policy.PRIORITY))


def _protobuf(state: State, result: QuoteResult, lines: RequestLines) -> bytes:
    """The same QuoteResponse through protobuf's classes, as fast as they allow."""
    inputs: AnswerInputs = answer_inputs(KIND_QUOTE, state, result, lines, Policy.PRIORITY)
    prices, stock, sell = result.prices, result.stock, result.sell
    assert prices is not None and stock is not None and result.shown_available is not None
    assert result.bucket is not None
    ok = (result.status == 0).tolist()
    contract = state.contracts.codes_at(np.where(prices.source == 1, prices.source_id, -1))
    listed = state.price_lists.codes_at(np.where(prices.source == 2, prices.source_id, -1))
    groups = state.product_groups.codes_at(prices.target_group)
    tier_uoms = state.uoms.codes_at(prices.tier_uom)
    base_uom = state.items["base_uom"][np.maximum(result.sku, 0)].astype(np.int64)
    line_uom = np.where(result.uom >= 0, result.uom, base_uom)
    suggested_uom = state.uoms.codes_at(
        np.where(result.sku >= 0, np.where(sell.suggested_in_base, base_uom, line_uom), -1)
    )
    columns = [
        c.tolist()
        for c in (
            prices.unit_price_micros, prices.extended_micros, prices.source, prices.level + 1,
            prices.kind, prices.tier_index, prices.tier_min, prices.next_break_qty,
            prices.next_break_unit_price_micros, result.status + 1, result.base_qty,
            sell.below_minimum, sell.not_multiple, sell.suggested_qty, lines.quantities,
            stock.earliest_date, stock.date_source + 1,
        )
    ]  # fmt: skip
    (unit, extended, source, level, kind, tier, tier_min, next_qty, next_unit, status,
     base_qty, below, not_multiple, suggested, quantity, _, date_source) = columns  # fmt: skip
    earliest = days_to_iso(stock.earliest_date)
    locations = state.locations.codes_at(stock.locations)
    shown = result.shown_available.tolist()
    buckets = (result.bucket + 1).tolist()
    oversold = stock.oversold.tolist()
    exact = result.disclosure == Disclosure.EXACT
    network = stock.network_available.tolist()
    uoms = lines.uoms if lines.uoms is not None else [""] * len(lines)
    out = []
    for i in range(len(lines)):
        priced = ok[i]
        out.append(
            pb.QuotedLine(
                line_id=lines.line_ids[i],
                index=i,
                sku=lines.skus[i],
                quantity=quantity[i],
                uom=uoms[i],
                status=status[i],
                base_qty=base_qty[i],
                price=pb.Price(
                    unit_price_micros=unit[i],
                    extended_micros=extended[i],
                    source=source[i],
                    source_id=contract[i] or listed[i],
                    level=level[i],
                    kind=kind[i],
                    target_group=groups[i],
                    tier_index=tier[i],
                    tier_min_qty=tier_min[i],
                    tier_uom=tier_uoms[i],
                    next_break_qty=next_qty[i] if next_qty[i] > 0 else 0,
                    next_break_unit_price_micros=next_unit[i] if next_qty[i] > 0 else 0,
                )
                if priced
                else pb.Price(),
                sell_rules=pb.SellRules(
                    below_minimum=below[i],
                    not_multiple=not_multiple[i],
                    suggested_qty=suggested[i],
                    suggested_uom=suggested_uom[i],
                ),
                availability=pb.Availability(
                    locations=[
                        pb.LocationAvailability(
                            location=locations[j],
                            available=shown[i][j],
                            bucket=buckets[i][j],
                            oversold=oversold[i][j] and exact,
                        )
                        for j in range(len(locations))
                    ],
                    network_available=network[i] if exact else sum(shown[i]),
                    earliest_date=earliest[i],
                    date_source=date_source[i],
                ),
            )
        )
    response = pb.QuoteResponse(currency=inputs.currency, locations=locations, lines=out)
    response.policy = inputs.policy  # type: ignore[assignment]
    response.disclosure = inputs.disclosure + 1  # type: ignore[assignment]
    response.as_of.version = inputs.version
    response.as_of.newest_source_ts_ms = inputs.newest_ts_ms
    response.as_of.stream_ids.update(inputs.stream_ids)
    return response.SerializeToString()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def answers_50(state: State, extract_dir: Path) -> list[Any]:
    return _answers(state, extract_dir, 50, 32)


@pytest.fixture(scope="module")
def answers_1000(state: State, extract_dir: Path) -> list[Any]:
    return _answers(state, extract_dir, 1000, 4)


def _run(benchmark: Any, state: State, answers: list[Any], how: Any, group: str) -> None:
    for result, lines in answers:  # one message, two ways of writing it
        if result.disclosure != Disclosure.BUCKETS:
            assert pb.QuoteResponse.FromString(
                _protobuf(state, result, lines)
            ) == pb.QuoteResponse.FromString(_encode(state, result, lines))
    cycle = itertools.cycle(answers)

    def one() -> bytes:
        result, lines = next(cycle)
        return how(state, result, lines)  # type: ignore[no-any-return]

    benchmark.group = group
    benchmark.extra_info["locations"] = len(answers[0][0].stock.locations)
    assert len(benchmark(one)) > 0


def test_encode_quote_response_50_lines(
    benchmark: Any, state: State, answers_50: list[Any]
) -> None:
    _run(benchmark, state, answers_50, _encode, "encode-50")


def test_protobuf_quote_response_50_lines(
    benchmark: Any, state: State, answers_50: list[Any]
) -> None:
    _run(benchmark, state, answers_50, _protobuf, "encode-50")


def test_encode_quote_response_1000_lines(
    benchmark: Any, state: State, answers_1000: list[Any]
) -> None:
    _run(benchmark, state, answers_1000, _encode, "encode-1000")


def test_protobuf_quote_response_1000_lines(
    benchmark: Any, state: State, answers_1000: list[Any]
) -> None:
    _run(benchmark, state, answers_1000, _protobuf, "encode-1000")
