/*
 * rpc_peer.c - a test helper: either end of a TLS RPC connection in a
 * process of its own (tests/lib/rpc/test_rpc_wedge.c). A client in its
 * own process can be killed with SIGKILL anywhere in connecting; the
 * server lives in one too because Criterion's workers already run nng,
 * which refuses to work in a forked child, and because nng 1.5.2 may
 * never finish closing a socket whose wedged listener was replaced, so
 * the test kills the server instead of freeing it.
 *
 *   test_rpc_peer serve DIR        makes a CA, the server's identity and
 *                                  a client's (DIR/c.pem, k.pem, ca.pem),
 *                                  listens with the relay's default
 *                                  limits, writes its URL to DIR/url and
 *                                  answers cep.v1.Test/Echo until killed
 *   test_rpc_peer dial URL DIR     calls cep.v1.Test/Echo for ever
 *   test_rpc_peer dial URL DIR MS  exits 0 at the first answer, 1 if none
 *                                  came within MS
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cep.pb-c.h"
#include "clock.h"
#include "pki.h"
#include "rpc.h"

static void need(int ok, const char *what, const cep_err *err)
{
	if (ok)
		return;
	fprintf(stderr, "test_rpc_peer: %s: %s\n", what,
	    err != NULL ? err->msg : "failed");
	exit(2);
}

static char *slurp(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	need(f != NULL, path, NULL);
	char *buf = calloc(1, 65536);
	size_t n = buf != NULL ? fread(buf, 1, 65535, f) : 0;
	fclose(f);
	need(buf != NULL, "out of memory", NULL);
	buf[n] = '\0';
	return buf;
}

static void put(const char *dir, const char *name, const char *text)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	need(f != NULL, tmp, NULL);
	fputs(text, f);
	fclose(f);
	need(rename(tmp, path) == 0, path, NULL); /* whole, or not there */
}

static void h_echo(cep_rpc_call *c, void *arg)
{
	(void)arg;
	Cep__V1__ChallengeReply rep = CEP__V1__CHALLENGE_REPLY__INIT;
	cep_rpc_call_reply(c, &rep.base);
}

static _Noreturn void serve(const char *dir)
{
	static const char *const dns[] = {"localhost", NULL};
	static const cep_rpc_method methods[] = {{"cep.v1.Test/Echo",
	    &cep__v1__challenge_request__descriptor, h_echo}};
	char cadir[4096];
	snprintf(cadir, sizeof(cadir), "%s/ca", dir);
	cep_pki_ca *ca = NULL;
	cep_err err = {0};
	need(cep_pki_ca_create(cadir, "test", &err) == CEP_OK, "CA", &err);
	need(cep_pki_ca_load(&ca, cadir, &err) == CEP_OK, "CA", &err);
	int64_t until = cep_clock_now_ms() + 3600 * 1000;
	cep_pki_issue_req srq = {.cn = "relay",
	    .server = 1,
	    .dns = dns,
	    .not_after_ms = until};
	cep_pki_issue_req crq = {.cn = "runner", .not_after_ms = until};
	char *scert = NULL, *skey = NULL, *ccert = NULL, *ckey = NULL;
	need(cep_pki_issue(ca, &srq, &scert, &skey, &err) == CEP_OK, "server",
	    &err);
	need(cep_pki_issue(ca, &crq, &ccert, &ckey, &err) == CEP_OK, "client",
	    &err);
	put(dir, "c.pem", ccert);
	put(dir, "k.pem", ckey);
	put(dir, "ca.pem", cep_pki_ca_cert_pem(ca));
	/* the relay's default limits: the gate, and its wedge watch, run */
	cep_rpc_limits lim = {.handshake_timeout_ms = 10000};
	cep_rpc_server_opts o = {.name = "test", .workers = 2, .limits = &lim};
	cep_rpc_tls tls = {.cert_pem = scert,
	    .key_pem = skey,
	    .ca_pem = cep_pki_ca_cert_pem(ca)};
	cep_rpc_server *s = NULL;
	need(cep_rpc_server_new(&s, methods, 1, NULL, &o, &err) == CEP_OK,
	    "server", &err);
	need(cep_rpc_server_listen(s, "tls+tcp://127.0.0.1:0", &tls, &err) ==
	        CEP_OK,
	    "listening", &err);
	char url[64];
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d",
	    cep_rpc_server_port(s));
	put(dir, "url", url);
	for (;;)
		pause();
}

static int dial(const char *url, const char *dir, long ms)
{
	char *cert = slurp(dir, "c.pem"), *key = slurp(dir, "k.pem"),
	     *ca = slurp(dir, "ca.pem");
	cep_rpc_tls tls = {.cert_pem = cert,
	    .key_pem = key,
	    .ca_pem = ca,
	    .server_name = "localhost"};
	cep_rpc_client *c = NULL;
	cep_err err = {0};
	need(cep_rpc_client_new(&c, url, &tls, &err) == CEP_OK, url, &err);
	int64_t until = cep_clock_mono_ms() + ms;
	int rc = 1;
	for (;;) {
		Cep__V1__ChallengeRequest rq = CEP__V1__CHALLENGE_REQUEST__INIT;
		rq.run_id = "dial";
		if (cep_rpc_invoke(c, "cep.v1.Test/Echo", &rq.base, NULL, NULL,
		        1000, &err) == CEP_OK &&
		    ms >= 0) {
			rc = 0;
			break;
		}
		if (ms >= 0 && cep_clock_mono_ms() >= until) {
			fprintf(stderr,
			    "test_rpc_peer: no answer within %ld ms: %s\n", ms,
			    err.msg);
			break;
		}
	}
	cep_rpc_client_free(c);
	free(cert);
	free(key);
	free(ca);
	return rc;
}

int main(int argc, char **argv)
{
	/* a test that fails midway leaves no server or client behind */
	pid_t parent = getppid();
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		return 2;
	if (argc == 3 && strcmp(argv[1], "serve") == 0)
		serve(argv[2]);
	if ((argc == 4 || argc == 5) && strcmp(argv[1], "dial") == 0)
		return dial(argv[2], argv[3],
		    argc == 5 ? strtol(argv[4], NULL, 10) : -1);
	fprintf(stderr, "usage: %s serve DIR | %s dial URL DIR [MS]\n", argv[0],
	    argv[0]);
	return 2;
}
