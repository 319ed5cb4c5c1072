/*
 * probe_http.c - `http` probe: one request (cep_http_fetch, lib/http).
 *
 * Passes when the status equals expectStatus, the body contains bodyMatch
 * (if set) and the answer came within latencyBudget (if set). Redirects
 * are not followed (a 302 is an answer, not a detour). The body is kept
 * only up to BODY_MAX for matching and never copied into the detail.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "params.h"
#include "probe.h"

#define BODY_MAX (64u * 1024u)

static bool cancelled(const void *env)
{
	return runner_probe_cancelled(env);
}

/* Judges a completed exchange. */
static bool judge(const cep_exp_item *it, long status, const cep_http_resp *b,
    uint32_t lat, char *detail, size_t dlen)
{
	long want = (long)runner_param_int(it, "expectStatus", 200);
	const char *match = runner_param_str(it, "bodyMatch", NULL);
	int64_t budget = runner_param_ms(it, "latencyBudget", 0);
	if (status != want) {
		snprintf(detail, dlen, "status %ld, want %ld (%ums)", status,
		    want, lat);
		return false;
	}
	if (match != NULL && strstr(b->buf, match) == NULL) {
		snprintf(detail, dlen,
		    "status %ld, body (%zu bytes) lacks \"%.64s\"", status,
		    b->len, match);
		return false;
	}
	if (budget > 0 && lat > budget) {
		snprintf(detail, dlen, "status %ld, latency %ums > %lldms",
		    status, lat, (long long)budget);
		return false;
	}
	snprintf(detail, dlen, "status %ld (%ums)", status, lat);
	return true;
}

static bool http_try(const cep_exp_item *it, const cep_probe_env *env,
    char *detail, size_t dlen, uint32_t *latency_ms)
{
	const cep_http_fetch_opts o = {.url = cep_exp_str(it, "url"),
	    .method = runner_param_str(it, "method", "GET"),
	    .body = runner_param_str(it, "body", NULL),
	    .user_agent = "cep-runner/" CEP_VERSION,
	    .timeout_ms = runner_param_ms(it, "timeout", 2000),
	    .max = BODY_MAX,
	    .truncate = true,
	    .cancelled = cancelled,
	    .arg = env};
	cep_http_reply r;
	bool ok = false;
	if (cep_http_fetch(&o, &r) != CEP_OK)
		snprintf(detail, dlen, "%.200s", r.error);
	else
		ok = judge(it, r.status, &r.body, r.latency_ms, detail, dlen);
	*latency_ms = r.latency_ms;
	cep_http_reply_free(&r);
	return ok;
}

const cep_probe_ops runner_probe_http = {
    .type = "http",
    .try_once = http_try,
};
