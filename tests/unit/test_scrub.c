/* Exception-text scrubbing: bind values that SQLAlchemy and the databases
 * echo into error messages are masked with '*', the length is kept, and a
 * text without any of those shapes stays byte for byte the same. The
 * inputs are the messages SQLAlchemy 1.4/2.0, sqlite3 and psycopg2 print. */
#include "tgo-internal.h" /* first: config.h's _GNU_SOURCE, for memmem */

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static void setup(void) {
  setenv("TIGEROPS_EXPORTER", "none", 1);
  cr_assert_eq(tgo_init(), 0);
}

TestSuite(scrub, .init = setup);

static char *scrubbed(const char *in) {
  size_t n = strlen(in);
  char *buf = malloc(n + 1);
  memcpy(buf, in, n + 1);
  tgo__scrub(buf, n);
  cr_assert_eq(strlen(buf), n, "the length is kept");
  return buf;
}

static void expect(const char *in, const char *want) {
  char *got = scrubbed(in);
  cr_assert_str_eq(got, want, "scrubbing:\n%s\ngave:\n%s", in, got);
  free(got);
}

static void untouched(const char *in) { expect(in, in); }

static void lacks(const char *in, const char *secret) {
  char *got = scrubbed(in);
  cr_assert(!strstr(got, secret), "\"%s\" left in:\n%s", secret, got);
  free(got);
}

Test(scrub, sqlalchemy_14_sqlite_integrity_error_loses_its_parameters) {
  expect("(sqlite3.IntegrityError) UNIQUE constraint failed: users.email\n"
         "[SQL: INSERT INTO users (email) VALUES (?)]\n"
         "[parameters: ('sk_live_SECRET123',)]\n"
         "(Background on this error at: https://sqlalche.me/e/14/gkpj)",
         "(sqlite3.IntegrityError) UNIQUE constraint failed: users.email\n"
         "[SQL: INSERT INTO users (email) VALUES (?)]\n"
         "[parameters: **********************]\n"
         "(Background on this error at: https://sqlalche.me/e/14/gkpj)");
}

Test(scrub, sqlalchemy_20_single_and_executemany_parameters) {
  expect("(sqlite3.IntegrityError) UNIQUE constraint failed: users.email\n"
         "[SQL: INSERT INTO users (email, name) VALUES (?, ?)]\n"
         "[parameters: ('sk_live_SECRET123', 'bob')]\n"
         "(Background on this error at: https://sqlalche.me/e/20/gkpj)",
         "(sqlite3.IntegrityError) UNIQUE constraint failed: users.email\n"
         "[SQL: INSERT INTO users (email, name) VALUES (?, ?)]\n"
         "[parameters: ****************************]\n"
         "(Background on this error at: https://sqlalche.me/e/20/gkpj)");
  expect("[SQL: INSERT INTO users (email) VALUES (?)]\n"
         "[parameters: [('a0_sk_live_MANY',), ('sk_live_SECRET123',)]]\n"
         "(Background on this error at: https://sqlalche.me/e/20/gkpj)",
         "[SQL: INSERT INTO users (email) VALUES (?)]\n"
         "[parameters: **********************************************]\n"
         "(Background on this error at: https://sqlalche.me/e/20/gkpj)");
}

Test(scrub, named_parameters_as_a_dict) {
  expect("[SQL: insert into users (email, age) values (%(e)s, 2)]\n"
         "[parameters: {'e': 'sk_live_SECRET123'}]",
         "[SQL: insert into users (email, age) values (%(e)s, *)]\n"
         "[parameters: **************************]");
}

Test(scrub, a_truncated_executemany_list_goes_whole) {
  lacks("(sqlite3.IntegrityError) UNIQUE constraint failed: users.email\n"
        "[SQL: INSERT INTO users (email) VALUES (?)]\n"
        "[parameters: (('m0_sk_live_BULK',), ('m1_sk_live_BULK',)  ... displaying 10 of 1000 total "
        "bound parameter sets ...  ('m998_sk_live_BULK',), ('sk_live_SECRET123',))]\n"
        "(Background on this error at: https://sqlalche.me/e/14/gkpj)",
        "sk_live");
}

Test(scrub, quotes_and_brackets_inside_parameter_values) {
  expect("[parameters: {'q': \"it's ]\\n [SQL: x\", 'p': 'a\\'b)]'}]\n(Background on this error at: x)",
         "[parameters: ****************************************]\n(Background on this error at: x)");
}

Test(scrub, psycopg2_unique_violation_detail_key_value) {
  expect("(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint \"users_email_key\"\n"
         "DETAIL:  Key (email)=(sk_live_SECRET123) already exists.\n",
         "(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint \"users_email_key\"\n"
         "DETAIL:  Key (email)=(*****************) already exists.\n");
  expect("DETAIL:  Key (lower(email), org)=(bob) (x, 7) is not present in table \"orgs\".",
         "DETAIL:  Key (lower(email), org)=(**********) is not present in table \"orgs\".");
  expect("DETAIL:  Failing row contains (3, sk_live_ROW456, null).",
         "DETAIL:  Failing row contains (***********************).");
  expect("DETAIL:  Token \"sk_live_TOKEN\" is invalid.", "DETAIL:  Token \"*************\" is invalid.");
}

Test(scrub, psycopg2_invalid_input_with_line_echo_and_caret) {
  const char *in = "(psycopg2.errors.InvalidTextRepresentation) invalid input syntax for type integer: "
                   "\"sk_live_SECRET123\"\n"
                   "LINE 3: WHERE articles.id = 'sk_live_SECRET123' AND n > 42\n"
                   "                            ^\n\n"
                   "[SQL: SELECT articles.id \nFROM articles \nWHERE articles.id = %(id_1)s AND n > 42]\n"
                   "[parameters: {'id_1': 'sk_live_SECRET123'}]\n"
                   "(Background on this error at: https://sqlalche.me/e/14/9h9h)";
  const char *want = "(psycopg2.errors.InvalidTextRepresentation) invalid input syntax for type integer: "
                     "\"*****************\"\n"
                     "LINE 3: WHERE articles.id = '*****************' AND n > **\n"
                     "                            ^\n\n"
                     "[SQL: SELECT articles.id \nFROM articles \nWHERE articles.id = %(id_1)s AND n > **]\n"
                     "[parameters: *****************************]\n"
                     "(Background on this error at: https://sqlalche.me/e/14/9h9h)";
  expect(in, want);
}

Test(scrub, a_line_echo_cut_by_postgres_goes_whole) {
  expect("LINE 1: ...ELECT 1 FROM t WHERE a = 'x' AND b = 'y' AND c = 'sk_live_SECRET...\n"
         "                                                             ^",
         "LINE 1: ...*******************************************************************\n"
         "                                                             ^");
}

Test(scrub, literals_in_the_statement_with_escaped_quotes_and_unicode) {
  expect("[SQL: insert into users (email, name) values ('sk_live_SECRET123', 'O''Brien sk_live_QUOTE')]\n"
         "(Background on this error at: https://sqlalche.me/e/14/gkpj)",
         "[SQL: insert into users (email, name) values ('*****************', '**********************')]\n"
         "(Background on this error at: https://sqlalche.me/e/14/gkpj)");
  expect("[SQL: SELECT 1 FROM t WHERE a = E'it\\'s sk_live_E' AND b = 'it\\'s sk_live_MY' AND \"t2\".c = $$sk_live_D$$]",
         "[SQL: SELECT * FROM t WHERE a = E'***************' AND b = '****************' AND \"t2\".c = $$*********$$]");
  expect("[SQL: UPDATE t1 SET name = 'p\xc3\xa4ss\xe2\x82\xac' WHERE id = $1]",
         "[SQL: UPDATE t1 SET name = '********' WHERE id = $1]");
}

Test(scrub, texts_cut_short_lose_the_rest_of_the_shape) {
  expect("[parameters: ('sk_live_SECR", "[parameters: **************");
  expect("[SQL: insert into t values ('sk_live_SECR", "[SQL: insert into t values ('************");
  expect("DETAIL:  Key (email)=(sk_live_SECR", "DETAIL:  Key (email)=(************");
  expect("invalid input syntax for type integer: \"sk_live_SE", "invalid input syntax for type integer: \"**********");
}

Test(scrub, other_database_echoes) {
  expect("value \"4111111199999\" is out of range for type integer",
         "value \"*************\" is out of range for type integer");
  expect("CONTEXT:  unnamed portal parameter $1 = 'sk_live_SECRET123'",
         "CONTEXT:  unnamed portal parameter $1 = '*****************'");
  expect("malformed array literal: \"sk_live_ARR\"", "malformed array literal: \"***********\"");
  expect("(pymysql.err.IntegrityError) (1062, \"Duplicate entry 'sk_live_SECRET123' for key 'users.email'\")",
         "(pymysql.err.IntegrityError) (1062, \"Duplicate entry '*****************' for key 'users.email'\")");
}

Test(scrub, every_occurrence_in_a_chained_traceback) {
  const char *tb =
      "Traceback (most recent call last):\n"
      "  File \"/srv/app.py\", line 12, in add\n"
      "    db.session.commit()\n"
      "sqlite3.IntegrityError: UNIQUE constraint failed: users.email\n\n"
      "The above exception was the direct cause of the following exception:\n\n"
      "Traceback (most recent call last):\n"
      "sqlalchemy.exc.IntegrityError: (sqlite3.IntegrityError) UNIQUE constraint failed: users.email\n"
      "[SQL: INSERT INTO users (email) VALUES (?)]\n"
      "[parameters: ('sk_live_SECRET123',)]\n"
      "(Background on this error at: https://sqlalche.me/e/14/gkpj)\n\n"
      "During handling of the above exception, another exception occurred:\n\n"
      "RuntimeError: (sqlite3.IntegrityError) UNIQUE constraint failed: users.email\n"
      "[SQL: INSERT INTO users (email) VALUES (?)]\n"
      "[parameters: ('sk_live_SECRET123',)]\n";
  lacks(tb, "sk_live");
  char *got = scrubbed(tb);
  cr_assert(strstr(got, "  File \"/srv/app.py\", line 12, in add\n"), "frames are kept");
  cr_assert(strstr(got, "UNIQUE constraint failed: users.email\n[SQL: INSERT INTO users (email) VALUES (?)]"));
  free(got);
}

Test(scrub, texts_without_echoed_values_stay_byte_identical) {
  untouched("");
  untouched("GET /api/orders/<int:order_id>");
  untouched("https://api.example.com:8443/v1/items?page=2 at 12:30:00");
  untouched("Traceback (most recent call last):\n  File \"/srv/app.py\", line 3, in <module>\n"
            "    raise ValueError('bad value: 42')\nValueError: bad value: 42\n");
  untouched("(psycopg2.errors.UndefinedTable) relation \"users\" does not exist\n"
            "[SQL parameters hidden due to hide_parameters=True]");
  untouched("{\"event\": \"signup\", \"plan\": \"pro\"}");
  untouched("KeyError: 'user_id'");
  untouched("INSERT INTO t VALUES (?) LINE FEED DETAIL Key (a) invalid input");
  untouched("caf\xc3\xa9 \xe2\x82\xac 10:00 LINE 7 DETAIL");
}

Test(scrub, the_otlp_writer_scrubs_event_attributes_and_status_messages) {
  static const char msg[] = "(sqlite3.IntegrityError) UNIQUE constraint failed: users.email\n"
                            "[SQL: INSERT INTO users (email) VALUES ('sk_live_LITERAL')]\n"
                            "[parameters: ('sk_live_SECRET123',)]";
  tgo_span *s = tgo_span_start("POST /users", 11, TGO_KIND_SERVER, NULL, NULL);
  tgo_attrs *ev = tgo_span_add_event(s, "exception", 9);
  tgo_attr_str(ev, "exception.type", "IntegrityError", 14);
  tgo_attr_str(ev, "exception.message", msg, strlen(msg));
  tgo_attr_str(tgo_span_attrs(s), "celery.retry.reason", msg, strlen(msg));
  tgo_span_set_status(s, TGO_STATUS_ERROR, msg, strlen(msg));
  s->end_ns = s->start_ns + 1000;
  size_t size = tgo__otlp_span_size(s);
  uint8_t *buf = malloc(size);
  uint8_t *end = tgo__otlp_span_write(buf, s);
  cr_assert_eq((size_t)(end - buf), size);
  cr_assert_null(memmem(buf, size, "sk_live", 7), "a bind value reached the encoded span");
  cr_assert_not_null(memmem(buf, size, "IntegrityError", 14));
  cr_assert_not_null(memmem(buf, size, "UNIQUE constraint failed: users.email", 37));
  free(buf);
  tgo_span_unref(s);
}

/* The exporter thread must not stall on a hostile text: each shape is
 * scanned once, so 2 MB of repeated shapes takes milliseconds (a second
 * under valgrind); a quadratic scan takes a minute and hits the timeout. */
Test(scrub, repeated_shapes_in_a_huge_line_scrub_in_linear_time, .timeout = 30) {
  static const char *const units[] = {"{\"k\": \"v\", ", "[SQL: x = 'y' ", "value \"1\" is out of range ",
                                      "Duplicate entry 'a' ", "invalid input: \"", "LINE 1: 'a"};
  size_t n = 2u << 20;
  char *buf = malloc(n);
  for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
    size_t m = strlen(units[u]);
    for (size_t i = 0; i < n; i++)
      buf[i] = units[u][i % m];
    tgo__scrub(buf, n);
  }
  free(buf);
}

/* Celery's retry reason is "Retry in 0s: " + repr(exc): the same shapes
 * with every newline escaped as "\n", all on one line. */
Test(scrub, a_repr_of_the_exception_with_escaped_newlines) {
  expect("Retry in 0s: IntegrityError('(psycopg2.errors.InvalidTextRepresentation) invalid input syntax for "
         "type integer: \"sk_live_X\"\\nLINE 1: ...WHERE id = \\'sk_live_X\\'\\n   ^\\n\\n[SQL: SELECT 1 WHERE "
         "id = %(id)s]\\n[parameters: {\\'id\\': \"it\\'s sk_live_X\"}]\\n(Background on this error at: "
         "https://sqlalche.me/e/14/9h9h)')",
         "Retry in 0s: IntegrityError('(psycopg2.errors.InvalidTextRepresentation) invalid input syntax for "
         "type integer: \"*********\"\\nLINE 1: ...************************\\n   ^\\n\\n[SQL: SELECT * WHERE "
         "id = %(id)s]\\n[parameters: ***************************]\\n(Background on this error at: "
         "https://sqlalche.me/e/14/9h9h)')");
  lacks("Retry in 0s: IntegrityError('(psycopg2.errors.UniqueViolation) duplicate key value violates unique "
        "constraint \"t_token_key\"\\nDETAIL:  Key (token)=(sk_live_X) already exists.\\n')",
        "sk_live");
}
