"""Every error path of the API (code and message), auth, reflection, and graceful stop."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from engine import events as ev
from loaders.events import encode
from server._proto.pacache.v1 import pacache_pb2 as pb
from server.client import Client, quote_lines
from tests.e2e.conftest import TOKENS, Running, start_server


def _lines(*lines: tuple[Any, ...]) -> list[pb.QuoteLine]:
    return quote_lines(list(lines))  # type: ignore[arg-type]


#: One character past the longest line_id a request line may carry (64).
_LONG_ID = "L" * 65


# (name, call, expected code, words the message must contain)
ERROR_CASES = [
    (
        "no lines",
        lambda c: c.quote_raw(pb.QuoteRequest(account="ACME")),
        grpc.StatusCode.INVALID_ARGUMENT,
        ["lines", "at least 1"],
    ),
    (
        "a line_id over 64 characters",
        lambda c: c.quote_raw(
            pb.QuoteRequest(
                account="ACME", lines=_lines(("BOLT-M8", 1, "", "ok"), ("NUT-M8", 1, "", _LONG_ID))
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        ["lines[1].line_id", "65 characters", "at most 64"],
    ),
    (
        "a line_id of 65 characters that are not ASCII, on GetPrices",
        lambda c: c.get_prices(
            pb.GetPricesRequest(account="ACME", lines=_lines(("BOLT-M8", 1, "", "\u00e9" * 65)))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        ["lines[0].line_id", "65 characters", "at most 64"],
    ),
    (
        "a line_id over 64 characters on GetAvailability",
        lambda c: c.get_availability(
            pb.GetAvailabilityRequest(
                account="ACME", lines=_lines(("BOLT-M8", 1), ("NUT-M8", 1), ("A", 1, "", _LONG_ID))
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        ["lines[2].line_id", "at most 64"],
    ),
    (
        "a line_id over 64 characters on Promise",
        lambda c: c.promise(
            pb.PromiseRequest(account="ACME", lines=_lines(("BOLT-M8", 1, "", _LONG_ID)))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        ["lines[0].line_id", "at most 64"],
    ),
    (
        "a policy that is not in the enum",
        lambda c: c.quote_raw(
            pb.QuoteRequest(account="ACME", policy=99, lines=_lines(("BOLT-M8", 1)))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        ["policy", "99", "PRIORITY or LOWEST_PRICE"],
    ),
    (
        "too many lines",
        lambda c: c.quote_raw(pb.QuoteRequest(account="ACME", lines=_lines(*[("A", 1)] * 5001))),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        ["lines", "5001 lines", "at most 5000"],
    ),
    (
        "missing account",
        lambda c: c.quote_raw(pb.QuoteRequest(lines=_lines(("BOLT-M8", 1)))),
        grpc.StatusCode.INVALID_ARGUMENT,
        ["account", "missing"],
    ),
    (
        "unknown account",
        lambda c: c.quote_raw(pb.QuoteRequest(account="NOBODY", lines=_lines(("BOLT-M8", 1)))),
        grpc.StatusCode.NOT_FOUND,
        ["account", "NOBODY"],
    ),
    (
        "unknown region",
        lambda c: c.quote_raw(
            pb.QuoteRequest(account="ACME", region="MARS", lines=_lines(("BOLT-M8", 1)))
        ),
        grpc.StatusCode.NOT_FOUND,
        ["region", "MARS"],
    ),
    (
        "unknown location",
        lambda c: c.quote_raw(
            pb.QuoteRequest(account="ACME", locations=["XYZ"], lines=_lines(("BOLT-M8", 1)))
        ),
        grpc.StatusCode.NOT_FOUND,
        ["locations", "XYZ"],
    ),
    (
        "bad pricing date",
        lambda c: c.quote_raw(
            pb.QuoteRequest(account="ACME", pricing_date="31/12/2025", lines=_lines(("A", 1)))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        ["pricing_date", "YYYY-MM-DD"],
    ),
    (
        "min_stream_ids naming a stream the server does not read",
        lambda c: c.quote("ACME", [("BOLT-M8", 1)], min_stream_ids={"nostream": "1-0"}),
        grpc.StatusCode.INVALID_ARGUMENT,
        ["min_stream_ids", "'nostream' is not a stream of this server"],
    ),
    (
        "negative max_shipments",
        lambda c: c.promise(
            pb.PromiseRequest(account="ACME", max_shipments=-1, lines=_lines(("BOLT-M8", 1)))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        ["max_shipments"],
    ),
    (
        "reserve without lines",
        lambda c: c.reserve(pb.ReserveRequest(account="ACME", hold_key="k", ttl_ms=1000)),
        grpc.StatusCode.INVALID_ARGUMENT,
        ["lines", "at least 1"],
    ),
    (
        "reserve with a ttl over the limit",
        lambda c: c.reserve(
            pb.ReserveRequest(
                account="ACME",
                hold_key="k",
                ttl_ms=10**12,
                lines=[pb.ReserveLine(sku="BOLT-M8", location="DAL", quantity=1)],
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        ["ttl_ms", "1..604800000"],
    ),
    (
        "reserve with a UoM the item lacks",
        lambda c: c.reserve(
            pb.ReserveRequest(
                account="ACME",
                hold_key="k",
                ttl_ms=1000,
                lines=[pb.ReserveLine(sku="BOLT-M8", location="DAL", quantity=1, uom="PL")],
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        ["lines[0].uom", "PL"],
    ),
    (
        "watch without skus",
        lambda c: next(c.watch(pb.WatchAvailabilityRequest(account="ACME"), timeout=5)),
        grpc.StatusCode.INVALID_ARGUMENT,
        ["skus", "at least 1"],
    ),
    (
        "ingest of a payload that is not msgpack or JSON",
        lambda c: c.ingest([b"\xc1\xc1"]),
        None,  # not a call error: the entry is rejected with its reason
        ["payload"],
    ),
]


@pytest.mark.parametrize(
    ("call", "code", "words"), [case[1:] for case in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_error_paths_return_the_documented_code_and_name_the_field(
    client: Client, call: Any, code: grpc.StatusCode | None, words: list[str]
) -> None:
    if code is None:
        response = call(client)
        assert response.accepted == 0
        message = response.rejections[0].reason
    else:
        with pytest.raises(grpc.RpcError) as raised:
            call(client)
        assert raised.value.code() == code, raised.value.details()
        message = raised.value.details()
    for word in words:
        assert word in message, message


#: A negative quantity was INVALID_ARGUMENT for the whole call ("lines.quantities[0]");
#: now it is the line's status, as a zero (or unset) quantity is, and the others are answered.
_ODD_QUANTITIES = [
    ("BOLT-M8", -1, "", "neg"), ("NUT-M8", 0, "", "zero"), ("BOLT-M8", 10, "", "ok"),
    ("NUT-M8", -(2**63), "", "min"), ("BOLT-M8", 0, "BX", "zero-bx"), ("NUT-M8", 5, "", "ok-2"),
]  # fmt: skip
_ODD_STATUSES = [
    ("neg", pb.LINE_STATUS_QTY_OUT_OF_RANGE), ("zero", pb.LINE_STATUS_ZERO_QUANTITY),
    ("ok", pb.LINE_STATUS_OK), ("min", pb.LINE_STATUS_QTY_OUT_OF_RANGE),
    ("zero-bx", pb.LINE_STATUS_ZERO_QUANTITY), ("ok-2", pb.LINE_STATUS_OK),
]  # fmt: skip


def _statuses(response: Any) -> list[tuple[str, int]]:
    assert [line.index for line in response.lines] == list(range(len(response.lines)))
    return [(line.line_id, line.status) for line in response.lines]


def test_negative_and_zero_quantities_are_line_statuses_and_the_other_lines_are_answered(
    client: Client,
) -> None:
    response, rows = client.quote("ACME", _ODD_QUANTITIES, locations=["ATL"])
    assert _statuses(response) == _ODD_STATUSES
    assert [(r.sku, r.quantity, r.uom) for r in rows] == [line[:3] for line in _ODD_QUANTITIES]
    assert [r.unit_price_micros for r in rows] == [0, 0, 180_000, 0, 0, 100_000]
    assert [r.extended_micros for r in rows] == [0, 0, 1_800_000, 0, 0, 500_000]
    assert [r.base_qty for r in rows] == [0, 0, 10, 0, 0, 5]
    assert (rows[2].available, rows[5].available) == ({"ATL": 40}, {"ATL": 1000})

    prices = client.get_prices(pb.GetPricesRequest(account="ACME", lines=_lines(*_ODD_QUANTITIES)))
    assert _statuses(prices) == _ODD_STATUSES
    assert [line.price.unit_price_micros for line in prices.lines] == [0, 0, 180_000, 0, 0, 100_000]
    stock = client.get_availability(
        pb.GetAvailabilityRequest(account="ACME", locations=["ATL"], lines=_lines(*_ODD_QUANTITIES))
    )
    assert _statuses(stock) == _ODD_STATUSES
    plan = client.promise(
        pb.PromiseRequest(account="ACME", locations=["ATL"], lines=_lines(*_ODD_QUANTITIES))
    )
    assert _statuses(plan) == _ODD_STATUSES
    assert [sum(a.quantity for a in line.allocations) for line in plan.lines] == [0, 0, 10, 0, 0, 5]
    assert [line.backordered_qty for line in plan.lines] == [0] * 6
    # a QuoteStream request with such lines is answered, not failed
    (reply,) = client.quote_stream(
        [pb.QuoteStreamRequest(
            request_id="odd", quote=pb.QuoteRequest(account="ACME", lines=_lines(*_ODD_QUANTITIES))
        )],
        timeout=10,
    )  # fmt: skip
    assert reply.error_code == 0 and _statuses(reply.quote) == _ODD_STATUSES


def test_a_quantity_left_unset_is_zero_quantity_not_an_error(client: Client) -> None:
    unset = pb.QuoteLine(sku="BOLT-M8")  # proto3 sends no quantity: 0
    request = pb.QuoteRequest(
        account="ACME", lines=[unset, pb.QuoteLine(sku="BOLT-M8", quantity=1)]
    )
    response = client.quote_raw(request)
    assert [line.status for line in response.lines] == [
        pb.LINE_STATUS_ZERO_QUANTITY, pb.LINE_STATUS_OK,
    ]  # fmt: skip
    assert response.lines[0].HasField("price") and response.lines[0].price.unit_price_micros == 0


def test_a_line_id_of_64_characters_is_echoed_whole(client: Client) -> None:
    ids = ["x" * 64, "\U0001d11e" * 64, "", "cart-7"]  # 64 characters, however many bytes
    _, rows = client.quote("ACME", [("BOLT-M8", 1, "", i) for i in ids])
    assert [r.line_id for r in rows] == ids and {r.status for r in rows} == {"OK"}


def test_a_long_line_id_fails_only_its_own_quote_stream_request(client: Client) -> None:
    requests = [
        pb.QuoteStreamRequest(request_id=name, quote=pb.QuoteRequest(
            account="ACME", lines=_lines(("BOLT-M8", 1, "", line_id))))
        for name, line_id in (("a", "ok"), ("b", _LONG_ID), ("c", "x" * 64))
    ]  # fmt: skip
    replies = list(client.quote_stream(requests, timeout=10))
    assert [r.request_id for r in replies] == ["a", "b", "c"]
    assert replies[1].error_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "lines[0].line_id" in replies[1].error_message
    assert [r.error_code for r in (replies[0], replies[2])] == [0, 0]
    assert replies[2].quote.lines[0].line_id == "x" * 64


def test_a_message_over_the_size_limit_is_resource_exhausted(tmp_path: Path) -> None:
    running = start_server(tmp_path, "--max-message-bytes", "2000")
    try:
        with running.client() as client, pytest.raises(grpc.RpcError) as raised:
            client.quote("ACME", [("BOLT-M8", 1)] * 400)
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        running.stop()


def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value.code()  # type: ignore[no-any-return]


def test_auth_refuses_missing_and_unknown_tokens(served_with_auth: Running) -> None:
    with served_with_auth.client() as anonymous:
        assert _code(lambda: anonymous.quote("ACME", [("BOLT-M8", 1)])) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
    with served_with_auth.client(token="guess") as guesser:
        assert _code(lambda: guesser.quote("ACME", [("BOLT-M8", 1)])) == (
            grpc.StatusCode.UNAUTHENTICATED
        )


def test_a_portal_token_prices_its_own_account_but_not_another(served_with_auth: Running) -> None:
    with served_with_auth.client(token="portal") as portal:
        _, rows = portal.quote("ACME", [("BOLT-M8", 1)])
        assert rows[0].status == "OK"
        with pytest.raises(grpc.RpcError) as raised:
            portal.quote("OTHER", [("BOLT-M8", 1)])
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "OTHER" in raised.value.details()
        assert _code(portal.stats) == grpc.StatusCode.PERMISSION_DENIED


def test_a_loader_token_may_ingest_but_not_read_prices(served_with_auth: Running) -> None:
    with served_with_auth.client(token="loader") as loader:
        change = ev.InventorySet(sku="BOLT-M8", location="DAL", on_hand=1, version=9)
        assert loader.ingest([encode([change])]).accepted == 1
        assert _code(lambda: loader.quote("ACME", [("BOLT-M8", 1)])) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
    with served_with_auth.client(token="portal") as portal:
        assert _code(lambda: portal.ingest([encode([change])])) == (
            grpc.StatusCode.PERMISSION_DENIED
        )


def test_health_stays_open_to_probes_when_auth_is_on(served_with_auth: Running) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(served_with_auth.target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert TOKENS["tokens"][0]["token"] == "portal"


def test_health_watch_streams_the_serving_status_through_the_interceptors(served: Running) -> None:
    # grpc_health's Watch is a coroutine that sends with context.write; the interceptors
    # iterated it as if it were a generator and every Watch answered INTERNAL
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(served.target) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service="pacache.v1.PriceAvailabilityService"),
            timeout=5,
        )
        first = next(watch)
        watch.cancel()
    assert first.status == health_pb2.HealthCheckResponse.SERVING


def test_health_list_gives_every_service_the_status_check_gives(served: Running) -> None:
    # the health proto's List went to grpc_health's generated stub (a synchronous
    # NotImplementedError), which the interceptors answered INTERNAL with a traceback
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(served.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        listed = health.List(health_pb2.HealthListRequest(), timeout=5).statuses
        checked = {
            service: health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            for service in listed
        }
    assert {"", "pacache.v1.PriceAvailabilityService"} <= set(listed)
    assert {name: reply.status for name, reply in listed.items()} == {
        name: reply.status for name, reply in checked.items()
    }


def test_a_reflection_only_client_lists_the_services_and_calls_quote(served: Running) -> None:
    with grpc.insecure_channel(served.target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {
            "pacache.v1.PriceAvailabilityService",
            "pacache.v1.IngestService",
            "pacache.v1.AdminService",
            "grpc.health.v1.Health",
        } <= services
        pool = descriptor_pool.DescriptorPool(database)
        method = pool.FindServiceByName("pacache.v1.PriceAvailabilityService").FindMethodByName(
            "Quote"
        )
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        request = request_class(account="ACME")
        request.lines.add(line_id="r-1", sku="BOLT-M8", quantity=10)
        quote = channel.unary_unary(
            "/pacache.v1.PriceAvailabilityService/Quote",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        response = quote(request, timeout=5)
    (line,) = response.lines
    assert (line.line_id, line.price.unit_price_micros) == ("r-1", 180_000)


def test_sigterm_lets_calls_in_flight_finish_then_stops(tmp_path: Path) -> None:
    running = start_server(tmp_path)
    results: dict[str, Any] = {}
    with running.client() as client:
        version = client.stats().as_of.version
        # A Quote waiting for a version that only a later Ingest creates: in flight.
        waiting = threading.Thread(
            target=lambda: results.update(
                rows=client.quote("ACME", [("NUT-M8", 1)], locations=["DAL"],
                                  min_version=version + 1, timeout=15)[1]
            )
        )  # fmt: skip
        waiting.start()
        # An Ingest stream opened before SIGTERM and finished after it.
        go = threading.Event()

        def entries() -> Any:
            go.wait(10)
            yield encode([ev.InventorySet(sku="NUT-M8", location="DAL", on_hand=3, version=7)])

        ingest = threading.Thread(target=lambda: results.update(ingest=client.ingest(entries())))
        ingest.start()
        time.sleep(0.5)
        running.process.send_signal(15)
        refused = False  # new calls are refused while draining (poll: the signal is async)
        deadline = time.monotonic() + 10
        while not refused and time.monotonic() < deadline:
            with running.client() as late:
                try:
                    late.ping(timeout=1)
                    time.sleep(0.05)
                except grpc.RpcError:
                    refused = True
        assert refused
        go.set()
        ingest.join(15)
        waiting.join(15)
    assert results["ingest"].accepted == 1
    assert results["rows"][0].available == {"DAL": 3}
    assert running.stop() == 0


def test_tokens_file_with_an_unknown_scope_is_refused(tmp_path: Path) -> None:
    from engine.errors import InvalidInput
    from server.auth import TokenTable

    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"tokens": [{"token": "t", "scopes": ["write"]}]}))
    with pytest.raises(InvalidInput, match=r"tokens\[0\]\.scopes"):
        TokenTable.from_file(path)
