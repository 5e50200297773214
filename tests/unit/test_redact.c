/* Redaction: secret query-string values and identifiers in cache keys. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tgo-internal.h"

Test(redact, secret_query_values_are_replaced_and_the_rest_kept) {
  const char *q = "page=2&sig=abc123&X-Amz-Signature=deadbeef&token=t;key=k&empty&q=a%3Db";
  char o[256];
  size_t n = tgo__redact_query(q, strlen(q), o, sizeof o);
  cr_assert_str_eq(o, "page=2&sig=REDACTED&X-Amz-Signature=REDACTED&token=REDACTED;key=REDACTED&empty&q=a%3Db");
  cr_assert_eq(n, strlen(o));
  char small[6];
  tgo__redact_query(q, strlen(q), small, sizeof small);
  cr_assert_str_eq(small, "page=");
}

/* Every name of the list, whatever its case, and names one byte longer or
 * shorter kept: the length filter must pass each listed length. */
Test(redact, every_listed_name_of_every_length_is_redacted) {
  static const char *names[] = {"sig", "signature", "x-amz-signature", "x-amz-credential", "X-Amz-Security-Token",
                                "awsaccesskeyid", "x-goog-signature", "x-goog-credential", "token", "access_token",
                                "refresh_token", "id_token", "api_key", "apikey", "api-key", "key", "password",
                                "passwd", "pwd", "secret", "client_secret", "auth", "authorization", "session",
                                "sessionid", "sv", "se"};
  char q[128], o[256], want[128];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    snprintf(q, sizeof q, "%s=v&%sx=v&x%s=v", names[i], names[i], names[i]);
    snprintf(want, sizeof want, "%s=REDACTED&%sx=v&x%s=v", names[i], names[i], names[i]);
    tgo__redact_query(q, strlen(q), o, sizeof o);
    cr_assert_str_eq(o, want);
  }
  const char *long_name = "a_parameter_name_of_more_than_32_bytes=v";
  tgo__redact_query(long_name, strlen(long_name), o, sizeof o);
  cr_assert_str_eq(o, long_name);
}

Test(redact, urls_carrying_credentials_in_values_are_replaced) {
  const char *q = "next=https://example.com/home&cb=http://u:pw@h/x&r=https%3A%2F%2Fh%2Fp%3Ftoken%3Dt&n=2";
  char o[256];
  tgo__redact_query(q, strlen(q), o, sizeof o);
  cr_assert_str_eq(o, "next=https://example.com/home&cb=REDACTED&r=REDACTED&n=2");
}

Test(redact, key_patterns_mask_identifiers) {
  char o[128];
  const char *cases[][2] = {
      {"user:42:profile", "user:?:profile"},
      {"session:alice@example.com", "session:?"},
      {"cache/views.index", "cache/views.index"},
      {"tok:abcdefghijklmnopqrstuvwxyz0", "tok:?"},
      {"plain", "plain"},
      {"", ""},
      {"a::b", "a::b"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tgo__key_pattern(cases[i][0], strlen(cases[i][0]), o, sizeof o);
    cr_expect_str_eq(o, cases[i][1], "%s", cases[i][0]);
  }
}
