"""README's end-to-end benchmark table, generated from the latest ``pacache bench`` reports.

What it writes: the part of README.md between ``<!-- bench:start -->`` and
``<!-- bench:end -->`` — per scale, the newest report's systems (throughput at p99 ≤ 10 ms,
latency, CPU per call, RSS, errors), the target ratios and a link to the report. Nothing
outside the markers changes, so the rest of the README stays hand-written.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from bench.report import fmt

__all__ = ["END", "START", "latest_reports", "render_section", "replace_section", "update_readme"]

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"
_REPORT = re.compile(r"(\d{4}-\d{2}-\d{2})-(\w+)\.json")


def latest_reports(results: Path) -> list[Path]:
    """The newest ``<date>-<scale>.json`` per scale under ``results`` (small first)."""
    newest: dict[str, Path] = {}
    for path in sorted(results.glob("*.json")):
        found = _REPORT.fullmatch(path.name)
        if found:
            newest[found.group(2)] = path  # sorted by name = by date
    order = {"tiny": 0, "small": 1, "large": 2}
    return [newest[s] for s in sorted(newest, key=lambda s: order.get(s, 9))]


def render_section(reports: list[tuple[Path, dict[str, Any]]], readme_dir: Path) -> str:
    """The generated Markdown for these (path, report) pairs."""
    if not reports:
        return "No end-to-end benchmark report yet: `make bench` writes one.\n"
    parts = []
    for path, report in reports:
        m = report["machine"]
        link = os.path.relpath(path.with_suffix(".md"), readme_dir)
        parts += [
            f"End to end, {report['scale']} scale, {report['date']} ([report]({link})): "
            f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, numpy "
            f"{m['libraries'].get('numpy')}, grpcio {m['libraries'].get('grpcio')}; mix of "
            "80% Quote / 10% GetAvailability / 10% Promise, carts as DESIGN §10.",
            "",
            "| system | throughput at p99 ≤ 10 ms | p50 ms | p99 ms | p99.9 ms | "
            "server CPU µs/call | RSS MB | errors |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, system in report["systems"].items():
            run = system["headline_run"]
            lat = run["latency_ms"]
            errors = sum(r["errors"] for r in system["sweep"] + system["open_loop"])
            parts.append(
                f"| {name} | {fmt(system['throughput_at_p99_10ms_rps'], 0)} | "
                f"{fmt(lat['p50'], 2)} | {fmt(lat['p99'], 2)} | {fmt(lat['p999'], 2)} | "
                f"{fmt(run['server_cpu_us_per_call'], 0)} | {fmt(run['rss_mb'], 0)} | {errors} |"
            )
        notes = [f"{name}: {system['note']}" for name, system in report["systems"].items()
                 if system.get("note")]  # fmt: skip
        for name, reason in report.get("skipped", {}).items():
            reason = reason.removeprefix(f"{name}: ").splitlines()[0][:160]
            parts.append(f"| {name} | skipped: {reason} | | | | | | |")
        ratios = report["ratios"]
        labels = {
            "pacache_vs_redis": "pacache ÷ Redis",
            "pacache_vs_postgres": "pacache ÷ PostgreSQL",
            "cpu_quote50_per_ping": "CPU 50-line Quote ÷ Ping",
        }
        summary = []
        for key, label in labels.items():
            ratio = ratios[key]
            if ratio["met"] is None:
                verdict = "not measured"
            else:
                verdict = "met" if ratio["met"] else "**missed**"
            value = fmt(ratio["value"], 2) if ratio["value"] is not None else "n/a"
            sign = "≤" if key == "cpu_quote50_per_ping" else "≥"
            note = f", {ratio['note']}" if ratio.get("note") not in ("", None, verdict) else ""
            summary.append(f"{label} {value} (target {sign} {ratio['target']:g}: {verdict}{note})")
        for key, label in (
            ("max_throughput_vs_redis", "most throughput at any latency, pacache ÷ Redis"),
            ("max_throughput_vs_postgres", "÷ PostgreSQL"),
        ):
            if ratios.get(key, {}).get("value") is not None:
                summary.append(f"{label} {fmt(ratios[key]['value'], 2)}")
        deltas = report.get("deltas")
        if deltas:
            f = deltas["freshness_ms"]
            summary.append(
                f"freshness with {deltas['deltas_rate']:g} deltas/s: p50 {fmt(f.get('p50'), 1)}"
                f" / p99 {fmt(f.get('p99'), 1)} ms"
            )
        parts += ["", "; ".join(summary + notes) + ".", ""]
    return "\n".join(parts).rstrip("\n") + "\n"


def replace_section(text: str, section: str) -> str:
    """``text`` with what is between the markers replaced by ``section``; the markers
    are appended at the end when missing."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        return text.rstrip("\n") + f"\n\n{START}\n{section}{END}\n"
    return text[: start + len(START)] + "\n" + section + text[end:]


def update_readme(readme: Path, results: Path) -> str:
    """Rewrite ``readme``'s section from the newest reports in ``results``; returns it."""
    loaded = [(path, json.loads(path.read_text())) for path in latest_reports(results)]
    section = render_section(loaded, readme.parent)
    readme.write_text(replace_section(readme.read_text(), section))
    return section
