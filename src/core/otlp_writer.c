/* The span encoder used on the export path: writes OTLP Span messages
 * straight from the C span, in field-number order with proto3 defaults
 * omitted, which is exactly what protobuf-c produces for the same message
 * (tests/unit/test_otlp_writer.c compares the two byte for byte). protobuf-c's
 * descriptor-driven packer spent about 1 µs of CPU per attribute; this
 * writes one in a few dozen instructions. */
#include "tgo-internal.h"
#include "tgo-pbwire.h"

#include <string.h>

/* Immortal strings (literals, interned: a statement's normalised text, an
 * engine's host) found clean, by address and length: each span of a kind
 * repeats them, and masking them again cost about 600 instructions per SQL
 * span. Valid for one PII generation, which is 0 (unused) outside
 * tgo__pii_begin/end: inside, the PII lock makes this thread the only one
 * here. Not thread-local: in a dlopen'ed object that costs a call per use. */
/* Fibonacci hashing's multiplier: the top bits of a product pick a set. */
#define CLEAN_MIX 0x9E3779B97F4A7C15ull
#define CLEAN_SET_BITS 8
typedef struct {
  const char *s;
  uint32_t n, generation;
} clean_memo;
/* Two ways a set, the latest first: which addresses share a set is the
 * allocator's chance, and with one way two strings of every span that
 * shared a slot evicted each other for good: one build's SQL spans
 * masked a string again every span, +514 instructions a statement on the
 * exporter thread, which two ways took back. */
static clean_memo clean_strings[1 << CLEAN_SET_BITS][2];

static inline clean_memo *clean_set(const char *s, size_t n) {
  uint64_t h = ((uint64_t)(uintptr_t)s ^ n) * CLEAN_MIX;
  return clean_strings[h >> (64 - CLEAN_SET_BITS)];
}

static inline int clean_hit(const clean_memo *m, const char *s, size_t n, unsigned generation) {
  return m->s == s && m->n == n && m->generation == generation;
}

/* Copied strings found clean, by content: a request's path, host, client
 * address and user agent are new copies in every span but mostly the same
 * few texts, and scanning each again cost ~90 instructions a string (six
 * in a hello request's span). A slot holds the text itself, so a hit is
 * the same bytes, never a hash collision. Two ways a set, the latest
 * first, as for clean_strings: which texts share a set is their hashes'
 * chance. Same validity as clean_strings. */
#define CLEAN_TEXT_SETS 64
#define CLEAN_TEXT_MAX 120
typedef struct {
  uint64_t head, tail; /* the edge words (edge_words): the whole text up to 16 bytes */
  uint32_t n, generation;
  char s[CLEAN_TEXT_MAX]; /* the text, beyond 16 bytes */
} clean_text_memo;
static clean_text_memo clean_texts[CLEAN_TEXT_SETS][2];

static inline uint64_t load64(const char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static inline uint32_t load32(const char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* The first and last words of a text (1 <= n): overlapping, they cover
 * every byte of one up to 16 bytes long, so with n they are that text. */
static inline void edge_words(const char *s, size_t n, uint64_t *head, uint64_t *tail) {
  if (n >= 8) {
    *head = load64(s);
    *tail = load64(s + n - 8);
  } else if (n >= 4) {
    *head = load32(s);
    *tail = load32(s + n - 4);
  } else {
    *head = (uint64_t)(uint8_t)s[0] | (uint64_t)(uint8_t)s[n / 2] << 8 | (uint64_t)(uint8_t)s[n - 1] << 16;
    *tail = 0;
  }
}

/* The set of a copied text (1 <= n <= CLEAN_TEXT_MAX), and its edge words
 * for clean_text_hit. */
static inline clean_text_memo *clean_text_set(const char *s, size_t n, uint64_t *head, uint64_t *tail) {
  edge_words(s, n, head, tail);
  uint64_t h = ((*head ^ n) * CLEAN_MIX ^ *tail) * CLEAN_MIX;
  if (n > 16) /* the middle words of a longer text */
    for (size_t i = 8; i < n - 8; i += 8)
      h = (h ^ load64(s + i)) * CLEAN_MIX;
  return clean_texts[(h >> 32) % CLEAN_TEXT_SETS];
}

static inline int clean_text_way_hit(const clean_text_memo *m, const char *s, size_t n, uint64_t head,
                                     uint64_t tail, unsigned generation) {
  return m->generation == generation && m->n == n && m->head == head && m->tail == tail &&
         (n <= 16 || !memcmp(m->s, s, n));
}

static inline int clean_text_hit(const clean_text_memo *set, const char *s, size_t n, uint64_t head, uint64_t tail,
                                 unsigned generation) {
  return clean_text_way_hit(&set[0], s, n, head, tail, generation) ||
         clean_text_way_hit(&set[1], s, n, head, tail, generation);
}

/* The masking calls are kept out of text_field, and each returns the end
 * it was given: text_field tail-calls them, so the common paths (an
 * immortal string or a short copied text found clean) save and restore no
 * registers. */
static __attribute__((noinline)) uint8_t *scrub_and_mask(uint8_t *end, size_t n) {
  char *s = (char *)end - n;
  unsigned generation = tgo__pii_generation;
  clean_text_memo *m = NULL;
  uint64_t head = 0, tail = 0;
  if (generation && n && n <= CLEAN_TEXT_MAX) {
    m = clean_text_set(s, n, &head, &tail);
    if (clean_text_hit(m, s, n, head, tail, generation))
      return end;
  }
  if (!tgo__scrub(s, n) && !tgo__pii_mask_now(s, n) && m) {
    m[1] = m[0];
    m[0] = (clean_text_memo){.head = head, .tail = tail, .n = (uint32_t)n, .generation = generation};
    if (n > 16)
      memcpy(m[0].s, s, n);
  }
  return end;
}

/* A copied text's hit for the common short one (1 to 16 bytes), inline;
 * anything else, and a miss, goes to scrub_and_mask. */
static inline __attribute__((always_inline)) uint8_t *copied_text_checked(uint8_t *end, size_t n) {
  unsigned generation = tgo__pii_generation;
  if (generation && n - 1 < 16) {
    const char *s = (const char *)end - n;
    uint64_t head, tail;
    const clean_text_memo *m = clean_text_set(s, n, &head, &tail); /* before head and tail are read */
    if (clean_text_hit(m, s, n, head, tail, generation))
      return end;
  }
  return scrub_and_mask(end, n);
}

static __attribute__((noinline)) uint8_t *scrub_and_remember(uint8_t *end, const char *s, size_t n, clean_memo *set,
                                                             unsigned generation) {
  if (!tgo__scrub((char *)end - n, n) && !tgo__pii_mask_now((char *)end - n, n) && generation) {
    set[1] = set[0];
    set[0] = (clean_memo){.s = s, .n = (uint32_t)n, .generation = generation};
  }
  return end;
}

/* A string the user or the app chose: scrubbed of echoed bind values and
 * masked for PII as it is written. Inlined into its callers, as is the
 * short KeyValue's path below: as calls, the two functions' register saves
 * and restores were ~20 instructions an attribute (~340 a request span). */
static inline __attribute__((always_inline)) uint8_t *text_field(uint8_t *p, uint8_t tag, const char *s, size_t n, int immortal) {
  p = tgo__pb_bytes(p, tag, s, n);
  if (!immortal)
    return copied_text_checked(p, n);
  unsigned generation = tgo__pii_generation;
  clean_memo *set = clean_set(s, n);
  if (generation && (clean_hit(&set[0], s, n, generation) || clean_hit(&set[1], s, n, generation)))
    return p;
  return scrub_and_remember(p, s, n, set, generation);
}

static uint64_t double_bits(double d) {
  uint64_t u;
  memcpy(&u, &d, 8);
  return u;
}

/* AnyValue body sizes. */
static size_t scalar_size(int type, const tgo__attr *a, size_t i) {
  switch (type) {
  case TGO__V_STR: return tgo__pb_ld_len(a->n);
  case TGO__V_BOOL: return 2;
  case TGO__V_INT: return 1 + tgo__pb_varint_len((uint64_t)a->v.i);
  case TGO__V_DOUBLE: return 9;
  case TGO__V_STR_ARRAY: return tgo__pb_ld_len(a->v.sa[i].len);
  case TGO__V_BOOL_ARRAY: return 2;
  case TGO__V_INT_ARRAY: return 1 + tgo__pb_varint_len((uint64_t)a->v.ia[i]);
  case TGO__V_DOUBLE_ARRAY: return 9;
  }
  return 0;
}

static size_t array_body_size(const tgo__attr *a) {
  size_t n = 0;
  for (uint32_t i = 0; i < a->n; i++)
    n += tgo__pb_ld_len(scalar_size(a->type, a, i));
  return n;
}

static size_t anyvalue_size(const tgo__attr *a) {
  if (a->type >= TGO__V_STR_ARRAY)
    return tgo__pb_ld_len(array_body_size(a));
  return scalar_size(a->type, a, 0);
}

static size_t keyvalue_size_with(const tgo__attr *a, size_t anyvalue) {
  return (a->key_len ? tgo__pb_ld_len(a->key_len) : 0) + tgo__pb_ld_len(anyvalue);
}

/* Most attributes are short strings: a KeyValue under 128 bytes, every
 * length in it a one-byte varint. Its size is a few additions and its
 * lengths single stores, where the switches and varint loops (about 11
 * per attribute over both passes) were most of the encoder's work; longer
 * strings and other types take the general path. Returns the KeyValue's
 * body size, or 0 for any other attribute. */
static inline size_t short_string_kv(const tgo__attr *a) {
  if (a->type != TGO__V_STR)
    return 0;
  /* the key field, then the value: AnyValue{string}; under 128 in all,
   * each part and each length is too */
  size_t kv = (a->key_len ? 2 + (size_t)a->key_len : 0) + 2 + 2 + (size_t)a->n;
  return kv < 128 ? kv : 0;
}

static size_t keyvalue_size(const tgo__attr *a) { return keyvalue_size_with(a, anyvalue_size(a)); }

/* Where a span is written: the end of the room there is (*end, a local
 * of the writer's, kept in a register: a field of a struct the stores
 * through p might alias was read again after every byte), and the buffer
 * to grow when a field would pass it (NULL: the caller made the room
 * exact). Each field is checked for exactly the bytes it takes as it is
 * written, where a second walk over the attributes to size the span first
 * cost ~390 instructions a request span. */

/* p with at least need bytes after it, in a grown buf (every byte before
 * p kept), or NULL: no memory, or no buffer to grow. */
static __attribute__((noinline)) uint8_t *room_grow(tgo__buf *b, uint8_t *p, size_t need) {
  if (!b)
    return NULL;
  size_t at = (size_t)(p - b->data);
  return tgo__buf_reserve_at(b, at, need) < 0 ? NULL : b->data + at;
}

#define ROOM(buf, end, p, need)                                             \
  do {                                                                      \
    if (TGO__UNLIKELY((size_t)((end) - (p)) < (size_t)(need))) {            \
      if (!((p) = room_grow((buf), (p), (need))))                           \
        return NULL;                                                        \
      (end) = (buf)->data + (buf)->cap;                                     \
    }                                                                       \
  } while (0)

static uint8_t *write_scalar(uint8_t *p, int type, const tgo__attr *a, size_t i) {
  switch (type) {
  case TGO__V_STR: return text_field(p, 0x0A, a->v.s, a->n, a->immortal);
  case TGO__V_STR_ARRAY: return text_field(p, 0x0A, a->v.sa[i].s, a->v.sa[i].len, 0);
  case TGO__V_BOOL: *p++ = 0x10; *p++ = a->v.b ? 1 : 0; return p;
  case TGO__V_BOOL_ARRAY: *p++ = 0x10; *p++ = a->v.ba[i] ? 1 : 0; return p;
  case TGO__V_INT: *p++ = 0x18; return tgo__pb_varint(p, (uint64_t)a->v.i);
  case TGO__V_INT_ARRAY: *p++ = 0x18; return tgo__pb_varint(p, (uint64_t)a->v.ia[i]);
  case TGO__V_DOUBLE: *p++ = 0x21; return tgo__pb_fixed64(p, double_bits(a->v.d));
  case TGO__V_DOUBLE_ARRAY: *p++ = 0x21; return tgo__pb_fixed64(p, double_bits(a->v.da[i]));
  }
  return p;
}

/* Any KeyValue but a short string's. */
static __attribute__((noinline)) uint8_t *write_keyvalue_general(uint8_t *p, uint8_t tag, const tgo__attr *a) {
  /* Each size once: an array's body size is walked over all its items. */
  size_t body = a->type >= TGO__V_STR_ARRAY ? array_body_size(a) : 0;
  size_t anyvalue = a->type >= TGO__V_STR_ARRAY ? tgo__pb_ld_len(body) : scalar_size(a->type, a, 0);
  *p++ = tag;
  p = tgo__pb_varint(p, keyvalue_size_with(a, anyvalue));
  if (a->key_len)
    p = tgo__pb_bytes(p, 0x0A, a->key, a->key_len); /* KeyValue.key */
  *p++ = 0x12;                                    /* KeyValue.value */
  p = tgo__pb_varint(p, anyvalue);
  if (a->type >= TGO__V_STR_ARRAY) {
    *p++ = 0x2A; /* AnyValue.array_value */
    p = tgo__pb_varint(p, body);
    for (uint32_t i = 0; i < a->n; i++) {
      *p++ = 0x0A; /* ArrayValue.values */
      p = tgo__pb_varint(p, scalar_size(a->type, a, i));
      p = write_scalar(p, a->type, a, i);
    }
    return p;
  }
  return write_scalar(p, a->type, a, 0);
}

/* An int under a key shorter than 100 bytes (a status code, a port, a
 * row count): every length in its KeyValue is one byte, as for the short
 * string. Through the general path it cost ~130 instructions, two in a
 * request span. Returns the KeyValue's body size, or 0 for any other
 * attribute. */
static inline size_t short_int_kv(const tgo__attr *a) {
  if (a->type != TGO__V_INT || a->key_len >= 100)
    return 0;
  /* the key field, then AnyValue{int_value}: at most 11 */
  return (a->key_len ? 2 + (size_t)a->key_len : 0) + 2 + 1 + tgo__pb_varint_len((uint64_t)a->v.i);
}

/* A short string's or short int's KeyValue body size, or 0 for any other
 * attribute: the one test both the checked and the unchecked writes use. */
static inline size_t short_kv(const tgo__attr *a) {
  size_t kv = short_string_kv(a);
  return kv ? kv : short_int_kv(a);
}

/* The most a short string's or a short int's KeyValue takes. */
#define SHORT_KV_MAX (2 + 127)

/* A short string's or short int's KeyValue (kv from short_kv) at p,
 * whose room the caller made. */
static inline __attribute__((always_inline)) uint8_t *put_short_kv(uint8_t *p, uint8_t tag, const tgo__attr *a,
                                                                   size_t kv) {
  p[0] = tag;
  p[1] = (uint8_t)kv;
  p += 2;
  if (a->key_len) {
    p[0] = 0x0A; /* KeyValue.key */
    p[1] = (uint8_t)a->key_len;
    tgo__copy_short(p + 2, a->key, a->key_len);
    p += 2 + a->key_len;
  }
  p[0] = 0x12; /* KeyValue.value */
  if (a->type == TGO__V_STR) {
    p[1] = (uint8_t)(a->n + 2);
    return text_field(p + 2, 0x0A, a->v.s, a->n, a->immortal);
  }
  uint64_t v = (uint64_t)a->v.i;
  p[1] = (uint8_t)(1 + tgo__pb_varint_len(v));
  p[2] = 0x18; /* AnyValue.int_value */
  return tgo__pb_varint(p + 3, v);
}

/* A KeyValue at p, its room checked, or NULL when the room could not grow. */
static inline __attribute__((always_inline)) uint8_t *write_keyvalue(tgo__buf *buf, uint8_t **end, uint8_t *p,
                                                                     uint8_t tag, const tgo__attr *a) {
  size_t kv = short_kv(a);
  if (!kv) {
    ROOM(buf, *end, p, tgo__pb_ld_len(keyvalue_size(a)));
    return write_keyvalue_general(p, tag, a);
  }
  ROOM(buf, *end, p, 2 + kv);
  return put_short_kv(p, tag, a, kv);
}

static size_t attrs_size(const struct tgo_attrs *attrs) {
  size_t n = 0;
  for (const tgo__attr *a = attrs->head; a; a = a->next) {
    size_t kv = short_string_kv(a);
    n += kv ? 2 + kv : tgo__pb_ld_len(keyvalue_size(a));
  }
  return n;
}

static size_t event_size(const tgo__event *e) {
  size_t n = (e->time_ns ? 9 : 0) + (e->name_len ? tgo__pb_ld_len(e->name_len) : 0) + attrs_size(&e->attrs);
  if (e->attrs.dropped)
    n += 1 + tgo__pb_varint_len(e->attrs.dropped);
  return n;
}

static size_t link_size(const tgo__link *l) {
  size_t n = tgo__pb_ld_len(16) + tgo__pb_ld_len(8) + attrs_size(&l->attrs) + 5;
  if (l->tracestate_len)
    n += tgo__pb_ld_len(l->tracestate_len);
  if (l->attrs.dropped)
    n += 1 + tgo__pb_varint_len(l->attrs.dropped);
  return n;
}

/* Link flags: sampled, and bits 8-9 (its remoteness is known, is remote). */
static uint32_t link_flags(const tgo__link *l) { return l->flags | 0x100u | (l->is_remote ? 0x200u : 0); }

static size_t status_size(const tgo_span *s) {
  size_t n = 0;
  if (s->status_msg_len)
    n += tgo__pb_ld_len(s->status_msg_len);
  if (s->status)
    n += 2;
  return n;
}

static uint32_t span_flags(const tgo_span *s) {
  /* Bits 8-9: the parent's remoteness is known, and whether it is remote. */
  return s->flags | 0x100u | (s->parent_is_remote ? 0x200u : 0);
}

size_t tgo__otlp_span_size(const tgo_span *s) {
  size_t n = tgo__pb_ld_len(16) + tgo__pb_ld_len(8);
  if (s->tracestate_len)
    n += tgo__pb_ld_len(s->tracestate_len);
  if (s->has_parent)
    n += tgo__pb_ld_len(8);
  if (s->name_len)
    n += tgo__pb_ld_len(s->name_len);
  if (s->kind)
    n += 2;
  n += (s->start_ns ? 9 : 0) + (s->end_ns ? 9 : 0) + attrs_size(&s->attrs);
  if (s->attrs.dropped)
    n += 1 + tgo__pb_varint_len(s->attrs.dropped);
  for (const tgo__event *e = s->events; e; e = e->next)
    n += tgo__pb_ld_len(event_size(e));
  if (s->dropped_events)
    n += 1 + tgo__pb_varint_len(s->dropped_events);
  for (const tgo__link *l = s->links; l; l = l->next)
    n += tgo__pb_ld_len(link_size(l));
  if (s->dropped_links)
    n += 1 + tgo__pb_varint_len(s->dropped_links);
  if (s->status != TGO_STATUS_UNSET)
    n += tgo__pb_ld_len(status_size(s));
  n += 2 + 4; /* flags: two-byte tag, fixed32 */
  return n;
}

/* The span's fields at p, each checked against the room for exactly the
 * bytes it takes (events and links, rare, as wholes): a room of
 * tgo__otlp_span_size(s) never grows. NULL when the room could not grow. */
static uint8_t *write_span(tgo__buf *buf, uint8_t *end, uint8_t *p, const tgo_span *s) {
  /* Room for the head and as many short KeyValues as the span counts
   * attributes (the common span: nothing else to check until its end),
   * or each checked (the end of a buffer, an exact room). */
  size_t head_max = 18 + 10 + 10 + 2 + 9 + 9 + (s->tracestate_len + 6) + (s->name_len + 6);
  int roomy = (size_t)(end - p) >= head_max + (size_t)s->attrs.count * SHORT_KV_MAX;
  if (!roomy) /* ids, tracestate, parent, name, kind, times */
    ROOM(buf, end, p, 18 + 10 + (s->tracestate_len ? tgo__pb_ld_len(s->tracestate_len) : 0) +
                          (s->has_parent ? 10 : 0) + (s->name_len ? tgo__pb_ld_len(s->name_len) : 0) +
                          (s->kind ? 2 : 0) + (s->start_ns ? 9 : 0) + (s->end_ns ? 9 : 0));
  p = tgo__pb_bytes(p, 0x0A, s->trace_id, 16);
  p = tgo__pb_bytes(p, 0x12, s->span_id, 8);
  if (s->tracestate_len)
    p = tgo__pb_bytes(p, 0x1A, s->tracestate, s->tracestate_len);
  if (s->has_parent)
    p = tgo__pb_bytes(p, 0x22, s->parent_span_id, 8);
  if (s->name_len)
    p = text_field(p, 0x2A, s->name, s->name_len, s->name_immortal);
  if (s->kind) {
    *p++ = 0x30;
    *p++ = s->kind;
  }
  if (s->start_ns) {
    *p++ = 0x39;
    p = tgo__pb_fixed64(p, s->start_ns);
  }
  if (s->end_ns) {
    *p++ = 0x41;
    p = tgo__pb_fixed64(p, s->end_ns);
  }
  const tgo__attr *a = s->attrs.head;
  if (roomy) /* short ones unchecked, up to the count the room was made for */
    for (uint32_t left = s->attrs.count; a && left; a = a->next, left--) {
      size_t kv = short_kv(a);
      if (!kv)
        break; /* the rest checked: a longer one may grow the room by its own size only */
      p = put_short_kv(p, 0x4A, a, kv);
    }
  for (; a; a = a->next)
    if (TGO__UNLIKELY(!(p = write_keyvalue(buf, &end, p, 0x4A, a))))
      return NULL;
  if (s->attrs.dropped) {
    ROOM(buf, end, p, 1 + tgo__pb_varint_len(s->attrs.dropped));
    *p++ = 0x50;
    p = tgo__pb_varint(p, s->attrs.dropped);
  }
  for (const tgo__event *e = s->events; e; e = e->next) {
    size_t size = event_size(e);
    ROOM(buf, end, p, tgo__pb_ld_len(size));
    *p++ = 0x5A;
    p = tgo__pb_varint(p, size);
    if (e->time_ns) {
      *p++ = 0x09;
      p = tgo__pb_fixed64(p, e->time_ns);
    }
    if (e->name_len)
      p = text_field(p, 0x12, e->name, e->name_len, 0);
    for (const tgo__attr *ea = e->attrs.head; ea; ea = ea->next)
      if (TGO__UNLIKELY(!(p = write_keyvalue(buf, &end, p, 0x1A, ea)))) /* within the event's room: never grows */
        return NULL;
    if (e->attrs.dropped) {
      *p++ = 0x20;
      p = tgo__pb_varint(p, e->attrs.dropped);
    }
  }
  if (s->dropped_events) {
    ROOM(buf, end, p, 1 + tgo__pb_varint_len(s->dropped_events));
    *p++ = 0x60;
    p = tgo__pb_varint(p, s->dropped_events);
  }
  for (const tgo__link *l = s->links; l; l = l->next) {
    size_t size = link_size(l);
    ROOM(buf, end, p, tgo__pb_ld_len(size));
    *p++ = 0x6A;
    p = tgo__pb_varint(p, size);
    p = tgo__pb_bytes(p, 0x0A, l->trace_id, 16);
    p = tgo__pb_bytes(p, 0x12, l->span_id, 8);
    if (l->tracestate_len)
      p = tgo__pb_bytes(p, 0x1A, l->tracestate, l->tracestate_len);
    for (const tgo__attr *la = l->attrs.head; la; la = la->next)
      if (TGO__UNLIKELY(!(p = write_keyvalue(buf, &end, p, 0x22, la)))) /* within the link's room: never grows */
        return NULL;
    if (l->attrs.dropped) {
      *p++ = 0x28;
      p = tgo__pb_varint(p, l->attrs.dropped);
    }
    *p++ = 0x35;
    p = tgo__pb_fixed32(p, link_flags(l));
  }
  /* the dropped links' count, status and flags */
  ROOM(buf, end, p, (s->dropped_links ? 1 + tgo__pb_varint_len(s->dropped_links) : 0) +
                 (s->status != TGO_STATUS_UNSET ? tgo__pb_ld_len(status_size(s)) : 0) + 6);
  if (s->dropped_links) {
    *p++ = 0x70;
    p = tgo__pb_varint(p, s->dropped_links);
  }
  if (s->status != TGO_STATUS_UNSET) {
    *p++ = 0x7A;
    p = tgo__pb_varint(p, status_size(s));
    if (s->status_msg_len)
      p = text_field(p, 0x12, s->status_msg, s->status_msg_len, 0);
    *p++ = 0x18;
    *p++ = s->status;
  }
  *p++ = 0x85; /* field 16, wire type 5 */
  *p++ = 0x01;
  return tgo__pb_fixed32(p, span_flags(s));
}

uint8_t *tgo__otlp_span_write_in(tgo__buf *buf, uint8_t *p, const tgo_span *s) {
  return write_span(buf, buf->data + buf->cap, p, s);
}

uint8_t *tgo__otlp_span_write(uint8_t *p, const tgo_span *s) { return write_span(NULL, p + tgo__otlp_span_size(s), p, s); }
