/*
 * rpc_close.c - nng_close with a bound on how long its caller waits.
 *
 * Why: libnng 1.5.2 closes sockets on one reaper thread, and some closes
 * never end there: a tls+tcp dialer stuck in a TLS handshake the server
 * never answers (docs/performance.md, the reconnect storm), and a server
 * socket whose pipe teardown waits on an operation that never completes
 * (docs/internals.md, "nng 1.5.2 close that never returns"). Once one
 * is stuck every later close in the process waits behind it. The close
 * runs on a detached thread; the caller waits at most wait_ms. A close
 * that does not end leaves that thread and the socket behind, never the
 * caller.
 */
#define _GNU_SOURCE
#include "rpc_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "clock.h"

/* Closes still running on their threads. */
static _Atomic int pending;

typedef struct closer {
	nng_socket sock;
	_Atomic int refs; /* the closing thread and the waiter */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool closed;
} closer;

static void closer_unref(closer *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static void *closer_main(void *arg)
{
	closer *c = arg;
	nng_close(c->sock);
	atomic_fetch_sub(&pending, 1);
	pthread_mutex_lock(&c->mu);
	c->closed = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	closer_unref(c);
	return NULL;
}

bool cep_rpc_close_pending(void)
{
	return atomic_load(&pending) > 0;
}

bool cep_rpc_close_bounded(nng_socket sock, int wait_ms)
{
	closer *c = wait_ms >= 0 ? calloc(1, sizeof(*c)) : NULL;
	if (c == NULL) { /* asked to wait, or no memory for the thread */
		nng_close(sock);
		return true;
	}
	c->sock = sock;
	atomic_store(&c->refs, 2);
	pthread_mutex_init(&c->mu, NULL);
	cep_clock_cond_init(&c->cv);
	pthread_t th;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	atomic_fetch_add(&pending, 1);
	bool started = pthread_create(&th, &at, closer_main, c) == 0;
	pthread_attr_destroy(&at);
	if (!started) {
		atomic_fetch_sub(&pending, 1);
		atomic_store(&c->refs, 1);
		closer_unref(c);
		nng_close(sock);
		return true;
	}
	int64_t until = cep_clock_mono_ms() + wait_ms;
	pthread_mutex_lock(&c->mu);
	int64_t left;
	while (!c->closed && (left = until - cep_clock_mono_ms()) > 0)
		cep_clock_cond_wait_ms(&c->cv, &c->mu, left);
	bool closed = c->closed;
	pthread_mutex_unlock(&c->mu);
	closer_unref(c);
	return closed;
}
