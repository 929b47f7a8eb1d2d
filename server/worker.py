"""A gRPC worker process of multi-process serving: reads the shared state, forwards changes.

:class:`WorkerHost` gives the servicers the same interface as the in-process
:class:`~server.host.StateHost`, so the handlers do not know which they run on:

- reads (:meth:`WorkerHost.require`) pin the published instance of the shared state
  (:class:`engine.shared.SharedReader`) and unpin it on the next turn of the event loop —
  after the synchronous stretch of every handler that asked, since a handler reads its state
  between two awaits. The writer never writes a pinned instance, so an answer comes from
  one version, whole;
- changes (Ingest, Reserve, Release, Admin Snapshot) go to the writer process over its Unix
  socket; the answer comes back once this worker can read the version that holds the
  change (read-your-writes on the worker that took the call);
- the writer announces each published version (and the SKUs it changed) to every worker,
  which wakes ``min_version`` waiters and WatchAvailability streams exactly as in one
  process; ``as_of`` and ``min_version`` therefore mean the same on every worker.

When the writer is gone the worker keeps answering from the last published state, with
its ``as_of``; Freshness reports how long the writer has been silent and health turns
NOT_SERVING once that passes ``staleness_limit_ms``. The worker reconnects when a writer
comes back, switching to the shared-memory directory the new writer announces — or
earlier, on its first read after the new writer has marked the old state as replaced
(:meth:`WorkerHost.follow_successor`), so that no worker answers from the old state once
another has answered from the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.deltas import ApplyResult
from engine.shared import SharedReader
from engine.state import Hold, State
from loaders.events import encode
from loaders.stream_writer import StreamStats
from server.errors import NotServing
from server.host import Change, IngestOutcome, StateHost, freeze_long_lived
from server.ipc import error_from_wire, read_frame, write_frame

__all__ = ["WorkerHost", "run_worker"]

log = logging.getLogger("pacache.worker")
READ_YOUR_WRITES_S = 30.0  # how long a forwarded change may take to become visible here


@dataclass
class WorkerHost(StateHost):
    """A read-only view of the writer's shared state plus a channel to the writer."""

    slot: int = 0
    socket_path: str = ""
    reader: SharedReader | None = None
    holds_active_count: int = 0
    writer_problems: list[str] = field(default_factory=list)  # from the writer's heartbeat
    last_heard_ms: int = 0
    loop: asyncio.AbstractEventLoop | None = None  # the event loop serving (run_worker)
    _pinned: State | None = None
    _conn: asyncio.StreamWriter | None = None
    _calls: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    # -- reads ---------------------------------------------------------------------------

    def health_problems(self) -> list[str]:
        """The writer's own reasons (from its last message), plus its silence."""
        if self.reader is None:
            return ["state: waiting for the writer to publish it"]
        problems = list(self.writer_problems)
        limit = self.config.staleness_limit_ms
        silence = self.writer_silence_ms()
        if limit and silence > limit:
            problems.append(f"writer: silent for {silence} ms (staleness limit {limit} ms)")
        return problems

    def require(self) -> State:
        self.follow_successor()
        reader = self.reader
        if reader is None:
            raise NotServing("state: waiting for the writer to publish it")
        state = reader.pin()
        if self._pinned is None:
            asyncio.get_running_loop().call_soon(self._unpin)
        self._pinned = state
        self.state = state
        return state

    @contextmanager
    def reading(self) -> Iterator[State]:
        """The published state for one call's engine work (on the engine lane): pinned
        for the block, so the writer leaves it alone until the block ends."""
        if self._successor_root() is not None:
            self._follow_from_lane()
        reader = self.reader
        if reader is None:
            raise NotServing("state: waiting for the writer to publish it")
        state, instance = reader.acquire()
        try:
            yield state
        finally:
            reader.release(instance)

    # -- a restarted writer's state: every worker switches before answering from it -----

    def _successor_root(self) -> str | None:
        reader = self.reader
        successor = reader.successor if reader is not None else 0
        return str(reader.root.parent / f"state-{successor}") if reader and successor else None

    def follow_successor(self) -> None:
        """Switch to the state of the writer that replaced ours, when it has marked ours
        (``server.writer``), before answering: once one worker has answered from the new
        state, none answers from the old one. (On the event loop.) Refused with
        :class:`NotServing` if that state cannot be read; the writer's greeting brings
        this worker to the current one."""
        while (root := self._successor_root()) is not None:
            try:
                self.attach(root)
            except Exception as error:  # gone already (a newer writer replaced it too)
                raise NotServing(
                    f"writer: switching to the restarted writer's state {root} ({error})"
                ) from None

    def _follow_from_lane(self) -> None:
        """:meth:`follow_successor` for a read on the engine lane: the switch runs on the
        event loop (it wakes waiters and watchers there); the lane waits for it."""
        loop = self.loop
        if loop is None:
            raise NotServing("state: waiting for the writer to publish it")
        with contextlib.suppress(RuntimeError):  # no loop in this thread: the lane
            if asyncio.get_running_loop() is loop:
                self.follow_successor()
                return

        async def follow() -> None:
            self.follow_successor()

        asyncio.run_coroutine_threadsafe(follow(), loop).result(READ_YOUR_WRITES_S)

    def _unpin(self) -> None:
        self._pinned = None
        if self.reader is not None:
            self.reader.unpin()

    def writer_silence_ms(self) -> int:
        """Since the writer was last heard: a message on the socket, or its heartbeat in
        the shared header (so a worker started after the writer died still sees it)."""
        if self.reader is None:
            return 0
        heard = max(self.last_heard_ms, self.reader.heartbeat_ms)
        return max(0, int(time.time() * 1000) - heard) if heard else 0

    def holds_active(self) -> int:
        return self.holds_active_count

    # -- changes: forwarded to the writer ------------------------------------------------

    async def _call(self, op: str, **fields: Any) -> dict[str, Any]:
        conn = self._conn
        if conn is None or conn.is_closing():
            raise NotServing("writer: not connected, changes cannot be applied now")
        call_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._calls[call_id] = future
        try:
            try:
                write_frame(conn, {"op": op, "id": call_id, **fields})
                await conn.drain()
            except (ConnectionError, OSError) as error:  # the writer went away just now
                raise NotServing(f"writer: connection lost sending the call ({error})") from error
            reply = await future
        finally:
            self._calls.pop(call_id, None)
        if "error" in reply:
            raise error_from_wire(reply["error"])
        await self.wait_for_version(int(reply["version"]), READ_YOUR_WRITES_S)
        return reply

    async def ingest(self, events: Sequence[Any], payload: bytes | None = None) -> ApplyResult:
        data = payload if payload is not None else encode(list(events))
        reply = await self._call("ingest", payload=data, max_events=max(len(events), 1))
        outcome = IngestOutcome.from_plain(reply["outcome"])
        return ApplyResult(
            version=outcome.version,
            applied=outcome.accepted,
            stale=outcome.stale,
            rejected=outcome.rejected,
        )

    async def ingest_payload(self, payload: bytes, max_events: int) -> IngestOutcome:
        # the writer decodes: this process would only re-encode what it decoded
        reply = await self._call("ingest", payload=payload, max_events=max_events)
        return IngestOutcome.from_plain(reply["outcome"])

    async def reserve(
        self, account: str, hold_key: str, lines: tuple[tuple[str, str, int], ...], ttl_ms: int
    ) -> Hold:
        reply = await self._call("reserve", account=account, key=hold_key,
                                 lines=[list(x) for x in lines], ttl_ms=ttl_ms)  # fmt: skip
        return Hold.from_plain(reply["hold"])

    async def release(self, account: str, hold_key: str) -> bool:
        reply = await self._call("release", account=account, key=hold_key)
        return bool(reply["was_active"])

    async def write_snapshot(self, root: str) -> tuple[str, State]:
        reply = await self._call("snapshot", root=root)
        return str(reply["path"]), self.require()

    def apply(self, events: Sequence[Any], **kwargs: Any) -> ApplyResult:
        raise NotServing("worker: changes go through the writer process")

    def tick(self) -> ApplyResult | None:
        return None  # the writer expires holds

    # -- the writer connection -----------------------------------------------------------

    def attach(self, shm_root: str) -> None:
        """Read the state a writer publishes under ``shm_root`` (at start, and again when a
        restarted writer announces a new directory)."""
        if self.reader is not None and str(self.reader.root) == shm_root:
            return
        old, self.reader = self.reader, SharedReader(shm_root, self.slot)
        if old is not None:
            log.info("worker %d: following the new writer's state in %s", self.slot, shm_root)
            old.close()
            # a new writer's versions restart from its snapshot: Watch resumes cannot span it
            self.changes.clear()
        state = self.reader.pin()
        self.reader.unpin()
        freeze_long_lived()  # the code tables just read
        self._notify(Change(state.version, np.zeros(0, dtype=np.int64)))

    def _on_message(self, message: dict[str, Any]) -> None:
        self.last_heard_ms = int(time.time() * 1000)
        op = message.get("op")
        if op == "reply":
            future = self._calls.get(message["id"])
            if future is not None and not future.done():
                future.set_result(message)
        elif op == "published":
            skus = np.frombuffer(message["skus"], dtype=np.int64)
            self._notify(Change(message["version"], skus))
        elif op == "stats":
            self._take_stats(message)
        elif op == "hello":
            self.attach(message["shm_root"])

    def _take_stats(self, message: dict[str, Any]) -> None:
        self.applied_total = message["applied_total"]
        self.rejected_total = message["rejected_total"]
        self.holds_active_count = message["holds_active"]
        self.gaps = dict(message["gaps"])
        self.writer_problems = list(message.get("problems", ()))
        self.streams = {name: StreamStats(**s) for name, s in message["streams"].items()}

    async def refresh_stats(self) -> None:
        """Ask the writer for its counters now (the heartbeat's copy may be 250 ms old)."""
        if self._conn is not None:
            with contextlib.suppress(NotServing):
                reply = await self._call("stats")
                self._take_stats(reply)

    async def connect_forever(self, stop: asyncio.Event) -> None:
        """Stay connected to the writer: reconnect with backoff whenever it goes away."""
        delay = 0.05
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_unix_connection(self.socket_path)
            except (FileNotFoundError, ConnectionRefusedError, OSError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            delay = 0.05
            self._conn = writer
            try:
                while True:
                    self._on_message(await read_frame(reader))
            except (asyncio.IncompleteReadError, ConnectionError):
                log.warning("worker %d: lost the writer; serving the last published state",
                            self.slot)  # fmt: skip
            finally:
                self._conn = None
                writer.close()
                for future in self._calls.values():
                    if not future.done():
                        future.set_exception(NotServing("writer: connection lost mid-call"))


async def run_worker(
    host: WorkerHost,
    address: str,
    server_config: Any,
    shm_root: str,
    *,
    ready: Callable[[], None],
    grace: float = 10.0,
) -> None:
    """Serve ``address`` (shared with the other workers through SO_REUSEPORT) until SIGTERM."""
    from server.app import create_server

    host.loop = asyncio.get_running_loop()
    host.attach(shm_root)  # the writer has published before any worker is forked
    server = create_server(address, host, server_config)
    await server.set_serving(host.serving)
    await server.grpc_server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    async def health() -> None:
        serving = host.serving
        while True:
            await asyncio.sleep(0.25)
            problems = host.health_problems()
            now = not problems
            if now != serving:
                serving = now
                state = "SERVING" if now else "NOT_SERVING"
                log.warning("worker %d: health %s%s", host.slot, state,
                            f" ({'; '.join(problems)})" if problems else "")  # fmt: skip
                await server.set_serving(now)

    tasks = [asyncio.create_task(host.connect_forever(stop)), asyncio.create_task(health())]
    ready()
    await stop.wait()
    log.info("worker %d: stopping, draining in-flight calls (grace %.0fs)", host.slot, grace)
    await server.stop(grace)
    for task in tasks:
        task.cancel()
    if host.reader is not None:
        host.reader.close()
