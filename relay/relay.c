/*
 * relay.c - wires the relay together: loads the TLS material, starts the
 * two listeners, the delegate client, the ticker, the upstream and the
 * tunnel, declares the relay's metrics, and stops it all in order.
 *
 * The call helpers the services share (refusals, parked WatchCommands
 * calls, delayed closes, the ticker) are in calls.c; the Runner and Relay
 * services themselves in runner_api.c and relay_api.c.
 */
#define _GNU_SOURCE
#include "relay_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cred.h"
#include "log.h"
#include "clock.h"
#include "lograte.h"
#include "secret.h"
#include "files.h"

#define PEM_MAX (64 * 1024)
/* refusal lines of one peer per interval: every refusal of a test or a
 * misconfigured runner is seen, a flood makes a few lines */
#define REFUSE_LOG_BURST 50

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
		rv = cep_files_path(path, sizeof(path), err, "%s/%s",
		    r->paths.relay_pki, names[i]);
		bool cred = rv == CEP_OK &&
		    cep_cred_path(path, path, sizeof(path));
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
	cep_rpc_tls tls = {.cert_pem = cert,
	    .key_pem = key,
	    .ca_pem = r->ca_pem,
	    .client_cert_optional = true};
	const struct cep_config_limits *cl = &r->cfg.relay_limits;
	cep_rpc_limits lim = {.max_conns = cl->max_conns,
	    .max_conns_per_peer = cl->max_conns_per_peer,
	    .max_handshakes = cl->max_handshakes,
	    .handshake_timeout_ms = (int)cl->handshake_timeout_ms,
	    .calls_per_sec = cl->calls_per_sec,
	    .call_burst = cl->call_burst,
	    .log_interval_ms = (int)cl->log_interval_ms};
	cep_rpc_server_opts o = {.name = "relay-runners",
	    .workers = CEP_RELAY_RUNNER_WORKERS,
	    .pipe_cb = relay_pipe_event,
	    .pipe_cb_arg = r,
	    .done_cb = relay_call_done,
	    .limits = &lim};
	int rv = cep_rpc_server_new(&r->runners, relay_runner_methods,
	    relay_runner_nmethods, r, &o, err);
	if (rv == CEP_OK)
		rv = cep_rpc_server_listen(r->runners, r->cfg.relay_listen,
		    &tls, err);
	if (rv != CEP_OK)
		cep_err_wrap(err, "runner listener %s", r->cfg.relay_listen);
	return rv;
}

static int listen_ipc(cep_relay *r, cep_err *err)
{
	char url[PATH_MAX + 32];
	int rv = cep_files_mkdirs(r->paths.run, 0750, err);
	if (rv == CEP_OK)
		rv = cep_paths_url(&r->paths, "relay.sock", url, sizeof(url),
		    err);
	cep_rpc_server_opts o = {.name = "relay-ipc",
	    .workers = 2,
	    .done_cb = relay_call_done};
	if (rv == CEP_OK)
		rv = cep_rpc_server_new(&r->ipc, relay_ipc_methods,
		    relay_ipc_nmethods, r, &o, err);
	if (rv == CEP_OK)
		rv = cep_rpc_server_listen(r->ipc, url, NULL, err);
	if (rv == CEP_OK)
		rv = cep_paths_url(&r->paths, "delegate.sock", url, sizeof(url),
		    err);
	if (rv == CEP_OK)
		rv = cep_rpc_client_new(&r->delegate, url, NULL, err);
	return rv;
}

/* ------------------------------------------------------------ metrics */

/* The runner port's limits as counted by lib/rpc; scrapes may run at
 * once, so what was copied is kept under the relay's lock. */
static void collect_limits(cep_relay *r)
{
	cep_rpc_stats st;
	if (r->runners == NULL)
		return;
	cep_rpc_server_stats(r->runners, &st);
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < CEP_RPC_LIMIT_N; i++) {
		const char *v[] = {cep_rpc_limit_names[i], NULL};
		cep_metrics_add(r->m_limited,
		    (double)(st.limited[i] - r->limited_seen[i]), v);
		r->limited_seen[i] = st.limited[i];
	}
	pthread_mutex_unlock(&r->mu);
	cep_metrics_set(r->m_handshaking, st.handshaking, NULL);
}

/* Runners connected = pipes bound to a run: read at scrape time. */
static void collect(cep_metrics *m, void *arg)
{
	(void)m;
	cep_relay *r = arg;
	pthread_mutex_lock(&r->mu);
	uint32_t n = relay_pipes_bound(r->pipes);
	pthread_mutex_unlock(&r->mu);
	cep_metrics_set(r->m_runners, n, NULL);
	collect_limits(r);
	relay_upstream_collect(r->up);
}

bool relay_refuse_log_due(cep_relay *r, const char *peer, uint64_t *held)
{
	char key[64];
	cep_lograte_peer_key(peer != NULL ? peer : "?", key, sizeof(key));
	return cep_lograte_take(r->refuse_log, key, cep_clock_mono_ms(), held);
}

uint64_t relay_ticks(cep_relay *r)
{
	return atomic_load(&r->ticks);
}

void relay_describe(cep_relay *r, char *buf, size_t len)
{
	pthread_mutex_lock(&r->mu);
	uint32_t n = relay_pipes_bound(r->pipes);
	pthread_mutex_unlock(&r->mu);
	if (r->up == NULL)
		snprintf(buf, len, "%u runner(s) connected; no control plane",
		    n);
	else
		snprintf(buf, len,
		    "%u runner(s) connected; spool %lld bytes "
		    "undelivered",
		    n, (long long)relay_upstream_spool_bytes(r->up));
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
	r->m_limited = cep_metrics_counter(m, "cep_relay_limited_total",
	    "Runner-port connections closed and calls refused by the limits "
	    "(relay.limits), by reason.",
	    rs);
	r->m_handshaking = cep_metrics_gauge(m, "cep_relay_handshaking",
	    "Runner-port connections not through TLS and SP negotiation yet.",
	    NULL);
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
	relay_pipe_event(pipe, false, true, "cp-tunnel", arg);
}

int relay_new(const cep_paths *paths, const cep_config *cfg, cep_relay **out,
    cep_err *err)
{
	*out = NULL;
	cep_relay *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "relay: out of memory");
	r->paths = *paths;
	r->cfg = *cfg;
	int rv = init_sync(r, err);
	if (rv != CEP_OK) {
		free(r);
		return rv;
	}
	if ((rv = relay_registry_new(&r->reg, err)) ||
	    (rv = relay_pipes_new(&r->pipes, err)) ||
	    (rv = cep_lograte_new(&r->refuse_log,
	         (int)r->cfg.relay_limits.log_interval_ms > 0 ?
	             (int)r->cfg.relay_limits.log_interval_ms :
	             10000,
	         REFUSE_LOG_BURST, err)) ||
	    (rv = init_metrics(r, err))) {
		relay_free(r);
		return rv;
	}
	rv = pthread_create(&r->ticker, NULL, relay_ticker_main, r);
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
		rv = cep_files_path(spool, sizeof(spool), err, "%s/spool",
		    r->paths.relay_state);
	if (rv == CEP_OK)
		rv = relay_upstream_start(&r->cfg, spool, r->delegate,
		    r->metrics, &r->up, err);
	if (rv == CEP_OK)
		rv = relay_tunnel_start(&r->cfg, r->runners, tunnel_gone, r,
		    &r->tunnel, err);
	free(cert);
	free_secret(key); /* TLS holds its own parsed copy */
	if (rv != CEP_OK) {
		relay_free(r);
		return rv;
	}
	cep_log_info(NULL,
	    "listening for runners on %s (port %d), delegate on "
	    "%s/relay.sock",
	    r->cfg.relay_listen, relay_port(r), r->paths.run);
	*out = r;
	return CEP_OK;
}

struct cep_metrics *relay_metrics(cep_relay *r)
{
	return r->metrics;
}

int relay_port(cep_relay *r)
{
	return r->runners != NULL ? cep_rpc_server_port(r->runners) : 0;
}

void relay_free(cep_relay *r)
{
	if (r == NULL)
		return;
	relay_calls_stop(r);
	if (r->ticker_running)
		pthread_join(r->ticker, NULL);
	relay_tunnel_stop(r->tunnel); /* no new tunnel calls; replies dropped */
	cep_rpc_server_free(r->runners);
	relay_tunnel_free(r->tunnel);
	cep_rpc_server_free(r->ipc);
	relay_upstream_stop(r->up); /* no pushes now; it still uses delegate */
	cep_rpc_client_free(r->delegate);
	relay_registry_free(r->reg);
	relay_pipes_free(r->pipes);
	cep_lograte_free(r->refuse_log);
	free(r->ca_pem);
	cep_metrics_free(r->metrics); /* after the servers: done_cb */
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
