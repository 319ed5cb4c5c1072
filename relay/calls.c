/*
 * calls.c - the call helpers the relay's services share (relay_int.h):
 * refusal logging and counting, delayed closes of refused pipes, parked
 * WatchCommands calls (long-polls), the ticker thread that answers them
 * before their deadline and closes the pipes when due, and the count of
 * answered calls. Lifecycle and wiring are relay.c's.
 */
#define _GNU_SOURCE
#include "relay_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "clock.h"
#include "run_id.h"

/* ------------------------------------------------------------ refusals */

const char *const relay_refusal_names[CEP_REFUSE_N] = {
    [CEP_REFUSE_TLS_UNVERIFIED] = "tls_unverified",
    [CEP_REFUSE_CERT_EXPIRED] = "cert_expired",
    [CEP_REFUSE_CERT_UNTRUSTED] = "cert_untrusted",
    [CEP_REFUSE_CERT_RUN_MISMATCH] = "cert_run_mismatch",
    [CEP_REFUSE_UNKNOWN_RUN] = "unknown_run",
    [CEP_REFUSE_RUN_FINISHED] = "run_finished",
    [CEP_REFUSE_IDENTITY_MISMATCH] = "identity_mismatch",
    [CEP_REFUSE_NO_CHALLENGE] = "no_challenge",
    [CEP_REFUSE_BAD_SIGNATURE] = "bad_signature",
    [CEP_REFUSE_NOT_AUTHENTICATED] = "not_authenticated",
    [CEP_REFUSE_WRONG_RUN] = "wrong_run",
    [CEP_REFUSE_RUN_ENDED] = "run_ended",
    [CEP_REFUSE_IDENTITY_EXPIRED] = "identity_expired",
    [CEP_REFUSE_BAD_REQUEST] = "bad_request",
};

void relay_safe(char *dst, size_t n, const char *src)
{
	size_t i = 0;
	if (n == 0)
		return;
	if (src == NULL || src[0] == '\0')
		src = "-";
	for (; src[i] != '\0' && i + 1 < n && i < 48; i++) {
		char ch = src[i];
		bool ok = (ch >= 'a' && ch <= 'z') ||
		    (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.' || ch == ':' ||
		    ch == '/' || ch == '[' || ch == ']';
		dst[i] = ok ? ch : '?';
	}
	dst[i] = '\0';
}

void relay_refuse(cep_relay *r, cep_rpc_call *call, enum cep_refusal why,
    int code, const char *bound, const char *requested, const char *fmt, ...)
{
	char msg[CEP_ERR_MSG_MAX], b[64], q[64], peer[64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	relay_safe(b, sizeof(b), bound);
	relay_safe(q, sizeof(q), requested);
	relay_safe(peer, sizeof(peer), cep_rpc_call_peer(call));
	const char *method = cep_rpc_call_method(call);
	const char *short_m = method ? strrchr(method, '/') : NULL;

	pthread_mutex_lock(&r->mu);
	r->refused++;
	r->by_reason[why]++;
	pthread_mutex_unlock(&r->mu);
	cep_metrics_inc1(r->m_refusals, relay_refusal_names[why]);

	/* the run the line is about: the one asked for when it is a real
	 * run id, else the bound one */
	const char *run = cep_run_id_valid(requested) ?
	    requested :
	    (bound != NULL && bound[0] != '\0' ? bound : NULL);
	uint64_t held = 0;
	char more[64] = "";
	bool due = relay_refuse_log_due(r, cep_rpc_call_peer(call), &held);
	if (held > 0)
		snprintf(more, sizeof(more), "; %llu more from it unlogged",
		    (unsigned long long)held);
	if (due)
		cep_log_warn(run,
		    "refused %s from %s: %s (reason=%s bound=%s "
		    "requested=%s)%s",
		    short_m ? short_m + 1 : "?", peer, msg,
		    relay_refusal_names[why], b, q, more);
	cep_rpc_call_fail(call, code, "%s", msg);
}

void relay_close_later(cep_relay *r, uint32_t pipe)
{
	bool now = false;
	pthread_mutex_lock(&r->mu);
	if (r->stopping) {
		pthread_mutex_unlock(&r->mu);
		return;
	}
	if (r->nclose < CEP_RELAY_MAX_CLOSES) {
		r->closes[r->nclose].pipe = pipe;
		r->closes[r->nclose].at = cep_clock_mono_ms() +
		    CEP_RELAY_CLOSE_DELAY_MS;
		r->nclose++;
		pthread_cond_signal(&r->cv);
	} else {
		now = true; /* a flood of refused peers: no grace for them */
	}
	pthread_mutex_unlock(&r->mu);
	if (now)
		cep_rpc_server_close_pipe(r->runners, (cep_pipe_id){pipe});
}

/* -------------------------------------------------------- parked calls */

void relay_reply_empty(cep_rpc_call *c)
{
	Cep__V1__CommandBatch empty = CEP__V1__COMMAND_BATCH__INIT;
	cep_rpc_call_reply(c, &empty.base);
}

/* Unlinks and returns the oldest parked call of run_id when the run
 * already has CEP_RELAY_PARKED_PER_RUN of them. Caller holds mu. */
static cep_parked *evict_if_full(cep_relay *r, const char *run_id)
{
	size_t n = 0;
	cep_parked **oldest = NULL;
	for (cep_parked **pp = &r->parked; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->run_id.s, run_id) != 0)
			continue;
		n++;
		oldest = pp; /* the list is newest first */
	}
	if (n < CEP_RELAY_PARKED_PER_RUN || oldest == NULL)
		return NULL;
	cep_parked *p = *oldest;
	*oldest = p->next;
	return p;
}

bool relay_watch(cep_relay *r, cep_rpc_call *call, const char *run_id,
    uint64_t after_seq, Cep__V1__CommandBatch **batch)
{
	*batch = NULL;
	int64_t wake = cep_rpc_call_deadline(call) - CEP_RELAY_WATCH_MARGIN_MS;
	cep_parked *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return true;
	p->call = call;
	p->pipe = cep_rpc_call_pipe(call).id;
	cep_run_id_parse(&p->run_id, run_id); /* authorized: a run id */
	p->after_seq = after_seq;
	p->wake_mono = wake;

	pthread_mutex_lock(&r->mu);
	cep_relay_run *run = relay_registry_find(r->reg, run_id);
	if (run != NULL) {
		relay_registry_trim(run, after_seq);
		*batch = relay_registry_pending(run, after_seq);
	}
	if (run == NULL || *batch != NULL || r->stopping ||
	    wake <= cep_clock_mono_ms()) {
		pthread_mutex_unlock(&r->mu);
		free(p);
		return true;
	}
	cep_parked *evicted = evict_if_full(r, run_id);
	p->next = r->parked;
	r->parked = p;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	if (evicted != NULL) {
		relay_reply_empty(evicted->call);
		free(evicted);
	}
	return false;
}

/* A parked call and what to answer it with (NULL = empty batch). */
typedef struct wake_item {
	cep_parked *p;
	Cep__V1__CommandBatch *batch;
} wake_item;

static void answer_items(wake_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (items[i].batch != NULL) {
			cep_rpc_call_reply(items[i].p->call,
			    &items[i].batch->base);
			protobuf_c_message_free_unpacked(&items[i].batch->base,
			    NULL);
		} else {
			relay_reply_empty(items[i].p->call);
		}
		free(items[i].p);
	}
	free(items);
}

/* Unlinks parked calls for which want() is true. Caller holds mu. */
typedef bool (*want_fn)(cep_relay *r, cep_parked *p, void *arg,
    Cep__V1__CommandBatch **batch);

static size_t take_parked(cep_relay *r, want_fn want, void *arg,
    wake_item **out)
{
	size_t n = 0, cap = 0;
	*out = NULL;
	for (cep_parked *p = r->parked; p != NULL; p = p->next)
		cap++;
	if (cap == 0 || (*out = calloc(cap, sizeof(**out))) == NULL)
		return 0;
	for (cep_parked **pp = &r->parked; *pp != NULL;) {
		Cep__V1__CommandBatch *batch = NULL;
		if (!want(r, *pp, arg, &batch)) {
			pp = &(*pp)->next;
			continue;
		}
		(*out)[n].p = *pp;
		(*out)[n++].batch = batch;
		*pp = (*pp)->next;
	}
	return n;
}

typedef struct wake_arg {
	const char *run_id;
	bool gone;
} wake_arg;

static bool want_run(cep_relay *r, cep_parked *p, void *arg,
    Cep__V1__CommandBatch **batch)
{
	wake_arg *w = arg;
	if (strcmp(p->run_id.s, w->run_id) != 0)
		return false;
	if (w->gone)
		return true;
	cep_relay_run *run = relay_registry_find(r->reg, p->run_id.s);
	*batch = run != NULL ? relay_registry_pending(run, p->after_seq) : NULL;
	return *batch != NULL;
}

void relay_wake_run(cep_relay *r, const char *run_id, bool gone)
{
	wake_item *items;
	wake_arg w = {run_id, gone};
	pthread_mutex_lock(&r->mu);
	size_t n = take_parked(r, want_run, &w, &items);
	pthread_mutex_unlock(&r->mu);
	answer_items(items, n);
}

static bool want_pipe(cep_relay *r, cep_parked *p, void *arg,
    Cep__V1__CommandBatch **batch)
{
	(void)r;
	(void)batch;
	return p->pipe == *(uint32_t *)arg;
}

/* The pipe is gone: its parked calls can only be answered into the void,
 * but answering frees their contexts now rather than at their deadline. */
void relay_forget_pipe_calls(cep_relay *r, uint32_t pipe)
{
	wake_item *items;
	pthread_mutex_lock(&r->mu);
	size_t n = take_parked(r, want_pipe, &pipe, &items);
	pthread_mutex_unlock(&r->mu);
	answer_items(items, n);
}

static bool want_due(cep_relay *r, cep_parked *p, void *arg,
    Cep__V1__CommandBatch **batch)
{
	(void)r;
	(void)batch;
	return arg == NULL || p->wake_mono <= *(int64_t *)arg;
}

/* ------------------------------------------------------------- ticker */

/* Next time the ticker has work: earliest parked deadline or close. */
static int64_t next_due(cep_relay *r, int64_t now)
{
	int64_t next = now + 1000;
	for (cep_parked *p = r->parked; p != NULL; p = p->next)
		if (p->wake_mono < next)
			next = p->wake_mono;
	for (size_t i = 0; i < r->nclose; i++)
		if (r->closes[i].at < next)
			next = r->closes[i].at;
	return next;
}

/* Unlinks the closes that are due into out. Caller holds mu. */
static size_t take_closes(cep_relay *r, int64_t now, uint32_t *out)
{
	size_t n = 0, keep = 0;
	for (size_t i = 0; i < r->nclose; i++) {
		if (r->closes[i].at <= now)
			out[n++] = r->closes[i].pipe;
		else
			r->closes[keep++] = r->closes[i];
	}
	r->nclose = keep;
	return n;
}

void *relay_ticker_main(void *arg)
{
	cep_relay *r = arg;
	uint32_t *due = calloc(CEP_RELAY_MAX_CLOSES, sizeof(*due));
	pthread_mutex_lock(&r->mu);
	while (!r->stopping && due != NULL) {
		atomic_fetch_add(&r->ticks, 1);
		int64_t now = cep_clock_mono_ms();
		int64_t next = next_due(r, now);
		if (next > now) {
			struct timespec ts = {next / 1000,
			    (next % 1000) * 1000000L};
			pthread_cond_timedwait(&r->cv, &r->mu, &ts);
			continue;
		}
		wake_item *items;
		size_t n = take_parked(r, want_due, &now, &items);
		size_t nc = take_closes(r, now, due);
		pthread_mutex_unlock(&r->mu);
		answer_items(items, n);
		for (size_t i = 0; i < nc; i++)
			cep_rpc_server_close_pipe(r->runners,
			    (cep_pipe_id){due[i]});
		pthread_mutex_lock(&r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	free(due);
	return NULL;
}

void relay_calls_stop(cep_relay *r)
{
	/* from here no call parks: each is answered at once */
	wake_item *items;
	pthread_mutex_lock(&r->mu);
	r->stopping = true;
	size_t n = take_parked(r, want_due, NULL, &items);
	r->nclose = 0;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	answer_items(items, n);
}

void relay_call_done(const char *method, int code, void *arg)
{
	cep_relay *r = arg;
	static const char pfx[] = "cep.v1.";
	if (strncmp(method, pfx, sizeof(pfx) - 1) == 0)
		method += sizeof(pfx) - 1; /* "Runner/PushEvents" */
	cep_metrics_inc2(r->m_calls, method, cep_err_code_name(code));
}
