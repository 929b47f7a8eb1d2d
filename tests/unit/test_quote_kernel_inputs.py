"""What the quote kernel makes of request codes that are not plain ASCII str.

The kernel reads each code's bytes in place from the Python object (``engine/_kernels/
codeindex.pxd`` ``ascii_of``): anything that is not an ASCII str can name no code, so it is
an unknown SKU or UoM on its line, while the batch's other lines are answered as usual. A
UoM of '' or None is the item's base UoM.
"""

from __future__ import annotations

from typing import Any

from engine.deltas import day_number
from engine.quote import LineStatus, quote
from tests.builders import (
    ACCOUNT,
    SKU,
    TODAY,
    make_account,
    make_item,
    make_price,
    make_state,
    micros,
)


def _state() -> Any:
    return make_state(
        make_item(uoms={"BX": 10}),
        make_account(),
        make_price(price=micros("0.25")),
    )


def _statuses(state: Any, skus: list[Any], uoms: list[Any] | None = None) -> list[LineStatus]:
    result = quote(
        state,
        account=ACCOUNT,
        skus=skus,
        qty=[1] * len(skus),
        uoms=uoms,
        pricing_date=day_number(TODAY),
        with_availability=False,
    )
    return [LineStatus(int(s)) for s in result.status]


def test_sku_codes_that_are_not_ascii_str_are_unknown_and_the_rest_answered():
    odd = [SKU + "\x00", SKU[:-1], SKU + "é", "ŠKU", SKU.encode(), 12345, None, "", " " + SKU]
    statuses = _statuses(_state(), [SKU, *odd, SKU])
    assert statuses == [LineStatus.OK, *[LineStatus.UNKNOWN_SKU] * len(odd), LineStatus.OK]


def test_uoms_blank_or_none_are_the_base_uom_and_odd_ones_unknown():
    uoms = ["", None, "BX", "bx", "BX\x00", "BÉ", b"BX", 7]
    statuses = _statuses(_state(), [SKU] * len(uoms), uoms)
    assert statuses == [LineStatus.OK] * 3 + [LineStatus.UNKNOWN_UOM] * 5


def test_an_unknown_sku_outranks_an_odd_uom_on_the_same_line():
    assert _statuses(_state(), ["NOPE", "NOPE"], ["BÉ", None]) == [LineStatus.UNKNOWN_SKU] * 2
