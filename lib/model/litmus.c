/*
 * litmus.c - a ChaosEngine's frame (metadata, spec, appinfo, the one
 * experiment and its components) read into the native experiment; the
 * experiments' own variables are in litmus_exp.c, probes in
 * litmus_probe.c, the YAML written out in litmus_emit.c.
 *
 * Every key is either mapped, accepted with a documented reason (it only
 * tells Litmus how to run its own pods), or refused by name: a chaos tool
 * that ignores a setting it cannot honour is worse than one that refuses.
 */
#define _GNU_SOURCE
#include "litmus_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

/* The connector is cep's, not Litmus's: an annotation Litmus ignores. */
#define CONNECTOR_ANNOTATION "cep.io/connector"
#define DEFAULT_CONNECTOR "default"

bool cep_litmus_is_engine(const cep_yaml_node *root)
{
	const char *api = cep_yamldoc_scalar(
	    cep_yamldoc_get(root, "apiVersion"));
	const char *kind = cep_yamldoc_scalar(cep_yamldoc_get(root, "kind"));
	return api != NULL && kind != NULL &&
	    strncmp(api, "litmuschaos.io/", 15) == 0 &&
	    strcmp(kind, "ChaosEngine") == 0;
}

/* ---- shared helpers ---- */

bool cep_litmus_uint(const char *s, long long max, long long *out)
{
	long long x = 0;
	if (s == NULL || *s == '\0')
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || x > max)
			return false;
		x = x * 10 + (*p - '0');
	}
	if (x > max)
		return false;
	*out = x;
	return true;
}

/* Litmus 2 writes run properties in seconds (5), Litmus 3 as durations
 * ("5s", "500ms"): both become a cep duration. */
bool cep_litmus_seconds(const char *s, char *buf, size_t len)
{
	long long x;
	if (cep_litmus_uint(s, 366LL * 24 * 3600, &x)) {
		snprintf(buf, len, "%llds", x);
		return true;
	}
	int64_t ms;
	if (s == NULL || !cep_clock_parse_duration_ms(s, &ms))
		return false;
	snprintf(buf, len, "%s", s);
	return true;
}

void cep_litmus_set(struct lit_ctx *c, struct lit_item *it, const char *key,
    const char *fmt, ...)
{
	(void)c;
	struct lit_param *p = NULL;
	for (size_t i = 0; i < it->np; i++)
		if (strcmp(it->p[i].key, key) == 0)
			p = &it->p[i];
	if (p == NULL && it->np < LIT_MAX_PARAMS)
		p = &it->p[it->np++];
	if (p == NULL)
		return; /* the tables never set more than LIT_MAX_PARAMS */
	p->key = key;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->val, sizeof(p->val), fmt, ap);
	va_end(ap);
}

void cep_litmus_add_item(struct lit_ctx *c, struct lit_item *it,
    const char *key, const char *item)
{
	struct lit_param *p = NULL;
	for (size_t i = 0; i < it->np; i++)
		if (strcmp(it->p[i].key, key) == 0)
			p = &it->p[i];
	if (p == NULL && it->np < LIT_MAX_PARAMS) {
		p = &it->p[it->np++];
		p->key = key;
	}
	if (p == NULL || p->n >= LIT_MAX_LIST)
		return; /* callers bound their lists first */
	if ((p->items[p->n] = strdup(item)) == NULL)
		c->failed_alloc = true;
	else
		p->n++;
}

static struct lit_item *new_item(struct lit_ctx *c, const cep_yaml_node *n,
    struct lit_item *arr, size_t *len, size_t cap, const char *name,
    const char *type)
{
	if (*len >= cap) {
		cep_exp_val_diag(c->v, n, "",
		    "more than %zu items, expected "
		    "at most %zu",
		    cap, cap);
		return NULL;
	}
	struct lit_item *it = &arr[(*len)++];
	snprintf(it->name, sizeof(it->name), "%s", name);
	snprintf(it->type, sizeof(it->type), "%s", type);
	return it;
}

struct lit_item *cep_litmus_new_fault(struct lit_ctx *c, const cep_yaml_node *n,
    const char *name, const char *type)
{
	return new_item(c, n, c->nat->faults, &c->nat->nfaults, LIT_MAX_ITEMS,
	    name, type);
}

struct lit_item *cep_litmus_new_probe(struct lit_ctx *c, const cep_yaml_node *n,
    const char *name, const char *type)
{
	return new_item(c, n, c->nat->probes, &c->nat->nprobes,
	    sizeof(c->nat->probes) / sizeof(c->nat->probes[0]), name, type);
}

void cep_litmus_native_free(struct lit_native *nat)
{
	for (size_t i = 0; nat != NULL && i < nat->nfaults + nat->nprobes;
	     i++) {
		struct lit_item *it = i < nat->nfaults ?
		    &nat->faults[i] :
		    &nat->probes[i - nat->nfaults];
		for (size_t j = 0; j < it->np; j++)
			for (size_t k = 0; k < it->p[j].n; k++)
				free(it->p[j].items[k]);
	}
	free(nat);
}

/* ---- the frame ---- */

/* Keys of a mapping: accepted ones pass, refused ones are named with
 * their reason, anything else is unknown. */
struct lit_keys {
	const char *const *mapped;   /* read by this reader */
	const char *const *accepted; /* only for Litmus; documented */
};

void cep_litmus_keys(struct lit_ctx *c, const cep_yaml_node *map,
    const char *path, const char *const *mapped, const char *const *accepted)
{
	char b[80];
	for (size_t i = 0; i < cep_yamldoc_len(map); i++) {
		const cep_yaml_node *key = cep_yamldoc_key_at(map, i);
		const char *s = cep_yamldoc_scalar(key);
		if (s == NULL) { /* found by fuzz_litmus: `? [a]: b` */
			cep_exp_val_diag(c->v, key, path,
			    "a key that is not a scalar, expected a name");
			continue;
		}
		if (cep_yamlget_in_list(s, mapped) ||
		    (accepted && cep_yamlget_in_list(s, accepted)))
			continue;
		cep_exp_val_diag(c->v, key, path,
		    "'%s' is not supported by cep: refused rather than "
		    "ignored (docs/litmus.md)",
		    cep_exp_val_shown(s, b, sizeof(b)));
	}
}

static void check_keys(struct lit_ctx *c, const cep_yaml_node *map,
    const char *path, const struct lit_keys *k)
{
	cep_litmus_keys(c, map, path, k->mapped, k->accepted);
}

static const cep_yaml_node *want_map(struct lit_ctx *c,
    const cep_yaml_node *parent, const char *key, const char *path)
{
	const cep_yaml_node *n = cep_yamldoc_get(parent, key);
	if (n == NULL || cep_yamldoc_kind(n) == CEP_YAML_MAP)
		return n;
	if (cep_yamldoc_kind(n) != CEP_YAML_NULL)
		cep_exp_val_diag(c->v, n, path, "got %s, expected a mapping",
		    cep_exp_val_kind_word(n));
	return NULL;
}

/* A scalar's text, or NULL (absent or empty); a message if not a scalar. */
static const char *scalar(struct lit_ctx *c, const cep_yaml_node *parent,
    const char *key, const char *path)
{
	const cep_yaml_node *n = cep_yamldoc_get(parent, key);
	if (n == NULL || cep_yamldoc_kind(n) == CEP_YAML_NULL)
		return NULL;
	const char *s = cep_exp_val_want_string(c->v, n, path, "a scalar");
	return s != NULL && *s != '\0' ? s : NULL;
}

static void read_metadata(struct lit_ctx *c, const cep_yaml_node *root)
{
	static const char *const mapped[] = {"name", "namespace", "annotations",
	    NULL};
	/* Kubernetes bookkeeping of an object read back from a cluster */
	static const char *const accepted[] = {"labels", "uid",
	    "resourceVersion", "generation", "creationTimestamp",
	    "managedFields", "finalizers", NULL};
	const struct lit_keys keys = {mapped, accepted};
	const cep_yaml_node *md = want_map(c, root, "metadata", "metadata");
	check_keys(c, md, "metadata", &keys);
	const char *name = scalar(c, md, "name", "metadata.name");
	char b[80];
	if (name == NULL) {
		cep_exp_val_diag(c->v, md != NULL ? md : root, "metadata.name",
		    "missing, expected the engine's name (generateName is not "
		    "supported: a run needs its name)");
	} else if (!cep_exp_val_valid_name(name)) {
		cep_exp_val_diag(c->v, cep_yamldoc_get(md, "name"),
		    "metadata.name",
		    "\"%s\" is not a cep experiment name, expected lowercase "
		    "letters, digits and '-', at most 63 characters",
		    cep_exp_val_shown(name, b, sizeof(b)));
	} else {
		snprintf(c->nat->name, sizeof(c->nat->name), "%s", name);
	}
	const char *ns = scalar(c, md, "namespace", "metadata.namespace");
	if (ns != NULL)
		snprintf(c->nat->ns, sizeof(c->nat->ns), "%s", ns);
	const cep_yaml_node *an = want_map(c, md, "annotations",
	    "metadata.annotations");
	const char *conn = scalar(c, an, CONNECTOR_ANNOTATION,
	    "metadata.annotations");
	snprintf(c->nat->connector, sizeof(c->nat->connector), "%s",
	    conn != NULL ? conn : DEFAULT_CONNECTOR);
}

static const char *const appkinds[] = {"deployment", "statefulset", "daemonset",
    "replicaset", "deploymentconfig", "rollout", NULL};

static void read_appinfo(struct lit_ctx *c, const cep_yaml_node *spec)
{
	static const char *const mapped[] = {"appns", "applabel", "appkind",
	    NULL};
	const struct lit_keys keys = {mapped, NULL};
	const cep_yaml_node *ai = want_map(c, spec, "appinfo", "spec.appinfo");
	c->appinfo = ai;
	check_keys(c, ai, "spec.appinfo", &keys);
	c->appns = scalar(c, ai, "appns", "spec.appinfo.appns");
	c->applabel = scalar(c, ai, "applabel", "spec.appinfo.applabel");
	const char *kind = scalar(c, ai, "appkind", "spec.appinfo.appkind");
	char b[80], exp[128];
	if (kind != NULL && !cep_yamlget_in_list(kind, appkinds)) {
		cep_yamlget_join(exp, sizeof(exp), appkinds);
		cep_exp_val_diag(c->v, cep_yamldoc_get(ai, "appkind"),
		    "spec.appinfo.appkind",
		    "\"%s\" is not supported, expected "
		    "one of: %s",
		    cep_exp_val_shown(kind, b, sizeof(b)), exp);
	}
	if (c->appns != NULL)
		snprintf(c->nat->ns, sizeof(c->nat->ns), "%s", c->appns);
	if (c->nat->ns[0] == '\0')
		cep_exp_val_diag(c->v, ai != NULL ? ai : spec, "spec.appinfo",
		    "no namespace, expected spec.appinfo.appns (or "
		    "metadata.namespace): cep acts in one namespace");
}

/* "false" (or false): Litmus spells booleans both ways. */
static bool is_false(const char *s)
{
	return s == NULL || strcmp(s, "false") == 0;
}

static void read_engine_switches(struct lit_ctx *c, const cep_yaml_node *spec)
{
	const char *state = scalar(c, spec, "engineState", "spec.engineState");
	char b[80];
	if (state != NULL && strcmp(state, "stop") == 0)
		cep_exp_val_diag(c->v, cep_yamldoc_get(spec, "engineState"),
		    "spec.engineState",
		    "the engine is stopped: cep runs "
		    "nothing (set engineState: active to run it; abort a "
		    "running run with cepctl abort RUN)");
	else if (state != NULL && strcmp(state, "active") != 0)
		cep_exp_val_diag(c->v, cep_yamldoc_get(spec, "engineState"),
		    "spec.engineState",
		    "\"%s\" is not an engine state, "
		    "expected active or stop",
		    cep_exp_val_shown(state, b, sizeof(b)));
	/* cep does not look for the litmuschaos.io/chaos annotation: a
	 * file that asks for that safety check is refused, not weakened */
	const char *ac = scalar(c, spec, "annotationCheck",
	    "spec.annotationCheck");
	if (!is_false(ac))
		cep_exp_val_diag(c->v, cep_yamldoc_get(spec, "annotationCheck"),
		    "spec.annotationCheck",
		    "\"%s\" is not supported: cep "
		    "does not check the litmuschaos.io/chaos annotation, "
		    "expected \"false\"",
		    cep_exp_val_shown(ac, b, sizeof(b)));
	const cep_yaml_node *aux = cep_yamldoc_get(spec, "auxiliaryAppInfo");
	if (scalar(c, spec, "auxiliaryAppInfo", "spec.auxiliaryAppInfo"))
		cep_exp_val_diag(c->v, aux, "spec.auxiliaryAppInfo",
		    "not supported: cep checks no auxiliary application "
		    "(use a k8s probe), expected it empty");
}

static void read_experiments(struct lit_ctx *c, const cep_yaml_node *spec)
{
	const cep_yaml_node *list = cep_yamldoc_get(spec, "experiments");
	if (cep_yamldoc_kind(list) != CEP_YAML_SEQ ||
	    cep_yamldoc_len(list) == 0) {
		cep_exp_val_diag(c->v, list != NULL ? list : spec,
		    "spec.experiments",
		    "got %s, expected a list of one "
		    "experiment",
		    cep_exp_val_kind_word(list));
		return;
	}
	/* Litmus runs a list one after the other; cep's faults of one run
	 * act together: the difference would be silent, so refuse */
	if (cep_yamldoc_len(list) > 1)
		cep_exp_val_diag(c->v, cep_yamldoc_at(list, 1),
		    "spec.experiments[1]",
		    "cep runs one experiment per "
		    "ChaosEngine (Litmus runs a list in turn, cep's faults "
		    "act together), expected one file per experiment");
	cep_litmus_experiment(c, cep_yamldoc_at(list, 0),
	    "spec.experiments[0]");
}

static void read_spec(struct lit_ctx *c, const cep_yaml_node *root)
{
	static const char *const mapped[] = {"engineState", "appinfo",
	    "experiments", "annotationCheck", "auxiliaryAppInfo",
	    "defaultHealthCheck", NULL};
	/* how Litmus runs and cleans up its own pods and metrics */
	static const char *const accepted[] = {"chaosServiceAccount",
	    "jobCleanUpPolicy", "monitoring", "components",
	    "terminationGracePeriodSeconds", NULL};
	const struct lit_keys keys = {mapped, accepted};
	const cep_yaml_node *spec = want_map(c, root, "spec", "spec");
	if (spec == NULL) {
		cep_exp_val_diag(c->v, root, "spec",
		    "missing, expected the engine's spec");
		return;
	}
	check_keys(c, spec, "spec", &keys);
	read_engine_switches(c, spec);
	read_appinfo(c, spec);
	const char *hc = scalar(c, spec, "defaultHealthCheck",
	    "spec.defaultHealthCheck");
	c->health_default = hc == NULL || strcmp(hc, "false") != 0;
	read_experiments(c, spec);
}

static void read_engine(struct lit_ctx *c, const cep_yaml_node *root)
{
	static const char *const mapped[] = {"apiVersion", "kind", "metadata",
	    "spec", NULL};
	/* what a cluster reports back; never an input */
	static const char *const accepted[] = {"status", NULL};
	const struct lit_keys keys = {mapped, accepted};
	check_keys(c, root, "", &keys);
	const char *api = scalar(c, root, "apiVersion", "apiVersion");
	if (api != NULL && strcmp(api, "litmuschaos.io/v1alpha1") != 0)
		cep_exp_val_diag(c->v, cep_yamldoc_get(root, "apiVersion"),
		    "apiVersion",
		    "\"%.64s\" is not supported, expected "
		    "litmuschaos.io/v1alpha1",
		    api);
	read_metadata(c, root);
	read_spec(c, root);
}

int cep_litmus_convert(const char *yaml, size_t len, const char *fname,
    char **native, cep_exp_diags *diags, cep_err *err)
{
	*native = NULL;
	cep_yaml_doc *doc = NULL;
	int lrv = cep_exp_val_load(yaml, len, fname, &doc, diags, err);
	if (lrv != CEP_OK)
		return lrv;
	const cep_yaml_node *root = cep_yamldoc_root(doc);
	struct vctx v = {.doc = doc, .diags = diags, .err = err};
	struct lit_ctx c = {.v = &v, .nat = calloc(1, sizeof(*c.nat))};
	int rv = CEP_OK;
	if (c.nat == NULL) {
		rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory while reading the ChaosEngine");
	} else if (!cep_litmus_is_engine(root)) {
		rv = cep_yamldoc_error(err, doc, root,
		    "not a ChaosEngine, "
		    "expected apiVersion: litmuschaos.io/v1alpha1 and kind: "
		    "ChaosEngine");
		if (diags != NULL) {
			memcpy(diags->msgs[0], err->msg, sizeof(err->msg));
			diags->n = 1;
		}
	} else {
		read_engine(&c, root);
		if (c.failed_alloc)
			rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
			    "out of memory while reading the ChaosEngine");
		else if (v.nerr > 0)
			rv = CEP_INVALID_ARGUMENT;
		else
			rv = cep_litmus_emit(c.nat, native, err);
	}
	if (rv == CEP_INVALID_ARGUMENT)
		cep_exp_val_sort_diags(&v);
	cep_litmus_native_free(c.nat);
	cep_yamldoc_free(doc);
	return rv;
}
