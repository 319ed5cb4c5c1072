/*
 * session.c - the runner's link to the relay (see session.h): identity
 * loading, the proof, one call wrapper that tracks liveness and re-proves,
 * fault records, and the event sender and command threads.
 */
#define _GNU_SOURCE
#include "session.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pki.h"
#include "rpc.h"
#include "secret.h"
#include "tunnel.h"
#include "clock.h"
#include "files.h"
#include "run_id.h"

#define M_CHALLENGE "cep.v1.Runner/Challenge"
#define M_PROVE "cep.v1.Runner/Prove"
#define M_ASSIGN "cep.v1.Runner/GetAssignment"
#define M_PUSH "cep.v1.Runner/PushEvents"
#define M_WATCH "cep.v1.Runner/WatchCommands"
#define M_RECORD "cep.v1.Runner/RecordFault"
#define M_REVERTED "cep.v1.Runner/FaultReverted"

#define CALL_MS 5000
#define WATCH_MS 10000
#define BATCH_MAX 64
#define BATCH_WAIT_MS 200
/* Events not acknowledged yet (the relay or the delegate's disk refuses
 * them): past this many the run is aborted, so that its faults are
 * reverted and the queue stops growing; the delegate takes no more than
 * this from one run anyway (CEP_RUN_MAX_EVENTS). */
#define QUEUE_MAX 100000
/* A refused push is logged at most this often (it is retried every 2 s). */
#define PUSH_LOG_MS 30000
#define PEM_MAX (64u * 1024u)
/* Silence of the path in use before the other is tried: at start (no
 * assignment yet), and at most later (a quarter of the dead-man if that
 * is shorter, so the switch comes well before the dead-man fires). */
#define FALLBACK_MS 5000
#define FALLBACK_MIN_MS 1000

typedef struct queued {
	uint64_t seq;
	size_t len;
	uint8_t *buf; /* packed Event */
} queued;

struct cep_runner_session {
	cep_run_id run_id;
	char *ca_pem, *cert_pem, *key_pem;
	uint8_t *cert_der;
	size_t cert_der_len;
	cep_rpc_client *rpc;
	cep_runner_tunnel *tunnel; /* NULL: no control-plane fallback */
	Cep__V1__Assignment *asg;
	cep_runner_ctl *ctl;

	pthread_mutex_t auth_mtx;
	uint64_t auth_gen;

	pthread_mutex_t mtx; /* queue, liveness, stop */
	pthread_cond_t cond;
	queued *q;
	size_t qn, qcap;
	bool flush_now, stopping;
	int64_t last_answer; /* monotonic ms of the relay's last answer */
	bool via_tunnel;     /* the path calls take now */
	int64_t last_switch; /* monotonic ms of the last path switch */
	pthread_t sender, watcher, dog;
	bool threads, watching;
};

static int64_t deadman_ms(const cep_runner_session *s)
{
	return s->asg->deadman_ms > 0 ? s->asg->deadman_ms : 10000;
}

/* ------------------------------------------------------------ identity */

/* Through the one secret reader (lib/base/secret.h); the certificates
 * with its checks less the mode. The last link is followed: a Kubernetes
 * secret volume is a tree of links by design (runner.key ->
 * ..data/runner.key), made by the kubelet, root-owned 0440 with the pod's
 * fsGroup (0400 would lock a non-root runner out); the local executor's
 * folder is the delegate's, 0600 files. */
static int read_pem(const char *dir, const char *name, bool secret, char **out,
    cep_err *err)
{
	char path[4096];
	int rc = cep_files_path(path, sizeof(path), err, "%s/%s", dir, name);
	const cep_secret_opts o = {PEM_MAX, !secret, true, "the runner key"};
	cep_secret s;
	if (rc == CEP_OK)
		rc = cep_secret_read(path, &o, &s, err);
	if (rc == CEP_OK)
		*out = cep_secret_take(&s);
	return rc;
}

static int load_identity(cep_runner_session *s, const char *dir, cep_err *err)
{
	int rc = read_pem(dir, "ca.crt", false, &s->ca_pem, err);
	if (rc == CEP_OK)
		rc = read_pem(dir, "runner.crt", false, &s->cert_pem, err);
	if (rc == CEP_OK)
		rc = read_pem(dir, "runner.key", true, &s->key_pem, err);
	if (rc == CEP_OK)
		rc = cep_pki_cert_der(s->cert_pem, &s->cert_der,
		    &s->cert_der_len, err);
	if (rc != CEP_OK)
		cep_err_wrap(err, "identity");
	return rc;
}

/* ------------------------------------------------------------- calls */

static bool from_relay(int code)
{
	return code != CEP_UNAVAILABLE && code != CEP_DEADLINE_EXCEEDED;
}

static void note_answer(cep_runner_session *s)
{
	pthread_mutex_lock(&s->mtx);
	s->last_answer = cep_clock_mono_ms();
	pthread_mutex_unlock(&s->mtx);
}

static int64_t fallback_ms(const cep_runner_session *s)
{
	int64_t ms = s->asg != NULL ? deadman_ms(s) / 4 : FALLBACK_MS;
	return ms < FALLBACK_MIN_MS ? FALLBACK_MIN_MS :
	    ms > FALLBACK_MS        ? FALLBACK_MS :
	                              ms;
}

/* A call on `tunnel` found no answer: if that path is still the one in
 * use and has been silent for fallback_ms (and did not just become the
 * one in use), the other path is tried from now on. */
static void maybe_switch(cep_runner_session *s, bool tunnel)
{
	if (s->tunnel == NULL)
		return;
	pthread_mutex_lock(&s->mtx);
	int64_t now = cep_clock_mono_ms(), fb = fallback_ms(s);
	bool sw = s->via_tunnel == tunnel && now - s->last_answer >= fb &&
	    now - s->last_switch >= fb;
	if (sw) {
		s->via_tunnel = !tunnel;
		s->last_switch = now;
	}
	pthread_mutex_unlock(&s->mtx);
	if (sw && !tunnel)
		cep_log_warn(s->run_id.s,
		    "relay silent for %llds: calls go "
		    "through the control plane %s from now on",
		    (long long)((now - s->last_answer) / 1000),
		    runner_tunnel_host(s->tunnel));
	else if (sw)
		cep_log_warn(s->run_id.s,
		    "control-plane tunnel silent for %llds: "
		    "trying the relay again",
		    (long long)((now - s->last_answer) / 1000));
}

/* One call on the path in use; answers from either path feed the
 * dead-man. */
static int raw_call(cep_runner_session *s, const char *method,
    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rd,
    ProtobufCMessage **reply, int timeout_ms, cep_err *err)
{
	pthread_mutex_lock(&s->mtx);
	bool tunnel = s->via_tunnel;
	pthread_mutex_unlock(&s->mtx);
	bool answered;
	int rc;
	if (tunnel) {
		rc = runner_tunnel_invoke(s->tunnel, method, req, rd, reply,
		    timeout_ms, &answered, err);
	} else {
		rc = cep_rpc_invoke(s->rpc, method, req, rd, reply, timeout_ms,
		    err);
		answered = from_relay(rc);
	}
	if (answered)
		note_answer(s);
	else
		maybe_switch(s, tunnel);
	return rc;
}

/* Challenge + Prove on the current pipe. */
static int prove(cep_runner_session *s, cep_err *err)
{
	if (s->key_pem == NULL)
		return cep_err_set(err, CEP_CANCELLED, "session closed");
	Cep__V1__ChallengeRequest creq = CEP__V1__CHALLENGE_REQUEST__INIT;
	creq.run_id = s->run_id.s;
	Cep__V1__ChallengeReply *ch = NULL;
	int rc = raw_call(s, M_CHALLENGE, &creq.base,
	    &cep__v1__challenge_reply__descriptor, (ProtobufCMessage **)&ch,
	    CALL_MS, err);
	if (rc != CEP_OK)
		return rc;
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	rc = cep_pki_sign_proof(s->key_pem, ch->nonce.data, ch->nonce.len, &sig,
	    &sig_len, err);
	cep__v1__challenge_reply__free_unpacked(ch, NULL);
	if (rc != CEP_OK)
		return rc;
	Cep__V1__ProveRequest preq = CEP__V1__PROVE_REQUEST__INIT;
	preq.run_id = s->run_id.s;
	preq.cert_der.data = s->cert_der;
	preq.cert_der.len = s->cert_der_len;
	preq.signature.data = sig;
	preq.signature.len = sig_len;
	rc = raw_call(s, M_PROVE, &preq.base, NULL, NULL, CALL_MS, err);
	free(sig);
	if (rc == CEP_OK)
		cep_log_info(s->run_id.s, "identity proven to the relay%s",
		    s->via_tunnel ? " (through the control-plane tunnel)" : "");
	return rc;
}

/* A call that proves again and retries once on UNAUTHENTICATED (a new
 * pipe after a reconnect is not bound to the run). Only one thread
 * re-proves for a given generation. */
static int call(cep_runner_session *s, const char *method,
    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *rd,
    ProtobufCMessage **reply, int timeout_ms, cep_err *err)
{
	pthread_mutex_lock(&s->auth_mtx);
	uint64_t gen = s->auth_gen;
	pthread_mutex_unlock(&s->auth_mtx);
	int rc = raw_call(s, method, req, rd, reply, timeout_ms, err);
	if (rc != CEP_UNAUTHENTICATED)
		return rc;
	pthread_mutex_lock(&s->auth_mtx);
	if (s->auth_gen == gen) {
		rc = prove(s, err);
		if (rc == CEP_OK)
			s->auth_gen++;
	} else {
		rc = CEP_OK;
	}
	pthread_mutex_unlock(&s->auth_mtx);
	if (rc != CEP_OK)
		return rc;
	return raw_call(s, method, req, rd, reply, timeout_ms, err);
}

/* ------------------------------------------------------------- open */

/* server_name NULL: the RPC layer checks the URL's host. */
static int dial(cep_runner_session *s, const cep_runner_session_opts *o,
    cep_err *err)
{
	cep_rpc_tls tls = {.cert_pem = s->cert_pem,
	    .key_pem = s->key_pem,
	    .ca_pem = s->ca_pem,
	    .server_name = o->server_name};
	int rc = cep_rpc_client_new(&s->rpc, o->relay_url, &tls, err);
	if (rc != CEP_OK || o->cp_url == NULL || o->cp_url[0] == '\0')
		return rc;
	cep_runner_tunnel_opts to = {.url = o->cp_url,
	    .ca_file = o->cp_ca_file,
	    .proxy = o->cp_proxy,
	    .cert_pem = s->cert_pem,
	    .key_pem = s->key_pem};
	return runner_tunnel_new(&s->tunnel, &to, err);
}

/* Proves, retrying while the relay is not reachable, until the budget. */
static int connect_and_prove(cep_runner_session *s, int64_t budget_ms,
    cep_err *err)
{
	int64_t until = cep_clock_mono_ms() + budget_ms;
	pthread_mutex_lock(&s->mtx);
	s->last_answer = s->last_switch =
	    cep_clock_mono_ms(); /* the clock starts */
	pthread_mutex_unlock(&s->mtx);
	for (int attempt = 0;; attempt++) {
		pthread_mutex_lock(&s->auth_mtx);
		int rc = prove(s, err);
		pthread_mutex_unlock(&s->auth_mtx);
		if (rc == CEP_OK || !cep_rpc_retryable(rc) ||
		    cep_clock_mono_ms() >= until)
			return rc;
		cep_log_warn(s->run_id.s, "relay not reachable yet: %s",
		    err->msg);
		cep_clock_sleep_ms(cep_rpc_backoff_ms(attempt, 100, 2000));
	}
}

static int get_assignment(cep_runner_session *s, cep_err *err)
{
	Cep__V1__AssignmentRequest req = CEP__V1__ASSIGNMENT_REQUEST__INIT;
	req.run_id = s->run_id.s;
	int rc = CEP_UNAVAILABLE;
	for (int attempt = 0; attempt < 5; attempt++) {
		rc = call(s, M_ASSIGN, &req.base,
		    &cep__v1__assignment__descriptor,
		    (ProtobufCMessage **)&s->asg, CALL_MS, err);
		if (rc == CEP_OK || !cep_rpc_retryable(rc))
			break;
		cep_clock_sleep_ms(cep_rpc_backoff_ms(attempt, 100, 2000));
	}
	if (rc == CEP_OK && strcmp(s->asg->run_id, s->run_id.s) != 0)
		rc = cep_err_set(err, CEP_PERMISSION_DENIED,
		    "assignment is for run \"%.40s\", not ours",
		    s->asg->run_id);
	return rc;
}

int runner_session_open(cep_runner_session **out,
    const cep_runner_session_opts *o, cep_err *err)
{
	*out = NULL;
	cep_run_id id;
	if (!cep_run_id_parse(&id, o->run_id))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "session: not a "
		    "run id");
	cep_runner_session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "no memory");
	s->run_id = id;
	pthread_mutex_init(&s->auth_mtx, NULL);
	pthread_mutex_init(&s->mtx, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	int rc = load_identity(s, o->identity_dir, err);
	if (rc == CEP_OK)
		rc = dial(s, o, err);
	if (rc == CEP_OK)
		rc = connect_and_prove(s,
		    o->connect_ms > 0 ? o->connect_ms : 30000, err);
	if (rc == CEP_OK)
		rc = get_assignment(s, err);
	if (rc != CEP_OK) {
		cep_rpc_client_free(s->rpc);
		runner_tunnel_free(s->tunnel);
		if (s->asg != NULL)
			cep__v1__assignment__free_unpacked(s->asg, NULL);
		cep_pki_free_secret(s->key_pem);
		free(s->ca_pem);
		free(s->cert_pem);
		free(s->cert_der);
		free(s);
		return rc;
	}
	*out = s;
	return CEP_OK;
}

int64_t runner_session_deadman_ms(const cep_runner_session *s)
{
	return deadman_ms(s);
}

const Cep__V1__Assignment *runner_session_assignment(
    const cep_runner_session *s)
{
	return s->asg;
}

/* ------------------------------------------------------ events (sender) */

static void push_event(void *impl, const Cep__V1__Event *ev)
{
	cep_runner_session *s = impl;
	size_t len = cep__v1__event__get_packed_size(ev);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL) {
		cep_log_error(s->run_id.s, "no memory for event %llu: dropped",
		    (unsigned long long)ev->seq);
		return;
	}
	cep__v1__event__pack(ev, buf);
	pthread_mutex_lock(&s->mtx);
	if (s->qn == s->qcap) {
		size_t cap = s->qcap ? s->qcap * 2 : 256;
		queued *n = realloc(s->q, cap * sizeof(*n));
		if (n == NULL) {
			pthread_mutex_unlock(&s->mtx);
			free(buf);
			cep_log_error(s->run_id.s, "event queue full: dropped");
			return;
		}
		s->q = n;
		s->qcap = cap;
	}
	s->q[s->qn++] = (queued){.seq = ev->seq, .len = len, .buf = buf};
	if (s->qn >= BATCH_MAX)
		pthread_cond_broadcast(&s->cond);
	bool over = s->qn == QUEUE_MAX;
	pthread_mutex_unlock(&s->mtx);
	/* kept all the same: a dropped event would be a gap in seq that the
	 * delegate never journals past */
	if (over)
		runner_ctl_abort(s->ctl,
		    "%d events not acknowledged by the relay; aborting",
		    QUEUE_MAX);
}

/* With s->mtx held: drops events up to acked. */
static void drop_acked(cep_runner_session *s, uint64_t acked)
{
	size_t k = 0;
	while (k < s->qn && s->q[k].seq <= acked)
		free(s->q[k++].buf);
	memmove(s->q, s->q + k, (s->qn - k) * sizeof(*s->q));
	s->qn -= k;
	if (s->qn == 0)
		pthread_cond_broadcast(&s->cond);
}

/* Sends the oldest unacknowledged events (up to BATCH_MAX); called with
 * s->mtx held, releases it during the call. */
static int send_batch(cep_runner_session *s, cep_err *err)
{
	size_t n = s->qn < BATCH_MAX ? s->qn : BATCH_MAX;
	Cep__V1__Event *evs[BATCH_MAX];
	size_t got = 0;
	for (size_t i = 0; i < n; i++) {
		evs[got] = cep__v1__event__unpack(NULL, s->q[i].len,
		    s->q[i].buf);
		if (evs[got] != NULL)
			got++;
	}
	pthread_mutex_unlock(&s->mtx);
	Cep__V1__EventBatch b = CEP__V1__EVENT_BATCH__INIT;
	b.run_id = s->run_id.s;
	b.n_events = got;
	b.events = evs;
	Cep__V1__EventAck *ack = NULL;
	int rc = call(s, M_PUSH, &b.base, &cep__v1__event_ack__descriptor,
	    (ProtobufCMessage **)&ack, CALL_MS, err);
	for (size_t i = 0; i < got; i++)
		cep__v1__event__free_unpacked(evs[i], NULL);
	pthread_mutex_lock(&s->mtx);
	if (rc == CEP_OK) {
		drop_acked(s, ack->acked_seq);
		cep__v1__event_ack__free_unpacked(ack, NULL);
	}
	return rc;
}

/* Dead-man: no answer from the relay for longer than deadman_ms. Called
 * with s->mtx held. */
static void check_deadman(cep_runner_session *s)
{
	int64_t dm = deadman_ms(s);
	int64_t silent = cep_clock_mono_ms() - s->last_answer;
	if (silent > dm)
		runner_ctl_abort(s->ctl,
		    "dead-man: relay unreachable for "
		    "%llds",
		    (long long)(silent / 1000));
}

static void wait_ms(cep_runner_session *s, int64_t ms)
{
	int64_t until = cep_clock_mono_ms() + ms;
	struct timespec ts = {.tv_sec = until / 1000,
	    .tv_nsec = (until % 1000) * 1000000};
	pthread_cond_timedwait(&s->cond, &s->mtx, &ts);
}

/* With s->mtx held: is a batch (or, with nothing queued, an empty batch as
 * a heartbeat, so a quiet run does not look dead) due now? Else how long
 * to wait. */
static bool batch_due(cep_runner_session *s, int64_t *first_wait, int64_t *wait)
{
	int64_t now = cep_clock_mono_ms();
	int64_t beat = deadman_ms(s) / 4;
	if (s->qn == 0) {
		*first_wait = 0;
		if (now - s->last_answer >= beat)
			return true;
		*wait = BATCH_WAIT_MS;
		return false;
	}
	if (*first_wait == 0)
		*first_wait = now;
	if (s->qn >= BATCH_MAX || s->flush_now ||
	    now - *first_wait >= BATCH_WAIT_MS)
		return true;
	*wait = BATCH_WAIT_MS - (now - *first_wait);
	return false;
}

static void *sender(void *arg)
{
	cep_runner_session *s = arg;
	int attempt = 0;
	int64_t first_wait = 0; /* when the oldest unsent event was seen */
	int64_t logged = 0;     /* the last "pushing events" warning */
	pthread_mutex_lock(&s->mtx);
	while (!s->stopping) {
		int64_t wait = 0;
		if (!batch_due(s, &first_wait, &wait)) {
			wait_ms(s, wait);
			continue;
		}
		cep_err err = {0};
		if (send_batch(s, &err) == CEP_OK) {
			attempt = 0;
			first_wait = 0;
			continue;
		}
		if (attempt == 0 ||
		    cep_clock_mono_ms() - logged >= PUSH_LOG_MS) {
			cep_log_warn(s->run_id.s,
			    "pushing events: %s (%zu queued; retrying)",
			    err.msg, s->qn);
			logged = cep_clock_mono_ms();
		}
		/* the whole backoff: new events wake the cond, and must not
		 * turn a refusal (a full disk) into a retry per event; only
		 * a flush that starts now cuts it short */
		bool flushing = s->flush_now;
		int64_t until = cep_clock_mono_ms() +
		    cep_rpc_backoff_ms(attempt++, 100, 2000);
		while (!s->stopping && (flushing || !s->flush_now) &&
		    cep_clock_mono_ms() < until)
			wait_ms(s, until - cep_clock_mono_ms());
	}
	pthread_mutex_unlock(&s->mtx);
	return NULL;
}

/* Dead-man and deadline, on a thread of their own: the sender may sit in
 * a call for CALL_MS, longer than a short dead-man interval. */
static void *watchdog(void *arg)
{
	cep_runner_session *s = arg;
	pthread_mutex_lock(&s->mtx);
	while (!s->stopping) {
		check_deadman(s);
		runner_ctl_aborted(s->ctl, NULL, 0); /* raises "deadline" */
		wait_ms(s, 100);
	}
	pthread_mutex_unlock(&s->mtx);
	return NULL;
}

static bool flush(void *impl, int64_t timeout_ms)
{
	cep_runner_session *s = impl;
	int64_t until = cep_clock_mono_ms() + timeout_ms;
	pthread_mutex_lock(&s->mtx);
	s->flush_now = true;
	pthread_cond_broadcast(&s->cond);
	while (s->qn > 0 && cep_clock_mono_ms() < until)
		wait_ms(s, until - cep_clock_mono_ms());
	bool empty = s->qn == 0;
	s->flush_now = false;
	pthread_mutex_unlock(&s->mtx);
	return empty;
}

/* --------------------------------------------------- commands (watcher) */

static bool stopping(cep_runner_session *s)
{
	pthread_mutex_lock(&s->mtx);
	bool st = s->stopping;
	pthread_mutex_unlock(&s->mtx);
	return st;
}

static void handle_commands(cep_runner_session *s, Cep__V1__CommandBatch *b,
    uint64_t *after)
{
	for (size_t i = 0; i < b->n_commands; i++) {
		Cep__V1__Command *c = b->commands[i];
		if (c->seq > *after)
			*after = c->seq;
		if (c->kind != CEP__V1__COMMAND__KIND__ABORT)
			continue;
		cep_log_warn(s->run_id.s, "abort received: %s",
		    c->reason[0] ? c->reason : "no reason given");
		if (c->reason[0] != '\0')
			runner_ctl_abort(s->ctl, "%.200s", c->reason);
		else
			runner_ctl_abort(s->ctl, "aborted by operator");
	}
}

static void *watcher(void *arg)
{
	cep_runner_session *s = arg;
	uint64_t after = 0;
	int attempt = 0;
	while (!stopping(s)) {
		Cep__V1__WatchRequest req = CEP__V1__WATCH_REQUEST__INIT;
		req.run_id = s->run_id.s;
		req.after_seq = after;
		Cep__V1__CommandBatch *b = NULL;
		cep_err err = {0};
		int rc = call(s, M_WATCH, &req.base,
		    &cep__v1__command_batch__descriptor,
		    (ProtobufCMessage **)&b, WATCH_MS, &err);
		if (rc == CEP_OK) {
			attempt = 0;
			handle_commands(s, b, &after);
			cep__v1__command_batch__free_unpacked(b, NULL);
			continue;
		}
		if (stopping(s))
			break;
		if (rc != CEP_DEADLINE_EXCEEDED)
			cep_log_warn(s->run_id.s, "watching commands: %s",
			    err.msg);
		cep_clock_sleep_ms(cep_rpc_backoff_ms(attempt++, 100, 2000));
	}
	return NULL;
}

/* ------------------------------------------------------- fault records */

/* Retries while the relay cannot be reached, until the run aborts (the
 * dead-man makes sure it does) or, for reports after the fact, a bound. */
static int fault_call(cep_runner_session *s, const char *method,
    const Cep__V1__FaultRecord *rec, int64_t bound_ms, cep_err *err)
{
	int64_t until = cep_clock_mono_ms() + bound_ms;
	for (int attempt = 0;; attempt++) {
		Cep__V1__FaultAck *ack = NULL;
		int rc = call(s, method, &rec->base,
		    &cep__v1__fault_ack__descriptor, (ProtobufCMessage **)&ack,
		    CALL_MS, err);
		if (rc == CEP_OK) {
			bool ok = ack->recorded;
			cep__v1__fault_ack__free_unpacked(ack, NULL);
			return ok ? CEP_OK :
			            cep_err_set(err, CEP_FAILED_PRECONDITION,
			                "%s: the delegate did not record %s",
			                method, rec->fault_id);
		}
		if (!cep_rpc_retryable(rc))
			return rc;
		if (bound_ms > 0 && cep_clock_mono_ms() >= until)
			return rc;
		if (bound_ms == 0 && runner_ctl_aborted(s->ctl, NULL, 0))
			return cep_err_set(err, CEP_ABORTED,
			    "%s: run aborted while "
			    "waiting for the relay",
			    method);
		cep_clock_sleep_ms(cep_rpc_backoff_ms(attempt, 100, 1000));
	}
}

static int record_fault(void *impl, const Cep__V1__FaultRecord *rec,
    cep_err *err)
{
	return fault_call(impl, M_RECORD, rec, 0, err);
}

static int fault_reverted(void *impl, const Cep__V1__FaultRecord *rec,
    cep_err *err)
{
	return fault_call(impl, M_REVERTED, rec, 5000, err);
}

static const cep_runner_sink_ops session_ops = {
    .push = push_event,
    .record_fault = record_fault,
    .fault_reverted = fault_reverted,
    .flush = flush,
};

const cep_runner_sink_ops *runner_session_ops(void)
{
	return &session_ops;
}

/* ------------------------------------------------------- start / close */

int runner_session_start(cep_runner_session *s, cep_runner_ctl *ctl,
    cep_err *err)
{
	s->ctl = ctl;
	if (s->asg->deadline_ms > 0)
		runner_ctl_set_deadline(ctl,
		    cep_clock_mono_ms() +
		        (s->asg->deadline_ms - cep_clock_now_ms()));
	pthread_mutex_lock(&s->mtx);
	s->last_answer = cep_clock_mono_ms();
	pthread_mutex_unlock(&s->mtx);
	if (pthread_create(&s->sender, NULL, sender, s) != 0)
		return cep_err_set(err, CEP_INTERNAL,
		    "cannot start event sender");
	if (pthread_create(&s->dog, NULL, watchdog, s) != 0) {
		s->stopping = true;
		pthread_join(s->sender, NULL);
		return cep_err_set(err, CEP_INTERNAL,
		    "cannot start dead-man check");
	}
	s->threads = true;
	if (pthread_create(&s->watcher, NULL, watcher, s) != 0) {
		runner_session_close(s);
		return cep_err_set(err, CEP_INTERNAL,
		    "cannot start command watcher");
	}
	s->watching = true;
	return CEP_OK;
}

void runner_session_close(cep_runner_session *s)
{
	pthread_mutex_lock(&s->mtx);
	s->stopping = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mtx);
	if (s->threads) {
		pthread_join(s->sender, NULL);
		pthread_join(s->dog, NULL);
	}
	s->threads = false;
	/* the watcher may be parked in a long-poll: closing the connection
	 * ends that call at once */
	cep_rpc_client_shutdown(s->rpc);
	runner_tunnel_cancel(s->tunnel);
	if (s->watching)
		pthread_join(s->watcher, NULL);
	s->watching = false;
	pthread_mutex_lock(&s->auth_mtx); /* a prove in progress finishes */
	cep_pki_free_secret(s->key_pem);
	s->key_pem = NULL;
	pthread_mutex_unlock(&s->auth_mtx);
}

void runner_session_free(cep_runner_session *s)
{
	if (s == NULL)
		return;
	runner_session_close(s);
	cep_rpc_client_free(s->rpc);
	runner_tunnel_free(s->tunnel); /* before the key it points to */
	if (s->asg != NULL)
		cep__v1__assignment__free_unpacked(s->asg, NULL);
	for (size_t i = 0; i < s->qn; i++)
		free(s->q[i].buf);
	free(s->q);
	free(s->ca_pem);
	free(s->cert_pem);
	free(s->cert_der);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mtx);
	pthread_mutex_destroy(&s->auth_mtx);
	free(s);
}
