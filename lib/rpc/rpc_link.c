/*
 * rpc_link.c - one connection of an RPC client: an nng req0 socket with
 * its one background dialer, and a close that cannot hang its caller.
 *
 * Why a close with a bound: with libnng 1.5.2, a tls+tcp dialer whose
 * connection attempt is stuck in a TLS handshake the server never answers
 * makes nng_close of its socket wait for that attempt, i.e. for good
 * (docs/performance.md, the reconnect storm). The close runs on a
 * detached thread; the caller waits at most wait_ms for it. A close that
 * does not end leaves that thread, the socket and this struct behind (a
 * few KiB), never the caller.
 */
#define _GNU_SOURCE
#include "rpc_int.h"

#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"

#define RECONNECT_MIN_MS 50
#define RECONNECT_MAX_MS 1000

/* Closes still running on their threads. nng 1.5.2 closes sockets on one
 * reaper: once a close is stuck, every later one waits behind it, so a
 * caller does not wait at all while one is pending (a process freeing
 * 300 clients would otherwise wait 300 bounds). */
static _Atomic int closing;

struct cep_rpc_link {
	nng_socket sock;
	bool sock_open;
	nng_dialer dialer;
	/* the close: the closing thread and a waiter each hold a reference */
	_Atomic int refs;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool closed;
};

static int link_socket(cep_rpc_link *l, cep_err *err)
{
	int rv;
	if ((rv = nng_req0_open(&l->sock)) != 0)
		return cep_rpc_err_nng(err, rv, "opening the req socket");
	l->sock_open = true;
	if ((rv = nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ,
	         CEP_RPC_RECV_MAX)) != 0 ||
	    (rv = nng_socket_set_ms(l->sock, NNG_OPT_REQ_RESENDTIME,
	         NNG_DURATION_INFINITE)) != 0 ||
	    (rv = nng_socket_set_ms(l->sock, NNG_OPT_RECONNMINT,
	         RECONNECT_MIN_MS)) != 0 ||
	    (rv = nng_socket_set_ms(l->sock, NNG_OPT_RECONNMAXT,
	         RECONNECT_MAX_MS)) != 0)
		return cep_rpc_err_nng(err, rv, "setting up the req socket");
	return CEP_OK;
}

static int link_dialer(cep_rpc_link *l, const char *url, nng_tls_config *tls,
    cep_err *err)
{
	int rv = nng_dialer_create(&l->dialer, l->sock, url);
	if (rv != 0)
		return cep_rpc_err_nng(err, rv, url);
	if (tls != NULL &&
	    (rv = nng_dialer_set_ptr(l->dialer, NNG_OPT_TLS_CONFIG, tls)) != 0)
		return cep_rpc_err_nng(err, rv, "TLS configuration");
	/* NONBLOCK: the server may not be up yet; nng keeps redialing. */
	if ((rv = nng_dialer_start(l->dialer, NNG_FLAG_NONBLOCK)) != 0)
		return cep_rpc_err_nng(err, rv, url);
	return CEP_OK;
}

int cep_rpc_link_new(cep_rpc_link **out, const char *url, nng_tls_config *tls,
    cep_err *err)
{
	*out = NULL;
	cep_rpc_link *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	int code = link_socket(l, err);
	if (code == CEP_OK)
		code = link_dialer(l, url, tls, err);
	if (code != CEP_OK) {
		cep_rpc_link_close(l, -1);
		return code;
	}
	*out = l;
	return CEP_OK;
}

nng_socket cep_rpc_link_socket(const cep_rpc_link *l)
{
	return l->sock;
}

static void link_unref(cep_rpc_link *l)
{
	if (atomic_fetch_sub(&l->refs, 1) != 1)
		return;
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

static void *link_closer(void *arg)
{
	cep_rpc_link *l = arg;
	nng_close(l->sock);
	atomic_fetch_sub(&closing, 1);
	pthread_mutex_lock(&l->mu);
	l->closed = true;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	link_unref(l);
	return NULL;
}

bool cep_rpc_link_close(cep_rpc_link *l, int wait_ms)
{
	if (l == NULL)
		return true;
	atomic_store(&l->refs, 2);
	pthread_t th;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (wait_ms > 0 && atomic_load(&closing) > 0)
		wait_ms = 0;
	atomic_fetch_add(&closing, 1);
	bool started = l->sock_open && wait_ms >= 0 &&
	    pthread_create(&th, &at, link_closer, l) == 0;
	pthread_attr_destroy(&at);
	if (!started) { /* asked to, nothing to close, or no thread */
		atomic_fetch_sub(&closing, 1);
		if (l->sock_open)
			nng_close(l->sock);
		l->closed = true;
		atomic_store(&l->refs, 1);
		link_unref(l);
		return true;
	}
	int64_t until = cep_clock_mono_ms() + (wait_ms > 0 ? wait_ms : 0);
	pthread_mutex_lock(&l->mu);
	while (!l->closed && cep_clock_mono_ms() < until) {
		struct timespec ts = {.tv_sec = (time_t)(until / 1000),
		    .tv_nsec = (long)(until % 1000) * 1000000L};
		pthread_cond_timedwait(&l->cv, &l->mu, &ts);
	}
	bool closed = l->closed;
	pthread_mutex_unlock(&l->mu);
	link_unref(l);
	return closed;
}
