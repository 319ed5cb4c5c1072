/*
 * fault_kube_pod_delete.c - `pod-delete`: delete Running pods matching a
 * label selector in the run's namespace, chosen at random: `count` or
 * `percentage` (rounded up) of them per round, never more than the
 * policy's maxTargets. One round at injection, then one every `interval`
 * while chaos lasts (no interval: one round). A deleted pod cannot be
 * brought back and nothing of the fault remains once it is gone (its
 * controller replaces it), so the undo is none and revert only stops the
 * rounds. Each deleted pod is named in a log event.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "kube_target.h"
#include "params.h"
#include "pod_select.h"
#include "podtarget.h"
#include "clock.h"

#define MAX_PODS 10000

typedef struct pd_state {
	cep_kube *k;
	char ns[254];
	char selector[1025];
	int64_t count; /* > 0, or percentage */
	int64_t percent;
	int64_t grace;       /* seconds, < 0 = the pod's default */
	int64_t interval_ms; /* 0 = one round */
	int64_t next;
	int64_t round;
	uint32_t max;
} pd_state;

static int pd_params(const cep_exp_item *it, pd_state *s, cep_err *err)
{
	const char *sel = runner_param_str(it, "labelSelector", NULL);
	if (sel == NULL || strlen(sel) >= sizeof(s->selector))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "pod-delete: labelSelector is required");
	snprintf(s->selector, sizeof(s->selector), "%s", sel);
	s->count = runner_param_int(it, "count", 0);
	s->percent = runner_param_int(it, "percentage", 0);
	if ((s->count > 0) == (s->percent > 0))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "pod-delete: exactly one of count, percentage is required");
	bool force = cep_exp_bool(it, "force");
	if (force && cep_exp_has(it, "gracePeriod"))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "pod-delete: both "
		    "force and gracePeriod given, expected one of them");
	s->grace = force ? 0 :
	    cep_exp_has(it, "gracePeriod") ?
	                   runner_param_ms(it, "gracePeriod", 0) / 1000 :
	                   -1;
	s->interval_ms = runner_param_ms(it, "interval", 0);
	s->max = runner_kube_target_max();
	return CEP_OK;
}

static void pd_what(const pd_state *s, char *buf, size_t len)
{
	char how[32];
	if (s->count > 0)
		snprintf(how, sizeof(how), "%lld", (long long)s->count);
	else
		snprintf(how, sizeof(how), "%lld%%", (long long)s->percent);
	snprintf(buf, len, "%s of the Running pods %.300s in %s (at most %u)",
	    how, s->selector, s->ns, s->max);
}

static int pd_open(const cep_exp_item *it, pd_state *s, cep_err *err)
{
	int rc = pd_params(it, s, err);
	if (rc == CEP_OK)
		rc = runner_kube_target_get(&s->k, s->ns, sizeof(s->ns), err);
	return rc;
}

static int pd_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	pd_state s = {0};
	int rc = pd_open(it, &s, err);
	if (rc == CEP_OK)
		rc = runner_kube_target_check_perms(s.k, "pod-delete", s.ns,
		    err);
	if (rc != CEP_OK)
		return rc;
	pd_what(&s, target, tlen);
	*undo = json_pack("{s:s, s:s}", "namespace", s.ns, "labelSelector",
	    s.selector);
	return CEP_OK;
}

/* Errors a round cannot go on after: the account lost its permission or
 * its credentials. Anything else (a pod already gone, a server that
 * stayed unavailable through the retries) is logged, and the next round
 * tries again. */
static bool pd_fatal(int rc)
{
	return rc == CEP_PERMISSION_DENIED || rc == CEP_UNAUTHENTICATED;
}

static int pd_delete(pd_state *s, const char *name, const cep_fault_ctx *ctx,
    int *deleted, cep_err *err)
{
	cep_kube_delete_opts o = {.grace_seconds = s->grace};
	int rc = cep_kube_delete(s->k, &cep_kube_pods, s->ns, name, &o, err);
	if (rc == CEP_OK) {
		char how[48] = "";
		if (s->grace >= 0)
			snprintf(how, sizeof(how), " (grace %llds)",
			    (long long)s->grace);
		(*deleted)++;
		runner_emit_log(ctx->sink,
		    "%s: round %lld: deleted pod %s/%s"
		    "%s",
		    ctx->fault_id, (long long)s->round, s->ns, name, how);
	} else {
		runner_emit_log(ctx->sink,
		    "%s: round %lld: pod %s/%s not "
		    "deleted: %s",
		    ctx->fault_id, (long long)s->round, s->ns, name, err->msg);
	}
	return pd_fatal(rc) ? rc : CEP_OK;
}

/* One round. Fails when the pods cannot be listed at all, or a delete
 * meets pd_fatal (the round stops there). */
static int pd_round(pd_state *s, const cep_fault_ctx *ctx, cep_err *err)
{
	s->round++;
	cep_kube_list_opts o = {.label_selector = s->selector};
	json_t *items = NULL;
	int rc = cep_kube_list(s->k, &cep_kube_pods, s->ns, &o, &items, NULL, 0,
	    err);
	if (rc != CEP_OK) {
		runner_emit_log(ctx->sink, "%s: round %lld: %s", ctx->fault_id,
		    (long long)s->round, err->msg);
		return rc;
	}
	size_t total = json_array_size(items);
	const char **names = calloc(total ? total : 1, sizeof(*names));
	size_t n = names != NULL ?
	    runner_podsel_running(items, NULL, names,
	        total < MAX_PODS ? total : MAX_PODS, NULL) :
	    0;
	size_t want = cep_podtarget_quota(s->count, s->percent, n);
	int deleted = 0;
	if (want > s->max && (want = s->max) > 0)
		runner_emit_log(ctx->sink,
		    "%s: round %lld: capped at %u "
		    "pods (policy.kubernetes.maxTargets)",
		    ctx->fault_id, (long long)s->round, s->max);
	if (want == 0)
		runner_emit_log(ctx->sink,
		    "%s: round %lld: no Running pod "
		    "matches %s in %s",
		    ctx->fault_id, (long long)s->round, s->selector, s->ns);
	for (size_t i = 0; i < want && rc == CEP_OK; i++)
		rc = pd_delete(s, names[i], ctx, &deleted, err);
	if (want > 0)
		runner_emit_log(ctx->sink,
		    "%s: round %lld: deleted %d of %zu "
		    "Running pods matching %s",
		    ctx->fault_id, (long long)s->round, deleted, n,
		    s->selector);
	free(names);
	json_decref(items);
	return rc;
}

static int pd_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	pd_state *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "pod-delete: no memory");
	int rc = pd_open(it, s, err);
	if (rc == CEP_OK)
		rc = pd_round(s, ctx, err);
	if (rc != CEP_OK) {
		free(s);
		return rc;
	}
	s->next = cep_clock_mono_ms() + s->interval_ms;
	*state = s;
	return CEP_OK;
}

static int64_t pd_next_tick(void *state)
{
	pd_state *s = state;
	return s->interval_ms > 0 ? s->next : INT64_MAX;
}

static void pd_tick(void *state, const cep_fault_ctx *ctx)
{
	pd_state *s = state;
	cep_err err = {0};
	int rc = pd_round(s, ctx, &err); /* a failed round is logged */
	if (pd_fatal(rc) && ctx->fail != NULL) {
		char why[CEP_ERR_MSG_MAX + 64];
		snprintf(why, sizeof(why), "fault %s: round %lld: %s",
		    ctx->fault_id, (long long)s->round, err.msg);
		ctx->fail(ctx->fail_arg, why);
		s->interval_ms = 0; /* no more rounds */
		return;
	}
	s->next += s->interval_ms;
	if (s->next < cep_clock_mono_ms())
		s->next = cep_clock_mono_ms() + s->interval_ms;
}

static int pd_revert(void *state, cep_err *err)
{
	(void)err;
	free(state);
	return CEP_OK;
}

const cep_fault_ops runner_fault_kube_pod_delete = {
    .type = "pod-delete",
    .mechanism = "k8s-pod-delete",
    .describe = pd_describe,
    .inject = pd_inject,
    .next_tick = pd_next_tick,
    .tick = pd_tick,
    .revert = pd_revert,
};
