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
} curl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int loaded;
/* One handle per exporter thread keeps the connection alive between
 * batches; a forked child's new thread gets a new one. */
static __thread CURL *handle;

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
#undef SYM
  if (!curl.global_init || !curl.easy_init || !curl.easy_setopt || !curl.easy_perform ||
      !curl.easy_getinfo || !curl.easy_reset || !curl.easy_strerror || !curl.slist_append ||
      !curl.slist_free_all) {
    tgo__log(TGO_LOG_ERROR, "libcurl lacks expected functions; OTLP export is off");
    return;
  }
  /* No CURL_GLOBAL_SSL side effects on signals: the host owns them. */
  if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    tgo__log(TGO_LOG_ERROR, "libcurl initialisation failed; OTLP export is off");
    return;
  }
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
  }
  return len;
}

int tgo__http_post(const char *url, const char *const *headers, size_t n_headers,
                   const uint8_t *body, size_t len, int timeout_ms, tgo__http_result *res) {
  memset(res, 0, sizeof *res);
  res->retry_after_s = -1;
  pthread_once(&load_once, load_curl);
  if (!loaded) {
    res->transport_error = 0;
    res->status = 0;
    snprintf(res->error, sizeof res->error, "libcurl unavailable");
    return -1;
  }
  if (!handle && !(handle = curl.easy_init())) {
    res->transport_error = 1;
    snprintf(res->error, sizeof res->error, "curl_easy_init failed");
    return -1;
  }
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
  CURLcode rc = curl.easy_perform(handle);
  curl.slist_free_all(list);
  if (rc != CURLE_OK) {
    res->transport_error = 1;
    snprintf(res->error, sizeof res->error, "%s", curl.easy_strerror(rc));
    return -1;
  }
  curl.easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &res->status);
  return 0;
}
