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

Everything is arrays: there is no Python loop per line, only per price book (≤ 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.arrays import expand_ranges
from engine.catalog import uom_factors
from engine.contexts import AccountContext, Level, level_of
from engine.money import mul_div_round
from engine.state import GROUP_TARGET, LIST_CODE, LineKind, State, price_key
from engine.state import contract_line_key as line_key

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


def _tier_of(tier_min: I64, n_tiers: I64, base_qty: I64, factor: I64) -> I64:
    """All-units tier: index of the largest minimum ≤ qty (in base), -1 when none applies.

    ``tier_min × factor ≤ qty`` is tested as ``tier_min ≤ qty // factor`` (exact for
    integers, and it cannot overflow). Unused tier slots hold INT64_MAX.
    """
    units = base_qty // np.maximum(factor, 1)
    count = (tier_min <= units[:, None]).sum(axis=1)
    return np.where(factor > 0, np.minimum(count, n_tiers) - 1, -1)


@dataclass(frozen=True, slots=True)
class _ListPrice:
    row: I64  # price entry row, -1 when none applies
    book: I64  # price list id
    tier: I64
    factor: I64  # factor of the entry's price UoM
    price: I64  # micros per price UoM at the tier


def _list_prices(state: State, ctx: AccountContext, sku: I64, base_qty: I64) -> _ListPrice:
    """The account's own price list where it has a valid price, else LIST (DESIGN §4.4)."""
    n = sku.size
    prices = state.prices
    out_row = np.full(n, -1, dtype=np.int64)
    out_book = np.full(n, -1, dtype=np.int64)
    out_tier = np.full(n, -1, dtype=np.int64)
    out_factor = np.zeros(n, dtype=np.int64)
    books = [b for b in (ctx.own_price_list, state.price_lists.get(LIST_CODE)) if b >= 0]
    for book in books:
        if len(state.price_index) == 0:
            break
        row = state.price_index.find_by_prefix(price_key(book, ctx.currency, sku))
        safe = np.maximum(row, 0)
        factor = uom_factors(state, sku, prices["uom"][safe].astype(np.int64))
        tier = _tier_of(prices["tier_min"][safe], prices["n_tiers"][safe], base_qty, factor)
        ok = (
            (row >= 0)
            & prices["active"][safe]
            & (prices["valid_from"][safe] <= ctx.date)
            & (ctx.date < prices["valid_to"][safe])
            & (tier >= 0)
            & (out_row < 0)
        )
        out_row = np.where(ok, row, out_row)
        out_book = np.where(ok, book, out_book)
        out_tier = np.where(ok, tier, out_tier)
        out_factor = np.where(ok, factor, out_factor)
    safe = np.maximum(out_row, 0)
    price = prices["tier_value"][safe, np.maximum(out_tier, 0)]
    return _ListPrice(out_row, out_book, out_tier, out_factor, np.where(out_row >= 0, price, 0))


@dataclass(frozen=True, slots=True)
class _Hits:
    """Every (line, contract line) pair that could price a line, before selection."""

    line: I64
    row: I64  # contract line row
    contract: I64
    rank: I64
    depth: I64  # 0: SKU line, k: k-th group up the chain
    kind: I64
    factor: I64  # factor of the contract line's UoM for the line's SKU
    tier: I64
    numerator: I64
    denominator: I64
    unit_price: I64  # in the request line's UoM, rounded: the net-price tie-break
    lost: I64  # Lost code; WON (0) means "applies"


_CONTRACT_MASK = (1 << 30) - 1  # the contract id bits of a contract-line key


def _sku_lines(state: State, ctx: AccountContext, sku: I64) -> tuple[I64, I64]:
    """Rows of the candidates' SKU lines for each line, as (rows, line index).

    Per SKU the cheaper of two exact lookups: *scan* its contract lines (sorted by
    contract, read sequentially from the key column) and keep the candidates' — or, when
    it is on more contracts than the account has candidates (a popular SKU), *probe* the
    key (SKU, contract) of each candidate. Either way about min(fan-out, candidates) keys
    per SKU are touched, instead of every contract that ever listed a popular SKU.
    """
    index = state.line_index
    low, high = index.prefix_ranges(sku)
    candidates = ctx.candidates_by_id
    probe = (high - low) > 8 * candidates.size  # a probe is a binary search: ~8 scans
    scan = ~probe
    which, pos = expand_ranges(low[scan], high[scan])
    keep = ctx.rank[index.keys[pos] & _CONTRACT_MASK] >= 0
    scan_line = np.nonzero(scan)[0][which[keep]]
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
    state: State, ctx: AccountContext, sku: I64, base_qty: I64, factor_u: I64, lp: _ListPrice
) -> _Hits | None:
    if ctx.candidates.size == 0 or len(state.line_index) == 0:
        return None
    lines = state.lines
    sku_rows, sku_line = _sku_lines(state, ctx, sku)
    # group lines: only the candidates' own, from the context's small index
    group = state.items["product_group"][sku]
    chain = state.groups["chain"][np.maximum(group, 0)]
    slots = np.nonzero((chain >= 0) & (group >= 0)[:, None])
    wanted = chain[slots].astype(np.int64)
    g_which, g_pos = expand_ranges(
        np.searchsorted(ctx.group_keys, wanted), np.searchsorted(ctx.group_keys, wanted + 1)
    )
    rows = np.concatenate([sku_rows, ctx.group_rows[g_pos]])
    line = np.concatenate([sku_line, slots[0][g_which]])
    depth = np.concatenate([np.zeros(sku_rows.size, np.int64), slots[1][g_which] + 1])
    live = np.nonzero(lines["active"][rows])[0]
    if live.size == 0:
        return None
    rows, line, depth = rows[live], line[live], depth[live]
    contract = lines["contract"][rows].astype(np.int64)
    rank = ctx.rank[contract].astype(np.int64)
    line_sku = sku[line]
    kind = lines["kind"][rows].astype(np.int64)
    factor = uom_factors(state, line_sku, lines["uom"][rows].astype(np.int64))
    tier = _tier_of(lines["tier_min"][rows], lines["n_tiers"][rows], base_qty[line], factor)
    value = lines["tier_value"][rows, np.maximum(tier, 0)]

    cost = state.items["cost_micros"][line_sku]
    has_cost = (cost >= 0) & (state.items["cost_currency"][line_sku] == ctx.currency)
    has_list = lp.row[line] >= 0
    net, discount = kind == _NET, kind == _DISCOUNT
    numerator = np.where(
        net, value, np.where(discount, lp.price[line] * (BPS - value), cost * (BPS + value))
    )
    denominator = np.where(
        net, np.maximum(factor, 1), np.where(discount, np.maximum(lp.factor[line], 1) * BPS, BPS)
    )
    lost = np.where(
        factor <= 0,
        _LOST_UOM,
        np.where(
            tier < 0,
            _LOST_BREAK,
            np.where(
                discount & ~has_list,
                _LOST_LIST,
                np.where((kind == _COST_PLUS) & ~has_cost, _LOST_COST, _WON),
            ),
        ),
    )
    numerator = np.where(lost == _WON, numerator, 0)
    unit_price, _ = mul_div_round(numerator, factor_u[line], denominator)
    return _Hits(
        line, rows, contract, rank, depth, kind, factor, tier, numerator, denominator,
        unit_price, lost.astype(np.int64),
    )  # fmt: skip


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
) -> PriceResult:
    """Price a batch of lines of one account (all SKUs known and orderable).

    ``base_qty`` is qty × ``factor_u`` (the line UoM's factor). Cost is O(n + hits) array
    work plus one lexsort over the hits; no Python loop per line unless ``explain``.
    """
    n = sku.size
    lp = _list_prices(state, ctx, sku, base_qty)
    hits = _contract_hits(state, ctx, sku, base_qty, factor_u, lp)
    list_unit, _ = mul_div_round(lp.price, factor_u, np.maximum(lp.factor, 1))

    win = np.full(n, -1, dtype=np.int64)  # index into hits
    if hits is not None:
        ok = np.nonzero(hits.lost == _WON)[0]
        code = ctx.code_order[hits.contract[ok]]
        if policy == Policy.PRIORITY:
            keys = (code, hits.unit_price[ok], hits.depth[ok], hits.rank[ok])
        else:
            keys = (code, hits.depth[ok], hits.rank[ok], hits.unit_price[ok])
        order = ok[np.lexsort((*keys, hits.line[ok]))]
        first = np.ones(order.size, dtype=np.bool_)
        first[1:] = hits.line[order[1:]] != hits.line[order[:-1]]
        win[hits.line[order[first]]] = order[first]
    has_hit = win >= 0
    if policy == Policy.LOWEST_PRICE and hits is not None:
        hit_unit = np.where(has_hit, hits.unit_price[np.maximum(win, 0)], _BIG)
        list_better = (lp.row >= 0) & (list_unit < hit_unit)
        win = np.where(list_better, -1, win)
        has_hit = win >= 0
    use_list = ~has_hit & (lp.row >= 0)
    priced = has_hit | use_list

    w = np.maximum(win, 0)
    empty = np.zeros(n, dtype=np.int64)
    if hits is not None:
        h_row, h_num, h_den, h_tier, h_factor = (
            hits.row[w],
            hits.numerator[w],
            hits.denominator[w],
            hits.tier[w],
            hits.factor[w],
        )
        h_contract, h_kind, h_depth = hits.contract[w], hits.kind[w], hits.depth[w]
    else:
        h_row = h_num = h_den = h_tier = h_factor = h_contract = h_kind = h_depth = empty
    numerator = np.where(has_hit, h_num, lp.price)
    denominator = np.where(has_hit, h_den, np.maximum(lp.factor, 1))
    numerator = np.where(priced, numerator, 0)
    unit_price, _ = mul_div_round(numerator, factor_u, denominator)
    extended, fits = mul_div_round(base_qty, numerator, denominator, micros_per_minor)

    lines, prices = state.lines, state.prices
    tier = np.where(has_hit, h_tier, lp.tier)
    src_row = np.maximum(lp.row, 0)  # price entry row (lines use h_row)
    tier_table = np.where(has_hit[:, None], lines["tier_min"][h_row], prices["tier_min"][src_row])
    n_tiers = np.where(has_hit, lines["n_tiers"][h_row], prices["n_tiers"][src_row])
    safe_tier = np.maximum(tier, 0)
    tier_min = tier_table[np.arange(n), safe_tier]
    tier_uom = np.where(has_hit, lines["uom"][h_row], prices["uom"][src_row]).astype(np.int64)
    group = state.items["product_group"][sku].astype(np.int64)
    chain = state.groups["chain"][np.maximum(group, 0)]
    target_group = np.where(
        has_hit & (h_depth > 0), chain[np.arange(n), np.maximum(h_depth - 1, 0)], -1
    ).astype(np.int64)
    spec = ctx.specificity[h_contract].astype(np.int64) if hits is not None else empty
    level = np.where(
        has_hit,
        _levels(spec),
        np.where(lp.book == state.price_lists.get(LIST_CODE), _LEVEL_LIST, _LEVEL_PRICE_LIST),
    )

    # Next-break hint: the winner's next tier, as a quantity in the line's UoM that also
    # honours the sell rules, and the unit price the same line gives there.
    has_next = priced & (tier + 1 < n_tiers)
    next_min = tier_table[np.arange(n), np.minimum(safe_tier + 1, tier_table.shape[1] - 1)]
    line_factor = np.where(has_hit, h_factor, lp.factor)
    next_base = np.where(has_next, next_min, 0) * np.maximum(line_factor, 1)
    step = np.lcm(np.maximum(factor_u, 1), np.maximum(order_multiple, 1))
    needed = np.maximum(next_base, min_order_qty)
    next_base_qty = -(-needed // step) * step
    next_qty = np.where(has_next, next_base_qty // np.maximum(factor_u, 1), -1)
    # Rounding up to whole UoMs or to the order multiple can skip past the next tier:
    # price the hint at the tier its own quantity falls in.
    value_table = np.where(
        has_hit[:, None], lines["tier_value"][h_row], prices["tier_value"][src_row]
    )
    hint_tier = _tier_of(tier_table, n_tiers, next_base_qty, line_factor)
    next_value = value_table[np.arange(n), np.maximum(hint_tier, 0)]
    next_num = _next_numerator(state, ctx, sku, has_hit, h_kind, next_value, lp, next_base_qty)
    next_unit, _ = mul_div_round(np.where(has_next, next_num, 0), factor_u, denominator)

    candidates = _explain(state, ctx, n, hits, win, lp, list_unit, policy) if explain else None
    return PriceResult(
        priced=priced,
        overflow=priced & ~fits,
        unit_price_micros=np.where(priced, unit_price, 0),
        extended_micros=np.where(priced & fits, extended, 0),
        source=np.where(has_hit, _CONTRACT, np.where(use_list, _PRICE_LIST, 0)).astype(np.int8),
        source_id=np.where(has_hit, h_contract, np.where(use_list, lp.book, -1)),
        level=np.where(priced, level, -1).astype(np.int8),
        kind=np.where(has_hit, h_kind, 0).astype(np.int8),
        target_group=target_group,
        tier_index=np.where(priced, tier, -1),
        tier_min=np.where(priced, tier_min, -1),
        tier_uom=np.where(priced, tier_uom, -1),
        next_break_qty=next_qty,
        next_break_unit_price_micros=np.where(has_next, next_unit, 0),
        candidates=candidates,
    )


def _levels(specificity: I64) -> I64:
    """Level of each specificity code (see ``engine.contexts``)."""
    return np.where(
        specificity == 0,
        _LEVEL_ACCOUNT,
        np.where(
            specificity < 16, _LEVEL_PARENT, np.where(specificity < 32, _LEVEL_GROUP, _LEVEL_ALL)
        ),
    )


def _next_numerator(
    state: State,
    ctx: AccountContext,
    sku: I64,
    has_hit: B,
    kind: I64,
    value: I64,
    lp: _ListPrice,
    base_qty: I64,
) -> I64:
    """Numerator of the winner's price at the next tier (the denominator does not change).

    A DISCOUNT line is re-based on the list price at the hint quantity, which may itself be
    in a higher list tier.
    """
    prices = state.prices
    safe = np.maximum(lp.row, 0)
    list_tier = _tier_of(prices["tier_min"][safe], prices["n_tiers"][safe], base_qty, lp.factor)
    list_price = prices["tier_value"][safe, np.maximum(list_tier, 0)]
    cost = state.items["cost_micros"][sku]
    contract_num = np.where(
        kind == _NET,
        value,
        np.where(kind == _DISCOUNT, list_price * (BPS - value), cost * (BPS + value)),
    )
    return np.where(has_hit, contract_num, value)


def _explain(
    state: State,
    ctx: AccountContext,
    n: int,
    hits: _Hits | None,
    win: I64,
    lp: _ListPrice,
    list_unit: I64,
    policy: Policy,
) -> list[list[Candidate]]:
    """Every candidate of every line and why it lost (only when the caller asks)."""
    out: list[list[Candidate]] = [[] for _ in range(n)]
    list_id = state.price_lists.get(LIST_CODE)
    if hits is not None:
        priority = state.contract_rows["priority"]
        for h in range(hits.line.size):
            line = int(hits.line[h])
            lost = Lost(int(hits.lost[h]))
            w = int(win[line])
            if lost == Lost.WON and w != h:
                lost = _why_lost(hits, priority, h, w, policy) if w >= 0 else Lost.HIGHER_PRICE
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
                    int(hits.unit_price[h]) if hits.lost[h] == Lost.WON else None,
                    lost,
                )
            )
    for line in range(n):
        if lp.row[line] < 0:
            continue
        if win[line] < 0:
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
                int(list_unit[line]),
                lost,
            )
        )
    return out


def _why_lost(hits: _Hits, priority: npt.NDArray[np.int32], h: int, w: int, policy: Policy) -> Lost:
    """The first ordering key on which candidate ``h`` is worse than the winner ``w``."""
    if policy == Policy.LOWEST_PRICE and hits.unit_price[h] != hits.unit_price[w]:
        return Lost.HIGHER_PRICE
    if hits.rank[h] != hits.rank[w]:
        same_priority = priority[hits.contract[h]] == priority[hits.contract[w]]
        return Lost.LESS_SPECIFIC if same_priority else Lost.LOWER_PRIORITY
    if hits.depth[h] != hits.depth[w]:
        return Lost.GROUP_LINE
    if hits.unit_price[h] != hits.unit_price[w]:
        return Lost.HIGHER_PRICE
    return Lost.HIGHER_CONTRACT_ID
