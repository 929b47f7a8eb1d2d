"""The end-to-end benchmark's report: Markdown tables, PNG plots and JSON from one run.

What it renders (from ``bench.suite.run_suite``'s dict): the target ratios, one row per
system at its headline point, each system's concurrency sweep and open-loop runs, the
CPU ratio, freshness under deltas, skipped systems with their reasons, the answer checks,
the profile's top frames where a target is missed, and how each number was obtained.
Plots (matplotlib, Agg backend, so no display is needed): latency CDF per system,
throughput vs concurrency, freshness lag over time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.histogram import cdf_points, decode

__all__ = ["fmt", "render_markdown", "write_plots", "write_report"]


def fmt(value: Any, digits: int = 1) -> str:
    """A number for a table: thousands separated, ``-`` for missing."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == float("inf"):
            return "∞"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _verdict(ratio: dict[str, Any]) -> str:
    if ratio["met"] is None:
        return str(ratio.get("note") or "not measured")
    verdict = "met" if ratio["met"] else "**missed**"
    return f"{verdict} ({ratio['note']})" if ratio.get("note") else verdict


def write_plots(report: dict[str, Any], out: Path, stem: str) -> dict[str, str]:
    """The report's PNGs in ``out``; name → file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: dict[str, str] = {}
    systems = report["systems"]

    figure, axes = plt.subplots(figsize=(7, 4.2))
    for name, system in systems.items():
        latencies, fractions = cdf_points(decode(system["headline_run"]["histogram"]))
        if latencies:
            axes.plot(latencies, fractions, label=f"{name} ({system['headline_run']['mode']})")
    deltas = report.get("deltas")
    if deltas:
        latencies, fractions = cdf_points(decode(deltas["run"]["histogram"]))
        if latencies:
            axes.plot(latencies, fractions, label="pacache+deltas (open)", linestyle="--")
    axes.axvline(10.0, color="grey", linewidth=0.8, linestyle=":")
    axes.set_xscale("log")
    axes.set_xlabel("latency (ms, log scale)")
    axes.set_ylabel("fraction of calls ≤ latency")
    axes.set_title("Latency CDF at each system's headline point")
    axes.legend(fontsize=8)
    axes.grid(True, which="both", alpha=0.3)
    files["latency_cdf"] = f"{stem}-latency-cdf.png"
    figure.tight_layout()
    figure.savefig(out / files["latency_cdf"], dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(7, 4.2))
    for name, system in systems.items():
        points = [(r["concurrency"], r["throughput_rps"]) for r in system["sweep"]]
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", label=name)
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")  # Ping's floor is several times the rest: keep them readable
    concurrency = sorted({r["concurrency"] for s in systems.values() for r in s["sweep"]})
    if concurrency:
        axes.set_xticks(concurrency, [str(c) for c in concurrency])
    axes.set_xlabel("calls in flight (closed loop)")
    axes.set_ylabel("throughput (calls/s, log scale)")
    axes.set_title("Throughput vs concurrency")
    axes.legend(fontsize=8)
    axes.grid(True, alpha=0.3)
    files["throughput"] = f"{stem}-throughput.png"
    figure.tight_layout()
    figure.savefig(out / files["throughput"], dpi=110)
    plt.close(figure)

    if deltas and deltas["over_time"]["at_s"]:
        figure, axes = plt.subplots(figsize=(7, 3.6))
        axes.plot(deltas["over_time"]["at_s"], deltas["over_time"]["lag_ms"], marker=".",
                  linewidth=0.6)  # fmt: skip
        axes.set_xlabel("seconds into the run")
        axes.set_ylabel("XADD → visible in Quote (ms)")
        axes.set_title(f"Freshness with {deltas['deltas_rate']:g} deltas/s streaming in")
        axes.grid(True, alpha=0.3)
        files["freshness"] = f"{stem}-freshness.png"
        figure.tight_layout()
        figure.savefig(out / files["freshness"], dpi=110)
        plt.close(figure)
    return files


def _run_row(label: str, run: dict[str, Any]) -> str:
    latency = run["latency_ms"]
    return (
        f"| {label} | {fmt(run['throughput_rps'])} | {fmt(latency['p50'], 2)} | "
        f"{fmt(latency['p90'], 2)} | {fmt(latency['p99'], 2)} | {fmt(latency['p999'], 2)} | "
        f"{fmt(run['server_cpu_us_per_call'], 0)} | {fmt(run['rss_mb'])} | {run['errors']} |"
    )


_RUN_HEAD = (
    "| {first} | throughput (calls/s) | p50 ms | p90 ms | p99 ms | p99.9 ms | "
    "server CPU µs/call | RSS MB | errors |\n|---|---|---|---|---|---|---|---|---|"
)


def _machine(report: dict[str, Any]) -> str:
    m = report["machine"]
    libraries = ", ".join(f"{k} {v}" for k, v in m["libraries"].items())
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['os']}; Python "
        f"{m['python']}; {libraries}. Load average at start "
        f"{', '.join(f'{x:.2f}' for x in report['load_average_at_start'])}, at end "
        f"{', '.join(f'{x:.2f}' for x in report['load_average_at_end'])}."
    )


def _profile_summary(profile: dict[str, Any]) -> str:
    """One sentence: the busy time's split between the Quote handler and the rest, from the
    inclusive list (the handler is always in its top)."""
    # "Quote (service.py:177)" → "Quote (service.py": a function in a file, whatever its line
    shares = {row["function"].rsplit(":", 1)[0]: row["share"] for row in profile["inclusive"]}
    handler = shares.get("Quote (service.py", 0.0)
    return (
        f"Of the event loop's busy time: the Quote handler (reading the request, handing it "
        f"to the engine lane and awaiting it) {handler:.0%}, outside the handler (grpc.aio, "
        f"interceptors, the event loop's own work) {max(1 - handler, 0):.0%}. The engine and "
        "the answer's encoding (`server._wire`) run on the engine lane's thread and the gRPC "
        "C core on its own threads; this sampler sees neither (the CPU ratio above includes "
        "them)."
    )


def _kinds(mix: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(mix.items()))


def render_markdown(report: dict[str, Any], plots: dict[str, str]) -> str:
    """The Markdown report."""
    options = report["options"]
    lines = [
        f"# pacache end-to-end benchmark — {report['scale']} scale, {report['date']}",
        "",
        f"`pacache bench --scale {report['scale']}` · {report['wall_s']} s wall · "
        f"`today` = {report['today']}",
        "",
        f"Machine: {_machine(report)}",
        "",
        f"Workload: {options['pool_size']} seeded requests ({_kinds(options['mix'])}) "
        "with carts shaped as DESIGN §10 (Zipf SKUs, 1–200 lines, median ~12), sent by "
        f"{options['load_processes']} load processes × {options['channels_per_process']} "
        f"channels (grpc.aio), {options['seconds']} s per run after {options['warmup_s']} s "
        "warm-up. Every system gets byte-identical requests.",
        "",
        "## Targets",
        "",
        "| ratio | measured | target | verdict |",
        "|---|---|---|---|",
    ]
    names = {
        "pacache_vs_redis": "pacache ÷ Redis-backed, throughput at p99 ≤ 10 ms",
        "pacache_vs_postgres": "pacache ÷ PostgreSQL-backed, throughput at p99 ≤ 10 ms",
        "cpu_quote50_per_ping": "server CPU per 50-line Quote ÷ per Ping",
        "max_throughput_vs_redis": "(context) pacache ÷ Redis-backed, most throughput at any "
        "latency",
        "max_throughput_vs_postgres": "(context) pacache ÷ PostgreSQL-backed, most throughput "
        "at any latency",
    }
    for key, label in names.items():
        ratio = report["ratios"].get(key)
        if ratio is None:
            continue
        if ratio["target"] is None:
            lines.append(f"| {label} | {fmt(ratio['value'], 2)} | - | {ratio['note']} |")
            continue
        sign = "≥" if key != "cpu_quote50_per_ping" else "≤"
        lines.append(
            f"| {label} | {fmt(ratio['value'], 2)} | {sign} {ratio['target']:g} | "
            f"{_verdict(ratio)} |"
        )
    lines += [
        "",
        "## Systems",
        "",
        "Throughput at p99 ≤ 10 ms is the highest throughput an open-loop run (Poisson "
        "arrivals, latency from the intended send time) achieved with p99 ≤ 10 ms and no "
        "errors; the rates tried start from the best closed-loop point under the bound "
        "(see *How it is measured*). The other columns are at that point or, when no rate "
        "met the bound, at the open-loop run with the lowest p99.",
        "",
        "| system | like for like | throughput at p99 ≤ 10 ms | max throughput | "
        "p50 ms | p99 ms | p99.9 ms | server CPU µs/call | RSS MB | errors | point |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, system in report["systems"].items():
        run = system["headline_run"]
        check = report["checks"].get(name)
        if check is None:
            alike = "reference" if name.startswith("pacache") else "same server"
        elif check["differences"] == 0:
            alike = f"same answers ({check['requests']} requests)"
        else:
            alike = f"**{check['differences']} differences**"
        errors = sum(r["errors"] for r in system["sweep"] + system["open_loop"])
        point = (
            f"open {fmt(run['offered_rps'], 0)}/s"
            if run["mode"] == "open"
            else f"closed c={run['concurrency']}"
        )
        lat = run["latency_ms"]
        lines.append(
            f"| {name} | {alike} | {fmt(system['throughput_at_p99_10ms_rps'])} | "
            f"{fmt(system['max_throughput_rps'])} | {fmt(lat['p50'], 2)} | {fmt(lat['p99'], 2)} | "
            f"{fmt(lat['p999'], 2)} | {fmt(run['server_cpu_us_per_call'], 0)} | "
            f"{fmt(run['rss_mb'])} | {errors} | {point} |"
        )
    kinds = sorted({k for s in report["systems"].values() for k in s["headline_run"]["by_kind_ms"]})
    if kinds:
        lines += [
            "",
            "By call kind at the same point, p50 / p99 ms:",
            "",
            "| system | " + " | ".join(kinds) + " |",
            "|---|" + "---|" * len(kinds),
        ]
        for name, system in report["systems"].items():
            by_kind = system["headline_run"]["by_kind_ms"]
            cells = [
                f"{fmt(by_kind[k]['p50'], 2)} / {fmt(by_kind[k]['p99'], 2)}"
                if k in by_kind
                else "-"
                for k in kinds
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    notes = [
        (name, system["note"]) for name, system in report["systems"].items() if system.get("note")
    ]
    if notes:
        lines += [""] + [f"- **{name}**: {note}." for name, note in notes]
    if report["skipped"]:
        lines += ["", "Skipped:", ""]
        lines += [
            f"- **{name}**: {reason.removeprefix(f'{name}: ')}"
            for name, reason in report["skipped"].items()
        ]
    for name, check in report["checks"].items():
        if check["differences"]:
            lines += ["", f"Answer differences, {name} vs pacache (first {len(check['first'])}):",
                      ""]  # fmt: skip
            lines += [f"- `{problem}`" for problem in check["first"]]
    if "throughput" in plots:
        lines += ["", f"![throughput vs concurrency]({plots['throughput']})"]
    if "latency_cdf" in plots:
        lines += ["", f"![latency CDF]({plots['latency_cdf']})"]

    cpu = report.get("cpu_ratio")
    if cpu:
        lines += [
            "",
            f"## Server CPU per call: {cpu['lines']}-line Quote vs Ping",
            "",
            f"Closed loop, {cpu['concurrency']} in flight, same pacache server.",
            "",
            _RUN_HEAD.format(first="call"),
            _run_row(f"Quote, {cpu['lines']} lines", cpu["quote"]),
            _run_row("Admin Ping", cpu["ping"]),
            "",
            f"Ratio: **{cpu['ratio']}** (target ≤ 1.3).",
        ]
    by_workers = report.get("cpu_by_workers", {})
    if len(by_workers) > 1:
        base = by_workers.get("pacache", {}).get("quote", {}).get("server_cpu_us_per_call")
        lines += [
            "",
            f"The same {cpu['lines'] if cpu else 50}-line Quote load on each pacache process "
            "layout (`pacache`: one worker per core, as deployed; `pacache-wN`: N workers; "
            "server CPU summed over the writer and the workers):",
            "",
            "| system | closed loop: Quote calls/s | p99 ms | server CPU µs/Quote | vs pacache "
            "| same load: open loop at | server CPU µs/Quote | vs pacache | µs/Ping |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        same = by_workers.get("pacache", {}).get("quote_same_load", {})
        base_same = same.get("server_cpu_us_per_call")
        for name, run in by_workers.items():
            quote, ping = run["quote"], run["ping"]
            mine = quote["server_cpu_us_per_call"]
            versus = f"{mine / base:.2f}×" if base else "-"
            p99 = quote["latency_ms"]["p99"]
            at = run.get("quote_same_load")
            mine_same = at["server_cpu_us_per_call"] if at else None
            versus_same = f"{mine_same / base_same:.2f}×" if mine_same and base_same else "-"
            rate = f"{fmt(run['same_load_rps'], 0)}/s" if at else "-"
            lines.append(
                f"| {name} | {fmt(quote['throughput_rps'])} | {fmt(p99, 2)} | "
                f"{fmt(mine, 0)} | {versus} | {rate} | {fmt(mine_same, 0)} | {versus_same} | "
                f"{fmt(ping['server_cpu_us_per_call'], 0)} |"
            )
        lines += [
            "",
            "Closed loop at 8 in flight saturates this machine's 2 cores (the load processes "
            "take their share), and more workers then mostly add contention; the same-load "
            "columns compare the layouts at one offered rate, below saturation.",
        ]

    deltas = report.get("deltas")
    lines += ["", "## Freshness while deltas stream in", ""]
    if deltas:
        f = deltas["freshness_ms"]
        lines += [
            f"pacache reading Redis Streams while a producer XADDs InventorySet events at "
            f"{deltas['deltas_rate']:g}/s (achieved {fmt(deltas['producer_events_per_s'])}/s), "
            f"serving the mix open loop at {fmt(deltas['mix_rate'], 0)}/s (half its rate at "
            "p99 ≤ 10 ms). Freshness = XADD of a marker → first Quote showing it "
            "(`bench.freshness`'s sampler, one marker every 20 ms).",
            "",
            "| markers | timed out | p50 ms | p90 ms | p99 ms | max ms |",
            "|---|---|---|---|---|---|",
            f"| {deltas['markers']} | {deltas['timeouts']} | {fmt(f.get('p50'), 2)} | "
            f"{fmt(f.get('p90'), 2)} | {fmt(f.get('p99'), 2)} | {fmt(f.get('max'), 2)} |",
            "",
            _RUN_HEAD.format(first="mix under deltas"),
            _run_row(f"open {fmt(deltas['mix_rate'], 0)}/s", deltas["run"]),
        ]
        if "freshness" in plots:
            lines += ["", f"![freshness over time]({plots['freshness']})"]
    else:
        reason = report["skipped"].get("deltas", "not run (`--deltas-rate 0`)")
        lines.append(f"Not measured: {reason}.")

    profile = report.get("profile")
    if profile:
        lines += [
            "",
            "## Where the time goes (a target is missed)",
            "",
            f"pacache under pyinstrument (1 ms samples of the serving thread), {profile['load']}"
            f", {profile['run']['seconds']} s: {fmt(profile['run']['throughput_rps'])} calls/s "
            f"(slower than unprofiled). {profile['sampled_s']} s sampled, of which "
            f"{profile['idle_s']} s the event loop waiting for work; shares are of the busy "
            "rest.",
            "",
            _profile_summary(profile),
            "",
            "Most time spent in the function itself:",
            "",
            "| function | seconds | share |",
            "|---|---|---|",
        ]
        lines += [
            f"| `{row['function']}` | {row['seconds']} | {row['share']:.1%} |"
            for row in profile["self"]
        ]
        lines += ["", "Most time inclusive of callees:", "", "| function | seconds | share |",
                  "|---|---|---|"]  # fmt: skip
        lines += [
            f"| `{row['function']}` | {row['seconds']} | {row['share']:.1%} |"
            for row in profile["inclusive"]
        ]

    lines += ["", "## Runs", ""]
    for name, system in report["systems"].items():
        lines += [f"### {name}", "", _RUN_HEAD.format(first="run")]
        for run in system["sweep"]:
            lines.append(_run_row(f"closed c={run['concurrency']}", run))
        for run in system["open_loop"]:
            late = run["dispatch_late_p99_ms"]
            behind = " — the load processes fell behind" if late and late > 5 else ""
            lines.append(
                _run_row(
                    f"open {fmt(run['offered_rps'], 0)}/s (dispatch late p99 "
                    f"{fmt(late, 2)} ms{behind})",
                    run,
                )
            )
        lines.append("")
    lines += [
        "## How it is measured",
        "",
        "- Each system is a separate server process; load comes from separate processes "
        "(`bench.loadgen`), raw bytes over grpc.aio, so the client does not parse answers. "
        "On this 2-core machine the load processes share the CPU with the server: absolute "
        "rates are machine-bound, ratios between systems are the point.",
        f"- Closed loop: N callers each waiting for its answer; the sweep "
        f"({', '.join(map(str, options['concurrency']))}) stops once p99 is over 10 ms and "
        "more callers add under 5% throughput.",
        "- Open loop: Poisson arrivals at a rate; latency counts from the intended send time "
        "(no coordinated omission), so queueing shows. Rates tried: the best closed-loop "
        "throughput with p99 ≤ 10 ms, then ×1.25 if it held, else ×0.7, ×0.5, ×0.35 and "
        "×0.25 until one holds; when even "
        "one call in flight has p99 over 10 ms, ×0.5 and ×0.25 of that one caller's "
        "throughput.",
        "- Server CPU: utime + stime of the server process and its descendants from /proc "
        "over the measured window, ÷ calls in the window; for a baseline, plus its store: "
        "the private redis-server, or the PostgreSQL backends serving its connections "
        "(PostgreSQL's shared background processes are not counted).",
        "- RSS: proportional set size (PSS) of the same processes at the end of the run, "
        "so memory they share counts once.",
        "- Latencies: HDR histograms (1 µs–60 s, 3 significant digits) merged from the load "
        "processes.",
    ]
    return "\n".join(lines) + "\n"


def write_report(
    report: dict[str, Any], out: Path, *, json_path: Path | None = None
) -> dict[str, Path]:
    """``out/<date>-<scale>.md``, its PNGs and the full data as ``.json``; with
    ``json_path``, the per-system summary there too. Returns what was written."""
    from bench.suite import summary

    out.mkdir(parents=True, exist_ok=True)
    stem = f"{report['date']}-{report['scale']}"
    plots = write_plots(report, out, stem)
    markdown = out / f"{stem}.md"
    markdown.write_text(render_markdown(report, plots))
    full = out / f"{stem}.json"
    full.write_text(json.dumps(report, indent=1, default=str) + "\n")
    written = {"markdown": markdown, "data": full, **{k: out / v for k, v in plots.items()}}
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(summary(report), indent=1, default=str) + "\n")
        written["json"] = json_path
    return written
