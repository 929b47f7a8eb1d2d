# Cython declarations of codeindex.h (the code index over an arena of codes; see the header),
# and the one way the kernels read a Python str's ASCII bytes without making an object.
from libc.stdint cimport int64_t, uint64_t


cdef extern from "codeindex.h" nogil:
    int64_t ci_find(const unsigned char *arena, int64_t width, int64_t n,
                    const uint64_t *slots, int64_t n_slots, const unsigned char *s,
                    int64_t length)
    int64_t ci_find_hashed(const unsigned char *arena, int64_t width, int64_t n,
                           const uint64_t *slots, int64_t n_slots, const unsigned char *s,
                           int64_t length, uint64_t h)
    uint64_t ci_hash(const unsigned char *s, int64_t length)
    void ci_prefetch(const uint64_t *slots, int64_t n_slots, const unsigned char *s,
                     int64_t length)
    void ci_prefetch_row(const unsigned char *arena, int64_t width, int64_t n,
                         const uint64_t *slots, int64_t n_slots, uint64_t h)
    int ci_insert(const unsigned char *arena, int64_t width, uint64_t *slots,
                  int64_t n_slots, int64_t id)
    int64_t ci_row_length(const unsigned char *row, int64_t width)


cdef extern from "Python.h":
    bint PyUnicode_Check(object o)
    bint PyUnicode_IS_ASCII(object o)
    void *PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)


cdef inline const unsigned char *ascii_of(object code, int64_t *length):
    """The ASCII bytes of ``code`` when it is an ASCII str (no copy), else NULL: no code
    is anything else, so a caller answers "unknown" for it."""
    if PyUnicode_Check(code) and PyUnicode_IS_ASCII(code):
        length[0] = PyUnicode_GET_LENGTH(code)
        return <const unsigned char *>PyUnicode_DATA(code)
    length[0] = 0
    return NULL
