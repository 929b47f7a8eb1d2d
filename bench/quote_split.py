"""Where a served 50-line Quote's time goes, step by step, in one process.

Each step of what a worker does for a Quote is timed alone over the same seeded carts
(the engine benchmarks' 64 carts, Zipf SKUs): reading the request's lines out of the
protobuf message, the engine quote (one kernel call), the same with ``explain``, building
the protobuf answer, serialising it; and Promise on the same carts. Each figure is the
lowest of five medians (this VM's timings move a lot between runs).

    python -m bench.quote_split --extract DIR --snapshot DIR [--lines 50] [--json FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.datagen import Workload
from bench.machine import machine_info
from engine import snapshot
from engine.promise import promise
from engine.quote import quote
from server import convert
from server._proto.pacache.v1 import pacache_pb2 as pb

REPEATS = 5


def _median_us(step: Callable[[Any], Any], items: Sequence[Any], calls: int) -> float:
    """The lowest of REPEATS medians of ``step`` over ``items`` in turn, in µs."""
    medians = []
    for _ in range(REPEATS):
        times = []
        for item in itertools.islice(itertools.cycle(items), calls):
            started = time.perf_counter()
            step(item)
            times.append(time.perf_counter() - started)
        times.sort()
        medians.append(times[len(times) // 2] * 1e6)
    return round(min(medians), 1)


def _request(cart: Any) -> Any:
    request = pb.QuoteRequest(account=cart.account, region=cart.region)
    request.lines.skus.extend(cart.skus)
    request.lines.quantities.extend(int(q) for q in cart.qty)
    if cart.uoms:
        request.lines.uoms.extend(cart.uoms)
    return pb.QuoteRequest.FromString(request.SerializeToString())  # as a server gets it


def measure(extract: str, snapshot_root: str, lines: int, calls: int) -> dict[str, Any]:
    found = snapshot.latest(Path(snapshot_root))
    if found is None:
        raise SystemExit(f"no snapshot under {snapshot_root}")
    state = snapshot.load(found)
    workload = Workload.from_extract(extract, seed=1)
    carts = [workload.cart(lines) for _ in range(64)]
    requests = [_request(cart) for cart in carts]

    def engine_quote(cart: Any, explain: bool = False) -> Any:
        return quote(
            state, account=cart.account, skus=cart.skus, qty=cart.qty, uoms=cart.uoms,
            region=cart.region, pricing_date=cart.pricing_date, explain=explain,
        )  # fmt: skip

    def build(result: Any) -> pb.QuoteResponse:
        response = pb.QuoteResponse()
        convert.quote_response(response, state, result, with_prices=True, with_availability=True)
        return response

    def plan(cart: Any) -> Any:
        return promise(
            state, skus=cart.skus, qty=cart.qty, uoms=cart.uoms, region=cart.region,
            today=cart.pricing_date,
        )  # fmt: skip

    results = [engine_quote(cart) for cart in carts]  # also warms the contexts
    answers = [build(result) for result in results]
    return {
        "parse_request_lines_us": _median_us(
            lambda r: convert.lines_from_proto(r.lines, 5_000), requests, calls
        ),
        "engine_quote_us": _median_us(engine_quote, carts, calls),
        "engine_quote_explain_us": _median_us(lambda c: engine_quote(c, True), carts, calls),
        "build_protobuf_answer_us": _median_us(build, results, calls),
        "serialise_answer_us": _median_us(lambda a: a.SerializeToString(), answers, calls),
        "engine_promise_us": _median_us(plan, carts, calls),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quote_split", description=__doc__)
    parser.add_argument("--extract", required=True)
    parser.add_argument("--snapshot", required=True)
    parser.add_argument("--lines", type=int, default=50)
    parser.add_argument("--calls", type=int, default=640, help="calls per median (default 640)")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    report = {
        "machine": machine_info(),
        "lines": args.lines,
        "steps": measure(args.extract, args.snapshot, args.lines, args.calls),
    }
    for step, micros in report["steps"].items():
        print(f"{step:28} {micros:10.1f}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
