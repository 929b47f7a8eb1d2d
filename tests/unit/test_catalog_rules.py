"""DESIGN §2 quantities and item rules: UoM conversion, limits, statuses, sell rules."""

from __future__ import annotations

from engine.quote import LineStatus
from tests.builders import (
    SKU,
    apply,
    make_account,
    make_item,
    make_price,
    make_state,
    micros,
    quote_line,
    quote_lines,
)


def _catalog(**item):
    return make_state(
        make_item(**({"uoms": {"BX": 10, "CS": 100, "PL": 4_800}} | item)),
        make_account(),
        make_price(price=micros("0.25")),
    )


def test_line_quantity_is_converted_to_base_by_the_uom_factor():
    state = _catalog()
    # 3 CS × 100 EA/CS = 300 EA
    line = quote_line(state, qty=3, uom="CS")
    assert (line.status, line.factor, line.base_qty) == (LineStatus.OK, 100, 300)


def test_line_without_a_uom_is_in_the_base_uom():
    state = _catalog()
    line = quote_line(state, qty=7)
    assert (line.factor, line.base_qty) == (1, 7)


def test_line_in_the_base_uom_by_name_has_factor_one():
    state = _catalog()
    line = quote_line(state, qty=7, uom="EA")
    assert (line.status, line.factor, line.base_qty) == (LineStatus.OK, 1, 7)


def test_base_quantity_of_exactly_ten_to_the_twelfth_is_accepted():
    state = _catalog()
    # 208,333,333 PL × 4,800 = 999,999,998,400 ≤ 10^12; 10^12 EA is the limit itself
    assert quote_line(state, qty=208_333_333, uom="PL").status == LineStatus.OK
    assert quote_line(state, qty=10**12).status == LineStatus.OK


def test_base_quantity_above_ten_to_the_twelfth_is_qty_out_of_range():
    state = _catalog()
    # 208,333,334 PL × 4,800 = 1,000,000,003,200 > 10^12
    assert quote_line(state, qty=208_333_334, uom="PL").status == LineStatus.QTY_OUT_OF_RANGE
    assert quote_line(state, qty=10**12 + 1).status == LineStatus.QTY_OUT_OF_RANGE


def test_negative_quantity_is_qty_out_of_range():
    state = _catalog()
    assert quote_line(state, qty=-1).status == LineStatus.QTY_OUT_OF_RANGE


def test_uom_the_item_does_not_have_is_unknown_uom():
    state = make_state(
        make_item(uoms={"BX": 10}),
        make_item("NUT-M8", uoms={"CS": 100}),  # CS exists, but not on BOLT-M8
        make_account(),
        make_price(price=micros("0.25")),
    )
    assert quote_line(state, qty=1, uom="CS").status == LineStatus.UNKNOWN_UOM
    assert quote_line(state, qty=1, uom="DRUM").status == LineStatus.UNKNOWN_UOM  # never seen


def test_unknown_sku_is_a_line_status_while_the_other_lines_are_answered():
    state = _catalog()
    unknown, known = quote_lines(state, [("NO-SUCH-SKU", 5), (SKU, 4)])
    assert unknown.status == LineStatus.UNKNOWN_SKU
    # 4 EA × 0.25 = 1.00
    assert (known.status, known.extended_micros) == (LineStatus.OK, micros("1.00"))


def test_lines_with_an_error_status_carry_no_price():
    # quote.LineStatus: "only OK lines carry a price"; PriceResult: "-1 / 0 where a line has
    # no price". An unknown SKU must not show the price of whichever SKU has dense id 0.
    state = make_state(
        make_item(uoms={"BX": 10}),
        make_item("OLD-1", status="BLOCKED"),
        make_account(),
        make_price(price=micros("0.25")),
        make_price("OLD-1", micros("9.00")),
    )
    lines = quote_lines(state, [("NO-SUCH-SKU", 5), (SKU, 2, "DRUM"), (SKU, 10**13), ("OLD-1", 1)])
    assert [line.status for line in lines] == [
        LineStatus.UNKNOWN_SKU,
        LineStatus.UNKNOWN_UOM,
        LineStatus.QTY_OUT_OF_RANGE,
        LineStatus.ITEM_BLOCKED,
    ]
    assert [(line.unit_price_micros, line.extended_micros) for line in lines] == [(0, 0)] * 4
    assert [line.source_code for line in lines] == [None] * 4


def test_blocked_item_is_an_item_blocked_line_error():
    state = make_state(
        make_item(status="BLOCKED"),
        make_item("NUT-M8"),
        make_account(),
        make_price(price=micros("0.25")),
        make_price("NUT-M8", micros("0.10")),
    )
    blocked, orderable = quote_lines(state, [(SKU, 1), ("NUT-M8", 1)])
    assert blocked.status == LineStatus.ITEM_BLOCKED
    assert orderable.status == LineStatus.OK


def test_discontinued_item_is_still_orderable():
    state = _catalog(status="DISCONTINUED")
    assert quote_line(state, qty=1).status == LineStatus.OK


def test_line_below_min_order_qty_is_answered_flagged_with_the_minimum_suggested():
    state = _catalog(min_order_qty=250)
    # 2 CS = 200 EA < 250; suggestion: 250 EA, which is 2.5 CS → not exact → 250 in base
    line = quote_line(state, qty=2, uom="CS")
    assert line.status == LineStatus.OK
    assert line.below_minimum and not line.not_multiple
    assert (line.suggested_qty, line.suggested_in_base) == (250, True)
    assert line.extended_micros == micros("50.00")  # 200 × 0.25: still priced as asked


def test_suggested_qty_is_in_the_line_uom_when_it_converts_exactly():
    state = _catalog(min_order_qty=300)
    # 2 CS = 200 EA < 300; 300 EA = 3 CS exactly
    line = quote_line(state, qty=2, uom="CS")
    assert line.below_minimum
    assert (line.suggested_qty, line.suggested_in_base) == (3, False)


def test_line_off_the_order_multiple_suggests_the_next_multiple():
    state = _catalog(order_multiple=12)
    # 13 EA is not a multiple of 12; the next one is 24
    line = quote_line(state, qty=13)
    assert line.not_multiple and not line.below_minimum
    assert (line.suggested_qty, line.suggested_in_base) == (24, False)


def test_order_multiple_suggestion_falls_back_to_base_when_the_uom_does_not_divide_it():
    state = _catalog(order_multiple=12)
    # 1 BX = 10 EA; next multiple of 12 ≥ 10 is 12 EA = 1.2 BX → given in base: 12
    line = quote_line(state, qty=1, uom="BX")
    assert line.not_multiple
    assert (line.suggested_qty, line.suggested_in_base) == (12, True)


def test_order_multiple_suggestion_is_in_the_line_uom_when_it_divides():
    state = _catalog(order_multiple=20)
    # 3 BX = 30 EA; next multiple of 20 ≥ 30 is 40 EA = 4 BX
    line = quote_line(state, qty=3, uom="BX")
    assert (line.suggested_qty, line.suggested_in_base) == (4, False)


def test_minimum_and_multiple_together_suggest_the_smallest_valid_quantity():
    state = _catalog(min_order_qty=50, order_multiple=12)
    # max(10, 50) = 50 → next multiple of 12 is 60
    line = quote_line(state, qty=10)
    assert line.below_minimum and line.not_multiple
    assert line.suggested_qty == 60


def test_valid_line_is_not_flagged_and_suggests_itself():
    state = _catalog(min_order_qty=100, order_multiple=100)
    line = quote_line(state, qty=2, uom="CS")
    assert not line.below_minimum and not line.not_multiple
    assert (line.suggested_qty, line.suggested_in_base) == (2, False)


def test_fractional_uom_factor_is_rejected_naming_the_uom():
    state = make_state()
    result = apply(state, make_item(uoms={"BX": 2.5}))
    [(index, reason)] = result.rejected
    assert index == 0
    assert reason.startswith("uoms.BX: must be an integer")
    assert state.skus.get(SKU) == -1  # the item was not stored


def test_zero_uom_factor_is_rejected_with_its_limit():
    state = make_state()
    [(_, reason)] = apply(state, make_item(uoms={"BX": 0})).rejected
    assert reason.startswith("uoms.BX: 0 out of range")
    assert "limit: 1.." in reason


def test_alternate_uom_repeating_the_base_is_rejected():
    state = make_state()
    [(_, reason)] = apply(state, make_item(uoms={"EA": 1})).rejected
    assert reason == "uoms.EA: repeats the base UoM"
