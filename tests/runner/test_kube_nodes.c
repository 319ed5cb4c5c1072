/*
 * test_kube_nodes.c - the node faults against the Kubernetes API test
 * server (tests/kubeapi): node-cordon, node-taint and node-drain change
 * exactly the chosen nodes and restore what they changed (read back from
 * the server), also through lib/undo as the delegate does when the runner
 * died. Every check reads the server's state, never a return value alone.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubefault.h"

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
	patch_by_hand(&cep_kube_nodes, NULL, name,
	    json_pack("{s:{s:[{s:s, s:s, s:s}]}}", "spec", "taints", "key", key,
	        "value", value, "effect", effect));
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

/* ---- node-drain ---- */

static const cep_kube_res pdbs = {"policy/v1", "poddisruptionbudgets",
    "PodDisruptionBudget", true};

/* A pod the drain must leave, bound to node: the kubelet's mirror of a
 * static pod ('m'), one of cep's own ('c') or a DaemonSet's ('d'). */
static void bare_pod(const char *name, const char *node, char what)
{
	json_t *p = json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:[{s:s, s:s}]}}",
	    "apiVersion", "v1", "kind", "Pod", "metadata", "name", name, "spec",
	    "nodeName", node, "containers", "name", "c", "image", "nginx");
	json_t *md = json_object_get(p, "metadata");
	if (what == 'm')
		json_object_set_new(md, "annotations",
		    json_pack("{s:s}", "kubernetes.io/config.mirror", "x"));
	else if (what == 'c')
		json_object_set_new(md, "labels",
		    json_pack("{s:s}", "app.kubernetes.io/managed-by", "cep"));
	else
		json_object_set_new(md, "ownerReferences",
		    json_pack("[{s:s, s:s, s:s, s:s, s:b}]", "apiVersion",
		        "apps/v1", "kind", "DaemonSet", "name", "agent", "uid",
		        "0b5c7a52-0c4e-4f7a-9d3e-5a1f2b3c4d5e", "controller",
		        1));
	cep_err err = {0};
	cr_assert_eq(cep_kube_create(K, &cep_kube_pods, "shop", p, NULL, &err),
	    CEP_OK, "%s", err.msg);
	json_decref(p);
}

/* Pods of app=name on node, not terminating. */
static size_t on_node(const char *app, const char *node)
{
	char sel[64], fs[64];
	snprintf(sel, sizeof(sel), "app=%s", app);
	snprintf(fs, sizeof(fs), "spec.nodeName=%s", node);
	cep_kube_list_opts o = {.label_selector = app ? sel : NULL,
	    .field_selector = fs};
	json_t *items = NULL, *p;
	cep_err err = {0};
	cr_assert_eq(cep_kube_list(K, &cep_kube_pods, "shop", &o, &items, NULL,
	                 0, &err),
	    CEP_OK, "%s", err.msg);
	size_t n = 0, i;
	json_array_foreach(items, i, p)
	    n += json_object_get(json_object_get(p, "metadata"),
	             "deletionTimestamp") == NULL;
	json_decref(items);
	return n;
}

static size_t log_events(const char *needle)
{
	size_t n = 0;
	for (size_t i = 0; i < runner_memsink_nevents(S.mem); i++) {
		Cep__V1__Event *e = runner_memsink_event(S.mem, i);
		n += e->type == CEP__V1__EVENT_TYPE__EVENT_LOG &&
		    strstr(e->text, needle) != NULL;
	}
	return n;
}

Test(kube, node_drain_evicts_all_but_mirror_daemonset_and_cep_pods)
{
	create_deployment("shop", "api", 3);
	wait_ready("shop", "api", 3);
	cr_assert_eq(on_node("api", "node-1"), 3, "the scheduler's first node");
	bare_pod("static-web", "node-1", 'm');
	bare_pod("cep-runner-x", "node-1", 'c');
	bare_pod("agent-x", "node-1", 'd');
	one_fault f;
	cep_err err = {0};
	cr_assert_eq(fault_open(&f,
	                 HEAD "  faults:\n    - {name: nd, type: node-drain, "
	                      "node: node-1}\n",
	                 &err),
	    CEP_OK, "%s", err.msg);
	fault_inject(&f);
	cr_assert(node_cordoned("node-1"));
	cr_assert_eq(on_node("api", "node-1"), 0, "every api pod evicted");
	cr_assert_eq(log_events("3 of 3 pods evicted"), 1);
	cr_assert_eq(log_events("left: a mirror pod"), 1);
	cr_assert_eq(log_events("left: cep's own"), 1);
	cr_assert_eq(log_events("left: owned by a DaemonSet"), 1);
	cr_assert_eq(on_node(NULL, "node-1"), 3, "the three left alone stay");
	/* the controller replaces the evicted pods elsewhere */
	wait_ready("shop", "api", 3);
	cr_assert_eq(on_node("api", "node-2"), 3);
	fault_revert(&f);
	cr_assert(!node_cordoned("node-1"), "revert uncordons");
	cr_assert_eq(on_node("api", "node-1"), 0, "evicted pods stay evicted");
	fault_close(&f);
}

Test(kube, node_drain_retries_a_disruption_budget_then_undone)
{
	create_deployment("shop", "api", 2);
	wait_ready("shop", "api", 2);
	json_t *pdb = json_pack("{s:s, s:s, s:{s:s}, s:{s:i, s:{s:{s:s}}}}",
	    "apiVersion", "policy/v1", "kind", "PodDisruptionBudget",
	    "metadata", "name", "api", "spec", "minAvailable", 2, "selector",
	    "matchLabels", "app", "api");
	cep_err err = {0};
	cr_assert_eq(cep_kube_create(K, &pdbs, "shop", pdb, NULL, &err), CEP_OK,
	    "%s", err.msg);
	json_decref(pdb);
	one_fault f;
	cr_assert_eq(fault_open(&f,
	                 HEAD "  faults:\n    - {name: nd, type: node-drain, "
	                      "nodeSelector: kubernetes.io/hostname=node-1}\n",
	                 &err),
	    CEP_OK, "%s", err.msg);
	fault_inject(&f);
	cr_assert(node_cordoned("node-1"));
	cr_assert_eq(on_node("api", "node-1"), 2, "the budget allows none");
	cr_assert_eq(log_events("not evicted (try 1)"), 2);
	cr_assert_lt(f.ops->next_tick(f.state), INT64_MAX, "tried again");
	/* the budget loosens: the next tries evict one, then the other once
	 * its replacement is ready (the budget counts healthy pods) */
	patch_by_hand(&pdbs, "shop", "api",
	    json_pack("{s:{s:i}}", "spec", "minAvailable", 1));
	cep_fault_ctx ctx = {.sink = S.sink, .fault_id = "f1"};
	for (int i = 0; i < 10 && f.ops->next_tick(f.state) < INT64_MAX; i++)
		f.ops->tick(f.state, &ctx);
	cr_assert_eq(f.ops->next_tick(f.state), INT64_MAX, "none pending");
	cr_assert_eq(on_node("api", "node-1"), 0, "both evicted in the end");
	cr_assert_eq(log_events("(after its disruption budget refused)"), 2);
	/* the runner dies: the delegate uncordons (k8s-cordon) */
	UC = (cep_undo_ctx){resolver, (void *)"shop"};
	cr_assert_eq(delegate_undo("k8s-cordon", f.undo, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert(!node_cordoned("node-1"));
	fault_revert(&f);
	cr_assert(!node_cordoned("node-1"));
	fault_close(&f);
}

/* A NoSchedule taint keeps new pods off the node while it lasts (the test
 * server schedules as a real scheduler does), and no longer after. */
Test(kube, node_taint_keeps_new_pods_off)
{
	one_fault f;
	cep_err err = {0};
	cr_assert_eq(fault_open(&f,
	                 HEAD "  faults:\n    - {name: nt, type: node-taint, "
	                      "nodeSelector: kubernetes.io/os=linux, count: 2, "
	                      "key: chaos}\n",
	                 &err),
	    CEP_OK, "%s", err.msg);
	fault_inject(&f);
	create_deployment("shop", "during", 2);
	wait_ready("shop", "during", 2);
	cr_assert_eq(on_node("during", "node-3"), 2, "node-1, -2 are tainted");
	fault_revert(&f);
	create_deployment("shop", "after", 1);
	wait_ready("shop", "after", 1);
	cr_assert_eq(on_node("after", "node-1"), 1);
	fault_close(&f);
}
