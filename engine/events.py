"""Canonical change events the engine applies (DESIGN §6), as plain dataclasses.

These are the engine's input types; ``loaders.events`` derives its msgspec wire schema from
them, so there is one definition of every field. Each event carries ``version`` (monotonic
per entity key at the source) and ``ts_ms`` (source time, ms since the epoch). Dates are
``datetime.date``; money is int micros; quantities are int.

Entity keys (what ``version`` is monotonic for):

=====================  ==========================================
ItemUpsert             sku
ProductGroupUpsert     product_group
LocationUpsert         location
RegionUpsert           region
AccountUpsert          account
InventorySet/Adjust    (sku, location)
InboundSet             (sku, location)
PriceSet/PriceDelete   (price_list, currency, sku)
ContractUpsert/Delete  contract
ContractLineSet/Delete (contract, sku or product_group)
=====================  ==========================================

The engine dispatches on the *class name* and reads fields by attribute, so any object
with a class of the same name and the same fields is an event: ``loaders.events`` decodes
the wire format straight into msgspec Structs generated from these classes (same names,
same fields), skipping a copy per event on the hot ingest path.

``ProductGroupUpsert`` is not in DESIGN §6; it carries the product-group parent chain that
group contract lines resolve through. Holds are decided in stream order, not by version,
and belong to an account: a hold is keyed by (``account``, ``hold_key``), so two accounts
using the same key hold independently and one cannot release the other's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

__all__ = [
    "EVENT_TYPES",
    "AccountUpsert",
    "ContractDelete",
    "ContractLineDelete",
    "ContractLineSet",
    "ContractUpsert",
    "Event",
    "HoldPlace",
    "HoldRelease",
    "InboundSet",
    "InventoryAdjust",
    "InventorySet",
    "ItemUpsert",
    "LocationUpsert",
    "PriceDelete",
    "PriceSet",
    "ProductGroupUpsert",
    "RegionUpsert",
]

Tier = tuple[int, int]  # (minimum quantity in the UoM, micros or basis points)


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemUpsert:
    sku: str
    version: int
    ts_ms: int = 0
    status: str = "ACTIVE"  # ACTIVE | DISCONTINUED | BLOCKED
    base_uom: str = "EA"
    uoms: dict[str, int] = field(default_factory=dict)  # alternate UoM → factor to base
    min_order_qty: int = 0  # base units
    order_multiple: int = 1  # base units
    product_group: str | None = None
    replacement_cost_micros: int | None = None  # per base unit
    cost_currency: str = "USD"
    lead_time_days: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductGroupUpsert:
    product_group: str
    version: int
    ts_ms: int = 0
    parent: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LocationUpsert:
    location: str
    version: int
    ts_ms: int = 0
    active: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class RegionUpsert:
    region: str
    version: int
    ts_ms: int = 0
    locations: tuple[str, ...] = ()  # ranked, best first


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountUpsert:
    account: str
    version: int
    ts_ms: int = 0
    parent: str | None = None
    price_groups: tuple[str, ...] = ()  # in the account's order of preference
    price_list: str | None = None  # None: LIST
    currency: str = "USD"
    disclosure: str = "EXACT"  # EXACT | CAPPED | BUCKETS
    disclosure_cap: int = 0  # CAPPED: the most shown; BUCKETS: the LOW threshold


@dataclass(frozen=True, slots=True, kw_only=True)
class InventorySet:
    sku: str
    location: str
    version: int
    ts_ms: int = 0
    on_hand: int = 0
    allocated: int = 0
    safety_stock: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryAdjust:
    sku: str
    location: str
    event_id: str
    version: int
    ts_ms: int = 0
    on_hand_delta: int = 0
    allocated_delta: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundSet:
    sku: str
    location: str
    version: int
    ts_ms: int = 0
    receipts: tuple[tuple[dt.date, int], ...] = ()  # (expected date, base qty)


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceSet:
    price_list: str
    currency: str
    sku: str
    version: int
    ts_ms: int = 0
    uom: str | None = None  # price UoM; None: the item's base UoM
    tiers: tuple[Tier, ...] = ()  # (minimum qty in uom, price micros per uom)
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None  # exclusive


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceDelete:
    price_list: str
    currency: str
    sku: str
    version: int
    ts_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractUpsert:
    contract: str
    version: int
    ts_ms: int = 0
    currency: str = "USD"
    priority: int = 0
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None  # exclusive
    accounts: tuple[str, ...] = ()
    price_groups: tuple[str, ...] = ()
    all_accounts: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractDelete:
    contract: str
    version: int
    ts_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractLineSet:
    contract: str
    version: int
    ts_ms: int = 0
    sku: str | None = None  # exactly one of sku and product_group
    product_group: str | None = None
    kind: str = "NET"  # NET | DISCOUNT | COST_PLUS
    uom: str | None = None  # price and break UoM; None: base
    tiers: tuple[Tier, ...] = ()  # NET: micros per uom; DISCOUNT/COST_PLUS: basis points


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractLineDelete:
    contract: str
    version: int
    ts_ms: int = 0
    sku: str | None = None
    product_group: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldPlace:
    hold_key: str
    lines: tuple[tuple[str, str, int], ...]  # (sku, location, base qty)
    ttl_ms: int
    version: int = 0
    ts_ms: int = 0
    # the account the hold belongs to: a hold is found and released by (account, hold_key);
    # "" (no account) is what stream entries written before holds had accounts decode to
    account: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldRelease:
    hold_key: str
    version: int = 0
    ts_ms: int = 0
    account: str = ""  # releases only this account's hold of that key


Event = (
    ItemUpsert
    | ProductGroupUpsert
    | LocationUpsert
    | RegionUpsert
    | AccountUpsert
    | InventorySet
    | InventoryAdjust
    | InboundSet
    | PriceSet
    | PriceDelete
    | ContractUpsert
    | ContractDelete
    | ContractLineSet
    | ContractLineDelete
    | HoldPlace
    | HoldRelease
)

EVENT_TYPES: tuple[type, ...] = (
    ItemUpsert,
    ProductGroupUpsert,
    LocationUpsert,
    RegionUpsert,
    AccountUpsert,
    InventorySet,
    InventoryAdjust,
    InboundSet,
    PriceSet,
    PriceDelete,
    ContractUpsert,
    ContractDelete,
    ContractLineSet,
    ContractLineDelete,
    HoldPlace,
    HoldRelease,
)
