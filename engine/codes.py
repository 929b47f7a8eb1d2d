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


#: Bulk lookups of at least this many codes (those the recent codes did not answer), in
#: tables of at least this many codes, go through :class:`_BulkIndex`; below either, the
#: dict is as fast. Measured in the 1M-SKU
#: table, fresh strings, µs per batch (dict / bulk): 64 codes 82 / 161, 256: 243 / 281,
#: 512: 481 / 385, 1,000: 917 / 547.
BULK_MIN_QUERY = 512
BULK_MIN_TABLE = 1 << 16
#: Tables of at least BULK_MIN_TABLE codes answer every batch from a dict of up to this
#: many recently found codes first (about 9 MB when full, keys included). A lookup in the
#: full dict is a chain of cache misses (index slot, entry, key string) across a heap of 1M
#: strings — ~1.5 µs a code inside a quote at 1M SKUs; the recent codes' dict stays in
#: cache, and SKU popularity in requests is Zipf-like (DESIGN §10), so most codes of a cart
#: are recent. Ids never change, so a remembered id is never stale; unknown codes are never
#: remembered. Emptied when full.
RECENT_CODES = 1 << 16
_M1, _M2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9)
_EMPTY = np.uint64(0)


def _hash(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of each row of 8-byte words (never 0: 0 marks an empty slot)."""
    h = np.full(words.shape[0], _M1, dtype=np.uint64)
    for j in range(words.shape[1]):
        h ^= words[:, j]
        h *= _M2  # wraps modulo 2**64, as intended
    h ^= h >> np.uint64(31)
    h |= np.uint64(1)
    return h


class _BulkIndex:
    """An open-addressing hash table over a large table's codes, for batches of lookups.

    A dict lookup is a chain of dependent cache misses (index slot, entry, key) with the
    interpreter between two lookups; at 1M SKUs that is ~0.3–0.7 µs per code. Here a
    batch is hashed and probed in a few numpy passes whose independent memory reads
    overlap: ~0.2 µs per code at 20k codes. Every hit is confirmed on the stored bytes
    and the length, so a hash collision can never return another code's id.

    Holds the codes as fixed-width ASCII (``width``, a multiple of 8) and their lengths;
    append-only like the table. Not safe for non-ASCII or non-str queries: the caller
    checks (:meth:`CodeTable.lookup`).
    """

    __slots__ = ("capacity", "lengths", "n", "slot_hash", "slot_id", "width", "words")

    def __init__(self, codes: list[str]) -> None:
        self.width = max(8, -(-max(map(len, codes), default=1) // 8) * 8)
        self.capacity = 1 << max(10, (2 * len(codes) - 1).bit_length())  # load ≤ 1/2
        self.slot_hash = np.zeros(self.capacity, dtype=np.uint64)
        self.slot_id = np.full(self.capacity, -1, dtype=np.int32)  # ids stay below 2**31
        self.words = np.zeros((0, self.width // 8), dtype=np.uint64)
        self.lengths = np.zeros(0, dtype=np.int16)  # codes are at most 64 characters
        self.n = 0
        self.extend(codes)

    def fits(self, codes: list[str]) -> bool:
        """Whether ``codes`` can be added without a rebuild (width and load factor)."""
        longest = max(map(len, codes), default=0)
        return longest <= self.width and 2 * (self.n + len(codes)) <= self.capacity

    def _words(self, codes: Sequence[str]) -> npt.NDArray[np.uint64]:
        raw = np.array(codes, dtype=f"S{self.width}")
        return raw.view(np.uint64).reshape(len(codes), self.width // 8)

    def extend(self, codes: list[str]) -> None:
        """Add the next codes (ids ``n``, ``n + 1``, …); they must :meth:`fits`."""
        if not codes:
            return
        words = self._words(codes)
        ids = np.arange(self.n, self.n + len(codes), dtype=np.int64)
        hashes = _hash(words)
        mask = self.capacity - 1
        pos = (hashes & np.uint64(mask)).astype(np.int64)
        todo = np.arange(len(codes))
        while todo.size:  # linear probing; codes racing for one free slot: first one wins
            free = self.slot_hash[pos[todo]] == _EMPTY
            claim = todo[free]
            _, first = np.unique(pos[claim], return_index=True)
            won = claim[first]
            self.slot_hash[pos[won]] = hashes[won]
            self.slot_id[pos[won]] = ids[won]
            placed = np.zeros(len(codes), dtype=np.bool_)
            placed[won] = True
            todo = todo[~placed[todo]]
            pos[todo] = (pos[todo] + 1) & mask
        self.words = np.concatenate([self.words, words])
        self.lengths = np.concatenate(
            [self.lengths, np.fromiter(map(len, codes), np.int16, len(codes))]
        )
        self.n += len(codes)

    def lookup(self, queries: Sequence[str]) -> npt.NDArray[np.int64]:
        """Ids of ASCII ``str`` queries, -1 where absent."""
        n = len(queries)
        length = np.fromiter(map(len, queries), np.int64, n)
        if n and int(length.max()) > self.width:
            # numpy would cut a longer query to the width; it cannot be a stored code
            queries = [q if len(q) <= self.width else "" for q in queries]
        words = self._words(queries)
        hashes = _hash(words)
        found = np.full(n, -1, dtype=np.int64)
        mask = self.capacity - 1
        pos = (hashes & np.uint64(mask)).astype(np.int64)
        active = np.flatnonzero(length <= self.width)
        pos = pos[active]
        while active.size:
            seen = self.slot_hash[pos]
            settled = seen == _EMPTY  # an empty slot ends the probe: absent
            hit = np.flatnonzero(seen == hashes[active])
            if hit.size:
                query, code = active[hit], self.slot_id[pos[hit]]
                same = (self.words[code] == words[query]).all(axis=1)
                same &= self.lengths[code] == length[query]  # b"AB" and "AB\x00" differ
                found[query[same]] = code[same]
                settled[hit[same]] = True
            active, pos = active[~settled], (pos[~settled] + 1) & mask
        return found


class CodeTable:
    """Bidirectional map code ⇄ dense id for one kind of code.

    Lookups of a batch use C-level iteration (``map`` over the dict), not a Python loop.
    """

    __slots__ = ("_bulk", "_by_id", "_codes", "_index", "_recent", "kind")

    def __init__(self, kind: str, codes: Iterable[str] = ()) -> None:
        self.kind = kind
        self._codes: list[str] = []
        self._index: dict[str, int] = {}
        self._by_id: npt.NDArray[np.object_] = np.array([""], dtype=object)
        self._bulk: _BulkIndex | None = None  # built on the first large batch lookup
        self._recent: dict[str, int] = {}  # see RECENT_CODES
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

    def lookup(self, codes: Sequence[str], *, remember: bool = True) -> npt.NDArray[np.int64]:
        """Ids of a batch of codes, -1 for unknown ones; O(n), no Python-level loop.

        In large tables the dict of recently found codes answers first
        (:data:`RECENT_CODES`) and learns the codes found; ``remember=False`` skips it, for
        loaders: a change stream's codes are not a request's, and would only push a
        request's popular codes out. Codes it does not answer go through a numpy hash table
        (:class:`_BulkIndex`) when there are many and all are ASCII ``str``, else through
        the full dict."""
        if not remember or len(self._codes) < BULK_MIN_TABLE:
            return self._lookup_in_table(codes)
        n = len(codes)
        recent = self._recent
        found = np.fromiter(map(recent.get, codes, repeat(-1)), dtype=np.int64, count=n)
        missed = np.flatnonzero(found < 0)
        if missed.size == 0:
            return found
        if len(recent) + missed.size > RECENT_CODES:
            recent.clear()
        rest = [codes[i] for i in missed.tolist()]
        looked_up = self._lookup_in_table(rest)
        found[missed] = looked_up
        known = np.flatnonzero(looked_up >= 0).tolist()
        recent.update(zip([rest[i] for i in known], looked_up[known].tolist(), strict=True))
        return found

    def _lookup_in_table(self, codes: Sequence[str]) -> npt.NDArray[np.int64]:
        """Ids from the table itself: the bulk index for large batches in large tables,
        else the dict."""
        if len(codes) >= BULK_MIN_QUERY and len(self._codes) >= BULK_MIN_TABLE:
            found = self._bulk_lookup(codes)
            if found is not None:
                return found
        return np.fromiter(
            map(self._index.get, codes, repeat(-1)), dtype=np.int64, count=len(codes)
        )

    def prepare_bulk(self) -> None:
        """Build the bulk-lookup index now if this table is large enough to use it (a host
        calls this at load, so the first large batch does not pay for it: ~0.3 s and
        ~40 MB at 1M SKUs)."""
        if len(self._codes) >= BULK_MIN_TABLE:
            self._bulk_index()

    def _bulk_index(self) -> _BulkIndex:
        """The bulk index, brought level with the table (rebuilt when it cannot grow)."""
        bulk = self._bulk
        new = self._codes[bulk.n :] if bulk is not None else self._codes
        if bulk is None or not bulk.fits(new):
            self._bulk = bulk = _BulkIndex(self._codes)
        elif new:
            bulk.extend(new)
        return bulk

    def _bulk_lookup(self, codes: Sequence[str]) -> npt.NDArray[np.int64] | None:
        if set(map(type, codes)) != {str}:
            return None  # None, ints, …: the dict answers -1 for them
        bulk = self._bulk_index()
        try:
            return bulk.lookup(codes)
        except UnicodeEncodeError:  # a non-ASCII query: no code matches it, the dict says so
            return None

    def forget_recent(self) -> None:
        """Empty the recently-found codes (:data:`RECENT_CODES`): the next lookups pay what
        a code nobody asked for recently costs (the engine's cold-cart benchmark). O(1)."""
        self._recent.clear()

    def copy(self) -> CodeTable:
        """An independent table with the same codes and ids (its bulk-lookup index built
        if this one has one; the recent-codes cache starts empty). O(codes)."""
        table = CodeTable(self.kind)
        table._codes = list(self._codes)
        table._index = dict(self._index)
        if self._bulk is not None:
            table.prepare_bulk()
        return table

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
