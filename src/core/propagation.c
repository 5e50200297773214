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

/* ---- B3 (Zipkin) ---------------------------------------------------------
 * Single header "{trace}-{span}[-{sampling}[-{parent}]]" and the multi
 * headers X-B3-*. A 64-bit trace id is left-padded with zeros to 128 bits;
 * a missing sampling decision is marked deferred (the local sampler
 * decides), "d" and X-B3-Flags: 1 (debug) mean sampled. */

static int b3_ids(const char *tid, size_t tlen, const char *sid, size_t slen, tgo_span_context *c) {
  if ((tlen != 32 && tlen != 16) || slen != 16 || !is_lower_hex(tid, tlen) || !is_lower_hex(sid, slen))
    return -EINVAL;
  memset(c, 0, sizeof *c);
  tgo__hex_decode(tid, tlen / 2, c->trace_id + (16 - tlen / 2));
  tgo__hex_decode(sid, 8, c->span_id);
  if (all_zero(c->trace_id, 16) || all_zero(c->span_id, 8))
    return -EINVAL;
  c->is_remote = 1;
  return 0;
}

int tgo__b3_parse(const char *h, size_t len, tgo_span_context *out) {
  if (!h || !out)
    return -EINVAL;
  while (len && (*h == ' ' || *h == '\t'))
    h++, len--;
  while (len && (h[len - 1] == ' ' || h[len - 1] == '\t'))
    len--;
  const char *d1 = memchr(h, '-', len);
  if (!d1)
    return -EINVAL; /* "0", "1", "d": a decision without a context */
  size_t tlen = (size_t)(d1 - h);
  const char *sid = d1 + 1;
  size_t rest = len - tlen - 1;
  const char *d2 = memchr(sid, '-', rest);
  size_t slen = d2 ? (size_t)(d2 - sid) : rest;
  tgo_span_context c;
  if (b3_ids(h, tlen, sid, slen, &c) < 0)
    return -EINVAL;
  c.flags = TGO__FLAG_DEFERRED;
  if (d2) {
    const char *st = d2 + 1;
    size_t stlen = len - (size_t)(st - h);
    const char *d3 = memchr(st, '-', stlen);
    size_t n = d3 ? (size_t)(d3 - st) : stlen;
    if (n != 1 || (*st != '0' && *st != '1' && *st != 'd'))
      return -EINVAL;
    c.flags = *st == '0' ? 0 : 1;
    if (d3) {
      size_t plen = stlen - n - 1;
      if (plen != 16 || !is_lower_hex(d3 + 1, 16))
        return -EINVAL;
    }
  }
  *out = c;
  return 0;
}

static int value_is(const char *v, size_t n, const char *want) {
  size_t w = strlen(want);
  return v && n == w && !memcmp(v, want, w);
}

int tgo__b3multi_parse(const char *tid, size_t tlen, const char *sid, size_t slen, const char *sampled,
                       size_t sampled_len, const char *flags, size_t flags_len, tgo_span_context *out) {
  if (!tid || !sid || !out)
    return -EINVAL;
  tgo_span_context c;
  if (b3_ids(tid, tlen, sid, slen, &c) < 0)
    return -EINVAL;
  if (value_is(flags, flags_len, "1") || value_is(sampled, sampled_len, "1") ||
      value_is(sampled, sampled_len, "true") || value_is(sampled, sampled_len, "d"))
    c.flags = 1;
  else if (value_is(sampled, sampled_len, "0") || value_is(sampled, sampled_len, "false"))
    c.flags = 0;
  else
    c.flags = TGO__FLAG_DEFERRED;
  *out = c;
  return 0;
}

size_t tgo__b3_format(const tgo_span_context *c, char out[TGO__B3_LEN + 1]) {
  tgo__hex_encode(c->trace_id, 16, out);
  out[32] = '-';
  tgo__hex_encode(c->span_id, 8, out + 33);
  out[49] = '-';
  out[50] = (c->flags & 1) ? '1' : '0';
  out[51] = '\0';
  return TGO__B3_LEN;
}

/* ---- W3C Baggage -----------------------------------------------------------
 * Validated, then passed on as received: we never read an entry, so there
 * is nothing to decode. */

static int token_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int baggage_octet(unsigned char c) {
  return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) || (c >= 0x3c && c <= 0x5b) ||
         (c >= 0x5d && c <= 0x7e);
}

static size_t skip_ows(const char *h, size_t i, size_t end) {
  while (i < end && (h[i] == ' ' || h[i] == '\t'))
    i++;
  return i;
}

/* key OWS "=" OWS value, or (a property only) a bare key; returns the
 * index after it, or 0 when malformed. */
static size_t baggage_pair(const char *h, size_t i, size_t end, int bare_ok) {
  size_t k = i;
  while (i < end && token_char((unsigned char)h[i]))
    i++;
  if (i == k)
    return 0;
  size_t j = skip_ows(h, i, end);
  if (j == end || h[j] != '=')
    return bare_ok ? i : 0;
  j = skip_ows(h, j + 1, end);
  while (j < end && baggage_octet((unsigned char)h[j]))
    j++;
  return j;
}

int tgo__baggage_check(const char *h, size_t len) {
  if (!h)
    return -EINVAL;
  while (len && (h[len - 1] == ' ' || h[len - 1] == '\t'))
    len--;
  if (len == 0 || len > TGO__BAGGAGE_MAX_BYTES)
    return -EINVAL;
  size_t i = skip_ows(h, 0, len), members = 0;
  for (;;) {
    if (++members > TGO__BAGGAGE_MAX_MEMBERS)
      return -EINVAL;
    size_t j = baggage_pair(h, i, len, 0);
    if (!j)
      return -EINVAL;
    for (;;) {
      j = skip_ows(h, j, len);
      if (j == len || h[j] != ';')
        break;
      j = baggage_pair(h, skip_ows(h, j + 1, len), len, 1);
      if (!j)
        return -EINVAL;
    }
    if (j == len)
      return (int)len;
    if (h[j] != ',')
      return -EINVAL;
    i = skip_ows(h, j + 1, len);
  }
}

/* ---- OTEL_PROPAGATORS ------------------------------------------------------ */

int tgo__extract(int props, tgo__header_get get, void *carrier, tgo_span_context *ctx, const char **baggage,
                 size_t *baggage_len) {
  int found = 0;
  *baggage = NULL;
  *baggage_len = 0;
  for (int p = props; p && !found; p >>= 4) {
    size_t n, n2, n3, n4;
    const char *v, *v2, *v3, *v4;
    switch (p & 15) {
    case TGO__PROP_TRACECONTEXT:
      v = get(carrier, TGO__H_TRACEPARENT, &n);
      if (v && tgo_traceparent_parse(v, n, ctx) == 0) {
        found = 1;
        v = get(carrier, TGO__H_TRACESTATE, &n);
        if (v && tgo_tracestate_check(v, n) > 0) {
          ctx->tracestate = v;
          ctx->tracestate_len = n;
        }
      }
      break;
    case TGO__PROP_B3:
      v = get(carrier, TGO__H_B3, &n);
      found = v && tgo__b3_parse(v, n, ctx) == 0;
      break;
    case TGO__PROP_B3MULTI:
      v = get(carrier, TGO__H_B3_TRACEID, &n);
      v2 = v ? get(carrier, TGO__H_B3_SPANID, &n2) : NULL;
      if (v2) {
        v3 = get(carrier, TGO__H_B3_SAMPLED, &n3);
        v4 = get(carrier, TGO__H_B3_FLAGS, &n4);
        found = tgo__b3multi_parse(v, n, v2, n2, v3, v3 ? n3 : 0, v4, v4 ? n4 : 0, ctx) == 0;
      }
      break;
    default:
      break;
    }
  }
  if (tgo__propagators_have(props, TGO__PROP_BAGGAGE)) {
    size_t n;
    const char *v = get(carrier, TGO__H_BAGGAGE, &n);
    if (v && n) {
      if (tgo__baggage_check(v, n) > 0) {
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
          n--;
        *baggage = v;
        *baggage_len = n;
      } else {
        TGO__LOG_ONCE(TGO_LOG_WARN, "a malformed or oversized baggage header was ignored (limits: 8192 "
                                    "bytes, 180 entries); reported once");
      }
    }
  }
  return found;
}

int tgo__propagators_have(int props, int which) {
  for (; props; props >>= 4)
    if ((props & 15) == which)
      return 1;
  return 0;
}
