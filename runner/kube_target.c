/*
 * kube_target.c - the runner's Kubernetes client and scope (see
 * kube_target.h), the permission check every Kubernetes fault makes
 * before acting, and the describe -> inject hand-over.
 */
#define _GNU_SOURCE
#include "kube_target.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_rbac.h"

#define MAX_STASH 32

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static cep_kube *client;
static bool owned; /* made here (in-cluster): freed here */
static char run_ns[254];
static uint32_t max_targets;

static struct {
	const void *key;
	json_t *v;
} stash[MAX_STASH];

void runner_kube_target_configure(const char *ns, uint32_t max)
{
	pthread_mutex_lock(&mu);
	snprintf(run_ns, sizeof(run_ns), "%s", ns != NULL ? ns : "");
	max_targets = max;
	pthread_mutex_unlock(&mu);
}

void runner_kube_target_set(cep_kube *k, const char *ns, uint32_t max)
{
	pthread_mutex_lock(&mu);
	if (owned)
		cep_kube_free(client);
	client = k;
	owned = false;
	snprintf(run_ns, sizeof(run_ns), "%s", ns != NULL ? ns : "");
	max_targets = max;
	pthread_mutex_unlock(&mu);
}

void runner_kube_target_reset(void)
{
	pthread_mutex_lock(&mu);
	if (owned)
		cep_kube_free(client);
	client = NULL;
	owned = false;
	run_ns[0] = '\0';
	max_targets = 0;
	for (size_t i = 0; i < MAX_STASH; i++) {
		json_decref(stash[i].v);
		stash[i].v = NULL;
		stash[i].key = NULL;
	}
	pthread_mutex_unlock(&mu);
}

uint32_t runner_kube_target_max(void)
{
	pthread_mutex_lock(&mu);
	uint32_t m = max_targets > 0 ? max_targets :
	                               CEP_KUBE_TARGET_DEFAULT_MAX;
	pthread_mutex_unlock(&mu);
	return m;
}

bool runner_kube_target_name_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	return n > 0 && n <= 253 &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789.-") == n;
}

/* With mu held: the in-cluster client, made once. */
static int ensure_client(cep_err *err)
{
	if (client != NULL)
		return CEP_OK;
	int rc = cep_kube_in_cluster(&client, err);
	if (rc != CEP_OK)
		return cep_err_wrap(err,
		    "the runner's Kubernetes client "
		    "(in-cluster)");
	owned = true;
	return CEP_OK;
}

int runner_kube_target_get(cep_kube **k, char *ns, size_t nslen, cep_err *err)
{
	pthread_mutex_lock(&mu);
	int rc = ensure_client(err);
	if (rc == CEP_OK) {
		/* no namespace in the assignment: the service account's, which
		 * is the runner pod's own namespace, the run's */
		const char *n = run_ns[0] ? run_ns : cep_kube_namespace(client);
		if (n == NULL || !runner_kube_target_name_ok(n))
			rc = cep_err_set(err, CEP_FAILED_PRECONDITION,
			    "the "
			    "runner knows no namespace for its run");
		else
			snprintf(ns, nslen, "%s", n);
	}
	*k = rc == CEP_OK ? client : NULL;
	pthread_mutex_unlock(&mu);
	return rc;
}

int runner_kube_target_check_perms(cep_kube *k, const char *type,
    const char *ns, cep_err *err)
{
	const cep_kube_perm *perms = NULL;
	int rc = cep_kube_rbac_for_type(type, &perms, err);
	if (rc != CEP_OK || perms == NULL)
		return rc;
	char missing[400] = "";
	size_t off = 0;
	for (const cep_kube_perm *p = perms; p->verb != NULL; p++) {
		bool ok = false;
		char reason[128] = "";
		cep_kube_access a = cep_kube_perm_access(p, ns);
		rc = cep_kube_can_i(k, &a, &ok, reason, sizeof(reason), err);
		if (rc != CEP_OK)
			return cep_err_wrap(err,
			    "%s: checking the runner's "
			    "permissions",
			    type);
		if (ok || off >= sizeof(missing))
			continue;
		int w = snprintf(missing + off, sizeof(missing) - off,
		    "%s%s %s%s%s%s%s", off ? ", " : "", p->verb, p->resource,
		    p->sub ? "/" : "", p->sub ? p->sub : "",
		    p->cluster ? "" : " in ", p->cluster ? "" : ns);
		off += w > 0 ? (size_t)w : 0;
	}
	if (missing[0] != '\0')
		return cep_err_set(err, CEP_PERMISSION_DENIED,
		    "%s: the runner's "
		    "service account may not %s",
		    type, missing);
	return CEP_OK;
}

void runner_kube_target_stash(const void *key, json_t *v)
{
	pthread_mutex_lock(&mu);
	size_t free_slot = MAX_STASH;
	for (size_t i = 0; i < MAX_STASH; i++) {
		if (stash[i].key == key) {
			json_decref(stash[i].v);
			stash[i].key = NULL;
			stash[i].v = NULL;
		}
		if (stash[i].key == NULL && free_slot == MAX_STASH)
			free_slot = i;
	}
	if (free_slot < MAX_STASH) {
		stash[free_slot].key = key;
		stash[free_slot].v = v;
	} else {
		json_decref(v); /* inject then reads again */
	}
	pthread_mutex_unlock(&mu);
}

json_t *runner_kube_target_take(const void *key)
{
	json_t *v = NULL;
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < MAX_STASH && v == NULL; i++) {
		if (stash[i].key == key && key != NULL) {
			v = stash[i].v;
			stash[i].key = NULL;
			stash[i].v = NULL;
		}
	}
	pthread_mutex_unlock(&mu);
	return v;
}
