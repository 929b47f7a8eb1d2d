"""A slow, obviously-correct model of pacache's semantics: the specification in code.

It lives in bench/ because the benchmark's baselines (``bench.baselines``) answer requests
with it; the tests import it through ``tests/reference.py``.

It follows DESIGN §2–§5 and the decisions written in the engine's module docstrings
(``pricing``, ``atp``, ``deltas``, ``inventory_apply``, ``catalog``, ``contexts``, ``quote``,
``events``, ``validate``). Plain Python — ints, dicts, ``Fraction`` — and no engine logic:
only the event dataclasses (``engine.events``) and the ISO minor-unit table are shared.

The state is *declarative*. For every entity key the model keeps the event with the highest
version (the first one seen wins a tie), every ``InventoryAdjust`` by event id, and every
hold by (account, key); each answer is computed from those events when asked. Replays,
duplicates and reordering therefore cannot change the model's state, by construction —
which is what the engine has to match.

Decisions the reference takes where DESIGN leaves a choice (the tests' report lists the
ones the engine does not share):

- "then contract id" in the priority order is the contract's *code* (its business id), the
  only order that does not depend on which event happened to arrive first;
- a candidate contract offers one line — DESIGN §4 step 2: its SKU line, else the nearest
  group line up the chain, among the lines that apply — under both policies; among
  contracts of one rank, a nearer group line beats a farther one (engine.pricing);
- the next-break price is what the winning line charges *at the hinted quantity*, so a hint
  that the sell rules round past the next tier quotes the tier it lands in, and a DISCOUNT
  line is re-based on the list price (own list, else LIST) at that quantity;
- a unit price that does not fit int64 micros makes the line AMOUNT_OVERFLOW, like an
  extended amount that does not; a next-break price that does not fit gives no hint.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from engine import events as ev
from engine.inventory_apply import HOLD_RETENTION_MS
from engine.money import CURRENCY_EXPONENTS, ISO_4217

__all__ = [
    "NO_END",
    "InvalidRequestError",
    "LinePrice",
    "LineStock",
    "QuoteLine",
    "Reference",
    "SellVerdict",
    "UnknownCodeError",
    "day",
    "entity_key",
    "problem",
    "round_half_away",
]

EPOCH = dt.date(1970, 1, 1)
NO_END = 2**31 - 1  # an open validity end, as a day number
INT64_MAX = 2**63 - 1
BPS = 10_000
LIST = "LIST"

# DESIGN §2 and the engine's storage limits (engine.state, engine.validate, engine.catalog).
MAX_BASE_QTY = 10**12
MAX_UOM_FACTOR = 10**6
MAX_UOMS = 8
MAX_TIERS = 6
MAX_PARENT_DEPTH = 8  # ancestors above the account
MAX_GROUP_DEPTH = 8  # product groups in a chain, the item's own group included
MAX_GROUPS_PER_ACCOUNT = 8
MAX_PRICE_MICROS = 10**13
MAX_BPS_COST_PLUS = 100_000
MAX_RECEIPTS = 1_000  # per SKU-location, each dated 1970-01-01 .. + 2^20 - 1 days
MAX_HOLD_LINES = 5_000
MAX_HOLD_TTL_MS = 7 * 86_400_000
MAX_LEAD_TIME_DAYS = 3_650
CODE_LIMITS = {
    "sku": 64,
    "location": 32,
    "account": 64,
    "contract": 64,
    "price_list": 64,
    "price_group": 64,
    "product_group": 64,
    "region": 64,
    "uom": 8,
    "currency": 3,
}


def day(value: dt.date | None, default: int = 0) -> int:
    """Days since 1970-01-01; ``default`` for None."""
    return default if value is None else (value - EPOCH).days


def round_half_away(value: Fraction) -> int:
    """The nearest integer to ``value``, halves rounded away from zero (DESIGN §3)."""
    whole, rest = divmod(abs(value.numerator), value.denominator)
    if 2 * rest >= value.denominator:
        whole += 1
    return whole if value >= 0 else -whole


class UnknownCodeError(Exception):
    """A request names an account, region or location the state does not know."""


class InvalidRequestError(Exception):
    """A request field is malformed (its name is the message): a currency that is not an
    ISO 4217 code in use."""


# --------------------------------------------------------------------------- validation


def _code_ok(kind: str, value: object) -> bool:
    if not isinstance(value, str) or not 1 <= len(value) <= CODE_LIMITS[kind]:
        return False
    if not (value.isascii() and value.isprintable()) or value.strip() != value:
        return False
    if kind in ("uom", "currency") and value != value.upper():
        return False
    return kind != "currency" or (len(value) == 3 and value.isalpha())


def _int_ok(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _window_ok(start: dt.date | None, end: dt.date | None) -> bool:
    return start is None or end is None or start < end


def _tiers_ok(tiers: Sequence[tuple[int, int]], high: int) -> bool:
    if not 1 <= len(tiers) <= MAX_TIERS:
        return False
    minimums = [minimum for minimum, _ in tiers]
    return (
        all(_int_ok(m, 0, MAX_BASE_QTY) for m in minimums)
        and all(_int_ok(value, 0, high) for _, value in tiers)
        and all(a < b for a, b in itertools.pairwise(minimums))
    )


def problem(e: Any) -> str | None:
    """Why the engine must reject ``e`` (engine.validate's rules), or None when it is valid."""
    if not (_int_ok(e.version, 0, 2**63 - 1) and _int_ok(e.ts_ms, 0, 2**63 - 1)):
        return "version or ts_ms"
    checks: list[bool]
    if isinstance(e, ev.ItemUpsert):
        checks = [
            _code_ok("sku", e.sku),
            e.status in ("ACTIVE", "DISCONTINUED", "BLOCKED"),
            _code_ok("uom", e.base_uom),
            len(e.uoms) <= MAX_UOMS - 1,
            all(_code_ok("uom", c) and c != e.base_uom for c in e.uoms),
            all(_int_ok(f, 1, MAX_UOM_FACTOR) for f in e.uoms.values()),
            _int_ok(e.min_order_qty, 0, MAX_BASE_QTY),
            _int_ok(e.order_multiple, 1, MAX_BASE_QTY),
            e.product_group is None or _code_ok("product_group", e.product_group),
            e.replacement_cost_micros is None
            or _int_ok(e.replacement_cost_micros, 0, MAX_PRICE_MICROS),
            _code_ok("currency", e.cost_currency),
            e.lead_time_days is None or _int_ok(e.lead_time_days, 0, MAX_LEAD_TIME_DAYS),
        ]
    elif isinstance(e, ev.ProductGroupUpsert):
        checks = [
            _code_ok("product_group", e.product_group),
            e.parent is None or _code_ok("product_group", e.parent),
        ]
    elif isinstance(e, ev.LocationUpsert):
        checks = [_code_ok("location", e.location)]
    elif isinstance(e, ev.RegionUpsert):
        checks = [_code_ok("region", e.region), all(_code_ok("location", c) for c in e.locations)]
    elif isinstance(e, ev.AccountUpsert):
        checks = [
            _code_ok("account", e.account),
            e.parent is None or (_code_ok("account", e.parent) and e.parent != e.account),
            len(e.price_groups) <= MAX_GROUPS_PER_ACCOUNT,
            all(_code_ok("price_group", g) for g in e.price_groups),
            e.price_list is None or _code_ok("price_list", e.price_list),
            _code_ok("currency", e.currency),
            e.disclosure in ("EXACT", "CAPPED", "BUCKETS"),
            _int_ok(e.disclosure_cap, 0, MAX_BASE_QTY),
        ]
    elif isinstance(e, ev.InventorySet):
        checks = [
            _code_ok("sku", e.sku),
            _code_ok("location", e.location),
            all(_int_ok(v, 0, MAX_BASE_QTY) for v in (e.on_hand, e.allocated, e.safety_stock)),
        ]
    elif isinstance(e, ev.InventoryAdjust):
        checks = [
            _code_ok("sku", e.sku),
            _code_ok("location", e.location),
            isinstance(e.event_id, str) and 1 <= len(e.event_id) <= 128,
            _int_ok(e.on_hand_delta, -MAX_BASE_QTY, MAX_BASE_QTY),
            _int_ok(e.allocated_delta, -MAX_BASE_QTY, MAX_BASE_QTY),
        ]
    elif isinstance(e, ev.InboundSet):
        checks = [
            _code_ok("sku", e.sku),
            _code_ok("location", e.location),
            len(e.receipts) <= MAX_RECEIPTS,
            all(
                isinstance(d, dt.date) and 0 <= day(d) < 2**20 and _int_ok(q, 1, MAX_BASE_QTY)
                for d, q in e.receipts
            ),
        ]
    elif isinstance(e, (ev.PriceSet, ev.PriceDelete)):
        checks = [
            _code_ok("price_list", e.price_list),
            _code_ok("currency", e.currency),
            _code_ok("sku", e.sku),
        ]
        if isinstance(e, ev.PriceSet):
            checks += [
                e.uom is None or _code_ok("uom", e.uom),
                _tiers_ok(e.tiers, MAX_PRICE_MICROS),
                _window_ok(e.valid_from, e.valid_to),
            ]
    elif isinstance(e, ev.ContractUpsert):
        checks = [
            _code_ok("contract", e.contract),
            _code_ok("currency", e.currency),
            _int_ok(e.priority, -(2**31), 2**31 - 1),
            _window_ok(e.valid_from, e.valid_to),
            all(_code_ok("account", a) for a in e.accounts),
            all(_code_ok("price_group", g) for g in e.price_groups),
        ]
    elif isinstance(e, ev.ContractDelete):
        checks = [_code_ok("contract", e.contract)]
    elif isinstance(e, (ev.ContractLineSet, ev.ContractLineDelete)):
        checks = [
            _code_ok("contract", e.contract),
            (e.sku is None) != (e.product_group is None),
            e.sku is None or _code_ok("sku", e.sku),
            e.product_group is None or _code_ok("product_group", e.product_group),
        ]
        if isinstance(e, ev.ContractLineSet):
            high = {"NET": MAX_PRICE_MICROS, "DISCOUNT": BPS, "COST_PLUS": MAX_BPS_COST_PLUS}
            checks += [
                e.kind in high,
                e.uom is None or _code_ok("uom", e.uom),
                e.kind in high and _tiers_ok(e.tiers, high[e.kind]),
            ]
    elif isinstance(e, ev.HoldPlace):
        checks = [
            isinstance(e.hold_key, str) and 1 <= len(e.hold_key) <= 128,
            e.account == "" or _code_ok("account", e.account),
            1 <= len(e.lines) <= MAX_HOLD_LINES,
            all(
                _code_ok("sku", s) and _code_ok("location", loc) and _int_ok(q, 1, MAX_BASE_QTY)
                for s, loc, q in e.lines
            ),
            _int_ok(e.ttl_ms, 1, MAX_HOLD_TTL_MS),
        ]
    elif isinstance(e, ev.HoldRelease):
        checks = [
            isinstance(e.hold_key, str) and 1 <= len(e.hold_key) <= 128,
            e.account == "" or _code_ok("account", e.account),
        ]
    else:
        return "unknown event type"
    return None if all(checks) else f"invalid {type(e).__name__}"


def entity_key(e: Any) -> tuple[Any, ...]:
    """The key whose version an event is monotonic for (engine.events' table)."""
    if isinstance(e, ev.ItemUpsert):
        return ("item", e.sku)
    if isinstance(e, ev.ProductGroupUpsert):
        return ("group", e.product_group)
    if isinstance(e, ev.LocationUpsert):
        return ("location", e.location)
    if isinstance(e, ev.RegionUpsert):
        return ("region", e.region)
    if isinstance(e, ev.AccountUpsert):
        return ("account", e.account)
    if isinstance(e, ev.InventorySet):
        return ("stock", e.sku, e.location)
    if isinstance(e, ev.InboundSet):
        return ("inbound", e.sku, e.location)
    if isinstance(e, (ev.PriceSet, ev.PriceDelete)):
        return ("price", e.price_list, e.currency, e.sku)
    if isinstance(e, (ev.ContractUpsert, ev.ContractDelete)):
        return ("contract", e.contract)
    if isinstance(e, (ev.ContractLineSet, ev.ContractLineDelete)):
        target = ("SKU", e.sku) if e.sku is not None else ("GROUP", e.product_group)
        return ("contract_line", e.contract, target)
    raise TypeError(type(e).__name__)


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class SellVerdict:
    below_minimum: bool
    not_multiple: bool
    suggested_qty: int
    suggested_in_base: bool


@dataclass(frozen=True)
class LinePrice:
    unit_price_micros: int
    extended_micros: int
    source: str  # CONTRACT | PRICE_LIST
    source_code: str  # contract code or price list code
    level: str  # ACCOUNT | PARENT | PRICE_GROUP | ALL | PRICE_LIST | LIST
    kind: str | None  # NET | DISCOUNT | COST_PLUS; None for a price list
    target_group: str | None  # the product group of a group line
    tier_index: int
    tier_min: int  # in the tier's UoM
    next_break_qty: int | None  # in the line's UoM
    next_break_unit_price_micros: int | None
    tier_uom: str | None = None  # the UoM tier_min is in: the entry's or line's; None: base


@dataclass(frozen=True)
class LineStock:
    locations: tuple[str, ...]
    available_now: dict[str, int]  # clipped at 0
    oversold: dict[str, bool]
    network_available: int
    earliest_date: int | None  # days; None: backorder without a date
    date_source: str  # NONE | STOCK | INBOUND | LEAD_TIME
    shown: dict[str, int]  # after the account's disclosure policy; -1 hidden
    bucket: dict[str, str]  # OUT | LOW | IN_STOCK


@dataclass(frozen=True)
class QuoteLine:
    status: str  # engine.quote.LineStatus names
    base_qty: int | None  # None where the line's UoM or quantity is not usable
    sell: SellVerdict | None
    price: LinePrice | None  # only for OK lines
    stock: LineStock


@dataclass(frozen=True)
class _Offer:
    """One way to price a line: a price entry or a contract line, at its tier for the qty."""

    source: str
    code: str
    level: str
    kind: str | None
    target_group: str | None
    tiers: tuple[tuple[int, int], ...]
    tier_index: int
    break_factor: int  # factor of the tiers' UoM
    per_base: Fraction  # micros per base unit
    sort_key: tuple[Any, ...]  # priority order: smaller is better
    event: Any  # the PriceSet or ContractLineSet behind it


@dataclass
class _Hold:
    lines: tuple[tuple[str, str, int], ...]  # sorted (sku, location, qty)
    expires_at_ms: int
    released: bool = False


def _tier(tiers: Sequence[tuple[int, int]], factor: int, base_qty: int) -> int | None:
    """All-units tier: the largest minimum (× factor, in base) ≤ base_qty; None if none."""
    fitting = [i for i, (minimum, _) in enumerate(tiers) if minimum * factor <= base_qty]
    return max(fitting) if fitting else None


def _ceil_to(value: int, step: int) -> int:
    return -(-value // step) * step


# --------------------------------------------------------------------------- the model


class Reference:
    """Feed it events (``apply`` / ``apply_batch``) in stream order; ask it ``quote``."""

    def __init__(self) -> None:
        self.latest: dict[tuple[Any, ...], Any] = {}
        self.adjusts: dict[str, ev.InventoryAdjust] = {}
        self.holds: dict[tuple[str, str], _Hold] = {}  # by (account, hold key)
        self.clock_ms = 0
        # codes some valid event has named: a hold may only name these (it never creates one)
        self.skus: set[str] = set()
        self.locations: set[str] = set()

    # ---- applying events

    def apply_batch(
        self,
        events: Sequence[Any],
        clock_ms: int | None = None,
        event_ms: Sequence[int] | None = None,
    ) -> list[int]:
        """Apply a batch at its stream time; returns the indices of rejected events.

        The batch clock is ``clock_ms``, else the newest ``ts_ms`` in the batch; time never
        goes back. A hold is placed at its own stream time (``event_ms``), else at its
        ``ts_ms``, else at the batch clock; it holds stock while the clock is before its
        expiry (DESIGN §5, §9).
        """
        if clock_ms is None:
            clock_ms = max((e.ts_ms for e in events if problem(e) is None), default=0)
        self.clock_ms = max(self.clock_ms, clock_ms)
        # a hold's record is forgotten a day after it expired (the key is free again)
        self.holds = {
            key: hold
            for key, hold in self.holds.items()
            if hold.expires_at_ms + HOLD_RETENTION_MS > self.clock_ms
        }
        # holds are decided after the batch's other events, which may bring their codes
        holds = [i for i, e in enumerate(events) if isinstance(e, (ev.HoldPlace, ev.HoldRelease))]
        first = sorted(set(range(len(events))) - set(holds))
        rejected = []
        for i in first + holds:
            placed_at = event_ms[i] if event_ms is not None else None
            if self.apply(events[i], placed_at) is not None:
                rejected.append(i)
        return sorted(rejected)

    def apply(self, e: Any, placed_at_ms: int | None = None) -> str | None:
        """Apply one event at the current clock; returns why it was rejected, or None."""
        reason = problem(e)
        if reason is not None:
            return reason
        if isinstance(e, ev.HoldPlace):
            if placed_at_ms is None:
                placed_at_ms = e.ts_ms or self.clock_ms
            return self._place_hold(e, placed_at_ms)
        if isinstance(e, ev.HoldRelease):
            if (e.account, e.hold_key) in self.holds:
                self.holds[e.account, e.hold_key].released = True
            return None
        self._learn_codes(e)
        if isinstance(e, ev.InventoryAdjust):
            self.adjusts.setdefault(e.event_id, e)
            return None
        key = entity_key(e)
        held = self.latest.get(key)
        if held is None or e.version > held.version:
            self.latest[key] = e
        return None

    def _learn_codes(self, e: Any) -> None:
        """Remember the SKU and location codes a valid non-hold event names."""
        for name, known in (("sku", self.skus), ("location", self.locations)):
            code = getattr(e, name, None)
            if code is not None:
                known.add(code)
        if isinstance(e, ev.RegionUpsert):
            self.locations.update(e.locations)

    def _place_hold(self, e: ev.HoldPlace, placed_at_ms: int) -> str | None:
        """Same account, key and lines: the same hold, unchanged; other lines: rejected;
        another account's key is another hold. A hold naming a SKU or location no event has
        named is rejected."""
        lines = tuple(sorted(e.lines))
        existing = self.holds.get((e.account, e.hold_key))
        if existing is not None:
            return None if existing.lines == lines else "hold key reused with other lines"
        if any(s not in self.skus or loc not in self.locations for s, loc, _ in lines):
            return "hold names an unknown SKU or location"
        self.holds[e.account, e.hold_key] = _Hold(lines, placed_at_ms + e.ttl_ms)
        return None

    # ---- reading the current version of each entity

    def _current(self, *key: Any) -> Any:
        """The winning event of a key, or None when there is none or it is a delete."""
        e = self.latest.get(key)
        deletes = (ev.PriceDelete, ev.ContractDelete, ev.ContractLineDelete)
        return None if e is None or isinstance(e, deletes) else e

    def _of_kind(self, kind: str) -> Iterable[Any]:
        for key in self.latest:
            if key[0] == kind:
                found = self._current(*key)
                if found is not None:
                    yield found

    def item(self, sku: str) -> ev.ItemUpsert | None:
        found: ev.ItemUpsert | None = self._current("item", sku)
        return found

    def account(self, account: str) -> ev.AccountUpsert | None:
        found: ev.AccountUpsert | None = self._current("account", account)
        return found

    @staticmethod
    def uom_factor(item: ev.ItemUpsert, uom: str | None) -> int | None:
        """Factor to base of ``uom`` on ``item`` (None or '' is the base); None if absent."""
        if not uom or uom == item.base_uom:
            return 1
        return item.uoms.get(uom)

    def group_chain(self, group: str | None) -> list[str]:
        """The group and its ancestors, nearest first, cut at MAX_GROUP_DEPTH and at cycles."""
        chain: list[str] = []
        while group is not None and group not in chain and len(chain) < MAX_GROUP_DEPTH:
            chain.append(group)
            upsert = self._current("group", group)
            group = upsert.parent if upsert is not None else None
        return chain

    def account_chain(self, account: str) -> list[str]:
        """The account and its ancestors, nearest first (at most MAX_PARENT_DEPTH above)."""
        chain = [account]
        while len(chain) <= MAX_PARENT_DEPTH:
            upsert = self.account(chain[-1])
            parent = upsert.parent if upsert is not None else None
            if parent is None or parent in chain:
                break
            chain.append(parent)
        return chain

    def position(self, sku: str, location: str) -> tuple[int, int, int]:
        """(on_hand, allocated, safety_stock): the newest set plus the adjusts newer than it."""
        last_set = self._current("stock", sku, location)
        on_hand = last_set.on_hand if last_set else 0
        allocated = last_set.allocated if last_set else 0
        safety = last_set.safety_stock if last_set else 0
        set_version = last_set.version if last_set else -1
        for a in self.adjusts.values():
            if (a.sku, a.location) == (sku, location) and a.version > set_version:
                on_hand += a.on_hand_delta
                allocated += a.allocated_delta
        return on_hand, allocated, safety

    def held(self, sku: str, location: str) -> int:
        """Quantity held by holds neither released nor expired at the current clock."""
        return sum(
            qty
            for hold in self.holds.values()
            if not hold.released and hold.expires_at_ms > self.clock_ms
            for s, loc, qty in hold.lines
            if (s, loc) == (sku, location)
        )

    def receipts(self, sku: str, location: str) -> list[tuple[int, int]]:
        """The current inbound schedule of a SKU-location as (day, qty), date order."""
        inbound = self._current("inbound", sku, location)
        return sorted((day(d), q) for d, q in inbound.receipts) if inbound else []

    def available_now(self, sku: str, location: str) -> int:
        """on_hand − allocated − held − safety_stock; may be negative (oversold)."""
        on_hand, allocated, safety = self.position(sku, location)
        return on_hand - allocated - self.held(sku, location) - safety

    # ---- observable state, for convergence tests

    def observable(self) -> dict[str, Any]:
        """Every table the engine stores, keyed by codes, without tombstones or zeros."""
        stock: dict[tuple[str, str], tuple[int, int, int]] = {}
        cells = {(k[1], k[2]) for k in self.latest if k[0] == "stock"}
        cells |= {(a.sku, a.location) for a in self.adjusts.values()}
        for cell in cells:
            position = self.position(*cell)
            if any(position):
                stock[cell] = position
        return {
            "items": {
                i.sku: (
                    i.status,
                    tuple(sorted({i.base_uom: 1, **i.uoms}.items())),
                    i.base_uom,
                    i.min_order_qty,
                    i.order_multiple,
                    i.product_group,
                    i.replacement_cost_micros,
                    i.cost_currency,
                    i.lead_time_days,
                )
                for i in self._of_kind("item")
            },
            "groups": {g.product_group: g.parent for g in self._of_kind("group")},
            "locations": {loc.location: loc.active for loc in self._of_kind("location")},
            "regions": {
                r.region: tuple(dict.fromkeys(r.locations)) for r in self._of_kind("region")
            },
            "accounts": {
                a.account: (
                    a.parent,
                    tuple(a.price_groups),
                    a.price_list,
                    a.currency,
                    a.disclosure,
                    a.disclosure_cap,
                )
                for a in self._of_kind("account")
            },
            "contracts": {
                c.contract: (
                    c.currency,
                    c.priority,
                    day(c.valid_from, 0),
                    day(c.valid_to, NO_END),
                    tuple(c.accounts),
                    tuple(c.price_groups),
                    c.all_accounts,
                )
                for c in self._of_kind("contract")
            },
            "contract_lines": {
                (ln.contract, ("SKU", ln.sku) if ln.sku else ("GROUP", ln.product_group)): (
                    ln.kind,
                    ln.uom,
                    tuple(ln.tiers),
                )
                for ln in self._of_kind("contract_line")
            },
            "prices": {
                (p.price_list, p.currency, p.sku): (
                    p.uom,
                    day(p.valid_from, 0),
                    day(p.valid_to, NO_END),
                    tuple(p.tiers),
                )
                for p in self._of_kind("price")
            },
            "stock": stock,
            "inbound": {
                (i.sku, i.location): tuple(sorted((day(d), q) for d, q in i.receipts))
                for i in self._of_kind("inbound")
                if i.receipts
            },
        }

    # ---- pricing (DESIGN §3–§4)

    def _candidate_contracts(
        self, account: str, currency: str, date: int
    ) -> dict[str, tuple[tuple[int, int], ev.ContractUpsert]]:
        """Contracts reaching the account, each with its most specific route (step 1).

        Specificity, most specific first: (0, 0) the account, (1, d) its d-th ancestor,
        (2, p) its p-th price group, (3, 0) ALL.
        """
        routes: dict[str, tuple[int, int]] = {}

        def offer(contract: str, specificity: tuple[int, int]) -> None:
            routes[contract] = min(routes.get(contract, specificity), specificity)

        upsert = self.account(account)
        groups = upsert.price_groups if upsert is not None else ()
        chain = self.account_chain(account)
        for c in self._of_kind("contract"):
            for depth, member in enumerate(chain):
                if member in c.accounts:
                    offer(c.contract, (0, 0) if depth == 0 else (1, depth))
            for position, group in enumerate(groups):
                if group in c.price_groups:
                    offer(c.contract, (2, position))
            if c.all_accounts:
                offer(c.contract, (3, 0))
        live = {}
        for code, specificity in routes.items():
            c = self._current("contract", code)
            if c.currency == currency and day(c.valid_from, 0) <= date < day(c.valid_to, NO_END):
                live[code] = (specificity, c)
        return live

    def _list_offer(
        self, account: ev.AccountUpsert, item: ev.ItemUpsert, currency: str, date: int, qty: int
    ) -> _Offer | None:
        """The account's own price list where it prices the line, else LIST (step 4)."""
        own = account.price_list
        books = [LIST] if own in (None, LIST) else [own, LIST]
        for book in books:
            entry = self._current("price", book, currency, item.sku)
            if entry is None or not day(entry.valid_from, 0) <= date < day(entry.valid_to, NO_END):
                continue
            factor = self.uom_factor(item, entry.uom)
            tier = None if factor is None else _tier(entry.tiers, factor, qty)
            if factor is None or tier is None:
                continue
            return _Offer(
                source="PRICE_LIST",
                code=book,
                level="LIST" if book == LIST else "PRICE_LIST",
                kind=None,
                target_group=None,
                tiers=entry.tiers,
                tier_index=tier,
                break_factor=factor,
                per_base=Fraction(entry.tiers[tier][1], factor),
                sort_key=(),
                event=entry,
            )
        return None

    def _contract_line_price(
        self,
        line: ev.ContractLineSet,
        item: ev.ItemUpsert,
        account: ev.AccountUpsert,
        currency: str,
        date: int,
        qty: int,
    ) -> tuple[int, int, Fraction] | None:
        """(tier, break factor, micros per base unit) of a contract line, or None if it
        does not apply to this quantity (UoM not on the item, below the lowest break,
        DISCOUNT without a list price, COST_PLUS without a cost in this currency)."""
        factor = self.uom_factor(item, line.uom)
        tier = None if factor is None else _tier(line.tiers, factor, qty)
        if factor is None or tier is None:
            return None
        value = line.tiers[tier][1]
        if line.kind == "NET":
            return tier, factor, Fraction(value, factor)
        if line.kind == "DISCOUNT":
            listed = self._list_offer(account, item, currency, date, qty)
            if listed is None:
                return None
            return tier, factor, listed.per_base * (BPS - value) / BPS
        cost = item.replacement_cost_micros
        if cost is None or item.cost_currency != currency:
            return None
        return tier, factor, Fraction(cost * (BPS + value), BPS)

    def _contract_offers(
        self,
        account: ev.AccountUpsert,
        item: ev.ItemUpsert,
        currency: str,
        date: int,
        qty: int,
        line_factor: int,
    ) -> list[_Offer]:
        """One offer per candidate contract: its SKU line, else the nearest group line up
        the chain, among the lines that apply (step 2)."""
        targets = [("SKU", item.sku)] + [("GROUP", g) for g in self.group_chain(item.product_group)]
        offers = []
        candidates = self._candidate_contracts(account.account, currency, date)
        for code, (specificity, contract) in sorted(candidates.items()):
            for depth, target in enumerate(targets):
                line = self._current("contract_line", code, target)
                if line is None:
                    continue
                priced = self._contract_line_price(line, item, account, currency, date, qty)
                if priced is None:
                    continue
                tier, factor, per_base = priced
                unit = round_half_away(per_base * line_factor)
                level = ("ACCOUNT", "PARENT", "PRICE_GROUP", "ALL")[specificity[0]]
                offers.append(
                    _Offer(
                        source="CONTRACT",
                        code=code,
                        level=level,
                        kind=line.kind,
                        target_group=target[1] if target[0] == "GROUP" else None,
                        tiers=line.tiers,
                        tier_index=tier,
                        break_factor=factor,
                        per_base=per_base,
                        # priority, specificity, SKU line over nearer group over farther
                        # group, lowest net unit price (rounded, in the line's UoM), code
                        sort_key=(-contract.priority, specificity, depth, unit, code),
                        event=line,
                    )
                )
                break
        return offers

    def _winner(
        self,
        account: ev.AccountUpsert,
        item: ev.ItemUpsert,
        currency: str,
        date: int,
        qty: int,
        line_factor: int,
        policy: str,
    ) -> _Offer | None:
        """The offer that prices the line (DESIGN §4 steps 3 and 4).

        ``priority``: the best contract offer in the priority order, else the list price.
        ``lowest_price``: the lowest net unit price among the contract offers and the list
        price; ties go by the priority order, the list price last.
        """
        listed = self._list_offer(account, item, currency, date, qty)
        offers = self._contract_offers(account, item, currency, date, qty, line_factor)
        if policy == "priority":
            return min(offers, key=lambda o: o.sort_key) if offers else listed

        def cheapest_first(o: _Offer) -> tuple[Any, ...]:
            unit = round_half_away(o.per_base * line_factor)
            return (unit, 0, *o.sort_key) if o.source == "CONTRACT" else (unit, 1)

        everything = offers + ([listed] if listed else [])
        return min(everything, key=cheapest_first) if everything else None

    def _price_at(
        self,
        offer: _Offer,
        account: ev.AccountUpsert,
        item: ev.ItemUpsert,
        currency: str,
        date: int,
        qty: int,
    ) -> Fraction | None:
        """What the same price entry or contract line charges per base unit at ``qty``."""
        if offer.source == "PRICE_LIST":
            tier = _tier(offer.tiers, offer.break_factor, qty)
            return None if tier is None else Fraction(offer.tiers[tier][1], offer.break_factor)
        priced = self._contract_line_price(offer.event, item, account, currency, date, qty)
        return None if priced is None else priced[2]

    def price_line(
        self,
        account: ev.AccountUpsert,
        item: ev.ItemUpsert,
        currency: str,
        date: int,
        qty: int,
        line_factor: int,
        policy: str = "priority",
    ) -> tuple[LinePrice | None, bool]:
        """(price, overflow) of one line of ``qty`` base units in a UoM of ``line_factor``."""
        offer = self._winner(account, item, currency, date, qty, line_factor, policy)
        if offer is None:
            return None, False
        exponent = CURRENCY_EXPONENTS.get(currency, 2)
        micros_per_minor = 10 ** (6 - exponent)
        unit = round_half_away(offer.per_base * line_factor)
        extended = round_half_away(offer.per_base * qty / micros_per_minor) * micros_per_minor

        next_qty = next_unit = None
        if offer.tier_index + 1 < len(offer.tiers):
            # the next tier's minimum, honouring min order qty and the order multiple,
            # as a whole number of the line's UoM; the price is what the line charges there
            next_min = offer.tiers[offer.tier_index + 1][0] * offer.break_factor
            needed = max(next_min, item.min_order_qty)
            hint = _ceil_to(needed, math.lcm(line_factor, item.order_multiple))
            next_qty = hint // line_factor
            there = self._price_at(offer, account, item, currency, date, hint)
            next_unit = None if there is None else round_half_away(there * line_factor)
            if next_unit is None or abs(next_unit) > INT64_MAX:
                next_qty = next_unit = None  # no hint rather than a price int64 cannot hold

        price = LinePrice(
            unit_price_micros=unit,
            extended_micros=extended,
            source=offer.source,
            source_code=offer.code,
            level=offer.level,
            kind=offer.kind,
            target_group=offer.target_group,
            tier_index=offer.tier_index,
            tier_min=offer.tiers[offer.tier_index][0],
            tier_uom=offer.event.uom,
            next_break_qty=next_qty,
            next_break_unit_price_micros=next_unit,
        )
        return price, abs(unit) > INT64_MAX or abs(extended) > INT64_MAX

    # ---- availability (DESIGN §5)

    def location_set(
        self, locations: Sequence[str] | None, region: str | None
    ) -> tuple[str, ...] | None:
        """Named locations (even inactive ones: the caller asked by name), a region's
        active locations in rank order, or None for every active location."""
        if locations:
            return tuple(dict.fromkeys(locations))
        if region:
            upsert = self._current("region", region)
            if upsert is None:
                raise UnknownCodeError(region)
            active = self.active_locations()
            return tuple(loc for loc in dict.fromkeys(upsert.locations) if loc in active)
        return None

    def earliest(
        self, item: ev.ItemUpsert, need: int, locations: Sequence[str], today: int
    ) -> tuple[int | None, str]:
        """Earliest day ``need`` base units can ship from ``locations``, and what it rests on.

        A receipt already past due counts as arriving today; on day d the network has
        Σ_l max(available_now_l + receipts_l(≤ d), 0). Non-ACTIVE items: stock only.
        """
        now = {loc: self.available_now(item.sku, loc) for loc in locations}
        if sum(max(v, 0) for v in now.values()) >= need:
            return today, "STOCK"
        if item.status != "ACTIVE":
            return None, "NONE"
        schedule = {
            loc: [(max(d, today), q) for d, q in self.receipts(item.sku, loc)] for loc in locations
        }
        for d in sorted({d for receipts in schedule.values() for d, _ in receipts}):
            network = sum(
                max(now[loc] + sum(q for when, q in schedule[loc] if when <= d), 0)
                for loc in locations
            )
            if network >= need:
                return d, "INBOUND"
        if item.lead_time_days is not None:
            return today + item.lead_time_days, "LEAD_TIME"
        return None, "NONE"

    @staticmethod
    def _disclose(account: ev.AccountUpsert, value: int) -> tuple[int, str]:
        cap = account.disclosure_cap
        bucket = "OUT" if value <= 0 else "LOW" if value <= cap else "IN_STOCK"
        if account.disclosure == "EXACT":
            return value, bucket
        if account.disclosure == "CAPPED":
            return min(value, cap), bucket
        return -1, bucket

    # ---- the quote

    def active_locations(self) -> tuple[str, ...]:
        return tuple(loc.location for loc in self._of_kind("location") if loc.active)

    def quote(
        self,
        *,
        account: str,
        lines: Sequence[tuple[str, int, str | None]],
        currency: str | None = None,
        pricing_date: int,
        today: int | None = None,
        locations: Sequence[str] | None = None,
        region: str | None = None,
        policy: str = "priority",
    ) -> list[QuoteLine]:
        """Price and availability of ``lines`` (SKU, qty in the line's UoM, UoM or None).

        Raises :class:`UnknownCodeError` for an unknown account or region; line problems
        are statuses (engine.quote.LineStatus names), checked in the engine's order.
        """
        buyer = self.account(account)
        if buyer is None:
            raise UnknownCodeError(account)
        if currency and currency not in ISO_4217:
            raise InvalidRequestError("currency")
        currency = currency or buyer.currency
        today = pricing_date if today is None else today
        chosen = self.location_set(locations, region)
        location_codes = self.active_locations() if chosen is None else chosen
        return [
            self._quote_line(
                buyer, sku, qty, uom, currency, pricing_date, today, location_codes, policy
            )
            for sku, qty, uom in lines
        ]

    def _quote_line(
        self,
        buyer: ev.AccountUpsert,
        sku: str,
        qty: int,
        uom: str | None,
        currency: str,
        pricing_date: int,
        today: int,
        locations: tuple[str, ...],
        policy: str,
    ) -> QuoteLine:
        item = self.item(sku)
        factor = None if item is None else self.uom_factor(item, uom)
        in_range = factor is not None and qty >= 0 and qty * factor <= MAX_BASE_QTY
        base_qty = qty * factor if factor is not None and in_range else None

        if item is None:
            status = "UNKNOWN_SKU"
        elif factor is None:
            status = "UNKNOWN_UOM"
        elif base_qty is None:
            status = "QTY_OUT_OF_RANGE"
        elif qty == 0:
            status = "ZERO_QUANTITY"
        elif item.status == "BLOCKED":
            status = "ITEM_BLOCKED"
        else:
            status = "OK"

        sell = price = None
        if item is not None and factor is not None and base_qty is not None:
            minimum, multiple = item.min_order_qty, item.order_multiple
            suggested = _ceil_to(max(base_qty, minimum), multiple)
            exact = suggested % factor == 0
            sell = SellVerdict(
                below_minimum=base_qty < minimum,
                not_multiple=base_qty % multiple != 0,
                suggested_qty=suggested // factor if exact else suggested,
                suggested_in_base=not exact,
            )
        if status == "OK":
            assert item is not None and factor is not None and base_qty is not None
            price, overflow = self.price_line(
                buyer, item, currency, pricing_date, base_qty, factor, policy
            )
            if price is None:
                status = "NO_PRICE"
            elif overflow:
                status, price = "AMOUNT_OVERFLOW", None

        now = {loc: self.available_now(sku, loc) if item else 0 for loc in locations}
        clipped = {loc: max(v, 0) for loc, v in now.items()}
        shown = {loc: self._disclose(buyer, v) for loc, v in clipped.items()}
        earliest: tuple[int | None, str] = (None, "NONE")
        if item is not None and base_qty is not None:
            earliest = self.earliest(item, base_qty, locations, today)
        stock = LineStock(
            locations=locations,
            available_now=clipped,
            oversold={loc: v < 0 for loc, v in now.items()},
            network_available=sum(clipped.values()),
            earliest_date=earliest[0],
            date_source=earliest[1],
            shown={loc: s for loc, (s, _) in shown.items()},
            bucket={loc: b for loc, (_, b) in shown.items()},
        )
        return QuoteLine(status, base_qty, sell, price, stock)
