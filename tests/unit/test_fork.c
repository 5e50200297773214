/* A forked child must be able to take every lock that a thread it does not
 * have (the exporter thread, another request thread) held at the moment of
 * fork: gunicorn, uWSGI and Celery's prefork pool fork while the parent's
 * exporter is busy. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tgo-internal.h"

static void setup(void) {
  setenv("TIGEROPS_EXPORTER", "none", 1);
  cr_assert_eq(tgo_init(), 0); /* registers the atfork handlers */
}

/* Under valgrind every thread takes turns on one lock and each fork is slow:
 * fewer rounds there (the sanitizer and plain runs do all 40). */
static int under_valgrind(void) {
  const char *p = getenv("LD_PRELOAD");
  return p && strstr(p, "vgpreload") != NULL;
}

TestSuite(fork, .init = setup, .timeout = 240);

/* A helper thread that holds a lock until told to let go. */
typedef struct {
  pthread_mutex_t *lock;
  int held[2], release[2]; /* pipes: "I hold it", "let go" */
} holder;

static void *hold(void *arg) {
  holder *h = arg;
  char c = 0;
  pthread_mutex_lock(h->lock);
  if (write(h->held[1], &c, 1) != 1 || read(h->release[0], &c, 1) != 1)
    abort(); /* Criterion's asserts belong to the test's own thread */
  pthread_mutex_unlock(h->lock);
  return NULL;
}

/* The child's verdict: 0 when it took the lock within two seconds and the
 * module behind it works; 2 when it would have deadlocked. */
static int take_with_deadline(pthread_mutex_t *m) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 2;
  int rc = pthread_mutex_timedlock(m, &deadline);
  if (rc == ETIMEDOUT)
    return 2;
  if (rc)
    return 3;
  pthread_mutex_unlock(m);
  return 0;
}

static int child_exercise(pthread_mutex_t *m) {
  int rc = take_with_deadline(m);
  if (rc)
    return rc;
  /* The calls that take it on the request and exporter paths. */
  tgo_resource_set("forked", "yes");
  if (!tgo__intern("after fork", 10))
    return 4;
  tgo__kv kvs[32];
  return tgo__resource_collect(kvs, 32) > 0 ? 0 : 5;
}

static int wait_exit_status(pid_t pid) {
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status), "the child died of signal %d", WTERMSIG(status));
  return WEXITSTATUS(status);
}

static void fork_while_held(pthread_mutex_t *m, const char *what) {
  holder h = {.lock = m};
  cr_assert_eq(pipe(h.held), 0);
  cr_assert_eq(pipe(h.release), 0);
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, hold, &h), 0);
  char c;
  cr_assert_eq(read(h.held[0], &c, 1), 1);
  pid_t pid = fork();
  cr_assert_neq(pid, -1);
  if (pid == 0)
    _exit(child_exercise(m));
  cr_assert_eq(write(h.release[1], &c, 1), 1);
  pthread_join(t, NULL);
  int st = wait_exit_status(pid);
  cr_assert_eq(st, 0, "the child could not use the %s after a fork that caught it held (%s)", what,
               st == 2 ? "deadlock" : "error");
  close(h.held[0]);
  close(h.held[1]);
  close(h.release[0]);
  close(h.release[1]);
}

Test(fork, child_takes_the_intern_table_lock_another_thread_held) {
  fork_while_held(&tgo__intern_lock, "intern table");
}

Test(fork, child_takes_the_resource_lock_another_thread_held) {
  fork_while_held(&tgo__resource_lock, "resource");
}

Test(fork, child_takes_the_config_lock_another_thread_held) {
  fork_while_held(&tgo__cfg_lock, "configuration");
}

/* Not deterministic, unlike the tests above: threads churning every lock
 * the exporter path takes while the main thread forks, each child using
 * them at once. Waited for with a deadline: a hung child fails the test,
 * and a hung parent (fork's handlers, the join) says where it stopped. */
static atomic_int churning;
/* Static, not malloc'd by the threads: in a child, which has none of them,
 * valgrind would report their memory as lost. */
static tgo__kv churn_kvs[2][64];

#define CHURN_KEYS 512

static volatile sig_atomic_t churn_phase, churn_round;

/* SIGALRM: the parent itself is stuck. Only write() and _exit() here. */
static void churn_deadline(int sig) {
  (void)sig;
  static const char *const phases[] = {"starting the churn threads", "forking", "waiting for its child",
                                       "joining the churn threads"};
  const char *phase = phases[churn_phase];
  char msg[160] = "test_fork: the parent hung ";
  size_t n = strlen(msg);
  for (const char *s = phase; *s && n < sizeof msg - 24; s++)
    msg[n++] = *s;
  static const char round[] = " in round ";
  memcpy(msg + n, round, sizeof round - 1);
  n += sizeof round - 1;
  char digits[8];
  int d = 0;
  for (int r = churn_round; d < 7 && (r > 0 || d == 0); r /= 10)
    digits[d++] = (char)('0' + r % 10);
  while (d > 0)
    msg[n++] = digits[--d];
  msg[n++] = '\n';
  ssize_t w = write(2, msg, n);
  (void)w;
  _exit(3);
}

static void *churn(void *arg) {
  tgo__kv *kvs = arg;
  char key[32];
  for (unsigned i = 0; atomic_load(&churning); i++) {
    int n = snprintf(key, sizeof key, "churn-%u", i % CHURN_KEYS);
    tgo__intern(key, (size_t)n);
    tgo_resource_set("churn", key);
    tgo__resource_collect(kvs, 64);
  }
  return NULL;
}

Test(fork, children_forked_while_threads_churn_the_locks_never_hang) {
  char key[32];
  for (unsigned i = 0; i < CHURN_KEYS; i++) { /* interned now: no thread mallocs across a fork */
    int n = snprintf(key, sizeof key, "churn-%u", i);
    cr_assert_not_null(tgo__intern(key, (size_t)n));
  }
  signal(SIGALRM, churn_deadline);
  alarm(200); /* under the suite's 240 s, so the message comes out */
  churn_phase = 0;
  atomic_store(&churning, 1);
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, churn, churn_kvs[i]), 0);
  int rounds = under_valgrind() ? 8 : 40;
  for (int round = 0; round < rounds; round++) {
    churn_round = round;
    churn_phase = 1;
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0)
      _exit(child_exercise(&tgo__intern_lock) || child_exercise(&tgo__resource_lock));
    churn_phase = 2;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int status;
    pid_t got;
    while ((got = waitpid(pid, &status, WNOHANG)) == 0) {
      struct timespec now, step = {0, 1000000};
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (now.tv_sec - start.tv_sec > 10) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        atomic_store(&churning, 0);
        cr_assert_fail("child %d hung after round %d", (int)pid, round);
      }
      nanosleep(&step, NULL);
    }
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "round %d: child status %#x", round,
              status);
  }
  churn_phase = 3;
  atomic_store(&churning, 0);
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  alarm(0);
}
