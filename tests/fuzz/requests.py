"""Hostile requests for every gRPC method the server serves, and how to send them.

:data:`METHODS` lists each method (path, streaming shape, request message class and a few
valid requests). A fuzz input for a method is either raw bytes (random, or a valid request
with its bytes mutated: not a message at all, or one that does not parse as this method's)
or a valid request with 1–4 fields set to hostile values (:func:`hostile_request`): int64
and uint64 extremes, empty, huge, unicode or NUL strings, thousands of lines or duplicate
ones (each ``QuoteLine`` with a ``line_id`` empty, unicode or past its 64 characters and a
quantity zero, negative or at the int64 ends), unknown codes, currencies and policies,
malformed dates, ``min_version`` far ahead, garbage ``min_stream_ids``. The field walk is
driven by the message descriptors, so a field added to the .proto is fuzzed without
touching this file. Each input goes with call metadata (bearer
tokens good and bad, odd headers) and a deadline (short ones included).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from hypothesis import strategies as st

from engine import events as ev
from loaders.events import encode
from server._proto.pacache.v1 import pacache_pb2 as pb
from tests.fuzz.corpus import EVENT_ENTRIES
from tests.fuzz.mutations import (
    INT64_MAX,
    INT64_MIN,
    byte_mutants,
    hostile_integers,
    hostile_text,
    mutate_bytes,
)

__all__ = ["MAX_LINE_ID", "METHODS", "Input", "Method", "inputs"]

TODAY = dt.datetime.now(dt.UTC).date()
#: Codes of the served world (tests/e2e/conftest.py world()): requests that name them get
#: past the lookups and into pricing, ATP, promise and holds.
CODES = ("ACME", "ACME-EAST", "OTHER", "NOBODY", "BOLT-M8", "NUT-M8", "OLD-1", "DAL", "ATL",
         "SOUTH", "USD", "EUR", "XXX", "usd", "LIST", "EA", "BX", "PL", "cart-1", "",
         TODAY.isoformat(), (TODAY + dt.timedelta(days=30)).isoformat())  # fmt: skip
#: Stream names and ids, good and bad, for min_stream_ids.
STREAM_KEYS = ("pacache:master", "pacache:pricing", "pacache:inventory", "nostream", "", "x" * 300)
STREAM_IDS = ("0-0", "1-0", "1700000000000-0", "18446744073709551615-18446744073709551615",
              "18446744073709551616-0", "abc", "-1-0", "1-2-3", "", "1", "\u0661-0")  # fmt: skip


#: The longest line_id a request line may carry (server.convert.MAX_LINE_ID), in characters.
MAX_LINE_ID = 64
#: line_ids around that limit, counted in characters however many bytes they take, and odd.
LINE_IDS = ("", "cart-1/1", "x" * 63, "x" * 64, "x" * 65, "\u00e9" * 64, "\u00e9" * 65,
            "\U0001d11e" * 64, "\U0001d11e" * 65, "\x00" * 64, "\u202e" * 65, " ",
            "\n")  # fmt: skip
#: Quantities where a line's status changes: 0 is ZERO_QUANTITY; negative, or past 10^12
#: base units (10^10 BX of 100), QTY_OUT_OF_RANGE; and the int64 ends.
QUANTITIES = (0, -1, 1, 2, 150, 10**10, 10**10 + 1, 10**12, 10**12 + 1, INT64_MIN, INT64_MAX)


def _lines(*lines: tuple[str, int, str, str]) -> list[pb.QuoteLine]:
    """Request lines from (sku, quantity, uom, line_id)."""
    return [
        pb.QuoteLine(sku=sku, quantity=qty, uom=uom, line_id=line_id)
        for sku, qty, uom, line_id in lines
    ]


#: A cart with every kind of line a caller sends: a UoM, a blocked item, no line_id, and
#: zero and negative quantities (line statuses, not errors).
_CART = _lines(("BOLT-M8", 150, "", "cart-1/1"), ("NUT-M8", 2, "BX", "cart-1/2"),
               ("OLD-1", 1, "", ""), ("NUT-M8", 0, "", "zero"),
               ("BOLT-M8", -3, "", "neg"))  # fmt: skip
_QUOTES = [
    pb.QuoteRequest(account="ACME", lines=_CART),
    pb.QuoteRequest(
        account="ACME-EAST",
        region="SOUTH",
        currency="USD",
        explain=True,
        pricing_date=TODAY.isoformat(),
        policy=pb.POLICY_LOWEST_PRICE,
        lines=_CART,
    ),
    pb.QuoteRequest(
        account="ACME", locations=["DAL"], lines=_lines(("BOLT-M8", 1, "BX", "x" * 64))
    ),
]
_EVENT = encode([ev.InventorySet(sku="NUT-M8", location="ATL", on_hand=900, version=2)])


@dataclass(frozen=True)
class Method:
    """One RPC: ``kind`` is uu, us, su or ss (unary/stream request, unary/stream answer)."""

    path: str
    kind: str
    request: type[Message]
    response: type[Message]
    valid: tuple[Message, ...]
    weight: float = 1.0  # share of the fuzz budget, relative to the other methods

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]

    @property
    def streams_requests(self) -> bool:
        return self.kind[0] == "s"


_PA = "/pacache.v1.PriceAvailabilityService/"
_REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
METHODS: tuple[Method, ...] = (
    Method(_PA + "Quote", "uu", pb.QuoteRequest, pb.QuoteResponse, tuple(_QUOTES), 3),
    Method(_PA + "GetPrices", "uu", pb.GetPricesRequest, pb.GetPricesResponse,
           (pb.GetPricesRequest(account="ACME", currency="USD", lines=_CART,
                                policy=pb.POLICY_PRIORITY),), 1.5),
    Method(_PA + "GetAvailability", "uu", pb.GetAvailabilityRequest, pb.GetAvailabilityResponse,
           (pb.GetAvailabilityRequest(account="ACME", region="SOUTH", lines=_CART),), 1.5),
    Method(_PA + "Promise", "uu", pb.PromiseRequest, pb.PromiseResponse,
           (pb.PromiseRequest(account="ACME", region="SOUTH", lines=_CART, max_shipments=2,
                              need_by=(TODAY + dt.timedelta(days=3)).isoformat()),), 2),
    Method(_PA + "QuoteStream", "ss", pb.QuoteStreamRequest, pb.QuoteStreamResponse,
           tuple(pb.QuoteStreamRequest(request_id=f"r{i}", quote=q) for i, q in enumerate(_QUOTES)),
           2),
    Method(_PA + "WatchAvailability", "us", pb.WatchAvailabilityRequest,
           pb.WatchAvailabilityResponse,
           (pb.WatchAvailabilityRequest(account="ACME", skus=["BOLT-M8", "NUT-M8", "NOPE"],
                                        region="SOUTH"),
            pb.WatchAvailabilityRequest(account="ACME", skus=["NUT-M8"], from_version=1)), 1),
    Method(_PA + "Reserve", "uu", pb.ReserveRequest, pb.ReserveResponse,
           (pb.ReserveRequest(account="ACME", hold_key="cart-1", ttl_ms=60_000,
                              lines=[pb.ReserveLine(sku="BOLT-M8", location="DAL", quantity=2,
                                                    uom="BX")]),), 2),
    Method(_PA + "Release", "uu", pb.ReleaseRequest, pb.ReleaseResponse,
           (pb.ReleaseRequest(account="ACME", hold_key="cart-1"),), 1),
    Method("/pacache.v1.IngestService/Ingest", "su", pb.IngestRequest, pb.IngestResponse,
           (pb.IngestRequest(payload=_EVENT), pb.IngestRequest(payload=EVENT_ENTRIES[-1])), 2),
    Method("/pacache.v1.AdminService/Ping", "uu", pb.PingRequest, pb.PingResponse,
           (pb.PingRequest(),), 0.5),
    Method("/pacache.v1.AdminService/Stats", "uu", pb.StatsRequest, pb.StatsResponse,
           (pb.StatsRequest(),), 0.5),
    Method("/pacache.v1.AdminService/Freshness", "uu", pb.FreshnessRequest,
           pb.FreshnessResponse, (pb.FreshnessRequest(),), 0.5),
    # every accepted Snapshot writes one to disk: kept to a few (see test_grpc_methods)
    Method("/pacache.v1.AdminService/Snapshot", "uu", pb.SnapshotRequest, pb.SnapshotResponse,
           (pb.SnapshotRequest(),), 0.3),
    Method("/grpc.health.v1.Health/Check", "uu", health_pb2.HealthCheckRequest,
           health_pb2.HealthCheckResponse,
           (health_pb2.HealthCheckRequest(service=""),
            health_pb2.HealthCheckRequest(service="pacache.v1.AdminService")), 0.7),
    Method("/grpc.health.v1.Health/List", "uu", health_pb2.HealthListRequest,
           health_pb2.HealthListResponse, (health_pb2.HealthListRequest(),), 0.5),
    Method("/grpc.health.v1.Health/Watch", "us", health_pb2.HealthCheckRequest,
           health_pb2.HealthCheckResponse, (health_pb2.HealthCheckRequest(service=""),), 0.5),
    Method(_REFLECTION, "ss", reflection_pb2.ServerReflectionRequest,
           reflection_pb2.ServerReflectionResponse,
           (reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="pacache.v1.QuoteRequest"),
            reflection_pb2.ServerReflectionRequest(file_by_filename="pacache/v1/pacache.proto")),
           1),
)  # fmt: skip


# --- hostile values by field type ----------------------------------------------------------

_FD = FieldDescriptor
_INTEGER_RANGES = {
    _FD.TYPE_INT64: (INT64_MIN, INT64_MAX), _FD.TYPE_SINT64: (INT64_MIN, INT64_MAX),
    _FD.TYPE_SFIXED64: (INT64_MIN, INT64_MAX), _FD.TYPE_UINT64: (0, 2**64 - 1),
    _FD.TYPE_FIXED64: (0, 2**64 - 1), _FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    _FD.TYPE_SINT32: (-(2**31), 2**31 - 1), _FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _FD.TYPE_UINT32: (0, 2**32 - 1), _FD.TYPE_FIXED32: (0, 2**32 - 1),
    _FD.TYPE_ENUM: (-(2**31), 2**31 - 1),  # proto3 enums are open: unknown numbers parse
}  # fmt: skip
_PAYLOADS = st.one_of(
    st.sampled_from(EVENT_ENTRIES), byte_mutants(EVENT_ENTRIES), st.binary(max_size=256)
)


def _strings(field: FieldDescriptor, *, short: bool) -> st.SearchStrategy[str]:
    """Strings for ``field``: the world's codes, stream keys or ids, or hostile text."""
    if field.name == "min_stream_ids":
        return st.sampled_from(STREAM_KEYS)
    known = st.sampled_from(CODES)
    return known | hostile_text(max_repeat=64 if short else 100_000)


def _scalar(field: FieldDescriptor, *, short: bool = False) -> st.SearchStrategy[Any]:
    if field.type in _INTEGER_RANGES:
        return hostile_integers(*_INTEGER_RANGES[field.type])
    if field.type == _FD.TYPE_BOOL:
        return st.booleans()
    if field.type == _FD.TYPE_STRING:
        return _strings(field, short=short)
    if field.type == _FD.TYPE_BYTES:
        return _PAYLOADS
    if field.type in (_FD.TYPE_DOUBLE, _FD.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    raise AssertionError(f"no strategy for {field.full_name} (type {field.type})")


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == _FD.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


#: Lengths where limits live: 5,000 lines a request, 10,000 watched SKUs.
_COUNTS = (0, 1, 2, 3, 5_000, 5_001, 10_001)


def _set_lines(draw: Any, lines: Any) -> None:
    """A whole ``repeated QuoteLine``: many lines, the same few repeated, codes good and
    bad, line_ids empty, unicode or too long (or numbered, one per line, as a cart's are),
    quantities zero, negative and at the int64 edges."""
    n = draw(st.sampled_from(_COUNTS))
    quantities = st.sampled_from(QUANTITIES) | st.integers(0, 10**6) | hostile_integers()
    codes = st.sampled_from(CODES) | hostile_text(max_repeat=64)
    units = st.sampled_from(("", "EA", "BX", "PL")) | hostile_text(max_repeat=64)
    line_ids = st.sampled_from(LINE_IDS) | hostile_text(max_repeat=300)
    one = st.builds(pb.QuoteLine, line_id=line_ids, sku=codes, quantity=quantities, uom=units)
    pool = draw(st.lists(one, min_size=1, max_size=3))
    numbered = draw(st.integers(0, 3)) == 0
    del lines[:]
    for i in range(n):
        line = lines.add()
        line.CopyFrom(pool[i % len(pool)])
        if numbered:
            line.line_id = f"line-{i}"


def _mutate(draw: Any, message: Message, depth: int = 0) -> None:
    """Set one field of ``message`` (or of a message inside it) to a hostile value, or
    clear it."""
    fields = message.DESCRIPTOR.fields
    if not fields:
        return
    field = draw(st.sampled_from(list(fields)))
    value = getattr(message, field.name)
    if draw(st.integers(0, 9)) == 0:
        message.ClearField(field.name)
    elif _is_map(field):
        value.clear()
        value_field = field.message_type.fields_by_name["value"]
        for _ in range(draw(st.integers(1, 3))):
            key = draw(_strings(field, short=True))
            if value_field.type == _FD.TYPE_STRING and field.name == "min_stream_ids":
                value[key] = draw(st.sampled_from(STREAM_IDS) | hostile_text(max_repeat=64))
            else:
                value[key] = draw(_scalar(value_field, short=True))
    elif field.message_type is pb.QuoteLine.DESCRIPTOR and draw(st.integers(0, 3)):
        _set_lines(draw, value)  # mostly whole carts; else (below) one field of one line
    elif _is_repeated(field) and field.type == _FD.TYPE_MESSAGE:
        n = draw(st.sampled_from(_COUNTS))
        if not len(value):
            value.add()
        template = value[draw(st.integers(0, len(value) - 1))]
        if depth < 3:
            _mutate(draw, template, depth + 1)
        copies = [type(template).FromString(template.SerializeToString()) for _ in range(min(n, 3))]
        del value[:]
        for i in range(n):
            value.add().CopyFrom(copies[i % len(copies)] if copies else template)
    elif _is_repeated(field):
        n = draw(st.sampled_from(_COUNTS))
        pool = draw(st.lists(_scalar(field, short=n > 3), min_size=1, max_size=3))
        del value[:]
        value.extend(pool[i % len(pool)] for i in range(n))
    elif field.type == _FD.TYPE_MESSAGE:
        if depth < 3:
            _mutate(draw, value, depth + 1)
    else:
        setattr(message, field.name, draw(_scalar(field)))


@st.composite
def hostile_request(draw: Any, method: Method) -> Message:
    """A valid request of ``method`` with 1–4 fields hostile (or cleared)."""
    message = method.request()
    message.CopyFrom(draw(st.sampled_from(method.valid)))
    for _ in range(draw(st.integers(1, 4))):
        _mutate(draw, message)
    return message


@st.composite
def raw_bytes(draw: Any, method: Method) -> bytes:
    """Bytes that are not this method's request, or only just: random, a valid request
    with its bytes mutated, or another method's request."""
    valid = [m.SerializeToString() for m in method.valid]
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=512))
    if kind == 1:
        return mutate_bytes(draw, draw(st.sampled_from(valid)), valid)
    if kind == 2:  # a valid request plus trailing garbage (often a field of a wrong type)
        return draw(st.sampled_from(valid)) + draw(st.binary(min_size=1, max_size=16))
    other = draw(st.sampled_from(METHODS))
    return draw(st.sampled_from(other.valid)).SerializeToString()


@dataclass
class Input:
    """One fuzz input: the request messages as bytes (one, or a stream of them), the
    metadata and the deadline to send them with, and whether it waits on a version."""

    messages: list[bytes]
    metadata: tuple[tuple[str, str | bytes], ...]
    timeout: float
    raw: bool

    def __repr__(self) -> str:  # what hypothesis prints for a failing input
        shown = [m[:300] for m in self.messages[:4]]
        return f"Input(messages={shown!r}, metadata={self.metadata!r}, timeout={self.timeout})"


_TOKENS = ("portal", "loader", "ops")


@st.composite
def metadata(draw: Any) -> tuple[tuple[str, str | bytes], ...]:
    """Call metadata: a bearer token of each scope, bad tokens and schemes, odd headers."""
    items: list[tuple[str, str | bytes]] = []
    choice = draw(st.integers(0, 9))
    printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
    if choice < 5:
        items.append(("authorization", f"Bearer {draw(st.sampled_from(_TOKENS))}"))
    elif choice < 8:
        items.append(("authorization", draw(st.sampled_from(
            ("Bearer", "Bearer ", "Basic b3Bz", "bearer  ops", "Bearer portal ", "Bearer nope",
             "Bearer " + "x" * 4_000)) | printable)))  # fmt: skip
    if draw(st.integers(0, 4)) == 0:
        key = draw(st.sampled_from(("x-request-id", "x-odd", "authorization-bin", "te-x")))
        value: str | bytes = (
            draw(st.binary(max_size=32)) if key.endswith("-bin") else draw(printable)
        )
        items.append((key, value))
    return tuple(items)


def _waits(message: Message) -> bool:
    """Whether a request may wait for a state version (so it gets a short deadline)."""
    quote = getattr(message, "quote", message)
    return bool(getattr(quote, "min_version", 0) or getattr(quote, "min_stream_ids", None))


@st.composite
def inputs(draw: Any, method: Method) -> Input:
    """A fuzz input for ``method`` (see the module docstring)."""
    count = draw(st.integers(0, 4)) if method.streams_requests else 1
    raw = draw(st.integers(0, 2)) == 0
    waits = False
    messages: list[bytes] = []
    for _ in range(count):
        if raw:
            messages.append(draw(raw_bytes(method)))
        else:
            request = draw(hostile_request(method))
            waits = waits or _waits(request)
            messages.append(request.SerializeToString())
    if method.kind[1] == "s" and method.kind[0] == "u":  # a watch never ends: read, then go
        timeout = draw(st.sampled_from((0.2, 0.5)))
    elif waits:  # min_version far ahead waits for the whole deadline
        timeout = draw(st.sampled_from((0.001, 0.03, 0.06)))
    else:
        timeout = draw(st.sampled_from((0.001, 0.05, 5.0, 5.0, 5.0, 5.0)))
    return Input(messages, draw(metadata()), timeout, raw)
