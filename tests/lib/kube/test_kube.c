/* test_kube.c - the Kubernetes client against the test API server
 * (tests/kubeapi): verbs, Status errors, retries, timeouts; and paths and
 * Status mapping without a server. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube.h"
#include "kube_int.h"
#include "kubeapi_fixture.h"
#include "testutil.h"
#include "clock.h"
#include "files.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))

#define ADMIN_TOKEN "tok-admin-0123456789abcdef"
#define DELEG_TOKEN "tok-deleg-fedcba9876543210"

static kubeapi_fixture *srv;
static char *users_dir;
static cep_kube *admin, *deleg;

/* Every error message a test sees goes through here. */
static void no_secret(const cep_err *err)
{
	cr_assert(strstr(err->msg, ADMIN_TOKEN) == NULL, "%s", err->msg);
	cr_assert(strstr(err->msg, DELEG_TOKEN) == NULL, "%s", err->msg);
	cr_assert(strstr(err->msg, "Bearer") == NULL, "%s", err->msg);
}

static const char users_json[] =
    "{\"users\": ["
    "{\"name\": \"admin\", \"token\": \"" ADMIN_TOKEN "\", \"rules\": "
    "[{\"namespaces\": [\"*\"], \"groups\": [\"*\"], \"resources\": [\"*\"],"
    " \"verbs\": [\"*\"]}]},"
    "{\"name\": \"delegate\", \"token\": \"" DELEG_TOKEN "\", \"rules\": "
    "[{\"namespaces\": [\"shop\"], \"groups\": [\"\"], \"resources\": "
    "[\"pods\", \"secrets\"], \"verbs\": [\"get\", \"list\", \"watch\", "
    "\"create\", \"delete\"]}]}]}";

static void start(void)
{
	cep_err err;
	users_dir = cep_test_tmpdir("kubeusers");
	char users[4096];
	snprintf(users, sizeof(users), "%s/users.json", users_dir);
	cr_assert_eq(cep_files_write(users, users_json, strlen(users_json),
	                 0600, &err),
	    CEP_OK);
	const char *args[] = {"--users", users, "--namespace", "shop", NULL};
	srv = kubeapi_start(args);
	cr_assert_not_null(srv, "the kubeapi test server did not start");
	char *kc = kubeapi_kubeconfig(srv, "admin");
	cr_assert_eq(cep_kube_from_kubeconfig(kc, NULL, false, &admin, &err),
	    CEP_OK, "%s", err.msg);
	free(kc);
	kc = kubeapi_kubeconfig(srv, "delegate");
	cr_assert_eq(cep_kube_from_kubeconfig(kc, NULL, false, &deleg, &err),
	    CEP_OK, "%s", err.msg);
	free(kc);
}

static void stop(void)
{
	cep_kube_free(admin);
	cep_kube_free(deleg);
	admin = deleg = NULL;
	kubeapi_stop(srv);
	srv = NULL;
	cep_test_rmdir(users_dir);
}

TestSuite(kube, .init = start, .fini = stop, .timeout = 120);
TestSuite(kube_unit);

static json_t *pod(const char *name, const char *app)
{
	return json_pack("{s:s,s:s,s:{s:s,s:{s:s}},s:{s:[{s:s,s:s}]}}",
	    "apiVersion", "v1", "kind", "Pod", "metadata", "name", name,
	    "labels", "app", app, "spec", "containers", "name", "c", "image",
	    "busybox");
}

static void create_pod(cep_kube *k, const char *name, const char *app)
{
	cep_err err;
	json_t *p = pod(name, app);
	cr_assert_eq(cep_kube_create(k, &cep_kube_pods, "shop", p, NULL, &err),
	    CEP_OK, "%s", err.msg);
	json_decref(p);
}

/* ---- no server --------------------------------------------------------- */

Test(kube_unit, paths)
{
	char b[256];
	cep_err err;
	cr_assert_eq(cep_kube_path(&cep_kube_pods, "shop", "p1", NULL, b,
	                 sizeof(b), &err),
	    CEP_OK);
	cr_assert_str_eq(b, "/api/v1/namespaces/shop/pods/p1");
	cr_assert_eq(cep_kube_path(&cep_kube_pods, NULL, NULL, NULL, b,
	                 sizeof(b), &err),
	    CEP_OK);
	cr_assert_str_eq(b, "/api/v1/pods");
	cr_assert_eq(cep_kube_path(&cep_kube_deployments, "shop", "web",
	                 "scale", b, sizeof(b), &err),
	    CEP_OK);
	cr_assert_str_eq(b,
	    "/apis/apps/v1/namespaces/shop/deployments/web/"
	    "scale");
	cr_assert_eq(cep_kube_path(&cep_kube_nodes, "ignored", "n1", NULL, b,
	                 sizeof(b), &err),
	    CEP_OK);
	cr_assert_str_eq(b, "/api/v1/nodes/n1");
	cr_assert_eq(cep_kube_path(&cep_kube_ssar, NULL, NULL, NULL, b,
	                 sizeof(b), &err),
	    CEP_OK);
	cr_assert_str_eq(b,
	    "/apis/authorization.k8s.io/v1/"
	    "selfsubjectaccessreviews");
	cr_assert_eq(cep_kube_path(&cep_kube_pods, "shop", "../x", NULL, b,
	                 sizeof(b), &err),
	    CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "name");
	cr_assert_eq(cep_kube_path(&cep_kube_pods, "..", NULL, NULL, b,
	                 sizeof(b), &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_kube_path(&cep_kube_pods, "a?b", NULL, NULL, b,
	                 sizeof(b), &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_kube_path(&cep_kube_pods, "shop", "p", NULL, b, 10,
	                 &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_kube_res_find("Pod"), &cep_kube_pods);
	cr_assert_eq(cep_kube_res_find("deployments"), &cep_kube_deployments);
	cr_assert_str_eq(cep_kube_res_find("ReplicaSet")->gv, "apps/v1");
	cr_assert_null(cep_kube_res_find("widgets"));
}

Test(kube_unit, status_mapping)
{
	cr_assert_eq(cep_kube_status_code(400, "BadRequest"),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_kube_status_code(422, "Invalid"),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_kube_status_code(401, NULL), CEP_UNAUTHENTICATED);
	cr_assert_eq(cep_kube_status_code(403, "Forbidden"),
	    CEP_PERMISSION_DENIED);
	cr_assert_eq(cep_kube_status_code(404, "NotFound"), CEP_NOT_FOUND);
	cr_assert_eq(cep_kube_status_code(409, "AlreadyExists"),
	    CEP_ALREADY_EXISTS);
	cr_assert_eq(cep_kube_status_code(409, "Conflict"), CEP_ABORTED);
	cr_assert_eq(cep_kube_status_code(410, "Expired"), CEP_OUT_OF_RANGE);
	cr_assert_eq(cep_kube_status_code(410, NULL), CEP_OUT_OF_RANGE);
	cr_assert_eq(cep_kube_status_code(429, "TooManyRequests"),
	    CEP_RESOURCE_EXHAUSTED);
	cr_assert_eq(cep_kube_status_code(500, "InternalError"),
	    CEP_UNAVAILABLE);
	cr_assert_eq(cep_kube_status_code(503, NULL), CEP_UNAVAILABLE);
	char b[200];
	json_t *st = json_pack("{s:s,s:s,s:s,s:i}", "kind", "Status", "message",
	    "pods \"x\" already exists", "reason", "AlreadyExists", "code",
	    409);
	cep_kube_status_text(409, st, b, sizeof(b));
	cr_assert_str_eq(b, "409 Conflict: pods \"x\" already exists");
	json_decref(st);
	cep_kube_status_text(502, NULL, b, sizeof(b));
	cr_assert_str_eq(b, "502 Bad Gateway");
	st = json_pack("{s:s}", "message", "line\nbreak\x1b[31m");
	cep_kube_status_text(400, st, b, sizeof(b));
	cr_assert_null(strchr(b, '\n'));
	cr_assert_null(strchr(b, '\x1b'));
	json_decref(st);
}

Test(kube_unit, query_encoding)
{
	char q[256] = "";
	cep_err err;
	cr_assert_eq(cep_kube_query_add(q, sizeof(q), "labelSelector",
	                 "app in (a,b),tier!=x", &err),
	    CEP_OK);
	cr_assert_eq(cep_kube_query_add(q, sizeof(q), "limit", "2", &err),
	    CEP_OK);
	cr_assert_str_eq(q,
	    "labelSelector=app%20in%20%28a%2Cb%29%2Ctier%21%3Dx"
	    "&limit=2");
	char small[8] = "";
	cr_assert_eq(cep_kube_query_add(small, sizeof(small), "k", "vvvvvv",
	                 &err),
	    CEP_INVALID_ARGUMENT);
	for (int i = 0; i < 8; i++) {
		int64_t b = cep_kube_backoff_ms(i);
		cr_assert(b >= 150 && b <= 6250, "%lld", (long long)b);
	}
}

/* A broken watch line's message quotes the offending byte (jansson's
 * text): a control character from the server must not reach the logs
 * (found by fuzz_kube_watch). */
Test(kube_unit, watch_event_error_has_no_control_characters)
{
	static const char line[] = "{\"type\"\x1b\"ADDED\"}";
	json_t *ev, *obj;
	const char *type;
	cep_err err;
	cr_assert_eq(cep_kube_watch_event_parse(line, sizeof(line) - 1, &ev,
	                 &type, &obj, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_null(ev);
	cr_assert(strstr(err.msg, "watch event is not JSON") != NULL, "%s",
	    err.msg);
	for (const char *c = err.msg; *c; c++)
		cr_assert((unsigned char)*c >= 0x20, "control 0x%02x in \"%s\"",
		    (unsigned char)*c, err.msg);
}

/* ---- against the server ------------------------------------------------- */

Test(kube, version_get_and_list_pages)
{
	cep_err err;
	char v[64];
	cr_assert_eq(cep_kube_version(admin, v, sizeof(v), &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(v[0], 'v');
	create_pod(admin, "p1", "a");
	create_pod(admin, "p2", "a");
	create_pod(admin, "p3", "a");
	create_pod(admin, "p4", "b");
	create_pod(admin, "p5", "b");
	json_t *o = NULL;
	cr_assert_eq(cep_kube_get(admin, &cep_kube_pods, "shop", "p3", &o,
	                 &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_str_eq(json_string_value(
	                     json_object_get(json_object_get(o, "metadata"),
	                         "name")),
	    "p3");
	json_decref(o);

	cep_kube_list_opts lo = {.limit = 2};
	json_t *items = NULL;
	char rv[64] = "";
	cr_assert_eq(cep_kube_list(admin, &cep_kube_pods, "shop", &lo, &items,
	                 rv, sizeof(rv), &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(json_array_size(items), 5u);
	cr_assert_neq(rv[0], '\0');
	/* list items get kind/apiVersion like watch objects */
	cr_assert_str_eq(json_string_value(
	                     json_object_get(json_array_get(items, 0), "kind")),
	    "Pod");
	json_decref(items);
	json_t *stats = kubeapi_stats(srv);
	cr_assert_not_null(stats);
	json_decref(stats);

	lo.label_selector = "app=a";
	cr_assert_eq(cep_kube_list(admin, &cep_kube_pods, "shop", &lo, &items,
	                 NULL, 0, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(json_array_size(items), 3u);
	json_decref(items);
	lo.label_selector = "app in (b)";
	lo.field_selector = "metadata.name=p5";
	cr_assert_eq(cep_kube_list(admin, &cep_kube_pods, "shop", &lo, &items,
	                 NULL, 0, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(json_array_size(items), 1u);
	json_decref(items);
	/* an unsupported field is the server's 400, named */
	lo.label_selector = NULL;
	lo.field_selector = "spec.nonsense=1";
	cr_assert_eq(cep_kube_list(admin, &cep_kube_pods, "shop", &lo, &items,
	                 NULL, 0, &err),
	    CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "list pods shop: 400 Bad Request");
	no_secret(&err);
	cr_assert_null(items);
}

/* One handle, one kept connection: sequential calls (whatever their
 * status) make one TLS handshake between them. */
Test(kube, calls_reuse_one_connection)
{
	cep_err err;
	uint64_t calls = 0, conns = 0;
	cep_kube_http_stats(deleg, &calls, &conns);
	cr_assert_eq(calls, 0);
	for (int i = 0; i < 5; i++) {
		json_t *o = NULL;
		cr_assert_eq(cep_kube_get(deleg, &cep_kube_pods, "shop", "none",
		                 &o, &err),
		    CEP_NOT_FOUND, "%s", err.msg);
		cr_assert_null(o);
	}
	create_pod(deleg, "reuse", "a");
	cep_kube_http_stats(deleg, &calls, &conns);
	cr_expect_eq(calls, 6);
	cr_expect_eq(conns, 1, "%llu connections for 6 calls",
	    (unsigned long long)conns);
}

Test(kube, create_conflict_and_delete)
{
	cep_err err;
	json_t *p = pod("dup", "a"), *got = NULL;
	cr_assert_eq(cep_kube_create(deleg, &cep_kube_pods, "shop", p, &got,
	                 &err),
	    CEP_OK, "%s", err.msg);
	const char *uid = json_string_value(
	    json_object_get(json_object_get(got, "metadata"), "uid"));
	cr_assert_not_null(uid);
	cr_assert_eq(cep_kube_create(deleg, &cep_kube_pods, "shop", p, NULL,
	                 &err),
	    CEP_ALREADY_EXISTS);
	assert_contains(err.msg, "create pods shop/dup: 409 Conflict:");
	assert_contains(err.msg, "already exists");
	no_secret(&err);
	json_decref(p);

	/* a wrong uid precondition: Conflict */
	cep_kube_delete_opts d = {.grace_seconds = 0, .uid = "not-the-uid"};
	cr_assert_eq(cep_kube_delete(deleg, &cep_kube_pods, "shop", "dup", &d,
	                 &err),
	    CEP_ABORTED);
	assert_contains(err.msg, "delete pods shop/dup: 409");
	no_secret(&err);
	d.uid = uid;
	d.propagation = "Background";
	cr_assert_eq(cep_kube_delete(deleg, &cep_kube_pods, "shop", "dup", &d,
	                 &err),
	    CEP_OK, "%s", err.msg);
	json_decref(got);
	/* gone (grace 0), then deleting again is NOT_FOUND */
	json_t *o = NULL;
	int rc = CEP_OK;
	for (int i = 0; i < 100 && rc == CEP_OK; i++) {
		json_decref(o);
		o = NULL;
		rc = cep_kube_get(deleg, &cep_kube_pods, "shop", "dup", &o,
		    &err);
		if (rc == CEP_OK)
			cep_clock_sleep_ms(50);
	}
	cr_assert_eq(rc, CEP_NOT_FOUND, "%s", err.msg);
	assert_contains(err.msg, "get pods shop/dup: 404 Not Found");
	cr_assert_eq(cep_kube_delete(deleg, &cep_kube_pods, "shop", "dup", NULL,
	                 &err),
	    CEP_NOT_FOUND);
	assert_contains(err.msg, "delete pods shop/dup: 404 Not Found:");
	assert_contains(err.msg, "\"dup\" not found");
	no_secret(&err);
	/* a secret with Foreground propagation and a grace period */
	json_t *s = json_pack("{s:s,s:s,s:{s:s},s:{s:s}}", "apiVersion", "v1",
	    "kind", "Secret", "metadata", "name", "s1", "stringData", "k", "v");
	cr_assert_eq(cep_kube_create(deleg, &cep_kube_secrets, "shop", s, NULL,
	                 &err),
	    CEP_OK, "%s", err.msg);
	json_decref(s);
	d = (cep_kube_delete_opts){.grace_seconds = 5,
	    .propagation = "Foreground"};
	cr_assert_eq(cep_kube_delete(deleg, &cep_kube_secrets, "shop", "s1", &d,
	                 &err),
	    CEP_OK, "%s", err.msg);
}

static json_t *deployment(void)
{
	return json_pack("{s:s,s:s,s:{s:s},s:{s:i,s:{s:{s:s}},s:{s:{s:{s:s}},"
	                 "s:{s:[{s:s,s:s,s:[{s:i}]}]}}}}",
	    "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name",
	    "web", "spec", "replicas", 1, "selector", "matchLabels", "app",
	    "web", "template", "metadata", "labels", "app", "web", "spec",
	    "containers", "name", "app", "image", "nginx:1", "ports",
	    "containerPort", 80);
}

static json_t *first_container(json_t *dep)
{
	return json_array_get(
	    json_object_get(json_object_get(json_object_get(json_object_get(dep,
	                                                        "spec"),
	                                        "template"),
	                        "spec"),
	        "containers"),
	    0);
}

Test(kube, patches_and_scale)
{
	cep_err err;
	json_t *d = deployment(), *out = NULL;
	cr_assert_eq(cep_kube_create(admin, &cep_kube_deployments, "shop", d,
	                 NULL, &err),
	    CEP_OK, "%s", err.msg);
	json_decref(d);
	/* strategic: the container list merges by name, ports survive */
	json_t *sp = json_pack("{s:{s:{s:{s:[{s:s,s:s}]}}}}", "spec",
	    "template", "spec", "containers", "name", "app", "image",
	    "nginx:2");
	cr_assert_eq(cep_kube_patch(admin,
	                 &(cep_kube_patch_req){.res = &cep_kube_deployments,
	                     .ns = "shop",
	                     .name = "web",
	                     .type = CEP_KUBE_STRATEGIC_PATCH,
	                     .patch = sp},
	                 &out, &err),
	    CEP_OK, "%s", err.msg);
	json_t *c = first_container(out);
	cr_assert_str_eq(json_string_value(json_object_get(c, "image")),
	    "nginx:2");
	cr_assert_not_null(json_object_get(c, "ports"));
	json_decref(out);
	/* merge patch replaces the list: the ports are gone */
	json_object_set_new(
	    json_array_get(
	        json_object_get(
	            json_object_get(json_object_get(json_object_get(sp, "spec"),
	                                "template"),
	                "spec"),
	            "containers"),
	        0),
	    "image", json_string("nginx:3"));
	cr_assert_eq(cep_kube_patch(admin,
	                 &(cep_kube_patch_req){.res = &cep_kube_deployments,
	                     .ns = "shop",
	                     .name = "web",
	                     .type = CEP_KUBE_MERGE_PATCH,
	                     .patch = sp},
	                 &out, &err),
	    CEP_OK, "%s", err.msg);
	c = first_container(out);
	cr_assert_str_eq(json_string_value(json_object_get(c, "image")),
	    "nginx:3");
	cr_assert_null(json_object_get(c, "ports"));
	json_decref(out);
	json_decref(sp);
	/* labels by merge patch */
	json_t *lp = json_pack("{s:{s:{s:s}}}", "metadata", "labels", "chaos",
	    "yes");
	cr_assert_eq(cep_kube_patch(admin,
	                 &(cep_kube_patch_req){.res = &cep_kube_deployments,
	                     .ns = "shop",
	                     .name = "web",
	                     .type = CEP_KUBE_MERGE_PATCH,
	                     .patch = lp},
	                 NULL, &err),
	    CEP_OK, "%s", err.msg);
	json_decref(lp);
	/* the scale subresource */
	json_t *scale = json_pack("{s:{s:i}}", "spec", "replicas", 3);
	cr_assert_eq(cep_kube_patch(admin,
	                 &(cep_kube_patch_req){.res = &cep_kube_deployments,
	                     .ns = "shop",
	                     .name = "web",
	                     .sub = "scale",
	                     .type = CEP_KUBE_MERGE_PATCH,
	                     .patch = scale},
	                 &out, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_str_eq(json_string_value(json_object_get(out, "kind")),
	    "Scale");
	json_decref(out);
	json_decref(scale);
	cr_assert_eq(cep_kube_get(admin, &cep_kube_deployments, "shop", "web",
	                 &out, &err),
	    CEP_OK, "%s", err.msg);
	json_t *spec = json_object_get(out, "spec");
	cr_assert_eq(json_integer_value(json_object_get(spec, "replicas")), 3);
	cr_assert_str_eq(json_string_value(json_object_get(
	                     json_object_get(json_object_get(out, "metadata"),
	                         "labels"),
	                     "chaos")),
	    "yes");
	json_decref(out);
	/* patching what is not there */
	json_t *e = json_object();
	cr_assert_eq(cep_kube_patch(admin,
	                 &(cep_kube_patch_req){.res = &cep_kube_deployments,
	                     .ns = "shop",
	                     .name = "absent",
	                     .sub = "scale",
	                     .type = CEP_KUBE_MERGE_PATCH,
	                     .patch = e},
	                 NULL, &err),
	    CEP_NOT_FOUND);
	assert_contains(err.msg, "patch deployments shop/absent/scale: 404");
	json_decref(e);
}

Test(kube, can_i)
{
	cep_err err;
	bool ok = false;
	char reason[256];
	cep_kube_access a = {.verb = "create",
	    .group = "",
	    .resource = "pods",
	    .ns = "shop"};
	cr_assert_eq(cep_kube_can_i(deleg, &a, &ok, reason, sizeof(reason),
	                 &err),
	    CEP_OK, "%s", err.msg);
	cr_assert(ok);
	a = (cep_kube_access){.verb = "delete",
	    .group = "",
	    .resource = "pods",
	    .ns = "kube-system"};
	cr_assert_eq(cep_kube_can_i(deleg, &a, &ok, reason, sizeof(reason),
	                 &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_not(ok);
	a = (cep_kube_access){.verb = "patch",
	    .group = "apps",
	    .resource = "deployments",
	    .sub = "scale",
	    .ns = "shop"};
	cr_assert_eq(cep_kube_can_i(deleg, &a, &ok, NULL, 0, &err), CEP_OK,
	    "%s", err.msg);
	cr_assert_not(ok);
	cr_assert_eq(cep_kube_can_i(admin, &a, &ok, NULL, 0, &err), CEP_OK,
	    "%s", err.msg);
	cr_assert(ok);
}

Test(kube, forbidden_and_unauthorized_name_the_object)
{
	cep_err err;
	json_t *p = pod("x", "a");
	cr_assert_eq(cep_kube_create(deleg, &cep_kube_pods, "kube-system", p,
	                 NULL, &err),
	    CEP_PERMISSION_DENIED);
	assert_contains(err.msg, "create pods kube-system/x: 403 Forbidden:");
	assert_contains(err.msg, "forbidden");
	assert_contains(err.msg, "delegate");
	no_secret(&err);
	json_t *o = NULL;
	cr_assert_eq(cep_kube_get(deleg, &cep_kube_nodes, NULL, "node-1", &o,
	                 &err),
	    CEP_PERMISSION_DENIED);
	assert_contains(err.msg, "get nodes node-1: 403 Forbidden:");
	no_secret(&err);
	cr_assert_eq(kubeapi_control(srv, "expire-token",
	                 "{\"user\": \"delegate\"}"),
	    200);
	cr_assert_eq(cep_kube_create(deleg, &cep_kube_pods, "shop", p, NULL,
	                 &err),
	    CEP_UNAUTHENTICATED);
	assert_contains(err.msg, "create pods shop/x: 401 Unauthorized");
	no_secret(&err);
	json_decref(p);
}

Test(kube, retries_survive_faults)
{
	cep_err err;
	cep_kube_set_retries(admin, 8);
	cr_assert_eq(
	    kubeapi_control(srv, "faults",
	        "{\"rate\": 0.2, "
	        "\"codes\": [429, 500], \"retryAfter\": 0, \"methods\": "
	        "[\"POST\"]}"),
	    200);
	for (int i = 0; i < 50; i++) {
		char name[32];
		snprintf(name, sizeof(name), "f%02d", i);
		json_t *p = pod(name, "f");
		int rc = cep_kube_create(admin, &cep_kube_pods, "shop", p, NULL,
		    &err);
		json_decref(p);
		cr_assert_eq(rc, CEP_OK, "%s: %s", name, err.msg);
	}
	cr_assert_eq(kubeapi_control(srv, "faults", "{\"rate\": 0}"), 200);
	json_t *st = kubeapi_stats(srv);
	cr_assert_not_null(st);
	json_int_t inj = json_integer_value(json_object_get(st, "injected"));
	json_decref(st);
	cr_assert(inj > 0, "no fault was injected: the test proves nothing");
	json_t *items = NULL;
	cep_kube_list_opts lo = {.label_selector = "app=f"};
	cr_assert_eq(cep_kube_list(admin, &cep_kube_pods, "shop", &lo, &items,
	                 NULL, 0, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(json_array_size(items), 50u);
	json_decref(items);
}

Test(kube, retry_after_is_honoured)
{
	cep_err err;
	cr_assert_eq(
	    kubeapi_control(srv, "faults",
	        "{\"rate\": 1.0, "
	        "\"codes\": [429], \"retryAfter\": 1, \"methods\": [\"GET\"]}"),
	    200);
	json_t *o = NULL;
	/* one attempt: the 429 comes back at once, named */
	cep_kube_set_retries(admin, 1);
	cr_assert_eq(cep_kube_get(admin, &cep_kube_pods, "shop", "x", &o, &err),
	    CEP_RESOURCE_EXHAUSTED);
	assert_contains(err.msg, "get pods shop/x: 429 Too Many Requests");
	no_secret(&err);
	/* two attempts: the second waits the server's second */
	cep_kube_set_retries(admin, 2);
	int64_t t0 = cep_clock_mono_ms();
	cr_assert_eq(cep_kube_get(admin, &cep_kube_pods, "shop", "x", &o, &err),
	    CEP_RESOURCE_EXHAUSTED);
	int64_t took = cep_clock_mono_ms() - t0;
	cr_assert(took >= 1000, "retried after %lld ms, before Retry-After",
	    (long long)took);
	json_t *st = kubeapi_stats(srv);
	cr_assert_eq(json_integer_value(json_object_get(st, "injected")), 3);
	json_decref(st);
	/* a Retry-After beyond the call's timeout: no pointless wait */
	cep_kube_set_retries(admin, 5);
	cep_kube_set_timeout(admin, 500);
	cr_assert_eq(cep_kube_get(admin, &cep_kube_pods, "shop", "x", &o, &err),
	    CEP_RESOURCE_EXHAUSTED);
	cr_assert_eq(kubeapi_control(srv, "faults", "{\"rate\": 0}"), 200);
}

Test(kube, timeout_names_the_call)
{
	cep_err err;
	create_pod(admin, "slow", "a");
	cr_assert_eq(kubeapi_control(srv, "latency", "{\"ms\": 2000}"), 200);
	cep_kube_set_timeout(admin, 400);
	json_t *o = NULL;
	int64_t t0 = cep_clock_mono_ms();
	cr_assert_eq(cep_kube_get(admin, &cep_kube_pods, "shop", "slow", &o,
	                 &err),
	    CEP_DEADLINE_EXCEEDED);
	int64_t took = cep_clock_mono_ms() - t0;
	assert_contains(err.msg, "get pods shop/slow");
	assert_contains(err.msg, "400 ms");
	no_secret(&err);
	cr_assert(took < 1900, "the call took %lld ms", (long long)took);
	cr_assert_eq(kubeapi_control(srv, "latency", "{\"ms\": 0}"), 200);
	cep_kube_set_timeout(admin, 10000);
	cr_assert_eq(cep_kube_get(admin, &cep_kube_pods, "shop", "slow", &o,
	                 &err),
	    CEP_OK, "%s", err.msg);
	json_decref(o);
}

Test(kube, tls_checks)
{
	cep_err err;
	char *kc = kubeapi_kubeconfig(srv, "admin");
	/* a tls-server-name the certificate holds: fine */
	char dir2[4096], path[4200], text[4096];
	snprintf(dir2, sizeof(dir2), "%s", kubeapi_dir(srv));
	snprintf(text, sizeof(text),
	    "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:%d\n"
	    "    certificate-authority: ca.crt\n    tls-server-name: %s\n"
	    "users:\n- name: u\n  user: {token: " ADMIN_TOKEN "}\n"
	    "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
	    "current-context: x\n",
	    kubeapi_port(srv), "localhost");
	snprintf(path, sizeof(path), "%s/kc-sni", dir2);
	cr_assert_eq(cep_files_write(path, text, strlen(text), 0600, &err), 0);
	cep_kube *k = NULL;
	char v[64];
	cr_assert_eq(cep_kube_from_kubeconfig(path, NULL, false, &k, &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(cep_kube_version(k, v, sizeof(v), &err), CEP_OK, "%s",
	    err.msg);
	cep_kube_free(k);
	/* a name the certificate does not hold: refused */
	snprintf(text, sizeof(text),
	    "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:%d\n"
	    "    certificate-authority: ca.crt\n    tls-server-name: %s\n"
	    "users:\n- name: u\n  user: {token: " ADMIN_TOKEN "}\n"
	    "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
	    "current-context: x\n",
	    kubeapi_port(srv), "wrong.example");
	cr_assert_eq(cep_files_write(path, text, strlen(text), 0600, &err), 0);
	cr_assert_eq(cep_kube_from_kubeconfig(path, NULL, false, &k, &err),
	    CEP_OK, "%s", err.msg);
	cep_kube_set_retries(k, 1);
	cr_assert_eq(cep_kube_version(k, v, sizeof(v), &err), CEP_UNAVAILABLE);
	assert_contains(err.msg, "get /version: TLS");
	no_secret(&err);
	cep_kube_free(k);
	/* no CA given: the system CAs do not know the test CA */
	snprintf(text, sizeof(text),
	    "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:%d\n"
	    "users:\n- name: u\n  user: {token: " ADMIN_TOKEN "}\n"
	    "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
	    "current-context: x\n",
	    kubeapi_port(srv));
	cr_assert_eq(cep_files_write(path, text, strlen(text), 0600, &err), 0);
	cr_assert_eq(cep_kube_from_kubeconfig(path, NULL, false, &k, &err),
	    CEP_OK, "%s", err.msg);
	cep_kube_set_retries(k, 1);
	cr_assert_eq(cep_kube_version(k, v, sizeof(v), &err), CEP_UNAVAILABLE);
	no_secret(&err);
	cep_kube_free(k);
	free(kc);
}

Test(kube, environment_proxy_is_ignored)
{
	cep_err err;
	char v[64];
	/* a proxy that does not exist: used, it would fail every call */
	setenv("https_proxy", "http://127.0.0.1:9", 1);
	setenv("HTTPS_PROXY", "http://127.0.0.1:9", 1);
	cr_assert_eq(cep_kube_version(admin, v, sizeof(v), &err), CEP_OK, "%s",
	    err.msg);
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
}

/* Compacts while the second page is in flight (every call is delayed by
 * 600 ms), then writes elsewhere so that a new listing is consistent. */
static void *compact_midway(void *arg)
{
	(void)arg;
	cep_err err;
	cep_clock_sleep_ms(900);
	kubeapi_control(srv, "compact", NULL);
	json_t *sec = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind",
	    "Secret", "metadata", "name", "bump");
	cep_kube_create(admin, &cep_kube_secrets, "default", sec, NULL, &err);
	json_decref(sec);
	return NULL;
}

Test(kube, list_restarts_when_continue_expires)
{
	cep_err err;
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof(name), "c%d", i);
		create_pod(admin, name, "c");
	}
	json_t *st = kubeapi_stats(srv);
	json_int_t before = json_integer_value(
	    json_object_get(json_object_get(st, "byVerb"), "list"));
	json_decref(st);
	cr_assert_eq(kubeapi_control(srv, "latency", "{\"ms\": 600}"), 200);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, compact_midway, NULL), 0);
	cep_kube_list_opts lo = {.limit = 2, .label_selector = "app=c"};
	json_t *items = NULL;
	int rc = cep_kube_list(admin, &cep_kube_pods, "shop", &lo, &items, NULL,
	    0, &err);
	pthread_join(th, NULL);
	cr_assert_eq(kubeapi_control(srv, "latency", "{\"ms\": 0}"), 200);
	cr_assert_eq(rc, CEP_OK, "%s", err.msg);
	cr_assert_eq(json_array_size(items), 5u);
	json_decref(items);
	/* page 1, page 2 (410), then pages 1-3 again */
	st = kubeapi_stats(srv);
	json_int_t lists = json_integer_value(
	                       json_object_get(json_object_get(st, "byVerb"),
	                           "list")) -
	    before;
	json_decref(st);
	cr_assert_eq(lists, 5, "%lld list calls", (long long)lists);
}
