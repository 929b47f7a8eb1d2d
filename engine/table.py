"""Growable struct-of-arrays tables and sorted key indexes, the storage under the state.

A :class:`Columns` holds named numpy columns with spare capacity, so appends are amortised
O(1) per row and a hot path reads plain arrays. A :class:`KeyIndex` keeps the row ids of a
table sorted by an ``int64`` key (with per-prefix offsets, so a batch of lookups by SKU is
one offset read per line); inserting k new keys into n is one O(n + k log k) merge, not a
re-sort.

Both expose their arrays by name for snapshots (:meth:`Columns.arrays`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.arrays import expand_ranges

__all__ = ["Column", "Columns", "KeyIndex"]

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]

#: Address space the dense rows of one index may take (pages never written cost nothing).
DENSE_BUDGET_BYTES = 256 << 20
#: A dense cell holds row + 1 as int32: an index with rows this high turns its rows off
#: (DESIGN's large scale has 10M contract lines; this is ~2.1 billion).
_DENSE_ROW_LIMIT = int(np.iinfo(np.int32).max) - 1


@dataclass(frozen=True, slots=True)
class Column:
    """Schema of one column: dtype, trailing shape (for fixed-width rows) and fill value."""

    dtype: Any
    fill: int | bool = 0
    width: int = 0  # 0: one value per row; k: k values per row


class Columns:
    """Named columns sharing one row count ``n`` and one capacity."""

    def __init__(self, schema: Mapping[str, Column], capacity: int = 16) -> None:
        self.schema = dict(schema)
        self.n = 0
        self.capacity = max(16, capacity)
        self.data: dict[str, np.ndarray[Any, Any]] = {
            name: self._blank(col, self.capacity) for name, col in self.schema.items()
        }

    @staticmethod
    def _blank(col: Column, rows: int) -> np.ndarray[Any, Any]:
        shape = (rows, col.width) if col.width else (rows,)
        return np.full(shape, col.fill, dtype=col.dtype)

    def __getitem__(self, name: str) -> np.ndarray[Any, Any]:
        return self.data[name]

    def ensure(self, rows: int) -> None:
        """Make room for ``rows`` rows in total (grows by half again, copying once)."""
        if rows <= self.capacity:
            return
        new_capacity = max(rows, self.capacity + self.capacity // 2)
        for name, col in self.schema.items():
            grown = self._blank(col, new_capacity)
            grown[: self.n] = self.data[name][: self.n]
            self.data[name] = grown
        self.capacity = new_capacity

    def append_blank(self, count: int) -> I64:
        """Append ``count`` rows holding fill values; returns their row ids.

        The fill is written, not assumed: rows past ``n`` can hold old values after ``n``
        went down (the adjust log's compaction keeps its arrays), and a row appended
        there with an old ``live = False`` was an adjust already absorbed, so an older
        set arriving later dropped it and a later compaction forgot its event id."""
        start = self.n
        self.ensure(start + count)
        for name, col in self.schema.items():
            self.data[name][start : start + count] = col.fill
        self.n = start + count
        return np.arange(start, start + count, dtype=np.int64)

    def copy(self) -> Columns:
        """An independent copy: every column copied whole (capacity included)."""
        columns = Columns(self.schema, capacity=0)
        columns.n, columns.capacity = self.n, self.capacity
        columns.data = {name: array.copy() for name, array in self.data.items()}
        return columns

    def arrays(self, prefix: str) -> dict[str, np.ndarray[Any, Any]]:
        """The used part of every column, named ``prefix.column``, for a snapshot."""
        return {f"{prefix}.{name}": self.data[name][: self.n] for name in self.schema}

    def load(self, prefix: str, arrays: Mapping[str, np.ndarray[Any, Any]], n: int) -> None:
        """Adopt arrays written by :meth:`arrays` (possibly memory-mapped) as the columns.

        The loaded arrays are used as they are (no copy) until the first append grows them.
        """
        self.n = n
        self.capacity = n
        for name in self.schema:
            self.data[name] = arrays[f"{prefix}.{name}"]
        if n < 16:
            self.ensure(16)


class KeyIndex:
    """Row ids sorted by an ``int64`` key: ``keys[i]`` is the key of row ``rows[i]``.

    With ``shift``, the index also keeps ``ptr``, a CSR offset per *prefix*
    (``key >> shift``, for prefixes below ``prefix_limit``): the keys of prefix ``p`` sit at
    ``keys[ptr[p]:ptr[p + 1]]``. A lookup by prefix then costs one random read instead of a
    binary search, whose ~20 cache misses dominate a quote on a 10M-key table.

    With ``dense_min_run`` ≥ 0, prefixes whose run is longer than that also get a *dense
    row* indexed by suffix (``dense_slot``, ``dense``; see :meth:`refresh_dense`), so a
    batch of (prefix, suffix) lookups on popular prefixes is one gather.
    """

    def __init__(
        self, shift: int | None = None, prefix_limit: int = 1 << 31, dense_min_run: int = -1
    ) -> None:
        self.keys: I64 = np.zeros(0, dtype=np.int64)
        self.rows: I64 = np.zeros(0, dtype=np.int64)
        self.shift = shift
        self.prefix_limit = prefix_limit
        self.ptr: I64 = np.zeros(1, dtype=np.int64)
        # dense rows of long prefix runs (see refresh_dense); off when dense_min_run < 0
        self.dense_min_run = dense_min_run
        self.dense_slot: I32 = np.zeros(0, dtype=np.int32)
        self.dense: I32 = np.zeros((0, 0), dtype=np.int32)

    def __len__(self) -> int:
        return int(self.keys.size)

    def copy(self) -> KeyIndex:
        """An independent copy: keys, rows, offsets and dense rows copied."""
        index = KeyIndex(self.shift, self.prefix_limit, self.dense_min_run)
        index.keys, index.rows, index.ptr = self.keys.copy(), self.rows.copy(), self.ptr.copy()
        index.dense_slot, index.dense = self.dense_slot.copy(), self.dense.copy()
        return index

    def find(self, keys: I64) -> I64:
        """Row of each key, or -1 where absent; O(m log n)."""
        if self.keys.size == 0:
            return np.full(np.shape(keys), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.keys, keys), self.keys.size - 1)
        hit = self.keys[pos] == keys
        return np.where(hit, self.rows[pos], -1)

    def prefix_ranges(self, prefix: I64) -> tuple[I64, I64]:
        """Positions [start, end) of the keys with each prefix; O(m), one read each."""
        top = self.ptr.size - 1
        clipped = np.minimum(prefix, top)
        start = self.ptr[clipped]
        end = self.ptr[np.minimum(prefix + 1, top)]
        return start, np.where(prefix < top, end, start)

    def find_by_prefix(self, keys: I64) -> I64:
        """Like :meth:`find` for keys whose prefix runs are short: scans each key's run
        (one offset read, then sequential keys) instead of a binary search. O(m + run)."""
        assert self.shift is not None
        which, pos = expand_ranges(*self.prefix_ranges(keys >> self.shift))
        hit = np.nonzero(self.keys[pos] == keys[which])[0]
        found = np.full(keys.shape, -1, dtype=np.int64)
        found[which[hit]] = self.rows[pos[hit]]
        return found

    def _grow_ptr(self, keys: I64) -> None:
        """Re-derive ``ptr`` after ``keys`` were added (O(prefixes), not O(keys))."""
        if self.shift is None:
            return
        prefix = keys >> self.shift
        inside = prefix[prefix < self.prefix_limit]
        size = max(self.ptr.size - 1, int(inside.max()) + 1 if inside.size else 0)
        if size > self.ptr.size - 1:  # new prefixes start where everything before ends
            self.ptr = np.concatenate(
                [self.ptr, np.full(size - (self.ptr.size - 1), self.ptr[-1], dtype=np.int64)]
            )
        counts = np.bincount(inside, minlength=size)
        self.ptr[1:] += np.cumsum(counts)

    def insert(self, keys: I64, rows: I64) -> None:
        """Add new (key, row) pairs; keys must not already be present. O(n + k log k)."""
        if keys.size == 0:
            return
        order = np.argsort(keys, kind="stable")
        keys, rows = keys[order], rows[order]
        pos = np.searchsorted(self.keys, keys)
        self.keys = np.insert(self.keys, pos, keys)
        self.rows = np.insert(self.rows, pos, rows)
        self._grow_ptr(keys)
        if self.dense_min_run >= 0:
            self._dense_insert(keys, rows)

    def rebuild(self, keys: I64) -> None:
        """Index rows 0..len(keys)-1 by ``keys`` from scratch (bulk loads); O(n log n)."""
        order = np.argsort(keys, kind="stable")
        self.keys = np.ascontiguousarray(keys[order])
        self.rows = order.astype(np.int64)
        self.ptr = np.zeros(1, dtype=np.int64)
        self._grow_ptr(self.keys)
        self.refresh_dense()

    # -- dense rows of long runs ------------------------------------------------------------
    #
    # A prefix with a long run (a popular SKU listed on hundreds of contracts) is where a
    # lookup of (prefix, suffix) pairs costs most: either a scan of the whole run or one
    # binary search over every key per pair, ~20 dependent cache misses each. For those
    # prefixes the index also keeps a dense row: ``dense[dense_slot[p], s]`` is the row of
    # key (p, s) plus one, 0 where there is none. A pair lookup is then one array read.
    #
    # Invariant: a covered prefix (``dense_slot[p] >= 0``) has every one of its keys in its
    # dense row, so no key of it has a suffix ≥ the row width. ``insert`` keeps it (in
    # place, so a shared-memory reader sees the change like any other column write) and
    # covers prefixes whose run has grown past ``dense_min_run`` while rows are free;
    # width or rows running out rebuild the rows. Rows are zero-filled, so capacity and
    # width headroom cost address space, not memory, until written.

    def dense_width(self) -> int:
        """Suffixes below this have a column in the dense rows."""
        return int(self.dense.shape[1])

    def refresh_dense(self) -> None:
        """(Re)build the dense rows: the longest runs over ``dense_min_run``, within
        :data:`DENSE_BUDGET_BYTES`. O(covered keys); ~tens of ms at 10M keys."""
        if self.dense_min_run < 0 or self.shift is None:
            return
        n_prefix = self.ptr.size - 1
        run = np.diff(self.ptr)
        long = np.nonzero(run > self.dense_min_run)[0]
        mask = (1 << self.shift) - 1
        which, pos = expand_ranges(self.ptr[long], self.ptr[long + 1])
        if pos.size and int(self.rows[pos].max()) >= _DENSE_ROW_LIMIT:
            self._dense_off()
            return
        suffix = self.keys[pos] & mask
        width = -(-(int(suffix.max(initial=-1)) + 1) * 5 // 4 // 64) * 64 if pos.size else 0
        width = max(width, 64)
        budget = DENSE_BUDGET_BYTES // (4 * width)
        if long.size > budget:  # the longest runs first: they save the most
            keep = np.sort(np.argsort(-run[long], kind="stable")[:budget])
            long = long[keep]
            which, pos = expand_ranges(self.ptr[long], self.ptr[long + 1])
            suffix = self.keys[pos] & mask
        capacity = min(budget, long.size + max(64, long.size // 4))
        self.dense = np.zeros((capacity, width), dtype=np.int32)
        self.dense_slot = np.full(n_prefix, -1, dtype=np.int32)
        self.dense_slot[long] = np.arange(long.size, dtype=np.int32)
        self.dense[which, suffix] = self.rows[pos] + 1

    def _dense_off(self) -> None:
        self.dense_min_run = -1
        self.dense_slot = np.zeros(0, dtype=np.int32)
        self.dense = np.zeros((0, 0), dtype=np.int32)

    def _dense_insert(self, keys: I64, rows: I64) -> None:
        assert self.shift is not None
        if int(rows.max()) >= _DENSE_ROW_LIMIT:
            self._dense_off()
            return
        n_prefix = self.ptr.size - 1
        if self.dense_slot.size < n_prefix:  # new prefixes start uncovered
            grown = np.full(n_prefix, -1, dtype=np.int32)
            grown[: self.dense_slot.size] = self.dense_slot
            self.dense_slot = grown
        mask = (1 << self.shift) - 1
        prefix = keys >> self.shift
        inside = prefix < n_prefix
        prefix, suffix, rows = prefix[inside], keys[inside] & mask, rows[inside]
        slot = self.dense_slot[prefix]
        covered = slot >= 0
        width = self.dense_width()
        if (suffix[covered] >= width).any():
            self.refresh_dense()
            return
        self.dense[slot[covered], suffix[covered]] = rows[covered] + 1
        # prefixes whose run grew past the threshold: cover them while rows are free
        grown_long = np.unique(prefix[~covered])
        run = self.ptr[grown_long + 1] - self.ptr[grown_long]
        grown_long = grown_long[run > self.dense_min_run]
        if grown_long.size == 0:
            return
        used = int(self.dense_slot.max(initial=-1)) + 1
        which, pos = expand_ranges(self.ptr[grown_long], self.ptr[grown_long + 1])
        run_suffix = self.keys[pos] & mask
        budget = DENSE_BUDGET_BYTES // (4 * max(width, 64))
        if used + grown_long.size > len(self.dense) or (run_suffix >= width).any():
            if len(self.dense) < budget or (run_suffix >= width).any():
                self.refresh_dense()
            return  # at the budget: these runs stay on the sorted keys
        self.dense_slot[grown_long] = np.arange(used, used + grown_long.size, dtype=np.int32)
        self.dense[used + which, run_suffix] = self.rows[pos] + 1
