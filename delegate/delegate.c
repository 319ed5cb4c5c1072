/*
 * delegate.c - assembling the delegate: paths, CA, connectors, executors
 * (local for host targets, kubernetes for every connector), recovery,
 * the background collection of leftover runner pods, services and
 * threads; the graceful stop; teardown.
 */
#define _GNU_SOURCE
#include "delegate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "paths.h"
#include "undo.h"
#include "clock.h"
#include "files.h"

#define STOP_WAIT_MS (CEP_ABORT_GRACE_MS + 10000)

/* cep-runner beside our own executable, or $CEP_RUNNER_BIN (tests). */
static int runner_bin(char *buf, size_t len, cep_err *err)
{
	const char *env = getenv("CEP_RUNNER_BIN");
	if (env != NULL && env[0] != '\0')
		return cep_files_path(buf, len, err, "%s", env);
	return cep_paths_beside_self("cep-runner", buf, len, err);
}

/* false: a pthread init failed. */
static bool init_sync(cep_delegate *d)
{
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0)
		return false;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rv = pthread_mutex_init(&d->mu, NULL) |
	    pthread_cond_init(&d->mon_cv, &ca) |
	    pthread_cond_init(&d->relay_cv, &ca);
	pthread_condattr_destroy(&ca);
	return rv == 0;
}

static int setup(cep_delegate *d, cep_err *err)
{
	char bin[4096];
	int rv = cep_files_path(d->runs_dir, sizeof(d->runs_dir), err,
	    "%s/runs", d->paths.state);
	if (rv == CEP_OK)
		rv = cep_files_mkdirs(d->runs_dir, 0700, err);
	if (rv == CEP_OK)
		rv = cep_files_mkdirs(d->paths.run, 0750, err);
	if (rv == CEP_OK)
		rv = delegate_signer_open(&d->signer, &d->paths, &d->cfg, 0,
		    err);
	if (rv == CEP_OK)
		rv = runner_bin(bin, sizeof(bin), err);
	/* host runners: through the launcher when there is one (they get
	 * their faults' capabilities; the delegate has none), else ours */
	if (rv == CEP_OK && d->cfg.launcher_url[0] != '\0')
		rv = delegate_executor_launcher_new(d->cfg.launcher_url, &d->ex,
		    err);
	else if (rv == CEP_OK)
		rv = delegate_executor_local_new(bin, d->runs_dir, &d->ex, err);
	/* the policy sees the host as the runners will: through the
	 * launcher when it starts them, else with the delegate's own eyes */
	if (rv == CEP_OK && d->cfg.launcher_url[0] != '\0')
		rv = delegate_hostview_launcher_new(d->cfg.launcher_url, &d->hv,
		    err);
	else if (rv == CEP_OK)
		d->hv = delegate_hostview_direct();
	if (rv == CEP_OK &&
	    (rv = cep_connector_list_load(&d->paths, &d->conns, err)))
		cep_err_wrap(err, "loading connectors");
	if (rv == CEP_OK)
		rv = delegate_executor_kube_new(d->conns, d->cfg.appliance,
		    d->cfg.relay_advertise, &d->kex, err);
	if (rv == CEP_OK)
		rv = delegate_recover(d, err);
	if (rv == CEP_OK)
		rv = delegate_recover_collect(d, err);
	if (rv == CEP_OK && (rv = delegate_service_start(d, err)))
		cep_err_wrap(err, "Delegate service");
	if (rv == CEP_OK && (rv = delegate_admin_start(d, err)))
		cep_err_wrap(err, "Admin service");
	if (rv == CEP_OK)
		rv = delegate_relay_link_start(d, err);
	if (rv == CEP_OK)
		rv = delegate_monitor_start(d, err);
	if (rv == CEP_OK)
		rv = delegate_lease_start(d, err);
	if (rv == CEP_OK)
		rv = delegate_cp_link_start(d, err);
	return rv;
}

/* Active runs and free space: read at scrape time rather than tracked. */
static void collect(cep_metrics *m, void *arg)
{
	(void)m;
	cep_delegate *d = arg;
	cep_metrics_set(d->m_active, (double)delegate_active_runs(d), NULL);
	pthread_mutex_lock(&d->mu);
	delegate_disk_collect(d);
	pthread_mutex_unlock(&d->mu);
}

/* Names and help texts are a contract (docs/metrics.md, tests). */
static int init_metrics(cep_delegate *d, cep_err *err)
{
	static const char *const st[] = {"state", NULL};
	static const char *const ex[] = {"executor", NULL};
	int rv = cep_metrics_new(&d->metrics, err);
	if (rv != CEP_OK)
		return rv;
	cep_metrics *m = d->metrics;
	d->m_active = cep_metrics_gauge(m, "cep_delegate_runs_active",
	    "Runs not in a final state.", NULL);
	d->m_runs = cep_metrics_counter(m, "cep_delegate_runs_total",
	    "Runs that reached a final state, by that state.", st);
	d->m_launches = cep_metrics_counter(m, "cep_delegate_launches_total",
	    "Runner launches attempted, by executor.", ex);
	d->m_launch_fail = cep_metrics_counter(m,
	    "cep_delegate_launch_failures_total",
	    "Runner launches that failed, by executor.", ex);
	d->m_events = cep_metrics_counter(m, "cep_delegate_events_total",
	    "Run events journaled (new, after deduplication).", NULL);
	delegate_disk_init(d, m);
	cep_metrics_on_collect(m, collect, d);
	return CEP_OK;
}

struct cep_metrics *delegate_metrics(cep_delegate *d)
{
	return d->metrics;
}

int delegate_new(const cep_paths *paths, const cep_config *cfg,
    cep_delegate **out, cep_err *err)
{
	*out = NULL;
	cep_delegate *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	d->paths = *paths;
	d->cfg = *cfg;
	d->started_ms = cep_clock_now_ms();
	if (!init_sync(d)) {
		free(d);
		return cep_err_set(err, CEP_INTERNAL, "pthread init failed");
	}
	int rv = init_metrics(d, err);
	if (rv == CEP_OK)
		rv = setup(d, err);
	if (rv != CEP_OK) {
		delegate_free(d);
		return rv;
	}
	cep_log_info(NULL,
	    "delegate up: appliance %s, %zu run(s) known, "
	    "signer %s, executors %s and %s (%zu connector(s)), host facts "
	    "%s",
	    d->cfg.appliance, d->nruns, delegate_signer_name(d->signer),
	    delegate_executor_name(d->ex), delegate_executor_name(d->kex),
	    cep_connector_list_count(d->conns), delegate_hostview_name(d->hv));
	*out = d;
	return CEP_OK;
}

size_t delegate_active_runs(cep_delegate *d)
{
	pthread_mutex_lock(&d->mu);
	size_t n = delegate_run_active_count(d);
	pthread_mutex_unlock(&d->mu);
	return n;
}

uint64_t delegate_ticks(cep_delegate *d)
{
	return atomic_load(&d->mon_ticks);
}

void delegate_describe(cep_delegate *d, char *buf, size_t len)
{
	Cep__V1__ControlPlaneStatus st;
	pthread_mutex_lock(&d->mu);
	size_t n = delegate_run_active_count(d);
	delegate_cp_link_status(d, &st);
	const char *link = st.url[0] == '\0'          ? "no control plane" :
	    st.registered && st.last_error[0] == '\0' ? "control plane linked" :
	    st.registered ? "control plane failing" :
	                    "control plane not "
	                    "registered";
	/* last_error is scrubbed of the token (lib/cp/cp.c) */
	snprintf(buf, len, "%zu active run(s); %s%s%.120s", n, link,
	    st.last_error[0] ? ": " : "", st.last_error);
	pthread_mutex_unlock(&d->mu);
}

void delegate_stop(cep_delegate *d)
{
	if (d == NULL)
		return;
	pthread_mutex_lock(&d->mu);
	d->draining = true;
	for (cep_run *r = d->runs; r != NULL; r = r->next)
		delegate_run_request_abort(d, r, "delegate stopping");
	int64_t end = cep_clock_mono_ms() + STOP_WAIT_MS;
	size_t n;
	while ((n = delegate_run_active_count(d)) > 0 &&
	    cep_clock_mono_ms() < end && d->monitor_started)
		cep_clock_cond_wait_ms(&d->mon_cv, &d->mu, 100);
	pthread_mutex_unlock(&d->mu);
	if (n > 0)
		cep_log_warn(NULL,
		    "%zu run(s) still active at stop; the next "
		    "start recovers them",
		    n);
}

/* Parked Follow calls are answered before the server goes away. */
static void drop_parked(cep_delegate *d)
{
	while (d->parked != NULL) {
		cep_parked *p = d->parked;
		d->parked = p->next;
		cep_rpc_call_fail(p->call, CEP_UNAVAILABLE,
		    "the delegate is stopping");
		free(p);
	}
}

void delegate_free(cep_delegate *d)
{
	if (d == NULL)
		return;
	pthread_mutex_lock(&d->mu);
	d->stopping = true;
	d->draining = true;
	drop_parked(d);
	pthread_cond_broadcast(&d->mon_cv);
	pthread_cond_broadcast(&d->relay_cv);
	pthread_mutex_unlock(&d->mu);
	cep_rpc_server_free(d->admin_srv);
	cep_rpc_server_free(d->deleg_srv);
	delegate_cp_link_join(d);
	delegate_lease_join(d);
	delegate_monitor_join(d);
	delegate_relay_link_join(d);
	cep_rpc_client_free(d->relay);
	/* Before the runs: its threads (collection) look runs up. */
	delegate_executor_free(d->kex);
	cep_connector_list_free(d->conns);
	while (d->runs != NULL) {
		cep_run *r = d->runs;
		d->runs = r->next;
		delegate_run_free(r);
	}
	delegate_signer_free(d->signer);
	delegate_executor_free(d->ex);
	delegate_hostview_free(d->hv);
	cep_metrics_free(d->metrics);
	pthread_cond_destroy(&d->mon_cv);
	pthread_cond_destroy(&d->relay_cv);
	pthread_mutex_destroy(&d->mu);
	free(d);
}
