/*
 * rpc_guard.c - keeps a server's ipc listeners accepting.
 *
 * nng 1.5.2 (Debian 12) has a bug in its ipc transport: when a peer closes
 * its connection during the 8-byte SP handshake, the transport hands
 * NNG_ECLOSED to the socket core's accept, which reads it as "this listener
 * was closed" and never accepts again. Later nng releases map the error to
 * NNG_ECONNSHUT. Anyone who may open our socket files could thus stop the
 * delegate's admin API with one short-lived connection.
 *
 * The guard proves twice a second that each ipc listener still accepts: a
 * fresh req socket dials it and sends the built-in ping (answered by the
 * server before its method table). A listener that does not answer within
 * two seconds is closed and created again on the same URL, with a warning
 * in the log. TLS listeners do not have this bug (see the rpc tests);
 * they have another, which the gate watches for (cep_rpc_gate_on_wedge).
 */
#define _GNU_SOURCE
#include "rpc_int.h"

#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "err.h"

#define GUARD_MAX 8
#define GUARD_PERIOD_MS 500
#define GUARD_TIMEOUT_MS 1500

struct cep_rpc_guard {
	nng_socket sock;
	char name[64];
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	size_t n;
	struct {
		char url[512];
		nng_listener l;
	} w[GUARD_MAX];
	_Atomic uint64_t restarts;
};

/* One round trip through a new connection: true if the listener answers. */
static bool ping(const char *url)
{
	nng_socket req;
	if (nng_req0_open(&req) != 0)
		return true; /* cannot test: do not restart on our own failure */
	nng_socket_set_ms(req, NNG_OPT_SENDTIMEO, GUARD_TIMEOUT_MS);
	nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, GUARD_TIMEOUT_MS);
	nng_socket_set_ms(req, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	bool ok = false;
	Cep__V1__Envelope env = CEP__V1__ENVELOPE__INIT;
	env.method = (char *)CEP_RPC_PING_METHOD;
	env.call_id = 1;
	env.timeout_ms = GUARD_TIMEOUT_MS;
	nng_msg *m = NULL;
	if (nng_dial(req, url, NULL, 0) == 0 &&
	    cep_rpc_envelope_msg(&m, &env, NULL) == CEP_OK) {
		if (nng_sendmsg(req, m, 0) != 0) {
			nng_msg_free(m);
		} else if (nng_recvmsg(req, &m, 0) == 0) {
			ok = true;
			nng_msg_free(m);
		}
	}
	nng_close(req);
	return ok;
}

static void restart(cep_rpc_guard *g, size_t i)
{
	cep_log_warn(NULL,
	    "rpc %s: ipc listener %s stopped accepting (nng 1.5 "
	    "ipc handshake bug); re-creating it",
	    g->name, g->w[i].url);
	nng_listener_close(g->w[i].l);
	cep_err err;
	nng_listener l;
	if (cep_rpc_listen(g->sock, g->w[i].url, NULL, &l, &err) != CEP_OK) {
		cep_log_error(NULL, "rpc %s: re-creating %s: %s", g->name,
		    g->w[i].url, err.msg);
		return;
	}
	g->w[i].l = l;
	atomic_fetch_add(&g->restarts, 1);
}

static void *guard_main(void *arg)
{
	cep_rpc_guard *g = arg;
	pthread_mutex_lock(&g->mu);
	while (!g->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)GUARD_PERIOD_MS * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&g->cv, &g->mu, &ts);
		for (size_t i = 0; i < g->n && !g->stop; i++) {
			char url[512];
			snprintf(url, sizeof(url), "%s", g->w[i].url);
			pthread_mutex_unlock(&g->mu);
			bool ok = ping(url);
			pthread_mutex_lock(&g->mu);
			/* a second try first: a busy server may be slow once */
			if (!ok && !g->stop) {
				pthread_mutex_unlock(&g->mu);
				ok = ping(url);
				pthread_mutex_lock(&g->mu);
			}
			if (!ok && !g->stop)
				restart(g, i);
		}
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

int cep_rpc_guard_new(cep_rpc_guard **out, nng_socket sock, const char *name,
    cep_err *err)
{
	cep_rpc_guard *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	g->sock = sock;
	snprintf(g->name, sizeof(g->name), "%s", name);
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	if (pthread_create(&g->thread, NULL, guard_main, g) != 0) {
		pthread_cond_destroy(&g->cv);
		pthread_mutex_destroy(&g->mu);
		free(g);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "cannot start the ipc listener guard");
	}
	*out = g;
	return CEP_OK;
}

int cep_rpc_guard_watch(cep_rpc_guard *g, const char *url, nng_listener l,
    cep_err *err)
{
	if (cep_rpc_ipc_path(url) == NULL)
		return CEP_OK;
	pthread_mutex_lock(&g->mu);
	if (g->n == GUARD_MAX || strlen(url) >= sizeof(g->w[0].url)) {
		pthread_mutex_unlock(&g->mu);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "too many ipc listeners to guard");
	}
	snprintf(g->w[g->n].url, sizeof(g->w[0].url), "%s", url);
	g->w[g->n++].l = l;
	pthread_mutex_unlock(&g->mu);
	return CEP_OK;
}

uint64_t cep_rpc_guard_restarts(cep_rpc_guard *g)
{
	return g ? atomic_load(&g->restarts) : 0;
}

void cep_rpc_guard_free(cep_rpc_guard *g)
{
	if (g == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	g->stop = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	pthread_join(g->thread, NULL);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
}
