"""DESIGN §2 identifiers: code limits and their errors, and the code ⇄ id tables."""

from __future__ import annotations

import numpy as np
import pytest

from engine import codes as codes_module
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


# --- bulk lookups in large tables (engine.codes._BulkIndex) --------------------------------


def _large_table(count: int = codes_module.BULK_MIN_TABLE + 100) -> CodeTable:
    table = CodeTable("sku")
    table.extend_trusted(f"SKU-{i:06d}" for i in range(count))
    return table


def _queries(table: CodeTable) -> list:
    rng = np.random.default_rng(7)
    known = [table.code(int(i)) for i in rng.integers(0, len(table), 3000)]
    tricky = [
        "SKU-000001\x00",  # a stored code plus NUL: numpy's bytes would hide the NUL
        "SKU-00000",  # a stored code's prefix
        "SKU-000001" + "X" * 100,  # longer than the index's width (numpy would cut it)
        "",
        "NOT-A-SKU",
    ]
    return known + tricky * 10


def test_a_large_batch_in_a_large_table_finds_exactly_what_the_dict_finds():
    table = _large_table()
    queries = _queries(table)
    expected = [table.get(q) for q in queries]
    assert table.lookup(queries).tolist() == expected
    assert table._bulk is not None  # the batch did go through the numpy index


def test_codes_added_after_the_bulk_index_was_built_are_found_even_longer_ones():
    table = _large_table()
    table.lookup(_queries(table))  # builds the index at the current width
    table.extend_trusted(["SKU-NEW-1", "SKU-" + "L" * 40])  # the second one forces a rebuild
    queries = ["SKU-NEW-1", "SKU-" + "L" * 40, *_queries(table)]
    found = table.lookup(queries)
    assert found[:2].tolist() == [len(table) - 2, len(table) - 1]
    assert found.tolist() == [table.get(q) for q in queries]


def test_non_ascii_or_non_string_queries_fall_back_to_the_dict():
    table = _large_table()
    queries = _queries(table)
    for odd in ("SKU-00000é", 12345):
        mixed = [*queries, odd]
        assert table.lookup(mixed).tolist() == [*(table.get(q) for q in queries), -1]


def test_hash_collisions_are_told_apart_by_the_stored_bytes(monkeypatch):
    # a hash with 8 values: every probe meets other codes' slots and must compare bytes
    monkeypatch.setattr(
        codes_module, "_hash", lambda words: (words[:, 1] & np.uint64(7)) | np.uint64(1)
    )
    monkeypatch.setattr(codes_module, "BULK_MIN_TABLE", 16)
    monkeypatch.setattr(codes_module, "BULK_MIN_QUERY", 16)
    table = _large_table(2_000)
    queries = _queries(table)
    assert table.lookup(queries).tolist() == [table.get(q) for q in queries]


# --- small batches in large tables: the recently found codes (engine.codes.RECENT_CODES) ---


def test_small_batches_in_a_large_table_answer_like_the_dict_while_codes_are_remembered():
    table = _large_table()
    queries = _queries(table)
    expected = [table.get(q) for q in queries]
    for start in range(0, len(queries), 50):  # cart-sized batches, twice: cold, then recent
        batch = queries[start : start + 50]
        assert table.lookup(batch).tolist() == expected[start : start + 50]
        assert table.lookup(batch).tolist() == expected[start : start + 50]
    assert all(code in table._recent for code in queries[:3000])  # known codes remembered
    assert "NOT-A-SKU" not in table._recent and "" not in table._recent  # unknown ones not


def test_remembered_codes_are_dropped_when_full_and_answers_stay_right(monkeypatch):
    monkeypatch.setattr(codes_module, "RECENT_CODES", 40)
    table = _large_table()
    queries = _queries(table)
    for start in range(0, len(queries), 30):
        batch = queries[start : start + 30]
        assert table.lookup(batch).tolist() == [table.get(q) for q in batch]
        assert len(table._recent) <= 40
    odd = ["SKU-000001", 12345, None, "SKU-000001"]  # non-str codes: -1, never remembered
    assert table.lookup(odd).tolist() == [1, -1, -1, 1]


def test_loaders_look_codes_up_without_touching_the_recent_codes():
    table = _large_table()
    queries = _queries(table)
    assert table.lookup(queries, remember=False).tolist() == [table.get(q) for q in queries]
    assert table.lookup(queries[:50], remember=False).tolist() == [
        table.get(q) for q in queries[:50]
    ]
    assert table._recent == {}  # a change stream's codes never push a request's codes out


def test_forgetting_the_recent_codes_empties_them_and_answers_stay_right():
    table = _large_table()
    batch = _queries(table)[:50]
    expected = [table.get(q) for q in batch]
    assert table.lookup(batch).tolist() == expected
    assert table._recent  # remembered
    table.forget_recent()
    assert table._recent == {}
    assert table.lookup(batch).tolist() == expected  # found again the slow way
