/*
 * kube_target_nodes.c - the nodes a node fault (node-cordon, node-taint,
 * node-drain) acts on: `node` by name, or those matching `nodeSelector`
 * sorted by name and capped at the policy's maxTargets (kube_target.h).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_target.h"
#include "params.h"

static int by_name(const void *a, const void *b)
{
	const char *x = json_string_value(
	    json_object_get(*(json_t *const *)a, "name"));
	const char *y = json_string_value(
	    json_object_get(*(json_t *const *)b, "name"));
	return strcmp(x, y);
}

/* An entry of a node whose name is valid, or NULL. */
static json_t *entry_of(json_t *node, runner_kube_node_fn fn, const void *arg)
{
	const char *name = json_string_value(
	    json_object_get(json_object_get(node, "metadata"), "name"));
	return runner_kube_target_name_ok(name) ? fn(node, name, arg) : NULL;
}

static int select_nodes(cep_kube *k, uint32_t max, const char *type,
    const char *sel, runner_kube_node_fn fn, const void *arg, json_t *nodes,
    size_t *matched, cep_err *err)
{
	cep_kube_list_opts o = {.label_selector = sel};
	json_t *items = NULL;
	int rc = cep_kube_list(k, &cep_kube_nodes, NULL, &o, &items, NULL, 0,
	    err);
	if (rc != CEP_OK)
		return cep_err_wrap(err, "%s", type);
	size_t n = json_array_size(items), i, m = 0;
	json_t **v = calloc(n ? n : 1, sizeof(*v)), *node;
	json_array_foreach(items, i, node)
	{
		json_t *e = v != NULL ? entry_of(node, fn, arg) : NULL;
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
	    cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "%s: no memory", type);
}

static int one_node(cep_kube *k, const char *type, const char *node,
    runner_kube_node_fn fn, const void *arg, json_t *nodes, cep_err *err)
{
	if (!runner_kube_target_name_ok(node))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s: node must be a node name ([a-z0-9.-], 1..253)", type);
	json_t *obj = NULL;
	int rc = cep_kube_get(k, &cep_kube_nodes, NULL, node, &obj, err);
	if (rc != CEP_OK)
		return cep_err_wrap(err, "%s", type);
	json_t *e = entry_of(obj, fn, arg);
	if (e != NULL)
		json_array_append_new(nodes, e);
	json_decref(obj);
	return CEP_OK;
}

int runner_kube_target_nodes(const cep_exp_item *it, cep_kube *k,
    const char *type, runner_kube_node_fn fn, const void *arg, json_t **out,
    char *what, size_t wlen, cep_err *err)
{
	const char *node = runner_param_str(it, "node", NULL);
	const char *sel = runner_param_str(it, "nodeSelector", NULL);
	json_t *nodes = json_array();
	size_t matched = 0;
	int rc;
	/* the policy's cap, lowered by the fault's own count */
	uint32_t max = runner_kube_target_max();
	int64_t count = runner_param_int(it, "count", 0);
	if (count > 0 && (uint64_t)count < max)
		max = (uint32_t)count;
	if (node != NULL) {
		rc = one_node(k, type, node, fn, arg, nodes, err);
		snprintf(what, wlen, "node %s", node);
	} else {
		rc = select_nodes(k, max, type, sel != NULL ? sel : "", fn, arg,
		    nodes, &matched, err);
		snprintf(what, wlen,
		    "%zu of %zu nodes matching %.300s (at most "
		    "%u)",
		    json_array_size(nodes), matched, sel ? sel : "", max);
	}
	if (rc == CEP_OK && json_array_size(nodes) == 0)
		rc = cep_err_set(err, CEP_NOT_FOUND,
		    "%s: no node matches %.300s", type,
		    sel != NULL ? sel : node);
	if (rc != CEP_OK) {
		json_decref(nodes);
		return rc;
	}
	*out = nodes;
	return CEP_OK;
}
