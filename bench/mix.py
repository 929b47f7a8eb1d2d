"""The request mix the end-to-end benchmark sends: what a portal's traffic looks like.

What it builds: a seeded pool of requests drawn from an extract's workload
(``bench.datagen.Workload``: Zipf-like SKU popularity, carts of 1–200 lines with median
~12, random accounts and regions, DESIGN §10): by default 80% Quote, 10% GetAvailability
and 10% Promise, in a seeded order. Also the fixed pools of the CPU-ratio and overload
measurements (N-line Quotes, with or without ``explain``; Admin Ping; Ping and the standard
health Check alternating). Requests travel to load processes serialized, as
``(kind, bytes)``, so every process and every system gets byte-identical requests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from grpc_health.v1 import health_pb2

from bench.datagen import Cart, Workload
from server._proto.pacache.v1 import pacache_pb2 as pb
from server.client import quote_lines

__all__ = [
    "DEFAULT_MIX",
    "KINDS",
    "RequestPool",
    "build_mix",
    "fixed_quotes",
    "parse_mix",
    "ping_pool",
    "probe_pool",
    "sample",
]

#: kind → (request message class, service (pacache.v1's unless dotted), method)
KINDS: dict[str, tuple[Any, str, str]] = {
    "quote": (pb.QuoteRequest, "PriceAvailabilityService", "Quote"),
    "availability": (pb.GetAvailabilityRequest, "PriceAvailabilityService", "GetAvailability"),
    "promise": (pb.PromiseRequest, "PriceAvailabilityService", "Promise"),
    "ping": (pb.PingRequest, "AdminService", "Ping"),
    "health": (health_pb2.HealthCheckRequest, "grpc.health.v1.Health", "Check"),
}
PROBES = ("ping", "health")  # not traffic: parse_mix refuses them
DEFAULT_MIX = {"quote": 0.8, "availability": 0.1, "promise": 0.1}


@dataclass(frozen=True, slots=True)
class RequestPool:
    """Serialized requests sent in order (wrapping around): ``(kind, bytes)``."""

    name: str
    requests: tuple[tuple[str, bytes], ...]

    def messages(self) -> list[Any]:
        """The requests as protobuf messages (for answer checks)."""
        return [KINDS[kind][0].FromString(raw) for kind, raw in self.requests]

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for kind, _ in self.requests:
            counts[kind] = counts.get(kind, 0) + 1
        return counts


def parse_mix(text: str) -> dict[str, float]:
    """``quote=80,availability=10,promise=10`` → fractions summing to 1."""
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in KINDS or name in PROBES:
            raise ValueError(f"unknown request kind {name!r} (quote, availability, promise)")
        weights[name] = float(weight)
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("the mix weights must add up to more than 0")
    return {name: weight / total for name, weight in weights.items()}


def _pricing_date(extract: Path) -> str:
    return str(json.loads((extract / "extract.json").read_text())["reference_date"])


def _message(kind: str, cart: Cart, pricing_date: str, *, explain: bool = False) -> Any:
    lines = quote_lines(list(zip(cart.skus, cart.qty, cart.uoms, strict=True)))
    region = cart.region or ""
    if kind == "quote":
        return pb.QuoteRequest(
            account=cart.account,
            lines=lines,
            region=region,
            pricing_date=pricing_date,
            explain=explain,
        )
    if kind == "availability":
        return pb.GetAvailabilityRequest(account=cart.account, lines=lines, region=region)
    return pb.PromiseRequest(account=cart.account, lines=lines, region=region)


def build_mix(
    extract: str | Path, count: int, *, mix: dict[str, float] | None = None, seed: int = 0
) -> RequestPool:
    """``count`` requests: kinds drawn by ``mix`` (default 80/10/10), carts from the
    extract's workload, both seeded."""
    extract = Path(extract)
    fractions = mix or DEFAULT_MIX
    names = sorted(fractions)
    rng = np.random.default_rng([seed, 31])
    kinds = rng.choice(len(names), size=count, p=[fractions[n] for n in names])
    workload = Workload.from_extract(extract, seed=seed)
    pricing_date = _pricing_date(extract)
    requests = []
    for index in kinds.tolist():
        kind = names[index]
        requests.append((kind, _message(kind, workload.cart(), pricing_date).SerializeToString()))
    return RequestPool("mix", tuple(requests))


def fixed_quotes(
    extract: str | Path, lines: int, count: int, *, seed: int = 1, explain: bool = False
) -> RequestPool:
    """``count`` Quotes of exactly ``lines`` distinct SKUs (the CPU-ratio workload); with
    ``explain``, each asks for the pricing explanation of every line."""
    extract = Path(extract)
    workload = Workload.from_extract(extract, seed=seed)
    pricing_date = _pricing_date(extract)
    requests = tuple(
        (
            "quote",
            _message(
                "quote", workload.cart(lines), pricing_date, explain=explain
            ).SerializeToString(),
        )
        for _ in range(count)
    )
    return RequestPool(f"quote{lines}{'-explain' if explain else ''}", requests)


def ping_pool() -> RequestPool:
    """Admin Ping: no work, the framework's floor."""
    return RequestPool("ping", (("ping", pb.PingRequest().SerializeToString()),))


def probe_pool() -> RequestPool:
    """Admin Ping and the standard health Check (whole server), alternating: what a
    balancer and an operator send to see that a server is alive."""
    health = health_pb2.HealthCheckRequest().SerializeToString()
    return RequestPool(
        "probe", (("ping", pb.PingRequest().SerializeToString()), ("health", health))
    )


def sample(pool: RequestPool, count: int) -> Sequence[Any]:
    """The first ``count`` requests of ``pool`` as messages (the answer-check sample)."""
    return RequestPool(pool.name, pool.requests[:count]).messages()
