"""Start a serving process and learn its port: for tests, benchmarks and supervisors.

A server started with ``--port 0`` prints ``pacache serving on HOST:PORT`` once it listens
and its state is loaded; :func:`spawn` waits for that line.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.client import Client

__all__ = ["Spawned", "spawn"]

REPO = Path(__file__).resolve().parents[1]
_SERVING = re.compile(r"serving on [\d.]+:(\d+)")


@dataclass
class Spawned:
    """A running server process and the port it serves on."""

    process: subprocess.Popen[str]
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, token: str | None = None, **options: Any) -> Client:
        """A :class:`~server.client.Client` for this server."""
        return Client(self.target, token=token, **options)

    def stop(self, timeout: float = 20, *, kill: bool = False) -> int:
        """SIGTERM (drain) or SIGKILL (crash) it and wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()


def spawn(
    arguments: Sequence[str],
    *,
    module: str = "server.serve",
    env: Mapping[str, str] | None = None,
    stderr: int | None = subprocess.DEVNULL,
) -> Spawned:
    """Run ``python -m module arguments…`` and return once it prints its port."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *arguments],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )
    assert process.stdout is not None
    for line in process.stdout:
        found = _SERVING.search(line)
        if found:
            return Spawned(process, int(found.group(1)))
    code = process.wait()
    process.stdout.close()
    raise RuntimeError(f"python -m {module} exited with {code} before serving")
