"""The key index's per-prefix offsets and dense rows stay right through merges (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import table
from engine.table import KeyIndex

SHIFT = 8
keys_strategy = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 255)), unique=True, max_size=60
).map(lambda pairs: [(p << SHIFT) | low for p, low in pairs])


@settings(max_examples=300, deadline=None)
@given(batches=st.lists(keys_strategy, max_size=5), probes=st.lists(st.integers(0, 50)))
def test_prefix_ranges_after_merges_equal_a_binary_search(
    batches: list[list[int]], probes: list[int]
) -> None:
    index = KeyIndex(SHIFT, prefix_limit=32)  # prefixes 32.. are kept but not offset
    seen: set[int] = set()
    for batch in batches:
        fresh = np.array([k for k in batch if k not in seen], dtype=np.int64)
        seen.update(fresh.tolist())
        index.insert(fresh, np.arange(len(seen) - fresh.size, len(seen), dtype=np.int64))
    prefix = np.array(probes, dtype=np.int64)
    start, end = index.prefix_ranges(prefix)
    low = np.searchsorted(index.keys, prefix << SHIFT)
    high = np.searchsorted(index.keys, (prefix + 1) << SHIFT)
    inside = prefix < 32
    assert (start[inside] == low[inside]).all() and (end[inside] == high[inside]).all()
    assert (start[~inside] == end[~inside]).all()  # beyond the limit: not offset, empty
    absent = 41 << SHIFT  # prefix 41: beyond what keys_strategy generates, never inserted
    wanted = np.array([*sorted(seen), absent], dtype=np.int64)
    found = index.find(wanted)
    by_prefix = index.find_by_prefix(np.where(wanted >> SHIFT < 32, wanted, 0))
    assert (found[:-1] >= 0).all() and found[-1] == -1
    assert ((by_prefix == found) | (wanted >> SHIFT >= 32)).all()


def _dense_lookup(index: KeyIndex, keys: np.ndarray) -> np.ndarray:
    """Rows of ``keys`` through the dense rows alone; -2 where the prefix is not covered."""
    prefix, suffix = keys >> SHIFT, keys & ((1 << SHIFT) - 1)
    slot = np.full(keys.shape, -1, dtype=np.int64)
    inside = prefix < index.dense_slot.size
    slot[inside] = index.dense_slot[prefix[inside]]
    found = np.full(keys.shape, -2, dtype=np.int64)
    covered = np.nonzero(slot >= 0)[0]
    in_width = suffix[covered] < index.dense_width()
    found[covered] = -1  # covered, but no column: the invariant says no key there
    at = covered[in_width]
    found[at] = index.dense[slot[at], suffix[at]].astype(np.int64) - 1
    return found


dense_batches = st.lists(
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 255)), unique=True, max_size=40),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(batches=dense_batches, min_run=st.integers(0, 4), budget_rows=st.sampled_from([2, 1000]))
def test_dense_rows_of_long_runs_agree_with_the_sorted_keys_through_inserts(
    batches: list[list[tuple[int, int]]], min_run: int, budget_rows: int
) -> None:
    # a tiny budget exercises the "no free rows, stay on the sorted keys" path
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(table, "DENSE_BUDGET_BYTES", budget_rows * 4 * 320)
        _check_dense_through_inserts(batches, min_run, budget_rows)


def _check_dense_through_inserts(
    batches: list[list[tuple[int, int]]], min_run: int, budget_rows: int
) -> None:
    index = KeyIndex(SHIFT, prefix_limit=32, dense_min_run=min_run)
    seen: set[int] = set()
    for batch in batches:
        fresh = np.array(
            [k for k in ((p << SHIFT) | s for p, s in batch) if k not in seen], dtype=np.int64
        )
        seen.update(fresh.tolist())
        index.insert(fresh, np.arange(len(seen) - fresh.size, len(seen), dtype=np.int64))
        # every pair of a covered prefix, present or not, reads as the sorted keys say
        every = (np.arange(13)[:, None] << SHIFT | np.arange(256)[None, :]).ravel()
        dense = _dense_lookup(index, every)
        covered = dense != -2
        assert (dense[covered] == index.find(every[covered])).all()
        runs = np.diff(index.ptr)
        long = np.nonzero(runs > min_run)[0]
        if budget_rows >= 1000:  # room for all: every long run is covered
            assert (index.dense_slot[long] >= 0).all()
    rebuilt = KeyIndex(SHIFT, prefix_limit=32, dense_min_run=min_run)
    if seen:
        keys = np.array(sorted(seen), dtype=np.int64)
        rebuilt.rebuild(keys)
        every = (np.arange(13)[:, None] << SHIFT | np.arange(256)[None, :]).ravel()
        dense = _dense_lookup(rebuilt, every)
        covered = dense != -2
        assert (dense[covered] == rebuilt.find(every[covered])).all()


def test_a_new_contract_beyond_the_dense_width_rebuilds_the_rows_wider() -> None:
    index = KeyIndex(SHIFT, prefix_limit=32, dense_min_run=1)
    index.insert(np.array([(3 << SHIFT) | 1, (3 << SHIFT) | 2], dtype=np.int64), np.array([0, 1]))
    assert index.dense_slot[3] >= 0 and index.dense_width() == 64
    index.insert(np.array([(3 << SHIFT) | 200], dtype=np.int64), np.array([2]))
    assert index.dense_width() > 200
    assert index.dense[index.dense_slot[3], 200] == 3  # row 2, stored plus one
    assert index.dense[index.dense_slot[3], 1] == 1


def test_rows_beyond_what_a_dense_cell_holds_turn_the_dense_rows_off(monkeypatch) -> None:
    monkeypatch.setattr(table, "_DENSE_ROW_LIMIT", 10)
    index = KeyIndex(SHIFT, prefix_limit=32, dense_min_run=1)
    index.insert(np.array([(3 << SHIFT) | 1, (3 << SHIFT) | 2], dtype=np.int64), np.array([0, 1]))
    assert index.dense_slot[3] >= 0
    index.insert(np.array([(3 << SHIFT) | 5], dtype=np.int64), np.array([10]))
    assert index.dense_slot.size == 0 and index.dense_min_run == -1  # off, not wrapped
    assert index.find(np.array([(3 << SHIFT) | 5], dtype=np.int64)).tolist() == [10]


def test_rows_appended_after_the_row_count_went_down_hold_the_fill_values() -> None:
    columns = table.Columns({"live": table.Column(np.bool_, True), "v": table.Column(np.int64, -1)})
    rows = columns.append_blank(4)
    columns["live"][rows] = False
    columns["v"][rows] = 7
    columns.n = 1  # a compaction keeps the arrays and lowers the count
    again = columns.append_blank(3)
    assert again.tolist() == [1, 2, 3]
    assert columns["live"][again].tolist() == [True, True, True]
    assert columns["v"][again].tolist() == [-1, -1, -1]
