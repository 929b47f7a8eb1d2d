# cython: language_level=3
"""The code index of ``engine.codes.CodeTable``: find, insert, decode (see codeindex.h).

The arrays are the table's (possibly shared-memory mappings, read-only in a worker);
lookups take Python str objects and read their ASCII bytes in place, so a batch makes no
Python object per code. A query that is not an ASCII str is simply not found: every code
is printable ASCII (``engine.codes.validate_code``).
"""

from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.ref cimport Py_INCREF
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc

from engine._kernels.codeindex cimport (
    ascii_of, ci_find, ci_insert, ci_prefetch, ci_row_length,
)

# a batch starts the first-slot loads of this many codes ahead of probing them
cdef enum:
    PREFETCH_AHEAD = 8


def find(const unsigned char[:, ::1] arena, const uint64_t[::1] slots, Py_ssize_t n,
         object code):
    """Id of ``code`` among the first ``n`` codes, -1 if absent."""
    cdef int64_t length
    cdef const unsigned char *s = ascii_of(code, &length)
    if s == NULL or n <= 0 or n > arena.shape[0]:
        return -1
    return ci_find(&arena[0, 0], arena.shape[1], n, &slots[0], slots.shape[0], s, length)


def find_many(const unsigned char[:, ::1] arena, const uint64_t[::1] slots, Py_ssize_t n,
              object codes, int64_t[::1] out):
    """Ids of a sequence of codes into ``out`` (-1 where absent). O(len(codes)).

    Two passes: the first (holding the GIL: the codes are Python objects) notes where each
    code's bytes are; the second hashes and probes without the GIL, starting each code's
    first slot load a few codes ahead so the cache misses overlap.
    """
    cdef list items = codes if type(codes) is list else list(codes)
    cdef Py_ssize_t count = len(items)
    cdef Py_ssize_t i
    cdef const unsigned char **text
    cdef int64_t *length
    if out.shape[0] != count:
        raise ValueError(f"find_many: {count} codes, {out.shape[0]} answers")
    if count == 0:
        return
    text = <const unsigned char **>malloc(count * sizeof(const unsigned char *))
    length = <int64_t *>malloc(count * sizeof(int64_t))
    if text == NULL or length == NULL:
        free(text)
        free(length)
        raise MemoryError()
    for i in range(count):
        text[i] = ascii_of(items[i], &length[i])
    _find_all(arena, slots, n, text, length, count, out)
    free(text)
    free(length)


cdef void _find_all(const unsigned char[:, ::1] arena, const uint64_t[::1] slots,
                    Py_ssize_t n, const unsigned char **text, const int64_t *length,
                    Py_ssize_t count, int64_t[::1] out) noexcept:
    cdef Py_ssize_t i
    if n <= 0 or n > arena.shape[0] or slots.shape[0] == 0:
        for i in range(count):
            out[i] = -1
        return
    with nogil:
        for i in range(count):
            if i + PREFETCH_AHEAD < count and text[i + PREFETCH_AHEAD] != NULL:
                ci_prefetch(&slots[0], slots.shape[0], text[i + PREFETCH_AHEAD],
                            length[i + PREFETCH_AHEAD])
            if i < PREFETCH_AHEAD and text[i] != NULL:
                ci_prefetch(&slots[0], slots.shape[0], text[i], length[i])
            out[i] = -1 if text[i] == NULL else ci_find(
                &arena[0, 0], arena.shape[1], n, &slots[0], slots.shape[0], text[i],
                length[i])


def insert_range(const unsigned char[:, ::1] arena, uint64_t[::1] slots, Py_ssize_t start,
                 Py_ssize_t stop):
    """Put codes ``start`` .. ``stop - 1`` (already in the arena) into ``slots``."""
    cdef Py_ssize_t i, failed = -1
    if not 0 <= start <= stop <= arena.shape[0]:
        raise ValueError(f"insert_range: rows {start}..{stop} outside {arena.shape[0]}")
    with nogil:
        for i in range(start, stop):
            if not ci_insert(&arena[0, 0], arena.shape[1], &slots[0], slots.shape[0], i):
                failed = i
                break
    if failed >= 0:
        raise ValueError(f"insert_range: no free slot for code {failed}")


def put(unsigned char[:, ::1] arena, uint64_t[::1] slots, Py_ssize_t row, str code):
    """Write ASCII ``code`` into arena row ``row`` (NUL-padded) and index it."""
    cdef int64_t length, j
    cdef const unsigned char *s = ascii_of(code, &length)
    if s == NULL or length > arena.shape[1] or not 0 <= row < arena.shape[0]:
        raise ValueError(f"put: {code!r} does not fit row {row} of {arena.shape[1]} bytes")
    for j in range(arena.shape[1]):
        arena[row, j] = s[j] if j < length else 0
    if not ci_insert(&arena[0, 0], arena.shape[1], &slots[0], slots.shape[0], row):
        raise ValueError(f"put: no free slot for code {row}")


cdef inline str _decode(const unsigned char[:, ::1] arena, Py_ssize_t row):
    return PyUnicode_DecodeASCII(<const char *>&arena[row, 0],
                                 ci_row_length(&arena[row, 0], arena.shape[1]), NULL)


def decode(const unsigned char[:, ::1] arena, Py_ssize_t n, const int64_t[::1] ids):
    """The codes of ``ids`` as a list of str; "" for an id outside 0..n-1."""
    cdef Py_ssize_t i, count = ids.shape[0]
    cdef int64_t k
    cdef object code
    cdef list out = PyList_New(count)
    cdef str blank = ""
    if n > arena.shape[0]:
        n = arena.shape[0]
    for i in range(count):
        k = ids[i]
        code = _decode(arena, k) if 0 <= k < n else blank
        Py_INCREF(code)
        PyList_SET_ITEM(out, i, code)
    return out


def decode_range(const unsigned char[:, ::1] arena, Py_ssize_t start, Py_ssize_t stop):
    """Codes ``start`` .. ``stop - 1`` as a list of str."""
    cdef Py_ssize_t i
    if not 0 <= start <= stop <= arena.shape[0]:
        raise ValueError(f"decode_range: rows {start}..{stop} outside {arena.shape[0]}")
    return [_decode(arena, i) for i in range(start, stop)]
