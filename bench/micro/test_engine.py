"""Engine micro-benchmarks at the reference scale (large by default).

- ``test_quote_50_lines_*`` / ``test_quote_1000_lines_*``: one ``engine.quote.quote``
  call (prices + availability over the cart's region) for a seeded cart of distinct SKUs
  drawn with Zipf popularity; the benchmark cycles through 64 (50-line) or 8 (1,000-line)
  carts so caches see a realistic mix.
- ``test_quote_50_lines_*_cold``: the same quote where every round is a new seeded cart
  and a 64 MB buffer is written first, which pushes the state's cache lines out of the CPU
  caches: no code, slot or row of the cart was read recently (setup not timed). Every
  page of the state is mapped once before the rounds, as in a worker that has served a
  while; the first touch of a page is not what this measures.
- ``test_apply_100k_inventory_deltas_*``: 100,000 inventory changes (60% absolute sets,
  40% adjusts with event ids) applied as one batch through the columnar apply functions.
  The inventory pages are made private first: a snapshot is mapped copy-on-write, so the
  first write to each 4 KB page costs a fault and a copy, which would otherwise dominate
  the first rounds (about 280 ms for the first batch, falling towards steady state as
  pages are touched). The multi-process writer keeps its state in shared files it wrote
  itself and never pays these faults; the steady state is what this measures.
- ``test_snapshot_load_*``: ``engine.snapshot.load`` of the scale's snapshot (memory-mapped).
- ``test_reference_model_quote_1000_lines``: the same kind of 1,000-line cart through the
  plain-Python reference model of ``bench/reference.py``, so the speed-up is a ratio
  measured in the same run.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.datagen import Workload
from engine import snapshot
from engine.inventory_apply import adjust_positions, set_positions
from engine.quote import quote
from engine.shared import shared_paths
from engine.state import State


def _carts(extract_dir: Path, lines: int, count: int, seed: int) -> list[Any]:
    workload = Workload.from_extract(extract_dir, seed=seed)
    return [workload.cart(lines) for _ in range(count)]


def _quote(state: State, cart: Any) -> Any:
    return quote(
        state,
        account=cart.account,
        skus=cart.skus,
        qty=cart.qty,
        uoms=cart.uoms,
        region=cart.region,
        pricing_date=cart.pricing_date,
    )


@pytest.fixture(scope="module")
def carts_50(extract_dir: Path) -> list[Any]:
    return _carts(extract_dir, 50, 64, seed=1)


@pytest.fixture(scope="module")
def carts_1000(extract_dir: Path) -> list[Any]:
    return _carts(extract_dir, 1000, 8, seed=2)


def test_quote_50_lines(benchmark: Any, state: State, carts_50: list[Any], scale: str) -> None:
    benchmark.name = f"test_quote_50_lines_{scale}"
    cycle = itertools.cycle(carts_50)
    for cart in carts_50:  # touch the pages the carts need once, as a serving process has
        _quote(state, cart)
    result = benchmark(lambda: _quote(state, next(cycle)))
    assert result.status.size == 50


def test_quote_1000_lines(benchmark: Any, state: State, carts_1000: list[Any], scale: str) -> None:
    benchmark.name = f"test_quote_1000_lines_{scale}"
    cycle = itertools.cycle(carts_1000)
    for cart in carts_1000:
        _quote(state, cart)
    result = benchmark(lambda: _quote(state, next(cycle)))
    assert result.status.size == 1000


def test_quote_50_lines_cold(benchmark: Any, state: State, extract_dir: Path, scale: str) -> None:
    benchmark.name = f"test_quote_50_lines_{scale}_cold"
    workload = Workload.from_extract(extract_dir, seed=7)
    # A served state has been read for a while: its pages are mapped in the worker. Map
    # every page once here (one read per 4 KB page), so a round pays for the CPU caches
    # and TLB, not for the first touch of a memory-mapped page (a minor fault each, about
    # as much as the rest of the quote: see README).
    touched = 0
    for _, array in shared_paths(state):
        if array.size:
            touched += int(array.reshape(-1).view(np.uint8)[::4096].sum(dtype=np.int64))
    # larger than any last-level cache here: writing it pushes the state's lines out
    evict = np.zeros(64 << 20, dtype=np.uint8)

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        np.add(evict, 1, out=evict)  # touches every line: nothing of the last round stays cached
        return (workload.cart(50),), {}

    result = benchmark.pedantic(lambda cart: _quote(state, cart), setup=setup, rounds=200)
    assert result.status.size == 50


def test_apply_100k_inventory_deltas(benchmark: Any, state: State, scale: str) -> None:
    benchmark.name = f"test_apply_100k_inventory_deltas_{scale}"
    rng = np.random.default_rng(5)
    n_sku, n_loc = state.n_skus, state.n_locations
    rounds = itertools.count(1)
    base_version = 10**9
    inv = state.inventory
    for name in inv.FIELDS:  # one write per 4 KB page (512 int64): copy-on-write done now
        np.reshape(getattr(inv, name), -1, copy=False)[::512] += 0

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        r = next(rounds)
        version = base_version + r * 200_000 + np.arange(100_000, dtype=np.int64)
        sku = rng.integers(0, n_sku, 100_000)
        loc = rng.integers(0, n_loc, 100_000)
        qty = rng.integers(0, 1000, 100_000)
        ids = [f"bench-{r}-{i}" for i in range(40_000)]
        return (sku, loc, version, qty, ids), {}

    def apply(sku: Any, loc: Any, version: Any, qty: Any, ids: list[str]) -> None:
        sets, adjusts = slice(0, 60_000), slice(60_000, 100_000)
        set_positions(state, sku[sets], loc[sets], version[sets], qty[sets], qty[sets] // 10,
                      np.zeros(60_000, dtype=np.int64))  # fmt: skip
        adjust_positions(state, sku[adjusts], loc[adjusts], version[adjusts], qty[adjusts] - 500,
                         np.zeros(40_000, dtype=np.int64), ids)  # fmt: skip

    benchmark.pedantic(apply, setup=setup, rounds=15, warmup_rounds=1)


def test_snapshot_load(benchmark: Any, snapshot_root: Path, scale: str) -> None:
    benchmark.name = f"test_snapshot_load_{scale}"
    found = snapshot.latest(snapshot_root)
    assert found is not None
    loaded = benchmark.pedantic(lambda: snapshot.load(found), rounds=5, warmup_rounds=1)
    assert loaded.n_skus > 0
