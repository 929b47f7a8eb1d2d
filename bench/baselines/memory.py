"""Baseline (d): the rows of a request read from plain Python dicts held in memory.

The whole extract lives in the server process as a :class:`~bench.baselines.dataset.World`
(dicts of engine events, indexed by account, SKU, assignee and contract-line target); a
request reads its rows with dict lookups and nothing else, so this baseline measures the
plain-Python rules (``bench.baselines.rules``) without any I/O.
"""

from __future__ import annotations

from typing import Any

from bench.baselines.dataset import World
from bench.baselines.rules import Needs

__all__ = ["MemoryStore", "rows_of"]


def rows_of(world: World, needs: Needs) -> list[Any]:
    """The events one request needs, read from ``world`` (see ``rules.Needs``)."""
    out: list[Any] = []
    if needs.stock:
        out += world.locations
        if needs.region and needs.region in world.regions:
            out.append(world.regions[needs.region])
    account = world.accounts.get(needs.account) if needs.account else None
    if account is not None:
        out += world.account_rows(account.account)
    for sku in needs.skus:
        out += world.item_rows(sku)
    if needs.prices and account is not None:
        assignees = [("ACCOUNT", a) for a in world.account_chains[account.account]]
        assignees += [("PRICE_GROUP", g) for g in account.price_groups] + [("ALL", "")]
        codes = dict.fromkeys(c for key in assignees for c in world.assigned.get(key, ()))
        out += (world.contracts[c] for c in codes)
        groups = dict.fromkeys(g for s in needs.skus for g in world.group_chains.get(s, ()))
        for line_set in (
            *(world.lines_by_sku.get(s, ()) for s in needs.skus),
            *(world.lines_by_group.get(g, ()) for g in groups),
        ):
            out += (line for line in line_set if line.contract in codes)
        currency = needs.currency or account.currency
        for book in dict.fromkeys((account.price_list or "LIST", "LIST")):
            table = world.prices.get((book, currency), {})
            out += (table[s] for s in needs.skus if s in table)
    if needs.stock:
        for sku in needs.skus:
            out += world.stock.get(sku, ())
            out += world.inbound.get(sku, ())
    return out


class MemoryStore:
    """Serves requests from a :class:`World` held by this process."""

    name = "python"

    def __init__(self, world: World) -> None:
        self.world = world

    async def read(self, needs: Needs) -> list[Any]:
        """The request's rows: dictionary lookups, no I/O."""
        return rows_of(self.world, needs)

    async def close(self) -> None:
        """Nothing to release."""
