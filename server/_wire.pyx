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

Sub-messages are written length-first the usual way for a single pass: room for the length
(the varint size of a bound of the body) is left, the body written, and the body moved
down if its length needs fewer bytes. A location's entry, small and simple, is sized
exactly first instead. No Python object is made per line; the request's strings are read
in place (``PyUnicode_AsUTF8AndSize``).
"""

from cpython.bytes cimport PyBytes_AS_STRING
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_XDECREF
from libc.stdint cimport int8_t, int16_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy

cdef extern from "Python.h":
    PyObject *PyBytes_FromStringAndSize(const char *v, Py_ssize_t size) except NULL
    int _PyBytes_Resize(PyObject **bytes, Py_ssize_t size) except -1
    const char *PyUnicode_AsUTF8AndSize(object text, Py_ssize_t *size) except NULL
    object PyUnicode_DecodeUTF8(const char *s, Py_ssize_t size, const char *errors)

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
    # room for the length of a sub-message whose size is bounded by the widths of the
    # arenas alone (price, sell rules): 2 varint bytes hold up to 16 KiB
    SMALL = 2
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
cdef Py_ssize_t N_INT64 = LINE_ROWS["int64"]
cdef Py_ssize_t N_INT8 = LINE_ROWS["int8"]
cdef Py_ssize_t N_FLAGS = LINE_ROWS["flags"]


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

cdef extern from "wire.h" nogil:
    int _varint_size "wire_varint_size"(uint64_t v)
    char *_varint "wire_varint"(char *p, uint64_t v)
    char *_tag "wire_tag"(char *p, int field, int wire)
    char *_int "wire_int"(char *p, int field, int64_t v)
    char *_bool "wire_bool"(char *p, int field, bint v)
    char *_bytes "wire_bytes"(char *p, int field, const char *s, int64_t n)
    Py_ssize_t _code_length "wire_code_length"(const uint8_t *row, int64_t width)
    char *_open "wire_open"(char *p, int field, int room)
    char *_close "wire_close"(char *body, char *end, int room)


cdef struct Arena:
    # a code arena as plain C: rows × width bytes, the first ``rows`` holding codes (a
    # memoryview passed to a helper per field would cost a reference count each time)
    const uint8_t *data
    Py_ssize_t width
    Py_ssize_t rows


cdef inline Arena _arena(const uint8_t[:, ::1] arena, Py_ssize_t rows) noexcept:
    cdef Arena out
    out.data = &arena[0, 0] if arena.shape[0] > 0 and arena.shape[1] > 0 else NULL
    out.width = arena.shape[1]
    out.rows = rows if out.data != NULL else 0
    return out


cdef inline char *_code(char *p, int field, Arena arena, int64_t code_id) noexcept nogil:
    """Code ``code_id`` of an arena as a string field; nothing for -1 (none) or an id the
    arena does not hold."""
    if code_id < 0 or code_id >= arena.rows:
        return p
    cdef const uint8_t *row = arena.data + code_id * arena.width
    return _bytes(p, field, <const char *>row, _code_length(row, arena.width))


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

cdef struct LineText:
    # a request line's strings as UTF-8 (owned by the request's str objects) and a bound
    # of the line's encoded body
    const char *line_id
    Py_ssize_t line_id_n
    const char *sku
    Py_ssize_t sku_n
    const char *uom
    Py_ssize_t uom_n
    Py_ssize_t bound


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
    if n == 0:
        raise ValueError("encode_answer: no lines")
    if out64.shape[1] != n or out8.shape[1] != n or flags.shape[1] != n:
        raise ValueError(f"encode_answer: blocks of {out64.shape[1]} lines for {n}")
    if (out64.shape[0] < N_INT64 or out8.shape[0] < N_INT8 or flags.shape[0] < N_FLAGS):
        raise ValueError("encode_answer: blocks with fewer rows than the kernel writes")
    if explanations is not None and len(explained) != n:
        raise ValueError(f"encode_answer: {len(explained)} explanations for {n} lines")
    if with_stock and (shown.shape[0] != n or shown.shape[1] != width
                       or oversold.shape[0] != n or oversold.shape[1] != width
                       or bucket.shape[0] != n or bucket.shape[1] != width):
        raise ValueError(f"encode_answer: stock blocks are not {n} × {width}")
    for j in range(width):
        if not 0 <= location_ids[j] < codes.n_locations:
            raise ValueError(f"encode_answer: location id {location_ids[j]} is not in the arena")

    # every row the loop reads, as a plain local pointer: stores through the output pointer
    # could alias a memoryview's fields or a global, which would make the compiler load
    # them again after every byte written
    cdef const int64_t *quantity = &quantities[0]
    cdef const int64_t *unit = &out64[R_UNIT, 0]
    cdef const int64_t *extended = &out64[R_EXTENDED, 0]
    cdef const int64_t *source_id = &out64[R_SOURCE_ID, 0]
    cdef const int64_t *target_group = &out64[R_TARGET_GROUP, 0]
    cdef const int64_t *tier_index = &out64[R_TIER_INDEX, 0]
    cdef const int64_t *tier_min = &out64[R_TIER_MIN, 0]
    cdef const int64_t *tier_uom = &out64[R_TIER_UOM, 0]
    cdef const int64_t *next_qty = &out64[R_NEXT_QTY, 0]
    cdef const int64_t *next_unit = &out64[R_NEXT_UNIT, 0]
    cdef const int64_t *sku_id = &out64[R_SKU, 0]
    cdef const int64_t *uom_id = &out64[R_UOM, 0]
    cdef const int64_t *base_qty = &out64[R_BASE_QTY, 0]
    cdef const int64_t *suggested = &out64[R_SUGGESTED, 0]
    cdef const int64_t *network_qty = &out64[R_NETWORK, 0]
    cdef const int64_t *earliest = &out64[R_EARLIEST, 0]
    cdef const int8_t *status_row = &out8[R_STATUS, 0]
    cdef const int8_t *source_row = &out8[R_SOURCE, 0]
    cdef const int8_t *level_row = &out8[R_LEVEL, 0]
    cdef const int8_t *kind_row = &out8[R_KIND, 0]
    cdef const int8_t *date_source_row = &out8[R_DATE_SOURCE, 0]
    cdef const uint8_t *below_minimum = &flags[R_BELOW_MINIMUM, 0]
    cdef const uint8_t *not_multiple = &flags[R_NOT_MULTIPLE, 0]
    cdef const uint8_t *in_base = &flags[R_IN_BASE, 0]
    cdef const int64_t *shown_base = &shown[0, 0] if width else NULL
    cdef const int8_t *bucket_base = &bucket[0, 0] if width else NULL
    cdef const uint8_t *oversold_base = &oversold[0, 0] if width else NULL
    # an upper bound of the size; the bytes object is cut to the size written at the end
    cdef Arena contracts = _arena(codes.contracts, codes.n_contracts)
    cdef Arena price_lists = _arena(codes.price_lists, codes.n_price_lists)
    cdef Arena groups = _arena(codes.groups, codes.n_groups)
    cdef Arena uom_codes = _arena(codes.uoms, codes.n_uoms)
    cdef Arena location_codes = _arena(codes.locations, codes.n_locations)
    cdef const int16_t *base_uoms = &codes.base_uom[0] if codes.base_uom.shape[0] else NULL
    cdef Py_ssize_t items = codes.base_uom.shape[0]
    # a price: 11 varint fields of ≤ 11 bytes and 3 codes; sell rules: 3 + 1 code
    cdef Py_ssize_t price_room = (140 + (contracts.width if contracts.width > price_lists.width
                                         else price_lists.width)
                                  + groups.width + uom_codes.width)
    cdef Py_ssize_t sell_room = 40 + uom_codes.width
    cdef Py_ssize_t cell_room = location_codes.width + 32
    cdef Py_ssize_t stock_room = 48 + width * cell_room
    cdef Py_ssize_t fixed_line = 64 + ((price_room + sell_room + 2 * (1 + SMALL))
                                       if with_prices else 0) \
        + (stock_room + 6 if with_stock else 0)
    cdef int stock_length_room = _varint_size(<uint64_t>stock_room)
    cdef Py_ssize_t room = 256 + width * (location_codes.width + 8)
    if price_room >= 1 << 14 or sell_room >= 1 << 14:
        raise ValueError("encode_answer: code arenas wider than 16 KiB")
    room += _text_room(currency)
    for key, value_text in stream_ids.items():
        room += _text_room(key) + _text_room(value_text) + 8
    # each line's strings, read once (UTF-8 in place), and a bound of its body
    cdef LineText *texts = <LineText *>PyMem_Malloc((n + 1) * sizeof(LineText))
    if texts == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            texts[i].line_id = PyUnicode_AsUTF8AndSize(line_ids[i], &texts[i].line_id_n)
            texts[i].sku = PyUnicode_AsUTF8AndSize(skus[i], &texts[i].sku_n)
            texts[i].uom_n = 0
            texts[i].uom = NULL
            if uoms is not None:
                texts[i].uom = PyUnicode_AsUTF8AndSize(uom_list[i], &texts[i].uom_n)
            texts[i].bound = fixed_line + texts[i].line_id_n + texts[i].sku_n \
                + texts[i].uom_n + 33
            if explanations is not None:
                texts[i].bound += len(<bytes>explained[i]) + 11
            room += texts[i].bound + 16
    except BaseException:
        PyMem_Free(texts)
        raise

    cdef PyObject *raw = PyBytes_FromStringAndSize(NULL, room)
    cdef char *start = PyBytes_AS_STRING(<object>raw)
    cdef char *p = start
    cdef char *body
    cdef char *sub
    cdef const char *blob
    cdef const char **location_text = NULL
    cdef Py_ssize_t *location_length = NULL
    cdef char *prefix = NULL
    cdef Py_ssize_t *prefix_start = NULL
    cdef Py_ssize_t *prefix_length = NULL
    cdef const int64_t *shown_row
    cdef const int8_t *bucket_row
    cdef const uint8_t *oversold_row
    cdef Py_ssize_t blob_length, cell
    cdef int64_t status, value, network, sku, line_uom, source, available, shown_bucket
    cdef int line_room, head_room
    cdef bint exact = disclosure == SHOW_EXACT
    cdef bint over
    try:
        # each location's code, found once
        location_text = <const char **>PyMem_Malloc((width + 1) * sizeof(const char *))
        location_length = <Py_ssize_t *>PyMem_Malloc((width + 1) * sizeof(Py_ssize_t))
        if location_text == NULL or location_length == NULL:
            raise MemoryError()
        # and each location's field within an entry (tag, length, code), written once
        # (16 bytes to spare: a short prefix is copied as a fixed 16 bytes, see below)
        prefix = <char *>PyMem_Malloc(width * (location_codes.width + 8) + 16)
        prefix_start = <Py_ssize_t *>PyMem_Malloc((width + 1) * sizeof(Py_ssize_t))
        prefix_length = <Py_ssize_t *>PyMem_Malloc((width + 1) * sizeof(Py_ssize_t))
        if prefix == NULL or prefix_start == NULL or prefix_length == NULL:
            raise MemoryError()
        cell = 0
        for j in range(width):
            location_text[j] = <const char *>(location_codes.data
                                              + location_ids[j] * location_codes.width)
            location_length[j] = _code_length(<const uint8_t *>location_text[j],
                                              location_codes.width)
            prefix_start[j] = cell
            prefix_length[j] = _bytes(prefix + cell, 1, location_text[j],
                                      location_length[j]) - (prefix + cell)
            cell += prefix_length[j]
        # as_of
        head_room = _varint_size(<uint64_t>(room))
        body = _open(p, 1, head_room)
        p = _int(body, 1, <int64_t>version)
        for key, value_text in stream_ids.items():
            sub = _open(p, 2, head_room)
            p = _text(sub, 1, key)
            p = _text(p, 2, value_text)
            p = _close(sub, p, head_room)
        p = _int(p, 3, newest_ts_ms)
        p = _close(body, p, head_room)
        if with_prices:
            p = _text(p, f_currency, currency)
            p = _int(p, f_policy, policy)
        if with_stock:
            p = _int(p, f_disclosure, disclosure + 1)
            for j in range(width):
                p = _bytes(p, f_locations, location_text[j], location_length[j])
        for i in range(n):
            line_room = _varint_size(<uint64_t>texts[i].bound)
            body = _open(p, f_lines, line_room)
            p = _bytes(body, 1, texts[i].line_id, texts[i].line_id_n)
            p = _int(p, 2, i)
            p = _bytes(p, 3, texts[i].sku, texts[i].sku_n)
            p = _int(p, 4, quantity[i])
            p = _bytes(p, 5, texts[i].uom, texts[i].uom_n)
            status = status_row[i]
            p = _int(p, 6, status + 1)
            p = _int(p, 7, base_qty[i])
            if with_prices:
                sub = _open(p, 8, SMALL)
                p = sub
                if prices_filled and status == LINE_OK:
                    p = _int(p, 1, unit[i])
                    p = _int(p, 2, extended[i])
                    source = source_row[i]
                    p = _int(p, 3, source)
                    if source == SOURCE_CONTRACT:
                        p = _code(p, 4, contracts, source_id[i])
                    elif source == SOURCE_PRICE_LIST:
                        p = _code(p, 4, price_lists, source_id[i])
                    value = level_row[i]
                    p = _int(p, 5, (value if value > 0 else 0) + 1)
                    p = _int(p, 6, kind_row[i])
                    p = _code(p, 7, groups, target_group[i])
                    p = _int(p, 8, <int64_t>(<int>tier_index[i]))
                    p = _int(p, 9, tier_min[i])
                    p = _code(p, 10, uom_codes, tier_uom[i])
                    if next_qty[i] > 0:
                        p = _int(p, 11, next_qty[i])
                        p = _int(p, 12, next_unit[i])
                p = _close(sub, p, SMALL)
                # sell rules: the suggestion is in the line's UoM, or the base UoM
                sub = _open(p, 9, SMALL)
                p = _bool(sub, 1, below_minimum[i] != 0)
                p = _bool(p, 2, not_multiple[i] != 0)
                p = _int(p, 3, suggested[i])
                sku = sku_id[i]
                if 0 <= sku < items:
                    line_uom = uom_id[i]
                    if line_uom < 0 or in_base[i] != 0:
                        line_uom = base_uoms[sku]
                    p = _code(p, 4, uom_codes, line_uom)
                p = _close(sub, p, SMALL)
            if with_stock:
                sub = _open(p, 10, stock_length_room)
                p = sub
                network = 0
                shown_row = shown_base + i * width
                bucket_row = bucket_base + i * width
                oversold_row = oversold_base + i * width
                for j in range(width):
                    # sized exactly: tag, length, then the location's prefix (its field,
                    # found once per answer), available, bucket, oversold
                    available = shown_row[j]
                    shown_bucket = bucket_row[j] + 1
                    over = exact and oversold_row[j] != 0
                    cell = prefix_length[j]
                    if available:
                        cell += 1 + _varint_size(<uint64_t>available)
                    if shown_bucket:
                        cell += 1 + _varint_size(<uint64_t>shown_bucket)
                    if over:
                        cell += 2
                    p[0] = 0x0A  # field 1, length-delimited
                    p = _varint(p + 1, <uint64_t>cell)
                    if prefix_length[j] <= 16:  # a fixed-size copy is two moves, no call
                        memcpy(p, prefix + prefix_start[j], 16)
                    else:
                        memcpy(p, prefix + prefix_start[j], prefix_length[j])
                    p += prefix_length[j]
                    p = _int(p, 2, available)
                    p = _int(p, 3, shown_bucket)
                    p = _bool(p, 4, over)
                    network += available
                if exact:
                    network = network_qty[i]
                elif disclosure != SHOW_CAPPED:
                    network = -1
                p = _int(p, 2, network)
                p = _date(p, 3, earliest[i])
                p = _int(p, 4, date_source_row[i] + 1)
                p = _close(sub, p, stock_length_room)
            if explanations is not None:
                blob = <bytes>explained[i]
                blob_length = len(<bytes>explained[i])
                p = _tag(p, 11, WIRE_LEN)  # written even when empty: present means asked
                p = _varint(p, <uint64_t>blob_length)
                memcpy(p, blob, blob_length)
                p += blob_length
            p = _close(body, p, line_room)
        if p - start > room:  # the bound above is wrong: never hand out a torn buffer
            raise AssertionError(f"encode_answer wrote {p - start} bytes into {room}")
        _PyBytes_Resize(&raw, p - start)
        answer = <object>raw
    finally:
        PyMem_Free(texts)
        PyMem_Free(location_text)
        PyMem_Free(location_length)
        PyMem_Free(prefix)
        PyMem_Free(prefix_start)
        PyMem_Free(prefix_length)
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


# ------------------------------------------------------------------ request lines

cdef enum:
    LINE_ID_FIELD = 1
    SKU_FIELD = 2
    QUANTITY_FIELD = 3
    UOM_FIELD = 4


cdef inline const uint8_t *_read_varint(const uint8_t *p, const uint8_t *end,
                                        uint64_t *out) noexcept nogil:
    """A varint at p (at most 10 bytes, as protobuf reads them); NULL if cut short."""
    cdef uint64_t v = 0
    cdef int shift = 0
    cdef uint8_t b
    while p < end and shift < 70:
        b = p[0]
        p += 1
        v |= <uint64_t>(b & 0x7F) << shift
        if b < 0x80:
            out[0] = v
            return p
        shift += 7
    return NULL


cdef inline const uint8_t *_skip(const uint8_t *p, const uint8_t *end, int wire) noexcept nogil:
    """Past a field's value of wire type ``wire``; NULL for a group or a value cut short."""
    cdef uint64_t n
    if wire == 0:
        return _read_varint(p, end, &n)
    if wire == 1:
        return p + 8 if end - p >= 8 else NULL
    if wire == 5:
        return p + 4 if end - p >= 4 else NULL
    if wire == 2:
        p = _read_varint(p, end, &n)
        if p == NULL or n > <uint64_t>(end - p):
            return NULL
        return p + n
    return NULL  # groups (3, 4): not in this API; the caller falls back


cdef Py_ssize_t _count(const uint8_t *p, const uint8_t *end, int field) noexcept nogil:
    """Occurrences of length-delimited ``field`` at the top level; -1 if unreadable."""
    cdef Py_ssize_t count = 0
    cdef uint64_t key
    while p < end:
        p = _read_varint(p, end, &key)
        if p == NULL:
            return -1
        if <int>(key >> 3) == field and (key & 7) == WIRE_LEN:
            count += 1
        p = _skip(p, end, <int>(key & 7))
        if p == NULL:
            return -1
    return count


def decode_lines(bytes message, int field, Py_ssize_t max_lines, Py_ssize_t max_line_id):
    """The ``repeated QuoteLine`` field ``field`` of a serialized request, as columns.

    Reading each line's four fields through protobuf's Python objects costs ~1 µs a line
    (a str or int made per access); this reads them from the wire bytes of a message
    protobuf has already parsed (so its strings are valid UTF-8), one pass to count and
    one to fill. Returns ``(line_ids, skus, quantities, uoms or None, first line whose
    line_id has more than max_line_id characters or -1)``, the line count alone when there
    are none or more than ``max_lines``, or None when the bytes hold something this reader
    does not (a group): the caller then reads the parsed message instead. Protobuf's rules
    hold: the last occurrence of a field wins, a field with an unexpected wire type is an
    unknown field and skipped, an absent one is its default.
    """
    cdef const uint8_t *start = <const uint8_t *>PyBytes_AS_STRING(message)
    cdef const uint8_t *end = start + len(message)
    cdef const uint8_t *p
    cdef const uint8_t *line_end
    cdef const uint8_t *texts[3]
    cdef uint64_t lengths[3]
    cdef uint64_t key, n, quantity
    cdef int number, wire, k
    cdef Py_ssize_t count = _count(start, end, field)
    cdef Py_ssize_t i = 0, too_long = -1
    cdef bint any_uom = False
    if count < 0:
        return None
    if count == 0 or count > max_lines:
        return count
    import numpy as np

    line_ids = [None] * count
    skus = [None] * count
    uoms = [None] * count
    quantities = np.empty(count, dtype=np.int64)
    cdef int64_t[::1] q = quantities
    p = start
    while p < end:
        p = _read_varint(p, end, &key)
        if p == NULL:
            return None
        if <int>(key >> 3) != field or (key & 7) != WIRE_LEN:
            p = _skip(p, end, <int>(key & 7))
            if p == NULL:
                return None
            continue
        p = _read_varint(p, end, &n)
        if p == NULL or n > <uint64_t>(end - p):
            return None
        line_end = p + n
        if i >= count:
            return None
        texts[0] = texts[1] = texts[2] = p
        lengths[0] = lengths[1] = lengths[2] = 0
        quantity = 0
        while p < line_end:
            p = _read_varint(p, line_end, &key)
            if p == NULL:
                return None
            number = <int>(key >> 3)
            wire = <int>(key & 7)
            if wire == WIRE_LEN and (number == LINE_ID_FIELD or number == SKU_FIELD
                                     or number == UOM_FIELD):
                k = 0 if number == LINE_ID_FIELD else (1 if number == SKU_FIELD else 2)
                p = _read_varint(p, line_end, &lengths[k])
                if p == NULL or lengths[k] > <uint64_t>(line_end - p):
                    return None
                texts[k] = p
                p += lengths[k]
            elif wire == WIRE_VARINT and number == QUANTITY_FIELD:
                p = _read_varint(p, line_end, &quantity)
                if p == NULL:
                    return None
            else:
                p = _skip(p, line_end, wire)
                if p == NULL:
                    return None
        line_id = PyUnicode_DecodeUTF8(<const char *>texts[0], lengths[0], NULL)
        if too_long < 0 and len(line_id) > max_line_id:
            too_long = i
        line_ids[i] = line_id
        skus[i] = PyUnicode_DecodeUTF8(<const char *>texts[1], lengths[1], NULL)
        uoms[i] = PyUnicode_DecodeUTF8(<const char *>texts[2], lengths[2], NULL)
        any_uom = any_uom or lengths[2] > 0
        q[i] = <int64_t>quantity
        i += 1
    return line_ids, skus, quantities, uoms if any_uom else None, too_long
