/*
 * kube_config.c - where a cep_kube's server and identity come from: a
 * kubeconfig file (clusters, users, contexts, as kubectl reads them) or
 * the in-cluster service account.
 *
 * Supported: token, tokenFile (re-read when it changes), client
 * certificate and key as -data or files, certificate-authority(-data),
 * tls-server-name, proxy-url, the context's namespace. Refused with a
 * message naming file:line:col: exec and auth-provider plugins, basic
 * auth, impersonation, insecure-skip-tls-verify unless the caller allows
 * it, non-https servers. Every file is read once here (the token file
 * again when it changes), so a broken path fails the load, not the first
 * launch; key material stays in memory and goes to libcurl as blobs.
 */
#define _GNU_SOURCE
#include "kube_int.h"

#include <ctype.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secret.h"
#include "files.h"
#include "yamldoc.h"

/* Loading state: the document and where relative paths start. */
struct kc {
	const cep_yaml_doc *doc;
	const char *dir;
	cep_kube *k;
	cep_err *err;
};

int cep_kube_b64_decode(const char *in, kube_blob *out)
{
	size_t n = strlen(in);
	unsigned char *o = malloc(n / 4 * 3 + 4);
	if (o == NULL)
		return -1;
	uint32_t acc = 0;
	int bits = 0;
	size_t len = 0;
	bool pad = false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		int v;
		if (isspace(c))
			continue;
		if (c == '=') {
			pad = true;
			continue;
		}
		if (pad)
			goto bad; /* data after padding */
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else
			goto bad;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[len++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (bits >= 6)
		goto bad; /* a lone trailing character */
	o[len] = '\0';
	out->data = (char *)o;
	out->len = len;
	return 0;
bad:
	explicit_bzero(o, n / 4 * 3 + 4);
	free(o);
	return -1;
}

/* ---- small readers ------------------------------------------------------ */

static const char *str_at(const cep_yaml_node *map, const char *key)
{
	return cep_yamldoc_scalar(cep_yamldoc_get(map, key));
}

/* A value that must be a map (or absent when optional). */
static int want_map(struct kc *c, const cep_yaml_node *n, const char *what)
{
	if (cep_yamldoc_kind(n) == CEP_YAML_MAP)
		return CEP_OK;
	return cep_yamldoc_error(c->err, c->doc, n, "%s must be a map", what);
}

/* The map under key inner of the entry named name in list key. */
static int find_named(struct kc *c, const cep_yaml_node *root, const char *key,
    const char *inner, const char *name, const cep_yaml_node **out)
{
	const cep_yaml_node *seq = cep_yamldoc_get(root, key);
	char names[200] = "";
	size_t o = 0;
	for (size_t i = 0; i < cep_yamldoc_len(seq); i++) {
		const cep_yaml_node *e = cep_yamldoc_at(seq, i);
		const char *nm = str_at(e, "name");
		if (nm == NULL)
			continue;
		if (strcmp(nm, name) == 0) {
			*out = cep_yamldoc_get(e, inner);
			return want_map(c, *out, inner);
		}
		if (o < sizeof(names))
			o += (size_t)snprintf(names + o, sizeof(names) - o,
			    "%s%s", o ? ", " : "", nm);
	}
	if (cep_yamldoc_kind(seq) != CEP_YAML_SEQ && seq != NULL)
		return cep_yamldoc_error(c->err, c->doc, seq,
		    "%s must be a list", key);
	return cep_yamldoc_error(c->err, c->doc,
	    seq ? seq : cep_yamldoc_root(c->doc),
	    "%s \"%s\" not found (have: %s)", inner, name,
	    names[0] ? names : "none");
}

/* Reads a file named in the kubeconfig (relative to its folder); a
 * client key through the one secret reader (lib/base/secret.h). */
static int read_ref(struct kc *c, const cep_yaml_node *n, const char *key,
    bool secret, kube_blob *b, char *abs, size_t alen)
{
	static const cep_secret_opts so = {KUBE_MAX_FILE, false, false,
	    "a client key"};
	const char *p = cep_yamldoc_scalar(n);
	char path[1024];
	cep_err e;
	if (p == NULL || p[0] == '\0')
		return cep_yamldoc_error(c->err, c->doc, n,
		    "%s must be a file name", key);
	if (cep_files_path(path, sizeof(path), &e, "%s%s%s",
	        p[0] == '/' ? "" : c->dir, p[0] == '/' ? "" : "/", p) != CEP_OK)
		return cep_yamldoc_error(c->err, c->doc, n, "%s: %s", key,
		    e.msg);
	if (abs != NULL)
		snprintf(abs, alen, "%s", path);
	cep_secret sec = {0};
	int rc = secret ?
	    cep_secret_read(path, &so, &sec, &e) :
	    cep_files_read(path, KUBE_MAX_FILE, &sec.data, &sec.len, &e);
	if (rc != CEP_OK) {
		cep_yamldoc_error(c->err, c->doc, n, "%s: %s", key, e.msg);
		c->err->code = e.code;
		return e.code;
	}
	b->len = sec.len;
	b->data = cep_secret_take(&sec);
	return CEP_OK;
}

static int read_data(struct kc *c, const cep_yaml_node *n, const char *key,
    kube_blob *b)
{
	const char *s = cep_yamldoc_scalar(n);
	if (s == NULL || cep_kube_b64_decode(s, b) != 0 || b->len == 0)
		return cep_yamldoc_error(c->err, c->doc, n,
		    "%s is not valid base64", key);
	return CEP_OK;
}

/* "key" (a file) or "key-data" (base64), checked to be PEM holding mark. */
static int pem_pair(struct kc *c, const cep_yaml_node *map, const char *key,
    const char *mark, kube_blob *b)
{
	char dkey[64];
	snprintf(dkey, sizeof(dkey), "%s-data", key);
	const cep_yaml_node *d = cep_yamldoc_get(map, dkey);
	const cep_yaml_node *f = cep_yamldoc_get(map, key);
	const cep_yaml_node *at = d ? d : f;
	int rc = CEP_OK;
	if (d != NULL)
		rc = read_data(c, d, dkey, b);
	else if (f != NULL)
		rc = read_ref(c, f, key, mark[0] != 'C', b, NULL, 0);
	if (rc != CEP_OK || at == NULL)
		return rc;
	if (memmem(b->data, b->len, "-----BEGIN ", 11) == NULL ||
	    memmem(b->data, b->len, mark, strlen(mark)) == NULL)
		return cep_yamldoc_error(c->err, c->doc, at,
		    "%s does not hold a PEM %s", d ? dkey : key,
		    mark[0] == 'C' ? "certificate" : "private key");
	return CEP_OK;
}

static int get_bool(struct kc *c, const cep_yaml_node *n, bool *v)
{
	const char *s = cep_yamldoc_scalar(n);
	*v = false;
	if (n == NULL || cep_yamldoc_kind(n) == CEP_YAML_NULL)
		return CEP_OK;
	if (s != NULL && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)) {
		*v = s[0] == 't';
		return CEP_OK;
	}
	return cep_yamldoc_error(c->err, c->doc, n, "expected true or false");
}

/* ---- server URL ----------------------------------------------------------- */

static int parse_port(const char *s, size_t n, int *port)
{
	if (n == 0 || n > 5)
		return -1;
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*port = v;
	return 0;
}

/* https://host[:port][/prefix] -> k->host, port, prefix, server. */
static int set_server(cep_kube *k, const char *url, cep_err *err)
{
	if (strncmp(url, "https://", 8) != 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "server must be an https:// URL");
	const char *h = url + 8;
	const char *slash = strchr(h, '/');
	size_t hl = slash ? (size_t)(slash - h) : strlen(h);
	if (strcspn(url, "?#@ \t") != strlen(url))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "server URL must not hold credentials, a query or spaces");
	const char *colon = NULL;
	size_t name = hl;
	if (h[0] == '[') {
		const char *rb = memchr(h, ']', hl);
		if (rb == NULL)
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "server URL: unterminated IPv6 address");
		name = (size_t)(rb - h) + 1;
		if (name < hl && h[name] == ':')
			colon = h + name;
		else if (name != hl)
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "server URL: bad host");
	} else {
		colon = memchr(h, ':', hl);
		if (colon != NULL)
			name = (size_t)(colon - h);
	}
	if (name == 0 || name >= sizeof(k->host))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "server URL: missing or too long host");
	k->port = 443;
	if (colon != NULL && parse_port(colon + 1, hl - name - 1, &k->port))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "server URL: bad port");
	memcpy(k->host, h, name);
	k->host[name] = '\0';
	const char *pre = slash ? slash : "";
	size_t pl = strlen(pre);
	while (pl > 0 && pre[pl - 1] == '/')
		pl--;
	if (pl >= sizeof(k->prefix))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "server URL: path too long");
	memcpy(k->prefix, pre, pl);
	k->prefix[pl] = '\0';
	return cep_files_path(k->server, sizeof(k->server), err,
	    "https://%s:%d%s", k->host, k->port, k->prefix);
}

/* ---- kubeconfig ------------------------------------------------------------ */

static int load_cluster(struct kc *c, const cep_yaml_node *cl,
    bool allow_insecure)
{
	cep_err e;
	const cep_yaml_node *srv = cep_yamldoc_get(cl, "server");
	if (cep_yamldoc_scalar(srv) == NULL)
		return cep_yamldoc_error(c->err, c->doc, cl,
		    "cluster has no server");
	if (set_server(c->k, cep_yamldoc_scalar(srv), &e) != CEP_OK)
		return cep_yamldoc_error(c->err, c->doc, srv, "%s", e.msg);
	const cep_yaml_node *ins = cep_yamldoc_get(cl,
	    "insecure-skip-tls-verify");
	if (get_bool(c, ins, &c->k->insecure) != CEP_OK)
		return c->err->code;
	if (c->k->insecure && !allow_insecure)
		return cep_yamldoc_error(c->err, c->doc, ins,
		    "insecure-skip-tls-verify is refused: the connector must "
		    "allow it explicitly (insecureSkipTLSVerify: true)");
	if (pem_pair(c, cl, "certificate-authority", "CERTIFICATE",
	        &c->k->ca) != CEP_OK)
		return c->err->code;
	const char *sn = str_at(cl, "tls-server-name");
	if (sn != NULL &&
	    (strlen(sn) >= sizeof(c->k->tls_server_name) ||
	        strcspn(sn, ":/[]@ ") != strlen(sn)))
		return cep_yamldoc_error(c->err, c->doc,
		    cep_yamldoc_get(cl, "tls-server-name"),
		    "tls-server-name must be a host name");
	if (sn != NULL)
		snprintf(c->k->tls_server_name, sizeof(c->k->tls_server_name),
		    "%s", sn);
	const char *px = str_at(cl, "proxy-url");
	if (px != NULL && strlen(px) >= sizeof(c->k->proxy))
		return cep_yamldoc_error(c->err, c->doc,
		    cep_yamldoc_get(cl, "proxy-url"), "proxy-url too long");
	if (px != NULL)
		snprintf(c->k->proxy, sizeof(c->k->proxy), "%s", px);
	return CEP_OK;
}

static int refuse_user_keys(struct kc *c, const cep_yaml_node *u)
{
	static const char *const no[][2] = {
	    {"exec", "exec credential plugins are not supported"},
	    {"auth-provider", "auth-provider plugins are not supported"},
	    {"username", "basic authentication is not supported"},
	    {"password", "basic authentication is not supported"},
	    {"as", "impersonation is not supported"},
	    {"as-groups", "impersonation is not supported"},
	    {"as-uid", "impersonation is not supported"},
	};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		const cep_yaml_node *n = cep_yamldoc_get(u, no[i][0]);
		if (n != NULL)
			return cep_yamldoc_error(c->err, c->doc, n, "%s: %s",
			    no[i][0], no[i][1]);
	}
	return CEP_OK;
}

static int load_user(struct kc *c, const cep_yaml_node *u)
{
	cep_kube *k = c->k;
	if (refuse_user_keys(c, u) != CEP_OK)
		return c->err->code;
	const cep_yaml_node *tok = cep_yamldoc_get(u, "token");
	const cep_yaml_node *tf = cep_yamldoc_get(u, "tokenFile");
	if (tok != NULL) {
		const char *t = cep_yamldoc_scalar(tok);
		if (t == NULL || t[0] == '\0')
			return cep_yamldoc_error(c->err, c->doc, tok,
			    "token must be a non-empty string");
		if ((k->token = strdup(t)) == NULL)
			return cep_err_set(c->err, CEP_RESOURCE_EXHAUSTED,
			    "out of memory");
	} else if (tf != NULL) {
		kube_blob b = {0};
		/* not as a secret: kube.c re-reads it as it rotates, and a
		 * kubelet-projected token is a 0644 link by design */
		if (read_ref(c, tf, "tokenFile", false, &b, k->token_file,
		        sizeof(k->token_file)) != CEP_OK)
			return c->err->code;
		cep_kube_blob_free(&b);
		cep_err e;
		if (cep_kube_token(k, NULL, 0, &e) != CEP_OK)
			return cep_yamldoc_error(c->err, c->doc, tf,
			    "tokenFile: %s", e.msg);
	}
	if (pem_pair(c, u, "client-certificate", "CERTIFICATE", &k->cert) !=
	    CEP_OK)
		return c->err->code;
	if (pem_pair(c, u, "client-key", "PRIVATE KEY", &k->key) != CEP_OK)
		return c->err->code;
	if ((k->cert.len > 0) != (k->key.len > 0))
		return cep_yamldoc_error(c->err, c->doc, u,
		    "a client certificate "
		    "needs a client key and the other way round");
	return CEP_OK;
}

static int load_context(struct kc *c, const cep_yaml_node *root,
    const char *name, bool allow_insecure)
{
	const cep_yaml_node *ctx, *cl, *u = NULL;
	if (find_named(c, root, "contexts", "context", name, &ctx) != CEP_OK)
		return c->err->code;
	const char *cname = str_at(ctx, "cluster");
	const char *uname = str_at(ctx, "user");
	const char *ns = str_at(ctx, "namespace");
	if (cname == NULL)
		return cep_yamldoc_error(c->err, c->doc, ctx,
		    "context \"%s\" names no cluster", name);
	if (ns != NULL)
		snprintf(c->k->ns, sizeof(c->k->ns), "%s", ns);
	if (find_named(c, root, "clusters", "cluster", cname, &cl) != CEP_OK)
		return c->err->code;
	if (load_cluster(c, cl, allow_insecure) != CEP_OK)
		return c->err->code;
	if (uname == NULL)
		return CEP_OK; /* anonymous, as kubectl allows */
	if (find_named(c, root, "users", "user", uname, &u) != CEP_OK)
		return c->err->code;
	return load_user(c, u);
}

int cep_kube_from_kubeconfig_text(const char *text, size_t len,
    const char *fname, const char *dir, const char *context,
    bool allow_insecure, cep_kube **out, cep_err *err)
{
	cep_yaml_doc *doc = NULL;
	*out = NULL;
	if (cep_yamldoc_parse(text, len, fname, &doc, err) != CEP_OK)
		return err->code;
	const cep_yaml_node *root = cep_yamldoc_root(doc);
	struct kc c = {.doc = doc, .dir = dir, .err = err};
	int rc;
	if (cep_yamldoc_kind(root) != CEP_YAML_MAP) {
		rc = cep_yamldoc_error(err, doc, root, "not a kubeconfig: %s",
		    cep_yamldoc_kind(root) == CEP_YAML_NULL ? "empty document" :
		                                              "expected a map");
		goto done;
	}
	const char *name = context && context[0] ?
	    context :
	    str_at(root, "current-context");
	if (name == NULL || name[0] == '\0') {
		rc = cep_yamldoc_error(err, doc, root,
		    "no context given and no "
		    "current-context");
		goto done;
	}
	if ((c.k = cep_kube_alloc()) == NULL) {
		rc = cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory");
		goto done;
	}
	rc = load_context(&c, root, name, allow_insecure);
done:
	cep_yamldoc_free(doc);
	if (rc != CEP_OK)
		cep_kube_free(c.k);
	else
		*out = c.k;
	return rc;
}

int cep_kube_from_kubeconfig(const char *path, const char *context,
    bool allow_insecure, cep_kube **out, cep_err *err)
{
	/* it holds client keys and tokens: a secret (docs/kubernetes.md) */
	static const cep_secret_opts so = {CEP_YAML_MAX_BYTES, false, false,
	    "a kubeconfig (it holds credentials)"};
	char dir[1024];
	*out = NULL;
	if (path == NULL || path[0] == '\0')
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "no kubeconfig file given");
	cep_secret kc;
	if (cep_secret_read(path, &so, &kc, err) != CEP_OK)
		return cep_err_wrap(err, "loading kubeconfig");
	snprintf(dir, sizeof(dir), "%s", path);
	int rc = cep_kube_from_kubeconfig_text(kc.data, kc.len, path,
	    dirname(dir), context, allow_insecure, out, err);
	cep_secret_free(&kc);
	return rc;
}

/* ---- in-cluster ---------------------------------------------------------- */

static int in_cluster_server(cep_kube *k, cep_err *err)
{
	const char *h = getenv("KUBERNETES_SERVICE_HOST");
	const char *p = getenv("KUBERNETES_SERVICE_PORT");
	if (h == NULL || h[0] == '\0' || p == NULL || p[0] == '\0')
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "not running "
		    "in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set");
	char url[600];
	bool v6 = strchr(h, ':') != NULL;
	if (strlen(h) > 255 || strlen(p) > 5 ||
	    strcspn(h, "/[]@?# ") != strlen(h))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "KUBERNETES_SERVICE_HOST/PORT hold no usable address");
	snprintf(url, sizeof(url), "https://%s%s%s:%s", v6 ? "[" : "", h,
	    v6 ? "]" : "", p);
	if (set_server(k, url, err) != CEP_OK)
		return cep_err_wrap(err, "KUBERNETES_SERVICE_HOST/PORT");
	return CEP_OK;
}

int cep_kube_in_cluster_dir(const char *sa_dir, cep_kube **out, cep_err *err)
{
	*out = NULL;
	cep_kube *k = cep_kube_alloc();
	if (k == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	char path[1024];
	char *data = NULL;
	size_t len = 0;
	int rc = in_cluster_server(k, err);
	if (rc == CEP_OK)
		rc = cep_files_path(k->token_file, sizeof(k->token_file), err,
		    "%s/token", sa_dir);
	if (rc == CEP_OK)
		rc = cep_kube_token(k, NULL, 0, err);
	if (rc == CEP_OK)
		rc = cep_files_path(path, sizeof(path), err, "%s/ca.crt",
		    sa_dir);
	if (rc == CEP_OK)
		rc = cep_files_read(path, KUBE_MAX_FILE, &k->ca.data,
		    &k->ca.len, err);
	if (rc == CEP_OK &&
	    cep_files_path(path, sizeof(path), err, "%s/namespace", sa_dir) ==
	        CEP_OK &&
	    cep_files_read(path, sizeof(k->ns) - 1, &data, &len, NULL) == 0) {
		while (len > 0 && isspace((unsigned char)data[len - 1]))
			data[--len] = '\0';
		snprintf(k->ns, sizeof(k->ns), "%s", data);
		free(data);
	}
	if (rc != CEP_OK) {
		cep_kube_free(k);
		return cep_err_wrap(err, "in-cluster configuration");
	}
	*out = k;
	return CEP_OK;
}

int cep_kube_in_cluster(cep_kube **out, cep_err *err)
{
	return cep_kube_in_cluster_dir(CEP_KUBE_SA_DIR, out, err);
}
