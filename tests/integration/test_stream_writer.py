"""The Redis Streams writer against a real redis-server started by the test."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import events as ev
from engine.deltas import apply_batch
from engine.inventory_apply import hold_of
from engine.state import State
from loaders.events import encode
from loaders.stream_writer import FIELD
from server.host import StateHost
from tests.integration.writer_harness import PREFIX, WriterThread, master, publish
from tests.redis_process import RedisProcess


@pytest.fixture
def redis_proc(tmp_path: Path) -> Iterator[RedisProcess]:
    process = RedisProcess(tmp_path / "redis").start()
    yield process
    process.stop()


def inventory_events(rng: random.Random, count: int) -> list[Any]:
    """Sets and adjusts over 20 SKUs × 2 locations with increasing versions."""
    out: list[Any] = []
    for version in range(1, count + 1):
        sku, location = f"S{rng.randrange(20)}", rng.choice(("DAL", "ATL"))
        if rng.random() < 0.5:
            out.append(
                ev.InventorySet(
                    sku=sku,
                    location=location,
                    version=version,
                    on_hand=rng.randrange(1000),
                    allocated=rng.randrange(50),
                )
            )
        else:
            out.append(
                ev.InventoryAdjust(
                    sku=sku,
                    location=location,
                    version=version,
                    event_id=f"adj-{version}",
                    on_hand_delta=rng.randrange(-20, 20),
                )
            )
    return out


def snapshot_of(state: State) -> dict[str, Any]:
    """What a reader can observe of inventory and items, keyed by codes."""
    inv = state.inventory
    cells = {}
    for sku in range(state.n_skus):
        for loc in range(state.n_locations):
            key = (state.skus.code(sku), state.locations.code(loc))
            cells[key] = (int(inv.on_hand[sku, loc]), int(inv.allocated[sku, loc]))
    items = {state.skus.code(s): int(state.items["status"][s]) for s in range(state.n_skus)}
    return {"cells": cells, "items": items}


def reference(events: list[Any]) -> dict[str, Any]:
    state = State()
    apply_batch(state, events)
    return snapshot_of(state)


def test_duplicated_and_reordered_entries_reach_the_same_state(redis_proc: RedisProcess) -> None:
    rng = random.Random(7)
    changes = inventory_events(rng, 400)
    client = redis_proc.client()
    publish(client, "master", master())
    noisy = changes + rng.sample(changes, 150)  # replays
    rng.shuffle(noisy)  # out of order
    publish(client, "inventory", noisy, per_entry=13)
    host = StateHost(State())
    with WriterThread(redis_proc.url, host) as running:
        running.wait(lambda: running.writer.stats[f"{PREFIX}:inventory"].applied == len(noisy))
    assert snapshot_of(host.require()) == reference(master() + changes)


def test_a_poison_event_goes_to_the_dead_letter_stream_and_the_stream_continues(
    redis_proc: RedisProcess,
) -> None:
    client = redis_proc.client()
    publish(client, "master", master())
    client.xadd(f"{PREFIX}:inventory", {FIELD: b"not msgpack or json \xc1"})
    bad_id = client.xadd(
        f"{PREFIX}:inventory",
        {FIELD: b'{"type":"InventorySet","sku":"S1","location":"DAL","version":3,"on_hand":-5}'},
    ).decode()
    publish(client, "inventory", [ev.InventorySet(sku="S1", location="DAL", version=4, on_hand=9)])
    host = StateHost(State())
    with WriterThread(redis_proc.url, host) as running:
        running.wait(lambda: running.writer.stats[f"{PREFIX}:inventory"].dead_lettered == 2)
        running.wait(lambda: host.require().stream_ids.get(f"{PREFIX}:inventory", "") > bad_id)
    dead = client.xrange(f"{PREFIX}:dlq")
    reasons = [fields[b"reason"].decode() for _, fields in dead]
    assert any("payload" in r for r in reasons)
    assert any("on_hand" in r and "0.." in r for r in reasons)
    assert {fields[b"stream"] for _, fields in dead} == {f"{PREFIX}:inventory".encode()}
    state = host.require()
    assert state.inventory.on_hand[state.skus.get("S1"), state.locations.get("DAL")] == 9


def test_stock_for_an_unknown_sku_is_kept_until_the_item_arrives(redis_proc: RedisProcess) -> None:
    client = redis_proc.client()
    publish(
        client, "inventory", [ev.InventorySet(sku="LATE", location="DAL", version=1, on_hand=42)]
    )
    host = StateHost(State())
    with WriterThread(redis_proc.url, host) as running:
        running.wait(lambda: running.writer.stats[f"{PREFIX}:inventory"].applied == 1)
        publish(client, "master", [ev.LocationUpsert(location="DAL", version=1),
                                   ev.ItemUpsert(sku="LATE", version=1)])  # fmt: skip
        running.wait(lambda: running.writer.stats[f"{PREFIX}:master"].applied == 2)
    state = host.require()
    assert state.inventory.on_hand[state.skus.get("LATE"), state.locations.get("DAL")] == 42


@pytest.mark.parametrize("keep_data", [True, False], ids=["data kept", "data lost"])
def test_redis_restarting_mid_stream_loses_nothing(tmp_path: Path, keep_data: bool) -> None:
    redis_proc = RedisProcess(tmp_path / "redis", appendonly=True).start()
    try:
        rng = random.Random(3)
        changes = inventory_events(rng, 300)
        first, second = changes[:150], changes[150:]
        publish(redis_proc.client(), "master", master())
        publish(redis_proc.client(), "inventory", first)
        host = StateHost(State())
        with WriterThread(redis_proc.url, host, backoff_max_s=0.2) as running:
            running.wait(lambda: running.writer.stats[f"{PREFIX}:inventory"].applied == len(first))
            redis_proc.restart(keep_data=keep_data)
            if not keep_data:  # the producer re-sends what the lost Redis held
                publish(redis_proc.client(), "master", master())
                publish(redis_proc.client(), "inventory", first)
            publish(redis_proc.client(), "inventory", second)
            running.wait(
                lambda: (
                    host.require().stream_ids.get(f"{PREFIX}:inventory")
                    == redis_proc.client()
                    .xinfo_stream(f"{PREFIX}:inventory")["last-generated-id"]
                    .decode()
                )
            )
            assert running.writer.reconnects >= 1
        assert snapshot_of(host.require()) == reference(master() + changes)
    finally:
        redis_proc.stop()


def test_a_stream_trimmed_past_our_position_is_reported_as_a_gap(redis_proc: RedisProcess) -> None:
    client = redis_proc.client()
    publish(client, "master", master())
    publish(client, "inventory", inventory_events(random.Random(1), 10), per_entry=1)
    host = StateHost(State())
    with WriterThread(redis_proc.url, host) as running:
        running.wait(lambda: running.writer.stats[f"{PREFIX}:inventory"].applied == 10)
    # while the writer is away, 50 more entries arrive and all but 5 are trimmed
    publish(client, "inventory", inventory_events(random.Random(2), 50), per_entry=1)
    client.xtrim(f"{PREFIX}:inventory", maxlen=5, approximate=False)
    with WriterThread(redis_proc.url, host) as running:
        running.wait(lambda: bool(running.writer.stats[f"{PREFIX}:inventory"].gap))
    assert "trimmed" in host.gaps[f"{PREFIX}:inventory"]
    with pytest.raises(Exception, match="full reload"):
        host.require_streams("inventory")
    host.require_streams("pricing")  # other data is still served


def test_the_batch_clock_comes_from_stream_ids_not_the_local_clock(
    redis_proc: RedisProcess,
) -> None:
    client = redis_proc.client()
    publish(client, "master", master())
    entry = client.xadd(
        f"{PREFIX}:inventory",
        {
            FIELD: encode(
                [ev.HoldPlace(hold_key="h", account="A1", lines=(("S1", "DAL", 1),), ttl_ms=60_000)]
            )
        },
        id="1700000000000-0",
    ).decode()
    host = StateHost(State(), clock_ms=lambda: 0)
    with WriterThread(redis_proc.url, host) as running:
        running.wait(lambda: host.require().stream_ids.get(f"{PREFIX}:inventory") == entry)
    hold = hold_of(host.require(), "A1", "h")
    assert hold.placed_at_ms == 1_700_000_000_000
    assert np.array_equal(hold.qty, [1])
