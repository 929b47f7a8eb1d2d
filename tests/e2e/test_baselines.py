"""The benchmark's baselines answer exactly as pacache does, on the same tiny extract.

One tiny extract (``bench.datagen``) is built into a snapshot and served by a real
``pacache serve --today <reference date>``; each baseline (``bench.baselines``) is started
from the same extract with the same "today", and ``check_same_answers`` compares ~30 mixed
requests — workload carts as Quote, GetPrices, GetAvailability and Promise, plus edge lines
(unknown SKU, blocked item, zero and negative quantity, named locations, a per-request
price policy). Lines carry line_ids, and answers compare line by line, field by field. The
Redis baseline runs on its own private redis-server; the PostgreSQL one is skipped, saying
why, when no server answers. A baseline fed a deliberately altered price must be caught: a
check that cannot fail is not a check.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from bench.baselines import BaselineUnavailable, Request, check_same_answers, start_baseline
from bench.datagen import REFERENCE_DATE, Workload, generate
from loaders.extract import build_snapshot
from server._proto.pacache.v1 import pacache_pb2 as pb
from server.spawn import Spawned, spawn

TODAY = REFERENCE_DATE.isoformat()


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("baselines") / "tiny"
    generate(out, "tiny", seed=0)
    return out


@pytest.fixture(scope="module")
def pacache(extract: Path) -> Iterator[Spawned]:
    snapshots = extract.parent / "snapshots"
    build_snapshot(extract, snapshots, progress=False)
    running = spawn(["--snapshot", str(snapshots), "--port", "0", "--today", TODAY])
    yield running
    running.stop()


def _lines(skus: list[str], qty: list[int], uoms: list[str]) -> list[pb.QuoteLine]:
    """Request lines; every other line carries a line_id, which answers must echo."""
    return [
        pb.QuoteLine(line_id=f"L{i}" if i % 2 else "", sku=sku, quantity=q, uom=uom)
        for i, (sku, q, uom) in enumerate(zip(skus, qty, uoms, strict=True))
    ]


@pytest.fixture(scope="module")
def requests(extract: Path) -> list[Request]:
    """Workload carts in every call shape, then edge lines the workload never draws."""
    workload = Workload.from_extract(extract, seed=5)
    out: list[Request] = []
    for n in range(26):
        cart = workload.cart()
        lines = _lines(cart.skus, cart.qty, cart.uoms)
        region = cart.region or ""
        shape = n % 5
        if shape in (0, 1):
            out.append(pb.QuoteRequest(account=cart.account, region=region, lines=lines,
                                       pricing_date=TODAY))  # fmt: skip
        elif shape == 2:
            out.append(pb.GetAvailabilityRequest(account=cart.account, region=region, lines=lines))
        elif shape == 3:
            out.append(pb.GetPricesRequest(account=cart.account, lines=lines))
        else:
            out.append(
                pb.PromiseRequest(account=cart.account, region=region, lines=lines,
                                  ship_complete=n % 2 == 0, max_shipments=n % 3,
                                  need_by="2025-03-20")
            )  # fmt: skip
    items = pq.read_table(extract / "items.parquet", columns=["sku", "status"]).to_pylist()
    blocked = next(i["sku"] for i in items if i["status"] == "BLOCKED")
    locations = pq.read_table(extract / "locations.parquet")["location"].to_pylist()
    cart = workload.cart(8)
    edge = _lines([*cart.skus, "NO-SUCH-SKU", blocked, cart.skus[0]],
                  [*cart.qty[:-1], 0, 3, 2, -4], [*cart.uoms, "", "", ""])  # fmt: skip
    out += [
        pb.QuoteRequest(account=cart.account, lines=edge, locations=locations[:2]),
        pb.QuoteRequest(account=cart.account, lines=edge, pricing_date="2025-06-30"),
        pb.QuoteRequest(account=cart.account, lines=edge, policy=pb.POLICY_LOWEST_PRICE),
        pb.GetPricesRequest(account=cart.account, lines=edge, policy=pb.POLICY_PRIORITY),
        pb.GetAvailabilityRequest(account=cart.account, lines=edge, locations=locations[1:]),
        pb.PromiseRequest(account=cart.account, lines=edge, locations=locations[::-1]),
        pb.QuoteRequest(account="NO-SUCH-ACCOUNT", lines=edge),
    ]
    return out


def _baseline(name: str, extract: Path, tmp_path: Path, **options: Any) -> Any:
    try:
        return start_baseline(name, extract, tmp_path / name, today=TODAY, **options)
    except BaselineUnavailable as unavailable:
        pytest.skip(str(unavailable))


def test_plain_python_baseline_gives_pacaches_answers(
    extract: Path, pacache: Spawned, requests: list[Request], tmp_path: Path
) -> None:
    baseline = _baseline("python", extract, tmp_path)
    try:
        assert check_same_answers(pacache.target, baseline.target, requests) == []
    finally:
        baseline.stop()


def test_redis_baseline_gives_pacaches_answers_from_its_own_redis_server(
    extract: Path, pacache: Spawned, requests: list[Request], tmp_path: Path
) -> None:
    baseline = _baseline("redis", extract, tmp_path)
    try:
        assert len(baseline.store_pids) == 1  # its private redis-server
        assert all(os.path.exists(f"/proc/{pid}") for pid in (baseline.pid, *baseline.store_pids))
        assert check_same_answers(pacache.target, baseline.target, requests) == []
    finally:
        baseline.stop()


def test_postgres_baseline_gives_pacaches_answers(
    extract: Path, pacache: Spawned, requests: list[Request], tmp_path: Path
) -> None:
    # a schema of its own: another run on the shared server must not collide with this one
    schema = f"pacache_baseline_test_{os.getpid()}"
    baseline = _baseline("postgres", extract, tmp_path, pg_schema=schema)
    try:
        assert check_same_answers(pacache.target, baseline.target, requests) == []
    finally:
        baseline.stop()


def test_postgres_baseline_says_why_when_no_server_answers(extract: Path, tmp_path: Path) -> None:
    nowhere = f"postgresql:///postgres?host={tmp_path}&connect_timeout=1"
    with pytest.raises(BaselineUnavailable, match="no PostgreSQL answers"):
        start_baseline("postgres", extract, tmp_path / "pg", pg_url=nowhere)


def test_redis_baseline_says_why_when_the_given_redis_does_not_answer(
    extract: Path, tmp_path: Path
) -> None:
    with pytest.raises(BaselineUnavailable, match="no Redis answers"):
        start_baseline("redis", extract, tmp_path / "redis", redis_url="redis://127.0.0.1:1/0")


def test_the_check_reports_a_baseline_with_an_altered_price(
    extract: Path, pacache: Spawned, requests: list[Request], tmp_path: Path
) -> None:
    altered = tmp_path / "altered"
    shutil.copytree(extract, altered)
    breaks = pq.read_table(altered / "price_breaks.parquet")
    column = breaks.schema.get_field_index("price_micros")
    dearer = pc.add(breaks["price_micros"], pa.scalar(10_000, breaks["price_micros"].type))
    pq.write_table(
        breaks.set_column(column, "price_micros", dearer), altered / "price_breaks.parquet"
    )
    baseline = _baseline("python", altered, tmp_path)
    try:
        mismatches = check_same_answers(pacache.target, baseline.target, requests)
    finally:
        baseline.stop()
    assert any("price.unit_price_micros" in m for m in mismatches), mismatches[:5]
    assert not any("(GetAvailability)" in m or "(Promise)" in m for m in mismatches)
