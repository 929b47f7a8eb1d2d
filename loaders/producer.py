"""The producer side of the change streams, for ERP/WMS connectors and ``pacache publish``.

:class:`Producer` routes each event to its stream (DESIGN §6) and writes them in batches:

=====================================================  ==================================
events                                                 stream
=====================================================  ==================================
ItemUpsert, ProductGroupUpsert, LocationUpsert,        ``<prefix>:master``
RegionUpsert, AccountUpsert
PriceSet/Delete, ContractUpsert/Delete,                ``<prefix>:pricing``
ContractLineSet/Delete
InventorySet/Adjust, InboundSet, HoldPlace/Release     ``<prefix>:inventory``, or
                                                       ``<prefix>:inventory:<n>``
=====================================================  ==================================

Sharding (``inventory_shards=N``): an inventory event goes to shard
``zlib.crc32(sku.encode()) % N`` — CRC-32 is stable across processes, machines and Python
versions (``hash()`` is salted per process). A hold spans SKUs, so a HoldPlace goes, whole,
to every shard that owns one of its SKUs, and a HoldRelease goes to every shard: each
shard's writer then holds its own SKUs, and a writer that reads several shards sees the
same key with the same lines again, which the engine treats as the same hold. Per-shard
order is kept, so a release always follows its hold in the hold's shards.

Batching: consecutive events of one stream share an entry of at most ``batch_size`` events
(a msgpack array from ``loaders.events.encode`` under the field ``e``); event order is
kept within each stream. All entries of one :meth:`Producer.send` go out in one pipelined
round trip (``transaction=False``: no MULTI/EXEC, nothing to roll back, since every event
is idempotent by version). ``maxlen`` trims streams approximately (``XADD MAXLEN ~``); it
is off by default, because the writer detects a stream trimmed past its position as a
gap and asks for a full reload: trim only with a bound far above the writer's lag.

:func:`publish_file` reads JSON Lines (one canonical event per line, ``{"type":
"InventorySet", …}``; a line may also hold an array of events) and sends them batch by
batch; :func:`add_publish_arguments` / :func:`publish_main` are the ``pacache publish``
subcommand. Lines are decoded and validated (``engine.validate``) before their batch is
sent, so a bad line stops the run with its line number; batches before it are already
published, which is harmless to re-run since events are idempotent by version.
"""

from __future__ import annotations

import argparse
import os
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol

import redis

from engine.validate import event_problem
from loaders.events import DecodeError, decode, encode

__all__ = [
    "FIELD",
    "Producer",
    "PublishError",
    "PublishReport",
    "Sent",
    "add_publish_arguments",
    "pack_entries",
    "publish_file",
    "publish_main",
    "shard_of",
    "streams_for",
]

FIELD = "e"  # the entry field the writer reads
DEFAULT_BATCH = 500

_MASTER = frozenset(
    {"ItemUpsert", "ProductGroupUpsert", "LocationUpsert", "RegionUpsert", "AccountUpsert"}
)
_PRICING = frozenset(
    {
        "PriceSet",
        "PriceDelete",
        "ContractUpsert",
        "ContractDelete",
        "ContractLineSet",
        "ContractLineDelete",
    }
)
_INVENTORY = frozenset(
    {"InventorySet", "InventoryAdjust", "InboundSet", "HoldPlace", "HoldRelease"}
)


class RedisClient(Protocol):
    """What :class:`Producer` uses of a redis-py client (a fake can stand in)."""

    def pipeline(self, transaction: bool = True) -> Any: ...


class Sent(NamedTuple):
    """One added entry: its stream, its id and how many events it holds."""

    stream: str
    entry_id: str
    events: int


def shard_of(sku: str, shards: int) -> int:
    """The inventory shard of ``sku``: CRC-32 of its UTF-8 bytes modulo ``shards``."""
    return zlib.crc32(sku.encode()) % shards


def streams_for(event: Any, prefix: str, inventory_shards: int = 0) -> list[str]:
    """The stream(s) ``event`` goes to (several only for holds on sharded streams): the
    routing table above. Raises ValueError for an object that is not a pacache event."""
    kind = type(event).__name__
    if kind in _MASTER:
        return [f"{prefix}:master"]
    if kind in _PRICING:
        return [f"{prefix}:pricing"]
    if kind not in _INVENTORY:
        raise ValueError(f"{kind} is not a pacache event")
    if not inventory_shards:
        return [f"{prefix}:inventory"]
    if kind == "HoldRelease":
        numbers: Iterable[int] = range(inventory_shards)
    elif kind == "HoldPlace":
        numbers = sorted({shard_of(line[0], inventory_shards) for line in event.lines})
    else:
        numbers = [shard_of(event.sku, inventory_shards)]
    return [f"{prefix}:inventory:{n}" for n in numbers]


def pack_entries(
    events: Iterable[Any], route: Callable[[Any], Iterable[str]], batch_size: int = DEFAULT_BATCH
) -> Iterator[tuple[str, list[Any]]]:
    """(stream, events) per entry: each stream's events in order (``route`` names an
    event's streams), consecutive ones sharing an entry of at most ``batch_size``.

    Entries come out in the order they fill up, then the partly filled ones in the order
    their streams were first seen; each stream's entries are in its events' order.
    """
    pending: dict[str, list[Any]] = {}
    for event in events:
        for stream in route(event):
            batch = pending.setdefault(stream, [])
            batch.append(event)
            if len(batch) == batch_size:
                yield stream, pending.pop(stream)
    yield from pending.items()


class Producer:
    """Writes events to the change streams in batched, pipelined XADDs.

    ``redis_client`` is a redis-py ``Redis`` (or anything with ``pipeline``); nothing
    connects until :meth:`send`. ``batch_size`` is the most events per entry;
    ``maxlen`` turns on approximate trimming (off by default).
    """

    def __init__(
        self,
        redis_client: RedisClient,
        prefix: str = "pacache",
        *,
        inventory_shards: int = 0,
        batch_size: int = DEFAULT_BATCH,
        maxlen: int | None = None,
    ) -> None:
        if inventory_shards < 0:
            raise ValueError("inventory_shards must be >= 0")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.redis = redis_client
        self.prefix = prefix
        self.inventory_shards = inventory_shards
        self.batch_size = batch_size
        self.maxlen = maxlen

    def streams_for(self, event: Any) -> list[str]:
        """The stream(s) ``event`` goes to (several only for holds on sharded streams)."""
        return streams_for(event, self.prefix, self.inventory_shards)

    def _entries(self, events: Iterable[Any]) -> Iterator[tuple[str, list[Any]]]:
        return pack_entries(events, self.streams_for, self.batch_size)

    def send(self, events: Iterable[Any]) -> list[Sent]:
        """Add ``events`` (engine dataclasses or wire Structs); one pipelined round trip.

        Returns one :class:`Sent` per entry, in the order the entries were added.
        O(events) encoding plus one round trip.
        """
        entries = list(self._entries(events))
        if not entries:
            return []
        pipe = self.redis.pipeline(transaction=False)
        trim: dict[str, Any] = {}
        if self.maxlen is not None:
            trim = {"maxlen": self.maxlen, "approximate": True}
        for stream, batch in entries:
            pipe.xadd(stream, {FIELD: encode(batch)}, **trim)
        ids = pipe.execute()
        return [
            Sent(stream, _text(entry_id), len(batch))
            for (stream, batch), entry_id in zip(entries, ids, strict=True)
        ]


def _text(entry_id: Any) -> str:
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


# --- JSON Lines ---------------------------------------------------------------------------


class PublishError(ValueError):
    """A JSON Lines input line that is not a valid event; names the line."""


@dataclass
class PublishReport:
    """What :func:`publish_file` sent."""

    events: int = 0
    entries: int = 0
    lines: int = 0
    streams: set[str] = field(default_factory=set)


def _lines(source: str | Path | IO[bytes]) -> Iterator[tuple[int, bytes]]:
    if isinstance(source, (str, Path)):
        if str(source) == "-":
            yield from enumerate(sys.stdin.buffer, start=1)
            return
        with open(source, "rb") as handle:
            yield from enumerate(handle, start=1)
        return
    yield from enumerate(source, start=1)


def _events_of(number: int, line: bytes) -> list[Any]:
    try:
        events = decode(line)
    except DecodeError as error:
        raise PublishError(f"line {number}: {error}") from error
    for event in events:
        problem = event_problem(event)
        if problem is not None:
            raise PublishError(f"line {number}: {type(event).__name__}: {problem}")
    return events


def publish_file(
    source: str | Path | IO[bytes], producer: Producer, *, batch: int = DEFAULT_BATCH
) -> PublishReport:
    """Send the JSON Lines events of ``source`` (a path, ``"-"`` for stdin, or a binary
    file) through ``producer``, ``batch`` events per send. Blank lines are skipped.

    Raises :class:`PublishError` naming the first bad line (earlier batches are sent).
    """
    report = PublishReport()
    pending: list[Any] = []

    def flush() -> None:
        for sent in producer.send(pending):
            report.entries += 1
            report.events += sent.events
            report.streams.add(sent.stream)
        pending.clear()

    for number, line in _lines(source):
        report.lines = number
        if not line.strip():
            continue
        pending += _events_of(number, line)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return report


def add_publish_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``pacache publish`` (environment variables give the defaults)."""
    parser.add_argument(
        "--from", dest="from_", required=True, metavar="FILE.jsonl",
        help="JSON Lines of canonical events ('-' reads stdin)",
    )  # fmt: skip
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("PACACHE_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    parser.add_argument(
        "--stream-prefix", default=os.environ.get("PACACHE_STREAM_PREFIX", "pacache")
    )
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="events per stream entry")
    parser.add_argument(
        "--inventory-shards", type=int,
        default=int(os.environ.get("PACACHE_INVENTORY_SHARDS", "0")),
        help="shard inventory streams by crc32(sku) %% N (0: one stream)",
    )  # fmt: skip
    parser.add_argument(
        "--maxlen", type=int, default=None, help="trim streams to about this many entries"
    )


def publish_main(args: argparse.Namespace) -> int:
    """Run ``pacache publish``: 0 on success, 1 on a bad input line or a Redis error."""
    client = redis.Redis.from_url(args.redis_url)
    producer = Producer(
        client,
        args.stream_prefix,
        inventory_shards=getattr(args, "inventory_shards", 0) or 0,
        batch_size=args.batch,
        maxlen=getattr(args, "maxlen", None),
    )
    try:
        report = publish_file(args.from_, producer, batch=args.batch)
    except (PublishError, OSError, redis.RedisError) as error:
        print(f"pacache publish: {error}", file=sys.stderr)
        return 1
    finally:
        client.close()
    streams = ", ".join(sorted(report.streams))
    print(f"published {report.events} events in {report.entries} entries to {streams or '-'}")
    return 0
