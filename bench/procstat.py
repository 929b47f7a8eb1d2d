"""Process measurements from /proc: CPU seconds and resident memory of a pid (or of a pid
and its live descendants, for servers that fork workers)."""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["cpu_seconds", "descendants", "rss_bytes", "tree_cpu_seconds", "tree_rss_bytes"]

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (not counting children)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    # fields[11], fields[12] are utime, stime (the 14th and 15th of the whole line)
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size now."""
    with open(f"/proc/{pid}/statm") as handle:
        return int(handle.read().split()[1]) * _PAGE


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it (from /proc/PID/task/*/children)."""
    found = [pid]
    index = 0
    while index < len(found):
        current = found[index]
        index += 1
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    found.extend(int(child) for child in handle.read().split())
            except OSError:
                continue
    return found


def _quietly(measure: Callable[[int], float], pid: int) -> float:
    try:
        return measure(pid)
    except OSError:  # the process ended between listing and reading
        return 0.0


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its live descendants (a worker that exited
    takes its CPU with it: compare windows, not lifetimes)."""
    return sum(_quietly(cpu_seconds, p) for p in descendants(pid))


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its live descendants, summed (pages shared between
    them, such as a memory-mapped snapshot, count once per process)."""
    return int(sum(_quietly(rss_bytes, p) for p in descendants(pid)))
