"""Version leases: the state version a caller sees never goes down, even across restarts.

``as_of.version`` is a counter the writer bumps once per applied batch, and ``min_version``
lets a caller wait for at least what it saw. A restarted writer rebuilds its state from a
checkpoint plus a replay, in fewer batches than the original run took (several stream
reads replay as one, hold-expiry ticks are not replayed), so its own count would restart
lower. Instead, versions are leased in blocks: before the writer publishes a version past
the lease it records a new end (``version + BLOCK``) in a small file, fsynced; a restarted
writer starts above the recorded end. The file is written once per ``BLOCK`` batches, and
once per start: the version a state is loaded at (the floor, or the previous writer's
last + 1) is published too, batch or no batch.

Without a durable directory (no ``--snapshot-dir``) there is no file, and only a writer
restarted inside one ``pacache serve`` keeps its versions going up (the supervisor hands
it the last published version); nothing else of such a server survives a full restart
either.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BLOCK", "VersionLease"]

BLOCK = 1 << 16


@dataclass
class VersionLease:
    """The durable high-water mark of published versions (``path`` None: in memory)."""

    path: Path | None = None
    end: int = 0

    def __post_init__(self) -> None:
        if self.path is not None:
            self.path = Path(self.path)
            with contextlib.suppress(FileNotFoundError):  # a first start: no lease yet
                self.end = max(self.end, int(self.path.read_text().strip() or 0))

    @property
    def floor(self) -> int:
        """The lowest version a restarted writer may publish: above every version any
        earlier run can have published."""
        return self.end + 1

    def ensure(self, version: int) -> None:
        """Extend the lease (durably) before ``version`` can be published."""
        if version <= self.end:
            return
        end = version + BLOCK
        if self.path is not None:
            tmp = self.path.with_name(self.path.name + ".tmp")
            with tmp.open("w") as handle:
                handle.write(f"{end}\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self.end = end
