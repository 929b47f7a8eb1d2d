"""The worker ⇄ writer channel of multi-process serving: msgpack frames over a Unix socket.

Workers forward what changes state (Ingest, Reserve, Release, Admin Snapshot) to the single
writer and wait for its answer; the writer pushes each published version (with the SKUs it
changed, for WatchAvailability) and a heartbeat with its stats to every worker. Frames are
a 4-byte big-endian length and a msgpack map; requests carry an ``id`` the reply echoes, so
one connection carries many calls at once.

Engine errors cross the socket by class name and fields (not pickled: the classes take
keyword-ish constructor arguments pickle would not restore) and are raised again on the
worker side, so the error table maps them to the same gRPC codes as in one process.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import msgspec

from engine import errors as engine_errors
from engine.errors import InvalidInput, PacacheError, UnknownCode
from server import errors as server_errors

__all__ = ["error_from_wire", "error_to_wire", "read_frame", "write_frame"]

_LENGTH = struct.Struct(">I")
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()
MAX_FRAME = 512 * 1024 * 1024  # an Ingest message of 100k events fits with room to spare


def write_frame(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    """Queue one frame (the caller drains when it cares about back-pressure)."""
    body = _encoder.encode(message)
    writer.write(_LENGTH.pack(len(body)) + body)


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any]:
    """The next frame; ``asyncio.IncompleteReadError`` when the peer has gone."""
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    if length > MAX_FRAME:
        raise ValueError(f"frame of {length} bytes exceeds {MAX_FRAME}")
    message: dict[str, Any] = _decoder.decode(await reader.readexactly(length))
    return message


def error_to_wire(error: PacacheError) -> dict[str, Any]:
    wire: dict[str, Any] = {"class": type(error).__name__, "message": str(error)}
    if isinstance(error, InvalidInput):
        wire["args"] = [error.field, error.problem, error.limit]
    elif isinstance(error, UnknownCode):
        wire["args"] = [error.field, error.code]
    return wire


def error_from_wire(wire: dict[str, Any]) -> PacacheError:
    name = wire["class"]
    kind = getattr(engine_errors, name, None) or getattr(server_errors, name, None)
    if not (isinstance(kind, type) and issubclass(kind, PacacheError)):
        return PacacheError(wire["message"])
    if "args" in wire:
        return kind(*wire["args"])
    return kind(wire["message"])
