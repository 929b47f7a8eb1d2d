/* Protobuf wire primitives for server/_wire.pyx.
 *
 * Kept in C so that every one is inlined into the encoder's loops (gcc declines to inline
 * Cython's "cdef inline" functions once the caller is large, and a call per field costs
 * more than the field). Each writes at p and returns the end; the caller has made room.
 * proto3: a scalar at its default (0, false, "") is not written.
 */
#ifndef PACACHE_WIRE_H
#define PACACHE_WIRE_H

#include <stdint.h>
#include <string.h>

#define WIRE_ALWAYS static inline __attribute__((always_inline))

WIRE_ALWAYS int wire_varint_size(uint64_t v) {
    int n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

WIRE_ALWAYS char *wire_varint(char *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (char)((v & 0x7F) | 0x80);
        v >>= 7;
    }
    *p++ = (char)v;
    return p;
}

/* a tag of a field below 16 is one byte */
WIRE_ALWAYS char *wire_tag(char *p, int field, int wire) {
    return wire_varint(p, (uint64_t)((field << 3) | wire));
}

/* int32/int64/enum: negative values sign-extended to ten bytes, as protobuf writes them */
WIRE_ALWAYS char *wire_int(char *p, int field, int64_t v) {
    if (v == 0) return p;
    p = wire_tag(p, field, 0);
    return wire_varint(p, (uint64_t)v);
}

WIRE_ALWAYS char *wire_bool(char *p, int field, int v) {
    if (!v) return p;
    p = wire_tag(p, field, 0);
    *p++ = 1;
    return p;
}

WIRE_ALWAYS char *wire_bytes(char *p, int field, const char *s, int64_t n) {
    if (n == 0) return p;
    p = wire_tag(p, field, 2);
    p = wire_varint(p, (uint64_t)n);
    memcpy(p, s, (size_t)n);
    return p + n;
}

/* a code in an arena row: its bytes up to the first zero or the row's end */
WIRE_ALWAYS int64_t wire_code_length(const uint8_t *row, int64_t width) {
    const void *end = memchr(row, 0, (size_t)width);
    return end == NULL ? width : (const uint8_t *)end - row;
}

/* start a sub-message with `room` bytes for its length; returns the body's start */
WIRE_ALWAYS char *wire_open(char *p, int field, int room) {
    p = wire_tag(p, field, 2);
    return p + room;
}

/* end a sub-message opened at body: its length, and the body moved down if it needs
 * fewer bytes than were left for it */
WIRE_ALWAYS char *wire_close(char *body, char *end, int room) {
    int64_t n = end - body;
    int k = wire_varint_size((uint64_t)n);
    wire_varint(body - room, (uint64_t)n);
    if (k != room) memmove(body - room + k, body, (size_t)n);
    return end - (room - k);
}

#endif
