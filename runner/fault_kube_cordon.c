/*
 * fault_kube_cordon.c - `node-cordon`: mark nodes unschedulable, one by
 * `node` name or those matching `nodeSelector` (sorted by name, at most
 * the policy's maxTargets). describe records each node's original
 * spec.unschedulable before anything changes, and inject cordons exactly
 * the nodes recorded; revert (and the delegate, if the runner dies, with
 * lib/undo/undo.c's k8s-cordon) sets each back as it was - a node that was
 * cordoned before stays cordoned - and reads it back.
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

static json_t *node_entry(json_t *node)
{
	json_t *md = json_object_get(node, "metadata");
	const char *name = json_string_value(json_object_get(md, "name"));
	bool was = json_is_true(
	    json_object_get(json_object_get(node, "spec"), "unschedulable"));
	return runner_kube_target_name_ok(name) ?
	    json_pack("{s:s, s:b}", "name", name, "unschedulable", was) :
	    NULL;
}

static int by_name(const void *a, const void *b)
{
	const char *x = json_string_value(
	    json_object_get(*(json_t *const *)a, "name"));
	const char *y = json_string_value(
	    json_object_get(*(json_t *const *)b, "name"));
	return strcmp(x, y);
}

/* The nodes a selector picks: sorted by name, capped at max. */
static int nc_select(cep_kube *k, const char *sel, uint32_t max, json_t *nodes,
    size_t *matched, cep_err *err)
{
	cep_kube_list_opts o = {.label_selector = sel};
	json_t *items = NULL;
	int rc = cep_kube_list(k, &cep_kube_nodes, NULL, &o, &items, NULL, 0,
	    err);
	if (rc != CEP_OK)
		return cep_err_wrap(err, "node-cordon");
	size_t n = json_array_size(items), i;
	json_t **v = calloc(n ? n : 1, sizeof(*v)), *node;
	size_t m = 0;
	json_array_foreach(items, i, node)
	{
		json_t *e = v != NULL ? node_entry(node) : NULL;
		if (e != NULL)
			v[m++] = e;
	}
	if (m > 1)
		qsort(v, m, sizeof(*v), by_name);
	for (i = 0; i < m; i++) {
		if (i < max)
			json_array_append(nodes, v[i]);
		json_decref(v[i]);
	}
	*matched = m;
	bool ok = v != NULL;
	free(v);
	json_decref(items);
	return ok ?
	    CEP_OK :
	    cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "node-cordon: no memory");
}

/* {"nodes": [{"name", "unschedulable"}...]}, read before acting. */
static int nc_read(const cep_exp_item *it, cep_kube *k, json_t **undo,
    char *what, size_t wlen, cep_err *err)
{
	const char *node = runner_param_str(it, "node", NULL);
	const char *sel = runner_param_str(it, "nodeSelector", NULL);
	uint32_t max = runner_kube_target_max();
	json_t *nodes = json_array();
	size_t matched = 0;
	int rc = CEP_OK;
	if (node != NULL) {
		json_t *obj = NULL;
		if (!runner_kube_target_name_ok(node))
			rc = cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "node-cordon: "
			    "node must be a node name ([a-z0-9.-], 1..253)");
		else if ((rc = cep_kube_get(k, &cep_kube_nodes, NULL, node,
		              &obj, err)) != CEP_OK)
			cep_err_wrap(err, "node-cordon");
		json_t *e = obj != NULL ? node_entry(obj) : NULL;
		if (e != NULL)
			json_array_append_new(nodes, e);
		json_decref(obj);
		snprintf(what, wlen, "node %s", node);
	} else {
		rc = nc_select(k, sel != NULL ? sel : "", max, nodes, &matched,
		    err);
		snprintf(what, wlen,
		    "%zu of %zu nodes matching %.300s (at most "
		    "%u)",
		    json_array_size(nodes), matched, sel ? sel : "", max);
	}
	if (rc == CEP_OK && json_array_size(nodes) == 0)
		rc = cep_err_set(err, CEP_NOT_FOUND,
		    "node-cordon: no node "
		    "matches %.300s",
		    sel != NULL ? sel : node);
	if (rc != CEP_OK) {
		json_decref(nodes);
		return rc;
	}
	*undo = json_pack("{s:o}", "nodes", nodes);
	return CEP_OK;
}

static int nc_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	cep_kube *k;
	char ns[254];
	int rc = runner_kube_target_get(&k, ns, sizeof(ns), err);
	if (rc == CEP_OK)
		rc = runner_kube_target_check_perms(k, "node-cordon", ns, err);
	if (rc == CEP_OK)
		rc = nc_read(it, k, undo, target, tlen, err);
	if (rc == CEP_OK)
		runner_kube_target_stash(it, json_incref(*undo));
	return rc;
}

static int cordon(cep_kube *k, const char *name, cep_err *err)
{
	return cep_kube_node_unschedulable(k, name, true, err);
}

static int nc_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	cep_kube *k;
	char ns[254], what[400];
	int rc = runner_kube_target_get(&k, ns, sizeof(ns), err);
	json_t *undo = rc == CEP_OK ? runner_kube_target_take(it) : NULL;
	if (rc == CEP_OK && undo == NULL)
		rc = nc_read(it, k, &undo, what, sizeof(what), err);
	if (rc != CEP_OK)
		return rc;
	nc_state *s = calloc(1, sizeof(*s));
	if (s == NULL ||
	    (s->undo = json_dumps(undo, JSON_COMPACT | JSON_SORT_KEYS)) ==
	        NULL) {
		free(s);
		json_decref(undo);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "node-cordon: no memory");
	}
	s->k = k;
	json_t *nodes = json_object_get(undo, "nodes"), *n;
	size_t i;
	json_array_foreach(nodes, i, n)
	{
		const char *name = json_string_value(
		    json_object_get(n, "name"));
		if ((rc = cordon(k, name, err)) != CEP_OK) {
			cep_err_wrap(err, "node-cordon: node %s", name);
			break;
		}
		runner_emit_log(ctx->sink, "%s: node %s cordoned%s",
		    ctx->fault_id, name,
		    json_is_true(json_object_get(n, "unschedulable")) ?
		        " (it already was: it stays so)" :
		        "");
	}
	json_decref(undo);
	if (rc != CEP_OK) {
		/* not injected must mean nothing left: undo what was done */
		cep_undo_k8s_cordon(k, s->undo, NULL);
		free(s->undo);
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
