"""Catching up with the streams before serving: a restarted state answers nothing older
than what was served before it.

A (re)started state comes from a checkpoint, so it lags the streams by whatever arrived
since. Its versions start above every version published before (``server.versions``);
answering before it has replayed the streams would pair such a version with older data,
and a caller waiting for ``min_version`` would get less than it already saw. So the
writer first reads every stream up to the entry that was last when it started (the
heads), and only then serves (one process) or announces its state to the workers (who go
on serving the previous writer's state meanwhile). While it catches up, health is
NOT_SERVING and reads are refused with the reason; a Redis that cannot be reached keeps it
there (logged) rather than serve a state of unknown age as current.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from server.host import StateHost

__all__ = ["catch_up", "stream_heads"]

log = logging.getLogger("pacache.streams")


def _id(entry: str) -> tuple[int, int]:
    ms, _, seq = entry.partition("-")
    return int(ms), int(seq or 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def stream_heads(url: str, names: Sequence[str]) -> dict[str, str]:
    """The last entry id of each stream now ("0-0" for one that does not exist yet)."""
    client = aioredis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)
    try:
        heads: dict[str, str] = {}
        for name in names:
            try:
                info = await client.xinfo_stream(name)
            except ResponseError:  # no such stream
                heads[name] = "0-0"
                continue
            heads[name] = _text(info["last-generated-id"])
        return heads
    finally:
        await client.aclose()


async def catch_up(
    host: StateHost, url: str, names: Sequence[str], *, poll_s: float = 0.02
) -> dict[str, str]:
    """Return once the host's stream positions reach the heads read at the start (a
    stream with a gap is not waited for: its data is refused anyway). Marks the host as
    catching up meanwhile; returns the heads."""
    host.catching_up = "state: catching up with the streams before serving"
    delay = 0.1
    while True:
        try:
            heads = await stream_heads(url, names)
            break
        except (RedisError, OSError) as error:
            log.warning("catching up: redis unavailable (%s); still NOT_SERVING", error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    log.info("catching up with the streams to %s", heads)
    while True:
        positions = host.positions()
        behind = [
            name
            for name, head in heads.items()
            if name not in host.gaps and _id(positions.get(name, "0-0")) < _id(head)
        ]
        if not behind:
            break
        await asyncio.sleep(poll_s)
    host.catching_up = ""
    log.info("caught up with the streams")
    return heads
