"""A typed Python client for pacache, used by the CLI, the e2e tests and the benchmarks.

It hides the columnar wire format: :meth:`Client.quote` takes lines as
``(sku, qty[, uom])`` tuples and returns :class:`QuotedLine` rows, while
:meth:`Client.quote_raw` returns the response message untouched for callers that want the
columns (the load generator).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from server._proto.pacache.v1 import pacache_pb2 as pb
from server._proto.pacache.v1 import pacache_pb2_grpc as pb_grpc

__all__ = ["Client", "QuotedLine", "lines_message"]

Line = tuple[str, int] | tuple[str, int, str]


def lines_message(lines: Sequence[Line]) -> pb.Lines:
    """Columnar ``Lines`` from (sku, qty[, uom]) tuples."""
    message = pb.Lines(
        skus=[line[0] for line in lines], quantities=[int(line[1]) for line in lines]
    )
    if any(len(line) > 2 and line[2] for line in lines):
        message.uoms.extend([line[2] if len(line) > 2 else "" for line in lines])
    return message


@dataclass(frozen=True, slots=True)
class QuotedLine:
    """One line of a Quote answer, as a row."""

    sku: str
    status: str
    base_qty: int
    unit_price_micros: int
    extended_micros: int
    source: str
    source_id: str
    level: str
    tier_index: int
    next_break_qty: int
    next_break_unit_price_micros: int
    available: dict[str, int]
    network_available: int
    earliest_date: str
    suggested_qty: int
    suggested_uom: str
    below_minimum: bool
    not_multiple: bool


class Client:
    """Blocking client over one channel (``grpc.insecure_channel`` unless TLS is given)."""

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        root_certificates: bytes | None = None,
        timeout: float = 10.0,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates)
            self.channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout
        self.pa = pb_grpc.PriceAvailabilityServiceStub(self.channel)
        self.ingest_stub = pb_grpc.IngestServiceStub(self.channel)
        self.admin = pb_grpc.AdminServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

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
        **kwargs: Any,
    ) -> tuple[pb.QuoteResponse, list[QuotedLine]]:
        """Quote ``lines`` for ``account``; returns the raw response and one row per line."""
        request = pb.QuoteRequest(
            account=account,
            lines=lines_message(lines),
            locations=list(locations),
            region=region,
            currency=currency,
            pricing_date=pricing_date,
            explain=explain,
            min_version=min_version,
            min_stream_ids=min_stream_ids or {},
        )
        response = self.quote_raw(request, **kwargs)
        return response, rows(response, [line[0] for line in lines])

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


def _short(enum: Any, value: int) -> str:
    """Enum value name without its type prefix: LINE_STATUS_OK → OK."""
    name: str = enum.Name(value)
    prefix = "".join("_" + c if c.isupper() else c.upper() for c in enum.DESCRIPTOR.name)
    return name.removeprefix(prefix.lstrip("_") + "_")


def rows(response: pb.QuoteResponse, skus: Sequence[str]) -> list[QuotedLine]:
    """Per-line rows of a Quote response."""
    prices, stock, sell = response.prices, response.availability, response.sell_rules
    width = len(stock.locations)
    out = []
    for i, sku in enumerate(skus):
        priced = i < len(prices.unit_price_micros)
        available = (
            {stock.locations[j]: stock.available[i * width + j] for j in range(width)}
            if width
            else {}
        )
        out.append(
            QuotedLine(
                sku=sku,
                status=_short(pb.LineStatus, response.status[i]),
                base_qty=response.base_qty[i],
                unit_price_micros=prices.unit_price_micros[i] if priced else 0,
                extended_micros=prices.extended_micros[i] if priced else 0,
                source=_short(pb.PriceSource, prices.source[i]) if priced else "",
                source_id=prices.source_id[i] if priced else "",
                level=_short(pb.PriceLevel, prices.level[i]) if priced else "",
                tier_index=prices.tier_index[i] if priced else 0,
                next_break_qty=prices.next_break_qty[i] if priced else 0,
                next_break_unit_price_micros=prices.next_break_unit_price_micros[i]
                if priced
                else 0,
                available=available,
                network_available=stock.network_available[i] if stock.network_available else -1,
                earliest_date=stock.earliest_date[i] if stock.earliest_date else "",
                suggested_qty=sell.suggested_qty[i] if sell.suggested_qty else 0,
                suggested_uom=sell.suggested_uom[i] if sell.suggested_uom else "",
                below_minimum=bool(sell.below_minimum[i]) if sell.below_minimum else False,
                not_multiple=bool(sell.not_multiple[i]) if sell.not_multiple else False,
            )
        )
    return out
