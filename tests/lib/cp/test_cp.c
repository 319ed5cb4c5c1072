/* test_cp.c - the control-plane client against a strict scripted HTTPS
 * stub (tests/lib/cp/cp_stub.py): round trips, token and certificate auth,
 * every error mapping, Retry-After, broken replies, redirects, the
 * allowlist, and the route (environment proxies ignored, a real proxy
 * (tinyproxy) used, no_proxy bypassing it). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cep.pb-c.h"
#include "cp.h"
#include "cp_int.h"
#include "kubeapi_fixture.h"
#include "testutil.h"
#include "clock.h"
#include "files.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))

#define TOKEN "cp-tok-0123456789abcdef"
/* CpHeartbeatReply{lost_task_ids: ["t1", "t2"]} */
#define HB_REPLY_HEX "0a0274310a027432"

static kubeapi_fixture *stub;

static void start_stub(bool require_cert)
{
	const char *args[] = {"--require-cert", NULL};
	stub = kubeapi_start_script("tests/lib/cp/cp_stub.py",
	    require_cert ? args : NULL);
	cr_assert_not_null(stub, "cp_stub.py did not start");
}

static void stop_stub(void)
{
	kubeapi_stop(stub);
	stub = NULL;
}

static void stub_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", kubeapi_dir(stub), name);
}

/* The stub's answer to the next requests (see cp_stub.py). */
static void script(const char *json)
{
	char p[4096];
	cep_err err;
	stub_path(p, sizeof(p), "next.tmp");
	cr_assert_eq(cep_files_write(p, json, strlen(json), 0644, &err),
	    CEP_OK);
	char q[4096];
	stub_path(q, sizeof(q), "next");
	cr_assert_eq(rename(p, q), 0);
}

/* The requests the stub saw, oldest first (a JSON array). */
static json_t *requests(void)
{
	char p[4096];
	stub_path(p, sizeof(p), "requests.jsonl");
	json_t *a = json_array();
	FILE *f = fopen(p, "r");
	char line[65536];
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		json_array_append_new(a, json_loads(line, 0, NULL));
	if (f != NULL)
		fclose(f);
	return a;
}

static size_t n_requests(void)
{
	json_t *a = requests();
	size_t n = json_array_size(a);
	json_decref(a);
	return n;
}

static const char *hdr(json_t *req, const char *name)
{
	return json_string_value(
	    json_object_get(json_object_get(req, "headers"), name));
}

static void opts_for_stub(cep_cp_opts *o)
{
	cep_cp_opts_defaults(o);
	snprintf(o->url, sizeof(o->url), "https://127.0.0.1:%d/",
	    kubeapi_port(stub));
	stub_path(o->ca_file, sizeof(o->ca_file), "ca.crt");
	o->timeout_ms = 5000;
}

static cep_cp *client(const cep_cp_opts *o)
{
	cep_cp *cp = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_cp_new(o, &cp, &err), CEP_OK, "%s", err.msg);
	return cp;
}

/* One Heartbeat; returns the status, fills err and the reply. */
static int heartbeat(cep_cp *cp, int tmo, int64_t *ra, cep_err *err,
    Cep__V1__CpHeartbeatReply **out)
{
	Cep__V1__CpHeartbeat hb = CEP__V1__CP_HEARTBEAT__INIT;
	char *ids[] = {"t1"};
	hb.appliance = "lab-1";
	hb.n_task_ids = 1;
	hb.task_ids = ids;
	hb.active_runs = 1;
	ProtobufCMessage *m = NULL;
	int rc = cep_cp_call(cp, "Heartbeat", &hb.base,
	    &cep__v1__cp_heartbeat_reply__descriptor, &m, tmo, ra, err);
	cr_assert(strstr(err->msg, TOKEN) == NULL, "%s", err->msg);
	if (out != NULL)
		*out = (Cep__V1__CpHeartbeatReply *)m;
	else if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
	return rc;
}

Test(cp, round_trip)
{
	start_stub(false);
	cep_cp_opts o;
	opts_for_stub(&o);
	cep_cp *cp = client(&o);
	script("{\"kind\": \"ok\", \"hex\": \"" HB_REPLY_HEX "\"}");
	cep_err err = {0};
	Cep__V1__CpHeartbeatReply *r = NULL;
	int64_t ra = -1;
	cr_assert_eq(heartbeat(cp, 0, &ra, &err, &r), CEP_OK, "%s", err.msg);
	cr_assert_eq(r->n_lost_task_ids, 2);
	cr_assert_str_eq(r->lost_task_ids[1], "t2");
	cep__v1__cp_heartbeat_reply__free_unpacked(r, NULL);
	cr_assert_eq(ra, 0);

	json_t *a = requests();
	cr_assert_eq(json_array_size(a), 1);
	json_t *q = json_array_get(a, 0);
	cr_assert_str_eq(json_string_value(json_object_get(q, "path")),
	    "/v1/cep.v1.ControlPlane/Heartbeat");
	cr_assert_str_eq(hdr(q, "content-type"), "application/x-protobuf");
	cr_assert_str_eq(hdr(q, "accept"), "application/x-protobuf");
	cr_assert_null(hdr(q, "authorization"));
	/* the body is the packed request: appliance, task id, active runs */
	cr_assert_str_eq(json_string_value(json_object_get(q, "body")),
	    "0a056c61622d3112027431"
	    "1801");
	json_decref(a);
	char hp[64];
	snprintf(hp, sizeof(hp), "127.0.0.1:%d", kubeapi_port(stub));
	cr_assert_str_eq(cep_cp_host(cp), hp);
	cep_cp_free(cp);
	stop_stub();
}

static void write_token(const char *path, unsigned mode)
{
	cep_err err;
	cr_assert_eq(cep_files_write(path, TOKEN "\n", strlen(TOKEN) + 1, mode,
	                 &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(chmod(path, mode), 0);
}

Test(cp, bearer_token_sent_and_never_in_errors)
{
	start_stub(false);
	cep_cp_opts o;
	opts_for_stub(&o);
	stub_path(o.token_file, sizeof(o.token_file), "token");
	write_token(o.token_file, 0600);
	cep_cp *cp = client(&o);
	cep_err err = {0};
	script("{\"kind\": \"ok\", \"hex\": \"\"}");
	cr_assert_eq(heartbeat(cp, 0, NULL, &err, NULL), CEP_OK, "%s", err.msg);
	json_t *a = requests();
	cr_assert_str_eq(hdr(json_array_get(a, 0), "authorization"),
	    "Bearer " TOKEN);
	json_decref(a);
	/* a plane that echoes the credentials: scrubbed from the message */
	script("{\"kind\": \"echo_auth\", \"http\": 401}");
	cr_assert_eq(heartbeat(cp, 0, NULL, &err, NULL), CEP_UNAUTHENTICATED);
	assert_contains(err.msg, "[redacted]");
	assert_contains(err.msg, "Heartbeat");
	/* re-read at each call: rotation needs no restart */
	cep_err werr;
	cr_assert_eq(cep_files_write(o.token_file, "rotated-token-42\n", 17,
	                 0600, &werr),
	    CEP_OK);
	script("{\"kind\": \"ok\", \"hex\": \"\"}");
	cr_assert_eq(heartbeat(cp, 0, NULL, &err, NULL), CEP_OK, "%s", err.msg);
	a = requests();
	cr_assert_str_eq(hdr(json_array_get(a, 2), "authorization"),
	    "Bearer rotated-token-42");
	json_decref(a);
	cep_cp_free(cp);
	stop_stub();
}

Test(cp, token_file_readable_by_others_refused)
{
	start_stub(false);
	cep_cp_opts o;
	opts_for_stub(&o);
	stub_path(o.token_file, sizeof(o.token_file), "token");
	write_token(o.token_file, 0644);
	cep_cp *cp = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_cp_new(&o, &cp, &err), CEP_FAILED_PRECONDITION);
	assert_contains(err.msg, o.token_file);
	assert_contains(err.msg, "0644");
	/* loosened after start: the call refuses, and sends nothing */
	cr_assert_eq(chmod(o.token_file, 0600), 0);
	cp = client(&o);
	cr_assert_eq(chmod(o.token_file, 0640), 0);
	cr_assert_eq(heartbeat(cp, 0, NULL, &err, NULL),
	    CEP_FAILED_PRECONDITION);
	assert_contains(err.msg, o.token_file);
	cr_assert_eq(n_requests(), 0);
	cep_cp_free(cp);
	stop_stub();
}

/* Under systemd the unit's own copy (LoadCredential=, lib/base/cred.h) is read
 * instead of the configured path, which the daemon cannot open. */
Test(cp, token_from_systemd_credential)
{
	start_stub(false);
	cep_cp_opts o;
	opts_for_stub(&o);
	char creds[4096 + 16], cred[4096 + 32];
	stub_path(creds, sizeof(creds), "creds");
	cr_assert_eq(mkdir(creds, 0500 | 0200), 0);
	snprintf(cred, sizeof(cred), "%s/cep-shared_cp-token", creds);
	write_token(cred, 0440); /* its mode is systemd's business */
	snprintf(o.token_file, sizeof(o.token_file),
	    "/nonexistent/credentials/cp-token");
	cep_cp *cp = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_cp_new(&o, &cp, &err), CEP_FAILED_PRECONDITION,
	    "without credentials the configured path must be read");
	assert_contains(err.msg, "/nonexistent/credentials/cp-token");
	setenv("CREDENTIALS_DIRECTORY", creds, 1);
	cp = client(&o);
	script("{\"kind\": \"ok\", \"hex\": \"\"}");
	cr_assert_eq(heartbeat(cp, 0, NULL, &err, NULL), CEP_OK, "%s", err.msg);
	json_t *a = requests();
	cr_assert_str_eq(hdr(json_array_get(a, 0), "authorization"),
	    "Bearer " TOKEN);
	json_decref(a);
	unsetenv("CREDENTIALS_DIRECTORY");
	cep_cp_free(cp);
	stop_stub();
}

Test(cp, client_certificate)
{
	start_stub(true);
	cep_cp_opts o;
	opts_for_stub(&o);
	cep_err err = {0};
	script("{\"kind\": \"ok\", \"hex\": \"" HB_REPLY_HEX "\"}");
	/* no certificate: the stub's handshake refuses us */
	cep_cp *cp = client(&o);
	cr_assert_eq(heartbeat(cp, 0, NULL, &err, NULL), CEP_UNAVAILABLE);
	assert_contains(err.msg, "Heartbeat");
	cep_cp_free(cp);
	stub_path(o.cert_file, sizeof(o.cert_file), "client.crt");
	stub_path(o.key_file, sizeof(o.key_file), "client.key");
	cp = client(&o);
	cr_assert_eq(heartbeat(cp, 0, NULL, &err, NULL), CEP_OK, "%s", err.msg);
	json_t *a = requests();
	cr_assert_eq(json_array_size(a), 1);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(a, 0),
	                     "client_cn")),
	    "appliance-1");
	json_decref(a);
	cep_cp_free(cp);
	/* cert and key go together; a key readable by others is refused */
	o.key_file[0] = '\0';
	cr_assert_eq(cep_cp_new(&o, &cp, &err), CEP_INVALID_ARGUMENT);
	stub_path(o.key_file, sizeof(o.key_file), "client.key");
	cr_assert_eq(chmod(o.key_file, 0644), 0);
	cr_assert_eq(cep_cp_new(&o, &cp, &err), CEP_FAILED_PRECONDITION);
	assert_contains(err.msg, "clientKey");
	stop_stub();
}

Test(cp, server_certificate_from_another_ca)
{
	start_stub(false);
	cep_cp_opts o;
	opts_for_stub(&o);
	stub_path(o.ca_file, sizeof(o.ca_file), "other/ca.crt");
	cep_cp *cp = client(&o);
	cep_err err = {0};
	cr_assert_eq(heartbeat(cp, 0, NULL, &err, NULL), CEP_UNAVAILABLE);
	assert_contains(err.msg, "TLS");
	assert_contains(err.msg, "not trusted");
	assert_contains(err.msg, "127.0.0.1");
	cr_assert_eq(n_requests(), 0);
	cep_cp_free(cp);
	stop_stub();
}

Test(cp, error_statuses_map_to_codes)
{
	static const struct {
		int http, want;
	} t[] = {{400, CEP_INVALID_ARGUMENT}, {401, CEP_UNAUTHENTICATED},
	    {403, CEP_PERMISSION_DENIED}, {404, CEP_NOT_FOUND},
	    {409, CEP_ABORTED}, {413, CEP_RESOURCE_EXHAUSTED},
	    {429, CEP_RESOURCE_EXHAUSTED}, {500, CEP_UNAVAILABLE},
	    {502, CEP_UNAVAILABLE}, {503, CEP_UNAVAILABLE}, {418, CEP_UNKNOWN}};
	start_stub(false);
	cep_cp_opts o;
	opts_for_stub(&o);
	cep_cp *cp = client(&o);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char js[256], want[32];
		snprintf(js, sizeof(js),
		    "{\"kind\": \"status\", \"http\": %d, "
		    "\"code\": 9, \"msg\": \"plane says %d\"}",
		    t[i].http, t[i].http);
		script(js);
		cep_err err = {0};
		int64_t ra = -1;
		cr_assert_eq(heartbeat(cp, 0, &ra, &err, NULL), t[i].want,
		    "%d: %s", t[i].http, err.msg);
		snprintf(want, sizeof(want), "plane says %d", t[i].http);
		assert_contains(err.msg, want);
		assert_contains(err.msg, "Heartbeat");
		assert_contains(err.msg, "127.0.0.1");
		cr_assert_eq(ra, 0);
	}
	/* not a CpStatus: a short printable excerpt */
	script("{\"kind\": \"raw\", \"http\": 502, \"body\": \"<html>bad "
	       "gateway\\u0001</html>\"}");
	cep_err err = {0};
	cr_assert_eq(heartbeat(cp, 0, NULL, &err, NULL), CEP_UNAVAILABLE);
	assert_contains(err.msg, "<html>bad gateway.</html>");
	cep_cp_free(cp);
	stop_stub();
}

Test(cp, retry_after_is_reported)
{
	start_stub(false);
	cep_cp_opts o;
	opts_for_stub(&o);
	cep_cp *cp = client(&o);
	cep_err err = {0};
	int64_t ra = 0;
	script("{\"kind\": \"status\", \"http\": 429, \"code\": 8, \"msg\": "
	       "\"slow down\", \"retry_after\": \"7\"}");
	cr_assert_eq(heartbeat(cp, 0, &ra, &err, NULL), CEP_RESOURCE_EXHAUSTED);
	cr_assert_eq(ra, 7000);
	script("{\"kind\": \"status\", \"http\": 503, \"code\": 14, \"msg\": "
	       "\"busy\", \"retry_after\": \"2\"}");
	cr_assert_eq(heartbeat(cp, 0, &ra, &err, NULL), CEP_UNAVAILABLE);
	cr_assert_eq(ra, 2000);
	/* an HTTP-date is not understood: the caller's backoff applies */
	script("{\"kind\": \"status\", \"http\": 503, \"code\": 14, \"msg\": "
	       "\"busy\", \"retry_after\": \"Wed, 21 Oct 2015 07:28:00 GMT\"}");
	cr_assert_eq(heartbeat(cp, 0, &ra, &err, NULL), CEP_UNAVAILABLE);
	cr_assert_eq(ra, 0);
	cep_cp_free(cp);
	stop_stub();
}

Test(cp, broken_replies_are_data_loss, .timeout = 120)
{
	static const struct {
		const char *js, *words;
		int want;
	} t[] = {
	    {"{\"kind\": \"garbage\"}", "not a valid cep.v1.CpHeartbeatReply",
	        CEP_DATA_LOSS},
	    {"{\"kind\": \"truncated\"}", "truncated", CEP_DATA_LOSS},
	    {"{\"kind\": \"oversized\"}", "larger than 8 MiB", CEP_DATA_LOSS},
	    {"{\"kind\": \"wrongtype\"}", "Content-Type text/html",
	        CEP_DATA_LOSS},
	    {"{\"kind\": \"slow\", \"sleep\": 3}", "no answer within 500 ms",
	        CEP_DEADLINE_EXCEEDED},
	};
	start_stub(false);
	cep_cp_opts o;
	opts_for_stub(&o);
	cep_cp *cp = client(&o);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		script(t[i].js);
		cep_err err = {0};
		int64_t t0 = cep_clock_mono_ms();
		cr_assert_eq(heartbeat(cp, 500, NULL, &err, NULL), t[i].want,
		    "%s: %s", t[i].js, err.msg);
		assert_contains(err.msg, t[i].words);
		assert_contains(err.msg, "Heartbeat");
		assert_contains(err.msg, "127.0.0.1");
		cr_assert_lt(cep_clock_mono_ms() - t0, 2500, "%s", t[i].js);
	}
	cep_cp_free(cp);
	stop_stub();
}

Test(cp, redirect_not_followed)
{
	start_stub(false);
	cep_cp_opts o;
	opts_for_stub(&o);
	o.n_allow = 2;
	snprintf(o.allow[0], sizeof(o.allow[0]), "127.0.0.1");
	snprintf(o.allow[1], sizeof(o.allow[1]), "localhost");
	cep_cp *cp = client(&o);
	char js[256];
	snprintf(js, sizeof(js),
	    "{\"kind\": \"redirect\", \"to\": "
	    "\"https://localhost:%d/v1/cep.v1.ControlPlane/Heartbeat\"}",
	    kubeapi_port(stub));
	script(js);
	cep_err err = {0};
	cr_assert_eq(heartbeat(cp, 0, NULL, &err, NULL), CEP_UNAVAILABLE);
	assert_contains(err.msg, "HTTP 302");
	cr_assert_eq(n_requests(), 1);
	cep_cp_free(cp);
	stop_stub();
}

Test(cp, host_outside_allowlist_refused_before_sending)
{
	start_stub(false);
	cep_cp_opts o;
	opts_for_stub(&o);
	o.n_allow = 1;
	snprintf(o.allow[0], sizeof(o.allow[0]), ".example.net");
	cep_cp *cp = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_cp_new(&o, &cp, &err), CEP_PERMISSION_DENIED);
	cr_assert_str_eq(err.msg,
	    "upstream host 127.0.0.1 not allowed "
	    "(controlPlane.allow)");
	cr_assert_null(cp);
	cr_assert_eq(n_requests(), 0);
	/* the patterns themselves */
	o.n_allow = 2;
	snprintf(o.allow[1], sizeof(o.allow[1]), "127.0.0.1");
	cp = client(&o);
	cr_assert(cep_cp_allowed(cp, "a.example.net"));
	cr_assert(cep_cp_allowed(cp, "A.B.EXAMPLE.NET."));
	cr_assert_not(cep_cp_allowed(cp, "example.net"));
	cr_assert_not(cep_cp_allowed(cp, "evil-example.net"));
	cr_assert_not(cep_cp_allowed(cp, "example.net.evil.org"));
	cr_assert_not(cep_cp_allowed(cp, "127.0.0.2"));
	cep_cp_free(cp);
	/* n_allow 0: the url's host only */
	o.n_allow = 0;
	cp = client(&o);
	cr_assert(cep_cp_allowed(cp, "127.0.0.1"));
	cr_assert_not(cep_cp_allowed(cp, "localhost"));
	cep_cp_free(cp);
	/* only https, and a proxy is http(s) */
	snprintf(o.url, sizeof(o.url), "http://127.0.0.1:1");
	cr_assert_eq(cep_cp_new(&o, &cp, &err), CEP_INVALID_ARGUMENT);
	opts_for_stub(&o);
	snprintf(o.proxy, sizeof(o.proxy), "socks5://127.0.0.1:1080");
	cr_assert_eq(cep_cp_new(&o, &cp, &err), CEP_INVALID_ARGUMENT);
	stop_stub();
}

Test(cp, environment_proxy_ignored)
{
	start_stub(false);
	cep_cp_opts o;
	opts_for_stub(&o);
	cep_cp *cp = client(&o);
	/* a proxy that does not exist: used, it would fail the call */
	static const char *const vars[] = {"https_proxy", "HTTPS_PROXY",
	    "all_proxy", "ALL_PROXY", NULL};
	for (size_t i = 0; vars[i] != NULL; i++)
		setenv(vars[i], "http://127.0.0.1:9", 1);
	script("{\"kind\": \"ok\", \"hex\": \"" HB_REPLY_HEX "\"}");
	cep_err err = {0};
	int rc = heartbeat(cp, 0, NULL, &err, NULL);
	for (size_t i = 0; vars[i] != NULL; i++)
		unsetenv(vars[i]);
	cr_assert_eq(rc, CEP_OK, "%s", err.msg);
	cr_assert_eq(n_requests(), 1);
	cep_cp_free(cp);
	stop_stub();
}

/* ---- through a real proxy ------------------------------------------------ */

struct proxy {
	pid_t pid;
	int port;
	char log[4096];
};

static char *slurp(const char *path)
{
	char *data = NULL;
	size_t len = 0;
	if (cep_files_read(path, 1 << 20, &data, &len, NULL) != CEP_OK)
		return strdup("");
	return data;
}

static bool port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* tinyproxy in the foreground with its own config, CONNECT allowed to the
 * stub's port only; ready once it accepts connections. */
static void proxy_start(struct proxy *p)
{
	char conf[4096];
	stub_path(conf, sizeof(conf), "tinyproxy.conf");
	stub_path(p->log, sizeof(p->log), "tinyproxy.log");
	p->port = cep_test_free_port();
	char text[8192];
	snprintf(text, sizeof(text),
	    "Port %d\nListen 127.0.0.1\nTimeout 30\n"
	    "ConnectPort %d\nLogFile \"%s\"\nLogLevel Connect\nMaxClients 8\n",
	    p->port, kubeapi_port(stub), p->log);
	cep_err err;
	cr_assert_eq(cep_files_write(conf, text, strlen(text), 0644, &err),
	    CEP_OK);
	p->pid = fork();
	cr_assert_geq(p->pid, 0);
	if (p->pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("tinyproxy", "tinyproxy", "-d", "-c", conf,
		    (char *)NULL);
		_exit(127);
	}
	int64_t end = cep_clock_mono_ms() + 10000;
	for (;;) {
		if (port_open(p->port))
			break;
		int st;
		cr_assert_neq(waitpid(p->pid, &st, WNOHANG), p->pid,
		    "tinyproxy exited (is it installed?)");
		cr_assert_lt(cep_clock_mono_ms(), end,
		    "tinyproxy did not start");
		cep_clock_sleep_ms(50);
	}
}

static void proxy_stop(struct proxy *p)
{
	int st;
	kill(p->pid, SIGTERM);
	waitpid(p->pid, &st, 0);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *s = hay; (s = strstr(s, needle)) != NULL; s++)
		n++;
	return n;
}

Test(cp, through_proxy_and_no_proxy_bypass, .timeout = 60)
{
	start_stub(false);
	struct proxy px;
	proxy_start(&px);
	cep_cp_opts o;
	opts_for_stub(&o);
	snprintf(o.proxy, sizeof(o.proxy), "http://127.0.0.1:%d", px.port);
	cep_cp *cp = client(&o);
	script("{\"kind\": \"ok\", \"hex\": \"" HB_REPLY_HEX "\"}");
	cep_err err = {0};
	cr_assert_eq(heartbeat(cp, 0, NULL, &err, NULL), CEP_OK, "%s", err.msg);
	char want[128];
	snprintf(want, sizeof(want), "CONNECT 127.0.0.1:%d",
	    kubeapi_port(stub));
	char *l = slurp(px.log);
	cr_assert_eq(count(l, want), 1, "tinyproxy log:\n%s", l);
	free(l);
	cep_cp_free(cp);
	/* no_proxy: the same call goes direct, the proxy sees nothing new */
	snprintf(o.no_proxy, sizeof(o.no_proxy), "example.org,127.0.0.1");
	cp = client(&o);
	cr_assert_eq(heartbeat(cp, 0, NULL, &err, NULL), CEP_OK, "%s", err.msg);
	l = slurp(px.log);
	cr_assert_eq(count(l, want), 1, "tinyproxy log:\n%s", l);
	free(l);
	cr_assert_eq(n_requests(), 2);
	cep_cp_free(cp);
	proxy_stop(&px);
	stop_stub();
}
