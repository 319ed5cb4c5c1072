/*
 * probe_http.c - `http` probe: one request with libcurl (easy API).
 *
 * Passes when the status equals expectStatus, the body contains bodyMatch
 * (if set) and the answer came within latencyBudget (if set). Redirects
 * are not followed (a 302 is an answer, not a detour). The body is kept
 * only up to BODY_MAX for matching and never copied into the detail.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "probe.h"

#define BODY_MAX (64u * 1024u)

typedef struct http_buf {
	char data[BODY_MAX + 1];
	size_t len;
} http_buf;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
	http_buf *b = arg;
	size_t len = size * n, room = BODY_MAX - b->len;
	size_t take = len < room ? len : room;
	memcpy(b->data + b->len, ptr, take);
	b->len += take;
	b->data[b->len] = '\0';
	return len;   /* the rest is read and dropped */
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c,
    curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	return cep_probe_cancelled(arg) ? 1 : 0;
}

static void setup(CURL *h, const cep_exp_item *it, const cep_probe_env *env,
    http_buf *b)
{
	const char *method = cep_runner_param_str(it, "method", "GET");
	const char *body = cep_runner_param_str(it, "body", NULL);
	curl_easy_setopt(h, CURLOPT_URL, cep_exp_str(it, "url"));
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
	    (long)cep_runner_param_ms(it, "timeout", 2000));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)env);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "cep-runner/" CEP_VERSION);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "POST") == 0)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
	else if (strcmp(method, "GET") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
}

/* Judges a completed exchange. */
static bool judge(const cep_exp_item *it, long status, const http_buf *b,
    uint32_t lat, char *detail, size_t dlen)
{
	long want = (long)cep_runner_param_int(it, "expectStatus", 200);
	const char *match = cep_runner_param_str(it, "bodyMatch", NULL);
	int64_t budget = cep_runner_param_ms(it, "latencyBudget", 0);
	if (status != want) {
		snprintf(detail, dlen, "status %ld, want %ld (%ums)", status, want,
		    lat);
		return false;
	}
	if (match != NULL && strstr(b->data, match) == NULL) {
		snprintf(detail, dlen, "status %ld, body (%zu bytes) lacks \"%.64s\"",
		    status, b->len, match);
		return false;
	}
	if (budget > 0 && lat > budget) {
		snprintf(detail, dlen, "status %ld, latency %ums > %lldms", status,
		    lat, (long long)budget);
		return false;
	}
	snprintf(detail, dlen, "status %ld (%ums)", status, lat);
	return true;
}

static bool http_try(const cep_exp_item *it, const cep_probe_env *env,
    char *detail, size_t dlen, uint32_t *latency_ms)
{
	pthread_once(&curl_once, curl_init_once);
	http_buf *b = calloc(1, sizeof(*b));
	CURL *h = b != NULL ? curl_easy_init() : NULL;
	if (h == NULL) {
		free(b);
		snprintf(detail, dlen, "cannot set up an HTTP request");
		return false;
	}
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	setup(h, it, env, b);
	CURLcode rc = curl_easy_perform(h);
	double t = 0;
	curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &t);
	*latency_ms = (uint32_t)(t * 1000.0);
	bool ok = false;
	if (rc != CURLE_OK) {
		/* curl's error buffer is the specific message (it usually
		 * repeats the generic one at its end); the generic text only
		 * when there is nothing better */
		snprintf(detail, dlen, "%.200s",
		    errbuf[0] ? errbuf : curl_easy_strerror(rc));
	} else {
		long status = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		ok = judge(it, status, b, *latency_ms, detail, dlen);
	}
	curl_easy_cleanup(h);
	free(b);
	return ok;
}

const cep_probe_ops cep_probe_http = {
	.type = "http",
	.try_once = http_try,
};
