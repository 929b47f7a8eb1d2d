"""The writer process of multi-process serving: the one place the state changes (DESIGN §9).

It loads the state into shared memory (:class:`engine.shared.SharedWriter`, two instances
applied left-right), reads the Redis streams when configured, applies what the workers
forward (Ingest, Reserve, Release), writes checkpoints and Admin snapshots, and tells every
worker about each published version over a Unix socket (:mod:`server.ipc`). Workers read the
shared state directly and never wait for this process; they only wait for it when a caller
asked for read-your-writes.

Checkpoints here hold the write lock until the child has written the files: the arrays are
shared mappings, so a fork does not freeze them the way it freezes private memory. Batches
queue meanwhile (the workers keep answering from the published version); at the large
scale that is a pause in freshness of about 16 s per checkpoint (an Admin Snapshot of the
large state took 15.7 s here) — choose ``--checkpoint-seconds`` with that in mind.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from engine.deltas import ApplyResult, apply_batch
from engine.errors import PacacheError
from engine.shared import SharedWriter, published_version, supersede
from engine.state import State
from engine.validate import check_batch
from loaders.stream_writer import (
    StreamWriter,
    WriterConfig,
    event_publisher,
    hold_publisher,
    stream_names,
)
from server.checkpoint import CheckpointPolicy, checkpoint_loop
from server.host import Change, StateHost
from server.ipc import error_to_wire, read_frame, write_frame
from server.streams import catch_up

if TYPE_CHECKING:
    from server.serve import Startup

__all__ = ["WriterHost", "run_writer"]

log = logging.getLogger("pacache.writer")
HEARTBEAT_S = 0.25


@dataclass
class WriterHost(StateHost):
    """A :class:`StateHost` whose state is the published instance of a :class:`SharedWriter`;
    every change is applied to both instances, left-right."""

    checkpoint_holds_writes: ClassVar[bool] = True
    shared: SharedWriter | None = None
    workers: set[asyncio.StreamWriter] = field(default_factory=set)

    def adopt(self, shared: SharedWriter) -> None:
        self.shared = shared
        self.load(shared.active)

    def apply(
        self,
        events: Sequence[Any],
        *,
        stream_ids: dict[str, str] | None = None,
        clock_ms: int | None = None,
        event_ms: Sequence[int] | None = None,
        wal_lsn: int | None = None,
    ) -> ApplyResult:
        """Apply one batch to both instances, left-right. If the engine raises on the
        first instance, :class:`SharedWriter` restores it from the published one and the
        batch is rejected whole (the error is raised here); if it raises while the second
        instance catches up, that instance is restored from the published one, which has
        the batch, and the batch stands."""
        shared = self.shared
        assert shared is not None, "adopt() a SharedWriter first"
        clock = self.clock_ms() if clock_ms is None else clock_ms
        current = self.writable_state()
        self.lease.ensure(current.version + 1)
        # validation depends only on the code tables, equal in both instances before the
        # batch: validate once, for the first instance, and reuse it for the second
        checked = check_batch(events, current)

        def change(state: State) -> ApplyResult:
            result = apply_batch(
                state, events, stream_ids=stream_ids, clock_ms=clock, event_ms=event_ms,
                checked=checked,
            )  # fmt: skip
            if wal_lsn is not None:
                state.wal_lsn = wal_lsn
            return result

        shared.wait_inactive_free()
        try:
            result = shared.apply(change)
        finally:
            self.state = shared.active
        self.applied_total += result.applied
        self.rejected_total += len(result.rejected)
        self._notify(Change(result.version, result.skus_changed))
        # the readers of the old instance leave it within one call; then it catches up,
        # so the next batch finds the inactive instance equal and free
        shared.wait_inactive_free()
        try:
            shared.catch_up()
        except Exception:
            log.exception("writer: catching the second instance up failed; it was restored "
                          "from the published one (which has the batch)")  # fmt: skip
        return result

    def _notify(self, change: Change) -> None:
        super()._notify(change)
        message = {"op": "published", "version": change.version, "skus": change.skus.tobytes()}
        for worker in list(self.workers):
            if worker.is_closing():
                self.workers.discard(worker)
            else:
                write_frame(worker, message)

    def stats_message(self) -> dict[str, Any]:
        return {
            "op": "stats",
            "applied_total": self.applied_total,
            "rejected_total": self.rejected_total,
            "holds_active": self.holds_active() if self.state is not None else 0,
            "gaps": dict(self.gaps),
            "problems": self.health_problems(),
            "streams": {name: dataclasses.asdict(s) for name, s in self.streams.items()},
        }


@dataclass
class _LockedSink:
    """The stream writer's sink: batches wait while a checkpoint reads the shared state."""

    host: WriterHost

    def positions(self) -> dict[str, str]:
        return self.host.positions()

    async def apply_batch(
        self,
        events: Sequence[Any],
        *,
        stream_ids: dict[str, str],
        clock_ms: int,
        event_ms: Sequence[int],
    ) -> ApplyResult:
        async with self.host.write_lock:
            return self.host.apply_batch(
                events, stream_ids=stream_ids, clock_ms=clock_ms, event_ms=event_ms
            )

    def report_gap(self, stream: str, detail: str) -> None:
        self.host.report_gap(stream, detail)

    def report_reader(self, error: str) -> None:
        self.host.report_reader(error)


async def _answer(host: WriterHost, message: dict[str, Any]) -> dict[str, Any]:
    op = message["op"]
    if op == "ingest":
        outcome = await host.ingest_payload(message["payload"], int(message["max_events"]))
        return {"version": outcome.version, "outcome": outcome.to_plain()}
    if op == "reserve":
        lines = tuple((str(s), str(loc), int(q)) for s, loc, q in message["lines"])
        hold = await host.reserve(message["account"], message["key"], lines, message["ttl_ms"])
        return {"version": host.require().version, "hold": hold.to_plain()}
    if op == "release":
        was_active = await host.release(message["account"], message["key"])
        return {"version": host.require().version, "was_active": was_active}
    if op == "stats":
        stats = host.stats_message()
        del stats["op"]  # this travels as the reply to a call, not as a heartbeat
        return {"version": host.require().version, **stats}
    if op == "snapshot":
        path, state = await host.write_snapshot(message["root"])
        return {"version": state.version, "path": path}
    raise PacacheError(f"writer: unknown operation {op!r}")


async def _serve_worker(
    host: WriterHost, shm_root: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    write_frame(writer, {"op": "hello", "shm_root": shm_root})
    write_frame(writer, host.stats_message())
    host.workers.add(writer)

    async def handle(message: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"op": "reply", "id": message["id"]}
        try:
            reply |= await _answer(host, message)
        except PacacheError as error:
            reply["error"] = error_to_wire(error)
        except Exception as error:  # a bug must not take the writer down with it
            log.exception("writer: %s failed", message.get("op"))
            reply["error"] = {"class": "PacacheError", "message": f"writer: {error}"}
        if not writer.is_closing():
            write_frame(writer, reply)

    tasks: set[asyncio.Task[None]] = set()
    try:
        while True:
            message = await read_frame(reader)
            task = asyncio.create_task(handle(message))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        host.workers.discard(writer)
        writer.close()


def _previous_version(shm_root: str) -> int:
    """The newest version any earlier writer of this server published (0: none), read
    from the shared directories the supervisor keeps until this writer is ready."""
    versions = [
        published_version(other)
        for other in Path(shm_root).parent.glob("state-*")
        if str(other) != shm_root
    ]
    return max((v for v in versions if v is not None), default=0)


def _generation(shm_root: str | Path) -> int:
    """The supervisor's number of the writer whose state is in ``shm_root`` (state-N)."""
    return int(Path(shm_root).name.rsplit("-", 1)[1])


def _supersede_older(shm_root: str) -> None:
    """Tell the readers of every earlier writer's state that this one replaces it.

    Workers switch to a restarted writer's state when it greets them, one after the other
    (each reconnects on its own backoff, up to a second apart); meanwhile one worker
    answered from the new state while another still answered from the old one, so a
    client's next answer could carry a lower version than its last. Marked here, before
    any worker can connect, every worker checks the mark on its next read and switches
    first (``WorkerHost.follow_successor``)."""
    generation = _generation(shm_root)
    for other in Path(shm_root).parent.glob("state-*"):
        if str(other) != shm_root and _generation(other) < generation:
            supersede(other, generation)


async def run_writer(
    startup: Startup,
    host: WriterHost,
    shm_root: str,
    socket_path: str,
    *,
    ready: Callable[[], None],
    writer_config: WriterConfig | None = None,
    redis_url: str | None = None,
    checkpoints: CheckpointPolicy | None = None,
) -> None:
    """Load, catch up, publish, serve the workers' socket and the streams until SIGTERM.

    The workers hear of this writer only once its state has caught up with the streams
    (a restarted writer: they keep serving the previous one's state until then), and its
    versions start above everything published before (the lease, and the previous
    writer's last version when there is no lease file)."""
    started = time.monotonic()
    host.wal, host.lease = startup.durable()
    floor = max(host.lease.floor, _previous_version(shm_root) + 1)
    path = await asyncio.to_thread(startup.newest, host.wal)  # one for both instances
    shared = await asyncio.to_thread(
        SharedWriter, shm_root, lambda: startup.load(host.wal, floor, path)
    )
    host.adopt(shared)
    # recorded before any worker can read it: a version above the lease (the previous
    # writer's + 1) published unrecorded would come back lower after a full restart
    host.lease.ensure(host.writable_state().version)
    log.info(
        "writer: state at version %d loaded in %s in %.1fs",
        host.writable_state().version, shm_root, time.monotonic() - started,
    )  # fmt: skip
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stopping.set)

    async def heartbeat() -> None:
        while True:
            shared.heartbeat()
            message = host.stats_message()
            for worker in list(host.workers):
                if not worker.is_closing():
                    write_frame(worker, message)
            await asyncio.sleep(HEARTBEAT_S)

    async def tick() -> None:
        while True:
            await asyncio.sleep(1.0)
            async with host.write_lock:
                host.tick()

    tasks = [asyncio.create_task(heartbeat()), asyncio.create_task(tick())]
    writer_stop = asyncio.Event()
    if redis_url:
        config = writer_config or WriterConfig()
        stream_writer = StreamWriter(redis_url, _LockedSink(host), config)
        host.streams = stream_writer.stats
        host.stream_commit = stream_writer.committing
        host.hold_publisher = hold_publisher(redis_url, stream_writer.config)
        host.event_publisher = event_publisher(redis_url, stream_writer.config)
        tasks.append(asyncio.create_task(stream_writer.run(writer_stop)))
        names = stream_names(config.prefix, config.inventory_shards)
        catching = asyncio.create_task(catch_up(host, redis_url, names))
        await asyncio.wait([catching, asyncio.create_task(stopping.wait())],
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
    if checkpoints is not None:
        tasks.append(asyncio.create_task(checkpoint_loop(host, checkpoints)))
    if not stopping.is_set():
        _supersede_older(shm_root)
    Path(socket_path).unlink(missing_ok=True)
    server = await asyncio.start_unix_server(
        lambda r, w: _serve_worker(host, shm_root, r, w), path=socket_path
    )
    if not stopping.is_set():
        log.info("writer: serving state version %d to the workers", host.writable_state().version)
        ready()
    await stopping.wait()
    log.info("writer: stopping")
    writer_stop.set()
    for task in tasks:
        task.cancel()
    server.close()
    async with host.write_lock:  # let a running checkpoint or batch finish
        pass
    if host.wal is not None:
        host.wal.close()
    shared.close()
