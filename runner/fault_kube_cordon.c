/*
 * fault_kube_cordon.c - `node-cordon`: mark nodes unschedulable, one by
 * `node` name or those matching `nodeSelector` (sorted by name, at most
 * the policy's maxTargets). describe records each node's original
 * spec.unschedulable before anything changes, and inject cordons exactly
 * the nodes recorded; revert (and the delegate, if the runner dies, with
 * lib/undo/undo.c's k8s-cordon) sets each back as it was - a node that was
 * cordoned before stays cordoned - and reads it back. node-drain
 * (fault_kube_drain.c) cordons through the same two functions.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "kube_target.h"
#include "params.h"
#include "undo.h"

typedef struct nc_state {
	cep_kube *k;
	char *undo;
} nc_state;

static json_t *node_entry(json_t *node, const char *name, const void *arg)
{
	(void)arg;
	bool was = json_is_true(
	    json_object_get(json_object_get(node, "spec"), "unschedulable"));
	return json_pack("{s:s, s:b}", "name", name, "unschedulable", was);
}

/* {"nodes": [{"name", "unschedulable"}...]}, read before acting. */
static int nc_read(const cep_exp_item *it, cep_kube *k, const char *type,
    json_t **undo, char *what, size_t wlen, cep_err *err)
{
	json_t *nodes = NULL;
	int rc = runner_kube_target_nodes(it, k, type, node_entry, NULL, &nodes,
	    what, wlen, err);
	if (rc == CEP_OK)
		*undo = json_pack("{s:o}", "nodes", nodes);
	return rc;
}

int runner_kube_cordon_describe(const cep_exp_item *it, const char *type,
    char *target, size_t tlen, json_t **undo, cep_err *err)
{
	cep_kube *k;
	char ns[254];
	int rc = runner_kube_target_get(&k, ns, sizeof(ns), err);
	if (rc == CEP_OK)
		rc = runner_kube_target_check_perms(k, type, ns, err);
	if (rc == CEP_OK)
		rc = nc_read(it, k, type, undo, target, tlen, err);
	if (rc == CEP_OK)
		runner_kube_target_stash(it, json_incref(*undo));
	return rc;
}

static int cordon_all(cep_kube *k, json_t *undo, const char *type,
    const cep_fault_ctx *ctx, cep_err *err)
{
	json_t *nodes = json_object_get(undo, "nodes"), *n;
	size_t i;
	json_array_foreach(nodes, i, n)
	{
		const char *name = json_string_value(
		    json_object_get(n, "name"));
		int rc = cep_kube_node_unschedulable(k, name, true, err);
		if (rc != CEP_OK)
			return cep_err_wrap(err, "%s: node %s", type, name);
		runner_emit_log(ctx->sink, "%s: node %s cordoned%s",
		    ctx->fault_id, name,
		    json_is_true(json_object_get(n, "unschedulable")) ?
		        " (it already was: it stays so)" :
		        "");
	}
	return CEP_OK;
}

int runner_kube_cordon_inject(const cep_exp_item *it, const char *type,
    const cep_fault_ctx *ctx, char **undo_json, cep_err *err)
{
	cep_kube *k;
	char ns[254], what[400];
	int rc = runner_kube_target_get(&k, ns, sizeof(ns), err);
	json_t *undo = rc == CEP_OK ? runner_kube_target_take(it) : NULL;
	if (rc == CEP_OK && undo == NULL)
		rc = nc_read(it, k, type, &undo, what, sizeof(what), err);
	if (rc != CEP_OK)
		return rc;
	*undo_json = json_dumps(undo, JSON_COMPACT | JSON_SORT_KEYS);
	if (*undo_json == NULL) {
		json_decref(undo);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "%s: no memory",
		    type);
	}
	rc = cordon_all(k, undo, type, ctx, err);
	json_decref(undo);
	if (rc != CEP_OK) {
		/* not injected must mean nothing left: undo what was done */
		cep_undo_k8s_cordon(k, *undo_json, NULL);
		free(*undo_json);
		*undo_json = NULL;
	}
	return rc;
}

static int nc_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	return runner_kube_cordon_describe(it, "node-cordon", target, tlen,
	    undo, err);
}

static int nc_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	nc_state *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "node-cordon: no memory");
	char ns[254];
	int rc = runner_kube_target_get(&s->k, ns, sizeof(ns), err);
	if (rc == CEP_OK)
		rc = runner_kube_cordon_inject(it, "node-cordon", ctx, &s->undo,
		    err);
	if (rc != CEP_OK) {
		free(s);
		return rc;
	}
	*state = s;
	return CEP_OK;
}

static int nc_revert(void *state, cep_err *err)
{
	nc_state *s = state;
	int rc = cep_undo_k8s_cordon(s->k, s->undo, err);
	free(s->undo);
	free(s);
	return rc;
}

const cep_fault_ops runner_fault_kube_cordon = {
    .type = "node-cordon",
    .mechanism = "k8s-cordon",
    .describe = nc_describe,
    .inject = nc_inject,
    .revert = nc_revert,
};
