/*
 * runner_api.c - the Runner service: what a runner may ask of the relay.
 *
 * Everything a runner sends is hostile until proven otherwise. Challenge
 * and Prove establish who is on a pipe (docs/internals.md, "A run, call by
 * call", step 4, checks in that order); every other call is authorised
 * against that binding and the registry before anything reaches the
 * delegate. Refusals go through relay_refuse: one log line, counted.
 */
#define _GNU_SOURCE
#include "relay_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pki.h"
#include "clock.h"
#include "run_id.h"
#include "util.h"

#define CERT_DER_MAX (16 * 1024)
#define SIG_MAX 256
#define CONNECTED_MS 2000

static void count_call(cep_relay *r)
{
	pthread_mutex_lock(&r->mu);
	r->calls++;
	pthread_mutex_unlock(&r->mu);
}

static void fmt_time(int64_t ms, char *buf, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ------------------------------------------------------------ Challenge */

static void h_challenge(cep_rpc_call *c, void *arg)
{
	cep_relay *r = arg;
	uint8_t nonce[CEP_PIPES_NONCE_LEN];
	cep_err err = {0};
	count_call(r);
	if (cep_util_random(nonce, sizeof(nonce), &err) != CEP_OK) {
		cep_rpc_call_fail(c, CEP_INTERNAL, "no randomness for a nonce");
		return;
	}
	pthread_mutex_lock(&r->mu);
	cep_relay_pipe *p = relay_pipes_get(r->pipes, cep_rpc_call_pipe(c).id,
	    cep_rpc_call_peer_verified(c), cep_rpc_call_peer(c));
	if (p != NULL) {
		memcpy(p->nonce, nonce, sizeof(nonce));
		p->has_nonce = true;
		p->nonce_mono_ms = cep_clock_mono_ms();
	}
	pthread_mutex_unlock(&r->mu);
	if (p == NULL) {
		explicit_bzero(nonce, sizeof(nonce));
		cep_rpc_call_fail(c, CEP_UNAVAILABLE, "connection closed");
		return;
	}
	Cep__V1__ChallengeReply rep = CEP__V1__CHALLENGE_REPLY__INIT;
	rep.nonce.data = nonce;
	rep.nonce.len = sizeof(nonce);
	cep_rpc_call_reply(c, &rep.base);
	explicit_bzero(nonce, sizeof(nonce));
}

/* ---------------------------------------------------------------- Prove */

typedef struct prove_ctx {
	cep_relay *r;
	cep_rpc_call *c;
	const Cep__V1__ProveRequest *req;
	uint32_t pipe;
	uint8_t nonce[CEP_PIPES_NONCE_LEN];
	bool has_nonce;
	int64_t nonce_at;
	cep_run_id bound;
	cep_pki_identity id;
	int64_t not_after_ms; /* min(certificate, grant) */
} prove_ctx;

#define REFUSE(x, why, code, ...)                                 \
	relay_refuse((x)->r, (x)->c, (why), (code), (x)->bound.s, \
	    (x)->req->run_id, __VA_ARGS__)

/* The nonce is single use: taken out of the pipe whatever happens next. */
static void prove_take_nonce(prove_ctx *x)
{
	cep_relay *r = x->r;
	pthread_mutex_lock(&r->mu);
	cep_relay_pipe *p = relay_pipes_get(r->pipes, x->pipe,
	    cep_rpc_call_peer_verified(x->c), cep_rpc_call_peer(x->c));
	if (p != NULL) {
		memcpy(x->nonce, p->nonce, sizeof(x->nonce));
		x->has_nonce = p->has_nonce;
		x->nonce_at = p->nonce_mono_ms;
		p->has_nonce = false;
		explicit_bzero(p->nonce, sizeof(p->nonce));
		if (p->bound)
			x->bound = p->run_id;
	}
	pthread_mutex_unlock(&r->mu);
}

static enum cep_refusal cert_reason(const cep_err *err)
{
	if (strstr(err->msg, "expired") != NULL ||
	    strstr(err->msg, "not yet valid") != NULL)
		return CEP_REFUSE_CERT_EXPIRED;
	return CEP_REFUSE_CERT_UNTRUSTED;
}

/* The TLS layer did not verify this peer: find the best reason we can
 * give (the certificate it presents in Prove is usually the same one),
 * refuse and close the connection. */
static void prove_refuse_unverified(prove_ctx *x)
{
	cep_err err = {0};
	if (cep_pki_verify_der(x->r->ca_pem, x->req->cert_der.data,
	        x->req->cert_der.len, cep_clock_now_ms(), &x->id,
	        &err) != CEP_OK)
		REFUSE(x, cert_reason(&err), CEP_UNAUTHENTICATED,
		    "TLS client certificate refused: %s", err.msg);
	else
		REFUSE(x, CEP_REFUSE_TLS_UNVERIFIED, CEP_UNAUTHENTICATED,
		    "TLS client certificate missing or not verified by the "
		    "appliance CA");
	relay_close_later(x->r, x->pipe);
}

/* Certificate: chain and validity, then that it names the run asked for. */
static bool prove_check_cert(prove_ctx *x)
{
	cep_err err = {0};
	if (x->req->cert_der.len == 0 || x->req->cert_der.len > CERT_DER_MAX) {
		REFUSE(x, CEP_REFUSE_BAD_REQUEST, CEP_INVALID_ARGUMENT,
		    "cert_der of %zu bytes (1..%d)", x->req->cert_der.len,
		    CERT_DER_MAX);
		return false;
	}
	if (!cep_rpc_call_peer_verified(x->c)) {
		prove_refuse_unverified(x);
		return false;
	}
	if (cep_pki_verify_der(x->r->ca_pem, x->req->cert_der.data,
	        x->req->cert_der.len, cep_clock_now_ms(), &x->id,
	        &err) != CEP_OK) {
		REFUSE(x, cert_reason(&err), CEP_UNAUTHENTICATED,
		    "identity certificate refused: %s", err.msg);
		return false;
	}
	if (strcmp(x->id.run_id.s, x->req->run_id) != 0) {
		char q[64];
		relay_safe(q, sizeof(q), x->req->run_id);
		REFUSE(x, CEP_REFUSE_CERT_RUN_MISMATCH, CEP_PERMISSION_DENIED,
		    "certificate is for run %s, not %s", x->id.run_id.s, q);
		return false;
	}
	return true;
}

/* The registry: the run must be active and granted this very identity. */
static bool prove_check_grant(prove_ctx *x)
{
	cep_relay *r = x->r;
	const char *rid = x->id.run_id.s; /* == req->run_id, a checked id */
	enum cep_refusal why = CEP_REFUSE_N;
	pthread_mutex_lock(&r->mu);
	cep_relay_run *run = relay_registry_find(r->reg, rid);
	if (run == NULL)
		why = relay_registry_is_finished(r->reg, rid) ?
		    CEP_REFUSE_RUN_FINISHED :
		    CEP_REFUSE_UNKNOWN_RUN;
	else if (strcmp(run->uri, x->id.uri) != 0)
		why = CEP_REFUSE_IDENTITY_MISMATCH;
	else /* a grant without not_after leaves the certificate's */
		x->not_after_ms = run->not_after_ms > 0 &&
		        run->not_after_ms < x->id.not_after_ms ?
		    run->not_after_ms :
		    x->id.not_after_ms;
	pthread_mutex_unlock(&r->mu);
	if (why == CEP_REFUSE_N && cep_run_id_is_set(&x->bound) &&
	    !cep_run_id_is(&x->bound, rid))
		why = CEP_REFUSE_WRONG_RUN;
	else if (why == CEP_REFUSE_N && x->not_after_ms <= cep_clock_now_ms())
		why = CEP_REFUSE_IDENTITY_EXPIRED;
	switch (why) {
	case CEP_REFUSE_RUN_FINISHED:
		REFUSE(x, why, CEP_PERMISSION_DENIED, "run %s finished", rid);
		return false;
	case CEP_REFUSE_UNKNOWN_RUN:
		REFUSE(x, why, CEP_PERMISSION_DENIED, "unknown run %s", rid);
		return false;
	case CEP_REFUSE_IDENTITY_MISMATCH:
		REFUSE(x, why, CEP_PERMISSION_DENIED,
		    "identity %s is not the "
		    "one granted to run %s",
		    x->id.uri, rid);
		return false;
	case CEP_REFUSE_WRONG_RUN:
		REFUSE(x, why, CEP_PERMISSION_DENIED,
		    "connection already bound to run %s", x->bound.s);
		return false;
	case CEP_REFUSE_IDENTITY_EXPIRED:
		REFUSE(x, why, CEP_UNAUTHENTICATED, "grant of run %s expired",
		    rid);
		return false;
	default: return true;
	}
}

/* Proof of possession over this pipe's fresh nonce. */
static bool prove_check_proof(prove_ctx *x)
{
	cep_err err = {0};
	if (!x->has_nonce) {
		REFUSE(x, CEP_REFUSE_NO_CHALLENGE, CEP_UNAUTHENTICATED,
		    "no challenge on this connection: call Challenge first");
		return false;
	}
	if (cep_clock_mono_ms() - x->nonce_at > CEP_PIPES_NONCE_TTL_MS) {
		REFUSE(x, CEP_REFUSE_NO_CHALLENGE, CEP_UNAUTHENTICATED,
		    "challenge older than %d s: call Challenge again",
		    CEP_PIPES_NONCE_TTL_MS / 1000);
		return false;
	}
	if (x->req->signature.len == 0 || x->req->signature.len > SIG_MAX ||
	    cep_pki_check_proof(x->req->cert_der.data, x->req->cert_der.len,
	        x->nonce, sizeof(x->nonce), x->req->signature.data,
	        x->req->signature.len, &err) != CEP_OK) {
		REFUSE(x, CEP_REFUSE_BAD_SIGNATURE, CEP_UNAUTHENTICATED,
		    "proof of possession failed: %s",
		    err.msg[0] ? err.msg : "signature missing or too long");
		return false;
	}
	return true;
}

/* Binds the pipe, unless the run left or the pipe closed meanwhile. */
static bool prove_bind(prove_ctx *x)
{
	cep_relay *r = x->r;
	pthread_mutex_lock(&r->mu);
	bool active = relay_registry_find(r->reg, x->id.run_id.s) != NULL;
	cep_relay_pipe *p = relay_pipes_find(r->pipes, x->pipe);
	if (active && p != NULL)
		relay_pipes_bind(r->pipes, p, x->id.run_id.s, x->not_after_ms);
	pthread_mutex_unlock(&r->mu);
	/* relay.limits.callsPerSecond is the run's, over all its pipes */
	if (active && p != NULL)
		cep_rpc_call_bind_identity(x->c, x->id.run_id.s);
	if (!active)
		REFUSE(x, CEP_REFUSE_RUN_FINISHED, CEP_PERMISSION_DENIED,
		    "run %s finished", x->id.run_id.s);
	else if (p == NULL)
		cep_rpc_call_fail(x->c, CEP_UNAVAILABLE, "connection closed");
	return active && p != NULL;
}

static void tell_delegate_connected(cep_relay *r, const char *run_id,
    const char *peer)
{
	Cep__V1__RunnerSeen seen = CEP__V1__RUNNER_SEEN__INIT;
	seen.run_id = (char *)run_id;
	seen.peer = (char *)peer;
	cep_err err = {0};
	ProtobufCMessage *ack = NULL;
	if (cep_rpc_invoke(r->delegate, "cep.v1.Delegate/RunnerConnected",
	        &seen.base, &cep__v1__fault_ack__descriptor, &ack, CONNECTED_MS,
	        &err) == CEP_OK)
		protobuf_c_message_free_unpacked(ack, NULL);
	else
		cep_log_warn(run_id,
		    "could not tell the delegate the runner "
		    "connected: %s",
		    err.msg);
}

static void h_prove(cep_rpc_call *c, void *arg)
{
	prove_ctx x = {.r = arg,
	    .c = c,
	    .req = (const Cep__V1__ProveRequest *)cep_rpc_call_request(c),
	    .pipe = cep_rpc_call_pipe(c).id};
	count_call(x.r);
	prove_take_nonce(&x);
	if (prove_check_cert(&x) && prove_check_grant(&x) &&
	    prove_check_proof(&x) && prove_bind(&x)) {
		char peer[64], until[32];
		relay_safe(peer, sizeof(peer), cep_rpc_call_peer(c));
		fmt_time(x.not_after_ms, until, sizeof(until));
		cep_log_info(x.id.run_id.s,
		    "runner proved %s from %s (pipe %u), "
		    "valid until %s",
		    x.id.uri, peer, x.pipe, until);
		tell_delegate_connected(x.r, x.id.run_id.s, peer);
		Cep__V1__ProveReply rep = CEP__V1__PROVE_REPLY__INIT;
		rep.run_id = x.id.run_id.s;
		rep.not_after_ms = x.not_after_ms;
		cep_rpc_call_reply(c, &rep.base);
	}
	explicit_bzero(x.nonce, sizeof(x.nonce));
}

/* ------------------------------------------------------- authorisation */

typedef struct pipe_view {
	bool found, bound;
	cep_run_id run_id, revoked;
	int64_t not_after_ms;
	bool run_active;
} pipe_view;

static void view_pipe(cep_relay *r, uint32_t pipe, pipe_view *v)
{
	pthread_mutex_lock(&r->mu);
	cep_relay_pipe *p = relay_pipes_find(r->pipes, pipe);
	if (p != NULL) {
		v->found = true;
		v->bound = p->bound;
		v->run_id = p->run_id;
		v->revoked = p->revoked;
		v->not_after_ms = p->not_after_ms;
		cep_relay_run *run = p->bound ?
		    relay_registry_find(r->reg, p->run_id.s) :
		    NULL;
		v->run_active = run != NULL;
		if (run != NULL && run->not_after_ms > 0 &&
		    run->not_after_ms < v->not_after_ms)
			v->not_after_ms = run->not_after_ms;
	}
	pthread_mutex_unlock(&r->mu);
}

/* The event in batch that speaks for another run than bound, or NULL. */
static const Cep__V1__Event *foreign_event(const Cep__V1__EventBatch *batch,
    const char *bound)
{
	for (size_t i = 0; batch != NULL && i < batch->n_events; i++)
		if (strcmp(batch->events[i]->run_id, bound) != 0)
			return batch->events[i];
	return NULL;
}

/* Every Runner call but Challenge and Prove passes here first. True: the
 * call may go on. False: it has been refused (answered). */
static bool authorize(cep_relay *r, cep_rpc_call *c, const char *run_id,
    const Cep__V1__EventBatch *batch)
{
	pipe_view v = {0};
	char q[64], until[32];
	uint32_t pipe = cep_rpc_call_pipe(c).id;
	relay_safe(q, sizeof(q), run_id);
	if (!cep_rpc_call_peer_verified(c)) {
		relay_refuse(r, c, CEP_REFUSE_TLS_UNVERIFIED,
		    CEP_UNAUTHENTICATED, NULL, run_id,
		    "TLS client certificate "
		    "missing or not verified: only Challenge and Prove allowed");
		relay_close_later(r, pipe);
		return false;
	}
	view_pipe(r, pipe, &v);
	const Cep__V1__Event *ev = v.bound ? foreign_event(batch, v.run_id.s) :
	                                     NULL;
	if (!v.bound && cep_run_id_is_set(&v.revoked))
		relay_refuse(r, c, CEP_REFUSE_RUN_ENDED, CEP_PERMISSION_DENIED,
		    v.revoked.s, run_id, "run %s is no longer active",
		    v.revoked.s);
	else if (!v.bound)
		relay_refuse(r, c, CEP_REFUSE_NOT_AUTHENTICATED,
		    CEP_UNAUTHENTICATED, NULL, run_id,
		    "pipe not authenticated: call Prove first");
	else if (strcmp(run_id, v.run_id.s) != 0 || ev != NULL) {
		if (ev != NULL)
			relay_safe(q, sizeof(q), ev->run_id);
		relay_refuse(r, c, CEP_REFUSE_WRONG_RUN, CEP_PERMISSION_DENIED,
		    v.run_id.s, ev ? ev->run_id : run_id,
		    "runner of run %s may "
		    "not act for run %s",
		    v.run_id.s, q);
	} else if (!v.run_active)
		relay_refuse(r, c, CEP_REFUSE_RUN_ENDED, CEP_PERMISSION_DENIED,
		    v.run_id.s, run_id, "run %s is no longer active",
		    v.run_id.s);
	else if (v.not_after_ms <= cep_clock_now_ms()) {
		fmt_time(v.not_after_ms, until, sizeof(until));
		relay_refuse(r, c, CEP_REFUSE_IDENTITY_EXPIRED,
		    CEP_UNAUTHENTICATED, v.run_id.s, run_id,
		    "identity of run %s expired at %s", v.run_id.s, until);
	} else
		return true;
	return false;
}

/* ----------------------------------------------------------- forwarding */

/* A synchronous call to the delegate on behalf of c: its reply in *out
 * (the caller answers c), or its status as c's answer and the return
 * value. Transport failures become UNAVAILABLE, which the runner retries. */
static int forward_get(cep_relay *r, cep_rpc_call *c, const char *method,
    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rdesc,
    const char *run_id, ProtobufCMessage **out)
{
	int64_t left = cep_rpc_call_deadline(c) - cep_clock_mono_ms() - 100;
	int tmo = left < 100            ? 100 :
	    left > CEP_RELAY_FORWARD_MS ? CEP_RELAY_FORWARD_MS :
	                                  (int)left;
	ProtobufCMessage *reply = NULL;
	cep_err err = {0};
	int rc = cep_rpc_invoke(r->delegate, method, req, rdesc, &reply, tmo,
	    &err);
	if (rc == CEP_OK && reply != NULL) {
		*out = reply;
		return CEP_OK;
	}
	if (rc == CEP_OK || rc == CEP_UNAVAILABLE ||
	    rc == CEP_DEADLINE_EXCEEDED) {
		cep_log_warn(run_id, "%s: delegate unavailable: %s", method,
		    err.msg);
		cep_rpc_call_fail(c, CEP_UNAVAILABLE,
		    "delegate unavailable: %s", err.msg);
		return CEP_UNAVAILABLE;
	}
	cep_rpc_call_fail(c, rc, "%s", err.msg);
	return rc;
}

/* forward_get, and the delegate's reply is c's answer. */
static int forward(cep_relay *r, cep_rpc_call *c, const char *method,
    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rdesc,
    const char *run_id)
{
	ProtobufCMessage *reply = NULL;
	int rc = forward_get(r, c, method, req, rdesc, run_id, &reply);
	if (rc == CEP_OK) {
		cep_rpc_call_reply(c, reply);
		protobuf_c_message_free_unpacked(reply, NULL);
	}
	return rc;
}

static void h_push_events(cep_rpc_call *c, void *arg)
{
	cep_relay *r = arg;
	const Cep__V1__EventBatch *b = (const Cep__V1__EventBatch *)
	    cep_rpc_call_request(c);
	count_call(r);
	if (!authorize(r, c, b->run_id, b))
		return;
	if (b->n_events > CEP_RELAY_MAX_BATCH) {
		relay_refuse(r, c, CEP_REFUSE_BAD_REQUEST, CEP_INVALID_ARGUMENT,
		    b->run_id, b->run_id, "batch of %zu events, at most %d",
		    b->n_events, CEP_RELAY_MAX_BATCH);
		return;
	}
	pthread_mutex_lock(&r->mu);
	r->events_in += b->n_events;
	pthread_mutex_unlock(&r->mu);
	cep_metrics_add(r->m_events_in, (double)b->n_events, NULL);
	size_t n = b->n_events; /* b is gone once c is answered */
	if (r->up == NULL) {
		if (forward(r, c, "cep.v1.Delegate/RunnerEvents", &b->base,
		        &cep__v1__event_ack__descriptor, b->run_id) == CEP_OK)
			cep_metrics_add(r->m_events_out, (double)n, NULL);
		return;
	}
	/* Upstream: no room in the spool, no batch (the runner keeps it and
	 * retries: backpressure); and no ack before the batch is both
	 * journalled by the delegate and spooled with fsync. */
	cep_err err = {0};
	if (!relay_upstream_room(r->up, &err)) {
		cep_rpc_call_fail(c, err.code, "%s", err.msg);
		return;
	}
	ProtobufCMessage *ack = NULL;
	if (forward_get(r, c, "cep.v1.Delegate/RunnerEvents", &b->base,
	        &cep__v1__event_ack__descriptor, b->run_id, &ack) != CEP_OK)
		return;
	uint64_t acked = ((const Cep__V1__EventAck *)ack)->acked_seq;
	if (relay_upstream_spool(r->up, b, acked, &err) != CEP_OK) {
		/* logged by upstream.c, once per interval on a full disk */
		cep_rpc_call_fail(c, CEP_UNAVAILABLE, "relay spool: %s",
		    err.msg);
	} else {
		cep_rpc_call_reply(c, ack);
		cep_metrics_add(r->m_events_out, (double)n, NULL);
	}
	protobuf_c_message_free_unpacked(ack, NULL);
}

static void fault_call(cep_rpc_call *c, void *arg, const char *method)
{
	cep_relay *r = arg;
	const Cep__V1__FaultRecord *f = (const Cep__V1__FaultRecord *)
	    cep_rpc_call_request(c);
	count_call(r);
	if (authorize(r, c, f->run_id, NULL))
		forward(r, c, method, &f->base, &cep__v1__fault_ack__descriptor,
		    f->run_id);
}

static void h_record_fault(cep_rpc_call *c, void *arg)
{
	fault_call(c, arg, "cep.v1.Delegate/RecordFault");
}

static void h_fault_reverted(cep_rpc_call *c, void *arg)
{
	fault_call(c, arg, "cep.v1.Delegate/FaultReverted");
}

/* ------------------------------------------------- assignment, commands */

static void h_get_assignment(cep_rpc_call *c, void *arg)
{
	cep_relay *r = arg;
	const Cep__V1__AssignmentRequest *req =
	    (const Cep__V1__AssignmentRequest *)cep_rpc_call_request(c);
	count_call(r);
	if (!authorize(r, c, req->run_id, NULL))
		return;
	ProtobufCMessage *asg = NULL;
	pthread_mutex_lock(&r->mu);
	cep_relay_run *run = relay_registry_find(r->reg, req->run_id);
	if (run != NULL)
		asg = cep_rpc_msg_dup(&run->assignment->base);
	pthread_mutex_unlock(&r->mu);
	if (asg == NULL) {
		cep_rpc_call_fail(c,
		    run ? CEP_RESOURCE_EXHAUSTED : CEP_PERMISSION_DENIED,
		    "run %s is no longer active", req->run_id);
		return;
	}
	cep_rpc_call_reply(c, asg);
	protobuf_c_message_free_unpacked(asg, NULL);
}

static void h_watch_commands(cep_rpc_call *c, void *arg)
{
	cep_relay *r = arg;
	const Cep__V1__WatchRequest *req = (const Cep__V1__WatchRequest *)
	    cep_rpc_call_request(c);
	count_call(r);
	if (!authorize(r, c, req->run_id, NULL))
		return;
	Cep__V1__CommandBatch *batch = NULL;
	if (!relay_watch(r, c, req->run_id, req->after_seq, &batch))
		return; /* parked: answered later */
	if (batch == NULL) {
		relay_reply_empty(c);
		return;
	}
	cep_rpc_call_reply(c, &batch->base);
	protobuf_c_message_free_unpacked(&batch->base, NULL);
}

/* ---------------------------------------------------------- pipe events */

void relay_pipe_event(cep_pipe_id pipe, bool added, bool verified,
    const char *peer, void *arg)
{
	cep_relay *r = arg;
	char who[64];
	cep_run_id run = {""};
	relay_safe(who, sizeof(who), peer);
	pthread_mutex_lock(&r->mu);
	if (added) {
		relay_pipes_get(r->pipes, pipe.id, verified, peer);
	} else {
		cep_relay_pipe *p = relay_pipes_find(r->pipes, pipe.id);
		if (p != NULL && p->bound)
			run = p->run_id;
		relay_pipes_remove(r->pipes, pipe.id);
	}
	pthread_mutex_unlock(&r->mu);
	if (added && !verified)
		cep_log_info(NULL,
		    "connection from %s (pipe %u) without a "
		    "verified client certificate: only Challenge/Prove allowed",
		    who, pipe.id);
	if (!added) {
		relay_forget_pipe_calls(r, pipe.id);
		if (cep_run_id_is_set(&run))
			cep_log_info(run.s, "runner disconnected (%s, pipe %u)",
			    who, pipe.id);
	}
}

const cep_rpc_method relay_runner_methods[] = {
    {"cep.v1.Runner/Challenge", &cep__v1__challenge_request__descriptor,
        h_challenge},
    {"cep.v1.Runner/Prove", &cep__v1__prove_request__descriptor, h_prove},
    {"cep.v1.Runner/GetAssignment", &cep__v1__assignment_request__descriptor,
        h_get_assignment},
    {"cep.v1.Runner/PushEvents", &cep__v1__event_batch__descriptor,
        h_push_events},
    {"cep.v1.Runner/WatchCommands", &cep__v1__watch_request__descriptor,
        h_watch_commands},
    {"cep.v1.Runner/RecordFault", &cep__v1__fault_record__descriptor,
        h_record_fault},
    {"cep.v1.Runner/FaultReverted", &cep__v1__fault_record__descriptor,
        h_fault_reverted},
};
const size_t relay_runner_nmethods = sizeof(relay_runner_methods) /
    sizeof(relay_runner_methods[0]);
