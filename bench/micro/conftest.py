"""Data for the engine micro-benchmarks: the seeded large extract and its snapshot.

``PACACHE_BENCH_DATA`` (default ``.data/bench`` in the repository, git-ignored) holds
``<scale>/`` extracts and ``snapshots/<scale>/``; missing ones are generated and built
first (the large scale takes about 2.5 minutes and 10 GB of memory to build once).
``PACACHE_BENCH_SCALE`` picks the scale (default large).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine import snapshot
from engine.state import State

REPO = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.bench)


@pytest.fixture(scope="session")
def scale() -> str:
    return os.environ.get("PACACHE_BENCH_SCALE", "large")


@pytest.fixture(scope="session")
def data_root() -> Path:
    return Path(os.environ.get("PACACHE_BENCH_DATA", REPO / ".data" / "bench"))


@pytest.fixture(scope="session")
def extract_dir(data_root: Path, scale: str) -> Path:
    path = data_root / scale
    if not (path / "extract.json").is_file():
        from bench.datagen import generate

        generate(path, scale, 0)
    return path


@pytest.fixture(scope="session")
def snapshot_root(data_root: Path, scale: str, extract_dir: Path) -> Path:
    root = data_root / "snapshots" / scale
    if snapshot.latest(root) is None:
        from loaders.extract import build_snapshot

        build_snapshot(extract_dir, root, progress=False)
    return root


@pytest.fixture(scope="session")
def state(snapshot_root: Path) -> State:
    found = snapshot.latest(snapshot_root)
    assert found is not None
    return snapshot.load(found)
