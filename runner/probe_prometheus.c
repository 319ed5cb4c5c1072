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
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "params.h"
#include "probe.h"

#define BODY_MAX (256u * 1024u)
#define API_PATH "/api/v1/query"

static bool cancelled(const void *env)
{
	return runner_probe_cancelled(env);
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
static char *query_url(const char *base, const char *query)
{
	size_t blen = strlen(base);
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	size_t plen = strlen(API_PATH);
	const char *path = (blen >= plen &&
	                       strncmp(base + blen - plen, API_PATH, plen) ==
	                           0) ?
	    "" :
	    API_PATH;
	char *q = cep_http_escape(query);
	if (q == NULL)
		return NULL;
	size_t need = blen + strlen(path) + strlen(q) + 16;
	char *url = malloc(need);
	if (url != NULL)
		snprintf(url, need, "%.*s%s?query=%s", (int)blen, base, path,
		    q);
	free(q);
	return url;
}

/* A "value" pair [time, "text"] to a double; false if malformed. */
static bool sample_value(json_t *pair, double *v)
{
	const char *s = json_string_value(json_array_get(pair, 1));
	if (!json_is_array(pair) || json_array_size(pair) != 2 || s == NULL ||
	    *s == '\0')
		return false;
	char *end = NULL;
	*v = strtod(s, &end); /* also "NaN", "+Inf", "-Inf" */
	return *end == '\0';
}

/* The one sample of data, or false with the reason in detail. */
static bool one_sample(json_t *data, double *v, char *detail, size_t dlen)
{
	const char *type = json_string_value(
	    json_object_get(data, "resultType"));
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
			snprintf(detail, dlen,
			    "query returned %zu series, want 1", n);
			return false;
		}
		if (sample_value(json_object_get(json_array_get(res, 0),
		                     "value"),
		        v))
			return true;
	} else {
		snprintf(detail, dlen,
		    "query returned a %.16s, want an instant "
		    "vector or a scalar",
		    type);
		return false;
	}
	snprintf(detail, dlen, "malformed %.16s sample in the answer", type);
	return false;
}

/* The comparison given (the model guarantees exactly one). */
static bool compare(const cep_exp_item *it, double v, char *detail, size_t dlen)
{
	static const struct {
		const char *key, *op;
	} ops[] = {{"below", "<"}, {"atMost", "<="}, {"above", ">"},
	    {"atLeast", ">="}, {"equals", "=="}};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (!cep_exp_has(it, ops[i].key))
			continue;
		double t = cep_exp_num(it, ops[i].key);
		bool ok = i == 0 ? v < t :
		    i == 1       ? v <= t :
		    i == 2       ? v > t :
		    i == 3       ? v >= t :
		                   v == t;
		char vs[32] = "NaN";
		if (!isnan(v))
			snprintf(vs, sizeof(vs), "%.15g", v);
		snprintf(detail, dlen, "value %s, want %s %.15g", vs, ops[i].op,
		    t);
		return ok && !isnan(v);
	}
	snprintf(detail, dlen, "no comparison given");
	return false;
}

/* Judges a completed exchange: status, JSON, Prometheus' status. */
static bool judge(const cep_exp_item *it, const char *uname, long status,
    const cep_http_resp *b, char *detail, size_t dlen)
{
	json_error_t jerr;
	json_t *root = json_loadb(b->buf, b->len, 0, &jerr);
	const char *st = json_string_value(json_object_get(root, "status"));
	bool ok = false;
	if (root == NULL || st == NULL) {
		snprintf(detail, dlen,
		    "%s: HTTP %ld, not a Prometheus answer "
		    "(%.60s)",
		    uname, status, root == NULL ? jerr.text : "no \"status\"");
	} else if (status != 200 || strcmp(st, "success") != 0) {
		const char *et = json_string_value(
		    json_object_get(root, "errorType"));
		const char *em = json_string_value(
		    json_object_get(root, "error"));
		snprintf(detail, dlen, "%s: HTTP %ld, %.32s: %.100s", uname,
		    status, et ? et : "error", em ? em : "(no message)");
	} else {
		double v = 0;
		ok = one_sample(json_object_get(root, "data"), &v, detail,
		         dlen) &&
		    compare(it, v, detail, dlen);
	}
	json_decref(root);
	return ok;
}

static bool prom_try(const cep_exp_item *it, const cep_probe_env *env,
    char *detail, size_t dlen, uint32_t *latency_ms)
{
	const char *base = cep_exp_str(it, "url");
	char uname[128];
	url_for_msg(base ? base : "", uname, sizeof(uname));
	char *url = query_url(base ? base : "",
	    runner_param_str(it, "query", ""));
	if (url == NULL) {
		snprintf(detail, dlen, "cannot set up a query to %s", uname);
		return false;
	}
	const cep_http_fetch_opts o = {.url = url,
	    .user_agent = "cep-runner/" CEP_VERSION,
	    .timeout_ms = runner_param_ms(it, "timeout", 2000),
	    .max = BODY_MAX,
	    .cancelled = cancelled,
	    .arg = env};
	cep_http_reply r;
	int rc = cep_http_fetch(&o, &r);
	*latency_ms = r.latency_ms;
	bool ok = false;
	if (r.body.over)
		snprintf(detail, dlen, "%s: answer larger than %u bytes", uname,
		    BODY_MAX);
	else if (rc != CEP_OK)
		snprintf(detail, dlen, "%s: %.160s", uname, r.error);
	else
		ok = judge(it, uname, r.status, &r.body, detail, dlen);
	cep_http_reply_free(&r);
	free(url);
	return ok;
}

const cep_probe_ops runner_probe_prometheus = {
    .type = "prometheus",
    .try_once = prom_try,
};
