/*
 * test_kube_faults.c - the Kubernetes faults and the k8s probe against the
 * Kubernetes API test server (tests/kubeapi): pod-delete picks exactly
 * count / percentage of the matching Running pods, only in the run's
 * namespace and never more than maxTargets; deployment-scale restores
 * what it changed (read back from the server), also through
 * lib/undo/undo.c as the delegate does when the runner died (the node
 * faults: test_kube_nodes.c); a missing
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

#include "engine.h"
#include "kubefault.h"
#include "pod_select.h"
#include "probe.h"

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

static void label_deployment(const char *ns, const char *name, const char *key,
    const char *val)
{
	patch_by_hand(&cep_kube_deployments, ns, name,
	    json_pack("{s:{s:{s:s}}}", "metadata", "labels", key, val));
}

/* Litmus's pod-autoscaler: every Deployment of a label, each restored to
 * its own replicas, also by the delegate */
Test(kube, deployment_scale_by_label_restores_each)
{
	create_deployment("shop", "api", 2);
	create_deployment("shop", "web", 3);
	create_deployment("shop", "db", 1);
	create_deployment("other", "api2", 1);
	label_deployment("shop", "api", "tier", "front");
	label_deployment("shop", "web", "tier", "front");
	label_deployment("other", "api2", "tier", "front"); /* not the run's */
	one_fault f;
	cep_err err = {0};
	cr_assert_eq(fault_open(&f,
	                 HEAD "  faults:\n    - {name: sc, type: "
	                      "deployment-scale, labelSelector: tier=front, "
	                      "replicas: 5}\n",
	                 &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_str_eq(f.undo,
	    "{\"namespace\":\"shop\",\"objects\":[{\"name\":\"api\","
	    "\"replicas\":2},{\"name\":\"web\",\"replicas\":3}]}");
	fault_inject(&f);
	cr_assert_eq(deploy_field("shop", "api", "spec", "replicas"), 5);
	cr_assert_eq(deploy_field("shop", "web", "spec", "replicas"), 5);
	cr_assert_eq(deploy_field("shop", "db", "spec", "replicas"), 1);
	cr_assert_eq(deploy_field("other", "api2", "spec", "replicas"), 1);
	UC = (cep_undo_ctx){resolver, (void *)"shop"};
	cr_assert_eq(delegate_undo("k8s-scale", f.undo, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(deploy_field("shop", "api", "spec", "replicas"), 2);
	cr_assert_eq(deploy_field("shop", "web", "spec", "replicas"), 3);
	cr_assert_eq(cep_undo_k8s_scale(K,
	                 "{\"namespace\": \"shop\", \"objects\": [{\"name\": "
	                 "\"api\"}]}",
	                 &err),
	    CEP_INVALID_ARGUMENT);
	fault_revert(&f);
	cr_assert_eq(deploy_field("shop", "api", "spec", "replicas"), 2);
	cr_assert_eq(deploy_field("shop", "web", "spec", "replicas"), 3);
	fault_close(&f);
	/* none matching: refused before anything is recorded */
	cr_assert_eq(fault_open(&f,
	                 HEAD "  faults:\n    - {name: sc, type: "
	                      "deployment-scale, labelSelector: tier=none, "
	                      "replicas: 5}\n",
	                 &err),
	    CEP_NOT_FOUND);
	cr_assert(strstr(err.msg, "no Deployment in shop matches tier=none"),
	    "%s", err.msg);
	fault_close(&f);
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

/* Pods chosen by label selector for a node-level fault (pod_select.h):
 * count or percentage (rounded up) of the Running pods, distinct, capped
 * by maxTargets; none matching is an error naming the selector. */
Test(kube, pods_chosen_by_selector)
{
	create_deployment("shop", "api", 5);
	wait_ready("shop", "api", 5);
	json_t *run = running("shop", "api");
	char pods[8][254];
	size_t n, matching;
	bool capped;
	cep_err err = {0};
	cr_assert_eq(runner_podsel_choose("app=api", 3, 0, NULL, pods, 8, &n,
	                 &matching, &capped, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(n, 3);
	cr_assert_eq(matching, 5);
	cr_assert(!capped);
	for (size_t i = 0; i < n; i++) {
		cr_assert(in_list(run, pods[i]),
		    "%s is not a Running app=api pod", pods[i]);
		for (size_t j = 0; j < i; j++)
			cr_assert_str_neq(pods[i], pods[j]);
	}
	cr_assert_eq(runner_podsel_choose("app=api", 0, 50, NULL, pods, 8, &n,
	                 &matching, &capped, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(n, 3, "50%% of 5 rounded up");
	runner_kube_target_set(K, "shop", 2);
	cr_assert_eq(runner_podsel_choose("app=api", 0, 100, NULL, pods, 8, &n,
	                 &matching, &capped, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(n, 2, "policy.kubernetes.maxTargets");
	cr_assert(capped);
	cr_assert_eq(runner_podsel_choose("app=none", 1, 0, NULL, pods, 8, &n,
	                 &matching, &capped, &err),
	    CEP_FAILED_PRECONDITION);
	cr_assert_eq(n, 0);
	cr_assert(strstr(err.msg, "no Running pod matches app=none in shop"),
	    "%s", err.msg);
	/* a runner on a node holding none of them: the share is of all five,
	 * chosen on its node only, so it refuses and says where it is */
	cr_assert_eq(runner_podsel_choose("app=api", 1, 0, "node-elsewhere",
	                 pods, 8, &n, &matching, &capped, &err),
	    CEP_FAILED_PRECONDITION);
	cr_assert_eq(n, 0);
	cr_assert_eq(matching, 5);
	cr_assert(strstr(err.msg, "0 of them on node node-elsewhere"), "%s",
	    err.msg);
	json_decref(run);
}
