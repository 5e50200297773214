/* Trace and span ids: never zero, never repeated, not even across fork. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tgo-internal.h"

static void setup(void) {
  setenv("TIGEROPS_EXPORTER", "none", 1);
  cr_assert_eq(tgo_init(), 0);
}

TestSuite(ids, .init = setup);

static int cmp64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int count_duplicates(uint64_t *v, size_t n) {
  qsort(v, n, sizeof *v, cmp64);
  int d = 0;
  for (size_t i = 1; i < n; i++)
    d += v[i] == v[i - 1];
  return d;
}

Test(ids, span_ids_are_never_zero_and_never_repeat) {
  enum { N = 200000 };
  uint64_t *v = malloc(N * sizeof *v);
  for (size_t i = 0; i < N; i++) {
    uint8_t id[8];
    tgo__new_span_id(id);
    memcpy(&v[i], id, 8);
    cr_assert_neq(v[i], 0);
  }
  cr_assert_eq(count_duplicates(v, N), 0);
  free(v);
}

Test(ids, trace_ids_are_never_zero) {
  for (int i = 0; i < 10000; i++) {
    uint8_t id[16], zero[16] = {0};
    tgo__new_trace_id(id);
    cr_assert(memcmp(id, zero, 16) != 0);
  }
}

/* Draws n span ids in a forked child and returns them through a pipe. */
static void draw_in_child(uint64_t *out, size_t n) {
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    for (size_t i = 0; i < n; i++) {
      uint8_t id[8];
      tgo__new_span_id(id);
      if (write(fds[1], id, 8) != 8)
        _exit(1);
    }
    _exit(0);
  }
  close(fds[1]);
  size_t got = 0;
  while (got < n * 8) {
    ssize_t r = read(fds[0], (char *)out + got, n * 8 - got);
    cr_assert_gt(r, 0);
    got += (size_t)r;
  }
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  cr_assert_eq(WEXITSTATUS(status), 0);
}

Test(ids, forked_workers_never_share_ids_with_each_other_or_the_parent) {
  enum { N = 5000 };
  uint64_t *v = malloc(3 * N * sizeof *v);
  uint8_t warm[8];
  tgo__new_span_id(warm); /* the parent's generator is seeded before the fork */
  draw_in_child(v, N);
  draw_in_child(v + N, N);
  for (size_t i = 0; i < N; i++) {
    uint8_t id[8];
    tgo__new_span_id(id);
    memcpy(&v[2 * N + i], id, 8);
  }
  cr_assert_eq(count_duplicates(v, 3 * N), 0, "the atfork reseed did not happen");
  free(v);
}
