/*
 * launcher.c - the launcher's runs and its Launcher service (launcher.h).
 *
 * A run is what one Launch started (or a restart found in /proc): its
 * runner, named by pid + /proc start time, and at most one cleanup runner.
 * Children are reaped by pid only (a tick thread for runners, Cleanup
 * polls for cleanup runners), never with waitpid(-1), so neither steals
 * the other's status. Every call is first checked for the peer's uid
 * (NNG_OPT_IPC_PEER_UID of its pipe) and then for every field (check.c).
 */
#define _GNU_SOURCE
#include "launcher_int.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caps.h"
#include "cleanrun.h"
#include "forkexec.h"
#include "log.h"
#include "runproc.h"
#include "clock.h"
#include "files.h"
#include "procfs.h"
#include "run_id.h"

#define TICK_MS 250
#define BACKSTOP_MS 60000 /* past the deadline: the launcher kills */
#define UNDO_TRIES 30     /* x 100 ms that SIGKILLed ones may linger */

lrun *launcher_lr_find(cep_launcher *l, const char *id)
{
	lrun *r = l->runs;
	while (r != NULL && strcmp(r->id.s, id) != 0)
		r = r->next;
	return r;
}

lrun *launcher_lr_add(cep_launcher *l, const char *id)
{
	cep_run_id rid;
	if (!cep_run_id_parse(&rid, id))
		return NULL; /* callers check the id first */
	lrun *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->id = rid;
	r->next = l->runs;
	l->runs = r;
	return r;
}

void launcher_lr_drop(cep_launcher *l, lrun *r)
{
	for (lrun **pp = &l->runs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	cep_cleanrun_free(r->cr);
	free(r);
}

/* Is the run's runner still there? Reaps a child (l->mu held). */
bool launcher_lr_alive(lrun *r)
{
	if (r->pid <= 0 || r->exited)
		return false;
	if (r->child) {
		int st = 0;
		pid_t w = waitpid(r->pid, &st, WNOHANG);
		if (w == 0)
			return true;
		r->exited = true;
		if (w == r->pid)
			cep_forkexec_describe(st, r->how, sizeof(r->how));
		else
			snprintf(r->how, sizeof(r->how), "status unknown (%s)",
			    strerror(errno));
		cep_log_info(r->id.s, "runner pid %d exited: %s", (int)r->pid,
		    r->how);
		return false;
	}
	if (cep_procfs_start_time(r->pid) == r->start &&
	    cep_procfs_state(r->pid) != 'Z')
		return true;
	r->exited = true;
	snprintf(r->how, sizeof(r->how),
	    "status unknown (not started by "
	    "this launcher)");
	return false;
}

/* The runner's process group (its own session) and the runner. */
void launcher_lr_signal(lrun *r, int sig)
{
	if (r->pid <= 1 || r->exited ||
	    cep_procfs_start_time(r->pid) != r->start)
		return;
	if (getpgid(r->pid) == r->pid)
		kill(-r->pid, sig);
	kill(r->pid, sig);
}

static void tick(cep_launcher *l)
{
	int64_t now = cep_clock_now_ms();
	for (lrun *r = l->runs; r != NULL; r = r->next) {
		if (!launcher_lr_alive(r) || r->deadline_ms == 0 ||
		    r->backstop || now < r->deadline_ms + BACKSTOP_MS)
			continue;
		/* the runner reverts at its deadline and the delegate aborts
		 * it; one still there a minute later is stuck */
		cep_log_warn(r->id.s,
		    "runner pid %d still running %d s after "
		    "the run's deadline: killing it",
		    (int)r->pid, BACKSTOP_MS / 1000);
		launcher_lr_signal(r, SIGKILL);
		r->backstop = true;
	}
}

static void *tick_main(void *arg)
{
	cep_launcher *l = arg;
	pthread_mutex_lock(&l->mu);
	while (!l->closing) {
		tick(l);
		cep_clock_cond_wait_ms(&l->cv, &l->mu, TICK_MS);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* A restarted launcher: the runners its predecessor started (their
 * identity lies in our runs directory) are polled by pid + start time. */
static void adopt_one(int pid, const char *run_id, void *arg)
{
	cep_launcher *l = arg;
	char ident[4096];
	size_t n = strlen(l->runs_dir);
	if (!cep_run_id_valid(run_id) ||
	    !cep_runproc_identity(pid, ident, sizeof(ident)) ||
	    strncmp(ident, l->runs_dir, n) != 0 || ident[n] != '/' ||
	    launcher_lr_find(l, run_id) != NULL)
		return;
	lrun *r = launcher_lr_add(l, run_id);
	if (r == NULL)
		return;
	r->pid = pid;
	r->start = cep_procfs_start_time(pid);
	cep_log_info(run_id,
	    "adopted runner pid %d (started before this "
	    "launcher)",
	    pid);
}

/* Identities of runs no runner holds any more (a launcher that died
 * before their Undo): keys do not stay behind. Logs do, until reboot
 * (/run) or the operator removes them. */
static void drop_stale_identities(cep_launcher *l)
{
	DIR *d = opendir(l->runs_dir);
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL) {
		char path[4400];
		cep_err err = {0};
		if (!cep_run_id_valid(de->d_name) ||
		    launcher_lr_find(l, de->d_name) ||
		    cep_files_path(path, sizeof(path), &err, "%s/%s/identity",
		        l->runs_dir, de->d_name) != CEP_OK ||
		    access(path, F_OK) != 0)
			continue;
		if (cep_files_rmtree(path, &err) == CEP_OK)
			cep_log_info(de->d_name,
			    "removed the identity of a runner "
			    "that is gone");
		else
			cep_log_warn(de->d_name,
			    "removing a stale identity: %s", err.msg);
	}
	if (d != NULL)
		closedir(d);
}

/* Kills every process of the run (not its cleanup runner), bounded;
 * CEP_OK only when /proc shows none left. l->mu NOT held. */
int launcher_lr_kill_all(const char *run_id, cep_err *err)
{
	return cep_runproc_kill(run_id, UNDO_TRIES, err);
}

size_t launcher_nruns(cep_launcher *l)
{
	size_t n = 0;
	pthread_mutex_lock(&l->mu);
	for (lrun *r = l->runs; r != NULL; r = r->next)
		n++;
	pthread_mutex_unlock(&l->mu);
	return n;
}

static int init_sync(cep_launcher *l)
{
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0)
		return -1;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rv = pthread_mutex_init(&l->mu, NULL) |
	    pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	return rv;
}

static int copy_opts(cep_launcher *l, const cep_launcher_opts *o, cep_err *err)
{
	if (o->runner_bin == NULL || o->runner_bin[0] != '/' ||
	    o->runs_dir == NULL || o->runs_dir[0] != '/' || o->url == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "the launcher needs "
		    "absolute runner and runs directory paths and a URL");
	int rv = cep_files_path(l->bin, sizeof(l->bin), err, "%s",
	    o->runner_bin);
	if (rv == CEP_OK)
		rv = cep_files_path(l->runs_dir, sizeof(l->runs_dir), err, "%s",
		    o->runs_dir);
	if (rv == CEP_OK)
		rv = cep_files_path(l->url, sizeof(l->url), err, "%s", o->url);
	l->allow_uid = o->allow_uid;
	l->stop_wait_ms = o->stop_wait_ms > 0 ? o->stop_wait_ms : 10000;
	l->set_caps = o->set_caps;
	return rv;
}

int launcher_new(const cep_launcher_opts *o, cep_launcher **out, cep_err *err)
{
	*out = NULL;
	cep_launcher *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	if (init_sync(l) != 0) {
		free(l);
		return cep_err_set(err, CEP_INTERNAL, "pthread init failed");
	}
	int rv = copy_opts(l, o, err);
	if (rv == CEP_OK)
		rv = cep_files_mkdirs(l->runs_dir, 0700, err);
	if (rv == CEP_OK && access(l->bin, X_OK) != 0)
		rv = cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "runner binary %s "
		    "is not executable: %s",
		    l->bin, strerror(errno));
	if (rv == CEP_OK) {
		(void)cep_runproc_each_runner(adopt_one, l);
		drop_stale_identities(l);
	}
	if (rv == CEP_OK && pthread_create(&l->tick, NULL, tick_main, l) != 0)
		rv = cep_err_set(err, CEP_INTERNAL, "starting the tick thread");
	else if (rv == CEP_OK)
		l->tick_started = true;
	if (rv == CEP_OK)
		rv = launcher_serve(l, err);
	if (rv != CEP_OK) {
		launcher_free(l);
		return rv;
	}
	*out = l;
	return CEP_OK;
}

/* Runners still there, and cleanup runners still undoing (let them
 * finish within the bound: what they leave waits for the next start). */
static size_t alive_count(cep_launcher *l)
{
	size_t n = 0;
	for (lrun *r = l->runs; r != NULL; r = r->next)
		n += launcher_lr_alive(r) + cep_cleanrun_running(r->cr);
	return n;
}

void launcher_stop(cep_launcher *l)
{
	if (l == NULL)
		return;
	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	size_t n = alive_count(l);
	cep_log_info(NULL, "stopping: SIGTERM to %zu runner(s), which revert",
	    n);
	for (lrun *r = l->runs; r != NULL; r = r->next)
		if (launcher_lr_alive(r))
			launcher_lr_signal(r, SIGTERM);
	int64_t end = cep_clock_mono_ms() + l->stop_wait_ms;
	while ((n = alive_count(l)) > 0 && cep_clock_mono_ms() < end)
		cep_clock_cond_wait_ms(&l->cv, &l->mu, 100);
	for (lrun *r = l->runs; r != NULL && n > 0; r = r->next)
		if (launcher_lr_alive(r) || cep_cleanrun_running(r->cr)) {
			cep_log_warn(r->id.s,
			    "runner or cleanup runner still "
			    "running %lld ms after the stop began: killing it",
			    (long long)l->stop_wait_ms);
			launcher_lr_signal(r, SIGKILL); /* cleanups: at free */
		}
	pthread_mutex_unlock(&l->mu);
}

void launcher_free(cep_launcher *l)
{
	if (l == NULL)
		return;
	cep_rpc_server_free(l->srv);
	pthread_mutex_lock(&l->mu);
	l->closing = true;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	if (l->tick_started)
		pthread_join(l->tick, NULL);
	while (l->runs != NULL) {
		lrun *r = l->runs;
		if (r->child && !r->exited)
			(void)waitpid(r->pid, NULL, WNOHANG);
		launcher_lr_drop(l, r);
	}
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
}
