/*
 * metrics.h - a small Prometheus registry and its HTTP endpoint.
 *
 * A registry (cep_metrics) holds metric families: counters and gauges,
 * each with a fixed list of label names fixed at registration. A series
 * (one set of label values) appears the first time it is touched. All
 * updates are thread-safe (one mutex per registry: updates are rare next
 * to the work they count). Rendering produces the Prometheus text
 * exposition format 0.0.4: HELP and TYPE lines per family, families in
 * registration order, series sorted by their label values, label values
 * escaped (\\, \", \n).
 *
 * cep_metrics_serve exposes a registry at GET /metrics on an IP literal
 * (or localhost) and port, through nng's HTTP server; every other path is
 * 404. docs/metrics.md lists what the relay and the delegate export.
 *
 * Every cep_metrics_* update is NULL-safe (a NULL family is a no-op), so a
 * module's hooks are one line whether or not metrics were set up.
 */
#ifndef CEP_METRICS_H
#define CEP_METRICS_H

#include <stddef.h>

#include "err.h"

#define CEP_METRICS_MAX_LABELS 4
/* Series per family: a bound on memory whatever label values come. */
#define CEP_METRICS_MAX_SERIES 512
#define CEP_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct cep_metrics cep_metrics;
typedef struct cep_metric cep_metric; /* one family */
typedef struct cep_metrics_server cep_metrics_server;

int cep_metrics_new(cep_metrics **out, cep_err *err);
/* NULL-safe. Stop any server of m first. */
void cep_metrics_free(cep_metrics *m);

/* Registers a family. name: [a-zA-Z_:][a-zA-Z0-9_:]* (counters end in
 * _total by convention); labels: NULL-terminated list of at most
 * CEP_METRICS_MAX_LABELS names, or NULL. Returns NULL (and logs) on a bad
 * name or out of memory: the hooks then do nothing. */
cep_metric *cep_metrics_counter(cep_metrics *m, const char *name,
    const char *help, const char *const *labels);
cep_metric *cep_metrics_gauge(cep_metrics *m, const char *name,
    const char *help, const char *const *labels);

/* values: as many as the family has labels (NULL when it has none); a
 * NULL value is rendered as "". Counters ignore negative deltas. */
void cep_metrics_add(cep_metric *f, double delta, const char *const *values);
void cep_metrics_set(cep_metric *f, double v, const char *const *values);
/* Shorthands for +1 with zero, one or two label values. */
void cep_metrics_inc(cep_metric *f);
void cep_metrics_inc1(cep_metric *f, const char *v1);
void cep_metrics_inc2(cep_metric *f, const char *v1, const char *v2);
/* The current value of a series (0 when it does not exist); for tests. */
double cep_metrics_value(cep_metric *f, const char *const *values);

/* Called at the start of every render, outside the registry lock: the
 * place to set gauges that are cheaper to read than to track (e.g. the
 * number of entries of a table). One per registry; NULL removes it. */
typedef void (*cep_metrics_collect_fn)(cep_metrics *m, void *arg);
void cep_metrics_on_collect(cep_metrics *m, cep_metrics_collect_fn fn,
    void *arg);

/* The exposition text, malloc'd and NUL-terminated (*len without it). */
int cep_metrics_render(cep_metrics *m, char **out, size_t *len, cep_err *err);

/* "HOST:PORT": HOST an IPv4 literal, a bracketed IPv6 literal or
 * localhost, PORT 0..65535 (0 = any free port). CEP_OK if valid, else
 * INVALID_ARGUMENT saying what is wrong. */
int cep_metrics_addr_check(const char *addr, cep_err *err);

/* Serves m at http://addr/metrics until cep_metrics_stop. m must outlive
 * the server. */
int cep_metrics_serve(cep_metrics *m, const char *addr,
    cep_metrics_server **out, cep_err *err);
/* The port bound (the chosen one with port 0). */
int cep_metrics_server_port(const cep_metrics_server *s);
/* Stops serving, waits for a scrape in progress, frees. NULL-safe. */
void cep_metrics_stop(cep_metrics_server *s);

/* For the daemons: addr "" = disabled (*out NULL, CEP_OK); else serves
 * and writes the bound port ("9464\n") to port_file (atomically), so that
 * tests and tools find a port chosen with port 0. */
int cep_metrics_start(cep_metrics *m, const char *addr, const char *port_file,
    cep_metrics_server **out, cep_err *err);
/* A daemon's metrics (comp: "relay"): cep_metrics_start with the port
 * file <run_dir>/<comp>.metrics-port. A port that cannot be bound is
 * logged, not fatal - the daemon's work (runs, reverts) matters more than
 * an observer's view of it - and gives NULL, as "" (disabled) does. */
cep_metrics_server *cep_metrics_start_daemon(cep_metrics *m, const char *addr,
    const char *run_dir, const char *comp);

#endif
