/* Content-Encoding: gzip for an HTTP request body. */
#include "tgo-internal.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

/* gzip framing (windowBits 16+15), level 1: the collector is usually near,
 * so the exporter thread's CPU matters more than the last bytes. */
int tgo__gzip(const uint8_t *in, size_t len, tgo__buf *out) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return -ENOMEM;
  size_t bound = deflateBound(&z, (uLong)len);
  int rc = -ENOMEM;
  if (tgo__buf_reserve(out, bound) == 0) {
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out->data + out->len;
    z.avail_out = (uInt)(out->cap - out->len);
    if (deflate(&z, Z_FINISH) == Z_STREAM_END) {
      out->len += z.total_out;
      rc = 0;
    } else {
      rc = -EIO;
    }
  }
  deflateEnd(&z);
  return rc;
}
