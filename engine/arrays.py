"""Small array idioms shared by the engine's batch computations.

Ranges and segments are how the engine avoids a Python loop per line: a batch's lookups
become [low, high) ranges in a sorted table, expanded into one flat index array, and
per-line totals become cumulative sums over contiguous segments.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["expand_ranges", "segment_starts", "segmented_cumsum"]

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


def expand_ranges(low: I64, high: I64) -> tuple[I64, I64]:
    """Flatten ranges: for ranges [low[i], high[i]) return (which range, position) pairs.

    ``which`` is non-decreasing; positions run through each range in order. O(total).
    """
    count = np.maximum(high - low, 0)
    which = np.repeat(np.arange(low.size), count)
    pos = np.arange(which.size) + np.repeat(low - (np.cumsum(count) - count), count)
    return which, pos


def segment_starts(*keys: I64) -> Bools:
    """True where any key differs from the row before (rows sorted by the keys)."""
    size = keys[0].size
    starts = np.ones(size, dtype=np.bool_)
    if size > 1:
        changed = np.zeros(size - 1, dtype=np.bool_)
        for key in keys:
            changed |= key[1:] != key[:-1]
        starts[1:] = changed
    return starts


def segmented_cumsum(values: I64, starts: Bools) -> I64:
    """Running totals that restart at every segment start (inclusive of the row)."""
    total = np.cumsum(values)
    first = np.maximum.accumulate(np.where(starts, np.arange(values.size), 0))
    return total - total[first] + values[first]
