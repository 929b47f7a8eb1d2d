"""Valid documents of every loader input, for the fuzz suite to mutate.

Taken from the loaders' own tests (``tests/integration``): Debezium envelopes of every
mapped table in Postgres, MySQL and SQL Server shapes, with and without the schema
wrapper; the X12 846 and 832 documents; canonical event entries in msgpack and JSON; and
JSON Lines for ``pacache publish``. A mutation of a valid document gets past the first
check and into the code behind it, where random bytes never reach.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from loaders.debezium import DEFAULT_TABLES, TableMapping
from loaders.events import encode
from loaders.x12 import X12Options
from tests.integration.test_debezium import (
    DATE,
    DECIMAL,
    ERP_PRICES,
    ERP_TABLES,
    JSON,
    PRICE_COLUMNS,
    change,
    column,
    days,
    erp_changes,
    mysql_source,
    pg_source,
    precise,
    price_row,
    wrapped,
)
from tests.integration.test_x12 import CATALOG, INVENTORY, STOCK_BODY, edi
from tests.unit.test_decode_contracts import SAMPLES

__all__ = [
    "CSV_TABLES",
    "DEBEZIUM",
    "EVENT_ENTRIES",
    "JSON_LINES",
    "MAPPINGS",
    "X12_DOCUMENTS",
    "X12_OPTIONS",
]

#: One valid entry of every event type, each alone and in batches, msgpack and JSON.
EVENT_ENTRIES: list[bytes] = [encode(e) for e in SAMPLES] + [encode(e, json=True) for e in SAMPLES]
EVENT_ENTRIES += [encode(SAMPLES), encode(SAMPLES, json=True), encode(SAMPLES[5:8])]

#: JSON Lines as ``pacache publish`` reads them: one event, or an array of them, a line.
JSON_LINES: list[bytes] = [encode(e, json=True) for e in SAMPLES] + [
    encode(SAMPLES[5:8], json=True)
]

_ITEM = {
    "sku": "BOLT-M8", "status": "active", "base_uom": "EA",
    "uoms": '{"EA": 1, "BX": 100, "CS": 1000}', "product_group": "FASTENERS",
    "min_order_qty": 100, "order_multiple": 100, "replacement_cost_micros": 41_500,
    "lead_time_days": 12,
}  # fmt: skip
_CONTRACT = {
    "contract": "ACME-2025", "currency": "USD", "priority": 10,
    "valid_from": days(dt.date(2025, 1, 1)), "valid_to": "2025-12-31",
    "accounts": ["ACME", "ACME-EAST"], "price_groups": "GOLD|SILVER", "all_accounts": 0,
}  # fmt: skip
_LINE = {
    "line_id": 9001, "contract": "ACME-2025", "sku": None, "product_group": "FASTENERS",
    "kind": "discount", "uom": None,
    "breaks": '[{"min_qty": 0, "value": 500}, {"min_qty": 1000, "value": 750}]',
}  # fmt: skip
_ACCOUNT = {
    "account": "ACME-EAST", "parent": "ACME", "price_groups": ["GOLD"], "price_list": None,
    "currency": "USD", "disclosure": "capped", "disclosure_cap": 50,
}  # fmt: skip
_STOCK = {"sku": "BOLT-M8", "location": "DAL", "on_hand": 500, "allocated": 0, "safety_stock": 0}
_SQLSERVER = {
    "connector": "sqlserver", "change_lsn": "00000027:00000758:0005",
    "commit_lsn": "00000027:00000758:0007", "event_serial_no": 2, "table": "stock",
    "ts_ms": 1_740_990_000_000,
}  # fmt: skip
_ORACLE = {"connector": "oracle", "scn": "2147483648", "ts_ms": 1_740_990_000_000}
_ITEM_MASTER = TableMapping(
    "items",
    columns={"sku": "ITEM_NO", "status": "STATUS", "base_uom": "STOCK_UOM",
             "replacement_cost_micros": "COST", "lead_time_days": "LEAD_DAYS"},
    amounts=frozenset({"replacement_cost_micros"}),
    scales={"COST": 4},
    values={"status": {"A": "ACTIVE", "D": "DISCONTINUED", "X": "BLOCKED"}},
)  # fmt: skip
_ITEM_ROW = {
    "ITEM_NO": 100234, "STATUS": "A", "STOCK_UOM": "ea", "COST": precise("0.4150", 4),
    "LEAD_DAYS": 10,
}  # fmt: skip

#: The table mappings the documents below are read with, by name.
MAPPINGS: dict[str, dict[str, TableMapping]] = {
    "default": dict(DEFAULT_TABLES),
    "erp_prices": dict(ERP_PRICES),
    "erp_tables": dict(ERP_TABLES),
    "item_master": {"ITEM_MASTER": _ITEM_MASTER},
    "version_column": {"stock": TableMapping("stock", version_column="change_no")},
    "inclusive": {
        **DEFAULT_TABLES,
        "contracts": TableMapping("contracts", valid_to_inclusive=True),
    },
}


def _text(message: Any) -> str:
    return message.decode() if isinstance(message, bytes) else json.dumps(message)


def _debezium() -> list[tuple[str, str, str | None]]:
    """(JSON text, mapping name, table argument) of valid change events."""
    item_columns = [column(n) for n in _ITEM if n != "uoms"] + [column("uoms", logical=JSON)]
    documents: list[tuple[Any, str, str | None]] = [
        (wrapped(change("c", pg_source("items", 2_371_448_120), after=_ITEM), "items",
                 item_columns), "default", "items"),
        (wrapped(change("c", pg_source("prices", 2_371_450_000),
                        after=price_row(unit_price=precise("12.3457", 4))),
                 "prices", PRICE_COLUMNS), "erp_prices", "prices"),
        (wrapped(change("u", pg_source("prices", 9),
                        after=price_row(unit_price=precise("0.1250", 4),
                                        valid_to=days(dt.date(2025, 6, 30)))),
                 "prices", [*PRICE_COLUMNS[:-1], column("valid_to", "int32", DATE)]),
         "erp_prices", None),
        (wrapped(change("c", pg_source("items", 10),
                        after={"sku": "X-1", "replacement_cost_micros": precise("1.50", 2)}),
                 "items", [column("sku"),
                           column("replacement_cost_micros", "bytes", DECIMAL, scale="2")]),
         "default", "items"),
        (change("u", pg_source("prices", 77),
                after=price_row(breaks='[{"min_qty": 1000, "price_micros": "110000"}, '
                                       '[0, "125000"]]', unit_price=None)), "default", "prices"),
        (change("r", pg_source("prices", 5, snapshot="true"),
                after={"price_list": "LIST", "currency": "usd", "sku": "NUT-M8", "uom": "BX",
                       "breaks": [[0, 12_345_000], [10, 11_500_000]]}), "default", None),
        (change("d", pg_source("prices", 812),
                before={"price_list": "LIST", "currency": "USD", "sku": "BOLT-M8",
                        "price_micros": 125_000}), "default", "prices"),
        (change("r", pg_source("stock", 100, snapshot="last"), after=_STOCK), "default", None),
        (change("u", pg_source("stock", 300), before=_STOCK, after=_STOCK | {"location": "ATL"}),
         "default", "stock"),
        (change("d", pg_source("items", 41), before={"sku": "BOLT-M8"}), "default", "items"),
        (change("c", pg_source("contracts", 50), after=_CONTRACT), "inclusive", "contracts"),
        (change("c", pg_source("contract_lines", 51), after=_LINE), "default", None),
        (change("d", pg_source("contract_lines", 52), before=_LINE), "default", None),
        (change("c", pg_source("accounts", 60), after=_ACCOUNT), "default", None),
        (change("c", pg_source("locations", 61), after={"location": "DAL", "active": "t"}),
         "default", None),
        (change("c", pg_source("product_groups", 62),
                after={"product_group": "NUTS", "parent": "FASTENERS"}), "default", None),
        (change("u", mysql_source("ITEM_MASTER", "mysql-bin.000012", 7_340_112, row=3),
                before=_ITEM_ROW, after=_ITEM_ROW | {"STATUS": "D"}), "item_master", None),
        (change("c", _SQLSERVER, after=_STOCK), "default", None),
        (change("u", _ORACLE, after={**_STOCK, "change_no": 9_000_017}), "version_column",
         "stock"),
        (change("d", _ORACLE, before={**_STOCK, "change_no": "AAAAAAAB9A0="}), "version_column",
         "stock"),
        ({"schema": None, "payload": None}, "default", "stock"),
        ({"op": "m", "source": pg_source("stock", 1), "message": {}}, "default", "stock"),
    ]  # fmt: skip
    documents += [(c, "erp_tables", None) for c in erp_changes()]
    return [(_text(message), mapping, table) for message, mapping, table in documents]


#: (JSON text of a valid change event, name of its mapping in MAPPINGS, table argument)
DEBEZIUM: list[tuple[str, str, str | None]] = _debezium()

_PO4_BODY = ["BCT*PC*C1", "DTM*007*20250301", "CUR*SE*EUR", "LIN**VP*BOLT-M8", "PO4*100*1*EA",
             "CTP**CAT*1.00*0*EA", "CTP**CAT*0.90*100*EA", "DTM*036*20251231",
             "CTP**CAT*0.04*0*EA*DIS*0.9"]  # fmt: skip
_SCHEDULE_BODY = [*STOCK_BODY, "QTY*63*9*EA", "SCH*4*EA***018*20250312", "QTY*33*8*EA",
                  "DTM*017*20250401", "SDQ*EA*92*DAL*2500*ATL*800", "N1*SF*PLANT*92*ATL",
                  "QTY*02*1*EA"]  # fmt: skip

#: Valid X12 interchanges: the partner documents and small ones of every rule.
X12_DOCUMENTS: list[str] = [
    INVENTORY,
    CATALOG,
    edi(("846", STOCK_BODY)),
    edi(("846", _SCHEDULE_BODY), control=4801),
    edi(("832", _PO4_BODY), control=4802, gs_time="063015"),
    edi(("850", ["BEG*00*SA*PO1**20250303"]), ("846", STOCK_BODY)),
    INVENTORY + CATALOG.replace("*", "|"),
    INVENTORY.replace("*", "|")
    .replace("|U|00401|", "|^|00501|")
    .replace("|>~", "|:~")
    .replace("~\n", "'\r\n"),
]


def _factor(sku: str, uom: str) -> int | None:
    return {"": 1, "EA": 1, "BX": 100, "CA": 12}.get(uom)


#: The options documents are read with: defaults, and every switch turned.
X12_OPTIONS: list[X12Options] = [
    X12Options(),
    X12Options(uom_factor=_factor),
    X12Options(uom_factor=_factor, version_from="datetime", clear_inbound=True, with_items=True),
    X12Options(price_lists={"CAT": "LIST", "MSR": "RETAIL"}, currency="JPY"),
]


#: A small valid bulk extract as CSV tables (``engine.bulk.EXTRACT_SCHEMA``), file → text.
CSV_TABLES: dict[str, str] = {
    "product_groups.csv": "product_group,parent\nFASTENERS,\nNUTS,FASTENERS\n",
    "locations.csv": "location,active,version\nDAL,true,1\nATL,false,1\n",
    "regions.csv": "region,location,rank\nSOUTH,DAL,1\nSOUTH,ATL,2\n",
    "items.csv": "sku,status,base_uom,product_group,min_order_qty,order_multiple,"
    "replacement_cost_micros,cost_currency,lead_time_days\n"
    "BOLT-M8,ACTIVE,EA,FASTENERS,1,1,41500,USD,10\nNUT-M8,,EA,NUTS,,,,,\n",
    "item_uoms.csv": "sku,uom,factor\nBOLT-M8,BX,100\nBOLT-M8,EA,1\n",
    "accounts.csv": "account,parent,price_list,currency,price_groups,disclosure,disclosure_cap\n"
    "ACME,,LIST,USD,GOLD|SILVER,EXACT,\nACME-EAST,ACME,,USD,,CAPPED,50\n",
    "contracts.csv": "contract,currency,priority,valid_from,valid_to\nK1,USD,10,2025-01-01,\n",
    "contract_assignments.csv": "contract,assign_to,code\nK1,ACCOUNT,ACME\nK1,ALL,\n",
    "price_lists.csv": "price_id,price_list,currency,sku,uom,valid_from,valid_to\n"
    "1,LIST,USD,BOLT-M8,EA,2025-01-01,\n2,LIST,USD,NUT-M8,,,2030-01-01\n",
    "price_breaks.csv": "price_id,min_qty,price_micros\n1,0,250000\n1,100,200000\n2,0,99\n",
    "contract_lines.csv": "line_id,contract,sku,product_group,kind,uom\n"
    "7,K1,BOLT-M8,,NET,EA\n8,K1,,NUTS,DISCOUNT,\n",
    "contract_line_breaks.csv": "line_id,min_qty,value\n7,0,180000\n8,0,500\n",
    "stock.csv": "sku,location,on_hand,allocated,safety_stock,version\n"
    "BOLT-M8,DAL,500,20,0,3\nNUT-M8,ATL,1000,,,\n",
    "inbound.csv": "sku,location,expected_date,qty\nNUT-M8,DAL,2025-03-12,300\n",
    "extract.json": '{"extract_version": 5, "extracted_at_ms": 1740990000000, '
    '"stream_ids": {"pacache:master": "1-0"}}',
}
