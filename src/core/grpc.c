/* OTLP/gRPC without a gRPC library: a unary call is one HTTP/2 POST
 * (http.c) whose body is a length-prefixed message and whose outcome is in
 * the grpc-status trailer. This file knows the framing and the statuses;
 * export.c decides what to do with them. */
#include "tgo-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int tgo__grpc_frame(const uint8_t *msg, size_t len, int gzip, tgo__buf *out) {
  if (len > 0xFFFFFFFFu)
    return -E2BIG;
  size_t at = out->len;
  if (tgo__buf_reserve(out, 5) < 0)
    return -ENOMEM;
  out->len += 5;
  int compressed = 0;
  if (gzip) {
    if (tgo__gzip(msg, len, out) == 0)
      compressed = 1;
    else
      out->len = at + 5; /* plain is still a valid message */
  }
  if (!compressed) {
    if (tgo__buf_reserve(out, len) < 0) {
      out->len = at;
      return -ENOMEM;
    }
    memcpy(out->data + out->len, msg, len);
    out->len += len;
  }
  size_t n = out->len - at - 5;
  uint8_t *h = out->data + at;
  h[0] = (uint8_t)compressed;
  h[1] = (uint8_t)(n >> 24);
  h[2] = (uint8_t)(n >> 16);
  h[3] = (uint8_t)(n >> 8);
  h[4] = (uint8_t)n;
  return compressed;
}

static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+' || c == '-')
    return 62;
  if (c == '/' || c == '_')
    return 63;
  return -1;
}

/* Base64 with or without padding (gRPC sends -bin values unpadded).
 * Returns the decoded length, or -1. */
static long b64_decode(const char *in, size_t n, uint8_t *out, size_t cap) {
  uint32_t acc = 0;
  int bits = 0;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (in[i] == '=')
      break;
    int v = b64_value((unsigned char)in[i]);
    if (v < 0)
      return -1;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (k >= cap)
        return -1;
      out[k++] = (uint8_t)(acc >> bits);
    }
  }
  return (long)k;
}

/* One protobuf field at *p (bounded by end): its number and wire type, and
 * the varint value or the length-delimited bytes. 0 at the end, -1 when
 * malformed. */
typedef struct {
  uint32_t num, wire;
  uint64_t v;
  const uint8_t *data;
  size_t len;
} pb_field;

static int pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*p >= end)
      return -1;
    uint8_t b = *(*p)++;
    r |= (uint64_t)(b & 0x7F) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return 0;
    }
  }
  return -1;
}

static int pb_next_in(const uint8_t **p, const uint8_t *end, pb_field *f, int clamp) {
  if (*p >= end)
    return 0;
  uint64_t key;
  if (pb_varint(p, end, &key) < 0)
    return -1;
  f->num = (uint32_t)(key >> 3);
  f->wire = (uint32_t)(key & 7);
  switch (f->wire) {
  case 0: return pb_varint(p, end, &f->v) < 0 ? -1 : 1;
  case 1:
    if (end - *p < 8)
      return -1;
    *p += 8;
    return 1;
  case 5:
    if (end - *p < 4)
      return -1;
    *p += 4;
    return 1;
  case 2:
    if (pb_varint(p, end, &f->v) < 0)
      return -1;
    if (f->v > (uint64_t)(end - *p)) {
      if (!clamp)
        return -1;
      f->v = (uint64_t)(end - *p);
    }
    f->data = *p;
    f->len = (size_t)f->v;
    *p += f->len;
    return 1;
  default: return -1;
  }
}

static int pb_next(const uint8_t **p, const uint8_t *end, pb_field *f) { return pb_next_in(p, end, f, 0); }

/* For a message whose tail was not kept: a length past the end reads what
 * there is. */
static int pb_next_cut(const uint8_t **p, const uint8_t *end, pb_field *f) { return pb_next_in(p, end, f, 1); }

/* google.rpc.RetryInfo { Duration retry_delay = 1 } -> ms, or -1. */
static int retry_info_ms(const uint8_t *p, size_t n) {
  const uint8_t *end = p + n;
  pb_field f;
  int rc;
  while ((rc = pb_next(&p, end, &f)) > 0) {
    if (f.num != 1 || f.wire != 2)
      continue;
    uint64_t secs = 0, nanos = 0;
    const uint8_t *q = f.data, *qend = f.data + f.len;
    pb_field d;
    while ((rc = pb_next(&q, qend, &d)) > 0) {
      if (d.num == 1 && d.wire == 0)
        secs = d.v;
      else if (d.num == 2 && d.wire == 0)
        nanos = d.v;
    }
    if (rc < 0 || secs > 86400 || nanos >= 1000000000u)
      return -1;
    return (int)(secs * 1000 + nanos / 1000000);
  }
  return rc < 0 ? -1 : 0; /* RetryInfo without a delay: retry with our backoff */
}

/* google.rpc.Status { int32 code = 1; string message = 2; repeated Any details = 3 }:
 * the RetryInfo among the details, in ms, or -1. */
static int status_retry_ms(const uint8_t *p, size_t n) {
  static const char type[] = "type.googleapis.com/google.rpc.RetryInfo";
  const uint8_t *end = p + n;
  pb_field f;
  while (pb_next(&p, end, &f) > 0) {
    if (f.num != 3 || f.wire != 2)
      continue;
    const uint8_t *q = f.data, *qend = f.data + f.len, *value = NULL;
    size_t value_len = 0;
    int is_retry_info = 0;
    pb_field a;
    while (pb_next(&q, qend, &a) > 0) {
      if (a.num == 1 && a.wire == 2)
        is_retry_info = a.len == sizeof type - 1 && !memcmp(a.data, type, a.len);
      else if (a.num == 2 && a.wire == 2) {
        value = a.data;
        value_len = a.len;
      }
    }
    if (is_retry_info)
      return value ? retry_info_ms(value, value_len) : 0;
  }
  return -1;
}

static int hexval(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

void tgo__grpc_on_header(tgo__http_result *r, const char *line, size_t len) {
  if (len < 6 || strncasecmp(line, "grpc-", 5))
    return;
  const char *colon = memchr(line, ':', len);
  if (!colon)
    return;
  size_t name_len = (size_t)(colon - line);
  const char *v = colon + 1, *end = line + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    end--;
  size_t vn = (size_t)(end - v);
  if (name_len == 11 && !strncasecmp(line, "grpc-status", 11)) {
    int code = 0;
    size_t i;
    for (i = 0; i < vn && i < 3 && v[i] >= '0' && v[i] <= '9'; i++)
      code = code * 10 + (v[i] - '0');
    r->grpc_status = i && i == vn ? code : TGO__GRPC_UNKNOWN;
  } else if (name_len == 12 && !strncasecmp(line, "grpc-message", 12)) {
    size_t k = 0;
    for (size_t i = 0; i < vn && k + 1 < sizeof r->grpc_message; i++) {
      int hi, lo;
      if (v[i] == '%' && i + 2 < vn &&
          (hi = hexval(v[i + 1])) >= 0 && (lo = hexval(v[i + 2])) >= 0) {
        r->grpc_message[k++] = (char)(hi << 4 | lo);
        i += 2;
      } else {
        r->grpc_message[k++] = v[i];
      }
    }
    r->grpc_message[k] = '\0';
  } else if (name_len == 23 && !strncasecmp(line, "grpc-status-details-bin", 23)) {
    uint8_t buf[1024];
    long n = b64_decode(v, vn, buf, sizeof buf);
    if (n > 0)
      r->grpc_retry_ms = status_retry_ms(buf, (size_t)n);
  }
}

int tgo__grpc_status_of(const tgo__http_result *r) {
  if (r->transport_error)
    return -1;
  if (r->grpc_status >= 0)
    return r->grpc_status;
  /* No grpc-status: a proxy or a non-gRPC server answered
   * (https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md). */
  switch (r->status) {
  case 400: return TGO__GRPC_INTERNAL;
  case 401: return TGO__GRPC_UNAUTHENTICATED;
  case 403: return TGO__GRPC_PERMISSION_DENIED;
  case 404: return TGO__GRPC_UNIMPLEMENTED;
  case 429:
  case 502:
  case 503:
  case 504: return TGO__GRPC_UNAVAILABLE;
  default: return TGO__GRPC_UNKNOWN;
  }
}

int tgo__grpc_retryable(int status, int retry_ms) {
  switch (status) {
  case TGO__GRPC_CANCELLED:
  case TGO__GRPC_DEADLINE_EXCEEDED:
  case TGO__GRPC_ABORTED:
  case TGO__GRPC_OUT_OF_RANGE:
  case TGO__GRPC_UNAVAILABLE:
  case TGO__GRPC_DATA_LOSS: return 1;
  case TGO__GRPC_RESOURCE_EXHAUSTED: return retry_ms >= 0;
  default: return 0;
  }
}

const char *tgo__grpc_status_name(int status) {
  static const char *const names[] = {
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
      "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  return status >= 0 && (size_t)status < sizeof names / sizeof names[0] ? names[status] : "UNKNOWN";
}

int tgo__grpc_partial_success(const uint8_t *body, size_t len, long long *rejected, char *msg, size_t cap) {
  *rejected = 0;
  if (cap)
    *msg = '\0';
  if (len == 0)
    return 0;
  if (len < 5 || body[0] != 0)
    return -1;
  size_t n = (size_t)body[1] << 24 | (size_t)body[2] << 16 | (size_t)body[3] << 8 | body[4];
  if (n > len - 5)
    n = len - 5; /* only the head was kept: read what there is */
  const uint8_t *p = body + 5, *end = p + n;
  pb_field f;
  int rc, found = 0;
  while ((rc = pb_next_cut(&p, end, &f)) > 0) {
    if (f.num != 1 || f.wire != 2)
      continue;
    const uint8_t *q = f.data, *qend = f.data + f.len;
    pb_field g;
    while (pb_next_cut(&q, qend, &g) > 0) {
      if (g.num == 1 && g.wire == 0) {
        *rejected = (long long)g.v;
        found |= g.v != 0;
      } else if (g.num == 2 && g.wire == 2 && cap) {
        size_t take = g.len < cap - 1 ? g.len : cap - 1;
        memcpy(msg, g.data, take);
        msg[take] = '\0';
        found |= take != 0;
      }
    }
  }
  (void)rc;
  return found;
}
