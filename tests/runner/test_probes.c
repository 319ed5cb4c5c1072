/*
 * test_probes.c - the http and cmd probes against real counterparts: an
 * HTTP server run by the test (nng's), and real child processes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <nng/nng.h>
#include <stdatomic.h>
#include <nng/supplemental/http/http.h>
#include <stdio.h>
#include <string.h>

#include "probe.h"
#include "rt.h"
#include "testutil.h"
#include "clock.h"
#include "files.h"

static nng_http_server *srv;
static int port;
static cep_runner_ctl *ctl;

static atomic_int flaky_hits;

/* /ok: 200 "hello, probe"; /down: 503; /slow: 200 after 400 ms;
 * /flaky: 503 twice, then 200. */
static void handle(nng_aio *aio)
{
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	const char *what = nng_http_handler_get_data(h);
	nng_http_res *res;
	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	if (strcmp(what, "slow") == 0)
		cep_clock_sleep_ms(400);
	bool down = strcmp(what, "down") == 0 ||
	    (strcmp(what, "flaky") == 0 &&
	        atomic_fetch_add(&flaky_hits, 1) < 2);
	nng_http_res_set_status(res, down ? 503 : 200);
	nng_http_res_set_header(res, "Content-Type", "text/plain");
	nng_http_res_copy_data(res, "hello, probe", 12);
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static void add(const char *path, const char *what)
{
	nng_http_handler *h;
	cr_assert_eq(nng_http_handler_alloc(&h, path, handle), 0);
	nng_http_handler_set_data(h, (void *)what, NULL);
	cr_assert_eq(nng_http_server_add_handler(srv, h), 0);
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
	add("/ok", "ok");
	add("/down", "down");
	add("/slow", "slow");
	add("/flaky", "flaky");
	cr_assert_eq(nng_http_server_start(srv), 0);
}

static void teardown(void)
{
	nng_http_server_stop(srv);
	nng_http_server_release(srv);
	runner_ctl_free(ctl);
}

TestSuite(probes, .init = setup, .fini = teardown, .timeout = 60);

/* Runs one check of a probe given by its YAML parameters. */
static bool check(const char *params, char *detail, uint32_t *lat)
{
	char yaml[1024];
	snprintf(yaml, sizeof(yaml),
	    "apiVersion: cep.io/v1\nkind: Experiment\n"
	    "metadata: {name: t}\nspec:\n  duration: 1s\n  probes:\n"
	    "    - {name: p, mode: start-of-test, %s}\n",
	    params);
	cep_exp *e = rt_parse(yaml);
	cep_probe_env env = {.ctl = ctl};
	bool ok = runner_probe_check(cep_exp_probe(e, 0), &env, detail,
	    CEP_PROBE_DETAIL_MAX, lat);
	cep_exp_free(e);
	return ok;
}

static bool http(const char *path, const char *extra, char *detail)
{
	char params[512];
	uint32_t lat;
	snprintf(params, sizeof(params),
	    "type: http, url: "
	    "\"http://127.0.0.1:%d%s\"%s%s",
	    port, path, *extra ? ", " : "", extra);
	return check(params, detail, &lat);
}

Test(probes, http_200_passes)
{
	char d[CEP_PROBE_DETAIL_MAX];
	cr_expect(http("/ok", "bodyMatch: \"hello\"", d), "%s", d);
	cr_expect(strstr(d, "status 200") != NULL, "%s", d);
}

Test(probes, http_wrong_status_fails)
{
	char d[CEP_PROBE_DETAIL_MAX];
	cr_expect_not(http("/down", "", d));
	cr_expect(strstr(d, "status 503, want 200") != NULL, "%s", d);
	cr_expect(http("/down", "expectStatus: 503", d), "%s", d);
}

Test(probes, http_body_mismatch_fails_without_echoing_the_body)
{
	char d[CEP_PROBE_DETAIL_MAX];
	cr_expect_not(http("/ok", "bodyMatch: \"goodbye\"", d));
	cr_expect(strstr(d, "lacks \"goodbye\"") != NULL, "%s", d);
	cr_expect(strstr(d, "hello, probe") == NULL, "body echoed: %s", d);
}

Test(probes, http_latency_budget)
{
	char d[CEP_PROBE_DETAIL_MAX];
	cr_expect_not(http("/slow", "latencyBudget: 100ms", d));
	cr_expect(strstr(d, "> 100ms") != NULL, "%s", d);
	cr_expect(http("/slow", "latencyBudget: 3s", d), "%s", d);
}

Test(probes, http_connection_refused_fails)
{
	char d[CEP_PROBE_DETAIL_MAX];
	char params[256];
	uint32_t lat;
	snprintf(params, sizeof(params),
	    "type: http, url: "
	    "\"http://127.0.0.1:%d/\"",
	    cep_test_free_port());
	cr_expect_not(check(params, d, &lat));
	cr_expect(strstr(d, "onnect") != NULL, "%s", d);
}

Test(probes, http_attempts_retry_until_one_passes)
{
	char d[CEP_PROBE_DETAIL_MAX];
	atomic_store(&flaky_hits, 0);
	cr_expect_not(http("/flaky", "attempts: 2, interval: 50ms", d));
	atomic_store(&flaky_hits, 0);
	cr_expect(http("/flaky", "attempts: 3, interval: 50ms", d), "%s", d);
	cr_expect_eq(atomic_load(&flaky_hits), 3);
}

Test(probes, cmd_exit_code_and_output)
{
	char d[CEP_PROBE_DETAIL_MAX];
	uint32_t lat;
	const char *cmd =
	    "type: cmd, command: [sh, -c, \"echo hello; exit 3\"]";
	char p[256];
	snprintf(p, sizeof(p), "%s, expectExit: 3, outputMatch: hello", cmd);
	cr_expect(check(p, d, &lat), "%s", d);
	snprintf(p, sizeof(p), "%s", cmd);
	cr_expect_not(check(p, d, &lat));
	cr_expect(strstr(d, "exit 3, want 0") != NULL, "%s", d);
	snprintf(p, sizeof(p), "%s, expectExit: 3, outputMatch: nope", cmd);
	cr_expect_not(check(p, d, &lat));
	cr_expect(strstr(d, "lacks \"nope\"") != NULL, "%s", d);
	cr_expect_not(
	    check("type: cmd, command: [/nonexistent/cep-x]", d, &lat));
}

Test(probes, cmd_timeout_kills_the_child)
{
	char *dir = cep_test_tmpdir("probe");
	char p[512], d[CEP_PROBE_DETAIL_MAX], pidfile[300];
	uint32_t lat;
	snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
	snprintf(p, sizeof(p),
	    "type: cmd, timeout: 300ms, command: [sh, -c, "
	    "\"echo $$ > %s; exec sleep 30\"]",
	    pidfile);
	int64_t t0 = cep_clock_mono_ms();
	cr_expect_not(check(p, d, &lat));
	int64_t took = cep_clock_mono_ms() - t0;
	cr_expect(strstr(d, "timed out") != NULL, "%s", d);
	cr_expect_lt(took, 3000, "check took %lld ms", (long long)took);
	char *txt = NULL;
	size_t len;
	cr_assert_eq(cep_files_read(pidfile, 64, &txt, &len, NULL), CEP_OK);
	int pid = (int)strtol(txt, NULL, 10);
	free(txt);
	cr_assert_gt(pid, 0);
	cr_expect_not(rt_pid_exists(pid), "command %d still running", pid);
	cep_test_rmdir(dir);
}

Test(probes, cmd_abort_cancels_a_running_check)
{
	runner_ctl_abort(ctl, "aborted by operator");
	char d[CEP_PROBE_DETAIL_MAX];
	uint32_t lat;
	int64_t t0 = cep_clock_mono_ms();
	cr_expect_not(
	    check("type: cmd, timeout: 10s, command: [sleep, 30]", d, &lat));
	cr_expect_lt(cep_clock_mono_ms() - t0, 2000);
}
