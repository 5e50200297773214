/* libFuzzer: the ini parser with our handler, single settings, and the
 * key=value lists of OTEL_RESOURCE_ATTRIBUTES / OTEL_EXPORTER_OTLP_HEADERS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tgo-internal.h"

static void ignore(const char *k, const char *v, void *ud) {
  (void)ud;
  if (strlen(k) >= 256 || strlen(v) >= 1024)
    __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tgo__cfg.log_level = TGO_LOG_NONE;
  tgo__config c;
  tgo__config_defaults(&c);
  FILE *f = fmemopen((void *)data, size, "r");
  if (f) {
    tgo__config_load_stream(&c, f, "fuzz");
    fclose(f);
  }
  char *text = malloc(size + 1);
  memcpy(text, data, size);
  text[size] = '\0';
  char *eq = strchr(text, '=');
  if (eq) {
    *eq = '\0';
    tgo__config_apply(&c, text, eq + 1, "fuzz");
    *eq = '=';
  }
  tgo__parse_kv_list(text, ignore, NULL);
  free(text);
  return 0;
}
