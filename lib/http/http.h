/*
 * http.h - the only libcurl setup. What every libcurl client shares (the
 * Kubernetes client, the control-plane client): curl_global_init once, a
 * response body with a size cap, Retry-After, server text made safe for
 * logs, and a libcurl failure as a cep_err; the clients keep their own
 * protocol logic. A client with no protocol of its own (the runner's http
 * and prometheus probes) makes its one request with cep_http_fetch
 * (fetch.c) and includes no <curl/curl.h>.
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
	char *buf; /* NUL-terminated; the caller frees */
	size_t len, cap, max;
	/* past max: false, the transfer is aborted (over); true, the first
	 * max bytes are kept and the rest read and dropped */
	bool truncate;
	bool over; /* the body passed max: transfer aborted */
	bool oom;
	int64_t retry_after_ms; /* Retry-After in seconds, as ms; -1 none */
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

/* One plain request (fetch.c): http/https only, redirects not followed
 * (a 302 is an answer), no proxy for loopback, no signals. */
typedef struct cep_http_fetch_opts {
	const char *url;
	const char *method;     /* NULL or "GET", "HEAD", "POST", or custom */
	const char *body;       /* POST's body (NULL: empty) */
	const char *user_agent; /* NULL: none */
	int64_t timeout_ms;     /* the whole exchange */
	size_t max;             /* body bytes kept */
	bool truncate;          /* as in cep_http_resp */
	/* polled during the transfer (NULL: never): true aborts it */
	bool (*cancelled)(const void *arg);
	const void *arg;
} cep_http_fetch_opts;

#define CEP_HTTP_ERROR_MAX 256

typedef struct cep_http_reply {
	long status;         /* the HTTP status; 0 without an answer */
	uint32_t latency_ms; /* the whole exchange, as far as it went */
	cep_http_resp body;  /* body.buf is never NULL after a fetch */
	/* why the transfer failed: libcurl's specific message, else its
	 * generic one. Server text is not in it. */
	char error[CEP_HTTP_ERROR_MAX];
} cep_http_reply;

/* CEP_OK with an answer (whatever its status) in *r, else CEP_UNAVAILABLE
 * (CEP_RESOURCE_EXHAUSTED without memory) with r->error set and
 * r->body.over if the body passed max. Free r with cep_http_reply_free
 * in every case. */
int cep_http_fetch(const cep_http_fetch_opts *o, cep_http_reply *r);
void cep_http_reply_free(cep_http_reply *r);

/* s percent-encoded for a URL's query (all but A-Z a-z 0-9 - . _ ~);
 * NULL without memory. free() it. */
char *cep_http_escape(const char *s);

#endif
