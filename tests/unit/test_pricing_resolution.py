"""DESIGN §4 price resolution, one rule per test.

The world: BOLT-M8 (EA; BX = 10, CS = 100) in product group WOOD-SCREWS < SCREWS <
FASTENERS, replacement cost 4.00; LIST price 10.00 per EA. Account ACME-0001 has the parent
chain REGION-0001 < HQ-0001 and the price groups GOLD then CONTRACTORS, in that order.
"""

from __future__ import annotations

import pytest

from engine.contexts import Level
from engine.pricing import Lost, Policy, Source
from engine.quote import LineStatus
from tests.builders import (
    ACCOUNT,
    LIST_CODE,
    SKU,
    day,
    make_account,
    make_contract,
    make_cost_plus_line,
    make_discount_line,
    make_group,
    make_item,
    make_net_line,
    make_price,
    make_state,
    micros,
    quote_line,
    quote_lines,
)

LIST_PRICE = micros("10.00")


def _world(*events, list_price=LIST_PRICE, item=None, account=None):
    item_options = {
        "uoms": {"BX": 10, "CS": 100},
        "product_group": "WOOD-SCREWS",
        "cost": micros("4.00"),
    } | (item or {})
    account_options = {"parent": "REGION-0001", "price_groups": ["GOLD", "CONTRACTORS"]} | (
        account or {}
    )
    return make_state(
        make_group("FASTENERS"),
        make_group("SCREWS", "FASTENERS"),
        make_group("WOOD-SCREWS", "SCREWS"),
        make_item(**item_options),
        make_account("HQ-0001"),
        make_account("REGION-0001", parent="HQ-0001"),
        make_account(**account_options),
        *([] if list_price is None else [make_price(price=list_price)]),
        *events,
    )


def _contract(code, *, price=None, group=None, **header):
    """A contract header with one NET line (for the SKU, or ``group``)."""
    if not any(key in header for key in ("accounts", "price_groups", "all_accounts")):
        header["accounts"] = [ACCOUNT]
    return [make_contract(code, **header), make_net_line(code, price, group=group)]


# --- step 1: candidates -------------------------------------------------------------------


def test_contract_assigned_to_the_account_prices_the_line():
    state = _world(*_contract("C-ACCT", price=micros("8.00")))
    line = quote_line(state, qty=1)
    assert (line.source, line.source_code, line.level) == (Source.CONTRACT, "C-ACCT", Level.ACCOUNT)
    assert line.unit_price_micros == micros("8.00")


@pytest.mark.parametrize("ancestor", ["REGION-0001", "HQ-0001"])
def test_contract_assigned_to_an_ancestor_reaches_the_account(ancestor):
    state = _world(*_contract("C-UP", price=micros("8.00"), accounts=[ancestor]))
    line = quote_line(state, qty=1)
    assert (line.source_code, line.level) == ("C-UP", Level.PARENT)


@pytest.mark.parametrize("price_group", ["GOLD", "CONTRACTORS"])
def test_contract_assigned_to_a_price_group_of_the_account_reaches_it(price_group):
    state = _world(*_contract("C-PG", price=micros("8.00"), price_groups=[price_group]))
    line = quote_line(state, qty=1)
    assert (line.source_code, line.level) == ("C-PG", Level.PRICE_GROUP)


def test_contract_for_all_accounts_reaches_every_account():
    state = _world(
        *_contract("C-PROMO", price=micros("8.00"), all_accounts=True),
        make_account("WALK-IN"),  # no parent, no price group
    )
    for account in (ACCOUNT, "WALK-IN"):
        line = quote_line(state, qty=1, account=account)
        assert (line.source_code, line.level) == ("C-PROMO", Level.ALL)


def test_contract_assigned_elsewhere_is_not_a_candidate():
    state = _world(
        make_account("OTHER-0002"),
        *_contract("C-OTHER", price=micros("8.00"), accounts=["OTHER-0002"]),
        *_contract("C-SILVER", price=micros("8.00"), price_groups=["SILVER"]),
    )
    line = quote_line(state, qty=1)
    assert (line.source_code, line.unit_price_micros) == (LIST_CODE, LIST_PRICE)


def test_contract_reaching_the_account_two_ways_ranks_by_its_most_specific_way():
    # C-BOTH reaches ACME directly and through ALL: it counts as an account contract, so it
    # beats the GOLD price-group contract despite the higher price.
    state = _world(
        make_contract("C-BOTH", accounts=[ACCOUNT], all_accounts=True),
        make_net_line("C-BOTH", micros("9.00")),
        *_contract("C-GOLD", price=micros("8.00"), price_groups=["GOLD"]),
    )
    line = quote_line(state, qty=1)
    assert (line.source_code, line.level) == ("C-BOTH", Level.ACCOUNT)


def test_contract_in_another_currency_is_not_a_candidate():
    state = _world(
        *_contract("C-EUR", price=micros("7.00"), currency="EUR"),
        make_price(price=micros("9.00"), currency="EUR"),
    )
    in_usd = quote_line(state, qty=1)
    assert (in_usd.source_code, in_usd.unit_price_micros) == (LIST_CODE, LIST_PRICE)
    in_eur = quote_line(state, qty=1, currency="EUR")
    assert (in_eur.source_code, in_eur.unit_price_micros) == ("C-EUR", micros("7.00"))


@pytest.mark.parametrize(
    ("pricing_day", "winner"),
    [
        (-11, LIST_CODE),  # the day before valid_from
        (-10, "C-WINDOW"),  # valid_from itself: inclusive
        (9, "C-WINDOW"),  # the last valid day
        (10, LIST_CODE),  # valid_to itself: exclusive
    ],
)
def test_contract_is_valid_from_its_first_day_up_to_but_not_on_its_end_day(pricing_day, winner):
    state = _world(
        *_contract("C-WINDOW", price=micros("8.00"), valid_from=day(-10), valid_to=day(10))
    )
    assert quote_line(state, qty=1, on=day(pricing_day)).source_code == winner


@pytest.mark.parametrize(
    ("pricing_day", "winner"),
    [(-1, LIST_CODE), (0, "PL-GOLD"), (4, "PL-GOLD"), (5, LIST_CODE)],
)
def test_price_list_entry_is_valid_from_its_first_day_up_to_but_not_on_its_end_day(
    pricing_day, winner
):
    state = _world(
        make_price(price=micros("9.00"), price_list="PL-GOLD", valid_from=day(0), valid_to=day(5)),
        account={"price_list": "PL-GOLD"},
    )
    assert quote_line(state, qty=1, on=day(pricing_day)).source_code == winner


# --- step 2: the applicable line of a contract ---------------------------------------------


def test_sku_line_beats_group_line_in_the_same_contract():
    state = _world(
        make_contract("C-ACCT", accounts=[ACCOUNT]),
        make_net_line("C-ACCT", micros("7.00"), group="SCREWS"),
        make_net_line("C-ACCT", micros("9.00")),
    )
    line = quote_line(state, qty=1)
    assert (line.unit_price_micros, line.target) == (micros("9.00"), None)


def test_nearest_group_line_up_the_chain_applies():
    state = _world(
        make_contract("C-ACCT", accounts=[ACCOUNT]),
        make_net_line("C-ACCT", micros("7.00"), group="FASTENERS"),
        make_net_line("C-ACCT", micros("8.00"), group="SCREWS"),
    )
    line = quote_line(state, qty=1)
    assert (line.unit_price_micros, line.target) == (micros("8.00"), "SCREWS")


def test_group_line_at_the_top_of_the_chain_applies_when_no_nearer_one_exists():
    state = _world(*_contract("C-ACCT", price=micros("7.00"), group="FASTENERS"))
    line = quote_line(state, qty=1)
    assert (line.source_code, line.target) == ("C-ACCT", "FASTENERS")


def test_group_line_for_a_group_outside_the_items_chain_does_not_apply():
    state = _world(make_group("NAILS", "FASTENERS"), *_contract("C-NAILS", price=1, group="NAILS"))
    assert quote_line(state, qty=1).source_code == LIST_CODE


def test_discount_line_takes_basis_points_off_the_list_price():
    state = _world(make_contract("C-DISC", accounts=[ACCOUNT]), make_discount_line("C-DISC", 1_500))
    # 10.00 × (10,000 − 1,500) / 10,000 = 8.50
    assert quote_line(state, qty=1).unit_price_micros == micros("8.50")


def test_cost_plus_line_adds_basis_points_to_the_replacement_cost():
    state = _world(make_contract("C-CP", accounts=[ACCOUNT]), make_cost_plus_line("C-CP", 2_500))
    line = quote_line(state, qty=3, uom="BX")
    # 4.00 × (10,000 + 2,500) / 10,000 = 5.00 per EA; × 10 = 50.00 per BX; × 3 = 150.00
    assert (line.unit_price_micros, line.extended_micros) == (micros("50.00"), micros("150.00"))


def test_discount_line_without_a_list_price_does_not_apply_and_the_next_candidate_does():
    state = _world(
        make_contract("C-DISC", accounts=[ACCOUNT], priority=10),
        make_discount_line("C-DISC", 1_000),
        *_contract("C-NET", price=micros("9.00")),
        list_price=None,
    )
    line = quote_line(state, qty=1, explain=True)
    assert (line.source_code, line.unit_price_micros) == ("C-NET", micros("9.00"))
    lost = {c.source: c.lost for c in line.candidates}
    assert lost == {"C-DISC": Lost.NO_LIST_PRICE, "C-NET": Lost.WON}


def test_cost_plus_line_without_a_replacement_cost_does_not_apply_and_the_next_candidate_does():
    state = _world(
        make_contract("C-CP", accounts=[ACCOUNT], priority=10),
        make_cost_plus_line("C-CP", 2_500),
        *_contract("C-NET", price=micros("9.00")),
        item={"cost": None},
    )
    line = quote_line(state, qty=1, explain=True)
    assert line.source_code == "C-NET"
    assert {c.source: c.lost for c in line.candidates}["C-CP"] == Lost.NO_COST


def test_cost_plus_line_does_not_apply_in_a_currency_other_than_the_costs():
    # The cost is in USD; a EUR cost-plus contract has no cost to mark up.
    state = _world(
        make_contract("C-CP-EUR", accounts=[ACCOUNT], currency="EUR"),
        make_cost_plus_line("C-CP-EUR", 2_500),
        make_price(price=micros("9.00"), currency="EUR"),
    )
    assert quote_line(state, qty=1, currency="EUR").source_code == LIST_CODE


# --- step 3: policy priority --------------------------------------------------------------


def test_higher_priority_contract_beats_a_more_specific_and_cheaper_one():
    state = _world(
        *_contract("C-PROMO", price=micros("9.50"), all_accounts=True, priority=5),
        *_contract("C-ACCT", price=micros("8.00"), priority=0),
    )
    line = quote_line(state, qty=1)
    assert (line.source_code, line.unit_price_micros) == ("C-PROMO", micros("9.50"))


def test_account_contract_beats_parent_contract_at_equal_priority():
    state = _world(
        *_contract("C-PARENT", price=micros("8.00"), accounts=["REGION-0001"]),
        *_contract("C-ACCT", price=micros("9.00")),
    )
    assert quote_line(state, qty=1).source_code == "C-ACCT"


def test_nearer_parent_beats_farther_ancestor():
    state = _world(
        *_contract("C-HQ", price=micros("8.00"), accounts=["HQ-0001"]),
        *_contract("C-REGION", price=micros("9.00"), accounts=["REGION-0001"]),
    )
    assert quote_line(state, qty=1).source_code == "C-REGION"


def test_parent_contract_beats_price_group_contract():
    state = _world(
        *_contract("C-GOLD", price=micros("8.00"), price_groups=["GOLD"]),
        *_contract("C-HQ", price=micros("9.00"), accounts=["HQ-0001"]),
    )
    assert quote_line(state, qty=1).source_code == "C-HQ"


def test_price_group_earlier_in_the_accounts_order_beats_a_later_one():
    # The account lists CONTRACTORS before GOLD; C-GOLD is older (lower id) and cheaper.
    state = _world(
        *_contract("C-GOLD", price=micros("8.00"), price_groups=["GOLD"]),
        *_contract("C-CONTRACTORS", price=micros("9.00"), price_groups=["CONTRACTORS"]),
        account={"price_groups": ["CONTRACTORS", "GOLD"]},
    )
    assert quote_line(state, qty=1).source_code == "C-CONTRACTORS"


def test_price_group_contract_beats_all_contract():
    state = _world(
        *_contract("C-PROMO", price=micros("8.00"), all_accounts=True),
        *_contract("C-GOLD", price=micros("9.00"), price_groups=["GOLD"]),
    )
    assert quote_line(state, qty=1).source_code == "C-GOLD"


def test_account_contract_beats_price_group_contract():
    state = _world(
        *_contract("C-GOLD", price=micros("8.00"), price_groups=["GOLD"]),
        *_contract("C-ACCT", price=micros("9.00")),
    )
    assert quote_line(state, qty=1).source_code == "C-ACCT"


def test_sku_line_beats_group_line_across_contracts_of_equal_rank():
    state = _world(
        *_contract("C-GROUP", price=micros("7.00"), group="SCREWS"),
        *_contract("C-SKU", price=micros("9.00")),
    )
    assert quote_line(state, qty=1).source_code == "C-SKU"


def test_nearer_group_line_beats_farther_group_line_across_contracts_of_equal_rank():
    state = _world(
        *_contract("C-FASTENERS", price=micros("7.00"), group="FASTENERS"),
        *_contract("C-SCREWS", price=micros("8.00"), group="SCREWS"),
    )
    assert quote_line(state, qty=1).source_code == "C-SCREWS"


def test_lowest_net_price_breaks_a_tie_of_rank_and_line_target():
    state = _world(
        *_contract("C-A", price=micros("9.00")),
        *_contract("C-B", price=micros("8.50")),
    )
    line = quote_line(state, qty=1)
    assert (line.source_code, line.unit_price_micros) == ("C-B", micros("8.50"))


def test_net_price_tie_break_compares_the_resolved_prices_of_different_line_kinds():
    # C-DISC: 10.00 less 20% = 8.00; C-NET: 8.10. Equal rank, both SKU lines: 8.00 wins.
    state = _world(
        make_contract("C-NET", accounts=[ACCOUNT]),
        make_net_line("C-NET", micros("8.10")),
        make_contract("C-DISC", accounts=[ACCOUNT]),
        make_discount_line("C-DISC", 2_000),
    )
    line = quote_line(state, qty=1)
    assert (line.source_code, line.unit_price_micros) == ("C-DISC", micros("8.00"))


def test_contract_id_breaks_a_full_tie():
    state = _world(
        *_contract("C-1000", price=micros("9.00")),
        *_contract("C-2000", price=micros("9.00")),
    )
    line = quote_line(state, qty=1, explain=True)
    assert line.source_code == "C-1000"
    assert {c.source: c.lost for c in line.candidates}["C-2000"] == Lost.HIGHER_CONTRACT_ID


def test_contract_id_tie_break_does_not_depend_on_arrival_order():
    # DESIGN §4 breaks the last tie by contract id, the contract's identifier (§2). Replicas
    # that saw contracts in another order (a bulk reload) must still pick the same one.
    state = _world(
        *_contract("C-2000", price=micros("9.00")),
        *_contract("C-1000", price=micros("9.00")),
    )
    assert quote_line(state, qty=1).source_code == "C-1000"


# --- step 3: policy lowest_price ----------------------------------------------------------


def test_lowest_price_policy_picks_the_cheapest_contract_whatever_its_priority():
    state = _world(
        *_contract("C-ACCT", price=micros("9.00"), priority=10),
        *_contract("C-PROMO", price=micros("8.00"), all_accounts=True),
    )
    assert quote_line(state, qty=1).source_code == "C-ACCT"  # priority policy
    line = quote_line(state, qty=1, policy=Policy.LOWEST_PRICE)
    assert (line.source_code, line.unit_price_micros) == ("C-PROMO", micros("8.00"))


def test_lowest_price_policy_lets_a_cheaper_list_price_win():
    state = _world(*_contract("C-ACCT", price=micros("10.50")))
    line = quote_line(state, qty=1, policy=Policy.LOWEST_PRICE)
    assert (line.source, line.source_code) == (Source.PRICE_LIST, LIST_CODE)
    assert line.unit_price_micros == LIST_PRICE


def test_lowest_price_policy_breaks_a_price_tie_by_the_priority_order():
    # Equal price: C-HI's higher priority decides (C-LO is older, so it is not the id).
    state = _world(
        *_contract("C-LO", price=micros("8.00"), priority=0),
        *_contract("C-HI", price=micros("8.00"), priority=10, all_accounts=True),
    )
    assert quote_line(state, qty=1, policy=Policy.LOWEST_PRICE).source_code == "C-HI"


def test_lowest_price_policy_ranks_the_list_price_last_on_a_tie():
    state = _world(*_contract("C-ACCT", price=LIST_PRICE))
    assert quote_line(state, qty=1, policy=Policy.LOWEST_PRICE).source_code == "C-ACCT"


# --- quantity breaks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qty", "tier", "extended"),
    [
        (9, 0, "90.00"),  # 9 × 10.00
        (10, 1, "90.00"),  # 10 × 9.00: the break prices every unit, not only the 10th
        (49, 1, "441.00"),  # 49 × 9.00
        (50, 2, "400.00"),  # 50 × 8.00: cheaper than 49 units
    ],
)
def test_all_units_break_prices_every_unit_at_the_largest_minimum_reached(qty, tier, extended):
    state = _world(
        make_price(tiers=[(0, micros("10.00")), (10, micros("9.00")), (50, micros("8.00"))]),
        list_price=None,
    )
    line = quote_line(state, qty=qty)
    assert (line.tier_index, line.extended_micros) == (tier, micros(extended))


@pytest.mark.parametrize(
    ("boxes", "tier", "unit", "extended"),
    [
        (19, 0, "90.00", "1710.00"),  # 190 EA < 2 CS: 900.00/CS × 10/100 = 90.00/BX; × 19
        (20, 1, "80.00", "1600.00"),  # 200 EA = 2 CS: 800.00/CS × 10/100 = 80.00/BX; × 20
    ],
)
def test_break_minimum_in_the_contract_uom_is_compared_in_base_units(boxes, tier, unit, extended):
    state = _world(
        make_contract("C-CASE", accounts=[ACCOUNT]),
        make_net_line("C-CASE", tiers=[(0, micros("900.00")), (2, micros("800.00"))], uom="CS"),
    )
    line = quote_line(state, qty=boxes, uom="BX")
    assert line.tier_index == tier
    assert (line.unit_price_micros, line.extended_micros) == (micros(unit), micros(extended))


def test_contract_line_whose_lowest_break_is_above_the_quantity_does_not_apply():
    state = _world(
        make_contract("C-BULK", accounts=[ACCOUNT]),
        make_net_line("C-BULK", tiers=[(10, micros("8.00"))]),
    )
    below = quote_line(state, qty=9, explain=True)
    assert (below.source_code, below.unit_price_micros) == (LIST_CODE, LIST_PRICE)
    assert {c.source: c.lost for c in below.candidates}["C-BULK"] == Lost.BELOW_LOWEST_BREAK
    assert quote_line(state, qty=10).source_code == "C-BULK"


def test_account_price_list_whose_lowest_break_is_above_the_quantity_falls_back_to_list():
    state = _world(
        make_price(tiers=[(100, micros("7.00"))], price_list="PL-GOLD"),
        account={"price_list": "PL-GOLD"},
    )
    assert quote_line(state, qty=99).source_code == LIST_CODE
    assert quote_line(state, qty=100).source_code == "PL-GOLD"


# --- step 4: fallback to price lists ------------------------------------------------------


def test_account_price_list_prices_the_line_when_no_contract_line_applies():
    state = _world(
        make_price(price=micros("9.25"), price_list="PL-GOLD"),
        account={"price_list": "PL-GOLD"},
    )
    line = quote_line(state, qty=2)
    assert (line.source, line.source_code, line.level) == (
        Source.PRICE_LIST,
        "PL-GOLD",
        Level.PRICE_LIST,
    )
    assert line.extended_micros == micros("18.50")  # 2 × 9.25


def test_list_prices_the_line_when_the_account_price_list_has_no_entry_for_the_sku():
    state = _world(
        make_item("NUT-M8"),
        make_price("NUT-M8", micros("0.10"), price_list="PL-GOLD"),
        account={"price_list": "PL-GOLD"},
    )
    line = quote_line(state, qty=1)
    assert (line.source_code, line.level, line.unit_price_micros) == (
        LIST_CODE,
        Level.LIST,
        LIST_PRICE,
    )


def test_line_without_any_price_is_no_price_while_the_other_lines_are_priced():
    state = _world(make_item("NUT-M8"))
    no_price, priced = quote_lines(state, [("NUT-M8", 1), (SKU, 2)])
    assert no_price.status == LineStatus.NO_PRICE
    assert (priced.status, priced.extended_micros) == (LineStatus.OK, micros("20.00"))


def test_price_in_another_currency_is_no_price():
    state = _world()
    assert quote_line(state, qty=1, currency="EUR").status == LineStatus.NO_PRICE


# --- step 5: why --------------------------------------------------------------------------


def test_priced_line_says_its_source_level_target_and_tier():
    state = _world(
        make_contract("C-GOLD", price_groups=["GOLD"]),
        make_net_line(
            "C-GOLD", tiers=[(0, micros("90.00")), (5, micros("80.00"))], group="SCREWS", uom="BX"
        ),
    )
    line = quote_line(state, qty=60)  # 60 EA = 6 BX ≥ 5 BX
    assert (line.source, line.source_code, line.level, line.target) == (
        Source.CONTRACT,
        "C-GOLD",
        Level.PRICE_GROUP,
        "SCREWS",
    )
    assert (line.tier_index, line.tier_min) == (1, 5)
    # 80.00 per BX × 1/10 = 8.00 per EA
    assert line.unit_price_micros == micros("8.00")


def test_explain_lists_every_candidate_and_why_it_lost():
    state = _world(
        make_contract("C-WIN", accounts=[ACCOUNT], priority=5),
        make_net_line("C-WIN", micros("9.00")),
        make_net_line("C-WIN", micros("7.00"), group="SCREWS"),
        *_contract("C-WIN-TWIN", price=micros("9.00"), priority=5),
        *_contract("C-PEER", price=micros("9.50"), priority=5),
        *_contract("C-GOLD", price=micros("6.00"), priority=5, price_groups=["GOLD"]),
        *_contract("C-PROMO", price=micros("5.00"), all_accounts=True),
        make_contract("C-BULK", accounts=[ACCOUNT], priority=9),
        make_net_line("C-BULK", tiers=[(100, micros("1.00"))]),
        make_contract("C-COST", accounts=[ACCOUNT], priority=9),
        make_cost_plus_line("C-COST", 1_000),
        make_contract("C-PALLET", accounts=[ACCOUNT], priority=9),
        make_net_line("C-PALLET", micros("1.00"), uom="PL"),  # BOLT-M8 has no pallets
        item={"cost": None},
    )
    line = quote_line(state, qty=10, explain=True)
    assert line.source_code == "C-WIN"
    why = {(c.source, c.target): c.lost for c in line.candidates}
    assert why == {
        ("C-WIN", SKU): Lost.WON,
        ("C-WIN", "SCREWS"): Lost.GROUP_LINE,
        ("C-WIN-TWIN", SKU): Lost.HIGHER_CONTRACT_ID,
        ("C-PEER", SKU): Lost.HIGHER_PRICE,
        ("C-GOLD", SKU): Lost.LESS_SPECIFIC,
        ("C-PROMO", SKU): Lost.LOWER_PRIORITY,
        ("C-BULK", SKU): Lost.BELOW_LOWEST_BREAK,
        ("C-COST", SKU): Lost.NO_COST,
        ("C-PALLET", SKU): Lost.UOM_NOT_ON_ITEM,
        (LIST_CODE, SKU): Lost.CONTRACT_WON,
    }
    prices = {c.source: c.unit_price_micros for c in line.candidates if c.target == SKU}
    assert prices["C-PEER"] == micros("9.50")
    assert prices["C-COST"] is None  # a candidate that does not apply has no price
    assert prices[LIST_CODE] == LIST_PRICE


def test_explain_under_lowest_price_says_the_pricier_candidates_lost_on_price():
    state = _world(
        *_contract("C-ACCT", price=micros("9.00"), priority=10),
        *_contract("C-PROMO", price=micros("8.00"), all_accounts=True),
    )
    line = quote_line(state, qty=1, policy=Policy.LOWEST_PRICE, explain=True)
    assert {c.source: c.lost for c in line.candidates} == {
        "C-PROMO": Lost.WON,
        "C-ACCT": Lost.HIGHER_PRICE,
        LIST_CODE: Lost.HIGHER_PRICE,
    }


# --- step 6: next-break hint --------------------------------------------------------------

_BREAKS = [(0, micros("1.00")), (100, micros("0.90")), (500, micros("0.80"))]


def test_next_break_hint_gives_the_quantity_in_the_line_uom_and_the_unit_price_there():
    state = _world(make_price(tiers=_BREAKS), list_price=None)
    line = quote_line(state, qty=3, uom="BX")  # 30 EA, tier 0
    # next break 100 EA = 10 BX, at 0.90 × 10 = 9.00 per BX
    assert (line.next_break_qty, line.next_break_unit_price_micros) == (10, micros("9.00"))


def test_next_break_hint_rounds_up_to_a_whole_line_uom():
    state = _world(make_price(tiers=[(0, micros("1.00")), (105, micros("0.90"))]), list_price=None)
    # 105 EA is 10.5 BX: order 11 BX (110 EA) to reach it
    assert quote_line(state, qty=3, uom="BX").next_break_qty == 11


def test_next_break_hint_gives_the_unit_price_at_the_hinted_quantity():
    # Breaks per EA: 1.00 from 0, 0.90 from 150, 0.80 from 200. Quoted in CS (100 EA), the
    # 150 EA break is reached by ordering 2 CS = 200 EA, which already earns the 0.80 tier:
    # the price "there" is 0.80 × 100 = 80.00 per CS, not the 0.90 tier's 90.00.
    breaks = [(0, micros("1.00")), (150, micros("0.90")), (200, micros("0.80"))]
    state = _world(make_price(tiers=breaks), list_price=None)
    line = quote_line(state, qty=1, uom="CS")
    assert line.next_break_qty == 2
    assert line.next_break_unit_price_micros == micros("80.00")
    assert quote_line(state, qty=2, uom="CS").unit_price_micros == micros("80.00")


def test_next_break_hint_honours_the_order_multiple():
    state = _world(make_price(tiers=_BREAKS), list_price=None, item={"order_multiple": 12})
    # 100 EA is not a multiple of 12: 108 EA (9 × 12) is the first valid quantity ≥ 100
    each = quote_line(state, qty=36)
    assert (each.next_break_qty, each.next_break_unit_price_micros) == (108, micros("0.90"))
    # in BX (10 EA) the quantity must be a multiple of lcm(10, 12) = 60 EA: 120 EA = 12 BX
    boxes = quote_line(state, qty=6, uom="BX")
    assert (boxes.next_break_qty, boxes.next_break_unit_price_micros) == (12, micros("9.00"))


def test_next_break_hint_points_to_the_next_tier_not_the_last():
    state = _world(make_price(tiers=_BREAKS), list_price=None)
    line = quote_line(state, qty=100)  # tier 1: next is 500 at 0.80
    assert (line.next_break_qty, line.next_break_unit_price_micros) == (500, micros("0.80"))


def test_no_next_break_hint_on_the_highest_tier():
    state = _world(make_price(tiers=_BREAKS), list_price=None)
    line = quote_line(state, qty=500)
    assert (line.next_break_qty, line.next_break_unit_price_micros) == (-1, 0)


def test_next_break_hint_of_a_discount_line_uses_the_list_price_at_that_quantity():
    state = _world(
        make_contract("C-DISC", accounts=[ACCOUNT]),
        make_discount_line("C-DISC", tiers=[(0, 1_000), (100, 1_500)]),
        make_price(tiers=[(0, micros("20.00")), (100, micros("18.00"))]),
        list_price=None,
    )
    line = quote_line(state, qty=10)
    # now: 20.00 less 10% = 18.00; at 100 EA: list 18.00 less 15% = 15.30
    assert line.unit_price_micros == micros("18.00")
    assert (line.next_break_qty, line.next_break_unit_price_micros) == (100, micros("15.30"))


# --- a batch is many batches of one -------------------------------------------------------


def test_lines_quoted_together_are_priced_as_if_each_were_quoted_alone():
    state = _world(
        make_item("NUT-M8", product_group="SCREWS", cost=micros("0.05")),
        make_item("WASHER-8", uoms={"BG": 50}),
        make_price("NUT-M8", tiers=[(0, micros("0.20")), (100, micros("0.15"))]),
        make_price("WASHER-8", micros("0.02")),
        make_contract("C-GOLD", price_groups=["GOLD"], priority=1),
        make_discount_line("C-GOLD", 1_000, group="FASTENERS"),
        make_net_line("C-GOLD", tiers=[(0, micros("9.00")), (5, micros("8.50"))], uom="BX"),
        make_contract("C-HQ", accounts=["HQ-0001"], priority=1),
        make_cost_plus_line("C-HQ", 5_000, sku="NUT-M8"),
        make_contract("C-PROMO", all_accounts=True),
        make_net_line("C-PROMO", micros("0.01"), sku="WASHER-8"),
    )
    lines = [
        (SKU, 3, "BX"),
        ("NUT-M8", 150),
        ("WASHER-8", 2, "BG"),
        ("NO-SUCH-SKU", 1),
        (SKU, 70),
        ("NUT-M8", 5),
        (SKU, 1, "CS"),
    ]
    for policy in Policy:
        together = quote_lines(state, lines, policy=policy, explain=True)
        alone = [quote_lines(state, [line], policy=policy, explain=True)[0] for line in lines]
        assert together == alone


def test_a_contract_line_stored_beyond_the_price_table_prices_without_error() -> None:
    # 30 SKUs with contract lines but one list price: the winning contract line's row (29)
    # lies past the end of the price table, which must never be indexed with it.
    skus = [f"S{i:02d}" for i in range(30)]
    state = make_state(
        make_account(),
        make_contract("C", accounts=[ACCOUNT]),
        *[make_item(sku) for sku in skus],
        make_price(skus[0], 1_000_000),
        *[make_net_line("C", 500_000 + i, sku=sku) for i, sku in enumerate(skus)],
    )
    line = quote_line(state, skus[-1], 2)
    # NET 0.500029 per EA × 2 = 1.000058, rounded to cents: 1.00
    assert (line.status, line.source_code, line.unit_price_micros) == (LineStatus.OK, "C", 500_029)
    assert line.extended_micros == 1_000_000
