"""A logical checksum of a state: equal checksums mean equal answers and equal futures.

:func:`state_checksum` digests (BLAKE2b) everything that decides what a :class:`State`
answers and what applying the next events to it does: the code tables, the used rows of
every table, the index keys, inventory, inbound, the adjust log, holds, regions, contract
assignments, versions, stream positions and clocks. It is for comparing replicas and
instances (the two left-right instances of ``engine.shared``, a state and its snapshot),
not for security.

What it is independent of: spare capacity (only used rows and the ``[:skus, :locations]``
block of inventory are read, so a state loaded from a snapshot hashes like the one that
wrote it), the process (no ``hash()``; arrays are read as bytes with their dtype and
shape), Python dict order where the order means nothing (inbound versions, regions,
contract assignments, holds and stream ids are sorted by key), and what is derived or a
cache (the dense rows of the contract-line index, the adjust log's cell index, the pricing
contexts).

What it depends on: **row order**. Code ids, price and contract-line rows and adjust-log
rows are numbered in the order the events were applied, so two replicas that applied the
same events in different batchings can answer alike and still differ here (making the
checksum order-free is for a later change).

:func:`state_checksums` gives the digest of each part, so a failing comparison can say
which part differs; :data:`SHARED_PARTS` names the parts a ``engine.shared`` reader
process sees (the rest is writer-only bookkeeping).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable
from typing import Any

import numpy as np

from engine.state import Inventory, State
from engine.table import Columns, KeyIndex

__all__ = ["CODE_TABLES", "PARTS", "SHARED_PARTS", "state_checksum", "state_checksums"]

#: The state's code tables, by attribute name.
CODE_TABLES = (
    "skus", "locations", "regions", "accounts", "contracts", "price_lists",
    "price_groups", "product_groups", "uoms", "currencies",
)  # fmt: skip
_COLUMNS = (
    "items", "groups", "location_rows", "account_rows", "contract_rows", "prices", "lines",
)  # fmt: skip
_ROWS_PER_CHUNK = 1 << 16  # inventory rows hashed per copy of a non-contiguous block


def _hasher() -> Any:
    return hashlib.blake2b(digest_size=32)


def _update_array(h: Any, name: str, array: np.ndarray[Any, Any]) -> None:
    """Name, dtype, shape, then the bytes (row chunks when the block is not contiguous)."""
    h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
    if array.flags.c_contiguous:
        h.update(array.reshape(-1).view(np.uint8))
        return
    for start in range(0, len(array), _ROWS_PER_CHUNK):
        chunk = np.ascontiguousarray(array[start : start + _ROWS_PER_CHUNK])
        h.update(chunk.reshape(-1).view(np.uint8))


def _scalar(value: Any) -> Any:
    if isinstance(value, np.generic):  # a numpy int hashes like the int it holds
        return value.item()
    raise TypeError(f"checksum: cannot digest {type(value).__name__}")


def _update_plain(h: Any, value: Any) -> None:
    """Ints, strings, lists and dicts as canonical JSON (sorted keys)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=_scalar)
    h.update(text.encode())
    h.update(b"|")


def _codes(state: State, name: str) -> Callable[[Any], None]:
    def digest(h: Any) -> None:
        codes = getattr(state, name).codes_since(0)
        h.update(f"{len(codes)}|".encode())
        # codes are printable ASCII (validated when interned): NUL never occurs in one
        h.update("\x00".join(codes).encode("utf-8", "surrogatepass"))

    return digest


def _columns(columns: Columns) -> Callable[[Any], None]:
    def digest(h: Any) -> None:
        h.update(f"{columns.n}|".encode())
        for name in sorted(columns.schema):
            _update_array(h, name, columns[name][: columns.n])

    return digest


def _index(index: KeyIndex) -> Callable[[Any], None]:
    # the dense rows are derived from keys and rows, and their layout depends on how the
    # index grew (a loaded snapshot rebuilds them): not part of the state's content
    def digest(h: Any) -> None:
        _update_array(h, "keys", index.keys)
        _update_array(h, "rows", index.rows)
        _update_array(h, "ptr", index.ptr)

    return digest


def _inventory(state: State) -> Callable[[Any], None]:
    def digest(h: Any) -> None:
        inventory = state.inventory
        for name in Inventory.FIELDS:
            block = getattr(inventory, name)[: state.n_skus, : state.n_locations]
            _update_array(h, name, block)

    return digest


def _inbound(state: State) -> Callable[[Any], None]:
    def digest(h: Any) -> None:
        _update_array(h, "keys", state.inbound_keys)
        _update_array(h, "qty", state.inbound_qty)

    return digest


def _inbound_versions(state: State) -> Callable[[Any], None]:
    def digest(h: Any) -> None:
        _update_plain(
            h, sorted([*cell, version] for cell, version in state.inbound_versions.items())
        )

    return digest


def _adjust_log(state: State) -> Callable[[Any], None]:
    def digest(h: Any) -> None:
        _columns(state.adjust_log)(h)
        _update_plain(h, list(state.adjust_ids.items()))  # event id → its row, in row order

    return digest


def _holds(state: State) -> Callable[[Any], None]:
    def digest(h: Any) -> None:
        _update_plain(h, [[*key, state.holds[key].to_plain()] for key in sorted(state.holds)])

    return digest


def _sorted_dict(values: dict[Any, Any]) -> list[Any]:
    def plain(value: Any) -> Any:
        return value.tolist() if isinstance(value, np.ndarray) else value

    return [[key, plain(values[key])] for key in sorted(values)]


def _plain(value: Callable[[], Any]) -> Callable[[Any], None]:
    return lambda h: _update_plain(h, value())


def _parts(state: State) -> Iterable[tuple[str, Callable[[Any], None]]]:
    for name in CODE_TABLES:
        yield f"codes.{name}", _codes(state, name)
    for name in _COLUMNS:
        yield name, _columns(getattr(state, name))
    yield "price_index", _index(state.price_index)
    yield "line_index", _index(state.line_index)
    yield "inventory", _inventory(state)
    yield "inbound", _inbound(state)
    yield "inbound_versions", _inbound_versions(state)
    yield "adjust_log", _adjust_log(state)
    yield "holds", _holds(state)
    yield "region_locations", _plain(lambda: _sorted_dict(state.region_locations))
    yield "region_versions", _plain(lambda: _sorted_dict(state.region_versions))
    yield "contract_accounts", _plain(lambda: _sorted_dict(state.contract_accounts))
    yield "contract_price_groups", _plain(lambda: _sorted_dict(state.contract_price_groups))
    yield "version", _plain(lambda: state.version)
    yield "pricing_epoch", _plain(lambda: state.pricing_epoch)
    yield "stream_ids", _plain(lambda: _sorted_dict(state.stream_ids))
    yield "clock", _plain(lambda: [state.newest_ts_ms, state.clock_ms])


#: Every part :func:`state_checksums` names.
PARTS: tuple[str, ...] = tuple(name for name, _ in _parts(State()))
#: The parts a reader of ``engine.shared`` sees; the others (adjust log, inbound versions,
#: holds, region versions) stay private to the writer's instances.
SHARED_PARTS: frozenset[str] = frozenset(PARTS) - {
    "adjust_log",
    "inbound_versions",
    "holds",
    "region_versions",
}


def state_checksums(state: State, parts: Collection[str] | None = None) -> dict[str, str]:
    """Hex BLAKE2b digest of each part of ``state`` (:data:`PARTS`, or those of ``parts``),
    so two states that differ can be told apart by part. O(state size): reads the arrays,
    copies none but the inventory block when it has spare location columns (in chunks)."""
    digests: dict[str, str] = {}
    for name, digest in _parts(state):
        if parts is None or name in parts:
            h = _hasher()
            digest(h)
            digests[name] = h.hexdigest()
    return digests


def state_checksum(state: State, parts: Collection[str] | None = None) -> str:
    """One hex BLAKE2b digest of ``state``: equal for states with equal content, whatever
    their spare capacity, in any process (see the module docstring for what it covers,
    and that row order is part of it). ``parts`` limits it to some of :data:`PARTS`
    (e.g. :data:`SHARED_PARTS` to compare a reader's view with the writer's state)."""
    h = _hasher()
    for name, digest in sorted(state_checksums(state, parts).items()):
        h.update(f"{name}={digest}\n".encode())
    return str(h.hexdigest())
