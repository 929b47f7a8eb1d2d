# Searches over the state's sorted key columns, shared by the kernels (inline: compiled
# into each kernel that cimports it, no call across modules).
from libc.stdint cimport int64_t


cdef inline Py_ssize_t _lower_bound(
    const int64_t[::1] keys, Py_ssize_t lo, Py_ssize_t hi, int64_t key
) noexcept nogil:
    """First position in [lo, hi) whose key is ≥ ``key`` (keys sorted)."""
    cdef Py_ssize_t mid
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo
