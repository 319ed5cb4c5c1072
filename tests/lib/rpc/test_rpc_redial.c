/*
 * test_rpc_redial.c - the client's watchdog (rpc_client.c, rpc_link.c):
 * a tls+tcp client whose connection attempt is stuck in a TLS handshake
 * the peer never answers (a listener that accepts and holds, as a relay
 * that completed the TCP handshake and never served it) gets a new socket
 * within its bound once a real server listens on the port, and freeing a
 * client stuck that way does not hang; nor does freeing a server whose
 * nng_close does not return (rpc_close.c).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cep.pb-c.h"
#include "pki.h"
#include "rpc.h"
#include "rpc_int.h"
#include "testutil.h"
#include "clock.h"

#define WATCHDOG_MS 1000
#define MAX_HELD 64

/* ---------------------------------------------- a listener that holds */

typedef struct holder {
	int lfd, port;
	int held[MAX_HELD];
	atomic_int nheld;
	pthread_t th;
} holder;

static void *hold_loop(void *arg)
{
	holder *h = arg;
	for (;;) {
		int fd = accept(h->lfd, NULL, NULL);
		if (fd < 0)
			return NULL; /* the listening socket was shut down */
		int n = atomic_load(&h->nheld);
		if (n < MAX_HELD) {
			h->held[n] = fd; /* never read: the handshake stalls */
			atomic_store(&h->nheld, n + 1);
		} else {
			close(fd);
		}
	}
}

static void holder_start(holder *h)
{
	memset(h, 0, sizeof(*h));
	h->lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(h->lfd, 0);
	int one = 1;
	setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert_eq(bind(h->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(h->lfd, 16), 0);
	socklen_t len = sizeof(a);
	getsockname(h->lfd, (struct sockaddr *)&a, &len);
	h->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&h->th, NULL, hold_loop, h), 0);
}

/* Stops accepting; the connections accepted so far stay held. */
static void holder_stop_listening(holder *h)
{
	shutdown(h->lfd, SHUT_RDWR);
	pthread_join(h->th, NULL);
	close(h->lfd);
}

static void holder_free(holder *h)
{
	for (int i = 0; i < atomic_load(&h->nheld); i++)
		close(h->held[i]);
}

static void wait_held(holder *h)
{
	for (int i = 0; i < 500 && atomic_load(&h->nheld) == 0; i++)
		cep_clock_sleep_ms(10);
	cr_assert_gt(atomic_load(&h->nheld), 0, "the client never connected");
}

/* ------------------------------------------------------------ the PKI */

typedef struct pki {
	char *dir, *ca, *srv_cert, *srv_key, *cli_cert, *cli_key;
} pki;

static void pki_make(pki *p)
{
	static const char *const dns[] = {"localhost", NULL};
	p->dir = cep_test_tmpdir("rpc-redial");
	cep_err err = {0};
	cep_pki_ca *ca = NULL;
	cr_assert_eq(cep_pki_ca_create(p->dir, "redial", &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(cep_pki_ca_load(&ca, p->dir, &err), CEP_OK, "%s", err.msg);
	p->ca = strdup(cep_pki_ca_cert_pem(ca));
	cep_pki_issue_req rq = {.cn = "relay",
	    .server = 1,
	    .dns = dns,
	    .not_after_ms = cep_clock_now_ms() + 3600 * 1000};
	cr_assert_eq(cep_pki_issue(ca, &rq, &p->srv_cert, &p->srv_key, &err),
	    CEP_OK, "%s", err.msg);
	cep_pki_issue_req rc = {.cn = "runner",
	    .not_after_ms = cep_clock_now_ms() + 3600 * 1000};
	cr_assert_eq(cep_pki_issue(ca, &rc, &p->cli_cert, &p->cli_key, &err),
	    CEP_OK, "%s", err.msg);
	cep_pki_ca_free(ca);
}

static void pki_free(pki *p)
{
	free(p->ca);
	free(p->srv_cert);
	free(p->cli_cert);
	cep_pki_free_secret(p->srv_key);
	cep_pki_free_secret(p->cli_key);
	cep_test_rmdir(p->dir);
}

static cep_rpc_client *client_to(pki *p, int port, int watchdog_ms)
{
	char url[64];
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", port);
	cep_rpc_tls t = {.cert_pem = p->cli_cert,
	    .key_pem = p->cli_key,
	    .ca_pem = p->ca,
	    .server_name = "localhost"};
	cep_rpc_client_opts o = {.watchdog_ms = watchdog_ms};
	cep_rpc_client *c = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_rpc_client_new_opts(&c, url, &t, &o, &err), CEP_OK,
	    "%s", err.msg);
	return c;
}

/* Holds every call until the server is freed (which answers it). */
static void h_never(cep_rpc_call *c, void *arg)
{
	(void)c;
	(void)arg;
}

static const cep_rpc_method methods[] = {
    {"cep.v1.Test/Never", &cep__v1__challenge_request__descriptor, h_never},
};

static cep_rpc_server *server_on(pki *p, int port)
{
	cep_rpc_server *s = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_rpc_server_new(&s, methods, 1, NULL, NULL, &err),
	    CEP_OK, "%s", err.msg);
	char url[64];
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", port);
	cep_rpc_tls t = {.cert_pem = p->srv_cert,
	    .key_pem = p->srv_key,
	    .ca_pem = p->ca};
	cr_assert_eq(cep_rpc_server_listen(s, url, &t, &err), CEP_OK, "%s",
	    err.msg);
	return s;
}

static int ping(cep_rpc_client *c, int timeout_ms, cep_err *err)
{
	return cep_rpc_invoke(c, CEP_RPC_PING_METHOD, NULL, NULL, NULL,
	    timeout_ms, err);
}

/* A real server on a free port and a client connected to it. */
typedef struct live {
	pki p;
	cep_rpc_server *s;
	cep_rpc_client *c;
} live;

static void live_up(live *l, int watchdog_ms)
{
	pki_make(&l->p);
	int port = cep_test_free_port();
	l->s = server_on(&l->p, port);
	l->c = client_to(&l->p, port, watchdog_ms);
}

static void live_down(live *l)
{
	cep_rpc_client_free(l->c);
	cep_rpc_server_free(l->s);
	pki_free(&l->p);
}

/* ---------------------------------------------------------------- tests */

/* The client's first connection is accepted and never answered; the real
 * server then takes the port. Without the watchdog nng 1.5.2 waits on
 * that handshake for good and the call fails after its 15 s. */
Test(rpc_redial, stuck_handshake_gets_a_new_socket, .timeout = 60)
{
	pki p;
	pki_make(&p);
	holder h;
	holder_start(&h);
	cep_rpc_client *c = client_to(&p, h.port, WATCHDOG_MS);
	wait_held(&h);
	holder_stop_listening(&h);
	cep_rpc_server *s = server_on(&p, h.port);
	int64_t t0 = cep_clock_mono_ms();
	cep_err err = {0};
	int rc = ping(c, 15000, &err);
	int64_t took = cep_clock_mono_ms() - t0;
	cr_assert_eq(rc, CEP_OK, "ping after %lld ms: %s", (long long)took,
	    err.msg);
	/* the bound (1 s, up to 1.5 s with jitter) + a check period + dialing */
	cr_assert_lt(took, 4 * WATCHDOG_MS, "took %lld ms", (long long)took);
	cr_assert_geq(cep_rpc_client_redials(c), 1);
	cr_assert_eq(ping(c, 5000, &err), CEP_OK, "%s", err.msg);
	cep_rpc_client_free(c);
	cep_rpc_server_free(s);
	holder_free(&h);
	pki_free(&p);
}

/* A connected client keeps its socket: the watchdog only acts when sends
 * wait with none leaving. */
Test(rpc_redial, connected_client_is_left_alone, .timeout = 60)
{
	live l;
	live_up(&l, 200);
	cep_err err = {0};
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(ping(l.c, 5000, &err), CEP_OK, "%s", err.msg);
		cep_clock_sleep_ms(100);
	}
	cr_assert_eq(cep_rpc_client_redials(l.c), 0);
	live_down(&l);
}

/* A connection on which calls leave but nothing was ever answered (as
 * a pipe the relay's nng never started) is replaced after the first call
 * that times out; one that has answered is kept. */
Test(rpc_redial, never_answered_connection_is_replaced, .timeout = 60)
{
	live l;
	live_up(&l, WATCHDOG_MS);
	cep_err err = {0};
	Cep__V1__ChallengeRequest rq = CEP__V1__CHALLENGE_REQUEST__INIT;
	rq.run_id = "r-1";
	cr_assert_eq(cep_rpc_invoke(l.c, "cep.v1.Test/Never", &rq.base, NULL,
	                 NULL, 300, &err),
	    CEP_DEADLINE_EXCEEDED, "%s", err.msg);
	cr_assert_eq(cep_rpc_client_redials(l.c), 1);
	cr_assert_eq(ping(l.c, 5000, &err), CEP_OK, "%s", err.msg);
	cr_assert_eq(cep_rpc_invoke(l.c, "cep.v1.Test/Never", &rq.base, NULL,
	                 NULL, 300, &err),
	    CEP_DEADLINE_EXCEEDED, "%s", err.msg);
	cr_assert_eq(cep_rpc_client_redials(l.c), 1, "an answering link kept");
	live_down(&l);
}

/* Freeing a client whose handshake is stuck returns within its bound
 * (2 s), whatever nng does with the socket. */
Test(rpc_redial, free_of_a_stuck_client_returns, .timeout = 60)
{
	pki p;
	pki_make(&p);
	holder h;
	holder_start(&h);
	cep_rpc_client *c = client_to(&p, h.port, -1);
	wait_held(&h);
	cep_err err = {0};
	cr_assert_neq(ping(c, 300, &err), CEP_OK);
	int64_t t0 = cep_clock_mono_ms();
	cep_rpc_client_free(c);
	int64_t took = cep_clock_mono_ms() - t0;
	cr_assert_lt(took, 3000, "free took %lld ms", (long long)took);
	holder_stop_listening(&h);
	holder_free(&h);
	pki_free(&p);
}

/* A pipe callback that blocks on a removal while told to: the pipe's
 * teardown then never ends, as nng 1.5.2's does when its reaper waits on
 * an operation that never completes, and nng_close waits for it. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool block, blocked;
} stall = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false};

static void stall_pipe(cep_pipe_id pipe, bool added, bool verified,
    const char *peer, void *arg)
{
	(void)pipe, (void)verified, (void)peer, (void)arg;
	pthread_mutex_lock(&stall.mu);
	while (!added && stall.block) {
		stall.blocked = true;
		pthread_cond_wait(&stall.cv, &stall.mu);
	}
	pthread_mutex_unlock(&stall.mu);
}

/* The server's close has a bound too (rpc_close.c): when nng_close does
 * not return, freeing the server returns after CLOSE_WAIT_MS (10 s),
 * leaving the socket to nng; once nng finishes, nothing breaks. */
Test(rpc_redial, free_of_a_server_whose_close_hangs_returns, .timeout = 60)
{
	pki p;
	pki_make(&p);
	int port = cep_test_free_port();
	cep_rpc_server *s = NULL;
	cep_err err = {0};
	cep_rpc_server_opts o = {.name = "stall", .pipe_cb = stall_pipe};
	cr_assert_eq(cep_rpc_server_new(&s, methods, 1, NULL, &o, &err), CEP_OK,
	    "%s", err.msg);
	char url[64];
	snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", port);
	cep_rpc_tls t = {.cert_pem = p.srv_cert,
	    .key_pem = p.srv_key,
	    .ca_pem = p.ca};
	cr_assert_eq(cep_rpc_server_listen(s, url, &t, &err), CEP_OK, "%s",
	    err.msg);
	cep_rpc_client *c = client_to(&p, port, -1);
	cr_assert_eq(ping(c, 5000, &err), CEP_OK, "%s", err.msg);
	pthread_mutex_lock(&stall.mu);
	stall.block = true;
	pthread_mutex_unlock(&stall.mu);
	int64_t t0 = cep_clock_mono_ms();
	cep_rpc_server_free(s);
	int64_t took = cep_clock_mono_ms() - t0;
	pthread_mutex_lock(&stall.mu);
	bool blocked = stall.blocked;
	stall.block = false;
	pthread_cond_broadcast(&stall.cv);
	pthread_mutex_unlock(&stall.mu);
	cr_assert(blocked, "the close never reached the pipe's removal");
	cr_assert_geq(took, 9000, "free took %lld ms: not waited for",
	    (long long)took);
	cr_assert_lt(took, 13000, "free took %lld ms", (long long)took);
	/* the close ends on its thread once the teardown can */
	for (int i = 0; i < 500 && cep_rpc_close_pending(); i++)
		cep_clock_sleep_ms(10);
	cr_assert(!cep_rpc_close_pending(), "the close never ended");
	cep_rpc_client_free(c);
	pki_free(&p);
}
