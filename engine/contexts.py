"""Who may price for an account: its candidate contracts, ranked (DESIGN §4 steps 1 and 3).

An :class:`AccountContext` answers, for one (account, currency, pricing date), which
contracts are candidates and how they rank under the ``priority`` policy: highest contract
priority first, then specificity — the account itself, its parent chain nearest first, its
price groups in the account's order, then ALL. Contracts tied on both share a rank, so the
later tie-breaks (SKU line over group line, lowest net price, contract id) still decide.

Contexts are small (one int per contract, plus the candidates' product-group lines) and
cached per state ``pricing_epoch``, which moves whenever accounts, contracts, assignments
or group contract lines change: every quote for the same account and day reuses one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from engine.state import GROUP_TARGET, LIST_CODE, MAX_PARENT_DEPTH, State

__all__ = ["AccountContext", "Level", "account_context", "level_of"]

_CACHE_SIZE = 4096
SPEC_ACCOUNT = 0
SPEC_PARENT = 1  # + depth - 1 (1..MAX_PARENT_DEPTH)
SPEC_GROUP = 16  # + position in the account's price groups
SPEC_ALL = 32


class Level(IntEnum):
    """Where a price came from, most specific first."""

    ACCOUNT = 0
    PARENT = 1
    PRICE_GROUP = 2
    ALL = 3
    PRICE_LIST = 4  # the account's own price list
    LIST = 5  # the currency's default list


def level_of(specificity: int) -> Level:
    """The :class:`Level` of a specificity code."""
    if specificity == SPEC_ACCOUNT:
        return Level.ACCOUNT
    if specificity < SPEC_GROUP:
        return Level.PARENT
    if specificity < SPEC_ALL:
        return Level.PRICE_GROUP
    return Level.ALL


@dataclass(frozen=True, slots=True)
class AccountContext:
    """Candidate contracts of one account on one day in one currency.

    ``rank[c]`` is -1 when contract ``c`` is no candidate, else its dense rank by
    (-priority, specificity); ``specificity[c]`` says how it reached the account.
    """

    account: int
    currency: int
    date: int
    own_price_list: int  # the account's assigned list, -1 when none (or LIST itself)
    rank: npt.NDArray[np.int32]
    is_candidate: npt.NDArray[np.bool_]  # rank >= 0 (a smaller array to gather from)
    specificity: npt.NDArray[np.int32]
    candidates: npt.NDArray[np.int64]  # candidate contract ids, best rank first
    candidates_by_id: npt.NDArray[np.int64]  # the same, in id order (for key probes)
    # the candidates' product-group lines, sorted by group: a quote looks groups up here
    # instead of ranging over every contract's lines for a group
    group_keys: npt.NDArray[np.int64]
    group_rows: npt.NDArray[np.int64]
    # position of each contract's *code* in sorted order: the final tie-break is the
    # contract id as the ERP knows it, never our arrival-order interning
    code_order: npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class _Assignments:
    by_account: dict[int, list[int]]
    by_group: dict[int, list[int]]
    everyone: list[int]
    code_order: npt.NDArray[np.int64]
    group_line_rows: dict[int, npt.NDArray[np.int64]]  # contract → its group-line rows


def _assignments(state: State) -> _Assignments:
    key = ("assignments", state.pricing_epoch)
    cached = state.contexts.get(key)
    if isinstance(cached, _Assignments):
        return cached
    by_account: dict[int, list[int]] = {}
    by_group: dict[int, list[int]] = {}
    for contract, accounts in state.contract_accounts.items():
        for account in accounts:
            by_account.setdefault(account, []).append(contract)
    for contract, groups in state.contract_price_groups.items():
        for group in groups:
            by_group.setdefault(group, []).append(contract)
    n = state.contract_rows.n
    everyone = np.nonzero(state.contract_rows["assign_all"][:n])[0].tolist()
    codes = state.contracts.codes()
    code_order = np.empty(len(codes), dtype=np.int64)
    code_order[np.argsort(np.array(codes, dtype=object), kind="stable")] = np.arange(len(codes))
    lines = state.lines
    targets = lines["target"][: lines.n]
    group_rows = np.nonzero(targets >= GROUP_TARGET)[0]
    owners = lines["contract"][group_rows].astype(np.int64)
    order = np.argsort(owners, kind="stable")
    group_rows, owners = group_rows[order], owners[order]
    bounds = np.flatnonzero(np.diff(owners)) + 1
    group_line_rows = {
        int(part_owner[0]): part_rows
        for part_owner, part_rows in zip(
            np.split(owners, bounds), np.split(group_rows, bounds), strict=True
        )
        if part_owner.size
    }
    built = _Assignments(by_account, by_group, everyone, code_order, group_line_rows)
    state.contexts.clear()  # the epoch moved on: every cached context is stale
    state.contexts[key] = built
    return built


def account_chain(state: State, account: int) -> list[int]:
    """The account and its ancestors, nearest first, cut at MAX_PARENT_DEPTH and at cycles."""
    chain = [account]
    parent = state.account_rows["parent"]
    while len(chain) <= MAX_PARENT_DEPTH:
        up = int(parent[chain[-1]])
        if up < 0 or up in chain:
            break
        chain.append(up)
    return chain


def _build(state: State, account: int, currency: int, date: int) -> AccountContext:
    index = _assignments(state)
    best: dict[int, int] = {}  # contract → most specific way it reaches the account

    def offer(contracts: list[int], specificity: int) -> None:
        for contract in contracts:
            if specificity < best.get(contract, SPEC_ALL + 1):
                best[contract] = specificity

    for depth, member in enumerate(account_chain(state, account)):
        offer(
            index.by_account.get(member, []),
            SPEC_ACCOUNT if depth == 0 else SPEC_PARENT + depth - 1,
        )
    for position, group in enumerate(state.account_rows["price_groups"][account].tolist()):
        if group >= 0:
            offer(index.by_group.get(group, []), SPEC_GROUP + position)
    offer(index.everyone, SPEC_ALL)

    rows = state.contract_rows
    n = rows.n
    rank = np.full(n, -1, dtype=np.int32)
    specificity = np.full(n, -1, dtype=np.int32)
    if best:
        ids = np.fromiter(best, dtype=np.int64, count=len(best))
        spec = np.fromiter(best.values(), dtype=np.int64, count=len(best))
        live = (
            rows["active"][ids]
            & (rows["currency"][ids] == currency)
            & (rows["valid_from"][ids] <= date)
            & (date < rows["valid_to"][ids])
        )
        ids, spec = ids[live], spec[live]
        priority = rows["priority"][ids].astype(np.int64)
        order = np.lexsort((index.code_order[ids], spec, -priority))
        ids, spec, priority = ids[order], spec[order], priority[order]
        tie_key = np.stack([-priority, spec], axis=1)
        changes = np.zeros(ids.size, dtype=np.int32)
        changes[1:] = (tie_key[1:] != tie_key[:-1]).any(axis=1)
        rank[ids] = np.cumsum(changes)
        specificity[ids] = spec
        candidates = ids
    else:
        candidates = np.zeros(0, dtype=np.int64)
    found = [index.group_line_rows[c] for c in candidates.tolist() if c in index.group_line_rows]
    group_rows = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
    group_keys = state.lines["target"][group_rows] - GROUP_TARGET
    order = np.argsort(group_keys, kind="stable")
    own = int(state.account_rows["price_list"][account])
    list_id = state.price_lists.get(LIST_CODE)
    return AccountContext(
        account=account,
        currency=currency,
        date=date,
        own_price_list=-1 if own == list_id else own,
        rank=rank,
        is_candidate=rank >= 0,
        specificity=specificity,
        candidates=candidates,
        candidates_by_id=np.sort(candidates),
        group_keys=np.ascontiguousarray(group_keys[order]),
        group_rows=np.ascontiguousarray(group_rows[order]),
        code_order=index.code_order,
    )


def account_context(state: State, account: int, currency: int, date: int) -> AccountContext:
    """The (cached) context for pricing ``account`` in ``currency`` on ``date``.

    Cost: O(contracts reaching the account) on a miss, a dict lookup on a hit.
    """
    _assignments(state)  # clears the cache when the pricing epoch moved
    key = (account, currency, date)
    cache = state.contexts
    found = cache.get(key)
    if isinstance(found, AccountContext):
        return found
    context = _build(state, account, currency, date)
    if len(cache) > _CACHE_SIZE:
        # dicts keep insertion order: drop the oldest half, but not the assignments entry
        for stale in list(cache)[1 : _CACHE_SIZE // 2]:
            del cache[stale]
    cache[key] = context
    return context
