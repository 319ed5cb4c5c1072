/*
 * monitor.c - the thread that carries runs through their lifecycle:
 * launches PENDING runs (identity, grant, exec), reaps runners, enforces
 * the deadline and the abort grace period, and cleans up after a runner
 * (undo what it left - monitor_undo.c -, remove its identity, final
 * state). A run split across nodes (runs_split.c) is a parent with no
 * runner: the monitor follows its children to their end instead.
 *
 * It ticks every 100 ms and whenever something changed. Slow steps (key
 * generation, fork/exec, undo) run with d->mu released; a run being worked
 * on here is only changed by this thread's steps and by journaled events.
 *
 * A run's executor follows its target: host runs use the local executor
 * (d->ex), kubernetes runs the kubernetes one (d->kex); delegate_run_executor
 * (runs.c) is the only place that looks at the kind, what differs is asked of the
 * executor's ops (executor.h). The kubernetes executor never blocks this
 * thread: its launch returns at once, and its undo answers
 * CEP_EXEC_PENDING until the pod and secret are confirmed gone - the run
 * then stays in CLEANUP (r->cleaning) and finish() asks again on the next
 * tick.
 */
#define _GNU_SOURCE
#include "delegate_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exp.h"
#include "cred.h"
#include "log.h"
#include "clock.h"
#include "files.h"
#include "run_id.h"

#define TICK_MS 100
#define GRANT_WAIT_MS 1000

static int write_identity(cep_delegate *d, const char *id, const char *cert,
    const char *key, cep_err *err)
{
	char dir[4096], path[4096];
	int rv = delegate_run_dir(d, id, "identity", dir, sizeof(dir), err);
	if (rv == CEP_OK)
		rv = cep_files_mkdirs(dir, 0700, err);
	const char *ca = delegate_signer_ca_pem(d->signer);
	if (rv == CEP_OK &&
	    (rv = cep_files_path(path, sizeof(path), err, "%s/ca.crt", dir)) ==
	        CEP_OK)
		rv = cep_files_write(path, ca, strlen(ca), 0600, err);
	if (rv == CEP_OK &&
	    (rv = cep_files_path(path, sizeof(path), err, "%s/runner.crt",
	         dir)) == CEP_OK)
		rv = cep_files_write(path, cert, strlen(cert), 0600, err);
	if (rv == CEP_OK &&
	    (rv = cep_files_path(path, sizeof(path), err, "%s/runner.key",
	         dir)) == CEP_OK)
		rv = cep_files_write(path, key, strlen(key), 0600, err);
	return rv;
}

/* Mints the run's identity; d->mu NOT held. The key pair is made here,
 * the certificate by d->signer (in-process, or cep-signer: then this
 * process never holds the CA key). The URI names where the runner acts:
 * local/host, or <connector>/<namespace>. */
static int mint_identity(cep_delegate *d, const char *id, const char *conn,
    const char *ns, int64_t not_after, char *uri, size_t urilen, cep_err *err)
{
	int rv = cep_pki_identity_uri(uri, urilen, d->cfg.appliance, conn, ns,
	    id, err);
	if (rv != CEP_OK)
		return rv;
	char *cert = NULL, *key = NULL;
	rv = delegate_signer_issue(d->signer, id, uri, not_after, &cert, &key,
	    err);
	if (rv == CEP_OK)
		rv = write_identity(d, id, cert, key, err);
	free(cert);
	cep_pki_free_secret(key);
	return rv;
}

static void launch_failed(cep_run *r, const char *what, const cep_err *err)
{
	r->launch_failed = true;
	snprintf(r->exit_what, sizeof(r->exit_what), "%s: %.500s", what,
	    err->msg);
	cep_log_error(r->id.s, "%s", r->exit_what);
}

static void journal_pid(cep_delegate *d, cep_run *r)
{
	Cep__V1__JournalRecord rec = CEP__V1__JOURNAL_RECORD__INIT;
	cep_err err = {0};
	rec.rec_case = CEP__V1__JOURNAL_RECORD__REC_RUNNER_PID;
	rec.runner_pid = r->h.pid;
	rec.pid_start = r->h.start;
	(void)delegate_run_journal(d, r, &rec, true, &err);
}

/* The distinct fault types of e, for the launcher (the capabilities of
 * the runner follow from them); pointers into e. */
static size_t fault_types(const cep_exp *e, const char **types, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; e != NULL && i < cep_exp_nfaults(e); i++) {
		const char *t = cep_exp_item_type(cep_exp_fault(e, i));
		size_t j = 0;
		while (t != NULL && j < n && strcmp(types[j], t) != 0)
			j++;
		if (t != NULL && j == n && n < max)
			types[n++] = t;
	}
	return n;
}

/* Starts the runner through the executor; d->mu held on entry and exit. */
static void exec_runner(cep_delegate *d, cep_run *r)
{
	char dir[4096], log[4096];
	cep_err err = {0};
	cep_run_id rid = r->id; /* r may change once d->mu is dropped */
	const char *id = rid.s;
	if (delegate_run_dir(d, id, "identity", dir, sizeof(dir), &err) !=
	        CEP_OK ||
	    delegate_run_dir(d, id, "runner.log", log, sizeof(log), &err) !=
	        CEP_OK) {
		cep_metrics_inc1(d->m_launch_fail,
		    delegate_executor_name(delegate_run_executor(d, r)));
		launch_failed(r, "launching the runner", &err);
		return;
	}
	char conn[64], ns[64];
	snprintf(conn, sizeof(conn), "%s", r->connector);
	snprintf(ns, sizeof(ns), "%s", r->ns);
	cep_exec_pods pods; /* copied by the executor */
	if (delegate_executor_pods(delegate_run_executor(d, r), r->spec_yaml,
	        r->spec_name, &pods, &err) != CEP_OK) {
		launch_failed(r, "launching the runner", &err);
		return;
	}
	/* a child of a split run: its runner goes to its node, as a node
	 * target would fix it (runs_split.c) */
	if (r->node[0] != '\0')
		snprintf(pods.node, sizeof(pods.node), "%s", r->node);
	/* the plane's CA as this daemon can read it: under systemd its own
	 * credential copy, the configured file being root's
	 * (lib/base/cred.h) */
	char cp_ca[CEP_PATH_MAX];
	cep_cred_path(d->cfg.cp.ca_file, cp_ca, sizeof(cp_ca));
	cep_exec_launch l = {.run_id = id,
	    .identity_dir = dir,
	    .relay_url = d->cfg.relay_advertise,
	    .log_path = log,
	    .cp_url = d->cfg.cp.url,
	    .cp_ca_file = cp_ca,
	    .cp_proxy = d->cfg.cp.proxy,
	    .connector = conn,
	    .ns = ns,
	    .appliance = d->cfg.appliance,
	    .not_after_ms = r->not_after_ms,
	    .pods = &pods};
	cep_exp *e = NULL;
	const char *types[64];
	if (r->spec_yaml != NULL &&
	    cep_exp_parse(r->spec_yaml, strlen(r->spec_yaml), r->spec_name, &e,
	        NULL, &err) == CEP_OK) {
		l.fault_types = types;
		l.nfault_types = fault_types(e, types, 64);
	}
	cep_exec_handle h = {0};
	cep_executor *ex = delegate_run_executor(d, r);
	pthread_mutex_unlock(&d->mu);
	int rv = delegate_executor_launch(ex, &l, &h, &err);
	cep_exp_free(e);
	pthread_mutex_lock(&d->mu);
	if (rv != CEP_OK) {
		cep_metrics_inc1(d->m_launch_fail, delegate_executor_name(ex));
		launch_failed(r, "launching the runner", &err);
		return;
	}
	r->h = h;
	r->h.run_id = rid;
	r->has_runner = true;
	/* A pid names the runner in this boot only: journaled for recovery.
	 * Other handles (pods) are derived from the run: nothing to journal. */
	if (h.pid > 0)
		journal_pid(d, r);
	char who[256];
	delegate_executor_describe(ex, &h, who, sizeof(who));
	cep_log_conn(CEP_LOG_INFO, r->id.s, h.connector,
	    "runner started: %s "
	    "(%s executor)",
	    who, delegate_executor_name(ex));
}

/* PENDING -> LAUNCHING -> runner started. d->mu held on entry and exit. */
static void launch(cep_delegate *d, cep_run *r)
{
	char uri[256];
	cep_err err = {0};
	cep_exec_scope at;
	cep_run_id rid = r->id;
	const char *id = rid.s;
	cep_executor *ex = delegate_run_executor(d, r);
	cep_metrics_inc1(d->m_launches, delegate_executor_name(ex));
	delegate_run_place(d, r, &at);
	int64_t not_after = r->deadline_ms + d->cfg.runner_margin_ms;
	pthread_mutex_unlock(&d->mu);
	int rv = mint_identity(d, id, at.connector, at.ns, not_after, uri,
	    sizeof(uri), &err);
	pthread_mutex_lock(&d->mu);
	if (rv != CEP_OK) {
		cep_metrics_inc1(d->m_launch_fail,
		    delegate_executor_name(delegate_run_executor(d, r)));
		launch_failed(r, "minting the runner identity", &err);
		return;
	}
	snprintf(r->identity_uri, sizeof(r->identity_uri), "%s", uri);
	r->not_after_ms = not_after;
	delegate_run_set_state(d, r, CEP__V1__RUN_STATE__RUN_LAUNCHING, "");
	/* Let the grant reach the relay first, so the runner's first call is
	 * not refused as "unknown run"; a relay that is down costs 1 s. */
	if (!delegate_relay_wait_synced(d, d->sync_gen, GRANT_WAIT_MS))
		cep_log_warn(r->id.s,
		    "relay has not confirmed the grant; "
		    "launching anyway (the runner retries)");
	if (r->aborting || d->stopping)
		return;
	exec_runner(d, r);
}

static Cep__V1__RunState verdict_state(const char *v)
{
	if (strcmp(v, "Pass") == 0)
		return CEP__V1__RUN_STATE__RUN_PASSED;
	if (strcmp(v, "Fail") == 0)
		return CEP__V1__RUN_STATE__RUN_FAILED;
	if (strcmp(v, "Aborted") == 0)
		return CEP__V1__RUN_STATE__RUN_ABORTED;
	return CEP__V1__RUN_STATE__RUN_ERROR;
}

/* Which final state, and why. */
static Cep__V1__RunState final_state(cep_delegate *d, cep_run *r,
    const char *undo_err, char *why, size_t len)
{
	if (undo_err != NULL) {
		snprintf(why, len, "cleanup incomplete: %s", undo_err);
		return CEP__V1__RUN_STATE__RUN_ERROR;
	}
	if (r->launch_failed) {
		snprintf(why, len, "%s", r->exit_what);
		return CEP__V1__RUN_STATE__RUN_ERROR;
	}
	if (r->verdict[0] != '\0') {
		Cep__V1__RunState st = verdict_state(r->verdict);
		if (r->verdict_reason[0] != '\0')
			snprintf(why, len, "%s", r->verdict_reason);
		else if (st == CEP__V1__RUN_STATE__RUN_ABORTED)
			snprintf(why, len, "%s", r->abort_reason);
		else if (st == CEP__V1__RUN_STATE__RUN_ERROR &&
		    strcmp(r->verdict, "Error") != 0)
			snprintf(why, len, "unknown verdict \"%s\"",
			    r->verdict);
		else
			why[0] = '\0';
		return st;
	}
	if (r->orphan) {
		snprintf(why, len, "%s", r->exit_what);
		return CEP__V1__RUN_STATE__RUN_ERROR;
	}
	if (r->aborting) {
		snprintf(why, len, "%s", r->abort_reason);
		return CEP__V1__RUN_STATE__RUN_ABORTED;
	}
	delegate_executor_unverdicted(delegate_run_executor(d, r), r->exit_what,
	    why, len);
	return CEP__V1__RUN_STATE__RUN_ERROR;
}

/* The runner is gone (or never started): CLEANUP, undo, remove the
 * identity, final state. d->mu held on entry and exit. An executor whose
 * undo is asynchronous leaves the run in CLEANUP (r->cleaning): the next
 * tick calls finish again. */
static void finish(cep_delegate *d, cep_run *r)
{
	char dir[4096];
	cep_err uerr = {0}, err = {0};
	cep_run_id rid = r->id;
	const char *id = rid.s;
	if (r->state != CEP__V1__RUN_STATE__RUN_CLEANUP) {
		char why[512];
		snprintf(why, sizeof(why), "%s",
		    r->split           ? "every child ended" :
		        !r->has_runner ? "no runner" :
		                         "runner ended");
		delegate_run_set_state(d, r, CEP__V1__RUN_STATE__RUN_CLEANUP,
		    why);
	}
	bool first = !r->cleaning;
	r->cleaning = true;
	cep_executor *ex = delegate_run_executor(d, r);
	pthread_mutex_unlock(&d->mu);
	enum cep_exec_state urv = delegate_executor_undo(ex, id, &uerr);
	if (first &&
	    delegate_run_dir(d, id, "identity", dir, sizeof(dir), &err) ==
	        CEP_OK &&
	    cep_files_rmtree(dir, &err) != CEP_OK)
		cep_log_warn(id, "removing the identity: %s", err.msg);
	pthread_mutex_lock(&d->mu);
	if (urv == CEP_EXEC_PENDING)
		return;
	bool objects_gone = urv == CEP_EXEC_DONE;
	if (objects_gone)
		urv = delegate_undo_faults(d, r, &uerr);
	if (urv == CEP_EXEC_PENDING)
		return; /* a cleanup runner is at work: ask again */
	r->cleaning = false;
	if (!objects_gone)
		cep_log_error(id, "undo failed: %s", uerr.msg);
	char why[512];
	Cep__V1__RunState st = final_state(d, r,
	    urv == CEP_EXEC_DONE ? NULL : uerr.msg, why, sizeof(why));
	r->has_runner = false;
	delegate_run_set_state(d, r, st, why);
}

/* The launch ended in a split across nodes: r becomes a parent of one
 * child run per node (runs_split.c), or ends naming why not. */
static void split(cep_delegate *d, cep_run *r, const cep_exec_split *sp)
{
	cep_err err = {0};
	r->has_runner = false;
	if (r->aborting) {
		finish(d, r);
		return;
	}
	if (delegate_split_start(d, r, sp, &err) == CEP_OK)
		return;
	launch_failed(r, "splitting the run across nodes", &err);
	finish(d, r);
}

/* A run with a live runner: reap, deadline, abort grace. */
static void watch(cep_delegate *d, cep_run *r)
{
	char what[512];
	cep_exec_split sp;
	cep_executor *ex = delegate_run_executor(d, r);
	bool exited = delegate_executor_poll(ex, &r->h, what, sizeof(what)) ==
	    CEP_EXEC_EXITED;
	if (exited && delegate_executor_split(ex, r->id.s, &sp)) {
		cep_log_info(r->id.s, "no one node holds the share: %s", what);
		split(d, r, &sp);
		return;
	}
	if (exited) {
		snprintf(r->exit_what, sizeof(r->exit_what), "%s", what);
		if (strncmp(what, "launch failed: ", 15) == 0) {
			/* an asynchronous launch's failure (executor.h), as a
			 * synchronous launch's error reads */
			r->launch_failed = true;
			cep_metrics_inc1(d->m_launch_fail,
			    delegate_executor_name(ex));
			snprintf(r->exit_what, sizeof(r->exit_what),
			    "launching the runner: %.600s", what + 15);
		}
		char who[256];
		delegate_executor_describe(ex, &r->h, who, sizeof(who));
		cep_log_info(r->id.s, "runner %s ended: %s", who, what);
		finish(d, r);
		return;
	}
	if (!r->aborting && cep_clock_now_ms() >= r->deadline_ms)
		delegate_run_request_abort(d, r, "deadline exceeded");
	if (r->aborting && !r->killed &&
	    cep_clock_mono_ms() - r->abort_mono >= CEP_ABORT_GRACE_MS) {
		char who[256];
		delegate_executor_describe(ex, &r->h, who, sizeof(who));
		cep_log_warn(r->id.s,
		    "runner %s still there %d s after the "
		    "abort: killing it",
		    who, CEP_ABORT_GRACE_MS / 1000);
		delegate_executor_kill(ex, &r->h);
		r->killed = true;
	}
}

static void tick_run(cep_delegate *d, cep_run *r)
{
	if (cep_runstate_final(r->state))
		return;
	if (r->split && !r->cleaning) { /* a parent: its children run */
		if (delegate_split_tick(d, r))
			finish(d, r);
		return;
	}
	if (r->cleaning) {
		finish(d, r);
		return;
	}
	if (r->has_runner) {
		watch(d, r);
		return;
	}
	if (r->state == CEP__V1__RUN_STATE__RUN_PENDING && !r->orphan &&
	    !r->aborting && !r->launch_failed) {
		if (cep_clock_now_ms() >= r->deadline_ms)
			delegate_run_request_abort(d, r, "deadline exceeded");
		else
			launch(d, r);
		if (r->has_runner || d->stopping)
			return;
	}
	finish(d, r);
}

static void tick(cep_delegate *d)
{
	/* Runs are never removed and new ones go before older ones, so a
	 * walk survives the lock being dropped inside tick_run. */
	for (cep_run *r = d->runs; r != NULL && !d->stopping; r = r->next)
		tick_run(d, r);
	delegate_run_announce_time(d);
}

/* Wakes the monitor (and delegate_stop, waiting for runs to end) on
 * every change of the run table. */
static void monitor_news(cep_delegate *d, enum cep_run_news news, void *arg)
{
	(void)arg;
	if (news == CEP_RUN_NEWS_CHANGED)
		pthread_cond_broadcast(&d->mon_cv);
}

static void *monitor_main(void *arg)
{
	cep_delegate *d = arg;
	pthread_mutex_lock(&d->mu);
	while (!d->stopping) {
		atomic_fetch_add(&d->mon_ticks, 1);
		tick(d);
		if (d->stopping)
			break;
		cep_clock_cond_wait_ms(&d->mon_cv, &d->mu, TICK_MS);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

int delegate_monitor_start(cep_delegate *d, cep_err *err)
{
	if (delegate_run_subscribe(d, monitor_news, NULL, err) != CEP_OK)
		return err->code;
	int rv = pthread_create(&d->monitor, NULL, monitor_main, d);
	if (rv != 0)
		return cep_err_errno(err, rv, "starting the monitor thread");
	d->monitor_started = true;
	return CEP_OK;
}

void delegate_monitor_join(cep_delegate *d)
{
	if (d->monitor_started)
		pthread_join(d->monitor, NULL);
	d->monitor_started = false;
}
