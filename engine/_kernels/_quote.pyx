# cython: language_level=3
"""The quote kernel of ``engine.quote``: one call answers a whole quote (DESIGN §2–§5).

:func:`quote_batch` looks the lines' SKU and UoM codes up in the state's shared code
indexes (``codeindex.h``), converts UoMs, gives each line its status and sell-rule verdict,
prices every orderable line, and computes availability over the location set with the
account's disclosure. Rules are stated in the Python modules whose steps these are
(``engine.catalog``, ``engine.pricing``, ``engine.atp``, ``engine.quote``); this file only
says how.

Pricing, per line: the list price from the account's own price list, else LIST; the SKU
line and the product-group lines up the group chain of every candidate contract; all-units
tiers; NET / DISCOUNT / COST_PLUS as exact fractions; both policies; exact money with
128-bit intermediates (``exact.h``); the next-break hint. It first gathers the rows of the
candidates' contract lines that target the SKU (dense row, scan of the SKU's sorted keys,
or a binary search per candidate) and then those of its product-group chain, nearest group
first, into a scratch buffer; then it evaluates them in that order, so the first line of a
contract that applies is the contract's offer (its SKU line, else the nearest group line:
DESIGN §4 step 2).

Everything reads the state's arrays through typed memoryviews (``const``: a worker's
arrays are read-only shared-memory mappings), kept in a :class:`Tables` made once per set
of arrays. The only per-line touch of a Python object is reading where each code's bytes
are (the request's codes are Python str); everything after runs without the GIL.
"""

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint64_t, INT64_MAX
from libc.stdlib cimport calloc, free, malloc, realloc

from engine._kernels.codeindex cimport (
    ascii_of, ci_find, ci_find_hashed, ci_hash, ci_prefetch_row,
)
from engine._kernels.exact cimport pc_ratio
from engine._kernels.search cimport _guided_lower_bound, _lower_bound

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
    # lines whose rows are loaded ahead together (a few hundred cache lines each block)
    PREFETCH_BLOCK = 16

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
    """The state's arrays a quote reads, as typed memoryviews: contract lines and their
    index, price entries and theirs, product-group chains, item columns, inventory, the
    inbound schedule and the SKU and UoM code indexes. Made once per set of arrays and kept
    by ``engine.tables`` while the state holds the same arrays: acquiring a memoryview
    costs a buffer request and a format check, too much to pay for ~40 arrays per quote."""

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
    cdef const int8_t[::1] item_status
    cdef const int16_t[:, ::1] item_uom_code
    cdef const int64_t[:, ::1] item_uom_factor
    cdef const int64_t[::1] item_min_order_qty
    cdef const int64_t[::1] item_order_multiple
    cdef const int32_t[::1] item_group
    cdef const int64_t[::1] item_cost
    cdef const int16_t[::1] item_cost_currency
    cdef const int32_t[::1] item_lead_time
    cdef const int64_t[:, ::1] on_hand
    cdef const int64_t[:, ::1] allocated
    cdef const int64_t[:, ::1] held
    cdef const int64_t[:, ::1] safety_stock
    cdef const int64_t[::1] inbound_keys
    cdef const int64_t[::1] inbound_qty
    cdef const unsigned char[:, ::1] sku_arena
    cdef const uint64_t[::1] sku_slots
    cdef const unsigned char[:, ::1] uom_arena
    cdef const uint64_t[::1] uom_slots

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
        const int8_t[::1] item_status,
        const int16_t[:, ::1] item_uom_code,
        const int64_t[:, ::1] item_uom_factor,
        const int64_t[::1] item_min_order_qty,
        const int64_t[::1] item_order_multiple,
        const int32_t[::1] item_group,
        const int64_t[::1] item_cost,
        const int16_t[::1] item_cost_currency,
        const int32_t[::1] item_lead_time,
        const int64_t[:, ::1] on_hand,
        const int64_t[:, ::1] allocated,
        const int64_t[:, ::1] held,
        const int64_t[:, ::1] safety_stock,
        const int64_t[::1] inbound_keys,
        const int64_t[::1] inbound_qty,
        const unsigned char[:, ::1] sku_arena,
        const uint64_t[::1] sku_slots,
        const unsigned char[:, ::1] uom_arena,
        const uint64_t[::1] uom_slots,
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
        # every item column has the same rows, every inventory column the same shape, and
        # a code arena is never empty: the kernels index them without checking each other
        rows = item_status.shape[0]
        if (item_uom_code.shape[0] != rows or item_uom_factor.shape[0] != rows
                or item_uom_factor.shape[1] != item_uom_code.shape[1]
                or item_min_order_qty.shape[0] != rows or item_order_multiple.shape[0] != rows
                or item_group.shape[0] != rows or item_cost.shape[0] != rows
                or item_cost_currency.shape[0] != rows or item_lead_time.shape[0] != rows):
            raise ValueError("Tables: item columns of different lengths")
        if (allocated.shape[0] != on_hand.shape[0] or allocated.shape[1] != on_hand.shape[1]
                or held.shape[0] != on_hand.shape[0] or held.shape[1] != on_hand.shape[1]
                or safety_stock.shape[0] != on_hand.shape[0]
                or safety_stock.shape[1] != on_hand.shape[1]):
            raise ValueError("Tables: inventory columns of different shapes")
        if inbound_qty.shape[0] != inbound_keys.shape[0]:
            raise ValueError("Tables: inbound columns of different lengths")
        if (sku_arena.shape[0] == 0 or uom_arena.shape[0] == 0 or sku_slots.shape[0] == 0
                or uom_slots.shape[0] == 0):
            raise ValueError("Tables: an empty code arena or index")
        self.item_status = item_status
        self.item_uom_code = item_uom_code
        self.item_uom_factor = item_uom_factor
        self.item_min_order_qty = item_min_order_qty
        self.item_order_multiple = item_order_multiple
        self.item_group = item_group
        self.item_cost = item_cost
        self.item_cost_currency = item_cost_currency
        self.item_lead_time = item_lead_time
        self.on_hand = on_hand
        self.allocated = allocated
        self.held = held
        self.safety_stock = safety_stock
        self.inbound_keys = inbound_keys
        self.inbound_qty = inbound_qty
        self.sku_arena = sku_arena
        self.sku_slots = sku_slots
        self.uom_arena = uom_arena
        self.uom_slots = uom_slots


cdef class Context:
    """One account context's arrays (``engine.contexts.AccountContext``) and its currency,
    date and price books, as typed memoryviews; kept beside the context it was made of."""

    cdef const uint8_t[::1] is_candidate
    cdef const int32_t[::1] rank
    cdef const int32_t[::1] specificity
    cdef const int64_t[::1] code_order
    cdef const int64_t[::1] candidates_by_id
    cdef const int64_t[::1] group_ptr
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
        const int64_t[::1] group_ptr,
        const int64_t[::1] group_rows,
        int64_t currency,
        int64_t date,
        int64_t own_price_list,
        int64_t list_price_list,
    ):
        cdef Py_ssize_t g
        self.is_candidate = is_candidate
        self.rank = rank
        self.specificity = specificity
        self.code_order = code_order
        self.candidates_by_id = candidates_by_id
        # group g's lines are group_rows[group_ptr[g]:group_ptr[g + 1]]: a quote finds a
        # group's lines with two reads, not two binary searches per group of the chain
        if group_ptr.shape[0] == 0:
            raise ValueError("Context: group_ptr needs at least one entry")
        for g in range(group_ptr.shape[0] - 1):
            if not 0 <= group_ptr[g] <= group_ptr[g + 1] <= group_rows.shape[0]:
                raise ValueError("Context: group_ptr is not a run index over group_rows")
        self.group_ptr = group_ptr
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


cdef inline void _prefetch_line(
    int64_t r, Py_ssize_t rows, const uint8_t[::1] line_active,
    const int32_t[::1] line_contract, const int8_t[::1] line_kind,
    const int16_t[::1] line_uom, const int8_t[::1] line_n_tiers,
    const int64_t[:, ::1] line_tier_min, const int64_t[:, ::1] line_tier_value,
) noexcept nogil:
    """Start loading contract line r's columns (no effect on results)."""
    if 0 <= r < rows:
        pc_prefetch(&line_active[r])
        pc_prefetch(&line_contract[r])
        pc_prefetch(&line_kind[r])
        pc_prefetch(&line_uom[r])
        pc_prefetch(&line_n_tiers[r])
        pc_prefetch(&line_tier_min[r, 0])
        pc_prefetch(&line_tier_value[r, 0])


cdef inline void _no_price(
    Py_ssize_t i, int64_t[::1] unit_price, int64_t[::1] extended, int64_t[::1] source_id,
    int64_t[::1] target_group, int64_t[::1] tier_index, int64_t[::1] tier_min,
    int64_t[::1] tier_uom, int64_t[::1] next_break_qty, int64_t[::1] next_break_unit,
    int8_t[::1] source, int8_t[::1] level, int8_t[::1] kind, uint8_t[::1] priced,
    uint8_t[::1] overflow,
) noexcept nogil:
    """Line i has no price: every column holds its "no value"."""
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


cdef Py_ssize_t _price_lines(
    Tables tables,
    Context context,
    const int64_t[::1] sku,
    const int64_t[::1] base_qty,
    const int64_t[::1] factor_u,
    const int8_t[::1] status,
    int64_t micros_per_minor,
    int policy,
    int64_t[:, ::1] out64,
    int8_t[:, ::1] out8,
    uint8_t[:, ::1] flags,
    int64_t[:, ::1] hits_out,
) except -1:
    """Price the lines whose ``status`` is OK (0) — the others get "no price" — of one
    account; fill the answer blocks; return the number of candidate contract lines seen
    (``hits_out`` holds the first of them, as many as it has columns: call again with
    more room when the count is larger). Item columns are read by the line's SKU row.

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
    cdef const int16_t[:, ::1] uom_code = tables.item_uom_code
    cdef const int64_t[:, ::1] uom_factor = tables.item_uom_factor
    cdef const int64_t[::1] min_order_qty = tables.item_min_order_qty
    cdef const int64_t[::1] order_multiple = tables.item_order_multiple
    cdef const int32_t[::1] product_group = tables.item_group
    cdef const int64_t[::1] cost_micros = tables.item_cost
    cdef const int16_t[::1] cost_currency = tables.item_cost_currency
    cdef Py_ssize_t item_rows = uom_code.shape[0]
    cdef const uint8_t[::1] is_candidate = context.is_candidate
    cdef const int32_t[::1] rank = context.rank
    cdef const int32_t[::1] specificity = context.specificity
    cdef const int64_t[::1] code_order = context.code_order
    cdef const int64_t[::1] candidates_by_id = context.candidates_by_id
    cdef const int64_t[::1] group_ptr = context.group_ptr
    cdef const int64_t[::1] group_rows = context.group_rows
    cdef int64_t currency = context.currency
    cdef int64_t date = context.date
    cdef int64_t own_price_list = context.own_price_list
    cdef int64_t list_price_list = context.list_price_list
    if (base_qty.shape[0] != sku.shape[0] or factor_u.shape[0] != sku.shape[0]
            or status.shape[0] != sku.shape[0]):
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
    cdef Py_ssize_t i, i2, block_end, k, p, lo, hi, slot, width, g_lo, g_hi, d
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
            if i % PREFETCH_BLOCK == 0:
                block_end = i + PREFETCH_BLOCK if i + PREFETCH_BLOCK < n else n
                # ---- load ahead, stage by stage over the next block of lines: each stage's
                # addresses come from what the stage before loaded, and the lines' misses within
                # a stage are independent, so the memory system serves them side by side instead
                # of one line's chain (index entry, keys, rows, columns) after another's. Blocks
                # keep what is loaded ahead within the caches (a whole 1,000-line batch would not)
                # stage 1: the SKU's index entries and item columns
                for i2 in range(i, block_end):
                    s = sku[i2]
                    if status[i2] != 0 or not 0 <= s < item_rows:
                        continue
                    pc_prefetch(&cost_micros[s])
                    pc_prefetch(&cost_currency[s])
                    pc_prefetch(&product_group[s])
                    pc_prefetch(&uom_code[s, 0])
                    pc_prefetch(&uom_factor[s, 0])
                    if s + 1 < price_ptr.shape[0]:
                        pc_prefetch(&price_ptr[s])
                    if s + 1 < line_ptr.shape[0]:
                        pc_prefetch(&line_ptr[s])
                    if s < dense_slot.shape[0]:
                        pc_prefetch(&dense_slot[s])
                # stage 2: the runs of keys those entries point at
                for i2 in range(i, block_end):
                    s = sku[i2]
                    if status[i2] != 0 or not 0 <= s < item_rows:
                        continue
                    if _prefix_run(price_ptr, s, &lo, &hi):
                        pc_prefetch(&price_keys[lo])
                        pc_prefetch(&price_rows[lo])
                    slot = dense_slot[s] if s < dense_slot.shape[0] else -1
                    if 0 <= slot < dense.shape[0]:
                        for k in range(n_candidates):
                            c = candidates_by_id[k]
                            if c < dense.shape[1]:
                                pc_prefetch(&dense[slot, c])
                    elif (_prefix_run(line_ptr, s, &lo, &hi)
                          and hi - lo <= PROBE_RATIO * n_candidates):
                        pc_prefetch(&line_keys[lo])
                        pc_prefetch(&line_rows[lo])
                    group = product_group[s]
                    if 0 <= group < group_chain.shape[0]:
                        pc_prefetch(&group_chain[group, 0])
                # stage 3: the price entries' and contract lines' columns
                for i2 in range(i, block_end):
                    s = sku[i2]
                    if status[i2] != 0 or not 0 <= s < item_rows:
                        continue
                    if n_books and _prefix_run(price_ptr, s, &lo, &hi):
                        for p in range(lo, hi):
                            entry = price_rows[p]
                            if 0 <= entry < price_rows_n:
                                pc_prefetch(&price_active[entry])
                                pc_prefetch(&price_valid_from[entry])
                                pc_prefetch(&price_valid_to[entry])
                                pc_prefetch(&price_uom[entry])
                                pc_prefetch(&price_n_tiers[entry])
                                pc_prefetch(&price_tier_min[entry, 0])
                                pc_prefetch(&price_tier_value[entry, 0])
                    slot = dense_slot[s] if s < dense_slot.shape[0] else -1
                    if 0 <= slot < dense.shape[0]:
                        for k in range(n_candidates):
                            c = candidates_by_id[k]
                            if c < dense.shape[1] and dense[slot, c] > 0:
                                _prefetch_line(dense[slot, c] - 1, line_rows_n, line_active,
                                               line_contract, line_kind, line_uom, line_n_tiers,
                                               line_tier_min, line_tier_value)
                    elif (_prefix_run(line_ptr, s, &lo, &hi)
                          and hi - lo <= PROBE_RATIO * n_candidates):
                        for p in range(lo, hi):
                            c = line_keys[p] & contract_mask
                            if c < n_contracts and is_candidate[c]:
                                _prefetch_line(line_rows[p], line_rows_n, line_active,
                                               line_contract, line_kind, line_uom, line_n_tiers,
                                               line_tier_min, line_tier_value)

            s = sku[i]
            if status[i] != 0 or not 0 <= s < item_rows:
                # not orderable: a bad line must not show another SKU's price
                _no_price(i, unit_price, extended, source_id, target_group, tier_index,
                          tier_min, tier_uom, next_break_qty, next_break_unit, source,
                          level, kind, priced, overflow)
                list_book[i] = -1
                list_tier[i] = -1
                list_unit[i] = 0
                winner_hit[i] = -1
                continue
            q = base_qty[i]
            fu = factor_u[i]
            cost = cost_micros[s]
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
            has_cost = cost >= 0 and cost_currency[s] == currency

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
                book_factor[k] = _factor_on_item(uom_code, uom_factor, s, price_uom[entry])
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
            group = product_group[s]
            if 0 <= group < group_chain.shape[0] and group_rows.shape[0]:
                for d in range(group_chain.shape[1]):
                    g = group_chain[group, d]
                    if g < 0 or g + 1 >= group_ptr.shape[0]:
                        continue
                    g_lo = group_ptr[g]
                    g_hi = group_ptr[g + 1]
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
                hit.factor = _factor_on_item(uom_code, uom_factor, s, line_uom[r])
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
                _no_price(i, unit_price, extended, source_id, target_group, tier_index,
                          tier_min, tier_uom, next_break_qty, next_break_unit, source,
                          level, kind, priced, overflow)
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
            multiple = order_multiple[s] if order_multiple[s] > 1 else 1
            # every product below is checked: a hint that int64 cannot hold is no hint
            if not pc_mul64(safe_unit // _gcd(safe_unit, multiple), multiple, &step):
                continue
            if win.contract >= 0:
                t = line_tier_min[win.row, win.tier + 1]
            else:
                t = price_tier_min[win.row, win.tier + 1]
            if not pc_mul64(t, win.factor, &needed):
                continue
            if needed < min_order_qty[s]:
                needed = min_order_qty[s]
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


# ---- availability (DESIGN §5; engine.atp states the rules) ---------------------------------

cdef enum:
    INBOUND_SKU_SHIFT = 32
    LOCATION_BITS = 12
    DATE_BITS = 20
    ITEM_UNKNOWN = 0
    ITEM_ACTIVE = 1
    ITEM_BLOCKED = 3
    DATE_NONE = 0
    DATE_STOCK = 1
    DATE_INBOUND = 2
    DATE_LEAD_TIME = 3


cdef int _availability(
    Tables tables,
    const int64_t[::1] sku,
    const int64_t[::1] need,
    const int8_t[::1] answered,
    const int64_t[::1] locations,
    int64_t today,
    int64_t[:, ::1] available,
    uint8_t[:, ::1] oversold,
    int64_t[::1] network,
    int64_t[::1] earliest_date,
    int8_t[::1] date_source,
) except -1:
    """Fill, for every line i with ``answered[i]`` and location slot j: ``available[i, j]``
    (clipped at 0), ``oversold[i, j]``, ``network[i]``, ``earliest_date[i]`` (days, -1
    none) and ``date_source[i]``; a line not answered gets nothing (0, -1, NONE). A SKU
    or location id outside the inventory's rows or columns has no stock there.

    The receipts of a short line are read from the sorted inbound keys (``sku << 32 |
    date << 12 | location``) in date order: on day d the network holds Σ_l
    max(available_now_l + receipts_l(≤ d), 0), so each receipt adds what it lifts its
    location's running total above zero. O(lines × locations + receipts of the short
    lines), no GIL.
    """
    cdef const int64_t[:, ::1] on_hand = tables.on_hand
    cdef const int64_t[:, ::1] allocated = tables.allocated
    cdef const int64_t[:, ::1] held = tables.held
    cdef const int64_t[:, ::1] safety_stock = tables.safety_stock
    cdef const int64_t[::1] inbound_keys = tables.inbound_keys
    cdef const int64_t[::1] inbound_qty = tables.inbound_qty
    cdef const int8_t[::1] status = tables.item_status
    cdef const int32_t[::1] lead_time_days = tables.item_lead_time
    cdef Py_ssize_t n = sku.shape[0], n_loc = locations.shape[0]
    cdef Py_ssize_t i, i2, block_end, j, p, lo, hi
    cdef Py_ssize_t width = on_hand.shape[1], rows = on_hand.shape[0]
    cdef Py_ssize_t item_rows = status.shape[0]
    cdef int64_t s, now, total, key, loc, day, qty, before, after, gain, date
    cdef int64_t date_mask = (<int64_t>1 << DATE_BITS) - 1
    cdef int64_t loc_mask = (<int64_t>1 << LOCATION_BITS) - 1
    cdef int64_t n_keys = inbound_keys.shape[0]
    cdef int source
    if (available.shape[0] != n or available.shape[1] != n_loc or oversold.shape[0] != n
            or oversold.shape[1] != n_loc or network.shape[0] != n
            or earliest_date.shape[0] != n or date_source.shape[0] != n
            or need.shape[0] != n or answered.shape[0] != n):
        raise ValueError("availability: arrays of different lengths")
    # slot_of[location] = 1 + its slot in the set (0: not in the set); raw[slot] is the
    # location's available_now plus the receipts read so far, for the current line
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
            if i % PREFETCH_BLOCK == 0:
                # start the next block's stock cells loading: a line's cells sit on up to
                # four cache lines per column at the large scale, and the lines' misses
                # then overlap
                block_end = i + PREFETCH_BLOCK if i + PREFETCH_BLOCK < n else n
                for i2 in range(i, block_end):
                    s = sku[i2]
                    if answered[i2] and 0 <= s < rows:
                        for j in range(n_loc):
                            loc = locations[j]
                            if 0 <= loc < width:
                                pc_prefetch(&on_hand[s, loc])
                                pc_prefetch(&allocated[s, loc])
                                pc_prefetch(&held[s, loc])
                                pc_prefetch(&safety_stock[s, loc])
            s = sku[i]
            if not answered[i]:
                for j in range(n_loc):
                    available[i, j] = 0
                    oversold[i, j] = 0
                network[i] = 0
                earliest_date[i] = -1
                date_source[i] = DATE_NONE
                continue
            total = 0
            for j in range(n_loc):
                loc = locations[j]
                # an id this state's inventory does not hold has no stock: never a read
                # outside the arrays
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
            source = DATE_NONE
            if total >= need[i]:
                date = today
                source = DATE_STOCK
            elif 0 <= s < item_rows and status[s] == ITEM_ACTIVE:
                if n_keys:
                    lo = _guided_lower_bound(inbound_keys, 0, n_keys,
                                             s << INBOUND_SKU_SHIFT)
                    hi = _lower_bound(inbound_keys, lo,
                                      lo + 64 if lo + 64 < n_keys else n_keys,
                                      (s + 1) << INBOUND_SKU_SHIFT)
                    if hi == lo + 64:  # a SKU with more than 64 receipts
                        hi = _lower_bound(inbound_keys, hi, n_keys,
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
                            source = DATE_INBOUND
                            break
                if source == DATE_NONE and lead_time_days[s] >= 0:
                    date = today + lead_time_days[s]
                    source = DATE_LEAD_TIME
            earliest_date[i] = date
            date_source[i] = <int8_t>source
    free(slot_of)
    free(raw)
    return 0


def availability_batch(
    Tables tables not None,
    const int64_t[::1] sku,
    const int64_t[::1] need,
    const int8_t[::1] answered,
    const int64_t[::1] locations,
    int64_t today,
    int show,
    int64_t cap,
    int64_t[:, ::1] available,
    uint8_t[:, ::1] oversold,
    int64_t[::1] network,
    int64_t[::1] earliest_date,
    int8_t[::1] date_source,
    int64_t[:, ::1] shown,
    int8_t[:, ::1] bucket,
):
    """Availability of SKU ids over a location set with a disclosure policy
    (``engine.atp.availability``: what WatchAvailability answers); the lines not
    ``answered`` get nothing. The quote's own path is :func:`quote_batch`."""
    if (shown.shape[0] != available.shape[0] or shown.shape[1] != available.shape[1]
            or bucket.shape[0] != available.shape[0]
            or bucket.shape[1] != available.shape[1]):
        raise ValueError("availability_batch: disclosure blocks of the wrong shape")
    _availability(tables, sku, need, answered, locations, today, available, oversold,
                  network, earliest_date, date_source)
    with nogil:
        _disclose(available, show, cap, shown, bucket)


cdef void _disclose(const int64_t[:, ::1] available, int show, int64_t cap,
                    int64_t[:, ::1] shown, int8_t[:, ::1] bucket) noexcept nogil:
    """The account's disclosure of clipped quantities (DESIGN §5): EXACT shows the number,
    CAPPED at most ``cap``, BUCKETS hides it (-1); the bucket is OUT (≤ 0), LOW (≤ cap) or
    IN_STOCK. Stored numbers are never changed. The caller checked the shapes."""
    cdef Py_ssize_t i, j
    cdef int64_t v
    for i in range(available.shape[0]):
        for j in range(available.shape[1]):
            v = available[i, j]
            bucket[i, j] = BUCKET_OUT if v <= 0 else BUCKET_LOW if v <= cap else BUCKET_IN_STOCK
            if show == SHOW_EXACT:
                shown[i, j] = v
            elif show == SHOW_CAPPED:
                shown[i, j] = v if v < cap else cap
            else:
                shown[i, j] = -1


# ---- the whole quote -----------------------------------------------------------------------

# line statuses (engine.catalog.LineStatus), disclosure modes and stock buckets
# (engine.state.Disclosure, engine.quote.Bucket), price modes of quote_batch
cdef enum:
    LINE_OK = 0
    LINE_UNKNOWN_SKU = 1
    LINE_UNKNOWN_UOM = 2
    LINE_ITEM_BLOCKED = 3
    LINE_NO_PRICE = 4
    LINE_QTY_OUT_OF_RANGE = 5
    LINE_AMOUNT_OVERFLOW = 6
    LINE_ZERO_QUANTITY = 7
    SHOW_EXACT = 0
    SHOW_CAPPED = 1
    SHOW_BUCKETS = 2
    BUCKET_OUT = 0
    BUCKET_LOW = 1
    BUCKET_IN_STOCK = 2
    PRICES_NOT_ASKED = 0
    PRICES_ASKED = 1
    PRICES_NO_CURRENCY = 2

# rows of quote_batch's line blocks, after the pricing rows (OUT_*) of each block
cdef enum:
    LINE_SKU = OUT_INT64_ROWS
    LINE_UOM = OUT_INT64_ROWS + 1
    LINE_FACTOR = OUT_INT64_ROWS + 2
    LINE_BASE_QTY = OUT_INT64_ROWS + 3
    LINE_SUGGESTED = OUT_INT64_ROWS + 4
    LINE_NETWORK = OUT_INT64_ROWS + 5
    LINE_EARLIEST = OUT_INT64_ROWS + 6
    LINE_INT64_ROWS = OUT_INT64_ROWS + 7
    LINE_STATUS = OUT_INT8_ROWS
    LINE_ITEM_STATUS = OUT_INT8_ROWS + 1
    LINE_DATE_SOURCE = OUT_INT8_ROWS + 2
    LINE_INT8_ROWS = OUT_INT8_ROWS + 3
    LINE_BELOW_MINIMUM = OUT_FLAG_ROWS
    LINE_NOT_MULTIPLE = OUT_FLAG_ROWS + 1
    LINE_SUGGESTED_IN_BASE = OUT_FLAG_ROWS + 2
    LINE_FLAG_ROWS = OUT_FLAG_ROWS + 3

# a line's base quantity is at most 10^12 (DESIGN §2)
cdef int64_t LIMIT_BASE_QTY = 1000000000000
MAX_BASE_QTY = LIMIT_BASE_QTY

#: Rows of quote_batch's blocks by name, for engine.quote to take its views from.
LINE_ROWS = {
    "unit": OUT_UNIT, "extended": OUT_EXTENDED, "source_id": OUT_SOURCE_ID,
    "target_group": OUT_TARGET_GROUP, "tier_index": OUT_TIER_INDEX, "tier_min": OUT_TIER_MIN,
    "tier_uom": OUT_TIER_UOM, "next_qty": OUT_NEXT_QTY, "next_unit": OUT_NEXT_UNIT,
    "list_book": OUT_LIST_BOOK, "list_tier": OUT_LIST_TIER, "list_unit": OUT_LIST_UNIT,
    "winner_hit": OUT_WINNER_HIT, "sku": LINE_SKU, "uom": LINE_UOM, "factor": LINE_FACTOR,
    "base_qty": LINE_BASE_QTY, "suggested": LINE_SUGGESTED, "network": LINE_NETWORK,
    "earliest": LINE_EARLIEST, "int64": LINE_INT64_ROWS,
    "source": OUT_SOURCE, "level": OUT_LEVEL, "kind": OUT_KIND, "status": LINE_STATUS,
    "item_status": LINE_ITEM_STATUS, "date_source": LINE_DATE_SOURCE, "int8": LINE_INT8_ROWS,
    "priced": OUT_PRICED, "overflow": OUT_OVERFLOW, "below_minimum": LINE_BELOW_MINIMUM,
    "not_multiple": LINE_NOT_MULTIPLE, "suggested_in_base": LINE_SUGGESTED_IN_BASE,
    "flags": LINE_FLAG_ROWS, "hits": HIT_FIELDS,
}

#: Codes quote_batch hard-codes, for engine.quote to check its own against.
QUOTE_CONSTANTS = {
    "LINE_OK": LINE_OK, "LINE_UNKNOWN_SKU": LINE_UNKNOWN_SKU,
    "LINE_UNKNOWN_UOM": LINE_UNKNOWN_UOM, "LINE_ITEM_BLOCKED": LINE_ITEM_BLOCKED,
    "LINE_NO_PRICE": LINE_NO_PRICE, "LINE_QTY_OUT_OF_RANGE": LINE_QTY_OUT_OF_RANGE,
    "LINE_AMOUNT_OVERFLOW": LINE_AMOUNT_OVERFLOW,
    "LINE_ZERO_QUANTITY": LINE_ZERO_QUANTITY, "SHOW_EXACT": SHOW_EXACT,
    "SHOW_CAPPED": SHOW_CAPPED, "SHOW_BUCKETS": SHOW_BUCKETS, "BUCKET_OUT": BUCKET_OUT,
    "BUCKET_LOW": BUCKET_LOW, "BUCKET_IN_STOCK": BUCKET_IN_STOCK,
    "ITEM_UNKNOWN": ITEM_UNKNOWN, "ITEM_ACTIVE": ITEM_ACTIVE, "ITEM_BLOCKED": ITEM_BLOCKED,
    "INBOUND_SKU_SHIFT": INBOUND_SKU_SHIFT, "LOCATION_BITS": LOCATION_BITS,
    "DATE_NONE": DATE_NONE, "DATE_STOCK": DATE_STOCK, "DATE_INBOUND": DATE_INBOUND,
    "DATE_LEAD_TIME": DATE_LEAD_TIME, "MAX_BASE_QTY": MAX_BASE_QTY,
}


cdef inline int64_t _wrap_mul(int64_t a, int64_t b) noexcept nogil:
    """a × b modulo 2^64, as numpy's int64 arithmetic gives it (defined, unlike C's)."""
    return <int64_t>(<uint64_t>a * <uint64_t>b)


cdef inline int64_t _ceil_div(int64_t a, int64_t b) noexcept nogil:
    """⌈a / b⌉ for b > 0 (C division truncates toward zero)."""
    cdef int64_t q = a // b
    if a % b != 0 and a > 0:
        q += 1
    return q


cdef inline int64_t _floor_div(int64_t a, int64_t b) noexcept nogil:
    """⌊a / b⌋ for b > 0."""
    cdef int64_t q = a // b
    if a % b != 0 and a < 0:
        q -= 1
    return q


cdef void _resolve(
    Tables tables,
    const unsigned char **sku_text, const int64_t *sku_length, uint64_t *sku_hash,
    const unsigned char **uom_text, const int64_t *uom_length, const uint8_t *uom_given,
    bint with_uoms, Py_ssize_t n_skus, Py_ssize_t n_uoms,
    const int64_t[::1] qty,
    int64_t[:, ::1] out64, int8_t[:, ::1] out8, uint8_t[:, ::1] flags,
) noexcept nogil:
    """Codes → ids, UoM factor, status, base quantity and sell rules of every line
    (``engine.catalog.resolve_lines`` and the sell rules, DESIGN §2)."""
    cdef const int8_t[::1] item_status = tables.item_status
    cdef const int16_t[:, ::1] uom_code = tables.item_uom_code
    cdef const int64_t[:, ::1] uom_factor = tables.item_uom_factor
    cdef const int64_t[::1] min_order_qty = tables.item_min_order_qty
    cdef const int64_t[::1] order_multiple = tables.item_order_multiple
    cdef Py_ssize_t item_rows = item_status.shape[0]
    cdef Py_ssize_t n = qty.shape[0], i
    cdef int64_t s, row, u, f, q, base, minimum, multiple, suggested, safe
    cdef int8_t item, status
    cdef const unsigned char *sku_arena = &tables.sku_arena[0, 0]
    cdef const unsigned char *uom_arena = &tables.uom_arena[0, 0]
    cdef const uint64_t *sku_slots = &tables.sku_slots[0]
    cdef const uint64_t *uom_slots = &tables.uom_slots[0]
    cdef int64_t sku_width = tables.sku_arena.shape[1], uom_width = tables.uom_arena.shape[1]
    cdef int64_t n_sku_slots = tables.sku_slots.shape[0]
    cdef int64_t n_uom_slots = tables.uom_slots.shape[0]
    if n_skus > tables.sku_arena.shape[0]:
        n_skus = tables.sku_arena.shape[0]
    if n_uoms > tables.uom_arena.shape[0]:
        n_uoms = tables.uom_arena.shape[0]
    # start every line's first slot load, then the arena row that slot names, then each
    # line's item rows once its id is known: each stage's misses overlap across the cart
    # instead of one line's chain (slot, code, item) following another's
    for i in range(n):
        if sku_text[i] != NULL and 0 < sku_length[i] <= sku_width:
            sku_hash[i] = ci_hash(sku_text[i], sku_length[i])
            pc_prefetch(&sku_slots[sku_hash[i] & <uint64_t>(n_sku_slots - 1)])
    for i in range(n):
        if sku_text[i] != NULL and 0 < sku_length[i] <= sku_width:
            ci_prefetch_row(sku_arena, sku_width, n_skus, sku_slots, n_sku_slots, sku_hash[i])
    for i in range(n):
        s = -1
        if sku_text[i] != NULL and 0 < sku_length[i] <= sku_width:
            s = ci_find_hashed(sku_arena, sku_width, n_skus, sku_slots, n_sku_slots,
                               sku_text[i], sku_length[i], sku_hash[i])
        out64[LINE_SKU, i] = s
        if 0 <= s < item_rows:
            pc_prefetch(&item_status[s])
            pc_prefetch(&uom_code[s, 0])
            pc_prefetch(&uom_factor[s, 0])
            pc_prefetch(&min_order_qty[s])
            pc_prefetch(&order_multiple[s])
    for i in range(n):
        s = out64[LINE_SKU, i]
        row = s if 0 <= s < item_rows else 0  # an unknown SKU reads row 0, as a stand-in
        item = item_status[row] if item_rows else ITEM_UNKNOWN
        if s < 0 or s >= item_rows:
            item = ITEM_UNKNOWN
        u = -1
        f = 1
        if with_uoms:
            if uom_text[i] != NULL:
                u = ci_find(uom_arena, uom_width, n_uoms, uom_slots, n_uom_slots,
                            uom_text[i], uom_length[i])
            if u >= 0:
                f = _factor_on_item(uom_code, uom_factor, row, u) if item_rows else 0
            elif uom_given[i]:
                f = 0  # a UoM named but not known
        if s < 0:
            f = 0
        q = qty[i]
        safe = f if f > 1 else 1
        # statuses in increasing precedence: the first problem of a line is the one it says
        status = LINE_OK
        if item == ITEM_BLOCKED:
            status = LINE_ITEM_BLOCKED
        if q == 0:
            status = LINE_ZERO_QUANTITY  # also what proto3 sends for a quantity left unset
        if q < 0 or q > LIMIT_BASE_QTY // safe:
            status = LINE_QTY_OUT_OF_RANGE
        if f == 0:
            status = LINE_UNKNOWN_UOM
        if item == ITEM_UNKNOWN:
            status = LINE_UNKNOWN_SKU  # incl. a SKU known only from stock
        base = q * safe if status == LINE_OK else 0
        out64[LINE_UOM, i] = u
        out64[LINE_FACTOR, i] = f
        out64[LINE_BASE_QTY, i] = base
        out8[LINE_STATUS, i] = status
        out8[LINE_ITEM_STATUS, i] = item
        # sell rules: smallest base quantity >= max(request, minimum) that is a multiple
        # of the order multiple, in the line's UoM where it divides exactly
        minimum = min_order_qty[row] if item_rows else 0
        multiple = order_multiple[row] if item_rows else 1
        if multiple < 1:
            multiple = 1
        flags[LINE_BELOW_MINIMUM, i] = base < minimum
        flags[LINE_NOT_MULTIPLE, i] = base % multiple != 0
        suggested = _wrap_mul(_ceil_div(base if base > minimum else minimum, multiple),
                              multiple)
        if suggested % safe == 0:
            out64[LINE_SUGGESTED, i] = _floor_div(suggested, safe)
            flags[LINE_SUGGESTED_IN_BASE, i] = 0
        else:
            out64[LINE_SUGGESTED, i] = suggested
            flags[LINE_SUGGESTED_IN_BASE, i] = 1


def quote_batch(
    Tables tables not None,
    Context context,
    object skus,
    const int64_t[::1] qty,
    object uoms,
    Py_ssize_t n_skus,
    Py_ssize_t n_uoms,
    int price_mode,
    int64_t micros_per_minor,
    int policy,
    const int64_t[::1] locations,
    bint with_availability,
    int64_t today,
    int show,
    int64_t cap,
    int64_t[:, ::1] out64,
    int8_t[:, ::1] out8,
    uint8_t[:, ::1] flags,
    int64_t[:, ::1] available,
    int64_t[:, ::1] shown,
    uint8_t[:, ::1] oversold,
    int8_t[:, ::1] bucket,
    int64_t[:, ::1] hits_out,
):
    """One quote, whole: codes to ids through the shared code indexes, UoMs, statuses and
    sell rules, prices (``price_mode`` PRICES_ASKED with ``context``), availability over
    ``locations`` with the account's disclosure (``show``, ``cap``) — one call, no Python
    object made per line, the GIL released for everything after the codes' bytes are
    found. ``n_skus`` / ``n_uoms``: codes the caller's state version holds. Returns the
    number of candidate contract lines seen (for explain, as :func:`_price_lines`).
    """
    cdef list sku_list = skus if type(skus) is list else list(skus)
    cdef list uom_list = None
    cdef Py_ssize_t n = qty.shape[0], i, hits = 0
    cdef bint with_uoms = uoms is not None
    cdef object code
    if len(sku_list) != n:
        raise ValueError(f"quote_batch: {len(sku_list)} SKUs for {n} quantities")
    if with_uoms:
        uom_list = uoms if type(uoms) is list else list(uoms)
        if len(uom_list) != n:
            raise ValueError(f"quote_batch: {len(uom_list)} UoMs for {n} lines")
    if (out64.shape[0] != LINE_INT64_ROWS or out8.shape[0] != LINE_INT8_ROWS
            or flags.shape[0] != LINE_FLAG_ROWS or out64.shape[1] != n
            or out8.shape[1] != n or flags.shape[1] != n):
        raise ValueError("quote_batch: line blocks of the wrong shape")
    if with_availability and (
            available.shape[0] != n or available.shape[1] != locations.shape[0]
            or shown.shape[0] != n or shown.shape[1] != locations.shape[0]
            or bucket.shape[0] != n or bucket.shape[1] != locations.shape[0]):
        raise ValueError("quote_batch: availability blocks of the wrong shape")
    if price_mode == PRICES_ASKED and context is None:
        raise ValueError("quote_batch: prices asked without an account context")
    cdef const unsigned char **sku_text = <const unsigned char **>malloc(
        (n + 1) * sizeof(const unsigned char *))
    cdef const unsigned char **uom_text = <const unsigned char **>malloc(
        (n + 1) * sizeof(const unsigned char *))
    cdef int64_t *sku_length = <int64_t *>malloc((n + 1) * sizeof(int64_t))
    cdef int64_t *uom_length = <int64_t *>malloc((n + 1) * sizeof(int64_t))
    cdef uint8_t *uom_given = <uint8_t *>malloc((n + 1) * sizeof(uint8_t))
    cdef uint64_t *sku_hash = <uint64_t *>malloc((n + 1) * sizeof(uint64_t))
    if (sku_text == NULL or uom_text == NULL or sku_length == NULL or uom_length == NULL
            or uom_given == NULL or sku_hash == NULL):
        free(sku_text)
        free(uom_text)
        free(sku_length)
        free(uom_length)
        free(uom_given)
        free(sku_hash)
        raise MemoryError()
    try:
        # where each code's bytes are (the codes are Python str: read in place, no copy);
        # '' or None as a UoM is the base UoM, anything else names one
        for i in range(n):
            sku_text[i] = ascii_of(sku_list[i], &sku_length[i])
            if with_uoms:
                code = uom_list[i]
                uom_text[i] = ascii_of(code, &uom_length[i])
                uom_given[i] = not (code is None or (uom_text[i] != NULL
                                                     and uom_length[i] == 0))
        with nogil:
            _resolve(tables, sku_text, sku_length, sku_hash, uom_text, uom_length, uom_given,
                     with_uoms, n_skus, n_uoms, qty, out64, out8, flags)
        if price_mode == PRICES_ASKED:
            hits = _price_lines(tables, context, out64[LINE_SKU], out64[LINE_BASE_QTY],
                                out64[LINE_FACTOR], out8[LINE_STATUS], micros_per_minor,
                                policy, out64[:OUT_INT64_ROWS], out8[:OUT_INT8_ROWS],
                                flags[:OUT_FLAG_ROWS], hits_out)
        with nogil:
            for i in range(n):
                if price_mode == PRICES_ASKED and out8[LINE_STATUS, i] == LINE_OK:
                    if not flags[OUT_PRICED, i]:
                        out8[LINE_STATUS, i] = LINE_NO_PRICE
                    elif flags[OUT_OVERFLOW, i]:
                        out8[LINE_STATUS, i] = LINE_AMOUNT_OVERFLOW
                elif price_mode == PRICES_NO_CURRENCY and out8[LINE_STATUS, i] == LINE_OK:
                    out8[LINE_STATUS, i] = LINE_NO_PRICE
        if with_availability:
            # an unknown item is answered "nothing"; the others as their stock says
            _availability(tables, out64[LINE_SKU], out64[LINE_BASE_QTY],
                          out8[LINE_ITEM_STATUS], locations, today, available, oversold,
                          out64[LINE_NETWORK], out64[LINE_EARLIEST], out8[LINE_DATE_SOURCE])
            with nogil:
                _disclose(available, show, cap, shown, bucket)
    finally:
        free(sku_text)
        free(uom_text)
        free(sku_length)
        free(uom_length)
        free(uom_given)
        free(sku_hash)
    return hits


def lower_bound(const int64_t[::1] keys, int64_t key, bint guided):
    """The first position whose key is ≥ ``key`` in sorted ``keys``, by the searches the
    kernels use (for tests: the guided search must agree with the binary one)."""
    if guided:
        return _guided_lower_bound(keys, 0, keys.shape[0], key)
    return _lower_bound(keys, 0, keys.shape[0], key)
