/*
 * relay.c - the relay's lifecycle and the machinery its services share:
 * loading the TLS material, the two listeners and the delegate client,
 * parked WatchCommands calls, delayed closes of refused pipes, refusal
 * logging and counting, and the ticker thread that answers long-polls
 * before their deadline.
 *
 * The Runner and Relay services themselves are in runner_api.c and
 * relay_api.c.
 */
#define _GNU_SOURCE
#include "relay_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cred.h"
#include "log.h"
#include "secret.h"
#include "util.h"

#define PEM_MAX (64 * 1024)

const char *const cep_refusal_names[CEP_REFUSE_N] = {
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

/* ------------------------------------------------------------ refusals */

void cep_relay_safe(char *dst, size_t n, const char *src)
{
	size_t i = 0;
	if (n == 0)
		return;
	if (src == NULL || src[0] == '\0')
		src = "-";
	for (; src[i] != '\0' && i + 1 < n && i < 48; i++) {
		char ch = src[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		    ch == '.' || ch == ':' || ch == '/' || ch == '[' || ch == ']';
		dst[i] = ok ? ch : '?';
	}
	dst[i] = '\0';
}

void cep_relay_refuse(cep_relay *r, cep_rpc_call *call, enum cep_refusal why,
    int code, const char *bound, const char *requested, const char *fmt, ...)
{
	char msg[CEP_ERR_MSG_MAX], b[64], q[64], peer[64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cep_relay_safe(b, sizeof(b), bound);
	cep_relay_safe(q, sizeof(q), requested);
	cep_relay_safe(peer, sizeof(peer), cep_rpc_call_peer(call));
	const char *method = cep_rpc_call_method(call);
	const char *short_m = method ? strrchr(method, '/') : NULL;

	pthread_mutex_lock(&r->mu);
	r->refused++;
	r->by_reason[why]++;
	pthread_mutex_unlock(&r->mu);
	cep_metric_inc1(r->m_refusals, cep_refusal_names[why]);

	/* the run the line is about: the one asked for when it is a real
	 * run id, else the bound one */
	const char *run = cep_run_id_valid(requested) ? requested :
	    (bound != NULL && bound[0] != '\0' ? bound : NULL);
	cep_log_warn(run, "refused %s from %s: %s (reason=%s bound=%s "
	    "requested=%s)", short_m ? short_m + 1 : "?", peer, msg,
	    cep_refusal_names[why], b, q);
	cep_rpc_call_fail(call, code, "%s", msg);
}

void cep_relay_close_later(cep_relay *r, uint32_t pipe)
{
	bool now = false;
	pthread_mutex_lock(&r->mu);
	if (r->stopping) {
		pthread_mutex_unlock(&r->mu);
		return;
	}
	if (r->nclose < CEP_RELAY_MAX_CLOSES) {
		r->closes[r->nclose].pipe = pipe;
		r->closes[r->nclose].at = cep_mono_ms() + CEP_RELAY_CLOSE_DELAY_MS;
		r->nclose++;
		pthread_cond_signal(&r->cv);
	} else {
		now = true;   /* a flood of refused peers: no grace for them */
	}
	pthread_mutex_unlock(&r->mu);
	if (now)
		cep_rpc_server_close_pipe(r->runners, (cep_pipe_id){pipe});
}

/* -------------------------------------------------------- parked calls */

void cep_relay_reply_empty(cep_rpc_call *c)
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
		if (strcmp((*pp)->run_id, run_id) != 0)
			continue;
		n++;
		oldest = pp;   /* the list is newest first */
	}
	if (n < CEP_RELAY_PARKED_PER_RUN || oldest == NULL)
		return NULL;
	cep_parked *p = *oldest;
	*oldest = p->next;
	return p;
}

bool cep_relay_watch(cep_relay *r, cep_rpc_call *call, const char *run_id,
    uint64_t after_seq, Cep__V1__CommandBatch **batch)
{
	*batch = NULL;
	int64_t wake = cep_rpc_call_deadline(call) - CEP_RELAY_WATCH_MARGIN_MS;
	cep_parked *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return true;
	p->call = call;
	p->pipe = cep_rpc_call_pipe(call).id;
	snprintf(p->run_id, sizeof(p->run_id), "%s", run_id);
	p->after_seq = after_seq;
	p->wake_mono = wake;

	pthread_mutex_lock(&r->mu);
	cep_relay_run *run = cep_registry_find(r->reg, run_id);
	if (run != NULL) {
		cep_registry_trim(run, after_seq);
		*batch = cep_registry_pending(run, after_seq);
	}
	if (run == NULL || *batch != NULL || r->stopping ||
	    wake <= cep_mono_ms()) {
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
		cep_relay_reply_empty(evicted->call);
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
			cep_rpc_call_reply(items[i].p->call, &items[i].batch->base);
			protobuf_c_message_free_unpacked(&items[i].batch->base, NULL);
		} else {
			cep_relay_reply_empty(items[i].p->call);
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

typedef struct wake_arg { const char *run_id; bool gone; } wake_arg;

static bool want_run(cep_relay *r, cep_parked *p, void *arg,
    Cep__V1__CommandBatch **batch)
{
	wake_arg *w = arg;
	if (strcmp(p->run_id, w->run_id) != 0)
		return false;
	if (w->gone)
		return true;
	cep_relay_run *run = cep_registry_find(r->reg, p->run_id);
	*batch = run != NULL ? cep_registry_pending(run, p->after_seq) : NULL;
	return *batch != NULL;
}

void cep_relay_wake_run(cep_relay *r, const char *run_id, bool gone)
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
void cep_relay_forget_pipe_calls(cep_relay *r, uint32_t pipe)
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

static void *ticker_main(void *arg)
{
	cep_relay *r = arg;
	uint32_t *due = calloc(CEP_RELAY_MAX_CLOSES, sizeof(*due));
	pthread_mutex_lock(&r->mu);
	while (!r->stopping && due != NULL) {
		atomic_fetch_add(&r->ticks, 1);
		int64_t now = cep_mono_ms();
		int64_t next = next_due(r, now);
		if (next > now) {
			struct timespec ts = {next / 1000, (next % 1000) * 1000000L};
			pthread_cond_timedwait(&r->cv, &r->mu, &ts);
			continue;
		}
		wake_item *items;
		size_t n = take_parked(r, want_due, &now, &items);
		size_t nc = take_closes(r, now, due);
		pthread_mutex_unlock(&r->mu);
		answer_items(items, n);
		for (size_t i = 0; i < nc; i++)
			cep_rpc_server_close_pipe(r->runners, (cep_pipe_id){due[i]});
		pthread_mutex_lock(&r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	free(due);
	return NULL;
}

/* ------------------------------------------------------- TLS material */

/* Reads a PEM file through the one secret reader (lib/base/secret.h):
 * the certificates with its checks less the mode, the key with all. */
static int read_pem(const char *path, bool secret, char **out, cep_err *err)
{
	const cep_secret_opts o = {PEM_MAX, !secret, false, "the relay key"};
	cep_secret s;
	int rv = cep_secret_read(path, &o, &s, err);
	if (rv == CEP_OK)
		*out = cep_secret_take(&s);
	return rv;
}

static void free_secret(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* Reads the CA, the relay certificate and its key before anything
 * listens, so a bad file stops the relay with nothing half started. Under
 * systemd each comes from the unit's credentials (LoadCredential=cep:
 * /etc/cep/relay): the key file stays root:root 0600 (lib/base/cred.h). */
static int load_material(cep_relay *r, char **cert, char **key, cep_err *err)
{
	static const char *const names[] = {"ca.crt", "relay.crt", "relay.key"};
	char **outs[] = {&r->ca_pem, cert, key};
	char path[PATH_MAX + 16];
	int rv = CEP_OK;
	for (size_t i = 0; rv == CEP_OK && i < 3; i++) {
		rv = cep_path(path, sizeof(path), err, "%s/%s",
		    r->paths.relay_pki, names[i]);
		bool cred = rv == CEP_OK && cep_cred_path(path, path, sizeof(path));
		/* a credential is private to this unit whatever its mode */
		if (rv == CEP_OK)
			rv = read_pem(path, i == 2 && !cred, outs[i], err);
	}
	return rv;
}

/* Starts the runner listener: TLS with our certificate, client
 * certificates optional so that refused peers reach Prove and are told
 * (and logged) why, instead of vanishing inside the handshake. */
static int listen_runners(cep_relay *r, const char *cert, const char *key,
    cep_err *err)
{
	cep_rpc_tls tls = {.cert_pem = cert, .key_pem = key, .ca_pem = r->ca_pem,
	    .client_cert_optional = true};
	cep_rpc_server_opts o = {.name = "relay-runners", .workers = 16,
	    .pipe_cb = cep_relay_pipe_event, .pipe_cb_arg = r,
	    .done_cb = cep_relay_call_done};
	int rv = cep_rpc_server_new(&r->runners, cep_relay_runner_methods,
	    cep_relay_runner_nmethods, r, &o, err);
	if (rv == CEP_OK)
		rv = cep_rpc_server_listen(r->runners, r->cfg.relay_listen, &tls, err);
	if (rv != CEP_OK)
		cep_err_wrap(err, "runner listener %s", r->cfg.relay_listen);
	return rv;
}

static int listen_ipc(cep_relay *r, cep_err *err)
{
	char url[PATH_MAX + 32];
	int rv = cep_mkdirs(r->paths.run, 0750, err);
	if (rv == CEP_OK)
		rv = cep_paths_url(&r->paths, "relay.sock", url, sizeof(url), err);
	cep_rpc_server_opts o = {.name = "relay-ipc", .workers = 2,
	    .done_cb = cep_relay_call_done};
	if (rv == CEP_OK)
		rv = cep_rpc_server_new(&r->ipc, cep_relay_ipc_methods,
		    cep_relay_ipc_nmethods, r, &o, err);
	if (rv == CEP_OK)
		rv = cep_rpc_server_listen(r->ipc, url, NULL, err);
	if (rv == CEP_OK)
		rv = cep_paths_url(&r->paths, "delegate.sock", url, sizeof(url), err);
	if (rv == CEP_OK)
		rv = cep_rpc_client_new(&r->delegate, url, NULL, err);
	return rv;
}

/* ------------------------------------------------------------ metrics */

void cep_relay_call_done(const char *method, int code, void *arg)
{
	cep_relay *r = arg;
	static const char pfx[] = "cep.v1.";
	if (strncmp(method, pfx, sizeof(pfx) - 1) == 0)
		method += sizeof(pfx) - 1;   /* "Runner/PushEvents" */
	cep_metric_inc2(r->m_calls, method, cep_code_name(code));
}

/* Runners connected = pipes bound to a run: read at scrape time. */
static void collect(cep_metrics *m, void *arg)
{
	(void)m;
	cep_relay *r = arg;
	pthread_mutex_lock(&r->mu);
	uint32_t n = cep_pipes_bound(r->pipes);
	pthread_mutex_unlock(&r->mu);
	cep_metric_set(r->m_runners, n, NULL);
	cep_upstream_collect(r->up);
}

uint64_t cep_relay_ticks(cep_relay *r)
{
	return atomic_load(&r->ticks);
}

void cep_relay_describe(cep_relay *r, char *buf, size_t len)
{
	pthread_mutex_lock(&r->mu);
	uint32_t n = cep_pipes_bound(r->pipes);
	pthread_mutex_unlock(&r->mu);
	if (r->up == NULL)
		snprintf(buf, len, "%u runner(s) connected; no control plane", n);
	else
		snprintf(buf, len, "%u runner(s) connected; spool %lld bytes "
		    "undelivered", n, (long long)cep_upstream_spool_bytes(r->up));
}

/* Names and help texts are a contract (docs/metrics.md, tests). */
static int init_metrics(cep_relay *r, cep_err *err)
{
	static const char *const mc[] = {"method", "code", NULL};
	static const char *const rs[] = {"reason", NULL};
	int rv = cep_metrics_new(&r->metrics, err);
	if (rv != CEP_OK)
		return rv;
	cep_metrics *m = r->metrics;
	r->m_runners = cep_metrics_gauge(m, "cep_relay_runners_connected",
	    "Runner connections authenticated and bound to a run.", NULL);
	r->m_calls = cep_metrics_counter(m, "cep_relay_calls_total",
	    "Calls answered by the relay, by method and status code.", mc);
	r->m_refusals = cep_metrics_counter(m, "cep_relay_refusals_total",
	    "Runner calls refused, by reason.", rs);
	r->m_events_in = cep_metrics_counter(m, "cep_relay_events_in_total",
	    "Events received from runners.", NULL);
	r->m_events_out = cep_metrics_counter(m, "cep_relay_events_out_total",
	    "Events delivered to the delegate (acknowledged).", NULL);
	cep_metrics_on_collect(m, collect, r);
	return CEP_OK;
}

static int init_sync(cep_relay *r, cep_err *err)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (rc != 0)
		return cep_err_errno(err, rc, "relay: condition variable");
	pthread_mutex_init(&r->mu, NULL);
	return CEP_OK;
}

/* An idle tunnel session: its virtual pipe goes like a closed one. */
static void tunnel_gone(cep_pipe_id pipe, void *arg)
{
	cep_relay_pipe_event(pipe, false, true, "cp-tunnel", arg);
}

int cep_relay_new(const cep_paths *paths, const cep_config *cfg,
    cep_relay **out, cep_err *err)
{
	*out = NULL;
	cep_relay *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "relay: out of memory");
	r->paths = *paths;
	r->cfg = *cfg;
	int rv = init_sync(r, err);
	if (rv != CEP_OK) {
		free(r);
		return rv;
	}
	if ((rv = cep_registry_new(&r->reg, err)) ||
	    (rv = cep_pipes_new(&r->pipes, err)) ||
	    (rv = init_metrics(r, err))) {
		cep_relay_free(r);
		return rv;
	}
	rv = pthread_create(&r->ticker, NULL, ticker_main, r);
	r->ticker_running = rv == 0;
	if (rv != 0)
		rv = cep_err_errno(err, rv, "relay: ticker thread");
	char *cert = NULL, *key = NULL;
	if (rv == CEP_OK)
		rv = load_material(r, &cert, &key, err);
	if (rv == CEP_OK)
		rv = listen_ipc(r, err);
	if (rv == CEP_OK)
		rv = listen_runners(r, cert, key, err);
	char spool[CEP_PATH_MAX];
	if (rv == CEP_OK)
		rv = cep_path(spool, sizeof(spool), err, "%s/spool",
		    r->paths.relay_state);
	if (rv == CEP_OK)
		rv = cep_upstream_start(&r->cfg, spool, r->delegate, r->metrics,
		    &r->up, err);
	if (rv == CEP_OK)
		rv = cep_tunnel_start(&r->cfg, r->runners, tunnel_gone, r,
		    &r->tunnel, err);
	free(cert);
	free_secret(key);   /* TLS holds its own parsed copy */
	if (rv != CEP_OK) {
		cep_relay_free(r);
		return rv;
	}
	cep_log_info(NULL, "listening for runners on %s (port %d), delegate on "
	    "%s/relay.sock", r->cfg.relay_listen, cep_relay_port(r), r->paths.run);
	*out = r;
	return CEP_OK;
}

struct cep_metrics *cep_relay_metrics(cep_relay *r)
{
	return r->metrics;
}

int cep_relay_port(cep_relay *r)
{
	return r->runners != NULL ? cep_rpc_server_port(r->runners) : 0;
}

void cep_relay_free(cep_relay *r)
{
	if (r == NULL)
		return;
	/* from here no call parks: each is answered at once */
	wake_item *items;
	pthread_mutex_lock(&r->mu);
	r->stopping = true;
	size_t n = take_parked(r, want_due, NULL, &items);
	r->nclose = 0;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	answer_items(items, n);
	if (r->ticker_running)
		pthread_join(r->ticker, NULL);
	cep_tunnel_stop(r->tunnel);   /* no new tunnel calls; replies dropped */
	cep_rpc_server_free(r->runners);
	cep_tunnel_free(r->tunnel);
	cep_rpc_server_free(r->ipc);
	cep_upstream_stop(r->up);   /* no pushes now; it still uses delegate */
	cep_rpc_client_free(r->delegate);
	cep_registry_free(r->reg);
	cep_pipes_free(r->pipes);
	free(r->ca_pem);
	cep_metrics_free(r->metrics);   /* after the servers: done_cb */
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
