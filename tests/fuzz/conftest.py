"""The fuzz suite's session report: ``bench/results/fuzz-latest.json``.

Written when the session ends (also when a fuzz test failed: the table then shows what the
run saw up to the failure), with the inputs run, the wall time, the budget and seed, the
machine and library versions, and the outcome table: per target (a gRPC method under one
server configuration, or a loader decoder), how many inputs earned each status code or
result. A QuoteStream's requests each have their own code too (``… [per request]``);
those are counted in the table but not as inputs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterator

import hypothesis
import pytest

from bench.machine import machine_info
from server.spawn import REPO
from tests.fuzz.budget import OUTCOMES, PER_REQUEST, SEED, TOTAL

REPORT = REPO / "bench" / "results" / "fuzz-latest.json"


@pytest.fixture(scope="session", autouse=True)
def fuzz_report(request: pytest.FixtureRequest) -> Iterator[None]:
    started = time.monotonic()
    yield
    # only a make test-fuzz run (a budget set) writes the tracked report: make test's
    # small fixed run would rewrite it on every test run
    if not OUTCOMES or "PACACHE_FUZZ_EXAMPLES" not in os.environ:
        return
    totals: dict[str, int] = {}
    for target, outcomes in OUTCOMES.items():
        if target.endswith(PER_REQUEST):  # inside inputs already counted
            continue
        for outcome, count in outcomes.items():
            totals[outcome] = totals.get(outcome, 0) + count
    report = {
        "what": "tests/fuzz: random and mutated inputs to every gRPC method (three server "
        "configurations) and every loader decoder; see tests/fuzz/__init__.py",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "inputs": sum(totals.values()),
        "budget": TOTAL,
        "seed": SEED if SEED is not None else "derandomized",
        "wall_seconds": round(time.monotonic() - started, 1),
        "tests_failed": request.session.testsfailed,
        "machine": {**machine_info(), "hypothesis": hypothesis.__version__},
        "totals": dict(sorted(totals.items())),
        "outcomes": {target: dict(sorted(c.items())) for target, c in sorted(OUTCOMES.items())},
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=1) + "\n")
