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
