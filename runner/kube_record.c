/*
 * kube_record.c - the Kubernetes faults whose whole state is their undo
 * record (deployment-scale, node-cordon, node-taint; node-drain cordons
 * through it): describe checks the permissions and reads the record
 * before anything changes, inject acts on exactly what the record names
 * and, when that fails, undoes whatever it did; revert undoes it (the
 * same function the delegate's cleanup uses).
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

int runner_kube_record_describe(const cep_exp_item *it,
    const runner_kube_record *r, char *target, size_t tlen, json_t **undo,
    cep_err *err)
{
	cep_kube *k;
	char ns[254];
	int rc = runner_kube_target_get(&k, ns, sizeof(ns), err);
	if (rc == CEP_OK)
		rc = runner_kube_target_check_perms(k, r->type, ns, err);
	if (rc == CEP_OK)
		rc = r->read(it, k, r->type, ns, undo, target, tlen, err);
	if (rc == CEP_OK)
		runner_kube_target_stash(it, json_incref(*undo));
	return rc;
}

int runner_kube_record_take(const cep_exp_item *it, const runner_kube_record *r,
    cep_kube **k, json_t **undo, cep_err *err)
{
	char ns[254], what[400];
	int rc = runner_kube_target_get(k, ns, sizeof(ns), err);
	*undo = rc == CEP_OK ? runner_kube_target_take(it) : NULL;
	if (rc == CEP_OK && *undo == NULL)
		rc = r->read(it, *k, r->type, ns, undo, what, sizeof(what),
		    err);
	return rc;
}

int runner_kube_record_inject(const cep_exp_item *it,
    const runner_kube_record *r, const struct cep_fault_ctx *ctx, void **state,
    cep_err *err)
{
	cep_kube *k;
	json_t *undo = NULL;
	int rc = runner_kube_record_take(it, r, &k, &undo, err);
	if (rc != CEP_OK)
		return rc;
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
	rc = r->act(it, k, undo, ctx, err);
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
