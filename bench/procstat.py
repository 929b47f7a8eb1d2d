"""Process measurements from /proc: CPU seconds and resident memory of a pid."""

from __future__ import annotations

import os

__all__ = ["cpu_seconds", "memory", "rss_bytes"]

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
