/*
 * fault_kube_taint.c - `node-taint`: put a taint (key, value, effect) on
 * nodes chosen like node-cordon's (kube_target_nodes.c). describe records,
 * for each node, the taint of the same key and effect it already had
 * ("had", the API keeps one per key and effect) before anything changes;
 * inject replaces that one by ours; revert (and the delegate, if the
 * runner dies, with lib/undo/undo_taint.c's k8s-taint) removes exactly our
 * taint and puts "had" back. Other taints are never touched: every write
 * is a read-modify-write pinned to the node's resourceVersion.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "kube_target.h"
#include "params.h"
#include "undo.h"

#define TYPE "node-taint"

static json_t *taint_of(const cep_exp_item *it)
{
	return json_pack("{s:s, s:s, s:s}", "key",
	    runner_param_str(it, "key", ""), "value",
	    runner_param_str(it, "value", ""), "effect",
	    runner_param_str(it, "effect", "NoSchedule"));
}

static json_t *node_entry(json_t *node, const char *name, const void *arg)
{
	json_t *taints = json_object_get(json_object_get(node, "spec"),
	           "taints"),
	       *t;
	size_t i;
	json_array_foreach(taints, i, t)
	{
		if (cep_undo_taint_same(t, (json_t *)arg, false))
			return json_pack("{s:s, s:O}", "name", name, "had", t);
	}
	return json_pack("{s:s, s:n}", "name", name, "had");
}

/* {"taint": ours, "nodes": [{"name", "had"}...]}, read before acting. */
static int nt_read(const cep_exp_item *it, cep_kube *k, const char *type,
    const char *ns, json_t **undo, char *what, size_t wlen, cep_err *err)
{
	(void)ns; /* nodes are cluster-scoped */
	json_t *taint = taint_of(it), *nodes = NULL;
	int rc = taint != NULL ?
	    runner_kube_target_nodes(it, k, type, node_entry, taint, &nodes,
	        what, wlen, err) :
	    cep_err_set(err, CEP_RESOURCE_EXHAUSTED, TYPE ": no memory");
	if (rc == CEP_OK)
		*undo = json_pack("{s:o, s:o}", "taint", taint, "nodes", nodes);
	else
		json_decref(taint);
	return rc;
}

/* Ours replaces the taint of the same key and effect (recorded as had). */
static int add_fn(json_t *taints, void *arg, bool *changed, cep_err *err)
{
	(void)err;
	json_t *ours = arg;
	for (size_t i = 0; i < json_array_size(taints); i++) {
		json_t *t = json_array_get(taints, i);
		if (!cep_undo_taint_same(t, ours, false))
			continue;
		if (cep_undo_taint_same(t, ours, true))
			return CEP_OK; /* already exactly ours */
		json_array_remove(taints, i);
		break;
	}
	json_array_append(taints, ours);
	*changed = true;
	return CEP_OK;
}

static int taint_all(const cep_exp_item *it, cep_kube *k, json_t *undo,
    const cep_fault_ctx *ctx, cep_err *err)
{
	(void)it;
	json_t *ours = json_object_get(undo, "taint"), *n;
	size_t i;
	json_array_foreach(json_object_get(undo, "nodes"), i, n)
	{
		const char *name = json_string_value(
		    json_object_get(n, "name"));
		int rc = cep_kube_node_taints(k, name, add_fn, ours, err);
		if (rc != CEP_OK)
			return cep_err_wrap(err, TYPE ": node %s", name);
		runner_emit_log(ctx->sink, "%s: node %s tainted %s=%s:%s%s",
		    ctx->fault_id, name,
		    json_string_value(json_object_get(ours, "key")),
		    json_string_value(json_object_get(ours, "value")),
		    json_string_value(json_object_get(ours, "effect")),
		    json_is_object(json_object_get(n, "had")) ?
		        " (replacing its taint of that key and effect, "
		        "restored after)" :
		        "");
	}
	return CEP_OK;
}

static const runner_kube_record taint_rec = {TYPE, nt_read, taint_all,
    cep_undo_k8s_taint};

static int nt_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	return runner_kube_record_describe(it, &taint_rec, target, tlen, undo,
	    err);
}

static int nt_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	return runner_kube_record_inject(it, &taint_rec, ctx, state, err);
}

const cep_fault_ops runner_fault_kube_taint = {
    .type = TYPE,
    .mechanism = "k8s-taint",
    .describe = nt_describe,
    .inject = nt_inject,
    .revert = runner_kube_record_revert,
};
