/* The core as the _tigerops extension sees it beyond the public API:
 * exported from libtigerops.so for our own extension only, changed freely
 * between versions (tgo__ names: not public). */
#ifndef TGO__EXT_H
#define TGO__EXT_H

#include "tigerops/tigerops.h"

#include <stdio.h>

#if defined(TGO__BUILDING)
#define TGO__EXPORT __attribute__((visibility("default")))
#else
#define TGO__EXPORT
#endif

/* Database span settings (TIGEROPS_SLOW_QUERY_MS, 0 = off;
 * TIGEROPS_N_PLUS_ONE_THRESHOLD; TIGEROPS_SQLCOMMENTER), read per statement. */
TGO__EXPORT int tgo__slow_query_ms(void);
TGO__EXPORT int tgo__n_plus_one_threshold(void);
TGO__EXPORT int tgo__sqlcommenter(void);

/* The settings table, for the glue: flags of setting i (TGO__SETTING_*),
 * NULL past the end. */
enum {
  TGO__SETTING_FILE = 1, TGO__SETTING_ENV = 2, TGO__SETTING_APP = 4,
  TGO__SETTING_SECRET = 8, TGO__SETTING_PER_APP = 16, TGO__SETTING_FIXED = 32
};
TGO__EXPORT const char *tgo__config_setting(size_t i, unsigned *flags);
/* Re-reads the process environment (an app loaded a .env file, a test
 * conftest set OTEL_SDK_DISABLED) at environment precedence. Returns
 * tgo_enabled(). */
TGO__EXPORT int tgo__config_reload(void);

/* Like tgo_attr_str, but keeps the pointer: val must outlive every span,
 * i.e. be a string literal or come from tgo__intern(). */
TGO__EXPORT void tgo__attr_str_static(tgo_attrs *a, const char *key, const char *val, size_t len);
/* An immortal copy of s (the same pointer for equal strings), or NULL when
 * the bounded table is full: then copy instead. */
TGO__EXPORT const char *tgo__intern(const char *s, size_t len);

/* SQL for db.query.text: literals and placeholders become '?', IN lists
 * collapse to IN (?), comments go, whitespace folds, a trailing ';' goes.
 * Writes at most cap-1 bytes and a NUL; returns the length written. */
TGO__EXPORT size_t tgo__sql_normalize(const char *sql, size_t len, char *out, size_t cap);
/* From normalised SQL: the operation (first keyword) and the first table;
 * pointers into sql, lengths 0 when absent. */
TGO__EXPORT void tgo__sql_summary(const char *sql, size_t len, const char **op, size_t *op_len,
                                  const char **table, size_t *table_len);

/* A query string with the values of credential- and signature-like
 * parameters replaced by REDACTED. Bounded like tgo__sql_normalize. */
TGO__EXPORT size_t tgo__redact_query(const char *query, size_t len, char *out, size_t cap);

/* A cache or Redis key with its identifier segments (digits, '@', long
 * tokens) replaced by '?': "user:42:profile" -> "user:?:profile". */
TGO__EXPORT size_t tgo__key_pattern(const char *key, size_t len, char *out, size_t cap);
/* Masks e-mail addresses, payment card numbers, phone numbers and the
 * TIGEROPS_PII_PATTERNS matches in place ('*' per character, length kept),
 * as the exporter does to every exported string. Returns how many it masked;
 * 0 with TIGEROPS_PII_MASKING=false. */
TGO__EXPORT size_t tgo__pii_mask(char *text, size_t len);

/* tigerops-run --check: one test span to the configured collector, a
 * report on out; 0 when the collector accepted it. */
TGO__EXPORT int tgo__self_check(FILE *out);

#endif
