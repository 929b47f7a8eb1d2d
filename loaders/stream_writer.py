"""The Redis Streams writer: reads the change streams in batches and applies them whole.

Streams (DESIGN §6): ``<prefix>:master``, ``<prefix>:pricing``, ``<prefix>:inventory`` and
any ``<prefix>:inventory:<n>`` shards. Each entry holds one event or an array of events
(msgpack or JSON) in its field ``e``.

Positions, not consumer groups: the last applied id of every stream is part of the state
(and of every snapshot), and each read is ``XREAD`` from those ids. A restart — of the
writer, or of Redis with or without its data — resumes from exactly what was applied, with
no group to recreate and no pending list to reconcile; every replica keeps its own
positions. One ``XREAD`` over all streams (COUNT, BLOCK) becomes one batch: applied as a
whole, its clock the newest stream-id time in it (holds are timed by the stream, not by
this machine's clock).

Failure handling:
- an entry that does not decode, or an event the engine rejects, goes to ``<prefix>:dlq``
  with its stream, id and reason, and is counted; the stream moves on;
- Redis unreachable: reconnect with capped exponential backoff;
- a read that hangs past ``BLOCK`` + ``watchdog_s`` is abandoned and the connection reset;
- a stream trimmed past our position (its first entry is newer than our id, or it no
  longer exists while we had read from it) is a *gap*: the stream is marked, a log line
  written, the sink told (the server reports NOT_SERVING for that data), and no more of
  it is applied until a full reload: serving silently wrong data is worse than serving none.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from engine.deltas import ApplyResult
from loaders.events import DecodeError, decode, decode_one_by_one, encode

__all__ = ["FIELD", "Sink", "StreamStats", "StreamWriter", "WriterConfig", "stream_names"]

log = logging.getLogger("pacache.writer")
FIELD = b"e"
LAG_CAP = 1_000  # lag_entries saturates here
START = "0-0"


class Sink(Protocol):
    """Where the writer's batches go (the server's state host implements it)."""

    def positions(self) -> Mapping[str, str]:
        """Last applied id per stream (from the state or its snapshot)."""

    def apply_batch(
        self,
        events: Sequence[Any],
        *,
        stream_ids: dict[str, str],
        clock_ms: int,
        event_ms: Sequence[int],
    ) -> ApplyResult | Awaitable[ApplyResult]:
        """Apply one whole batch and record the positions with it; ``event_ms`` is each
        event's stream-id time. May be a coroutine: the multi-process writer waits there
        while a checkpoint still reads its state."""

    def report_gap(self, stream: str, detail: str) -> None:
        """A stream lost entries we had not applied: stop trusting its data."""


def stream_names(prefix: str, inventory_shards: int = 0) -> list[str]:
    """The streams a writer reads, in a fixed order."""
    names = [f"{prefix}:master", f"{prefix}:pricing"]
    if inventory_shards:
        names += [f"{prefix}:inventory:{n}" for n in range(inventory_shards)]
    else:
        names.append(f"{prefix}:inventory")
    return names


@dataclass
class StreamStats:
    """Per-stream counters for Admin Stats."""

    last_id: str = START
    applied: int = 0
    dead_lettered: int = 0
    lag_entries: int = 0
    newest_ts_ms: int = 0
    gap: str = ""


@dataclass
class WriterConfig:
    prefix: str = "pacache"
    inventory_shards: int = 0
    # entries per stream per read: a batch holds the event loop while it applies, so keep
    # it to a few ms of work (at 100 events per entry, ~20k events)
    count: int = 200
    block_ms: int = 50
    watchdog_s: float = 5.0
    backoff_max_s: float = 5.0
    lag_every_s: float = 1.0
    dlq_maxlen: int = 1_000_000


def _id_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


_TS_MS = attrgetter("ts_ms")  # every event type carries ts_ms (engine.events)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _id_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def hold_publisher(url: str, config: WriterConfig) -> Callable[[Any], Awaitable[tuple[str, str]]]:
    """An XADD of one hold event to the first inventory stream; returns (stream, entry id).

    Reserve and Release go through the stream when the server reads one (DESIGN §5, §9): every
    replica then decides every hold in the same stream order, at the same stream time. One
    stream for all holds keeps them in one order even when inventory is sharded.
    """
    stream = stream_names(config.prefix, config.inventory_shards)[2]
    client = aioredis.Redis.from_url(url, socket_timeout=config.watchdog_s)

    async def publish(event: Any) -> tuple[str, str]:
        entry = await client.xadd(stream, {FIELD: encode([event])})
        return stream, _text(entry)

    return publish


@dataclass
class StreamWriter:
    """Reads the streams and feeds whole batches to a :class:`Sink`."""

    url: str
    sink: Sink
    config: WriterConfig = field(default_factory=WriterConfig)
    stats: dict[str, StreamStats] = field(default_factory=dict)
    reconnects: int = 0
    batches: int = 0
    _redis: aioredis.Redis | None = None

    def __post_init__(self) -> None:
        for name in stream_names(self.config.prefix, self.config.inventory_shards):
            self.stats.setdefault(name, StreamStats())

    @property
    def dlq(self) -> str:
        return f"{self.config.prefix}:dlq"

    async def _connect(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(
                self.url,
                socket_timeout=self.config.block_ms / 1000 + self.config.watchdog_s,
                socket_connect_timeout=self.config.watchdog_s,
                health_check_interval=0,
            )
            await self._redis.ping()
        return self._redis

    async def _reset(self) -> None:
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
        self._redis = None

    async def run(self, stop: asyncio.Event) -> None:
        """Read and apply until ``stop`` is set; survives Redis going away."""
        delay = 0.05
        last_lag = 0.0
        for name, position in self.sink.positions().items():
            if name in self.stats:
                self.stats[name].last_id = position
        while not stop.is_set():
            try:
                client = await self._connect()
                if time.monotonic() - last_lag > self.config.lag_every_s:
                    await self._check_streams(client)
                    last_lag = time.monotonic()
                await asyncio.wait_for(
                    self.step(client),
                    self.config.block_ms / 1000 + self.config.watchdog_s,
                )
                delay = 0.05
            except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError) as error:
                self.reconnects += 1
                log.warning("redis unavailable (%s); retrying in %.2fs", error, delay)
                await self._reset()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, self.config.backoff_max_s)
        await self._reset()

    def _readable(self) -> dict[str, str]:
        return {name: s.last_id for name, s in self.stats.items() if not s.gap}

    async def step(self, client: aioredis.Redis) -> int:
        """One XREAD over every healthy stream, applied as one batch; returns events seen."""
        streams: dict[Any, Any] = self._readable()
        if not streams:
            await asyncio.sleep(self.config.block_ms / 1000)
            return 0
        reply: Any = await client.xread(
            streams, count=self.config.count, block=self.config.block_ms
        )
        if not reply:
            return 0
        events: list[Any] = []
        event_ms: list[int] = []
        # per entry (not per event): stream, id, payload, its first event, newest ts_ms
        spans: list[tuple[str, str, bytes, int, int]] = []
        dead: list[tuple[str, str, bytes, str]] = []
        stream_ids: dict[str, str] = {}
        for raw_name, entries in reply:
            name = _text(raw_name)
            for raw_id, fields in entries:
                entry_id = _text(raw_id)
                payload = fields.get(FIELD) or next(iter(fields.values()), b"")
                try:
                    decoded = decode(payload)
                except DecodeError:
                    decoded, bad = decode_one_by_one(payload)
                    dead += [(name, entry_id, payload, reason) for _, reason in bad]
                newest = max(map(_TS_MS, decoded), default=0)
                spans.append((name, entry_id, payload, len(events), newest))
                events += decoded
                event_ms += [_id_ms(entry_id)] * len(decoded)
            stream_ids[name] = entry_id
        clock_ms = max(_id_ms(entry_id) for entry_id in stream_ids.values())
        applied = self.sink.apply_batch(
            events, stream_ids=stream_ids, clock_ms=clock_ms, event_ms=event_ms
        )
        result = await applied if inspect.isawaitable(applied) else applied
        if result.rejected:
            starts = [span[3] for span in spans]
            for index, reason in result.rejected:
                name, entry_id, payload, _, _ = spans[bisect.bisect_right(starts, index) - 1]
                dead.append((name, entry_id, payload, reason))
        if dead:
            await self._dead_letter(client, dead)
        for name, entry_id in stream_ids.items():
            self.stats[name].last_id = entry_id
        for i, (name, _, _, first, newest) in enumerate(spans):
            stats = self.stats[name]
            last = spans[i + 1][3] if i + 1 < len(spans) else len(events)
            stats.applied += last - first
            stats.newest_ts_ms = max(stats.newest_ts_ms, newest)
        self.batches += 1
        return len(events)

    async def _dead_letter(
        self, client: aioredis.Redis, dead: list[tuple[str, str, bytes, str]]
    ) -> None:
        pipe = client.pipeline(transaction=False)
        for name, entry_id, payload, reason in dead:
            self.stats[name].dead_lettered += 1
            log.warning("dead-lettered %s %s: %s", name, entry_id, reason)
            pipe.xadd(
                self.dlq,
                {"stream": name, "id": entry_id, "reason": reason, "payload": payload},
                maxlen=self.config.dlq_maxlen,
                approximate=True,
            )
        await pipe.execute()

    async def _check_streams(self, client: aioredis.Redis) -> None:
        """Lag per stream, gap detection, and recovery from a Redis that lost history."""
        for name, stats in self.stats.items():
            if stats.gap:
                continue
            try:
                info = await client.xinfo_stream(name)
            except ResponseError:  # no such stream (yet, or any more)
                info = None
            ours = _id_tuple(stats.last_id)
            last = _id_tuple(_text(info["last-generated-id"])) if info else (0, 0)
            first = info.get("first-entry") if info else None
            first_id = _id_tuple(_text(first[0])) if first else None
            never_trimmed = info is not None and info["entries-added"] == info["length"]
            recreated = first_id is not None and first_id > ours and never_trimmed
            if stats.last_id != START and (last < ours or recreated):
                # Redis holds a different history than the one we applied (it restarted
                # without its data, or the stream was recreated). Re-read it from its
                # start: apply is idempotent, so nothing is doubled and nothing skipped.
                log.warning("%s: Redis no longer has our position %s; re-reading from the start",
                            name, stats.last_id)  # fmt: skip
                stats.last_id = START
                continue
            if first and stats.last_id != START and first_id is not None and first_id > ours:
                # Everything before the first entry is gone, and it is newer than our
                # position: entries we never applied were trimmed. (Flagged also in the
                # one benign case of being exactly MAXLEN entries behind.)
                self._gap(
                    name,
                    f"stream {name} starts at {_text(first[0])}, after our position "
                    f"{stats.last_id}: entries were trimmed before we applied them",
                )
                continue
            stats.lag_entries = 0
            if last > ours:  # counted up to LAG_CAP: reading a deep backlog costs more
                pending: Any = await client.xrange(
                    name, min=f"({stats.last_id}", max="+", count=LAG_CAP
                )
                stats.lag_entries = len(pending)

    def _gap(self, name: str, detail: str) -> None:
        self.stats[name].gap = detail
        log.error("GAP: %s — NOT_SERVING this data until a full reload", detail)
        self.sink.report_gap(name, detail)
