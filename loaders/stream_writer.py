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

Failure handling — the reader never stops on bad data, and never dies quietly:

- an entry that does not decode (bad or truncated msgpack/JSON, nesting thousands deep, an
  integer beyond int64, an unknown ``type``), that has no field ``e``, or holding events the
  engine rejects, goes to ``<prefix>:dlq`` — one record per entry: ``stream``, ``id``,
  ``reason`` (at most ~300 characters), ``payload`` (the raw bytes; past 1 MiB only the
  first 1 MiB, with ``truncated`` holding the original size) — is counted in
  :attr:`StreamStats.dead_lettered` and logged at WARNING. The entry's good events are
  applied, and so are the entries after it: decoding is isolated per entry. One record
  per entry also across restarts and replicas: a restarted writer re-reads the entries
  after its checkpoint's positions, dead ones included, so each record is written by one
  script together with its stream's mark in ``<prefix>:dlq:marks`` (the last id
  dead-lettered; entries are dead-lettered in stream order), and an entry at or before
  its stream's mark is not written again. From a batch's apply until its dead letters
  are written the writer holds :attr:`StreamWriter.committing`, which snapshots of the
  state take first: none records positions past an entry that is not in the DLQ yet;
- a batch whose apply *raises* (a bug, an event the engine's validation let through but
  its apply chokes on) is applied again one entry at a time; an entry whose apply raises
  is dead-lettered (``apply failed: <class>: <message>``) once an empty apply that records
  its position succeeds — that tells a bad entry from a failing sink, which must not empty
  the backlog into the DLQ; if it fails too, the sink's error goes on as a reader error
  (below). Positions advance only past entries applied or dead-lettered;
- the sink raising :class:`SinkUnavailable` (no state loaded, a restore under way) means
  "not now": nothing is dead-lettered, positions stay, the writer backs off, re-reads the
  sink's positions (a restore may have moved them) and reads the same entries again;
- Redis unreachable: reconnect with capped exponential backoff;
- a Redis call that hangs past ``BLOCK`` + ``watchdog_s`` is abandoned and the connection
  reset. The watchdog times Redis I/O only, never the sink's apply, which may rightly wait
  many seconds (for a checkpoint's lock);
- any other exception escaping a step (a sink bug, a Redis reply it cannot use) is logged
  at ERROR with its traceback, recorded in :attr:`StreamWriter.reader_error` and every
  stream's :attr:`StreamStats.reader_error`, and reported through
  :meth:`Sink.report_reader` on each change between healthy and down (the server then
  answers NOT_SERVING for the streams' data); the loop goes on after a capped exponential
  backoff, and the next successful step clears it;
- a stream trimmed past our position (its first entry is newer than our id, or it no
  longer exists while we had read from it) is a *gap*: the stream is marked, a log line
  written, the sink told (the server reports NOT_SERVING for that data), and no more of
  it is applied until a full reload: serving silently wrong data is worse than serving none.

Backlog age: :attr:`StreamStats.oldest_unapplied_ms` is the stream-id time of the first entry
after our position (0 when there is none), set by the periodic stream check and by every
read. The server compares ``now - oldest_unapplied_ms`` with its staleness limit, so a
writer stuck in front of old entries shows as stale even when no new entry arrives. Stream
ids carry the *Redis server's* clock: a skew between it and the serving host adds to (or
hides) that much age.

Publishing: :func:`event_publisher` writes events to their streams (routed as
``loaders.producer`` does) in one MULTI/EXEC per call, for an Ingest that acknowledges only
what is in Redis; :func:`hold_publisher` writes one hold to the first inventory stream.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Protocol, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from engine.deltas import ApplyResult
from loaders.events import DecodeError, clip_reason, decode, decode_one_by_one, encode, excerpt
from loaders.producer import DEFAULT_BATCH, pack_entries, streams_for

__all__ = [
    "DLQ_PAYLOAD_MAX",
    "FIELD",
    "EventPublisher",
    "HoldPublisher",
    "Sink",
    "SinkUnavailable",
    "StreamStats",
    "StreamWriter",
    "WriterConfig",
    "event_publisher",
    "hold_publisher",
    "stream_names",
]

log = logging.getLogger("pacache.writer")
FIELD = b"e"
LAG_CAP = 1_000  # lag_entries saturates here
START = "0-0"
DLQ_PAYLOAD_MAX = 1 << 20  # bytes of a dead entry's payload kept in the DLQ
FIRST_DELAY_S = 0.05  # the first backoff; it doubles up to WriterConfig.backoff_max_s
# errors of the connection, not of the data: reconnect and read the same entries again
# (the builtin TimeoutError, which asyncio.wait_for raises, is an OSError)
_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)

T = TypeVar("T")

# Dead-letters entries once each (see the module docstring). KEYS: the DLQ, the marks hash;
# ARGV: MAXLEN, then per entry stream, id, reason, payload, original size ("" : whole).
# Returns 1 per entry written, 0 per entry at or before its stream's mark. Ids compare as
# numbers written in digits: longer is larger, else lexicographic.
_DEAD_LETTER = """
local function after(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  if not ams or not bms then return true end
  if #ams ~= #bms then return #ams > #bms end
  if ams ~= bms then return ams > bms end
  if #aseq ~= #bseq then return #aseq > #bseq end
  return aseq > bseq
end
local written = {}
for i = 2, #ARGV, 5 do
  local stream, id = ARGV[i], ARGV[i + 1]
  local mark = redis.call('HGET', KEYS[2], stream)
  if mark and not after(id, mark) then
    written[#written + 1] = 0
  else
    local fields = {'stream', stream, 'id', id, 'reason', ARGV[i + 2], 'payload', ARGV[i + 3]}
    if ARGV[i + 4] ~= '' then
      fields[#fields + 1] = 'truncated'
      fields[#fields + 1] = ARGV[i + 4]
    end
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
    redis.call('HSET', KEYS[2], stream, id)
    written[#written + 1] = 1
  end
end
return written
"""


class SinkUnavailable(Exception):
    """Raised by a sink that can apply nothing right now (no state loaded yet, a restore
    under way). Not the entries' fault: the writer dead-letters nothing, keeps its
    positions, backs off, re-reads :meth:`Sink.positions` and retries the same entries."""


class Sink(Protocol):
    """Where the writer's batches go (the server's state host implements it)."""

    def positions(self) -> Mapping[str, str]:
        """Last applied id per stream (from the state or its snapshot). May raise
        :class:`SinkUnavailable`."""

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
        while a checkpoint still reads its state. Raises :class:`SinkUnavailable` when it
        can apply nothing now; any other exception makes the writer apply the batch's
        entries one at a time and dead-letter those whose apply raises."""

    def report_gap(self, stream: str, detail: str) -> None:
        """A stream lost entries we had not applied: stop trusting its data."""

    def report_reader(self, error: str) -> None:
        """The reader is down (``error`` says why) or, with ``""``, healthy again. Called
        on each change between the two: while down, the streams' data goes stale
        unnoticed by the stream ids, so the server reports NOT_SERVING for it."""


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
    """Per-stream counters for Admin Stats.

    ``applied``: events handed to the engine (stale and rejected ones included);
    ``dead_lettered``: entries sent to the DLQ; ``oldest_unapplied_ms``: stream-id time of
    the first entry after ``last_id``, 0 when there is none (see the module docstring);
    ``reader_error``: why the reader is down, "" while it is healthy.
    """

    last_id: str = START
    applied: int = 0
    dead_lettered: int = 0
    lag_entries: int = 0
    newest_ts_ms: int = 0
    gap: str = ""
    oldest_unapplied_ms: int = 0
    reader_error: str = ""


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


def _error_text(error: BaseException) -> str:
    return clip_reason(f"{type(error).__name__}: {error}")


class EventPublisher:
    """Writes events to the change streams in one MULTI/EXEC per call (see
    :func:`event_publisher`); ``route`` names an event's streams. Holds one connection
    pool; :meth:`aclose` closes it."""

    def __init__(
        self, url: str, config: WriterConfig, route: Callable[[Any], Iterable[str]]
    ) -> None:
        self.route = route
        self.client = aioredis.Redis.from_url(url, socket_timeout=config.watchdog_s)

    async def __call__(self, events: Sequence[Any]) -> dict[str, str]:
        """Add ``events``; returns the last entry id written per stream."""
        # routed and encoded before anything is sent: an event that cannot be sends none
        entries = [
            (stream, encode(batch))
            for stream, batch in pack_entries(events, self.route, DEFAULT_BATCH)
        ]
        if not entries:
            return {}
        # MULTI/EXEC: no reader sees part of a call, and a connection lost before EXEC
        # adds nothing. One XADD is atomic by itself.
        async with self.client.pipeline(transaction=len(entries) > 1) as pipe:
            for stream, payload in entries:
                pipe.xadd(stream, {FIELD: payload})
            ids = await pipe.execute()
        last: dict[str, str] = {}
        for (stream, _), entry_id in zip(entries, ids, strict=True):
            last[stream] = _text(entry_id)
        return last

    async def aclose(self) -> None:
        await self.client.aclose()


def event_publisher(url: str, config: WriterConfig) -> EventPublisher:
    """An async publisher of events to the change streams — a
    ``Callable[[Sequence[Any]], Awaitable[dict[str, str]]]`` — returning the last entry id
    written per stream.

    For an Ingest that is durable before it is acknowledged: the server publishes, then
    waits until its state has applied at least those ids. Events are routed as
    ``loaders.producer.Producer`` routes them (master, pricing, inventory; inventory by
    ``shard_of`` when ``config.inventory_shards`` is set, a hold to each of its shards),
    each stream's events keep their order, and consecutive events of one stream share an
    entry of at most 500. All XADDs of one call go in one MULTI/EXEC: readers see all of
    a call or none of it, and a connection lost before EXEC writes nothing. (Redis does
    not roll back a command that fails inside EXEC — a key of the wrong type — the call
    then raises.) An object that is not a pacache event raises ValueError before anything
    is sent; events are not validated here. ``aclose()`` closes its connections.
    """
    prefix, shards = config.prefix, config.inventory_shards
    return EventPublisher(url, config, lambda event: streams_for(event, prefix, shards))


class HoldPublisher:
    """Writes one hold event to the first inventory stream (see :func:`hold_publisher`);
    :meth:`aclose` closes its connections."""

    def __init__(self, url: str, config: WriterConfig) -> None:
        self.stream = stream_names(config.prefix, config.inventory_shards)[2]
        self._publish = EventPublisher(url, config, lambda _event: (self.stream,))

    async def __call__(self, event: Any) -> tuple[str, str]:
        """Add ``event``; returns (stream, entry id)."""
        written = await self._publish([event])
        return self.stream, written[self.stream]

    async def aclose(self) -> None:
        await self._publish.aclose()


def hold_publisher(url: str, config: WriterConfig) -> HoldPublisher:
    """An XADD of one hold event to the first inventory stream — a
    ``Callable[[Any], Awaitable[tuple[str, str]]]`` returning (stream, entry id).

    Reserve and Release go through the stream when the server reads one (DESIGN §5, §9): every
    replica then decides every hold in the same stream order, at the same stream time. One
    stream for all holds keeps them in one order even when inventory is sharded (so a hold
    is not routed here as :func:`event_publisher` routes one).
    """
    return HoldPublisher(url, config)


@dataclass(slots=True)
class _Entry:
    """One stream entry on its way through a step."""

    stream: str
    entry_id: str
    payload: bytes
    events: list[Any]
    # each decoded event's position in the entry, when some members did not decode
    positions: list[int] | None = None
    problems: list[str] = field(default_factory=list)  # why (parts of) it go to the DLQ
    applied: bool = False  # handed to the sink without its apply raising

    @property
    def ms(self) -> int:
        return _id_ms(self.entry_id)

    def reject(self, index: int, reason: str) -> None:
        """The engine rejected this entry's event ``index`` (of :attr:`events`)."""
        position = self.positions[index] if self.positions is not None else index
        kind = type(self.events[index]).__name__
        self.problems.append(f"event {position} ({kind}): {reason}")

    def reason(self) -> str:
        if len(self.problems) == 1:
            return clip_reason(self.problems[0])
        return clip_reason(f"{len(self.problems)} problems: " + "; ".join(self.problems))


def _entry(stream: str, raw_id: Any, fields: Mapping[Any, Any]) -> _Entry:
    """Decode one entry; whatever is wrong with it becomes its problems, never an error."""
    entry_id = _text(raw_id)
    if not isinstance(fields, Mapping):  # not seen from XREAD; a reply to survive anyway
        fields = {}
    payload = fields.get(FIELD)
    if not isinstance(payload, bytes):
        names = ", ".join(excerpt(name) for name in list(fields)[:5])
        return _Entry(stream, entry_id, b"", [], problems=[f"entry: no field 'e' ({names})"])
    try:
        return _Entry(stream, entry_id, payload, decode(payload))
    except DecodeError:
        events, bad = decode_one_by_one(payload)
    except Exception as error:  # decode promises DecodeError only; a stream must outlive a bug
        return _Entry(stream, entry_id, payload, [], problems=[f"decode: {_error_text(error)}"])
    entry = _Entry(stream, entry_id, payload, events, problems=[reason for _, reason in bad])
    if bad and events:
        skipped = {position for position, _ in bad}
        entry.positions = [p for p in range(len(events) + len(bad)) if p not in skipped]
    return entry


@dataclass
class StreamWriter:
    """Reads the streams and feeds whole batches to a :class:`Sink`."""

    url: str
    sink: Sink
    config: WriterConfig = field(default_factory=WriterConfig)
    stats: dict[str, StreamStats] = field(default_factory=dict)
    reconnects: int = 0
    batches: int = 0
    reader_error: str = ""  # why the reader is down; "" while healthy
    _redis: aioredis.Redis | None = None
    _unavailable: bool = False  # the sink said SinkUnavailable, not yet applied since
    # held from applying a batch until its dead letters are written: the state then holds
    # positions past entries that are not in the DLQ yet, so whoever snapshots the state
    # (checkpoints) takes this lock first; a snapshot in between, then a crash, and those
    # entries would never be dead-lettered (the restart resumes past them)
    committing: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        for name in stream_names(self.config.prefix, self.config.inventory_shards):
            self.stats.setdefault(name, StreamStats())

    @property
    def dlq(self) -> str:
        return f"{self.config.prefix}:dlq"

    async def _io(self, call: Awaitable[T]) -> T:
        """A Redis call under the watchdog: one that hangs is abandoned (TimeoutError)."""
        return await asyncio.wait_for(call, self.config.block_ms / 1000 + self.config.watchdog_s)

    async def _connect(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(
                self.url,
                socket_timeout=self.config.block_ms / 1000 + self.config.watchdog_s,
                socket_connect_timeout=self.config.watchdog_s,
                health_check_interval=0,
            )
            await self._io(self._redis.ping())
        return self._redis

    async def _reset(self) -> None:
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
        self._redis = None

    def _take_positions(self) -> None:
        """Start from the sink's positions (at start, and after it was unavailable: a
        restore may have moved them)."""
        positions = self.sink.positions()
        for name, stats in self.stats.items():
            stats.last_id = positions.get(name, START)

    async def run(self, stop: asyncio.Event) -> None:
        """Read and apply until ``stop`` is set; survives Redis going away, bad entries,
        a sink that is not ready and errors of its own (see the module docstring)."""
        delay = FIRST_DELAY_S
        last_lag = 0.0
        positions_known = False
        while not stop.is_set():
            try:
                if not positions_known:
                    self._take_positions()
                    positions_known = True
                client = await self._connect()
                if time.monotonic() - last_lag > self.config.lag_every_s:
                    await self._check_streams(client)
                    last_lag = time.monotonic()
                await self.step(client)
            except SinkUnavailable as error:
                positions_known = False
                if not self._unavailable:
                    log.warning("sink unavailable (%s); retrying the same entries", error)
                self._unavailable = True
            except _REDIS_DOWN as error:
                self.reconnects += 1
                log.warning("redis unavailable (%s); retrying in %.2fs", error, delay)
                await self._reset()
            except Exception as error:  # CancelledError is not an Exception: it stops us
                log.exception("stream reader failed; retrying in %.2fs", delay)
                self._reader_down(error)
                await self._reset()  # the reply it failed on may have left the connection odd
            else:
                if self._unavailable:
                    log.info("sink available again")
                    self._unavailable = False
                self._reader_up()
                delay = FIRST_DELAY_S
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, self.config.backoff_max_s)
        await self._reset()

    def _reader_down(self, error: BaseException) -> None:
        text = _error_text(error)
        was_healthy = not self.reader_error
        self.reader_error = text
        for stats in self.stats.values():
            stats.reader_error = text
        if was_healthy:
            self._report_reader(text)

    def _reader_up(self) -> None:
        if self.reader_error:
            log.warning("stream reader healthy again (it had failed: %s)", self.reader_error)
            self.reader_error = ""
            for stats in self.stats.values():
                stats.reader_error = ""
            self._report_reader("")

    def _report_reader(self, error: str) -> None:
        try:
            self.sink.report_reader(error)
        except Exception:  # the report is for the server's health; the reader goes on
            log.exception("sink.report_reader(%r) failed", error)

    def _readable(self) -> dict[str, str]:
        return {name: s.last_id for name, s in self.stats.items() if not s.gap}

    async def step(self, client: aioredis.Redis) -> int:
        """One XREAD over every healthy stream, applied as one batch; returns events seen.

        Raises what the sink or Redis raised when it could not finish: entries applied or
        dead-lettered before that are committed (positions, DLQ) first.
        """
        streams: dict[Any, Any] = self._readable()
        if not streams:
            await asyncio.sleep(self.config.block_ms / 1000)
            return 0
        reply: Any = await self._io(
            client.xread(streams, count=self.config.count, block=self.config.block_ms)
        )
        entries: list[_Entry] = []
        drained: set[str] = set(streams)  # streams read to their end (nothing more after)
        for raw_name, raw_entries in reply or ():
            name = _text(raw_name)
            read = [_entry(name, raw_id, fields) for raw_id, fields in raw_entries]
            if read:  # seen while the apply below runs, however long it waits
                self.stats[name].oldest_unapplied_ms = read[0].ms
            if len(read) >= self.config.count:
                drained.discard(name)
            entries += read
        async with self.committing:  # a snapshot now would hold positions past dead
            done, failure = await self._apply(entries) if entries else (0, None)
            await self._commit(client, entries[:done])  # entries not in the DLQ yet
        if failure is not None:
            raise failure
        for name in drained:
            self.stats[name].oldest_unapplied_ms = 0
        if entries:
            self.batches += 1
        return sum(len(entry.events) for entry in entries)

    async def _sink_apply(
        self, events: Sequence[Any], stream_ids: dict[str, str], clock_ms: int, event_ms: list[int]
    ) -> ApplyResult:
        applied = self.sink.apply_batch(
            events, stream_ids=stream_ids, clock_ms=clock_ms, event_ms=event_ms
        )
        return await applied if inspect.isawaitable(applied) else applied

    async def _apply(self, entries: list[_Entry]) -> tuple[int, BaseException | None]:
        """Apply ``entries`` as one batch, or one by one if that raises. Returns how many
        (from the first) are done — applied or to be dead-lettered — and the error that
        stopped the rest, if any."""
        events: list[Any] = []
        event_ms: list[int] = []
        starts: list[int] = []  # first event of each entry that has events
        holders: list[_Entry] = []
        stream_ids: dict[str, str] = {}
        for entry in entries:
            if entry.events:
                starts.append(len(events))
                holders.append(entry)
                events += entry.events
                event_ms += [entry.ms] * len(entry.events)
            stream_ids[entry.stream] = entry.entry_id
        clock_ms = max(_id_ms(entry_id) for entry_id in stream_ids.values())
        try:
            result = await self._sink_apply(events, stream_ids, clock_ms, event_ms)
        except (SinkUnavailable, *_REDIS_DOWN) as error:
            return 0, error
        except Exception as error:
            log.warning(
                "a batch of %d entries failed to apply (%s); applying them one by one",
                len(entries), _error_text(error),
            )  # fmt: skip
            return await self._apply_one_by_one(entries)
        for entry in entries:
            entry.applied = True
        for index, reason in result.rejected:
            at = bisect.bisect_right(starts, index) - 1
            holders[at].reject(index - starts[at], reason)
        return len(entries), None

    async def _apply_one_by_one(self, entries: list[_Entry]) -> tuple[int, BaseException | None]:
        """Each entry its own batch (its own stream id and clock). An entry whose apply
        raises is dead-lettered once an empty apply recording its position succeeds; if
        that raises too, the sink itself is failing: stop there and let the error go on."""
        for done, entry in enumerate(entries):
            stream_ids = {entry.stream: entry.entry_id}
            event_ms = [entry.ms] * len(entry.events)
            try:
                result = await self._sink_apply(entry.events, stream_ids, entry.ms, event_ms)
            except (SinkUnavailable, *_REDIS_DOWN) as error:
                return done, error
            except Exception as error:
                try:
                    await self._sink_apply([], stream_ids, entry.ms, [])
                except Exception as sink_error:
                    return done, sink_error
                entry.problems.append(f"apply failed: {_error_text(error)}")
                continue
            entry.applied = True
            for index, reason in result.rejected:
                entry.reject(index, reason)
        return len(entries), None

    async def _commit(self, client: aioredis.Redis, entries: list[_Entry]) -> None:
        """Dead-letter what must be, then move the positions past ``entries``."""
        dead = [entry for entry in entries if entry.problems]
        if dead:
            await self._io(self._dead_letter(client, dead))
        for entry in entries:
            stats = self.stats[entry.stream]
            stats.last_id = entry.entry_id
            if entry.applied:
                stats.applied += len(entry.events)
                stats.newest_ts_ms = max(
                    stats.newest_ts_ms, max(map(_TS_MS, entry.events), default=0)
                )

    async def _dead_letter(self, client: aioredis.Redis, dead: list[_Entry]) -> None:
        reasons = [entry.reason() for entry in dead]
        args: list[Any] = [self.config.dlq_maxlen]
        for entry, reason in zip(dead, reasons, strict=True):
            # past 1 MiB the original size goes with it; the entry, if still in its
            # stream, has all of it
            size = str(len(entry.payload)) if len(entry.payload) > DLQ_PAYLOAD_MAX else ""
            args += [entry.stream, entry.entry_id, reason, entry.payload[:DLQ_PAYLOAD_MAX], size]
        script = client.register_script(_DEAD_LETTER)
        written = await script(keys=[self.dlq, f"{self.dlq}:marks"], args=args)
        for entry, reason, new in zip(dead, reasons, written, strict=True):  # once Redis has them
            if not new:
                log.info("%s %s was dead-lettered before (re-read after a restart)",
                         entry.stream, entry.entry_id)  # fmt: skip
                continue
            self.stats[entry.stream].dead_lettered += 1
            log.warning("dead-lettered %s %s: %s", entry.stream, entry.entry_id, reason)

    async def _check_streams(self, client: aioredis.Redis) -> None:
        """Lag and backlog age per stream, gap detection, and recovery from a Redis that
        lost history."""
        for name, stats in self.stats.items():
            if stats.gap:
                continue
            try:
                info = await self._io(client.xinfo_stream(name))
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
                stats.oldest_unapplied_ms = first_id[0] if first_id else 0
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
            stats.oldest_unapplied_ms = 0
            if last > ours:  # counted up to LAG_CAP: reading a deep backlog costs more
                pending: Any = await self._io(
                    client.xrange(name, min=f"({stats.last_id}", max="+", count=LAG_CAP)
                )
                stats.lag_entries = len(pending)
                if pending:
                    stats.oldest_unapplied_ms = _id_ms(_text(pending[0][0]))

    def _gap(self, name: str, detail: str) -> None:
        self.stats[name].gap = detail
        log.error("GAP: %s — NOT_SERVING this data until a full reload", detail)
        self.sink.report_gap(name, detail)
