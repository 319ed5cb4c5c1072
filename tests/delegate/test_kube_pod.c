/*
 * test_kube_pod.c - the runner Pod as built for a pod target of
 * node-level faults: nodeName, hostPID, uid 0 with exactly the
 * capabilities the faults need (everything else dropped, never
 * privileged), CEP_NODE_NAME, the node's cgroupfs only for the hogs; and
 * unchanged (non-root, no capabilities, no node) without a pod target.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "kube_pod.h"

static cep_connector conn;

static void setup(void)
{
	memset(&conn, 0, sizeof(conn));
	snprintf(conn.image, sizeof(conn.image), "cep/runner:1");
	conn.node_selector = json_pack("{s:s}", "pool", "chaos");
}
static void teardown(void)
{
	json_decref(conn.node_selector);
}

TestSuite(kube_pod, .init = setup, .fini = teardown);

/* The runner Pod of one run, as every test here starts from it. */
static cep_kpod base(void)
{
	return (cep_kpod){.run_id = "r-0123456789abcdef",
	    .name = "cep-runner-r-0123456789abcdef",
	    .ns = "shop",
	    .appliance = "a1",
	    .relay = "tls+tcp://relay:7443",
	    .deadline_s = 300};
}

static json_t *build(const char *node, unsigned caps, bool cgroupfs)
{
	cep_kpod p = base();
	p.node = node;
	p.caps = caps;
	p.cgroupfs = cgroupfs;
	json_t *pod = delegate_kpod_pod(&conn, &p);
	cr_assert_not_null(pod);
	return pod;
}

static json_t *at(json_t *o, const char *path)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *s = buf, *e; s != NULL && o != NULL; s = e) {
		e = strchr(s, '.');
		if (e != NULL)
			*e++ = '\0';
		o = json_is_array(o) ?
		    json_array_get(o, (size_t)strtol(s, NULL, 10)) :
		    json_object_get(o, s);
	}
	return o;
}

static char *caps_of(json_t *pod)
{
	static char buf[256];
	buf[0] = '\0';
	json_t *add = at(pod,
	           "spec.containers.0.securityContext.capabilities"
	           ".add"),
	       *v;
	size_t i;
	json_array_foreach(add, i, v)
	{
		size_t l = strlen(buf);
		snprintf(buf + l, sizeof(buf) - l, "%s%s", l ? " " : "",
		    json_string_value(v));
	}
	return buf;
}

Test(kube_pod, caps_per_fault_type)
{
	bool cg = false;
	cr_assert_eq(delegate_kpod_caps_for("network-loss", &cg),
	    CEP_KCAP_NET_ADMIN | CEP_KCAP_SYS_ADMIN | CEP_KCAP_SYS_PTRACE);
	cr_assert(!cg);
	cr_assert_eq(delegate_kpod_caps_for("network-duplicate", &cg) &
	        CEP_KCAP_NET_RAW,
	    CEP_KCAP_NET_RAW);
	cr_assert_eq(delegate_kpod_caps_for("disk-fill", &cg),
	    CEP_KCAP_SYS_PTRACE | CEP_KCAP_DAC_OVERRIDE);
	cr_assert(!cg);
	cr_assert_eq(delegate_kpod_caps_for("cpu-hog", &cg),
	    CEP_KCAP_SYS_PTRACE);
	cr_assert(cg);
	/* API faults, probes, host-only types: nothing */
	static const char *const none[] = {"pod-delete", "deployment-scale",
	    "node-cordon", "node-taint", "node-drain", "process-kill", "http",
	    "k8s", "bogus", NULL};
	for (size_t i = 0; none[i] != NULL; i++)
		cr_assert_eq(delegate_kpod_caps_for(none[i], NULL), 0, "%s",
		    none[i]);
	cr_assert_eq(delegate_kpod_caps_for(NULL, NULL), 0);
	cr_assert_str_eq(delegate_kpod_cap_name(CEP_KCAP_SYS_PTRACE),
	    "SYS_PTRACE");
	cr_assert_null(delegate_kpod_cap_name(3));
	cr_assert_null(delegate_kpod_cap_name(1u << 20));
}

Test(kube_pod, network_fault_on_a_pod_target)
{
	json_t *pod = build("node-2",
	    delegate_kpod_caps_for("network-loss", NULL), false);
	cr_assert_str_eq(json_string_value(at(pod, "spec.nodeName")), "node-2");
	cr_assert(json_is_true(at(pod, "spec.hostPID")));
	cr_assert_null(at(pod, "spec.nodeSelector"));
	cr_assert_str_eq(json_string_value(at(pod, "spec.restartPolicy")),
	    "Never");
	cr_assert_eq(json_integer_value(at(pod, "spec.activeDeadlineSeconds")),
	    300);
	cr_assert(json_is_false(at(pod, "spec.securityContext.runAsNonRoot")));
	cr_assert_eq(json_integer_value(at(pod,
	                 "spec.securityContext."
	                 "runAsUser")),
	    0);
	cr_assert_null(at(pod, "spec.securityContext.fsGroup"));
	json_t *sc = at(pod, "spec.containers.0.securityContext");
	cr_assert_str_eq(caps_of(pod), "NET_ADMIN SYS_ADMIN SYS_PTRACE");
	cr_assert_str_eq(json_string_value(at(sc, "capabilities.drop.0")),
	    "ALL");
	cr_assert(json_is_false(at(sc, "privileged")));
	cr_assert(json_is_false(at(sc, "allowPrivilegeEscalation")));
	cr_assert(json_is_true(at(sc, "readOnlyRootFilesystem")));
	cr_assert_eq(json_integer_value(at(sc, "runAsUser")), 0);
	/* CEP_NODE_NAME from the downward API; no host cgroupfs */
	json_t *env = at(pod, "spec.containers.0.env"), *v;
	size_t i;
	bool seen = false;
	json_array_foreach(env, i, v)
	{
		if (strcmp(json_string_value(at(v, "name")), "CEP_NODE_NAME"))
			continue;
		seen = true;
		cr_assert_str_eq(json_string_value(at(v,
		                     "valueFrom.fieldRef."
		                     "fieldPath")),
		    "spec.nodeName");
	}
	cr_assert(seen);
	cr_assert_eq(json_array_size(at(pod, "spec.volumes")), 1);
	cr_assert_eq(json_array_size(at(pod, "spec.containers.0.volumeMounts")),
	    1);
	/* labels as ever */
	cr_assert_str_eq(json_string_value(
	                     json_object_get(at(pod, "metadata.labels"),
	                         CEP_KPOD_MANAGED_BY)),
	    "cep");
	json_decref(pod);
}

Test(kube_pod, hogs_get_the_node_cgroupfs)
{
	bool cg = false;
	unsigned caps = delegate_kpod_caps_for("cpu-hog", &cg) |
	    delegate_kpod_caps_for("io-stress", &cg);
	json_t *pod = build("node-1", caps, cg);
	cr_assert_str_eq(caps_of(pod), "SYS_PTRACE DAC_OVERRIDE");
	cr_assert_str_eq(json_string_value(at(pod,
	                     "spec.volumes.1.hostPath."
	                     "path")),
	    "/sys/fs/cgroup");
	cr_assert_str_eq(json_string_value(at(pod,
	                     "spec.containers.0.volumeMounts.1.mountPath")),
	    "/sys/fs/cgroup");
	json_decref(pod);
}

Test(kube_pod, api_only_runner_unchanged)
{
	json_t *pod = build(NULL, CEP_KCAP_NET_ADMIN, true);
	cr_assert_null(at(pod, "spec.nodeName"));
	cr_assert_null(at(pod, "spec.hostPID"));
	cr_assert_str_eq(json_string_value(at(pod, "spec.nodeSelector.pool")),
	    "chaos");
	cr_assert(json_is_true(at(pod, "spec.securityContext.runAsNonRoot")));
	cr_assert_eq(json_integer_value(at(pod,
	                 "spec.securityContext."
	                 "fsGroup")),
	    CEP_KPOD_UID);
	cr_assert_eq(json_integer_value(at(pod,
	                 "spec.containers.0."
	                 "securityContext.runAsUser")),
	    CEP_KPOD_UID);
	cr_assert_null(at(pod,
	    "spec.containers.0.securityContext."
	    "capabilities.add"));
	cr_assert_eq(json_array_size(at(pod, "spec.volumes")), 1);
	json_decref(pod);
	pod = build("", 0, false);
	cr_assert_null(at(pod, "spec.nodeName"));
	json_decref(pod);
}

/* A restarted delegate reads the placement back from the Pod. */
Test(kube_pod, placement_round_trip)
{
	char node[64];
	unsigned caps = 0;
	bool cg = false;
	unsigned want = delegate_kpod_caps_for("network-latency", NULL) |
	    delegate_kpod_caps_for("cpu-hog", NULL);
	json_t *pod = build("node-3", want, true);
	cr_assert(delegate_kpod_placement(pod, node, sizeof(node), &caps, &cg));
	cr_assert_str_eq(node, "node-3");
	cr_assert_eq(caps, want);
	cr_assert(cg);
	json_decref(pod);
	pod = build(NULL, 0, false);
	cr_assert(
	    !delegate_kpod_placement(pod, node, sizeof(node), &caps, &cg));
	json_decref(pod);
	json_t *bad = json_pack("{s:{s:b, s:i}}", "spec", "hostPID", 1,
	    "nodeName", 7);
	cr_assert(
	    !delegate_kpod_placement(bad, node, sizeof(node), &caps, &cg));
	cr_assert(
	    !delegate_kpod_placement(NULL, node, sizeof(node), &caps, &cg));
	json_decref(bad);
}

static const char *env_of(json_t *pod, const char *name, bool *from_secret)
{
	json_t *env = at(pod, "spec.containers.0.env"), *v;
	size_t i;
	json_array_foreach(env, i, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "name")), name))
			continue;
		*from_secret = json_object_get(v, "valueFrom") != NULL;
		json_t *val = json_object_get(v, "value");
		return val ?
		    json_string_value(val) :
		    json_string_value(at(v, "valueFrom.secretKeyRef.key"));
	}
	return NULL;
}

/* The control-plane fallback (docs/runner.md): the URL and the plane's CA
 * travel in the Secret, the proxy in the environment (the connector's
 * httpsProxy unless controlPlane.proxy says otherwise); without a plane
 * none of it appears. */
Test(kube_pod, control_plane_fallback_in_secret_and_env)
{
	snprintf(conn.https_proxy, sizeof(conn.https_proxy),
	    "http://proxy.site:3128");
	cep_kpod p = base();
	p.cp_url = "https://plane.example.net";
	p.cp_ca_pem = "-----PEM-----";
	json_t *pod = delegate_kpod_pod(&conn, &p);
	bool sec = false;
	cr_assert_str_eq(env_of(pod, "CEP_CP_URL", &sec), "cp-url");
	cr_assert(sec, "the URL comes from the Secret");
	cr_assert_str_eq(env_of(pod, "CEP_CP_CA_FILE", &sec),
	    CEP_KPOD_IDENTITY_DIR "/cp-ca.crt");
	cr_assert_str_eq(env_of(pod, "CEP_CP_PROXY", &sec),
	    "http://proxy.site:3128");
	json_decref(pod);
	json_t *s = delegate_kpod_secret(&conn, &p, "uid-1", "ca", "crt",
	    "key");
	cr_assert_not_null(at(s, "data.cp-url"));
	cr_assert_not_null(json_object_get(at(s, "data"), "cp-ca.crt"));
	json_decref(s);
	p.cp_proxy = "http://other:8080";
	pod = delegate_kpod_pod(&conn, &p);
	cr_assert_str_eq(env_of(pod, "CEP_CP_PROXY", &sec),
	    "http://other:8080");
	json_decref(pod);
	p.cp_url = NULL;
	pod = delegate_kpod_pod(&conn, &p);
	cr_assert_null(env_of(pod, "CEP_CP_URL", &sec));
	cr_assert_null(env_of(pod, "CEP_CP_PROXY", &sec));
	json_decref(pod);
	s = delegate_kpod_secret(&conn, &p, "uid-1", "ca", "crt", "key");
	cr_assert_null(at(s, "data.cp-url"));
	json_decref(s);
}

/* The pod targets of a run: named pods and label selectors (the runner
 * chooses among the matching pods; the delegate places it on their
 * node), their capabilities merged; pod-delete's selector is not one. */
Test(kube_pod, targets_named_and_by_selector)
{
	static const char y[] =
	    "apiVersion: cep.io/v1\nkind: Experiment\nmetadata: {name: t}\n"
	    "spec:\n  target: {kind: kubernetes, connector: c, namespace: s}\n"
	    "  duration: 10s\n  faults:\n"
	    "    - {name: a, type: network-loss, pod: web-0, percent: 5}\n"
	    "    - {name: b, type: cpu-hog, labelSelector: app=web, count: 2}\n"
	    "    - {name: c, type: network-loss, labelSelector: app=web, "
	    "percentage: 50, percent: 5}\n"
	    "    - {name: d, type: pod-delete, labelSelector: app=db, "
	    "count: 1}\n";
	cep_exp *e = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_exp_parse(y, strlen(y), "t.yaml", &e, NULL, &err),
	    CEP_OK, "%s", err.msg);
	cep_exec_pods p;
	cr_assert_eq(delegate_kpod_targets(e, &p, &err), CEP_OK, "%s", err.msg);
	cr_assert_eq(p.n, 2, "web-0 and app=web (once)");
	cr_assert_str_eq(p.pod[0], "web-0");
	cr_assert_str_eq(p.selector[0], "");
	cr_assert_str_eq(p.pod[1], "");
	cr_assert_str_eq(p.selector[1], "app=web");
	cr_assert_eq(p.caps,
	    CEP_KCAP_NET_ADMIN | CEP_KCAP_SYS_ADMIN | CEP_KCAP_SYS_PTRACE);
	cr_assert(p.cgroupfs, "cpu-hog by selector mounts cgroupfs");
	cep_exp_free(e);
}

/* A hog with nodeSelector: the Pod carries that selector (not the
 * connector's) and no nodeName, so the scheduler chooses the node; it is
 * otherwise a node runner (hostPID, root, the cgroupfs). The selector
 * cannot be combined with pod targets or another node in one run. */
Test(kube_pod, hog_placed_by_node_selector)
{
	bool cg = false;
	cep_kpod p = base();
	p.node_selector = "role=db,topology.kubernetes.io/zone=a";
	p.caps = delegate_kpod_caps_for("cpu-hog", &cg);
	p.cgroupfs = true;
	json_t *pod = delegate_kpod_pod(&conn, &p);
	cr_assert_not_null(pod);
	cr_assert_null(at(pod, "spec.nodeName"));
	cr_assert(json_is_true(at(pod, "spec.hostPID")));
	json_t *sel = at(pod, "spec.nodeSelector");
	cr_assert_eq(json_object_size(sel), 2,
	    "no pool=chaos of the connector");
	cr_assert_str_eq(json_string_value(json_object_get(sel, "role")), "db");
	cr_assert_str_eq(json_string_value(json_object_get(sel,
	                     "topology.kubernetes.io/zone")),
	    "a");
	cr_assert_eq(json_integer_value(at(pod,
	                 "spec.containers.0.securityContext.runAsUser")),
	    0);
	json_decref(pod);

	static const char *const bad[] = {
	    "    - {name: a, type: cpu-hog, nodeSelector: role=db}\n"
	    "    - {name: b, type: network-loss, pod: web-0, percent: 5}\n",
	    "    - {name: a, type: cpu-hog, nodeSelector: role=db}\n"
	    "    - {name: b, type: memory-hog, node: node-1, mib: 8}\n",
	    "    - {name: a, type: cpu-hog, nodeSelector: role=db}\n"
	    "    - {name: b, type: memory-hog, nodeSelector: role=web, mib: "
	    "8}\n"};
	static const char *const why[] =
	    {"a hog on a node chosen by nodeSelector role=db and pod targets",
	        "node targets nodeSelector role=db and node-1",
	        "node targets nodeSelector role=db and nodeSelector role=web"};
	for (size_t i = 0; i < 3; i++) {
		char y[1024];
		snprintf(y, sizeof(y),
		    "apiVersion: cep.io/v1\nkind: Experiment\nmetadata: "
		    "{name: t}\nspec:\n  target: {kind: kubernetes, "
		    "connector: c, namespace: s}\n  duration: 10s\n  "
		    "faults:\n%s",
		    bad[i]);
		cep_exp *e = NULL;
		cep_err err = {0};
		cr_assert_eq(cep_exp_parse(y, strlen(y), "t.yaml", &e, NULL,
		                 &err),
		    CEP_OK, "%s", err.msg);
		cep_exec_pods pods;
		cr_assert_eq(delegate_kpod_targets(e, &pods, &err),
		    CEP_INVALID_ARGUMENT);
		cr_assert(strstr(err.msg, why[i]) != NULL, "%s", err.msg);
		cep_exp_free(e);
	}
}
