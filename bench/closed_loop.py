"""Closed-loop load: N calls in flight on one grpc.aio channel, for a fixed time.

Used where the question is "what does a call cost the server" (CPU per call, aio vs
sync); open-loop latency under a target rate lives in the benchmark suite proper.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

__all__ = ["LoadResult", "run_closed_loop"]


@dataclass(frozen=True, slots=True)
class LoadResult:
    calls: int
    errors: int
    seconds: float
    latencies_us: np.ndarray[Any, Any]
    server_cpu_s: float  # CPU the server used during the measured window (nan: unknown)

    @property
    def server_cpu_us_per_call(self) -> float:
        return self.server_cpu_s * 1e6 / max(self.calls, 1)

    @property
    def throughput(self) -> float:
        return self.calls / self.seconds

    def percentile_ms(self, q: float) -> float:
        if self.latencies_us.size == 0:
            return float("nan")
        return float(np.percentile(self.latencies_us, q)) / 1000


async def _closed_loop(
    target: str,
    call: Callable[[grpc.aio.Channel], Callable[..., Any]],
    requests: Sequence[Any],
    concurrency: int,
    seconds: float,
    channels: int,
    server_cpu: Callable[[], float] | None,
) -> LoadResult:
    # each channel gets its own connection (no global subchannel sharing), so a server
    # with several SO_REUSEPORT workers sees several connections to spread
    options = [("grpc.use_local_subchannel_pool", 1)]
    pool = [grpc.aio.insecure_channel(target, options=options) for _ in range(channels)]
    methods = [call(channel) for channel in pool]
    latencies: list[int] = []
    errors = 0
    stop_at = 0.0

    async def worker(index: int) -> None:
        nonlocal errors
        method = methods[index % len(methods)]
        i = index
        while time.perf_counter() < stop_at:
            request = requests[i % len(requests)]
            i += concurrency
            started = time.perf_counter_ns()
            try:
                await method(request, timeout=10)
            except grpc.aio.AioRpcError:
                errors += 1
                continue
            latencies.append((time.perf_counter_ns() - started) // 1000)

    # warm up connections and caches, then measure
    stop_at = time.perf_counter() + min(1.0, seconds / 3)
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    latencies.clear()
    errors = 0
    cpu_before = server_cpu() if server_cpu else float("nan")
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = (server_cpu() - cpu_before) if server_cpu else float("nan")
    for channel in pool:
        await channel.close()
    return LoadResult(len(latencies), errors, elapsed, np.array(latencies, dtype=np.int64), cpu)


def run_closed_loop(
    target: str,
    call: Callable[[grpc.aio.Channel], Callable[..., Any]],
    requests: Sequence[Any],
    *,
    concurrency: int = 8,
    seconds: float = 5.0,
    channels: int = 1,
    server_cpu: Callable[[], float] | None = None,
) -> LoadResult:
    """Drive ``call(channel)(request)`` with ``concurrency`` calls in flight; with
    ``server_cpu`` (seconds used so far by the server), also the server's CPU per call."""
    return asyncio.run(
        _closed_loop(target, call, requests, concurrency, seconds, channels, server_cpu)
    )
