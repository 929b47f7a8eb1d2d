"""Every RPC through a real channel against a server on port 0."""

from __future__ import annotations

import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from engine import events as ev
from loaders.events import encode
from server._proto.pacache.v1 import pacache_pb2 as pb
from server.client import Client, quote_lines
from server.versions import BLOCK
from tests.e2e.conftest import Running


def test_quote_prices_from_the_account_contract_and_shows_stock_by_location(client: Client) -> None:
    response, rows = client.quote("ACME", [("BOLT-M8", 150), ("NUT-M8", 2, "BX")], region="SOUTH")
    bolt, nut = rows
    assert (bolt.status, bolt.source_id, bolt.unit_price_micros) == ("OK", "ACME-2025", 180_000)
    assert bolt.extended_micros == 150 * 180_000
    assert bolt.available == {"DAL": 480, "ATL": 40}
    assert bolt.network_available == 520
    # NUT-M8 is list-priced per EA at $0.10: 2 BX = 200 EA = $20.00
    assert (nut.status, nut.source, nut.base_qty) == ("OK", "PRICE_LIST", 200)
    assert nut.unit_price_micros == 100 * 100_000
    assert nut.extended_micros == 20_000_000
    assert response.as_of.version >= 1


def test_quote_flags_bad_lines_and_answers_the_others(client: Client) -> None:
    response, rows = client.quote(
        "ACME",
        [("NOPE", 1), ("OLD-1", 1), ("BOLT-M8", 1, "PL"), ("BOLT-M8", -1), ("BOLT-M8", 0),
         ("BOLT-M8", 10**13), ("BOLT-M8", 2, "", "cart-7")],
    )  # fmt: skip
    assert [r.status for r in rows] == [
        "UNKNOWN_SKU", "ITEM_BLOCKED", "UNKNOWN_UOM", "QTY_OUT_OF_RANGE", "ZERO_QUANTITY",
        "QTY_OUT_OF_RANGE", "OK",
    ]  # fmt: skip
    assert [(r.index, r.line_id, r.quantity) for r in rows][-2:] == [
        (5, "", 10**13), (6, "cart-7", 2),
    ]  # fmt: skip
    # asked for prices: every line has a price message, zero where the line is not OK
    assert all(line.HasField("price") for line in response.lines)
    assert [r.unit_price_micros for r in rows] == [0] * 6 + [180_000]


def test_the_price_policy_is_per_request_and_echoed(client: Client) -> None:
    default, _ = client.quote("ACME", [("BOLT-M8", 1)])
    lowest, _ = client.quote("ACME", [("BOLT-M8", 1)], policy="LOWEST_PRICE")
    assert default.policy == pb.POLICY_PRIORITY
    assert lowest.policy == pb.POLICY_LOWEST_PRICE


def test_get_prices_and_get_availability_answer_their_half(client: Client) -> None:
    prices = client.get_prices(
        pb.GetPricesRequest(account="ACME", lines=quote_lines([("BOLT-M8", 1)]), explain=True)
    )
    (line,) = prices.lines
    assert line.price.unit_price_micros == 180_000
    assert not line.HasField("availability")
    lost = [c.lost for c in line.explanation.candidates]
    assert pb.LOST_REASON_WON in lost and pb.LOST_REASON_CONTRACT_WON in lost
    stock = client.get_availability(
        pb.GetAvailabilityRequest(
            account="ACME", locations=["ATL"], lines=quote_lines([("NUT-M8", 1)])
        )
    )
    assert list(stock.locations) == ["ATL"]
    (line,) = stock.lines
    assert not line.HasField("price") and not line.HasField("sell_rules")
    assert [(a.location, a.available) for a in line.availability.locations] == [("ATL", 1000)]
    assert stock.as_of.version >= 1


def test_promise_splits_across_the_region_and_backorders_with_a_lead_time(client: Client) -> None:
    plan = client.promise(
        pb.PromiseRequest(
            account="ACME", region="SOUTH", lines=quote_lines([("BOLT-M8", 600, "", "po-1")])
        )
    )
    (line,) = plan.lines
    assert (line.line_id, line.index, line.sku, line.status) == (
        "po-1", 0, "BOLT-M8", pb.LINE_STATUS_OK,
    )  # fmt: skip
    assert [(a.location, a.quantity) for a in line.allocations] == [("DAL", 480), ("ATL", 40)]
    assert line.backordered_qty == 80 and line.backorder_date != ""
    assert [(s.location, list(s.line_indexes)) for s in plan.shipments] == [
        ("DAL", [0]), ("ATL", [0]),
    ]  # fmt: skip
    assert [a.shipment for a in line.allocations] == [0, 1]


def test_quote_stream_answers_each_request_and_survives_a_bad_one(client: Client) -> None:
    requests = [
        pb.QuoteStreamRequest(
            request_id="a",
            quote=pb.QuoteRequest(account="ACME", lines=quote_lines([("BOLT-M8", 1)])),
        ),
        pb.QuoteStreamRequest(
            request_id="b",
            quote=pb.QuoteRequest(account="NOBODY", lines=quote_lines([("BOLT-M8", 1)])),
        ),
        pb.QuoteStreamRequest(
            request_id="c",
            quote=pb.QuoteRequest(account="ACME", lines=quote_lines([("NUT-M8", 1)])),
        ),
    ]
    replies = list(client.quote_stream(requests, timeout=10))
    assert [r.request_id for r in replies] == ["a", "b", "c"]
    assert replies[1].error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "account" in replies[1].error_message
    assert [line.price.unit_price_micros for line in replies[2].quote.lines] == [100_000]


def test_ingest_then_quote_with_min_version_reads_its_own_write(client: Client) -> None:
    change = ev.InventorySet(sku="NUT-M8", location="DAL", on_hand=77, version=2)
    ingested = client.ingest([encode([change])])
    assert ingested.accepted == 1
    _, rows = client.quote(
        "ACME", [("NUT-M8", 1)], locations=["DAL"], min_version=ingested.as_of.version
    )
    assert rows[0].available == {"DAL": 77}


def test_ingest_rejects_a_poison_event_with_its_reason_and_applies_the_rest(client: Client) -> None:
    payload = (
        b'[{"type":"InventorySet","sku":"NUT-M8","location":"DAL","version":5,"on_hand":-3},'
        b'{"type":"InventorySet","sku":"NUT-M8","location":"ATL","version":5,"on_hand":9}]'
    )
    response = client.ingest([payload], json=True)
    assert response.accepted == 1
    assert [r.index for r in response.rejections] == [0]
    assert "on_hand" in response.rejections[0].reason


def test_min_version_beyond_the_state_times_out_with_deadline_exceeded(client: Client) -> None:
    now = client.freshness().as_of.version
    with pytest.raises(grpc.RpcError) as raised:
        client.quote("ACME", [("BOLT-M8", 1)], min_version=now + 10, timeout=0.3)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.parametrize("ahead", [2 * BLOCK + 1, 2**62, 2**63 - 1])
def test_a_min_version_no_answer_can_have_carried_is_invalid_at_once(
    client: Client, ahead: int
) -> None:
    now = client.freshness().as_of.version
    with pytest.raises(grpc.RpcError) as raised:  # a wait would end DEADLINE_EXCEEDED
        client.quote("ACME", [("BOLT-M8", 1)], min_version=min(now + ahead, 2**63 - 1), timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "min_version" in (raised.value.details() or "")


def _watched(message: pb.WatchAvailabilityResponse) -> list[tuple[str, list[int]]]:
    return [(w.sku, [a.available for a in w.availability.locations]) for w in message.skus]


def test_watch_availability_sends_a_picture_then_changes_and_resumes_from_a_version(
    served: Running, client: Client
) -> None:
    request = pb.WatchAvailabilityRequest(account="ACME", skus=["NUT-M8"], locations=["DAL"])
    stream = client.watch(request, timeout=10)
    first = next(stream)
    assert first.snapshot and _watched(first) == [("NUT-M8", [0])]
    client.ingest([encode([ev.InventorySet(sku="NUT-M8", location="DAL", on_hand=5, version=3)])])
    change = next(stream)
    assert not change.snapshot and _watched(change) == [("NUT-M8", [5])]
    stream.cancel()
    resume_from = first.as_of.version
    client.ingest([encode([ev.InventorySet(sku="BOLT-M8", location="DAL", on_hand=1, version=4)])])
    resumed = client.watch(
        pb.WatchAvailabilityRequest(
            account="ACME", skus=["NUT-M8"], locations=["DAL"], from_version=resume_from
        ),
        timeout=10,
    )
    replay = next(resumed)  # the NUT-M8 change after resume_from, not a full picture
    assert not replay.snapshot and _watched(replay) == [("NUT-M8", [5])]
    resumed.cancel()


def test_reserve_is_idempotent_conflicts_on_other_lines_and_lowers_availability(
    client: Client,
) -> None:
    line = pb.ReserveLine(sku="BOLT-M8", location="ATL", quantity=30)
    request = pb.ReserveRequest(account="ACME", hold_key="cart-1", lines=[line], ttl_ms=60_000)
    first = client.reserve(request)
    again = client.reserve(request)
    assert first.active and (first.expires_at_ms, again.expires_at_ms) == (first.expires_at_ms,) * 2
    _, rows = client.quote("ACME", [("BOLT-M8", 1)], locations=["ATL"])
    assert rows[0].available == {"ATL": 10}
    other = pb.ReserveRequest(
        account="ACME",
        hold_key="cart-1",
        lines=[pb.ReserveLine(sku="BOLT-M8", location="ATL", quantity=31)],
        ttl_ms=60_000,
    )
    with pytest.raises(grpc.RpcError) as raised:
        client.reserve(other)
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    released = client.release(pb.ReleaseRequest(account="ACME", hold_key="cart-1"))
    assert released.released
    _, rows = client.quote("ACME", [("BOLT-M8", 1)], locations=["ATL"])
    assert rows[0].available == {"ATL": 40}


def test_a_hold_expires_after_its_ttl(client: Client) -> None:
    line = pb.ReserveLine(sku="BOLT-M8", location="ATL", quantity=40)
    placed = client.reserve(
        pb.ReserveRequest(account="ACME", hold_key="short", lines=[line], ttl_ms=200)
    )
    _, rows = client.quote("ACME", [("BOLT-M8", 1)], locations=["ATL"])
    assert rows[0].available == {"ATL": 0}
    # the server's clock tick (each second) expires it; wait for the version to move on
    _, rows = client.quote(
        "ACME",
        [("BOLT-M8", 1)],
        locations=["ATL"],
        min_version=placed.as_of.version + 1,
        timeout=5,
    )
    assert rows[0].available == {"ATL": 40}


def test_admin_ping_stats_freshness_and_snapshot(client: Client, served: Running) -> None:
    assert client.ping() == pb.PingResponse()
    stats = client.stats()
    assert stats.counts["skus"] == 3 and stats.rss_bytes > 0
    assert client.freshness().serving
    written = client.snapshot()
    assert written.path.endswith(f"v{written.as_of.version:012d}")


def test_health_reports_serving_for_the_server_and_each_service(served: Running) -> None:
    with grpc.insecure_channel(served.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "pacache.v1.PriceAvailabilityService"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_concurrent_quotes_all_succeed(client: Client) -> None:
    errors: list[Exception] = []

    def worker() -> None:
        try:
            for _ in range(20):
                client.quote("ACME", [("BOLT-M8", 3)])
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
