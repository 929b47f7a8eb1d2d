"""``pacache bench`` end to end at the tiny scale: pacache, Ping, a stand-in baseline and an
unavailable one, about a second of load each, then the report, plots and JSON.

The stand-in replaces ``bench.baselines`` (built separately) with the same interface: its
"redis" is a second pacache server, its "postgres" is unavailable. It lives only here.
"""

from __future__ import annotations

import json
import struct
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import bench
from bench.readme_table import END, START, update_readme
from bench.report import write_report
from bench.suite import Options, run_suite
from server.client import Client
from server.spawn import spawn


class BaselineUnavailable(Exception):
    pass


@dataclass
class RunningSystem:
    name: str
    target: str
    pid: int
    process: Any

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_baseline(
    name: str,
    extract_dir: Path,
    workdir: Path,
    *,
    redis_url: str | None = None,
    pg_url: str = "postgresql:///postgres?host=/var/run/postgresql",
) -> RunningSystem:
    if name == "postgres":
        raise BaselineUnavailable(f"postgres: no PostgreSQL answers at {pg_url!r} (stand-in)")
    snapshot_root = extract_dir.parent / "snapshots" / extract_dir.name
    spawned = spawn(["--snapshot", str(snapshot_root), "--port", "0", "--grace", "1"])
    return RunningSystem(name, spawned.target, spawned.process.pid, spawned.process)


def check_same_answers(
    reference_target: str, candidate_target: str, requests: Sequence[Any]
) -> list[str]:
    problems = []
    with Client(reference_target) as reference, Client(candidate_target) as candidate:
        for index, request in enumerate(requests):
            method = {"QuoteRequest": "Quote", "GetAvailabilityRequest": "GetAvailability",
                      "PromiseRequest": "Promise"}[type(request).__name__]  # fmt: skip
            answers = []
            for client in (reference, candidate):
                answer = getattr(client.pa, method)(request, timeout=10)
                answer.ClearField("as_of")
                answers.append(answer.SerializeToString(deterministic=True))
            if answers[0] != answers[1]:
                problems.append(f"request {index}: {method} answers differ")
    return problems


@pytest.fixture
def stand_in_baselines(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("bench.baselines")
    module.BaselineUnavailable = BaselineUnavailable  # type: ignore[attr-defined]
    module.RunningSystem = RunningSystem  # type: ignore[attr-defined]
    module.start_baseline = start_baseline  # type: ignore[attr-defined]
    module.check_same_answers = check_same_answers  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench.baselines", module)
    monkeypatch.setattr(bench, "baselines", module, raising=False)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.timeout(400)
def test_bench_runs_every_system_and_writes_a_sane_report(
    tmp_path: Path, stand_in_baselines: None
) -> None:
    options = Options(
        scale="tiny", data=tmp_path / "data", seconds=1.0, warmup=0.3, prime_seconds=0.5,
        concurrency=[1, 4],
        systems=["pacache", "ping", "redis", "postgres"], deltas_rate=200.0, pool_size=128,
        check_sample=10, profile_seconds=1.0, workdir=tmp_path / "work",
    )  # fmt: skip
    report = run_suite(options, log=lambda message: None)
    out = tmp_path / "results"
    written = write_report(report, out, json_path=tmp_path / "summary.json")

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["systems"]) == {"pacache", "ping", "redis", "pacache+deltas"}
    for name, system in summary["systems"].items():
        assert system["throughput_rps"] > 0, name
        assert 0 < system["p50_ms"] <= system["p99_ms"] <= system["p999_ms"], name
        assert system["server_cpu_us_per_call"] > 0, name
        assert system["rss_mb"] > 0, name
        assert isinstance(system["errors"], int) and system["errors"] >= 0, name
    assert "PostgreSQL" in summary["skipped"]["postgres"]
    assert summary["checks"] == {"redis": 0}  # the stand-in is pacache: same answers
    assert summary["cpu_ratio"] > 0
    assert {"pacache_vs_redis", "pacache_vs_postgres", "cpu_quote50_per_ping"} <= set(
        summary["ratios"]
    )
    assert summary["ratios"]["pacache_vs_postgres"]["met"] is None

    full = report["systems"]["pacache"]
    assert full["sweep"][0]["concurrency"] == 1
    assert full["open_loop"], "the rate at p99 <= 10 ms is searched open loop"
    for run in full["sweep"] + full["open_loop"]:
        latency = run["latency_ms"]
        assert latency["count"] > 0
        assert latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["p999"]
    assert report["deltas"]["markers"] > 0
    assert report["deltas"]["over_time"]["at_s"]

    markdown = written["markdown"].read_text()
    assert written["markdown"].name == f"{report['date']}-tiny.md"
    for heading in ("## Targets", "## Systems", "## Freshness while deltas stream in", "## Runs"):
        assert heading in markdown
    assert "no PostgreSQL answers" in markdown
    for kind in ("latency_cdf", "throughput", "freshness"):
        width, height = _png_size(written[kind])
        assert width > 100 and height > 100
        assert written[kind].name in markdown
    if report.get("profile"):
        assert "## Where the time goes" in markdown
        assert report["profile"]["inclusive"]

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{START}\n{END}\n")
    update_readme(readme, out)
    assert "| pacache |" in readme.read_text() and "| redis |" in readme.read_text()
