/* Exception-text scrubbing: the bind values that SQLAlchemy and databases
 * echo into error messages ("[parameters: ...]", literals in "[SQL: ...]",
 * PostgreSQL's "LINE n:" echo and "DETAIL:  Key (c)=(v)", "invalid input
 * syntax for type integer: "v"", MySQL's "Duplicate entry 'v'") are masked
 * with '*' in place on the exporter thread as each string is encoded, like
 * PII. The length is kept because the OTLP writer sizes every field before
 * it writes one (and a caret under a "LINE n:" echo still points at the
 * right column). Whole UTF-8 characters are masked: every range starts and
 * ends at an ASCII delimiter. When a shape is cut short (an attribute value
 * limit, a truncated traceback), the rest of its line is masked: dropping
 * context is better than leaking a value. */
#include "tgo-internal.h"

#include <string.h>

static size_t mask(char *p, size_t from, size_t to) {
  if (to <= from)
    return 0;
  memset(p + from, '*', to - from);
  return 1;
}

static size_t eol(const char *p, size_t i, size_t n) {
  const char *nl = i < n ? memchr(p + i, '\n', n - i) : NULL;
  return nl ? (size_t)(nl - p) : n;
}

/* memmem for the short needles here: glibc's memmem sets up a 256-entry
 * shift table per call, which cost more than the whole scan of a typical
 * attribute value; memchr on the first byte (vectorised) is much cheaper. */
static inline const char *find_n(const char *p, size_t from, size_t to, const char *needle, size_t m) {
  while (to > from && to - from >= m) {
    const char *c = memchr(p + from, needle[0], to - from - m + 1);
    if (!c)
      return NULL;
    if (!memcmp(c + 1, needle + 1, m - 1))
      return c;
    from = (size_t)(c - p) + 1;
  }
  return NULL;
}
#define find(p, from, to, lit) find_n(p, from, to, lit, sizeof lit - 1)

/* The end of a one-line shape: a newline, or an escaped one ("\\n") in a
 * message that went through repr(). */
static size_t shape_end(const char *p, size_t i, size_t n) {
  size_t to = eol(p, i, n);
  const char *esc = find(p, i, to, "\\n");
  return esc ? (size_t)(esc - p) : to;
}

/* The start of the line holding i, looking back no further than floor. */
static size_t line_start(const char *p, size_t i, size_t floor) {
  while (i > floor && p[i - 1] != '\n')
    i--;
  return i;
}

/* The last occurrence of c in [from, to), or to. */
static size_t last_of(const char *p, size_t from, size_t to, char c) {
  for (size_t i = to; i > from; i--)
    if (p[i - 1] == c)
      return i - 1;
  return to;
}

static int at(const char *p, size_t i, size_t n, const char *s) {
  size_t m = strlen(s);
  return i + m <= n && !memcmp(p + i, s, m);
}

static int ident_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '$' || c >= 0x80;
}

static int delimiter(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ')' || c == ';' || c == ']';
}

/* End of a single-quoted literal whose body starts at i: the closing
 * quote, or to when it is unterminated. '' is a quote inside; a backslash
 * escapes in E'' strings, and in MySQL-style 'it\'s' when the quote it
 * would otherwise close on is not followed by a delimiter. */
static size_t literal_end(const char *p, size_t i, size_t to, int backslash) {
  while (i < to) {
    if (p[i] == '\\' && i + 1 < to) {
      if (backslash || (p[i + 1] == '\'' && i + 2 < to && !delimiter(p[i + 2]) && p[i + 2] != '\'')) {
        i += 2;
        continue;
      }
    }
    if (p[i] == '\'') {
      if (i + 1 < to && p[i + 1] == '\'') {
        i += 2;
        continue;
      }
      return i;
    }
    i++;
  }
  return to;
}

/* Masks the literals of SQL text in [i, to): quoted strings (their body),
 * dollar-quoted bodies and numbers; names, quoted identifiers and bind
 * placeholders (?, $1, :name, %(name)s) stay. */
static size_t mask_sql(char *p, size_t i, size_t to) {
  size_t found = 0;
  while (i < to) {
    unsigned char c = (unsigned char)p[i];
    int prefixed = (c == 'E' || c == 'e' || c == 'N' || c == 'n' || c == 'X' || c == 'x' || c == 'B' ||
                    c == 'b') && i + 1 < to && p[i + 1] == '\'' && (i == 0 || !ident_char((unsigned char)p[i - 1]));
    if (c == '\'' || prefixed) {
      size_t body = i + (prefixed ? 2 : 1);
      size_t end = literal_end(p, body, to, c == 'E' || c == 'e');
      found += mask(p, body, end);
      i = end + 1;
    } else if (c == '$' && i + 1 < to && (p[i + 1] == '$' || (ident_char((unsigned char)p[i + 1]) &&
                                                            !(p[i + 1] >= '0' && p[i + 1] <= '9')))) {
      size_t t = i + 1;
      while (t < to && p[t] != '$' && ident_char((unsigned char)p[t]))
        t++;
      if (t < to && p[t] == '$') {
        size_t tag = t - i + 1;
        size_t end = to;
        for (const char *d = memchr(p + t + 1, '$', to - t - 1); d; d = memchr(d + 1, '$', to - (size_t)(d + 1 - p)))
          if ((size_t)(d - p) + tag <= to && !memcmp(d, p + i, tag)) {
            end = (size_t)(d - p);
            break;
          }
        found += mask(p, t + 1, end);
        i = end + tag;
      } else {
        i = t;
      }
    } else if (c == '"' || c == '`') {
      const char *close = memchr(p + i + 1, c, to - i - 1);
      i = close ? (size_t)(close - p) + 1 : i + 1; /* an unclosed quote is no name */
    } else if (c >= '0' && c <= '9') {
      size_t j = i;
      while (j < to && (ident_char((unsigned char)p[j]) || p[j] == '.' ||
                        ((p[j] == '-' || p[j] == '+') && (p[j - 1] == 'e' || p[j - 1] == 'E'))))
        j++;
      found += mask(p, i, j);
      i = j;
    } else if (ident_char(c) || c == ':' || c == '%') {
      i++;
      while (i < to && ident_char((unsigned char)p[i]))
        i++;
    } else {
      i++;
    }
  }
  return found;
}

/* Whether SQLAlchemy's next part of the message starts at the "]" at e:
 * after a newline, or after an escaped one ("\\n") when the message went
 * through repr(), as in Celery's retry reason. */
static int part_ends_at(const char *p, size_t e, size_t n, int with_parameters) {
  size_t k = e + 1;
  if (at(p, k, n, "\n"))
    k += 1;
  else if (at(p, k, n, "\\n"))
    k += 2;
  else
    return 0;
  return at(p, k, n, "(Background on this error at: ") ||
         (with_parameters && (at(p, k, n, "[parameters: ") || at(p, k, n, "[SQL parameters hidden")));
}

/* "[parameters: ...]": SQLAlchemy's repr of the bind values is one line
 * (reprs escape newlines), followed by "\n(Background on ...)" or nothing.
 * In a repr()'d message the line runs on: there the part ends at an
 * escaped "\\n(Background", or the rest of the line goes. */
static size_t parameters(char *p, size_t q, size_t n, size_t *next) {
  size_t from = q + 1 + (q + 1 < n && p[q + 1] == ' ');
  size_t to = eol(p, from, n);
  int raw = to < n ? at(p, to + 1, n, "(Background on this error at: ") : to > from && p[to - 1] == ']';
  if (!raw) {
    for (const char *b = memchr(p + from, ']', to - from); b; b = memchr(b + 1, ']', to - (size_t)(b + 1 - p)))
      if (part_ends_at(p, (size_t)(b - p), n, 0)) {
        to = (size_t)(b - p) + 1;
        break;
      }
  }
  *next = to;
  if (to > from && p[to - 1] == ']')
    to--;
  return mask(p, from, to);
}

/* "[SQL: ...]": the statement (possibly many lines) ends at the first "]"
 * where SQLAlchemy appends its next part; literals in it are masked. A
 * single forward scan, so many statements in one text stay linear. */
static size_t statement(char *p, size_t q, size_t n, size_t *next) {
  size_t from = q + 1, to = n;
  for (const char *b = memchr(p + from, ']', n - from); b; b = memchr(b + 1, ']', n - (size_t)(b + 1 - p)))
    if (part_ends_at(p, (size_t)(b - p), n, 1)) {
      to = (size_t)(b - p);
      break;
    }
  if (to == n) { /* the message's last part: up to its closing bracket */
    size_t last = n;
    while (last > from && (p[last - 1] == '\n' || p[last - 1] == ' '))
      last--;
    if (last > from && p[last - 1] == ']')
      to = last - 1;
  }
  *next = to;
  return mask_sql(p, from, to);
}

/* "LINE 3: <statement line>": PostgreSQL's echo of the failing line. When
 * it starts with "..." the line was cut and may start inside a literal, so
 * all of it goes. */
static size_t echoed_line(char *p, size_t q, size_t n, size_t *next) {
  size_t from = q + 1 + (q + 1 < n && p[q + 1] == ' ');
  size_t to = shape_end(p, from, n);
  *next = to;
  if (at(p, from, to, "..."))
    return mask(p, from + 3, to);
  return mask_sql(p, from, to);
}

/* "DETAIL:  Key (c)=(v) already exists.", "Failing row contains (...).",
 * and the quoted token of other details ("Token "v" is invalid."). */
static size_t detail(char *p, size_t q, size_t n, size_t *next) {
  size_t from = q + 1, to = eol(p, from, n);
  *next = to;
  const char *v = find(p, from, to, ")=(");
  if (v && find(p, from, (size_t)(v - p), "Key (")) {
    size_t start = (size_t)(v - p) + 3;
    return mask(p, start, last_of(p, start, to, ')'));
  }
  const char *row = find(p, from, to, "Failing row contains (");
  if (row) {
    size_t start = (size_t)(row - p) + 22;
    return mask(p, start, last_of(p, start, to, ')'));
  }
  const char *open = memchr(p + from, '"', to - from);
  if (!open)
    return 0;
  size_t start = (size_t)(open - p) + 1;
  return mask(p, start, last_of(p, start, to, '"'));
}

/* "CONTEXT:  unnamed portal parameter $1 = '...'": server-side binds. */
static size_t context(char *p, size_t q, size_t n, size_t *next) {
  size_t to = shape_end(p, q + 1, n);
  *next = to;
  return mask_sql(p, q + 1, to);
}

/* ': "v"' at the end of "invalid input syntax for type integer: "v"" and
 * its kin (invalid input value, malformed array literal, out of range).
 * Whether a line has one of those phrases is decided once per line, so a
 * long JSON line full of ': "' costs one pass. */
typedef struct {
  size_t end; /* the line decided on ends here; 0: none yet */
  int hot;
} line_memo;

static size_t quoted_value(char *p, size_t q, size_t n, size_t *next, line_memo *memo) {
  *next = q + 1;
  if (!memo->end || q > memo->end) {
    size_t ls = line_start(p, q, 0), to = eol(p, q, n);
    memo->end = to;
    memo->hot = find(p, ls, to, "invalid input") || find(p, ls, to, "malformed ") ||
                find(p, ls, to, "out of range");
  }
  if (!memo->hot)
    return 0;
  size_t start = q + 3, to = shape_end(p, start, n);
  *next = to;
  return mask(p, start, last_of(p, start, to, '"'));
}

/* "LINE 12" ends at q. */
static int line_number_before(const char *p, size_t q) {
  size_t d = q;
  while (d > 0 && p[d - 1] >= '0' && p[d - 1] <= '9')
    d--;
  return d < q && d >= 5 && !memcmp(p + d - 5, "LINE ", 5);
}

/* Checks the text around each ':' (all PostgreSQL and SQLAlchemy shapes
 * have one), so a string without any costs one memchr pass. */
static size_t scrub_colons(char *p, size_t n) {
  size_t found = 0, i = 0;
  line_memo memo = {0, 0};
  const char *c;
  while (i < n && (c = memchr(p + i, ':', n - i))) {
    size_t q = (size_t)(c - p), next = q + 1;
    if (q >= 11 && !memcmp(p + q - 11, "[parameters", 11)) {
      found += parameters(p, q, n, &next);
    } else if (q >= 4 && !memcmp(p + q - 4, "[SQL", 4)) {
      found += statement(p, q, n, &next);
    } else if (q >= 6 && !memcmp(p + q - 6, "DETAIL", 6)) {
      found += detail(p, q, n, &next);
    } else if (q >= 7 && !memcmp(p + q - 7, "CONTEXT", 7)) {
      found += context(p, q, n, &next);
    } else if (line_number_before(p, q)) {
      found += echoed_line(p, q, n, &next);
    } else if (q + 2 < n && p[q + 1] == ' ' && p[q + 2] == '"') {
      found += quoted_value(p, q, n, &next, &memo);
    }
    i = next > q ? next : q + 1;
  }
  return found;
}

/* Shapes without a colon of their own: PostgreSQL's 'value "v" is out of
 * range for type integer' and MySQL's "Duplicate entry 'v' for key 'k'". */
static size_t scrub_phrases(char *p, size_t n) {
  static const char range[] = "\" is out of range", value[] = "value \"";
  static const char dup[] = "Duplicate entry '", key[] = "' for key";
  size_t found = 0, done = 0;
  for (const char *r; (r = find(p, done, n, range));) {
    size_t end = (size_t)(r - p), from = line_start(p, end, done);
    const char *v = NULL;
    for (const char *s = find(p, from, end, value); s; s = find(p, (size_t)(s - p) + 1, end, value))
      v = s;
    if (v)
      found += mask(p, (size_t)(v - p) + sizeof value - 1, end);
    done = end + 1;
  }
  done = 0;
  for (const char *d; (d = find(p, done, n, dup));) {
    size_t start = (size_t)(d - p) + sizeof dup - 1, to = eol(p, start, n);
    const char *k = find(p, start, to, key);
    found += mask(p, start, k ? (size_t)(k - p) : to);
    done = k ? (size_t)(k - p) : to;
  }
  return found;
}

/* No shape fits in fewer bytes than "[parameters: x]", and most exported
 * strings (methods, routes, addresses) are that short. */
enum { MIN_SHAPE = 15 };

size_t tgo__scrub(char *p, size_t n) {
  if (n < MIN_SHAPE)
    return 0;
  return scrub_colons(p, n) + scrub_phrases(p, n);
}
