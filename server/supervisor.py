"""``pacache serve --workers N``: one writer process, N gRPC workers, one supervisor (DESIGN §9).

The supervisor is the process the operator starts. It reserves the port, forks the writer
(which loads the state into shared memory and publishes it), then forks the workers, each
of which maps that state read-only and serves the same port through SO_REUSEPORT, so the
kernel spreads connections across them. Every child is forked before any gRPC object
exists (gRPC's threads do not survive a fork) and dies with the supervisor
(``PR_SET_PDEATHSIG``), so a killed supervisor never leaves workers holding the port.

Supervision:
- a worker that dies is replaced (backing off when it keeps dying); the calls it had in
  flight fail, the others are untouched;
- a writer that dies leaves the workers answering from the last published state, with its
  ``as_of``; their health turns NOT_SERVING after the staleness limit. It is restarted up
  to ``writer_restarts`` times; a new writer reloads (the newest checkpoint under
  ``--snapshot-dir`` when there is one, else the start-up source), replays the streams and
  publishes into a new shared-memory directory, which it announces to the workers;
- SIGTERM/SIGINT drains everything: the workers first (health NOT_SERVING, in-flight calls
  finish within the grace period), then the writer, then the shared memory is removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Supervisor", "ensure_port_free", "reserve_port", "sweep_orphans"]

log = logging.getLogger("pacache.supervisor")
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the supervisor's SIGTERM path still stops children
        pass


def ensure_port_free(bind: str, port: int) -> None:
    """Raise ``OSError`` (EADDRINUSE) if something already listens on ``bind:port``.

    The workers share their port through SO_REUSEPORT, and so would a second ``pacache
    serve`` started on the same port: two unrelated states would then answer behind one
    address, each for part of the connections. A plain bind (SO_REUSEADDR only, so
    leftover TIME_WAIT connections of a previous run do not count) fails when any socket
    listens there, ours included, so a second server stops here with a clear error."""
    if port == 0:
        return
    family, kind, proto, _, address = socket.getaddrinfo(bind, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise OSError(
                error.errno, f"port {port} is already in use ({error.strerror})"
            ) from None


def reserve_port(bind: str, port: int) -> tuple[socket.socket, int]:
    """Bind (without listening) a SO_REUSEPORT socket, so port 0 becomes one concrete port
    that the workers can all bind and no unrelated process can take meanwhile."""
    family, kind, proto, _, address = socket.getaddrinfo(bind, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock, int(sock.getsockname()[1])


def sweep_orphans(shm_dir: Path) -> None:
    """Remove the shared memory of supervisors that died without draining (SIGKILL): it
    would otherwise hold two instances of a state in RAM until the next reboot."""
    for stale in shm_dir.glob("pacache-*"):
        pid = stale.name.removeprefix("pacache-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(stale, ignore_errors=True)


# A child's entry point: (shm_root, socket_path, ready_fd) for the writer,
# (index, shm_root, socket_path, ready_fd) for a worker. It runs until SIGTERM.
WriterMain = Callable[[str, str, int], None]
WorkerMain = Callable[[int, str, str, int], None]


@dataclass
class Supervisor:
    workers: int
    base: Path  # this supervisor's shared-memory directory (one subdirectory per writer)
    writer_main: WriterMain
    worker_main: WorkerMain
    grace: float = 10.0
    writer_restarts: int = 3
    start_timeout_s: float = 600.0  # a large state takes a while to load
    children: dict[int, tuple[str, int]] = field(default_factory=dict)  # pid → role, index
    generation: int = 0  # the newest writer's number (it may still be starting)
    ready_generation: int = 0  # the newest writer that has reported ready
    stopping: bool = False
    _ready_r: int = -1
    _ready_w: int = -1
    _buffer: bytes = b""
    _previous: dict[int, Any] = field(default_factory=dict)  # signal handlers to restore

    @property
    def writer_pid(self) -> int:
        """The running writer's pid (0 while none runs)."""
        return next((pid for pid, (role, _) in self.children.items() if role == "writer"), 0)

    @property
    def socket_path(self) -> str:
        return str(self.base / "writer.sock")

    def shm_root(self, generation: int | None = None) -> str:
        return str(self.base / f"state-{self.generation if generation is None else generation}")

    def _fork(self, role: str, index: int) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            self.children[pid] = (role, index)
            return pid
        code = 1
        try:  # the child: never return into the supervisor's code
            die_with_parent()
            os.close(self._ready_r)
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(signum, signal.SIG_DFL)
            if role == "writer":
                self.writer_main(self.shm_root(), self.socket_path, self._ready_w)
            else:
                # a worker replaced while a restarted writer still catches up reads the
                # last ready writer's state, not one older than what was served
                root = self.shm_root(self.ready_generation)
                self.worker_main(index, root, self.socket_path, self._ready_w)
            code = 0
        except BaseException:
            logging.getLogger(f"pacache.{role}").exception("%s %d failed", role, index)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        raise AssertionError("unreachable")

    def _wait_ready(self, what: str) -> None:
        """Block until a child writes ``<what>`` on the ready pipe (or dies trying)."""
        deadline = time.monotonic() + self.start_timeout_s
        while f"{what}\n".encode() not in self._buffer:
            if self.stopping:
                raise RuntimeError(f"stopped by a signal while waiting for {what!r}")
            self._reap_during_start()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what!r} not reported within {self.start_timeout_s:.0f}s")
            readable, _, _ = select.select([self._ready_r], [], [], 0.1)
            if readable:
                self._buffer += os.read(self._ready_r, 4096)
        self._buffer = self._buffer.replace(f"{what}\n".encode(), b"", 1)

    def _reap_during_start(self) -> None:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            role, index = self.children.pop(pid, ("?", -1))
            raise RuntimeError(
                f"{role} {index} exited with {os.waitstatus_to_exitcode(status)} while starting"
            )

    def start(self) -> None:
        """Fork the writer, wait for its state, fork the workers, wait until they serve.

        SIGTERM/SIGINT are caught from here on (a signal during start-up stops it and
        drains), so no window exists where the default action would kill the supervisor
        and leave its shared memory behind."""
        self._previous = {
            s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)
        }
        sweep_orphans(self.base.parent)
        self.base.mkdir(parents=True, exist_ok=True)
        self._ready_r, self._ready_w = os.pipe()
        self._fork("writer", self.generation)
        self._wait_ready(f"writer {self.generation}")
        for index in range(self.workers):
            self._fork("worker", index)
        for index in range(self.workers):
            self._wait_ready(f"worker {index}")

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT, then drain; returns the exit code."""
        restarts_at: dict[int, float] = {}  # worker index → when it may be forked again
        backoff: dict[int, float] = {}
        try:
            while not self.stopping:
                self._drain_ready_pipe()
                for index, when in list(restarts_at.items()):
                    if time.monotonic() >= when:
                        del restarts_at[index]
                        self._fork("worker", index)
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    pid, status = 0, 0
                if not pid:
                    time.sleep(0.05)
                    continue
                role, index = self.children.pop(pid, ("?", -1))
                code = os.waitstatus_to_exitcode(status)
                if role == "worker":
                    delay = backoff.get(index, 0.0)
                    log.error("worker %d (pid %d) exited with %d; replacing it in %.1fs",
                              index, pid, code, delay)  # fmt: skip
                    restarts_at[index] = time.monotonic() + delay
                    backoff[index] = min(max(delay * 2, 0.2), 5.0)
                elif role == "writer":
                    self._writer_died(pid, code)
            self.drain()  # a second SIGTERM while draining changes nothing
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
        return 0

    def _writer_died(self, pid: int, code: int) -> None:
        if self.writer_restarts <= 0:
            log.error("writer (pid %d) exited with %d; workers serve the last published state, "
                      "no restarts left", pid, code)  # fmt: skip
            return
        self.writer_restarts -= 1
        self.generation += 1
        log.error("writer (pid %d) exited with %d; workers serve the last published state "
                  "while writer %d starts", pid, code, self.generation)  # fmt: skip
        self._fork("writer", self.generation)

    def _drain_ready_pipe(self) -> None:
        readable, _, _ = select.select([self._ready_r], [], [], 0)
        if not readable:
            return
        self._buffer += os.read(self._ready_r, 4096)
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            role, _, index = line.decode().partition(" ")
            if role == "writer" and index.isdigit():
                self.ready_generation = int(index)
                for old in self.base.glob("state-*"):  # workers switch within a heartbeat
                    if old.name != f"state-{index}":
                        shutil.rmtree(old, ignore_errors=True)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _signal_all(self, role: str, signum: int) -> None:
        for pid, (r, _) in self.children.items():
            if r == role:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)

    def _wait_role(self, role: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while any(r == role for r, _ in self.children.values()):
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # none left to wait for: the table is stale
                self.children = {p: c for p, c in self.children.items() if c[0] != role}
                return
            if pid:
                self.children.pop(pid, None)
            elif time.monotonic() > deadline:
                log.error("%ss still running after %.0fs: killing them", role, timeout)
                self._signal_all(role, signal.SIGKILL)
                deadline = float("inf")
            else:
                time.sleep(0.02)

    def drain(self) -> None:
        """Workers first (they may still forward to the writer), then the writer."""
        log.info("stopping: draining %d workers, then the writer", self.workers)
        self._signal_all("worker", signal.SIGTERM)
        self._wait_role("worker", self.grace + 5)
        self._signal_all("writer", signal.SIGTERM)
        self._wait_role("writer", 60)
        shutil.rmtree(self.base, ignore_errors=True)
        for fd in (self._ready_r, self._ready_w):
            if fd >= 0:
                os.close(fd)
        self._ready_r = self._ready_w = -1
