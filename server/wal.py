"""The write-ahead log: changes accepted without Redis are durable before they are answered.

Without ``--redis-url`` (the embedded default) nothing outside this process keeps a
change, so every batch the API changes the state with — an Ingest message, a Reserve, a
Release — is appended here, fsynced, and only then applied and acknowledged (DESIGN §8:
an acknowledgement means durable). A restart loads the newest checkpoint and applies
again every record after the checkpoint's log position (``State.wal_lsn``); a checkpoint
lets the log drop the segments it covers.

Layout: ``<dir>/wal-<first lsn>.log`` segments; a record is a 16-byte header (body
length, CRC-32 of lsn and body, lsn) and a msgpack body (the batch clock and the batch's
events, encoded as on a stream). LSNs (log sequence numbers) start at 1 and go up by one
per record. A crash can leave a torn last record: it fails its length or CRC check, was
never acknowledged, and is cut off when the log is opened.

Group commit: records appended while a write + fsync is under way wait for the next one,
so one fsync covers every caller that arrived meanwhile (Ingest from many loaders costs
one fsync per group, not per message). Records are applied strictly in LSN order, by the
task that fsynced them, so the state after a replay is the state that was answered.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from server.errors import WalBroken

__all__ = ["Record", "WalBroken", "WriteAheadLog"]

log = logging.getLogger("pacache.wal")
T = TypeVar("T")
_HEADER = struct.Struct("<IIQ")  # body length, crc32(lsn + body), lsn
_LSN = struct.Struct("<Q")
MAX_RECORD = 1 << 30
SEGMENT_BYTES = 64 << 20  # a new segment past this size (and at every checkpoint)
_encoder = msgspec.msgpack.Encoder()


class _Body(msgspec.Struct, array_like=True):
    clock_ms: int
    events: bytes  # loaders.events.encode of the batch
    voids: int = 0  # > 0: this record cancels record ``voids`` (its apply failed)


_decoder = msgspec.msgpack.Decoder(_Body)


@dataclass(frozen=True, slots=True)
class Record:
    """One logged batch (``voids`` > 0: a marker cancelling that earlier record)."""

    lsn: int
    clock_ms: int
    events: bytes
    voids: int = 0


def _segment_name(first_lsn: int) -> str:
    return f"wal-{first_lsn:020d}.log"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_segment(path: Path) -> tuple[list[Record], int]:
    """The whole records of one segment and the byte offset after the last one."""
    data = path.read_bytes()
    records: list[Record] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, crc, lsn = _HEADER.unpack_from(data, offset)
        end = offset + _HEADER.size + length
        if length > MAX_RECORD or end > len(data):
            break
        body = data[offset + _HEADER.size : end]
        if zlib.crc32(body, zlib.crc32(_LSN.pack(lsn))) != crc:
            break
        try:
            decoded = _decoder.decode(body)
        except msgspec.DecodeError:
            break
        records.append(Record(lsn, decoded.clock_ms, decoded.events, decoded.voids))
        offset = end
    return records, offset


@dataclass
class _Pending:
    lsn: int
    data: bytes
    apply: Callable[[int], Any]
    done: asyncio.Future[Any]


@dataclass
class WriteAheadLog:
    """An append-only, fsynced log of the batches the API applied (see the module doc)."""

    directory: Path
    segment_bytes: int = SEGMENT_BYTES
    last_lsn: int = 0
    _segments: list[tuple[int, Path]] = field(default_factory=list)  # (first lsn, path)
    _file: Any = None
    _pending: list[_Pending] = field(default_factory=list)
    _flusher: asyncio.Task[None] | None = None
    _broken: str = ""
    # groups are written and fsynced on this thread; _inflight is the one under way
    _io: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="wal")
    )
    _inflight: concurrent.futures.Future[None] | None = None
    _rotate_after: bool = False  # rotate() was called while a group was being written

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.directory.glob("wal-*.log")):
            first = int(path.stem.removeprefix("wal-"))
            self._segments.append((first, path))
        if self._segments:
            last_path = self._segments[-1][1]
            records, good = _read_segment(last_path)
            if good < last_path.stat().st_size:
                log.warning("wal: cutting a torn record off %s at byte %d (never acknowledged)",
                            last_path.name, good)  # fmt: skip
                with last_path.open("r+b") as handle:
                    handle.truncate(good)
                    os.fsync(handle.fileno())
            # an empty last segment (rotated at a checkpoint) still says where LSNs were
            self.last_lsn = records[-1].lsn if records else self._segments[-1][0] - 1
        self._open_segment(new=not self._segments)

    # -- reading --------------------------------------------------------------------------

    def records(self, after_lsn: int = 0) -> Iterator[Record]:
        """Every batch record with an LSN above ``after_lsn``, in order (for a replay),
        leaving out the records a later marker voided (their apply failed, so the state
        that was served never had them)."""
        everything = [r for _, path in self._segments for r in _read_segment(path)[0]]
        voided = {r.voids for r in everything if r.voids}
        for record in everything:
            if record.lsn > after_lsn and not record.voids and record.lsn not in voided:
                yield record

    @property
    def first_lsn(self) -> int:
        """The oldest LSN the log still holds (checkpoints let it drop the ones before):
        a snapshot covering the log up to ``first_lsn - 1`` or later can be brought up to
        date from it; an older one (a bulk build, say) would miss acknowledged changes."""
        return self._segments[0][0] if self._segments else self.last_lsn + 1

    def advance_past(self, lsn: int) -> None:
        """Number the next record above ``lsn``: the state was loaded from a checkpoint
        that covers records up to ``lsn``, but the log holds fewer (its segments were
        removed by hand). Reusing those LSNs would make a replay from that checkpoint skip
        the new records as already covered."""
        if lsn > self.last_lsn:
            log.warning("wal: the log ends at %d but the state covers up to %d; "
                        "numbering new records from %d", self.last_lsn, lsn, lsn + 1)  # fmt: skip
            self.last_lsn = lsn
            self._open_segment(new=True)

    # -- writing --------------------------------------------------------------------------

    def _open_segment(self, *, new: bool) -> None:
        if self._file is not None:
            self._file.close()
        if new:
            first = self.last_lsn + 1
            path = self.directory / _segment_name(first)
            self._segments.append((first, path))
            self._file = path.open("ab")
            _fsync_dir(self.directory)
        else:
            self._file = self._segments[-1][1].open("ab")

    async def commit(
        self,
        clock_ms: int,
        events: bytes,
        apply: Callable[[int], T],
        lock: AbstractAsyncContextManager[Any] | None = None,
    ) -> T:
        """Log a batch, fsync it (with whatever else arrived meanwhile), then call
        ``apply(lsn)`` — in LSN order, holding ``lock`` — and return what it returned."""
        if self._broken:
            raise WalBroken(self._broken)
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._enqueue(_Body(clock_ms, events), apply, done, lock)
        return await done

    def _enqueue(
        self,
        body: _Body,
        apply: Callable[[int], Any],
        done: asyncio.Future[Any],
        lock: AbstractAsyncContextManager[Any] | None,
    ) -> None:
        self.last_lsn += 1
        lsn = self.last_lsn
        data = _encoder.encode(body)
        header = _HEADER.pack(len(data), zlib.crc32(data, zlib.crc32(_LSN.pack(lsn))), lsn)
        self._pending.append(_Pending(lsn, header + data, apply, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(lock))

    async def _flush(self, lock: AbstractAsyncContextManager[Any] | None) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            self._inflight = self._io.submit(self._write, b"".join(p.data for p in group))
            try:
                # shielded: a flusher cancelled at shutdown still lets the write and its
                # fsync finish (close() waits for it), so a void marker is never lost
                await asyncio.shield(asyncio.wrap_future(self._inflight))
            except Exception as error:  # OSError, and anything else: nobody waits for ever
                self._broken = f"wal: writing {self.directory} failed: {error}"
                log.error("%s; nothing more is acknowledged until a restart", self._broken)
                for pending in group + self._pending:
                    pending.done.set_exception(WalBroken(self._broken))
                self._pending = []
                return
            if self._rotate_after or self._file.tell() >= self.segment_bytes:
                self._rotate_after = False
                self._open_segment(new=True)
            failed = await self._apply_in_order(group, lock)
            for lsn in failed:  # logged but never applied: a replay must skip it too
                marker: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                self._enqueue(_Body(0, b"", lsn), lambda _: None, marker, lock)

    def _writing(self) -> bool:
        return self._inflight is not None and not self._inflight.done()

    def _write(self, data: bytes) -> None:
        """Write and fsync a group (on the log's thread). The segment file is not
        switched or closed meanwhile: :meth:`rotate` and :meth:`close` wait for it."""
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())

    @staticmethod
    async def _apply_in_order(
        group: list[_Pending], lock: AbstractAsyncContextManager[Any] | None
    ) -> list[int]:
        """Apply a written group in LSN order; returns the LSNs whose apply raised."""
        failed: list[int] = []

        async def run() -> None:
            for pending in group:
                try:
                    result = pending.apply(pending.lsn)
                    if inspect.isawaitable(result):
                        result = await result
                except Exception as error:  # the caller's own error, raised where it waits
                    failed.append(pending.lsn)
                    if not pending.done.done():
                        pending.done.set_exception(error)
                    continue
                if not pending.done.done():
                    pending.done.set_result(result)

        if lock is None:
            await run()
        else:
            async with lock:
                await run()
        return failed

    def rotate(self) -> int:
        """Start a new segment (at a checkpoint), so the one before can go once the
        checkpoint covers it; returns the last LSN written before it. While a group is
        being written, the switch comes right after its fsync (closing the file under the
        write failed it, or left it unsynced)."""
        if self._writing():
            self._rotate_after = True
        elif self._file is not None and self._file.tell() > 0:
            self._open_segment(new=True)
        return self.last_lsn

    def truncate(self, upto_lsn: int) -> int:
        """Delete the segments whose every record is at or below ``upto_lsn`` (a
        checkpoint holds them); returns how many went. The open segment always stays."""
        removed = 0
        while len(self._segments) > 1 and self._segments[1][0] - 1 <= upto_lsn:
            _, path = self._segments.pop(0)
            path.unlink(missing_ok=True)
            removed += 1
        if removed:
            _fsync_dir(self.directory)
        return removed

    @property
    def broken(self) -> str:
        """Why the log cannot be written ("" while it can)."""
        return self._broken

    def close(self) -> None:
        """Finish the write under way, write what is still queued (void markers, and
        records never applied nor acknowledged, which a replay may apply), then close."""
        if self._inflight is not None:
            with contextlib.suppress(Exception):  # its failure was reported where awaited
                self._inflight.result()
        if self._pending and not self._broken and self._file is not None:
            with contextlib.suppress(OSError):
                self._write(b"".join(p.data for p in self._pending))
            self._pending = []
        self._io.shutdown(wait=True)
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> WriteAheadLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
