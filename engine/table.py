"""Growable struct-of-arrays tables and sorted key indexes, the storage under the state.

A :class:`Columns` holds named numpy columns with spare capacity, so appends are amortised
O(1) per row and a hot path reads plain arrays. A :class:`KeyIndex` keeps the row ids of a
table sorted by an ``int64`` key, so a batch of lookups is one ``searchsorted``; inserting
k new keys into n is one O(n + k log k) merge, not a re-sort.

Both expose their arrays by name for snapshots (:meth:`Columns.arrays`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Column", "Columns", "KeyIndex"]

I64 = npt.NDArray[np.int64]


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
        """Append ``count`` rows holding fill values; returns their row ids."""
        start = self.n
        self.ensure(start + count)
        self.n = start + count
        return np.arange(start, start + count, dtype=np.int64)

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
    """Row ids sorted by an ``int64`` key: ``keys[i]`` is the key of row ``rows[i]``."""

    def __init__(self) -> None:
        self.keys: I64 = np.zeros(0, dtype=np.int64)
        self.rows: I64 = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.keys.size)

    def find(self, keys: I64) -> I64:
        """Row of each key, or -1 where absent; O(m log n)."""
        pos = np.searchsorted(self.keys, keys)
        pos_clipped = np.minimum(pos, max(self.keys.size - 1, 0))
        if self.keys.size == 0:
            return np.full(np.shape(keys), -1, dtype=np.int64)
        hit = self.keys[pos_clipped] == keys
        return np.where(hit, self.rows[pos_clipped], -1)

    def ranges(self, low: I64, high: I64) -> tuple[I64, I64]:
        """Positions [start, end) of keys in [low, high) for each pair; O(m log n)."""
        return np.searchsorted(self.keys, low), np.searchsorted(self.keys, high)

    def insert(self, keys: I64, rows: I64) -> None:
        """Add new (key, row) pairs; keys must not already be present. O(n + k log k)."""
        if keys.size == 0:
            return
        order = np.argsort(keys, kind="stable")
        keys, rows = keys[order], rows[order]
        pos = np.searchsorted(self.keys, keys)
        self.keys = np.insert(self.keys, pos, keys)
        self.rows = np.insert(self.rows, pos, rows)

    def rebuild(self, keys: I64) -> None:
        """Index rows 0..len(keys)-1 by ``keys`` from scratch (bulk loads); O(n log n)."""
        order = np.argsort(keys, kind="stable")
        self.keys = np.ascontiguousarray(keys[order])
        self.rows = order.astype(np.int64)
