/*
 * fault_kube_cordon.c - `node-cordon`: mark nodes unschedulable, one by
 * `node` name or those matching `nodeSelector` (sorted by name, at most
 * the policy's maxTargets). describe records each node's original
 * spec.unschedulable before anything changes, and inject cordons exactly
 * the nodes recorded; revert (and the delegate, if the runner dies, with
 * lib/undo/undo.c's k8s-cordon) sets each back as it was - a node that was
 * cordoned before stays cordoned - and reads it back. node-drain
 * (fault_kube_drain.c) cordons through the same read and act.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "kube_target.h"
#include "params.h"
#include "undo.h"

static json_t *node_entry(json_t *node, const char *name, const void *arg)
{
	(void)arg;
	bool was = json_is_true(
	    json_object_get(json_object_get(node, "spec"), "unschedulable"));
	return json_pack("{s:s, s:b}", "name", name, "unschedulable", was);
}

/* {"nodes": [{"name", "unschedulable"}...]}, read before acting. */
int runner_kube_cordon_read(const cep_exp_item *it, cep_kube *k,
    const char *type, const char *ns, json_t **undo, char *what, size_t wlen,
    cep_err *err)
{
	(void)ns; /* nodes are cluster-scoped */
	json_t *nodes = NULL;
	int rc = runner_kube_target_nodes(it, k, type, node_entry, NULL, &nodes,
	    what, wlen, err);
	if (rc == CEP_OK)
		*undo = json_pack("{s:o}", "nodes", nodes);
	return rc;
}

int runner_kube_cordon_act(const cep_exp_item *it, cep_kube *k, json_t *undo,
    const cep_fault_ctx *ctx, cep_err *err)
{
	(void)it;
	json_t *nodes = json_object_get(undo, "nodes"), *n;
	size_t i;
	json_array_foreach(nodes, i, n)
	{
		const char *name = json_string_value(
		    json_object_get(n, "name"));
		int rc = cep_kube_node_unschedulable(k, name, true, err);
		if (rc != CEP_OK)
			return cep_err_wrap(err, "cordon node %s", name);
		runner_emit_log(ctx->sink, "%s: node %s cordoned%s",
		    ctx->fault_id, name,
		    json_is_true(json_object_get(n, "unschedulable")) ?
		        " (it already was: it stays so)" :
		        "");
	}
	return CEP_OK;
}

static const runner_kube_record cordon_rec = {"node-cordon",
    runner_kube_cordon_read, runner_kube_cordon_act, cep_undo_k8s_cordon};

static int nc_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	return runner_kube_record_describe(it, &cordon_rec, target, tlen, undo,
	    err);
}

static int nc_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	return runner_kube_record_inject(it, &cordon_rec, ctx, state, err);
}

const cep_fault_ops runner_fault_kube_cordon = {
    .type = "node-cordon",
    .mechanism = "k8s-cordon",
    .describe = nc_describe,
    .inject = nc_inject,
    .revert = runner_kube_record_revert,
};
