/*
 * test_probe_prometheus.c - the `prometheus` probe against a fake
 * Prometheus HTTP API served in-process (nng's HTTP server): one handler
 * per canned answer, at /<name>/api/v1/query, so that the probe's url is
 * http://127.0.0.1:PORT/<name>. Also the schema: exactly one comparison,
 * every probe mode.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe.h"
#include "rt.h"
#include "testutil.h"
#include "clock.h"

static nng_http_server *srv;
static int port;
static cep_runner_ctl *ctl;
static pthread_mutex_t uri_mu = PTHREAD_MUTEX_INITIALIZER;
static char last_uri[1024];

#define VEC1(v)                                                                \
	"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","         \
	"\"result\":[{\"metric\":{\"job\":\"x\"},\"value\":[1700000000.1,\"" v \
	"\"]}]}}"

typedef struct canned {
	const char *name;
	int status;
	const char *body; /* NULL: a big body, generated */
	int delay_ms;
} canned;

static const canned answers[] = {
    {"one", 200, VEC1("0.42"), 0},
    {"count", 200, VEC1("3"), 0},
    {"nan", 200, VEC1("NaN"), 0},
    {"inf", 200, VEC1("+Inf"), 0},
    {"scalar", 200,
        "{\"status\":\"success\",\"data\":{\"resultType\":"
        "\"scalar\",\"result\":[1700000000.1,\"7\"]}}",
        0},
    {"none", 200,
        "{\"status\":\"success\",\"data\":{\"resultType\":"
        "\"vector\",\"result\":[]}}",
        0},
    {"three", 200,
        "{\"status\":\"success\",\"data\":{\"resultType\":"
        "\"vector\",\"result\":[{\"metric\":{},\"value\":[1,\"1\"]},"
        "{\"metric\":{},\"value\":[1,\"2\"]},"
        "{\"metric\":{},\"value\":[1,\"3\"]}]}}",
        0},
    {"matrix", 200,
        "{\"status\":\"success\",\"data\":{\"resultType\":"
        "\"matrix\",\"result\":[]}}",
        0},
    {"badsample", 200,
        "{\"status\":\"success\",\"data\":{\"resultType\":"
        "\"vector\",\"result\":[{\"metric\":{},\"value\":[1,2]}]}}",
        0},
    {"garbage", 200, "{\"status\": \"success\", \"data\": [", 0},
    {"notjson", 200, "<html>hello</html>", 0},
    {"bad", 400,
        "{\"status\":\"error\",\"errorType\":\"bad_data\","
        "\"error\":\"1:4: parse error: unexpected <op:>>\"}",
        0},
    {"down", 503,
        "{\"status\":\"error\",\"errorType\":\"unavailable\","
        "\"error\":\"TSDB not ready\"}",
        0},
    {"big", 200, NULL, 0},
    {"slow", 200, VEC1("1"), 1500},
};

#define BIG_LEN (600u * 1024u)

static void handle(nng_aio *aio)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	const canned *c = nng_http_handler_get_data(h);
	pthread_mutex_lock(&uri_mu);
	snprintf(last_uri, sizeof(last_uri), "%s", nng_http_req_get_uri(req));
	pthread_mutex_unlock(&uri_mu);
	nng_http_res *res;
	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	if (c->delay_ms > 0)
		cep_clock_sleep_ms(c->delay_ms);
	nng_http_res_set_status(res, (uint16_t)c->status);
	nng_http_res_set_header(res, "Content-Type", "application/json");
	if (c->body != NULL) {
		nng_http_res_copy_data(res, c->body, strlen(c->body));
	} else {
		char *big = malloc(BIG_LEN);
		memset(big, ' ', BIG_LEN);
		big[0] = '{';
		big[BIG_LEN - 1] = '}';
		nng_http_res_copy_data(res, big, BIG_LEN);
		free(big);
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static void setup(void)
{
	ctl = runner_ctl_new();
	port = cep_test_free_port();
	char u[64];
	snprintf(u, sizeof(u), "http://127.0.0.1:%d", port);
	nng_url *url;
	cr_assert_eq(nng_url_parse(&url, u), 0);
	cr_assert_eq(nng_http_server_hold(&srv, url), 0);
	nng_url_free(url);
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		char path[64];
		snprintf(path, sizeof(path), "/%s/api/v1/query",
		    answers[i].name);
		nng_http_handler *h;
		cr_assert_eq(nng_http_handler_alloc(&h, path, handle), 0);
		nng_http_handler_set_data(h, (void *)&answers[i], NULL);
		cr_assert_eq(nng_http_server_add_handler(srv, h), 0);
	}
	cr_assert_eq(nng_http_server_start(srv), 0);
}

static void teardown(void)
{
	nng_http_server_stop(srv);
	nng_http_server_release(srv);
	runner_ctl_free(ctl);
}

TestSuite(prom, .init = setup, .fini = teardown, .timeout = 60);

/* One check of a prometheus probe; params after url. */
static bool check_url(const char *url, const char *params, char *detail)
{
	char yaml[2048];
	snprintf(yaml, sizeof(yaml),
	    "apiVersion: cep.io/v1\nkind: Experiment\n"
	    "metadata: {name: t}\nspec:\n  duration: 1s\n  probes:\n"
	    "    - {name: p, type: prometheus, mode: start-of-test, "
	    "url: \"%s\", %s}\n",
	    url, params);
	cep_exp *e = rt_parse(yaml);
	cep_probe_env env = {.ctl = ctl};
	uint32_t lat = 0;
	detail[0] = '\0';
	bool ok = runner_probe_check(cep_exp_probe(e, 0), &env, detail,
	    CEP_PROBE_DETAIL_MAX, &lat);
	cep_exp_free(e);
	return ok;
}

static bool check(const char *name, const char *params, char *detail)
{
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/%s", port, name);
	return check_url(url, params, detail);
}

#define Q "query: \"up\", "

Test(prom, below_passes_with_value_in_detail)
{
	char d[CEP_PROBE_DETAIL_MAX];
	cr_expect(check("one", Q "below: 0.5", d), "%s", d);
	cr_expect_str_eq(d, "value 0.42, want < 0.5");
}

Test(prom, every_operator)
{
	char d[CEP_PROBE_DETAIL_MAX];
	cr_expect(check("count", Q "below: 4", d), "%s", d);
	cr_expect_not(check("count", Q "below: 3", d), "%s", d);
	cr_expect_str_eq(d, "value 3, want < 3");
	cr_expect(check("count", Q "atMost: 3", d), "%s", d);
	cr_expect_not(check("count", Q "atMost: 2.5", d), "%s", d);
	cr_expect(check("count", Q "above: 2.5", d), "%s", d);
	cr_expect_not(check("count", Q "above: 3", d), "%s", d);
	cr_expect_str_eq(d, "value 3, want > 3");
	cr_expect(check("count", Q "atLeast: 3", d), "%s", d);
	cr_expect_not(check("count", Q "atLeast: 4", d), "%s", d);
	cr_expect_str_eq(d, "value 3, want >= 4");
	cr_expect(check("count", Q "equals: 3", d), "%s", d);
	cr_expect_not(check("count", Q "equals: -3", d), "%s", d);
	cr_expect_str_eq(d, "value 3, want == -3");
}

Test(prom, scalar_result)
{
	char d[CEP_PROBE_DETAIL_MAX];
	cr_expect(check("scalar", Q "equals: 7", d), "%s", d);
	cr_expect_str_eq(d, "value 7, want == 7");
}

Test(prom, zero_or_several_series_fail)
{
	char d[CEP_PROBE_DETAIL_MAX];
	cr_expect_not(check("none", Q "atLeast: 0", d));
	cr_expect_str_eq(d, "query returned 0 series, want 1");
	cr_expect_not(check("three", Q "atLeast: 0", d));
	cr_expect_str_eq(d, "query returned 3 series, want 1");
}

Test(prom, nan_fails_every_comparison)
{
	char d[CEP_PROBE_DETAIL_MAX];
	const char *ops[] = {"below: 1", "atMost: 1", "above: -1",
	    "atLeast: -1", "equals: 0"};
	for (size_t i = 0; i < 5; i++) {
		char p[64];
		snprintf(p, sizeof(p), Q "%s", ops[i]);
		cr_expect_not(check("nan", p, d), "%s passed", ops[i]);
		cr_expect(strncmp(d, "value NaN, want ", 16) == 0, "%s", d);
	}
	/* +Inf is a number: above passes, below fails */
	cr_expect(check("inf", Q "above: 1000000", d), "%s", d);
	cr_expect_not(check("inf", Q "below: 1000000", d), "%s", d);
	cr_expect_str_eq(d, "value inf, want < 1000000");
}

Test(prom, other_result_types_and_bad_samples_fail)
{
	char d[CEP_PROBE_DETAIL_MAX];
	cr_expect_not(check("matrix", Q "atLeast: 0", d));
	cr_expect_str_eq(d,
	    "query returned a matrix, want an instant vector "
	    "or a scalar");
	cr_expect_not(check("badsample", Q "atLeast: 0", d));
	cr_expect_str_eq(d, "malformed vector sample in the answer");
}

Test(prom, malformed_json_fails_clearly)
{
	char d[CEP_PROBE_DETAIL_MAX];
	char want[128];
	snprintf(want, sizeof(want),
	    "http://127.0.0.1:%d/garbage: HTTP 200, "
	    "not a Prometheus answer",
	    port);
	cr_expect_not(check("garbage", Q "atLeast: 0", d));
	cr_expect(strstr(d, want) == d, "%s", d);
	cr_expect_not(check("notjson", Q "atLeast: 0", d));
	cr_expect(strstr(d, "not a Prometheus answer") != NULL, "%s", d);
}

Test(prom, http_error_names_url_and_error_type)
{
	char d[CEP_PROBE_DETAIL_MAX];
	char want[256];
	snprintf(want, sizeof(want),
	    "http://127.0.0.1:%d/bad: HTTP 400, "
	    "bad_data: 1:4: parse error: unexpected <op:>>",
	    port);
	cr_expect_not(check("bad", Q "atLeast: 0", d));
	cr_expect_str_eq(d, want);
	cr_expect_not(check("down", Q "atLeast: 0", d));
	cr_expect(strstr(d, "HTTP 503, unavailable: TSDB not ready") != NULL,
	    "%s", d);
}

Test(prom, oversized_answer_is_refused)
{
	char d[CEP_PROBE_DETAIL_MAX];
	cr_expect_not(check("big", Q "atLeast: 0", d));
	cr_expect(strstr(d, "/big: answer larger than 262144 bytes") != NULL,
	    "%s", d);
}

Test(prom, slow_answer_times_out)
{
	char d[CEP_PROBE_DETAIL_MAX];
	int64_t t0 = cep_clock_mono_ms();
	cr_expect_not(check("slow", Q "atLeast: 0, timeout: 300ms", d));
	int64_t took = cep_clock_mono_ms() - t0;
	cr_expect(strstr(d, "/slow: ") != NULL, "%s", d);
	cr_expect(strstr(d, "timed out") != NULL, "%s", d);
	/* the probe gave up itself, before the server's 1.5 s answer */
	cr_expect(took < 1400, "took %lld ms", (long long)took);
}

Test(prom, nothing_listening_names_url)
{
	char d[CEP_PROBE_DETAIL_MAX];
	char url[64];
	int p = cep_test_free_port();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", p);
	cr_expect_not(check_url(url, Q "atLeast: 0", d));
	cr_expect(strncmp(d, url, strlen(url)) == 0, "%s", d);
}

Test(prom, query_is_url_encoded)
{
	char d[CEP_PROBE_DETAIL_MAX];
	cr_expect(check("count",
	              "query: 'sum(rate(x{job=\"a b\"}[1m])) > 0 "
	              "& 1', atLeast: 0",
	              d),
	    "%s", d);
	pthread_mutex_lock(&uri_mu);
	cr_expect_str_eq(last_uri,
	    "/count/api/v1/query?query=sum%28rate%28x"
	    "%7Bjob%3D%22a%20b%22%7D%5B1m%5D%29%29%20%3E%200%20%26%201");
	pthread_mutex_unlock(&uri_mu);
}

Test(prom, full_api_url_and_trailing_slash_accepted)
{
	char d[CEP_PROBE_DETAIL_MAX];
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/one/api/v1/query",
	    port);
	cr_expect(check_url(url, Q "below: 1", d), "%s", d);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/one/", port);
	cr_expect(check_url(url, Q "below: 1", d), "%s", d);
}

Test(prom, credentials_never_in_detail)
{
	char d[CEP_PROBE_DETAIL_MAX];
	char url[128];
	snprintf(url, sizeof(url), "http://alice:s3cret@127.0.0.1:%d/bad",
	    port);
	cr_expect_not(check_url(url, Q "atLeast: 0", d));
	cr_expect(strstr(d, "s3cret") == NULL, "%s", d);
	cr_expect(strstr(d, "alice") == NULL, "%s", d);
	cr_expect(strstr(d, "bad_data") != NULL, "%s", d);
}

Test(prom, attempts_retry_then_report_last)
{
	char d[CEP_PROBE_DETAIL_MAX];
	cr_expect_not(check("three",
	    Q "atLeast: 0, attempts: 2, "
	      "interval: 50ms",
	    d));
	cr_expect_str_eq(d, "query returned 3 series, want 1");
}

/* ---- schema ---- */

static int parse(const char *probe, char *msg, size_t mlen)
{
	char yaml[1024];
	snprintf(yaml, sizeof(yaml),
	    "apiVersion: cep.io/v1\nkind: Experiment\n"
	    "metadata: {name: t}\nspec:\n  duration: 1s\n  probes:\n"
	    "    - {name: p, type: prometheus, %s}\n",
	    probe);
	cep_exp *e = NULL;
	cep_err err = {0};
	int rc = cep_exp_parse(yaml, strlen(yaml), "t.yaml", &e, NULL, &err);
	snprintf(msg, mlen, "%s", err.msg);
	cep_exp_free(e);
	return rc;
}

Test(prom_schema, exactly_one_comparison)
{
	char m[1024];
	cr_expect_neq(parse("mode: edge, url: \"http://p:9090\", query: up", m,
	                  sizeof(m)),
	    CEP_OK);
	cr_expect(strstr(m, "none of below, atMost, above, atLeast, equals") !=
	        NULL,
	    "%s", m);
	cr_expect_neq(parse("mode: edge, url: \"http://p:9090\", query: up, "
	                    "below: 1, above: 0",
	                  m, sizeof(m)),
	    CEP_OK);
	cr_expect(strstr(m, "both 'below' and 'above'") != NULL, "%s", m);
}

Test(prom_schema, required_and_typed_params)
{
	char m[1024];
	cr_expect_neq(parse("mode: edge, query: up, below: 1", m, sizeof(m)),
	    CEP_OK);
	cr_expect(strstr(m, "url") != NULL, "%s", m);
	cr_expect_neq(parse("mode: edge, url: \"http://p:9090\", below: 1", m,
	                  sizeof(m)),
	    CEP_OK);
	cr_expect(strstr(m, "query") != NULL, "%s", m);
	cr_expect_neq(parse("mode: edge, url: \"ftp://p\", query: up, "
	                    "below: 1",
	                  m, sizeof(m)),
	    CEP_OK);
	cr_expect_neq(parse("mode: edge, url: \"http://p:9090\", query: up, "
	                    "below: lots",
	                  m, sizeof(m)),
	    CEP_OK);
	cr_expect(strstr(m, "below") != NULL, "%s", m);
}

Test(prom_schema, every_mode_and_timeout_default)
{
	const char *modes[] = {"start-of-test", "end-of-test", "edge",
	    "continuous", "on-chaos"};
	for (size_t i = 0; i < 5; i++) {
		char yaml[1024];
		snprintf(yaml, sizeof(yaml),
		    "apiVersion: cep.io/v1\n"
		    "kind: Experiment\nmetadata: {name: t}\nspec:\n"
		    "  duration: 1s\n  probes:\n    - {name: p, type: "
		    "prometheus, mode: %s, url: \"https://p:9090/prom\", "
		    "query: up, atLeast: 1, attempts: 3, interval: 200ms}\n",
		    modes[i]);
		cep_exp *e = rt_parse(yaml);
		const cep_exp_item *it = cep_exp_probe(e, 0);
		cr_expect_eq(cep_exp_int(it, "timeout"), 2000, "%s", modes[i]);
		cr_expect_eq(cep_exp_int(it, "attempts"), 3);
		cr_expect_eq(cep_exp_num(it, "atLeast"), 1.0);
		cep_exp_free(e);
	}
}
