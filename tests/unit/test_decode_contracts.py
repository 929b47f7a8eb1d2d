"""The stream decoders are a boundary: whatever bytes arrive, they answer with a reason.

``decode`` raises only ``DecodeError``; ``decode_one_by_one`` never raises; both agree on
whether an entry is whole; every reason stays short whatever the input held. Inputs are
random bytes and mutations (flips, cuts, insertions, splices) of valid msgpack and JSON
entries, plus the named poison cases of the original finding.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import events as ev
from loaders.events import (
    QUOTE_MAX,
    REASON_MAX,
    DecodeError,
    clip_reason,
    decode,
    decode_one_by_one,
    encode,
    excerpt,
)

# one valid event of every type, so mutations reach every field decoder
SAMPLES: list[Any] = [
    ev.ItemUpsert(
        sku="BOLT-M8", version=3, uoms={"BX": 100}, product_group="FAST", lead_time_days=4
    ),
    ev.ProductGroupUpsert(product_group="FAST", version=1, parent="HW"),
    ev.LocationUpsert(location="DAL", version=1),
    ev.RegionUpsert(region="TX", version=1, locations=("DAL", "HOU")),
    ev.AccountUpsert(account="ACME", version=2, price_groups=("PG1",), price_list="PL1"),
    ev.InventorySet(sku="BOLT-M8", location="DAL", version=7, on_hand=40, allocated=2),
    ev.InventoryAdjust(sku="BOLT-M8", location="DAL", event_id="a-1", version=8, on_hand_delta=-3),
    ev.InboundSet(sku="BOLT-M8", location="DAL", version=2, receipts=((dt.date(2024, 7, 1), 50),)),
    ev.PriceSet(price_list="LIST", currency="USD", sku="BOLT-M8", version=1, tiers=((0, 125_000),)),
    ev.PriceDelete(price_list="LIST", currency="USD", sku="BOLT-M8", version=2),
    ev.ContractUpsert(contract="K1", version=1, accounts=("ACME",), valid_from=dt.date(2024, 1, 1)),
    ev.ContractDelete(contract="K1", version=2),
    ev.ContractLineSet(contract="K1", version=1, sku="BOLT-M8", tiers=((0, 99_000), (10, 90_000))),
    ev.ContractLineDelete(contract="K1", version=2, product_group="FAST"),
    ev.HoldPlace(hold_key="cart-1", lines=(("BOLT-M8", "DAL", 2),), ttl_ms=60_000),
    ev.HoldRelease(hold_key="cart-1"),
]
VALID = [encode(e) for e in SAMPLES] + [encode(e, json=True) for e in SAMPLES]
VALID += [encode(SAMPLES), encode(SAMPLES, json=True), encode(SAMPLES[5:8])]


@st.composite
def mutated(draw: Any) -> bytes:
    """A valid entry with a few byte-level mutations."""
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(("flip", "cut", "insert", "delete", "splice")))
        if action == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:  # another entry's bytes in the middle of this one
            other = draw(st.sampled_from(VALID))
            start = draw(st.integers(0, len(other)))
            data[at:at] = other[start : start + draw(st.integers(1, 40))]
    return bytes(data)


payloads = st.one_of(
    mutated(),
    st.binary(max_size=64),
    st.text(max_size=32).map(str.encode),
    st.sampled_from(VALID),
)


def assert_contracts(payload: Any) -> None:
    """Both decoders' contracts on one input (raises AssertionError when broken)."""
    try:
        whole: list[Any] | None = decode(payload)
    except DecodeError as error:
        whole = None
        assert 0 < len(str(error)) <= REASON_MAX
    events, bad = decode_one_by_one(payload)
    assert all(0 < len(reason) <= REASON_MAX for _, reason in bad)
    assert all(isinstance(position, int) and position >= 0 for position, _ in bad)
    if whole is not None:  # a whole entry: the fallback finds the same events, no reasons
        assert bad == []
        assert events == whole
    else:  # not whole: the fallback names at least one reason
        assert bad


@settings(
    max_examples=1_500,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(payloads)
def test_any_bytes_decode_or_fail_with_a_short_decode_error(payload: bytes) -> None:
    assert_contracts(payload)


POISON = {
    "bad json": b"{bad json",
    "5,000-deep array": b"[" * 5000,
    "5,000-deep closed array": b"[" * 5000 + b"]" * 5000,
    "5,000-deep member": b'[{"type":"HoldRelease","hold_key":"k"},'
    + b"[" * 5000
    + b"]" * 5000
    + b"]",
    "5,000-deep msgpack": b"\x91" * 5000 + b"\x90",
    "truncated": b"[{",
    "msgpack integer above uint64 range": b"\xcf" + b"\xff" * 8,
    "msgpack version 2**64 - 1": msgspec.msgpack.encode(
        {"type": "InventorySet", "sku": "S", "location": "L", "version": 2**64 - 1}
    ),
    "JSON version 2**70": b'{"type":"InventorySet","sku":"S","location":"L","version":%d}' % 2**70,
    "unknown type tag": b'{"type":"InventoryTeleport","sku":"S"}',
    "missing field": b'{"type":"InventorySet","sku":"S"}',
    "wrong type": b'{"type":"InventorySet","sku":"S","location":"L","version":"7"}',
    "not UTF-8": b'{"type":"LocationUpsert","location":"\xff\xfe","version":1}',
    "empty": b"",
    "msgpack ext": b"\xd4\x01\x00",
}


@pytest.mark.parametrize("payload", list(POISON.values()), ids=list(POISON))
def test_each_named_poison_is_a_decode_error_with_a_reason(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(payload)
    assert_contracts(payload)


@pytest.mark.parametrize("value", ['{"type":"LocationUpsert"}', None, 42, ["a"]])
def test_a_payload_that_is_not_bytes_is_a_decode_error_not_a_type_error(value: Any) -> None:
    with pytest.raises(DecodeError, match="expected bytes"):
        decode(value)
    assert decode_one_by_one(value) == (
        [],
        [(0, f"payload: expected bytes, got {type(value).__name__}")],
    )


def test_an_integer_beyond_int64_is_rejected_by_the_decoder_naming_its_field() -> None:
    payload = msgspec.msgpack.encode(
        {"type": "InventorySet", "sku": "S", "location": "L", "version": 1, "on_hand": 2**63}
    )
    with pytest.raises(DecodeError, match=r"<= 9223372036854775807 - at `\$\.on_hand`"):
        decode(payload)


def test_a_batch_with_bad_members_keeps_the_good_ones_and_names_each_bad_path() -> None:
    good = [SAMPLES[5], SAMPLES[6]]
    raw = msgspec.json.decode(encode(good, json=True))
    raw.insert(1, {"type": "InventorySet", "sku": "S", "location": "L", "version": 1.5})
    raw.append({"type": "Nope"})
    events, bad = decode_one_by_one(msgspec.json.encode(raw))
    assert [type(e).__name__ for e in events] == ["InventorySet", "InventoryAdjust"]
    assert [position for position, _ in bad] == [1, 3]
    assert "`$[1].version`" in bad[0][1]
    assert "`$[3].type`" in bad[1][1]


def test_a_megabyte_value_is_quoted_in_at_most_64_characters() -> None:
    payload = b'[{"type":"' + b"x" * 1_000_000 + b'"}]'
    with pytest.raises(DecodeError) as raised:
        decode(payload)
    reason = str(raised.value)
    assert len(reason) <= REASON_MAX
    assert "x" * QUOTE_MAX in reason and "x" * (QUOTE_MAX + 1) not in reason
    assert "1,000,000 chars" in reason
    [(_, member_reason)] = decode_one_by_one(payload)[1]
    assert "x" * (QUOTE_MAX + 1) not in member_reason and "`$[0].type`" in member_reason


def test_clipping_keeps_the_start_and_the_path_at_the_end_and_is_idempotent() -> None:
    reason = "event 3: " + "y" * 5_000 + " - at `$.sku`"
    clipped = clip_reason(reason)
    assert len(clipped) <= REASON_MAX
    assert clipped.startswith("event 3: ") and clipped.endswith(" - at `$.sku`")
    assert clip_reason(clipped) == clipped
    assert excerpt("z" * 1_000) == f"{'z' * QUOTE_MAX!r}… (1,000 chars)"
    assert excerpt(b"ok") == "b'ok'"
