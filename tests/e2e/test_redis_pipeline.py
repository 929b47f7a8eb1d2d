"""A server reading Redis streams: XADD a change, see it through Quote (read-your-writes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from engine import events as ev
from loaders.events import decode, encode
from loaders.stream_writer import FIELD
from server._proto.pacache.v1 import pacache_pb2 as pb
from server.client import quote_lines
from tests.e2e.conftest import Running, start_server
from tests.redis_process import RedisProcess


@pytest.fixture
def redis_proc(tmp_path: Path) -> Iterator[RedisProcess]:
    process = RedisProcess(tmp_path / "redis").start()
    yield process
    process.stop()


@pytest.fixture(params=["0", "2"], ids=["one-process", "two-workers"])
def served_from_redis(
    tmp_path: Path, redis_proc: RedisProcess, request: pytest.FixtureRequest
) -> Iterator[Running]:
    running = start_server(
        tmp_path, "--redis-url", redis_proc.url, "--stream-prefix", "e2e",
        "--workers", request.param,
    )  # fmt: skip
    yield running
    running.stop()


def test_a_change_published_with_xadd_is_visible_to_a_quote_that_waits_for_it(
    redis_proc: RedisProcess, served_from_redis: Running
) -> None:
    change = ev.InventorySet(sku="NUT-M8", location="DAL", on_hand=321, version=50)
    entry = redis_proc.client().xadd("e2e:inventory", {FIELD: encode([change])}).decode()
    with served_from_redis.client() as client:
        response, rows = client.quote(
            "ACME", [("NUT-M8", 1)], locations=["DAL"], timeout=10,
            min_stream_ids={"e2e:inventory": entry},
        )  # fmt: skip
    assert rows[0].available == {"DAL": 321}
    assert response.as_of.stream_ids["e2e:inventory"] == entry


def test_min_version_after_an_xadd_reads_the_write(
    redis_proc: RedisProcess, served_from_redis: Running
) -> None:
    with served_from_redis.client() as client:
        before = client.freshness().as_of.version
        redis_proc.client().xadd(
            "e2e:inventory",
            {FIELD: encode([ev.InventorySet(sku="BOLT-M8", location="ATL", on_hand=7, version=9)])},
        )
        # this test is the only producer: the next applied batch is the one holding it
        stock = client.get_availability(
            pb.GetAvailabilityRequest(
                account="ACME", locations=["ATL"], lines=quote_lines([("BOLT-M8", 1)]),
                min_version=before + 1,
            ),
            timeout=10,
        )  # fmt: skip
    assert list(stock.locations) == ["ATL"]
    (line,) = stock.lines
    assert [(a.location, a.available) for a in line.availability.locations] == [("ATL", 7)]


def test_stats_report_per_stream_positions_and_freshness(
    redis_proc: RedisProcess, served_from_redis: Running
) -> None:
    change = ev.InventorySet(sku="NUT-M8", location="ATL", on_hand=1, version=60, ts_ms=1)
    entry = redis_proc.client().xadd("e2e:inventory", {FIELD: encode([change])}).decode()
    with served_from_redis.client() as client:
        client.quote("ACME", [("NUT-M8", 1)], timeout=10, min_stream_ids={"e2e:inventory": entry})
        stats = client.stats()
    streams = {s.stream: s for s in stats.streams}
    assert streams["e2e:inventory"].last_id == entry
    assert streams["e2e:inventory"].applied >= 1
    assert not streams["e2e:inventory"].gap_detected


def test_reserve_and_release_go_through_the_stream_so_every_replica_decides_alike(
    redis_proc: RedisProcess, served_from_redis: Running
) -> None:
    """DESIGN §5/§9: with streams, a hold is an entry in the stream, applied in stream order
    at its stream time — the same on every replica reading it — not a local decision."""
    line = pb.ReserveLine(sku="BOLT-M8", location="ATL", quantity=30)
    request = pb.ReserveRequest(account="ACME", hold_key="cart-9", lines=[line], ttl_ms=60_000)
    redis = redis_proc.client()
    with served_from_redis.client() as client:
        first = client.reserve(request)
        again = client.reserve(request)  # idempotent: no second entry
        entries = redis.xrange("e2e:inventory")
        assert len(entries) == 1
        (entry_id, fields), = entries  # fmt: skip
        (placed,) = decode(fields[FIELD])
        assert (type(placed).__name__, placed.hold_key, placed.lines) == (
            "HoldPlace", "cart-9", (("BOLT-M8", "ATL", 30),)
        )  # fmt: skip
        entry_ms = int(entry_id.decode().split("-")[0])
        # placed at its stream time, so a replica replaying the stream gets the same expiry
        assert first.expires_at_ms == again.expires_at_ms == entry_ms + 60_000
        assert first.as_of.stream_ids["e2e:inventory"] == entry_id.decode()
        _, rows = client.quote("ACME", [("BOLT-M8", 1)], locations=["ATL"])
        assert rows[0].available == {"ATL": 10}
        other = pb.ReserveRequest(
            account="ACME", hold_key="cart-9", ttl_ms=60_000,
            lines=[pb.ReserveLine(sku="BOLT-M8", location="ATL", quantity=31)],
        )  # fmt: skip
        with pytest.raises(grpc.RpcError) as raised:
            client.reserve(other)
        assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert client.release(pb.ReleaseRequest(account="ACME", hold_key="cart-9")).released
        assert [type(e).__name__ for e in decode(redis.xrange("e2e:inventory")[-1][1][FIELD])] == [
            "HoldRelease"
        ]
        _, rows = client.quote("ACME", [("BOLT-M8", 1)], locations=["ATL"])
        assert rows[0].available == {"ATL": 40}
