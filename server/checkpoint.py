"""Checkpoints: a snapshot every N seconds or N events, written without pausing anything.

The serving process forks; the child holds a copy-on-write image of the state exactly as
it was between two batches, writes it with ``engine.snapshot.write`` and exits. The parent
goes on reading streams and answering calls at once — the fork costs a page-table copy,
not a state copy (Redis's BGSAVE does the same). Restart = load the newest snapshot, then
replay every stream from the positions in its manifest, or the write-ahead log from the
position in it (``State.wal_lsn``). Checkpoints run whenever ``--snapshot-dir`` is set,
with or without Redis; without Redis each one lets the log drop the segments it covers.

A crash mid-checkpoint leaves only a ``.tmp-`` directory, which never loads and is swept
by the next checkpoint. The child dies with the process that forked it (PDEATHSIG): a
checkpoint outliving a killed writer would write beside the restarted one's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from engine import snapshot
from server.host import StateHost
from server.supervisor import die_with_parent

__all__ = ["CheckpointPolicy", "checkpoint_loop", "write_checkpoint"]

log = logging.getLogger("pacache.checkpoint")


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    root: str
    every_s: float = 60.0
    every_events: int = 1_000_000
    keep: int = 2


async def write_checkpoint(host: StateHost, root: str, keep: int = 2) -> bool:
    """Fork and write a snapshot of the current state; True when the child succeeded.

    A host whose arrays are shared mappings (``checkpoint_holds_writes``, the
    multi-process writer) keeps its write lock until the child is done: fork freezes
    private memory, not a shared mapping. With a write-ahead log, the log moves to a new
    segment first and, once the snapshot is in place, drops the segments it covers.
    """
    wal = host.wal
    if wal is not None:
        wal.rotate()
    # not between a stream batch's apply and its dead letters (see StreamWriter.committing)
    async with host.stream_commit or contextlib.nullcontext():
        if not host.checkpoint_holds_writes:
            ok, lsn = await _fork_and_write(host, root, keep)
        else:
            async with host.write_lock:
                ok, lsn = await _fork_and_write(host, root, keep)
    if ok and wal is not None:
        wal.truncate(lsn)
    return ok


async def _fork_and_write(host: StateHost, root: str, keep: int) -> tuple[bool, int]:
    state = host.writable_state()
    parent = os.getpid()
    # the lane thread may be reading; fork between two of its reads, never mid-way
    with host._state_lock:
        lsn = state.wal_lsn
        pid = os.fork()
    if pid == 0:  # child: write and leave without running the parent's cleanup
        code = 1
        try:
            # A checkpoint of a process that died is nobody's: it would go on writing
            # beside the restarted writer's own checkpoints, in the same directory.
            die_with_parent()
            if os.getppid() == parent:  # else the parent died before we asked
                snapshot.write(state, root, keep=keep)
                code = 0
        finally:
            os._exit(code)
    _, status = await asyncio.to_thread(os.waitpid, pid, 0)
    ok = os.waitstatus_to_exitcode(status) == 0
    if ok:
        log.info("checkpoint at version %d written under %s", state.version, root)
    else:
        log.error("checkpoint child failed with status %d", status)
    return ok, lsn


async def checkpoint_loop(host: StateHost, policy: CheckpointPolicy) -> None:
    """Write a checkpoint whenever the time or event budget since the last one is spent."""
    Path(policy.root).mkdir(parents=True, exist_ok=True)
    last_time = time.monotonic()
    last_events = host.applied_total
    last_version = host.writable_state().version
    while True:
        await asyncio.sleep(min(1.0, policy.every_s))
        due = (
            time.monotonic() - last_time >= policy.every_s
            or host.applied_total - last_events >= policy.every_events
        )
        if due and host.writable_state().version != last_version:
            last_version = host.writable_state().version
            await write_checkpoint(host, policy.root, policy.keep)
            last_time, last_events = time.monotonic(), host.applied_total
