"""``python -m bench.baselines.load``: load an extract into a baseline's store, then exit.

Run in its own process by ``start_baseline`` so the server process holds only what it keeps
(the Redis and PostgreSQL servers hold the data; the loader's memory goes away with it).
"""

from __future__ import annotations

import argparse
import sys
import time

from bench.baselines.dataset import extract_events, load_world

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines.load")
    parser.add_argument("--system", choices=("redis", "postgres"), required=True)
    parser.add_argument("--extract", required=True)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--prefix", default="pab")
    parser.add_argument("--pg-url", default="postgresql:///postgres?host=/var/run/postgresql")
    parser.add_argument("--schema", default="pacache_baseline")
    args = parser.parse_args(argv)
    started = time.monotonic()
    world = load_world(extract_events(args.extract))
    read_s = time.monotonic() - started
    if args.system == "redis":
        from bench.baselines.redis_store import load_redis

        counts = load_redis(world, args.redis_url, args.prefix)
    else:
        from bench.baselines.postgres_store import load_postgres

        counts = load_postgres(world, args.pg_url, args.schema)
    print(
        f"loaded {args.system} from {args.extract}: {counts} "
        f"(read {read_s:.1f}s, total {time.monotonic() - started:.1f}s)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
