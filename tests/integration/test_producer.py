"""The producer against a real redis-server (started per test on a free port)."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
import redis

from engine import events as ev
from engine.deltas import apply_batch
from engine.state import State
from loaders.events import decode, encode
from loaders.producer import (
    FIELD,
    Producer,
    PublishError,
    Sent,
    add_publish_arguments,
    publish_file,
    publish_main,
    shard_of,
)
from tests.builders import micros, quote_line


@pytest.fixture
def client(redis_server: str) -> Any:
    connection = redis.Redis.from_url(redis_server)
    yield connection
    connection.close()


def entries(client: Any, stream: str) -> list[list[Any]]:
    """The decoded events of each entry of ``stream``, oldest first."""
    return [decode(fields[FIELD.encode()]) for _, fields in client.xrange(stream)]


def item(sku: str = "BOLT-M8", version: int = 1) -> ev.ItemUpsert:
    return ev.ItemUpsert(sku=sku, uoms={"BX": 100}, version=version)


def stock(sku: str, location: str = "DAL", on_hand: int = 10, version: int = 1) -> ev.InventorySet:
    return ev.InventorySet(sku=sku, location=location, on_hand=on_hand, version=version)


def price(sku: str = "BOLT-M8") -> ev.PriceSet:
    return ev.PriceSet(
        price_list="LIST", currency="USD", sku=sku, version=1, tiers=((0, 125_000), (1000, 110_000))
    )


def test_events_go_to_their_streams_batched_under_the_field_e(client):
    producer = Producer(client, "t")
    events = [
        item(),
        price(),
        stock("BOLT-M8"),
        ev.AccountUpsert(account="ACME", version=1),
        ev.HoldPlace(hold_key="cart-1", lines=(("BOLT-M8", "DAL", 2),), ttl_ms=60_000),
    ]

    sent = producer.send(events)

    assert [(s.stream, s.events) for s in sent] == [
        ("t:master", 2),
        ("t:pricing", 1),
        ("t:inventory", 2),
    ]
    assert all(client.xrange(s.stream)[0][0].decode() == s.entry_id for s in sent)
    [master] = entries(client, "t:master")
    assert [type(e).__name__ for e in master] == ["ItemUpsert", "AccountUpsert"]
    assert [type(e).__name__ for e in entries(client, "t:inventory")[0]] == [
        "InventorySet",
        "HoldPlace",
    ]


def test_a_stream_longer_than_the_batch_size_takes_several_entries_in_order(client):
    producer = Producer(client, "t", batch_size=3)

    sent = producer.send([stock(f"SKU-{n}", version=n + 1) for n in range(7)])

    assert [s.events for s in sent] == [3, 3, 1]
    skus = [e.sku for entry in entries(client, "t:inventory") for e in entry]
    assert skus == [f"SKU-{n}" for n in range(7)]


def test_sharded_inventory_goes_to_the_crc32_shard_of_the_sku(client):
    producer = Producer(client, "t", inventory_shards=4)
    skus = [f"SKU-{n:03d}" for n in range(40)]

    producer.send([stock(sku) for sku in skus] + [item()])

    for shard in range(4):
        got = [e.sku for entry in entries(client, f"t:inventory:{shard}") for e in entry]
        assert got == [sku for sku in skus if zlib.crc32(sku.encode()) % 4 == shard]
    assert client.exists("t:inventory") == 0
    assert shard_of("BOLT-M8", 4) == zlib.crc32(b"BOLT-M8") % 4  # stable across processes


def test_a_hold_goes_whole_to_each_shard_of_its_skus_and_a_release_to_every_shard(client):
    producer = Producer(client, "t", inventory_shards=8)
    skus = ["BOLT-M8", "NUT-M8", "WASHER-M8"]
    shards = {shard_of(sku, 8) for sku in skus}
    hold = ev.HoldPlace(hold_key="cart-9", lines=tuple((s, "DAL", 1) for s in skus), ttl_ms=1000)

    producer.send([hold, ev.HoldRelease(hold_key="cart-9")])

    for shard in range(8):
        kinds = [
            type(e).__name__ for entry in entries(client, f"t:inventory:{shard}") for e in entry
        ]
        assert kinds == (["HoldPlace", "HoldRelease"] if shard in shards else ["HoldRelease"])
    placed = entries(client, f"t:inventory:{min(shards)}")[0][0]
    assert placed.lines == hold.lines


def test_trimming_is_off_by_default_and_maxlen_trims_approximately(client):
    plain = Producer(client, "plain", batch_size=1)
    trimmed = Producer(client, "trim", batch_size=1, maxlen=10)
    events = [stock("BOLT-M8", version=n) for n in range(1, 1001)]

    plain.send(events)
    trimmed.send(events)

    assert client.xlen("plain:inventory") == 1000
    assert 10 <= client.xlen("trim:inventory") < 1000


def test_an_object_that_is_not_an_event_is_refused_before_anything_is_sent(client):
    producer = Producer(client, "t")

    with pytest.raises(ValueError, match="dict is not a pacache event"):
        producer.send([item(), {"sku": "BOLT-M8"}])
    assert producer.send([]) == []
    assert client.keys("t:*") == []


def test_what_the_producer_sent_applies_to_a_state_and_shows_in_a_quote(client):
    producer = Producer(client, "t", inventory_shards=2)
    producer.send(
        [
            ev.LocationUpsert(location="DAL", version=1),
            item(),
            ev.AccountUpsert(account="ACME", version=1),
            price(),
            stock("BOLT-M8", on_hand=1200),
        ]
    )

    state = State()
    for stream in ("t:master", "t:pricing", "t:inventory:0", "t:inventory:1"):
        for batch in entries(client, stream):
            assert not apply_batch(state, batch).rejected

    line = quote_line(state, "BOLT-M8", 1000, account="ACME", on=dt.date(2025, 3, 3))
    assert line.unit_price_micros == micros("0.11")
    assert line.available_now == {"DAL": 1200}


# --- pacache publish ---------------------------------------------------------------------


def jsonl(*events: Any) -> bytes:
    return b"".join(encode(e, json=True) + b"\n" for e in events)


def test_publish_file_sends_json_lines_in_batches(client, tmp_path: Path):
    path = tmp_path / "deltas.jsonl"
    receipts = ((dt.date(2025, 3, 10), 600),)
    inbound = ev.InboundSet(sku="BOLT-M8", location="DAL", receipts=receipts, version=2)
    path.write_bytes(jsonl(item(), price(), stock("BOLT-M8")) + b"\n" + jsonl(inbound))

    report = publish_file(path, Producer(client, "t"), batch=2)

    assert (report.events, report.entries, report.lines) == (4, 3, 5)
    assert report.streams == {"t:master", "t:pricing", "t:inventory"}
    sent = [e for entry in entries(client, "t:inventory") for e in entry]
    assert sent[1].receipts == receipts


def test_publish_file_names_the_first_bad_line(client, tmp_path: Path):
    path = tmp_path / "deltas.jsonl"
    bad_price = b'{"type": "PriceSet", "price_list": "LIST", "currency": "USD", "sku": "X", '
    bad_price += b'"version": 1, "tiers": [[0, 12.5]]}\n'
    path.write_bytes(jsonl(item()) + bad_price)

    with pytest.raises(PublishError, match=r"line 2: Expected `int`, got `float`"):
        publish_file(path, Producer(client, "t"))

    out_of_range = jsonl(ev.InventorySet(sku="X", location="DAL", on_hand=-1, version=1))
    with pytest.raises(PublishError, match="line 1: InventorySet: on_hand: -1 out of range"):
        publish_file(io.BytesIO(out_of_range), Producer(client, "t"))


def test_publish_main_reads_stdin_with_the_cli_arguments(redis_server, client, monkeypatch, capsys):
    parser = argparse.ArgumentParser()
    add_publish_arguments(parser)
    args = parser.parse_args(
        ["--from", "-", "--redis-url", redis_server, "--stream-prefix", "cli", "--batch", "2"]
    )
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(jsonl(item(), price()))))

    assert publish_main(args) == 0

    assert "published 2 events in 2 entries to cli:master, cli:pricing" in capsys.readouterr().out
    assert client.xlen("cli:master") == 1 and client.xlen("cli:pricing") == 1


def test_publish_main_reports_a_bad_file_and_exits_nonzero(redis_server, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text("not json\n")
    args = argparse.Namespace(
        from_=str(path), redis_url=redis_server, stream_prefix="cli", batch=10
    )

    assert publish_main(args) == 1
    assert "line 1" in capsys.readouterr().err


def test_sent_entries_are_named_tuples_of_stream_id_and_count(client):
    [sent] = Producer(client, "t").send([item()])

    assert isinstance(sent, Sent)
    stream, entry_id, count = sent
    assert (stream, count) == ("t:master", 1) and "-" in entry_id
