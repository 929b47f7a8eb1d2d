"""Freshness under load: time from XADD of a change to the change being visible in a Quote.

What it measures: for a steady inventory feed of ``--rate`` events/s (default 10,000) through
Redis Streams, while the server answers a closed-loop Quote load, how long after a
producer's XADD the new value shows in a plain Quote (no ``min_stream_ids``, no
``min_version``: what any portal sees). p50/p90/p99/max in ms; target p99 ≤ 50 ms.

Set-up, all on this machine:

- a private ``redis-server`` (``bench.redis_process.RedisProcess``, temp dir, free port) and
  ``python -m server.serve --snapshot S --redis-url URL --stream-prefix P --port 0`` as a
  subprocess, as deployed: a writer process reading the streams and one gRPC worker per
  core (server CPU is summed over the supervisor and its children);
- a *producer* process XADDs InventorySet events at ``--rate`` events/s on a fixed
  schedule, ``--batch`` events per entry (msgpack via ``loaders.events.encode``), each with
  ``ts_ms`` = its send time, uniform over the extract's SKUs × active locations (seeded);
- a *sampler* process, every ``--sample-ms`` (default 20), XADDs one marker InventorySet
  (a dedicated SKU and location, never touched by the producer, ``on_hand`` increasing) to
  the same stream, then polls Quote for that SKU at that location until the marker's
  ``on_hand`` is the available quantity shown. Freshness = XADD sent → first Quote answer
  that shows it, both read on the sampler's clock (so it includes the XADD round trip, the
  writer's read/decode/apply and one Quote round trip of polling resolution);
- the main process drives a closed-loop Quote load (``bench.closed_loop``): ``--concurrency``
  calls in flight, ``--lines``-line carts from ``bench.datagen.Workload`` (seeded).

The producer starts first (``--warmup`` seconds for the writer to settle); the load then
runs ``--seconds`` after its own warm-up, and the sampler records from the end of that
warm-up. Reported: freshness percentiles (HDR histogram when ``hdrhistogram`` is installed,
else numpy), markers sent / timed out, polls; Quote throughput and p50/p99 during the run;
events/s sent and events/s applied by the server's writer (``Admin Stats`` per-stream
``applied`` over the window), its lag at the end, server CPU and RSS; machine, library
versions, load average and CPU pressure.

    python -m bench.freshness --extract /work/data/small --snapshot /work/data/snapshots/small \
        [--rate 10000] [--batch 100] [--seconds 20] [--concurrency 4] [--lines 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import redis

from bench.closed_loop import run_closed_loop
from bench.datagen import Workload
from bench.machine import machine_info
from bench.procstat import tree_cpu_seconds
from bench.redis_process import RedisProcess
from bench.stream_apply import cpu_pressure, load_codes
from engine import events as ev
from loaders.events import STRUCTS, encode
from loaders.stream_writer import FIELD
from server._proto.pacache.v1 import pacache_pb2 as pb
from server._proto.pacache.v1 import pacache_pb2_grpc as pb_grpc
from server.client import Client, quote_lines

__all__ = ["Marker", "main", "percentiles_ms"]

REPO = Path(__file__).resolve().parents[1]
TARGET_P99_MS = 50.0
VERSION_BASE = 2_000_000_000  # above the extract's versions (bench.datagen: 1,000,000)
MARKER_BASE = 1_000_000  # marker on_hand values: far from anything the extract holds
POLL_TIMEOUT_S = 5.0

_SET = STRUCTS[ev.InventorySet]


def percentiles_ms(values_us: Sequence[int] | np.ndarray[Any, Any]) -> dict[str, Any]:
    """p50/p90/p99/p99.9/max/mean in ms of microsecond samples (HDR histogram if available)."""
    values = np.asarray(values_us, dtype=np.int64)
    if values.size == 0:
        return {"count": 0}
    try:
        from hdrh.histogram import HdrHistogram
    except ImportError:
        points = np.percentile(values, [50, 90, 99, 99.9])
        out = dict(zip(("p50", "p90", "p99", "p99.9"), points.tolist(), strict=True))
        out |= {"max": float(values.max()), "mean": float(values.mean())}
        method = "numpy"
    else:
        histogram = HdrHistogram(1, 3_600_000_000, 3)
        for value in values.tolist():
            histogram.record_value(max(1, value))
        out = {
            name: histogram.get_value_at_percentile(q)
            for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9))
        }
        out |= {"max": histogram.get_max_value(), "mean": histogram.get_mean_value()}
        method = "hdrhistogram"
    result: dict[str, Any] = {k: round(v / 1000, 3) for k, v in out.items()}
    return {"count": int(values.size), "method": method, **result}


@dataclass(frozen=True, slots=True)
class Marker:
    """The dedicated cell the sampler writes and reads back."""

    account: str  # an account with EXACT disclosure: the number is shown as stored
    sku: str  # an ACTIVE item
    location: str
    pricing_date: str


def pick_marker(extract: Path, pricing_date: str) -> Marker:
    """The first EXACT-disclosure account, an ACTIVE SKU and the first active location."""
    accounts = pq.read_table(extract / "accounts.parquet", columns=["account", "disclosure"])
    account = next(
        a
        for a, d in zip(
            accounts["account"].to_pylist(), accounts["disclosure"].to_pylist(), strict=True
        )
        if d == "EXACT"
    )
    items = pq.read_table(extract / "items.parquet", columns=["sku", "status"])
    active = [
        s
        for s, status in zip(items["sku"].to_pylist(), items["status"].to_pylist(), strict=True)
        if status == "ACTIVE"
    ]
    sku = active[len(active) // 2]  # mid-catalogue: not the one carts hit most, by chance
    _, locations = load_codes(extract)
    return Marker(account, sku, locations[0], pricing_date)


# --- the producer process ----------------------------------------------------------------


def produce(
    url: str,
    stream: str,
    extract: str,
    exclude_sku: str,
    rate: float,
    batch: int,
    seed: int,
    stop: Event,
    results: Queue[dict[str, Any]],
) -> None:
    """XADD ``batch``-event entries of InventorySet on a fixed schedule until ``stop``."""
    skus, locations = load_codes(extract)
    skus = [s for s in skus if s != exclude_sku]
    client = redis.Redis.from_url(url)
    rng = np.random.default_rng([seed, 21])
    interval = batch / rate
    sent = entries = late = 0
    worst_behind = 0.0
    started = next_at = time.perf_counter()
    while not stop.is_set():
        now = time.perf_counter()
        if now < next_at:
            time.sleep(next_at - now)
        else:
            behind = now - next_at
            worst_behind = max(worst_behind, behind)
            late += behind > interval
        sku = rng.integers(0, len(skus), batch).tolist()
        location = rng.integers(0, len(locations), batch).tolist()
        on_hand = rng.integers(0, 500, batch).tolist()
        ts_ms = int(time.time() * 1000)
        events = [
            _SET(
                sku=skus[sku[i]],
                location=locations[location[i]],
                version=VERSION_BASE + sent + i,
                ts_ms=ts_ms,
                on_hand=on_hand[i],
            )
            for i in range(batch)
        ]
        client.xadd(stream, {FIELD: encode(events)})
        sent += batch
        entries += 1
        next_at += interval
    seconds = time.perf_counter() - started
    client.close()
    results.put(
        {
            "role": "producer",
            "events": sent,
            "entries": entries,
            "seconds": seconds,
            "late_ticks": late,
            "worst_behind_ms": round(worst_behind * 1000, 2),
        }
    )


# --- the sampler process -----------------------------------------------------------------


def sample(
    url: str,
    stream: str,
    target: str,
    marker: Marker,
    interval_s: float,
    warmup_s: float,
    stop: Event,
    results: Queue[dict[str, Any]],
) -> None:
    """Every ``interval_s``: XADD the next marker value, poll Quote until it shows."""
    client = redis.Redis.from_url(url)
    grpc_client = Client(target, timeout=POLL_TIMEOUT_S)
    request = pb.QuoteRequest(
        account=marker.account,
        lines=quote_lines([(marker.sku, 1)]),
        locations=[marker.location],
        pricing_date=marker.pricing_date,
    )
    latencies: list[int] = []
    seen_at: list[float] = []  # seconds after the recording start, per latency: lag over time
    poll_us: list[int] = []
    polls = timeouts = sent = 0
    record_from = time.perf_counter() + warmup_s
    sequence = 0
    while not stop.is_set():
        sequence += 1
        value = MARKER_BASE + sequence
        event = _SET(
            sku=marker.sku,
            location=marker.location,
            version=VERSION_BASE + sequence,
            ts_ms=int(time.time() * 1000),
            on_hand=value,
        )
        payload = encode([event])
        started = time.perf_counter()
        client.xadd(stream, {FIELD: payload})
        seen = False
        while time.perf_counter() - started < POLL_TIMEOUT_S:
            asked = time.perf_counter()
            response = grpc_client.quote_raw(request)
            if asked >= record_from:
                poll_us.append(int((time.perf_counter() - asked) * 1_000_000))
            polls += 1
            shown = response.lines[0].availability.locations if response.lines else ()
            if shown and shown[0].available == value:
                seen = True
                break
        now = time.perf_counter()
        if started >= record_from:
            sent += 1
            if seen:
                latencies.append(int((now - started) * 1_000_000))
                seen_at.append(round(started - record_from, 4))
            else:
                timeouts += 1
        pause = started + interval_s - time.perf_counter()
        if pause > 0:
            stop.wait(pause)
    grpc_client.close()
    client.close()
    results.put(
        {
            "role": "sampler",
            "latencies_us": latencies,
            "seen_at_s": seen_at,
            "poll_us": poll_us,
            "markers": sent,
            "timeouts": timeouts,
            "polls": polls,
        }
    )


# --- the server --------------------------------------------------------------------------


def start_server(
    snapshot_root: str, redis_url: str, prefix: str, log_path: Path
) -> tuple[subprocess.Popen[str], int]:
    command = [
        sys.executable, "-m", "server.serve", "--snapshot", snapshot_root,
        "--redis-url", redis_url, "--stream-prefix", prefix, "--port", "0", "--grace", "2",
    ]  # fmt: skip
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        found = re.search(r"serving on [\d.]+:(\d+)", line)
        if found:
            return process, int(found.group(1))
    process.wait(10)
    raise RuntimeError(f"server did not start; its log: {log_path.read_text()[-2000:]}")


def stop_server(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    if process.stdout is not None:
        process.stdout.close()


def stream_stats(client: Client, stream: str) -> Any:
    for stats in client.stats().streams:
        if stats.stream == stream:
            return stats
    raise RuntimeError(f"server reports no stream {stream}")


def quote_requests(
    extract: str, lines: int, count: int, pricing_date: str, seed: int
) -> list[pb.QuoteRequest]:
    """``count`` seeded carts of ``lines`` lines from the extract's workload, as requests."""
    workload = Workload.from_extract(extract, seed=seed)
    requests = []
    for _ in range(count):
        cart = workload.cart(lines)
        requests.append(
            pb.QuoteRequest(
                account=cart.account,
                lines=quote_lines(list(zip(cart.skus, cart.qty, cart.uoms, strict=True))),
                region=cart.region or "",
                pricing_date=pricing_date,
            )
        )
    return requests


def _collect(results: Queue[dict[str, Any]], processes: list[Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 30
    while len(out) < len(processes) and time.monotonic() < deadline:
        item = results.get(timeout=max(0.1, deadline - time.monotonic()))
        out[item["role"]] = item
    for process in processes:
        process.join(10)
        if process.is_alive():
            process.terminate()
            process.join(5)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.freshness",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--extract", required=True)
    parser.add_argument("--snapshot", required=True, help="snapshot root (the newest is served)")
    parser.add_argument(
        "--rate", type=float, default=10_000, help="producer events/s (0: markers only, no feed)"
    )
    parser.add_argument("--batch", type=int, default=100, help="producer events per entry")
    parser.add_argument("--sample-ms", type=float, default=20.0, help="marker interval")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=2.0, help="feed-only seconds first")
    parser.add_argument("--concurrency", type=int, default=4, help="Quotes in flight")
    parser.add_argument("--lines", type=int, default=20, help="lines per Quote")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prefix", default="bench")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)
    extract = Path(args.extract)
    manifest = json.loads((extract / "extract.json").read_text())
    pricing_date = manifest["reference_date"]
    marker = pick_marker(extract, pricing_date)
    requests = quote_requests(args.extract, args.lines, 256, pricing_date, args.seed + 1)
    stream = f"{args.prefix}:inventory"
    report: dict[str, Any] = {
        "benchmark": "freshness",
        "machine": machine_info(),
        "scale": manifest.get("scale"),
        "extract": str(extract),
        "snapshot": str(args.snapshot),
        "seed": args.seed,
        "config": {
            "rate_events_per_s": args.rate,
            "events_per_entry": args.batch,
            "sample_ms": args.sample_ms,
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "quote_concurrency": args.concurrency,
            "quote_lines": args.lines,
            "stream": stream,
            "marker": {"account": marker.account, "sku": marker.sku, "location": marker.location},
        },
        "target_p99_ms": TARGET_P99_MS,
        "load_average_at_start": os.getloadavg(),
        "cpu_pressure_some_avg10_at_start": cpu_pressure(),
    }
    context = mp.get_context("spawn")  # no fork of a process holding gRPC/Redis state
    with tempfile.TemporaryDirectory(prefix="pacache-freshness-") as tmp:
        redis_server = RedisProcess(Path(tmp) / "redis").start()
        server: subprocess.Popen[str] | None = None
        processes: list[Any] = []
        stop = context.Event()
        results: Queue[dict[str, Any]] = context.Queue()
        try:
            info = redis_server.client().info("server")
            report["machine"]["libraries"]["redis-server"] = info["redis_version"]
            server, port = start_server(
                args.snapshot, redis_server.url, args.prefix, Path(tmp) / "server.log"
            )
            target = f"127.0.0.1:{port}"
            print(f"server on {target} (pid {server.pid}), redis {redis_server.url}")
            admin = Client(target)
            _, rows = admin.quote(
                marker.account, [(marker.sku, 1)],
                locations=[marker.location], pricing_date=pricing_date,
            )  # fmt: skip
            if not rows or marker.location not in rows[0].available:
                raise RuntimeError(f"marker {marker} is not quotable: {rows}")
            producer = None if args.rate <= 0 else context.Process(
                target=produce,
                args=(redis_server.url, stream, str(extract), marker.sku, args.rate,
                      args.batch, args.seed, stop, results),
                name="producer",
            )  # fmt: skip
            if producer is not None:
                producer.start()
                processes.append(producer)
            time.sleep(args.warmup)
            warmup = min(1.0, args.seconds / 3)  # bench.closed_loop's own warm-up
            sampler = context.Process(
                target=sample,
                args=(redis_server.url, stream, target, marker, args.sample_ms / 1000,
                      warmup, stop, results),
                name="sampler",
            )  # fmt: skip
            sampler.start()
            processes.append(sampler)
            before = stream_stats(admin, stream)
            before_at = time.perf_counter()
            cpu_before = tree_cpu_seconds(server.pid)
            load = run_closed_loop(
                target, lambda ch: pb_grpc.PriceAvailabilityServiceStub(ch).Quote, requests,
                concurrency=args.concurrency, seconds=args.seconds,
            )  # fmt: skip
            after = stream_stats(admin, stream)
            after_at = time.perf_counter()
            server_cpu = tree_cpu_seconds(server.pid) - cpu_before
            server_stats = admin.stats()
            stop.set()
            found = _collect(results, processes)
            admin.close()
        finally:
            stop.set()
            for process in processes:
                if process.is_alive():
                    process.terminate()
                    process.join(5)
            if server is not None:
                stop_server(server)
            redis_server.stop()

    window = after_at - before_at
    sampled = found.get("sampler", {})
    produced = found.get("producer", {})
    freshness = percentiles_ms(sampled.get("latencies_us", []))
    quote = percentiles_ms(load.latencies_us)
    applied_per_s = (after.applied - before.applied) / window
    report["freshness_ms"] = freshness
    report["markers"] = {
        "sent": sampled.get("markers", 0),
        "timed_out": sampled.get("timeouts", 0),
        "quote_polls": sampled.get("polls", 0),
        "polls_per_marker": round(
            len(sampled.get("poll_us", [])) / max(1, len(sampled.get("latencies_us", []))), 2
        ),
        # freshness includes at least one of these: its resolution is one poll round trip
        "poll_round_trip_ms": percentiles_ms(sampled.get("poll_us", [])),
    }
    report["meets_target"] = bool(
        freshness.get("count") and freshness["p99"] <= TARGET_P99_MS and not sampled["timeouts"]
    )
    report["quotes"] = {
        "throughput_rps": round(load.throughput, 1),
        "errors": load.errors,
        "latency_ms": quote,
    }
    report["feed"] = {
        "producer_events_per_s": round(produced["events"] / produced["seconds"], 1)
        if produced
        else None,
        "producer_late_ticks": produced.get("late_ticks"),
        "producer_worst_behind_ms": produced.get("worst_behind_ms"),
        "applied_events_per_s": round(applied_per_s, 1),
        "lag_entries_at_end": after.lag_entries,
        "stats_freshness_ms_at_end": after.freshness_ms,
        "dead_lettered": after.dead_lettered,
        "gap_detected": after.gap_detected,
    }
    report["server"] = {
        "cpu_percent_of_one_core": round(100 * server_cpu / window, 1),
        "rss_mb": round(server_stats.rss_bytes / 1024 / 1024, 1),
    }
    report["load_average_at_end"] = os.getloadavg()
    report["cpu_pressure_some_avg10_at_end"] = cpu_pressure()
    print(
        f"freshness XADD→visible in Quote ({freshness.get('count', 0)} markers, "
        f"{report['markers']['timed_out']} timed out): p50 {freshness.get('p50')} ms  "
        f"p90 {freshness.get('p90')}  p99 {freshness.get('p99')}  max {freshness.get('max')} ms  "
        f"[{'OK' if report['meets_target'] else 'ABOVE'} target p99 ≤ {TARGET_P99_MS:g} ms]"
    )
    polls = report["markers"]["poll_round_trip_ms"]
    print(
        f"  (sampler's 1-line Quote poll round trip: p50 {polls.get('p50')} ms, p99 "
        f"{polls.get('p99')} ms; {report['markers']['polls_per_marker']} polls per marker)"
    )
    print(
        f"quotes ({args.lines} lines, {args.concurrency} in flight): {load.throughput:,.0f}/s  "
        f"p50 {quote.get('p50')} ms  p99 {quote.get('p99')} ms  errors {load.errors}"
    )
    print(
        f"feed: sent {report['feed']['producer_events_per_s']} events/s, applied "
        f"{applied_per_s:,.0f} events/s, lag at end {after.lag_entries} entries; server CPU "
        f"{report['server']['cpu_percent_of_one_core']}% of a core, RSS "
        f"{report['server']['rss_mb']} MB"
    )
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
