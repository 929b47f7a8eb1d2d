"""The pricing kernel agrees with the reference model at its own edges.

``test_reference_agreement`` draws whole worlds of small values; this property draws one
item priced where a compiled kernel can go wrong, and compares every price field (through
the same comparison) under both policies:

- money at the int64 edge: quantity × price exactly 2^63 − 1 and one past, in currencies
  whose minor unit rounds the amount up past it or not; DISCOUNT and COST_PLUS fractions
  whose intermediate product leaves int64 while the answer fits (128-bit paths);
- UoM factors of 1 and 10^6 on the line, the price and the contract line;
- contract-line runs: none, one, and a crowd of contracts on the SKU — the account's own
  (a long run read through the dense row or a scan) or another account's (a long run
  where the account's few candidates are probed one by one);
- SKUs with no list price, accounts with no contracts, validity windows that start or end
  on the pricing date, quantities exactly on a break minimum and one below;
- codes that are not printable ASCII: rejected as events by both, unknown in requests.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from engine import events as ev
from engine.deltas import apply_batch
from engine.pricing import Policy
from engine.state import State
from tests.reference import Reference
from tests.strategies import D0, D0_DAY, PROPERTIES, QuoteRequest
from tests.unit.test_reference_agreement import assert_quote_agrees

INT64_MAX = 2**63 - 1
# prices whose products with a quantity land on or next to 2^63 − 1 = 7² × 73 × 127 × 337 ×
# 92737 × 649657: 421,730,688,463 × 21,870,289 is exactly 2^63 − 1, and 2^40 × 2^23 is one past
_EDGE_PRICES = (421_730_688_463, 2**40, 10**13, 9_999_999, 1, 0, 333_333)
_FACTORS = (1, 1, 10**6, 12)
_NON_ASCII = ("SKÜ-1", "ШУРУП", "S1\u00a0")  # not printable ASCII: never a code


def _pick(draw: Any, options: tuple[Any, ...]) -> Any:
    return draw(st.sampled_from(options))


def _edge_quantities(price: int, factor: int) -> tuple[int, ...]:
    """Quantities in a UoM of ``factor`` whose amount at ``price`` per base unit sits on
    either side of 2^63 − 1 micros (within the 10^12 base-unit limit where possible)."""
    per_unit = max(price * factor, 1)
    at = INT64_MAX // per_unit
    return tuple(q for q in (at, at + 1, 21_870_289, 2**23) if 0 <= q * factor <= 10**12)


def _window(draw: Any) -> tuple[dt.date | None, dt.date | None]:
    """A validity window whose ends fall on, just before or just after the pricing date."""
    day = dt.timedelta(days=1)
    start = _pick(draw, (None, D0, D0 + day, D0 - day))
    end = _pick(draw, (None, D0, D0 + day))
    if start is not None and end is not None and end <= start:
        end = None
    return start, end


def _tiers(draw: Any, values: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    first = _pick(draw, (0, 0, 1, 5))
    tiers = [(first, _pick(draw, values))]
    if draw(st.booleans()):
        tiers.append((first + _pick(draw, (1, 7, 10**6)), _pick(draw, values)))
    return tuple(tiers)


@st.composite
def edge_cases(draw: Any) -> tuple[list[Any], QuoteRequest, int]:
    """(events, request, dense threshold) of one item priced at the kernel's edges."""
    currency = _pick(draw, ("USD", "USD", "JPY", "KWD"))
    bx = _pick(draw, _FACTORS)
    events: list[Any] = [
        ev.ProductGroupUpsert(product_group="G2", version=1),
        ev.ProductGroupUpsert(product_group="G1", version=1, parent="G2"),
        ev.ItemUpsert(
            sku="S1",
            version=1,
            uoms={"BX": bx, "CS": _pick(draw, _FACTORS)},
            min_order_qty=_pick(draw, (0, 0, 7)),
            order_multiple=_pick(draw, (1, 1, 5)),
            product_group=_pick(draw, (None, "G1")),
            replacement_cost_micros=_pick(draw, (None, 10**13, 333_333)),
            cost_currency=currency,
        ),
        ev.ItemUpsert(sku=_pick(draw, _NON_ASCII), version=1),  # rejected by both
        ev.LocationUpsert(location="W1", version=1),
        ev.AccountUpsert(
            account="A1", version=1, currency=currency, price_list=_pick(draw, (None, "PL1"))
        ),
        ev.AccountUpsert(account="A2", version=1, currency=currency),
    ]
    list_price = _pick(draw, _EDGE_PRICES)
    if draw(st.booleans()):  # else: no list price at all
        start, end = _window(draw)
        events.append(
            ev.PriceSet(
                price_list="LIST", currency=currency, sku="S1", version=1,
                uom=_pick(draw, (None, "BX")), tiers=_tiers(draw, (list_price, *_EDGE_PRICES)),
                valid_from=start, valid_to=end,
            )
        )  # fmt: skip
    if draw(st.booleans()):
        events.append(
            ev.PriceSet(
                price_list="PL1", currency=currency, sku="S1", version=1,
                tiers=((_pick(draw, (0, 10)), _pick(draw, _EDGE_PRICES)),),
            )
        )  # fmt: skip
    values = {
        "NET": _EDGE_PRICES,
        "DISCOUNT": (0, 1, 3333, 5000, 9999, 10_000),
        "COST_PLUS": (0, 1, 2500, 100_000),
    }
    for n in range(_pick(draw, (0, 1, 2, 3))):  # the account's own contracts (maybe none)
        code = f"K{n}"
        start, end = _window(draw)
        kind = _pick(draw, ("NET", "DISCOUNT", "COST_PLUS"))
        events += [
            ev.ContractUpsert(
                contract=code, version=1, currency=currency, priority=_pick(draw, (0, 1)),
                valid_from=start, valid_to=end,
                accounts=("A1",) if draw(st.booleans()) else (),
                all_accounts=draw(st.booleans()),
            ),
            ev.ContractLineSet(
                contract=code, version=1, kind=kind,
                **({"sku": "S1"} if draw(st.booleans()) else {"product_group": "G2"}),
                uom=_pick(draw, (None, "BX", "CS")), tiers=_tiers(draw, values[kind]),
            ),
        ]  # fmt: skip
    crowd = _pick(draw, (0, 0, 40, 140))
    crowd_account = _pick(draw, ("A1", "A2"))  # the account's own, or all another's
    for n in range(crowd):
        code = f"C{n:03d}"
        events += [
            ev.ContractUpsert(
                contract=code, version=1, currency=currency, accounts=(crowd_account,)
            ),
            ev.ContractLineSet(
                contract=code, version=1, sku="S1", tiers=((0, 1_000_000 + 7 * n),)
            ),
        ]  # fmt: skip
    price_for_qty = _pick(draw, (list_price, *_EDGE_PRICES))
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        uom = _pick(draw, (None, "BX", "CS"))
        factor = 1 if uom != "BX" else bx
        near = _edge_quantities(price_for_qty, factor)
        qty = _pick(draw, (*near, 0, 1, 5, 6, 10, 10**6)) if near else _pick(draw, (0, 1, 10))
        lines.append(("S1", qty, uom))
    lines.append((_pick(draw, ("S1", *_NON_ASCII)), 1, _pick(draw, (None, "КОР", "BX"))))
    request = QuoteRequest("A1", tuple(lines), D0_DAY, currency=_pick(draw, (None, currency)))
    return events, request, _pick(draw, (-1, 0, 128))


@settings(PROPERTIES)
@given(case=edge_cases())
def test_the_pricing_kernel_agrees_with_the_reference_at_its_edges(
    case: tuple[list[Any], QuoteRequest, int],
) -> None:
    events, request, dense_min_run = case
    state, reference = State(), Reference()
    state.line_index.dense_min_run = dense_min_run  # dense rows, scans and probes alike
    result = apply_batch(state, events)
    assert sorted(index for index, _ in result.rejected) == reference.apply_batch(events)
    assert result.rejected, "the non-ASCII item must be rejected"
    for policy in Policy:
        assert_quote_agrees(state, reference, request, policy)
    # what the draw reached, for --hypothesis-show-statistics
    for line in reference.quote(account="A1", lines=request.lines, pricing_date=D0_DAY):
        event(f"status {line.status}")
        if line.price is not None and line.price.extended_micros > 2**62:
            event("an amount above 2^62 that fits")
    event(f"SKU contract lines: {len(state.line_index)}, dense_min_run {dense_min_run}")
