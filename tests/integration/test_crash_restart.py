"""Crash safety: SIGKILL the server, or only its writer process, while changes are in flight;
restart it; lose nothing, apply nothing twice, never answer an older version.

``PACACHE_CRASH_POINTS`` kill points (``make test`` 30, ``make test-crash`` 200) are split
across three variants:

- **redis-streams**: a producer XADDs events to the master, pricing and inventory streams,
  with replays of published entries and poison entries mixed in (undecodable bytes, bad
  JSON, 5,000-deep nesting, truncated msgpack, an unknown type tag, an out-of-range field,
  a good event beside a bad one, an entry without field ``e``);
- **redis-ingest**: the events go through gRPC ``Ingest`` on a server with ``--redis-url``
  (XADDed by the server, answered once applied); poison payloads come back as rejections;
- **wal-ingest**: no Redis, ``--snapshot-dir`` only: Ingest is answered after the
  write-ahead log's fsync.

A kill point is a SIGKILL of the whole server (the supervisor, whose children die with it
through PDEATHSIG — checked: no process of it survives), or, with ``--workers 2``, of only
the writer process (the supervisor restarts it while the workers keep answering). Most
servers run with ``--workers 2``, some with ``--workers 0``. Checkpoints every 50 events or
0.2 s, so kills land mid-checkpoint as well as mid-batch.

Bookkeeping, as a loader would keep it: an Ingest call that returned OK, or an XADD that
returned an id, is *acknowledged*; a call that failed is sent again after the restart
(events are idempotent: sets by version, adjusts by event id). The reference applies every
acknowledged event once to a fresh State (arrival order does not matter to the engine).

Checked:
- after every restart: a Quote with ``min_version`` = the highest version any answer has
  returned (for the streams also ``min_stream_ids`` = the heads) equals the reference for
  every SKU x location — available stock and price; adjusts make a lost or a double apply
  visible;
- every answer (Ingest, Quote, and Freshness polled from two client threads up to the
  kill) has an ``as_of.version`` at least the highest of the answers completed before it
  was sent: versions never go back, across server kills and writer restarts;
- after the last restart: on-hand, allocated and both price tiers of every SKU x location
  in an Admin snapshot of the served state equal the reference; each poison entry is in
  ``<prefix>:dlq`` exactly once (matched by stream and id) and nothing else is; each poison
  Ingest payload was reported as a rejection at its position.
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import msgspec
import numpy as np
import pytest
import redis

from engine import events as ev
from engine import snapshot
from engine.deltas import apply_batch
from engine.quote import quote
from engine.state import State
from loaders.events import encode
from loaders.stream_writer import FIELD
from server.client import Client
from server.spawn import Spawned, spawn
from tests.redis_process import RedisProcess

PREFIX = "crash"
SKUS = [f"S{i:02d}" for i in range(30)]
LOCATIONS = ["DAL", "ATL", "RNO"]
STREAMS = {kind: f"{PREFIX}:{kind}" for kind in ("master", "pricing", "inventory")}
VARIANTS = ("redis-streams", "redis-ingest", "wal-ingest")
ACCEPTABLE_FAILURES = {"UNAVAILABLE", "INTERNAL (transport)"}  # an in-flight call at a kill
# grpc's own words for an HTTP/2 stream the killed peer reset: the client library says
# INTERNAL for it, but no pacache code answered it (the server's INTERNAL says "internal")
TRANSPORT_RESET = ("RST_STREAM", "Stream removed", "Socket closed", "Connection reset")
# a connection of the client's own (not grpc's process-wide pool), so the client threads
# spread over both workers
OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)


def _points(variant: str) -> int:
    """This variant's share of ``PACACHE_CRASH_POINTS``."""
    total = int(os.environ.get("PACACHE_CRASH_POINTS", "30"))
    index = VARIANTS.index(variant)
    return total // len(VARIANTS) + (1 if index < total % len(VARIANTS) else 0)


# -- events ------------------------------------------------------------------------------


def _master() -> list[Any]:
    return [
        *[ev.LocationUpsert(location=loc, version=1) for loc in LOCATIONS],
        *[ev.ItemUpsert(sku=sku, version=1, uoms={"BX": 12}) for sku in SKUS],
        ev.AccountUpsert(account="ACME", version=1),
    ]


def _change(rng: random.Random, version: int) -> Any:
    sku, loc = rng.choice(SKUS), rng.choice(LOCATIONS)
    roll = rng.random()
    if roll < 0.3:
        on_hand, allocated = rng.randrange(100, 500), rng.randrange(40)
        return ev.InventorySet(sku=sku, location=loc, version=version, on_hand=on_hand,
                               allocated=allocated)  # fmt: skip
    if roll < 0.8:  # relative: applied twice or lost, the numbers show it
        return ev.InventoryAdjust(sku=sku, location=loc, version=version, event_id=f"a{version}",
                                  on_hand_delta=rng.randrange(-9, 30),
                                  allocated_delta=rng.randrange(0, 3))  # fmt: skip
    tiers = ((0, rng.randrange(1, 10**7)), (24, rng.randrange(1, 10**7)))
    return ev.PriceSet(price_list="LIST", currency="USD", sku=sku, version=version, tiers=tiers)


def _out_of_range(kind: str, version: int) -> Any:
    """An event that decodes but the engine refuses (a field past its range)."""
    if kind == "master":
        return ev.ItemUpsert(sku="S00", version=version, lead_time_days=10**6)
    if kind == "pricing":
        return ev.PriceSet(price_list="LIST", currency="USD", sku="S00", version=version,
                           tiers=((0, 10**15),))  # fmt: skip
    return ev.InventorySet(sku="S00", location="DAL", version=version, on_hand=-1)


POISON_KINDS = ("bytes", "bad-json", "deep", "truncated", "unknown-type", "out-of-range",
                "mixed", "no-field-e")  # fmt: skip


@dataclass
class Poison:
    """A bad stream entry or Ingest message; ``good`` holds its valid events (``mixed``)."""

    kind: str
    payload: bytes | None  # None: an entry without field ``e``
    good: list[Any]
    members: int  # positions it takes in an Ingest stream
    rejected: list[int]  # of them, the ones refused


def _poison(kind: str, stream_kind: str, rng: random.Random, versions: Iterator[int]) -> Poison:
    if kind == "bytes":
        return Poison(kind, b"\xc1\xff\x00 not an event \x9f", [], 1, [0])
    if kind == "bad-json":
        return Poison(kind, b"{bad json", [], 1, [0])
    if kind == "deep":
        return Poison(kind, b"[" * 5000 + b"]" * 5000, [], 1, [0])
    if kind == "truncated":
        whole = encode([_change(rng, next(versions)), _change(rng, next(versions))])
        return Poison(kind, whole[: len(whole) // 2], [], 1, [0])
    if kind == "unknown-type":
        payload = msgspec.msgpack.encode({"type": "InventoryTeleport", "sku": "S01", "version": 1})
        return Poison(kind, payload, [], 1, [0])
    if kind == "out-of-range":
        return Poison(kind, encode([_out_of_range(stream_kind, next(versions))]), [], 1, [0])
    if kind == "mixed":
        good = _change(rng, next(versions))
        bad = _out_of_range("inventory", next(versions))
        return Poison(kind, encode([good, bad]), [good], 2, [1])
    assert kind == "no-field-e"
    return Poison(kind, None, [], 0, [])


def _stream_of(event: Any) -> str:
    return STREAMS["pricing" if type(event).__name__ == "PriceSet" else "inventory"]


# -- bookkeeping ---------------------------------------------------------------------------


@dataclass
class Call:
    """One Ingest call: its messages, the valid events in them, the positions refused."""

    payloads: list[bytes]
    events: list[Any]
    rejected: list[int]
    poison: int
    failures: int = 0


@dataclass
class Book:
    """What the clients sent, what was acknowledged, and every version they were answered."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    next_version: int = 2  # the master data is version 1
    fresh: list[Any] = field(default_factory=list)  # acknowledged, not in the reference yet
    history: list[Any] = field(default_factory=list)  # every acknowledged event
    pending: collections.deque[Call] = field(default_factory=collections.deque)
    highest: int = 0  # the highest as_of.version of a completed answer
    answers: int = 0
    violations: list[str] = field(default_factory=list)
    mismatched_rejections: list[str] = field(default_factory=list)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    failure_details: list[str] = field(default_factory=list)  # of unexpected codes, the first
    acked_calls: int = 0
    acked_events: int = 0
    resent_calls: int = 0
    poison_messages: int = 0
    poison_entries: dict[tuple[str, str], str] = field(default_factory=dict)  # → kind
    valid_entries: set[tuple[str, str]] = field(default_factory=set)
    replays: int = 0
    # version gap at each kill: (kind, highest answered before, first answered above it)
    watch: tuple[str, int] | None = None
    gaps: list[tuple[str, int, int]] = field(default_factory=list)

    def versions(self, count: int) -> Iterator[int]:
        with self.lock:
            start = self.next_version
            self.next_version += count
        return iter(range(start, start + count))

    def floor(self) -> int:
        with self.lock:
            return self.highest

    def answered(self, version: int, floor: int, what: str) -> None:
        """An answer of ``version`` to a request sent when ``floor`` was the highest."""
        with self.lock:
            self.answers += 1
            if version < floor:
                self.violations.append(f"{what} answered version {version} < {floor} seen before")
            if self.watch is not None and version > self.watch[1]:
                self.gaps.append((self.watch[0], self.watch[1], version))
                self.watch = None
            self.highest = max(self.highest, version)

    def killed(self, kind: str, floor: int | None = None) -> None:
        with self.lock:
            self.watch = (kind, self.highest if floor is None else max(floor, self.highest))

    def acknowledge(self, events: list[Any]) -> None:
        with self.lock:
            self.fresh.extend(events)
            self.history.extend(events)
            self.acked_events += len(events)

    def take_pending(self) -> Call | None:
        with self.lock:
            return self.pending.popleft() if self.pending else None

    def failed(self, call: Call, error: grpc.RpcError) -> None:
        with self.lock:
            call.failures += 1
            self.pending.appendleft(call)
            code = error.code().name
            if code == "INTERNAL" and any(w in (error.details() or "") for w in TRANSPORT_RESET):
                code = "INTERNAL (transport)"
            self.failures[code] += 1
            if code not in ACCEPTABLE_FAILURES and len(self.failure_details) < 10:
                self.failure_details.append(f"{code}: {error.details()}")

    def call_answered(self, call: Call, response: Any, floor: int) -> None:
        got = sorted(r.index for r in response.rejections)
        with self.lock:
            if got != call.rejected:
                reasons = [r.reason for r in response.rejections]
                self.mismatched_rejections.append(f"{call.rejected} expected, {got}: {reasons}")
            self.acked_calls += 1
            self.resent_calls += call.failures > 0
            self.poison_messages += call.poison
        self.answered(response.as_of.version, floor, "Ingest")
        self.acknowledge(call.events)


def _make_call(rng: random.Random, book: Book) -> Call:
    payloads: list[bytes] = []
    events: list[Any] = []
    rejected: list[int] = []
    position = poison = 0
    for _ in range(rng.randrange(1, 4)):
        if rng.random() < 0.08:
            kind = rng.choice([k for k in POISON_KINDS if k != "no-field-e"])
            bad = _poison(kind, rng.choice(list(STREAMS)), rng, book.versions(2))
            assert bad.payload is not None
            payloads.append(bad.payload)
            events += bad.good
            rejected += [position + i for i in bad.rejected]
            position += bad.members
            poison += 1
            continue
        batch = [_change(rng, v) for v in book.versions(rng.randrange(1, 8))]
        payloads.append(encode(batch))
        events += batch
        position += len(batch)
    return Call(payloads, events, rejected, poison)


# -- client threads ------------------------------------------------------------------------


class Loop(threading.Thread):
    """A client thread repeating ``step`` until stopped."""

    def __init__(self, name: str, step: Any, pause_s: float, close: Any) -> None:
        super().__init__(name=name, daemon=True)
        self.step, self.pause_s, self.close = step, pause_s, close
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.step()
                self.stopping.wait(self.pause_s)
        except BaseException as error:  # surfaced by stop()
            self.error = error

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        assert not self.is_alive(), f"{self.name} did not stop"
        self.close()
        if self.error is not None:
            raise self.error


def _sender(target: str, book: Book, seed: int) -> Loop:
    """Ingest calls, one after the other; a failed one goes back to be sent again."""
    rng = random.Random(seed)
    client = Client(target, timeout=15, options=OWN_CONNECTION)

    def step() -> None:
        call = book.take_pending() or _make_call(rng, book)
        floor = book.floor()
        try:
            response = client.ingest(call.payloads)
        except grpc.RpcError as error:
            book.failed(call, error)
            return
        book.call_answered(call, response, floor)

    return Loop("ingest", step, 0.004, client.close)


def _poller(target: str, book: Book) -> Loop:
    """Freshness, continuously: the versions answered up to the moment of a kill."""
    client = Client(target, timeout=2, options=OWN_CONNECTION)

    def step() -> None:
        floor = book.floor()
        try:
            response = client.freshness()
        except grpc.RpcError:
            return
        book.answered(response.as_of.version, floor, "Freshness")

    return Loop("poll", step, 0.005, client.close)


def _producer(url: str, book: Book, seed: int) -> Loop:
    """XADDs to the streams, as a loader would: changes, replays, poison entries."""
    rng = random.Random(seed)
    client = redis.Redis.from_url(url)
    published: list[tuple[str, bytes]] = []

    def step() -> None:
        batch = [_change(rng, v) for v in book.versions(rng.randrange(5, 20))]
        entries: list[tuple[str, dict[bytes, bytes], Poison | None, list[Any]]] = []
        for start in range(0, len(batch), 5):
            by_stream: dict[str, list[Any]] = {}
            for event in batch[start : start + 5]:
                by_stream.setdefault(_stream_of(event), []).append(event)
            entries += [(s, {FIELD: encode(part)}, None, part) for s, part in by_stream.items()]
        if rng.random() < 0.35:
            stream_kind = rng.choice(list(STREAMS))
            bad = _poison(rng.choice(POISON_KINDS), stream_kind, rng, book.versions(2))
            fields = {FIELD: bad.payload} if bad.payload is not None else {b"x": b"no e here"}
            entries.insert(rng.randrange(len(entries) + 1),
                           (STREAMS[stream_kind], fields, bad, bad.good))  # fmt: skip
        if published and rng.random() < 0.15:
            for stream, payload in rng.sample(published, min(3, len(published))):
                entries.insert(
                    rng.randrange(len(entries) + 1), (stream, {FIELD: payload}, None, [])
                )
                book.replays += 1
        pipe = client.pipeline(transaction=False)
        for stream, fields, _, _ in entries:
            pipe.xadd(stream, fields)  # type: ignore[arg-type]
        ids = pipe.execute()
        for (stream, fields, bad, events), raw_id in zip(entries, ids, strict=True):
            entry = (stream, raw_id.decode())
            if bad is not None:
                book.poison_entries[entry] = bad.kind
            else:
                book.valid_entries.add(entry)
                if events:
                    published.append((stream, fields[FIELD]))
            book.acknowledge(events)

    return Loop("produce", step, 0.01, client.close)


# -- processes -----------------------------------------------------------------------------


def _processes_with(marker: bytes) -> list[int]:
    """Live processes whose command line holds ``marker`` (a fork keeps its parent's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


@dataclass
class Harness:
    """Servers of one variant, started on one snapshot directory, killed on demand."""

    variant: str
    root: Path
    shm: Path
    log: Any
    redis_url: str | None
    marker: bytes = b""
    children_killed: int = 0
    kills: collections.Counter[str] = field(default_factory=collections.Counter)
    slowest_exit_s: float = 0.0
    late: set[int] = field(default_factory=set)  # alive 0.5 s after the supervisor died
    late_roles: collections.Counter[str] = field(default_factory=collections.Counter)

    def __post_init__(self) -> None:
        self.marker = b"\0" + str(self.root).encode() + b"\0"

    def start(self, workers: int) -> Spawned:
        flags = ["--snapshot", str(self.root), "--snapshot-dir", str(self.root), "--port", "0",
                 "--checkpoint-seconds", "0.2", "--checkpoint-events", "50", "--grace", "1",
                 "--workers", str(workers), "--writer-restarts", "100000",
                 "--shm-dir", str(self.shm)]  # fmt: skip
        if self.redis_url:
            flags += ["--redis-url", self.redis_url, "--stream-prefix", PREFIX]
        return spawn(flags, stderr=self.log.fileno())

    def kill_server(self, server: Spawned, workers: int) -> None:
        """SIGKILL the supervisor; every process of the server must be gone soon after
        (its children through PDEATHSIG; a checkpoint child, a grandchild, when done)."""
        supervisor = server.process.pid
        ours = {}
        for pid in _processes_with(self.marker):
            with contextlib.suppress(OSError):
                ours[pid] = _parent_of(pid)
        assert supervisor in ours
        server.stop(10, kill=True)
        started = time.monotonic()
        while survivors := _processes_with(self.marker):
            elapsed = time.monotonic() - started
            assert elapsed < 10, f"still running 10 s after SIGKILL: {survivors}"
            if elapsed > 0.5:
                self.late.update(survivors)
            time.sleep(0.01)
        self.slowest_exit_s = max(self.slowest_exit_s, time.monotonic() - started)
        self.children_killed += sum(parent == supervisor for parent in ours.values())
        self.late_roles.update("child" if ours.get(pid) == supervisor else "grandchild"
                               for pid in self.late if pid in ours)  # fmt: skip
        self.late.clear()
        self.kills[f"server (--workers {workers})"] += 1

    def writer_pid(self, server: Spawned) -> int:
        """The running writer, from the header of the newest state (its pid is there)."""
        base = self.shm / f"pacache-{server.process.pid}"
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError, ValueError, IndexError):
                newest = max(base.glob("state-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
                pid = int(np.fromfile(newest / "header", dtype=np.int64, count=3)[2])
                if pid > 0 and _alive(pid) and _parent_of(pid) == server.process.pid:
                    return pid
            assert time.monotonic() < deadline, "no writer process found"
            time.sleep(0.01)

    def kill_writer(self, server: Spawned) -> None:
        pid = self.writer_pid(server)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid):  # dead once a zombie, or reaped by the supervisor
            assert time.monotonic() < deadline, f"writer {pid} outlived SIGKILL"
            time.sleep(0.005)
        self.kills["writer (--workers 2)"] += 1

    def stop_everything(self, server: Spawned | None) -> None:
        if server is not None and server.process.poll() is None:
            server.stop(10, kill=True)
        for pid in _processes_with(self.marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _schedule(rng: random.Random, points: int) -> list[tuple[int, list[str]]]:
    """Server runs as (workers, kills): writer kills (``--workers 2`` only), then a server
    kill ending the run; ``points`` kills in all. Every kind comes first (a writer kill,
    server kills with 2 workers and with none), then runs drawn at random."""
    runs: list[tuple[int, list[str]]] = []
    left = points
    for workers, kills in ((2, ["writer", "server"]), (0, ["server"])):
        if left >= len(kills):
            runs.append((workers, kills))
            left -= len(kills)
    while left:
        writer_kills = min(rng.choice([0, 0, 1, 2]), left - 1)
        workers = 0 if writer_kills == 0 and rng.random() < 0.3 else 2
        runs.append((workers, ["writer"] * writer_kills + ["server"]))
        left -= writer_kills + 1
    return runs


# -- checks --------------------------------------------------------------------------------


def _heads(client: redis.Redis) -> dict[str, str]:
    """The last entry id of each stream that exists."""
    heads = {}
    for name in STREAMS.values():
        with contextlib.suppress(redis.ResponseError):  # not created yet
            heads[name] = client.xinfo_stream(name)["last-generated-id"].decode()  # type: ignore[index]
    return heads


def _resend(target: str, book: Book) -> None:
    """Send the calls that failed at the kill again, until each is acknowledged."""
    deadline = time.monotonic() + 60
    with Client(target, timeout=15) as client:
        while (call := book.take_pending()) is not None:
            floor = book.floor()
            try:
                response = client.ingest(call.payloads)
            except grpc.RpcError as error:
                book.failed(call, error)
                assert time.monotonic() < deadline, f"not acknowledged again: {error}"
                time.sleep(0.05)
                continue
            book.call_answered(call, response, floor)


def _expected(state: State, qty: int) -> tuple[list[int], list[int]]:
    found = quote(state, account="ACME", skus=SKUS, qty=np.full(len(SKUS), qty, np.int64),
                  pricing_date=20_000, locations=LOCATIONS)  # fmt: skip
    assert found.shown_available is not None and found.prices is not None
    return found.shown_available.ravel().tolist(), found.prices.unit_price_micros.tolist()


def _check_served(
    target: str, book: Book, reference: State, heads: dict[str, str] | None = None
) -> None:
    """A Quote waiting for the highest version seen (and the stream heads) has every
    acknowledged event, once: it equals the reference for every SKU x location."""
    with book.lock:
        apply_batch(reference, book.fresh)
        book.fresh.clear()
    floor = book.floor()
    with Client(target, timeout=60) as client:
        response, _ = client.quote("ACME", [(sku, 1) for sku in SKUS], locations=LOCATIONS,
                                   min_version=floor, min_stream_ids=heads)  # fmt: skip
    book.answered(response.as_of.version, floor, "Quote(min_version)")
    available, prices = _expected(reference, 1)
    cells = [(sku, loc) for sku in SKUS for loc in LOCATIONS]
    assert [(line.sku, a.location) for line in response.lines
            for a in line.availability.locations] == cells  # fmt: skip
    served = [a.available for line in response.lines for a in line.availability.locations]
    wrong = [(c, s, e) for c, s, e in zip(cells, served, available, strict=True) if s != e]
    if wrong:
        raise AssertionError(
            f"available differs at version {response.as_of.version}: {wrong[:10]}\n"
            + _explain(target, book, reference, [cell for cell, _, _ in wrong[:3]])
        )
    assert [line.price.unit_price_micros for line in response.lines] == prices


def _explain(target: str, book: Book, reference: State, cells: list[tuple[str, str]]) -> str:
    """On-hand/allocated served (from an Admin snapshot) and expected, with the cell's
    acknowledged events: which one is missing or counted twice."""
    with Client(target, timeout=60) as client:
        state = snapshot.load(client.snapshot().path)
    served, expected = _cells(state), _cells(reference)
    lines = []
    for cell in cells:
        events = [
            e for e in book.history if (getattr(e, "sku", ""), getattr(e, "location", "")) == cell
        ]
        s, lc = state.skus.get(cell[0]), state.locations.get(cell[1])
        log = state.adjust_log
        rows = np.nonzero((log["sku"][: log.n] == s) & (log["location"][: log.n] == lc))[0]
        logged = [(int(log["version"][r]), int(log["on_hand"][r]), bool(log["live"][r]))
                  for r in rows]  # fmt: skip
        never = [e.version for e in events
                 if hasattr(e, "event_id") and e.event_id not in state.adjust_ids]  # fmt: skip
        lines.append(
            f"{cell}: on_hand/allocated {served[cell]} served, {expected[cell]} expected; "
            f"served set_version {int(state.inventory.set_version[s, lc])}, adjust log "
            f"(version, on_hand, live) {logged}; events {[_brief(e) for e in events]}; "
            f"adjusts whose id the served state does not hold {never}"
        )
    return "\n".join(lines)


def _brief(event: Any) -> str:
    kind = type(event).__name__
    if kind == "InventorySet":
        return f"set v{event.version} {event.on_hand}/{event.allocated}"
    if kind == "InventoryAdjust":
        return f"adj v{event.version} {event.on_hand_delta:+d}/{event.allocated_delta:+d}"
    return f"{kind} v{event.version}"


def _cells(state: State) -> dict[tuple[str, str], tuple[int, int]]:
    out = {}
    for sku in SKUS:
        for loc in LOCATIONS:
            s, lc = state.skus.get(sku), state.locations.get(loc)
            assert s >= 0 and lc >= 0, (sku, loc)
            inventory = state.inventory
            out[sku, loc] = (int(inventory.on_hand[s, lc]), int(inventory.allocated[s, lc]))
    return out


def _check_dead_letters(client: redis.Redis, book: Book) -> int:
    """Every poison entry in the DLQ exactly once, nothing else; returns the records."""
    records = client.xrange(f"{PREFIX}:dlq")
    seen = collections.Counter(
        (fields[b"stream"].decode(), fields[b"id"].decode())  # type: ignore[index]
        for _, fields in records  # type: ignore[union-attr]
    )
    twice = {entry: n for entry, n in seen.items() if n > 1}
    missing = set(book.poison_entries) - set(seen)
    valid = set(seen) & book.valid_entries
    assert not twice, f"dead-lettered more than once: {sorted(twice.items())[:10]}"
    assert not missing, f"poison entries not dead-lettered: {sorted(missing)[:10]}"
    assert not valid, f"valid entries dead-lettered: {sorted(valid)[:10]}"
    assert set(seen) == set(book.poison_entries)
    return len(records)  # type: ignore[arg-type]


# -- the test ------------------------------------------------------------------------------


@pytest.fixture
def shm_dir(tmp_path: Path) -> Iterator[Path]:
    """The servers' shared memory: a directory of this test's own on the tmpfs."""
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else tmp_path
    path = base / f"pacache-crash-test-{os.getpid()}-{time.monotonic_ns()}"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(3000)
@pytest.mark.parametrize("variant", VARIANTS)
def test_sigkill_of_server_or_writer_while_changes_are_in_flight_loses_doubles_and_rewinds_nothing(
    variant: str, tmp_path: Path, shm_dir: Path
) -> None:
    points = _points(variant)
    rng = random.Random(f"crash-{variant}")
    runs = _schedule(rng, points)
    redis_proc = RedisProcess(tmp_path / "redis").start() if variant != "wal-ingest" else None
    rclient = redis_proc.client() if redis_proc is not None else None
    root = tmp_path / "snapshots"
    snapshot.write(State(), root)
    book = Book()
    reference = State()
    log = (tmp_path / "server.log").open("ab")
    harness = Harness(variant, root, shm_dir, log, redis_proc.url if redis_proc else None)
    server: Spawned | None = None
    started = time.monotonic()
    try:
        server = harness.start(runs[0][0] if runs else 2)
        if rclient is not None and variant == "redis-streams":
            entry_id = rclient.xadd(STREAMS["master"], {FIELD: encode(_master())})
            book.valid_entries.add((STREAMS["master"], entry_id.decode()))  # type: ignore[union-attr]
            book.acknowledge(_master())
        else:
            book.pending.append(Call([encode(_master())], _master(), [], 0))
        for index, (workers, kills) in enumerate(runs):
            pollers = [_poller(server.target, book) for _ in range(2)]
            for poller in pollers:
                poller.start()
            for kind in kills:
                # the server is up (fresh, or its writer restarted): up to date, and right?
                _resend(server.target, book)
                heads = _heads(rclient) if variant == "redis-streams" else None  # type: ignore[arg-type]
                _check_served(server.target, book, reference, heads)
                if variant == "redis-streams":
                    assert redis_proc is not None
                    load = [_producer(redis_proc.url, book, rng.randrange(1 << 30))]
                else:
                    load = [_sender(server.target, book, rng.randrange(1 << 30)) for _ in range(2)]
                for thread in load:
                    thread.start()
                time.sleep(rng.uniform(0.15, 0.7))
                if kind == "writer":
                    harness.kill_writer(server)
                    # read at once: a restarted writer takes far longer to load and catch up
                    frozen = _frozen_version(server.target)
                    for thread in load:
                        thread.stop()
                    book.killed("writer", frozen)
                    _await_new_writer(server.target, frozen)
                    continue
                harness.kill_server(server, workers)
                for thread in [*load, *pollers]:
                    thread.stop()
                book.killed(f"server-w{workers}")  # what the old server answered is in
                next_workers = runs[index + 1][0] if index + 1 < len(runs) else 2
                server = harness.start(next_workers)
        # the last restart: everything acknowledged is there, once
        _resend(server.target, book)
        heads = _heads(rclient) if variant == "redis-streams" else None  # type: ignore[arg-type]
        _check_served(server.target, book, reference, heads)
        with Client(server.target, timeout=60) as client:
            path = client.snapshot().path
        assert server.stop(30) == 0
        served = snapshot.load(path)
        dead_letters = _check_dead_letters(rclient, book) if rclient is not None else 0
    finally:
        harness.stop_everything(server)
        log.close()
        if redis_proc is not None:
            redis_proc.stop()

    assert _cells(served) == _cells(reference)
    for qty in (1, 24):  # both price tiers
        assert _expected(served, qty)[1] == _expected(reference, qty)[1]
    assert not book.violations, f"versions went back: {book.violations[:10]}"
    assert not book.mismatched_rejections, book.mismatched_rejections[:10]
    unexpected = set(book.failures) - ACCEPTABLE_FAILURES
    assert not unexpected, f"calls failed with {dict(book.failures)}: {book.failure_details}"
    if variant == "redis-ingest":
        assert dead_letters == 0  # Ingest refuses poison in its answer; nothing reaches Redis
    gaps = collections.defaultdict(list)
    for kind, before, after in book.gaps:
        gaps[kind].append(after - before)
    print(
        f"\n[{variant}] {points} kill points {dict(harness.kills)} in "
        f"{time.monotonic() - started:.1f}s; {harness.children_killed} children died with "
        f"their supervisor (all gone within {harness.slowest_exit_s:.2f}s; alive after 0.5 s: "
        f"{dict(harness.late_roles)}); "
        f"{book.acked_events} events acknowledged in {book.acked_calls} Ingest calls "
        f"({book.resent_calls} sent again after a failure, failures {dict(book.failures)}), "
        f"{book.poison_messages} poison Ingest messages; "
        f"{len(book.valid_entries)} valid entries + {book.replays} replays, "
        f"{len(book.poison_entries)} poison entries "
        f"{dict(collections.Counter(book.poison_entries.values()))}, {dead_letters} DLQ records; "
        f"{book.answers} answers, highest version {book.highest}; version gaps at kills "
        + "; ".join(f"{k}: min {min(v)} max {max(v)} ({len(v)})" for k, v in sorted(gaps.items()))
    )


def _frozen_version(target: str) -> int:
    """The version the workers serve right after their writer died (its last published)."""
    with Client(target, timeout=5) as client:
        return int(client.freshness().as_of.version)


def _await_new_writer(target: str, frozen: int) -> None:
    """Until the workers answer from the restarted writer's state (checked next)."""
    deadline = time.monotonic() + 60
    with Client(target, timeout=5) as client:
        while client.freshness().as_of.version <= frozen:
            assert time.monotonic() < deadline, "the restarted writer never took over"
            time.sleep(0.02)
