"""Baseline (c): a request's rows read with SQL from PostgreSQL, per request.

The extract is COPY-loaded into plain tables of its own schema (dropped and rebuilt on every
load, so reruns are clean): one row per entity, quantity breaks as arrays on their row,
indexed for the lookups a request makes (primary keys, contract lines by SKU and by product
group, assignments by assignee). A request runs up to ten statements — the account chain
and the product-group chains are recursive CTEs, the candidate contracts a join on the
assignments — sent in one psycopg pipeline, so a Quote costs one network round trip and
ten statement executions (nine without a region; GetAvailability six, Promise five).
psycopg prepares a statement after a few executions, as a production service would.
Connections are kept in a small pool (``--connections``) shared by the server's calls.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg import sql

from bench.baselines.dataset import World
from bench.baselines.rules import Needs
from engine import events as ev

__all__ = ["PostgresStore", "drop_schema", "load_postgres"]

_TABLES = """
CREATE TABLE locations (location text PRIMARY KEY, active boolean NOT NULL, ord int NOT NULL);
CREATE TABLE regions (region text PRIMARY KEY, locations text[] NOT NULL);
CREATE TABLE accounts (
    account text PRIMARY KEY, parent text, price_groups text[] NOT NULL, price_list text,
    currency text NOT NULL, disclosure text NOT NULL, disclosure_cap bigint NOT NULL);
CREATE TABLE product_groups (product_group text PRIMARY KEY, parent text);
CREATE TABLE items (
    sku text PRIMARY KEY, status text NOT NULL, base_uom text NOT NULL, uom_codes text[] NOT NULL,
    uom_factors bigint[] NOT NULL, min_order_qty bigint NOT NULL, order_multiple bigint NOT NULL,
    product_group text, replacement_cost_micros bigint, cost_currency text NOT NULL,
    lead_time_days int);
CREATE TABLE contracts (
    contract text PRIMARY KEY, currency text NOT NULL, priority int NOT NULL, valid_from date,
    valid_to date);
CREATE TABLE contract_assignments (contract text NOT NULL, assign_to text NOT NULL, code text);
CREATE TABLE contract_lines (
    contract text NOT NULL, sku text, product_group text, kind text NOT NULL, uom text,
    break_min bigint[] NOT NULL, break_value bigint[] NOT NULL);
CREATE TABLE prices (
    price_list text NOT NULL, currency text NOT NULL, sku text NOT NULL, uom text,
    valid_from date, valid_to date, break_min bigint[] NOT NULL, break_price bigint[] NOT NULL);
CREATE TABLE stock (
    sku text NOT NULL, location text NOT NULL, on_hand bigint NOT NULL, allocated bigint NOT NULL,
    safety_stock bigint NOT NULL);
CREATE TABLE inbound (
    sku text NOT NULL, location text NOT NULL, seq int NOT NULL, expected_date date NOT NULL,
    qty bigint NOT NULL);
"""
_INDEXES = """
ALTER TABLE prices ADD PRIMARY KEY (price_list, currency, sku);
CREATE INDEX prices_by_sku ON prices (sku);
ALTER TABLE stock ADD PRIMARY KEY (sku, location);
ALTER TABLE inbound ADD PRIMARY KEY (sku, location, seq);
CREATE INDEX contract_assignments_by_assignee ON contract_assignments (assign_to, code);
CREATE INDEX contract_lines_by_sku ON contract_lines (sku) WHERE sku IS NOT NULL;
CREATE INDEX contract_lines_by_group ON contract_lines (product_group)
    WHERE product_group IS NOT NULL;
ANALYZE;
"""

# The account and its ancestors (at most 8 above it, as pacache); the last parent may be an
# account the ERP has not sent, which still counts for contract assignments.
_CHAIN = """chain(account, depth) AS (
    SELECT %(account)s::text, 0
  UNION ALL
    SELECT a.parent, c.depth + 1 FROM chain c JOIN accounts a ON a.account = c.account
    WHERE a.parent IS NOT NULL AND c.depth < 8)"""
_CANDIDATES = """candidates AS (
    SELECT DISTINCT ca.contract FROM contract_assignments ca
    WHERE (ca.assign_to = 'ACCOUNT' AND ca.code IN (SELECT account FROM chain))
       OR (ca.assign_to = 'PRICE_GROUP' AND ca.code IN (
             SELECT unnest(price_groups) FROM accounts WHERE account = %(account)s))
       OR ca.assign_to = 'ALL')"""
# The SKUs' product groups and their parents (a chain is at most 8 groups, as pacache).
_GROUPS = """groups(product_group, depth) AS (
    SELECT DISTINCT product_group, 0 FROM items
    WHERE sku = ANY(%(skus)s) AND product_group IS NOT NULL
  UNION
    SELECT g.parent, s.depth + 1 FROM groups s JOIN product_groups g USING (product_group)
    WHERE g.parent IS NOT NULL AND s.depth < 7)"""

_QUERIES = {
    "accounts": f"""WITH RECURSIVE {_CHAIN}
        SELECT a.account, a.parent, a.price_groups, a.price_list, a.currency, a.disclosure,
               a.disclosure_cap
        FROM chain c JOIN accounts a USING (account) ORDER BY c.depth""",
    "items": """SELECT sku, status, base_uom, uom_codes, uom_factors, min_order_qty,
               order_multiple, product_group, replacement_cost_micros, cost_currency,
               lead_time_days
        FROM items WHERE sku = ANY(%(skus)s)""",
    "groups": f"""WITH RECURSIVE {_GROUPS}
        SELECT DISTINCT g.product_group, g.parent
        FROM groups s JOIN product_groups g USING (product_group)""",
    "contracts": f"""WITH RECURSIVE {_CHAIN}, {_CANDIDATES}
        SELECT c.contract, c.currency, c.priority, c.valid_from, c.valid_to,
               array_agg(ca.assign_to), array_agg(ca.code)
        FROM contracts c JOIN contract_assignments ca USING (contract)
        WHERE c.contract IN (SELECT contract FROM candidates)
        GROUP BY c.contract""",
    # two branches, not one OR: each can use its index (an OR here is a sequential scan)
    "lines": f"""WITH RECURSIVE {_CHAIN}, {_CANDIDATES}, {_GROUPS}
        SELECT contract, sku, product_group, kind, uom, break_min, break_value
        FROM contract_lines
        WHERE sku = ANY(%(skus)s) AND contract IN (SELECT contract FROM candidates)
        UNION ALL
        SELECT contract, sku, product_group, kind, uom, break_min, break_value
        FROM contract_lines
        WHERE product_group IN (SELECT product_group FROM groups)
          AND contract IN (SELECT contract FROM candidates)""",
    "prices": """SELECT p.price_list, p.currency, p.sku, p.uom, p.valid_from, p.valid_to,
               p.break_min, p.break_price
        FROM prices p,
             (SELECT coalesce(%(currency)s, currency) AS currency,
                     coalesce(price_list, 'LIST') AS own
              FROM accounts WHERE account = %(account)s) me
        WHERE p.currency = me.currency AND p.price_list IN ('LIST', me.own)
          AND p.sku = ANY(%(skus)s)""",
    "locations": "SELECT location, active FROM locations ORDER BY ord",
    "region": "SELECT region, locations FROM regions WHERE region = %(region)s",
    "stock": """SELECT sku, location, on_hand, allocated, safety_stock
        FROM stock WHERE sku = ANY(%(skus)s)""",
    "inbound": """SELECT sku, location, array_agg(expected_date ORDER BY seq),
               array_agg(qty ORDER BY seq)
        FROM inbound WHERE sku = ANY(%(skus)s) GROUP BY sku, location""",
}


def _rows(world: World) -> dict[str, list[tuple[Any, ...]]]:
    """Table → rows to COPY."""
    tables: dict[str, list[tuple[Any, ...]]] = {
        "locations": [(loc.location, loc.active, i) for i, loc in enumerate(world.locations)],
        "regions": [(r.region, list(r.locations)) for r in world.regions.values()],
        "accounts": [
            (
                a.account,
                a.parent,
                list(a.price_groups),
                a.price_list,
                a.currency,
                a.disclosure,
                a.disclosure_cap,
            )
            for a in world.accounts.values()
        ],
        "product_groups": [(g.product_group, g.parent) for g in world.groups.values()],
        "items": [
            (
                i.sku,
                i.status,
                i.base_uom,
                list(i.uoms),
                list(i.uoms.values()),
                i.min_order_qty,
                i.order_multiple,
                i.product_group,
                i.replacement_cost_micros,
                i.cost_currency,
                i.lead_time_days,
            )
            for i in world.items.values()
        ],
        "contracts": [
            (c.contract, c.currency, c.priority, c.valid_from, c.valid_to)
            for c in world.contracts.values()
        ],
        "contract_assignments": [
            (c.contract, kind, code)
            for c in world.contracts.values()
            for kind, codes in (
                ("ACCOUNT", c.accounts),
                ("PRICE_GROUP", c.price_groups),
                ("ALL", [None] if c.all_accounts else []),
            )
            for code in codes
        ],
        "contract_lines": [
            (
                line.contract,
                line.sku,
                line.product_group,
                line.kind,
                line.uom,
                [m for m, _ in line.tiers],
                [v for _, v in line.tiers],
            )
            for lines in (*world.lines_by_sku.values(), *world.lines_by_group.values())
            for line in lines
        ],
        "prices": [
            (
                p.price_list,
                p.currency,
                p.sku,
                p.uom,
                p.valid_from,
                p.valid_to,
                [m for m, _ in p.tiers],
                [v for _, v in p.tiers],
            )
            for entries in world.prices.values()
            for p in entries.values()
        ],
        "stock": [
            (s.sku, s.location, s.on_hand, s.allocated, s.safety_stock)
            for positions in world.stock.values()
            for s in positions
        ],
        "inbound": [
            (i.sku, i.location, seq, date, qty)
            for schedules in world.inbound.values()
            for i in schedules
            for seq, (date, qty) in enumerate(i.receipts)
        ],
    }
    return tables


def load_postgres(world: World, url: str, schema: str = "pacache_baseline") -> dict[str, int]:
    """(Re)create ``schema`` and COPY ``world`` into it; returns rows per table."""
    name = sql.Identifier(schema)
    counts = {}
    with psycopg.connect(url) as connection:
        connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(name))
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(name))
        connection.execute(sql.SQL("SET search_path TO {}").format(name))
        connection.execute(_TABLES)
        with connection.cursor() as cursor:
            for table, rows in _rows(world).items():
                with cursor.copy(
                    sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table))
                ) as copy:
                    for row in rows:
                        copy.write_row(row)
                counts[table] = len(rows)
        connection.execute(_INDEXES)
    return counts


def drop_schema(url: str, schema: str) -> None:
    """Remove a baseline's schema (its tables are rebuilt from the extract on every load)."""
    with psycopg.connect(url) as connection:
        connection.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


# the serving connections' name in pg_stat_activity: the benchmark finds their backend
# processes by it and counts their CPU and memory as the baseline's
APPLICATION_NAME = "pacache-baseline"


def backend_pids(url: str) -> list[int]:
    """Pids of the PostgreSQL backends serving the baseline's connections."""
    with psycopg.connect(url, connect_timeout=5) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (APPLICATION_NAME,)
        ).fetchall()
    return [int(row[0]) for row in rows]


class PostgresStore:
    """Reads a request's rows with SQL (see the module docstring for the statements)."""

    name = "postgres"

    def __init__(self, connections: list[psycopg.AsyncConnection[Any]]) -> None:
        self.pool: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
        for connection in connections:
            self.pool.put_nowait(connection)
        self.connections = connections

    @classmethod
    async def open(cls, url: str, schema: str, size: int = 8) -> PostgresStore:
        """Open ``size`` connections with ``schema`` on their search path."""
        connections = []
        for _ in range(size):
            connection = await psycopg.AsyncConnection.connect(
                url, autocommit=True, application_name=APPLICATION_NAME
            )
            await connection.execute(
                sql.SQL("SET search_path TO {}").format(sql.Identifier(schema))
            )
            connections.append(connection)
        return cls(connections)

    async def read(self, needs: Needs) -> list[Any]:
        """The events of the request's rows: its statements in one pipeline."""
        names = ["items"]
        if needs.account:
            names.append("accounts")
        if needs.prices and needs.account:
            names += ["groups", "contracts", "lines", "prices"]
        if needs.stock:
            names += ["locations", "stock", "inbound"] + (["region"] if needs.region else [])
        params = {
            "account": needs.account,
            "skus": needs.skus,
            "currency": needs.currency,
            "region": needs.region,
        }
        connection = await self.pool.get()
        try:
            async with connection.pipeline():
                cursors = [await connection.execute(_QUERIES[n], params) for n in names]
            results = {n: await c.fetchall() for n, c in zip(names, cursors, strict=True)}
        finally:
            self.pool.put_nowait(connection)
        return _events(results)

    async def close(self) -> None:
        """Close every connection."""
        for connection in self.connections:
            await connection.close()


def _events(results: dict[str, list[tuple[Any, ...]]]) -> list[Any]:
    """Rows → engine events (locations first: "all locations" keeps their order)."""
    out: list[Any] = [
        ev.LocationUpsert(location=loc, active=active, version=1)
        for loc, active in results.get("locations", ())
    ]
    out += (
        ev.RegionUpsert(region=region, locations=tuple(locations), version=1)
        for region, locations in results.get("region", ())
    )
    out += (
        ev.AccountUpsert(account=a, parent=parent, price_groups=tuple(groups), price_list=book,
                         currency=currency, disclosure=disclosure, disclosure_cap=cap, version=1)
        for a, parent, groups, book, currency, disclosure, cap in results.get("accounts", ())
    )  # fmt: skip
    out += (
        ev.ItemUpsert(sku=sku, status=status, base_uom=base,
                      uoms=dict(zip(codes, factors, strict=True)), min_order_qty=moq,
                      order_multiple=multiple, product_group=group,
                      replacement_cost_micros=cost, cost_currency=cost_currency,
                      lead_time_days=lead, version=1)
        for sku, status, base, codes, factors, moq, multiple, group, cost, cost_currency, lead
        in results.get("items", ())
    )  # fmt: skip
    out += (
        ev.ProductGroupUpsert(product_group=group, parent=parent, version=1)
        for group, parent in results.get("groups", ())
    )
    for contract, currency, priority, start, end, kinds, codes in results.get("contracts", ()):
        pairs = list(zip(kinds, codes, strict=True))
        out.append(
            ev.ContractUpsert(
                contract=contract, currency=currency, priority=priority, valid_from=start,
                valid_to=end, accounts=tuple(c for k, c in pairs if k == "ACCOUNT"),
                price_groups=tuple(c for k, c in pairs if k == "PRICE_GROUP"),
                all_accounts=any(k == "ALL" for k in kinds), version=1,
            )
        )  # fmt: skip
    out += (
        ev.ContractLineSet(contract=contract, sku=sku, product_group=group, kind=kind, uom=uom,
                           tiers=tuple(zip(mins, values, strict=True)), version=1)
        for contract, sku, group, kind, uom, mins, values in results.get("lines", ())
    )  # fmt: skip
    out += (
        ev.PriceSet(price_list=book, currency=currency, sku=sku, uom=uom, valid_from=start,
                    valid_to=end, tiers=tuple(zip(mins, values, strict=True)), version=1)
        for book, currency, sku, uom, start, end, mins, values in results.get("prices", ())
    )  # fmt: skip
    out += (
        ev.InventorySet(sku=sku, location=loc, on_hand=on_hand, allocated=allocated,
                        safety_stock=safety, version=1)
        for sku, loc, on_hand, allocated, safety in results.get("stock", ())
    )  # fmt: skip
    out += (
        ev.InboundSet(sku=sku, location=loc, receipts=tuple(zip(dates, qtys, strict=True)),
                      version=1)
        for sku, loc, dates, qtys in results.get("inbound", ())
    )  # fmt: skip
    return out
