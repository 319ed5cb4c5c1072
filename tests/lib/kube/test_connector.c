/* test_connector.c - connectors.d: the file grammar (every key, every
 * refusal with file:line:col), the namespace rule, the folder. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "connector.h"
#include "testutil.h"
#include "files.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))

static char *home;
static cep_paths paths;
static char dir[CEP_PATH_MAX + 32];

static void setup(void)
{
	home = cep_test_tmpdir("connector");
	cep_err err = {0};
	cr_assert_eq(cep_paths_resolve(home, &paths, &err), CEP_OK);
	snprintf(dir, sizeof(dir), "%s/connectors.d", paths.config);
}

static void teardown(void)
{
	cep_test_rmdir(home);
}

TestSuite(connector, .init = setup, .fini = teardown);

/* Writes connectors.d/name; returns its path (static buffer). */
static const char *put(const char *name, const char *text)
{
	static char path[CEP_PATH_MAX + 64];
	cep_err err = {0};
	cr_assert_eq(cep_files_mkdirs(dir, 0755, &err), CEP_OK, "%s", err.msg);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(cep_files_write(path, text, strlen(text), 0644, &err),
	    CEP_OK, "%s", err.msg);
	return path;
}

static cep_connector *load_ok(const char *name, const char *text)
{
	cep_connector *c = NULL;
	cep_err err = {0};
	int rv = cep_connector_load_file(put(name, text), &c, &err);
	cr_assert_eq(rv, CEP_OK, "%s", err.msg);
	return c;
}

static const char every_key[] =
    "kubeconfig: /etc/cep/kube/shop-prod.yaml\n"
    "context: shop-prod-admin\n"
    "insecureSkipTLSVerify: true\n"
    "namespaces: [shop, payments, \"team-*\"]\n"
    "applianceNamespace: chaos-system\n"
    "runner:\n"
    "  serviceAccount: chaos-runner\n"
    "  image: registry.example.com/cep/runner:1.0\n"
    "  imagePullPolicy: Always\n"
    "  imagePullSecrets: [regcred, other]\n"
    "  relay: tls+tcp://10.0.0.5:7443\n"
    "  serverName: relay.cep\n"
    "  resources: {cpuRequest: 100m, cpuLimit: \"1\",\n"
    "              memoryRequest: 64Mi, memoryLimit: 1Gi}\n"
    "  nodeSelector: {kubernetes.io/os: linux}\n"
    "  tolerations:\n"
    "    - {key: dedicated, operator: Equal, value: chaos, effect: NoSchedule}\n"
    "    - {operator: Exists, effect: NoExecute, tolerationSeconds: 30}\n"
    "  labels: {team: sre}\n"
    "  annotations: {sidecar.istio.io/inject: \"false\"}\n"
    "  proxy: {httpProxy: \"http://proxy:3128\", httpsProxy: "
    "\"http://proxy:3128\", noProxy: \"10.0.0.0/8,.cluster.local\"}\n"
    "timeouts: {request: 5s, launch: 3m}\n";

Test(connector, every_key)
{
	cep_connector *c = load_ok("shop-prod.yaml", every_key);
	cr_assert_str_eq(c->name, "shop-prod");
	assert_contains(c->file, "connectors.d/shop-prod.yaml");
	cr_assert_str_eq(c->kubeconfig, "/etc/cep/kube/shop-prod.yaml");
	cr_assert_str_eq(c->context, "shop-prod-admin");
	cr_assert(c->allow_insecure);
	cr_assert_eq(c->n_ns, 3);
	cr_assert_str_eq(c->namespaces[2], "team-*");
	cr_assert_str_eq(c->appliance_ns, "chaos-system");
	cr_assert_str_eq(c->service_account, "chaos-runner");
	cr_assert_str_eq(c->image, "registry.example.com/cep/runner:1.0");
	cr_assert_str_eq(c->pull_policy, "Always");
	cr_assert_str_eq(c->relay, "tls+tcp://10.0.0.5:7443");
	cr_assert_str_eq(c->server_name, "relay.cep");
	cr_assert_str_eq(c->cpu_request, "100m");
	cr_assert_str_eq(c->cpu_limit, "1");
	cr_assert_str_eq(c->mem_request, "64Mi");
	cr_assert_str_eq(c->mem_limit, "1Gi");
	cr_assert_str_eq(c->http_proxy, "http://proxy:3128");
	cr_assert_str_eq(c->https_proxy, "http://proxy:3128");
	cr_assert_str_eq(c->no_proxy, "10.0.0.0/8,.cluster.local");
	cr_assert_eq(c->request_timeout_ms, 5000);
	cr_assert_eq(c->launch_timeout_ms, 180000);
	/* the JSON members are what a pod spec takes */
	char *s = json_dumps(c->pull_secrets, JSON_COMPACT);
	cr_assert_str_eq(s, "[{\"name\":\"regcred\"},{\"name\":\"other\"}]");
	free(s);
	s = json_dumps(c->tolerations, JSON_COMPACT | JSON_SORT_KEYS);
	cr_assert_str_eq(s,
	    "[{\"effect\":\"NoSchedule\",\"key\":\"dedicated\","
	    "\"operator\":\"Equal\",\"value\":\"chaos\"},{\"effect\":"
	    "\"NoExecute\",\"operator\":\"Exists\",\"tolerationSeconds\":30}]");
	free(s);
	cr_assert_str_eq(json_string_value(json_object_get(c->node_selector,
	                     "kubernetes.io/os")),
	    "linux");
	cr_assert_str_eq(json_string_value(json_object_get(c->labels, "team")),
	    "sre");
	cr_assert_str_eq(json_string_value(json_object_get(c->annotations,
	                     "sidecar.istio.io/inject")),
	    "false");
	cep_connector_free(c);
}

Test(connector, defaults)
{
	cep_connector *c = load_ok("min.yaml",
	    "kubeconfig: /k\n"
	    "namespaces: [shop]\nrunner: {image: r:1}\n");
	cr_assert_str_eq(c->context, "");
	cr_assert_not(c->allow_insecure);
	cr_assert_str_eq(c->appliance_ns, "cep-system");
	cr_assert_str_eq(c->service_account, "cep-runner");
	cr_assert_str_eq(c->pull_policy, "IfNotPresent");
	cr_assert_str_eq(c->relay, "");
	cr_assert_str_eq(c->cpu_request, "50m");
	cr_assert_str_eq(c->cpu_limit, "500m");
	cr_assert_str_eq(c->mem_request, "32Mi");
	cr_assert_str_eq(c->mem_limit, "128Mi");
	cr_assert_eq(c->request_timeout_ms, 10000);
	cr_assert_eq(c->launch_timeout_ms, 120000);
	cr_assert(json_is_object(c->node_selector) &&
	    json_object_size(c->node_selector) == 0);
	cr_assert(json_is_array(c->tolerations) &&
	    json_array_size(c->tolerations) == 0);
	cr_assert(json_is_array(c->pull_secrets));
	cr_assert(json_is_object(c->labels) && json_is_object(c->annotations));
	cep_connector_free(c);
}

/* Each refusal names the file, the line and column, and the key. */
static const struct {
	const char *yaml;
	const char *want;
} bad_cases[] = {
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner: {image: r}\nfoo: 1\n",
        "bad.yaml:4:1: unknown key 'foo' in the top level"},
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner:\n  image: r\n  imag: x\n",
        "bad.yaml:5:3: unknown key 'imag' in runner"},
    {"namespaces: [shop]\nrunner: {image: r}\n", "kubeconfig: missing"},
    {"kubeconfig: /k\nrunner: {image: r}\n", "namespaces: missing or empty"},
    {"kubeconfig: /k\nnamespaces: []\nrunner: {image: r}\n",
        "bad.yaml:2:13: namespaces: missing or empty"},
    {"kubeconfig: /k\nnamespaces: [shop]\n", "runner.image: missing"},
    {"kubeconfig: /k\nnamespaces: [Shop]\nrunner: {image: r}\n",
        "bad.yaml:2:14: namespaces: bad entry"},
    {"kubeconfig: /k\nnamespaces: [shop_x]\nrunner: {image: r}\n",
        "bad.yaml:2:14: namespaces: bad entry"},
    {"kubeconfig: /k\nnamespaces: [shop]\napplianceNamespace: -x\n"
     "runner: {image: r}\n",
        "bad.yaml:3:21: applianceNamespace: not valid"},
    {"kubeconfig: /k\ninsecureSkipTLSVerify: yes\nnamespaces: [shop]\n"
     "runner: {image: r}\n",
        "bad.yaml:2:24: insecureSkipTLSVerify: not a "
        "boolean"},
    {"kubeconfig: [a]\nnamespaces: [shop]\nrunner: {image: r}\n",
        "bad.yaml:1:13: kubeconfig: not valid"},
    {"kubeconfig: /k\ncontext: \"a b\"\nnamespaces: [shop]\n"
     "runner: {image: r}\n",
        "bad.yaml:2:10: context: not valid"},
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner: {image: r, "
     "imagePullPolicy: Sometimes}\n",
        "bad.yaml:3:37: runner.imagePullPolicy: "
        "not valid, expected Always, IfNotPresent or Never"},
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner: {image: r, relay: "
     "http://x:1}\n",
        "bad.yaml:3:27: runner.relay: not valid"},
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner: {image: r, serviceAccount: "
     "Cep_Runner}\n",
        "bad.yaml:3:36: runner.serviceAccount: not valid"},
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner:\n  image: r\n"
     "  resources: {cpuLimit: 5x}\n",
        "bad.yaml:5:25: runner.resources.cpuLimit: not a quantity"},
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner:\n  image: r\n"
     "  resources: {memoryLimit: 128m}\n",
        "bad.yaml:5:28: runner.resources.memoryLimit: not a quantity, expected "
        "a memory quantity such as 128Mi"},
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner:\n  image: r\n"
     "  resources: {cpuRequest: \"2\", cpuLimit: 500m}\n",
        "runner.resources.cpuRequest: above cpuLimit"},
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner:\n  image: r\n"
     "  resources: {cpu: 1}\n",
        "bad.yaml:5:15: unknown key 'cpu' in runner.resources"},
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner:\n  image: r\n"
     "  labels: {cep.io/run-id: x}\n",
        "bad.yaml:5:12: runner.labels: key reserved for cep"},
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner:\n  image: r\n"
     "  labels: {team: \"a b\"}\n",
        "bad.yaml:5:18: runner.labels: bad value"},
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner:\n  image: r\n"
     "  nodeSelector: {\"bad key!\": x}\n",
        "bad.yaml:5:18: runner.nodeSelector: bad key"},
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner:\n  image: r\n"
     "  tolerations: [{key: a, operator: Maybe}]\n",
        "bad.yaml:5:36: runner.tolerations.operator: not valid"},
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner:\n  image: r\n"
     "  tolerations: [{key: a, effect: NoSchedule, tolerationSeconds: 5}]\n",
        "bad.yaml:5:65: runner.tolerations.tolerationSeconds: not valid"},
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner:\n  image: r\n"
     "  tolerations: [{key: a, colour: red}]\n",
        "bad.yaml:5:26: unknown key 'colour' in runner.tolerations"},
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner:\n  image: r\n"
     "  proxy: {httpProxy: \"a b\"}\n",
        "bad.yaml:5:22: runner.proxy.httpProxy: not valid"},
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner: {image: r}\n"
     "timeouts: {request: 0s}\n",
        "bad.yaml:4:21: timeouts.request: out of "
        "range"},
    {"kubeconfig: /k\nnamespaces: [shop]\nrunner: {image: r}\n"
     "timeouts: {launch: soon}\n",
        "bad.yaml:4:20: timeouts.launch: not a "
        "duration"},
    {"- a\n- b\n", "bad.yaml:1:1: a connector is a mapping"},
    {"apiVersion: v1\nkind: Config\nclusters: []\n", "this is a kubeconfig"},
    {"kubeconfig: /k\nnamespaces: [shop\n", "bad.yaml:"},
};

Test(connector, every_refusal_is_placed)
{
	int wrong = 0;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		cep_connector *c = NULL;
		cep_err err = {0};
		int rv = cep_connector_load_file(put("bad.yaml",
		                                     bad_cases[i].yaml),
		    &c, &err);
		cr_assert_neq(rv, CEP_OK, "case %zu accepted:\n%s", i,
		    bad_cases[i].yaml);
		cr_assert_null(c);
		if (strstr(err.msg, bad_cases[i].want) == NULL) {
			cr_log_error("case %zu: \"%s\" lacks \"%s\"", i,
			    err.msg, bad_cases[i].want);
			wrong++;
		}
	}
	cr_assert_eq(wrong, 0, "%d refusals not as expected", wrong);
}

Test(connector, file_name_is_the_name)
{
	cep_connector *c = NULL;
	cep_err err = {0};
	const char *ok =
	    "kubeconfig: /k\nnamespaces: [shop]\nrunner: {image: r}\n";
	cr_assert_neq(cep_connector_load_file(put("Shop_Prod.yaml", ok), &c,
	                  &err),
	    CEP_OK);
	assert_contains(err.msg, "the file name names the connector");
	/* "local" is the built-in connector for host targets */
	cr_assert_neq(cep_connector_load_file(put("local.yaml", ok), &c, &err),
	    CEP_OK);
	assert_contains(err.msg, "not \"local\"");
}

static cep_connector *with_ns(const char *ns_list, const char *extra)
{
	char text[512];
	snprintf(text, sizeof(text),
	    "kubeconfig: /k\nnamespaces: %s\n%s"
	    "runner: {image: r}\n",
	    ns_list, extra);
	return load_ok("c.yaml", text);
}

Test(connector, kube_system_needs_exact_name)
{
	char why[256];
	cep_connector *c = with_ns("[\"*\"]", "");
	cr_assert(cep_connector_ns_allowed(c, "shop", why, sizeof(why)));
	cr_assert_not(
	    cep_connector_ns_allowed(c, "kube-system", why, sizeof(why)));
	assert_contains(why, "kube-system is denied unless");
	assert_contains(why, "connectors.d/c.yaml lists it by exact name");
	cep_connector_free(c);
	c = with_ns("[\"kube-*\"]", "");
	cr_assert_not(
	    cep_connector_ns_allowed(c, "kube-system", why, sizeof(why)));
	cr_assert(cep_connector_ns_allowed(c, "kube-public", why, sizeof(why)));
	cep_connector_free(c);
	c = with_ns("[shop, kube-system]", "");
	cr_assert(cep_connector_ns_allowed(c, "kube-system", why, sizeof(why)),
	    "%s", why);
	cep_connector_free(c);
}

Test(connector, appliance_namespace_denied)
{
	char why[256];
	cep_connector *c = with_ns("[\"*\"]", "");
	cr_assert_not(
	    cep_connector_ns_allowed(c, "cep-system", why, sizeof(why)));
	assert_contains(why, "cep-system is denied");
	cep_connector_free(c);
	/* a renamed appliance namespace: the rule follows it */
	c = with_ns("[\"*\"]", "applianceNamespace: chaos\n");
	cr_assert_not(cep_connector_ns_allowed(c, "chaos", why, sizeof(why)));
	cr_assert(cep_connector_ns_allowed(c, "cep-system", why, sizeof(why)));
	cep_connector_free(c);
	c = with_ns("[\"*\", chaos]", "applianceNamespace: chaos\n");
	cr_assert(cep_connector_ns_allowed(c, "chaos", why, sizeof(why)));
	cep_connector_free(c);
}

Test(connector, globs_and_names)
{
	char why[256];
	cep_connector *c = with_ns("[shop, \"team-*\", \"env-?\"]", "");
	cr_assert(cep_connector_ns_allowed(c, "shop", why, sizeof(why)));
	cr_assert(cep_connector_ns_allowed(c, "team-a", why, sizeof(why)));
	cr_assert(cep_connector_ns_allowed(c, "env-1", why, sizeof(why)));
	cr_assert_not(cep_connector_ns_allowed(c, "env-12", why, sizeof(why)));
	cr_assert_not(cep_connector_ns_allowed(c, "teamb", why, sizeof(why)));
	assert_contains(why, "not in the namespaces of connector c");
	cr_assert_not(cep_connector_ns_allowed(c, "shop2", why, sizeof(why)));
	/* not a namespace name at all: refused before any matching */
	cr_assert_not(
	    cep_connector_ns_allowed(c, "team-../x", why, sizeof(why)));
	assert_contains(why, "is not a namespace name");
	cr_assert_not(cep_connector_ns_allowed(c, "", NULL, 0));
	cep_connector_free(c);
}

Test(connector, relative_kubeconfig)
{
	cep_connector *c = load_ok("rel.yaml",
	    "kubeconfig: kube/rel.conf\n"
	    "namespaces: [shop]\nrunner: {image: r}\n");
	char want[CEP_PATH_MAX + 64];
	snprintf(want, sizeof(want), "%s/kube/rel.conf", dir);
	cr_assert_str_eq(c->kubeconfig, want);
	cr_assert_eq(c->kubeconfig[0], '/');
	cep_connector_free(c);
}

Test(connector, missing_folder_is_empty)
{
	cep_connectors *cs = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_connector_list_load(&paths, &cs, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(cep_connector_list_count(cs), 0);
	cr_assert_null(cep_connector_list_at(cs, 0));
	cr_assert_null(cep_connector_list_find(cs, "x"));
	cep_connector_list_free(cs);
}

Test(connector, folder)
{
	const char *ok =
	    "kubeconfig: /k\nnamespaces: [shop]\nrunner: {image: r}\n";
	put("b.yaml", ok);
	put("a.yaml", ok);
	/* not loaded: not *.yaml, or hidden */
	put("example.yaml.sample", "this: is not: loaded\n");
	put("c.yml", "nor: this\n");
	put(".hidden.yaml", "nor: this\n");
	put("kube.kubeconfig", "apiVersion: v1\nkind: Config\n");
	cep_connectors *cs = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_connector_list_load(&paths, &cs, &err), CEP_OK, "%s",
	    err.msg);
	/* one file, one name: two connectors of one name cannot exist */
	cr_assert_eq(cep_connector_list_count(cs), 2);
	cr_assert_str_eq(cep_connector_list_at(cs, 0)->name, "a");
	cr_assert_str_eq(cep_connector_list_at(cs, 1)->name, "b");
	cr_assert_eq(cep_connector_list_find(cs, "b"),
	    cep_connector_list_at(cs, 1));
	cep_connector_list_free(cs);
	/* one bad file fails the whole load, naming it */
	put("z.yaml",
	    "kubeconfig: /k\nnamespaces: [shop]\nrunner: {image: r}\n"
	    "oops: 1\n");
	cr_assert_neq(cep_connector_list_load(&paths, &cs, &err), CEP_OK);
	assert_contains(err.msg, "connectors.d/z.yaml:4:1: unknown key 'oops'");
}

/* The example `cepctl init` writes is valid once uncommented. */
Test(connector, example_is_valid)
{
	const char *ex = cep_connector_example_yaml();
	char *text = calloc(1, strlen(ex) + 1);
	size_t o = 0;
	bool body = false;
	for (const char *l = ex; *l != '\0';) {
		size_t n = strcspn(l, "\n");
		if (body && n >= 2 && strncmp(l, "# ", 2) == 0) {
			memcpy(text + o, l + 2, n - 2);
			o += n - 2;
			text[o++] = '\n';
		}
		if (n == 1 && l[0] == '#')
			body = true;
		l += n + (l[n] == '\n');
	}
	cep_connector *c = load_ok("example.yaml", text);
	free(text);
	cr_assert_str_eq(c->name, "example");
	cr_assert_eq(c->n_ns, 3);
	cr_assert_str_eq(c->context, "shop-prod-admin");
	cr_assert_eq(json_array_size(c->tolerations), 1);
	cr_assert_str_eq(c->no_proxy, "10.0.0.0/8,.cluster.local");
	cep_connector_free(c);
}
