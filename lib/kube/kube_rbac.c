/*
 * kube_rbac.c - the one table of Kubernetes permissions cep needs, and
 * what is made of it: RBAC manifests (`cepctl rbac`) and a check of each
 * verb by SelfSubjectAccessReview (`cepctl check`, the runner).
 *
 * The table is exact on purpose: every verb below is one the code uses
 * (delegate/executor_kube*.c, runner/fault_kube_*.c, runner/probe_k8s.c),
 * and docs/kubernetes-rbac.md says where. Adding a call to the delegate
 * or a fault type means adding its verb here, or the cluster refuses it.
 * Manifests are built as JSON objects and written with libyaml's emitter:
 * no YAML is assembled by hand.
 */
#define _GNU_SOURCE
#include "kube_rbac.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/*
 * The delegate, in each run namespace: it creates the runner's Pod, then
 * the Secret owned by it (identity, CA, relay address); watches the pod
 * (get/list/watch); deletes both and confirms they are gone (get); and at
 * start lists both by label to collect what an earlier life left behind.
 */
static const cep_kube_perm delegate_perms[] = {
    {"", "pods", NULL, "create", false},
    {"", "pods", NULL, "get", false},
    {"", "pods", NULL, "list", false},
    {"", "pods", NULL, "watch", false},
    {"", "pods", NULL, "delete", false},
    {"", "secrets", NULL, "create", false},
    {"", "secrets", NULL, "get", false},
    {"", "secrets", NULL, "list", false},
    {"", "secrets", NULL, "delete", false},
    {NULL, NULL, NULL, NULL, false},
};

/* pod-delete: select the targets by label (list), delete each with a
 * grace period or force. */
static const cep_kube_perm pod_delete[] = {
    {"", "pods", NULL, "list", false},
    {"", "pods", NULL, "delete", false},
    {NULL, NULL, NULL, NULL, false},
};

/* deployment-scale: read the deployment (its replicas, to restore them),
 * or select them by label (list), and set replicas through the scale
 * subresource (patch), to N and back. */
static const cep_kube_perm deployment_scale[] = {
    {"apps", "deployments", NULL, "get", false},
    {"apps", "deployments", NULL, "list", false},
    {"apps", "deployments", "scale", "patch", false},
    {NULL, NULL, NULL, NULL, false},
};

/* node-cordon, node-taint: nodes are cluster-scoped, hence a ClusterRole;
 * select by label (list) or name (get), set and restore
 * spec.unschedulable or spec.taints (read-modify-write: get, patch). */
static const cep_kube_perm node_cordon[] = {
    {"", "nodes", NULL, "get", true},
    {"", "nodes", NULL, "list", true},
    {"", "nodes", NULL, "patch", true},
    {NULL, NULL, NULL, NULL, false},
};

/* node-drain: node-cordon's verbs, then the pods of the node in every
 * namespace (list, by spec.nodeName) evicted (create pods/eviction):
 * both cluster-wide, as a drain empties the node whatever owns its pods. */
static const cep_kube_perm node_drain[] = {
    {"", "nodes", NULL, "get", true},
    {"", "nodes", NULL, "list", true},
    {"", "nodes", NULL, "patch", true},
    {"", "pods", NULL, "list", true},
    {"", "pods", "eviction", "create", true},
    {NULL, NULL, NULL, NULL, false},
};

/* node-level faults (network, stress, disk) on a pod target: the runner
 * reads the pod (its node, its container's runtime id) to find the
 * container's process on the node, and with labelSelector lists the
 * pods to choose from. Host targets use none of it. */
static const cep_kube_perm pod_target[] = {
    {"", "pods", NULL, "get", false},
    {"", "pods", NULL, "list", false},
    {NULL, NULL, NULL, NULL, false},
};

/* probe k8s: a resource present or absent, a field's value. Pods and
 * deployments only; a probe on another resource needs a rule added by
 * hand (docs/kubernetes-rbac.md). */
static const cep_kube_perm probe_k8s[] = {
    {"", "pods", NULL, "get", false},
    {"", "pods", NULL, "list", false},
    {"apps", "deployments", NULL, "get", false},
    {"apps", "deployments", NULL, "list", false},
    {NULL, NULL, NULL, NULL, false},
};

/*
 * What the delegate needs to undo a fault itself when its runner died
 * (lib/undo/undo.c: "k8s-scale", "k8s-cordon"): restore and read back. Only
 * granted to the delegate for the fault types an operator names with
 * `cepctl rbac --faults`; pod-delete has no undo (the controller replaces
 * the pod).
 */
static const cep_kube_perm undo_scale[] = {
    {"apps", "deployments", NULL, "get", false},
    {"apps", "deployments", "scale", "patch", false},
    {NULL, NULL, NULL, NULL, false},
};

static const cep_kube_perm undo_cordon[] = {
    {"", "nodes", NULL, "get", true},
    {"", "nodes", NULL, "patch", true},
    {NULL, NULL, NULL, NULL, false},
};

static const struct {
	const char *type;
	const cep_kube_perm *perms;
} undo_types[] = {
    {"deployment-scale", undo_scale}, {"node-cordon", undo_cordon},
    {"node-taint", undo_cordon}, /* the same verbs on spec.taints */
    {"node-drain", undo_cordon}, /* uncordon: evictions are not undone */
};

static const struct {
	const char *type;
	const cep_kube_perm *perms; /* NULL: acts on the host, not the API */
} types[] = {
    {"pod-delete", pod_delete},
    {"deployment-scale", deployment_scale},
    {"node-cordon", node_cordon},
    {"node-taint", node_cordon},
    {"node-drain", node_drain},
    {"k8s", probe_k8s},
    {"cpu-hog", pod_target},
    {"memory-hog", pod_target},
    {"io-stress", pod_target},
    {"disk-fill", pod_target},
    {"network-loss", pod_target},
    {"network-partition", pod_target},
    {"network-latency", pod_target},
    {"network-bandwidth", pod_target},
    {"network-corrupt", pod_target},
    {"network-duplicate", pod_target},
    {"dns-error", pod_target},
    {"container-kill", pod_target},
    /* host-only faults and probes: nothing in the Kubernetes API */
    {"process-kill", NULL},
    {"http", NULL},
    {"cmd", NULL},
    {"prometheus", NULL},
};

const cep_kube_perm *cep_kube_rbac_delegate(void)
{
	return delegate_perms;
}

int cep_kube_rbac_for_type(const char *type, const cep_kube_perm **perms,
    cep_err *err)
{
	*perms = NULL;
	for (size_t i = 0; type != NULL && i < sizeof(types) / sizeof(types[0]);
	     i++) {
		if (strcmp(types[i].type, type) == 0) {
			*perms = types[i].perms;
			return CEP_OK;
		}
	}
	return cep_err_set(err, CEP_INVALID_ARGUMENT,
	    "unknown fault or probe "
	    "type \"%.64s\" (Kubernetes types: pod-delete, deployment-scale, "
	    "node-cordon, node-drain, node-taint, k8s)",
	    type ? type : "");
}

const cep_kube_perm *cep_kube_rbac_undo_for_type(const char *type)
{
	for (size_t i = 0;
	     type != NULL && i < sizeof(undo_types) / sizeof(undo_types[0]);
	     i++)
		if (strcmp(undo_types[i].type, type) == 0)
			return undo_types[i].perms;
	return NULL;
}

/* ---- rules: permissions merged per (group, resource/sub) ---- */

#define MAX_RULES 32
#define MAX_VERBS 8

struct rule {
	const char *group;
	char resource[64]; /* "deployments/scale" */
	bool cluster;
	size_t nverbs;
	const char *verbs[MAX_VERBS];
};

static void add_perm(struct rule *rules, size_t *n, const cep_kube_perm *p)
{
	char res[64];
	snprintf(res, sizeof(res), "%s%s%s", p->resource, p->sub ? "/" : "",
	    p->sub ? p->sub : "");
	struct rule *r = NULL;
	for (size_t i = 0; i < *n && r == NULL; i++)
		if (strcmp(rules[i].group, p->group) == 0 &&
		    strcmp(rules[i].resource, res) == 0 &&
		    rules[i].cluster == p->cluster)
			r = &rules[i];
	if (r == NULL) {
		if (*n == MAX_RULES)
			return;
		r = &rules[(*n)++];
		memset(r, 0, sizeof(*r));
		r->group = p->group;
		r->cluster = p->cluster;
		snprintf(r->resource, sizeof(r->resource), "%s", res);
	}
	for (size_t i = 0; i < r->nverbs; i++)
		if (strcmp(r->verbs[i], p->verb) == 0)
			return;
	if (r->nverbs < MAX_VERBS)
		r->verbs[r->nverbs++] = p->verb;
}

static json_t *strings(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* The rules of one scope (namespaced or cluster) as an RBAC rules list. */
static json_t *rules_json(const struct rule *rules, size_t n, bool cluster)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		if (rules[i].cluster != cluster)
			continue;
		const char *res = rules[i].resource;
		json_array_append_new(a,
		    json_pack("{s:o, s:o, s:o}", "apiGroups",
		        strings(&rules[i].group, 1), "resources",
		        strings(&res, 1), "verbs",
		        strings(rules[i].verbs, rules[i].nverbs)));
	}
	return a;
}

/* ---- objects ---- */

static json_t *meta(const char *name, const char *ns, const char *who)
{
	json_t *m = json_pack("{s:s, s:{s:s, s:s}}", "name", name, "labels",
	    "app.kubernetes.io/managed-by", "cep",
	    "app.kubernetes.io/component", who);
	if (ns != NULL)
		json_object_set_new(m, "namespace", json_string(ns));
	return m;
}

static json_t *object(const char *api, const char *kind, json_t *md)
{
	return json_pack("{s:s, s:s, s:o}", "apiVersion", api, "kind", kind,
	    "metadata", md);
}

static json_t *binding(const char *kind, const char *name, const char *ns,
    const char *role_kind, const char *sa, const char *sa_ns, const char *who)
{
	json_t *b = object("rbac.authorization.k8s.io/v1", kind,
	    meta(name, ns, who));
	json_object_set_new(b, "roleRef",
	    json_pack("{s:s, s:s, s:s}", "apiGroup",
	        "rbac.authorization.k8s.io", "kind", role_kind, "name", name));
	json_object_set_new(b, "subjects",
	    json_pack("[{s:s, s:s, s:s}]", "kind", "ServiceAccount", "name", sa,
	        "namespace", sa_ns));
	return b;
}

/*
 * The objects for one identity: its ServiceAccount; a Role and
 * RoleBinding when it needs anything in the namespace; a ClusterRole and
 * ClusterRoleBinding only for cluster-scoped resources. The ClusterRole's
 * binding carries the namespace in its name: one per runner account.
 */
static json_t *objects(const char *who, const char *sa, const char *ns,
    const struct rule *rules, size_t n)
{
	json_t *docs = json_array();
	json_array_append_new(docs,
	    object("v1", "ServiceAccount", meta(sa, ns, who)));
	json_t *nsrules = rules_json(rules, n, false);
	json_t *clrules = rules_json(rules, n, true);
	if (json_array_size(nsrules) > 0) {
		json_t *role = object("rbac.authorization.k8s.io/v1", "Role",
		    meta(sa, ns, who));
		json_object_set(role, "rules", nsrules);
		json_array_append_new(docs, role);
		json_array_append_new(docs,
		    binding("RoleBinding", sa, ns, "Role", sa, ns, who));
	}
	if (json_array_size(clrules) > 0) {
		char crb[256];
		snprintf(crb, sizeof(crb), "%s-%s", sa, ns);
		json_t *role = object("rbac.authorization.k8s.io/v1",
		    "ClusterRole", meta(sa, NULL, who));
		json_object_set(role, "rules", clrules);
		json_array_append_new(docs, role);
		json_t *b = binding("ClusterRoleBinding", crb, NULL,
		    "ClusterRole", sa, ns, who);
		/* the binding's own name differs from the role it refers to */
		json_object_set_new(json_object_get(b, "roleRef"), "name",
		    json_string(sa));
		json_array_append_new(docs, b);
	}
	json_decref(nsrules);
	json_decref(clrules);
	return docs;
}

/* ---- JSON -> YAML through libyaml ---- */

/* A string that a YAML 1.1 reader (kubectl) would take for something
 * else - a boolean, null, a number, or nothing - must be quoted. */
static bool needs_quotes(const char *s)
{
	static const char *const words[] = {"y", "n", "yes", "no", "on", "off",
	    "true", "false", "null", "~", NULL};
	if (s[0] == '\0' || strchr("0123456789+-.", s[0]) != NULL)
		return true;
	for (size_t i = 0; words[i] != NULL; i++)
		if (strcasecmp(s, words[i]) == 0)
			return true;
	return false;
}

static int emit_json(yaml_emitter_t *em, json_t *j);

static int emit_str(yaml_emitter_t *em, const char *s, bool plain)
{
	yaml_event_t ev;
	bool q = !plain || needs_quotes(s);
	yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s,
	    (int)strlen(s), !q, 1,
	    q ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
	return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

/* Lists of scalars in flow style ([get, list]); everything else block. */
static int emit_seq(yaml_emitter_t *em, json_t *a)
{
	bool flow = true;
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v) if (!json_is_string(v)) flow = false;
	yaml_event_t ev;
	yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
	    flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE);
	if (!yaml_emitter_emit(em, &ev))
		return -1;
	json_array_foreach(a, i, v) if (emit_json(em, v) != 0) return -1;
	yaml_sequence_end_event_initialize(&ev);
	return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

/* Keys in a fixed order: apiVersion, kind, metadata first, as people
 * write manifests; the rest sorted. */
static int emit_map(yaml_emitter_t *em, json_t *o)
{
	static const char *const first[] = {"apiVersion", "kind", "metadata",
	    "name", "namespace", NULL};
	yaml_event_t ev;
	yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
	    YAML_BLOCK_MAPPING_STYLE);
	if (!yaml_emitter_emit(em, &ev))
		return -1;
	for (size_t i = 0; first[i] != NULL; i++) {
		json_t *v = json_object_get(o, first[i]);
		if (v != NULL &&
		    (emit_str(em, first[i], true) || emit_json(em, v)))
			return -1;
	}
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(o, tmp, k, v)
	{
		size_t i = 0;
		while (first[i] != NULL && strcmp(first[i], k) != 0)
			i++;
		if (first[i] == NULL &&
		    (emit_str(em, k, true) || emit_json(em, v)))
			return -1;
	}
	yaml_mapping_end_event_initialize(&ev);
	return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

static int emit_json(yaml_emitter_t *em, json_t *j)
{
	if (json_is_object(j))
		return emit_map(em, j);
	if (json_is_array(j))
		return emit_seq(em, j);
	if (json_is_string(j))
		return emit_str(em, json_string_value(j), true);
	return -1; /* the manifests hold only strings, lists and maps */
}

static int emit_docs(yaml_emitter_t *em, json_t *docs)
{
	yaml_event_t ev;
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	if (!yaml_emitter_emit(em, &ev))
		return -1;
	size_t i;
	json_t *d;
	json_array_foreach(docs, i, d)
	{
		yaml_document_start_event_initialize(&ev, NULL, NULL, NULL,
		    i == 0);
		if (!yaml_emitter_emit(em, &ev) || emit_json(em, d) != 0)
			return -1;
		yaml_document_end_event_initialize(&ev, 1);
		if (!yaml_emitter_emit(em, &ev))
			return -1;
	}
	yaml_stream_end_event_initialize(&ev);
	return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

static int to_yaml(json_t *docs, const char *comment, char **yaml, cep_err *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	if (mem == NULL)
		return cep_err_errno(err, errno, "open_memstream");
	fputs(comment, mem);
	yaml_emitter_t em;
	yaml_emitter_initialize(&em);
	yaml_emitter_set_output_file(&em, mem);
	yaml_emitter_set_unicode(&em, 1);
	int bad = emit_docs(&em, docs);
	yaml_emitter_delete(&em);
	fclose(mem);
	if (bad) {
		free(buf);
		return cep_err_set(err, CEP_INTERNAL,
		    "emitting RBAC manifests");
	}
	*yaml = buf;
	return CEP_OK;
}

/* ---- manifests ---- */

static int collect(const char *who, const char *const *types_in, size_t ntypes,
    struct rule *rules, size_t *n, cep_err *err)
{
	*n = 0;
	if (strcmp(who, "delegate") == 0) {
		for (const cep_kube_perm *p = delegate_perms; p->verb; p++)
			add_perm(rules, n, p);
		for (size_t i = 0; i < ntypes; i++) {
			const cep_kube_perm *perms;
			int rv = cep_kube_rbac_for_type(types_in[i], &perms,
			    err);
			if (rv != CEP_OK)
				return rv;
			perms = cep_kube_rbac_undo_for_type(types_in[i]);
			for (const cep_kube_perm *p = perms; p && p->verb; p++)
				add_perm(rules, n, p);
		}
		return CEP_OK;
	}
	if (strcmp(who, "runner") != 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "RBAC manifests "
		    "are for \"delegate\" or \"runner\", not \"%.32s\"",
		    who);
	for (size_t i = 0; i < ntypes; i++) {
		const cep_kube_perm *perms;
		int rv = cep_kube_rbac_for_type(types_in[i], &perms, err);
		if (rv != CEP_OK)
			return rv;
		for (const cep_kube_perm *p = perms; p != NULL && p->verb; p++)
			add_perm(rules, n, p);
	}
	return CEP_OK;
}

/* A name that the API server accepts for a ServiceAccount and a Role, and
 * a namespace: checked here so a typo fails before kubectl sees it. */
static bool dns_name(const char *s, size_t max, bool dots)
{
	size_t n = strlen(s);
	if (n == 0 || n > max || s[0] == '-' || s[0] == '.' ||
	    s[n - 1] == '-' || s[n - 1] == '.')
		return false;
	return strspn(s,
	           dots ? "abcdefghijklmnopqrstuvwxyz0123456789-." :
	                  "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

int cep_kube_rbac_manifests(const char *who, const char *sa_name,
    const char *ns, const char *const *types_in, size_t ntypes, char **yaml,
    cep_err *err)
{
	*yaml = NULL;
	if (who == NULL || sa_name == NULL || ns == NULL ||
	    !dns_name(sa_name, 63, true) || !dns_name(ns, 63, false))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "RBAC manifests "
		    "need a service account name and a namespace of [a-z0-9-] "
		    "(got \"%.64s\" in \"%.64s\")",
		    sa_name ? sa_name : "", ns ? ns : "");
	struct rule rules[MAX_RULES];
	size_t n = 0;
	int rv = collect(who, types_in, ntypes, rules, &n, err);
	if (rv != CEP_OK)
		return rv;
	char comment[512];
	size_t off = (size_t)snprintf(comment, sizeof(comment),
	    "# cep %s: service account %s in namespace %s", who, sa_name, ns);
	for (size_t i = 0;
	     strcmp(who, "runner") == 0 && i < ntypes && off < sizeof(comment);
	     i++)
		off += (size_t)snprintf(comment + off, sizeof(comment) - off,
		    "%s%s", i ? ", " : " for ", types_in[i]);
	if (off < sizeof(comment))
		snprintf(comment + off, sizeof(comment) - off, "%s\n",
		    n == 0 ? " (no Kubernetes permissions needed)" : "");
	json_t *docs = objects(who, sa_name, ns, rules, n);
	rv = to_yaml(docs, comment, yaml, err);
	json_decref(docs);
	return rv;
}

/* ---- the check ---- */

static void describe(const cep_kube_perm *p, const char *ns, char *buf,
    size_t len)
{
	snprintf(buf, len, "%s %s%s%s%s%s %s%s", p->verb, p->resource,
	    p->sub ? "/" : "", p->sub ? p->sub : "", p->group[0] ? "." : "",
	    p->group, p->cluster ? "(cluster-wide)" : "in ",
	    p->cluster ? "" : ns);
}

cep_kube_access cep_kube_perm_access(const cep_kube_perm *p, const char *ns)
{
	return (cep_kube_access){.verb = p->verb,
	    .group = p->group,
	    .resource = p->resource,
	    .sub = p->sub,
	    .ns = p->cluster ? NULL : ns};
}

int cep_kube_rbac_check(cep_kube *k, const cep_kube_perm *perms, const char *ns,
    char **missing, size_t *nmissing, cep_err *err)
{
	*missing = NULL;
	*nmissing = 0;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	if (out == NULL)
		return cep_err_errno(err, errno, "open_memstream");
	int rv = CEP_OK;
	size_t nm = 0;
	for (const cep_kube_perm *p = perms;
	     p != NULL && p->verb != NULL && rv == CEP_OK; p++) {
		bool allowed = false;
		char reason[256] = "", what[160];
		cep_kube_access a = cep_kube_perm_access(p, ns);
		rv = cep_kube_can_i(k, &a, &allowed, reason, sizeof(reason),
		    err);
		if (rv != CEP_OK || allowed)
			continue;
		describe(p, ns, what, sizeof(what));
		fprintf(out, "%s: denied%s%s%s\n", what, reason[0] ? " (" : "",
		    reason, reason[0] ? ")" : "");
		nm++;
	}
	fclose(out);
	if (rv != CEP_OK) {
		free(buf);
		return rv;
	}
	*missing = buf;
	*nmissing = nm;
	return CEP_OK;
}
