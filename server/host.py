"""The state holder of one serving process: reads, the single writer, and change feeds.

:class:`StateHost` owns the live :class:`engine.State`. Every change goes through
:meth:`StateHost.apply`, which runs ``engine.deltas.apply_batch`` synchronously on the event
loop thread: a whole batch lands between two reads, so no reader ever sees half of one,
and no lock is needed. After each batch it wakes ``min_version`` waiters and records which
SKUs changed for ``WatchAvailability``.

Time: hold placement and expiry use the batch clock. In-process (Ingest, Reserve) that is
this server's clock at the moment the batch is formed; the Redis writer passes stream-id
time instead (DESIGN §9), so replicas decide holds alike.
"""

from __future__ import annotations

import asyncio
import gc
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
from engine.errors import Conflict, InvalidInput, LimitExceeded, StaleData
from engine.pricing import Policy
from engine.state import Hold, State
from engine.validate import event_problems
from loaders.events import DecodeError, decode, decode_one_by_one
from server.errors import NotServing, VersionTimeout

__all__ = [
    "Change",
    "HostConfig",
    "IngestOutcome",
    "StateHost",
    "decode_payload",
    "freeze_long_lived",
]

HOLD_STREAM_TIMEOUT_S = 30.0  # a Reserve waits this long for its entry to come back applied

I64 = npt.NDArray[np.int64]


def _entry_id(entry: str) -> tuple[int, int]:
    ms, _, seq = entry.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        raise InvalidInput("min_stream_ids", f"{entry!r} is not a stream entry id") from None


def _stream_kind(stream: str) -> str:
    """ "master", "pricing" or "inventory" for ``<prefix>:<kind>[:<shard>]``."""
    parts = stream.split(":")
    return parts[-2] if parts[-1].isdigit() and len(parts) > 2 else parts[-1]


def freeze_long_lived() -> None:
    """Take everything alive now (a just-loaded state) out of the garbage collector's reach.

    A state's code tables are lists of up to millions of codes, and the process holds
    other large long-lived containers; every full collection would traverse them all,
    again and again, for garbage they are never part of. Measured on the stream writer at
    the large scale (``python -m bench.stream_apply``): 20k-event batches applied about
    45% faster. What is allocated later is still collected as usual. A state dropped by a
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
    staleness_limit_ms: int = 0  # 0: never degrade health for staleness
    today: int | None = None  # pin "today" (days since 1970) — demo data and benchmarks


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
    gaps: dict[str, str] = field(default_factory=dict)  # stream → what was lost
    reader_error: str = ""  # why the stream reader is down ("" : healthy), as it reported
    streams: dict[str, Any] = field(default_factory=dict)  # writer's per-stream stats
    _watchers: set[asyncio.Queue[Change]] = field(default_factory=set)
    # set when the state is fed from Redis: holds are published there, then applied from it
    hold_publisher: Callable[[Any], Awaitable[tuple[str, str]]] | None = None
    # The engine lane (server.lane) reads the state on its own thread; a batch must not
    # land in the middle of such a read, so applies and reads take this lock.
    _state_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def serving(self) -> bool:
        return self.state is not None

    def require(self) -> State:
        """The state, or :class:`NotServing` while none is loaded."""
        if self.state is None:
            raise NotServing("state: not loaded yet")
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
        state.skus.prepare_bulk()  # large stream batches look SKUs up through it
        freeze_long_lived()
        self._notify(Change(state.version, np.zeros(0, dtype=np.int64)))

    def apply(
        self,
        events: Sequence[Any],
        *,
        stream_ids: dict[str, str] | None = None,
        clock_ms: int | None = None,
        event_ms: Sequence[int] | None = None,
    ) -> ApplyResult:
        """Apply one batch (the only way the state changes) and wake readers waiting on it."""
        state = self.require()
        with self._state_lock:
            result = apply_batch(
                state,
                events,
                stream_ids=stream_ids,
                clock_ms=self.clock_ms() if clock_ms is None else clock_ms,
                event_ms=event_ms,
            )
        self.applied_total += result.applied
        self.rejected_total += len(result.rejected)
        self._notify(Change(result.version, result.skus_changed))
        return result

    async def apply_async(self, events: Sequence[Any], **kwargs: Any) -> ApplyResult:
        """:meth:`apply` once no snapshot is being written."""
        async with self.write_lock:
            return self.apply(events, **kwargs)

    # -- the Redis writer's sink (loaders.stream_writer.Sink) ---------------------------

    def positions(self) -> dict[str, str]:
        """Last applied id per stream, as recorded in the state (and its snapshots)."""
        return dict(self.require().stream_ids)

    def apply_batch(
        self,
        events: Sequence[Any],
        *,
        stream_ids: dict[str, str],
        clock_ms: int,
        event_ms: Sequence[int],
    ) -> ApplyResult:
        return self.apply(events, stream_ids=stream_ids, clock_ms=clock_ms, event_ms=event_ms)

    def report_gap(self, stream: str, detail: str) -> None:
        self.gaps[stream] = detail

    def report_reader(self, error: str) -> None:
        """Recorded only; turning health NOT_SERVING while it is set is the server's part."""
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
        if state is None:
            return None
        now = self.clock_ms()
        due = any(h.active and h.expires_at_ms <= now for h in state.holds.values())
        return self.apply([], clock_ms=now) if due else None

    def place_hold(
        self, hold_key: str, lines: tuple[tuple[str, str, int], ...], ttl_ms: int
    ) -> Hold:
        """Place (or find again) a hold; :class:`Conflict` when the key has other lines."""
        now = self.clock_ms()
        event = ev.HoldPlace(hold_key=hold_key, lines=lines, ttl_ms=ttl_ms, ts_ms=now)
        result = self.apply([event], clock_ms=now)
        if result.rejected:
            reason = result.rejected[0][1]
            if "already used" in reason:
                raise Conflict(reason)
            field, _, problem = reason.partition(": ")  # engine reasons start with the field
            raise InvalidInput(field, problem)
        return self.require().holds[hold_key]

    # -- what the API changes: one method each, so a worker process can forward them -------

    async def ingest(self, events: Sequence[Any]) -> ApplyResult:
        """Apply one Ingest message as one batch."""
        return await self.apply_async(events)

    async def ingest_payload(self, payload: bytes, max_events: int) -> IngestOutcome:
        """Decode one Ingest message (never raises for its content: an undecodable event
        is a rejection at its position) and apply its events as one batch."""
        events, positions, rejected, total = decode_payload(payload)
        if total > max_events:
            raise LimitExceeded("payload", f"{total} events", f"at most {max_events}")
        result = await self.ingest(events)
        rejected += [(positions[index], reason) for index, reason in result.rejected]
        rejected.sort()
        return IngestOutcome(total, result.applied, result.stale, rejected, result.version)

    async def reserve(
        self, account: str, hold_key: str, lines: tuple[tuple[str, str, int], ...], ttl_ms: int
    ) -> Hold:
        """Place (or find again) a hold, between two batches — through the stream when the
        server reads one (:attr:`hold_publisher`), so every replica decides it alike."""
        if self.hold_publisher is None:
            async with self.write_lock:
                return self.place_hold(hold_key, lines, ttl_ms)
        fingerprint = tuple(sorted(lines))
        state = self.require()
        found = state.holds.get(hold_key)
        if found is not None and found.fingerprint == fingerprint:
            return found  # idempotent: nothing new to publish
        if found is not None:
            raise Conflict(f"hold_key: {hold_key!r} was already used with other lines")
        event = ev.HoldPlace(hold_key=hold_key, lines=lines, ttl_ms=ttl_ms, ts_ms=self.clock_ms())
        problem = event_problems([event], state.skus, state.locations)[0]
        if problem is not None:
            field, _, detail = problem.partition(": ")
            raise InvalidInput(field, detail)
        await self._through_stream(event)
        placed = self.require().holds.get(hold_key)
        if placed is None or placed.fingerprint != fingerprint:
            # another Reserve with this key and other lines reached the stream first
            raise Conflict(f"hold_key: {hold_key!r} was already used with other lines")
        return placed

    async def release(self, account: str, hold_key: str) -> bool:
        """Release a hold; True if it was active."""
        hold = self.require().holds.get(hold_key)
        was_active = hold is not None and hold.active
        release = ev.HoldRelease(hold_key=hold_key, ts_ms=self.clock_ms())
        if self.hold_publisher is None:
            await self.apply_async([release])
        elif hold is not None:
            await self._through_stream(release)
        return was_active

    async def _through_stream(self, event: Any) -> None:
        """XADD ``event`` and return once this state has applied its entry."""
        assert self.hold_publisher is not None
        stream, entry = await self.hold_publisher(event)
        await self.wait_for_version(0, HOLD_STREAM_TIMEOUT_S, {stream: entry})

    async def write_snapshot(self, root: str) -> tuple[str, State]:
        """Write a snapshot under ``root``; no batch lands while the files are written."""
        from engine import snapshot

        async with self.write_lock:
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

    def reached(self, version: int, stream_ids: Mapping[str, str]) -> bool:
        """True once the state is at ``version`` and past every given stream position."""
        state = self.require()
        if state.version < version:
            return False
        return all(
            _entry_id(state.stream_ids.get(name, "0-0")) >= _entry_id(entry)
            for name, entry in stream_ids.items()
        )

    async def wait_for_version(
        self, version: int, timeout: float | None, stream_ids: Mapping[str, str] | None = None
    ) -> None:
        """Return once :meth:`reached`; :class:`VersionTimeout` if not within ``timeout``
        seconds (None: wait as long as it takes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        wanted = stream_ids or {}
        while not self.reached(version, wanted):
            if self._changed is None:
                self._changed = asyncio.Event()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise VersionTimeout(
                    f"min_version: state is at {self.require().version} with stream ids "
                    f"{dict(self.require().stream_ids)}; {version} / {dict(wanted)} not "
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
