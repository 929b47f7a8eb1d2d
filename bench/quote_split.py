"""Where a served 50-line Quote's time goes, step by step, in one process.

Each step of what a worker does for a Quote is timed alone over the same seeded carts
(the engine benchmarks' 64 carts, Zipf SKUs): reading the request's lines out of the
protobuf message (``server.convert.request_lines``), the engine quote (one kernel call),
the same with ``explain``, encoding the answer's wire bytes as a worker does
(``convert.answer_inputs`` + ``convert.encode_answer``, the compiled encoder), and for
comparison building the same answer with protobuf's classes (``convert.build_answer``)
and serialising that; and Promise on the same carts. The engine quote is
also timed without prices, without availability and without either (the rest is code
lookup, line checks and the Python around the kernel), and over one cart repeated (all of
it in the CPU caches). It counts the candidate contract lines a cart evaluates (SKU lines
and group lines, from ``explain``). Each figure is the lowest of five medians (this VM's
timings move a lot between runs).

``--huge-pages`` first copies every state array of 2 MB or more into anonymous memory
advised MADV_HUGEPAGE (transparent huge pages must be ``madvise`` or ``always``; it takes
about 15 s and 5 GB at the large scale), to show what 4 KB pages cost the quote.

    python -m bench.quote_split --extract DIR --snapshot DIR [--lines 50] [--huge-pages]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import mmap
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.datagen import Workload
from bench.machine import machine_info
from engine import snapshot
from engine.pricing import Policy, Source
from engine.promise import promise
from engine.quote import quote
from engine.shared import set_path, shared_paths
from engine.state import State
from server import convert
from server._proto.pacache.v1 import pacache_pb2 as pb
from server.client import quote_lines

REPEATS = 5
HUGE_PAGE = 2 << 20


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
    request = pb.QuoteRequest(
        account=cart.account,
        region=cart.region,
        lines=quote_lines(list(zip(cart.skus, cart.qty, cart.uoms, strict=True))),
    )
    return pb.QuoteRequest.FromString(request.SerializeToString())  # as a server gets it


def _onto_huge_pages(state: State) -> int:
    """Copy every state array of 2 MB or more into anonymous memory advised to use huge
    pages; the bytes moved. Where the kernel refuses huge pages this is a plain copy."""
    moved = 0
    for path, array in list(shared_paths(state)):
        if array.nbytes < HUGE_PAGE:
            continue
        size = -(-array.nbytes // HUGE_PAGE) * HUGE_PAGE
        region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        region.madvise(mmap.MADV_HUGEPAGE)
        copy = np.frombuffer(region, dtype=array.dtype, count=array.size).reshape(array.shape)
        copy[...] = array
        set_path(state, path, copy)
        moved += array.nbytes
    return moved


def _candidate_lines(results: Sequence[Any]) -> dict[str, float]:
    """Contract lines evaluated per cart (from explain): SKU lines and group lines."""
    sku_lines = group_lines = 0
    for result in results:
        for found in result.prices.candidates:
            for candidate in found:
                if candidate.source == Source.CONTRACT:
                    if candidate.target_group < 0:
                        sku_lines += 1
                    else:
                        group_lines += 1
    return {
        "sku_lines_per_cart": round(sku_lines / len(results), 1),
        "group_lines_per_cart": round(group_lines / len(results), 1),
    }


def measure(
    extract: str, snapshot_root: str, lines: int, calls: int, huge_pages: bool = False
) -> dict[str, Any]:
    found = snapshot.latest(Path(snapshot_root))
    if found is None:
        raise SystemExit(f"no snapshot under {snapshot_root}")
    state = snapshot.load(found)
    moved = _onto_huge_pages(state) if huge_pages else 0
    workload = Workload.from_extract(extract, seed=1)
    carts = [workload.cart(lines) for _ in range(64)]
    requests = [_request(cart) for cart in carts]

    def engine_quote(
        cart: Any, explain: bool = False, prices: bool = True, stock: bool = True
    ) -> Any:
        return quote(
            state, account=cart.account, skus=cart.skus, qty=cart.qty, uoms=cart.uoms,
            region=cart.region, pricing_date=cart.pricing_date, explain=explain,
            with_prices=prices, with_availability=stock,
        )  # fmt: skip

    def inputs(pair: tuple[convert.RequestLines, Any]) -> convert.AnswerInputs:
        lines, result = pair
        return convert.answer_inputs(convert.KIND_QUOTE, state, result, lines, Policy.PRIORITY)

    def encode(pair: tuple[convert.RequestLines, Any]) -> bytes:
        """What a worker does after the engine: the answer's wire bytes."""
        return convert.encode_answer(inputs(pair))

    def build(pair: tuple[convert.RequestLines, Any]) -> pb.QuoteResponse:
        """The same answer with protobuf's classes (the encoder's reference)."""
        response: pb.QuoteResponse = convert.build_answer(inputs(pair))
        return response

    def plan(cart: Any) -> Any:
        return promise(
            state, skus=cart.skus, qty=cart.qty, uoms=cart.uoms, region=cart.region,
            today=cart.pricing_date,
        )  # fmt: skip

    parsed = [convert.request_lines(request, 5_000) for request in requests]
    results = [engine_quote(cart) for cart in carts]  # also warms the contexts
    built = list(zip(parsed, results, strict=True))  # the request's lines and its result
    answers = [build(pair) for pair in built]
    for pair, answer in zip(built, answers, strict=True):  # the same answer both ways
        assert pb.QuoteResponse.FromString(encode(pair)) == answer
    steps = {
        "parse_request_lines_us": _median_us(
            lambda r: convert.request_lines(r, 5_000), requests, calls
        ),
        "engine_quote_us": _median_us(engine_quote, carts, calls),
        "engine_quote_no_prices_us": _median_us(
            lambda c: engine_quote(c, prices=False), carts, calls
        ),
        "engine_quote_no_availability_us": _median_us(
            lambda c: engine_quote(c, stock=False), carts, calls
        ),
        "engine_quote_neither_us": _median_us(
            lambda c: engine_quote(c, prices=False, stock=False), carts, calls
        ),
        "engine_quote_one_cart_repeated_us": _median_us(engine_quote, carts[:1], calls),
        "engine_quote_explain_us": _median_us(lambda c: engine_quote(c, True), carts, calls),
        "encode_answer_us": _median_us(encode, built, calls),
        "build_protobuf_answer_us": _median_us(build, built, calls),
        "serialise_answer_us": _median_us(lambda a: a.SerializeToString(), answers, calls),
        "engine_promise_us": _median_us(plan, carts, calls),
    }
    explained = [engine_quote(cart, explain=True) for cart in carts]
    return {"huge_pages_bytes": moved, "steps": steps, **_candidate_lines(explained)}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quote_split", description=__doc__)
    parser.add_argument("--extract", required=True)
    parser.add_argument("--snapshot", required=True)
    parser.add_argument("--lines", type=int, default=50)
    parser.add_argument("--calls", type=int, default=640, help="calls per median (default 640)")
    parser.add_argument(
        "--huge-pages", action="store_true", help="copy the state onto 2 MB pages first"
    )
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    report = {
        "machine": machine_info(),
        "lines": args.lines,
        **measure(args.extract, args.snapshot, args.lines, args.calls, args.huge_pages),
    }
    for step, micros in report["steps"].items():
        print(f"{step:36} {micros:10.1f}")
    print(f"candidate contract lines per cart: {report['sku_lines_per_cart']} SKU lines, "
          f"{report['group_lines_per_cart']} group lines")  # fmt: skip
    if args.huge_pages:
        print(f"moved onto huge pages: {report['huge_pages_bytes'] / 2**20:,.0f} MB")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
