"""Resident memory of a whole state: load a snapshot, touch every array, read RSS.

Memory-mapped pages count toward RSS once touched, so this reports what serving the full
state costs once every page has been read (the upper bound a long-running server reaches).

    python -m bench.state_memory --snapshot /path/to/snapshots/large [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.machine import machine_info
from bench.procstat import rss_bytes
from engine import snapshot
from engine.state import Inventory, State


def _arrays(state: State) -> list[np.ndarray[Any, Any]]:
    out: list[np.ndarray[Any, Any]] = []
    for table in (state.items, state.groups, state.location_rows, state.account_rows,
                  state.contract_rows, state.prices, state.lines, state.adjust_log):  # fmt: skip
        out += [table.data[name][: table.n] for name in table.schema]
    for index in (state.price_index, state.line_index):
        out += [index.keys, index.rows, index.ptr]
    out += [getattr(state.inventory, name) for name in Inventory.FIELDS]
    out += [state.inbound_keys, state.inbound_qty]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.state_memory")
    parser.add_argument("--snapshot", required=True)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    found = snapshot.latest(args.snapshot)
    assert found is not None, f"no snapshot under {args.snapshot}"
    before = rss_bytes(os.getpid())
    started = time.perf_counter()
    state = snapshot.load(found)
    loaded = time.perf_counter() - started
    after_load = rss_bytes(os.getpid())
    arrays = _arrays(state)
    for array in arrays:  # read every page
        if array.size:
            np.bitwise_or.reduce(array.view(np.uint8).reshape(-1))
    touched = rss_bytes(os.getpid())
    report = {
        "machine": machine_info(),
        "snapshot": str(found),
        "load_seconds": round(loaded, 3),
        "array_bytes": int(sum(a.nbytes for a in arrays)),
        "rss_before_load_bytes": before,
        "rss_after_load_bytes": after_load,
        "rss_all_pages_touched_bytes": touched,
        "state_rss_bytes": touched - before,
    }
    print(json.dumps({k: v for k, v in report.items() if k != "machine"}, indent=1))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
