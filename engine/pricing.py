"""Price resolution for a batch of lines of one account (DESIGN §3–§4).

For each line (SKU, base quantity, line UoM factor) the engine gathers every applicable
contract line of every candidate contract — the SKU line and the product-group lines up the
group chain — selects each one's all-units tier, turns it into an exact rational price per
base unit, and picks the winner with one ``lexsort``:

- policy ``priority``: contract rank (priority, then specificity), SKU line before nearer
  group before farther group, lowest net unit price, lowest contract id; the price list only
  when no contract line applies;
- policy ``lowest_price``: lowest net unit price among contract lines *and* the list price,
  ties broken by the priority order (the list ranks last).

A price per base unit is the exact fraction ``N / D`` (micros): NET ``value / f_line``;
DISCOUNT ``list × (10000 − bps) / (f_list × 10000)``; COST_PLUS ``cost × (10000 + bps) /
10000`` (cost is per base unit, in the item's cost currency, and only applies in that
currency). The unit price in the line's UoM is ``round(N × f_U / D)`` and the extended
amount ``round(qty × f_U × N / D)`` to the currency's minor unit — from the fraction, never
from the rounded unit price. "Net price" in the tie-break is that rounded unit price.

Everything is arrays: there is no Python loop per line, only per price book (≤ 2). Row
gathers of 2-D columns use ``take(axis=0)``: several times cheaper than fancy indexing
at quote sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.arrays import expand_ranges, segment_starts
from engine.catalog import ItemRows, factors_on_items, item_rows
from engine.contexts import AccountContext, Level, level_of
from engine.money import mul_div_round
from engine.state import GROUP_TARGET, LIST_CODE, PRICE_BOOK_BITS, LineKind, State, price_key
from engine.state import contract_line_key as line_key
from engine.table import KeyIndex

__all__ = [
    "BPS",
    "Candidate",
    "Policy",
    "PriceResult",
    "Source",
    "price_lines",
]

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
BPS = 10_000
_BIG = np.iinfo(np.int64).max


class Policy(IntEnum):
    """Resolution policy, a deployment setting (DESIGN §4 step 3)."""

    PRIORITY = 0
    LOWEST_PRICE = 1


class Source(IntEnum):
    """What priced a line."""

    NONE = 0
    CONTRACT = 1
    PRICE_LIST = 2


class Lost(IntEnum):
    """Why a candidate did not price the line (``explain``)."""

    WON = 0
    LOWER_PRIORITY = 1
    LESS_SPECIFIC = 2
    GROUP_LINE = 3  # a SKU line or a nearer group line of the same rank won
    HIGHER_PRICE = 4
    HIGHER_CONTRACT_ID = 5
    BELOW_LOWEST_BREAK = 6
    NO_LIST_PRICE = 7  # DISCOUNT line without a list price
    NO_COST = 8  # COST_PLUS line without a replacement cost in this currency
    UOM_NOT_ON_ITEM = 9  # the line's UoM is not defined for this item
    CONTRACT_WON = 10  # the list price under the priority policy


# plain ints for the hot path (IntEnum attribute access costs a Python call each)
_NET, _DISCOUNT, _COST_PLUS = int(LineKind.NET), int(LineKind.DISCOUNT), int(LineKind.COST_PLUS)
_WON, _LOST_UOM, _LOST_BREAK = (
    int(Lost.WON),
    int(Lost.UOM_NOT_ON_ITEM),
    int(Lost.BELOW_LOWEST_BREAK),
)
_LOST_LIST, _LOST_COST = int(Lost.NO_LIST_PRICE), int(Lost.NO_COST)
_CONTRACT, _PRICE_LIST = int(Source.CONTRACT), int(Source.PRICE_LIST)
_LEVEL_ACCOUNT, _LEVEL_PARENT = int(Level.ACCOUNT), int(Level.PARENT)
_LEVEL_GROUP, _LEVEL_ALL = int(Level.PRICE_GROUP), int(Level.ALL)
_LEVEL_PRICE_LIST, _LEVEL_LIST = int(Level.PRICE_LIST), int(Level.LIST)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One contender for one line, for ``explain``."""

    source: Source
    source_id: int
    level: Level
    target_group: int  # -1: SKU line
    kind: int  # LineKind, 0 for a price list
    tier_index: int
    unit_price_micros: int | None
    lost: Lost


@dataclass(frozen=True, slots=True)
class PriceResult:
    """Columnar pricing answer; row i answers line i. -1 / 0 where a line has no price."""

    priced: B
    overflow: B  # priced, but the extended amount does not fit int64 micros
    unit_price_micros: I64
    extended_micros: I64
    source: npt.NDArray[np.int8]
    source_id: I64
    level: npt.NDArray[np.int8]
    kind: npt.NDArray[np.int8]
    target_group: I64
    tier_index: I64
    tier_min: I64  # the tier's minimum, in ``tier_uom`` (-1: base UoM)
    tier_uom: I64
    next_break_qty: I64  # in the line's UoM; -1 when there is no higher tier
    next_break_unit_price_micros: I64
    candidates: list[list[Candidate]] | None

    def scatter(self, rows: I64, n: int) -> PriceResult:
        """This result (for lines ``rows`` of a batch of ``n``) spread over the whole batch,
        lines not in ``rows`` carrying no price."""
        spread: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if name == "candidates":
                if value is not None:
                    full: list[list[Candidate]] = [[] for _ in range(n)]
                    for row, found in zip(rows.tolist(), value, strict=True):
                        full[row] = found
                    value = full
            else:
                blank = np.full(n, _NO_VALUE.get(name, 0), dtype=value.dtype)
                blank[rows] = value
                value = blank
            spread[name] = value
        return PriceResult(**spread)


#: What a line without a price carries in each column (0 where not listed).
_NO_VALUE = {
    "source_id": -1,
    "level": -1,
    "target_group": -1,
    "tier_index": -1,
    "tier_min": -1,
    "tier_uom": -1,
    "next_break_qty": -1,
}


def _tier_of(
    tier_min: I64, n_tiers: npt.NDArray[np.integer[Any]], base_qty: I64, factor: I64
) -> I64:
    """All-units tier: index of the largest minimum ≤ qty (in base), -1 when none applies.

    ``tier_min × factor ≤ qty`` is tested as ``tier_min ≤ qty // factor`` (exact for
    integers, and it cannot overflow). Unused tier slots hold INT64_MAX.
    """
    units = base_qty // np.maximum(factor, 1)
    count = (tier_min <= units[:, None]).sum(axis=1)
    return np.where(factor > 0, np.minimum(count, n_tiers) - 1, -1)


#: A candidate's *code*: a contract's specificity (0..32, see ``engine.contexts``), a price
#: list (own or LIST), or -1 for no price. Level and source of every code are table lookups.
_CODE_OWN_LIST, _CODE_LIST, _CODE_NONE = 64, 65, -1
_LEVEL_OF_CODE = np.array(
    [int(level_of(s)) for s in range(_CODE_OWN_LIST)] + [_LEVEL_PRICE_LIST, _LEVEL_LIST, -1],
    dtype=np.int8,
)
_SOURCE_OF_CODE = np.array(
    [_CONTRACT] * _CODE_OWN_LIST + [_PRICE_LIST, _PRICE_LIST, 0], dtype=np.int8
)


@dataclass(frozen=True, slots=True)
class _ListPrice:
    """The list price of every line, with the columns a winner needs (one row per line).

    A line without a list price has row, book and tier -1, code -1, factor 1, price 0 and
    no tiers (its other columns are unspecified). ``entries`` keeps where each book's entry
    is and ``books`` what every book's entry offers, so the next-break hint re-resolves the
    list at another quantity (:func:`_relist`) without a lookup or another gather.
    """

    row: I64  # price entry row, -1 when none applies
    book: I64  # price list id
    code: I64  # _CODE_OWN_LIST / _CODE_LIST / -1
    tier: I64
    factor: I64  # factor of the entry's price UoM (≥ 1)
    price: I64  # micros per price UoM at the tier
    uom: npt.NDArray[np.int16]
    tier_min: I64  # (n, MAX_TIERS)
    n_tiers: npt.NDArray[np.int8]
    tier_value: I64  # (n, MAX_TIERS)
    entries: _BookEntries
    books: _BookColumns


@dataclass(frozen=True, slots=True)
class _BookColumns:
    """Every book's entry for every line (row b × n + i: book b, line i), before the choice
    of a book: what decides it at any quantity."""

    safe_row: I64  # price entry row, 0 where the book has none (``usable`` is then False)
    factor: I64  # factor of the entry's price UoM on the line's item (0: not on the item)
    tier_min: I64  # (books × n, MAX_TIERS)
    n_tiers: npt.NDArray[np.int8]
    usable: B  # has an entry that is active and valid on the date


@dataclass(frozen=True, slots=True)
class _BookEntries:
    """Each line's entry in each price book that can price it, in the order they are
    tried: the account's own list, then LIST (at most 2 books)."""

    book: list[int]
    code: list[int]
    row: I64  # (books, n): price entry row, -1 where the book has none for the SKU


_BOOK_MASK = (1 << PRICE_BOOK_BITS) - 1  # the (price list, currency) bits of a price key


def _book_entries(state: State, ctx: AccountContext, sku: I64) -> _BookEntries:
    """Find each line's entry in the own list and in LIST with one pass over the SKUs'
    short price runs (every book and currency of a SKU sits in one run)."""
    list_id = state.price_lists.get(LIST_CODE)
    pairs = [(ctx.own_price_list, _CODE_OWN_LIST), (list_id, _CODE_LIST)]
    books = [(book, code) for book, code in pairs if book >= 0]
    row = np.full((len(books), sku.size), -1, dtype=np.int64)
    index = state.price_index
    if books and len(index):
        which, pos = expand_ranges(*index.prefix_ranges(sku))
        book_bits = index.keys[pos] & _BOOK_MASK
        for b, (book, _) in enumerate(books):  # ≤ 2 books
            hit = np.nonzero(book_bits == price_key(book, ctx.currency, 0))[0]
            row[b, which[hit]] = index.rows[pos[hit]]
    return _BookEntries([b for b, _ in books], [c for _, c in books], row)


def _list_prices(
    state: State,
    ctx: AccountContext,
    entries: _BookEntries,
    uom_code: npt.NDArray[np.int16],
    uom_factor: I64,
    base_qty: I64,
) -> _ListPrice:
    """The account's own price list where it has a valid price, else LIST (DESIGN §4.4).

    ``entries``, ``uom_code`` and ``uom_factor`` are per line (see :func:`_book_entries`
    and ``ItemRows``). Every
    book's entry is evaluated in the same array pass (books × lines rows); the first book
    whose entry is active, valid on the date and has a tier at the quantity wins.
    """
    prices = state.prices
    n_books, n = entries.row.shape
    row = entries.row.reshape(-1)
    safe = np.maximum(row, 0)
    line = np.arange(row.size) % max(n, 1)  # book b's row for line i is b × n + i
    uom = prices["uom"].take(safe)
    factor = factors_on_items(uom_code.take(line, axis=0), uom_factor.take(line, axis=0), uom)
    tier_min, n_tiers = prices["tier_min"].take(safe, axis=0), prices["n_tiers"].take(safe)
    tier = _tier_of(tier_min, n_tiers, base_qty.take(line), factor)
    ok = row >= 0
    ok &= prices["active"].take(safe)
    ok &= prices["valid_from"].take(safe) <= ctx.date
    ok &= prices["valid_to"].take(safe) > ctx.date
    books = _BookColumns(safe, factor, tier_min, n_tiers, ok.copy())
    ok &= tier >= 0
    # the first book that prices each line; "none" lines keep book 0's (unused) columns
    chosen = ok.reshape(n_books, n).argmax(axis=0) if n_books > 1 else np.zeros(n, np.int64)
    none = ~ok.reshape(n_books, n).any(axis=0) if n_books else np.ones(n, np.bool_)
    if n_books > 1 and chosen.any():
        pick = chosen * n + np.arange(n)
        row, safe, tier, factor = row[pick], safe[pick], tier[pick], factor[pick]
        uom, tier_min, n_tiers = uom[pick], tier_min[pick], n_tiers[pick]
    elif n_books:
        row, safe, tier, factor = row[:n].copy(), safe[:n], tier[:n], factor[:n]
        uom, tier_min, n_tiers = uom[:n], tier_min[:n], n_tiers[:n]
    else:  # no price book at all
        row, safe, tier, factor = np.full((4, n), -1, dtype=np.int64)
        uom, n_tiers = row.astype(np.int16), row.astype(np.int8)
        tier_min = np.zeros((n, prices["tier_min"].shape[1]), dtype=np.int64)
        safe = np.zeros(n, dtype=np.int64)
    tier_value = prices["tier_value"].take(safe, axis=0)
    price = tier_value[np.arange(n), np.maximum(tier, 0)]
    book_ids = np.array([*entries.book, -1], dtype=np.int64)
    codes = np.array([*entries.code, _CODE_NONE], dtype=np.int64)
    if none.any():
        chosen[none] = len(entries.book)
        row[none] = -1
        tier[none] = -1
        factor[none] = 1
        n_tiers[none] = 0
        price[none] = 0
    return _ListPrice(
        row, book_ids[chosen], codes[chosen], tier, factor, price, uom, tier_min, n_tiers,
        tier_value, entries, books,
    )  # fmt: skip


def _relist(state: State, lp: _ListPrice, at: I64, base_qty: I64) -> tuple[I64, I64]:
    """(price, factor) of the list price lines ``at`` get at ``base_qty`` instead: the
    first book whose entry is usable and has a tier there, as :func:`_list_prices` picks
    (price 0 and factor 1 where none does)."""
    n_books, n = lp.entries.row.shape
    m = at.size
    if n_books == 0:
        return np.zeros(m, dtype=np.int64), np.ones(m, dtype=np.int64)
    books = lp.books
    pick = (np.arange(n_books)[:, None] * n + at[None, :]).ravel()  # book-major, like rows
    factor = books.factor[pick]
    tier = _tier_of(
        books.tier_min.take(pick, axis=0), books.n_tiers[pick], np.tile(base_qty, n_books), factor
    )
    ok = (books.usable[pick] & (tier >= 0)).reshape(n_books, m)
    chosen = ok.argmax(axis=0) * m + np.arange(m)
    price = state.prices["tier_value"].take(books.safe_row[pick[chosen]], axis=0)[
        np.arange(m), np.maximum(tier[chosen], 0)
    ]
    factor = factor[chosen]
    none = ~ok.any(axis=0)
    price[none] = 0
    factor[none] = 1
    return price, factor


@dataclass(frozen=True, slots=True)
class _Hits:
    """Every (line, contract line) pair that could price a line, before selection."""

    line: I64
    row: I64  # contract line row
    contract: I64
    code: npt.NDArray[np.int32]  # the contract's specificity
    rank: I64
    depth: I64  # 0: SKU line, k: k-th group up the chain
    target: I64  # the product group of a group line, -1 for a SKU line
    kind: I64
    factor: I64  # factor of the contract line's UoM for the line's SKU
    uom: npt.NDArray[np.int16]
    tier_min: I64  # (hits, MAX_TIERS)
    n_tiers: npt.NDArray[np.int8]
    tier_value: I64  # (hits, MAX_TIERS)
    tier: I64
    numerator: I64  # 0 where the hit does not apply
    denominator: I64
    applies: B
    has_list: B
    has_cost: B


_CONTRACT_MASK = (1 << 30) - 1  # the contract id bits of a contract-line key


def _sku_lines(state: State, ctx: AccountContext, sku: I64) -> tuple[I64, I64]:
    """Rows of the candidates' SKU lines for each line, as (rows, line index).

    A popular SKU (one with a dense row in the index, ``KeyIndex.refresh_dense``) reads
    its candidates' rows with one gather. Any other SKU takes the cheaper of two exact
    lookups: *scan* its contract lines (sorted by contract, read sequentially from the key
    column) and keep the candidates' — or, when it is on more contracts than the account
    has candidates, *probe* the key (SKU, contract) of each candidate. Each line's rows
    come in contract id order.
    """
    index = state.line_index
    candidates = ctx.candidates_by_id
    slot_of = index.dense_slot
    if slot_of.size:
        slot = slot_of.take(np.minimum(sku, slot_of.size - 1))
        slot[sku >= slot_of.size] = -1
        covered = np.nonzero(slot >= 0)[0]
        if covered.size:
            width = index.dense_width()
            # a covered SKU has no line of a contract beyond the width (the invariant)
            columns = candidates[candidates < width]
            found = index.dense.reshape(-1).take(
                (slot[covered].astype(np.int64) * width)[:, None] + columns
            )
            hit_line, _ = np.nonzero(found)
            dense_rows = found[found > 0].astype(np.int64) - 1
            dense_line = covered[hit_line]
            rest = np.nonzero(slot < 0)[0]
            if rest.size == 0:
                return dense_rows, dense_line
            scan_rows, scan_line = _sorted_sku_lines(index, candidates, ctx, sku[rest])
            return (
                np.concatenate([dense_rows, scan_rows]),
                np.concatenate([dense_line, rest[scan_line]]),
            )
    return _sorted_sku_lines(index, candidates, ctx, sku)


def _sorted_sku_lines(
    index: KeyIndex, candidates: I64, ctx: AccountContext, sku: I64
) -> tuple[I64, I64]:
    """:func:`_sku_lines` over the sorted keys alone (SKUs without a dense row)."""
    low, high = index.prefix_ranges(sku)
    # a probe is a binary search over millions of keys (cache misses); a scan reads keys
    # in sequence: measured at the large scale (50 and 1,000-line carts), probing a SKU
    # with more than ~20 keys per candidate is the cheaper side
    probe = (high - low) > 20 * candidates.size
    scanned = np.nonzero(~probe)[0]
    which, pos = expand_ranges(low[scanned], high[scanned])
    keep = np.nonzero(ctx.is_candidate[index.keys[pos] & _CONTRACT_MASK])[0]
    scan_line = scanned[which[keep]]
    scan_rows = index.rows[pos[keep]]
    probed = np.nonzero(probe)[0]
    if probed.size == 0:
        return scan_rows, scan_line
    needles = (line_key(sku[probed], 0)[:, None] | candidates[None, :]).ravel()
    at = np.minimum(np.searchsorted(index.keys, needles), index.keys.size - 1)
    found = np.nonzero(index.keys[at] == needles)[0]
    probe_line = probed[found // candidates.size]
    return (
        np.concatenate([scan_rows, index.rows[at[found]]]),
        np.concatenate([scan_line, probe_line]),
    )


def _contract_hits(
    state: State, ctx: AccountContext, sku: I64, items: ItemRows, base_qty: I64, lp: _ListPrice
) -> _Hits | None:
    if ctx.candidates.size == 0 or len(state.line_index) == 0:
        return None
    lines = state.lines
    sku_rows, sku_line = _sku_lines(state, ctx, sku)
    # group lines: only the candidates' own, from the context's small index
    if ctx.group_keys.size:
        group = items.product_group
        chain = state.groups["chain"].take(np.maximum(group, 0), axis=0)
        slots = np.nonzero((chain >= 0) & (group >= 0)[:, None])
        wanted = chain[slots].astype(np.int64)
        g_which, g_pos = expand_ranges(
            np.searchsorted(ctx.group_keys, wanted),
            np.searchsorted(ctx.group_keys, wanted, side="right"),
        )
        rows = np.concatenate([sku_rows, ctx.group_rows[g_pos]])
        line = np.concatenate([sku_line, slots[0][g_which]])
        depth = np.concatenate([np.zeros(sku_rows.size, np.int64), slots[1][g_which] + 1])
        target = np.concatenate([np.full(sku_rows.size, -1, np.int64), wanted[g_which]])
    else:
        rows, line = sku_rows, sku_line
        depth = np.zeros(rows.size, np.int64)
        target = np.full(rows.size, -1, np.int64)
    if rows.size == 0:
        return None
    active = lines["active"][rows]
    if not active.all():
        live = np.nonzero(active)[0]
        if live.size == 0:
            return None
        rows, line, depth, target = rows[live], line[live], depth[live], target[live]
    contract = lines["contract"][rows].astype(np.int64)
    kind = lines["kind"][rows].astype(np.int64)
    uom = lines["uom"][rows]
    factor = factors_on_items(items.uom_code[line], items.uom_factor[line], uom)
    tier_min, n_tiers = lines["tier_min"].take(rows, axis=0), lines["n_tiers"][rows]
    tier = _tier_of(tier_min, n_tiers, base_qty[line], factor)
    tier_value = lines["tier_value"].take(rows, axis=0)
    value = tier_value[np.arange(rows.size), np.maximum(tier, 0)]

    cost = items.cost_micros[line]
    has_cost = (cost >= 0) & (items.cost_currency[line] == ctx.currency)
    has_list = lp.row[line] >= 0
    net, discount = kind == _NET, kind == _DISCOUNT
    numerator = np.where(
        net, value, np.where(discount, lp.price[line] * (BPS - value), cost * (BPS + value))
    )
    # (a list price's factor is ≥ 1, and 1 where there is none)
    denominator = np.where(
        net, np.maximum(factor, 1), np.where(discount, lp.factor[line] * BPS, BPS)
    )
    # tier ≥ 0 implies the UoM is on the item (factor > 0); see _lost for the reasons
    applies = (tier >= 0) & (has_list | ~discount) & (has_cost | (kind != _COST_PLUS))
    numerator = np.where(applies, numerator, 0)
    return _Hits(
        line, rows, contract, ctx.specificity[contract], ctx.rank[contract].astype(np.int64),
        depth, target, kind, factor, uom, tier_min, n_tiers, tier_value, tier, numerator,
        denominator, applies, has_list, has_cost,
    )  # fmt: skip


def _lost(hits: _Hits) -> I64:
    """Why each hit does not apply (WON where it does)."""
    return np.where(
        hits.factor <= 0,
        _LOST_UOM,
        np.where(
            hits.tier < 0,
            _LOST_BREAK,
            np.where(
                (hits.kind == _DISCOUNT) & ~hits.has_list,
                _LOST_LIST,
                np.where((hits.kind == _COST_PLUS) & ~hits.has_cost, _LOST_COST, _WON),
            ),
        ),
    ).astype(np.int64)


def price_lines(
    state: State,
    ctx: AccountContext,
    sku: I64,
    base_qty: I64,
    factor_u: I64,
    min_order_qty: I64,
    order_multiple: I64,
    micros_per_minor: int,
    policy: Policy = Policy.PRIORITY,
    explain: bool = False,
    items: ItemRows | None = None,
) -> PriceResult:
    """Price a batch of lines of one account (all SKUs known and orderable).

    ``base_qty`` is qty × ``factor_u`` (the line UoM's factor). ``items``: the SKUs' item
    rows when the caller has them (gathered here otherwise). Cost is O(n + hits) array
    work plus one lexsort over the hits; no Python loop per line unless ``explain``.

    Candidates are the hits (rows 0..H-1) followed by one list-price row per line (H + i;
    a line without a list price has a "no price" row there), so every answer column is one
    gather by the winning candidate.
    """
    n = sku.size
    if items is None:
        items = item_rows(state, sku)
    lp = _list_prices(
        state, ctx, _book_entries(state, ctx, sku), items.uom_code, items.uom_factor, base_qty
    )
    hits = _contract_hits(state, ctx, sku, items, base_qty, lp)
    n_hits = 0 if hits is None else hits.line.size

    def cat(hit_column: str, list_column: Any) -> Any:
        """A column over all candidates: the hits' ``hit_column``, then the list rows."""
        if hits is None:
            return list_column
        return np.concatenate((getattr(hits, hit_column), list_column))

    numerator = cat("numerator", lp.price)
    denominator = cat("denominator", lp.factor)
    unit, unit_fits = mul_div_round(numerator, factor_u[cat("line", np.arange(n))], denominator)

    # the net price a candidate is compared on; one beyond int64 micros is never "lowest"
    price_key = np.where(unit_fits, unit, _BIG)
    win = np.arange(n_hits, n_hits + n)  # candidate per line: its list row unless a hit wins
    if hits is not None:
        ok = np.nonzero(hits.applies)[0]
        if ok.size:
            # DESIGN §4 step 2: a contract offers one line per request line — its SKU line,
            # else the nearest group line up the chain, among the lines that apply
            nearest = ok[np.lexsort((hits.depth[ok], hits.contract[ok], hits.line[ok]))]
            ok = nearest[segment_starts(hits.line[nearest], hits.contract[nearest])]
            code = ctx.code_order[hits.contract[ok]]
            if policy == Policy.PRIORITY:
                keys = (code, price_key[ok], hits.depth[ok], hits.rank[ok])
            else:
                keys = (code, hits.depth[ok], hits.rank[ok], price_key[ok])
            order = ok[np.lexsort((*keys, hits.line[ok]))]
            sorted_line = hits.line[order]
            first = np.empty(order.size, dtype=np.bool_)
            first[0] = True
            np.not_equal(sorted_line[1:], sorted_line[:-1], out=first[1:])
            win[sorted_line[first]] = order[first]
        if policy == Policy.LOWEST_PRICE:
            # the list price beats the best contract line only when strictly lower
            better = np.nonzero((lp.row >= 0) & (price_key[n_hits:] < price_key[win]))[0]
            win[better] = better + n_hits

    code_w = cat("code", lp.code)[win]
    priced = code_w >= 0
    num_w, den_w = numerator[win], denominator[win]
    extended, fits = mul_div_round(base_qty, num_w, den_w, micros_per_minor)
    fits &= unit_fits[win]  # a unit price beyond int64 micros is an overflow, even for 0 units
    tier = cat("tier", lp.tier)[win]
    tier_table = cat("tier_min", lp.tier_min)
    tier_min = tier_table[win, tier]
    tier_uom = cat("uom", lp.uom)[win].astype(np.int64)
    unpriced = np.nonzero(code_w < 0)[0]
    if unpriced.size:
        tier_min[unpriced] = -1
        tier_uom[unpriced] = -1
    kind = (
        np.zeros(n, dtype=np.int8)
        if hits is None
        else np.concatenate((hits.kind, np.zeros(n, dtype=np.int64)))[win].astype(np.int8)
    )
    target_group = (
        np.full(n, -1, dtype=np.int64)
        if hits is None
        else np.concatenate((hits.target, np.full(n, -1, dtype=np.int64)))[win]
    )

    # Next-break hint: the winner's next tier, as a quantity in the line's UoM that also
    # honours the sell rules, and the unit price the same line gives there. Only for the
    # lines whose winner has a next tier (a line without a price has no tiers).
    next_qty = np.full(n, -1, dtype=np.int64)
    next_unit = np.zeros(n, dtype=np.int64)
    tier_count = cat("n_tiers", lp.n_tiers)
    nx = np.nonzero(tier + 1 < tier_count[win])[0]
    if nx.size:
        c = win[nx]
        table = tier_table.take(c, axis=0)
        n_tiers = tier_count[c]
        next_min = table[np.arange(nx.size), np.minimum(tier[nx] + 1, table.shape[1] - 1)]
        line_factor = cat("factor", lp.factor)[c]  # ≥ 1: the winner's tier applies
        unit_factor = factor_u[nx]
        safe_unit = np.maximum(unit_factor, 1)
        step = np.lcm(safe_unit, np.maximum(order_multiple[nx], 1))
        needed = np.maximum(next_min * line_factor, min_order_qty[nx])
        next_base_qty = -(-needed // step) * step
        next_qty[nx] = next_base_qty // safe_unit
        # Rounding up to whole UoMs or to the order multiple can skip past the next tier:
        # price the hint at the tier its own quantity falls in.
        hint_tier = _tier_of(table, n_tiers, next_base_qty, line_factor)
        value = cat("tier_value", lp.tier_value)[c, np.maximum(hint_tier, 0)]
        hint_den = den_w[nx]
        if hits is not None:
            value, hint_den = _next_numerator(
                state, hits, lp, items, c, nx, value, hint_den, next_base_qty
            )
        hint_unit, hint_fits = mul_div_round(value, unit_factor, hint_den)
        next_unit[nx] = hint_unit
        lost_hint = nx[~hint_fits]  # a next-break price beyond int64 micros: no hint
        next_qty[lost_hint] = -1
        next_unit[lost_hint] = 0

    candidates = _explain(state, ctx, n, hits, unit, win, lp, policy) if explain else None
    return PriceResult(
        priced=priced,
        overflow=~fits,  # a line without a price has amount 0, which fits
        unit_price_micros=unit[win],
        extended_micros=extended,  # 0 where it does not fit, and without a price
        source=_SOURCE_OF_CODE[code_w],
        source_id=cat("contract", lp.book)[win],
        level=_LEVEL_OF_CODE[code_w],
        kind=kind,
        target_group=target_group,
        tier_index=tier,
        tier_min=tier_min,
        tier_uom=tier_uom,
        next_break_qty=next_qty,
        next_break_unit_price_micros=next_unit,
        candidates=candidates,
    )


def _next_numerator(
    state: State,
    hits: _Hits,
    lp: _ListPrice,
    items: ItemRows,
    candidate: I64,
    line: I64,
    value: I64,
    denominator: I64,
    base_qty: I64,
) -> tuple[I64, I64]:
    """Each winner's price at the hint quantity as (numerator, denominator): ``value``
    itself for a price list or a NET line.

    A DISCOUNT line is re-based on the list price *resolved again* at the hint quantity —
    the account's own list may apply there where it did not below its first break, and
    the list's tier may be higher; a COST_PLUS line marks up the cost.
    """
    n_hits = hits.line.size
    kind = np.zeros(candidate.size, dtype=np.int64)
    from_hits = candidate < n_hits
    kind[from_hits] = hits.kind[candidate[from_hits]]
    value, denominator = value.copy(), denominator.copy()
    discount = np.nonzero(kind == _DISCOUNT)[0]
    if discount.size:
        list_price, list_factor = _relist(state, lp, line[discount], base_qty[discount])
        value[discount] = list_price * (BPS - value[discount])
        denominator[discount] = list_factor * BPS
    cost_plus = np.nonzero(kind == _COST_PLUS)[0]
    if cost_plus.size:
        cost = items.cost_micros[line[cost_plus]]
        value[cost_plus] = cost * (BPS + value[cost_plus])
    return value, denominator


def _explain(
    state: State,
    ctx: AccountContext,
    n: int,
    hits: _Hits | None,
    unit: I64,
    win: I64,
    lp: _ListPrice,
    policy: Policy,
) -> list[list[Candidate]]:
    """Every candidate of every line and why it lost (only when the caller asks)."""
    out: list[list[Candidate]] = [[] for _ in range(n)]
    list_id = state.price_lists.get(LIST_CODE)
    n_hits = 0 if hits is None else hits.line.size
    if hits is not None:
        priority = state.contract_rows["priority"]
        lost_codes = _lost(hits)
        for h in range(n_hits):
            line = int(hits.line[h])
            lost = Lost(int(lost_codes[h]))
            w = int(win[line])
            if lost == Lost.WON and w != h:
                lost = (
                    _why_lost(hits, unit, priority, h, w, policy)
                    if w < n_hits
                    else Lost.HIGHER_PRICE
                )
            depth = int(hits.depth[h])
            target = int(state.lines["target"][hits.row[h]]) - GROUP_TARGET if depth else -1
            out[line].append(
                Candidate(
                    Source.CONTRACT,
                    int(hits.contract[h]),
                    level_of(int(ctx.specificity[hits.contract[h]])),
                    target,
                    int(hits.kind[h]),
                    int(hits.tier[h]),
                    int(unit[h]) if lost_codes[h] == Lost.WON else None,
                    lost,
                )
            )
    for line in range(n):
        if lp.row[line] < 0:
            continue
        if win[line] >= n_hits:
            lost = Lost.WON
        elif policy == Policy.PRIORITY:
            lost = Lost.CONTRACT_WON
        else:
            lost = Lost.HIGHER_PRICE
        out[line].append(
            Candidate(
                Source.PRICE_LIST,
                int(lp.book[line]),
                Level.LIST if lp.book[line] == list_id else Level.PRICE_LIST,
                -1,
                0,
                int(lp.tier[line]),
                int(unit[n_hits + line]),
                lost,
            )
        )
    return out


def _why_lost(
    hits: _Hits, unit: I64, priority: npt.NDArray[np.int32], h: int, w: int, policy: Policy
) -> Lost:
    """The first ordering key on which candidate ``h`` is worse than the winner ``w``."""
    if policy == Policy.LOWEST_PRICE and unit[h] != unit[w]:
        return Lost.HIGHER_PRICE
    if hits.rank[h] != hits.rank[w]:
        same_priority = priority[hits.contract[h]] == priority[hits.contract[w]]
        return Lost.LESS_SPECIFIC if same_priority else Lost.LOWER_PRIORITY
    if hits.depth[h] != hits.depth[w]:
        return Lost.GROUP_LINE
    if unit[h] != unit[w]:
        return Lost.HIGHER_PRICE
    return Lost.HIGHER_CONTRACT_ID
