/*
 * test_kube_faults.c - the Kubernetes faults and the k8s probe against the
 * Kubernetes API test server (tests/kubeapi): pod-delete picks exactly
 * count / percentage of the matching Running pods, only in the run's
 * namespace and never more than maxTargets; deployment-scale and
 * node-cordon and node-taint restore what they changed (read back from the server), also
 * through lib/undo/undo.c as the delegate does when the runner died; a missing
 * permission fails the fault naming the verb; the probe judges
 * readyReplicas. Every check reads the server's state, never a return
 * value alone.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "engine.h"
#include "kube.h"
#include "kube_target.h"
#include "kubeapi_fixture.h"
#include "probe.h"
#include "rt.h"
#include "testutil.h"
#include "undo.h"
#include "clock.h"

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

static void setup(void)
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

static void teardown(void)
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

static void create_deployment(const char *ns, const char *name, int replicas)
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

static json_int_t deploy_field(const char *ns, const char *name,
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

/* Waits (bounded) for the controllers to make readyReplicas == n. */
static void wait_ready(const char *ns, const char *name, int n)
{
	int64_t end = cep_clock_mono_ms() + 20000;
	while (deploy_field(ns, name, "status", "readyReplicas") != n) {
		cr_assert_lt(cep_clock_mono_ms(), end,
		    "%s/%s never had %d ready", ns, name, n);
		cep_clock_sleep_ms(100);
	}
}

/* Names of the Running, not deleting, pods of app=name in ns. */
static json_t *running(const char *ns, const char *app)
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

static bool in_list(json_t *names, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(names, i,
	    v) if (strcmp(json_string_value(v), name) == 0) return true;
	return false;
}

/* Of the pods in before, how many are still there and not deleting. */
static size_t survivors(json_t *before, const char *ns, const char *app)
{
	json_t *now = running(ns, app), *v;
	size_t n = 0, i;
	json_array_foreach(before, i, v)
	    n += in_list(now, json_string_value(v));
	json_decref(now);
	return n;
}

static bool node_cordoned(const char *name)
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

static void cordon_by_hand(const char *name)
{
	json_t *patch = json_pack("{s:{s:b}}", "spec", "unschedulable", 1);
	cep_err err = {0};
	cr_assert_eq(cep_kube_patch(K,
	                 &(cep_kube_patch_req){.res = &cep_kube_nodes,
	                     .name = name,
	                     .type = CEP_KUBE_MERGE_PATCH,
	                     .patch = patch},
	                 NULL, &err),
	    CEP_OK, "%s", err.msg);
	json_decref(patch);
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

static int fault_open(one_fault *f, const char *yaml, cep_err *err)
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

static void fault_inject(one_fault *f)
{
	cep_fault_ctx ctx = {.sink = S.sink, .fault_id = "f1"};
	cep_err err = {0};
	cr_assert_eq(f->ops->inject(f->it, &ctx, &f->state, &err), CEP_OK,
	    "inject: %s", err.msg);
}

static void fault_revert(one_fault *f)
{
	cep_err err = {0};
	cr_assert_eq(f->ops->revert(f->state, &err), CEP_OK, "revert: %s",
	    err.msg);
	f->state = NULL;
}

static void fault_close(one_fault *f)
{
	free(f->undo);
	cep_exp_free(f->e);
}

/* Log events naming a deleted pod. */
static size_t deleted_events(void)
{
	size_t n = 0;
	for (size_t i = 0; i < runner_memsink_nevents(S.mem); i++) {
		Cep__V1__Event *e = runner_memsink_event(S.mem, i);
		if (e->type == CEP__V1__EVENT_TYPE__EVENT_LOG &&
		    strstr(e->text, "deleted pod shop/") != NULL)
			n++;
	}
	return n;
}

/* ---- pod-delete ---- */

Test(kube, pod_delete_count_only_in_namespace)
{
	create_deployment("shop", "web", 4);
	create_deployment("other", "web", 3);
	wait_ready("shop", "web", 4);
	wait_ready("other", "web", 3);
	json_t *shop = running("shop", "web"), *other = running("other", "web");
	cr_assert_eq(json_array_size(shop), 4);
	one_fault f;
	cep_err err = {0};
	cr_assert_eq(
	    fault_open(&f,
	        HEAD
	        "  faults:\n    - {name: pd, type: "
	        "pod-delete, labelSelector: app=web, count: 2, force: true}\n",
	        &err),
	    CEP_OK, "%s", err.msg);
	cr_assert(strstr(f.target, "in shop") != NULL, "%s", f.target);
	fault_inject(&f);
	cr_assert_eq(survivors(shop, "shop", "web"), 2,
	    "exactly 2 of the 4 pods in shop are deleted");
	cr_assert_eq(survivors(other, "other", "web"), 3,
	    "no pod outside the run's namespace is touched");
	cr_assert_eq(deleted_events(), 2, "one event per deleted pod");
	fault_revert(&f);
	fault_close(&f);
	json_decref(shop);
	json_decref(other);
}

Test(kube, pod_delete_percentage_capped_by_max_targets)
{
	create_deployment("shop", "web", 5);
	wait_ready("shop", "web", 5);
	json_t *before = running("shop", "web");
	one_fault f;
	cep_err err = {0};
	/* 50% of 5 rounded up = 3, but the policy allows 2 */
	runner_kube_target_set(K, "shop", 2);
	cr_assert_eq(fault_open(&f,
	                 HEAD
	                 "  faults:\n    - {name: pd, type: "
	                 "pod-delete, labelSelector: app=web, percentage: 50%, "
	                 "gracePeriod: 0s}\n",
	                 &err),
	    CEP_OK, "%s", err.msg);
	fault_inject(&f);
	cr_assert_eq(survivors(before, "shop", "web"), 3, "capped at 2");
	fault_revert(&f);
	fault_close(&f);
	json_decref(before);

	/* without the cap: 3 of 5 */
	wait_ready("shop", "web", 5);
	before = running("shop", "web");
	runner_kube_target_set(K, "shop", 10);
	cr_assert_eq(
	    fault_open(&f,
	        HEAD
	        "  faults:\n    - {name: pd, type: "
	        "pod-delete, labelSelector: app=web, percentage: 50%, force: "
	        "true}\n",
	        &err),
	    CEP_OK, "%s", err.msg);
	fault_inject(&f);
	cr_assert_eq(survivors(before, "shop", "web"), 2, "50%% of 5 = 3");
	fault_revert(&f);
	fault_close(&f);
	json_decref(before);
}

Test(kube, pod_delete_missing_permission_names_the_verb)
{
	create_deployment("shop", "web", 2);
	wait_ready("shop", "web", 2);
	char *kc = kubeapi_kubeconfig(F, "runner");
	cep_kube *rk = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_kube_from_kubeconfig(kc, NULL, false, &rk, &err),
	    CEP_OK, "%s", err.msg);
	free(kc);
	runner_kube_target_set(rk, "shop", 10);
	json_t *before = running("shop", "web");
	one_fault f;
	int rc = fault_open(&f,
	    HEAD "  faults:\n    - {name: pd, type: "
	         "pod-delete, labelSelector: app=web, count: 1}\n",
	    &err);
	cr_assert_eq(rc, CEP_PERMISSION_DENIED, "%d %s", rc, err.msg);
	cr_assert(strstr(err.msg, "delete pods in shop") != NULL, "%s",
	    err.msg);
	cr_assert_eq(survivors(before, "shop", "web"), 2, "nothing deleted");
	fault_close(&f);
	json_decref(before);
	runner_kube_target_reset();
	cep_kube_free(rk);
}

/* ---- deployment-scale ---- */

Test(kube, deployment_scale_scales_and_restores)
{
	create_deployment("shop", "api", 3);
	wait_ready("shop", "api", 3);
	one_fault f;
	cep_err err = {0};
	cr_assert_eq(fault_open(&f,
	                 HEAD
	                 "  faults:\n    - {name: sc, type: "
	                 "deployment-scale, deployment: api, replicas: 1}\n",
	                 &err),
	    CEP_OK, "%s", err.msg);
	/* the original is recorded before anything changes */
	cr_assert(strstr(f.undo, "\"replicas\":3") != NULL, "%s", f.undo);
	cr_assert_eq(deploy_field("shop", "api", "spec", "replicas"), 3);
	fault_inject(&f);
	cr_assert_eq(deploy_field("shop", "api", "spec", "replicas"), 1);
	wait_ready("shop", "api", 1);
	fault_revert(&f);
	cr_assert_eq(deploy_field("shop", "api", "spec", "replicas"), 3);
	wait_ready("shop", "api", 3);
	fault_close(&f);
}

static cep_kube *resolver(const char *run_id, char *ns, size_t nslen, void *arg)
{
	(void)run_id;
	snprintf(ns, nslen, "%s", (const char *)arg);
	return K;
}

static int delegate_undo(const char *mechanism, const char *undo, cep_err *err)
{
	Cep__V1__FaultRecord rec = CEP__V1__FAULT_RECORD__INIT;
	rec.run_id = (char *)"r-0123456789abcdef";
	rec.fault_id = (char *)"f1";
	rec.mechanism = (char *)mechanism;
	rec.undo = (char *)undo;
	return cep_undo_apply(&UC, &rec, err);
}

Test(kube, deployment_scale_undone_by_the_delegate)
{
	create_deployment("shop", "api", 2);
	wait_ready("shop", "api", 2);
	one_fault f;
	cep_err err = {0};
	cr_assert_eq(fault_open(&f,
	                 HEAD
	                 "  faults:\n    - {name: sc, type: "
	                 "deployment-scale, deployment: api, replicas: 0}\n",
	                 &err),
	    CEP_OK, "%s", err.msg);
	fault_inject(&f);
	cr_assert_eq(deploy_field("shop", "api", "spec", "replicas"), 0);
	/* the runner is gone: no client at first, then a client whose run
	 * namespace differs (a forged record), then the right one */
	cr_assert_eq(delegate_undo("k8s-scale", f.undo, &err),
	    CEP_FAILED_PRECONDITION);
	UC = (cep_undo_ctx){resolver, (void *)"other"};
	cr_assert_eq(delegate_undo("k8s-scale", f.undo, &err),
	    CEP_PERMISSION_DENIED);
	cr_assert_eq(deploy_field("shop", "api", "spec", "replicas"), 0);
	UC = (cep_undo_ctx){resolver, (void *)"shop"};
	cr_assert_eq(delegate_undo("k8s-scale", f.undo, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(deploy_field("shop", "api", "spec", "replicas"), 2);
	/* a record is runner input: malformed ones are refused untouched */
	cr_assert_eq(cep_undo_k8s_scale(K,
	                 "{\"namespace\": \"shop\", "
	                 "\"name\": \"../x\", \"replicas\": 1}",
	                 &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_undo_k8s_scale(K, "[1]", &err), CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_undo_k8s_cordon(K,
	                 "{\"nodes\": [{\"name\": "
	                 "\"node-1\"}]}",
	                 &err),
	    CEP_INVALID_ARGUMENT);
	/* idempotent, and the runner's own revert after it too */
	cr_assert_eq(delegate_undo("k8s-scale", f.undo, &err), CEP_OK, "%s",
	    err.msg);
	fault_revert(&f);
	cr_assert_eq(deploy_field("shop", "api", "spec", "replicas"), 2);
	fault_close(&f);
}

/* ---- node-cordon ---- */

Test(kube, node_cordon_restores_exactly)
{
	cordon_by_hand("node-2");
	one_fault f;
	cep_err err = {0};
	cr_assert_eq(fault_open(&f,
	                 HEAD
	                 "  faults:\n    - {name: nc, type: "
	                 "node-cordon, nodeSelector: kubernetes.io/os=linux}\n",
	                 &err),
	    CEP_OK, "%s", err.msg);
	cr_assert(strstr(f.undo,
	              "{\"name\":\"node-2\",\"unschedulable\":true}") != NULL,
	    "%s", f.undo);
	fault_inject(&f);
	cr_assert(node_cordoned("node-1") && node_cordoned("node-2") &&
	    node_cordoned("node-3"));
	fault_revert(&f);
	cr_assert(!node_cordoned("node-1"));
	cr_assert(node_cordoned("node-2"), "cordoned before: stays cordoned");
	cr_assert(!node_cordoned("node-3"));
	fault_close(&f);
}

Test(kube, node_cordon_capped_and_undone_by_the_delegate)
{
	runner_kube_target_set(K, "shop", 2);
	one_fault f;
	cep_err err = {0};
	cr_assert_eq(fault_open(&f,
	                 HEAD
	                 "  faults:\n    - {name: nc, type: "
	                 "node-cordon, nodeSelector: kubernetes.io/os=linux}\n",
	                 &err),
	    CEP_OK, "%s", err.msg);
	fault_inject(&f);
	cr_assert(node_cordoned("node-1") && node_cordoned("node-2"));
	cr_assert(!node_cordoned("node-3"), "capped at maxTargets 2");
	UC = (cep_undo_ctx){resolver, (void *)"shop"};
	cr_assert_eq(delegate_undo("k8s-cordon", f.undo, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert(!node_cordoned("node-1") && !node_cordoned("node-2"));
	fault_revert(&f);
	fault_close(&f);
}

/* ---- node-taint ---- */

static void taint_by_hand(const char *name, const char *key, const char *value,
    const char *effect)
{
	json_t *patch = json_pack("{s:{s:[{s:s, s:s, s:s}]}}", "spec", "taints",
	    "key", key, "value", value, "effect", effect);
	cep_err err = {0};
	cr_assert_eq(cep_kube_patch(K,
	                 &(cep_kube_patch_req){.res = &cep_kube_nodes,
	                     .name = name,
	                     .type = CEP_KUBE_MERGE_PATCH,
	                     .patch = patch},
	                 NULL, &err),
	    CEP_OK, "%s", err.msg);
	json_decref(patch);
}

/* The node's taints as "key=value:effect;..." in their order. */
static char *taints_of(const char *name)
{
	json_t *obj = NULL, *t;
	cep_err err = {0};
	cr_assert_eq(cep_kube_get(K, &cep_kube_nodes, NULL, name, &obj, &err),
	    CEP_OK, "%s", err.msg);
	char *out = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&out, &len);
	json_array_foreach(json_object_get(json_object_get(obj, "spec"),
	                       "taints"),
	    i, t)
	{
		const char *v = json_string_value(json_object_get(t, "value"));
		fprintf(f, "%s=%s:%s;",
		    json_string_value(json_object_get(t, "key")), v ? v : "",
		    json_string_value(json_object_get(t, "effect")));
	}
	fclose(f);
	json_decref(obj);
	return out;
}

static void assert_taints(const char *node, const char *want)
{
	char *got = taints_of(node);
	cr_assert_str_eq(got, want, "node %s", node);
	free(got);
}

Test(kube, node_taint_removes_exactly_its_own)
{
	taint_by_hand("node-1", "team", "", "NoExecute");
	taint_by_hand("node-2", "cep.io/chaos", "old", "NoSchedule");
	one_fault f;
	cep_err err = {0};
	cr_assert_eq(fault_open(&f,
	                 HEAD "  faults:\n    - {name: nt, type: node-taint, "
	                      "nodeSelector: kubernetes.io/os=linux, key: "
	                      "cep.io/chaos, value: on}\n",
	                 &err),
	    CEP_OK, "%s", err.msg);
	cr_assert(strstr(f.undo,
	              "{\"had\":{\"effect\":\"NoSchedule\","
	              "\"key\":\"cep.io/chaos\",\"value\":\"old\"},"
	              "\"name\":\"node-2\"}") != NULL,
	    "%s", f.undo);
	fault_inject(&f);
	assert_taints("node-1", "team=:NoExecute;cep.io/chaos=on:NoSchedule;");
	assert_taints("node-2", "cep.io/chaos=on:NoSchedule;");
	assert_taints("node-3", "cep.io/chaos=on:NoSchedule;");
	fault_revert(&f);
	assert_taints("node-1", "team=:NoExecute;");
	assert_taints("node-2", "cep.io/chaos=old:NoSchedule;");
	assert_taints("node-3", "");
	fault_close(&f);
}

Test(kube, node_taint_undone_by_the_delegate)
{
	one_fault f;
	cep_err err = {0};
	cr_assert_eq(fault_open(&f,
	                 HEAD "  faults:\n    - {name: nt, type: node-taint, "
	                      "node: node-3, key: chaos, effect: NoExecute}\n",
	                 &err),
	    CEP_OK, "%s", err.msg);
	fault_inject(&f);
	assert_taints("node-3", "chaos=:NoExecute;");
	UC = (cep_undo_ctx){resolver, (void *)"shop"};
	cr_assert_eq(delegate_undo("k8s-taint", f.undo, &err), CEP_OK, "%s",
	    err.msg);
	assert_taints("node-3", "");
	cr_assert_eq(cep_undo_k8s_taint(K,
	                 "{\"taint\": {\"key\": \"x\"}, "
	                 "\"nodes\": []}",
	                 &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_undo_k8s_taint(K,
	                 "{\"taint\": {\"key\": \"x\", \"effect\": "
	                 "\"NoSchedule\"}, \"nodes\": [{\"name\": \"../n\"}]}",
	                 &err),
	    CEP_INVALID_ARGUMENT);
	/* idempotent, and the runner's own revert after it too */
	cr_assert_eq(delegate_undo("k8s-taint", f.undo, &err), CEP_OK, "%s",
	    err.msg);
	fault_revert(&f);
	assert_taints("node-3", "");
	fault_close(&f);
}

/* Litmus's NODE_LABEL acts on one node: count caps the selection */
Test(kube, node_taint_count_of_the_selected)
{
	one_fault f;
	cep_err err = {0};
	cr_assert_eq(fault_open(&f,
	                 HEAD "  faults:\n    - {name: nt, type: node-taint, "
	                      "nodeSelector: kubernetes.io/os=linux, count: 2, "
	                      "key: chaos}\n",
	                 &err),
	    CEP_OK, "%s", err.msg);
	cr_assert(strstr(f.target, "2 of 3 nodes") != NULL, "%s", f.target);
	fault_inject(&f);
	assert_taints("node-1", "chaos=:NoSchedule;");
	assert_taints("node-2", "chaos=:NoSchedule;");
	assert_taints("node-3", "");
	fault_revert(&f);
	assert_taints("node-1", "");
	assert_taints("node-2", "");
	fault_close(&f);
}

/* ---- the k8s probe ---- */

static bool probe(const char *params, char *detail, size_t dlen)
{
	char yaml[1024];
	snprintf(yaml, sizeof(yaml),
	    HEAD "  probes:\n    - {name: p, type: "
	         "k8s, mode: edge, %s}\n",
	    params);
	cep_exp *e = rt_parse(yaml);
	uint32_t lat = 0;
	bool ok = runner_probe_check(cep_exp_probe(e, 0), NULL, detail, dlen,
	    &lat);
	cep_exp_free(e);
	return ok;
}

Test(kube, probe_ready_replicas)
{
	char d[CEP_PROBE_DETAIL_MAX];
	create_deployment("shop", "web", 3);
	wait_ready("shop", "web", 3);
	cr_assert(probe("resource: deployments, objectName: web, check: field, "
	                "field: status.readyReplicas, atLeast: 3",
	              d, sizeof(d)),
	    "%s", d);
	cr_assert_str_eq(d, "status.readyReplicas=3, want >= 3");
	cr_assert(probe("resource: deployments, objectName: web, check: field, "
	                "field: status.readyReplicas, equals: \"3\"",
	              d, sizeof(d)),
	    "%s", d);
	cr_assert(!probe("resource: deployments, objectName: web, check: "
	                 "field, field: status.readyReplicas, equals: \"4\"",
	    d, sizeof(d)));
	cr_assert_str_eq(d, "status.readyReplicas=3, want 4");
	cr_assert(probe("resource: pods, labelSelector: app=web, check: field, "
	                "field: status.phase, equals: Running",
	              d, sizeof(d)),
	    "%s", d);
	cr_assert(probe("resource: deployments, objectName: web", d, sizeof(d)),
	    "%s", d);
	cr_assert(
	    !probe("resource: deployments, objectName: nope", d, sizeof(d)));
	cr_assert(probe("resource: deployments, objectName: nope, check: "
	                "absent",
	              d, sizeof(d)),
	    "%s", d);
	/* scaled to 1: the readyReplicas probe fails, saying what it saw */
	json_t *patch = json_pack("{s:{s:i}}", "spec", "replicas", 1);
	cep_err err = {0};
	cr_assert_eq(cep_kube_patch(K,
	                 &(cep_kube_patch_req){.res = &cep_kube_deployments,
	                     .ns = "shop",
	                     .name = "web",
	                     .sub = "scale",
	                     .type = CEP_KUBE_MERGE_PATCH,
	                     .patch = patch},
	                 NULL, &err),
	    CEP_OK, "%s", err.msg);
	json_decref(patch);
	wait_ready("shop", "web", 1);
	cr_assert(!probe("resource: deployments, objectName: web, check: "
	                 "field, field: status.readyReplicas, atLeast: 3",
	    d, sizeof(d)));
	cr_assert_str_eq(d, "status.readyReplicas=1, want >= 3");
}

/* ---- a whole run: pod-delete with a probe, through the engine ---- */

Test(kube, engine_run_pod_delete)
{
	create_deployment("shop", "web", 3);
	wait_ready("shop", "web", 3);
	json_t *before = running("shop", "web");
	cep_exp *e = rt_parse(
	    "apiVersion: cep.io/v1\nkind: Experiment\nmetadata:\n  name: t\n"
	    "spec:\n  target: {kind: kubernetes, connector: c, namespace: "
	    "shop}\n  duration: 1s\n"
	    "  faults:\n    - {name: pd, type: pod-delete, labelSelector: "
	    "app=web, count: 1, force: true}\n"
	    "  probes:\n    - {name: ready, type: k8s, mode: end-of-test, "
	    "resource: deployments, objectName: web, check: field, field: "
	    "status.readyReplicas, atLeast: 3, attempts: 20, interval: 500ms}\n");
	cep_runner_result res;
	runner_engine_run(e, S.sink, &res);
	cep_exp_free(e);
	cr_assert_str_eq(res.verdict, "Pass", "%s: %s", res.verdict,
	    res.reason);
	cr_assert_eq(survivors(before, "shop", "web"), 2);
	cr_assert_eq(runner_memsink_nrecords(S.mem), 1);
	cr_assert_eq(runner_memsink_nreverted(S.mem), 1);
	json_decref(before);
}

/* ---- a 403 in mid-run ends the run with the reason ---- */

typedef struct revoker {
	json_t *before;
	bool revoked;
} revoker;

/* Takes `delete pods` away once the first round has deleted a pod. */
static void *revoke_after_first(void *arg)
{
	revoker *rv = arg;
	int64_t end = cep_clock_mono_ms() + 20000;
	while (cep_clock_mono_ms() < end &&
	    survivors(rv->before, "shop", "web") == json_array_size(rv->before))
		cep_clock_sleep_ms(50);
	rv->revoked =
	    kubeapi_control(F, "revoke",
	        "{\"user\": \"deleter\", "
	        "\"namespace\": \"shop\", \"resource\": \"pods\", \"verb\": "
	        "\"delete\"}") == 200;
	return NULL;
}

Test(kube, pod_delete_403_mid_run_is_the_run_error)
{
	create_deployment("shop", "web", 3);
	wait_ready("shop", "web", 3);
	char *kc = kubeapi_kubeconfig(F, "deleter");
	cep_kube *dk = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_kube_from_kubeconfig(kc, NULL, false, &dk, &err),
	    CEP_OK, "%s", err.msg);
	free(kc);
	runner_kube_target_set(dk, "shop", 10);
	revoker rv = {.before = running("shop", "web")};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, revoke_after_first, &rv), 0);
	cep_exp *e = rt_parse(HEAD
	    "  faults:\n    - {name: pd, type: "
	    "pod-delete, labelSelector: app=web, count: 1, interval: 1s, force: "
	    "true}\n");
	int64_t t0 = cep_clock_mono_ms();
	cep_runner_result res;
	runner_engine_run(e, S.sink, &res);
	pthread_join(t, NULL);
	cep_exp_free(e);
	cr_assert(rv.revoked, "the revoke control failed");
	cr_assert_str_eq(res.verdict, "Error", "%s: %s", res.verdict,
	    res.reason);
	cr_assert(strstr(res.reason, "403") != NULL &&
	        strstr(res.reason, "delete") != NULL,
	    "%s", res.reason);
	cr_assert_lt(cep_clock_mono_ms() - t0, 25000,
	    "chaos (30s) ended early");
	cr_assert_eq(runner_memsink_nreverted(S.mem), 1);
	json_decref(rv.before);
	runner_kube_target_reset();
	cep_kube_free(dk);
}
