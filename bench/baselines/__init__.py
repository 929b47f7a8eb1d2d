"""Baselines for ``pacache bench`` (issue 5 b–d): the same API, served the usual ways.

Each baseline is a separate process serving ``pacache.v1`` on grpc.aio + uvloop
(``bench.baselines.server``), answering from the same extract pacache's snapshot is built
from, with the same rules (the reference model, ``bench.reference``):

- ``redis``: rows read from Redis per request — msgpack documents and hashes keyed the way
  a request reads them, pre-loaded by :func:`start_baseline`; two pipelined round trips
  per Quote (``bench.baselines.redis_store``);
- ``postgres``: SQL per request — tables COPY-loaded into their own schema, up to ten
  indexed statements sent in one pipeline per Quote (``bench.baselines.postgres_store``);
- ``python``: every row in plain dicts in the server process (``bench.baselines.memory``).

:func:`check_same_answers` (``bench.baselines.compare``) proves a comparison is like for
like: the same requests, the same answers field by field.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.baselines.compare import Request, check_same_answers
from server.spawn import REPO, spawn

__all__ = [
    "SYSTEMS",
    "BaselineUnavailable",
    "Request",
    "RunningSystem",
    "check_same_answers",
    "start_baseline",
]

SYSTEMS = ("redis", "postgres", "python")
DEFAULT_PG_URL = "postgresql:///postgres?host=/var/run/postgresql"


class BaselineUnavailable(Exception):
    """A baseline cannot run here; the message says why (e.g. no PostgreSQL at the URL)."""


@dataclass
class RunningSystem:
    """A started baseline server (and what it needs, such as a private redis-server)."""

    name: str  # "redis", "postgres", "python"
    target: str  # "127.0.0.1:PORT" serving pacache.v1
    pid: int  # the server process: read /proc/PID for its CPU and RSS
    #: processes started for this baseline that do part of its work (the private
    #: redis-server); add their CPU and RSS for the whole system's cost
    store_pids: list[int] = field(default_factory=list)
    _process: subprocess.Popen[str] | None = field(default=None, repr=False)
    _helpers: list[Any] = field(default_factory=list, repr=False)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s) and any helper it started."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if process is not None and process.stdout is not None:
            process.stdout.close()
        for helper in reversed(self._helpers):
            helper.stop()
        self._helpers.clear()


def _run_loader(arguments: list[str], log: Path) -> None:
    """Load a store in a separate process, so the server's RSS holds only what it keeps."""
    with open(log, "a") as sink:
        done = subprocess.run(
            [sys.executable, "-m", "bench.baselines.load", *arguments],
            cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        tail = log.read_text()[-2000:]
        raise RuntimeError(f"loading the baseline failed (exit {done.returncode}):\n{tail}")


@dataclass
class _Schema:
    """The PostgreSQL baseline's schema, dropped when the baseline stops."""

    url: str
    schema: str

    def stop(self) -> None:
        from bench.baselines.postgres_store import drop_schema

        drop_schema(self.url, self.schema)


def _check_redis(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        raise BaselineUnavailable(f"redis: no Redis answers at {redis_url!r} ({error})") from None
    finally:
        client.close()


def _check_postgres(pg_url: str) -> None:
    import psycopg

    try:
        with psycopg.connect(pg_url, connect_timeout=5) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        raise BaselineUnavailable(
            f"postgres: no PostgreSQL answers at {pg_url!r} ({str(error).strip()}); "
            "pass pg_url= / --pg-url for another server"
        ) from None


def start_baseline(
    name: str,
    extract_dir: Path,
    workdir: Path,
    *,
    redis_url: str | None = None,
    pg_url: str = DEFAULT_PG_URL,
    today: str | dt.date | None = None,
    policy: str = "priority",
    pg_schema: str = "pacache_baseline",
) -> RunningSystem:
    """Prepare the data of baseline ``name`` from ``extract_dir`` and start its server.

    ``redis``: loads keys into ``redis_url``, or into a private redis-server started on a
    free port in ``workdir`` (stopped by ``stop()``). ``postgres``: loads tables into the
    schema ``pg_schema`` of ``pg_url`` (dropped and rebuilt; dropped again by ``stop()``).
    ``python``: the server loads the extract into its own memory. ``today`` (and
    ``policy``) must be what pacache runs with (``pacache serve --today``): None means UTC
    today, pacache's default.
    Raises :class:`BaselineUnavailable` when the system cannot run here.
    """
    if name not in SYSTEMS:
        raise ValueError(f"unknown baseline {name!r}; one of {', '.join(SYSTEMS)}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    extract = str(Path(extract_dir).resolve())
    log = workdir / f"baseline-{name}.log"
    arguments = ["--system", name, "--policy", policy]
    if today is not None:
        arguments += ["--today", today if isinstance(today, str) else today.isoformat()]
    helpers: list[Any] = []
    try:
        if name == "python":
            arguments += ["--extract", extract]
        elif name == "redis":
            if redis_url is None:
                from bench.redis_process import RedisProcess

                try:
                    private = RedisProcess(workdir / "redis").start()
                except RuntimeError as error:
                    raise BaselineUnavailable(f"redis: {error}") from None
                helpers.append(private)
                redis_url = private.url
            else:
                _check_redis(redis_url)
            _run_loader(["--system", "redis", "--extract", extract, "--redis-url", redis_url], log)
            arguments += ["--redis-url", redis_url]
        else:
            _check_postgres(pg_url)
            target = ["--pg-url", pg_url, "--schema", pg_schema]
            helpers.append(_Schema(pg_url, pg_schema))
            _run_loader(["--system", "postgres", "--extract", extract, *target], log)
            arguments += target
        with open(log, "a") as sink:
            spawned = spawn(
                [*arguments, "--port", "0"], module="bench.baselines.server", stderr=sink.fileno()
            )
    except BaseException:
        for helper in reversed(helpers):
            helper.stop()
        raise
    store_pids = [h.process.pid for h in helpers if getattr(h, "process", None) is not None]
    if name == "postgres":  # the backends doing the baseline's SQL work
        from bench.baselines.postgres_store import backend_pids

        store_pids += backend_pids(pg_url)
    return RunningSystem(
        name,
        spawned.target,
        spawned.process.pid,
        store_pids=store_pids,
        _process=spawned.process,
        _helpers=helpers,
    )
