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
import re
import types
import typing
from collections.abc import Sequence
from typing import Any

import msgspec

from engine import events as ev

__all__ = [
    "QUOTE_MAX",
    "REASON_MAX",
    "STRUCTS",
    "DecodeError",
    "clip_reason",
    "decode",
    "decode_one_by_one",
    "encode",
    "excerpt",
    "to_struct",
]

TAG_FIELD = "type"
QUOTE_MAX = 64  # characters of an offending value a reason may quote
REASON_MAX = 300  # characters of a whole reason
_INT64 = msgspec.Meta(ge=-(2**63), le=2**63 - 1)


class DecodeError(ValueError):
    """A payload that is not valid msgpack/JSON or does not match the event schema."""


def _bounded(hint: Any) -> Any:
    """``hint`` with every ``int`` in it limited to int64 (msgspec checks it while decoding)."""
    if hint is int:
        return typing.Annotated[int, _INT64]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(_bounded(arg) for arg in args)]  # noqa: UP007
    if origin in (tuple, dict):  # tuple[X, ...] keeps its Ellipsis
        return types.GenericAlias(origin, tuple(a if a is ... else _bounded(a) for a in args))
    return hint


def _struct_for(cls: type) -> type[msgspec.Struct]:
    hints = {name: _bounded(hint) for name, hint in typing.get_type_hints(cls).items()}
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
_MSGPACK_ONE = msgspec.msgpack.Decoder(_ANY)
_JSON_ONE = msgspec.json.Decoder(_ANY)
# the members of an array entry, undecoded: each is then decoded on its own
_MSGPACK_MEMBERS = msgspec.msgpack.Decoder(list[msgspec.Raw])
_JSON_MEMBERS = msgspec.json.Decoder(list[msgspec.Raw])
_MSGPACK_ENCODER = msgspec.msgpack.Encoder()
_MSGPACK_ARRAY = frozenset([*range(0x90, 0xA0), 0xDC, 0xDD])  # fixarray, array 16, array 32
# a quoted value longer than a cut one (QUOTE_MAX characters and "…"), so cutting twice is
# cutting once
_LONG = QUOTE_MAX + 2
_LONG_QUOTE = re.compile(rf"'[^']{{{_LONG},}}'|\"[^\"]{{{_LONG},}}\"")


def excerpt(value: Any, limit: int = QUOTE_MAX) -> str:
    """``repr(value)`` cut to about ``limit`` characters, saying how long it was.

    For quoting an offending value in a reason: a value may be megabytes long.
    """
    if isinstance(value, (bytes, bytearray, memoryview, str)) and len(value) > limit:
        unit = "chars" if isinstance(value, str) else "bytes"
        return f"{value[:limit]!r}… ({len(value):,} {unit})"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} chars)"


def _cut_quote(quoted: re.Match[str]) -> str:
    mark, value = quoted[0][0], quoted[0][1:-1]
    return f"{mark}{value[:QUOTE_MAX]}…{mark} ({len(value):,} chars)"


def clip_reason(reason: str, limit: int = REASON_MAX) -> str:
    """``reason`` with each quoted value longer than :data:`QUOTE_MAX` cut, and the whole
    cut to ``limit`` characters keeping its start and end (the end names the path)."""
    if len(reason) > QUOTE_MAX:
        reason = _LONG_QUOTE.sub(_cut_quote, reason)
    if len(reason) <= limit:
        return reason
    tail = min(80, limit // 3)
    return f"{reason[: limit - tail - 1]}…{reason[-tail:]}"


def _why(error: BaseException) -> str:
    """A decoding failure as a reason (never the exception's repr of a whole payload)."""
    if isinstance(error, msgspec.MsgspecError):
        return clip_reason(str(error))
    if isinstance(error, RecursionError):
        return "payload: nested too deeply"
    return clip_reason(f"payload: {type(error).__name__}: {error}")


def _as_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, (bytearray, memoryview)):
        return bytes(payload)
    raise DecodeError(f"payload: expected bytes, got {type(payload).__name__}")


def _looks_like_json(payload: bytes) -> bool:
    head = payload.lstrip()[:1]
    return head in (b"{", b"[")


def decode(payload: bytes) -> list[Any]:
    """Events of one stream entry (msgpack, or JSON when it starts with ``{``/``[``).

    Raises :class:`DecodeError` (and nothing else) naming the offending path when the
    entry is malformed, whatever ``payload`` is.
    """
    data = _as_bytes(payload)
    decoder = _JSON if _looks_like_json(data) else _MSGPACK
    try:
        decoded = decoder.decode(data)
    except Exception as error:  # a boundary: msgspec's errors, RecursionError, anything
        raise DecodeError(_why(error)) from error
    return decoded if isinstance(decoded, list) else [decoded]


def _at(position: int, reason: str) -> str:
    """A member's reason with its path made absolute (``$.sku`` → ``$[3].sku``)."""
    if "`$" in reason:
        return reason.replace("`$", f"`$[{position}]", 1)
    return f"{reason} - at `$[{position}]`"


def decode_one_by_one(payload: bytes) -> tuple[list[Any], list[tuple[int, str]]]:
    """Like :func:`decode`, but a batch entry with bad members keeps its good ones.

    Returns (events, rejected) where rejected holds (position in the entry, reason); a
    payload that cannot be split into members at all is ``([], [(0, reason)])``. Never
    raises. Used when a whole-entry decode failed, so one bad event never sinks its
    neighbours.
    """
    try:
        data = _as_bytes(payload)
    except DecodeError as error:
        return [], [(0, str(error))]
    is_json = _looks_like_json(data)
    head = data.lstrip()[:1] if is_json else data[:1]
    array = head == b"[" if is_json else bool(head) and head[0] in _MSGPACK_ARRAY
    one = _JSON_ONE if is_json else _MSGPACK_ONE
    try:
        if not array:
            return [one.decode(data)], []
        members = (_JSON_MEMBERS if is_json else _MSGPACK_MEMBERS).decode(data)
    except Exception as error:  # the payload as a whole: bad syntax, truncated, too deep
        reason = _why(error)
        if not reason.startswith("payload"):
            reason = f"payload: {reason}"
        return [], [(0, reason)]
    good: list[Any] = []
    bad: list[tuple[int, str]] = []
    for position, member in enumerate(members):
        try:
            good.append(one.decode(member))
        except Exception as error:
            bad.append((position, clip_reason(_at(position, _why(error)))))
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
