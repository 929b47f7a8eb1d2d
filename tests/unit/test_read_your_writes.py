"""``min_version`` and ``min_stream_ids`` without a server: what is refused before any wait,
and how much of the caller's deadline the wait may take."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from engine.errors import InvalidInput
from engine.state import State
from server import service
from server._proto.pacache.v1 import pacache_pb2 as pb
from server.errors import VersionTimeout
from server.host import HostConfig, StateHost
from server.versions import BLOCK


class _Deadline:
    """A call context with a fixed time remaining."""

    def __init__(self, remaining: float | None) -> None:
        self.remaining = remaining

    def time_remaining(self) -> float | None:
        return self.remaining


class _RecordingHost(StateHost):
    """A host whose wait records the timeout it was given and gives up at once."""

    timeouts: list[float | None]

    async def wait_for_version(
        self,
        version: int,
        timeout: float | None,
        stream_ids: Mapping[str, str] | None = None,
        *,
        writable: bool = False,
    ) -> None:
        self.timeouts.append(timeout)
        raise VersionTimeout("min_version: not reached before the deadline")


def _host(streams: tuple[str, ...] = ()) -> _RecordingHost:
    state = State()
    state.stream_ids = {"p:master": "1700000000000-3"}
    host = _RecordingHost(state=state, config=HostConfig(stream_names=streams))
    host.timeouts = []
    return host


def _request(min_version: int = 0, **stream_ids: str) -> Any:
    request = pb.QuoteRequest(min_version=min_version)
    request.min_stream_ids.update({k.replace("_", ":"): v for k, v in stream_ids.items()})
    return request


def test_the_version_wait_gives_up_before_the_callers_deadline_so_its_answer_arrives() -> None:
    # Waiting to the deadline itself raced it: the caller got gRPC's bare "Deadline
    # Exceeded", and a QuoteStream lost its per-request error reply with the stream.
    host = _host()
    for remaining in (0.5, 0.01, None):
        with pytest.raises(VersionTimeout):
            asyncio.run(service._at_version(host, _request(10), _Deadline(remaining)))
    assert host.timeouts == [
        pytest.approx(0.5 - service.VERSION_WAIT_MARGIN_S),
        0.0,  # less than the margin left: give up at once
        None,  # no deadline: wait as long as it takes
    ]


def test_a_min_version_no_answer_can_have_carried_is_refused_before_any_wait() -> None:
    host = _host()  # at version 0
    with pytest.raises(InvalidInput, match=r"min_version: .* is ahead of any version"):
        asyncio.run(service._at_version(host, _request(2 * BLOCK + 1), _Deadline(5.0)))
    assert host.timeouts == []  # refused, not waited for
    with pytest.raises(VersionTimeout):  # within reach: waited for
        asyncio.run(service._at_version(host, _request(2 * BLOCK), _Deadline(5.0)))
    assert len(host.timeouts) == 1


@pytest.mark.parametrize(
    ("stream_ids", "field", "words"),
    [
        ({"nostream": "1-0"}, "min_stream_ids", ["'nostream' is not a stream", "one of p:"]),
        ({"p_inventory": "abc"}, "min_stream_ids['p:inventory']", ["'abc'", "<ms>-<seq>"]),
        ({"p_inventory": "-1-0"}, "min_stream_ids['p:inventory']", ["'-1-0'"]),
        ({"p_inventory": "1-2-3"}, "min_stream_ids['p:inventory']", ["'1-2-3'"]),
        ({"p_master": str(2**64) + "-0"}, "min_stream_ids['p:master']", ["0..2^64-1"]),
        ({"p_master": "\u0661-0"}, "min_stream_ids['p:master']", ["<ms>-<seq>"]),
        ({"x" * 10_000: "1-0"}, "min_stream_ids", ["… (10000 chars)"]),
    ],
    ids=["unknown stream", "not an id", "negative", "three parts", "past uint64",
         "Arabic-Indic digit", "10,000-character name"],
)  # fmt: skip
def test_min_stream_ids_no_wait_could_reach_are_invalid_before_any_wait(
    stream_ids: dict[str, str], field: str, words: list[str]
) -> None:
    host = _host(("p:master", "p:pricing", "p:inventory"))

    with pytest.raises(InvalidInput) as raised:
        asyncio.run(service._at_version(host, _request(**stream_ids), _Deadline(5.0)))

    assert raised.value.field == field
    assert all(word in str(raised.value) for word in words), str(raised.value)
    assert len(str(raised.value)) < 400
    assert host.timeouts == []  # refused up front, not at the deadline


def test_a_stream_the_state_holds_a_position_of_may_be_waited_for_without_redis() -> None:
    host = _host()  # reads no streams, but its snapshot came from one
    asyncio.run(service._at_version(host, _request(p_master="1700000000000-3"), _Deadline(5.0)))
    with pytest.raises(VersionTimeout):
        asyncio.run(service._at_version(host, _request(p_master="1700000000001"), _Deadline(5.0)))
    assert host.timeouts == [pytest.approx(5.0 - service.VERSION_WAIT_MARGIN_S)]
