/*
 * report_journal.c - a report read straight from a run's journal
 * (lib/model/journal.h), without the delegate: what `cepctl report`
 * renders, so any past run can be looked at - also one whose delegate is
 * gone, or a journal copied off the appliance for a post-mortem.
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

#include "journal.h"
#include "report_int.h"
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

static void on_reverted(journal_st *st, const Cep__V1__JournalRecord *rec)
{
	for (size_t i = 0; rec->reverted != NULL && i < st->nfaults; i++) {
		struct jfault *f = &st->faults[i];
		if (f->reverted_ms != 0 ||
		    strcmp(f->rec->fault_id, rec->reverted->fault_id) != 0)
			continue;
		f->reverted_ms = rec->time_ms;
		snprintf(f->by, sizeof(f->by), "%s",
		    rec->text && rec->text[0] ? rec->text : "runner");
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
	case CEP__V1__JOURNAL_RECORD__REC_REVERTED: on_reverted(st, rec); break;
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

int cepctl_report_from_journal(const char *dir, cepctl_report **out,
    cep_err *err)
{
	*out = NULL;
	journal_st *st = calloc(1, sizeof(*st));
	cepctl_report *r = cepctl_report_new();
	if (st == NULL || r == NULL) {
		free(st);
		cepctl_report_free(r);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "report of %s: out of memory", dir);
	}
	st->r = r;
	cep_journal_replay_info info = {0};
	int rv = cep_journal_replay(dir, journal_cb, st, &info, err);
	if (rv == CEP_OK && st->run_id[0] == '\0')
		rv = cep_err_set(err, CEP_DATA_LOSS,
		    "%s/journal: no `created` record: not a run's journal",
		    dir);
	if (rv == CEP_OK) {
		set_run(st);
		cepctl_report_set_spec(r, st->spec);
		*out = r;
	} else {
		cepctl_report_free(r);
	}
	for (size_t i = 0; i < st->nfaults; i++)
		protobuf_c_message_free_unpacked(&st->faults[i].rec->base,
		    NULL);
	free(st->spec);
	free(st);
	return rv;
}
