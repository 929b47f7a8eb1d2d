"""The compiled wire code (server._wire) against protobuf's own.

Answers:

Each example draws a random answer — the quote kernel's blocks with any values, codes in
any script, empty strings, zero, negative and int64-extreme numbers, unknown and unpriced
lines, explain on and off, 1–5,000 lines over 1–64 locations — encodes it with
``server._wire.encode_answer``, decodes the bytes with the official protobuf runtime and
compares the message, field by field and as canonical bytes, with
``server.convert.build_answer``'s plain construction of the same answer. 500 examples
(``PACACHE_WIRE_EXAMPLES``; ``make test-checked`` runs 100 against the build with bounds
checks and sanitizers).

Requests: ``server._wire.decode_lines`` reads a request's lines from its wire bytes; over
random lines (fields in any order, repeated, unknown fields of every wire type between
them, any text, int64 extremes) it must give exactly what reading protobuf's objects gives.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine._kernels._quote import LINE_ROWS
from engine.errors import InvalidInput, LimitExceeded
from engine.quote import _INT64_ROWS as INT64_ROWS
from server import _wire
from server._proto.pacache.v1 import pacache_pb2 as pb
from server.convert import (
    KIND_AVAILABILITY,
    KIND_PRICES,
    KIND_QUOTE,
    RESPONSES,
    AnswerInputs,
    _read_lines,
    build_answer,
    encode_answer,
    request_lines,
)

INT64 = st.integers(-(2**63), 2**63 - 1)
# codes as the state could never hold them (any script, any length) but without NUL,
# which ends a code in its arena row
CODE = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=24)
TEXT = st.text(max_size=12)  # request echoes: any string, NUL and "" included


def _arena(codes: list[str], spare: int) -> tuple[np.ndarray, int]:
    encoded = [code.encode() for code in codes]
    width = max([len(e) for e in encoded] + [1])
    arena = np.zeros((len(encoded) + spare, width), dtype=np.uint8)
    for row, data in enumerate(encoded):
        arena[row, : len(data)] = np.frombuffer(data, dtype=np.uint8)
    return arena, len(encoded)


def _column(draw: Any, n: int, values: st.SearchStrategy[int], dtype: Any) -> np.ndarray:
    return draw(hnp.arrays(dtype, n, elements=values))


@st.composite
def answers(draw: Any, max_lines: int = 60, max_locations: int = 20) -> AnswerInputs:
    kind = draw(st.sampled_from([KIND_QUOTE, KIND_PRICES, KIND_AVAILABILITY]))
    n = draw(st.integers(1, max_lines))
    width = draw(st.integers(1, max_locations)) if kind != KIND_PRICES else 0
    tables = {
        name: _arena(draw(st.lists(CODE, min_size=minimum, max_size=8)), draw(st.integers(0, 3)))
        for name, minimum in (
            ("contracts", 0), ("price_lists", 0), ("groups", 0), ("uoms", 0), ("locations", 1),
        )
    }  # fmt: skip
    n_uoms = tables["uoms"][1]
    items = draw(st.integers(0, 12))
    base_uom = _column(draw, items, st.integers(-1, n_uoms + 1), np.int16)
    ids = st.integers(-2, 10)  # codes: -1 (none), ids the arena holds, ids past it
    out64 = np.empty((LINE_ROWS["int64"], n), dtype=np.int64)
    for name in INT64_ROWS:
        if name in ("sku", "uom", "source_id", "target_group", "tier_uom"):
            values: st.SearchStrategy[int] = ids
        elif name == "tier_index":
            values = st.integers(-(2**31), 2**31 - 1)
        elif name == "earliest":  # days: none (-1) up to past year 9999
            values = st.integers(-3, 3_000_000)
        else:
            values = INT64
        out64[LINE_ROWS[name]] = _column(draw, n, values, np.int64)
    out8 = np.zeros((LINE_ROWS["int8"], n), dtype=np.int8)
    out8[LINE_ROWS["status"]] = _column(draw, n, st.integers(0, 7), np.int8)
    out8[LINE_ROWS["source"]] = _column(draw, n, st.integers(0, 2), np.int8)
    out8[LINE_ROWS["level"]] = _column(draw, n, st.integers(-1, 5), np.int8)
    out8[LINE_ROWS["kind"]] = _column(draw, n, st.integers(0, 3), np.int8)
    out8[LINE_ROWS["date_source"]] = _column(draw, n, st.integers(0, 3), np.int8)
    flags = draw(hnp.arrays(np.uint8, (LINE_ROWS["flags"], n), elements=st.integers(0, 1)))
    n_locations = tables["locations"][1]
    location_ids = _column(draw, width, st.integers(0, n_locations - 1), np.int64)
    stock_value = st.integers(-1, 10**12)  # shown: -1 (hidden) or a quantity
    shown = draw(hnp.arrays(np.int64, (n, width), elements=stock_value))
    oversold = draw(hnp.arrays(np.uint8, (n, width), elements=st.integers(0, 1)))
    bucket = draw(hnp.arrays(np.int8, (n, width), elements=st.integers(0, 2)))
    explanations = None
    if kind != KIND_AVAILABILITY and draw(st.booleans()):
        explanations = [
            pb.Explanation(
                candidates=[
                    pb.Candidate(
                        source_id=draw(TEXT),
                        tier_index=draw(st.integers(-3, 3)),
                        unit_price_micros=draw(INT64),
                        lost=draw(st.integers(0, 11)),
                    )
                    for _ in range(draw(st.integers(0, 2)))
                ]
            ).SerializeToString()
            for _ in range(n)
        ]
    codes = _wire.Codes(
        *tables["contracts"], *tables["price_lists"], *tables["groups"], *tables["uoms"],
        *tables["locations"], base_uom,
    )  # fmt: skip
    return AnswerInputs(
        kind,
        draw(st.integers(0, 2**64 - 1)),
        draw(st.dictionaries(TEXT, TEXT, max_size=3)),
        draw(INT64),
        draw(TEXT),
        draw(st.integers(0, 2)),
        draw(st.integers(0, 2)),
        draw(st.lists(TEXT, min_size=n, max_size=n)),
        draw(st.lists(TEXT, min_size=n, max_size=n)),
        _column(draw, n, INT64, np.int64),
        draw(st.none() | st.lists(TEXT, min_size=n, max_size=n)),
        out64,
        out8,
        flags,
        draw(st.booleans()),
        location_ids,
        shown,
        oversold,
        bucket,
        codes,
        explanations,
    )


def _check(inputs: AnswerInputs) -> None:
    wire = encode_answer(inputs)
    decoded = RESPONSES[inputs.kind].FromString(wire)
    expected = build_answer(inputs)
    assert decoded == expected
    assert decoded.SerializeToString(deterministic=True) == expected.SerializeToString(
        deterministic=True
    )
    assert len(decoded.lines) == len(inputs.skus)


EXAMPLES = int(os.environ.get("PACACHE_WIRE_EXAMPLES", "500"))
SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=SLOW_OK)
@given(answers())
def test_the_encoder_writes_what_protobuf_builds(inputs: AnswerInputs) -> None:
    _check(inputs)


@settings(max_examples=6, deadline=None, suppress_health_check=SLOW_OK)
@given(answers(max_lines=5_000, max_locations=64))
def test_the_encoder_agrees_on_large_answers(inputs: AnswerInputs) -> None:
    _check(inputs)


def _fixed(n: int, width: int) -> AnswerInputs:
    """A seeded answer of ``n`` lines over ``width`` locations, explain on."""
    rng = np.random.default_rng(7)
    codes = _wire.Codes(
        *_arena(["C-1", "C-2"], 0), *_arena(["PL-1"], 0), *_arena(["GRP"], 0),
        *_arena(["EA", "BX"], 0), *_arena([f"LOC-{j}" for j in range(width)], 0),
        np.zeros(n, dtype=np.int16),
    )  # fmt: skip
    out64 = rng.integers(-5, 10**9, size=(LINE_ROWS["int64"], n), dtype=np.int64)
    for name in ("sku", "uom", "source_id", "target_group", "tier_uom"):
        out64[LINE_ROWS[name]] = rng.integers(-1, 2, size=n)
    out64[LINE_ROWS["earliest"]] = rng.integers(-1, 40_000, size=n)
    out64[LINE_ROWS["tier_index"]] = rng.integers(0, 4, size=n)
    out8 = rng.integers(0, 3, size=(LINE_ROWS["int8"], n), dtype=np.int8)
    flags = rng.integers(0, 2, size=(LINE_ROWS["flags"], n), dtype=np.uint8)
    explanation = pb.Explanation(candidates=[pb.Candidate(source_id="C-1", unit_price_micros=5)])
    return AnswerInputs(
        KIND_QUOTE, 9, {"pricing": "1-0"}, 1, "USD", 1, 0,
        [f"line-{i}" for i in range(n)], [f"SKU-{i}" for i in range(n)],
        rng.integers(-1, 10**6, size=n, dtype=np.int64), None, out64, out8, flags, True,
        np.arange(width, dtype=np.int64),
        rng.integers(0, 10**6, size=(n, width), dtype=np.int64),
        rng.integers(0, 2, size=(n, width), dtype=np.uint8),
        rng.integers(0, 3, size=(n, width), dtype=np.int8),
        codes, [explanation.SerializeToString()] * n,
    )  # fmt: skip


def test_5000_lines_at_64_locations_with_explain() -> None:
    """The largest answer a request can ask for (5,000 lines is --max-lines' default)."""
    _check(_fixed(5_000, 64))


def test_inputs_that_disagree_on_the_line_count_are_refused() -> None:
    good = _fixed(3, 2)
    _check(good)
    with pytest.raises(ValueError, match="columns disagree"):
        encode_answer(good._replace(skus=[*good.skus, "extra"]))
    with pytest.raises(ValueError, match="explanations"):
        encode_answer(good._replace(explanations=[b""] * 4))
    with pytest.raises(ValueError, match="stock blocks"):
        encode_answer(good._replace(shown=good.shown[:, :1].copy()))
    with pytest.raises(ValueError, match="location id"):
        encode_answer(good._replace(location_ids=np.array([0, 99], dtype=np.int64)))


# ---------------------------------------------------------------- request lines


def _field(number: int, wire: int, value: int | bytes) -> bytes:
    key = _varint(number << 3 | wire)
    if wire == 0:
        assert isinstance(value, int)
        return key + _varint(value)
    if wire == 1:
        assert isinstance(value, int)
        return key + value.to_bytes(8, "little")
    if wire == 5:
        assert isinstance(value, int)
        return key + value.to_bytes(4, "little")
    assert isinstance(value, bytes)
    return key + _varint(len(value)) + value


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


UNKNOWN = st.one_of(
    st.tuples(st.integers(5, 40), st.just(0), st.integers(0, 2**64 - 1)),
    st.tuples(st.integers(5, 40), st.just(1), st.integers(0, 2**64 - 1)),
    st.tuples(st.integers(5, 40), st.just(5), st.integers(0, 2**32 - 1)),
    st.tuples(st.integers(5, 40), st.just(2), st.binary(max_size=8)),
    # a known field with the wire type of another: protobuf keeps it as unknown
    st.tuples(st.integers(1, 4), st.sampled_from([1, 5]), st.integers(0, 2**32 - 1)),
)


@st.composite
def wire_lines(draw: Any) -> bytes:
    """A QuoteLine's bytes: its fields in any order, some twice (the last wins), with
    unknown fields between them."""
    fields = []
    for _ in range(draw(st.integers(0, 7))):
        number = draw(st.integers(1, 4))
        if number == 3:
            fields.append(_field(3, 0, draw(INT64)))
        else:
            fields.append(_field(number, 2, draw(st.text(max_size=70)).encode()))
    for number, wire, value in draw(st.lists(UNKNOWN, max_size=3)):
        fields.insert(draw(st.integers(0, len(fields))), _field(number, wire, value))
    return b"".join(fields)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=SLOW_OK)
@given(
    st.lists(wire_lines(), min_size=1, max_size=40),
    st.sampled_from([(pb.QuoteRequest, 6), (pb.GetPricesRequest, 4), (pb.PromiseRequest, 4)]),
    st.booleans(),
)
def test_request_lines_read_from_the_wire_match_protobuf(
    lines: list[bytes], kind: tuple[Any, int], with_account: bool
) -> None:
    message_type, field = kind
    head = _field(1, 2, b"ACME") if with_account else b""
    request = message_type.FromString(head + b"".join(_field(field, 2, line) for line in lines))
    try:
        expected = _read_lines(request.lines, 5_000)
    except InvalidInput as error:
        with pytest.raises(InvalidInput) as raised:
            request_lines(request, 5_000)
        assert str(raised.value) == str(error)
        return
    got = request_lines(request, 5_000)
    assert (got.line_ids, got.skus, got.uoms) == (expected.line_ids, expected.skus, expected.uoms)
    assert got.quantities.tolist() == expected.quantities.tolist()


def test_request_line_counts_and_limits_are_checked_as_before() -> None:
    request = pb.QuoteRequest(account="ACME")
    with pytest.raises(InvalidInput, match="no lines"):
        request_lines(request, 10)
    request.lines.extend([pb.QuoteLine(sku="A", quantity=1)] * 11)
    with pytest.raises(LimitExceeded, match="11 lines"):
        request_lines(request, 10)
    request = pb.QuoteRequest(lines=[pb.QuoteLine(sku="A"), pb.QuoteLine(line_id="é" * 65)])
    with pytest.raises(InvalidInput, match=r"lines\[1\]\.line_id"):
        request_lines(request, 10)
