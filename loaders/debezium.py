"""Debezium CDC adapter: one change event of an ERP table → the engine's canonical events.

:func:`change_events` takes one Debezium change event in the JSON envelope — with the
``{"schema": …, "payload": …}`` wrapper (``value.converter.schemas.enable=true``) or the
bare payload — and the table it came from, and returns the events of ``engine.events``.
It is stateless and pure: the same change always gives the same events, so a connector
that restarts and replays from its last committed offset produces the same events again,
and the engine ignores them (versions ≤ stored). Errors raise :class:`ChangeEventError`
naming the table and field; upstream sends the change to the dead-letter stream.

Envelope
    ``op`` is ``c`` (insert), ``u`` (update), ``r`` (snapshot read: treated as an insert)
    or ``d`` (delete; the row is ``before``). A tombstone (a null Kafka value, ``None``,
    empty bytes, or a wrapper whose payload is null) gives no events, as does ``op=m``
    (a logical-decoding message). ``op=t`` (truncate) is refused: a truncated price table
    cannot be replayed row by row, so it must be a full reload. An update whose
    before-image shows a different natural key (an ERP that renumbers a row in place) also
    deletes the old key. Flattened records (the ``ExtractNewRecordState`` SMT) are not
    envelopes and are not accepted.

Version and time
    The version is the connector's position of the change in the source log, an integer
    that only grows, so replays after a restart are harmless (:func:`source_version`):

    ==========  ==============================================================================
    postgresql  ``source.lsn`` (the WAL position of the change; each change has its own)
    mysql       ``((file index × 2^32 + pos) × 2^10) + min(row, 1023)``: ``pos`` is the start
                of the binlog rows event, ``row`` the row inside it (one statement may write
                the same key twice, e.g. ``INSERT … ON DUPLICATE KEY UPDATE``). The file
                index must stay below 2^21 (``mysql-bin.2097151``).
    sqlserver   ``change_lsn`` (``commit_lsn`` on snapshot reads, where change_lsn is null):
                ``VLF × 2^40 + block × 2^16 + slot``; a VLF sequence ≥ 2^23 or a block
                ≥ 2^24 does not fit 63 bits and is refused: use ``version_column``.
    ==========  ==============================================================================

    Other connectors (Oracle, Db2, MongoDB) need ``TableMapping.version_column``: a column
    holding a database-wide monotonic change number (an ERP change sequence, a SQL Server
    ``rowversion``); a delete then uses the before-image's value + 1. One key must be fed
    by one position scale: a bulk extract that seeds the same keys must carry the source
    position it is consistent with as its ``extract_version`` (``loaders.extract``).
    ``ts_ms`` is ``source.ts_ms`` (the commit time in the database), else the envelope's.

Tables (:data:`DEFAULT_TABLES`; the table name selects a :class:`TableMapping`)

    ==============  =================================================  ========================
    kind            columns (event field names)                        on delete
    ==============  =================================================  ========================
    items           sku, status, base_uom, uoms, product_group,        ItemUpsert(sku, BLOCKED)
                    min_order_qty, order_multiple,
                    replacement_cost_micros, cost_currency,
                    lead_time_days
    stock           sku, location, on_hand, allocated, safety_stock    InventorySet of zeros
    prices          price_list, currency, sku, uom, valid_from,        PriceDelete
                    valid_to, breaks | (min_qty, price_micros)
    contracts       contract, currency, priority, valid_from,          ContractDelete
                    valid_to, accounts, price_groups, all_accounts
    contract_lines  contract, sku | product_group, kind, uom,          ContractLineDelete
                    breaks | (min_qty, value)
    accounts        account, parent, price_groups, price_list,         ignored (no event)
                    currency, disclosure, disclosure_cap
    locations       location, active                                   LocationUpsert inactive
    product_groups  product_group, parent                              ignored (no event)
    ==============  =================================================  ========================

    A missing or null optional column takes the event's default (``status`` ACTIVE,
    ``base_uom`` EA, …). Key columns are required; deletes need them in the before-image
    (Postgres ``REPLICA IDENTITY FULL`` or a primary key on the natural key; MySQL
    ``binlog_row_image=FULL``). A TOASTed column Postgres left out of an update
    (``__debezium_unavailable_value``) is refused with that reason.

Multi-row children
    Engine events carry whole price entries and whole items, and a change event carries
    one row, so child rows that the ERP keeps one per tier or one per UoM cannot be
    mapped without keeping state. The adapter therefore wants them folded into the
    parent row: ``breaks`` is a JSON array (jsonb, a MySQL JSON column, or text) of
    ``[min_qty, value]`` pairs or ``{"min_qty": …, "<value>": …}`` objects (the value under
    the event field's name, its column's name or ``value``), and an
    item's alternate units are a ``uoms`` JSON object ``{"BX": 10, "CS": 100}``. Without a
    ``breaks`` column, a row is one tier: ``min_qty`` (default 0) and the price. An ERP that
    keeps ``item_uoms`` or per-tier rows should maintain such a column with a trigger or
    publish an outbox table; the ``item_uoms`` table is deliberately not mapped.

Values
    - Codes: strings (an integer item number becomes its decimal text). Code lists
      (``accounts``, ``price_groups``): an array, JSON array text, or a ``|``-separated
      string (``,`` when there is no ``|``: a MySQL ``SET`` column).
    - Integers (quantities, days, priority): an integer, or a DECIMAL whose value is whole.
    - Money: ``*_micros`` fields hold integer micros. List a field in
      ``TableMapping.amounts`` when its column is a decimal amount in the currency's major
      unit (``NUMERIC(12,4)`` 12.3450 → 12,345,000 micros). Decimals are exact
      (:class:`decimal.Decimal`): ``decimal.handling.mode=precise`` (base64 big-endian
      unscaled bytes with the scale from the schema, or a ``VariableScaleDecimal``) or
      ``string``. ``double`` mode is refused: a float never holds money. Without the schema
      wrapper a precise decimal's scale is unknown, so give it in ``TableMapping.scales``;
      a string is otherwise read as decimal text. A value with more than 6 decimal places
      of the major unit is refused, never rounded. Inside a ``breaks`` JSON text, numbers
      are decimal text and read exactly. Bounds that keep the work proportional to the
      message: a number is at most 64 characters of text, at most 10^18 in magnitude and
      has at most 18 decimal places (every quantity and amount the engine holds is an
      int64, so nothing beyond those could be stored); a precise decimal is at most 32
      bytes with a scale within ±100 (SQL decimals have at most 38 digits).
    - Dates: ``io.debezium.time.Date`` / Kafka Connect ``Date`` (days since 1970-01-01,
      also assumed for an integer without schema), ISO text, or a timestamp type
      (``Timestamp``, ``MicroTimestamp``, ``NanoTimestamp`` → its UTC date;
      ``ZonedTimestamp`` → its own date). ``valid_to`` is exclusive, like the engine's;
      set ``valid_to_inclusive`` when the ERP stores the last valid day (an inclusive
      9999-12-31 means no end). A date outside 0001-01-01..9999-12-31 is refused.
    - ``TableMapping.values`` translates ERP codes (``{"status": {"A": "ACTIVE"}}``).

Every event is checked with ``engine.validate.event_problem`` before it is returned, so a
change the engine would reject fails here, with its table in the message.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from engine import events as ev
from engine.errors import InvalidInput, shown
from engine.validate import event_problem

__all__ = [
    "DEFAULT_TABLES",
    "KINDS",
    "ChangeEventError",
    "TableMapping",
    "change_events",
    "source_version",
]

EPOCH = dt.date(1970, 1, 1)
_MIN_DAYS = (dt.date.min - EPOCH).days
_MAX_DAYS = (dt.date.max - EPOCH).days
_BINLOG_INDEX = re.compile(r"[0-9]{1,10}")
MICROS = 1_000_000
UNAVAILABLE = "__debezium_unavailable_value"  # Debezium's placeholder for unchanged TOAST
_MAX_VERSION = 2**63 - 1
_DECIMAL = "org.apache.kafka.connect.data.Decimal"
_VARIABLE_DECIMAL = "io.debezium.data.VariableScaleDecimal"
_DAYS = ("io.debezium.time.Date", "org.apache.kafka.connect.data.Date")
_EPOCH_UNITS = {
    "io.debezium.time.Timestamp": 1_000,
    "org.apache.kafka.connect.data.Timestamp": 1_000,
    "io.debezium.time.MicroTimestamp": 1_000_000,
    "io.debezium.time.NanoTimestamp": 1_000_000_000,
}


class ChangeEventError(InvalidInput):
    """A change event that cannot become engine events; ``field`` names the table and
    field (``prices.price_micros``) or the envelope part (``source.lsn``)."""


@dataclass(frozen=True, slots=True)
class TableMapping:
    """How one source table maps to events.

    ``kind`` is one of :data:`KINDS`. ``columns`` maps an event field to its source
    column when the names differ (fields not listed read the same-named column);
    ``constants`` gives fields the table has no column for (``{"currency": "USD"}``).
    ``amounts``: money fields whose column is a decimal amount in major units.
    ``scales``: column → scale of precise decimals, for events without the schema
    wrapper. ``values``: field → {source value → event value}. ``version_column``: use
    this column as the version instead of the log position. ``valid_to_inclusive``: the
    ERP's ``valid_to`` is the last valid day (the engine's is exclusive).
    """

    kind: str
    columns: Mapping[str, str] = field(default_factory=dict)
    constants: Mapping[str, Any] = field(default_factory=dict)
    amounts: frozenset[str] = frozenset()
    scales: Mapping[str, int] = field(default_factory=dict)
    values: Mapping[str, Mapping[Any, Any]] = field(default_factory=dict)
    version_column: str | None = None
    valid_to_inclusive: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown table kind {self.kind!r}; one of {', '.join(KINDS)}")


# --- reading one row ---------------------------------------------------------------------


def _list(value: Any) -> list[Any]:
    """``value`` when it is a JSON array, else [] (a schema is the sender's, so its parts
    may be anything)."""
    return value if isinstance(value, list) else []


def _schema_columns(schema: Any) -> dict[str, Mapping[str, Any]]:
    """Column → Kafka Connect field schema, from the envelope schema's before/after.

    A part of the schema that is not shaped like one (an object with ``field`` text) is
    skipped: its column is then read without a schema, and what its value holds is
    checked as for a message without the wrapper."""
    columns: dict[str, Mapping[str, Any]] = {}
    if not isinstance(schema, Mapping):
        return columns
    for part in _list(schema.get("fields")):
        if isinstance(part, Mapping) and part.get("field") in ("before", "after"):
            for column in _list(part.get("fields")):
                if isinstance(column, Mapping) and isinstance(column.get("field"), str):
                    columns.setdefault(column["field"], column)
    return columns


#: Bounds on what a number may cost to read exactly (see the module docstring, Values).
_MAX_NUMBER_TEXT = 64
_MAX_MAGNITUDE = 18  # adjusted exponent: |value| < 10^19, past every int64 field
_MAX_DECIMAL_PLACES = 18
_MAX_DECIMAL_BYTES = 32
_MAX_SCALE = 100


def _unscaled(raw: Any, scale: Any, where: str) -> Decimal:
    """A precise decimal: base64 big-endian two's-complement unscaled bytes and a scale."""
    if isinstance(scale, bool) or not isinstance(scale, int) or abs(scale) > _MAX_SCALE:
        raise ChangeEventError(where, f"scale {shown(scale)} is not an integer", "-100..100")
    if not isinstance(raw, (bytes, str)):
        raise ChangeEventError(where, f"{shown(raw)} is not base64 decimal bytes")
    try:
        data = raw if isinstance(raw, bytes) else base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ChangeEventError(where, f"{shown(raw)} is not base64 decimal bytes") from error
    if len(data) > _MAX_DECIMAL_BYTES:
        raise ChangeEventError(
            where, f"{len(data)} bytes of decimal", f"at most {_MAX_DECIMAL_BYTES}"
        )
    unscaled = int.from_bytes(data, "big", signed=True)
    return Decimal(f"{unscaled}E-{scale}")  # text construction: exact, no context rounding


class _Row:
    """One before/after image, read through a :class:`TableMapping`."""

    def __init__(
        self,
        table: str,
        mapping: TableMapping,
        row: Mapping[str, Any],
        schema: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.table = table
        self.mapping = mapping
        self.row = row
        self.schema = schema

    def error(self, name: str, problem: str, limit: str | None = None) -> ChangeEventError:
        return ChangeEventError(f"{self.table}.{name}", problem, limit)

    def column(self, name: str) -> str:
        return self.mapping.columns.get(name, name)

    def has(self, name: str) -> bool:
        return name in self.mapping.constants or self.column(name) in self.row

    def raw(self, name: str, required: bool = False) -> Any:
        """The decoded value of event field ``name``: None when absent or null."""
        if name in self.mapping.constants:
            value = self.mapping.constants[name]
        else:
            column = self.column(name)
            value = self._decode(name, column, self.row.get(column))
        if value is not None and name in self.mapping.values:
            translations = self.mapping.values[name]
            # only a scalar can be a key; an array or object never has a translation
            if isinstance(value, (str, int)) and value in translations:
                value = translations[value]
            elif isinstance(value, (str, int)) and str(value) in translations:
                value = translations[str(value)]
            else:
                raise self.error(name, f"{shown(value)} has no translation in TableMapping.values")
        if value is None and required:
            raise self.error(name, f"required column {self.column(name)!r} is missing or null")
        return value

    def _decode(self, name: str, column: str, value: Any) -> Any:
        if value is None:
            return None
        if value == UNAVAILABLE:
            raise self.error(
                name, "unchanged TOASTed value left out of the event (REPLICA IDENTITY FULL)"
            )
        spec = self.schema.get(column)
        logical = spec.get("name") if spec else None
        if not isinstance(logical, str):
            logical = None
        where = f"{self.table}.{name}"
        try:
            if logical == _DECIMAL:
                parameters = (spec or {}).get("parameters")
                scale = parameters.get("scale", 0) if isinstance(parameters, Mapping) else 0
                return _unscaled(value, _whole(self.error, f"{name}.scale", scale), where)
            if logical == _VARIABLE_DECIMAL:
                if not isinstance(value, Mapping):
                    raise self.error(name, f"{shown(value)} is not a {{scale, value}} object")
                scale = _whole(self.error, f"{name}.scale", value.get("scale"))
                return _unscaled(value.get("value"), scale, where)
            if logical in _DAYS:
                return _day(self.error, name, _whole(self.error, name, value))
            if logical in _EPOCH_UNITS:
                seconds = _whole(self.error, name, value) // _EPOCH_UNITS[logical]
                return dt.datetime.fromtimestamp(seconds, dt.UTC).date()
        except (OverflowError, ValueError, OSError) as error:  # a timestamp past year 9999
            raise self.error(name, f"{shown(value)} does not match its schema {logical}") from error
        if spec is None and column in self.mapping.scales and isinstance(value, str):
            return _unscaled(value, self.mapping.scales[column], f"{self.table}.{name}")
        return value

    # typed readers: each returns None for an absent or null column unless required

    def code(self, name: str, required: bool = False) -> str | None:
        value = self.raw(name, required)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise self.error(name, f"must be text, got {type(value).__name__} {value!r}")

    def key(self, name: str) -> str:
        """A required code (part of the entity's key)."""
        value = self.code(name, required=True)
        assert value is not None  # required=True raised otherwise
        return value

    def upper(self, name: str) -> str | None:
        value = self.code(name)
        return None if value is None else value.strip().upper()

    def integer(self, name: str, required: bool = False) -> int | None:
        value = self.raw(name, required)
        return None if value is None else _whole(self.error, name, value)

    def money(self, name: str, required: bool = False) -> int | None:
        value = self.raw(name, required)
        return None if value is None else self.amount(name, value)

    def amount(self, name: str, value: Any) -> int:
        """Micros of a money value: integer micros, or a decimal major-unit amount when
        ``name`` is in ``TableMapping.amounts``."""
        number = _number(self.error, name, value)
        if name not in self.mapping.amounts:
            return _whole(self.error, name, number)
        numerator, denominator = number.as_integer_ratio()
        scaled, rest = divmod(numerator * MICROS, denominator)
        if rest:
            raise self.error(name, f"{value} has more than 6 decimal places of the major unit")
        return scaled

    def date(self, name: str) -> dt.date | None:
        value = self.raw(name)
        if value is None or isinstance(value, dt.date):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return _day(self.error, name, value)  # Debezium's default for DATE columns
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value[:10])
            except ValueError:
                pass
        raise self.error(name, f"{value!r} is not a date (days since 1970-01-01 or ISO text)")

    def flag(self, name: str) -> bool | None:
        value = self.raw(name)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUTH:
            return _TRUTH[value.strip().lower()]
        raise self.error(name, f"{value!r} is not a boolean")

    def codes(self, name: str) -> tuple[str, ...] | None:
        value = self.raw(name)
        if value is None:
            return None
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                value = self.json(name, text)
            elif not text:
                return ()
            else:
                value = text.split("|") if "|" in text else text.split(",")
        if not isinstance(value, (list, tuple)):
            raise self.error(name, f"{value!r} is not a list of codes")
        out = []
        for item in value:
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str):
                raise self.error(name, f"{item!r} in the list is not a code")
            out.append(item.strip())
        return tuple(out)

    def json(self, name: str, text: str) -> Any:
        try:
            return json.loads(text, parse_float=Decimal)  # numbers stay exact decimal text
        except ValueError as error:
            raise self.error(name, f"not valid JSON: {shown(str(error), quote=False)}") from error
        except RecursionError:
            raise self.error(name, "not valid JSON: nested too deeply") from None

    def structured(self, name: str) -> Any:
        """A JSON column: already decoded (array/object) or JSON text."""
        value = self.raw(name)
        if isinstance(value, str):
            return self.json(name, value)
        return value

    def uoms(self, name: str) -> dict[str, int] | None:
        value = self.structured(name)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.error(name, 'must be a JSON object of UoM → factor, e.g. {"BX": 10}')
        return {str(code): _whole(self.error, f"{name}.{code}", f) for code, f in value.items()}

    def tiers(self, value_field: str, kind: str = "NET") -> tuple[tuple[int, int], ...]:
        """Tiers from the ``breaks`` column, or one tier from ``min_qty`` and the value."""
        breaks = self.structured("breaks") if self.has("breaks") else None
        if breaks is None:
            minimum = self.integer("min_qty") or 0
            raw = self.raw(value_field, required=True)
            return ((minimum, self.tier_value(value_field, kind, raw)),)
        if not isinstance(breaks, list) or not breaks:
            raise self.error("breaks", "must be a non-empty JSON array of tiers")
        tiers = []
        for i, tier in enumerate(breaks):
            where = f"breaks[{i}]"
            if isinstance(tier, Mapping):
                minimum_raw = tier.get("min_qty", 0)
                names = (value_field, self.column(value_field), "value")
                raw = next((tier[n] for n in names if tier.get(n) is not None), None)
            elif isinstance(tier, list) and len(tier) == 2:
                minimum_raw, raw = tier
            else:
                raise self.error(where, f"{tier!r} is not [min_qty, value] or an object")
            if raw is None:
                raise self.error(where, f"has no {value_field!r}")
            minimum = _whole(self.error, f"{where}.min_qty", minimum_raw)
            tiers.append((minimum, self.tier_value(value_field, kind, raw)))
        return tuple(sorted(tiers))

    def tier_value(self, value_field: str, kind: str, raw: Any) -> int:
        if kind == "NET":
            return self.amount(value_field, raw)
        return _whole(self.error, value_field, raw)  # basis points


_TRUTH = {"true": True, "t": True, "y": True, "yes": True, "1": True,
          "false": False, "f": False, "n": False, "no": False, "0": False}  # fmt: skip
_Err = Callable[..., ChangeEventError]  # (name, problem[, limit])


def _day(error: _Err, name: str, days: int) -> dt.date:
    """The date ``days`` after 1970-01-01, or an error naming ``name`` for one outside
    what a date can hold (0001-01-01..9999-12-31)."""
    if not _MIN_DAYS <= days <= _MAX_DAYS:
        raise error(
            name, f"{days} days since 1970-01-01 is not a date", f"{_MIN_DAYS}..{_MAX_DAYS}"
        )
    return EPOCH + dt.timedelta(days=days)


def _decimal_places(number: Decimal) -> int:
    """How many decimal places ``number`` has, trailing zeros aside (from its digits, not
    through a context, whose exponent limits would round 1E-999999999 to 0)."""
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite: checked by the caller
    significant = "".join(map(str, digits)).rstrip("0")
    if not significant:  # zero
        return 0
    return max(0, -(exponent + len(digits) - len(significant)))


def _number(error: _Err, name: str, value: Any) -> Decimal:
    """An exact number: int, Decimal or decimal text; floats are refused. Bounded (module
    docstring, Values), so that making it exact never costs more than the text."""
    if isinstance(value, bool):
        raise error(name, f"{value!r} is not a number")
    if isinstance(value, float):
        raise error(
            name,
            f"{value!r} is a floating-point number (decimal.handling.mode=double?): "
            "use precise or string so amounts stay exact",
        )
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        if len(value) > _MAX_NUMBER_TEXT:
            raise error(
                name, f"{shown(value)} is not a number", f"at most {_MAX_NUMBER_TEXT} characters"
            )
        try:
            number = Decimal(value.strip())
        except InvalidOperation as error_:
            raise error(
                name,
                f"{value!r} is not decimal text (precise decimals without the schema "
                "wrapper need their scale in TableMapping.scales)",
            ) from error_
    else:
        raise error(name, f"{shown(value)} is not a number")
    if not number.is_finite():
        raise error(name, f"{shown(value)} is not a finite number")
    if number and number.adjusted() > _MAX_MAGNITUDE:
        raise error(name, f"{shown(value)} out of range", "below 10^19")
    if _decimal_places(number) > _MAX_DECIMAL_PLACES:
        raise error(
            name, f"{shown(value)} has too many decimal places", f"at most {_MAX_DECIMAL_PLACES}"
        )
    return number


def _whole(error: _Err, name: str, value: Any) -> int:
    number = _number(error, name, value)
    numerator, denominator = number.as_integer_ratio()
    if denominator != 1:
        raise error(name, f"{value} is not a whole number")
    return numerator


# --- one builder per kind ----------------------------------------------------------------


def _put(fields: dict[str, Any], **values: Any) -> dict[str, Any]:
    """``fields`` plus the values that are not None (None: the event's default)."""
    fields.update({k: v for k, v in values.items() if v is not None})
    return fields


def _window(row: _Row) -> dict[str, Any]:
    valid_to = row.date("valid_to")
    if valid_to is not None and row.mapping.valid_to_inclusive:
        # the last valid day → the engine's exclusive end; through 9999-12-31 is no end
        valid_to = None if valid_to == dt.date.max else valid_to + dt.timedelta(days=1)
    return {"valid_from": row.date("valid_from"), "valid_to": valid_to}


def _items(row: _Row, stamp: dict[str, Any], deleted: bool) -> list[Any]:
    if deleted:  # no ItemDelete: a deleted item stays known and is not orderable
        return [ev.ItemUpsert(sku=row.key("sku"), status="BLOCKED", **stamp)]
    base_uom = row.upper("base_uom")
    uoms = row.uoms("uoms")
    if uoms is not None and uoms.get(base_uom or "EA") == 1:  # ERP UoM tables list the base too
        uoms = {code: factor for code, factor in uoms.items() if code != (base_uom or "EA")}
    fields = _put(
        {"sku": row.key("sku"), **stamp},
        status=row.upper("status"),
        base_uom=base_uom,
        uoms=uoms,
        product_group=row.code("product_group"),
        min_order_qty=row.integer("min_order_qty"),
        order_multiple=row.integer("order_multiple"),
        replacement_cost_micros=row.money("replacement_cost_micros"),
        cost_currency=row.upper("cost_currency"),
        lead_time_days=row.integer("lead_time_days"),
    )
    return [ev.ItemUpsert(**fields)]


def _stock(row: _Row, stamp: dict[str, Any], deleted: bool) -> list[Any]:
    fields = {"sku": row.key("sku"), "location": row.key("location"), **stamp}
    if not deleted:
        _put(
            fields,
            on_hand=row.integer("on_hand"),
            allocated=row.integer("allocated"),
            safety_stock=row.integer("safety_stock"),
        )
    return [ev.InventorySet(**fields)]


def _prices(row: _Row, stamp: dict[str, Any], deleted: bool) -> list[Any]:
    key: dict[str, Any] = {
        "price_list": row.key("price_list"),
        "currency": row.key("currency").strip().upper(),
        "sku": row.key("sku"),
    }
    if deleted:
        return [ev.PriceDelete(**key, **stamp)]
    fields = _put({**key, **stamp}, uom=row.upper("uom"), **_window(row))
    return [ev.PriceSet(**fields, tiers=row.tiers("price_micros"))]


def _contracts(row: _Row, stamp: dict[str, Any], deleted: bool) -> list[Any]:
    contract = row.key("contract")
    if deleted:
        return [ev.ContractDelete(contract=contract, **stamp)]
    fields = _put(
        {"contract": contract, **stamp},
        currency=row.upper("currency"),
        priority=row.integer("priority"),
        accounts=row.codes("accounts"),
        price_groups=row.codes("price_groups"),
        all_accounts=row.flag("all_accounts"),
        **_window(row),
    )
    return [ev.ContractUpsert(**fields)]


def _contract_lines(row: _Row, stamp: dict[str, Any], deleted: bool) -> list[Any]:
    target: dict[str, Any] = {"sku": row.code("sku"), "product_group": row.code("product_group")}
    if (target["sku"] is None) == (target["product_group"] is None):
        raise row.error("sku", "exactly one of sku and product_group must be set")
    key = {"contract": row.key("contract"), **target}
    if deleted:
        return [ev.ContractLineDelete(**key, **stamp)]
    kind = row.upper("kind") or "NET"
    fields = _put({**key, **stamp, "kind": kind}, uom=row.upper("uom"))
    return [ev.ContractLineSet(**fields, tiers=row.tiers("value", kind))]


def _accounts(row: _Row, stamp: dict[str, Any], deleted: bool) -> list[Any]:
    account = row.key("account")
    if deleted:
        return []  # the engine has no AccountDelete: block the account in the ERP instead
    fields = _put(
        {"account": account, **stamp},
        parent=row.code("parent"),
        price_groups=row.codes("price_groups"),
        price_list=row.code("price_list"),
        currency=row.upper("currency"),
        disclosure=row.upper("disclosure"),
        disclosure_cap=row.integer("disclosure_cap"),
    )
    return [ev.AccountUpsert(**fields)]


def _locations(row: _Row, stamp: dict[str, Any], deleted: bool) -> list[Any]:
    fields = _put({"location": row.key("location"), **stamp}, active=row.flag("active"))
    if deleted:
        fields["active"] = False
    return [ev.LocationUpsert(**fields)]


def _product_groups(row: _Row, stamp: dict[str, Any], deleted: bool) -> list[Any]:
    group = row.key("product_group")
    if deleted:
        return []  # no ProductGroupDelete: a group nothing points at is harmless
    fields = _put({"product_group": group, **stamp}, parent=row.code("parent"))
    return [ev.ProductGroupUpsert(**fields)]


_Builder = Callable[[_Row, dict[str, Any], bool], list[Any]]
_BUILDERS: dict[str, _Builder] = {
    "items": _items,
    "stock": _stock,
    "prices": _prices,
    "contracts": _contracts,
    "contract_lines": _contract_lines,
    "accounts": _accounts,
    "locations": _locations,
    "product_groups": _product_groups,
}
#: The kinds of table a :class:`TableMapping` can describe.
KINDS: tuple[str, ...] = tuple(_BUILDERS)
#: The natural key of each kind: an update that changes it deletes the old key.
_KEYS: dict[str, tuple[str, ...]] = {
    "items": ("sku",),
    "stock": ("sku", "location"),
    "prices": ("price_list", "currency", "sku"),
    "contracts": ("contract",),
    "contract_lines": ("contract", "sku", "product_group"),
    "accounts": ("account",),
    "locations": ("location",),
    "product_groups": ("product_group",),
}

#: Tables of an ERP export like ours (``engine.bulk.EXTRACT_SCHEMA``), by table name.
DEFAULT_TABLES: Mapping[str, TableMapping] = {kind: TableMapping(kind) for kind in KINDS}


# --- envelope and position ---------------------------------------------------------------


def _mysql_file_index(name: Any) -> int:
    text = str(name)
    suffix = text.rsplit(".", 1)[-1]
    if not _BINLOG_INDEX.fullmatch(suffix):
        raise ChangeEventError("source.file", f"{text!r} has no binlog index suffix")
    return int(suffix)


def _sqlserver_lsn(text: Any, where: str) -> int:
    parts = str(text).split(":")
    try:
        vlf, block, slot = (int(p, 16) for p in parts)
    except ValueError as error:
        raise ChangeEventError(
            where, f"{text!r} is not an LSN like 00000027:00000758:0005"
        ) from error
    if vlf >= 2**23 or block >= 2**24 or slot >= 2**16:
        raise ChangeEventError(
            where, f"{text} does not fit a 63-bit version: set TableMapping.version_column"
        )
    return (vlf << 40) | (block << 16) | slot


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ChangeEventError(where, f"{value!r} is not an integer position")
    try:
        return int(value)
    except ValueError as error:
        raise ChangeEventError(where, f"{value!r} is not an integer position") from error


def source_version(source: Mapping[str, Any]) -> int:
    """The change's log position as a monotonic integer (see the module docstring).

    Raises :class:`ChangeEventError` when the connector is unknown or the position does
    not fit the engine's 63-bit version.
    """
    connector = source.get("connector")
    if connector == "postgresql":
        if source.get("lsn") is None:
            raise ChangeEventError("source.lsn", "missing")
        version = _integer(source["lsn"], "source.lsn")
    elif connector in ("mysql", "mariadb"):
        if source.get("file") is None or source.get("pos") is None:
            raise ChangeEventError("source.pos", "file and pos are required")
        index = _mysql_file_index(source["file"])
        pos = _integer(source["pos"], "source.pos")
        row = _integer(source.get("row") or 0, "source.row")
        if index >= 2**21 or not 0 <= pos < 2**32:
            raise ChangeEventError(
                "source.file", "binlog position beyond the 63-bit version: use version_column"
            )
        version = (((index << 32) + pos) << 10) + min(max(row, 0), 1023)
    elif connector == "sqlserver":
        where = "source.change_lsn" if source.get("change_lsn") else "source.commit_lsn"
        lsn = source.get("change_lsn") or source.get("commit_lsn")
        if lsn is None:
            raise ChangeEventError("source.change_lsn", "missing (and no commit_lsn)")
        version = _sqlserver_lsn(lsn, where)
    else:
        raise ChangeEventError(
            "source.connector",
            f"{connector!r} has no built-in position: set TableMapping.version_column",
        )
    if not 0 <= version <= _MAX_VERSION:
        raise ChangeEventError("source", f"position {version} is outside 0..2^63-1")
    return version


def _row_version(row: _Row, column: str, spec: Mapping[str, Any] | None) -> int:
    value = row.row.get(column)
    if value is None:
        raise row.error(column, "version column is missing or null")
    if isinstance(value, str) and ((spec or {}).get("type") == "bytes" or not value.isdigit()):
        try:  # a binary change number such as SQL Server rowversion: big-endian unsigned
            return int.from_bytes(base64.b64decode(value, validate=True), "big")
        except (binascii.Error, ValueError) as error:
            raise row.error(column, f"{value!r} is neither an integer nor bytes") from error
    return _integer(value, f"{row.table}.{column}")


def _load(message: Any) -> Any:
    if message is None or isinstance(message, Mapping):
        return message
    if isinstance(message, (bytes, bytearray, memoryview, str)):
        if not (message.strip() if isinstance(message, str) else bytes(message).strip()):
            return None  # an empty Kafka value: a tombstone
        try:
            return msgspec.json.decode(message)
        except (msgspec.DecodeError, UnicodeError) as error:
            raise ChangeEventError(
                "message", f"not JSON: {shown(str(error), quote=False)}"
            ) from error
        except RecursionError:
            raise ChangeEventError("message", "not JSON: nested too deeply") from None
    raise ChangeEventError("message", f"{type(message).__name__} is not a JSON change event")


def change_events(
    message: Any,
    table: str | None = None,
    *,
    tables: Mapping[str, TableMapping] = DEFAULT_TABLES,
) -> list[Any]:
    """Engine events for one Debezium change event (JSON bytes/text or a decoded dict).

    ``table`` picks the :class:`TableMapping` (default: ``source.table``). Returns [] for
    tombstones, logical messages and deletes the engine has no event for. Raises
    :class:`ChangeEventError` naming the field. O(columns + tiers).
    """
    document = _load(message)
    if document is None:
        return []
    if not isinstance(document, Mapping):
        raise ChangeEventError("message", f"{type(document).__name__} is not a change event object")
    schema: Any = None
    if "payload" in document and set(document) <= {"schema", "payload"}:
        schema, document = document.get("schema"), document["payload"]
        if document is None:
            return []
    if not isinstance(document, Mapping):
        raise ChangeEventError("payload", "is not a change event object")
    op = document.get("op")
    if op == "m":
        return []
    if op == "t":
        raise ChangeEventError("op", "truncate cannot be replayed row by row: reload the table")
    if op not in ("c", "u", "d", "r"):
        raise ChangeEventError("op", f"{op!r} is not one of c, u, d, r")
    source = document.get("source")
    if not isinstance(source, Mapping):
        raise ChangeEventError("source", "missing: the change has no log position")
    name = table or source.get("table")
    if not isinstance(name, str) or name not in tables:
        known = ", ".join(sorted(tables))
        raise ChangeEventError("table", f"{name!r} has no mapping (mapped: {known})")
    mapping = tables[name]
    columns = _schema_columns(schema)
    image = document.get("before" if op == "d" else "after")
    if not isinstance(image, Mapping):
        part = "before" if op == "d" else "after"
        raise ChangeEventError(f"{name}.{part}", f"op={op} needs the {part} image")
    row = _Row(name, mapping, image, columns)
    if mapping.version_column is not None:
        version = _row_version(row, mapping.version_column, columns.get(mapping.version_column))
        version += 1 if op == "d" else 0  # the delete comes after the row's last change
    else:
        version = source_version(source)
    ts_ms = source.get("ts_ms") or document.get("ts_ms") or 0
    stamp = {"version": version, "ts_ms": _integer(ts_ms, "source.ts_ms")}
    build = _BUILDERS[mapping.kind]
    events = build(row, stamp, op == "d")
    before = document.get("before")
    if op == "u" and isinstance(before, Mapping):
        old = _Row(name, mapping, before, columns)
        keys = _KEYS[mapping.kind]
        if all(old.has(k) for k in keys) and any(old.raw(k) != row.raw(k) for k in keys):
            events = build(old, stamp, True) + events
    for event in events:
        problem = event_problem(event)
        if problem is not None:
            field_name, _, detail = problem.partition(": ")
            raise ChangeEventError(f"{name}.{field_name}", detail or problem)
    return events
