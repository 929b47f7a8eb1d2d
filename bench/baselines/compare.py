"""Like-for-like check: two servers of ``pacache.v1`` give the same answers to the same calls.

:func:`check_same_answers` sends each request to both targets and compares the responses
field by field, leaving out what is not an answer: ``as_of`` (state version, stream ids,
source time) and each line's ``explanation`` under ``explain`` (the baselines do not
explain). Answers are per line, so lines, their locations, allocations and the shipments
compare element by element, every field including the echo of the request line and which
sub-messages are present. A line's sell-rule verdict is left out (its presence is not)
where the line's SKU or UoM is unknown: pacache holds a placeholder there (it checks 0
units against its first item row), not an answer. Failed calls compare by status code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf.message import Message

from server._proto.pacache.v1 import pacache_pb2 as pb
from server._proto.pacache.v1 import pacache_pb2_grpc as pb_grpc

__all__ = ["Request", "check_same_answers"]

Request = pb.QuoteRequest | pb.GetPricesRequest | pb.GetAvailabilityRequest | pb.PromiseRequest
_METHOD = {
    pb.QuoteRequest: "Quote",
    pb.GetPricesRequest: "GetPrices",
    pb.GetAvailabilityRequest: "GetAvailability",
    pb.PromiseRequest: "Promise",
}
_IGNORED = {"as_of", "explanation"}
_NO_VERDICT = {pb.LINE_STATUS_UNKNOWN_SKU, pb.LINE_STATUS_UNKNOWN_UOM}
_TIMEOUT_S = 30.0


def _call(stub: Any, request: Message) -> Message | grpc.StatusCode:
    try:
        answer: Message = getattr(stub, _METHOD[type(request)])(request, timeout=_TIMEOUT_S)
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        return code
    return answer


def _no_verdict(line: Message, name: str) -> bool:
    """A line's sell rules where its SKU or UoM is unknown: pacache's placeholder."""
    return name == "sell_rules" and getattr(line, "status", 0) in _NO_VERDICT


def _differences(reference: Message, candidate: Message, path: str) -> list[str]:
    """Every differing field of two messages of one type, recursively; repeated messages
    (lines, locations, allocations, shipments) element by element."""
    out = []
    for field in reference.DESCRIPTOR.fields:
        if field.name in _IGNORED:
            continue
        want, got = getattr(reference, field.name), getattr(candidate, field.name)
        where = f"{path}{field.name}"
        if field.message_type is not None and not field.is_repeated:
            has_want, has_got = reference.HasField(field.name), candidate.HasField(field.name)
            if has_want != has_got:
                out.append(f"{where}: set {has_want}, candidate {has_got}")
            elif has_want and not _no_verdict(reference, field.name):
                out += _differences(want, got, f"{where}.")
            continue
        if field.is_repeated:
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                if dict(want) != dict(got):
                    out.append(f"{where}: reference {dict(want)!r}, candidate {dict(got)!r}")
                continue
            if len(want) != len(got):
                out.append(f"{where}: {len(want)} values, candidate {len(got)}")
                continue
            for i, (a, b) in enumerate(zip(want, got, strict=True)):
                if field.message_type is not None:
                    out += _differences(a, b, f"{where}[{i}].")
                elif a != b:
                    out.append(f"{where}[{i}]: reference {a!r}, candidate {b!r}")
        elif field.has_presence and (
            (has := reference.HasField(field.name)) != candidate.HasField(field.name)
        ):
            out.append(f"{where}: set {has}, candidate {not has}")
        elif want != got:
            out.append(f"{where}: reference {want!r}, candidate {got!r}")
    return out


def check_same_answers(
    reference_target: str, candidate_target: str, requests: Sequence[Request]
) -> list[str]:
    """Call both servers with each request and list every differing answer field.

    Returns human-readable mismatches, ``request N (Method): path: reference …,
    candidate …`` (a path such as ``lines[3].price.unit_price_micros`` or
    ``lines[0].availability.locations[1].available``); an empty list means the same
    answers.
    """
    mismatches: list[str] = []
    with (
        grpc.insecure_channel(reference_target) as reference_channel,
        grpc.insecure_channel(candidate_target) as candidate_channel,
    ):
        stubs = (
            pb_grpc.PriceAvailabilityServiceStub(reference_channel),
            pb_grpc.PriceAvailabilityServiceStub(candidate_channel),
        )
        for n, request in enumerate(requests):
            label = f"request {n} ({_METHOD[type(request)]})"
            want, got = (_call(stub, request) for stub in stubs)
            if isinstance(want, grpc.StatusCode) or isinstance(got, grpc.StatusCode):
                if want != got:
                    mismatches.append(f"{label}: reference {_show(want)}, candidate {_show(got)}")
                continue
            mismatches += [f"{label}: {d}" for d in _differences(want, got, "")]
    return mismatches


def _show(answer: Message | grpc.StatusCode) -> str:
    return answer.name if isinstance(answer, grpc.StatusCode) else "an answer"
