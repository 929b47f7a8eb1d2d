"""The key index's per-prefix offsets stay right through merges (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

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
