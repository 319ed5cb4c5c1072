/* test_kube_config.c - kubeconfig and in-cluster loading (no server). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube.h"
#include "kube_int.h"
#include "pki.h"
#include "testutil.h"
#include "clock.h"
#include "files.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))
#define assert_lacks(s, sub) \
	cr_assert(strstr((s), (sub)) == NULL, "\"%s\" holds \"%s\"", (s), (sub))

#define TOKEN "s3cr3t-token-value-1234"

static char *dir;
static char *ca_pem, *cert_pem, *key_pem;

static void b64(const char *in, char *out, size_t len)
{
	static const char t[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)(unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		cr_assert(o + 5 < len);
		out[o++] = t[v >> 18];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = '\0';
}

static void put(const char *name, const char *text)
{
	char path[4096];
	cep_err err;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(cep_files_write(path, text, strlen(text), 0600, &err),
	    CEP_OK, "%s", err.msg);
}

static void setup(void)
{
	cep_err err;
	dir = cep_test_tmpdir("kubecfg");
	char pki[4096];
	snprintf(pki, sizeof(pki), "%s/pki", dir);
	cr_assert_eq(cep_pki_ca_create(pki, "kt", &err), CEP_OK, "%s", err.msg);
	cep_pki_ca *ca = NULL;
	cr_assert_eq(cep_pki_ca_load(&ca, pki, &err), CEP_OK, "%s", err.msg);
	ca_pem = strdup(cep_pki_ca_cert_pem(ca));
	cep_pki_issue_req req = {.cn = "kube-user",
	    .not_after_ms = cep_clock_now_ms() + 3600000};
	cr_assert_eq(cep_pki_issue(ca, &req, &cert_pem, &key_pem, &err), CEP_OK,
	    "%s", err.msg);
	cep_pki_ca_free(ca);
	put("client.crt", cert_pem);
	put("client.key", key_pem);
}

static void teardown(void)
{
	free(ca_pem);
	free(cert_pem);
	cep_pki_free_secret(key_pem);
	cep_test_rmdir(dir);
}

TestSuite(kube_config, .init = setup, .fini = teardown);

/* A kubeconfig with one cluster/user/context; cluster and user are YAML
 * fragments (indented 4 and 4). */
static void kubeconfig(const char *name, const char *cluster, const char *user,
    const char *extra)
{
	char text[32768];
	snprintf(text, sizeof(text),
	    "apiVersion: v1\n"
	    "kind: Config\n"
	    "clusters:\n"
	    "- name: c1\n"
	    "  cluster:\n"
	    "    server: https://127.0.0.1:6443\n"
	    "%s"
	    "users:\n"
	    "- name: u1\n"
	    "  user:\n"
	    "%s"
	    "contexts:\n"
	    "- name: ctx1\n"
	    "  context: {cluster: c1, user: u1, namespace: shop}\n"
	    "- name: ctx2\n"
	    "  context: {cluster: c1, user: u1}\n"
	    "- name: ctx-nouser\n"
	    "  context: {cluster: c1, user: ghost}\n"
	    "- name: ctx-nocluster\n"
	    "  context: {cluster: nowhere, user: u1}\n"
	    "%s",
	    cluster, user, extra ? extra : "current-context: ctx1\n");
	put(name, text);
}

static int load(const char *name, const char *ctx, bool insecure, cep_kube **k,
    cep_err *err)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return cep_kube_from_kubeconfig(path, ctx, insecure, k, err);
}

static char *ca_data_line(void)
{
	char *out = malloc(16384), enc[12000];
	b64(ca_pem, enc, sizeof(enc));
	snprintf(out, 16384, "    certificate-authority-data: %s\n", enc);
	return out;
}

/* A kubeconfig holds credentials, and so does a client key file: both go
 * through the secret reader (lib/base/secret.h): 0600, no links. */
Test(kube_config, kubeconfig_and_client_key_are_secrets)
{
	char kc[4200], key[4200], link[4200], user[8400];
	cep_kube *k = NULL;
	cep_err err;
	snprintf(kc, sizeof(kc), "%s/kc", dir);
	snprintf(key, sizeof(key), "%s/client.key", dir);
	snprintf(user, sizeof(user),
	    "    client-certificate: client.crt\n"
	    "    client-key: client.key\n");
	kubeconfig("kc", "", user, NULL);
	cr_assert_eq(chmod(kc, 0644), 0);
	cr_assert_eq(load("kc", NULL, false, &k, &err), CEP_PERMISSION_DENIED);
	assert_contains(err.msg, kc);
	assert_contains(err.msg, "0644");
	assert_lacks(err.msg, "PRIVATE");
	cr_assert_eq(chmod(kc, 0600), 0);
	cr_assert_eq(chmod(key, 0640), 0);
	cr_assert_eq(load("kc", NULL, false, &k, &err), CEP_PERMISSION_DENIED);
	assert_contains(err.msg, "client-key");
	assert_contains(err.msg, "0640");
	cr_assert_eq(chmod(key, 0600), 0);
	snprintf(link, sizeof(link), "%s/kc-link", dir);
	cr_assert_eq(symlink(kc, link), 0);
	cr_assert_eq(load("kc-link", NULL, false, &k, &err),
	    CEP_PERMISSION_DENIED);
	assert_contains(err.msg, "symbolic link");
	cr_assert_eq(load("kc", NULL, false, &k, &err), CEP_OK, "%s", err.msg);
	cep_kube_free(k);
}

Test(kube_config, token_ca_data_and_namespace)
{
	char *ca = ca_data_line();
	kubeconfig("kc", ca, "    token: " TOKEN "\n", NULL);
	free(ca);
	cep_kube *k = NULL;
	cep_err err;
	cr_assert_eq(load("kc", NULL, false, &k, &err), CEP_OK, "%s", err.msg);
	cr_assert_str_eq(cep_kube_server(k), "https://127.0.0.1:6443");
	cr_assert_str_eq(cep_kube_namespace(k), "shop");
	cr_assert_str_eq(k->token, TOKEN);
	cr_assert_eq(k->ca.len, strlen(ca_pem));
	cr_assert_eq(memcmp(k->ca.data, ca_pem, k->ca.len), 0);
	cep_kube_free(k);
	/* another context: no namespace */
	cr_assert_eq(load("kc", "ctx2", false, &k, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_str_eq(cep_kube_namespace(k), "");
	cep_kube_free(k);
}

Test(kube_config, token_file_relative_and_rotating)
{
	cep_err err;
	char sub[4096];
	snprintf(sub, sizeof(sub), "%s/cfg", dir);
	cr_assert_eq(cep_files_mkdirs(sub, 0700, &err), CEP_OK, "%s", err.msg);
	put("cfg/tok", "first-token\n");
	kubeconfig("cfg/kc", "    certificate-authority: ../pki/ca.crt\n",
	    "    tokenFile: tok\n", NULL);
	cep_kube *k = NULL;
	cr_assert_eq(load("cfg/kc", NULL, false, &k, &err), CEP_OK, "%s",
	    err.msg);
	char tok[256];
	cr_assert_eq(cep_kube_token(k, tok, sizeof(tok), &err), CEP_OK);
	cr_assert_str_eq(tok, "first-token");
	cr_assert_eq(k->ca.len, strlen(ca_pem));
	/* projected tokens rotate: a new file content is picked up */
	put("cfg/tok", "second-token-longer\n");
	cr_assert_eq(cep_kube_token(k, tok, sizeof(tok), &err), CEP_OK);
	cr_assert_str_eq(tok, "second-token-longer");
	cep_kube_free(k);
	/* a token file that is not there fails the load, naming it */
	kubeconfig("cfg/kc2", "", "    tokenFile: missing-tok\n", NULL);
	cr_assert_neq(load("cfg/kc2", NULL, false, &k, &err), CEP_OK);
	cr_assert_null(k);
	assert_contains(err.msg, "kc2:");
	assert_contains(err.msg, "tokenFile");
	assert_contains(err.msg, "missing-tok");
}

Test(kube_config, client_cert_as_data_and_files)
{
	char c64[8192], k64[8192], user[20000];
	b64(cert_pem, c64, sizeof(c64));
	b64(key_pem, k64, sizeof(k64));
	snprintf(user, sizeof(user),
	    "    client-certificate-data: %s\n"
	    "    client-key-data: %s\n",
	    c64, k64);
	kubeconfig("kc", "    certificate-authority: pki/ca.crt\n", user, NULL);
	cep_kube *k = NULL;
	cep_err err;
	cr_assert_eq(load("kc", NULL, false, &k, &err), CEP_OK, "%s", err.msg);
	cr_assert_eq(k->cert.len, strlen(cert_pem));
	cr_assert_eq(k->key.len, strlen(key_pem));
	cr_assert_null(k->token);
	cep_kube_free(k);

	snprintf(user, sizeof(user),
	    "    client-certificate: %s/client.crt\n"
	    "    client-key: client.key\n",
	    dir);
	kubeconfig("kc", "", user, NULL);
	cr_assert_eq(load("kc", NULL, false, &k, &err), CEP_OK, "%s", err.msg);
	cr_assert_eq(memcmp(k->cert.data, cert_pem, k->cert.len), 0);
	cr_assert_eq(memcmp(k->key.data, key_pem, k->key.len), 0);
	cr_assert_eq(k->ca.len, 0u);
	cep_kube_free(k);

	/* a certificate without its key */
	kubeconfig("kc", "", "    client-certificate: client.crt\n", NULL);
	cr_assert_eq(load("kc", NULL, false, &k, &err), CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "client key");
	/* a key where the certificate should be */
	kubeconfig("kc", "",
	    "    client-certificate: client.key\n"
	    "    client-key: client.key\n",
	    NULL);
	cr_assert_eq(load("kc", NULL, false, &k, &err), CEP_INVALID_ARGUMENT);
	assert_contains(err.msg,
	    "client-certificate does not hold a PEM "
	    "certificate");
	assert_lacks(err.msg, "PRIVATE");
	/* bad base64 names the key and the place */
	kubeconfig("kc", "    certificate-authority-data: '***'\n",
	    "    token: " TOKEN "\n", NULL);
	cr_assert_eq(load("kc", NULL, false, &k, &err), CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "kc:7:");
	assert_contains(err.msg,
	    "certificate-authority-data is not valid "
	    "base64");
	assert_lacks(err.msg, TOKEN);
}

Test(kube_config, tls_server_name_and_proxy)
{
	kubeconfig("kc",
	    "    tls-server-name: api.internal\n"
	    "    proxy-url: http://proxy.example:3128\n",
	    "    token: " TOKEN "\n", NULL);
	cep_kube *k = NULL;
	cep_err err;
	cr_assert_eq(load("kc", NULL, false, &k, &err), CEP_OK, "%s", err.msg);
	cr_assert_str_eq(k->tls_server_name, "api.internal");
	cr_assert_str_eq(k->proxy, "http://proxy.example:3128");
	char url[512];
	cr_assert_eq(cep_kube_url(k, "/api", "a=b", url, sizeof(url), &err), 0);
	cr_assert_str_eq(url, "https://api.internal:6443/api?a=b");
	cep_kube_free(k);
}

Test(kube_config, contexts_and_missing_parts)
{
	kubeconfig("kc", "", "    token: " TOKEN "\n", NULL);
	cep_kube *k = NULL;
	cep_err err;
	cr_assert_eq(load("kc", "nope", false, &k, &err), CEP_INVALID_ARGUMENT);
	cr_assert_null(k);
	assert_contains(err.msg, "context \"nope\" not found");
	assert_contains(err.msg, "ctx1, ctx2");
	assert_contains(err.msg, "kc:");
	cr_assert_eq(load("kc", "ctx-nouser", false, &k, &err),
	    CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "user \"ghost\" not found");
	assert_contains(err.msg, "(have: u1)");
	cr_assert_eq(load("kc", "ctx-nocluster", false, &k, &err),
	    CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "cluster \"nowhere\" not found");
	/* no context and no current-context */
	kubeconfig("kc", "", "    token: " TOKEN "\n", "preferences: {}\n");
	cr_assert_eq(load("kc", NULL, false, &k, &err), CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "no current-context");
	cr_assert_eq(load("kc", "ctx2", false, &k, &err), CEP_OK, "%s",
	    err.msg);
	cep_kube_free(k);
	/* a missing file */
	cr_assert_eq(load("absent", NULL, false, &k, &err), CEP_NOT_FOUND);
	assert_contains(err.msg, "absent");
}

Test(kube_config, insecure_refused_unless_allowed)
{
	kubeconfig("kc", "    insecure-skip-tls-verify: true\n",
	    "    token: " TOKEN "\n", NULL);
	cep_kube *k = NULL;
	cep_err err;
	cr_assert_eq(load("kc", NULL, false, &k, &err), CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "kc:7:");
	assert_contains(err.msg, "insecure-skip-tls-verify is refused");
	assert_lacks(err.msg, TOKEN);
	cr_assert_eq(load("kc", NULL, true, &k, &err), CEP_OK, "%s", err.msg);
	cr_assert(k->insecure);
	cep_kube_free(k);
	kubeconfig("kc", "    insecure-skip-tls-verify: maybe\n", "", NULL);
	cr_assert_eq(load("kc", NULL, true, &k, &err), CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "true or false");
}

Test(kube_config, refusals)
{
	cep_kube *k = NULL;
	cep_err err;
	kubeconfig("kc", "", "    exec: {command: aws}\n", NULL);
	cr_assert_eq(load("kc", NULL, false, &k, &err), CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "exec credential plugins are not supported");
	kubeconfig("kc", "", "    username: a\n    password: hunter2\n", NULL);
	cr_assert_eq(load("kc", NULL, false, &k, &err), CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "basic authentication");
	assert_lacks(err.msg, "hunter2");
	put("kc",
	    "clusters:\n- name: c1\n  cluster: {server: "
	    "http://127.0.0.1:8080}\ncontexts:\n- name: x\n  context: "
	    "{cluster: c1}\ncurrent-context: x\n");
	cr_assert_eq(load("kc", NULL, false, &k, &err), CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "kc:3:");
	assert_contains(err.msg, "https://");
	/* anonymous context (no user) is fine */
	put("kc",
	    "clusters:\n- name: c1\n  cluster: {server: "
	    "'https://[::1]:7443/k8s/c1/'}\ncontexts:\n- name: x\n  context: "
	    "{cluster: c1}\ncurrent-context: x\n");
	cr_assert_eq(load("kc", NULL, false, &k, &err), CEP_OK, "%s", err.msg);
	cr_assert_str_eq(cep_kube_server(k), "https://[::1]:7443/k8s/c1");
	char url[256];
	cr_assert_eq(cep_kube_url(k, "/version", NULL, url, sizeof(url), &err),
	    0);
	cr_assert_str_eq(url, "https://[::1]:7443/k8s/c1/version");
	cep_kube_free(k);
}

Test(kube_config, malformed_yaml_has_position)
{
	cep_kube *k = NULL;
	cep_err err;
	put("bad", "clusters:\n- name: c1\n  cluster: [unclosed\n");
	cr_assert_eq(load("bad", NULL, false, &k, &err), CEP_INVALID_ARGUMENT);
	char want[4200];
	snprintf(want, sizeof(want), "%s/bad:", dir);
	assert_contains(err.msg, want);
	/* file:line:col */
	const char *p = err.msg + strlen(want);
	char *e;
	long line = strtol(p, &e, 10);
	cr_assert(line >= 3 && *e == ':', "%s", err.msg);
	put("bad", "- just\n- a list\n");
	cr_assert_eq(load("bad", NULL, false, &k, &err), CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "bad:1:1: not a kubeconfig");
	put("bad", "");
	cr_assert_eq(load("bad", NULL, false, &k, &err), CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "empty document");
	put("bad", "clusters: 5\ncurrent-context: x\n");
	cr_assert_eq(load("bad", NULL, false, &k, &err), CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "bad:1:");
}

static void sa_dir(const char *ns)
{
	char path[4096];
	cep_err err;
	snprintf(path, sizeof(path), "%s/sa", dir);
	cr_assert_eq(cep_files_mkdirs(path, 0755, &err), CEP_OK);
	put("sa/token", TOKEN "\n");
	put("sa/ca.crt", ca_pem);
	if (ns != NULL)
		put("sa/namespace", ns);
}

Test(kube_config, in_cluster)
{
	sa_dir("shop");
	char path[4096];
	snprintf(path, sizeof(path), "%s/sa", dir);
	cep_kube *k = NULL;
	cep_err err;
	unsetenv("KUBERNETES_SERVICE_HOST");
	cr_assert_eq(cep_kube_in_cluster_dir(path, &k, &err),
	    CEP_FAILED_PRECONDITION);
	assert_contains(err.msg, "KUBERNETES_SERVICE_HOST");
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	cr_assert_eq(cep_kube_in_cluster_dir(path, &k, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_str_eq(cep_kube_server(k), "https://10.96.0.1:443");
	cr_assert_str_eq(cep_kube_namespace(k), "shop");
	char tok[256];
	cr_assert_eq(cep_kube_token(k, tok, sizeof(tok), &err), CEP_OK);
	cr_assert_str_eq(tok, TOKEN);
	cr_assert_eq(k->ca.len, strlen(ca_pem));
	/* the kubelet rotates the token: the new one is used */
	put("sa/token", "rotated-token-value\n");
	cr_assert_eq(cep_kube_token(k, tok, sizeof(tok), &err), CEP_OK);
	cr_assert_str_eq(tok, "rotated-token-value");
	cep_kube_free(k);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	cr_assert_eq(cep_kube_in_cluster_dir(path, &k, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_str_eq(cep_kube_server(k), "https://[fd00::1]:443");
	cep_kube_free(k);
	/* no token: not in a pod with a service account */
	snprintf(path, sizeof(path), "%s/nosa", dir);
	cr_assert_neq(cep_kube_in_cluster_dir(path, &k, &err), CEP_OK);
	assert_contains(err.msg, "in-cluster configuration");
	assert_contains(err.msg, "nosa/token");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

Test(kube_config, base64)
{
	kube_blob b = {0};
	cr_assert_eq(cep_kube_b64_decode("aGVsbG8=", &b), 0);
	cr_assert_eq(b.len, 5u);
	cr_assert_eq(memcmp(b.data, "hello", 5), 0);
	cep_kube_blob_free(&b);
	cr_assert_eq(cep_kube_b64_decode("aGVs\nbG8", &b), 0);
	cr_assert_eq(b.len, 5u);
	cep_kube_blob_free(&b);
	cr_assert_eq(cep_kube_b64_decode("aGVsbG8=x", &b), -1);
	cr_assert_eq(cep_kube_b64_decode("a", &b), -1);
	cr_assert_eq(cep_kube_b64_decode("a$b=", &b), -1);
}
