/*
 * executor_kube.c - the kubernetes executor: a run's runner is a Pod in the
 * run's namespace of the connector's cluster, its identity a Secret owned
 * by that Pod (objects: kube_pod.c; the whole story: docs/kubernetes.md).
 *
 * Nothing here blocks the monitor. Each run has a thread (the "watcher")
 * that creates the Pod, then the Secret, then follows the Pod until it
 * ends through its connector's watch of the namespace; kill and undo run on a second per-run thread (the "op", executor_kube_op.c). poll()
 * only reads what the watcher last saw; undo() starts the cleanup and
 * answers CEP_EXEC_PENDING until the Pod and the Secret are confirmed
 * gone (GET -> 404) or the bound (5 min) passed. So a dead API server
 * stalls the runs of its own connector and nothing else: no lock is held
 * across a network call, and each connector has its own client.
 *
 * Names are derived, not stored: pod and secret cep-runner-<run-id> in the
 * spec's namespace, so a restarted delegate rebuilds every handle from the
 * journal (adopt) and finds what an earlier one left (collection, in
 * executor_kube_collect.c).
 */
#define _GNU_SOURCE
#include "executor_kube_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp.h"
#include "kube_pod.h"
#include "log.h"
#include "secret.h"
#include "clock.h"
#include "files.h"
#include "run_id.h"

#define UNDO_LIMIT_MS (5 * 60000)

/* ------------------------------------------------------------ helpers */

static const cep_executor_ops kube_ops;

static kconn *find_conn(kube_exec *kx, const char *name)
{
	for (size_t i = 0; i < kx->nconns; i++)
		if (strcmp(kx->conns[i].c->name, name) == 0)
			return &kx->conns[i];
	return NULL;
}

int delegate_executor_kube_client(cep_executor *ex, const char *connector,
    cep_kube **out, cep_err *err)
{
	*out = NULL;
	kube_exec *kx = ex ? delegate_executor_impl(ex, &kube_ops) : NULL;
	if (kx == NULL)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "no kubernetes executor");
	kconn *kc = find_conn(kx, connector);
	if (kc == NULL)
		return cep_err_set(err, CEP_NOT_FOUND, "no connector \"%s\"",
		    connector);
	return delegate_kx_client(kc, out, err);
}

/* kx->mu held. */
static krun *find_run(kube_exec *kx, const char *id)
{
	for (krun *kr = kx->runs; kr != NULL; kr = kr->next)
		if (strcmp(kr->id.s, id) == 0)
			return kr;
	return NULL;
}

/* The run id inside a handle's pod name. */
static const char *handle_run(const cep_exec_handle *h)
{
	static const char pre[] = "cep-runner-";
	if (strncmp(h->pod, pre, sizeof(pre) - 1) != 0)
		return "";
	return h->pod + sizeof(pre) - 1;
}

static void wipe_identity(krun *kr)
{
	char **s[] = {&kr->ca, &kr->cert, &kr->key, &kr->cp_ca};
	for (size_t i = 0; i < 4; i++) {
		cep_secret_wipe_str(*s[i]);
		*s[i] = NULL;
	}
}

/* ------------------------------------------------------------- launch */

/* A create answered 409 AlreadyExists: when the object carries this run's
 * label it is ours (a retried create whose first attempt did land, after
 * a 5xx or a timeout), else the error stands. */
static int ours_already(krun *kr, cep_kube *k, const cep_kube_res *res,
    json_t **obj, cep_err *err)
{
	json_t *o = NULL;
	cep_err e = {0};
	if (cep_kube_get(k, res, kr->ns, kr->pod, &o, &e) != CEP_OK)
		return err->code;
	const char *run = json_string_value(
	    json_object_get(json_object_get(json_object_get(o, "metadata"),
	                        "labels"),
	        "cep.io/run-id"));
	if (run == NULL || strcmp(run, kr->id.s) != 0) {
		json_decref(o);
		return err->code;
	}
	if (obj != NULL)
		*obj = o;
	else
		json_decref(o);
	return CEP_OK;
}

/* Pod, then Secret owned by it (the pod waits in ContainerCreating until
 * its secret volume exists, so the order costs nothing). */
static int create_objects(krun *kr, cep_kube *k, cep_err *err)
{
	cep_kpod p = {.run_id = kr->id.s,
	    .name = kr->pod,
	    .ns = kr->ns,
	    .appliance = kr->kx->appliance,
	    .relay = kr->relay,
	    .server_name = kr->server_name,
	    .cp_url = kr->cp_url,
	    .cp_ca_pem = kr->cp_ca,
	    .cp_proxy = kr->cp_proxy};
	int64_t left = kr->not_after_ms - cep_clock_now_ms();
	p.deadline_s = left > 1000 ? left / 1000 : 1;
	if (atomic_load(&kr->kill_asked))
		return cep_err_set(err, CEP_CANCELLED,
		    "killed before the pod "
		    "was created");
	int rv = delegate_kx_resolve_node(kr, k, err);
	if (rv != CEP_OK || kr->split.n > 0)
		return rv; /* a split creates nothing: children will */
	p.node = kr->node;
	p.caps = kr->pods.caps;
	p.cgroupfs = kr->pods.cgroupfs;
	p.nodefs = kr->pods.nodefs;
	p.node_selector = kr->pods.node_sel;
	json_t *pod = delegate_kpod_pod(kr->kc->c, &p), *created = NULL;
	if (pod == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "building the pod object");
	rv = cep_kube_create(k, &cep_kube_pods, kr->ns, pod, &created, err);
	json_decref(pod);
	if (rv == CEP_ALREADY_EXISTS)
		rv = ours_already(kr, k, &cep_kube_pods, &created, err);
	if (rv != CEP_OK)
		return rv;
	const char *uid = delegate_kx_obj_str(created, "metadata", "uid");
	json_t *sec = uid == NULL ?
	    NULL :
	    delegate_kpod_secret(kr->kc->c, &p, uid, kr->ca, kr->cert, kr->key);
	json_decref(created);
	if (sec == NULL)
		return cep_err_set(err, CEP_INTERNAL, "pod %s/%s: %s", kr->ns,
		    kr->pod,
		    uid == NULL ? "created without a uid" :
		                  "building the secret object failed");
	if (delegate_kx_stop_asked(kr) || atomic_load(&kr->kill_asked))
		rv = cep_err_set(err, CEP_CANCELLED, "launch cancelled");
	else
		rv = cep_kube_create(k, &cep_kube_secrets, kr->ns, sec, NULL,
		    err);
	json_decref(sec);
	if (rv == CEP_ALREADY_EXISTS)
		rv = ours_already(kr, k, &cep_kube_secrets, NULL, err);
	return rv;
}

static void *watcher_main(void *arg)
{
	krun *kr = arg;
	cep_err err = {0};
	cep_kube *k = NULL;
	if (delegate_kx_client(kr->kc, &k, &err) != CEP_OK ||
	    delegate_kx_watch_join(kr, k, &err) != CEP_OK) {
		atomic_store(&kr->launched, true);
		delegate_kx_ended(kr, "launch failed: %s", err.msg);
	} else if (!kr->adopted && create_objects(kr, k, &err) != CEP_OK) {
		atomic_store(&kr->launched, true);
		delegate_kx_ended(kr, "launch failed: %s", err.msg);
	} else if (kr->split.n > 0) {
		atomic_store(&kr->launched, true);
		delegate_kx_ended(kr, "split across %zu nodes", kr->split.n);
	} else {
		atomic_store(&kr->launched, true);
		wipe_identity(kr);
		delegate_kx_watch_pod(kr, k);
	}
	delegate_kx_watch_leave(kr);
	wipe_identity(kr);
	pthread_mutex_lock(&kr->kx->mu);
	kr->watcher_done = true;
	pthread_mutex_unlock(&kr->kx->mu);
	return NULL;
}

/* ------------------------------------------------------------ lifecycle */

static krun *krun_new(kube_exec *kx, const char *id, const char *ns,
    const char *conn)
{
	cep_run_id rid;
	if (!cep_run_id_parse(&rid, id))
		return NULL; /* callers check id first */
	krun *kr = calloc(1, sizeof(*kr));
	if (kr == NULL)
		return NULL;
	kr->kx = kx;
	kr->id = rid;
	snprintf(kr->ns, sizeof(kr->ns), "%s", ns);
	snprintf(kr->conn, sizeof(kr->conn), "%s", conn);
	delegate_kpod_name(id, kr->pod, sizeof(kr->pod));
	kr->kc = find_conn(kx, conn);
	atomic_init(&kr->stop, false);
	atomic_init(&kr->kill_asked, false);
	atomic_init(&kr->launched, false);
	atomic_init(&kr->hub, NULL);
	cep_clock_cond_init(&kr->wcv);
	return kr;
}

static void krun_free(krun *kr)
{
	atomic_store(&kr->stop, true);
	delegate_kx_watch_wake(kr);
	if (kr->watcher_started)
		pthread_join(kr->watcher, NULL);
	if (kr->op_started)
		pthread_join(kr->op, NULL);
	wipe_identity(kr);
	pthread_cond_destroy(&kr->wcv);
	free(kr);
}

/* Inserts kr and starts its watcher; kr is freed on failure. */
static int start_run(kube_exec *kx, krun *kr, cep_err *err)
{
	pthread_mutex_lock(&kx->mu);
	kr->next = kx->runs;
	kx->runs = kr;
	int rv = pthread_create(&kr->watcher, NULL, watcher_main, kr);
	kr->watcher_started = rv == 0;
	if (rv != 0) {
		kx->runs = kr->next;
		pthread_mutex_unlock(&kx->mu);
		krun_free(kr);
		return cep_err_errno(err, rv,
		    "starting the pod watcher thread");
	}
	pthread_mutex_unlock(&kx->mu);
	return CEP_OK;
}

static int fill_handle(const krun *kr, cep_exec_handle *h)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->pod, sizeof(h->pod), "%s", kr->pod);
	snprintf(h->ns, sizeof(h->ns), "%s", kr->ns);
	snprintf(h->connector, sizeof(h->connector), "%s", kr->conn);
	return CEP_OK;
}

static int kube_launch(void *impl, const cep_exec_launch *l, cep_exec_handle *h,
    cep_err *err)
{
	kube_exec *kx = impl;
	if (l->connector == NULL || l->ns == NULL ||
	    !cep_run_id_valid(l->run_id))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "kubernetes launch needs a run id, a connector and a namespace");
	if (find_conn(kx, l->connector) == NULL)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "no connector \"%s\" in connectors.d", l->connector);
	pthread_mutex_lock(&kx->mu);
	bool dup = find_run(kx, l->run_id) != NULL;
	pthread_mutex_unlock(&kx->mu);
	if (dup)
		return cep_err_set(err, CEP_ALREADY_EXISTS,
		    "run %s already has a runner pod", l->run_id);
	krun *kr = krun_new(kx, l->run_id, l->ns, l->connector);
	if (kr == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	const cep_connector *c = kr->kc->c;
	/* As the cluster reaches the relay: the connector's, else what the
	 * monitor passes (relay.advertise). */
	snprintf(kr->relay, sizeof(kr->relay), "%s",
	    c->relay[0]                         ? c->relay :
	        l->relay_url && l->relay_url[0] ? l->relay_url :
	                                          kx->relay);
	snprintf(kr->server_name, sizeof(kr->server_name), "%s",
	    c->server_name[0] ? c->server_name :
	                        (l->server_name ? l->server_name : ""));
	kr->not_after_ms = l->not_after_ms;
	if (l->pods != NULL)
		kr->pods = *l->pods;
	int rv = delegate_exec_identity_read(l->identity_dir, &kr->ca,
	    &kr->cert, &kr->key, err);
	if (rv == CEP_OK && l->cp_url != NULL && l->cp_url[0] != '\0') {
		snprintf(kr->cp_url, sizeof(kr->cp_url), "%s", l->cp_url);
		snprintf(kr->cp_proxy, sizeof(kr->cp_proxy), "%s",
		    l->cp_proxy ? l->cp_proxy : "");
		size_t len;
		if (l->cp_ca_file != NULL && l->cp_ca_file[0] != '\0' &&
		    (rv = cep_files_read(l->cp_ca_file, 1024 * 1024, &kr->cp_ca,
		         &len, err)) != CEP_OK)
			cep_err_wrap(err, "controlPlane.caFile");
	}
	if (rv != CEP_OK) {
		krun_free(kr);
		return cep_err_wrap(err, "reading the runner identity");
	}
	fill_handle(kr, h);
	return start_run(kx, kr, err);
}

static int kube_adopt(void *impl, cep_exec_handle *h, cep_err *err)
{
	kube_exec *kx = impl;
	/* the pod (and its Secret) are named after the run */
	if (h->pod[0] == '\0')
		delegate_kpod_name(h->run_id.s, h->pod, sizeof(h->pod));
	const char *id = handle_run(h);
	if (!cep_run_id_valid(id))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "not a runner pod name: \"%s\"", h->pod);
	pthread_mutex_lock(&kx->mu);
	bool known = find_run(kx, id) != NULL;
	pthread_mutex_unlock(&kx->mu);
	if (known)
		return CEP_OK;
	krun *kr = krun_new(kx, id, h->ns, h->connector);
	if (kr == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	kr->adopted = true;
	atomic_store(&kr->launched, true); /* by an earlier delegate */
	if (kr->kc == NULL) {
		snprintf(kr->what, sizeof(kr->what),
		    "connector \"%s\" is no "
		    "longer configured",
		    h->connector);
		kr->phase = KP_ENDED;
		pthread_mutex_lock(&kx->mu);
		kr->next = kx->runs;
		kx->runs = kr;
		pthread_mutex_unlock(&kx->mu);
		return CEP_OK;
	}
	return start_run(kx, kr, err);
}

static enum cep_exec_status kube_poll(void *impl, const cep_exec_handle *h,
    char *what, size_t len)
{
	kube_exec *kx = impl;
	pthread_mutex_lock(&kx->mu);
	krun *kr = find_run(kx, handle_run(h));
	enum cep_exec_status st = CEP_EXEC_EXITED;
	if (kr == NULL)
		snprintf(what, len, "pod %s unknown to the kubernetes executor",
		    h->pod);
	else if (kr->phase != KP_ENDED)
		st = CEP_EXEC_ALIVE;
	else
		snprintf(what, len, "%s", kr->what);
	pthread_mutex_unlock(&kx->mu);
	return st;
}

static void kube_kill(void *impl, const cep_exec_handle *h)
{
	kube_exec *kx = impl;
	pthread_mutex_lock(&kx->mu);
	krun *kr = find_run(kx, handle_run(h));
	if (kr != NULL)
		atomic_store(&kr->kill_asked, true);
	if (kr != NULL && !kr->undo_started)
		(void)delegate_kx_start_op(kr, OP_KILL);
	pthread_mutex_unlock(&kx->mu);
}

/* kx->mu held: unlinks kr. */
static void unlink_run(kube_exec *kx, krun *kr)
{
	for (krun **pp = &kx->runs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == kr) {
			*pp = kr->next;
			return;
		}
}

static enum cep_exec_state kube_undo(void *impl, const char *run_id,
    cep_err *err)
{
	kube_exec *kx = impl;
	pthread_mutex_lock(&kx->mu);
	krun *kr = find_run(kx, run_id);
	if (kr == NULL) { /* never launched here: nothing was created */
		pthread_mutex_unlock(&kx->mu);
		return CEP_EXEC_DONE;
	}
	atomic_store(&kr->stop, true);
	if (!kr->undo_started) {
		kr->undo_started = delegate_kx_start_op(kr, OP_UNDO);
		pthread_mutex_unlock(&kx->mu);
		/* kr is freed only by a later undo of the monitor's */
		delegate_kx_watch_wake(kr);
		return CEP_EXEC_PENDING;
	}
	if (!kr->undo_done || !kr->op_done ||
	    (kr->watcher_started && !kr->watcher_done)) {
		pthread_mutex_unlock(&kx->mu);
		return CEP_EXEC_PENDING;
	}
	unlink_run(kx, kr);
	delegate_kx_clean_stash(kx, kr);
	pthread_mutex_unlock(&kx->mu);
	int rv = kr->undo_rv;
	if (rv != CEP_OK)
		cep_err_set(err, rv, "%s", kr->undo_msg);
	else
		cep_log_conn(CEP_LOG_INFO, run_id, kr->conn,
		    "pod and secret "
		    "%s/%s deleted, confirmed gone",
		    kr->ns, kr->pod);
	krun_free(kr); /* both threads have ended: joins return at once */
	return delegate_exec_state_of(rv);
}

static void kube_free(void *impl)
{
	kube_exec *kx = impl;
	if (kx == NULL)
		return;
	atomic_store(&kx->stopping, true);
	delegate_kx_collect_join(kx);
	delegate_kx_clean_free_all(kx);
	while (kx->runs != NULL) {
		krun *kr = kx->runs;
		kx->runs = kr->next;
		krun_free(kr);
	}
	for (size_t i = 0; i < kx->nconns; i++) {
		delegate_kx_hubs_free(&kx->conns[i]);
		cep_kube_free(kx->conns[i].k);
		pthread_mutex_destroy(&kx->conns[i].mu);
	}
	free(kx->conns);
	pthread_mutex_destroy(&kx->mu);
	free(kx);
}

/* ----------------------------------------- what differs from a process */

static void kube_place(const cep_exec_scope *run, cep_exec_scope *out)
{
	*out = *run;
}

static int kube_pods(const char *spec_yaml, const char *spec_name,
    cep_exec_pods *pods, cep_err *err)
{
	cep_exp *e = NULL;
	int rv = cep_exp_parse(spec_yaml, strlen(spec_yaml), spec_name, &e,
	    NULL, err);
	if (rv == CEP_OK)
		rv = delegate_kpod_targets(e, pods, err);
	cep_exp_free(e);
	return rv;
}

static void kube_describe(const cep_exec_handle *h, char *buf, size_t len)
{
	snprintf(buf, len, "pod %s/%s on connector %s", h->ns, h->pod,
	    h->connector);
}

static void kube_unverdicted(const char *what, char *buf, size_t len)
{
	snprintf(buf, len, "runner ended before a verdict: %s", what);
}

static bool kube_split(void *impl, const char *run_id, cep_exec_split *out)
{
	kube_exec *kx = impl;
	pthread_mutex_lock(&kx->mu);
	krun *kr = find_run(kx, run_id);
	bool split = kr != NULL && kr->phase == KP_ENDED && kr->split.n > 0;
	if (split)
		*out = kr->split;
	pthread_mutex_unlock(&kx->mu);
	return split;
}

static void kube_grant(cep_exec_grant *g)
{
	g->allow_host_netns = false;
}

static const cep_executor_ops kube_ops = {
    .name = "kubernetes",
    .launch = kube_launch,
    .poll = kube_poll,
    .kill = kube_kill,
    .undo = kube_undo,
    .adopt = kube_adopt,
    .free = kube_free,
    .node_undo = delegate_kx_node_undo,
    .place = kube_place,
    .pods = kube_pods,
    .describe = kube_describe,
    .unverdicted = kube_unverdicted,
    .grant = kube_grant,
    .split = kube_split,
};

int delegate_executor_kube_new(const cep_connectors *cs, const char *appliance,
    const char *relay_default, cep_executor **out, cep_err *err)
{
	kube_exec *kx = calloc(1, sizeof(*kx));
	size_t n = cs != NULL ? cep_connector_list_count(cs) : 0;
	if (kx == NULL ||
	    (n > 0 && (kx->conns = calloc(n, sizeof(*kx->conns))) == NULL)) {
		free(kx);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	}
	pthread_mutex_init(&kx->mu, NULL);
	atomic_init(&kx->stopping, false);
	kx->undo_limit_ms = UNDO_LIMIT_MS;
	kx->nconns = n;
	for (size_t i = 0; i < n; i++) {
		kx->conns[i].c = cep_connector_list_at(cs, i);
		pthread_mutex_init(&kx->conns[i].mu, NULL);
	}
	snprintf(kx->appliance, sizeof(kx->appliance), "%s", appliance);
	snprintf(kx->relay, sizeof(kx->relay), "%s",
	    relay_default ? relay_default : "");
	*out = delegate_executor_wrap(&kube_ops, kx);
	if (*out == NULL) {
		kube_free(kx);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	}
	return CEP_OK;
}

void delegate_executor_kube_set_undo_limit(cep_executor *ex, int64_t ms)
{
	kube_exec *kx = delegate_executor_impl(ex, &kube_ops);
	if (kx != NULL)
		kx->undo_limit_ms = ms;
}

/* ---------------------------------------------------------- collection */

int delegate_executor_kube_collect(cep_executor *ex,
    const cep_exec_place *places, size_t nplaces, cep_exec_live_fn live,
    void *arg, cep_err *err)
{
	kube_exec *kx = delegate_executor_impl(ex, &kube_ops);
	if (kx == NULL || kx->coll != NULL)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "collection: not a kubernetes executor, or already started");
	return delegate_kx_collect_start(kx, places, nplaces, live, arg, err);
}

bool delegate_executor_kube_collect_done(cep_executor *ex)
{
	kube_exec *kx = delegate_executor_impl(ex, &kube_ops);
	return kx == NULL || delegate_kx_collect_done(kx);
}
