/* libFuzzer: what a gRPC server sends back (trailer lines, the base64
 * google.rpc.Status in grpc-status-details-bin, the framed response) is
 * read on the exporter thread from the network: arbitrary bytes. */
#include <stdlib.h>
#include <string.h>

#include "tgo-internal.h"

static void as_header(const char *name, const uint8_t *data, size_t size) {
  size_t n = strlen(name);
  char *line = malloc(n + size);
  if (!line)
    return;
  memcpy(line, name, n);
  memcpy(line + n, data, size);
  tgo__http_result r;
  memset(&r, 0, sizeof r);
  r.grpc_status = r.grpc_retry_ms = -1;
  tgo__grpc_on_header(&r, line, n + size);
  if (memchr(r.grpc_message, '\0', sizeof r.grpc_message) == NULL)
    __builtin_trap(); /* always terminated */
  if (r.grpc_retry_ms > 86400000)
    __builtin_trap();
  free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  as_header("grpc-status: ", data, size);
  as_header("grpc-message: ", data, size);
  as_header("grpc-status-details-bin: ", data, size);
  as_header("", data, size);
  long long rejected;
  char msg[64];
  tgo__grpc_partial_success(data, size, &rejected, msg, sizeof msg);
  if (memchr(msg, '\0', sizeof msg) == NULL)
    __builtin_trap();
  return 0;
}
