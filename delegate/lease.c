/*
 * lease.c - leader election through a coordination.k8s.io/v1 Lease, when
 * delegate.lease.name is set (the jump-cluster form, docs/jump-cluster.md):
 * several delegate replicas share one appliance name at the control plane,
 * and only the one holding the Lease takes tasks (cp_link.c asks
 * delegate_lease_may_take before every PollTasks and before taking what a poll
 * returned).
 *
 * One thread, as client-go's leader election does it:
 *   - read the Lease; if another identity holds it, it is ours to take only
 *     when its record (holder, renewTime) has not changed for its
 *     leaseDurationSeconds as measured by OUR monotonic clock since we
 *     first saw that record - never by comparing renewTime with our wall
 *     clock, so clock skew between nodes cannot make two holders;
 *   - take or renew it with an update that carries the resourceVersion we
 *     read: a 409 Conflict means another replica wrote first (we lost the
 *     race, nothing else happened);
 *   - every duration/3.
 * A holder may take tasks until (start of its last successful renewal) +
 * 9/10 of the duration, by its monotonic clock: whatever the renewing
 * thread is doing (a hung API server, a network partition), taking stops
 * then, before any other replica can see the Lease expire. Runs already started go on and
 * end (or revert) as usual; their tasks stay this appliance's at the plane.
 *
 * While it holds the Lease the delegate keeps RUN/lease-held: the Pod's
 * readiness probe, so the relay Service sends runners to the holder only.
 * A graceful stop gives the Lease up (holderIdentity cleared) so the other
 * replica takes over at once instead of after the duration.
 *
 * Every call to the API server is in lease_get / lease_put.
 */
#define _GNU_SOURCE
#include "delegate_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kube.h"
#include "log.h"
#include "clock.h"
#include "files.h"

struct cep_lease {
	cep_delegate *d;
	cep_kube *kube;
	char ns[64];
	char identity[256];
	char ready[CEP_PATH_MAX];
	int64_t duration_ms;
	pthread_t th;
	bool started;
	/* d->mu guards the rest */
	bool held;
	int64_t valid_until; /* mono ms: tasks may be taken before */
	char seen[512];      /* another holder's record, as last read */
	int64_t seen_mono;   /* when it last changed */
	char last_error[CEP_ERR_MSG_MAX];
};

static const cep_kube_res lease_res = {"coordination.k8s.io/v1", "leases",
    "Lease", true};

/* ---------------------------------------------------- the API server */

static int lease_get(struct cep_lease *l, json_t **obj, cep_err *err)
{
	int rv = cep_kube_get(l->kube, &lease_res, l->ns, l->d->cfg.lease.name,
	    obj, err);
	if (rv == CEP_NOT_FOUND)
		cep_err_wrap(err,
		    "the Lease is made by deploy/kubernetes/"
		    "20-lease.yaml (the delegate may only get and update it)");
	return rv;
}

/* An update with the resourceVersion that was read: CEP_ABORTED on 409. */
static int lease_put(struct cep_lease *l, json_t *obj, cep_err *err)
{
	char path[512], what[384];
	int rv = cep_kube_path(&lease_res, l->ns, l->d->cfg.lease.name, NULL,
	    path, sizeof(path), err);
	if (rv != CEP_OK)
		return rv;
	snprintf(what, sizeof(what), "update leases %s/%s", l->ns,
	    l->d->cfg.lease.name);
	cep_kube_req req = {.method = "PUT",
	    .path = path,
	    .body = obj,
	    .what = what};
	return cep_kube_request(l->kube, &req, NULL, NULL, err);
}

/* ------------------------------------------------------ the record */

/* metav1.MicroTime: RFC 3339 with microseconds, UTC. */
static void micro_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%06ldZ", ts.tv_nsec / 1000);
}

static const char *spec_str(json_t *spec, const char *key)
{
	const char *s = json_string_value(json_object_get(spec, key));
	return s ? s : "";
}

/* Another holder's Lease: has it gone unrenewed for its duration? */
static bool expired(struct cep_lease *l, json_t *spec, const char *holder)
{
	char rec[sizeof(l->seen)];
	snprintf(rec, sizeof(rec), "%s|%s", holder,
	    spec_str(spec, "renewTime"));
	json_int_t secs = json_integer_value(
	    json_object_get(spec, "leaseDurationSeconds"));
	int64_t dur = secs > 0 ? (int64_t)secs * 1000 : l->duration_ms;
	int64_t now = cep_clock_mono_ms();
	pthread_mutex_lock(&l->d->mu);
	if (strcmp(rec, l->seen) != 0) {
		snprintf(l->seen, sizeof(l->seen), "%s", rec);
		l->seen_mono = now;
	}
	bool gone = now - l->seen_mono >= dur;
	pthread_mutex_unlock(&l->d->mu);
	return gone;
}

/* Ours after the call (*mine), or another's; errors only when the API
 * server could not be asked. */
static int try_once(struct cep_lease *l, bool *mine, cep_err *err)
{
	json_t *obj = NULL;
	*mine = false;
	int rv = lease_get(l, &obj, err);
	if (rv != CEP_OK)
		return rv;
	json_t *spec = json_object_get(obj, "spec");
	if (!json_is_object(spec)) {
		spec = json_object();
		json_object_set_new(obj, "spec", spec);
	}
	char holder[256];
	snprintf(holder, sizeof(holder), "%s",
	    spec_str(spec, "holderIdentity"));
	bool ours = strcmp(holder, l->identity) == 0;
	if (!ours && holder[0] != '\0' && !expired(l, spec, holder)) {
		json_decref(obj);
		return CEP_OK;
	}
	char now[40];
	micro_time(now, sizeof(now));
	if (!ours) { /* a new holder: acquireTime, one more transition */
		json_int_t tr = json_integer_value(
		    json_object_get(spec, "leaseTransitions"));
		json_object_set_new(spec, "acquireTime", json_string(now));
		json_object_set_new(spec, "leaseTransitions",
		    json_integer(tr + 1));
	}
	json_object_set_new(spec, "holderIdentity", json_string(l->identity));
	json_object_set_new(spec, "leaseDurationSeconds",
	    json_integer((l->duration_ms + 999) / 1000));
	json_object_set_new(spec, "renewTime", json_string(now));
	rv = lease_put(l, obj, err);
	json_decref(obj);
	if (rv == CEP_ABORTED) { /* 409: another replica wrote first */
		cep_log_info(NULL, "lost the race for the Lease %s/%s", l->ns,
		    l->d->cfg.lease.name);
		return CEP_OK;
	}
	*mine = rv == CEP_OK;
	return rv;
}

/* ------------------------------------------------------ the thread */

/* d->mu held: until when this replica may take tasks - a tenth of the
 * duration before its Lease can run out, so that taking and the readiness
 * stop before another replica can see it expire, whatever the timing of
 * this thread's turns. */
static int64_t deadline(const struct cep_lease *l)
{
	return l->valid_until - l->duration_ms / 10;
}

/* d->mu held. */
static void set_held(struct cep_lease *l, bool held, const char *why)
{
	if (held == l->held)
		return;
	l->held = held;
	cep_err err = {0};
	if (held &&
	    cep_files_write(l->ready, l->identity, strlen(l->identity), 0644,
	        &err) != CEP_OK)
		cep_log_warn(NULL, "%s", err.msg);
	if (!held)
		unlink(l->ready);
	if (held)
		cep_log_info(NULL,
		    "holding the Lease %s/%s as %s: taking tasks", l->ns,
		    l->d->cfg.lease.name, l->identity);
	else
		cep_log_warn(NULL,
		    "not holding the Lease %s/%s: %s; taking no "
		    "tasks",
		    l->ns, l->d->cfg.lease.name, why);
}

/* d->mu held: the outcome of one turn. */
static void turn_done(struct cep_lease *l, int rv, bool mine, int64_t t0,
    const cep_err *err)
{
	if (rv == CEP_OK && mine) {
		l->valid_until = t0 + l->duration_ms;
		set_held(l, true, NULL);
	} else if (rv == CEP_OK) {
		l->valid_until = 0;
		set_held(l, false, "another replica holds it");
	} else if (cep_clock_mono_ms() >= deadline(l)) {
		set_held(l, false,
		    "it could not be renewed within its duration");
	}
	if (rv != CEP_OK && strcmp(err->msg, l->last_error) != 0)
		cep_log_warn(NULL, "Lease %s/%s: %s", l->ns,
		    l->d->cfg.lease.name, err->msg);
	snprintf(l->last_error, sizeof(l->last_error), "%s",
	    rv == CEP_OK ? "" : err->msg);
}

static void *lease_main(void *arg)
{
	struct cep_lease *l = arg;
	cep_delegate *d = l->d;
	int64_t period = l->duration_ms / 3;
	for (;;) {
		int64_t t0 = cep_clock_mono_ms();
		bool mine = false;
		cep_err err = {0};
		int rv = try_once(l, &mine, &err);
		pthread_mutex_lock(&d->mu);
		turn_done(l, rv, mine, t0, &err);
		int64_t next = t0 + period;
		if (l->held && deadline(l) < next) /* renewals failing */
			next = deadline(l);
		while (!d->stopping && cep_clock_mono_ms() < next)
			cep_clock_cond_wait_ms(&d->relay_cv, &d->mu,
			    next - cep_clock_mono_ms());
		bool stop = d->stopping;
		pthread_mutex_unlock(&d->mu);
		if (stop)
			break;
	}
	return NULL;
}

/* A graceful stop: the holder clears holderIdentity, so another replica
 * need not wait out the duration. Best effort. */
static void release(struct cep_lease *l)
{
	json_t *obj = NULL;
	cep_err err = {0};
	if (lease_get(l, &obj, &err) != CEP_OK)
		return;
	json_t *spec = json_object_get(obj, "spec");
	if (json_is_object(spec) &&
	    strcmp(spec_str(spec, "holderIdentity"), l->identity) == 0) {
		json_object_del(spec, "holderIdentity");
		if (lease_put(l, obj, &err) == CEP_OK)
			cep_log_info(NULL, "gave up the Lease %s/%s", l->ns,
			    l->d->cfg.lease.name);
	}
	json_decref(obj);
}

/* ------------------------------------------------------- public */

static int open_kube(struct cep_lease *l, cep_err *err)
{
	const char *kc = l->d->cfg.lease.kubeconfig;
	int rv = kc[0] != '\0' ?
	    cep_kube_from_kubeconfig(kc, NULL, false, &l->kube, err) :
	    cep_kube_in_cluster(&l->kube, err);
	if (rv != CEP_OK)
		return rv;
	/* one renewal never outlasts a third of the duration */
	cep_kube_set_timeout(l->kube,
	    l->duration_ms / 3 > 500 ? l->duration_ms / 3 : 500);
	cep_kube_set_retries(l->kube, 1);
	const char *ns = l->d->cfg.lease.ns[0] ? l->d->cfg.lease.ns :
	                                         cep_kube_namespace(l->kube);
	if (ns[0] == '\0')
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "delegate.lease."
		    "namespace is not set and the credentials name none");
	snprintf(l->ns, sizeof(l->ns), "%s", ns);
	return CEP_OK;
}

/* $CEP_LEASE_IDENTITY (the Pod's name in deploy/kubernetes), else
 * HOST_PID: two delegates on one host are two identities. */
static void identity(char *buf, size_t len)
{
	const char *env = getenv("CEP_LEASE_IDENTITY");
	if (env != NULL && env[0] != '\0' && strlen(env) < len) {
		snprintf(buf, len, "%s", env);
		return;
	}
	char host[128] = "";
	gethostname(host, sizeof(host) - 1);
	snprintf(buf, len, "%s_%ld", host[0] ? host : "cep", (long)getpid());
}

int delegate_lease_start(cep_delegate *d, cep_err *err)
{
	if (d->cfg.lease.name[0] == '\0')
		return CEP_OK;
	struct cep_lease *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	l->d = d;
	l->duration_ms = d->cfg.lease.duration_ms;
	identity(l->identity, sizeof(l->identity));
	int rv = cep_files_path(l->ready, sizeof(l->ready), err,
	    "%s/lease-held", d->paths.run);
	if (rv == CEP_OK)
		rv = open_kube(l, err);
	if (rv != CEP_OK) {
		cep_kube_free(l->kube);
		free(l);
		return cep_err_wrap(err, "delegate.lease");
	}
	unlink(l->ready); /* an earlier life's */
	d->lease = l;
	if (pthread_create(&l->th, NULL, lease_main, l) != 0)
		return cep_err_set(err, CEP_INTERNAL,
		    "starting a thread failed");
	l->started = true;
	cep_log_info(NULL,
	    "taking tasks only while holding the Lease %s/%s "
	    "(identity %s, duration %llds)",
	    l->ns, d->cfg.lease.name, l->identity,
	    (long long)(l->duration_ms / 1000));
	return CEP_OK;
}

bool delegate_lease_may_take(cep_delegate *d)
{
	struct cep_lease *l = d->lease;
	return l == NULL || (l->held && cep_clock_mono_ms() < deadline(l));
}

int64_t delegate_lease_cap_wait(cep_delegate *d, int64_t wait_ms)
{
	struct cep_lease *l = d->lease;
	if (l == NULL)
		return wait_ms;
	/* the answer comes back while the Lease is still ours, with a
	 * third of the duration to spare for taking what it brings */
	int64_t left = deadline(l) - cep_clock_mono_ms() - l->duration_ms / 3;
	return left < 0 ? 0 : left < wait_ms ? left : wait_ms;
}

void delegate_lease_join(cep_delegate *d)
{
	struct cep_lease *l = d->lease;
	if (l == NULL)
		return;
	if (l->started)
		pthread_join(l->th, NULL);
	if (l->held)
		release(l);
	unlink(l->ready);
	cep_kube_free(l->kube);
	free(l);
	d->lease = NULL;
}
