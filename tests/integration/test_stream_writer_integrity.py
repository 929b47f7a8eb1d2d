"""The stream writer never stops on bad data and never dies quietly (real redis-server).

Poison entries go to the dead-letter stream and the reader moves on; a batch whose apply
raises is split; a sink that cannot apply now keeps the entries; a reader that fails is
logged, reported and restarted; the backlog's age is published.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis

from engine import events as ev
from engine.deltas import ApplyResult
from engine.state import State
from loaders.events import REASON_MAX, encode
from loaders.stream_writer import (
    DLQ_PAYLOAD_MAX,
    FIELD,
    SinkUnavailable,
    StreamWriter,
    WriterConfig,
)
from server.checkpoint import write_checkpoint
from server.host import StateHost
from tests.integration.writer_harness import PREFIX, WriterThread, master, publish
from tests.redis_process import RedisProcess

INVENTORY, MASTER, PRICING, DLQ = (
    f"{PREFIX}:{s}" for s in ("inventory", "master", "pricing", "dlq")
)


@pytest.fixture
def redis_proc(tmp_path: Path) -> Iterator[RedisProcess]:
    process = RedisProcess(tmp_path / "redis").start()
    yield process
    process.stop()


@pytest.fixture
def client(redis_proc: RedisProcess) -> Iterator[redis.Redis]:
    connection = redis_proc.client()
    yield connection
    connection.close()


@dataclass
class ScriptedSink:
    """A StateHost as the writer's sink, with failures a test switches on and off."""

    host: StateHost = field(default_factory=lambda: StateHost(State()))
    unavailable: bool = False  # every call raises SinkUnavailable
    broken: str = ""  # every apply raises RuntimeError(broken)
    poison_sku: str = ""  # an apply whose batch holds an event for this SKU raises
    apply_delay_s: float = 0.0
    reports: list[str] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)

    def positions(self) -> dict[str, str]:
        if self.unavailable:
            raise SinkUnavailable("restoring a snapshot")
        return self.host.positions()

    async def apply_batch(
        self, events: Any, *, stream_ids: dict[str, str], clock_ms: int, event_ms: Any
    ) -> ApplyResult:
        if self.apply_delay_s:
            await asyncio.sleep(self.apply_delay_s)
        if self.unavailable:
            raise SinkUnavailable("restoring a snapshot")
        if self.broken:
            raise RuntimeError(self.broken)
        if self.poison_sku and any(getattr(e, "sku", "") == self.poison_sku for e in events):
            raise ValueError(f"cannot apply {self.poison_sku}: " + "x" * 10_000)
        self.batch_sizes.append(len(events))
        return self.host.apply_batch(
            events, stream_ids=stream_ids, clock_ms=clock_ms, event_ms=event_ms
        )

    def report_gap(self, stream: str, detail: str) -> None:
        self.host.report_gap(stream, detail)

    def report_reader(self, error: str) -> None:
        self.reports.append(error)


def stock(sku: str, on_hand: int, version: int = 1, location: str = "DAL") -> ev.InventorySet:
    return ev.InventorySet(sku=sku, location=location, version=version, on_hand=on_hand)


def on_hand(state: State, sku: str, location: str = "DAL") -> int:
    return int(state.inventory.on_hand[state.skus.get(sku), state.locations.get(location)])


def dead_letters(client: redis.Redis) -> list[dict[str, bytes]]:
    return [
        {key.decode(): value for key, value in fields.items()} for _, fields in client.xrange(DLQ)
    ]


def add(client: redis.Redis, stream: str, payload: bytes) -> str:
    return client.xadd(stream, {FIELD: payload}).decode()


POISON = {
    "bad json": b"{bad json",
    "5,000-deep array": b"[" * 5000,
    "truncated": b"[{",
    # 2**64 has no msgpack encoding: uint64's largest, 2**64 - 1, is the nearest, and
    # beyond the engine's int64
    "msgpack integer 2**64 - 1": msgspec.msgpack.encode(
        {"type": "InventorySet", "sku": "P", "location": "DAL", "version": 1, "on_hand": 2**64 - 1}
    ),
    "unknown type tag": b'{"type":"InventoryTeleport","sku":"P","location":"DAL","version":1}',
}


def test_poison_entries_are_dead_lettered_and_every_valid_entry_on_every_stream_is_applied(
    client: redis.Redis, redis_proc: RedisProcess
) -> None:
    publish(client, "master", [ev.LocationUpsert(location="DAL", version=1)])
    poison_ids = {}
    for n, (name, payload) in enumerate(POISON.items()):  # valid, poison, valid, poison, …
        add(client, INVENTORY, encode([stock(f"V{n}", on_hand=10 + n)]))
        poison_ids[name] = add(client, INVENTORY, payload)
    add(client, INVENTORY, encode([stock("LAST", on_hand=99)]))
    publish(client, "master", [ev.ItemUpsert(sku="V0", version=1)])  # after the poison
    publish(client, "pricing", [ev.PriceSet(price_list="LIST", currency="USD", sku="V0",
                                            version=1, tiers=((0, 1_000),))])  # fmt: skip
    host = StateHost(State())
    with WriterThread(redis_proc.url, host) as running:
        running.wait(lambda: host.require().stream_ids.get(PRICING, "") != "")
        running.wait(lambda: running.writer.stats[INVENTORY].dead_lettered == len(POISON))
        # then more of each, while it runs: it read on past all that
        bad = add(client, INVENTORY, b"{bad json")
        publish(client, "inventory", [stock("V0", on_hand=500, version=2)])
        running.wait(lambda: on_hand(host.require(), "V0") == 500)
        assert running.thread.is_alive()
        assert running.writer.reader_error == ""
    state = host.require()
    assert [on_hand(state, f"V{n}") for n in range(len(POISON))] == [500, 11, 12, 13, 14]
    assert on_hand(state, "LAST") == 99
    assert state.skus.get("P") is None or on_hand(state, "P") == 0  # no poison applied
    assert state.items["version"][state.skus.get("V0")] == 1  # master, after the poison
    assert state.prices.n == 1 and state.prices["active"][0]  # pricing, after the poison
    dead = dead_letters(client)
    assert [d["id"].decode() for d in dead] == [*poison_ids.values(), bad]
    payloads = [*POISON.values(), b"{bad json"]
    for record, payload in zip(dead, payloads, strict=True):
        assert record["stream"] == INVENTORY.encode()
        assert record["payload"] == payload
        assert 0 < len(record["reason"]) <= REASON_MAX
    reasons = dict(zip(POISON, (d["reason"].decode() for d in dead), strict=False))
    assert "JSON is malformed" in reasons["bad json"]
    assert "truncated" in reasons["truncated"]
    assert "on_hand" in reasons["msgpack integer 2**64 - 1"]
    assert (
        "InventoryTeleport" in reasons["unknown type tag"]
        and "$.type" in reasons["unknown type tag"]
    )


def test_an_entry_without_the_field_e_is_dead_lettered_not_read_from_another_field(
    client: redis.Redis, redis_proc: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pacache.writer")
    publish(client, "master", master())
    odd = client.xadd(INVENTORY, {"x": encode([stock("S1", on_hand=7)])}).decode()
    publish(client, "inventory", [stock("S2", on_hand=8)])
    host = StateHost(State())
    with WriterThread(redis_proc.url, host) as running:
        running.wait(lambda: running.writer.stats[INVENTORY].dead_lettered == 1)
        running.wait(lambda: running.writer.stats[INVENTORY].applied == 1)
    [record] = dead_letters(client)
    assert record["id"].decode() == odd
    assert record["reason"].decode() == "entry: no field 'e' (b'x')"
    [warning] = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert warning.levelno == logging.WARNING and odd in warning.getMessage()
    assert on_hand(host.require(), "S1") == 0  # not taken from the field "x"
    assert on_hand(host.require(), "S2") == 8


def test_a_dead_entry_over_1_mib_keeps_its_first_mib_and_says_its_size(
    client: redis.Redis, redis_proc: RedisProcess
) -> None:
    huge = b'{"type":"' + b"x" * (3 * DLQ_PAYLOAD_MAX) + b'"}'
    add(client, INVENTORY, huge)
    publish(client, "inventory", [stock("S1", on_hand=1)])
    host = StateHost(State())
    with WriterThread(redis_proc.url, host) as running:
        running.wait(lambda: running.writer.stats[INVENTORY].dead_lettered == 1)
    [record] = dead_letters(client)
    assert record["payload"] == huge[:DLQ_PAYLOAD_MAX]
    assert record["truncated"] == str(len(huge)).encode()
    reason = record["reason"].decode()
    assert len(reason) <= REASON_MAX and "$.type" in reason and "x" * 65 not in reason


def test_an_entry_with_good_and_bad_events_applies_the_good_and_dead_letters_once_naming_each(
    client: redis.Redis, redis_proc: RedisProcess
) -> None:
    publish(client, "master", master())
    raw = msgspec.json.decode(encode([stock("S1", on_hand=1), stock("S2", on_hand=2)], json=True))
    raw.insert(1, {"type": "InventorySet", "sku": "S3", "location": "DAL", "version": "v1"})
    raw.append({"type": "InventorySet", "sku": "S4", "location": "DAL", "version": 1,
                "on_hand": -5})  # fmt: skip
    payload = msgspec.json.encode(raw)
    entry = add(client, INVENTORY, payload)
    host = StateHost(State())
    with WriterThread(redis_proc.url, host) as running:
        running.wait(lambda: running.writer.stats[INVENTORY].dead_lettered == 1)
    [record] = dead_letters(client)
    assert (record["id"].decode(), record["payload"]) == (entry, payload)
    reason = record["reason"].decode()
    assert reason.startswith("2 problems: ")
    assert "`$[1].version`" in reason  # did not decode: its path in the entry
    assert "event 3 (InventorySet): on_hand" in reason  # the engine's: its place in the entry
    state = host.require()
    assert (on_hand(state, "S1"), on_hand(state, "S2")) == (1, 2)


def test_a_batch_whose_apply_raises_is_split_and_only_the_entries_that_raise_are_dead_lettered(
    client: redis.Redis, redis_proc: RedisProcess
) -> None:
    publish(client, "master", master())
    publish(client, "inventory", [stock("S1", on_hand=1)])
    boom = publish(client, "inventory", [stock("S2", on_hand=2), stock("BOOM", on_hand=3)])[0]
    publish(client, "inventory", [stock("S3", on_hand=4)])
    last = publish(client, "inventory", [stock("BOOM", on_hand=5, version=2)])[0]
    publish(client, "pricing", [ev.PriceSet(price_list="LIST", currency="USD", sku="S1",
                                            version=1, tiers=((0, 1_000),))])  # fmt: skip
    sink = ScriptedSink(poison_sku="BOOM")
    with WriterThread(redis_proc.url, sink) as running:
        stats = running.writer.stats[INVENTORY]
        running.wait(lambda: stats.dead_lettered == 2 and stats.last_id == last)
        assert running.writer.reader_error == "" and sink.reports == []
    assert [record["id"].decode() for record in dead_letters(client)] == [boom, last]
    for record in dead_letters(client):
        reason = record["reason"].decode()
        assert reason.startswith("apply failed: ValueError: cannot apply BOOM")
        assert len(reason) <= REASON_MAX
    state = sink.host.require()
    assert [on_hand(state, s) for s in ("S1", "S2", "S3")] == [1, 0, 4]  # S2: its entry failed
    assert state.prices.n == 1
    assert stats.applied == 2
    # the dead entry's position is recorded with the sink too: a restart does not read it
    # (nor dead-letter it) again
    assert state.stream_ids[INVENTORY] == last


def test_a_sink_that_fails_every_apply_is_a_reader_error_logged_reported_and_recovered_from(
    client: redis.Redis, redis_proc: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pacache.writer")
    publish(client, "master", master())
    publish(client, "inventory", [stock("S1", on_hand=5)])
    sink = ScriptedSink(broken="disk on fire")
    with WriterThread(redis_proc.url, sink, backoff_max_s=0.1) as running:
        running.wait(lambda: running.writer.reader_error != "")
        # three failed steps, each logged at ERROR: it retried, and reported only once
        running.wait(lambda: sum(r.levelno == logging.ERROR for r in caplog.records) >= 3)
        assert running.writer.reader_error == "RuntimeError: disk on fire"
        assert {s.reader_error for s in running.writer.stats.values()} == {
            "RuntimeError: disk on fire"
        }
        assert sink.reports == ["RuntimeError: disk on fire"]
        sink.broken = ""
        running.wait(lambda: running.writer.stats[INVENTORY].applied == 1)
        running.wait(lambda: running.writer.reader_error == "")
        assert {s.reader_error for s in running.writer.stats.values()} == {""}
        assert sink.reports == ["RuntimeError: disk on fire", ""]
    assert dead_letters(client) == []  # a failing sink is not a reason to dead-letter
    assert on_hand(sink.host.require(), "S1") == 5
    failure = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert failure.exc_info is not None and "disk on fire" in str(failure.exc_info[1])


def test_an_unavailable_sink_keeps_the_entries_and_the_backlog_age_shows_how_old_they_are(
    client: redis.Redis, redis_proc: RedisProcess
) -> None:
    publish(client, "master", master())
    client.xadd(INVENTORY, {FIELD: encode([stock("S1", on_hand=5)])}, id="1700000000000-0")
    client.xadd(
        INVENTORY, {FIELD: encode([stock("S1", on_hand=6, version=2)])}, id="1700000005000-0"
    )
    sink = ScriptedSink()
    with WriterThread(redis_proc.url, sink, backoff_max_s=0.05) as running:
        stats = running.writer.stats[INVENTORY]
        running.wait(lambda: stats.applied == 2)
        running.wait(lambda: stats.oldest_unapplied_ms == 0)
        sink.unavailable = True
        later = client.xadd(INVENTORY, {FIELD: encode([stock("S1", on_hand=7, version=3)])},
                            id="1700000009000-0").decode()  # fmt: skip
        running.wait(lambda: stats.oldest_unapplied_ms == 1_700_000_009_000)
        assert stats.last_id == "1700000005000-0"  # did not move past what it could not apply
        assert running.writer.reader_error == "" and sink.reports == []
        sink.unavailable = False
        running.wait(lambda: stats.last_id == later)
        running.wait(lambda: stats.oldest_unapplied_ms == 0)
    assert dead_letters(client) == []
    assert on_hand(sink.host.require(), "S1") == 7


def test_the_watchdog_times_redis_only_so_a_slow_apply_does_not_reset_the_connection(
    client: redis.Redis, redis_proc: RedisProcess
) -> None:
    publish(client, "master", master())
    publish(client, "inventory", [stock("S1", on_hand=5)])
    # each apply takes three times the watchdog's whole allowance
    sink = ScriptedSink(apply_delay_s=0.6)
    with WriterThread(redis_proc.url, sink, block_ms=20, watchdog_s=0.18) as running:
        running.wait(lambda: running.writer.stats[INVENTORY].applied == 1)
        assert running.writer.reconnects == 0
    assert on_hand(sink.host.require(), "S1") == 5


def test_a_restarted_writer_neither_stalls_on_a_poison_entry_nor_dead_letters_it_again(
    client: redis.Redis, redis_proc: RedisProcess
) -> None:
    publish(client, "master", master())
    add(client, INVENTORY, b"[{")  # the last entry of its stream
    host = StateHost(State())
    with WriterThread(redis_proc.url, host) as running:
        running.wait(lambda: running.writer.stats[INVENTORY].dead_lettered == 1)
    publish(client, "inventory", [stock("S1", on_hand=3)])
    with WriterThread(redis_proc.url, host) as running:  # resumes from the state's positions
        running.wait(lambda: running.writer.stats[INVENTORY].applied == 1)
        assert running.writer.stats[INVENTORY].dead_lettered == 0
    assert len(dead_letters(client)) == 1
    assert on_hand(host.require(), "S1") == 3


def test_a_writer_restarted_from_an_older_checkpoint_never_dead_letters_an_entry_twice(
    client: redis.Redis, redis_proc: RedisProcess
) -> None:
    publish(client, "master", master())
    add(client, INVENTORY, b"[{")
    publish(client, "inventory", [stock("S1", on_hand=3)])
    with WriterThread(redis_proc.url, StateHost(State())) as running:
        running.wait(lambda: running.writer.stats[INVENTORY].applied == 1)
    # a crash before the next checkpoint: the state it restarts from is older than the
    # dead letter, so the poison entry is read again
    again = StateHost(State())
    with WriterThread(redis_proc.url, again) as running:
        running.wait(lambda: running.writer.stats[INVENTORY].applied == 1)
        assert running.writer.stats[INVENTORY].dead_lettered == 0
    assert [d["id"].decode() for d in dead_letters(client)] == [
        client.xrange(INVENTORY)[0][0].decode()
    ]
    assert on_hand(again.require(), "S1") == 3


def test_a_checkpoint_waits_until_the_dead_letters_of_the_batch_it_would_hold_are_written(
    client: redis.Redis, redis_proc: RedisProcess, tmp_path: Path
) -> None:
    publish(client, "master", master())
    poison = add(client, INVENTORY, b"{bad json")
    host = StateHost(State())

    async def run() -> bool:
        writer = StreamWriter(redis_proc.url, host, WriterConfig(prefix=PREFIX, block_ms=20))
        host.stream_commit = writer.committing
        reached, go_on = asyncio.Event(), asyncio.Event()
        dead_letter = writer._dead_letter

        async def held(connection: Any, dead: Any) -> None:  # the XADD of the DLQ, slow
            reached.set()
            await go_on.wait()
            await dead_letter(connection, dead)

        writer._dead_letter = held  # type: ignore[method-assign]
        stop = asyncio.Event()
        reading = asyncio.create_task(writer.run(stop))
        await asyncio.wait_for(reached.wait(), 10)
        assert host.positions()[INVENTORY] == poison  # applied: the state is past it
        checkpoint = asyncio.create_task(write_checkpoint(host, str(tmp_path / "snapshots")))
        await asyncio.sleep(0.3)
        waited = not checkpoint.done()  # else it holds a position past an entry not in the DLQ
        go_on.set()
        assert await asyncio.wait_for(checkpoint, 10)
        stop.set()
        await reading
        return waited

    assert asyncio.run(run())
    assert [d["id"].decode() for d in dead_letters(client)] == [poison]
