/*
 * undo_taint.c - the undo of "k8s-taint" (node-taint): each node loses the
 * taint the fault added and gets back the taint of the same key and effect
 * it had before, if any. Shared by the runner's revert and the delegate's
 * cleanup after the runner died (undo.c's table).
 */
#define _GNU_SOURCE
#include "undo.h"

#include <stdio.h>
#include <string.h>

#define MAX_NODES 1000

typedef struct taint_undo {
	json_t *ours; /* {"key", "value", "effect"} */
	json_t *had;  /* the node's taint of the same key and effect, or NULL */
} taint_undo;

static bool str_eq(json_t *a, json_t *b, const char *key)
{
	const char *x = json_string_value(json_object_get(a, key));
	const char *y = json_string_value(json_object_get(b, key));
	return strcmp(x ? x : "", y ? y : "") == 0;
}

bool cep_undo_taint_same(json_t *a, json_t *b, bool value_too)
{
	return str_eq(a, b, "key") && str_eq(a, b, "effect") &&
	    (!value_too || str_eq(a, b, "value"));
}

/* Only a taint exactly ours is removed: one of the same key and effect
 * with another value was written by someone else after the fault, and is
 * theirs to keep. */
static int restore_fn(json_t *taints, void *arg, bool *changed, cep_err *err)
{
	(void)err;
	taint_undo *u = arg;
	if (u->had != NULL && cep_undo_taint_same(u->had, u->ours, true))
		return CEP_OK; /* the node had exactly this taint: untouched */
	for (size_t i = 0; i < json_array_size(taints); i++) {
		if (!cep_undo_taint_same(json_array_get(taints, i), u->ours,
		        true))
			continue;
		json_array_remove(taints, i);
		if (u->had != NULL)
			json_array_append(taints, u->had);
		*changed = true;
		break;
	}
	return CEP_OK;
}

static bool field_ok(json_t *t, const char *key, size_t max, bool required)
{
	json_t *v = json_object_get(t, key);
	if (v == NULL)
		return !required;
	return json_is_string(v) && strlen(json_string_value(v)) <= max &&
	    (!required || json_string_length(v) > 0);
}

static bool taint_ok(json_t *t)
{
	return json_is_object(t) && field_ok(t, "key", 316, true) &&
	    field_ok(t, "value", 63, false) && field_ok(t, "effect", 16, true);
}

static bool name_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	return n > 0 && n <= 253 &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789.-") == n;
}

static int check_record(json_t *j, cep_err *err)
{
	json_t *nodes = json_object_get(j, "nodes");
	if (!taint_ok(json_object_get(j, "taint")) || !json_is_array(nodes) ||
	    json_array_size(nodes) > MAX_NODES)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "k8s-taint: undo "
		    "record needs a taint {key, value, effect} and a list "
		    "\"nodes\" of at most %d",
		    MAX_NODES);
	for (size_t i = 0; i < json_array_size(nodes); i++) {
		json_t *n = json_array_get(nodes, i), *had;
		had = json_object_get(n, "had");
		if (!name_ok(json_string_value(json_object_get(n, "name"))) ||
		    (had != NULL && !json_is_null(had) && !taint_ok(had)))
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "k8s-taint: undo record node %zu needs a name "
			    "(and \"had\" a taint or null)",
			    i);
	}
	return CEP_OK;
}

/* One node, then read back: the taint must be gone (NOT_FOUND: a node
 * that no longer exists holds no fault). */
static int restore_node(cep_kube *k, const char *name, taint_undo *u,
    cep_err *err)
{
	int rc = cep_kube_node_taints(k, name, restore_fn, u, err);
	json_t *obj = NULL;
	if (rc == CEP_OK)
		rc = cep_kube_get(k, &cep_kube_nodes, NULL, name, &obj, err);
	if (rc == CEP_NOT_FOUND)
		return CEP_OK;
	if (rc != CEP_OK)
		return rc;
	json_t *taints = json_object_get(json_object_get(obj, "spec"),
	    "taints");
	bool left = false;
	for (size_t i = 0; i < json_array_size(taints); i++)
		left = left ||
		    cep_undo_taint_same(json_array_get(taints, i), u->ours,
		        true);
	json_decref(obj);
	if (left &&
	    (u->had == NULL || !cep_undo_taint_same(u->had, u->ours, true)))
		return cep_err_set(err, CEP_ABORTED,
		    "node %s: the taint %s still reads after removing it", name,
		    json_string_value(json_object_get(u->ours, "key")));
	return CEP_OK;
}

/* Every node is tried even when one fails; the first error is kept. */
int cep_undo_k8s_taint(cep_kube *k, const char *undo_json, cep_err *err)
{
	json_t *j = cep_undo_load("k8s-taint", undo_json, err);
	if (j == NULL)
		return CEP_INVALID_ARGUMENT;
	int rv = check_record(j, err);
	json_t *nodes = json_object_get(j, "nodes");
	size_t n_nodes = rv == CEP_OK ? json_array_size(nodes) : 0;
	for (size_t i = 0; i < n_nodes; i++) {
		json_t *n = json_array_get(nodes, i);
		json_t *had = json_object_get(n, "had");
		taint_undo u = {json_object_get(j, "taint"),
		    json_is_object(had) ? had : NULL};
		cep_err e = {0};
		int rc = restore_node(k,
		    json_string_value(json_object_get(n, "name")), &u, &e);
		if (rc != CEP_OK && rv == CEP_OK) {
			rv = rc;
			if (err != NULL)
				*err = e;
		}
	}
	json_decref(j);
	return rv;
}
