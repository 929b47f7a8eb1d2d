"""The client commands of the ``pacache`` CLI against a real server: ``--json`` prints the
answer as proto3 JSON, and a failed call prints one line and exits 1 (no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.e2e.conftest import Running


def _pacache(served: Running, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", arguments[0], "--target", served.target,
         *arguments[1:]],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_quote_json_is_the_per_line_answer(served: Running) -> None:
    done = _pacache(
        served, "quote", "--account", "ACME", "--line", "BOLT-M8:150", "--line", "NOPE:1",
        "--region", "SOUTH", "--policy", "LOWEST_PRICE", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["policy"] == "POLICY_LOWEST_PRICE"
    bolt, nope = answer["lines"]
    assert (bolt["sku"], bolt["status"], bolt["price"]["unitPriceMicros"]) == (
        "BOLT-M8", "LINE_STATUS_OK", "180000",
    )  # fmt: skip
    assert nope["index"] == 1 and nope["status"] == "LINE_STATUS_UNKNOWN_SKU"
    assert [a["location"] for a in bolt["availability"]["locations"]] == ["DAL", "ATL"]


def test_promise_and_stats_json(served: Running) -> None:
    promise = _pacache(served, "promise", "--account", "ACME", "--region", "SOUTH",
                       "--line", "BOLT-M8:600", "--json")  # fmt: skip
    assert promise.returncode == 0, promise.stderr
    (line,) = json.loads(promise.stdout)["lines"]
    assert [a["quantity"] for a in line["allocations"]] == ["480", "40"]
    stats = _pacache(served, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    stats_answer, freshness = (json.loads(text) for text in stats.stdout.splitlines())
    assert int(stats_answer["counts"]["skus"]) == 3 and "asOf" in freshness


def test_a_failed_call_is_one_line_and_exit_1(served: Running) -> None:
    done = _pacache(served, "quote", "--account", "NOBODY", "--line", "BOLT-M8:1")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "pacache quote: NOT_FOUND: account: unknown code 'NOBODY'"
    ]
