"""gRPC handlers: convert → engine → convert, nothing else (DESIGN §8).

Handlers are ``async`` (grpc.aio on uvloop). Engine calls are synchronous and short; they
run on the event loop thread between two batches, so every answer comes from one state
version. Errors are raised as :class:`engine.errors.PacacheError` and mapped to status
codes by ``server.interceptors.ErrorInterceptor``.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np

from engine.atp import availability, location_set
from engine.deltas import day_number
from engine.errors import InvalidInput, LimitExceeded, PacacheError
from engine.promise import promise
from engine.quote import disclose, quote
from engine.state import Disclosure
from loaders.events import DecodeError, decode, decode_one_by_one
from server import convert
from server._proto.pacache.v1 import pacache_pb2 as pb
from server._proto.pacache.v1 import pacache_pb2_grpc as pb_grpc
from server.auth import require_account
from server.errors import status_of
from server.host import StateHost
from server.interceptors import Metrics

__all__ = ["AdminServicer", "IngestServicer", "Limits", "PriceAvailabilityServicer"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Request limits; each is named in the error a caller gets when it is exceeded."""

    max_lines: int = 5_000
    max_message_bytes: int = 16 * 1024 * 1024
    max_in_flight: int = 256
    max_hold_lines: int = 5_000
    max_watch_skus: int = 10_000
    max_ingest_events: int = 100_000  # per Ingest message


def _today(host: StateHost) -> int:
    """Today in UTC, unless the deployment pins it (``--today``)."""
    pinned = host.config.today
    return pinned if pinned is not None else day_number(dt.datetime.now(dt.UTC).date())


async def _at_version(host: StateHost, request: Any, context: Any) -> None:
    """Read-your-writes: wait (within the deadline) for ``min_version`` and
    ``min_stream_ids`` of the request."""
    wanted = request.min_stream_ids
    if not host.reached(request.min_version, wanted):
        await host.wait_for_version(request.min_version, context.time_remaining(), wanted)


@dataclass
class PriceAvailabilityServicer(pb_grpc.PriceAvailabilityServiceServicer):
    """The portal-facing calls."""

    host: StateHost
    limits: Limits = field(default_factory=Limits)

    def _quote(self, request: Any, *, prices: bool, stock: bool, explain: bool = False) -> Any:
        state = self.host.require()
        self.host.require_streams("master", *(("pricing",) if prices else ()),
                                  *(("inventory",) if stock else ()))  # fmt: skip
        require_account(request.account)
        skus, quantities, uoms = convert.lines_from_proto(request.lines, self.limits.max_lines)
        today = _today(self.host)
        locations = list(request.locations) if stock else None
        return state, quote(
            state,
            account=request.account,
            skus=skus,
            qty=quantities,
            uoms=uoms,
            currency=getattr(request, "currency", "") or None,
            pricing_date=convert.parse_date(
                getattr(request, "pricing_date", ""), "pricing_date", today
            ),
            today=today,
            locations=locations or None,
            region=(request.region or None) if stock else None,
            policy=self.host.config.policy,
            explain=explain,
            with_prices=prices,
            with_availability=stock,
            max_lines=self.limits.max_lines,
        )

    async def Quote(self, request: pb.QuoteRequest, context: Any) -> pb.QuoteResponse:
        await _at_version(self.host, request, context)
        state, result = self._quote(request, prices=True, stock=True, explain=request.explain)
        response = pb.QuoteResponse()
        convert.quote_response(response, state, result, with_prices=True, with_availability=True)
        return response

    async def GetPrices(self, request: pb.GetPricesRequest, context: Any) -> pb.GetPricesResponse:
        await _at_version(self.host, request, context)
        state, result = self._quote(request, prices=True, stock=False, explain=request.explain)
        response = pb.GetPricesResponse()
        convert.quote_response(response, state, result, with_prices=True, with_availability=False)
        return response

    async def GetAvailability(
        self, request: pb.GetAvailabilityRequest, context: Any
    ) -> pb.GetAvailabilityResponse:
        await _at_version(self.host, request, context)
        state, result = self._quote(request, prices=False, stock=True)
        response = pb.GetAvailabilityResponse()
        convert.quote_response(response, state, result, with_prices=False, with_availability=True)
        return response

    async def Promise(self, request: pb.PromiseRequest, context: Any) -> pb.PromiseResponse:
        await _at_version(self.host, request, context)
        state = self.host.require()
        require_account(request.account)
        skus, quantities, uoms = convert.lines_from_proto(request.lines, self.limits.max_lines)
        if request.max_shipments < 0:
            raise InvalidInput("max_shipments", f"{request.max_shipments}", ">= 0 (0: no limit)")
        today = _today(self.host)
        plan = promise(
            state,
            skus=skus,
            qty=quantities,
            uoms=uoms,
            region=request.region or None,
            locations=list(request.locations) or None,
            today=today,
            ship_complete=request.ship_complete,
            max_shipments=request.max_shipments or None,
            need_by=convert.parse_date(request.need_by, "need_by", -1) if request.need_by else None,
        )
        return convert.promise_response(state, plan)

    async def QuoteStream(
        self, requests: AsyncIterator[pb.QuoteStreamRequest], context: Any
    ) -> AsyncIterator[pb.QuoteStreamResponse]:
        async for item in requests:
            reply = pb.QuoteStreamResponse(request_id=item.request_id)
            try:
                await _at_version(self.host, item.quote, context)
                state, result = self._quote(
                    item.quote, prices=True, stock=True, explain=item.quote.explain
                )
                convert.quote_response(
                    reply.quote, state, result, with_prices=True, with_availability=True
                )
            except PacacheError as error:  # one bad request must not end the stream
                reply.ClearField("quote")
                reply.error_code = status_of(error).value[0]
                reply.error_message = str(error)
            yield reply

    def _watch_picture(self, request: Any, sku_ids: np.ndarray[Any, Any], locations: Any) -> Any:
        state = self.host.require()
        need = np.zeros(sku_ids.size, dtype=np.int64)
        stock = availability(state, np.maximum(sku_ids, 0), need, locations, _today(self.host))
        account = state.accounts.get(request.account)
        mode = Disclosure(int(state.account_rows["disclosure"][account]))
        cap = int(state.account_rows["disclosure_cap"][account])
        shown, bucket = disclose(mode, cap, stock.available_now)
        return stock, shown, bucket, mode

    async def WatchAvailability(
        self, request: pb.WatchAvailabilityRequest, context: Any
    ) -> AsyncIterator[pb.WatchAvailabilityResponse]:
        state = self.host.require()
        require_account(request.account)
        if state.accounts.get(request.account) < 0:
            from engine.errors import UnknownCode

            raise UnknownCode("account", request.account)
        codes = list(request.skus)
        if not codes:
            raise InvalidInput("skus", "no SKUs to watch", "at least 1")
        if len(codes) > self.limits.max_watch_skus:
            raise LimitExceeded("skus", f"{len(codes)}", f"at most {self.limits.max_watch_skus}")
        locations = location_set(state, list(request.locations) or None, request.region or None)
        queue = self.host.subscribe()
        try:
            sku_ids = state.skus.lookup(codes)
            position = {int(s): i for i, s in enumerate(sku_ids.tolist()) if s >= 0}
            since = request.from_version
            history = self.host.changes_since(since) if since else None
            if history is None:
                yield self._watch_message(request, codes, sku_ids, locations, snapshot=True)
            else:
                pending = {s for c in history for s in c.skus.tolist() if s in position}
                if pending or not history:
                    picked = sorted(pending, key=position.__getitem__)
                    yield self._watch_subset(request, codes, position, picked, locations)
            while True:
                change = await queue.get()
                watched = (s for s in change.skus.tolist() if s in position)
                hit = sorted(watched, key=position.__getitem__)
                if hit:
                    yield self._watch_subset(request, codes, position, hit, locations)
        finally:
            self.host.unsubscribe(queue)

    def _watch_subset(
        self,
        request: Any,
        codes: list[str],
        position: dict[int, int],
        hit: list[int],
        locations: Any,
    ) -> pb.WatchAvailabilityResponse:
        picked_codes = [codes[position[s]] for s in hit]
        return self._watch_message(
            request, picked_codes, np.array(hit, dtype=np.int64), locations, snapshot=False
        )

    def _watch_message(
        self, request: Any, codes: list[str], sku_ids: Any, locations: Any, *, snapshot: bool
    ) -> pb.WatchAvailabilityResponse:
        state = self.host.require()
        stock, shown, bucket, mode = self._watch_picture(request, sku_ids, locations)
        message = pb.WatchAvailabilityResponse(snapshot=snapshot, skus=codes)
        convert.fill_as_of(message.as_of, convert.as_of(state))
        convert.availability_columns(message.availability, state, stock, shown, bucket, mode)
        return message

    async def Reserve(self, request: pb.ReserveRequest, context: Any) -> pb.ReserveResponse:
        state = self.host.require()
        require_account(request.account)
        if not request.lines:
            raise InvalidInput("lines", "no lines", "at least 1")
        if len(request.lines) > self.limits.max_hold_lines:
            raise LimitExceeded(
                "lines", f"{len(request.lines)}", f"at most {self.limits.max_hold_lines}"
            )
        lines = convert.hold_lines(state, request.lines)
        hold = await self.host.reserve(request.hold_key, lines, request.ttl_ms)
        return convert.reserve_response(self.host.require(), hold)

    async def Release(self, request: pb.ReleaseRequest, context: Any) -> pb.ReleaseResponse:
        require_account(request.account)
        was_active = await self.host.release(request.hold_key)
        response = pb.ReleaseResponse(released=was_active)
        convert.fill_as_of(response.as_of, convert.as_of(self.host.require()))
        return response


@dataclass
class IngestServicer(pb_grpc.IngestServiceServicer):
    """Deltas pushed in over gRPC: each message is applied as one batch, in order."""

    host: StateHost
    limits: Limits = field(default_factory=Limits)

    async def Ingest(
        self, requests: AsyncIterator[pb.IngestRequest], context: Any
    ) -> pb.IngestResponse:
        response = pb.IngestResponse()
        position = 0
        async for message in requests:
            try:
                events = decode(message.payload)
                bad: list[tuple[int, str]] = []
            except DecodeError:
                events, bad = decode_one_by_one(message.payload)
            if len(events) > self.limits.max_ingest_events:
                raise LimitExceeded(
                    "payload", f"{len(events)} events", f"at most {self.limits.max_ingest_events}"
                )
            result = await self.host.ingest(events)
            response.accepted += result.applied
            response.stale += result.stale
            for index, reason in bad:
                response.rejections.add(index=position + index, reason=reason)
            for index, reason in result.rejected:
                response.rejections.add(index=position + index, reason=reason)
            position += len(events) + len(bad)
        convert.fill_as_of(response.as_of, convert.as_of(self.host.require()))
        return response


@dataclass
class AdminServicer(pb_grpc.AdminServiceServicer):
    """Operations: Ping (no work), Stats, Freshness, Snapshot."""

    host: StateHost
    metrics: Metrics
    snapshot_root: str | None = None

    async def Ping(self, request: pb.PingRequest, context: Any) -> pb.PingResponse:
        return pb.PingResponse()

    async def Stats(self, request: pb.StatsRequest, context: Any) -> pb.StatsResponse:
        await self.host.refresh_stats()
        state = self.host.require()
        response = pb.StatsResponse(
            uptime_ms=int(time.time() * 1000) - self.host.started_ms,
            rss_bytes=_rss_bytes(),
        )
        convert.fill_as_of(response.as_of, convert.as_of(state))
        now_ms = int(time.time() * 1000)
        for name, stream in self.host.streams.items():
            response.streams.add(
                stream=name,
                last_id=stream.last_id,
                lag_entries=stream.lag_entries,
                freshness_ms=now_ms - stream.newest_ts_ms if stream.newest_ts_ms else 0,
                applied=stream.applied,
                dead_lettered=stream.dead_lettered,
                gap_detected=bool(stream.gap),
            )
        response.counts.update(
            {
                **state.counts(),
                "holds_active": self.host.holds_active(),
                "events_applied": self.host.applied_total,
                "events_rejected": self.host.rejected_total,
                "pid": os.getpid(),  # which worker answered, with --workers
                **{
                    f"rpc:{method}:{status}": count
                    for (method, status), count in self.metrics.calls.items()
                },
            }
        )
        return response

    async def Freshness(self, request: pb.FreshnessRequest, context: Any) -> pb.FreshnessResponse:
        state = self.host.require()
        now = int(time.time() * 1000)
        staleness = now - state.newest_ts_ms if state.newest_ts_ms else 0
        response = pb.FreshnessResponse(
            staleness_ms=staleness,
            serving=self.host.serving,
            writer_silence_ms=self.host.writer_silence_ms(),
        )
        convert.fill_as_of(response.as_of, convert.as_of(state))
        return response

    async def Snapshot(self, request: pb.SnapshotRequest, context: Any) -> pb.SnapshotResponse:
        self.host.require()
        if not self.snapshot_root:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "snapshot: no --snapshot-dir configured"
            )
        root = self.snapshot_root
        assert root is not None
        path, state = await self.host.write_snapshot(root)
        response = pb.SnapshotResponse(path=path)
        convert.fill_as_of(response.as_of, convert.as_of(state))
        return response


def _rss_bytes() -> int:
    try:
        with open(f"/proc/{os.getpid()}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
