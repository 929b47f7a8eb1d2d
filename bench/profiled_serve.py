"""``pacache serve`` under pyinstrument: where a server's time goes under benchmark load.

What it measures: a statistical profile (pyinstrument, 1 ms sampling of the main thread,
where grpc.aio runs the handlers and the engine) of the whole serving process, from
start to SIGTERM. The session is saved as pyinstrument JSON to ``PACACHE_PROFILE_OUT``;
:func:`top_frames` reads it back as the functions with the most time in them, which is
what the benchmark report quotes where a target is missed.

    PACACHE_PROFILE_OUT=/tmp/p.json python -m bench.profiled_serve --snapshot DIR --port 0
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "top_frames"]


def main() -> int:
    from pyinstrument import Profiler

    from server.serve import add_arguments
    from server.serve import main as serve_main

    parser = argparse.ArgumentParser(prog="python -m bench.profiled_serve")
    add_arguments(parser)
    args = parser.parse_args()
    args.workers = 0  # the serving thread must be in this process for the profiler to see it
    out = Path(os.environ.get("PACACHE_PROFILE_OUT", "profile.json"))
    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    try:
        return serve_main(args)
    finally:
        session = profiler.stop()
        session.save(str(out))


_IDLE_FILES = ("runners.py", "base_events.py", "selectors.py")  # the loop waiting for work


def _walk(
    frame: Any, stack: tuple[str, ...], own: dict[str, float], total: dict[str, float]
) -> None:
    if frame.is_synthetic:  # "[self]" leaves: their time is already the parent's self time
        return
    name = f"{frame.function} ({Path(frame.file_path or '?').name}:{frame.line_no})"
    own[name] = own.get(name, 0.0) + frame.total_self_time
    if name not in stack:  # recursion: count a function's inclusive time once per stack
        total[name] = total.get(name, 0.0) + frame.time
    for child in frame.children:
        _walk(child, (*stack, name), own, total)


def top_frames(path: str | Path, count: int = 15) -> dict[str, Any]:
    """The ``count`` functions with the most self time and with the most inclusive time
    in a saved session: (function (file:line), seconds, share of busy time). Busy time is
    sampled time minus the event loop's own waiting (self time in the loop runner);
    the bootstrap chain every sample passes through (main, run) is left out of the
    inclusive list."""
    from pyinstrument.session import Session

    session = Session.load(str(path))
    root = session.root_frame()
    if root is None:
        return {"duration_s": 0.0, "sampled_s": 0.0, "idle_s": 0.0, "self": [], "inclusive": []}
    own: dict[str, float] = {}
    total: dict[str, float] = {}
    _walk(root, (), own, total)
    idle = sum(t for name, t in own.items() if name.split("(")[-1].startswith(_IDLE_FILES))
    busy = max(root.time - idle, 1e-9)

    def top(table: dict[str, float]) -> list[dict[str, Any]]:
        ranked = sorted(table.items(), key=lambda item: item[1], reverse=True)[:count]
        return [
            {"function": name, "seconds": round(seconds, 3), "share": round(seconds / busy, 3)}
            for name, seconds in ranked
        ]

    working = {
        name: t for name, t in own.items() if not name.split("(")[-1].startswith(_IDLE_FILES)
    }
    below_bootstrap = {name: t for name, t in total.items() if t < 0.9 * root.time}
    return {
        "duration_s": round(session.duration, 2),
        "sampled_s": round(root.time, 2),
        "idle_s": round(idle, 2),
        "self": top(working),
        "inclusive": top(below_bootstrap),
    }


if __name__ == "__main__":
    sys.exit(main())
