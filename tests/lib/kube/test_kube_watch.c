/* test_kube_watch.c - list-then-watch against the test API server:
 * events, resume after dropped streams, re-list after compaction (410),
 * stop flag, deadline, and a watch the caller may not make. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube.h"
#include "kubeapi_fixture.h"
#include "testutil.h"
#include "clock.h"
#include "files.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))

#define ADMIN_TOKEN "tok-admin-0123456789abcdef"
#define DELEG_TOKEN "tok-deleg-fedcba9876543210"

static const char users_json[] =
    "{\"users\": ["
    "{\"name\": \"admin\", \"token\": \"" ADMIN_TOKEN "\", \"rules\": "
    "[{\"namespaces\": [\"*\"], \"groups\": [\"*\"], \"resources\": [\"*\"],"
    " \"verbs\": [\"*\"]}]},"
    "{\"name\": \"delegate\", \"token\": \"" DELEG_TOKEN "\", \"rules\": "
    "[{\"namespaces\": [\"shop\"], \"groups\": [\"\"], \"resources\": "
    "[\"pods\"], \"verbs\": [\"get\", \"list\", \"create\"]}]}]}";

static kubeapi_fixture *srv;
static char *users_dir;
static cep_kube *admin, *deleg;

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

TestSuite(kube_watch, .init = start, .fini = stop, .timeout = 120);

/* What the callback saw: "ADDED p1", ... */
struct seen {
	pthread_mutex_t mu;
	char ev[256][64];
	int n;
	const char *stop_on; /* "DELETED p9": fn returns 1 */
	/* the watching thread */
	pthread_t th;
	atomic_bool stop;
	int rc;
	cep_err err;
	int64_t timeout_ms;
	const char *selector;
};

static int on_event(void *arg, const char *type, json_t *obj)
{
	struct seen *s = arg;
	const char *name = json_string_value(
	    json_object_get(json_object_get(obj, "metadata"), "name"));
	char e[64];
	snprintf(e, sizeof(e), "%s %s", type, name ? name : "?");
	pthread_mutex_lock(&s->mu);
	if (s->n < 256)
		snprintf(s->ev[s->n++], sizeof(s->ev[0]), "%s", e);
	pthread_mutex_unlock(&s->mu);
	return s->stop_on != NULL && strcmp(e, s->stop_on) == 0;
}

static int count(struct seen *s, const char *e)
{
	int c = 0;
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < s->n; i++)
		c += strcmp(s->ev[i], e) == 0;
	pthread_mutex_unlock(&s->mu);
	return c;
}

/* Waits (up to 10 s) until e was seen at least n times. */
static void await(struct seen *s, const char *e, int n)
{
	for (int i = 0; i < 500; i++) {
		if (count(s, e) >= n)
			return;
		cep_clock_sleep_ms(20);
	}
	cr_assert_fail("never saw \"%s\" %d times (saw %d events)", e, n, s->n);
}

static void *watcher(void *arg)
{
	struct seen *s = arg;
	cep_kube_list_opts lo = {.label_selector = s->selector};
	cep_kube_watch_spec ws = {.res = &cep_kube_pods,
	    .ns = "shop",
	    .list = &lo,
	    .timeout_ms = s->timeout_ms,
	    .stop = &s->stop,
	    .fn = on_event,
	    .arg = s};
	s->rc = cep_kube_watch(admin, &ws, &s->err);
	return NULL;
}

static void watch_start(struct seen *s)
{
	pthread_mutex_init(&s->mu, NULL);
	atomic_store(&s->stop, false);
	if (s->timeout_ms == 0)
		s->timeout_ms = 60000;
	cr_assert_eq(pthread_create(&s->th, NULL, watcher, s), 0);
}

static json_t *pod(const char *name)
{
	return json_pack("{s:s,s:s,s:{s:s,s:{s:s}},s:{s:[{s:s,s:s}]}}",
	    "apiVersion", "v1", "kind", "Pod", "metadata", "name", name,
	    "labels", "w", "yes", "spec", "containers", "name", "c", "image",
	    "busybox");
}

/* A pod bound to a node no kubelet of the test server drives: nothing
 * writes its status, so the watch sees only what the test itself does. */
#define NO_KUBELET_NODE "node-without-kubelet"

static void create_pod_on(const char *name, const char *node)
{
	cep_err err;
	json_t *p = pod(name);
	if (node != NULL)
		json_object_set_new(json_object_get(p, "spec"), "nodeName",
		    json_string(node));
	cr_assert_eq(cep_kube_create(admin, &cep_kube_pods, "shop", p, NULL,
	                 &err),
	    CEP_OK, "%s", err.msg);
	json_decref(p);
}

static void create_pod(const char *name)
{
	create_pod_on(name, NULL);
}

Test(kube_watch, delivers_added_modified_deleted)
{
	cep_err err;
	create_pod("p1");
	create_pod("p2");
	struct seen s = {.stop_on = "DELETED p3", .selector = "w=yes"};
	watch_start(&s);
	await(&s, "ADDED p1", 1);
	await(&s, "ADDED p2", 1);
	create_pod("p3");
	await(&s, "ADDED p3", 1);
	json_t *lp = json_pack("{s:{s:{s:s}}}", "metadata", "labels", "x", "1");
	cr_assert_eq(cep_kube_patch(admin,
	                 &(cep_kube_patch_req){.res = &cep_kube_pods,
	                     .ns = "shop",
	                     .name = "p3",
	                     .type = CEP_KUBE_MERGE_PATCH,
	                     .patch = lp},
	                 NULL, &err),
	    CEP_OK, "%s", err.msg);
	json_decref(lp);
	await(&s, "MODIFIED p3", 1);
	cep_kube_delete_opts d = {.grace_seconds = 0};
	cr_assert_eq(cep_kube_delete(admin, &cep_kube_pods, "shop", "p3", &d,
	                 &err),
	    CEP_OK, "%s", err.msg);
	pthread_join(s.th, NULL);
	/* fn asked to stop: that is success */
	cr_assert_eq(s.rc, CEP_OK, "%s", s.err.msg);
	cr_assert_eq(count(&s, "DELETED p3"), 1);
	cr_assert_eq(count(&s, "ADDED p1"), 1);
}

Test(kube_watch, resumes_after_dropped_streams)
{
	create_pod("a");
	struct seen s = {.stop_on = "ADDED c"};
	watch_start(&s);
	await(&s, "ADDED a", 1);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(kubeapi_control(srv, "drop-watches", NULL), 200);
		cep_clock_sleep_ms(100);
	}
	create_pod("b");
	await(&s, "ADDED b", 1);
	cr_assert_eq(kubeapi_control(srv, "drop-watches", NULL), 200);
	create_pod("c");
	pthread_join(s.th, NULL);
	cr_assert_eq(s.rc, CEP_OK, "%s", s.err.msg);
	/* resumed from its resourceVersion: nothing listed twice, nothing
	 * lost */
	cr_assert_eq(count(&s, "ADDED a"), 1);
	cr_assert_eq(count(&s, "ADDED b"), 1);
	cr_assert_eq(count(&s, "ADDED c"), 1);
}

Test(kube_watch, relists_after_compaction)
{
	cep_err err;
	/* Pods the kubelet leaves alone: a status write landing between the
	 * Secret and the compaction would hand the watch the compacted
	 * version itself, from which it rightly resumes without a list. */
	create_pod_on("a", NO_KUBELET_NODE);
	create_pod_on("gone", NO_KUBELET_NODE);
	struct seen s = {.stop_on = "ADDED c"};
	watch_start(&s);
	await(&s, "ADDED gone", 1);
	create_pod_on("b", NO_KUBELET_NODE);
	await(&s, "ADDED b", 1);
	/* Right after an event (no bookmark due for a second): advance the
	 * resourceVersion where this watch does not look, compact, cut the
	 * stream. The watch's version is now too old: it must list again. */
	json_t *sec = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind",
	    "Secret", "metadata", "name", "elsewhere");
	cr_assert_eq(cep_kube_create(admin, &cep_kube_secrets, "default", sec,
	                 NULL, &err),
	    CEP_OK, "%s", err.msg);
	json_decref(sec);
	cr_assert_eq(kubeapi_control(srv, "compact", NULL), 200);
	cr_assert_eq(kubeapi_control(srv, "drop-watches", NULL), 200);
	await(&s, "ADDED a", 2);
	create_pod_on("c", NO_KUBELET_NODE);
	pthread_join(s.th, NULL);
	cr_assert_eq(s.rc, CEP_OK, "%s", s.err.msg);
	cr_assert_eq(count(&s, "ADDED c"), 1);
	/* a and b listed again (fn must be idempotent per object) */
	cr_assert_eq(count(&s, "ADDED a"), 2);
	cr_assert_eq(count(&s, "ADDED b"), 2);
}

Test(kube_watch, relist_reports_objects_deleted_in_the_gap)
{
	cep_err err;
	create_pod("keep");
	create_pod("gone");
	struct seen s = {.stop_on = "DELETED gone"};
	/* keep the stream down while "gone" is deleted: every watch GET
	 * fails until the faults are switched off */
	watch_start(&s);
	await(&s, "ADDED gone", 1);
	cr_assert_eq(
	    kubeapi_control(srv, "faults",
	        "{\"rate\": 1.0, "
	        "\"codes\": [500], \"pathRegex\": \"^/api/v1/namespaces/shop/pods$\","
	        " \"methods\": [\"GET\"]}"),
	    200);
	cr_assert_eq(kubeapi_control(srv, "drop-watches", NULL), 200);
	cep_kube_delete_opts d = {.grace_seconds = 0};
	cr_assert_eq(cep_kube_delete(admin, &cep_kube_pods, "shop", "gone", &d,
	                 &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(kubeapi_control(srv, "compact", NULL), 200);
	cep_clock_sleep_ms(300);
	cr_assert_eq(kubeapi_control(srv, "faults", "{\"rate\": 0}"), 200);
	pthread_join(s.th, NULL);
	cr_assert_eq(s.rc, CEP_OK, "%s", s.err.msg);
	cr_assert_eq(count(&s, "DELETED gone"), 1);
}

Test(kube_watch, stop_flag_and_deadline)
{
	struct seen s = {0};
	watch_start(&s);
	cep_clock_sleep_ms(300);
	int64_t t0 = cep_clock_mono_ms();
	atomic_store(&s.stop, true);
	pthread_join(s.th, NULL);
	int64_t took = cep_clock_mono_ms() - t0;
	cr_assert_eq(s.rc, CEP_CANCELLED, "%s", s.err.msg);
	cr_assert(took <= 1500, "stop took %lld ms", (long long)took);
	assert_contains(s.err.msg, "watch pods shop");

	struct seen s2 = {.timeout_ms = 700};
	t0 = cep_clock_mono_ms();
	watch_start(&s2);
	pthread_join(s2.th, NULL);
	took = cep_clock_mono_ms() - t0;
	cr_assert_eq(s2.rc, CEP_DEADLINE_EXCEEDED, "%s", s2.err.msg);
	cr_assert(took >= 700, "ended after %lld ms", (long long)took);
	assert_contains(s2.err.msg, "watch pods shop");
}

static int never(void *arg, const char *type, json_t *obj)
{
	(void)arg;
	(void)type;
	(void)obj;
	return 0;
}

Test(kube_watch, forbidden_watch_fails_fast)
{
	cep_err err;
	/* delegate may list but not watch pods; and may not list nodes */
	cep_kube_watch_spec ws = {.res = &cep_kube_nodes,
	    .timeout_ms = 10000,
	    .fn = never};
	int rc = cep_kube_watch(deleg, &ws, &err);
	cr_assert_eq(rc, CEP_PERMISSION_DENIED, "%s", err.msg);
	assert_contains(err.msg, "list nodes: 403 Forbidden");
	cr_assert_null(strstr(err.msg, DELEG_TOKEN));
	ws.res = &cep_kube_pods;
	ws.ns = "shop";
	rc = cep_kube_watch(deleg, &ws, &err);
	cr_assert_eq(rc, CEP_PERMISSION_DENIED, "%s", err.msg);
	assert_contains(err.msg, "watch pods shop: 403 Forbidden");
	cr_assert_null(strstr(err.msg, DELEG_TOKEN));
}
