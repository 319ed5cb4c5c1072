/*
 * runs_split.c - a run whose label selector's share no one node holds
 * (docs/kubernetes.md, "Pods by label selector"): the parent.
 *
 * One runner works on one node (its Pod, identity, relay session, event
 * sequence and cleanup runner are the run's). So a share spread over
 * nodes is taken by one child run per node, each an ordinary run in
 * every respect - launch, journal, revert, cleanup runner after kill -9
 * all go through the paths every run takes - whose experiment is the
 * parent's with the selector's faults taking that node's count
 * (cep_exp_split_spec) and whose runner is placed on that node (the
 * run's `node`, as a node target fixes it). The kubernetes executor
 * chose the pods (uniformly among every Running match) and counted them
 * per node; this file turns that into children and follows them.
 *
 * The parent runs no runner. It is RUNNING while any child is not final,
 * then takes the worst child's verdict (FAILED > ABORTED, ERROR >
 * PASSED; score the lowest) with a reason naming the child, and is
 * finished as any run (monitor.c). Aborting it aborts every child. The
 * split is journaled in the parent after every child exists (each child's
 * own `created` record names its parent), so a restarted delegate finds
 * both sides; a crash between the two leaves the children running on
 * their own and the parent ended as any run whose runner is gone.
 */
#define _GNU_SOURCE
#include "delegate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp.h"
#include "clock.h"
#include "log.h"

/* Blast radius of the parent as a whole: the children together never
 * act on more pods than one run may (policy.kubernetes.maxTargets). */
static int check_policy(cep_delegate *d, const cep_exec_split *sp, cep_err *err)
{
	int max = d->cfg.policy.kube_max_targets;
	if (max > 0 && sp->total > (size_t)max)
		return cep_err_set(err, CEP_PERMISSION_DENIED,
		    "selector %.300s: %zu pods chosen over %zu nodes, more "
		    "than policy.kubernetes.maxTargets (%d) for the run as a "
		    "whole",
		    sp->selector, sp->total, sp->n, max);
	return CEP_OK;
}

static int journal_split(cep_delegate *d, cep_run *r, cep_err *err)
{
	Cep__V1__RunSplit split = CEP__V1__RUN_SPLIT__INIT;
	Cep__V1__RunChild c[CEP_EXEC_MAX_SPLIT], *cp[CEP_EXEC_MAX_SPLIT];
	for (size_t i = 0; i < r->nchildren; i++) {
		cep__v1__run_child__init(&c[i]);
		c[i].run_id = r->children[i].id.s;
		c[i].node = r->children[i].node;
		c[i].count = r->children[i].count;
		cp[i] = &c[i];
	}
	split.n_children = r->nchildren;
	split.children = cp;
	Cep__V1__JournalRecord rec = CEP__V1__JOURNAL_RECORD__INIT;
	rec.rec_case = CEP__V1__JOURNAL_RECORD__REC_SPLIT;
	rec.split = &split;
	return delegate_run_journal(d, r, &rec, true, err);
}

int delegate_split_start(cep_delegate *d, cep_run *r, const cep_exec_split *sp,
    cep_err *err)
{
	int rv = check_policy(d, sp, err);
	cep_exp *e = NULL;
	if (rv == CEP_OK)
		rv = cep_exp_parse(r->spec_yaml, strlen(r->spec_yaml),
		    r->spec_name, &e, NULL, err);
	char *yaml[CEP_EXEC_MAX_SPLIT] = {0};
	/* every child's text before any child exists: all or none */
	for (size_t i = 0; i < sp->n && rv == CEP_OK; i++)
		rv = cep_exp_split_spec(e, sp->selector, sp->count[i], &yaml[i],
		    err);
	cep_exp_free(e);
	cep_run_child *kids = rv == CEP_OK ? calloc(sp->n, sizeof(*kids)) :
	                                     NULL;
	if (rv == CEP_OK && kids == NULL)
		rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory");
	size_t made = 0;
	for (; rv == CEP_OK && made < sp->n; made++) {
		rv = delegate_submit_child(d, r, yaml[made], sp->node[made],
		    &kids[made].id, err);
		snprintf(kids[made].node, sizeof(kids[made].node), "%s",
		    sp->node[made]);
		kids[made].count = sp->count[made];
	}
	for (size_t i = 0; i < sp->n; i++)
		free(yaml[i]);
	if (rv != CEP_OK && made > 0) {
		/* a child could not be made: those made end at once */
		for (size_t i = 0; i + 1 < made; i++) {
			cep_run *c = delegate_run_find(d, kids[i].id.s);
			if (c != NULL)
				delegate_run_request_abort(d, c,
				    "a sibling could not be created");
		}
		cep_err_wrap(err, "creating child %zu of %zu", made, sp->n);
	}
	if (rv != CEP_OK) {
		free(kids);
		return rv;
	}
	r->children = kids;
	r->nchildren = sp->n;
	r->split = true;
	r->identity_uri[0] = '\0'; /* no runner: nothing to grant */
	/* The children exist and run either way; unjournaled, a restarted
	 * delegate finds them on their own and this parent runner-less. */
	cep_err jerr = {0};
	if (journal_split(d, r, &jerr) != CEP_OK)
		cep_log_warn(r->id.s, "journaling the split: %s", jerr.msg);
	char why[512];
	size_t l = (size_t)snprintf(why, sizeof(why),
	    "selector %.200s: %zu pods across %zu nodes:", sp->selector,
	    sp->total, sp->n);
	for (size_t i = 0; i < sp->n && l < sizeof(why); i++)
		l += (size_t)snprintf(why + l, sizeof(why) - l, " %s %s (%u)",
		    kids[i].id.s, kids[i].node, kids[i].count);
	delegate_run_set_state(d, r, CEP__V1__RUN_STATE__RUN_RUNNING, why);
	return CEP_OK;
}

static int rank(Cep__V1__RunState st)
{
	switch (st) {
	case CEP__V1__RUN_STATE__RUN_PASSED: return 0;
	case CEP__V1__RUN_STATE__RUN_FAILED: return 2;
	default: return 1; /* ABORTED, ERROR */
	}
}

size_t delegate_split_worst(const Cep__V1__RunState *st, size_t n)
{
	size_t w = 0;
	for (size_t i = 1; i < n; i++)
		if (rank(st[i]) > rank(st[w]))
			w = i;
	return w;
}

static const char *verdict_of(Cep__V1__RunState st)
{
	switch (st) {
	case CEP__V1__RUN_STATE__RUN_PASSED: return "Pass";
	case CEP__V1__RUN_STATE__RUN_FAILED: return "Fail";
	case CEP__V1__RUN_STATE__RUN_ABORTED: return "Aborted";
	default: return "Error";
	}
}

/* The parent's verdict, as an event of its own journal (seq 1: it has no
 * runner), so a restart and Follow see it as any run's. */
static void set_verdict(cep_delegate *d, cep_run *r, cep_run **kids)
{
	Cep__V1__RunState st[CEP_EXEC_MAX_SPLIT];
	double score = 1.0;
	for (size_t i = 0; i < r->nchildren; i++) {
		st[i] = kids[i] ? kids[i]->state :
		                  CEP__V1__RUN_STATE__RUN_ERROR;
		double s = kids[i] && kids[i]->verdict[0] ? kids[i]->score :
		                                            0.0;
		if (i == 0 || s < score)
			score = s;
	}
	size_t w = delegate_split_worst(st, r->nchildren);
	char why[256];
	snprintf(why, sizeof(why), "child %s on %.64s: %s: %.120s",
	    r->children[w].id.s, r->children[w].node, cep_runstate_name(st[w]),
	    kids[w] ? kids[w]->reason : "not in the run table");
	Cep__V1__Verdict v = CEP__V1__VERDICT__INIT;
	v.verdict = (char *)verdict_of(st[w]);
	v.score = score;
	v.reason = why;
	Cep__V1__Event ev = CEP__V1__EVENT__INIT, *evp = &ev;
	ev.seq = r->last_seq + 1;
	ev.time_ms = cep_clock_now_ms();
	ev.run_id = r->id.s;
	ev.type = CEP__V1__EVENT_TYPE__EVENT_VERDICT;
	ev.verdict = &v;
	cep_err err = {0};
	if (delegate_run_journal_events(d, r, &evp, 1, &err) != CEP_OK) {
		/* not journaled: still the verdict the final state takes */
		cep_log_warn(r->id.s, "journaling the verdict: %s", err.msg);
		snprintf(r->verdict, sizeof(r->verdict), "%s", v.verdict);
		r->score = score;
		snprintf(r->verdict_reason, sizeof(r->verdict_reason), "%s",
		    why);
	}
	delegate_events_added(d);
}

bool delegate_split_tick(cep_delegate *d, cep_run *r)
{
	cep_run *kids[CEP_EXEC_MAX_SPLIT];
	bool all = true;
	for (size_t i = 0; i < r->nchildren && i < CEP_EXEC_MAX_SPLIT; i++) {
		cep_run *c = delegate_run_find(d, r->children[i].id.s);
		kids[i] = c;
		if (c == NULL || cep_runstate_final(c->state))
			continue;
		all = false;
		if (r->aborting && !c->aborting)
			delegate_run_request_abort(d, c, r->abort_reason);
	}
	if (all && r->verdict[0] == '\0')
		set_verdict(d, r, kids);
	return all;
}
