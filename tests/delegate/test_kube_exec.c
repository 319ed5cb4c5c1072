/* test_kube_exec.c - the kubernetes executor (delegate/executor_kube.c)
 * against the Kubernetes API test server (tests/kubeapi/). The connector
 * uses the least-privilege "delegate" user; what is in the cluster is read
 * back independently as "admin". Pod images are mapped to small shell
 * scripts the test server's kubelet runs as real processes (as uid 65532,
 * with the Secret mounted), so exit statuses and the identity mount are
 * real. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connector.h"
#include "executor.h"
#include "kube.h"
#include "kubeapi_fixture.h"
#include "testutil.h"
#include "clock.h"
#include "files.h"
#include "run_id.h"

#define RELAY "tls+tcp://127.0.0.1:7443"
#define SEL_CEP "app.kubernetes.io/managed-by=cep"
#define UNPULLABLE "unpullable.invalid/cep-runner:1"

static char *tmp;
static kubeapi_fixture *api;
static cep_kube *admin;
static cep_connectors *conns;
static cep_executor *ex;
static int silent_fd = -1;
static char idd[4200];

static void put(const char *path, const char *text, unsigned mode)
{
	cep_err err = {0};
	cr_assert_eq(cep_files_write(path, text, strlen(text), mode, &err),
	    CEP_OK, "%s", err.msg);
}

static void script(const char *name, const char *body)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/%s", tmp, name);
	put(p, body, 0755);
}

static const char users[] =
    "{\"users\": ["
    "{\"name\": \"admin\", \"token\": \"t-admin\", \"rules\": [{\"namespaces\":"
    " [\"*\"], \"groups\": [\"*\"], \"resources\": [\"*\"], \"verbs\": [\"*\"]}]},"
    "{\"name\": \"delegate\", \"token\": \"t-deleg\", \"rules\": [{\"namespaces\":"
    " [\"shop\"], \"groups\": [\"\"], \"resources\": [\"pods\", \"secrets\"],"
    " \"verbs\": [\"get\", \"list\", \"watch\", \"create\", \"delete\"]}]}]}";

/* connectors.d/<name>.yaml using kubeconfig kc and image. */
static void connector_t(const char *name, const char *kc, const char *image,
    const char *request_timeout, const char *launch_timeout)
{
	char p[4200], y[8192];
	snprintf(p, sizeof(p), "%s/config/connectors.d/%s.yaml", tmp, name);
	snprintf(y, sizeof(y),
	    "kubeconfig: %s\nnamespaces: [shop]\nrunner:\n"
	    "  serviceAccount: cep-runner\n  image: %s\n"
	    "  imagePullPolicy: IfNotPresent\n  relay: " RELAY "\n"
	    "  resources: {cpuRequest: 50m, cpuLimit: 500m, memoryRequest: 32Mi,"
	    " memoryLimit: 128Mi}\n  labels: {team: sre}\n"
	    "  annotations: {example.com/note: chaos}\n"
	    "timeouts: {request: %s, launch: %s}\n",
	    kc, image, request_timeout, launch_timeout);
	put(p, y, 0600);
}

static void connector(const char *name, const char *kc, const char *image,
    const char *request_timeout)
{
	connector_t(name, kc, image, request_timeout, "30s");
}

/* A TCP port that accepts connections (backlog) and never answers. */
static int silent_port(void)
{
	silent_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	cr_assert(bind(silent_fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	cr_assert(listen(silent_fd, 64) == 0);
	cr_assert(getsockname(silent_fd, (struct sockaddr *)&a, &len) == 0);
	return ntohs(a.sin_port);
}

static void dead_kubeconfig(char *path, size_t len)
{
	char y[8192];
	snprintf(path, len, "%s/kubeconfig-dead", tmp);
	snprintf(y, sizeof(y),
	    "apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster:\n"
	    "    server: https://127.0.0.1:%d\n    certificate-authority: %s/ca.crt\n"
	    "users:\n- name: u\n  user:\n    token: t-deleg\ncontexts:\n"
	    "- name: dead\n  context: {cluster: dead, user: u}\n"
	    "current-context: dead\n",
	    silent_port(), kubeapi_dir(api));
	put(path, y, 0600);
}

static void setup(void)
{
	cep_err err = {0};
	tmp = cep_test_tmpdir("kexec");
	chmod(tmp, 0755); /* the pod processes run as uid 65532 */
	script("sleep.sh", "#!/bin/sh\nexec sleep 60\n");
	script("exit3.sh", "#!/bin/sh\nexit 3\n");
	script("check.sh",
	    "#!/bin/sh\n"
	    "[ -r \"$CEP_IDENTITY_DIR/runner.key\" ] || exit 7\n"
	    "[ \"$(cat \"$CEP_IDENTITY_DIR/runner.crt\")\" = CERT ] || exit 8\n"
	    "[ \"$CEP_RELAY\" = \"" RELAY "\" ] || exit 9\n"
	    "[ -n \"$CEP_RUN_ID\" ] || exit 10\n"
	    "[ \"$(id -u)\" = 65532 ] || exit 11\nexit 0\n");
	char up[4200], a1[4300], a2[4300], a3[4300];
	snprintf(up, sizeof(up), "%s/users.json", tmp);
	put(up, users, 0600);
	snprintf(a1, sizeof(a1), "cep/sleep=%s/sleep.sh", tmp);
	snprintf(a2, sizeof(a2), "cep/exit3=%s/exit3.sh", tmp);
	snprintf(a3, sizeof(a3), "cep/check=%s/check.sh", tmp);
	const char *args[] = {"--users", up, "--namespace", "shop",
	    "--exec-image", a1, "--exec-image", a2, "--exec-image", a3, NULL};
	api = kubeapi_start(args);
	cr_assert_not_null(api, "kube API test server did not start");
	char *akc = kubeapi_kubeconfig(api, NULL);
	cr_assert_eq(cep_kube_from_kubeconfig(akc, NULL, false, &admin, &err),
	    CEP_OK, "%s", err.msg);
	free(akc);
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/config/connectors.d", tmp);
	cr_assert_eq(cep_files_mkdirs(dir, 0700, &err), CEP_OK);
	char *kc = kubeapi_kubeconfig(api, "delegate");
	connector("sleepy", kc, "cep/sleep", "5s");
	connector("failing", kc, "cep/exit3", "5s");
	connector("checking", kc, "cep/check", "5s");
	/* the test server's kubelet never pulls unpullable.invalid/ images */
	connector_t("unpullable", kc, UNPULLABLE, "5s", "3s");
	free(kc);
	char dkc[4200];
	dead_kubeconfig(dkc, sizeof(dkc));
	connector("dead", dkc, "cep/sleep", "1s");
	cep_paths p;
	cr_assert_eq(cep_paths_resolve(tmp, &p, &err), CEP_OK);
	cr_assert_eq(cep_connector_list_load(&p, &conns, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(delegate_executor_kube_new(conns, "test", RELAY, &ex,
	                 &err),
	    CEP_OK, "%s", err.msg);
	snprintf(idd, sizeof(idd), "%s/identity", tmp);
	cr_assert_eq(cep_files_mkdirs(idd, 0700, &err), CEP_OK);
	char f[4300];
	snprintf(f, sizeof(f), "%s/ca.crt", idd);
	put(f, "CA", 0600);
	snprintf(f, sizeof(f), "%s/runner.crt", idd);
	put(f, "CERT", 0600);
	snprintf(f, sizeof(f), "%s/runner.key", idd);
	put(f, "KEY", 0600);
}

static void teardown(void)
{
	delegate_executor_free(ex);
	ex = NULL;
	cep_connector_list_free(conns);
	cep_kube_free(admin);
	kubeapi_stop(api);
	if (silent_fd >= 0)
		close(silent_fd);
	silent_fd = -1;
	cep_test_rmdir(tmp);
}

TestSuite(kube_exec, .init = setup, .fini = teardown, .timeout = 150);

/* ------------------------------------------------------------ helpers */

static void launch(const char *conn, char *id, cep_exec_handle *h,
    int64_t life_ms)
{
	cep_run_id rid;
	cep_run_id_new(&rid);
	snprintf(id, 24, "%s", rid.s);
	cep_exec_launch l = {.run_id = id,
	    .identity_dir = idd,
	    .relay_url = RELAY,
	    .connector = conn,
	    .ns = "shop",
	    .appliance = "test",
	    .not_after_ms = cep_clock_now_ms() + life_ms};
	cep_err err = {0};
	cr_assert_eq(delegate_executor_launch(ex, &l, h, &err), CEP_OK, "%s",
	    err.msg);
}

static enum cep_exec_status wait_exit(const cep_exec_handle *h, char *what,
    size_t len, int ms)
{
	enum cep_exec_status st = CEP_EXEC_ALIVE;
	for (int t = 0; t < ms && st == CEP_EXEC_ALIVE; t += 100) {
		st = delegate_executor_poll(ex, h, what, len);
		if (st == CEP_EXEC_ALIVE)
			cep_clock_sleep_ms(100);
	}
	return st;
}

static enum cep_exec_state undo(const char *id, cep_err *err)
{
	enum cep_exec_state rv = CEP_EXEC_PENDING;
	for (int t = 0; t < 60000 && rv == CEP_EXEC_PENDING; t += 100) {
		rv = delegate_executor_undo(ex, id, err);
		if (rv == CEP_EXEC_PENDING)
			cep_clock_sleep_ms(100);
	}
	return rv;
}

/* Objects of res in shop matching sel, as admin. */
static size_t count(const cep_kube_res *res, const char *sel)
{
	cep_kube_list_opts o = {.label_selector = sel};
	json_t *items = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_kube_list(admin, res, "shop", &o, &items, NULL, 0,
	                 &err),
	    CEP_OK, "%s", err.msg);
	size_t n = json_array_size(items);
	json_decref(items);
	return n;
}

static json_t *get_obj(const cep_kube_res *res, const char *name)
{
	json_t *o = NULL;
	cep_err err = {0};
	int rv = cep_kube_get(admin, res, "shop", name, &o, &err);
	return rv == CEP_OK ? o : NULL;
}

static json_t *wait_obj(const cep_kube_res *res, const char *name, int ms)
{
	json_t *o = NULL;
	for (int t = 0; t < ms && (o = get_obj(res, name)) == NULL; t += 100)
		cep_clock_sleep_ms(100);
	return o;
}

static const char *jpath(json_t *o, const char *a, const char *b, const char *c)
{
	json_t *v = json_object_get(json_object_get(o, a), b);
	if (c != NULL)
		v = json_object_get(v, c);
	return json_string_value(v);
}

/* -------------------------------------------------------------- tests */

Test(kube_exec, launch_creates_pod_and_secret_as_specified)
{
	char id[24], sel[128];
	cep_exec_handle h;
	launch("sleepy", id, &h, 120000);
	cr_assert_str_eq(h.ns, "shop");
	cr_assert_str_eq(h.connector, "sleepy");
	char want[64];
	snprintf(want, sizeof(want), "cep-runner-%s", id);
	cr_assert_str_eq(h.pod, want);
	json_t *pod = wait_obj(&cep_kube_pods, h.pod, 15000);
	json_t *sec = wait_obj(&cep_kube_secrets, h.pod, 15000);
	cr_assert_not_null(pod, "pod not created");
	cr_assert_not_null(sec, "secret not created");
	/* labels, on both */
	json_t *objs[] = {pod, sec};
	for (int i = 0; i < 2; i++) {
		cr_assert_str_eq(jpath(objs[i], "metadata", "labels",
		                     "app.kubernetes.io/managed-by"),
		    "cep");
		cr_assert_str_eq(jpath(objs[i], "metadata", "labels",
		                     "cep.io/run-id"),
		    id);
		cr_assert_str_eq(jpath(objs[i], "metadata", "labels",
		                     "cep.io/appliance"),
		    "test");
		cr_assert_str_eq(jpath(objs[i], "metadata", "labels", "team"),
		    "sre");
	}
	cr_assert_str_eq(jpath(pod, "metadata", "annotations",
	                     "example.com/note"),
	    "chaos");
	json_t *spec = json_object_get(pod, "spec");
	json_int_t ads = json_integer_value(
	    json_object_get(spec, "activeDeadlineSeconds"));
	cr_assert(ads > 100 && ads <= 120, "activeDeadlineSeconds %lld",
	    (long long)ads);
	cr_assert_str_eq(json_string_value(
	                     json_object_get(spec, "restartPolicy")),
	    "Never");
	cr_assert_str_eq(json_string_value(
	                     json_object_get(spec, "serviceAccountName")),
	    "cep-runner");
	json_t *ct = json_array_get(json_object_get(spec, "containers"), 0);
	json_t *sc = json_object_get(ct, "securityContext");
	cr_assert(json_is_true(json_object_get(sc, "runAsNonRoot")));
	cr_assert_eq(json_integer_value(json_object_get(sc, "runAsUser")),
	    65532);
	cr_assert(json_is_true(json_object_get(sc, "readOnlyRootFilesystem")));
	cr_assert(
	    json_is_false(json_object_get(sc, "allowPrivilegeEscalation")));
	cr_assert_str_eq(json_string_value(
	                     json_array_get(json_object_get(json_object_get(sc,
	                                                        "capabilities"),
	                                        "drop"),
	                         0)),
	    "ALL");
	cr_assert_str_eq(jpath(sc, "seccompProfile", "type", NULL),
	    "RuntimeDefault");
	cr_assert_str_eq(jpath(ct, "resources", "limits", "memory"), "128Mi");
	cr_assert_str_eq(json_string_value(json_object_get(ct, "image")),
	    "cep/sleep");
	/* the Secret: owned by the pod, with the identity files */
	json_t *own = json_array_get(json_object_get(json_object_get(sec,
	                                                 "metadata"),
	                                 "ownerReferences"),
	    0);
	cr_assert_str_eq(json_string_value(json_object_get(own, "kind")),
	    "Pod");
	cr_assert_str_eq(json_string_value(json_object_get(own, "uid")),
	    jpath(pod, "metadata", "uid", NULL));
	json_t *data = json_object_get(sec, "data");
	cr_assert_not_null(json_object_get(data, "ca.crt"));
	cr_assert_not_null(json_object_get(data, "runner.crt"));
	cr_assert_not_null(json_object_get(data, "runner.key"));
	cr_assert_not_null(json_object_get(data, "relay"));
	json_decref(pod);
	json_decref(sec);
	char what[512];
	cr_assert_eq(delegate_executor_poll(ex, &h, what, sizeof(what)),
	    CEP_EXEC_ALIVE);
	cep_err err = {0};
	cr_assert_eq(undo(id, &err), CEP_EXEC_DONE, "%s", err.msg);
	snprintf(sel, sizeof(sel), SEL_CEP ",cep.io/run-id=%s", id);
	cr_assert_eq(count(&cep_kube_pods, SEL_CEP), 0, "pod left after undo");
	cr_assert_eq(count(&cep_kube_secrets, SEL_CEP), 0,
	    "secret left after undo");
}

Test(kube_exec, poll_reports_exit_status)
{
	char ok[24], bad[24], what[512];
	cep_exec_handle hok, hbad;
	launch("checking", ok, &hok, 120000);
	launch("failing", bad, &hbad, 120000);
	cr_assert_eq(wait_exit(&hok, what, sizeof(what), 30000),
	    CEP_EXEC_EXITED);
	cr_assert(strncmp(what, "pod Succeeded (exit 0", 21) == 0, "%s", what);
	cr_assert_eq(wait_exit(&hbad, what, sizeof(what), 30000),
	    CEP_EXEC_EXITED);
	cr_assert(strstr(what, "pod Failed") && strstr(what, "exit 3"), "%s",
	    what);
	cep_err err = {0};
	cr_assert_eq(undo(ok, &err), CEP_EXEC_DONE, "%s", err.msg);
	cr_assert_eq(undo(bad, &err), CEP_EXEC_DONE, "%s", err.msg);
	cr_assert_eq(count(&cep_kube_pods, SEL_CEP), 0);
	cr_assert_eq(count(&cep_kube_secrets, SEL_CEP), 0);
}

Test(kube_exec, active_deadline_ends_the_pod)
{
	char id[24], what[512];
	cep_exec_handle h;
	launch("sleepy", id, &h, 3000);
	cr_assert_eq(wait_exit(&h, what, sizeof(what), 30000), CEP_EXEC_EXITED);
	cr_assert(strstr(what, "pod Failed: DeadlineExceeded") != NULL, "%s",
	    what);
	cep_err err = {0};
	cr_assert_eq(undo(id, &err), CEP_EXEC_DONE, "%s", err.msg);
}

Test(kube_exec, kill_deletes_the_pod)
{
	char id[24], what[512];
	cep_exec_handle h;
	launch("sleepy", id, &h, 120000);
	json_t *pod = NULL;
	for (int t = 0; t < 20000; t += 100) { /* until it runs */
		pod = get_obj(&cep_kube_pods, h.pod);
		const char *ph = pod ? jpath(pod, "status", "phase", NULL) :
		                       NULL;
		bool run = ph != NULL && strcmp(ph, "Running") == 0;
		json_decref(pod);
		if (run)
			break;
		cep_clock_sleep_ms(100);
	}
	cr_assert_eq(delegate_executor_poll(ex, &h, what, sizeof(what)),
	    CEP_EXEC_ALIVE);
	delegate_executor_kill(ex, &h);
	cr_assert_eq(wait_exit(&h, what, sizeof(what), 20000), CEP_EXEC_EXITED);
	json_t *gone = NULL;
	for (int t = 0; t < 10000 && (gone = get_obj(&cep_kube_pods, h.pod));
	     t += 100) {
		json_decref(gone);
		cep_clock_sleep_ms(100);
	}
	cr_assert_null(gone, "pod still there after kill (%s)", what);
	cep_err err = {0};
	cr_assert_eq(undo(id, &err), CEP_EXEC_DONE, "%s", err.msg);
	cr_assert_eq(count(&cep_kube_secrets, SEL_CEP), 0);
}

Test(kube_exec, dead_api_server_does_not_delay_another_connector)
{
	char dead[24], live[24], what[512];
	cep_exec_handle hd, hl;
	int64_t t0 = cep_clock_mono_ms();
	launch("dead", dead, &hd, 120000);
	launch("sleepy", live, &hl, 120000);
	/* launch itself never waits for a cluster */
	cr_assert_lt(cep_clock_mono_ms() - t0, 2000);
	json_t *pod = wait_obj(&cep_kube_pods, hl.pod, 20000);
	cr_assert_not_null(pod,
	    "healthy connector's pod not created while "
	    "another connector's server hangs");
	json_decref(pod);
	cr_assert_eq(delegate_executor_poll(ex, &hd, what, sizeof(what)),
	    CEP_EXEC_ALIVE,
	    "the dead connector's launch should still be trying, "
	    "got: %s",
	    what);
	cep_err err = {0};
	cr_assert_eq(undo(live, &err), CEP_EXEC_DONE, "%s", err.msg);
	/* the dead one ends with a clear reason */
	cr_assert_eq(wait_exit(&hd, what, sizeof(what), 60000),
	    CEP_EXEC_EXITED);
	cr_assert(strstr(what, "launch failed") != NULL, "%s", what);
}

Test(kube_exec, forbidden_watch_mid_run_ends_run_and_cleans_up)
{
	char id[24], what[512];
	cep_exec_handle h;
	launch("sleepy", id, &h, 120000);
	json_t *pod = wait_obj(&cep_kube_pods, h.pod, 15000);
	cr_assert_not_null(pod);
	json_decref(pod);
	cep_clock_sleep_ms(500); /* let the watch start (it is not asserted) */
	cr_assert_eq(
	    kubeapi_control(api, "revoke",
	        "{\"user\": \"delegate\", "
	        "\"namespace\": \"shop\", \"resource\": \"pods\", \"verb\": "
	        "\"watch\"}"),
	    200);
	cr_assert_eq(
	    kubeapi_control(api, "revoke",
	        "{\"user\": \"delegate\", "
	        "\"namespace\": \"shop\", \"resource\": \"pods\", \"verb\": "
	        "\"list\"}"),
	    200);
	cr_assert_eq(kubeapi_control(api, "drop-watches", NULL), 200);
	cr_assert_eq(wait_exit(&h, what, sizeof(what), 30000), CEP_EXEC_EXITED);
	cr_assert(strstr(what, "watching the pod failed") &&
	        strstr(what, "403"),
	    "%s", what);
	cep_err err = {0};
	cr_assert_eq(undo(id, &err), CEP_EXEC_DONE, "%s", err.msg);
	cr_assert_eq(count(&cep_kube_pods, SEL_CEP), 0);
	cr_assert_eq(count(&cep_kube_secrets, SEL_CEP), 0);
}

Test(kube_exec, unpullable_image_ends_at_the_launch_timeout_and_cleans_up)
{
	char id[24], what[512], want[200];
	cep_exec_handle h;
	int64_t t0 = cep_clock_mono_ms();
	launch("unpullable", id, &h, 120000);
	json_t *pod = wait_obj(&cep_kube_pods, h.pod, 15000);
	cr_assert_not_null(pod);
	json_decref(pod);
	cr_assert_eq(wait_exit(&h, what, sizeof(what), 30000), CEP_EXEC_EXITED);
	/* ended by timeouts.launch (3s), not earlier */
	cr_assert_geq(cep_clock_mono_ms() - t0, 3000, "%s", what);
	pod = get_obj(&cep_kube_pods, h.pod); /* what the cluster shows */
	if (pod != NULL) {
		const char *ph = jpath(pod, "status", "phase", NULL);
		cr_assert(ph != NULL && strcmp(ph, "Pending") == 0, "%s",
		    ph ? ph : "(no phase)");
		json_decref(pod);
	}
	snprintf(want, sizeof(want),
	    "pod shop/%s not running after 3s: "
	    "ImagePullBackOff: Back-off pulling image \"" UNPULLABLE "\"",
	    h.pod);
	cr_assert(strstr(what, "launch failed") && strstr(what, want), "%s",
	    what);
	cep_err err = {0};
	cr_assert_eq(undo(id, &err), CEP_EXEC_DONE, "%s", err.msg);
	cr_assert_eq(count(&cep_kube_pods, SEL_CEP), 0);
	cr_assert_eq(count(&cep_kube_secrets, SEL_CEP), 0);
}

/* ---------------------------------------------------------- collection */

static void leftover(const char *run, const char *appliance)
{
	char name[64];
	snprintf(name, sizeof(name), "cep-runner-%s", run);
	json_t *labels = json_pack("{s:s, s:s, s:s}",
	    "app.kubernetes.io/managed-by", "cep", "cep.io/run-id", run,
	    "cep.io/appliance", appliance);
	json_t *pod = json_pack("{s:s, s:s, s:{s:s, s:O}, s:{s:[{s:s, s:s}]}}",
	    "apiVersion", "v1", "kind", "Pod", "metadata", "name", name,
	    "labels", labels, "spec", "containers", "name", "runner", "image",
	    "busybox");
	json_t *sec = json_pack("{s:s, s:s, s:{s:s, s:O}, s:{s:s}}",
	    "apiVersion", "v1", "kind", "Secret", "metadata", "name", name,
	    "labels", labels, "stringData", "relay", RELAY);
	cep_err err = {0};
	cr_assert_eq(cep_kube_create(admin, &cep_kube_pods, "shop", pod, NULL,
	                 &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(cep_kube_create(admin, &cep_kube_secrets, "shop", sec,
	                 NULL, &err),
	    CEP_OK, "%s", err.msg);
	json_decref(pod);
	json_decref(sec);
	json_decref(labels);
}

static char live_run[24];

static bool is_live(void *arg, const char *run)
{
	(void)arg;
	return strcmp(run, live_run) == 0;
}

static size_t count_run(const cep_kube_res *res, const char *run)
{
	char sel[128];
	snprintf(sel, sizeof(sel), "cep.io/run-id=%s", run);
	return count(res, sel);
}

Test(kube_exec, collection_removes_objects_of_finished_and_unknown_runs)
{
	cep_run_id a, b, c;
	cep_run_id_new(&a);
	cep_run_id_new(&b);
	cep_run_id_new(&c);
	snprintf(live_run, sizeof(live_run), "%s", a.s);
	leftover(a.s, "test");  /* live run: kept */
	leftover(b.s, "test");  /* finished or unknown: collected */
	leftover(c.s, "other"); /* another appliance's: not ours */
	cep_exec_place pl = {.connector = "sleepy", .ns = "shop"};
	cep_err err = {0};
	cr_assert_eq(delegate_executor_kube_collect(ex, &pl, 1, is_live, NULL,
	                 &err),
	    CEP_OK, "%s", err.msg);
	/* the dead connector's collection may take long: wait on objects */
	for (int t = 0; t < 20000 &&
	     (count_run(&cep_kube_pods, b.s) > 0 ||
	         count_run(&cep_kube_secrets, b.s) > 0);
	     t += 100)
		cep_clock_sleep_ms(100);
	cr_assert_eq(count_run(&cep_kube_pods, b.s), 0);
	cr_assert_eq(count_run(&cep_kube_secrets, b.s), 0);
	cr_assert_eq(count_run(&cep_kube_pods, a.s), 1);
	cr_assert_eq(count_run(&cep_kube_secrets, a.s), 1);
	cr_assert_eq(count_run(&cep_kube_pods, c.s), 1);
	cr_assert_eq(count_run(&cep_kube_secrets, c.s), 1);
}

Test(kube_exec, flaky_api_server_still_completes_runs)
{
	/* 429 (with Retry-After) and 500 to one call in five, and surely to
	 * the first: with chance alone, the ~16 calls of the two runs all
	 * passed in 1 run of 36 (0.8^16) */
	cr_assert_eq(kubeapi_control(api, "faults",
	                 "{\"rate\": 0.2, \"first\": 1, "
	                 "\"codes\": [429, 500], \"retryAfter\": 1}"),
	    200);
	char a[24], b[24], what[512];
	cep_exec_handle ha, hb;
	launch("checking", a, &ha, 120000);
	launch("failing", b, &hb, 120000);
	cr_assert_eq(wait_exit(&ha, what, sizeof(what), 60000),
	    CEP_EXEC_EXITED);
	cr_assert(strncmp(what, "pod Succeeded (exit 0", 21) == 0, "%s", what);
	cr_assert_eq(wait_exit(&hb, what, sizeof(what), 60000),
	    CEP_EXEC_EXITED);
	cr_assert(strstr(what, "exit 3") != NULL, "%s", what);
	cep_err err = {0};
	cr_assert_eq(undo(a, &err), CEP_EXEC_DONE, "%s", err.msg);
	cr_assert_eq(undo(b, &err), CEP_EXEC_DONE, "%s", err.msg);
	json_t *st = kubeapi_stats(api);
	cr_assert_gt(json_integer_value(json_object_get(st, "injected")), 0,
	    "no fault was injected: the test proves nothing");
	json_decref(st);
	cr_assert_eq(kubeapi_control(api, "faults", "{\"rate\": 0}"), 200);
	cr_assert_eq(count(&cep_kube_pods, SEL_CEP), 0);
	cr_assert_eq(count(&cep_kube_secrets, SEL_CEP), 0);
}

Test(kube_exec, undo_gives_up_after_its_bound_naming_what_is_left)
{
	char id[24], what[512];
	cep_exec_handle h;
	launch("sleepy", id, &h, 120000);
	json_t *pod = wait_obj(&cep_kube_secrets, h.pod, 15000);
	cr_assert_not_null(pod);
	json_decref(pod);
	cr_assert_eq(
	    kubeapi_control(api, "revoke",
	        "{\"user\": \"delegate\", "
	        "\"namespace\": \"shop\", \"resource\": \"pods\", \"verb\": "
	        "\"delete\"}"),
	    200);
	delegate_executor_kube_set_undo_limit(ex, 2000);
	cep_err err = {0};
	cr_assert_eq(undo(id, &err), CEP_EXEC_FAILED, "%s", err.msg);
	cr_assert_eq(err.code, CEP_UNAVAILABLE, "%s", err.msg);
	cr_assert(strstr(err.msg, "pod shop/") &&
	        strstr(err.msg, "still present") &&
	        strstr(err.msg, "activeDeadlineSeconds"),
	    "%s", err.msg);
	cr_assert(strstr(err.msg, "secret") == NULL,
	    "the secret could be deleted: %s", err.msg);
	(void)what;
	/* as admin: the pod is what is left */
	char sel[128];
	snprintf(sel, sizeof(sel), "cep.io/run-id=%s", id);
	cr_assert_eq(count(&cep_kube_pods, sel), 1);
	cr_assert_eq(count(&cep_kube_secrets, sel), 0);
}
