"""gRPC handlers: convert → engine → convert, nothing else (DESIGN §8).

Handlers are ``async`` (grpc.aio on uvloop). The engine's work — reading the request's
lines, pricing, ATP, building and serialising the answer — runs on the engine lane
(``server.lane``), a thread of its own, inside ``host.reading()``: every answer comes from
one state version, whole, and the event loop stays free to accept, admit or refuse calls
and to answer health checks and Ping while a large quote is being computed. Errors are
raised as :class:`engine.errors.PacacheError` and mapped to status codes by
``server.interceptors.ErrorInterceptor``.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import resource
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import numpy as np

from engine.atp import availability, location_set
from engine.deltas import day_number
from engine.errors import InvalidInput, LimitExceeded, PacacheError, UnknownCode
from engine.pricing import Policy
from engine.promise import promise
from engine.quote import quote
from engine.state import Disclosure, State
from server import _wire, convert
from server._proto.pacache.v1 import pacache_pb2 as pb
from server._proto.pacache.v1 import pacache_pb2_grpc as pb_grpc
from server.auth import require_account
from server.errors import status_of
from server.host import StateHost
from server.interceptors import Metrics
from server.lane import EngineLane

__all__ = ["AdminServicer", "IngestServicer", "Limits", "PriceAvailabilityServicer"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Limits:
    """Request limits; each is named in the error a caller gets when it is exceeded.

    ``max_in_flight`` and ``max_queued_lines`` bound how long an admitted call can wait
    for the engine lane (a serving process runs one call's engine work at a time; both
    limits count per serving process): past either, a call is refused at once with
    RESOURCE_EXHAUSTED instead of queueing. Sized from ``python -m bench.overload``
    (README, Configuration): the lane takes ~2.3 ms per 50-line Quote and ~1.8 ms + 3.5
    µs a line (7.6 µs with ``explain``) per large one, so 16 calls in flight are ≤ ~35 ms of
    queued 50-line work and 10,000 lines ≤ ~35-75 ms of large-cart work, while throughput
    peaked at 8 calls in flight per worker in those runs.
    """

    max_lines: int = 5_000
    max_message_bytes: int = 16 * 1024 * 1024
    max_in_flight: int = 16
    max_queued_lines: int = 10_000
    max_hold_lines: int = 5_000
    max_watch_skus: int = 10_000
    max_ingest_events: int = 100_000  # per Ingest message


def _today(host: StateHost) -> int:
    """Today in UTC, unless the deployment pins it (``--today``)."""
    pinned = host.config.today
    return pinned if pinned is not None else day_number(dt.datetime.now(dt.UTC).date())


def _deadline(context: Any) -> float | None:
    """The call's deadline on the ``time.monotonic()`` clock (None: the caller set none)."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


#: A ``min_version`` wait gives up this long before the caller's deadline, so that its
#: answer (DEADLINE_EXCEEDED naming min_version; in QuoteStream, that request's error
#: reply) reaches the caller before the deadline does. Waiting to the deadline itself
#: raced it: the caller got gRPC's bare "Deadline Exceeded", or a QuoteStream lost the
#: reply with the stream.
VERSION_WAIT_MARGIN_S = 0.020


async def _at_version(host: StateHost, request: Any, context: Any) -> None:
    """Read-your-writes: wait (within the deadline, less :data:`VERSION_WAIT_MARGIN_S`)
    for ``min_version`` and ``min_stream_ids`` of the request, after checking that those
    are a version and streams and ids a wait could reach."""
    wanted = request.min_stream_ids
    host.check_min_version(request.min_version)
    host.check_stream_ids(wanted)
    if not host.reached(request.min_version, wanted):
        remaining = context.time_remaining()
        timeout = None if remaining is None else max(0.0, remaining - VERSION_WAIT_MARGIN_S)
        await host.wait_for_version(request.min_version, timeout, wanted)


def _known_account(state: State, account: str) -> None:
    """NOT_FOUND for an account the state does not hold (it may be allowed by a token)."""
    account_id = state.accounts.get(account)
    if account_id < 0 or state.account_rows["version"][account_id] < 0:
        raise UnknownCode("account", account)


@dataclass
class PriceAvailabilityServicer(pb_grpc.PriceAvailabilityServiceServicer):
    """The portal-facing calls."""

    host: StateHost
    limits: Limits = field(default_factory=Limits)
    lane: EngineLane | None = None

    def __post_init__(self) -> None:
        if self.lane is None:
            self.lane = EngineLane(self.limits.max_queued_lines)

    async def _on_lane(self, lines: int, context: Any, work: Callable[[], T]) -> T:
        assert self.lane is not None
        return await self.lane.run(lines, work, _deadline(context))

    def _quote(
        self,
        state: State,
        request: Any,
        lines: convert.RequestLines,
        *,
        prices: bool,
        stock: bool,
        explain: bool = False,
    ) -> tuple[Any, Policy]:
        self.host.require_streams("master", *(("pricing",) if prices else ()),
                                  *(("inventory",) if stock else ()))  # fmt: skip
        require_account(request.account)
        today = _today(self.host)
        locations = list(request.locations) if stock else None
        policy = convert.policy_of(getattr(request, "policy", 0), self.host.config.policy)
        result = quote(
            state,
            account=request.account,
            skus=lines.skus,
            qty=lines.quantities,
            uoms=lines.uoms,
            currency=getattr(request, "currency", "") or None,
            pricing_date=convert.parse_date(
                getattr(request, "pricing_date", ""), "pricing_date", today
            ),
            today=today,
            locations=locations or None,
            region=(request.region or None) if stock else None,
            policy=policy,
            explain=explain,
            with_prices=prices,
            with_availability=stock,
            max_lines=self.limits.max_lines,
        )
        return result, policy

    def _answer(self, request: Any, kind: int) -> bytes:
        """A Quote / GetPrices / GetAvailability answer as wire bytes (runs on the lane):
        the engine's result encoded by the compiled encoder, inside the read of the one
        state version it came from (the code arenas it names are that version's)."""
        prices = kind != convert.KIND_AVAILABILITY
        stock = kind != convert.KIND_PRICES
        explain = getattr(request, "explain", False)
        with self.host.reading() as state:
            lines = convert.request_lines(request, self.limits.max_lines)
            result, policy = self._quote(
                state, request, lines, prices=prices, stock=stock, explain=explain
            )
            return convert.encode_answer(convert.answer_inputs(kind, state, result, lines, policy))

    async def Quote(self, request: pb.QuoteRequest, context: Any) -> bytes:
        await _at_version(self.host, request, context)
        return await self._on_lane(
            len(request.lines),
            context,
            lambda: self._answer(request, convert.KIND_QUOTE),
        )

    async def GetPrices(self, request: pb.GetPricesRequest, context: Any) -> bytes:
        await _at_version(self.host, request, context)
        return await self._on_lane(
            len(request.lines),
            context,
            lambda: self._answer(request, convert.KIND_PRICES),
        )

    async def GetAvailability(self, request: pb.GetAvailabilityRequest, context: Any) -> bytes:
        await _at_version(self.host, request, context)
        return await self._on_lane(
            len(request.lines),
            context,
            lambda: self._answer(request, convert.KIND_AVAILABILITY),
        )

    def _promise(self, request: pb.PromiseRequest) -> bytes:
        with self.host.reading() as state:
            self.host.require_streams("master", "inventory")
            require_account(request.account)
            _known_account(state, request.account)
            lines = convert.request_lines(request, self.limits.max_lines)
            if request.max_shipments < 0:
                raise InvalidInput(
                    "max_shipments", f"{request.max_shipments}", ">= 0 (0: no limit)"
                )
            today = _today(self.host)
            need_by = (
                convert.parse_date(request.need_by, "need_by", -1) if request.need_by else None
            )
            plan = promise(
                state,
                skus=lines.skus,
                qty=lines.quantities,
                uoms=lines.uoms,
                region=request.region or None,
                locations=list(request.locations) or None,
                today=today,
                ship_complete=request.ship_complete,
                max_shipments=request.max_shipments or None,
                need_by=need_by,
            )
            return convert.promise_response(state, plan, lines).SerializeToString()  # type: ignore[no-any-return]

    async def Promise(self, request: pb.PromiseRequest, context: Any) -> bytes:
        await _at_version(self.host, request, context)
        return await self._on_lane(len(request.lines), context, lambda: self._promise(request))

    def _stream_reply(self, item: pb.QuoteStreamRequest) -> bytes:
        head = pb.QuoteStreamResponse(request_id=item.request_id).SerializeToString()
        try:
            return _wire.wrap(2, head, self._answer(item.quote, convert.KIND_QUOTE))
        except PacacheError as error:  # one bad request must not end the stream
            reply = pb.QuoteStreamResponse(
                request_id=item.request_id,
                error_code=status_of(error).value[0],
                error_message=convert.error_text(error),
            )
            return reply.SerializeToString()  # type: ignore[no-any-return]

    async def QuoteStream(
        self, requests: AsyncIterator[pb.QuoteStreamRequest], context: Any
    ) -> AsyncIterator[bytes]:
        async for item in requests:
            try:
                await _at_version(self.host, item.quote, context)
                yield await self._on_lane(
                    len(item.quote.lines), context, functools.partial(self._stream_reply, item)
                )
            except PacacheError as error:  # waiting or admission failed: this request only
                reply = pb.QuoteStreamResponse(
                    request_id=item.request_id,
                    error_code=status_of(error).value[0],
                    error_message=convert.error_text(error),
                )
                yield reply.SerializeToString()

    def _watch_start(self, request: pb.WatchAvailabilityRequest) -> tuple[Any, dict[int, int]]:
        """Check a Watch request; its locations and the position of each watched SKU id."""
        with self.host.reading() as state:
            require_account(request.account)
            _known_account(state, request.account)
            codes = list(request.skus)
            if not codes:
                raise InvalidInput("skus", "no SKUs to watch", "at least 1")
            if len(codes) > self.limits.max_watch_skus:
                raise LimitExceeded(
                    "skus", f"{len(codes)}", f"at most {self.limits.max_watch_skus}"
                )
            locations = location_set(state, list(request.locations) or None, request.region or None)
            sku_ids = state.skus.lookup(codes)
            position = {int(s): i for i, s in enumerate(sku_ids.tolist()) if s >= 0}
            return locations, position

    def _watch_message(
        self,
        request: pb.WatchAvailabilityRequest,
        codes: list[str],
        indexes: list[int],
        sku_ids: Any,
        locations: Any,
        *,
        snapshot: bool,
    ) -> bytes:
        with self.host.reading() as state:
            need = np.zeros(len(sku_ids), dtype=np.int64)
            account = state.accounts.get(request.account)
            mode = Disclosure(int(state.account_rows["disclosure"][account]))
            cap = int(state.account_rows["disclosure_cap"][account])
            # an unknown SKU (-1) is answered "nothing"
            stock, shown, bucket = availability(
                state, sku_ids, need, locations, _today(self.host), mode, cap
            )
            location_codes = state.locations.codes_at(stock.locations)
            message = pb.WatchAvailabilityResponse(
                snapshot=snapshot, disclosure=convert.DISCLOSURE_PB[mode], locations=location_codes
            )
            convert.fill_as_of(message.as_of, convert.as_of(state))
            network = convert.network_shown(stock, shown, mode)
            earliest = convert.days_to_iso(stock.earliest_date)
            for i, (code, index) in enumerate(zip(codes, indexes, strict=True)):
                watched = message.skus.add(sku=code, index=index)
                convert.availability_message(
                    watched.availability, i, location_codes, stock, shown, bucket, mode,
                    network, earliest,
                )  # fmt: skip
            return message.SerializeToString()  # type: ignore[no-any-return]

    async def WatchAvailability(
        self, request: pb.WatchAvailabilityRequest, context: Any
    ) -> AsyncIterator[bytes]:
        size = len(request.skus)
        queue = self.host.subscribe()
        try:
            locations, position = await self._on_lane(
                size, context, lambda: self._watch_start(request)
            )
            codes = list(request.skus)

            async def message(picked: list[int], *, snapshot: bool) -> bytes:
                if snapshot:
                    picked_codes = codes
                    indexes = list(range(len(codes)))
                    ids = np.array([s for s in self._ids_of(codes, position)], dtype=np.int64)
                else:
                    indexes = [position[s] for s in picked]
                    picked_codes = [codes[i] for i in indexes]
                    ids = np.array(picked, dtype=np.int64)
                return await self._on_lane(
                    len(picked_codes),
                    context,
                    lambda: self._watch_message(
                        request, picked_codes, indexes, ids, locations, snapshot=snapshot
                    ),
                )

            since = request.from_version
            history = self.host.changes_since(since) if since else None
            if history is None:
                yield await message([], snapshot=True)
            else:
                pending = {s for c in history for s in c.skus.tolist() if s in position}
                if pending or not history:
                    yield await message(sorted(pending, key=position.__getitem__), snapshot=False)
            while True:
                change = await queue.get()
                hit = sorted((s for s in change.skus.tolist() if s in position),
                             key=position.__getitem__)  # fmt: skip
                if hit:
                    yield await message(hit, snapshot=False)
        finally:
            self.host.unsubscribe(queue)

    @staticmethod
    def _ids_of(codes: list[str], position: dict[int, int]) -> list[int]:
        """SKU id per watched code, in request order (-1 where unknown)."""
        by_position = {i: s for s, i in position.items()}
        return [by_position.get(i, -1) for i in range(len(codes))]

    def _hold_lines(self, request: pb.ReserveRequest) -> tuple[tuple[str, str, int], ...]:
        with self.host.reading() as state:
            require_account(request.account)
            _known_account(state, request.account)
            if not request.lines:
                raise InvalidInput("lines", "no lines", "at least 1")
            if len(request.lines) > self.limits.max_hold_lines:
                raise LimitExceeded(
                    "lines", f"{len(request.lines)}", f"at most {self.limits.max_hold_lines}"
                )
            return convert.hold_lines(state, request.lines)

    def _reserve_answer(self, hold: Any) -> bytes:
        with self.host.reading() as state:
            return convert.reserve_response(state, hold).SerializeToString()  # type: ignore[no-any-return]

    async def Reserve(self, request: pb.ReserveRequest, context: Any) -> bytes:
        size = len(request.lines)
        lines = await self._on_lane(size, context, lambda: self._hold_lines(request))
        hold = await self.host.reserve(request.account, request.hold_key, lines, request.ttl_ms)
        return await self._on_lane(size, context, lambda: self._reserve_answer(hold))

    async def Release(self, request: pb.ReleaseRequest, context: Any) -> pb.ReleaseResponse:
        require_account(request.account)
        _known_account(self.host.require(), request.account)
        was_active = await self.host.release(request.account, request.hold_key)
        response = pb.ReleaseResponse(released=was_active)
        convert.fill_as_of(response.as_of, convert.as_of(self.host.require()))
        return response


@dataclass
class IngestServicer(pb_grpc.IngestServiceServicer):
    """Deltas pushed in over gRPC: each message is applied as one batch, in order, and
    acknowledged only once durable (see ``StateHost.ingest_payload``)."""

    host: StateHost
    limits: Limits = field(default_factory=Limits)

    async def Ingest(
        self, requests: AsyncIterator[pb.IngestRequest], context: Any
    ) -> pb.IngestResponse:
        response = pb.IngestResponse()
        position = 0
        async for message in requests:
            outcome = await self.host.ingest_payload(message.payload, self.limits.max_ingest_events)
            response.accepted += outcome.accepted
            response.stale += outcome.stale
            for index, reason in outcome.rejected:
                response.rejections.add(index=position + index, reason=reason)
            position += outcome.events
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
