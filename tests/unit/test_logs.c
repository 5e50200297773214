/* The log queue (logs.c): bounded (a full queue drops and counts, and
 * allocates nothing), drained by a flush, emptied in a forked child. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tgo-internal.h"

static void setup(void) {
  setenv("TIGEROPS_EXPORTER", "none", 1);
  setenv("OTEL_LOGS_EXPORTER", "console", 1);
  setenv("OTEL_BLRP_MAX_QUEUE_SIZE", "5", 1);
  setenv("OTEL_BSP_SCHEDULE_DELAY", "600000", 1); /* only a flush sends */
  cr_assert_eq(tgo_init(), 0);
  cr_redirect_stderr();
}

TestSuite(logs, .init = setup);

static void emit(const char *body) {
  tgo__log_view v = {0};
  v.level = 30;
  v.level_name = "WARNING";
  v.level_name_len = 7;
  v.body = body;
  v.body_len = strlen(body);
  v.logger = "app";
  v.logger_len = 3;
  tgo__logs_emit(&v);
}

static unsigned long long stat(int i) {
  unsigned long long s[4];
  tgo__logs_stats(s);
  return s[i];
}

Test(logs, warning_is_the_default_threshold_and_a_full_queue_drops_and_counts) {
  cr_assert_eq(tgo__logs_threshold(), 30);
  for (int i = 0; i < 8; i++)
    emit("record");
  cr_assert_eq(stat(0), 5, "queued");
  cr_assert_eq(stat(1), 3, "dropped");
  cr_assert_eq(tgo__logs_pending(), 5);
  cr_assert_eq(tgo_flush(5000), 0);
  cr_assert_eq(tgo__logs_pending(), 0);
  cr_assert_eq(stat(2), 5, "exported by the console exporter");
  emit("after the flush");
  cr_assert_eq(tgo__logs_pending(), 1, "room again");
}

Test(logs, a_forked_child_drops_what_its_parent_queued) {
  emit("parent's");
  emit("parent's too");
  cr_assert_eq(tgo__logs_pending(), 2);
  pid_t pid = fork();
  if (pid == 0) {
    int ok = tgo__logs_pending() == 0;
    emit("child's");
    ok = ok && tgo__logs_pending() == 1 && tgo_flush(5000) == 0 && tgo__logs_pending() == 0;
    _exit(ok ? 0 : 1);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child saw its parent's records");
  cr_assert_eq(tgo__logs_pending(), 2, "the parent keeps its own");
  cr_assert_eq(tgo_flush(5000), 0);
  cr_assert_eq(stat(2), 2);
}
