"""How many inputs each fuzz test gets, how they are drawn, and what they earned.

``PACACHE_FUZZ_EXAMPLES`` is the input budget of the whole fuzz suite (default 2,000, what
``make test`` runs; ``make test-fuzz`` asks for 100,000); each test takes a share of it.
Without ``PACACHE_FUZZ_SEED`` every run draws the same inputs (hypothesis
``derandomize``), so a red CI run is red again on a laptop; with it, the inputs follow
that seed, and a run is repeated by passing the seed it printed.

:data:`OUTCOMES` counts what every input earned, per target (a gRPC method under one
server configuration, or a loader decoder): a status code name, ``returned`` or the
decoder's own error. The session fixture in ``conftest.py`` writes it to
``bench/results/fuzz-latest.json``.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, seed, settings

__all__ = [
    "OUTCOMES",
    "PER_REQUEST",
    "SEED",
    "TOTAL",
    "Hung",
    "fuzz",
    "record",
    "watchdog",
]

T = TypeVar("T")

TOTAL = int(os.environ.get("PACACHE_FUZZ_EXAMPLES", "2000"))
SEED: int | None = (
    int(os.environ["PACACHE_FUZZ_SEED"]) if os.environ.get("PACACHE_FUZZ_SEED") else None
)
#: target → outcome → inputs
OUTCOMES: dict[str, Counter[str]] = {}
#: the suffix of a target counting parts of inputs (a QuoteStream's requests), not inputs
PER_REQUEST = " [per request]"


def examples(share: float, *, cap: int | None = None) -> int:
    """This test's part of the budget (at least 1; at most ``cap``)."""
    n = max(1, round(TOTAL * share))
    return min(n, cap) if cap is not None else n


def fuzz(share: float, *, cap: int | None = None) -> Callable[[T], T]:
    """Settings for a ``@given`` test with ``share`` of the budget: no example database
    (nothing carried between runs), no per-example deadline (hangs are the watchdog's),
    no explain phase (it re-runs failing inputs many times over a server), and either
    derandomized or seeded from ``PACACHE_FUZZ_SEED``."""
    chosen = settings(
        max_examples=examples(share, cap=cap),
        derandomize=SEED is None,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        print_blob=SEED is not None,
    )

    def apply(test: Any) -> Any:
        test = chosen(test)
        return seed(SEED)(test) if SEED is not None else test

    return apply


def record(target: str, outcome: str) -> None:
    """Count one input of ``target`` that earned ``outcome``."""
    OUTCOMES.setdefault(target, Counter())[outcome] += 1


class Hung(BaseException):
    """A decoder still ran when the watchdog fired (a BaseException, so no ``except
    Exception`` in the code under test can swallow it)."""


@contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Raise :class:`Hung` in this (the main) thread if the block runs ``seconds``.

    A decoder's work is bounded by its input's size; these inputs are at most a few
    hundred kilobytes and decode in microseconds to milliseconds, so a block that is still
    running after seconds is unbounded work (a 10^999999999 made exact, a loop that does
    not end), not a slow machine. Work inside one C call is only seen when it returns;
    the per-test timeout is the backstop for that.
    """

    def fire(signum: int, frame: Any) -> None:
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
