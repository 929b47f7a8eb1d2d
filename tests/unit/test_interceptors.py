"""Interceptors without a server: which calls the in-flight limit counts, and how refusals
are logged (summed up, not one line each)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc
import pytest

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
    """Records the status a call was aborted with (grpc.aio raises there too)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
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
