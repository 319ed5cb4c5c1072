/*
 * runs.c - the run table, the changes to a run that are journaled, the
 * announcements of changes to subscribers, and the run's target (which
 * executor runs it).
 *
 * Every function here is called with d->mu held. A change is journaled
 * before it is visible in memory where it matters (state, faults), so a
 * crash never leaves the journal behind what was answered to anyone.
 */
#define _GNU_SOURCE
#include "delegate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp.h"
#include "log.h"
#include "clock.h"
#include "files.h"

cep_run *delegate_run_find(cep_delegate *d, const char *id)
{
	for (cep_run *r = d->runs; r != NULL; r = r->next)
		if (strcmp(r->id.s, id) == 0)
			return r;
	return NULL;
}

size_t delegate_run_active_count(cep_delegate *d)
{
	size_t n = 0;
	for (cep_run *r = d->runs; r != NULL; r = r->next)
		if (!cep_runstate_final(r->state))
			n++;
	return n;
}

cep_run *delegate_run_alloc(void)
{
	cep_run *r = calloc(1, sizeof(*r));
	if (r != NULL)
		r->state = CEP__V1__RUN_STATE__RUN_STATE_UNSPECIFIED;
	return r;
}

void delegate_run_free(cep_run *r)
{
	if (r == NULL)
		return;
	cep_journal_close(r->j);
	for (size_t i = 0; i < r->nevents; i++)
		cep__v1__event__free_unpacked(r->events[i], NULL);
	free(r->events);
	for (size_t i = 0; i < r->nfaults; i++)
		cep__v1__fault_record__free_unpacked(r->faults[i].rec, NULL);
	free(r->faults);
	free(r->children);
	free(r->spec_yaml);
	free(r);
}

/* Keeps the list newest first by creation time (recovery inserts in
 * directory order). */
void delegate_run_insert(cep_delegate *d, cep_run *r)
{
	cep_run **pp = &d->runs;
	while (*pp != NULL && (*pp)->created_ms > r->created_ms)
		pp = &(*pp)->next;
	r->next = *pp;
	*pp = r;
	d->nruns++;
}

int delegate_run_dir(cep_delegate *d, const char *id, const char *sub,
    char *buf, size_t len, cep_err *err)
{
	if (sub == NULL)
		return cep_files_path(buf, len, err, "%s/%s", d->runs_dir, id);
	return cep_files_path(buf, len, err, "%s/%s/%s", d->runs_dir, id, sub);
}

int delegate_run_journal(cep_delegate *d, cep_run *r,
    Cep__V1__JournalRecord *rec, bool sync, cep_err *err)
{
	if (r->j == NULL)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "run %s is finished; its journal is closed", r->id.s);
	rec->time_ms = cep_clock_now_ms();
	int rv = cep_journal_append(r->j, rec, sync, err);
	delegate_disk_note(d, r, rv, rv ? cep_journal_last_errno(r->j) : 0,
	    err);
	return rv;
}

int delegate_run_journal_events(cep_delegate *d, cep_run *r,
    Cep__V1__Event *const *evs, size_t n, cep_err *err)
{
	if (r->j == NULL)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "run %s is finished; its journal is closed", r->id.s);
	Cep__V1__JournalRecord *recs = calloc(n, sizeof(*recs));
	const Cep__V1__JournalRecord **ptrs = calloc(n, sizeof(*ptrs));
	int rv = recs && ptrs ?
	    CEP_OK :
	    cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory");
	int64_t now = cep_clock_now_ms();
	for (size_t i = 0; rv == CEP_OK && i < n; i++) {
		cep__v1__journal_record__init(&recs[i]);
		recs[i].time_ms = now;
		recs[i].rec_case = CEP__V1__JOURNAL_RECORD__REC_EVENT;
		recs[i].event = evs[i];
		ptrs[i] = &recs[i];
	}
	if (rv == CEP_OK) {
		rv = cep_journal_append_many(r->j, ptrs, n, NULL, err);
		delegate_disk_note(d, r, rv,
		    rv ? cep_journal_last_errno(r->j) : 0, err);
	}
	for (size_t i = 0; rv == CEP_OK && i < n; i++)
		if (delegate_run_add_event(r, evs[i]) != CEP_OK)
			rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
			    "out of memory");
	free(recs);
	free(ptrs);
	return rv;
}

int delegate_run_subscribe(cep_delegate *d, cep_run_listener fn, void *arg,
    cep_err *err)
{
	if (d->nlisteners == CEP_RUN_MAX_LISTENERS)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "run table: more than %d listeners", CEP_RUN_MAX_LISTENERS);
	d->listeners[d->nlisteners].fn = fn;
	d->listeners[d->nlisteners].arg = arg;
	d->nlisteners++;
	return CEP_OK;
}

static void announce(cep_delegate *d, enum cep_run_news news)
{
	for (size_t i = 0; i < d->nlisteners; i++)
		d->listeners[i].fn(d, news, d->listeners[i].arg);
}

/* The table only counts and tells: who waits on what (the monitor, the
 * relay and control-plane links, parked Follow calls) is the listeners'
 * business, so nothing here calls the files above it. */
void delegate_changed(cep_delegate *d)
{
	d->sync_gen++;
	announce(d, CEP_RUN_NEWS_CHANGED);
}

void delegate_events_added(cep_delegate *d)
{
	announce(d, CEP_RUN_NEWS_EVENTS);
}

void delegate_run_announce_time(cep_delegate *d)
{
	announce(d, CEP_RUN_NEWS_TIME);
}

void delegate_run_finished(cep_delegate *d, cep_run *r)
{
	snprintf(d->finished[d->finished_next], sizeof(d->finished[0]), "%s",
	    r->id.s);
	d->finished_next = (d->finished_next + 1) % CEP_FINISHED_KEEP;
	if (d->nfinished < CEP_FINISHED_KEEP)
		d->nfinished++;
}

/* Journals (fsync unless !sync) and applies a state change. A final state
 * closes the journal: a final run is read-only from then on. */
static void set_state(cep_delegate *d, cep_run *r, Cep__V1__RunState st,
    const char *reason, bool sync)
{
	Cep__V1__JournalRecord rec = CEP__V1__JOURNAL_RECORD__INIT;
	cep_err err = {0};
	rec.rec_case = CEP__V1__JOURNAL_RECORD__REC_STATE;
	rec.state = st;
	rec.text = (char *)(reason ? reason : "");
	(void)delegate_run_journal(d, r, &rec, sync || cep_runstate_final(st),
	    &err);
	r->state = st;
	snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "");
	if (reason != NULL && reason[0] != '\0')
		cep_log_info(r->id.s, "state %s: %s", cep_runstate_name(st),
		    reason);
	else
		cep_log_info(r->id.s, "state %s", cep_runstate_name(st));
	if (cep_runstate_final(st)) {
		cep_metrics_inc1(d->m_runs, cep_runstate_name(st));
		r->ended_ms = cep_clock_now_ms();
		(void)cep_journal_reserve(r->j, 0, &err); /* its reserve back */
		cep_journal_close(r->j);
		r->j = NULL;
		delegate_run_finished(d, r);
	}
	delegate_changed(d);
}

void delegate_run_set_state(cep_delegate *d, cep_run *r, Cep__V1__RunState st,
    const char *reason)
{
	set_state(d, r, st, reason, true);
}

void delegate_run_set_state_nosync(cep_delegate *d, cep_run *r,
    Cep__V1__RunState st, const char *reason)
{
	set_state(d, r, st, reason, false);
}

int delegate_run_add_event(cep_run *r, const Cep__V1__Event *ev)
{
	if (r->nevents == r->events_cap) {
		size_t cap = r->events_cap ? r->events_cap * 2 : 64;
		Cep__V1__Event **n = realloc(r->events, cap * sizeof(*n));
		if (n == NULL)
			return CEP_RESOURCE_EXHAUSTED;
		r->events = n;
		r->events_cap = cap;
	}
	Cep__V1__Event *copy = (Cep__V1__Event *)cep_rpc_msg_dup(
	    (const ProtobufCMessage *)ev);
	if (copy == NULL)
		return CEP_RESOURCE_EXHAUSTED;
	r->events[r->nevents++] = copy;
	r->event_bytes += cep__v1__event__get_packed_size(copy);
	r->last_seq = ev->seq;
	if (ev->type == CEP__V1__EVENT_TYPE__EVENT_VERDICT &&
	    ev->verdict != NULL && ev->verdict->verdict != NULL) {
		snprintf(r->verdict, sizeof(r->verdict), "%s",
		    ev->verdict->verdict);
		r->score = ev->verdict->score;
		snprintf(r->verdict_reason, sizeof(r->verdict_reason), "%s",
		    ev->verdict->reason ? ev->verdict->reason : "");
	}
	return CEP_OK;
}

static cep_run_fault *find_fault(cep_run *r, const char *fault_id)
{
	for (size_t i = 0; i < r->nfaults; i++)
		if (strcmp(r->faults[i].rec->fault_id, fault_id) == 0)
			return &r->faults[i];
	return NULL;
}

enum cep_run_fault_add delegate_run_add_fault(cep_run *r,
    const Cep__V1__FaultRecord *rec, int64_t when)
{
	if (find_fault(r, rec->fault_id) != NULL)
		return CEP_RUN_FAULT_KNOWN;
	if (r->nfaults >= CEP_RUN_MAX_FAULTS)
		return CEP_RUN_FAULT_NO_ROOM;
	cep_run_fault *n = realloc(r->faults, (r->nfaults + 1) * sizeof(*n));
	if (n == NULL)
		return CEP_RUN_FAULT_NO_ROOM;
	r->faults = n;
	cep_run_fault *f = &r->faults[r->nfaults];
	memset(f, 0, sizeof(*f));
	f->rec = (Cep__V1__FaultRecord *)cep_rpc_msg_dup(&rec->base);
	if (f->rec == NULL)
		return CEP_RUN_FAULT_NO_ROOM;
	f->injected_ms = when;
	r->nfaults++;
	return CEP_RUN_FAULT_ADDED;
}

void delegate_run_mark_reverted(cep_run *r, const char *fault_id, int64_t when,
    const char *by)
{
	cep_run_fault *f = find_fault(r, fault_id);
	if (f == NULL || f->reverted_ms != 0)
		return;
	f->reverted_ms = when;
	snprintf(f->reverted_by, sizeof(f->reverted_by), "%s", by);
}

void delegate_run_request_abort(cep_delegate *d, cep_run *r, const char *reason)
{
	if (cep_runstate_final(r->state) || r->aborting)
		return;
	r->aborting = true;
	r->abort_mono = cep_clock_mono_ms();
	r->abort_sent_mono = 0;
	snprintf(r->abort_reason, sizeof(r->abort_reason), "%s", reason);
	cep_log_info(r->id.s, "abort requested: %s", reason);
	delegate_changed(d);
}

/* ---------------------------------------------- the run's target */

void delegate_run_load_target(cep_run *r)
{
	if (r->target_known || r->spec_yaml == NULL)
		return;
	r->target_known = true;
	cep_exp *e = NULL;
	cep_err err = {0};
	if (cep_exp_parse(r->spec_yaml, strlen(r->spec_yaml), "spec", &e, NULL,
	        &err) != CEP_OK) {
		cep_log_warn(r->id.s,
		    "spec does not parse any more (%s); treated "
		    "as a host target",
		    err.msg);
		return;
	}
	const char *kind = cep_exp_target_kind(e);
	if (kind != NULL && strcmp(kind, "kubernetes") == 0) {
		r->kube = true;
		snprintf(r->connector, sizeof(r->connector), "%s",
		    cep_exp_connector(e) ? cep_exp_connector(e) : "");
		snprintf(r->ns, sizeof(r->ns), "%s",
		    cep_exp_namespace(e) ? cep_exp_namespace(e) : "");
	}
	cep_exp_free(e);
}

cep_executor *delegate_run_executor(cep_delegate *d, cep_run *r)
{
	delegate_run_load_target(r);
	return r->kube && d->kex != NULL ? d->kex : d->ex;
}

void delegate_run_place(cep_delegate *d, cep_run *r, cep_exec_scope *out)
{
	cep_exec_scope run;
	cep_executor *ex = delegate_run_executor(d, r);
	snprintf(run.connector, sizeof(run.connector), "%s", r->connector);
	snprintf(run.ns, sizeof(run.ns), "%s", r->ns);
	delegate_executor_place(ex, &run, out);
}
