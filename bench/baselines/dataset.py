"""An extract as engine events, and as the in-memory indexes the baselines serve from.

Every baseline starts from the same bulk extract pacache builds its snapshot from
(``engine.bulk.EXTRACT_SCHEMA``, Parquet as ``bench.datagen`` writes it). :func:`extract_events`
turns its rows into the *equivalent events* ``engine.bulk`` documents (one per row, per
region, per SKU-location of inbound); :func:`load_world` keeps the newest valid event of each
entity key (``bench.reference`` decides, exactly as the reference model would) and indexes
them the way a request needs them: by account, by SKU, by contract assignee, by contract-line
target. The Redis loader writes these indexes as keys; the plain-Python baseline serves from
them directly. Chains (an account's ancestors, a product group's parents) are resolved here,
once, because a per-request service would otherwise pay one round trip per level.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench.reference import Reference
from engine import events as ev
from engine.codes import validate_code
from engine.errors import InvalidInput
from loaders.extract import find_tables, read_manifest

__all__ = ["World", "extract_events", "load_world", "reference_date"]

_DEFAULT_VERSION = 1


def reference_date(extract_dir: str | Path) -> dt.date | None:
    """The extract's "today" (``extract.json`` of bench.datagen), if it records one."""
    text = read_manifest(extract_dir).get("reference_date")
    return dt.date.fromisoformat(text) if text else None


def _rows(tables: dict[str, Path], name: str) -> list[dict[str, Any]]:
    path = tables.get(name)
    if path is None:
        return []
    if path.suffix != ".parquet" and not path.is_dir():
        raise InvalidInput(name, f"{path.name}: the baselines read Parquet extracts only")
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows


def _assignment_ok(kind: str, code: Any) -> bool:
    """engine.bulk drops an assignment row with an invalid code and keeps the contract."""
    if kind == "ALL":
        return True
    try:
        validate_code("account" if kind == "ACCOUNT" else "price_group", code)
    except InvalidInput:
        return False
    return True


def extract_events(extract_dir: str | Path) -> Iterator[Any]:
    """The events an extract stands for (engine.bulk's module docstring), table by table."""
    tables = find_tables(extract_dir)
    version = int(read_manifest(extract_dir).get("extract_version", _DEFAULT_VERSION))

    def ver(row: dict[str, Any]) -> int:
        return version if row.get("version") is None else int(row["version"])

    for row in _rows(tables, "product_groups"):
        yield ev.ProductGroupUpsert(
            product_group=row["product_group"], parent=row.get("parent"), version=ver(row)
        )
    uoms: dict[str, dict[str, int]] = {}
    for row in _rows(tables, "item_uoms"):
        uoms.setdefault(row["sku"], {})[row["uom"]] = row["factor"]
    for row in _rows(tables, "items"):
        base = row.get("base_uom") or "EA"
        alternates = {u: f for u, f in uoms.get(row["sku"], {}).items() if (u, f) != (base, 1)}
        yield ev.ItemUpsert(
            sku=row["sku"],
            status=row.get("status") or "ACTIVE",
            base_uom=base,
            uoms=alternates,
            min_order_qty=row.get("min_order_qty") or 0,
            order_multiple=1 if row.get("order_multiple") is None else row["order_multiple"],
            product_group=row.get("product_group"),
            replacement_cost_micros=row.get("replacement_cost_micros"),
            cost_currency=row.get("cost_currency") or "USD",
            lead_time_days=row.get("lead_time_days"),
            version=ver(row),
        )
    del uoms
    for row in _rows(tables, "locations"):
        active = row.get("active") is not False
        yield ev.LocationUpsert(location=row["location"], active=active, version=ver(row))
    regions: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for i, row in enumerate(_rows(tables, "regions")):
        regions.setdefault(row["region"], []).append((i, row))
    for region, members in regions.items():
        # ranked rows first by rank, unranked last in file order (engine.bulk)
        members.sort(key=lambda m: (m[1].get("rank") is None, m[1].get("rank") or 0, m[0]))
        yield ev.RegionUpsert(
            region=region,
            locations=tuple(m[1]["location"] for m in members),
            version=max(ver(m[1]) for m in members),
        )
    for row in _rows(tables, "accounts"):
        yield ev.AccountUpsert(
            account=row["account"],
            parent=row.get("parent"),
            price_list=row.get("price_list"),
            currency=row.get("currency") or "USD",
            price_groups=tuple(row.get("price_groups") or ()),
            disclosure=row.get("disclosure") or "EXACT",
            disclosure_cap=row.get("disclosure_cap") or 0,
            version=ver(row),
        )
    assigned: dict[str, dict[str, list[Any]]] = {}
    for row in _rows(tables, "contract_assignments"):
        slot = assigned.setdefault(row["contract"], {"ACCOUNT": [], "PRICE_GROUP": [], "ALL": []})
        kind = row["assign_to"]
        if kind in slot and _assignment_ok(kind, row.get("code")):
            slot[kind].append(row.get("code"))
    for row in _rows(tables, "contracts"):
        slot = assigned.get(row["contract"], {"ACCOUNT": [], "PRICE_GROUP": [], "ALL": []})
        yield ev.ContractUpsert(
            contract=row["contract"],
            currency=row.get("currency") or "USD",
            priority=row.get("priority") or 0,
            valid_from=row.get("valid_from"),
            valid_to=row.get("valid_to"),
            accounts=tuple(slot["ACCOUNT"]),
            price_groups=tuple(slot["PRICE_GROUP"]),
            all_accounts=bool(slot["ALL"]),
            version=ver(row),
        )
    yield from _priced(tables, ver)
    for row in _rows(tables, "stock"):
        yield ev.InventorySet(
            sku=row["sku"],
            location=row["location"],
            on_hand=row.get("on_hand") or 0,
            allocated=row.get("allocated") or 0,
            safety_stock=row.get("safety_stock") or 0,
            version=ver(row),
        )
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in _rows(tables, "inbound"):
        cells.setdefault((row["sku"], row["location"]), []).append(row)
    for (sku, location), receipts in cells.items():
        yield ev.InboundSet(
            sku=sku,
            location=location,
            receipts=tuple((r["expected_date"], r["qty"]) for r in receipts),
            version=max(ver(r) for r in receipts),
        )


def _tiers(rows: list[dict[str, Any]], key: str, value: str) -> dict[Any, list[tuple[int, int]]]:
    tiers: dict[Any, list[tuple[int, int]]] = {}
    for row in rows:
        tiers.setdefault(row[key], []).append((row["min_qty"], row[value]))
    for found in tiers.values():
        found.sort(key=lambda tier: tier[0])
    return tiers


def _priced(tables: dict[str, Path], ver: Any) -> Iterator[Any]:
    """Price entries and contract lines, with their breaks as tiers sorted by minimum."""
    price_tiers = _tiers(_rows(tables, "price_breaks"), "price_id", "price_micros")
    for row in _rows(tables, "price_lists"):
        yield ev.PriceSet(
            price_list=row["price_list"],
            currency=row["currency"],
            sku=row["sku"],
            uom=row.get("uom"),
            tiers=tuple(price_tiers.get(row["price_id"], ())),
            valid_from=row.get("valid_from"),
            valid_to=row.get("valid_to"),
            version=ver(row),
        )
    del price_tiers
    line_tiers = _tiers(_rows(tables, "contract_line_breaks"), "line_id", "value")
    for row in _rows(tables, "contract_lines"):
        yield ev.ContractLineSet(
            contract=row["contract"],
            sku=row.get("sku"),
            product_group=row.get("product_group"),
            kind=row.get("kind") or "NET",
            uom=row.get("uom"),
            tiers=tuple(line_tiers.get(row["line_id"], ())),
            version=ver(row),
        )


@dataclass
class World:
    """The current event of every entity, indexed for per-request reads.

    Every value is an engine event, so a request's rows go into a fresh
    :class:`~bench.reference.Reference` as they are.
    """

    accounts: dict[str, ev.AccountUpsert] = field(default_factory=dict)
    #: account → it and its ancestors, nearest first (``Reference.account_chain``)
    account_chains: dict[str, list[str]] = field(default_factory=dict)
    items: dict[str, ev.ItemUpsert] = field(default_factory=dict)
    groups: dict[str, ev.ProductGroupUpsert] = field(default_factory=dict)
    #: SKU → its product group and the group's ancestors (``Reference.group_chain``)
    group_chains: dict[str, list[str]] = field(default_factory=dict)
    locations: list[ev.LocationUpsert] = field(default_factory=list)  # in extract order
    regions: dict[str, ev.RegionUpsert] = field(default_factory=dict)
    contracts: dict[str, ev.ContractUpsert] = field(default_factory=dict)
    #: assignee → contract codes: ("ACCOUNT", a), ("PRICE_GROUP", g), ("ALL", "")
    assigned: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    #: (price list, currency) → SKU → price entry
    prices: dict[tuple[str, str], dict[str, ev.PriceSet]] = field(default_factory=dict)
    lines_by_sku: dict[str, list[ev.ContractLineSet]] = field(default_factory=dict)
    lines_by_group: dict[str, list[ev.ContractLineSet]] = field(default_factory=dict)
    stock: dict[str, list[ev.InventorySet]] = field(default_factory=dict)
    inbound: dict[str, list[ev.InboundSet]] = field(default_factory=dict)

    def account_rows(self, account: str) -> list[ev.AccountUpsert]:
        """The account's event and its ancestors' (those that exist), nearest first."""
        chain = self.account_chains.get(account, ())
        return [self.accounts[a] for a in chain if a in self.accounts]

    def item_rows(self, sku: str) -> list[Any]:
        """The item's event and the product-group events of its chain."""
        item = self.items.get(sku)
        if item is None:
            return []
        chain = self.group_chains[sku]
        return [item, *(self.groups[g] for g in chain if g in self.groups)]


def load_world(events: Iterable[Any]) -> World:
    """Keep the newest valid event per entity key and index it (see :class:`World`)."""
    model = Reference()
    for event in events:
        model.apply(event)  # validates, and keeps the newest version of each key
    world = World()
    groups = world.groups
    for key, event in model.latest.items():
        if isinstance(event, (ev.PriceDelete, ev.ContractDelete, ev.ContractLineDelete)):
            continue
        kind = key[0]
        if kind == "account":
            world.accounts[event.account] = event
        elif kind == "item":
            world.items[event.sku] = event
        elif kind == "group":
            groups[event.product_group] = event
        elif kind == "location":
            world.locations.append(event)
        elif kind == "region":
            world.regions[event.region] = event
        elif kind == "contract":
            world.contracts[event.contract] = event
        elif kind == "price":
            world.prices.setdefault((event.price_list, event.currency), {})[event.sku] = event
        elif kind == "contract_line":
            if event.sku is not None:
                world.lines_by_sku.setdefault(event.sku, []).append(event)
            else:
                world.lines_by_group.setdefault(event.product_group, []).append(event)
        elif kind == "stock":
            world.stock.setdefault(event.sku, []).append(event)
        elif kind == "inbound":
            world.inbound.setdefault(event.sku, []).append(event)
    for contract in world.contracts.values():
        for account in contract.accounts:
            world.assigned.setdefault(("ACCOUNT", account), []).append(contract.contract)
        for group in contract.price_groups:
            world.assigned.setdefault(("PRICE_GROUP", group), []).append(contract.contract)
        if contract.all_accounts:
            world.assigned.setdefault(("ALL", ""), []).append(contract.contract)
    for code in world.accounts:
        world.account_chains[code] = model.account_chain(code)
    for sku, item in world.items.items():
        world.group_chains[sku] = model.group_chain(item.product_group)
    return world
