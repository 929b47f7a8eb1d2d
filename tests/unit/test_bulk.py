"""engine.bulk.build_state gives the state apply_batch gives for the equivalent events.

The reference here is deliberately slow and plain: tables → one event per row (or per
region / SKU-location) → ``apply_batch``. Random tables include duplicates with other
versions, invalid rows, unknown codes and orphan breaks, so every path of the bulk build
is compared with the event path.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from engine import events as ev
from engine.bulk import NULL_INT, Coded, build_state
from engine.deltas import apply_batch
from engine.errors import InvalidInput
from engine.quote import quote
from engine.snapshot import _CODE_TABLES, _COLUMNS
from engine.state import Inventory, State

EPOCH = dt.date(1970, 1, 1)
TODAY = 20_000
Tables = dict[str, dict[str, list[Any]]]


# ---------------------------------------------------------------------------------------
# The reference: tables → events


def _rows(tables: Mapping[str, Mapping[str, list[Any]]], name: str) -> list[dict[str, Any]]:
    columns = tables.get(name, {})
    n = len(next(iter(columns.values()))) if columns else 0
    return [{c: values[i] for c, values in columns.items()} for i in range(n)]


def _date(days: int | None) -> dt.date | None:
    return None if days is None else EPOCH + dt.timedelta(days=days)


def _tiers(rows: list[dict[str, Any]], id_column: str, value: str) -> dict[Any, list[Any]]:
    tiers: dict[Any, list[Any]] = {}
    for row in rows:
        tiers.setdefault(row[id_column], []).append((row["min_qty"], row[value]))
    return {k: sorted(v, key=lambda t: t[0]) for k, v in tiers.items()}


def _newest(versions: list[Any]) -> Any:
    odd = [v for v in versions if type(v) is not int]
    return odd[0] if odd else max(versions)


def to_events(tables: Tables, version: int = 1) -> list[Any]:
    """The events a bulk extract stands for (engine.bulk's module doc)."""

    def ver(row: dict[str, Any]) -> Any:
        return version if row.get("version") is None else row["version"]

    out: list[Any] = []
    for row in _rows(tables, "product_groups"):
        out.append(
            ev.ProductGroupUpsert(
                product_group=row["product_group"], parent=row.get("parent"), version=ver(row)
            )
        )
    uoms: dict[str, dict[str, Any]] = {}
    for row in _rows(tables, "item_uoms"):
        uoms.setdefault(row["sku"], {})[row["uom"]] = row["factor"]
    for row in _rows(tables, "items"):
        base = row.get("base_uom") or "EA"
        alternates = {
            u: f for u, f in uoms.get(row["sku"], {}).items() if not (u == base and f == 1)
        }
        out.append(
            ev.ItemUpsert(
                sku=row["sku"],
                status=row.get("status") or "ACTIVE",
                base_uom=base,
                uoms=alternates,
                min_order_qty=0 if row.get("min_order_qty") is None else row["min_order_qty"],
                order_multiple=1 if row.get("order_multiple") is None else row["order_multiple"],
                product_group=row.get("product_group"),
                replacement_cost_micros=row.get("replacement_cost_micros"),
                cost_currency=row.get("cost_currency") or "USD",
                lead_time_days=row.get("lead_time_days"),
                version=ver(row),
            )
        )
    for row in _rows(tables, "locations"):
        out.append(
            ev.LocationUpsert(
                location=row["location"], active=row.get("active") is not False, version=ver(row)
            )
        )
    regions: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for i, row in enumerate(_rows(tables, "regions")):
        regions.setdefault(row["region"], []).append((i, row))
    for region, members in regions.items():
        members.sort(key=lambda m: (m[1].get("rank") is None, m[1].get("rank") or 0, m[0]))
        out.append(
            ev.RegionUpsert(
                region=region,
                locations=tuple(m[1]["location"] for m in members),
                version=_newest([ver(m[1]) for m in members]),
            )
        )
    for row in _rows(tables, "accounts"):
        out.append(
            ev.AccountUpsert(
                account=row["account"],
                parent=row.get("parent"),
                price_list=row.get("price_list"),
                currency=row.get("currency") or "USD",
                price_groups=tuple(row.get("price_groups") or ()),
                disclosure=row.get("disclosure") or "EXACT",
                disclosure_cap=row.get("disclosure_cap") or 0,
                version=ver(row),
            )
        )
    assigned: dict[str, dict[str, list[str]]] = {}
    for row in _rows(tables, "contract_assignments"):
        slot = assigned.setdefault(row["contract"], {"ACCOUNT": [], "PRICE_GROUP": [], "ALL": []})
        kind = row["assign_to"]
        if kind in slot and (kind == "ALL" or _valid_code(kind, row.get("code"))):
            slot[kind].append(row.get("code"))
    for row in _rows(tables, "contracts"):
        slot = assigned.get(row["contract"], {"ACCOUNT": [], "PRICE_GROUP": [], "ALL": []})
        out.append(
            ev.ContractUpsert(
                contract=row["contract"],
                currency=row.get("currency") or "USD",
                priority=row.get("priority") or 0,
                valid_from=_date(row.get("valid_from")),
                valid_to=_date(row.get("valid_to")),
                accounts=tuple(slot["ACCOUNT"]),
                price_groups=tuple(slot["PRICE_GROUP"]),
                all_accounts=bool(slot["ALL"]),
                version=ver(row),
            )
        )
    price_tiers = _tiers(_rows(tables, "price_breaks"), "price_id", "price_micros")
    for row in _rows(tables, "price_lists"):
        out.append(
            ev.PriceSet(
                price_list=row["price_list"],
                currency=row["currency"],
                sku=row["sku"],
                uom=row.get("uom"),
                tiers=tuple(price_tiers.get(row["price_id"], ())),
                valid_from=_date(row.get("valid_from")),
                valid_to=_date(row.get("valid_to")),
                version=ver(row),
            )
        )
    line_tiers = _tiers(_rows(tables, "contract_line_breaks"), "line_id", "value")
    for row in _rows(tables, "contract_lines"):
        out.append(
            ev.ContractLineSet(
                contract=row["contract"],
                sku=row.get("sku"),
                product_group=row.get("product_group"),
                kind=row.get("kind") or "NET",
                uom=row.get("uom"),
                tiers=tuple(line_tiers.get(row["line_id"], ())),
                version=ver(row),
            )
        )
    for row in _rows(tables, "stock"):
        out.append(
            ev.InventorySet(
                sku=row["sku"],
                location=row["location"],
                on_hand=row.get("on_hand") or 0,
                allocated=row.get("allocated") or 0,
                safety_stock=row.get("safety_stock") or 0,
                version=ver(row),
            )
        )
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in _rows(tables, "inbound"):
        cells.setdefault((row["sku"], row["location"]), []).append(row)
    for (sku, location), receipts in cells.items():
        out.append(
            ev.InboundSet(
                sku=sku,
                location=location,
                receipts=tuple((_date(r["expected_date"]), r["qty"]) for r in receipts),
                version=_newest([ver(r) for r in receipts]),
            )
        )
    return out


def _valid_code(kind: str, code: Any) -> bool:
    from engine.codes import validate_code

    try:
        validate_code("account" if kind == "ACCOUNT" else "price_group", code)
    except InvalidInput:
        return False
    return True


# ---------------------------------------------------------------------------------------
# Random extracts


def random_tables(seed: int, dirty: bool = True) -> Tables:
    """A small random extract; ``dirty`` adds duplicates, bad rows and unknown codes."""
    rnd = random.Random(seed)
    t: Tables = {}

    def table(name: str, rows: list[dict[str, Any]]) -> None:
        columns: dict[str, list[Any]] = {}
        for row in rows:
            for column in row:
                columns.setdefault(column, [])
        for row in rows:
            for column, values in columns.items():
                values.append(row.get(column))
        t[name] = columns

    tops = [f"G{i}" for i in range(3)]
    leaves = [f"G{i}.{j}" for i in range(3) for j in range(2)]
    groups = [{"product_group": g} for g in tops] + [
        {"product_group": g, "parent": g.split(".")[0]} for g in leaves
    ]
    groups.insert(1, {"product_group": "G9.9", "parent": "G9"})  # parent only seen as parent
    table("product_groups", groups)

    skus = [f"SKU-{i:03d}" for i in range(40)]
    rnd.shuffle(skus)
    items, uoms = [], []
    for sku in skus:
        items.append(
            {
                "sku": sku,
                "status": rnd.choice(["ACTIVE"] * 8 + ["DISCONTINUED", "BLOCKED", None]),
                "base_uom": rnd.choice(["EA"] * 5 + ["FT", None]),
                "product_group": rnd.choice([*leaves, None, "NEWGROUP"]),
                "min_order_qty": rnd.choice([0, 1, 5, None]),
                "order_multiple": rnd.choice([1, 1, 5, None]),
                "replacement_cost_micros": rnd.choice([None, rnd.randint(1, 10**8)]),
                "cost_currency": rnd.choice(["USD", "USD", None, "CAD"]),
                "lead_time_days": rnd.choice([None, rnd.randint(0, 30)]),
                "version": rnd.choice([None, 3, 7]),
            }
        )
        base = items[-1]["base_uom"] or "EA"
        alternates = rnd.sample([("BX", 10), ("CS", 100), ("PL", 4800), ("DZ", 12)], 2)
        if rnd.random() < 0.5:
            uoms.append({"sku": sku, "uom": base, "factor": 1})
        for code, factor in alternates:
            uoms.append({"sku": sku, "uom": code, "factor": factor})
    if dirty:
        items.append(dict(items[3], version=99, lead_time_days=11))  # newer duplicate
        items.append(dict(items[5], version=0))  # older duplicate: loses
        items.append(dict(items[0], sku="BAD SKU "))  # invalid code
        items.append(dict(items[1], sku="SKU-X1", status="GONE"))  # invalid status
        items.append(dict(items[2], sku="SKU-X2", min_order_qty=-1))
        uoms.append({"sku": "SKU-X3", "uom": "BX", "factor": 0})  # bad factor: item rejected
        items.append(dict(items[2], sku="SKU-X3"))
        uoms.append({"sku": "NOPE", "uom": "BX", "factor": 10})  # orphan
        uoms.append({"sku": skus[4], "uom": "BX", "factor": 20})  # last row of a UoM wins
    table("items", items)
    table("item_uoms", uoms)

    locations = [{"location": f"DC{i}", "active": i != 2 or None} for i in range(4)]
    table("locations", locations)
    table(
        "regions",
        [
            {"region": "EAST", "location": "DC1", "rank": 2},
            {"region": "WEST", "location": "DC3", "rank": 1},
            {"region": "EAST", "location": "DC0", "rank": 1},
            {"region": "EAST", "location": "DC9", "rank": None},  # implicit location
            {"region": "WEST", "location": "DC2", "rank": 0, "version": 4},
        ],
    )

    accounts = []
    names = [f"A{i:02d}" for i in range(12)]
    for i, account in enumerate(names):
        accounts.append(
            {
                "account": account,
                "parent": names[i // 3] if i >= 3 and rnd.random() < 0.6 else None,
                "price_list": rnd.choice([None, None, "LIST", "PL-KEY"]),
                "currency": rnd.choice(["USD", "USD", None, "CAD"]),
                "price_groups": rnd.sample(["PG1", "PG2", "PG3"], rnd.randint(0, 2)),
                "disclosure": rnd.choice([None, "EXACT", "CAPPED", "BUCKETS"]),
                "disclosure_cap": rnd.choice([None, 10, 50]),
            }
        )
    if dirty:
        accounts.append({"account": "A99", "parent": "A99"})  # its own parent: rejected
        accounts.append({"account": "A98", "parent": "A-GHOST", "disclosure": "LOUD"})
    table("accounts", accounts)

    contracts, assignments = [], []
    for i in range(7):
        code = f"K{i}"
        contracts.append(
            {
                "contract": code,
                "currency": "CAD" if i == 6 else rnd.choice(["USD", None]),
                "priority": rnd.choice([None, 0, 5, 10]),
                "valid_from": rnd.choice([None, TODAY - 100, TODAY + 10]),
                "valid_to": rnd.choice([None, TODAY + 300, TODAY - 5 if i == 3 else None]),
            }
        )
        for account in rnd.sample(names, rnd.randint(0, 3)):
            assignments.append({"contract": code, "assign_to": "ACCOUNT", "code": account})
        if rnd.random() < 0.4:
            assignments.append({"contract": code, "assign_to": "PRICE_GROUP", "code": "PG1"})
    assignments.append({"contract": "K5", "assign_to": "ALL", "code": None})
    if dirty:
        assignments.append({"contract": "K1", "assign_to": "ACCOUNT", "code": "A-NEW"})
        assignments.append({"contract": "K1", "assign_to": "SOMEONE", "code": "A01"})
        assignments.append({"contract": "K-NONE", "assign_to": "ALL", "code": None})
        assignments.append({"contract": "K2", "assign_to": "ACCOUNT", "code": None})
        contracts.append({"contract": "K-BAD", "valid_from": TODAY, "valid_to": TODAY - 1})
    table("contracts", contracts)
    table("contract_assignments", assignments)

    def breaks(kind: str, base: int) -> list[tuple[int, int]]:
        mins = sorted(rnd.sample(range(1, 60), rnd.randint(0, 4)))
        start = 0 if rnd.random() < 0.85 else rnd.randint(1, 4)
        values = [base]
        for _ in mins:
            values.append(values[-1] + (300 if kind != "NET" else -values[-1] // 20))
        return list(zip([start, *mins], values, strict=True))

    price_rows, price_breaks = [], []
    for i, sku in enumerate(skus):
        for book, currency in (("LIST", "USD"), ("LIST", "CAD"), ("PL-KEY", "USD")):
            if book != "LIST" and rnd.random() < 0.6:
                continue
            pid = len(price_rows) * 7 + 3
            price_rows.append(
                {
                    "price_id": pid,
                    "price_list": book,
                    "currency": currency,
                    "sku": sku,
                    "uom": rnd.choice([None, None, "EA", "BX"]),
                    "valid_from": rnd.choice([None, TODAY - 30]),
                    "valid_to": rnd.choice([None, None, TODAY + 30]),
                }
            )
            for minimum, value in breaks("NET", rnd.randint(10**6, 10**8)):
                price_breaks.append({"price_id": pid, "min_qty": minimum, "price_micros": value})
        if i == 0 and dirty:
            price_rows[-1]["price_id"] = price_rows[-2]["price_id"]  # shares breaks
    if dirty:
        price_rows.append(dict(price_rows[0], version=5))  # newer duplicate entry
        price_rows.append(dict(price_rows[1], price_id=10**9))  # no breaks: rejected
        price_rows.append(dict(price_rows[2], sku="SKU-PRICED-ONLY"))  # implicit SKU
        price_breaks.append({"price_id": 123456789, "min_qty": 0, "price_micros": 1})  # orphan
        price_breaks.append(
            {"price_id": price_rows[3]["price_id"], "min_qty": 0, "price_micros": 5}
        )
    rnd.shuffle(price_breaks)
    table("price_lists", price_rows)
    table("price_breaks", price_breaks)

    line_rows, line_breaks = [], []
    for contract in [f"K{i}" for i in range(7)]:
        for target in rnd.sample(skus, 8) + rnd.sample(leaves + tops, 2):
            kind = rnd.choice(["NET", "NET", "DISCOUNT", "COST_PLUS", None])
            is_group = target.startswith("G")
            line_id = len(line_rows) + 1000
            line_rows.append(
                {
                    "line_id": line_id,
                    "contract": contract,
                    "sku": None if is_group else target,
                    "product_group": target if is_group else None,
                    "kind": kind,
                    "uom": None if is_group else rnd.choice([None, "EA", "BX", "CS"]),
                    "version": rnd.randint(1, 50),
                }
            )
            base = rnd.randint(100, 2000) if kind in ("DISCOUNT", "COST_PLUS") else 10**7
            for minimum, value in breaks(kind or "NET", base):
                line_breaks.append({"line_id": line_id, "min_qty": minimum, "value": value})
    if dirty:
        line_rows.append(dict(line_rows[0], version=200))  # newer duplicate
        line_rows.append(dict(line_rows[1], version=0))  # older duplicate
        line_rows.append(dict(line_rows[2], contract="K-IMPLICIT"))
        line_rows.append(dict(line_rows[3], sku=None, product_group="G-IMPLICIT"))
        line_rows.append(dict(line_rows[4], product_group="G0"))  # both targets
        line_rows.append(dict(line_rows[5], kind="FREE"))
        line_rows.append(dict(line_rows[6], line_id=777_777, kind="DISCOUNT"))
        line_breaks.append({"line_id": 777_777, "min_qty": 0, "value": 20_000})  # > 100%
        line_rows.append(dict(line_rows[7], line_id=888_888))
        line_breaks += [{"line_id": 888_888, "min_qty": 5, "value": 1}] * 2  # repeated min
        line_rows.append(dict(line_rows[8], line_id=None))
    table("contract_lines", line_rows)
    table("contract_line_breaks", line_breaks)

    stock = []
    for sku in skus:
        for location in ("DC0", "DC1", "DC2", "DC3"):
            if rnd.random() < 0.4:
                stock.append(
                    {
                        "sku": sku,
                        "location": location,
                        "on_hand": rnd.randint(0, 500),
                        "allocated": rnd.choice([None, 0, rnd.randint(0, 600)]),
                        "safety_stock": rnd.choice([None, 0, 10]),
                        "version": rnd.choice([None, 2]),
                    }
                )
    if dirty:
        stock.append(dict(stock[0], on_hand=1, version=9))  # newer
        stock.append(dict(stock[1], on_hand=2, version=0))  # older
        stock.append(dict(stock[2], sku="SKU-STOCK-ONLY", location="DC-NEW"))
        stock.append(dict(stock[3], allocated=-4))
    table("stock", stock)

    inbound = []
    for sku in rnd.sample(skus, 15):
        location = rnd.choice(["DC0", "DC1", "DC3"])
        for _ in range(rnd.randint(1, 3)):
            inbound.append(
                {
                    "sku": sku,
                    "location": location,
                    "expected_date": TODAY + rnd.choice([-2, 0, 3, 3, 20]),
                    "qty": rnd.randint(1, 300),
                }
            )
    if dirty:
        inbound.append(dict(inbound[0], qty=0))  # rejects its whole SKU-location
        inbound.append({"sku": "SKU-INBOUND-ONLY", "location": "DC1", "expected_date": TODAY,
                        "qty": 5, "version": 8})  # fmt: skip
    rnd.shuffle(inbound)
    table("inbound", inbound)
    return t


def columnar(tables: Tables) -> dict[str, dict[str, Any]]:
    """The same tables as a Parquet loader hands them over: Coded codes, int64 arrays."""
    out: dict[str, dict[str, Any]] = {}
    for name, columns in tables.items():
        out[name] = {}
        for column, values in columns.items():
            if column == "price_groups" or column == "active":
                out[name][column] = values
            elif any(isinstance(v, str) for v in values):
                distinct = list(dict.fromkeys(v for v in values if v is not None))[::-1]
                index = {v: i for i, v in enumerate(distinct)}
                codes = np.array([-1 if v is None else index[v] for v in values], dtype=np.int32)
                out[name][column] = Coded(codes, distinct)
            else:
                out[name][column] = np.array(
                    [NULL_INT if v is None else v for v in values], dtype=np.int64
                )
    return out


# ---------------------------------------------------------------------------------------
# Comparison


def assert_same_state(a: State, b: State) -> None:
    for name in _CODE_TABLES:
        assert getattr(a, name).codes() == getattr(b, name).codes(), name
    for name in _COLUMNS:
        left, right = getattr(a, name), getattr(b, name)
        assert left.n == right.n, name
        for column in left.schema:
            np.testing.assert_array_equal(
                left[column][: left.n], right[column][: right.n], err_msg=f"{name}.{column}"
            )
    for index in ("price_index", "line_index"):
        np.testing.assert_array_equal(getattr(a, index).keys, getattr(b, index).keys)
        np.testing.assert_array_equal(getattr(a, index).rows, getattr(b, index).rows)
    n_sku, n_loc = a.n_skus, a.n_locations
    for field in Inventory.FIELDS:
        np.testing.assert_array_equal(
            getattr(a.inventory, field)[:n_sku, :n_loc],
            getattr(b.inventory, field)[:n_sku, :n_loc],
            err_msg=field,
        )
    np.testing.assert_array_equal(a.inbound_keys, b.inbound_keys)
    np.testing.assert_array_equal(a.inbound_qty, b.inbound_qty)
    assert a.inbound_versions == b.inbound_versions
    assert a.region_locations.keys() == b.region_locations.keys()
    for region, ranked in a.region_locations.items():
        np.testing.assert_array_equal(ranked, b.region_locations[region])
    assert a.region_versions == b.region_versions
    assert a.contract_accounts == b.contract_accounts
    assert a.contract_price_groups == b.contract_price_groups
    assert (a.version, a.pricing_epoch, a.newest_ts_ms, a.clock_ms) == (
        b.version,
        b.pricing_epoch,
        b.newest_ts_ms,
        b.clock_ms,
    )


def assert_same_quotes(a: State, b: State, seed: int) -> None:
    rnd = random.Random(seed)
    accounts = [c for c in a.accounts.codes() if a.account_rows["version"][a.accounts.get(c)] >= 0]
    skus = [*a.skus.codes(), "SKU-UNKNOWN"]
    for _ in range(25):
        lines = rnd.randint(1, 15)
        kwargs: dict[str, Any] = {
            "account": rnd.choice(accounts),
            "skus": [rnd.choice(skus) for _ in range(lines)],
            "qty": [rnd.choice([1, 3, 10, 60, 1000]) for _ in range(lines)],
            "uoms": [rnd.choice(["", "", "BX", "CS", "EA"]) for _ in range(lines)],
            "pricing_date": TODAY + rnd.choice([-50, 0, 20, 400]),
            "currency": rnd.choice([None, "USD", "CAD"]),
            "region": rnd.choice([None, "EAST", "WEST"]),
        }
        left, right = quote(a, **kwargs), quote(b, **kwargs)
        np.testing.assert_array_equal(left.status, right.status)
        for part in ("prices", "stock"):
            x, y = getattr(left, part), getattr(right, part)
            assert (x is None) == (y is None)
            if x is None:
                continue
            for field in x.__dataclass_fields__:
                if field != "candidates":
                    np.testing.assert_array_equal(getattr(x, field), getattr(y, field), field)


def by_events(tables: Tables) -> State:
    state = State()
    apply_batch(state, to_events(tables))
    return state


# ---------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("seed", range(6))
def test_bulk_build_equals_applying_the_equivalent_events(seed: int) -> None:
    tables = random_tables(seed)
    rejects: list[tuple[str, list[int], str]] = []
    bulk = build_state(tables, on_reject=lambda t, rows, why: rejects.append((t, list(rows), why)))
    reference = by_events(tables)
    assert_same_state(bulk, reference)
    assert_same_quotes(bulk, reference, seed)
    assert rejects  # the dirty rows were reported


@pytest.mark.parametrize("seed", range(3))
def test_columnar_input_builds_the_same_state_as_python_lists(seed: int) -> None:
    tables = random_tables(seed)
    from_lists = build_state(tables, on_reject=lambda *_: None)
    from_columns = build_state(columnar(tables), on_reject=lambda *_: None)
    assert_same_state(from_lists, from_columns)


def test_clean_extract_builds_without_rejects_and_prices_lines() -> None:
    tables = random_tables(11, dirty=False)
    rejects: list[Any] = []
    state = build_state(tables, on_reject=lambda *r: rejects.append(r))
    assert rejects == []
    assert_same_state(state, by_events(tables))
    result = quote(state, account="A01", skus=state.skus.codes()[:10], qty=[1] * 10,
                   pricing_date=TODAY)  # fmt: skip
    assert result.prices is not None and result.prices.priced.any()


def test_reports_each_rejected_row_with_its_table_and_reason() -> None:
    tables = random_tables(2)
    rejects: dict[str, list[str]] = {}
    build_state(tables, on_reject=lambda t, rows, why: rejects.setdefault(t, []).append(why))
    assert any("status" in why for why in rejects["items"])
    assert any("no such item" in why for why in rejects["item_uoms"])
    assert any("no such price_lists row" in why for why in rejects["price_breaks"])
    assert any("exactly one" in why for why in rejects["contract_lines"])
    assert any("assign_to" in why for why in rejects["contract_assignments"])
    assert any("receipt" in why for why in rejects["inbound"])
    assert any("allocated" in why for why in rejects["stock"])
    assert any("parent" in why for why in rejects["accounts"])


def test_without_a_reject_handler_the_first_bad_row_raises_naming_it() -> None:
    tables = {"items": {"sku": ["A", "B"], "status": ["ACTIVE", "SOLD"]}}
    with pytest.raises(InvalidInput, match=r"items\[1\]\.status"):
        build_state(tables)


def test_floats_are_refused_for_money() -> None:
    tables = {"items": {"sku": ["A"], "replacement_cost_micros": np.array([1.5])}}
    with pytest.raises(InvalidInput, match="replacement_cost_micros"):
        build_state(tables)


def test_progress_reports_every_stage_start_and_end() -> None:
    seen: list[tuple[str, int, int]] = []
    build_state(random_tables(3, dirty=False), progress=lambda *p: seen.append(p),
                on_reject=lambda *_: None)  # fmt: skip
    from engine.bulk import STAGES

    assert [s for s, done, _ in seen if done == 0] == list(STAGES)
    assert all(done == total for _, done, total in seen[1::2])


def test_entity_versions_default_to_the_extract_version() -> None:
    tables = random_tables(4, dirty=False)
    state = build_state(tables, version=42, on_reject=lambda *_: None)
    reference = State()
    apply_batch(reference, to_events(tables, version=42))
    assert_same_state(state, reference)
    assert (state.items["version"][: state.items.n] >= 3).all()
