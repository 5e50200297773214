/* A memcpy for the short strings spans are made of. */
#ifndef TGO__COPY_H
#define TGO__COPY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Copies n bytes; up to 32 without a call. Most of what the OTLP writers
 * and the span's value copies move is an attribute key or a short value,
 * where the call to memcpy cost more than the copy. Two overlapping
 * fixed-size moves cover every length of a range, and read only the
 * source's own bytes. */
static inline void tgo__copy_short(void *dst, const void *data, size_t n) {
  const uint8_t *s = data;
  uint8_t *p = dst;
  if (n >= 8 && n <= 32) {
    uint64_t a, b, c, d;
    if (n <= 16) {
      memcpy(&a, s, 8);
      memcpy(&b, s + n - 8, 8);
      memcpy(p, &a, 8);
      memcpy(p + n - 8, &b, 8);
      return;
    }
    memcpy(&a, s, 8);
    memcpy(&b, s + 8, 8);
    memcpy(&c, s + n - 16, 8);
    memcpy(&d, s + n - 8, 8);
    memcpy(p, &a, 8);
    memcpy(p + 8, &b, 8);
    memcpy(p + n - 16, &c, 8);
    memcpy(p + n - 8, &d, 8);
  } else if (n >= 4 && n < 8) {
    uint32_t a, b;
    memcpy(&a, s, 4);
    memcpy(&b, s + n - 4, 4);
    memcpy(p, &a, 4);
    memcpy(p + n - 4, &b, 4);
  } else if (n < 4) {
    if (n) { /* 1, 2 or 3 bytes: first, middle and last cover them */
      p[0] = s[0];
      p[n / 2] = s[n / 2];
      p[n - 1] = s[n - 1];
    }
  } else {
    memcpy(p, s, n);
  }
}

#endif
