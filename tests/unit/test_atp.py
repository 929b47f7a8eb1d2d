"""DESIGN §5 availability: available now, cumulative ATP by date, location sets, disclosure,
holds. Quantities are base units (EA); TODAY is the quote's date."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.atp import DateSource
from engine.errors import UnknownCode
from engine.inventory_apply import HOLD_RETENTION_MS, hold_of
from engine.quote import Bucket, LineStatus
from loaders.events import decode
from tests.builders import (
    ACCOUNT,
    TODAY,
    apply,
    day,
    make_account,
    make_hold,
    make_inbound,
    make_item,
    make_location,
    make_region,
    make_release,
    make_state,
    make_stock,
    quote_line,
    quote_lines,
)
from tests.builders import SKU as BOLT


def _warehouse(*events, item=None, account=None):
    return make_state(
        make_item(**(item or {})),
        make_account(**(account or {})),
        make_location("DC-EAST"),
        make_location("DC-WEST"),
        make_location("DC-CENTRAL"),
        make_location("DC-OLD", active=False),
        *events,
    )


# --- available now ------------------------------------------------------------------------


def test_available_now_is_on_hand_less_allocated_held_and_safety_stock():
    state = _warehouse(
        make_stock(location="DC-EAST", on_hand=100, allocated=20, safety_stock=10),
        make_hold("CART-1", (BOLT, "DC-EAST", 5)),
    )
    line = quote_line(state, qty=1, locations=["DC-EAST"])
    # 100 − 20 − 5 − 10 = 65
    assert line.available_now == {"DC-EAST": 65}
    assert line.oversold == {"DC-EAST": False}


def test_negative_available_now_is_reported_as_zero_and_oversold():
    state = _warehouse(make_stock(location="DC-EAST", on_hand=10, allocated=15, safety_stock=2))
    line = quote_line(state, qty=1, locations=["DC-EAST"])
    # 10 − 15 − 0 − 2 = −7 → shown as 0, flagged oversold
    assert line.available_now == {"DC-EAST": 0}
    assert line.oversold == {"DC-EAST": True}
    assert line.network_available == 0


def test_available_now_of_exactly_zero_is_not_oversold():
    state = _warehouse(make_stock(location="DC-EAST", on_hand=10, allocated=4, safety_stock=6))
    line = quote_line(state, qty=1, locations=["DC-EAST"])
    assert (line.available_now, line.oversold) == ({"DC-EAST": 0}, {"DC-EAST": False})


# --- earliest date ------------------------------------------------------------------------


def _inbound_world(**item):
    # available now 10 at DC-EAST; receipts +20 on day 3 and +30 on day 7
    return _warehouse(
        make_stock(location="DC-EAST", on_hand=10),
        make_inbound((day(3), 20), (day(7), 30), location="DC-EAST"),
        item=item,
    )


def test_earliest_date_is_today_when_available_now_covers_the_quantity():
    line = quote_line(_inbound_world(), qty=10, locations=["DC-EAST"])
    assert (line.earliest_date, line.date_source) == (TODAY, DateSource.STOCK)


@pytest.mark.parametrize(
    ("qty", "offset"),
    [
        (11, 3),  # 10 now < 11 ≤ 10 + 20 on day 3
        (30, 3),  # exactly 10 + 20
        (31, 7),  # 31 > 30: needs day 7's 30 too
        (60, 7),  # exactly 10 + 20 + 30
    ],
)
def test_earliest_date_is_the_first_receipt_date_where_cumulative_atp_reaches_the_qty(qty, offset):
    line = quote_line(_inbound_world(), qty=qty, locations=["DC-EAST"])
    assert (line.earliest_date, line.date_source) == (day(offset), DateSource.INBOUND)


def test_quantity_beyond_every_receipt_without_a_lead_time_is_backordered_without_a_date():
    line = quote_line(_inbound_world(), qty=61, locations=["DC-EAST"])  # 61 > 10 + 20 + 30
    assert (line.earliest_date, line.date_source) == (None, DateSource.NONE)


def test_quantity_beyond_every_receipt_is_promised_today_plus_the_lead_time():
    line = quote_line(_inbound_world(lead_time_days=14), qty=61, locations=["DC-EAST"])
    assert (line.earliest_date, line.date_source) == (day(14), DateSource.LEAD_TIME)


def test_item_without_stock_or_receipts_is_promised_at_its_lead_time():
    state = _warehouse(item={"lead_time_days": 5})
    line = quote_line(state, qty=1)
    assert (line.earliest_date, line.date_source) == (day(5), DateSource.LEAD_TIME)


def test_past_due_receipt_counts_as_arriving_today():
    state = _warehouse(
        make_stock(location="DC-EAST", on_hand=5),
        make_inbound((day(-2), 20), location="DC-EAST"),  # late supply: expected at once
    )
    line = quote_line(state, qty=25, locations=["DC-EAST"])  # 5 + 20 = 25
    assert (line.earliest_date, line.date_source) == (TODAY, DateSource.INBOUND)
    assert line.available_now == {"DC-EAST": 5}  # a receipt is not stock on hand


def test_receipts_at_several_locations_add_up_across_the_location_set():
    state = _warehouse(
        make_stock(location="DC-EAST", on_hand=5),
        make_inbound((day(2), 10), location="DC-EAST"),
        make_inbound((day(4), 10), location="DC-WEST"),
    )
    line = quote_line(state, qty=25, locations=["DC-EAST", "DC-WEST"])
    # day 2: 5 + 10 = 15 < 25; day 4: 15 + 10 = 25
    assert line.earliest_date == day(4)


def test_receipt_at_an_oversold_location_first_covers_its_shortfall():
    state = _warehouse(
        make_stock(location="DC-EAST", on_hand=0, allocated=10),  # −10
        make_stock(location="DC-WEST", on_hand=5),
        make_inbound((day(2), 15), location="DC-EAST"),
    )
    # network now: max(−10, 0) + 5 = 5; day 2: max(−10 + 15, 0) + 5 = 10
    reaches = quote_line(state, qty=10, locations=["DC-EAST", "DC-WEST"])
    assert reaches.earliest_date == day(2)
    short = quote_line(state, qty=11, locations=["DC-EAST", "DC-WEST"])
    assert short.earliest_date is None


def test_receipts_at_locations_outside_the_set_do_not_count():
    state = _warehouse(make_inbound((day(1), 50), location="DC-WEST"))
    line = quote_line(state, qty=10, locations=["DC-EAST"])
    assert (line.earliest_date, line.date_source) == (None, DateSource.NONE)


def test_discontinued_item_has_no_inbound_or_lead_time_promise():
    state = _warehouse(
        make_stock(location="DC-EAST", on_hand=5),
        make_inbound((day(1), 100), location="DC-EAST"),
        item={"status": "DISCONTINUED", "lead_time_days": 10},
    )
    from_stock = quote_line(state, qty=5, locations=["DC-EAST"])
    assert (from_stock.earliest_date, from_stock.date_source) == (TODAY, DateSource.STOCK)
    beyond = quote_line(state, qty=6, locations=["DC-EAST"])
    assert (beyond.earliest_date, beyond.date_source) == (None, DateSource.NONE)


def test_new_inbound_schedule_replaces_the_old_one():
    state = _warehouse(make_inbound((day(1), 50), location="DC-EAST"))
    apply(state, make_inbound((day(9), 50), location="DC-EAST"))
    assert quote_line(state, qty=50, locations=["DC-EAST"]).earliest_date == day(9)


# --- location sets ------------------------------------------------------------------------


def _network():
    return _warehouse(
        make_stock(location="DC-EAST", on_hand=10),
        make_stock(location="DC-WEST", on_hand=20),
        make_stock(location="DC-CENTRAL", on_hand=0, allocated=5),  # −5
        make_stock(location="DC-OLD", on_hand=40),  # inactive location
        make_region("NORTHEAST", "DC-WEST", "DC-EAST"),
    )


def test_network_availability_over_all_active_locations_sums_clipped_available_now():
    line = quote_line(_network(), qty=1)
    assert line.available_now == {"DC-EAST": 10, "DC-WEST": 20, "DC-CENTRAL": 0}
    assert line.network_available == 30  # 10 + 20 + max(−5, 0); DC-OLD is inactive


def test_named_locations_are_the_location_set():
    line = quote_line(_network(), qty=1, locations=["DC-OLD", "DC-EAST"])
    assert list(line.available_now.items()) == [("DC-OLD", 40), ("DC-EAST", 10)]
    assert line.network_available == 50


def test_region_location_set_is_its_ranked_locations():
    line = quote_line(_network(), qty=1, region="NORTHEAST")
    assert list(line.available_now.items()) == [("DC-WEST", 20), ("DC-EAST", 10)]
    assert line.network_available == 30


def test_unknown_location_is_an_error_naming_it():
    with pytest.raises(UnknownCode) as error:
        quote_line(_network(), qty=1, locations=["DC-EAST", "DC-MOON"])
    assert (error.value.field, error.value.code) == ("locations", "DC-MOON")


def test_unknown_region_is_an_error_naming_it():
    with pytest.raises(UnknownCode) as error:
        quote_line(_network(), qty=1, region="ATLANTIS")
    assert (error.value.field, error.value.code) == ("region", "ATLANTIS")


# --- disclosure ---------------------------------------------------------------------------


def _disclosed(disclosure, cap):
    return _warehouse(
        make_stock(location="DC-EAST", on_hand=0),
        make_stock(location="DC-WEST", on_hand=15),
        make_stock(location="DC-CENTRAL", on_hand=40),
        account={"disclosure": disclosure, "disclosure_cap": cap},
    )


def test_exact_disclosure_shows_the_numbers():
    line = quote_line(_disclosed("EXACT", 0), qty=1)
    assert line.shown == {"DC-EAST": 0, "DC-WEST": 15, "DC-CENTRAL": 40}


def test_capped_disclosure_shows_at_most_the_cap():
    line = quote_line(_disclosed("CAPPED", 25), qty=1)
    assert line.shown == {"DC-EAST": 0, "DC-WEST": 15, "DC-CENTRAL": 25}  # min(40, 25)


def test_bucket_disclosure_hides_the_numbers_and_gives_out_low_or_in_stock():
    line = quote_line(_disclosed("BUCKETS", 15), qty=1)  # LOW up to 15
    assert line.shown == {"DC-EAST": -1, "DC-WEST": -1, "DC-CENTRAL": -1}
    assert line.bucket == {
        "DC-EAST": Bucket.OUT,  # 0
        "DC-WEST": Bucket.LOW,  # 15 ≤ 15
        "DC-CENTRAL": Bucket.IN_STOCK,  # 40 > 15
    }


def test_disclosure_is_applied_on_the_way_out_never_to_the_stored_numbers():
    state = _disclosed("CAPPED", 25)
    apply(state, make_account("INTERNAL-SALES"))  # EXACT
    assert quote_line(state, qty=1).available_now["DC-CENTRAL"] == 40
    assert quote_line(state, qty=1, account="INTERNAL-SALES").shown["DC-CENTRAL"] == 40
    assert state.inventory.on_hand[state.skus.get(BOLT), state.locations.get("DC-CENTRAL")] == 40


# --- holds --------------------------------------------------------------------------------

PLACED_MS = 1_700_000_000_000
TTL_MS = 60_000


def _held():
    state = _warehouse(make_stock(location="DC-EAST", on_hand=100), make_account("OTHER-0002"))
    result = apply(
        state, make_hold("CART-1", (BOLT, "DC-EAST", 30), ttl_ms=TTL_MS, ts_ms=PLACED_MS)
    )
    assert result.rejected == []
    return state


def _east(state, account=None):
    options = {} if account is None else {"account": account}
    return quote_line(state, qty=1, locations=["DC-EAST"], **options).available_now["DC-EAST"]


def test_hold_lowers_availability_for_every_account():
    state = _held()
    assert _east(state) == 70  # 100 − 30
    assert _east(state, "OTHER-0002") == 70


def test_hold_lasts_until_its_expiry_by_stream_time():
    state = _held()
    apply(state, clock_ms=PLACED_MS + TTL_MS - 1)
    assert _east(state) == 70
    apply(state, clock_ms=PLACED_MS + TTL_MS)  # expires at placed + ttl
    assert _east(state) == 100


def test_an_ended_hold_is_remembered_for_a_day_then_its_key_is_free():
    state = _held()
    expired = PLACED_MS + TTL_MS
    apply(state, clock_ms=expired + HOLD_RETENTION_MS - 1)
    retried = apply(state, make_hold("CART-1", (BOLT, "DC-EAST", 40), ttl_ms=TTL_MS))
    [(_, reason)] = retried.rejected
    assert reason.startswith("hold_key:")
    assert len(state.holds) == 1  # still known: a retry is not a new hold
    apply(state, clock_ms=expired + HOLD_RETENTION_MS)
    assert state.holds == {}  # forgotten: the state does not grow with every order
    placed = apply(state, make_hold("CART-1", (BOLT, "DC-EAST", 40), ttl_ms=TTL_MS,
                                    ts_ms=expired + HOLD_RETENTION_MS))  # fmt: skip
    assert placed.rejected == []
    assert _east(state) == 60  # a new hold of the key, with its own lines


def test_released_hold_gives_its_stock_back():
    state = _held()
    apply(state, make_release("CART-1"))
    assert _east(state) == 100


def test_same_hold_key_with_the_same_lines_is_the_same_hold():
    state = _held()
    result = apply(state, make_hold("CART-1", (BOLT, "DC-EAST", 30), ttl_ms=TTL_MS))
    assert result.rejected == []
    assert _east(state) == 70  # held once, not twice


def test_same_hold_key_with_other_lines_is_rejected_and_the_first_hold_stands():
    state = _held()
    result = apply(state, make_hold("CART-1", (BOLT, "DC-EAST", 40), ttl_ms=TTL_MS))
    [(index, reason)] = result.rejected
    assert index == 0
    assert reason.startswith("hold_key:")
    assert _east(state) == 70


def test_hold_on_several_lines_lowers_each_of_them():
    state = _warehouse(
        make_stock(location="DC-EAST", on_hand=100),
        make_stock(location="DC-WEST", on_hand=50),
        make_hold("CART-2", (BOLT, "DC-EAST", 10), (BOLT, "DC-WEST", 20)),
    )
    line = quote_line(state, qty=1, locations=["DC-EAST", "DC-WEST"])
    assert line.available_now == {"DC-EAST": 90, "DC-WEST": 30}


def test_another_account_using_the_same_hold_key_holds_on_its_own():
    state = _held()  # ACCOUNT holds 30 under CART-1
    result = apply(
        state,
        make_hold("CART-1", (BOLT, "DC-EAST", 10), ttl_ms=TTL_MS, account="OTHER-0002"),
    )
    assert result.rejected == []  # other lines under the same key: fine in another account
    assert _east(state) == 60  # 100 − 30 − 10
    mine, theirs = hold_of(state, ACCOUNT, "CART-1"), hold_of(state, "OTHER-0002", "CART-1")
    assert (mine.account, mine.qty.tolist()) == (ACCOUNT, [30])
    assert (theirs.account, theirs.qty.tolist()) == ("OTHER-0002", [10])
    assert hold_of(state, "NOBODY", "CART-1") is None


def test_only_the_account_that_placed_a_hold_releases_it():
    state = _held()
    apply(state, make_release("CART-1", account="OTHER-0002"))
    assert _east(state) == 70  # still held: another account cannot find it, nor release it
    assert hold_of(state, ACCOUNT, "CART-1").active
    apply(state, make_release("CART-1", account=ACCOUNT))
    assert _east(state) == 100


def test_an_account_reusing_its_hold_key_with_other_lines_is_rejected_whoever_else_uses_it():
    state = _held()
    apply(state, make_hold("CART-1", (BOLT, "DC-EAST", 1), ttl_ms=TTL_MS, account="OTHER-0002"))
    result = apply(state, make_hold("CART-1", (BOLT, "DC-EAST", 2), ttl_ms=TTL_MS))
    assert result.rejected == [(0, "hold_key: 'CART-1' was already used with other lines")]
    assert _east(state) == 69  # 100 − 30 − 1


def test_a_hold_whose_account_is_not_a_valid_code_is_rejected_naming_the_field():
    state = _held()
    result = apply(
        state,
        make_hold("CART-5", (BOLT, "DC-EAST", 1), account=" ACME"),
        make_release("CART-1", account="x" * 65),
    )
    reasons = dict(result.rejected)
    assert reasons[0].startswith("account: ' ACME' is not printable ASCII without edge blanks")
    assert reasons[1] == "account: length 65 out of range (limit: 1..64 characters)"
    assert _east(state) == 70


def test_a_hold_without_an_account_as_older_stream_entries_decode_is_its_own_hold():
    # an entry written before holds had accounts has no "account" field on the wire
    entry = b'{"type": "HoldPlace", "hold_key": "CART-1", "lines": [["BOLT-M8", "DC-EAST", 5]],'
    [old] = decode(entry + b' "ttl_ms": 60000}')
    assert old.account == ""
    state = _held()
    result = apply(state, old)
    assert result.rejected == []
    assert _east(state) == 65
    assert hold_of(state, "", "CART-1").qty.tolist() == [5]


def _sizes(state):
    """Every code table's size and the rows and cells grown from them."""
    tables = ("skus", "locations", "accounts", "uoms", "currencies")
    return (
        {name: len(getattr(state, name)) for name in tables},
        (state.items.n, state.location_rows.n),
        (state.inventory.sku_capacity, state.inventory.location_capacity),
    )


def test_a_hold_naming_an_unknown_sku_is_rejected_naming_the_line_and_creates_nothing():
    state = _held()
    before = _sizes(state)
    result = apply(
        state,
        make_hold("CART-2", (BOLT, "DC-EAST", 5), ("JUNK-0001", "DC-EAST", 2), ttl_ms=TTL_MS),
    )
    assert result.rejected == [
        (0, "lines[1].sku: unknown SKU 'JUNK-0001' (a hold never creates one)")
    ]
    assert "JUNK-0001" not in state.skus
    assert _sizes(state) == before
    assert _east(state) == 70  # the hold's known line was not held either: all or nothing
    assert quote_line(state, "JUNK-0001", qty=1).status == LineStatus.UNKNOWN_SKU


def test_a_hold_naming_an_unknown_location_is_rejected_naming_the_line_and_creates_nothing():
    state = _held()
    before = _sizes(state)
    result = apply(state, make_hold("CART-3", (BOLT, "DC-NOWHERE", 1), ttl_ms=TTL_MS))
    assert result.rejected == [
        (0, "lines[0].location: unknown location 'DC-NOWHERE' (a hold never creates one)")
    ]
    assert "DC-NOWHERE" not in state.locations
    assert _sizes(state) == before


def test_thousands_of_junk_hold_lines_leave_the_state_the_size_it_was():
    state = _held()
    before = _sizes(state)
    junk = [(f"JUNK-{i:05d}", "DC-EAST", 1) for i in range(5_000)]  # MAX_HOLD_LINES
    result = apply(state, make_hold("CART-JUNK", *junk, ttl_ms=TTL_MS))
    assert [index for index, _ in result.rejected] == [0]
    assert _sizes(state) == before
    assert state.holds.keys() == {(ACCOUNT, "CART-1")}


def test_a_hold_on_a_sku_first_stocked_in_the_same_batch_is_placed():
    # holds apply after the batch's master and inventory events, which may bring the codes
    state = _held()
    result = apply(
        state,
        make_hold("CART-4", ("NEW-SKU", "DC-NEW", 4), ttl_ms=TTL_MS, ts_ms=PLACED_MS),
        make_stock("NEW-SKU", "DC-NEW", on_hand=10),
        make_location("DC-NEW"),
    )
    assert result.rejected == []
    cell = (state.skus.get("NEW-SKU"), state.locations.get("DC-NEW"))
    assert state.inventory.held[cell] == 4


# --- the engine agrees with a plain reference model -----------------------------------------

_LOCATIONS = ("DC-EAST", "DC-WEST", "DC-CENTRAL")
_position = st.tuples(st.integers(0, 30), st.integers(0, 30))  # on_hand, allocated
_receipt = st.tuples(st.integers(-3, 10), st.integers(1, 20))  # day offset, qty


def _reference_earliest(positions, receipts, need, lead_time_days, discontinued):
    """DESIGN §5 + atp.py, slowly: cumulative ATP per location, clipped, summed."""
    now = {loc: on_hand - allocated for loc, (on_hand, allocated) in positions.items()}
    if sum(max(v, 0) for v in now.values()) >= need:
        return TODAY
    if discontinued:
        return None
    dates = sorted({max(offset, 0) for loc in receipts for offset, _ in receipts[loc]})
    for offset in dates:
        arrived = {
            loc: sum(q for d, q in receipts.get(loc, ()) if max(d, 0) <= offset) for loc in now
        }
        if sum(max(now[loc] + arrived[loc], 0) for loc in now) >= need:
            return day(offset)
    return None if lead_time_days is None else day(lead_time_days)


_sku_world = st.fixed_dictionaries(
    {
        "positions": st.fixed_dictionaries({loc: _position for loc in _LOCATIONS}),
        "receipts": st.fixed_dictionaries(
            {loc: st.lists(_receipt, max_size=3) for loc in _LOCATIONS}
        ),
        "lead_time_days": st.none() | st.integers(0, 30),
        "discontinued": st.booleans(),
    }
)


@settings(max_examples=120, deadline=None)
@given(
    worlds=st.tuples(_sku_world, _sku_world),
    lines=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 120)), min_size=1, max_size=6),
)
def test_earliest_date_agrees_with_the_reference_model(worlds, lines):
    skus = (BOLT, "NUT-M8")
    events = []
    for sku, world in zip(skus, worlds, strict=True):
        status = "DISCONTINUED" if world["discontinued"] else "ACTIVE"
        events.append(make_item(sku, lead_time_days=world["lead_time_days"], status=status))
        for loc, (on_hand, allocated) in world["positions"].items():
            events.append(make_stock(sku, loc, on_hand, allocated=allocated))
        for loc, receipts in world["receipts"].items():
            events.append(make_inbound(*[(day(d), q) for d, q in receipts], sku=sku, location=loc))
    state = make_state(make_account(), *[make_location(loc) for loc in _LOCATIONS], *events)
    answers = quote_lines(state, [(skus[s], need) for s, need in lines], locations=_LOCATIONS)
    for (s, need), answer in zip(lines, answers, strict=True):
        world = worlds[s]
        expected = _reference_earliest(
            world["positions"],
            world["receipts"],
            need,
            world["lead_time_days"],
            world["discontinued"],
        )
        assert answer.earliest_date == expected, (skus[s], need)
