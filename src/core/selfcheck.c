/* tigerops-run --check: what a user runs when "no traces show up". Sends
 * one span the way the agent would (protocol, TLS, headers of the current
 * settings), says whether the collector took it, and prints the settings
 * that decide it with every secret masked. */
#include "tgo-internal.h"
#include "tgo-ext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static void print_masked_header(const char *k, const char *v, void *ud) {
  FILE *out = ud;
  fprintf(out, "%s=%s ", k, *v ? "****" : "");
}

/* A proxy URL may carry user:password: shown without them. */
static void print_proxy(FILE *out, const char *name) {
  const char *v = getenv(name);
  if (!v || !*v)
    return;
  char shown[1100];
  tgo__config_shown_url(v, shown, sizeof shown);
  fprintf(out, "  %-40s %s\n", name, shown);
}

static void print_setting(FILE *out, const char *name, const char *value) {
  fprintf(out, "  %-40s %s\n", name, *value ? value : "(unset)");
}

int tgo__self_check(FILE *out) {
  tgo__config c;
  tgo__config_defaults(&c);
  tgo__cfg.log_level = TGO_LOG_WARN;
  tgo__config_load(&c, environ);
  int exporter = c.exporter, agent_on = c.enabled;
  c.enabled = 1; /* the check sends even where the agent is switched off: it says so below */
  c.sampler = TGO__SAMPLER_ALWAYS_ON;
  pthread_mutex_lock(&tgo__cfg_lock);
  tgo__cfg = c;
  pthread_mutex_unlock(&tgo__cfg_lock);

  char value[2048];
  fprintf(out, "TigerOps %s self-check\n", PACKAGE_VERSION);
  fprintf(out, "effective configuration (secrets masked):\n");
  print_setting(out, "TIGEROPS_ENABLED", agent_on ? "true" : "false (the agent is off; checked anyway)");
  tgo_config_get("TIGEROPS_EXPORTER", value, sizeof value);
  if (exporter != TGO__EXPORTER_OTLP)
    strncat(value, " (the agent does not export OTLP; checked anyway)", sizeof value - strlen(value) - 1);
  print_setting(out, "TIGEROPS_EXPORTER", value);
  tgo_config_get("OTEL_EXPORTER_OTLP_PROTOCOL", value, sizeof value);
  print_setting(out, "OTEL_EXPORTER_OTLP_PROTOCOL", value);
  tgo_config_get("TIGEROPS_SERVICE_NAME", value, sizeof value);
  print_setting(out, "TIGEROPS_SERVICE_NAME", value);
  tgo_config_get("OTEL_EXPORTER_OTLP_COMPRESSION", value, sizeof value);
  print_setting(out, "OTEL_EXPORTER_OTLP_COMPRESSION", value);
  tgo_config_get("OTEL_EXPORTER_OTLP_TIMEOUT", value, sizeof value);
  print_setting(out, "OTEL_EXPORTER_OTLP_TIMEOUT (ms)", value);
  print_setting(out, "TIGEROPS_API_KEY", *c.api_key ? "****" : "");
  fprintf(out, "  %-40s ", "OTEL_EXPORTER_OTLP_HEADERS");
  if (*c.headers)
    tgo__parse_kv_list(c.headers, print_masked_header, out);
  else
    fputs("(unset)", out);
  fputc('\n', out);
  print_setting(out, "OTEL_EXPORTER_OTLP_CERTIFICATE", *c.certificate ? c.certificate : "(system CA bundle)");
  print_setting(out, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", c.client_certificate);
  print_setting(out, "OTEL_EXPORTER_OTLP_CLIENT_KEY", c.client_key);
  print_proxy(out, "HTTPS_PROXY");
  print_proxy(out, "https_proxy");
  print_proxy(out, "HTTP_PROXY");
  print_proxy(out, "http_proxy");
  print_proxy(out, "NO_PROXY");
  print_proxy(out, "no_proxy");

  tgo_span *s = tgo_span_start("tigerops-run --check", 20, TGO_KIND_INTERNAL, NULL, NULL);
  tgo_attr_bool(tgo_span_attrs(s), "tigerops.check", 1);
  /* Ended by hand: tgo_span_end would queue it for the exporter thread. */
  s->ended = 1;
  s->end_ns = s->start_ns + (tgo__now_ns(CLOCK_MONOTONIC) - s->mono_start_ns);
  tgo__check_report *rep = malloc(sizeof *rep);
  int rc = rep ? tgo__export_check(&s, 1, rep) : -1;
  tgo_span_unref(s);
  if (rc < 0) {
    fprintf(out, "result: NOT SENT (%s)\n", rep ? rep->detail : "out of memory");
    free(rep);
    return 1;
  }
  fprintf(out, "endpoint: %s\n", rep->url);
  if (rep->transport_error)
    fprintf(out, "status: no answer\n");
  else if (rep->grpc_status >= 0)
    fprintf(out, "status: HTTP %ld, gRPC %d %s\n", rep->http_status, rep->grpc_status,
            tgo__grpc_status_name(rep->grpc_status));
  else
    fprintf(out, "status: HTTP %ld\n", rep->http_status);
  if (*rep->detail)
    fprintf(out, "detail: %s\n", rep->detail);
  fprintf(out, "result: %s\n", rep->accepted ? "ACCEPTED: the collector took the test span"
                               : rep->retryable ? "NOT ACCEPTED (the agent would retry this)"
                                                : "NOT ACCEPTED (the agent would drop spans)");
  int accepted = rep->accepted;
  free(rep);
  return accepted ? 0 : 1;
}
