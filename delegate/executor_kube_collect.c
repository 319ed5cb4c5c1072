/*
 * executor_kube_collect.c - at the delegate's start, removes the runner
 * pods and secrets that earlier delegates of this appliance left in the
 * clusters: those whose run is final in the journal or unknown to it
 * (e.g. created just before a kill -9, before the journal said so).
 * Objects of live runs are left alone: recovery adopted those runs and
 * their normal cleanup removes them.
 *
 * One thread per connector, so a dead API server delays only its own
 * collection, and the delegate's start waits for none of them. Where to
 * look: the namespaces a connector names exactly (a glob cannot be listed
 * without cluster-wide rights the delegate should not have) plus every
 * namespace the journals name for that connector.
 */
#define _GNU_SOURCE
#include "executor_kube_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_pod.h"
#include "log.h"
#include "run_id.h"

typedef struct kcoll_one {
	kube_exec *kx;
	kconn *kc;
	char (*ns)[64];
	size_t nns;
	cep_exec_live_fn live;
	void *arg;
	pthread_t thr;
	bool started;
	atomic_bool done;
} kcoll_one;

struct kcollect {
	kcoll_one *one;
	size_t n;
};

static bool has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

static void add_ns(kcoll_one *o, const char *ns)
{
	if (ns[0] == '\0' || has_glob(ns))
		return;
	for (size_t i = 0; i < o->nns; i++)
		if (strcmp(o->ns[i], ns) == 0)
			return;
	snprintf(o->ns[o->nns++], 64, "%s", ns);
}

/* Deletes the items whose run is not live; returns how many. */
static int sweep(kcoll_one *o, cep_kube *k, const cep_kube_res *res,
    const char *ns, json_t *items)
{
	size_t i;
	json_t *it;
	int n = 0;
	json_array_foreach(items, i, it)
	{
		json_t *meta = json_object_get(it, "metadata");
		const char *name = json_string_value(
		    json_object_get(meta, "name"));
		const char *run = json_string_value(
		    json_object_get(json_object_get(meta, "labels"),
		        CEP_KPOD_RUN_ID));
		if (name == NULL || atomic_load(&o->kx->stopping))
			continue;
		if (run != NULL && cep_run_id_valid(run) &&
		    o->live(o->arg, run))
			continue;
		cep_kube_delete_opts d = {.grace_seconds = 0,
		    .propagation = "Background"};
		cep_err err = {0};
		int rv = cep_kube_delete(k, res, ns, name, &d, &err);
		if (rv == CEP_NOT_FOUND)
			continue; /* someone else's sweep or cleanup won */
		if (rv == CEP_OK) {
			n++;
			cep_log_conn(CEP_LOG_INFO,
			    run && cep_run_id_valid(run) ? run : NULL,
			    o->kc->c->name, "collected leftover %s %s/%s",
			    res->plural, ns, name);
		} else {
			cep_log_conn(CEP_LOG_WARN,
			    run && cep_run_id_valid(run) ? run : NULL,
			    o->kc->c->name, "collecting %s %s/%s: %s",
			    res->plural, ns, name, err.msg);
		}
	}
	return n;
}

static void collect_ns(kcoll_one *o, cep_kube *k, const char *ns,
    const char *sel)
{
	const cep_kube_res *res[] = {&cep_kube_pods, &cep_kube_secrets};
	for (size_t r = 0; r < 2 && !atomic_load(&o->kx->stopping); r++) {
		cep_kube_list_opts lo = {.label_selector = sel, .limit = 200};
		json_t *items = NULL;
		cep_err err = {0};
		if (cep_kube_list(k, res[r], ns, &lo, &items, NULL, 0, &err) !=
		    CEP_OK) {
			cep_log_conn(CEP_LOG_WARN, NULL, o->kc->c->name,
			    "collection "
			    "on connector %s, namespace %s: %s",
			    o->kc->c->name, ns, err.msg);
			continue;
		}
		sweep(o, k, res[r], ns, items);
		json_decref(items);
	}
}

static void *collect_main(void *arg)
{
	kcoll_one *o = arg;
	char sel[256];
	cep_err err = {0};
	cep_kube *k = NULL;
	if (delegate_kpod_selector(o->kx->appliance, sel, sizeof(sel)) != 0)
		cep_log_error(NULL, "collection: appliance name too long");
	else if (delegate_kx_client(o->kc, &k, &err) != CEP_OK)
		cep_log_conn(CEP_LOG_WARN, NULL, o->kc->c->name,
		    "collection "
		    "skipped: %s",
		    err.msg);
	else
		for (size_t i = 0; i < o->nns && !atomic_load(&o->kx->stopping);
		     i++)
			collect_ns(o, k, o->ns[i], sel);
	atomic_store(&o->done, true);
	return NULL;
}

/* false: no memory. */
static bool setup_one(kube_exec *kx, kcoll_one *o, kconn *kc,
    const cep_exec_place *places, size_t nplaces)
{
	o->kx = kx;
	o->kc = kc;
	atomic_init(&o->done, false);
	o->ns = calloc(kc->c->n_ns + nplaces + 1, sizeof(*o->ns));
	if (o->ns == NULL)
		return false;
	for (size_t i = 0; i < kc->c->n_ns; i++)
		add_ns(o, kc->c->namespaces[i]);
	for (size_t i = 0; i < nplaces; i++)
		if (strcmp(places[i].connector, kc->c->name) == 0)
			add_ns(o, places[i].ns);
	return true;
}

int delegate_kx_collect_start(kube_exec *kx, const cep_exec_place *places,
    size_t nplaces, cep_exec_live_fn live, void *arg, cep_err *err)
{
	kcollect *c = calloc(1, sizeof(*c));
	if (c == NULL ||
	    (kx->nconns > 0 &&
	        (c->one = calloc(kx->nconns, sizeof(*c->one))) == NULL)) {
		free(c);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	}
	kx->coll = c;
	for (size_t i = 0; i < kx->nconns; i++) {
		kcoll_one *o = &c->one[c->n++];
		o->live = live;
		o->arg = arg;
		if (!setup_one(kx, o, &kx->conns[i], places, nplaces) ||
		    pthread_create(&o->thr, NULL, collect_main, o) != 0) {
			atomic_store(&o->done, true);
			cep_log_conn(CEP_LOG_ERROR, NULL, kx->conns[i].c->name,
			    "collection on connector %s not started",
			    kx->conns[i].c->name);
			continue;
		}
		o->started = true;
	}
	return CEP_OK;
}

bool delegate_kx_collect_done(kube_exec *kx)
{
	if (kx->coll == NULL)
		return true;
	for (size_t i = 0; i < kx->coll->n; i++)
		if (!atomic_load(&kx->coll->one[i].done))
			return false;
	return true;
}

void delegate_kx_collect_join(kube_exec *kx)
{
	kcollect *c = kx->coll;
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		if (c->one[i].started)
			pthread_join(c->one[i].thr, NULL);
		free(c->one[i].ns);
	}
	free(c->one);
	free(c);
	kx->coll = NULL;
}
