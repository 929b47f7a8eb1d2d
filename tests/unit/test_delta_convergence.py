"""Deltas converge (DESIGN §6, §7, §9): the arrival order, duplicates, batch boundaries and
snapshots in between never change the state the engine reaches.

The target is the reference model (bench/reference.py) fed the same world in version order;
the comparison is the observable state — every stored table, keyed by codes — plus quotes
for every SKU at every location under both policies. Holds are decided in stream order, so
they have their own property, in order, against the reference's holds.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import snapshot
from engine.atp import receipts_of
from engine.deltas import apply_batch
from engine.pricing import Policy
from engine.state import GROUP_TARGET, Disclosure, ItemStatus, LineKind, State, price_key
from tests.reference import Reference
from tests.strategies import (
    ACCOUNTS,
    D0_DAY,
    LOCATIONS,
    PROPERTIES,
    SKUS,
    HoldBatch,
    QuoteRequest,
    World,
    deliveries,
    hold_streams,
    quote_requests,
    worlds,
)
from tests.unit.test_reference_agreement import assert_quote_agrees, engine_answer

_SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else None  # fsync-heavy: keep it in RAM


def _code(table: Any, code_id: int) -> str | None:
    return None if code_id < 0 else str(table.code(int(code_id)))


def _tiers(row: Any, columns: Any) -> tuple[tuple[int, int], ...]:
    n = int(columns["n_tiers"][row])
    return tuple(
        zip(
            columns["tier_min"][row, :n].tolist(),
            columns["tier_value"][row, :n].tolist(),
            strict=True,
        )
    )


def engine_observable(state: State) -> dict[str, Any]:
    """The engine's stored tables in the shape of :meth:`Reference.observable`."""
    items, groups, accounts = state.items, state.groups, state.account_rows
    contracts, lines, prices = state.contract_rows, state.lines, state.prices
    observed: dict[str, Any] = {
        "items": {},
        "groups": {},
        "locations": {},
        "regions": {},
        "accounts": {},
        "contracts": {},
        "contract_lines": {},
        "prices": {},
        "stock": {},
        "inbound": {},
    }
    for sku, code in enumerate(state.skus.codes()):
        if items["version"][sku] < 0:
            continue
        uoms = [
            (state.uoms.code(int(u)), int(f))
            for u, f in zip(items["uom_code"][sku], items["uom_factor"][sku], strict=True)
            if u >= 0
        ]
        cost, lead = int(items["cost_micros"][sku]), int(items["lead_time_days"][sku])
        observed["items"][code] = (
            ItemStatus(int(items["status"][sku])).name,
            tuple(sorted(uoms)),
            state.uoms.code(int(items["base_uom"][sku])),
            int(items["min_order_qty"][sku]),
            int(items["order_multiple"][sku]),
            _code(state.product_groups, items["product_group"][sku]),
            None if cost < 0 else cost,
            state.currencies.code(int(items["cost_currency"][sku])),
            None if lead < 0 else lead,
        )
    for group, code in enumerate(state.product_groups.codes()):
        if groups["version"][group] >= 0:
            observed["groups"][code] = _code(state.product_groups, groups["parent"][group])
    for location, code in enumerate(state.locations.codes()):
        if state.location_rows["version"][location] >= 0:
            observed["locations"][code] = bool(state.location_rows["active"][location])
    for region, ranked in state.region_locations.items():
        observed["regions"][state.regions.code(region)] = tuple(
            state.locations.code(int(loc)) for loc in ranked
        )
    for account, code in enumerate(state.accounts.codes()):
        if accounts["version"][account] < 0:
            continue
        observed["accounts"][code] = (
            _code(state.accounts, accounts["parent"][account]),
            tuple(
                state.price_groups.code(int(g)) for g in accounts["price_groups"][account] if g >= 0
            ),
            _code(state.price_lists, accounts["price_list"][account]),
            state.currencies.code(int(accounts["currency"][account])),
            Disclosure(int(accounts["disclosure"][account])).name,
            int(accounts["disclosure_cap"][account]),
        )
    for contract, code in enumerate(state.contracts.codes()):
        if contract >= contracts.n or not contracts["active"][contract]:
            continue
        observed["contracts"][code] = (
            state.currencies.code(int(contracts["currency"][contract])),
            int(contracts["priority"][contract]),
            int(contracts["valid_from"][contract]),
            int(contracts["valid_to"][contract]),
            tuple(state.accounts.code(a) for a in state.contract_accounts.get(contract, ())),
            tuple(
                state.price_groups.code(g) for g in state.contract_price_groups.get(contract, ())
            ),
            bool(contracts["assign_all"][contract]),
        )
    for row in range(lines.n):
        if not lines["active"][row]:
            continue
        target = int(lines["target"][row])
        on = (
            ("GROUP", state.product_groups.code(target - GROUP_TARGET))
            if target >= GROUP_TARGET
            else ("SKU", state.skus.code(target))
        )
        key = (state.contracts.code(int(lines["contract"][row])), on)
        observed["contract_lines"][key] = (
            LineKind(int(lines["kind"][row])).name,
            _code(state.uoms, lines["uom"][row]),
            _tiers(row, lines),
        )
    price_keys = {  # every possible key, encoded by the engine itself: no layout knowledge
        int(price_key(book, currency, sku)): (book_code, currency_code, sku_code)
        for book, book_code in enumerate(state.price_lists.codes())
        for currency, currency_code in enumerate(state.currencies.codes())
        for sku, sku_code in enumerate(state.skus.codes())
    }
    for row in range(prices.n):
        if prices["active"][row]:
            observed["prices"][price_keys[int(prices["key"][row])]] = (
                _code(state.uoms, prices["uom"][row]),
                int(prices["valid_from"][row]),
                int(prices["valid_to"][row]),
                _tiers(row, prices),
            )
    inv = state.inventory
    for sku, sku_code in enumerate(state.skus.codes()):
        for location, location_code in enumerate(state.locations.codes()):
            position = tuple(
                int(getattr(inv, name)[sku, location])
                for name in ("on_hand", "allocated", "safety_stock")
            )
            if any(position):
                observed["stock"][(sku_code, location_code)] = position
    schedules: dict[tuple[str, str], list[tuple[int, int]]] = {}
    receipts = receipts_of(state, np.arange(state.n_skus, dtype=np.int64))[:4]
    for sku, loc, day, count in zip(*(column.tolist() for column in receipts), strict=True):
        cell = (state.skus.code(sku), state.locations.code(loc))
        schedules.setdefault(cell, []).append((day, count))
    observed["inbound"] = {cell: tuple(sorted(r)) for cell, r in schedules.items()}
    return observed


def _every_sku_everywhere(account: str) -> QuoteRequest:
    lines = tuple((sku, qty, None) for sku in (*SKUS, "S9") for qty in (1, 24))
    return QuoteRequest(account, lines, D0_DAY, locations=LOCATIONS)


def _assert_same_world(
    state: State, reference: Reference, data: st.DataObject, world: World
) -> None:
    expected, actual = reference.observable(), engine_observable(state)
    for table in expected:
        assert actual[table] == expected[table], table
    requests = [_every_sku_everywhere(account) for account in ACCOUNTS]
    requests += data.draw(st.lists(quote_requests(world), max_size=2), label="requests")
    for request in requests:
        for policy in Policy:
            assert_quote_agrees(state, reference, request, policy)


@settings(PROPERTIES)
@given(data=st.data())
def test_shuffled_duplicated_rebatched_deltas_converge_to_the_reference_state(
    data: st.DataObject,
) -> None:
    world = data.draw(worlds(), label="world")
    delivered = data.draw(deliveries(world.events), label="delivered batches")
    state = State()
    for batch in delivered:
        apply_batch(state, batch)
    reference = Reference()
    reference.apply_batch(world.events)  # in version order, once each
    _assert_same_world(state, reference, data, world)


@settings(PROPERTIES)
@given(data=st.data())
def test_a_snapshot_written_and_loaded_between_batches_changes_nothing(
    data: st.DataObject,
) -> None:
    world = data.draw(worlds(), label="world")
    delivered = data.draw(deliveries(world.events), label="delivered batches")
    holds = data.draw(hold_streams(), label="holds")
    batches: list[tuple[list[Any], int | None, tuple[int, ...] | None]]
    batches = [(batch, None, None) for batch in delivered]
    batches += [(list(b.events), b.clock_ms, b.event_ms) for b in holds.batches]
    after = st.integers(0, len(batches) - 1)
    cuts = {data.draw(after, label="snapshot after batch")}
    if data.draw(st.booleans(), label="snapshot the restarted state again"):
        cuts.add(data.draw(after, label="and after batch"))  # each costs ~100 files + fsyncs
    never, restarted = State(), State()
    with tempfile.TemporaryDirectory(dir=_SCRATCH) as root:
        for i, (events, clock_ms, event_ms) in enumerate(batches):
            outcomes = [
                apply_batch(s, events, clock_ms=clock_ms, event_ms=event_ms)
                for s in (never, restarted)
            ]
            assert outcomes[0] == outcomes[1]
            if i in cuts:
                restarted = snapshot.load(snapshot.write(restarted, root))
    assert engine_observable(restarted) == engine_observable(never)
    cells = (slice(0, never.n_skus), slice(0, never.n_locations))
    assert np.array_equal(restarted.inventory.held[cells], never.inventory.held[cells])
    assert (restarted.version, restarted.clock_ms) == (never.version, never.clock_ms)
    account = data.draw(st.sampled_from(ACCOUNTS), label="account")
    requests = [_every_sku_everywhere(account)]
    requests += [data.draw(quote_requests(world), label="request")]
    for request in requests:
        for policy in Policy:
            answers = [engine_answer(s, request, policy) for s in (restarted, never)]
            assert answers[0] == answers[1]


@settings(PROPERTIES)
@given(stream=hold_streams())
def test_holds_in_stream_order_are_idempotent_exclusive_per_key_and_expire_by_stream_clock(
    stream: Any,
) -> None:
    state, reference = State(), Reference()
    apply_batch(state, stream.setup)
    reference.apply_batch(stream.setup)
    everything = tuple(e for batch in stream.batches for e in batch.events)
    replay = HoldBatch(everything, stream.batches[-1].clock_ms)
    stock_request = QuoteRequest(
        "A1", tuple((sku, 1, None) for sku in SKUS[:2]), D0_DAY, locations=LOCATIONS[:2]
    )
    for batch in (*stream.batches, replay):  # then every hold event replayed once more
        result = apply_batch(state, batch.events, clock_ms=batch.clock_ms, event_ms=batch.event_ms)
        rejected = reference.apply_batch(batch.events, batch.clock_ms, batch.event_ms)
        assert sorted(index for index, _ in result.rejected) == rejected
        held = {
            (sku, loc): int(state.inventory.held[state.skus.get(sku), state.locations.get(loc)])
            for sku in SKUS[:2]
            for loc in LOCATIONS[:2]
        }
        assert held == {cell: reference.held(*cell) for cell in held}
        assert_quote_agrees(state, reference, stock_request, Policy.PRIORITY)
