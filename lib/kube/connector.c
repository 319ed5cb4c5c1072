/*
 * connector.c - connectors.d/NAME.yaml: one file per target cluster, parsed
 * strictly (every key known, every value checked, errors as
 * file:line:col), and the namespace rule that keeps kube-system and the
 * appliance's own namespace out of reach unless listed by exact name.
 *
 * Loading is syntax and meaning only: the kubeconfig is not opened here
 * (cep_connector_client does that), so `cepctl connectors` can still list
 * a connector whose credentials are missing and say why it is unreachable.
 * docs/connectors.md is the reference for the format.
 */
#define _GNU_SOURCE
#include "connector.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "connector_int.h"
#include "files.h"
#include "yamldoc.h"

#define MAX_CONNECTORS 1024

struct cep_connectors {
	size_t n;
	cep_connector **v;
};

/* ---- objects ---- */

static cep_connector *connector_new(void)
{
	cep_connector *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	snprintf(c->appliance_ns, sizeof(c->appliance_ns), "cep-system");
	snprintf(c->service_account, sizeof(c->service_account), "cep-runner");
	snprintf(c->pull_policy, sizeof(c->pull_policy), "IfNotPresent");
	snprintf(c->cpu_request, sizeof(c->cpu_request), "50m");
	snprintf(c->cpu_limit, sizeof(c->cpu_limit), "500m");
	snprintf(c->mem_request, sizeof(c->mem_request), "32Mi");
	snprintf(c->mem_limit, sizeof(c->mem_limit), "128Mi");
	c->request_timeout_ms = 10000;
	c->launch_timeout_ms = 120000;
	c->node_selector = json_object();
	c->tolerations = json_array();
	c->pull_secrets = json_array();
	c->labels = json_object();
	c->annotations = json_object();
	if (!c->node_selector || !c->tolerations || !c->pull_secrets ||
	    !c->labels || !c->annotations) {
		cep_connector_free(c);
		return NULL;
	}
	return c;
}

void cep_connector_free(cep_connector *c)
{
	if (c == NULL)
		return;
	json_decref(c->node_selector);
	json_decref(c->tolerations);
	json_decref(c->pull_secrets);
	json_decref(c->labels);
	json_decref(c->annotations);
	free(c);
}

/* The connector's name: the file name up to its first dot. */
static int name_from_path(const char *path, char *name, size_t len, char *dir,
    size_t dlen, cep_err *err)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t n = strcspn(base, ".");
	if (n >= len)
		n = len - 1;
	memcpy(name, base, n);
	name[n] = '\0';
	if (!cep_connector_dns_label(name) || strcmp(name, "local") == 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "%s: the file name "
		    "names the connector and must be a name of [a-z0-9-] "
		    "(at most 63, not \"local\") followed by .yaml",
		    path);
	if (slash == NULL)
		return cep_files_path(dir, dlen, err, ".");
	return cep_files_path(dir, dlen, err, "%.*s", (int)(slash - path),
	    path);
}

int cep_connector_load_file(const char *path, cep_connector **out, cep_err *err)
{
	*out = NULL;
	cep_connector *c = connector_new();
	if (c == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	char dir[CEP_PATH_MAX];
	int rv = name_from_path(path, c->name, sizeof(c->name), dir,
	    sizeof(dir), err);
	char *text = NULL;
	size_t len = 0;
	if (rv == CEP_OK &&
	    (rv = cep_files_path(c->file, sizeof(c->file), err, "%s", path)) ==
	        CEP_OK)
		rv = cep_files_read(path, CEP_YAML_MAX_BYTES, &text, &len, err);
	cep_yaml_doc *doc = NULL;
	if (rv == CEP_OK)
		rv = cep_yamldoc_parse(text, len, path, &doc, err);
	free(text);
	if (rv == CEP_OK) {
		rv = cep_connector_parse(doc, dir, c, err);
	}
	cep_yamldoc_free(doc);
	if (rv != CEP_OK) {
		cep_connector_free(c);
		return rv;
	}
	*out = c;
	return CEP_OK;
}

/* ---- the set in connectors.d ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool wanted(const char *dir, const char *name)
{
	size_t n = strlen(name);
	if (name[0] == '.' || n <= 5 || strcmp(name + n - 5, ".yaml") != 0)
		return false;
	char path[CEP_PATH_MAX];
	struct stat st;
	int w = snprintf(path, sizeof(path), "%s/%s", dir, name);
	return w > 0 && (size_t)w < sizeof(path) && stat(path, &st) == 0 &&
	    S_ISREG(st.st_mode);
}

/* The *.yaml file names in dir, sorted (the listing order is the load
 * order: error messages and `cepctl connectors` are deterministic). */
static int list_dir(const char *dir, char ***names, size_t *n, cep_err *err)
{
	*names = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? CEP_OK :
		                         cep_err_errno(err, errno, dir);
	char **v = calloc(MAX_CONNECTORS, sizeof(*v));
	size_t k = 0;
	int rv = v ? CEP_OK :
	             cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory");
	struct dirent *e;
	while (rv == CEP_OK && (e = readdir(d)) != NULL) {
		if (!wanted(dir, e->d_name))
			continue;
		if (k == MAX_CONNECTORS)
			rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
			    "%s: more "
			    "than %d connector files",
			    dir, MAX_CONNECTORS);
		else if ((v[k++] = strdup(e->d_name)) == NULL)
			rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
			    "out of memory");
	}
	closedir(d);
	if (rv != CEP_OK) {
		for (size_t i = 0; v != NULL && i < k; i++)
			free(v[i]);
		free(v);
		return rv;
	}
	qsort(v, k, sizeof(*v), cmp_str);
	*names = v;
	*n = k;
	return CEP_OK;
}

int cep_connector_list_load(const cep_paths *p, cep_connectors **out,
    cep_err *err)
{
	*out = NULL;
	char dir[CEP_PATH_MAX];
	int rv = cep_files_path(dir, sizeof(dir), err, "%s/connectors.d",
	    p->config);
	char **names = NULL;
	size_t n = 0;
	if (rv == CEP_OK)
		rv = list_dir(dir, &names, &n, err);
	if (rv != CEP_OK)
		return rv;
	cep_connectors *cs = calloc(1, sizeof(*cs));
	if (cs == NULL ||
	    (n > 0 && (cs->v = calloc(n, sizeof(*cs->v))) == NULL))
		rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory");
	for (size_t i = 0; rv == CEP_OK && i < n; i++) {
		char path[CEP_PATH_MAX];
		rv = cep_files_path(path, sizeof(path), err, "%s/%s", dir,
		    names[i]);
		if (rv == CEP_OK)
			rv = cep_connector_load_file(path, &cs->v[cs->n], err);
		if (rv == CEP_OK)
			cs->n++;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (rv != CEP_OK) {
		cep_connector_list_free(cs);
		return rv;
	}
	*out = cs;
	return CEP_OK;
}

void cep_connector_list_free(cep_connectors *cs)
{
	if (cs == NULL)
		return;
	for (size_t i = 0; i < cs->n; i++)
		cep_connector_free(cs->v[i]);
	free(cs->v);
	free(cs);
}

size_t cep_connector_list_count(const cep_connectors *cs)
{
	return cs ? cs->n : 0;
}

const cep_connector *cep_connector_list_at(const cep_connectors *cs, size_t i)
{
	return cs != NULL && i < cs->n ? cs->v[i] : NULL;
}

const cep_connector *cep_connector_list_find(const cep_connectors *cs,
    const char *name)
{
	for (size_t i = 0; cs != NULL && name != NULL && i < cs->n; i++)
		if (strcmp(cs->v[i]->name, name) == 0)
			return cs->v[i];
	return NULL;
}

/* ---- namespaces ---- */

static bool listed_exactly(const cep_connector *c, const char *ns)
{
	for (size_t i = 0; i < c->n_ns; i++)
		if (strcmp(c->namespaces[i], ns) == 0)
			return true;
	return false;
}

bool cep_connector_ns_allowed(const cep_connector *c, const char *ns, char *why,
    size_t len)
{
	char tmp[8];
	if (why == NULL || len == 0) {
		why = tmp;
		len = sizeof(tmp);
	}
	why[0] = '\0';
	if (ns == NULL || !cep_connector_dns_label(ns)) {
		snprintf(why, len,
		    "\"%.63s\" is not a namespace name "
		    "([a-z0-9-], at most 63 bytes)",
		    ns ? ns : "");
		return false;
	}
	/* a glob such as "*" must never reach the cluster's own namespace or
	 * the appliance's: those take an exact, deliberate entry */
	bool special = strcmp(ns, "kube-system") == 0 ||
	    strcmp(ns, c->appliance_ns) == 0;
	if (special) {
		if (listed_exactly(c, ns))
			return true;
		snprintf(why, len,
		    "%s is denied unless %s lists it by exact "
		    "name in namespaces",
		    ns, c->file);
		return false;
	}
	for (size_t i = 0; i < c->n_ns; i++)
		if (fnmatch(c->namespaces[i], ns, 0) == 0)
			return true;
	snprintf(why, len,
	    "namespace %s is not in the namespaces of "
	    "connector %s (%s)",
	    ns, c->name, c->file);
	return false;
}

/* ---- the client ---- */

int cep_connector_client(const cep_connector *c, cep_kube **out, cep_err *err)
{
	*out = NULL;
	cep_kube *k = NULL;
	int rv = cep_kube_from_kubeconfig(c->kubeconfig,
	    c->context[0] != '\0' ? c->context : NULL, c->allow_insecure, &k,
	    err);
	if (rv != CEP_OK) {
		cep_err_wrap(err, "connector %s", c->name);
		return rv;
	}
	cep_kube_set_timeout(k, c->request_timeout_ms);
	*out = k;
	return CEP_OK;
}

/* ---- the commented example `cepctl init` writes ---- */

static const char example_yaml[] =
    "# A connector: one target cluster (docs/connectors.md).\n"
    "# Copy to NAME.yaml in this folder; the file name names the connector.\n"
    "# Only *.yaml files are loaded; unknown keys and bad values stop the\n"
    "# delegate with file:line:col.\n"
    "#\n"
    "# kubeconfig: /etc/cep/kube/shop-prod.yaml  # relative: to this folder\n"
    "# context: shop-prod-admin                  # default: current-context\n"
    "# insecureSkipTLSVerify: false              # true to accept a kubeconfig\n"
    "#                                           # that skips TLS checks\n"
    "# namespaces: [shop, payments, team-*]      # allowed (exact or glob)\n"
    "# applianceNamespace: cep-system            # denied unless listed\n"
    "# runner:\n"
    "#   serviceAccount: cep-runner\n"
    "#   image: registry.example.com/cep/runner:1.0\n"
    "#   imagePullPolicy: IfNotPresent\n"
    "#   imagePullSecrets: [regcred]\n"
    "#   relay: tls+tcp://10.0.0.5:7443          # as the cluster reaches it;\n"
    "#                                           # default: relay.advertise\n"
    "#   serverName: relay.cep                   # name in the relay cert\n"
    "#   resources: {cpuRequest: 50m, cpuLimit: 500m,\n"
    "#               memoryRequest: 32Mi, memoryLimit: 128Mi}\n"
    "#   nodeSelector: {kubernetes.io/os: linux}\n"
    "#   tolerations: [{key: dedicated, operator: Equal, value: chaos,\n"
    "#                  effect: NoSchedule}]\n"
    "#   labels: {team: sre}\n"
    "#   annotations: {sidecar.istio.io/inject: \"false\"}\n"
    "#   proxy: {httpProxy: \"http://proxy:3128\",\n"
    "#           httpsProxy: \"http://proxy:3128\",\n"
    "#           noProxy: \"10.0.0.0/8,.cluster.local\"}\n"
    "# timeouts: {request: 10s, launch: 2m}\n";

const char *cep_connector_example_yaml(void)
{
	return example_yaml;
}
