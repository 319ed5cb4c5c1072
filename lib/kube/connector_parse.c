/*
 * connector_parse.c - the grammar of connectors.d/NAME.yaml: every key known,
 * every value checked (names, quantities, tolerations, labels), errors as
 * file:line:col in the style of config.c. connector.c owns the objects,
 * the folder and the namespace rule; docs/connectors.md is the reference.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"
#include "connector_int.h"
#include "err.h"
#include "yamldoc.h"
#include "yamlget.h"

#define MAX_MAP_ENTRIES 64

/* ---- checks on names and values ---- */

static bool is_alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* RFC 1123 label: namespaces, connector names. */
bool cep_connector_dns_label(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || !is_alnum_lower(s[0]) ||
	    !is_alnum_lower(s[n - 1]))
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* RFC 1123 subdomain: object names (service accounts, pull secrets). */
static bool dns_subdomain(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return false;
	if (strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-.") != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool edge = i == 0 || i == n - 1 || s[i - 1] == '.' ||
		    s[i + 1] == '.';
		if (edge && !is_alnum_lower(s[i]))
			return false;
	}
	return true;
}

/* A label value or the name part of a key: [A-Za-z0-9] at the ends,
 * [-_.A-Za-z0-9] inside, max 63; values may be empty. */
static bool label_name(const char *s, size_t n, bool empty_ok)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
	                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.";
	if (n == 0)
		return empty_ok;
	if (n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9');
		if (strchr(ok, c) == NULL || c == '\0' ||
		    ((i == 0 || i == n - 1) && !alnum))
			return false;
	}
	return true;
}

/* A qualified name (label and annotation keys): [prefix/]name. */
static bool qualified_name(const char *s)
{
	const char *slash = strchr(s, '/');
	if (slash == NULL)
		return label_name(s, strlen(s), false);
	char prefix[254];
	size_t pl = (size_t)(slash - s);
	if (pl == 0 || pl >= sizeof(prefix))
		return false;
	memcpy(prefix, s, pl);
	prefix[pl] = '\0';
	return dns_subdomain(prefix) &&
	    label_name(slash + 1, strlen(slash + 1), false);
}

static bool label_value(const char *s)
{
	return label_name(s, strlen(s), true);
}

static bool printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* No spaces either: URLs, contexts, image references. */
static bool token(const char *s)
{
	if (s[0] == '\0')
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return false;
	return true;
}

static bool ns_glob(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63)
		return false;
	if (strpbrk(s, "*?[") == NULL)
		return cep_connector_dns_label(s);
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-*?[]!") == n;
}

static bool tls_url(const char *s)
{
	static const char scheme[] = "tls+tcp://";
	if (strncmp(s, scheme, sizeof(scheme) - 1) != 0 || !token(s))
		return false;
	const char *hp = s + sizeof(scheme) - 1;
	const char *colon = strrchr(hp, ':');
	if (colon == NULL || colon == hp)
		return false;
	char *end = NULL;
	long port = strtol(colon + 1, &end, 10);
	return end != colon + 1 && *end == '\0' && port >= 1 && port <= 65535;
}

/*
 * A Kubernetes quantity as used for requests and limits: a decimal number
 * and an SI or binary suffix (50m, 0.5, 128Mi, 1G). *val is in base units
 * (cores, bytes) so that a request can be compared with its limit.
 * Memory in milli-units ("128m" = 0.128 bytes) is legal for the API server
 * and always a typo for 128Mi, so memory refuses it.
 */
static bool quantity(const char *s, bool memory, long double *val)
{
	static const struct {
		const char *sfx;
		long double mul;
	} sfx[] = {
	    {"Ki", 1024.0L},
	    {"Mi", 1048576.0L},
	    {"Gi", 1073741824.0L},
	    {"Ti", 1099511627776.0L},
	    {"Pi", 1125899906842624.0L},
	    {"Ei", 1152921504606846976.0L},
	    {"n", 1e-9L},
	    {"u", 1e-6L},
	    {"m", 1e-3L},
	    {"", 1.0L},
	    {"k", 1e3L},
	    {"M", 1e6L},
	    {"G", 1e9L},
	    {"T", 1e12L},
	    {"P", 1e15L},
	    {"E", 1e18L},
	};
	size_t digits = strspn(s, "0123456789"), frac = 0;
	const char *p = s + digits;
	if (*p == '.') {
		frac = strspn(p + 1, "0123456789");
		p += 1 + frac;
	}
	if (digits + frac == 0 || digits > 18 || frac > 9)
		return false;
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		if (strcmp(p, sfx[i].sfx) != 0)
			continue;
		if (memory && sfx[i].mul < 1.0L)
			return false;
		char num[32];
		snprintf(num, sizeof(num), "%.*s", (int)(p - s), s);
		*val = strtold(num, NULL) * sfx[i].mul;
		return *val > 0.0L;
	}
	return false;
}

/* ---- lists and maps (scalars: lib/base/yamlget.h) ---- */

/* A list of names checked by ok (at most 63 bytes when into rows); into
 * a JSON array of {"name": x} (as imagePullSecrets wants) or into rows. */
static int get_names(cep_yamlget *l, const cep_yaml_node *map, const char *key,
    bool (*ok)(const char *), const char *expected, json_t *arr,
    char (*rows)[64], size_t max, size_t *n)
{
	const struct cep_yamlget_list spec = {max, ok, "bad entry", expected};
	const cep_yaml_node *list;
	int rv = cep_yamlget_strings(l, map, key, &spec, &list);
	if (rv != CEP_OK || list == NULL)
		return rv;
	for (size_t i = 0; i < cep_yamldoc_len(list); i++) {
		const cep_yaml_node *it = cep_yamldoc_at(list, i);
		const char *s = cep_yamldoc_scalar(it);
		if (rows != NULL && strlen(s) >= 64)
			return cep_yamlget_bad(l, it, key, "bad entry",
			    expected);
		if (rows != NULL)
			snprintf(rows[i], 64, "%s", s);
		if (arr != NULL)
			json_array_append_new(arr,
			    json_pack("{s:s}", "name", s));
	}
	if (n != NULL)
		*n = cep_yamldoc_len(list);
	return CEP_OK;
}

/* A string map (labels, annotations, nodeSelector) into a JSON object.
 * reserved: keys cep sets itself, which a connector must not override. */
static int get_map(cep_yamlget *l, const cep_yaml_node *map, const char *key,
    bool (*val_ok)(const char *), const char *expected, bool reserved,
    json_t *obj)
{
	const cep_yaml_node *m = cep_yamldoc_get(map, key);
	if (m == NULL || cep_yamldoc_kind(m) == CEP_YAML_NULL)
		return CEP_OK;
	if (cep_yamldoc_kind(m) != CEP_YAML_MAP ||
	    cep_yamldoc_len(m) > MAX_MAP_ENTRIES)
		return cep_yamlget_bad(l, m, key, "not a mapping or too long",
		    expected);
	for (size_t i = 0; i < cep_yamldoc_len(m); i++) {
		const cep_yaml_node *k = cep_yamldoc_key_at(m, i);
		const cep_yaml_node *v = cep_yamldoc_value_at(m, i);
		const char *ks = cep_yamldoc_scalar(k),
		           *vs = cep_yamldoc_scalar(v);
		if (cep_yamldoc_kind(v) == CEP_YAML_NULL)
			vs = "";
		if (!qualified_name(ks))
			return cep_yamlget_bad(l, k, key, "bad key", expected);
		if (reserved &&
		    (strcmp(ks, "app.kubernetes.io/managed-by") == 0 ||
		        strncmp(ks, "cep.io/", 7) == 0))
			return cep_yamlget_bad(l, k, key,
			    "key reserved for cep",
			    "a key other than "
			    "app.kubernetes.io/managed-by and cep.io/*");
		if (vs == NULL || !val_ok(vs))
			return cep_yamlget_bad(l, v, key, "bad value",
			    expected);
		json_object_set_new(obj, ks, json_string(vs));
	}
	return CEP_OK;
}

/* ---- sections ---- */

static bool annotation_value(const char *s)
{
	return strlen(s) <= 4096;
}

static int toleration_seconds(cep_yamlget *l, const cep_yaml_node *t,
    const char *effect, json_t *j)
{
	const cep_yaml_node *sn = cep_yamldoc_get(t, "tolerationSeconds");
	if (sn == NULL)
		return CEP_OK;
	const char *ss = cep_yamldoc_scalar(sn);
	char *end = NULL;
	errno = 0;
	long long secs = ss != NULL && !cep_yamldoc_quoted(sn) &&
	        ss[0] != '\0' ?
	    strtoll(ss, &end, 10) :
	    -1;
	if (end == NULL || *end != '\0' || errno != 0 || secs < 0 ||
	    secs > 31536000 || strcmp(effect, "NoExecute") != 0)
		return cep_yamlget_bad(l, sn, "tolerationSeconds", "not valid",
		    "seconds 0..31536000, and only with effect NoExecute");
	json_object_set_new(j, "tolerationSeconds", json_integer(secs));
	return CEP_OK;
}

static int load_toleration(cep_yamlget *l, const cep_yaml_node *t, json_t *out)
{
	static const char *const keys[] = {"key", "operator", "value", "effect",
	    "tolerationSeconds", NULL};
	static const char *const ops[] = {"Equal", "Exists", NULL};
	static const char *const effects[] = {"NoSchedule", "PreferNoSchedule",
	    "NoExecute", NULL};
	if (cep_yamldoc_kind(t) != CEP_YAML_MAP)
		return cep_yamlget_bad(l, t, "tolerations",
		    "entry is not a mapping",
		    "{key, operator, value, effect, tolerationSeconds}");
	char k[320] = "", op[16] = "Equal", v[64] = "", eff[32] = "";
	int rv = cep_yamlget_keys(l, t, keys);
	if (rv == CEP_OK)
		rv = cep_yamlget_string(l, t, "key", qualified_name,
		    "a label key", k, sizeof(k));
	if (rv == CEP_OK)
		rv = cep_yamlget_enum(l, t, "operator", ops, "Equal or Exists",
		    op, sizeof(op));
	if (rv == CEP_OK)
		rv = cep_yamlget_string(l, t, "value", label_value,
		    "a label value", v, sizeof(v));
	if (rv == CEP_OK)
		rv = cep_yamlget_enum(l, t, "effect", effects,
		    "NoSchedule, "
		    "PreferNoSchedule or NoExecute",
		    eff, sizeof(eff));
	if (rv != CEP_OK)
		return rv;
	if (strcmp(op, "Exists") == 0 && v[0] != '\0')
		return cep_yamlget_bad(l, cep_yamldoc_get(t, "value"), "value",
		    "set with operator Exists",
		    "no value when operator is Exists");
	if (strcmp(op, "Equal") == 0 && k[0] == '\0')
		return cep_yamlget_bad(l, t, "key", "missing",
		    "a key when operator is Equal");
	json_t *j = json_object();
	if (k[0] != '\0')
		json_object_set_new(j, "key", json_string(k));
	json_object_set_new(j, "operator", json_string(op));
	if (v[0] != '\0')
		json_object_set_new(j, "value", json_string(v));
	if (eff[0] != '\0')
		json_object_set_new(j, "effect", json_string(eff));
	if ((rv = toleration_seconds(l, t, eff, j)) != CEP_OK) {
		json_decref(j);
		return rv;
	}
	json_array_append_new(out, j);
	return CEP_OK;
}

static int load_tolerations(cep_yamlget *l, const cep_yaml_node *map,
    json_t *out)
{
	const cep_yaml_node *list = cep_yamldoc_get(map, "tolerations");
	if (list == NULL || cep_yamldoc_kind(list) == CEP_YAML_NULL)
		return CEP_OK;
	if (cep_yamldoc_kind(list) != CEP_YAML_SEQ ||
	    cep_yamldoc_len(list) > MAX_MAP_ENTRIES)
		return cep_yamlget_bad(l, list, "tolerations",
		    "not a list or too long",
		    "a list of at most 64 tolerations");
	int rv = CEP_OK;
	cep_yamlget_set_path(l, "runner.tolerations");
	for (size_t i = 0; i < cep_yamldoc_len(list) && rv == CEP_OK; i++)
		rv = load_toleration(l, cep_yamldoc_at(list, i), out);
	cep_yamlget_set_path(l, "runner");
	return rv;
}

/* One quantity key; *val stays 0 when absent. */
static int get_quantity(cep_yamlget *l, const cep_yaml_node *map,
    const char *key, bool memory, char *dst, size_t dlen, long double *val)
{
	const cep_yaml_node *n = cep_yamldoc_get(map, key);
	const char *exp = memory ? "a memory quantity such as 128Mi or 1Gi" :
	                           "a CPU quantity such as 50m or 0.5";
	if (n == NULL)
		return quantity(dst, memory, val) ? CEP_OK : CEP_INTERNAL;
	const char *s = cep_yamldoc_scalar(n);
	if (s == NULL || strlen(s) >= dlen || !quantity(s, memory, val))
		return cep_yamlget_bad(l, n, key, "not a quantity", exp);
	snprintf(dst, dlen, "%s", s);
	return CEP_OK;
}

static int load_resources(cep_yamlget *l, const cep_yaml_node *runner,
    cep_connector *c)
{
	static const char *const keys[] = {"cpuRequest", "cpuLimit",
	    "memoryRequest", "memoryLimit", NULL};
	const cep_yaml_node *r;
	int rv = cep_yamlget_section(l, runner, "resources", keys, &r);
	if (rv != CEP_OK || r == NULL)
		return rv;
	long double cr = 0, cl = 0, mr = 0, ml = 0;
	if ((rv = get_quantity(l, r, "cpuRequest", false, c->cpu_request,
	         sizeof(c->cpu_request), &cr)) != CEP_OK ||
	    (rv = get_quantity(l, r, "cpuLimit", false, c->cpu_limit,
	         sizeof(c->cpu_limit), &cl)) != CEP_OK ||
	    (rv = get_quantity(l, r, "memoryRequest", true, c->mem_request,
	         sizeof(c->mem_request), &mr)) != CEP_OK ||
	    (rv = get_quantity(l, r, "memoryLimit", true, c->mem_limit,
	         sizeof(c->mem_limit), &ml)) != CEP_OK)
		return rv;
	/* the API server refuses a request above its limit: say so here */
	if (cr > cl)
		return cep_yamlget_bad(l, r, "cpuRequest", "above cpuLimit",
		    "a request no larger than the limit");
	if (mr > ml)
		return cep_yamlget_bad(l, r, "memoryRequest",
		    "above memoryLimit", "a request no larger than the limit");
	return CEP_OK;
}

static int load_proxy(cep_yamlget *l, const cep_yaml_node *runner,
    cep_connector *c)
{
	static const char *const keys[] = {"httpProxy", "httpsProxy", "noProxy",
	    NULL};
	static const char url[] = "a proxy URL such as http://proxy:3128";
	const cep_yaml_node *p;
	int rv = cep_yamlget_section(l, runner, "proxy", keys, &p);
	if (rv != CEP_OK || p == NULL)
		return rv;
	if ((rv = cep_yamlget_string(l, p, "httpProxy", token, url,
	         c->http_proxy, sizeof(c->http_proxy))) != CEP_OK ||
	    (rv = cep_yamlget_string(l, p, "httpsProxy", token, url,
	         c->https_proxy, sizeof(c->https_proxy))) != CEP_OK)
		return rv;
	return cep_yamlget_string(l, p, "noProxy", token,
	    "a comma-separated list of hosts and domains", c->no_proxy,
	    sizeof(c->no_proxy));
}

static int load_runner_strings(cep_yamlget *l, const cep_yaml_node *r,
    cep_connector *c)
{
	static const char *const policies[] = {"Always", "IfNotPresent",
	    "Never", NULL};
	int rv;
	if ((rv = cep_yamlget_string(l, r, "serviceAccount", dns_subdomain,
	         "a service account name ([a-z0-9.-], at most 63 bytes)",
	         c->service_account, sizeof(c->service_account))) != CEP_OK ||
	    (rv = cep_yamlget_string(l, r, "image", token,
	         "an image reference such as registry.example.com/cep/runner:1.0",
	         c->image, sizeof(c->image))) != CEP_OK ||
	    (rv = cep_yamlget_enum(l, r, "imagePullPolicy", policies,
	         "Always, IfNotPresent or Never", c->pull_policy,
	         sizeof(c->pull_policy))) != CEP_OK ||
	    (rv = cep_yamlget_string(l, r, "relay", tls_url,
	         "a URL such as "
	         "tls+tcp://10.0.0.5:7443",
	         c->relay, sizeof(c->relay))) != CEP_OK)
		return rv;
	return cep_yamlget_string(l, r, "serverName", dns_subdomain,
	    "a DNS name in the relay's certificate", c->server_name,
	    sizeof(c->server_name));
}

static int load_runner(cep_yamlget *l, const cep_yaml_node *root,
    cep_connector *c)
{
	static const char *const keys[] = {"serviceAccount", "image",
	    "imagePullPolicy", "imagePullSecrets", "relay", "serverName",
	    "resources", "nodeSelector", "tolerations", "labels", "annotations",
	    "proxy", NULL};
	static const char lbl[] = "a mapping of label keys to label values";
	const cep_yaml_node *r;
	int rv = cep_yamlget_section(l, root, "runner", keys, &r);
	if (rv == CEP_OK && (r == NULL || cep_yamldoc_get(r, "image") == NULL))
		return cep_yamldoc_error(l->err, l->doc,
		    r ? r : cep_yamldoc_root(l->doc),
		    "runner.image: missing, expected the runner's container "
		    "image such as registry.example.com/cep/runner:1.0");
	if (rv != CEP_OK || (rv = load_runner_strings(l, r, c)) != CEP_OK ||
	    (rv = get_names(l, r, "imagePullSecrets", dns_subdomain,
	         "a list of Secret names", c->pull_secrets, NULL,
	         MAX_MAP_ENTRIES, NULL)) != CEP_OK ||
	    (rv = get_map(l, r, "nodeSelector", label_value, lbl, false,
	         c->node_selector)) != CEP_OK ||
	    (rv = load_tolerations(l, r, c->tolerations)) != CEP_OK ||
	    (rv = get_map(l, r, "labels", label_value, lbl, true, c->labels)) !=
	        CEP_OK ||
	    (rv = get_map(l, r, "annotations", annotation_value,
	         "a mapping "
	         "of annotation keys to strings",
	         true, c->annotations)) != CEP_OK)
		return rv;
	cep_yamlget_set_path(l, "runner");
	if ((rv = load_resources(l, r, c)) != CEP_OK)
		return rv;
	cep_yamlget_set_path(l, "runner");
	return load_proxy(l, r, c);
}

static int load_timeouts(cep_yamlget *l, const cep_yaml_node *root,
    cep_connector *c)
{
	static const char *const keys[] = {"request", "launch", NULL};
	const cep_yaml_node *t;
	int rv = cep_yamlget_section(l, root, "timeouts", keys, &t);
	if (rv != CEP_OK || t == NULL)
		return rv;
	rv = cep_yamlget_duration(l, t, "request", 1000, 5 * 60000,
	    &c->request_timeout_ms);
	if (rv == CEP_OK)
		rv = cep_yamlget_duration(l, t, "launch", 1000, 3600000,
		    &c->launch_timeout_ms);
	return rv;
}

/* kubeconfig: absolute, or relative to the connectors.d folder. */
static int load_kubeconfig(cep_yamlget *l, const cep_yaml_node *root,
    const char *dir, cep_connector *c)
{
	const cep_yaml_node *n = cep_yamldoc_get(root, "kubeconfig");
	static const char exp[] = "the path of a kubeconfig file (relative "
	                          "paths are relative to connectors.d)";
	if (n == NULL)
		return cep_yamldoc_error(l->err, l->doc,
		    cep_yamldoc_root(l->doc),
		    "kubeconfig: missing, expected %s", exp);
	const char *s = cep_yamldoc_scalar(n);
	if (s == NULL || s[0] == '\0' || !printable(s))
		return cep_yamlget_bad(l, n, "kubeconfig", "not valid", exp);
	int w = s[0] == '/' ?
	    snprintf(c->kubeconfig, sizeof(c->kubeconfig), "%s", s) :
	    snprintf(c->kubeconfig, sizeof(c->kubeconfig), "%s/%s", dir, s);
	if (w < 0 || (size_t)w >= sizeof(c->kubeconfig))
		return cep_yamlget_bad(l, n, "kubeconfig", "too long", exp);
	return CEP_OK;
}

static int load_namespaces(cep_yamlget *l, const cep_yaml_node *root,
    cep_connector *c)
{
	static const char exp[] = "a list of at most 64 namespace names or "
	                          "globs such as shop or team-*";
	const cep_yaml_node *n = cep_yamldoc_get(root, "namespaces");
	if (n == NULL || cep_yamldoc_len(n) == 0)
		return cep_yamldoc_error(l->err, l->doc,
		    n ? n : cep_yamldoc_root(l->doc),
		    "namespaces: missing or empty, "
		    "expected %s",
		    exp);
	int rv = get_names(l, root, "namespaces", ns_glob, exp, NULL,
	    c->namespaces, CEP_CONN_MAX_NS, &c->n_ns);
	if (rv == CEP_OK)
		rv = cep_yamlget_string(l, root, "applianceNamespace",
		    cep_connector_dns_label, "a namespace name",
		    c->appliance_ns, sizeof(c->appliance_ns));
	return rv;
}

static int load_doc(cep_yamlget *l, const char *dir, cep_connector *c)
{
	static const char *const top[] = {"kubeconfig", "context",
	    "insecureSkipTLSVerify", "namespaces", "applianceNamespace",
	    "runner", "timeouts", NULL};
	const cep_yaml_node *root = cep_yamldoc_root(l->doc);
	if (cep_yamldoc_kind(root) != CEP_YAML_MAP)
		return cep_yamldoc_error(l->err, l->doc, root,
		    "a connector is a "
		    "mapping with keys such as kubeconfig, namespaces and runner");
	cep_yamlget_set_path(l, "");
	const char *kind = cep_yamldoc_scalar(cep_yamldoc_get(root, "kind"));
	if (kind != NULL && strcmp(kind, "Config") == 0)
		return cep_yamldoc_error(l->err, l->doc, root,
		    "this is a "
		    "kubeconfig, not a connector: every *.yaml in connectors.d "
		    "is a connector, so keep kubeconfigs elsewhere or name them "
		    "*.kubeconfig");
	int rv = cep_yamlget_keys(l, root, top);
	if (rv == CEP_OK)
		rv = load_kubeconfig(l, root, dir, c);
	if (rv == CEP_OK)
		rv = cep_yamlget_string(l, root, "context", token,
		    "a context name of the kubeconfig", c->context,
		    sizeof(c->context));
	if (rv == CEP_OK)
		rv = cep_yamlget_bool(l, root, "insecureSkipTLSVerify",
		    &c->allow_insecure);
	if (rv == CEP_OK)
		rv = load_namespaces(l, root, c);
	if (rv == CEP_OK)
		rv = load_runner(l, root, c);
	cep_yamlget_set_path(l, "");
	if (rv == CEP_OK)
		rv = load_timeouts(l, root, c);
	return rv;
}

int cep_connector_parse(const cep_yaml_doc *doc, const char *dir,
    cep_connector *c, cep_err *err)
{
	cep_yamlget l;
	cep_yamlget_init(&l, doc, err);
	return load_doc(&l, dir, c);
}
