"""Overload: what a serving process does past its admission limits, and whether heavy calls
can starve health checks and Ping.

What it measures, each phase against a freshly spawned ``python -m server.serve --snapshot S
--port 0 --workers N --today D --max-in-flight F --max-queued-lines Q`` (the flags of every
phase are in the report), with load from separate ``bench.loadgen`` processes (``--load-
processes``, ``--channels`` connections each, raw bytes, answers not parsed) and, where
Ping is timed, one more process of its own (the prober):

1. **capacity**: closed loop of 50-line Quotes (seeded carts of distinct SKUs from the
   extract's workload, ``bench.mix.fixed_quotes``) at each of ``--concurrency`` → calls/s,
   p50/p99, server CPU per call (/proc, the server's process tree, the window only), with
   ``--max-in-flight`` at the largest concurrency so that every call is admitted. The
   engine lane runs one call at a time per worker, so ``workers ÷ calls/s`` at the
   saturating concurrency is the lane's service time per 50-line Quote: what the limits
   are sized from (queueing delay ≈ calls ahead × service time).
2. **flood**: ``--flood-callers`` closed-loop callers of 50-line Quotes for each
   ``--max-in-flight`` value, then the issue's case (``--max-in-flight 1``, 64 callers);
   each once without backoff (a refused caller sends its next call at once) and once
   with ``--backoff-ms`` (gRPC's retry backoff: random up to 50 ms, doubling to 1 s, as
   the refusal's message asks), while the prober sends Admin Ping and the standard health
   Check (alternating, open loop at ``--probe-rate``/s, latency from the intended send
   time). Calls by status code (only OK and RESOURCE_EXHAUSTED may occur; any other is
   reported), latency p50/p99/max of the refusals (the "refused in under 5 ms" figure) and
   of the answers, the probes' codes and latency.
3. **saturation**: for each ``--heavy-loops`` × ``--max-queued-lines`` value, the prober
   alone against the idle server (baseline), then that many callers sending
   ``--heavy-lines``-line Quotes with ``explain`` (distinct SKUs) back to back with the
   prober beside them → Ping and health p50/p99/max idle vs saturated, and the heavy
   calls answered / refused.

The machine's cores are shared by the load processes, the prober and the server (and by
whatever else runs on the machine): every window also records the CPU the server used,
the cores the whole machine was busy (/proc/stat) and the share of the window in which a
runnable task waited for a core (/proc/pressure/cpu), and the prober's dispatch lateness,
so a starved client or a busy machine shows as such.

    python -m bench.overload --extract DIR --snapshot DIR [--workers N] [--seconds S]
        [--max-in-flight 16,64,256] [--max-queued-lines 5000,20000,100000]
        [--heavy-loops 4,8] [--backoff-ms 50] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.histogram import summary_ms
from bench.loadgen import LoadProcesses, LoadSpec, RunResult
from bench.machine import machine_info
from bench.mix import fixed_quotes, probe_pool
from bench.procstat import cpu_stall_seconds, machine_busy_seconds, tree_cpu_seconds
from server._proto.pacache.v1 import pacache_pb2 as pb
from server.service import Limits
from server.spawn import REPO, Spawned, spawn

__all__ = ["main"]

QUOTE_LINES = 50
START_DELAY_S = 0.5  # time for every load process to receive its command before the start
REFUSAL_TARGET_MS = 5.0  # the bound on a refusal


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


@dataclass(frozen=True, slots=True)
class Settings:
    """What every phase shares (from the command line)."""

    snapshot: str
    today: str
    workers: int
    seconds: float
    warmup: float
    channels: int
    probe_rate: float
    log: Path


def _serve(
    settings: Settings, max_in_flight: int, max_queued_lines: int
) -> tuple[Spawned, list[str]]:
    flags = [
        "--snapshot",
        settings.snapshot,
        "--port",
        "0",
        "--grace",
        "2",
        "--workers",
        str(settings.workers),
        "--today",
        settings.today,
        "--max-in-flight",
        str(max_in_flight),
        "--max-queued-lines",
        str(max_queued_lines),
    ]
    settings.log.parent.mkdir(parents=True, exist_ok=True)
    with open(settings.log, "a") as sink:
        sink.write(f"\n--- python -m server.serve {' '.join(flags)}\n")
        sink.flush()
        return spawn(flags, stderr=sink.fileno()), flags


def _spec(settings: Settings, target: str, pool: str, **fields: Any) -> LoadSpec:
    return LoadSpec(
        target=target,
        pool=pool,
        mode=fields.pop("mode", "closed"),
        start_at=time.monotonic() + START_DELAY_S,
        warmup_s=settings.warmup,
        seconds=settings.seconds,
        **{"channels": settings.channels, **fields},
    )


def _probe_spec(settings: Settings, target: str) -> LoadSpec:
    # one probe in flight is the usual prober; a few more let a stalled one show as latency
    return _spec(
        settings,
        target,
        "probe",
        mode="open",
        rate=settings.probe_rate,
        channels=1,
        max_outstanding=64,
        seed=11,
    )


def _cpu_now(server: Spawned) -> tuple[float, float, float | None]:
    return tree_cpu_seconds(server.process.pid), machine_busy_seconds(), cpu_stall_seconds()


def _together(
    server: Spawned, runs: Sequence[tuple[LoadProcesses, LoadSpec]]
) -> tuple[list[RunResult], dict[str, Any]]:
    """Start every run on one window; their results and the window's CPU: the server's,
    the whole machine's (busy cores: the server, the load processes, the prober and
    anything else running here) and the share of the window in which some runnable task
    waited for a core (PSI)."""
    start_at = time.monotonic() + START_DELAY_S
    specs = [(load, load.start(replace(spec, start_at=start_at))) for load, spec in runs]
    begin, end = specs[0][1].window
    _sleep_until(begin)
    before = _cpu_now(server)
    _sleep_until(end)
    after = _cpu_now(server)
    seconds = end - begin
    cpu = after[0] - before[0]
    results = [load.result(spec) for load, spec in specs]
    for result in results:
        result.server_cpu_s = cpu
    stall = None if after[2] is None or before[2] is None else after[2] - before[2]
    return results, {
        "server_cpu_s": cpu,
        "server_cores": round(cpu / seconds, 2),
        "machine_busy_cores": round((after[1] - before[1]) / seconds, 2),
        "cpu_stall_share": None if stall is None else round(stall / seconds, 2),
        "client_cores": round(sum(r.client_cpu_s for r in results) / (end - start_at), 2),
    }


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _codes(result: RunResult) -> dict[str, Any]:
    """Calls by status code (OK: answered inside the window) and each code's latency."""
    counts = {"OK": result.completed, **result.errors}
    return {
        "calls": sum(counts.values()),
        "by_code": counts,
        "latency_ms": {code: result.latency_of(code) for code in counts if counts[code]},
        "ok_per_s": round(result.completed / result.spec.seconds, 1),
    }


def _probes(result: RunResult) -> dict[str, Any]:
    return {
        "offered_per_s": result.spec.rate,
        "by_kind_ms": {kind: summary_ms(h) for kind, h in sorted(result.by_kind.items())},
        "errors": result.errors,
        "errors_latency_ms": {code: result.latency_of(code) for code in result.errors},
        "dispatch_late_ms": summary_ms(result.late),
    }


# --- phases ------------------------------------------------------------------------------


def capacity(
    settings: Settings, load: LoadProcesses, concurrencies: Sequence[int], limits: Limits
) -> dict[str, Any]:
    # admission out of the way (every caller admitted): this is what the limits are sized
    # from, not what they do
    server, flags = _serve(settings, max(concurrencies), limits.max_queued_lines)
    runs: list[dict[str, Any]] = []
    try:
        for concurrency in concurrencies:
            spec = _spec(settings, server.target, f"quote{QUOTE_LINES}", concurrency=concurrency)
            (result,), window = _together(server, [(load, spec)])
            cpu = window.pop("server_cpu_s")
            calls = result.completed + result.error_count
            throughput = result.completed / settings.seconds
            runs.append(
                {
                    "concurrency": concurrency,
                    "calls_per_s": round(throughput, 1),
                    "latency_ms": result.latency_ms(),
                    "errors": result.errors,
                    "server_cpu_us_per_call": round(cpu * 1e6 / max(calls, 1), 1),
                    "cpu": window,
                    # one call at a time per worker's lane: its service time at saturation
                    "lane_ms_per_call": round(settings.workers * 1000 / max(throughput, 1e-9), 3)
                    if settings.workers
                    else round(1000 / max(throughput, 1e-9), 3),
                }
            )
    finally:
        server.stop()
    best = max(runs, key=lambda run: run["calls_per_s"])
    return {
        "server_flags": flags,
        "lines": QUOTE_LINES,
        "runs": runs,
        "capacity_calls_per_s": best["calls_per_s"],
        "lane_ms_per_call": best["lane_ms_per_call"],
    }


def flood(
    settings: Settings,
    load: LoadProcesses,
    prober: LoadProcesses,
    callers: int,
    max_in_flight: int,
    max_queued_lines: int,
    backoff_ms: float,
) -> dict[str, Any]:
    server, flags = _serve(settings, max_in_flight, max_queued_lines)
    try:
        spec = _spec(
            settings, server.target, f"quote{QUOTE_LINES}", concurrency=callers,
            backoff_s=backoff_ms / 1000, seed=3,
        )  # fmt: skip
        (quotes, probes), window = _together(
            server, [(load, spec), (prober, _probe_spec(settings, server.target))]
        )
    finally:
        server.stop()
    out = {
        "server_flags": flags,
        "max_in_flight": max_in_flight,
        "callers": callers,
        "backoff_ms": backoff_ms,
        "max_backoff_ms": spec.max_backoff_s * 1000 if backoff_ms else None,
        "quotes": _codes(quotes),
        "probes": _probes(probes),
        "cpu": window,
    }
    window.pop("server_cpu_s")
    out["unexpected_codes"] = {
        code: n for code, n in quotes.errors.items() if code != "RESOURCE_EXHAUSTED"
    }
    return out


def saturation(
    settings: Settings,
    load: LoadProcesses,
    prober: LoadProcesses,
    heavy_pool: str,
    loops: int,
    max_in_flight: int,
    max_queued_lines: int,
    backoff_ms: float = 0.0,
) -> dict[str, Any]:
    server, flags = _serve(settings, max_in_flight, max_queued_lines)
    try:
        (idle,), idle_window = _together(server, [(prober, _probe_spec(settings, server.target))])
        spec = _spec(
            settings, server.target, heavy_pool, concurrency=loops, backoff_s=backoff_ms / 1000
        )
        (heavy, probes), window = _together(
            server, [(load, spec), (prober, _probe_spec(settings, server.target))]
        )
    finally:
        server.stop()
    out = {
        "server_flags": flags,
        "max_queued_lines": max_queued_lines,
        "heavy_loops": loops,
        "backoff_ms": backoff_ms,
        "idle_probes": _probes(idle),
        "saturated_probes": _probes(probes),
        "heavy_quotes": _codes(heavy),
        "idle_cpu": idle_window,
        "cpu": window,
    }
    for cpu in (idle_window, window):
        cpu.pop("server_cpu_s")
    return out


def single_calls(settings: Settings, pools: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """One call of each pool's first request against an idle server, from this process:
    request and response sizes and the time of a lone call (best of 5)."""
    import grpc

    from server._proto.pacache.v1 import pacache_pb2_grpc as pb_grpc

    server, _ = _serve(settings, limits.max_in_flight, limits.max_queued_lines)
    out: dict[str, Any] = {}
    try:
        with grpc.insecure_channel(server.target) as channel:
            quote = channel.unary_unary(
                "/pacache.v1.PriceAvailabilityService/Quote",
                request_serializer=None,
                response_deserializer=None,
            )
            pb_grpc.AdminServiceStub(channel).Ping(pb.PingRequest(), timeout=10)
            for name, pool in pools.items():
                raw = pool.requests[0][1]
                times = []
                for _ in range(5):
                    started = time.perf_counter()
                    answer = quote(raw, timeout=60)
                    times.append(time.perf_counter() - started)
                out[name] = {
                    "request_bytes": len(raw),
                    "response_bytes": len(answer),
                    "best_ms": round(min(times) * 1000, 2),
                }
    finally:
        server.stop()
    return out


# --- report ------------------------------------------------------------------------------


def _ms(summary: dict[str, Any] | None, key: str) -> str:
    if not summary or summary.get(key) is None:
        return "–"
    return f"{summary[key]:.2f}"


def _cores(cpu: dict[str, Any]) -> str:
    """server / machine busy cores (of the machine's), and the CPU-stall share."""
    stall = "–" if cpu["cpu_stall_share"] is None else f"{cpu['cpu_stall_share']:.0%}"
    return f"{cpu['server_cores']:.2f}/{cpu['machine_busy_cores']:.2f} {stall}"


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    cap = report["capacity"]
    table = Table(
        title=f"capacity: {cap['lines']}-line Quotes, closed loop ({report['workers']} workers)"
    )
    for column in (
        "in flight",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "server CPU µs/call",
        "lane ms/call",
        "errors",
        "cores server/machine, stall",
    ):
        table.add_column(column, justify="right")
    for run in cap["runs"]:
        table.add_row(
            str(run["concurrency"]),
            f"{run['calls_per_s']:.0f}",
            _ms(run["latency_ms"], "p50"),
            _ms(run["latency_ms"], "p99"),
            f"{run['server_cpu_us_per_call']:.0f}",
            f"{run['lane_ms_per_call']:.3f}",
            str(sum(run["errors"].values())),
            _cores(run["cpu"]),
        )
    console.print(table)

    table = Table(title="flood: 50-line Quotes, closed loop; probes beside it")
    for column in (
        "max in flight",
        "callers",
        "backoff ms",
        "OK/s",
        "refused",
        "other codes",
        "refused p50/p99/max ms",
        "OK p50/p99/max ms",
        "Ping p50/p99 ms",
        "health p99 ms",
        "probe errors",
        "cores server/machine, stall",
    ):
        table.add_column(column, justify="right")
    for run in report["flood"]:
        quotes = run["quotes"]
        refused = quotes["latency_ms"].get("RESOURCE_EXHAUSTED")
        ok = quotes["latency_ms"].get("OK")
        probes = run["probes"]["by_kind_ms"]
        table.add_row(
            str(run["max_in_flight"]),
            str(run["callers"]),
            f"{run['backoff_ms']:g}",
            f"{quotes['ok_per_s']:.0f}",
            str(quotes["by_code"].get("RESOURCE_EXHAUSTED", 0)),
            str(run["unexpected_codes"] or "none"),
            f"{_ms(refused, 'p50')}/{_ms(refused, 'p99')}/{_ms(refused, 'max')}",
            f"{_ms(ok, 'p50')}/{_ms(ok, 'p99')}/{_ms(ok, 'max')}",
            f"{_ms(probes.get('ping'), 'p50')}/{_ms(probes.get('ping'), 'p99')}",
            _ms(probes.get("health"), "p99"),
            str(run["probes"]["errors"] or "none"),
            _cores(run["cpu"]),
        )
    console.print(table)

    table = Table(
        title=f"saturation: {report['heavy_lines']}-line explain Quotes back to back; "
        "Ping/health idle vs saturated"
    )
    for column in (
        "max queued lines",
        "loops",
        "backoff ms",
        "heavy OK",
        "heavy refused",
        "heavy OK p50/p99 ms",
        "Ping idle p50/p99",
        "Ping sat. p50/p99/max",
        "health idle p99",
        "health sat. p99/max",
        "probe errors",
        "cores idle, sat.",
    ):
        table.add_column(column, justify="right")
    for run in report["saturation"]:
        heavy = run["heavy_quotes"]
        ok = heavy["latency_ms"].get("OK")
        idle = run["idle_probes"]["by_kind_ms"]
        busy = run["saturated_probes"]["by_kind_ms"]
        table.add_row(
            str(run["max_queued_lines"]),
            str(run["heavy_loops"]),
            f"{run['backoff_ms']:g}",
            str(heavy["by_code"]["OK"]),
            str(heavy["by_code"].get("RESOURCE_EXHAUSTED", 0)),
            f"{_ms(ok, 'p50')}/{_ms(ok, 'p99')}",
            f"{_ms(idle.get('ping'), 'p50')}/{_ms(idle.get('ping'), 'p99')}",
            f"{_ms(busy.get('ping'), 'p50')}/{_ms(busy.get('ping'), 'p99')}/"
            f"{_ms(busy.get('ping'), 'max')}",
            _ms(idle.get("health"), "p99"),
            f"{_ms(busy.get('health'), 'p99')}/{_ms(busy.get('health'), 'max')}",
            str(run["saturated_probes"]["errors"] or "none"),
            f"{_cores(run['idle_cpu'])}, {_cores(run['cpu'])}",
        )
    console.print(table)
    sizes = ", ".join(
        f"{name}: {s['request_bytes']:,} B → {s['response_bytes']:,} B in {s['best_ms']} ms"
        for name, s in report["single_calls"].items()
    )
    console.print(f"lone calls (idle server, best of 5): {sizes}")
    console.print(
        f"cores: CPU the server used / the whole machine was busy, of {report['machine']['cores']}"
        " (load processes, prober and anything else running here share them); stall: share "
        "of the window in which a runnable task waited for a core"
    )
    worst = max(
        (run["quotes"]["latency_ms"].get("RESOURCE_EXHAUSTED") or {}).get("p99") or 0.0
        for run in report["flood"]
    )
    verdict = "within" if worst < REFUSAL_TARGET_MS else "PAST"
    console.print(
        f"refusal p99, worst run: {worst:.2f} ms ({verdict} the {REFUSAL_TARGET_MS:.0f} ms target)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    defaults = Limits()
    parser = argparse.ArgumentParser(
        prog="python -m bench.overload",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--extract", required=True)
    parser.add_argument("--snapshot", required=True)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured load first")
    parser.add_argument("--load-processes", type=int, default=3)
    parser.add_argument("--channels", type=int, default=4, help="connections per process")
    parser.add_argument("--concurrency", default="1,4,16,64", help="capacity: in flight")
    parser.add_argument("--flood-callers", type=int, default=600)
    parser.add_argument(
        "--backoff-ms", type=float, default=50.0,
        help="flood: also run with callers backing off after a refusal (0: only without)",
    )  # fmt: skip
    parser.add_argument(
        "--max-in-flight",
        default=str(defaults.max_in_flight),
        help="flood: one run per value (comma-separated)",
    )
    parser.add_argument(
        "--max-queued-lines",
        default=str(defaults.max_queued_lines),
        help="saturation: one run per value (comma-separated)",
    )
    parser.add_argument("--heavy-lines", type=int, default=5_000)
    parser.add_argument(
        "--heavy-loops", default="4", help="saturation: callers of heavy Quotes (comma-separated)"
    )
    parser.add_argument(
        "--heavy-backoff-ms", type=float, default=0.0,
        help="saturation: also run with heavy callers backing off after a refusal (0: only "
        "back to back)",
    )  # fmt: skip
    parser.add_argument("--probe-rate", type=float, default=200.0, help="probes/s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--json", dest="json_path", help="default bench/results/overload-<scale>.json"
    )
    args = parser.parse_args(argv)

    manifest = json.loads((Path(args.extract) / "extract.json").read_text())
    scale = manifest.get("scale", "custom")
    json_path = Path(args.json_path or REPO / "bench" / "results" / f"overload-{scale}.json")
    settings = Settings(
        snapshot=args.snapshot,
        today=manifest["reference_date"],
        workers=args.workers,
        seconds=args.seconds,
        warmup=args.warmup,
        channels=args.channels,
        probe_rate=args.probe_rate,
        log=Path(tempfile.gettempdir()) / f"pacache-overload-{scale}.log",
    )
    quotes = fixed_quotes(args.extract, QUOTE_LINES, 256, seed=args.seed)
    heavy = fixed_quotes(args.extract, args.heavy_lines, 8, seed=args.seed, explain=True)
    probes = probe_pool()
    report: dict[str, Any] = {
        "benchmark": "bench.overload",
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scale": scale,
        "extract": args.extract,
        "snapshot_root": args.snapshot,
        "today": settings.today,
        "workers": args.workers,
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "load_processes": args.load_processes,
        "channels_per_process": args.channels,
        "probe_rate": args.probe_rate,
        "heavy_lines": args.heavy_lines,
        "seed": args.seed,
        "defaults": {
            "max_in_flight": defaults.max_in_flight,
            "max_queued_lines": defaults.max_queued_lines,
        },
        "note": "2 cores shared by the server, the load processes and the prober",
        "machine": machine_info(),
        "load_average_at_start": os.getloadavg(),
    }
    say = print
    report["single_calls"] = single_calls(
        settings, {quotes.name: quotes, heavy.name: heavy}, defaults
    )
    say(f"lone calls: {report['single_calls']}")
    with (
        LoadProcesses([quotes, heavy], args.load_processes) as load,
        LoadProcesses([probes], 1) as prober,
    ):
        report["capacity"] = capacity(settings, load, _ints(args.concurrency), defaults)
        say(
            f"capacity: {report['capacity']['capacity_calls_per_s']} calls/s, lane "
            f"{report['capacity']['lane_ms_per_call']} ms per {QUOTE_LINES}-line quote"
        )
        report["flood"] = []
        cases = [(args.flood_callers, limit) for limit in _ints(args.max_in_flight)]
        cases.append((64, 1))  # the case
        for backoff_ms in sorted({0.0, args.backoff_ms}):
            for callers, limit in cases:
                run = flood(
                    settings, load, prober, callers, limit, defaults.max_queued_lines, backoff_ms
                )
                report["flood"].append(run)
                codes, probe_errors = run["quotes"]["by_code"], run["probes"]["errors"]
                say(f"flood: max_in_flight {limit}, {callers} callers, backoff {backoff_ms:g} "
                    f"ms: {codes}, probe errors {probe_errors}")  # fmt: skip
        report["saturation"] = []
        for backoff_ms in sorted({0.0, args.heavy_backoff_ms}):
            for loops in _ints(args.heavy_loops):
                for limit in _ints(args.max_queued_lines):
                    run = saturation(
                        settings, load, prober, heavy.name, loops, defaults.max_in_flight,
                        limit, backoff_ms,
                    )  # fmt: skip
                    report["saturation"].append(run)
                    ping = (run["saturated_probes"]["by_kind_ms"].get("ping") or {}).get("p99")
                    codes = run["heavy_quotes"]["by_code"]
                    say(f"saturation: {loops} loops, backoff {backoff_ms:g} ms, "
                        f"max_queued_lines {limit}: {codes}, Ping p99 {ping} ms")  # fmt: skip
    report["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    print_report(report)
    say(f"wrote {json_path} (server logs: {settings.log})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
