"""The same 1,000-line quote through the engine and through the plain-Python reference
model (bench/reference.py), in one run, so the speed-up is a ratio on identical input.

The reference model keeps every event in dicts, so it cannot hold the large scale; both
sides get one seeded mid-size world built from events (20,000 SKUs, 8 locations, 500
accounts, 200 contracts with 40,000 lines, LIST prices with breaks, stock). Both answers
are compared before timing.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import numpy as np
import pytest

from bench.reference import Reference
from engine import events as ev
from engine.deltas import apply_batch
from engine.quote import quote
from engine.state import State

SKUS, LOCATIONS, ACCOUNTS, CONTRACTS, LINES = 20_000, 8, 500, 200, 40_000
DAY = 20_000


def _world(seed: int = 3) -> list[Any]:
    rng = random.Random(seed)
    out: list[Any] = [ev.LocationUpsert(location=f"L{i}", version=1) for i in range(LOCATIONS)]
    out += [ev.ProductGroupUpsert(product_group=f"G{g}", version=1) for g in range(50)]
    for s in range(SKUS):
        out.append(
            ev.ItemUpsert(sku=f"S{s:05d}", version=1, uoms={"BX": 12, "CS": 144},
                          product_group=f"G{s % 50}", replacement_cost_micros=500_000)
        )  # fmt: skip
        breaks = (
            (0, rng.randrange(1_000_000, 50_000_000)),
            (24, rng.randrange(900_000, 1_000_000)),
        )
        out.append(ev.PriceSet(price_list="LIST", currency="USD", sku=f"S{s:05d}", version=1,
                               tiers=breaks))  # fmt: skip
        for loc in rng.sample(range(LOCATIONS), 2):
            out.append(ev.InventorySet(sku=f"S{s:05d}", location=f"L{loc}", version=1,
                                       on_hand=rng.randrange(0, 500)))  # fmt: skip
    out += [ev.AccountUpsert(account=f"A{a:03d}", version=1, price_groups=(f"PG{a % 10}",))
            for a in range(ACCOUNTS)]  # fmt: skip
    for c in range(CONTRACTS):
        assign: dict[str, Any] = (
            {"price_groups": (f"PG{c % 10}",)}
            if c % 4 == 0
            else {"accounts": (f"A{c % ACCOUNTS:03d}",)}
        )
        out.append(ev.ContractUpsert(contract=f"K{c:03d}", version=1, priority=c % 3, **assign))
    for i in range(LINES):
        kind = ("NET", "DISCOUNT", "COST_PLUS")[i % 3]
        value = rng.randrange(500_000, 40_000_000) if kind == "NET" else rng.randrange(100, 3000)
        target: dict[str, Any] = (
            {"sku": f"S{rng.randrange(SKUS):05d}"} if i % 20 else {"product_group": f"G{i % 50}"}
        )
        out.append(ev.ContractLineSet(contract=f"K{i % CONTRACTS:03d}", version=1, kind=kind,
                                      tiers=((0, value),), **target))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def worlds() -> tuple[State, Reference, list[Any]]:
    events = _world()
    state = State()
    assert not apply_batch(state, events).rejected
    reference = Reference()
    assert not reference.apply_batch(events)
    rng = random.Random(9)
    carts = []
    for _ in range(4):
        skus = rng.sample(range(SKUS), 1000)
        lines = [(f"S{s:05d}", rng.choice((1, 5, 30)), rng.choice(("", "BX"))) for s in skus]
        carts.append((f"A{rng.randrange(ACCOUNTS):03d}", lines))
    return state, reference, carts


def _engine(state: State, cart: Any) -> Any:
    account, lines = cart
    return quote(state, account=account, skus=[s for s, _, _ in lines],
                 qty=np.array([q for _, q, _ in lines]), uoms=[u for _, _, u in lines],
                 pricing_date=DAY)  # fmt: skip


def _reference(reference: Reference, cart: Any) -> Any:
    account, lines = cart
    return reference.quote(account=account, lines=[(s, q, u or None) for s, q, u in lines],
                           pricing_date=DAY)  # fmt: skip


def test_engine_and_reference_agree_on_the_benchmark_carts(worlds: Any) -> None:
    state, reference, carts = worlds
    for cart in carts:
        engine_answer = _engine(state, cart)
        expected = _reference(reference, cart)
        assert engine_answer.prices is not None
        got = engine_answer.prices.extended_micros.tolist()
        want = [line.price.extended_micros if line.price else 0 for line in expected]
        assert got == want


def test_quote_1000_lines_engine_midsize(benchmark: Any, worlds: Any) -> None:
    state, _, carts = worlds
    cycle = itertools.cycle(carts)
    benchmark(lambda: _engine(state, next(cycle)))


def test_quote_1000_lines_reference_model_midsize(benchmark: Any, worlds: Any) -> None:
    _, reference, carts = worlds
    cycle = itertools.cycle(carts)
    benchmark.pedantic(lambda: _reference(reference, next(cycle)), rounds=8, warmup_rounds=1)
