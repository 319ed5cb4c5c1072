/*
 * executor_kube_op.c - the kubernetes executor's second per-run thread
 * (the "op"): kill deletes the runner Pod; undo deletes Pod and Secret
 * and confirms both gone (GET -> 404), again every second up to the
 * bound, after any create still in flight has landed - so no object
 * appears after the cleanup. Split from executor_kube.c, whose ops start
 * it (delegate_kx_start_op) and read its result under kx->mu.
 */
#define _GNU_SOURCE
#include "executor_kube_int.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "clock.h"

static int delete_one(cep_kube *k, const cep_kube_res *res, krun *kr,
    cep_err *err)
{
	cep_kube_delete_opts o = {.grace_seconds = 0,
	    .propagation = "Background"};
	int rv = cep_kube_delete(k, res, kr->ns, kr->pod, &o, err);
	return rv == CEP_NOT_FOUND ? CEP_OK : rv;
}

enum kx_presence { KX_GONE, KX_PRESENT, KX_UNKNOWN /* err says why */ };

static enum kx_presence gone(cep_kube *k, const cep_kube_res *res, krun *kr,
    cep_err *err)
{
	json_t *o = NULL;
	int rv = cep_kube_get(k, res, kr->ns, kr->pod, &o, err);
	json_decref(o);
	return rv == CEP_NOT_FOUND ? KX_GONE :
	    rv == CEP_OK           ? KX_PRESENT :
	                             KX_UNKNOWN;
}

/* Delete both, then confirm both gone; again every second up to the
 * bound. */
static int undo_objects(krun *kr, cep_kube *k, cep_err *err)
{
	int64_t end = cep_clock_mono_ms() + kr->kx->undo_limit_ms;
	for (;;) {
		cep_err e = {0}, e2 = {0};
		if (delete_one(k, &cep_kube_pods, kr, &e) == CEP_OK)
			e.msg[0] = '\0';
		if (delete_one(k, &cep_kube_secrets, kr, &e2) != CEP_OK &&
		    e.msg[0] == '\0')
			e = e2;
		enum kx_presence pp = gone(k, &cep_kube_pods, kr, &e2);
		enum kx_presence sp = gone(k, &cep_kube_secrets, kr, &e2);
		bool pg = pp == KX_GONE, sg = sp == KX_GONE;
		if (pg && sg)
			return CEP_OK;
		if (e.msg[0] == '\0' && (pp == KX_UNKNOWN || sp == KX_UNKNOWN))
			e = e2;
		bool out = cep_clock_mono_ms() >= end ||
		    atomic_load(&kr->kx->stopping);
		if (out)
			return cep_err_set(err, CEP_UNAVAILABLE,
			    "%s%s%s %s/%s still "
			    "present after %llds%s%.200s%s; the pod's "
			    "activeDeadlineSeconds still ends it",
			    pg ? "" : "pod", !pg && !sg ? " and " : "",
			    sg ? "" : "secret", kr->ns, kr->pod,
			    (long long)(kr->kx->undo_limit_ms / 1000),
			    e.msg[0] ? " (last error: " : "", e.msg,
			    e.msg[0] ? ")" : "");
		cep_clock_sleep_ms(RETRY_PAUSE_MS);
	}
}

static bool watcher_finished(krun *kr)
{
	pthread_mutex_lock(&kr->kx->mu);
	bool done = !kr->watcher_started || kr->watcher_done;
	pthread_mutex_unlock(&kr->kx->mu);
	return done;
}

static void *op_main(void *arg)
{
	krun *kr = arg;
	cep_err err = {0};
	cep_kube *k = NULL;
	int rv = CEP_OK;
	if (kr->kc == NULL)
		rv = cep_err_set(&err, CEP_FAILED_PRECONDITION,
		    "connector \"%s\" is not configured: pod and secret %s/%s "
		    "cannot be deleted",
		    kr->conn, kr->ns, kr->pod);
	else
		rv = delegate_kx_client(kr->kc, &k, &err);
	if (rv == CEP_OK && kr->op_kind == OP_KILL) {
		/* A create in flight would land after the delete: wait for it
		 * (it checks kill_asked before each step). */
		while (!atomic_load(&kr->launched) &&
		    !atomic_load(&kr->kx->stopping))
			cep_clock_sleep_ms(50);
		cep_kube_delete_opts o = {.grace_seconds = 0};
		rv = cep_kube_delete(k, &cep_kube_pods, kr->ns, kr->pod, &o,
		    &err);
		if (rv != CEP_OK && rv != CEP_NOT_FOUND)
			cep_log_conn(CEP_LOG_WARN, kr->id.s, kr->conn,
			    "killing the runner pod: %s", err.msg);
	} else if (rv == CEP_OK) {
		/* No object may appear after the cleanup: let a launch that is
		 * still creating finish (it was told to stop) first. */
		while (!watcher_finished(kr))
			cep_clock_sleep_ms(50);
		rv = undo_objects(kr, k, &err);
	}
	pthread_mutex_lock(&kr->kx->mu);
	if (kr->op_kind == OP_UNDO) {
		kr->undo_rv = rv;
		snprintf(kr->undo_msg, sizeof(kr->undo_msg), "%s", err.msg);
		kr->undo_done = true;
	}
	kr->op_done = true;
	pthread_mutex_unlock(&kr->kx->mu);
	return NULL;
}

bool delegate_kx_start_op(krun *kr, enum kop kind)
{
	if (kr->op_started && !kr->op_done)
		return false;
	if (kr->op_started) {
		pthread_join(kr->op, NULL);
		kr->op_started = false;
	}
	kr->op_kind = kind;
	kr->op_done = false;
	if (pthread_create(&kr->op, NULL, op_main, kr) != 0)
		return false;
	kr->op_started = true;
	return true;
}
