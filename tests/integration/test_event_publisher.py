"""``event_publisher`` (Ingest made durable) and ``hold_publisher`` against a real redis-server."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from engine import events as ev
from loaders.events import decode, to_struct
from loaders.producer import Producer, shard_of
from loaders.stream_writer import (
    FIELD,
    EventPublisher,
    WriterConfig,
    event_publisher,
    hold_publisher,
)


@pytest.fixture
def client(redis_server: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_server)
    yield connection
    connection.close()


def entries(client: redis.Redis, stream: str) -> list[tuple[str, list[Any]]]:
    """(id, events) of each entry of ``stream``, oldest first."""
    return [(i.decode(), decode(fields[FIELD])) for i, fields in client.xrange(stream)]


def streams(client: redis.Redis, prefix: str) -> list[str]:
    return sorted(key.decode() for key in client.scan_iter(f"{prefix}:*"))


def structs(events: list[Any]) -> list[Any]:
    return [to_struct(e) for e in events]


def run(publish: EventPublisher, *calls: list[Any]) -> list[dict[str, str]]:
    """Each call's answer, on one event loop, closing the publisher after."""

    async def main() -> list[dict[str, str]]:
        try:
            return [await publish(events) for events in calls]
        finally:
            await publish.aclose()

    return asyncio.run(main())


def stock(sku: str, version: int = 1, location: str = "DAL") -> ev.InventorySet:
    return ev.InventorySet(sku=sku, location=location, version=version, on_hand=version)


MIXED: list[Any] = [
    ev.ItemUpsert(sku="BOLT-M8", version=1, uoms={"BX": 100}),
    stock("BOLT-M8"),
    ev.PriceSet(price_list="LIST", currency="USD", sku="BOLT-M8", version=1, tiers=((0, 9),)),
    stock("NUT-M8"),
    ev.AccountUpsert(account="ACME", version=1),
    ev.HoldPlace(hold_key="cart-1", lines=(("BOLT-M8", "DAL", 2), ("NUT-M8", "DAL", 1)), ttl_ms=9),
    ev.ContractLineSet(contract="K1", version=1, sku="BOLT-M8", tiers=((0, 8),)),
    ev.InventoryAdjust(sku="NUT-M8", location="DAL", event_id="a1", version=2, on_hand_delta=-1),
    ev.HoldRelease(hold_key="cart-1"),
]


def test_events_go_to_their_streams_in_order_and_the_last_id_of_each_stream_comes_back(
    client: redis.Redis, redis_server: str
) -> None:
    publish = event_publisher(redis_server, WriterConfig(prefix="t"))

    [written] = run(publish, MIXED)

    assert streams(client, "t") == ["t:inventory", "t:master", "t:pricing"]
    by_stream = {name: entries(client, name) for name in streams(client, "t")}
    assert written == {name: got[-1][0] for name, got in by_stream.items()}
    assert [events for _, events in by_stream["t:master"]] == [structs([MIXED[0], MIXED[4]])]
    assert [events for _, events in by_stream["t:pricing"]] == [structs([MIXED[2], MIXED[6]])]
    assert [events for _, events in by_stream["t:inventory"]] == [
        structs([MIXED[1], MIXED[3], MIXED[5], MIXED[7], MIXED[8]])
    ]


def test_a_stream_of_more_than_500_events_takes_entries_of_500_in_order(
    client: redis.Redis, redis_server: str
) -> None:
    publish = event_publisher(redis_server, WriterConfig(prefix="t"))
    events = [stock(f"S{n}", version=n + 1) for n in range(1_234)]

    [written] = run(publish, events)

    got = entries(client, "t:inventory")
    assert [len(batch) for _, batch in got] == [500, 500, 234]
    assert [e for _, batch in got for e in batch] == structs(events)
    assert written == {"t:inventory": got[-1][0]}


def test_sharded_inventory_is_routed_and_packed_exactly_as_the_producer_does(
    client: redis.Redis, redis_server: str
) -> None:
    shards = 4
    events = [*MIXED, *(stock(f"SKU-{n:03d}", version=n + 1) for n in range(1_100))]
    publish = event_publisher(redis_server, WriterConfig(prefix="pub", inventory_shards=shards))

    [written] = run(publish, events)
    Producer(client, "prod", inventory_shards=shards).send(events)

    names = streams(client, "pub")
    assert [name.replace("pub:", "prod:") for name in names] == streams(client, "prod")
    assert "pub:inventory" not in names
    for name in names:
        ours = [batch for _, batch in entries(client, name)]
        assert ours == [batch for _, batch in entries(client, name.replace("pub:", "prod:"))]
        assert written[name] == entries(client, name)[-1][0]
    assert set(written) == set(names)
    # spot checks of the routing itself: a SKU's shard is its CRC-32, a release goes to all
    assert shard_of("SKU-007", shards) == zlib.crc32(b"SKU-007") % shards
    shard = f"pub:inventory:{shard_of('SKU-007', shards)}"
    assert to_struct(stock("SKU-007", version=8)) in [
        e for _, b in entries(client, shard) for e in b
    ]
    for n in range(shards):
        kinds = [type(e).__name__ for _, b in entries(client, f"pub:inventory:{n}") for e in b]
        assert kinds.count("HoldRelease") == 1


def test_one_call_is_one_multi_exec_and_an_object_that_is_no_event_sends_nothing(
    client: redis.Redis, redis_server: str
) -> None:
    publish = event_publisher(redis_server, WriterConfig(prefix="t", inventory_shards=3))
    client.config_resetstat()

    with pytest.raises(ValueError, match="not a pacache event"):
        run(publish, MIXED, [], [stock("LATE"), object()])

    stats = client.info("commandstats")
    assert stats["cmdstat_multi"]["calls"] == 1
    assert stats["cmdstat_exec"]["calls"] == 1
    assert stats["cmdstat_xadd"]["calls"] == len(streams(client, "t"))
    skus = [
        getattr(e, "sku", None)
        for n in range(3)
        for _, b in entries(client, f"t:inventory:{n}")
        for e in b
    ]
    assert "LATE" not in skus


def test_a_hold_goes_whole_to_the_first_inventory_stream_even_when_sharded(
    client: redis.Redis, redis_server: str
) -> None:
    publish = hold_publisher(redis_server, WriterConfig(prefix="t", inventory_shards=4))
    hold = MIXED[5]

    async def main() -> tuple[str, str]:
        try:
            return await publish(hold)
        finally:
            await publish.aclose()

    stream, entry_id = asyncio.run(main())

    assert stream == "t:inventory:0"
    assert entries(client, stream) == [(entry_id, structs([hold]))]
    assert streams(client, "t") == ["t:inventory:0"]
