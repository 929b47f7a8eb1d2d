"""DESIGN §9 through real processes: one writer, two gRPC workers on one port, one state.

Each test starts ``pacache serve --workers 2`` and reaches both workers by opening several
channels, each with its own connection (``grpc.use_local_subchannel_pool``), which the
kernel spreads across the workers' SO_REUSEPORT sockets; Admin Stats tells which worker
(by pid) a channel landed on.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.procstat import children
from engine import events as ev
from loaders.events import encode
from server._proto.pacache.v1 import pacache_pb2 as pb
from server.client import Client
from server.spawn import Spawned
from tests.e2e.conftest import (
    OWN_CONNECTION,
    start_server,
    worker_pids,
    world_state,
    writer_pid,
)
from tests.redis_process import RedisProcess

FLIP_SKUS = [f"FLIP-{i:03d}" for i in range(150)]
_worker_pids = worker_pids
_writer_pid = writer_pid


def _worker_clients(running: Spawned, tries: int = 60) -> dict[int, Client]:
    """One client per worker (pid → client), found by opening channels until both answer."""
    found: dict[int, Client] = {}
    for _ in range(tries):
        client = Client(running.target, options=OWN_CONNECTION)
        pid = int(client.stats().counts["pid"])
        if pid in found:
            client.close()
        else:
            found[pid] = client
        if len(found) == 2:
            return found
    raise AssertionError(f"reached only workers {sorted(found)} over {tries} connections")


def _flip_world_state():
    from engine.deltas import apply_batch

    state = world_state()
    events = [ev.ItemUpsert(sku=sku, version=1) for sku in FLIP_SKUS]
    events += [
        ev.PriceSet(price_list="LIST", currency="USD", sku=sku, version=1, tiers=((0, 1_000_000),))
        for sku in FLIP_SKUS
    ]
    events += [
        ev.InventorySet(sku=sku, location="DAL", on_hand=100, version=1) for sku in FLIP_SKUS
    ]
    assert not apply_batch(state, events).rejected
    return state


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[Spawned]:
    running = start_server(tmp_path, "--workers", "2", state=_flip_world_state())
    yield running
    running.stop()


def test_two_workers_serve_one_port_with_no_copy_of_the_state(two_workers: Spawned) -> None:
    clients = _worker_clients(two_workers)
    try:
        assert len(clients) == 2
        versions = {c.stats().as_of.version for c in clients.values()}
        assert len(versions) == 1  # one state, one version, whichever worker answers
        assert set(clients) <= set(children(two_workers.process.pid))
    finally:
        for c in clients.values():
            c.close()


def test_an_ingested_change_is_visible_from_every_worker_under_min_version(
    two_workers: Spawned,
) -> None:
    clients = _worker_clients(two_workers)
    try:
        first, second = clients.values()
        for version, (writer_side, other) in enumerate([(first, second), (second, first)], 2):
            change = ev.InventorySet(sku="NUT-M8", location="DAL", on_hand=version, version=version)
            ingested = writer_side.ingest([encode([change])])
            assert ingested.accepted == 1
            for client in (writer_side, other):
                answer, (line,) = client.quote(
                    "ACME", [("NUT-M8", 1)], locations=["DAL"], min_version=ingested.as_of.version
                )
                assert line.available == {"DAL": version}
                assert answer.as_of.version >= ingested.as_of.version
    finally:
        for c in clients.values():
            c.close()


def test_readers_never_see_a_batch_half_applied_while_a_writer_flips_150_skus(
    two_workers: Spawned,
) -> None:
    """Torn-read check: each Ingest sets every FLIP SKU to state A (stock 7, 2.00) or B (stock
    9, 3.00); any quote mixing the two would show more than one (stock, price) pair."""
    clients = _worker_clients(two_workers)
    stop = threading.Event()
    seen: dict[int, list[tuple[int, int, int]]] = {pid: [] for pid in clients}
    errors: list[BaseException] = []

    def read(pid: int, client: Client) -> None:
        lines = [(sku, 1) for sku in FLIP_SKUS]
        try:
            while not stop.is_set():
                answer, quoted = client.quote("ACME", lines, locations=["DAL"])
                pairs = {(r.available["DAL"], r.unit_price_micros) for r in quoted}
                seen[pid].append((answer.as_of.version, len(pairs), len(quoted)))
        except BaseException as error:  # surfaced below
            errors.append(error)

    readers = [threading.Thread(target=read, args=item) for item in clients.items()]
    for thread in readers:
        thread.start()
    flips = 0
    try:
        with Client(two_workers.target, options=OWN_CONNECTION) as writer_side:
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:
                a = flips % 2 == 0
                version = 10 + flips
                events = [
                    ev.InventorySet(sku=s, location="DAL", on_hand=7 if a else 9, version=version)
                    for s in FLIP_SKUS
                ] + [
                    ev.PriceSet(price_list="LIST", currency="USD", sku=s, version=version,
                                tiers=((0, 2_000_000 if a else 3_000_000),))
                    for s in FLIP_SKUS
                ]  # fmt: skip
                assert writer_side.ingest([encode(events)]).accepted == len(events)
                flips += 1
    finally:
        stop.set()
        for thread in readers:
            thread.join(30)
        for c in clients.values():
            c.close()
    assert not errors, errors
    assert flips >= 10
    for pid, answers in seen.items():
        assert len(answers) >= 10, f"worker {pid} answered only {len(answers)} quotes"
        assert len({version for version, _, _ in answers}) >= 3, "reads did not overlap flips"
        assert all(n == len(FLIP_SKUS) for _, _, n in answers)
        mixed = [a for a in answers if a[1] != 1]
        assert mixed == [], f"worker {pid} saw a half-applied batch: {mixed[:3]}"


def test_a_killed_worker_is_replaced_and_only_its_calls_in_flight_fail(
    two_workers: Spawned,
) -> None:
    clients = _worker_clients(two_workers)
    victim, survivor = list(clients)
    failures: list[str] = []
    calls = [0]
    stop = threading.Event()

    def keep_quoting() -> None:  # a portal opening fresh connections, as after a failover
        while not stop.is_set():
            with Client(two_workers.target, options=OWN_CONNECTION, timeout=5) as c:
                try:
                    c.quote("ACME", [("BOLT-M8", 1)])
                    calls[0] += 1
                except grpc.RpcError as error:
                    failures.append(error.code().name)

    for c in clients.values():
        c.close()
    thread = threading.Thread(target=keep_quoting)
    thread.start()
    try:
        time.sleep(0.5)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        replaced = False
        while time.monotonic() < deadline and not replaced:
            time.sleep(0.2)
            now = _worker_pids(two_workers)
            replaced = survivor in now and victim not in now and len(now) == 2
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(30)
    assert replaced, "no replacement worker answered"
    assert calls[0] > 10
    # one call at a time was in flight; a connection caught mid-handshake may fail too
    assert len(failures) <= 2, failures
    assert set(failures) <= {"UNAVAILABLE"}


def test_a_killed_writer_leaves_workers_serving_and_health_reports_the_staleness(
    tmp_path: Path,
) -> None:
    running = start_server(
        tmp_path, "--workers", "2", "--writer-restarts", "0", "--staleness-limit-s", "1"
    )
    try:
        clients = _worker_clients(running)
        before = {pid: c.quote("ACME", [("BOLT-M8", 1)]) for pid, c in clients.items()}
        os.kill(_writer_pid(running), signal.SIGKILL)
        time.sleep(2.0)
        for pid, client in clients.items():
            after = client.quote("ACME", [("BOLT-M8", 1)])
            assert after[1] == before[pid][1]  # the same answer from the last state
            assert after[0].as_of.version == before[pid][0].as_of.version
            fresh = client.freshness()
            assert fresh.writer_silence_ms >= 1000
            assert not fresh.serving
            health = health_pb2_grpc.HealthStub(client.channel)
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.RpcError) as refused:
                client.ingest([encode([ev.InventorySet(sku="NUT-M8", location="DAL",
                                                       on_hand=1, version=9)])])  # fmt: skip
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "writer" in (refused.value.details() or "")
        for c in clients.values():
            c.close()
    finally:
        assert running.stop() == 0


def test_a_restarted_writer_takes_over_and_workers_follow_it(tmp_path: Path) -> None:
    running = start_server(tmp_path, "--workers", "2", "--writer-restarts", "1")
    try:
        first = _writer_pid(running)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            try:
                with Client(running.target, options=OWN_CONNECTION, timeout=5) as client:
                    change = ev.InventorySet(sku="NUT-M8", location="DAL", on_hand=42, version=9)
                    ingested = client.ingest([encode([change])])
                    break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert _writer_pid(running) != first
        clients = _worker_clients(running)
        for client in clients.values():
            _, (line,) = client.quote(
                "ACME", [("NUT-M8", 1)], locations=["DAL"], min_version=ingested.as_of.version
            )
            assert line.available == {"DAL": 42}
            assert client.freshness().serving
            client.close()
    finally:
        assert running.stop() == 0


def test_once_a_worker_answers_from_a_restarted_writer_no_worker_answers_from_the_old_one(
    tmp_path: Path,
) -> None:
    running = start_server(tmp_path, "--workers", "2", "--writer-restarts", "1")
    clients = _worker_clients(running)
    (_, first), (late_pid, late) = clients.items()
    try:
        old = first.freshness().as_of.version
        writer = _writer_pid(running)
        # each worker reconnects to a restarted writer on its own backoff; hold one back
        # until the other has switched, as a slower reconnect would
        os.kill(late_pid, signal.SIGSTOP)
        try:
            os.kill(writer, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while (new := first.freshness().as_of.version) <= old:
                assert time.monotonic() < deadline, "the restarted writer never took over"
                time.sleep(0.05)
            # asked before it runs again: the call waits for it beside the news that its
            # writer has gone
            asked = late.admin.Freshness.future(pb.FreshnessRequest(), timeout=10)
            time.sleep(0.2)
        finally:
            os.kill(late_pid, signal.SIGCONT)
        assert asked.result().as_of.version >= new  # not the old writer's version
    finally:
        for c in clients.values():
            c.close()
        assert running.stop() == 0


def test_a_worker_replaced_while_a_restarted_writer_catches_up_serves_the_last_ready_state(
    tmp_path: Path,
) -> None:
    redis_proc = RedisProcess(tmp_path / "redis").start()
    running = start_server(tmp_path, "--workers", "2", "--writer-restarts", "1",
                           "--redis-url", redis_proc.url, "--stream-prefix", "t")  # fmt: skip
    try:
        with Client(running.target, options=OWN_CONNECTION, timeout=10) as client:
            change = ev.InventorySet(sku="NUT-M8", location="DAL", on_hand=42, version=9)
            served = client.ingest([encode([change])]).as_of.version
        workers, writer = _worker_pids(running), _writer_pid(running)
        redis_proc.stop()  # the restarted writer cannot catch up with the streams now
        os.kill(writer, signal.SIGKILL)
        time.sleep(1.0)  # it has loaded its checkpoint by now, at a version above `served`
        os.kill(next(iter(workers)), signal.SIGKILL)
        deadline = time.monotonic() + 30
        answers: dict[int, int] = {}
        while not set(answers) - workers:  # until the replacement worker has answered
            assert time.monotonic() < deadline, f"no replacement worker answered: {answers}"
            with (
                contextlib.suppress(grpc.RpcError),
                Client(running.target, options=OWN_CONNECTION, timeout=5) as client,
            ):
                stats = client.stats()
                answers[int(stats.counts["pid"])] = stats.as_of.version
        assert set(answers.values()) == {served}  # not the restarted writer's version
    finally:
        running.stop()
        redis_proc.stop()


def test_versions_published_by_restarted_writers_stay_below_a_restarted_server(
    tmp_path: Path,
) -> None:
    # writers restarted before their first batch publish the version they loaded at;
    # the whole server restarted after them must start above it
    root = tmp_path / "data"
    running = start_server(tmp_path, "--workers", "2", "--writer-restarts", "2",
                           "--snapshot-dir", str(root))  # fmt: skip
    try:
        for _ in range(2):
            with Client(running.target, options=OWN_CONNECTION, timeout=5) as client:
                before = client.freshness().as_of.version
            os.kill(_writer_pid(running), signal.SIGKILL)
            deadline = time.monotonic() + 30
            while True:
                with Client(running.target, options=OWN_CONNECTION, timeout=5) as client:
                    seen = client.freshness().as_of.version
                if seen > before:
                    break
                assert time.monotonic() < deadline, "the restarted writer never took over"
                time.sleep(0.05)
    finally:
        running.stop(kill=True)
    again = start_server(tmp_path, "--workers", "2", "--snapshot-dir", str(root))
    try:
        with Client(again.target, timeout=5) as client:
            assert client.freshness().as_of.version > seen
    finally:
        assert again.stop() == 0


def test_sigterm_drains_every_process(two_workers: Spawned) -> None:
    started = children(two_workers.process.pid)
    assert len(started) == 3  # writer + 2 workers
    assert two_workers.stop() == 0
    alive = [pid for pid in started if Path(f"/proc/{pid}").exists()]
    assert alive == []
    assert not any(re.match(rf"pacache-{two_workers.process.pid}$", p.name)
                   for p in Path("/dev/shm").iterdir())  # fmt: skip
