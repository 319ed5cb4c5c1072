/*
 * fetch.c - one plain HTTP request for a client with no protocol of its
 * own (the runner's probes); see http.h. The Kubernetes and control-plane
 * clients set up their handles themselves (TLS, tokens, watches).
 */
#define _GNU_SOURCE
#include "http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c,
    curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	const cep_http_fetch_opts *o = arg;
	return o->cancelled(o->arg) ? 1 : 0;
}

static void setup(CURL *h, const cep_http_fetch_opts *o, cep_http_reply *r)
{
	const char *m = o->method != NULL ? o->method : "GET";
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->error);
	curl_easy_setopt(h, CURLOPT_URL, o->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cep_http_on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
	if (o->cancelled != NULL) {
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)o);
	}
	if (o->user_agent != NULL)
		curl_easy_setopt(h, CURLOPT_USERAGENT, o->user_agent);
	if (strcmp(m, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	else if (strcmp(m, "POST") == 0)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, o->body ? o->body : "");
	else if (strcmp(m, "GET") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
}

/* An empty body is "", so callers can search and parse it as text. */
static int finish_body(cep_http_reply *r)
{
	if (r->body.buf == NULL)
		r->body.buf = calloc(1, 1);
	if (r->body.buf != NULL && !r->body.oom)
		return CEP_OK;
	snprintf(r->error, sizeof(r->error), "out of memory");
	return CEP_RESOURCE_EXHAUSTED;
}

int cep_http_fetch(const cep_http_fetch_opts *o, cep_http_reply *r)
{
	*r = (cep_http_reply){.body = {.max = o->max,
	                          .truncate = o->truncate,
	                          .retry_after_ms = -1}};
	if (cep_http_global_init(NULL) != CEP_OK) {
		snprintf(r->error, sizeof(r->error), "curl_global_init failed");
		return CEP_UNAVAILABLE;
	}
	CURL *h = curl_easy_init();
	if (h == NULL) {
		snprintf(r->error, sizeof(r->error), "cannot set up a request");
		return CEP_RESOURCE_EXHAUSTED;
	}
	setup(h, o, r);
	CURLcode rc = curl_easy_perform(h);
	double t = 0;
	curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &t);
	r->latency_ms = (uint32_t)(t * 1000.0);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_cleanup(h);
	int rv = finish_body(r);
	if (rv != CEP_OK || rc == CURLE_OK)
		return rv;
	/* curl's error buffer is the specific message (it usually repeats
	 * the generic one at its end); the generic text only when there is
	 * nothing better */
	if (r->error[0] == '\0')
		snprintf(r->error, sizeof(r->error), "%s",
		    curl_easy_strerror(rc));
	return CEP_UNAVAILABLE;
}

void cep_http_reply_free(cep_http_reply *r)
{
	if (r == NULL)
		return;
	free(r->body.buf);
	r->body.buf = NULL;
}

char *cep_http_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1), *o = out;
	if (out == NULL)
		return NULL;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}
