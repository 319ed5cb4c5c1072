/*
 * test_exp_kube.c - the Kubernetes fault and probe types in the experiment
 * model: their parameters and defaults, errors with file:line:col, and
 * the rule that kubernetes types only run on kubernetes targets and host
 * types only on host targets.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))

/* 7 lines; the first item of a list starts on line 9 at column 7 */
#define KUBE                                                               \
	"apiVersion: cep.io/v1\n"                                          \
	"kind: Experiment\n"                                               \
	"metadata:\n"                                                      \
	"  name: t\n"                                                      \
	"spec:\n"                                                          \
	"  target: {kind: kubernetes, connector: prod, namespace: shop}\n" \
	"  duration: 30s\n"
#define HOST                       \
	"apiVersion: cep.io/v1\n"  \
	"kind: Experiment\n"       \
	"metadata:\n"              \
	"  name: t\n"              \
	"spec:\n"                  \
	"  target: {kind: host}\n" \
	"  duration: 30s\n"

static cep_exp *parse_ok(const char *text)
{
	cep_exp *e = NULL;
	cep_err err = {0};
	int rv = cep_exp_parse(text, strlen(text), "e.yaml", &e, NULL, &err);
	cr_assert_eq(rv, CEP_OK, "parse failed: %s", err.msg);
	return e;
}

static void expect_one(const char *text, const char *want)
{
	cep_exp *e = NULL;
	cep_exp_diags d;
	cep_err err = {0};
	int rv = cep_exp_parse(text, strlen(text), "e.yaml", &e, &d, &err);
	cr_assert_eq(rv, CEP_INVALID_ARGUMENT, "rv %d: %s", rv, err.msg);
	cr_assert_null(e);
	cr_assert_eq(d.n, 1, "%zu messages, first: %s", d.n, d.msgs[0]);
	assert_contains(d.msgs[0], want);
}

Test(exp_kube, types_listed)
{
	const char *const *f = cep_exp_fault_types();
	int seen = 0, npod = 0;
	for (size_t i = 0; f[i] != NULL; i++) {
		const cep_exp_type_spec *ts = cep_exp_fault_spec(f[i]);
		cr_assert_not_null(ts, "%s", f[i]);
		bool kube = strcmp(f[i], "pod-delete") == 0 ||
		    strcmp(f[i], "deployment-scale") == 0 ||
		    strcmp(f[i], "node-cordon") == 0 ||
		    strcmp(f[i], "node-taint") == 0 ||
		    strcmp(f[i], "node-drain") == 0;
		seen += kube;
		/* node-level faults work on both: on a pod in kubernetes */
		/* ...but container-kill, which only kubernetes restarts */
		if (ts->pod_target && strcmp(f[i], "container-kill") == 0) {
			cr_assert_str_eq(ts->target, "kubernetes");
			npod++;
			continue;
		}
		if (ts->pod_target) {
			cr_assert_null(ts->target, "%s", f[i]);
			npod++;
			continue;
		}
		cr_assert_not_null(ts->target, "%s has no target kind", f[i]);
		cr_assert_str_eq(ts->target, kube ? "kubernetes" : "host", "%s",
		    f[i]);
	}
	cr_assert_eq(seen, 5);
	cr_assert_eq(npod, 12);
	cr_assert(!cep_exp_fault_spec("process-kill")->pod_target);
	cr_assert_str_eq(cep_exp_probe_spec("k8s")->target, "kubernetes");
	cr_assert_null(cep_exp_probe_spec("http")->target);
	cr_assert_null(cep_exp_probe_spec("cmd")->target);
}

Test(exp_kube, params_and_defaults)
{
	cep_exp *e = parse_ok(KUBE
	    "  faults:\n"
	    "    - {name: pd, type: pod-delete, labelSelector: \"app=web\", "
	    "percentage: 50%, interval: 10s, gracePeriod: 5s}\n"
	    "    - {name: sc, type: deployment-scale, deployment: api, "
	    "replicas: 0}\n"
	    "    - {name: nc, type: node-cordon, node: node-1, duration: 10s}\n"
	    "  probes:\n"
	    "    - {name: p, type: k8s, mode: edge, resource: deployments, "
	    "objectName: web, check: field, field: status.readyReplicas, "
	    "atLeast: 3}\n"
	    "    - {name: q, type: k8s, mode: edge, resource: pods, "
	    "labelSelector: app=web}\n");
	const cep_exp_item *pd = cep_exp_fault(e, 0);
	cr_assert_str_eq(cep_exp_str(pd, "labelSelector"), "app=web");
	cr_assert_eq(cep_exp_int(pd, "percentage"), 50);
	cr_assert(!cep_exp_has(pd, "count"));
	cr_assert_eq(cep_exp_int(pd, "interval"), 10000);
	cr_assert_eq(cep_exp_int(pd, "gracePeriod"), 5000);
	cr_assert(!cep_exp_bool(pd, "force"));
	const cep_exp_item *sc = cep_exp_fault(e, 1);
	cr_assert_str_eq(cep_exp_str(sc, "deployment"), "api");
	cr_assert(cep_exp_has(sc, "replicas"));
	cr_assert_eq(cep_exp_int(sc, "replicas"), 0);
	cr_assert_eq(cep_exp_int(sc, "duration"), 30000, "spec.duration");
	cr_assert_eq(cep_exp_int(cep_exp_fault(e, 2), "duration"), 10000);
	const cep_exp_item *p = cep_exp_probe(e, 0);
	cr_assert_eq(cep_exp_int(p, "atLeast"), 3);
	cr_assert_str_eq(cep_exp_str(cep_exp_probe(e, 1), "check"), "present");
	cep_exp_free(e);
}

Test(exp_kube, kube_fault_on_host_target_refused)
{
	expect_one(HOST "  faults:\n"
	                "    - name: pd\n"
	                "      type: pod-delete\n"
	                "      labelSelector: app=web\n"
	                "      count: 1\n",
	    "e.yaml:10:13: spec.faults[0].type: fault type \"pod-delete\" acts "
	    "on kubernetes targets only, but spec.target.kind is host");
	/* no target at all is a host target */
	expect_one(
	    "apiVersion: cep.io/v1\nkind: Experiment\nmetadata: {name: t}\n"
	    "spec:\n  duration: 1s\n  probes:\n"
	    "    - {name: p, type: k8s, mode: edge, resource: pods, "
	    "objectName: x}\n",
	    "e.yaml:7:23: spec.probes[0].type: probe type \"k8s\" acts on "
	    "kubernetes targets only");
}

Test(exp_kube, host_fault_on_kube_target_refused)
{
	expect_one(KUBE "  faults:\n"
	                "    - {name: k, type: process-kill, process: web}\n",
	    "e.yaml:9:23: spec.faults[0].type: fault type \"process-kill\" acts "
	    "on host targets only, but spec.target.kind is kubernetes");
	/* http and cmd probes work on both */
	cep_exp *e = parse_ok(KUBE
	    "  probes:\n"
	    "    - {name: h, type: http, mode: edge, url: \"http://web\"}\n");
	cep_exp_free(e);
}

Test(exp_kube, bad_params_with_positions)
{
	expect_one(KUBE "  faults:\n"
	                "    - {name: pd, type: pod-delete, count: 1}\n",
	    "e.yaml:9:7: spec.faults[0]: missing required key 'labelSelector' "
	    "in fault 'pd'");
	expect_one(KUBE
	    "  faults:\n"
	    "    - {name: pd, type: pod-delete, labelSelector: a=b, count: 1, "
	    "percentage: 10}\n",
	    "spec.faults[0].percentage: both 'count' and 'percentage' given, "
	    "expected exactly one of count, percentage");
	expect_one(KUBE
	    "  faults:\n"
	    "    - {name: pd, type: pod-delete, labelSelector: a=b}\n",
	    "e.yaml:9:7: spec.faults[0]: none of count, percentage given");
	expect_one(KUBE
	    "  faults:\n"
	    "    - {name: sc, type: deployment-scale, deployment: api, "
	    "replicas: -1}\n",
	    "e.yaml:9:69: spec.faults[0].replicas: -1 is out of range");
	expect_one(KUBE
	    "  faults:\n"
	    "    - {name: nc, type: node-cordon, node: a, nodeSelector: b=c}\n",
	    "spec.faults[0].nodeSelector: both 'node' and 'nodeSelector'");
	expect_one(KUBE "  faults:\n"
	                "    - {name: nt, type: node-taint, node: a, key: k, "
	                "effect: NoWay}\n",
	    "spec.faults[0].effect: \"NoWay\" is not a known value");
	expect_one(KUBE "  faults:\n"
	                "    - {name: nt, type: node-taint, node: a}\n",
	    "spec.faults[0]: missing required key 'key'");
	expect_one(KUBE
	    "  faults:\n"
	    "    - {name: pd, type: pod-delete, labelSelector: a=b, count: 1, "
	    "namespace: other}\n",
	    "e.yaml:9:66: spec.faults[0].namespace: unknown key 'namespace' in "
	    "fault 'pd'");
	expect_one(KUBE
	    "  probes:\n"
	    "    - {name: p, type: k8s, mode: edge, resource: services, "
	    "objectName: x}\n",
	    "e.yaml:9:50: spec.probes[0].resource: \"services\" is not a known value");
	expect_one(KUBE
	    "  probes:\n"
	    "    - {name: p, type: k8s, mode: edge, resource: pods, "
	    "objectName: x, field: status.phase}\n",
	    "spec.probes[0].field: field is only used with check field");
}

/* Node-level faults on a kubernetes target name a pod (and maybe a
 * container); host resources are refused there, pods on host targets. */
Test(exp_kube, pod_targets)
{
	cep_exp *e = parse_ok(KUBE
	    "  faults:\n"
	    "    - {name: l, type: network-loss, pod: web-7d9f-x2k4q, "
	    "percent: 50}\n"
	    "    - {name: c, type: cpu-hog, pod: db.shard-0, container: pg}\n"
	    "    - {name: d, type: disk-fill, pod: web, path: /data, mib: 5}\n");
	const cep_exp_item *it = cep_exp_fault(e, 0);
	cr_assert_str_eq(cep_exp_str(it, "pod"), "web-7d9f-x2k4q");
	cr_assert(!cep_exp_has(it, "container"));
	cr_assert_str_eq(cep_exp_str(cep_exp_fault(e, 1), "container"), "pg");
	cep_exp_free(e);
	expect_one(KUBE "  faults:\n"
	                "    - {name: c, type: cpu-hog, workers: 1}\n",
	    "e.yaml:9:7: spec.faults[0]: fault type \"cpu-hog\" on a "
	    "kubernetes target acts on a pod: missing 'pod'");
	expect_one(KUBE "  faults:\n"
	                "    - {name: l, type: network-loss, percent: 5}\n",
	    "e.yaml:9:7: spec.faults[0]: none of pid, netns, pod, labelSelector given");
	expect_one(KUBE
	    "  faults:\n"
	    "    - {name: l, type: network-loss, pid: 42, percent: 5}\n",
	    "e.yaml:9:42: spec.faults[0].pid: pid names a host resource, but "
	    "spec.target.kind is kubernetes, expected pod");
	expect_one(KUBE
	    "  faults:\n"
	    "    - {name: c, type: cpu-hog, pod: w, cgroup: x.slice}\n",
	    "spec.faults[0].cgroup: cgroup names a host resource");
	expect_one(KUBE
	    "  faults:\n"
	    "    - {name: c, type: memory-hog, container: w, mib: 1}\n",
	    "e.yaml:9:7: spec.faults[0]: fault type \"memory-hog\" on a "
	    "kubernetes target acts on a pod: missing 'pod'");
	expect_one(HOST
	    "  faults:\n"
	    "    - {name: l, type: network-loss, pod: web, percent: 5}\n",
	    "e.yaml:9:42: spec.faults[0].pod: pod is for kubernetes targets, "
	    "but spec.target.kind is host");
	expect_one(KUBE
	    "  faults:\n"
	    "    - {name: l, type: network-loss, pod: Web_1, percent: 5}\n",
	    "spec.faults[0].pod: ");
	expect_one(KUBE
	    "  faults:\n"
	    "    - {name: l, type: network-loss, pod: \"a..b\", percent: 5}\n",
	    "a Kubernetes object name");
	expect_one(KUBE
	    "  faults:\n"
	    "    - {name: l, type: dns-error, pod: w, container: \"-x\", "
	    "names: [a.b]}\n",
	    "a DNS label");
}

/* Pods chosen like pod-delete chooses them: labelSelector with exactly
 * one of count and percentage, instead of pod (issue 14). */
Test(exp_kube, pod_targets_by_selector)
{
	cep_exp *e = parse_ok(KUBE
	    "  faults:\n"
	    "    - {name: l, type: network-loss, labelSelector: app=web, "
	    "count: 2, percent: 50}\n"
	    "    - {name: c, type: cpu-hog, labelSelector: \"app=db,tier!=x\", "
	    "percentage: 50%, container: pg}\n");
	const cep_exp_item *it = cep_exp_fault(e, 0);
	cr_assert_str_eq(cep_exp_str(it, "labelSelector"), "app=web");
	cr_assert_eq(cep_exp_int(it, "count"), 2);
	cr_assert(!cep_exp_has(it, "percentage"));
	cr_assert(!cep_exp_has(it, "pod"));
	it = cep_exp_fault(e, 1);
	cr_assert_eq(cep_exp_int(it, "percentage"), 50);
	cr_assert(!cep_exp_has(it, "count"));
	cr_assert_str_eq(cep_exp_str(it, "container"), "pg");
	cep_exp_free(e);
	expect_one(KUBE "  faults:\n"
	                "    - {name: c, type: cpu-hog, pod: w, "
	                "labelSelector: app=w, count: 1}\n",
	    "e.yaml:9:55: spec.faults[0].labelSelector: both 'pod' and "
	    "'labelSelector' given, expected exactly one of pod, labelSelector");
	expect_one(KUBE "  faults:\n"
	                "    - {name: l, type: network-loss, pod: w, "
	                "labelSelector: app=w, count: 1, percent: 5}\n",
	    "spec.faults[0].labelSelector: both 'pod' and 'labelSelector' "
	    "given");
	expect_one(KUBE "  faults:\n"
	                "    - {name: c, type: memory-hog, mib: 1}\n",
	    "e.yaml:9:7: spec.faults[0]: fault type \"memory-hog\" on a "
	    "kubernetes target acts on a pod: missing 'pod'");
	expect_one(KUBE "  faults:\n"
	                "    - {name: l, type: dns-error, names: [a.b]}\n",
	    "e.yaml:9:7: spec.faults[0]: none of pid, netns, pod, "
	    "labelSelector given");
	expect_one(KUBE "  faults:\n"
	                "    - {name: c, type: cpu-hog, labelSelector: a=b}\n",
	    "e.yaml:9:7: spec.faults[0]: labelSelector given without count "
	    "or percentage");
	expect_one(KUBE "  faults:\n"
	                "    - {name: c, type: cpu-hog, labelSelector: a=b, "
	                "count: 1, percentage: 10}\n",
	    "e.yaml:9:74: spec.faults[0].percentage: both 'count' and "
	    "'percentage' given");
	expect_one(KUBE "  faults:\n"
	                "    - {name: c, type: cpu-hog, pod: w, count: 1}\n",
	    "e.yaml:9:47: spec.faults[0].count: count is only used with "
	    "labelSelector");
	expect_one(KUBE "  faults:\n"
	                "    - {name: c, type: cpu-hog, labelSelector: a=b, "
	                "percentage: 0}\n",
	    "spec.faults[0].percentage: ");
	expect_one(HOST "  faults:\n"
	                "    - {name: c, type: cpu-hog, labelSelector: a=b, "
	                "count: 1}\n",
	    "spec.faults[0].labelSelector: labelSelector is for kubernetes "
	    "targets, but spec.target.kind is host");
}

Test(exp_kube, node_targets_of_the_hogs)
{
	cep_exp *e = parse_ok(KUBE
	    "  faults:\n"
	    "    - {name: c, type: cpu-hog, node: node-2, workers: 2}\n"
	    "    - {name: m, type: memory-hog, node: node-2, mib: 8}\n"
	    "    - {name: i, type: io-stress, node: node-2, path: /var/tmp}\n");
	cr_assert_str_eq(cep_exp_str(cep_exp_fault(e, 0), "node"), "node-2");
	cr_assert(!cep_exp_has(cep_exp_fault(e, 0), "pod"));
	cep_exp_free(e);
	expect_one(KUBE "  faults:\n"
	                "    - {name: c, type: cpu-hog, node: n, pod: w}\n",
	    "spec.faults[0].node: node and pod (or container, labelSelector) both given");
	expect_one(KUBE
	    "  faults:\n"
	    "    - {name: c, type: cpu-hog, node: n, container: w}\n",
	    "spec.faults[0].node: node and pod (or container, labelSelector) both given");
	expect_one(HOST "  faults:\n"
	                "    - {name: c, type: cpu-hog, node: n}\n",
	    "spec.faults[0].node: node is for kubernetes targets, but "
	    "spec.target.kind is host");
	expect_one(KUBE "  faults:\n"
	                "    - {name: c, type: cpu-hog, node: N_1}\n",
	    "spec.faults[0].node: ");
}

/* nodeSelector instead of node: equality labels only (what a Pod's
 * spec.nodeSelector says), not with node, pod or on a host. */
Test(exp_kube, node_selector_of_the_hogs)
{
	cep_exp *e = parse_ok(KUBE
	    "  faults:\n"
	    "    - {name: c, type: cpu-hog, nodeSelector: "
	    "\"role=db,topology.kubernetes.io/zone=a\"}\n"
	    "    - {name: i, type: io-stress, nodeSelector: \"role=db\"}\n");
	cr_assert_str_eq(cep_exp_str(cep_exp_fault(e, 0), "nodeSelector"),
	    "role=db,topology.kubernetes.io/zone=a");
	cep_exp_free(e);
	const char *bad[] = {"role", "role!=db", "role in (db)", "=db",
	    "role=db,", "a=b=c", "-x=y", "role=db,,zone=a"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char t[512];
		snprintf(t, sizeof(t),
		    KUBE "  faults:\n"
		         "    - {name: c, type: cpu-hog, nodeSelector: "
		         "\"%s\"}\n",
		    bad[i]);
		expect_one(t,
		    "spec.faults[0].nodeSelector: expected labels "
		    "key=value[,key=value...]");
	}
	expect_one(KUBE "  faults:\n"
	                "    - {name: c, type: cpu-hog, node: n, "
	                "nodeSelector: a=b}\n",
	    "spec.faults[0].nodeSelector: both 'node' and 'nodeSelector' "
	    "given");
	expect_one(KUBE "  faults:\n"
	                "    - {name: c, type: cpu-hog, nodeSelector: a=b, "
	                "pod: w}\n",
	    "spec.faults[0].nodeSelector: nodeSelector and pod (or container, "
	    "labelSelector) both given");
	expect_one(HOST "  faults:\n"
	                "    - {name: c, type: cpu-hog, nodeSelector: a=b}\n",
	    "spec.faults[0].nodeSelector: nodeSelector is for kubernetes "
	    "targets, but spec.target.kind is host");
}

Test(exp_kube, container_kill)
{
	cep_exp *e = parse_ok(KUBE "  faults:\n"
	                           "    - {name: k, type: container-kill, pod: "
	                           "web-0, container: web}\n");
	const cep_exp_item *it = cep_exp_fault(e, 0);
	cr_assert_str_eq(cep_exp_str(it, "signal"), "SIGKILL");
	cr_assert_eq(cep_exp_int(it, "interval"), 10000);
	cep_exp_free(e);
	expect_one(KUBE "  faults:\n"
	                "    - {name: k, type: container-kill}\n",
	    "fault type \"container-kill\" on a kubernetes target acts on a "
	    "pod: missing 'pod'");
	expect_one(HOST "  faults:\n"
	                "    - {name: k, type: container-kill}\n",
	    "fault type \"container-kill\" acts on kubernetes targets only");
	expect_one(KUBE "  faults:\n"
	                "    - {name: k, type: container-kill, pod: w, "
	                "signal: SIGSEGV}\n",
	    "spec.faults[0].signal");
}

/* A child's experiment when a selector's share is split across nodes
 * (exp_split.c): the node-level faults on the selector take the child's
 * count instead of their percentage or count; probes and the rest stay;
 * the text is an experiment again. */
Test(exp_kube, split_spec_takes_the_count)
{
	const char *text = KUBE
	    "  faults:\n"
	    "    - {name: cut, type: network-loss, labelSelector: app=web, "
	    "percentage: 50, percent: 100}\n"
	    "    - name: slow\n"
	    "      type: network-latency\n"
	    "      labelSelector: app=web\n"
	    "      count: 3\n"
	    "      delay: 100ms\n";
	char *out = NULL;
	cep_err err = {0};
	cep_exp *in = parse_ok(text);
	cr_assert_eq(cep_exp_split_spec(in, "app=web", 2, &out, &err), CEP_OK,
	    "%s", err.msg);
	cep_exp_free(in);
	cep_exp *e = parse_ok(out);
	cr_assert_eq(cep_exp_nfaults(e), 2, "%s", out);
	for (size_t i = 0; i < 2; i++) {
		const cep_exp_item *it = cep_exp_fault(e, i);
		cr_assert_eq(cep_exp_int(it, "count"), 2, "%s", out);
		cr_assert_eq(cep_exp_str(it, "percentage"), NULL, "%s", out);
		cr_assert_str_eq(cep_exp_str(it, "labelSelector"), "app=web");
	}
	cr_assert_str_eq(cep_exp_namespace(e), "shop");
	cep_exp_free(e);
	free(out);
}

/* Any other fault would act once per child: refused, naming it. */
Test(exp_kube, split_spec_refuses_other_faults)
{
	const char *text = KUBE
	    "  faults:\n"
	    "    - {name: cut, type: network-loss, labelSelector: app=web, "
	    "percentage: 50, percent: 100}\n"
	    "    - {name: kill, type: pod-delete, labelSelector: app=web, "
	    "count: 1}\n";
	char *out = NULL;
	cep_err err = {0};
	cep_exp *in = parse_ok(text);
	cr_assert_eq(cep_exp_split_spec(in, "app=web", 1, &out, &err),
	    CEP_FAILED_PRECONDITION);
	cep_exp_free(in);
	cr_assert_null(out);
	assert_contains(err.msg,
	    "fault kill (pod-delete) is not a node-level "
	    "fault on selector app=web");
}

/* A ChaosEngine parses as the native experiment it converts to: its
 * children run that, with the child's count. */
Test(exp_kube, split_spec_of_a_chaos_engine)
{
	const char *engine =
	    "apiVersion: litmuschaos.io/v1alpha1\n"
	    "kind: ChaosEngine\n"
	    "metadata: {name: loss, namespace: shop, annotations: "
	    "{cep.io/connector: testk}}\n"
	    "spec:\n"
	    "  engineState: active\n"
	    "  appinfo: {appns: shop, applabel: app=web, appkind: "
	    "statefulset}\n"
	    "  chaosServiceAccount: litmus-admin\n"
	    "  experiments:\n"
	    "    - name: pod-network-loss\n"
	    "      spec:\n"
	    "        components:\n"
	    "          env:\n"
	    "            - {name: TOTAL_CHAOS_DURATION, value: \"3\"}\n"
	    "            - {name: PODS_AFFECTED_PERC, value: \"50\"}\n";
	char *out = NULL;
	cep_err err = {0};
	cep_exp *in = parse_ok(engine);
	cr_assert_eq(cep_exp_split_spec(in, "app=web", 1, &out, &err), CEP_OK,
	    "%s", err.msg);
	cep_exp_free(in);
	cep_exp *e = parse_ok(out);
	cr_assert_eq(cep_exp_nfaults(e), 1, "%s", out);
	const cep_exp_item *it = cep_exp_fault(e, 0);
	cr_assert_eq(cep_exp_int(it, "count"), 1, "%s", out);
	cr_assert_eq(cep_exp_str(it, "percentage"), NULL, "%s", out);
	cr_assert_str_eq(cep_exp_str(it, "labelSelector"), "app=web");
	cep_exp_free(e);
	free(out);
}
