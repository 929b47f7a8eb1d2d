"""Code tables never outgrow how their ids are packed (``engine.state.CODE_TABLE_LIMITS``).

An event whose new codes would take a table past its limit is rejected before anything is
written, with a reason naming the field and the limit; the rest of its batch applies. The
limits are lowered here (the real ones are up to 2**31 codes) so each is reached with a
handful of events; locations are also run up to their real limit of 4096.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import events as ev
from engine import validate
from engine.bulk import build_state
from engine.checksum import state_checksums
from engine.errors import LimitExceeded
from engine.state import (
    CODE_TABLE_LIMITS,
    GROUP_TARGET,
    MAX_LOCATIONS,
    PRICE_BOOK_BITS,
    Inventory,
    State,
    cell_key,
    contract_line_key,
    inbound_key,
    price_key,
)
from tests.builders import (
    SKU,
    apply,
    day,
    make_account,
    make_adjust,
    make_contract,
    make_contract_delete,
    make_group,
    make_inbound,
    make_item,
    make_location,
    make_net_line,
    make_price,
    make_region,
    make_state,
    make_stock,
)

_BASE = [
    make_group("FASTENERS"),
    make_item(product_group="FASTENERS"),
    make_location("DC-EAST"),
    make_region("EAST", "DC-EAST"),
    make_account(price_groups=["GOLD"]),
    make_contract("C-1", price_groups=["GOLD"]),
    make_net_line("C-1", 1_000_000),
]

#: (code table, how an event names a new code of it, the field the reason names)
CASES = [
    ("skus", lambda c: make_stock(c, "DC-EAST", on_hand=5), "sku"),
    ("skus", lambda c: make_adjust(f"WMS-{c}", -1, sku=c), "sku"),
    ("skus", lambda c: make_inbound((day(3), 7), sku=c), "sku"),
    ("skus", lambda c: make_item(c), "sku"),
    ("skus", lambda c: make_price(c, 1_000_000), "sku"),
    ("skus", lambda c: make_net_line("C-1", 900_000, sku=c), "sku"),
    ("locations", lambda c: make_location(c), "location"),
    ("locations", lambda c: make_region("EAST", "DC-EAST", c), "locations[1]"),
    ("locations", lambda c: make_stock(SKU, c, on_hand=5), "location"),
    ("regions", lambda c: make_region(c, "DC-EAST"), "region"),
    ("accounts", lambda c: make_account(c), "account"),
    ("accounts", lambda c: make_account(parent=c), "parent"),
    ("accounts", lambda c: make_contract("C-1", accounts=[c]), "accounts[0]"),
    ("contracts", lambda c: make_contract(c), "contract"),
    ("contracts", lambda c: make_contract_delete(c), "contract"),
    ("contracts", lambda c: make_net_line(c, 900_000), "contract"),
    ("price_lists", lambda c: make_price(SKU, 1_000_000, price_list=c), "price_list"),
    ("price_lists", lambda c: make_account(price_list=c), "price_list"),
    ("price_groups", lambda c: make_account(price_groups=["GOLD", c]), "price_groups[1]"),
    ("price_groups", lambda c: make_contract("C-1", price_groups=[c]), "price_groups[0]"),
    ("product_groups", lambda c: make_group(c), "product_group"),
    ("product_groups", lambda c: make_group("FASTENERS", parent=c), "parent"),
    ("product_groups", lambda c: make_item(product_group=c), "product_group"),
    ("product_groups", lambda c: make_net_line("C-1", 900_000, group=c), "product_group"),
    ("uoms", lambda c: make_item(uoms={c: 6}), "uoms.{code}"),
    ("uoms", lambda c: make_item("NUT-M8", base_uom=c), "base_uom"),
    ("uoms", lambda c: make_price(SKU, 1_000_000, uom=c), "uom"),
    ("uoms", lambda c: make_net_line("C-1", 900_000, uom=c), "uom"),
    ("currencies", lambda c: make_account(currency=c), "currency"),
    ("currencies", lambda c: make_item(cost_currency=c), "cost_currency"),
    ("currencies", lambda c: make_price(SKU, 1_000_000, currency=c), "currency"),
    ("currencies", lambda c: make_contract("C-1", currency=c), "currency"),
]
_CODES = {"uoms": ("PK", "CS"), "currencies": ("EUR", "GBP")}
_NOUNS = {"skus": "SKUs", "uoms": "UoMs", "price_lists": "price lists"}


def _case_id(case):
    table, make, field = case
    return f"{table}-{type(make('X-1')).__name__}-{field}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(case) for case in CASES])
def test_the_event_that_would_outgrow_a_code_table_is_rejected_and_writes_nothing(
    case, monkeypatch
):
    table, make, field = case
    fits, too_many = _CODES.get(table, ("NEW-1", "NEW-2"))
    state = make_state(*_BASE)
    limit = len(getattr(state, table)) + 1  # room for one more code
    monkeypatch.setitem(CODE_TABLE_LIMITS, table, limit)
    batch = [make(fits), make(too_many), make(fits)]  # the third names no new code
    result = apply(state, *batch)
    [(index, reason)] = result.rejected
    assert index == 1
    many = _NOUNS.get(table, table.replace("_", " "))
    assert reason.startswith(f"{field.format(code=too_many)}: new ")
    assert repr(too_many) in reason
    assert f"(limit: at most {limit} {many}: " in reason
    codes = getattr(state, table)
    assert (fits in codes, too_many in codes, len(codes)) == (True, False, limit)
    # nothing at all was written for it: the state is the one the batch without it leaves
    twin = make_state(*_BASE)
    assert apply(twin, batch[0], batch[2]).rejected == []
    assert state_checksums(state) == state_checksums(twin)


def test_an_event_with_more_new_codes_than_there_is_room_for_is_rejected_whole(monkeypatch):
    state = make_state(*_BASE)
    monkeypatch.setitem(CODE_TABLE_LIMITS, "locations", len(state.locations) + 2)
    result = apply(
        state,
        make_region("WEST", "DC-W1", "DC-W2", "DC-W3"),  # three new: room for two
        make_location("DC-W3"),  # the rejected event's codes were not counted
        make_location("DC-W4"),
    )
    assert result.rejected == [
        (
            0,
            "locations[2]: new location 'DC-W3' would be location number 4 "
            "(limit: at most 3 locations: 12 location bits in cell_key and inbound_key)",
        )
    ]
    assert state.locations.codes() == ["DC-EAST", "DC-W3", "DC-W4"]
    assert "WEST" not in state.regions
    assert state.location_rows.n == 3


def test_a_full_code_table_still_takes_events_that_name_only_known_codes(monkeypatch):
    state = make_state(*_BASE, make_stock(SKU, "DC-EAST", on_hand=10))
    monkeypatch.setitem(CODE_TABLE_LIMITS, "skus", len(state.skus))
    result = apply(state, make_stock(SKU, "DC-EAST", on_hand=25), make_stock("NEW-1", "DC-EAST"))
    assert [index for index, _ in result.rejected] == [1]
    assert state.inventory.on_hand[state.skus.get(SKU), state.locations.get("DC-EAST")] == 25


def test_a_stock_batch_of_known_codes_is_not_walked_event_by_event(monkeypatch):
    # the stream writer's hot path: known SKUs and locations are checked as columns only
    state = make_state(*_BASE, make_location("DC-WEST"))
    walked = []
    monkeypatch.setattr(validate, "_check_growth", lambda *args: walked.append(args))
    stock = [
        make_stock(SKU, location, on_hand=n)
        for n in range(50)
        for location in ("DC-EAST", "DC-WEST")
    ]
    assert apply(state, *stock).rejected == []
    assert walked == []
    apply(state, *stock, make_stock("NEW-1", "DC-EAST"))
    [(_, indices, _, _)] = walked
    assert indices == [len(stock)]  # only the event that names a new code


# --- locations, up to the real limit ----------------------------------------------------------


def _locations(first: int, last: int) -> list[ev.LocationUpsert]:
    return [ev.LocationUpsert(location=f"L-{i:04d}", version=1) for i in range(first, last)]


def test_4096_locations_fit_and_the_4097th_is_rejected_without_touching_any_cell():
    state = State()
    stock = [
        ev.InventorySet(sku=sku, location=f"L-{i:04d}", version=1, on_hand=100 + i)
        for sku in ("SKU-A", "SKU-B")
        for i in (0, 1, 4094)
    ]
    assert apply(state, *_locations(0, 4095), *stock).rejected == []
    result = apply(
        state,
        *_locations(4095, 4096),  # the 4096th location: id 4095, the last 12-bit id
        ev.InventorySet(sku="SKU-A", location="L-4095", version=1, on_hand=999),
    )
    assert result.rejected == []
    assert len(state.locations) == MAX_LOCATIONS
    last = state.locations.get("L-4095")
    assert last == MAX_LOCATIONS - 1
    on_hand = state.inventory.on_hand[: state.n_skus, : state.n_locations].copy()
    assert on_hand[state.skus.get("SKU-A"), last] == 999  # in its own cell
    assert on_hand.sum() == 999 + 2 * sum(100 + i for i in (0, 1, 4094))
    before = state_checksums(state)
    result = apply(
        state,
        ev.InventorySet(sku="SKU-A", location="L-4096", version=2, on_hand=111),
        ev.LocationUpsert(location="L-4097", version=1),
        ev.InventorySet(sku="SKU-B", location="L-0001", version=2, on_hand=7),
    )
    assert [index for index, _ in result.rejected] == [0, 1]
    assert result.rejected[0][1] == (
        "location: new location 'L-4096' would be location number 4097 "
        "(limit: at most 4096 locations: 12 location bits in cell_key and inbound_key)"
    )
    after = state_checksums(state)
    assert {part for part in after if after[part] != before[part]} == {"inventory", "version"}
    on_hand[state.skus.get("SKU-B"), state.locations.get("L-0001")] = 7  # the valid one
    assert np.array_equal(state.inventory.on_hand[: state.n_skus, : state.n_locations], on_hand)
    assert "L-4096" not in state.locations and "L-4097" not in state.locations


def test_inventory_refuses_to_grow_past_4096_locations_rather_than_clip():
    inventory = Inventory()
    inventory.ensure(2, MAX_LOCATIONS)
    assert inventory.location_capacity == MAX_LOCATIONS
    with pytest.raises(LimitExceeded, match="locations: 4097 locations"):
        inventory.ensure(2, MAX_LOCATIONS + 1)
    assert inventory.on_hand.shape == (16, MAX_LOCATIONS)


def test_the_largest_id_each_limit_allows_still_packs_and_the_next_one_would_not():
    assert set(CODE_TABLE_LIMITS) == {
        name for name, value in vars(State()).items() if type(value).__name__ == "CodeTable"
    }
    top = {table: limit - 1 for table, limit in CODE_TABLE_LIMITS.items()}
    sku, location = top["skus"], top["locations"]
    receipt = int(inbound_key(sku, (1 << 20) - 1, location))
    assert (receipt >> 32, receipt & 4095) == (sku, location)
    assert int(inbound_key(sku + 1, 0, 0)) < 0  # one SKU more wraps the int64 key
    assert int(cell_key(np.int64(sku), np.int64(location))) >> 12 == sku
    assert int(cell_key(np.int64(0), np.int64(location + 1))) >> 12 == 1  # another SKU's cell
    book = top["price_lists"] * 1024 + top["currencies"]
    entry = int(price_key(top["price_lists"], top["currencies"], sku))
    assert (entry >> PRICE_BOOK_BITS, entry & ((1 << PRICE_BOOK_BITS) - 1)) == (sku, book)
    assert book + 1 == 1 << PRICE_BOOK_BITS  # one price list more spills into the SKU bits
    line = int(contract_line_key(GROUP_TARGET + top["product_groups"], top["contracts"]))
    assert line & ((1 << 30) - 1) == top["contracts"]
    assert line >> 30 == GROUP_TARGET + top["product_groups"]
    for table, dtype in (("uoms", np.int16), ("product_groups", np.int32), ("accounts", np.int32)):
        assert int(np.array([top[table]]).astype(dtype)[0]) == top[table]
        assert int(np.array([top[table] + 1]).astype(dtype)[0]) != top[table] + 1


def test_a_bulk_extract_with_more_codes_than_a_table_holds_fails_the_build_naming_the_limit(
    monkeypatch,
):
    monkeypatch.setitem(CODE_TABLE_LIMITS, "locations", 3)
    stock = {
        "sku": ["SKU-A"] * 4,
        "location": ["L-1", "L-2", "L-3", "L-4"],
        "on_hand": [1, 2, 3, 4],
    }
    with pytest.raises(LimitExceeded) as raised:
        build_state({"stock": stock})
    assert str(raised.value) == (
        "locations: 4 distinct location codes (limit: at most 3: "
        "12 location bits in cell_key and inbound_key)"
    )
    stock = {name: values[:3] for name, values in stock.items()}
    assert build_state({"stock": stock}).inventory.on_hand[0, :3].tolist() == [1, 2, 3]
