"""Process measurements from /proc: CPU seconds and resident memory of a pid (or of a pid
and its live descendants, for servers that fork workers)."""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = [
    "children", "cpu_seconds", "cpu_stall_seconds", "descendants", "machine_busy_seconds",
    "memory", "rss_bytes", "tree_cpu_seconds", "tree_rss_bytes",
]  # fmt: skip

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


def memory(pid: int) -> dict[str, int]:
    """Resident memory of ``pid`` split the way shared state needs it (bytes, from
    /proc/PID/smaps_rollup): ``rss`` counts every resident page it maps, shared ones
    included; ``pss`` shares each page among the processes mapping it; ``private`` (USS)
    is what this process alone holds — what starting it added to the machine."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                fields[name] = int(parts[0]) * 1024
    return {
        "rss": fields.get("Rss", 0),
        "pss": fields.get("Pss", 0),
        "private": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
        "shared": fields.get("Shared_Clean", 0) + fields.get("Shared_Dirty", 0),
    }


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (from /proc/PID/task/*/children)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.extend(int(child) for child in handle.read().split())
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    found = [pid]
    index = 0
    while index < len(found):
        found.extend(children(found[index]))
        index += 1
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
    """Resident memory of ``pid`` and its live descendants: the sum of their proportional
    set sizes (PSS), so a page they share — the state in shared memory that a writer and its
    workers all map — counts once for the tree, not once per process. For a single process
    this is its RSS with shared libraries apportioned."""

    def pss(p: int) -> float:
        try:
            return float(memory(p)["pss"])
        except OSError:
            return float(rss_bytes(p))

    return int(sum(_quietly(pss, p) for p in descendants(pid)))


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy so far, summed over cores (/proc/stat:
    everything but idle and iowait): with a process's own CPU over the same window, it
    shows what else was running — other processes compete for the same cores."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    busy = sum(values[:8]) - idle  # guest time is already inside user
    return busy / _TICKS


def cpu_stall_seconds() -> float | None:
    """Seconds so far in which some runnable task waited for a core (/proc/pressure/cpu
    "some total"); None where the kernel has no pressure information."""
    try:
        with open("/proc/pressure/cpu") as handle:
            return int(handle.readline().split()[4].split("=")[1]) / 1e6
    except (OSError, IndexError, ValueError):
        return None
