/* libFuzzer: the exception-text scrubber never reads or writes outside the
 * string, never makes it longer (it keeps the length), only ever writes
 * '*' and keeps valid UTF-8 valid. */
#include "tgo-internal.h"

#include <stdlib.h>
#include <string.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* An exact-size heap copy, so ASan sees any access past the end. */
  char *text = malloc(size ? size : 1);
  memcpy(text, data, size);
  tgo__scrub(text, size);
  for (size_t i = 0; i < size; i++)
    if ((unsigned char)text[i] != data[i] && text[i] != '*')
      __builtin_trap();
  if (valid_utf8(data, size) && !valid_utf8((unsigned char *)text, size))
    __builtin_trap();
  free(text);
  return 0;
}
