"""Debezium change events of an ERP database → engine events → state.

The envelopes are shaped like what Debezium 2.x emits with the JSON converter: Postgres
(pgoutput) and MySQL (binlog) sources, with and without the schema wrapper, decimals in
``precise`` and ``string`` modes.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from engine import events as ev
from engine.deltas import apply_batch
from engine.state import Inventory, State
from loaders.debezium import (
    DEFAULT_TABLES,
    ChangeEventError,
    TableMapping,
    change_events,
    source_version,
)
from tests.builders import micros, quote_line

TS = 1_740_990_000_000  # 2025-03-03 08:20 UTC


# --- envelope builders -------------------------------------------------------------------


def precise(amount: str, scale: int) -> str:
    """``decimal.handling.mode=precise``: base64 big-endian two's-complement unscaled."""
    unscaled = int(Decimal(amount).scaleb(scale))
    size = (unscaled.bit_length() + 8) // 8
    return base64.b64encode(unscaled.to_bytes(size, "big", signed=True)).decode()


def pg_source(table: str, lsn: int, *, snapshot: str = "false", ts_ms: int = TS) -> dict:
    return {
        "version": "2.7.3.Final", "connector": "postgresql", "name": "erp", "ts_ms": ts_ms,
        "snapshot": snapshot, "db": "erp", "sequence": f'["{lsn - 56}","{lsn}"]',
        "schema": "public", "table": table, "txId": 88123, "lsn": lsn, "xmin": None,
    }  # fmt: skip


def mysql_source(table: str, file: str, pos: int, row: int = 0, ts_ms: int = TS) -> dict:
    return {
        "version": "2.7.3.Final", "connector": "mysql", "name": "erp", "ts_ms": ts_ms,
        "snapshot": "false", "db": "erp", "sequence": None, "table": table,
        "server_id": 223344, "gtid": None, "file": file, "pos": pos, "row": row,
        "thread": 17, "query": None,
    }  # fmt: skip


def change(op: str, source: dict, *, before: dict | None = None, after: dict | None = None):
    return {
        "before": before, "after": after, "source": source, "op": op,
        "ts_ms": source["ts_ms"] + 140, "transaction": None,
    }  # fmt: skip


def column(name: str, kind: str = "string", logical: str | None = None, **params: str) -> dict:
    spec: dict[str, Any] = {"type": kind, "optional": True, "field": name}
    if logical:
        spec |= {"name": logical, "version": 1}
    if params:
        spec["parameters"] = params
    return spec


def wrapped(payload: dict, table: str, columns: list[dict]) -> bytes:
    """The payload inside Kafka Connect's schema wrapper (schemas.enable=true), as bytes."""
    row = {
        "type": "struct",
        "fields": columns,
        "optional": True,
        "name": f"erp.public.{table}.Value",
    }
    schema = {
        "type": "struct",
        "name": f"erp.public.{table}.Envelope",
        "version": 2,
        "optional": False,
        "fields": [
            {**row, "field": "before"},
            {**row, "field": "after"},
            {"type": "struct", "fields": [], "optional": False,
             "name": "io.debezium.connector.postgresql.Source", "field": "source"},
            {"type": "string", "optional": False, "field": "op"},
            {"type": "int64", "optional": True, "field": "ts_ms"},
        ],
    }  # fmt: skip
    return json.dumps({"schema": schema, "payload": payload}).encode()


DECIMAL = "org.apache.kafka.connect.data.Decimal"
DATE = "io.debezium.time.Date"
JSON = "io.debezium.data.Json"
PRICE_COLUMNS = [
    column("price_id", "int64"),
    column("price_list"),
    column("currency"),
    column("sku"),
    column("uom"),
    column("unit_price", "bytes", DECIMAL, scale="4", **{"connect.decimal.precision": "12"}),
    column("breaks", "string", JSON),
    column("valid_from", "int32", DATE),
    column("valid_to", "int32", DATE),
]
#: An ERP whose price rows carry a NUMERIC(12,4) amount in major units.
ERP_PRICES = {
    **DEFAULT_TABLES,
    "prices": TableMapping(
        "prices", columns={"price_micros": "unit_price"}, amounts=frozenset({"price_micros"})
    ),
}


def days(date: dt.date) -> int:
    return (date - dt.date(1970, 1, 1)).days


def price_row(**values: Any) -> dict:
    row = {
        "price_id": 501, "price_list": "LIST", "currency": "USD", "sku": "BOLT-M8",
        "uom": "EA", "unit_price": precise("0.1250", 4), "breaks": None,
        "valid_from": days(dt.date(2025, 1, 1)), "valid_to": None,
    }  # fmt: skip
    return row | values


# --- Postgres ----------------------------------------------------------------------------


def test_postgres_insert_with_the_schema_wrapper_becomes_an_item_upsert_versioned_by_lsn():
    after = {
        "sku": "BOLT-M8",
        "status": "active",
        "base_uom": "EA",
        "uoms": '{"EA": 1, "BX": 100, "CS": 1000}',
        "product_group": "FASTENERS",
        "min_order_qty": 100,
        "order_multiple": 100,
        "replacement_cost_micros": 41_500,
        "lead_time_days": 12,
    }
    columns = [column(name) for name in after if name != "uoms"] + [column("uoms", logical=JSON)]
    message = wrapped(change("c", pg_source("items", 2_371_448_120), after=after), "items", columns)

    [item] = change_events(message, "items")

    assert item == ev.ItemUpsert(
        sku="BOLT-M8",
        version=2_371_448_120,
        ts_ms=TS,
        status="ACTIVE",
        base_uom="EA",
        uoms={"BX": 100, "CS": 1000},
        product_group="FASTENERS",
        min_order_qty=100,
        order_multiple=100,
        replacement_cost_micros=41_500,
        lead_time_days=12,
    )


def test_a_precise_decimal_price_is_converted_to_micros_exactly():
    after = price_row(unit_price=precise("12.3457", 4))
    message = wrapped(
        change("c", pg_source("prices", 2_371_450_000), after=after), "prices", PRICE_COLUMNS
    )

    [price] = change_events(message, "prices", tables=ERP_PRICES)

    assert price.tiers == ((0, 12_345_700),)
    assert (price.price_list, price.currency, price.sku, price.uom) == (
        "LIST",
        "USD",
        "BOLT-M8",
        "EA",
    )
    assert price.valid_from == dt.date(2025, 1, 1) and price.valid_to is None


def test_a_negative_precise_decimal_decodes_as_twos_complement():
    mapping = {"items": TableMapping("items", amounts=frozenset({"replacement_cost_micros"}))}
    columns = [column("sku"), column("replacement_cost_micros", "bytes", DECIMAL, scale="2")]
    after = {"sku": "X-1", "replacement_cost_micros": precise("-1.50", 2)}
    message = wrapped(change("c", pg_source("items", 10), after=after), "items", columns)

    with pytest.raises(ChangeEventError, match=r"replacement_cost_micros: -1500000 out of range"):
        change_events(message, "items", tables=mapping)


def test_string_decimal_mode_gives_the_same_micros_as_precise_mode():
    columns = [c if c["field"] != "unit_price" else column("unit_price") for c in PRICE_COLUMNS]
    message = wrapped(
        change("c", pg_source("prices", 2_371_450_000), after=price_row(unit_price="12.3457")),
        "prices",
        columns,
    )

    [price] = change_events(message, "prices", tables=ERP_PRICES)

    assert price.tiers == ((0, 12_345_700),)


def test_a_double_encoded_price_is_refused_with_a_reason_naming_the_field():
    columns = [
        c if c["field"] != "unit_price" else column("unit_price", "double") for c in PRICE_COLUMNS
    ]
    message = wrapped(
        change("c", pg_source("prices", 9), after=price_row(unit_price=12.3457)), "prices", columns
    )

    with pytest.raises(
        ChangeEventError, match=r"prices\.price_micros: 12\.3457 is a floating-point"
    ):
        change_events(message, "prices", tables=ERP_PRICES)


def test_a_price_with_more_than_six_decimal_places_is_refused_not_rounded():
    columns = [
        column("sku"),
        column("price_list"),
        column("currency"),
        column("unit_price", "bytes", DECIMAL, scale="8"),
    ]
    after = {
        "sku": "BOLT-M8",
        "price_list": "LIST",
        "currency": "USD",
        "unit_price": precise("0.12345678", 8),
    }
    message = wrapped(change("c", pg_source("prices", 9), after=after), "prices", columns)

    with pytest.raises(ChangeEventError, match="more than 6 decimal places"):
        change_events(message, "prices", tables=ERP_PRICES)


def test_a_breaks_column_becomes_the_tiers_of_one_price_entry():
    breaks = '[{"min_qty": 1000, "price": 0.11}, {"min_qty": 0, "price": 0.125}, [5000, "0.0975"]]'
    mapping = {
        "prices": TableMapping(
            "prices", columns={"price_micros": "price"}, amounts=frozenset({"price_micros"})
        )
    }
    after = price_row(breaks=breaks, unit_price=None)

    [price] = change_events(
        change("u", pg_source("prices", 77), after=after), "prices", tables=mapping
    )

    assert price.tiers == ((0, 125_000), (1000, 110_000), (5000, 97_500))


def test_a_breaks_column_in_micros_is_read_as_integers():
    after = {
        "price_list": "LIST",
        "currency": "usd",
        "sku": "NUT-M8",
        "uom": "BX",
        "breaks": [[0, 12_345_000], [10, 11_500_000]],
    }

    [price] = change_events(
        change("r", pg_source("prices", 5, snapshot="true"), after=after), "prices"
    )

    assert price.currency == "USD"
    assert price.tiers == ((0, 12_345_000), (10, 11_500_000))


def test_a_price_row_delete_becomes_a_price_delete_from_the_before_image():
    before = {"price_list": "LIST", "currency": "USD", "sku": "BOLT-M8", "price_micros": 125_000}

    [delete] = change_events(change("d", pg_source("prices", 812), before=before), "prices")

    assert delete == ev.PriceDelete(
        price_list="LIST", currency="USD", sku="BOLT-M8", version=812, ts_ms=TS
    )


def test_a_snapshot_read_is_applied_like_an_insert():
    after = {
        "sku": "BOLT-M8",
        "location": "DAL",
        "on_hand": 500,
        "allocated": 20,
        "safety_stock": 10,
    }
    source = pg_source("stock", 100, snapshot="last")

    [stock] = change_events(change("r", source, after=after), "stock")

    assert stock == ev.InventorySet(
        sku="BOLT-M8",
        location="DAL",
        on_hand=500,
        allocated=20,
        safety_stock=10,
        version=100,
        ts_ms=TS,
    )


def test_tombstones_and_logical_messages_give_no_events():
    assert change_events(None, "stock") == []
    assert change_events(b"", "stock") == []
    assert change_events(b"null", "stock") == []
    assert change_events({"schema": None, "payload": None}, "stock") == []
    assert change_events({"op": "m", "source": pg_source("stock", 1), "message": {}}, "stock") == []


def test_an_unchanged_toasted_column_is_refused_with_the_reason():
    after = price_row(breaks="__debezium_unavailable_value")

    with pytest.raises(ChangeEventError, match=r"prices\.breaks: unchanged TOASTed value"):
        change_events(change("u", pg_source("prices", 9), after=after), "prices", tables=ERP_PRICES)


def test_an_update_that_moves_a_stock_row_to_another_location_zeroes_the_old_one():
    before = {
        "sku": "BOLT-M8",
        "location": "DAL",
        "on_hand": 500,
        "allocated": 0,
        "safety_stock": 0,
    }
    after = before | {"location": "ATL"}

    old, new = change_events(
        change("u", pg_source("stock", 300), before=before, after=after), "stock"
    )

    assert (old.location, old.on_hand, old.version) == ("DAL", 0, 300)
    assert (new.location, new.on_hand, new.version) == ("ATL", 500, 300)


def test_deletes_zero_stock_block_items_and_ignore_accounts():
    stock = {"sku": "BOLT-M8", "location": "DAL", "on_hand": 5}
    [zeroed] = change_events(change("d", pg_source("stock", 40), before=stock), "stock")
    [blocked] = change_events(
        change("d", pg_source("items", 41), before={"sku": "BOLT-M8"}), "items"
    )
    gone = change_events(
        change("d", pg_source("accounts", 42), before={"account": "ACME"}), "accounts"
    )

    assert (zeroed.on_hand, zeroed.allocated, zeroed.safety_stock) == (0, 0, 0)
    assert blocked.status == "BLOCKED"
    assert gone == []


def test_contracts_and_their_lines_map_with_code_lists_flags_and_basis_points():
    contract = {
        "contract": "ACME-2025",
        "currency": "USD",
        "priority": 10,
        "valid_from": days(dt.date(2025, 1, 1)),
        "valid_to": "2025-12-31",
        "accounts": ["ACME", "ACME-EAST"],
        "price_groups": "GOLD|SILVER",
        "all_accounts": 0,
    }
    breaks = '[{"min_qty": 0, "value": 500}, {"min_qty": 1000, "value": 750}]'
    line = {
        "line_id": 9001,
        "contract": "ACME-2025",
        "sku": None,
        "product_group": "FASTENERS",
        "kind": "discount",
        "uom": None,
        "breaks": breaks,
    }
    mapping = {**DEFAULT_TABLES, "contracts": TableMapping("contracts", valid_to_inclusive=True)}

    [header] = change_events(
        change("c", pg_source("contracts", 50), after=contract), "contracts", tables=mapping
    )
    [group_line] = change_events(
        change("c", pg_source("contract_lines", 51), after=line), "contract_lines"
    )
    [deleted] = change_events(
        change("d", pg_source("contract_lines", 52), before=line), "contract_lines"
    )

    assert header == ev.ContractUpsert(
        contract="ACME-2025",
        version=50,
        ts_ms=TS,
        currency="USD",
        priority=10,
        valid_from=dt.date(2025, 1, 1),
        valid_to=dt.date(2026, 1, 1),
        accounts=("ACME", "ACME-EAST"),
        price_groups=("GOLD", "SILVER"),
        all_accounts=False,
    )
    assert (group_line.product_group, group_line.kind, group_line.tiers) == (
        "FASTENERS",
        "DISCOUNT",
        ((0, 500), (1000, 750)),
    )
    assert deleted == ev.ContractLineDelete(
        contract="ACME-2025", product_group="FASTENERS", version=52, ts_ms=TS
    )


def test_accounts_map_price_groups_from_a_postgres_array():
    after = {
        "account": "ACME-EAST",
        "parent": "ACME",
        "price_groups": ["GOLD"],
        "price_list": None,
        "currency": "USD",
        "disclosure": "capped",
        "disclosure_cap": 50,
    }

    [account] = change_events(change("c", pg_source("accounts", 60), after=after), "accounts")

    assert account == ev.AccountUpsert(
        account="ACME-EAST",
        parent="ACME",
        price_groups=("GOLD",),
        currency="USD",
        disclosure="CAPPED",
        disclosure_cap=50,
        version=60,
        ts_ms=TS,
    )


# --- MySQL -------------------------------------------------------------------------------


def test_mysql_binlog_positions_order_versions_across_files_events_and_rows():
    def version(file: str, pos: int, row: int = 0) -> int:
        return source_version(mysql_source("stock", file, pos, row))

    assert version("mysql-bin.000003", 154) < version("mysql-bin.000003", 155)
    assert version("mysql-bin.000003", 155, 0) < version("mysql-bin.000003", 155, 1)
    assert version("mysql-bin.000003", 4_294_967_295) < version("mysql-bin.000004", 4)
    assert version("mysql-bin.000004", 4) == ((4 << 32) + 4) << 10


def test_a_mysql_erp_with_its_own_column_names_maps_without_the_schema_wrapper():
    # An ERP item master: ITEM_NO is an INT, STATUS a one-letter code, COST a DECIMAL(10,4)
    # sent in precise mode: without the schema wrapper its scale comes from the mapping.
    mapping = {
        "ITEM_MASTER": TableMapping(
            "items",
            columns={
                "sku": "ITEM_NO",
                "status": "STATUS",
                "base_uom": "STOCK_UOM",
                "replacement_cost_micros": "COST",
                "lead_time_days": "LEAD_DAYS",
            },
            amounts=frozenset({"replacement_cost_micros"}),
            scales={"COST": 4},
            values={"status": {"A": "ACTIVE", "D": "DISCONTINUED", "X": "BLOCKED"}},
        )
    }
    before = {
        "ITEM_NO": 100234,
        "STATUS": "A",
        "STOCK_UOM": "ea",
        "COST": precise("0.4150", 4),
        "LEAD_DAYS": 10,
    }
    after = before | {"STATUS": "D"}
    source = mysql_source("ITEM_MASTER", "mysql-bin.000012", 7_340_112, row=3)

    [item] = change_events(
        json.dumps(change("u", source, before=before, after=after)), tables=mapping
    )

    assert (item.sku, item.status, item.base_uom) == ("100234", "DISCONTINUED", "EA")
    assert item.replacement_cost_micros == 415_000
    assert item.version == (((12 << 32) + 7_340_112) << 10) + 3


def test_a_precise_decimal_without_the_schema_wrapper_needs_a_configured_scale():
    after = price_row(unit_price=precise("12.3457", 4))  # base64, not decimal text

    with pytest.raises(ChangeEventError, match=r"need their scale in TableMapping\.scales"):
        change_events(change("c", pg_source("prices", 9), after=after), "prices", tables=ERP_PRICES)


# --- SQL Server and version columns ------------------------------------------------------


def test_sqlserver_change_lsn_is_the_version_and_a_snapshot_read_uses_commit_lsn():
    streaming = {
        "connector": "sqlserver",
        "change_lsn": "00000027:00000758:0005",
        "commit_lsn": "00000027:00000758:0007",
        "event_serial_no": 2,
    }
    snapshot = {
        "connector": "sqlserver",
        "change_lsn": None,
        "commit_lsn": "00000027:00000700:0001",
    }

    assert source_version(streaming) == (0x27 << 40) | (0x758 << 16) | 5
    assert source_version(snapshot) < source_version(streaming)


def test_a_version_column_replaces_the_log_position_and_a_delete_comes_after_the_row():
    mapping = {"stock": TableMapping("stock", version_column="change_no")}
    row = {"sku": "BOLT-M8", "location": "DAL", "on_hand": 7, "change_no": 9_000_017}
    oracle = {"connector": "oracle", "scn": "2147483648", "ts_ms": TS}

    [upsert] = change_events(change("u", oracle, after=row), "stock", tables=mapping)
    [delete] = change_events(change("d", oracle, before=row), "stock", tables=mapping)

    assert (upsert.version, delete.version) == (9_000_017, 9_000_018)


def test_a_connector_without_a_built_in_position_needs_a_version_column():
    oracle = {"connector": "oracle", "scn": "2147483648", "ts_ms": TS}

    with pytest.raises(
        ChangeEventError, match=r"source\.connector: 'oracle' has no built-in position"
    ):
        change_events(change("c", oracle, after={"sku": "A", "location": "B"}), "stock")


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "table", "reason"),
    [
        (change("t", pg_source("prices", 5)), "prices", "op: truncate cannot be replayed"),
        (
            change("c", pg_source("item_uoms", 5), after={"sku": "A"}),
            None,
            "'item_uoms' has no mapping",
        ),
        (
            change("c", pg_source("stock", 5), after={"sku": "A"}),
            "stock",
            "stock.location: required",
        ),
        (change("d", pg_source("stock", 5)), "stock", "op=d needs the before image"),
        (b"{not json", "stock", "message: not JSON"),
    ],
)
def test_changes_that_cannot_be_mapped_raise_an_error_naming_the_field(message, table, reason):
    with pytest.raises(ChangeEventError, match=reason):
        change_events(message, table)


def test_a_change_the_engine_would_reject_fails_here_with_its_table():
    after = {"sku": "BOLT-M8", "location": "DAL", "on_hand": -5}

    with pytest.raises(ChangeEventError, match=r"stock\.on_hand: -5 out of range"):
        change_events(change("u", pg_source("stock", 5), after=after), "stock")


def test_a_fractional_quantity_is_refused():
    after = {"sku": "BOLT-M8", "location": "DAL", "on_hand": "12.5"}

    with pytest.raises(ChangeEventError, match=r"stock\.on_hand: 12\.5 is not a whole number"):
        change_events(change("u", pg_source("stock", 5), after=after), "stock")


# --- through the engine: restart replays and ordering ------------------------------------


def erp_changes() -> list[dict]:
    """A morning at the ERP: master data snapshot, a price, stock moves (Postgres)."""
    item = {"sku": "BOLT-M8", "status": "A", "base_uom": "EA", "uoms": {"BX": 100}}
    account = {"account": "ACME", "currency": "USD", "price_groups": []}
    price = {
        "price_list": "LIST",
        "currency": "USD",
        "sku": "BOLT-M8",
        "uom": "EA",
        "breaks": '[[0, "0.125"], [1000, "0.11"]]',
    }
    stock = {"sku": "BOLT-M8", "location": "DAL", "on_hand": 1200, "allocated": 0}
    return [
        change("r", pg_source("locations", 1_000, snapshot="true"), after={"location": "DAL"}),
        change("r", pg_source("items", 1_000, snapshot="true"), after=item),
        change("r", pg_source("accounts", 1_000, snapshot="true"), after=account),
        change("r", pg_source("prices", 1_000, snapshot="last"), after=price),
        change("c", pg_source("stock", 1_208), after=stock),
        change("u", pg_source("stock", 1_344), before=stock, after=stock | {"allocated": 150}),
        change("u", pg_source("prices", 1_400), after=price | {"breaks": '[[0, "0.12"]]'}),
        change("u", pg_source("stock", 1_512), after=stock | {"on_hand": 1100, "allocated": 150}),
    ]


ERP_TABLES = {
    **DEFAULT_TABLES,
    "items": TableMapping("items", values={"status": {"A": "ACTIVE"}}),
    "prices": TableMapping("prices", amounts=frozenset({"price_micros"})),
}


def events_of(changes: list[dict]) -> list[Any]:
    return [e for c in changes for e in change_events(json.dumps(c).encode(), tables=ERP_TABLES)]


def digest(state: State) -> dict[str, Any]:
    """Every stored row and cell, to compare two states (not the batch counters)."""
    out: dict[str, Any] = {"skus": state.skus.codes(), "locations": state.locations.codes()}
    for name in ("items", "prices", "lines", "account_rows", "contract_rows"):
        table = getattr(state, name)
        out[name] = {col: table[col][: table.n].tolist() for col in table.schema}
    for name in Inventory.FIELDS:
        out[name] = getattr(state.inventory, name)[: state.n_skus, : state.n_locations].tolist()
    out["inbound"] = (state.inbound_keys.tolist(), state.inbound_qty.tolist())
    return out


def test_replaying_after_a_connector_restart_gives_the_same_versions_and_the_same_state():
    changes = erp_changes()
    state = State()
    assert not apply_batch(state, events_of(changes)).rejected
    before = digest(state)

    # the connector restarts from an offset committed mid-morning and replays from there
    replayed = events_of(changes[4:])
    assert replayed == events_of(changes)[4:]  # same changes, same versions
    result = apply_batch(state, replayed)

    assert result.applied == 0 and not result.rejected
    assert digest(state) == before
    line = quote_line(state, "BOLT-M8", 10, account="ACME", on=dt.date(2025, 3, 3))
    assert line.unit_price_micros == micros("0.12")
    assert line.available_now == {"DAL": 950}


def test_out_of_order_delivery_converges_to_the_newest_change():
    changes = erp_changes()
    in_order, shuffled = State(), State()
    apply_batch(in_order, events_of(changes))

    for c in reversed(changes):  # one batch per change, newest first
        apply_batch(shuffled, events_of([c]))

    assert digest(shuffled) == digest(in_order)


# --- malformed documents: always a ChangeEventError (found by tests/fuzz) ---------------

_STOCK = {"sku": "BOLT-M8", "location": "DAL", "on_hand": 5}


def _with_schema(after: dict, *columns: dict, table: str = "stock") -> bytes:
    return wrapped(change("c", pg_source(table, 5), after=after), table, list(columns))


@pytest.mark.parametrize(
    ("message", "table", "field", "reason"),
    [
        (b"false", "stock", "message", "bool is not a change event object"),
        (b"[1, 2]", "stock", "message", "list is not a change event object"),
        (b"-7", "stock", "message", "int is not a change event object"),
        (b'{"op": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", "stock", "message", "nested too deep"),
        (
            change("c", pg_source("stock", 5), after=_STOCK | {"on_hand": "1E999999999"}),
            "stock",
            "stock.on_hand",
            "out of range",
        ),
        (
            change("c", pg_source("stock", 5), after=_STOCK | {"on_hand": "1E-999999999"}),
            "stock",
            "stock.on_hand",
            "too many decimal places",
        ),
        (
            change("c", pg_source("stock", 5), after=_STOCK | {"on_hand": "9" * 5_000}),
            "stock",
            "stock.on_hand",
            "at most 64 characters",
        ),
        (
            change("c", pg_source("prices", 5), after=price_row(valid_from=10**11)),
            "prices",
            "prices.valid_from",
            "is not a date",
        ),
        (
            change("c", pg_source("items", 5), after={"sku": "A", "uoms": "[" * 5_000}),
            "items",
            "items.uoms",
            "nested too deeply",
        ),
        (
            change("c", mysql_source("stock", "mysql-bin.00000\u00b2", 4), after=_STOCK),
            "stock",
            "source.file",
            "no binlog index suffix",
        ),
        (
            _with_schema(
                _STOCK | {"on_hand": precise("1", 0)},
                column("on_hand", "bytes", DECIMAL, scale="9" * 12),
            ),
            "stock",
            "stock.on_hand",
            "-100..100",
        ),
        (
            _with_schema(
                _STOCK | {"on_hand": base64.b64encode(b"\x01" * 1_000).decode()},
                column("on_hand", "bytes", DECIMAL, scale="0"),
            ),
            "stock",
            "stock.on_hand",
            "at most 32",
        ),
        (
            _with_schema(
                _STOCK | {"on_hand": ["not", "an", "object"]},
                column("on_hand", "struct", "io.debezium.data.VariableScaleDecimal"),
            ),
            "stock",
            "stock.on_hand",
            "is not a {scale, value} object",
        ),
    ],
    ids=[
        "JSON false", "JSON array", "JSON number", "5,000-deep JSON", "exponent 1E999999999",
        "exponent 1E-999999999", "5,000-digit number", "date 10^11 days on",
        "breaks text nested 5,000 deep", "binlog index in superscript digits",
        "decimal scale of 12 digits", "1,000-byte precise decimal",
        "variable-scale decimal not an object",
    ],
)  # fmt: skip
def test_a_malformed_change_is_a_change_event_error_naming_the_field(message, table, field, reason):
    # before: TypeError, RecursionError, OverflowError, AttributeError, ValueError, or a
    # Decimal made exact at 10^999999999 digits that never returned
    with pytest.raises(ChangeEventError) as raised:
        change_events(message, table, tables=ERP_PRICES if table == "prices" else DEFAULT_TABLES)
    assert raised.value.field == field
    assert reason in str(raised.value)


def test_a_translation_lookup_of_an_array_value_is_a_change_event_error():
    mapping = {"items": TableMapping("items", values={"status": {"A": "ACTIVE"}})}
    after = {"sku": "A", "status": ["A"]}

    with pytest.raises(ChangeEventError, match=r"items\.status: \['A'\] has no translation"):
        change_events(change("c", pg_source("items", 5), after=after), "items", tables=mapping)


def test_schema_parts_that_are_not_shaped_like_a_schema_are_skipped():
    # a schema whose parts are not objects with field names: the row is read without it
    payload = change("c", pg_source("stock", 5), after=_STOCK | {"on_hand": "7"})
    odd_columns = [{"field": ["on_hand"], "name": DECIMAL}]
    for schema in (
        5,
        {"fields": 5},
        {"fields": [{"field": "after", "fields": True}]},
        {"fields": [{"field": "after", "fields": odd_columns}]},
    ):
        [stock] = change_events({"schema": schema, "payload": payload}, "stock")
        assert stock.on_hand == 7


def test_decimal_parameters_that_are_not_an_object_mean_scale_zero():
    schema_column = column("on_hand", "bytes", DECIMAL)
    schema_column["parameters"] = ["scale", "2"]
    [stock] = change_events(_with_schema(_STOCK | {"on_hand": precise("12", 0)}, schema_column))
    assert stock.on_hand == 12


def test_an_inclusive_valid_to_of_9999_12_31_means_no_end():
    mapping = {**DEFAULT_TABLES, "contracts": TableMapping("contracts", valid_to_inclusive=True)}
    after = {"contract": "K", "currency": "USD", "valid_to": "9999-12-31", "all_accounts": 1}

    [contract] = change_events(
        change("c", pg_source("contracts", 5), after=after), "contracts", tables=mapping
    )

    assert contract.valid_to is None
