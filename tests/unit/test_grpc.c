/* OTLP/gRPC pieces of grpc.c: message framing, the status out of headers
 * and trailers (grpc-status, grpc-message, RetryInfo in
 * grpc-status-details-bin), the retry table and partial_success. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tgo-internal.h"

static tgo__http_result fresh(void) {
  tgo__http_result r;
  memset(&r, 0, sizeof r);
  r.retry_after_s = r.grpc_status = r.grpc_retry_ms = -1;
  return r;
}

static void header(tgo__http_result *r, const char *line) { tgo__grpc_on_header(r, line, strlen(line)); }

Test(grpc, frame_is_flag_then_big_endian_length_then_message) {
  tgo__buf out = {0};
  const uint8_t msg[] = {0x0a, 0x02, 'h', 'i'};
  cr_assert_eq(tgo__grpc_frame(msg, sizeof msg, 0, &out), 0);
  const uint8_t want[] = {0, 0, 0, 0, 4, 0x0a, 0x02, 'h', 'i'};
  cr_assert_eq(out.len, sizeof want);
  cr_assert_arr_eq(out.data, want, sizeof want);
  tgo__buf_free(&out);
}

Test(grpc, gzip_frame_sets_the_flag_and_inflates_back) {
  uint8_t msg[3000];
  for (size_t i = 0; i < sizeof msg; i++)
    msg[i] = (uint8_t)(i % 7);
  tgo__buf out = {0};
  cr_assert_eq(tgo__grpc_frame(msg, sizeof msg, 1, &out), 1);
  cr_assert_eq(out.data[0], 1);
  size_t n = (size_t)out.data[1] << 24 | (size_t)out.data[2] << 16 | (size_t)out.data[3] << 8 | out.data[4];
  cr_assert_eq(n, out.len - 5);
  cr_assert_lt(n, sizeof msg / 4);
  uint8_t back[4000];
  z_stream z;
  memset(&z, 0, sizeof z);
  cr_assert_eq(inflateInit2(&z, 31), Z_OK);
  z.next_in = out.data + 5;
  z.avail_in = (uInt)n;
  z.next_out = back;
  z.avail_out = sizeof back;
  cr_assert_eq(inflate(&z, Z_FINISH), Z_STREAM_END);
  cr_assert_eq(z.total_out, sizeof msg);
  cr_assert_arr_eq(back, msg, sizeof msg);
  inflateEnd(&z);
  tgo__buf_free(&out);
}

Test(grpc, status_and_percent_decoded_message_from_trailers) {
  tgo__http_result r = fresh();
  header(&r, "content-type: application/grpc\r\n");
  cr_assert_eq(r.grpc_status, -1);
  header(&r, "grpc-status: 14\r\n");
  header(&r, "Grpc-Message: collector%20is%20restarting%2C%20100%25\r\n");
  cr_assert_eq(r.grpc_status, 14);
  cr_assert_str_eq(r.grpc_message, "collector is restarting, 100%");
  header(&r, "grpc-status: 1x\r\n");
  cr_assert_eq(r.grpc_status, TGO__GRPC_UNKNOWN, "garbage is UNKNOWN, never OK");
  header(&r, "grpc-status:\r\n");
  cr_assert_eq(r.grpc_status, TGO__GRPC_UNKNOWN);
  header(&r, "grpc-message: cut%2");
  cr_assert_str_eq(r.grpc_message, "cut%2", "a cut escape stays as it came");
}

/* The protobuf of google.rpc.Status carrying a RetryInfo of secs.nanos. */
static size_t status_with_retry_info(uint8_t *out, unsigned secs, unsigned nanos, const char *type) {
  uint8_t dur[16], ri[24], any[128];
  size_t d = 0, k = 0, a = 0, n = 0;
  dur[d++] = 0x08;
  dur[d++] = (uint8_t)secs;
  dur[d++] = 0x10; /* nanos as a varint */
  for (unsigned v = nanos; ; v >>= 7) {
    dur[d++] = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
    if (v <= 0x7F)
      break;
  }
  ri[k++] = 0x0a;
  ri[k++] = (uint8_t)d;
  memcpy(ri + k, dur, d);
  k += d;
  any[a++] = 0x0a;
  any[a++] = (uint8_t)strlen(type);
  memcpy(any + a, type, strlen(type));
  a += strlen(type);
  any[a++] = 0x12;
  any[a++] = (uint8_t)k;
  memcpy(any + a, ri, k);
  a += k;
  out[n++] = 0x08;
  out[n++] = 8; /* RESOURCE_EXHAUSTED */
  out[n++] = 0x12;
  out[n++] = 1;
  out[n++] = 'x';
  out[n++] = 0x1a;
  out[n++] = (uint8_t)a;
  memcpy(out + n, any, a);
  return n + a;
}

static void b64(const uint8_t *in, size_t n, char *out) {
  static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t k = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    acc = acc << 8 | in[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out[k++] = t[(acc >> bits) & 63];
    }
  }
  if (bits)
    out[k++] = t[(acc << (6 - bits)) & 63];
  out[k] = '\0'; /* unpadded, as gRPC sends -bin values */
}

Test(grpc, retry_info_delay_from_status_details) {
  uint8_t st[200];
  char line[400], enc[300];
  size_t n = status_with_retry_info(st, 1, 500000000, "type.googleapis.com/google.rpc.RetryInfo");
  b64(st, n, enc);
  snprintf(line, sizeof line, "grpc-status-details-bin: %s\r\n", enc);
  tgo__http_result r = fresh();
  header(&r, line);
  cr_assert_eq(r.grpc_retry_ms, 1500);
  /* another detail type is not RetryInfo */
  n = status_with_retry_info(st, 1, 0, "type.googleapis.com/google.rpc.DebugInfo");
  b64(st, n, enc);
  snprintf(line, sizeof line, "grpc-status-details-bin: %s\r\n", enc);
  r = fresh();
  header(&r, line);
  cr_assert_eq(r.grpc_retry_ms, -1);
  r = fresh();
  header(&r, "grpc-status-details-bin: !!!not base64\r\n");
  cr_assert_eq(r.grpc_retry_ms, -1);
  r = fresh();
  header(&r, "grpc-status-details-bin: CAgSAXgaBQoDAAAA\r\n"); /* a truncated Any */
  cr_assert_eq(r.grpc_retry_ms, -1);
}

Test(grpc, status_of_maps_http_when_no_grpc_status) {
  tgo__http_result r = fresh();
  r.transport_error = 1;
  cr_assert_eq(tgo__grpc_status_of(&r), -1);
  r = fresh();
  r.status = 200;
  r.grpc_status = 0;
  cr_assert_eq(tgo__grpc_status_of(&r), TGO__GRPC_OK);
  static const struct {
    long http;
    int grpc;
  } map[] = {{400, TGO__GRPC_INTERNAL},         {401, TGO__GRPC_UNAUTHENTICATED}, {403, TGO__GRPC_PERMISSION_DENIED},
             {404, TGO__GRPC_UNIMPLEMENTED},    {429, TGO__GRPC_UNAVAILABLE},     {502, TGO__GRPC_UNAVAILABLE},
             {503, TGO__GRPC_UNAVAILABLE},      {504, TGO__GRPC_UNAVAILABLE},     {500, TGO__GRPC_UNKNOWN},
             {200, TGO__GRPC_UNKNOWN}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
    r = fresh();
    r.status = map[i].http;
    cr_assert_eq(tgo__grpc_status_of(&r), map[i].grpc, "HTTP %ld", map[i].http);
  }
  r = fresh();
  r.status = 503;
  r.grpc_status = TGO__GRPC_INVALID_ARGUMENT;
  cr_assert_eq(tgo__grpc_status_of(&r), TGO__GRPC_INVALID_ARGUMENT, "the trailer wins");
}

Test(grpc, retryable_codes_are_the_otlp_specs) {
  for (int st = 0; st <= 16; st++) {
    int want = st == TGO__GRPC_CANCELLED || st == TGO__GRPC_DEADLINE_EXCEEDED || st == TGO__GRPC_ABORTED ||
               st == TGO__GRPC_OUT_OF_RANGE || st == TGO__GRPC_UNAVAILABLE || st == TGO__GRPC_DATA_LOSS;
    cr_assert_eq(tgo__grpc_retryable(st, -1), want, "%s", tgo__grpc_status_name(st));
  }
  cr_assert(tgo__grpc_retryable(TGO__GRPC_RESOURCE_EXHAUSTED, 0), "with RetryInfo");
  cr_assert(tgo__grpc_retryable(TGO__GRPC_RESOURCE_EXHAUSTED, 2000));
  cr_assert_not(tgo__grpc_retryable(TGO__GRPC_UNAUTHENTICATED, 2000), "RetryInfo does not make others retryable");
  cr_assert_str_eq(tgo__grpc_status_name(14), "UNAVAILABLE");
  cr_assert_str_eq(tgo__grpc_status_name(99), "UNKNOWN");
}

Test(grpc, partial_success_in_the_framed_response) {
  /* ExportTraceServiceResponse{partial_success{rejected_spans=3, error_message="too big"}} */
  const uint8_t body[] = {0, 0, 0, 0, 13, 0x0a, 11, 0x08, 3, 0x12, 7, 't', 'o', 'o', ' ', 'b', 'i', 'g'};
  long long rejected;
  char msg[64];
  cr_assert_eq(tgo__grpc_partial_success(body, sizeof body, &rejected, msg, sizeof msg), 1);
  cr_assert_eq(rejected, 3);
  cr_assert_str_eq(msg, "too big");
  const uint8_t empty[] = {0, 0, 0, 0, 0};
  cr_assert_eq(tgo__grpc_partial_success(empty, sizeof empty, &rejected, msg, sizeof msg), 0);
  cr_assert_eq(tgo__grpc_partial_success(empty, 0, &rejected, msg, sizeof msg), 0);
  const uint8_t zero[] = {0, 0, 0, 0, 2, 0x0a, 0};
  cr_assert_eq(tgo__grpc_partial_success(zero, sizeof zero, &rejected, msg, sizeof msg), 0, "empty: all accepted");
  const uint8_t compressed[] = {1, 0, 0, 0, 2, 0x0a, 0};
  cr_assert_eq(tgo__grpc_partial_success(compressed, sizeof compressed, &rejected, msg, sizeof msg), -1);
  /* only the response's head is kept: what it holds is read, never past it */
  const uint8_t cut[] = {0, 0, 0, 0, 13, 0x0a, 11, 0x08, 3, 0x12, 7, 't', 'o'};
  cr_assert_eq(tgo__grpc_partial_success(cut, sizeof cut, &rejected, msg, sizeof msg), 1);
  cr_assert_eq(rejected, 3);
  cr_assert_str_eq(msg, "to");
}
