/* test_kube_rbac.c - the permission table and the manifests made of it.
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
		off += (size_t)snprintf(buf + off, len - off, "%s%s/%s%s%s:%s%s",
		    off ? " " : "", p->group, p->resource, p->sub ? "/" : "",
		    p->sub ? p->sub : "", p->verb, p->cluster ? ":cluster" : "");
}

Test(kube_rbac, delegate_table)
{
	char got[1024];
	table(cep_kube_rbac_delegate(), got, sizeof(got));
	cr_assert_str_eq(got, "/pods:create /pods:get /pods:list /pods:watch "
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
	cr_assert_str_eq(perms_of("deployment-scale"), "apps/deployments:get "
	    "apps/deployments/scale:patch");
	cr_assert_str_eq(perms_of("node-cordon"),
	    "/nodes:get:cluster /nodes:list:cluster /nodes:patch:cluster");
	cr_assert_str_eq(perms_of("k8s"), "/pods:get /pods:list "
	    "apps/deployments:get apps/deployments:list");
	/* host faults and probes need nothing from the API */
	cr_assert_str_eq(perms_of("cpu-hog"), "");
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
			cr_assert_eq(cep_kube_rbac_for_type(*t, &p, &err), CEP_OK,
			    "%s", err.msg);
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
		int rv = cep_yaml_parse(p, len, "rbac.yaml", &out->d[out->n], &err);
		cr_assert_eq(rv, CEP_OK, "%s\n%s", err.msg, yaml);
		if (cep_yaml_kind(cep_yaml_root(out->d[out->n])) != CEP_YAML_MAP)
			cep_yaml_free(out->d[out->n]);
		else
			out->n++;
		p += len + (sep ? 4 : 0);
	}
}

static void free_docs(struct docs *d)
{
	for (size_t i = 0; i < d->n; i++)
		cep_yaml_free(d->d[i]);
}

static const char *at(const cep_yaml_doc *d, const char *a, const char *b)
{
	const cep_yaml_node *n = cep_yaml_get(cep_yaml_root(d), a);
	if (b != NULL)
		n = cep_yaml_get(n, b);
	return cep_yaml_scalar(n);
}

static char *manifests(const char *who, const char *const *types, size_t n)
{
	char *y = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_kube_rbac_manifests(who, who[0] == 'd' ?
	    "cep-delegate" : "cep-runner", "shop", types, n, &y, &err), CEP_OK,
	    "%s", err.msg);
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
		cr_assert_str_eq(at(d.d[i], "metadata", "name"), "cep-delegate");
		cr_assert_str_eq(at(d.d[i], "metadata", "namespace"), "shop");
		const cep_yaml_node *labels = cep_yaml_get(cep_yaml_get(
		    cep_yaml_root(d.d[i]), "metadata"), "labels");
		cr_assert_str_eq(cep_yaml_scalar(cep_yaml_get(labels,
		    "app.kubernetes.io/managed-by")), "cep");
	}
	cr_assert_str_eq(at(d.d[0], "apiVersion", NULL), "v1");
	cr_assert_str_eq(at(d.d[1], "apiVersion", NULL),
	    "rbac.authorization.k8s.io/v1");
	/* rules: core group ("" quoted, not null), pods then secrets */
	const cep_yaml_node *rules = cep_yaml_get(cep_yaml_root(d.d[1]), "rules");
	cr_assert_eq(cep_yaml_len(rules), 2);
	const cep_yaml_node *r0 = cep_yaml_at(rules, 0);
	cr_assert_str_eq(cep_yaml_scalar(cep_yaml_at(cep_yaml_get(r0,
	    "apiGroups"), 0)), "");
	cr_assert_str_eq(cep_yaml_scalar(cep_yaml_at(cep_yaml_get(r0,
	    "resources"), 0)), "pods");
	cr_assert_eq(cep_yaml_len(cep_yaml_get(r0, "verbs")), 5);
	cr_assert_eq(cep_yaml_len(cep_yaml_get(cep_yaml_at(rules, 1),
	    "verbs")), 4);
	/* the binding ties the Role to the ServiceAccount */
	cr_assert_str_eq(at(d.d[2], "roleRef", "kind"), "Role");
	cr_assert_str_eq(at(d.d[2], "roleRef", "name"), "cep-delegate");
	const cep_yaml_node *subj = cep_yaml_at(cep_yaml_get(
	    cep_yaml_root(d.d[2]), "subjects"), 0);
	cr_assert_str_eq(cep_yaml_scalar(cep_yaml_get(subj, "kind")),
	    "ServiceAccount");
	cr_assert_str_eq(cep_yaml_scalar(cep_yaml_get(subj, "namespace")),
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
	const cep_yaml_node *rules = cep_yaml_get(cep_yaml_root(d.d[1]), "rules");
	cr_assert_eq(cep_yaml_len(rules), 3, "%s", y);
	cr_assert_str_eq(cep_yaml_scalar(cep_yaml_at(cep_yaml_get(
	    cep_yaml_at(rules, 2), "resources"), 0)), "deployments/scale");
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
	cr_assert_eq(cep_kube_rbac_manifests("runner", "cep-runner", "shop", bad,
	    1, &y, &err), CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_kube_rbac_manifests("someone", "x", "shop", NULL, 0, &y,
	    &err), CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_kube_rbac_manifests("delegate", "x", "Shop!", NULL, 0,
	    &y, &err), CEP_INVALID_ARGUMENT);
	cr_assert_eq(cep_kube_rbac_manifests("delegate", "", "shop", NULL, 0, &y,
	    &err), CEP_INVALID_ARGUMENT);
	cr_assert_null(y);
}
