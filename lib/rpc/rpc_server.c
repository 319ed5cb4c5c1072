/*
 * rpc_server.c - the RPC server: one nng rep0 socket, a growing pool of
 * contexts that receive, the worker threads that run handlers, and the
 * table of pipes. (Decoding a frame is rpc_wire.c; listeners, TLS and what
 * a pipe says about its peer are rpc_tls.c.)
 *
 * Life of a call: a context's aio completes a receive on an nng thread. The
 * frame is decoded there (bounded work: frames are capped); a bad frame is
 * answered from that thread at once, a good one becomes a cep_rpc_call
 * queued for a worker, so handlers may block. The handler replies now or
 * later from any thread (a parked long-poll); the reply is sent on the
 * call's context and, when the send completes, the context receives again.
 *
 * Held calls hold contexts, so the pool grows: whenever fewer than IDLE_MIN
 * contexts are receiving, another is opened, up to max_inflight. Contexts
 * are only closed with the server (closing one from its own callback would
 * make nng_aio_free wait for itself), so the pool keeps its high-water mark.
 *
 * Size limits: NNG_OPT_RECVMAXSZ is 2 * CEP_RPC_MAX_MSG so a moderately
 * oversized frame still reaches us and is answered RESOURCE_EXHAUSTED; a
 * frame above that is dropped by nng, which closes the pipe (the client sees
 * its connection reset).
 *
 * Pipes: ADD_POST/REM_POST notifications keep a table of (pipe, verified,
 * peer); each call carries a snapshot of its pipe's entry taken at receipt.
 *
 * Limits (cep_rpc_limits, tls+tcp only): the connection limits are the
 * gate's (rpc_gate.c), which learns from the pipe table which
 * connections are negotiated; the call rate is a token bucket in each
 * pipe's entry, taken in on_frame before a call is queued.
 *
 * Virtual calls (cep_rpc_server_dispatch): frames handed in by the caller
 * - the relay's HTTPS tunnel - are decoded the same way and run on the
 * same workers; such a call has no context (rc NULL) and its reply frame
 * goes to the caller's out function instead of a send.
 *
 * Deadline of a call: receipt (monotonic) + the envelope's timeout_ms
 * (0 = 30 s), capped at 5 minutes. The server does not enforce it: a
 * long-poll handler answers before it; any reply after it is simply
 * discarded by the client, whose own timeout ran out.
 */
#define _GNU_SOURCE
#include "rpc_int.h"

#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "clock.h"

#define IDLE_MIN 4 /* receivers kept waiting */
#define INITIAL_CTX 8
#define SEND_TIMEOUT_MS 30000 /* a peer that does not read loses its reply */
#define DRAIN_MS 1000         /* at free: time for last replies to go out */
#define CLOSE_WAIT_MS 10000   /* at free: nng_close's bound (rpc_close.c) */
#define LINGER_MS 200 /* at free: after the last reply left for its pipe */
#define NAME_MAX_LEN 64

typedef struct rpc_ctx {
	cep_rpc_server *s;
	nng_ctx ctx;
	nng_aio *aio;
	bool sending; /* which operation the aio carries */
	struct rpc_ctx *next;
} rpc_ctx;

struct cep_rpc_call {
	cep_rpc_server *s;
	rpc_ctx *rc;
	const cep_rpc_method *m;
	ProtobufCMessage *req;
	uint64_t call_id;
	int64_t deadline;
	cep_rpc_pipe_info pipe;
	cep_rpc_out_fn out; /* virtual calls: where the reply goes */
	void *out_arg;
	cep_rpc_call *qnext;       /* worker queue */
	cep_rpc_call *prev, *next; /* calls not answered yet */
};

struct cep_rpc_server {
	nng_socket sock;
	bool sock_open;
	const cep_rpc_method *table;
	size_t n;
	void *arg;
	char name[NAME_MAX_LEN];
	cep_rpc_pipe_cb pipe_cb;
	void *pipe_cb_arg;
	cep_rpc_done_cb done_cb;
	int max_ctx;

	pthread_mutex_t mtx;
	pthread_cond_t work_cv;  /* workers wait for calls */
	pthread_cond_t drain_cv; /* free waits for sends */
	rpc_ctx *ctxs;
	int nctx, idle, sending;
	int64_t last_sent; /* mono ms: a reply last went to a pipe */
	cep_rpc_call *qhead, *qtail;
	cep_rpc_call *live;
	bool closing;
	pthread_t *workers;
	int nworkers;
	cep_rpc_pipe_info *pipes;
	size_t npipes, cap_pipes;
	nng_listener tcp_listener;
	bool has_tcp;
	char tcp_url[300];       /* its URL with the bound port */
	nng_tls_config *tcp_cfg; /* held, for re-creating it */
	cep_rpc_guard *guard;    /* ipc listeners (see rpc_int.h) */
	cep_rpc_limits limits;
	cep_rpc_gate *gate; /* the tcp listener's limits (rpc_gate.c) */

	_Atomic uint64_t n_calls, n_ok, n_failed, n_malformed, n_oversized,
	    n_unknown, n_restarts;
	struct cep_rpc_server *left_next; /* in left_behind */
};

/* Servers whose socket nng did not close within CLOSE_WAIT_MS: nng may
 * still run their callbacks, so they are never freed; listed, so a leak
 * checker sees them held. */
static pthread_mutex_t left_mu = PTHREAD_MUTEX_INITIALIZER;
static cep_rpc_server *left_behind;

/* ---------------------------------------------------------------- pipes */

static cep_rpc_pipe_info *pipe_find(cep_rpc_server *s, uint32_t id)
{
	for (size_t i = 0; i < s->npipes; i++)
		if (s->pipes[i].id == id)
			return &s->pipes[i];
	return NULL;
}

static void pipe_added(cep_rpc_server *s, const cep_rpc_pipe_info *pi)
{
	pthread_mutex_lock(&s->mtx);
	if (s->npipes == s->cap_pipes) {
		size_t cap = s->cap_pipes ? s->cap_pipes * 2 : 16;
		cep_rpc_pipe_info *np = realloc(s->pipes, cap * sizeof(*np));
		if (np == NULL) {
			pthread_mutex_unlock(&s->mtx);
			return; /* calls on it are still served: looked up live */
		}
		s->pipes = np;
		s->cap_pipes = cap;
	}
	s->pipes[s->npipes++] = *pi;
	pthread_mutex_unlock(&s->mtx);
}

static bool pipe_removed(cep_rpc_server *s, uint32_t id, cep_rpc_pipe_info *out)
{
	pthread_mutex_lock(&s->mtx);
	cep_rpc_pipe_info *pi = pipe_find(s, id);
	if (pi != NULL) {
		cep_rpc_gate_unbind(s->gate, pi);
		*out = *pi;
		*pi = s->pipes[--s->npipes];
	}
	pthread_mutex_unlock(&s->mtx);
	return pi != NULL;
}

/* Runs on an nng thread; the app's pipe_cb must not block either. */
static void pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	cep_rpc_server *s = arg;
	cep_rpc_pipe_info pi;
	if (ev == NNG_PIPE_EV_ADD_POST) {
		cep_rpc_pipe_query(p, &pi);
		pipe_added(s, &pi);
	} else if (ev != NNG_PIPE_EV_REM_POST ||
	    !pipe_removed(s, (uint32_t)nng_pipe_id(p), &pi)) {
		return;
	}
	if (s->pipe_cb != NULL)
		s->pipe_cb((cep_pipe_id){pi.id}, ev == NNG_PIPE_EV_ADD_POST,
		    pi.verified, pi.peer, s->pipe_cb_arg);
}

/* For the gate: the peers of the pipes now (all are negotiated). */
static size_t pipe_peers(char (*out)[64], size_t max, void *arg)
{
	cep_rpc_server *s = arg;
	pthread_mutex_lock(&s->mtx);
	size_t n = s->npipes;
	for (size_t i = 0; i < n && i < max; i++)
		memcpy(out[i], s->pipes[i].peer, sizeof(out[i]));
	pthread_mutex_unlock(&s->mtx);
	return n;
}

void cep_rpc_call_bind_identity(cep_rpc_call *c, const char *identity)
{
	cep_rpc_server *s = c->s;
	pthread_mutex_lock(&s->mtx);
	cep_rpc_pipe_info *pi = pipe_find(s, c->pipe.id);
	if (pi != NULL) /* (a virtual pipe is in no table: not limited) */
		cep_rpc_gate_bind(s->gate, pi, identity);
	pthread_mutex_unlock(&s->mtx);
}

/* The pipe's entry as a call carries it, and a token of its call rate
 * (false: over the rate). The ADD_POST notification may still be running
 * when the pipe's first message arrives: an unknown pipe is asked
 * directly (and passes). */
static bool pipe_snapshot(cep_rpc_server *s, nng_pipe p, cep_rpc_pipe_info *out)
{
	int64_t now = cep_clock_mono_ms();
	pthread_mutex_lock(&s->mtx);
	cep_rpc_pipe_info *pi = pipe_find(s, (uint32_t)nng_pipe_id(p));
	bool ok = pi == NULL || cep_rpc_gate_take(s->gate, pi, now);
	if (pi != NULL)
		*out = *pi;
	/* counted and logged (at most once a peer an interval) under the
	 * lock: the gate is let go under it when the server is freed */
	if (!ok)
		cep_rpc_gate_note(s->gate, CEP_RPC_LIMIT_CALL_RATE, pi->peer);
	pthread_mutex_unlock(&s->mtx);
	if (pi == NULL)
		cep_rpc_pipe_query(p, out);
	return ok;
}

/* ------------------------------------------------------------- contexts */

static void ctx_cb(void *arg);

static void ctx_recv(rpc_ctx *rc)
{
	rc->sending = false;
	nng_aio_set_timeout(rc->aio, NNG_DURATION_INFINITE);
	nng_ctx_recv(rc->ctx, rc->aio);
}

/* Opens one context; the caller has counted it in nctx and idle. */
static void ctx_open_counted(cep_rpc_server *s)
{
	rpc_ctx *rc = calloc(1, sizeof(*rc));
	if (rc != NULL && nng_aio_alloc(&rc->aio, ctx_cb, rc) == 0 &&
	    nng_ctx_open(&rc->ctx, s->sock) == 0) {
		rc->s = s;
		pthread_mutex_lock(&s->mtx);
		rc->next = s->ctxs;
		s->ctxs = rc;
		pthread_mutex_unlock(&s->mtx);
		ctx_recv(rc);
		return;
	}
	if (rc != NULL && rc->aio != NULL)
		nng_aio_free(rc->aio);
	free(rc);
	pthread_mutex_lock(&s->mtx);
	s->nctx--;
	s->idle--;
	pthread_mutex_unlock(&s->mtx);
	cep_log_warn(NULL, "rpc %s: cannot open another context", s->name);
}

/* With s->mtx held: how many contexts to open now (already counted). */
static int ctx_need(cep_rpc_server *s)
{
	int k = 0;
	while (!s->closing && s->idle < IDLE_MIN && s->nctx < s->max_ctx) {
		s->nctx++;
		s->idle++;
		k++;
	}
	return k;
}

static void ctx_send(rpc_ctx *rc, nng_msg *msg)
{
	cep_rpc_server *s = rc->s;
	pthread_mutex_lock(&s->mtx);
	s->sending++;
	pthread_mutex_unlock(&s->mtx);
	rc->sending = true;
	nng_aio_set_msg(rc->aio, msg);
	nng_aio_set_timeout(rc->aio, SEND_TIMEOUT_MS);
	nng_ctx_send(rc->ctx, rc->aio);
}

/* Frames and sends a reply; if even that fails (memory), the request is
 * dropped and the context receives again: the caller times out. */
static void ctx_reply(rpc_ctx *rc, uint64_t call_id, int code,
    const char *error, ProtobufCBinaryData body, bool from_handler)
{
	Cep__V1__Envelope env = CEP__V1__ENVELOPE__INIT;
	env.call_id = call_id;
	env.code = code;
	env.error = (char *)(error ? error : "");
	env.body = body;
	nng_msg *msg = NULL;
	cep_err err;
	if (cep_rpc_envelope_msg(&msg, &env, &err) != CEP_OK &&
	    code == CEP_OK) {
		/* the reply is too large: say so instead */
		env.code = err.code;
		env.error = err.msg;
		env.body = (ProtobufCBinaryData){0, NULL};
		cep_rpc_envelope_msg(&msg, &env, NULL);
	}
	if (from_handler)
		atomic_fetch_add(env.code == CEP_OK ? &rc->s->n_ok :
		                                      &rc->s->n_failed,
		    1);
	if (msg == NULL) {
		pthread_mutex_lock(&rc->s->mtx);
		rc->s->idle++;
		pthread_mutex_unlock(&rc->s->mtx);
		ctx_recv(rc);
		return;
	}
	ctx_send(rc, msg);
}

static void reply_status(rpc_ctx *rc, uint64_t call_id, int code,
    const char *error)
{
	ctx_reply(rc, call_id, code, error, (ProtobufCBinaryData){0, NULL},
	    false);
}

/* A call for frame f (its body moved into the call), or NULL. */
static cep_rpc_call *call_new(cep_rpc_server *s, cep_rpc_frame *f)
{
	cep_rpc_call *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		cep_rpc_frame_clear(f);
		return NULL;
	}
	int64_t t = f->timeout_ms ? f->timeout_ms : CEP_RPC_DEFAULT_TIMEOUT_MS;
	if (t > CEP_RPC_MAX_TIMEOUT_MS)
		t = CEP_RPC_MAX_TIMEOUT_MS;
	*c = (cep_rpc_call){.s = s,
	    .m = f->method,
	    .req = f->body,
	    .call_id = f->call_id,
	    .deadline = cep_clock_mono_ms() + t};
	f->body = NULL;
	return c;
}

/* Queues c for a worker; false (c untouched) when the server closes. */
static bool call_enqueue(cep_rpc_server *s, cep_rpc_call *c)
{
	pthread_mutex_lock(&s->mtx);
	if (s->closing) {
		pthread_mutex_unlock(&s->mtx);
		return false;
	}
	c->next = s->live;
	if (s->live != NULL)
		s->live->prev = c;
	s->live = c;
	if (s->qtail != NULL)
		s->qtail->qnext = c;
	else
		s->qhead = c;
	s->qtail = c;
	pthread_cond_signal(&s->work_cv);
	int k = c->rc != NULL ? ctx_need(s) : 0;
	pthread_mutex_unlock(&s->mtx);
	while (k-- > 0)
		ctx_open_counted(s);
	return true;
}

static void dispatch(rpc_ctx *rc, cep_rpc_frame *f, const cep_rpc_pipe_info *pi)
{
	cep_rpc_server *s = rc->s;
	cep_rpc_call *c = call_new(s, f);
	if (c == NULL) {
		reply_status(rc, f->call_id, CEP_RESOURCE_EXHAUSTED,
		    "server out of memory");
		return;
	}
	c->rc = rc;
	c->pipe = *pi;
	if (!call_enqueue(s, c)) {
		protobuf_c_message_free_unpacked(c->req, NULL);
		free(c);
		reply_status(rc, f->call_id, CEP_UNAVAILABLE,
		    "server shutting down");
	}
}

static void on_frame(rpc_ctx *rc, nng_msg *msg)
{
	cep_rpc_server *s = rc->s;
	size_t len = nng_msg_len(msg);
	nng_pipe p = nng_msg_get_pipe(msg);
	atomic_fetch_add(&s->n_calls, 1);
	cep_rpc_frame f;
	cep_rpc_decode_frame(s->table, s->n, nng_msg_body(msg), len, &f);
	nng_msg_free(msg);
	if (f.code == CEP_OK && f.method == &cep_rpc_ping_method) {
		atomic_fetch_sub(&s->n_calls,
		    1); /* the guard's, not a peer's */
		reply_status(rc, f.call_id, CEP_OK, "");
		return;
	}
	cep_rpc_pipe_info pi;
	if (f.code == CEP_OK && !pipe_snapshot(s, p, &pi)) {
		cep_rpc_frame_clear(&f);
		atomic_fetch_add(&s->n_failed, 1);
		reply_status(rc, f.call_id, CEP_RESOURCE_EXHAUSTED,
		    "rate limited: over the calls per second of one run "
		    "identity (of one connection before Prove)");
		return;
	}
	if (f.code == CEP_OK) {
		dispatch(rc, &f, &pi);
		return;
	}
	if (f.code == CEP_RESOURCE_EXHAUSTED)
		atomic_fetch_add(&s->n_oversized, 1);
	else if (f.code == CEP_UNIMPLEMENTED)
		atomic_fetch_add(&s->n_unknown, 1);
	else
		atomic_fetch_add(&s->n_malformed, 1);
	cep_log_debug(NULL, "rpc %s: pipe %d: %s", s->name, nng_pipe_id(p),
	    f.error);
	reply_status(rc, f.call_id, f.code, f.error);
}

static void ctx_cb(void *arg)
{
	rpc_ctx *rc = arg;
	cep_rpc_server *s = rc->s;
	int rv = nng_aio_result(rc->aio);
	pthread_mutex_lock(&s->mtx);
	if (rc->sending) {
		s->last_sent = cep_clock_mono_ms();
		if (--s->sending == 0)
			pthread_cond_broadcast(&s->drain_cv);
		if (rv != NNG_ECLOSED)
			s->idle++;
	} else {
		s->idle--;
	}
	pthread_mutex_unlock(&s->mtx);
	if (rc->sending) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(rc->aio));
			nng_aio_set_msg(rc->aio, NULL);
		}
		if (rv != NNG_ECLOSED)
			ctx_recv(rc);
		return;
	}
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return; /* the server is closing */
	if (rv != 0) {
		cep_log_warn(NULL, "rpc %s: receive: %s", s->name,
		    nng_strerror(rv));
		pthread_mutex_lock(&s->mtx);
		s->idle++;
		pthread_mutex_unlock(&s->mtx);
		ctx_recv(rc);
		return;
	}
	nng_msg *msg = nng_aio_get_msg(rc->aio);
	nng_aio_set_msg(rc->aio, NULL);
	on_frame(rc, msg);
}

/* -------------------------------------------------------------- workers */

static void *worker_main(void *arg)
{
	cep_rpc_server *s = arg;
	pthread_mutex_lock(&s->mtx);
	for (;;) {
		while (s->qhead == NULL && !s->closing)
			pthread_cond_wait(&s->work_cv, &s->mtx);
		cep_rpc_call *c = s->qhead;
		if (c == NULL)
			break;
		if ((s->qhead = c->qnext) == NULL)
			s->qtail = NULL;
		pthread_mutex_unlock(&s->mtx);
		if (c->m->fn != NULL)
			c->m->fn(c, s->arg);
		else
			cep_rpc_call_fail(c, CEP_UNIMPLEMENTED,
			    "%s has no handler", c->m->name);
		pthread_mutex_lock(&s->mtx);
	}
	pthread_mutex_unlock(&s->mtx);
	return NULL;
}

/* -------------------------------------------------------- virtual calls */

/* A reply frame to a virtual caller; a reply too large for a frame
 * becomes RESOURCE_EXHAUSTED, as on nng. out always runs once. */
static void out_reply(uint64_t call_id, int code, const char *error,
    ProtobufCBinaryData body, cep_rpc_out_fn out, void *arg)
{
	Cep__V1__Envelope env = CEP__V1__ENVELOPE__INIT;
	env.call_id = call_id;
	env.code = code;
	env.error = (char *)(error ? error : "");
	env.body = body;
	uint8_t *buf = NULL;
	size_t len = 0;
	cep_err err;
	if (cep_rpc_envelope_bytes(&env, &buf, &len, &err) != CEP_OK) {
		env.code = err.code;
		env.error = err.msg;
		env.body = (ProtobufCBinaryData){0, NULL};
		cep_rpc_envelope_bytes(&env, &buf, &len, NULL);
	}
	out(buf, len, arg); /* (NULL, 0) only when out of memory */
	free(buf);
}

void cep_rpc_server_dispatch(cep_rpc_server *s, cep_pipe_id pipe, bool verified,
    const char *peer, const uint8_t *frame, size_t len, cep_rpc_out_fn out,
    void *arg)
{
	ProtobufCBinaryData none = {0, NULL};
	cep_rpc_frame f;
	atomic_fetch_add(&s->n_calls, 1);
	cep_rpc_decode_frame(s->table, s->n, frame, len, &f);
	if (f.code == CEP_OK && f.method == &cep_rpc_ping_method) {
		out_reply(f.call_id, CEP_OK, "", none, out, arg);
		return;
	}
	if (f.code != CEP_OK) {
		atomic_fetch_add(f.code == CEP_RESOURCE_EXHAUSTED ?
		        &s->n_oversized :
		        f.code == CEP_UNIMPLEMENTED ? &s->n_unknown :
		                                      &s->n_malformed,
		    1);
		out_reply(f.call_id, f.code, f.error, none, out, arg);
		return;
	}
	cep_rpc_call *c = call_new(s, &f);
	if (c == NULL) {
		out_reply(f.call_id, CEP_RESOURCE_EXHAUSTED,
		    "server out of memory", none, out, arg);
		return;
	}
	c->out = out;
	c->out_arg = arg;
	c->pipe.id = pipe.id | CEP_RPC_VIRTUAL_PIPE;
	c->pipe.verified = verified;
	snprintf(c->pipe.peer, sizeof(c->pipe.peer), "%s", peer ? peer : "?");
	if (!call_enqueue(s, c)) {
		protobuf_c_message_free_unpacked(c->req, NULL);
		free(c);
		out_reply(f.call_id, CEP_UNAVAILABLE, "server shutting down",
		    none, out, arg);
	}
}

/* --------------------------------------------------------------- calls */

/* Answers and forgets a call: unlinks it, frees it, sends on its context. */
static void call_finish(cep_rpc_call *c, int code, const char *error,
    ProtobufCBinaryData body)
{
	cep_rpc_server *s = c->s;
	pthread_mutex_lock(&s->mtx);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->live = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&s->mtx);
	rpc_ctx *rc = c->rc;
	uint64_t id = c->call_id;
	cep_rpc_out_fn out = c->out;
	void *out_arg = c->out_arg;
	if (s->done_cb != NULL)
		s->done_cb(c->m->name, code, s->arg);
	if (c->req != NULL)
		protobuf_c_message_free_unpacked(c->req, NULL);
	free(c);
	if (rc != NULL) {
		ctx_reply(rc, id, code, error, body, true);
		return;
	}
	atomic_fetch_add(code == CEP_OK ? &s->n_ok : &s->n_failed, 1);
	out_reply(id, code, error, body, out, out_arg);
}

void cep_rpc_call_reply(cep_rpc_call *c, const ProtobufCMessage *reply)
{
	ProtobufCBinaryData body;
	cep_err err;
	if (cep_rpc_pack_body(reply, &body, "reply", &err) != CEP_OK) {
		cep_log_warn(NULL, "rpc %s: %s: %s", c->s->name, c->m->name,
		    err.msg);
		call_finish(c, err.code, err.msg, body);
		return;
	}
	call_finish(c, CEP_OK, NULL, body);
	free(body.data);
}

void cep_rpc_call_fail(cep_rpc_call *c, int code, const char *fmt, ...)
{
	char msg[CEP_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (code <= CEP_OK || code > CEP_UNAUTHENTICATED)
		code = CEP_UNKNOWN; /* a failure is never OK on the wire */
	call_finish(c, code, msg, (ProtobufCBinaryData){0, NULL});
}

const ProtobufCMessage *cep_rpc_call_request(cep_rpc_call *c)
{
	return c->req;
}
const char *cep_rpc_call_method(cep_rpc_call *c)
{
	return c->m->name;
}
cep_pipe_id cep_rpc_call_pipe(cep_rpc_call *c)
{
	return (cep_pipe_id){c->pipe.id};
}
bool cep_rpc_call_peer_verified(cep_rpc_call *c)
{
	return c->pipe.verified;
}
const char *cep_rpc_call_peer(cep_rpc_call *c)
{
	return c->pipe.peer;
}
int64_t cep_rpc_call_deadline(cep_rpc_call *c)
{
	return c->deadline;
}

/* --------------------------------------------------------------- server */

static int server_start(cep_rpc_server *s, int workers, cep_err *err)
{
	int rv;
	if ((rv = nng_rep0_open(&s->sock)) != 0)
		return cep_rpc_err_nng(err, rv, "opening the rep socket");
	s->sock_open = true;
	if ((rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ,
	         CEP_RPC_RECV_MAX)) != 0 ||
	    (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_POST, pipe_event,
	         s)) != 0 ||
	    (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, pipe_event,
	         s)) != 0)
		return cep_rpc_err_nng(err, rv, "setting up the rep socket");
	if ((s->workers = calloc((size_t)workers, sizeof(pthread_t))) == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	for (; s->nworkers < workers; s->nworkers++)
		if (pthread_create(&s->workers[s->nworkers], NULL, worker_main,
		        s) != 0)
			return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
			    "cannot start RPC worker thread");
	int k = INITIAL_CTX < s->max_ctx ? INITIAL_CTX : s->max_ctx;
	pthread_mutex_lock(&s->mtx);
	s->nctx += k;
	s->idle += k;
	pthread_mutex_unlock(&s->mtx);
	while (k-- > 0)
		ctx_open_counted(s);
	if (s->nctx == 0)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "cannot open RPC contexts");
	return CEP_OK;
}

int cep_rpc_server_new(cep_rpc_server **out, const cep_rpc_method *table,
    size_t n, void *arg, const cep_rpc_server_opts *opts, cep_err *err)
{
	*out = NULL;
	cep_rpc_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	s->table = table;
	s->n = n;
	s->arg = arg;
	snprintf(s->name, sizeof(s->name), "%s",
	    opts && opts->name ? opts->name : "rpc");
	s->pipe_cb = opts ? opts->pipe_cb : NULL;
	s->pipe_cb_arg = opts ? opts->pipe_cb_arg : NULL;
	s->done_cb = opts ? opts->done_cb : NULL;
	s->max_ctx = opts && opts->max_inflight > 0 ? opts->max_inflight : 4096;
	if (opts != NULL && opts->limits != NULL)
		s->limits = *opts->limits;
	int workers = opts && opts->workers > 0 ? opts->workers : 4;
	pthread_mutex_init(&s->mtx, NULL);
	pthread_cond_init(&s->work_cv, NULL);
	pthread_cond_init(&s->drain_cv, NULL);
	if (server_start(s, workers, err) != CEP_OK) {
		cep_rpc_server_free(s);
		return err ? err->code : CEP_INTERNAL;
	}
	*out = s;
	return CEP_OK;
}

#define RELISTEN_TRIES 50 /* 100 ms apart */

static int tcp_listen_again(cep_rpc_server *s, nng_listener *l)
{
	int rv = nng_listener_create(l, s->sock, s->tcp_url);
	if (rv != 0)
		return rv;
	if ((rv = nng_listener_set_ptr(*l, NNG_OPT_TLS_CONFIG, s->tcp_cfg)) !=
	        0 ||
	    (rv = nng_listener_start(*l, 0)) != 0)
		nng_listener_close(*l);
	return rv;
}

/* The gate saw the tls+tcp listener wedged (cep_rpc_gate_on_wedge):
 * it is closed and made again on the same port. Closing an nng listener
 * closes every pipe it made, so connected peers reconnect too; a runner
 * takes that like any disconnect (it proves again and resends what was
 * not acknowledged), and it is the only way found to get new ones in. */
static void tcp_wedged(int waiting, void *arg)
{
	cep_rpc_server *s = arg;
	pthread_mutex_lock(&s->mtx);
	bool go = !s->closing && s->has_tcp && s->tcp_cfg != NULL;
	nng_listener old = s->tcp_listener;
	pthread_mutex_unlock(&s->mtx);
	if (!go)
		return;
	cep_log_warn(NULL,
	    "rpc %s: %d connection(s) on %s waited %d s with data unread "
	    "while none became a pipe (nng 1.5 listener wedge); re-creating "
	    "the listener, its connected peers reconnect",
	    s->name, waiting, s->tcp_url, CEP_RPC_WEDGE_MS / 1000);
	nng_listener_close(old);
	nng_listener l;
	int rv = NNG_EADDRINUSE;
	/* the old one's port may take nng a moment to let go of */
	for (int i = 0; i < RELISTEN_TRIES && rv == NNG_EADDRINUSE; i++) {
		if (i > 0)
			cep_clock_sleep_ms(100);
		rv = tcp_listen_again(s, &l);
	}
	if (rv != 0) {
		cep_log_error(NULL, "rpc %s: re-creating %s: %s", s->name,
		    s->tcp_url, nng_strerror(rv));
		return;
	}
	pthread_mutex_lock(&s->mtx);
	s->tcp_listener = l;
	pthread_mutex_unlock(&s->mtx);
	atomic_fetch_add(&s->n_restarts, 1);
}

void cep_rpc_server_relisten(cep_rpc_server *s)
{
	tcp_wedged(0, s);
}

/* Remembers how to make the tls+tcp listener l again (tcp_wedged). */
static void tcp_remember(cep_rpc_server *s, nng_listener l, int port)
{
	nng_url *u = NULL;
	nng_tls_config *cfg = NULL;
	if (nng_url_parse(&u, s->tcp_url) != 0)
		return;
	bool v6 = strchr(u->u_hostname, ':') != NULL;
	snprintf(s->tcp_url, sizeof(s->tcp_url), "%s://%s%s%s:%d", u->u_scheme,
	    v6 ? "[" : "", u->u_hostname, v6 ? "]" : "", port);
	nng_url_free(u);
	if (nng_listener_get_ptr(l, NNG_OPT_TLS_CONFIG, (void **)&cfg) == 0 &&
	    cfg != NULL) {
		nng_tls_config_hold(cfg);
		s->tcp_cfg = cfg;
	}
}

int cep_rpc_server_listen(cep_rpc_server *s, const char *url,
    const cep_rpc_tls *tls, cep_err *err)
{
	nng_listener l;
	if (cep_rpc_listen(s->sock, url, tls, &l, err) != CEP_OK)
		return cep_err_wrap(err, "rpc %s: listening on %s", s->name,
		    url ? url : "");
	bool is_tls = cep_rpc_url_is_tls(url);
	if (!is_tls &&
	    (s->guard == NULL ?
	            cep_rpc_guard_new(&s->guard, s->sock, s->name, err) :
	            CEP_OK) == CEP_OK)
		cep_rpc_guard_watch(s->guard, url, l, err);
	pthread_mutex_lock(&s->mtx);
	if (is_tls && !s->has_tcp) {
		s->tcp_listener = l;
		s->has_tcp = true;
	}
	pthread_mutex_unlock(&s->mtx);
	int port = 0;
	if (is_tls)
		nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
	bool first_tcp = is_tls && port > 0 && s->gate == NULL;
	if (first_tcp) {
		snprintf(s->tcp_url, sizeof(s->tcp_url), "%s", url);
		tcp_remember(s, l, port);
	}
	if (first_tcp &&
	    cep_rpc_gate_new(&s->gate, s->name, port, &s->limits, pipe_peers, s,
	        err) != CEP_OK)
		return cep_err_wrap(err, "rpc %s: limits on %s", s->name, url);
	if (first_tcp)
		cep_rpc_gate_on_wedge(s->gate, tcp_wedged, s);
	cep_log_info(NULL, "rpc %s: listening on %s (port %d)", s->name, url,
	    port);
	return CEP_OK;
}

int cep_rpc_server_port(cep_rpc_server *s)
{
	int port = 0;
	if (s == NULL || !s->has_tcp ||
	    nng_listener_get_int(s->tcp_listener, NNG_OPT_TCP_BOUND_PORT,
	        &port) != 0)
		return 0;
	return port;
}

void cep_rpc_server_close_pipe(cep_rpc_server *s, cep_pipe_id pipe)
{
	nng_pipe p = NNG_PIPE_INITIALIZER;
	p.id = pipe.id;
	/* pipe ids are global in nng: only ever close one of ours */
	if (pipe.id != 0 && (pipe.id & CEP_RPC_VIRTUAL_PIPE) == 0 &&
	    nng_socket_id(nng_pipe_socket(p)) == nng_socket_id(s->sock))
		nng_pipe_close(p);
}

void cep_rpc_server_stats(cep_rpc_server *s, cep_rpc_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->calls = atomic_load(&s->n_calls);
	out->ok = atomic_load(&s->n_ok);
	out->failed = atomic_load(&s->n_failed);
	out->malformed = atomic_load(&s->n_malformed);
	out->oversized = atomic_load(&s->n_oversized);
	out->unknown_method = atomic_load(&s->n_unknown);
	pthread_mutex_lock(&s->mtx);
	out->pipes = (uint32_t)s->npipes;
	pthread_mutex_unlock(&s->mtx);
	out->listener_restarts = cep_rpc_guard_restarts(s->guard) +
	    atomic_load(&s->n_restarts);
	cep_rpc_gate_stats(s->gate, out);
}

/* Calls still held (parked) are answered UNAVAILABLE; their holders must
 * not touch them afterwards. Replies get DRAIN_MS to leave. */
static void server_drain(cep_rpc_server *s)
{
	for (;;) {
		pthread_mutex_lock(&s->mtx);
		cep_rpc_call *c = s->live;
		pthread_mutex_unlock(&s->mtx);
		if (c == NULL)
			break;
		cep_rpc_call_fail(c, CEP_UNAVAILABLE, "server %s shutting down",
		    s->name);
	}
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += DRAIN_MS / 1000;
	pthread_mutex_lock(&s->mtx);
	while (s->sending > 0 &&
	    pthread_cond_timedwait(&s->drain_cv, &s->mtx, &until) == 0)
		;
	pthread_mutex_unlock(&s->mtx);
}

/* A context's send ends when rep0 hands the reply to its pipe; the pipe
 * writes it on nng's threads, one iov at a time. nng 1.5.2 loses a write
 * that the close catches between two iovs (tls and ipc transports: the
 * next write's nni_aio_begin on the closed aio fails and never calls
 * back), and the pipe's teardown then waits on it for good, with every
 * later close in the process behind it (docs/internals.md, "nng 1.5.2
 * close that never returns"). So, once no context can send any more, the
 * close waits until the last reply has had time to go out. */
static void linger_after_sends(cep_rpc_server *s)
{
	pthread_mutex_lock(&s->mtx);
	int64_t linger = s->last_sent + LINGER_MS - cep_clock_mono_ms();
	bool sent = s->last_sent != 0;
	pthread_mutex_unlock(&s->mtx);
	if (sent && linger > 0)
		cep_clock_sleep_ms(linger);
}

/* Every context's aio is stopped before the socket closes: a callback
 * then finds its next operation refused and stops, so the close does not
 * race receives and sends in flight. */
static void ctxs_stop(cep_rpc_server *s)
{
	pthread_mutex_lock(&s->mtx);
	rpc_ctx *head = s->ctxs; /* the list only grows at its head */
	pthread_mutex_unlock(&s->mtx);
	for (rpc_ctx *rc = head; rc != NULL; rc = rc->next)
		nng_aio_stop(rc->aio);
}

void cep_rpc_server_free(cep_rpc_server *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mtx);
	s->closing = true;
	pthread_cond_broadcast(&s->work_cv);
	pthread_mutex_unlock(&s->mtx);
	for (int i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i], NULL); /* they empty the queue */
	server_drain(s);
	cep_rpc_guard_free(s->guard);
	/* Before the socket closes (the gate must not shut down a file
	 * descriptor number that the close frees for reuse); detached under
	 * the lock, so pipe events and calls still running see no gate
	 * rather than a freed one. The pipes' identity buckets go with it. */
	pthread_mutex_lock(&s->mtx);
	cep_rpc_gate *gate = s->gate;
	s->gate = NULL;
	pthread_mutex_unlock(&s->mtx);
	cep_rpc_gate_free(gate);
	ctxs_stop(s);
	linger_after_sends(s);
	/* nng_close waits for pipe events to finish; with nng 1.5.2 it
	 * may never return (docs/internals.md, "nng 1.5.2 close that
	 * never returns"): a relay or delegate that stops must stop */
	if (s->sock_open && !cep_rpc_close_bounded(s->sock, CLOSE_WAIT_MS)) {
		cep_log_error(NULL,
		    "rpc %s: nng did not close its socket within %d s (nng "
		    "1.5.2 close that never returns); the socket and this "
		    "server's memory are left to it",
		    s->name, CLOSE_WAIT_MS / 1000);
		pthread_mutex_lock(&left_mu);
		s->left_next = left_behind;
		left_behind = s;
		pthread_mutex_unlock(&left_mu);
		return;
	}
	/* Popped one at a time: a callback finishing now may still link a
	 * context it opened just before closing began. */
	for (;;) {
		pthread_mutex_lock(&s->mtx);
		rpc_ctx *rc = s->ctxs;
		if (rc != NULL)
			s->ctxs = rc->next;
		pthread_mutex_unlock(&s->mtx);
		if (rc == NULL)
			break;
		nng_aio_stop(rc->aio); /* waits for its callback */
		/* A reply sent from a callback racing ctxs_stop: nng 1.5.2
		 * refuses a send on a stopped aio without calling back, so
		 * the message is still the aio's (a sent or failed one is
		 * not: nng takes it, or ctx_cb frees it) */
		nng_msg *left = nng_aio_get_msg(rc->aio);
		if (left != NULL)
			nng_msg_free(left);
		nng_aio_free(rc->aio);
		free(rc);
	}
	if (s->tcp_cfg != NULL)
		nng_tls_config_free(s->tcp_cfg);
	free(s->workers);
	free(s->pipes);
	pthread_cond_destroy(&s->drain_cv);
	pthread_cond_destroy(&s->work_cv);
	pthread_mutex_destroy(&s->mtx);
	free(s);
}
