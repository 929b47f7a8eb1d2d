from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LineStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINE_STATUS_UNSPECIFIED: _ClassVar[LineStatus]
    LINE_STATUS_OK: _ClassVar[LineStatus]
    LINE_STATUS_UNKNOWN_SKU: _ClassVar[LineStatus]
    LINE_STATUS_UNKNOWN_UOM: _ClassVar[LineStatus]
    LINE_STATUS_ITEM_BLOCKED: _ClassVar[LineStatus]
    LINE_STATUS_NO_PRICE: _ClassVar[LineStatus]
    LINE_STATUS_QTY_OUT_OF_RANGE: _ClassVar[LineStatus]
    LINE_STATUS_AMOUNT_OVERFLOW: _ClassVar[LineStatus]
    LINE_STATUS_ZERO_QUANTITY: _ClassVar[LineStatus]

class PriceSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRICE_SOURCE_UNSPECIFIED: _ClassVar[PriceSource]
    PRICE_SOURCE_CONTRACT: _ClassVar[PriceSource]
    PRICE_SOURCE_PRICE_LIST: _ClassVar[PriceSource]

class PriceLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRICE_LEVEL_UNSPECIFIED: _ClassVar[PriceLevel]
    PRICE_LEVEL_ACCOUNT: _ClassVar[PriceLevel]
    PRICE_LEVEL_PARENT: _ClassVar[PriceLevel]
    PRICE_LEVEL_PRICE_GROUP: _ClassVar[PriceLevel]
    PRICE_LEVEL_ALL: _ClassVar[PriceLevel]
    PRICE_LEVEL_PRICE_LIST: _ClassVar[PriceLevel]
    PRICE_LEVEL_LIST: _ClassVar[PriceLevel]

class LineKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINE_KIND_UNSPECIFIED: _ClassVar[LineKind]
    LINE_KIND_NET: _ClassVar[LineKind]
    LINE_KIND_DISCOUNT: _ClassVar[LineKind]
    LINE_KIND_COST_PLUS: _ClassVar[LineKind]

class LostReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOST_REASON_UNSPECIFIED: _ClassVar[LostReason]
    LOST_REASON_WON: _ClassVar[LostReason]
    LOST_REASON_LOWER_PRIORITY: _ClassVar[LostReason]
    LOST_REASON_LESS_SPECIFIC: _ClassVar[LostReason]
    LOST_REASON_GROUP_LINE: _ClassVar[LostReason]
    LOST_REASON_HIGHER_PRICE: _ClassVar[LostReason]
    LOST_REASON_HIGHER_CONTRACT_ID: _ClassVar[LostReason]
    LOST_REASON_BELOW_LOWEST_BREAK: _ClassVar[LostReason]
    LOST_REASON_NO_LIST_PRICE: _ClassVar[LostReason]
    LOST_REASON_NO_COST: _ClassVar[LostReason]
    LOST_REASON_UOM_NOT_ON_ITEM: _ClassVar[LostReason]
    LOST_REASON_CONTRACT_WON: _ClassVar[LostReason]

class StockBucket(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STOCK_BUCKET_UNSPECIFIED: _ClassVar[StockBucket]
    STOCK_BUCKET_OUT: _ClassVar[StockBucket]
    STOCK_BUCKET_LOW: _ClassVar[StockBucket]
    STOCK_BUCKET_IN_STOCK: _ClassVar[StockBucket]

class Disclosure(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISCLOSURE_UNSPECIFIED: _ClassVar[Disclosure]
    DISCLOSURE_EXACT: _ClassVar[Disclosure]
    DISCLOSURE_CAPPED: _ClassVar[Disclosure]
    DISCLOSURE_BUCKETS: _ClassVar[Disclosure]

class DateSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATE_SOURCE_UNSPECIFIED: _ClassVar[DateSource]
    DATE_SOURCE_NONE: _ClassVar[DateSource]
    DATE_SOURCE_STOCK: _ClassVar[DateSource]
    DATE_SOURCE_INBOUND: _ClassVar[DateSource]
    DATE_SOURCE_LEAD_TIME: _ClassVar[DateSource]

class Policy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POLICY_UNSPECIFIED: _ClassVar[Policy]
    POLICY_PRIORITY: _ClassVar[Policy]
    POLICY_LOWEST_PRICE: _ClassVar[Policy]

class Encoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENCODING_UNSPECIFIED: _ClassVar[Encoding]
    ENCODING_MSGPACK: _ClassVar[Encoding]
    ENCODING_JSON: _ClassVar[Encoding]
LINE_STATUS_UNSPECIFIED: LineStatus
LINE_STATUS_OK: LineStatus
LINE_STATUS_UNKNOWN_SKU: LineStatus
LINE_STATUS_UNKNOWN_UOM: LineStatus
LINE_STATUS_ITEM_BLOCKED: LineStatus
LINE_STATUS_NO_PRICE: LineStatus
LINE_STATUS_QTY_OUT_OF_RANGE: LineStatus
LINE_STATUS_AMOUNT_OVERFLOW: LineStatus
LINE_STATUS_ZERO_QUANTITY: LineStatus
PRICE_SOURCE_UNSPECIFIED: PriceSource
PRICE_SOURCE_CONTRACT: PriceSource
PRICE_SOURCE_PRICE_LIST: PriceSource
PRICE_LEVEL_UNSPECIFIED: PriceLevel
PRICE_LEVEL_ACCOUNT: PriceLevel
PRICE_LEVEL_PARENT: PriceLevel
PRICE_LEVEL_PRICE_GROUP: PriceLevel
PRICE_LEVEL_ALL: PriceLevel
PRICE_LEVEL_PRICE_LIST: PriceLevel
PRICE_LEVEL_LIST: PriceLevel
LINE_KIND_UNSPECIFIED: LineKind
LINE_KIND_NET: LineKind
LINE_KIND_DISCOUNT: LineKind
LINE_KIND_COST_PLUS: LineKind
LOST_REASON_UNSPECIFIED: LostReason
LOST_REASON_WON: LostReason
LOST_REASON_LOWER_PRIORITY: LostReason
LOST_REASON_LESS_SPECIFIC: LostReason
LOST_REASON_GROUP_LINE: LostReason
LOST_REASON_HIGHER_PRICE: LostReason
LOST_REASON_HIGHER_CONTRACT_ID: LostReason
LOST_REASON_BELOW_LOWEST_BREAK: LostReason
LOST_REASON_NO_LIST_PRICE: LostReason
LOST_REASON_NO_COST: LostReason
LOST_REASON_UOM_NOT_ON_ITEM: LostReason
LOST_REASON_CONTRACT_WON: LostReason
STOCK_BUCKET_UNSPECIFIED: StockBucket
STOCK_BUCKET_OUT: StockBucket
STOCK_BUCKET_LOW: StockBucket
STOCK_BUCKET_IN_STOCK: StockBucket
DISCLOSURE_UNSPECIFIED: Disclosure
DISCLOSURE_EXACT: Disclosure
DISCLOSURE_CAPPED: Disclosure
DISCLOSURE_BUCKETS: Disclosure
DATE_SOURCE_UNSPECIFIED: DateSource
DATE_SOURCE_NONE: DateSource
DATE_SOURCE_STOCK: DateSource
DATE_SOURCE_INBOUND: DateSource
DATE_SOURCE_LEAD_TIME: DateSource
POLICY_UNSPECIFIED: Policy
POLICY_PRIORITY: Policy
POLICY_LOWEST_PRICE: Policy
ENCODING_UNSPECIFIED: Encoding
ENCODING_MSGPACK: Encoding
ENCODING_JSON: Encoding

class AsOf(_message.Message):
    __slots__ = ("version", "stream_ids", "newest_source_ts_ms")
    class StreamIdsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STREAM_IDS_FIELD_NUMBER: _ClassVar[int]
    NEWEST_SOURCE_TS_MS_FIELD_NUMBER: _ClassVar[int]
    version: int
    stream_ids: _containers.ScalarMap[str, str]
    newest_source_ts_ms: int
    def __init__(self, version: _Optional[int] = ..., stream_ids: _Optional[_Mapping[str, str]] = ..., newest_source_ts_ms: _Optional[int] = ...) -> None: ...

class QuoteLine(_message.Message):
    __slots__ = ("line_id", "sku", "quantity", "uom")
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UOM_FIELD_NUMBER: _ClassVar[int]
    line_id: str
    sku: str
    quantity: int
    uom: str
    def __init__(self, line_id: _Optional[str] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ..., uom: _Optional[str] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("source", "source_id", "level", "target_group", "kind", "tier_index", "unit_price_micros", "lost")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    TARGET_GROUP_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIER_INDEX_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_MICROS_FIELD_NUMBER: _ClassVar[int]
    LOST_FIELD_NUMBER: _ClassVar[int]
    source: PriceSource
    source_id: str
    level: PriceLevel
    target_group: str
    kind: LineKind
    tier_index: int
    unit_price_micros: int
    lost: LostReason
    def __init__(self, source: _Optional[_Union[PriceSource, str]] = ..., source_id: _Optional[str] = ..., level: _Optional[_Union[PriceLevel, str]] = ..., target_group: _Optional[str] = ..., kind: _Optional[_Union[LineKind, str]] = ..., tier_index: _Optional[int] = ..., unit_price_micros: _Optional[int] = ..., lost: _Optional[_Union[LostReason, str]] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("candidates",)
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    def __init__(self, candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ...) -> None: ...

class Price(_message.Message):
    __slots__ = ("unit_price_micros", "extended_micros", "source", "source_id", "level", "kind", "target_group", "tier_index", "tier_min_qty", "tier_uom", "next_break_qty", "next_break_unit_price_micros")
    UNIT_PRICE_MICROS_FIELD_NUMBER: _ClassVar[int]
    EXTENDED_MICROS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TARGET_GROUP_FIELD_NUMBER: _ClassVar[int]
    TIER_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIER_MIN_QTY_FIELD_NUMBER: _ClassVar[int]
    TIER_UOM_FIELD_NUMBER: _ClassVar[int]
    NEXT_BREAK_QTY_FIELD_NUMBER: _ClassVar[int]
    NEXT_BREAK_UNIT_PRICE_MICROS_FIELD_NUMBER: _ClassVar[int]
    unit_price_micros: int
    extended_micros: int
    source: PriceSource
    source_id: str
    level: PriceLevel
    kind: LineKind
    target_group: str
    tier_index: int
    tier_min_qty: int
    tier_uom: str
    next_break_qty: int
    next_break_unit_price_micros: int
    def __init__(self, unit_price_micros: _Optional[int] = ..., extended_micros: _Optional[int] = ..., source: _Optional[_Union[PriceSource, str]] = ..., source_id: _Optional[str] = ..., level: _Optional[_Union[PriceLevel, str]] = ..., kind: _Optional[_Union[LineKind, str]] = ..., target_group: _Optional[str] = ..., tier_index: _Optional[int] = ..., tier_min_qty: _Optional[int] = ..., tier_uom: _Optional[str] = ..., next_break_qty: _Optional[int] = ..., next_break_unit_price_micros: _Optional[int] = ...) -> None: ...

class SellRules(_message.Message):
    __slots__ = ("below_minimum", "not_multiple", "suggested_qty", "suggested_uom")
    BELOW_MINIMUM_FIELD_NUMBER: _ClassVar[int]
    NOT_MULTIPLE_FIELD_NUMBER: _ClassVar[int]
    SUGGESTED_QTY_FIELD_NUMBER: _ClassVar[int]
    SUGGESTED_UOM_FIELD_NUMBER: _ClassVar[int]
    below_minimum: bool
    not_multiple: bool
    suggested_qty: int
    suggested_uom: str
    def __init__(self, below_minimum: _Optional[bool] = ..., not_multiple: _Optional[bool] = ..., suggested_qty: _Optional[int] = ..., suggested_uom: _Optional[str] = ...) -> None: ...

class LocationAvailability(_message.Message):
    __slots__ = ("location", "available", "bucket", "oversold")
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    OVERSOLD_FIELD_NUMBER: _ClassVar[int]
    location: str
    available: int
    bucket: StockBucket
    oversold: bool
    def __init__(self, location: _Optional[str] = ..., available: _Optional[int] = ..., bucket: _Optional[_Union[StockBucket, str]] = ..., oversold: _Optional[bool] = ...) -> None: ...

class Availability(_message.Message):
    __slots__ = ("locations", "network_available", "earliest_date", "date_source")
    LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    EARLIEST_DATE_FIELD_NUMBER: _ClassVar[int]
    DATE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    locations: _containers.RepeatedCompositeFieldContainer[LocationAvailability]
    network_available: int
    earliest_date: str
    date_source: DateSource
    def __init__(self, locations: _Optional[_Iterable[_Union[LocationAvailability, _Mapping]]] = ..., network_available: _Optional[int] = ..., earliest_date: _Optional[str] = ..., date_source: _Optional[_Union[DateSource, str]] = ...) -> None: ...

class QuotedLine(_message.Message):
    __slots__ = ("line_id", "index", "sku", "quantity", "uom", "status", "base_qty", "price", "sell_rules", "availability", "explanation")
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UOM_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BASE_QTY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    SELL_RULES_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    line_id: str
    index: int
    sku: str
    quantity: int
    uom: str
    status: LineStatus
    base_qty: int
    price: Price
    sell_rules: SellRules
    availability: Availability
    explanation: Explanation
    def __init__(self, line_id: _Optional[str] = ..., index: _Optional[int] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ..., uom: _Optional[str] = ..., status: _Optional[_Union[LineStatus, str]] = ..., base_qty: _Optional[int] = ..., price: _Optional[_Union[Price, _Mapping]] = ..., sell_rules: _Optional[_Union[SellRules, _Mapping]] = ..., availability: _Optional[_Union[Availability, _Mapping]] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ...) -> None: ...

class QuoteRequest(_message.Message):
    __slots__ = ("account", "currency", "pricing_date", "locations", "region", "lines", "explain", "min_version", "min_stream_ids", "policy")
    class MinStreamIdsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PRICING_DATE_FIELD_NUMBER: _ClassVar[int]
    LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    MIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    MIN_STREAM_IDS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    account: str
    currency: str
    pricing_date: str
    locations: _containers.RepeatedScalarFieldContainer[str]
    region: str
    lines: _containers.RepeatedCompositeFieldContainer[QuoteLine]
    explain: bool
    min_version: int
    min_stream_ids: _containers.ScalarMap[str, str]
    policy: Policy
    def __init__(self, account: _Optional[str] = ..., currency: _Optional[str] = ..., pricing_date: _Optional[str] = ..., locations: _Optional[_Iterable[str]] = ..., region: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[QuoteLine, _Mapping]]] = ..., explain: _Optional[bool] = ..., min_version: _Optional[int] = ..., min_stream_ids: _Optional[_Mapping[str, str]] = ..., policy: _Optional[_Union[Policy, str]] = ...) -> None: ...

class QuoteResponse(_message.Message):
    __slots__ = ("as_of", "currency", "policy", "disclosure", "locations", "lines")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    DISCLOSURE_FIELD_NUMBER: _ClassVar[int]
    LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    as_of: AsOf
    currency: str
    policy: Policy
    disclosure: Disclosure
    locations: _containers.RepeatedScalarFieldContainer[str]
    lines: _containers.RepeatedCompositeFieldContainer[QuotedLine]
    def __init__(self, as_of: _Optional[_Union[AsOf, _Mapping]] = ..., currency: _Optional[str] = ..., policy: _Optional[_Union[Policy, str]] = ..., disclosure: _Optional[_Union[Disclosure, str]] = ..., locations: _Optional[_Iterable[str]] = ..., lines: _Optional[_Iterable[_Union[QuotedLine, _Mapping]]] = ...) -> None: ...

class GetPricesRequest(_message.Message):
    __slots__ = ("account", "currency", "pricing_date", "lines", "explain", "min_version", "min_stream_ids", "policy")
    class MinStreamIdsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PRICING_DATE_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    MIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    MIN_STREAM_IDS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    account: str
    currency: str
    pricing_date: str
    lines: _containers.RepeatedCompositeFieldContainer[QuoteLine]
    explain: bool
    min_version: int
    min_stream_ids: _containers.ScalarMap[str, str]
    policy: Policy
    def __init__(self, account: _Optional[str] = ..., currency: _Optional[str] = ..., pricing_date: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[QuoteLine, _Mapping]]] = ..., explain: _Optional[bool] = ..., min_version: _Optional[int] = ..., min_stream_ids: _Optional[_Mapping[str, str]] = ..., policy: _Optional[_Union[Policy, str]] = ...) -> None: ...

class GetPricesResponse(_message.Message):
    __slots__ = ("as_of", "currency", "policy", "lines")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    as_of: AsOf
    currency: str
    policy: Policy
    lines: _containers.RepeatedCompositeFieldContainer[QuotedLine]
    def __init__(self, as_of: _Optional[_Union[AsOf, _Mapping]] = ..., currency: _Optional[str] = ..., policy: _Optional[_Union[Policy, str]] = ..., lines: _Optional[_Iterable[_Union[QuotedLine, _Mapping]]] = ...) -> None: ...

class GetAvailabilityRequest(_message.Message):
    __slots__ = ("account", "locations", "region", "lines", "min_version", "min_stream_ids")
    class MinStreamIdsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    MIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    MIN_STREAM_IDS_FIELD_NUMBER: _ClassVar[int]
    account: str
    locations: _containers.RepeatedScalarFieldContainer[str]
    region: str
    lines: _containers.RepeatedCompositeFieldContainer[QuoteLine]
    min_version: int
    min_stream_ids: _containers.ScalarMap[str, str]
    def __init__(self, account: _Optional[str] = ..., locations: _Optional[_Iterable[str]] = ..., region: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[QuoteLine, _Mapping]]] = ..., min_version: _Optional[int] = ..., min_stream_ids: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetAvailabilityResponse(_message.Message):
    __slots__ = ("as_of", "disclosure", "locations", "lines")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    DISCLOSURE_FIELD_NUMBER: _ClassVar[int]
    LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    as_of: AsOf
    disclosure: Disclosure
    locations: _containers.RepeatedScalarFieldContainer[str]
    lines: _containers.RepeatedCompositeFieldContainer[QuotedLine]
    def __init__(self, as_of: _Optional[_Union[AsOf, _Mapping]] = ..., disclosure: _Optional[_Union[Disclosure, str]] = ..., locations: _Optional[_Iterable[str]] = ..., lines: _Optional[_Iterable[_Union[QuotedLine, _Mapping]]] = ...) -> None: ...

class PromiseRequest(_message.Message):
    __slots__ = ("account", "region", "locations", "lines", "ship_complete", "max_shipments", "need_by", "min_version", "min_stream_ids")
    class MinStreamIdsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    SHIP_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    MAX_SHIPMENTS_FIELD_NUMBER: _ClassVar[int]
    NEED_BY_FIELD_NUMBER: _ClassVar[int]
    MIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    MIN_STREAM_IDS_FIELD_NUMBER: _ClassVar[int]
    account: str
    region: str
    locations: _containers.RepeatedScalarFieldContainer[str]
    lines: _containers.RepeatedCompositeFieldContainer[QuoteLine]
    ship_complete: bool
    max_shipments: int
    need_by: str
    min_version: int
    min_stream_ids: _containers.ScalarMap[str, str]
    def __init__(self, account: _Optional[str] = ..., region: _Optional[str] = ..., locations: _Optional[_Iterable[str]] = ..., lines: _Optional[_Iterable[_Union[QuoteLine, _Mapping]]] = ..., ship_complete: _Optional[bool] = ..., max_shipments: _Optional[int] = ..., need_by: _Optional[str] = ..., min_version: _Optional[int] = ..., min_stream_ids: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Allocation(_message.Message):
    __slots__ = ("location", "quantity", "ship_date", "shipment")
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    SHIP_DATE_FIELD_NUMBER: _ClassVar[int]
    SHIPMENT_FIELD_NUMBER: _ClassVar[int]
    location: str
    quantity: int
    ship_date: str
    shipment: int
    def __init__(self, location: _Optional[str] = ..., quantity: _Optional[int] = ..., ship_date: _Optional[str] = ..., shipment: _Optional[int] = ...) -> None: ...

class PromisedLine(_message.Message):
    __slots__ = ("line_id", "index", "sku", "quantity", "uom", "status", "base_qty", "allocations", "backordered_qty", "backorder_date", "complete_date", "meets_need_by")
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UOM_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BASE_QTY_FIELD_NUMBER: _ClassVar[int]
    ALLOCATIONS_FIELD_NUMBER: _ClassVar[int]
    BACKORDERED_QTY_FIELD_NUMBER: _ClassVar[int]
    BACKORDER_DATE_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_DATE_FIELD_NUMBER: _ClassVar[int]
    MEETS_NEED_BY_FIELD_NUMBER: _ClassVar[int]
    line_id: str
    index: int
    sku: str
    quantity: int
    uom: str
    status: LineStatus
    base_qty: int
    allocations: _containers.RepeatedCompositeFieldContainer[Allocation]
    backordered_qty: int
    backorder_date: str
    complete_date: str
    meets_need_by: bool
    def __init__(self, line_id: _Optional[str] = ..., index: _Optional[int] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ..., uom: _Optional[str] = ..., status: _Optional[_Union[LineStatus, str]] = ..., base_qty: _Optional[int] = ..., allocations: _Optional[_Iterable[_Union[Allocation, _Mapping]]] = ..., backordered_qty: _Optional[int] = ..., backorder_date: _Optional[str] = ..., complete_date: _Optional[str] = ..., meets_need_by: _Optional[bool] = ...) -> None: ...

class Shipment(_message.Message):
    __slots__ = ("location", "ship_date", "line_indexes")
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    SHIP_DATE_FIELD_NUMBER: _ClassVar[int]
    LINE_INDEXES_FIELD_NUMBER: _ClassVar[int]
    location: str
    ship_date: str
    line_indexes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, location: _Optional[str] = ..., ship_date: _Optional[str] = ..., line_indexes: _Optional[_Iterable[int]] = ...) -> None: ...

class PromiseResponse(_message.Message):
    __slots__ = ("as_of", "lines", "shipments", "complete_date", "meets_need_by")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    SHIPMENTS_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_DATE_FIELD_NUMBER: _ClassVar[int]
    MEETS_NEED_BY_FIELD_NUMBER: _ClassVar[int]
    as_of: AsOf
    lines: _containers.RepeatedCompositeFieldContainer[PromisedLine]
    shipments: _containers.RepeatedCompositeFieldContainer[Shipment]
    complete_date: str
    meets_need_by: bool
    def __init__(self, as_of: _Optional[_Union[AsOf, _Mapping]] = ..., lines: _Optional[_Iterable[_Union[PromisedLine, _Mapping]]] = ..., shipments: _Optional[_Iterable[_Union[Shipment, _Mapping]]] = ..., complete_date: _Optional[str] = ..., meets_need_by: _Optional[bool] = ...) -> None: ...

class QuoteStreamRequest(_message.Message):
    __slots__ = ("request_id", "quote")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    quote: QuoteRequest
    def __init__(self, request_id: _Optional[str] = ..., quote: _Optional[_Union[QuoteRequest, _Mapping]] = ...) -> None: ...

class QuoteStreamResponse(_message.Message):
    __slots__ = ("request_id", "quote", "error_code", "error_message")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    quote: QuoteResponse
    error_code: int
    error_message: str
    def __init__(self, request_id: _Optional[str] = ..., quote: _Optional[_Union[QuoteResponse, _Mapping]] = ..., error_code: _Optional[int] = ..., error_message: _Optional[str] = ...) -> None: ...

class WatchAvailabilityRequest(_message.Message):
    __slots__ = ("account", "skus", "locations", "region", "from_version")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SKUS_FIELD_NUMBER: _ClassVar[int]
    LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    account: str
    skus: _containers.RepeatedScalarFieldContainer[str]
    locations: _containers.RepeatedScalarFieldContainer[str]
    region: str
    from_version: int
    def __init__(self, account: _Optional[str] = ..., skus: _Optional[_Iterable[str]] = ..., locations: _Optional[_Iterable[str]] = ..., region: _Optional[str] = ..., from_version: _Optional[int] = ...) -> None: ...

class WatchedSku(_message.Message):
    __slots__ = ("sku", "index", "availability")
    SKU_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    sku: str
    index: int
    availability: Availability
    def __init__(self, sku: _Optional[str] = ..., index: _Optional[int] = ..., availability: _Optional[_Union[Availability, _Mapping]] = ...) -> None: ...

class WatchAvailabilityResponse(_message.Message):
    __slots__ = ("as_of", "snapshot", "disclosure", "locations", "skus")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    DISCLOSURE_FIELD_NUMBER: _ClassVar[int]
    LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    SKUS_FIELD_NUMBER: _ClassVar[int]
    as_of: AsOf
    snapshot: bool
    disclosure: Disclosure
    locations: _containers.RepeatedScalarFieldContainer[str]
    skus: _containers.RepeatedCompositeFieldContainer[WatchedSku]
    def __init__(self, as_of: _Optional[_Union[AsOf, _Mapping]] = ..., snapshot: _Optional[bool] = ..., disclosure: _Optional[_Union[Disclosure, str]] = ..., locations: _Optional[_Iterable[str]] = ..., skus: _Optional[_Iterable[_Union[WatchedSku, _Mapping]]] = ...) -> None: ...

class ReserveLine(_message.Message):
    __slots__ = ("sku", "location", "quantity", "uom")
    SKU_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UOM_FIELD_NUMBER: _ClassVar[int]
    sku: str
    location: str
    quantity: int
    uom: str
    def __init__(self, sku: _Optional[str] = ..., location: _Optional[str] = ..., quantity: _Optional[int] = ..., uom: _Optional[str] = ...) -> None: ...

class ReserveRequest(_message.Message):
    __slots__ = ("account", "hold_key", "lines", "ttl_ms")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    HOLD_KEY_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    account: str
    hold_key: str
    lines: _containers.RepeatedCompositeFieldContainer[ReserveLine]
    ttl_ms: int
    def __init__(self, account: _Optional[str] = ..., hold_key: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[ReserveLine, _Mapping]]] = ..., ttl_ms: _Optional[int] = ...) -> None: ...

class ReserveResponse(_message.Message):
    __slots__ = ("as_of", "hold_key", "expires_at_ms", "active", "shortfall")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    HOLD_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    SHORTFALL_FIELD_NUMBER: _ClassVar[int]
    as_of: AsOf
    hold_key: str
    expires_at_ms: int
    active: bool
    shortfall: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, as_of: _Optional[_Union[AsOf, _Mapping]] = ..., hold_key: _Optional[str] = ..., expires_at_ms: _Optional[int] = ..., active: _Optional[bool] = ..., shortfall: _Optional[_Iterable[int]] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("account", "hold_key")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    HOLD_KEY_FIELD_NUMBER: _ClassVar[int]
    account: str
    hold_key: str
    def __init__(self, account: _Optional[str] = ..., hold_key: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("as_of", "released")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    as_of: AsOf
    released: bool
    def __init__(self, as_of: _Optional[_Union[AsOf, _Mapping]] = ..., released: _Optional[bool] = ...) -> None: ...

class IngestRequest(_message.Message):
    __slots__ = ("payload", "encoding")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    encoding: Encoding
    def __init__(self, payload: _Optional[bytes] = ..., encoding: _Optional[_Union[Encoding, str]] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("index", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    reason: str
    def __init__(self, index: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class IngestResponse(_message.Message):
    __slots__ = ("as_of", "accepted", "stale", "rejections")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    as_of: AsOf
    accepted: int
    stale: int
    rejections: _containers.RepeatedCompositeFieldContainer[Rejection]
    def __init__(self, as_of: _Optional[_Union[AsOf, _Mapping]] = ..., accepted: _Optional[int] = ..., stale: _Optional[int] = ..., rejections: _Optional[_Iterable[_Union[Rejection, _Mapping]]] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StreamStats(_message.Message):
    __slots__ = ("stream", "last_id", "lag_entries", "freshness_ms", "applied", "dead_lettered", "gap_detected")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    LAST_ID_FIELD_NUMBER: _ClassVar[int]
    LAG_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    FRESHNESS_MS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_FIELD_NUMBER: _ClassVar[int]
    GAP_DETECTED_FIELD_NUMBER: _ClassVar[int]
    stream: str
    last_id: str
    lag_entries: int
    freshness_ms: int
    applied: int
    dead_lettered: int
    gap_detected: bool
    def __init__(self, stream: _Optional[str] = ..., last_id: _Optional[str] = ..., lag_entries: _Optional[int] = ..., freshness_ms: _Optional[int] = ..., applied: _Optional[int] = ..., dead_lettered: _Optional[int] = ..., gap_detected: _Optional[bool] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("as_of", "counts", "streams", "uptime_ms", "rss_bytes")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_MS_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    as_of: AsOf
    counts: _containers.ScalarMap[str, int]
    streams: _containers.RepeatedCompositeFieldContainer[StreamStats]
    uptime_ms: int
    rss_bytes: int
    def __init__(self, as_of: _Optional[_Union[AsOf, _Mapping]] = ..., counts: _Optional[_Mapping[str, int]] = ..., streams: _Optional[_Iterable[_Union[StreamStats, _Mapping]]] = ..., uptime_ms: _Optional[int] = ..., rss_bytes: _Optional[int] = ...) -> None: ...

class FreshnessRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FreshnessResponse(_message.Message):
    __slots__ = ("as_of", "staleness_ms", "serving", "writer_silence_ms")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    STALENESS_MS_FIELD_NUMBER: _ClassVar[int]
    SERVING_FIELD_NUMBER: _ClassVar[int]
    WRITER_SILENCE_MS_FIELD_NUMBER: _ClassVar[int]
    as_of: AsOf
    staleness_ms: int
    serving: bool
    writer_silence_ms: int
    def __init__(self, as_of: _Optional[_Union[AsOf, _Mapping]] = ..., staleness_ms: _Optional[int] = ..., serving: _Optional[bool] = ..., writer_silence_ms: _Optional[int] = ...) -> None: ...

class SnapshotRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SnapshotResponse(_message.Message):
    __slots__ = ("as_of", "path")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    as_of: AsOf
    path: str
    def __init__(self, as_of: _Optional[_Union[AsOf, _Mapping]] = ..., path: _Optional[str] = ...) -> None: ...
