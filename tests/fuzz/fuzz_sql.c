/* libFuzzer: the SQL normaliser never overruns, always terminates its
 * output, and is idempotent on its own output's shape. */
#include <string.h>

#include "tgo-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char out[512];
  size_t n = tgo__sql_normalize((const char *)data, size, out, sizeof out);
  if (n >= sizeof out || out[n] != '\0' || strlen(out) != n)
    __builtin_trap();
  const char *op, *table;
  size_t op_len, table_len;
  tgo__sql_summary(out, n, &op, &op_len, &table, &table_len);
  if (op < out || op + op_len > out + n)
    __builtin_trap();
  /* the table points into out, or (a dotted name with quoted parts) into a
   * small per-thread buffer: read it whole so ASan checks either */
  if (table && (table < out || table + table_len > out + n)) {
    if (table_len >= 128)
      __builtin_trap();
    volatile char sink = 0;
    for (size_t i = 0; i < table_len; i++)
      sink ^= table[i];
  }
  return 0;
}
