/* HTTP POST through libcurl, loaded with dlopen on the exporter thread's
 * first export: a preloaded library linked against libcurl would drag
 * libcurl and its TLS stack into every process (sh, nginx), and its symbols
 * into the host's namespace. RTLD_LOCAL keeps them ours. */
#include "tgo-internal.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static struct {
  CURLcode (*global_init)(long);
  CURL *(*easy_init)(void);
  CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
  CURLcode (*easy_perform)(CURL *);
  CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
  void (*easy_reset)(CURL *);
  const char *(*easy_strerror)(CURLcode);
  struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
  void (*slist_free_all)(struct curl_slist *);
  CURLM *(*multi_init)(void);
  CURLMcode (*multi_add_handle)(CURLM *, CURL *);
  CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
  CURLMcode (*multi_perform)(CURLM *, int *);
  CURLMcode (*multi_wait)(CURLM *, struct curl_waitfd *, unsigned, int, int *);
  CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd *, unsigned, int, int *); /* 7.66+, optional */
  CURLMsg *(*multi_info_read)(CURLM *, int *);
  curl_version_info_data *(*version_info)(CURLversion);
} curl;

/* libcurl before 8.0.0 breaks an h2c (prior knowledge) connection it
 * reuses: the second request fails with "Error in the HTTP2 framing layer"
 * (curl/curl#10634, fixed by #10643). There each gRPC call over http://
 * gets a fresh connection; https:// (ALPN) reuses fine. */
static int h2c_reuse_broken;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int loaded;
/* CLOCK_MONOTONIC ns at which a request in flight, or one about to start,
 * gives up (0: none). A shutdown sets it from another thread. */
static _Atomic uint64_t cut_at_ns;
/* One handle per exporter thread keeps the connection alive between
 * batches; a forked child's new thread gets a new one. */
static __thread CURL *handle;
static __thread CURLM *multi;

static void load_curl(void) {
  static const char *const names[] = {"libcurl.so.4", "libcurl-gnutls.so.4", "libcurl-nss.so.4",
                                      "libcurl.so"};
  void *lib = NULL;
  for (size_t i = 0; !lib && i < sizeof names / sizeof names[0]; i++)
    lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    tgo__log(TGO_LOG_ERROR, "libcurl not found (install libcurl4); OTLP export is off");
    return;
  }
#define SYM(field, name) *(void **)&curl.field = dlsym(lib, name)
  SYM(global_init, "curl_global_init");
  SYM(easy_init, "curl_easy_init");
  SYM(easy_setopt, "curl_easy_setopt");
  SYM(easy_perform, "curl_easy_perform");
  SYM(easy_getinfo, "curl_easy_getinfo");
  SYM(easy_reset, "curl_easy_reset");
  SYM(easy_strerror, "curl_easy_strerror");
  SYM(slist_append, "curl_slist_append");
  SYM(slist_free_all, "curl_slist_free_all");
  SYM(multi_init, "curl_multi_init");
  SYM(multi_add_handle, "curl_multi_add_handle");
  SYM(multi_remove_handle, "curl_multi_remove_handle");
  SYM(multi_perform, "curl_multi_perform");
  SYM(multi_wait, "curl_multi_wait");
  SYM(multi_poll, "curl_multi_poll");
  SYM(multi_info_read, "curl_multi_info_read");
  SYM(version_info, "curl_version_info");
#undef SYM
  if (!curl.global_init || !curl.easy_init || !curl.easy_setopt || !curl.easy_perform ||
      !curl.easy_getinfo || !curl.easy_reset || !curl.easy_strerror || !curl.slist_append ||
      !curl.slist_free_all || !curl.multi_init || !curl.multi_add_handle ||
      !curl.multi_remove_handle || !curl.multi_perform || !curl.multi_wait ||
      !curl.multi_info_read) {
    tgo__log(TGO_LOG_ERROR, "libcurl lacks expected functions; OTLP export is off");
    return;
  }
  /* No CURL_GLOBAL_SSL side effects on signals: the host owns them. */
  if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    tgo__log(TGO_LOG_ERROR, "libcurl initialisation failed; OTLP export is off");
    return;
  }
  curl_version_info_data *v = curl.version_info ? curl.version_info(CURLVERSION_NOW) : NULL;
  h2c_reuse_broken = !v || v->version_num < 0x080000;
  loaded = 1;
}

/* Keeps the head of the response body (a collector explains a refusal
 * there) and discards the rest. */
static size_t keep_body_head(char *p, size_t size, size_t n, void *ud) {
  tgo__http_result *r = ud;
  size_t len = size * n, room = sizeof r->body - r->body_len;
  size_t take = len < room ? len : room;
  memcpy(r->body + r->body_len, p, take);
  r->body_len += take;
  return len;
}

/* Picks Retry-After (delay-seconds form) out of the response headers. */
static size_t on_header(char *line, size_t size, size_t n, void *ud) {
  tgo__http_result *r = ud;
  size_t len = size * n;
  static const char name[] = "retry-after:";
  if (len > sizeof name - 1 && !strncasecmp(line, name, sizeof name - 1)) {
    char tmp[32];
    size_t vn = len - (sizeof name - 1);
    if (vn >= sizeof tmp)
      vn = sizeof tmp - 1;
    memcpy(tmp, line + sizeof name - 1, vn);
    tmp[vn] = '\0';
    char *end;
    long v = strtol(tmp, &end, 10);
    if (end != tmp && v >= 0 && v < 86400)
      r->retry_after_s = (int)v;
  } else if (len > 5 && (line[0] == 'g' || line[0] == 'G')) {
    /* HTTP/2 trailers come here too: that is where a gRPC status is. */
    tgo__grpc_on_header(r, line, len);
  }
  return len;
}

void tgo__http_set_deadline(uint64_t mono_ns) { atomic_store(&cut_at_ns, mono_ns); }

int tgo__http_past_cut(void) {
  uint64_t cut = atomic_load(&cut_at_ns);
  return cut && tgo__now_ns(CLOCK_MONOTONIC) >= cut;
}

/* Longest wait between two looks at the cut deadline: how late a shutdown
 * can cut a request that is waiting for an answer. */
#define CUT_POLL_MS 20

/* curl_easy_perform through the multi interface, whose loop is ours: it
 * waits in short steps and gives up at the cut deadline, which another
 * thread may set while the request waits for an answer. */
static CURLcode perform(CURL *h) {
  if (!multi && !(multi = curl.multi_init()))
    return curl.easy_perform(h);
  if (curl.multi_add_handle(multi, h) != CURLM_OK)
    return curl.easy_perform(h);
  CURLcode rc = CURLE_OK;
  for (;;) {
    int active = 0, numfds = 0;
    if (curl.multi_perform(multi, &active) != CURLM_OK) {
      rc = CURLE_SEND_ERROR;
      break;
    }
    if (!active) {
      CURLMsg *m;
      int queued;
      while ((m = curl.multi_info_read(multi, &queued)))
        if (m->msg == CURLMSG_DONE && m->easy_handle == h)
          rc = m->data.result;
      break;
    }
    if (tgo__http_past_cut()) {
      rc = CURLE_ABORTED_BY_CALLBACK;
      break;
    }
    CURLMcode mc = curl.multi_poll ? curl.multi_poll(multi, NULL, 0, CUT_POLL_MS, &numfds)
                                   : curl.multi_wait(multi, NULL, 0, CUT_POLL_MS, &numfds);
    if (mc != CURLM_OK) {
      rc = CURLE_RECV_ERROR;
      break;
    }
    if (!curl.multi_poll && numfds == 0) { /* multi_wait returns at once with nothing to wait on */
      struct timespec ts = {0, CUT_POLL_MS * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  curl.multi_remove_handle(multi, h);
  return rc;
}

int tgo__http_post(const char *url, const char *const *headers, size_t n_headers,
                   const uint8_t *body, size_t len, int timeout_ms, tgo__http_result *res) {
  return tgo__http_post_opts(url, headers, n_headers, body, len, timeout_ms, NULL, res);
}

int tgo__http_post_opts(const char *url, const char *const *headers, size_t n_headers, const uint8_t *body,
                        size_t len, int timeout_ms, const tgo__http_opts *opts, tgo__http_result *res) {
  memset(res, 0, sizeof *res);
  res->retry_after_s = -1;
  res->grpc_status = -1;
  res->grpc_retry_ms = -1;
  /* Plain http:// never loads libcurl (http_plain.c says why). */
  int plain = tgo__http_plain_eligible(url, opts);
  if (!plain)
    pthread_once(&load_once, load_curl);
  if (!plain && !loaded) {
    res->transport_error = 0;
    res->status = 0;
    snprintf(res->error, sizeof res->error, "libcurl unavailable");
    return -1;
  }
  if (!plain && !handle && !(handle = curl.easy_init())) {
    res->transport_error = 1;
    snprintf(res->error, sizeof res->error, "curl_easy_init failed");
    return -1;
  }
  uint64_t cut = atomic_load(&cut_at_ns);
  if (cut) {
    uint64_t now = tgo__now_ns(CLOCK_MONOTONIC);
    int64_t left_ms = cut > now ? (int64_t)((cut - now) / 1000000u) : 0;
    if (left_ms <= 0) {
      res->transport_error = 1;
      snprintf(res->error, sizeof res->error, "shutdown deadline reached");
      return -1;
    }
    if (left_ms < timeout_ms)
      timeout_ms = (int)left_ms;
  }
  if (plain)
    return tgo__http_plain_post(url, headers, n_headers, body, len, timeout_ms, res);
  curl.easy_reset(handle);
  struct curl_slist *list = NULL;
  for (size_t i = 0; i < n_headers; i++)
    list = curl.slist_append(list, headers[i]);
  list = curl.slist_append(list, "Expect:"); /* no 100-continue round trip */
  curl.easy_setopt(handle, CURLOPT_URL, url);
  curl.easy_setopt(handle, CURLOPT_POST, 1L);
  curl.easy_setopt(handle, CURLOPT_POSTFIELDS, (const char *)body);
  curl.easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl.easy_setopt(handle, CURLOPT_HTTPHEADER, list);
  curl.easy_setopt(handle, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
  curl.easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < 5000 ? timeout_ms : 5000));
  curl.easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl.easy_setopt(handle, CURLOPT_WRITEFUNCTION, keep_body_head);
  curl.easy_setopt(handle, CURLOPT_WRITEDATA, res);
  curl.easy_setopt(handle, CURLOPT_HEADERFUNCTION, on_header);
  curl.easy_setopt(handle, CURLOPT_HEADERDATA, res);
  curl.easy_setopt(handle, CURLOPT_USERAGENT, "tigerops/" PACKAGE_VERSION);
  /* libcurl's own detail ("unable to set private key file: ...") says
   * more than curl_easy_strerror's one line per code. */
  char detail[CURL_ERROR_SIZE];
  detail[0] = '\0';
  curl.easy_setopt(handle, CURLOPT_ERRORBUFFER, detail);
  if (opts && opts->http2) {
    curl.easy_setopt(handle, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    if (h2c_reuse_broken && !strncasecmp(url, "http://", 7)) {
      curl.easy_setopt(handle, CURLOPT_FRESH_CONNECT, 1L);
      curl.easy_setopt(handle, CURLOPT_FORBID_REUSE, 1L);
    }
  }
  /* Unset: libcurl's built-in CA bundle path, i.e. the system's. */
  if (opts && opts->ca_file && *opts->ca_file)
    curl.easy_setopt(handle, CURLOPT_CAINFO, opts->ca_file);
  if (opts && opts->client_cert && *opts->client_cert)
    curl.easy_setopt(handle, CURLOPT_SSLCERT, opts->client_cert);
  if (opts && opts->client_key && *opts->client_key)
    curl.easy_setopt(handle, CURLOPT_SSLKEY, opts->client_key);
  CURLcode rc = perform(handle);
  curl.slist_free_all(list);
  curl.easy_setopt(handle, CURLOPT_ERRORBUFFER, NULL); /* detail goes out of scope */
  if (rc != CURLE_OK) {
    res->transport_error = 1;
    res->curl_code = (int)rc;
    snprintf(res->error, sizeof res->error, "%s",
             rc == CURLE_ABORTED_BY_CALLBACK ? "cut at the shutdown deadline"
             : *detail                      ? detail
                                            : curl.easy_strerror(rc));
    return -1;
  }
  curl.easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &res->status);
  return 0;
}
