/* Small shared helpers: hex, growable buffers, key=value lists. */
#include "tgo-internal.h"

#include <sys/mman.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decodes 2n lowercase-or-uppercase hex chars into n bytes; -EINVAL on junk. */
int tgo__hex_decode(const char *in, size_t n, uint8_t *out) {
  for (size_t i = 0; i < n; i++) {
    int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return -EINVAL;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

void tgo__hex_encode(const uint8_t *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
}

/* Buffers this big (a batch's encoded body, its gzip copy) are mapped
 * apart from malloc's heaps and unmapped when freed: through malloc, the
 * first free raises glibc's dynamic mmap threshold and every later body
 * stays in the exporter thread's arena as resident memory. cap alone says
 * which kind b->data is. */
#define BUF_MAP_MIN (64 * 1024)

int tgo__buf_reserve(tgo__buf *b, size_t extra) {
  if (b->cap - b->len >= extra)
    return 0;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap - b->len < extra)
    cap *= 2;
  uint8_t *p;
  if (cap < BUF_MAP_MIN) {
    p = realloc(b->data, cap);
    if (!p)
      return -ENOMEM;
  } else if (b->cap >= BUF_MAP_MIN) {
    void *m = mremap(b->data, b->cap, cap, MREMAP_MAYMOVE);
    if (m == MAP_FAILED)
      return -ENOMEM;
    p = m;
  } else {
    void *m = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
      return -ENOMEM;
    p = m;
    if (b->len)
      memcpy(p, b->data, b->len);
    free(b->data);
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

int tgo__buf_reserve_at(tgo__buf *b, size_t at, size_t extra) {
  size_t len = b->len;
  b->len = at; /* what a move must keep */
  int rc = tgo__buf_reserve(b, extra);
  b->len = len;
  return rc;
}

void tgo__buf_free(tgo__buf *b) {
  if (b->cap >= BUF_MAP_MIN)
    munmap(b->data, b->cap);
  else
    free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

tgo__chunk *tgo__chunk_push(tgo__chunk **head, size_t size) {
  tgo__chunk *c = malloc(sizeof *c + size);
  if (c) {
    c->next = *head;
    c->size = size;
    *head = c;
  }
  return c;
}

void tgo__chunks_free(tgo__chunk *c) {
  while (c) {
    tgo__chunk *next = c->next;
    free(c);
    c = next;
  }
}

static size_t percent_decode(const char *s, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 1 < cap; i++) {
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      out[o++] = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
      i += 2;
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = '\0';
  return o;
}

static void trim(const char **s, size_t *n) {
  while (*n && (**s == ' ' || **s == '\t')) {
    (*s)++;
    (*n)--;
  }
  while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
    (*n)--;
}

/* Entries without '=' or with an empty key are skipped and counted in the
 * return value, so callers can warn about a malformed list. */
int tgo__parse_kv_list(const char *s, void (*cb)(const char *k, const char *v, void *ud), void *ud) {
  int bad = 0;
  while (s && *s) {
    const char *comma = strchr(s, ',');
    size_t n = comma ? (size_t)(comma - s) : strlen(s);
    const char *eq = memchr(s, '=', n);
    if (eq) {
      const char *k = s, *v = eq + 1;
      size_t kn = (size_t)(eq - s), vn = n - kn - 1;
      trim(&k, &kn);
      trim(&v, &vn);
      char key[256], val[1024];
      if (kn && kn < sizeof key) {
        percent_decode(k, kn, key, sizeof key);
        percent_decode(v, vn, val, sizeof val);
        cb(key, val, ud);
      } else {
        bad++;
      }
    } else if (n) {
      bad++;
    }
    s = comma ? comma + 1 : NULL;
  }
  return bad;
}
