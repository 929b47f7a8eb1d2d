"""``pacache bench`` end to end at the tiny scale: pacache (as deployed and with one
worker), Ping, the plain-Python baseline and a PostgreSQL baseline pointed at a port where
nothing answers (so the skip path runs), about a second of load each, then the report,
plots and JSON."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from bench.readme_table import END, START, update_readme
from bench.report import write_report
from bench.suite import Options, run_suite


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.timeout(400)
def test_bench_runs_every_system_and_writes_a_sane_report(tmp_path: Path) -> None:
    options = Options(
        scale="tiny", data=tmp_path / "data", seconds=1.0, warmup=0.3, prime_seconds=0.5,
        concurrency=[1, 4],
        systems=["pacache", "pacache-w1", "ping", "python", "postgres"], deltas_rate=200.0,
        pool_size=128,
        pg_url="postgresql://127.0.0.1:1/nothing",
        check_sample=10, profile_seconds=1.0, workdir=tmp_path / "work",
    )  # fmt: skip
    report = run_suite(options, log=lambda message: None)
    out = tmp_path / "results"
    written = write_report(report, out, json_path=tmp_path / "summary.json")

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["systems"]) == {
        "pacache", "pacache-w1", "ping", "python", "pacache+deltas"
    }  # fmt: skip
    layouts = report["cpu_by_workers"]  # workers 1 vs as deployed, also at one offered load
    assert set(layouts) == {"pacache", "pacache-w1"}
    rates = {run["same_load_rps"] for run in layouts.values()}
    assert len(rates) == 1 and rates.pop() > 0
    assert all(run["quote_same_load"]["server_cpu_us_per_call"] > 0 for run in layouts.values())
    for name, system in summary["systems"].items():
        assert system["throughput_rps"] > 0, name
        assert 0 < system["p50_ms"] <= system["p99_ms"] <= system["p999_ms"], name
        assert system["server_cpu_us_per_call"] > 0, name
        assert system["rss_mb"] > 0, name
        assert isinstance(system["errors"], int) and system["errors"] >= 0, name
    assert "PostgreSQL" in summary["skipped"]["postgres"]
    assert summary["checks"] == {"python": 0}  # same answers as pacache on the sample
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
    assert "| pacache |" in readme.read_text() and "| python |" in readme.read_text()
