/*
 * probe_prometheus.c - `prometheus` probe: one PromQL instant query
 * through Prometheus' HTTP API (GET <url>/api/v1/query?query=...), its
 * single sample compared with a threshold.
 *
 * The answer must be exactly one sample: a one-series instant vector or a
 * scalar. Zero series usually means a typo in a metric name or a target
 * that is not scraped; several mean the query is ambiguous - both fail
 * the check rather than guessing. NaN fails too (no comparison holds).
 * The response is read only up to BODY_MAX; a larger one is an error
 * (one sample is a few hundred bytes). Details name the URL without any
 * user:password part, and Prometheus' own errorType/error.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "probe.h"

#define BODY_MAX (256u * 1024u)
#define API_PATH "/api/v1/query"

typedef struct prom_buf {
	char *data;
	size_t len;
	bool overflow;
} prom_buf;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
	prom_buf *b = arg;
	size_t len = size * n;
	if (len > BODY_MAX - b->len) {
		b->overflow = true;
		return 0;   /* curl stops with CURLE_WRITE_ERROR */
	}
	memcpy(b->data + b->len, ptr, len);
	b->len += len;
	return len;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c,
    curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	return cep_probe_cancelled(arg) ? 1 : 0;
}

/* The base URL for messages: no "user:password@" (a secret), bounded. */
static void url_for_msg(const char *url, char *out, size_t olen)
{
	const char *s = strstr(url, "://");
	s = s != NULL ? s + 3 : url;
	size_t auth = strcspn(s, "/?#");
	const char *at = memchr(s, '@', auth);
	if (at == NULL)
		snprintf(out, olen, "%.96s", url);
	else
		snprintf(out, olen, "%.*s%.96s", (int)(s - url), url, at + 1);
}

/* <base>/api/v1/query?query=<escaped>, or NULL. A base that already ends
 * in /api/v1/query is taken as it is. */
static char *query_url(CURL *h, const char *base, const char *query)
{
	size_t blen = strlen(base);
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	size_t plen = strlen(API_PATH);
	const char *path = (blen >= plen &&
	    strncmp(base + blen - plen, API_PATH, plen) == 0) ? "" : API_PATH;
	char *q = curl_easy_escape(h, query, 0);
	if (q == NULL)
		return NULL;
	size_t need = blen + strlen(path) + strlen(q) + 16;
	char *url = malloc(need);
	if (url != NULL)
		snprintf(url, need, "%.*s%s?query=%s", (int)blen, base, path, q);
	curl_free(q);
	return url;
}

static void setup(CURL *h, const char *url, const cep_exp_item *it,
    const cep_probe_env *env, prom_buf *b)
{
	curl_easy_setopt(h, CURLOPT_URL, url);
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
}

/* A "value" pair [time, "text"] to a double; false if malformed. */
static bool sample_value(json_t *pair, double *v)
{
	const char *s = json_string_value(json_array_get(pair, 1));
	if (!json_is_array(pair) || json_array_size(pair) != 2 || s == NULL ||
	    *s == '\0')
		return false;
	char *end = NULL;
	*v = strtod(s, &end);   /* also "NaN", "+Inf", "-Inf" */
	return *end == '\0';
}

/* The one sample of data, or false with the reason in detail. */
static bool one_sample(json_t *data, double *v, char *detail, size_t dlen)
{
	const char *type = json_string_value(json_object_get(data, "resultType"));
	json_t *res = json_object_get(data, "result");
	if (type == NULL || res == NULL) {
		snprintf(detail, dlen, "answer lacks data.resultType/result");
		return false;
	}
	if (strcmp(type, "scalar") == 0) {
		if (sample_value(res, v))
			return true;
	} else if (strcmp(type, "vector") == 0 && json_is_array(res)) {
		size_t n = json_array_size(res);
		if (n != 1) {
			snprintf(detail, dlen, "query returned %zu series, want 1",
			    n);
			return false;
		}
		if (sample_value(json_object_get(json_array_get(res, 0),
		    "value"), v))
			return true;
	} else {
		snprintf(detail, dlen, "query returned a %.16s, want an instant "
		    "vector or a scalar", type);
		return false;
	}
	snprintf(detail, dlen, "malformed %.16s sample in the answer", type);
	return false;
}

/* The comparison given (the model guarantees exactly one). */
static bool compare(const cep_exp_item *it, double v, char *detail,
    size_t dlen)
{
	static const struct {
		const char *key, *op;
	} ops[] = {{"below", "<"}, {"atMost", "<="}, {"above", ">"},
	    {"atLeast", ">="}, {"equals", "=="}};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (!cep_exp_has(it, ops[i].key))
			continue;
		double t = cep_exp_num(it, ops[i].key);
		bool ok = i == 0 ? v < t : i == 1 ? v <= t : i == 2 ? v > t :
		    i == 3 ? v >= t : v == t;
		char vs[32] = "NaN";
		if (!isnan(v))
			snprintf(vs, sizeof(vs), "%.15g", v);
		snprintf(detail, dlen, "value %s, want %s %.15g", vs,
		    ops[i].op, t);
		return ok && !isnan(v);
	}
	snprintf(detail, dlen, "no comparison given");
	return false;
}

/* Judges a completed exchange: status, JSON, Prometheus' status. */
static bool judge(const cep_exp_item *it, const char *uname, long status,
    const prom_buf *b, char *detail, size_t dlen)
{
	json_error_t jerr;
	json_t *root = json_loadb(b->data, b->len, 0, &jerr);
	const char *st = json_string_value(json_object_get(root, "status"));
	bool ok = false;
	if (root == NULL || st == NULL) {
		snprintf(detail, dlen, "%s: HTTP %ld, not a Prometheus answer "
		    "(%.60s)", uname, status,
		    root == NULL ? jerr.text : "no \"status\"");
	} else if (status != 200 || strcmp(st, "success") != 0) {
		const char *et = json_string_value(json_object_get(root,
		    "errorType"));
		const char *em = json_string_value(json_object_get(root,
		    "error"));
		snprintf(detail, dlen, "%s: HTTP %ld, %.32s: %.100s", uname,
		    status, et ? et : "error", em ? em : "(no message)");
	} else {
		double v = 0;
		ok = one_sample(json_object_get(root, "data"), &v, detail,
		    dlen) && compare(it, v, detail, dlen);
	}
	json_decref(root);
	return ok;
}

static bool prom_try(const cep_exp_item *it, const cep_probe_env *env,
    char *detail, size_t dlen, uint32_t *latency_ms)
{
	pthread_once(&curl_once, curl_init_once);
	const char *base = cep_exp_str(it, "url");
	char uname[128];
	url_for_msg(base ? base : "", uname, sizeof(uname));
	prom_buf b = {.data = malloc(BODY_MAX)};
	CURL *h = b.data != NULL ? curl_easy_init() : NULL;
	char *url = h != NULL ? query_url(h, base ? base : "",
	    cep_runner_param_str(it, "query", "")) : NULL;
	if (url == NULL) {
		if (h != NULL)
			curl_easy_cleanup(h);
		free(b.data);
		snprintf(detail, dlen, "cannot set up a query to %s", uname);
		return false;
	}
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	setup(h, url, it, env, &b);
	CURLcode rc = curl_easy_perform(h);
	double t = 0;
	curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &t);
	*latency_ms = (uint32_t)(t * 1000.0);
	bool ok = false;
	if (b.overflow) {
		snprintf(detail, dlen, "%s: answer larger than %u bytes", uname,
		    BODY_MAX);
	} else if (rc != CURLE_OK) {
		snprintf(detail, dlen, "%s: %.160s", uname,
		    errbuf[0] ? errbuf : curl_easy_strerror(rc));
	} else {
		long status = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		ok = judge(it, uname, status, &b, detail, dlen);
	}
	curl_easy_cleanup(h);
	free(url);
	free(b.data);
	return ok;
}

const cep_probe_ops cep_probe_prometheus = {
	.type = "prometheus",
	.try_once = prom_try,
};
