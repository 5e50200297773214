/* One metrics collection on the exporter thread: a snapshot of every
 * instrument, sent as OTLP (OTEL_METRICS_EXPORTER=otlp), written to stderr
 * (console) or not taken at all (none). */
#include "tgo-internal.h"

#include <stdio.h>
#include <string.h>

static const char *const kind_names[] = {"counter", "updown", "gauge", "histogram"};

static uint64_t varint(const uint8_t **p, const uint8_t *end) {
  uint64_t v = 0;
  for (int shift = 0; *p < end && shift < 64; shift += 7) {
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7F) << shift;
    if (!(b & 0x80))
      break;
  }
  return v;
}

/* The stored attribute entries (metrics.c writes them: KeyValue with a
 * string, int, double or bool AnyValue) as "k=v k2=v2". */
static void attrs_text(const uint8_t *p, size_t len, char *out, size_t cap) {
  const uint8_t *end = p + len;
  size_t n = 0;
  out[0] = '\0';
  while (p < end && n + 1 < cap) {
    p++; /* the entry's tag */
    size_t kv_len = (size_t)varint(&p, end);
    const uint8_t *kv_end = p + kv_len;
    if (kv_end > end)
      return;
    p++; /* KeyValue.key's tag */
    size_t klen = (size_t)varint(&p, kv_end);
    const char *key = (const char *)p;
    p += klen;
    p++; /* KeyValue.value's tag */
    varint(&p, kv_end);
    uint8_t tag = *p++;
    int w;
    if (tag == 0x0A) {
      size_t vlen = (size_t)varint(&p, kv_end);
      w = snprintf(out + n, cap - n, "%s%.*s=%.*s", n ? " " : "", (int)klen, key, (int)vlen, (const char *)p);
    } else if (tag == 0x18) {
      w = snprintf(out + n, cap - n, "%s%.*s=%lld", n ? " " : "", (int)klen, key, (long long)varint(&p, kv_end));
    } else if (tag == 0x21) {
      double d;
      uint64_t bits = 0;
      for (int i = 0; i < 8; i++)
        bits |= (uint64_t)p[i] << (8 * i);
      memcpy(&d, &bits, sizeof d);
      w = snprintf(out + n, cap - n, "%s%.*s=%g", n ? " " : "", (int)klen, key, d);
    } else {
      w = snprintf(out + n, cap - n, "%s%.*s=%s", n ? " " : "", (int)klen, key, *p ? "true" : "false");
    }
    if (w < 0 || (size_t)w >= cap - n)
      return;
    n += (size_t)w;
    p = kv_end;
  }
}

/* One line per point on stderr: name (kind, unit) {attributes} value. */
static void console_write(const tgo__msnapshot *snap) {
  for (size_t i = 0; i < snap->n; i++) {
    const tgo__mdata *m = &snap->metrics[i];
    for (size_t k = 0; k < m->n_points; k++) {
      const tgo__mpoint *p = &m->points[k];
      char attrs[512];
      attrs_text(p->attrs, p->attrs_len, attrs, sizeof attrs);
      if (m->kind == TGO__METRIC_HISTOGRAM)
        fprintf(stderr, "tigerops metric %s (%s, %s) {%s} count=%llu sum=%g\n", m->name, kind_names[m->kind], m->unit,
                attrs, (unsigned long long)p->count, p->sum);
      else
        fprintf(stderr, "tigerops metric %s (%s, %s) {%s} value=%g\n", m->name, kind_names[m->kind], m->unit, attrs,
                p->value);
    }
  }
}

void tgo__metrics_export(const atomic_int *abort_flag) {
  pthread_mutex_lock(&tgo__cfg_lock);
  int exporter = tgo__cfg.metrics_exporter, pref = tgo__cfg.metrics_temporality;
  pthread_mutex_unlock(&tgo__cfg_lock);
  if (exporter == TGO__EXPORTER_NONE)
    return;
  tgo__msnapshot snap;
  if (tgo__metrics_snapshot(pref, &snap) < 0) {
    TGO__LOG_ONCE(TGO_LOG_ERROR, "no memory for a metrics collection; skipped (logged once)");
    return;
  }
  if (!snap.n)
    return; /* nothing measured: no request */
  size_t points = 0;
  for (size_t i = 0; i < snap.n; i++)
    points += snap.metrics[i].n_points;
  if (exporter == TGO__EXPORTER_CONSOLE) {
    console_write(&snap);
  } else {
    tgo__buf body = {0};
    if (tgo__otlp_encode_metrics(snap.metrics, snap.n, &body) == 0)
      tgo__export_signal(TGO__SIGNAL_METRICS, &body, points, abort_flag);
    else
      TGO__LOG_ONCE(TGO_LOG_ERROR, "cannot encode %zu metric points; dropped (logged once)", points);
    tgo__buf_free(&body);
  }
  tgo__metrics_snapshot_free(&snap);
}
