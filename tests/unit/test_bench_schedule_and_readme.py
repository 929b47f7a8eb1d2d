"""The benchmark driver's pure parts: the open-loop arrival schedule, how a run is shared
among load processes, and the README section rewrite."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.histogram import merge, new_histogram, summary_ms
from bench.loadgen import LoadSpec, poisson_schedule, split
from bench.readme_table import END, START, latest_reports, replace_section, update_readme


def test_poisson_schedule_is_seeded_sorted_and_inside_the_run() -> None:
    first = poisson_schedule(500.0, 4.0, [3, 97])
    again = poisson_schedule(500.0, 4.0, [3, 97])
    other = poisson_schedule(500.0, 4.0, [4, 97])
    assert np.array_equal(first, again)
    assert not np.array_equal(first[:50], other[:50])
    assert np.all(np.diff(first) > 0)
    assert first[0] >= 0 and first[-1] < 4.0


def test_poisson_schedule_has_the_rate_and_exponential_gaps() -> None:
    times = poisson_schedule(2_000.0, 10.0, [1, 97])
    # 20,000 expected arrivals: the count's standard deviation is ~141
    assert abs(times.size - 20_000) < 6 * 141
    gaps = np.diff(times)
    assert abs(gaps.mean() - 1 / 2_000) < 0.05 / 2_000
    # exponential: the standard deviation equals the mean (a fixed schedule would have 0)
    assert abs(gaps.std() / gaps.mean() - 1.0) < 0.05


def test_poisson_schedule_of_no_rate_is_empty() -> None:
    assert poisson_schedule(0.0, 5.0, 1).size == 0
    assert poisson_schedule(10.0, 0.0, 1).size == 0


def test_closed_loop_concurrency_is_shared_out_and_idle_processes_sit_out() -> None:
    spec = LoadSpec("t", "mix", "closed", 0.0, 0.5, 1.0, concurrency=5, seed=2)
    parts = split(spec, 3)
    assert [p.concurrency for p in parts] == [2, 2, 1]
    assert len({p.seed for p in parts}) == 3 and len({p.offset for p in parts}) == 3
    assert [
        p.concurrency for p in split(LoadSpec("t", "mix", "closed", 0, 0, 1, concurrency=1), 2)
    ] == [1]


def test_open_loop_rate_is_split_evenly_so_the_sum_is_the_target() -> None:
    spec = LoadSpec("t", "mix", "open", 0.0, 0.5, 1.0, rate=900.0, max_outstanding=256)
    parts = split(spec, 3)
    assert sum(p.rate for p in parts) == 900.0
    assert all(p.max_outstanding == 85 for p in parts)


def test_encoded_histograms_merge_to_the_union_of_their_samples() -> None:
    one, two = new_histogram(), new_histogram()
    for value in range(1, 1001):
        (one if value % 2 else two).record_value(value * 10)
    merged = merge([one.encode(), two.encode()])
    summary = summary_ms(merged)
    assert summary["count"] == 1000
    assert summary["p50"] <= summary["p90"] <= summary["p99"] <= summary["p999"]
    assert abs(summary["p50"] - 5.0) < 0.05  # 500th of 10 µs … 10 ms


def _report(scale: str, date: str, pacache_rps: float) -> dict[str, object]:
    run = {
        "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 3.0, "p999": 4.0},
        "server_cpu_us_per_call": 900.0,
        "rss_mb": 80.0,
    }
    ratio = {"value": 2.5, "target": 2.0, "met": True, "note": ""}
    return {
        "scale": scale,
        "date": date,
        "machine": {
            "cpu": "CPU",
            "cores": 2,
            "python": "3.11",
            "libraries": {"numpy": "2", "grpcio": "1"},
        },
        "systems": {
            "pacache": {
                "throughput_at_p99_10ms_rps": pacache_rps,
                "headline_run": run,
                "sweep": [{"errors": 1}],
                "open_loop": [{"errors": 2}],
            }
        },
        "skipped": {"postgres": "postgres: no PostgreSQL answers at 'x'"},
        "ratios": {
            "pacache_vs_redis": ratio,
            "pacache_vs_postgres": {
                "value": None,
                "target": 10.0,
                "met": None,
                "note": "not measured",
            },
            "cpu_quote50_per_ping": {"value": 5.0, "target": 1.3, "met": False, "note": ""},
        },
    }


def test_readme_section_between_the_markers_is_replaced_and_nothing_else(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nintro\n\n{START}\nold table\n{END}\n\n## After\ntext\n")
    results = tmp_path / "bench" / "results"
    results.mkdir(parents=True)
    (results / "2026-01-01-small.json").write_text(json.dumps(_report("small", "2026-01-01", 10.0)))
    (results / "2026-02-01-small.json").write_text(
        json.dumps(_report("small", "2026-02-01", 1234.0))
    )
    (results / "2026-01-15-large.json").write_text(json.dumps(_report("large", "2026-01-15", 99.0)))
    (results / "cpu-ratio-small.json").write_text("{}")  # other benchmarks' files are not reports

    assert [p.name for p in latest_reports(results)] == [
        "2026-02-01-small.json",
        "2026-01-15-large.json",
    ]
    update_readme(readme, results)
    text = readme.read_text()
    assert text.startswith("# title\n\nintro\n\n" + START + "\n")
    assert text.endswith(END + "\n\n## After\ntext\n")
    assert "old table" not in text
    assert "| pacache | 1,234 |" in text and "| pacache | 99 |" in text
    assert "bench/results/2026-02-01-small.md" in text
    assert "| pacache | 10 |" not in text  # only the newest report of a scale
    assert "| postgres | skipped: no PostgreSQL answers at 'x' |" in text
    assert "CPU 50-line Quote ÷ Ping 5.00 (target ≤ 1.3: **missed**)" in text
    before = readme.read_text()
    update_readme(readme, results)
    assert readme.read_text() == before  # idempotent


def test_readme_without_markers_gets_them_appended() -> None:
    text = replace_section("# title\n", "table\n")
    assert text == f"# title\n\n{START}\ntable\n{END}\n"
