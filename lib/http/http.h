/*
 * http.h - what every libcurl client in lib/ shares (the Kubernetes client,
 * the control-plane client): curl_global_init once, a response body with a
 * size cap, Retry-After, server text made safe for logs, and a libcurl
 * failure as a cep_err. The clients keep their own protocol logic.
 */
#ifndef CEP_HTTP_H
#define CEP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* curl_global_init, once per process (it is not thread-safe itself). */
int cep_http_global_init(cep_err *err);

/* A response being received. Set max (bytes) and retry_after_ms = -1
 * before the transfer; hand the struct to both callbacks below. */
typedef struct cep_http_resp {
	char *buf;                  /* NUL-terminated; the caller frees */
	size_t len, cap, max;
	bool over;                  /* the body passed max: transfer aborted */
	bool oom;
	int64_t retry_after_ms;     /* Retry-After in seconds, as ms; -1 none */
} cep_http_resp;

/* CURLOPT_WRITEFUNCTION: appends, aborting the transfer past max. */
size_t cep_http_on_body(char *p, size_t sz, size_t n, void *arg);
/* CURLOPT_HEADERFUNCTION: reads Retry-After (delta-seconds, <= 1 h). */
size_t cep_http_on_header(char *p, size_t sz, size_t n, void *arg);

/* Copies at most n bytes of src (stops at NUL) with control characters
 * blanked: server text reaches logs and terminals. */
void cep_http_clean(char *dst, size_t len, const char *src, size_t n);

/* Replaces every occurrence of secret (>= 4 bytes) in s (a buffer of len
 * bytes) by "[redacted]": the last line of defence for messages built
 * from server text, which may echo a token back. */
void cep_http_scrub(char *s, size_t len, const char *secret);

/* A transfer failure (CURLcode) as a cep error prefixed by what; detail
 * is curl's error buffer ("" = curl_easy_strerror). */
int cep_http_curl_err(cep_err *err, int code, const char *what,
    const char *detail, int64_t timeout_ms);

#endif
