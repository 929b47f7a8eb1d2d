"""Latency histograms: HDR histograms recorded in load processes, merged in the driver.

What it holds: call latencies in microseconds, 1 µs to 60 s at 3 significant digits
(0.1% resolution), so p99.9 of a run is exact to the histogram's precision however many
calls it had. Load processes send their histograms to the driver in HdrHistogram's
encoded form (compressed, base64), which is small and merges exactly; a list of raw
latencies would not scale to long runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hdrh.histogram import HdrHistogram

__all__ = [
    "HIGHEST_US",
    "PERCENTILES",
    "cdf_points",
    "decode",
    "merge",
    "new_histogram",
    "summary_ms",
]

HIGHEST_US = 60_000_000  # a call timeout is 10 s; an open-loop backlog may exceed it
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9))


def new_histogram() -> HdrHistogram:
    """An empty latency histogram (µs)."""
    return HdrHistogram(1, HIGHEST_US, 3)


def decode(encoded: bytes | str) -> HdrHistogram:
    """A histogram from its encoded form."""
    return HdrHistogram.decode(encoded)


def merge(encoded: Iterable[bytes | str]) -> HdrHistogram:
    """One histogram holding every sample of the encoded ones."""
    total = new_histogram()
    for item in encoded:
        total.decode_and_add(item)
    return total


def summary_ms(histogram: HdrHistogram) -> dict[str, Any]:
    """Count, p50/p90/p99/p99.9, max and mean in ms (None when empty)."""
    count = histogram.get_total_count()
    if count == 0:
        return {"count": 0, **{name: None for name, _ in PERCENTILES}, "max": None, "mean": None}
    out: dict[str, Any] = {"count": count}
    for name, q in PERCENTILES:
        out[name] = round(histogram.get_value_at_percentile(q) / 1000, 3)
    out["max"] = round(histogram.get_max_value() / 1000, 3)
    out["mean"] = round(histogram.get_mean_value() / 1000, 3)
    return out


def cdf_points(histogram: HdrHistogram) -> tuple[list[float], list[float]]:
    """(latency ms, fraction of calls at or below it) for plotting a CDF."""
    latencies: list[float] = []
    fractions: list[float] = []
    total = histogram.get_total_count()
    if total == 0:
        return latencies, fractions
    seen = 0
    for item in histogram.get_recorded_iterator():
        seen += item.count_at_value_iterated_to
        latencies.append(item.value_iterated_to / 1000)
        fractions.append(seen / total)
    return latencies, fractions
