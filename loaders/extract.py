"""Bulk extract loader: Parquet/CSV tables of an ERP export → engine state → snapshot.

An extract is a directory with one file per table of ``engine.bulk.EXTRACT_SCHEMA``:
``<table>.parquet`` (or a directory of Parquet parts ``<table>/``) or ``<table>.csv``
(``.csv.gz`` too), with the columns the schema names (others are ignored). An optional
``extract.json`` gives ``extract_version`` (the source change number the extract is
consistent with; the version of every row without its own), ``extracted_at_ms`` and
``stream_ids`` (where the writer replays the streams from after loading the snapshot).

Column conversion, with pyarrow, to what ``engine.bulk.build_state`` takes:

- code columns are dictionary-encoded (Parquet dictionary pages are read as they are), so
  the engine validates and interns each distinct code once: 10M contract lines carry a
  few thousand contract codes;
- integers are int64 with nulls as ``engine.bulk.NULL_INT``; a floating-point column is
  refused, since money is integer micros;
- dates are days since 1970-01-01 (Parquet ``date32``; ISO dates in CSV);
- ``price_groups`` is a list column in Parquet, ``|``-separated in CSV.

:func:`build_snapshot` reads, builds and writes a snapshot (``engine.snapshot.write``)
with rich progress bars, and reports rejected rows by table and reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from engine import snapshot
from engine.bulk import EXTRACT_SCHEMA, NULL_INT, STAGES, Coded, build_state
from engine.errors import InvalidInput, shown
from engine.state import State

__all__ = [
    "BuildReport",
    "Rejects",
    "build_snapshot",
    "build_state_from",
    "find_tables",
    "read_manifest",
    "read_tables",
    "summary",
]

_CSV_TYPES = {"code": pa.string(), "str": pa.string(), "int": pa.int64(), "date": pa.date32(),
              "bool": pa.bool_(), "codes": pa.string()}  # fmt: skip
_SAMPLE_ROWS = 5


def find_tables(extract_dir: str | Path) -> dict[str, Path]:
    """The file (or Parquet directory) of each table present in the extract."""
    root = Path(extract_dir)
    if not root.is_dir():
        raise InvalidInput("extract", f"{root} is not a directory")
    found: dict[str, Path] = {}
    for name in EXTRACT_SCHEMA:
        for candidate in (f"{name}.parquet", name, f"{name}.csv", f"{name}.csv.gz"):
            path = root / candidate
            if path.is_file() or (candidate == name and path.is_dir()):
                found[name] = path
                break
    return found


_INT64_MAX = 2**63 - 1
#: extract.json's keys and the type each must have (integers: 0..2^63-1)
_MANIFEST_TYPES: dict[str, type] = {
    "extract_version": int,
    "extracted_at_ms": int,
    "stream_ids": dict,
}


def read_manifest(extract_dir: str | Path) -> dict[str, Any]:
    """``extract.json`` of the extract, or {} when there is none. :class:`InvalidInput`
    naming ``extract.json`` when it is not a JSON object, or a key has the wrong type or
    is out of range."""
    path = Path(extract_dir) / "extract.json"
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as error:  # bad JSON, bad UTF-8, nested too deeply
        raise InvalidInput("extract.json", f"not JSON: {shown(str(error), quote=False)}") from None
    if not isinstance(manifest, dict):
        raise InvalidInput("extract.json", f"{type(manifest).__name__} is not an object")
    for key, kind in _MANIFEST_TYPES.items():
        value = manifest.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
            raise InvalidInput(f"extract.json.{key}", f"{shown(value)} is not {kind.__name__}")
        if isinstance(value, int) and not 0 <= value <= _INT64_MAX:
            raise InvalidInput(f"extract.json.{key}", f"{value} out of range", "0..2^63-1")
    ids = manifest.get("stream_ids") or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in ids.items()):
        raise InvalidInput("extract.json.stream_ids", "must map stream names to entry ids (text)")
    return manifest


def _kind(name: str, column: str) -> str:
    return EXTRACT_SCHEMA[name][column].rstrip("?")


def _read_table(name: str, path: Path) -> pa.Table:
    schema = EXTRACT_SCHEMA[name]
    if path.suffix == ".parquet" or path.is_dir():
        present = [c for c in pq.read_schema(_first_part(path)).names if c in schema]
        codes = [c for c in present if _kind(name, c) in ("code", "str")]
        return pq.read_table(path, columns=present, read_dictionary=codes)
    types = {c: _CSV_TYPES[k.rstrip("?")] for c, k in schema.items()}
    options = pcsv.ConvertOptions(column_types=types, strings_can_be_null=True)
    table = pcsv.read_csv(path, convert_options=options)
    return table.select([c for c in table.column_names if c in schema])


def _first_part(path: Path) -> Path:
    if path.is_file():
        return path
    parts = sorted(path.rglob("*.parquet"))
    if not parts:
        raise InvalidInput(path.name, f"no Parquet files under {path}")
    return parts[0]


def _coded(column: pa.ChunkedArray) -> Coded:
    """A dictionary-encoded code column with one dictionary for all chunks.

    Parquet gives each batch the dictionary of its row group (the same object for every
    batch of a group). Equal dictionaries (a writer that writes one dictionary for the
    whole file) need no remapping; otherwise each distinct one is mapped into the merged
    dictionary once — ``unify_dictionaries`` would hash every batch's copy again.
    """
    if not pa.types.is_dictionary(column.type):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            column = column.cast(pa.string())
        column = pc.dictionary_encode(column)
    elif not pa.types.is_string(column.type.value_type):
        column = column.cast(pa.dictionary(pa.int32(), pa.string()))
    chunks = [chunk for chunk in column.chunks if len(chunk)]
    if not chunks:
        return Coded(np.zeros(0, dtype=np.int32), [])
    distinct: dict[tuple[int, ...], pa.Array] = {}
    for chunk in chunks:
        distinct.setdefault(_identity(chunk.dictionary), chunk.dictionary)
    first = chunks[0].dictionary
    if all(values.equals(first) for values in distinct.values()):
        merged = first  # one dictionary written per row group: the usual case
        mapping: dict[tuple[int, ...], Any] = dict.fromkeys(distinct)
    else:
        merged = pc.unique(pa.concat_arrays(list(distinct.values())))
        mapping = {
            key: pc.index_in(values, value_set=merged).to_numpy(zero_copy_only=False)
            for key, values in distinct.items()
        }
    parts = []
    for chunk in chunks:
        indices = chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        remap = mapping[_identity(chunk.dictionary)]
        if remap is not None:
            indices = np.where(indices >= 0, remap[np.maximum(indices, 0)], -1)
        parts.append(indices)
    return Coded(np.concatenate(parts), merged.to_pylist())


def _identity(values: pa.Array) -> tuple[int, ...]:
    """Same buffers, offset and length: the same dictionary object."""
    addresses = tuple(b.address if b is not None else 0 for b in values.buffers())
    return (*addresses, values.offset, len(values))


def _ints(name: str, column_name: str, column: pa.ChunkedArray, date: bool) -> npt.NDArray[Any]:
    kind = column.type
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        raise InvalidInput(f"{name}.{column_name}", f"{kind} values", "integers (money: micros)")
    if date and (pa.types.is_date(kind) or pa.types.is_timestamp(kind)):
        column = column.cast(pa.date32()).cast(pa.int32())
    elif pa.types.is_string(kind) or pa.types.is_dictionary(kind):
        raise InvalidInput(f"{name}.{column_name}", f"{kind} values", "integers")
    column = column.cast(pa.int64()).fill_null(NULL_INT)
    return np.asarray(column.to_numpy(), dtype=np.int64)


def _columns(name: str, table: pa.Table) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column_name in table.column_names:
        column = table[column_name]
        kind = _kind(name, column_name)
        if kind in ("code", "str"):
            out[column_name] = _coded(column)
        elif kind in ("int", "date"):
            out[column_name] = _ints(name, column_name, column, kind == "date")
        else:  # bool and lists: small master tables only
            out[column_name] = column.to_pylist()
    return out


def read_tables(
    extract_dir: str | Path, on_table: Callable[[str, int], None] | None = None
) -> dict[str, dict[str, Any]]:
    """Every table of the extract as columns for ``engine.bulk.build_state``.

    A file that cannot be read as its table (a CSV row with too few fields, text in an
    integer column, invalid UTF-8, a file that is not Parquet) is :class:`InvalidInput`
    naming the file, with pyarrow's reason.

    ``on_table(name, rows)`` is called after each table is read.
    """
    tables: dict[str, dict[str, Any]] = {}
    for name, path in find_tables(extract_dir).items():
        try:
            table = _read_table(name, path)
            tables[name] = _columns(name, table)
        # what the file holds: bad CSV, not Parquet, a header that is not UTF-8 …
        except (pa.ArrowException, UnicodeDecodeError) as error:
            raise InvalidInput(path.name, shown(str(error), 300, quote=False)) from None
        del table
        if on_table is not None:
            on_table(name, len(next(iter(tables[name].values()), [])))
    return tables


@dataclass
class Rejects:
    """Rejected rows by (table, reason): a count and the first few row numbers."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    samples: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def __call__(self, table: str, rows: npt.NDArray[np.int64], reason: str) -> None:
        key = (table, reason)
        self.counts[key] = self.counts.get(key, 0) + int(rows.size)
        sample = self.samples.setdefault(key, [])
        sample.extend(rows[: _SAMPLE_ROWS - len(sample)].tolist())

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class BuildReport:
    """What a build did: where the snapshot is, sizes, rejects and time per phase."""

    snapshot: Path
    state: State
    rows: dict[str, int]
    rejects: Rejects
    seconds: dict[str, float]


def _or(value: Any, default: int) -> int:
    return default if value is None else int(value)


def build_state_from(
    extract_dir: str | Path,
    *,
    version: int | None = None,
    rejects: Rejects | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    on_table: Callable[[str, int], None] | None = None,
) -> tuple[State, dict[str, int], dict[str, float]]:
    """Read the extract and build its state; returns (state, rows per table, seconds)."""
    manifest = read_manifest(extract_dir)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    tables = read_tables(extract_dir, on_table)
    seconds["read"] = time.perf_counter() - started
    rows = {name: len(next(iter(columns.values()), [])) for name, columns in tables.items()}
    started = time.perf_counter()
    state = build_state(
        tables,
        # a key given as null is a key not given (read_manifest checked the types)
        version=version if version is not None else _or(manifest.get("extract_version"), 1),
        ts_ms=_or(manifest.get("extracted_at_ms"), 0),
        stream_ids=manifest.get("stream_ids") or None,
        progress=progress,
        on_reject=rejects if rejects is not None else Rejects(),
    )
    seconds["build"] = time.perf_counter() - started
    return state, rows, seconds


def build_snapshot(
    extract_dir: str | Path,
    snapshot_root: str | Path,
    progress: bool = True,
    *,
    version: int | None = None,
) -> BuildReport:
    """Build a snapshot under ``snapshot_root`` from the extract in ``extract_dir``.

    With ``progress``, rich progress bars show the read, each build stage and the write.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    rejects = Rejects()
    bars = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not progress,
    )
    with bars:
        files = find_tables(extract_dir)
        reading = bars.add_task("read extract", total=len(files))
        stages = {name: bars.add_task(name, total=None, start=False) for name in STAGES}

        def on_table(name: str, rows: int) -> None:
            bars.update(reading, advance=1, description=f"read {name}")

        def on_stage(stage: str, done: int, total: int) -> None:
            task = stages[stage]
            if done == 0:
                bars.start_task(task)
            bars.update(task, completed=done, total=max(total, 1) if done or total else 1)
            if done == total:
                bars.update(task, completed=max(total, 1))

        state, rows, seconds = build_state_from(
            extract_dir, version=version, rejects=rejects, progress=on_stage, on_table=on_table
        )
        bars.update(reading, description="read extract")
        writing = bars.add_task("write snapshot", total=None)
        started = time.perf_counter()
        path = snapshot.write(state, snapshot_root)
        seconds["write"] = time.perf_counter() - started
        bars.update(writing, total=1, completed=1)
    return BuildReport(path, state, rows, rejects, seconds)


def summary(report: BuildReport) -> Mapping[str, Any]:
    """The report as plain data (for logs and ``--json``)."""
    state = report.state
    return {
        "snapshot": str(report.snapshot),
        "rows": report.rows,
        "state": {
            "skus": state.n_skus,
            "locations": state.n_locations,
            "accounts": len(state.accounts),
            "contracts": len(state.contracts),
            "price_entries": state.prices.n,
            "contract_lines": state.lines.n,
            "receipts": int(state.inbound_keys.size),
        },
        "rejected": {
            f"{table}: {reason}": {"rows": count, "first": report.rejects.samples[(table, reason)]}
            for (table, reason), count in report.rejects.counts.items()
        },
        "seconds": {k: round(v, 3) for k, v in report.seconds.items()},
    }
