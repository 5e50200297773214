/* Benchmark: the CPU cost of PII masking on the export path.
 *
 * Masking (src/core/pii.c) runs on the exporter thread while a batch is
 * OTLP-encoded: tgo__otlp_encode_traces() calls tgo__pii_begin(), the span
 * writer masks every string it writes (span name, string attribute and
 * event values, status message; not keys), then tgo__pii_end(). This
 * program builds batches of 512 realistic spans through the public span API
 * (TIGEROPS_EXPORTER=none, a reference kept on each span so the same batch
 * can be encoded again and again), and times tgo__otlp_encode_traces() on
 * them with CLOCK_THREAD_CPUTIME_ID in three configurations:
 *
 *   off        TIGEROPS_PII_MASKING=false
 *   builtin    TIGEROPS_PII_MASKING=true (e-mails, Luhn-checked cards, phones)
 *   +2 regex   the same plus TIGEROPS_PII_PATTERNS with two POSIX EREs
 *
 * Span variants (each a batch of 512 spans):
 *
 *   server     Flask SERVER spans, 13 attributes as the middleware sets them
 *              (real browser User-Agent, url.path with an order id, ...)
 *   sql        SQLAlchemy CLIENT spans with normalised db.query.text
 *   request    128 requests of 1 SERVER span + 3 SQL spans, in end order
 *   exception  SERVER spans that failed: status ERROR, error.type and an
 *              `exception` event with a 3 KB Python traceback
 *   pii        SERVER spans whose values carry e-mails, a card number, phone
 *              numbers, an SSN-/emp-id (for the two regexes)
 *
 * Each figure is the median of 15 runs; a run encodes the batch enough
 * times to take about 20 ms of CPU and divides by the spans encoded. Runs
 * interleave the configurations, with one untimed encode after each switch
 * (which also compiles the regexes), so drift hits all of them alike. The
 * per-batch overhead (resource and envelope, packed by protobuf-c) is
 * included, spread over the 512 spans. "ns/KB" is (masking on - off) per
 * span divided by the span's masked-string bytes: what the masker costs per
 * KB of exported string data. "masked" counts the characters it replaced
 * per span (found by comparing against the masking-off payload).
 *
 * Run:   bash bench/pii_cost.sh BUILDDIR              (e.g. /work/main/_build)
 *        bash bench/pii_cost.sh BUILDDIR --callgrind  (adds instruction counts)
 * or directly: pii_cost [--runs N] [--ms MS]
 *              pii_cost --count VARIANT CONFIG REPS    (for callgrind: encodes in
 *                                                       counted_encode() only)
 * Not a timed test: nothing is asserted beyond sanity checks of the output. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tgo-internal.h"

enum { N_SPANS = 512, MAX_RUNS = 101 };

/* ---- configurations ------------------------------------------------------ */

typedef struct {
  const char *name;
  const char *masking;
  const char *patterns;
} bench_config;

static const bench_config configs[] = {
    {"off", "false", ""},
    {"builtin", "true", ""},
    {"+2 regex", "true", "SSN-[0-9]{3}-[0-9]{2}-[0-9]{4}, emp[0-9]{5,6}"},
};
enum { N_CONFIGS = sizeof configs / sizeof configs[0] };

static void die(const char *what) {
  fprintf(stderr, "pii_cost: %s\n", what);
  exit(1);
}

static void set_config(const bench_config *c) {
  if (tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_MASKING", c->masking, "bench") < 0 ||
      tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", c->patterns, "bench") < 0)
    die("could not apply the PII settings");
}

/* ---- spans --------------------------------------------------------------- */

typedef struct {
  const char *name;
  tgo_span *spans[N_SPANS];
  size_t n;
  size_t text_bytes; /* bytes of the strings the writer masks, whole batch */
} variant;

enum { V_SERVER, V_SQL, V_REQUEST, V_EXCEPTION, V_PII, N_VARIANTS };
static variant variants[N_VARIANTS] = {
    [V_SERVER] = {.name = "server"},
    [V_SQL] = {.name = "sql"},
    [V_REQUEST] = {.name = "request"},
    [V_EXCEPTION] = {.name = "exception"},
    [V_PII] = {.name = "pii"},
};

/* Ends the span, keeping a reference so the batch outlives the tracer's. */
static void end_into(variant *v, tgo_span *s) {
  if (v->n == N_SPANS)
    die("batch overflow");
  tgo_span_ref(s);
  tgo_span_end(s);
  v->spans[v->n++] = s;
}

static void str(tgo_attrs *a, const char *key, const char *val) { tgo_attr_str(a, key, val, strlen(val)); }

static const char user_agent[] =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36";

enum { CLEAN, FAILED, PII };

/* A Flask request span with the attributes the middleware records. */
static tgo_span *server_span(int i, int flavor) {
  char buf[256];
  const char *name = "GET /api/orders/<int:order_id>";
  tgo_span *s = tgo_span_start(name, strlen(name), TGO_KIND_SERVER, NULL, NULL);
  tgo_attrs *a = tgo_span_attrs(s);
  str(a, "http.request.method", "GET");
  str(a, "url.scheme", "https");
  snprintf(buf, sizeof buf, "/api/orders/%d", 12345 + i);
  str(a, "url.path", buf);
  if (flavor == PII)
    str(a, "url.query", "email=jane.doe@example.com&phone=555-123-4567&expand=items");
  else
    str(a, "url.query", "expand=items&page=2&sort=-created_at");
  str(a, "http.route", "/api/orders/<int:order_id>");
  str(a, "user_agent.original", user_agent);
  str(a, "client.address", "203.0.113.9");
  str(a, "network.peer.address", "10.0.2.15");
  str(a, "server.address", "api.shop.example.com");
  tgo_attr_int(a, "server.port", 443);
  str(a, "network.protocol.version", "1.1");
  str(a, "code.function", "get_order");
  str(a, "flask.endpoint", "orders.get_order");
  if (flavor == PII) {
    str(a, "enduser.id", "jane.doe@example.com");
    str(a, "app.customer.phone", "+44 20 7946 0958");
    str(a, "app.payment.card", "4111 1111 1111 1111");
    str(a, "app.note", "refund approved by emp104233 for customer SSN-123-45-6789, cc billing@example.org");
  }
  return s;
}

/* Builds a Python traceback of a little over 3 KB, as the exception event
 * carries it (frames from Flask, the app and SQLAlchemy). */
static const char *traceback_3k(size_t *len) {
  static char tb[4096];
  static const char *const frames[][3] = {
      {"/usr/local/lib/python3.11/site-packages/flask/app.py\", line 1484", "full_dispatch_request",
       "rv = self.dispatch_request()"},
      {"/usr/local/lib/python3.11/site-packages/flask/app.py\", line 1469", "dispatch_request",
       "return self.ensure_sync(self.view_functions[rule.endpoint])(**view_args)"},
      {"/srv/shop/shop/orders/views.py\", line 88", "get_order",
       "order = OrderService(db.session).load(order_id, with_items=True)"},
      {"/srv/shop/shop/orders/service.py\", line 142", "load",
       "rows = self.session.execute(stmt, {\"order_id\": order_id}).all()"},
      {"/usr/local/lib/python3.11/site-packages/sqlalchemy/orm/session.py\", line 1717", "execute",
       "result = conn._execute_20(statement, params or {}, execution_options)"},
      {"/usr/local/lib/python3.11/site-packages/sqlalchemy/engine/base.py\", line 1710", "_execute_20",
       "return meth(self, args_10style, kwargs_10style, execution_options)"},
      {"/usr/local/lib/python3.11/site-packages/sqlalchemy/sql/elements.py\", line 334",
       "_execute_on_connection",
       "return connection._execute_clauseelement("},
      {"/usr/local/lib/python3.11/site-packages/sqlalchemy/engine/base.py\", line 1577",
       "_execute_clauseelement", "ret = self._execute_context("},
      {"/usr/local/lib/python3.11/site-packages/sqlalchemy/engine/base.py\", line 1953",
       "_execute_context", "self._handle_dbapi_exception("},
      {"/usr/local/lib/python3.11/site-packages/sqlalchemy/engine/base.py\", line 2134",
       "_handle_dbapi_exception", "util.raise_("},
      {"/usr/local/lib/python3.11/site-packages/sqlalchemy/util/compat.py\", line 211", "raise_",
       "raise exception"},
      {"/usr/local/lib/python3.11/site-packages/sqlalchemy/engine/base.py\", line 1910",
       "_execute_context", "self.dialect.do_execute("},
      {"/usr/local/lib/python3.11/site-packages/sqlalchemy/engine/default.py\", line 736",
       "do_execute", "cursor.execute(statement, parameters)"},
  };
  static const char last[] =
      "sqlalchemy.exc.OperationalError: (psycopg2.errors.QueryCanceled) canceling statement due to "
      "statement timeout\n[SQL: SELECT order_items.id, order_items.sku, order_items.quantity FROM "
      "order_items WHERE order_items.order_id = %(order_id_1)s]\n"
      "(Background on this error at: https://sqlalche.me/e/14/e3q8)\n";
  size_t n = (size_t)snprintf(tb, sizeof tb, "Traceback (most recent call last):\n");
  size_t nf = sizeof frames / sizeof frames[0];
  for (size_t k = 0; n + sizeof last < 3072 + 1; k++) {
    const char *const *f = frames[k % nf];
    n += (size_t)snprintf(tb + n, sizeof tb - n, "  File \"%s, in %s\n    %s\n", f[0], f[1], f[2]);
    if (k == nf - 1) /* the second half: the chained cause */
      n += (size_t)snprintf(tb + n, sizeof tb - n,
                            "\nThe above exception was the direct cause of the following exception:\n\n"
                            "Traceback (most recent call last):\n");
  }
  n += (size_t)snprintf(tb + n, sizeof tb - n, "%s", last);
  *len = n;
  return tb;
}

static tgo_span *failed_server_span(int i) {
  tgo_span *s = server_span(i, FAILED);
  tgo_attrs *a = tgo_span_attrs(s);
  static const char type[] = "OperationalError";
  static const char msg[] = "(psycopg2.errors.QueryCanceled) canceling statement due to statement timeout";
  str(a, "error.type", type);
  tgo_attr_int(a, "http.response.status_code", 500);
  tgo_attr_bool(a, "error", 1);
  tgo_span_set_status(s, TGO_STATUS_ERROR, msg, strlen(msg));
  tgo_attrs *ev = tgo_span_add_event(s, "exception", 9);
  size_t tb_len;
  const char *tb = traceback_3k(&tb_len);
  str(ev, "exception.type", "sqlalchemy.exc.OperationalError");
  str(ev, "exception.message", msg);
  tgo_attr_str(ev, "exception.stacktrace", tb, tb_len);
  return s;
}

static const char *const statements[][3] = {
    {"SELECT orders", "orders",
     "SELECT orders.id, orders.total FROM orders WHERE orders.user_id = ? LIMIT ?"},
    {"SELECT order_items", "order_items",
     "SELECT order_items.id, order_items.sku, order_items.quantity, order_items.unit_price "
     "FROM order_items WHERE order_items.order_id IN (?)"},
    {"SELECT users", "users", "SELECT users.id, users.email, users.name FROM users WHERE users.id = ?"},
    {"UPDATE orders", "orders", "UPDATE orders SET status=?, updated_at=? WHERE orders.id = ?"},
};

/* A SQLAlchemy statement span, as src/python/db.c records it. */
static tgo_span *sql_span(tgo_span *parent, int j) {
  const char *const *st = statements[j % 4];
  tgo_span *s = tgo_span_start(st[0], strlen(st[0]), TGO_KIND_CLIENT, parent, NULL);
  tgo_attrs *a = tgo_span_attrs(s);
  str(a, "db.system.name", "postgresql");
  str(a, "db.namespace", "shop");
  str(a, "db.query.text", st[2]);
  str(a, "db.operation.name", j % 4 == 3 ? "UPDATE" : "SELECT");
  str(a, "db.collection.name", st[1]);
  str(a, "server.address", "db.internal");
  tgo_attr_int(a, "server.port", 5432);
  tgo_attr_int(a, j % 4 == 3 ? "db.response.affected_rows" : "db.response.returned_rows", 1 + j % 7);
  return s;
}

static size_t attrs_text(const struct tgo_attrs *attrs) {
  size_t n = 0;
  for (const tgo__attr *a = attrs->head; a; a = a->next) {
    if (a->type == TGO__V_STR)
      n += a->n;
    else if (a->type == TGO__V_STR_ARRAY)
      for (uint32_t i = 0; i < a->n; i++)
        n += a->v.sa[i].len;
  }
  return n;
}

/* What otlp_writer.c passes through text_field(), i.e. to the masker. */
static size_t span_text(const tgo_span *s) {
  size_t n = s->name_len + s->status_msg_len + attrs_text(&s->attrs);
  for (const tgo__event *e = s->events; e; e = e->next)
    n += e->name_len + attrs_text(&e->attrs);
  return n;
}

static void build_variants(void) {
  for (int i = 0; i < N_SPANS; i++)
    end_into(&variants[V_SERVER], server_span(i, CLEAN));
  for (int i = 0; i < N_SPANS / 8; i++) { /* parents outside the batch */
    tgo_span *parent = server_span(i, CLEAN);
    for (int j = 0; j < 8; j++)
      end_into(&variants[V_SQL], sql_span(parent, i * 8 + j));
    tgo_span_end(parent);
  }
  for (int i = 0; i < N_SPANS / 4; i++) {
    tgo_span *parent = server_span(i, CLEAN);
    for (int j = 0; j < 3; j++)
      end_into(&variants[V_REQUEST], sql_span(parent, j));
    tgo_attr_int(tgo_span_attrs(parent), "http.response.status_code", 200);
    end_into(&variants[V_REQUEST], parent);
  }
  for (int i = 0; i < N_SPANS; i++)
    end_into(&variants[V_EXCEPTION], failed_server_span(i));
  for (int i = 0; i < N_SPANS; i++) {
    tgo_span *s = server_span(i, PII);
    tgo_attr_int(tgo_span_attrs(s), "http.response.status_code", 200);
    end_into(&variants[V_PII], s);
  }
  for (int i = 0; i < N_SPANS; i++)
    tgo_attr_int(tgo_span_attrs(variants[V_SERVER].spans[i]), "http.response.status_code", 200);
  for (int v = 0; v < N_VARIANTS; v++) {
    if (variants[v].n != N_SPANS)
      die("a batch is not full");
    for (size_t i = 0; i < N_SPANS; i++) {
      if (!variants[v].spans[i]->recording)
        die("span not recording (sampler?)");
      variants[v].text_bytes += span_text(variants[v].spans[i]);
    }
  }
}

/* ---- measuring ----------------------------------------------------------- */

static uint64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void encode(const variant *v, tgo__buf *b) {
  b->len = 0;
  if (tgo__otlp_encode_traces(v->spans, v->n, b) < 0)
    die("encode failed");
}

/* Kept out of line so callgrind's --toggle-collect can count exactly it. */
__attribute__((noinline)) void counted_encode(const variant *v, tgo__buf *b, long reps);
__attribute__((noinline)) void counted_encode(const variant *v, tgo__buf *b, long reps) {
  for (long r = 0; r < reps; r++)
    encode(v, b);
}

static double ns_per_span(const variant *v, tgo__buf *b, long reps) {
  uint64_t t0 = cpu_ns();
  for (long r = 0; r < reps; r++)
    encode(v, b);
  return (double)(cpu_ns() - t0) / ((double)reps * (double)v->n);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double quantile(double *xs, int n, double q) {
  qsort(xs, (size_t)n, sizeof *xs, cmp_double);
  double pos = q * (n - 1);
  int lo = (int)pos;
  return lo + 1 < n ? xs[lo] + (pos - lo) * (xs[lo + 1] - xs[lo]) : xs[lo];
}

/* Characters masked per span relative to the unmasked payload; also checks
 * that masking only ever wrote '*' and kept the length. */
static double masked_per_span(const variant *v, const tgo__buf *plain, tgo__buf *b) {
  encode(v, b);
  if (b->len != plain->len)
    die("masking changed the payload length");
  size_t masked = 0;
  for (size_t i = 0; i < b->len; i++)
    if (b->data[i] != plain->data[i]) {
      if (b->data[i] != '*')
        die("masking wrote something other than '*'");
      masked++;
    }
  return (double)masked / (double)v->n;
}

static void cpu_model(char *out, size_t cap) {
  snprintf(out, cap, "unknown CPU");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f)
    return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    char *colon = strchr(line, ':');
    if (!strncmp(line, "model name", 10) && colon) {
      colon += 1 + (colon[1] == ' ');
      colon[strcspn(colon, "\n")] = '\0';
      snprintf(out, cap, "%s", colon);
      break;
    }
  }
  fclose(f);
}

static int find_variant(const char *name) {
  for (int v = 0; v < N_VARIANTS; v++)
    if (!strcmp(variants[v].name, name))
      return v;
  return -1;
}

static int find_config(const char *name) {
  for (int c = 0; c < N_CONFIGS; c++)
    if (!strcmp(configs[c].name, name))
      return c;
  return -1;
}

static void usage(void) {
  fprintf(stderr, "usage: pii_cost [--runs N] [--ms MS]\n"
                  "       pii_cost --count VARIANT CONFIG REPS\n"
                  "variants: server sql request exception pii; configs: off builtin \"+2 regex\"\n");
  exit(2);
}

int main(int argc, char **argv) {
  int runs = 15, target_ms = 20, count_v = -1, count_c = -1;
  long count_reps = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--runs") && i + 1 < argc)
      runs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--ms") && i + 1 < argc)
      target_ms = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--count") && i + 3 < argc) {
      count_v = find_variant(argv[i + 1]);
      count_c = find_config(argv[i + 2]);
      count_reps = atol(argv[i + 3]);
      i += 3;
      if (count_v < 0 || count_c < 0 || count_reps < 1)
        usage();
    } else
      usage();
  }
  if (runs < 1 || runs > MAX_RUNS || target_ms < 1)
    usage();

  /* Pin what the measurement depends on, whatever the environment says. */
  setenv("TIGEROPS_ENABLED", "true", 1);
  setenv("TIGEROPS_EXPORTER", "none", 1);
  setenv("TIGEROPS_SERVICE_NAME", "orders", 1);
  setenv("OTEL_TRACES_SAMPLER", "always_on", 1);
  unsetenv("TIGEROPS_SAMPLE_RATE");
  unsetenv("OTEL_TRACES_SAMPLER_ARG");
  setenv("TIGEROPS_ATTRIBUTE_VALUE_LIMIT", "8192", 1);
  unsetenv("OTEL_RESOURCE_ATTRIBUTES");
  if (tgo_init() < 0)
    die("tgo_init failed");
  build_variants();

  tgo__buf buf = {0}, plain = {0};

  if (count_v >= 0) { /* one cell, for callgrind --toggle-collect=counted_encode */
    set_config(&configs[count_c]);
    encode(&variants[count_v], &buf); /* compiles the patterns outside the count */
    counted_encode(&variants[count_v], &buf, count_reps);
    printf("counted %ld encodes of %s/%s (%zu spans each)\n", count_reps, variants[count_v].name,
           configs[count_c].name, variants[count_v].n);
    return 0;
  }

  /* Calibrate: repetitions per run for about target_ms of CPU each. */
  long reps[N_VARIANTS][N_CONFIGS];
  for (int v = 0; v < N_VARIANTS; v++)
    for (int c = 0; c < N_CONFIGS; c++) {
      set_config(&configs[c]);
      encode(&variants[v], &buf);
      double ns = ns_per_span(&variants[v], &buf, 3) * N_SPANS;
      long r = (long)(target_ms * 1e6 / (ns > 1 ? ns : 1));
      reps[v][c] = r < 1 ? 1 : r;
    }

  static double samples[N_VARIANTS][N_CONFIGS][MAX_RUNS];
  for (int run = 0; run < runs; run++)
    for (int v = 0; v < N_VARIANTS; v++)
      for (int c = 0; c < N_CONFIGS; c++) {
        set_config(&configs[c]);
        encode(&variants[v], &buf); /* untimed: recompiles patterns after a switch */
        samples[v][c][run] = ns_per_span(&variants[v], &buf, reps[v][c]);
      }

  double med[N_VARIANTS][N_CONFIGS], masked[N_VARIANTS][N_CONFIGS], worst_spread = 0;
  int worst_v = 0, worst_c = 0;
  size_t payload[N_VARIANTS];
  for (int v = 0; v < N_VARIANTS; v++) {
    set_config(&configs[0]);
    encode(&variants[v], &plain);
    payload[v] = plain.len;
    for (int c = 0; c < N_CONFIGS; c++) {
      double *xs = samples[v][c];
      double q1 = quantile(xs, runs, 0.25), q3 = quantile(xs, runs, 0.75);
      med[v][c] = quantile(xs, runs, 0.5);
      if ((q3 - q1) / med[v][c] > worst_spread) {
        worst_spread = (q3 - q1) / med[v][c];
        worst_v = v;
        worst_c = c;
      }
      set_config(&configs[c]);
      masked[v][c] = masked_per_span(&variants[v], &plain, &buf);
    }
  }

  char cpu[256];
  cpu_model(cpu, sizeof cpu);
  printf("PII masking cost in the OTLP encode of a %d-span batch (tgo__otlp_encode_traces),\n"
         "thread CPU ns per span, median of %d runs (~%d ms each); %s\n",
         N_SPANS, runs, target_ms, cpu);
  printf("configs: off = TIGEROPS_PII_MASKING=false; builtin = true (e-mail, card, phone);\n"
         "         +2 regex = builtin + TIGEROPS_PII_PATTERNS=\"%s\"\n\n",
         configs[2].patterns);
  printf("| variant   | text B/span | off ns/span | builtin ns/span | ratio | +2 regex ns/span | ratio |\n"
         "|-----------|------------:|------------:|----------------:|------:|-----------------:|------:|\n");
  for (int v = 0; v < N_VARIANTS; v++)
    printf("| %-9s | %11.0f | %11.0f | %15.0f | %5.2f | %16.0f | %5.2f |\n", variants[v].name,
           (double)variants[v].text_bytes / N_SPANS, med[v][0], med[v][1], med[v][1] / med[v][0],
           med[v][2], med[v][2] / med[v][0]);
  printf("\n| variant   | builtin ns/KB | +2 regex ns/KB | masked chars/span builtin | +2 regex | payload B/span |\n"
         "|-----------|--------------:|---------------:|--------------------------:|---------:|---------------:|\n");
  for (int v = 0; v < N_VARIANTS; v++) {
    double kb = (double)variants[v].text_bytes / N_SPANS / 1024.0;
    printf("| %-9s | %13.0f | %14.0f | %25.1f | %8.1f | %14.0f |\n", variants[v].name,
           (med[v][1] - med[v][0]) / kb, (med[v][2] - med[v][0]) / kb, masked[v][1], masked[v][2],
           (double)payload[v] / N_SPANS);
  }
  printf("\ntext B/span: bytes of the strings the writer masks (span name, string attribute and\n"
         "event values, status message). ns/KB: (masking on - off) ns/span per KB of those.\n"
         "Run-to-run spread: interquartile range at most %.1f%% of the median (%s, %s).\n",
         100 * worst_spread, variants[worst_v].name, configs[worst_c].name);

  tgo__buf_free(&buf);
  tgo__buf_free(&plain);
  for (int v = 0; v < N_VARIANTS; v++)
    for (size_t i = 0; i < variants[v].n; i++)
      tgo_span_unref(variants[v].spans[i]);
  return 0;
}
