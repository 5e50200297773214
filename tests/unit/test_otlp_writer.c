/* The fast writers (span: otlp_writer.c; envelope, resource, scope:
 * otlp.c) must produce exactly protobuf-c's bytes (otlp_reference.c). */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_reference.h"
#include "tgo-internal.h"
#include "tgo-pbwire.h"

static void setup(void) {
  setenv("TIGEROPS_EXPORTER", "none", 1);
  cr_assert_eq(tgo_init(), 0);
}

TestSuite(otlp_writer, .init = setup);

static void assert_same_bytes(tgo_span *s) {
  tgo__buf ref = {0};
  cr_assert_eq(otlp_ref_pack_span(s, &ref), 0);
  size_t size = tgo__otlp_span_size(s);
  cr_assert_eq(size, ref.len, "writer size %zu, protobuf-c %zu", size, ref.len);
  uint8_t *buf = malloc(size + 16);
  uint8_t *end = tgo__otlp_span_write(buf, s);
  cr_assert_eq((size_t)(end - buf), ref.len);
  cr_assert(memcmp(buf, ref.data, ref.len) == 0, "bytes differ from protobuf-c's");
  free(buf);
  tgo__buf_free(&ref);
  /* The encoder writes the span into the room it has, growing it, and
   * frames it once written (a length of another width than the two bytes
   * it expects moves the span): still protobuf-c's bytes. */
  tgo__buf ours = {0};
  cr_assert_eq(tgo__otlp_encode_traces(&s, 1, &ours), 0);
  cr_assert_eq(otlp_ref_pack_request(&s, 1, &ref), 0);
  cr_assert_eq(ours.len, ref.len, "encoder %zu bytes, protobuf-c %zu", ours.len, ref.len);
  cr_assert(memcmp(ours.data, ref.data, ref.len) == 0, "request bytes differ from protobuf-c's");
  tgo__buf_free(&ours);
  tgo__buf_free(&ref);
}

Test(otlp_writer, matches_protobuf_c_for_a_bare_root_span) {
  tgo_span *s = tgo_span_start("root", 4, TGO_KIND_SERVER, NULL, NULL);
  s->end_ns = s->start_ns + 1000;
  assert_same_bytes(s);
  tgo_span_unref(s);
}

Test(otlp_writer, matches_protobuf_c_with_every_attribute_type_events_and_status) {
  tgo_span_context remote;
  cr_assert_eq(tgo_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55,
                                     &remote), 0);
  remote.tracestate = "congo=t61rcWkgMzE";
  remote.tracestate_len = strlen(remote.tracestate);
  tgo_span *s = tgo_span_start("GET /users/<id>", 15, TGO_KIND_CLIENT, NULL, &remote);
  tgo_attrs *a = tgo_span_attrs(s);
  tgo_attr_str(a, "s", "value", 5);
  tgo_attr_str(a, "empty", "", 0);
  tgo_attr_str(a, "", "no key", 6);
  tgo_attr_int(a, "neg", -42);
  tgo_attr_int(a, "zero", 0);
  tgo_attr_int(a, "big", INT64_MAX);
  tgo_attr_double(a, "d", 3.25);
  tgo_attr_bool(a, "t", 1);
  tgo_attr_bool(a, "f", 0);
  const char *strs[] = {"a", "", "ccc"};
  tgo_attr_str_array(a, "sa", strs, NULL, 3);
  int64_t ints[] = {1, -1, 300};
  tgo_attr_int_array(a, "ia", ints, 3);
  double ds[] = {0.0, -1.5};
  tgo_attr_double_array(a, "da", ds, 2);
  int bs[] = {1, 0};
  tgo_attr_bool_array(a, "ba", bs, 2);
  tgo_attr_str_array(a, "none", NULL, NULL, 0);
  tgo_attrs *ev = tgo_span_add_event(s, "exception", 9);
  tgo_attr_str(ev, "exception.type", "ValueError", 10);
  tgo_span_add_event(s, "", 0);
  tgo_span_set_status(s, TGO_STATUS_ERROR, "boom", 4);
  s->end_ns = s->start_ns + 5;
  assert_same_bytes(s);
  tgo_span_unref(s);
}

/* The short-string path and the inline copy: every length across the
 * copy's 4/8/16/32-byte cases and the one-byte varints' 127, for the key,
 * the value and the KeyValue. */
Test(otlp_writer, matches_protobuf_c_for_string_attributes_of_every_length) {
  static char text[310]; /* the key is taken 3 bytes in: room for 300 of it */
  for (size_t i = 0; i < sizeof text - 1; i++)
    text[i] = (char)('a' + i % 26);
  for (size_t len = 0; len <= 300; len += len < 40 ? 1 : 7) {
    tgo_span *s = tgo_span_start("lengths", 7, TGO_KIND_INTERNAL, NULL, NULL);
    tgo_attrs *a = tgo_span_attrs(s);
    char key[301];
    memcpy(key, text + 3, len);
    key[len] = '\0';
    tgo_attr_str(a, key, text, len);
    tgo_attr_str(a, "k", text + 1, len);
    if (len) {
      key[len - 1] = '!'; /* another key, with a one-byte value: the key alone crosses 128 */
      tgo_attr_str(a, key, "v", 1);
    }
    s->end_ns = s->start_ns + 1;
    assert_same_bytes(s);
    tgo_span_unref(s);
  }
}

/* The short int path (keys under 100 bytes) and the general one past it,
 * with values of every varint width. */
Test(otlp_writer, matches_protobuf_c_for_int_attributes_of_every_key_length_and_width) {
  static const int64_t values[] = {0, 1, 127, 128, 300, 16384, -1, INT64_MIN, INT64_MAX, 1LL << 35};
  static char keys[sizeof values / sizeof *values][130]; /* the span points at its keys */
  for (size_t len = 1; len <= 120; len += len < 90 ? 11 : 1) {
    tgo_span *s = tgo_span_start("ints", 4, TGO_KIND_INTERNAL, NULL, NULL);
    tgo_attrs *a = tgo_span_attrs(s);
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
      memset(keys[i], 'k', len);
      keys[i][len - 1] = (char)('a' + i); /* a key per value */
      keys[i][len] = '\0';
      tgo_attr_int(a, keys[i], values[i]);
    }
    s->end_ns = s->start_ns + 1;
    assert_same_bytes(s);
    tgo_span_unref(s);
  }
}

Test(otlp_writer, inline_copy_writes_exactly_its_bytes) {
  uint8_t src[80], dst[96];
  for (size_t i = 0; i < sizeof src; i++)
    src[i] = (uint8_t)(i * 7 + 1);
  for (size_t n = 0; n <= 64; n++) {
    memset(dst, 0xEE, sizeof dst);
    tgo__copy_short(dst + 8, src + 3, n);
    for (size_t i = 0; i < sizeof dst; i++)
      cr_assert_eq(dst[i], i >= 8 && i < 8 + n ? src[3 + i - 8] : 0xEE, "n %zu, byte %zu", n, i);
  }
}

Test(otlp_writer, matches_protobuf_c_with_dropped_counts_and_ok_status) {
  tgo_span *parent = tgo_span_start("p", 1, TGO_KIND_INTERNAL, NULL, NULL);
  tgo_span *s = tgo_span_start("child", 5, TGO_KIND_INTERNAL, parent, NULL);
  tgo_attrs *a = tgo_span_attrs(s);
  char keys[200][16];
  for (int i = 0; i < 200; i++) {
    snprintf(keys[i], sizeof keys[i], "k%d", i);
    tgo_attr_int(a, tgo_attrs_key(a, keys[i], strlen(keys[i])), i);
  }
  for (int i = 0; i < 150; i++)
    tgo_span_add_event(s, "e", 1);
  tgo_span_set_status(s, TGO_STATUS_OK, NULL, 0);
  s->end_ns = s->start_ns + 7;
  cr_assert_gt(s->attrs.dropped, 0);
  cr_assert_gt(s->dropped_events, 0);
  assert_same_bytes(s);
  tgo_span_unref(s);
  tgo_span_unref(parent);
}

Test(otlp_writer, matches_protobuf_c_with_links_and_explicit_times) {
  tgo_span *s = tgo_span_start("batch", 5, TGO_KIND_CONSUMER, NULL, NULL);
  tgo_span_context other;
  cr_assert_eq(tgo_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55, &other), 0);
  other.tracestate = "congo=t61rcWkgMzE";
  other.tracestate_len = strlen(other.tracestate);
  tgo_attrs *la = tgo__span_add_link(s, &other);
  tgo_attr_str(la, "messaging.message.id", "m1", 2);
  other.tracestate = NULL;
  other.is_remote = 0;
  other.flags = 0;
  cr_assert_not_null(tgo__span_add_link(s, &other));
  for (int i = 0; i < 130; i++)
    tgo__span_add_link(s, &other);
  cr_assert_eq(s->n_links, TGO__SPAN_MAX_LINKS);
  cr_assert_eq(s->dropped_links, 4);
  tgo__span_set_start_time(s, 1700000000000000000ull);
  tgo_span_ref(s);
  tgo__span_end_at(s, 1700000000000000500ull);
  cr_assert_eq(s->start_ns, 1700000000000000000ull);
  cr_assert_eq(s->end_ns, 1700000000000000500ull);
  assert_same_bytes(s);
  tgo_span_unref(s);
}

/* Spans whose bounds and sizes fall on either side of the span's and the
 * batch's varint widths (128 and 16384 bytes): the span's and the
 * envelope's bytes move only there, and must still be protobuf-c's. */
Test(otlp_writer, batches_across_varint_widths_match_protobuf_c) {
  static char text[8000];
  memset(text, 'x', sizeof text);
  size_t lengths[] = {0, 40, 60, 80, 100, 110, 120, 16200, 16250, 16280, 16300, 16330, 16360, 16400};
  size_t n_lengths = sizeof lengths / sizeof *lengths;
  /* up, then down: the encoder's first reservation follows the last
   * batch's spans, so it is short on the way up and long on the way down */
  for (size_t step = 0; step < 2 * n_lengths; step++) {
    size_t i = step < n_lengths ? step : 2 * n_lengths - 1 - step;
    for (size_t count = 1; count <= 3; count++) {
      tgo_span *batch[3];
      for (size_t k = 0; k < count; k++) {
        batch[k] = tgo_span_start("w", 1, TGO_KIND_INTERNAL, NULL, NULL);
        /* in pieces under the value length limit (8192) */
        static const char *const keys[] = {"v0", "v1", "v2"};
        for (size_t left = lengths[i], piece = 0; piece == 0 || left; piece++) {
          size_t n = left < 8000 ? left : 8000;
          tgo_attr_str(tgo_span_attrs(batch[k]), keys[piece], text, n);
          left -= n;
        }
        batch[k]->end_ns = batch[k]->start_ns + 1;
      }
      tgo__buf ours = {0}, ref = {0};
      cr_assert_eq(tgo__otlp_encode_traces(batch, count, &ours), 0);
      cr_assert_eq(otlp_ref_pack_request(batch, count, &ref), 0);
      cr_assert_eq(ours.len, ref.len, "value %zu x %zu: writer %zu bytes, protobuf-c %zu", lengths[i], count,
                   ours.len, ref.len);
      cr_assert(memcmp(ours.data, ref.data, ref.len) == 0, "value %zu x %zu: bytes differ", lengths[i], count);
      tgo__buf_free(&ours);
      tgo__buf_free(&ref);
      for (size_t k = 0; k < count; k++)
        tgo_span_unref(batch[k]);
    }
  }
}

/* The first reservation follows the last batch's bytes per span, but only
 * so far: after a batch of one span as big as a span gets (its arena's
 * bound), 512 small spans do not reserve 512 times that. */
Test(otlp_writer, a_huge_span_does_not_size_the_next_batch) {
  static char text[8000];
  memset(text, 'x', sizeof text);
  tgo_span *big = tgo_span_start("big", 3, TGO_KIND_INTERNAL, NULL, NULL);
  static char keys[64][16];
  for (int i = 0; i < 64; i++) {
    snprintf(keys[i], sizeof keys[i], "k%d", i);
    tgo_attr_str(tgo_span_attrs(big), keys[i], text, sizeof text);
  }
  big->end_ns = big->start_ns + 1;
  tgo__buf out = {0};
  cr_assert_eq(tgo__otlp_encode_traces(&big, 1, &out), 0);
  size_t big_len = out.len;
  cr_assert_gt(big_len, (size_t)16 << 10);
  tgo__buf_free(&out);
  tgo_span *small[512];
  for (int i = 0; i < 512; i++) {
    small[i] = tgo_span_start("s", 1, TGO_KIND_INTERNAL, NULL, NULL);
    small[i]->end_ns = small[i]->start_ns + 1;
  }
  tgo__buf batch = {0}, ref = {0};
  cr_assert_eq(tgo__otlp_encode_traces(small, 512, &batch), 0);
  cr_assert_leq(batch.cap, (size_t)4 << 20, "reserved %zu bytes for 512 small spans after one of %zu", batch.cap,
                big_len);
  cr_assert_eq(otlp_ref_pack_request(small, 512, &ref), 0);
  cr_assert_eq(batch.len, ref.len);
  cr_assert(memcmp(batch.data, ref.data, ref.len) == 0);
  tgo__buf_free(&batch);
  tgo__buf_free(&ref);
  for (int i = 0; i < 512; i++)
    tgo_span_unref(small[i]);
  tgo_span_unref(big);
}

Test(otlp_writer, whole_request_matches_protobuf_c_resource_scope_and_spans) {
  tgo_resource_set("team", "core");
  tgo_resource_set("region", "eu-west-1");
  tgo_span *root = tgo_span_start("GET /x", 6, TGO_KIND_SERVER, NULL, NULL);
  tgo_attr_int(tgo_span_attrs(root), "http.response.status_code", 200);
  tgo_span *child = tgo_span_start("SELECT t", 8, TGO_KIND_CLIENT, root, NULL);
  child->end_ns = child->start_ns + 3;
  root->end_ns = root->start_ns + 9;
  tgo_span *batch[] = {child, root};
  tgo__buf ours = {0}, ref = {0};
  cr_assert_eq(tgo__otlp_encode_traces(batch, 2, &ours), 0);
  cr_assert_eq(otlp_ref_pack_request(batch, 2, &ref), 0);
  cr_assert_eq(ours.len, ref.len, "writer %zu bytes, protobuf-c %zu", ours.len, ref.len);
  cr_assert(memcmp(ours.data, ref.data, ref.len) == 0, "bytes differ from protobuf-c's");
  tgo__buf_free(&ours);
  tgo__buf_free(&ref);
  tgo_span_unref(child);
  tgo_span_unref(root);
}

/* Writes s as the exporter does (inside the PII pass): whether the output
 * holds needle. */
static int written_holds(tgo_span *s, const char *needle) {
  size_t size = tgo__otlp_span_size(s);
  uint8_t *buf = malloc(size + 16);
  tgo__pii_begin();
  uint8_t *end = tgo__otlp_span_write(buf, s);
  tgo__pii_end();
  int found = memmem(buf, (size_t)(end - buf), needle, strlen(needle)) != NULL;
  free(buf);
  return found;
}

/* The writer remembers which immortal strings needed no masking: one that
 * did is masked on every write, and one found clean is looked at again
 * once the patterns change. */
Test(otlp_writer, immortal_strings_are_masked_every_time_and_again_when_the_patterns_change) {
  static const char phone[] = "call 555-123-4567", badge[] = "badge emp12345";
  tgo_span *s = tgo_span_start(NULL, 0, TGO_KIND_CLIENT, NULL, NULL);
  tgo__span_set_static_name(s, badge, sizeof badge - 1);
  tgo__attr_str_static(tgo_span_attrs(s), "note", phone, sizeof phone - 1);
  s->end_ns = s->start_ns + 1000;
  for (int i = 0; i < 3; i++) {
    cr_assert_not(written_holds(s, "555-123-4567"), "write %d", i);
    cr_assert(written_holds(s, "call ***-***-****"), "write %d", i);
    cr_assert(written_holds(s, "badge emp12345"), "write %d", i);
  }
  cr_assert_eq(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", "emp[0-9]{5}", "test"), 0);
  cr_assert_not(written_holds(s, "emp12345"), "a pattern added later applies to a string found clean before");
  cr_assert(written_holds(s, "badge ********"));
  cr_assert_eq(strcmp(badge, "badge emp12345"), 0, "the span's own string is untouched");
  tgo_span_unref(s);
}

/* Copied strings (a request's path, host, user agent) found clean are
 * remembered by their content: copies of a text that needed masking are
 * masked every time, and a pattern added later applies to a text found
 * clean before. */
Test(otlp_writer, copied_strings_are_masked_every_time_and_again_when_the_patterns_change) {
  /* up to 16 bytes, a text is its edge words; longer ones are compared whole */
  const char *clean[] = {"id emp12345", "path /orders/emp12345/x"};
  const char *phone[] = {"555-123-4567", "path /orders/555-123-4567"};
  for (int i = 0; i < 3; i++) {
    tgo_span *s = tgo_span_start(NULL, 0, TGO_KIND_SERVER, NULL, NULL);
    static const char *const clean_keys[] = {"c0", "c1"}, *const phone_keys[] = {"p0", "p1"};
    for (int j = 0; j < 2; j++) {
      tgo_attr_str(tgo_span_attrs(s), clean_keys[j], clean[j], strlen(clean[j]));
      tgo_attr_str(tgo_span_attrs(s), phone_keys[j], phone[j], strlen(phone[j]));
    }
    s->end_ns = s->start_ns + 1000;
    cr_assert(written_holds(s, clean[0]) && written_holds(s, clean[1]), "write %d", i);
    cr_assert_not(written_holds(s, "555-123-4567"), "write %d", i);
    tgo_span_unref(s);
  }
  cr_assert_eq(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", "emp[0-9]{5}", "test"), 0);
  for (int j = 0; j < 2; j++) {
    tgo_span *s = tgo_span_start(NULL, 0, TGO_KIND_SERVER, NULL, NULL);
    tgo_attr_str(tgo_span_attrs(s), "url.path", clean[j], strlen(clean[j]));
    s->end_ns = s->start_ns + 1000;
    cr_assert_not(written_holds(s, "emp12345"), "a pattern added later applies to a text found clean before (%d)", j);
    tgo_span_unref(s);
  }
}
