/*
 * fault_kube_drain.c - `node-drain`: cordon nodes as node-cordon does,
 * then evict their pods through the Eviction API (pods/eviction,
 * policy/v1), as `kubectl drain --ignore-daemonsets --force` does: pods
 * owned by a DaemonSet and mirror pods are skipped (the DaemonSet
 * controller and the kubelet would put them straight back), as are pods
 * already terminating and cep's own. An eviction the API refuses with 429
 * (a PodDisruptionBudget allows no disruption now) is tried again every
 * DRAIN_RETRY_MS while the fault lasts, and logged. Revert uncordons
 * (lib/undo/undo.c's k8s-cordon, the delegate's too); evicted pods are not
 * brought back - their controllers make new ones, as after pod-delete.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fault.h"
#include "kube_target.h"
#include "params.h"
#include "undo.h"

#define TYPE "node-drain"
#define DRAIN_RETRY_MS 2000
#define MAX_PODS 1000

typedef struct dr_pod {
	char ns[254], name[254];
	unsigned tries;
} dr_pod;

typedef struct dr_state {
	cep_kube *k;
	char *undo;
	dr_pod *pending; /* refused so far, tried again */
	size_t npending;
	int64_t next;
	cep_runner_sink *sink; /* for the summary at revert */
	char fault_id[64];
} dr_state;

static bool is_fatal(int rc)
{
	return rc == CEP_PERMISSION_DENIED || rc == CEP_UNAUTHENTICATED;
}

/* Why pod is not evicted, or NULL to evict it. */
static const char *skip_reason(json_t *pod)
{
	json_t *md = json_object_get(pod, "metadata"), *o;
	size_t i;
	if (json_object_get(md, "deletionTimestamp") != NULL)
		return "already terminating";
	if (json_object_get(json_object_get(md, "annotations"),
	        "kubernetes.io/config.mirror") != NULL)
		return "a mirror pod";
	const char *mgr = json_string_value(
	    json_object_get(json_object_get(md, "labels"),
	        "app.kubernetes.io/managed-by"));
	if (mgr != NULL && strcmp(mgr, "cep") == 0)
		return "cep's own";
	json_array_foreach(json_object_get(md, "ownerReferences"), i, o)
	{
		const char *kind = json_string_value(
		    json_object_get(o, "kind"));
		if (json_is_true(json_object_get(o, "controller")) &&
		    kind != NULL && strcmp(kind, "DaemonSet") == 0)
			return "owned by a DaemonSet";
	}
	return NULL;
}

/* One eviction: true when the pod is gone or going (evicted, or no longer
 * there), false when it stays pending. */
static bool evict_one(dr_state *s, dr_pod *p, const cep_fault_ctx *ctx,
    int *fatal, cep_err *err)
{
	int rc = cep_kube_evict(s->k, p->ns, p->name, err);
	p->tries++;
	if (rc == CEP_OK || rc == CEP_NOT_FOUND) {
		runner_emit_log(ctx->sink, "%s: pod %s/%s %s%s", ctx->fault_id,
		    p->ns, p->name, rc == CEP_OK ? "evicted" : "already gone",
		    p->tries > 1 ? " (after its disruption budget refused)" :
		                   "");
		return true;
	}
	if (is_fatal(rc))
		*fatal = rc;
	else if (p->tries == 1 || p->tries % 10 == 0)
		runner_emit_log(ctx->sink,
		    "%s: pod %s/%s not evicted (try %u): %s%s", ctx->fault_id,
		    p->ns, p->name, p->tries, err->msg,
		    rc == CEP_RESOURCE_EXHAUSTED ?
		        "; tried again while the fault lasts" :
		        "");
	return false;
}

/* Tries every pending pod once; keeps those still refused. */
static int evict_pending(dr_state *s, const cep_fault_ctx *ctx, cep_err *err)
{
	size_t keep = 0;
	int fatal = CEP_OK;
	for (size_t i = 0; i < s->npending; i++) {
		if (fatal == CEP_OK &&
		    evict_one(s, &s->pending[i], ctx, &fatal, err))
			continue;
		s->pending[keep++] = s->pending[i];
	}
	s->npending = keep;
	return fatal;
}

static void add_pod(dr_state *s, json_t *pod, const char *node,
    const cep_fault_ctx *ctx)
{
	json_t *md = json_object_get(pod, "metadata");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *name = json_string_value(json_object_get(md, "name"));
	const char *why = skip_reason(pod);
	if (!runner_kube_target_name_ok(ns) ||
	    !runner_kube_target_name_ok(name) || s->npending >= MAX_PODS)
		return;
	if (why != NULL) {
		runner_emit_log(ctx->sink, "%s: node %s: pod %s/%s left: %s",
		    ctx->fault_id, node, ns, name, why);
		return;
	}
	dr_pod *p = &s->pending[s->npending++];
	snprintf(p->ns, sizeof(p->ns), "%s", ns);
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->tries = 0;
}

/* The pods on each recorded node, every namespace (a drain empties the
 * node, as kubectl's does). */
static int list_pods(dr_state *s, json_t *undo, const cep_fault_ctx *ctx,
    cep_err *err)
{
	json_t *n;
	size_t i;
	int rc = CEP_OK;
	json_array_foreach(json_object_get(undo, "nodes"), i, n)
	{
		const char *node = json_string_value(
		    json_object_get(n, "name"));
		char fs[300];
		snprintf(fs, sizeof(fs), "spec.nodeName=%s", node);
		cep_kube_list_opts o = {.field_selector = fs};
		json_t *items = NULL, *pod;
		size_t j;
		if ((rc = cep_kube_list(s->k, &cep_kube_pods, NULL, &o, &items,
		         NULL, 0, err)) != CEP_OK) {
			cep_err_wrap(err, TYPE ": node %s", node);
			break;
		}
		json_array_foreach(items, j, pod) add_pod(s, pod, node, ctx);
		json_decref(items);
	}
	return rc;
}

static const runner_kube_record drain_rec = {TYPE, runner_kube_cordon_read,
    runner_kube_cordon_act, cep_undo_k8s_cordon};

static int dr_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	return runner_kube_record_describe(it, &drain_rec, target, tlen, undo,
	    err);
}

static void dr_free(dr_state *s)
{
	free(s->pending);
	free(s->undo);
	free(s);
}

static int dr_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	dr_state *s = calloc(1, sizeof(*s));
	if (s == NULL ||
	    (s->pending = calloc(MAX_PODS, sizeof(*s->pending))) == NULL) {
		free(s);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    TYPE ": no memory");
	}
	json_t *undo = NULL;
	int rc = runner_kube_record_take(it, &drain_rec, &s->k, &undo, err);
	if (rc == CEP_OK &&
	    (s->undo = json_dumps(undo, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		rc = cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    TYPE ": no memory");
	if (rc == CEP_OK)
		rc = runner_kube_cordon_act(it, s->k, undo, ctx, err);
	if (rc == CEP_OK)
		rc = list_pods(s, undo, ctx, err);
	json_decref(undo);
	size_t found = s->npending;
	if (rc == CEP_OK)
		rc = evict_pending(s, ctx, err);
	if (rc != CEP_OK) {
		if (s->undo != NULL) /* uncordon: not injected */
			cep_undo_k8s_cordon(s->k, s->undo, NULL);
		dr_free(s);
		return rc;
	}
	runner_emit_log(ctx->sink, "%s: %zu of %zu pods evicted%s",
	    ctx->fault_id, found - s->npending, found,
	    s->npending ? ", the others tried again while the fault lasts" :
	                  "");
	s->sink = ctx->sink;
	snprintf(s->fault_id, sizeof(s->fault_id), "%s", ctx->fault_id);
	s->next = cep_clock_mono_ms() + DRAIN_RETRY_MS;
	*state = s;
	return CEP_OK;
}

static int64_t dr_next_tick(void *state)
{
	dr_state *s = state;
	return s->npending > 0 ? s->next : INT64_MAX;
}

static void dr_tick(void *state, const cep_fault_ctx *ctx)
{
	dr_state *s = state;
	cep_err err = {0};
	int rc = evict_pending(s, ctx, &err);
	if (is_fatal(rc) && ctx->fail != NULL) {
		char why[CEP_ERR_MSG_MAX + 64];
		snprintf(why, sizeof(why), "fault %s: %s", ctx->fault_id,
		    err.msg);
		ctx->fail(ctx->fail_arg, why);
		s->npending = 0; /* no more tries */
		return;
	}
	s->next = cep_clock_mono_ms() + DRAIN_RETRY_MS;
}

static int dr_revert(void *state, cep_err *err)
{
	dr_state *s = state;
	if (s->npending > 0)
		runner_emit_log(s->sink,
		    "%s: %zu pods were still not evicted "
		    "when the fault ended (first: %s/%s)",
		    s->fault_id, s->npending, s->pending[0].ns,
		    s->pending[0].name);
	int rc = cep_undo_k8s_cordon(s->k, s->undo, err);
	dr_free(s);
	return rc;
}

const cep_fault_ops runner_fault_kube_drain = {
    .type = TYPE,
    .mechanism = "k8s-cordon",
    .describe = dr_describe,
    .inject = dr_inject,
    .next_tick = dr_next_tick,
    .tick = dr_tick,
    .revert = dr_revert,
};
