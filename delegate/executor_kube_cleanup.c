/*
 * executor_kube_cleanup.c - the cleanup runner: undoing node-level faults
 * (nftables tables, qdiscs, fill files in a pod target's namespaces) that
 * a dead runner left on its node. The delegate cannot reach that node's
 * namespaces from the appliance, so it launches `cep-runner --cleanup`
 * in a Pod placed exactly as the runner was (nodeName, hostPID, the same
 * capabilities), handing it the fault records in a Secret owned by the
 * Pod; the Pod undoes them with lib/undo/undo.c and reports, per fault, in
 * its termination message. Only what it reports undone counts as undone.
 *
 * One thread per cleanup; the monitor polls (delegate_kx_node_undo answers
 * CEP_EXEC_PENDING meanwhile), so a slow cluster stalls nothing else.
 * The Pod and Secret are deleted and confirmed gone before the answer.
 */
#define _GNU_SOURCE
#include "executor_kube_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_pod.h"
#include "log.h"
#include "clock.h"
#include "run_id.h"

#define POLL_MS 500
#define CLEANUP_DEADLINE_S 300 /* the cluster ends a stuck one itself */

enum kcstate { KC_STASHED, KC_RUNNING, KC_DONE };

struct kclean {
	kube_exec *kx;
	cep_run_id id;
	char ns[64], name[64], node[254];
	kconn *kc;
	unsigned caps;
	bool cgroupfs;
	char *recs; /* the records (JSON) */
	pthread_t th;
	enum kcstate state; /* kx->mu */
	int rv;
	char msg[512];
	char *undone; /* JSON array of fault ids */
	struct kclean *next;
};

void delegate_kx_clean_stash(kube_exec *kx, const krun *kr)
{
	if (kr->node[0] == '\0' || kr->kc == NULL)
		return;
	kclean *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return; /* node_undo then says the placement is unknown */
	c->kx = kx;
	c->kc = kr->kc;
	c->id = kr->id;
	snprintf(c->ns, sizeof(c->ns), "%s", kr->ns);
	snprintf(c->node, sizeof(c->node), "%s", kr->node);
	delegate_kpod_cleanup_name(kr->id.s, c->name, sizeof(c->name));
	c->caps = kr->pods.caps;
	c->cgroupfs = kr->pods.cgroupfs;
	c->next = kx->cleans;
	kx->cleans = c;
}

static int create(kclean *c, cep_kube *k, cep_err *err)
{
	cep_kpod p = {.run_id = c->id.s,
	    .name = c->name,
	    .ns = c->ns,
	    .appliance = c->kx->appliance,
	    .relay = "",
	    .deadline_s = CLEANUP_DEADLINE_S,
	    .node = c->node,
	    .caps = c->caps,
	    .cgroupfs = c->cgroupfs,
	    .cleanup = true};
	json_t *pod = delegate_kpod_pod(c->kc->c, &p), *created = NULL;
	if (pod == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "building the "
		    "cleanup pod");
	int rv = cep_kube_create(k, &cep_kube_pods, c->ns, pod, &created, err);
	json_decref(pod);
	if (rv != CEP_OK)
		return rv;
	const char *uid = json_string_value(
	    json_object_get(json_object_get(created, "metadata"), "uid"));
	json_t *sec = uid ?
	    delegate_kpod_cleanup_secret(c->kc->c, &p, uid, c->recs) :
	    NULL;
	json_decref(created);
	if (sec == NULL)
		return cep_err_set(err, CEP_INTERNAL,
		    "building the cleanup "
		    "secret");
	rv = cep_kube_create(k, &cep_kube_secrets, c->ns, sec, NULL, err);
	json_decref(sec);
	return rv;
}

/* Waits for the pod's end; *msg gets its termination message. */
static int wait_end(kclean *c, cep_kube *k, char **msg, cep_err *err)
{
	int64_t end = cep_clock_mono_ms() + c->kx->undo_limit_ms;
	char waiting[256] = "";
	while (cep_clock_mono_ms() < end && !atomic_load(&c->kx->stopping)) {
		json_t *pod = NULL;
		cep_err e = {0};
		if (cep_kube_get(k, &cep_kube_pods, c->ns, c->name, &pod, &e) ==
		    CEP_OK) {
			json_t *st = json_object_get(pod, "status");
			const char *ph = json_string_value(
			    json_object_get(st, "phase"));
			json_t *cs = json_array_get(json_object_get(st,
			                                "containerStatuses"),
			    0);
			json_t *state = json_object_get(cs, "state");
			const char *why = json_string_value(
			    json_object_get(json_object_get(state, "waiting"),
			        "reason"));
			if (why != NULL)
				snprintf(waiting, sizeof(waiting), ": %s", why);
			if (ph != NULL &&
			    (strcmp(ph, "Succeeded") == 0 ||
			        strcmp(ph, "Failed") == 0)) {
				const char *m = json_string_value(
				    json_object_get(json_object_get(state,
				                        "terminated"),
				        "message"));
				*msg = strdup(m ? m : "");
				json_decref(pod);
				return CEP_OK;
			}
		}
		json_decref(pod);
		cep_clock_sleep_ms(POLL_MS);
	}
	return cep_err_set(err, CEP_DEADLINE_EXCEEDED,
	    "cleanup runner %s/%s "
	    "on node %s did not finish within %llds%s",
	    c->ns, c->name, c->node, (long long)(c->kx->undo_limit_ms / 1000),
	    waiting);
}

/* Deletes pod and secret and confirms both gone (bounded). */
static int remove_objects(kclean *c, cep_kube *k, cep_err *err)
{
	const cep_kube_res *res[] = {&cep_kube_pods, &cep_kube_secrets};
	int64_t end = cep_clock_mono_ms() + c->kx->undo_limit_ms;
	for (;;) {
		int left = 0;
		for (size_t i = 0; i < 2; i++) {
			cep_kube_delete_opts o = {.grace_seconds = 0,
			    .propagation = "Background"};
			cep_err e = {0};
			(void)cep_kube_delete(k, res[i], c->ns, c->name, &o,
			    &e);
			json_t *obj = NULL;
			left += cep_kube_get(k, res[i], c->ns, c->name, &obj,
			            &e) != CEP_NOT_FOUND;
			json_decref(obj);
		}
		if (left == 0)
			return CEP_OK;
		if (cep_clock_mono_ms() >= end || atomic_load(&c->kx->stopping))
			return cep_err_set(err, CEP_UNAVAILABLE,
			    "cleanup pod and "
			    "secret %s/%s still present",
			    c->ns, c->name);
		cep_clock_sleep_ms(POLL_MS);
	}
}

/* The report: undone ids kept; failures named in err. */
static int read_report(kclean *c, const char *msg, cep_err *err)
{
	json_t *rep = json_loads(msg, 0, NULL);
	json_t *undone = json_object_get(rep, "undone");
	json_t *failed = json_object_get(rep, "failed");
	if (!json_is_array(undone)) {
		json_decref(rep);
		return cep_err_set(err, CEP_DATA_LOSS,
		    "cleanup runner %s/%s on "
		    "node %s gave no report (termination message \"%.200s\")",
		    c->ns, c->name, c->node, msg);
	}
	c->undone = json_dumps(undone, JSON_COMPACT);
	int rv = CEP_OK;
	const char *key;
	json_t *v;
	json_object_foreach(failed, key, v)
	{
		rv = cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "cleanup runner on "
		    "node %s: fault %.64s: %.300s",
		    c->node, key,
		    json_is_string(v) ? json_string_value(v) : "failed");
		break;
	}
	json_decref(rep);
	return rv;
}

static void *clean_main(void *arg)
{
	kclean *c = arg;
	cep_err err = {0}, e2 = {0};
	cep_kube *k = NULL;
	char *msg = NULL;
	int rv = delegate_kx_client(c->kc, &k, &err);
	if (rv == CEP_OK) {
		cep_log_conn(CEP_LOG_INFO, c->id.s, c->kc->c->name,
		    "cleanup runner %s/%s launching on node %s", c->ns, c->name,
		    c->node);
		rv = create(c, k, &err);
		if (rv == CEP_OK)
			rv = wait_end(c, k, &msg, &err);
		if (rv == CEP_OK)
			rv = read_report(c, msg, &err);
		/* whatever happened, nothing of it may stay */
		if (remove_objects(c, k, &e2) != CEP_OK && rv == CEP_OK) {
			rv = e2.code;
			err = e2;
		}
	}
	free(msg);
	pthread_mutex_lock(&c->kx->mu);
	c->rv = rv;
	snprintf(c->msg, sizeof(c->msg), "%s", err.msg);
	c->state = KC_DONE;
	pthread_mutex_unlock(&c->kx->mu);
	return NULL;
}

static void kclean_free(kclean *c)
{
	free(c->recs);
	free(c->undone);
	free(c);
}

static void drop(kube_exec *kx, kclean *c)
{
	for (kclean **pp = &kx->cleans; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			return;
		}
}

static bool no_records(const char *recs)
{
	json_t *j = json_loads(recs ? recs : "[]", 0, NULL);
	bool none = json_is_array(j) && json_array_size(j) == 0;
	json_decref(j);
	return none;
}

enum cep_exec_state delegate_kx_node_undo(void *impl, const char *run_id,
    const char *recs_json, char **undone, cep_err *err)
{
	kube_exec *kx = impl;
	*undone = NULL;
	bool none = no_records(recs_json);
	pthread_mutex_lock(&kx->mu);
	kclean *c = kx->cleans;
	while (c != NULL && strcmp(c->id.s, run_id) != 0)
		c = c->next;
	if (c == NULL || (none && c->state == KC_STASHED)) {
		if (c != NULL)
			drop(kx, c);
		pthread_mutex_unlock(&kx->mu);
		if (c != NULL)
			kclean_free(c);
		if (none)
			return CEP_EXEC_DONE;
		cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "the node the runner "
		    "ran on is unknown (the delegate restarted since it "
		    "launched it): node-level faults cannot be undone by a "
		    "cleanup runner");
		return CEP_EXEC_FAILED;
	}
	if (c->state == KC_STASHED) {
		c->recs = strdup(recs_json);
		if (c->recs != NULL &&
		    pthread_create(&c->th, NULL, clean_main, c) == 0) {
			c->state = KC_RUNNING;
			pthread_mutex_unlock(&kx->mu);
			return CEP_EXEC_PENDING;
		}
		drop(kx, c);
		pthread_mutex_unlock(&kx->mu);
		kclean_free(c);
		cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "starting the cleanup "
		    "runner thread");
		return CEP_EXEC_FAILED;
	}
	if (c->state == KC_RUNNING) {
		pthread_mutex_unlock(&kx->mu);
		return CEP_EXEC_PENDING;
	}
	drop(kx, c);
	pthread_mutex_unlock(&kx->mu);
	pthread_join(c->th, NULL);
	int rv = c->rv;
	if (rv != CEP_OK)
		cep_err_set(err, rv, "%s", c->msg);
	*undone = c->undone;
	c->undone = NULL;
	kclean_free(c);
	return delegate_exec_state_of(rv);
}

void delegate_kx_clean_free_all(kube_exec *kx)
{
	while (kx->cleans != NULL) {
		kclean *c = kx->cleans;
		kx->cleans = c->next;
		if (c->state != KC_STASHED)
			pthread_join(c->th, NULL);
		kclean_free(c);
	}
}
