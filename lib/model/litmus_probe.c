/*
 * litmus_probe.c - Litmus probes (httpProbe, cmdProbe, k8sProbe,
 * promProbe) with their modes and run properties -> cep probes (http,
 * cmd, k8s, prometheus), and Litmus's default application health check as
 * a k8s probe. What a probe asks that cep's cannot check is refused by
 * name.
 */
#define _GNU_SOURCE
#include "litmus_int.h"

#include <stdio.h>
#include <string.h>

struct probe_ctx {
	struct lit_ctx *c;
	struct lit_item *it;
	char path[160];
};

static void pdiag(struct probe_ctx *p, const cep_yaml_node *n, const char *key,
    const char *what)
{
	char path[200];
	snprintf(path, sizeof(path), "%s.%s", p->path, key);
	cep_exp_val_diag(p->c->v, n, path, "%s", what);
}

/* Keys of a mapping not in keys: refused by name. */
static void only_keys(struct probe_ctx *p, const cep_yaml_node *map,
    const char *const *keys)
{
	size_t i = 0;
	const cep_yaml_node *k;
	char b[80], msg[200];
	while ((k = cep_yamlget_unknown(map, keys, &i)) != NULL) {
		snprintf(msg, sizeof(msg),
		    "'%s' is not supported by cep's "
		    "probes: refused rather than ignored (docs/litmus.md)",
		    cep_exp_val_shown(cep_yamldoc_scalar(k), b, sizeof(b)));
		pdiag(p, k, cep_yamldoc_scalar(k), msg);
	}
}

static const char *get(const cep_yaml_node *map, const char *key,
    const cep_yaml_node **n)
{
	*n = cep_yamldoc_get(map, key);
	const char *s = cep_yamldoc_scalar(*n);
	if (*n == NULL)
		*n = map;
	return s != NULL && *s != '\0' ? s : NULL;
}

/* A required input, copied to the cep parameter key. */
static void required(struct probe_ctx *p, const cep_yaml_node *in,
    const char *lkey, const char *key, const char *what)
{
	const cep_yaml_node *n;
	const char *s = get(in, lkey, &n);
	char msg[160];
	if (s != NULL) {
		cep_litmus_set(p->c, p->it, key, "%s", s);
		return;
	}
	snprintf(msg, sizeof(msg), "missing, expected %s", what);
	pdiag(p, n, lkey, msg);
}

/* An input cep honours with one value only (want): anything else is
 * refused with why. */
static void only_value(struct probe_ctx *p, const cep_yaml_node *map,
    const char *key, const char *want, const char *why)
{
	const cep_yaml_node *n;
	const char *s = get(map, key, &n);
	if (s != NULL && strcmp(s, want) != 0)
		pdiag(p, n, key, why);
}

/* A whole number min..max copied to key, with unit ("ms") appended. */
static void whole(struct probe_ctx *p, const cep_yaml_node *map,
    const char *lkey, const char *key, long long min, long long max,
    const char *unit, const char *what)
{
	const cep_yaml_node *n;
	const char *s = get(map, lkey, &n);
	long long x;
	if (s != NULL && cep_litmus_uint(s, max, &x) && x >= min)
		cep_litmus_set(p->c, p->it, key, "%lld%s", x, unit);
	else if (s != NULL)
		pdiag(p, n, lkey, what);
}

/* ---- the four probe kinds ---- */

static void http_method(struct probe_ctx *p, const cep_yaml_node *m)
{
	static const char *const mkeys[] = {"get", "post", NULL};
	static const char *const keys[] = {"criteria", "responseCode", "body",
	    NULL};
	const cep_yaml_node *n, *get_n = cep_yamldoc_get(m, "get");
	const cep_yaml_node *post_n = cep_yamldoc_get(m, "post");
	only_keys(p, m, mkeys);
	const cep_yaml_node *mm = get_n != NULL ? get_n : post_n;
	if (get_n != NULL && post_n != NULL)
		pdiag(p, post_n, "method", "expected one of get, post");
	if (post_n != NULL)
		cep_litmus_set(p->c, p->it, "method", "POST");
	only_keys(p, mm, keys);
	only_value(p, mm, "criteria",
	    "==", "only == is supported (cep expects one status)");
	whole(p, mm, "responseCode", "expectStatus", 100, 599, "",
	    "expected a status 100..599");
	const char *body = get(mm, "body", &n);
	if (body != NULL && post_n != NULL)
		cep_litmus_set(p->c, p->it, "body", "%s", body);
}

static void http_probe(struct probe_ctx *p, const cep_yaml_node *in)
{
	static const char *const keys[] = {"url", "insecureSkipVerify",
	    "responseTimeout", "method", NULL};
	only_keys(p, in, keys);
	required(p, in, "url", "url", "the URL");
	only_value(p, in, "insecureSkipVerify", "false",
	    "not supported: cep's http probe always verifies TLS, expected "
	    "false");
	whole(p, in, "responseTimeout", "latencyBudget", 1, 600000, "ms",
	    "expected milliseconds 1..600000");
	const cep_yaml_node *m = cep_yamldoc_get(in, "method");
	if (m != NULL)
		http_method(p, m);
}

static void cmd_probe(struct probe_ctx *p, const cep_yaml_node *in)
{
	static const char *const keys[] = {"command", "comparator", NULL};
	static const char *const ckeys[] = {"type", "criteria", "value", NULL};
	const cep_yaml_node *n;
	only_keys(p, in, keys);
	const char *cmd = get(in, "command", &n);
	if (cmd == NULL) {
		pdiag(p, n, "command", "missing, expected the command");
	} else { /* Litmus runs the command with a shell */
		cep_litmus_add_item(p->c, p->it, "command", "/bin/sh");
		cep_litmus_add_item(p->c, p->it, "command", "-c");
		cep_litmus_add_item(p->c, p->it, "command", cmd);
	}
	const cep_yaml_node *cmp = cep_yamldoc_get(in, "comparator");
	if (cmp == NULL)
		return;
	only_keys(p, cmp, ckeys);
	const char *type = get(cmp, "type", &n);
	const char *crit = get(cmp, "criteria", &n);
	const char *val = get(cmp, "value", &n);
	if (type == NULL || strcmp(type, "string") != 0 || crit == NULL ||
	    strcmp(crit, "contains") != 0 || val == NULL)
		pdiag(p, cmp, "comparator",
		    "only {type: string, criteria: "
		    "contains, value} is supported (cep matches a substring of "
		    "the output)");
	else
		cep_litmus_set(p->c, p->it, "outputMatch", "%s", val);
}

static void k8s_target(struct probe_ctx *p, const cep_yaml_node *in)
{
	const cep_yaml_node *n;
	const char *ns = get(in, "namespace", &n);
	if (ns != NULL && strcmp(ns, p->c->nat->ns) != 0)
		pdiag(p, n, "namespace",
		    "cep's k8s probe looks in the run's "
		    "namespace (spec.appinfo.appns) only");
	const char *fs = get(in, "fieldSelector", &n);
	if (fs != NULL)
		pdiag(p, n, "fieldSelector",
		    "not supported: cep's k8s probe "
		    "selects by name or label, expected no fieldSelector");
	const char *ls = get(in, "labelSelector", &n);
	const char *names = get(in, "resourceNames", &n);
	if (names != NULL && strchr(names, ',') != NULL)
		pdiag(p, n, "resourceNames", "expected one name");
	else if (names != NULL)
		cep_litmus_set(p->c, p->it, "objectName", "%s", names);
	if (ls != NULL)
		cep_litmus_set(p->c, p->it, "labelSelector", "%s", ls);
	if ((ls == NULL) == (names == NULL))
		pdiag(p, in, "labelSelector",
		    "expected exactly one of "
		    "labelSelector, resourceNames");
}

static void k8s_probe(struct probe_ctx *p, const cep_yaml_node *in)
{
	static const char *const keys[] = {"group", "version", "resource",
	    "namespace", "fieldSelector", "labelSelector", "resourceNames",
	    "operation", NULL};
	static const char *const res[] = {"pods", "deployments", "nodes", NULL};
	static const char *const ops[] = {"present", "absent", NULL};
	const cep_yaml_node *n;
	only_keys(p, in, keys);
	const char *r = get(in, "resource", &n);
	const char *group = get(in, "group", &n);
	if (r == NULL || !cep_yamlget_in_list(r, res))
		pdiag(p, n, "resource", "expected pods, deployments or nodes");
	else
		cep_litmus_set(p->c, p->it, "resource", "%s", r);
	if (r != NULL && group != NULL &&
	    strcmp(group, strcmp(r, "deployments") == 0 ? "apps" : "") != 0)
		pdiag(p, n, "group", "not the group of the resource");
	const char *op = get(in, "operation", &n);
	if (op == NULL || !cep_yamlget_in_list(op, ops))
		pdiag(p, n, "operation",
		    "expected present or absent (cep's "
		    "probe creates and deletes nothing)");
	else
		cep_litmus_set(p->c, p->it, "check", "%s", op);
	k8s_target(p, in);
}

static void prom_probe(struct probe_ctx *p, const cep_yaml_node *in)
{
	static const char *const keys[] = {"endpoint", "query", "comparator",
	    NULL};
	static const char *const ckeys[] = {"type", "criteria", "value", NULL};
	static const char *const crits[] = {">=", "<=", ">", "<", "==", NULL};
	static const char *const cep_keys[] = {"atLeast", "atMost", "above",
	    "below", "equals"};
	const cep_yaml_node *n;
	only_keys(p, in, keys);
	required(p, in, "endpoint", "url", "Prometheus' URL");
	required(p, in, "query", "query",
	    "a PromQL query (queryPath is not supported)");
	const cep_yaml_node *cmp = cep_yamldoc_get(in, "comparator");
	only_keys(p, cmp, ckeys);
	const char *crit = get(cmp, "criteria", &n);
	const char *val = get(cmp, "value", &n);
	for (size_t i = 0; crit != NULL && val != NULL && crits[i]; i++)
		if (strcmp(crits[i], crit) == 0) {
			cep_litmus_set(p->c, p->it, cep_keys[i], "%s", val);
			return;
		}
	pdiag(p, cmp != NULL ? cmp : in, "comparator",
	    "expected criteria "
	    ">=, <=, >, < or == and a value");
}

/* ---- mode and run properties ---- */

static void mode(struct probe_ctx *p, const cep_yaml_node *pr)
{
	static const char *const lit[] = {"SOT", "EOT", "Edge", "Continuous",
	    "OnChaos", NULL};
	static const char *const native[] = {"start-of-test", "end-of-test",
	    "edge", "continuous", "on-chaos"};
	const cep_yaml_node *n;
	const char *m = get(pr, "mode", &n);
	for (size_t i = 0; m != NULL && lit[i] != NULL; i++)
		if (strcmp(lit[i], m) == 0) {
			cep_litmus_set(p->c, p->it, "mode", "%s", native[i]);
			return;
		}
	pdiag(p, n, "mode", "expected SOT, EOT, Edge, Continuous or OnChaos");
}

static void duration_prop(struct probe_ctx *p, const cep_yaml_node *rp,
    const char *lkey, const char *key)
{
	const cep_yaml_node *n;
	const char *s = get(rp, lkey, &n);
	char d[64];
	if (s == NULL)
		return;
	if (cep_litmus_seconds(s, d, sizeof(d)))
		cep_litmus_set(p->c, p->it, key, "%s", d);
	else
		pdiag(p, n, lkey, "expected seconds (5) or a duration (5s)");
}

static void run_props(struct probe_ctx *p, const cep_yaml_node *rp)
{
	static const char *const keys[] = {"probeTimeout", "interval", "retry",
	    "attempt", "probePollingInterval", "initialDelaySeconds",
	    "initialDelay", "stopOnFailure", "verbosity", NULL};
	const cep_yaml_node *n;
	long long x;
	only_keys(p, rp, keys);
	duration_prop(p, rp, "probeTimeout", "timeout");
	duration_prop(p, rp, "probePollingInterval", "interval");
	const char *poll = get(rp, "probePollingInterval", &n);
	const char *iv = get(rp, "interval", &n);
	/* cep has one interval: between tries and between checks */
	if (poll != NULL && iv != NULL && strcmp(poll, iv) != 0)
		pdiag(p, n, "interval",
		    "differs from probePollingInterval: "
		    "cep waits one interval between tries and between checks");
	duration_prop(p, rp, "interval", "interval");
	duration_prop(p, rp, "initialDelaySeconds", "initialDelay");
	duration_prop(p, rp, "initialDelay", "initialDelay");
	const char *retry = get(rp, "retry", &n);
	if (retry != NULL && cep_litmus_uint(retry, 19, &x))
		cep_litmus_set(p->c, p->it, "attempts", "%lld", x + 1);
	else if (retry != NULL)
		pdiag(p, n, "retry", "expected 0..19 retries");
	whole(p, rp, "attempt", "attempts", 1, 20, "",
	    "expected 1..20 attempts");
	const char *stop = get(rp, "stopOnFailure", &n);
	if (stop != NULL && strcmp(stop, "true") != 0 &&
	    strcmp(stop, "false") != 0)
		pdiag(p, n, "stopOnFailure", "expected true or false");
	else if (stop != NULL)
		cep_litmus_set(p->c, p->it, "stopOnFailure", "%s", stop);
}

/* "Check Frontend URL" -> "check-frontend-url": a cep probe name. */
static void probe_name(const char *s, size_t i, char *buf, size_t len)
{
	size_t o = 0;
	for (; s != NULL && *s != '\0' && o + 1 < len && o < 63; s++) {
		char ch = *s >= 'A' && *s <= 'Z' ? (char)(*s + 32) : *s;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
		if (ok || (o > 0 && buf[o - 1] != '-'))
			buf[o++] = ok ? ch : '-';
	}
	while (o > 0 && buf[o - 1] == '-')
		o--;
	buf[o] = '\0';
	if (o == 0)
		snprintf(buf, len, "probe-%zu", i);
}

static const struct {
	const char *type, *inputs, *native;
	void (*read)(struct probe_ctx *, const cep_yaml_node *);
} kinds[] = {
    {"httpProbe", "httpProbe/inputs", "http", http_probe},
    {"cmdProbe", "cmdProbe/inputs", "cmd", cmd_probe},
    {"k8sProbe", "k8sProbe/inputs", "k8s", k8s_probe},
    {"promProbe", "promProbe/inputs", "prometheus", prom_probe},
};

static void one_probe(struct lit_ctx *c, const cep_yaml_node *pr, size_t i,
    const char *path)
{
	static const char *const keys[] = {"name", "type", "mode",
	    "runProperties", "httpProbe/inputs", "cmdProbe/inputs",
	    "k8sProbe/inputs", "promProbe/inputs", NULL};
	struct probe_ctx p = {.c = c};
	snprintf(p.path, sizeof(p.path), "%s[%zu]", path, i);
	const cep_yaml_node *n;
	const char *type = get(pr, "type", &n);
	size_t k = 0;
	while (type != NULL && k < sizeof(kinds) / sizeof(kinds[0]) &&
	    strcmp(kinds[k].type, type) != 0)
		k++;
	if (type == NULL || k == sizeof(kinds) / sizeof(kinds[0])) {
		pdiag(&p, n, "type",
		    "expected httpProbe, cmdProbe, k8sProbe "
		    "or promProbe");
		return;
	}
	char name[64];
	probe_name(get(pr, "name", &n), i, name, sizeof(name));
	for (size_t j = 0; j < c->nat->nprobes; j++)
		if (strcmp(c->nat->probes[j].name, name) == 0)
			snprintf(name, sizeof(name), "probe-%zu", i);
	if ((p.it = cep_litmus_new_probe(c, pr, name, kinds[k].native)) == NULL)
		return;
	only_keys(&p, pr, keys);
	mode(&p, pr);
	const cep_yaml_node *in = cep_yamldoc_get(pr, kinds[k].inputs);
	if (cep_yamldoc_kind(in) != CEP_YAML_MAP)
		pdiag(&p, in ? in : pr, kinds[k].inputs, "expected a mapping");
	else
		kinds[k].read(&p, in);
	run_props(&p, cep_yamldoc_get(pr, "runProperties"));
}

void cep_litmus_probes(struct lit_ctx *c, const cep_yaml_node *list,
    const char *path)
{
	if (list == NULL || cep_yamldoc_kind(list) == CEP_YAML_NULL)
		return;
	if (cep_yamldoc_kind(list) != CEP_YAML_SEQ) {
		cep_exp_val_diag(c->v, list, path,
		    "got %s, expected a list of "
		    "probes",
		    cep_exp_val_kind_word(list));
		return;
	}
	for (size_t i = 0; i < cep_yamldoc_len(list); i++)
		one_probe(c, cep_yamldoc_at(list, i), i, path);
}

/* Litmus checks the application's pods before and after chaos unless
 * DEFAULT_APP_HEALTH_CHECK is false: the same as an edge k8s probe that
 * wants them Running, retried while replacements start. */
void cep_litmus_health_probe(struct lit_ctx *c, const struct lit_item *fault)
{
	const char *pod = NULL;
	for (size_t i = 0; i < fault->np; i++)
		if (strcmp(fault->p[i].key, "pod") == 0)
			pod = fault->p[i].val;
	if (c->applabel == NULL && pod == NULL)
		return; /* no target: the fault itself was refused */
	struct lit_item *it = cep_litmus_new_probe(c, c->appinfo, "app-health",
	    "k8s");
	if (it == NULL)
		return;
	cep_litmus_set(c, it, "mode", "edge");
	cep_litmus_set(c, it, "resource", "pods");
	if (c->applabel != NULL)
		cep_litmus_set(c, it, "labelSelector", "%s", c->applabel);
	else
		cep_litmus_set(c, it, "objectName", "%s", pod);
	cep_litmus_set(c, it, "check", "field");
	cep_litmus_set(c, it, "field", "status.phase");
	cep_litmus_set(c, it, "equals", "Running");
	cep_litmus_set(c, it, "attempts", "20");
	cep_litmus_set(c, it, "interval", "3s");
}
