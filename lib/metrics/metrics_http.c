/*
 * metrics_http.c - the /metrics endpoint: a registry served over HTTP by
 * nng's HTTP server (no HTTP parsing of our own), and the daemons'
 * helper that also writes the bound port to a file.
 *
 * nng keeps one server per host:port in a process-wide list and hands an
 * existing one out again from nng_http_server_hold. A port-0 server is
 * listed under port 0 until it has started, so two port-0 holds racing
 * would share one server: hold and start are serialised here.
 *
 * Limits: nng's HTTP server keeps any connection, idle or half a request,
 * for as long as the peer likes (measured: 350 held 20 s and more). A
 * gate of lib/rpc (cep_rpc_gate) beside it closes connections beyond
 * METRICS_MAX_CONNS in all or METRICS_MAX_PER_PEER from one address, and
 * any connection older than METRICS_REQUEST_TIMEOUT_MS (a scrape takes
 * milliseconds; Prometheus dials again for its next one). Counted in
 * cep_metrics_limited_total (daemons: cep_metrics_start), logged once per
 * peer per interval.
 */
#define _GNU_SOURCE
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "paths.h"
#include "rpc.h"
#include "files.h"

struct cep_metrics_server {
	cep_metrics *m;
	nng_http_server *srv;
	nng_http_handler *h; /* owned by srv once added */
	int port;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int busy; /* scrapes in progress */
	bool stopping;
	cep_rpc_gate *gate;
	cep_metric *m_limited; /* daemons only; NULL: not exported */
	uint64_t limited_seen[CEP_RPC_LIMIT_N];
};

#define METRICS_MAX_CONNS 64
#define METRICS_MAX_PER_PEER 16
#define METRICS_REQUEST_TIMEOUT_MS 10000

static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- address ---- */

/* Splits "HOST:PORT" (HOST maybe [v6]) into host and port. */
static int split_addr(const char *addr, char *host, size_t hlen, long *port,
    bool *v6, cep_err *err)
{
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	if (colon == NULL || colon == addr || colon[1] == '\0')
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "metrics address "
		    "\"%.64s\" is not HOST:PORT",
		    addr ? addr : "");
	char *end = NULL;
	errno = 0;
	*port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || colon[1] == '-' || colon[1] == '+' ||
	    *port < 0 || *port > 65535)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "metrics address "
		    "\"%.64s\": port must be 0..65535",
		    addr);
	size_t n = (size_t)(colon - addr);
	*v6 = addr[0] == '[';
	if (*v6 && (n < 3 || addr[n - 1] != ']'))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "metrics address "
		    "\"%.64s\": unbalanced [ ]",
		    addr);
	const char *h = *v6 ? addr + 1 : addr;
	size_t hl = *v6 ? n - 2 : n;
	if (hl >= hlen)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "metrics address "
		    "\"%.64s\": host too long",
		    addr);
	memcpy(host, h, hl);
	host[hl] = '\0';
	return CEP_OK;
}

int cep_metrics_addr_check(const char *addr, cep_err *err)
{
	char host[64];
	long port;
	bool v6 = false; /* gcc -O2 cannot see split_addr sets it */
	int rv = split_addr(addr, host, sizeof(host), &port, &v6, err);
	if (rv != CEP_OK)
		return rv;
	unsigned char a[16];
	bool ok = v6 ? inet_pton(AF_INET6, host, a) == 1 :
	               (inet_pton(AF_INET, host, a) == 1 ||
	                   strcmp(host, "localhost") == 0);
	if (!ok)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "metrics address "
		    "\"%.64s\": host must be an IP literal or localhost",
		    addr);
	return CEP_OK;
}

/* ---- the handler ---- */

static void respond(nng_aio *aio, uint16_t status, const char *ctype,
    const char *body, size_t len)
{
	nng_http_res *res = NULL;
	int rv = nng_http_res_alloc(&res);
	if (rv == 0)
		rv = nng_http_res_set_status(res, status);
	if (rv == 0)
		rv = nng_http_res_set_header(res, "Content-Type", ctype);
	if (rv == 0)
		rv = nng_http_res_copy_data(res, body, len);
	if (rv != 0) {
		nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

/* The gate's refusals into cep_metrics_limited_total, before a render. */
static void sync_limited(cep_metrics_server *s)
{
	cep_rpc_stats st;
	memset(&st, 0, sizeof(st));
	cep_rpc_gate_stats(s->gate, &st);
	pthread_mutex_lock(&s->mu);
	for (int i = 0; s->m_limited != NULL && i < CEP_RPC_LIMIT_N; i++) {
		const char *v[] = {cep_rpc_limit_names[i], NULL};
		if (i == CEP_RPC_LIMIT_HANDSHAKES ||
		    i == CEP_RPC_LIMIT_CALL_RATE)
			continue; /* not limits of this listener */
		cep_metrics_add(s->m_limited,
		    (double)(st.limited[i] - s->limited_seen[i]), v);
		s->limited_seen[i] = st.limited[i];
	}
	pthread_mutex_unlock(&s->mu);
}

static void handle_metrics(nng_aio *aio)
{
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	cep_metrics_server *s = nng_http_handler_get_data(h);
	pthread_mutex_lock(&s->mu);
	bool go = !s->stopping;
	if (go)
		s->busy++;
	pthread_mutex_unlock(&s->mu);
	if (!go) {
		static const char msg[] = "stopping\n";
		respond(aio, NNG_HTTP_STATUS_SERVICE_UNAVAILABLE, "text/plain",
		    msg, sizeof(msg) - 1);
		return;
	}
	char *text = NULL;
	size_t len = 0;
	cep_err err = {0};
	sync_limited(s);
	if (cep_metrics_render(s->m, &text, &len, &err) == CEP_OK)
		respond(aio, NNG_HTTP_STATUS_OK, CEP_METRICS_CONTENT_TYPE, text,
		    len);
	else
		respond(aio, NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR,
		    "text/plain", err.msg, strlen(err.msg));
	free(text);
	pthread_mutex_lock(&s->mu);
	if (--s->busy == 0)
		pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* ---- serving ---- */

static int bound_port(nng_http_server *srv, cep_err *err)
{
	nng_sockaddr sa;
	int rv = nng_http_server_get_addr(srv, &sa);
	if (rv != 0)
		return -cep_rpc_err_nng(err, rv, "metrics: bound address");
	if (sa.s_family == NNG_AF_INET)
		return ntohs(sa.s_in.sa_port);
	if (sa.s_family == NNG_AF_INET6)
		return ntohs(sa.s_in6.sa_port);
	cep_err_set(err, CEP_INTERNAL, "metrics: bound address of family %d",
	    sa.s_family);
	return -CEP_INTERNAL;
}

/* Holds, adds the handler and starts, under hold_mu (see the top). */
static int start_server(cep_metrics_server *s, const char *addr, cep_err *err)
{
	char url_s[96];
	nng_url *url = NULL;
	snprintf(url_s, sizeof(url_s), "http://%s", addr);
	int rv = nng_url_parse(&url, url_s);
	if (rv != 0)
		return cep_rpc_err_nng(err, rv, "metrics: address");
	pthread_mutex_lock(&hold_mu);
	rv = nng_http_server_hold(&s->srv, url);
	nng_url_free(url);
	if (rv != 0) {
		pthread_mutex_unlock(&hold_mu);
		s->srv = NULL;
		return cep_rpc_err_nng(err, rv, "metrics: HTTP server");
	}
	if ((rv = nng_http_handler_alloc(&s->h, "/metrics", handle_metrics)) ==
	    0) {
		if ((rv = nng_http_handler_set_data(s->h, s, NULL)) == 0)
			rv = nng_http_server_add_handler(s->srv, s->h);
		if (rv != 0)
			nng_http_handler_free(s->h);
	}
	if (rv == 0)
		rv = nng_http_server_start(s->srv);
	pthread_mutex_unlock(&hold_mu);
	if (rv != 0) {
		nng_http_server_release(s->srv);
		s->srv = NULL;
		return cep_rpc_err_nng(err, rv, "metrics: listening");
	}
	return CEP_OK;
}

int cep_metrics_serve(cep_metrics *m, const char *addr,
    cep_metrics_server **out, cep_err *err)
{
	*out = NULL;
	int rv = cep_metrics_addr_check(addr, err);
	if (rv != CEP_OK)
		return rv;
	cep_metrics_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "metrics: out of memory");
	s->m = m;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	rv = start_server(s, addr, err);
	if (rv == CEP_OK) {
		int port = bound_port(s->srv, err);
		rv = port < 0 ? -port : CEP_OK;
		s->port = port;
	}
	const cep_rpc_limits lim = {.max_conns = METRICS_MAX_CONNS,
	    .max_conns_per_peer = METRICS_MAX_PER_PEER,
	    .handshake_timeout_ms = METRICS_REQUEST_TIMEOUT_MS};
	if (rv == CEP_OK)
		rv = cep_rpc_gate_new(&s->gate, "metrics", s->port, &lim, NULL,
		    NULL, err);
	if (rv != CEP_OK) {
		cep_err_wrap(err, "metrics on %.64s", addr);
		cep_metrics_stop(s);
		return rv;
	}
	*out = s;
	return CEP_OK;
}

int cep_metrics_server_port(const cep_metrics_server *s)
{
	return s != NULL ? s->port : 0;
}

void cep_metrics_stop(cep_metrics_server *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_mutex_unlock(&s->mu);
	cep_rpc_gate_free(s->gate);
	if (s->srv != NULL)
		nng_http_server_stop(s->srv); /* no new connections */
	pthread_mutex_lock(&s->mu);
	while (s->busy > 0)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	if (s->srv != NULL) {
		pthread_mutex_lock(&hold_mu);
		nng_http_server_release(s->srv); /* frees the handler too */
		pthread_mutex_unlock(&hold_mu);
	}
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int cep_metrics_start(cep_metrics *m, const char *addr, const char *port_file,
    cep_metrics_server **out, cep_err *err)
{
	*out = NULL;
	if (port_file != NULL)
		(void)unlink(port_file); /* a stale port must not mislead */
	if (addr == NULL || addr[0] == '\0')
		return CEP_OK;
	cep_metrics_server *s = NULL;
	int rv = cep_metrics_serve(m, addr, &s, err);
	if (rv != CEP_OK)
		return rv;
	static const char *const rs[] = {"reason", NULL};
	cep_metric *f = cep_metrics_counter(m, "cep_metrics_limited_total",
	    "Connections to this metrics endpoint closed by its limits, by "
	    "reason.",
	    rs);
	pthread_mutex_lock(&s->mu); /* a scrape may be running already */
	s->m_limited = f;
	pthread_mutex_unlock(&s->mu);
	char text[16];
	int n = snprintf(text, sizeof(text), "%d\n", s->port);
	if (port_file != NULL &&
	    (rv = cep_files_write(port_file, text, (size_t)n, 0644, err)) !=
	        CEP_OK) {
		cep_metrics_stop(s);
		return rv;
	}
	cep_log_info(NULL, "serving metrics at /metrics on %s (bound port %d)",
	    addr, s->port);
	*out = s;
	return CEP_OK;
}

cep_metrics_server *cep_metrics_start_daemon(cep_metrics *m, const char *addr,
    const char *run_dir, const char *comp)
{
	char file[CEP_PATH_MAX + 64];
	cep_metrics_server *srv = NULL;
	cep_err err = {0};
	if (cep_files_path(file, sizeof(file), &err, "%s/%s.metrics-port",
	        run_dir, comp) != CEP_OK ||
	    cep_metrics_start(m, addr, file, &srv, &err) != CEP_OK)
		cep_log_error(NULL, "running without metrics: %s", err.msg);
	return srv;
}
