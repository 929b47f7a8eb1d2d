"""A checkpoint's child process dies with the process that forked it (server.checkpoint).

A writer killed mid-checkpoint must not leave its child writing on beside the restarted
writer's checkpoints in the same directory (the crash matrix caught one sweeping the
other's half-written files into a snapshot that could not load).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PROGRAM = """
import asyncio, os, sys, time
from engine import snapshot
from engine.state import State
from server.checkpoint import write_checkpoint
from server.host import StateHost

def slow_write(state, root, keep=2):  # a large state: the child writes for a while
    print(os.getpid(), flush=True)
    time.sleep(60)

snapshot.write = slow_write
asyncio.run(write_checkpoint(StateHost(State()), sys.argv[1]))
"""


def test_a_checkpoint_child_dies_when_the_process_that_forked_it_is_killed(
    tmp_path: Path,
) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, str(tmp_path / "snapshots")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())  # printed by the child, once it writes
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child}").exists() and _state(child) != "Z":
            assert time.monotonic() < deadline, "the checkpoint child outlived its parent"
            time.sleep(0.01)
    finally:
        if parent.poll() is None:
            parent.kill()
        if child and _state(child) not in ("gone", "Z"):  # the test failed: no leftover
            os.kill(child, signal.SIGKILL)
        if parent.stdout is not None:
            parent.stdout.close()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
