/*
 * test_client.c - lib/http's client (client.c) against a real HTTPS server
 * (the Kubernetes API test server, tests/kubeapi): connections kept across
 * requests, one handle per request under threads and no more than the pool
 * holds, the CA in memory or as a file, the stop flag of a stream, and what
 * a failed code means.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "kubeapi_fixture.h"
#include "testutil.h"
#include "clock.h"
#include "files.h"

static kubeapi_fixture *srv;
static char ca_path[4096];
static char *token;

static void start(void)
{
	srv = kubeapi_start(NULL);
	cr_assert_not_null(srv);
	snprintf(ca_path, sizeof(ca_path), "%s/ca.crt", kubeapi_dir(srv));
	token = kubeapi_token(srv, "admin");
	cr_assert_not_null(token);
}

static void stop(void)
{
	free(token);
	kubeapi_stop(srv);
}

static void url_of(char *buf, size_t len, const char *path)
{
	snprintf(buf, len, "https://127.0.0.1:%d%s", kubeapi_port(srv), path);
}

/* One GET; the answer's status, its connections in *connects. */
static long get(cep_http_client *c, const char *path, long *connects)
{
	char url[256];
	url_of(url, sizeof(url), path);
	cep_http_resp body = {.max = 1 << 20, .retry_after_ms = -1};
	cep_http_request rq = {.url = url,
	    .bearer = token,
	    .timeout_ms = 10000,
	    .resp = &body};
	cep_http_result res;
	int rc = cep_http_client_do(c, &rq, &res);
	cr_expect_eq(rc, 0, "%s: %s", path, res.error);
	free(body.buf);
	if (connects != NULL)
		*connects = res.connects;
	return res.status;
}

TestSuite(http_client, .init = start, .fini = stop);

Test(http_client, second_request_reuses_the_connection)
{
	cep_http_client_opts o = {.ca_file = ca_path, .proxy = ""};
	cep_http_client *c = cep_http_client_new(&o);
	cr_assert_not_null(c);
	long n1 = -1, n2 = -1, n3 = -1;
	cr_expect_eq(get(c, "/api/v1/namespaces", &n1), 200);
	cr_expect_eq(get(c, "/api/v1/namespaces/default", &n2), 200);
	cr_expect_eq(get(c, "/api/v1/namespaces/nope", &n3), 404);
	cr_expect_eq(n1, 1, "the first request connects");
	cr_expect_eq(n2, 0, "the second request made a new connection");
	cr_expect_eq(n3, 0, "an error status keeps the connection");
	uint64_t calls = 0, conns = 0;
	cep_http_client_stats(c, &calls, &conns);
	cr_expect_eq(calls, 3);
	cr_expect_eq(conns, 1);
	cep_http_client_free(c);
}

Test(http_client, ca_in_memory_is_trusted_and_a_wrong_one_is_not)
{
	char *pem = NULL;
	size_t len = 0;
	cep_err err;
	cr_assert_eq(cep_files_read(ca_path, 1 << 20, &pem, &len, &err), CEP_OK,
	    "%s", err.msg);
	cep_http_client_opts o = {.ca = {pem, len}, .proxy = ""};
	cep_http_client *c = cep_http_client_new(&o);
	cr_assert_not_null(c);
	cr_expect_eq(get(c, "/api/v1/namespaces", NULL), 200);
	cep_http_client_free(c);

	/* the system CAs do not know the test server's CA */
	cep_http_client_opts sys = {.proxy = ""};
	c = cep_http_client_new(&sys);
	char url[256];
	url_of(url, sizeof(url), "/api/v1/namespaces");
	cep_http_resp body = {.max = 1024, .retry_after_ms = -1};
	cep_http_request rq = {.url = url, .timeout_ms = 5000, .resp = &body};
	cep_http_result res;
	int rc = cep_http_client_do(c, &rq, &res);
	cr_expect_neq(rc, 0);
	cr_expect_eq(cep_http_curl_err(&err, rc, "get", res.error, 5000),
	    CEP_UNAVAILABLE);
	cr_expect(strstr(err.msg, "not trusted") != NULL, "%s", err.msg);
	free(body.buf);
	cep_http_client_free(c);
	free(pem);
}

struct worker {
	cep_http_client *c;
	int ok;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 10; i++)
		if (get(w->c, "/api/v1/namespaces", NULL) == 200)
			w->ok++;
	return NULL;
}

Test(http_client, threads_share_a_client)
{
	cep_http_client_opts o = {.ca_file = ca_path,
	    .proxy = "",
	    .pool_max = 4};
	cep_http_client *c = cep_http_client_new(&o);
	cr_assert_not_null(c);
	enum { N = 4 };
	pthread_t th[N];
	struct worker w[N];
	for (int i = 0; i < N; i++) {
		w[i] = (struct worker){.c = c};
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(w[i].ok, 10);
	}
	uint64_t calls = 0, conns = 0;
	cep_http_client_stats(c, &calls, &conns);
	cr_expect_eq(calls, 40);
	/* at most one connection per handle in use at once */
	cr_expect_leq(conns, (uint64_t)N, "%llu connections",
	    (unsigned long long)conns);
	cep_http_client_free(c);
}

/* More threads than handles: the extra requests wait for a kept handle
 * instead of opening connections the pool could not keep. */
Test(http_client, requests_past_the_pool_wait_for_a_kept_connection)
{
	cep_http_client_opts o = {.ca_file = ca_path,
	    .proxy = "",
	    .pool_max = 2};
	cep_http_client *c = cep_http_client_new(&o);
	cr_assert_not_null(c);
	enum { N = 8 };
	pthread_t th[N];
	struct worker w[N];
	for (int i = 0; i < N; i++) {
		w[i] = (struct worker){.c = c};
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(w[i].ok, 10);
	}
	uint64_t calls = 0, conns = 0;
	cep_http_client_stats(c, &calls, &conns);
	cr_expect_eq(calls, 10 * N);
	cr_expect_leq(conns, 2, "%llu connections for a pool of 2",
	    (unsigned long long)conns);
	cep_http_client_free(c);
}

static size_t sink(char *p, size_t sz, size_t n, void *arg)
{
	(void)p;
	*(size_t *)arg += sz * n;
	return sz * n;
}

struct stopper {
	atomic_bool *flag;
};

static void *stop_later(void *arg)
{
	cep_clock_sleep_ms(300);
	atomic_store(((struct stopper *)arg)->flag, true);
	return NULL;
}

Test(http_client, stream_ends_when_stopped_and_at_its_deadline)
{
	cep_http_client_opts o = {.ca_file = ca_path, .proxy = ""};
	cep_http_client *c = cep_http_client_new(&o);
	cr_assert_not_null(c);
	char url[256];
	url_of(url, sizeof(url), "/api/v1/namespaces/default/pods?watch=1");
	atomic_bool flag = false;
	size_t got = 0;
	cep_http_request rq = {.url = url,
	    .bearer = token,
	    .on_data = sink,
	    .arg = &got,
	    .stop = &flag};
	struct stopper s = {.flag = &flag};
	pthread_t th;
	pthread_create(&th, NULL, stop_later, &s);
	int64_t t0 = cep_clock_mono_ms();
	cep_http_result res;
	cr_expect_eq(cep_http_client_do(c, &rq, &res), CEP_HTTP_STOPPED);
	pthread_join(th, NULL);
	cr_expect_lt(cep_clock_mono_ms() - t0, 3000);
	cr_expect_eq(res.status, 200);
	cr_expect_eq(cep_http_fail_of(res.code), CEP_HTTP_FAIL_CANCELLED);

	atomic_store(&flag, false);
	rq.deadline_ms = cep_clock_mono_ms() + 300;
	cr_expect_eq(cep_http_client_do(c, &rq, &res), CEP_HTTP_DEADLINE);
	cr_expect_eq(cep_http_fail_of(res.code), CEP_HTTP_FAIL_DEADLINE);
	cep_http_client_free(c);
}

Test(http_client_offline, refused_connection_is_a_connect_failure)
{
	cep_http_client_opts o = {.proxy = ""};
	cep_http_client *c = cep_http_client_new(&o);
	cr_assert_not_null(c);
	char url[64];
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/",
	    cep_test_free_port());
	cep_http_resp body = {.max = 1024, .retry_after_ms = -1};
	cep_http_request rq = {.url = url, .timeout_ms = 2000, .resp = &body};
	cep_http_result res;
	cr_expect_neq(cep_http_client_do(c, &rq, &res), 0);
	cr_expect_eq(cep_http_fail_of(res.code), CEP_HTTP_FAIL_CONNECT);
	cr_expect_eq(res.status, 0);
	free(body.buf);
	cep_http_client_free(c);
}

Test(http_client_offline, url_parts_checks_scheme_and_credentials)
{
	char host[64], hp[80];
	cep_err err;
	cr_expect_eq(cep_http_url_parts("https://[::1]:8443/x", "https", "u",
	                 host, sizeof(host), hp, sizeof(hp), &err),
	    CEP_OK);
	cr_expect_str_eq(host, "::1");
	cr_expect_str_eq(hp, "[::1]:8443");
	cr_expect_eq(cep_http_url_parts("http://h/", "https", "u", host,
	                 sizeof(host), hp, sizeof(hp), &err),
	    CEP_INVALID_ARGUMENT);
	cr_expect(strstr(err.msg, "scheme http not allowed") != NULL, "%s",
	    err.msg);
	cr_expect_eq(cep_http_url_parts("https://a:b@h/", "https", "u", host,
	                 sizeof(host), hp, sizeof(hp), &err),
	    CEP_INVALID_ARGUMENT);
	cr_expect(strstr(err.msg, "user name or password") != NULL, "%s",
	    err.msg);
}
