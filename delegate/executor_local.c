/*
 * executor_local.c - the local executor: the runner is a child process of
 * the delegate on the appliance itself (host targets in a home without a
 * launcher, demos, tests; docs/privsep.md).
 *
 * A runner is named by (pid, /proc start time) so a reused pid is never
 * mistaken for it. Children are reaped with waitpid(WNOHANG) from the
 * monitor's poll (no SIGCHLD handler: the delegate is threaded and a
 * polled reap needs no async-signal care). Runners adopted after a restart
 * are not our children: they are polled by pid + start time (+ zombie).
 *
 * Undo does not trust the runner's bookkeeping: every process whose command
 * line is a cep-runner with "--run-id <id>" (lib/proc/runproc.h: the runner and
 * the fault workers it forked, which inherit its command line) is
 * SIGKILLed, and the undo succeeds only when /proc shows none left.
 *
 * Node-level faults a dead runner left (nftables tables, qdiscs, fill
 * files) are undone by a cleanup runner, a child `cep-runner --cleanup`
 * (lib/proc/cleanrun.h) - never in the delegate, which links no netfilter
 * library and, installed, holds no capability.
 */
#define _GNU_SOURCE
#include "executor.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanrun.h"
#include "log.h"
#include "runproc.h"
#include "forkexec.h"
#include "files.h"
#include "procfs.h"
#include "run_id.h"

#define UNDO_TRIES 30 /* x 100 ms that SIGKILLed ones may linger */

typedef struct lclean {
	cep_run_id id;
	cep_cleanrun *cr;
	struct lclean *next;
} lclean;

typedef struct local_exec {
	char bin[4096];
	char runs[4096]; /* <runs>/<run-id>/: the cleanup's files */
	lclean *cleans;  /* the monitor thread's only */
} local_exec;

static int local_launch(void *impl, const cep_exec_launch *l,
    cep_exec_handle *h, cep_err *err)
{
	local_exec *lx = impl;
	char *argv[CEP_RUNPROC_ARGV_MAX];
	cep_runproc_args a = {.bin = lx->bin,
	    .relay_url = l->relay_url,
	    .identity_dir = l->identity_dir,
	    .run_id = l->run_id,
	    .server_name = l->server_name,
	    .cp_url = l->cp_url,
	    .cp_ca_file = l->cp_ca_file,
	    .cp_proxy = l->cp_proxy};
	cep_runproc_argv(&a, argv);
	cep_forkexec_opts o = {.argv = argv, .log_path = l->log_path};
	pid_t pid;
	int rv = cep_forkexec_run(&o, &pid, &h->start, err);
	if (rv != CEP_OK)
		return rv;
	h->pid = pid;
	h->child = true;
	return CEP_OK;
}

static enum cep_exec_status local_poll(void *impl, const cep_exec_handle *h,
    char *what, size_t len)
{
	(void)impl;
	int st = 0;
	pid_t r = waitpid(h->pid, &st, WNOHANG);
	if (r == h->pid) {
		cep_forkexec_describe(st, what, len);
		return CEP_EXEC_EXITED;
	}
	if (r == 0 && h->child)
		return CEP_EXEC_ALIVE;
	/* Not (or no longer) our child: an adopted runner. */
	if (cep_procfs_start_time(h->pid) != h->start ||
	    cep_procfs_state(h->pid) == 'Z') {
		snprintf(what, len,
		    "status unknown (not a child of this delegate)");
		return CEP_EXEC_EXITED;
	}
	return CEP_EXEC_ALIVE;
}

static void local_kill(void *impl, const cep_exec_handle *h)
{
	(void)impl;
	if (h->pid <= 1 || cep_procfs_start_time(h->pid) != h->start)
		return;
	if (getpgid(h->pid) == h->pid)
		kill(-h->pid, SIGKILL);
	kill(h->pid, SIGKILL);
}

int delegate_executor_local_count(const char *run_id)
{
	return cep_runproc_scan(run_id, CEP_RUNPROC_RUNNER, 0, NULL);
}

static enum cep_exec_state local_undo(void *impl, const char *run_id,
    cep_err *err)
{
	(void)impl;
	return delegate_exec_state_of(
	    cep_runproc_kill(run_id, UNDO_TRIES, err));
}

static bool no_records(const char *recs)
{
	json_t *j = json_loads(recs ? recs : "[]", 0, NULL);
	bool none = json_is_array(j) && json_array_size(j) == 0;
	json_decref(j);
	return none;
}

static lclean **find_clean(local_exec *lx, const char *run_id)
{
	lclean **pp = &lx->cleans;
	while (*pp != NULL && strcmp((*pp)->id.s, run_id) != 0)
		pp = &(*pp)->next;
	return pp;
}

static enum cep_exec_state clean_start(local_exec *lx, const char *run_id,
    const char *recs_json, cep_err *err)
{
	char dir[4096];
	cep_run_id id;
	if (!cep_run_id_parse(&id, run_id))
		return delegate_exec_state_of(cep_err_set(err,
		    CEP_INVALID_ARGUMENT, "cleanup: not a run id: \"%s\"",
		    run_id != NULL ? run_id : ""));
	lclean *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return delegate_exec_state_of(
		    cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory"));
	c->id = id;
	cep_cleanrun_opts o = {.runner_bin = lx->bin,
	    .dir = dir,
	    .run_id = run_id,
	    .recs_json = recs_json};
	int rv = cep_files_path(dir, sizeof(dir), err, "%s/%s", lx->runs,
	    run_id);
	if (rv == CEP_OK)
		rv = cep_cleanrun_start(&o, &c->cr, err);
	if (rv != CEP_OK) {
		free(c);
		return CEP_EXEC_FAILED;
	}
	cep_log_info(run_id, "cleanup runner started: pid %d",
	    cep_cleanrun_pid(c->cr));
	c->next = lx->cleans;
	lx->cleans = c;
	return CEP_EXEC_PENDING;
}

static enum cep_exec_state local_node_undo(void *impl, const char *run_id,
    const char *recs_json, char **undone, cep_err *err)
{
	local_exec *lx = impl;
	*undone = NULL;
	lclean **pp = find_clean(lx, run_id);
	if (*pp == NULL)
		return no_records(recs_json) ?
		    CEP_EXEC_DONE :
		    clean_start(lx, run_id, recs_json, err);
	enum cep_cleanrun_state st = cep_cleanrun_poll((*pp)->cr, undone, err);
	if (st == CEP_CLEANRUN_RUNNING)
		return CEP_EXEC_PENDING;
	lclean *c = *pp;
	*pp = c->next;
	cep_cleanrun_free(c->cr);
	free(c);
	return st == CEP_CLEANRUN_DONE ? CEP_EXEC_DONE : CEP_EXEC_FAILED;
}

static void local_free(void *impl)
{
	local_exec *lx = impl;
	while (lx->cleans != NULL) {
		lclean *c = lx->cleans;
		lx->cleans = c->next;
		cep_cleanrun_free(c->cr);
		free(c);
	}
	free(lx);
}

static const cep_executor_ops local_ops = {
    .name = "local",
    .launch = local_launch,
    .poll = local_poll,
    .kill = local_kill,
    .undo = local_undo,
    .free = local_free,
    .node_undo = local_node_undo,
};

int delegate_executor_local_new(const char *runner_bin, const char *runs_dir,
    cep_executor **out, cep_err *err)
{
	local_exec *lx = calloc(1, sizeof(*lx));
	if (lx == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	if (strlen(runner_bin) >= sizeof(lx->bin) ||
	    strlen(runs_dir) >= sizeof(lx->runs)) {
		free(lx);
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "runner binary or runs directory path too long");
	}
	snprintf(lx->bin, sizeof(lx->bin), "%s", runner_bin);
	snprintf(lx->runs, sizeof(lx->runs), "%s", runs_dir);
	*out = delegate_executor_wrap(&local_ops, lx);
	if (*out == NULL) {
		free(lx);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	}
	return CEP_OK;
}
