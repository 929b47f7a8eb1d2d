"""Cross-cutting work around every RPC: request ids and logs, auth, limits, metrics, errors.

Each is a ``grpc.aio.ServerInterceptor``. A wrapped method handler is built once per
method and cached (building one per call would cost more than a Ping), and the wrapper runs
in the handler's task, so what it sets in a ``contextvars.ContextVar`` (the caller's
principal) is what the handler sees.

Order (outermost first): :class:`ObservabilityInterceptor` (request id, log line, metrics),
:class:`ErrorInterceptor` (engine/server errors → status via ``server.errors``),
:class:`LimitInterceptor` (concurrent calls of the portal and ingest services; health,
reflection and Admin are never refused for load), :class:`AuthInterceptor` (token →
principal, scope per service).

Streaming handlers come in two styles, and :func:`_wrap` keeps each one's: an async
generator (pacache's own, reflection) is wrapped by an async generator that runs inside
``around.stream``; a coroutine that sends with ``context.write`` and returns nothing
(grpc_health's ``Watch``) is wrapped by a coroutine awaited inside ``around.written``.
Iterating such a coroutine as if it were a generator fails the call (it was INTERNAL).

Wire edges (:func:`_wrap`): every wrapped method decodes its requests with a deserializer
that never raises — bytes that are not a valid message become an :class:`Undecodable`,
which :class:`ErrorInterceptor` answers with INVALID_ARGUMENT (gRPC would otherwise answer
UNKNOWN "Wire format was corrupt"), on unary and streaming methods alike — and encodes
responses with a serializer that passes ``bytes`` through, so a handler may return a
response it already serialised on the engine lane (``server.lane``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn

import grpc
from google.protobuf.message import Message
from grpc import aio
from grpc._cython import cygrpc

from engine.errors import InvalidInput, PacacheError, shown
from server.auth import ANONYMOUS, TokenTable, current_principal
from server.errors import Overloaded, PermissionDenied, status_of

__all__ = [
    "AuthInterceptor",
    "ErrorInterceptor",
    "LimitInterceptor",
    "Metrics",
    "ObservabilityInterceptor",
]

log = logging.getLogger("pacache.rpc")
Around = Callable[[Callable[..., Any], Any, aio.ServicerContext, str], Awaitable[Any]]


class Undecodable:
    """A request whose bytes did not parse as the method's message."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem

    def error(self) -> InvalidInput:
        return InvalidInput("request", f"not a valid message: {self.problem}")


def _safe_deserializer(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    """``deserialize`` that returns an :class:`Undecodable` instead of raising."""
    if deserialize is None or getattr(deserialize, "_pacache_safe", False):
        return deserialize  # type: ignore[return-value]

    def safe(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as error:  # whatever the message class raises, it is the caller's bytes
            return Undecodable(shown(str(error) or type(error).__name__, 120))

    safe._pacache_safe = True  # type: ignore[attr-defined]
    return safe


def _passthrough_serializer(serialize: Callable[[Any], bytes] | None) -> Callable[[Any], bytes]:
    """``serialize`` for messages; ``bytes`` (serialised on the engine lane) go as they are."""
    if serialize is None or getattr(serialize, "_pacache_passthrough", False):
        return serialize  # type: ignore[return-value]

    def passthrough(response: Any) -> bytes:
        if isinstance(response, bytes):
            return response
        return serialize(response)

    passthrough._pacache_passthrough = True  # type: ignore[attr-defined]
    return passthrough


async def _checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """A request stream that raises INVALID_ARGUMENT at the first undecodable message."""
    async for request in requests:
        if isinstance(request, Undecodable):
            raise request.error()
        yield request


def _awaitable(behaviour: Callable[..., Any]) -> Callable[..., Any]:
    """``behaviour`` as a coroutine function. A plain function is what a generated
    servicer's unimplemented method is (it sets UNIMPLEMENTED and raises
    NotImplementedError); awaiting its result directly raised TypeError instead."""
    if inspect.iscoroutinefunction(behaviour):
        return behaviour

    async def call(request: Any, context: aio.ServicerContext) -> Any:
        return behaviour(request, context)

    return call


def _wrap(handler: grpc.RpcMethodHandler, around: Any, method: str) -> grpc.RpcMethodHandler:
    """A handler whose behaviour runs inside ``around`` (unary), ``around.stream``
    (generator-style streaming) or ``around.written`` (coroutine-style streaming)."""
    deserializer = _safe_deserializer(handler.request_deserializer)
    serializer = _passthrough_serializer(handler.response_serializer)
    if handler.unary_unary:
        inner = _awaitable(handler.unary_unary)

        async def unary_unary(request: Any, context: aio.ServicerContext) -> Any:
            return await around(inner, request, context, method)

        return grpc.unary_unary_rpc_method_handler(unary_unary, deserializer, serializer)
    if handler.stream_unary:
        inner_su = _awaitable(handler.stream_unary)

        async def stream_unary(requests: Any, context: aio.ServicerContext) -> Any:
            return await around(inner_su, requests, context, method)

        return grpc.stream_unary_rpc_method_handler(stream_unary, deserializer, serializer)
    streaming = handler.unary_stream or handler.stream_stream
    wrapped: Callable[..., Any]
    if inspect.isasyncgenfunction(streaming):

        async def stream(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
            async for item in around.stream(streaming, request, context, method):
                yield item

        wrapped = stream
    else:  # sends with context.write: grpc awaits it, so the wrapper must be awaited too
        writer = _awaitable(streaming)

        async def written(request: Any, context: aio.ServicerContext) -> None:
            await around.written(writer, request, context, method)

        wrapped = written
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(wrapped, deserializer, serializer)
    return grpc.stream_stream_rpc_method_handler(wrapped, deserializer, serializer)


class _Wrapping(aio.ServerInterceptor):  # type: ignore[misc]  # grpc.aio is untyped
    """Base: wraps each method's handler once and reuses it."""

    def __init__(self) -> None:
        self._cache: dict[str, grpc.RpcMethodHandler | None] = {}

    def applies_to(self, method: str) -> bool:
        return True

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = details.method
        cached = self._cache.get(method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None or not self.applies_to(method):
            return handler
        wrapped = _wrap(handler, self, method)
        self._cache[method] = wrapped
        return wrapped

    async def __call__(
        self, behaviour: Callable[..., Any], request: Any, context: Any, method: str
    ) -> Any:
        raise NotImplementedError

    def stream(
        self, behaviour: Callable[..., Any], request: Any, context: Any, method: str
    ) -> AsyncIterator[Any]:
        raise NotImplementedError

    async def written(
        self, behaviour: Callable[..., Any], request: Any, context: Any, method: str
    ) -> None:
        """A coroutine-style streaming call: by default wrapped like a unary one (it runs
        to its end inside ``__call__``)."""
        await self(behaviour, request, context, method)


def _metadata(context: aio.ServicerContext, key: str) -> str | None:
    for item in context.invocation_metadata() or ():
        if item.key == key:
            return str(item.value)
    return None


class Metrics:
    """Counters per (method, status) and summed latency, for Admin Stats."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.seconds: dict[str, float] = {}


#: RESOURCE_EXHAUSTED answers are logged at most once per this many seconds per method,
#: with their count: a flood of refusals must not turn into a flood of log lines (whose
#: writing costs the event loop more than the refusal itself).
REFUSAL_LOG_INTERVAL_S = 1.0


def _request_id(context: Any) -> str:
    """The caller's ``x-request-id``, or a new one (made only for a log line)."""
    return _metadata(context, "x-request-id") or uuid.uuid4().hex


class ObservabilityInterceptor(_Wrapping):
    """Metrics for every call; a log line (with the caller's ``x-request-id`` or a new
    one) for a failed or slow call — RESOURCE_EXHAUSTED ones summed up, one line per method
    per :data:`REFUSAL_LOG_INTERVAL_S` at most."""

    def __init__(self, metrics: Metrics, slow_ms: float = 250.0) -> None:
        super().__init__()
        self.metrics = metrics
        self.slow_s = slow_ms / 1000
        # method → (refusals not yet in a log line, when the last line was written)
        self._refusals: dict[str, tuple[int, float]] = {}

    def _done(self, method: str, context: Any, started: float) -> None:
        elapsed = time.perf_counter() - started
        code = context.code() if hasattr(context, "code") else None
        status = getattr(code, "name", None) or "OK"
        self.metrics.calls[(method, status)] += 1
        self.metrics.seconds[method] = self.metrics.seconds.get(method, 0.0) + elapsed
        if status == "RESOURCE_EXHAUSTED":
            self._refused(method, context, elapsed)
        elif status != "OK" or elapsed > self.slow_s:
            log.info(
                "rpc method=%s status=%s ms=%.2f request_id=%s",
                method, status, elapsed * 1000, _request_id(context),
            )  # fmt: skip

    def _refused(self, method: str, context: Any, elapsed: float) -> None:
        unlogged, last = self._refusals.get(method, (0, float("-inf")))
        now = time.monotonic()
        if now - last < REFUSAL_LOG_INTERVAL_S:
            self._refusals[method] = (unlogged + 1, last)
            return
        self._refusals[method] = (0, now)
        log.info(
            "rpc method=%s status=RESOURCE_EXHAUSTED calls=%d (since the last such line) "
            "latest: ms=%.2f request_id=%s",
            method, unlogged + 1, elapsed * 1000, _request_id(context),
        )  # fmt: skip

    async def __call__(self, behaviour: Any, request: Any, context: Any, method: str) -> Any:
        started = time.perf_counter()
        try:
            return await behaviour(request, context)
        finally:
            self._done(method, context, started)

    async def stream(
        self, behaviour: Any, request: Any, context: Any, method: str
    ) -> AsyncIterator[Any]:
        started = time.perf_counter()
        try:
            async for item in behaviour(request, context):
                yield item
        finally:
            self._done(method, context, started)


#: The longest error message a caller gets (a message is sent as trailing metadata, which
#: gRPC caps at 8 KB by default; a longer one would fail the call with another error).
MAX_ERROR_MESSAGE = 1_000


def _message(error: BaseException) -> str:
    return shown(str(error), MAX_ERROR_MESSAGE, quote=False)


#: What grpc.aio raises when a batch (a status, a message) cannot go out: the call is over.
_BATCH_FAILED: type[BaseException] = getattr(cygrpc, "ExecuteBatchError", aio.BaseError)


def _caller_gone(context: Any) -> bool:
    """Whether the caller has its answer already: past its deadline, or cancelled."""
    remaining = context.time_remaining()
    return (remaining is not None and remaining <= 0) or bool(context.cancelled())


def _end_quietly(context: Any) -> NoReturn:
    """End a call whose caller is gone as gRPC ends a cancelled one (CancelledError, which
    grpc.aio takes without a word), its code set for the metrics and the log line."""
    remaining = context.time_remaining()
    passed = remaining is not None and remaining <= 0
    context.set_code(grpc.StatusCode.DEADLINE_EXCEEDED if passed else grpc.StatusCode.CANCELLED)
    raise asyncio.CancelledError("the caller is gone (deadline passed or cancelled)")


async def _abort(context: Any, code: grpc.StatusCode, details: str) -> NoReturn:
    """``context.abort(code, details)``, unless the caller is gone.

    A caller past its deadline, or that cancelled, has its answer already. Sending a status
    then fails in gRPC's core, and grpc.aio logs that failure with a traceback, as a server
    error, unless it has seen the close first: a race every short deadline can lose (the
    fuzz suite met it with 1 ms deadlines on Ingest). Such a call ends quietly instead."""
    if _caller_gone(context):
        _end_quietly(context)
    try:
        await context.abort(code, details)
    except _BATCH_FAILED:
        _end_quietly(context)
    raise AssertionError("context.abort returned")  # it always raises: for the type checker


class ErrorInterceptor(_Wrapping):
    """Turns a :class:`PacacheError` into its status code (one table: server.errors), and
    an undecodable request into INVALID_ARGUMENT. A method the servicer does not implement
    (the generated stub's NotImplementedError) is UNIMPLEMENTED, as gRPC itself answers
    it. Anything else escaping a handler is a bug: logged with its traceback and answered
    INTERNAL, naming the request id. No status, answer or streamed message is sent to a
    caller that is gone (:func:`_abort`)."""

    async def __call__(self, behaviour: Any, request: Any, context: Any, method: str) -> Any:
        if isinstance(request, Undecodable):
            error = request.error()
            await _abort(context, status_of(error), _message(error))
        if not isinstance(request, (Message, bytes)) and hasattr(request, "__aiter__"):
            request = _checked(request)
        try:
            response = await behaviour(request, context)
        except PacacheError as error:
            await _abort(context, status_of(error), _message(error))
        except (asyncio.CancelledError, aio.AbortError, aio.BaseError):
            raise
        except _BATCH_FAILED:
            # the handler's own send failed (grpc_health's Check aborts NOT_FOUND itself):
            # a caller that is gone is no bug; anything else still is
            if _caller_gone(context):
                _end_quietly(context)
            log.exception("rpc method=%s failed unexpectedly", method)
            await _abort(context, grpc.StatusCode.INTERNAL, f"{method}: internal error (logged)")
        except NotImplementedError:
            await _abort(context, grpc.StatusCode.UNIMPLEMENTED, f"{method}: not implemented")
        except Exception:
            log.exception("rpc method=%s failed unexpectedly", method)
            await _abort(context, grpc.StatusCode.INTERNAL, f"{method}: internal error (logged)")
        if response is not None and _caller_gone(context):
            _end_quietly(context)  # its sending would fail as a status does (see _abort)
        return response

    async def stream(
        self, behaviour: Any, request: Any, context: Any, method: str
    ) -> AsyncIterator[Any]:
        if isinstance(request, Undecodable):
            error = request.error()
            await _abort(context, status_of(error), _message(error))
        if not isinstance(request, (Message, bytes)) and hasattr(request, "__aiter__"):
            request = _checked(request)
        try:
            async for item in behaviour(request, context):
                if _caller_gone(context):  # grpc's write of it would fail as a status does
                    _end_quietly(context)
                yield item
        except PacacheError as error:
            await _abort(context, status_of(error), _message(error))
        except (asyncio.CancelledError, aio.AbortError, aio.BaseError):
            raise
        except _BATCH_FAILED:
            # the handler's own send failed (grpc_health's Check aborts NOT_FOUND itself):
            # a caller that is gone is no bug; anything else still is
            if _caller_gone(context):
                _end_quietly(context)
            log.exception("rpc method=%s failed unexpectedly", method)
            await _abort(context, grpc.StatusCode.INTERNAL, f"{method}: internal error (logged)")
        except NotImplementedError:
            await _abort(context, grpc.StatusCode.UNIMPLEMENTED, f"{method}: not implemented")
        except Exception:
            log.exception("rpc method=%s failed unexpectedly", method)
            await _abort(context, grpc.StatusCode.INTERNAL, f"{method}: internal error (logged)")


#: The services whose unary calls :class:`LimitInterceptor` counts and refuses: the calls
#: that wait for the engine lane (PriceAvailability) or apply changes (Ingest). Health,
#: reflection and Admin (Ping, Stats, Freshness, Snapshot) are left out: they are how a
#: balancer and an operator see an overloaded server, so load must never refuse them.
LIMITED_SERVICES = frozenset({"pacache.v1.PriceAvailabilityService", "pacache.v1.IngestService"})


class LimitInterceptor(_Wrapping):
    """At most ``max_in_flight`` unary calls of :data:`LIMITED_SERVICES` at once; the next
    fails fast (overload)."""

    def __init__(self, max_in_flight: int) -> None:
        super().__init__()
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    def applies_to(self, method: str) -> bool:
        return method.split("/")[1] in LIMITED_SERVICES

    async def __call__(self, behaviour: Any, request: Any, context: Any, method: str) -> Any:
        if self.in_flight >= self.max_in_flight:
            raise Overloaded(
                f"server: {self.in_flight} calls in flight (limit: max_in_flight "
                f"{self.max_in_flight}); retry with backoff"
            )
        self.in_flight += 1
        try:
            return await behaviour(request, context)
        finally:
            self.in_flight -= 1

    async def stream(
        self, behaviour: Any, request: Any, context: Any, method: str
    ) -> AsyncIterator[Any]:
        async for item in behaviour(request, context):  # streams are long-lived: not counted
            yield item

    async def written(self, behaviour: Any, request: Any, context: Any, method: str) -> None:
        await behaviour(request, context)  # a stream, however it sends: not counted


#: Scope each service needs.
SCOPE_OF_SERVICE = {
    "pacache.v1.PriceAvailabilityService": "read",
    "pacache.v1.IngestService": "ingest",
    "pacache.v1.AdminService": "admin",
}


class AuthInterceptor(_Wrapping):
    """Bearer token → principal (in a context variable), and the service's scope check."""

    def __init__(self, tokens: TokenTable) -> None:
        super().__init__()
        self.tokens = tokens

    def applies_to(self, method: str) -> bool:
        # health and reflection stay open so balancers and tools can probe
        return method.split("/")[1] in SCOPE_OF_SERVICE

    def _authorise(self, context: Any, method: str) -> None:
        principal = self.tokens.authenticate(_metadata(context, "authorization"))
        scope = SCOPE_OF_SERVICE[method.split("/")[1]]
        if scope not in principal.scopes:
            raise PermissionDenied(f"scope: {principal.name} lacks the {scope!r} scope")
        current_principal.set(principal)

    async def __call__(self, behaviour: Any, request: Any, context: Any, method: str) -> Any:
        self._authorise(context, method)
        try:
            return await behaviour(request, context)
        finally:
            current_principal.set(ANONYMOUS)

    async def stream(
        self, behaviour: Any, request: Any, context: Any, method: str
    ) -> AsyncIterator[Any]:
        self._authorise(context, method)
        async for item in behaviour(request, context):
            yield item
