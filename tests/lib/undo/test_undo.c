/* test_undo.c - the undo table (lib/undo/undo.c) on its own: dispatch by
 * mechanism, node mechanisms only once registered (by lib/node in a
 * runner), refusals before any Kubernetes call. The mechanisms' own undo
 * is tested with them (tests/lib/node, tests/runner, tests/delegate). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "undo.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))

static Cep__V1__FaultRecord record(const char *mechanism, const char *undo)
{
	Cep__V1__FaultRecord r = CEP__V1__FAULT_RECORD__INIT;
	r.run_id = "run-undo-test";
	r.fault_id = "f1";
	r.mechanism = (char *)mechanism;
	r.undo = (char *)undo;
	return r;
}

Test(undo, unknown_mechanisms_are_not_undone)
{
	cep_err err = {0};
	Cep__V1__FaultRecord r = record("no-such-mechanism", "{}");
	cr_assert_eq(cep_undo_apply(NULL, &r, &err), CEP_UNIMPLEMENTED);
	assert_contains(err.msg, "no undo for mechanism \"no-such-mechanism\"");
	cr_assert_eq(cep_undo_apply(NULL, NULL, &err), CEP_INVALID_ARGUMENT);
	r.mechanism = NULL;
	cr_assert_eq(cep_undo_apply(NULL, &r, &err), CEP_INVALID_ARGUMENT);
	cr_assert(!cep_undo_on_node("no-such-mechanism"));
	cr_assert(!cep_undo_on_node(NULL));
}

Test(undo, which_mechanisms_live_on_the_node)
{
	const char *node[] = {"nftables", "tc-qdisc", "disk-fill"};
	const char * not [] = {"signal", "child-process", "k8s-pod-delete",
	    "k8s-scale", "k8s-cordon", "k8s-taint"};
	for (size_t i = 0; i < sizeof(node) / sizeof(node[0]); i++)
		cr_assert(cep_undo_on_node(node[i]), "%s", node[i]);
	for (size_t i = 0; i < sizeof(not ) / sizeof(not [0]); i++)
		cr_assert(!cep_undo_on_node(not [i]), "%s", not [i]);
}

Test(undo, processes_end_with_the_runner)
{
	cep_err err = {0};
	Cep__V1__FaultRecord r = record("signal", "");
	cr_assert_eq(cep_undo_apply(NULL, &r, &err), CEP_OK);
	r = record("child-process", "");
	cr_assert_eq(cep_undo_apply(NULL, &r, &err), CEP_OK);
	r = record("k8s-pod-delete", "");
	cr_assert_eq(cep_undo_apply(NULL, &r, &err), CEP_OK);
}

static int calls;
static char seen_run[64], seen_undo[64];

static int fake_node_undo(const char *run_id, const char *undo_json,
    cep_err *err)
{
	(void)err;
	calls++;
	snprintf(seen_run, sizeof(seen_run), "%s", run_id);
	snprintf(seen_undo, sizeof(seen_undo), "%s", undo_json);
	return CEP_OK;
}

/* Before and after registering, in one process (Criterion runs each test
 * in its own): the table is process-wide, written once at start. */
Test(undo, node_mechanisms_only_once_registered)
{
	cep_err err = {0};
	Cep__V1__FaultRecord r = record("tc-qdisc", "{\"dev\":\"lo\"}");
	/* a process without lib/node (the delegate) hands them on */
	cr_assert_eq(cep_undo_apply(NULL, &r, &err), CEP_UNIMPLEMENTED);
	assert_contains(err.msg, "cleanup runner");
	cr_assert_eq(calls, 0);
	/* only node mechanisms can be registered */
	cr_assert_eq(cep_undo_register("signal", fake_node_undo),
	    CEP_NOT_FOUND);
	cr_assert_eq(cep_undo_register("k8s-scale", fake_node_undo),
	    CEP_NOT_FOUND);
	cr_assert_eq(cep_undo_register(NULL, fake_node_undo), CEP_NOT_FOUND);
	cr_assert_eq(cep_undo_register("tc-qdisc", fake_node_undo), CEP_OK);
	cr_assert_eq(cep_undo_apply(NULL, &r, &err), CEP_OK);
	cr_assert_eq(calls, 1);
	cr_assert_str_eq(seen_run, "run-undo-test");
	cr_assert_str_eq(seen_undo, "{\"dev\":\"lo\"}");
	/* the others stay unregistered */
	r = record("nftables", "{}");
	cr_assert_eq(cep_undo_apply(NULL, &r, &err), CEP_UNIMPLEMENTED);
	cr_assert_eq(calls, 1);
}

static char fake_client; /* never dereferenced: refused before use */

static cep_kube *resolver(const char *run_id, char *ns, size_t nslen, void *arg)
{
	(void)run_id;
	(void)arg;
	snprintf(ns, nslen, "shop");
	return (cep_kube *)(void *)&fake_client;
}

Test(undo, kubernetes_undo_refused_before_any_call)
{
	cep_err err = {0};
	Cep__V1__FaultRecord r = record("k8s-scale",
	    "{\"namespace\":\"shop\",\"name\":\"web\",\"replicas\":3}");
	/* no client for the run: nothing can be undone, and it says so */
	cep_undo_ctx none = {0};
	cr_assert_eq(cep_undo_apply(&none, &r, &err), CEP_FAILED_PRECONDITION);
	assert_contains(err.msg, "no Kubernetes client");
	r = record("k8s-cordon", "{\"nodes\":[]}");
	cr_assert_eq(cep_undo_apply(NULL, &r, &err), CEP_FAILED_PRECONDITION);
	/* a runner's record naming another namespace than its run's */
	cep_undo_ctx shop = {.kube = resolver};
	r = record("k8s-scale",
	    "{\"namespace\":\"payments\",\"name\":\"web\",\"replicas\":3}");
	cr_assert_eq(cep_undo_apply(&shop, &r, &err), CEP_PERMISSION_DENIED);
	assert_contains(err.msg, "other than the run's shop");
	r = record("k8s-scale", "not json");
	cr_assert_eq(cep_undo_apply(&shop, &r, &err), CEP_INVALID_ARGUMENT);
}

/* node-cgroup: only a directory this run's hog could have made */
Test(undo, node_cgroup_records_checked_before_any_call)
{
	const char *run = "r-0123456789abcdef";
	cr_assert(cep_undo_on_node("node-cgroup"));
	cr_assert(cep_undo_cgroup_name_ok(
	    "/sys/fs/cgroup/cep-node-r-0123456789abcdef-burn", run));
	cr_assert(cep_undo_cgroup_name_ok(
	    "/sys/fs/cgroup/unified/cep-node-r-0123456789abcdef-b.1", run));
	cr_assert(!cep_undo_cgroup_name_ok(
	    "/sys/fs/cgroup/cep-node-r-0123456789abcdee-burn", run));
	cr_assert(!cep_undo_cgroup_name_ok(
	    "/sys/fs/cgroup/cep-node-r-0123456789abcdef-", run));
	cr_assert(!cep_undo_cgroup_name_ok(
	    "/sys/fs/cgroup/system.slice/cep-node-r-0123456789abcdef-x", run));
	cr_assert(!cep_undo_cgroup_name_ok(
	    "/sys/fs/cgroup/cep-node-r-0123456789abcdef-x/../..", run));
	cr_assert(!cep_undo_cgroup_name_ok("/tmp/cep-node-r-0123456789abcdef-x",
	    run));
	cep_err err = {0};
	Cep__V1__FaultRecord rec = record("node-cgroup",
	    "{\"cgroup\": \"/sys/fs/cgroup/kubepods\"}");
	rec.run_id = (char *)run;
	cr_assert_eq(cep_undo_apply(NULL, &rec, &err), CEP_PERMISSION_DENIED);
	cr_assert(strstr(err.msg, "not a cgroup of this run") != NULL, "%s",
	    err.msg);
	/* gone: nothing holds the fault */
	rec = record("node-cgroup",
	    "{\"cgroup\": \"/sys/fs/cgroup/cep-node-r-0123456789abcdef-gone\"}");
	rec.run_id = (char *)run;
	cr_assert_eq(cep_undo_apply(NULL, &rec, &err), CEP_OK, "%s", err.msg);
}
