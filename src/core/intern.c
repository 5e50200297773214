/* Immortal strings for values that repeat on every span of a kind (a
 * normalised statement, an engine's database name): a span can point at
 * them instead of copying them. Bounded: when full, callers copy. */
#include "tgo-internal.h"

#include <stdlib.h>
#include <string.h>

/* Never freed, so bounded well under a worker's memory budget: 2,048
 * distinct statements of 512 bytes on average (the slots are 32 KiB). */
#define INTERN_SLOTS 4096 /* power of two; at most half used */
#define INTERN_MAX_BYTES (1u << 20)

pthread_mutex_t tgo__intern_lock = PTHREAD_MUTEX_INITIALIZER;
static const char **slots;
static size_t used, bytes;

static uint64_t hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

const char *tgo__intern(const char *s, size_t len) {
  if (!s || len > 65536)
    return NULL;
  const char *found = NULL;
  int full = 0;
  pthread_mutex_lock(&tgo__intern_lock);
  if (!slots)
    slots = calloc(INTERN_SLOTS, sizeof *slots);
  if (slots) {
    size_t i = hash(s, len) & (INTERN_SLOTS - 1);
    while (slots[i] && !(strlen(slots[i]) == len && !memcmp(slots[i], s, len)))
      i = (i + 1) & (INTERN_SLOTS - 1);
    if (slots[i]) {
      found = slots[i];
    } else if (used < INTERN_SLOTS / 2 && bytes + len + 1 <= INTERN_MAX_BYTES) {
      char *copy = malloc(len + 1);
      if (copy) {
        memcpy(copy, s, len);
        copy[len] = '\0';
        if (!tgo__is_ascii(copy, len))
          tgo__utf8_repair((unsigned char *)copy, len);
        slots[i] = copy;
        used++;
        bytes += len + 1;
        found = copy;
      }
    } else {
      full = 1;
    }
  }
  pthread_mutex_unlock(&tgo__intern_lock);
  if (full)
    TGO__LOG_ONCE(TGO_LOG_INFO, "interned strings full (%d strings or %u bytes): further distinct statements "
                                "are copied into each span",
                  INTERN_SLOTS / 2, INTERN_MAX_BYTES);
  return found;
}

/* A thread the child does not have (a request thread, or the exporter
 * thread) may have been interning at fork, and the child would block on its
 * lock for ever. The table itself stays: spans the child inherited point
 * into it. */
void tgo__intern_fork_child(void) { pthread_mutex_init(&tgo__intern_lock, NULL); }

void tgo__attr_str_static(tgo_attrs *a, const char *key, const char *val, size_t len) {
  tgo__attr_set_static_str(a, key, val, len);
}
