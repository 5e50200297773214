/* W3C trace context parsing and formatting. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tgo-internal.h"

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define SID "00f067aa0ba902b7"

static int parse(const char *h, tgo_span_context *c) { return tgo_traceparent_parse(h, strlen(h), c); }

Test(traceparent, parses_a_sampled_header) {
  tgo_span_context c;
  cr_assert_eq(parse("00-" TID "-" SID "-01", &c), 0);
  char hex[33];
  tgo__hex_encode(c.trace_id, 16, hex);
  hex[32] = 0;
  cr_assert_str_eq(hex, TID);
  cr_assert_eq(c.flags, 1);
  cr_assert_eq(c.is_remote, 1);
}

Test(traceparent, parses_an_unsampled_header_and_surrounding_spaces) {
  tgo_span_context c;
  cr_assert_eq(parse("  00-" TID "-" SID "-00 ", &c), 0);
  cr_assert_eq(c.flags, 0);
}

Test(traceparent, keeps_only_the_sampled_flag) {
  tgo_span_context c;
  cr_assert_eq(parse("00-" TID "-" SID "-ff", &c), 0);
  cr_assert_eq(c.flags, 1);
}

Test(traceparent, rejects_what_the_spec_says_to_ignore) {
  static const char *const bad[] = {
      "",
      "00-" TID "-" SID "-0",                       /* short */
      "00-" TID "-" SID "-01-",                     /* version 00 must be exact */
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-" SID "-01", /* uppercase */
      "ff-" TID "-" SID "-01",                      /* forbidden version */
      "00-00000000000000000000000000000000-" SID "-01",
      "00-" TID "-0000000000000000-01",
      "00_" TID "-" SID "-01",
      "00-" TID "_" SID "-01",
      "00-" TID "-" SID "_01",
      "00-4bf92f3577b34da6a3ce929d0e0e473g-" SID "-01",
      "01-" TID "-" SID "-01x",                     /* future version, no '-' after */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tgo_span_context c;
    cr_expect_eq(parse(bad[i], &c), -EINVAL, "accepted: '%s'", bad[i]);
  }
}

Test(traceparent, accepts_a_future_version_with_more_fields) {
  tgo_span_context c;
  cr_assert_eq(parse("01-" TID "-" SID "-01-whatever", &c), 0);
}

Test(traceparent, formats_what_it_parsed) {
  tgo_span_context c;
  const char *h = "00-" TID "-" SID "-01";
  cr_assert_eq(parse(h, &c), 0);
  char out[TGO_TRACEPARENT_LEN + 1];
  tgo_traceparent_format(&c, out);
  cr_assert_str_eq(out, h);
}

Test(tracestate, accepts_valid_lists) {
  cr_assert_gt(tgo_tracestate_check("congo=t61rcWkgMzE", 17), 0);
  const char *two = "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,tenant@vendor=x";
  cr_assert_eq(tgo_tracestate_check(two, strlen(two)), (int)strlen(two));
}

Test(tracestate, rejects_bad_lists) {
  static const char *const bad[] = {"", "novalue", "=x", "UPPER=x", "k=", "k=a,b"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_expect_eq(tgo_tracestate_check(bad[i], strlen(bad[i])), -EINVAL, "accepted '%s'", bad[i]);
  char many[1024] = "";
  for (int i = 0; i < 33; i++) {
    char m[16];
    snprintf(m, sizeof m, "%sk%d=v", i ? "," : "", i);
    strcat(many, m);
  }
  cr_assert_eq(tgo_tracestate_check(many, strlen(many)), -EINVAL, "33 members accepted");
}

/* ---- B3 ------------------------------------------------------------------ */

static void hex_of(const uint8_t *b, size_t n, char *out) {
  tgo__hex_encode(b, n, out);
  out[2 * n] = 0;
}

Test(b3, single_header_with_and_without_sampling_and_parent) {
  tgo_span_context c;
  char hex[33];
  const char *h = TID "-" SID "-1-" "0020000000000001";
  cr_assert_eq(tgo__b3_parse(h, strlen(h), &c), 0);
  hex_of(c.trace_id, 16, hex);
  cr_assert_str_eq(hex, TID);
  hex_of(c.span_id, 8, hex);
  cr_assert_str_eq(hex, SID);
  cr_assert_eq(c.flags, 1);
  cr_assert_eq(c.is_remote, 1);
  h = TID "-" SID "-0";
  cr_assert_eq(tgo__b3_parse(h, strlen(h), &c), 0);
  cr_assert_eq(c.flags, 0);
  h = TID "-" SID "-d";
  cr_assert_eq(tgo__b3_parse(h, strlen(h), &c), 0);
  cr_assert_eq(c.flags, 1, "debug means sampled");
  h = TID "-" SID;
  cr_assert_eq(tgo__b3_parse(h, strlen(h), &c), 0);
  cr_assert_eq(c.flags, TGO__FLAG_DEFERRED, "no decision: the local sampler decides");
}

Test(b3, a_64_bit_trace_id_is_left_padded) {
  tgo_span_context c;
  const char *h = "a3ce929d0e0e4736-" SID "-1";
  cr_assert_eq(tgo__b3_parse(h, strlen(h), &c), 0);
  char hex[33];
  hex_of(c.trace_id, 16, hex);
  cr_assert_str_eq(hex, "0000000000000000a3ce929d0e0e4736");
}

Test(b3, rejects_malformed_single_headers) {
  static const char *const bad[] = {
      "", "0", "1", "d", TID, TID "-", TID "-" SID "-2", TID "-" SID "-1-", TID "-" SID "-1-abc",
      "4BF92F3577B34DA6A3CE929D0E0E4736-" SID "-1", /* upper case */
      "00000000000000000000000000000000-" SID "-1", TID "-0000000000000000-1", TID "-" SID "-11",
      "abc-" SID, TID "-" SID "x",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tgo_span_context c;
    cr_assert_eq(tgo__b3_parse(bad[i], strlen(bad[i]), &c), -EINVAL, "accepted: %s", bad[i]);
  }
}

Test(b3, multi_headers_sampled_flags_and_deferred) {
  tgo_span_context c;
  cr_assert_eq(tgo__b3multi_parse(TID, 32, SID, 16, "1", 1, NULL, 0, &c), 0);
  cr_assert_eq(c.flags, 1);
  cr_assert_eq(tgo__b3multi_parse(TID, 32, SID, 16, "true", 4, NULL, 0, &c), 0);
  cr_assert_eq(c.flags, 1);
  cr_assert_eq(tgo__b3multi_parse(TID, 32, SID, 16, "0", 1, NULL, 0, &c), 0);
  cr_assert_eq(c.flags, 0);
  cr_assert_eq(tgo__b3multi_parse(TID, 32, SID, 16, NULL, 0, "1", 1, &c), 0);
  cr_assert_eq(c.flags, 1, "X-B3-Flags: 1 is debug");
  cr_assert_eq(tgo__b3multi_parse("a3ce929d0e0e4736", 16, SID, 16, NULL, 0, NULL, 0, &c), 0);
  cr_assert_eq(c.flags, TGO__FLAG_DEFERRED);
  cr_assert_eq(c.trace_id[7], 0);
  cr_assert_eq(c.trace_id[8], 0xa3);
  cr_assert_eq(tgo__b3multi_parse(TID, 31, SID, 16, "1", 1, NULL, 0, &c), -EINVAL);
  cr_assert_eq(tgo__b3multi_parse(TID, 32, SID, 15, "1", 1, NULL, 0, &c), -EINVAL);
  cr_assert_eq(tgo__b3multi_parse(TID, 32, NULL, 0, "1", 1, NULL, 0, &c), -EINVAL);
}

Test(b3, formats_what_it_parses) {
  tgo_span_context c;
  const char *h = TID "-" SID "-1";
  cr_assert_eq(tgo__b3_parse(h, strlen(h), &c), 0);
  char out[TGO__B3_LEN + 1];
  cr_assert_eq(tgo__b3_format(&c, out), TGO__B3_LEN);
  cr_assert_str_eq(out, h);
  c.flags = TGO__FLAG_DEFERRED;
  tgo__b3_format(&c, out);
  cr_assert_str_eq(out, TID "-" SID "-0");
}

/* ---- baggage -------------------------------------------------------------- */

static int bag(const char *h) { return tgo__baggage_check(h, strlen(h)); }

Test(baggage, accepts_w3c_examples) {
  static const char *const good[] = {
      "key1=value1,key2=value2",
      "key1 = value1, key2 = value2",
      "key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue",
      "userId=alice%20smith,isProduction=false",
      "k=",
      "k=v ",
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    cr_assert_gt(bag(good[i]), 0, "rejected: %s", good[i]);
  cr_assert_eq(bag("k=v  "), 3, "trailing blanks are not part of it");
}

Test(baggage, rejects_malformed_headers) {
  static const char *const bad[] = {
      "", " ", "=v", "k", "k=v,", ",k=v", "k=v,,k2=v2", "k=a b", "k=\"q\"", "k=a\\b", "k=v;", "k=v;=x",
      "k y=v", "k=v;p=a,b", "k=\x01", "k=\xc3\xa9",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_assert_eq(bag(bad[i]), -EINVAL, "accepted: %s", bad[i]);
}

Test(baggage, enforces_the_w3c_limits) {
  static char h[TGO__BAGGAGE_MAX_BYTES + 64];
  size_t n = 0;
  for (int i = 0; i < 180; i++)
    n += (size_t)snprintf(h + n, sizeof h - n, "%sk%d=v", i ? "," : "", i);
  cr_assert_eq(tgo__baggage_check(h, n), (int)n, "180 entries are allowed");
  n += (size_t)snprintf(h + n, sizeof h - n, ",k180=v");
  cr_assert_eq(tgo__baggage_check(h, n), -EINVAL, "181 entries are not");
  memset(h, 'v', sizeof h);
  memcpy(h, "k=", 2);
  cr_assert_eq(tgo__baggage_check(h, TGO__BAGGAGE_MAX_BYTES), TGO__BAGGAGE_MAX_BYTES);
  cr_assert_eq(tgo__baggage_check(h, TGO__BAGGAGE_MAX_BYTES + 1), -EINVAL);
}

/* ---- extraction order ------------------------------------------------------ */

static const char *carrier_values[TGO__H_COUNT];

static const char *get(void *carrier, int which, size_t *len) {
  (void)carrier;
  const char *v = carrier_values[which];
  *len = v ? strlen(v) : 0;
  return v;
}

#define PROPS(a, b, c) ((a) | (b) << 4 | (c) << 8)

Test(extract, the_first_configured_propagator_with_a_valid_context_wins) {
  memset(carrier_values, 0, sizeof carrier_values);
  carrier_values[TGO__H_TRACEPARENT] = "00-" TID "-" SID "-01";
  carrier_values[TGO__H_B3] = "a3ce929d0e0e4736-1111111111111111-0";
  carrier_values[TGO__H_BAGGAGE] = "tenant=acme";
  tgo_span_context c;
  const char *b;
  size_t bn;
  cr_assert_eq(tgo__extract(PROPS(TGO__PROP_B3, TGO__PROP_TRACECONTEXT, 0), get, NULL, &c, &b, &bn), 1);
  cr_assert_eq(c.span_id[0], 0x11, "b3 comes first");
  cr_assert_null(b, "baggage is not configured");
  cr_assert_eq(tgo__extract(PROPS(TGO__PROP_TRACECONTEXT, TGO__PROP_B3, TGO__PROP_BAGGAGE), get, NULL, &c, &b,
                            &bn), 1);
  cr_assert_eq(c.span_id[0], 0x00);
  cr_assert_eq(bn, 11);
  carrier_values[TGO__H_TRACEPARENT] = "00-bad";
  cr_assert_eq(tgo__extract(PROPS(TGO__PROP_TRACECONTEXT, TGO__PROP_B3, 0), get, NULL, &c, &b, &bn), 1);
  cr_assert_eq(c.span_id[0], 0x11, "an invalid first falls through to the next");
  cr_assert_eq(tgo__extract(0, get, NULL, &c, &b, &bn), 0, "none");
  carrier_values[TGO__H_BAGGAGE] = "bad baggage";
  cr_assert_eq(tgo__extract(PROPS(TGO__PROP_BAGGAGE, 0, 0), get, NULL, &c, &b, &bn), 0);
  cr_assert_null(b, "malformed baggage is dropped");
}

Test(extract, b3multi_needs_both_ids) {
  memset(carrier_values, 0, sizeof carrier_values);
  carrier_values[TGO__H_B3_TRACEID] = TID;
  tgo_span_context c;
  const char *b;
  size_t bn;
  cr_assert_eq(tgo__extract(TGO__PROP_B3MULTI, get, NULL, &c, &b, &bn), 0);
  carrier_values[TGO__H_B3_SPANID] = SID;
  carrier_values[TGO__H_B3_SAMPLED] = "1";
  cr_assert_eq(tgo__extract(TGO__PROP_B3MULTI, get, NULL, &c, &b, &bn), 1);
  cr_assert_eq(c.flags, 1);
}

/* ---- OTEL_PROPAGATORS ------------------------------------------------------- */

static int props_of(const char *v) {
  tgo__config c;
  tgo__config_defaults(&c);
  tgo__config_apply(&c, "OTEL_PROPAGATORS", v, "environment");
  return c.propagators;
}

Test(propagators_setting, parses_in_order_with_none_and_unknowns) {
  tgo__config c;
  tgo__config_defaults(&c);
  cr_assert_eq(c.propagators, PROPS(TGO__PROP_TRACECONTEXT, TGO__PROP_BAGGAGE, 0), "default");
  cr_assert_eq(c.propagators, TGO__PROPAGATORS_DEFAULT, "the constant the request path's fast path compares with");
  cr_assert_eq(props_of("b3multi, tracecontext"), PROPS(TGO__PROP_B3MULTI, TGO__PROP_TRACECONTEXT, 0));
  cr_assert_eq(props_of("B3,b3,baggage"), PROPS(TGO__PROP_B3, TGO__PROP_BAGGAGE, 0), "repeats once");
  cr_assert_eq(props_of("none"), 0);
  cr_assert_eq(props_of(""), PROPS(TGO__PROP_TRACECONTEXT, TGO__PROP_BAGGAGE, 0), "empty: the default");
  cr_assert_eq(props_of("xray,b3"), TGO__PROP_B3, "unknown names are skipped");
  cr_assert_eq(props_of("xray"), PROPS(TGO__PROP_TRACECONTEXT, TGO__PROP_BAGGAGE, 0), "only unknown: kept");
}
