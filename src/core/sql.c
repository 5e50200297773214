/* SQL normalisation for db.query.text: every literal and bind placeholder
 * becomes '?', IN lists collapse to IN (?), comments go and whitespace
 * folds, so no parameter value can leave the process and one statement
 * shape groups as one. A single pass over the bytes, bounded output, no
 * allocation; malformed SQL (unterminated strings or comments) degrades to
 * '?' or nothing, never to reading past the input. */
#include "tgo-internal.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

typedef struct {
  char *out;
  size_t cap, len;
} writer;

static void put(writer *w, char c) {
  if (w->len + 1 < w->cap)
    w->out[w->len++] = c ? c : ' '; /* a NUL would cut the text short downstream */
}

static void put_space(writer *w) {
  if (w->len && w->out[w->len - 1] != ' ' && w->out[w->len - 1] != '(')
    put(w, ' ');
}

static int ident_char(unsigned char c) { return isalnum(c) || c == '_' || c == '$' || c >= 0x80; }

/* The last word written, to recognise "IN" before a list. */
static int last_word_is(const writer *w, const char *word) {
  size_t n = strlen(word), end = w->len;
  while (end && w->out[end - 1] == ' ')
    end--;
  if (end < n || strncasecmp(w->out + end - n, word, n))
    return 0;
  return end == n || !ident_char((unsigned char)w->out[end - n - 1]);
}

/* After an opening parenthesis that follows IN: if everything up to the
 * matching ')' is literals, placeholders, commas and spaces, skip it. */
static size_t in_list_end(const char *s, size_t i, size_t n) {
  size_t j = i;
  int items = 0;
  while (j < n) {
    unsigned char c = (unsigned char)s[j];
    if (c == ')')
      return items ? j : 0;
    if (isspace(c) || c == ',') {
      j++;
    } else if (c == '\'') {
      j++;
      while (j < n && !(s[j] == '\'' && (j + 1 >= n || s[j + 1] != '\'')))
        j += s[j] == '\'' ? 2 : 1;
      j++;
      items++;
    } else if (isdigit(c) || c == '-' || c == '+' || c == '.') {
      while (j < n && (isalnum((unsigned char)s[j]) || s[j] == '.' || s[j] == '-' || s[j] == '+'))
        j++;
      items++;
    } else if (c == ':' && j + 1 < n && s[j + 1] == ':') {
      if (!items)
        return 0;
      j += 2; /* a cast on the item before: $1::VARCHAR */
      while (j < n && (ident_char((unsigned char)s[j]) || s[j] == '[' || s[j] == ']'))
        j++;
    } else if (c == '?' || c == '%' || c == ':' || c == '$') {
      j++;
      if (c == '%' && j < n && s[j] == '(') {
        while (j < n && s[j] != ')')
          j++;
        j++;
      }
      while (j < n && ident_char((unsigned char)s[j]))
        j++;
      items++;
    } else if (j + 4 <= n && (!strncasecmp(s + j, "null", 4) || !strncasecmp(s + j, "true", 4))) {
      j += 4;
      items++;
    } else if (j + 5 <= n && !strncasecmp(s + j, "false", 5)) {
      j += 5;
      items++;
    } else {
      return 0; /* a subquery or expression: keep it */
    }
  }
  return 0;
}

size_t tgo__sql_normalize(const char *s, size_t n, char *out, size_t cap) {
  writer w = {out, cap, 0};
  if (!cap)
    return 0;
  size_t i = 0, values_end = 0; /* the ')' closing a VALUES row, when all literals */
  while (i < n) {
    unsigned char c = (unsigned char)s[i];
    if (isspace(c)) {
      put_space(&w);
      while (i < n && isspace((unsigned char)s[i]))
        i++;
      continue;
    }
    if (c == '-' && i + 1 < n && s[i + 1] == '-') { /* -- comment */
      while (i < n && s[i] != '\n')
        i++;
      continue;
    }
    if (c == '/' && i + 1 < n && s[i + 1] == '*') { /* block comment */
      const char *end = NULL;
      for (size_t j = i + 2; j + 1 < n; j++)
        if (s[j] == '*' && s[j + 1] == '/') {
          end = s + j;
          break;
        }
      i = end ? (size_t)(end - s) + 2 : n;
      put_space(&w);
      continue;
    }
    if (c == '\'' || ((c == 'E' || c == 'e' || c == 'N' || c == 'n' || c == 'X' || c == 'x' ||
                       c == 'B' || c == 'b') && i + 1 < n && s[i + 1] == '\'' &&
                      (i == 0 || !ident_char((unsigned char)s[i - 1])))) {
      int backslash = c == 'E' || c == 'e';
      i += c == '\'' ? 1 : 2;
      while (i < n) {
        if (backslash && s[i] == '\\') {
          i += 2;
          continue;
        }
        if (s[i] == '\'') {
          if (i + 1 < n && s[i + 1] == '\'') {
            i += 2;
            continue;
          }
          break;
        }
        i++;
      }
      i++;
      put(&w, '?');
      continue;
    }
    if (c == '$' && i + 1 < n && (s[i + 1] == '$' || isalpha((unsigned char)s[i + 1]) || s[i + 1] == '_')) {
      /* $tag$ ... $tag$ dollar quoting */
      size_t t = i + 1;
      while (t < n && s[t] != '$' && ident_char((unsigned char)s[t]))
        t++;
      if (t < n && s[t] == '$') {
        size_t tag_len = t - i + 1;
        size_t j = t + 1;
        while (j + tag_len <= n && memcmp(s + j, s + i, tag_len))
          j++;
        i = j + tag_len <= n ? j + tag_len : n;
        put(&w, '?');
        continue;
      }
    }
    if (c == '"' || c == '`' || c == '[') { /* quoted identifier: kept */
      char close = c == '[' ? ']' : (char)c;
      put(&w, (char)c);
      i++;
      while (i < n && s[i] != close)
        put(&w, s[i++]);
      if (i < n)
        put(&w, s[i++]);
      continue;
    }
    if (isdigit(c) || (c == '.' && i + 1 < n && isdigit((unsigned char)s[i + 1]))) {
      if (i > 0 && ident_char((unsigned char)s[i - 1])) { /* part of a name: t1 */
        put(&w, (char)c);
        i++;
        continue;
      }
      i++;
      while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '.' ||
                       ((s[i] == '-' || s[i] == '+') && (s[i - 1] == 'e' || s[i - 1] == 'E'))))
        i++;
      if (w.len && (w.out[w.len - 1] == '-' || w.out[w.len - 1] == '+') &&
          (w.len == 1 || strchr("(=<>, ", w.out[w.len - 2])))
        w.len--; /* a sign belongs to the literal */
      put(&w, '?');
      continue;
    }
    if (c == '?' || (c == '$' && i + 1 < n && isdigit((unsigned char)s[i + 1]))) {
      i++;
      while (i < n && isdigit((unsigned char)s[i]))
        i++;
      put(&w, '?');
      continue;
    }
    if (c == '%' && i + 1 < n && (s[i + 1] == 's' || s[i + 1] == '(')) { /* pyformat */
      i++;
      if (s[i] == '(') {
        while (i < n && s[i] != ')')
          i++;
        i++;
      }
      if (i < n && isalpha((unsigned char)s[i]))
        i++;
      put(&w, '?');
      continue;
    }
    if (c == ':' && i + 1 < n && s[i + 1] == ':') { /* cast */
      put(&w, ':');
      put(&w, ':');
      i += 2;
      continue;
    }
    if (c == ':' && i + 1 < n && (isalpha((unsigned char)s[i + 1]) || s[i + 1] == '_')) {
      i++;
      while (i < n && ident_char((unsigned char)s[i]))
        i++;
      put(&w, '?');
      continue;
    }
    if (c == '(' && last_word_is(&w, "VALUES") && in_list_end(s, i + 1, n))
      values_end = in_list_end(s, i + 1, n); /* its ')' drops the rows after it */
    if (c == ')' && i == values_end) {
      /* Multi-row VALUES (executemany pages, SQLAlchemy's insertmanyvalues
       * batches of a thousand rows) keep their first row only: one shape
       * for any row count, and no text growing with the batch. */
      if (w.len && w.out[w.len - 1] == ' ')
        w.len--;
      put(&w, ')');
      i++;
      for (;;) {
        size_t k = i;
        while (k < n && isspace((unsigned char)s[k]))
          k++;
        if (k >= n || s[k] != ',')
          break;
        k++;
        while (k < n && isspace((unsigned char)s[k]))
          k++;
        size_t end = k < n && s[k] == '(' ? in_list_end(s, k + 1, n) : 0;
        if (!end)
          break;
        i = end + 1;
      }
      continue;
    }
    if (c == '(' && last_word_is(&w, "IN")) {
      size_t end = in_list_end(s, i + 1, n);
      if (end) {
        put_space(&w);
        put(&w, '(');
        put(&w, '?');
        put(&w, ')');
        i = end + 1;
        continue;
      }
    }
    if (ident_char(c)) {
      size_t j = i;
      while (j < n && ident_char((unsigned char)s[j]))
        j++;
      size_t word = j - i;
      if ((word == 4 && !strncasecmp(s + i, "true", 4)) || (word == 5 && !strncasecmp(s + i, "false", 5))) {
        put(&w, '?');
        i = j;
        continue;
      }
      while (i < j)
        put(&w, s[i++]);
      continue;
    }
    if (c == ',' || c == ')') { /* no space before */
      if (w.len && w.out[w.len - 1] == ' ')
        w.len--;
    }
    put(&w, (char)c);
    i++;
  }
  while (w.len && (w.out[w.len - 1] == ' ' || w.out[w.len - 1] == ';'))
    w.len--;
  out[w.len] = '\0';
  return w.len;
}

static const char *skip_space(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '('))
    p++;
  return p;
}

static const char *word_end(const char *p, const char *end) {
  while (p < end && (ident_char((unsigned char)*p) || *p == '.' || *p == '"' || *p == '`'))
    p++;
  return p;
}

/* The closing character of a quoted identifier ("x", `x`, [x]), or 0 when p
 * does not open one. */
static char quote_closer(char c) { return c == '"' ? '"' : c == '`' ? '`' : c == '[' ? ']' : 0; }

/* Past the quoted identifier opening at p (to end when it is unterminated). */
static const char *skip_quoted(const char *p, const char *end) {
  const char *q = memchr(p + 1, quote_closer(*p), (size_t)(end - p - 1));
  return q ? q + 1 : end;
}

static int keyword_at(const char *sql, const char *q, const char *end, const char *kw) {
  size_t n = strlen(kw);
  return q + n < end && !strncasecmp(q, kw, n) && (q[n] == ' ' || q[n] == '(') && q > sql &&
         (q[-1] == ' ' || q[-1] == ')');
}

/* Just past the FROM or INTO that names the statement's own table: the
 * first one outside parentheses, so FROM inside EXTRACT(x FROM y) or a
 * subquery in the select list does not count; the first one anywhere when
 * no keyword sits at the outer level or when any_depth is set (WITH: the
 * outer FROM names a CTE, the first table read is inside it). Quoted
 * identifiers are skipped whole. */
static const char *find_anchor(const char *sql, const char *p, const char *end, int any_depth) {
  const char *nested = NULL;
  int depth = 0;
  while (p < end) {
    if (quote_closer(*p)) {
      p = skip_quoted(p, end);
      continue;
    }
    if (*p == '(') {
      depth++;
    } else if (*p == ')') {
      depth -= depth > 0; /* a subquery we started inside closes: its FROM was found first */
    } else if (keyword_at(sql, p, end, "FROM") || keyword_at(sql, p, end, "INTO")) {
      if (!depth || any_depth)
        return p + 4;
      if (!nested)
        nested = p + 4;
    }
    p++;
  }
  return nested;
}

/* Dotted names whose parts were quoted are rebuilt here without the quotes;
 * the result is read before this thread calls tgo__sql_summary again. */
static __thread char unquoted[128];

/* The table name at p: dot-separated parts, each bare or quoted, reported
 * without quotes ("order" and public."order" as order and public.order). */
static void read_name(const char *p, const char *end, const char **name, size_t *name_len) {
  const char *part[8];
  size_t part_len[8], parts = 0;
  int quoted = 0;
  while (p < end && parts < 8) {
    if (quote_closer(*p)) {
      const char *close = memchr(p + 1, quote_closer(*p), (size_t)(end - p - 1));
      part[parts] = p + 1;
      part_len[parts] = (size_t)((close ? close : end) - p - 1);
      p = close ? close + 1 : end;
      quoted = 1;
    } else {
      const char *e = p;
      while (e < end && ident_char((unsigned char)*e))
        e++;
      part[parts] = p;
      part_len[parts] = (size_t)(e - p);
      p = e;
    }
    if (!part_len[parts])
      break;
    parts++;
    if (p + 1 < end && *p == '.')
      p++;
    else
      break;
  }
  *name = NULL;
  *name_len = 0;
  if (!parts)
    return;
  if (parts == 1 || !quoted) { /* one stretch of the input */
    *name = part[0];
    *name_len = (size_t)(part[parts - 1] + part_len[parts - 1] - part[0]);
    return;
  }
  size_t n = 0;
  for (size_t i = 0; i < parts; i++) {
    size_t take = part_len[i];
    if (n + take + 1 >= sizeof unquoted)
      break;
    if (i)
      unquoted[n++] = '.';
    memcpy(unquoted + n, part[i], take);
    n += take;
  }
  *name = unquoted;
  *name_len = n;
}

/* The operation is the first keyword; the collection is the first table
 * after the outer FROM (SELECT, DELETE), INTO (INSERT) or the verb (UPDATE).
 * A derived table (FROM (SELECT ... FROM t) AS anon_1, SQLAlchemy's count
 * and paginate queries) is named after the table it reads. *op points into
 * sql; *table into sql or, for a dotted name with quoted parts, into a
 * per-thread buffer valid until the next call. */
void tgo__sql_summary(const char *sql, size_t len, const char **op, size_t *op_len, const char **table,
                     size_t *table_len) {
  const char *end = sql + len;
  const char *p = skip_space(sql, end);
  const char *e = word_end(p, end);
  *op = p;
  *op_len = (size_t)(e - p);
  *table = NULL;
  *table_len = 0;
  const char *anchor = NULL;
  if (*op_len == 6 && !strncasecmp(p, "UPDATE", 6))
    anchor = e;
  else
    anchor = find_anchor(sql, e, end, *op_len == 4 && !strncasecmp(p, "WITH", 4));
  while (anchor) {
    const char *t = skip_space(anchor, end);
    const char *te = t;
    while (te < end && ident_char((unsigned char)*te))
      te++;
    int paren = t > anchor && memchr(anchor, '(', (size_t)(t - anchor));
    if (paren && te - t == 6 && !strncasecmp(t, "VALUES", 6))
      return; /* rows written inline: no table */
    int derived =
        paren && ((te - t == 6 && !strncasecmp(t, "SELECT", 6)) || (te - t == 4 && !strncasecmp(t, "WITH", 4)));
    if (!derived) {
      read_name(t, end, table, table_len);
      return;
    }
    anchor = find_anchor(sql, te, end, 0);
  }
}
