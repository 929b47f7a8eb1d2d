"""``pacache bench``: pacache against the same work served with Redis, PostgreSQL and plain
Python, and against its own framework floor, in one run on one machine.

What it measures, per system: throughput, latency p50/p90/p99/p99.9 (HDR histograms
merged from the load processes), server CPU per call (/proc, the measured window only,
the server process and its descendants), RSS and error counts, for the request mix of
``bench.mix`` (80% Quote, 10% GetAvailability, 10% Promise, carts shaped as DESIGN §10),
driven by ``bench.loadgen`` processes separate from the server. Then:

- **throughput at p99 ≤ 10 ms** (:func:`measure_system`): a closed-loop concurrency sweep
  (ascending; it stops once p99 is past the bound and more callers no longer add
  throughput) gives the best throughput whose p99 ≤ 10 ms; an open-loop run (Poisson
  arrivals, latency from the intended send time) at that rate checks it holds when calls
  arrive on their own schedule, then one step up (×1.25) when it does, or down (×0.7,
  ×0.5) until it does. The answer is the highest throughput an open-loop run achieved
  with p99 ≤ 10 ms and no errors; 0 when none did.
- **CPU per 50-line Quote ÷ Ping** (:func:`cpu_ratio`): closed loop, 8 in flight, on the
  pacache server: 50-line Quotes, then Admin Ping (baseline (a)).
- **freshness** (:func:`freshness_under_deltas`, with ``--deltas-rate``): a pacache server
  reading Redis Streams while a producer XADDs InventorySet events at the rate and a
  sampler times XADD → visible in a Quote (``bench.freshness``), under an open-loop mix
  at half pacache's rate at p99 ≤ 10 ms; lag over time.
- **like for like**: each baseline's answers are compared with pacache's on a sample of the
  mix (``check_same_answers``) before it is measured; a baseline that cannot run here is
  skipped with its reason.
- **profile**: when a target is missed, a pacache server under pyinstrument
  (``bench.profiled_serve``) for a short 50-line Quote load; its top frames.

``bench.report`` writes the Markdown report, plots and JSON from the dict this returns.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import queue
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.histogram import summary_ms
from bench.loadgen import LoadProcesses, LoadSpec, RunResult
from bench.machine import machine_info
from bench.mix import RequestPool, build_mix, fixed_quotes, parse_mix, ping_pool, sample
from bench.procstat import tree_cpu_seconds, tree_rss_bytes
from bench.redis_process import RedisProcess
from bench.systems import (
    BASELINES,
    Running,
    SystemUnavailable,
    pacache_arguments,
    start_baseline_system,
    start_pacache,
)

__all__ = ["P99_BOUND_MS", "TARGETS", "Options", "ensure_data", "run_suite", "summary"]

REPO = Path(__file__).resolve().parents[1]
P99_BOUND_MS = 10.0
TARGETS = {"vs_redis": 2.0, "vs_postgres": 10.0, "cpu_quote_per_ping": 1.3}
CPU_RATIO_LINES = 50
CPU_RATIO_CONCURRENCY = 8
SATURATED_GAIN = 1.05  # a sweep step adding less throughput than this is saturated


@dataclass
class Options:
    """What ``pacache bench`` was asked to do (see ``bench.cli`` for the flags)."""

    scale: str = "small"
    data: Path = REPO / ".data" / "bench"
    seconds: float = 3.0
    warmup: float = 0.5
    prime_seconds: float = 2.0  # unmeasured load before a system's first run (cold pages)
    concurrency: list[int] = field(default_factory=lambda: [1, 4, 16, 64])
    rates: list[float] = field(default_factory=list)  # open-loop rates to run as well
    systems: list[str] = field(
        default_factory=lambda: ["pacache", "ping", "redis", "postgres", "python"]
    )
    pg_url: str = "postgresql:///postgres?host=/var/run/postgresql"
    redis_url: str | None = None
    deltas_rate: float = 0.0
    mix: str = "quote=80,availability=10,promise=10"
    load_processes: int = 2
    channels: int = 2
    pool_size: int = 1024
    check_sample: int = 50
    profile_seconds: float = 3.0  # 0: never profile
    seed: int = 0
    workdir: Path | None = None  # logs and scratch files (default: a temporary directory)


# --- data ------------------------------------------------------------------------------


def ensure_data(data: Path, scale: str, log: Any = print) -> tuple[Path, Path]:
    """``data/<scale>`` (extract) and ``data/snapshots/<scale>`` (snapshot root), generated
    (seed 0) and built first when missing — the layout ``bench/micro`` uses too."""
    from engine import snapshot

    extract = data / scale
    root = data / "snapshots" / scale
    if not (extract / "extract.json").is_file():
        from bench.datagen import generate

        log(f"generating the {scale} extract into {extract}")
        generate(extract, scale, 0)
    if snapshot.latest(root) is None:
        from loaders.extract import build_snapshot

        log(f"building its snapshot under {root}")
        build_snapshot(extract, root, progress=False)
    return extract, root


# --- one system ------------------------------------------------------------------------


def _measured(
    load: LoadProcesses, system: Running, spec: LoadSpec
) -> tuple[RunResult, dict[str, Any]]:
    cpu: dict[str, float] = {}
    pids = [system.pid, *system.store_pids]

    def used() -> float:
        return sum(tree_cpu_seconds(pid) for pid in pids)

    result = load.run(
        spec,
        on_window_start=lambda: cpu.__setitem__("begin", used()),
        on_window_end=lambda: cpu.__setitem__("end", used()),
    )
    result.server_cpu_s = cpu["end"] - cpu["begin"]
    result.rss_bytes = sum(tree_rss_bytes(pid) for pid in pids)
    return result, run_record(result)


def run_record(result: RunResult) -> dict[str, Any]:
    """One run as plain data (the report's and the JSON's unit)."""
    spec = result.spec
    late = summary_ms(result.late)
    return {
        "mode": spec.mode,
        "pool": spec.pool,
        "concurrency": spec.concurrency if spec.mode == "closed" else None,
        "offered_rps": round(spec.rate, 1) if spec.mode == "open" else None,
        "seconds": spec.seconds,
        "throughput_rps": round(result.throughput_rps, 1),
        "latency_ms": result.latency_ms(),
        "by_kind_ms": {kind: summary_ms(h) for kind, h in sorted(result.by_kind.items())},
        "server_cpu_us_per_call": round(result.server_cpu_us_per_call, 1),
        "server_cpu_share_of_window": round(result.server_cpu_s / spec.seconds, 3),
        "client_cpu_share_of_window": round(result.client_cpu_s / spec.seconds, 3),
        "rss_mb": round(result.rss_bytes / 1024 / 1024, 1),
        "errors": result.error_count,
        "errors_by_code": result.errors,
        "dispatch_late_p99_ms": late["p99"] if spec.mode == "open" else None,
        "histogram": result.histogram.encode().decode("ascii"),
    }


def _passes(record: dict[str, Any]) -> bool:
    p99 = record["latency_ms"]["p99"]
    return p99 is not None and p99 <= P99_BOUND_MS and record["errors"] == 0


def measure_system(
    load: LoadProcesses, system: Running, options: Options, log: Any = print
) -> dict[str, Any]:
    """Sweep, open-loop search and the headline run of one system (see the module doc)."""
    spec = LoadSpec(
        system.target, system.pool, "closed", 0.0, options.warmup, options.seconds,
        channels=options.channels, seed=options.seed,
    )  # fmt: skip
    prime(load, system, spec, options)
    sweep: list[dict[str, Any]] = []
    for concurrency in sorted(set(options.concurrency)):
        _, record = _measured(load, system, _with(spec, concurrency=concurrency))
        sweep.append(record)
        log(f"  {system.name:10} closed c={concurrency:<4} {_line(record)}")
        previous = sweep[-2] if len(sweep) > 1 else None
        if (
            previous is not None
            and not _passes(record)
            and record["throughput_rps"] < previous["throughput_rps"] * SATURATED_GAIN
        ):
            break  # past the bound and saturated: more callers only queue
    passing = [r for r in sweep if _passes(r)]
    closed_best = max(passing, key=lambda r: r["throughput_rps"]) if passing else None

    open_runs: list[dict[str, Any]] = []

    def open_loop(rate: float) -> dict[str, Any]:
        _, record = _measured(load, system, _with(spec, mode="open", rate=rate))
        open_runs.append(record)
        log(f"  {system.name:10} open   {rate:>8.0f}/s {_line(record)}")
        return record

    for rate in options.rates:
        open_loop(rate)
    if not options.rates:
        if closed_best is not None:
            start = closed_best["throughput_rps"]
            if _passes(open_loop(start)):
                open_loop(start * 1.25)
            else:
                # p99 near the bound is noisy on a shared machine: step down further
                # rather than report 0 for a system that clearly meets it somewhere
                for factor in (0.7, 0.5, 0.35, 0.25):
                    if _passes(open_loop(start * factor)):
                        break
        else:
            # even one call at a time is over the bound: the service time alone is, so no
            # rate can meet it; two light open-loop runs confirm it (or find a rate after all)
            for factor in (0.5, 0.25):
                if _passes(open_loop(factor * sweep[0]["throughput_rps"])):
                    break
    passing_open = [r for r in open_runs if _passes(r)]
    at_bound = max(passing_open, key=lambda r: r["throughput_rps"]) if passing_open else None
    if at_bound is not None:
        headline, why = at_bound, "open loop, the most throughput with p99 ≤ 10 ms"
    elif open_runs:
        headline = min(open_runs, key=lambda r: r["latency_ms"]["p99"] or float("inf"))
        why = "open loop, the lowest p99 measured (no rate met p99 ≤ 10 ms)"
    else:
        headline, why = (
            max(sweep, key=lambda r: r["throughput_rps"]),
            "closed loop, most throughput",
        )
    c1 = sweep[0]
    note = ""
    if at_bound is None and c1["concurrency"] == 1 and not _passes(c1):
        note = (
            f"p99 {c1['latency_ms']['p99']} ms even with one call in flight: the service "
            "time alone is over the bound"
        )
    return {
        "name": system.name,
        "pool": system.pool,
        "throughput_at_p99_10ms_rps": at_bound["throughput_rps"] if at_bound else 0.0,
        "closed_loop_best_at_p99_10ms_rps": closed_best["throughput_rps"] if closed_best else 0.0,
        "max_throughput_rps": max(r["throughput_rps"] for r in sweep + open_runs),
        "headline": why,
        "headline_run": headline,
        "note": note,
        "sweep": sweep,
        "open_loop": open_runs,
    }


def prime(load: LoadProcesses, system: Running, spec: LoadSpec, options: Options) -> None:
    """Unmeasured load first: a freshly started server (a memory-mapped snapshot above all)
    pays page faults and first-call costs on its first requests, which would otherwise land
    in the first measured run (at the large scale, hundreds of ms per call)."""
    if options.prime_seconds > 0:
        load.run(_with(spec, mode="closed", concurrency=4, warmup_s=0.0,
                       seconds=options.prime_seconds))  # fmt: skip


def _with(spec: LoadSpec, **changes: Any) -> LoadSpec:
    from dataclasses import replace

    return replace(spec, **changes)


def _line(record: dict[str, Any]) -> str:
    latency = record["latency_ms"]
    return (
        f"{record['throughput_rps']:>8.0f} rps  p50 {latency['p50']} p99 {latency['p99']} "
        f"p99.9 {latency['p999']} ms  cpu {record['server_cpu_us_per_call']} µs/call  "
        f"errors {record['errors']}"
    )


# --- CPU ratio, deltas, profile ---------------------------------------------------------


def cpu_ratio(
    load: LoadProcesses,
    system: Running,
    options: Options,
    log: Any = print,
    *,
    same_load_rps: float | None = None,
    compare_layouts: bool = False,
) -> dict[str, Any]:
    """Server CPU per 50-line Quote ÷ per Admin Ping, same server, same concurrency.

    With ``compare_layouts``, also the Quote's CPU at the open-loop rate ``same_load_rps``
    (default: half this server's closed-loop Quote throughput): comparing process layouts
    (workers 1 vs 2) at the same offered load keeps a saturated machine — where more
    workers simply means more contention for 2 cores — out of the per-call cost.
    """
    spec = LoadSpec(
        system.target, f"quote{CPU_RATIO_LINES}", "closed", 0.0, options.warmup,
        options.seconds, concurrency=CPU_RATIO_CONCURRENCY, channels=options.channels,
    )  # fmt: skip
    prime(load, system, spec, options)  # its carts differ from the mix's
    _, quote = _measured(load, system, spec)
    log(f"  cpu-ratio  quote50 c=8    {_line(quote)}")
    _, ping = _measured(load, system, _with(spec, pool="ping"))
    log(f"  cpu-ratio  ping    c=8    {_line(ping)}")
    ratio = quote["server_cpu_us_per_call"] / max(ping["server_cpu_us_per_call"], 1e-9)
    out = {
        "lines": CPU_RATIO_LINES,
        "concurrency": CPU_RATIO_CONCURRENCY,
        "quote": quote,
        "ping": ping,
        "ratio": round(ratio, 2),
    }
    if compare_layouts:
        same_load_rps = same_load_rps or 0.5 * quote["throughput_rps"]
        _, at_rate = _measured(load, system, _with(spec, mode="open", rate=same_load_rps))
        log(f"  cpu-ratio  quote50 {same_load_rps:.0f}/s {_line(at_rate)}")
        out["quote_same_load"] = at_rate
        out["same_load_rps"] = round(same_load_rps, 1)
    return out


def _same_load(report: dict[str, Any]) -> float | None:
    """The open-loop Quote rate every pacache layout is compared at: half the closed-loop
    Quote throughput of the first layout measured (set once, then reused)."""
    first = next(iter(report.get("cpu_by_workers", {}).values()), None)
    return None if first is None else float(first["same_load_rps"])


def freshness_under_deltas(
    load: LoadProcesses,
    extract: Path,
    snapshot_root: Path,
    options: Options,
    workdir: Path,
    *,
    today: str | None,
    rate: float,
    log: Any = print,
) -> dict[str, Any]:
    """pacache reading Redis Streams at ``options.deltas_rate`` events/s while serving an
    open-loop mix at ``rate``: freshness (XADD → visible in Quote) and the mix's latency."""
    from bench import freshness

    helper: RedisProcess | None = None
    url = options.redis_url
    if url is None:  # a private one, never a shared Redis
        try:
            helper = RedisProcess(workdir / "redis-deltas").start()
        except RuntimeError as error:
            raise SystemUnavailable(f"deltas: {error}") from None
        url = helper.url
    prefix = f"pacache-bench-{os.getpid()}"
    stream = f"{prefix}:inventory"
    context = mp.get_context("spawn")
    stop = context.Event()
    results: Any = context.Queue()
    processes: list[Any] = []
    system: Running | None = None
    try:
        system, _ = start_pacache(
            "pacache", snapshot_root, workdir / "pacache-deltas.log", today=today,
            extra=["--redis-url", url, "--stream-prefix", prefix],
        )  # fmt: skip
        system.name = "pacache+deltas"
        mix_spec = LoadSpec(
            system.target, "mix", "open", 0.0, options.warmup, options.seconds,
            rate=rate, channels=options.channels, seed=options.seed,
        )  # fmt: skip
        prime(load, system, mix_spec, options)  # before the feed: a warm server, like the rest
        manifest = json.loads((extract / "extract.json").read_text())
        marker = freshness.pick_marker(extract, manifest["reference_date"])
        producer = context.Process(
            target=freshness.produce,
            args=(url, stream, str(extract), marker.sku, options.deltas_rate, 100,
                  options.seed, stop, results),
            name="pacache-deltas-producer", daemon=True,
        )  # fmt: skip
        producer.start()
        processes.append(producer)
        time.sleep(1.0)  # the writer settles on the feed before anything is timed
        sampler = context.Process(
            target=freshness.sample,
            args=(url, stream, system.target, marker, 0.02, 0.0, stop, results),
            name="pacache-deltas-sampler", daemon=True,
        )  # fmt: skip
        sampler.start()
        processes.append(sampler)
        _, record = _measured(load, system, mix_spec)
        log(f"  {system.name:10} open   {rate:>8.0f}/s {_line(record)}")
        stop.set()
        found: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 30
        while len(found) < len(processes) and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                item = results.get(timeout=1)
                found[item["role"]] = item
    finally:
        stop.set()
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join(5)
        if system is not None:
            system.stop()
        if helper is not None:
            helper.stop()
    sampled = found.get("sampler", {})
    produced = found.get("producer", {})
    lags_us = sampled.get("latencies_us", [])
    from bench.freshness import percentiles_ms

    freshness_ms = percentiles_ms(lags_us)
    log(
        f"  freshness  XADD→visible p50 {freshness_ms.get('p50')} p99 {freshness_ms.get('p99')}"
        f" ms ({freshness_ms.get('count', 0)} markers, {sampled.get('timeouts', 0)} timed out)"
    )
    return {
        "deltas_rate": options.deltas_rate,
        "mix_rate": round(rate, 1),
        "run": record,
        "freshness_ms": freshness_ms,
        "markers": sampled.get("markers", 0),
        "timeouts": sampled.get("timeouts", 0),
        "over_time": {
            "at_s": sampled.get("seen_at_s", []),
            "lag_ms": [round(v / 1000, 3) for v in lags_us],
        },
        "producer_events_per_s": round(produced["events"] / produced["seconds"], 1)
        if produced
        else None,
    }


def profile_pacache(
    load: LoadProcesses, snapshot_root: Path, options: Options, workdir: Path, today: str | None
) -> dict[str, Any]:
    """pacache under pyinstrument for ``options.profile_seconds`` of 50-line Quotes."""
    from bench.profiled_serve import top_frames

    out = workdir / "pacache-profile.json"
    system, _ = start_pacache(
        "pacache", snapshot_root, workdir / "pacache-profile.log", today=today,
        module="bench.profiled_serve", env={"PACACHE_PROFILE_OUT": str(out)},
    )  # fmt: skip
    try:
        spec = LoadSpec(
            system.target, f"quote{CPU_RATIO_LINES}", "closed", 0.0, options.warmup,
            options.profile_seconds, concurrency=CPU_RATIO_CONCURRENCY, channels=options.channels,
        )  # fmt: skip
        prime(load, system, spec, options)
        _, record = _measured(load, system, spec)
    finally:
        system.stop()
    frames = top_frames(out) if out.is_file() else {"self": [], "inclusive": []}
    return {"load": f"{CPU_RATIO_LINES}-line Quotes, closed loop, 8 in flight", "run": record,
            **frames}  # fmt: skip


# --- the whole run -----------------------------------------------------------------------


@contextlib.contextmanager
def _workdir(options: Options) -> Iterator[Path]:
    if options.workdir is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
        yield options.workdir
    else:
        with tempfile.TemporaryDirectory(prefix="pacache-bench-") as tmp:
            yield Path(tmp)


def ratios(systems: dict[str, dict[str, Any]], cpu: dict[str, Any] | None) -> dict[str, Any]:
    """The issue's target ratios from the measured systems (None where one side is missing).
    pacache's side is its best configuration measured (``pacache`` or a ``pacache-wN``)."""
    variants = {
        name: system["throughput_at_p99_10ms_rps"]
        for name, system in systems.items()
        if pacache_arguments(name) is not None
    }
    best = max(variants, key=lambda name: variants[name]) if variants else None
    pacache = variants[best] if best else None

    def versus(name: str, target: float) -> dict[str, Any]:
        other = systems.get(name, {}).get("throughput_at_p99_10ms_rps")
        if pacache is None or other is None:
            return {"value": None, "target": target, "met": None, "note": "not measured"}
        if other == 0:  # the baseline never met the bound: any pacache rate beats it
            note = (
                f"unbounded: {name} never had p99 ≤ {P99_BOUND_MS:g} ms; see the "
                "most-throughput ratio"
            )
            return {"value": None, "target": target, "met": pacache > 0, "note": note}
        value = round(pacache / other, 2)
        note = "" if best == "pacache" else f"pacache side: {best}"
        return {"value": value, "target": target, "met": value >= target, "note": note}

    def most(name: str) -> dict[str, Any]:
        other = systems.get(name, {}).get("max_throughput_rps")
        mine = systems[best]["max_throughput_rps"] if best else None
        value = round(mine / other, 2) if mine and other else None
        return {"value": value, "target": None, "met": None, "note": "context, no target"}

    cpu_ratio_value = cpu["ratio"] if cpu else None
    return {
        # not targets: the most throughput at any latency, for context where a baseline
        # never meets the latency bound
        "max_throughput_vs_redis": most("redis"),
        "max_throughput_vs_postgres": most("postgres"),
        "pacache_vs_redis": versus("redis", TARGETS["vs_redis"]),
        "pacache_vs_postgres": versus("postgres", TARGETS["vs_postgres"]),
        "cpu_quote50_per_ping": {
            "value": cpu_ratio_value,
            "target": TARGETS["cpu_quote_per_ping"],
            "met": None if cpu_ratio_value is None else cpu_ratio_value <= 1.3,
            "note": "" if cpu else "not measured",
        },
    }


def run_suite(options: Options, log: Any = print) -> dict[str, Any]:
    """Everything ``pacache bench`` measures, as one dict (``bench.report`` renders it)."""
    started = time.monotonic()
    extract, snapshot_root = ensure_data(options.data, options.scale, log)
    manifest = json.loads((extract / "extract.json").read_text())
    reference_date = manifest["reference_date"]
    # every system answers as of the dataset's reference date, so validity windows and
    # receipt dates line up with the generated data and compare like for like
    today = reference_date
    mix = build_mix(extract, options.pool_size, mix=parse_mix(options.mix), seed=options.seed)
    pools: list[RequestPool] = [mix, ping_pool(), fixed_quotes(extract, CPU_RATIO_LINES, 256)]
    report: dict[str, Any] = {
        "benchmark": "pacache bench",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scale": options.scale,
        "extract": str(extract),
        "snapshot_root": str(snapshot_root),
        "today": today or "UTC today (unpinned)",
        "machine": machine_info(),
        "load_average_at_start": os.getloadavg(),
        "options": {
            "seconds": options.seconds,
            "warmup_s": options.warmup,
            "prime_s": options.prime_seconds,
            "concurrency": options.concurrency,
            "rates": options.rates,
            "systems": options.systems,
            "mix": mix.kinds(),
            "pool_size": options.pool_size,
            "load_processes": options.load_processes,
            "channels_per_process": options.channels,
            "deltas_rate": options.deltas_rate,
            "seed": options.seed,
            "p99_bound_ms": P99_BOUND_MS,
        },
        "systems": {},
        "skipped": {},
        "checks": {},
    }
    checks_sample = sample(mix, options.check_sample)
    with _workdir(options) as workdir, LoadProcesses(pools, options.load_processes) as load:
        reference: Running | None = None
        needs_reference = any(
            pacache_arguments(n) is not None or n == "ping" or n in BASELINES
            for n in options.systems
        )
        try:
            if needs_reference:
                reference, _ = start_pacache(
                    "pacache", snapshot_root, workdir / "pacache.log", today=today
                )
                log(f"pacache on {reference.target} (pid {reference.pid})")
            for name in options.systems:
                system, owned, check = _start(
                    name, reference, extract, workdir, options, today, report
                )
                if system is None:
                    log(f"  {name}: skipped — {report['skipped'][name]}")
                    continue
                try:
                    if check is not None and reference is not None:
                        problems = check(reference.target, system.target, checks_sample)
                        report["checks"][name] = {
                            "requests": len(checks_sample), "differences": len(problems),
                            "first": problems[:5],
                        }  # fmt: skip
                        log(f"  {name}: {len(problems)} differences from pacache "
                            f"on {len(checks_sample)} requests")  # fmt: skip
                    report["systems"][name] = measure_system(load, system, options, log)
                    if owned and pacache_arguments(name):  # pacache-wN: its CPU per Quote
                        report.setdefault("cpu_by_workers", {})[name] = cpu_ratio(
                            load, system, options, log,
                            same_load_rps=_same_load(report), compare_layouts=True,
                        )  # fmt: skip
                except Exception as failure:  # one broken system must not lose the others
                    report["skipped"][name] = f"{name}: failed while measuring: {failure!r}"
                    log(f"  {name}: {report['skipped'][name]}")
                finally:
                    if owned:
                        system.stop()
            if reference is not None and "pacache" in options.systems:
                layouts = len(report.get("cpu_by_workers", {})) > 0
                report["cpu_ratio"] = cpu_ratio(
                    load, reference, options, log,
                    same_load_rps=_same_load(report), compare_layouts=layouts,
                )  # fmt: skip
                report.setdefault("cpu_by_workers", {})["pacache"] = report["cpu_ratio"]
        finally:
            if reference is not None:
                reference.stop()
        pacache = report["systems"].get("pacache")
        if options.deltas_rate > 0 and pacache is not None:
            rate = 0.5 * (pacache["throughput_at_p99_10ms_rps"] or pacache["max_throughput_rps"])
            try:
                report["deltas"] = freshness_under_deltas(
                    load, extract, snapshot_root, options, workdir, today=today,
                    rate=max(rate, 10.0), log=log,
                )  # fmt: skip
            except SystemUnavailable as reason:
                report["skipped"]["deltas"] = str(reason)
        report["ratios"] = ratios(report["systems"], report.get("cpu_ratio"))
        missed = any(r["met"] is False for r in report["ratios"].values())  # targets only
        if missed and options.profile_seconds > 0 and pacache is not None:
            log("a target is missed: profiling pacache under pyinstrument")
            report["profile"] = profile_pacache(load, snapshot_root, options, workdir, today)
    report["load_average_at_end"] = os.getloadavg()
    report["wall_s"] = round(time.monotonic() - started, 1)
    return report


def _start(
    name: str,
    reference: Running | None,
    extract: Path,
    workdir: Path,
    options: Options,
    today: str | None,
    report: dict[str, Any],
) -> tuple[Running | None, bool, Callable[..., list[str]] | None]:
    """(system, whether it is ours to stop after measuring, its answer check); None for
    the system when it is skipped — the reason goes in ``report["skipped"]``."""
    try:
        if name == "pacache" and reference is not None:
            return reference, False, None
        if name == "ping" and reference is not None:
            ping = Running("ping", reference.target, reference.pid, reference.stop, "ping")
            return ping, False, None
        if pacache_arguments(name) is not None:
            log = workdir / f"{name}.log"
            system, _ = start_pacache(name, Path(report["snapshot_root"]), log, today=today)
            return system, True, None
        if name in BASELINES:
            system, check = start_baseline_system(
                name, extract, workdir, today=today, redis_url=options.redis_url,
                pg_url=options.pg_url,
            )  # fmt: skip
            return system, True, check
    except SystemUnavailable as reason:
        report["skipped"][name] = str(reason)
        return None, False, None
    report["skipped"][name] = f"unknown system {name!r}"
    return None, False, None


def _run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """The JSON summary's per-system keys of one run (the issue names them)."""
    latency = run["latency_ms"]
    return {
        "throughput_rps": run["throughput_rps"],
        "p50_ms": latency["p50"],
        "p90_ms": latency["p90"],
        "p99_ms": latency["p99"],
        "p999_ms": latency["p999"],
        "server_cpu_us_per_call": run["server_cpu_us_per_call"],
        "rss_mb": run["rss_mb"],
        "errors": run["errors"],
    }


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` file: per system the headline numbers, plus the ratios."""
    systems = {}
    for name, system in report["systems"].items():
        run = system["headline_run"]
        systems[name] = {
            **_run_summary(run),
            "throughput_at_p99_10ms_rps": system["throughput_at_p99_10ms_rps"],
            "max_throughput_rps": system["max_throughput_rps"],
            "errors": sum(r["errors"] for r in system["sweep"] + system["open_loop"]),
            "headline": system["headline"],
        }
    deltas = report.get("deltas")
    if deltas:
        run = deltas["run"]
        systems["pacache+deltas"] = {
            **_run_summary(run),
            "freshness_p50_ms": deltas["freshness_ms"].get("p50"),
            "freshness_p99_ms": deltas["freshness_ms"].get("p99"),
            "headline": f"open loop at {deltas['mix_rate']} rps with "
            f"{deltas['deltas_rate']:g} deltas/s",
        }
    return {
        "date": report["date"],
        "scale": report["scale"],
        "machine": report["machine"],
        "systems": systems,
        "skipped": report["skipped"],
        "checks": {k: v["differences"] for k, v in report["checks"].items()},
        "ratios": report["ratios"],
        "cpu_ratio": report.get("cpu_ratio", {}).get("ratio"),
    }
