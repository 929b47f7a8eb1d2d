"""A typed Python client for pacache, used by the CLI, the e2e tests and the benchmarks.

:meth:`Client.quote` takes lines as ``(sku, qty[, uom[, line_id]])`` tuples and returns
the response with one typed :class:`QuotedLine` row per line; the other calls take and
return the ``pacache.v1`` messages.

One HTTP/2 connection is served by one server worker (the kernel hands a connection to one
of the ``SO_REUSEPORT`` listeners for its life), so a client that should use every worker
needs several connections: ``Client(target, channels=N)`` opens N channels, each its own
connection (``grpc.use_local_subchannel_pool``: gRPC would otherwise share one), and
sends the calls round-robin over them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from server._proto.pacache.v1 import pacache_pb2 as pb
from server._proto.pacache.v1 import pacache_pb2_grpc as pb_grpc

__all__ = ["Client", "QuotedLine", "quote_lines", "rows", "short_name"]

Line = tuple[str, int] | tuple[str, int, str] | tuple[str, int, str, str]


def quote_lines(lines: Sequence[Line]) -> list[pb.QuoteLine]:
    """Request lines from (sku, qty[, uom[, line_id]]) tuples."""
    return [
        pb.QuoteLine(
            sku=line[0],
            quantity=int(line[1]),
            uom=line[2] if len(line) > 2 else "",
            line_id=line[3] if len(line) > 3 else "",
        )
        for line in lines
    ]


@dataclass(frozen=True, slots=True)
class QuotedLine:
    """One line of a Quote answer, as a row (enum values by short name: "OK")."""

    line_id: str
    index: int
    sku: str
    quantity: int
    uom: str
    status: str
    base_qty: int
    unit_price_micros: int
    extended_micros: int
    source: str
    source_id: str
    level: str
    kind: str
    target_group: str
    tier_index: int
    next_break_qty: int
    next_break_unit_price_micros: int
    available: dict[str, int]
    network_available: int
    earliest_date: str
    date_source: str
    suggested_qty: int
    suggested_uom: str
    below_minimum: bool
    not_multiple: bool


class Client:
    """Blocking client over ``channels`` connections (insecure unless TLS is given); calls
    go round-robin over them."""

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        root_certificates: bytes | None = None,
        timeout: float = 10.0,
        options: Sequence[tuple[str, Any]] = (),
        channels: int = 1,
    ) -> None:
        if channels < 1:
            raise ValueError(f"channels: {channels}, at least 1")
        if channels > 1:
            options = (*options, ("grpc.use_local_subchannel_pool", 1))
        self.channels = []
        for _ in range(channels):
            if root_certificates is not None:
                credentials = grpc.ssl_channel_credentials(root_certificates)
                self.channels.append(grpc.secure_channel(target, credentials, options=options))
            else:
                self.channels.append(grpc.insecure_channel(target, options=options))
        self.channel = self.channels[0]
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout
        self._stubs = [
            (
                pb_grpc.PriceAvailabilityServiceStub(channel),
                pb_grpc.IngestServiceStub(channel),
                pb_grpc.AdminServiceStub(channel),
            )
            for channel in self.channels
        ]
        self._next = itertools.cycle(range(channels))

    @property
    def pa(self) -> pb_grpc.PriceAvailabilityServiceStub:
        return self._stubs[next(self._next)][0]

    @property
    def ingest_stub(self) -> pb_grpc.IngestServiceStub:
        return self._stubs[next(self._next)][1]

    @property
    def admin(self) -> pb_grpc.AdminServiceStub:
        return self._stubs[next(self._next)][2]

    def close(self) -> None:
        for channel in self.channels:
            channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Any, request: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout)
        return method(request, metadata=self.metadata, **kwargs)

    def quote_raw(self, request: pb.QuoteRequest, **kwargs: Any) -> pb.QuoteResponse:
        return self._call(self.pa.Quote, request, **kwargs)  # type: ignore[no-any-return]

    def quote(
        self,
        account: str,
        lines: Sequence[Line],
        *,
        locations: Sequence[str] = (),
        region: str = "",
        currency: str = "",
        pricing_date: str = "",
        explain: bool = False,
        min_version: int = 0,
        min_stream_ids: dict[str, str] | None = None,
        policy: str = "",
        **kwargs: Any,
    ) -> tuple[pb.QuoteResponse, list[QuotedLine]]:
        """Quote ``lines`` for ``account``; returns the raw response and one row per line.
        ``policy``: "" (the server's default), "PRIORITY" or "LOWEST_PRICE"."""
        request = pb.QuoteRequest(
            account=account,
            lines=quote_lines(lines),
            policy=pb.Policy.Value(f"POLICY_{policy}") if policy else pb.POLICY_UNSPECIFIED,
            locations=list(locations),
            region=region,
            currency=currency,
            pricing_date=pricing_date,
            explain=explain,
            min_version=min_version,
            min_stream_ids=min_stream_ids or {},
        )
        response = self.quote_raw(request, **kwargs)
        return response, rows(response)

    def get_prices(self, request: pb.GetPricesRequest, **kwargs: Any) -> pb.GetPricesResponse:
        return self._call(self.pa.GetPrices, request, **kwargs)  # type: ignore[no-any-return]

    def get_availability(
        self, request: pb.GetAvailabilityRequest, **kwargs: Any
    ) -> pb.GetAvailabilityResponse:
        return self._call(self.pa.GetAvailability, request, **kwargs)  # type: ignore[no-any-return]

    def promise(self, request: pb.PromiseRequest, **kwargs: Any) -> pb.PromiseResponse:
        return self._call(self.pa.Promise, request, **kwargs)  # type: ignore[no-any-return]

    def quote_stream(
        self, requests: Iterable[pb.QuoteStreamRequest], **kwargs: Any
    ) -> Iterator[pb.QuoteStreamResponse]:
        kwargs.setdefault("timeout", None)
        return self.pa.QuoteStream(iter(requests), metadata=self.metadata, **kwargs)  # type: ignore[no-any-return]

    def watch(
        self, request: pb.WatchAvailabilityRequest, **kwargs: Any
    ) -> Iterator[pb.WatchAvailabilityResponse]:
        kwargs.setdefault("timeout", None)
        return self.pa.WatchAvailability(request, metadata=self.metadata, **kwargs)  # type: ignore[no-any-return]

    def reserve(self, request: pb.ReserveRequest, **kwargs: Any) -> pb.ReserveResponse:
        return self._call(self.pa.Reserve, request, **kwargs)  # type: ignore[no-any-return]

    def release(self, request: pb.ReleaseRequest, **kwargs: Any) -> pb.ReleaseResponse:
        return self._call(self.pa.Release, request, **kwargs)  # type: ignore[no-any-return]

    def ingest(
        self, payloads: Iterable[bytes], *, json: bool = False, **kwargs: Any
    ) -> pb.IngestResponse:
        """Push encoded event entries (see ``loaders.events.encode``) as one Ingest stream."""
        encoding = pb.ENCODING_JSON if json else pb.ENCODING_MSGPACK
        messages = (pb.IngestRequest(payload=p, encoding=encoding) for p in payloads)
        kwargs.setdefault("timeout", self.timeout)
        return self.ingest_stub.Ingest(messages, metadata=self.metadata, **kwargs)  # type: ignore[no-any-return]

    def ping(self, **kwargs: Any) -> pb.PingResponse:
        return self._call(self.admin.Ping, pb.PingRequest(), **kwargs)  # type: ignore[no-any-return]

    def stats(self, **kwargs: Any) -> pb.StatsResponse:
        return self._call(self.admin.Stats, pb.StatsRequest(), **kwargs)  # type: ignore[no-any-return]

    def freshness(self, **kwargs: Any) -> pb.FreshnessResponse:
        return self._call(self.admin.Freshness, pb.FreshnessRequest(), **kwargs)  # type: ignore[no-any-return]

    def snapshot(self, **kwargs: Any) -> pb.SnapshotResponse:
        return self._call(self.admin.Snapshot, pb.SnapshotRequest(), **kwargs)  # type: ignore[no-any-return]


def short_name(enum: Any, value: int) -> str:
    """Enum value name without its type prefix: LINE_STATUS_OK → OK."""
    name: str = enum.Name(value)
    prefix = "".join("_" + c if c.isupper() else c.upper() for c in enum.DESCRIPTOR.name)
    return name.removeprefix(prefix.lstrip("_") + "_")


def rows(response: Any) -> list[QuotedLine]:
    """Per-line rows of a Quote / GetPrices / GetAvailability response (price fields 0 / ""
    where prices were not asked, availability empty / -1 where it was not)."""
    out = []
    for line in response.lines:
        price, rules, stock = line.price, line.sell_rules, line.availability
        priced = line.HasField("price") and line.status == pb.LINE_STATUS_OK
        out.append(
            QuotedLine(
                line_id=line.line_id,
                index=line.index,
                sku=line.sku,
                quantity=line.quantity,
                uom=line.uom,
                status=short_name(pb.LineStatus, line.status),
                base_qty=line.base_qty,
                unit_price_micros=price.unit_price_micros,
                extended_micros=price.extended_micros,
                source=short_name(pb.PriceSource, price.source) if priced else "",
                source_id=price.source_id,
                level=short_name(pb.PriceLevel, price.level) if priced else "",
                kind=short_name(pb.LineKind, price.kind) if price.kind else "",
                target_group=price.target_group,
                tier_index=price.tier_index,
                next_break_qty=price.next_break_qty,
                next_break_unit_price_micros=price.next_break_unit_price_micros,
                available={a.location: a.available for a in stock.locations},
                network_available=(
                    stock.network_available if line.HasField("availability") else -1
                ),
                earliest_date=stock.earliest_date,
                date_source=(
                    short_name(pb.DateSource, stock.date_source) if stock.date_source else ""
                ),
                suggested_qty=rules.suggested_qty,
                suggested_uom=rules.suggested_uom,
                below_minimum=rules.below_minimum,
                not_multiple=rules.not_multiple,
            )
        )
    return out
