"""Overload: past ``--max-in-flight`` a Quote is refused with RESOURCE_EXHAUSTED naming the
limit, the admitted ones are answered, and Admin Ping is still answered during the flood.

A smoke test of the admission path only (no timing asserts: ``bench.overload`` measures
how fast a refusal comes and how long an admitted call waits).
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from server._proto.pacache.v1 import pacache_pb2 as pb
from server._proto.pacache.v1 import pacache_pb2_grpc as pb_grpc
from server.client import quote_lines

from .conftest import start_server

CALLS = 40
LINES = 200


def _cart() -> pb.QuoteRequest:
    skus = ("BOLT-M8", "NUT-M8")
    lines = [(skus[i % 2], 1 + i % 7, "", f"line-{i}") for i in range(LINES)]
    return pb.QuoteRequest(account="ACME", lines=quote_lines(lines), region="SOUTH")


def _answered_in_full(response: pb.QuoteResponse) -> bool:
    """Every line of the cart answered, in order, priced and with its stock."""
    ids = [line.line_id for line in response.lines]
    return ids == [f"line-{i}" for i in range(LINES)] and all(
        line.status == pb.LINE_STATUS_OK and line.HasField("availability")
        for line in response.lines
    )


@pytest.mark.parametrize("workers", ["0", "2"], ids=["one-process", "two-workers"])
def test_a_flood_past_max_in_flight_is_refused_fast_and_ping_still_answers(
    tmp_path: Path, workers: str
) -> None:
    running = start_server(tmp_path, "--workers", workers, "--max-in-flight", "2")
    request = _cart()
    # one channel, one connection: with two workers the whole flood lands on one of them
    with grpc.insecure_channel(running.target) as channel:
        quote = pb_grpc.PriceAvailabilityServiceStub(channel).Quote
        ping = pb_grpc.AdminServiceStub(channel).Ping
        assert _answered_in_full(quote(request, timeout=10))  # connected and warm

        futures = [quote.future(request, timeout=30) for _ in range(CALLS)]
        pong = ping.future(pb.PingRequest(), timeout=10)
        with ThreadPoolExecutor(8) as pool:  # and more from other threads meanwhile
            more = list(pool.map(lambda _: quote.future(request, timeout=30), range(CALLS)))
        outcomes: Counter[grpc.StatusCode] = Counter()
        messages = set()
        for future in futures + more:
            error = future.exception()
            if error is None:
                assert _answered_in_full(future.result())
                outcomes[grpc.StatusCode.OK] += 1
            else:
                outcomes[error.code()] += 1
                messages.add(error.details())
        pong.result()  # a Ping during the flood is answered, not refused
    assert set(outcomes) == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, outcomes
    assert all("max_in_flight 2" in message for message in messages), messages
    running.stop()
