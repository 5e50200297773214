/* Configuration: ini file, environment, precedence, bad values. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tgo-internal.h"

static void quiet(void) { tgo__cfg.log_level = TGO_LOG_NONE; }

TestSuite(config, .init = quiet);

static char *write_ini(const char *text) {
  static char path[64];
  snprintf(path, sizeof path, "/tmp/tgo-test-%d.ini", (int)getpid());
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

Test(config, ini_file_accepts_short_and_full_names) {
  tgo__config c;
  tgo__config_defaults(&c);
  char *path = write_ini("[tigerops]\nservice_name = orders\nTIGEROPS_ENVIRONMENT = prod\n"
                         "sample_rate = 0.5\n[otel]\nbsp_schedule_delay = 250\n");
  cr_assert_eq(tgo__config_load_file(&c, path, 1), 0);
  cr_assert_str_eq(c.service_name, "orders");
  cr_assert_str_eq(c.environment, "prod");
  cr_assert_eq(c.sampler, TGO__SAMPLER_PARENT_RATIO);
  cr_assert_float_eq(c.sampler_ratio, 0.5, 1e-9);
  cr_assert_eq(c.schedule_delay_ms, 250);
  unlink(path);
}

Test(config, bad_values_unknown_keys_and_syntax_errors_keep_defaults) {
  tgo__config c;
  tgo__config_defaults(&c);
  char *path = write_ini("[tigerops]\nsample_rate = 2.5\nbsp = x\nno equals sign here\n"
                         "timeout = abc\nexporter = pigeon\n[weird]\nservice_name = ignored\n");
  tgo__config_load_file(&c, path, 1);
  cr_assert_eq(c.sampler, TGO__SAMPLER_PARENT_ALWAYS_ON);
  cr_assert_float_eq(c.sampler_ratio, 1.0, 1e-9);
  cr_assert_eq(c.exporter, TGO__EXPORTER_OTLP);
  cr_assert_str_eq(c.service_name, "");
  unlink(path);
}

Test(config, a_missing_file_is_not_fatal) {
  tgo__config c;
  tgo__config_defaults(&c);
  cr_assert_lt(tgo__config_load_file(&c, "/nonexistent/tigerops.ini", 0), 0);
  cr_assert_eq(c.enabled, 1);
}

Test(config, environment_overrides_file_and_tigerops_overrides_otel) {
  char *path = write_ini("service_name = from-file\nenvironment = file-env\n");
  char cfg[128];
  snprintf(cfg, sizeof cfg, "TIGEROPS_CONFIG=%s", path);
  char *envp[] = {cfg, "OTEL_SERVICE_NAME=otel-name", "TIGEROPS_SERVICE_NAME=tigerops-name",
                  "OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318/", "OTEL_BSP_MAX_QUEUE_SIZE=-3",
                  "OTEL_EXPORTER_OTLP_COMPRESSION=gzip", NULL};
  tgo__config c;
  tgo__config_defaults(&c);
  tgo__config_load(&c, envp);
  cr_assert_str_eq(c.service_name, "tigerops-name");
  cr_assert_str_eq(c.environment, "file-env");
  cr_assert_str_eq(c.endpoint, "http://collector:4318", "trailing slash kept: %s", c.endpoint);
  cr_assert_eq(c.max_queue_size, 2048, "a bad number keeps the default");
  cr_assert_eq(c.gzip, 1);
  unlink(path);
}

Test(config, otel_sdk_disabled_is_a_kill_switch) {
  char *envp[] = {"OTEL_SDK_DISABLED=true", "TIGEROPS_CONFIG=/nonexistent", NULL};
  tgo__config c;
  tgo__config_defaults(&c);
  tgo__config_load(&c, envp);
  cr_assert_eq(c.enabled, 0);
}

Test(config, samplers_by_name) {
  char *envp[] = {"OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=0.01",
                  "TIGEROPS_CONFIG=/nonexistent", NULL};
  tgo__config c;
  tgo__config_defaults(&c);
  tgo__config_load(&c, envp);
  cr_assert_eq(c.sampler, TGO__SAMPLER_RATIO);
  cr_assert_float_eq(c.sampler_ratio, 0.01, 1e-12);
}

Test(config, non_url_endpoints_are_refused) {
  tgo__config c;
  tgo__config_defaults(&c);
  cr_assert_lt(tgo__config_apply(&c, "TIGEROPS_ENDPOINT", "collector:4318", "test"), 0);
  cr_assert_str_eq(c.endpoint, "http://localhost:4318");
}

static void collect(const char *k, const char *v, void *ud) {
  char *out = ud;
  strcat(out, k);
  strcat(out, "=");
  strcat(out, v);
  strcat(out, ";");
}

Test(config, kv_lists_are_percent_decoded_and_malformed_entries_counted) {
  char out[256] = "";
  int bad = tgo__parse_kv_list(" a = 1 ,b=x%20y,broken,=nokey,c=%zz", collect, out);
  cr_assert_str_eq(out, "a=1;b=x y;c=%zz;");
  cr_assert_eq(bad, 2);
}
