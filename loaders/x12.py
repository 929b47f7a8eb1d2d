"""EDI X12 846 (Inventory Inquiry/Advice) and 832 (Price/Sales Catalog) → engine events.

:func:`parse` reads an interchange (or several, back to back) and returns the events of
``engine.events`` plus the loops it had to reject; :func:`to_events` is the strict form
that raises on the first problem. Errors are :class:`X12Error`, whose ``field`` names the
segment or element (``SE01``, ``CTP03``) and whose message and ``position`` give the
segment's position in its interchange (0 is the ISA).

Envelope
    Delimiters come from the ISA segment: the element separator is the character after
    ``ISA``, the component separator is ISA16 and the segment terminator is the character
    right after ISA16; the repetition separator is ISA11 from version 00402 on. Line breaks
    after terminators are ignored. The envelope is checked before any event is produced,
    and a mismatch rejects the whole interchange (what a TA1/997 would do): SE01 must
    count the segments from ST to SE, SE02 repeat ST02, GE01 count the transaction sets,
    GE02 repeat GS06, IEA01 count the groups and IEA02 repeat ISA13.

Version and time
    ``version_from="control"`` (default): ISA13 × 10^9 + the position of the loop's LIN
    segment in the interchange. Interchange control numbers only grow per sender, so a
    re-sent file replays harmlessly and a later document wins; within one document a later
    LIN for the same key wins. Partners that share keys but number independently should
    use ``version_from="datetime"``: the GS04/GS05 creation time in UTC seconds × 10^9 +
    the LIN position (one document per sender and second). ``ts_ms`` is BIA04/BIA05 for an
    846 and GS04/GS05 for an 832, read as UTC (X12 times carry no zone).

SKU
    The first LIN product id whose qualifier is in ``sku_qualifiers``, in that order
    (default SK, BP, IN, VP, VN, UP, EN: our own number first, then the vendor's).

846 → InventorySet and InboundSet, per LIN loop and location
    - Location: the N104 code of the nearest ``N1`` whose N101 is in ``location_entities``
      (WH warehouse, SF ship-from). An N1 in the heading is the default of every LIN loop;
      an N1 inside a LIN loop applies to the segments after it in that loop. ``SDQ``
      (``SDQ*EA*92*DAL*150*ATL*40``) gives quantities available for sale by location.
    - Quantities (QTY01): 17 on hand, 33 available for sale, 02 committed, 63 on order.
      A QTY's date is the first availability DTM (018 available, 017 estimated delivery,
      067 current schedule delivery, 069 promised, 002 delivery requested) after it, else
      one in the LIN loop before its first QTY. ``SCH`` lines under a QTY are dated
      receipts (SCH01 quantity, SCH02 unit, SCH05/SCH06 date qualifier and date).
    - Current stock is a 17/33/02 quantity without a date after the report date (BIA04):
      on_hand = QTY 17, else QTY 33; allocated = 17 − 33 when both are sent (so the
      engine's available_now equals the partner's 33), else QTY 02, else 0.
    - Future quantities (63 with a date, 17/33 dated after the report date, SCH lines)
      are inbound receipts of that date, summed per date. 63 without a date is ignored.
      InboundSet replaces a SKU-location's schedule, so one is emitted only where the
      document reports future quantities, unless ``clear_inbound`` (the partner's 846 is
      the whole truth: every reported location gets its schedule, possibly empty).
    - Quantities are converted to base units with ``uom_factor(sku, uom)`` (default: EA
      and an empty unit only); a unit without a factor is an error naming QTY03.

832 → PriceSet (and ItemUpsert with ``with_items``), per LIN loop
    - Each ``CTP`` whose CTP02 price identifier is in ``price_lists`` is a tier of that
      price list's entry: CTP03 unit price (× CTP07 when CTP06 gives a multiplier, rounded
      half away from zero to micros), CTP04 the tier's minimum quantity (0 when empty) in
      CTP05's unit, which is the price UoM and must be the same for every tier. Prices per
      hundred/thousand (CTP09 HP/TP) and multiple-price quantities (CTP11 > 1) are refused.
      CTPs with other identifiers (MSR suggested retail …) are ignored.
    - Currency: CUR02 of the heading, else ``currency``. Validity: DTM 007 (effective)
      and DTM 036 (expiration, the last valid day) of the heading, overridden by the LIN
      loop's own.
    - ``with_items=True`` also emits ItemUpsert(sku, base_uom, uoms={pack_uom: PO401})
      from PO4: only when the 832 is the item master (an ItemUpsert replaces the whole
      item, product group and sell rules included). PID descriptions have no engine field.

Values
    Numbers are X12 decimals (the R and N types): an optional minus sign, ASCII digits and
    at most one decimal point, at most 32 characters (the X12 dictionaries allow 15
    digits); exponents (``1E9``), ``NaN``, ``+``, ``_`` and non-ASCII digits are refused,
    so reading a number never costs more than its text. Counts (SE01, GE01, IEA01) and
    the interchange control number (ISA13) are ASCII digits, at most 10 and 9 of them.
    Dates are CCYYMMDD (or YYMMDD) and times HHMM[SS], ASCII digits. An expiration (DTM
    036) of 9999-12-31 has no exclusive end: the price is valid with no end.

Money is exact: X12 decimals (``12.345``) go to micros as exact rationals (a CTP07
multiplier too, then rounded half away from zero); more than 6 decimal places is an error.
Every event is checked with ``engine.validate.event_problem``; a loop with a problem is
rejected on its own.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine import events as ev
from engine.errors import InvalidInput, shown
from engine.validate import event_problem

__all__ = [
    "Interchange",
    "Segment",
    "Transaction",
    "X12Error",
    "X12Options",
    "X12Result",
    "each_only",
    "parse",
    "parse_interchanges",
    "to_events",
]

MICROS = 1_000_000
_POSITION_SCALE = 10**9  # segment positions in one interchange stay below this
_ISA_LENGTH = 106
_AVAILABLE_DATES = ("018", "017", "067", "069", "002")
_STOCK = ("17", "33", "02")
_ON_ORDER = "63"
_MAX_NUMBER = 32
_NUMBER = re.compile(rf"(?=.{{1,{_MAX_NUMBER}}}\Z)-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_COUNT = re.compile(r"[0-9]{1,10}")
_CONTROL = re.compile(r"[0-9]{1,9}")


class X12Error(InvalidInput):
    """A malformed interchange or loop. ``field`` names the segment or element."""

    def __init__(self, field: str, problem: str, position: int | None = None) -> None:
        where = f" (segment {position})" if position is not None else ""
        super().__init__(field, problem + where)
        self.position = position


def each_only(sku: str, uom: str) -> int | None:
    """Default ``uom_factor``: EA (or no unit) is the base unit; any other is unknown."""
    return 1 if uom in ("", "EA") else None


@dataclass(frozen=True, slots=True)
class X12Options:
    """How documents map to events (see the module docstring for each rule)."""

    sku_qualifiers: tuple[str, ...] = ("SK", "BP", "IN", "VP", "VN", "UP", "EN")
    location_entities: tuple[str, ...] = ("WH", "SF")
    uom_factor: Callable[[str, str], int | None] = each_only
    price_lists: Mapping[str, str] = field(default_factory=lambda: {"CAT": "LIST"})
    currency: str = "USD"
    version_from: str = "control"  # control | datetime
    clear_inbound: bool = False
    with_items: bool = False
    base_uom: str = "EA"
    pack_uom: str = "CA"

    def __post_init__(self) -> None:
        if self.version_from not in ("control", "datetime"):
            raise ValueError(f"version_from must be control or datetime: {self.version_from!r}")


# --- envelope ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment: ``self[1]`` is its first element ('' when absent)."""

    elements: tuple[str, ...]
    position: int  # 0-based index in its interchange (ISA is 0)
    component: str

    @property
    def tag(self) -> str:
        return self.elements[0]

    def __getitem__(self, index: int) -> str:
        return self.elements[index] if index < len(self.elements) else ""

    def first(self, index: int) -> str:
        """The first component of a composite element (a C001 unit of measure …)."""
        return self[index].split(self.component, 1)[0]

    def __len__(self) -> int:
        return len(self.elements)


@dataclass(frozen=True, slots=True)
class Transaction:
    """One transaction set: ST … SE, with its functional group's GS."""

    code: str  # ST01: 846, 832 …
    control: str  # ST02
    segments: tuple[Segment, ...]  # ST through SE
    group: Segment


@dataclass(frozen=True, slots=True)
class Interchange:
    """One ISA … IEA envelope, checked."""

    control: int  # ISA13
    sender: str
    receiver: str
    element: str
    component: str
    terminator: str
    repetition: str | None
    transactions: tuple[Transaction, ...]


def _header(text: str) -> tuple[str, str, str, str | None, list[str]]:
    if len(text) < _ISA_LENGTH or not text.startswith("ISA"):
        raise X12Error("ISA", "the interchange does not start with a complete ISA segment", 0)
    element = text[3]
    if element.isalnum() or element.isspace():
        raise X12Error("ISA", f"element separator {element!r} is not a delimiter", 0)
    parts = text.split(element, 16)
    if len(parts) < 17 or len(parts[16]) < 2:
        raise X12Error("ISA16", "the ISA segment has fewer than 16 elements", 0)
    component, terminator = parts[16][0], parts[16][1]
    if terminator.isalnum() or terminator in (element, component):
        raise X12Error("ISA16", f"segment terminator {terminator!r} is not a delimiter", 0)
    repetition = parts[11] if parts[12] >= "00402" and not parts[11].isalnum() else None
    return element, component, terminator, repetition, parts


def _check(condition: bool, field: str, problem: str, segment: Segment) -> None:
    if not condition:
        raise X12Error(field, problem, segment.position)


def _count(field: str, declared: str, actual: int, what: str, segment: Segment) -> None:
    _check(
        _COUNT.fullmatch(declared.strip()) is not None and int(declared) == actual,
        field,
        f"declares {declared!r} {what}, the envelope has {actual}",
        segment,
    )


def _segments(text: str, element: str, component: str, terminator: str) -> Iterator[Segment]:
    position = 0
    for raw in text.split(terminator):
        raw = raw.strip("\r\n")
        if not raw.strip():
            continue
        yield Segment(tuple(raw.split(element)), position, component)
        position += 1


def _interchange(text: str) -> tuple[Interchange, str]:
    """The first interchange of ``text`` and the text after its IEA."""
    element, component, terminator, repetition, isa = _header(text)
    pieces = text.split(terminator)
    end = next(
        (i for i, piece in enumerate(pieces) if piece.strip("\r\n \t").startswith("IEA")),
        None,
    )
    if end is None:
        raise X12Error("IEA", f"interchange {isa[13]} has no IEA trailer")
    body = terminator.join(pieces[: end + 1])
    rest = terminator.join(pieces[end + 1 :])
    segments = list(_segments(body, element, component, terminator))
    isa_segment, iea = segments[0], segments[-1]
    transactions: list[Transaction] = []
    groups = 0
    index = 1
    while index < len(segments) - 1:
        gs = segments[index]
        _check(gs.tag == "GS", "GS", f"expected a GS functional group, found {gs.tag}", gs)
        groups += 1
        index += 1
        sets = 0
        while index < len(segments) - 1 and segments[index].tag == "ST":
            st = segments[index]
            start = index
            while index < len(segments) - 1 and segments[index].tag not in ("SE", "GE"):
                index += 1
            se = segments[index]
            _check(se.tag == "SE", "SE", f"transaction set {st[2]} has no SE trailer", st)
            _count("SE01", se[1], index - start + 1, "segments", se)
            _check(se[2] == st[2], "SE02", f"{se[2]!r} does not match ST02 {st[2]!r}", se)
            transactions.append(Transaction(st[1], st[2], tuple(segments[start : index + 1]), gs))
            sets += 1
            index += 1
        ge = segments[index]
        _check(ge.tag == "GE", "GE", f"expected ST or GE in group {gs[6]}, found {ge.tag}", ge)
        _count("GE01", ge[1], sets, "transaction sets", ge)
        _check(ge[2] == gs[6], "GE02", f"{ge[2]!r} does not match GS06 {gs[6]!r}", ge)
        index += 1
    _count("IEA01", iea[1], groups, "functional groups", iea)
    _check(iea[2] == isa[13], "IEA02", f"{iea[2]!r} does not match ISA13 {isa[13]!r}", iea)
    _check(
        _CONTROL.fullmatch(isa[13]) is not None,
        "ISA13",
        f"{shown(isa[13])} is not a control number (at most 9 ASCII digits)",
        isa_segment,
    )
    if len(segments) >= _POSITION_SCALE:
        raise X12Error("IEA", f"{len(segments)} segments is too many for one interchange")
    interchange = Interchange(
        control=int(isa[13]),
        sender=isa[6].strip(),
        receiver=isa[8].strip(),
        element=element,
        component=component,
        terminator=terminator,
        repetition=repetition,
        transactions=tuple(transactions),
    )
    return interchange, rest


def parse_interchanges(data: bytes | str) -> list[Interchange]:
    """Every interchange in ``data``, with envelope counts checked. Raises X12Error."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        text = bytes(data).decode("latin-1")  # every byte is a character: never fails
    elif isinstance(data, str):
        text = data
    else:
        raise X12Error("ISA", f"expected bytes or text, got {type(data).__name__}")
    text = text.lstrip("\ufeff \t\r\n")
    interchanges = []
    while text:
        interchange, text = _interchange(text)
        interchanges.append(interchange)
        text = text.lstrip(" \t\r\n")
    if not interchanges:
        raise X12Error("ISA", "no interchange in the document")
    return interchanges


# --- values ------------------------------------------------------------------------------


def _decimal(segment: Segment, index: int, what: str) -> Decimal:
    """An X12 decimal element (see Values in the module docstring), exact."""
    text = segment[index].strip()
    if _NUMBER.fullmatch(text) is None:
        raise X12Error(
            f"{segment.tag}{index:02d}",
            f"{shown(text)} is not a {what} (X12 decimal: digits, '.', '-'; at most "
            f"{_MAX_NUMBER} characters)",
            segment.position,
        )
    return Decimal(text)


def _whole(segment: Segment, index: int) -> int:
    numerator, denominator = _decimal(segment, index, "quantity").as_integer_ratio()
    if denominator != 1:
        raise X12Error(
            f"{segment.tag}{index:02d}", f"{segment[index]} is not whole", segment.position
        )
    return numerator


def _micros(segment: Segment, index: int) -> int:
    numerator, denominator = _decimal(segment, index, "price").as_integer_ratio()
    micros, rest = divmod(numerator * MICROS, denominator)
    if rest:
        raise X12Error(
            f"{segment.tag}{index:02d}",
            f"{segment[index]} has more than 6 decimal places",
            segment.position,
        )
    return micros


def _date(segment: Segment, index: int) -> dt.date:
    text = segment[index].strip()
    try:
        if len(text) == 8 and text.isascii() and text.isdigit():
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        if len(text) == 6 and text.isascii() and text.isdigit():  # YYMMDD (ISA09, old GS04)
            return dt.date(2000 + int(text[:2]), int(text[2:4]), int(text[4:]))
    except ValueError:
        pass
    raise X12Error(
        f"{segment.tag}{index:02d}", f"{shown(text)} is not a CCYYMMDD date", segment.position
    )


def _instant(date_segment: Segment, date_index: int, time_index: int) -> dt.datetime:
    """UTC date-time of a CCYYMMDD date and an HHMM[SS] time element."""
    day = _date(date_segment, date_index)
    clock = date_segment[time_index].strip()[:6]
    try:
        if clock and not (clock.isascii() and clock.isdigit()):
            raise ValueError(clock)
        clock = clock.ljust(6, "0")
        moment = dt.time(int(clock[:2]), int(clock[2:4]), int(clock[4:6]))
    except ValueError as error:
        field = f"{date_segment.tag}{time_index:02d}"
        raise X12Error(
            field, f"{clock!r} is not an HHMM[SS] time", date_segment.position
        ) from error
    return dt.datetime.combine(day, moment, tzinfo=dt.UTC)


# --- shared loop handling ----------------------------------------------------------------


@dataclass
class X12Result:
    """What :func:`parse` produced: events, and the loops or sets it rejected."""

    events: list[Any] = field(default_factory=list)
    rejected: list[X12Error] = field(default_factory=list)
    transactions: int = 0


def _loops(segments: Sequence[Segment]) -> tuple[list[Segment], list[list[Segment]]]:
    """The heading (after ST, before the first LIN) and each LIN loop."""
    body = list(segments[1:-1])
    heading: list[Segment] = []
    loops: list[list[Segment]] = []
    for segment in body:
        if segment.tag == "LIN":
            loops.append([segment])
        elif segment.tag == "CTT":
            continue  # summary: the envelope counts are what we check
        elif loops:
            loops[-1].append(segment)
        else:
            heading.append(segment)
    return heading, loops


def _sku(lin: Segment, options: X12Options) -> str:
    ids = {lin[i]: lin[i + 1] for i in range(2, len(lin) - 1, 2) if lin[i] and lin[i + 1]}
    for qualifier in options.sku_qualifiers:
        if qualifier in ids:
            return ids[qualifier].strip()
    raise X12Error(
        "LIN",
        f"no product id with a qualifier in {'/'.join(options.sku_qualifiers)}",
        lin.position,
    )


def _validated(events: list[Any], where: Segment) -> list[Any]:
    for event in events:
        problem = event_problem(event)
        if problem is not None:
            field_name, _, detail = problem.partition(": ")
            raise X12Error(field_name, f"{detail or problem} in the LIN loop", where.position)
    return events


@dataclass(frozen=True, slots=True)
class _Stamp:
    base: int  # added to the LIN position
    ts_ms: int

    def version(self, lin: Segment) -> int:
        return self.base + lin.position


def _stamp(
    interchange: Interchange, tx: Transaction, options: X12Options, ts: dt.datetime
) -> _Stamp:
    if options.version_from == "control":
        base = interchange.control * _POSITION_SCALE
    else:  # datetime (checked by X12Options)
        created = _instant(tx.group, 4, 5)
        base = int(created.timestamp()) * _POSITION_SCALE
    return _Stamp(base, int(ts.timestamp() * 1000))


# --- 846 ---------------------------------------------------------------------------------


@dataclass
class _Quantity:
    qualifier: str
    qty: int  # base units
    location: str
    dates: list[dt.date] = field(default_factory=list)
    schedule: list[tuple[dt.date, int]] = field(default_factory=list)


def _location(n1: Segment, options: X12Options) -> str | None:
    if n1[1] not in options.location_entities:
        return None
    code = n1[4].strip()
    if not code:
        raise X12Error("N104", f"N1*{n1[1]} has no location code", n1.position)
    return code


def _base_qty(
    segment: Segment, qty_index: int, unit_index: int, sku: str, options: X12Options
) -> int:
    """Quantity element ``qty_index`` in base units, its unit in element ``unit_index``."""
    uom = segment.first(unit_index)
    qty = _whole(segment, qty_index)
    if qty < 0:
        raise X12Error(
            f"{segment.tag}{qty_index:02d}", f"negative quantity {qty}", segment.position
        )
    factor = options.uom_factor(sku, uom)
    if factor is None:
        raise X12Error(
            f"{segment.tag}{unit_index:02d}",
            f"unit {uom!r} of {sku} has no known factor to the base unit (X12Options.uom_factor)",
            segment.position,
        )
    return qty * factor


def _inventory_loop(
    loop: list[Segment], default: str | None, report: dt.date, stamp: _Stamp, options: X12Options
) -> list[Any]:
    lin = loop[0]
    sku = _sku(lin, options)
    location = default
    quantities: list[_Quantity] = []
    loop_dates: list[dt.date] = []
    current: _Quantity | None = None
    for segment in loop[1:]:
        if segment.tag == "N1":
            found = _location(segment, options)
            if found is not None:
                location, current = found, None
        elif segment.tag == "QTY":
            if location is None:
                raise X12Error(
                    "N1", f"QTY for {sku} has no warehouse: send N1*WH", segment.position
                )
            qty = _base_qty(segment, 2, 3, sku, options)
            current = _Quantity(segment[1], qty, location)
            quantities.append(current)
        elif segment.tag == "DTM" and segment[1] in _AVAILABLE_DATES:
            (current.dates if current is not None else loop_dates).append(_date(segment, 2))
        elif segment.tag == "SCH":
            if current is None:
                raise X12Error("SCH", "SCH outside a QTY loop", segment.position)
            if segment[5] in _AVAILABLE_DATES or not segment[5]:
                qty = _base_qty(segment, 1, 2, sku, options)
                current.schedule.append((_date(segment, 6), qty))
        elif segment.tag == "SDQ":
            for i in range(3, len(segment) - 1, 2):
                if segment[i]:
                    qty = _base_qty(segment, i + 1, 1, sku, options)
                    quantities.append(_Quantity("33", qty, segment[i].strip()))
            current = None
    stock: dict[str, dict[str, int]] = {}
    receipts: dict[str, dict[dt.date, int]] = {}
    for q in quantities:
        dated = q.dates[0] if q.dates else (loop_dates[0] if loop_dates else None)
        future = receipts.setdefault(q.location, {}) if q.schedule else None
        if future is not None:
            for day, qty in q.schedule:
                future[day] = future.get(day, 0) + qty
        elif q.qualifier == _ON_ORDER or (
            q.qualifier in ("17", "33") and dated is not None and dated > report
        ):
            if dated is not None:
                schedule = receipts.setdefault(q.location, {})
                schedule[dated] = schedule.get(dated, 0) + q.qty
        elif q.qualifier in _STOCK:
            held = stock.setdefault(q.location, {})
            if q.qualifier in held:
                raise X12Error(
                    "QTY01",
                    f"QTY*{q.qualifier} given twice for {sku} at {q.location}",
                    lin.position,
                )
            held[q.qualifier] = q.qty
    events: list[Any] = []
    for where, held in stock.items():
        on_hand = held.get("17", held.get("33"))
        if on_hand is None:
            raise X12Error("QTY01", f"{sku} at {where}: QTY*02 without QTY*17 or 33", lin.position)
        allocated = held.get("02", 0)
        if "17" in held and "33" in held:
            allocated = held["17"] - held["33"]
            if allocated < 0:
                raise X12Error(
                    "QTY02",
                    f"{sku} at {where}: available {held['33']} exceeds on hand {held['17']}",
                    lin.position,
                )
        events.append(
            ev.InventorySet(
                sku=sku,
                location=where,
                on_hand=on_hand,
                allocated=allocated,
                version=stamp.version(lin),
                ts_ms=stamp.ts_ms,
            )
        )
    inbound = set(receipts) | (set(stock) if options.clear_inbound else set())
    for where in sorted(inbound):
        schedule_of = tuple(sorted((d, q) for d, q in receipts.get(where, {}).items() if q > 0))
        events.append(
            ev.InboundSet(
                sku=sku,
                location=where,
                receipts=schedule_of,
                version=stamp.version(lin),
                ts_ms=stamp.ts_ms,
            )
        )
    return _validated(events, lin)


def _inventory(
    interchange: Interchange, tx: Transaction, options: X12Options, result: X12Result
) -> None:
    bia = tx.segments[1]
    _check(bia.tag == "BIA", "BIA", f"846 must start with BIA, found {bia.tag}", bia)
    if bia[4]:
        report = _date(bia, 4)
        created = _instant(bia, 4, 5)
    else:
        created = _instant(tx.group, 4, 5)
        report = created.date()
    stamp = _stamp(interchange, tx, options, created)
    heading, loops = _loops(tx.segments)
    default = None
    for segment in heading:
        if segment.tag == "N1":
            default = _location(segment, options) or default
    for loop in loops:
        try:
            result.events += _inventory_loop(loop, default, report, stamp, options)
        except X12Error as error:
            result.rejected.append(error)


# --- 832 ---------------------------------------------------------------------------------


def _validity(
    segments: Sequence[Segment], start: dt.date | None, end: dt.date | None
) -> tuple[dt.date | None, dt.date | None]:
    for segment in segments:
        if segment.tag == "DTM" and segment[1] == "007":
            start = _date(segment, 2)
        elif segment.tag == "DTM" and segment[1] == "036":
            last = _date(segment, 2)  # the last valid day → the engine's exclusive end
            end = None if last == dt.date.max else last + dt.timedelta(days=1)
    return start, end


def _ctp_price(ctp: Segment) -> int:
    if ctp[9] in ("HP", "TP"):
        raise X12Error(
            "CTP09", f"price basis {ctp[9]} (per hundred/thousand) is not supported", ctp.position
        )
    if ctp[11].strip() and _whole(ctp, 11) > 1:
        raise X12Error("CTP11", f"multiple-price quantity {ctp[11]} is not supported", ctp.position)
    if not ctp[6]:
        return _micros(ctp, 3)
    # exact: price × multiplier × 10^6 as one fraction, rounded half away from zero
    price_n, price_d = _decimal(ctp, 3, "price").as_integer_ratio()
    factor_n, factor_d = _decimal(ctp, 7, "multiplier").as_integer_ratio()
    numerator, denominator = price_n * factor_n * MICROS, price_d * factor_d
    micros, rest = divmod(abs(numerator), denominator)
    if 2 * rest >= denominator:
        micros += 1
    return micros if numerator >= 0 else -micros


def _catalog_loop(
    loop: list[Segment],
    currency: str,
    window: tuple[dt.date | None, dt.date | None],
    stamp: _Stamp,
    options: X12Options,
) -> list[Any]:
    lin = loop[0]
    sku = _sku(lin, options)
    valid_from, valid_to = _validity(loop, *window)
    tiers: dict[str, list[tuple[int, int, str, Segment]]] = {}
    pack = None
    for segment in loop[1:]:
        if segment.tag == "CTP":
            price_list = options.price_lists.get(segment[2])
            if price_list is None:
                continue
            minimum = _whole(segment, 4) if segment[4].strip() else 0
            tiers.setdefault(price_list, []).append(
                (minimum, _ctp_price(segment), segment.first(5), segment)
            )
        elif segment.tag == "PO4" and segment[1].strip():
            pack = _whole(segment, 1)
    events: list[Any] = []
    if options.with_items:
        uoms = {options.pack_uom: pack} if pack is not None and pack > 1 else {}
        events.append(
            ev.ItemUpsert(
                sku=sku,
                base_uom=options.base_uom,
                uoms=uoms,
                version=stamp.version(lin),
                ts_ms=stamp.ts_ms,
            )
        )
    for price_list, rows in tiers.items():
        rows.sort(key=lambda row: row[0])
        units = {row[2] for row in rows}
        if len(units) > 1:
            raise X12Error(
                "CTP05",
                f"{sku} {price_list}: tiers in different units {sorted(units)}",
                rows[0][3].position,
            )
        for (low, _, _, _), (high, _, _, segment) in itertools.pairwise(rows):
            if low == high:
                raise X12Error(
                    "CTP04", f"{sku} {price_list}: two tiers start at {high}", segment.position
                )
        events.append(
            ev.PriceSet(
                price_list=price_list,
                currency=currency,
                sku=sku,
                uom=rows[0][2] or None,
                tiers=tuple((minimum, micros) for minimum, micros, _, _ in rows),
                valid_from=valid_from,
                valid_to=valid_to,
                version=stamp.version(lin),
                ts_ms=stamp.ts_ms,
            )
        )
    return _validated(events, lin)


def _catalog(
    interchange: Interchange, tx: Transaction, options: X12Options, result: X12Result
) -> None:
    bct = tx.segments[1]
    _check(bct.tag == "BCT", "BCT", f"832 must start with BCT, found {bct.tag}", bct)
    stamp = _stamp(interchange, tx, options, _instant(tx.group, 4, 5))
    heading, loops = _loops(tx.segments)
    currency = options.currency
    for segment in heading:
        if segment.tag == "CUR" and segment[2].strip():
            currency = segment[2].strip().upper()
    window = _validity(heading, None, None)
    for loop in loops:
        try:
            result.events += _catalog_loop(loop, currency, window, stamp, options)
        except X12Error as error:
            result.rejected.append(error)


# --- entry points ------------------------------------------------------------------------

_READERS = {"846": _inventory, "832": _catalog}


def parse(data: bytes | str, options: X12Options | None = None) -> X12Result:
    """Events of every 846 and 832 in ``data``; bad loops and unsupported sets rejected.

    Envelope problems raise :class:`X12Error` (nothing of the interchange is used). O(segments).
    """
    options = options or X12Options()
    result = X12Result()
    for interchange in parse_interchanges(data):
        for tx in interchange.transactions:
            result.transactions += 1
            reader = _READERS.get(tx.code)
            if reader is None:
                result.rejected.append(
                    X12Error(
                        "ST01",
                        f"transaction set {tx.code} is not supported",
                        tx.segments[0].position,
                    )
                )
                continue
            try:
                reader(interchange, tx, options, result)
            except X12Error as error:
                result.rejected.append(error)
    return result


def to_events(data: bytes | str, options: X12Options | None = None) -> list[Any]:
    """Like :func:`parse`, but raise the first rejected loop's :class:`X12Error`."""
    result = parse(data, options)
    if result.rejected:
        raise result.rejected[0]
    return result.events
