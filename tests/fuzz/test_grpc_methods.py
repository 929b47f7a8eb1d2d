"""Fuzz: every gRPC method answers any input with a client-error code, and the server
stays healthy.

Three servers (``servers.py``: ``--workers 2``, ``--workers 0``, ``--auth``) take, method
by method, raw bytes and hostile requests (``requests.py``), with good and bad tokens and
short deadlines. Oracle for every input: the status is one a caller can act on (never
UNKNOWN, INTERNAL, DATA_LOSS, UNAVAILABLE …; a QuoteStream request's own error code
likewise); DEADLINE_EXCEEDED only for an input sent with a deadline under a second (the
caller's own: 1–500 ms, or a wait for a version within reach); an error has a message, an
INVALID_ARGUMENT one names its field, and an answer parses as the method's response. An
answer with lines (Quote, GetPrices, GetAvailability, Promise, each QuoteStream request)
has one per request line, in order, echoing it (:func:`check_lines`): a zero quantity is
ZERO_QUANTITY and a negative one QTY_OUT_OF_RANGE, never a failed call, and a line_id past
64 characters is never answered.
After each method's batch: health SERVING, Ping answers, the server's processes are the
ones it started with, and its stderr has no new traceback.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.message import DecodeError, Message
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from hypothesis import given

from server._proto.pacache.v1 import pacache_pb2 as pb
from tests.fuzz.budget import PER_REQUEST, fuzz, record
from tests.fuzz.requests import MAX_LINE_ID, METHODS, Input, Method, inputs
from tests.fuzz.servers import CONFIGS, Served, serve

#: Codes a caller can act on: a client error, a refusal, or its own deadline.
#: DEADLINE_EXCEEDED is the caller's own only when it gave a short one: with this long a
#: deadline, the server must have answered something else first.
OWN_DEADLINE_BELOW_S = 1.0
ALLOWED = frozenset(
    {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)
_CODE_OF_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
#: The gRPC fuzz tests' part of the budget (test_loader_decoders.py has the other 0.41).
GRPC_SHARE = 0.59
#: Each accepted Snapshot call writes a snapshot to disk: a few per server say enough. Its
#: share goes to the other methods, so a run still makes up its whole budget.
SNAPSHOT_CAP = 12
_WEIGHTS = sum(method.weight for method in METHODS if method.name != "Snapshot")
#: Responses of 5,000 explained lines are larger than gRPC's default 4 MB.
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


@pytest.fixture(scope="module", params=list(CONFIGS))
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    served = serve(request.param, tmp_path_factory.mktemp(f"fuzz-{request.param}"))
    try:
        yield served
    finally:
        leftovers = served.stop()
    assert not leftovers, leftovers  # an error of the last test, when the server would not go


@pytest.fixture(scope="module")
def channel(server: Served) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.target, options=CHANNEL_OPTIONS) as opened:
        yield opened


def send(
    channel: grpc.Channel, method: Method, case: Input
) -> tuple[grpc.StatusCode, str, list[bytes]]:
    """Send ``case`` as bytes (no serializer: the server decodes it); (code, details,
    replies). A server stream that never ends (a watch) is read to its first reply."""
    options: dict[str, Any] = {"timeout": case.timeout, "metadata": case.metadata or None}
    try:
        if method.kind == "uu":
            replies = [channel.unary_unary(method.path)(case.messages[0], **options)]
        elif method.kind == "su":
            replies = [channel.stream_unary(method.path)(iter(case.messages), **options)]
        elif method.kind == "us":
            call = channel.unary_stream(method.path)(case.messages[0], **options)
            replies = list(itertools.islice(call, 1))
            call.cancel()
        else:
            replies = list(channel.stream_stream(method.path)(iter(case.messages), **options))
    except grpc.RpcError as error:
        return error.code(), error.details() or "", []
    return grpc.StatusCode.OK, "", replies


#: What a line of a given quantity may be answered when its SKU and UoM are known; an
#: unknown SKU or UoM says so first, whatever the quantity.
_UNKNOWN = {pb.LINE_STATUS_UNKNOWN_SKU, pb.LINE_STATUS_UNKNOWN_UOM}
_ZERO = {pb.LINE_STATUS_ZERO_QUANTITY} | _UNKNOWN
_NEGATIVE = {pb.LINE_STATUS_QTY_OUT_OF_RANGE} | _UNKNOWN
#: The methods whose answers have lines (QuoteStream's have them inside each reply).
_WITH_LINES = ("Quote", "GetPrices", "GetAvailability", "Promise")
#: Whether each answer with lines carries prices, availability (else the part is absent).
_PARTS = {
    pb.QuoteResponse: (True, True),
    pb.GetPricesResponse: (True, False),
    pb.GetAvailabilityResponse: (False, True),
}


def check_lines(request: Message, response: Message) -> None:
    """The lines of an answer against the request's (module docstring)."""
    asked = list(request.lines)  # type: ignore[attr-defined]
    answered = list(response.lines)  # type: ignore[attr-defined]
    assert len(answered) == len(asked), f"{len(asked)} lines asked, {len(answered)} answered"
    prices, stock = _PARTS.get(type(response), (False, False))
    for i, (line, answer) in enumerate(zip(asked, answered, strict=True)):
        assert len(line.line_id) <= MAX_LINE_ID, f"lines[{i}].line_id answered, not refused"
        echo = (answer.index, answer.line_id, answer.sku, answer.quantity, answer.uom)
        assert echo == (i, line.line_id, line.sku, line.quantity, line.uom), f"lines[{i}] echo"
        assert answer.status != pb.LINE_STATUS_UNSPECIFIED, f"lines[{i}] has no status"
        if line.quantity == 0:
            assert answer.status in _ZERO, f"lines[{i}]: quantity 0 is {answer.status}"
        elif line.quantity < 0:
            assert answer.status in _NEGATIVE, f"lines[{i}]: {line.quantity} is {answer.status}"
        if isinstance(answer, pb.QuotedLine):  # absent means not asked, never "nothing"
            assert answer.HasField("price") == answer.HasField("sell_rules") == prices
            assert answer.HasField("availability") == stock
            assert answer.HasField("explanation") == (prices and request.explain)  # type: ignore[attr-defined]
            if answer.status != pb.LINE_STATUS_OK:
                assert answer.price == pb.Price(), f"lines[{i}] is not OK but priced"
        elif answer.status != pb.LINE_STATUS_OK:
            assert not answer.allocations, f"lines[{i}] is not OK but allocated"


def _requests(method: Method, case: Input) -> list[Message] | None:
    """The requests of ``case`` as the server read them (None: some does not parse)."""
    try:
        return [method.request.FromString(message) for message in case.messages]
    except DecodeError:
        return None


def check(server: Served, channel: grpc.Channel, method: Method, case: Input) -> None:
    """Send one input and hold its answer to the oracle (module docstring)."""
    code, details, replies = send(channel, method, case)
    target = f"grpc {server.name} {method.path}"
    record(target, code.name)
    if code not in ALLOWED or (
        code == grpc.StatusCode.DEADLINE_EXCEEDED and case.timeout >= OWN_DEADLINE_BELOW_S
    ):
        problems = "\n".join(server.problems())
        raise AssertionError(
            f"{method.path} answered {code.name} (deadline {case.timeout} s): {details}\n{problems}"
        )
    if code != grpc.StatusCode.OK:  # (health's NOT_FOUND for an unknown service has none)
        mine = method.path.startswith("/pacache.")
        assert (len(details) > 0 or not mine) and len(details) <= 1_100, (
            f"{code.name} with details {details[:2000]!r}"
        )
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        assert ": " in details, f"INVALID_ARGUMENT names no field: {details!r}"
    responses = [method.response.FromString(reply) for reply in replies]
    requests = _requests(method, case) if responses else None
    for response in responses:
        if isinstance(response, pb.QuoteStreamResponse) and response.error_code:
            per_request = _CODE_OF_NUMBER.get(response.error_code)
            record(target + PER_REQUEST, per_request.name if per_request else "?")
            assert per_request in ALLOWED, f"a QuoteStream request got {response.error_code}"
            assert response.error_message, "a QuoteStream error without a message"
    if requests is None:
        return
    if method.name == "QuoteStream":  # one reply per request, in order
        assert len(responses) == len(requests), (
            f"{len(requests)} requests, {len(responses)} replies"
        )
        for request, response in zip(requests, responses, strict=True):
            assert response.request_id == request.request_id  # type: ignore[attr-defined]
            if not response.error_code:
                check_lines(request.quote, response.quote)  # type: ignore[attr-defined]
    elif method.name in _WITH_LINES:
        (response,) = responses
        check_lines(requests[0], response)


@pytest.mark.parametrize("method", METHODS, ids=[m.name for m in METHODS])
def test_no_input_earns_unknown_or_internal_and_the_server_stays_healthy(
    server: Served, channel: grpc.Channel, method: Method
) -> None:
    share = GRPC_SHARE / len(CONFIGS) * method.weight / _WEIGHTS
    cap = SNAPSHOT_CAP if method.name == "Snapshot" else None

    @fuzz(share, cap=cap)
    @given(inputs(method))
    def one_input(case: Input) -> None:
        check(server, channel, method, case)

    one_input()
    assert not server.problems()


def test_every_method_the_server_serves_is_fuzzed(server: Served, channel: grpc.Channel) -> None:
    # reflection lists what is served: a service or method added later must join METHODS
    database = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(database)
    served = {
        f"/{name}/{method.name}"
        for name in database.get_services()
        for method in pool.FindServiceByName(name).methods
    }
    assert served == {method.path for method in METHODS}
