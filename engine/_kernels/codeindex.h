/* The code index: business codes (SKU, UoM, location, ...) to dense ids, in arrays that can
 * live in shared memory (engine.codes.CodeTable; engine.shared maps them into workers).
 *
 * arena:  (capacity x width) bytes, code i in row i, NUL-padded (codes are printable
 *         ASCII, so a code never holds a NUL and its length is where the padding starts);
 * slots:  a power-of-two open-addressing table (linear probing, load <= 1/2), each slot 0
 *         (empty) or (high 32 bits of the code's hash) << 32 | (id + 1).
 *
 * A lookup hashes the query once, then reads one slot (usually) and, when the 32-bit tag
 * matches, the code's arena row to confirm: two or three cache misses for a code nobody
 * asked for recently, against a chain of dict misses across a heap of a million Python
 * strings. An id at or past ``n`` (what the caller's view of the table holds) is never
 * returned and its row never read.
 */
#ifndef PACACHE_CODEINDEX_H
#define PACACHE_CODEINDEX_H

#include <stdint.h>
#include <string.h>

#define CI_TAG_MASK 0xFFFFFFFF00000000ULL

static inline uint64_t ci_hash(const unsigned char *s, int64_t len)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)len, w;
    while (len >= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 29;
        s += 8;
        len -= 8;
    }
    if (len > 0) {
        w = 0;
        memcpy(&w, s, (size_t)len);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 29;
    }
    h ^= h >> 32;
    h *= 0x94D049BB133111EBULL;
    h ^= h >> 31;
    return h;
}

/* length of the code in an arena row (up to the first NUL) */
static inline int64_t ci_row_length(const unsigned char *row, int64_t width)
{
    const unsigned char *end = (const unsigned char *)memchr(row, 0, (size_t)width);
    return end == NULL ? width : (int64_t)(end - row);
}

/* id of the code (s, len) whose ci_hash is h, or -1 */
static inline int64_t ci_find_hashed(const unsigned char *arena, int64_t width, int64_t n,
                                     const uint64_t *slots, int64_t n_slots,
                                     const unsigned char *s, int64_t len, uint64_t h)
{
    uint64_t mask, tag, pos, v, probes;
    int64_t id;
    const unsigned char *row;
    if (len <= 0 || len > width || n_slots <= 0 || (n_slots & (n_slots - 1)) != 0)
        return -1;
    mask = (uint64_t)n_slots - 1;
    tag = h & CI_TAG_MASK;
    pos = h & mask;
    for (probes = 0; probes <= mask; probes++) {
        v = slots[pos];
        if (v == 0)
            return -1;
        if ((v & CI_TAG_MASK) == tag) {
            id = (int64_t)(v & 0xFFFFFFFFULL) - 1;
            if (id >= 0 && id < n) {
                row = arena + id * width;
                if (memcmp(row, s, (size_t)len) == 0 && (len == width || row[len] == 0))
                    return id;
            }
        }
        pos = (pos + 1) & mask;
    }
    return -1;
}

/* id of the code (s, len), or -1 */
static inline int64_t ci_find(const unsigned char *arena, int64_t width, int64_t n,
                              const uint64_t *slots, int64_t n_slots,
                              const unsigned char *s, int64_t len)
{
    if (len <= 0 || len > width)
        return -1;
    return ci_find_hashed(arena, width, n, slots, n_slots, s, len, ci_hash(s, len));
}

/* start loading the arena row of the code in the first slot a hash probes, when its tag
 * matches (the slot itself already loaded): the row a lookup will most likely compare */
static inline void ci_prefetch_row(const unsigned char *arena, int64_t width, int64_t n,
                                   const uint64_t *slots, int64_t n_slots, uint64_t h)
{
    uint64_t v;
    int64_t id;
    if (n_slots <= 0)
        return;
    v = slots[h & ((uint64_t)n_slots - 1)];
    if (v != 0 && (v & CI_TAG_MASK) == (h & CI_TAG_MASK)) {
        id = (int64_t)(v & 0xFFFFFFFFULL) - 1;
        if (id >= 0 && id < n)
            __builtin_prefetch(arena + id * width);
    }
}

/* prefetch the slot a code will probe first (a batch starts every line's miss at once) */
static inline void ci_prefetch(const uint64_t *slots, int64_t n_slots, const unsigned char *s,
                               int64_t len)
{
    if (len > 0 && n_slots > 0)
        __builtin_prefetch(&slots[ci_hash(s, len) & ((uint64_t)n_slots - 1)]);
}

/* put id (whose code is in its arena row) in the table: 0 when the table is full or the
 * size is not a power of two (the caller sizes it; never happens at load <= 1/2) */
static inline int ci_insert(const unsigned char *arena, int64_t width, uint64_t *slots,
                            int64_t n_slots, int64_t id)
{
    uint64_t mask, h, pos, probes;
    const unsigned char *row = arena + id * width;
    int64_t len = ci_row_length(row, width);
    if (n_slots <= 0 || (n_slots & (n_slots - 1)) != 0 || id < 0 || id >= 0xFFFFFFFFLL)
        return 0;
    mask = (uint64_t)n_slots - 1;
    h = ci_hash(row, len);
    pos = h & mask;
    for (probes = 0; probes <= mask; probes++) {
        if (slots[pos] == 0) {
            slots[pos] = (h & CI_TAG_MASK) | (uint64_t)(id + 1);
            return 1;
        }
        pos = (pos + 1) & mask;
    }
    return 0;
}

#endif
