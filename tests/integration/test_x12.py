"""EDI X12 846 and 832 documents → engine events → state → quote.

``documents/inventory_846.edi`` is a supplier's inventory advice for two warehouses (DAL in
the heading, ATL inside a LIN loop) with on-hand, available, committed and on-order
quantities, DTM and SCH dates and an SDQ line. ``documents/catalog_832.edi`` is the same
supplier's price catalog with CTP break tiers, an ignored MSR price, a discount multiplier,
PID descriptions and a PO4 pack.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from engine import events as ev
from engine.atp import DateSource
from engine.deltas import apply_batch
from engine.state import State
from loaders.x12 import X12Error, X12Options, parse, parse_interchanges, to_events
from tests.builders import micros, quote_line

DOCUMENTS = Path(__file__).parent / "documents"
INVENTORY = (DOCUMENTS / "inventory_846.edi").read_text()
CATALOG = (DOCUMENTS / "catalog_832.edi").read_text()
REPORTED = dt.datetime(2025, 3, 3, 6, 30, tzinfo=dt.UTC)
FACTORS = {("NUT-M8", "BX"): 100}


def factor(sku: str, uom: str) -> int | None:
    """The distributor's UoM table, as a loader would look it up."""
    return 1 if uom in ("", "EA") else FACTORS.get((sku, uom))


OPTIONS = X12Options(uom_factor=factor)


def edi(*transactions: tuple[str, list[str]], control: int = 4800, gs_time: str = "0630") -> str:
    """An interchange with correct envelope counts around (ST01, body segments) pairs."""
    isa = (
        "ISA*00*          *00*          *ZZ*ACMESUPPLY     *ZZ*PACACHEDIST    "
        f"*250303*0630*U*00401*{control:09d}*0*P*>"
    )
    segments = [isa, f"GS*IB*ACMESUPPLY*PACACHEDIST*20250303*{gs_time}*{control}*X*004010"]
    for number, (code, body) in enumerate(transactions, start=1):
        segments += [f"ST*{code}*{number:04d}", *body, f"SE*{len(body) + 2}*{number:04d}"]
    segments += [f"GE*{len(transactions)}*{control}", f"IEA*1*{control:09d}"]
    return "~\n".join(segments) + "~\n"


STOCK_BODY = [
    "BIA*00*DD*R1*20250303*0630",
    "N1*WH*DALLAS DC*92*DAL",
    "LIN**VP*BOLT-M8",
    "QTY*17*10*EA",
]


# --- 846 ---------------------------------------------------------------------------------


def test_the_846_gives_stock_per_warehouse_and_inbound_for_dated_quantities():
    events = to_events(INVENTORY, OPTIONS)

    ts = int(REPORTED.timestamp() * 1000)

    def stamp(lin_position: int) -> dict[str, int]:
        return {"version": 4711 * 10**9 + lin_position, "ts_ms": ts}

    march = dt.date(2025, 3, 1)
    assert events == [
        # LIN 1 at the heading's DAL: 17 and 33 give allocated = 1200 - 1150; 63 + DTM 018
        ev.InventorySet(sku="BOLT-M8", location="DAL", on_hand=1200, allocated=50, **stamp(9)),
        ev.InboundSet(
            sku="BOLT-M8", location="DAL", receipts=((march.replace(day=10), 600),), **stamp(9)
        ),
        # LIN 2 in boxes of 100: 17 and 02; 63 with two SCH lines
        ev.InventorySet(sku="NUT-M8", location="DAL", on_hand=4000, allocated=500, **stamp(15)),
        ev.InboundSet(
            sku="NUT-M8",
            location="DAL",
            receipts=((march.replace(day=12), 400), (march.replace(day=20), 500)),
            **stamp(15),
        ),
        # LIN 3 moves to ATL with its own N1; the 33 dated after the report is a receipt
        ev.InventorySet(sku="BOLT-M8", location="ATL", on_hand=300, **stamp(22)),
        ev.InboundSet(
            sku="BOLT-M8", location="ATL", receipts=((march.replace(day=17), 500),), **stamp(22)
        ),
        # LIN 4: SDQ quantities available by location
        ev.InventorySet(sku="WASHER-M8", location="DAL", on_hand=2500, **stamp(27)),
        ev.InventorySet(sku="WASHER-M8", location="ATL", on_hand=800, **stamp(27)),
    ]


def test_clear_inbound_gives_every_reported_location_its_schedule_even_when_empty():
    options = X12Options(uom_factor=factor, clear_inbound=True)

    inbound = [e for e in to_events(INVENTORY, options) if isinstance(e, ev.InboundSet)]

    assert {(e.sku, e.location): e.receipts for e in inbound}[("WASHER-M8", "ATL")] == ()
    assert len(inbound) == 5


def test_a_quantity_in_a_unit_without_a_factor_rejects_its_loop_naming_qty03():
    result = parse(INVENTORY)  # default options know EA only

    assert [error.field for error in result.rejected] == ["QTY03"]
    assert "unit 'BX' of NUT-M8 has no known factor" in str(result.rejected[0])
    assert {e.sku for e in result.events} == {"BOLT-M8", "WASHER-M8"}


def test_a_quantity_without_a_warehouse_is_rejected():
    body = ["BIA*00*DD*R1*20250303*0630", "LIN**VP*BOLT-M8", "QTY*17*10*EA"]

    with pytest.raises(X12Error, match=r"N1: QTY for BOLT-M8 has no warehouse"):
        to_events(edi(("846", body)))


def test_available_above_on_hand_is_an_error():
    body = [*STOCK_BODY, "QTY*33*11*EA"]

    with pytest.raises(X12Error, match="available 11 exceeds on hand 10"):
        to_events(edi(("846", body)))


# --- 832 ---------------------------------------------------------------------------------


def test_the_832_assembles_break_tiers_from_ctp_segments():
    events = to_events(CATALOG)

    bolt, nut, washer = events
    assert bolt == ev.PriceSet(
        price_list="LIST",
        currency="USD",
        sku="BOLT-M8",
        uom="EA",
        tiers=((1, micros("0.125")), (1000, micros("0.11")), (5000, micros("0.0975"))),
        valid_from=dt.date(2025, 3, 1),
        version=4700 * 10**9 + 7,
        ts_ms=int(dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC).timestamp() * 1000),
    )
    assert (nut.uom, nut.tiers) == ("BX", ((0, micros("12.345")), (10, micros("11.50"))))
    assert nut.valid_to == dt.date(2025, 7, 1)  # DTM*036 is the last valid day
    assert washer.tiers == ((0, micros("0.036")),)  # 0.04 × discount multiplier 0.9


def test_the_832_gives_items_from_po4_only_when_asked():
    items = [
        e for e in to_events(CATALOG, X12Options(with_items=True)) if isinstance(e, ev.ItemUpsert)
    ]

    assert [(i.sku, i.base_uom, i.uoms) for i in items] == [
        ("BOLT-M8", "EA", {"CA": 100}),
        ("NUT-M8", "EA", {}),
        ("WASHER-M8", "EA", {}),
    ]


def test_a_price_with_more_than_six_decimals_rejects_only_its_loop():
    body = [
        "BCT*PC*C1",
        "LIN**VP*BOLT-M8",
        "CTP**CAT*0.1234567*0*EA",
        "LIN**VP*NUT-M8",
        "CTP**CAT*1.25*0*EA",
    ]

    result = parse(edi(("832", body)))

    assert [(e.field, e.position) for e in result.rejected] == [("CTP03", 5)]  # ISA is 0
    assert [e.sku for e in result.events] == ["NUT-M8"]


@pytest.mark.parametrize(
    ("ctps", "field", "reason"),
    [
        (["CTP**CAT*1.00*0*EA", "CTP**CAT*0.90*100*BX"], "CTP05", "tiers in different units"),
        (["CTP**CAT*1.00*10*EA", "CTP**CAT*0.90*10*EA"], "CTP04", "two tiers start at 10"),
        (["CTP**CAT*9.00*0*EA****HP"], "CTP09", "per hundred/thousand"),
        (["CTP**CAT*ten*0*EA"], "CTP03", "'ten' is not a price"),
    ],
)
def test_inconsistent_ctp_tiers_are_errors_naming_the_element(ctps, field, reason):
    with pytest.raises(X12Error, match=reason) as raised:
        to_events(edi(("832", ["BCT*PC*C1", "LIN**VP*BOLT-M8", *ctps])))
    assert raised.value.field == field


# --- envelope ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("SE*30*0001", "SE*29*0001", "SE01"),
        ("SE*30*0001", "SE*30*0002", "SE02"),
        ("GE*1*4711", "GE*2*4711", "GE01"),
        ("GE*1*4711", "GE*1*4712", "GE02"),
        ("IEA*1*000004711", "IEA*2*000004711", "IEA01"),
        ("IEA*1*000004711", "IEA*1*000004712", "IEA02"),
    ],
)
def test_envelope_count_and_control_mismatches_are_errors_naming_the_element(old, new, field):
    assert old in INVENTORY
    with pytest.raises(X12Error) as raised:
        parse(INVENTORY.replace(old, new), OPTIONS)
    assert raised.value.field == field
    assert "(segment " in str(raised.value)


def test_a_missing_trailer_or_header_is_an_error_naming_the_segment():
    without_iea = INVENTORY[: INVENTORY.index("IEA*")]
    with pytest.raises(X12Error, match="IEA: interchange 000004711 has no IEA trailer"):
        parse(without_iea)
    with pytest.raises(X12Error, match="ISA: the interchange does not start with"):
        parse("GS*IB*A*B*20250303*0630*1*X*004010~")


def test_delimiters_come_from_the_isa_segment_and_line_breaks_are_tolerated():
    # 00501 style: '|' elements, '^' repetitions, ':' components, "'" + CRLF terminators
    text = (
        INVENTORY.replace("*", "|")
        .replace("|U|00401|", "|^|00501|")
        .replace("|>~", "|:~")
        .replace("~\n", "'\r\n")
    )
    [interchange] = parse_interchanges(text)

    assert (interchange.element, interchange.component, interchange.terminator) == ("|", ":", "'")
    assert interchange.repetition == "^"
    assert to_events(text, OPTIONS) == to_events(INVENTORY, OPTIONS)


def test_interchanges_back_to_back_are_read_in_turn():
    both = INVENTORY + CATALOG.replace("*", "|")

    result = parse(both, OPTIONS)

    assert result.transactions == 2 and not result.rejected
    assert len(result.events) == 8 + 3


def test_an_unsupported_transaction_set_is_rejected_and_the_others_still_read():
    document = edi(("850", ["BEG*00*SA*PO1**20250303"]), ("846", STOCK_BODY))

    result = parse(document)

    assert [e.field for e in result.rejected] == ["ST01"]
    assert [type(e).__name__ for e in result.events] == ["InventorySet"]


# --- versions and the engine -------------------------------------------------------------


def world() -> State:
    state = State()
    result = apply_batch(
        state,
        [
            ev.LocationUpsert(location="DAL", version=1),
            ev.LocationUpsert(location="ATL", version=1),
            ev.ItemUpsert(sku="BOLT-M8", uoms={"BX": 100}, version=1),
            ev.ItemUpsert(sku="NUT-M8", uoms={"BX": 100}, version=1),
            ev.ItemUpsert(sku="WASHER-M8", version=1),
            ev.AccountUpsert(account="ACME", version=1),
        ],
    )
    assert not result.rejected
    return state


def test_the_846_and_832_applied_to_a_state_show_in_a_quote():
    state = world()
    result = apply_batch(state, to_events(CATALOG) + to_events(INVENTORY, OPTIONS))
    assert not result.rejected

    bolts = quote_line(state, "BOLT-M8", 1200, account="ACME", on=dt.date(2025, 3, 3))
    nuts = quote_line(state, "NUT-M8", 2, "BX", account="ACME", on=dt.date(2025, 3, 3))
    more_bolts = quote_line(state, "BOLT-M8", 1600, account="ACME", on=dt.date(2025, 3, 3))
    fewer_bolts = quote_line(state, "BOLT-M8", 1100, account="ACME", on=dt.date(2025, 3, 3))

    assert (bolts.unit_price_micros, bolts.tier_min) == (micros("0.11"), 1000)
    assert bolts.extended_micros == micros("132.00")
    assert bolts.available_now == {"DAL": 1150, "ATL": 300}
    assert (nuts.unit_price_micros, nuts.available_now["DAL"]) == (micros("12.345"), 3500)
    assert fewer_bolts.earliest_date == dt.date(2025, 3, 3)
    # DAL has 1150 now and 600 arriving on the 10th (QTY*63 + DTM*018)
    assert (more_bolts.earliest_date, more_bolts.date_source) == (
        dt.date(2025, 3, 10),
        DateSource.INBOUND,
    )


def test_a_re_sent_interchange_replays_harmlessly_and_a_newer_one_wins():
    state = world()
    apply_batch(state, to_events(INVENTORY, OPTIONS))

    again = apply_batch(state, to_events(INVENTORY, OPTIONS))
    newer = edi(("846", [*STOCK_BODY[:3], "QTY*17*7*EA"]), control=4712)
    older = edi(("846", [*STOCK_BODY[:3], "QTY*17*99*EA"]), control=4710)
    apply_batch(state, to_events(newer) + to_events(older))

    assert again.applied == 0 and not again.rejected
    assert quote_line(state, "BOLT-M8", 1, account="ACME").available_now["DAL"] == 7


def test_datetime_versions_order_documents_by_their_creation_time():
    options = X12Options(version_from="datetime")
    early = to_events(edi(("846", STOCK_BODY), control=9, gs_time="0630"), options)
    late = to_events(edi(("846", STOCK_BODY), control=1, gs_time="0631"), options)

    assert early[0].version < late[0].version
    assert early[0].version == int(REPORTED.timestamp()) * 10**9 + 5  # the LIN's position


# --- malformed elements: always an X12Error (found by tests/fuzz) -----------------------


@pytest.mark.parametrize(
    ("segment", "field"),
    [
        ("QTY*17*1E999999999*EA", "QTY02"),  # made exact, a 10^999999999 that never returned
        ("QTY*17*1E-999999999*EA", "QTY02"),
        ("QTY*17*NaN*EA", "QTY02"),
        ("QTY*17*1_000*EA", "QTY02"),
        ("QTY*17*\u0661\u0662*EA", "QTY02"),  # Arabic-Indic digits, which Decimal takes
        ("QTY*17*" + "9" * 33 + "*EA", "QTY02"),
        ("DTM*018*\uff12\uff10\uff12\uff15\uff10\uff13\uff10\uff11", "DTM02"),  # fullwidth
    ],
    ids=["exponent", "negative exponent", "NaN", "underscore", "Arabic digits", "33 digits",
         "fullwidth date"],
)  # fmt: skip
def test_a_number_or_date_that_is_not_x12_rejects_its_loop_naming_the_element(segment, field):
    body = ["BIA*00*DD*R1*20250303*0630", "N1*WH*DALLAS DC*92*DAL", "LIN**VP*BOLT-M8",
            "QTY*17*10*EA", "DTM*018*20250310", "LIN**VP*NUT-M8", "QTY*17*5*EA"]  # fmt: skip
    body[3 if segment.startswith("QTY") else 4] = segment

    result = parse(edi(("846", body)))

    assert [e.field for e in result.rejected] == [field]
    assert [e.sku for e in result.events] == ["NUT-M8"]


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("SE*6*0001", "SE*" + "9" * 5_000 + "*0001", "SE01"),  # int() refuses 5,000 digits
        ("SE*6*0001", "SE*\u00b2*0001", "SE01"),  # superscript two: isdigit(), not int()
        ("GE*1*4800", "GE*\u00b9*4800", "GE01"),
        ("000004800", "00000480\u00b2", "ISA13"),  # in ISA13 and IEA02 alike
    ],
    ids=["5,000-digit count", "superscript count", "superscript group count",
         "superscript control number"],
)  # fmt: skip
def test_counts_and_control_numbers_are_ascii_digits_or_an_error_naming_them(old, new, field):
    document = edi(("846", STOCK_BODY))
    assert old in document

    with pytest.raises(X12Error) as raised:
        parse(document.replace(old, new))

    assert raised.value.field == field


def test_a_price_times_a_32_digit_multiplier_is_exact_then_checked_not_a_decimal_error():
    # before: Decimal.quantize past its 60-digit context raised InvalidOperation
    body = ["BCT*PC*C1", "LIN**VP*BOLT-M8", "CTP**CAT*" + "9" * 32 + "*0*EA*DIS*" + "9" * 32,
            "LIN**VP*NUT-M8", "CTP**CAT*0.0000015*0*EA*DIS*1"]  # fmt: skip

    result = parse(edi(("832", body)))

    assert [e.field for e in result.rejected] == ["tiers[0].price_micros"]  # past the limit
    [nut] = result.events
    assert nut.tiers == ((0, 2),)  # 1.5 micros, rounded half away from zero


def test_an_expiration_of_9999_12_31_is_a_price_with_no_end():
    body = ["BCT*PC*C1", "LIN**VP*BOLT-M8", "DTM*036*99991231", "CTP**CAT*1.00*0*EA"]

    [price] = to_events(edi(("832", body)))

    assert price.valid_to is None


def test_bytes_like_documents_read_as_bytes_and_other_types_are_an_x12_error():
    document = edi(("846", STOCK_BODY)).encode("latin-1")

    assert to_events(memoryview(document)) == to_events(bytearray(document)) == to_events(document)
    with pytest.raises(X12Error, match="expected bytes or text, got int"):
        parse(42)  # type: ignore[arg-type]
