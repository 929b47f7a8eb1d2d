"""A server reading Redis streams: XADD a change, see it through Quote (read-your-writes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import events as ev
from loaders.events import encode
from loaders.stream_writer import FIELD
from server._proto.pacache.v1 import pacache_pb2 as pb
from server.client import lines_message
from tests.e2e.conftest import Running, start_server
from tests.redis_process import RedisProcess


@pytest.fixture
def redis_proc(tmp_path: Path) -> Iterator[RedisProcess]:
    process = RedisProcess(tmp_path / "redis").start()
    yield process
    process.stop()


@pytest.fixture
def served_from_redis(tmp_path: Path, redis_proc: RedisProcess) -> Iterator[Running]:
    running = start_server(tmp_path, "--redis-url", redis_proc.url, "--stream-prefix", "e2e")
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
                account="ACME", locations=["ATL"], lines=lines_message([("BOLT-M8", 1)]),
                min_version=before + 1,
            ),
            timeout=10,
        )  # fmt: skip
    assert list(stock.availability.available) == [7]


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
