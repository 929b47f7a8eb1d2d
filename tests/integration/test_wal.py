"""The write-ahead log keeps every acknowledged change and replays it in order (server.wal).

Real files in a temp dir: records survive a reopen, concurrent commits share fsyncs and
are applied strictly in log order, a torn tail (a crash mid-write) is cut off and was
never acknowledged, a failed apply is voided so a replay skips it too, and a checkpoint
drops only the segments it covers.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from engine import events as ev
from engine import snapshot
from engine.deltas import apply_batch
from engine.errors import SnapshotError
from engine.state import State
from loaders.events import encode
from server.host import replay_log
from server.serve import Startup
from server.versions import BLOCK, VersionLease
from server.wal import WalBroken, WriteAheadLog


def _reopened(path: Path) -> list[Any]:
    """(lsn, events) of every record, as a restart reads them."""
    with WriteAheadLog(path) as wal:
        return [(r.lsn, r.events) for r in wal.records()]


def _commit_all(wal: WriteAheadLog, payloads: list[bytes]) -> list[int]:
    """Commit ``payloads`` concurrently; returns the LSN order in which they were applied."""
    applied: list[int] = []

    async def run() -> None:
        await asyncio.gather(
            *(wal.commit(1_000 + i, payload, applied.append) for i, payload in enumerate(payloads))
        )

    asyncio.run(run())
    return applied


def test_committed_records_survive_a_reopen_in_order(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    payloads = [f"batch-{i}".encode() for i in range(50)]
    applied = _commit_all(wal, payloads)
    wal.close()
    assert applied == list(range(1, 51))
    with WriteAheadLog(tmp_path) as again:
        records = list(again.records())
        assert again.last_lsn == 50
    assert [r.lsn for r in records] == list(range(1, 51))
    assert [r.events for r in records] == payloads
    assert [r.clock_ms for r in records] == [1_000 + i for i in range(50)]


def test_concurrent_commits_share_one_fsync_per_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal = WriteAheadLog(tmp_path)
    syncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (syncs.append(fd), real_fsync(fd)))
    _commit_all(wal, [b"x"] * 200)
    wal.close()
    assert len(_reopened(tmp_path)) == 200
    assert 1 <= len(syncs) < 50  # grouped: far fewer fsyncs than records


def test_a_torn_last_record_is_cut_off_and_appends_continue_after_it(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    _commit_all(wal, [b"one", b"two", b"three"])
    wal.close()
    segment = sorted(tmp_path.glob("wal-*.log"))[-1]
    data = segment.read_bytes()
    segment.write_bytes(data[:-3])  # a crash in the middle of the last record's write
    with WriteAheadLog(tmp_path) as reopened:
        assert [r.events for r in reopened.records()] == [b"one", b"two"]
        assert reopened.last_lsn == 2
        _commit_all(reopened, [b"four"])
    assert _reopened(tmp_path) == [(1, b"one"), (2, b"two"), (3, b"four")]


def test_a_record_whose_apply_failed_is_voided_and_never_replayed(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)

    def apply(lsn: int) -> int:
        if lsn == 2:
            raise ValueError("engine bug")
        return lsn

    async def run() -> list[Any]:
        return await asyncio.gather(
            *(wal.commit(0, f"b{i}".encode(), apply) for i in range(3)), return_exceptions=True
        )

    results = asyncio.run(run())
    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], ValueError)
    wal.close()
    assert [events for _, events in _reopened(tmp_path)] == [b"b0", b"b2"]


def test_a_checkpoint_drops_only_the_segments_it_covers(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    _commit_all(wal, [b"a", b"b"])
    covered = wal.rotate()  # a checkpoint starts: the state it writes has applied lsn 2
    _commit_all(wal, [b"c"])
    assert covered == 2
    assert wal.truncate(covered) == 1
    assert [r.events for r in wal.records()] == [b"c"]
    assert wal.truncate(covered) == 0  # the open segment always stays
    wal.close()
    assert [lsn for lsn, _ in _reopened(tmp_path)] == [3]


def test_a_log_that_cannot_be_written_refuses_every_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal = WriteAheadLog(tmp_path)

    def full(data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wal, "_write", full)
    with pytest.raises(WalBroken, match="No space left"):
        _commit_all(wal, [b"x"])
    assert "No space left" in wal.broken
    with pytest.raises(WalBroken):
        _commit_all(wal, [b"y"])
    wal.close()


def test_replaying_the_log_rebuilds_the_state_that_was_answered(tmp_path: Path) -> None:
    batches = [
        [ev.LocationUpsert(location="DAL", version=1), ev.ItemUpsert(sku="A", version=1)],
        [ev.InventorySet(sku="A", location="DAL", on_hand=10, version=2)],
        [ev.InventoryAdjust(sku="A", location="DAL", event_id="e1", on_hand_delta=5, version=3)],
        [ev.InventoryAdjust(sku="A", location="DAL", event_id="e1", on_hand_delta=5, version=3)],
    ]
    live = State()
    wal = WriteAheadLog(tmp_path)

    async def run() -> None:
        for i, batch in enumerate(batches):
            await wal.commit(
                100 + i,
                encode(batch),
                lambda lsn, b=batch, c=100 + i: apply_batch(live, b, clock_ms=c),
            )

    asyncio.run(run())
    wal.close()
    rebuilt = State()
    with WriteAheadLog(tmp_path) as again:
        assert replay_log(rebuilt, again) == 4
    assert rebuilt.wal_lsn == 4
    sku, loc = rebuilt.skus.get("A"), rebuilt.locations.get("DAL")
    assert rebuilt.inventory.on_hand[sku, loc] == live.inventory.on_hand[sku, loc] == 15


def test_a_version_lease_is_durable_and_starts_a_restart_above_it(tmp_path: Path) -> None:
    lease = VersionLease(tmp_path / "version.lease")
    assert lease.floor == 1
    lease.ensure(5)
    assert lease.end == 5 + BLOCK
    lease.ensure(6)  # inside the lease: nothing written
    assert (tmp_path / "version.lease").read_text().strip() == str(5 + BLOCK)
    restarted = VersionLease(tmp_path / "version.lease")
    assert restarted.floor == 5 + BLOCK + 1


class _HeldWrites:
    """A segment file whose next write waits until the test lets it go."""

    def __init__(self, file: Any) -> None:
        self.file = file
        self.entered = threading.Event()
        self.go = threading.Event()

    def write(self, data: bytes) -> int:
        self.entered.set()
        assert self.go.wait(10)
        return int(self.file.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)


def test_a_checkpoint_rotating_the_log_mid_write_waits_for_the_write_and_its_fsync(
    tmp_path: Path,
) -> None:
    wal = WriteAheadLog(tmp_path)
    _commit_all(wal, [b"first"])
    held = _HeldWrites(wal._file)
    wal._file = held

    async def run() -> list[int]:
        commits = asyncio.gather(*(wal.commit(0, f"b{i}".encode(), lambda lsn: lsn)
                                   for i in range(3)))  # fmt: skip
        await asyncio.to_thread(held.entered.wait, 10)
        wal.rotate()  # a checkpoint starts while the group is on its way to the disk
        held.go.set()
        return await asyncio.wait_for(commits, 10)

    assert asyncio.run(run()) == [2, 3, 4]  # acknowledged: written whole, and fsynced
    assert not wal.broken
    _commit_all(wal, [b"after"])
    wal.close()
    segments = sorted(tmp_path.glob("wal-*.log"))  # the switch came after the group
    assert [p.name for p in segments] == ["wal-00000000000000000001.log",
                                          "wal-00000000000000000005.log"]  # fmt: skip
    assert [events for _, events in _reopened(tmp_path)] == [b"first", b"b0", b"b1", b"b2",
                                                             b"after"]  # fmt: skip


def _checkpointed(tmp_path: Path) -> tuple[WriteAheadLog, Path]:
    """A bulk build under source/, two logged batches on it, then a checkpoint under data/
    that let the log drop the records it covers (as a running server does)."""
    source = tmp_path / "source"
    live = State()
    apply_batch(live, [ev.LocationUpsert(location="DAL", version=1),
                       ev.ItemUpsert(sku="A", version=1)], clock_ms=1)  # fmt: skip
    snapshot.write(live, source)
    wal = WriteAheadLog(tmp_path / "data" / "wal")
    batches = [[ev.InventorySet(sku="A", location="DAL", on_hand=n, version=n)] for n in (7, 9)]

    async def run() -> None:
        for batch in batches:

            def apply(lsn: int, batch: list[Any] = batch) -> None:
                apply_batch(live, batch, clock_ms=5)

            await wal.commit(5, encode(batch), apply)

    asyncio.run(run())
    live.wal_lsn = wal.rotate()
    snapshot.write(live, tmp_path / "data")
    assert wal.truncate(live.wal_lsn) == 1
    return wal, source


def _latest(root: Path) -> Path:
    found = snapshot.latest(root)
    assert found is not None
    return found


def _on_hand(state: State) -> int:
    return int(state.inventory.on_hand[state.skus.get("A"), state.locations.get("DAL")])


def test_a_bulk_build_rewritten_after_the_log_dropped_records_does_not_drop_them(
    tmp_path: Path,
) -> None:
    wal, source = _checkpointed(tmp_path)
    time.sleep(0.01)
    snapshot.write(snapshot.load(_latest(source)), source)  # written after the checkpoint
    build = _latest(source)
    checkpoint = _latest(tmp_path / "data")
    startup = Startup(lambda: build, str(tmp_path / "data"))
    assert snapshot.written_at(build) > snapshot.written_at(checkpoint)
    assert startup.newest(wal) == checkpoint
    assert _on_hand(startup.load(wal, 0)) == 9
    # without Redis nor a log, the newest by time still wins (nothing can be missing)
    assert startup.newest(None) == build
    wal.close()


def test_no_snapshot_covering_the_log_is_a_start_up_error_not_a_silent_loss(
    tmp_path: Path,
) -> None:
    wal, source = _checkpointed(tmp_path)
    shutil.rmtree(_latest(tmp_path / "data"))  # the checkpoint is gone
    build = _latest(source)
    startup = Startup(lambda: build, str(tmp_path / "data"))
    with pytest.raises(SnapshotError, match="would drop acknowledged changes"):
        startup.load(wal, 0)
    wal.close()


def test_a_log_whose_segments_were_removed_numbers_new_records_above_the_checkpoint(
    tmp_path: Path,
) -> None:
    wal, source = _checkpointed(tmp_path)
    wal.close()
    for segment in (tmp_path / "data" / "wal").glob("wal-*.log"):
        segment.unlink()
    build = _latest(source)
    startup = Startup(lambda: build, str(tmp_path / "data"))
    with WriteAheadLog(tmp_path / "data" / "wal") as fresh:
        state = startup.load(fresh, 0)
        assert _on_hand(state) == 9  # the checkpoint, the newest by time
        assert _commit_all(fresh, [b"next"]) == [state.wal_lsn + 1]
