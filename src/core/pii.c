/* PII masking of exported strings. It runs on the exporter thread while a
 * batch is encoded, over the bytes already written to the payload, so a
 * request pays nothing for it and every string that leaves the process
 * (span names, attribute and event values, status messages) goes through
 * it. Masking keeps the length: each masked character becomes '*', so the
 * encoder's sizes stay right and UTF-8 stays valid.
 *
 * Built in: e-mail addresses, payment card numbers (13-19 digits, Luhn
 * checked so order numbers survive), and phone numbers written the way
 * people write them (+44 20 7946 0958, (555) 123-4567, 555-123-4567).
 * TIGEROPS_PII_PATTERNS adds patterns in a safe subset of POSIX extended
 * regexes (see pattern_is_safe). */
#include "tgo-internal.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATTERNS 16
#define MAX_GROUPS 12

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline int is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static inline int is_alnum(unsigned char c) { return is_digit(c) || is_alpha(c); }
static inline int is_word(unsigned char c) { return is_alnum(c) || c == '_' || c >= 0x80; }
static inline int is_local_part(unsigned char c) {
  return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

/* ---- e-mail -------------------------------------------------------------- */

/* With p[at] == '@': the address around it as [*from, *to), or 0. */
static int email_at(const unsigned char *p, size_t n, size_t at, size_t *from, size_t *to) {
  size_t start = at;
  while (start > 0 && is_local_part(p[start - 1]))
    start--;
  while (start < at && p[start] == '.')
    start++;
  if (start == at)
    return 0;
  if (at + 1 >= n || !is_alnum(p[at + 1]))
    return 0;
  size_t end = at + 1;
  while (end < n && (is_alnum(p[end]) || p[end] == '-' || p[end] == '.'))
    end++;
  while (p[end - 1] == '.' || p[end - 1] == '-')
    end--;
  size_t last_dot = end;
  while (last_dot > at + 1 && p[last_dot - 1] != '.')
    last_dot--;
  if (last_dot <= at + 2 || end - last_dot < 2) /* a label, a dot, a top-level domain */
    return 0;
  for (size_t i = last_dot; i < end; i++)
    if (!is_alpha(p[i]))
      return 0;
  *from = start;
  *to = end;
  return 1;
}

/* ---- digit runs: cards and phones -------------------------------------- */

typedef struct {
  size_t end;          /* one past the last digit */
  int digits;
  int groups[MAX_GROUPS];
  int n_groups;        /* > MAX_GROUPS: too fragmented to be either */
  int plus, parens, seps;
  unsigned sep_kinds;  /* bit per separator character seen */
} digit_run;

enum { SEP_SPACE = 1, SEP_DASH = 2, SEP_DOT = 4, SEP_PAREN = 8 };

static unsigned sep_kind(unsigned char c) {
  switch (c) {
  case ' ': return SEP_SPACE;
  case '-': return SEP_DASH;
  case '.': return SEP_DOT;
  case '(': case ')': return SEP_PAREN;
  }
  return 0;
}

/* Digits with single separators between them (two for ") "), from i.
 * Separators count only once a digit follows them: the '.' ending "card
 * 4111111111111111." is the sentence's, not the number's. */
static void scan_run(const unsigned char *p, size_t n, size_t i, digit_run *r) {
  memset(r, 0, sizeof *r);
  if (p[i] == '+') {
    r->plus = 1;
    i++;
  }
  int in_sep = 0, cur = 0, gap_parens = 0;
  unsigned gap_kinds = 0;
  for (; i < n; i++) {
    unsigned char c = p[i];
    if (is_digit(c)) {
      cur++;
      r->digits++;
      r->end = i + 1;
      r->sep_kinds |= gap_kinds;
      r->seps += in_sep;
      r->parens += gap_parens;
      in_sep = gap_parens = 0;
      gap_kinds = 0;
      continue;
    }
    unsigned k = sep_kind(c);
    if (!k || in_sep >= 2 || (in_sep && !(k == SEP_SPACE && p[i - 1] == ')')))
      break;
    if (k == SEP_PAREN)
      gap_parens++;
    if (cur) {
      if (r->n_groups < MAX_GROUPS)
        r->groups[r->n_groups] = cur;
      r->n_groups++;
      cur = 0;
    }
    gap_kinds |= k;
    in_sep++;
  }
  if (cur) {
    if (r->n_groups < MAX_GROUPS)
      r->groups[r->n_groups] = cur;
    r->n_groups++;
  }
}

/* A '-' or '.' at i that glues the characters before it to a word. */
static inline int joins_word(const unsigned char *p, size_t n, size_t i) {
  return (p[i] == '-' || p[i] == '.') && i + 1 < n && is_word(p[i + 1]);
}

static int luhn_ok(const unsigned char *p, size_t from, size_t to) {
  int sum = 0, double_it = 0;
  for (size_t i = to; i-- > from;) {
    if (!is_digit(p[i]))
      continue;
    int d = p[i] - '0';
    if (double_it && (d *= 2) > 9)
      d -= 9;
    sum += d;
    double_it = !double_it;
  }
  return sum % 10 == 0;
}

static int is_card(const unsigned char *p, size_t from, const digit_run *r) {
  return !r->plus && !r->parens && r->digits >= 13 && r->digits <= 19 &&
         !(r->sep_kinds & ~(unsigned)(SEP_SPACE | SEP_DASH)) && luhn_ok(p, from, r->end);
}

static int groups_are(const digit_run *r, const int *want, int n) {
  if (r->n_groups != n)
    return 0;
  for (int i = 0; i < n; i++)
    if (r->groups[i] != want[i])
      return 0;
  return 1;
}

static int is_phone(const digit_run *r) {
  if (r->plus) /* international: +CC then 6-14 more digits */
    return r->digits >= 7 && r->digits <= 15 && r->n_groups <= MAX_GROUPS;
  if (!r->seps) /* a bare run of digits is an id as often as a phone */
    return 0;
  static const int nanp[] = {3, 3, 4}, nanp1[] = {1, 3, 3, 4};
  return groups_are(r, nanp, 3) || groups_are(r, nanp1, 4);
}

static void mask_range(unsigned char *p, size_t from, size_t to, int digits_only) {
  for (size_t i = from; i < to; i++)
    if (digits_only ? is_digit(p[i]) : is_alnum(p[i]))
      p[i] = '*';
}

/* Bytes where something maskable can start: the scan skips the rest with
 * one table load per byte. */
static const unsigned char starts_candidate[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1, ['@'] = 1, ['+'] = 1, ['('] = 1,
};

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static inline uint64_t zero_bytes(uint64_t v) { return (v - ONES) & ~v & HIGHS; }

/* 0x80 in each byte of w that is an ASCII digit, exactly (each byte's low 7
 * bits plus the offsets below never carry into the next byte). */
static inline uint64_t digit_bytes(uint64_t w) {
  uint64_t low = w & ~HIGHS;
  uint64_t ge0 = low + ONES * (0x80 - '0');     /* 0x80 set: byte >= '0' */
  uint64_t gt9 = low + ONES * (0x80 - '9' - 1); /* 0x80 set: byte > '9' */
  return ge0 & ~gt9 & ~w & HIGHS;               /* ~w: ASCII bytes only */
}

/* Whether 8 bytes may hold a candidate (a digit, '@', '+' or '('): exact
 * for "none", so the scan skips such words whole, 8 bytes for the price of
 * about two. Bytes >= 0x80 are never candidates. */
static inline int word_may_start(uint64_t w) {
  return (digit_bytes(w) | zero_bytes(w ^ ONES * '@') | zero_bytes(w ^ ONES * '+') | zero_bytes(w ^ ONES * '(')) != 0;
}

/* Whether p may hold something the scan below masks. Each needs an '@'
 * (an e-mail), a '+' and 7+ digits (an international phone) or 10+ digits
 * (a NANP phone, 3-3-4 or 1-3-3-4; a card, 13+): a superset, so skipping
 * the rest changes nothing. Most exported strings (addresses, versions,
 * paths, ids; a dotted IPv4 address with fewer than 10 digits) pass none:
 * one pass of word tests instead of a scan that stops at every digit. */
/* Digits are counted by a multiply (each digit byte's flag moved to its low
 * bit, summed into the top byte): __builtin_popcountll is a libgcc call
 * on the baseline x86-64 this is built for. */
static int may_hold_builtin(const unsigned char *p, size_t n) {
  int digits = 0;
  size_t i = 0;
  for (uint64_t w; i + 8 <= n; i += 8) {
    memcpy(&w, p + i, 8);
    if (zero_bytes(w ^ ONES * '@') || (digits += (int)(((digit_bytes(w) >> 7) * ONES) >> 56)) >= 10)
      return 1;
  }
  for (; i < n; i++)
    if (p[i] == '@' || (is_digit(p[i]) && ++digits >= 10))
      return 1;
  /* 7 to 9 digits make a phone only after a '+': looked for only then. */
  return digits >= 7 && memchr(p, '+', n) != NULL;
}

/* The scan alone, without the pre-check (tests compare the two). */
size_t tgo__pii_scan_builtin(unsigned char *p, size_t n) {
  size_t found = 0;
  for (size_t i = 0; i < n;) {
    for (uint64_t w; i + 8 <= n && (memcpy(&w, p + i, 8), !word_may_start(w));)
      i += 8;
    while (i < n && !starts_candidate[p[i]])
      i++;
    if (i == n)
      break;
    unsigned char c = p[i];
    if (c == '@') {
      size_t from, to;
      if (email_at(p, n, i, &from, &to)) {
        mask_range(p, from, to, 0);
        found++;
        i = to;
        continue;
      }
      i++;
      continue;
    }
    int starts_run = is_digit(c) || ((c == '+' || c == '(') && i + 1 < n && is_digit(p[i + 1]));
    /* After "word-" or "word." the digits continue an identifier: a UUID's
     * last groups (a Celery task id) can read as a Luhn-valid card. */
    int continues_id = i > 1 && (p[i - 1] == '-' || p[i - 1] == '.') && is_word(p[i - 2]);
    if (!starts_run || continues_id || (i > 0 && is_word(p[i - 1]))) {
      i++;
      continue;
    }
    digit_run r;
    scan_run(p, n, i, &r);
    /* Part of a word or id, skipped whole: digits running into letters, or
     * into "-word"/".word", as a UUID whose first groups are all digits
     * ("26386306-1581-4860-aec5-...": 16 digits, Luhn-valid one time in
     * ten). */
    if (r.end < n && (is_word(p[r.end]) || joins_word(p, n, r.end))) {
      i = r.end;
      while (i < n && (is_word(p[i]) || joins_word(p, n, i)))
        i++;
      continue;
    }
    if (is_card(p, i, &r) || is_phone(&r)) {
      mask_range(p, i, r.end, 1);
      found++;
    }
    i = r.end > i ? r.end : i + 1;
  }
  return found;
}

static size_t mask_builtin(unsigned char *p, size_t n) {
  if (n < 6 || !may_hold_builtin(p, n)) /* "a@b.io" is the shortest thing to find */
    return 0;
  return tgo__pii_scan_builtin(p, n);
}

/* ---- configured patterns ------------------------------------------------ */

static pthread_mutex_t patterns_lock = PTHREAD_MUTEX_INITIALIZER;
static regex_t patterns[MAX_PATTERNS];
static int n_patterns;
static char compiled_from[sizeof tgo__cfg.pii_patterns];
static int masking_on;

/* Past a POSIX bracket expression starting at s ('['): a leading '^' and
 * ']' are literal, [:class:] [.coll.] [=equiv=] are taken whole, and a
 * backslash is an ordinary character. NULL when it never closes. */
static const char *skip_bracket(const char *s) {
  s++;
  if (*s == '^')
    s++;
  if (*s == ']')
    s++;
  for (; *s; s++) {
    if (*s == ']')
      return s + 1;
    if (*s == '[' && (s[1] == ':' || s[1] == '.' || s[1] == '=')) {
      char kind = s[1];
      const char *close = s + 2;
      while (*close && !(close[0] == kind && close[1] == ']'))
        close++;
      if (!*close)
        return NULL;
      s = close + 1;
    }
  }
  return NULL;
}

/* Splits a comma-separated list; a comma inside a bracket expression or
 * {m,n}, or after a backslash, belongs to the pattern. Calls cb per
 * non-empty item; a negative cb result stops with -EINVAL. */
static int split_patterns(const char *list, int (*cb)(const char *pat, void *ud), void *ud) {
  char item[sizeof tgo__cfg.pii_patterns];
  size_t len = 0;
  int count = 0;
  for (const char *s = list;;) {
    const char *piece = s, *next = s + 1;
    if (*s == '[') {
      next = skip_bracket(s);
      if (!next)
        next = s + strlen(s);
    } else if (*s == '{') {
      next = strchr(s, '}');
      next = next ? next + 1 : s + 1;
    } else if (*s == '\\' && s[1]) {
      next = s + 2;
    } else if (!*s || *s == ',') {
      while (len && item[len - 1] == ' ')
        len--;
      item[len] = '\0';
      if (len && (++count > MAX_PATTERNS || cb(item, ud) < 0))
        return -EINVAL;
      len = 0;
      if (!*s)
        return count;
      s++;
      continue;
    } else if (!len && *s == ' ') {
      s++;
      continue;
    }
    for (; piece < next; piece++)
      if (len + 1 < sizeof item)
        item[len++] = *piece;
    s = next;
  }
}

#define MAX_PATTERN_LEN 256
#define MAX_PATTERN_WEIGHT 128

/* Configured patterns are a safe subset of POSIX extended regexes: atoms
 * (characters, escapes, '.', bracket expressions, anchors), each with at
 * most one quantifier (? * + {m} {m,} {m,n}); no groups, alternation or
 * back-references. glibc's regcomp/regexec otherwise let a short pattern
 * take gigabytes ("(a{1000}){1000}"), overflow the exporter thread's stack
 * ("(a?){800}") or never return (back-references). The total weight, each
 * atom counted as often as it may repeat, bounds the compiled automaton. */
static int pattern_is_safe(const char *pat, const char **why) {
  unsigned long weight = 0;
  int can_repeat = 0;
  for (const char *s = pat; *s;) {
    unsigned long times = 0;
    switch (*s) {
    case '(': case ')': case '|':
      *why = "groups and alternation are not supported (list alternatives as separate patterns)";
      return 0;
    case '\\':
      if (!s[1] || (s[1] >= '1' && s[1] <= '9')) {
        *why = s[1] ? "back-references are not supported" : "a trailing backslash";
        return 0;
      }
      s += 2;
      weight++;
      can_repeat = 1;
      continue;
    case '[':
      s = skip_bracket(s);
      if (!s) {
        *why = "an unclosed bracket expression";
        return 0;
      }
      weight++;
      can_repeat = 1;
      continue;
    case '*': case '+': case '?':
      times = 2;
      s++;
      break;
    case '{': {
      char *end;
      unsigned long lo = strtoul(s + 1, &end, 10), hi = lo;
      if (end == s + 1) {
        *why = "'{' must start a count {m}, {m,} or {m,n}";
        return 0;
      }
      if (*end == ',') {
        hi = end[1] == '}' ? lo + 1 : strtoul(end + 1, &end, 10);
        if (end[0] == ',')
          end++;
      }
      if (*end != '}' || hi < lo) {
        *why = "a malformed count";
        return 0;
      }
      times = hi > 1 ? hi : 1;
      s = end + 1;
      break;
    }
    default:
      weight += *s != '^' && *s != '$';
      can_repeat = *s != '^' && *s != '$';
      s++;
      continue;
    }
    if (!can_repeat) {
      *why = "a quantifier must follow a single character, escape or bracket expression";
      return 0;
    }
    weight += times - 1; /* the atom already counted once */
    can_repeat = 0;
    if (weight > MAX_PATTERN_WEIGHT) {
      *why = "it repeats too much";
      return 0;
    }
  }
  if (weight > MAX_PATTERN_WEIGHT) {
    *why = "it is too long";
    return 0;
  }
  return 1;
}

static int check_one(const char *pat, void *ud) {
  (void)ud;
  const char *why = "it is longer than 256 characters";
  if (strlen(pat) > MAX_PATTERN_LEN || !pattern_is_safe(pat, &why)) {
    tgo__log(TGO_LOG_WARN, "TIGEROPS_PII_PATTERNS: pattern \"%.60s\" refused: %s", pat, why);
    return -EINVAL;
  }
  regex_t re;
  int rc = regcomp(&re, pat, REG_EXTENDED);
  if (rc) {
    char reason[128];
    regerror(rc, &re, reason, sizeof reason);
    tgo__log(TGO_LOG_WARN, "TIGEROPS_PII_PATTERNS: pattern \"%s\" is not a valid extended regex (%s)",
             pat, reason);
    return -EINVAL;
  }
  regfree(&re);
  return 0;
}

int tgo__pii_patterns_check(const char *list) {
  int n = split_patterns(list, check_one, NULL);
  if (n > MAX_PATTERNS)
    tgo__log(TGO_LOG_WARN, "TIGEROPS_PII_PATTERNS: at most %d patterns", MAX_PATTERNS);
  return n < 0 ? n : 0;
}

/* The configured list passed check_one when it was set. */
static int compile_one(const char *pat, void *ud) {
  (void)ud;
  if (n_patterns < MAX_PATTERNS && !regcomp(&patterns[n_patterns], pat, REG_EXTENDED))
    n_patterns++;
  return 0;
}

static unsigned generation = 1;
static int masking_was_on = -1;
unsigned tgo__pii_generation;

void tgo__pii_begin(void) {
  pthread_mutex_lock(&patterns_lock);
  pthread_mutex_lock(&tgo__cfg_lock);
  masking_on = tgo__cfg.pii_masking;
  if (masking_on != masking_was_on) {
    masking_was_on = masking_on;
    generation++;
  }
  if (strcmp(compiled_from, tgo__cfg.pii_patterns)) {
    generation++;
    for (int i = 0; i < n_patterns; i++)
      regfree(&patterns[i]);
    n_patterns = 0;
    memcpy(compiled_from, tgo__cfg.pii_patterns, sizeof compiled_from);
    split_patterns(compiled_from, compile_one, NULL);
  }
  pthread_mutex_unlock(&tgo__cfg_lock);
  tgo__pii_generation = masking_on ? generation : 0;
}

void tgo__pii_end(void) {
  masking_on = 0;
  tgo__pii_generation = 0;
  pthread_mutex_unlock(&patterns_lock);
}

/* regexec wants a terminated string even with REG_STARTEND (sanitizers
 * check it with strlen), and payload bytes are not terminated: match on a
 * terminated copy, mask the original at the same offsets. */
static char *scratch;
static size_t scratch_cap;

static size_t mask_patterns(unsigned char *p, size_t n) {
  if (n + 1 > scratch_cap) {
    size_t cap = n + 1 > 4096 ? n + 1 : 4096;
    char *grown = realloc(scratch, cap);
    if (!grown)
      return 0;
    scratch = grown;
    scratch_cap = cap;
  }
  memcpy(scratch, p, n);
  scratch[n] = '\0';
  size_t found = 0;
  for (int k = 0; k < n_patterns; k++) {
    size_t at = 0;
    while (at < n) {
      regmatch_t m = {.rm_so = (regoff_t)at, .rm_eo = (regoff_t)n};
      if (regexec(&patterns[k], scratch, 1, &m, REG_STARTEND | (at ? REG_NOTBOL : 0)))
        break;
      size_t from = (size_t)m.rm_so, to = (size_t)m.rm_eo;
      if (from >= n) /* an empty match at the end */
        break;
      /* Whole UTF-8 characters, so the masked string stays valid. */
      while (from > 0 && (p[from] & 0xC0) == 0x80)
        from--;
      while (to < n && (p[to] & 0xC0) == 0x80)
        to++;
      if (to > from) {
        memset(p + from, '*', to - from);
        found++;
        at = to;
      } else {
        at = from + 1;
      }
    }
  }
  return found;
}

size_t tgo__pii_mask_now(char *p, size_t n) {
  if (!masking_on || !n)
    return 0;
  unsigned char *u = (unsigned char *)p;
  return mask_builtin(u, n) + (n_patterns ? mask_patterns(u, n) : 0);
}

size_t tgo__pii_mask(char *p, size_t n) {
  tgo__pii_begin();
  size_t found = tgo__pii_mask_now(p, n);
  tgo__pii_end();
  return found;
}

/* The exporter thread may have been masking at fork, holding our lock and
 * the lock glibc's regexec keeps inside each compiled regex. Waiting for it
 * in the parent could stall a fork for a whole batch, so the child instead
 * starts over: its lock free, and the compiled patterns (and the scratch
 * buffer) abandoned, not freed, since they may be mid-use; the first batch
 * compiles them again. A few kilobytes per forked child. */
void tgo__pii_fork_child(void) {
  pthread_mutex_init(&patterns_lock, NULL);
  masking_on = 0;
  tgo__pii_generation = 0;
  n_patterns = 0;
  memset(patterns, 0, sizeof patterns);
  compiled_from[0] = '\1'; /* never a configured value: forces a recompile (and a new generation) */
  compiled_from[1] = '\0';
  scratch = NULL;
  scratch_cap = 0;
}
