/*
 * report_journal.c - a report read straight from a run's journal
 * (lib/model/journal.h), without the delegate: what `cepctl report`
 * renders, so any past run can be looked at - also one whose delegate is
 * gone, or a journal copied off the appliance for a post-mortem. And the
 * same from the events alone, as a control plane stores them (below).
 *
 * The records are read as delegate/recover.c reads them: `created` names
 * the run, `state` records carry state and reason, `fault` and `reverted`
 * make each fault's injected->reverted span, `event` records are the
 * runner's events in seq order. What the delegate would answer Follow
 * with is rebuilt here as one RunInfo and fed to the same report.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "journal.h"
#include "report_int.h"
#include "run_id.h"
#include "runstate.h"

#define MAX_FAULTS 1024

struct jfault {
	Cep__V1__FaultRecord *rec; /* a copy: records are freed after cb */
	int64_t injected_ms, reverted_ms;
	char by[32];
};

typedef struct journal_st {
	cepctl_report *r;
	char run_id[64], name[256], spec_name[256], reason[512];
	int state;
	int64_t created_ms, ended_ms;
	uint64_t events;
	struct jfault faults[MAX_FAULTS];
	size_t nfaults;
	char *spec;
} journal_st;

/* A deep copy through the wire format, as cepctl_report_set_run does. */
static Cep__V1__FaultRecord *copy_fault(const Cep__V1__FaultRecord *f)
{
	size_t len = protobuf_c_message_get_packed_size(&f->base);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		return NULL;
	protobuf_c_message_pack(&f->base, buf);
	Cep__V1__FaultRecord *c = cep__v1__fault_record__unpack(NULL, len, buf);
	free(buf);
	return c;
}

static void on_fault(journal_st *st, const Cep__V1__FaultRecord *f,
    int64_t when)
{
	if (st->nfaults == MAX_FAULTS || f == NULL)
		return;
	Cep__V1__FaultRecord *c = copy_fault(f);
	if (c == NULL)
		return;
	st->faults[st->nfaults++] = (struct jfault){.rec = c,
	    .injected_ms = when};
}

/* The first span of fault_id still open ends at when. */
static void on_reverted(journal_st *st, const char *fault_id, int64_t when,
    const char *by)
{
	for (size_t i = 0; i < st->nfaults; i++) {
		struct jfault *f = &st->faults[i];
		if (f->reverted_ms != 0 ||
		    strcmp(f->rec->fault_id, fault_id) != 0)
			continue;
		f->reverted_ms = when;
		snprintf(f->by, sizeof(f->by), "%s", by);
		return;
	}
}

static void on_created(journal_st *st, const Cep__V1__RunInfo *ci)
{
	snprintf(st->run_id, sizeof(st->run_id), "%s", ci->run_id);
	snprintf(st->name, sizeof(st->name), "%s", ci->name);
	snprintf(st->spec_name, sizeof(st->spec_name), "%s", ci->spec_name);
	st->created_ms = ci->created_ms;
}

static int journal_cb(const Cep__V1__JournalRecord *rec, void *arg)
{
	journal_st *st = arg;
	switch (rec->rec_case) {
	case CEP__V1__JOURNAL_RECORD__REC_CREATED:
		on_created(st, rec->created);
		break;
	case CEP__V1__JOURNAL_RECORD__REC_SPEC_YAML:
		free(st->spec);
		st->spec = strdup(rec->spec_yaml);
		break;
	case CEP__V1__JOURNAL_RECORD__REC_STATE:
		st->state = rec->state;
		snprintf(st->reason, sizeof(st->reason), "%s", rec->text);
		if (cep_runstate_final(rec->state))
			st->ended_ms = rec->time_ms;
		break;
	case CEP__V1__JOURNAL_RECORD__REC_EVENT:
		cepctl_report_add(st->r, rec->event);
		st->events = cepctl_report_last_seq(st->r);
		break;
	case CEP__V1__JOURNAL_RECORD__REC_FAULT:
		on_fault(st, rec->fault, rec->time_ms);
		break;
	case CEP__V1__JOURNAL_RECORD__REC_REVERTED:
		if (rec->reverted != NULL)
			on_reverted(st, rec->reverted->fault_id, rec->time_ms,
			    rec->text && rec->text[0] ? rec->text : "runner");
		break;
	default: break;
	}
	return 0;
}

/* The RunInfo the delegate's Follow would carry, pointing into st. */
static void set_run(journal_st *st)
{
	Cep__V1__RunInfo info = CEP__V1__RUN_INFO__INIT;
	Cep__V1__FaultInfo fi[MAX_FAULTS], *fp[MAX_FAULTS];
	info.run_id = st->run_id;
	info.name = st->name;
	info.spec_name = st->spec_name;
	info.state = st->state;
	info.reason = st->reason;
	info.created_ms = st->created_ms;
	info.ended_ms = st->ended_ms;
	info.events = st->events;
	for (size_t i = 0; i < st->nfaults; i++) {
		cep__v1__fault_info__init(&fi[i]);
		fi[i].record = st->faults[i].rec;
		fi[i].injected_ms = st->faults[i].injected_ms;
		fi[i].reverted_ms = st->faults[i].reverted_ms;
		fi[i].reverted_by = st->faults[i].by;
		fp[i] = &fi[i];
	}
	info.n_faults = st->nfaults;
	info.faults = st->nfaults ? fp : NULL;
	cepctl_report_set_run(st->r, &info);
}

static journal_st *st_new(void)
{
	journal_st *st = calloc(1, sizeof(*st));
	if (st != NULL && (st->r = cepctl_report_new()) == NULL) {
		free(st);
		return NULL;
	}
	return st;
}

/* Hands the report out on success, frees the rest either way. */
static int st_finish(journal_st *st, int rv, cepctl_report **out)
{
	if (rv == CEP_OK) {
		set_run(st);
		cepctl_report_set_spec(st->r, st->spec);
		*out = st->r;
	} else {
		cepctl_report_free(st->r);
	}
	for (size_t i = 0; i < st->nfaults; i++)
		protobuf_c_message_free_unpacked(&st->faults[i].rec->base,
		    NULL);
	free(st->spec);
	free(st);
	return rv;
}

int cepctl_report_from_journal(const char *dir, cepctl_report **out,
    cep_err *err)
{
	*out = NULL;
	journal_st *st = st_new();
	if (st == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "report of %s: out of memory", dir);
	cep_journal_replay_info info = {0};
	int rv = cep_journal_replay(dir, journal_cb, st, &info, err);
	if (rv == CEP_OK && st->run_id[0] == '\0')
		rv = cep_err_set(err, CEP_DATA_LOSS,
		    "%s/journal: no `created` record: not a run's journal",
		    dir);
	return st_finish(st, rv, out);
}

/* ------------------------------------------------ from the events alone */

/* A control plane has the run's events (UploadEvents), not its journal:
 * the fault spans come from the runner's fault events, whose detail names
 * the target, and the state from the verdict. A fault the delegate
 * reverted after the runner was gone has no `reverted` event: it shows as
 * not reverted, which is what the events say. */
static void event_fault(journal_st *st, const Cep__V1__Event *ev)
{
	const Cep__V1__FaultState *fs = ev->fault;
	if (strcmp(fs->state, "injected") == 0) {
		Cep__V1__FaultRecord f = CEP__V1__FAULT_RECORD__INIT;
		f.run_id = ev->run_id;
		f.fault_id = fs->fault_id;
		f.type = fs->type;
		f.target = fs->detail;
		on_fault(st, &f, ev->time_ms);
	} else if (strcmp(fs->state, "reverted") == 0) {
		on_reverted(st, fs->fault_id, ev->time_ms, "runner");
	}
}

static void event_verdict(journal_st *st, const Cep__V1__Verdict *v)
{
	static const struct {
		const char *verdict;
		int state;
	} states[] = {{"Pass", CEP__V1__RUN_STATE__RUN_PASSED},
	    {"Fail", CEP__V1__RUN_STATE__RUN_FAILED},
	    {"Aborted", CEP__V1__RUN_STATE__RUN_ABORTED},
	    {"Error", CEP__V1__RUN_STATE__RUN_ERROR}};
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (strcmp(v->verdict, states[i].verdict) == 0)
			st->state = states[i].state;
	snprintf(st->reason, sizeof(st->reason), "%s", v->reason);
}

static void events_into(journal_st *st, const Cep__V1__EventBatch *b)
{
	snprintf(st->run_id, sizeof(st->run_id), "%s", b->run_id);
	st->state = CEP__V1__RUN_STATE__RUN_RUNNING;
	for (size_t i = 0; i < b->n_events; i++) {
		const Cep__V1__Event *ev = b->events[i];
		if (st->created_ms == 0)
			st->created_ms = ev->time_ms;
		st->ended_ms = ev->time_ms;
		cepctl_report_add(st->r, ev);
		if (ev->type == CEP__V1__EVENT_TYPE__EVENT_FAULT &&
		    ev->fault != NULL)
			event_fault(st, ev);
		if (ev->type == CEP__V1__EVENT_TYPE__EVENT_VERDICT &&
		    ev->verdict != NULL)
			event_verdict(st, ev->verdict);
	}
	st->events = cepctl_report_last_seq(st->r);
	if (!cep_runstate_final(st->state))
		st->ended_ms = 0;
}

/* The spec (optional) names the experiment; its file name is the run's
 * spec_name. */
static int read_spec(journal_st *st, const char *path, cep_err *err)
{
	size_t len = 0;
	int rv = cep_files_read(path, 1u << 20, &st->spec, &len, err);
	if (rv != CEP_OK)
		return rv;
	const char *base = strrchr(path, '/');
	snprintf(st->spec_name, sizeof(st->spec_name), "%s",
	    base ? base + 1 : path);
	cep_exp *e = NULL;
	cep_exp_diags d = {0};
	if (cep_exp_parse(st->spec, len, path, &e, &d, NULL) == CEP_OK)
		snprintf(st->name, sizeof(st->name), "%s", cep_exp_name(e));
	cep_exp_free(e);
	return CEP_OK;
}

int cepctl_report_from_events(const char *events, const char *spec,
    cepctl_report **out, cep_err *err)
{
	*out = NULL;
	journal_st *st = st_new();
	if (st == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "report of %s: out of memory", events);
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv = cep_files_read(events, 256u << 20, (char **)&buf, &len, err);
	Cep__V1__EventBatch *b = NULL;
	if (rv == CEP_OK &&
	    (b = cep__v1__event_batch__unpack(NULL, len, buf)) == NULL)
		rv = cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s: not a cep.v1.EventBatch", events);
	if (rv == CEP_OK && !cep_run_id_valid(b->run_id))
		rv = cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s: the batch names no run (run_id \"%.40s\")", events,
		    b->run_id);
	if (rv == CEP_OK)
		events_into(st, b);
	if (rv == CEP_OK && spec != NULL)
		rv = read_spec(st, spec, err);
	if (b != NULL)
		cep__v1__event_batch__free_unpacked(b, NULL);
	free(buf);
	return st_finish(st, rv, out);
}
