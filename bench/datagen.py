"""Seeded generator of realistic distributor datasets, written as an ERP-shaped bulk extract.

:func:`generate` writes one Parquet file per table (the tables of
``engine.bulk.EXTRACT_SCHEMA``) plus ``extract.json`` (scale, seed, reference date, extract
version, row counts) at the reference scales of DESIGN §10. Everything is drawn with numpy
from per-table random streams derived from the seed, so a seed gives the same files on
every run, whatever else changes. The large scale (1M SKUs, 10M contract lines) is
generated in chunks written through ``pyarrow.parquet.ParquetWriter``: memory stays
bounded by a chunk plus the per-SKU arrays.

What the data looks like (the shape benchmarks depend on):

- a 2–3 level product-group tree; items with 2–4 UoMs (EA base, BX = 6…50, CS = BX × 4…12,
  PL = CS × 20…50; wire by the foot with rolls and spools), sell rules, replacement cost
  (int micros), lead times, and 5% DISCONTINUED/BLOCKED;
- a Zipf-like popularity over SKUs (a seeded permutation), which also drives which SKUs are
  stocked (about 20% of SKU-locations), covered by contracts and asked for in carts;
- LIST prices in USD for every SKU (and in CAD/EUR when accounts use them), a few
  account-specific lists for a popular subset, 1–5 breaks, price UoM sometimes BX/CS;
- accounts with parent chains (up to 3 ancestors), price groups, disclosure policies;
- contracts assigned to accounts, price groups or ALL (promotions), some expired or not yet
  valid, with NET/DISCOUNT/COST_PLUS lines on SKUs or product groups and 1–5 breaks;
- stock with some oversold positions, and inbound receipts (some past due).

Money is int64 micros throughout: prices are whole cents, computed with integer arithmetic
from the drawn cost. :class:`Workload` samples carts (1–200 lines, median ~12) for
benchmarks and load tests from a generated extract.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "REFERENCE_DATE",
    "SCALES",
    "Cart",
    "Scale",
    "Workload",
    "generate",
]

I64 = npt.NDArray[np.int64]
Progress = Callable[[str, int, int], None]  # (table, rows written, rows expected)

REFERENCE_DATE = dt.date(2025, 3, 3)  # "today" of every dataset: validity and dates hinge on it
EXTRACT_VERSION = 1_000_000  # the source change number the extract is consistent with
CHUNK_LINES = 500_000
_EPOCH = dt.date(1970, 1, 1)
_TODAY = (REFERENCE_DATE - _EPOCH).days
_CENT = 10_000  # micros per cent
_MAX_PRICE = 10**12  # keep prices per price UoM well inside engine.validate.MAX_PRICE_MICROS
_FAMILIES = (
    "ELEC", "PLMB", "HVAC", "FAST", "TOOL", "SAFE", "JANI", "PACK", "LITE", "PWRT", "ABRV",
    "HYDR",
)  # fmt: skip
_PRICE_GROUPS = (
    "CONTRACTOR", "INDUSTRIAL", "GOVERNMENT", "EDUCATION", "OEM", "MRO", "RESELLER",
    "HEALTHCARE", "UTILITY", "MARINE",
)  # fmt: skip
_FX = {"USD": (1, 1), "CAD": (136, 100), "EUR": (92, 100)}  # list price conversion, exact


@dataclass(frozen=True, slots=True)
class Scale:
    """One reference scale (DESIGN §10) and the derived sizes of the smaller tables."""

    name: str
    skus: int
    locations: int
    accounts: int
    contracts: int
    contract_lines: int
    regions: int
    families: int  # top-level product groups
    fanout: int  # children per group below the top
    price_groups: int
    special_lists: int  # account-specific price lists


SCALES: dict[str, Scale] = {
    "tiny": Scale("tiny", 1_000, 4, 50, 20, 2_000, 2, 4, 3, 4, 2),
    "small": Scale("small", 50_000, 16, 1_000, 300, 200_000, 4, 8, 6, 12, 8),
    "large": Scale("large", 1_000_000, 64, 20_000, 5_000, 10_000_000, 8, 12, 13, 40, 40),
}


def _rng(seed: int, stream: str) -> np.random.Generator:
    """An independent random stream per table, so each table depends only on the seed."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


def _zipf_cdf(n: int, exponent: float, offset: float = 1.0) -> npt.NDArray[np.float64]:
    weights = 1.0 / (np.arange(n, dtype=np.float64) + offset) ** exponent
    cdf: npt.NDArray[np.float64] = np.cumsum(weights)
    normalised: npt.NDArray[np.float64] = cdf / cdf[-1]
    return normalised


def _draw(rng: np.random.Generator, cdf: npt.NDArray[np.float64], size: int) -> I64:
    """Ranks drawn from a cumulative distribution (rank 0 the most likely)."""
    ranks = np.searchsorted(cdf, rng.random(size), side="right")
    return np.minimum(ranks, cdf.size - 1).astype(np.int64)


def _pick(rng: np.random.Generator, choices: Any, p: Any, size: int) -> Any:
    return rng.choice(np.asarray(choices), size=size, p=np.asarray(p) / np.sum(p))


def _cents(micros: I64) -> I64:
    """Round micros to whole cents, half up (prices are quoted in cents)."""
    return (micros + _CENT // 2) // _CENT * _CENT


def _codes(values: list[str]) -> pa.Array:
    return pa.array(values, type=pa.string())


def _coded(dictionary: pa.Array, indices: I64, null: Any = None) -> pa.DictionaryArray:
    """A dictionary column: the codes once per row group, rows as int32 indices.

    Every chunk of a file uses the same dictionary (the whole SKU list, say), so a reader
    merges row groups without rehashing; row groups are large to keep its copies few.
    """
    mask = None if null is None else np.asarray(null, dtype=np.bool_)
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32), mask=mask), dictionary)


def _dates(days: I64, null: Any = None) -> pa.Array:
    mask = None if null is None else np.asarray(null)
    return pa.array(days.astype(np.int32), type=pa.int32(), mask=mask).cast(pa.date32())


class _Writer:
    """Parquet files written table by table, chunk by chunk, with row counts for the manifest.

    Small chunks are buffered up to ``ROW_GROUP`` rows, so every row group is large.
    """

    ROW_GROUP = 1 << 20

    def __init__(self, out: Path, progress: Progress | None) -> None:
        self.out = out
        self.progress = progress
        self.rows: dict[str, int] = {}
        self._open: dict[str, pq.ParquetWriter] = {}
        self._pending: dict[str, list[pa.Table]] = {}

    def write(self, name: str, columns: dict[str, Any], expected: int = 0) -> None:
        table = pa.table(columns)
        pending = self._pending.setdefault(name, [])
        pending.append(table)
        self.rows[name] = self.rows.get(name, 0) + table.num_rows
        if sum(t.num_rows for t in pending) >= self.ROW_GROUP:
            self._flush(name)
        if self.progress is not None:
            self.progress(name, self.rows[name], max(expected, self.rows[name]))

    def _flush(self, name: str) -> None:
        pending = self._pending.pop(name, [])
        if not pending:
            return
        table = pa.concat_tables(pending)
        writer = self._open.get(name)
        if writer is None:
            writer = pq.ParquetWriter(self.out / f"{name}.parquet", table.schema)
            self._open[name] = writer
        writer.write_table(table, row_group_size=self.ROW_GROUP)

    def close(self) -> None:
        for name in list(self._pending):
            self._flush(name)
        for writer in self._open.values():
            writer.close()
        self._open.clear()


# ---------------------------------------------------------------------------------------
# Master data


@dataclass
class _Catalog:
    """Per-SKU arrays other tables are drawn from (kept in memory: O(SKUs))."""

    codes: list[str]
    dictionary: pa.Array
    group: I64  # leaf product group id
    uom_count: I64
    uom_code: npt.NDArray[np.int8]  # (n, 4) index into _UOMS, -1 unused
    uom_factor: I64  # (n, 4)
    cost: I64  # micros per base unit, -1 none
    list_price: I64  # micros per base unit
    popularity: I64  # sku → rank (0 = most popular)
    by_rank: I64  # rank → sku


_UOMS = ("EA", "BX", "CS", "PL", "FT", "RL", "SP")


def _groups(scale: Scale, seed: int, w: _Writer) -> tuple[list[str], I64]:
    """The product-group tree; returns (all codes, ids of the leaf groups)."""
    rng = _rng(seed, "product_groups")
    codes: list[str] = []
    parents: list[str | None] = []
    leaves: list[int] = []
    for family in _FAMILIES[: scale.families]:
        codes.append(family)
        parents.append(None)
        for m in range(int(rng.integers(max(2, scale.fanout // 2), scale.fanout + 1))):
            mid = f"{family}-{m + 1:02d}"
            codes.append(mid)
            parents.append(family)
            if rng.random() < 0.25:  # a two-level branch: the mid group is a leaf
                leaves.append(len(codes) - 1)
                continue
            for leaf in range(int(rng.integers(2, scale.fanout + 2))):
                codes.append(f"{mid}-{leaf + 1:02d}")
                parents.append(mid)
                leaves.append(len(codes) - 1)
    w.write("product_groups", {"product_group": _codes(codes), "parent": pa.array(parents)})
    return codes, np.array(leaves, dtype=np.int64)


def _items(scale: Scale, seed: int, w: _Writer, groups: list[str], leaves: I64) -> _Catalog:
    rng = _rng(seed, "items")
    n = scale.skus
    group = leaves[rng.integers(0, leaves.size, n)]
    family = np.array([groups[g][:4] for g in range(len(groups))])[group]
    codes = [f"{f}-{i:07d}" for f, i in zip(family.tolist(), range(1, n + 1), strict=True)]
    by_foot = rng.random(n) < 0.03
    uom_count = _pick(rng, [2, 3, 4], [45, 40, 15], n).astype(np.int64)
    box = _pick(rng, [6, 10, 12, 20, 24, 25, 50], [1, 3, 3, 2, 2, 1, 1], n).astype(np.int64)
    case = box * _pick(rng, [4, 5, 6, 8, 10, 12], [2, 2, 2, 1, 2, 1], n)
    pallet = case * _pick(rng, [20, 40, 48, 50], [1, 2, 2, 1], n)
    roll = _pick(rng, [100, 250, 500, 1000], [2, 2, 3, 1], n).astype(np.int64)
    uom_code = np.full((n, 4), -1, dtype=np.int8)
    uom_factor = np.zeros((n, 4), dtype=np.int64)
    uom_code[:, 0] = np.where(by_foot, 4, 0)
    uom_factor[:, 0] = 1
    case_only = (uom_count == 2) & (rng.random(n) < 0.3)
    uom_code[:, 1] = np.where(by_foot, 5, np.where(case_only, 2, 1))
    uom_factor[:, 1] = np.where(by_foot, roll, np.where(case_only, case, box))
    third = uom_count >= 3
    uom_code[:, 2] = np.where(third, np.where(by_foot, 6, 2), -1)
    uom_factor[:, 2] = np.where(third, np.where(by_foot, roll * 10, case), 0)
    fourth = uom_count == 4
    uom_code[:, 3] = np.where(fourth, 3, -1)
    uom_factor[:, 3] = np.where(fourth, np.where(by_foot, roll * 40, pallet), 0)

    # Cost: lognormal dollars (median ~$4.50), kept as whole hundredths of a cent.
    cost = (np.exp(rng.normal(1.5, 1.3, n)).clip(0.02, 20_000) * 10_000).astype(np.int64) * 100
    markup_bp = rng.integers(12_500, 22_000, n)  # list = cost × 1.25…2.2
    list_price = np.maximum(_cents(cost * markup_bp // 10_000), _CENT)
    no_cost = rng.random(n) < 0.03
    popularity = np.empty(n, dtype=np.int64)
    by_rank = _rng(seed, "popularity").permutation(n).astype(np.int64)
    popularity[by_rank] = np.arange(n)

    status = _pick(rng, ["ACTIVE", "DISCONTINUED", "BLOCKED"], [95, 4, 1], n)
    sells_boxes = (rng.random(n) < 0.15) & ~by_foot
    moq = np.where(sells_boxes, box, _pick(rng, [0, 1], [80, 20], n))
    lead = rng.integers(2, 46, n)
    no_lead = rng.random(n) < 0.1
    dictionary = _codes(codes)
    group_dictionary = _codes(groups)
    w.write(
        "items",
        {
            "sku": dictionary,
            "description": pa.array([f"{groups[g]} item" for g in group.tolist()]),
            "status": pa.array(status).dictionary_encode(),
            "base_uom": _coded(_codes(list(_UOMS)), uom_code[:, 0].astype(np.int64)),
            "product_group": _coded(group_dictionary, group),
            "min_order_qty": pa.array(moq.astype(np.int64)),
            "order_multiple": pa.array(np.where(sells_boxes, box, 1).astype(np.int64)),
            "replacement_cost_micros": pa.array(cost, mask=no_cost),
            "cost_currency": pa.array(["USD"] * n).dictionary_encode(),
            "lead_time_days": pa.array(lead.astype(np.int64), mask=no_lead),
        },
    )
    used = uom_code >= 0
    rows = np.nonzero(used.ravel())[0]
    w.write(
        "item_uoms",
        {
            "sku": _coded(dictionary, rows // 4),
            "uom": _coded(_codes(list(_UOMS)), uom_code.ravel()[rows].astype(np.int64)),
            "factor": pa.array(uom_factor.ravel()[rows]),
        },
    )
    return _Catalog(
        codes, dictionary, group, uom_count, uom_code, uom_factor,
        np.where(no_cost, -1, cost), list_price, popularity, by_rank,
    )  # fmt: skip


def _locations(scale: Scale, seed: int, w: _Writer) -> list[str]:
    rng = _rng(seed, "locations")
    codes = [f"DC{i + 1:02d}" for i in range(scale.locations)]
    w.write("locations", {"location": _codes(codes), "active": pa.array([True] * len(codes))})
    names = ("EAST", "WEST", "CENTRAL", "SOUTH", "NORTHEAST", "SOUTHWEST", "MIDWEST", "CANADA")
    regions, members, ranks = [], [], []
    per = max(1, scale.locations // scale.regions)
    for r, region in enumerate(names[: scale.regions]):
        own = [i for i in range(scale.locations) if i % scale.regions == r]
        near = [i for i in range(scale.locations) if i not in own]
        near = [int(i) for i in rng.permutation(near)[: per + 2]]
        for rank, location in enumerate([*(int(i) for i in rng.permutation(own)), *near]):
            regions.append(region)
            members.append(codes[location])
            ranks.append(rank + 1)
    w.write(
        "regions",
        {"region": _codes(regions), "location": _codes(members), "rank": pa.array(ranks)},
    )
    return codes


def _price_group_codes(scale: Scale) -> list[str]:
    names = [g if i < len(_PRICE_GROUPS) else f"{g}-{i // len(_PRICE_GROUPS) + 1}"
             for i, g in enumerate(_PRICE_GROUPS * 10)]  # fmt: skip
    return names[: scale.price_groups]


@dataclass
class _Accounts:
    codes: list[str]
    currency: list[str]
    special_lists: list[str]


def _accounts(scale: Scale, seed: int, w: _Writer) -> _Accounts:
    rng = _rng(seed, "accounts")
    n = scale.accounts
    codes = [f"C{i + 1:06d}" for i in range(n)]
    lists = [f"PL-{g[:3]}{i + 1:02d}" for i, g in enumerate(_PRICE_GROUPS * 10)][
        : scale.special_lists
    ]
    groups = _price_group_codes(scale)
    depth = np.zeros(n, dtype=np.int64)
    parent = np.full(n, -1, dtype=np.int64)
    heads = rng.random(n) < 0.3
    for i in range(1, n):
        if not heads[i] and rng.random() < 0.35:
            candidate = int(rng.integers(max(0, i - 200), i))
            if depth[candidate] < 3:
                parent[i], depth[i] = candidate, depth[candidate] + 1
    own_currency = _pick(rng, ["USD", "CAD", "EUR"], [94, 4, 2], n)
    if n >= 50:
        own_currency[[7, 11, 13]] = ["CAD", "CAD", "EUR"]
        parent[[7, 11, 13]] = -1
    currency = own_currency.tolist()
    for i in range(n):  # a chain is one company: children bill in the head's currency
        if parent[i] >= 0:
            currency[i] = currency[int(parent[i])]
    book = np.where(
        (rng.random(n) < 0.15) & (np.array(currency) == "USD"),
        rng.integers(0, max(1, len(lists)), n),
        -1,
    )
    group_count = _pick(rng, [0, 1, 2, 3], [40, 35, 20, 5], n)
    price_groups = [
        [groups[g] for g in rng.choice(len(groups), int(k), replace=False)]
        for k in group_count.tolist()
    ]
    disclosure = _pick(rng, ["EXACT", "CAPPED", "BUCKETS"], [80, 10, 10], n)
    cap = np.where(
        disclosure == "CAPPED",
        _pick(rng, [50, 100, 500], [1, 1, 1], n),
        np.where(disclosure == "BUCKETS", _pick(rng, [5, 10, 25], [1, 1, 1], n), 0),
    )
    w.write(
        "accounts",
        {
            "account": _codes(codes),
            "name": pa.array([f"Customer {i + 1}" for i in range(n)]),
            "parent": pa.array([codes[p] if p >= 0 else None for p in parent.tolist()]),
            "price_list": pa.array([lists[b] if b >= 0 else None for b in book.tolist()]),
            "currency": pa.array(currency).dictionary_encode(),
            "price_groups": pa.array(price_groups, type=pa.list_(pa.string())),
            "disclosure": pa.array(disclosure).dictionary_encode(),
            "disclosure_cap": pa.array(cap.astype(np.int64)),
        },
    )
    return _Accounts(codes, currency, lists)


@dataclass
class _Contracts:
    codes: list[str]
    currency: list[str]
    size: I64  # contract lines per contract
    promotion: npt.NDArray[np.bool_]  # assigned to ALL


def _contracts(scale: Scale, seed: int, w: _Writer, accounts: _Accounts) -> _Contracts:
    rng = _rng(seed, "contracts")
    n = scale.contracts
    codes = [f"CT-{i + 1:06d}" for i in range(n)]
    # Most contracts are negotiated with one account (and its siblings); customer-class
    # (price group) contracts and promotions are few, so an account sees tens of candidate
    # contracts, not hundreds.
    kind = _pick(rng, ["ACCOUNT", "PRICE_GROUP", "ALL", "MIXED"], [90, 5, 1, 4], n)
    by_currency: dict[str, list[int]] = {}
    for i, money in enumerate(accounts.currency):
        by_currency.setdefault(money, []).append(i)
    currency: list[str] = []
    assign_contract: list[int] = []
    assign_to: list[str] = []
    assign_code: list[str | None] = []
    groups = _price_group_codes(scale)
    for c, k in enumerate(kind.tolist()):
        owner = int(rng.integers(0, scale.accounts))
        money = accounts.currency[owner] if k in ("ACCOUNT", "MIXED") else "USD"
        currency.append(money)
        if k in ("ACCOUNT", "MIXED"):
            pool = by_currency[money]
            extra = rng.choice(pool, min(len(pool), int(rng.integers(0, 3))), replace=False)
            for a in dict.fromkeys([owner, *(int(x) for x in extra)]):
                assign_contract.append(c)
                assign_to.append("ACCOUNT")
                assign_code.append(accounts.codes[a])
        if k in ("PRICE_GROUP", "MIXED"):
            for g in rng.choice(len(groups), int(rng.integers(1, 3)), replace=False):
                assign_contract.append(c)
                assign_to.append("PRICE_GROUP")
                assign_code.append(groups[int(g)])
        if k == "ALL":
            assign_contract.append(c)
            assign_to.append("ALL")
            assign_code.append(None)
    start = _TODAY - rng.integers(0, 700, n)
    future = rng.random(n) < 0.05
    start = np.where(future, _TODAY + rng.integers(1, 90, n), start)
    end = start + rng.integers(90, 1100, n)
    evergreen = rng.random(n) < 0.2
    promo = kind == "ALL"
    start = np.where(promo, _TODAY - rng.integers(0, 30, n), start)
    end = np.where(promo, _TODAY + rng.integers(-5, 45, n), end)
    end = np.where(promo, np.maximum(end, start + 1), end)
    priority = np.where(promo, 5, _pick(rng, [0, 10, 20, 50], [60, 25, 10, 5], n))
    w.write(
        "contracts",
        {
            "contract": _codes(codes),
            "currency": pa.array(currency).dictionary_encode(),
            "priority": pa.array(priority.astype(np.int64)),
            "valid_from": _dates(start),
            "valid_to": _dates(end, evergreen & ~promo),
        },
    )
    w.write(
        "contract_assignments",
        {
            "contract": _coded(_codes(codes), np.array(assign_contract, dtype=np.int64)),
            "assign_to": pa.array(assign_to).dictionary_encode(),
            "code": pa.array(assign_code, type=pa.string()),
        },
    )
    # Lines per contract: skewed (a few national accounts carry most lines), exact total.
    weights = np.exp(rng.normal(0, 1.2, n)) * np.where(promo, 0.05, 1.0)  # promotions: short
    cap = max(1, scale.skus // 2)
    size = np.zeros(n, dtype=np.int64)
    remaining = scale.contract_lines
    open_ = np.ones(n, dtype=np.bool_)
    while remaining > 0 and open_.any():
        share = np.floor(weights * open_ / weights[open_].sum() * remaining).astype(np.int64)
        share[np.argmax(weights * open_)] += remaining - share.sum()
        size = np.minimum(size + share, cap)
        remaining = scale.contract_lines - int(size.sum())
        open_ = size < cap
    return _Contracts(codes, currency, size, promo)


# ---------------------------------------------------------------------------------------
# Prices and breaks


def _breaks(
    rng: np.random.Generator, count: I64, coarse: Any, first_min: I64 | None = None
) -> tuple[I64, I64, I64]:
    """Break rows for lines with ``count`` breaks: (row's line, tier index, minimum).

    Minimums start at 0 (or ``first_min``) and grow by steps, smaller for coarse UoMs.
    """
    line = np.repeat(np.arange(count.size), count)
    tier = np.arange(line.size) - np.repeat(np.cumsum(count) - count, count)
    fine_step = _pick(rng, [5, 10, 20, 25, 50, 100], [2, 3, 2, 2, 1, 1], line.size)
    coarse_step = _pick(rng, [1, 2, 5, 10], [3, 3, 2, 1], line.size)
    step = np.where(np.asarray(coarse)[line], coarse_step, fine_step)
    step = np.where(tier == 0, 0, step)
    start = np.zeros(count.size, dtype=np.int64) if first_min is None else first_min
    cumulative = np.cumsum(step)
    offset = np.repeat(cumulative[np.cumsum(count) - count], count)
    return line, tier, start[line] + cumulative - offset


_BREAK_COUNTS = ([1, 2, 3, 4, 5], [55, 20, 12, 8, 5])


def _price_lists(
    scale: Scale, seed: int, w: _Writer, catalog: _Catalog, accounts: _Accounts
) -> None:
    rng = _rng(seed, "price_lists")
    n = scale.skus
    blocks: list[tuple[str, str, I64]] = [("LIST", c, np.arange(n)) for c in _FX
                                          if c in accounts.currency or c == "USD"]  # fmt: skip
    popular = catalog.by_rank[: max(1, n // 5)]
    for book in accounts.special_lists:
        k = max(1, int(n * rng.uniform(0.01, 0.05)))
        blocks.append((book, "USD", np.sort(rng.choice(popular, min(k, popular.size), False))))
    expected = sum(b[2].size for b in blocks)
    books = _codes(sorted({b[0] for b in blocks}))
    book_index = {b: i for i, b in enumerate(books.to_pylist())}
    next_id = 1
    for book, currency, skus in blocks:
        for chunk in np.array_split(skus, max(1, skus.size // 1_000_000 + 1)):
            k = chunk.size
            # price UoM: mostly the base, sometimes the box or the case the item has
            slot = _pick(rng, [0, 1, 2], [80, 12, 8], k)
            numerator, denominator = _FX[currency]
            unit = catalog.list_price[chunk] * numerator // denominator
            fits = catalog.uom_factor[chunk, slot] * unit < _MAX_PRICE
            slot = np.where((catalog.uom_code[chunk, slot] >= 0) & fits, slot, 0)
            factor = catalog.uom_factor[chunk, slot]
            if book != "LIST":
                unit = unit * rng.integers(85, 98, k) // 100
            count = _pick(rng, *_BREAK_COUNTS, k).astype(np.int64)
            line, tier, minimum = _breaks(rng, count, slot > 0)
            price = _cents(unit[line] * factor[line] * (100 - 3 * tier) // 100)
            ids = np.arange(next_id, next_id + k, dtype=np.int64)
            next_id += k
            windowed = (rng.random(k) < 0.3) if book != "LIST" else np.zeros(k, dtype=np.bool_)
            uom_codes = catalog.uom_code[chunk, slot].astype(np.int64)
            w.write(
                "price_lists",
                {
                    "price_id": pa.array(ids),
                    "price_list": _coded(books, np.full(k, book_index[book])),
                    "currency": pa.array([currency] * k).dictionary_encode(),
                    "sku": _coded(catalog.dictionary, chunk),
                    "uom": _coded(_codes(list(_UOMS)), uom_codes),
                    "valid_from": _dates(np.full(k, _TODAY - 60), ~windowed),
                    "valid_to": _dates(np.full(k, _TODAY + 120), ~windowed),
                },
                expected,
            )
            w.write(
                "price_breaks",
                {
                    "price_id": pa.array(ids[line]),
                    "min_qty": pa.array(minimum),
                    "price_micros": pa.array(np.maximum(price, _CENT)),
                },
            )


def _unique_draws(
    rng: np.random.Generator, owner: I64, draw: I64, population: int, pool: I64 | None = None
) -> I64:
    """Make ``draw`` unique per ``owner`` by redrawing repeats uniformly from ``pool``
    (default: 0..population-1), vectorised."""
    draw = draw.copy()
    for _ in range(64):
        key = owner * population + draw
        _, first = np.unique(key, return_index=True)
        repeat = np.ones(key.size, dtype=np.bool_)
        repeat[first] = False
        if not repeat.any():
            return draw
        redraw = rng.integers(0, population if pool is None else pool.size, int(repeat.sum()))
        draw[repeat] = redraw if pool is None else pool[redraw]
    raise RuntimeError("could not draw unique targets")  # pragma: no cover


def _contract_lines(
    scale: Scale, seed: int, w: _Writer, catalog: _Catalog, groups: list[str],
    contracts: _Contracts,
) -> None:  # fmt: skip
    rng = _rng(seed, "contract_lines")
    contract_dictionary = _codes(contracts.codes)
    group_dictionary = _codes(groups)
    uom_dictionary = _codes(list(_UOMS))
    kinds = _codes(["NET", "DISCOUNT", "COST_PLUS"])
    fx_num = np.array([_FX[c][0] for c in contracts.currency], dtype=np.int64)
    fx_den = np.array([_FX[c][1] for c in contracts.currency], dtype=np.int64)
    cdf = _zipf_cdf(scale.skus, 0.8, 10.0)
    below_top = np.array([g for g, code in enumerate(groups) if "-" in code], dtype=np.int64)
    next_line = 1
    starts = np.arange(0, scale.contract_lines, CHUNK_LINES)
    bounds = np.searchsorted(np.cumsum(contracts.size), starts, "right")
    edges = [*dict.fromkeys([0, *bounds.tolist(), len(contracts.codes)])]
    for lo, hi in itertools.pairwise(edges):
        size = contracts.size[lo:hi]
        owner = np.repeat(np.arange(lo, hi), size)
        k = owner.size
        if k == 0:
            continue
        # A few lines price a whole mid or leaf group (never a top family); promotions
        # are SKU deals with at most one group line.
        share = np.where(contracts.promotion[lo:hi], 0.0, 0.02)
        n_groups = np.minimum(np.rint(size * share).astype(np.int64), below_top.size // 2)
        n_groups = np.where(contracts.promotion[lo:hi], np.minimum(size // 20, 1), n_groups)
        in_contract = np.arange(k) - np.repeat(np.cumsum(size) - size, size)
        is_group = in_contract < np.repeat(n_groups, size)
        popular = catalog.by_rank[_draw(rng, cdf, k)]
        target = np.where(rng.random(k) < 0.6, popular, rng.integers(0, scale.skus, k))
        sku_rows = np.nonzero(~is_group)[0]
        target[sku_rows] = _unique_draws(rng, owner[sku_rows], target[sku_rows], scale.skus)
        group_rows = np.nonzero(is_group)[0]
        target[group_rows] = _unique_draws(
            rng,
            owner[group_rows],
            below_top[rng.integers(0, below_top.size, group_rows.size)],
            len(groups),
            below_top,
        )
        kind = np.where(
            is_group,
            _pick(rng, [1, 2], [75, 25], k),
            _pick(rng, [0, 1, 2], [75, 18, 7], k),
        ).astype(np.int64)
        sku = np.where(is_group, 0, target)
        slot = np.where((kind == 0) & ~is_group, _pick(rng, [0, 1, 2], [75, 15, 10], k), 0)
        fits = catalog.uom_factor[sku, slot] * catalog.list_price[sku] < _MAX_PRICE // 2
        slot = np.where((catalog.uom_code[sku, slot] >= 0) & fits, slot, 0)
        uom = np.where(slot > 0, catalog.uom_code[sku, slot], -1).astype(np.int64)
        factor = catalog.uom_factor[sku, slot]
        count = _pick(rng, *_BREAK_COUNTS, k).astype(np.int64)
        threshold = np.where(rng.random(k) < 0.08, _pick(rng, [10, 25, 50], [1, 1, 1], k), 0)
        line, tier, minimum = _breaks(rng, count, slot > 0, threshold)
        net = (
            catalog.list_price[sku] * factor * fx_num[owner] // fx_den[owner]
            * rng.integers(70, 96, k) // 100
        )  # fmt: skip
        net_tier = _cents(net[line] * (100 - 3 * tier) // 100)
        discount = rng.integers(300, 3500, k)[line] + tier * 200
        markup = np.maximum(rng.integers(800, 4000, k)[line] - tier * 200, 100)
        value = np.select(
            [kind[line] == 0, kind[line] == 1], [np.maximum(net_tier, _CENT), discount], markup
        )
        ids = np.arange(next_line, next_line + k, dtype=np.int64)
        next_line += k
        w.write(
            "contract_lines",
            {
                "line_id": pa.array(ids),
                "contract": _coded(contract_dictionary, owner),
                "sku": _coded(catalog.dictionary, sku, is_group),
                "product_group": _coded(group_dictionary, target, ~is_group),
                "kind": _coded(kinds, kind),
                "uom": _coded(uom_dictionary, np.maximum(uom, 0), uom < 0),
                "version": pa.array(rng.integers(1, EXTRACT_VERSION + 1, k)),
            },
            scale.contract_lines,
        )
        w.write(
            "contract_line_breaks",
            {
                "line_id": pa.array(ids[line]),
                "min_qty": pa.array(minimum),
                "value": pa.array(value),
            },
        )


# ---------------------------------------------------------------------------------------
# Inventory


def _location_chunks(n_locations: int, skus: int) -> Iterator[list[int]]:
    per = max(1, 2_000_000 // max(skus // 5, 1))
    for start in range(0, n_locations, per):
        yield list(range(start, min(n_locations, start + per)))


def _stock(scale: Scale, seed: int, w: _Writer, catalog: _Catalog, locations: list[str]) -> None:
    rng = _rng(seed, "stock")
    n = scale.skus
    hot = (1.0 - catalog.popularity / n) ** 3  # 1 for the most popular SKU, mean 1/4
    size = rng.uniform(0.7, 1.3, len(locations))
    size /= size.mean()
    dictionary = _codes(locations)
    expected = int(0.2 * n * len(locations))
    for chunk in _location_chunks(len(locations), n):
        parts: list[dict[str, I64]] = []
        for location in chunk:
            stocked = np.nonzero(rng.random(n) < (0.02 + 0.72 * hot) * size[location])[0]
            k = stocked.size
            on_hand = rng.poisson(5 + 500 * hot[stocked] ** 4).astype(np.int64)
            allocated = (on_hand * rng.uniform(0, 0.4, k)).astype(np.int64)
            oversold = rng.random(k) < 0.02
            allocated = np.where(oversold, on_hand + rng.integers(1, 50, k), allocated)
            safety = np.where(rng.random(k) < 0.3, on_hand // 10, 0)
            parts.append(
                {
                    "sku": stocked,
                    "location": np.full(k, location, dtype=np.int64),
                    "on_hand": on_hand,
                    "allocated": allocated,
                    "safety_stock": safety.astype(np.int64),
                }
            )
        joined = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
        w.write(
            "stock",
            {
                "sku": _coded(catalog.dictionary, joined["sku"]),
                "location": _coded(dictionary, joined["location"]),
                "on_hand": pa.array(joined["on_hand"]),
                "allocated": pa.array(joined["allocated"]),
                "safety_stock": pa.array(joined["safety_stock"]),
            },
            expected,
        )


def _inbound(scale: Scale, seed: int, w: _Writer, catalog: _Catalog, locations: list[str]) -> None:
    rng = _rng(seed, "inbound")
    n = scale.skus
    dictionary = _codes(locations)
    for chunk in _location_chunks(len(locations), n):
        parts: list[tuple[I64, I64]] = []
        for place in chunk:
            cells = np.nonzero(rng.random(n) < 0.01)[0]
            parts.append((cells, np.full(cells.size, place, dtype=np.int64)))
        sku = np.concatenate([p[0] for p in parts])
        location = np.concatenate([p[1] for p in parts])
        count = _pick(rng, [1, 2, 3], [60, 30, 10], sku.size).astype(np.int64)
        rows = np.repeat(np.arange(sku.size), count)
        k = rows.size
        late = rng.random(k) < 0.05  # a few receipts are past due
        date = _TODAY + np.where(late, -rng.integers(1, 4, k), rng.integers(1, 61, k))
        case = catalog.uom_factor[sku[rows], np.minimum(catalog.uom_count[sku[rows]] - 1, 2)]
        qty = case * rng.integers(1, 20, k)
        w.write(
            "inbound",
            {
                "sku": _coded(catalog.dictionary, sku[rows]),
                "location": _coded(dictionary, location[rows]),
                "expected_date": _dates(date),
                "qty": pa.array(qty.astype(np.int64)),
            },
        )


# ---------------------------------------------------------------------------------------
# Entry point


def generate(
    out: str | Path, scale: str | Scale = "tiny", seed: int = 0, progress: Progress | None = None
) -> dict[str, Any]:
    """Write the extract of ``scale`` (a name of :data:`SCALES`) into ``out``; returns
    the manifest also written as ``out/extract.json``. Same seed, same files."""
    spec = SCALES[scale] if isinstance(scale, str) else scale
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    w = _Writer(out, progress)
    try:
        groups, leaves = _groups(spec, seed, w)
        catalog = _items(spec, seed, w, groups, leaves)
        locations = _locations(spec, seed, w)
        accounts = _accounts(spec, seed, w)
        contracts = _contracts(spec, seed, w, accounts)
        _price_lists(spec, seed, w, catalog, accounts)
        _contract_lines(spec, seed, w, catalog, groups, contracts)
        _stock(spec, seed, w, catalog, locations)
        _inbound(spec, seed, w, catalog, locations)
    finally:
        w.close()
    manifest = {
        "format": "pacache-extract",
        "format_version": 1,
        "generator": "bench.datagen",
        "scale": spec.name,
        "seed": seed,
        "reference_date": REFERENCE_DATE.isoformat(),
        "extract_version": EXTRACT_VERSION,
        "rows": dict(sorted(w.rows.items())),
    }
    (out / "extract.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


# ---------------------------------------------------------------------------------------
# Workload: carts for benchmarks and load tests


@dataclass(frozen=True, slots=True)
class Cart:
    """One quote request: plain lists, ready for the engine or a protobuf request."""

    account: str
    skus: list[str]
    qty: list[int]
    uoms: list[str]
    region: str | None
    pricing_date: int  # days since 1970-01-01


class Workload:
    """Samples carts: Zipf-like SKU popularity, 1–200 lines (median ~12), random accounts,
    a UoM the item has on every line. Seeded: the same seed gives the same carts."""

    def __init__(
        self,
        skus: list[str],
        uom_codes: list[str],
        item_uoms: npt.NDArray[np.int64],
        accounts: list[str],
        regions: list[str],
        *,
        popularity: I64 | None = None,
        pricing_date: int = _TODAY,
        seed: int = 0,
        zipf_exponent: float = 1.0,
    ) -> None:
        """``item_uoms[s]`` lists UoM indices (into ``uom_codes``) of SKU s, base first,
        -1 padded; ``popularity`` is rank → SKU index (a seeded shuffle by default)."""
        self.skus = skus
        self.uom_codes = uom_codes
        self.item_uoms = item_uoms
        self.uom_count = (item_uoms >= 0).sum(axis=1)
        self.accounts = accounts
        self.regions = regions
        self.pricing_date = pricing_date
        self.rng = np.random.default_rng([seed, 7])
        self.by_rank = (
            popularity
            if popularity is not None
            else np.random.default_rng([seed, 8]).permutation(len(skus))
        )
        self._cdf = _zipf_cdf(len(skus), zipf_exponent)

    @classmethod
    def from_extract(cls, extract: str | Path, seed: int = 0) -> Workload:
        """A workload over a generated extract (popularity as the generator drew it)."""
        path = Path(extract)
        manifest = json.loads((path / "extract.json").read_text())
        skus = pq.read_table(path / "items.parquet", columns=["sku"])["sku"].to_pylist()
        uoms = pq.read_table(path / "item_uoms.parquet")
        index = {s: i for i, s in enumerate(skus)}
        sku_of = np.array([index[s] for s in uoms["sku"].to_pylist()], dtype=np.int64)
        codes = sorted(set(uoms["uom"].to_pylist()))
        code_of = {c: i for i, c in enumerate(codes)}
        uom_of = np.array([code_of[c] for c in uoms["uom"].to_pylist()], dtype=np.int64)
        factor = uoms["factor"].to_numpy()
        order = np.lexsort((factor, sku_of))  # base (factor 1) first, then larger packs
        slot = np.arange(order.size) - np.searchsorted(sku_of[order], sku_of[order])
        table = np.full((len(skus), int(slot.max()) + 1 if slot.size else 1), -1, np.int64)
        table[sku_of[order], slot] = uom_of[order]
        accounts = pq.read_table(path / "accounts.parquet", columns=["account"])
        regions = pq.read_table(path / "regions.parquet", columns=["region"])
        popularity = None
        if manifest.get("generator") == "bench.datagen":
            popularity = _rng(int(manifest["seed"]), "popularity").permutation(len(skus))
        reference = dt.date.fromisoformat(manifest.get("reference_date", "2025-03-03"))
        return cls(
            skus,
            codes,
            table,
            accounts["account"].to_pylist(),
            list(dict.fromkeys(regions["region"].to_pylist())),
            popularity=popularity,
            pricing_date=(reference - _EPOCH).days,
            seed=seed,
        )

    def cart_sizes(self, count: int) -> I64:
        """Cart line counts: lognormal with median 12, clipped to 1..200."""
        sizes = np.rint(np.exp(self.rng.normal(np.log(12), 0.9, count)))
        return np.clip(sizes, 1, 200).astype(np.int64)

    def lines(self, count: int) -> tuple[I64, I64, I64]:
        """``count`` lines: (SKU index, qty in the line's UoM, UoM index), no cart structure."""
        sku = self.by_rank[_draw(self.rng, self._cdf, count)]
        alternates = self.uom_count[sku] - 1
        use_base = (self.rng.random(count) < 0.75) | (alternates == 0)
        slot = np.where(use_base, 0, 1 + self.rng.integers(0, np.maximum(alternates, 1)))
        uom = self.item_uoms[sku, slot]
        base_qty = _pick(
            self.rng,
            [1, 2, 3, 5, 10, 12, 20, 24, 50, 100],
            [20, 12, 8, 12, 14, 6, 8, 5, 8, 7],
            count,
        )
        pack_qty = _pick(self.rng, [1, 2, 3, 5], [60, 20, 10, 10], count)
        qty = np.where(slot == 0, base_qty, pack_qty).astype(np.int64)
        return sku, qty, uom

    def cart(self, lines: int | None = None) -> Cart:
        """One cart of distinct SKUs for a random account."""
        size = int(self.cart_sizes(1)[0]) if lines is None else lines
        size = min(size, len(self.skus))
        chosen: dict[int, tuple[int, int]] = {}
        while len(chosen) < size:
            sku, qty, uom = self.lines(2 * (size - len(chosen)))
            for s, q, u in zip(sku.tolist(), qty.tolist(), uom.tolist(), strict=True):
                if s not in chosen and len(chosen) < size:
                    chosen[s] = (q, u)
        account = self.accounts[int(self.rng.integers(0, len(self.accounts)))]
        region = (
            self.regions[int(self.rng.integers(0, len(self.regions)))] if self.regions else None
        )
        return Cart(
            account=account,
            skus=[self.skus[s] for s in chosen],
            qty=[q for q, _ in chosen.values()],
            uoms=[self.uom_codes[u] for _, u in chosen.values()],
            region=region,
            pricing_date=self.pricing_date,
        )

    def carts(self, count: int) -> list[Cart]:
        """``count`` carts."""
        return [self.cart() for _ in range(count)]
