"""Interning of business codes (SKU, location, account, …) to dense integer ids.

The engine works on dense ``int64`` ids; codes are strings only at the edges. A
:class:`CodeTable` assigns ids in first-seen order and never reuses or removes one, so an id
is stable for the life of a state and across snapshots.

Limits (DESIGN §2) are enforced when a code is interned, with an error naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import repeat

import numpy as np
import numpy.typing as npt

from engine.errors import InvalidInput

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
        raise InvalidInput(name, f"{code!r} is not printable ASCII without edge blanks")
    if kind in ("uom", "currency") and code != code.upper():
        raise InvalidInput(name, f"{code!r} must be upper case")
    if kind == "currency" and not (len(code) == 3 and code.isalpha()):
        raise InvalidInput(name, f"{code!r} is not an ISO 4217 alpha-3 code", "3 letters")
    return code


class CodeTable:
    """Bidirectional map code ⇄ dense id for one kind of code.

    Lookups of a batch use C-level iteration (``map`` over the dict), not a Python loop.
    """

    __slots__ = ("_by_id", "_codes", "_index", "kind")

    def __init__(self, kind: str, codes: Iterable[str] = ()) -> None:
        self.kind = kind
        self._codes: list[str] = []
        self._index: dict[str, int] = {}
        self._by_id: npt.NDArray[np.object_] = np.array([""], dtype=object)
        for code in codes:
            self.intern(code)

    def __len__(self) -> int:
        return len(self._codes)

    def __contains__(self, code: object) -> bool:
        return code in self._index

    @property
    def index(self) -> dict[str, int]:
        """The code → id dict itself, for hot loops that test membership (do not mutate)."""
        return self._index

    def intern(self, code: str, field: str | None = None) -> int:
        """Id of ``code``, assigning the next id if it is new (validated first)."""
        found = self._index.get(code)
        if found is not None:
            return found
        validate_code(self.kind, code, field)
        new_id = len(self._codes)
        self._codes.append(code)
        self._index[code] = new_id
        return new_id

    def extend_trusted(self, codes: Iterable[str]) -> None:
        """Append codes already validated and interned elsewhere (a reader catching up with
        the writer's append-only table); they take the next ids in order."""
        for code in codes:
            self._index[code] = len(self._codes)
            self._codes.append(code)

    def get(self, code: str) -> int:
        """Id of ``code`` or -1 when unknown."""
        return self._index.get(code, -1)

    def lookup(self, codes: Sequence[str]) -> npt.NDArray[np.int64]:
        """Ids of a batch of codes, -1 for unknown ones; O(n), no Python-level loop."""
        return np.fromiter(
            map(self._index.get, codes, repeat(-1)), dtype=np.int64, count=len(codes)
        )

    def code(self, code_id: int) -> str:
        """The code of ``code_id``."""
        return self._codes[code_id]

    def codes_at(self, ids: npt.NDArray[np.int64]) -> list[str]:
        """Codes of a batch of ids; "" for -1. O(n) C-level gather, no Python loop.

        The id → code array is rebuilt only after the table has grown.
        """
        if self._by_id.size != len(self._codes) + 1:
            self._by_id = np.array([*self._codes, ""], dtype=object)
        # id -1 indexes the trailing "" slot
        return self._by_id[ids].tolist()  # type: ignore[no-any-return]

    def codes(self) -> list[str]:
        """All codes in id order (a copy)."""
        return list(self._codes)

    def codes_since(self, start: int) -> list[str]:
        """The codes with ids ``start`` and up, in id order (what an append-only follower
        has not seen yet)."""
        return self._codes[start:]

    def to_array(self) -> npt.NDArray[np.bytes_]:
        """Codes as a fixed-width ASCII array, for snapshots."""
        width = max(1, CODE_LIMITS[self.kind])
        return np.array(self._codes, dtype=f"S{width}") if self._codes else np.zeros(0, f"S{width}")

    @classmethod
    def from_array(cls, kind: str, array: npt.NDArray[np.bytes_]) -> CodeTable:
        """Rebuild a table from :meth:`to_array` output (codes were validated when written)."""
        table = cls(kind)
        table._codes = [c.decode("ascii") for c in array.tolist()]
        table._index = {c: i for i, c in enumerate(table._codes)}
        return table
