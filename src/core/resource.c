/* The resource describing this process, assembled per batch so that a
 * forked worker reports its own pid. */
#include "tgo-internal.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MAX_EXTRA 16
static tgo__kv extra[MAX_EXTRA];
static size_t n_extra;
pthread_mutex_t tgo__resource_lock = PTHREAD_MUTEX_INITIALIZER;

/* Copies s into a field of cap bytes, cut on a character boundary and with
 * invalid UTF-8 repaired: a strict OTLP decoder rejects a whole request for
 * one bad resource string, so every batch would be lost. The resource's
 * strings come from the environment, the ini file, app.config, the public
 * API and gethostname: none of them promises UTF-8. */
static void copy_text(char *dst, size_t cap, const char *s) {
  size_t n = strlen(s);
  if (n >= cap)
    n = tgo__utf8_cut(s, cap - 1);
  memcpy(dst, s, n);
  dst[n] = '\0';
  if (!tgo__is_ascii(dst, n))
    tgo__utf8_repair((unsigned char *)dst, n);
}

void tgo_resource_set(const char *key, const char *value) {
  if (!key || !value)
    return;
  pthread_mutex_lock(&tgo__resource_lock);
  size_t i = 0;
  while (i < n_extra && strcmp(extra[i].key, key))
    i++;
  if (i < MAX_EXTRA) {
    copy_text(extra[i].key, sizeof extra[i].key, key);
    copy_text(extra[i].value, sizeof extra[i].value, value);
    if (i == n_extra)
      n_extra++;
  }
  pthread_mutex_unlock(&tgo__resource_lock);
}

/* The exporter thread reads the extra attributes under this lock every batch,
 * so a fork can catch it held by a thread the child does not have. Entries
 * are always NUL-terminated (the last byte of each field is never written
 * but with NUL), so a half-written one is at worst a wrong value. */
void tgo__resource_fork_child(void) { pthread_mutex_init(&tgo__resource_lock, NULL); }

/* A random UUID per process, new in every forked child: two workers of one
 * master never report the same series (OTEL_RESOURCE_ATTRIBUTES may set it). */
static char instance[37];
static unsigned instance_generation;

static const char *instance_id(void) {
  unsigned gen = atomic_load(&tgo__fork_generation);
  if (__atomic_load_n(&instance_generation, __ATOMIC_ACQUIRE) != gen) {
    uint8_t r[16];
    char hex[33], id[37];
    tgo__random_bytes(r, sizeof r);
    r[6] = (uint8_t)((r[6] & 0x0F) | 0x40);
    r[8] = (uint8_t)((r[8] & 0x3F) | 0x80);
    tgo__hex_encode(r, sizeof r, hex);
    snprintf(id, sizeof id, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
    pthread_mutex_lock(&tgo__resource_lock);
    memcpy(instance, id, sizeof id);
    __atomic_store_n(&instance_generation, gen, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&tgo__resource_lock);
  }
  return instance;
}

typedef struct {
  tgo__kv *out;
  size_t n, max;
} collector;

/* Later values for a key replace earlier ones, giving the precedence order
 * of the calls below. */
static void put(collector *c, const char *k, const char *v) {
  if (!v || !*v)
    return;
  size_t i = 0;
  while (i < c->n && strcmp(c->out[i].key, k))
    i++;
  if (i == c->max)
    return;
  copy_text(c->out[i].key, sizeof c->out[i].key, k);
  copy_text(c->out[i].value, sizeof c->out[i].value, v);
  if (i == c->n)
    c->n++;
}

static void put_cb(const char *k, const char *v, void *ud) { put(ud, k, v); }

size_t tgo__resource_collect(tgo__kv *out, size_t max) {
  collector c = {out, 0, max};
  char buf[256];
  put(&c, "service.name", "unknown_service:python");
  put(&c, "telemetry.sdk.name", "tigerops");
  put(&c, "telemetry.sdk.language", "python");
  put(&c, "telemetry.sdk.version", PACKAGE_VERSION);
  snprintf(buf, sizeof buf, "%d", (int)getpid());
  put(&c, "process.pid", buf);
  put(&c, "service.instance.id", instance_id());
  if (gethostname(buf, sizeof buf) == 0) {
    buf[sizeof buf - 1] = '\0';
    put(&c, "host.name", buf);
  }
  pthread_mutex_lock(&tgo__resource_lock);
  for (size_t i = 0; i < n_extra; i++)
    put(&c, extra[i].key, extra[i].value);
  pthread_mutex_unlock(&tgo__resource_lock);
  pthread_mutex_lock(&tgo__cfg_lock);
  if (*tgo__cfg.resource_attributes &&
      tgo__parse_kv_list(tgo__cfg.resource_attributes, put_cb, &c))
    TGO__LOG_ONCE(TGO_LOG_WARN, "OTEL_RESOURCE_ATTRIBUTES has malformed entries; they are skipped");
  put(&c, "service.name", tgo__cfg.service_name);
  put(&c, "service.version", tgo__cfg.service_version);
  put(&c, "deployment.environment.name", tgo__cfg.environment);
  pthread_mutex_unlock(&tgo__cfg_lock);
  return c.n;
}
