/* PII masking: what is masked, what is left alone, and the length kept. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tgo-internal.h"

static void setup(void) {
  setenv("TIGEROPS_EXPORTER", "none", 1);
  cr_assert_eq(tgo_init(), 0);
  tgo__cfg.pii_masking = 1;
}

TestSuite(pii, .init = setup);

static void expect(const char *in, const char *want) {
  char buf[512];
  size_t n = strlen(in);
  memcpy(buf, in, n + 1);
  tgo__pii_mask(buf, n);
  cr_assert_str_eq(buf, want, "masking \"%s\"", in);
}

static void untouched(const char *in) { expect(in, in); }

Test(pii, emails_are_masked_keeping_their_shape) {
  expect("user jane.doe+shop@example.co.uk signed up", "user ****.***+****@*******.**.** signed up");
  expect("<a@b.io>", "<*@*.**>");
  untouched("twitter @handle, a@b, x@localhost, v1.2@3.4, trailing@");
  untouched("@@@ ..@.. @.com");
}

Test(pii, card_numbers_need_a_valid_luhn_check) {
  expect("card=4111111111111111;", "card=****************;");
  expect("4111 1111 1111 1111", "**** **** **** ****");
  expect("5500-0000-0000-0004 ok", "****-****-****-**** ok");
  expect("amex 378282246310005", "amex ***************");
  expect("paid with 4111111111111111. Thanks", "paid with ****************. Thanks");
  expect("4111-1111-1111-1111-", "****-****-****-****-");
  untouched("order 4111111111111112 shipped");  /* Luhn fails */
  untouched("id=a4111111111111111");            /* inside a word */
  untouched("4111111111111111x");
  untouched("12345678901234567890123");         /* too long to be a card */
}

Test(pii, phone_numbers_in_the_usual_notations) {
  expect("call +44 20 7946 0958 now", "call +** ** **** **** now");
  expect("+14155552671", "+***********");
  expect("(555) 123-4567", "(***) ***-****");
  expect("tel: 555-123-4567.", "tel: ***-***-****.");
  expect("1-800-555-0199", "*-***-***-****");
  /* the fewest digits that make a phone: 7, international; the pre-check
   * that skips strings with fewer must not skip these */
  expect("+1234567", "+*******");
  expect("x +1234567", "x +*******");
  untouched("+123456");
  expect("10.0.0.1 called +44 20 7946 0958", "10.0.0.1 called +** ** **** ****");
}

Test(pii, numbers_that_are_not_phones_are_left_alone) {
  untouched("took 1234567 ms; port 5432; pid 4242");
  untouched("2024-01-15 10:30:00.123456");
  untouched("10.20.30.40 and 192.168.100.200");
  untouched("user 5551234567 logged in");          /* a bare number is an id */
  untouched("trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7");
  /* UUIDs whose last groups are all digits, Luhn-valid or phone-shaped */
  untouched("task 6e5a42ba-1cd7-4ab3-9386-271146396504 done");
  untouched("/orders/6e5a42ba-1cd7-4ab3-9386-271146396504");
  untouched("a4b3c2d1-1cd7-4ab3-555-123-4567");
  /* ... and whose first groups are: 16 digits, Luhn-valid (a Celery task id
   * seen masked in CI) */
  untouched("26386306-1581-4860-aec5-41ad473249c1");
  untouched("task 26386306-1581-4860-aec5-41ad473249c1 done");
  untouched("/tasks/26386306-1581-4860-aec5-41ad473249c1/result");
  untouched("id=26386306-1581-4860.a1");
  untouched("release v1.2-4111111111111111");
  untouched("SELECT * FROM t WHERE id = ? LIMIT 20");
}

Test(pii, masking_keeps_the_length_and_utf8) {
  char buf[] = "é jane@example.com ü";
  size_t n = strlen(buf);
  cr_assert_eq(tgo__pii_mask(buf, n), 1);
  cr_assert_eq(strlen(buf), n);
  cr_assert_str_eq(buf, "é ****@*******.*** ü");
}

Test(pii, configured_patterns_are_masked_too) {
  cr_assert_eq(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS",
                                 "SSN-[0-9]{3}-[0-9]{2}-[0-9]{4}, emp[0-9]{5,6}", "test"), 0);
  expect("a SSN-123-45-6789 b emp123456 c emp12", "a *************** b ********* c emp12");
}

Test(pii, a_bad_pattern_is_refused_with_a_warning) {
  cr_assert_lt(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", "ok[0-9]+, (unclosed", "test"), 0);
  cr_assert_str_eq(tgo__cfg.pii_patterns, "");
}

Test(pii, masking_can_be_switched_off) {
  tgo__cfg.pii_masking = 0;
  untouched("jane@example.com 4111111111111111");
}

Test(pii, big_and_odd_inputs_are_fine) {
  size_t n = 1 << 20;
  char *big = malloc(n);
  for (size_t i = 0; i < n; i++)
    big[i] = "0123456789 -+()@."[i % 17];
  tgo__pii_mask(big, n);
  memset(big, '@', n);
  tgo__pii_mask(big, n);
  memset(big, '7', n);
  tgo__pii_mask(big, n);
  cr_assert_eq(big[0], '7', "one endless digit run is not a card");
  free(big);
  char empty[1] = "";
  cr_assert_eq(tgo__pii_mask(empty, 0), 0);
}

Test(pii, a_pattern_that_would_take_gigabytes_to_compile_is_refused) {
  /* Found by fuzz_config: nested counted repetitions make regcomp copy the
   * group for every count. */
  cr_assert_lt(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", "((a{1000}){1000}){1000}", "t"), 0);
  cr_assert_lt(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", "x{5000}", "t"), 0);
  cr_assert_lt(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", "O++++++++++++++++++++", "t"), 0);
  cr_assert_lt(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", "((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)", "t"), 0);
  cr_assert_eq(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", "[{]{3}[0-9]{2,4}", "t"), 0);
}

Test(pii, patterns_outside_the_safe_subset_are_refused) {
  static const char *const refused[] = {
      "(a?){800}", "(x*y?){600}", "(|)(\\1\\1)*", "(a*)*\\1b", "a|b", "x\\", "a**", "a{3}{3}",
      "[[:alpha:][](a{3000}){3000}]", "a{200}", "[0-9", "a{,3}", "a{3", "?a", "^*",
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    cr_assert_lt(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", refused[i], "t"), 0, "%s", refused[i]);
  static const char *const accepted[] = {
      "SSN-[0-9]{3}-[0-9]{2}-[0-9]{4}", "[[:alpha:]]+-[0-9]{2,6}", "^acct_[a-z0-9]{24}$", "x[]a]y",
      "key-\\.[^,]*", "[,]{2}",
  };
  for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++)
    cr_assert_eq(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", accepted[i], "t"), 0, "%s", accepted[i]);
}

Test(pii, brackets_do_not_swallow_the_next_pattern) {
  cr_assert_eq(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", "id[[]x, secret-[0-9]+", "t"), 0);
  expect("id[x secret-12345", "**** ************");
}

Test(pii, an_empty_match_at_the_end_reads_nothing_past_it) {
  cr_assert_eq(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", "x*$", "t"), 0);
  char *buf = malloc(4);
  memcpy(buf, "abxx", 4); /* not terminated: ASan sees any read past it */
  tgo__pii_mask(buf, 3);
  cr_assert_eq(memcmp(buf, "ab*x", 4), 0);
  free(buf);
}

static void *mask_on_exporter_sized_stack(void *text) {
  tgo__pii_mask(text, strlen(text));
  return NULL;
}

Test(pii, the_heaviest_accepted_pattern_runs_on_the_exporter_stack) {
  cr_assert_eq(tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS",
                                 "a{0}b{0,126}, [a-z]{0,60}[0-9]{0,60}, .{0,126}x", "t"), 0);
  static char text[8192];
  memset(text, 'b', sizeof text - 1);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024); /* as the exporter thread's */
  pthread_t t;
  cr_assert_eq(pthread_create(&t, &attr, mask_on_exporter_sized_stack, text), 0);
  pthread_join(t, NULL);
  cr_assert_eq(text[0], '*');
}

/* The scan skips 8-byte words with no candidate byte at once: whatever
 * sits at any offset after such words, or among non-ASCII bytes (which the
 * word test must never take for digits), is still found. */
Test(pii, candidates_are_found_at_every_offset_past_skipped_words) {
  for (int pad = 0; pad < 17; pad++) {
    char in[128], want[128];
    snprintf(in, sizeof in, "%.*s card 4111111111111111, mail a@b.io", pad, "abcdefghijklmnopq");
    snprintf(want, sizeof want, "%.*s card ****************, mail *@*.**", pad, "abcdefghijklmnopq");
    expect(in, want);
  }
  expect("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 tel (555) 123-4567", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 tel (***) ***-****");
  expect("\xf0\xb9\xba\xbb\xbc\xbd\xbe\xbf +44 20 7946 0958", "\xf0\xb9\xba\xbb\xbc\xbd\xbe\xbf +** ** **** ****");
  untouched("/hello/world/and/more/path/segments");
  untouched("\xb0\xb1\xb2\xb3\xb4\xb5\xb6\xb7\xb8\xb9\xc0\xab\xa8 plain");
}

/* The pre-check skips a string only when the scan would mask nothing in
 * it: over random strings of digits, separators, '+', '@' and letters,
 * masking with it and the bare scan agree byte for byte. The bounds sit
 * where the shortest finds are (7 digits after '+', 10 without): shorter
 * strings would never reach them, longer ones rarely miss them. */
Test(pii, the_pre_check_never_skips_what_the_scan_would_mask) {
  static const char alphabet[] = "0123456789012345678901234567890123456789 -.()+@ab";
  unsigned seed = 12345;
  int masked = 0;
  for (int round = 0; round < 200000; round++) {
    char filtered[48], bare[48];
    size_t n = 6 + (seed = seed * 1103515245u + 12345u) % 36;
    for (size_t i = 0; i < n; i++)
      filtered[i] = alphabet[((seed = seed * 1103515245u + 12345u) >> 16) % (sizeof alphabet - 1)];
    memcpy(bare, filtered, n);
    tgo__pii_mask(filtered, n);
    tgo__pii_scan_builtin((unsigned char *)bare, n);
    cr_assert(!memcmp(filtered, bare, n), "pre-check and scan differ on \"%.*s\"", (int)n, bare);
    masked += memchr(bare, '*', n) != NULL;
  }
  cr_assert_gt(masked, 1000, "the random strings must hold things to mask (%d did)", masked);
  /* Addresses stay as they are, skipped (7-9 digits, no '+') or scanned. */
  untouched("203.0.113.9");
  untouched("192.168.100.200");
  untouched("client 127.0.0.1:8000");
}
