# cython: language_level=3
"""Protobuf wire encoding of the hot answers: Quote, GetPrices, GetAvailability (and so
QuoteStream, which wraps a QuoteResponse).

Building a per-line answer through protobuf's Python classes costs more than computing it
(one Python call per field per line). This module writes the same bytes straight from the
quote kernel's result blocks (``engine._kernels._quote``: rows named by ``LINE_ROWS``) and
the state's code arenas, in one pass, without a Python object per line. The layout it
writes is ``proto/pacache/v1/pacache.proto``'s, field by field; proto3 rules apply (a
scalar at its default is not written, a sub-message that is present is written even when
empty). ``tests/unit/test_wire.py`` decodes its output with the official protobuf runtime
and compares every field with ``server.convert.build_answer``, a plain construction of the
same message, over random results.

Sub-messages are written length-first the usual way for a single pass: room for a 3-byte
length is left, the body written, and the body moved down if its length needs fewer bytes.
"""

from cpython.bytes cimport PyBytes_AS_STRING
from cpython.object cimport PyObject
from cpython.ref cimport Py_XDECREF
from libc.stdint cimport int8_t, int16_t, int64_t, uint8_t, uint64_t
from libc.string cimport memchr, memcpy, memmove

cdef extern from "Python.h":
    PyObject *PyBytes_FromStringAndSize(const char *v, Py_ssize_t size) except NULL
    int _PyBytes_Resize(PyObject **bytes, Py_ssize_t size) except -1
    const char *PyUnicode_AsUTF8AndSize(object text, Py_ssize_t *size) except NULL

from engine._kernels._quote import LINE_ROWS

# kinds of answer: which response message, so which field numbers
KIND_QUOTE = 0
KIND_PRICES = 1
KIND_AVAILABILITY = 2

# engine disclosure codes (engine.state.Disclosure)
cdef enum:
    SHOW_EXACT = 0
    SHOW_CAPPED = 1
    SHOW_BUCKETS = 2
    LINE_OK = 0
    SOURCE_CONTRACT = 1
    SOURCE_PRICE_LIST = 2
    # room left for a sub-message's length: 3 varint bytes hold up to 2 MiB, more than any
    # line or location can take (the response as a whole is capped at 16 MiB)
    ROOM = 3
    WIRE_VARINT = 0
    WIRE_LEN = 2

# rows of the kernel's blocks (engine._kernels._quote.LINE_ROWS), read once at import
cdef Py_ssize_t R_UNIT = LINE_ROWS["unit"]
cdef Py_ssize_t R_EXTENDED = LINE_ROWS["extended"]
cdef Py_ssize_t R_SOURCE_ID = LINE_ROWS["source_id"]
cdef Py_ssize_t R_TARGET_GROUP = LINE_ROWS["target_group"]
cdef Py_ssize_t R_TIER_INDEX = LINE_ROWS["tier_index"]
cdef Py_ssize_t R_TIER_MIN = LINE_ROWS["tier_min"]
cdef Py_ssize_t R_TIER_UOM = LINE_ROWS["tier_uom"]
cdef Py_ssize_t R_NEXT_QTY = LINE_ROWS["next_qty"]
cdef Py_ssize_t R_NEXT_UNIT = LINE_ROWS["next_unit"]
cdef Py_ssize_t R_SKU = LINE_ROWS["sku"]
cdef Py_ssize_t R_UOM = LINE_ROWS["uom"]
cdef Py_ssize_t R_BASE_QTY = LINE_ROWS["base_qty"]
cdef Py_ssize_t R_SUGGESTED = LINE_ROWS["suggested"]
cdef Py_ssize_t R_NETWORK = LINE_ROWS["network"]
cdef Py_ssize_t R_EARLIEST = LINE_ROWS["earliest"]
cdef Py_ssize_t R_SOURCE = LINE_ROWS["source"]
cdef Py_ssize_t R_LEVEL = LINE_ROWS["level"]
cdef Py_ssize_t R_KIND = LINE_ROWS["kind"]
cdef Py_ssize_t R_STATUS = LINE_ROWS["status"]
cdef Py_ssize_t R_DATE_SOURCE = LINE_ROWS["date_source"]
cdef Py_ssize_t R_BELOW_MINIMUM = LINE_ROWS["below_minimum"]
cdef Py_ssize_t R_NOT_MULTIPLE = LINE_ROWS["not_multiple"]
cdef Py_ssize_t R_IN_BASE = LINE_ROWS["suggested_in_base"]


cdef class Codes:
    """The code arenas an answer names (rows × width bytes, a code's bytes then zeros, as
    ``engine.codes.CodeTable`` keeps them) and each item's base UoM id."""

    cdef const uint8_t[:, ::1] contracts
    cdef const uint8_t[:, ::1] price_lists
    cdef const uint8_t[:, ::1] groups
    cdef const uint8_t[:, ::1] uoms
    cdef const uint8_t[:, ::1] locations
    cdef const int16_t[::1] base_uom
    cdef Py_ssize_t n_contracts, n_price_lists, n_groups, n_uoms, n_locations
    cdef dict _arenas

    def __init__(self, const uint8_t[:, ::1] contracts, Py_ssize_t n_contracts,
                 const uint8_t[:, ::1] price_lists, Py_ssize_t n_price_lists,
                 const uint8_t[:, ::1] groups, Py_ssize_t n_groups,
                 const uint8_t[:, ::1] uoms, Py_ssize_t n_uoms,
                 const uint8_t[:, ::1] locations, Py_ssize_t n_locations,
                 const int16_t[::1] base_uom):
        for name, rows, n in (("contracts", contracts.shape[0], n_contracts),
                              ("price_lists", price_lists.shape[0], n_price_lists),
                              ("groups", groups.shape[0], n_groups),
                              ("uoms", uoms.shape[0], n_uoms),
                              ("locations", locations.shape[0], n_locations)):
            if not 0 <= n <= rows:
                raise ValueError(f"Codes: {n} {name} in an arena of {rows} rows")
        self.contracts, self.n_contracts = contracts, n_contracts
        self.price_lists, self.n_price_lists = price_lists, n_price_lists
        self.groups, self.n_groups = groups, n_groups
        self.uoms, self.n_uoms = uoms, n_uoms
        self.locations, self.n_locations = locations, n_locations
        self.base_uom = base_uom
        self._arenas = None

    def arenas(self):
        """{kind: (arena as an array, codes held)}: for the plain-Python construction."""
        import numpy as np

        if self._arenas is None:
            self._arenas = {
                "contracts": (np.asarray(self.contracts), self.n_contracts),
                "price_lists": (np.asarray(self.price_lists), self.n_price_lists),
                "groups": (np.asarray(self.groups), self.n_groups),
                "uoms": (np.asarray(self.uoms), self.n_uoms),
                "locations": (np.asarray(self.locations), self.n_locations),
            }
        return self._arenas

    def base_uom_of(self, int64_t sku):
        """The base UoM id of item ``sku``; None for an id with no item row."""
        if 0 <= sku < self.base_uom.shape[0]:
            return self.base_uom[sku]
        return None


# ------------------------------------------------------------------ wire primitives

cdef inline int _varint_size(uint64_t v) noexcept nogil:
    cdef int n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef inline char *_varint(char *p, uint64_t v) noexcept nogil:
    while v >= 0x80:
        p[0] = <char>((v & 0x7F) | 0x80)
        v >>= 7
        p += 1
    p[0] = <char>v
    return p + 1


cdef inline char *_tag(char *p, int field, int wire) noexcept nogil:
    return _varint(p, <uint64_t>((field << 3) | wire))


cdef inline char *_int(char *p, int field, int64_t v) noexcept nogil:
    """An int32/int64/enum field (negative values sign-extended to 10 bytes, as protobuf
    writes them); nothing at 0."""
    if v == 0:
        return p
    p = _tag(p, field, WIRE_VARINT)
    return _varint(p, <uint64_t>v)


cdef inline char *_bool(char *p, int field, bint v) noexcept nogil:
    if not v:
        return p
    p = _tag(p, field, WIRE_VARINT)
    p[0] = 1
    return p + 1


cdef inline char *_bytes(char *p, int field, const char *s, Py_ssize_t n) noexcept nogil:
    if n == 0:
        return p
    p = _tag(p, field, WIRE_LEN)
    p = _varint(p, <uint64_t>n)
    memcpy(p, s, n)
    return p + n


cdef inline Py_ssize_t _code_length(const uint8_t *row, Py_ssize_t width) noexcept nogil:
    cdef const void *end = memchr(row, 0, width)
    return width if end == NULL else <const uint8_t *>end - row


cdef inline char *_code(char *p, int field, const uint8_t[:, ::1] arena, Py_ssize_t rows,
                        int64_t code_id) noexcept nogil:
    """Code ``code_id`` of an arena as a string field; nothing for -1 (none) or an id the
    arena does not hold."""
    if code_id < 0 or code_id >= rows:
        return p
    cdef const uint8_t *row = &arena[code_id, 0]
    return _bytes(p, field, <const char *>row, _code_length(row, arena.shape[1]))


cdef inline char *_open(char *p, int field) noexcept nogil:
    """Start a sub-message: its tag, then room for its length. Returns the body's start."""
    p = _tag(p, field, WIRE_LEN)
    return p + ROOM


cdef inline char *_close(char *body, char *end) noexcept nogil:
    """End a sub-message opened at ``body``: write its length and close the gap."""
    cdef Py_ssize_t n = end - body
    cdef int k = _varint_size(<uint64_t>n)
    _varint(body - ROOM, <uint64_t>n)
    if k != ROOM:
        memmove(body - ROOM + k, body, n)
    return end - (ROOM - k)


cdef inline char *_date(char *p, int field, int64_t days) noexcept nogil:
    """Days since 1970-01-01 as "YYYY-MM-DD" (at least four year digits, as numpy writes
    them); nothing for a negative day (no date). Civil-from-days after H. Hinnant."""
    if days < 0:
        return p
    cdef int64_t z = days + 719468
    cdef int64_t era = z // 146097
    cdef int64_t doe = z - era * 146097
    cdef int64_t yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef int64_t y = yoe + era * 400
    cdef int64_t doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef int64_t mp = (5 * doy + 2) // 153
    cdef int64_t d = doy - (153 * mp + 2) // 5 + 1
    cdef int64_t m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    cdef char digits[24]
    cdef int n = 0, i
    cdef char year[20]
    cdef int ny = 0
    while y > 0 or ny < 4:
        year[ny] = <char>(48 + y % 10)
        y //= 10
        ny += 1
    for i in range(ny):
        digits[n] = year[ny - 1 - i]
        n += 1
    digits[n] = 45  # '-'
    digits[n + 1] = <char>(48 + m // 10)
    digits[n + 2] = <char>(48 + m % 10)
    digits[n + 3] = 45
    digits[n + 4] = <char>(48 + d // 10)
    digits[n + 5] = <char>(48 + d % 10)
    return _bytes(p, field, digits, n + 6)


cdef inline char *_text(char *p, int field, object text) except NULL:
    """A Python str as a string field (UTF-8)."""
    cdef Py_ssize_t n
    cdef const char *s = PyUnicode_AsUTF8AndSize(text, &n)
    return _bytes(p, field, s, n)


cdef inline Py_ssize_t _text_room(object text) except -1:
    cdef Py_ssize_t n
    PyUnicode_AsUTF8AndSize(text, &n)
    return n + 11


# ------------------------------------------------------------------ the answer

def encode_answer(
    int kind,
    uint64_t version, dict stream_ids, int64_t newest_ts_ms,
    str currency, int policy, int disclosure,
    list line_ids, list skus, const int64_t[::1] quantities, object uoms,
    const int64_t[:, ::1] out64, const int8_t[:, ::1] out8, const uint8_t[:, ::1] flags,
    bint prices_filled,
    const int64_t[::1] location_ids, const int64_t[:, ::1] shown,
    const uint8_t[:, ::1] oversold, const int8_t[:, ::1] bucket,
    Codes codes, object explanations,
):
    """Wire bytes of a QuoteResponse (``kind`` KIND_QUOTE), GetPricesResponse (KIND_PRICES)
    or GetAvailabilityResponse (KIND_AVAILABILITY).

    ``policy`` is the proto value; ``disclosure`` the engine's (0 EXACT, 1 CAPPED, 2
    BUCKETS). ``line_ids``/``skus``/``quantities``/``uoms`` (a list, or None for all "")
    echo the request; ``out64``/``out8``/``flags`` are the quote kernel's blocks;
    ``prices_filled`` says their price rows hold prices (prices asked in a currency the
    catalogue has); ``shown``/``oversold``/``bucket`` are (lines × locations) after
    disclosure, ``location_ids`` the location set; ``explanations`` is None or one
    serialized ``Explanation`` per line."""
    cdef bint with_prices = kind != KIND_AVAILABILITY
    cdef bint with_stock = kind != KIND_PRICES
    cdef int f_currency = 2 if with_prices else 0
    cdef int f_policy = 3 if with_prices else 0
    cdef int f_disclosure = 4 if kind == KIND_QUOTE else (2 if with_stock else 0)
    cdef int f_locations = 5 if kind == KIND_QUOTE else (3 if with_stock else 0)
    cdef int f_lines = 6 if kind == KIND_QUOTE else 4
    cdef Py_ssize_t n = len(skus)
    cdef Py_ssize_t width = location_ids.shape[0] if with_stock else 0
    cdef Py_ssize_t i, j
    cdef list uom_list = uoms
    cdef list explained = explanations

    if len(line_ids) != n or quantities.shape[0] != n or (uoms is not None and len(uom_list) != n):
        raise ValueError(f"encode_answer: the request's columns disagree on {n} lines")
    if out64.shape[1] != n or out8.shape[1] != n or flags.shape[1] != n:
        raise ValueError(f"encode_answer: blocks of {out64.shape[1]} lines for {n}")
    if explanations is not None and len(explained) != n:
        raise ValueError(f"encode_answer: {len(explained)} explanations for {n} lines")
    if with_stock and (shown.shape[0] != n or shown.shape[1] != width
                       or oversold.shape[0] != n or oversold.shape[1] != width
                       or bucket.shape[0] != n or bucket.shape[1] != width):
        raise ValueError(f"encode_answer: stock blocks are not {n} × {width}")
    for j in range(width):
        if not 0 <= location_ids[j] < codes.n_locations:
            raise ValueError(f"encode_answer: location id {location_ids[j]} is not in the arena")

    # an upper bound of the size; the bytes object is cut to the size written at the end
    cdef Py_ssize_t code_room = (codes.contracts.shape[1] + codes.groups.shape[1]
                                 + 2 * codes.uoms.shape[1] + 64)
    cdef Py_ssize_t cell_room = codes.locations.shape[1] + 32
    cdef Py_ssize_t room = 256 + width * (codes.locations.shape[1] + 8)
    cdef Py_ssize_t line_room = 64 + (200 + code_room if with_prices else 0) \
        + (48 + width * cell_room if with_stock else 0)
    room += _text_room(currency)
    for key, value_text in stream_ids.items():
        room += _text_room(key) + _text_room(value_text) + 8
    room += n * line_room
    for i in range(n):
        room += _text_room(line_ids[i]) + _text_room(skus[i])
        if uoms is not None:
            room += _text_room(uom_list[i])
        if explanations is not None:
            room += len(<bytes>explained[i]) + 8

    cdef PyObject *raw = PyBytes_FromStringAndSize(NULL, room)
    cdef char *start = PyBytes_AS_STRING(<object>raw)
    cdef char *p = start
    cdef char *body
    cdef char *sub
    cdef char *cell
    cdef const char *blob
    cdef int64_t status, value, network, sku, line_uom, base_uom, source
    cdef bint exact = disclosure == SHOW_EXACT
    try:
        # as_of
        body = _open(p, 1)
        p = _int(body, 1, <int64_t>version)
        for key, value_text in stream_ids.items():
            sub = _open(p, 2)
            p = _text(sub, 1, key)
            p = _text(p, 2, value_text)
            p = _close(sub, p)
        p = _int(p, 3, newest_ts_ms)
        p = _close(body, p)
        if with_prices:
            p = _text(p, f_currency, currency)
            p = _int(p, f_policy, policy)
        if with_stock:
            p = _int(p, f_disclosure, disclosure + 1)
            for j in range(width):
                p = _code(p, f_locations, codes.locations, codes.n_locations, location_ids[j])
        for i in range(n):
            body = _open(p, f_lines)
            p = _text(body, 1, line_ids[i])
            p = _int(p, 2, i)
            p = _text(p, 3, skus[i])
            p = _int(p, 4, quantities[i])
            if uoms is not None:
                p = _text(p, 5, uom_list[i])
            status = out8[R_STATUS, i]
            p = _int(p, 6, status + 1)
            p = _int(p, 7, out64[R_BASE_QTY, i])
            if with_prices:
                sub = _open(p, 8)
                p = sub
                if prices_filled and status == LINE_OK:
                    p = _int(p, 1, out64[R_UNIT, i])
                    p = _int(p, 2, out64[R_EXTENDED, i])
                    source = out8[R_SOURCE, i]
                    p = _int(p, 3, source)
                    if source == SOURCE_CONTRACT:
                        p = _code(p, 4, codes.contracts, codes.n_contracts,
                                  out64[R_SOURCE_ID, i])
                    elif source == SOURCE_PRICE_LIST:
                        p = _code(p, 4, codes.price_lists, codes.n_price_lists,
                                  out64[R_SOURCE_ID, i])
                    value = out8[R_LEVEL, i]
                    p = _int(p, 5, (value if value > 0 else 0) + 1)
                    p = _int(p, 6, out8[R_KIND, i])
                    p = _code(p, 7, codes.groups, codes.n_groups, out64[R_TARGET_GROUP, i])
                    p = _int(p, 8, <int64_t>(<int>out64[R_TIER_INDEX, i]))
                    p = _int(p, 9, out64[R_TIER_MIN, i])
                    p = _code(p, 10, codes.uoms, codes.n_uoms, out64[R_TIER_UOM, i])
                    if out64[R_NEXT_QTY, i] > 0:
                        p = _int(p, 11, out64[R_NEXT_QTY, i])
                        p = _int(p, 12, out64[R_NEXT_UNIT, i])
                p = _close(sub, p)
                # sell rules: the suggestion is in the line's UoM, or the base UoM
                sub = _open(p, 9)
                p = _bool(sub, 1, flags[R_BELOW_MINIMUM, i] != 0)
                p = _bool(p, 2, flags[R_NOT_MULTIPLE, i] != 0)
                p = _int(p, 3, out64[R_SUGGESTED, i])
                sku = out64[R_SKU, i]
                if 0 <= sku < codes.base_uom.shape[0]:
                    base_uom = codes.base_uom[sku]
                    line_uom = out64[R_UOM, i]
                    if line_uom < 0 or flags[R_IN_BASE, i] != 0:
                        line_uom = base_uom
                    p = _code(p, 4, codes.uoms, codes.n_uoms, line_uom)
                p = _close(sub, p)
            if with_stock:
                sub = _open(p, 10)
                p = sub
                network = 0
                for j in range(width):
                    cell = _open(p, 1)
                    p = _code(cell, 1, codes.locations, codes.n_locations, location_ids[j])
                    p = _int(p, 2, shown[i, j])
                    p = _int(p, 3, bucket[i, j] + 1)
                    if exact:
                        p = _bool(p, 4, oversold[i, j] != 0)
                    p = _close(cell, p)
                    network += shown[i, j]
                if exact:
                    network = out64[R_NETWORK, i]
                elif disclosure != SHOW_CAPPED:
                    network = -1
                p = _int(p, 2, network)
                p = _date(p, 3, out64[R_EARLIEST, i])
                p = _int(p, 4, out8[R_DATE_SOURCE, i] + 1)
                p = _close(sub, p)
            if explanations is not None:
                blob = <bytes>explained[i]
                sub = _open(p, 11)
                memcpy(sub, blob, len(<bytes>explained[i]))
                p = _close(sub, sub + len(<bytes>explained[i]))
            p = _close(body, p)
        if p - start > room:  # the bound above is wrong: never hand out a torn buffer
            raise AssertionError(f"encode_answer wrote {p - start} bytes into {room}")
        _PyBytes_Resize(&raw, p - start)
        answer = <object>raw
    finally:
        Py_XDECREF(raw)
    return answer


def wrap(int field, bytes head, bytes message):
    """``head`` followed by ``message`` as length-delimited field ``field`` (QuoteStream's
    reply wraps a QuoteResponse this way)."""
    cdef Py_ssize_t n = len(message)
    cdef Py_ssize_t room = len(head) + n + 16
    cdef PyObject *raw = PyBytes_FromStringAndSize(NULL, room)
    cdef char *start = PyBytes_AS_STRING(<object>raw)
    cdef char *p = start
    try:
        memcpy(p, <const char *>head, len(head))
        p += len(head)
        p = _tag(p, field, WIRE_LEN)
        p = _varint(p, <uint64_t>n)
        memcpy(p, <const char *>message, n)
        p += n
        _PyBytes_Resize(&raw, p - start)
        answer = <object>raw
    finally:
        Py_XDECREF(raw)
    return answer
