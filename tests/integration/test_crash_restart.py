"""Crash safety: SIGKILL the serving process at random points, restart it, lose nothing.

The server reads Redis streams and checkpoints often (every 50 events or 0.2 s), so kills
land mid-batch, mid-checkpoint and between. After the last restart it must equal the
reference — the same events applied once, in order: nothing lost, nothing applied twice
(adjusts are relative, so a double apply would show).

``PACACHE_CRASH_POINTS`` sets the number of kills (``make test`` 30, ``make test-crash`` 200).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import events as ev
from engine import snapshot
from engine.deltas import apply_batch
from engine.quote import quote
from engine.state import State
from loaders.events import encode
from loaders.stream_writer import FIELD
from server.client import Client
from server.spawn import Spawned, spawn
from tests.redis_process import RedisProcess

PREFIX = "crash"
SKUS = [f"S{i:02d}" for i in range(30)]
LOCATIONS = ["DAL", "ATL", "RNO"]


def _master() -> list[Any]:
    return [
        *[ev.LocationUpsert(location=loc, version=1) for loc in LOCATIONS],
        *[ev.ItemUpsert(sku=sku, version=1, uoms={"BX": 12}) for sku in SKUS],
        ev.AccountUpsert(account="ACME", version=1),
    ]


def _changes(rng: random.Random, start: int, count: int) -> list[Any]:
    out: list[Any] = []
    for version in range(start, start + count):
        sku, loc = rng.choice(SKUS), rng.choice(LOCATIONS)
        roll = rng.random()
        if roll < 0.35:
            out.append(
                ev.InventorySet(
                    sku=sku,
                    location=loc,
                    version=version,
                    on_hand=rng.randrange(500),
                    allocated=rng.randrange(40),
                )
            )
        elif roll < 0.8:
            out.append(
                ev.InventoryAdjust(
                    sku=sku,
                    location=loc,
                    version=version,
                    event_id=f"a{version}",
                    on_hand_delta=rng.randrange(-9, 30),
                )
            )
        else:
            tiers = ((0, rng.randrange(1, 10**7)), (24, rng.randrange(1, 10**7)))
            out.append(
                ev.PriceSet(
                    price_list="LIST", currency="USD", sku=sku, version=version, tiers=tiers
                )
            )
    return out


def _stream_of(event: Any) -> str:
    return "pricing" if type(event).__name__ == "PriceSet" else "inventory"


def _serve(root: Path, redis_url: str) -> Spawned:
    return spawn(
        ["--snapshot", str(root), "--snapshot-dir", str(root), "--redis-url", redis_url,
         "--stream-prefix", PREFIX, "--port", "0", "--checkpoint-seconds", "0.2",
         "--checkpoint-events", "50", "--grace", "1"]
    )  # fmt: skip


@pytest.mark.timeout(900)
def test_sigkill_at_random_points_then_restart_loses_and_doubles_nothing(tmp_path: Path) -> None:
    points = int(os.environ.get("PACACHE_CRASH_POINTS", "30"))
    rng = random.Random(2024)
    redis_proc = RedisProcess(tmp_path / "redis").start()
    root = tmp_path / "snapshots"
    snapshot.write(State(), root)
    client = redis_proc.client()
    published: list[Any] = []
    version = 1

    def publish(events: list[Any]) -> None:
        pipe = client.pipeline(transaction=False)
        for start in range(0, len(events), 5):
            chunk = events[start : start + 5]
            by_stream: dict[str, list[Any]] = {}
            for event in chunk:
                by_stream.setdefault(_stream_of(event), []).append(event)
            for stream, part in by_stream.items():
                pipe.xadd(f"{PREFIX}:{stream}", {FIELD: encode(part)})
        pipe.execute()
        published.extend(events)

    try:
        client.xadd(f"{PREFIX}:master", {FIELD: encode(_master())})
        published.extend(_master())
        for _ in range(points):
            server = _serve(root, redis_proc.url)
            chunk = _changes(rng, version, rng.randrange(20, 120))
            version += len(chunk)
            publish(chunk)
            if rng.random() < 0.3:  # replays of already-published entries
                publish(rng.sample(chunk, min(10, len(chunk))))
            time.sleep(rng.uniform(0.0, 0.4))
            server.stop(10, kill=True)
        server = _serve(root, redis_proc.url)
        try:
            last_ids = {
                f"{PREFIX}:{s}": client.xinfo_stream(f"{PREFIX}:{s}")["last-generated-id"].decode()
                for s in ("master", "inventory", "pricing")
            }
            with Client(server.target) as rpc:
                deadline = time.monotonic() + 30
                while True:
                    stats = rpc.stats()
                    if all(stats.as_of.stream_ids.get(k) == v for k, v in last_ids.items()):
                        break
                    assert time.monotonic() < deadline, f"not caught up: {stats.as_of}"
                    time.sleep(0.05)
                response, _ = rpc.quote("ACME", [(sku, 1) for sku in SKUS], locations=LOCATIONS)
            served = (
                list(response.availability.available),
                list(response.prices.unit_price_micros),
            )
        finally:
            server.stop()
    finally:
        redis_proc.stop()

    reference = State()
    apply_batch(reference, published)
    expected = quote(reference, account="ACME", skus=SKUS, qty=np.ones(len(SKUS), np.int64),
                     pricing_date=20_000, locations=LOCATIONS)  # fmt: skip
    assert expected.shown_available is not None and expected.prices is not None
    assert served[0] == expected.shown_available.ravel().tolist()
    assert served[1] == expected.prices.unit_price_micros.tolist()
