"""Hypothesis strategies for hostile inputs: byte mutations, hostile values, JSON surgery.

Every strategy keeps hypothesis's choice sequence short: sizes that matter (5,000-deep
nesting, a megabyte string, 10,001 lines) come from picking a size and repeating a
drawn unit, not from drawing each element.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "HOSTILE_NUMBER_TEXT",
    "byte_mutants",
    "hostile_integers",
    "hostile_json",
    "hostile_text",
    "json_mutants",
    "mutate_bytes",
]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Sizes where limits live (5,000 lines; 64-character codes; 300-character reasons …).
SIZES = (0, 1, 2, 8, 63, 64, 65, 300, 1_000, 4_097, 5_000, 5_001, 10_001, 100_000)
#: Numbers as text that parse in some reader and mean trouble in the next one.
HOSTILE_NUMBER_TEXT = (
    "0", "-0", "-1", "1.5", "0.0000001", "1e3", "1E999999999", "1E-999999999", "-1E999999999",
    "9" * 20, "9" * 400, "9" * 5_000, "18446744073709551616", "9223372036854775808",
    "-9223372036854775809", "NaN", "sNaN", "-Infinity", "Infinity", "inf", "1_000", "0x10",
    "\u0663", "\u00b2", "\uff11\uff12", " 7 ", "+5", "1.", ".5", "1e", "--1", "",
)  # fmt: skip
_UNITS = ("A", "9", "\x00", "é", "€", "𝄞", "\u202e", "\ufeff", " ", "\n", "'", '"', "\\", "*", "~")


@st.composite
def hostile_text(draw: Any, *, max_repeat: int = 100_000) -> str:
    """Empty, huge, unicode, NUL, number-like, code-like, or just random text."""
    kind = draw(st.integers(0, 9))
    if kind < 3:
        return draw(st.sampled_from(HOSTILE_NUMBER_TEXT))
    if kind < 5:
        unit = draw(st.sampled_from(_UNITS) | st.text(min_size=1, max_size=3))
        size = draw(st.sampled_from([s for s in SIZES if s <= max_repeat]))
        return (unit * size)[:size]
    if kind < 7:
        return draw(st.sampled_from(
            ("2025-03-01", "20250301", "2025-W10-1", "2025-02-30", "9999-12-31", "0001-01-01",
             "0000-00-00", "2025-13-01", "\uff12\uff10\uff12\uff15-03-01", "2025-03-01T00:00",
             "99991231", "00000000", "2359", "2400", "235960", "USD", "usd", "XXX", "US", "EA",
             "ea", "BX", "ACME", "BOLT-M8", "DAL", "SOUTH", "LIST", "CAT", "*", "null", "true",
             "[]", "{}"))
        )  # fmt: skip
    return draw(st.text(max_size=20))


#: Where integer handling breaks: int32/int64/uint64 ends, float precision, the 10^12 base
#: quantity limit.
_EDGES = (0, 1, -1, 2**31 - 1, 2**31, 2**32, 10**12, 10**12 + 1, 2**53 + 1, 2**62,
          INT64_MAX, INT64_MIN, 2**64 - 1)  # fmt: skip


def hostile_integers(low: int = INT64_MIN, high: int = INT64_MAX) -> st.SearchStrategy[int]:
    """Integers in [low, high], mostly at the edges."""
    edges = [v for v in _EDGES if low <= v <= high]
    return st.sampled_from([low, high, *edges]) | st.integers(low, high)


#: JSON scalars that break readers: huge/negative ints, floats, strings of every sort.
_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | hostile_integers(-(2**80), 2**80)
    | st.sampled_from([0.5, -0.0, 1e300, 12.3457])
    | hostile_text(max_repeat=5_000)
)


def hostile_json() -> st.SearchStrategy[Any]:
    """A JSON value: hostile scalars in small lists and objects."""
    return st.recursive(
        _JSON_SCALARS,
        lambda inner: st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(["sku", "value", "min_qty"]),
                          inner, max_size=4),
        max_leaves=8,
    )  # fmt: skip


#: Raw JSON fragments json.dumps cannot make (it recurses on deep nesting; it writes
#: exact integers, never 1e400): spliced into the text in place of a marker.
_FRAGMENTS = (
    "[" * 5_000 + "]" * 5_000, "[" * 100_000, '{"a":' * 3_000 + "1" + "}" * 3_000,
    "1e400", "-1e400", "1" * 5_000, "1E999999999", "NaN", "Infinity", '"\\ud800"', '"\\u0000"',
)  # fmt: skip
_MARK = "\x01FRAGMENT\x01"


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a decoded JSON document (dict keys, list indices)."""
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


def _get(document: Any, path: Sequence[Any]) -> Any:
    for step in path:
        document = document[step]
    return document


@st.composite
def json_mutants(draw: Any, documents: Sequence[str]) -> str:
    """A valid JSON document with 1–3 structural changes at random places: a value
    replaced by a hostile one (or a wrong type), a key deleted or added, a value wrapped
    in deep nesting or replaced by a raw fragment (huge numbers, NaN, lone surrogates)."""
    document = json.loads(draw(st.sampled_from(documents)))
    fragment = None
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(("replace",) * 5 + ("delete", "add", "fragment")))
        if not path:  # the root itself
            if action in ("replace", "fragment"):
                document = draw(hostile_json())
            continue
        parent, key = _get(document, path[:-1]), path[-1]
        if action == "replace":
            parent[key] = draw(hostile_json())
        elif action == "delete":
            del parent[key]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(hostile_json())
        elif action == "fragment":
            fragment = draw(st.sampled_from(_FRAGMENTS))
            parent[key] = _MARK
    text = json.dumps(document)
    if fragment is not None:
        text = text.replace(json.dumps(_MARK), fragment, 1)
    return text


def mutate_bytes(draw: Any, data: bytes, others: Sequence[bytes]) -> bytes:
    """1–4 byte-level mutations of ``data``: flip, cut, insert, delete, splice another
    document's bytes in, or repeat a piece many times."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(out)))
        action = draw(st.sampled_from(("flip", "cut", "insert", "delete", "splice", "repeat")))
        if action == "flip" and at < len(out):
            out[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del out[at:]
        elif action == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del out[at : at + draw(st.integers(1, 16))]
        elif action == "splice" and others:
            other = draw(st.sampled_from(others))
            start = draw(st.integers(0, len(other)))
            out[at:at] = other[start : start + draw(st.integers(1, 64))]
        elif action == "repeat":
            piece = bytes(out[at : at + draw(st.integers(1, 8))]) or b"["
            out[at:at] = piece * draw(st.sampled_from((10, 1_000, 5_000)))
    return bytes(out)


@st.composite
def byte_mutants(draw: Any, documents: Sequence[bytes]) -> bytes:
    """A valid document with byte-level mutations (see :func:`mutate_bytes`)."""
    return mutate_bytes(draw, draw(st.sampled_from(documents)), documents)


def _recount(segments: list[list[str]]) -> None:
    """Set every SE01 to its transaction set's segment count, so a mutant whose
    segments were added or removed still passes the envelope and reaches the loops."""
    start = None
    for index, elements in enumerate(segments):
        tag = elements[0].strip("\r\n") if elements else ""
        if tag == "ST":
            start = index
        elif tag == "SE" and start is not None and len(elements) > 1:
            elements[1] = str(index - start + 1)
            start = None


@st.composite
def x12_mutants(draw: Any, documents: Sequence[str]) -> str:
    """A valid interchange with 1–4 segment-level changes: an element replaced by a
    hostile value, a segment deleted, repeated (up to thousands of times) or moved; the
    SE01 counts then fixed up (usually) so the loops are read."""
    text = draw(st.sampled_from(documents))
    element = text[3]
    component_and_terminator = text.split(element, 16)[16]
    terminator = component_and_terminator[1]
    segments = [piece.split(element) for piece in text.split(terminator)]
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(segments) - 1))
        action = draw(
            st.sampled_from(("element", "element", "element", "delete", "repeat", "move"))
        )
        if action == "element":
            elements = segments[index]
            at = draw(
                st.integers(1, len(elements) - 1)
                if len(elements) > 1 and draw(st.integers(0, 4))
                else st.integers(0, len(elements) + 2)
            )
            value = draw(hostile_text(max_repeat=5_000))
            while len(elements) <= at:
                elements.append("")
            elements[at] = value
        elif action == "delete" and len(segments) > 1:
            del segments[index]
        elif action == "repeat":
            times = draw(st.sampled_from((1, 2, 50, 5_000)))
            segments[index:index] = [list(segments[index]) for _ in range(times)]
        elif action == "move":
            segments.insert(draw(st.integers(0, len(segments))), segments.pop(index))
    if draw(st.integers(0, 3)):
        _recount(segments)
    return terminator.join(element.join(elements) for elements in segments)


@st.composite
def csv_mutants(draw: Any, text: str) -> str:
    """A valid CSV table with 1–3 cells replaced by hostile values (a comma or a line
    break in one splits it), rows deleted or repeated, or a column dropped."""
    rows = [line.split(",") for line in text.splitlines()]
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(("cell", "cell", "cell", "row", "repeat", "column")))
        row = draw(st.integers(0, len(rows) - 1))
        if action == "cell" and rows[row]:
            rows[row][draw(st.integers(0, len(rows[row]) - 1))] = draw(
                hostile_text(max_repeat=5_000)
            )
        elif action == "row" and len(rows) > 1:
            del rows[row]
        elif action == "repeat":
            rows[row:row] = [list(rows[row])] * draw(st.sampled_from((1, 100, 5_000)))
        elif action == "column" and rows[0]:
            column = draw(st.integers(0, len(rows[0]) - 1))
            for cells in rows:
                del cells[column : column + 1]
    return "\n".join(",".join(cells) for cells in rows) + "\n"
