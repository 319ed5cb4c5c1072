/*
 * fault_kube_scale.c - `deployment-scale`: set Deployments of the run's
 * namespace to `replicas` through their scale subresource: one by
 * `deployment` name, or those matching `labelSelector` (sorted by name, at
 * most the policy's maxTargets; Litmus's pod-autoscaler). describe reads
 * each original spec.replicas into the undo record before anything
 * changes; revert (and the delegate, if the runner dies) restores each
 * with lib/undo/undo.c's k8s-scale and reads spec.replicas back to
 * confirm.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "kube_target.h"
#include "params.h"
#include "undo.h"

#define TYPE "deployment-scale"

static json_int_t replicas_of(json_t *obj)
{
	json_t *r = json_object_get(json_object_get(obj, "spec"), "replicas");
	return json_is_integer(r) ? json_integer_value(r) : 1; /* API default */
}

static int by_name(const void *a, const void *b)
{
	return strcmp(json_string_value(
	                  json_object_get(*(json_t *const *)a, "name")),
	    json_string_value(json_object_get(*(json_t *const *)b, "name")));
}

/* {"name", "replicas"} of each Deployment matching sel, sorted, capped. */
static int sc_select(cep_kube *k, const char *ns, const char *sel, json_t *objs,
    size_t *matched, cep_err *err)
{
	cep_kube_list_opts o = {.label_selector = sel};
	json_t *items = NULL, *d;
	int rc = cep_kube_list(k, &cep_kube_deployments, ns, &o, &items, NULL,
	    0, err);
	if (rc != CEP_OK)
		return cep_err_wrap(err, TYPE);
	size_t i;
	json_t *all = json_array();
	json_array_foreach(items, i, d)
	{
		const char *name = json_string_value(
		    json_object_get(json_object_get(d, "metadata"), "name"));
		if (runner_kube_target_name_ok(name))
			json_array_append_new(all,
			    json_pack("{s:s, s:I}", "name", name, "replicas",
			        replicas_of(d)));
	}
	json_decref(items);
	size_t n = json_array_size(all);
	json_t **v = calloc(n ? n : 1, sizeof(*v));
	for (i = 0; v != NULL && i < n; i++)
		v[i] = json_array_get(all, i);
	if (v != NULL && n > 1)
		qsort(v, n, sizeof(*v), by_name);
	for (i = 0; v != NULL && i < n && i < runner_kube_target_max(); i++)
		json_array_append(objs, v[i]);
	*matched = n;
	free(v);
	json_decref(all);
	return CEP_OK;
}

/* The undo record: {"namespace", "name", "replicas"} for one named
 * Deployment (the form earlier records have), {"namespace", "objects":
 * [{"name", "replicas"}...]} for a selector. */
static int sc_read(const cep_exp_item *it, cep_kube *k, const char *type,
    const char *ns, json_t **undo, char *what, size_t wlen, cep_err *err)
{
	(void)type;
	const char *name = runner_param_str(it, "deployment", NULL);
	const char *sel = runner_param_str(it, "labelSelector", NULL);
	long long want = (long long)runner_param_int(it, "replicas", 0);
	if (name != NULL) {
		json_t *obj = NULL;
		if (!runner_kube_target_name_ok(name))
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    TYPE ": deployment must be a Deployment name "
			         "([a-z0-9.-], 1..253)");
		int rc = cep_kube_get(k, &cep_kube_deployments, ns, name, &obj,
		    err);
		if (rc != CEP_OK)
			return cep_err_wrap(err, TYPE);
		json_int_t orig = replicas_of(obj);
		json_decref(obj);
		*undo = json_pack("{s:s, s:s, s:I}", "namespace", ns, "name",
		    name, "replicas", orig);
		snprintf(what, wlen, "deployment %s/%s: %lld -> %lld replicas",
		    ns, name, (long long)orig, want);
		return CEP_OK;
	}
	json_t *objs = json_array();
	size_t matched = 0;
	int rc = sc_select(k, ns, sel != NULL ? sel : "", objs, &matched, err);
	if (rc == CEP_OK && json_array_size(objs) == 0)
		rc = cep_err_set(err, CEP_NOT_FOUND,
		    TYPE ": no Deployment in %s matches %.300s", ns, sel);
	if (rc != CEP_OK) {
		json_decref(objs);
		return rc;
	}
	snprintf(what, wlen,
	    "%zu of %zu deployments in %s matching %.300s -> %lld replicas",
	    json_array_size(objs), matched, ns, sel, want);
	*undo = json_pack("{s:s, s:o}", "namespace", ns, "objects", objs);
	return CEP_OK;
}

static int scale_one(cep_kube *k, const char *ns, json_t *o, json_int_t want,
    const cep_fault_ctx *ctx, cep_err *err)
{
	const char *name = json_string_value(json_object_get(o, "name"));
	int rc = cep_kube_scale_set(k, ns, name, want, err);
	if (rc != CEP_OK)
		return cep_err_wrap(err, TYPE);
	runner_emit_log(ctx->sink,
	    "%s: deployment %s/%s scaled from %lld "
	    "to %lld replicas",
	    ctx->fault_id, ns, name,
	    (long long)json_integer_value(json_object_get(o, "replicas")),
	    (long long)want);
	return CEP_OK;
}

static int scale_all(const cep_exp_item *it, cep_kube *k, json_t *undo,
    const cep_fault_ctx *ctx, cep_err *err)
{
	json_int_t want = runner_param_int(it, "replicas", 0);
	const char *ns = json_string_value(json_object_get(undo, "namespace"));
	json_t *objs = json_object_get(undo, "objects"), *o;
	size_t i;
	if (objs == NULL)
		return scale_one(k, ns, undo, want, ctx, err);
	json_array_foreach(objs, i, o)
	{
		int rc = scale_one(k, ns, o, want, ctx, err);
		if (rc != CEP_OK)
			return rc;
	}
	return CEP_OK;
}

static const runner_kube_record scale_rec = {TYPE, sc_read, scale_all,
    cep_undo_k8s_scale};

static int sc_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	return runner_kube_record_describe(it, &scale_rec, target, tlen, undo,
	    err);
}

static int sc_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	return runner_kube_record_inject(it, &scale_rec, ctx, state, err);
}

const cep_fault_ops runner_fault_kube_scale = {
    .type = TYPE,
    .mechanism = "k8s-scale",
    .describe = sc_describe,
    .inject = sc_inject,
    .revert = runner_kube_record_revert,
};
