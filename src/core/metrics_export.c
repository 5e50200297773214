/* One metrics collection on the exporter thread: a snapshot of every
 * instrument, sent as OTLP (OTEL_METRICS_EXPORTER=otlp), written to stderr
 * (console) or not taken at all (none). */
#include "tgo-internal.h"

#include <stdio.h>
#include <string.h>

static const char *const kind_names[] = {"counter", "updown", "gauge", "histogram"};

/* One line per point: name{attributes as stored} value. The attributes are
 * printed as their OTLP bytes' printable characters, enough to tell the sets
 * apart when debugging. */
static void console_write(const tgo__msnapshot *snap) {
  for (size_t i = 0; i < snap->n; i++) {
    const tgo__mdata *m = &snap->metrics[i];
    for (size_t k = 0; k < m->n_points; k++) {
      const tgo__mpoint *p = &m->points[k];
      char attrs[256];
      size_t n = 0;
      for (size_t j = 0; j < p->attrs_len && n + 1 < sizeof attrs; j++)
        attrs[n++] = p->attrs[j] >= 0x20 && p->attrs[j] < 0x7F ? (char)p->attrs[j] : ' ';
      attrs[n] = '\0';
      if (m->kind == TGO__METRIC_HISTOGRAM)
        fprintf(stderr, "tigerops metric %s (%s, %s) [%s] count=%llu sum=%g\n", m->name, kind_names[m->kind], m->unit,
                attrs, (unsigned long long)p->count, p->sum);
      else
        fprintf(stderr, "tigerops metric %s (%s, %s) [%s] value=%g\n", m->name, kind_names[m->kind], m->unit, attrs,
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
