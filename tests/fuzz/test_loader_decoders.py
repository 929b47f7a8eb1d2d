"""Fuzz: every loader decoder answers any input with its result or its own error.

Targets: the stream entry decoder (``loaders.events.decode`` / ``decode_one_by_one``),
the Debezium CDC decoder (``change_events``, ``source_version``), the X12 846/832 reader
(``parse``, ``to_events``), the JSON Lines reader of ``pacache publish`` (``publish_file``
through a fake Redis) and the bulk extract reader (``build_state_from`` over CSV files).
Inputs are random bytes and mutations of valid documents (``tests/fuzz/corpus.py``): byte
flips, cuts and splices, JSON values replaced by hostile ones (huge numbers, wrong types,
deep nesting, missing keys), X12 elements replaced and segments deleted or repeated, CSV
cells replaced and rows repeated.

Oracle: the decoder returns, or raises the error its docstring promises (``DecodeError``,
``ChangeEventError``, ``X12Error``, ``PublishError``, ``InvalidInput`` for an extract),
never any other exception, and it finishes (:func:`tests.fuzz.budget.watchdog`).
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.errors import InvalidInput
from loaders.debezium import ChangeEventError, change_events, source_version
from loaders.events import REASON_MAX, DecodeError, decode, decode_one_by_one
from loaders.extract import build_state_from
from loaders.producer import Producer, PublishError, publish_file
from loaders.x12 import X12Error, parse, to_events
from tests.fuzz.budget import fuzz, record, watchdog
from tests.fuzz.corpus import (
    CSV_TABLES,
    DEBEZIUM,
    EVENT_ENTRIES,
    JSON_LINES,
    MAPPINGS,
    X12_DOCUMENTS,
    X12_OPTIONS,
)
from tests.fuzz.mutations import (
    byte_mutants,
    csv_mutants,
    hostile_json,
    json_mutants,
    x12_mutants,
)

#: A decoder call's bound; see :func:`tests.fuzz.budget.watchdog` for why it is not a
#: timing assertion.
HANG_S = 10.0


def _outcome(target: str, call: Callable[[], Any], own_error: type[Exception]) -> Any:
    """Run ``call``; record and return its result, or record its own error. Any other
    exception (or a hang) propagates and fails the test with the input shown."""
    try:
        with watchdog(HANG_S):
            result = call()
    except own_error as error:
        record(target, type(error).__name__)
        return error
    record(target, "returned")
    return result


# --- stream entries ------------------------------------------------------------------------

entries = st.one_of(
    byte_mutants(EVENT_ENTRIES),
    st.binary(max_size=256),
    json_mutants([e.decode() for e in EVENT_ENTRIES if e[:1] in (b"{", b"[")]).map(str.encode),
    st.sampled_from(EVENT_ENTRIES),
)


@fuzz(0.08)
@given(entries)
def test_stream_entry_decoders_answer_events_or_a_short_decode_error(payload: bytes) -> None:
    outcome = _outcome("loaders.events.decode", lambda: decode(payload), DecodeError)
    if isinstance(outcome, DecodeError):
        assert 0 < len(str(outcome)) <= REASON_MAX
    with watchdog(HANG_S):  # the fallback for a batch with bad members: never raises
        _, bad = decode_one_by_one(payload)
    assert all(0 < len(reason) <= REASON_MAX for _, reason in bad)


# --- Debezium ------------------------------------------------------------------------------

_DEBEZIUM_TEXT = [text for text, _, _ in DEBEZIUM]
_TABLES = [None, "stock", "prices", "items", "contracts", "contract_lines", "accounts",
           "locations", "product_groups", "ITEM_MASTER"]  # fmt: skip


@st.composite
def debezium_inputs(draw: Any) -> tuple[str, str, str | None, str]:
    """(text, mapping name, table argument, form): mostly a mutant of a valid change event
    read with its own mapping and table (so it gets past the envelope), sometimes with
    another mapping, byte-level mutants, or random bytes."""
    text, mapping, table = draw(st.sampled_from(DEBEZIUM))
    kind = draw(st.integers(0, 9))
    if kind < 6:
        text = draw(json_mutants([text]))
    elif kind < 8:
        text = draw(byte_mutants([text.encode()])).decode("latin-1")
    else:
        text = draw(st.binary(max_size=128)).decode("latin-1")
    if draw(st.integers(0, 9)) == 0:
        mapping, table = draw(st.sampled_from(sorted(MAPPINGS))), draw(st.sampled_from(_TABLES))
    return text, mapping, table, draw(st.sampled_from(["bytes", "text", "dict"]))


@fuzz(0.12)
@given(debezium_inputs())
def test_debezium_decoder_answers_events_or_a_change_event_error(case: Any) -> None:
    text, mapping, table, form = case
    message: Any = text.encode("utf-8", "surrogatepass") if form == "bytes" else text
    if form == "dict":  # a consumer that decoded the JSON itself hands over a dict
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            message = text
    _outcome(
        "loaders.debezium.change_events",
        lambda: change_events(message, table, tables=MAPPINGS[mapping]),
        ChangeEventError,
    )


_SOURCES = [json.dumps(json.loads(t).get("payload", json.loads(t)).get("source") or {})
            for t in _DEBEZIUM_TEXT if json.loads(t).get("payload", json.loads(t))]  # fmt: skip


@fuzz(0.03)
@given(st.one_of(json_mutants(_SOURCES), hostile_json()))
def test_debezium_source_version_answers_a_version_or_a_change_event_error(source: Any) -> None:
    if isinstance(source, str):
        with contextlib.suppress(ValueError, RecursionError):  # else: the text is the LSN
            source = json.loads(source)
    if not isinstance(source, dict):
        source = {"connector": "postgresql", "lsn": source}
    _outcome("loaders.debezium.source_version", lambda: source_version(source), ChangeEventError)


# --- X12 -----------------------------------------------------------------------------------


@st.composite
def x12_documents(draw: Any) -> str | bytes:
    """Mostly segment-level mutants (they get past the envelope), then byte-level ones,
    then random bytes."""
    kind = draw(st.integers(0, 9))
    if kind < 7:
        return draw(x12_mutants(X12_DOCUMENTS))
    if kind < 9:
        return draw(byte_mutants([d.encode("latin-1") for d in X12_DOCUMENTS]))
    return draw(st.binary(max_size=256))


x12_inputs = st.tuples(x12_documents(), st.integers(0, len(X12_OPTIONS) - 1), st.booleans())


@fuzz(0.12)
@given(x12_inputs)
def test_x12_reader_answers_events_or_an_x12_error(case: Any) -> None:
    document, option, strict = case
    options = X12_OPTIONS[option]
    if strict:
        _outcome("loaders.x12.to_events", lambda: to_events(document, options), X12Error)
    else:
        result = _outcome("loaders.x12.parse", lambda: parse(document, options), X12Error)
        if not isinstance(result, X12Error):
            assert all(isinstance(error, X12Error) for error in result.rejected)


# --- pacache publish (JSON Lines) ----------------------------------------------------------


class _Pipeline:
    """What Producer uses of a redis-py pipeline: xadd, then execute."""

    def __init__(self) -> None:
        self.added = 0

    def xadd(self, stream: str, fields: dict[str, bytes], **trim: Any) -> None:
        self.added += 1

    def execute(self) -> list[bytes]:
        return [f"{i + 1}-0".encode() for i in range(self.added)]


class _FakeRedis:
    def pipeline(self, transaction: bool = True) -> _Pipeline:
        return _Pipeline()


json_lines = st.lists(
    st.one_of(
        st.sampled_from(JSON_LINES),
        byte_mutants(JSON_LINES),
        json_mutants([line.decode() for line in JSON_LINES]).map(str.encode),
        st.binary(max_size=64),
    ),
    min_size=1,
    max_size=4,
)


@fuzz(0.03)
@given(json_lines, st.sampled_from([0, 1, 4]))
def test_publish_reads_json_lines_or_fails_with_a_publish_error(lines: Any, shards: int) -> None:
    source = io.BytesIO(b"\n".join(line.replace(b"\n", b" ") for line in lines))
    producer = Producer(_FakeRedis(), inventory_shards=shards, batch_size=2)
    _outcome("loaders.producer.publish_file", lambda: publish_file(source, producer), PublishError)


# --- bulk extract (CSV) --------------------------------------------------------------------


@st.composite
def extracts(draw: Any) -> dict[str, bytes]:
    """The valid CSV extract with one file mutated (cells, rows, bytes) or replaced by
    random bytes."""
    files = {name: text.encode() for name, text in CSV_TABLES.items()}
    name = draw(st.sampled_from(sorted(files)))
    kind = draw(st.integers(0, 9))
    if kind < 5 and name.endswith(".csv"):
        files[name] = draw(csv_mutants(CSV_TABLES[name])).encode("utf-8", "surrogatepass")
    elif kind < 6:
        files[name] = draw(json_mutants([CSV_TABLES["extract.json"]])).encode(
            "utf-8", "surrogatepass"
        )
        name = "extract.json"
    elif kind < 9:
        files[name] = draw(byte_mutants([files[name]]))
    else:
        files[name] = draw(st.binary(max_size=256))
    return files


@fuzz(0.03)
@given(extracts())
def test_extract_reader_builds_a_state_or_fails_naming_the_file(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory(prefix="pacache-fuzz-extract-") as directory:
        root = Path(directory)
        for name, data in files.items():
            (root / name).write_bytes(data)
        _outcome("loaders.extract.build_state_from", lambda: build_state_from(root), InvalidInput)
