"""The engine state: every table pacache answers from, as numpy columns.

One :class:`State` holds the catalog (items, UoMs, product groups), locations and regions,
accounts, price lists, contracts and their lines, inventory by SKU × location, the inbound
schedule, soft holds, and the bookkeeping that makes delta apply idempotent (per-key
versions, the adjust log). Codes are interned to dense ids (``engine.codes``); the hot
paths in ``engine.pricing``, ``engine.atp`` and ``engine.quote`` read these arrays and never
build a Python object per line.

Layout decisions (the why):
- Inventory is dense ``[sku, location]``: a quote gathers a block with one fancy index, and
  about 20% of cells being stocked makes a sparse layout no smaller once its index is paid.
- Price entries and contract lines are rows with inline tiers (at most ``MAX_TIERS``), found
  through a :class:`~engine.table.KeyIndex` on one SKU-major ``int64`` key with per-SKU
  offsets, so a batch lookup reads one offset per line (no binary search over millions of
  keys) and an update is a merge, never a re-sort.
- The inbound schedule is one sorted ``int64`` key ``sku<<32 | date<<12 | location`` with a
  quantity beside it: the receipts of a SKU are one contiguous, date-ordered range.
- Deleted price entries and contract lines stay as inactive rows (tombstones) so an older
  replayed event cannot bring them back.

Dates are ``int32`` days since 1970-01-01; ``NO_END`` marks an open validity end.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.codes import CodeTable
from engine.errors import LimitExceeded
from engine.table import Column, Columns, KeyIndex

__all__ = [
    "CODE_TABLE_LIMITS",
    "CODE_TABLE_LIMIT_REASONS",
    "GROUP_TARGET",
    "LIST_CODE",
    "MAX_GROUPS_PER_ACCOUNT",
    "MAX_GROUP_DEPTH",
    "MAX_LOCATIONS",
    "MAX_PARENT_DEPTH",
    "MAX_TIERS",
    "MAX_UOMS",
    "NO_END",
    "Disclosure",
    "Hold",
    "Inventory",
    "ItemStatus",
    "LineKind",
    "State",
    "cell_key",
    "clone_state",
    "contract_line_key",
    "inbound_key",
    "price_key",
]

I64 = npt.NDArray[np.int64]

MAX_UOMS = 8  # UoMs per item (base included)
MAX_TIERS = 6  # quantity breaks per price entry or contract line
MAX_GROUPS_PER_ACCOUNT = 8  # ordered price groups per account
MAX_PARENT_DEPTH = 8  # account parent chain (DESIGN §4)
MAX_GROUP_DEPTH = 8  # product group chain, the group itself included
_LOCATION_BITS = 12  # cell_key and inbound_key: the location id in the low 12 bits
MAX_LOCATIONS = 1 << _LOCATION_BITS  # 4096: ids 0..4095
_INBOUND_SKU_SHIFT = 32  # inbound_key: sku << 32 | date << 12 | location
NO_END = np.iinfo(np.int32).max
LIST_CODE = "LIST"  # the default price list of every currency
GROUP_TARGET = 1 << 32  # contract line target: sku id, or GROUP_TARGET + product group id
_LINE_CONTRACT_BITS = 30
#: A SKU on more contract lines than this gets a dense row of its lines by contract id in
#: ``State.line_index`` (``KeyIndex.refresh_dense``): the pricing kernel then reads the
#: candidates' lines of a popular SKU from that row instead of scanning its run or running
#: a binary search per candidate (with the kernel, turning the rows off measured 78 → 124 µs
#: for the pricing of a 50-line cart at the large scale). At the large scale, 3,168 SKUs
#: (1M of the 10M lines) and about half of the lines of a Zipf cart; ~100 MB of address
#: space, ~60 MB of it written (a shared-memory copy writes all of it). Read when a state
#: is created.
LINE_DENSE_MIN_RUN = 128
PRICE_BOOK_BITS = 31  # price key: sku << 31 | (price list × 1024 + currency)
PRICE_CURRENCY_SLOTS = 1024  # price key: the currency id below the price list's

_INT16_IDS = 1 << 15  # ids kept in int16 columns (UoMs, currencies): 0..32767
# ids kept in int32 columns (product groups, accounts, price lists, price groups,
# contracts); also every code table's bulk lookup index keeps ids as int32
_INT32_IDS = 1 << 31

#: How many codes each code table of a :class:`State` (by attribute name) may hold. An id
#: past its limit does not fit where it is packed and would alias another row or cell (a
#: 4,097th location id wraps into the next SKU's inventory cell), so ``engine.validate``
#: rejects, before anything is written, an event whose new codes would pass a limit; the
#: rest of its batch applies. A test may lower an entry to reach a limit quickly.
CODE_TABLE_LIMITS: dict[str, int] = {
    # inbound_key shifts the SKU id by 32 into int64, so ids stay below 2**31 (the price
    # key, sku << 31, would allow 2**32; the bulk code index keeps ids as int32)
    "skus": 1 << (63 - _INBOUND_SKU_SHIFT),
    "locations": MAX_LOCATIONS,
    "contracts": 1 << _LINE_CONTRACT_BITS,  # contract_line_key: the contract id, low 30 bits
    "currencies": PRICE_CURRENCY_SLOTS,  # price_key: price list × 1024 + currency
    # price_key: price list × 1024 + currency must fit its PRICE_BOOK_BITS (2**21 lists)
    "price_lists": (1 << PRICE_BOOK_BITS) // PRICE_CURRENCY_SLOTS,
    "product_groups": _INT32_IDS,  # int32 item and group columns (target: GROUP_TARGET + id)
    "uoms": _INT16_IDS,  # int16 item, price and line columns
    "accounts": _INT32_IDS,  # int32 parent column
    "price_groups": _INT32_IDS,  # int32 account price-group columns
    "regions": _INT32_IDS,  # not packed: the int32 ids of the bulk code index
}
#: Why each limit of :data:`CODE_TABLE_LIMITS` is what it is, for the rejection reason.
CODE_TABLE_LIMIT_REASONS: dict[str, str] = {
    "skus": "the SKU id is shifted by 32 bits into the int64 inbound key",
    "locations": "12 location bits in cell_key and inbound_key",
    "contracts": "30 contract bits in the contract-line key",
    "currencies": "the price key packs price list × 1024 + currency",
    "price_lists": "the price key packs price list × 1024 + currency into 31 bits",
    "product_groups": "int32 product-group columns",
    "uoms": "int16 UoM columns",
    "accounts": "int32 account columns",
    "price_groups": "int32 price-group columns",
    "regions": "int32 code ids",
}


class ItemStatus(IntEnum):
    """Item status; UNKNOWN marks a SKU seen in an event before its ItemUpsert."""

    UNKNOWN = 0
    ACTIVE = 1
    DISCONTINUED = 2
    BLOCKED = 3


class LineKind(IntEnum):
    """How a contract line prices: a net price, a discount off list, or a cost-plus markup."""

    NET = 1
    DISCOUNT = 2
    COST_PLUS = 3


class Disclosure(IntEnum):
    """How much stock an account may see (applied on the way out, DESIGN §5)."""

    EXACT = 0
    CAPPED = 1
    BUCKETS = 2


def price_key(price_list: I64 | int, currency: I64 | int, sku: I64 | int) -> Any:
    """Index key of a price entry: SKU first, then (price list, currency) — a SKU's
    prices are one short run, found through the index's per-SKU offsets."""
    book = np.int64(price_list) * PRICE_CURRENCY_SLOTS + currency
    return (np.int64(sku) << PRICE_BOOK_BITS) | book


def contract_line_key(target: I64 | int, contract: I64 | int) -> Any:
    """Index key of a contract line: (target, contract), so one target's lines are a range."""
    return (np.int64(target) << _LINE_CONTRACT_BITS) | contract


def inbound_key(sku: I64 | int, date: I64 | int, location: I64 | int) -> Any:
    """Sort key of a receipt: SKU, then date, then location."""
    return (np.int64(sku) << _INBOUND_SKU_SHIFT) | (np.int64(date) << _LOCATION_BITS) | location


_TIERS = {
    "n_tiers": Column(np.int8),
    "tier_min": Column(np.int64, np.iinfo(np.int64).max, MAX_TIERS),
    "tier_value": Column(np.int64, 0, MAX_TIERS),
}

ITEM_SCHEMA = {
    "status": Column(np.int8, ItemStatus.UNKNOWN),
    "version": Column(np.int64, -1),
    "base_uom": Column(np.int16, -1),
    "uom_code": Column(np.int16, -1, MAX_UOMS),
    "uom_factor": Column(np.int64, 0, MAX_UOMS),
    "min_order_qty": Column(np.int64, 0),
    "order_multiple": Column(np.int64, 1),
    "product_group": Column(np.int32, -1),
    "cost_micros": Column(np.int64, -1),
    "cost_currency": Column(np.int16, -1),
    "lead_time_days": Column(np.int32, -1),
}
GROUP_SCHEMA = {
    "version": Column(np.int64, -1),
    "parent": Column(np.int32, -1),
    "chain": Column(np.int32, -1, MAX_GROUP_DEPTH),
}
LOCATION_SCHEMA = {"version": Column(np.int64, -1), "active": Column(np.bool_, False)}
ACCOUNT_SCHEMA = {
    "version": Column(np.int64, -1),
    "parent": Column(np.int32, -1),
    "price_list": Column(np.int32, -1),
    "currency": Column(np.int16, -1),
    "price_groups": Column(np.int32, -1, MAX_GROUPS_PER_ACCOUNT),
    "disclosure": Column(np.int8, Disclosure.EXACT),
    "disclosure_cap": Column(np.int64, 0),
}
PRICE_SCHEMA = {
    "key": Column(np.int64),
    "uom": Column(np.int16, -1),
    "valid_from": Column(np.int32, 0),
    "valid_to": Column(np.int32, NO_END),
    "version": Column(np.int64, -1),
    "active": Column(np.bool_, False),
    **_TIERS,
}
CONTRACT_SCHEMA = {
    "version": Column(np.int64, -1),
    "active": Column(np.bool_, False),
    "currency": Column(np.int16, -1),
    "valid_from": Column(np.int32, 0),
    "valid_to": Column(np.int32, NO_END),
    "priority": Column(np.int32, 0),
    "assign_all": Column(np.bool_, False),
}
LINE_SCHEMA = {
    "key": Column(np.int64),
    "contract": Column(np.int32, -1),
    "target": Column(np.int64, -1),
    "kind": Column(np.int8, 0),
    "uom": Column(np.int16, -1),
    "version": Column(np.int64, -1),
    "active": Column(np.bool_, False),
    **_TIERS,
}
ADJUST_SCHEMA = {
    "live": Column(np.bool_, True),  # False once a newer absolute set has absorbed it
    "sku": Column(np.int64),
    "location": Column(np.int64),
    "version": Column(np.int64),
    "on_hand": Column(np.int64),
    "allocated": Column(np.int64),
}


def cell_key(sku: I64, location: I64) -> I64:
    """One int64 per SKU × location cell that does not depend on the inventory's capacity
    (which grows): the SKU above the 12 location bits."""
    return (sku << _LOCATION_BITS) | location


class Inventory:
    """Dense SKU × location stock positions, with the version of the last absolute set."""

    FIELDS = ("on_hand", "allocated", "safety_stock", "held", "set_version")

    def __init__(self, sku_capacity: int = 16, location_capacity: int = 4) -> None:
        self.sku_capacity = sku_capacity
        self.location_capacity = location_capacity
        self.on_hand = self._blank(0)
        self.allocated = self._blank(0)
        self.safety_stock = self._blank(0)
        self.held = self._blank(0)
        self.set_version = self._blank(-1)

    def _blank(self, fill: int) -> I64:
        return np.full((self.sku_capacity, self.location_capacity), fill, dtype=np.int64)

    def copy(self) -> Inventory:
        """An independent copy of every field, capacity included."""
        inventory = Inventory.__new__(Inventory)
        inventory.sku_capacity, inventory.location_capacity = (
            self.sku_capacity,
            self.location_capacity,
        )
        for name in self.FIELDS:
            setattr(inventory, name, getattr(self, name).copy())
        return inventory

    def ensure(self, skus: int, locations: int) -> None:
        """Grow to hold ``skus`` × ``locations`` cells (copying once per growth).

        More than :data:`MAX_LOCATIONS` locations raises :class:`LimitExceeded` rather
        than clip: a location id past the 12 location bits would write into another cell
        (validation rejects such an event first, so this is a last line of defence)."""
        if locations > MAX_LOCATIONS:
            raise LimitExceeded("locations", f"{locations} locations", f"at most {MAX_LOCATIONS}")
        if skus <= self.sku_capacity and locations <= self.location_capacity:
            return
        old_s, old_l = self.sku_capacity, self.location_capacity
        if skus > old_s:
            self.sku_capacity = max(skus, old_s + old_s // 2)
        if locations > old_l:
            self.location_capacity = min(MAX_LOCATIONS, max(locations, old_l * 2))
        for name in self.FIELDS:
            old = getattr(self, name)
            grown = self._blank(-1 if name == "set_version" else 0)
            grown[:old_s, :old_l] = old
            setattr(self, name, grown)


@dataclass(slots=True)
class Hold:
    """A soft hold placed through Reserve: stock lowered until released or expired. It
    belongs to ``account`` and is found by (account, key): ``State.holds``'s key."""

    key: str
    account: str
    sku: I64
    location: I64
    qty: I64
    expires_at_ms: int
    fingerprint: tuple[tuple[str, str, int], ...]  # sorted (sku, location, qty) codes
    placed_at_ms: int
    active: bool = True

    def to_plain(self) -> dict[str, Any]:
        """Lists and ints only: for snapshot meta (JSON) and the writer → worker socket."""
        return {
            "key": self.key,
            "account": self.account,
            "sku": self.sku.tolist(),
            "location": self.location.tolist(),
            "qty": self.qty.tolist(),
            "expires_at_ms": self.expires_at_ms,
            "fingerprint": [list(f) for f in self.fingerprint],
            "placed_at_ms": self.placed_at_ms,
            "active": self.active,
        }

    def copy(self) -> Hold:
        """An independent copy (its arrays copied)."""
        return replace(
            self, sku=self.sku.copy(), location=self.location.copy(), qty=self.qty.copy()
        )

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> Hold:
        """The inverse of :meth:`to_plain`; a hold written before holds had accounts
        (no "account") belongs to the account "", as its stream entries decode."""
        return cls(
            plain["key"],
            plain.get("account", ""),
            np.array(plain["sku"], dtype=np.int64),
            np.array(plain["location"], dtype=np.int64),
            np.array(plain["qty"], dtype=np.int64),
            plain["expires_at_ms"],
            tuple((f[0], f[1], f[2]) for f in plain["fingerprint"]),
            plain["placed_at_ms"],
            plain["active"],
        )


@dataclass
class State:
    """Everything the engine answers from. Built by ``engine.deltas`` or loaded by
    ``engine.snapshot``; read by ``engine.quote``. Only the single writer mutates it."""

    skus: CodeTable = field(default_factory=lambda: CodeTable("sku"))
    locations: CodeTable = field(default_factory=lambda: CodeTable("location"))
    regions: CodeTable = field(default_factory=lambda: CodeTable("region"))
    accounts: CodeTable = field(default_factory=lambda: CodeTable("account"))
    contracts: CodeTable = field(default_factory=lambda: CodeTable("contract"))
    price_lists: CodeTable = field(default_factory=lambda: CodeTable("price_list", [LIST_CODE]))
    price_groups: CodeTable = field(default_factory=lambda: CodeTable("price_group"))
    product_groups: CodeTable = field(default_factory=lambda: CodeTable("product_group"))
    uoms: CodeTable = field(default_factory=lambda: CodeTable("uom"))
    currencies: CodeTable = field(default_factory=lambda: CodeTable("currency"))

    items: Columns = field(default_factory=lambda: Columns(ITEM_SCHEMA))
    groups: Columns = field(default_factory=lambda: Columns(GROUP_SCHEMA))
    location_rows: Columns = field(default_factory=lambda: Columns(LOCATION_SCHEMA))
    account_rows: Columns = field(default_factory=lambda: Columns(ACCOUNT_SCHEMA))
    contract_rows: Columns = field(default_factory=lambda: Columns(CONTRACT_SCHEMA))
    prices: Columns = field(default_factory=lambda: Columns(PRICE_SCHEMA))
    price_index: KeyIndex = field(default_factory=lambda: KeyIndex(PRICE_BOOK_BITS))
    lines: Columns = field(default_factory=lambda: Columns(LINE_SCHEMA))
    line_index: KeyIndex = field(
        default_factory=lambda: KeyIndex(
            _LINE_CONTRACT_BITS, prefix_limit=GROUP_TARGET, dense_min_run=LINE_DENSE_MIN_RUN
        )
    )
    inventory: Inventory = field(default_factory=Inventory)
    inbound_keys: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    inbound_qty: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    inbound_versions: dict[tuple[int, int], int] = field(default_factory=dict)
    adjust_log: Columns = field(default_factory=lambda: Columns(ADJUST_SCHEMA))
    adjust_ids: dict[str, int] = field(default_factory=dict)
    # the adjust log's rows sorted by cell (``cell_key``): built on first use, kept in step
    # by ``engine.inventory_apply``, never saved (a snapshot rebuilds it on demand)
    adjust_index: KeyIndex | None = field(default=None, repr=False)

    region_locations: dict[int, I64] = field(default_factory=dict)
    region_versions: dict[int, int] = field(default_factory=dict)
    contract_accounts: dict[int, tuple[int, ...]] = field(default_factory=dict)
    contract_price_groups: dict[int, tuple[int, ...]] = field(default_factory=dict)
    # by (account, hold key): another account's same key is another hold
    holds: dict[tuple[str, str], Hold] = field(default_factory=dict)

    version: int = 0  # state version: +1 per applied batch
    pricing_epoch: int = 0  # +1 whenever accounts, contracts or assignments change
    stream_ids: dict[str, str] = field(default_factory=dict)
    newest_ts_ms: int = 0
    clock_ms: int = 0  # stream time of the newest batch: hold expiry uses it, not the wall
    # the write-ahead log position of the newest batch applied from it (server.wal): a
    # restart replays the log's records after it
    wal_lsn: int = 0
    contexts: dict[Any, Any] = field(default_factory=dict, repr=False)  # pricing cache

    def counts(self) -> dict[str, int]:
        """Sizes of the main tables (snapshot manifests, Admin Stats)."""
        return {
            "skus": self.n_skus,
            "locations": self.n_locations,
            "accounts": len(self.accounts),
            "contracts": len(self.contracts),
            "contract_lines": self.lines.n,
            "price_entries": self.prices.n,
            "receipts": int(self.inbound_keys.size),
        }

    @property
    def n_skus(self) -> int:
        return len(self.skus)

    @property
    def n_locations(self) -> int:
        return len(self.locations)

    def currency_id(self, code: str) -> int:
        """Id of a currency code, interning it (currencies are a closed ISO list)."""
        return self.currencies.intern(code, "currency")

    def ensure_skus(self) -> None:
        """Grow per-SKU tables to the number of interned SKUs."""
        n = len(self.skus)
        if self.items.n < n:
            self.items.append_blank(n - self.items.n)
        self.inventory.ensure(n, max(len(self.locations), 1))

    def ensure_locations(self) -> None:
        """Grow per-location tables to the number of interned locations."""
        n = len(self.locations)
        if self.location_rows.n < n:
            self.location_rows.append_blank(n - self.location_rows.n)
        self.inventory.ensure(max(len(self.skus), 1), n)

    def ensure_rows(self) -> None:
        """Grow every code-indexed table to its code table's size."""
        self.ensure_skus()
        self.ensure_locations()
        for table, codes in (
            (self.groups, self.product_groups),
            (self.account_rows, self.accounts),
            (self.contract_rows, self.contracts),
        ):
            if table.n < len(codes):
                table.append_blank(len(codes) - table.n)

    def recompute_group_chains(self) -> None:
        """Fill ``groups.chain[g]`` = [g, parent, grandparent, …] (cut at MAX_GROUP_DEPTH).

        A cycle in the parent links is cut where it repeats; O(groups × depth).
        """
        n = self.groups.n
        parent = self.groups["parent"][:n].astype(np.int64)
        chain = np.full((n, MAX_GROUP_DEPTH), -1, dtype=np.int32)
        current = np.arange(n, dtype=np.int64)
        for depth in range(MAX_GROUP_DEPTH):
            valid = current >= 0
            chain[valid, depth] = current[valid]
            nxt = np.where(valid, parent[np.maximum(current, 0)], -1)
            seen = (chain[:, : depth + 1] == nxt[:, None]).any(axis=1)
            current = np.where(seen, -1, nxt)
        self.groups["chain"][:n] = chain


def _copy_value(value: Any) -> Any:
    """A deep copy of one value held by a :class:`State` (see :func:`clone_state`)."""
    if isinstance(value, (CodeTable, Columns, KeyIndex, Inventory, Hold)):
        return value.copy()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {key: _copy_value(item) for key, item in value.items()}
    if isinstance(value, (int, str, tuple)) or value is None:  # immutable (tuples of ints)
        return value
    raise TypeError(f"clone_state: no copy rule for {type(value).__name__}")


def clone_state(state: State) -> State:
    """A deep, independent copy of ``state``: every numpy array copied (so a copy of a
    state whose arrays are shared-memory or snapshot mappings is private memory), code
    tables copied (the same codes and ids, their arenas and hash indexes copied), dicts,
    holds and the adjust log copied. Caches are not: the adjust log's cell index is rebuilt
    on first use and the pricing contexts start empty.

    ``engine.shared`` restores a half-written instance from the published one with it.
    O(state size) in time and memory. A new kind of field fails loudly (TypeError) rather
    than being shared between the two.
    """
    copies: dict[str, Any] = {}
    for item in fields(State):
        if item.name == "contexts":
            copies[item.name] = {}
        elif item.name == "adjust_index":
            copies[item.name] = None
        else:
            copies[item.name] = _copy_value(getattr(state, item.name))
    return State(**copies)
