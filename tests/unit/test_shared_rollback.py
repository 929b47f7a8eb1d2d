"""The two left-right instances of ``engine.shared`` never stay apart.

A batch whose apply fails part-way leaves its instance half-written. The writer restores it
from the published instance (``engine.state.clone_state``): failing in ``apply()`` nothing
is published and both instances equal the state that never saw the batch; failing in
``catch_up()`` the batch is published and both equal the state that applied it. These
tests make the apply of a batch that touches every kind of table fail at every step — the
k-th call of every engine function the apply makes, for every k — in each phase, and
compare the instances, a reader's view and a private twin by ``engine.checksum``.
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import fields
from functools import cache
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import numpy as np
import pytest

import engine
from engine import events as ev
from engine.checksum import SHARED_PARTS, state_checksum, state_checksums
from engine.codes import CodeTable
from engine.deltas import apply_batch
from engine.shared import SharedReader, SharedWriter
from engine.state import Hold, Inventory, State, clone_state, price_key
from engine.table import Columns, KeyIndex
from tests.builders import ACCOUNT, SKU, day
from tests.unit.test_checksum import _same_busy_state

CLOCK_MS = 1_700_000_000_500  # the busy state's hold CART-1 is still active at it
V = 1_000  # newer than every version of the busy state
#: One batch with every kind of event and a new code of every kind (SKU NEW-BOLT,
#: locations DC-SOUTH and DC-NEW-2, region SOUTH, accounts NEW-ACCT and ACCT-NEW-2,
#: contract C-NEW, price list PL-2025, price group SILVER, product group BOLTS, UoM PK,
#: currency EUR), group lines, deletes, stock sets and adjusts, inbound and holds.
BATCH = [
    ev.ProductGroupUpsert(product_group="BOLTS", parent="FASTENERS", version=V),
    ev.ItemUpsert(
        sku="NEW-BOLT", version=V, product_group="BOLTS", uoms={"PK": 6}, cost_currency="EUR",
        replacement_cost_micros=100_000,
    ),
    ev.ItemUpsert(sku=SKU, version=V, uoms={"BX": 10, "CS": 100}, product_group="SCREWS"),
    ev.LocationUpsert(location="DC-SOUTH", version=V),
    ev.RegionUpsert(region="SOUTH", locations=("DC-SOUTH", "DC-EAST", "DC-NEW-2"), version=V),
    ev.AccountUpsert(
        account="NEW-ACCT", parent="HQ-0001", price_groups=("SILVER",), price_list="PL-2025",
        currency="EUR", version=V,
    ),
    ev.ContractUpsert(
        contract="C-NEW", accounts=("NEW-ACCT", "ACCT-NEW-2"), price_groups=("SILVER",),
        priority=3, currency="EUR", version=V,
    ),
    ev.ContractDelete(contract="C-HQ", version=V),
    ev.PriceSet(
        price_list="PL-2025", currency="EUR", sku="NEW-BOLT", uom="PK", version=V,
        tiers=((0, 2_000_000), (10, 1_800_000)),
    ),
    ev.PriceDelete(price_list="LIST", currency="USD", sku="NUT-M8", version=V),
    ev.ContractLineSet(contract="C-NEW", sku="NEW-BOLT", tiers=((0, 1_500_000),), version=V),
    ev.ContractLineSet(
        contract="C-NEW", product_group="BOLTS", kind="DISCOUNT", tiers=((0, 500),), version=V
    ),
    ev.ContractLineDelete(contract="C-GOLD", product_group="FASTENERS", version=V),
    ev.InventorySet(sku="NEW-BOLT", location="DC-SOUTH", on_hand=50, version=V),
    ev.InventorySet(sku=SKU, location="DC-EAST", on_hand=200, allocated=5, version=V),
    ev.InventoryAdjust(
        sku=SKU, location="DC-WEST", event_id="WMS-F1", on_hand_delta=-3, version=V + 1
    ),
    ev.InventoryAdjust(
        sku="NEW-BOLT", location="DC-SOUTH", event_id="WMS-F2", on_hand_delta=7, version=V + 1
    ),
    ev.InboundSet(sku="NEW-BOLT", location="DC-SOUTH", receipts=((day(4), 30),), version=V),
    ev.HoldPlace(
        hold_key="CART-F", account=ACCOUNT, lines=(("NEW-BOLT", "DC-SOUTH", 5),), ttl_ms=60_000
    ),
    ev.HoldRelease(hold_key="CART-1", account=ACCOUNT),
    ev.HoldPlace(
        hold_key="CART-F", account="NEW-ACCT", lines=((SKU, "DC-EAST", 2),), ttl_ms=1,
        ts_ms=CLOCK_MS - 10,  # placed already expired
    ),
]  # fmt: skip

#: The engine modules whose functions write the state or decide what is written; their
#: every function (methods and closures included, dunder methods not) is a step to fail.
_WRITING_MODULES = {"deltas.py", "inventory_apply.py", "state.py", "table.py", "arrays.py"}
#: Steps outside them: a code interned, and the batch's validation as one step.
_ALSO = {("codes.py", "intern"), ("validate.py", "check_batch")}
_ENGINE = Path(engine.__file__).resolve().parent


class InjectedFault(Exception):
    """Raised by the fault injector at the chosen call."""


@cache
def _is_step(code: CodeType) -> bool:
    path = Path(code.co_filename).resolve()
    if path.parent != _ENGINE or code.co_name.startswith(("<", "__")):
        return False
    return path.name in _WRITING_MODULES or (path.name, code.co_name) in _ALSO


class _Calls:
    """A profile hook: counts the calls of every step; raises at the ``k``-th call of
    ``target`` when given one (the exception surfaces in the called function, before its
    first line runs)."""

    def __init__(self, target: CodeType | None = None, k: int = 0) -> None:
        self.counts: Counter[CodeType] = Counter()
        self.target, self.k, self.raised = target, k, False

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        code = frame.f_code
        if code is self.target:
            self.counts[code] += 1
            if self.counts[code] == self.k:
                self.raised = True
                raise InjectedFault(f"{code.co_name} call {self.k}")
        elif self.target is None and _is_step(code):
            self.counts[code] += 1


def _apply_watched(state: State, calls: _Calls | None, events: list[Any] = BATCH) -> Any:
    previous = sys.getprofile()
    sys.setprofile(calls)
    try:
        return apply_batch(state, events, clock_ms=CLOCK_MS)
    finally:
        sys.setprofile(previous)


def _steps(base: State) -> list[tuple[CodeType, int]]:
    """Every (function, k) the apply of BATCH to ``base`` makes, in a stable order."""
    calls = _Calls()
    result = _apply_watched(clone_state(base), calls)
    assert result.rejected == []
    names = {code: f"{Path(code.co_filename).name}:{code.co_qualname}" for code in calls.counts}
    return [
        (code, k)
        for code in sorted(calls.counts, key=names.__getitem__)
        for k in range(1, calls.counts[code] + 1)
    ]


@pytest.fixture
def shm() -> Iterator[Path]:
    # tmpfs when there is one: the test creates hundreds of small shared files
    parent = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=parent) as directory:
        yield Path(directory) / "shm"


@pytest.fixture(scope="module")
def base() -> State:
    return _same_busy_state()


def _good_batch(n: int) -> list[Any]:
    # a price BATCH never touches, so BATCH's steps stay the same (a stock set would also
    # build the adjust log's cell index, a cache, and spare BATCH's next apply that step)
    return [
        ev.PriceSet(
            price_list="LIST", currency="USD", sku=SKU, tiers=((0, 1_000_000 + n),),
            version=5_000 + n,
        )
    ]  # fmt: skip


Expected = tuple[dict[str, str], str]  # every part's checksum, the shared parts' checksum


def _expect(state: State) -> Expected:
    return state_checksums(state), state_checksum(state, SHARED_PARTS)


def _assert_equal_instances(writer: SharedWriter, reader: SharedReader, want: Expected) -> None:
    """Both instances hold ``want``'s state, and so does a reader of the published one."""
    sums = [state_checksums(instance) for instance in writer.instances]
    assert sums[0] == sums[1], [part for part in sums[0] if sums[0][part] != sums[1][part]]
    assert sums[0] == want[0], [part for part in want[0] if sums[0][part] != want[0][part]]
    view = reader.pin()
    try:
        assert state_checksum(view, SHARED_PARTS) == want[1]
    finally:
        reader.unpin()


def _publish_good_batch(
    writer: SharedWriter, reader: SharedReader, n: int, want: Expected, version: int
) -> None:
    """A good batch after the failure applies and is published: the reader sees it."""
    seq = writer.seq
    result = _publish(writer, lambda state: _apply_watched(state, None, _good_batch(n)))
    assert (result.rejected, writer.seq) == ([], seq + 1)
    _assert_equal_instances(writer, reader, want)
    view = reader.pin()
    try:
        key = price_key(
            view.price_lists.get("LIST"), view.currencies.get("USD"), view.skus.get(SKU)
        )
        [row] = view.price_index.find(np.array([key], dtype=np.int64)).tolist()
        assert (view.version, view.prices["tier_value"][row, 0]) == (version, 1_000_000 + n)
    finally:
        reader.unpin()


def _publish(writer: SharedWriter, change: Any) -> Any:
    writer.wait_inactive_free()
    result = writer.apply(change)
    writer.wait_inactive_free()
    writer.catch_up()
    return result


def _reuse(old: Any, new: np.ndarray) -> np.ndarray:
    if isinstance(old, np.ndarray) and (old.shape, old.dtype) == (new.shape, new.dtype):
        old[...] = new
        return old
    return new


_SHARED_COLUMNS = (
    "items",
    "groups",
    "location_rows",
    "account_rows",
    "contract_rows",
    "prices",
    "lines",
)


def _back_to(initial: State) -> Any:
    """A change that makes an instance equal ``initial`` again, writing into the arrays it
    has where the shapes allow (so only the arrays a batch replaced get new files): a
    cheap way back to the start between two steps, instead of a new writer."""

    def change(state: State) -> None:
        fresh = clone_state(initial)
        for name in _SHARED_COLUMNS:
            old, new = getattr(state, name), getattr(fresh, name)
            new.data = {column: _reuse(old.data[column], a) for column, a in new.data.items()}
        for name in Inventory.FIELDS:
            old_array = getattr(state.inventory, name)
            setattr(fresh.inventory, name, _reuse(old_array, getattr(fresh.inventory, name)))
        for item in fields(State):
            setattr(state, item.name, getattr(fresh, item.name))

    return change


def test_a_failure_at_any_step_of_apply_publishes_nothing_and_leaves_both_instances_as_before(
    shm, base
):
    writer = SharedWriter(shm, lambda: clone_state(base))
    reader = SharedReader(shm, slot=0)
    twin = clone_state(writer.active)  # what the writer must hold: base + the good batches
    steps = _steps(twin)
    assert len(steps) > 100  # every kind of table is written: many steps
    want = _expect(twin)
    try:
        for n, (code, k) in enumerate(steps, start=1):
            calls = _Calls(code, k)
            seq = writer.seq
            with pytest.raises(InjectedFault):
                writer.apply(lambda state, calls=calls: _apply_watched(state, calls))
            assert calls.raised and writer.seq == seq
            _assert_equal_instances(writer, reader, want)  # as if the batch never came
            _apply_watched(twin, None, _good_batch(n))
            want = _expect(twin)
            _publish_good_batch(writer, reader, n, want, twin.version)
    finally:
        reader.close()
        writer.close()


def test_a_failure_at_any_step_of_catch_up_leaves_both_instances_holding_the_batch(shm, base):
    writer = SharedWriter(shm, lambda: clone_state(base))
    reader = SharedReader(shm, slot=0)
    initial = clone_state(writer.active)
    start = _expect(initial)
    after = clone_state(initial)
    _apply_watched(after, None)
    want = _expect(after)
    _apply_watched(after, None, _good_batch(1))
    want_then = _expect(after)
    try:
        for code, k in _steps(initial):
            calls = _Calls(code, k)
            armed: list[_Calls | None] = [None]  # the published apply runs clean
            writer.wait_inactive_free()
            writer.apply(lambda state, armed=armed: _apply_watched(state, armed[0]))
            armed[0] = calls
            writer.wait_inactive_free()
            with pytest.raises(InjectedFault):
                writer.catch_up()
            assert calls.raised
            _assert_equal_instances(writer, reader, want)  # both hold the published batch
            _publish_good_batch(writer, reader, 1, want_then, after.version)
            _publish(writer, _back_to(initial))  # (the version goes back too)
            assert [_expect(instance)[0] for instance in writer.instances] == [start[0]] * 2
            # a reader's code tables only ever grow, as the writer's do outside this test:
            # the next step gets a reader that has not seen the codes gone back
            reader.close()
            reader = SharedReader(shm, slot=0)
    finally:
        reader.close()
        writer.close()


def _files_in_use(writer: SharedWriter, root: Path) -> None:
    """Each instance's directory holds exactly the files its bookkeeping names."""
    for record, name in zip(writer.published, "ab", strict=True):
        used = {file for file, _ in record.files.values()}
        used |= {record.meta_file, "manifest"}
        assert {p.name for p in (root / name).iterdir()} == used


def test_a_restored_instance_leaves_no_file_behind_that_it_does_not_use(shm, base):
    writer = SharedWriter(shm, lambda: clone_state(base))
    steps = _steps(writer.active)
    middle = steps[len(steps) // 2]
    try:
        with pytest.raises(InjectedFault):
            writer.apply(lambda state: _apply_watched(state, _Calls(*middle)))
        _files_in_use(writer, shm)
        armed: list[_Calls | None] = [None]
        writer.apply(lambda state: _apply_watched(state, armed[0]))
        armed[0] = _Calls(*middle)
        with pytest.raises(InjectedFault):
            writer.catch_up()
        _files_in_use(writer, shm)
    finally:
        writer.close()


# --- clone_state --------------------------------------------------------------------------


def _arrays(value: Any) -> Iterator[np.ndarray]:
    """Every numpy array reachable from ``value`` through the state's own containers."""
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _arrays(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _arrays(item)
    elif isinstance(value, (State, CodeTable, Columns, KeyIndex, Inventory, Hold)):
        names = getattr(type(value), "__slots__", ()) or vars(value)
        for name in names:
            yield from _arrays(getattr(value, name, None))


def test_a_cloned_state_equals_its_original_and_shares_no_array_with_it(base):
    clone = clone_state(base)
    assert state_checksums(clone) == state_checksums(base)
    originals = list(_arrays(base))
    assert len(originals) > 80
    for array in _arrays(clone):
        assert not any(np.shares_memory(array, original) for original in originals)


def test_a_cloned_state_changes_on_its_own(base):
    state = clone_state(base)
    clone = clone_state(state)
    _apply_watched(clone, None)
    assert state_checksum(state) == state_checksum(base) != state_checksum(clone)
    assert "NEW-BOLT" in clone.skus and "NEW-BOLT" not in state.skus
    assert state.holds[ACCOUNT, "CART-1"].active and not clone.holds[ACCOUNT, "CART-1"].active


def test_a_cloned_code_table_has_its_own_arena_and_index():
    table = CodeTable("sku", [f"SKU-{i}" for i in range(8)])
    copy = table.copy()
    assert copy.arena is not table.arena and copy.slots is not table.slots
    assert copy.lookup(["SKU-3", "NOPE"] * 300).tolist() == [3, -1] * 300
    copy.intern("SKU-NEW")
    assert "SKU-NEW" not in table and table.lookup(["SKU-NEW"]).tolist() == [-1]


def test_clone_state_refuses_a_field_it_has_no_copy_rule_for(base):
    state = clone_state(base)
    state.stream_ids = {"pa:master": object()}  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="no copy rule for object"):
        clone_state(state)
