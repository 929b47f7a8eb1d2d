"""Fixtures for integration tests: a private redis-server per test.

``redis_server`` starts ``redis-server`` on a free port in the test's temporary directory
(no RDB, no AOF), waits until it answers PING, yields its URL and stops it (terminate,
then wait). Tests never touch the machine's shared Redis on 6379.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_process import RedisProcess


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty redis-server that lives for one test."""
    process = RedisProcess(tmp_path / "redis").start()
    try:
        yield process.url
    finally:
        process.stop()
