"""Load generator processes: closed loop (N in flight) and open loop (Poisson arrivals).

What it measures: per run, call latencies into an HDR histogram (``bench.histogram``),
calls finished and errors by gRPC status code inside a measured window, and how far the
generator itself fell behind its schedule (so a saturated client is visible, not mistaken
for a slow server).

Why it looks like this:

- Load runs in separate processes (``multiprocessing`` spawn), never in the driver or the
  server under test, each with its own grpc.aio event loop (uvloop) and several channels
  with their own TCP connections (a local subchannel pool: channels to one target would
  otherwise share one connection, and ``SO_REUSEPORT`` workers would never see a second
  one). Requests and responses pass as raw bytes: the client does not parse answers, so
  its CPU goes to sending, not to protobuf.
- Closed loop: ``concurrency`` callers, each sending its next request when the previous
  answer arrives. Latency is the call's own time; a call counts when it completes inside
  the window. With ``backoff_s``, a caller whose call failed waits before its next one, as
  a well-behaved client does after RESOURCE_EXHAUSTED (gRPC's retry backoff: a random
  time up to the current backoff, which starts at ``backoff_s``, doubles with each failure
  in a row up to ``max_backoff_s`` and resets on success; seeded).
- Open loop: arrivals at a target rate with exponential gaps (a Poisson process, seeded),
  dispatched at their intended times whatever the server does. Latency is measured from
  the *intended* send time, so when the server (or the client's in-flight cap) holds calls
  back, the queueing shows in the percentiles instead of slowing the arrivals down
  (coordinated omission). A call's latency counts when its intended time is inside the
  window, and the run waits for all of those to finish; throughput counts the calls that
  finished inside the window, so a backlog answered later is not counted as served.
- Failed calls are counted by status code, and their latencies go into a histogram per
  code too: how fast a server refuses (RESOURCE_EXHAUSTED) is a figure of its own.
- All processes share one clock (``time.monotonic``, system-wide on Linux): the driver
  gives the start time, warm-up and window, and reads the server's CPU over exactly that
  window.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from bench.histogram import merge, new_histogram, summary_ms

if TYPE_CHECKING:
    from bench.mix import RequestPool

__all__ = [
    "LoadProcesses",
    "LoadSpec",
    "RunResult",
    "poisson_schedule",
    "run_load",
    "split",
]

CALL_TIMEOUT_S = 10.0
_EARLY_S = 0.0007
_START_DELAY_S = 0.5  # time for every process to receive its command before the start


def poisson_schedule(
    rate: float, seconds: float, seed: int | Sequence[int]
) -> npt.NDArray[np.float64]:
    """Intended send times (seconds from the start, ascending) of a Poisson process of
    ``rate`` calls/s over ``[0, seconds)``: exponential gaps with mean 1/rate, seeded.
    O(rate × seconds)."""
    if rate <= 0 or seconds <= 0:
        return np.zeros(0)
    rng = np.random.default_rng(seed)
    expected = rate * seconds
    # draw enough gaps in one go (mean + 6 sigma), then cut at the end of the run
    count = int(expected + 6 * np.sqrt(expected) + 16)
    times = np.cumsum(rng.exponential(1.0 / rate, count))
    while times[-1] < seconds:  # astronomically rare; keeps the schedule exact anyway
        more = times[-1] + np.cumsum(rng.exponential(1.0 / rate, count))
        times = np.concatenate([times, more])
    return times[times < seconds]


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """One run of one load process (or, before :func:`split`, of all of them)."""

    target: str
    pool: str
    mode: str  # "closed" or "open"
    start_at: float  # time.monotonic() when sending starts (warm-up first)
    warmup_s: float
    seconds: float
    concurrency: int = 0  # closed loop: calls in flight
    rate: float = 0.0  # open loop: calls/s
    channels: int = 2
    max_outstanding: int = 256  # open loop: in-flight cap; later arrivals wait (and it shows)
    seed: int = 0
    offset: int = 0  # where in the pool this process starts
    backoff_s: float = 0.0  # closed loop: first backoff after a failed call (0: none)
    max_backoff_s: float = 1.0

    @property
    def window(self) -> tuple[float, float]:
        begin = self.start_at + self.warmup_s
        return begin, begin + self.seconds


def split(spec: LoadSpec, processes: int) -> list[LoadSpec]:
    """Share a run among ``processes``: concurrency split as evenly as integers allow
    (processes with no share sit out), rate split evenly (a sum of independent Poisson
    processes is a Poisson process of the summed rate), each with its own seed and pool
    offset."""
    shares: list[LoadSpec] = []
    for index in range(processes):
        if spec.mode == "closed":
            concurrency = spec.concurrency // processes + (index < spec.concurrency % processes)
            if concurrency == 0:
                continue
            part = replace(spec, concurrency=concurrency)
        else:
            part = replace(
                spec,
                rate=spec.rate / processes,
                max_outstanding=max(1, spec.max_outstanding // processes),
            )
        shares.append(replace(part, seed=spec.seed * 1000 + index, offset=index * 7919))
    return shares


# --- one process's run -------------------------------------------------------------------


@dataclass
class _Tally:
    histogram: Any = field(default_factory=new_histogram)
    by_kind: dict[str, Any] = field(default_factory=dict)
    completed: int = 0  # successful calls whose latency is counted (see run_load)
    finished_in_window: int = 0  # successful calls that ended inside the window
    errors: dict[str, int] = field(default_factory=dict)
    error_latency: dict[str, Any] = field(default_factory=dict)  # code → histogram, µs
    late: Any = field(default_factory=new_histogram)  # open loop: dispatch lateness, µs

    def record(self, kind: str, latency_s: float) -> None:
        micros = max(1, int(latency_s * 1_000_000))
        self.histogram.record_value(micros)
        if kind not in self.by_kind:
            self.by_kind[kind] = new_histogram()
        self.by_kind[kind].record_value(micros)
        self.completed += 1

    def error(self, code: str, latency_s: float) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1
        if code not in self.error_latency:
            self.error_latency[code] = new_histogram()
        self.error_latency[code].record_value(max(1, int(latency_s * 1_000_000)))


def _methods(channel: Any) -> dict[str, Callable[..., Any]]:
    from bench.mix import KINDS  # protobuf: only in the load processes, not for the schedule

    # no serializers: the request is already bytes and the answer stays bytes; a service
    # named without a package is pacache's
    return {
        kind: channel.unary_unary(
            f"/{service if '.' in service else 'pacache.v1.' + service}/{method}"
        )
        for kind, (_, service, method) in KINDS.items()
    }


async def run_load(spec: LoadSpec, requests: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
    """Run ``spec`` from this process against ``spec.target``; the tallies of the window,
    histograms encoded."""
    import grpc

    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [
        grpc.aio.insecure_channel(spec.target, options=options) for _ in range(spec.channels)
    ]
    stubs = [_methods(channel) for channel in channels]
    tally = _Tally()
    begin, end = spec.window
    count = len(requests)
    now = time.monotonic()
    if spec.start_at > now:
        await asyncio.sleep(spec.start_at - now)
    cpu_before = time.process_time()

    async def call(index: int) -> tuple[str, str | None]:
        kind, raw = requests[(spec.offset + index) % count]
        method = stubs[index % len(stubs)][kind]
        try:
            await method(raw, timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as failure:
            return kind, failure.code().name
        return kind, None

    if spec.mode == "closed":
        backoff_rng = np.random.default_rng([spec.seed, 53])

        async def caller(first: int) -> None:
            index = first
            backoff = spec.backoff_s
            while time.monotonic() < end:
                sent = time.monotonic()
                kind, failed = await call(index)
                done = time.monotonic()
                index += spec.concurrency
                if begin <= done < end:
                    if failed:
                        tally.error(failed, done - sent)
                    else:
                        tally.record(kind, done - sent)
                        tally.finished_in_window += 1
                if not failed:
                    backoff = spec.backoff_s
                elif backoff > 0:
                    await asyncio.sleep(min(backoff_rng.uniform(0, backoff), end - done))
                    backoff = min(backoff * 2, spec.max_backoff_s)

        await asyncio.gather(*(caller(i) for i in range(spec.concurrency)))
    elif spec.mode == "open":
        arrivals = spec.start_at + poisson_schedule(
            spec.rate, spec.warmup_s + spec.seconds, [spec.seed, 97]
        )
        slots = asyncio.Semaphore(spec.max_outstanding)

        async def arrival(index: int, intended: float, sent: float) -> None:
            try:
                kind, failed = await call(index)
            finally:
                slots.release()
            done = time.monotonic()
            if begin <= done < end and not failed:
                # throughput is what the server finished inside the window: calls meant
                # for the window but answered after it (a backlog) do not count as served
                tally.finished_in_window += 1
            if begin <= intended < end:
                if failed:
                    tally.error(failed, done - min(intended, sent))
                else:
                    # from the intended time (see above), or from the actual send when the
                    # timer let it go a little early
                    tally.record(kind, done - min(intended, sent))

        tasks = []
        for index, intended in enumerate(arrivals.tolist()):
            # event-loop timers have ~1 ms granularity: wake up to _EARLY_S before the
            # intended time instead of up to 1 ms after it
            delay = intended - time.monotonic() - _EARLY_S
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            sent = time.monotonic()
            if begin <= intended < end:
                tally.late.record_value(max(1, int((sent - intended) * 1_000_000)))
            tasks.append(asyncio.create_task(arrival(index, intended, sent)))
        await asyncio.gather(*tasks)
    else:
        raise ValueError(f"unknown mode {spec.mode!r}")
    client_cpu = time.process_time() - cpu_before
    for channel in channels:
        await channel.close()
    return {
        "histogram": tally.histogram.encode(),
        "by_kind": {kind: h.encode() for kind, h in tally.by_kind.items()},
        "completed": tally.completed,
        "finished_in_window": tally.finished_in_window,
        "errors": tally.errors,
        "error_latency": {code: h.encode() for code, h in tally.error_latency.items()},
        "late": tally.late.encode(),
        "client_cpu_s": client_cpu,
        "client_wall_s": time.monotonic() - spec.start_at,
    }


def _process_main(
    pools: dict[str, tuple[tuple[str, bytes], ...]],
    commands: mp.Queue[LoadSpec | None],
    results: mp.Queue[dict[str, Any]],
) -> None:
    try:
        import uvloop

        run: Callable[[Any], Any] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency
        run = asyncio.run
    while True:
        spec = commands.get()
        if spec is None:
            return
        try:
            results.put(run(run_load(spec, pools[spec.pool])))
        except Exception as failure:  # report, never hang the driver waiting for us
            results.put({"failure": f"{type(failure).__name__}: {failure}"})


# --- the driver's side -------------------------------------------------------------------


@dataclass
class RunResult:
    """One run of all load processes, merged."""

    spec: LoadSpec
    completed: int  # calls in the latency histogram
    finished_in_window: int  # successful calls that ended inside the window
    errors: dict[str, int]
    histogram: Any
    by_kind: dict[str, Any]
    late: Any
    client_cpu_s: float
    server_cpu_s: float = float("nan")
    rss_bytes: int = 0
    error_latency: dict[str, Any] = field(default_factory=dict)  # code → histogram

    def latency_of(self, code: str) -> dict[str, Any]:
        """Latency summary of the calls that ended with status ``code`` ("OK": answered)."""
        if code == "OK":
            return summary_ms(self.histogram)
        return summary_ms(self.error_latency.get(code, new_histogram()))

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def throughput_rps(self) -> float:
        return self.finished_in_window / self.spec.seconds

    @property
    def server_cpu_us_per_call(self) -> float:
        return self.server_cpu_s * 1e6 / max(1, self.finished_in_window + self.error_count)

    def latency_ms(self) -> dict[str, Any]:
        return summary_ms(self.histogram)


class LoadProcesses:
    """``processes`` long-lived load processes holding the request pools; :meth:`run`
    sends them one run and merges what they measured."""

    def __init__(self, pools: Sequence[RequestPool], processes: int = 2) -> None:
        context = mp.get_context("spawn")  # no fork of a process holding gRPC state
        table = {pool.name: pool.requests for pool in pools}
        self.results: mp.Queue[dict[str, Any]] = context.Queue()
        self.commands: list[mp.Queue[LoadSpec | None]] = []
        self.processes: list[Any] = []
        for index in range(processes):
            commands: mp.Queue[LoadSpec | None] = context.Queue()
            process = context.Process(
                target=_process_main,
                args=(table, commands, self.results),
                name=f"pacache-load-{index}",
                daemon=True,
            )
            process.start()
            self.commands.append(commands)
            self.processes.append(process)

    def run(
        self,
        spec: LoadSpec,
        *,
        on_window_start: Callable[[], None] | None = None,
        on_window_end: Callable[[], None] | None = None,
    ) -> RunResult:
        """Run ``spec`` (its ``start_at`` is reset to shortly from now) across the
        processes; the callbacks run at the measured window's start and end (server CPU)."""
        spec = self.start(replace(spec, start_at=time.monotonic() + _START_DELAY_S))
        begin, end = spec.window
        _sleep_until(begin)
        if on_window_start:
            on_window_start()
        _sleep_until(end)
        if on_window_end:
            on_window_end()
        return self.result(spec)

    def start(self, spec: LoadSpec) -> LoadSpec:
        """Send ``spec`` (its ``start_at`` as given: several sets of load processes can
        share one window) to the processes without waiting; :meth:`result` collects it."""
        for part, commands in zip(split(spec, len(self.processes)), self.commands, strict=False):
            commands.put(part)
        return spec

    def result(self, spec: LoadSpec) -> RunResult:
        """Wait for the processes' reports of the run :meth:`start` sent, merged."""
        parts = split(spec, len(self.processes))
        replies: list[dict[str, Any]] = []
        deadline = max(time.monotonic(), spec.window[1]) + CALL_TIMEOUT_S + 30
        while len(replies) < len(parts):
            try:
                replies.append(self.results.get(timeout=max(0.1, deadline - time.monotonic())))
            except queue.Empty:
                raise RuntimeError("a load process did not report back") from None
        failures = [r["failure"] for r in replies if "failure" in r]
        if failures:
            raise RuntimeError(f"load process failed: {failures[0]}")
        errors: dict[str, int] = {}
        kinds: dict[str, list[bytes]] = {}
        codes: dict[str, list[bytes]] = {}
        for reply in replies:
            for code, n in reply["errors"].items():
                errors[code] = errors.get(code, 0) + n
            for kind, encoded in reply["by_kind"].items():
                kinds.setdefault(kind, []).append(encoded)
            for code, encoded in reply["error_latency"].items():
                codes.setdefault(code, []).append(encoded)
        return RunResult(
            spec=spec,
            completed=sum(r["completed"] for r in replies),
            finished_in_window=sum(r["finished_in_window"] for r in replies),
            errors=errors,
            histogram=merge(r["histogram"] for r in replies),
            by_kind={kind: merge(encoded) for kind, encoded in kinds.items()},
            late=merge(r["late"] for r in replies),
            client_cpu_s=sum(r["client_cpu_s"] for r in replies),
            error_latency={code: merge(encoded) for code, encoded in codes.items()},
        )

    def close(self) -> None:
        for commands in self.commands:
            with contextlib.suppress(ValueError, OSError):  # a queue already closed
                commands.put(None)
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.terminate()
                process.join(5)

    def __enter__(self) -> LoadProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)
