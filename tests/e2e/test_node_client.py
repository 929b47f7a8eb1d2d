"""The Node example client (examples/node, @grpc/grpc-js) against a real ``pacache serve
--demo``: Quote, Promise and Reserve as a Node caller sees them, and the same answers as
the Python client gives, digit for digit (int64 money arrives as decimal strings).

``npm ci`` runs in examples/node only when node_modules was not installed from the current
package-lock.json (``make node-example`` keeps the same stamp). Skipped only when node or
npm is not installed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from server._proto.pacache.v1 import pacache_pb2 as pb
from server.client import Client, quote_lines
from server.spawn import REPO, Spawned, spawn

NODE, NPM = shutil.which("node"), shutil.which("npm")
pytestmark = pytest.mark.skipif(
    NODE is None or NPM is None,
    reason="node and npm are not installed: the Node example client (examples/node) "
    "cannot run (install Node.js >= 18 with npm to run this test)",
)

EXAMPLE = REPO / "examples" / "node"
#: written by this test and by `make node-example` after a successful npm ci
LOCK_STAMP = EXAMPLE / "node_modules" / ".lock-sha256"

# Demo data (seed 0, today pinned to 2025-03-03): an account with contracts, region EAST.
ACCOUNT, REGION = "C000001", "EAST"
QUOTE_LINES = [
    ("HVAC-0000007", 100, "", "cart-1"),  # contract price, stock at DC09, DC01 and DC03
    ("FAST-0000001", 30, "", "cart-2"),  # contract discount: 8.785312 a unit
    ("PLMB-0000002", 2, "BX", "cart-3"),  # 2 BX of 24, list-priced per BX
    ("NOPE-1", 1, "", "cart-4"),  # not in the catalog
]
PROMISE_LINES = [
    ("HVAC-0000007", 100, "", "po-10"),  # 49 + 35 + 16 from three locations
    ("PLMB-0000011", 20, "", "po-20"),  # 14 in stock, 6 backordered
    ("NOPE-1", 1, "", "po-30"),
]


def line_flags(lines: list[tuple[str, int, str, str]]) -> list[str]:
    """``--line ID=SKU:QTY[:UOM]`` arguments of client.js."""
    flags = []
    for sku, qty, uom, line_id in lines:
        flags += ["--line", f"{line_id}={sku}:{qty}" + (f":{uom}" if uom else "")]
    return flags


def as_json(message: Message) -> dict[str, Any]:
    """A message as the Node client prints it: proto field names, int64 as strings, enum
    names, every field (proto-loader's ``defaults: true``)."""
    answer: dict[str, Any] = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return answer


def without_nulls(value: Any) -> Any:
    """proto-loader prints an unset sub-message as null; MessageToDict leaves it out."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


@pytest.fixture(scope="module")
def node_example() -> Path:
    """examples/node with its node_modules installed exactly as package-lock.json says."""
    lock = hashlib.sha256((EXAMPLE / "package-lock.json").read_bytes()).hexdigest()
    if not LOCK_STAMP.exists() or LOCK_STAMP.read_text().strip() != lock:
        assert NPM is not None
        subprocess.run(
            [NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=EXAMPLE,
            check=True,
            timeout=300,
        )
        LOCK_STAMP.write_text(lock + "\n")
    return EXAMPLE


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spawned]:
    """``pacache serve --demo`` on a free port, with two workers as deployed, a demo cache
    of its own (a few seconds to build) and a snapshot dir so Reserve is accepted."""
    tmp = tmp_path_factory.mktemp("node-demo")
    flags = {
        "--demo-cache": str(tmp / "demo-cache"),
        "--snapshot-dir": str(tmp / "data"),
        "--port": "0",
        "--workers": "2",
        "--grace": "5",
    }
    running = spawn(["--demo", *(part for flag in flags.items() for part in flag)])
    try:
        yield running
    finally:
        try:
            running.stop(timeout=30)
        except subprocess.TimeoutExpired:
            running.stop(kill=True)


def node(example: Path, server: Spawned, *arguments: str) -> dict[str, Any]:
    """Run ``node client.js --target … ARGUMENTS`` and return the JSON it printed."""
    assert NODE is not None
    done = subprocess.run(
        [NODE, "client.js", "--target", server.target, *arguments],
        cwd=example,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"client.js exited {done.returncode}: {done.stderr}"
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_quote_answers_per_line_with_exact_money_and_stock_by_location(
    node_example: Path, demo: Spawned
) -> None:
    answer = node(
        node_example, demo, "quote", "--account", ACCOUNT, "--region", REGION,
        *line_flags(QUOTE_LINES),
    )  # fmt: skip
    with demo.client() as client:
        response, rows = client.quote(ACCOUNT, QUOTE_LINES, region=REGION)

    lines = answer["lines"]
    assert [line["line_id"] for line in lines] == ["cart-1", "cart-2", "cart-3", "cart-4"]
    assert [line["index"] for line in lines] == [0, 1, 2, 3]
    assert [line["status"] for line in lines] == ["LINE_STATUS_OK"] * 3 + [
        "LINE_STATUS_UNKNOWN_SKU"
    ]
    assert [line["status"] for line in lines] == [f"LINE_STATUS_{row.status}" for row in rows]
    for line, row in zip(lines, rows, strict=True):
        # int64 micros as decimal strings, equal to the Python client's integers
        assert line["price"]["unit_price_micros"] == str(row.unit_price_micros)
        assert line["price"]["extended_micros"] == str(row.extended_micros)
        assert line["base_qty"] == str(row.base_qty)
    assert lines[1]["price"]["unit_price_micros"] == "8785312"
    assert lines[1]["price"]["extended_micros"] == "263560000"
    assert lines[2]["base_qty"] == "48"
    assert lines[0]["price"]["source"] == "PRICE_SOURCE_CONTRACT"

    # availability: one entry per location of the region, in its rank order, on every line
    assert answer["locations"] == list(response.locations) and len(answer["locations"]) > 1
    for line, row in zip(lines, rows, strict=True):
        stock = line["availability"]
        assert [a["location"] for a in stock["locations"]] == answer["locations"]
        assert {a["location"]: int(a["available"]) for a in stock["locations"]} == row.available
        assert stock["network_available"] == str(row.network_available)
    hvac = {a["location"]: a["available"] for a in lines[0]["availability"]["locations"]}
    assert (hvac["DC09"], hvac["DC01"], hvac["DC03"]) == ("49", "35", "63")

    # and nothing lost or renamed on the way: the whole answer is the Python client's
    assert without_nulls(answer) == as_json(response)


def test_promise_nests_allocations_in_their_lines(node_example: Path, demo: Spawned) -> None:
    answer = node(
        node_example, demo, "promise", "--account", ACCOUNT, "--region", REGION,
        *line_flags(PROMISE_LINES),
    )  # fmt: skip
    with demo.client() as client:
        plan = client.promise(
            pb.PromiseRequest(account=ACCOUNT, region=REGION, lines=quote_lines(PROMISE_LINES))
        )

    hvac, plumbing, unknown = answer["lines"]
    assert [line["line_id"] for line in answer["lines"]] == ["po-10", "po-20", "po-30"]
    assert [line["status"] for line in answer["lines"]] == [
        "LINE_STATUS_OK", "LINE_STATUS_OK", "LINE_STATUS_UNKNOWN_SKU"
    ]  # fmt: skip
    assert [(a["location"], a["quantity"]) for a in hvac["allocations"]] == [
        ("DC09", "49"), ("DC01", "35"), ("DC03", "16")
    ]  # fmt: skip
    assert hvac["backordered_qty"] == "0"
    assert sum(int(a["quantity"]) for a in plumbing["allocations"]) == 14
    assert plumbing["backordered_qty"] == "6" and plumbing["backorder_date"] != ""
    assert unknown["allocations"] == []
    # each allocation names its shipment, and that shipment names the line back
    for index, line in enumerate(answer["lines"]):
        for allocation in line["allocations"]:
            shipment = answer["shipments"][allocation["shipment"]]
            assert shipment["location"] == allocation["location"]
            assert shipment["ship_date"] == allocation["ship_date"]
            assert index in shipment["line_indexes"]
    assert without_nulls(answer) == as_json(plan)


def test_reserve_echoes_the_hold_key_and_the_hold_is_real(
    node_example: Path, demo: Spawned
) -> None:
    answer = node(
        node_example, demo, "reserve", "--account", ACCOUNT, "--hold-key", "order-1001",
        "--ttl-ms", "60000", "--line", "HVAC-0000007:5@DC09", "--line", "PLMB-0000011:1:BX@DC13",
    )  # fmt: skip
    assert answer["hold_key"] == "order-1001"
    assert answer["active"] is True
    assert answer["expires_at_ms"].isdigit() and int(answer["expires_at_ms"]) > 0
    # per line, base units the stock did not cover: DC09 has 49 of HVAC-0000007; a BX of
    # PLMB-0000011 is 12, DC13 has 7
    assert answer["shortfall"] == ["0", "5"]
    with Client(demo.target) as client:
        released = client.release(pb.ReleaseRequest(account=ACCOUNT, hold_key="order-1001"))
    assert released.released
