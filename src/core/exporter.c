/* The exporters, one entry per TIGEROPS_EXPORTER value: the pipeline and
 * the fork handler go through this table and never ask which exporter is
 * configured. A new protocol (OTLP/gRPC, OTLP/HTTP JSON) is one more entry
 * here and one more enum value, nothing else. */
#include "tgo-internal.h"

#include <strings.h>

/* TIGEROPS_EXPORTER=none: no exporter thread, spans are dropped as they
 * are submitted. */
static const tgo__exporter exporter_none = {"none", NULL, NULL, NULL};

/* Indexed by the TGO__EXPORTER_* values that tgo__cfg.exporter holds. */
const tgo__exporter *const tgo__exporters[TGO__EXPORTER_COUNT] = {
    [TGO__EXPORTER_OTLP] = &tgo__exporter_otlp,
    [TGO__EXPORTER_CONSOLE] = &tgo__exporter_console,
    [TGO__EXPORTER_NONE] = &exporter_none,
};

int tgo__exporter_index(const char *name) {
  for (int i = 0; i < TGO__EXPORTER_COUNT; i++)
    if (!strcasecmp(name, tgo__exporters[i]->name))
      return i;
  return -1;
}

/* Every exporter, not only the configured one: app.config may have switched
 * exporters after one of them buffered spans. */
void tgo__exporters_fork_child(void) {
  for (int i = 0; i < TGO__EXPORTER_COUNT; i++)
    if (tgo__exporters[i]->fork_child)
      tgo__exporters[i]->fork_child();
}
