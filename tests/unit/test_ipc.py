"""The worker ⇄ writer channel: frames round-trip, engine errors keep their class and fields
(so a forwarded Reserve conflict is ALREADY_EXISTS on a worker as in one process)."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from engine.errors import Conflict, InvalidInput, LimitExceeded, PacacheError, UnknownCode
from server.errors import NotServing, status_of
from server.ipc import error_from_wire, error_to_wire, read_frame, write_frame
from server.supervisor import sweep_orphans


@pytest.mark.parametrize(
    "error",
    [
        InvalidInput("lines[2].quantity", "-1", "> 0"),
        LimitExceeded("payload", "200000 events", "at most 100000"),
        UnknownCode("account", "NOPE"),
        Conflict("hold_key: 'CART-1' already used with other lines"),
        NotServing("writer: not connected"),
    ],
)
def test_an_error_crosses_the_socket_with_its_class_message_and_status(error: PacacheError):
    again = error_from_wire(error_to_wire(error))
    assert type(again) is type(error)
    assert str(again) == str(error)
    assert status_of(again) == status_of(error)


def test_an_unknown_error_class_arrives_as_the_root_error_with_its_message():
    again = error_from_wire({"class": "NoSuchError", "message": "writer: boom"})
    assert type(again) is PacacheError
    assert str(again) == "writer: boom"


def test_frames_round_trip_in_order_over_a_socket_pair():
    async def exchange() -> list[dict]:
        a, b = socket.socketpair()
        _, writer = await asyncio.open_connection(sock=a)
        reader, other = await asyncio.open_connection(sock=b)
        sent = [{"op": "published", "version": v, "skus": bytes(8 * v)} for v in range(1, 4)]
        for message in sent:
            write_frame(writer, message)
        await writer.drain()
        got = [await read_frame(reader) for _ in sent]
        for end in (writer, other):
            end.close()
            await end.wait_closed()
        return got

    assert asyncio.run(exchange()) == [
        {"op": "published", "version": v, "skus": bytes(8 * v)} for v in range(1, 4)
    ]


def test_shared_memory_of_a_dead_supervisor_is_swept_and_a_live_ones_kept(tmp_path: Path):
    live = tmp_path / f"pacache-{os.getpid()}"
    dead = tmp_path / "pacache-999999999"
    for directory in (live, dead):
        (directory / "state-0").mkdir(parents=True)
    sweep_orphans(tmp_path)
    assert live.exists()
    assert not dead.exists()
