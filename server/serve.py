"""``pacache serve``: bootstrap — build the state, wire the server, run until SIGTERM.

This is the one module that builds things and wires them together (cosmicpython's
bootstrap): the state (demo data, or a snapshot directory), the host, the gRPC server and
its configuration from flags and ``PACACHE_*`` environment variables.

Shutdown: SIGTERM or SIGINT flips health to NOT_SERVING at once (balancers stop sending),
lets in-flight calls finish for up to ``--grace`` seconds, then stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine import snapshot
from engine.deltas import day_number
from engine.errors import InvalidInput, SnapshotError
from engine.pricing import Policy
from engine.shared import DEFAULT_SHM
from engine.state import State
from loaders.stream_writer import (
    StreamWriter,
    WriterConfig,
    event_publisher,
    hold_publisher,
    stream_names,
)
from server.app import Server, ServerConfig, create_server
from server.auth import TokenTable
from server.checkpoint import CheckpointPolicy, checkpoint_loop
from server.host import HostConfig, StateHost, replay_log
from server.service import Limits
from server.streams import catch_up
from server.supervisor import ensure_port_free
from server.versions import VersionLease
from server.wal import WriteAheadLog

__all__ = ["Startup", "add_arguments", "main", "run_server"]

log = logging.getLogger("pacache.serve")
DEFAULT_PORT = 50051
LIMITS = Limits()  # the flags' defaults


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``pacache serve`` (each has a PACACHE_* environment twin)."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--demo", action="store_true", help="serve the seeded small dataset")
    source.add_argument("--snapshot", help="load the newest snapshot under this directory")
    parser.add_argument("--bind", default=os.environ.get("PACACHE_BIND", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=_env_int("PACACHE_PORT", DEFAULT_PORT))
    parser.add_argument("--auth", default=os.environ.get("PACACHE_AUTH"), help="token file")
    parser.add_argument("--tls-cert", default=os.environ.get("PACACHE_TLS_CERT"))
    parser.add_argument("--tls-key", default=os.environ.get("PACACHE_TLS_KEY"))
    parser.add_argument("--tls-client-ca", default=os.environ.get("PACACHE_TLS_CLIENT_CA"))
    parser.add_argument(
        "--snapshot-dir", default=os.environ.get("PACACHE_SNAPSHOT_DIR"),
        help="checkpoints, Admin snapshots, and (without --redis-url) the write-ahead log "
        "that makes Ingest/Reserve/Release durable; without it and without Redis, changes "
        "are refused",
    )  # fmt: skip
    parser.add_argument(
        "--policy",
        choices=("priority", "lowest_price"),
        default=os.environ.get("PACACHE_POLICY", "priority"),
    )
    parser.add_argument("--max-lines", type=int, default=_env_int("PACACHE_MAX_LINES", 5_000))
    parser.add_argument(
        "--max-in-flight", type=int,
        default=_env_int("PACACHE_MAX_IN_FLIGHT", LIMITS.max_in_flight),
        help="portal and ingest calls in flight per serving process before "
        "RESOURCE_EXHAUSTED (health, reflection and Admin are not counted)",
    )  # fmt: skip
    parser.add_argument(
        "--max-queued-lines", type=int,
        default=_env_int("PACACHE_MAX_QUEUED_LINES", LIMITS.max_queued_lines),
        help="request lines queued for a serving process's engine lane before "
        "RESOURCE_EXHAUSTED (a call alone on an idle lane is always admitted)",
    )  # fmt: skip
    parser.add_argument(
        "--max-message-bytes",
        type=int,
        default=_env_int("PACACHE_MAX_MESSAGE_BYTES", 16 * 1024 * 1024),
    )
    parser.add_argument("--grace", type=float, default=10.0, help="seconds to drain on stop")
    parser.add_argument(
        "--today", default=os.environ.get("PACACHE_TODAY"),
        help="pin today's date (YYYY-MM-DD); --demo pins the dataset's reference date",
    )  # fmt: skip
    parser.add_argument(
        "--redis-url", default=os.environ.get("PACACHE_REDIS_URL"),
        help="read change streams from this Redis (writer runs in this process)",
    )  # fmt: skip
    parser.add_argument(
        "--stream-prefix", default=os.environ.get("PACACHE_STREAM_PREFIX", "pacache")
    )
    parser.add_argument(
        "--inventory-shards", type=int, default=_env_int("PACACHE_INVENTORY_SHARDS", 0)
    )
    parser.add_argument(
        "--checkpoint-seconds", type=float, default=_env_int("PACACHE_CHECKPOINT_SECONDS", 60),
        help="with --snapshot-dir: snapshot at least this often while changes arrive",
    )  # fmt: skip
    parser.add_argument(
        "--checkpoint-events", type=int, default=_env_int("PACACHE_CHECKPOINT_EVENTS", 1_000_000),
        help="with --snapshot-dir: snapshot after this many applied events",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=_env_int("PACACHE_WORKERS", os.cpu_count() or 1),
        help="gRPC worker processes over one shared state, plus a writer process "
        "(default: the number of cores); 0 = everything in this one process",
    )  # fmt: skip
    parser.add_argument(
        "--shm-dir", default=os.environ.get("PACACHE_SHM_DIR", DEFAULT_SHM),
        help="with --workers: where the shared state's files live (a tmpfs)",
    )  # fmt: skip
    parser.add_argument(
        "--staleness-limit-s", type=float,
        default=float(os.environ.get("PACACHE_STALENESS_LIMIT_S", "30")),
        help="health turns NOT_SERVING once the writer has been silent this long (workers "
        "keep answering from the last state) or a stream entry this old is not applied yet; "
        "0 = never",
    )  # fmt: skip
    parser.add_argument(
        "--writer-restarts", type=int, default=_env_int("PACACHE_WRITER_RESTARTS", 3),
        help="with --workers: how many times a dead writer process is restarted",
    )  # fmt: skip
    parser.add_argument(
        "--demo-cache",
        default=os.environ.get("PACACHE_DEMO_CACHE", str(Path.home() / ".cache" / "pacache")),
        help="where the demo snapshot is cached between runs",
    )


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


class ConfigError(ValueError):
    """A flag combination that cannot be served as asked: the message says what to fix."""


def _check_tls(args: argparse.Namespace) -> None:
    if bool(args.tls_cert) != bool(args.tls_key):
        given, missing = (
            ("--tls-cert", "--tls-key") if args.tls_cert else ("--tls-key", "--tls-cert")
        )
        raise ConfigError(
            f"{given} without {missing}: TLS needs both (refusing to serve plaintext)"
        )
    if args.tls_client_ca and not args.tls_cert:
        raise ConfigError("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS)")


def config_from(args: argparse.Namespace) -> tuple[ServerConfig, HostConfig]:
    _check_tls(args)
    for name in ("max_lines", "max_in_flight", "max_queued_lines", "max_message_bytes"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
    limits = Limits(
        max_lines=args.max_lines,
        max_message_bytes=args.max_message_bytes,
        max_in_flight=args.max_in_flight,
        max_queued_lines=args.max_queued_lines,
    )
    server_config = ServerConfig(
        limits=limits,
        tokens=TokenTable.from_file(args.auth) if args.auth else None,
        tls_cert=_read(args.tls_cert),
        tls_key=_read(args.tls_key),
        tls_client_ca=_read(args.tls_client_ca),
        snapshot_root=args.snapshot_dir,
    )
    policy = Policy.LOWEST_PRICE if args.policy == "lowest_price" else Policy.PRIORITY
    today = args.today
    if today is None and args.demo:
        from bench.datagen import REFERENCE_DATE

        today = REFERENCE_DATE.isoformat()
    pinned = day_number(dt.date.fromisoformat(today)) if today else None
    staleness_ms = int(args.staleness_limit_s * 1000)
    streams = (
        tuple(stream_names(args.stream_prefix, args.inventory_shards)) if args.redis_url else ()
    )
    host_config = HostConfig(
        policy=policy, today=pinned, staleness_limit_ms=staleness_ms, stream_names=streams
    )
    return server_config, host_config


DEMO_SCALE = "small"


def demo_snapshot(cache_dir: str) -> Path:
    """The seeded small dataset's snapshot directory (generated and cached on first use)."""
    from bench.datagen import generate
    from loaders.extract import build_snapshot

    root = Path(cache_dir) / f"demo-{DEMO_SCALE}-seed0-v{snapshot.FORMAT_VERSION}"
    found = snapshot.latest(root / "snapshot")
    if found is None:
        extract = root / "extract"
        generate(extract, DEMO_SCALE, 0)
        build_snapshot(extract, root / "snapshot", progress=sys.stderr.isatty())
        found = snapshot.latest(root / "snapshot")
        assert found is not None
    return found


@dataclass(frozen=True)
class Startup:
    """Where the served state comes from and where changes are kept (DESIGN §7).

    The state is the newest of the start-up source (``--snapshot`` or ``--demo``) and the
    checkpoints under ``--snapshot-dir`` (by the time each was written; both looked up
    again at every load, so a restarted writer finds what is there now), with the
    write-ahead log replayed on it (without Redis) and its version raised to the lease's
    floor. A fresh bulk build is newer than old checkpoints, so starting from one works
    while the log still holds every record since the build (its replay re-applies them,
    idempotently by version); once checkpoints have let the log drop some, the newest
    checkpoint is started from instead (see :meth:`newest`)."""

    source: Callable[[], Path]
    snapshot_dir: str | None = None
    redis: bool = False

    def durable(self) -> tuple[WriteAheadLog | None, VersionLease]:
        """The write-ahead log (None with Redis, or without a snapshot dir) and the version
        lease; opened by the process that writes."""
        if not self.snapshot_dir:
            return None, VersionLease()
        root = Path(self.snapshot_dir) / "wal"
        root.mkdir(parents=True, exist_ok=True)
        wal = None if self.redis else WriteAheadLog(root)
        return wal, VersionLease(root / "version.lease")

    def newest(self, wal: WriteAheadLog | None = None) -> Path:
        """The snapshot to start from: the newer (by the time written) of the start-up
        source and the newest checkpoint, among those ``wal`` can bring up to date.

        A snapshot older than the log's oldest record (a bulk build rewritten after the
        checkpoints let the log drop the records they cover) would come up without
        changes that were acknowledged: it is passed over, with a warning, for the
        checkpoint that has them. Starting from such a build on purpose means dropping
        those changes: move the checkpoints (``v*/``) and the log's ``wal-*.log``
        segments out of ``--snapshot-dir`` first (keep ``wal/version.lease``, which keeps
        versions going up)."""
        candidates = [self.source()]
        if self.snapshot_dir:
            found = snapshot.latest(self.snapshot_dir)
            if found is not None:
                candidates.append(found)
        candidates.sort(key=snapshot.written_at, reverse=True)
        if wal is None:
            return candidates[0]
        needed = wal.first_lsn - 1
        usable = [path for path in candidates if snapshot.wal_position(path) >= needed]
        if not usable:
            raise SnapshotError(
                f"no snapshot to start from covers the write-ahead log {wal.directory} up to "
                f"record {needed} (its oldest kept record is {wal.first_lsn}); starting from "
                f"{candidates[0]} would drop acknowledged changes. Restore the checkpoint "
                f"that covers them under {self.snapshot_dir}, or move the log's segments "
                "away to start from the snapshot on purpose"
            )
        if usable[0] != candidates[0]:
            log.warning(
                "start-up: %s is newer than %s, but the log no longer holds the records "
                "between them (acknowledged changes up to record %d are only in the "
                "checkpoint); starting from the checkpoint. To start from the newer "
                "snapshot on purpose, move the checkpoints and wal-*.log segments out of %s",
                candidates[0], usable[0], needed, self.snapshot_dir,
            )  # fmt: skip
        return usable[0]

    def load(self, wal: WriteAheadLog | None, floor: int, path: Path | None = None) -> State:
        """Load ``path`` (default: :meth:`newest`), replay the log, raise the version to
        ``floor``. The multi-process writer loads one state per left-right instance and
        passes the same ``path`` to both: a checkpoint written between the two loads would
        otherwise make them two different states."""
        path = self.newest(wal) if path is None else path
        state = snapshot.load(path)
        replayed = 0
        if wal is not None:
            replayed = replay_log(state, wal)
            wal.advance_past(state.wal_lsn)
        state.version = max(state.version, floor)
        log.info("state from %s, %d logged batches replayed, version %d",
                 path, replayed, state.version)  # fmt: skip
        return state


async def run_server(
    host: StateHost,
    address: str,
    config: ServerConfig,
    *,
    grace: float = 10.0,
    on_started: Callable[[Server], None] | None = None,
    startup: Startup | None = None,
    writer: WriterConfig | None = None,
    redis_url: str | None = None,
    checkpoints: CheckpointPolicy | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT, everything in this process. The state is loaded (and
    caught up with the streams) after the port is bound, so health answers NOT_SERVING
    while a large state loads."""
    server = create_server(address, host, config)
    await server.set_serving(False)
    await server.grpc_server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stopping.set)
    if startup is not None:
        started = time.monotonic()
        if redis_url:  # from the moment it is adopted until it has caught up (catch_up)
            host.catching_up = "state: catching up with the streams before serving"
        host.wal, host.lease = startup.durable()
        floor = host.lease.floor
        state = await asyncio.to_thread(startup.load, host.wal, floor)
        host.lease.ensure(state.version)  # durable before anything is answered from it
        host.load(state)
        log.info("state loaded in %.1fs", time.monotonic() - started)

    async def tick() -> None:
        while True:
            await asyncio.sleep(1.0)
            async with host.write_lock:
                host.tick()

    tasks = [asyncio.create_task(tick())]
    writer_stop = asyncio.Event()
    writer_config = writer or WriterConfig()
    if redis_url:
        stream_writer = StreamWriter(redis_url, host, writer_config)
        host.streams = stream_writer.stats
        host.stream_commit = stream_writer.committing
        host.hold_publisher = hold_publisher(redis_url, stream_writer.config)
        host.event_publisher = event_publisher(redis_url, stream_writer.config)
        tasks.append(asyncio.create_task(stream_writer.run(writer_stop)))
        names = stream_names(writer_config.prefix, writer_config.inventory_shards)
        catching = asyncio.create_task(catch_up(host, redis_url, names))
        await asyncio.wait([catching, asyncio.create_task(stopping.wait())],
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
    if checkpoints is not None and not stopping.is_set():
        tasks.append(asyncio.create_task(checkpoint_loop(host, checkpoints)))

    async def health() -> None:
        serving = None
        while True:
            problems = host.health_problems()
            if (not problems) != serving:
                serving = not problems
                if problems:
                    log.warning("health NOT_SERVING: %s", "; ".join(problems))
                else:
                    log.info("health SERVING")
                await server.set_serving(serving)
            await asyncio.sleep(0.25)

    tasks.append(asyncio.create_task(health()))
    if on_started is not None and not stopping.is_set():
        on_started(server)
    await stopping.wait()
    log.info("stopping: health NOT_SERVING, draining in-flight calls (grace %.0fs)", grace)
    writer_stop.set()
    for task in tasks:
        task.cancel()
    await server.stop(grace)
    if host.wal is not None:
        host.wal.close()


def serve_multi(
    args: argparse.Namespace,
    server_config: ServerConfig,
    host_config: HostConfig,
    startup: Startup,
    announce: Callable[[int, str], None],
    writer_config: WriterConfig,
    checkpoints: CheckpointPolicy | None,
) -> int:
    """One writer process and ``args.workers`` gRPC workers (see :mod:`server.supervisor`)."""
    from server.supervisor import Supervisor, reserve_port

    reservation, port = reserve_port(args.bind, args.port)
    address = f"{args.bind}:{port}"

    def writer_main(shm_root: str, socket_path: str, ready_fd: int) -> None:
        import uvloop

        from server.writer import WriterHost, run_writer

        reservation.close()
        generation = shm_root.rsplit("-", 1)[1]
        uvloop.run(
            run_writer(
                startup,
                WriterHost(config=host_config),
                shm_root,
                socket_path,
                ready=lambda: _report(ready_fd, f"writer {generation}"),
                writer_config=writer_config,
                redis_url=args.redis_url,
                checkpoints=checkpoints,
            )
        )

    def worker_main(index: int, shm_root: str, socket_path: str, ready_fd: int) -> None:
        import uvloop

        from server.worker import WorkerHost, run_worker

        reservation.close()
        host = WorkerHost(config=host_config, slot=index, socket_path=socket_path)
        uvloop.run(
            run_worker(
                host,
                address,
                server_config,
                shm_root,
                ready=lambda: _report(ready_fd, f"worker {index}"),
                grace=args.grace,
            )
        )

    supervisor = Supervisor(
        workers=args.workers,
        base=Path(args.shm_dir) / f"pacache-{os.getpid()}",
        writer_main=writer_main,
        worker_main=worker_main,
        grace=args.grace,
        writer_restarts=args.writer_restarts,
    )
    try:
        supervisor.start()
    except RuntimeError as error:
        if supervisor.stopping:  # SIGTERM during start-up: a clean stop, not a failure
            supervisor.drain()
            return 0
        log.error("start-up failed: %s", error)
        supervisor.drain()
        return 1
    announce(port, f" ({args.workers} workers, writer pid {supervisor.writer_pid})")
    return supervisor.run()


def _report(fd: int, line: str) -> None:
    """Tell the supervisor (one short write: atomic on a pipe) that a child is ready."""
    os.write(fd, f"{line}\n".encode())


def _warn_about_exposure(args: argparse.Namespace, server_config: ServerConfig) -> None:
    if server_config.tokens is None:
        log.warning("AUTH IS OFF: any caller may read every account's prices (use --auth)")
    elif server_config.tls_cert is None:
        log.warning(
            "AUTH WITHOUT TLS: bearer tokens cross the network in plaintext, where anyone on "
            "the path can read and replay them; serve with --tls-cert and --tls-key"
        )
    if not args.snapshot_dir and not args.redis_url:
        log.warning(
            "CHANGES ARE REFUSED: without --snapshot-dir (write-ahead log) or --redis-url "
            "nothing could keep an Ingest, Reserve or Release across a restart"
        )


def main(args: argparse.Namespace) -> int:
    """Entry point of ``pacache serve``."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        server_config, host_config = config_from(args)
    except (ConfigError, InvalidInput, ValueError, OSError) as error:
        log.error("cannot serve: %s", error)
        return 2
    _warn_about_exposure(args, server_config)
    if args.snapshot:
        if snapshot.latest(args.snapshot) is None:
            log.error("no snapshot under %s", args.snapshot)
            return 2
        directory = args.snapshot

        def source() -> Path:
            # looked up on every load, not once: a writer restarted hours later must not
            # reach for a snapshot that checkpoints in the same directory (or a newer
            # bulk build) have since replaced and removed
            found = snapshot.latest(directory)
            if found is None:
                raise SnapshotError(f"no snapshot under {directory} any more")
            return found
    elif args.demo:

        def source() -> Path:
            return demo_snapshot(args.demo_cache)
    else:
        log.error("nothing to serve: pass --demo or --snapshot DIR")
        return 2
    startup = Startup(source, args.snapshot_dir, bool(args.redis_url))
    address = f"{args.bind}:{args.port}"
    try:
        ensure_port_free(args.bind, args.port)
    except OSError as error:
        log.error("cannot serve on %s: %s", address, error)
        return 2

    example = (
        "--account C000001 --region EAST --line FAST-0000001:30 --line PLMB-0000002:2:BX"
        if args.demo
        else "--account ACCOUNT --line SKU:QTY[:UOM]"
    )

    def announce(port: int, workers: str = "") -> None:
        print(
            f"pacache serving on {args.bind}:{port}{workers}\n"
            f"  try: pacache quote --target {args.bind}:{port} {example}\n"
            "  stop: Ctrl-C (or SIGTERM)",
            flush=True,
        )

    def started(server: Server) -> None:
        announce(server.port)

    checkpoints = None
    if args.snapshot_dir:
        checkpoints = CheckpointPolicy(
            args.snapshot_dir, args.checkpoint_seconds, args.checkpoint_events
        )
    writer_config = WriterConfig(prefix=args.stream_prefix, inventory_shards=args.inventory_shards)
    if args.workers > 0:
        return serve_multi(
            args, server_config, host_config, startup, announce, writer_config, checkpoints
        )

    import uvloop

    uvloop.run(
        run_server(
            StateHost(config=host_config),
            address,
            server_config,
            grace=args.grace,
            on_started=started,
            startup=startup,
            writer=writer_config,
            redis_url=args.redis_url,
            checkpoints=checkpoints,
        )
    )
    return 0


if __name__ == "__main__":  # `python -m server.serve …`: the same as `pacache serve …`
    _parser = argparse.ArgumentParser(prog="python -m server.serve")
    add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))
