/*
 * recover.c - rebuilding the run table from the journals at start.
 *
 * Every state/runs/<id>/journal is replayed. A run whose last state is
 * final is loaded read-only (List, Get, Follow). Any other run is reopened
 * for appending (which cuts a torn tail) and either adopted - its runner
 * is alive with the journaled pid and start time, so it is polled and
 * granted again and finishes normally - or marked orphaned, and the
 * monitor undoes what it left and ends it as ERROR "delegate restarted;
 * runner gone" (or with the verdict the runner had already reported).
 * A journal that cannot be read, or does not begin with the run's
 * `created` record, is reported and skipped; it is never deleted.
 *
 * A parent of runs split across nodes (runs_split.c) has no runner to
 * adopt: it is loaded with its children's ids and waits for them again.
 *
 * Kubernetes runs are always adopted: their pod's name and place follow
 * from the run id and the spec, and the kubernetes executor finds out in
 * the background whether the pod is still there (if not, the run ends and
 * its cleanup confirms both objects gone). Then delegate_recover_collect starts
 * the background sweep of runner objects of finished or unknown runs
 * (executor_kube_collect.c).
 */
#define _GNU_SOURCE
#include "delegate_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "run_id.h"

typedef struct replay_st {
	cep_run *r;
	size_t n;
	bool created;
	bool bad_first;
} replay_st;

static void apply_created(cep_run *r, const Cep__V1__RunInfo *ci)
{
	snprintf(r->name, sizeof(r->name), "%s", ci->name ? ci->name : "");
	snprintf(r->spec_name, sizeof(r->spec_name), "%s",
	    ci->spec_name ? ci->spec_name : "");
	snprintf(r->task_id, sizeof(r->task_id), "%s",
	    ci->task_id ? ci->task_id : "");
	r->created_ms = ci->created_ms;
	snprintf(r->parent, sizeof(r->parent), "%s",
	    ci->parent_run_id ? ci->parent_run_id : "");
	snprintf(r->node, sizeof(r->node), "%s", ci->node ? ci->node : "");
}

/* A parent's children (runs_split.c): it runs no runner from then on. */
static void apply_split(cep_run *r, const Cep__V1__RunSplit *sp)
{
	size_t n = sp->n_children;
	if (n == 0 || n > CEP_EXEC_MAX_SPLIT || r->children != NULL)
		return;
	r->children = calloc(n, sizeof(*r->children));
	if (r->children == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		const Cep__V1__RunChild *c = sp->children[i];
		if (!cep_run_id_parse(&r->children[i].id, c->run_id))
			snprintf(r->children[i].id.s,
			    sizeof(r->children[i].id.s), "?");
		snprintf(r->children[i].node, sizeof(r->children[i].node), "%s",
		    c->node ? c->node : "");
		r->children[i].count = c->count;
	}
	r->nchildren = n;
	r->split = true;
}

static void apply_state(cep_run *r, const Cep__V1__JournalRecord *rec)
{
	r->state = rec->state;
	snprintf(r->reason, sizeof(r->reason), "%s",
	    rec->text ? rec->text : "");
	if (cep_runstate_final(rec->state))
		r->ended_ms = rec->time_ms;
}

static int replay_cb(const Cep__V1__JournalRecord *rec, void *arg)
{
	replay_st *st = arg;
	cep_run *r = st->r;
	if (st->n++ == 0 &&
	    rec->rec_case != CEP__V1__JOURNAL_RECORD__REC_CREATED) {
		st->bad_first = true;
		return 1;
	}
	switch (rec->rec_case) {
	case CEP__V1__JOURNAL_RECORD__REC_CREATED:
		if (!st->created)
			apply_created(r, rec->created);
		st->created = true;
		break;
	case CEP__V1__JOURNAL_RECORD__REC_SPEC_YAML:
		free(r->spec_yaml);
		r->spec_yaml = strdup(rec->spec_yaml ? rec->spec_yaml : "");
		break;
	case CEP__V1__JOURNAL_RECORD__REC_STATE: apply_state(r, rec); break;
	case CEP__V1__JOURNAL_RECORD__REC_EVENT:
		if (rec->event->seq == r->last_seq + 1)
			(void)delegate_run_add_event(r, rec->event);
		break;
	case CEP__V1__JOURNAL_RECORD__REC_FAULT:
		(void)delegate_run_add_fault(r, rec->fault, rec->time_ms);
		break;
	case CEP__V1__JOURNAL_RECORD__REC_REVERTED:
		delegate_run_mark_reverted(r, rec->reverted->fault_id,
		    rec->time_ms,
		    rec->text && rec->text[0] ? rec->text : "runner");
		break;
	case CEP__V1__JOURNAL_RECORD__REC_RUNNER_PID:
		r->h.pid = rec->runner_pid;
		r->h.start = rec->pid_start;
		break;
	case CEP__V1__JOURNAL_RECORD__REC_DEADLINE_MS:
		r->deadline_ms = rec->deadline_ms;
		break;
	case CEP__V1__JOURNAL_RECORD__REC_SPLIT:
		apply_split(r, rec->split);
		break;
	default: break;
	}
	return 0;
}

static void orphaned(cep_run *r)
{
	r->h.pid = 0;
	r->orphan = true;
	snprintf(r->exit_what, sizeof(r->exit_what),
	    "delegate restarted; runner gone");
	cep_log_warn(r->id.s,
	    "runner gone after a delegate restart (state %s); "
	    "cleaning up",
	    cep_runstate_name(r->state));
}

/* Adopt a live runner, or mark the run for cleanup. The executor
 * decides whether the runner lives (a process: pid + start time, not a
 * zombie; a pod: watched again, its end or absence reported by poll). */
static void resume(cep_delegate *d, cep_run *r)
{
	cep_err err = {0};
	cep_exec_scope at;
	cep_executor *ex = delegate_run_executor(d, r);
	r->deadman_ms = d->cfg.deadman_ms;
	r->h.run_id = r->id;
	snprintf(r->h.connector, sizeof(r->h.connector), "%s", r->connector);
	snprintf(r->h.ns, sizeof(r->h.ns), "%s", r->ns);
	delegate_run_place(d, r, &at);
	if (delegate_executor_adopt(ex, &r->h, &err) != CEP_OK ||
	    cep_pki_identity_uri(r->identity_uri, sizeof(r->identity_uri),
	        d->cfg.appliance, at.connector, at.ns, r->id.s,
	        &err) != CEP_OK) {
		if (err.code != CEP_NOT_FOUND)
			cep_log_error(r->id.s, "adopting the runner: %s",
			    err.msg);
		r->identity_uri[0] = '\0'; /* no grant for a gone runner */
		orphaned(r);
		return;
	}
	r->has_runner = true;
	r->not_after_ms = r->deadline_ms + d->cfg.runner_margin_ms;
	char who[256];
	delegate_executor_describe(ex, &r->h, who, sizeof(who));
	cep_log_conn(CEP_LOG_INFO, r->id.s, r->h.connector,
	    "adopted runner %s "
	    "(state %s)",
	    who, cep_runstate_name(r->state));
}

static void load_one(cep_delegate *d, const char *id)
{
	char dir[4096];
	cep_err err = {0};
	if (delegate_run_dir(d, id, NULL, dir, sizeof(dir), &err) != CEP_OK)
		return;
	cep_run *r = delegate_run_alloc();
	if (r == NULL)
		return;
	cep_run_id_parse(&r->id, id); /* the caller checked the name */
	replay_st st = {.r = r};
	cep_journal_replay_info info = {0};
	int rv = cep_journal_replay(dir, replay_cb, &st, &info, &err);
	if (rv != CEP_OK || !st.created || st.bad_first) {
		cep_log_error(id,
		    "journal %s is unusable (%s); skipped, left on "
		    "disk",
		    dir,
		    rv != CEP_OK ?
		        err.msg :
		        "it does not begin with the run's created record");
		delegate_run_free(r);
		return;
	}
	if (info.torn_tail)
		cep_log_warn(id,
		    "journal has a torn tail after %zu records: %s",
		    info.records, info.detail);
	if (!cep_runstate_final(r->state)) {
		if (cep_journal_open(dir, &r->j, &err) != CEP_OK) {
			cep_log_error(id, "reopening the journal: %s; skipped",
			    err.msg);
			delegate_run_free(r);
			return;
		}
		if (r->split) /* a parent runs no runner: its children do */
			cep_log_info(id, "parent of %zu child run(s)",
			    r->nchildren);
		else
			resume(d, r);
	}
	delegate_run_insert(d, r);
}

int delegate_recover(cep_delegate *d, cep_err *err)
{
	DIR *dir = opendir(d->runs_dir);
	if (dir == NULL)
		return cep_err_errno(err, errno, d->runs_dir);
	struct dirent *de;
	while ((de = readdir(dir)) != NULL) {
		if (!cep_run_id_valid(de->d_name))
			continue;
		load_one(d, de->d_name);
	}
	closedir(dir);
	cep_log_info(NULL, "recovered %zu run(s), %zu still active", d->nruns,
	    delegate_run_active_count(d));
	return CEP_OK;
}

static bool run_live(void *arg, const char *run_id)
{
	cep_delegate *d = arg;
	pthread_mutex_lock(&d->mu);
	cep_run *r = delegate_run_find(d, run_id);
	bool live = r != NULL && !cep_runstate_final(r->state);
	pthread_mutex_unlock(&d->mu);
	return live;
}

/* Every (connector, namespace) the journals name, for the collection. */
static size_t journal_places(cep_delegate *d, cep_exec_place **out)
{
	size_t n = 0, cap = 0;
	cep_exec_place *p = NULL;
	for (cep_run *r = d->runs; r != NULL; r = r->next) {
		/* the places of the runs the collecting executor runs */
		if (delegate_run_executor(d, r) != d->kex)
			continue;
		bool seen = false;
		for (size_t i = 0; i < n && !seen; i++)
			seen = strcmp(p[i].connector, r->connector) == 0 &&
			    strcmp(p[i].ns, r->ns) == 0;
		if (seen)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 8;
			cep_exec_place *np = realloc(p, nc * sizeof(*p));
			if (np == NULL)
				break;
			p = np;
			cap = nc;
		}
		snprintf(p[n].connector, sizeof(p[n].connector), "%s",
		    r->connector);
		snprintf(p[n].ns, sizeof(p[n].ns), "%s", r->ns);
		n++;
	}
	*out = p;
	return n;
}

int delegate_recover_collect(cep_delegate *d, cep_err *err)
{
	if (d->kex == NULL)
		return CEP_OK;
	cep_exec_place *places = NULL;
	pthread_mutex_lock(&d->mu);
	size_t n = journal_places(d, &places);
	pthread_mutex_unlock(&d->mu);
	int rv = delegate_executor_kube_collect(d->kex, places, n, run_live, d,
	    err);
	free(places);
	return rv;
}
