"""The worker ⇄ writer channel: frames round-trip, engine errors keep their class and fields
(so a forwarded Reserve conflict is ALREADY_EXISTS on a worker as in one process)."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from engine.errors import Conflict, InvalidInput, LimitExceeded, PacacheError, UnknownCode
from server.errors import NotServing, WalBroken, status_of
from server.ipc import error_from_wire, error_to_wire, read_frame, write_frame
from server.supervisor import sweep_orphans
from server.worker import WorkerHost


@pytest.mark.parametrize(
    "error",
    [
        InvalidInput("lines[2].quantity", "-1", "> 0"),
        LimitExceeded("payload", "200000 events", "at most 100000"),
        UnknownCode("account", "NOPE"),
        Conflict("hold_key: 'CART-1' already used with other lines"),
        NotServing("writer: not connected"),
        WalBroken("wal: writing /data/wal failed: [Errno 28] No space left on device"),
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


def test_a_log_that_cannot_be_written_is_unavailable_not_internal():
    assert status_of(WalBroken("disk full")).name == "UNAVAILABLE"


class _LostConnection:
    """A writer connection that went away between the check and the send."""

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        raise ConnectionResetError("Connection lost")


def test_a_change_whose_send_to_the_writer_fails_is_unavailable_not_internal():
    host = WorkerHost()
    host._conn = _LostConnection()  # type: ignore[assignment]

    async def call() -> None:
        await host.ingest_payload(b"\x90", 1)

    with pytest.raises(NotServing, match="connection lost"):
        asyncio.run(call())
    assert host._calls == {}  # nothing left waiting for a reply that cannot come
