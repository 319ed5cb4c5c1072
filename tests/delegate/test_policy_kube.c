/* test_policy_kube.c - kubernetes targets through the whole delegate
 * (tests/delegate/fixture.h) against the Kubernetes API test server:
 * the policy refuses a namespace outside the connector, kube-system, a
 * namespace policy.namespaces.deny names, and an unknown connector - before
 * any object exists in the cluster; an accepted run becomes a runner pod
 * that is watched to its end and cleaned up to zero objects; after a
 * kill -9 of the delegate (delegate_free) a restart adopts the live
 * pod and collects the objects of unknown runs. */
#define _GNU_SOURCE
#include "fixture.h"

#include "connector.h"
#include "kube.h"
#include "kubeapi_fixture.h"

#define SEL_CEP "app.kubernetes.io/managed-by=cep"

static kubeapi_fixture *api;
static cep_kube *kadmin;
static char *side; /* scripts and flags the pod processes can read */

static void put(const char *path, const char *text, unsigned mode)
{
	cep_err err = {0};
	cr_assert_eq(cep_files_write(path, text, strlen(text), mode, &err),
	    CEP_OK, "%s", err.msg);
}

static const char users[] =
    "{\"users\": ["
    "{\"name\": \"admin\", \"token\": \"t-admin\", \"rules\": [{\"namespaces\":"
    " [\"*\"], \"groups\": [\"*\"], \"resources\": [\"*\"], \"verbs\": [\"*\"]}]},"
    "{\"name\": \"delegate\", \"token\": \"t-deleg\", \"rules\": [{\"namespaces\":"
    " [\"shop\"], \"groups\": [\"\"], \"resources\": [\"pods\", \"secrets\"],"
    " \"verbs\": [\"get\", \"list\", \"watch\", \"create\", \"delete\"]}]}]}";

static void kube_setup(void)
{
	cep_err err = {0};
	setup();
	delegate_free(dg); /* restarted below with connectors */
	dg = NULL;
	side = cep_test_tmpdir("kpol");
	chmod(side, 0755);
	char p[4300], up[4300], img[4300];
	/* The "runner": waits for <side>/exit-<run id>, at most 60 s. */
	snprintf(p, sizeof(p), "%s/runner.sh", side);
	char body[8192];
	snprintf(body, sizeof(body),
	    "#!/bin/sh\ni=0\n"
	    "while [ ! -e \"%s/exit-$CEP_RUN_ID\" ] && [ $i -lt 300 ]; do\n"
	    "  sleep 0.2; i=$((i+1))\ndone\nexit 0\n",
	    side);
	put(p, body, 0755);
	snprintf(up, sizeof(up), "%s/users.json", side);
	put(up, users, 0600);
	snprintf(img, sizeof(img), "cep/runner=%s", p);
	const char *args[] = {"--users", up, "--namespace", "shop",
	    "--namespace", "payments", "--namespace", "team-secret",
	    "--exec-image", img, NULL};
	api = kubeapi_start(args);
	cr_assert_not_null(api, "kube API test server did not start");
	char *akc = kubeapi_kubeconfig(api, NULL);
	cr_assert_eq(cep_kube_from_kubeconfig(akc, NULL, false, &kadmin, &err),
	    CEP_OK, "%s", err.msg);
	free(akc);
	char dir[4300], y[8192];
	snprintf(dir, sizeof(dir), "%s/connectors.d", paths.config);
	cr_assert_eq(cep_files_mkdirs(dir, 0700, &err), CEP_OK);
	char *kc = kubeapi_kubeconfig(api, "delegate");
	snprintf(y, sizeof(y),
	    "kubeconfig: %s\nnamespaces: [shop, \"team-*\"]\n"
	    "applianceNamespace: cep-system\nrunner:\n  serviceAccount: cep-runner\n"
	    "  image: cep/runner\ntimeouts: {request: 5s, launch: 30s}\n",
	    kc);
	free(kc);
	snprintf(p, sizeof(p), "%s/prod.yaml", dir);
	put(p, y, 0600);
	cfg.policy.n_ns_deny = 1;
	snprintf(cfg.policy.ns_deny[0], sizeof(cfg.policy.ns_deny[0]),
	    "team-secret");
	start_delegate();
}

static void kube_teardown(void)
{
	teardown();
	cep_kube_free(kadmin);
	kubeapi_stop(api);
	cep_test_rmdir(side);
}

TestSuite(policy_kube, .init = kube_setup, .fini = kube_teardown,
    .timeout = 120);

static char *kspec(const char *conn, const char *ns)
{
	char *y = NULL;
	cr_assert(
	    asprintf(&y,
	        "apiVersion: cep.io/v1\nkind: Experiment\nmetadata:\n  name: k\n"
	        "spec:\n  target:\n    kind: kubernetes\n    connector: %s\n"
	        "    namespace: %s\n  duration: 20s\n",
	        conn, ns) > 0);
	return y;
}

/* Objects with the cep labels anywhere in the cluster, as admin. */
static size_t cep_objects(void)
{
	size_t n = 0;
	const cep_kube_res *res[] = {&cep_kube_pods, &cep_kube_secrets};
	for (int i = 0; i < 2; i++) {
		cep_kube_list_opts o = {.label_selector = SEL_CEP};
		json_t *items = NULL;
		cep_err err = {0};
		cr_assert_eq(cep_kube_list(kadmin, res[i], NULL, &o, &items,
		                 NULL, 0, &err),
		    CEP_OK, "%s", err.msg);
		n += json_array_size(items);
		json_decref(items);
	}
	return n;
}

static void refused_with(const char *conn, const char *ns, const char *want)
{
	char id[24] = "", *y = kspec(conn, ns);
	cep_err err = {0};
	int rv = submit(y, id, &err);
	free(y);
	cr_assert_eq(rv, CEP_FAILED_PRECONDITION, "%s", err.msg);
	cr_assert(strstr(err.msg, want) != NULL, "got: %s", err.msg);
	cep_clock_sleep_ms(300); /* a launch, had there been one, would show */
	cr_assert_eq(cep_objects(), 0, "an object exists after a refusal");
	char runs[4300];
	snprintf(runs, sizeof(runs), "%s/runs", paths.state);
	DIR *d = opendir(runs);
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	cr_assert_eq(n, 0, "a run was created for a refused submit");
}

Test(policy_kube, namespace_outside_connector_refused)
{
	refused_with("prod", "payments",
	    "policy: namespace \"payments\" not "
	    "allowed by connector \"prod\"");
	refused_with("prod", "payments", "prod.yaml, key namespaces");
}

Test(policy_kube, kube_system_refused_even_by_glob_owner)
{
	refused_with("prod", "kube-system", "kube-system");
}

Test(policy_kube, appliance_namespace_refused)
{
	refused_with("prod", "cep-system", "cep-system");
}

Test(policy_kube, policy_deny_wins_over_connector_glob)
{
	refused_with("prod", "team-secret",
	    "policy: namespace \"team-secret\" "
	    "denied by policy.namespaces.deny \"team-secret\"");
}

Test(policy_kube, unknown_connector_refused)
{
	refused_with("nope", "shop", "policy: no connector \"nope\"");
	refused_with("nope", "shop", "connectors.d/nope.yaml does not exist");
}

static void let_exit(const char *id)
{
	char p[4300];
	snprintf(p, sizeof(p), "%s/exit-%s", side, id);
	put(p, "", 0644);
}

static json_t *pod_of(const char *id)
{
	char name[64];
	snprintf(name, sizeof(name), "cep-runner-%s", id);
	json_t *o = NULL;
	cep_err err = {0};
	return cep_kube_get(kadmin, &cep_kube_pods, "shop", name, &o, &err) ==
	        CEP_OK ?
	    o :
	    NULL;
}

static json_t *wait_pod(const char *id, int ms)
{
	json_t *o = NULL;
	for (int t = 0; t < ms && (o = pod_of(id)) == NULL; t += 100)
		cep_clock_sleep_ms(100);
	return o;
}

static void wait_no_objects(int ms)
{
	for (int t = 0; t < ms && cep_objects() > 0; t += 100)
		cep_clock_sleep_ms(100);
	cr_assert_eq(cep_objects(), 0, "objects with the cep labels remain");
}

Test(policy_kube, accepted_run_becomes_a_pod_and_leaves_nothing)
{
	char id[24], reason[512], *y = kspec("prod", "shop");
	cep_err err = {0};
	cr_assert_eq(submit(y, id, &err), CEP_OK, "%s", err.msg);
	free(y);
	json_t *pod = wait_pod(id, 15000);
	cr_assert_not_null(pod, "runner pod not created");
	cr_assert(
	    json_integer_value(json_object_get(json_object_get(pod, "spec"),
	        "activeDeadlineSeconds")) > 0);
	json_decref(pod);
	char uri[256];
	for (int t = 0; t < 3000 && !relay_granted(id, uri, sizeof(uri));
	     t += 50)
		cep_clock_sleep_ms(50);
	cr_assert(relay_granted(id, uri, sizeof(uri)));
	cr_assert(strstr(uri, "/prod/shop/") != NULL, "identity %s", uri);
	let_exit(id);
	cr_assert_eq(wait_state(id, CEP__V1__RUN_STATE__RUN_ERROR, 30000,
	                 reason, sizeof(reason)),
	    CEP__V1__RUN_STATE__RUN_ERROR, "%s", reason);
	cr_assert(strstr(reason,
	              "runner ended before a verdict: pod Succeeded") != NULL,
	    "%s", reason);
	wait_no_objects(1000); /* final only after confirmed gone */
}

/* A leftover of an unknown run, as if made just before a kill -9. */
static void leftover(const char *run)
{
	char name[64];
	snprintf(name, sizeof(name), "cep-runner-%s", run);
	json_t *pod = json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s, s:s}}, "
	                        "s:{s:[{s:s, s:s}]}}",
	    "apiVersion", "v1", "kind", "Pod", "metadata", "name", name,
	    "labels", "app.kubernetes.io/managed-by", "cep", "cep.io/run-id",
	    run, "cep.io/appliance", "test", "spec", "containers", "name",
	    "runner", "image", "busybox");
	cep_err err = {0};
	cr_assert_eq(cep_kube_create(kadmin, &cep_kube_pods, "shop", pod, NULL,
	                 &err),
	    CEP_OK, "%s", err.msg);
	json_decref(pod);
}

Test(policy_kube, restart_adopts_live_pod_and_collects_unknown)
{
	char id[24], reason[512], *y = kspec("prod", "shop");
	cep_err err = {0};
	cr_assert_eq(submit(y, id, &err), CEP_OK, "%s", err.msg);
	free(y);
	json_t *pod = wait_pod(id, 15000);
	cr_assert_not_null(pod);
	json_decref(pod);
	cep_run_id unknown;
	cep_run_id_new(&unknown);
	leftover(unknown.s);
	delegate_free(dg); /* like kill -9: nothing cleaned */
	dg = NULL;
	start_delegate();
	/* the unknown run's pod is collected, the live run's is not */
	json_t *u = NULL;
	for (int t = 0; t < 15000 && (u = pod_of(unknown.s)) != NULL;
	     t += 100) {
		json_decref(u);
		cep_clock_sleep_ms(100);
	}
	cr_assert_null(u, "leftover pod of an unknown run not collected");
	pod = pod_of(id);
	cr_assert_not_null(pod, "the live run's pod was collected");
	json_decref(pod);
	Cep__V1__RunState st = run_state(id, reason, sizeof(reason));
	cr_assert(st == CEP__V1__RUN_STATE__RUN_LAUNCHING ||
	        st == CEP__V1__RUN_STATE__RUN_RUNNING,
	    "state %d %s", st, reason);
	let_exit(id);
	cr_assert_eq(wait_state(id, CEP__V1__RUN_STATE__RUN_ERROR, 30000,
	                 reason, sizeof(reason)),
	    CEP__V1__RUN_STATE__RUN_ERROR, "%s", reason);
	cr_assert(strstr(reason, "pod Succeeded") != NULL, "%s", reason);
	wait_no_objects(1000);
}

Test(policy_kube, graceful_stop_kills_the_pod_and_leaves_nothing)
{
	char id[24], reason[512], *y = kspec("prod", "shop");
	cep_err err = {0};
	cr_assert_eq(submit(y, id, &err), CEP_OK, "%s", err.msg);
	free(y);
	json_t *pod = wait_pod(id, 15000);
	cr_assert_not_null(pod);
	json_decref(pod);
	/* the script ignores the abort: killed after the grace period */
	delegate_stop(dg);
	cr_assert_eq(delegate_active_runs(dg), 0);
	cr_assert_eq(run_state(id, reason, sizeof(reason)),
	    CEP__V1__RUN_STATE__RUN_ABORTED, "%s", reason);
	cr_assert_str_eq(reason, "delegate stopping");
	cr_assert_eq(cep_objects(), 0, "objects left after a graceful stop");
}
