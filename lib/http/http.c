/*
 * http.c - the libcurl pieces the lib/ clients share; see http.h.
 */
#define _GNU_SOURCE
#include "http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = (int)curl_global_init(CURL_GLOBAL_DEFAULT);
}

int cep_http_global_init(cep_err *err)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != 0)
		return cep_err_set(err, CEP_INTERNAL,
		    "curl_global_init failed: %s",
		    curl_easy_strerror((CURLcode)curl_init_rc));
	return CEP_OK;
}

size_t cep_http_on_body(char *p, size_t sz, size_t n, void *arg)
{
	cep_http_resp *r = arg;
	size_t add = sz * n;
	if (add > r->max - r->len && r->truncate) {
		size_t keep = r->max - r->len;
		if (keep > 0 && cep_http_on_body(p, 1, keep, arg) != keep)
			return 0;
		return add; /* the rest is read and dropped */
	}
	if (add > r->max - r->len) {
		r->over = true;
		return 0; /* CURLE_WRITE_ERROR: stop reading at once */
	}
	if (r->len + add + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		while (cap < r->len + add + 1)
			cap *= 2;
		char *b = realloc(r->buf, cap);
		if (b == NULL) {
			r->oom = true;
			return 0;
		}
		r->buf = b;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, p, add);
	r->len += add;
	r->buf[r->len] = '\0';
	return add;
}

size_t cep_http_on_header(char *p, size_t sz, size_t n, void *arg)
{
	cep_http_resp *r = arg;
	size_t len = sz * n;
	static const char key[] = "retry-after:";
	if (len > sizeof(key) && strncasecmp(p, key, sizeof(key) - 1) == 0) {
		char v[32];
		size_t vl = len - (sizeof(key) - 1);
		if (vl >= sizeof(v))
			vl = sizeof(v) - 1;
		memcpy(v, p + sizeof(key) - 1, vl);
		v[vl] = '\0';
		char *end;
		long long s = strtoll(v, &end, 10);
		while (*end == ' ' || *end == '\r' || *end == '\n')
			end++;
		/* HTTP-dates and nonsense fall back to the caller's backoff */
		if (end != v && *end == '\0' && s >= 0 && s <= 3600)
			r->retry_after_ms = s * 1000;
	}
	return len;
}

void cep_http_clean(char *dst, size_t len, const char *src, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && src[i] != '\0' && o + 1 < len; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	if (len > 0)
		dst[o] = '\0';
}

void cep_http_scrub(char *s, size_t len, const char *secret)
{
	static const char red[] = "[redacted]";
	size_t tl = secret ? strlen(secret) : 0;
	char *p;
	if (s == NULL)
		return;
	while (tl >= 4 && (p = strstr(s, secret)) != NULL) {
		size_t tail = strlen(p + tl);
		size_t rl = sizeof(red) - 1;
		if ((size_t)(p - s) + rl + tail + 1 > len)
			rl = 0;
		memmove(p + rl, p + tl, tail + 1);
		memcpy(p, red, rl);
	}
}

int cep_http_curl_err(cep_err *err, int code, const char *what,
    const char *detail, int64_t timeout_ms)
{
	const char *d = detail && detail[0] ?
	    detail :
	    curl_easy_strerror((CURLcode)code);
	switch ((CURLcode)code) {
	case CURLE_OPERATION_TIMEDOUT:
		return cep_err_set(err, CEP_DEADLINE_EXCEEDED,
		    "%s: no answer within %lld ms (%s)", what,
		    (long long)timeout_ms, d);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		return cep_err_set(err, CEP_UNAVAILABLE,
		    "%s: TLS: the server's certificate is not trusted: %s",
		    what, d);
	case CURLE_SSL_CERTPROBLEM:
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s: TLS: the client certificate or key is unusable: %s",
		    what, d);
	case CURLE_OUT_OF_MEMORY:
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "%s: out of memory", what);
	default: return cep_err_set(err, CEP_UNAVAILABLE, "%s: %s", what, d);
	}
}

int cep_http_url_parts(const char *url, const char *scheme, const char *what,
    char *host, size_t hlen, char *hostport, size_t hplen, cep_err *err)
{
	CURLU *u = curl_url();
	if (u == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	char *sch = NULL, *h = NULL, *port = NULL, *user = NULL;
	int rc = CEP_OK;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &sch, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK) {
		rc = cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s \"%.200s\" is "
		    "not a URL",
		    what, url);
	} else if (strcasecmp(sch, scheme) != 0 &&
	    !(strcmp(scheme, "http") == 0 && strcasecmp(sch, "https") == 0)) {
		rc = cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s \"%.200s\": "
		    "scheme %s not allowed, expected %s://",
		    what, url, sch, scheme);
	} else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
		/* credentials in a URL end up in logs and ps output */
		rc = cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s must not hold "
		    "a user name or password",
		    what);
	} else {
		curl_url_get(u, CURLUPART_PORT, &port, 0);
		size_t n = strlen(h);
		const char *hp = h;
		if (n >= 2 && h[0] == '[') { /* IPv6 literal */
			hp = h + 1;
			n -= 2;
		}
		if (n == 0 || n >= hlen)
			rc = cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "%s \"%.200s\""
			    ": bad host",
			    what, url);
		else {
			memcpy(host, hp, n);
			host[n] = '\0';
			snprintf(hostport, hplen, "%s%s%s", h, port ? ":" : "",
			    port ? port : "");
		}
	}
	curl_free(sch);
	curl_free(h);
	curl_free(port);
	curl_free(user);
	curl_url_cleanup(u);
	return rc;
}
