/*
 * test_metrics.c - lib/metrics: the registry, the text format it renders
 * (HELP/TYPE, escaping, ordering, values), concurrent updates, and the
 * HTTP endpoint scraped over a real socket with libcurl.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "testutil.h"
#include "files.h"

static cep_metrics *new_reg(void)
{
	cep_metrics *m = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_metrics_new(&m, &err), CEP_OK, "%s", err.msg);
	return m;
}

static char *render(cep_metrics *m)
{
	char *text = NULL;
	size_t len = 0;
	cep_err err = {0};
	cr_assert_eq(cep_metrics_render(m, &text, &len, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(strlen(text), len);
	return text;
}

static size_t count_lines(const char *s, const char *prefix)
{
	size_t n = 0, pl = strlen(prefix);
	for (const char *p = s; p != NULL && *p != '\0';) {
		if (strncmp(p, prefix, pl) == 0)
			n++;
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	return n;
}

Test(metrics, exact_text_with_ordering)
{
	static const char *const mc[] = {"method", "code", NULL};
	cep_metrics *m = new_reg();
	cep_metric *g = cep_metrics_gauge(m, "x_connected", "Things now.",
	    NULL);
	cep_metric *c = cep_metrics_counter(m, "x_calls_total", "Calls.", mc);
	cep_metric *e = cep_metrics_counter(m, "x_events_total", "Events.",
	    NULL);
	cr_assert(g && c && e);
	/* touched in an order different from the one rendered */
	cep_metrics_inc2(c, "Runner/Prove", "PERMISSION_DENIED");
	cep_metrics_inc2(c, "Runner/Challenge", "OK");
	cep_metrics_inc2(c, "Runner/Prove", "OK");
	cep_metrics_inc2(c, "Runner/Prove", "OK");
	cep_metrics_set(g, 3, NULL);
	cep_metrics_set(g, 2, NULL);
	char *t = render(m);
	cr_assert_str_eq(t,
	    "# HELP x_connected Things now.\n"
	    "# TYPE x_connected gauge\n"
	    "x_connected 2\n"
	    "# HELP x_calls_total Calls.\n"
	    "# TYPE x_calls_total counter\n"
	    "x_calls_total{method=\"Runner/Challenge\",code=\"OK\"} 1\n"
	    "x_calls_total{method=\"Runner/Prove\",code=\"OK\"} 2\n"
	    "x_calls_total{method=\"Runner/Prove\",code=\"PERMISSION_DENIED\"} 1\n"
	    "# HELP x_events_total Events.\n"
	    "# TYPE x_events_total counter\n"
	    "x_events_total 0\n");
	free(t);
	const char *v[] = {"Runner/Prove", "OK"};
	cr_assert_eq(cep_metrics_value(c, v), 2.0);
	cep_metrics_free(m);
}

Test(metrics, escaping_of_labels_and_help)
{
	static const char *const l[] = {"reason", NULL};
	cep_metrics *m = new_reg();
	cep_metric *c = cep_metrics_counter(m, "x_total",
	    "Back\\slash and\nnewline \"quotes\" stay.", l);
	cep_metrics_inc1(c, "a\\b\"c\nd");
	cep_metrics_inc1(c, NULL); /* rendered as "" */
	char *t = render(m);
	cr_assert_str_eq(t,
	    "# HELP x_total Back\\\\slash and\\nnewline \"quotes\" stay.\n"
	    "# TYPE x_total counter\n"
	    "x_total{reason=\"\"} 1\n"
	    "x_total{reason=\"a\\\\b\\\"c\\nd\"} 1\n");
	free(t);
	cep_metrics_free(m);
}

Test(metrics, values_and_counter_rules)
{
	cep_metrics *m = new_reg();
	cep_metric *c = cep_metrics_counter(m, "c_total", "c", NULL);
	cep_metric *g = cep_metrics_gauge(m, "g", "g", NULL);
	cep_metrics_add(c, 1.5, NULL);
	cep_metrics_add(c, -7, NULL);        /* a counter never goes down */
	cep_metrics_add(c, 0.0 / 0.0, NULL); /* nor becomes NaN */
	cep_metrics_set(c, 0, NULL);         /* nor is set */
	cep_metrics_set(g, -4, NULL);
	cep_metrics_add(g, 1e300 * 1e300, NULL);
	char *t = render(m);
	cr_assert(strstr(t, "\nc_total 1.5\n") != NULL, "%s", t);
	cr_assert(strstr(t, "\ng +Inf\n") != NULL, "%s", t);
	free(t);
	cep_metrics_set(g, 12345678901.0, NULL);
	t = render(m);
	cr_assert(strstr(t, "\ng 12345678901\n") != NULL, "%s", t);
	free(t);
	cep_metrics_free(m);
}

Test(metrics, bad_names_and_null_families)
{
	static const char *const bad_label[] = {"__reserved", NULL};
	static const char *const too_many[] = {"a", "b", "c", "d", "e", NULL};
	cep_metrics *m = new_reg();
	cr_assert_null(cep_metrics_counter(m, "9starts_with_digit", "x", NULL));
	cr_assert_null(cep_metrics_counter(m, "has-dash", "x", NULL));
	cr_assert_null(cep_metrics_counter(m, "", "x", NULL));
	cr_assert_null(cep_metrics_counter(m, "ok_total", "x", bad_label));
	cr_assert_null(cep_metrics_gauge(m, "ok", "x", too_many));
	cr_assert_null(cep_metrics_gauge(NULL, "ok", "x", NULL));
	/* hooks on a family that does not exist do nothing */
	cep_metrics_inc(NULL);
	cep_metrics_inc2(NULL, "a", "b");
	cep_metrics_set(NULL, 1, NULL);
	char *t = render(m);
	cr_assert_str_eq(t, "", "nothing registered: %s", t);
	free(t);
	cep_metrics_free(m);
	cep_metrics_free(NULL);
}

Test(metrics, series_per_family_are_capped)
{
	static const char *const l[] = {"k", NULL};
	cep_metrics *m = new_reg();
	cep_metric *c = cep_metrics_counter(m, "many_total", "many", l);
	char v[32];
	for (int i = 0; i < CEP_METRICS_MAX_SERIES + 100; i++) {
		snprintf(v, sizeof(v), "v%04d", i);
		cep_metrics_inc1(c, v);
	}
	cep_metrics_inc1(c, "v0000"); /* an existing series still counts */
	char *t = render(m);
	cr_assert_eq(count_lines(t, "many_total{"), CEP_METRICS_MAX_SERIES);
	cr_assert(strstr(t, "many_total{k=\"v0000\"} 2\n") != NULL);
	free(t);
	cep_metrics_free(m);
}

/* ---- concurrency ---- */

#define THREADS 4
#define ROUNDS 20000

typedef struct worker {
	cep_metric *c, *g;
	int id;
} worker;

static void *hammer(void *arg)
{
	worker *w = arg;
	for (int i = 0; i < ROUNDS; i++) {
		cep_metrics_inc2(w->c, i % 2 ? "odd" : "even", "x");
		cep_metrics_add(w->g, 1, NULL);
	}
	return NULL;
}

static void *scrape_loop(void *arg)
{
	cep_metrics *m = arg;
	for (int i = 0; i < 50; i++) {
		char *t = NULL;
		size_t len;
		if (cep_metrics_render(m, &t, &len, NULL) == CEP_OK)
			free(t);
	}
	return NULL;
}

Test(metrics, concurrent_increments_are_exact)
{
	static const char *const l[] = {"parity", "other", NULL};
	cep_metrics *m = new_reg();
	cep_metric *c = cep_metrics_counter(m, "hits_total", "hits", l);
	cep_metric *g = cep_metrics_gauge(m, "level", "level", NULL);
	pthread_t th[THREADS + 1];
	worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (worker){c, g, i};
		cr_assert_eq(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
	}
	cr_assert_eq(pthread_create(&th[THREADS], NULL, scrape_loop, m), 0);
	for (int i = 0; i <= THREADS; i++)
		pthread_join(th[i], NULL);
	const char *odd[] = {"odd", "x"}, *even[] = {"even", "x"};
	cr_assert_eq(cep_metrics_value(c, odd), THREADS * ROUNDS / 2);
	cr_assert_eq(cep_metrics_value(c, even), THREADS * ROUNDS / 2);
	cr_assert_eq(cep_metrics_value(g, NULL), THREADS * ROUNDS);
	cep_metrics_free(m);
}

/* ---- addresses ---- */

Test(metrics, addresses)
{
	cep_err err = {0};
	cr_assert_eq(cep_metrics_addr_check("127.0.0.1:9464", &err), CEP_OK);
	cr_assert_eq(cep_metrics_addr_check("0.0.0.0:0", &err), CEP_OK);
	cr_assert_eq(cep_metrics_addr_check("[::1]:9464", &err), CEP_OK);
	cr_assert_eq(cep_metrics_addr_check("localhost:1", &err), CEP_OK);
	const char *bad[] = {"", "127.0.0.1", ":9464",
	    "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+1",
	    "127.0.0.1:9x", "example.com:80", "::1:80", "[::1:80",
	    "[127.0.0.1]:80", "1.2.3:80", NULL};
	for (int i = 0; bad[i] != NULL; i++)
		cr_assert_eq(cep_metrics_addr_check(bad[i], &err),
		    CEP_INVALID_ARGUMENT, "accepted \"%s\"", bad[i]);
	cr_assert(strstr(err.msg, "1.2.3:80") != NULL, "%s", err.msg);
}

/* ---- serving ---- */

typedef struct reply {
	long status;
	char ctype[128];
	char *body;
	size_t len;
	CURLcode rc;
} reply;

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	reply *r = arg;
	char *nb = realloc(r->body, r->len + sz * n + 1);
	if (nb == NULL)
		return 0;
	memcpy(nb + r->len, p, sz * n);
	r->body = nb;
	r->len += sz * n;
	r->body[r->len] = '\0';
	return sz * n;
}

static reply http(const char *method, int port, const char *path)
{
	reply r = {0};
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	CURL *h = curl_easy_init();
	cr_assert_not_null(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	r.rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
	char *ct = NULL;
	curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
	snprintf(r.ctype, sizeof(r.ctype), "%s", ct ? ct : "");
	curl_easy_cleanup(h);
	return r;
}

static int collects;
static void count_collect(cep_metrics *m, void *arg)
{
	(void)m;
	cep_metrics_set(arg, ++collects, NULL);
}

Test(metrics, serves_get_metrics_and_404_elsewhere)
{
	cep_metrics *m = new_reg();
	static const char *const l[] = {"reason", NULL};
	cep_metric *c = cep_metrics_counter(m, "cep_test_refusals_total",
	    "Refusals.", l);
	cep_metric *g = cep_metrics_gauge(m, "cep_test_scrapes", "Scrapes.",
	    NULL);
	cep_metrics_on_collect(m, count_collect, g);
	cep_metrics_inc1(c, "bad_signature");
	cep_metrics_server *s = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_metrics_serve(m, "127.0.0.1:0", &s, &err), CEP_OK,
	    "%s", err.msg);
	int port = cep_metrics_server_port(s);
	cr_assert_gt(port, 0);

	reply r = http("GET", port, "/metrics");
	cr_assert_eq(r.rc, CURLE_OK, "%s", curl_easy_strerror(r.rc));
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
	cr_assert(
	    strstr(r.body,
	        "# TYPE cep_test_refusals_total counter\n"
	        "cep_test_refusals_total{reason=\"bad_signature\"} 1\n") !=
	        NULL,
	    "%s", r.body);
	cr_assert(strstr(r.body, "\ncep_test_scrapes 1\n") != NULL, "%s",
	    r.body);
	free(r.body);
	/* the next scrape sees the new value and a fresh collect */
	cep_metrics_inc1(c, "bad_signature");
	r = http("GET", port, "/metrics");
	cr_assert(strstr(r.body, "{reason=\"bad_signature\"} 2\n") != NULL);
	cr_assert(strstr(r.body, "\ncep_test_scrapes 2\n") != NULL);
	free(r.body);

	const char *elsewhere[] = {"/", "/metric", "/metrics/x", "/other",
	    "/metricsx", NULL};
	for (int i = 0; elsewhere[i] != NULL; i++) {
		r = http("GET", port, elsewhere[i]);
		cr_assert_eq(r.rc, CURLE_OK);
		cr_assert_eq(r.status, 404, "%s -> %ld", elsewhere[i],
		    r.status);
		cr_assert(r.body == NULL || strstr(r.body, "cep_test") == NULL);
		free(r.body);
	}
	r = http("POST", port, "/metrics");
	cr_assert_eq(r.status, 405, "POST -> %ld", r.status);
	free(r.body);

	cep_metrics_stop(s);
	/* stopped means the port no longer answers */
	r = http("GET", port, "/metrics");
	cr_assert_eq(r.rc, CURLE_COULDNT_CONNECT, "%s",
	    curl_easy_strerror(r.rc));
	free(r.body);
	cep_metrics_free(m);
}

Test(metrics, two_port0_servers_get_their_own_ports)
{
	cep_metrics *a = new_reg(), *b = new_reg();
	cep_metrics_gauge(a, "from_a", "a", NULL);
	cep_metrics_gauge(b, "from_b", "b", NULL);
	cep_metrics_server *sa = NULL, *sb = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_metrics_serve(a, "127.0.0.1:0", &sa, &err), CEP_OK);
	cr_assert_eq(cep_metrics_serve(b, "127.0.0.1:0", &sb, &err), CEP_OK);
	cr_assert_neq(cep_metrics_server_port(sa), cep_metrics_server_port(sb));
	reply r = http("GET", cep_metrics_server_port(sb), "/metrics");
	cr_assert(strstr(r.body, "from_b") && !strstr(r.body, "from_a"));
	free(r.body);
	/* a port in use is an error, not a shared server */
	char addr[32];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d",
	    cep_metrics_server_port(sa));
	cep_metrics_server *sc = NULL;
	cr_assert_neq(cep_metrics_serve(b, addr, &sc, &err), CEP_OK);
	cr_assert_null(sc);
	cr_assert(strstr(err.msg, addr) != NULL, "%s", err.msg);
	cep_metrics_stop(sa);
	cep_metrics_stop(sb);
	cep_metrics_free(a);
	cep_metrics_free(b);
}

Test(metrics, start_writes_the_port_file_and_empty_disables)
{
	char *dir = cep_test_tmpdir("metrics");
	char file[512];
	snprintf(file, sizeof(file), "%s/relay.metrics-port", dir);
	cep_metrics *m = new_reg();
	cep_metrics_server *s = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_metrics_start(m, "127.0.0.1:0", file, &s, &err),
	    CEP_OK, "%s", err.msg);
	char *text = NULL;
	size_t len = 0;
	cr_assert_eq(cep_files_read(file, 64, &text, &len, &err), CEP_OK);
	char want[16];
	snprintf(want, sizeof(want), "%d\n", cep_metrics_server_port(s));
	cr_assert_str_eq(text, want);
	free(text);
	cep_metrics_stop(s);
	/* "" is off: no server, and no stale port file left to mislead */
	cr_assert_eq(cep_metrics_start(m, "", file, &s, &err), CEP_OK);
	cr_assert_null(s);
	cr_assert_neq(access(file, F_OK), 0);
	cr_assert_eq(cep_metrics_start(m, "nohost:1", file, &s, &err),
	    CEP_INVALID_ARGUMENT);
	cep_metrics_free(m);
	cep_test_rmdir(dir);
}

Test(metrics, start_daemon_names_the_port_file_and_survives_a_bad_address)
{
	char *dir = cep_test_tmpdir("metrics");
	char file[512];
	snprintf(file, sizeof(file), "%s/delegate.metrics-port", dir);
	cep_metrics *m = new_reg();
	cep_metrics_server *s = cep_metrics_start_daemon(m, "127.0.0.1:0", dir,
	    "delegate");
	cr_assert_not_null(s);
	char *text = NULL;
	size_t len = 0;
	cep_err err = {0};
	cr_assert_eq(cep_files_read(file, 64, &text, &len, &err), CEP_OK, "%s",
	    err.msg);
	char want[16];
	snprintf(want, sizeof(want), "%d\n", cep_metrics_server_port(s));
	cr_expect_str_eq(text, want);
	free(text);
	cep_metrics_stop(s);
	/* logged, not fatal: no server, no port file */
	cr_expect_null(
	    cep_metrics_start_daemon(m, "nohost:1", dir, "delegate"));
	cr_expect_neq(access(file, F_OK), 0);
	cep_metrics_free(m);
	cep_test_rmdir(dir);
}
