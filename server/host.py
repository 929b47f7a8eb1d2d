"""The state holder of one serving process: reads, the single writer, and change feeds.

:class:`StateHost` owns the live :class:`engine.State`. Every change goes through
:meth:`StateHost.apply`, which runs ``engine.deltas.apply_batch`` on the event loop thread
under the state lock: the engine lane (``server.lane``) reads under the same lock, so no
reader ever sees half a batch. After each batch it wakes ``min_version`` waiters and
records which SKUs changed for ``WatchAvailability``.

What the API changes (Ingest, Reserve, Release) is acknowledged only once durable:

- with ``--redis-url`` it is XADDed to the streams and answered once this state has
  applied it from there (every replica applies the same entries in the same order);
- otherwise it is appended to the write-ahead log (``server.wal``: fsynced, group commit)
  and applied in log order; a restart replays the log after the newest checkpoint;
- with neither, it is refused (:class:`~server.errors.NotDurable`, FAILED_PRECONDITION)
  rather than acknowledged and lost at the next restart.

Versions: before a batch may publish a version past the lease (``server.versions``), the
lease is extended durably, so a restarted writer starts above every published version.

Health (:meth:`StateHost.health_problems`): NOT_SERVING while the state is loading or
catching up with the streams, when a stream has a gap, when the stream reader is down,
when a stream's oldest unapplied entry is older than the staleness limit, when the
write-ahead log cannot be written, or after an apply failed part-way on a single-instance
state (``--workers 0``: it cannot be rolled back, so it is not served).

Time: hold placement and expiry use the batch clock. In-process (Ingest, Reserve) that is
this server's clock at the moment the batch is formed; the Redis writer passes stream-id
time instead (DESIGN §9), so replicas decide holds alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from engine import events as ev
from engine.deltas import ApplyResult, apply_batch
from engine.errors import Conflict, InvalidInput, LimitExceeded, StaleData, UnknownCode, shown
from engine.inventory_apply import hold_of
from engine.pricing import Policy
from engine.state import Hold, State
from engine.validate import event_problem, event_problems
from loaders.events import DecodeError, decode, decode_one_by_one, encode
from loaders.stream_writer import SinkUnavailable
from server.errors import NotDurable, NotServing, VersionTimeout
from server.versions import BLOCK, VersionLease
from server.wal import WriteAheadLog

__all__ = [
    "Change",
    "HostConfig",
    "IngestOutcome",
    "StateHost",
    "decode_payload",
    "freeze_long_lived",
    "replay_log",
]

log = logging.getLogger("pacache.host")
HOLD_STREAM_TIMEOUT_S = 30.0  # a Reserve waits this long for its entry to come back applied
INGEST_STREAM_TIMEOUT_S = 60.0  # an Ingest waits this long for its entries to be applied

I64 = npt.NDArray[np.int64]


#: A Redis stream entry id: ``<ms>-<seq>`` (or ``<ms>`` alone, as Redis takes in ranges),
#: each part an unsigned 64-bit integer.
_ENTRY_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?", re.ASCII)
_ENTRY_ID_LIMIT = "<ms>-<seq>, each 0..2^64-1"


def _entry_id(entry: str, stream: str = "") -> tuple[int, int]:
    """(ms, seq) of a stream entry id; INVALID_ARGUMENT naming ``min_stream_ids[stream]``
    and the form for anything else."""
    found = _ENTRY_ID.fullmatch(entry)
    if found is not None:
        ms, seq = int(found[1]), int(found[2] or 0)
        if ms < 2**64 and seq < 2**64:
            return ms, seq
    raise InvalidInput(
        f"min_stream_ids[{shown(stream)}]", f"{shown(entry)} is not a stream entry id",
        _ENTRY_ID_LIMIT,
    )  # fmt: skip


def _stream_kind(stream: str) -> str:
    """ "master", "pricing" or "inventory" for ``<prefix>:<kind>[:<shard>]``."""
    parts = stream.split(":")
    return parts[-2] if parts[-1].isdigit() and len(parts) > 2 else parts[-1]


def freeze_long_lived() -> None:
    """Take everything alive now (a just-loaded state) out of the garbage collector's reach.

    The process holds large long-lived containers (a state's dicts of adjust ids, holds
    and region sets, its contexts, the loaded modules); every full collection would
    traverse them all, again and again, for garbage they are never part of. Measured on the
    stream writer at the large scale (``python -m bench.stream_apply``), when the code
    tables were still lists of a million strings: 20k-event batches applied about 45%
    faster (the code tables are arrays now). What is allocated later is still collected as
    usual. A state dropped by a
    full reload is still freed by reference counting (it holds no reference cycles); only
    cycles among frozen objects would stay.
    """
    gc.collect()
    gc.freeze()


@dataclass(frozen=True, slots=True)
class Change:
    """SKUs whose availability may have changed in state version ``version``."""

    version: int
    skus: I64  # sorted SKU ids


@dataclass(slots=True)
class IngestOutcome:
    """What one Ingest message did: ``events`` in it (its positions 0..events-1),
    applied, stale, (position, reason) of each rejected one, and the state version."""

    events: int
    accepted: int
    stale: int
    rejected: list[tuple[int, str]]
    version: int

    def to_plain(self) -> dict[str, Any]:
        """For the writer → worker socket."""
        return {
            "events": self.events,
            "accepted": self.accepted,
            "stale": self.stale,
            "rejected": [[i, reason] for i, reason in self.rejected],
            "version": self.version,
        }

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> IngestOutcome:
        rejected = [(int(i), str(reason)) for i, reason in plain["rejected"]]
        return cls(plain["events"], plain["accepted"], plain["stale"], rejected, plain["version"])


def decode_payload(payload: bytes) -> tuple[list[Any], list[int], list[tuple[int, str]], int]:
    """(events, position of each in the payload, (position, reason) of the members that
    did not decode, members in all) of one Ingest payload or stream entry."""
    try:
        events = decode(payload)
    except DecodeError:
        events, bad = decode_one_by_one(payload)
        total = len(events) + len(bad)
        broken = {position for position, _ in bad}
        positions = [p for p in range(total) if p not in broken]
        return events, positions, list(bad), max(total, 1)
    return events, list(range(len(events))), [], len(events)


@dataclass(slots=True)
class HostConfig:
    """Behaviour settings of a host (deployment settings, not per call)."""

    policy: Policy = Policy.PRIORITY
    change_history: int = 10_000  # versions kept for WatchAvailability resume
    # health turns NOT_SERVING when the writer (workers) or a stream's oldest unapplied
    # entry is silent/older than this; 0: never
    staleness_limit_ms: int = 0
    today: int | None = None  # pin "today" (days since 1970) — demo data and benchmarks
    # the streams this deployment reads (--redis-url; empty without): what a request's
    # min_stream_ids may name, besides the streams the state holds a position of
    stream_names: tuple[str, ...] = ()


def replay_log(state: State, wal: WriteAheadLog) -> int:
    """Apply to ``state`` every write-ahead log record after its ``wal_lsn`` (a restart);
    returns how many. Deterministic: each record at its own batch clock, in log order."""
    replayed = 0
    for record in wal.records(state.wal_lsn):
        events, _, _, _ = decode_payload(record.events)
        try:
            apply_batch(state, events, clock_ms=record.clock_ms)
        except Exception as error:
            raise RuntimeError(
                f"write-ahead log {wal.directory}: record {record.lsn} failed to apply again "
                f"({type(error).__name__}: {error}); the state cannot be rebuilt past it"
            ) from error
        state.wal_lsn = record.lsn
        replayed += 1
    return replayed


@dataclass
class StateHost:
    """Holds the state and serialises every change to it."""

    # whether a checkpoint must keep batches out until its child has written the files
    checkpoint_holds_writes: ClassVar[bool] = False
    state: State | None = None
    config: HostConfig = field(default_factory=HostConfig)
    clock_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))
    changes: deque[Change] = field(default_factory=deque)
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    rejected_total: int = 0
    applied_total: int = 0
    _changed: asyncio.Event | None = None
    # Held while something must see the state still (a snapshot being written): writers
    # wait, readers do not, since reads never change the state.
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # the stream writer's StreamWriter.committing: taken before write_lock by whatever
    # snapshots the state, so no snapshot holds positions past entries not yet in the DLQ
    stream_commit: asyncio.Lock | None = None
    gaps: dict[str, str] = field(default_factory=dict)  # stream → what was lost
    streams: dict[str, Any] = field(default_factory=dict)  # writer's per-stream stats
    _watchers: set[asyncio.Queue[Change]] = field(default_factory=set)
    # set when the state is fed from Redis: changes are published there, then applied
    # from it (holds on the first inventory stream, Ingest routed like the producer's)
    hold_publisher: Callable[[Any], Awaitable[tuple[str, str]]] | None = None
    event_publisher: Callable[[Sequence[Any]], Awaitable[dict[str, str]]] | None = None
    # without Redis: the write-ahead log every API change goes through (None: refused)
    wal: WriteAheadLog | None = None
    lease: VersionLease = field(default_factory=VersionLease)
    reader_error: str = ""  # why the stream reader is down, as it reported ("" : it runs)
    catching_up: str = ""  # set while a (re)started state replays the streams
    broken: str = ""  # an apply failed part-way on a state that cannot roll back
    # The engine lane (server.lane) reads the state on its own thread; a batch must not
    # land in the middle of such a read, so applies and reads take this lock.
    _state_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def serving(self) -> bool:
        return not self.health_problems()

    def health_problems(self) -> list[str]:
        """Why this host must not be SERVING now, one reason each ([] when it may)."""
        problems: list[str] = []
        if self.state is None:
            problems.append("state: not loaded yet")
        if self.catching_up:
            problems.append(self.catching_up)
        if self.broken:
            problems.append(self.broken)
        problems += [f"{stream}: {detail}" for stream, detail in self.gaps.items()]
        if self.reader_error:
            problems.append(f"stream reader down: {self.reader_error}")
        limit = self.config.staleness_limit_ms
        now = int(time.time() * 1000)
        for name, stats in self.streams.items():
            oldest = getattr(stats, "oldest_unapplied_ms", 0)
            if limit and oldest and now - oldest > limit:
                problems.append(
                    f"{name}: an entry of {now - oldest} ms ago is not applied yet "
                    f"(staleness limit {limit} ms)"
                )
        if self.wal is not None and self.wal.broken:
            problems.append(self.wal.broken)
        return problems

    def require(self) -> State:
        """The state, or :class:`NotServing` while none is loaded (or while it is still
        catching up with the streams, or broken)."""
        if self.state is None:
            raise NotServing("state: not loaded yet")
        if self.catching_up:
            raise NotServing(self.catching_up)
        if self.broken:
            raise NotServing(self.broken)
        return self.state

    def writable_state(self) -> State:
        """The state for a change: also while catching up (that is how it catches up)."""
        if self.state is None:
            raise NotServing("state: not loaded yet")
        if self.broken:
            raise NotServing(self.broken)
        return self.state

    @contextmanager
    def reading(self) -> Iterator[State]:
        """The state for one call's engine work (on the engine lane): whole and unchanged
        until the block ends (a batch waits for the block; the block for a batch)."""
        with self._state_lock:
            yield self.require()

    def load(self, state: State) -> None:
        """Adopt a freshly built or loaded state (start-up, full reload)."""
        with self._state_lock:
            self.state = state
        freeze_long_lived()
        self._notify(Change(state.version, np.zeros(0, dtype=np.int64)))

    def apply(
        self,
        events: Sequence[Any],
        *,
        stream_ids: dict[str, str] | None = None,
        clock_ms: int | None = None,
        event_ms: Sequence[int] | None = None,
        wal_lsn: int | None = None,
    ) -> ApplyResult:
        """Apply one batch (the only way the state changes) and wake readers waiting on it.

        An exception from the engine leaves a single-instance state half-applied: the
        host marks itself broken (NOT_SERVING, reads refused) rather than serve it; a
        restart rebuilds the state from the checkpoint and the log or streams."""
        state = self.writable_state()
        self.lease.ensure(state.version + 1)
        with self._state_lock:
            try:
                result = apply_batch(
                    state,
                    events,
                    stream_ids=stream_ids,
                    clock_ms=self.clock_ms() if clock_ms is None else clock_ms,
                    event_ms=event_ms,
                )
            except Exception as error:
                self.broken = (
                    f"state: a batch failed part-way ({type(error).__name__}: {error}); "
                    "restart the server to rebuild it"
                )
                log.exception("apply failed part-way: NOT_SERVING until a restart")
                raise
            if wal_lsn is not None:
                state.wal_lsn = wal_lsn
        self.applied_total += result.applied
        self.rejected_total += len(result.rejected)
        self._notify(Change(result.version, result.skus_changed))
        return result

    async def apply_async(self, events: Sequence[Any], **kwargs: Any) -> ApplyResult:
        """:meth:`apply` once no snapshot is being written."""
        async with self.write_lock:
            return self.apply(events, **kwargs)

    # -- the Redis writer's sink (loaders.stream_writer.Sink) ---------------------------

    def _sink_state(self) -> State:
        """The state for the stream writer; :class:`SinkUnavailable` (keep the entries,
        retry later) while there is none to apply to."""
        try:
            return self.writable_state()
        except NotServing as error:
            raise SinkUnavailable(str(error)) from None

    def positions(self) -> dict[str, str]:
        """Last applied id per stream, as recorded in the state (and its snapshots)."""
        return dict(self._sink_state().stream_ids)

    def apply_batch(
        self,
        events: Sequence[Any],
        *,
        stream_ids: dict[str, str],
        clock_ms: int,
        event_ms: Sequence[int],
    ) -> ApplyResult:
        self._sink_state()
        return self.apply(events, stream_ids=stream_ids, clock_ms=clock_ms, event_ms=event_ms)

    def report_gap(self, stream: str, detail: str) -> None:
        self.gaps[stream] = detail

    def report_reader(self, error: str) -> None:
        """The stream reader failed (``error``: health NOT_SERVING) or runs again (``""``)."""
        self.reader_error = error

    def require_streams(self, *kinds: str) -> None:
        """Raise :class:`StaleData` when a stream feeding this data ("master", "pricing",
        "inventory") has a gap: no answer beats a silently wrong one."""
        for stream, detail in self.gaps.items():
            if _stream_kind(stream) in kinds:
                raise StaleData(f"{stream}: {detail}; a full reload is required")

    def tick(self) -> ApplyResult | None:
        """Advance the batch clock when a hold is due to expire (an empty batch)."""
        state = self.state
        if state is None or self.broken or self.catching_up:
            return None
        now = self.clock_ms()
        due = any(h.active and h.expires_at_ms <= now for h in state.holds.values())
        return self.apply([], clock_ms=now) if due else None

    # -- what the API changes: one method each, so a worker process can forward them -------

    async def _commit(self, events: Sequence[Any], payload: bytes | None = None) -> ApplyResult:
        """An API change without Redis: logged and fsynced, then applied in log order."""
        if self.wal is None:
            raise NotDurable(
                "changes: this server has neither --redis-url nor --snapshot-dir, so a "
                "change could not survive a restart; it is refused rather than acknowledged"
            )
        self.writable_state()
        clock = self.clock_ms()
        data = payload if payload is not None else encode(list(events))

        def apply(lsn: int) -> ApplyResult:
            return self.apply(events, clock_ms=clock, wal_lsn=lsn)

        return await self.wal.commit(clock, data, apply, self.write_lock)

    async def _publish(self, events: Sequence[Any]) -> ApplyResult:
        """An API change with Redis: checked, XADDed, answered once applied from there."""
        assert self.event_publisher is not None
        state = self.writable_state()
        problems = event_problems(list(events), state)
        valid = [event for event, problem in zip(events, problems, strict=True) if not problem]
        rejected = [(i, problem) for i, problem in enumerate(problems) if problem]
        if valid:
            written = await self.event_publisher(valid)
            await self.wait_for_version(0, INGEST_STREAM_TIMEOUT_S, written, writable=True)
        return ApplyResult(version=self.writable_state().version, applied=len(valid),
                           rejected=rejected)  # fmt: skip

    async def ingest(self, events: Sequence[Any], payload: bytes | None = None) -> ApplyResult:
        """Apply one Ingest message as one batch, durably (see the module doc).

        With Redis, ``applied`` counts the events written to the streams (whether each was
        newer than the state's version of its key is the stream writer's to decide, and
        anything it refuses is in the dead-letter stream); ``stale`` is not reported."""
        if self.event_publisher is not None:
            return await self._publish(events)
        return await self._commit(events, payload)

    async def ingest_payload(self, payload: bytes, max_events: int) -> IngestOutcome:
        """Decode one Ingest message (never raises for its content: an undecodable event
        is a rejection at its position) and apply its events as one batch."""
        events, positions, rejected, total = decode_payload(payload)
        if total > max_events:
            raise LimitExceeded("payload", f"{total} events", f"at most {max_events}")
        result = await self.ingest(events, payload if not rejected else None)
        rejected += [(positions[index], reason) for index, reason in result.rejected]
        rejected.sort()
        return IngestOutcome(total, result.applied, result.stale, rejected, result.version)

    async def reserve(
        self, account: str, hold_key: str, lines: tuple[tuple[str, str, int], ...], ttl_ms: int
    ) -> Hold:
        """Place (or find again) ``account``'s hold ``hold_key``, durably, between two
        batches — through the stream when the server reads one, so every replica decides
        it alike. :class:`Conflict` when the account used the key with other lines."""
        fingerprint = tuple(sorted(lines))
        found = hold_of(self.writable_state(), account, hold_key)
        if found is not None:
            if found.fingerprint != fingerprint:
                raise Conflict(f"hold_key: {hold_key!r} was already used with other lines")
            return found  # idempotent: nothing new to apply
        event = ev.HoldPlace(
            account=account, hold_key=hold_key, lines=lines, ttl_ms=ttl_ms, ts_ms=self.clock_ms()
        )
        problem = event_problem(event)
        if problem is not None:
            field, _, detail = problem.partition(": ")
            raise InvalidInput(field, detail)
        if self.hold_publisher is not None:
            await self._through_stream(event)
        else:
            result = await self._commit([event])
            if result.rejected:
                _raise_hold_problem(result.rejected[0][1])
        placed = hold_of(self.writable_state(), account, hold_key)
        if placed is not None and placed.fingerprint == fingerprint:
            return placed
        if placed is not None:  # another Reserve of this key, other lines, came first
            raise Conflict(f"hold_key: {hold_key!r} was already used with other lines")
        raise InvalidInput("lines", "the hold was refused when applied (see the dead letters)")

    async def release(self, account: str, hold_key: str) -> bool:
        """Release ``account``'s hold ``hold_key``; True if it was active. NOT_FOUND for a
        key the account never used — the same answer whether or not another account has
        a hold of that key, so a caller learns nothing about other accounts' keys."""
        hold = hold_of(self.writable_state(), account, hold_key)
        if hold is None:
            raise UnknownCode("hold_key", hold_key)
        if not hold.active:
            return False
        release = ev.HoldRelease(account=account, hold_key=hold_key, ts_ms=self.clock_ms())
        if self.hold_publisher is not None:
            await self._through_stream(release)
        else:
            await self._commit([release])
        return True

    async def _through_stream(self, event: Any) -> None:
        """XADD ``event`` and return once this state has applied its entry."""
        assert self.hold_publisher is not None
        stream, entry = await self.hold_publisher(event)
        await self.wait_for_version(0, HOLD_STREAM_TIMEOUT_S, {stream: entry}, writable=True)

    async def write_snapshot(self, root: str) -> tuple[str, State]:
        """Write a snapshot under ``root``; no batch lands while the files are written."""
        from engine import snapshot

        async with self.stream_commit or contextlib.nullcontext(), self.write_lock:
            state = self.require()
            path = await asyncio.to_thread(snapshot.write, state, root)
        return str(path), state

    async def refresh_stats(self) -> None:
        """Bring writer counters up to date (they live here already in one process)."""

    def holds_active(self) -> int:
        return sum(h.active for h in self.require().holds.values())

    def writer_silence_ms(self) -> int:
        """How long the state's writer has been silent (0: it runs in this process)."""
        return 0

    def _notify(self, change: Change) -> None:
        self.changes.append(change)
        while len(self.changes) > self.config.change_history:
            self.changes.popleft()
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        for queue in self._watchers:
            queue.put_nowait(change)

    def check_min_version(self, version: int) -> None:
        """INVALID_ARGUMENT for a request's ``min_version`` that no answer of this server
        can have carried: more than two lease blocks above its newest version (a writer
        restarted meanwhile starts at most one block higher). Waiting for it would only
        spend the caller's deadline. Only for what a caller sends: the server's own waits
        (a worker's read-your-writes after the writer's reply) are never refused."""
        newest = self.require().version
        if version > newest + 2 * BLOCK:
            raise InvalidInput(
                "min_version", f"{version} is ahead of any version this server has issued",
                f"at most {newest + 2 * BLOCK}: a version an answer carried",
            )  # fmt: skip

    def check_stream_ids(self, stream_ids: Mapping[str, str]) -> None:
        """INVALID_ARGUMENT for a request's ``min_stream_ids`` that no wait could satisfy:
        a stream this server neither reads nor holds a position of, or an id that is not
        a stream entry id. Checked before waiting, so a bad one fails at once, not at the
        caller's deadline."""
        if not stream_ids:
            return
        known = set(self.config.stream_names) | set(self.require().stream_ids)
        for stream, entry in stream_ids.items():
            if stream not in known:
                limit = (
                    shown(f"one of {', '.join(sorted(known))}", 200, quote=False)
                    if known
                    else "none: this server reads no streams (no --redis-url)"
                )
                raise InvalidInput(
                    "min_stream_ids", f"{shown(stream)} is not a stream of this server", limit
                )
            _entry_id(entry, stream)

    def reached(
        self, version: int, stream_ids: Mapping[str, str], *, writable: bool = False
    ) -> bool:
        """True once the state is at ``version`` and past every given stream position
        (``writable``: also while it catches up, for a change waiting to be applied)."""
        state = self.writable_state() if writable else self.require()
        if state.version < version:
            return False
        return all(
            _entry_id(state.stream_ids.get(name, "0-0"), name) >= _entry_id(entry, name)
            for name, entry in stream_ids.items()
        )

    async def wait_for_version(
        self,
        version: int,
        timeout: float | None,
        stream_ids: Mapping[str, str] | None = None,
        *,
        writable: bool = False,
    ) -> None:
        """Return once :meth:`reached`; :class:`VersionTimeout` if not within ``timeout``
        seconds (None: wait as long as it takes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        wanted = stream_ids or {}
        while not self.reached(version, wanted, writable=writable):
            if self._changed is None:
                self._changed = asyncio.Event()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                state = self.writable_state() if writable else self.require()
                raise VersionTimeout(
                    f"min_version: state is at {state.version} with stream ids "
                    f"{dict(state.stream_ids)}; {version} / {dict(wanted)} not "
                    "reached before the deadline"
                )
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue

    def subscribe(self) -> asyncio.Queue[Change]:
        """A queue receiving every future :class:`Change` (unsubscribe when done)."""
        queue: asyncio.Queue[Change] = asyncio.Queue()
        self._watchers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change]) -> None:
        self._watchers.discard(queue)

    def changes_since(self, version: int) -> list[Change] | None:
        """Changes after ``version``, or None when history no longer reaches back that far."""
        if not self.changes or self.changes[0].version > version + 1:
            return None
        return [c for c in self.changes if c.version > version]


def _raise_hold_problem(reason: str) -> None:
    """The error a Reserve gets for the engine's reason to refuse its hold."""
    if "already used" in reason:
        raise Conflict(reason)
    field, _, problem = reason.partition(": ")  # engine reasons start with the field
    if problem.startswith("unknown"):
        raise UnknownCode(field, problem.split("'")[1] if "'" in problem else problem)
    raise InvalidInput(field, problem)
