"""bench.datagen: the tiny reference extract is deterministic, consistent and builds cleanly."""

from __future__ import annotations

import importlib.util
import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from bench.datagen import REFERENCE_DATE, SCALES, Workload, generate
from engine.bulk import EXTRACT_SCHEMA, NULL_INT, Coded, build_state
from engine.deltas import day_number
from engine.quote import LineStatus, quote
from loaders.extract import Rejects, build_snapshot, read_tables

TODAY = day_number(REFERENCE_DATE)


def _reference() -> Any:
    """The event-path reference of test_bulk (loaded by path: tests are not a package)."""
    spec = importlib.util.spec_from_file_location(
        "bulk_reference", Path(__file__).with_name("test_bulk.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    generate(out, "tiny", seed=3)
    return out


@pytest.fixture(scope="module")
def rows(tiny: Path) -> dict[str, list[dict[str, Any]]]:
    """Every table as a list of row dicts (decoded, dates as day numbers)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in EXTRACT_SCHEMA:
        table = pq.read_table(tiny / f"{name}.parquet")
        records = table.to_pylist()
        for record in records:
            for key, value in record.items():
                if hasattr(value, "toordinal"):
                    record[key] = day_number(value)
        out[name] = records
    return out


def _lists(tables: dict[str, dict[str, Any]]) -> dict[str, dict[str, list[Any]]]:
    """Columnar tables (as the loader gives them) back to plain Python lists."""
    out: dict[str, dict[str, list[Any]]] = {}
    for name, columns in tables.items():
        out[name] = {}
        for column, data in columns.items():
            if isinstance(data, Coded):
                values = list(data.values)
                out[name][column] = [None if i < 0 else values[i] for i in data.indices.tolist()]
            elif isinstance(data, np.ndarray):
                out[name][column] = [None if v == NULL_INT else v for v in data.tolist()]
            else:
                out[name][column] = list(data)
    return out


def test_tiny_scale_has_the_reference_sizes(tiny: Path) -> None:
    manifest = json.loads((tiny / "extract.json").read_text())
    scale = SCALES["tiny"]
    assert manifest["rows"]["items"] == scale.skus
    assert manifest["rows"]["locations"] == scale.locations
    assert manifest["rows"]["accounts"] == scale.accounts
    assert manifest["rows"]["contracts"] == scale.contracts
    assert manifest["rows"]["contract_lines"] == scale.contract_lines
    assert {f"{name}.parquet" for name in EXTRACT_SCHEMA} <= {p.name for p in tiny.iterdir()}


def test_same_seed_same_extract_and_another_seed_another(tmp_path: Path, tiny: Path) -> None:
    generate(tmp_path / "again", "tiny", seed=3)
    generate(tmp_path / "other", "tiny", seed=4)
    for name in EXTRACT_SCHEMA:
        first = pq.read_table(tiny / f"{name}.parquet")
        assert first.equals(pq.read_table(tmp_path / "again" / f"{name}.parquet")), name
    other = pq.read_table(tmp_path / "other" / "contract_lines.parquet")
    assert not other.equals(pq.read_table(tiny / "contract_lines.parquet"))


def test_every_reference_points_at_an_existing_row(rows: dict[str, list[dict[str, Any]]]) -> None:
    skus = {r["sku"] for r in rows["items"]}
    groups = {r["product_group"] for r in rows["product_groups"]}
    locations = {r["location"] for r in rows["locations"]}
    accounts = {r["account"]: r for r in rows["accounts"]}
    contracts = {r["contract"]: r for r in rows["contracts"]}
    price_groups = {g for r in rows["accounts"] for g in r["price_groups"]}
    assert len(skus) == len(rows["items"]) and len(contracts) == len(rows["contracts"])
    assert all(r["parent"] is None or r["parent"] in groups for r in rows["product_groups"])
    assert all(r["product_group"] in groups for r in rows["items"])
    assert all(r["sku"] in skus for r in rows["item_uoms"])
    assert all(r["location"] in locations for r in rows["regions"])
    for line in rows["contract_lines"]:
        assert line["contract"] in contracts
        assert (line["sku"] is None) != (line["product_group"] is None)
        assert line["sku"] in skus if line["sku"] else line["product_group"] in groups
    for table in ("stock", "inbound"):
        assert all(r["sku"] in skus and r["location"] in locations for r in rows[table])
    assert all(r["sku"] in skus for r in rows["price_lists"])
    for a in rows["contract_assignments"]:
        assert a["contract"] in contracts
        if a["assign_to"] == "ACCOUNT":
            assert a["code"] in accounts
            assert accounts[a["code"]]["currency"] == contracts[a["contract"]]["currency"]
        elif a["assign_to"] == "PRICE_GROUP":
            assert a["code"] in price_groups
        else:
            assert a["assign_to"] == "ALL"


def test_account_chains_are_acyclic_and_at_most_three_deep(
    rows: dict[str, list[dict[str, Any]]],
) -> None:
    parent = {r["account"]: r["parent"] for r in rows["accounts"]}
    depths = []
    for account in parent:
        seen, up = [account], parent[account]
        while up is not None:
            assert up in parent and up not in seen
            seen.append(up)
            up = parent[up]
        depths.append(len(seen) - 1)
    assert max(depths) <= 3 and any(d > 0 for d in depths)


def test_breaks_strictly_increase_and_number_one_to_five(
    rows: dict[str, list[dict[str, Any]]],
) -> None:
    for table, breaks, key in (
        ("price_lists", "price_breaks", "price_id"),
        ("contract_lines", "contract_line_breaks", "line_id"),
    ):
        mins: dict[int, list[int]] = {}
        for b in rows[breaks]:
            mins.setdefault(b[key], []).append(b["min_qty"])
        assert {r[key] for r in rows[table]} == set(mins)
        for minimums in mins.values():
            assert 1 <= len(minimums) <= 5
            assert all(a < b for a, b in itertools.pairwise(minimums))
    values = [b["price_micros"] for b in rows["price_breaks"]]
    assert all(type(v) is int and v > 0 and v % 10_000 == 0 for v in values)


def test_items_have_two_to_four_uoms_and_lines_use_them(
    rows: dict[str, list[dict[str, Any]]],
) -> None:
    uoms: dict[str, dict[str, int]] = {}
    for r in rows["item_uoms"]:
        uoms.setdefault(r["sku"], {})[r["uom"]] = r["factor"]
    for item in rows["items"]:
        assert 2 <= len(uoms[item["sku"]]) <= 4
        assert uoms[item["sku"]][item["base_uom"]] == 1
    for r in rows["price_lists"] + [x for x in rows["contract_lines"] if x["sku"]]:
        assert r["uom"] is None or r["uom"] in uoms[r["sku"]]
    assert Counter(r["uom"] for r in rows["price_lists"]).keys() > {"EA", "BX"}


def test_stock_covers_about_a_fifth_of_cells_with_some_oversold(
    rows: dict[str, list[dict[str, Any]]],
) -> None:
    cells = len(rows["items"]) * len(rows["locations"])
    assert 0.15 < len(rows["stock"]) / cells < 0.25
    assert len({(r["sku"], r["location"]) for r in rows["stock"]}) == len(rows["stock"])
    assert any(r["allocated"] > r["on_hand"] for r in rows["stock"])
    assert all(r["qty"] > 0 for r in rows["inbound"])


def test_contracts_include_expired_future_and_all_account_promotions(
    rows: dict[str, list[dict[str, Any]]],
) -> None:
    contracts = rows["contracts"]
    assert any(c["valid_to"] is not None and c["valid_to"] <= TODAY for c in contracts)
    assert any(c["valid_from"] > TODAY for c in contracts) or len(contracts) < 50
    kinds = Counter(r["kind"] for r in rows["contract_lines"])
    assert kinds.keys() == {"NET", "DISCOUNT", "COST_PLUS"}
    assert any(a["assign_to"] == "ALL" for a in rows["contract_assignments"]) or len(contracts) < 50


def test_the_extract_builds_without_rejects_and_equals_the_event_path(tiny: Path) -> None:
    reference = _reference()
    tables = read_tables(tiny)
    rejects = Rejects()
    state = build_state(tables, version=7, on_reject=rejects)
    assert rejects.total == 0, rejects.counts
    by_events = reference.State()
    reference.apply_batch(by_events, reference.to_events(_lists(tables), version=7))
    reference.assert_same_state(state, by_events)
    reference.assert_same_quotes(state, by_events, seed=1)


def test_build_snapshot_writes_a_loadable_snapshot(tiny: Path, tmp_path: Path) -> None:
    from engine.snapshot import load

    report = build_snapshot(tiny, tmp_path / "snapshots", progress=False)
    state = load(report.snapshot)
    assert state.n_skus == SCALES["tiny"].skus
    assert state.lines.n == SCALES["tiny"].contract_lines
    assert report.rejects.total == 0


def test_workload_samples_realistic_carts_deterministically(tiny: Path) -> None:
    first, second = Workload.from_extract(tiny, seed=5), Workload.from_extract(tiny, seed=5)
    carts = first.carts(400)
    assert carts[:20] == second.carts(20)
    sizes = np.array([len(c.skus) for c in carts])
    assert sizes.min() >= 1 and sizes.max() <= 200
    assert 9 <= np.median(sizes) <= 15
    uoms: dict[str, set[str]] = {}
    for r in pq.read_table(tiny / "item_uoms.parquet").to_pylist():
        uoms.setdefault(r["sku"], set()).add(r["uom"])
    lines = [(s, u) for c in carts for s, u in zip(c.skus, c.uoms, strict=True)]
    assert all(u in uoms[s] for s, u in lines)
    assert all(len(set(c.skus)) == len(c.skus) for c in carts)
    top = Counter(s for s, _ in lines).most_common(10)
    assert sum(n for _, n in top) > 0.1 * len(lines)  # Zipf: a few SKUs are asked a lot


def test_carts_quote_on_the_built_state(tiny: Path) -> None:
    state = build_state(read_tables(tiny), on_reject=Rejects())
    workload = Workload.from_extract(tiny, seed=1)
    statuses: Counter[int] = Counter()
    for cart in workload.carts(30):
        result = quote(
            state,
            account=cart.account,
            skus=cart.skus,
            qty=cart.qty,
            uoms=cart.uoms,
            pricing_date=cart.pricing_date,
            region=cart.region,
        )
        statuses.update(result.status.tolist())
    assert statuses[LineStatus.OK] > 0.8 * sum(statuses.values())
    assert statuses[LineStatus.UNKNOWN_UOM] == 0
