# cython: language_level=3
"""Availability of a batch of lines over one location set: the kernel of ``engine.atp``.

One call per quote: each line's available_now at every location of the set (clipped, and
whether it is oversold), the network total, and the earliest date for the line's quantity
(DESIGN §5; ``engine.atp``'s docstring states the rules). The receipts of a short line are
read from the sorted inbound keys (``sku << 32 | date << 12 | location``) in date order:
on day d the network holds Σ_l max(available_now_l + receipts_l(≤ d), 0), so each receipt
adds what it lifts its location's running total above zero.

Typed memoryviews over the state's arrays (``const``: shared-memory mappings are
read-only), no GIL and no Python object per line.
"""

from libc.stdint cimport int8_t, int32_t, int64_t
from libc.stdlib cimport calloc, free

from engine._kernels.search cimport _lower_bound

cdef enum:
    INBOUND_SKU_SHIFT = 32
    LOCATION_BITS = 12
    DATE_BITS = 20
    STATUS_ACTIVE = 1
    SOURCE_NONE = 0
    SOURCE_STOCK = 1
    SOURCE_INBOUND = 2
    SOURCE_LEAD_TIME = 3

#: Values for engine.atp to check its own constants against.
CONSTANTS = {
    "INBOUND_SKU_SHIFT": INBOUND_SKU_SHIFT, "LOCATION_BITS": LOCATION_BITS,
    "STATUS_ACTIVE": STATUS_ACTIVE, "SOURCE_NONE": SOURCE_NONE, "SOURCE_STOCK": SOURCE_STOCK,
    "SOURCE_INBOUND": SOURCE_INBOUND, "SOURCE_LEAD_TIME": SOURCE_LEAD_TIME,
}


def availability_batch(
    const int64_t[:, ::1] on_hand,
    const int64_t[:, ::1] allocated,
    const int64_t[:, ::1] held,
    const int64_t[:, ::1] safety_stock,
    const int64_t[::1] inbound_keys,
    const int64_t[::1] inbound_qty,
    const int64_t[::1] sku,
    const int64_t[::1] need,
    const int64_t[::1] locations,
    int64_t today,
    const int8_t[::1] status,
    const int32_t[::1] lead_time_days,
    int64_t[:, ::1] available,
    unsigned char[:, ::1] oversold,
    int64_t[::1] network,
    int64_t[::1] earliest_date,
    int8_t[::1] date_source,
):
    """Fill, for every line i and location slot j: ``available[i, j]`` (clipped at 0),
    ``oversold[i, j]``, ``network[i]``, ``earliest_date[i]`` (days, -1 none) and
    ``date_source[i]``. A SKU or location id outside the inventory's rows or columns has
    no stock there.

    Cost: O(lines × locations + receipts of the short lines), one pass, no GIL.
    """
    cdef Py_ssize_t n = sku.shape[0], n_loc = locations.shape[0]
    cdef Py_ssize_t i, j, p, lo, hi
    cdef Py_ssize_t width = on_hand.shape[1], rows = on_hand.shape[0]
    cdef int64_t s, now, total, key, loc, day, qty, before, after, gain, date
    cdef int64_t date_mask = (<int64_t>1 << DATE_BITS) - 1
    cdef int64_t loc_mask = (<int64_t>1 << LOCATION_BITS) - 1
    cdef int64_t n_keys = inbound_keys.shape[0]
    cdef int source
    if (allocated.shape[0] != rows or allocated.shape[1] != width
            or held.shape[0] != rows or held.shape[1] != width
            or safety_stock.shape[0] != rows or safety_stock.shape[1] != width):
        raise ValueError("availability_batch: inventory columns of different shapes")
    if (available.shape[0] != n or available.shape[1] != n_loc or oversold.shape[0] != n
            or oversold.shape[1] != n_loc or network.shape[0] != n
            or earliest_date.shape[0] != n or date_source.shape[0] != n
            or need.shape[0] != n or status.shape[0] != n or lead_time_days.shape[0] != n):
        raise ValueError("availability_batch: arrays of different lengths")
    # slot_of[location] = 1 + its slot in the set (0: not in the set); running[slot] is
    # the location's available_now plus the receipts read so far, for the current line
    cdef int64_t *slot_of = <int64_t *>calloc(width + 1, sizeof(int64_t))
    cdef int64_t *raw = <int64_t *>calloc(n_loc + 1, sizeof(int64_t))
    if slot_of == NULL or raw == NULL:
        free(slot_of)
        free(raw)
        raise MemoryError()
    for j in range(n_loc):
        if 0 <= locations[j] < width and slot_of[locations[j]] == 0:
            slot_of[locations[j]] = j + 1
    with nogil:
        for i in range(n):
            s = sku[i]
            total = 0
            for j in range(n_loc):
                loc = locations[j]
                # an id this state's inventory does not hold (a code a newer state added,
                # seen through a shared code table) has no stock: never a read outside
                if 0 <= s < rows and 0 <= loc < width:
                    now = (on_hand[s, loc] - allocated[s, loc] - held[s, loc]
                           - safety_stock[s, loc])
                else:
                    now = 0
                raw[j] = now
                oversold[i, j] = now < 0
                available[i, j] = now if now > 0 else 0
                total += available[i, j]
            network[i] = total
            date = -1
            source = SOURCE_NONE
            if total >= need[i]:
                date = today
                source = SOURCE_STOCK
            elif status[i] == STATUS_ACTIVE:
                if n_keys:
                    lo = _lower_bound(inbound_keys, 0, n_keys, s << INBOUND_SKU_SHIFT)
                    hi = _lower_bound(inbound_keys, lo, n_keys,
                                      (s + 1) << INBOUND_SKU_SHIFT)
                    # date order (the key's); a receipt past due arrives today
                    for p in range(lo, hi):
                        key = inbound_keys[p]
                        loc = key & loc_mask
                        if loc >= width or slot_of[loc] == 0:
                            continue
                        j = slot_of[loc] - 1
                        qty = inbound_qty[p]
                        before = raw[j]
                        after = before + qty
                        raw[j] = after
                        gain = (after if after > 0 else 0) - (before if before > 0 else 0)
                        total += gain
                        if total >= need[i]:
                            day = (key >> LOCATION_BITS) & date_mask
                            date = day if day > today else today
                            source = SOURCE_INBOUND
                            break
                if source == SOURCE_NONE and lead_time_days[i] >= 0:
                    date = today + lead_time_days[i]
                    source = SOURCE_LEAD_TIME
            earliest_date[i] = date
            date_source[i] = <int8_t>source
    free(slot_of)
    free(raw)
