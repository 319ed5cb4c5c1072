/*
 * tunnel.c - runner calls that come through the control plane (tunnel.h).
 *
 * Threads: the poller long-polls TunnelPoll and hands each call to the
 * Runner server (cep_rpc_server_dispatch: decoded and authorised like any
 * other call); replies, which come from any thread (a parked
 * WatchCommands from the relay's ticker), are queued and the sender posts
 * them with TunnelReply, so no handler or ticker waits on HTTPS.
 *
 * What is trusted: nothing the plane sends is taken on faith. Its run id
 * and session only choose the virtual pipe; the runner still proves
 * possession of its key over a nonce the relay made (Prove), and the
 * relay checks the certificate itself (cep_pki_verify_der). The pipe is
 * marked verified because the relay cannot see the runner's TLS session;
 * see docs/relay.md for what a hostile plane could and could not do.
 */
#define _GNU_SOURCE
#include "tunnel_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cep.pb-c.h"
#include "cp.h"
#include "log.h"
#include "clock.h"
#include "run_id.h"

#define SESSION_IDLE_MS (10 * 60 * 1000) /* > any call's deadline */
#define POLL_MAX 64
#define REPLY_TRIES 3

typedef struct session {
	cep_run_id run_id;
	char id[65];
	uint32_t pipe;
	int64_t used;
} session;

typedef struct reply {
	uint64_t id;
	uint8_t *buf;
	size_t len;
	struct reply *next;
} reply;

typedef struct out_arg {
	struct cep_tunnel *t;
	uint64_t id;
} out_arg;

struct cep_tunnel {
	cep_cp *cp;
	cep_rpc_server *runners;
	cep_tunnel_gone_fn gone;
	void *gone_arg;
	char appliance[64];
	int poll_wait_ms;
	atomic_bool stop;
	pthread_t poller, sender;
	bool poller_started, sender_started;

	pthread_mutex_t mu;
	pthread_cond_t cv; /* the sender waits for replies */
	session sessions[SESSION_MAX];
	size_t nsessions;
	uint32_t next_pipe;
	reply *head, *tail;
	size_t nreplies;
};

static void snooze(cep_tunnel *t, int64_t ms)
{
	int64_t end = cep_clock_mono_ms() + ms;
	while (!atomic_load(&t->stop) && cep_clock_mono_ms() < end)
		cep_clock_sleep_ms(50);
}

/* ------------------------------------------------------------- replies */

/* cep_rpc_out_fn: any thread, must not block for long. */
static void on_reply(const uint8_t *frame, size_t len, void *arg)
{
	out_arg *oa = arg;
	cep_tunnel *t = oa->t;
	reply *r = calloc(1, sizeof(*r));
	uint8_t *buf = r != NULL ? malloc(len ? len : 1) : NULL;
	pthread_mutex_lock(&t->mu);
	bool keep = buf != NULL && frame != NULL && !atomic_load(&t->stop) &&
	    t->nreplies < REPLY_QUEUE_MAX;
	if (keep) {
		memcpy(buf, frame, len);
		*r = (reply){.id = oa->id, .buf = buf, .len = len};
		if (t->tail != NULL)
			t->tail->next = r;
		else
			t->head = r;
		t->tail = r;
		t->nreplies++;
		pthread_cond_signal(&t->cv);
	}
	pthread_mutex_unlock(&t->mu);
	if (!keep) { /* the plane answers its runner 504; it retries */
		free(buf);
		free(r);
	}
	free(oa);
}

/* Posts one reply, retrying a little: a reply the plane no longer waits
 * for (NOT_FOUND: its runner gave up) is dropped. */
static void send_reply(cep_tunnel *t, reply *r)
{
	Cep__V1__CpTunnelReply req = CEP__V1__CP_TUNNEL_REPLY__INIT;
	req.appliance = t->appliance;
	req.id = r->id;
	req.envelope.data = r->buf;
	req.envelope.len = r->len;
	for (int attempt = 0; attempt < REPLY_TRIES; attempt++) {
		ProtobufCMessage *ack = NULL;
		cep_err err = {0};
		int rv = cep_cp_call(t->cp, "TunnelReply", &req.base,
		    &cep__v1__cp_ack__descriptor, &ack, 0, NULL, &err);
		if (rv == CEP_OK) {
			protobuf_c_message_free_unpacked(ack, NULL);
			return;
		}
		if (rv == CEP_NOT_FOUND || !cep_rpc_retryable(rv) ||
		    atomic_load(&t->stop)) {
			cep_log_debug(NULL, "tunnel: reply %llu dropped: %s",
			    (unsigned long long)r->id, err.msg);
			return;
		}
		snooze(t, cep_rpc_backoff_ms(attempt, 100, 1000));
	}
	cep_log_warn(NULL,
	    "tunnel: reply %llu not delivered to the control "
	    "plane",
	    (unsigned long long)r->id);
}

/* The oldest queued reply, or NULL. Caller holds mu. */
static reply *queue_pop(cep_tunnel *t)
{
	reply *r = t->head;
	if (r == NULL)
		return NULL;
	if ((t->head = r->next) == NULL)
		t->tail = NULL;
	t->nreplies--;
	return r;
}

bool relay_tunnel_reply_pop(cep_tunnel *t, uint64_t *id, uint8_t **buf,
    size_t *len)
{
	pthread_mutex_lock(&t->mu);
	reply *r = queue_pop(t);
	pthread_mutex_unlock(&t->mu);
	if (r == NULL)
		return false;
	*id = r->id;
	*buf = r->buf;
	*len = r->len;
	free(r);
	return true;
}

static void *sender_main(void *arg)
{
	cep_tunnel *t = arg;
	pthread_mutex_lock(&t->mu);
	while (!atomic_load(&t->stop)) {
		reply *r = queue_pop(t);
		if (r == NULL) {
			pthread_cond_wait(&t->cv, &t->mu);
			continue;
		}
		pthread_mutex_unlock(&t->mu);
		send_reply(t, r);
		free(r->buf);
		free(r);
		pthread_mutex_lock(&t->mu);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

/* ------------------------------------------------------------ sessions */

static bool session_ok(const char *s)
{
	size_t n = strlen(s);
	return n >= 16 && n <= 64 && strspn(s, "0123456789abcdef") == n;
}

/* The virtual pipe of (run_id, id), made if new; 0 when the table is
 * full of live sessions. Caller holds mu. */
static uint32_t session_pipe(cep_tunnel *t, const cep_run_id *run_id,
    const char *id, int64_t now)
{
	for (size_t i = 0; i < t->nsessions; i++) {
		session *s = &t->sessions[i];
		if (cep_run_id_is(&s->run_id, run_id->s) &&
		    strcmp(s->id, id) == 0) {
			s->used = now;
			return s->pipe;
		}
	}
	if (t->nsessions == SESSION_MAX)
		return 0;
	session *s = &t->sessions[t->nsessions++];
	s->run_id = *run_id;
	snprintf(s->id, sizeof(s->id), "%s", id);
	s->pipe = CEP_RPC_VIRTUAL_PIPE |
	    (++t->next_pipe & ~CEP_RPC_VIRTUAL_PIPE);
	s->used = now;
	return s->pipe;
}

/* Drops idle sessions; their pipes go the way of closed connections. */
static void sessions_expire(cep_tunnel *t, int64_t now)
{
	uint32_t gone[64];
	size_t n = 0;
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->nsessions && n < 64;) {
		if (now - t->sessions[i].used > SESSION_IDLE_MS) {
			gone[n++] = t->sessions[i].pipe;
			t->sessions[i] = t->sessions[--t->nsessions];
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&t->mu);
	for (size_t i = 0; i < n; i++)
		t->gone((cep_pipe_id){gone[i]}, t->gone_arg);
}

/* ------------------------------------------------------------- calls */

/* A call the relay will not run: answered with an error Envelope. */
static void refuse_call(cep_tunnel *t, uint64_t id, int code, const char *why)
{
	Cep__V1__Envelope env = CEP__V1__ENVELOPE__INIT;
	env.code = code;
	env.error = (char *)why;
	uint8_t buf[512];
	out_arg *oa = malloc(sizeof(*oa));
	if (oa == NULL ||
	    cep__v1__envelope__get_packed_size(&env) > sizeof(buf)) {
		free(oa);
		return;
	}
	*oa = (out_arg){t, id};
	on_reply(buf, cep__v1__envelope__pack(&env, buf), oa);
}

static void take_call(cep_tunnel *t, const Cep__V1__CpTunnelCall *c)
{
	cep_run_id run;
	if (!cep_run_id_parse(&run, c->run_id) || !session_ok(c->session)) {
		cep_log_warn(NULL,
		    "tunnel: call %llu refused: bad run id or "
		    "session from the control plane",
		    (unsigned long long)c->id);
		refuse_call(t, c->id, CEP_INVALID_ARGUMENT,
		    "tunnel: bad run id "
		    "or session");
		return;
	}
	pthread_mutex_lock(&t->mu);
	uint32_t pipe = session_pipe(t, &run, c->session, cep_clock_mono_ms());
	pthread_mutex_unlock(&t->mu);
	if (pipe == 0) {
		refuse_call(t, c->id, CEP_RESOURCE_EXHAUSTED,
		    "tunnel: too many "
		    "sessions");
		return;
	}
	out_arg *oa = malloc(sizeof(*oa));
	if (oa == NULL)
		return; /* the plane answers 504; the runner retries */
	*oa = (out_arg){t, c->id};
	char peer[64];
	snprintf(peer, sizeof(peer), "cp-tunnel/%.8s", c->session);
	cep_rpc_server_dispatch(t->runners, (cep_pipe_id){pipe}, true, peer,
	    c->envelope.data, c->envelope.len, on_reply, oa);
}

void relay_tunnel_take_calls(cep_tunnel *t, const Cep__V1__CpTunnelCalls *calls)
{
	for (size_t i = 0; i < calls->n_calls; i++)
		take_call(t, calls->calls[i]);
}

size_t relay_tunnel_sessions(cep_tunnel *t)
{
	pthread_mutex_lock(&t->mu);
	size_t n = t->nsessions;
	pthread_mutex_unlock(&t->mu);
	return n;
}

static void *poller_main(void *arg)
{
	cep_tunnel *t = arg;
	int attempt = 0;
	int64_t last_expire = cep_clock_mono_ms();
	while (!atomic_load(&t->stop)) {
		Cep__V1__CpTunnelPoll req = CEP__V1__CP_TUNNEL_POLL__INIT;
		req.appliance = t->appliance;
		req.wait_ms = (uint32_t)t->poll_wait_ms;
		req.max = POLL_MAX;
		ProtobufCMessage *rep = NULL;
		int64_t retry = 0;
		cep_err err = {0};
		int rv = cep_cp_call(t->cp, "TunnelPoll", &req.base,
		    &cep__v1__cp_tunnel_calls__descriptor, &rep,
		    t->poll_wait_ms + 10000, &retry, &err);
		int64_t now = cep_clock_mono_ms();
		if (now - last_expire > 10000) {
			sessions_expire(t, now);
			last_expire = now;
		}
		if (rv != CEP_OK) {
			if (atomic_load(&t->stop))
				break;
			int64_t ms = cep_rpc_backoff_ms(attempt++, 200, 10000);
			cep_log_warn(NULL,
			    "tunnel: TunnelPoll: %s; again in "
			    "%lldms",
			    err.msg, (long long)(retry > ms ? retry : ms));
			snooze(t, retry > ms ? retry : ms);
			continue;
		}
		attempt = 0;
		relay_tunnel_take_calls(t, (const Cep__V1__CpTunnelCalls *)rep);
		protobuf_c_message_free_unpacked(rep, NULL);
	}
	return NULL;
}

/* -------------------------------------------------------------- public */

cep_tunnel *relay_tunnel_alloc(const char *appliance, cep_rpc_server *runners,
    cep_tunnel_gone_fn gone, void *arg)
{
	cep_tunnel *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->runners = runners;
	t->gone = gone;
	t->gone_arg = arg;
	snprintf(t->appliance, sizeof(t->appliance), "%s", appliance);
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	return t;
}

int relay_tunnel_start(const cep_config *cfg, cep_rpc_server *runners,
    cep_tunnel_gone_fn gone, void *arg, cep_tunnel **out, cep_err *err)
{
	*out = NULL;
	if (cfg->cp.url[0] == '\0')
		return CEP_OK;
	cep_tunnel *t = relay_tunnel_alloc(cfg->appliance, runners, gone, arg);
	if (t == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	t->poll_wait_ms = cfg->cp.poll_wait_ms > 0 ? cfg->cp.poll_wait_ms :
	                                             20000;
	int rv = cep_cp_new(&cfg->cp, &t->cp, err);
	if (rv == CEP_OK && pthread_create(&t->sender, NULL, sender_main, t))
		rv = cep_err_set(err, CEP_INTERNAL, "starting a thread failed");
	t->sender_started = rv == CEP_OK;
	if (rv == CEP_OK && pthread_create(&t->poller, NULL, poller_main, t))
		rv = cep_err_set(err, CEP_INTERNAL, "starting a thread failed");
	t->poller_started = rv == CEP_OK;
	if (rv != CEP_OK) {
		relay_tunnel_stop(t);
		relay_tunnel_free(t);
		return cep_err_wrap(err, "runner tunnel");
	}
	cep_log_info(NULL,
	    "tunnel: taking runner calls from the control plane "
	    "%s",
	    cep_cp_host(t->cp));
	*out = t;
	return CEP_OK;
}

void relay_tunnel_stop(cep_tunnel *t)
{
	if (t == NULL)
		return;
	atomic_store(&t->stop, true);
	if (t->cp != NULL)
		cep_cp_cancel(t->cp);
	pthread_mutex_lock(&t->mu);
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	if (t->poller_started)
		pthread_join(t->poller, NULL);
	if (t->sender_started)
		pthread_join(t->sender, NULL);
	t->poller_started = t->sender_started = false;
}

void relay_tunnel_free(cep_tunnel *t)
{
	if (t == NULL)
		return;
	for (reply *r = t->head; r != NULL;) {
		reply *next = r->next;
		free(r->buf);
		free(r);
		r = next;
	}
	cep_cp_free(t->cp);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	free(t);
}
