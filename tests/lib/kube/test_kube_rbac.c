/* test_kube_rbac.c - the permission table and the manifests made of it,
 * including the delegate's undo verbs (what it needs to undo a fault
 * itself when the runner died: only for the fault types named).
 * (The SelfSubjectAccessReview check runs against the Kubernetes API test
 * server in tests/e2e/test_cepctl_kube.py.) */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp.h"
#include "kube_rbac.h"
#include "yamldoc.h"

/* "group/resource[/sub]:verb[:cluster]" per permission, space-separated. */
static void table(const cep_kube_perm *p, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (; p != NULL && p->verb != NULL && off < len; p++)
		off += (size_t)snprintf(buf + off, len - off,
		    "%s%s/%s%s%s:%s%s", off ? " " : "", p->group, p->resource,
		    p->sub ? "/" : "", p->sub ? p->sub : "", p->verb,
		    p->cluster ? ":cluster" : "");
}

Test(kube_rbac, delegate_table)
{
	char got[1024];
	table(cep_kube_rbac_delegate(), got, sizeof(got));
	cr_assert_str_eq(got,
	    "/pods:create /pods:get /pods:list /pods:watch "
	    "/pods:delete /secrets:create /secrets:get /secrets:list "
	    "/secrets:delete");
}

static const char *perms_of(const char *type)
{
	static char got[1024];
	const cep_kube_perm *p = (const cep_kube_perm *)1;
	cep_err err = {0};
	cr_assert_eq(cep_kube_rbac_for_type(type, &p, &err), CEP_OK, "%s: %s",
	    type, err.msg);
	table(p, got, sizeof(got));
	return got;
}

Test(kube_rbac, runner_tables)
{
	cr_assert_str_eq(perms_of("pod-delete"), "/pods:list /pods:delete");
	cr_assert_str_eq(perms_of("deployment-scale"),
	    "apps/deployments:get apps/deployments:list "
	    "apps/deployments/scale:patch");
	cr_assert_str_eq(perms_of("node-cordon"),
	    "/nodes:get:cluster /nodes:list:cluster /nodes:patch:cluster");
	cr_assert_str_eq(perms_of("node-taint"),
	    "/nodes:get:cluster /nodes:list:cluster /nodes:patch:cluster");
	cr_assert_str_eq(perms_of("node-drain"),
	    "/nodes:get:cluster /nodes:list:cluster /nodes:patch:cluster "
	    "/pods:list:cluster /pods/eviction:create:cluster");
	cr_assert_str_eq(perms_of("k8s"),
	    "/pods:get /pods:list "
	    "apps/deployments:get apps/deployments:list");
	/* node-level faults read their target pod (list: by labelSelector); host-only types and
	 * probes need nothing from the API */
	cr_assert_str_eq(perms_of("cpu-hog"), "/pods:get /pods:list");
	cr_assert_str_eq(perms_of("network-loss"), "/pods:get /pods:list");
	cr_assert_str_eq(perms_of("disk-fill"), "/pods:get /pods:list");
	cr_assert_str_eq(perms_of("process-kill"), "");
	cr_assert_str_eq(perms_of("http"), "");
	const cep_kube_perm *p = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_kube_rbac_for_type("pod-explode", &p, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert(strstr(err.msg, "pod-explode") != NULL, "%s", err.msg);
	cr_assert_null(p);
}

/* Every fault and probe the experiment model knows has a row: a new type
 * without one would get no permissions (or refuse to start). */
Test(kube_rbac, every_known_type_has_a_row)
{
	const char *const *lists[] = {cep_exp_fault_types(),
	    cep_exp_probe_types()};
	for (size_t l = 0; l < 2; l++)
		for (const char *const *t = lists[l]; *t != NULL; t++) {
			const cep_kube_perm *p;
			cep_err err = {0};
			cr_assert_eq(cep_kube_rbac_for_type(*t, &p, &err),
			    CEP_OK, "%s", err.msg);
		}
}

/* ---- manifests ---- */

struct docs {
	size_t n;
	cep_yaml_doc *d[16];
};

static void parse_stream(const char *yaml, struct docs *out)
{
	out->n = 0;
	const char *p = yaml;
	while (*p != '\0') {
		const char *sep = strstr(p, "\n---\n");
		size_t len = sep ? (size_t)(sep - p) + 1 : strlen(p);
		cr_assert_lt(out->n, 16);
		cep_err err = {0};
		int rv = cep_yamldoc_parse(p, len, "rbac.yaml", &out->d[out->n],
		    &err);
		cr_assert_eq(rv, CEP_OK, "%s\n%s", err.msg, yaml);
		if (cep_yamldoc_kind(cep_yamldoc_root(out->d[out->n])) !=
		    CEP_YAML_MAP)
			cep_yamldoc_free(out->d[out->n]);
		else
			out->n++;
		p += len + (sep ? 4 : 0);
	}
}

static void free_docs(struct docs *d)
{
	for (size_t i = 0; i < d->n; i++)
		cep_yamldoc_free(d->d[i]);
}

static const char *at(const cep_yaml_doc *d, const char *a, const char *b)
{
	const cep_yaml_node *n = cep_yamldoc_get(cep_yamldoc_root(d), a);
	if (b != NULL)
		n = cep_yamldoc_get(n, b);
	return cep_yamldoc_scalar(n);
}

static char *manifests(const char *who, const char *const *types, size_t n)
{
	char *y = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_kube_rbac_manifests(who,
	                 who[0] == 'd' ? "cep-delegate" : "cep-runner", "shop",
	                 types, n, &y, &err),
	    CEP_OK, "%s", err.msg);
	return y;
}

Test(kube_rbac, delegate_manifests)
{
	char *y = manifests("delegate", NULL, 0);
	struct docs d;
	parse_stream(y, &d);
	cr_assert_eq(d.n, 3, "%s", y);
	const char *kinds[] = {"ServiceAccount", "Role", "RoleBinding"};
	for (size_t i = 0; i < 3; i++) {
		cr_assert_str_eq(at(d.d[i], "kind", NULL), kinds[i]);
		cr_assert_str_eq(at(d.d[i], "metadata", "name"),
		    "cep-delegate");
		cr_assert_str_eq(at(d.d[i], "metadata", "namespace"), "shop");
		const cep_yaml_node *labels =
		    cep_yamldoc_get(cep_yamldoc_get(cep_yamldoc_root(d.d[i]),
		                        "metadata"),
		        "labels");
		cr_assert_str_eq(cep_yamldoc_scalar(cep_yamldoc_get(labels,
		                     "app.kubernetes.io/managed-by")),
		    "cep");
	}
	cr_assert_str_eq(at(d.d[0], "apiVersion", NULL), "v1");
	cr_assert_str_eq(at(d.d[1], "apiVersion", NULL),
	    "rbac.authorization.k8s.io/v1");
	/* rules: core group ("" quoted, not null), pods then secrets */
	const cep_yaml_node *rules = cep_yamldoc_get(cep_yamldoc_root(d.d[1]),
	    "rules");
	cr_assert_eq(cep_yamldoc_len(rules), 2);
	const cep_yaml_node *r0 = cep_yamldoc_at(rules, 0);
	cr_assert_str_eq(cep_yamldoc_scalar(
	                     cep_yamldoc_at(cep_yamldoc_get(r0, "apiGroups"),
	                         0)),
	    "");
	cr_assert_str_eq(cep_yamldoc_scalar(
	                     cep_yamldoc_at(cep_yamldoc_get(r0, "resources"),
	                         0)),
	    "pods");
	cr_assert_eq(cep_yamldoc_len(cep_yamldoc_get(r0, "verbs")), 5);
	cr_assert_eq(cep_yamldoc_len(
	                 cep_yamldoc_get(cep_yamldoc_at(rules, 1), "verbs")),
	    4);
	/* the binding ties the Role to the ServiceAccount */
	cr_assert_str_eq(at(d.d[2], "roleRef", "kind"), "Role");
	cr_assert_str_eq(at(d.d[2], "roleRef", "name"), "cep-delegate");
	const cep_yaml_node *subj =
	    cep_yamldoc_at(cep_yamldoc_get(cep_yamldoc_root(d.d[2]),
	                       "subjects"),
	        0);
	cr_assert_str_eq(cep_yamldoc_scalar(cep_yamldoc_get(subj, "kind")),
	    "ServiceAccount");
	cr_assert_str_eq(cep_yamldoc_scalar(cep_yamldoc_get(subj, "namespace")),
	    "shop");
	cr_assert_null(strstr(y, "Cluster"));
	free_docs(&d);
	free(y);
}

Test(kube_rbac, only_node_cordon_is_cluster_wide)
{
	const char *ns_types[] = {"pod-delete", "deployment-scale", "k8s",
	    "cpu-hog", "http"};
	char *y = manifests("runner", ns_types, 5);
	cr_assert_null(strstr(y, "Cluster"), "%s", y);
	struct docs d;
	parse_stream(y, &d);
	cr_assert_eq(d.n, 3);
	/* merged: pods get/list/delete once, deployments get/list, scale */
	const cep_yaml_node *rules = cep_yamldoc_get(cep_yamldoc_root(d.d[1]),
	    "rules");
	cr_assert_eq(cep_yamldoc_len(rules), 3, "%s", y);
	cr_assert_str_eq(cep_yamldoc_scalar(cep_yamldoc_at(
	                     cep_yamldoc_get(cep_yamldoc_at(rules, 2),
	                         "resources"),
	                     0)),
	    "deployments/scale");
	free_docs(&d);
	free(y);

	const char *cordon[] = {"node-cordon"};
	y = manifests("runner", cordon, 1);
	parse_stream(y, &d);
	/* the SA, no Role (nothing namespaced), ClusterRole + binding */
	cr_assert_eq(d.n, 3, "%s", y);
	cr_assert_str_eq(at(d.d[0], "kind", NULL), "ServiceAccount");
	cr_assert_str_eq(at(d.d[1], "kind", NULL), "ClusterRole");
	cr_assert_null(at(d.d[1], "metadata", "namespace"));
	cr_assert_str_eq(at(d.d[2], "kind", NULL), "ClusterRoleBinding");
	cr_assert_str_eq(at(d.d[2], "metadata", "name"), "cep-runner-shop");
	cr_assert_str_eq(at(d.d[2], "roleRef", "name"), "cep-runner");
	free_docs(&d);
	free(y);

	/* host types only: a service account and nothing else */
	const char *host[] = {"process-kill"};
	y = manifests("runner", host, 1);
	parse_stream(y, &d);
	cr_assert_eq(d.n, 1, "%s", y);
	cr_assert(strstr(y, "no Kubernetes permissions needed") != NULL);
	free_docs(&d);
	free(y);
}

Test(kube_rbac, refusals)
{
	char *y = NULL;
	cep_err err = {0};
	const char *bad[] = {"pod-explode"};
	cr_assert_eq(cep_kube_rbac_manifests("runner", "cep-runner", "shop",
	                 bad, 1, &y, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_kube_rbac_manifests("someone", "x", "shop", NULL, 0,
	                 &y, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_kube_rbac_manifests("delegate", "x", "Shop!", NULL, 0,
	                 &y, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_kube_rbac_manifests("delegate", "", "shop", NULL, 0,
	                 &y, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_null(y);
}

/* ---- the delegate's undo of a fault whose runner died ---- */

static const char *undo_of(const char *type)
{
	static char got[1024];
	table(cep_kube_rbac_undo_for_type(type), got, sizeof(got));
	return got;
}

Test(kube_rbac, undo_tables)
{
	/* restore + read back, exactly what lib/undo/undo.c's k8s-scale and
	 * k8s-cordon call */
	cr_assert_str_eq(undo_of("deployment-scale"),
	    "apps/deployments:get "
	    "apps/deployments/scale:patch");
	cr_assert_str_eq(undo_of("node-cordon"),
	    "/nodes:get:cluster /nodes:patch:cluster");
	/* k8s-taint: the read-modify-write of spec.taints, then read back */
	cr_assert_str_eq(undo_of("node-taint"),
	    "/nodes:get:cluster /nodes:patch:cluster");
	/* node-drain: uncordon only (evicted pods are not brought back) */
	cr_assert_str_eq(undo_of("node-drain"),
	    "/nodes:get:cluster /nodes:patch:cluster");
	/* no undo: pod-delete (the controller replaces the pod), probes,
	 * host faults (undone on the host, not through the API), unknown */
	const char *none[] = {"pod-delete", "k8s", "cpu-hog", "network-loss",
	    "http", "pod-explode", "", NULL};
	for (const char *const *t = none; *t != NULL; t++)
		cr_assert_null(cep_kube_rbac_undo_for_type(*t), "%s", *t);
	cr_assert_null(cep_kube_rbac_undo_for_type(NULL));
}

/* The delegate's undo does what the runner's own revert does: every undo
 * verb is one the runner's account has for that type already. */
Test(kube_rbac, undo_is_within_the_runner_verbs)
{
	const char *const *t = cep_exp_fault_types();
	for (; *t != NULL; t++) {
		const cep_kube_perm *u = cep_kube_rbac_undo_for_type(*t), *r;
		cep_err err = {0};
		cr_assert_eq(cep_kube_rbac_for_type(*t, &r, &err), CEP_OK);
		for (; u != NULL && u->verb != NULL; u++) {
			bool found = false;
			for (const cep_kube_perm *p = r; p && p->verb && !found;
			     p++)
				found = strcmp(p->group, u->group) == 0 &&
				    strcmp(p->resource, u->resource) == 0 &&
				    (p->sub == NULL) == (u->sub == NULL) &&
				    (p->sub == NULL ||
				        strcmp(p->sub, u->sub) == 0) &&
				    strcmp(p->verb, u->verb) == 0 &&
				    p->cluster == u->cluster;
			cr_assert(found,
			    "%s: undo verb %s %s is not the runner's", *t,
			    u->verb, u->resource);
		}
	}
}

/* "group|resource:verb,verb" per rule of a Role/ClusterRole document,
 * space-separated, in document order. */
static void rules_of(const cep_yaml_doc *d, char *buf, size_t len)
{
	const cep_yaml_node *rules = cep_yamldoc_get(cep_yamldoc_root(d),
	    "rules");
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < cep_yamldoc_len(rules) && off < len; i++) {
		const cep_yaml_node *r = cep_yamldoc_at(rules, i);
		const cep_yaml_node *g = cep_yamldoc_get(r, "apiGroups");
		const cep_yaml_node *res = cep_yamldoc_get(r, "resources");
		const cep_yaml_node *v = cep_yamldoc_get(r, "verbs");
		cr_assert_eq(cep_yamldoc_len(g), 1);
		cr_assert_eq(cep_yamldoc_len(res), 1);
		off += (size_t)snprintf(buf + off, len - off,
		    "%s%s|%s:", off ? " " : "",
		    cep_yamldoc_scalar(cep_yamldoc_at(g, 0)),
		    cep_yamldoc_scalar(cep_yamldoc_at(res, 0)));
		for (size_t j = 0; j < cep_yamldoc_len(v) && off < len; j++)
			off += (size_t)snprintf(buf + off, len - off, "%s%s",
			    j ? "," : "",
			    cep_yamldoc_scalar(cep_yamldoc_at(v, j)));
	}
}

#define BASE_RULES                            \
	"|pods:create,get,list,watch,delete " \
	"|secrets:create,get,list,delete"

static void assert_kinds(const struct docs *d, const char *const *kinds,
    const char *y)
{
	size_t n = 0;
	while (kinds[n] != NULL)
		n++;
	cr_assert_eq(d->n, n, "%s", y);
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(at(d->d[i], "kind", NULL), kinds[i], "%s", y);
}

/* Without types, and with types that have no undo: exactly the base. */
Test(kube_rbac, delegate_without_undo_types_gets_exactly_the_base)
{
	const char *none[] = {"pod-delete", "k8s", "cpu-hog"};
	const char *const kinds[] = {"ServiceAccount", "Role", "RoleBinding",
	    NULL};
	for (size_t n = 0; n <= 3; n += 3) {
		char *y = manifests("delegate", n ? none : NULL, n);
		struct docs d;
		parse_stream(y, &d);
		assert_kinds(&d, kinds, y);
		char got[1024];
		rules_of(d.d[1], got, sizeof(got));
		cr_assert_str_eq(got, BASE_RULES, "%s", y);
		cr_assert_null(strstr(y, "Cluster"), "%s", y);
		cr_assert_null(strstr(y, "nodes"), "%s", y);
		cr_assert_null(strstr(y, "deployments"), "%s", y);
		free_docs(&d);
		free(y);
	}
}

Test(kube_rbac, delegate_with_deployment_scale_gets_its_undo_verbs)
{
	const char *types[] = {"deployment-scale"};
	char *y = manifests("delegate", types, 1);
	struct docs d;
	parse_stream(y, &d);
	const char *const kinds[] = {"ServiceAccount", "Role", "RoleBinding",
	    NULL};
	assert_kinds(&d, kinds, y);
	char got[1024];
	rules_of(d.d[1], got, sizeof(got));
	/* the base plus get deployments and patch deployments/scale - not
	 * list, not update: nothing the undo does not call */
	cr_assert_str_eq(got,
	    BASE_RULES " apps|deployments:get "
	               "apps|deployments/scale:patch",
	    "%s", y);
	cr_assert_null(strstr(y, "Cluster"), "%s", y);
	free_docs(&d);
	free(y);
}

Test(kube_rbac, delegate_with_node_cordon_gets_a_cluster_role)
{
	const char *types[] = {"node-cordon"};
	char *y = manifests("delegate", types, 1);
	struct docs d;
	parse_stream(y, &d);
	const char *const kinds[] = {"ServiceAccount", "Role", "RoleBinding",
	    "ClusterRole", "ClusterRoleBinding", NULL};
	assert_kinds(&d, kinds, y);
	char got[1024];
	/* the namespaced Role is the base, unchanged */
	rules_of(d.d[1], got, sizeof(got));
	cr_assert_str_eq(got, BASE_RULES, "%s", y);
	/* nodes (cluster-scoped): get and patch only - no list */
	rules_of(d.d[3], got, sizeof(got));
	cr_assert_str_eq(got, "|nodes:get,patch", "%s", y);
	cr_assert_str_eq(at(d.d[3], "metadata", "name"), "cep-delegate");
	cr_assert_null(at(d.d[3], "metadata", "namespace"));
	cr_assert_str_eq(at(d.d[4], "metadata", "name"), "cep-delegate-shop");
	cr_assert_str_eq(at(d.d[4], "roleRef", "kind"), "ClusterRole");
	cr_assert_str_eq(at(d.d[4], "roleRef", "name"), "cep-delegate");
	const cep_yaml_node *subj =
	    cep_yamldoc_at(cep_yamldoc_get(cep_yamldoc_root(d.d[4]),
	                       "subjects"),
	        0);
	cr_assert_str_eq(cep_yamldoc_scalar(cep_yamldoc_get(subj, "name")),
	    "cep-delegate");
	cr_assert_str_eq(cep_yamldoc_scalar(cep_yamldoc_get(subj, "namespace")),
	    "shop");
	free_docs(&d);
	free(y);
}

Test(kube_rbac, delegate_with_both_undo_types_and_duplicates)
{
	const char *types[] = {"node-cordon", "deployment-scale", "pod-delete",
	    "deployment-scale"};
	char *y = manifests("delegate", types, 4);
	struct docs d;
	parse_stream(y, &d);
	const char *const kinds[] = {"ServiceAccount", "Role", "RoleBinding",
	    "ClusterRole", "ClusterRoleBinding", NULL};
	assert_kinds(&d, kinds, y);
	char got[1024];
	rules_of(d.d[1], got, sizeof(got));
	cr_assert_str_eq(got,
	    BASE_RULES " apps|deployments:get "
	               "apps|deployments/scale:patch",
	    "%s", y);
	rules_of(d.d[3], got, sizeof(got));
	cr_assert_str_eq(got, "|nodes:get,patch", "%s", y);
	free_docs(&d);
	free(y);
}

Test(kube_rbac, delegate_with_unknown_type_refused)
{
	char *y = NULL;
	cep_err err = {0};
	const char *bad[] = {"deployment-scale", "pod-explode"};
	cr_assert_eq(cep_kube_rbac_manifests("delegate", "cep-delegate", "shop",
	                 bad, 2, &y, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert(strstr(err.msg, "pod-explode") != NULL, "%s", err.msg);
	cr_assert_null(y);
}
