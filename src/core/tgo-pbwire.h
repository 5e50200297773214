/* Protocol Buffers wire-format primitives, the one copy that the OTLP
 * writers (otlp.c for the envelope and resource, otlp_writer.c for spans)
 * build on. Tags are passed pre-encoded: every field we write has a
 * one-byte tag except Span.flags, which otlp_writer.c spells out. */
#ifndef TGO__PBWIRE_H
#define TGO__PBWIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tgo-copy.h"

/* Wire types, for building tags: (field << 3) | type. */
#define TGO__PB_VARINT 0
#define TGO__PB_FIXED64 1
#define TGO__PB_LEN 2
#define TGO__PB_FIXED32 5
#define TGO__PB_TAG(field, type) ((uint8_t)(((field) << 3) | (type)))

static inline size_t tgo__pb_varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static inline uint8_t *tgo__pb_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

/* Little-endian whatever the host, as the wire wants: one store, where
 * GCC -O2 kept the byte loop (~29 instructions a field, four in a span). */
static inline uint8_t *tgo__pb_fixed64(uint8_t *p, uint64_t v) {
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  memcpy(p, &v, 8);
  return p + 8;
}

static inline uint8_t *tgo__pb_fixed32(uint8_t *p, uint32_t v) {
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
  v = __builtin_bswap32(v);
#endif
  memcpy(p, &v, 4);
  return p + 4;
}

/* Wire size of a length-delimited field with a one-byte tag and a body of
 * n bytes. */
static inline size_t tgo__pb_ld_len(size_t n) { return 1 + tgo__pb_varint_len(n) + n; }

/* A length-delimited field's tag and length; the body follows. */
static inline uint8_t *tgo__pb_ld_head(uint8_t *p, uint8_t tag, size_t n) {
  *p++ = tag;
  return tgo__pb_varint(p, n);
}

static inline uint8_t *tgo__pb_bytes(uint8_t *p, uint8_t tag, const void *data, size_t n) {
  p = tgo__pb_ld_head(p, tag, n);
  tgo__copy_short(p, data, n);
  return p + n;
}

#endif
