# cython: language_level=3
"""Price resolution for a batch of lines of one account: the kernel of ``engine.pricing``.

One call prices every line of a quote (DESIGN §3–§4): the list price from the account's
own price list, else LIST; the SKU line and the product-group lines up the group chain of
every candidate contract; all-units tiers; NET / DISCOUNT / COST_PLUS as exact fractions;
both policies; exact money with 128-bit intermediates (``exact.h``); the next-break hint.
The docstring of ``engine.pricing`` states the rules; this file only says how.

It reads the state's arrays through typed memoryviews (``const``: a worker's arrays are
read-only shared-memory mappings) and runs without the GIL; no Python object is made per
line. Per line it first gathers the rows of the candidates' contract lines that target the
SKU (dense row, scan of the SKU's sorted keys, or a binary search per candidate) and then
those of its product-group chain, nearest group first, into a scratch buffer; then it
evaluates them in that order, so the first line of a contract that applies is the
contract's offer (its SKU line, else the nearest group line: DESIGN §4 step 2).
"""

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, INT64_MAX
from libc.stdlib cimport realloc, calloc, free

from engine._kernels.exact cimport pc_ratio
from engine._kernels.search cimport _lower_bound

cdef extern from *:
    """
    /* checked multiply for the next-break hint: 1 when a x b fits int64 */
    static inline int pc_mul64(int64_t a, int64_t b, int64_t *out)
    {
        return !__builtin_mul_overflow(a, b, out);
    }
    """
    int pc_mul64(int64_t a, int64_t b, int64_t *out) nogil

cdef extern from *:
    """
    /* a hint to start loading a cache line that will be read soon (no effect on results) */
    #define pc_prefetch(address) __builtin_prefetch((const void *)(address))
    """
    void pc_prefetch(const void *address) nogil

# engine.state / engine.pricing constants (checked against them in engine.pricing)
cdef enum:
    NET = 1
    DISCOUNT = 2
    COST_PLUS = 3
    BPS = 10000
    LINE_CONTRACT_BITS = 30
    PRICE_BOOK_BITS = 31
    PRICE_CURRENCY_SLOTS = 1024
    # a line's candidates are probed one by one (binary search in the SKU's run) rather
    # than scanned when its run is longer than this many keys per candidate
    PROBE_RATIO = 20

# Lost reasons (engine.pricing.Lost) a hit can be given here
cdef enum:
    LOST_WON = 0
    LOST_BELOW_BREAK = 6
    LOST_NO_LIST = 7
    LOST_NO_COST = 8
    LOST_UOM = 9

# source, and level codes (engine.pricing.Source, engine.contexts.Level)
cdef enum:
    SOURCE_NONE = 0
    SOURCE_CONTRACT = 1
    SOURCE_PRICE_LIST = 2
    LEVEL_ACCOUNT = 0
    LEVEL_PARENT = 1
    LEVEL_PRICE_GROUP = 2
    LEVEL_ALL = 3
    LEVEL_PRICE_LIST = 4
    LEVEL_LIST = 5
    SPEC_GROUP = 16
    SPEC_ALL = 32

#: Values for engine.pricing to check its own constants against.
CONSTANTS = {
    "NET": NET, "DISCOUNT": DISCOUNT, "COST_PLUS": COST_PLUS, "BPS": BPS,
    "LINE_CONTRACT_BITS": LINE_CONTRACT_BITS, "PRICE_BOOK_BITS": PRICE_BOOK_BITS,
    "PRICE_CURRENCY_SLOTS": PRICE_CURRENCY_SLOTS, "LOST_WON": LOST_WON,
    "LOST_BELOW_BREAK": LOST_BELOW_BREAK, "LOST_NO_LIST": LOST_NO_LIST,
    "LOST_NO_COST": LOST_NO_COST, "LOST_UOM": LOST_UOM, "SOURCE_NONE": SOURCE_NONE,
    "SOURCE_CONTRACT": SOURCE_CONTRACT, "SOURCE_PRICE_LIST": SOURCE_PRICE_LIST,
    "LEVEL_ACCOUNT": LEVEL_ACCOUNT, "LEVEL_PARENT": LEVEL_PARENT,
    "LEVEL_PRICE_GROUP": LEVEL_PRICE_GROUP, "LEVEL_ALL": LEVEL_ALL,
    "LEVEL_PRICE_LIST": LEVEL_PRICE_LIST, "LEVEL_LIST": LEVEL_LIST,
    "SPEC_GROUP": SPEC_GROUP, "SPEC_ALL": SPEC_ALL,
}


cdef struct Offer:
    # one way to price a line: a contract line (row >= 0 in the lines table) or a price
    # entry; the price per base unit is (num_a x num_b) / (den_a x den_b) micros
    int64_t row
    int64_t contract      # -1 for a price list
    int64_t depth         # 0: SKU line, k: k-th group up the chain
    int64_t target        # the product group of a group line, else -1
    int64_t kind          # 0 for a price list
    int64_t factor        # factor of the tiers' UoM on the item (>= 1 when it applies)
    int64_t tier
    int64_t num_a
    int64_t num_b
    int64_t den_a
    int64_t den_b
    int64_t unit          # rounded unit price in the line's UoM (0 where it does not fit)
    int64_t price_key     # unit, or INT64_MAX where it does not fit: never "lowest"
    int unit_fits


cdef inline int64_t _factor_on_item(
    const int16_t[:, ::1] uom_code, const int64_t[:, ::1] uom_factor, Py_ssize_t i,
    int64_t uom,
) noexcept nogil:
    """Factor to base of ``uom`` on line i's item; 1 for -1 (base), 0 when not on it."""
    cdef Py_ssize_t slot
    if uom < 0:
        return 1
    for slot in range(uom_code.shape[1]):
        if uom_code[i, slot] == uom:
            return uom_factor[i, slot]
    return 0


cdef inline int64_t _tier_of(
    const int64_t[:, ::1] tier_min, Py_ssize_t row, int64_t n_tiers, int64_t qty,
    int64_t factor,
) noexcept nogil:
    """All-units tier of ``qty`` base units: the number of minimums ≤ qty // factor, capped
    at ``n_tiers``, minus one (-1: below the lowest break, or the UoM is not on the item).
    ``minimum × factor ≤ qty`` is tested as ``minimum ≤ qty // factor``: exact for
    integers, and it cannot overflow."""
    cdef Py_ssize_t t
    cdef int64_t units, count = 0
    if factor <= 0:
        return -1
    units = qty // factor
    for t in range(tier_min.shape[1]):
        if tier_min[row, t] <= units:
            count += 1
    if count > n_tiers:
        count = n_tiers
    return count - 1


cdef inline int64_t _gcd(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t t
    while b:
        t = a % b
        a = b
        b = t
    return a


cdef inline int _prefix_run(
    const int64_t[::1] ptr, int64_t prefix, Py_ssize_t *lo, Py_ssize_t *hi
) noexcept nogil:
    """[lo, hi) of the keys with ``prefix`` (``KeyIndex.prefix_ranges``); 0 when none."""
    if prefix < 0 or prefix + 1 >= ptr.shape[0]:
        lo[0] = 0
        hi[0] = 0
        return 0
    lo[0] = ptr[prefix]
    hi[0] = ptr[prefix + 1]
    return hi[0] > lo[0]


cdef struct Scratch:
    # per-line buffer of (contract line row, depth, target) gathered before evaluation
    int64_t *row
    int64_t *depth
    int64_t *target
    Py_ssize_t size
    Py_ssize_t capacity


cdef inline int _push(Scratch *s, int64_t row, int64_t depth, int64_t target) noexcept nogil:
    """Append a gathered row; 0 when memory ran out."""
    cdef Py_ssize_t grown
    cdef int64_t *r
    cdef int64_t *d
    cdef int64_t *t
    if s.size == s.capacity:
        grown = s.capacity * 2 if s.capacity else 256
        r = <int64_t *>realloc(s.row, grown * sizeof(int64_t))
        if r == NULL:
            return 0
        s.row = r
        d = <int64_t *>realloc(s.depth, grown * sizeof(int64_t))
        if d == NULL:
            return 0
        s.depth = d
        t = <int64_t *>realloc(s.target, grown * sizeof(int64_t))
        if t == NULL:
            return 0
        s.target = t
        s.capacity = grown
    s.row[s.size] = row
    s.depth[s.size] = depth
    s.target[s.size] = target
    s.size += 1
    return 1


cdef inline bint _better(
    Offer *a, Offer *b, int policy, const int32_t[::1] rank,
    const int64_t[::1] code_order,
) noexcept nogil:
    """True when contract offer ``a`` beats ``b`` under ``policy`` (0 priority: rank,
    depth, price, contract code; 1 lowest_price: price, rank, depth, contract code)."""
    cdef int64_t ra = rank[a.contract], rb = rank[b.contract]
    if policy == 0:
        if ra != rb:
            return ra < rb
        if a.depth != b.depth:
            return a.depth < b.depth
        if a.price_key != b.price_key:
            return a.price_key < b.price_key
    else:
        if a.price_key != b.price_key:
            return a.price_key < b.price_key
        if ra != rb:
            return ra < rb
        if a.depth != b.depth:
            return a.depth < b.depth
    return code_order[a.contract] < code_order[b.contract]


cdef class Tables:
    """The state's pricing arrays as typed memoryviews (lines and their index, price
    entries and their index, product-group chains). Made once per set of arrays and kept
    by ``engine.pricing`` while the state holds the same arrays: acquiring a memoryview
    costs a buffer request and a format check, too much to pay for 22 arrays per quote."""

    cdef const int32_t[::1] line_contract
    cdef const int8_t[::1] line_kind
    cdef const int16_t[::1] line_uom
    cdef const uint8_t[::1] line_active
    cdef const int8_t[::1] line_n_tiers
    cdef const int64_t[:, ::1] line_tier_min
    cdef const int64_t[:, ::1] line_tier_value
    cdef const int64_t[::1] line_keys
    cdef const int64_t[::1] line_rows
    cdef const int64_t[::1] line_ptr
    cdef const int32_t[::1] dense_slot
    cdef const int32_t[:, ::1] dense
    cdef const int16_t[::1] price_uom
    cdef const int32_t[::1] price_valid_from
    cdef const int32_t[::1] price_valid_to
    cdef const uint8_t[::1] price_active
    cdef const int8_t[::1] price_n_tiers
    cdef const int64_t[:, ::1] price_tier_min
    cdef const int64_t[:, ::1] price_tier_value
    cdef const int64_t[::1] price_keys
    cdef const int64_t[::1] price_rows
    cdef const int64_t[::1] price_ptr
    cdef const int32_t[:, ::1] group_chain

    def __init__(
        self,
        const int32_t[::1] line_contract,
        const int8_t[::1] line_kind,
        const int16_t[::1] line_uom,
        const uint8_t[::1] line_active,
        const int8_t[::1] line_n_tiers,
        const int64_t[:, ::1] line_tier_min,
        const int64_t[:, ::1] line_tier_value,
        const int64_t[::1] line_keys,
        const int64_t[::1] line_rows,
        const int64_t[::1] line_ptr,
        const int32_t[::1] dense_slot,
        const int32_t[:, ::1] dense,
        const int16_t[::1] price_uom,
        const int32_t[::1] price_valid_from,
        const int32_t[::1] price_valid_to,
        const uint8_t[::1] price_active,
        const int8_t[::1] price_n_tiers,
        const int64_t[:, ::1] price_tier_min,
        const int64_t[:, ::1] price_tier_value,
        const int64_t[::1] price_keys,
        const int64_t[::1] price_rows,
        const int64_t[::1] price_ptr,
        const int32_t[:, ::1] group_chain,
    ):
        self.line_contract = line_contract
        self.line_kind = line_kind
        self.line_uom = line_uom
        self.line_active = line_active
        self.line_n_tiers = line_n_tiers
        self.line_tier_min = line_tier_min
        self.line_tier_value = line_tier_value
        self.line_keys = line_keys
        self.line_rows = line_rows
        self.line_ptr = line_ptr
        self.dense_slot = dense_slot
        self.dense = dense
        self.price_uom = price_uom
        self.price_valid_from = price_valid_from
        self.price_valid_to = price_valid_to
        self.price_active = price_active
        self.price_n_tiers = price_n_tiers
        self.price_tier_min = price_tier_min
        self.price_tier_value = price_tier_value
        self.price_keys = price_keys
        self.price_rows = price_rows
        self.price_ptr = price_ptr
        self.group_chain = group_chain


cdef class Context:
    """One account context's arrays (``engine.contexts.AccountContext``) and its currency,
    date and price books, as typed memoryviews; kept beside the context it was made of."""

    cdef const uint8_t[::1] is_candidate
    cdef const int32_t[::1] rank
    cdef const int32_t[::1] specificity
    cdef const int64_t[::1] code_order
    cdef const int64_t[::1] candidates_by_id
    cdef const int64_t[::1] group_keys
    cdef const int64_t[::1] group_rows
    cdef int64_t currency
    cdef int64_t date
    cdef int64_t own_price_list
    cdef int64_t list_price_list

    def __init__(
        self,
        const uint8_t[::1] is_candidate,
        const int32_t[::1] rank,
        const int32_t[::1] specificity,
        const int64_t[::1] code_order,
        const int64_t[::1] candidates_by_id,
        const int64_t[::1] group_keys,
        const int64_t[::1] group_rows,
        int64_t currency,
        int64_t date,
        int64_t own_price_list,
        int64_t list_price_list,
    ):
        self.is_candidate = is_candidate
        self.rank = rank
        self.specificity = specificity
        self.code_order = code_order
        self.candidates_by_id = candidates_by_id
        self.group_keys = group_keys
        self.group_rows = group_rows
        self.currency = currency
        self.date = date
        self.own_price_list = own_price_list
        self.list_price_list = list_price_list


# rows of price_batch's answer blocks
cdef enum:
    OUT_UNIT = 0
    OUT_EXTENDED = 1
    OUT_SOURCE_ID = 2
    OUT_TARGET_GROUP = 3
    OUT_TIER_INDEX = 4
    OUT_TIER_MIN = 5
    OUT_TIER_UOM = 6
    OUT_NEXT_QTY = 7
    OUT_NEXT_UNIT = 8
    OUT_LIST_BOOK = 9
    OUT_LIST_TIER = 10
    OUT_LIST_UNIT = 11
    OUT_WINNER_HIT = 12
    OUT_INT64_ROWS = 13
    OUT_SOURCE = 0
    OUT_LEVEL = 1
    OUT_KIND = 2
    OUT_INT8_ROWS = 3
    OUT_PRICED = 0
    OUT_OVERFLOW = 1
    OUT_FLAG_ROWS = 2
    HIT_FIELDS = 9

#: Shapes of the answer blocks, for engine.pricing to allocate.
BLOCKS = {"int64": OUT_INT64_ROWS, "int8": OUT_INT8_ROWS, "flags": OUT_FLAG_ROWS,
          "hits": HIT_FIELDS}


def price_batch(
    Tables tables not None,
    Context context not None,
    # -- the lines (engine.catalog.ItemRows and the line's quantities)
    const int64_t[::1] sku,
    const int64_t[::1] base_qty,
    const int64_t[::1] factor_u,
    const int64_t[::1] min_order_qty,
    const int64_t[::1] order_multiple,
    const int16_t[:, ::1] uom_code,
    const int64_t[:, ::1] uom_factor,
    const int32_t[::1] product_group,
    const int64_t[::1] cost_micros,
    const int16_t[::1] cost_currency,
    int64_t micros_per_minor,
    int policy,
    # -- answers: rows OUT_* of each block, one column per line (engine.pricing)
    int64_t[:, ::1] out64,
    int8_t[:, ::1] out8,
    uint8_t[:, ::1] flags,
    # -- explain: every active candidate line (HIT_FIELDS rows), when it has columns
    int64_t[:, ::1] hits_out,
):
    """Price ``sku.shape[0]`` lines of one account; fill the answer blocks; return the
    number of candidate contract lines seen (``hits_out`` holds the first of them, as many
    as it has columns: call again with more room when the count is larger).

    Cost: O(lines × (candidate lines + group chain + price run)) with no Python object per
    line; the GIL is released for the whole loop.
    """
    # the loop reads locals (same memoryviews, no copy)
    cdef const int32_t[::1] line_contract = tables.line_contract
    cdef const int8_t[::1] line_kind = tables.line_kind
    cdef const int16_t[::1] line_uom = tables.line_uom
    cdef const uint8_t[::1] line_active = tables.line_active
    cdef const int8_t[::1] line_n_tiers = tables.line_n_tiers
    cdef const int64_t[:, ::1] line_tier_min = tables.line_tier_min
    cdef const int64_t[:, ::1] line_tier_value = tables.line_tier_value
    cdef const int64_t[::1] line_keys = tables.line_keys
    cdef const int64_t[::1] line_rows = tables.line_rows
    cdef const int64_t[::1] line_ptr = tables.line_ptr
    cdef const int32_t[::1] dense_slot = tables.dense_slot
    cdef const int32_t[:, ::1] dense = tables.dense
    cdef const int16_t[::1] price_uom = tables.price_uom
    cdef const int32_t[::1] price_valid_from = tables.price_valid_from
    cdef const int32_t[::1] price_valid_to = tables.price_valid_to
    cdef const uint8_t[::1] price_active = tables.price_active
    cdef const int8_t[::1] price_n_tiers = tables.price_n_tiers
    cdef const int64_t[:, ::1] price_tier_min = tables.price_tier_min
    cdef const int64_t[:, ::1] price_tier_value = tables.price_tier_value
    cdef const int64_t[::1] price_keys = tables.price_keys
    cdef const int64_t[::1] price_rows = tables.price_rows
    cdef const int64_t[::1] price_ptr = tables.price_ptr
    cdef const int32_t[:, ::1] group_chain = tables.group_chain
    cdef const uint8_t[::1] is_candidate = context.is_candidate
    cdef const int32_t[::1] rank = context.rank
    cdef const int32_t[::1] specificity = context.specificity
    cdef const int64_t[::1] code_order = context.code_order
    cdef const int64_t[::1] candidates_by_id = context.candidates_by_id
    cdef const int64_t[::1] group_keys = context.group_keys
    cdef const int64_t[::1] group_rows = context.group_rows
    cdef int64_t currency = context.currency
    cdef int64_t date = context.date
    cdef int64_t own_price_list = context.own_price_list
    cdef int64_t list_price_list = context.list_price_list
    if (base_qty.shape[0] != sku.shape[0] or factor_u.shape[0] != sku.shape[0]
            or min_order_qty.shape[0] != sku.shape[0]
            or order_multiple.shape[0] != sku.shape[0] or uom_code.shape[0] != sku.shape[0]
            or uom_factor.shape[0] != sku.shape[0]
            or uom_factor.shape[1] != uom_code.shape[1]
            or product_group.shape[0] != sku.shape[0] or cost_micros.shape[0] != sku.shape[0]
            or cost_currency.shape[0] != sku.shape[0]):
        raise ValueError("price_batch: line arrays of different lengths")
    if (out64.shape[0] != OUT_INT64_ROWS or out8.shape[0] != OUT_INT8_ROWS
            or flags.shape[0] != OUT_FLAG_ROWS or hits_out.shape[0] != HIT_FIELDS):
        raise ValueError("price_batch: answer blocks of the wrong shape")
    if (out64.shape[1] != sku.shape[0] or out8.shape[1] != sku.shape[0]
            or flags.shape[1] != sku.shape[0]):
        raise ValueError("price_batch: answer blocks of the wrong width")
    cdef int64_t[::1] unit_price = out64[OUT_UNIT]
    cdef int64_t[::1] extended = out64[OUT_EXTENDED]
    cdef int64_t[::1] source_id = out64[OUT_SOURCE_ID]
    cdef int64_t[::1] target_group = out64[OUT_TARGET_GROUP]
    cdef int64_t[::1] tier_index = out64[OUT_TIER_INDEX]
    cdef int64_t[::1] tier_min = out64[OUT_TIER_MIN]
    cdef int64_t[::1] tier_uom = out64[OUT_TIER_UOM]
    cdef int64_t[::1] next_break_qty = out64[OUT_NEXT_QTY]
    cdef int64_t[::1] next_break_unit = out64[OUT_NEXT_UNIT]
    cdef int64_t[::1] list_book = out64[OUT_LIST_BOOK]
    cdef int64_t[::1] list_tier = out64[OUT_LIST_TIER]
    cdef int64_t[::1] list_unit = out64[OUT_LIST_UNIT]
    cdef int64_t[::1] winner_hit = out64[OUT_WINNER_HIT]
    cdef int8_t[::1] source = out8[OUT_SOURCE]
    cdef int8_t[::1] level = out8[OUT_LEVEL]
    cdef int8_t[::1] kind = out8[OUT_KIND]
    cdef uint8_t[::1] priced = flags[OUT_PRICED]
    cdef uint8_t[::1] overflow = flags[OUT_OVERFLOW]
    cdef Py_ssize_t hits_capacity = hits_out.shape[1]
    cdef int64_t[::1] hit_line = hits_out[0]
    cdef int64_t[::1] hit_row = hits_out[1]
    cdef int64_t[::1] hit_contract = hits_out[2]
    cdef int64_t[::1] hit_depth = hits_out[3]
    cdef int64_t[::1] hit_target = hits_out[4]
    cdef int64_t[::1] hit_kind = hits_out[5]
    cdef int64_t[::1] hit_tier = hits_out[6]
    cdef int64_t[::1] hit_unit = hits_out[7]
    cdef int64_t[::1] hit_lost = hits_out[8]
    cdef Py_ssize_t n = sku.shape[0]
    # rows the index arrays point at are trusted no further than the columns reach: a row
    # outside them is skipped, never read (memory safety without per-read checks)
    cdef Py_ssize_t line_rows_n = line_active.shape[0], price_rows_n = price_active.shape[0]
    cdef Py_ssize_t n_contracts = rank.shape[0]
    cdef Py_ssize_t n_candidates = candidates_by_id.shape[0]
    cdef Py_ssize_t i, k, p, lo, hi, slot, width, g_lo, g_hi, d
    cdef Py_ssize_t hits = 0
    cdef int64_t s, q, fu, c, r, g, group, key, entry, t, value
    cdef int64_t has_list, has_cost, cost
    cdef int64_t contract_mask = (<int64_t>1 << LINE_CONTRACT_BITS) - 1
    cdef int64_t book_mask = (<int64_t>1 << PRICE_BOOK_BITS) - 1
    cdef int64_t books[2]
    cdef int64_t book_code_level[2]
    cdef int64_t book_row[2]
    cdef int64_t book_factor[2]
    cdef uint8_t book_usable[2]
    cdef int n_books = 0, b, lost, fits, found_offer
    cdef Offer lp, hit, best, win
    cdef int64_t step, needed, next_base, safe_unit, multiple, g2, hint_tier
    cdef int64_t hint_num_a, hint_num_b, hint_den_a, hint_den_b, hint_unit, lprice, lfactor
    cdef Scratch scratch
    cdef int32_t *offered = NULL
    cdef bint out_of_memory = False
    cdef int64_t n_tiers_w

    if own_price_list >= 0:
        books[n_books] = own_price_list
        book_code_level[n_books] = LEVEL_PRICE_LIST
        n_books += 1
    if list_price_list >= 0:
        books[n_books] = list_price_list
        book_code_level[n_books] = LEVEL_LIST
        n_books += 1
    scratch.row = NULL
    scratch.depth = NULL
    scratch.target = NULL
    scratch.size = 0
    scratch.capacity = 0
    # offered[c] == i + 1: contract c has made its offer for line i (stamps, no reset)
    offered = <int32_t *>calloc(n_contracts + 1, sizeof(int32_t))
    if offered == NULL:
        raise MemoryError()

    with nogil:
        for i in range(n):
            s = sku[i]
            q = base_qty[i]
            fu = factor_u[i]
            cost = cost_micros[i]
            if i + 1 < n:
                # the next line's index entries: each is a cache miss at the large scale,
                # and loading them while this line is evaluated overlaps the waits
                t = sku[i + 1]
                if 0 <= t < price_ptr.shape[0]:
                    pc_prefetch(&price_ptr[t])
                if 0 <= t < line_ptr.shape[0]:
                    pc_prefetch(&line_ptr[t])
                if 0 <= t < dense_slot.shape[0]:
                    pc_prefetch(&dense_slot[t])
            has_cost = cost >= 0 and cost_currency[i] == currency

            # ---- the list price: the first book whose entry is active, valid on the
            # date and has a tier at the quantity (DESIGN §4 step 4)
            for b in range(n_books):
                book_row[b] = -1
                book_factor[b] = 0
                book_usable[b] = 0
            if n_books and _prefix_run(price_ptr, s, &lo, &hi):
                for p in range(lo, hi):
                    key = price_keys[p] & book_mask
                    for b in range(n_books):
                        if (key == books[b] * PRICE_CURRENCY_SLOTS + currency
                                and 0 <= price_rows[p] < price_rows_n):
                            book_row[b] = price_rows[p]
            lp.row = -1
            lp.contract = -1
            lp.kind = 0
            lp.factor = 1
            lp.tier = -1
            lp.num_a = 0
            lp.num_b = 1
            lp.den_a = 1
            lp.den_b = 1
            list_book[i] = -1
            b = -1
            for k in range(n_books):
                entry = book_row[k]
                if entry < 0:
                    continue
                if not (price_active[entry] and price_valid_from[entry] <= date
                        and price_valid_to[entry] > date):
                    continue
                book_usable[k] = 1
                book_factor[k] = _factor_on_item(uom_code, uom_factor, i, price_uom[entry])
                if b < 0:
                    t = _tier_of(price_tier_min, entry, price_n_tiers[entry], q,
                                 book_factor[k])
                    if t >= 0:
                        b = <int>k
                        lp.row = entry
                        lp.factor = book_factor[k]
                        lp.den_a = book_factor[k]
                        lp.tier = t
                        lp.num_a = price_tier_value[entry, t]
                        list_book[i] = books[k]
            lp.unit_fits = pc_ratio(lp.num_a, lp.num_b, fu, lp.den_a, lp.den_b, 1, 1,
                                    &lp.unit)
            lp.price_key = lp.unit if lp.unit_fits else INT64_MAX
            list_tier[i] = lp.tier
            list_unit[i] = lp.unit
            has_list = lp.row >= 0

            # ---- gather the candidates' contract lines: SKU lines, then group lines
            scratch.size = 0
            if n_candidates and line_keys.shape[0]:
                slot = -1
                if s < dense_slot.shape[0]:
                    slot = dense_slot[s]
                if 0 <= slot < dense.shape[0]:
                    # a covered SKU has no line of a contract beyond the width
                    width = dense.shape[1]
                    for k in range(n_candidates):
                        c = candidates_by_id[k]
                        if c < width and dense[slot, c] > 0:
                            if not _push(&scratch, dense[slot, c] - 1, 0, -1):
                                out_of_memory = True
                elif _prefix_run(line_ptr, s, &lo, &hi):
                    if hi - lo <= PROBE_RATIO * n_candidates:
                        for p in range(lo, hi):
                            c = line_keys[p] & contract_mask
                            if c < n_contracts and is_candidate[c]:
                                if not _push(&scratch, line_rows[p], 0, -1):
                                    out_of_memory = True
                    else:
                        for k in range(n_candidates):
                            key = (s << LINE_CONTRACT_BITS) | candidates_by_id[k]
                            p = _lower_bound(line_keys, lo, hi, key)
                            if p < hi and line_keys[p] == key:
                                if not _push(&scratch, line_rows[p], 0, -1):
                                    out_of_memory = True
            group = product_group[i]
            if 0 <= group < group_chain.shape[0] and group_keys.shape[0]:
                for d in range(group_chain.shape[1]):
                    g = group_chain[group, d]
                    if g < 0:
                        continue
                    g_lo = _lower_bound(group_keys, 0, group_keys.shape[0], g)
                    g_hi = _lower_bound(group_keys, g_lo, group_keys.shape[0], g + 1)
                    for p in range(g_lo, g_hi):
                        if not _push(&scratch, group_rows[p], d + 1, g):
                            out_of_memory = True
            if out_of_memory:
                break

            # ---- start loading every gathered row's columns at once: they are random rows
            # of 10M-row tables, and evaluating them one after the other would wait for
            # each miss in turn
            for k in range(scratch.size):
                r = scratch.row[k]
                if r < 0 or r >= line_rows_n:
                    continue
                pc_prefetch(&line_active[r])
                pc_prefetch(&line_contract[r])
                pc_prefetch(&line_kind[r])
                pc_prefetch(&line_uom[r])
                pc_prefetch(&line_n_tiers[r])
                pc_prefetch(&line_tier_min[r, 0])
                pc_prefetch(&line_tier_value[r, 0])

            # ---- evaluate them in gathered order; a contract's first line that applies
            # is its offer (SKU line, else the nearest group line)
            found_offer = 0
            best = lp  # (only read once found_offer is set)
            winner_hit[i] = -1
            for k in range(scratch.size):
                r = scratch.row[k]
                if r < 0 or r >= line_rows_n or not line_active[r]:
                    continue
                c = line_contract[r]
                if c < 0 or c >= n_contracts:
                    continue
                hit.row = r
                hit.contract = c
                hit.depth = scratch.depth[k]
                hit.target = scratch.target[k]
                hit.kind = line_kind[r]
                hit.factor = _factor_on_item(uom_code, uom_factor, i, line_uom[r])
                hit.tier = _tier_of(line_tier_min, r, line_n_tiers[r], q, hit.factor)
                value = line_tier_value[r, hit.tier if hit.tier > 0 else 0]
                if hit.kind == NET:
                    hit.num_a, hit.num_b = value, 1
                    hit.den_a, hit.den_b = hit.factor if hit.factor > 1 else 1, 1
                elif hit.kind == DISCOUNT:
                    hit.num_a, hit.num_b = lp.num_a, BPS - value
                    hit.den_a, hit.den_b = lp.factor, BPS
                else:
                    hit.num_a, hit.num_b = cost, BPS + value
                    hit.den_a, hit.den_b = BPS, 1
                if hit.factor <= 0:
                    lost = LOST_UOM
                elif hit.tier < 0:
                    lost = LOST_BELOW_BREAK
                elif hit.kind == DISCOUNT and not has_list:
                    lost = LOST_NO_LIST
                elif hit.kind != NET and hit.kind != DISCOUNT and not has_cost:
                    lost = LOST_NO_COST
                else:
                    lost = LOST_WON
                if lost == LOST_WON:
                    hit.unit_fits = pc_ratio(hit.num_a, hit.num_b, fu, hit.den_a, hit.den_b,
                                             1, 1, &hit.unit)
                else:
                    hit.unit, hit.unit_fits = 0, 1
                hit.price_key = hit.unit if hit.unit_fits else INT64_MAX
                if hits < hits_capacity:
                    hit_line[hits] = i
                    hit_row[hits] = r
                    hit_contract[hits] = c
                    hit_depth[hits] = hit.depth
                    hit_target[hits] = hit.target
                    hit_kind[hits] = hit.kind
                    hit_tier[hits] = hit.tier
                    hit_unit[hits] = hit.unit
                    hit_lost[hits] = lost
                if lost == LOST_WON and offered[c] != i + 1:
                    offered[c] = <int32_t>(i + 1)
                    if not found_offer or _better(&hit, &best, policy, rank, code_order):
                        best = hit
                        found_offer = 1
                        winner_hit[i] = hits
                hits += 1

            # ---- the winner (DESIGN §4 step 3): under lowest_price the list price beats
            # the best contract line only when strictly lower
            if found_offer and (policy == 0 or not has_list
                                or lp.price_key >= best.price_key):
                win = best
            else:
                win = lp
                winner_hit[i] = -1
            if win.contract < 0 and win.row < 0:
                # no price at all: NO_PRICE (the columns hold "no value")
                priced[i] = 0
                overflow[i] = 0
                unit_price[i] = 0
                extended[i] = 0
                source[i] = SOURCE_NONE
                source_id[i] = -1
                level[i] = -1
                kind[i] = 0
                target_group[i] = -1
                tier_index[i] = -1
                tier_min[i] = -1
                tier_uom[i] = -1
                next_break_qty[i] = -1
                next_break_unit[i] = 0
                continue
            priced[i] = 1
            fits = pc_ratio(q, win.num_a, win.num_b, win.den_a, win.den_b, 1,
                            micros_per_minor, &extended[i])
            # a unit price beyond int64 micros is an overflow, even for 0 units
            overflow[i] = not (fits and win.unit_fits)
            unit_price[i] = win.unit
            tier_index[i] = win.tier
            if win.contract >= 0:
                source[i] = SOURCE_CONTRACT
                source_id[i] = win.contract
                g2 = specificity[win.contract]
                if g2 == 0:
                    level[i] = LEVEL_ACCOUNT
                elif g2 < SPEC_GROUP:
                    level[i] = LEVEL_PARENT
                elif g2 < SPEC_ALL:
                    level[i] = LEVEL_PRICE_GROUP
                else:
                    level[i] = LEVEL_ALL
                kind[i] = <int8_t>win.kind
                target_group[i] = win.target
                tier_min[i] = line_tier_min[win.row, win.tier]
                tier_uom[i] = line_uom[win.row]
                n_tiers_w = line_n_tiers[win.row]
            else:
                source[i] = SOURCE_PRICE_LIST
                source_id[i] = list_book[i]
                level[i] = <int8_t>book_code_level[b]
                kind[i] = 0
                target_group[i] = -1
                tier_min[i] = price_tier_min[win.row, win.tier]
                tier_uom[i] = price_uom[win.row]
                n_tiers_w = price_n_tiers[win.row]

            # ---- next-break hint: the winner's next tier as a quantity in the line's UoM
            # that honours the sell rules, priced at the tier that quantity falls in
            next_break_qty[i] = -1
            next_break_unit[i] = 0
            if win.tier + 1 >= n_tiers_w or win.tier + 1 >= line_tier_min.shape[1]:
                continue
            safe_unit = fu if fu > 1 else 1
            multiple = order_multiple[i] if order_multiple[i] > 1 else 1
            # every product below is checked: a hint that int64 cannot hold is no hint
            if not pc_mul64(safe_unit // _gcd(safe_unit, multiple), multiple, &step):
                continue
            if win.contract >= 0:
                t = line_tier_min[win.row, win.tier + 1]
            else:
                t = price_tier_min[win.row, win.tier + 1]
            if not pc_mul64(t, win.factor, &needed):
                continue
            if needed < min_order_qty[i]:
                needed = min_order_qty[i]
            g2 = needed // step + (1 if needed % step else 0)
            if not pc_mul64(g2, step, &next_base):
                continue
            if win.contract >= 0:
                hint_tier = _tier_of(line_tier_min, win.row, n_tiers_w, next_base, win.factor)
                value = line_tier_value[win.row, hint_tier if hint_tier > 0 else 0]
            else:
                hint_tier = _tier_of(price_tier_min, win.row, n_tiers_w, next_base,
                                     win.factor)
                value = price_tier_value[win.row, hint_tier if hint_tier > 0 else 0]
            hint_num_a, hint_num_b = value, 1
            hint_den_a, hint_den_b = win.den_a, win.den_b
            if win.kind == DISCOUNT:
                # re-based on the list price resolved again at the hint quantity: the
                # own list may apply there where it did not below its first break
                lprice = -1
                for k in range(n_books):
                    if not book_usable[k]:
                        continue
                    entry = book_row[k]
                    t = _tier_of(price_tier_min, entry, price_n_tiers[entry], next_base,
                                 book_factor[k])
                    if t >= 0:
                        lprice = price_tier_value[entry, t]
                        lfactor = book_factor[k]
                        break
                if lprice < 0:
                    continue  # (cannot happen: the list that priced the line still does)
                hint_num_a, hint_num_b = lprice, BPS - value
                hint_den_a, hint_den_b = lfactor, BPS
            elif win.kind == COST_PLUS:
                hint_num_a, hint_num_b = cost, BPS + value
            if pc_ratio(hint_num_a, hint_num_b, fu, hint_den_a, hint_den_b, 1, 1,
                        &hint_unit):
                next_break_qty[i] = next_base // safe_unit
                next_break_unit[i] = hint_unit

    free(scratch.row)
    free(scratch.depth)
    free(scratch.target)
    free(offered)
    if out_of_memory:
        raise MemoryError()
    return hits
