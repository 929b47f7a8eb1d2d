"""Interning of business codes (SKU, location, account, …) to dense integer ids.

The engine works on dense ``int64`` ids; codes are strings only at the edges. A
:class:`CodeTable` assigns ids in first-seen order and never reuses or removes one, so an id
is stable for the life of a state and across snapshots.

Limits (DESIGN §2) are enforced when a code is interned, with an error naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from engine._kernels import _codes
from engine.errors import InvalidInput, shown

__all__ = ["CODE_LIMITS", "CodeTable", "validate_code"]

#: Maximum length of each kind of code (DESIGN §2).
CODE_LIMITS: dict[str, int] = {
    "sku": 64,
    "location": 32,
    "account": 64,
    "contract": 64,
    "price_list": 64,
    "price_group": 64,
    "product_group": 64,
    "region": 64,
    "uom": 8,
    "currency": 3,
}


def validate_code(kind: str, code: object, field: str | None = None) -> str:
    """Return ``code`` if it is a valid code of ``kind``; raise :class:`InvalidInput` if not.

    Codes are 1..N printable ASCII characters, case-sensitive, without leading or trailing
    blanks. UoM and currency codes are upper case; currencies are three letters.
    """
    name = field or kind
    max_len = CODE_LIMITS[kind]
    if not isinstance(code, str):
        raise InvalidInput(name, f"must be a string, got {type(code).__name__}")
    if not 1 <= len(code) <= max_len:
        raise InvalidInput(name, f"length {len(code)} out of range", f"1..{max_len} characters")
    if not (code.isascii() and code.isprintable()) or code.strip() != code:
        raise InvalidInput(name, f"{shown(code)} is not printable ASCII without edge blanks")
    if kind in ("uom", "currency") and code != code.upper():
        raise InvalidInput(name, f"{shown(code)} must be upper case")
    if kind == "currency" and not (len(code) == 3 and code.isalpha()):
        raise InvalidInput(name, f"{shown(code)} is not an ISO 4217 alpha-3 code", "3 letters")
    return code


#: Rows an empty table starts with; a full table grows by half again.
_FIRST_ROWS = 16


def _slots_for(rows: int) -> int:
    """Hash slots for an arena of ``rows`` codes: a power of two, load ≤ 1/2 when full."""
    return 1 << max(5, (2 * rows - 1).bit_length())


class CodeTable:
    """Bidirectional map code ⇄ dense id for one kind of code, held in two arrays.

    ``arena`` (rows × width bytes, ``width`` = the kind's length limit) holds code ``i`` in
    row ``i``, NUL-padded; ``slots`` is an open-addressing hash index over it
    (``engine/_kernels/codeindex.h``). Both are plain numpy arrays, so the shared state
    moves them into shared memory like every other array and a worker maps them read-only
    (:meth:`mapped`): no worker keeps a dict of a million strings, and a code nobody asked
    for recently costs a few cache misses. Lookups run in the compiled kernel
    ``engine._kernels._codes`` (the quote kernel reads the same arrays).

    Growing replaces both arrays with larger ones (half again the rows); adding a code
    writes one arena row and one slot in place. A table is changed only by the writer, on
    an instance no reader has pinned (``engine.shared``), so readers never see a half-added
    code; an id at or past a reader's ``n`` is never returned.
    """

    __slots__ = ("arena", "kind", "n", "slots", "width")

    def __init__(self, kind: str, codes: Iterable[str] = ()) -> None:
        self.kind = kind
        self.width = CODE_LIMITS[kind]
        self.arena = np.zeros((_FIRST_ROWS, self.width), dtype=np.uint8)
        self.slots = np.zeros(_slots_for(_FIRST_ROWS), dtype=np.uint64)
        self.n = 0
        for code in codes:
            self.intern(code)

    @classmethod
    def mapped(
        cls, kind: str, arena: npt.NDArray[np.uint8], slots: npt.NDArray[np.uint64], n: int
    ) -> CodeTable:
        """A table over arrays someone else owns (a worker's read-only shared-memory maps),
        of which the first ``n`` codes are visible."""
        table = cls.__new__(cls)
        table.kind, table.width = kind, CODE_LIMITS[kind]
        table.arena, table.slots, table.n = arena, slots, n
        return table

    def __len__(self) -> int:
        return self.n

    def __contains__(self, code: object) -> bool:
        return self.get(code) >= 0  # type: ignore[arg-type]

    def intern(self, code: str, field: str | None = None) -> int:
        """Id of ``code``, assigning the next id if it is new (validated first)."""
        found = self.get(code)
        if found >= 0:
            return found
        validate_code(self.kind, code, field)
        return self._append(code)

    def _append(self, code: str) -> int:
        if self.n == self.arena.shape[0]:
            self._grow(self.n + 1)
        _codes.put(self.arena, self.slots, self.n, code)
        self.n += 1
        return self.n - 1

    def _grow(self, rows: int) -> None:
        """New arrays for at least ``rows`` codes (half again the current rows at least)."""
        have = self.arena.shape[0]
        rows = max(rows, have + have // 2, _FIRST_ROWS)
        arena = np.zeros((rows, self.width), dtype=np.uint8)
        arena[: self.n] = self.arena[: self.n]
        slots = np.zeros(_slots_for(rows), dtype=np.uint64)
        _codes.insert_range(arena, slots, 0, self.n)
        self.arena, self.slots = arena, slots

    def get(self, code: str) -> int:
        """Id of ``code`` or -1 when unknown (anything that is not a str is unknown)."""
        return _codes.find(self.arena, self.slots, self.n, code)

    def lookup(self, codes: Sequence[object]) -> npt.NDArray[np.int64]:
        """Ids of a batch of codes, -1 for unknown ones; one kernel call, O(n)."""
        found = np.empty(len(codes), dtype=np.int64)
        _codes.find_many(self.arena, self.slots, self.n, codes, found)
        return found

    def copy(self) -> CodeTable:
        """An independent table with the same codes and ids. O(codes)."""
        return CodeTable.mapped(self.kind, self.arena.copy(), self.slots.copy(), self.n)

    def code(self, code_id: int) -> str:
        """The code of ``code_id``."""
        if not 0 <= code_id < self.n:
            raise IndexError(f"{self.kind} id {code_id} out of range 0..{self.n - 1}")
        return _codes.decode_range(self.arena, code_id, code_id + 1)[0]

    def codes_at(self, ids: npt.NDArray[np.int64]) -> list[str]:
        """Codes of a batch of ids; "" for -1 (or any id not in the table). O(n)."""
        return _codes.decode(self.arena, self.n, np.ascontiguousarray(ids, dtype=np.int64))

    def codes(self) -> list[str]:
        """All codes in id order (a copy)."""
        return self.codes_since(0)

    def codes_since(self, start: int) -> list[str]:
        """The codes with ids ``start`` and up, in id order (what an append-only follower
        has not seen yet)."""
        return _codes.decode_range(self.arena, min(start, self.n), self.n)

    def to_array(self) -> npt.NDArray[np.bytes_]:
        """Codes as a fixed-width ASCII array, for snapshots."""
        return self.arena[: self.n].copy().view(f"S{self.width}").reshape(self.n)

    @classmethod
    def from_array(cls, kind: str, array: npt.NDArray[np.bytes_]) -> CodeTable:
        """Rebuild a table from :meth:`to_array` output (codes were validated when written;
        one wider than this kind's limit cannot be, and is refused)."""
        table = cls(kind)
        n = len(array)
        itemsize = array.dtype.itemsize
        raw = np.ascontiguousarray(array).view(np.uint8).reshape(n, itemsize)
        if itemsize > table.width and raw[:, table.width :].any():
            raise InvalidInput(kind, f"a stored code is longer than {table.width} characters")
        table.arena = np.zeros((max(n + n // 16 + 16, _FIRST_ROWS), table.width), np.uint8)
        keep = min(itemsize, table.width)
        table.arena[:n, :keep] = raw[:, :keep]
        table.slots = np.zeros(_slots_for(table.arena.shape[0]), dtype=np.uint64)
        _codes.insert_range(table.arena, table.slots, 0, n)
        table.n = n
        return table
