/*
 * test_litmus.c - LitmusChaos ChaosEngines read as experiments
 * (lib/model/litmus*.c): each supported experiment's mapping with
 * Litmus's defaults and with variables set, probes with their modes and
 * run properties, and each refusal with its file:line.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp.h"
#include "litmus.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))

/* The experiment's name is on line 8, env items from line 12 (one a
 * line), probes (when given) after them. */
static char *engine(const char *exp, const char *env, const char *probes)
{
	char *t = NULL;
	int n = asprintf(&t,
	    "apiVersion: litmuschaos.io/v1alpha1\n"
	    "kind: ChaosEngine\n"
	    "metadata:\n"
	    "  name: t\n"
	    "spec:\n"
	    "  appinfo: {appns: shop, applabel: app=web, appkind: deployment}\n"
	    "  experiments:\n"
	    "    - name: %s\n"
	    "      spec:\n"
	    "        components:\n"
	    "          env:\n"
	    "%s"
	    "%s",
	    exp, env, probes ? probes : "");
	cr_assert_gt(n, 0);
	return t;
}

#define ENV(k, v) "            - {name: " k ", value: \"" v "\"}\n"
#define POD ENV("TARGET_PODS", "web-0")

static cep_exp *parse_ok(const char *text)
{
	cep_exp *e = NULL;
	cep_exp_diags d = {0};
	cep_err err = {0};
	int rv = cep_exp_parse(text, strlen(text), "e.yaml", &e, &d, &err);
	cr_assert_eq(rv, CEP_OK, "parse failed: %s (%zu messages)\n%s", err.msg,
	    d.n, text);
	return e;
}

static cep_exp *map_ok(const char *exp, const char *env, const char *probes)
{
	char *t = engine(exp, env, probes);
	cep_exp *e = parse_ok(t);
	free(t);
	cr_assert_str_eq(cep_exp_target_kind(e), "kubernetes");
	cr_assert_str_eq(cep_exp_namespace(e), "shop");
	cr_assert_str_eq(cep_exp_connector(e), "default");
	cr_assert_eq(cep_exp_nfaults(e), 1);
	return e;
}

/* One refusal: a message holding want (and "e.yaml:LINE:"). */
static void refused(const char *text, int line, const char *want)
{
	cep_exp *e = NULL;
	cep_exp_diags d = {0};
	cep_err err = {0};
	int rv = cep_exp_parse(text, strlen(text), "e.yaml", &e, &d, &err);
	cr_assert_eq(rv, CEP_INVALID_ARGUMENT, "rv %d for\n%s", rv, text);
	cr_assert_null(e);
	char at[32];
	snprintf(at, sizeof(at), "e.yaml:%d:", line);
	for (size_t i = 0; i < d.n; i++)
		if (strstr(d.msgs[i], want) &&
		    strncmp(d.msgs[i], at, strlen(at)) == 0)
			return;
	cr_assert_fail("no message at %s with \"%s\"; first: %s", at, want,
	    d.n ? d.msgs[0] : err.msg);
}

static void refused_env(const char *exp, const char *env, int line,
    const char *want)
{
	char *t = engine(exp, env, NULL);
	refused(t, line, want);
	free(t);
}

static const cep_exp_item *fault(const cep_exp *e, const char *type)
{
	const cep_exp_item *it = cep_exp_fault(e, 0);
	cr_assert_str_eq(cep_exp_item_type(it), type);
	return it;
}

static const cep_exp_item *probe(const cep_exp *e, const char *name)
{
	for (size_t i = 0; i < cep_exp_nprobes(e); i++)
		if (strcmp(cep_exp_item_name(cep_exp_probe(e, i)), name) == 0)
			return cep_exp_probe(e, i);
	cr_assert_fail("no probe %s", name);
	return NULL;
}

/* ---- mappings, with Litmus's defaults ---- */

Test(litmus, pod_delete_defaults)
{
	cep_exp *e = map_ok("pod-delete", "", NULL);
	const cep_exp_item *f = fault(e, "pod-delete");
	cr_assert_eq(cep_exp_duration_ms(e), 15000); /* TOTAL_CHAOS_DURATION */
	cr_assert_str_eq(cep_exp_str(f, "labelSelector"), "app=web");
	cr_assert_eq(cep_exp_int(f, "count"), 1); /* PODS_AFFECTED_PERC 0 */
	cr_assert_eq(cep_exp_int(f, "interval"), 5000); /* CHAOS_INTERVAL */
	cr_assert(cep_exp_bool(f, "force"));            /* FORCE */
	/* the default application health check */
	const cep_exp_item *h = probe(e, "app-health");
	cr_assert_str_eq(cep_exp_item_type(h), "k8s");
	cr_assert_eq(cep_exp_probe_mode(h), CEP_PROBE_EDGE);
	cr_assert_str_eq(cep_exp_str(h, "labelSelector"), "app=web");
	cr_assert_str_eq(cep_exp_str(h, "field"), "status.phase");
	cr_assert_str_eq(cep_exp_str(h, "equals"), "Running");
	cep_exp_free(e);
}

Test(litmus, pod_delete_set)
{
	cep_exp *e = map_ok("pod-delete",
	    ENV("TOTAL_CHAOS_DURATION", "40") ENV("CHAOS_INTERVAL", "10")
	        ENV("FORCE", "false") ENV("PODS_AFFECTED_PERC", "50")
	            ENV("DEFAULT_APP_HEALTH_CHECK", "false"),
	    NULL);
	const cep_exp_item *f = fault(e, "pod-delete");
	cr_assert_eq(cep_exp_duration_ms(e), 40000);
	cr_assert_eq(cep_exp_int(f, "percentage"), 50);
	cr_assert_not(cep_exp_has(f, "count"));
	cr_assert_eq(cep_exp_int(f, "interval"), 10000);
	cr_assert_not(cep_exp_bool(f, "force"));
	cr_assert_eq(cep_exp_nprobes(e), 0);
	cep_exp_free(e);
}

Test(litmus, node_taint)
{
	cep_exp *e = map_ok("node-taint",
	    ENV("TARGET_NODE", "node-2")
	        ENV("TAINTS", "dedicated=chaos:NoSchedule"),
	    NULL);
	const cep_exp_item *f = fault(e, "node-taint");
	cr_assert_eq(cep_exp_duration_ms(e), 60000);
	cr_assert_str_eq(cep_exp_str(f, "node"), "node-2");
	cr_assert_str_eq(cep_exp_str(f, "key"), "dedicated");
	cr_assert_str_eq(cep_exp_str(f, "value"), "chaos");
	cr_assert_str_eq(cep_exp_str(f, "effect"), "NoSchedule");
	cep_exp_free(e);
	/* Litmus's defaults: value node-taint, effect NoExecute; NODE_LABEL
	 * acts on one matching node */
	e = map_ok("node-taint",
	    ENV("NODE_LABEL", "pool=blue") ENV("TAINT_LABEL", "chaos.io/x")
	        ENV("TOTAL_CHAOS_DURATION", "30"),
	    NULL);
	f = fault(e, "node-taint");
	cr_assert_eq(cep_exp_duration_ms(e), 30000);
	cr_assert_str_eq(cep_exp_str(f, "nodeSelector"), "pool=blue");
	cr_assert_eq(cep_exp_int(f, "count"), 1);
	cr_assert_str_eq(cep_exp_str(f, "key"), "chaos.io/x");
	cr_assert_str_eq(cep_exp_str(f, "value"), "node-taint");
	cr_assert_str_eq(cep_exp_str(f, "effect"), "NoExecute");
	cep_exp_free(e);
}

Test(litmus, node_drain)
{
	cep_exp *e = map_ok("node-drain", ENV("TARGET_NODE", "node-1"), NULL);
	const cep_exp_item *f = fault(e, "node-drain");
	cr_assert_eq(cep_exp_duration_ms(e), 60000);
	cr_assert_str_eq(cep_exp_str(f, "node"), "node-1");
	cep_exp_free(e);
	e = map_ok("node-drain", ENV("NODE_LABEL", "pool=blue"), NULL);
	f = fault(e, "node-drain");
	cr_assert_str_eq(cep_exp_str(f, "nodeSelector"), "pool=blue");
	cr_assert_eq(cep_exp_int(f, "count"), 1);
	cep_exp_free(e);
	refused_env("node-drain", "", 8, "needs TARGET_NODE or NODE_LABEL");
	refused_env("node-drain", ENV("TARGET_NODE", "n1") ENV("TAINTS", "a"),
	    13, "env TAINTS: not a variable cep can honour for node-drain");
}

Test(litmus, pod_autoscaler)
{
	cep_exp *e = map_ok("pod-autoscaler", ENV("REPLICA_COUNT", "5"), NULL);
	const cep_exp_item *f = fault(e, "deployment-scale");
	cr_assert_eq(cep_exp_duration_ms(e), 60000);
	cr_assert_str_eq(cep_exp_str(f, "labelSelector"), "app=web");
	cr_assert_eq(cep_exp_int(f, "replicas"), 5);
	cr_assert_not(cep_exp_has(f, "deployment"));
	cep_exp_free(e);
	refused_env("pod-autoscaler", "", 8, "env REPLICA_COUNT: missing");
	refused_env("pod-autoscaler", ENV("REPLICA_COUNT", "lots"), 12,
	    "env REPLICA_COUNT: \"lots\" is not supported");
	refused_env("pod-autoscaler",
	    ENV("REPLICA_COUNT", "2") ENV("TARGET_PODS", "x"), 13,
	    "env TARGET_PODS: not a variable cep can honour");
	char *t = engine("pod-autoscaler", ENV("REPLICA_COUNT", "2"), NULL);
	char *sts = strstr(t, "appkind: deployment");
	cr_assert_not_null(sts);
	memcpy(sts, "appkind: daemonset ", 19); /* same length */
	refused(t, 6,
	    "pod-autoscaler scales Deployments in cep, not daemonset");
	free(t);
}

Test(litmus, node_taint_refusals)
{
	refused_env("node-taint", ENV("TAINTS", "a=b:NoSchedule"), 8,
	    "needs TARGET_NODE or NODE_LABEL");
	refused_env("node-taint", ENV("TARGET_NODE", "n1"), 8,
	    "env TAINTS: missing");
	refused_env("node-taint",
	    ENV("TARGET_NODE", "n1") ENV("TAINTS", "a=b:Sometimes"), 13,
	    "env TAINTS: expected one taint key=value:effect");
	refused_env("node-taint",
	    ENV("TARGET_NODE", "n1") ENV("TAINTS", "a b=c"), 13,
	    "env TAINTS: expected one taint");
	refused_env("node-taint",
	    ENV("TARGET_NODE", "n1,n2") ENV("TAINTS", "a"), 12,
	    "env TARGET_NODE: expected one node name");
	refused_env("node-taint",
	    ENV("TARGET_NODE", "n1") ENV("TAINTS", "a") ENV("TAINT_LABEL", "b"),
	    14, "env TAINT_LABEL: not with TAINTS");
	refused_env("node-taint",
	    ENV("TARGET_NODE", "n1") ENV("TAINTS", "a") ENV("TARGET_PODS", "x"),
	    14, "env TARGET_PODS: not a variable cep can honour");
}

Test(litmus, hogs)
{
	cep_exp *e = map_ok("pod-cpu-hog", POD, NULL);
	const cep_exp_item *f = fault(e, "cpu-hog");
	cr_assert_eq(cep_exp_duration_ms(e), 60000);
	cr_assert_str_eq(cep_exp_str(f, "pod"), "web-0");
	cr_assert_eq(cep_exp_int(f, "workers"), 1);
	cr_assert_eq(cep_exp_int(f, "load"), 100);
	cr_assert_not(cep_exp_has(f, "container"));
	cr_assert_str_eq(cep_exp_str(probe(e, "app-health"), "labelSelector"),
	    "app=web");
	cep_exp_free(e);

	e = map_ok("pod-cpu-hog",
	    ENV("TARGET_PODS", " web-1 ") ENV("TARGET_CONTAINER", "app")
	        ENV("CPU_CORES", "3") ENV("CPU_LOAD", "40"),
	    NULL);
	f = fault(e, "cpu-hog");
	cr_assert_str_eq(cep_exp_str(f, "pod"), "web-1");
	cr_assert_str_eq(cep_exp_str(f, "container"), "app");
	cr_assert_eq(cep_exp_int(f, "workers"), 3);
	cr_assert_eq(cep_exp_int(f, "load"), 40);
	cep_exp_free(e);

	e = map_ok("pod-memory-hog", POD, NULL);
	cr_assert_eq(cep_exp_int(fault(e, "memory-hog"), "mib"), 500);
	cep_exp_free(e);
	e = map_ok("pod-memory-hog", POD ENV("MEMORY_CONSUMPTION", "128"),
	    NULL);
	cr_assert_eq(cep_exp_int(fault(e, "memory-hog"), "mib"), 128);
	cep_exp_free(e);
}

Test(litmus, io_and_disk)
{
	cep_exp *e = map_ok("pod-io-stress",
	    POD ENV("FILESYSTEM_UTILIZATION_BYTES", "2")
	        ENV("VOLUME_MOUNT_PATH", "/data"),
	    NULL);
	const cep_exp_item *f = fault(e, "io-stress");
	cr_assert_eq(cep_exp_duration_ms(e), 120000);
	cr_assert_eq(cep_exp_int(f, "fileMiB"), 2048);
	cr_assert_eq(cep_exp_int(f, "workers"), 4);
	cr_assert_str_eq(cep_exp_str(f, "path"), "/data");
	cep_exp_free(e);

	e = map_ok("disk-fill", POD ENV("EPHEMERAL_STORAGE_MEBIBYTES", "256"),
	    NULL);
	f = fault(e, "disk-fill");
	cr_assert_eq(cep_exp_int(f, "mib"), 256);
	cr_assert_str_eq(cep_exp_str(f, "path"), "/");
	cep_exp_free(e);
}

Test(litmus, network)
{
	cep_exp *e = map_ok("pod-network-latency", POD, NULL);
	const cep_exp_item *f = fault(e, "network-latency");
	cr_assert_eq(cep_exp_int(f, "delay"), 2000);
	cr_assert_eq(cep_exp_int(f, "jitter"), 0);
	cr_assert_str_eq(cep_exp_str(f, "direction"), "egress");
	cr_assert_eq(cep_exp_list_len(f, "cidrs"), 0);
	cep_exp_free(e);

	e = map_ok("pod-network-latency",
	    POD ENV("NETWORK_LATENCY", "150") ENV("JITTER", "20")
	        ENV("DESTINATION_IPS", "10.0.0.0/8, 192.168.1.2")
	            ENV("NETWORK_INTERFACE", "eth0"),
	    NULL);
	f = fault(e, "network-latency");
	cr_assert_eq(cep_exp_int(f, "delay"), 150);
	cr_assert_eq(cep_exp_int(f, "jitter"), 20);
	cr_assert_eq(cep_exp_list_len(f, "cidrs"), 2);
	cr_assert_str_eq(cep_exp_list_at(f, "cidrs", 1), "192.168.1.2");
	cep_exp_free(e);

	static const char *const pct[][3] = {
	    {"pod-network-loss", "network-loss",
	        "NETWORK_PACKET_LOSS_PERCENTAGE"},
	    {"pod-network-corruption", "network-corrupt",
	        "NETWORK_PACKET_CORRUPTION_PERCENTAGE"},
	    {"pod-network-duplication", "network-duplicate",
	        "NETWORK_PACKET_DUPLICATION_PERCENTAGE"},
	};
	for (size_t i = 0; i < 3; i++) {
		e = map_ok(pct[i][0], POD, NULL);
		cr_assert_eq(cep_exp_int(fault(e, pct[i][1]), "percent"), 100);
		cep_exp_free(e);
		char env[256];
		snprintf(env, sizeof(env),
		    POD "            - {name: %s, "
		        "value: \"30\"}\n",
		    pct[i][2]);
		e = map_ok(pct[i][0], env, NULL);
		cr_assert_eq(cep_exp_int(fault(e, pct[i][1]), "percent"), 30);
		cep_exp_free(e);
	}
}

Test(litmus, partition_rate_dns)
{
	cep_exp *e = map_ok("pod-network-partition",
	    POD ENV("DESTINATION_IPS", "10.1.0.0/16"), NULL);
	const cep_exp_item *f = fault(e, "network-partition");
	cr_assert_str_eq(cep_exp_str(f, "direction"), "both");
	cr_assert_str_eq(cep_exp_list_at(f, "cidrs", 0), "10.1.0.0/16");
	cep_exp_free(e);
	e = map_ok("pod-network-partition",
	    POD ENV("DESTINATION_IPS", "10.1.0.0/16")
	        ENV("POLICY_TYPES", "ingress"),
	    NULL);
	cr_assert_str_eq(cep_exp_str(fault(e, "network-partition"),
	                     "direction"),
	    "ingress");
	cep_exp_free(e);

	e = map_ok("pod-network-rate-limit", POD, NULL);
	f = fault(e, "network-bandwidth");
	cr_assert_eq(cep_exp_int(f, "kbps"), 1000);   /* 1mbit */
	cr_assert_eq(cep_exp_int(f, "burstKiB"), 32); /* 32kb */
	cep_exp_free(e);
	e = map_ok("pod-network-rate-limit",
	    POD ENV("NETWORK_BANDWIDTH", "100kbps") ENV("BURST", "1mb")
	        ENV("LIMIT", "2mb"),
	    NULL);
	f = fault(e, "network-bandwidth");
	cr_assert_eq(cep_exp_int(f, "kbps"), 800);
	cr_assert_eq(cep_exp_int(f, "burstKiB"), 1024);
	cep_exp_free(e);

	e = map_ok("pod-dns-error",
	    POD "            - {name: TARGET_HOSTNAMES, value: "
	        "'[\"db.shop.svc\",\"example.com\"]'}\n",
	    NULL);
	f = fault(e, "dns-error");
	cr_assert_eq(cep_exp_list_len(f, "names"), 2);
	cr_assert_str_eq(cep_exp_list_at(f, "names", 0), "db.shop.svc");
	cr_assert_str_eq(cep_exp_str(f, "error"), "nxdomain");
	cep_exp_free(e);
}

/* Variables that only tell Litmus how to reach a node are accepted. */
Test(litmus, litmus_only_variables_accepted)
{
	cep_exp *e = map_ok("pod-network-loss",
	    POD ENV("CONTAINER_RUNTIME", "crio")
	        ENV("SOCKET_PATH", "/run/crio/crio.sock") ENV("LIB", "litmus")
	            ENV("LIB_IMAGE", "litmuschaos/go-runner:3.0.0")
	                ENV("TC_IMAGE", "gaiadocker/iproute2")
	                    ENV("RAMP_TIME", "") ENV("SEQUENCE", "serial"),
	    NULL);
	cep_exp_free(e);
}

Test(litmus, engine_fields)
{
	const char *t =
	    "apiVersion: litmuschaos.io/v1alpha1\n"
	    "kind: ChaosEngine\n"
	    "metadata:\n"
	    "  name: eng\n"
	    "  namespace: other\n"
	    "  labels: {team: web}\n"
	    "  annotations: {cep.io/connector: prod}\n"
	    "spec:\n"
	    "  engineState: active\n"
	    "  annotationCheck: 'false'\n"
	    "  chaosServiceAccount: litmus-admin\n"
	    "  jobCleanUpPolicy: retain\n"
	    "  monitoring: false\n"
	    "  defaultHealthCheck: false\n"
	    "  appinfo: {appns: shop, applabel: app=web, appkind: statefulset}\n"
	    "  experiments:\n"
	    "    - name: pod-delete\n"
	    "      spec:\n"
	    "        components:\n"
	    "          experimentImage: litmuschaos/go-runner:3.0.0\n"
	    "          env: []\n";
	cep_exp *e = parse_ok(t);
	cr_assert_str_eq(cep_exp_name(e), "eng");
	cr_assert_str_eq(cep_exp_connector(e), "prod");
	cr_assert_str_eq(cep_exp_namespace(e), "shop"); /* appns wins */
	cr_assert_eq(cep_exp_nprobes(e), 0);            /* defaultHealthCheck */
	cep_exp_free(e);
}

/* ---- probes ---- */

#define PROBES "        probe:\n"

Test(litmus, probes_modes_and_run_properties)
{
	const char *probes = PROBES
	    "          - name: Front Page\n"
	    "            type: httpProbe\n"
	    "            mode: Continuous\n"
	    "            httpProbe/inputs:\n"
	    "              url: http://web.shop:8080/\n"
	    "              responseTimeout: 800\n"
	    "              method: {get: {criteria: '==', responseCode: '204'}}\n"
	    "            runProperties: {probeTimeout: 5, interval: 2, retry: 2,"
	    " initialDelaySeconds: 3, stopOnFailure: true}\n"
	    "          - name: cmd\n"
	    "            type: cmdProbe\n"
	    "            mode: SOT\n"
	    "            cmdProbe/inputs:\n"
	    "              command: echo ok\n"
	    "              comparator: {type: string, criteria: contains, "
	    "value: ok}\n"
	    "            runProperties: {probeTimeout: 500ms, interval: 1s, "
	    "attempt: 4}\n"
	    "          - name: k\n"
	    "            type: k8sProbe\n"
	    "            mode: EOT\n"
	    "            k8sProbe/inputs: {group: apps, version: v1, resource: "
	    "deployments, namespace: shop, resourceNames: web, operation: "
	    "present}\n"
	    "          - name: p\n"
	    "            type: promProbe\n"
	    "            mode: OnChaos\n"
	    "            promProbe/inputs: {endpoint: 'http://prom:9090', "
	    "query: up, comparator: {criteria: '>', value: '0'}}\n"
	    "          - name: e\n"
	    "            type: k8sProbe\n"
	    "            mode: Edge\n"
	    "            k8sProbe/inputs: {resource: pods, labelSelector: "
	    "app=web, operation: absent}\n";
	cep_exp *e = map_ok("pod-delete",
	    ENV("DEFAULT_APP_HEALTH_CHECK", "false"), probes);
	cr_assert_eq(cep_exp_nprobes(e), 5);
	const cep_exp_item *h = probe(e, "front-page");
	cr_assert_str_eq(cep_exp_item_type(h), "http");
	cr_assert_eq(cep_exp_probe_mode(h), CEP_PROBE_CONTINUOUS);
	cr_assert_eq(cep_exp_int(h, "expectStatus"), 204);
	cr_assert_eq(cep_exp_int(h, "latencyBudget"), 800);
	cr_assert_eq(cep_exp_int(h, "timeout"), 5000);
	cr_assert_eq(cep_exp_int(h, "interval"), 2000);
	cr_assert_eq(cep_exp_int(h, "attempts"), 3); /* 2 retries */
	cr_assert_eq(cep_exp_int(h, "initialDelay"), 3000);
	cr_assert(cep_exp_bool(h, "stopOnFailure"));
	const cep_exp_item *c = probe(e, "cmd");
	cr_assert_eq(cep_exp_probe_mode(c), CEP_PROBE_SOT);
	cr_assert_eq(cep_exp_list_len(c, "command"), 3);
	cr_assert_str_eq(cep_exp_list_at(c, "command", 2), "echo ok");
	cr_assert_str_eq(cep_exp_str(c, "outputMatch"), "ok");
	cr_assert_eq(cep_exp_int(c, "timeout"), 500);
	cr_assert_eq(cep_exp_int(c, "attempts"), 4);
	const cep_exp_item *k = probe(e, "k");
	cr_assert_eq(cep_exp_probe_mode(k), CEP_PROBE_EOT);
	cr_assert_str_eq(cep_exp_str(k, "objectName"), "web");
	cr_assert_str_eq(cep_exp_str(k, "check"), "present");
	const cep_exp_item *p = probe(e, "p");
	cr_assert_eq(cep_exp_probe_mode(p), CEP_PROBE_ONCHAOS);
	cr_assert_eq(cep_exp_num(p, "above"), 0);
	cr_assert(cep_exp_has(p, "above"));
	const cep_exp_item *x = probe(e, "e");
	cr_assert_eq(cep_exp_probe_mode(x), CEP_PROBE_EDGE);
	cr_assert_str_eq(cep_exp_str(x, "check"), "absent");
	cep_exp_free(e);
}

/* ---- refusals, each named at its line ---- */

Test(litmus, experiments_without_a_mechanism_refused)
{
	const char *const *r = cep_litmus_refused();
	cr_assert_not_null(r[0]);
	for (; *r != NULL; r++) {
		char want[96];
		snprintf(want, sizeof(want), "experiment %s is not supported",
		    *r);
		refused_env(*r, "", 8, want);
	}
	refused_env("aws-ec2-terminate", "", 8, "is not one cep runs");
}

Test(litmus, every_supported_experiment_is_listed)
{
	size_t n = 0;
	for (const char *const *s = cep_litmus_supported(); *s; s++, n++) {
		char *t = engine(*s, "", NULL);
		cep_exp *e = NULL;
		cep_exp_diags d = {0};
		cep_err err;
		(void)cep_exp_parse(t, strlen(t), "e.yaml", &e, &d, &err);
		for (size_t i = 0; i < d.n; i++)
			cr_assert_null(strstr(d.msgs[i], "not supported: "),
			    "%s: %s", *s, d.msgs[i]);
		cep_exp_free(e);
		free(t);
	}
	cr_assert_eq(n, 19); /* + node-taint, node-drain, pod-autoscaler,
			      node-cpu-hog, node-memory-hog, node-io-stress,
			      container-kill */
}

Test(litmus, variables_refused_by_name)
{
	refused_env("pod-delete", ENV("FOO", "1"), 12,
	    "env FOO: not a variable cep can honour for pod-delete");
	refused_env("pod-cpu-hog", POD ENV("TARGET_NODE", "n1"), 13,
	    "env TARGET_NODE: not a variable");
	refused_env("pod-cpu-hog", POD ENV("CHAOS_INTERVAL", "5"), 13,
	    "env CHAOS_INTERVAL: not a variable");
	refused_env("pod-network-loss", POD ENV("DESTINATION_HOSTS", "x.io"),
	    13, "env DESTINATION_HOSTS: not a variable");
	refused_env("pod-delete", ENV("RAMP_TIME", "10"), 12,
	    "env RAMP_TIME: \"10\" is not supported");
	refused_env("pod-delete", ENV("RANDOMNESS", "true"), 12,
	    "env RANDOMNESS: not supported");
	refused_env("pod-delete", ENV("TARGET_PODS", "web-0"), 12,
	    "env TARGET_PODS: not supported for pod-delete");
	refused_env("pod-delete",
	    ENV("PODS_AFFECTED_PERC", "50") ENV("SEQUENCE", "serial"), 13,
	    "env SEQUENCE: serial is not supported");
	refused_env("pod-memory-hog", POD ENV("NUMBER_OF_WORKERS", "2"), 13,
	    "env NUMBER_OF_WORKERS");
	refused_env("disk-fill", POD ENV("FILL_PERCENTAGE", "80"), 13,
	    "env FILL_PERCENTAGE: not supported");
	refused_env("disk-fill", POD, 8,
	    "env EPHEMERAL_STORAGE_MEBIBYTES: "
	    "missing, so Litmus would use its default FILL_PERCENTAGE");
	refused_env("pod-io-stress", POD, 8,
	    "env FILESYSTEM_UTILIZATION_BYTES");
	refused_env("pod-dns-error", POD ENV("MATCH_SCHEME", "substring"), 13,
	    "env MATCH_SCHEME");
	refused_env("pod-dns-error", POD ENV("TARGET_HOSTNAMES", "nope"), 13,
	    "env TARGET_HOSTNAMES");
	refused_env("pod-network-partition", POD, 8, "env DESTINATION_IPS");
	refused_env("pod-network-loss", POD ENV("NETWORK_INTERFACE", "eth1"),
	    13, "env NETWORK_INTERFACE");
	refused_env("pod-network-loss", POD ENV("CONTAINER_RUNTIME", "rkt"), 13,
	    "env CONTAINER_RUNTIME");
	refused_env("pod-network-latency", POD ENV("NETWORK_LATENCY", "20000"),
	    13, "env NETWORK_LATENCY");
	refused_env("pod-network-rate-limit",
	    POD ENV("NETWORK_BANDWIDTH", "fast"), 13, "env NETWORK_BANDWIDTH");
	refused_env("pod-cpu-hog", POD ENV("CPU_LOAD", "abc"), 13,
	    "env CPU_LOAD: \"abc\" is not supported");
	refused_env("pod-delete", ENV("FORCE", "yes"), 12, "env FORCE");
	refused_env("pod-delete", ENV("FORCE", "true") ENV("FORCE", "true"), 13,
	    "env FORCE: given twice");
}

/* Pod faults choose their pods as Litmus does: TARGET_PODS naming one,
 * else the pods of applabel, PODS_AFFECTED_PERC of them (0: one). */
Test(litmus, pod_faults_choose_by_label)
{
	cep_exp *e = map_ok("pod-network-loss", "", NULL);
	const cep_exp_item *f = fault(e, "network-loss");
	cr_assert_str_eq(cep_exp_str(f, "labelSelector"), "app=web");
	cr_assert_eq(cep_exp_int(f, "count"), 1); /* Litmus's "one pod" */
	cr_assert_not(cep_exp_has(f, "pod"));
	cr_assert_not(cep_exp_has(f, "percentage"));
	cep_exp_free(e);

	e = map_ok("pod-cpu-hog",
	    ENV("PODS_AFFECTED_PERC", "100") ENV("TARGET_CONTAINER", "app")
	        ENV("SEQUENCE", "parallel"),
	    NULL);
	f = fault(e, "cpu-hog");
	cr_assert_str_eq(cep_exp_str(f, "labelSelector"), "app=web");
	cr_assert_eq(cep_exp_int(f, "percentage"), 100);
	cr_assert_not(cep_exp_has(f, "count"));
	cr_assert_str_eq(cep_exp_str(f, "container"), "app");
	cep_exp_free(e);

	/* empty is unset: one pod; serial with one pod has no order */
	e = map_ok("disk-fill",
	    ENV("PODS_AFFECTED_PERC", "") ENV("SEQUENCE", "serial")
	        ENV("EPHEMERAL_STORAGE_MEBIBYTES", "8"),
	    NULL);
	cr_assert_eq(cep_exp_int(fault(e, "disk-fill"), "count"), 1);
	cep_exp_free(e);

	/* one named pod wins over the selector, whatever the share */
	e = map_ok("pod-memory-hog", POD ENV("PODS_AFFECTED_PERC", "50"), NULL);
	f = fault(e, "memory-hog");
	cr_assert_str_eq(cep_exp_str(f, "pod"), "web-0");
	cr_assert_not(cep_exp_has(f, "labelSelector"));
	cep_exp_free(e);
}

Test(litmus, pod_selection_refused_by_name)
{
	refused_env("pod-cpu-hog", ENV("TARGET_PODS", "a,b"), 12,
	    "env TARGET_PODS: expected one pod name: several are not "
	    "supported");
	refused_env("pod-network-latency",
	    ENV("PODS_AFFECTED_PERC", "50") ENV("SEQUENCE", "serial"), 13,
	    "env SEQUENCE: serial is not supported with PODS_AFFECTED_PERC");
	refused_env("pod-io-stress", ENV("PODS_AFFECTED_PERC", "101"), 12,
	    "env PODS_AFFECTED_PERC: \"101\" is not supported");
	refused_env("pod-dns-error", ENV("SEQUENCE", "random"), 12,
	    "env SEQUENCE: \"random\" is not supported");
	const char *t = "apiVersion: litmuschaos.io/v1alpha1\n"
	                "kind: ChaosEngine\n"
	                "metadata: {name: t}\n"
	                "spec:\n"
	                "  appinfo: {appns: shop, appkind: deployment}\n"
	                "  experiments: [{name: pod-network-loss}]\n";
	refused(t, 5,
	    "spec.appinfo.applabel: pod-network-loss needs the pods' label "
	    "selector or TARGET_PODS");
}

static void refused_engine(const char *spec_extra, int line, const char *want)
{
	char *t = NULL;
	cr_assert_gt(asprintf(&t,
	                 "apiVersion: litmuschaos.io/v1alpha1\n"
	                 "kind: ChaosEngine\n"
	                 "metadata: {name: t}\n"
	                 "spec:\n"
	                 "  appinfo: {appns: shop, applabel: app=web}\n"
	                 "  experiments: [{name: pod-delete}]\n"
	                 "%s",
	                 spec_extra),
	    0);
	refused(t, line, want);
	free(t);
}

Test(litmus, engine_fields_refused)
{
	refused_engine("  engineState: stop\n", 7,
	    "spec.engineState: the engine is stopped: cep runs nothing");
	refused_engine("  engineState: paused\n", 7, "spec.engineState");
	refused_engine("  annotationCheck: 'true'\n", 7,
	    "spec.annotationCheck: \"true\" is not supported");
	refused_engine("  auxiliaryAppInfo: 'ns:app=db'\n", 7,
	    "spec.auxiliaryAppInfo");
	refused_engine("  schedule: {now: true}\n", 7,
	    "spec: 'schedule' is "
	    "not supported by cep");
	refused("apiVersion: litmuschaos.io/v1alpha1\nkind: ChaosEngine\n"
	        "metadata: {name: t}\nspec:\n  appinfo: {appns: shop, "
	        "applabel: app=web}\n  experiments:\n    - name: pod-delete\n"
	        "    - name: pod-delete\n",
	    8, "spec.experiments[1]: cep runs one experiment per ChaosEngine");
	refused("apiVersion: litmuschaos.io/v1alpha1\nkind: ChaosEngine\n"
	        "metadata: {name: My.Engine}\nspec:\n  appinfo: {appns: shop, "
	        "applabel: app=web}\n  experiments: [{name: pod-delete}]\n",
	    3, "metadata.name");
	refused("apiVersion: litmuschaos.io/v1alpha1\nkind: ChaosEngine\n"
	        "metadata: {name: t}\nspec:\n  appinfo: {applabel: app=web}\n"
	        "  experiments: [{name: pod-delete}]\n",
	    5, "no namespace");
	refused("apiVersion: litmuschaos.io/v1alpha1\nkind: ChaosEngine\n"
	        "metadata: {name: t}\nspec:\n  appinfo: {appns: shop}\n"
	        "  experiments: [{name: pod-delete}]\n",
	    5, "pod-delete needs the pods' label selector");
	refused("apiVersion: litmuschaos.io/v1beta9\nkind: ChaosEngine\n"
	        "metadata: {name: t}\nspec:\n  appinfo: {appns: shop, "
	        "applabel: app=web}\n  experiments: [{name: pod-delete}]\n",
	    1, "apiVersion");
}

Test(litmus, components_refused)
{
	char *t = engine("pod-delete", ENV("FORCE", "true"),
	    "          configMaps: [{name: cm, mountPath: /mnt}]\n");
	refused(t, 13, "'configMaps' is not supported by cep");
	free(t);
	t = engine("pod-delete",
	    "            - name: FORCE\n"
	    "              valueFrom: {secretKeyRef: {name: s, key: k}}\n",
	    NULL);
	refused(t, 13, "valueFrom is not supported");
	free(t);
}

static void refused_probe(const char *p, int line, const char *want)
{
	char *t = engine("pod-delete", "", p);
	refused(t, line, want);
	free(t);
}

Test(litmus, probe_fields_refused)
{
	/* the probe starts on line 13 */
	refused_probe(PROBES "          - {name: h, type: httpProbe, mode: SOT,"
	                     " httpProbe/inputs: {url: 'https://x', "
	                     "insecureSkipVerify: true}}\n",
	    13, "insecureSkipVerify: not supported");
	refused_probe(PROBES "          - {name: c, type: cmdProbe, mode: SOT,"
	                     " cmdProbe/inputs: {command: ls, source: {image: "
	                     "busybox}}}\n",
	    13, "'source' is not supported by cep's probes");
	refused_probe(PROBES "          - {name: c, type: cmdProbe, mode: SOT,"
	                     " cmdProbe/inputs: {command: ls, comparator: "
	                     "{type: int, criteria: '>=', value: '1'}}}\n",
	    13, "comparator: only {type: string, criteria: contains");
	refused_probe(PROBES "          - {name: k, type: k8sProbe, mode: EOT,"
	                     " k8sProbe/inputs: {resource: pods, labelSelector:"
	                     " a=b, operation: create}}\n",
	    13, "operation: expected present or absent");
	refused_probe(PROBES "          - {name: k, type: k8sProbe, mode: EOT,"
	                     " k8sProbe/inputs: {resource: pods, labelSelector:"
	                     " a=b, fieldSelector: x=y, operation: present}}\n",
	    13, "fieldSelector: not supported");
	refused_probe(PROBES "          - {name: p, type: promProbe, mode: EOT,"
	                     " promProbe/inputs: {endpoint: 'http://p', query: "
	                     "up, comparator: {criteria: '!=', value: '1'}}}\n",
	    13, "comparator: expected criteria");
	refused_probe(PROBES "          - {name: p, type: sloProbe, mode: "
	                     "EOT}\n",
	    13, "type: expected httpProbe");
	refused_probe(PROBES "          - {name: p, type: k8sProbe, mode: "
	                     "Always, k8sProbe/inputs: {resource: pods, "
	                     "labelSelector: a=b, operation: present}}\n",
	    13, "mode: expected SOT");
	refused_probe(PROBES "          - {name: p, type: k8sProbe, mode: EOT,"
	                     " k8sProbe/inputs: {resource: pods, labelSelector:"
	                     " a=b, operation: present}, runProperties: "
	                     "{evaluationTimeout: 5}}\n",
	    13, "'evaluationTimeout' is not supported");
}

/* The rest of docs/litmus.md's refusals, each at its field's line. */
Test(litmus, documented_variable_refusals_named)
{
	refused_env("pod-io-stress",
	    POD ENV("FILESYSTEM_UTILIZATION_PERCENTAGE", "10"), 13,
	    "env FILESYSTEM_UTILIZATION_PERCENTAGE: not supported");
	/* {experiment, variable}: not one cep honours for it */
	static const char *const vars[][2] = {
	    {"pod-network-partition", "POD_SELECTOR"},
	    {"pod-network-partition", "NAMESPACE_SELECTOR"},
	    {"pod-network-partition", "PORTS"},
	    {"pod-network-partition", "DESTINATION_HOSTS"},
	    {"pod-network-latency", "SOURCE_PORTS"},
	    {"pod-network-latency", "DESTINATION_PORTS"},
	    {"pod-network-latency", "TARGET_NODES"},
	    {"pod-network-latency", "NODE_LABEL"},
	    {"pod-network-latency", "NODES_AFFECTED_PERC"},
	    {"pod-network-rate-limit", "PEAK_RATE"},
	    {"pod-network-rate-limit", "MIN_BURST"},
	};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		char env[200], want[96];
		snprintf(env, sizeof(env),
		    POD ENV("DESTINATION_IPS", "10.0.0.1") ENV("%s", "1"),
		    vars[i][1]);
		snprintf(want, sizeof(want), "env %s: not a variable",
		    vars[i][1]);
		refused_env(vars[i][0], env, 14, want);
	}
	refused_env("pod-network-rate-limit", POD ENV("BURST", "lots"), 13,
	    "env BURST: expected a tc size");
	refused_env("pod-dns-error", POD, 8, "env TARGET_HOSTNAMES: missing");
	refused_env("pod-network-loss",
	    POD ENV("DESTINATION_IPS", "10.0.0.1|80"), 13,
	    "env DESTINATION_IPS: expected at most 64");
	char many[2048] = "";
	for (int i = 0; i < 65; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
		    "%s10.0.0.%d", i ? "," : "", i);
	char env[2200];
	snprintf(env, sizeof(env), POD ENV("DESTINATION_IPS", "%s"), many);
	refused_env("pod-network-loss", env, 13,
	    "env DESTINATION_IPS: expected at most 64");
}

Test(litmus, documented_engine_refusals_named)
{
	refused("apiVersion: litmuschaos.io/v1alpha1\nkind: ChaosEngine\n"
	        "metadata: {generateName: t-}\nspec:\n  appinfo: {appns: shop, "
	        "applabel: app=web}\n  experiments: [{name: pod-delete}]\n",
	    3, "metadata.name: missing");
	refused("apiVersion: litmuschaos.io/v1alpha1\nkind: ChaosEngine\n"
	        "metadata: {name: t}\nspec:\n  appinfo: {appns: shop, "
	        "applabel: app=web, appkind: cronjob}\n"
	        "  experiments: [{name: pod-delete}]\n",
	    5, "spec.appinfo.appkind");
	refused("apiVersion: litmuschaos.io/v1alpha1\nkind: ChaosEngine\n"
	        "metadata: {name: t}\nspec:\n  appinfo: {appns: shop, "
	        "applabel: app=web}\n  experiments: [{name: pod-delete}]\n"
	        "extra: 1\n",
	    7, "'extra' is not supported by cep");
	char *t = engine("pod-delete", ENV("FORCE", "true"),
	    "          secrets: [{name: s, mountPath: /mnt}]\n");
	refused(t, 13, "'secrets' is not supported by cep");
	free(t);
	t = engine("pod-delete", ENV("FORCE", "true"),
	    "          statusCheckTimeouts: {delay: 2}\n");
	refused(t, 13, "'statusCheckTimeouts' is not supported by cep");
	free(t);
}

Test(litmus, documented_probe_refusals_named)
{
	refused_probe(PROBES "          - {name: h, type: httpProbe, mode: SOT,"
	                     " httpProbe/inputs: {url: 'https://x', method: "
	                     "{get: {criteria: '!=', responseCode: '200'}}}}\n",
	    13, "criteria");
	refused_probe(PROBES "          - {name: h, type: httpProbe, mode: SOT,"
	                     " httpProbe/inputs: {url: 'https://x', method: "
	                     "{post: {contentType: text/plain, body: x, "
	                     "criteria: '==', responseCode: '200'}}}}\n",
	    13, "contentType");
	refused_probe(PROBES "          - {name: h, type: httpProbe, mode: SOT,"
	                     " httpProbe/inputs: {url: 'https://x', method: "
	                     "{post: {bodyPath: /b, criteria: '==', "
	                     "responseCode: '200'}}}}\n",
	    13, "bodyPath");
	refused_probe(PROBES "          - {name: k, type: k8sProbe, mode: EOT,"
	                     " k8sProbe/inputs: {resource: pods, labelSelector:"
	                     " a=b, operation: delete}}\n",
	    13, "operation: expected present or absent");
	refused_probe(PROBES "          - {name: k, type: k8sProbe, mode: EOT,"
	                     " k8sProbe/inputs: {resource: pods, labelSelector:"
	                     " a=b, namespace: other, operation: present}}\n",
	    13, "namespace");
	refused_probe(PROBES "          - {name: p, type: promProbe, mode: EOT,"
	                     " promProbe/inputs: {endpoint: 'http://p', "
	                     "queryPath: /q, comparator: {criteria: '==', "
	                     "value: '1'}}}\n",
	    13, "queryPath");
	refused_probe(PROBES "          - {name: k, type: k8sProbe, mode: EOT,"
	                     " k8sProbe/inputs: {resource: pods, labelSelector:"
	                     " a=b, operation: present}, runProperties: "
	                     "{interval: 2, probePollingInterval: 5}}\n",
	    13, "probePollingInterval");
}

/* ---- convert ---- */

/* Every parameter of every item of a and b is the same. */
static void same_items(const cep_exp_item *a, const cep_exp_item *b,
    const cep_exp_param_spec *ps)
{
	cr_assert_str_eq(cep_exp_item_name(a), cep_exp_item_name(b));
	cr_assert_str_eq(cep_exp_item_type(a), cep_exp_item_type(b));
	for (; ps != NULL && ps->key != NULL; ps++) {
		cr_assert_eq(cep_exp_has(a, ps->key), cep_exp_has(b, ps->key));
		const char *sa = cep_exp_str(a, ps->key);
		const char *sb = cep_exp_str(b, ps->key);
		cr_assert((sa == NULL) == (sb == NULL));
		if (sa != NULL)
			cr_assert_str_eq(sa, sb);
		cr_assert_eq(cep_exp_int(a, ps->key), cep_exp_int(b, ps->key));
		cr_assert_eq(cep_exp_list_len(a, ps->key),
		    cep_exp_list_len(b, ps->key));
	}
}

Test(litmus, convert_output_is_the_same_experiment)
{
	char *t = engine("pod-network-latency",
	    POD ENV("NETWORK_LATENCY", "300")
	        ENV("DESTINATION_IPS", "10.0.0.1"),
	    PROBES "          - {name: k, type: k8sProbe, mode: EOT, "
	           "k8sProbe/inputs: {resource: pods, labelSelector: a=b, "
	           "operation: present}}\n");
	char *native = NULL;
	cep_exp_diags d;
	cep_err err;
	cr_assert_eq(cep_litmus_convert(t, strlen(t), "e.yaml", &native, &d,
	                 &err),
	    CEP_OK, "%s", err.msg);
	assert_contains(native, "apiVersion: cep.io/v1");
	cep_exp *a = parse_ok(t), *b = parse_ok(native);
	cr_assert_str_eq(cep_exp_name(a), cep_exp_name(b));
	cr_assert_eq(cep_exp_duration_ms(a), cep_exp_duration_ms(b));
	cr_assert_eq(cep_exp_nfaults(a), cep_exp_nfaults(b));
	cr_assert_eq(cep_exp_nprobes(a), cep_exp_nprobes(b));
	same_items(cep_exp_fault(a, 0), cep_exp_fault(b, 0),
	    cep_exp_fault_spec("network-latency")->params);
	for (size_t i = 0; i < cep_exp_nprobes(a); i++)
		same_items(cep_exp_probe(a, i), cep_exp_probe(b, i),
		    cep_exp_probe_spec("k8s")->params);
	cep_exp_free(a);
	cep_exp_free(b);
	free(native);
	free(t);
}

Test(litmus, convert_refuses_a_native_experiment)
{
	const char *t = "apiVersion: cep.io/v1\nkind: Experiment\n";
	char *native = NULL;
	cep_exp_diags d;
	cep_err err;
	cr_assert_eq(cep_litmus_convert(t, strlen(t), "e.yaml", &native, &d,
	                 &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_null(native);
	assert_contains(err.msg, "not a ChaosEngine");
	cr_assert_eq(d.n, 1);
}

/* A string that plain YAML would read as a number stays a string. */
Test(litmus, string_values_quoted_when_needed)
{
	char *t = engine("pod-delete", ENV("DEFAULT_APP_HEALTH_CHECK", "false"),
	    PROBES "          - {name: c, type: cmdProbe, mode: SOT, "
	           "cmdProbe/inputs: {command: 'echo 42', comparator: {type: "
	           "string, criteria: contains, value: '42'}}}\n");
	cep_exp *e = parse_ok(t);
	cr_assert_str_eq(cep_exp_str(cep_exp_probe(e, 0), "outputMatch"), "42");
	cep_exp_free(e);
	free(t);
}

/* ---- node hogs: a node by name, workers in the node's own cgroup ---- */

#define NODE ENV("TARGET_NODES", "node-2")

Test(litmus, node_cpu_hog)
{
	cep_exp *e = map_ok("node-cpu-hog", NODE, NULL);
	const cep_exp_item *f = fault(e, "cpu-hog");
	cr_assert_eq(cep_exp_duration_ms(e), 60000);
	cr_assert_str_eq(cep_exp_str(f, "node"), "node-2");
	cr_assert_null(cep_exp_str(f, "pod"));
	cr_assert_eq(cep_exp_int(f, "workers"), 2); /* NODE_CPU_CORE */
	cr_assert_eq(cep_exp_num(f, "load"), 100);  /* CPU_LOAD */
	cep_exp_free(e);
	e = map_ok("node-cpu-hog",
	    NODE ENV("NODE_CPU_CORE", "3") ENV("CPU_LOAD", "40")
	        ENV("TOTAL_CHAOS_DURATION", "9")
	            ENV("NODES_AFFECTED_PERC", "0"),
	    NULL);
	f = fault(e, "cpu-hog");
	cr_assert_eq(cep_exp_int(f, "workers"), 3);
	cr_assert_eq(cep_exp_num(f, "load"), 40);
	cr_assert_eq(cep_exp_duration_ms(e), 9000);
	cep_exp_free(e);
}

Test(litmus, node_memory_hog)
{
	cep_exp *e = map_ok("node-memory-hog",
	    NODE ENV("MEMORY_CONSUMPTION_MEBIBYTES", "256"), NULL);
	const cep_exp_item *f = fault(e, "memory-hog");
	cr_assert_eq(cep_exp_duration_ms(e), 120000);
	cr_assert_str_eq(cep_exp_str(f, "node"), "node-2");
	cr_assert_eq(cep_exp_int(f, "mib"), 256);
	cep_exp_free(e);
}

Test(litmus, node_io_stress_with_its_cpu_workers)
{
	char *t = engine("node-io-stress",
	    NODE ENV("FILESYSTEM_UTILIZATION_BYTES", "1")
	        ENV("NUMBER_OF_WORKERS", "2") ENV("CPU", "3"),
	    NULL);
	cep_exp *e = parse_ok(t);
	free(t);
	cr_assert_eq(cep_exp_nfaults(e), 2);
	const cep_exp_item *f = fault(e, "io-stress");
	cr_assert_str_eq(cep_exp_str(f, "node"), "node-2");
	cr_assert_eq(cep_exp_int(f, "fileMiB"), 1024);
	cr_assert_eq(cep_exp_int(f, "workers"), 2);
	const cep_exp_item *c = cep_exp_fault(e, 1);
	cr_assert_str_eq(cep_exp_item_type(c), "cpu-hog");
	cr_assert_str_eq(cep_exp_str(c, "node"), "node-2");
	cr_assert_eq(cep_exp_int(c, "workers"), 3);
	cep_exp_free(e);
	/* CPU 0: the writers alone */
	e = map_ok("node-io-stress",
	    NODE ENV("FILESYSTEM_UTILIZATION_BYTES", "1") ENV("CPU", "0"),
	    NULL);
	cep_exp_free(e);
}

/* NODE_LABEL: the runner scheduled onto one labelled node, for every
 * fault of the experiment (io-stress's CPU too). */
Test(litmus, node_label_places_by_node_selector)
{
	cep_exp *e = map_ok("node-cpu-hog",
	    ENV("NODE_LABEL", "role=db,zone=a") ENV("NODES_AFFECTED_PERC", "0"),
	    NULL);
	const cep_exp_item *f = fault(e, "cpu-hog");
	cr_assert_str_eq(cep_exp_str(f, "nodeSelector"), "role=db,zone=a");
	cr_assert_null(cep_exp_str(f, "node"));
	cep_exp_free(e);
	char *t = engine("node-io-stress",
	    ENV("NODE_LABEL", "role=db")
	        ENV("FILESYSTEM_UTILIZATION_BYTES", "1"),
	    NULL);
	e = parse_ok(t);
	free(t);
	cr_assert_eq(cep_exp_nfaults(e), 2);
	cr_assert_str_eq(cep_exp_str(fault(e, "io-stress"), "nodeSelector"),
	    "role=db");
	cr_assert_str_eq(cep_exp_str(cep_exp_fault(e, 1), "nodeSelector"),
	    "role=db");
	cep_exp_free(e);
}

Test(litmus, node_variables_refused_by_name)
{
	refused_env("node-cpu-hog", "", 8, "env TARGET_NODES: missing");
	refused_env("node-cpu-hog", ENV("TARGET_NODES", "a,b"), 12,
	    "env TARGET_NODES: expected exactly one node name");
	refused_env("node-cpu-hog",
	    ENV("NODE_LABEL", "role=db") ENV("NODES_AFFECTED_PERC", "50"), 13,
	    "env NODES_AFFECTED_PERC: with NODE_LABEL: a share of the "
	    "labelled nodes is not supported");
	refused_env("node-cpu-hog", ENV("NODE_LABEL", "role in (db)"), 12,
	    "env NODE_LABEL: expected key=value[,key=value...]");
	refused_env("node-cpu-hog", NODE ENV("NODE_LABEL", "role=db"), 13,
	    "env NODE_LABEL: given with TARGET_NODES, expected one of them");
	refused_env("node-cpu-hog", NODE ENV("NODE_CPU_CORE", "0"), 13,
	    "env NODE_CPU_CORE");
	refused_env("node-cpu-hog", NODE ENV("TARGET_PODS", "web-0"), 13,
	    "env TARGET_PODS: not a variable");
	refused_env("node-memory-hog", NODE, 8,
	    "env MEMORY_CONSUMPTION_MEBIBYTES: missing, so Litmus would use "
	    "its default MEMORY_CONSUMPTION_PERCENTAGE");
	refused_env("node-memory-hog",
	    NODE ENV("MEMORY_CONSUMPTION_PERCENTAGE", "30"), 13,
	    "env MEMORY_CONSUMPTION_PERCENTAGE: not supported");
	refused_env("node-io-stress",
	    NODE ENV("FILESYSTEM_UTILIZATION_PERCENTAGE", "10"), 13,
	    "env FILESYSTEM_UTILIZATION_PERCENTAGE: not supported");
	refused_env("node-io-stress",
	    NODE ENV("FILESYSTEM_UTILIZATION_BYTES", "1")
	        ENV("VM_WORKERS", "1"),
	    14, "env VM_WORKERS: not a variable");
}

Test(litmus, container_kill)
{
	cep_exp *e = map_ok("container-kill",
	    POD ENV("TARGET_CONTAINER", "web"), NULL);
	const cep_exp_item *f = fault(e, "container-kill");
	cr_assert_eq(cep_exp_duration_ms(e), 20000);
	cr_assert_str_eq(cep_exp_str(f, "pod"), "web-0");
	cr_assert_str_eq(cep_exp_str(f, "container"), "web");
	cr_assert_eq(cep_exp_int(f, "interval"), 10000); /* CHAOS_INTERVAL */
	cr_assert_str_eq(cep_exp_str(f, "signal"), "SIGKILL");
	cep_exp_free(e);
	e = map_ok("container-kill",
	    POD ENV("CHAOS_INTERVAL", "3") ENV("SIGNAL", "SIGTERM"), NULL);
	f = fault(e, "container-kill");
	cr_assert_eq(cep_exp_int(f, "interval"), 3000);
	cr_assert_str_eq(cep_exp_str(f, "signal"), "SIGTERM");
	cep_exp_free(e);
	refused_env("container-kill", POD ENV("SIGNAL", "SIGSEGV"), 13,
	    "env SIGNAL: \"SIGSEGV\" is not supported");
	/* no TARGET_PODS: one pod of the applabel's, as for the other pod
	 * experiments */
	e = map_ok("container-kill", "", NULL);
	f = fault(e, "container-kill");
	cr_assert_not_null(cep_exp_str(f, "labelSelector"));
	cr_assert_eq(cep_exp_int(f, "count"), 1);
	cep_exp_free(e);
}
