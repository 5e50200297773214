/* A memcpy for the short strings spans are made of. */
#ifndef TGO__COPY_H
#define TGO__COPY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Whether n bytes are all ASCII, eight at a time. */
static inline int tgo__ascii_run(const void *data, size_t n) {
  const uint8_t *s = data;
  uint64_t high = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    high |= w;
  }
  for (; i < n; i++)
    high |= s[i];
  return !(high & 0x8080808080808080ull);
}

/* Copies n bytes; up to 32 without a call. Most of what the OTLP writers
 * and the span's value copies move is an attribute key or a short value,
 * where the call to memcpy cost more than the copy. Two overlapping
 * fixed-size moves cover every length of a range, and read only the
 * source's own bytes. Returns whether the n bytes are all ASCII: the words
 * the copy moves cover every byte, so their OR answers it without a second
 * pass over the string. */
static inline __attribute__((always_inline)) int tgo__copy_short_ascii(void *dst, const void *data, size_t n) {
  const uint8_t *s = data;
  uint8_t *p = dst;
  uint64_t high;
  if (n >= 8 && n <= 16) {
    uint64_t a, b;
    memcpy(&a, s, 8);
    memcpy(&b, s + n - 8, 8);
    memcpy(p, &a, 8);
    memcpy(p + n - 8, &b, 8);
    high = a | b;
  } else if (n > 16 && n <= 32) {
    uint64_t a, b, c, d;
    memcpy(&a, s, 8);
    memcpy(&b, s + 8, 8);
    memcpy(&c, s + n - 16, 8);
    memcpy(&d, s + n - 8, 8);
    memcpy(p, &a, 8);
    memcpy(p + 8, &b, 8);
    memcpy(p + n - 16, &c, 8);
    memcpy(p + n - 8, &d, 8);
    high = a | b | c | d;
  } else if (n >= 4 && n < 8) {
    uint32_t a, b;
    memcpy(&a, s, 4);
    memcpy(&b, s + n - 4, 4);
    memcpy(p, &a, 4);
    memcpy(p + n - 4, &b, 4);
    high = a | b;
  } else if (n < 4) {
    high = 0;
    if (n) { /* 1, 2 or 3 bytes: first, middle and last cover them */
      p[0] = s[0];
      p[n / 2] = s[n / 2];
      p[n - 1] = s[n - 1];
      high = (uint64_t)s[0] | s[n / 2] | s[n - 1];
    }
  } else {
    memcpy(p, s, n);
    return tgo__ascii_run(s, n);
  }
  return !(high & 0x8080808080808080ull);
}

/* The copy alone: always inlined, so the ASCII answer's work is dropped as
 * unused (an outlined copy computed it for every string). */
static inline void tgo__copy_short(void *dst, const void *data, size_t n) { (void)tgo__copy_short_ascii(dst, data, n); }

#endif
