/* Query-string redaction: the values of parameters that carry credentials
 * or request signatures become REDACTED (OpenTelemetry HTTP conventions),
 * and so do URLs passed as values when they carry userinfo or a query,
 * for url.query on server spans and url.full on client spans. */
#include "tgo-internal.h"

#include <string.h>
#include <strings.h>

#define SECRET_PARAMS(X)                                                                                      \
  X("sig") X("signature") X("x-amz-signature") X("x-amz-credential") X("x-amz-security-token")              \
  X("awsaccesskeyid") X("x-goog-signature") X("x-goog-credential") X("token") X("access_token")            \
  X("refresh_token") X("id_token") X("api_key") X("apikey") X("api-key") X("key") X("password") X("passwd") \
  X("pwd") X("secret") X("client_secret") X("auth") X("authorization") X("session") X("sessionid") X("sv")  \
  X("se")
#define SECRET(s) {s, sizeof s - 1},
static const struct {
  const char *name;
  size_t len;
} secret_params[] = {SECRET_PARAMS(SECRET)};
#undef SECRET
/* Bit n set: some name is n bytes long (all are under 32). Most parameter
 * names have a length no secret has, and are passed without the walk. */
#define LENGTH_BIT(s) | (1u << (sizeof s - 1))
static const uint32_t secret_lengths = 0 SECRET_PARAMS(LENGTH_BIT);
#undef LENGTH_BIT

/* Lengths first: every parameter of every traced query passes here, and a
 * strlen per name was most of the cost. */
static int is_secret(const char *k, size_t n) {
  if (n >= 32 || !(secret_lengths >> n & 1))
    return 0;
  for (size_t i = 0; i < sizeof secret_params / sizeof secret_params[0]; i++)
    if (secret_params[i].len == n && !strncasecmp(k, secret_params[i].name, n))
      return 1;
  return 0;
}

static const char *find_ci(const char *s, size_t n, const char *needle) {
  size_t m = strlen(needle);
  for (size_t i = 0; i + m <= n; i++)
    if (!strncasecmp(s + i, needle, m))
      return s + i;
  return NULL;
}

/* A URL in a parameter value (redirect and callback targets) can carry its
 * own credentials: userinfo, or a query with tokens. Such a value is
 * redacted whole; a plain URL is kept. Percent-encoded forms count too. */
static int is_url_with_secrets(const char *v, size_t n) {
  const char *scheme = find_ci(v, n, "://");
  size_t skip = 3;
  if (!scheme) {
    scheme = find_ci(v, n, "%3a%2f%2f");
    skip = 9;
  }
  if (!scheme)
    return 0;
  const char *rest = scheme + skip, *end = v + n;
  return find_ci(rest, (size_t)(end - rest), "@") || find_ci(rest, (size_t)(end - rest), "%40") ||
         find_ci(rest, (size_t)(end - rest), "?") || find_ci(rest, (size_t)(end - rest), "%3f");
}

size_t tgo__redact_query(const char *q, size_t n, char *out, size_t cap) {
  size_t o = 0;
  if (!cap)
    return 0;
  for (size_t i = 0; i < n;) {
    size_t end = i;
    while (end < n && q[end] != '&' && q[end] != ';')
      end++;
    const char *eq = memchr(q + i, '=', end - i);
    size_t klen = eq ? (size_t)(eq - (q + i)) : end - i;
    size_t copy = eq && (is_secret(q + i, klen) || is_url_with_secrets(eq + 1, (size_t)(q + end - eq - 1)))
                      ? klen + 1
                      : end - i;
    for (size_t k = 0; k < copy && o + 1 < cap; k++)
      out[o++] = q[i + k];
    if (copy != end - i)
      for (const char *r = "REDACTED"; *r && o + 1 < cap; r++)
        out[o++] = *r;
    if (end < n && o + 1 < cap)
      out[o++] = q[end];
    i = end + 1;
  }
  out[o] = '\0';
  return o;
}

/* A key segment (between ':' '/' '#' '|') is an identifier, and masked,
 * when it has a digit or '@', or is long enough to be a token or a hash. */
static int segment_is_id(const char *s, size_t n) {
  if (n > 24)
    return 1;
  for (size_t i = 0; i < n; i++)
    if ((s[i] >= '0' && s[i] <= '9') || s[i] == '@')
      return 1;
  return 0;
}

size_t tgo__key_pattern(const char *key, size_t n, char *out, size_t cap) {
  size_t o = 0;
  if (!cap)
    return 0;
  for (size_t i = 0; i <= n;) {
    size_t end = i;
    while (end < n && !strchr(":/#|", key[end]))
      end++;
    if (segment_is_id(key + i, end - i)) {
      if (o + 1 < cap)
        out[o++] = '?';
    } else {
      for (size_t k = i; k < end && o + 1 < cap; k++)
        out[o++] = key[k];
    }
    if (end < n && o + 1 < cap)
      out[o++] = key[end];
    i = end + 1;
  }
  out[o] = '\0';
  return o;
}
