/* W3C Trace Context (traceparent / tracestate), level 1 rules: a header the
 * spec says to ignore is rejected whole and the caller starts a new trace. */
#include "tgo-internal.h"

#include <errno.h>
#include <string.h>

static int is_lower_hex(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return 0;
  }
  return 1;
}

static int all_zero(const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (b[i])
      return 0;
  return 1;
}

int tgo_traceparent_parse(const char *h, size_t len, tgo_span_context *out) {
  if (!h || !out)
    return -EINVAL;
  while (len && (*h == ' ' || *h == '\t')) {
    h++;
    len--;
  }
  while (len && (h[len - 1] == ' ' || h[len - 1] == '\t'))
    len--;
  if (len < TGO_TRACEPARENT_LEN)
    return -EINVAL;
  if (h[2] != '-' || h[35] != '-' || h[52] != '-')
    return -EINVAL;
  if (!is_lower_hex(h, 2) || !is_lower_hex(h + 3, 32) || !is_lower_hex(h + 36, 16) ||
      !is_lower_hex(h + 53, 2))
    return -EINVAL;
  uint8_t version;
  tgo__hex_decode(h, 1, &version);
  if (version == 0xff)
    return -EINVAL;
  /* Version 00 is exactly 55 chars; a future version may append "-..." */
  if (version == 0 && len != TGO_TRACEPARENT_LEN)
    return -EINVAL;
  if (version != 0 && len > TGO_TRACEPARENT_LEN && h[TGO_TRACEPARENT_LEN] != '-')
    return -EINVAL;
  tgo_span_context c = {0};
  tgo__hex_decode(h + 3, 16, c.trace_id);
  tgo__hex_decode(h + 36, 8, c.span_id);
  tgo__hex_decode(h + 53, 1, &c.flags);
  if (all_zero(c.trace_id, 16) || all_zero(c.span_id, 8))
    return -EINVAL;
  c.flags &= 1; /* only "sampled" is defined; others must not propagate */
  c.is_remote = 1;
  *out = c;
  return 0;
}

void tgo_traceparent_format(const tgo_span_context *c, char out[TGO_TRACEPARENT_LEN + 1]) {
  memcpy(out, "00-", 3);
  tgo__hex_encode(c->trace_id, 16, out + 3);
  out[35] = '-';
  tgo__hex_encode(c->span_id, 8, out + 36);
  out[52] = '-';
  uint8_t flags = c->flags & 1;
  tgo__hex_encode(&flags, 1, out + 53);
  out[55] = '\0';
}

static int key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' ||
         c == '/' || c == '@';
}

/* One list member: key "=" value, with the W3C character sets. */
static int member_ok(const char *m, size_t n) {
  const char *eq = memchr(m, '=', n);
  if (!eq || eq == m)
    return 0;
  size_t kn = (size_t)(eq - m), vn = n - kn - 1;
  if (kn > 256 || vn == 0 || vn > 256)
    return 0;
  for (size_t i = 0; i < kn; i++)
    if (!key_char(m[i]))
      return 0;
  for (size_t i = 0; i < vn; i++) {
    unsigned char c = (unsigned char)eq[1 + i];
    if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
      return 0;
  }
  return eq[vn] != ' ';
}

int tgo_tracestate_check(const char *h, size_t len) {
  if (!h || len == 0 || len > 512)
    return -EINVAL;
  size_t members = 0, i = 0;
  while (i < len) {
    size_t j = i;
    while (j < len && h[j] != ',')
      j++;
    const char *m = h + i;
    size_t n = j - i;
    while (n && (*m == ' ' || *m == '\t')) {
      m++;
      n--;
    }
    while (n && (m[n - 1] == ' ' || m[n - 1] == '\t'))
      n--;
    if (n) {
      if (!member_ok(m, n))
        return -EINVAL;
      if (++members > 32)
        return -EINVAL;
    }
    i = j + 1;
  }
  return members ? (int)len : -EINVAL;
}
