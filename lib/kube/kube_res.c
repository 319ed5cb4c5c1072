/*
 * kube_res.c - resource types (group/version + plural), request paths, and
 * the typed verbs built on cep_kube_request: get, create, delete, patch,
 * SelfSubjectAccessReview, version. One generic layer keyed by resource,
 * no per-kind models. List and watch live in kube_watch.c.
 */
#define _GNU_SOURCE
#include "kube_int.h"

#include <stdio.h>
#include <string.h>

#include "files.h"

const cep_kube_res cep_kube_pods = {"v1", "pods", "Pod", true};
const cep_kube_res cep_kube_secrets = {"v1", "secrets", "Secret", true};
const cep_kube_res cep_kube_nodes = {"v1", "nodes", "Node", false};
const cep_kube_res cep_kube_namespaces = {"v1", "namespaces", "Namespace",
    false};
const cep_kube_res cep_kube_deployments = {"apps/v1", "deployments",
    "Deployment", true};
const cep_kube_res cep_kube_ssar = {"authorization.k8s.io/v1",
    "selfsubjectaccessreviews", "SelfSubjectAccessReview", false};

/* What cep_kube_res_find knows beyond the exported ones (probes name
 * resources by kind or plural). */
static const cep_kube_res more[] = {
    {"v1", "configmaps", "ConfigMap", true},
    {"v1", "services", "Service", true},
    {"v1", "serviceaccounts", "ServiceAccount", true},
    {"v1", "events", "Event", true},
    {"v1", "endpoints", "Endpoints", true},
    {"v1", "persistentvolumeclaims", "PersistentVolumeClaim", true},
    {"apps/v1", "replicasets", "ReplicaSet", true},
    {"apps/v1", "statefulsets", "StatefulSet", true},
    {"apps/v1", "daemonsets", "DaemonSet", true},
    {"batch/v1", "jobs", "Job", true},
    {"rbac.authorization.k8s.io/v1", "roles", "Role", true},
    {"rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding", true},
    {"policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", true},
};

const cep_kube_res *cep_kube_res_find(const char *name)
{
	static const cep_kube_res *const main[] = {&cep_kube_pods,
	    &cep_kube_secrets, &cep_kube_nodes, &cep_kube_namespaces,
	    &cep_kube_deployments, &cep_kube_ssar};
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(main) / sizeof(main[0]); i++)
		if (strcmp(name, main[i]->plural) == 0 ||
		    strcmp(name, main[i]->kind) == 0)
			return main[i];
	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
		if (strcmp(name, more[i].plural) == 0 ||
		    strcmp(name, more[i].kind) == 0)
			return &more[i];
	return NULL;
}

/* A path segment from a caller (names come from configs and runners):
 * no '/', '%', '?', '#', spaces or controls, not "." or "..". */
static int check_segment(const char *what, const char *s, cep_err *err)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s \"%.64s\" is not a valid name", what, s);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '/' || c == '%' ||
		    c == '?' || c == '#' || c == '\\')
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "%s \"%.64s\" is not a valid name", what, s);
	}
	return CEP_OK;
}

int cep_kube_path(const cep_kube_res *r, const char *ns, const char *name,
    const char *sub, char *buf, size_t len, cep_err *err)
{
	if (r == NULL || r->gv == NULL || r->plural == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT, "no resource");
	if ((ns && check_segment("namespace", ns, err)) ||
	    (name && check_segment("name", name, err)) ||
	    (sub && check_segment("subresource", sub, err)))
		return err ? err->code : CEP_INVALID_ARGUMENT;
	if (sub != NULL && name == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "subresource %s needs an object name", sub);
	bool core = strchr(r->gv, '/') == NULL;
	bool nsd = r->namespaced && ns != NULL;
	return cep_files_path(buf, len, err, "/%s/%s%s%s%s/%s%s%s%s%s",
	    core ? "api" : "apis", r->gv, nsd ? "/namespaces/" : "",
	    nsd ? ns : "", "", r->plural, name ? "/" : "", name ? name : "",
	    sub ? "/" : "", sub ? sub : "");
}

/* "create pods shop/x" for messages. */
static void what_of(char *buf, size_t len, const char *verb,
    const cep_kube_res *r, const char *ns, const char *name)
{
	bool nsd = r->namespaced && ns != NULL && ns[0] != '\0';
	snprintf(buf, len, "%s %s %s%s%s", verb, r->plural, nsd ? ns : "",
	    nsd && name ? "/" : "", name ? name : "");
	size_t n = strlen(buf);
	if (n > 0 && buf[n - 1] == ' ')
		buf[n - 1] = '\0';
}

int cep_kube_get(cep_kube *k, const cep_kube_res *r, const char *ns,
    const char *name, json_t **obj, cep_err *err)
{
	char path[KUBE_PATH_MAX], what[600];
	*obj = NULL;
	int rc = cep_kube_path(r, ns, name, NULL, path, sizeof(path), err);
	if (rc != CEP_OK)
		return rc;
	what_of(what, sizeof(what), "get", r, ns, name);
	cep_kube_req req = {.method = "GET", .path = path, .what = what};
	return cep_kube_request(k, &req, NULL, obj, err);
}

int cep_kube_create(cep_kube *k, const cep_kube_res *r, const char *ns,
    json_t *obj, json_t **created, cep_err *err)
{
	char path[KUBE_PATH_MAX], what[600];
	if (created != NULL)
		*created = NULL;
	int rc = cep_kube_path(r, ns, NULL, NULL, path, sizeof(path), err);
	if (rc != CEP_OK)
		return rc;
	json_t *md = json_object_get(obj, "metadata");
	const char *name = json_string_value(json_object_get(md, "name"));
	const char *gen = json_string_value(
	    json_object_get(md, "generateName"));
	char shown[300];
	snprintf(shown, sizeof(shown), "%s%s",
	    name    ? name :
	        gen ? gen :
	              "",
	    !name && gen ? "*" : "");
	what_of(what, sizeof(what), "create", r, ns, shown[0] ? shown : NULL);
	json_t *got = NULL;
	cep_kube_req req = {.method = "POST",
	    .path = path,
	    .body = obj,
	    .what = what};
	rc = cep_kube_request(k, &req, NULL, created ? &got : NULL, err);
	if (created != NULL)
		*created = got;
	return rc;
}

int cep_kube_delete(cep_kube *k, const cep_kube_res *r, const char *ns,
    const char *name, const cep_kube_delete_opts *o, cep_err *err)
{
	char path[KUBE_PATH_MAX], what[600];
	if (r == NULL || name == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "delete: no resource or name");
	int rc = cep_kube_path(r, ns, name, NULL, path, sizeof(path), err);
	if (rc != CEP_OK)
		return rc;
	what_of(what, sizeof(what), "delete", r, ns, name);
	json_t *body = json_pack("{s:s,s:s}", "kind", "DeleteOptions",
	    "apiVersion", "v1");
	if (body == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	if (o != NULL && o->grace_seconds >= 0)
		json_object_set_new(body, "gracePeriodSeconds",
		    json_integer(o->grace_seconds));
	if (o != NULL && o->propagation != NULL)
		json_object_set_new(body, "propagationPolicy",
		    json_string(o->propagation));
	if (o != NULL && o->uid != NULL)
		json_object_set_new(body, "preconditions",
		    json_pack("{s:s}", "uid", o->uid));
	/* the answer (the object being deleted, or a Status) is not used:
	 * not parsed either */
	cep_kube_req req = {.method = "DELETE",
	    .path = path,
	    .body = body,
	    .what = what};
	rc = cep_kube_request(k, &req, NULL, NULL, err);
	json_decref(body);
	return rc;
}

int cep_kube_patch(cep_kube *k, const cep_kube_patch_req *p, json_t **out,
    cep_err *err)
{
	const cep_kube_res *r = p->res;
	const char *ns = p->ns, *name = p->name, *sub = p->sub;
	enum cep_kube_patch type = p->type;
	json_t *patch = p->patch;
	char path[KUBE_PATH_MAX], what[600];
	if (out != NULL)
		*out = NULL;
	if (r == NULL || name == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "patch: no resource or name");
	int rc = cep_kube_path(r, ns, name, sub, path, sizeof(path), err);
	if (rc != CEP_OK)
		return rc;
	what_of(what, sizeof(what), "patch", r, ns, name);
	if (sub != NULL) {
		size_t n = strlen(what);
		snprintf(what + n, sizeof(what) - n, "/%s", sub);
	}
	const char *ct = type == CEP_KUBE_STRATEGIC_PATCH ?
	    "application/strategic-merge-patch+json" :
	    "application/merge-patch+json";
	json_t *got = NULL;
	cep_kube_req req = {.method = "PATCH",
	    .path = path,
	    .body = patch,
	    .content_type = ct,
	    .what = what};
	rc = cep_kube_request(k, &req, NULL, &got, err);
	if (out != NULL)
		*out = got;
	else
		json_decref(got);
	return rc;
}

static json_t *ssar_body(const cep_kube_access *a)
{
	json_t *ra = json_pack("{s:s,s:s,s:s}", "verb", a->verb, "group",
	    a->group ? a->group : "", "resource", a->resource);
	if (ra == NULL)
		return NULL;
	if (a->sub != NULL)
		json_object_set_new(ra, "subresource", json_string(a->sub));
	if (a->ns != NULL)
		json_object_set_new(ra, "namespace", json_string(a->ns));
	return json_pack("{s:s,s:s,s:{},s:{s:o}}", "kind",
	    "SelfSubjectAccessReview", "apiVersion", "authorization.k8s.io/v1",
	    "metadata", "spec", "resourceAttributes", ra);
}

int cep_kube_can_i(cep_kube *k, const cep_kube_access *a, bool *allowed,
    char *reason, size_t rlen, cep_err *err)
{
	char path[KUBE_PATH_MAX], what[300];
	*allowed = false;
	if (reason != NULL && rlen > 0)
		reason[0] = '\0';
	if (a->verb == NULL || a->resource == NULL)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "can-i: verb and resource are required");
	int rc = cep_kube_path(&cep_kube_ssar, NULL, NULL, NULL, path,
	    sizeof(path), err);
	if (rc != CEP_OK)
		return rc;
	snprintf(what, sizeof(what), "can-i %s %s%s%s%s%s", a->verb,
	    a->resource, a->group && a->group[0] ? "." : "",
	    a->group ? a->group : "", a->sub ? "/" : "", a->sub ? a->sub : "");
	json_t *body = ssar_body(a);
	if (body == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	json_t *out = NULL;
	cep_kube_req req = {.method = "POST",
	    .path = path,
	    .body = body,
	    .what = what};
	rc = cep_kube_request(k, &req, NULL, &out, err);
	json_decref(body);
	if (rc != CEP_OK)
		return rc;
	json_t *st = json_object_get(out, "status");
	if (!json_is_boolean(json_object_get(st, "allowed"))) {
		json_decref(out);
		return cep_err_set(err, CEP_UNAVAILABLE,
		    "%s: the answer has no status.allowed", what);
	}
	*allowed = json_is_true(json_object_get(st, "allowed"));
	const char *rs = json_string_value(json_object_get(st, "reason"));
	if (reason != NULL && rs != NULL)
		snprintf(reason, rlen, "%s", rs);
	json_decref(out);
	return CEP_OK;
}

int cep_kube_version(cep_kube *k, char *buf, size_t len, cep_err *err)
{
	json_t *out = NULL;
	cep_kube_req req = {.method = "GET",
	    .path = "/version",
	    .what = "get /version"};
	int rc = cep_kube_request(k, &req, NULL, &out, err);
	if (rc != CEP_OK)
		return rc;
	const char *v = json_string_value(json_object_get(out, "gitVersion"));
	if (v == NULL)
		rc = cep_err_set(err, CEP_UNAVAILABLE,
		    "get /version: the answer has no gitVersion");
	else
		snprintf(buf, len, "%s", v);
	json_decref(out);
	return rc;
}

int cep_kube_scale_set(cep_kube *k, const char *ns, const char *name,
    json_int_t replicas, cep_err *err)
{
	json_t *patch = json_pack("{s:{s:I}}", "spec", "replicas", replicas);
	cep_kube_patch_req p = {.res = &cep_kube_deployments,
	    .ns = ns,
	    .name = name,
	    .sub = "scale",
	    .type = CEP_KUBE_MERGE_PATCH,
	    .patch = patch};
	int rc = cep_kube_patch(k, &p, NULL, err);
	json_decref(patch);
	return rc;
}

int cep_kube_node_unschedulable(cep_kube *k, const char *name, bool on,
    cep_err *err)
{
	json_t *patch = json_pack("{s:{s:o}}", "spec", "unschedulable",
	    on ? json_true() : json_null());
	cep_kube_patch_req p = {.res = &cep_kube_nodes,
	    .name = name,
	    .type = CEP_KUBE_MERGE_PATCH,
	    .patch = patch};
	int rc = cep_kube_patch(k, &p, NULL, err);
	json_decref(patch);
	return rc;
}

/* One read-modify-write of spec.taints, pinned to the resourceVersion
 * read: a merge patch replaces the whole list, so without the pin a
 * concurrent change (the node controller's own taints) could be lost. */
static int taints_once(cep_kube *k, const char *name, cep_kube_taints_fn fn,
    void *arg, cep_err *err)
{
	json_t *obj = NULL;
	int rc = cep_kube_get(k, &cep_kube_nodes, NULL, name, &obj, err);
	if (rc != CEP_OK)
		return rc;
	const char *rv = json_string_value(
	    json_object_get(json_object_get(obj, "metadata"),
	        "resourceVersion"));
	json_t *old = json_object_get(json_object_get(obj, "spec"), "taints");
	json_t *taints = json_is_array(old) ? json_deep_copy(old) :
	                                      json_array();
	bool changed = false;
	rc = fn(taints, arg, &changed, err);
	if (rc == CEP_OK && changed) {
		json_t *patch = json_pack("{s:{s:s?}, s:{s:O}}", "metadata",
		    "resourceVersion", rv, "spec", "taints",
		    json_array_size(taints) ? taints : json_null());
		cep_kube_patch_req p = {.res = &cep_kube_nodes,
		    .name = name,
		    .type = CEP_KUBE_MERGE_PATCH,
		    .patch = patch};
		rc = cep_kube_patch(k, &p, NULL, err);
		json_decref(patch);
	}
	json_decref(taints);
	json_decref(obj);
	return rc;
}

int cep_kube_node_taints(cep_kube *k, const char *name, cep_kube_taints_fn fn,
    void *arg, cep_err *err)
{
	int rc = CEP_ABORTED;
	for (int i = 0; i < 5 && rc == CEP_ABORTED; i++)
		rc = taints_once(k, name, fn, arg, err);
	return rc;
}

int cep_kube_evict(cep_kube *k, const char *ns, const char *name, cep_err *err)
{
	char path[KUBE_PATH_MAX], what[600];
	int rc = cep_kube_path(&cep_kube_pods, ns, name, "eviction", path,
	    sizeof(path), err);
	if (rc != CEP_OK)
		return rc;
	snprintf(what, sizeof(what), "evict pod %s/%s", ns, name);
	json_t *body = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion",
	    "policy/v1", "kind", "Eviction", "metadata", "name", name,
	    "namespace", ns);
	cep_kube_req req = {.method = "POST",
	    .path = path,
	    .body = body,
	    .what = what};
	rc = body != NULL ?
	    cep_kube_request(k, &req, NULL, NULL, err) :
	    cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "%s: no memory", what);
	json_decref(body);
	return rc;
}
