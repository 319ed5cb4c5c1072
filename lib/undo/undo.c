/*
 * undo.c - the mechanism -> undo function table (see undo.h), and the undo
 * of the Kubernetes mechanisms (k8s-scale, k8s-cordon; k8s-taint in
 * undo_taint.c), shared by the
 * runner's revert and the delegate's cleanup. The node mechanisms'
 * functions (nftables, tc-qdisc, disk-fill) live in cep_node
 * (undo_node.c) and are registered by the processes that link it.
 */
#define _GNU_SOURCE
#include "undo.h"

#include <stdio.h>
#include <string.h>

#define UNDO_JSON_MAX (64u * 1024u)
#define MAX_NODES 1000

int cep_undo_none(const char *run_id, const char *undo_json, cep_err *err)
{
	(void)run_id;
	(void)undo_json;
	(void)err;
	return CEP_OK;
}

/* ---- Kubernetes ---- */

/* A DNS subdomain (object names): [a-z0-9.-], 1..253. Names go into
 * request paths, so nothing else is let through. */
static bool k8s_name_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	return n > 0 && n <= 253 &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789.-") == n;
}

json_t *cep_undo_load(const char *what, const char *undo_json, cep_err *err)
{
	json_error_t je;
	size_t len = undo_json != NULL ? strnlen(undo_json, UNDO_JSON_MAX + 1) :
	                                 0;
	json_t *j = len > 0 && len <= UNDO_JSON_MAX ?
	    json_loadb(undo_json, len, JSON_REJECT_DUPLICATES, &je) :
	    NULL;
	if (!json_is_object(j)) {
		json_decref(j);
		cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s: undo record is not a JSON object", what);
		return NULL;
	}
	return j;
}

static int scale_args(json_t *j, const char **ns, const char **name,
    json_int_t *replicas, cep_err *err)
{
	*ns = json_string_value(json_object_get(j, "namespace"));
	*name = json_string_value(json_object_get(j, "name"));
	json_t *r = json_object_get(j, "replicas");
	if (!k8s_name_ok(*ns) || !k8s_name_ok(*name) || !json_is_integer(r) ||
	    json_integer_value(r) < 0 || json_integer_value(r) > 1000000)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "k8s-scale: undo "
		    "record needs namespace, name and replicas >= 0");
	*replicas = json_integer_value(r);
	return CEP_OK;
}

static int scale_restore(cep_kube *k, const char *ns, const char *name,
    json_int_t want, cep_err *err)
{
	int rc = cep_kube_scale_set(k, ns, name, want, err);
	if (rc == CEP_NOT_FOUND)
		return CEP_OK; /* gone: nothing holds the fault */
	if (rc != CEP_OK)
		return rc;
	json_t *obj = NULL;
	rc = cep_kube_get(k, &cep_kube_deployments, ns, name, &obj, err);
	if (rc == CEP_NOT_FOUND)
		return CEP_OK;
	if (rc != CEP_OK)
		return rc;
	json_t *got = json_object_get(json_object_get(obj, "spec"), "replicas");
	json_int_t have = json_is_integer(got) ? json_integer_value(got) : 1;
	json_decref(obj);
	if (have != want)
		return cep_err_set(err, CEP_ABORTED,
		    "deployment %s/%s: "
		    "spec.replicas reads %lld after restoring %lld",
		    ns, name, (long long)have, (long long)want);
	return CEP_OK;
}

/* {"namespace", "objects": [{"name", "replicas"}...]}: each checked
 * first, then each restored even when one fails (the first error kept). */
static int scale_objects(cep_kube *k, json_t *j, json_t *objs, cep_err *err)
{
	json_t *ns = json_object_get(j, "namespace");
	size_t n = json_is_array(objs) ? json_array_size(objs) : 0, i;
	int rv = json_is_array(objs) && n <= MAX_NODES ?
	    CEP_OK :
	    cep_err_set(err, CEP_INVALID_ARGUMENT,
	        "k8s-scale: undo record \"objects\" must be a list of at "
	        "most %d",
	        MAX_NODES);
	const char *s_ns, *name;
	json_int_t want;
	for (i = 0; rv == CEP_OK && i < n; i++) {
		json_t *o = json_deep_copy(json_array_get(objs, i));
		if (json_object_set(o, "namespace", ns) != 0)
			rv = cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "k8s-scale: undo record object %zu is not an "
			    "object",
			    i);
		else
			rv = scale_args(o, &s_ns, &name, &want, err);
		json_decref(o);
	}
	n = rv == CEP_OK ? n : 0;
	for (i = 0; i < n; i++) {
		json_t *o = json_array_get(objs, i);
		cep_err e = {0};
		int rc = scale_restore(k, json_string_value(ns),
		    json_string_value(json_object_get(o, "name")),
		    json_integer_value(json_object_get(o, "replicas")), &e);
		if (rc != CEP_OK && rv == CEP_OK) {
			rv = rc;
			if (err != NULL)
				*err = e;
		}
	}
	return rv;
}

int cep_undo_k8s_scale(cep_kube *k, const char *undo_json, cep_err *err)
{
	json_t *j = cep_undo_load("k8s-scale", undo_json, err);
	if (j == NULL)
		return CEP_INVALID_ARGUMENT;
	const char *ns = NULL, *name = NULL;
	json_int_t want = 0;
	json_t *objs = json_object_get(j, "objects");
	int rc;
	if (objs != NULL) {
		rc = scale_objects(k, j, objs, err);
	} else {
		rc = scale_args(j, &ns, &name, &want, err);
		if (rc == CEP_OK)
			rc = scale_restore(k, ns, name, want, err);
	}
	json_decref(j);
	return rc;
}

/* One node back to its recorded spec.unschedulable: false is written as
 * null (the field removed), as `kubectl uncordon` leaves a node. */
static int cordon_restore(cep_kube *k, const char *name, bool was, cep_err *err)
{
	int rc = cep_kube_node_unschedulable(k, name, was, err);
	if (rc == CEP_NOT_FOUND)
		return CEP_OK;
	if (rc != CEP_OK)
		return rc;
	json_t *obj = NULL;
	rc = cep_kube_get(k, &cep_kube_nodes, NULL, name, &obj, err);
	if (rc == CEP_NOT_FOUND)
		return CEP_OK;
	if (rc != CEP_OK)
		return rc;
	bool now = json_is_true(
	    json_object_get(json_object_get(obj, "spec"), "unschedulable"));
	json_decref(obj);
	if (now != was)
		return cep_err_set(err, CEP_ABORTED,
		    "node %s: "
		    "spec.unschedulable reads %s after restoring %s",
		    name, now ? "true" : "false", was ? "true" : "false");
	return CEP_OK;
}

/* Every node is tried even when one fails; the first error is kept. */
int cep_undo_k8s_cordon(cep_kube *k, const char *undo_json, cep_err *err)
{
	json_t *j = cep_undo_load("k8s-cordon", undo_json, err);
	if (j == NULL)
		return CEP_INVALID_ARGUMENT;
	json_t *nodes = json_object_get(j, "nodes");
	int rv = CEP_OK;
	if (!json_is_array(nodes) || json_array_size(nodes) > MAX_NODES)
		rv = cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "k8s-cordon: undo "
		    "record needs a list \"nodes\" of at most %d",
		    MAX_NODES);
	for (size_t i = 0; rv == CEP_OK && i < json_array_size(nodes); i++) {
		json_t *n = json_array_get(nodes, i);
		const char *name = json_string_value(
		    json_object_get(n, "name"));
		if (!k8s_name_ok(name) ||
		    !json_is_boolean(json_object_get(n, "unschedulable")))
			rv = cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "k8s-cordon: "
			    "undo record node %zu needs name and unschedulable",
			    i);
	}
	size_t n_nodes = rv == CEP_OK ? json_array_size(nodes) : 0;
	for (size_t i = 0; i < n_nodes; i++) {
		json_t *n = json_array_get(nodes, i);
		cep_err e = {0};
		int rc = cordon_restore(k,
		    json_string_value(json_object_get(n, "name")),
		    json_is_true(json_object_get(n, "unschedulable")), &e);
		if (rc != CEP_OK && rv == CEP_OK) {
			rv = rc;
			if (err != NULL)
				*err = e;
		}
	}
	json_decref(j);
	return rv;
}

static cep_kube *resolve(const cep_undo_ctx *ctx, const char *run_id, char *ns,
    size_t nslen, cep_err *err)
{
	ns[0] = '\0';
	cep_kube *k = ctx != NULL && ctx->kube != NULL ?
	    ctx->kube(run_id, ns, nslen, ctx->kube_arg) :
	    NULL;
	if (k == NULL)
		cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "run %s: no Kubernetes "
		    "client to undo its fault with",
		    run_id ? run_id : "?");
	return k;
}

static int undo_k8s_scale(const cep_undo_ctx *ctx, const char *run_id,
    const char *undo_json, cep_err *err)
{
	char ns[254];
	cep_kube *k = resolve(ctx, run_id, ns, sizeof(ns), err);
	if (k == NULL)
		return CEP_FAILED_PRECONDITION;
	json_t *j = cep_undo_load("k8s-scale", undo_json, err);
	const char *rns = j != NULL ?
	    json_string_value(json_object_get(j, "namespace")) :
	    NULL;
	int rc = j == NULL ? CEP_INVALID_ARGUMENT : CEP_OK;
	if (rc == CEP_OK && ns[0] != '\0' &&
	    (rns == NULL || strcmp(rns, ns) != 0))
		rc = cep_err_set(err, CEP_PERMISSION_DENIED,
		    "run %s: k8s-scale "
		    "undo record names a namespace other than the run's %s",
		    run_id, ns);
	json_decref(j);
	return rc == CEP_OK ? cep_undo_k8s_scale(k, undo_json, err) : rc;
}

static int undo_k8s_taint(const cep_undo_ctx *ctx, const char *run_id,
    const char *undo_json, cep_err *err)
{
	char ns[254];
	cep_kube *k = resolve(ctx, run_id, ns, sizeof(ns), err);
	return k != NULL ? cep_undo_k8s_taint(k, undo_json, err) :
	                   CEP_FAILED_PRECONDITION;
}

static int undo_k8s_cordon(const cep_undo_ctx *ctx, const char *run_id,
    const char *undo_json, cep_err *err)
{
	char ns[254];
	cep_kube *k = resolve(ctx, run_id, ns, sizeof(ns), err);
	return k != NULL ? cep_undo_k8s_cordon(k, undo_json, err) :
	                   CEP_FAILED_PRECONDITION;
}

/* Written by cep_undo_register before any thread undoes (at start). */
typedef int (*undo_ctx_fn)(const cep_undo_ctx *ctx, const char *run_id,
    const char *undo_json, cep_err *err);

static struct {
	const char *mechanism;
	cep_undo_fn fn;
	bool on_node;    /* state on the node the runner ran on */
	undo_ctx_fn cfn; /* instead of fn: needs the caller's context */
} undo_table[] = {
    {"signal", cep_undo_none, false, NULL},
    {"child-process", cep_undo_none, false, NULL},
    /* cep_node's (undo_node.c): NULL until registered */
    {"nftables", NULL, true, NULL},
    {"tc-qdisc", NULL, true, NULL},
    {"disk-fill", NULL, true, NULL},
    /* a hog's cgroup on a kubernetes node: the cleanup runner removes it */
    {"node-cgroup", cep_undo_node_cgroup, true, NULL},
    /* a deleted pod cannot be brought back, and nothing of the fault
     * remains once it is deleted: its controller replaces it */
    {"k8s-pod-delete", cep_undo_none, false, NULL},
    {"k8s-scale", NULL, false, undo_k8s_scale},
    {"k8s-cordon", NULL, false, undo_k8s_cordon},
    {"k8s-taint", NULL, false, undo_k8s_taint},
};

#define NUNDO (sizeof(undo_table) / sizeof(undo_table[0]))

int cep_undo_register(const char *mechanism, cep_undo_fn fn)
{
	for (size_t i = 0; mechanism != NULL && i < NUNDO; i++)
		if (strcmp(undo_table[i].mechanism, mechanism) == 0 &&
		    undo_table[i].on_node) {
			undo_table[i].fn = fn;
			return CEP_OK;
		}
	return CEP_NOT_FOUND;
}

bool cep_undo_on_node(const char *mechanism)
{
	for (size_t i = 0; mechanism != NULL && i < NUNDO; i++)
		if (strcmp(undo_table[i].mechanism, mechanism) == 0)
			return undo_table[i].on_node;
	return false;
}

int cep_undo_apply(const cep_undo_ctx *ctx, const Cep__V1__FaultRecord *rec,
    cep_err *err)
{
	if (rec == NULL || rec->mechanism == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "no fault record");
	for (size_t i = 0; i < NUNDO; i++) {
		if (strcmp(undo_table[i].mechanism, rec->mechanism) != 0)
			continue;
		if (undo_table[i].cfn != NULL)
			return undo_table[i].cfn(ctx, rec->run_id, rec->undo,
			    err);
		if (undo_table[i].fn == NULL)
			return cep_err_set(err, CEP_UNIMPLEMENTED,
			    "fault %s: "
			    "mechanism \"%s\" is undone on the node by a cleanup "
			    "runner, not in this process",
			    rec->fault_id, rec->mechanism);
		return undo_table[i].fn(rec->run_id, rec->undo, err);
	}
	return cep_err_set(err, CEP_UNIMPLEMENTED,
	    "fault %s: no undo for mechanism \"%s\"", rec->fault_id,
	    rec->mechanism);
}
