/*
 * runs_submit.c - Submit: validate, check policy, journal, hand to the
 * monitor. A refusal (bad spec, policy) creates nothing on disk.
 */
#define _GNU_SOURCE
#include "delegate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp.h"
#include "log.h"
#include "policy.h"
#include "clock.h"
#include "files.h"
#include "run_id.h"

static int parse_spec(const char *yaml, size_t len, const char *fname,
    cep_exp **exp, cep_err *err)
{
	cep_exp_diags *diags = calloc(1, sizeof(*diags));
	if (diags == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	int rv = cep_exp_parse(yaml, len, fname, exp, diags, err);
	if (rv != CEP_OK) {
		size_t more = diags->n + diags->dropped;
		if (more > 1)
			cep_err_wrap(err, "%zu problems, the first", more);
		err->code = CEP_INVALID_ARGUMENT;
		rv = CEP_INVALID_ARGUMENT;
	}
	free(diags);
	return rv;
}

/* The first records of a run: created, spec, deadline, PENDING. */
static int journal_start(cep_delegate *d, cep_run *r, cep_err *err)
{
	cep_run_view v;
	delegate_run_view_init(&v, r);
	Cep__V1__JournalRecord rec = CEP__V1__JOURNAL_RECORD__INIT;
	rec.rec_case = CEP__V1__JOURNAL_RECORD__REC_CREATED;
	rec.created = &v.info;
	int rv = delegate_run_journal(d, r, &rec, false, err);
	delegate_run_view_fini(&v);
	if (rv != CEP_OK)
		return rv;
	Cep__V1__JournalRecord spec = CEP__V1__JOURNAL_RECORD__INIT;
	spec.rec_case = CEP__V1__JOURNAL_RECORD__REC_SPEC_YAML;
	spec.spec_yaml = r->spec_yaml;
	if ((rv = delegate_run_journal(d, r, &spec, false, err)) != CEP_OK)
		return rv;
	Cep__V1__JournalRecord dl = CEP__V1__JOURNAL_RECORD__INIT;
	dl.rec_case = CEP__V1__JOURNAL_RECORD__REC_DEADLINE_MS;
	dl.deadline_ms = r->deadline_ms;
	if ((rv = delegate_run_journal(d, r, &dl, false, err)) != CEP_OK)
		return rv;
	Cep__V1__JournalRecord st = CEP__V1__JOURNAL_RECORD__INIT;
	st.rec_case = CEP__V1__JOURNAL_RECORD__REC_STATE;
	st.state = CEP__V1__RUN_STATE__RUN_PENDING;
	st.text = (char *)"";
	return delegate_run_journal(d, r, &st, true, err);
}

static cep_run *new_run(cep_delegate *d, const cep_exp *exp, const char *yaml,
    size_t len, const char *spec_name, const char *task_id)
{
	cep_run *r = delegate_run_alloc();
	if (r == NULL)
		return NULL;
	r->spec_yaml = strndup(yaml, len);
	if (r->spec_yaml == NULL) {
		delegate_run_free(r);
		return NULL;
	}
	cep_run_id_new(&r->id);
	snprintf(r->name, sizeof(r->name), "%s", cep_exp_name(exp));
	snprintf(r->spec_name, sizeof(r->spec_name), "%s", spec_name);
	snprintf(r->task_id, sizeof(r->task_id), "%s", task_id);
	r->created_ms = cep_clock_now_ms();
	r->deadline_ms = r->created_ms + cep_exp_duration_ms(exp) +
	    CEP_RUN_SETUP_MS;
	r->deadman_ms = cep_exp_deadman_ms(exp);
	if (r->deadman_ms <= 0)
		r->deadman_ms = d->cfg.deadman_ms;
	r->state = CEP__V1__RUN_STATE__RUN_PENDING;
	return r;
}

/* d->mu held; the experiment passed the policy (check_policy). parent:
 * a child run (delegate_submit_child), its runner on node. */
static int create_run(cep_delegate *d, const cep_exp *exp, const char *yaml,
    size_t len, const char *spec_name, const char *task_id,
    const cep_run *parent, const char *node, cep_run_id *run_id, cep_err *err)
{
	int rv = parent != NULL ? CEP_OK :
	                          delegate_policy_check_active(&d->cfg.policy,
	                              delegate_run_active_count(d), err);
	if (rv == CEP_OK)
		rv = delegate_disk_room(d, err);
	if (rv != CEP_OK)
		return rv;
	cep_run *r = new_run(d, exp, yaml, len, spec_name, task_id);
	if (r == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	if (parent != NULL) { /* before journal_start: `created` names them */
		snprintf(r->parent, sizeof(r->parent), "%s", parent->id.s);
		snprintf(r->node, sizeof(r->node), "%s", node);
		r->deadline_ms = parent->deadline_ms;
	}
	char dir[4096];
	rv = delegate_run_dir(d, r->id.s, NULL, dir, sizeof(dir), err);
	if (rv == CEP_OK)
		rv = cep_journal_create(dir, &r->j, err);
	if (rv == CEP_OK && (rv = journal_start(d, r, err)) == CEP_OK)
		rv = delegate_disk_reserve(d, r, 0, err); /* for its reverts */
	if (rv != CEP_OK && r->j != NULL)
		cep_files_rmtree(dir, NULL); /* half a journal is no run */
	if (rv != CEP_OK) {
		delegate_run_free(r);
		return cep_err_wrap(err, "creating the run journal");
	}
	delegate_run_insert(d, r);
	*run_id = r->id;
	cep_log_info(r->id.s, "accepted \"%s\" (%s), deadline in %llds",
	    r->name, r->spec_name,
	    (long long)((r->deadline_ms - r->created_ms) / 1000));
	delegate_changed(d);
	return CEP_OK;
}

cep_run *delegate_run_find_task(cep_delegate *d, const char *task_id)
{
	if (task_id == NULL || task_id[0] == '\0')
		return NULL;
	for (cep_run *r = d->runs; r != NULL; r = r->next)
		if (strcmp(r->task_id, task_id) == 0)
			return r;
	return NULL;
}

/* The policy, without d->mu: its host facts may take calls to
 * cep-launcher (hostview.h), which must not stall the monitor and every
 * other caller while they wait. The active count is taken as it is now;
 * create_run checks it again under the lock. A task that is already a
 * run and a stopping delegate are answered under the lock, as before. */
static int check_policy(cep_delegate *d, const cep_exp *exp,
    const char *task_id, cep_err *err)
{
	pthread_mutex_lock(&d->mu);
	bool later = delegate_run_find_task(d, task_id) != NULL ||
	    d->stopping || d->draining;
	size_t active = delegate_run_active_count(d);
	pthread_mutex_unlock(&d->mu);
	return later ? CEP_OK :
	               delegate_policy_check_host(&d->cfg.policy, d->conns,
	                   d->hv, exp, active, err);
}

int delegate_submit(cep_delegate *d, const char *yaml, size_t len,
    const char *spec_name, const char *task_id, cep_run_id *run_id,
    cep_err *err)
{
	if (spec_name == NULL || spec_name[0] == '\0')
		spec_name = "spec";
	if (task_id == NULL)
		task_id = "";
	if (strlen(task_id) >= sizeof(((cep_run *)0)->task_id))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "task id of %zu bytes, at most 63", strlen(task_id));

	cep_exp *exp = NULL;
	int rv = parse_spec(yaml, len, spec_name, &exp, err);
	if (rv != CEP_OK)
		return rv;
	if ((rv = check_policy(d, exp, task_id, err)) != CEP_OK) {
		cep_exp_free(exp);
		cep_log_info(NULL, "submit of %s refused: %s", spec_name,
		    err->msg);
		return rv;
	}
	pthread_mutex_lock(&d->mu);
	/* A task handed to us again (a retried poll, our own lease after a
	 * restart) is the run we already have, never a second run. */
	cep_run *have = delegate_run_find_task(d, task_id);
	if (have != NULL) {
		*run_id = have->id;
		cep_log_info(run_id->s, "task %s is already this run", task_id);
		rv = CEP_OK;
	} else if (d->stopping || d->draining)
		rv = cep_err_set(err, CEP_UNAVAILABLE,
		    "the delegate is stopping");
	else
		rv = create_run(d, exp, yaml, len, spec_name, task_id, NULL,
		    NULL, run_id, err);
	pthread_mutex_unlock(&d->mu);
	cep_exp_free(exp);
	if (rv != CEP_OK)
		cep_log_info(NULL, "submit of %s refused: %s", spec_name,
		    err->msg);
	return rv;
}

int delegate_submit_child(cep_delegate *d, const cep_run *parent,
    const char *yaml, const char *node, cep_run_id *run_id, cep_err *err)
{
	cep_exp *exp = NULL;
	/* parsed again: a child's text must be an experiment as any other */
	int rv = parse_spec(yaml, strlen(yaml), parent->spec_name, &exp, err);
	if (rv == CEP_OK)
		rv = create_run(d, exp, yaml, strlen(yaml), parent->spec_name,
		    "", parent, node, run_id, err);
	cep_exp_free(exp);
	return rv;
}
