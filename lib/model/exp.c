/*
 * exp.c - experiment YAML -> validated, read-only model.
 *
 * Validation walks the document once and reports every problem it finds
 * (up to 32) as "file:line:col: path: what was wrong, expected what", so an
 * operator fixes a spec in one round instead of one error at a time.
 * This file knows the experiment's frame (apiVersion, metadata, spec,
 * target, duration, deadman) and the rules of a fault or probe item (name,
 * type, unknown keys, required keys, defaults, rules across parameters).
 * How one parameter kind is read is in exp_param.c, the types and their
 * parameters in exp_schema.c. Accessors for the parsed model are at the
 * end of the file.
 */
#define _GNU_SOURCE
#include "exp_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "litmus.h"

#define MAX_FAULTS 16
#define MAX_PROBES 32
#define MAX_LABELS 64

/* ---- shapes ---- */

/* Unknown keys of a fixed-shape mapping. */
static void check_keys(struct vctx *v, const cep_yaml_node *map,
    const char *path, const char *where, const char *const *allowed)
{
	char exp[256];
	cep_yamlget_join(exp, sizeof(exp), allowed);
	size_t i = 0;
	const cep_yaml_node *k;
	while ((k = cep_yamlget_unknown(map, allowed, &i)) != NULL) {
		char b[80];
		cep_exp_val_diag(v, k, path,
		    "unknown key '%s' in %s (expected one of: %s)",
		    cep_exp_val_shown(cep_yamldoc_scalar(k), b, sizeof(b)),
		    where, exp);
	}
}

static bool want_map(struct vctx *v, const cep_yaml_node *n, const char *path,
    const char *expected)
{
	if (cep_yamldoc_kind(n) == CEP_YAML_MAP)
		return true;
	cep_exp_val_diag(v, n, path, "got %s, expected %s",
	    cep_exp_val_kind_word(n), expected);
	return false;
}

static bool want_name(struct vctx *v, const cep_yaml_node *n, const char *path,
    const char **out)
{
	static const char expected[] =
	    "a name of lowercase letters, digits "
	    "and '-' (at most 63, starting and ending with a letter or digit)";
	const char *s = cep_exp_val_want_string(v, n, path, expected);
	char b[80];
	if (s != NULL && !cep_exp_val_valid_name(s)) {
		cep_exp_val_diag(v, n, path,
		    "\"%s\" is not a valid name, expected %s",
		    cep_exp_val_shown(s, b, sizeof(b)), expected);
		s = NULL;
	}
	*out = s;
	return s != NULL;
}

/* ---- faults and probes ---- */

struct item_ctx {
	const char *what; /* "fault", "probe" */
	const cep_exp_type_spec *spec;
	const cep_exp_param_spec *common;
	const cep_yaml_node *node;
	const char *path; /* spec.faults[1] */
	const char *name; /* may be NULL */
};

static const cep_exp_param_spec *find_param(const struct item_ctx *c,
    const char *key)
{
	for (const cep_exp_param_spec *p = c->spec->params; p->key; p++) {
		if (strcmp(p->key, key) == 0)
			return p;
	}
	for (const cep_exp_param_spec *p = c->common; p && p->key; p++) {
		if (strcmp(p->key, key) == 0)
			return p;
	}
	return NULL;
}

static void item_keys(struct vctx *v, const struct item_ctx *c)
{
	char exp[384] = "name, type", b[80], p[192];
	size_t off = strlen(exp);
	const cep_exp_param_spec *lists[2] = {c->spec->params, c->common};
	for (size_t l = 0; l < 2; l++) {
		for (const cep_exp_param_spec *ps = lists[l]; ps && ps->key;
		     ps++) {
			int w = snprintf(exp + off, sizeof(exp) - off, ", %s",
			    ps->key);
			if (w > 0 && (size_t)w < sizeof(exp) - off)
				off += (size_t)w;
		}
	}
	for (size_t i = 0; i < cep_yamldoc_len(c->node); i++) {
		const cep_yaml_node *k = cep_yamldoc_key_at(c->node, i);
		const char *ks = cep_yamldoc_scalar(k);
		if (strcmp(ks, "name") == 0 || strcmp(ks, "type") == 0 ||
		    find_param(c, ks) != NULL)
			continue;
		snprintf(p, sizeof(p), "%s.%s", c->path,
		    cep_exp_val_shown(ks, b, sizeof(b)));
		cep_exp_val_diag(v, k, p,
		    "unknown key '%s' in %s '%s' (expected one of: %s)",
		    cep_exp_val_shown(ks, b, sizeof(b)), c->what,
		    c->name ? c->name : "?", exp);
	}
}

/* Absent parameter: required -> message; else its default. */
static void param_default(struct vctx *v, const struct item_ctx *c,
    const cep_exp_param_spec *ps, struct pval *pv)
{
	char exp[320];
	if (ps->flags & CEP_PARAM_REQUIRED) {
		cep_exp_val_describe(ps, exp, sizeof(exp));
		cep_exp_val_diag(v, c->node, c->path,
		    "missing required key '%s' in %s '%s', expected %s",
		    ps->key, c->what, c->name ? c->name : "?", exp);
	} else if (ps->def != NULL) {
		pv->set = cep_exp_val_convert(ps, ps->def, false, pv);
	} else if ((ps->flags & CEP_PARAM_RUN_DURATION) && v->duration_ms > 0) {
		pv->i = v->duration_ms;
		pv->set = true;
	}
}

static struct pval *pv_find(cep_exp_item *it, const char *key)
{
	for (size_t i = 0; it != NULL && i < it->np; i++) {
		if (strcmp(it->pv[i].ps->key, key) == 0)
			return &it->pv[i];
	}
	return NULL;
}

/* Rules across parameters: run duration, when_key, exactly-one-of. */
static void cross_checks(struct vctx *v, const struct item_ctx *c,
    cep_exp_item *it)
{
	char p[192], a[32], b[32];
	for (size_t i = 0; i < it->np; i++) {
		const cep_exp_param_spec *ps = it->pv[i].ps;
		const cep_yaml_node *n = cep_yamldoc_get(c->node, ps->key);
		snprintf(p, sizeof(p), "%s.%s", c->path, ps->key);
		if (n != NULL && it->pv[i].set &&
		    (ps->flags & CEP_PARAM_RUN_DURATION) &&
		    v->duration_ms > 0 && it->pv[i].i > v->duration_ms) {
			cep_exp_val_short_duration(it->pv[i].i, a, sizeof(a));
			cep_exp_val_short_duration(v->duration_ms, b,
			    sizeof(b));
			cep_exp_val_diag(v, n, p,
			    "%s is longer than the experiment's "
			    "duration %s, expected at most %s",
			    a, b, b);
		}
		const struct pval *w = ps->when_key ?
		    pv_find(it, ps->when_key) :
		    NULL;
		if (n != NULL && w != NULL && w->s != NULL &&
		    strcmp(w->s, ps->when_val) != 0)
			cep_exp_val_diag(v, n, p,
			    "%s is only used with %s %s, expected "
			    "%s: %s or no %s",
			    ps->key, ps->when_key, ps->when_val, ps->when_key,
			    ps->when_val, ps->key);
	}
	if (c->spec->one_of == NULL)
		return;
	char list[128];
	cep_yamlget_join(list, sizeof(list), c->spec->one_of);
	const char *first = NULL;
	for (size_t i = 0; c->spec->one_of[i] != NULL; i++) {
		const char *k = c->spec->one_of[i];
		if (cep_yamldoc_get(c->node, k) == NULL)
			continue;
		if (first == NULL) {
			first = k;
			continue;
		}
		snprintf(p, sizeof(p), "%s.%s", c->path, k);
		cep_exp_val_diag(v, cep_yamldoc_get(c->node, k), p,
		    "both '%s' and '%s' given, expected exactly one of %s",
		    first, k, list);
	}
	if (first == NULL)
		cep_exp_val_diag(v, c->node, c->path,
		    "none of %s given, expected exactly one of them", list);
}

static size_t count_params(const cep_exp_param_spec *ps)
{
	size_t n = 0;
	while (ps != NULL && ps[n].key != NULL)
		n++;
	return n;
}

static bool item_params(struct vctx *v, const struct item_ctx *c,
    cep_exp_item *it)
{
	size_t n1 = count_params(c->spec->params), n2 = count_params(c->common);
	it->pv = calloc(n1 + n2 + 1, sizeof(*it->pv));
	if (it->pv == NULL)
		return false;
	it->np = n1 + n2;
	char p[192];
	for (size_t i = 0; i < it->np; i++) {
		struct pval *pv = &it->pv[i];
		pv->ps = i < n1 ? &c->spec->params[i] : &c->common[i - n1];
		const cep_yaml_node *n = cep_yamldoc_get(c->node, pv->ps->key);
		snprintf(p, sizeof(p), "%s.%s", c->path, pv->ps->key);
		if (n != NULL)
			pv->set = cep_exp_val_read_param(v, pv->ps, n, p, pv);
		else
			param_default(v, c, pv->ps, pv);
	}
	cross_checks(v, c, it);
	return true;
}

/* One fault or probe: name, type, then the type's parameters. */
static bool parse_item(struct vctx *v, const cep_yaml_node *n, const char *path,
    bool probe, cep_exp_item *it)
{
	const char *what = probe ? "probe" : "fault";
	char exp[160], b[80], p[160];
	snprintf(exp, sizeof(exp),
	    "a %s: a mapping with name, type and the "
	    "type's parameters",
	    what);
	if (!want_map(v, n, path, exp))
		return true;
	it->line = cep_yamldoc_line(n);
	struct item_ctx c = {.what = what,
	    .node = n,
	    .path = path,
	    .common = probe ? cep_exp_probe_common() : NULL};
	const cep_yaml_node *nn = cep_yamldoc_get(n, "name");
	snprintf(p, sizeof(p), "%s.name", path);
	if (nn == NULL)
		cep_exp_val_diag(v, n, path,
		    "missing required key 'name', expected a name "
		    "such as kill-web");
	else if (want_name(v, nn, p, &c.name) && !(it->name = strdup(c.name)))
		return false;
	const cep_yaml_node *tn = cep_yamldoc_get(n, "type");
	const char *const *types = probe ? cep_exp_probe_types() :
	                                   cep_exp_fault_types();
	cep_yamlget_join(exp, sizeof(exp), types);
	snprintf(p, sizeof(p), "%s.type", path);
	const char *t = tn ? cep_exp_val_want_string(v, tn, p, exp) : NULL;
	if (tn == NULL)
		cep_exp_val_diag(v, n, path,
		    "missing required key 'type', expected one of: %s", exp);
	if (t == NULL)
		return true;
	c.spec = probe ? cep_exp_probe_spec(t) : cep_exp_fault_spec(t);
	if (c.spec == NULL) {
		cep_exp_val_diag(v, tn, p,
		    "unknown %s type \"%s\" (expected one of: %s)", what,
		    cep_exp_val_shown(t, b, sizeof(b)), exp);
		return true;
	}
	it->spec = c.spec;
	if ((it->type = strdup(t)) == NULL)
		return false;
	item_keys(v, &c);
	return item_params(v, &c, it);
}

static bool parse_items(struct vctx *v, const cep_yaml_node *list,
    const char *key, bool probe, cep_exp_item **out, size_t *nout)
{
	size_t max = probe ? MAX_PROBES : MAX_FAULTS;
	char path[64], exp[96];
	snprintf(path, sizeof(path), "spec.%s", key);
	snprintf(exp, sizeof(exp), "a list of at most %zu %s", max, key);
	if (list == NULL || cep_yamldoc_kind(list) == CEP_YAML_NULL)
		return true;
	if (cep_yamldoc_kind(list) != CEP_YAML_SEQ) {
		cep_exp_val_diag(v, list, path, "got %s, expected %s",
		    cep_exp_val_kind_word(list), exp);
		return true;
	}
	if (cep_yamldoc_len(list) > max) {
		cep_exp_val_diag(v, list, path,
		    "got a list of %zu items, expected %s",
		    cep_yamldoc_len(list), exp);
		return true;
	}
	*nout = cep_yamldoc_len(list);
	if ((*out = calloc(*nout + 1, sizeof(**out))) == NULL)
		return false;
	for (size_t i = 0; i < *nout; i++) {
		snprintf(path, sizeof(path), "spec.%s[%zu]", key, i);
		const cep_yaml_node *n = cep_yamldoc_at(list, i);
		if (!parse_item(v, n, path, probe, &(*out)[i]))
			return false;
		for (size_t j = 0; (*out)[i].name && j < i; j++) {
			if ((*out)[j].name == NULL ||
			    strcmp((*out)[j].name, (*out)[i].name) != 0)
				continue;
			snprintf(path, sizeof(path), "spec.%s[%zu].name", key,
			    i);
			cep_exp_val_diag(v, cep_yamldoc_get(n, "name"), path,
			    "duplicate %s name "
			    "'%s' (first at line %d), expected a unique name",
			    probe ? "probe" : "fault", (*out)[i].name,
			    (*out)[j].line);
			break;
		}
	}
	return true;
}

/* ---- the frame: apiVersion, kind, metadata, spec ---- */

static bool dup_into(char **dst, const char *s)
{
	return (*dst = strdup(s ? s : "")) != NULL;
}

static bool parse_labels(struct vctx *v, const cep_yaml_node *n, cep_exp *e)
{
	static const cep_exp_param_spec labels = {.key = "labels",
	    .kind = CEP_PARAM_STRMAP,
	    .max = MAX_LABELS};
	struct pval pv = {0};
	bool ok = true;
	if (n != NULL && cep_yamldoc_kind(n) != CEP_YAML_NULL) {
		cep_exp_val_map_param(v, &labels, n, "metadata.labels", &pv);
		for (size_t i = 0; i < pv.n; i++) {
			if (pv.keys[i] == NULL || strlen(pv.keys[i]) <= 63)
				continue;
			cep_exp_val_diag(v, cep_yamldoc_key_at(n, i),
			    "metadata.labels",
			    "label key of %zu bytes, expected at most 63",
			    strlen(pv.keys[i]));
		}
	}
	e->nlabels = pv.n;
	e->lkeys = pv.keys ? pv.keys : cep_exp_val_strv_new(0);
	e->lvals = pv.vals ? pv.vals : cep_exp_val_strv_new(0);
	if (e->lkeys == NULL || e->lvals == NULL)
		ok = false;
	return ok;
}

static bool parse_metadata(struct vctx *v, const cep_yaml_node *root,
    cep_exp *e)
{
	static const char *const keys[] = {"name", "labels", NULL};
	const cep_yaml_node *md = cep_yamldoc_get(root, "metadata");
	const char *name = NULL;
	if (md == NULL)
		cep_exp_val_diag(v, root, "",
		    "missing required key 'metadata', expected "
		    "metadata with a name");
	else if (want_map(v, md, "metadata",
	             "a mapping with name and labels")) {
		check_keys(v, md, "metadata", "metadata", keys);
		const cep_yaml_node *nn = cep_yamldoc_get(md, "name");
		if (nn == NULL)
			cep_exp_val_diag(v, md, "metadata",
			    "missing required key 'name', "
			    "expected a name such as web-availability");
		else
			want_name(v, nn, "metadata.name", &name);
	}
	return dup_into(&e->name, name) &&
	    parse_labels(v, cep_yamldoc_get(md, "labels"), e);
}

static bool parse_target(struct vctx *v, const cep_yaml_node *t, cep_exp *e)
{
	static const char *const keys[] = {"kind", "connector", "namespace",
	    NULL};
	static const char *const kinds[] = {"host", "kubernetes", NULL};
	const char *kind = "host", *conn = NULL, *ns = NULL;
	if (t != NULL && cep_yamldoc_kind(t) != CEP_YAML_NULL &&
	    want_map(v, t, "spec.target",
	        "a mapping with kind, connector, "
	        "namespace")) {
		check_keys(v, t, "spec.target", "spec.target", keys);
		const cep_yaml_node *k = cep_yamldoc_get(t, "kind");
		char b[80];
		if (k != NULL &&
		    (kind = cep_exp_val_want_string(v, k, "spec.target.kind",
		         "host or kubernetes")) != NULL &&
		    !cep_yamlget_in_list(kind, kinds)) {
			cep_exp_val_diag(v, k, "spec.target.kind",
			    "unknown target kind "
			    "\"%s\", expected host or kubernetes",
			    cep_exp_val_shown(kind, b, sizeof(b)));
			kind = NULL;
		}
		const cep_yaml_node *c = cep_yamldoc_get(t, "connector");
		const cep_yaml_node *n = cep_yamldoc_get(t, "namespace");
		if (c != NULL)
			want_name(v, c, "spec.target.connector", &conn);
		if (n != NULL && kind != NULL && strcmp(kind, "host") == 0)
			cep_exp_val_diag(v, n, "spec.target.namespace",
			    "a namespace is given "
			    "for a host target, expected no namespace");
		else if (n != NULL)
			want_name(v, n, "spec.target.namespace", &ns);
		bool kube = kind != NULL && strcmp(kind, "kubernetes") == 0;
		if (kube && c == NULL)
			cep_exp_val_diag(v, t, "spec.target",
			    "missing required key "
			    "'connector', expected the connector of the "
			    "cluster");
		if (kube && n == NULL)
			cep_exp_val_diag(v, t, "spec.target",
			    "missing required key "
			    "'namespace', expected the namespace to act in");
	}
	if (kind != NULL && strcmp(kind, "host") == 0 && conn == NULL)
		conn = "local";
	return dup_into(&e->target_kind, kind) &&
	    dup_into(&e->connector, conn) && dup_into(&e->ns, ns);
}

/* Pods chosen by label selector (docs/kubernetes.md, "Pod targets"):
 * exactly one of pod and labelSelector; with labelSelector exactly one of
 * count and percentage, which mean nothing without it. */
static void check_pod_selection(struct vctx *v, const cep_yaml_node *n,
    const char *path, const cep_exp_type_spec *ts, bool kube)
{
	static const char *const how[] = {"count", "percentage", NULL};
	const cep_yaml_node *sel = cep_yamldoc_get(n, "labelSelector");
	const cep_yaml_node *pod = cep_yamldoc_get(n, "pod");
	char p[96];
	bool net = ts->one_of != NULL &&
	    cep_yamlget_in_list("labelSelector", ts->one_of);
	if (sel != NULL && pod != NULL && !net) {
		snprintf(p, sizeof(p), "%s.labelSelector", path);
		cep_exp_val_diag(v, sel, p,
		    "both 'pod' and 'labelSelector' "
		    "given, expected exactly one of pod, labelSelector");
	}
	const cep_yaml_node *first = NULL;
	for (size_t i = 0; how[i] != NULL; i++) {
		const cep_yaml_node *k = cep_yamldoc_get(n, how[i]);
		if (k == NULL)
			continue;
		snprintf(p, sizeof(p), "%s.%s", path, how[i]);
		if (sel == NULL)
			cep_exp_val_diag(v, k, p,
			    "%s is only used with "
			    "labelSelector, expected labelSelector or no %s",
			    how[i], how[i]);
		else if (first != NULL)
			cep_exp_val_diag(v, k, p,
			    "both 'count' and 'percentage' "
			    "given, expected exactly one of count, percentage");
		first = k;
	}
	if (kube && sel != NULL && first == NULL)
		cep_exp_val_diag(v, n, path,
		    "labelSelector given without count "
		    "or percentage, expected exactly one of count, percentage");
}

/* Node-level faults: a kubernetes target acts on a pod (the runner runs
 * on its node), so pod is required there and the host's own resources
 * (pid, netns, cgroup: they would be the node's, picked blind) are
 * refused; a host target has no pods. */
static void check_pod_target(struct vctx *v, const cep_yaml_node *n,
    const cep_exp_type_spec *ts, const char *path, bool kube)
{
	static const char *const host_keys[] = {"pid", "netns", "cgroup", NULL};
	char p[96];
	/* (one_of lists pod for the network types: it says it already) */
	const cep_yaml_node *node = cep_yamldoc_get(n, "node");
	const cep_yaml_node *nsel = cep_yamldoc_get(n, "nodeSelector");
	const char *nkey = node != NULL ? "node" : "nodeSelector";
	if (node == NULL)
		node = nsel;
	if (kube && cep_yamldoc_get(n, "pod") == NULL &&
	    cep_yamldoc_get(n, "labelSelector") == NULL && node == NULL &&
	    (ts->one_of == NULL || !cep_yamlget_in_list("pod", ts->one_of)))
		cep_exp_val_diag(v, n, path,
		    "fault type \"%s\" on a kubernetes "
		    "target acts on a pod: missing 'pod', expected the name of "
		    "a pod in spec.target.namespace (or labelSelector)",
		    ts->type);
	check_pod_selection(v, n, path, ts, kube);
	for (size_t i = 0; kube && host_keys[i] != NULL; i++) {
		const cep_yaml_node *k = cep_yamldoc_get(n, host_keys[i]);
		if (k == NULL)
			continue;
		snprintf(p, sizeof(p), "%s.%s", path, host_keys[i]);
		cep_exp_val_diag(v, k, p,
		    "%s names a host resource, but "
		    "spec.target.kind is kubernetes, expected pod (and "
		    "container)",
		    host_keys[i]);
	}
	/* a hog on a node (the node's own cgroup) or in a pod, not both */
	if (kube && node != NULL &&
	    (cep_yamldoc_get(n, "pod") || cep_yamldoc_get(n, "container") ||
	        cep_yamldoc_get(n, "labelSelector"))) {
		snprintf(p, sizeof(p), "%s.%s", path, nkey);
		cep_exp_val_diag(v, node, p,
		    "%s and pod (or container, labelSelector) both "
		    "given, expected one target: the node's own cgroup, or the "
		    "pod's container",
		    nkey);
	}
	if (kube && nsel != NULL && nsel != node) {
		snprintf(p, sizeof(p), "%s.nodeSelector", path);
		cep_exp_val_diag(v, nsel, p,
		    "both 'node' and 'nodeSelector' given, expected exactly "
		    "one of node, nodeSelector");
	} else if (kube && nsel != NULL && cep_yamldoc_scalar(nsel) != NULL &&
	    !cep_exp_node_labels_ok(cep_yamldoc_scalar(nsel))) {
		snprintf(p, sizeof(p), "%s.nodeSelector", path);
		cep_exp_val_diag(v, nsel, p,
		    "expected labels key=value[,key=value...]: the runner "
		    "is placed by the scheduler's nodeSelector, which matches "
		    "equal labels only");
	}
	/* on kubernetes, a container without pod is the missing pod above */
	static const char *const pod_keys[] = {"pod", "container",
	    "labelSelector", "node", "nodeSelector", NULL};
	for (size_t i = 0; !kube && pod_keys[i] != NULL; i++) {
		const cep_yaml_node *k = cep_yamldoc_get(n, pod_keys[i]);
		if (k == NULL)
			continue;
		snprintf(p, sizeof(p), "%s.%s", path, pod_keys[i]);
		cep_exp_val_diag(v, k, p,
		    "%s is for kubernetes targets, but "
		    "spec.target.kind is host, expected pid, netns or cgroup",
		    pod_keys[i]);
	}
}

/* A type that works on one kind of target only (pod-delete on
 * kubernetes, process-kill on host): refused on the other, at the item's
 * type. Runs after the items, when spec.target is known. */
static void check_item_targets(struct vctx *v, const cep_yaml_node *spec,
    const cep_exp *e)
{
	static const char *const keys[] = {"faults", "probes"};
	if (e->target_kind == NULL || e->target_kind[0] == '\0')
		return;
	for (size_t l = 0; l < 2; l++) {
		const cep_yaml_node *list = cep_yamldoc_get(spec, keys[l]);
		size_t n = l == 0 ? e->nfaults : e->nprobes;
		const cep_exp_item *items = l == 0 ? e->faults : e->probes;
		for (size_t i = 0; i < n; i++) {
			const cep_exp_type_spec *ts = items[i].spec;
			char p[64];
			if (ts != NULL && ts->pod_target) {
				snprintf(p, sizeof(p), "spec.%s[%zu]", keys[l],
				    i);
				check_pod_target(v, cep_yamldoc_at(list, i), ts,
				    p,
				    strcmp(e->target_kind, "kubernetes") == 0);
			}
			if (ts == NULL || ts->target == NULL ||
			    strcmp(ts->target, e->target_kind) == 0)
				continue;
			snprintf(p, sizeof(p), "spec.%s[%zu].type", keys[l], i);
			cep_exp_val_diag(v,
			    cep_yamldoc_get(cep_yamldoc_at(list, i), "type"), p,
			    "%s type \"%s\" acts on %s targets "
			    "only, but spec.target.kind is %s, expected a %s "
			    "type for %s targets",
			    l == 0 ? "fault" : "probe", ts->type, ts->target,
			    e->target_kind, l == 0 ? "fault" : "probe",
			    e->target_kind);
		}
	}
}

static bool parse_spec(struct vctx *v, const cep_yaml_node *root, cep_exp *e)
{
	static const char *const keys[] = {"target", "duration", "deadman",
	    "faults", "probes", NULL};
	const cep_yaml_node *spec = cep_yamldoc_get(root, "spec");
	if (spec == NULL) {
		cep_exp_val_diag(v, root, "",
		    "missing required key 'spec', expected a spec "
		    "with duration, faults and probes");
		return parse_target(v, NULL, e);
	}
	if (!want_map(v, spec, "spec",
	        "a mapping with target, duration, "
	        "deadman, faults, probes"))
		return parse_target(v, NULL, e);
	check_keys(v, spec, "spec", "spec", keys);
	const cep_yaml_node *d = cep_yamldoc_get(spec, "duration");
	if (d == NULL)
		cep_exp_val_diag(v, spec, "spec",
		    "missing required key 'duration', expected "
		    "the length of the chaos phase such as 30s");
	else if (cep_exp_val_want_duration(v, d, "spec.duration", 1,
	             CEP_EXPV_DURATION_MAX, &e->duration_ms))
		v->duration_ms = e->duration_ms;
	e->deadman_ms = 10000;
	const cep_yaml_node *dm = cep_yamldoc_get(spec, "deadman");
	if (dm != NULL)
		cep_exp_val_want_duration(v, dm, "spec.deadman", 1000, 600000,
		    &e->deadman_ms);
	bool ok = parse_target(v, cep_yamldoc_get(spec, "target"), e) &&
	    parse_items(v, cep_yamldoc_get(spec, "faults"), "faults", false,
	        &e->faults, &e->nfaults) &&
	    parse_items(v, cep_yamldoc_get(spec, "probes"), "probes", true,
	        &e->probes, &e->nprobes);
	if (ok)
		check_item_targets(v, spec, e);
	return ok;
}

static void check_const(struct vctx *v, const cep_yaml_node *root,
    const char *key, const char *want)
{
	const cep_yaml_node *n = cep_yamldoc_get(root, key);
	char exp[64], b[80];
	snprintf(exp, sizeof(exp), "%s: %s", key, want);
	if (n == NULL) {
		cep_exp_val_diag(v, root, "",
		    "missing required key '%s', expected %s", key, exp);
		return;
	}
	const char *s = cep_exp_val_want_string(v, n, key, want);
	if (s != NULL && strcmp(s, want) != 0)
		cep_exp_val_diag(v, n, key,
		    "\"%s\" is not supported, expected %s",
		    cep_exp_val_shown(s, b, sizeof(b)), want);
}

static bool validate(struct vctx *v, const cep_yaml_node *root, cep_exp *e)
{
	static const char *const keys[] = {"apiVersion", "kind", "metadata",
	    "spec", NULL};
	if (cep_yamldoc_kind(root) == CEP_YAML_NULL) {
		cep_exp_val_diag(v, root, "",
		    "empty document, expected an Experiment "
		    "(apiVersion: cep.io/v1, kind: Experiment)");
		return true;
	}
	if (!want_map(v, root, "",
	        "an Experiment mapping (apiVersion, kind, "
	        "metadata, spec)"))
		return true;
	check_keys(v, root, "", "the experiment", keys);
	check_const(v, root, "apiVersion", "cep.io/v1");
	check_const(v, root, "kind", "Experiment");
	return parse_metadata(v, root, e) && parse_spec(v, root, e);
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

static void free_items(cep_exp_item *items, size_t n)
{
	for (size_t i = 0; items != NULL && i < n; i++) {
		for (size_t j = 0; j < items[i].np; j++) {
			struct pval *pv = &items[i].pv[j];
			free(pv->s);
			free_strv(pv->keys, pv->n);
			free_strv(pv->vals, pv->n);
		}
		free(items[i].pv);
		free(items[i].name);
		free(items[i].type);
	}
	free(items);
}

void cep_exp_free(cep_exp *e)
{
	if (e == NULL)
		return;
	free_items(e->faults, e->nfaults);
	free_items(e->probes, e->nprobes);
	free_strv(e->lkeys, e->nlabels);
	free_strv(e->lvals, e->nlabels);
	free(e->source);
	free(e->name);
	free(e->target_kind);
	free(e->connector);
	free(e->ns);
	free(e);
}

/* A ChaosEngine is read as the native experiment it converts to
 * (litmus.h); problems in the engine carry the engine's positions, and
 * the rare one found only in the result names the converted text. */
static int parse_engine(const char *yaml, size_t len, const char *fname,
    cep_exp **out, cep_exp_diags *diags, cep_err *err)
{
	char *native = NULL, cname[192];
	int rv = cep_litmus_convert(yaml, len, fname, &native, diags, err);
	if (rv != CEP_OK)
		return rv;
	snprintf(cname, sizeof(cname),
	    "%.128s (as converted by cepctl "
	    "convert)",
	    fname);
	rv = cep_exp_parse(native, strlen(native), cname, out, diags, err);
	free(native);
	return rv;
}

int cep_exp_parse(const char *yaml, size_t len, const char *fname,
    cep_exp **out, cep_exp_diags *diags, cep_err *err)
{
	*out = NULL;
	cep_yaml_doc *doc = NULL;
	int lrv = cep_exp_val_load(yaml, len, fname, &doc, diags, err);
	if (lrv != CEP_OK)
		return lrv;
	if (cep_litmus_is_engine(cep_yamldoc_root(doc))) {
		cep_yamldoc_free(doc);
		return parse_engine(yaml, len, fname, out, diags, err);
	}
	struct vctx v = {.doc = doc, .diags = diags, .err = err};
	cep_exp *e = calloc(1, sizeof(*e));
	bool ok = e != NULL && (e->source = strndup(yaml ? yaml : "", len));
	ok = ok && validate(&v, cep_yamldoc_root(doc), e);
	cep_yamldoc_free(doc);
	if (!ok) {
		cep_exp_free(e);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory while reading the experiment");
	}
	if (v.nerr > 0) {
		cep_exp_val_sort_diags(&v);
		cep_exp_free(e);
		return CEP_INVALID_ARGUMENT;
	}
	*out = e;
	return CEP_OK;
}

/* ---- accessors ---- */

const char *cep_exp_name(const cep_exp *e)
{
	return e->name;
}
const char *cep_exp_source(const cep_exp *e)
{
	return e->source;
}
const char *cep_exp_target_kind(const cep_exp *e)
{
	return e->target_kind;
}
const char *cep_exp_connector(const cep_exp *e)
{
	return e->connector;
}
const char *cep_exp_namespace(const cep_exp *e)
{
	return e->ns;
}
int64_t cep_exp_duration_ms(const cep_exp *e)
{
	return e->duration_ms;
}
int64_t cep_exp_deadman_ms(const cep_exp *e)
{
	return e->deadman_ms;
}
size_t cep_exp_nfaults(const cep_exp *e)
{
	return e->nfaults;
}
size_t cep_exp_nprobes(const cep_exp *e)
{
	return e->nprobes;
}
size_t cep_exp_nlabels(const cep_exp *e)
{
	return e->nlabels;
}

const cep_exp_item *cep_exp_fault(const cep_exp *e, size_t i)
{
	return i < e->nfaults ? &e->faults[i] : NULL;
}

const cep_exp_item *cep_exp_probe(const cep_exp *e, size_t i)
{
	return i < e->nprobes ? &e->probes[i] : NULL;
}

const char *cep_exp_label_key(const cep_exp *e, size_t i)
{
	return i < e->nlabels ? e->lkeys[i] : NULL;
}

const char *cep_exp_label_val(const cep_exp *e, size_t i)
{
	return i < e->nlabels ? e->lvals[i] : NULL;
}

const char *cep_exp_item_name(const cep_exp_item *it)
{
	return it->name;
}
const char *cep_exp_item_type(const cep_exp_item *it)
{
	return it->type;
}
int cep_exp_item_line(const cep_exp_item *it)
{
	return it->line;
}

static const struct pval *get(const cep_exp_item *it, const char *key)
{
	const struct pval *pv = pv_find((cep_exp_item *)it, key);
	return pv != NULL && pv->set ? pv : NULL;
}

bool cep_exp_has(const cep_exp_item *it, const char *key)
{
	return get(it, key) != NULL;
}

const char *cep_exp_str(const cep_exp_item *it, const char *key)
{
	const struct pval *pv = get(it, key);
	return pv ? pv->s : NULL;
}

int64_t cep_exp_int(const cep_exp_item *it, const char *key)
{
	const struct pval *pv = get(it, key);
	if (pv == NULL)
		return 0;
	if (pv->ps->kind == CEP_PARAM_NUMBER)
		return (int64_t)pv->d;
	if (pv->ps->kind == CEP_PARAM_BOOL)
		return pv->b;
	return pv->i;
}

double cep_exp_num(const cep_exp_item *it, const char *key)
{
	const struct pval *pv = get(it, key);
	if (pv == NULL)
		return 0;
	return pv->ps->kind == CEP_PARAM_NUMBER ? pv->d : (double)pv->i;
}

bool cep_exp_bool(const cep_exp_item *it, const char *key)
{
	const struct pval *pv = get(it, key);
	return pv != NULL && pv->ps->kind == CEP_PARAM_BOOL && pv->b;
}

size_t cep_exp_list_len(const cep_exp_item *it, const char *key)
{
	const struct pval *pv = get(it, key);
	return pv != NULL &&
	        (pv->ps->kind == CEP_PARAM_STRLIST ||
	            pv->ps->kind == CEP_PARAM_STRMAP) ?
	    pv->n :
	    0;
}

const char *cep_exp_list_at(const cep_exp_item *it, const char *key, size_t i)
{
	const struct pval *pv = get(it, key);
	if (pv == NULL || pv->ps->kind != CEP_PARAM_STRLIST || i >= pv->n)
		return NULL;
	return pv->keys[i];
}

const char *cep_exp_map_key(const cep_exp_item *it, const char *key, size_t i)
{
	const struct pval *pv = get(it, key);
	if (pv == NULL || pv->ps->kind != CEP_PARAM_STRMAP || i >= pv->n)
		return NULL;
	return pv->keys[i];
}

const char *cep_exp_map_val(const cep_exp_item *it, const char *key, size_t i)
{
	const struct pval *pv = get(it, key);
	if (pv == NULL || pv->ps->kind != CEP_PARAM_STRMAP || i >= pv->n)
		return NULL;
	return pv->vals[i];
}

static const char *const mode_names[] = {"start-of-test", "end-of-test", "edge",
    "continuous", "on-chaos"};

enum cep_probe_mode cep_exp_probe_mode(const cep_exp_item *probe)
{
	const char *m = cep_exp_str(probe, "mode");
	for (size_t i = 0; m != NULL && i < 5; i++) {
		if (strcmp(m, mode_names[i]) == 0)
			return (enum cep_probe_mode)i;
	}
	return CEP_PROBE_SOT;
}

const char *cep_exp_probe_mode_name(enum cep_probe_mode m)
{
	return (unsigned)m < 5 ? mode_names[m] : "unknown";
}
