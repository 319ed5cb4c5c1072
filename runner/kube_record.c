/*
 * kube_record.c - the Kubernetes faults whose whole state is their undo
 * record (deployment-scale, node-taint): inject acts on exactly what the
 * record names and, when that fails, undoes whatever it did; revert
 * undoes it (the same function the delegate's cleanup uses).
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "fault.h"
#include "kube_target.h"

typedef struct kr_state {
	cep_kube *k;
	char *undo; /* the record's undo JSON */
	runner_kube_undo_fn undo_fn;
} kr_state;

int runner_kube_record_inject(cep_kube *k, json_t *undo,
    const runner_kube_record *r, const struct cep_fault_ctx *ctx, void **state,
    cep_err *err)
{
	kr_state *s = calloc(1, sizeof(*s));
	if (s != NULL)
		s->undo = json_dumps(undo, JSON_COMPACT | JSON_SORT_KEYS);
	if (s == NULL || s->undo == NULL) {
		free(s);
		json_decref(undo);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "%s: no memory",
		    r->type);
	}
	s->k = k;
	s->undo_fn = r->undo;
	int rc = r->act(k, undo, r->arg, ctx, err);
	json_decref(undo);
	if (rc != CEP_OK) {
		/* not injected must mean nothing left: undo what was done */
		r->undo(k, s->undo, NULL);
		free(s->undo);
		free(s);
		return rc;
	}
	*state = s;
	return CEP_OK;
}

int runner_kube_record_revert(void *state, cep_err *err)
{
	kr_state *s = state;
	int rc = s->undo_fn(s->k, s->undo, err);
	free(s->undo);
	free(s);
	return rc;
}
