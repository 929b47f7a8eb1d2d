"""The load generator against fake servers on a real channel: open-loop latency counts
from the intended send time (queueing shows), and failed calls are counted by code."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc

from bench.histogram import decode, summary_ms
from bench.loadgen import LoadSpec, run_load

SERVICE_S = 0.02  # the fake server answers one Ping at a time, 20 ms each: 50 calls/s at most


async def _fake_server(handler: Any) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    methods = {"Ping": grpc.unary_unary_rpc_method_handler(handler)}  # raw bytes in and out
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("pacache.v1.AdminService", methods),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


def _slow_one_at_a_time() -> Any:
    lock = asyncio.Lock()

    async def ping(request: bytes, context: Any) -> bytes:
        async with lock:
            await asyncio.sleep(SERVICE_S)
        return b""

    return ping


def _run(handler: Any, spec_of: Any) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        server, target = await _fake_server(handler)
        try:
            return await run_load(spec_of(target), [("ping", b"")])
        finally:
            await server.stop(None)

    return asyncio.run(main())


def test_open_loop_latency_counts_queueing_from_the_intended_send_time() -> None:
    # 100 arrivals/s for 1 s at a server that does 50/s, and one call in flight at a time
    # on the client side: every call itself takes ~20 ms, but arrivals pile up behind the
    # cap, and the latency from the intended time must show that wait.
    result = _run(
        _slow_one_at_a_time(),
        lambda target: LoadSpec(
            target,
            "ping",
            "open",
            time.monotonic(),
            0.0,
            1.0,
            rate=100.0,
            channels=1,
            max_outstanding=1,
            seed=5,
        ),
    )
    latency = summary_ms(decode(result["histogram"]))
    assert latency["count"] == result["completed"] > 50
    # ~100 calls need >= 2 s of service; those intended late in the first second wait
    # about a second: far above a call's own 20 ms, whatever the machine's speed
    assert latency["max"] >= 500
    assert latency["p50"] > 5 * SERVICE_S * 1000
    # served inside the window: at most what 20 ms a call allows, not what was asked for
    assert result["finished_in_window"] <= 1.0 / SERVICE_S + 2 < result["completed"]
    # the lateness of sending is reported too, so a backlog is visible as the client's
    assert summary_ms(decode(result["late"]))["max"] >= 500


def test_closed_loop_latency_is_each_calls_own_time() -> None:
    result = _run(
        _slow_one_at_a_time(),
        lambda target: LoadSpec(
            target, "ping", "closed", time.monotonic(), 0.2, 1.0, concurrency=1, channels=1
        ),
    )
    latency = summary_ms(decode(result["histogram"]))
    assert latency["count"] == result["completed"] > 0
    assert latency["p50"] >= SERVICE_S * 1000  # no queue: one caller waits for each answer
    assert latency["p50"] <= latency["p99"] <= latency["p999"] <= latency["max"]
    assert result["errors"] == {}


def test_failed_calls_are_counted_by_status_code_and_not_as_latency() -> None:
    calls = 0

    async def every_third_fails(request: bytes, context: Any) -> bytes:
        nonlocal calls
        calls += 1
        if calls % 3 == 0:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too busy")
        return b""

    result = _run(
        every_third_fails,
        lambda target: LoadSpec(
            target, "ping", "closed", time.monotonic(), 0.1, 0.5, concurrency=2, channels=2
        ),
    )
    failed = result["errors"].get("RESOURCE_EXHAUSTED", 0)
    assert set(result["errors"]) == {"RESOURCE_EXHAUSTED"}
    assert failed > 0 and result["completed"] > 0
    assert abs(failed / (failed + result["completed"]) - 1 / 3) < 0.05
    assert summary_ms(decode(result["histogram"]))["count"] == result["completed"]
