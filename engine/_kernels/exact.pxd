# Cython declarations of exact.h (128-bit exact money helpers); see the header for why.
from libc.stdint cimport int64_t


cdef extern from "exact.h" nogil:
    int pc_ratio(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, int64_t f,
                 int64_t step, int64_t *out)
