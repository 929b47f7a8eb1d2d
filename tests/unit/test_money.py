"""DESIGN §3 money: exact integer micros, half-away-from-zero rounding, overflow handled."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.money import (
    INT64_MAX,
    div_round,
    micros_per_minor_unit,
    mul_div_round,
    round_scalar,
)
from engine.quote import LineStatus
from tests.builders import (
    ACCOUNT,
    SKU,
    make_account,
    make_contract,
    make_item,
    make_net_line,
    make_price,
    make_state,
    micros,
    quote_line,
    quote_lines,
)

# --- the rounding primitives ---------------------------------------------------------------


def test_exact_half_rounds_away_from_zero_on_both_sides():
    # 5/2 = 2.5 → 3; -5/2 = -2.5 → -3; 3/2 = 1.5 → 2; -3/2 = -1.5 → -2
    assert [round_scalar(n, 2) for n in (5, -5, 3, -3)] == [3, -3, 2, -2]


def test_below_half_rounds_toward_zero_and_above_half_away():
    # 7/3 = 2.33 → 2; 8/3 = 2.67 → 3; -7/3 → -2; -8/3 → -3
    assert [round_scalar(n, 3) for n in (7, 8, -7, -8)] == [2, 3, -2, -3]


def test_array_rounding_matches_the_scalar_rule():
    numerators = np.array([5, -5, 3, -3, -7, 7, 0, 1], dtype=np.int64)
    # -7/2 = -3.5 → -4; 7/2 = 3.5 → 4; 1/2 = 0.5 → 1
    assert div_round(numerators, np.int64(2)).tolist() == [3, -3, 2, -2, -4, 4, 0, 1]


@pytest.mark.parametrize(
    ("currency", "micros_per_minor"),
    [("USD", 10_000), ("EUR", 10_000), ("JPY", 1_000_000), ("KWD", 1_000), ("CLF", 100)],
)
def test_minor_unit_follows_the_iso_4217_exponent(currency, micros_per_minor):
    # USD 2 decimals → 10^(6-2); JPY 0 → 10^6; KWD 3 → 10^3; CLF 4 → 10^2
    assert micros_per_minor_unit(currency) == micros_per_minor


def test_product_that_overflows_int64_is_computed_exactly():
    # 1,234,567 × 7,777,777,777,777 = 9,602,187,777,776,817,559 > 2^63 − 1, so int64 would
    # wrap; exact ÷ 10^6, to cents (step 10^4): 9,602,187,777,776.817559 → …780,000
    result, ok = mul_div_round(
        np.array([1_234_567, 3], dtype=np.int64),
        np.array([7_777_777_777_777, 5], dtype=np.int64),
        np.array([1_000_000, 1], dtype=np.int64),
        10_000,
    )
    assert ok.tolist() == [True, True]
    # second row: 3 × 5 / 1 = 15 micros → 0 cents
    assert result.tolist() == [9_602_187_780_000, 0]


def test_result_beyond_int64_is_reported_not_wrapped():
    # 10^12 × 10^7 = 10^19 > 9.22 × 10^18
    result, ok = mul_div_round(
        np.array([10**12], dtype=np.int64), np.array([10**7], dtype=np.int64), np.int64(1)
    )
    assert ok.tolist() == [False]
    assert result.tolist() == [0]


@settings(max_examples=300, deadline=None)
@given(
    a=st.integers(0, 10**12),
    b=st.integers(0, 10**13 * 11),
    denominator=st.integers(1, 10**10),
    step=st.sampled_from([1, 100, 1_000, 10_000, 1_000_000]),
)
def test_mul_div_round_agrees_with_exact_integer_arithmetic(a, b, denominator, step):
    # reference: round half up of a·b / (den·step), in Python's unbounded integers
    quotient, remainder = divmod(a * b, denominator * step)
    expected = (quotient + (2 * remainder >= denominator * step)) * step
    result, ok = mul_div_round(
        np.array([a], dtype=np.int64), np.array([b], dtype=np.int64), np.array([denominator]), step
    )
    assert bool(ok[0]) == (expected <= INT64_MAX)
    if expected <= INT64_MAX:
        assert int(result[0]) == expected


# --- prices and extended amounts in a quote --------------------------------------------------


def test_unit_price_in_the_line_uom_is_price_times_factor_ratio_rounded_half_up():
    state = make_state(
        make_item(uoms={"PK": 2, "CS": 24}),
        make_account(),
        make_price(price=1_000_001, uom="PK"),  # 1.000001 per 2-pack
    )
    # EA: 1,000,001 × 1 / 2 = 500,000.5 → 500,001 micros
    assert quote_line(state, qty=1).unit_price_micros == 500_001
    # CS: 1,000,001 × 24 / 2 = 12,000,012 exactly
    assert quote_line(state, qty=1, uom="CS").unit_price_micros == 12_000_012


def test_extended_is_rounded_from_the_exact_rational_not_from_the_rounded_unit_price():
    state = make_state(
        make_item(uoms={"CS": 12}),
        make_account(),
        make_price(price=micros("12.10"), uom="CS"),
    )
    line = quote_line(state, qty=3)
    # unit: 12,100,000 / 12 = 1,008,333.33 → 1,008,333 micros
    assert line.unit_price_micros == 1_008_333
    # extended: 3 × 12,100,000 / 12 = 3,025,000 micros = 3.025 → 3.03 (half up);
    # from the rounded unit price it would be 3 × 1,008,333 = 3,024,999 → 3.02
    assert line.extended_micros == micros("3.03")


@pytest.mark.parametrize(
    ("currency", "price", "expected"),
    [
        # 5 × 0.025 USD = 0.125 → 0.13 (2 decimals, exact half goes up)
        ("USD", micros("0.025"), micros("0.13")),
        # 5 × 0.5 JPY = 2.5 → 3 (0 decimals)
        ("JPY", micros("0.5"), micros("3")),
        # 5 × 0.0025 KWD = 0.0125 → 0.013 (3 decimals)
        ("KWD", micros("0.0025"), micros("0.013")),
        # 5 × 0.024 USD = 0.120 → 0.12 (already on a cent)
        ("USD", micros("0.024"), micros("0.12")),
        # 5 × 0.4 JPY = 2.0 → 2
        ("JPY", micros("0.4"), micros("2")),
        # 5 × 0.0024 KWD = 0.012 → 0.012
        ("KWD", micros("0.0024"), micros("0.012")),
    ],
)
def test_extended_is_rounded_half_up_to_the_currency_minor_unit(currency, price, expected):
    state = make_state(make_item(), make_account(), make_price(price=price, currency=currency))
    line = quote_line(state, qty=5, currency=currency)
    assert line.status == LineStatus.OK
    assert line.extended_micros == expected


def test_extended_just_below_half_a_minor_unit_rounds_down():
    state = make_state(make_item(), make_account(), make_price(price=micros("0.024999")))
    # 5 × 0.024999 = 0.124995 → 0.12
    assert quote_line(state, qty=5).extended_micros == micros("0.12")


def _case_priced_contract(currency: str, tiers):
    return make_state(
        make_item(uoms={"CS": 12}),
        make_account(),
        make_contract("C-CASE", accounts=[ACCOUNT], currency=currency),
        make_net_line("C-CASE", tiers=tiers, uom="CS"),
    )


def test_case_priced_contract_line_quoted_in_each_with_a_break_crossed_in_jpy():
    # Breaks per CS (12 EA): 1,250 JPY from 0 CS, 1,150 JPY from 5 CS (= 60 EA).
    state = _case_priced_contract("JPY", [(0, micros("1250")), (5, micros("1150"))])
    line = quote_line(state, qty=63, currency="JPY")
    # 63 EA ≥ 60 EA: the 5 CS break prices all 63 units
    assert (line.tier_index, line.tier_min) == (1, 5)
    # unit: 1,150,000,000 × 1 / 12 = 95,833,333.33 → 95,833,333 micros
    assert line.unit_price_micros == 95_833_333
    # extended: 63 × 1,150 / 12 = 6,037.5 JPY → 6,038 (half up; the rounded unit
    # price would give 63 × 95.833333 = 6,037.499979 → 6,037)
    assert line.extended_micros == micros("6038")


def test_case_priced_contract_line_quoted_in_each_with_a_break_crossed_in_usd():
    # Breaks per CS (12 EA): 13.00 USD from 0 CS, 12.10 USD from 5 CS (= 60 EA).
    state = _case_priced_contract("USD", [(0, micros("13.00")), (5, micros("12.10"))])
    line = quote_line(state, qty=63)
    assert (line.tier_index, line.tier_min) == (1, 5)
    # unit: 12,100,000 / 12 = 1,008,333.33 → 1,008,333 micros
    assert line.unit_price_micros == 1_008_333
    # extended: 63 × 12.10 / 12 = 762.30 / 12 = 63.525 → 63.53 (half up; the rounded unit
    # price would give 63 × 1.008333 = 63.524979 → 63.52)
    assert line.extended_micros == micros("63.53")


def test_case_priced_contract_line_below_the_break_uses_the_first_tier():
    state = _case_priced_contract("USD", [(0, micros("13.00")), (5, micros("12.10"))])
    line = quote_line(state, qty=59)  # 59 EA < 60 EA
    # 59 × 13.00 / 12 = 767 / 12 = 63.91666… → 63.92
    assert (line.tier_index, line.extended_micros) == (0, micros("63.92"))


def test_line_whose_qty_times_price_overflows_int64_is_priced_exactly():
    state = make_state(
        make_item(uoms={"PL": 1_000_000}),
        make_account(),
        make_price(price=7_777_777_777_777, uom="PL"),  # 7,777,777.777777 per pallet
    )
    line = quote_line(state, qty=1_234_567)
    # 1,234,567 × 7,777,777,777,777 = 9,602,187,777,776,817,559 (> int64) ÷ 10^6
    # = 9,602,187.777776… USD → 9,602,187.78
    assert line.status == LineStatus.OK
    assert line.extended_micros == micros("9602187.78")
    # unit: 7,777,777,777,777 / 10^6 = 7,777,777.777777 → 7,777,778 micros
    assert line.unit_price_micros == 7_777_778


def test_extended_amount_beyond_int64_micros_is_amount_overflow_for_that_line_only():
    state = make_state(
        make_item(),
        make_item("NUT-M8"),
        make_account(),
        make_price(price=micros("10.00")),
        make_price("NUT-M8", micros("0.10")),
    )
    huge, small = quote_lines(state, [(SKU, 10**12), ("NUT-M8", 3)])
    # 10^12 × 10,000,000 micros = 10^19 > 2^63 − 1 ≈ 9.22 × 10^18
    assert huge.status == LineStatus.AMOUNT_OVERFLOW
    assert huge.extended_micros == 0
    # 3 × 0.10 = 0.30
    assert (small.status, small.extended_micros) == (LineStatus.OK, micros("0.30"))


def test_amount_that_rounds_up_past_int64_is_reported_not_wrapped():
    # 1 × (2^63 − 1) ÷ 1 = 9,223,372,036,854,775,807 micros fits, but to cents (step 10^4)
    # it rounds up to 9,223,372,036,854,780,000 > 2^63 − 1: it must be reported, not wrap.
    result, ok = mul_div_round(
        np.array([1], dtype=np.int64), np.array([INT64_MAX], dtype=np.int64), np.int64(1), 10_000
    )
    assert ok.tolist() == [False]
    assert result.tolist() == [0]


def test_extended_amount_rounding_up_past_int64_is_amount_overflow_not_a_negative_amount():
    # 21,870,289 × 421,730,688,463 micros = 9,223,372,036,854,775,807 = 2^63 − 1 exactly;
    # to cents that is …854.78 USD = 9,223,372,036,854,780,000 micros > 2^63 − 1.
    state = make_state(make_item(), make_account(), make_price(price=421_730_688_463))
    line = quote_line(state, qty=21_870_289)
    assert line.status == LineStatus.AMOUNT_OVERFLOW
    assert line.extended_micros == 0
