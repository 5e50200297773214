/* libFuzzer: the PII masker keeps the length, only ever writes '*', keeps
 * valid UTF-8 valid, never reads or writes outside the string, and masks
 * all the bare built-in scan masks. */
#include <stdlib.h>
#include <string.h>

#include "tgo-internal.h"

static int valid_utf8(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned char c = s[i];
    size_t k = c < 0x80 ? 0 : c >= 0xF0 && c <= 0xF4 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 ? 1 : 99;
    if (k == 99 || i + k >= n + (k ? 0 : 1))
      return 0;
    for (size_t j = 1; j <= k; j++)
      if ((s[i + j] & 0xC0) != 0x80)
        return 0;
    i += k + 1;
  }
  return 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  setenv("TIGEROPS_EXPORTER", "none", 1);
  setenv("TIGEROPS_LOG_LEVEL", "none", 1);
  setenv("TIGEROPS_PII_PATTERNS", "key-[a-z0-9]{4,}, \xc3\xa9+, x{2}[0-9]?", 1);
  tgo_init();
  return 0;
}

/* Input "patterns\ntext": the first line, when it holds no NUL, is tried as
 * TIGEROPS_PII_PATTERNS, so the safe-subset check and every pattern it
 * accepts are fuzzed too; the masker then runs over the whole input. */
static void maybe_configure(const uint8_t *data, size_t size) {
  const uint8_t *nl = memchr(data, '\n', size);
  if (!nl || memchr(data, '\0', (size_t)(nl - data)) || nl - data > 300)
    return;
  char list[304];
  memcpy(list, data, (size_t)(nl - data));
  list[nl - data] = '\0';
  tgo__config_apply(&tgo__cfg, "TIGEROPS_PII_PATTERNS", list, "fuzz");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  maybe_configure(data, size);
  unsigned char *text = malloc(size ? size : 1);
  memcpy(text, data, size);
  tgo__pii_mask((char *)text, size);
  for (size_t i = 0; i < size; i++)
    if (text[i] != data[i] && text[i] != '*')
      __builtin_trap();
  if (valid_utf8(data, size) && !valid_utf8(text, size))
    __builtin_trap();
  /* The pre-check only skips strings the scan leaves alone: whatever the
   * bare scan masks is masked (patterns may mask more). */
  unsigned char *scanned = malloc(size ? size : 1);
  memcpy(scanned, data, size);
  tgo__pii_scan_builtin(scanned, size);
  for (size_t i = 0; i < size; i++)
    if (scanned[i] != data[i] && text[i] != '*')
      __builtin_trap();
  free(scanned);
  free(text);
  return 0;
}
