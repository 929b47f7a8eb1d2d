"""The interpolation-guided search the ATP step uses over the inbound schedule agrees with
a plain binary search (and numpy's) on every spread of keys, even or not."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine._kernels import _quote


def _keys(draw_sizes: list[int], spread: int) -> np.ndarray:
    """Sorted keys ``sku << 32 | low`` with the given number of receipts per SKU id."""
    rng = np.random.default_rng(len(draw_sizes) * 7 + spread)
    keys = []
    for sku, count in enumerate(draw_sizes):
        sku_id = sku * spread
        keys.extend((sku_id << 32) | int(low) for low in rng.integers(0, 1 << 32, count))
    return np.array(sorted(keys), dtype=np.int64)


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 300), min_size=0, max_size=60),
    spread=st.sampled_from([1, 2, 1000]),
    probes=st.lists(st.integers(-5, 70_000), min_size=1, max_size=20),
)
def test_the_guided_search_finds_what_a_binary_search_finds(sizes, spread, probes):
    keys = _keys(sizes, spread)
    for sku in probes:
        for key in (sku << 32, (sku << 32) + 1, ((sku + 1) << 32) - 1):
            expected = int(np.searchsorted(keys, key, side="left"))
            assert _quote.lower_bound(keys, key, False) == expected
            assert _quote.lower_bound(keys, key, True) == expected


def test_a_heavily_skewed_schedule_is_searched_exactly():
    # one SKU holds almost every receipt: interpolation guesses badly, the answer is exact
    keys = np.sort(
        np.concatenate([np.full(100_000, 5 << 32) + np.arange(100_000), np.arange(10) << 40])
    ).astype(np.int64)
    for key in (0, 5 << 32, (5 << 32) + 99_999, 6 << 32, 1 << 40, (9 << 40) + 1, 1 << 62):
        assert _quote.lower_bound(keys, key, True) == int(np.searchsorted(keys, key))
