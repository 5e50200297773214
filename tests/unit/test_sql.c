/* SQL normalisation: no literal survives, shapes group, nothing overruns. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "tgo-internal.h"

static char out[512];

static const char *norm(const char *sql) {
  tgo__sql_normalize(sql, strlen(sql), out, sizeof out);
  return out;
}

Test(sql, literals_become_placeholders) {
  cr_assert_str_eq(norm("SELECT * FROM users WHERE email = 'a@b.c' AND age > 42"),
                   "SELECT * FROM users WHERE email = ? AND age > ?");
  cr_assert_str_eq(norm("select 1.5e-3, -7, 0x1F, .5"), "select ?, ?, ?, ?");
  cr_assert_str_eq(norm("UPDATE t SET flag = TRUE, name = 'O''Brien' WHERE id = 3"),
                   "UPDATE t SET flag = ?, name = ? WHERE id = ?");
  cr_assert_str_eq(norm("SELECT E'it\\'s', $$dollar 'quoted'$$, $tag$x$tag$"), "SELECT ?, ?, ?");
  cr_assert_str_eq(norm("SELECT a FROM t WHERE b IS NULL"), "SELECT a FROM t WHERE b IS NULL");
}

Test(sql, placeholders_of_every_paramstyle_become_question_marks) {
  cr_assert_str_eq(norm("SELECT * FROM t WHERE a = %s AND b = %(name)s AND c = :c AND d = $1 AND e = ?"),
                   "SELECT * FROM t WHERE a = ? AND b = ? AND c = ? AND d = ? AND e = ?");
  cr_assert_str_eq(norm("SELECT a::int FROM t"), "SELECT a::int FROM t");
}

Test(sql, in_lists_collapse_and_subqueries_stay) {
  cr_assert_str_eq(norm("SELECT * FROM t WHERE id IN (1, 2, 3, 4)"), "SELECT * FROM t WHERE id IN (?)");
  cr_assert_str_eq(norm("SELECT * FROM t WHERE id in (?, ?, ?)"), "SELECT * FROM t WHERE id in (?)");
  cr_assert_str_eq(norm("SELECT * FROM t WHERE k IN ('a','b')"), "SELECT * FROM t WHERE k IN (?)");
  cr_assert_str_eq(norm("SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE x = 1)"),
                   "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE x = ?)");
}

Test(sql, multi_row_values_keep_their_first_row) {
  cr_assert_str_eq(norm("INSERT INTO t (a, b) VALUES (?, ?), (?, ?) , (?,?) RETURNING t.id"),
                   "INSERT INTO t (a, b) VALUES (?, ?) RETURNING t.id");
  cr_assert_str_eq(norm("INSERT INTO t (a) VALUES (%(a__0)s), (%(a__1)s), (%(a__2)s)"),
                   "INSERT INTO t (a) VALUES (?)");
  /* SQLAlchemy's ordered insertmanyvalues on PostgreSQL (psycopg, asyncpg). */
  cr_assert_str_eq(norm("INSERT INTO t (a) SELECT p0::VARCHAR FROM (VALUES ($1::VARCHAR, 0), ($2::VARCHAR, 1)) "
                        "AS imp_sen(p0, sen_counter) ORDER BY sen_counter RETURNING t.id"),
                   "INSERT INTO t (a) SELECT p0::VARCHAR FROM (VALUES (?::VARCHAR, ?)) AS imp_sen(p0, sen_counter) "
                   "ORDER BY sen_counter RETURNING t.id");
  cr_assert_str_eq(norm("INSERT INTO t VALUES (1, 'x'), (2, 'y')"), "INSERT INTO t VALUES (?, ?)");
  /* Rows with expressions are kept whole: they may differ in shape. */
  cr_assert_str_eq(norm("INSERT INTO t VALUES (1, now()), (2, now())"), "INSERT INTO t VALUES (?, now()), (?, now())");
  cr_assert_str_eq(norm("INSERT INTO t VALUES (?), (lower(?))"), "INSERT INTO t VALUES (?), (lower(?))");
  cr_assert_str_eq(norm("INSERT INTO t VALUES (?), (?"), "INSERT INTO t VALUES (?), (?");
  cr_assert_str_eq(norm("SELECT * FROM t WHERE id IN ($1::INTEGER, $2::INTEGER)"), "SELECT * FROM t WHERE id IN (?)");
}

Test(sql, comments_go_and_whitespace_folds) {
  cr_assert_str_eq(norm("  SELECT /* hint */ a,\n\t b -- trailing\nFROM  t ;  "), "SELECT a, b FROM t");
  cr_assert_str_eq(norm("SELECT a FROM t /* unterminated"), "SELECT a FROM t");
}

Test(sql, identifiers_with_digits_and_quotes_are_kept) {
  cr_assert_str_eq(norm("SELECT t1.c2 FROM \"Table 1\" JOIN `x9` ON t1.id = x9.id"),
                   "SELECT t1.c2 FROM \"Table 1\" JOIN `x9` ON t1.id = x9.id");
}

Test(sql, unterminated_strings_are_swallowed_whole) {
  cr_assert_str_eq(norm("SELECT 'secret value never closed"), "SELECT ?");
  cr_assert_str_eq(norm("SELECT E'ends with backslash\\"), "SELECT ?");
  cr_assert_str_eq(norm("SELECT $a$ open"), "SELECT ?");
}

Test(sql, output_is_bounded_and_terminated) {
  char small[8];
  size_t n = tgo__sql_normalize("SELECT something FROM somewhere", 31, small, sizeof small);
  cr_assert_leq(n, 7);
  cr_assert_eq(small[n], '\0');
  cr_assert_str_eq(small, "SELECT");
  cr_assert_eq(tgo__sql_normalize("SELECT 1", 8, small, 0), 0);
}

Test(sql, random_bytes_including_nul_never_overrun_or_cut_the_text) {
  srand(7);
  char in[300], o[300];
  for (int round = 0; round < 20000; round++) {
    size_t n = (size_t)(rand() % 300);
    for (size_t i = 0; i < n; i++)
      in[i] = "SELECT'\"$-/*()?%:,0123 INxe\\\n"[rand() % 30];
    size_t len = tgo__sql_normalize(in, n, o, sizeof o);
    cr_assert_lt(len, sizeof o);
    cr_assert_eq(strlen(o), len);
  }
}

Test(sql, summary_finds_operation_and_table) {
  const char *op, *table;
  size_t op_len, table_len;
  const char *cases[][3] = {
      {"SELECT users.id FROM users WHERE id = ?", "SELECT", "users"},
      {"INSERT INTO orders (a, b) VALUES (?, ?)", "INSERT", "orders"},
      {"UPDATE accounts SET x = ?", "UPDATE", "accounts"},
      {"DELETE FROM public.sessions WHERE id = ?", "DELETE", "public.sessions"},
      {"BEGIN", "BEGIN", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tgo__sql_summary(cases[i][0], strlen(cases[i][0]), &op, &op_len, &table, &table_len);
    cr_expect_eq(op_len, strlen(cases[i][1]));
    cr_expect(!strncmp(op, cases[i][1], op_len));
    cr_expect_eq(table_len, strlen(cases[i][2]), "%s", cases[i][0]);
    if (table_len)
      cr_expect(!strncmp(table, cases[i][2], table_len), "%s", cases[i][0]);
  }
}

static void expect_summary(const char *sql, const char *want_op, const char *want_table) {
  const char *op, *table;
  size_t op_len, table_len;
  tgo__sql_summary(sql, strlen(sql), &op, &op_len, &table, &table_len);
  cr_expect(op_len == strlen(want_op) && !strncmp(op, want_op, op_len), "%s: op '%.*s'", sql, (int)op_len, op);
  cr_expect(table_len == strlen(want_table) && (!table_len || !strncmp(table, want_table, table_len)),
            "%s: table '%.*s', want '%s'", sql, (int)table_len, table ? table : "", want_table);
}

/* SQLAlchemy's count() and paginate() wrap the query in a derived table:
 * the collection is the table the subquery reads, never the word SELECT. */
Test(sql, a_derived_table_is_named_after_the_table_it_reads) {
  expect_summary("SELECT count(*) AS count_1 FROM (SELECT articles.id AS articles_id, articles.title AS "
                 "articles_title FROM articles WHERE articles.author_id = ?) AS anon_1",
                 "SELECT", "articles");
  expect_summary("SELECT a FROM(SELECT b FROM c) AS d", "SELECT", "c");
  expect_summary("SELECT * FROM ( ( SELECT x FROM (SELECT y FROM inner_t) AS i ) ) AS o", "SELECT", "inner_t");
  expect_summary("SELECT * FROM (WITH w AS (SELECT 1) SELECT * FROM base) AS x", "SELECT", "base");
  expect_summary("SELECT * FROM (VALUES (?), (?)) AS v", "SELECT", "");
  expect_summary("SELECT * FROM (SELECT ?) AS anon_1", "SELECT", "");
}

/* A FROM inside parentheses in the select list is not the statement's own. */
Test(sql, from_inside_parentheses_in_the_select_list_is_skipped) {
  expect_summary("SELECT (SELECT max(x) FROM b) AS m, a FROM t", "SELECT", "t");
  expect_summary("SELECT EXTRACT(YEAR FROM created) FROM events", "SELECT", "events");
  expect_summary("SELECT x FROM (t1 JOIN t2 ON t1.id = t2.id)", "SELECT", "t1");
  /* a CTE: its name is no table; the first table read is inside it, as before */
  expect_summary("WITH recent AS (SELECT id FROM orders WHERE ts > ?) SELECT count(*) FROM recent", "WITH",
                 "orders");
}

Test(sql, quoted_tables_are_named_without_their_quotes) {
  expect_summary("SELECT \"order\".id FROM \"order\"", "SELECT", "order");
  expect_summary("SELECT `order`.id FROM `order` WHERE `order`.id = ?", "SELECT", "order");
  expect_summary("SELECT [order].id FROM [order]", "SELECT", "order");
  expect_summary("INSERT INTO \"order\" (id) VALUES (?)", "INSERT", "order");
  expect_summary("UPDATE `order` SET x = ?", "UPDATE", "order");
  expect_summary("DELETE FROM [dbo].[order] WHERE id = ?", "DELETE", "dbo.order");
  expect_summary("SELECT * FROM \"public\".\"order\"", "SELECT", "public.order");
  expect_summary("SELECT * FROM public.\"order\" AS o", "SELECT", "public.order");
  expect_summary("SELECT * FROM public.order", "SELECT", "public.order");
  expect_summary("SELECT * FROM \"My Table\"", "SELECT", "My Table");
  expect_summary("SELECT * FROM \"from\" WHERE \"into\" = ?", "SELECT", "from");
  expect_summary("SELECT \"FROM x\" FROM y", "SELECT", "y");
}

/* Cut-off and unterminated quoting never reads past the input. */
Test(sql, unterminated_quotes_and_cut_names_stay_in_bounds) {
  const char *cases[] = {"SELECT * FROM \"", "SELECT * FROM \"ord", "SELECT * FROM [", "SELECT * FROM a.",
                         "SELECT * FROM \"a\".\"", "SELECT * FROM (", "SELECT * FROM ( SELECT", "SELECT * FROM `a`.`b"};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n = strlen(cases[i]);
    char *exact = malloc(n); /* exact size: ASan/valgrind see any overrun */
    memcpy(exact, cases[i], n);
    const char *op, *table;
    size_t op_len, table_len;
    tgo__sql_summary(exact, n, &op, &op_len, &table, &table_len);
    cr_expect(op_len == 6);
    if (table && table >= exact && table < exact + n)
      cr_expect(table + table_len <= exact + n, "%s", cases[i]);
    free(exact);
  }
  expect_summary("SELECT * FROM \"ord", "SELECT", "ord");
  expect_summary("SELECT * FROM \"", "SELECT", "");
  expect_summary("SELECT * FROM a.", "SELECT", "a");
}

/* Found by tests/fuzz/fuzz_sql.c: an IN list cut short before "null"/"true"
 * made the matcher compare past the end of the input. */
Test(sql, an_in_list_cut_short_is_read_within_bounds) {
  static const char crash[] = "NE\0\0\0\377\377\377\326INTO  IN (1,2INTO 'x' -- T";
  char *copy = malloc(sizeof crash - 1); /* exact size: ASan/valgrind see any overrun */
  memcpy(copy, crash, sizeof crash - 1);
  size_t n = tgo__sql_normalize(copy, sizeof crash - 1, out, sizeof out);
  cr_assert_eq(strlen(out), n);
  const char *tail = "SELECT a FROM t WHERE b IN (1, nu";
  char *exact = malloc(strlen(tail));
  memcpy(exact, tail, strlen(tail));
  tgo__sql_normalize(exact, strlen(tail), out, sizeof out);
  free(exact);
  free(copy);
}

/* Interned strings are never freed: past the table's bound, tgo__intern
 * says no and the caller copies into the span. */
Test(intern, bounded_in_entries_and_then_refuses) {
  char key[64];
  size_t kept = 0;
  for (int i = 0; i < 5000; i++) {
    int n = snprintf(key, sizeof key, "SELECT * FROM t%d WHERE id = ?", i);
    if (tgo__intern(key, (size_t)n))
      kept++;
  }
  cr_assert_eq(kept, 2048, "interned %zu distinct strings", kept);
  cr_assert_not_null(tgo__intern("SELECT * FROM t7 WHERE id = ?", 29), "what is in stays found");
}
