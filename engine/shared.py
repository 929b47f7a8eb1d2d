"""One state, many reader processes: left-right publication over shared memory (DESIGN §9).

The writer process keeps **two instances** of the state, A and B, whose arrays live in
files under a shared-memory directory (``/dev/shm`` by default). Readers (the gRPC worker
processes) map those files read-only, so a second worker adds page-table entries, not a
copy of the arrays. One change is applied like this (the *left-right* technique):

1. wait until no reader is on the inactive instance, then apply the batch to it;
2. copy any array the batch replaced (a table that grew, an index that was re-merged) into
   a new file of that instance, and write the instance's manifest;
3. flip the published sequence number: readers arriving from now on read the new instance;
4. wait until the readers still on the old instance have left it, then apply the same batch
   to it, so both instances are equal again and the next batch can start.

Apply is deterministic (it takes the clock as an argument), so applying one batch to two
equal states leaves two equal states. Readers never wait for the writer and never see half
a batch: the instance they pinned is not written until they unpin it.

A change that raises part-way leaves its instance half-written; the two instances must
never stay apart. So the writer then restores that instance as a deep copy of the
published one (``engine.state.clone_state``, moved into new files) and re-raises: failing
in step 1 or 2, nothing was published and the batch is rejected whole; failing in step 4,
the batch was published and both instances end up holding it. Either way both instances
are equal again (``engine.checksum`` compares them) and the next batch can start.

The header file holds the published sequence number (its parity names the active
instance: even → A, odd → B), the writer's pid and heartbeat, the *successor* (set by a
restarted writer in the state it replaces, see :func:`supersede`), and one *slot* per reader
process with the sequence number it has pinned on each instance (-1: none). A reader pins
with "read seq, store it in my slot, read seq again" and retries if it moved; the writer waits a
grace period after a flip before trusting the slots, which covers the store→load reordering
x86 allows between a reader's slot store and its re-read of the sequence number. Slots of
dead processes are ignored, so a killed reader never blocks the writer.

What is shared and what is not: the numpy tables readers need (catalog, accounts,
contracts and lines, price entries and their indexes, inventory, inbound) and the code
tables' arenas and hash indexes (``engine.codes.CodeTable``: a reader looks codes up in the
mapped arrays and keeps no dict of its own; the manifest says how many codes a version
holds, so a code added on the other instance is never visible on this one). The small
Python-side tables readers need (regions, contract assignments) travel in a pickled *meta*
file rewritten only when the pricing epoch or the regions change. Writer-only bookkeeping
(adjust log, inbound versions, hold records) stays private to each writer instance.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from engine.codes import CodeTable
from engine.errors import SnapshotError
from engine.state import Inventory, State, clone_state

__all__ = [
    "DEFAULT_SHM",
    "SharedReader",
    "SharedWriter",
    "published_version",
    "set_path",
    "shared_paths",
    "supersede",
]

T = TypeVar("T")
I64 = npt.NDArray[np.int64]
DEFAULT_SHM = "/dev/shm"
_MAGIC = 0x70616361_63686501  # "pacache\x01"
# header words
_H_MAGIC, _H_SEQ, _H_WRITER_PID, _H_HEARTBEAT_MS, _H_SUCCESSOR = range(5)  # then reader slots
_SLOT_BASE = 16  # reader slot i: words _SLOT_BASE + 3i .. +2 = pid, seq pinned on A, on B
_SLOT_WORDS = 3
MAX_READERS = 256
_HEADER_WORDS = _SLOT_BASE + _SLOT_WORDS * MAX_READERS
# After a flip the writer waits this long before reading reader slots: far longer than a
# store buffer takes to drain, far shorter than any batch.
FLIP_GRACE_S = 0.0002
_HUGE_PAGE = 2 << 20
_MADV_HUGEPAGE: int | None = getattr(mmap, "MADV_HUGEPAGE", None)

_CODE_TABLES = (
    "skus", "locations", "regions", "accounts", "contracts", "price_lists",
    "price_groups", "product_groups", "uoms", "currencies",
)  # fmt: skip
_READ_COLUMNS = (
    "items", "groups", "location_rows", "account_rows", "contract_rows", "prices", "lines",
)  # fmt: skip
_INDEXES = ("price_index", "line_index")


def shared_paths(state: State) -> Iterator[tuple[str, np.ndarray[Any, Any]]]:
    """Every array a reader needs, by a stable path name (full capacity, not the used rows)."""
    for table in _READ_COLUMNS:
        columns = getattr(state, table)
        for name, array in columns.data.items():
            yield f"{table}.{name}", array
    for index in _INDEXES:
        ix = getattr(state, index)
        yield f"{index}.keys", ix.keys
        yield f"{index}.rows", ix.rows
        yield f"{index}.ptr", ix.ptr
        yield f"{index}.dense_slot", ix.dense_slot
        yield f"{index}.dense", ix.dense
    for name in Inventory.FIELDS:
        yield f"inventory.{name}", getattr(state.inventory, name)
    yield "inbound.keys", state.inbound_keys
    yield "inbound.qty", state.inbound_qty
    for kind in _CODE_TABLES:
        codes: CodeTable = getattr(state, kind)
        yield f"codes.{kind}.arena", codes.arena
        yield f"codes.{kind}.slots", codes.slots


def set_path(state: State, path: str, array: np.ndarray[Any, Any]) -> None:
    """Put ``array`` in ``state`` at ``path`` (a name :func:`shared_paths` gives)."""
    owner, name = path.split(".", 1)
    if owner in _READ_COLUMNS:
        getattr(state, owner).data[name] = array
    elif owner in _INDEXES:
        setattr(getattr(state, owner), name, array)
    elif owner == "inventory":
        setattr(state.inventory, name, array)
    elif path == "inbound.keys":
        state.inbound_keys = array
    elif path == "inbound.qty":
        state.inbound_qty = array
    elif owner == "codes":
        kind, part = name.split(".")
        setattr(getattr(state, kind), part, array)
    else:  # pragma: no cover - shared_paths and set_path are written together
        raise KeyError(path)


def _map(path: Path, dtype: Any, shape: tuple[int, ...], writable: bool) -> np.ndarray[Any, Any]:
    """A numpy view of a whole file, MAP_SHARED (writable) or read-only."""
    size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if size == 0:
        array = np.zeros(shape, dtype=dtype)
        array.flags.writeable = writable
        return array
    with path.open("r+b" if writable else "rb") as handle:
        access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
        mapped = mmap.mmap(handle.fileno(), size, access=access)
    if size >= _HUGE_PAGE and _MADV_HUGEPAGE is not None:
        # A quote reads rows scattered over gigabytes: with 4 KB pages nearly every row is
        # also a TLB miss. Asking is free; a tmpfs honours it only when mounted with
        # huge=advise (or within_size, always): see README "Configuration".
        with contextlib.suppress(OSError):
            mapped.madvise(_MADV_HUGEPAGE)
    return np.frombuffer(mapped, dtype=dtype).reshape(shape)  # keeps the map alive


def _new_file(
    path: Path, array: np.ndarray[Any, Any], rows: int | None = None, fill: Any = 0
) -> np.ndarray[Any, Any]:
    """Write ``array`` to a new file and return a writable shared view of it; with ``rows``,
    the file holds that many rows, the ones past ``array``'s filled with ``fill``."""
    shape = array.shape if rows is None else (rows, *array.shape[1:])
    with path.open("wb") as handle:
        handle.truncate(int(np.prod(shape, dtype=np.int64)) * array.dtype.itemsize)
    view = _map(path, array.dtype, shape, writable=True)
    if view.size:
        view[: len(array)] = array
        if len(view) > len(array):
            view[len(array) :] = fill
    return view


@dataclass
class _Published:
    """What the writer knows about one instance's files."""

    directory: Path
    # path → (file, the array published for it). Compared by identity: an array replaced
    # by apply is a new object, and holding the published one keeps its mapping alive, so
    # a new array can never reuse its address and pass for the old one.
    files: dict[str, tuple[str, np.ndarray[Any, Any]]] = field(default_factory=dict)
    meta_key: Any = None
    meta_file: str = ""
    generation: int = 0

    def next_name(self, stem: str) -> str:
        self.generation += 1
        return f"{stem}.{self.generation}"


def _meta_key(state: State) -> Any:
    return (state.pricing_epoch, tuple(sorted(state.region_versions.items())))


def _reader_meta(state: State) -> dict[str, Any]:
    return {
        "region_locations": state.region_locations,
        "contract_accounts": state.contract_accounts,
        "contract_price_groups": state.contract_price_groups,
    }


class _Header:
    def __init__(self, path: Path, *, create: bool) -> None:
        if create:
            with path.open("wb") as handle:
                handle.truncate(_HEADER_WORDS * 8)
        self.words = _map(path, np.int64, (_HEADER_WORDS,), writable=True)
        if create:
            self.words[_SLOT_BASE:] = -1
            self.words[_H_SEQ] = -1
            self.words[_H_MAGIC] = _MAGIC
        elif int(self.words[_H_MAGIC]) != _MAGIC:
            raise SnapshotError(f"{path}: not a pacache shared-state header")

    @property
    def seq(self) -> int:
        return int(self.words[_H_SEQ])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SharedWriter:
    """The writer's side: two instances, left-right apply, publication.

    ``load`` must build a fresh, equal :class:`State` each time it is called (a snapshot
    load, the demo build): it is called twice, once per instance.
    """

    def __init__(self, root: str | os.PathLike[str], load: Callable[[], State]) -> None:
        self.root = Path(root)
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        self.header = _Header(self.root / "header", create=True)
        self.header.words[_H_WRITER_PID] = os.getpid()
        self.instances = [load(), load()]
        self.published = [_Published(self.root / "a"), _Published(self.root / "b")]
        for state, record in zip(self.instances, self.published, strict=True):
            record.directory.mkdir()
            self._externalize(state, record, _headroom(state))
        self.seq = -1
        self._pending: Callable[[State], Any] | None = None
        for i in (0, 1):  # both instances get a manifest; A is published first
            self._write_manifest(i, i)
        self._flip(0)

    # -- what readers see ----------------------------------------------------------------

    @property
    def active(self) -> State:
        """The published instance (read it only between two applies)."""
        return self.instances[self.seq & 1]

    def heartbeat(self) -> None:
        self.header.words[_H_HEARTBEAT_MS] = int(time.time() * 1000)

    def readers_on(self, instance: int) -> list[int]:
        """Pids of live readers that have pinned ``instance``."""
        slots = self.header.words[_SLOT_BASE:].reshape(MAX_READERS, _SLOT_WORDS)
        pinned = slots[(slots[:, 1 + instance] >= 0) & (slots[:, 0] > 0), 0]
        return [pid for pid in pinned.tolist() if _alive(pid)]

    def inactive_free(self) -> bool:
        return not self.readers_on((self.seq + 1) & 1)

    # -- apply ---------------------------------------------------------------------------

    def apply(self, change: Callable[[State], T]) -> T:
        """Apply ``change`` to the inactive instance and publish it.

        The caller must have made sure :meth:`inactive_free` holds (and that the previous
        change was caught up, :meth:`catch_up`). Returns what ``change`` returned on the
        instance that was published.

        If ``change`` raises (or moving the instance into its files does), nothing is
        published and the exception is re-raised, after the instance it was writing —
        possibly half-written — is restored from the published one (:meth:`_restore`): the
        batch is rejected whole, the published instance and its readers never saw any of
        it, both instances are equal again and the next apply can start.
        """
        assert self._pending is None, "catch_up() the previous change first"
        target = (self.seq + 1) & 1
        try:
            result = change(self.instances[target])
            self._externalize(self.instances[target], self.published[target])
            self._write_manifest(target, self.seq + 1)
        except BaseException:
            self._restore(target)
            raise
        self._flip(self.seq + 1)
        self._pending = change
        return result

    def catch_up(self) -> None:
        """Apply the last change to the other instance (call once :meth:`inactive_free`).

        If ``change`` raises here, the batch is already published: the lagging instance
        is restored from the published one, which holds the batch, so both instances are
        equal and hold it; then the exception is re-raised for the caller to log. The
        batch is applied (and must not be applied again); the next apply can start.
        """
        change, self._pending = self._pending, None
        if change is None:
            return
        target = (self.seq + 1) & 1
        try:
            change(self.instances[target])
            self._externalize(self.instances[target], self.published[target])
        except BaseException:
            self._restore(target)
            raise

    def wait_inactive_free(
        self, poll_s: float = 0.0001, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        """Block until no reader is on the inactive instance (readers unpin after every
        call, so this is at most one call's duration)."""
        while not self.inactive_free():
            sleep(poll_s)

    def close(self) -> None:
        """Remove the shared files (readers that still map them keep their pages)."""
        shutil.rmtree(self.root, ignore_errors=True)

    # -- internals -----------------------------------------------------------------------

    def _restore(self, target: int) -> None:
        """Make instance ``target`` (not published, no reader on it) a deep copy of the
        published instance, in new files of its own.

        Every array of the copy is a new object, so :meth:`_externalize` moves each into a
        new file and unlinks the old one. What the failed change left in the instance's
        meta file is not trusted either: it is written afresh. The
        instance's manifest is left as it is: no reader reads it before the next apply
        writes it. Costs a private copy of the state on the way (O(state size)); if the
        restore fails too, its error is raised (chained to the first) and the writer must
        not go on.
        """
        record = self.published[target]
        state = clone_state(self.active)
        record.meta_key = None  # rewritten (and the old file unlinked) by _externalize
        self.instances[target] = state
        self._externalize(state, record)

    def _flip(self, seq: int) -> None:
        self.seq = seq
        self.header.words[_H_SEQ] = seq
        time.sleep(FLIP_GRACE_S)

    def _externalize(
        self, state: State, record: _Published, layout: dict[str, tuple[int, Any]] | None = None
    ) -> None:
        """Move every reader array that is not already in this instance's files into one
        (``layout``: rows and fill per path, for the first publication's spare rows)."""
        for path, array in shared_paths(state):
            known = record.files.get(path)
            if known is not None and known[1] is array:
                continue  # changed in place, if at all: readers see it through the map
            name = record.next_name(path)
            rows, fill = (layout or {}).get(path, (None, 0))
            view = _new_file(record.directory / name, array, rows, fill)
            set_path(state, path, view)
            if known is not None:
                (record.directory / known[0]).unlink(missing_ok=True)
            record.files[path] = (name, view)
        key = _meta_key(state)
        if key != record.meta_key:
            old = record.meta_file
            record.meta_file = record.next_name("meta")
            with (record.directory / record.meta_file).open("wb") as handle:
                pickle.dump(_reader_meta(state), handle, protocol=pickle.HIGHEST_PROTOCOL)
            record.meta_key = key
            if old:
                (record.directory / old).unlink(missing_ok=True)

    def _write_manifest(self, instance: int, seq: int) -> None:
        state, record = self.instances[instance], self.published[instance]
        manifest = {
            "seq": seq,
            "arrays": {
                path: (record.files[path][0], array.dtype.str, array.shape)
                for path, array in shared_paths(state)
            },
            "codes": {kind: len(getattr(state, kind)) for kind in _CODE_TABLES},
            "rows": {name: getattr(state, name).n for name in _READ_COLUMNS},
            "capacity": {name: getattr(state, name).capacity for name in _READ_COLUMNS},
            "inventory": (state.inventory.sku_capacity, state.inventory.location_capacity),
            "meta": record.meta_file,
            "meta_key": record.meta_key,
            "version": state.version,
            "pricing_epoch": state.pricing_epoch,
            "stream_ids": dict(state.stream_ids),
            "newest_ts_ms": state.newest_ts_ms,
            "clock_ms": state.clock_ms,
        }
        tmp = record.directory / "manifest.tmp"
        with tmp.open("wb") as handle:
            pickle.dump(manifest, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, record.directory / "manifest")


def _headroom(state: State) -> dict[str, tuple[int, Any]]:
    """Spare rows for the first publication — (rows, fill) per array path — so the first
    new SKU or price entry after a load does not copy a whole table into a new shared file
    (growth is by half again, and the largest table is gigabytes). The spare rows are
    written straight into the shared files: no private copy of the state on the way."""
    layout: dict[str, tuple[int, Any]] = {}
    for table in _READ_COLUMNS:
        columns = getattr(state, table)
        rows = max(columns.capacity, columns.n + columns.n // 16 + 16)
        for name, column in columns.schema.items():
            layout[f"{table}.{name}"] = (rows, column.fill)
        columns.capacity = rows
    inventory = state.inventory
    skus = inventory.sku_capacity + inventory.sku_capacity // 16 + 16
    for name in Inventory.FIELDS:
        layout[f"inventory.{name}"] = (skus, -1 if name == "set_version" else 0)
    inventory.sku_capacity = skus
    return layout


def supersede(root: str | os.PathLike[str], successor: int) -> bool:
    """Record in the header under ``root`` that the state numbered ``successor`` (> 0, a
    number the server names its states by) replaces it. Readers of ``root`` see it on
    their next read (:attr:`SharedReader.successor`) and move on before answering, so no
    reader answers from the old state once any has answered from the new one. False
    when there is no readable header under ``root`` (it is already gone)."""
    if successor <= 0:
        raise ValueError(f"successor {successor}: must be > 0")
    try:
        header = _Header(Path(root) / "header", create=False)
    except (OSError, SnapshotError):
        return False
    header.words[_H_SUCCESSOR] = successor
    return True


def published_version(root: str | os.PathLike[str]) -> int | None:
    """The state version a writer last published under ``root`` (None: nothing readable
    there). A restarted writer starts above it, so versions never go down for readers."""
    try:
        header = _Header(Path(root) / "header", create=False)
        seq = header.seq
        if seq < 0:
            return None
        with (Path(root) / "ab"[seq & 1] / "manifest").open("rb") as handle:
            manifest = pickle.load(handle)
    except (OSError, SnapshotError, pickle.UnpicklingError, EOFError):
        return None
    return int(manifest["version"])


class SharedReader:
    """A reader process's view: pin the published instance, read it, unpin.

    ``slot`` is this process's reader slot (0 ≤ slot < MAX_READERS), unique among the
    readers of one writer. The pricing-context cache is kept across versions (contexts are
    keyed by the pricing epoch); the code tables are the instance's mapped arrays.

    Pins are counted per instance, and every method is safe to call from several threads
    of the process (the event loop and the engine lane each hold pins of their own): an
    instance's slot word is cleared only when its last pin is released, so one thread's
    unpin never exposes an instance another thread is still reading.
    """

    def __init__(self, root: str | os.PathLike[str], slot: int) -> None:
        if not 0 <= slot < MAX_READERS:
            raise ValueError(f"slot {slot} out of range 0..{MAX_READERS - 1}")
        self.root = Path(root)
        self.header = _Header(self.root / "header", create=False)
        self.slot = slot
        self._slot = _SLOT_BASE + _SLOT_WORDS * slot
        self._lock = threading.Lock()
        self._pins = [-1, -1]  # pinned seq per instance (A, B), -1: none
        self._counts = [0, 0]  # pins held per instance
        self._held: list[int] = []  # instances pinned through pin(), released by unpin()
        for instance in (0, 1):
            self.header.words[self._slot + 1 + instance] = -1
        self.header.words[self._slot] = os.getpid()
        self.contexts: dict[Any, Any] = {}
        self._views: dict[int, tuple[int, State, dict[str, tuple[str, np.ndarray[Any, Any]]]]] = {}
        self._meta: tuple[Any, dict[str, Any]] | None = None
        self.seq = -1

    @property
    def heartbeat_ms(self) -> int:
        return int(self.header.words[_H_HEARTBEAT_MS])

    @property
    def successor(self) -> int:
        """The number of the state that replaced this one (:func:`supersede`), 0: none."""
        return int(self.header.words[_H_SUCCESSOR])

    def acquire(self) -> tuple[State, int]:
        """Pin the published instance; returns its state and the instance to
        :meth:`release`. The state stays whole until that release."""
        with self._lock:
            words = self.header.words
            while True:
                seq = int(words[_H_SEQ])
                if seq < 0:
                    raise SnapshotError("shared state: nothing published yet")
                instance = seq & 1
                if self._pins[instance] == seq:
                    break
                if self._counts[instance]:
                    # The writer never writes a pinned instance, so the header cannot name
                    # it at a newer seq while we hold it: the protocol has been broken.
                    raise SnapshotError(
                        f"shared state: instance {'ab'[instance]} is pinned at seq "
                        f"{self._pins[instance]} but published at {seq}"
                    )
                words[self._slot + 1 + instance] = seq
                if int(words[_H_SEQ]) == seq:
                    self._pins[instance] = seq
                    break
                words[self._slot + 1 + instance] = -1  # it moved on: pin the newer one
            self._counts[instance] += 1
            self.seq = seq
            return self._view(seq), instance

    def release(self, instance: int) -> None:
        """Release one pin taken by :meth:`acquire`."""
        with self._lock:
            self._counts[instance] -= 1
            if self._counts[instance] <= 0:
                self._counts[instance] = 0
                self._pins[instance] = -1
                self.header.words[self._slot + 1 + instance] = -1

    def pin(self) -> State:
        """Pin the published instance and return its state (valid until :meth:`unpin`).

        Pinning again before :meth:`unpin` returns the newest published instance and keeps
        the earlier pin too, so a state handed out earlier stays intact until unpin.
        """
        state, instance = self.acquire()
        self._held.append(instance)
        return state

    def unpin(self) -> None:
        """Release every pin taken through :meth:`pin` (not those of :meth:`acquire`)."""
        held, self._held = self._held, []
        for instance in held:
            self.release(instance)

    def close(self) -> None:
        self.unpin()
        with self._lock:
            for instance in (0, 1):
                self.header.words[self._slot + 1 + instance] = -1
            self.header.words[self._slot] = -1

    def _view(self, seq: int) -> State:
        instance = seq & 1
        cached = self._views.get(instance)
        if cached is not None and cached[0] == seq:
            return cached[1]
        directory = self.root / "ab"[instance]
        with (directory / "manifest").open("rb") as handle:
            manifest = pickle.load(handle)
        if manifest["seq"] != seq:
            raise SnapshotError(
                f"shared state: manifest of instance {'ab'[instance]} is at seq "
                f"{manifest['seq']}, header says {seq}"
            )
        state, maps = (cached[1], cached[2]) if cached is not None else (State(), {})
        fresh: dict[str, tuple[str, np.ndarray[Any, Any]]] = {}
        for path, (file, dtype, shape) in manifest["arrays"].items():
            known = maps.get(path)
            if known is not None and known[0] == file:
                array = known[1]
            else:
                array = _map(directory / file, np.dtype(dtype), tuple(shape), writable=False)
            fresh[path] = (file, array)
            set_path(state, path, array)
        for kind, n in manifest["codes"].items():
            getattr(state, kind).n = n  # the codes this version holds (the arena has more rows)
        for name in _READ_COLUMNS:
            columns = getattr(state, name)
            columns.n = manifest["rows"][name]
            columns.capacity = manifest["capacity"][name]
        state.inventory.sku_capacity, state.inventory.location_capacity = manifest["inventory"]
        # both instances write the same meta; its key (pricing epoch, region versions)
        # says whether the one already read is still current
        if self._meta is None or self._meta[0] != manifest["meta_key"]:
            with (directory / manifest["meta"]).open("rb") as handle:
                self._meta = (manifest["meta_key"], pickle.load(handle))
        meta = self._meta[1]
        state.region_locations = meta["region_locations"]
        state.contract_accounts = meta["contract_accounts"]
        state.contract_price_groups = meta["contract_price_groups"]
        state.version = manifest["version"]
        state.pricing_epoch = manifest["pricing_epoch"]
        state.stream_ids = manifest["stream_ids"]
        state.newest_ts_ms = manifest["newest_ts_ms"]
        state.clock_ms = manifest["clock_ms"]
        state.contexts = self.contexts
        self._views[instance] = (seq, state, fresh)
        return state
