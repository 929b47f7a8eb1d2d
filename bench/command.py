"""``pacache bench``: the flags, and the run → report → README wiring.

The measuring is in ``bench.suite``, the rendering in ``bench.report`` and
``bench.readme_table``; this module only parses and connects them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench.suite import REPO, Options

__all__ = ["add_arguments", "main"]

DEFAULT_OUT = REPO / "bench" / "results"


def _integers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``pacache bench``."""
    parser.add_argument("--scale", choices=("tiny", "small", "large"), default="small")
    parser.add_argument(
        "--data", type=Path,
        default=Path(os.environ.get("PACACHE_BENCH_DATA", REPO / ".data" / "bench")),
        help="holds <scale>/ (extract) and snapshots/<scale>/ (generated and built when "
        "missing); default $PACACHE_BENCH_DATA or .data/bench",
    )  # fmt: skip
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=0.5, help="warm-up seconds per run")
    parser.add_argument(
        "--prime-seconds", type=float, default=2.0,
        help="unmeasured load on each freshly started server before its first run (cold "
        "pages of a memory-mapped snapshot); raise it at the large scale",
    )  # fmt: skip
    parser.add_argument(
        "--concurrency", type=_integers, default=[1, 4, 16, 64],
        help="closed-loop sweep, comma-separated (default 1,4,16,64)",
    )  # fmt: skip
    parser.add_argument(
        "--rate", type=_floats, default=[],
        help="open-loop rates (calls/s, comma-separated) to run for every system instead of "
        "the automatic search for the rate at p99 ≤ 10 ms",
    )  # fmt: skip
    parser.add_argument(
        "--systems", type=lambda t: [s.strip() for s in t.split(",") if s.strip()],
        default=["pacache", "ping", "redis", "postgres", "python"],
        help="comma-separated: pacache, pacache-wN (--workers N), ping, redis, postgres, "
        "python (default pacache,ping,redis,postgres,python)",
    )  # fmt: skip
    parser.add_argument(
        "--pg-url", default="postgresql:///postgres?host=/var/run/postgresql",
        help="PostgreSQL for the postgres baseline (skipped when none answers)",
    )  # fmt: skip
    parser.add_argument(
        "--redis-url", default=None,
        help="Redis for the redis baseline and the deltas streams (default: private "
        "redis-servers on free ports)",
    )  # fmt: skip
    parser.add_argument(
        "--deltas-rate", type=float, default=0.0,
        help="InventorySet events/s streamed through Redis into a pacache server for the "
        "freshness run (0: no freshness run)",
    )  # fmt: skip
    parser.add_argument("--mix", default="quote=80,availability=10,promise=10")
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument("--channels", type=int, default=2, help="channels per load process")
    parser.add_argument("--pool-size", type=int, default=1024, help="distinct requests")
    parser.add_argument("--check-sample", type=int, default=50, help="requests compared")
    parser.add_argument(
        "--profile-seconds", type=float, default=3.0,
        help="profile pacache this long when a target is missed (0: never)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_path", type=Path, help="per-system summary JSON")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report directory")
    parser.add_argument("--workdir", type=Path, help="keep server logs here (default: temp)")
    parser.add_argument(
        "--update-readme", action="store_true",
        help="rewrite README.md's bench section from the newest reports in --out",
    )  # fmt: skip
    parser.add_argument(
        "--readme-only", action="store_true",
        help="only rewrite README.md's bench section (no run)",
    )  # fmt: skip


def main(args: argparse.Namespace) -> int:
    """Entry point of ``pacache bench``."""
    from bench.readme_table import update_readme

    readme = REPO / "README.md"
    if args.readme_only:
        update_readme(readme, args.out)
        print(f"rewrote the bench section of {readme} from {args.out}")
        return 0
    from bench.report import write_report
    from bench.suite import run_suite

    options = Options(
        scale=args.scale, data=args.data, seconds=args.seconds, warmup=args.warmup,
        prime_seconds=args.prime_seconds,
        concurrency=args.concurrency, rates=args.rate, systems=args.systems,
        pg_url=args.pg_url, redis_url=args.redis_url, deltas_rate=args.deltas_rate,
        mix=args.mix, load_processes=args.load_processes, channels=args.channels,
        pool_size=args.pool_size, check_sample=args.check_sample,
        profile_seconds=args.profile_seconds, seed=args.seed, workdir=args.workdir,
    )  # fmt: skip

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    report = run_suite(options, log)
    written = write_report(report, args.out, json_path=args.json_path)
    for kind, path in written.items():
        print(f"{kind}: {path}")
    if args.update_readme:
        update_readme(readme, args.out)
        print(f"README.md bench section rewritten from {args.out}")
    return 0
