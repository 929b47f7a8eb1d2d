"""Workers = 1 and 2 over one shared state: throughput, latency, server CPU per call, memory.

What it measures, for each worker count: ``pacache serve --snapshot ROOT --workers N`` is
started; a closed-loop client (one process, ``--channels`` channels each with its own
connection, so the kernel's SO_REUSEPORT spreads them over the workers) drives Admin Ping
and then 50-line Quotes (seeded carts from the extract's workload). Server CPU per call is
the CPU the *worker* processes used in the measured window (from /proc) ÷ calls; the
writer's CPU is reported beside it (it is idle here: no deltas stream in). After the load,
every process's memory is read from /proc/PID/smaps_rollup: RSS (counts the shared state
pages a process has touched), PSS, and private memory (USS) — the memory a process alone
holds, i.e. what starting one more worker adds to the machine. The state's size is the
size of one published instance's files in shared memory.

    python -m bench.workers --extract DIR --snapshot DIR [--workers 1,2] [--seconds 10]
        [--concurrency 16] [--channels 8] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import grpc

from bench import procstat
from bench.closed_loop import LoadResult, run_closed_loop
from bench.freshness import quote_requests
from bench.machine import machine_info
from bench.procstat import cpu_seconds, memory
from server._proto.pacache.v1 import pacache_pb2 as pb
from server._proto.pacache.v1 import pacache_pb2_grpc as pb_grpc
from server.client import Client
from server.spawn import Spawned, spawn

MB = 1024 * 1024


def _roles(server: Spawned, workers: int) -> tuple[int, list[int]]:
    """(writer pid, worker pids): workers are the children that answer Admin Stats."""
    seen: set[int] = set()
    options = (("grpc.use_local_subchannel_pool", 1),)
    for _ in range(200):
        with Client(server.target, options=options) as client:
            seen.add(int(client.stats().counts["pid"]))
        if len(seen) == workers:
            break
    children = procstat.children(server.process.pid)
    writers = [p for p in children if p not in seen]
    if len(seen) != workers or len(writers) != 1:
        raise RuntimeError(f"expected {workers} workers + 1 writer, saw {seen} of {children}")
    return writers[0], sorted(seen)


def _state_bytes(server: Spawned) -> int:
    """Size of one published instance (the files of instance A in shared memory)."""
    base = Path("/dev/shm") / f"pacache-{server.process.pid}"
    return sum(f.stat().st_size for f in base.glob("state-*/a/*") if f.is_file())


def _row(result: LoadResult) -> dict[str, Any]:
    return {
        "throughput_rps": round(result.throughput, 1),
        "p50_ms": round(result.percentile_ms(50), 3),
        "p99_ms": round(result.percentile_ms(99), 3),
        "server_cpu_us_per_call": round(result.server_cpu_us_per_call, 1),
        "calls": result.calls,
        "errors": result.errors,
    }


def measure(
    snapshot_root: str, workers: int, requests: list[Any], args: argparse.Namespace
) -> dict[str, Any]:
    started = time.monotonic()
    server = spawn(["--snapshot", snapshot_root, "--port", "0", "--workers", str(workers)])
    ready_s = time.monotonic() - started
    try:
        writer, worker_pids = _roles(server, workers)

        def worker_cpu() -> float:
            return sum(cpu_seconds(pid) for pid in worker_pids)

        writer_before = cpu_seconds(writer)
        load: dict[str, Any] = {}
        for name, call, reqs in (
            ("ping", lambda ch: pb_grpc.AdminServiceStub(ch).Ping, [pb.PingRequest()]),
            ("quote50", lambda ch: pb_grpc.PriceAvailabilityServiceStub(ch).Quote, requests),
        ):
            result = run_closed_loop(
                server.target, call, reqs, concurrency=args.concurrency, seconds=args.seconds,
                channels=args.channels, server_cpu=worker_cpu,
            )  # fmt: skip
            load[name] = _row(result)
        load["writer_cpu_s"] = round(cpu_seconds(writer) - writer_before, 3)
        load["cpu_ratio_quote_to_ping"] = round(
            load["quote50"]["server_cpu_us_per_call"] / load["ping"]["server_cpu_us_per_call"], 3
        )
        processes = {"supervisor": server.process.pid, "writer": writer}
        processes |= {f"worker{i}": pid for i, pid in enumerate(worker_pids)}
        load["memory_mb"] = {
            role: {k: round(v / MB, 1) for k, v in memory(pid).items()}
            for role, pid in processes.items()
        }
        load["state_mb"] = round(_state_bytes(server) / MB, 1)
        load["ready_s"] = round(ready_s, 1)
        return load
    finally:
        server.stop(timeout=120)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__)
    parser.add_argument("--extract", required=True)
    parser.add_argument("--snapshot", required=True)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--lines", type=int, default=50)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    manifest = json.loads((Path(args.extract) / "extract.json").read_text())
    requests = quote_requests(args.extract, args.lines, 256, manifest["reference_date"], seed=1)
    report: dict[str, Any] = {
        "machine": machine_info(),
        "grpcio": grpc.__version__,
        "lines": args.lines,
        "concurrency": args.concurrency,
        "channels": args.channels,
        "seconds": args.seconds,
        "runs": {},
    }
    for n in (int(x) for x in args.workers.split(",")):
        run = measure(args.snapshot, n, requests, args)
        report["runs"][str(n)] = run
        q, p = run["quote50"], run["ping"]
        print(
            f"workers={n}: quote50 {q['throughput_rps']:.0f}/s p50 {q['p50_ms']:.2f} ms "
            f"p99 {q['p99_ms']:.2f} ms, {q['server_cpu_us_per_call']:.0f} µs CPU/call; "
            f"ping {p['server_cpu_us_per_call']:.0f} µs CPU/call; writer {run['writer_cpu_s']} s"
        )
        for role, mem in run["memory_mb"].items():
            print(f"  {role:10} rss {mem['rss']:9.1f} MB  pss {mem['pss']:9.1f} MB  "
                  f"private {mem['private']:8.1f} MB")  # fmt: skip
        print(f"  state (one instance in shared memory): {run['state_mb']:.1f} MB")
    runs = report["runs"]
    if "1" in runs and "2" in runs:
        one, two = runs["1"]["quote50"], runs["2"]["quote50"]
        report["cpu_per_quote_2_vs_1"] = round(
            two["server_cpu_us_per_call"] / one["server_cpu_us_per_call"], 3
        )
        second = runs["2"]["memory_mb"]["worker1"]["private"]
        report["second_worker_private_mb"] = second
        report["second_worker_private_vs_state"] = round(second / runs["2"]["state_mb"], 4)
        print(
            f"CPU per 50-line Quote, workers=2 / workers=1: {report['cpu_per_quote_2_vs_1']:.3f}; "
            f"second worker's private memory {second:.1f} MB = "
            f"{100 * report['second_worker_private_vs_state']:.2f}% of the state"
        )
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
