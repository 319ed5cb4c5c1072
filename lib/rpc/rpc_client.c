/*
 * rpc_client.c - the RPC client: one link (rpc_link.c: an nng req0 socket
 * with one background dialer) at a time, replaced by the watchdog when
 * sends have waited on it for too long with none leaving; every call opens its own context, so calls
 * from many threads are in flight at once. Also the retry helpers
 * (cep_rpc_retryable, backoff).
 *
 * Resends: nng's req protocol would resend a request after
 * NNG_OPT_REQ_RESENDTIME (default 60 s) and, when the pipe it went out on
 * closes, at once on another pipe. We turn that off (NNG_DURATION_INFINITE):
 * a resend is invisible to the caller and duplicates calls that must not run
 * twice or that a server holds on purpose (a long-poll parked for minutes
 * would be re-sent every minute), and a pipe-bound exchange (Challenge/Prove)
 * is meaningless on another pipe. Instead, when the pipe dies the call fails
 * at once with UNAVAILABLE and the caller retries with backoff
 * (cep_rpc_retryable, cep_rpc_backoff_ms), knowing what it retries.
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
#include "clock.h"
#include "util.h"

#define URL_MAX 512
#define WATCHDOG_DEFAULT_MS 5000
#define WATCHDOG_CHECKS 5 /* a waiting send looks this often per bound */
#define WATCHDOG_MIN_CHECK_MS 50
#define WATCHDOG_MAX_SHIFT \
	3                  /* bound up to 8x after links that never connected */
#define CLOSE_WAIT_MS 2000 /* cep_rpc_client_free waits this long for nng */

struct cep_rpc_client {
	char url[URL_MAX];
	nng_tls_config *tls; /* held; NULL for ipc */
	int watchdog_ms;     /* <= 0: off */
	_Atomic uint64_t next_id;
	_Atomic uint64_t redials;
	/* shutdown cancels the operations in flight instead of closing the
	 * socket under them (nng 1.5.2 then leaks the request message):
	 * each call's aio is listed here while it waits */
	pthread_mutex_t mu;
	bool closed; /* cep_rpc_client_shutdown ran */
	struct inflight *calls;
	struct lease *cur; /* the connection calls go out on */
	uint64_t gen;      /* bumped when the watchdog replaces it */
	/* since when a send has been waiting with none leaving (0: none
	 * waits, or one left since), and whether any left on this link.
	 * Not nng's pipe events: in the stall the dead pipe is never
	 * removed, so it would still count as a connection. */
	_Atomic int64_t want_ms;
	_Atomic bool sent;
	_Atomic bool answered; /* a reply came back on this link */
	int64_t bound_ms;      /* the watchdog's bound for this link */
	int streak;            /* links in a row on which nothing left */
};

/* A link and the calls holding a context on it. nng 1.5.2 may use freed
 * memory when one thread closes a context while another closes its
 * socket (a panic in nng_ctx_close, seen in CI), so a link the watchdog
 * replaced is closed by whoever lets go of it last: the watchdog when no
 * call holds it, else the last call to close its context. Calls still
 * waiting on it are cancelled instead, and fail or move on at once, as
 * if the socket had closed under them. */
struct lease {
	cep_rpc_link *link;
	int users;    /* contexts open on it; under the client's lock */
	bool retired; /* replaced: no new operation starts on it */
};

struct inflight {
	nng_aio *aio;
	struct lease *lease; /* the link its context is on; NULL: none yet */
	struct inflight *prev, *next;
};

static uint64_t prng_next(void);

static int lease_new(struct lease **out, const char *url, nng_tls_config *tls,
    cep_err *err)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	int code = cep_rpc_link_new(&(*out)->link, url, tls, err);
	if (code != CEP_OK) {
		free(*out);
		*out = NULL;
	}
	return code;
}

static bool lease_close(struct lease *l, int wait_ms)
{
	bool closed = cep_rpc_link_close(l->link, wait_ms);
	free(l);
	return closed;
}

static int client_tls(cep_rpc_client *c, const cep_rpc_tls *tls, cep_err *err)
{
	if (!cep_rpc_url_is_tls(c->url)) {
		if (cep_rpc_ipc_path(c->url) == NULL)
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "URL \"%s\": "
			    "only ipc:// and tls+tcp:// are supported",
			    c->url);
		return CEP_OK;
	}
	nng_url *u = NULL;
	int rv = nng_url_parse(&u, c->url);
	if (rv != 0)
		return cep_rpc_err_nng(err, rv, c->url);
	int code = cep_rpc_tls_client_config(&c->tls, tls, u->u_hostname, err);
	nng_url_free(u);
	return code;
}

int cep_rpc_client_new_opts(cep_rpc_client **out, const char *url,
    const cep_rpc_tls *tls, const cep_rpc_client_opts *opts, cep_err *err)
{
	*out = NULL;
	if (url == NULL || strlen(url) >= URL_MAX)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "RPC URL missing or longer than %d bytes", URL_MAX - 1);
	cep_rpc_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	snprintf(c->url, sizeof(c->url), "%s", url);
	pthread_mutex_init(&c->mu, NULL);
	int wd = opts != NULL ? opts->watchdog_ms : 0;
	c->watchdog_ms = wd == 0 ? WATCHDOG_DEFAULT_MS : wd < 0 ? 0 : wd;
	c->bound_ms = c->watchdog_ms;
	/* Random start: call ids of a restarted client do not repeat. */
	uint64_t id = 0;
	cep_util_random(&id, sizeof(id), NULL);
	atomic_init(&c->next_id, (id >> 1) | 1);
	if (client_tls(c, tls, err) != CEP_OK ||
	    lease_new(&c->cur, c->url, c->tls, err) != CEP_OK) {
		cep_rpc_client_free(c);
		return err ? err->code : CEP_INTERNAL;
	}
	*out = c;
	return CEP_OK;
}

int cep_rpc_client_new(cep_rpc_client **out, const char *url,
    const cep_rpc_tls *tls, cep_err *err)
{
	return cep_rpc_client_new_opts(out, url, tls, NULL, err);
}

void cep_rpc_client_shutdown(cep_rpc_client *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->closed = true;
	for (struct inflight *n = c->calls; n != NULL; n = n->next)
		nng_aio_cancel(n->aio); /* the call returns NNG_ECANCELED */
	pthread_mutex_unlock(&c->mu);
}

void cep_rpc_client_free(cep_rpc_client *c)
{
	if (c == NULL)
		return;
	cep_rpc_client_shutdown(c);
	if (c->cur != NULL && !lease_close(c->cur, CLOSE_WAIT_MS))
		cep_log_warn(NULL,
		    "rpc client %s: nng has not closed the "
		    "socket (waited up to %d ms, or not at all behind another "
		    "close still running); left to a background thread",
		    c->url, CLOSE_WAIT_MS);
	if (c->tls != NULL)
		nng_tls_config_free(c->tls);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

uint64_t cep_rpc_client_redials(cep_rpc_client *c)
{
	return c != NULL ? atomic_load(&c->redials) : 0;
}

/* The watchdog, run by a call whose send found no connection for a
 * while: when sends have been waiting on the link of generation gen for
 * bound_ms with none leaving (since it was made or the last one left), a
 * new link replaces it and the old one is closed in the background. Its
 * unsent calls move to the new link (call_send); nothing had left on it.
 * The bound grows after links that never connected, with jitter, so a
 * relay slow to accept a storm is not re-dialed by every runner at once. */
static void watchdog(cep_rpc_client *c, uint64_t gen, bool force)
{
	pthread_mutex_lock(&c->mu);
	int64_t want = atomic_load(&c->want_ms);
	int64_t idle = want == 0 ? 0 : cep_clock_mono_ms() - want;
	if (c->closed || c->gen != gen || (!force && idle < c->bound_ms)) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	struct lease *old = c->cur, *nl = NULL;
	cep_err err = {0};
	if (lease_new(&nl, c->url, c->tls, &err) != CEP_OK) {
		pthread_mutex_unlock(&c->mu);
		cep_log_warn(NULL,
		    "rpc client %s: no connection for %lld ms and "
		    "no new socket: %s",
		    c->url, (long long)idle, err.msg);
		return;
	}
	c->streak = atomic_load(&c->sent) ? 0 : c->streak + 1;
	int shift = c->streak < WATCHDOG_MAX_SHIFT ? c->streak :
	                                             WATCHDOG_MAX_SHIFT;
	int64_t b = (int64_t)c->watchdog_ms << shift;
	c->bound_ms = b + (int64_t)(prng_next() % (uint64_t)(b / 2 + 1));
	int64_t bound = c->bound_ms;
	c->cur = nl;
	c->gen++;
	atomic_store(&c->sent, false);
	atomic_store(&c->answered, false);
	atomic_store(&c->want_ms, cep_clock_mono_ms());
	old->retired = true;
	for (struct inflight *n = c->calls; n != NULL; n = n->next)
		if (n->lease == old)
			nng_aio_cancel(n->aio); /* it returns NNG_ECANCELED */
	bool unused = old->users == 0;
	pthread_mutex_unlock(&c->mu);
	atomic_fetch_add(&c->redials, 1);
	cep_log_info(NULL,
	    "rpc client %s: %s: dialing again on a new socket "
	    "(next bound %lld ms)",
	    c->url,
	    force ? "a call sent on this "
	            "connection, none ever answered" :
	            "no connection",
	    (long long)bound);
	if (unused)
		(void)lease_close(old, 0);
}

/* The request as one nng message, refused locally when too large. */
static int call_frame(nng_msg **msg, const char *method, uint64_t id,
    const ProtobufCMessage *req, int timeout_ms, cep_err *err)
{
	Cep__V1__Envelope env = CEP__V1__ENVELOPE__INIT;
	env.method = (char *)method;
	env.call_id = id;
	env.timeout_ms = (uint32_t)timeout_ms;
	if (cep_rpc_pack_body(req, &env.body, "request", err) != CEP_OK)
		return cep_err_wrap(err, "%s", method);
	int code = cep_rpc_envelope_msg(msg, &env, err);
	free(env.body.data);
	return code == CEP_OK ? CEP_OK : cep_err_wrap(err, "%s", method);
}

/* One operation on the call's context, waited for. It is started under
 * the client's lock, so a shutdown or the watchdog either sees it (and
 * cancels it) or happened before (and the operation is not started). */
static int ctx_op(cep_rpc_client *c, struct inflight *n, nng_ctx ctx, bool send,
    int64_t ms)
{
	nng_aio_set_timeout(n->aio, (nng_duration)(ms > 0 ? ms : 1));
	pthread_mutex_lock(&c->mu);
	if (c->closed || n->lease->retired) {
		int rv = c->closed ? NNG_ECLOSED : NNG_ECANCELED;
		pthread_mutex_unlock(&c->mu);
		return rv;
	}
	if (send)
		nng_ctx_send(ctx, n->aio);
	else
		nng_ctx_recv(ctx, n->aio);
	pthread_mutex_unlock(&c->mu);
	nng_aio_wait(n->aio);
	return nng_aio_result(n->aio);
}

static void inflight_add(cep_rpc_client *c, struct inflight *n)
{
	pthread_mutex_lock(&c->mu);
	n->prev = NULL;
	n->next = c->calls;
	if (c->calls != NULL)
		c->calls->prev = n;
	c->calls = n;
	pthread_mutex_unlock(&c->mu);
}

static void inflight_del(cep_rpc_client *c, struct inflight *n)
{
	pthread_mutex_lock(&c->mu);
	if (n->prev != NULL)
		n->prev->next = n->next;
	else
		c->calls = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	pthread_mutex_unlock(&c->mu);
}

/* The call holds the current link (false: the client is shut down). */
static bool call_hold(cep_rpc_client *c, struct inflight *n, uint64_t *gen)
{
	pthread_mutex_lock(&c->mu);
	bool open = !c->closed;
	if (open) {
		n->lease = c->cur;
		n->lease->users++;
		*gen = c->gen;
	}
	pthread_mutex_unlock(&c->mu);
	return open;
}

/* The call lets go of its link, its context closed first; the last to
 * let go of a replaced link closes it. */
static void call_release(cep_rpc_client *c, struct inflight *n)
{
	pthread_mutex_lock(&c->mu);
	struct lease *l = n->lease;
	n->lease = NULL;
	bool last = --l->users == 0 && l->retired;
	pthread_mutex_unlock(&c->mu);
	if (last)
		(void)lease_close(l, 0);
}

static bool link_replaced(cep_rpc_client *c, uint64_t gen)
{
	pthread_mutex_lock(&c->mu);
	bool r = !c->closed && c->gen != gen;
	pthread_mutex_unlock(&c->mu);
	return r;
}

/* Sends the call's message on a new context of the current link (*ctx
 * left open and the link held on success). While there is no pipe the
 * send is waited for in slices, and between slices the watchdog may
 * replace a stuck link: a send that timed out or was cancelled with its
 * link never left this process, so it is sent again on the new one,
 * neither lost nor duplicated. 0, or nng's error (NNG_ETIMEDOUT at the
 * deadline). */
static int call_send(cep_rpc_client *c, struct inflight *n, nng_ctx *ctx,
    uint64_t *gen, int64_t deadline)
{
	int64_t t0 = cep_clock_mono_ms(),
	        check = c->watchdog_ms / WATCHDOG_CHECKS;
	if (check < WATCHDOG_MIN_CHECK_MS)
		check = WATCHDOG_MIN_CHECK_MS;
	for (;;) {
		if (!call_hold(c, n, gen))
			return NNG_ECLOSED;
		int64_t left = deadline - cep_clock_mono_ms();
		if (left <= 0) {
			call_release(c, n);
			return NNG_ETIMEDOUT;
		}
		int rv = nng_ctx_open(ctx, cep_rpc_link_socket(n->lease->link));
		if (rv == 0) {
			rv = ctx_op(c, n, *ctx, true,
			    c->watchdog_ms > 0 && left > check ? check : left);
			if (rv == 0) {
				atomic_store(&c->want_ms, 0);
				atomic_store(&c->sent, true);
				return 0;
			}
			nng_ctx_close(*ctx);
		}
		call_release(c, n);
		if (rv == NNG_ECANCELED && link_replaced(c, *gen))
			continue; /* the watchdog moved it to a new link */
		if (c->watchdog_ms <= 0 ||
		    (rv != NNG_ETIMEDOUT && rv != NNG_ECLOSED))
			return rv;
		if (rv == NNG_ECLOSED && !link_replaced(c, *gen))
			return rv;
		int64_t none = 0;
		atomic_compare_exchange_strong(&c->want_ms, &none, t0);
		watchdog(c, *gen, false);
	}
}

/* A sent call that got no reply: its status. */
static int recv_failed(cep_rpc_client *c, const char *method, int rv,
    uint64_t gen, int timeout_ms, cep_err *err)
{
	/* A link that took calls but never answered one: nng 1.5.2's
	 * listener can leave a negotiated pipe unstarted (relay side,
	 * docs/performance.md), so nothing will ever come back on it. */
	if (rv == NNG_ETIMEDOUT && c->watchdog_ms > 0 &&
	    !atomic_load(&c->answered))
		watchdog(c, gen, true);
	/* the watchdog replaced the link under the call (cancelled it), or
	 * the pipe died: as a connection lost */
	if (rv == NNG_ECONNRESET ||
	    ((rv == NNG_ECLOSED || rv == NNG_ECANCELED) &&
	        link_replaced(c, gen)))
		return cep_err_set(err, CEP_UNAVAILABLE,
		    "%s: connection to %s lost during the call", method,
		    c->url);
	if (rv == NNG_ETIMEDOUT)
		return cep_err_set(err, CEP_DEADLINE_EXCEEDED,
		    "%s: no answer from %s within %d ms", method, c->url,
		    timeout_ms);
	return cep_rpc_err_nng(err, rv, method);
}

/* Sends and waits for the reply; *rep owned by the caller on success. */
static int call_exchange(cep_rpc_client *c, const char *method, nng_msg *msg,
    int timeout_ms, nng_msg **rep, cep_err *err)
{
	nng_ctx ctx;
	nng_aio *aio = NULL;
	uint64_t gen = 0;
	int rv;
	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
		nng_msg_free(msg);
		return cep_rpc_err_nng(err, rv, method);
	}
	int64_t deadline = cep_clock_mono_ms() + timeout_ms;
	nng_aio_set_msg(aio, msg);
	struct inflight node = {.aio = aio};
	inflight_add(c, &node);
	int code = CEP_OK;
	if ((rv = call_send(c, &node, &ctx, &gen, deadline)) != 0) {
		nng_msg_free(nng_aio_get_msg(aio));
		inflight_del(c, &node);
		nng_aio_free(aio);
		/* never left this process: no connection to the server */
		return rv == NNG_ETIMEDOUT ?
		    cep_err_set(err, CEP_UNAVAILABLE,
		        "%s: no connection to %s within %d ms", method, c->url,
		        timeout_ms) :
		    cep_rpc_err_nng(err, rv, method);
	}
	if ((rv = ctx_op(c, &node, ctx, false,
	         deadline - cep_clock_mono_ms())) != 0) {
		code = recv_failed(c, method, rv, gen, timeout_ms, err);
	} else {
		atomic_store(&c->answered, true);
		*rep = nng_aio_get_msg(aio);
	}
	nng_ctx_close(ctx);
	call_release(c, &node);
	inflight_del(c, &node);
	nng_aio_free(aio);
	return code;
}

int cep_rpc_invoke(cep_rpc_client *c, const char *method,
    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
    ProtobufCMessage **reply, int timeout_ms, cep_err *err)
{
	if (reply != NULL)
		*reply = NULL;
	if (c == NULL || method == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "cep_rpc_invoke: no client or method");
	if (timeout_ms <= 0)
		timeout_ms = CEP_RPC_DEFAULT_TIMEOUT_MS;
	uint64_t id = atomic_fetch_add(&c->next_id, 1);
	nng_msg *msg = NULL, *rep = NULL;
	int code = call_frame(&msg, method, id, req, timeout_ms, err);
	if (code != CEP_OK)
		return code;
	if ((code = call_exchange(c, method, msg, timeout_ms, &rep, err)) !=
	    CEP_OK)
		return code;
	code = cep_rpc_reply_unpack(nng_msg_body(rep), nng_msg_len(rep), id,
	    method, reply_desc, reply, err);
	nng_msg_free(rep);
	if (code == CEP_OK)
		cep_err_clear(err);
	return code;
}

/* -------------------------------------------------------------- retries */

bool cep_rpc_retryable(int code)
{
	return code == CEP_UNAVAILABLE || code == CEP_DEADLINE_EXCEEDED ||
	    code == CEP_RESOURCE_EXHAUSTED || code == CEP_ABORTED;
}

/* xorshift64*: jitter needs no cryptographic strength, only a seed per
 * thread so that clients restarted together do not retry together. */
static uint64_t prng_next(void)
{
	static _Thread_local uint64_t state;
	if (state == 0) {
		cep_util_random(&state, sizeof(state), NULL);
		state |= 1;
	}
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return state * 0x2545F4914F6CDD1DULL;
}

int cep_rpc_backoff_ms(int attempt, int base_ms, int cap_ms)
{
	if (base_ms <= 0)
		base_ms = 1;
	if (cap_ms < base_ms)
		cap_ms = base_ms;
	if (attempt < 0)
		attempt = 0;
	int64_t hi = base_ms;
	for (int i = 0; i < attempt && hi < cap_ms; i++)
		hi *= 2;
	if (hi > cap_ms)
		hi = cap_ms;
	uint64_t span = (uint64_t)(hi - base_ms) + 1;
	return base_ms + (int)(prng_next() % span);
}
