"""The canonical event schema on the wire (DESIGN §6): msgspec Structs, msgpack or JSON.

The Structs are generated from the engine's event dataclasses (``engine.events``), so a
field is defined once. Each is a tagged union member: the tag field ``type`` holds the
class name (``{"type": "InventorySet", "sku": …}``). An entry is one event or an array of
events. Decoding validates types (a float where an int belongs, a malformed date) with a
message naming the path; the engine then validates ranges and codes
(``engine.validate``). Decoded Structs go to the engine as they are: it dispatches on the
class name, so there is no copy per event.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from typing import Any

import msgspec

from engine import events as ev

__all__ = [
    "STRUCTS",
    "DecodeError",
    "decode",
    "decode_one_by_one",
    "encode",
    "to_struct",
]

TAG_FIELD = "type"


class DecodeError(ValueError):
    """A payload that is not valid msgpack/JSON or does not match the event schema."""


def _struct_for(cls: type) -> type[msgspec.Struct]:
    hints = typing.get_type_hints(cls)
    fields: list[Any] = []
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            fields.append((field.name, hints[field.name], field.default))
        elif field.default_factory is not dataclasses.MISSING:
            default = msgspec.field(default_factory=field.default_factory)
            fields.append((field.name, hints[field.name], default))
        else:
            fields.append((field.name, hints[field.name]))
    return msgspec.defstruct(
        cls.__name__,
        fields,
        tag=cls.__name__,
        tag_field=TAG_FIELD,
        kw_only=True,
        frozen=True,
        module=__name__,
    )


#: engine event class → its wire Struct (same name, same fields).
STRUCTS: dict[type, type[msgspec.Struct]] = {cls: _struct_for(cls) for cls in ev.EVENT_TYPES}
_ANY = typing.Union[tuple(STRUCTS.values())]  # type: ignore[valid-type]  # noqa: UP007
_ENTRY = typing.Union[_ANY, list[_ANY]]  # type: ignore[valid-type]  # noqa: UP007
_MSGPACK = msgspec.msgpack.Decoder(_ENTRY)
_JSON = msgspec.json.Decoder(_ENTRY)
_MSGPACK_ENCODER = msgspec.msgpack.Encoder()


def _looks_like_json(payload: bytes) -> bool:
    head = payload.lstrip()[:1]
    return head in (b"{", b"[")


def decode(payload: bytes) -> list[Any]:
    """Events of one stream entry (msgpack, or JSON when it starts with ``{``/``[``).

    Raises :class:`DecodeError` naming the offending path when the entry is malformed.
    """
    decoder = _JSON if _looks_like_json(payload) else _MSGPACK
    try:
        decoded = decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise DecodeError(str(error)) from error
    return decoded if isinstance(decoded, list) else [decoded]


def decode_one_by_one(payload: bytes) -> tuple[list[Any], list[tuple[int, str]]]:
    """Like :func:`decode`, but a batch entry with bad members keeps its good ones.

    Returns (events, rejected) where rejected holds (position in the entry, reason).
    Used when a whole-entry decode failed, so one bad event never sinks its neighbours.
    """
    raw = msgspec.json.decode(payload) if _looks_like_json(payload) else None
    if raw is None:
        try:
            raw = msgspec.msgpack.decode(payload)
        except msgspec.DecodeError as error:
            return [], [(0, f"payload: not msgpack or JSON: {error}")]
    members = raw if isinstance(raw, list) else [raw]
    good: list[Any] = []
    bad: list[tuple[int, str]] = []
    for position, member in enumerate(members):
        try:
            good.append(msgspec.convert(member, _ANY))
        except msgspec.ValidationError as error:
            bad.append((position, str(error)))
    return good, bad


def to_struct(event: Any) -> msgspec.Struct:
    """The wire Struct of an engine event dataclass (identity for a Struct)."""
    if isinstance(event, msgspec.Struct):
        return event
    struct = STRUCTS[type(event)]
    return struct(**{f.name: getattr(event, f.name) for f in dataclasses.fields(event)})


def encode(events: Sequence[Any] | Any, *, json: bool = False) -> bytes:
    """Encode one event or a batch (engine dataclasses or Structs) for a stream entry."""
    if isinstance(events, (list, tuple)):
        body: Any = [to_struct(e) for e in events]
    else:
        body = to_struct(events)
    return msgspec.json.encode(body) if json else _MSGPACK_ENCODER.encode(body)
