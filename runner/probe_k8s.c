/*
 * probe_k8s.c - `k8s` probe: an object of the run's namespace (or a node)
 * by `name` or `labelSelector`, checked for `present`, `absent` or a
 * `field`'s value: `equals` compares the value as text (integers as
 * integers, true/false), `atLeast` as a number. With a selector every
 * matching object must pass, and at least one must match. Kubernetes
 * leaves zero values out (a Deployment with no ready pod has no
 * status.readyReplicas), so an absent field reads as 0 for atLeast and
 * matches equals "0", "false" or "".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_target.h"
#include "params.h"
#include "probe.h"
#include "clock.h"

#define PATH_DEPTH 16

/* One segment of a dotted path; a number also indexes a list. */
static json_t *step(json_t *v, const char *seg, size_t len)
{
	char key[128];
	if (len == 0 || len >= sizeof(key))
		return NULL;
	memcpy(key, seg, len);
	key[len] = '\0';
	if (json_is_object(v))
		return json_object_get(v, key);
	if (json_is_array(v)) {
		char *end;
		errno = 0;
		long i = strtol(key, &end, 10);
		if (errno == 0 && *end == '\0' && i >= 0)
			return json_array_get(v, (size_t)i);
	}
	return NULL;
}

static json_t *walk(json_t *obj, const char *path)
{
	const char *p = path[0] == '.' ? path + 1 : path;
	json_t *v = obj;
	for (int d = 0; v != NULL && *p != '\0' && d < PATH_DEPTH; d++) {
		size_t n = strcspn(p, ".");
		v = step(v, p, n);
		p += n + (p[n] == '.');
	}
	return *p == '\0' ? v : NULL;
}

/* The value as text: strings as they are, integers (and integral reals)
 * as integers, booleans true/false; "" for absent or null. */
static void as_text(json_t *v, char *buf, size_t len)
{
	if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v) &&
	    json_real_value(v) == (double)(long long)json_real_value(v))
		snprintf(buf, len, "%lld", (long long)json_real_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
	else if (v == NULL || json_is_null(v))
		buf[0] = '\0';
	else
		snprintf(buf, len, "(%s)",
		    json_is_object(v) ? "an object" : "a list");
}

/* One object against field + equals/atLeast; detail says what was seen. */
static bool judge_field(const cep_exp_item *it, json_t *obj, char *detail,
    size_t dlen)
{
	const char *field = runner_param_str(it, "field", NULL);
	const char *eq = runner_param_str(it, "equals", NULL);
	bool has_min = cep_exp_has(it, "atLeast");
	if (field == NULL || (eq == NULL) == !has_min) {
		snprintf(detail, dlen,
		    "check field needs field and one of "
		    "equals, atLeast");
		return false;
	}
	json_t *v = walk(obj, field);
	char seen[96];
	as_text(v, seen, sizeof(seen));
	bool absent = v == NULL || json_is_null(v);
	if (eq != NULL) {
		bool ok = strcmp(seen, eq) == 0 ||
		    (absent &&
		        (strcmp(eq, "0") == 0 || strcmp(eq, "false") == 0));
		snprintf(detail, dlen, "%.64s=%s, want %.64s", field,
		    absent ? "(absent)" : seen, eq);
		return ok;
	}
	int64_t min = runner_param_int(it, "atLeast", 0);
	double num = absent   ? 0 :
	    json_is_number(v) ? json_number_value(v) :
	                        -1e300;
	if (!absent && !json_is_number(v)) {
		snprintf(detail, dlen, "%.64s=%s is not a number, want >= %lld",
		    field, seen, (long long)min);
		return false;
	}
	snprintf(detail, dlen, "%.64s=%s, want >= %lld", field,
	    absent ? "0 (absent)" : seen, (long long)min);
	return num >= (double)min;
}

/* The objects looked at: one by name (NULL when 404) or a list. */
static int fetch(const cep_exp_item *it, const cep_kube_res *r, cep_kube *k,
    const char *ns, json_t **items, cep_err *err)
{
	const char *name = runner_param_str(it, "objectName", NULL);
	const char *sel = runner_param_str(it, "labelSelector", NULL);
	const char *in = r->namespaced ? ns : NULL;
	*items = json_array();
	if (name != NULL) {
		json_t *obj = NULL;
		if (!runner_kube_target_name_ok(name))
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "objectName "
			    "\"%.64s\" is not an object name",
			    name);
		int rc = cep_kube_get(k, r, in, name, &obj, err);
		if (rc == CEP_OK)
			json_array_append_new(*items, obj);
		return rc == CEP_NOT_FOUND ? CEP_OK : rc;
	}
	json_decref(*items);
	*items = NULL;
	cep_kube_list_opts o = {.label_selector = sel};
	return cep_kube_list(k, r, in, &o, items, NULL, 0, err);
}

static const char *obj_name(json_t *obj)
{
	const char *n = json_string_value(
	    json_object_get(json_object_get(obj, "metadata"), "name"));
	return n != NULL ? n : "?";
}

static bool judge(const cep_exp_item *it, const cep_kube_res *r, json_t *items,
    char *detail, size_t dlen)
{
	const char *check = runner_param_str(it, "check", "present");
	const char *name = runner_param_str(it, "objectName", NULL);
	const char *what = name != NULL ?
	    name :
	    runner_param_str(it, "labelSelector", "");
	size_t n = json_array_size(items);
	if (strcmp(check, "present") == 0 || strcmp(check, "absent") == 0) {
		bool want = strcmp(check, "present") == 0;
		if (name != NULL)
			snprintf(detail, dlen, "%s %.128s %s", r->plural, what,
			    n > 0 ? "present" : "absent");
		else
			snprintf(detail, dlen, "%zu %s match %.128s", n,
			    r->plural, what);
		return (n > 0) == want;
	}
	if (n == 0) {
		snprintf(detail, dlen, "no %s %.128s", r->plural, what);
		return false;
	}
	char one[CEP_PROBE_DETAIL_MAX];
	for (size_t i = 0; i < n; i++) {
		json_t *obj = json_array_get(items, i);
		if (!judge_field(it, obj, one, sizeof(one))) {
			if (name != NULL)
				snprintf(detail, dlen, "%s", one);
			else
				snprintf(detail, dlen, "%s %.64s: %s",
				    r->plural, obj_name(obj), one);
			return false;
		}
	}
	if (n == 1)
		snprintf(detail, dlen, "%s", one);
	else
		snprintf(detail, dlen, "%zu %s: %s", n, r->plural, one);
	return true;
}

static bool k8s_try(const cep_exp_item *it, const cep_probe_env *env,
    char *detail, size_t dlen, uint32_t *latency_ms)
{
	(void)env;
	int64_t t0 = cep_clock_mono_ms();
	const cep_kube_res *r = cep_kube_res_find(
	    runner_param_str(it, "resource", ""));
	cep_kube *k;
	char ns[254];
	cep_err err = {0};
	json_t *items = NULL;
	bool ok = false;
	if (r == NULL)
		snprintf(detail, dlen, "unknown resource \"%.32s\"",
		    runner_param_str(it, "resource", ""));
	else if (runner_kube_target_get(&k, ns, sizeof(ns), &err) != CEP_OK ||
	    fetch(it, r, k, ns, &items, &err) != CEP_OK)
		snprintf(detail, dlen, "%.200s", err.msg);
	else
		ok = judge(it, r, items, detail, dlen);
	json_decref(items);
	*latency_ms = (uint32_t)(cep_clock_mono_ms() - t0);
	return ok;
}

const cep_probe_ops runner_probe_k8s = {
    .type = "k8s",
    .try_once = k8s_try,
};
