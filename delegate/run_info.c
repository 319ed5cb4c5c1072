/*
 * run_info.c - RunInfo as the Admin service and the journal show a run.
 *
 * A view points into the run's own memory (no copies): build it, pack or
 * reply with it, and drop it, all with d->mu held.
 */
#include "delegate_int.h"

#include <stdlib.h>
#include <string.h>

static void fill_fault(Cep__V1__FaultInfo *fi, const cep_run_fault *f)
{
	cep__v1__fault_info__init(fi);
	fi->record = f->rec;
	fi->injected_ms = f->injected_ms;
	fi->reverted_ms = f->reverted_ms;
	fi->reverted_by = (char *)f->reverted_by;
}

/* A split run's children (runs_split.c); none when out of memory. */
static void view_children(cep_run_view *v, const cep_run *r)
{
	if (r->nchildren == 0)
		return;
	v->ch = calloc(r->nchildren, sizeof(*v->ch));
	v->chp = calloc(r->nchildren, sizeof(*v->chp));
	if (v->ch == NULL || v->chp == NULL) {
		free(v->ch);
		free(v->chp);
		v->ch = NULL;
		v->chp = NULL;
		return;
	}
	for (size_t k = 0; k < r->nchildren; k++) {
		cep__v1__run_child__init(&v->ch[k]);
		v->ch[k].run_id = (char *)r->children[k].id.s;
		v->ch[k].node = (char *)r->children[k].node;
		v->ch[k].count = r->children[k].count;
		v->chp[k] = &v->ch[k];
	}
	v->info.n_children = r->nchildren;
	v->info.children = v->chp;
}

void delegate_run_view_init(cep_run_view *v, const cep_run *r)
{
	memset(v, 0, sizeof(*v));
	Cep__V1__RunInfo *i = &v->info;
	cep__v1__run_info__init(i);
	i->run_id = (char *)r->id.s;
	i->name = (char *)r->name;
	i->state = r->state;
	i->reason = (char *)r->reason;
	i->created_ms = r->created_ms;
	i->ended_ms = r->ended_ms;
	i->verdict = (char *)r->verdict;
	i->score = r->score;
	i->events = r->last_seq;
	i->spec_name = (char *)r->spec_name;
	i->task_id = (char *)r->task_id;
	i->parent_run_id = (char *)r->parent;
	i->node = (char *)r->node;
	view_children(v, r);
	if (r->nfaults == 0)
		return;
	v->fi = calloc(r->nfaults, sizeof(*v->fi));
	v->fip = calloc(r->nfaults, sizeof(*v->fip));
	if (v->fi == NULL || v->fip == NULL) {
		/* Out of memory: show the run without its faults. */
		free(v->fi);
		free(v->fip);
		v->fi = NULL;
		v->fip = NULL;
		return;
	}
	for (size_t k = 0; k < r->nfaults; k++) {
		fill_fault(&v->fi[k], &r->faults[k]);
		v->fip[k] = &v->fi[k];
	}
	i->n_faults = r->nfaults;
	i->faults = v->fip;
}

void delegate_run_view_fini(cep_run_view *v)
{
	free(v->fi);
	free(v->fip);
	free(v->ch);
	free(v->chp);
	v->fi = NULL;
	v->fip = NULL;
	v->ch = NULL;
	v->chp = NULL;
}
