"""Price resolution for a batch of lines of one account (DESIGN §3–§4).

For each line (SKU, base quantity, line UoM factor) the engine gathers every applicable
contract line of every candidate contract — the SKU line and the product-group lines up the
group chain — selects each one's all-units tier, turns it into an exact rational price per
base unit, and picks the winner:

- policy ``priority``: contract rank (priority, then specificity), SKU line before nearer
  group before farther group, lowest net unit price, lowest contract code; the price list
  only when no contract line applies;
- policy ``lowest_price``: lowest net unit price among contract lines *and* the list price,
  ties broken by the priority order (the list ranks last).

A contract offers one line per request line: its SKU line, else the nearest group line up
the chain, among the lines that apply (DESIGN §4 step 2), under both policies.

A price per base unit is the exact fraction ``N / D`` (micros): NET ``value / f_line``;
DISCOUNT ``list × (10000 − bps) / (f_list × 10000)``; COST_PLUS ``cost × (10000 + bps) /
10000`` (cost is per base unit, in the item's cost currency, and only applies in that
currency). The unit price in the line's UoM is ``round(N × f_U / D)`` and the extended
amount ``round(qty × f_U × N / D)`` to the currency's minor unit — from the fraction, never
from the rounded unit price — with 128-bit intermediates: an answer beyond int64 is flagged
(``overflow``), never wrapped. "Net price" in the tie-break is that rounded unit price; one
beyond int64 micros never counts as the lowest.

The list price is the account's own price list where its entry is active, valid on the date
and has a tier at the quantity, else LIST's. The next-break hint is the winner's next tier
as a quantity in the line's UoM that honours the sell rules, priced at the tier that
quantity falls in (a DISCOUNT line re-based on the list price resolved again there).

All of it runs inside the one call of the compiled quote kernel ``engine._kernels._quote``
a quote makes (``engine.quote``), over the state's arrays, with no Python object per line;
``explain`` builds its candidate lists in Python (:func:`explain_lines`) from the candidate
rows the kernel reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from engine._kernels import _quote
from engine.contexts import SPEC_ALL, SPEC_GROUP, AccountContext, Level, level_of
from engine.state import (
    _LINE_CONTRACT_BITS,
    LIST_CODE,
    PRICE_BOOK_BITS,
    PRICE_CURRENCY_SLOTS,
    LineKind,
    State,
)

__all__ = [
    "BPS",
    "Candidate",
    "Policy",
    "PriceResult",
    "Source",
    "explain_lines",
    "kernel_context",
]

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
BPS = 10_000


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


def _check_kernel_constants() -> None:
    """The kernel hard-codes the engine's codes and key layouts: fail at import, not with
    wrong prices, if they ever drift apart."""
    expected = {
        "NET": int(LineKind.NET),
        "DISCOUNT": int(LineKind.DISCOUNT),
        "COST_PLUS": int(LineKind.COST_PLUS),
        "BPS": BPS,
        "LINE_CONTRACT_BITS": _LINE_CONTRACT_BITS,
        "PRICE_BOOK_BITS": PRICE_BOOK_BITS,
        "PRICE_CURRENCY_SLOTS": PRICE_CURRENCY_SLOTS,
        "LOST_WON": int(Lost.WON),
        "LOST_BELOW_BREAK": int(Lost.BELOW_LOWEST_BREAK),
        "LOST_NO_LIST": int(Lost.NO_LIST_PRICE),
        "LOST_NO_COST": int(Lost.NO_COST),
        "LOST_UOM": int(Lost.UOM_NOT_ON_ITEM),
        "SOURCE_NONE": int(Source.NONE),
        "SOURCE_CONTRACT": int(Source.CONTRACT),
        "SOURCE_PRICE_LIST": int(Source.PRICE_LIST),
        "LEVEL_ACCOUNT": int(Level.ACCOUNT),
        "LEVEL_PARENT": int(Level.PARENT),
        "LEVEL_PRICE_GROUP": int(Level.PRICE_GROUP),
        "LEVEL_ALL": int(Level.ALL),
        "LEVEL_PRICE_LIST": int(Level.PRICE_LIST),
        "LEVEL_LIST": int(Level.LIST),
        "SPEC_GROUP": SPEC_GROUP,
        "SPEC_ALL": SPEC_ALL,
    }
    if expected != _quote.CONSTANTS:
        raise ImportError(f"engine._kernels._quote is out of step: {_quote.CONSTANTS}")


_check_kernel_constants()


@dataclass(frozen=True, slots=True)
class _Hits:
    """Every active candidate contract line of every line, as the kernel saw it (explain)."""

    line: I64
    row: I64  # contract line row
    contract: I64
    depth: I64  # 0: SKU line, k: k-th group up the chain
    target: I64  # the product group of a group line, -1 for a SKU line
    kind: I64
    tier: I64
    unit: I64  # rounded unit price where it applies (0 elsewhere, or beyond int64)
    lost: I64  # Lost.WON where it applies, else why not (UoM, break, no list, no cost)


def kernel_context(state: State, ctx: AccountContext) -> _quote.Context:
    """``ctx`` wrapped for the kernel, kept beside it in the state's context cache."""
    key = ("kernel-context", ctx.account, ctx.currency, ctx.date)
    cached = state.contexts.get(key)
    if cached is not None and cached[0] is ctx:
        context: _quote.Context = cached[1]
        return context
    groups = max(len(state.product_groups), int(ctx.group_keys.max(initial=-1)) + 1)
    group_ptr = np.searchsorted(ctx.group_keys, np.arange(groups + 1)).astype(np.int64)
    context = _quote.Context(
        ctx.is_candidate.view(np.uint8), ctx.rank, ctx.specificity, ctx.code_order,
        ctx.candidates_by_id, group_ptr, ctx.group_rows,
        ctx.currency, ctx.date, ctx.own_price_list, state.price_lists.get(LIST_CODE),
    )  # fmt: skip
    state.contexts[key] = (ctx, context)
    return context


def explain_lines(
    state: State,
    ctx: AccountContext,
    n: int,
    hits_block: I64,
    winner_hit: I64,
    list_book: I64,
    list_tier: I64,
    list_unit: I64,
    policy: Policy,
) -> list[list[Candidate]]:
    """Every candidate of every line and why it lost (only when the caller asks), from
    the candidate rows the kernel reported (``hits_block``: one row per :class:`_Hits`
    field, one column per candidate)."""
    hits = _Hits(*hits_block)
    out: list[list[Candidate]] = [[] for _ in range(n)]
    list_id = state.price_lists.get(LIST_CODE)
    priority = state.contract_rows["priority"]
    for h in range(hits.line.size):
        line = int(hits.line[h])
        lost = Lost(int(hits.lost[h]))
        w = int(winner_hit[line])
        if lost == Lost.WON and w != h:
            lost = _why_lost(ctx, hits, priority, h, w, policy) if w >= 0 else Lost.HIGHER_PRICE
        applies = int(hits.lost[h]) == Lost.WON
        out[line].append(
            Candidate(
                Source.CONTRACT,
                int(hits.contract[h]),
                level_of(int(ctx.specificity[hits.contract[h]])),
                int(hits.target[h]),
                int(hits.kind[h]),
                int(hits.tier[h]),
                int(hits.unit[h]) if applies else None,
                lost,
            )
        )
    for line in range(n):
        if list_book[line] < 0:
            continue
        if winner_hit[line] < 0:
            lost = Lost.WON
        elif policy == Policy.PRIORITY:
            lost = Lost.CONTRACT_WON
        else:
            lost = Lost.HIGHER_PRICE
        out[line].append(
            Candidate(
                Source.PRICE_LIST,
                int(list_book[line]),
                Level.LIST if list_book[line] == list_id else Level.PRICE_LIST,
                -1,
                0,
                int(list_tier[line]),
                int(list_unit[line]),
                lost,
            )
        )
    return out


def _why_lost(
    ctx: AccountContext,
    hits: _Hits,
    priority: npt.NDArray[np.int32],
    h: int,
    w: int,
    policy: Policy,
) -> Lost:
    """The first ordering key on which candidate ``h`` is worse than the winner ``w``."""
    unit_h, unit_w = int(hits.unit[h]), int(hits.unit[w])
    if policy == Policy.LOWEST_PRICE and unit_h != unit_w:
        return Lost.HIGHER_PRICE
    contract_h, contract_w = int(hits.contract[h]), int(hits.contract[w])
    if ctx.rank[contract_h] != ctx.rank[contract_w]:
        same_priority = priority[contract_h] == priority[contract_w]
        return Lost.LESS_SPECIFIC if same_priority else Lost.LOWER_PRIORITY
    if hits.depth[h] != hits.depth[w]:
        return Lost.GROUP_LINE
    if unit_h != unit_w:
        return Lost.HIGHER_PRICE
    return Lost.HIGHER_CONTRACT_ID
