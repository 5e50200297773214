/* OTLP/HTTP over plain http:// without libcurl. Loading libcurl pulls in
 * some thirty libraries (GnuTLS, Kerberos, LDAP, libssh2, nghttp2...) whose
 * touched pages cost a gunicorn worker about 4.8 MB of RSS, for a POST to a
 * collector that is usually on localhost. This is one HTTP/1.1 keep-alive
 * connection per exporter thread; https://, HTTP/2 (gRPC) and proxies stay
 * with libcurl (http.c decides). */
#include "tgo-internal.h"

#include <curl/curl.h> /* CURLcode values only, for the export's verdicts */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define CUT_POLL_MS 20             /* as http.c: how late a shutdown cuts a wait */
#define RESPONSE_MAX (64 * 1024)   /* head + body kept to find the end; more: the connection is dropped */

typedef struct {
  int fd;
  char hostport[300]; /* what fd is connected to */
} plain_conn;

/* One per exporter thread (the metrics and logs threads get their own),
 * closed when the thread exits. */
static __thread plain_conn *conn;
static pthread_key_t conn_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void conn_destroy(void *p) {
  plain_conn *c = p;
  if (c && c->fd >= 0)
    close(c->fd);
  free(c);
}

static void make_key(void) { pthread_key_create(&conn_key, conn_destroy); }

static void conn_drop(plain_conn *c) {
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
}

typedef struct {
  char host[256];
  char port[8];
  const char *path;
} plain_url;

/* http://host[:port][/path]; 0, or -1 for anything this client leaves to
 * libcurl (user-info, a bad port). */
static int parse_url(const char *url, plain_url *u) {
  if (strncasecmp(url, "http://", 7))
    return -1;
  const char *h = url + 7, *end = h + strcspn(h, "/?#");
  if (memchr(h, '@', (size_t)(end - h)))
    return -1;
  const char *port = NULL, *hend = end;
  if (*h == '[') {
    const char *rb = memchr(h, ']', (size_t)(end - h));
    if (!rb)
      return -1;
    h++;
    hend = rb;
    if (rb + 1 < end) {
      if (rb[1] != ':')
        return -1;
      port = rb + 2;
    }
  } else {
    const char *colon = memchr(h, ':', (size_t)(end - h));
    if (colon) {
      hend = colon;
      port = colon + 1;
    }
  }
  size_t hl = (size_t)(hend - h), pl = port ? (size_t)(end - port) : 0;
  if (!hl || hl >= sizeof u->host || (port && (!pl || pl > 5)))
    return -1;
  memcpy(u->host, h, hl);
  u->host[hl] = '\0';
  if (port) {
    for (size_t i = 0; i < pl; i++)
      if (port[i] < '0' || port[i] > '9')
        return -1;
    memcpy(u->port, port, pl);
    u->port[pl] = '\0';
    if (atoi(u->port) <= 0 || atoi(u->port) > 65535)
      return -1;
  } else {
    strcpy(u->port, "80");
  }
  u->path = *end == '/' ? end : NULL; /* NULL: "/" (a query without path gets one too) */
  return 0;
}

/* libcurl honours these; a proxied collector keeps going through it. */
static int proxy_configured(void) {
  static const char *const names[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const char *v = getenv(names[i]);
    if (v && *v)
      return 1;
  }
  return 0;
}

int tgo__http_plain_eligible(const char *url, const tgo__http_opts *opts) {
  plain_url u;
  return !(opts && opts->http2) && parse_url(url, &u) == 0 && !proxy_configured();
}

static void fail(tgo__http_result *res, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(tgo__http_result *res, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->error, sizeof res->error, fmt, ap);
  va_end(ap);
  res->transport_error = 1;
  res->curl_code = code;
}

/* Waits for fd to be ready for events, in steps that look at the cut
 * deadline. 1 ready, 0 timed out, -1 cut, -2 poll error. */
static int wait_fd(int fd, short events, uint64_t end_ns) {
  for (;;) {
    if (tgo__http_past_cut())
      return -1;
    uint64_t now = tgo__now_ns(CLOCK_MONOTONIC);
    if (now >= end_ns)
      return 0;
    uint64_t left_ms = (end_ns - now + 999999u) / 1000000u;
    struct pollfd p = {fd, events, 0};
    int rc = poll(&p, 1, left_ms < CUT_POLL_MS ? (int)left_ms : CUT_POLL_MS);
    if (rc > 0)
      return 1;
    if (rc < 0 && errno != EINTR)
      return -2;
  }
}

static int wait_error(tgo__http_result *res, int w, const char *what) {
  if (w == -1)
    fail(res, CURLE_ABORTED_BY_CALLBACK, "cut at the shutdown deadline");
  else if (w == 0)
    fail(res, CURLE_OPERATION_TIMEDOUT, "timeout %s", what);
  else
    fail(res, CURLE_RECV_ERROR, "poll failed %s: %s", what, strerror(errno));
  return -1;
}

static int do_connect(plain_conn *c, const plain_url *u, uint64_t end_ns, tgo__http_result *res) {
  struct addrinfo hints, *ai = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  int gai = getaddrinfo(u->host, u->port, &hints, &ai);
  if (gai) {
    fail(res, CURLE_COULDNT_RESOLVE_HOST, "Could not resolve host: %s (%s)", u->host, gai_strerror(gai));
    return -1;
  }
  int err = 0;
  for (struct addrinfo *a = ai; a; a = a->ai_next) {
    int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
      int w = wait_fd(fd, POLLOUT, end_ns);
      if (w != 1) {
        close(fd);
        freeaddrinfo(ai);
        return wait_error(res, w, "connecting");
      }
      socklen_t len = sizeof err;
      err = 0;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err ? -1 : 0;
    } else if (rc < 0) {
      err = errno;
    }
    if (rc == 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      c->fd = fd;
      freeaddrinfo(ai);
      return 0;
    }
    close(fd);
  }
  freeaddrinfo(ai);
  fail(res, CURLE_COULDNT_CONNECT, "Failed to connect to %s port %s: %s", u->host, u->port,
       strerror(err ? err : ECONNREFUSED));
  return -1;
}

/* Sends every byte of iov; MSG_NOSIGNAL: a closed peer must never raise
 * SIGPIPE in the host. 0, 1 when the peer had closed (a stale kept-alive
 * connection: the caller reconnects), -1. */
static int send_all(int fd, struct iovec *iov, int n, uint64_t end_ns, tgo__http_result *res) {
  while (n > 0) {
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)n;
    ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        int r = wait_fd(fd, POLLOUT, end_ns);
        if (r != 1)
          return wait_error(res, r, "sending");
        continue;
      }
      if (errno == EINTR)
        continue;
      if (errno == EPIPE || errno == ECONNRESET)
        return 1;
      fail(res, CURLE_SEND_ERROR, "Send failure: %s", strerror(errno));
      return -1;
    }
    while (n > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
  return 0;
}

typedef struct {
  char *buf;
  size_t len;
  size_t head_end;     /* bytes of status line + headers; 0 until seen */
  long status;
  long content_length; /* -1: none */
  int chunked, close_after;
} response;

/* Parses the head in r->buf[0, head_end): status, framing, Retry-After. */
static int parse_head(response *r, tgo__http_result *res) {
  char *p = r->buf, *end = r->buf + r->head_end;
  if (r->head_end < 12 || strncmp(p, "HTTP/1.", 7))
    return -1;
  r->close_after = p[7] == '0';
  r->status = strtol(p + 9, NULL, 10);
  r->content_length = -1;
  r->chunked = 0;
  char *line = memchr(p, '\n', (size_t)(end - p));
  while (line && ++line < end) {
    char *eol = memchr(line, '\n', (size_t)(end - line));
    if (!eol)
      break;
    size_t n = (size_t)(eol - line);
    char *colon = memchr(line, ':', n);
    if (colon) {
      size_t kn = (size_t)(colon - line);
      char *v = colon + 1;
      while (v < eol && (*v == ' ' || *v == '\t'))
        v++;
      if (kn == 14 && !strncasecmp(line, "content-length", 14))
        r->content_length = strtol(v, NULL, 10);
      else if (kn == 17 && !strncasecmp(line, "transfer-encoding", 17))
        r->chunked = !strncasecmp(v, "chunked", 7);
      else if (kn == 10 && !strncasecmp(line, "connection", 10))
        r->close_after = r->close_after || !strncasecmp(v, "close", 5);
      else if (kn == 11 && !strncasecmp(line, "retry-after", 11)) {
        char *e;
        long s = strtol(v, &e, 10);
        if (e != v && s >= 0 && s < 86400)
          res->retry_after_s = (int)s;
      }
    }
    line = eol;
  }
  return r->status >= 100 && r->status <= 999 ? 0 : -1;
}

static void keep_body(tgo__http_result *res, const char *p, size_t n) {
  size_t room = sizeof res->body - res->body_len, take = n < room ? n : room;
  memcpy(res->body + res->body_len, p, take);
  res->body_len += take;
}

/* For a chunked body at b[0, n): bytes to its end, 0 while incomplete,
 * -1 when malformed; the data goes to res. */
static long chunked_end(const char *b, size_t n, tgo__http_result *res) {
  size_t i = 0, body_len = res->body_len;
  for (;;) {
    const char *nl = memchr(b + i, '\n', n - i);
    if (!nl)
      break;
    char *e;
    unsigned long size = strtoul(b + i, &e, 16);
    if (e == b + i)
      return -1;
    size_t data = (size_t)(nl - b) + 1;
    if (size == 0) { /* trailers, then an empty line */
      size_t k = data;
      for (;;) {
        const char *t = memchr(b + k, '\n', n - k);
        if (!t)
          goto incomplete;
        if (t == b + k || (t == b + k + 1 && b[k] == '\r'))
          return (long)(t - b) + 1;
        k = (size_t)(t - b) + 1;
      }
    }
    if (size > RESPONSE_MAX || data + size + 2 > n)
      break;
    keep_body(res, b + data, size);
    i = data + size + 2;
  }
incomplete:
  res->body_len = body_len; /* kept again when complete */
  return 0;
}

/* Reads one response (skipping 1xx) into r. 0, 1 when the peer closed
 * before answering (a stale connection), -1. */
static int read_response(int fd, response *r, uint64_t end_ns, tgo__http_result *res) {
  size_t cap = 4096;
  r->buf = malloc(cap);
  if (!r->buf) {
    fail(res, CURLE_OUT_OF_MEMORY, "out of memory");
    return -1;
  }
  r->len = r->head_end = 0;
  for (;;) {
    if (r->head_end) {
      const char *body = r->buf + r->head_end;
      size_t have = r->len - r->head_end;
      if (r->status < 200) { /* an interim answer: the real one follows */
        memmove(r->buf, body, have);
        r->len = have;
        r->head_end = 0;
        continue;
      }
      if (r->chunked) {
        long used = chunked_end(body, have, res);
        if (used < 0) {
          fail(res, CURLE_RECV_ERROR, "malformed chunked response");
          return -1;
        }
        if (used > 0)
          return 0;
      } else if (r->content_length >= 0 && have >= (size_t)r->content_length) {
        keep_body(res, body, (size_t)r->content_length);
        return 0;
      }
    } else {
      char *e = r->len >= 4 ? memmem(r->buf, r->len, "\r\n\r\n", 4) : NULL;
      if (e) {
        r->head_end = (size_t)(e - r->buf) + 4;
        if (parse_head(r, res) < 0) {
          fail(res, CURLE_WEIRD_SERVER_REPLY, "not an HTTP/1.x response");
          return -1;
        }
        continue;
      }
    }
    if (r->len == cap) {
      if (cap >= RESPONSE_MAX) {
        if (!r->head_end) {
          fail(res, CURLE_RECV_ERROR, "response head too long");
          return -1;
        }
        keep_body(res, r->buf + r->head_end, r->len - r->head_end);
        r->close_after = 1; /* the rest is not read: the connection is done */
        return 0;
      }
      char *nb = realloc(r->buf, cap * 2);
      if (!nb) {
        fail(res, CURLE_OUT_OF_MEMORY, "out of memory");
        return -1;
      }
      r->buf = nb;
      cap *= 2;
    }
    ssize_t got = recv(fd, r->buf + r->len, cap - r->len, 0);
    if (got > 0) {
      r->len += (size_t)got;
      continue;
    }
    if (got == 0 || (got < 0 && errno == ECONNRESET)) {
      if (!r->len)
        return 1;
      if (r->head_end && !r->chunked && r->content_length < 0) { /* framed by the close */
        keep_body(res, r->buf + r->head_end, r->len - r->head_end);
        r->close_after = 1;
        return 0;
      }
      fail(res, CURLE_PARTIAL_FILE, "connection closed in the middle of the response");
      return -1;
    }
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      fail(res, CURLE_RECV_ERROR, "Recv failure: %s", strerror(errno));
      return -1;
    }
    int w = wait_fd(fd, POLLIN, end_ns);
    if (w != 1)
      return wait_error(res, w, "waiting for the answer");
  }
}

int tgo__http_plain_post(const char *url, const char *const *headers, size_t n_headers, const uint8_t *body,
                         size_t len, int timeout_ms, tgo__http_result *res) {
  plain_url u;
  if (parse_url(url, &u) < 0) {
    fail(res, CURLE_URL_MALFORMAT, "malformed URL");
    return -1;
  }
  pthread_once(&key_once, make_key);
  if (!conn) {
    if (!(conn = calloc(1, sizeof *conn))) {
      fail(res, CURLE_OUT_OF_MEMORY, "out of memory");
      return -1;
    }
    conn->fd = -1;
    pthread_setspecific(conn_key, conn);
  }
  char hostport[sizeof conn->hostport];
  int v6 = strchr(u.host, ':') != NULL;
  snprintf(hostport, sizeof hostport, v6 ? "[%s]:%s" : "%s:%s", u.host, u.port);
  if (conn->fd >= 0 && strcmp(conn->hostport, hostport))
    conn_drop(conn);
  uint64_t start = tgo__now_ns(CLOCK_MONOTONIC);
  uint64_t end_ns = start + (uint64_t)timeout_ms * 1000000u;
  uint64_t connect_end = start + (uint64_t)(timeout_ms < 5000 ? timeout_ms : 5000) * 1000000u;

  /* The head: request line, Host, ours, the caller's, framing. */
  size_t head_cap = 512 + strlen(url);
  for (size_t i = 0; i < n_headers; i++)
    head_cap += strlen(headers[i]) + 2;
  char *head = malloc(head_cap);
  if (!head) {
    fail(res, CURLE_OUT_OF_MEMORY, "out of memory");
    return -1;
  }
  size_t hl = (size_t)snprintf(head, head_cap,
                               "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tigerops/" PACKAGE_VERSION
                               "\r\nAccept: */*\r\nContent-Length: %zu\r\n",
                               u.path ? u.path : "/", hostport, len);
  for (size_t i = 0; i < n_headers && hl < head_cap; i++)
    hl += (size_t)snprintf(head + hl, head_cap - hl, "%s\r\n", headers[i]);
  if (hl < head_cap)
    hl += (size_t)snprintf(head + hl, head_cap - hl, "\r\n");
  if (hl >= head_cap) { /* cannot happen with head_cap's slack; never send a cut head */
    free(head);
    fail(res, CURLE_OUT_OF_MEMORY, "request head too long");
    return -1;
  }

  int rc = -1;
  response r = {0};
  for (int attempt = 0; attempt < 2; attempt++) {
    int reused = conn->fd >= 0;
    if (!reused) {
      if (do_connect(conn, &u, connect_end < end_ns ? connect_end : end_ns, res) < 0)
        break;
      snprintf(conn->hostport, sizeof conn->hostport, "%s", hostport);
    }
    struct iovec iov[2] = {{head, hl}, {(void *)body, len}};
    int s = send_all(conn->fd, iov, len ? 2 : 1, end_ns, res);
    if (s == 0) {
      free(r.buf);
      memset(&r, 0, sizeof r);
      res->body_len = 0;
      s = read_response(conn->fd, &r, end_ns, res);
    }
    if (s == 1) { /* the server closed the idle connection: once more on a new one */
      conn_drop(conn);
      if (reused)
        continue;
      fail(res, CURLE_GOT_NOTHING, "Empty reply from server");
      break;
    }
    if (s < 0) {
      conn_drop(conn);
      break;
    }
    res->status = r.status;
    if (r.close_after)
      conn_drop(conn);
    rc = 0;
    break;
  }
  free(r.buf);
  free(head);
  return rc;
}
