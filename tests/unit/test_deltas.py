"""DESIGN §6 deltas: version gating, tombstones, adjust dedup and reordering, implicit SKUs,
invalid events, and the state a batch leaves behind."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from engine.deltas import apply_batch, implicit_skus
from engine.quote import LineStatus
from engine.state import State
from tests.builders import (
    ACCOUNT,
    SKU,
    apply,
    day,
    make_account,
    make_adjust,
    make_contract,
    make_contract_delete,
    make_hold,
    make_inbound,
    make_item,
    make_line_delete,
    make_location,
    make_net_line,
    make_price,
    make_price_delete,
    make_state,
    make_stock,
    micros,
    quote_line,
    quote_lines,
)


def _catalog(*events):
    return make_state(make_item(version=1), make_account(), make_location("DC-EAST"), *events)


def _price(state):
    line = quote_line(state, qty=1)
    return None if line.status == LineStatus.NO_PRICE else line.unit_price_micros


def _on_hand(state):
    return quote_line(state, qty=1, locations=["DC-EAST"]).available_now["DC-EAST"]


# --- version gating -----------------------------------------------------------------------


def test_older_version_of_an_entity_is_skipped():
    state = _catalog(make_item(min_order_qty=10, version=5))
    result = apply(state, make_item(min_order_qty=99, version=4))
    assert (result.applied, result.stale) == (0, 1)
    assert quote_line(state, qty=1).suggested_qty == 10


def test_equal_version_is_skipped_as_a_duplicate():
    state = _catalog(make_price(price=micros("9.00"), version=5))
    result = apply(state, make_price(price=micros("8.00"), version=5))
    assert (result.applied, result.stale) == (0, 1)
    assert _price(state) == micros("9.00")


def test_newer_version_replaces_the_stored_one():
    state = _catalog(make_price(price=micros("9.00"), version=5))
    apply(state, make_price(price=micros("8.00"), version=6))
    assert _price(state) == micros("8.00")


def test_highest_version_in_a_batch_wins_wherever_it_sits():
    state = _catalog()
    result = apply(
        state,
        make_price(price=micros("7.00"), version=7),
        make_price(price=micros("9.00"), version=9),
        make_price(price=micros("8.00"), version=8),
    )
    assert (result.applied, result.stale) == (1, 2)
    assert _price(state) == micros("9.00")


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_out_of_order_delivery_converges_to_the_newest_version(order):
    prices = [make_price(price=micros(p), version=v) for v, p in ((1, "7"), (2, "8"), (3, "9"))]
    state = _catalog()
    for index in order:  # one batch per event, in this arrival order
        apply(state, prices[index])
    assert _price(state) == micros("9")


def test_replayed_batch_changes_nothing():
    events = [
        make_price(price=micros("9.00")),
        make_stock(location="DC-EAST", on_hand=40),
        make_adjust("WMS-1", -5, location="DC-EAST"),
        make_inbound((day(3), 20), location="DC-EAST"),
        make_hold("CART-1", (SKU, "DC-EAST", 10)),
    ]
    state = _catalog(*events)
    before = quote_line(state, qty=50, locations=["DC-EAST"])
    result = apply(state, *events)
    assert result.applied == 1  # only the hold answers again (the same hold)
    assert quote_line(state, qty=50, locations=["DC-EAST"]) == before
    assert before.available_now == {"DC-EAST": 25}  # 40 − 5 − 10


# --- tombstones ---------------------------------------------------------------------------


def test_deleted_price_is_not_resurrected_by_an_older_price_set():
    state = _catalog(make_price(price=micros("9.00"), version=1))
    apply(state, make_price_delete(version=3))
    assert _price(state) is None
    result = apply(state, make_price(price=micros("8.00"), version=2))  # late, older
    assert result.stale == 1
    assert _price(state) is None


def test_price_delete_arriving_before_its_set_still_wins():
    state = _catalog(make_price_delete(version=3))
    apply(state, make_price(price=micros("8.00"), version=2))
    assert _price(state) is None


def test_newer_price_set_after_a_delete_brings_the_price_back():
    state = _catalog(make_price(price=micros("9.00"), version=1), make_price_delete(version=3))
    apply(state, make_price(price=micros("7.00"), version=4))
    assert _price(state) == micros("7.00")


def test_deleted_contract_line_is_not_resurrected_by_an_older_line_set():
    state = _catalog(
        make_price(price=micros("10.00")),
        make_contract("C-ACCT", accounts=[ACCOUNT]),
        make_net_line("C-ACCT", micros("8.00"), version=1),
    )
    apply(state, make_line_delete("C-ACCT", version=3))
    apply(state, make_net_line("C-ACCT", micros("7.00"), version=2))
    assert quote_line(state, qty=1).source_code == "LIST"


def test_deleted_contract_is_not_resurrected_by_an_older_upsert():
    state = _catalog(
        make_price(price=micros("10.00")),
        make_contract("C-ACCT", accounts=[ACCOUNT], version=1),
        make_net_line("C-ACCT", micros("8.00")),
    )
    assert quote_line(state, qty=1).source_code == "C-ACCT"
    apply(state, make_contract_delete("C-ACCT", version=3))
    apply(state, make_contract("C-ACCT", accounts=[ACCOUNT], version=2))
    assert quote_line(state, qty=1).source_code == "LIST"


# --- inventory: adjust dedup and the set/adjust rule --------------------------------------


def test_inventory_adjust_is_counted_once_per_event_id():
    state = _catalog(make_stock(location="DC-EAST", on_hand=100, version=1))
    first = apply(
        state,
        make_adjust("WMS-7", -5, location="DC-EAST", version=2),
        make_adjust("WMS-7", -5, location="DC-EAST", version=2),  # duplicate in the batch
    )
    again = apply(state, make_adjust("WMS-7", -5, location="DC-EAST", version=3))  # redelivery
    assert (first.applied, again.applied) == (1, 0)
    assert _on_hand(state) == 95  # 100 − 5, once


def test_adjust_older_than_the_last_set_is_already_counted_in_it():
    state = _catalog(make_stock(location="DC-EAST", on_hand=100, version=10))
    apply(state, make_adjust("WMS-9", -50, location="DC-EAST", version=9))
    assert _on_hand(state) == 100


_SET_AND_ADJUSTS = [
    make_stock(location="DC-EAST", on_hand=100, version=10),
    make_adjust("WMS-9", -50, location="DC-EAST", version=9),  # counted in the set
    make_adjust("WMS-11", -5, location="DC-EAST", version=11),
    make_adjust("WMS-12", -3, location="DC-EAST", version=12),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_stock_is_the_newest_set_plus_the_adjusts_newer_than_it_in_any_arrival_order(order):
    # set(v10) = 100; adjusts newer than v10: −5 (v11), −3 (v12) → 92; v9's −50 is in the set
    state = _catalog()
    for index in order:
        apply(state, _SET_AND_ADJUSTS[index])
    assert _on_hand(state) == 92


def test_set_and_adjusts_in_one_batch_give_the_same_stock():
    state = _catalog(*_SET_AND_ADJUSTS)
    assert _on_hand(state) == 92


def test_newer_set_absorbs_the_adjusts_before_it():
    state = _catalog(*_SET_AND_ADJUSTS)
    apply(state, make_stock(location="DC-EAST", on_hand=80, version=13))  # a cycle count
    apply(state, make_adjust("WMS-11", -5, location="DC-EAST", version=11))  # redelivered
    assert _on_hand(state) == 80


def test_adjust_log_keeps_working_after_absorbed_adjusts_are_compacted_away():
    # 1,500 adjusts of −1 on DC-EAST (v101..v1600) and 10 of −2 on DC-WEST; sets on DC-EAST
    # absorb the older ones, which drops them from the log once they are half of it
    state = _catalog(make_location("DC-WEST"), make_stock(location="DC-EAST", on_hand=10_000,
                     version=1), make_stock(location="DC-WEST", on_hand=50, version=1))  # fmt: skip
    apply(state, *(make_adjust(f"A-{k}", -1, location="DC-EAST", version=100 + k)
                   for k in range(1, 1501)))  # fmt: skip
    apply(state, *(make_adjust(f"W-{k}", -2, location="DC-WEST", version=100 + k)
                   for k in range(1, 11)))  # fmt: skip
    assert _on_hand(state) == 8_500  # 10,000 − 1,500
    apply(state, make_stock(location="DC-EAST", on_hand=5_000, version=1_100))
    assert _on_hand(state) == 4_500  # 5,000 − the 500 adjusts newer than v1100
    assert state.adjust_log.n == 510  # 1,000 absorbed rows dropped; DC-WEST's kept
    apply(state, make_stock(location="DC-EAST", on_hand=7_000, version=1_300))
    assert _on_hand(state) == 6_700  # 7,000 − the 300 adjusts newer than v1300
    apply(state, make_adjust("A-1400", -1, location="DC-EAST", version=1_500))  # redelivered
    apply(state, make_adjust("A-5", -1, location="DC-EAST", version=105))  # long absorbed
    apply(state, make_adjust("A-1501", -1, location="DC-EAST", version=1_601))
    assert _on_hand(state) == 6_699
    # an older DC-WEST set re-adds all ten −2 adjusts: 40 − 20
    apply(state, make_stock(location="DC-WEST", on_hand=40, version=50))
    assert quote_line(state, qty=1, locations=["DC-WEST"]).available_now["DC-WEST"] == 20


def test_an_adjust_logged_after_a_compaction_is_re_added_by_an_older_set_arriving_later():
    # 600 adjusts absorbed by a set are compacted away; the log's arrays keep their rows,
    # and an adjust logged after that must not inherit an absorbed row's flag
    state = _catalog(make_stock(location="DC-EAST", on_hand=1_000, version=1))
    apply(state, *(make_adjust(f"A-{k}", -1, location="DC-EAST", version=1 + k)
                   for k in range(1, 601)))  # fmt: skip
    apply(state, make_stock(location="DC-EAST", on_hand=500, version=700))
    assert state.adjust_log.n == 0  # all 600 absorbed and dropped
    apply(state, make_adjust("LATE", 5, location="DC-EAST", version=800))
    assert _on_hand(state) == 505
    apply(state, make_stock(location="DC-EAST", on_hand=200, version=750))  # sent earlier
    assert _on_hand(state) == 205  # v800 is newer than the v750 set: it counts on top
    apply(state, make_adjust("LATE", 5, location="DC-EAST", version=800))  # redelivered
    assert _on_hand(state) == 205


def test_each_stock_change_of_a_mixed_batch_lands_on_its_own_cell_around_a_rejected_one():
    # sets and adjusts for three SKUs interleaved, one set invalid (negative on hand): the
    # others land where they belong, whichever kinds and positions surround the bad one
    state = _catalog(make_item("SKU-2", version=1), make_item("SKU-3", version=1))
    result = apply(
        state,
        make_stock("SKU-3", on_hand=30, version=2),
        make_adjust("A-1", -1, sku="SKU-2", version=5),
        make_stock("SKU-2", on_hand=-1, version=3),  # rejected
        make_stock(SKU, on_hand=10, version=2),
        make_adjust("A-2", -4, sku="SKU-3", version=6),
        make_stock("SKU-2", on_hand=20, version=4),
    )
    assert [index for index, _ in result.rejected] == [2]
    stock = quote_lines(state, [(SKU, 1), ("SKU-2", 1), ("SKU-3", 1)], locations=["DC-EAST"])
    assert [line.available_now["DC-EAST"] for line in stock] == [10, 19, 26]


def test_a_quantity_given_as_an_int_subclass_is_applied_with_its_own_value():
    # the columnar check only trusts plain ints; an int subclass is valid (checked one by
    # one) and must not reach the apply as the 0 the columnar pass put in its place
    class Units(int):
        pass

    state = _catalog(make_item("SKU-2", version=1))
    result = apply(
        state,
        make_stock(SKU, on_hand=Units(40), version=2),
        make_stock("SKU-2", on_hand=15, version=2),
    )
    assert (result.applied, result.rejected) == (2, [])
    stock = quote_lines(state, [(SKU, 1), ("SKU-2", 1)], locations=["DC-EAST"])
    assert [line.available_now["DC-EAST"] for line in stock] == [40, 15]


def test_allocated_delta_changes_allocated():
    state = _catalog(make_stock(location="DC-EAST", on_hand=100, allocated=10, version=1))
    apply(state, make_adjust("ERP-ALLOC-1", allocated_delta=15, location="DC-EAST", version=2))
    assert _on_hand(state) == 75  # 100 − (10 + 15)


def test_older_inbound_schedule_is_skipped():
    state = _catalog(make_inbound((day(2), 50), location="DC-EAST", version=5))
    apply(state, make_inbound((day(9), 50), location="DC-EAST", version=4))
    assert quote_line(state, qty=50, locations=["DC-EAST"]).earliest_date == day(2)


# --- implicit SKU registration ------------------------------------------------------------


def test_inventory_for_an_unknown_sku_is_kept_until_its_item_arrives():
    state = _catalog(make_stock("NEW-1", "DC-EAST", on_hand=12))
    assert implicit_skus(state) == 1
    assert quote_line(state, "NEW-1", 1).status == LineStatus.UNKNOWN_SKU
    apply(state, make_item("NEW-1"), make_price("NEW-1", micros("2.00")))
    line = quote_line(state, "NEW-1", 1, locations=["DC-EAST"])
    assert (line.status, line.available_now) == (LineStatus.OK, {"DC-EAST": 12})
    assert implicit_skus(state) == 0


def test_price_for_an_unknown_sku_is_kept_until_its_item_arrives():
    state = _catalog(make_price("NEW-2", micros("3.00")))
    apply(state, make_item("NEW-2"))
    assert quote_line(state, "NEW-2", 2).extended_micros == micros("6.00")


# --- invalid events -----------------------------------------------------------------------


def test_invalid_events_are_rejected_naming_the_field_while_the_rest_of_the_batch_applies():
    state = _catalog()
    result = apply(
        state,
        make_price(price=micros("9.00")),
        make_stock(location="DC-EAST", on_hand=-1),
        make_price("X" * 65, micros("1.00")),
        make_stock(location="DC-EAST", on_hand=30),
        make_price("NUT-M8", tiers=[(10, 1), (10, 2)]),
        make_hold("CART-9", (SKU, "DC-EAST", 1), ttl_ms=0),
        make_item("HEX-1", status="RETIRED"),
    )
    reasons = dict(result.rejected)
    assert sorted(reasons) == [1, 2, 4, 5, 6]
    assert reasons[1] == "on_hand: -1 out of range (limit: 0..1000000000000)"
    assert reasons[2] == "sku: length 65 out of range (limit: 1..64 characters)"
    assert reasons[4] == "tiers[1].min_qty: minimums must strictly increase"
    assert reasons[5].startswith("ttl_ms: 0 out of range")
    assert reasons[6] == "status: 'RETIRED' unknown (limit: ACTIVE|DISCONTINUED|BLOCKED)"
    assert _price(state) == micros("9.00")
    assert _on_hand(state) == 30


def test_contract_line_with_both_a_sku_and_a_group_is_rejected():
    state = _catalog()
    line = make_net_line("C-1", 1)
    bad = type(line)(contract="C-1", version=1, sku=SKU, product_group="SCREWS", tiers=((0, 1),))
    [(index, reason)] = apply(state, bad).rejected
    assert index == 0
    assert reason.startswith("sku: exactly one of sku and product_group")


def test_event_of_an_unknown_type_is_rejected():
    [(_, reason)] = apply_batch(State(), [object()]).rejected
    assert reason.startswith("event:")


# --- batches ------------------------------------------------------------------------------


def test_each_batch_moves_the_state_version_up_by_one_and_records_its_stream_ids():
    state = _catalog()
    before = state.version
    apply_batch(state, [make_price(price=micros("9.00"))], stream_ids={"pa:pricing": "17-0"})
    apply_batch(state, [], stream_ids={"pa:inventory": "18-0"})
    assert state.version == before + 2
    assert state.stream_ids == {"pa:pricing": "17-0", "pa:inventory": "18-0"}


def test_account_change_reaches_quotes_already_cached_for_it():
    state = _catalog(
        make_price(price=micros("10.00")),
        make_contract("C-GOLD", price_groups=["GOLD"]),
        make_net_line("C-GOLD", micros("8.00")),
    )
    assert quote_line(state, qty=1).source_code == "LIST"  # caches ACME's context
    apply(state, make_account(price_groups=["GOLD"]))
    assert quote_line(state, qty=1).source_code == "C-GOLD"


def test_contract_priority_change_reaches_quotes_already_cached():
    state = _catalog(
        make_contract("C-ACCT", accounts=[ACCOUNT], version=1),
        make_net_line("C-ACCT", micros("8.00")),
        make_contract("C-PROMO", all_accounts=True, version=1),
        make_net_line("C-PROMO", micros("9.00"), version=1),
    )
    assert quote_line(state, qty=1).source_code == "C-ACCT"
    apply(state, make_contract("C-PROMO", all_accounts=True, priority=5, version=2))
    assert quote_line(state, qty=1).source_code == "C-PROMO"


@pytest.mark.parametrize("when", [dt.date(1969, 12, 31), dt.date(9999, 12, 31)])
def test_a_receipt_date_outside_the_inbound_key_range_is_rejected_by_name(when: dt.date) -> None:
    # receipt dates are packed in 20 bits of days since 1970: 1970-01-01 .. 4840-12-04
    state = make_state(make_item(), make_location("DAL"))
    result = apply(state, make_inbound((when, 5), location="DAL"))
    assert len(result.rejected) == 1
    assert "receipts[0].date" in result.rejected[0][1]
    assert state.inbound_keys.size == 0
