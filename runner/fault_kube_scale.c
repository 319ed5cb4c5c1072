/*
 * fault_kube_scale.c - `deployment-scale`: set a Deployment of the run's
 * namespace to `replicas` through its scale subresource. describe reads
 * the original spec.replicas into the undo record before anything
 * changes; revert (and the delegate, if the runner dies) restores it with
 * lib/undo/undo.c's k8s-scale and reads spec.replicas back to confirm.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "kube_target.h"
#include "params.h"
#include "undo.h"

typedef struct sc_state {
	cep_kube *k;
	char *undo; /* the record's undo JSON */
} sc_state;

static int sc_open(const cep_exp_item *it, cep_kube **k, char *ns, size_t nslen,
    const char **name, cep_err *err)
{
	*name = runner_param_str(it, "deployment", NULL);
	if (!runner_kube_target_name_ok(*name))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "deployment-scale: "
		    "deployment must be a Deployment name ([a-z0-9.-], 1..253)");
	return runner_kube_target_get(k, ns, nslen, err);
}

/* The undo record: {"namespace", "name", "replicas": original}. */
static int sc_read(cep_kube *k, const char *ns, const char *name, json_t **undo,
    json_int_t *orig, cep_err *err)
{
	json_t *obj = NULL;
	int rc = cep_kube_get(k, &cep_kube_deployments, ns, name, &obj, err);
	if (rc != CEP_OK)
		return cep_err_wrap(err, "deployment-scale");
	json_t *r = json_object_get(json_object_get(obj, "spec"), "replicas");
	*orig = json_is_integer(r) ? json_integer_value(r) :
	                             1; /* API default */
	json_decref(obj);
	*undo = json_pack("{s:s, s:s, s:I}", "namespace", ns, "name", name,
	    "replicas", *orig);
	return CEP_OK;
}

static int sc_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	cep_kube *k;
	char ns[254];
	const char *name;
	json_int_t orig;
	int rc = sc_open(it, &k, ns, sizeof(ns), &name, err);
	if (rc == CEP_OK)
		rc = runner_kube_target_check_perms(k, "deployment-scale", ns,
		    err);
	if (rc == CEP_OK)
		rc = sc_read(k, ns, name, undo, &orig, err);
	if (rc != CEP_OK)
		return rc;
	snprintf(target, tlen, "deployment %s/%s: %lld -> %lld replicas", ns,
	    name, (long long)orig,
	    (long long)runner_param_int(it, "replicas", 0));
	runner_kube_target_stash(it, json_incref(*undo));
	return CEP_OK;
}

static int sc_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	cep_kube *k;
	char ns[254];
	const char *name;
	json_int_t want = runner_param_int(it, "replicas", 0), orig = 0;
	int rc = sc_open(it, &k, ns, sizeof(ns), &name, err);
	json_t *undo = rc == CEP_OK ? runner_kube_target_take(it) : NULL;
	if (rc == CEP_OK && undo == NULL)
		rc = sc_read(k, ns, name, &undo, &orig, err);
	if (rc != CEP_OK)
		return rc;
	orig = json_integer_value(json_object_get(undo, "replicas"));
	sc_state *s = calloc(1, sizeof(*s));
	if (s != NULL)
		s->undo = json_dumps(undo, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(undo);
	if (s == NULL || s->undo == NULL) {
		free(s);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "deployment-scale: no memory");
	}
	s->k = k;
	rc = cep_kube_scale_set(k, ns, name, want, err);
	if (rc != CEP_OK) {
		/* nothing was changed, or we cannot tell: put the original
		 * back so that "not injected" is true */
		cep_undo_k8s_scale(k, s->undo, NULL);
		free(s->undo);
		free(s);
		return cep_err_wrap(err, "deployment-scale");
	}
	runner_emit_log(ctx->sink,
	    "%s: deployment %s/%s scaled from %lld "
	    "to %lld replicas",
	    ctx->fault_id, ns, name, (long long)orig, (long long)want);
	*state = s;
	return CEP_OK;
}

static int sc_revert(void *state, cep_err *err)
{
	sc_state *s = state;
	int rc = cep_undo_k8s_scale(s->k, s->undo, err);
	free(s->undo);
	free(s);
	return rc;
}

const cep_fault_ops runner_fault_kube_scale = {
    .type = "deployment-scale",
    .mechanism = "k8s-scale",
    .describe = sc_describe,
    .inject = sc_inject,
    .revert = sc_revert,
};
