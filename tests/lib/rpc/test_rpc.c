/*
 * test_rpc.c - the RPC layer over ipc:// and tls+tcp:// (one suite run
 * against both transports), its refusals of hostile frames, long-polls,
 * deadlines, mutual TLS, and the pure frame decoder.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cep.pb-c.h"
#include "pki.h"
#include "rpc.h"
#include "rpc_int.h"
#include "testutil.h"
#include "clock.h"

/* ------------------------------------------------------------ handlers */

/* Echo: ChallengeRequest{run_id} -> ChallengeReply{nonce =
 * "<run_id>|<verified>|<peer>|<pipe>"}: what the server saw of the caller. */
static void h_echo(cep_rpc_call *c, void *arg)
{
	(void)arg;
	const Cep__V1__ChallengeRequest *rq =
	    (const Cep__V1__ChallengeRequest *)cep_rpc_call_request(c);
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "%s|%d|%s|%u", rq->run_id,
	    cep_rpc_call_peer_verified(c), cep_rpc_call_peer(c),
	    cep_rpc_call_pipe(c).id);
	Cep__V1__ChallengeReply rep = CEP__V1__CHALLENGE_REPLY__INIT;
	rep.nonce.data = (uint8_t *)buf;
	rep.nonce.len = (size_t)n;
	cep_rpc_call_reply(c, &rep.base);
}

/* Park: holds calls; the test answers them from its own threads. */
static pthread_mutex_t park_mtx = PTHREAD_MUTEX_INITIALIZER;
static cep_rpc_call *parked[64];
static int nparked;

static void h_park(cep_rpc_call *c, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&park_mtx);
	if (nparked < 64)
		parked[nparked++] = c;
	else /* no cr_assert off the test's thread */
		cep_rpc_call_fail(c, CEP_INTERNAL, "too many parked");
	pthread_mutex_unlock(&park_mtx);
}

static int parked_count(void)
{
	pthread_mutex_lock(&park_mtx);
	int n = nparked;
	pthread_mutex_unlock(&park_mtx);
	return n;
}

static cep_rpc_call *park_take(void)
{
	pthread_mutex_lock(&park_mtx);
	cep_rpc_call *c = nparked ? parked[--nparked] : NULL;
	pthread_mutex_unlock(&park_mtx);
	return c;
}

/* Waits until n calls are parked, or fails after 10 s. */
static void park_wait(int n)
{
	int64_t until = cep_clock_mono_ms() + 10000;
	while (parked_count() < n && cep_clock_mono_ms() < until)
		cep_clock_sleep_ms(5);
	cr_assert_eq(parked_count(), n, "parked %d of %d", parked_count(), n);
}

/* Never: the call is forgotten by the handler (the server answers it at
 * free). */
static void h_never(cep_rpc_call *c, void *arg)
{
	(void)c;
	(void)arg;
}

static const cep_rpc_method methods[] = {
    {"cep.v1.Test/Echo", &cep__v1__challenge_request__descriptor, h_echo},
    {"cep.v1.Test/Park", &cep__v1__challenge_request__descriptor, h_park},
    {"cep.v1.Test/Never", &cep__v1__challenge_request__descriptor, h_never},
};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

/* ------------------------------------------------------------- fixture */

typedef struct pems {
	char *cert, *key;
} pems;

typedef struct fx {
	char *dir;
	bool tls;
	char url[300];
	cep_rpc_server *srv;
	char *ca_pem, *ca2_pem;
	pems server, client, stranger; /* stranger: from another CA */
	atomic_int pipe_adds, pipe_rems;
} fx;

static void on_pipe(cep_pipe_id p, bool added, bool verified, const char *peer,
    void *arg)
{
	(void)p;
	(void)verified;
	(void)peer;
	fx *f = arg;
	atomic_fetch_add(added ? &f->pipe_adds : &f->pipe_rems, 1);
}

/* Waits (bounded, 5 s) until *v reaches want; returns its value then. The
 * pipe notifications run on nng's threads, and nng starts a pipe before it
 * runs ADD_POST: the pipe's first reply may be back before the server has
 * counted the pipe (see pipe_snapshot in rpc_server.c). */
static int await_count(atomic_int *v, int want)
{
	int64_t until = cep_clock_mono_ms() + 5000;
	while (atomic_load(v) < want && cep_clock_mono_ms() < until)
		cep_clock_sleep_ms(5);
	return atomic_load(v);
}

static char *make_ca(const char *dir, const char *name, cep_pki_ca **ca)
{
	cep_err err;
	cr_assert_eq(cep_pki_ca_create(dir, name, &err), CEP_OK, "%s", err.msg);
	cr_assert_eq(cep_pki_ca_load(ca, dir, &err), CEP_OK, "%s", err.msg);
	return strdup(cep_pki_ca_cert_pem(*ca));
}

static void issue(cep_pki_ca *ca, const char *cn, int server, pems *out)
{
	static const char *const dns[] = {"localhost", NULL};
	static const char *const ips[] = {"127.0.0.1", NULL};
	cep_pki_issue_req rq = {.cn = cn,
	    .server = server,
	    .not_after_ms = cep_clock_now_ms() + 3600 * 1000};
	if (server) {
		rq.dns = dns;
		rq.ips = ips;
	}
	cep_err err;
	cr_assert_eq(cep_pki_issue(ca, &rq, &out->cert, &out->key, &err),
	    CEP_OK, "%s", err.msg);
}

static void make_pki(fx *f)
{
	char d1[512], d2[512];
	snprintf(d1, sizeof(d1), "%s/ca", f->dir);
	snprintf(d2, sizeof(d2), "%s/ca2", f->dir);
	cep_pki_ca *ca, *ca2;
	f->ca_pem = make_ca(d1, "test", &ca);
	f->ca2_pem = make_ca(d2, "other", &ca2);
	issue(ca, "relay", 1, &f->server);
	issue(ca, "runner", 0, &f->client);
	issue(ca2, "intruder", 0, &f->stranger);
	cep_pki_ca_free(ca);
	cep_pki_ca_free(ca2);
}

static cep_rpc_tls server_tls(fx *f, bool optional)
{
	return (cep_rpc_tls){.cert_pem = f->server.cert,
	    .key_pem = f->server.key,
	    .ca_pem = f->ca_pem,
	    .client_cert_optional = optional};
}

static cep_rpc_tls client_tls(fx *f, const pems *who)
{
	/* mbedTLS 2.28 matches names against DNS SANs only, not IP SANs */
	return (cep_rpc_tls){.cert_pem = who ? who->cert : NULL,
	    .key_pem = who ? who->key : NULL,
	    .ca_pem = f->ca_pem,
	    .server_name = "localhost"};
}

static void fx_server(fx *f, int workers, bool optional)
{
	cep_rpc_server_opts o = {.name = "test",
	    .workers = workers,
	    .pipe_cb = on_pipe,
	    .pipe_cb_arg = f};
	cep_err err;
	cr_assert_eq(cep_rpc_server_new(&f->srv, methods, NMETHODS, NULL, &o,
	                 &err),
	    CEP_OK, "%s", err.msg);
	if (f->tls) {
		cep_rpc_tls t = server_tls(f, optional);
		cr_assert_eq(cep_rpc_server_listen(f->srv,
		                 "tls+tcp://127.0.0.1:0", &t, &err),
		    CEP_OK, "%s", err.msg);
		int port = cep_rpc_server_port(f->srv);
		cr_assert(port > 0);
		snprintf(f->url, sizeof(f->url), "tls+tcp://127.0.0.1:%d",
		    port);
	} else {
		cr_assert_eq(cep_rpc_server_listen(f->srv, f->url, NULL, &err),
		    CEP_OK, "%s", err.msg);
	}
}

static fx *fx_new(bool tls, int workers)
{
	fx *f = calloc(1, sizeof(*f));
	f->dir = cep_test_tmpdir(tls ? "rpc-tls" : "rpc-ipc");
	f->tls = tls;
	snprintf(f->url, sizeof(f->url), "ipc://%s/s.sock", f->dir);
	if (tls)
		make_pki(f);
	fx_server(f, workers, false);
	return f;
}

static void pems_free(pems *p)
{
	free(p->cert);
	cep_pki_free_secret(p->key);
}

static void fx_free(fx *f)
{
	cep_rpc_server_free(f->srv);
	pems_free(&f->server);
	pems_free(&f->client);
	pems_free(&f->stranger);
	free(f->ca_pem);
	free(f->ca2_pem);
	cep_test_rmdir(f->dir);
	free(f);
}

static cep_rpc_client *fx_client_as(fx *f, const pems *who)
{
	cep_rpc_client *c;
	cep_err err;
	cep_rpc_tls t = client_tls(f, who);
	cr_assert_eq(cep_rpc_client_new(&c, f->url, f->tls ? &t : NULL, &err),
	    CEP_OK, "%s", err.msg);
	return c;
}

static cep_rpc_client *fx_client(fx *f)
{
	return fx_client_as(f, &f->client);
}

/* One Echo call; returns its status, reply text in out (may be NULL). */
static int echo(cep_rpc_client *c, const char *method, const char *text,
    int timeout_ms, char *out, size_t outlen, cep_err *err)
{
	Cep__V1__ChallengeRequest rq = CEP__V1__CHALLENGE_REQUEST__INIT;
	rq.run_id = (char *)text;
	ProtobufCMessage *rep = NULL;
	int rv = cep_rpc_invoke(c, method, &rq.base,
	    &cep__v1__challenge_reply__descriptor, &rep, timeout_ms, err);
	if (rv == CEP_OK) {
		Cep__V1__ChallengeReply *r = (Cep__V1__ChallengeReply *)rep;
		if (out != NULL)
			snprintf(out, outlen, "%.*s", (int)r->nonce.len,
			    (const char *)r->nonce.data);
		protobuf_c_message_free_unpacked(rep, NULL);
	}
	return rv;
}

static void echo_ok(cep_rpc_client *c, const char *text)
{
	char out[512];
	cep_err err;
	int rv = echo(c, "cep.v1.Test/Echo", text, 5000, out, sizeof(out),
	    &err);
	cr_assert_eq(rv, CEP_OK, "%s: %s", cep_err_code_name(rv), err.msg);
	size_t n = strlen(text);
	cr_assert(strncmp(out, text, n) == 0 && out[n] == '|',
	    "reply \"%s\" for \"%s\"", out, text);
}

/* ------------------------------------------------------- unary, threads */

static void t_unary(bool tls)
{
	fx *f = fx_new(tls, 0);
	cep_rpc_client *c = fx_client(f);
	char out[512];
	cep_err err;
	cr_assert_eq(echo(c, "cep.v1.Test/Echo", "hello", 5000, out,
	                 sizeof(out), &err),
	    CEP_OK, "%s", err.msg);
	/* "hello|<verified>|<peer>|<pipe>" */
	if (tls)
		cr_assert(strncmp(out, "hello|1|127.0.0.1:", 18) == 0, "%s",
		    out);
	else
		cr_assert(strncmp(out, "hello|1|ipc|", 12) == 0, "%s", out);
	cr_assert_eq(await_count(&f->pipe_adds, 1), 1);
	cep_rpc_stats st; /* the pipe is in the table before pipe_cb runs */
	cep_rpc_server_stats(f->srv, &st);
	cr_assert_eq(st.calls, 1);
	cr_assert_eq(st.ok, 1);
	cr_assert_eq(st.pipes, 1);
	cep_rpc_client_free(c);
	cr_assert_eq(await_count(&f->pipe_rems, 1), 1);
	fx_free(f);
}

Test(rpc, unary_ipc)
{
	t_unary(false);
}
Test(rpc, unary_tls)
{
	t_unary(true);
}

typedef struct worker_arg {
	cep_rpc_client *c;
	int id, n, ok;
} worker_arg;

static void *caller(void *p)
{
	worker_arg *w = p;
	for (int i = 0; i < w->n; i++) {
		char text[64], out[512];
		cep_err err;
		snprintf(text, sizeof(text), "t%d-c%d", w->id, i);
		if (echo(w->c, "cep.v1.Test/Echo", text, 10000, out,
		        sizeof(out), &err) == CEP_OK &&
		    strncmp(out, text, strlen(text)) == 0 &&
		    out[strlen(text)] == '|')
			w->ok++;
	}
	return NULL;
}

/* 100 calls from 8 threads on one client, each answer matched to its call */
static void t_threads(bool tls)
{
	fx *f = fx_new(tls, 0);
	cep_rpc_client *c = fx_client(f);
	pthread_t th[8];
	worker_arg w[8];
	for (int i = 0; i < 8; i++) {
		w[i] = (worker_arg){.c = c, .id = i, .n = i < 4 ? 13 : 12};
		pthread_create(&th[i], NULL, caller, &w[i]);
	}
	int ok = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		ok += w[i].ok;
	}
	cr_assert_eq(ok, 100);
	cep_rpc_stats st;
	cep_rpc_server_stats(f->srv, &st);
	cr_assert_eq(st.ok, 100);
	cep_rpc_client_free(c);
	fx_free(f);
}

Test(rpc, threads_ipc)
{
	t_threads(false);
}
Test(rpc, threads_tls)
{
	t_threads(true);
}

/* ------------------------------------------------------------ long-poll */

typedef struct park_arg {
	cep_rpc_client *c;
	const char *method;
	int timeout_ms, rv;
	char out[512];
	atomic_bool done;
} park_arg;

static void *park_caller(void *p)
{
	park_arg *a = p;
	cep_err err;
	a->rv = echo(a->c, a->method, "parked", a->timeout_ms, a->out,
	    sizeof(a->out), &err);
	atomic_store(&a->done, true);
	return NULL;
}

static void *late_replier(void *p)
{
	(void)p;
	cep_clock_sleep_ms(300);
	cep_rpc_call *call = park_take();
	if (call == NULL)
		return NULL; /* the caller's assertion on "late" fails */
	Cep__V1__ChallengeReply rep = CEP__V1__CHALLENGE_REPLY__INIT;
	rep.nonce.data = (uint8_t *)"late";
	rep.nonce.len = 4;
	cep_rpc_call_reply(call, &rep.base);
	return NULL;
}

/* One worker only: a parked call must hold a context, not the worker. */
static void t_longpoll(bool tls)
{
	fx *f = fx_new(tls, 1);
	cep_rpc_client *c = fx_client(f);
	park_arg a = {.c = c,
	    .method = "cep.v1.Test/Park",
	    .timeout_ms = 20000};
	pthread_t th, rep;
	pthread_create(&th, NULL, park_caller, &a);
	park_wait(1);
	for (int i = 0; i < 50; i++) {
		char text[32];
		snprintf(text, sizeof(text), "meanwhile-%d", i);
		echo_ok(c, text);
	}
	cr_assert(!atomic_load(&a.done), "the parked call ended early");
	pthread_create(&rep, NULL, late_replier, NULL);
	pthread_join(rep, NULL);
	pthread_join(th, NULL);
	cr_assert_eq(a.rv, CEP_OK);
	cr_assert_str_eq(a.out, "late");
	cep_rpc_client_free(c);
	fx_free(f);
}

Test(rpc, longpoll_ipc)
{
	t_longpoll(false);
}
Test(rpc, longpoll_tls)
{
	t_longpoll(true);
}

/* 40 calls parked at once: the context pool grows past its first 8. */
Test(rpc, many_parked_ipc)
{
	fx *f = fx_new(false, 2);
	cep_rpc_client *c = fx_client(f);
	enum { N = 40 };
	park_arg a[N];
	pthread_t th[N];
	for (int i = 0; i < N; i++) {
		a[i] = (park_arg){.c = c,
		    .method = "cep.v1.Test/Park",
		    .timeout_ms = 20000};
		pthread_create(&th[i], NULL, park_caller, &a[i]);
	}
	park_wait(N);
	echo_ok(c, "still-serving");
	cep_rpc_call *call;
	while ((call = park_take()) != NULL)
		cep_rpc_call_fail(call, CEP_ABORTED, "released %d", 7);
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(a[i].rv, CEP_ABORTED);
	}
	cep_rpc_client_free(c);
	fx_free(f);
}

/* --------------------------------------------------------- refusals */

/* A raw req socket: sends bytes, returns the reply Envelope (or NULL). */
static Cep__V1__Envelope *raw_exchange(const char *url, const void *buf,
    size_t len, int *nng_rv)
{
	nng_socket s;
	cr_assert_eq(nng_req0_open(&s), 0);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 3000);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 3000);
	cr_assert_eq(nng_dial(s, url, NULL, 0), 0);
	Cep__V1__Envelope *env = NULL;
	char *rep = NULL;
	size_t rlen = 0;
	int rv = nng_send(s, (void *)buf, len, 0);
	if (rv == 0)
		rv = nng_recv(s, &rep, &rlen, NNG_FLAG_ALLOC);
	if (rv == 0) {
		env = cep__v1__envelope__unpack(NULL, rlen, (uint8_t *)rep);
		nng_free(rep, rlen);
	}
	*nng_rv = rv;
	nng_close(s);
	return env;
}

static void expect_status(const char *url, const void *buf, size_t len,
    int code, uint64_t call_id, const char *text)
{
	int rv;
	Cep__V1__Envelope *env = raw_exchange(url, buf, len, &rv);
	cr_assert_not_null(env, "no reply: %s", nng_strerror(rv));
	cr_assert_eq(env->code, code, "code %d, want %d (%s)", env->code, code,
	    env->error);
	cr_assert_eq(env->call_id, call_id);
	cr_assert(strstr(env->error, text) != NULL, "error \"%s\"", env->error);
	cep__v1__envelope__free_unpacked(env, NULL);
}

static void t_refusals(bool tls)
{
	fx *f = fx_new(tls, 0);
	cep_rpc_client *c = fx_client(f);
	cep_err err;
	/* unknown method, through the client */
	int rv = echo(c, "cep.v1.Test/Nope", "x", 5000, NULL, 0, &err);
	cr_assert_eq(rv, CEP_UNIMPLEMENTED);
	cr_assert_str_eq(err.msg, "unknown method cep.v1.Test/Nope");
	/* a request too large is refused before it leaves */
	char *big = malloc(CEP_RPC_MAX_MSG + 2);
	memset(big, 'a', CEP_RPC_MAX_MSG + 1);
	big[CEP_RPC_MAX_MSG + 1] = '\0';
	rv = echo(c, "cep.v1.Test/Echo", big, 5000, NULL, 0, &err);
	cr_assert_eq(rv, CEP_RESOURCE_EXHAUSTED, "%s", err.msg);
	cep_rpc_stats st;
	cep_rpc_server_stats(f->srv, &st);
	cr_assert_eq(st.calls, 1, "the big request reached the server");
	if (!tls) { /* raw nng sockets speak ipc here; TLS is covered below */
		/* a body that is not the method's request */
		Cep__V1__Envelope env = CEP__V1__ENVELOPE__INIT;
		uint8_t bad_body[] = {0x0a, 0x05,
		    'a'}; /* length past the end */
		env.method = "cep.v1.Test/Echo";
		env.call_id = 77;
		env.body = (ProtobufCBinaryData){sizeof(bad_body), bad_body};
		uint8_t buf[128];
		size_t n = cep__v1__envelope__pack(&env, buf);
		expect_status(f->url, buf, n, CEP_INVALID_ARGUMENT, 77,
		    "malformed cep.v1.Test/Echo request");
		/* bytes that are no envelope */
		uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
		expect_status(f->url, junk, sizeof(junk), CEP_INVALID_ARGUMENT,
		    0, "malformed envelope");
		/* oversized but under nng's limit: answered */
		expect_status(f->url, big, CEP_RPC_MAX_MSG + 1,
		    CEP_RESOURCE_EXHAUSTED, 0, "exceeds the limit");
		/* over nng's limit: the pipe is dropped, no reply, no crash */
		size_t huge = 2 * (size_t)CEP_RPC_MAX_MSG + 16;
		char *h = calloc(1, huge);
		Cep__V1__Envelope *e = raw_exchange(f->url, h, huge, &rv);
		cr_assert_null(e);
		free(h);
		cep_rpc_server_stats(f->srv, &st);
		cr_assert_eq(st.malformed, 2);
		cr_assert_eq(st.oversized, 1);
		cr_assert_eq(st.unknown_method, 1);
	}
	free(big);
	echo_ok(c, "still-serving");
	cep_rpc_client_free(c);
	fx_free(f);
}

Test(rpc, refusals_ipc)
{
	t_refusals(false);
}
Test(rpc, refusals_tls)
{
	t_refusals(true);
}

static void t_deadline(bool tls)
{
	fx *f = fx_new(tls, 0);
	cep_rpc_client *c = fx_client(f);
	cep_err err;
	/* connected first: a TLS handshake alone may take longer than 300 ms
	 * on a loaded machine (then the answer is UNAVAILABLE, not this) */
	echo_ok(c, "connect");
	int64_t t0 = cep_clock_mono_ms();
	int rv = echo(c, "cep.v1.Test/Never", "x", 300, NULL, 0, &err);
	int64_t took = cep_clock_mono_ms() - t0;
	cr_assert_eq(rv, CEP_DEADLINE_EXCEEDED, "%s: %s", cep_err_code_name(rv),
	    err.msg);
	cr_assert(took >= 250 && took < 5000, "took %lld ms", (long long)took);
	cr_assert(cep_rpc_retryable(rv));
	echo_ok(c, "after-timeout");
	cep_rpc_client_free(c);
	fx_free(f); /* answers the forgotten call; ASan checks nothing leaks */
}

Test(rpc, deadline_ipc)
{
	t_deadline(false);
}
Test(rpc, deadline_tls)
{
	t_deadline(true);
}

/* The wedge watch's remedy (test_rpc_gate.c shows when it fires): the
 * TLS listener is made again on its port. A connected client is cut off
 * with the listener's pipes, dials again and is served; so is a new one. */
Test(rpc, tls_relisten)
{
	fx *f = fx_new(true, 2);
	cep_rpc_client *c = fx_client(f);
	echo_ok(c, "before");
	int port = cep_rpc_server_port(f->srv);
	int rems = atomic_load(&f->pipe_rems);
	cep_rpc_server_relisten(f->srv);
	cr_assert_eq(cep_rpc_server_port(f->srv), port);
	cr_assert_gt(await_count(&f->pipe_rems, rems + 1), rems,
	    "the listener's pipe was not closed with it");
	cep_err err;
	int rv = CEP_UNAVAILABLE;
	int64_t until = cep_clock_mono_ms() + 10000;
	while (rv != CEP_OK && cep_clock_mono_ms() < until)
		rv = echo(c, "cep.v1.Test/Echo", "again", 2000, NULL, 0, &err);
	cr_assert_eq(rv, CEP_OK, "not served again: %s", err.msg);
	cep_rpc_client *n = fx_client(f);
	echo_ok(n, "new");
	cep_rpc_stats st;
	cep_rpc_server_stats(f->srv, &st);
	cr_assert_eq(st.listener_restarts, 1);
	cep_rpc_client_free(n);
	cep_rpc_client_free(c);
	fx_free(f);
}

/* A parked call is answered UNAVAILABLE when the server goes away. */
Test(rpc, free_answers_parked)
{
	fx *f = fx_new(false, 1);
	cep_rpc_client *c = fx_client(f);
	park_arg a = {.c = c,
	    .method = "cep.v1.Test/Park",
	    .timeout_ms = 20000};
	pthread_t th;
	pthread_create(&th, NULL, park_caller, &a);
	park_wait(1);
	cep_rpc_server_free(f->srv);
	f->srv = NULL;
	park_take(); /* freed by the server: only forget it */
	pthread_join(th, NULL);
	cr_assert_eq(a.rv, CEP_UNAVAILABLE);
	cep_rpc_client_free(c);
	fx_free(f);
}

/* Not tested here: freeing a server while a client in the same process
 * hammers it. With nng 1.5.2 (Debian 12) nng_close then hangs now and then
 * in nng's reaper (nanomsg/nng#1813, fixed by #1824 in nng 1.8): measured
 * 1 in 20 runs over ipc, 3 in 10 over TLS. The daemons are separate
 * processes, and systemd's stop timeout bounds such a hang; see
 * docs/internals.md "Known limits". */

/* nng 1.5.2's ipc listener stops accepting after a peer closes during the
 * SP handshake; rpc_guard.c re-creates it. Whatever nng does, a client
 * must be served again within a few seconds, over and over. */
Test(rpc, ipc_survives_handshake_close)
{
	fx *f = fx_new(false, 2);
	const char *path = f->url + strlen("ipc://");
	for (int round = 0; round < 3; round++) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
		cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
		static const char hdr[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
		cr_assert_eq(write(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
		close(fd);
		cep_clock_sleep_ms(100);
		cep_rpc_client *c = fx_client(f);
		cep_err err;
		int rv = CEP_UNAVAILABLE;
		int64_t until = cep_clock_mono_ms() + 8000;
		while (rv != CEP_OK && cep_clock_mono_ms() < until)
			rv = echo(c, "cep.v1.Test/Echo", "again", 1000, NULL, 0,
			    &err);
		cr_assert_eq(rv, CEP_OK, "round %d: not served again: %s",
		    round, err.msg);
		cep_rpc_client_free(c);
	}
	fx_free(f);
}

/* ------------------------------------------------------- ipc specifics */

Test(rpc, ipc_mode_and_stale_socket)
{
	char *dir = cep_test_tmpdir("rpc-stale");
	char path[300], url[320];
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	snprintf(url, sizeof(url), "ipc://%s", path);
	/* a socket file left by a dead process */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	cr_assert(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	cep_rpc_server *s, *s2;
	cep_err err;
	cr_assert_eq(cep_rpc_server_new(&s, methods, NMETHODS, NULL, NULL,
	                 &err),
	    CEP_OK);
	cr_assert_eq(cep_rpc_server_listen(s, url, NULL, &err), CEP_OK, "%s",
	    err.msg);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0660, "mode %o", st.st_mode & 0777);
	/* a live socket is not taken over */
	cr_assert_eq(cep_rpc_server_new(&s2, methods, NMETHODS, NULL, NULL,
	                 &err),
	    CEP_OK);
	cr_assert_eq(cep_rpc_server_listen(s2, url, NULL, &err),
	    CEP_ALREADY_EXISTS, "%s", err.msg);
	cep_rpc_server_free(s2);
	/* only ipc:// and tls+tcp:// */
	cr_assert_eq(cep_rpc_server_listen(s, "tcp://127.0.0.1:0", NULL, &err),
	    CEP_INVALID_ARGUMENT);
	cep_rpc_server_free(s);
	cep_test_rmdir(dir);
}

/* A client made before its server exists connects when it appears. */
Test(rpc, client_before_server)
{
	char *dir = cep_test_tmpdir("rpc-early");
	char url[320];
	snprintf(url, sizeof(url), "ipc://%s/s.sock", dir);
	cep_rpc_client *c;
	cep_err err;
	cr_assert_eq(cep_rpc_client_new(&c, url, NULL, &err), CEP_OK);
	int rv = echo(c, "cep.v1.Test/Echo", "x", 200, NULL, 0, &err);
	cr_assert_eq(rv, CEP_UNAVAILABLE, "%s", err.msg);
	cep_rpc_server *s;
	cr_assert_eq(cep_rpc_server_new(&s, methods, NMETHODS, NULL, NULL,
	                 &err),
	    CEP_OK);
	cr_assert_eq(cep_rpc_server_listen(s, url, NULL, &err), CEP_OK);
	echo_ok(c, "late-server");
	cep_rpc_client_free(c);
	cep_rpc_server_free(s);
	cep_test_rmdir(dir);
}

/* The server closes a pipe; the client notices and reconnects. */
Test(rpc, close_pipe)
{
	fx *f = fx_new(false, 0);
	cep_rpc_client *c = fx_client(f);
	char out[512];
	cep_err err;
	cr_assert_eq(echo(c, "cep.v1.Test/Echo", "a", 5000, out, sizeof(out),
	                 &err),
	    CEP_OK);
	char *last = strrchr(out, '|');
	cr_assert_not_null(last);
	cep_pipe_id p = {(uint32_t)strtoul(last + 1, NULL, 10)};
	cr_assert(p.id != 0);
	cep_rpc_server_close_pipe(f->srv, p);
	cr_assert_eq(await_count(&f->pipe_rems, 1), 1);
	int rv = CEP_UNAVAILABLE;
	for (int i = 0; i < 20 && rv != CEP_OK; i++) {
		rv = echo(c, "cep.v1.Test/Echo", "b", 2000, out, sizeof(out),
		    &err);
		if (rv != CEP_OK) {
			cr_assert(cep_rpc_retryable(rv), "%s", err.msg);
			cep_clock_sleep_ms(cep_rpc_backoff_ms(i, 20, 200));
		}
	}
	cr_assert_eq(rv, CEP_OK, "%s", err.msg);
	cr_assert_eq(await_count(&f->pipe_adds, 2), 2);
	cep_rpc_client_free(c);
	fx_free(f);
}

/* ----------------------------------------------------------------- TLS */

Test(rpc, tls_stranger_refused)
{
	fx *f = fx_new(true, 0);
	cep_rpc_client *c = fx_client_as(f, &f->stranger);
	cep_err err;
	int rv = echo(c, "cep.v1.Test/Echo", "x", 1500, NULL, 0, &err);
	cr_assert_eq(rv, CEP_UNAVAILABLE, "%s: %s", cep_err_code_name(rv),
	    err.msg);
	cep_rpc_client_free(c);
	c = fx_client_as(f, NULL); /* no certificate at all */
	rv = echo(c, "cep.v1.Test/Echo", "x", 1500, NULL, 0, &err);
	cr_assert_eq(rv, CEP_UNAVAILABLE, "%s: %s", cep_err_code_name(rv),
	    err.msg);
	cep_rpc_client_free(c);
	cep_rpc_stats st;
	cep_rpc_server_stats(f->srv, &st);
	cr_assert_eq(st.calls, 0);
	cr_assert_eq(atomic_load(&f->pipe_adds), 0);
	/* a member still gets in. Under a loaded sanitizer build the first
	 * handshake after the refusals can take long: a few tries, each with
	 * a fresh connection */
	int got = CEP_UNAVAILABLE;
	for (int i = 0; i < 3 && got != CEP_OK; i++) {
		c = fx_client(f);
		got = echo(c, "cep.v1.Test/Echo", "member", 5000, NULL, 0,
		    &err);
		cep_rpc_client_free(c);
	}
	cr_assert_eq(got, CEP_OK, "member refused: %s", err.msg);
	fx_free(f);
}

Test(rpc, tls_optional_marks_unverified)
{
	fx *f = fx_new(true, 0);
	cep_rpc_server_free(f->srv);
	fx_server(f, 0, true);
	char out[512];
	cep_err err;
	const pems *who[] = {&f->stranger, NULL, &f->client};
	const char *want[] = {"s|0|127.0.0.1:", "n|0|127.0.0.1:",
	    "m|1|127.0.0.1:"};
	const char *text[] = {"s", "n", "m"};
	for (int i = 0; i < 3; i++) {
		cep_rpc_client *c = fx_client_as(f, who[i]);
		int rv = echo(c, "cep.v1.Test/Echo", text[i], 5000, out,
		    sizeof(out), &err);
		cr_assert_eq(rv, CEP_OK, "%s", err.msg);
		cr_assert(strncmp(out, want[i], strlen(want[i])) == 0, "%s",
		    out);
		cep_rpc_client_free(c);
	}
	fx_free(f);
}

/* A plain TCP peer that starts a ClientHello and hangs up. */
static void truncated_hello(int port, size_t nbytes)
{
	static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01,
	    0x00, 0x01, 0xfc, 0x03, 0x03, 0x11, 0x22};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	if (nbytes > 0)
		cr_assert_eq(write(fd, hello, nbytes), (ssize_t)nbytes);
	close(fd);
}

Test(rpc, tls_truncated_handshake)
{
	fx *f = fx_new(true, 0);
	int port = cep_rpc_server_port(f->srv);
	for (size_t n = 0; n <= 13; n += 1)
		truncated_hello(port, n);
	cep_rpc_client *c = fx_client(f);
	echo_ok(c, "after-junk");
	cep_rpc_client_free(c);
	fx_free(f);
}

/* ------------------------------------------------ decoder and helpers */

Test(rpc, decode_frame)
{
	cep_rpc_frame fr;
	uint8_t junk[] = {0x0a, 0xff};
	cep_rpc_decode_frame(methods, NMETHODS, junk, sizeof(junk), &fr);
	cr_assert_eq(fr.code, CEP_INVALID_ARGUMENT);
	cep_rpc_decode_frame(methods, NMETHODS, NULL, 0, &fr);
	cr_assert_eq(fr.code,
	    CEP_UNIMPLEMENTED); /* empty envelope: no method */
	Cep__V1__Envelope env = CEP__V1__ENVELOPE__INIT;
	env.method = "bad\nname\x01";
	env.call_id = 9;
	uint8_t buf[256];
	size_t n = cep__v1__envelope__pack(&env, buf);
	cep_rpc_decode_frame(methods, NMETHODS, buf, n, &fr);
	cr_assert_eq(fr.code, CEP_UNIMPLEMENTED);
	cr_assert_eq(fr.call_id, 9);
	cr_assert_str_eq(fr.error, "unknown method bad?name?");
	Cep__V1__ChallengeRequest rq = CEP__V1__CHALLENGE_REQUEST__INIT;
	rq.run_id = "r-1";
	uint8_t body[64];
	env.method = "cep.v1.Test/Echo";
	env.body.len = cep__v1__challenge_request__pack(&rq, body);
	env.body.data = body;
	env.timeout_ms = 1234;
	n = cep__v1__envelope__pack(&env, buf);
	cep_rpc_decode_frame(methods, NMETHODS, buf, n, &fr);
	cr_assert_eq(fr.code, CEP_OK);
	cr_assert_eq(fr.method, &methods[0]);
	cr_assert_eq(fr.timeout_ms, 1234);
	cr_assert_str_eq(((Cep__V1__ChallengeRequest *)fr.body)->run_id, "r-1");
	cep_rpc_frame_clear(&fr);
}

Test(rpc, backoff_and_retryable)
{
	for (int attempt = 0; attempt < 40; attempt++) {
		int hi = 100;
		for (int i = 0; i < attempt && hi < 5000; i++)
			hi *= 2;
		if (hi > 5000)
			hi = 5000;
		for (int k = 0; k < 50; k++) {
			int ms = cep_rpc_backoff_ms(attempt, 100, 5000);
			cr_assert(ms >= 100 && ms <= hi, "attempt %d: %d ms",
			    attempt, ms);
		}
	}
	int lo = 1 << 30, hi = 0;
	for (int k = 0; k < 200; k++) {
		int ms = cep_rpc_backoff_ms(10, 10, 10000);
		lo = ms < lo ? ms : lo;
		hi = ms > hi ? ms : hi;
	}
	cr_assert(hi - lo > 1000, "no jitter: %d..%d", lo, hi);
	cr_assert(cep_rpc_retryable(CEP_UNAVAILABLE));
	cr_assert(cep_rpc_retryable(CEP_ABORTED));
	cr_assert(!cep_rpc_retryable(CEP_INVALID_ARGUMENT));
	cr_assert(!cep_rpc_retryable(CEP_OK));
}
