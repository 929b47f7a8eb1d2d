"""DESIGN §7 snapshots: round trip, crash safety, format version, checksums."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess

import pytest

from engine import snapshot
from engine.deltas import apply_batch
from engine.errors import SnapshotError
from engine.inventory_apply import hold_of
from engine.pricing import Policy
from engine.state import Hold
from tests.builders import (
    ACCOUNT,
    SKU,
    day,
    make_account,
    make_adjust,
    make_contract,
    make_discount_line,
    make_group,
    make_hold,
    make_inbound,
    make_item,
    make_location,
    make_net_line,
    make_price,
    make_region,
    make_state,
    make_stock,
    micros,
    quote_lines,
)

HOLD_PLACED_MS = 1_700_000_000_000

_LINES = [(SKU, 3, "BX"), (SKU, 150), ("NUT-M8", 12), ("NO-SUCH-SKU", 1)]


def _busy_state():
    state = make_state(
        make_group("FASTENERS"),
        make_group("SCREWS", "FASTENERS"),
        make_item(uoms={"BX": 10, "CS": 100}, product_group="SCREWS", lead_time_days=7),
        make_item("NUT-M8", product_group="FASTENERS", cost=micros("0.04")),
        make_location("DC-EAST"),
        make_location("DC-WEST"),
        make_region("NORTHEAST", "DC-WEST", "DC-EAST"),
        make_account("HQ-0001"),
        make_account(
            parent="HQ-0001", price_groups=["GOLD"], disclosure="CAPPED", disclosure_cap=50
        ),
        make_price(tiers=[(0, micros("1.00")), (100, micros("0.90"))]),
        make_price("NUT-M8", micros("0.10")),
        make_contract("C-GOLD", price_groups=["GOLD"], priority=1),
        make_discount_line("C-GOLD", 500, group="FASTENERS"),
        make_contract("C-HQ", accounts=["HQ-0001"]),
        make_net_line("C-HQ", micros("0.95")),
        make_stock(location="DC-EAST", on_hand=120, allocated=10),
        make_stock("NUT-M8", "DC-WEST", on_hand=500, safety_stock=20),
        make_adjust("WMS-1", -4, location="DC-EAST"),
        make_inbound((day(5), 200), location="DC-WEST"),
        make_hold("CART-1", (SKU, "DC-EAST", 6), ttl_ms=60_000, ts_ms=HOLD_PLACED_MS),
    )
    apply_batch(state, [], stream_ids={"pa:master": "5-0", "pa:inventory": "9-3"})
    return state


def _answers(state):
    return [
        quote_lines(state, _LINES, explain=True),
        quote_lines(state, _LINES, policy=Policy.LOWEST_PRICE, region="NORTHEAST"),
    ]


def test_loaded_snapshot_answers_exactly_like_the_state_it_was_written_from(tmp_path):
    state = _busy_state()
    loaded = snapshot.load(snapshot.write(state, tmp_path))
    assert _answers(loaded) == _answers(state)
    assert (loaded.version, loaded.stream_ids, loaded.clock_ms, loaded.newest_ts_ms) == (
        state.version,
        state.stream_ids,
        state.clock_ms,
        state.newest_ts_ms,
    )


def test_snapshot_of_a_loaded_snapshot_is_byte_for_byte_the_same(tmp_path):
    first = snapshot.write(_busy_state(), tmp_path / "a")
    second = snapshot.write(snapshot.load(first), tmp_path / "b")
    checksums = [
        json.loads((p / "manifest.json").read_text())["checksums"] for p in (first, second)
    ]
    assert checksums[0] == checksums[1]


def test_state_after_restart_and_replay_equals_the_state_that_never_stopped(tmp_path):
    never_stopped = _busy_state()
    restarted = snapshot.load(snapshot.write(never_stopped, tmp_path))
    later = [
        make_stock(location="DC-EAST", on_hand=80),
        make_adjust("WMS-2", -3, location="DC-EAST"),
        make_adjust("WMS-1", -4, location="DC-EAST"),  # a redelivery: still deduplicated
        make_price("NUT-M8", micros("0.12")),
        make_hold("CART-2", ("NUT-M8", "DC-WEST", 30), ttl_ms=1_000, ts_ms=HOLD_PLACED_MS),
    ]
    for state in (never_stopped, restarted):
        apply_batch(state, later, clock_ms=HOLD_PLACED_MS)
        apply_batch(state, [], clock_ms=HOLD_PLACED_MS + 1_000)  # CART-2 expires
    assert _answers(restarted) == _answers(never_stopped)


def test_changing_a_loaded_state_never_changes_its_snapshot_files(tmp_path):
    path = snapshot.write(_busy_state(), tmp_path)
    loaded = snapshot.load(path)  # copy-on-write mapping
    apply_batch(loaded, [make_stock(location="DC-EAST", on_hand=1)])
    snapshot.load(path, verify=True)  # every checksum still matches


def test_crash_mid_write_leaves_the_previous_complete_snapshot_as_latest(tmp_path):
    complete = snapshot.write(_busy_state(), tmp_path)
    # A writer that died before its rename leaves a .tmp- directory; one without a manifest
    # (never completed) must not count either, even with a newer version in its name.
    torn_tmp = tmp_path / ".tmp-v999999999999-4242-1"
    torn_tmp.mkdir()
    (torn_tmp / "items.status.npy").write_bytes(b"\x93NUMPY half")
    no_manifest = tmp_path / "v999999999999"
    no_manifest.mkdir()
    (no_manifest / "items.status.npy").write_bytes(b"\x93NUMPY half")
    assert snapshot.latest(tmp_path) == complete
    assert snapshot.load(snapshot.latest(tmp_path)).version == _busy_state().version


def test_latest_is_none_when_there_is_no_complete_snapshot(tmp_path):
    assert snapshot.latest(tmp_path / "missing") is None
    (tmp_path / "v000000000001").mkdir()
    assert snapshot.latest(tmp_path) is None


def test_latest_is_the_newest_complete_snapshot(tmp_path):
    state = _busy_state()
    snapshot.write(state, tmp_path)
    apply_batch(state, [make_price("NUT-M8", micros("0.11"))])
    newer = snapshot.write(state, tmp_path)
    assert snapshot.latest(tmp_path) == newer


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_writer_keeps_the_newest_snapshots_and_clears_crash_leftovers(tmp_path):
    state = _busy_state()
    (tmp_path / f".tmp-v000000000001-{_dead_pid()}-1").mkdir(parents=True)
    written = []
    for _ in range(3):
        apply_batch(state, [])
        written.append(snapshot.write(state, tmp_path, keep=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in written[1:]]


def test_a_snapshot_another_live_process_is_writing_is_not_swept_as_a_leftover(tmp_path):
    # a restarted writer's checkpoint and the one of the writer before it, or an Admin
    # snapshot beside a checkpoint: each must leave the other's files alone
    being_written = tmp_path / f".tmp-v000000000009-{os.getpid()}-1"
    being_written.mkdir(parents=True)
    (being_written / "codes.skus.npy").write_bytes(b"\x93NUMPY")
    left_over = tmp_path / f".tmp-v000000000008-{_dead_pid()}-1"
    left_over.mkdir()
    snapshot.write(_busy_state(), tmp_path)
    assert (being_written / "codes.skus.npy").is_file()
    assert not left_over.exists()


def test_a_replacement_cut_short_never_leaves_a_snapshot_that_looks_whole_but_is_not(
    tmp_path, monkeypatch
):
    state = _busy_state()
    snapshot.write(state, tmp_path)

    def killed_half_way(path, ignore_errors=False):  # SIGKILL in the middle of a removal
        for file in sorted(pathlib.Path(path).iterdir())[::2]:
            file.unlink()
        raise SystemExit("killed")

    monkeypatch.setattr(snapshot.shutil, "rmtree", killed_half_way)
    with pytest.raises(SystemExit):
        snapshot.write(state, tmp_path)  # the same version again: replaces the first
    monkeypatch.undo()
    found = snapshot.latest(tmp_path)
    assert found is not None
    assert snapshot.load(found, verify=True).version == state.version


def test_snapshot_of_another_format_version_is_refused(tmp_path):
    path = snapshot.write(_busy_state(), tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = snapshot.FORMAT_VERSION + 1
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotError, match="format version"):
        snapshot.load(path)


def test_snapshot_with_an_unreadable_manifest_is_refused(tmp_path):
    path = snapshot.write(_busy_state(), tmp_path)
    (path / "manifest.json").write_text('{"format_version": 1, "chec')
    with pytest.raises(SnapshotError, match="manifest"):
        snapshot.load(path)


def test_snapshot_missing_an_array_file_is_refused(tmp_path):
    path = snapshot.write(_busy_state(), tmp_path)
    (path / "prices.tier_value.npy").unlink()
    with pytest.raises(SnapshotError, match=re.escape("missing prices.tier_value.npy")):
        snapshot.load(path)


def test_verify_detects_a_corrupted_array_file(tmp_path):
    path = snapshot.write(_busy_state(), tmp_path)
    target = path / "inventory.on_hand.npy"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in the last stock number
    target.write_bytes(bytes(data))
    problem = re.escape("checksum mismatch in inventory.on_hand.npy")
    with pytest.raises(SnapshotError, match=problem):
        snapshot.load(path, verify=True)


def test_verify_detects_a_corrupted_metadata_file(tmp_path):
    path = snapshot.write(_busy_state(), tmp_path)
    meta = path / "meta.json"
    meta.write_text(meta.read_text().replace("CART-1", "CART-X"))
    with pytest.raises(SnapshotError, match=re.escape("checksum mismatch in meta.json")):
        snapshot.load(path, verify=True)


def test_snapshot_keeps_holds_and_their_expiry(tmp_path):
    loaded = snapshot.load(snapshot.write(_busy_state(), tmp_path))
    east = quote_lines(loaded, [(SKU, 1)], locations=["DC-EAST"])[0]
    assert east.available_now == {"DC-EAST": 100}  # 120 − 10 − 4 − 6 (held)
    apply_batch(loaded, [], clock_ms=HOLD_PLACED_MS + 60_000)
    east = quote_lines(loaded, [(SKU, 1)], locations=["DC-EAST"])[0]
    assert east.available_now == {"DC-EAST": 106}
    assert ACCOUNT in loaded.accounts


def test_snapshot_keeps_which_account_each_hold_belongs_to(tmp_path):
    state = _busy_state()
    apply_batch(state, [make_hold("CART-1", ("NUT-M8", "DC-WEST", 2), account="HQ-0001")])
    loaded = snapshot.load(snapshot.write(state, tmp_path))
    assert sorted(loaded.holds) == [("ACME-0001", "CART-1"), ("HQ-0001", "CART-1")]
    for account, lines in (("ACME-0001", [6]), ("HQ-0001", [2])):
        assert hold_of(loaded, account, "CART-1").qty.tolist() == lines
    meta = json.loads(next(tmp_path.glob("v*/meta.json")).read_text())
    assert sorted(h["account"] for h in meta["holds"]) == ["ACME-0001", "HQ-0001"]


def test_a_hold_written_before_holds_had_accounts_belongs_to_no_account():
    plain = hold_of(_busy_state(), ACCOUNT, "CART-1").to_plain()
    del plain["account"]
    assert Hold.from_plain(plain).account == ""
