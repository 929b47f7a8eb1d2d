"""Baseline (b): a request's rows read from Redis, in two pipelined round trips.

This is how a Redis-backed P&A service is usually built: the ERP extract is loaded into
keys shaped for the reads a request makes, values are compact msgpack documents (engine
events), and a request reads with a few pipelined multi-key commands — never one round
trip per line. Layout (prefix ``P``, default ``pab``):

===============================  ==========================================================
``P:acct:{account}``             [account, its ancestors (nearest first)]  — chain resolved
                                 at load, as such services denormalise hierarchies
``P:item:{sku}``                 [item, the product groups of its chain]
``P:locations``                  every location, in pacache's order
``P:region:{region}``            the region (ranked locations)
``P:assign:{kind}:{code}``       contracts assigned to an ACCOUNT / PRICE_GROUP / ALL
``P:price:{list}:{currency}``    hash SKU → price entry (with breaks)
``P:cl:sku:{sku}``,              contract lines (with breaks) on a SKU / a product group
``P:cl:grp:{group}``
``P:stock:{sku}``                the SKU's positions at every location
``P:inbound:{sku}``              the SKU's receipt schedules
===============================  ==========================================================

Per Quote: round trip 1 (``GET`` account, ``MGET`` items, locations, region, ``MGET``
stock, ``MGET`` inbound — what needs only the request), round trip 2 (``MGET``
assignments of the account chain / price groups / ALL, ``HMGET`` the account's price
list and LIST, ``MGET`` contract lines by SKU and by group — what needs the account and the
items). GetAvailability and Promise need round trip 1 only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import redis
import redis.asyncio as aioredis

from bench.baselines.dataset import World
from bench.baselines.rules import Needs
from engine import events as ev

__all__ = ["RedisStore", "load_redis"]

_ENCODE = msgspec.msgpack.Encoder().encode
_ACCOUNT = msgspec.msgpack.Decoder(tuple[list[ev.AccountUpsert], list[str]])
_ITEM = msgspec.msgpack.Decoder(tuple[ev.ItemUpsert, list[ev.ProductGroupUpsert], list[str]])
_LOCATIONS = msgspec.msgpack.Decoder(list[ev.LocationUpsert])
_REGION = msgspec.msgpack.Decoder(ev.RegionUpsert)
_CONTRACTS = msgspec.msgpack.Decoder(list[ev.ContractUpsert])
_PRICE = msgspec.msgpack.Decoder(ev.PriceSet)
_LINES = msgspec.msgpack.Decoder(list[ev.ContractLineSet])
_STOCK = msgspec.msgpack.Decoder(list[ev.InventorySet])
_INBOUND = msgspec.msgpack.Decoder(list[ev.InboundSet])
_BATCH = 2_000  # commands per pipeline while loading


def _documents(world: World, p: str) -> Iterator[tuple[str, Any]]:
    """(key, value) to SET: bytes, or a dict for a hash."""
    for code, _account in world.accounts.items():
        yield f"{p}:acct:{code}", _ENCODE((world.account_rows(code), world.account_chains[code]))
    for sku, item in world.items.items():
        groups = [world.groups[g] for g in world.group_chains[sku] if g in world.groups]
        yield f"{p}:item:{sku}", _ENCODE((item, groups, world.group_chains[sku]))
    yield f"{p}:locations", _ENCODE(world.locations)
    for code, region in world.regions.items():
        yield f"{p}:region:{code}", _ENCODE(region)
    for (kind, code), contracts in world.assigned.items():
        yield f"{p}:assign:{kind}:{code}", _ENCODE([world.contracts[c] for c in contracts])
    for (book, currency), entries in world.prices.items():
        yield f"{p}:price:{book}:{currency}", {sku: _ENCODE(e) for sku, e in entries.items()}
    for sku, lines in world.lines_by_sku.items():
        yield f"{p}:cl:sku:{sku}", _ENCODE(lines)
    for group, lines in world.lines_by_group.items():
        yield f"{p}:cl:grp:{group}", _ENCODE(lines)
    for sku, positions in world.stock.items():
        yield f"{p}:stock:{sku}", _ENCODE(positions)
    for sku, schedules in world.inbound.items():
        yield f"{p}:inbound:{sku}", _ENCODE(schedules)


def load_redis(world: World, url: str, prefix: str = "pab") -> dict[str, int]:
    """Write ``world`` under ``prefix`` (keys of an earlier load removed first)."""
    client = redis.Redis.from_url(url)
    try:
        stale = list(client.scan_iter(match=f"{prefix}:*", count=10_000))
        for start in range(0, len(stale), 10_000):
            client.unlink(*stale[start : start + 10_000])
        pipe = client.pipeline(transaction=False)
        keys = fields = 0
        for key, value in _documents(world, prefix):
            if isinstance(value, dict):
                items = list(value.items())
                for start in range(0, len(items), 10_000):
                    pipe.hset(key, mapping=dict(items[start : start + 10_000]))
                fields += len(items)
            else:
                pipe.set(key, value)
            keys += 1
            if len(pipe) >= _BATCH:
                pipe.execute()
        pipe.execute()
        return {"keys": keys, "hash_fields": fields}
    finally:
        client.close()


class RedisStore:
    """Reads a request's rows from Redis (see the module docstring for the round trips)."""

    name = "redis"

    def __init__(self, url: str, prefix: str = "pab") -> None:
        self.client = aioredis.Redis.from_url(url)
        self.p = prefix

    async def read(self, needs: Needs) -> list[Any]:
        """The events of the request's rows: one round trip, or two when it prices."""
        p, skus = self.p, needs.skus
        pipe = self.client.pipeline(transaction=False)
        if needs.account:
            pipe.get(f"{p}:acct:{needs.account}")
        pipe.mget([f"{p}:item:{s}" for s in skus])
        if needs.stock:
            pipe.get(f"{p}:locations")
            if needs.region:
                pipe.get(f"{p}:region:{needs.region}")
            pipe.mget([f"{p}:stock:{s}" for s in skus])
            pipe.mget([f"{p}:inbound:{s}" for s in skus])
        replies = iter(await pipe.execute())

        out: list[Any] = []
        account_doc = next(replies) if needs.account else None
        accounts, chain = _ACCOUNT.decode(account_doc) if account_doc else ([], [])
        items = [_ITEM.decode(doc) for doc in next(replies) if doc]
        if needs.stock:
            locations = next(replies)
            out += _LOCATIONS.decode(locations) if locations else []  # first: "all" keeps order
            region = next(replies) if needs.region else None
            if region:
                out.append(_REGION.decode(region))
            for doc in next(replies):
                out += _STOCK.decode(doc) if doc else ()
            for doc in next(replies):
                out += _INBOUND.decode(doc) if doc else ()
        out += accounts
        for item, groups, _ in items:
            out.append(item)
            out += groups
        if needs.prices and accounts:
            out += await self._pricing(needs, accounts[0], chain, items)
        return out

    async def _pricing(
        self, needs: Needs, account: ev.AccountUpsert, chain: list[str], items: list[Any]
    ) -> list[Any]:
        """Round trip 2: candidate contracts, their lines for the SKUs and groups, prices."""
        p, skus = self.p, needs.skus
        assignees = [f"{p}:assign:ACCOUNT:{a}" for a in chain]
        assignees += [f"{p}:assign:PRICE_GROUP:{g}" for g in account.price_groups]
        assignees.append(f"{p}:assign:ALL:")
        groups = list(dict.fromkeys(g for _, _, chain_codes in items for g in chain_codes))
        currency = needs.currency or account.currency
        books = list(dict.fromkeys((account.price_list or "LIST", "LIST")))
        pipe = self.client.pipeline(transaction=False)
        pipe.mget(assignees)
        for book in books:
            pipe.hmget(f"{p}:price:{book}:{currency}", skus)
        pipe.mget([f"{p}:cl:sku:{s}" for s in skus])
        if groups:
            pipe.mget([f"{p}:cl:grp:{g}" for g in groups])
        replies = await pipe.execute()

        contracts = {c.contract: c for doc in replies[0] if doc for c in _CONTRACTS.decode(doc)}
        out: list[Any] = list(contracts.values())
        for entries in replies[1 : 1 + len(books)]:
            out += (_PRICE.decode(doc) for doc in entries if doc)
        for reply in replies[1 + len(books) :]:
            for doc in reply:
                if doc:
                    out += (line for line in _LINES.decode(doc) if line.contract in contracts)
        return out

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()
