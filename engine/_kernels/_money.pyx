# cython: language_level=3
"""Element-wise exact ``round(a × b / denominator / step) × step`` (``engine.money``).

The one implementation of exact rounding of a product over arrays: 128-bit intermediates
from ``exact.h``, so a product past int64 is computed exactly instead of falling back to
Python integers, and an answer past int64 is flagged, never wrapped.
"""

from libc.stdint cimport int64_t

from engine._kernels.exact cimport pc_ratio

cdef extern from *:
    """
    #ifndef PACACHE_CHECKED
    #define PACACHE_CHECKED 0
    #endif
    """
    int PACACHE_CHECKED

#: True in the ``make test-checked`` build (bounds checks, wraparound, sanitizers).
CHECKED = bool(PACACHE_CHECKED)


def mul_div_round_into(
    const int64_t[::1] a,
    const int64_t[::1] b,
    const int64_t[::1] denominator,
    int64_t step,
    int64_t[::1] out,
    unsigned char[::1] ok,
):
    """Fill ``out[i]`` = round(a[i] × b[i] / denominator[i] / step) × step and ``ok[i]``
    (0 where the answer does not fit int64; ``out`` is 0 there). Every array has the same
    length; denominators and ``step`` must be ≥ 1 (``ValueError`` otherwise). O(n), no GIL.
    """
    cdef Py_ssize_t i, n = a.shape[0]
    cdef bint bad = False
    if b.shape[0] != n or denominator.shape[0] != n or out.shape[0] != n or ok.shape[0] != n:
        raise ValueError("mul_div_round_into: arrays of different lengths")
    if step < 1:
        raise ValueError("step must be at least 1")
    with nogil:
        for i in range(n):
            if denominator[i] < 1:
                bad = True
                break
            ok[i] = pc_ratio(a[i], b[i], 1, denominator[i], 1, 1, step, &out[i])
    if bad:
        raise ValueError("denominator must be positive")
