"""The systems the end-to-end benchmark measures, started the same way for every run.

- ``pacache``: ``python -m server.serve`` on the snapshot as deployed (``--workers`` left at
  its default, one worker per core), through ``server.spawn``; ``pacache-wN``: the same with
  ``--workers N`` (``pacache-w0``: everything in one process);
- ``ping``: baseline (a), Admin Ping on the pacache server the run already has (the
  framework's floor: gRPC, interceptors and the event loop, no work);
- ``redis``, ``postgres``, ``python``: baselines (b)–(d) from ``bench.baselines``, which
  prepares their data from the same extract.

Each is a :class:`Running` with a target, the pid whose CPU and memory count (with its
descendants) and how to stop it.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.spawn import Spawned, spawn

__all__ = [
    "BASELINES",
    "Running",
    "SystemUnavailable",
    "pacache_arguments",
    "start_baseline_system",
    "start_pacache",
]

BASELINES = ("redis", "postgres", "python")
_PACACHE = re.compile(r"pacache(?:-w(\d+))?")


class SystemUnavailable(Exception):
    """A system could not be started here; the message says why (it goes in the report)."""


@dataclass
class Running:
    """A system under test."""

    name: str
    target: str
    pid: int
    stop: Callable[[], None] = field(repr=False)
    pool: str = "mix"  # which request pool it answers: "mix", or "ping" for baseline (a)
    # processes whose CPU and memory count as the system's beside ``pid``'s tree: a Redis
    # baseline's redis-server, a PostgreSQL baseline's backends
    store_pids: list[int] = field(default_factory=list)


def pacache_arguments(name: str) -> list[str] | None:
    """Extra serve flags of a pacache system name: ``pacache`` → [], ``pacache-w2`` →
    ``--workers 2``; None when ``name`` is not a pacache system."""
    found = _PACACHE.fullmatch(name)
    if found is None:
        return None
    return ["--workers", found.group(1)] if found.group(1) else []


SUITE_MAX_IN_FLIGHT = 1024
SUITE_MAX_QUEUED_LINES = 1_000_000


def start_pacache(
    name: str,
    snapshot_root: Path,
    log: Path,
    *,
    today: str | None,
    extra: Sequence[str] = (),
    module: str = "server.serve",
    env: dict[str, str] | None = None,
) -> tuple[Running, Spawned]:
    """Serve the newest snapshot under ``snapshot_root`` as system ``name``."""
    flags = pacache_arguments(name)
    if flags is None:
        raise ValueError(f"{name!r} is not a pacache system")
    # the suite measures latency and throughput curves (up to 64 callers closed loop, 256
    # outstanding open loop), not admission (bench.overload does): no call is refused
    arguments = [
        "--snapshot", str(snapshot_root), "--port", "0", "--grace", "2",
        "--max-in-flight", str(SUITE_MAX_IN_FLIGHT),
        "--max-queued-lines", str(SUITE_MAX_QUEUED_LINES), *flags,
    ]  # fmt: skip
    if today:
        arguments += ["--today", today]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as sink:
        try:
            spawned = spawn([*arguments, *extra], module=module, env=env, stderr=sink.fileno())
        except RuntimeError as failure:
            lines = [line for line in log.read_text().splitlines() if line.strip()]
            last = lines[-1].strip() if lines else "(empty log)"
            raise SystemUnavailable(f"{name}: {failure}: {last}") from None

    def stop() -> None:
        try:
            spawned.stop()
        except subprocess.TimeoutExpired:
            spawned.stop(kill=True)

    return Running(name, spawned.target, spawned.process.pid, stop), spawned


def start_baseline_system(
    name: str,
    extract: Path,
    workdir: Path,
    *,
    today: str | None,
    redis_url: str | None,
    pg_url: str,
) -> tuple[Running, Callable[..., list[str]]]:
    """Start baseline ``name`` through ``bench.baselines``; also returns its
    ``check_same_answers``. Raises :class:`SystemUnavailable` with the baseline's reason."""
    from bench import baselines

    # pacache is pinned to the extract's reference date; the baseline gets the same one,
    # so dates in answers compare like for like
    options: dict[str, Any] = {"redis_url": redis_url, "pg_url": pg_url, "today": today}
    try:
        system = baselines.start_baseline(name, extract, workdir, **options)
    except baselines.BaselineUnavailable as reason:
        raise SystemUnavailable(str(reason)) from None
    except RuntimeError as failure:
        raise SystemUnavailable(f"{name}: {failure}") from None
    running = Running(name, system.target, system.pid, system.stop,
                      store_pids=list(system.store_pids))  # fmt: skip
    return running, baselines.check_same_answers
