"""The logical state checksum: equal content hashes equal (whatever the spare capacity, in
any process), and a change to any part of a state shows in that part and no other."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from engine import snapshot
from engine.checksum import PARTS, SHARED_PARTS, state_checksum, state_checksums
from engine.deltas import apply_batch
from tests import builders
from tests.builders import make_item, make_state
from tests.unit.test_snapshot import _busy_state

REPOSITORY = Path(__file__).resolve().parents[2]


def _same_busy_state():
    """The busy state of the snapshot tests with the builders' versions counted from 1, so
    every call (in any process) builds the same content."""
    counter = builders._versions
    builders._versions = itertools.count(1)
    try:
        return _busy_state()
    finally:
        builders._versions = counter


def test_a_loaded_snapshot_hashes_like_the_state_that_wrote_it_though_its_capacity_differs(
    tmp_path,
):
    state = _busy_state()
    loaded = snapshot.load(snapshot.write(state, tmp_path))
    state.prices.ensure(state.prices.capacity * 4)  # the same rows, more room
    state.inventory.ensure(state.inventory.sku_capacity * 4, state.n_locations * 4)
    assert loaded.prices.capacity < state.prices.capacity
    assert loaded.inventory.on_hand.shape < state.inventory.on_hand.shape
    assert state_checksums(loaded) == state_checksums(state)


def test_writing_into_spare_rows_and_cells_changes_nothing():
    state = _busy_state()
    before = state_checksum(state)
    for columns in (state.items, state.prices, state.lines, state.adjust_log):
        assert columns.capacity > columns.n
        columns["version"][columns.n :] = 12345
    state.inventory.on_hand[state.n_skus :, :] = 7
    state.inventory.on_hand[:, state.n_locations :] = 7
    assert state_checksum(state) == before


def test_another_process_computes_the_same_checksum():
    # no hash() (salted per process), no addresses: only the content's bytes
    code = (
        "from engine.checksum import state_checksum;"
        "from tests.unit.test_checksum import _same_busy_state;"
        "print(state_checksum(_same_busy_state()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == state_checksum(_same_busy_state())


def test_the_order_rows_were_added_in_is_part_of_the_checksum():
    one = make_state(make_item("SKU-A", version=1), make_item("SKU-B", version=1))
    other = make_state(make_item("SKU-B", version=1), make_item("SKU-A", version=1))
    differ = {p for p, d in state_checksums(one).items() if state_checksums(other)[p] != d}
    assert differ == {"codes.skus"}  # same items, other ids: see the module docstring


def test_the_order_of_dicts_whose_order_means_nothing_is_not_part_of_it():
    state = _busy_state()
    before = state_checksum(state)
    state.inbound_versions = dict(reversed(state.inbound_versions.items()))
    state.stream_ids = dict(reversed(state.stream_ids.items()))
    state.holds = dict(reversed(state.holds.items()))
    assert state_checksum(state) == before


def _bump_row(columns_name):
    def mutate(state):
        getattr(state, columns_name)["version"][0] += 1

    return mutate


def _reverse_rows(index_name):
    def mutate(state):
        index = getattr(state, index_name)
        assert index.rows.size > 1
        index.rows = index.rows[::-1].copy()

    return mutate


def _intern(table, code):
    return lambda state: getattr(state, table).intern(code)


def _bump_inventory(state):
    state.inventory.on_hand[0, 0] += 1


def _bump_inbound(state):
    state.inbound_qty = state.inbound_qty + 1


def _bump_inbound_version(state):
    state.inbound_versions[0, 0] = 99


def _bump_adjust(state):
    state.adjust_log["on_hand"][0] += 1


def _release_a_hold(state):
    next(iter(state.holds.values())).active = False


def _reverse_a_region(state):
    state.region_locations[0] = state.region_locations[0][::-1].copy()


def _bump(name, key=None):
    def mutate(state):
        if key is None:
            setattr(state, name, getattr(state, name) + 1)
        else:
            getattr(state, name)[key] = getattr(state, name).get(key, 0) + 1

    return mutate


def _assign(name):
    return lambda state: getattr(state, name).update({99: (0,)})


def _move_stream(state):
    state.stream_ids["pa:pricing"] = "99-0"


MUTATIONS = {
    "codes.skus": _intern("skus", "NEW-SKU"),
    "codes.locations": _intern("locations", "DC-NEW"),
    "codes.regions": _intern("regions", "R-NEW"),
    "codes.accounts": _intern("accounts", "A-NEW"),
    "codes.contracts": _intern("contracts", "C-NEW"),
    "codes.price_lists": _intern("price_lists", "PL-NEW"),
    "codes.price_groups": _intern("price_groups", "PG-NEW"),
    "codes.product_groups": _intern("product_groups", "G-NEW"),
    "codes.uoms": _intern("uoms", "PK"),
    "codes.currencies": _intern("currencies", "EUR"),
    "items": _bump_row("items"),
    "groups": _bump_row("groups"),
    "location_rows": _bump_row("location_rows"),
    "account_rows": _bump_row("account_rows"),
    "contract_rows": _bump_row("contract_rows"),
    "prices": _bump_row("prices"),
    "lines": _bump_row("lines"),
    "price_index": _reverse_rows("price_index"),
    "line_index": _reverse_rows("line_index"),
    "inventory": _bump_inventory,
    "inbound": _bump_inbound,
    "inbound_versions": _bump_inbound_version,
    "adjust_log": _bump_adjust,
    "holds": _release_a_hold,
    "region_locations": _reverse_a_region,
    "region_versions": _bump("region_versions", 0),
    "contract_accounts": _assign("contract_accounts"),
    "contract_price_groups": _assign("contract_price_groups"),
    "version": _bump("version"),
    "pricing_epoch": _bump("pricing_epoch"),
    "stream_ids": _move_stream,
    "clock": _bump("clock_ms"),
}


def test_every_part_has_a_change_that_shows_in_it():
    assert set(MUTATIONS) == set(PARTS)
    assert SHARED_PARTS.issubset(PARTS)
    assert set(PARTS) != SHARED_PARTS


@pytest.mark.parametrize("part", PARTS)
def test_a_change_to_one_part_of_the_state_shows_in_that_part_only(part):
    state = _busy_state()
    before = state_checksums(state)
    MUTATIONS[part](state)
    after = state_checksums(state)
    # a new SKU or location widens the inventory block that is read (its cells are blank)
    widened = {"inventory"} if part in ("codes.skus", "codes.locations") else set()
    assert {name for name in PARTS if after[name] != before[name]} == {part} | widened


def test_a_batch_applied_to_two_equal_states_leaves_equal_checksums():
    one, other = _same_busy_state(), _same_busy_state()
    assert state_checksum(one) == state_checksum(other)
    batch = [make_item("SKU-NEW", product_group="NEW-GROUP", uoms={"PK": 6})]
    before = state_checksums(one)
    for state in (one, other):
        apply_batch(state, batch, clock_ms=1_700_000_000_000)
    assert state_checksum(one) == state_checksum(other)
    changed = {part for part, digest in state_checksums(one).items() if before[part] != digest}
    assert {"codes.skus", "codes.product_groups", "codes.uoms", "items", "version"} <= changed
