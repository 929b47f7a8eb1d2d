"""The bulk extract reader on malformed files: an error naming the file, never pyarrow's.

Found by the fuzz suite (``tests/fuzz``, mutated CSV extracts): pyarrow's ArrowInvalid
(and a UnicodeDecodeError for a header that is not UTF-8) escaped ``read_tables``, and a
malformed ``extract.json`` gave JSONDecodeError, TypeError or OverflowError, so
``pacache build`` ended in a traceback that did not say which file was wrong.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.checksum import state_checksum as checksum
from engine.errors import InvalidInput
from loaders.extract import build_state_from
from server.cli import main

STOCK = "sku,location,on_hand\nBOLT-M8,DAL,5\n"


def _extract(root: Path, files: dict[str, bytes | str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    return root


@pytest.mark.parametrize(
    ("files", "field", "words"),
    [
        ({"stock.csv": "sku,location,on_hand\nA,DAL\n"}, "stock.csv", "Expected 3 columns"),
        ({"stock.csv": "sku,location,on_hand\nA,DAL,five\n"}, "stock.csv", "'five'"),
        ({"stock.csv": "sku,location,on_hand\nA,DAL,99999999999999999999\n"}, "stock.csv",
         "int64"),
        ({"stock.csv": b"\x80sku,location,on_hand\nA,DAL,5\n"}, "stock.csv", "utf-8"),
        ({"stock.csv": ""}, "stock.csv", "Empty CSV"),
        ({"inbound.csv": "sku,location,expected_date,qty\nA,DAL,2025-02-30,5\n"}, "inbound.csv",
         "'2025-02-30'"),
        ({"stock.parquet": b"PAR1 not really"}, "stock.parquet", "Parquet"),
        ({"stock.csv": STOCK, "extract.json": "{bad"}, "extract.json", "not JSON"),
        ({"stock.csv": STOCK, "extract.json": "[1]"}, "extract.json", "list is not an object"),
        ({"stock.csv": STOCK, "extract.json": '{"extract_version": "7"}'},
         "extract.json.extract_version", "is not int"),
        ({"stock.csv": STOCK, "extract.json": '{"extract_version": 1180591620717411303424}'},
         "extract.json.extract_version", "0..2^63-1"),
        ({"stock.csv": STOCK, "extract.json": '{"stream_ids": {"pacache:master": 5}}'},
         "extract.json.stream_ids", "entry ids"),
    ],
    ids=["short row", "text in an integer column", "past int64", "header not UTF-8",
         "empty file", "no such date", "not Parquet", "manifest not JSON",
         "manifest not an object", "version as text", "version past int64",
         "stream id not text"],
)  # fmt: skip
def test_a_malformed_extract_file_is_an_invalid_input_naming_the_file(
    tmp_path: Path, files: dict[str, bytes | str], field: str, words: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        build_state_from(_extract(tmp_path / "extract", files))
    assert raised.value.field == field
    assert words.lower() in str(raised.value).lower(), str(raised.value)


def test_a_null_extract_version_builds_as_if_it_were_not_given(tmp_path: Path) -> None:
    nulls = '{"extract_version": null, "extracted_at_ms": null}'
    with_nulls = _extract(tmp_path / "nulls", {"stock.csv": STOCK, "extract.json": nulls})
    without = _extract(tmp_path / "without", {"stock.csv": STOCK})

    assert checksum(build_state_from(with_nulls)[0]) == checksum(build_state_from(without)[0])


def test_pacache_build_names_the_bad_file_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _extract(tmp_path / "extract", {"stock.csv": "sku,location,on_hand\nA,DAL\n"})

    code = main(["build", "--from", str(root), "--snapshot", str(tmp_path / "snap"), "--quiet"])

    assert code == 1
    assert "pacache build: stock.csv: CSV parse error" in capsys.readouterr().err
