"""The kernels' per-line loops make no Python call: what ``cython -a`` shows, as a test.

``cython -a`` scores each source line by the Python C-API calls its C code makes (the
yellow lines of its HTML report). Every kernel keeps its per-line loops inside one
``with nogil:`` block; inside it, only the ``with nogil:`` line itself may score (releasing
and re-taking the GIL). The kernels are annotated as the release build compiles them
(bounds checks and wraparound off, C division).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

KERNELS = Path(__file__).resolve().parents[2] / "engine" / "_kernels"
_LINE = re.compile(r'<pre class="cython line score-(\d+)"[^>]*>.*?>(\d+)</span>', re.S)


def _annotate(source: Path, workdir: Path) -> dict[int, int]:
    """{source line: cython -a score} for one .pyx, compiled as the release build is."""
    package = workdir / "engine" / "_kernels"
    package.mkdir(parents=True)
    for path in KERNELS.iterdir():
        if path.suffix in (".pyx", ".pxd", ".h"):
            shutil.copy(path, package / path.name)
    subprocess.run(
        [sys.executable, "-m", "cython", "-a", "-3", "-I", str(workdir),
         "-X", "boundscheck=False", "-X", "wraparound=False",
         "-X", "initializedcheck=False", "-X", "cdivision=True",
         str(package / source.name)],
        check=True, capture_output=True,
    )  # fmt: skip
    report = (package / source.name).with_suffix(".html").read_text()
    return {int(line): int(score) for score, line in _LINE.findall(report)}


def _nogil_blocks(source: Path) -> list[range]:
    """Line ranges (1-based) of every ``with nogil:`` block's body."""
    lines = source.read_text().splitlines()
    blocks = []
    for start, text in enumerate(lines, 1):
        if text.strip() != "with nogil:":
            continue
        indent = len(text) - len(text.lstrip())
        end = start
        for number in range(start + 1, len(lines) + 1):
            body = lines[number - 1]
            if body.strip() and len(body) - len(body.lstrip()) <= indent:
                break
            end = number
        blocks.append(range(start + 1, end + 1))
    return blocks


@pytest.mark.parametrize("kernel", sorted(p.name for p in KERNELS.glob("*.pyx")))
def test_the_kernels_per_line_loops_make_no_python_call(kernel: str, tmp_path: Path) -> None:
    pytest.importorskip("Cython")
    source = KERNELS / kernel
    blocks = _nogil_blocks(source)
    assert blocks, f"{kernel} has no nogil block: its loops would hold the GIL"
    scores = _annotate(source, tmp_path)
    assert scores, "cython -a wrote no scored lines: the report format changed"
    text = source.read_text().splitlines()
    yellow = [
        f"{kernel}:{number} (score {scores[number]}): {text[number - 1].strip()}"
        for block in blocks
        for number in block
        if scores.get(number, 0) > 0
    ]
    assert yellow == []
