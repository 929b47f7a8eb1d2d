"""Server CPU per 50-line Quote ÷ server CPU per Ping, for grpc.aio+uvloop and sync grpc.

What it measures: the framework floor (Admin Ping, no work) and a 50-line Quote (seeded
carts from the extract's workload, distinct SKUs), each closed-loop for ``--seconds`` with
``--concurrency`` calls in flight, against the same snapshot served by
``python -m server.serve`` (aio, the product) and ``python -m bench.sync_server``. Server
CPU comes from /proc (utime + stime) over the measured window only.

    python -m bench.cpu_ratio --extract DIR --snapshot DIR [--seconds 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.closed_loop import LoadResult, run_closed_loop
from bench.freshness import quote_requests
from bench.machine import machine_info
from bench.procstat import cpu_seconds
from server._proto.pacache.v1 import pacache_pb2 as pb
from server._proto.pacache.v1 import pacache_pb2_grpc as pb_grpc
from server.spawn import spawn

# both in one process (--workers 0): this compares the frameworks, not the process layout
SERVERS = {
    "aio+uvloop": ("server.serve", ["--workers", "0"]),
    "sync (8 threads)": ("bench.sync_server", []),
}


def measure(
    kind: str, snapshot_root: str, requests: list[Any], seconds: float, concurrency: int
) -> dict[str, LoadResult]:
    module, extra = SERVERS[kind]
    server = spawn(["--snapshot", snapshot_root, "--port", "0", *extra], module=module)
    target = server.target
    try:

        def cpu() -> float:
            return cpu_seconds(server.process.pid)

        ping = run_closed_loop(
            target, lambda ch: pb_grpc.AdminServiceStub(ch).Ping, [pb.PingRequest()],
            concurrency=concurrency, seconds=seconds, server_cpu=cpu,
        )  # fmt: skip
        quote = run_closed_loop(
            target, lambda ch: pb_grpc.PriceAvailabilityServiceStub(ch).Quote, requests,
            concurrency=concurrency, seconds=seconds, server_cpu=cpu,
        )  # fmt: skip
    finally:
        server.stop()
    return {"ping": ping, "quote50": quote}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_ratio", description=__doc__)
    parser.add_argument("--extract", required=True)
    parser.add_argument("--snapshot", required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--lines", type=int, default=50)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    manifest = json.loads((Path(args.extract) / "extract.json").read_text())
    requests = quote_requests(args.extract, args.lines, 256, manifest["reference_date"], seed=1)
    report: dict[str, Any] = {"machine": machine_info(), "lines": args.lines, "modes": {}}
    print(f"{'server':18} {'call':8} {'rps':>8} {'p50 ms':>8} {'p99 ms':>8} {'cpu µs/call':>12}")
    for kind in SERVERS:
        results = measure(kind, args.snapshot, requests, args.seconds, args.concurrency)
        mode: dict[str, Any] = {}
        for call, result in results.items():
            mode[call] = {
                "throughput_rps": round(result.throughput, 1),
                "p50_ms": round(result.percentile_ms(50), 3),
                "p99_ms": round(result.percentile_ms(99), 3),
                "server_cpu_us_per_call": round(result.server_cpu_us_per_call, 1),
                "errors": result.errors,
            }
            print(
                f"{kind:18} {call:8} {result.throughput:8.0f} {result.percentile_ms(50):8.3f} "
                f"{result.percentile_ms(99):8.3f} {result.server_cpu_us_per_call:12.1f}"
            )
        ratio = mode["quote50"]["server_cpu_us_per_call"] / mode["ping"]["server_cpu_us_per_call"]
        mode["cpu_ratio_quote_to_ping"] = round(ratio, 3)
        print(f"{kind:18} server CPU per {args.lines}-line Quote / per Ping = {ratio:.2f}")
        report["modes"][kind] = mode
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
