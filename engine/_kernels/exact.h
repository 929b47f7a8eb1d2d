/* Exact money arithmetic for the engine's kernels (DESIGN section 3).
 *
 * Every price per base unit the engine handles is a fraction of two products of int64
 * values (e.g. list price x (10000 - bps) / (list factor x 10000)), and every answer is such
 * a fraction times a quantity, rounded half away from zero. The products do not fit int64
 * (a 10^12 base quantity times a 10^17 numerator), so they are formed in 128 bits: a product
 * of two int64 values always fits (|x| < 2^126), and each further factor is multiplied with
 * an overflow check. A product past 2^127 divided by a denominator below 2^63 is above 2^64,
 * so "the product overflowed" means "the answer does not fit int64", exactly: the caller
 * flags the line instead of wrapping.
 *
 * Header-only and static inline so every kernel gets its own copy and the compiler can fold
 * it into the per-line loops; GCC and Clang provide __int128 on 64-bit targets.
 */
#ifndef PACACHE_EXACT_H
#define PACACHE_EXACT_H

#include <stdint.h>

typedef __int128 pc_i128;

#define PC_INT64_MAX ((pc_i128)INT64_MAX)

/* a x b x c, or 0 with *ok cleared when it does not fit 128 bits. */
static inline pc_i128 pc_mul3(int64_t a, int64_t b, int64_t c, int *ok)
{
    pc_i128 ab = (pc_i128)a * (pc_i128)b; /* |a x b| < 2^126: never overflows */
    pc_i128 abc;
    if (__builtin_mul_overflow(ab, (pc_i128)c, &abc)) {
        *ok = 0;
        return 0;
    }
    return abc;
}

/* numerator / denominator rounded half away from zero; denominator > 0. */
static inline pc_i128 pc_div_round(pc_i128 numerator, pc_i128 denominator)
{
    pc_i128 magnitude = numerator < 0 ? -numerator : numerator;
    pc_i128 quotient = magnitude / denominator;
    pc_i128 remainder = magnitude - quotient * denominator;
    /* 2r >= d without forming 2r (r < d < 2^127 could overflow when doubled) */
    if (remainder >= denominator - remainder) quotient += 1;
    return numerator < 0 ? -quotient : quotient;
}

/* round(a x b x c / (d x e x f) / step) x step as int64: 1 and *out set when the exact
 * answer fits int64 (|x| <= INT64_MAX), else 0 and *out = 0. Every denominator factor and
 * step must be >= 1. The rounding is of the exact rational, never of a rounded part. */
static inline int pc_ratio(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, int64_t f,
                           int64_t step, int64_t *out)
{
    int ok = 1;
    pc_i128 numerator = pc_mul3(a, b, c, &ok);
    /* an overflowing numerator over a denominator < 2^63 is past int64 (see above); a
       denominator that overflows 128 bits cannot come from validated data (factors are
       at most 10^6, bps 10^4, steps 10^6): refused rather than guessed */
    pc_i128 denominator = pc_mul3(d, e, f, &ok);
    pc_i128 scaled;
    if (ok && __builtin_mul_overflow(denominator, (pc_i128)step, &scaled)) ok = 0;
    if (!ok || denominator <= 0) {
        *out = 0;
        return 0;
    }
    pc_i128 rounded = pc_div_round(numerator, scaled);
    pc_i128 value;
    if (__builtin_mul_overflow(rounded, (pc_i128)step, &value)
        || value > PC_INT64_MAX || value < -PC_INT64_MAX) {
        *out = 0;
        return 0;
    }
    *out = (int64_t)value;
    return 1;
}

#endif
