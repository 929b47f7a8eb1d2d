"""A real ``pacache serve`` process on 127.0.0.1 port 0, and a client for it.

Each test gets its own server process serving a snapshot of a small test world, so tests
never share state and talk to the server only through a real channel
(``server.client.Client``), as a portal would.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.procstat import children
from engine import events as ev
from engine import snapshot
from engine.deltas import apply_batch
from engine.state import State
from server.client import Client
from server.spawn import Spawned, spawn

TODAY = dt.datetime.now(dt.UTC).date()


def world() -> list[Any]:
    """A small distributor: two warehouses, a few items, an account tree, one contract."""
    later = TODAY + dt.timedelta(days=7)
    return [
        ev.LocationUpsert(location="DAL", version=1),
        ev.LocationUpsert(location="ATL", version=1),
        ev.RegionUpsert(region="SOUTH", locations=("DAL", "ATL"), version=1),
        ev.ProductGroupUpsert(product_group="FASTENERS", version=1),
        ev.ItemUpsert(
            sku="BOLT-M8", version=1, uoms={"BX": 100}, product_group="FASTENERS",
            order_multiple=1, lead_time_days=10,
        ),
        ev.ItemUpsert(sku="NUT-M8", version=1, uoms={"BX": 100}, product_group="FASTENERS"),
        ev.ItemUpsert(sku="OLD-1", version=1, status="BLOCKED"),
        ev.AccountUpsert(account="ACME", version=1, price_groups=("GOLD",)),
        ev.AccountUpsert(account="ACME-EAST", parent="ACME", version=1),
        ev.AccountUpsert(account="OTHER", version=1),
        ev.PriceSet(price_list="LIST", currency="USD", sku="BOLT-M8", version=1,
                    tiers=((0, 250_000), (100, 200_000))),
        ev.PriceSet(price_list="LIST", currency="USD", sku="NUT-M8", version=1,
                    tiers=((0, 100_000),)),
        ev.ContractUpsert(contract="ACME-2025", accounts=("ACME",), priority=10, version=1),
        ev.ContractLineSet(contract="ACME-2025", sku="BOLT-M8", kind="NET", version=1,
                           tiers=((0, 180_000),)),
        ev.InventorySet(sku="BOLT-M8", location="DAL", on_hand=500, allocated=20, version=1),
        ev.InventorySet(sku="BOLT-M8", location="ATL", on_hand=40, version=1),
        ev.InventorySet(sku="NUT-M8", location="ATL", on_hand=1000, version=1),
        ev.InboundSet(sku="NUT-M8", location="DAL", receipts=((later, 300),), version=1),
    ]  # fmt: skip


def world_state() -> State:
    state = State()
    result = apply_batch(state, world())
    assert not result.rejected, result.rejected
    return state


Running = Spawned
#: channel options that give a client a TCP connection of its own: with SO_REUSEPORT
#: workers, a new connection may land on another worker
OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)


def worker_pids(running: Spawned, tries: int = 40) -> set[int]:
    """The pids of the workers that answer on fresh connections."""
    seen = set()
    for _ in range(tries):
        with Client(running.target, options=OWN_CONNECTION, timeout=5) as client:
            seen.add(int(client.stats().counts["pid"]))
    return seen


def writer_pid(running: Spawned) -> int:
    """The supervisor's child that is not one of the workers."""
    workers = worker_pids(running)
    return next(p for p in children(running.process.pid) if p not in workers)


def start_server(
    tmp: Path, *extra: str, state: State | None = None, env: dict[str, str] | None = None
) -> Spawned:
    """Write ``state`` (default: :func:`world_state`) as a snapshot and serve it, with a
    ``--snapshot-dir`` of its own (so changes are durable and accepted) unless ``extra``
    names one, or ``--no-snapshot-dir`` asks for none."""
    root = tmp / "snapshots"
    snapshot.write(state if state is not None else world_state(), root)
    flags = [flag for flag in extra if flag != "--no-snapshot-dir"]
    if "--snapshot-dir" not in flags and "--no-snapshot-dir" not in extra:
        flags += ["--snapshot-dir", str(tmp / "data")]
    running = spawn(["--snapshot", str(root), "--port", "0", "--grace", "5", *flags], env=env)
    _started.append(running)
    return running


_started: list[Spawned] = []


@pytest.fixture(autouse=True)
def _stop_what_the_test_left_running() -> Iterator[None]:
    """A test that fails before its own ``stop()`` must not leave a server (a supervisor,
    its writer and workers, their shared memory) running after the session."""
    yield
    while _started:
        running = _started.pop()
        if running.process.poll() is None:
            try:
                running.stop(timeout=30)
            except subprocess.TimeoutExpired:
                running.stop(kill=True)


@pytest.fixture(params=["0", "2"], ids=["one-process", "two-workers"])
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Running]:
    """The API tests run against both shapes of the server: everything in one process
    (``--workers 0``) and a writer with two gRPC workers over shared memory."""
    running = start_server(
        tmp_path, "--workers", request.param, "--snapshot-dir", str(tmp_path / "admin-snapshots")
    )
    yield running
    running.stop()


@pytest.fixture
def client(served: Running) -> Iterator[Client]:
    with served.client() as c:
        yield c


TOKENS = {
    "tokens": [
        {"token": "portal", "name": "portal", "scopes": ["read"], "accounts": ["ACME"]},
        {"token": "loader", "name": "loader", "scopes": ["ingest"]},
        {"token": "ops", "name": "ops", "scopes": ["read", "admin"], "accounts": ["*"]},
    ]
}


@pytest.fixture
def served_with_auth(tmp_path: Path) -> Iterator[Running]:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(TOKENS))
    running = start_server(tmp_path, "--auth", str(path))
    yield running
    running.stop()
