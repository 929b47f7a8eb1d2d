"""DESIGN §2 identifiers: code limits and their errors, and the code ⇄ id tables."""

from __future__ import annotations

import numpy as np
import pytest

from engine.codes import CODE_LIMITS, CodeTable, validate_code
from engine.errors import InvalidInput
from tests.builders import apply, make_item, make_location, make_state


@pytest.mark.parametrize(
    ("kind", "limit"),
    [
        ("sku", 64),
        ("location", 32),
        ("account", 64),
        ("contract", 64),
        ("price_list", 64),
        ("price_group", 64),
        ("product_group", 64),
        ("region", 64),
        ("uom", 8),
    ],
)
def test_code_of_the_maximum_length_is_accepted_and_one_more_is_rejected(kind, limit):
    # "A" * limit is the longest valid code; "A" * (limit + 1) is one character too long.
    assert validate_code(kind, "A" * limit) == "A" * limit
    with pytest.raises(InvalidInput) as error:
        validate_code(kind, "A" * (limit + 1))
    assert error.value.field == kind
    assert error.value.limit == f"1..{limit} characters"
    assert f"{kind}: length {limit + 1}" in str(error.value)


def test_code_limits_match_the_design():
    assert CODE_LIMITS["sku"] == 64
    assert CODE_LIMITS["location"] == 32
    assert CODE_LIMITS["uom"] == 8


def test_empty_code_is_rejected_naming_the_field_and_its_limit():
    with pytest.raises(InvalidInput) as error:
        validate_code("sku", "")
    assert str(error.value) == "sku: length 0 out of range (limit: 1..64 characters)"


def test_error_names_the_callers_field_when_given():
    with pytest.raises(InvalidInput) as error:
        validate_code("location", "L" * 33, "lines[2].location")
    assert error.value.field == "lines[2].location"
    assert "1..32 characters" in str(error.value)


@pytest.mark.parametrize("code", ["BOLT\x00M8", "BOLT\tM8", "BOLT-É8", "BOLT\u200bM8"])
def test_code_with_a_non_printable_or_non_ascii_character_is_rejected(code):
    with pytest.raises(InvalidInput) as error:
        validate_code("sku", code)
    assert error.value.field == "sku"
    assert "printable ASCII" in str(error.value)


@pytest.mark.parametrize("code", [" BOLT", "BOLT "])
def test_code_with_edge_blanks_is_rejected(code):
    with pytest.raises(InvalidInput, match="sku"):
        validate_code("sku", code)


def test_codes_are_case_sensitive():
    table = CodeTable("sku", ["bolt-m8", "BOLT-M8"])
    assert table.get("bolt-m8") != table.get("BOLT-M8")
    assert len(table) == 2


@pytest.mark.parametrize("uom", ["ea", "Bx", "cS"])
def test_uom_code_must_be_upper_case(uom):
    with pytest.raises(InvalidInput) as error:
        validate_code("uom", uom)
    assert error.value.field == "uom"
    assert "upper case" in str(error.value)


@pytest.mark.parametrize("currency", ["usd", "US", "USDX", "U5D"])
def test_currency_must_be_three_upper_case_letters(currency):
    with pytest.raises(InvalidInput, match="currency"):
        validate_code("currency", currency)


def test_non_string_code_is_rejected_naming_its_type():
    with pytest.raises(InvalidInput, match="sku: must be a string, got int"):
        validate_code("sku", 42)


def test_item_with_a_lower_case_alternate_uom_is_rejected_naming_uoms():
    state = make_state()
    result = apply(state, make_item(uoms={"bx": 10}))
    [(index, reason)] = result.rejected
    assert index == 0
    assert reason.startswith("uoms:")
    assert "upper case" in reason


def test_location_code_longer_than_32_is_rejected_by_delta_apply():
    state = make_state()
    result = apply(state, make_location("L" * 33), make_location("L" * 32))
    assert result.rejected == [(0, "location: length 33 out of range (limit: 1..32 characters)")]
    assert state.locations.get("L" * 32) >= 0


def test_code_table_assigns_dense_ids_in_first_seen_order_and_never_reuses_them():
    table = CodeTable("sku")
    assert table.intern("B") == 0
    assert table.intern("A") == 1
    assert table.intern("B") == 0  # already known: same id
    assert table.codes() == ["B", "A"]
    assert table.code(1) == "A"


def test_code_table_batch_lookup_gives_minus_one_for_unknown_codes():
    table = CodeTable("sku", ["A", "B"])
    assert table.lookup(["B", "Z", "A"]).tolist() == [1, -1, 0]
    assert "Z" not in table


def test_code_table_survives_its_array_form():
    table = CodeTable("location", ["DC-EAST", "DC-WEST", "X" * 32])
    array = table.to_array()
    assert array.dtype == np.dtype("S32")
    rebuilt = CodeTable.from_array("location", array)
    assert rebuilt.codes() == table.codes()
    assert rebuilt.get("X" * 32) == 2


def test_code_table_validates_a_code_when_interning_it():
    with pytest.raises(InvalidInput, match="account"):
        CodeTable("account").intern("A" * 65)


def test_codes_at_answers_blank_for_missing_ids_even_in_an_empty_table() -> None:
    from engine.codes import CodeTable

    empty = CodeTable("product_group")
    assert empty.codes_at(np.array([-1, -1], dtype=np.int64)) == ["", ""]
    empty.intern("FASTENERS")
    assert empty.codes_at(np.array([0, -1], dtype=np.int64)) == ["FASTENERS", ""]


# --- the hash index (engine.codes.CodeTable over engine/_kernels/codeindex.h) ----------------


def _large_table(count: int = 70_000) -> CodeTable:
    table = CodeTable("sku")
    for i in range(count):
        table.intern(f"SKU-{i:06d}")
    return table


def _queries(table: CodeTable) -> list:
    rng = np.random.default_rng(7)
    known = [table.code(int(i)) for i in rng.integers(0, len(table), 3000)]
    tricky = [
        "SKU-000001\x00",  # a stored code plus NUL
        "SKU-00000",  # a stored code's prefix
        "SKU-000001" + "X" * 100,  # longer than any code can be
        "",
        "NOT-A-SKU",
        "SKU-00000é",  # non-ASCII: no code is
        b"SKU-000001",  # bytes, not str
        12345,
        None,
    ]
    return known + tricky * 10


def test_a_large_table_finds_exactly_what_a_dict_of_its_codes_finds():
    table = _large_table()
    oracle = {code: i for i, code in enumerate(table.codes())}
    queries = _queries(table)
    expected = [oracle.get(q, -1) if isinstance(q, str) else -1 for q in queries]
    assert table.lookup(queries).tolist() == expected
    assert [table.get(q) for q in queries] == expected
    assert table.lookup(tuple(queries)).tolist() == expected  # any sequence, not only lists


def test_codes_of_every_length_up_to_the_limit_are_found_and_told_apart():
    table = CodeTable("sku")
    codes = ["A" * k for k in range(1, 65)] + ["B" * 64, "A" * 63 + "B", "\u0041"]
    ids = [table.intern(code) for code in codes]
    assert ids[:66] == list(range(66))
    assert ids[66] == 0  # "\u0041" is "A": the same code
    assert table.lookup(codes[:66]).tolist() == list(range(66))
    assert table.get("A" * 65) == -1
    assert table.codes_at(np.arange(66, dtype=np.int64)) == codes[:66]


def test_growing_keeps_every_id_and_replaces_the_arrays():
    table = CodeTable("location")
    arena, slots = table.arena, table.slots
    for i in range(1000):
        assert table.intern(f"L{i}") == i
    assert table.arena is not arena and table.slots is not slots  # new arrays: new files
    assert table.lookup([f"L{i}" for i in range(1000)]).tolist() == list(range(1000))
    assert 2 * len(table) <= table.slots.size  # load stays at most one half


def test_a_view_with_fewer_codes_never_sees_the_codes_added_after_it():
    """A reader holding an older version (its ``n``) while the writer adds codes to the same
    arrays (the other instance, in the shared state) never finds the new codes."""
    table = _large_table(1000)
    old = CodeTable.mapped("sku", table.arena, table.slots, len(table))
    table.intern("SKU-NEW")  # room in the arena: written in place, into the same arrays
    assert table.arena is old.arena
    assert old.get("SKU-NEW") == -1 and old.lookup(["SKU-NEW"]).tolist() == [-1]
    assert old.codes_at(np.array([1000], dtype=np.int64)) == [""]
    assert table.get("SKU-NEW") == 1000


def test_a_read_only_table_refuses_to_change():
    table = _large_table(100)
    arena, slots = table.arena.copy(), table.slots.copy()
    arena.flags.writeable = slots.flags.writeable = False
    mapped = CodeTable.mapped("sku", arena, slots, 100)
    assert mapped.get("SKU-000042") == 42
    with pytest.raises(ValueError):
        mapped.intern("SKU-NEW")


def test_from_array_refuses_codes_wider_than_the_kind_allows():
    array = np.array([b"OK", b"X" * 40], dtype="S40")
    with pytest.raises(InvalidInput, match="location"):
        CodeTable.from_array("location", array)
    narrow = CodeTable.from_array("sku", np.array([b"A", b"BC"], dtype="S2"))
    assert narrow.codes() == ["A", "BC"] and narrow.get("BC") == 1
