"""Interceptors without a server: which calls the in-flight limit counts, how refusals are
logged (summed up, not one line each), and which status a call ends with."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc
import pytest
from grpc._cython import cygrpc

from engine.errors import InvalidInput
from server import interceptors
from server._proto.pacache.v1 import pacache_pb2 as pb
from server.interceptors import (
    ErrorInterceptor,
    LimitInterceptor,
    Metrics,
    ObservabilityInterceptor,
    _wrap,
)


class _Context:
    def __init__(self, code: grpc.StatusCode | None) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def invocation_metadata(self) -> tuple[Any, ...]:
        return ()


def test_the_limit_counts_portal_and_ingest_calls_but_never_probes() -> None:
    limit = LimitInterceptor(1)
    assert limit.applies_to("/pacache.v1.PriceAvailabilityService/Quote")
    assert limit.applies_to("/pacache.v1.IngestService/Ingest")
    assert not limit.applies_to("/pacache.v1.AdminService/Ping")
    assert not limit.applies_to("/grpc.health.v1.Health/Check")
    assert not limit.applies_to("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")


def test_refusals_are_counted_every_time_and_logged_once_a_second_with_their_count(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics = Metrics()
    observe = ObservabilityInterceptor(metrics)
    method = "/pacache.v1.PriceAvailabilityService/Quote"
    refused = _Context(grpc.StatusCode.RESOURCE_EXHAUSTED)
    now = [1000.0]
    monkeypatch.setattr(interceptors.time, "monotonic", lambda: now[0])
    with caplog.at_level(logging.INFO, logger="pacache.rpc"):
        for _ in range(500):
            observe._done(method, refused, time.perf_counter())
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1 and "calls=1 " in lines[0]  # the first at once
        now[0] += interceptors.REFUSAL_LOG_INTERVAL_S
        observe._done(method, refused, time.perf_counter())
        observe._done(method, _Context(grpc.StatusCode.NOT_FOUND), time.perf_counter())
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert "status=RESOURCE_EXHAUSTED calls=500 " in lines[1]  # 499 held back + this one
    assert "status=NOT_FOUND" in lines[2]  # other failures: a line each, as before
    assert metrics.calls[(method, "RESOURCE_EXHAUSTED")] == 501


class _Aborted(Exception):
    pass


class _AbortingContext(_Context):
    """Records the status a call was aborted with (grpc.aio raises there too); ``remaining``
    is the time left to the caller's deadline, ``batch_fails`` makes sending the status
    fail as it does in gRPC's core once the caller is gone."""

    def __init__(self, remaining: float | None = None, *, batch_fails: bool = False) -> None:
        super().__init__(None)
        self.remaining = remaining
        self.batch_fails = batch_fails
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def time_remaining(self) -> float | None:
        return self.remaining

    def cancelled(self) -> bool:
        return False

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        if self.batch_fails:
            raise cygrpc.ExecuteBatchError('Failed "execute_batch"')
        self.aborted = (code, details)
        raise _Aborted


def test_a_method_the_servicer_leaves_unimplemented_is_unimplemented_not_internal() -> None:
    # a generated servicer's unimplemented method is a plain function raising
    # NotImplementedError; the wrapper awaited it as a coroutine and answered INTERNAL
    def unimplemented(request: Any, context: Any) -> Any:
        raise NotImplementedError("Method not implemented!")

    handler = grpc.unary_unary_rpc_method_handler(unimplemented)
    wrapped = _wrap(handler, ErrorInterceptor(), "/grpc.health.v1.Health/List")
    context = _AbortingContext()

    with pytest.raises(_Aborted):
        asyncio.run(wrapped.unary_unary(pb.PingRequest(), context))

    assert context.aborted == (
        grpc.StatusCode.UNIMPLEMENTED,
        "/grpc.health.v1.Health/List: not implemented",
    )


def test_a_plain_function_handler_is_called_and_its_answer_returned() -> None:
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: pb.PingResponse())
    wrapped = _wrap(handler, ErrorInterceptor(), "/pacache.v1.AdminService/Ping")

    assert asyncio.run(wrapped.unary_unary(pb.PingRequest(), _AbortingContext())) == (
        pb.PingResponse()
    )


def _refusing(request: Any, context: Any) -> Any:
    raise InvalidInput("lines", "no lines", "at least 1")


async def _answering(request: Any, context: Any) -> Any:
    return pb.PingResponse()


@pytest.mark.parametrize(
    ("behaviour", "context"),
    [
        (_refusing, _AbortingContext(0.0)),  # past the deadline before the status is sent
        (_refusing, _AbortingContext(0.5, batch_fails=True)),  # the deadline won the race
        (_answering, _AbortingContext(0.0)),  # an answer nobody waits for
    ],
    ids=["error after the deadline", "status batch failed", "answer after the deadline"],
)
def test_a_call_whose_caller_is_gone_ends_quietly_as_a_cancelled_one(
    behaviour: Any, context: _AbortingContext
) -> None:
    # Sending a status to a caller past its deadline fails in gRPC's core, and grpc.aio
    # logged that with a traceback as a server error (the fuzz suite met it with 1 ms
    # deadlines); a CancelledError is what grpc.aio takes quietly.
    handler = grpc.unary_unary_rpc_method_handler(behaviour)
    wrapped = _wrap(handler, ErrorInterceptor(), "/pacache.v1.IngestService/Ingest")

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(wrapped.unary_unary(pb.PingRequest(), context))

    assert context.aborted is None
    assert context.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)


def test_a_caller_with_time_left_gets_its_error_status() -> None:
    handler = grpc.unary_unary_rpc_method_handler(_refusing)
    wrapped = _wrap(handler, ErrorInterceptor(), "/pacache.v1.PriceAvailabilityService/Quote")
    context = _AbortingContext(0.5)

    with pytest.raises(_Aborted):
        asyncio.run(wrapped.unary_unary(pb.PingRequest(), context))

    assert context.aborted == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "lines: no lines (limit: at least 1)",
    )


def test_a_stream_whose_caller_is_gone_sends_nothing_more() -> None:
    # grpc.aio wrote the message, the batch failed in the core and was logged with a
    # traceback (QuoteStream answering after a 1 ms deadline, found by the fuzz suite)
    async def answers(request: Any, context: Any) -> Any:
        yield pb.PingResponse()

    handler = grpc.unary_stream_rpc_method_handler(answers)
    wrapped = _wrap(handler, ErrorInterceptor(), "/pacache.v1.PriceAvailabilityService/QuoteStream")

    async def drain(context: _AbortingContext) -> list[Any]:
        return [item async for item in wrapped.unary_stream(pb.PingRequest(), context)]

    assert asyncio.run(drain(_AbortingContext(0.5))) == [pb.PingResponse()]
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(drain(_AbortingContext(0.0)))
