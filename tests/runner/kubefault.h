/*
 * kubefault.h - the fixture of the runner's Kubernetes fault tests
 * (header-only, static): the Kubernetes API test server with its users,
 * an admin client, one fault driven by its ops as the engine does, and
 * the delegate's undo through cep_undo_apply.
 */
#ifndef CEP_TEST_RUNNER_KUBEFAULT_H
#define CEP_TEST_RUNNER_KUBEFAULT_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fault.h"
#include "kube.h"
#include "kube_target.h"
#include "kubeapi_fixture.h"
#include "rt.h"
#include "testutil.h"
#include "undo.h"

static kubeapi_fixture *F;
static cep_kube *K; /* admin */
static rt_sink S;
static cep_undo_ctx UC; /* the delegate's undo context (resolver) */
static char *users_dir;

/* admin may do anything; "runner" may list pods but not delete them;
 * "deleter" may (until a test revokes it) */
static const char users_json[] =
    "{\"users\": ["
    "{\"name\": \"admin\", \"token\": \"t-admin\", \"rules\": [{\"namespaces\":"
    " [\"*\"], \"groups\": [\"*\"], \"resources\": [\"*\"], \"verbs\": "
    "[\"*\"]}]},"
    "{\"name\": \"runner\", \"token\": \"t-runner\", \"rules\": ["
    "{\"namespaces\": [\"shop\"], \"groups\": [\"\"], \"resources\": "
    "[\"pods\"], \"verbs\": [\"get\", \"list\"]}]},"
    "{\"name\": \"deleter\", \"token\": \"t-deleter\", \"rules\": ["
    "{\"namespaces\": [\"shop\"], \"groups\": [\"\"], \"resources\": "
    "[\"pods\"], \"verbs\": [\"get\", \"list\", \"delete\"]}]}"
    "]}";

static inline void setup(void)
{
	users_dir = cep_test_tmpdir("kusers");
	char path[4096];
	snprintf(path, sizeof(path), "%s/users.json", users_dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(users_json, f);
	fclose(f);
	const char *args[] = {"--users", path, "--namespace", "shop",
	    "--namespace", "other", NULL};
	F = kubeapi_start(args);
	cr_assert_not_null(F, "the Kubernetes API test server did not start");
	char *kc = kubeapi_kubeconfig(F, NULL);
	cep_err err = {0};
	cr_assert_eq(cep_kube_from_kubeconfig(kc, NULL, false, &K, &err),
	    CEP_OK, "%s", err.msg);
	free(kc);
	runner_kube_target_set(K, "shop", 10);
	rt_sink_open(&S);
}

static inline void teardown(void)
{
	rt_sink_close(&S);
	UC = (cep_undo_ctx){0};
	runner_kube_target_reset();
	cep_kube_free(K);
	kubeapi_stop(F);
	cep_test_rmdir(users_dir);
}

TestSuite(kube, .init = setup, .fini = teardown, .timeout = 120);

#define HEAD                                                                   \
	"apiVersion: cep.io/v1\nkind: Experiment\nmetadata:\n  name: t\n"      \
	"spec:\n  target: {kind: kubernetes, connector: c, namespace: shop}\n" \
	"  duration: 30s\n"

/* ---- cluster helpers ---- */

static inline void create_deployment(const char *ns, const char *name,
    int replicas)
{
	json_t *d = json_pack("{s:s, s:s, s:{s:s}, s:{s:i, s:{s:{s:s}}, "
	                      "s:{s:{s:{s:s}}, s:{s:[{s:s, s:s}]}}}}",
	    "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name",
	    name, "spec", "replicas", replicas, "selector", "matchLabels",
	    "app", name, "template", "metadata", "labels", "app", name, "spec",
	    "containers", "name", "c", "image", "nginx");
	cep_err err = {0};
	cr_assert_eq(cep_kube_create(K, &cep_kube_deployments, ns, d, NULL,
	                 &err),
	    CEP_OK, "%s", err.msg);
	json_decref(d);
}

static inline json_int_t deploy_field(const char *ns, const char *name,
    const char *sect, const char *key)
{
	json_t *obj = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_kube_get(K, &cep_kube_deployments, ns, name, &obj,
	                 &err),
	    CEP_OK, "%s", err.msg);
	json_int_t v = json_integer_value(
	    json_object_get(json_object_get(obj, sect), key));
	json_decref(obj);
	return v;
}

static inline json_t *running(const char *ns, const char *app);

/* Waits (bounded) until readyReplicas == n and n pods of app=name are
 * Running and not deleting. The status alone is not enough: the controllers
 * update it asynchronously, so right after a pod-delete it still says n
 * ready while the replacements are not Running yet. */
static inline void wait_ready(const char *ns, const char *name, int n)
{
	int64_t end = cep_clock_mono_ms() + 20000;
	for (;;) {
		json_t *pods = running(ns, name);
		size_t np = json_array_size(pods);
		json_decref(pods);
		if (np == (size_t)n &&
		    deploy_field(ns, name, "status", "readyReplicas") == n)
			return;
		cr_assert_lt(cep_clock_mono_ms(), end,
		    "%s/%s never had %d ready (%zu Running)", ns, name, n, np);
		cep_clock_sleep_ms(100);
	}
}

/* Names of the Running, not deleting, pods of app=name in ns. */
static inline json_t *running(const char *ns, const char *app)
{
	char sel[128];
	snprintf(sel, sizeof(sel), "app=%s", app);
	cep_kube_list_opts o = {.label_selector = sel};
	json_t *items = NULL, *out = json_array(), *p;
	cep_err err = {0};
	cr_assert_eq(cep_kube_list(K, &cep_kube_pods, ns, &o, &items, NULL, 0,
	                 &err),
	    CEP_OK, "%s", err.msg);
	size_t i;
	json_array_foreach(items, i, p)
	{
		json_t *md = json_object_get(p, "metadata");
		const char *ph = json_string_value(
		    json_object_get(json_object_get(p, "status"), "phase"));
		if (ph != NULL && strcmp(ph, "Running") == 0 &&
		    json_object_get(md, "deletionTimestamp") == NULL)
			json_array_append(out, json_object_get(md, "name"));
	}
	json_decref(items);
	return out;
}

static inline bool in_list(json_t *names, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(names, i,
	    v) if (strcmp(json_string_value(v), name) == 0) return true;
	return false;
}

/* Of the pods in before, how many are still there and not deleting. */
static inline size_t survivors(json_t *before, const char *ns, const char *app)
{
	json_t *now = running(ns, app), *v;
	size_t n = 0, i;
	json_array_foreach(before, i, v)
	    n += in_list(now, json_string_value(v));
	json_decref(now);
	return n;
}

static inline bool node_cordoned(const char *name)
{
	json_t *obj = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_kube_get(K, &cep_kube_nodes, NULL, name, &obj, &err),
	    CEP_OK, "%s", err.msg);
	bool v = json_is_true(
	    json_object_get(json_object_get(obj, "spec"), "unschedulable"));
	json_decref(obj);
	return v;
}

/* A merge patch (stolen) to ns/name of r, as an administrator would. */
static inline void patch_by_hand(const cep_kube_res *r, const char *ns,
    const char *name, json_t *patch)
{
	cep_err err = {0};
	cr_assert_eq(cep_kube_patch(K,
	                 &(cep_kube_patch_req){.res = r,
	                     .ns = ns,
	                     .name = name,
	                     .type = CEP_KUBE_MERGE_PATCH,
	                     .patch = patch},
	                 NULL, &err),
	    CEP_OK, "%s", err.msg);
	json_decref(patch);
}

static inline void cordon_by_hand(const char *name)
{
	patch_by_hand(&cep_kube_nodes, NULL, name,
	    json_pack("{s:{s:b}}", "spec", "unschedulable", 1));
}

/* ---- driving one fault by its ops, as the engine does ---- */

typedef struct one_fault {
	cep_exp *e;
	const cep_exp_item *it;
	const cep_fault_ops *ops;
	char target[300];
	char *undo;
	void *state;
} one_fault;

static inline int fault_open(one_fault *f, const char *yaml, cep_err *err)
{
	memset(f, 0, sizeof(*f));
	f->e = rt_parse(yaml);
	f->it = cep_exp_fault(f->e, 0);
	f->ops = runner_fault_find(cep_exp_item_type(f->it));
	cr_assert_not_null(f->ops);
	json_t *undo = NULL;
	int rc = f->ops->describe(f->it, f->target, sizeof(f->target), &undo,
	    err);
	if (rc == CEP_OK) {
		f->undo = json_dumps(undo, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(undo);
	}
	return rc;
}

static inline void fault_inject(one_fault *f)
{
	cep_fault_ctx ctx = {.sink = S.sink, .fault_id = "f1"};
	cep_err err = {0};
	cr_assert_eq(f->ops->inject(f->it, &ctx, &f->state, &err), CEP_OK,
	    "inject: %s", err.msg);
}

static inline void fault_revert(one_fault *f)
{
	cep_err err = {0};
	cr_assert_eq(f->ops->revert(f->state, &err), CEP_OK, "revert: %s",
	    err.msg);
	f->state = NULL;
}

static inline void fault_close(one_fault *f)
{
	free(f->undo);
	cep_exp_free(f->e);
}

static inline cep_kube *resolver(const char *run_id, char *ns, size_t nslen,
    void *arg)
{
	(void)run_id;
	snprintf(ns, nslen, "%s", (const char *)arg);
	return K;
}

static inline int delegate_undo(const char *mechanism, const char *undo,
    cep_err *err)
{
	Cep__V1__FaultRecord rec = CEP__V1__FAULT_RECORD__INIT;
	rec.run_id = (char *)"r-0123456789abcdef";
	rec.fault_id = (char *)"f1";
	rec.mechanism = (char *)mechanism;
	rec.undo = (char *)undo;
	return cep_undo_apply(&UC, &rec, err);
}

#endif
