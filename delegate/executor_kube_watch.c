/*
 * executor_kube_watch.c - the watcher's second half: following a runner
 * Pod to its end (executor_kube.c creates it). A watch in slices, each
 * re-checked with a GET, so a missed event or a dropped stream costs at
 * most one slice; the launch timeout ends a Pod that never runs.
 */
#define _GNU_SOURCE
#include "executor_kube_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_pod.h"
#include "log.h"
#include "clock.h"

typedef struct wctx {
	krun *kr;
	bool done;
	char waiting[256]; /* why a Pending pod waits */
} wctx;

static json_t *first_container_state(json_t *pod)
{
	json_t *cs = json_object_get(json_object_get(pod, "status"),
	    "containerStatuses");
	return json_object_get(json_array_get(cs, 0), "state");
}

/* "pod Succeeded (exit 0)", "pod Failed: DeadlineExceeded: ...",
 * "pod Failed (exit 3: Error)". */
static void describe_end(json_t *pod, const char *phase, char *buf, size_t len)
{
	const char *reason = delegate_kx_obj_str(pod, "status", "reason");
	const char *msg = delegate_kx_obj_str(pod, "status", "message");
	json_t *term = json_object_get(first_container_state(pod),
	    "terminated");
	json_t *code = json_object_get(term, "exitCode");
	const char *treason = json_string_value(
	    json_object_get(term, "reason"));
	if (reason != NULL)
		snprintf(buf, len, "pod %s: %s%s%.300s", phase, reason,
		    msg ? ": " : "", msg ? msg : "");
	else if (json_is_integer(code))
		snprintf(buf, len, "pod %s (exit %lld%s%.100s)", phase,
		    (long long)json_integer_value(code), treason ? ": " : "",
		    treason ? treason : "");
	else
		snprintf(buf, len, "pod %s", phase);
}

static void note_waiting(wctx *w, json_t *pod)
{
	json_t *wt = json_object_get(first_container_state(pod), "waiting");
	const char *r = json_string_value(json_object_get(wt, "reason"));
	const char *m = json_string_value(json_object_get(wt, "message"));
	if (r != NULL)
		snprintf(w->waiting, sizeof(w->waiting), "%.60s%s%.180s", r,
		    m ? ": " : "", m ? m : "");
}

static int on_pod(void *arg, const char *type, json_t *obj)
{
	wctx *w = arg;
	krun *kr = w->kr;
	/* an adopted run's placement: the launch that knew it was an
	 * earlier delegate's, and a cleanup runner needs it */
	char node[sizeof(kr->node)];
	unsigned caps;
	bool cg;
	if (kr->adopted && kr->node[0] == '\0' &&
	    delegate_kpod_placement(obj, node, sizeof(node), &caps, &cg)) {
		pthread_mutex_lock(&kr->kx->mu);
		snprintf(kr->node, sizeof(kr->node), "%s", node);
		kr->pods.caps = caps;
		kr->pods.cgroupfs = cg;
		pthread_mutex_unlock(&kr->kx->mu);
		cep_log_conn(CEP_LOG_INFO, kr->id.s, kr->conn,
		    "adopted runner pod %s/%s runs on node %s "
		    "(pod targets): a cleanup runner would go there",
		    kr->ns, kr->pod, node);
	}
	if (strcmp(type, "DELETED") == 0) {
		delegate_kx_ended(kr, "pod deleted");
		w->done = true;
		return 1;
	}
	const char *phase = delegate_kx_obj_str(obj, "status", "phase");
	if (phase == NULL)
		phase = "Pending";
	if (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0) {
		char what[512];
		describe_end(obj, phase, what, sizeof(what));
		delegate_kx_ended(kr, "%s", what);
		w->done = true;
		return 1;
	}
	if (strcmp(phase, "Running") == 0) {
		pthread_mutex_lock(&kr->kx->mu);
		bool first = kr->phase == KP_LAUNCHING;
		if (first)
			kr->phase = KP_RUNNING;
		pthread_mutex_unlock(&kr->kx->mu);
		if (first)
			cep_log_conn(CEP_LOG_INFO, kr->id.s, kr->conn,
			    "runner pod %s/%s running", kr->ns, kr->pod);
	} else {
		note_waiting(w, obj);
	}
	return delegate_kx_stop_asked(kr) ? 1 : 0;
}

/* Does the pod still exist? false only on a definite 404. */
static bool pod_exists(krun *kr, cep_kube *k)
{
	cep_err err = {0};
	json_t *o = NULL;
	int rv = cep_kube_get(k, &cep_kube_pods, kr->ns, kr->pod, &o, &err);
	json_decref(o);
	return rv != CEP_NOT_FOUND;
}

static bool running(krun *kr)
{
	pthread_mutex_lock(&kr->kx->mu);
	bool r = kr->phase == KP_RUNNING;
	pthread_mutex_unlock(&kr->kx->mu);
	return r;
}

/* One slice of watching; true when the watcher is finished. */
static bool watch_slice(krun *kr, cep_kube *k, wctx *w, int64_t launch_by)
{
	char sel[128];
	snprintf(sel, sizeof(sel), "metadata.name=%s", kr->pod);
	cep_kube_list_opts o = {.field_selector = sel};
	int64_t slice = WATCH_SLICE_MS;
	if (!running(kr) && launch_by - cep_clock_mono_ms() < slice)
		slice = launch_by - cep_clock_mono_ms();
	cep_err err = {0};
	int rv = slice <= 0 ? CEP_DEADLINE_EXCEEDED :
	                      cep_kube_watch(k,
	                          &(cep_kube_watch_spec){.res = &cep_kube_pods,
	                              .ns = kr->ns,
	                              .list = &o,
	                              .timeout_ms = slice,
	                              .stop = &kr->stop,
	                              .fn = on_pod,
	                              .arg = w},
	                          &err);
	if (w->done || delegate_kx_stop_asked(kr) || rv == CEP_CANCELLED)
		return true;
	if (rv == CEP_OK || rv == CEP_DEADLINE_EXCEEDED) {
		if (!running(kr) && cep_clock_mono_ms() >= launch_by) {
			/* Name the pod and why it waits (ImagePullBackOff...):
			 * the operator's first question. */
			delegate_kx_ended(kr,
			    "launch failed: pod %s/%s not running after "
			    "%llds%s%s",
			    kr->ns, kr->pod,
			    (long long)kr->kc->c->launch_timeout_ms / 1000,
			    w->waiting[0] ? ": " : "", w->waiting);
			return true;
		}
		if (!pod_exists(kr, k)) {
			delegate_kx_ended(kr, "pod gone (deleted outside cep)");
			return true;
		}
		return false;
	}
	if (rv != CEP_PERMISSION_DENIED && rv != CEP_UNAUTHENTICATED &&
	    rv != CEP_INVALID_ARGUMENT && rv != CEP_NOT_FOUND &&
	    rv != CEP_FAILED_PRECONDITION) {
		/* The runner talks to the relay, not to the API server: an
		 * outage of the API (5xx, 429, transport) ends nothing; watch
		 * again. A refusal (401, 403, 400) ends the run. */
		cep_log_conn(CEP_LOG_WARN, kr->id.s, kr->conn,
		    "watching pod %s/%s: %s; retrying", kr->ns, kr->pod,
		    err.msg);
		cep_clock_sleep_ms(RETRY_PAUSE_MS);
		return false;
	}
	delegate_kx_ended(kr, "watching the pod failed: %s", err.msg);
	return true;
}

void delegate_kx_watch_pod(krun *kr, cep_kube *k)
{
	wctx w = {.kr = kr};
	int64_t launch_by = cep_clock_mono_ms() + kr->kc->c->launch_timeout_ms;
	if (kr->adopted) {
		if (!pod_exists(kr, k)) {
			delegate_kx_ended(kr, "pod gone (delegate restarted)");
			return;
		}
		launch_by = INT64_MAX / 2; /* it was launched before */
	}
	while (!watch_slice(kr, k, &w, launch_by))
		;
}
