/*
 * executor_kube_watch.c - the watcher's second half: following a runner
 * Pod to its end (executor_kube.c creates it).
 *
 * One watch per connector and namespace (a "hub"), shared by the runs
 * there: a label selector for this appliance's runner pods, events handed
 * to the run whose pod they name. A watch per run cost each launch a LIST,
 * a stream and a connection of its own (an HTTP/1.1 stream holds its
 * connection for its life). A run joins its hub before it creates its Pod,
 * so no event of that Pod is missed; the hub's watch resumes and relists
 * on its own, and each run still GETs its pod every WATCH_SLICE_MS (a
 * missed event costs at most that). A hub whose runs have all left ends
 * at the end of its slice. The launch timeout ends a Pod that never runs.
 *
 * A run's thread sleeps until an event for its pod, its stop, its launch
 * timeout or its next GET: a thread per run woken by a timer would cost
 * each launch a wakeup per tick.
 *
 * Locking: hub->mu guards its run list and each joined run's wdone,
 * waiting and wcv; it is taken before kx->mu, never after. kc->mu guards the
 * connector's hub list and is taken before hub->mu.
 */
#define _GNU_SOURCE
#include "executor_kube_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_pod.h"
#include "log.h"
#include "clock.h"

struct khub {
	kube_exec *kx;
	kconn *kc;
	cep_kube *k;
	char ns[64];
	pthread_mutex_t mu;
	krun *runs; /* joined, through krun.hub_next */
	size_t nruns;
	bool running; /* the thread runs (or is starting) */
	bool th_started;
	pthread_t th;
	atomic_bool stop; /* executor freed */
	struct khub *next;
};

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

/* hub->mu held. */
static void note_waiting(krun *kr, json_t *pod)
{
	json_t *wt = json_object_get(first_container_state(pod), "waiting");
	const char *r = json_string_value(json_object_get(wt, "reason"));
	const char *m = json_string_value(json_object_get(wt, "message"));
	if (r != NULL)
		snprintf(kr->waiting, sizeof(kr->waiting), "%.60s%s%.180s", r,
		    m ? ": " : "", m ? m : "");
}

/* The runner's node when the launch did not know it: an adopted run's
 * (an earlier delegate launched it) or one the scheduler placed (a hog's
 * nodeSelector). A cleanup runner needs it. */
static void note_placement(krun *kr, json_t *obj)
{
	char node[sizeof(kr->node)];
	unsigned caps;
	bool cg;
	if ((!kr->adopted && kr->pods.node_sel[0] == '\0') ||
	    kr->node[0] != '\0' ||
	    !delegate_kpod_placement(obj, node, sizeof(node), &caps, &cg))
		return;
	pthread_mutex_lock(&kr->kx->mu);
	snprintf(kr->node, sizeof(kr->node), "%s", node);
	kr->pods.caps = caps;
	kr->pods.cgroupfs = cg;
	pthread_mutex_unlock(&kr->kx->mu);
	cep_log_conn(CEP_LOG_INFO, kr->id.s, kr->conn,
	    "%s runner pod %s/%s runs on node %s "
	    "(node-level faults): a cleanup runner would go there",
	    kr->adopted ? "adopted" : "scheduled", kr->ns, kr->pod, node);
}

/* hub->mu held. One state of the run's pod; true when it has ended. */
static bool on_pod(krun *kr, const char *type, json_t *obj)
{
	note_placement(kr, obj);
	if (strcmp(type, "DELETED") == 0) {
		delegate_kx_ended(kr, "pod deleted");
		return true;
	}
	const char *phase = delegate_kx_obj_str(obj, "status", "phase");
	if (phase == NULL)
		phase = "Pending";
	if (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0) {
		char what[512];
		describe_end(obj, phase, what, sizeof(what));
		delegate_kx_ended(kr, "%s", what);
		return true;
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
		note_waiting(kr, obj);
	}
	return false;
}

/* hub->mu held. */
static void deliver(khub *h, krun *kr, const char *type, json_t *obj)
{
	(void)h;
	if (!kr->wdone && on_pod(kr, type, obj)) {
		kr->wdone = true;
		pthread_cond_signal(&kr->wcv);
	}
}

/* The hub's watch callback: the event goes to the run its pod names. */
static int hub_on_pod(void *arg, const char *type, json_t *obj)
{
	khub *h = arg;
	const char *name = delegate_kx_obj_str(obj, "metadata", "name");
	pthread_mutex_lock(&h->mu);
	for (krun *kr = h->runs; name != NULL && kr != NULL; kr = kr->hub_next)
		if (strcmp(kr->pod, name) == 0) {
			deliver(h, kr, type, obj);
			break;
		}
	pthread_mutex_unlock(&h->mu);
	return atomic_load(&h->stop) ? 1 : 0;
}

/* A refusal (401, 403, 400...): it ends every run that waits on it. */
static void hub_refused(khub *h, const char *msg)
{
	pthread_mutex_lock(&h->mu);
	for (krun *kr = h->runs; kr != NULL; kr = kr->hub_next)
		if (!kr->wdone) {
			delegate_kx_ended(kr, "watching the pod failed: %s",
			    msg);
			kr->wdone = true;
			pthread_cond_signal(&kr->wcv);
		}
	pthread_mutex_unlock(&h->mu);
}

static bool refusal(int rv)
{
	return rv == CEP_PERMISSION_DENIED || rv == CEP_UNAUTHENTICATED ||
	    rv == CEP_INVALID_ARGUMENT || rv == CEP_NOT_FOUND ||
	    rv == CEP_FAILED_PRECONDITION;
}

/* Ends the thread when no run is joined (at a slice's end). */
static bool hub_idle(khub *h)
{
	pthread_mutex_lock(&h->mu);
	bool idle = h->nruns == 0 || atomic_load(&h->stop);
	if (idle)
		h->running = false;
	pthread_mutex_unlock(&h->mu);
	return idle;
}

static void *hub_main(void *arg)
{
	khub *h = arg;
	char sel[192];
	snprintf(sel, sizeof(sel), "%s=cep,%s=%s", CEP_KPOD_MANAGED_BY,
	    CEP_KPOD_APPLIANCE, h->kx->appliance);
	cep_kube_list_opts o = {.label_selector = sel};
	cep_kube_watch_spec ws = {.res = &cep_kube_pods,
	    .ns = h->ns,
	    .list = &o,
	    .timeout_ms = WATCH_SLICE_MS,
	    .stop = &h->stop,
	    .fn = hub_on_pod,
	    .arg = h};
	while (!hub_idle(h)) {
		cep_err err = {0};
		int rv = cep_kube_watch(h->k, &ws, &err);
		if (rv == CEP_OK || rv == CEP_DEADLINE_EXCEEDED ||
		    rv == CEP_CANCELLED)
			continue;
		if (refusal(rv))
			hub_refused(h, err.msg);
		else /* an outage of the API ends nothing: runners talk to
		      * the relay, not to the API server */
			cep_log_conn(CEP_LOG_WARN, NULL, h->kc->c->name,
			    "watching runner pods in %s: %s; retrying", h->ns,
			    err.msg);
		cep_clock_sleep_ms(RETRY_PAUSE_MS);
	}
	return NULL;
}

/* kc->mu held. */
static khub *hub_find(krun *kr, cep_kube *k)
{
	for (khub *h = kr->kc->hubs; h != NULL; h = h->next)
		if (strcmp(h->ns, kr->ns) == 0)
			return h;
	khub *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	h->kx = kr->kx;
	h->kc = kr->kc;
	h->k = k;
	snprintf(h->ns, sizeof(h->ns), "%s", kr->ns);
	pthread_mutex_init(&h->mu, NULL);
	atomic_init(&h->stop, false);
	h->next = kr->kc->hubs;
	kr->kc->hubs = h;
	return h;
}

/* h->mu held: (re)starts the thread unless it runs. A thread that saw
 * no run has set running false and returns without a lock: the join is
 * short. */
static int hub_start(khub *h, cep_err *err)
{
	if (h->running)
		return CEP_OK;
	if (h->th_started)
		pthread_join(h->th, NULL);
	h->th_started = false;
	int rv = pthread_create(&h->th, NULL, hub_main, h);
	if (rv != 0)
		return cep_err_errno(err, rv, "starting the pod watch thread");
	h->th_started = h->running = true;
	return CEP_OK;
}

int delegate_kx_watch_join(krun *kr, cep_kube *k, cep_err *err)
{
	pthread_mutex_lock(&kr->kc->mu);
	khub *h = hub_find(kr, k);
	int rv = h == NULL ?
	    cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory") :
	    CEP_OK;
	if (h != NULL) {
		pthread_mutex_lock(&h->mu);
		rv = hub_start(h, err);
		if (rv == CEP_OK) {
			kr->hub_next = h->runs;
			h->runs = kr;
			h->nruns++;
			atomic_store(&kr->hub, h);
		}
		pthread_mutex_unlock(&h->mu);
	}
	pthread_mutex_unlock(&kr->kc->mu);
	return rv;
}

/* kr->hub stays set: a wake after leaving finds a hub (they live as
 * long as the executor) and no waiter. */
void delegate_kx_watch_leave(krun *kr)
{
	khub *h = atomic_load(&kr->hub);
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	for (krun **pp = &h->runs; *pp != NULL; pp = &(*pp)->hub_next)
		if (*pp == kr) {
			*pp = kr->hub_next;
			h->nruns--;
			break;
		}
	pthread_mutex_unlock(&h->mu);
}

void delegate_kx_watch_wake(krun *kr)
{
	khub *h = atomic_load(&kr->hub);
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	pthread_cond_signal(&kr->wcv);
	pthread_mutex_unlock(&h->mu);
}

void delegate_kx_hubs_free(kconn *kc)
{
	while (kc->hubs != NULL) {
		khub *h = kc->hubs;
		kc->hubs = h->next;
		atomic_store(&h->stop, true);
		if (h->th_started)
			pthread_join(h->th, NULL);
		pthread_mutex_destroy(&h->mu);
		free(h);
	}
}

/* Does the pod still exist? false only on a definite 404. Its state is
 * fed to the run too: an adopted run's hub may have seen it before the
 * run joined, and a missed event costs no more than this GET. */
static bool pod_exists(krun *kr, cep_kube *k)
{
	cep_err err = {0};
	json_t *o = NULL;
	int rv = cep_kube_get(k, &cep_kube_pods, kr->ns, kr->pod, &o, &err);
	khub *h = atomic_load(&kr->hub);
	if (rv == CEP_OK) {
		pthread_mutex_lock(&h->mu);
		deliver(h, kr, "ADDED", o);
		pthread_mutex_unlock(&h->mu);
	}
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

/* Until the pod ended, the run is stopped (true), or until (false). */
static bool wait_event(krun *kr, int64_t until, char *waiting, size_t len)
{
	khub *h = atomic_load(&kr->hub);
	pthread_mutex_lock(&h->mu);
	int64_t left;
	while (!kr->wdone && !delegate_kx_stop_asked(kr) &&
	    (left = until - cep_clock_mono_ms()) > 0)
		cep_clock_cond_wait_ms(&kr->wcv, &h->mu, left);
	bool done = kr->wdone;
	snprintf(waiting, len, "%s", kr->waiting);
	pthread_mutex_unlock(&h->mu);
	return done || delegate_kx_stop_asked(kr);
}

void delegate_kx_watch_pod(krun *kr, cep_kube *k)
{
	int64_t launch_by = cep_clock_mono_ms() + kr->kc->c->launch_timeout_ms;
	if (kr->adopted) {
		if (!pod_exists(kr, k)) {
			delegate_kx_ended(kr, "pod gone (delegate restarted)");
			return;
		}
		launch_by = INT64_MAX / 2; /* it was launched before */
	}
	int64_t check = cep_clock_mono_ms() + WATCH_SLICE_MS;
	char waiting[sizeof(kr->waiting)];
	for (;;) {
		bool r = running(kr);
		int64_t until = r || check < launch_by ? check : launch_by;
		if (wait_event(kr, until, waiting, sizeof(waiting)))
			return;
		int64_t now = cep_clock_mono_ms();
		if (!r && !running(kr) && now >= launch_by) {
			/* Name the pod and why it waits (ImagePullBackOff...):
			 * the operator's first question. */
			delegate_kx_ended(kr,
			    "launch failed: pod %s/%s not running after "
			    "%llds%s%s",
			    kr->ns, kr->pod,
			    (long long)kr->kc->c->launch_timeout_ms / 1000,
			    waiting[0] ? ": " : "", waiting);
			return;
		}
		if (now < check)
			continue;
		if (!pod_exists(kr, k)) {
			delegate_kx_ended(kr, "pod gone (deleted outside cep)");
			return;
		}
		check = now + WATCH_SLICE_MS;
	}
}
