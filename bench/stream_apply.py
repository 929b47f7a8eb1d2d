"""Sustained apply rate of the Redis Streams writer, in events per second.

What it measures: how fast one in-process :class:`loaders.stream_writer.StreamWriter`
drains a backlog from Redis into a :class:`server.host.StateHost` — XREAD, msgpack decode,
``engine.deltas.apply_batch`` and the writer's own bookkeeping, end to end, on one core.

1. A private ``redis-server`` (``bench.redis_process.RedisProcess``, temp dir, free port).
2. ``<prefix>:inventory`` is pre-filled with ``--events`` seeded events (default 1,000,000):
   InventorySet (absolute) and InventoryAdjust (relative, unique event ids) in the ratio
   ``--adjust-fraction``, uniform over the extract's SKUs (``items.parquet``) × locations
   (``locations.parquet``), ``--batch`` events per entry (a msgpack array from
   ``loaders.events.encode``), written with pipelined XADD. Versions increase in stream
   order and start above the extract's, so every event is new to the snapshot.
3. For each ``--count`` (entries per XREAD; default the writer's own default): the snapshot
   is loaded afresh (mmap, copy-on-write) into a ``StateHost`` and ``StreamWriter.run`` —
   the loop ``pacache serve`` runs — is started on uvloop; the clock stops when the batch
   holding the last entry has been applied.

Reported per run: events/s and entries/s (wall, writer start → last entry applied), the
writer process's CPU seconds and events per CPU-second (steadier than wall rates on a
shared machine), the number of batches and their apply times (a batch blocks readers'
event loop for its whole apply), the time inside ``apply_batch`` versus the rest (XREAD,
reply parsing, decode, the writer's bookkeeping and its once-a-second lag check), events
applied/stale as counted by the host, the writer config (count, block_ms, lag_every_s),
minor page faults, RSS (after load, after apply, peak), redis-server CPU and memory, load
average and CPU pressure. Options: ``--repeat`` drains each config again on a fresh state;
``--prefault`` copies the snapshot's inventory pages before the clock starts (steady state;
a fresh mmap load otherwise pays copy-on-write faults during the drain); ``--breakdown``
times XREAD, decode, validation and ``apply_batch`` each alone; ``--lag-every-s 1e9``
switches the writer's lag check off; ``--profile N`` runs the writer under cProfile and
prints (and stores) the top N functions by own and cumulative time. The machine and
library versions go in every report.

    python -m bench.stream_apply --extract /work/data/small --snapshot /work/data/snapshots/small
    python -m bench.stream_apply --extract /work/data/large --snapshot /work/data/snapshots/large \
        [--events 1000000] [--batch 100] [--count 10000 --count 100] [--block-ms 50] \
        [--repeat 2] [--prefault] [--breakdown] [--profile 25] [--json FILE]

Target (from the issue): at least 200,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import itertools
import json
import os
import pstats
import resource
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import redis
import redis.asyncio as aioredis
import uvloop

from bench.machine import machine_info
from bench.procstat import cpu_seconds
from bench.redis_process import RedisProcess
from engine import events as ev
from engine import snapshot
from engine.deltas import ApplyResult
from engine.state import Inventory
from engine.validate import event_problem
from loaders.events import STRUCTS, decode, encode
from loaders.stream_writer import FIELD, StreamWriter, WriterConfig
from server.host import HostConfig, StateHost

__all__ = ["cpu_pressure", "generate_entries", "load_codes", "main", "prefault"]

TARGET_EVENTS_PER_S = 200_000
VERSION_BASE = 2_000_000_000  # above the extract's versions (bench.datagen: 1,000,000)
PIPELINE_ENTRIES = 500  # XADDs per pipelined round trip while pre-filling

_SET = STRUCTS[ev.InventorySet]
_ADJUST = STRUCTS[ev.InventoryAdjust]


def load_codes(extract: str | Path) -> tuple[list[str], list[str]]:
    """SKU and location codes of an extract (every item; the active locations)."""
    path = Path(extract)
    skus = pq.read_table(path / "items.parquet", columns=["sku"])["sku"].to_pylist()
    table = pq.read_table(path / "locations.parquet", columns=["location", "active"])
    locations = [
        code
        for code, active in zip(
            table["location"].to_pylist(), table["active"].to_pylist(), strict=True
        )
        if active
    ]
    return skus, locations


def generate_entries(
    skus: Sequence[str],
    locations: Sequence[str],
    events: int,
    batch: int,
    *,
    adjust_fraction: float,
    seed: int,
    chunk: int = 100_000,
) -> Iterator[bytes]:
    """Encoded stream entries (``batch`` events each) of a seeded InventorySet/Adjust mix.

    Drawn ``chunk`` events at a time, so memory stays bounded whatever ``events`` is.
    """
    rng = np.random.default_rng([seed, 11])
    ts_ms = int(time.time() * 1000)
    chunk = max(batch, chunk - chunk % batch)
    for start in range(0, events, chunk):
        n = min(chunk, events - start)
        sku = rng.integers(0, len(skus), n).tolist()
        location = rng.integers(0, len(locations), n).tolist()
        adjust = (rng.random(n) < adjust_fraction).tolist()
        on_hand = rng.integers(0, 500, n).tolist()
        allocated = rng.integers(0, 50, n).tolist()
        safety = rng.integers(0, 20, n).tolist()
        on_hand_delta = rng.integers(-20, 21, n).tolist()
        allocated_delta = rng.integers(-5, 6, n).tolist()
        built: list[Any] = []
        for i in range(n):
            number = start + i
            if adjust[i]:
                built.append(
                    _ADJUST(
                        sku=skus[sku[i]],
                        location=locations[location[i]],
                        event_id=f"bench-{seed}-{number}",
                        version=VERSION_BASE + number,
                        ts_ms=ts_ms,
                        on_hand_delta=on_hand_delta[i],
                        allocated_delta=allocated_delta[i],
                    )
                )
            else:
                built.append(
                    _SET(
                        sku=skus[sku[i]],
                        location=locations[location[i]],
                        version=VERSION_BASE + number,
                        ts_ms=ts_ms,
                        on_hand=on_hand[i],
                        allocated=allocated[i],
                        safety_stock=safety[i],
                    )
                )
            if len(built) == batch:
                yield encode(built)
                built = []
        if built:
            yield encode(built)


@dataclass
class Prefill:
    stream: str
    events: int
    entries: int
    last_id: str
    seconds: float
    payload_bytes: int


def prefill(client: redis.Redis, stream: str, entries: Iterator[bytes], events: int) -> Prefill:
    """XADD every entry, ``PIPELINE_ENTRIES`` per round trip."""
    started = time.perf_counter()
    count = 0
    size = 0
    last: Any = b"0-0"
    pending: list[bytes] = []

    def flush() -> Any:
        pipe = client.pipeline(transaction=False)
        for payload in pending:
            pipe.xadd(stream, {FIELD: payload})
        ids = pipe.execute()
        pending.clear()
        return ids[-1]

    for payload in entries:
        pending.append(payload)
        count += 1
        size += len(payload)
        if len(pending) == PIPELINE_ENTRIES:
            last = flush()
    if pending:
        last = flush()
    last_id = last.decode() if isinstance(last, bytes) else str(last)
    return Prefill(stream, events, count, last_id, time.perf_counter() - started, size)


@dataclass
class TimedSink:
    """The host as the writer's sink, timing each ``apply_batch``; sets ``done`` once the
    last pre-filled entry of ``stream`` has been applied."""

    host: StateHost
    stream: str
    last_id: str
    done: asyncio.Event
    apply_s: list[float] = field(default_factory=list)
    batch_events: list[int] = field(default_factory=list)
    finished_at: float = 0.0
    finished_cpu: float = 0.0

    def positions(self) -> Mapping[str, str]:
        return self.host.positions()

    def apply_batch(
        self,
        events: Sequence[Any],
        *,
        stream_ids: dict[str, str],
        clock_ms: int,
        event_ms: Sequence[int],
    ) -> ApplyResult:
        started = time.perf_counter()
        result = self.host.apply_batch(
            events, stream_ids=stream_ids, clock_ms=clock_ms, event_ms=event_ms
        )
        now = time.perf_counter()
        self.apply_s.append(now - started)
        self.batch_events.append(len(events))
        if stream_ids.get(self.stream) == self.last_id:
            self.finished_at = now
            self.finished_cpu = time.process_time()
            self.done.set()
        return result

    def report_gap(self, stream: str, detail: str) -> None:
        self.host.report_gap(stream, detail)

    def report_reader(self, error: str) -> None:
        self.host.report_reader(error)


def _proc_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in bytes."""
    out: dict[str, int] = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def cpu_pressure() -> float | None:
    """/proc/pressure/cpu "some avg10": % of the last 10 s that runnable tasks waited."""
    try:
        with open("/proc/pressure/cpu") as handle:
            return float(handle.readline().split()[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        return None


def _mb(value: int) -> float:
    return round(value / 1024 / 1024, 1)


def _top(profile: cProfile.Profile, sort: str, limit: int) -> list[dict[str, Any]]:
    stats = pstats.Stats(profile)
    rows = []
    for (filename, line, function), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(filename).name}:{line}({function})",
                "calls": calls,
                "own_s": round(own, 4),
                "cumulative_s": round(cumulative, 4),
            }
        )
    key = "own_s" if sort == "tottime" else "cumulative_s"
    rows.sort(key=lambda row: row[key], reverse=True)
    return rows[:limit]


def _print_profile(profile: cProfile.Profile, limit: int) -> None:
    for sort in ("tottime", "cumulative"):
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats(sort).print_stats(limit)
        print(f"--- cProfile, top {limit} by {sort} ---")
        print(text.getvalue().split("\n", 4)[-1].rstrip())


def prefault(state: Any) -> float:
    """Write one value per 4 KiB page of the inventory arrays, so copy-on-write has copied
    them all (what a server that has applied a while has done already); returns seconds."""
    started = time.perf_counter()
    for name in Inventory.FIELDS:
        flat = getattr(state.inventory, name).reshape(-1)
        flat[:: max(1, 4096 // flat.itemsize)] += 0
    return time.perf_counter() - started


async def _drain(writer: StreamWriter, sink: TimedSink, timeout: float) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) from writer start to last entry applied."""
    stop = asyncio.Event()
    started = time.perf_counter()
    cpu = time.process_time()
    task = asyncio.create_task(writer.run(stop))
    try:
        await asyncio.wait_for(sink.done.wait(), timeout)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    return sink.finished_at - started, sink.finished_cpu - cpu


def run_writer(
    url: str,
    snapshot_path: Path,
    fill: Prefill,
    config: WriterConfig,
    *,
    profile: int,
    timeout: float,
    redis_pid: int | None = None,
    prefault_pages: bool = False,
    shared_dir: Path | None = None,
) -> dict[str, Any]:
    """Load the snapshot into a fresh host and drain the stream once; the run's report.

    With ``shared_dir``, the host is the multi-process writer's (``server.writer``): the
    state is published in shared memory there and every batch is applied left-right, to
    both instances — what ``pacache serve --workers N`` does.
    """
    started = time.perf_counter()
    host: StateHost
    shared = None
    if shared_dir is not None:
        from engine.shared import SharedWriter
        from server.writer import WriterHost

        shared = SharedWriter(shared_dir, lambda: snapshot.load(snapshot_path))
        host = WriterHost(config=HostConfig())
        host.adopt(shared)
        state = host.require()
    else:
        state = snapshot.load(snapshot_path)
        host = StateHost(config=HostConfig())
        host.load(state)
    load_s = time.perf_counter() - started
    prefault_s = prefault(state) if prefault_pages else None
    rss_loaded = _proc_status()["VmRSS"]
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    holder: dict[str, Any] = {}
    profiler = cProfile.Profile() if profile else None

    async def body() -> tuple[float, float]:
        # the Event belongs to the loop uvloop.run creates, so it is made inside it
        sink = TimedSink(host, fill.stream, fill.last_id, asyncio.Event())
        writer = StreamWriter(url, sink, config)
        holder.update(sink=sink, writer=writer)
        return await _drain(writer, sink, timeout)

    redis_cpu = cpu_seconds(redis_pid) if redis_pid else float("nan")
    if profiler is not None:
        profiler.enable()
    try:
        wall, cpu = uvloop.run(body())
    finally:
        if profiler is not None:
            profiler.disable()
    sink: TimedSink = holder["sink"]
    writer: StreamWriter = holder["writer"]
    status = _proc_status()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    redis_cpu = cpu_seconds(redis_pid) - redis_cpu if redis_pid else float("nan")
    apply_ms = np.array(sink.apply_s) * 1000
    stream_stats = writer.stats[fill.stream]
    report: dict[str, Any] = {
        "writer_config": {
            "count": config.count,
            "block_ms": config.block_ms,
            "lag_every_s": config.lag_every_s,
        },
        "snapshot_load_s": round(load_s, 2),
        "prefault_s": None if prefault_s is None else round(prefault_s, 2),
        # minor faults while draining: mostly copy-on-write copies of snapshot pages
        "minor_page_faults": faults,
        "wall_s": round(wall, 3),
        "events": stream_stats.applied,
        "entries": fill.entries,
        "events_per_s": round(stream_stats.applied / wall),
        "entries_per_s": round(fill.entries / wall, 1),
        # under CPU contention (a shared 2-core machine) wall rates vary run to run; events
        # per CPU-second of the writer's process is the steadier figure
        "writer_cpu_s": round(cpu, 3),
        "writer_cpu_share_of_wall": round(cpu / wall, 3),
        "events_per_writer_cpu_s": round(stream_stats.applied / cpu),
        "redis_server_cpu_s": round(redis_cpu, 3),
        "meets_target": stream_stats.applied / wall >= TARGET_EVENTS_PER_S,
        "batches": writer.batches,
        "events_per_batch_mean": round(float(np.mean(sink.batch_events)), 1),
        "apply_batch_s": round(float(apply_ms.sum()) / 1000, 3),
        "outside_apply_s": round(wall - float(apply_ms.sum()) / 1000, 3),
        "apply_ms_per_batch": {
            "p50": round(float(np.percentile(apply_ms, 50)), 2),
            "p99": round(float(np.percentile(apply_ms, 99)), 2),
            "max": round(float(apply_ms.max()), 2),
        },
        "host_applied": host.applied_total,
        "host_rejected": host.rejected_total,
        "host_stale": stream_stats.applied - host.applied_total - host.rejected_total,
        "dead_lettered": stream_stats.dead_lettered,
        "reconnects": writer.reconnects,
        "state_version": host.require().version,
        "shared_left_right": shared is not None,
        "rss_mb": {
            "after_load": _mb(rss_loaded),
            "after_apply": _mb(status["VmRSS"]),
            "peak": _mb(status["VmHWM"]),
        },
    }
    if profiler is not None:
        _print_profile(profiler, profile)
        report["profile"] = {
            "note": "cProfile adds overhead: the rates above are slower than unprofiled",
            "by_own_time": _top(profiler, "tottime", profile),
            "by_cumulative_time": _top(profiler, "cumulative", profile),
        }
    if shared is not None:
        shared.close()
    return report


def breakdown(
    url: str, snapshot_path: Path, fill: Prefill, count: int, *, prefault_pages: bool = False
) -> dict[str, Any]:
    """The writer's stages timed one by one, without profiler overhead: XREAD of the whole
    stream (``count`` entries per read, redis.asyncio + hiredis as the writer uses),
    msgpack decode, engine validation alone, ``StateHost.apply_batch`` on a fresh state with
    the same batches (validation included), and one lag-check XRANGE (the writer's
    ``_check_streams`` reads up to 100,000 pending entries, once a second)."""

    async def read() -> tuple[list[list[tuple[str, bytes]]], float, float]:
        client = aioredis.Redis.from_url(url)
        batches: list[list[tuple[str, bytes]]] = []
        position = "0-0"
        started = time.perf_counter()
        while position != fill.last_id:
            reply: Any = await client.xread({fill.stream: position}, count=count)
            entries = [(raw_id.decode(), fields[FIELD]) for raw_id, fields in reply[0][1]]
            batches.append(entries)
            position = entries[-1][0]
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        await client.xrange(fill.stream, min="(0-0", max="+", count=100_000)
        lag_s = time.perf_counter() - started
        await client.aclose()
        return batches, read_s, lag_s

    batches, read_s, lag_s = uvloop.run(read())
    started = time.perf_counter()
    decoded = [[decode(payload) for _, payload in batch] for batch in batches]
    decode_s = time.perf_counter() - started
    flat = [event for batch in decoded for entry in batch for event in entry]
    started = time.perf_counter()
    for event in flat:
        event_problem(event)
    validate_s = time.perf_counter() - started
    del flat
    state = snapshot.load(snapshot_path)
    if prefault_pages:
        prefault(state)
    host = StateHost(config=HostConfig())
    host.load(state)
    apply_s = 0.0
    for batch, events_of in zip(batches, decoded, strict=True):
        events = [event for entry in events_of for event in entry]
        event_ms = [
            int(entry_id.split("-", 1)[0])
            for (entry_id, _), entry in zip(batch, events_of, strict=True)
            for _ in entry
        ]
        clock = max(event_ms)
        ids = {fill.stream: batch[-1][0]}
        started = time.perf_counter()
        host.apply_batch(events, stream_ids=ids, clock_ms=clock, event_ms=event_ms)
        apply_s += time.perf_counter() - started

    def stage(seconds: float) -> dict[str, Any]:
        return {"seconds": round(seconds, 3), "events_per_s": round(fill.events / seconds)}

    del host, state, batches, decoded
    gc.collect()
    return {
        "xread": stage(read_s),
        "decode": stage(decode_s),
        "validate_only": stage(validate_s),
        "apply_batch": stage(apply_s),
        "sum_xread_decode_apply_s": round(read_s + decode_s + apply_s, 3),
        "lag_check_xrange_of_full_backlog_s": round(lag_s, 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stream_apply",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--extract", required=True, help="extract dir (items/locations.parquet)")
    parser.add_argument("--snapshot", required=True, help="snapshot root (the newest is loaded)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100, help="events per stream entry")
    parser.add_argument("--adjust-fraction", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prefix", default="bench")
    parser.add_argument(
        "--count", type=int, action="append",
        help="writer XREAD COUNT (entries per stream per read); repeat to compare "
        f"(default: WriterConfig's, {WriterConfig().count})",
    )  # fmt: skip
    parser.add_argument("--block-ms", type=int, default=WriterConfig().block_ms)
    parser.add_argument(
        "--lag-every-s", type=float, default=WriterConfig().lag_every_s,
        help="writer's lag check interval (its XRANGE re-reads the pending entries); a huge "
        "value switches the check off, to see what it costs",
    )  # fmt: skip
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N",
        help="run the writer under cProfile and show the top N functions",
    )  # fmt: skip
    parser.add_argument(
        "--breakdown", action="store_true",
        help="also time XREAD, decode, validation and apply one by one",
    )  # fmt: skip
    parser.add_argument(
        "--prefault", action="store_true",
        help="copy every inventory page of the loaded snapshot before the clock starts "
        "(steady state; without it the drain pays the copy-on-write faults of a fresh load)",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1, help="drains per --count")
    parser.add_argument(
        "--shared", action="store_true",
        help="apply as the multi-process writer does (state in /dev/shm, each batch applied "
        "to both instances, left-right)",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=150.0, help="seconds per drain")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args(argv)

    found = snapshot.latest(args.snapshot)
    if found is None:
        print(f"no snapshot under {args.snapshot}", file=sys.stderr)
        return 2
    manifest = json.loads((Path(args.extract) / "extract.json").read_text())
    skus, locations = load_codes(args.extract)
    counts = args.count or [WriterConfig().count]
    report: dict[str, Any] = {
        "benchmark": "stream_apply",
        "machine": machine_info(),
        "scale": manifest.get("scale"),
        "extract": str(args.extract),
        "snapshot": str(found),
        "seed": args.seed,
        "events": args.events,
        "events_per_entry": args.batch,
        "adjust_fraction": args.adjust_fraction,
        "skus": len(skus),
        "locations": len(locations),
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "load_average_at_start": os.getloadavg(),
        "runs": [],
    }
    print(
        f"scale {report['scale']}: {len(skus):,} SKUs x {len(locations)} locations; "
        f"{args.events:,} events, {args.batch} per entry, {args.adjust_fraction:.0%} adjusts"
    )
    with tempfile.TemporaryDirectory(prefix="pacache-stream-apply-") as tmp:
        server = RedisProcess(Path(tmp) / "redis").start()
        report["machine"]["libraries"]["redis-server"] = _redis_version(server)
        try:
            client = server.client()
            stream = f"{args.prefix}:inventory"
            entries = generate_entries(
                skus, locations, args.events, args.batch,
                adjust_fraction=args.adjust_fraction, seed=args.seed,
            )  # fmt: skip
            fill = prefill(client, stream, entries, args.events)
            used = int(client.info("memory")["used_memory"])
            client.close()
            report["prefill"] = {
                "entries": fill.entries,
                "seconds": round(fill.seconds, 2),
                "payload_mb": _mb(fill.payload_bytes),
                "redis_used_memory_mb": _mb(used),
            }
            print(
                f"pre-filled {stream}: {fill.entries:,} entries "
                f"({_mb(fill.payload_bytes)} MB msgpack) in {fill.seconds:.1f}s; "
                f"redis used_memory {_mb(used)} MB"
            )
            redis_pid = server.process.pid if server.process else None
            for count, attempt in itertools.product(counts, range(args.repeat)):
                config = WriterConfig(
                    prefix=args.prefix,
                    count=count,
                    block_ms=args.block_ms,
                    lag_every_s=args.lag_every_s,
                )
                pressure = cpu_pressure()
                shared_dir = Path(f"/dev/shm/pacache-bench-{os.getpid()}") if args.shared else None
                run = run_writer(
                    server.url, found, fill, config,
                    profile=args.profile, timeout=args.timeout, redis_pid=redis_pid,
                    prefault_pages=args.prefault,
                    shared_dir=shared_dir,
                )  # fmt: skip
                run["attempt"] = attempt
                run["cpu_pressure_some_avg10_before"] = pressure
                gc.collect()  # the run's state and its copy-on-write pages go before the next
                report["runs"].append(run)
                print(
                    f"count={count:<6} block={args.block_ms}ms lag_every={args.lag_every_s}s: "
                    f"{run['events_per_s']:>9,} events/s  {run['entries_per_s']:>9,} entries/s  "
                    f"wall {run['wall_s']}s (CPU {run['writer_cpu_share_of_wall']:.0%} of it: "
                    f"{run['events_per_writer_cpu_s']:,} events/CPU-s)  batches {run['batches']}  "
                    f"apply {run['apply_batch_s']}s / other {run['outside_apply_s']}s  "
                    f"batch apply max {run['apply_ms_per_batch']['max']} ms  "
                    f"RSS {run['rss_mb']['after_apply']} MB (peak {run['rss_mb']['peak']})  "
                    f"{'OK' if run['meets_target'] else 'BELOW'} target {TARGET_EVENTS_PER_S:,}"
                )
                if args.breakdown and attempt == 0:
                    parts = run["breakdown"] = breakdown(
                        server.url, found, fill, count, prefault_pages=args.prefault
                    )
                    gc.collect()
                    print(
                        "  stages alone: "
                        + "  ".join(
                            f"{name} {parts[name]['seconds']}s ({parts[name]['events_per_s']:,}/s)"
                            for name in ("xread", "decode", "validate_only", "apply_batch")
                        )
                        + "  | lag-check XRANGE of the full backlog "
                        f"{parts['lag_check_xrange_of_full_backlog_s']}s"
                    )
        finally:
            server.stop()
    report["load_average_at_end"] = os.getloadavg()
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=1) + "\n")
    return 0


def _redis_version(server: Any) -> str:
    client = server.client()
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
