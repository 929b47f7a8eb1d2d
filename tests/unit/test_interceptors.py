"""Interceptors without a server: which calls the in-flight limit counts, and how refusals
are logged (summed up, not one line each)."""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc
import pytest

from server import interceptors
from server.interceptors import LimitInterceptor, Metrics, ObservabilityInterceptor


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
