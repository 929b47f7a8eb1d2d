"""Snapshots: the whole state as a directory of arrays plus a manifest (DESIGN §7).

Layout of one snapshot ``<root>/v<state version>/``::

    manifest.json   format version, counts, CRC-32 of every file, last applied stream ids
    meta.json       the small Python-side tables (regions, contract assignments, holds)
    <name>.npy      one array per column, in numpy's .npy format

Writing goes to ``<root>/.tmp-…``; every file and the directory are fsynced, then the
directory is renamed into place and the root fsynced, so a crash leaves either no snapshot
or a whole one — never half of one that loads. Several processes may write under one root
(a checkpoint, an Admin snapshot, a restarted writer): a ``.tmp-`` directory is swept only
once the process named in it is gone, and a snapshot being removed is first renamed to a
``.tmp-`` name, so a removal cut short never leaves a ``v…`` directory that is missing
files but still has its manifest. :func:`load` memory-maps the arrays
(copy-on-write by default, so the writer may mutate its state without touching the file)
and is therefore fast whatever the state's size; checksums are verified on request
(``verify=True``), since reading every byte is what the mapping avoids.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.codes import CodeTable
from engine.errors import SnapshotError
from engine.state import Hold, Inventory, State

__all__ = ["FORMAT_VERSION", "latest", "load", "write", "written_at"]

# 2: adjust log live flag; 3: SKU-major price keys, per-SKU offsets; 4: holds belong to an
# account (meta "holds" entries carry "account"; the state keys them by (account, key))
FORMAT_VERSION = 4
_CODE_TABLES = (
    "skus", "locations", "regions", "accounts", "contracts", "price_lists",
    "price_groups", "product_groups", "uoms", "currencies",
)  # fmt: skip
_COLUMNS = (
    "items", "groups", "location_rows", "account_rows", "contract_rows", "prices",
    "lines", "adjust_log",
)  # fmt: skip


def _arrays(state: State) -> dict[str, np.ndarray[Any, Any]]:
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for name in _CODE_TABLES:
        arrays[f"codes.{name}"] = getattr(state, name).to_array()
    for name in _COLUMNS:
        arrays.update(getattr(state, name).arrays(name))
    for name in ("price_index", "line_index"):
        index = getattr(state, name)
        arrays[f"{name}.keys"] = index.keys
        arrays[f"{name}.rows"] = index.rows
        arrays[f"{name}.ptr"] = index.ptr
    n_sku, n_loc = state.n_skus, state.n_locations
    for field in Inventory.FIELDS:
        arrays[f"inventory.{field}"] = getattr(state.inventory, field)[:n_sku, :n_loc]
    arrays["inbound.keys"] = state.inbound_keys
    arrays["inbound.qty"] = state.inbound_qty
    cells = np.array(list(state.inbound_versions), dtype=np.int64).reshape(-1, 2)
    arrays["inbound_versions.sku"] = cells[:, 0].copy()
    arrays["inbound_versions.location"] = cells[:, 1].copy()
    arrays["inbound_versions.version"] = np.fromiter(
        state.inbound_versions.values(), dtype=np.int64, count=len(state.inbound_versions)
    )
    return arrays


def _meta(state: State) -> dict[str, Any]:
    return {
        "region_locations": {str(k): v.tolist() for k, v in state.region_locations.items()},
        "region_versions": {str(k): v for k, v in state.region_versions.items()},
        "contract_accounts": {str(k): list(v) for k, v in state.contract_accounts.items()},
        "contract_price_groups": {str(k): list(v) for k, v in state.contract_price_groups.items()},
        "adjust_ids": list(state.adjust_ids),
        "holds": [h.to_plain() for h in state.holds.values()],
    }


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _crc(path: Path) -> int:
    crc = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return crc


def write(state: State, root: str | os.PathLike[str], keep: int = 2) -> Path:
    """Write a snapshot of ``state`` under ``root``; returns its directory. O(state size).

    Older snapshots beyond the newest ``keep`` are removed after the new one is in place.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"v{state.version:012d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}-{time.monotonic_ns()}"
    tmp.mkdir()
    files: dict[str, int] = {}
    shapes: dict[str, list[int]] = {}
    for name, array in _arrays(state).items():
        path = tmp / f"{name}.npy"
        with path.open("wb") as handle:
            np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
        files[path.name] = _crc(path)
        shapes[name] = list(array.shape)
    meta_path = tmp / "meta.json"
    with meta_path.open("w") as handle:
        json.dump(_meta(state), handle)
        handle.flush()
        os.fsync(handle.fileno())
    files["meta.json"] = _crc(meta_path)
    manifest = {
        "format_version": FORMAT_VERSION,
        "state_version": state.version,
        "pricing_epoch": state.pricing_epoch,
        "stream_ids": state.stream_ids,
        "newest_ts_ms": state.newest_ts_ms,
        "clock_ms": state.clock_ms,
        "wal_lsn": state.wal_lsn,
        "written_at_ms": int(time.time() * 1000),
        "counts": {**state.counts(), "holds": len(state.holds)},
        "rows": {name: getattr(state, name).n for name in _COLUMNS},
        "shapes": shapes,
        "checksums": files,
    }
    with (tmp / "manifest.json").open("w") as handle:
        json.dump(manifest, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    _fsync_dir(tmp)
    replaced = _set_aside(final) if final.exists() else None  # same version written twice
    os.rename(tmp, final)
    _fsync_dir(root)
    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)
    for old in sorted(root.glob("v*"))[:-keep]:
        aside = _set_aside(old)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    for stale in root.glob(".tmp-*"):  # leftovers of a writer that died
        if stale != tmp and not _writer_alive(stale):
            shutil.rmtree(stale, ignore_errors=True)
    return final


def _set_aside(path: Path) -> Path | None:
    """Rename a snapshot directory to a ``.tmp-`` name (atomic: from here on it never
    loads) before removing it; None if it is gone already (another writer took it)."""
    aside = path.with_name(f".tmp-removing-{path.name}-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return None
    return aside


def _writer_alive(tmp: Path) -> bool:
    """Whether the process that named ``.tmp-<…>-<pid>-<ns>`` still runs (True when the
    name says no pid: better a leftover than another writer's half-written snapshot)."""
    parts = tmp.name.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return True
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def latest(root: str | os.PathLike[str]) -> Path | None:
    """The newest complete snapshot under ``root`` (one with a manifest), or None."""
    root = Path(root)
    if not root.is_dir():
        return None
    complete = [p for p in sorted(root.glob("v*")) if (p / "manifest.json").is_file()]
    return complete[-1] if complete else None


def written_at(path: str | os.PathLike[str]) -> int:
    """When the snapshot at ``path`` was written (ms since the epoch, from its manifest):
    of a bulk build and a checkpoint, the newer one is the state to start from."""
    return int(_read_manifest(Path(path)).get("written_at_ms", 0))


def wal_position(path: str | os.PathLike[str]) -> int:
    """The write-ahead log position the snapshot at ``path`` covers (0: none, e.g. a bulk
    build): a restart replays the log records after it."""
    return int(_read_manifest(Path(path)).get("wal_lsn", 0))


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError) as error:
        raise SnapshotError(f"{path}: unreadable manifest: {error}") from error
    if manifest.get("format_version") != FORMAT_VERSION:
        raise SnapshotError(
            f"{path}: format version {manifest.get('format_version')}, expected {FORMAT_VERSION}"
        )
    return manifest


def load(
    path: str | os.PathLike[str], *, mmap_mode: Literal["r", "c"] = "c", verify: bool = False
) -> State:
    """Load a snapshot directory into a :class:`State`, memory-mapping the arrays.

    ``mmap_mode`` "c" maps copy-on-write (the file never changes), "r" read-only (for
    reader processes). ``verify`` checks every file's CRC-32 first (reads every byte).
    """
    path = Path(path)
    manifest = _read_manifest(path)
    checksums: Mapping[str, int] = manifest["checksums"]
    for name, crc in checksums.items():
        file = path / name
        if not file.is_file():
            raise SnapshotError(f"{path}: missing {name}")
        if verify and _crc(file) != crc:
            raise SnapshotError(f"{path}: checksum mismatch in {name}")
    # plain ndarray views of the maps: np.memmap's subclass hooks cost microseconds on
    # every indexing in the hot path, the view costs nothing and shares the same pages
    arrays = {
        name[: -len(".npy")]: np.load(path / name, mmap_mode=mmap_mode, allow_pickle=False).view(
            np.ndarray
        )
        for name in checksums
        if name.endswith(".npy")
    }
    state = State()
    for name in _CODE_TABLES:
        table = getattr(state, name)
        setattr(state, name, CodeTable.from_array(table.kind, np.asarray(arrays[f"codes.{name}"])))
    for name in _COLUMNS:
        getattr(state, name).load(name, arrays, manifest["rows"][name])
    for name in ("price_index", "line_index"):
        index = getattr(state, name)
        index.keys = arrays[f"{name}.keys"]
        index.rows = arrays[f"{name}.rows"]
        index.ptr = arrays[f"{name}.ptr"]
        index.refresh_dense()  # derived from the keys, so never written to a snapshot
    on_hand = arrays["inventory.on_hand"]
    inventory = Inventory.__new__(Inventory)
    inventory.sku_capacity, inventory.location_capacity = on_hand.shape
    for field in Inventory.FIELDS:
        setattr(inventory, field, arrays[f"inventory.{field}"])
    state.inventory = inventory
    state.inbound_keys = arrays["inbound.keys"]
    state.inbound_qty = arrays["inbound.qty"]
    state.inbound_versions = dict(
        zip(
            zip(
                arrays["inbound_versions.sku"].tolist(),
                arrays["inbound_versions.location"].tolist(),
                strict=True,
            ),
            arrays["inbound_versions.version"].tolist(),
            strict=True,
        )
    )
    meta = json.loads((path / "meta.json").read_text())
    state.region_locations = {
        int(k): np.array(v, dtype=np.int64) for k, v in meta["region_locations"].items()
    }
    state.region_versions = {int(k): v for k, v in meta["region_versions"].items()}
    state.contract_accounts = {int(k): tuple(v) for k, v in meta["contract_accounts"].items()}
    state.contract_price_groups = {
        int(k): tuple(v) for k, v in meta["contract_price_groups"].items()
    }
    state.adjust_ids = {event_id: i for i, event_id in enumerate(meta["adjust_ids"])}
    holds = map(Hold.from_plain, meta["holds"])
    state.holds = {(hold.account, hold.key): hold for hold in holds}
    state.version = manifest["state_version"]
    state.pricing_epoch = manifest["pricing_epoch"]
    state.stream_ids = dict(manifest["stream_ids"])
    state.newest_ts_ms = manifest["newest_ts_ms"]
    state.clock_ms = manifest["clock_ms"]
    state.wal_lsn = int(manifest.get("wal_lsn", 0))
    return state
