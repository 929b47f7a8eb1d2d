"""The integrity findings, one test each, against a real server as a user (or a hostile
caller) meets it: poison stream entries, acknowledged changes surviving a SIGKILL, reads
that must not grow the state, holds per account, versions that never go back, and the
smaller points (unknown accounts and currencies, strict dates, short error messages,
start-up flag errors). Overload has its own tests (``test_overload``); random and
mutated bytes at every method are the fuzz suite's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from engine import events as ev
from loaders.events import encode
from loaders.stream_writer import FIELD
from server._proto.pacache.v1 import pacache_pb2 as pb
from server.client import Client, quote_lines
from server.spawn import REPO
from tests.e2e.conftest import TOKENS, Running, start_server, writer_pid
from tests.redis_process import RedisProcess

SKUS = ("BOLT-M8", "NUT-M8")


@pytest.fixture
def redis_proc(tmp_path: Path) -> Iterator[RedisProcess]:
    process = RedisProcess(tmp_path / "redis").start()
    yield process
    process.stop()


def _code(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    try:
        call()
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


def _wait(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _on_hand(client: Client, sku: str, location: str, **kwargs: Any) -> int:
    _, rows = client.quote("ACME", [(sku, 1)], locations=[location], **kwargs)
    return rows[0].available.get(location, 0)


# -- finding 1: one malformed entry stops every stream, silently, for good -----------------


@pytest.mark.parametrize("workers", ["2"])
def test_poison_entries_are_dead_lettered_and_every_stream_keeps_applying(
    tmp_path: Path, redis_proc: RedisProcess, workers: str
) -> None:
    redis = redis_proc.client()
    poison = [b"{bad json", b"[" * 5_000, b"[{", b"\xc1\xc1\xc1"]
    running = start_server(
        tmp_path, "--redis-url", redis_proc.url, "--stream-prefix", "p", "--workers", workers
    )
    try:
        set_ = ev.InventorySet(sku="NUT-M8", location="DAL", on_hand=11, version=100)
        redis.xadd("p:inventory", {FIELD: encode([set_])})
        bad_ids = [redis.xadd("p:inventory", {FIELD: body}).decode() for body in poison]
        later = ev.InventorySet(sku="NUT-M8", location="DAL", on_hand=22, version=101)
        redis.xadd("p:inventory", {FIELD: encode([later])})
        price = ev.PriceSet(price_list="LIST", currency="USD", sku="NUT-M8", version=100,
                            tiers=((0, 123_000),))  # fmt: skip
        redis.xadd("p:pricing", {FIELD: encode([price])})
        item = ev.ItemUpsert(sku="NEW-1", version=1)
        last = redis.xadd("p:master", {FIELD: encode([item])}).decode()
        with running.client() as client:
            _, rows = client.quote(
                "ACME", [("NUT-M8", 1), ("NEW-1", 1)], locations=["DAL"], timeout=10,
                min_stream_ids={"p:master": last},
            )  # fmt: skip
            assert rows[0].available == {"DAL": 22}
            assert rows[0].unit_price_micros == 123_000
            assert rows[1].status != "UNKNOWN_SKU"
            # a batch's dead letters are written after its apply is published, so a quote
            # can see the batch before they land: wait for them (this raced under load)
            _wait(lambda: redis.xlen("p:dlq") >= len(poison), "the dead letters")
            dead = redis.xrange("p:dlq")
            assert sorted(fields[b"id"].decode() for _, fields in dead) == sorted(bad_ids)
            for _, fields in dead:
                assert fields[b"stream"] == b"p:inventory"
                assert fields[b"reason"] and fields[b"payload"] in poison
            streams = {s.stream: s for s in client.stats().streams}
            assert streams["p:inventory"].dead_lettered == len(poison)
            assert client.freshness().serving
    finally:
        running.stop()
    # a restart does not stall on them either: it reads past them again
    again = start_server(
        tmp_path, "--redis-url", redis_proc.url, "--stream-prefix", "p", "--workers", workers
    )
    try:
        with again.client() as client:
            assert _on_hand(client, "NUT-M8", "DAL", timeout=10) == 22
    finally:
        again.stop()


# -- finding 2: an acknowledged Ingest is lost when the writer dies -------------------------


def _hundred(base: int) -> list[Any]:
    return [
        ev.InventoryAdjust(sku=SKUS[i % 2], location=("DAL", "ATL")[i // 2 % 2],
                           event_id=f"adj-{base}-{i}", on_hand_delta=1, version=base + i)
        for i in range(100)
    ]  # fmt: skip


@pytest.mark.parametrize("with_redis", [False, True], ids=["write-ahead-log", "redis"])
def test_an_acknowledged_ingest_survives_a_sigkill_of_the_writer_and_of_the_server(
    tmp_path: Path, redis_proc: RedisProcess, with_redis: bool
) -> None:
    extra = ["--redis-url", redis_proc.url, "--stream-prefix", "i"] if with_redis else []
    flags = ["--workers", "2", "--writer-restarts", "2", "--checkpoint-seconds", "600", *extra]
    running = start_server(tmp_path, *flags)
    with running.client() as client:
        before = {(s, loc): _on_hand(client, s, loc) for s in SKUS for loc in ("DAL", "ATL")}
        acked = client.ingest([encode(_hundred(1_000))])
        assert acked.accepted == 100 and not acked.rejections
        seen = acked.as_of.version
    os.kill(writer_pid(running), signal.SIGKILL)
    with running.client() as client:
        # the restarted writer replays the log (or the stream) before the workers follow it
        _wait(lambda: client.freshness().writer_silence_ms < 500 and client.freshness().serving,
              "a restarted writer")  # fmt: skip
        after = {(s, loc): _on_hand(client, s, loc, min_version=seen, timeout=20)
                 for s in SKUS for loc in ("DAL", "ATL")}  # fmt: skip
    assert after == {key: value + 25 for key, value in before.items()}
    running.stop(kill=True)  # the whole server: supervisor, writer and workers
    again = start_server(tmp_path, *flags)
    try:
        with again.client() as client:
            restarted = {(s, loc): _on_hand(client, s, loc) for s in SKUS for loc in ("DAL", "ATL")}
            assert restarted == after  # nothing lost, nothing applied twice
            assert client.freshness().as_of.version > seen
    finally:
        again.stop()


def test_without_redis_checkpoints_run_on_their_timer_and_cover_the_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    running = start_server(tmp_path, "--workers", "0", "--snapshot-dir", str(data),
                           "--checkpoint-seconds", "1")  # fmt: skip
    try:
        with running.client() as client:
            client.ingest([encode(_hundred(2_000))])
        _wait(lambda: any(p.name.startswith("v") for p in data.iterdir()), "a checkpoint", 15)
    finally:
        running.stop()


def test_without_a_durable_place_changes_are_refused_not_acknowledged(tmp_path: Path) -> None:
    running = start_server(tmp_path, "--workers", "0", "--no-snapshot-dir")
    try:
        with running.client() as client:
            code, details = _code(lambda: client.ingest([encode(_hundred(3_000))]))
            assert code == grpc.StatusCode.FAILED_PRECONDITION
            assert "--snapshot-dir" in details and "--redis-url" in details
            assert _on_hand(client, "NUT-M8", "ATL") == 1000  # nothing was applied
    finally:
        running.stop()


# -- finding 3: a read-scope Reserve grows and corrupts the shared state --------------------


def _reserve(client: Client, account: str, key: str, lines: list[tuple[str, str, int]],
             **kwargs: Any) -> pb.ReserveResponse:  # fmt: skip
    request = pb.ReserveRequest(account=account, hold_key=key, ttl_ms=60_000)
    for sku, location, qty in lines:
        request.lines.add(sku=sku, location=location, quantity=qty)
    return client.reserve(request, **kwargs)


def test_a_reserve_naming_unknown_skus_or_locations_is_not_found_and_grows_nothing(
    tmp_path: Path,
) -> None:
    running = start_server(tmp_path, "--workers", "2")
    try:
        with running.client() as client:
            counts = dict(client.stats().counts)
            junk = [(f"JUNK-{i:05d}", "DAL", 1) for i in range(5_000)]
            code, details = _code(lambda: _reserve(client, "ACME", "k1", junk))
            assert code == grpc.StatusCode.NOT_FOUND and "lines[0].sku" in details
            code, details = _code(
                lambda: _reserve(client, "ACME", "k2", [("NUT-M8", "NOWHERE", 1)])
            )
            assert code == grpc.StatusCode.NOT_FOUND and "lines[0].location" in details
            after = client.stats().counts
            for table in ("skus", "locations", "holds_active"):
                assert after[table] == counts[table], table
            _, rows = client.quote("ACME", [("JUNK-00001", 1)])
            assert rows[0].status == "UNKNOWN_SKU"
    finally:
        running.stop()


def test_the_location_dimension_stops_at_its_limit_with_a_reason_and_answers_stay_steady(
    tmp_path: Path,
) -> None:
    running = start_server(tmp_path, "--workers", "2")
    try:
        with running.client() as client:
            existing = int(client.stats().counts["locations"])
            fresh = [ev.LocationUpsert(location=f"L{i:05d}", version=1)
                     for i in range(4_096 - existing + 1)]  # fmt: skip
            response = client.ingest([encode(fresh)])
            assert response.accepted == len(fresh) - 1
            [rejection] = response.rejections
            assert rejection.index == len(fresh) - 1 and "4096" in rejection.reason
            stock = ev.InventorySet(sku="NUT-M8", location="L00010", on_hand=999, version=7)
            version = client.ingest([encode([stock])]).as_of.version
            answers = {
                (_on_hand(client, "NUT-M8", "L00010", min_version=version),
                 _on_hand(client, "BOLT-M8", "DAL"), client.stats().counts["holds_active"])
                for _ in range(20)
            }  # fmt: skip
            assert answers == {(999, 480, 0)}  # both left-right instances answer alike
    finally:
        running.stop()


# -- finding 4: holds are not tied to accounts ---------------------------------------------


def test_another_account_can_neither_find_nor_release_a_hold_by_its_key(tmp_path: Path) -> None:
    tokens = {"tokens": [*TOKENS["tokens"],
                         {"token": "rival", "name": "rival", "scopes": ["read"],
                          "accounts": ["OTHER"]}]}  # fmt: skip
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(tokens))
    running = start_server(tmp_path, "--auth", str(path), "--workers", "2")
    try:
        with running.client(token="portal") as acme, running.client(token="rival") as rival:
            placed = _reserve(acme, "ACME", "order-77", [("BOLT-M8", "DAL", 5)])
            assert placed.active
            code, _ = _code(
                lambda: rival.release(pb.ReleaseRequest(account="OTHER", hold_key="order-77"))
            )
            assert code == grpc.StatusCode.NOT_FOUND  # as for a key nobody used
            code, _ = _code(
                lambda: rival.release(pb.ReleaseRequest(account="OTHER", hold_key="never-used"))
            )
            assert code == grpc.StatusCode.NOT_FOUND
            own = _reserve(rival, "OTHER", "order-77", [("NUT-M8", "ATL", 3)])  # other lines
            assert own.active and list(own.shortfall) == [0]
            code, _ = _code(lambda: _reserve(rival, "ACME", "order-77", [("BOLT-M8", "DAL", 5)]))
            assert code == grpc.StatusCode.PERMISSION_DENIED
            again = _reserve(acme, "ACME", "order-77", [("BOLT-M8", "DAL", 5)])
            assert again.active and again.expires_at_ms == placed.expires_at_ms
            assert acme.release(pb.ReleaseRequest(account="ACME", hold_key="order-77")).released
            assert rival.release(pb.ReleaseRequest(account="OTHER", hold_key="order-77")).released
    finally:
        running.stop()


# -- finding 5: as_of.version goes backwards after a writer restart ------------------------


def test_versions_never_go_back_across_writer_and_server_restarts(tmp_path: Path) -> None:
    flags = ["--workers", "2", "--writer-restarts", "2", "--checkpoint-seconds", "0.5"]
    running = start_server(tmp_path, *flags)
    seen = 0
    with running.client() as client:
        for round_ in range(3):
            change = ev.InventorySet(
                sku="NUT-M8", location="DAL", on_hand=round_, version=10 + round_
            )
            seen = max(seen, client.ingest([encode([change])]).as_of.version)
            time.sleep(0.3)
        seen = max(seen, client.freshness().as_of.version)
    os.kill(writer_pid(running), signal.SIGKILL)
    with running.client() as client:
        versions = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            versions.append(client.freshness().as_of.version)
            if client.freshness().writer_silence_ms < 300 and len(versions) > 20:
                break
            time.sleep(0.02)
        assert min(versions) >= seen
        assert versions == sorted(versions)
        seen = max(versions)
    running.stop(kill=True)
    again = start_server(tmp_path, *flags)
    try:
        with again.client() as client:
            assert client.freshness().as_of.version > seen
            assert _on_hand(client, "NUT-M8", "DAL") == 2
    finally:
        again.stop()


# -- finding 7: UNKNOWN instead of a client error -------------------------------------------


def test_undecodable_requests_and_hostile_values_are_client_errors_not_unknown(
    served: Running,
) -> None:
    with served.client() as client:
        channel = client.channel
        raw = channel.unary_unary("/pacache.v1.PriceAvailabilityService/Quote")
        code, details = _code(lambda: raw(b"\x0a\xff\xff\xff\xff\x0f", timeout=5))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "request" in details
        stream = channel.stream_stream("/pacache.v1.PriceAvailabilityService/QuoteStream")
        code, _ = _code(lambda: list(stream(iter([b"\x0a\x05abc"]), timeout=5)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        ingest = channel.stream_unary("/pacache.v1.IngestService/Ingest")
        code, _ = _code(lambda: ingest(iter([b"\x0a\xff\xff\xff\x7f"]), timeout=5))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        deep = b"[" * 10_000 + b"]" * 10_000
        huge = json.dumps([{"type": "InventorySet", "sku": "NUT-M8", "location": "DAL",
                            "version": 5, "on_hand": 2**64}]).encode()  # fmt: skip
        answer = client.ingest([b"{bad", deep, huge], json=True)
        assert answer.accepted == 0
        assert sorted(r.index for r in answer.rejections) == [0, 1, 2]
        assert all(len(r.reason) <= 300 for r in answer.rejections)
        code, details = _code(
            lambda: client.reserve(
                pb.ReserveRequest(
                    account="ACME",
                    hold_key="big",
                    ttl_ms=1_000,
                    lines=[pb.ReserveLine(sku="BOLT-M8", location="DAL", quantity=2**62, uom="BX")],
                )
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "lines[0].quantity" in details
        # quantities at the int64 ends (the largest in BX would overflow its base units) and
        # a line_id of NULs are the lines' business, not the call's
        _, rows = client.quote("ACME", [("BOLT-M8", 2**63 - 1, "BX"), ("BOLT-M8", -(2**63)),
                                        ("BOLT-M8", 1, "", "\x00" * 64)])  # fmt: skip
        assert [r.status for r in rows] == ["QTY_OUT_OF_RANGE", "QTY_OUT_OF_RANGE", "OK"]
        assert rows[2].line_id == "\x00" * 64


# -- finding 8: the smaller points --------------------------------------------------------


def test_unknown_accounts_are_not_found_on_every_call(served: Running) -> None:
    lines = quote_lines([("BOLT-M8", 1)])
    with served.client() as client:
        calls = {
            "Quote": lambda: client.quote_raw(pb.QuoteRequest(account="NOBODY", lines=lines)),
            "Promise": lambda: client.promise(pb.PromiseRequest(account="NOBODY", lines=lines)),
            "Reserve": lambda: _reserve(client, "NOBODY", "k", [("BOLT-M8", "DAL", 1)]),
            "Release": lambda: client.release(pb.ReleaseRequest(account="NOBODY", hold_key="k")),
            "Watch": lambda: next(iter(client.watch(
                pb.WatchAvailabilityRequest(account="NOBODY", skus=["BOLT-M8"]), timeout=5))),
        }  # fmt: skip
        for name, call in calls.items():
            code, details = _code(call)
            assert code == grpc.StatusCode.NOT_FOUND and "account" in details, name


@pytest.mark.parametrize("currency", ["XXX", "usd", "EURO", "US$"])
def test_a_currency_that_is_not_iso_4217_is_invalid_argument(
    served: Running, currency: str
) -> None:
    request = pb.QuoteRequest(account="ACME", currency=currency,
                              lines=quote_lines([("BOLT-M8", 1)]))  # fmt: skip
    with served.client() as client:
        code, details = _code(lambda: client.quote_raw(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("currency")


@pytest.mark.parametrize("text", ["20250301", "2025-W10-1", "2025-3-3", "2025-03-03T00:00"])
def test_dates_are_yyyy_mm_dd_only(served: Running, text: str) -> None:
    request = pb.QuoteRequest(account="ACME", pricing_date=text,
                              lines=quote_lines([("BOLT-M8", 1)]))  # fmt: skip
    with served.client() as client:
        code, details = _code(lambda: client.quote_raw(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("pricing_date") and "YYYY-MM-DD" in details


def test_a_megabyte_of_bad_value_is_quoted_in_at_most_64_characters(served: Running) -> None:
    value = "Z" * 1_000_000
    with served.client() as client:
        for call in (
            lambda: client.quote_raw(pb.QuoteRequest(account=value,
                                                     lines=quote_lines([("BOLT-M8", 1)]))),
            lambda: client.quote_raw(pb.QuoteRequest(account="ACME", pricing_date=value,
                                                     lines=quote_lines([("BOLT-M8", 1)]))),
            lambda: client.quote_raw(pb.QuoteRequest(account="ACME", region=value,
                                                     lines=quote_lines([("BOLT-M8", 1)]))),
        ):  # fmt: skip
            code, details = _code(call)
            assert code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
            assert "Z" * 65 not in details and len(details) < 300


def _serve_and_fail(*flags: str) -> tuple[int, str]:
    """Run ``pacache serve`` expecting it to refuse to start; its exit code and stderr."""
    process = subprocess.run(
        [sys.executable, "-m", "server.serve", *flags],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    return process.returncode, process.stderr


def test_start_up_refuses_incomplete_tls_and_a_busy_port_and_warns_about_auth_without_tls(
    tmp_path: Path,
) -> None:
    snapshot_root = tmp_path / "snapshots"
    running = start_server(tmp_path, "--workers", "2")
    try:
        code, stderr = _serve_and_fail("--snapshot", str(snapshot_root),
                                       "--port", str(running.port))  # fmt: skip
        assert code != 0 and "already in use" in stderr
        code, stderr = _serve_and_fail("--snapshot", str(snapshot_root), "--port", "0",
                                       "--tls-cert", str(snapshot_root))  # fmt: skip
        assert code == 2 and "--tls-cert without --tls-key" in stderr
    finally:
        running.stop()
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps(TOKENS))
    spawned = subprocess.Popen(
        [sys.executable, "-m", "server.serve", "--snapshot", str(snapshot_root), "--port", "0",
         "--auth", str(tokens), "--workers", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert spawned.stdout is not None and spawned.stderr is not None
    for line in spawned.stdout:
        if "serving on" in line:
            break
    spawned.send_signal(signal.SIGTERM)
    _, stderr = spawned.communicate(timeout=30)
    assert "AUTH WITHOUT TLS" in stderr
