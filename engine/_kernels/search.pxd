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


cdef inline Py_ssize_t _guided_lower_bound(
    const int64_t[::1] keys, Py_ssize_t lo, Py_ssize_t hi, int64_t key
) noexcept nogil:
    """:func:`_lower_bound` that first narrows [lo, hi) by interpolation, for keys spread
    about evenly over their range (dense ids in the high bits, as the inbound schedule's
    ``sku << 32 | …``): two or three reads instead of the ~22 dependent cache misses of a
    binary search over millions of keys. At most four guesses, each shrinking the range
    by a checked comparison, then the binary search: never slower than it by more than
    those four reads, and exact whatever the keys' spread."""
    cdef Py_ssize_t guess, step
    cdef int64_t first, last
    cdef int rounds = 0
    while hi - lo > 64 and rounds < 4:
        rounds += 1
        first = keys[lo]
        last = keys[hi - 1]
        if key <= first:
            return lo
        if key > last:
            return hi
        guess = lo + <Py_ssize_t>((<double>(key - first) / <double>(last - first))
                                  * <double>(hi - 1 - lo))
        if guess <= lo:
            guess = lo + 1
        if guess >= hi:
            guess = hi - 1
        # the answer is at or before guess when keys[guess] >= key, else after it; probe a
        # small step the other way to bracket it closely
        step = 16
        if keys[guess] >= key:
            hi = guess + 1
            if guess - step > lo and keys[guess - step] < key:
                lo = guess - step + 1
        else:
            lo = guess + 1
            if guess + step < hi and keys[guess + step] >= key:
                hi = guess + step + 1
    return _lower_bound(keys, lo, hi, key)
