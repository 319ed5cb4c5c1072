/*
 * cp.c - the control-plane client's transport: options, the allowlist,
 * one lib/http client per handle (connections and TLS sessions reused,
 * calls from several threads never wait on each other), the bearer token
 * re-read at each call. What an answer means is cp_reply.c.
 *
 * Where we connect is decided by cep.yaml alone: the proxy and no_proxy
 * are always set, so https_proxy/no_proxy from the
 * environment never apply; only https is spoken and redirects are never
 * followed, so a compromised or misconfigured plane cannot send the
 * appliance (and its token) elsewhere.
 *
 * Secrets: the token goes to lib/http as a bearer (no header
 * string of ours to log), our copy is wiped after each call, every error
 * message built from server text is scrubbed of it.
 */
#define _GNU_SOURCE
#include "cp_int.h"

#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cred.h"
#include "http.h"
#include "log.h"
#include "secret.h"
#include "files.h"

#define CP_TOKEN_MAX (64 * 1024)
#define CP_CONNECT_MAX_MS 10000 /* a connect never takes the whole call */
#define CP_METHOD_MAX 64

struct cep_cp {
	cep_cp_opts o;
	char base[512];        /* the url without a trailing '/' */
	char hostname[256];    /* for the allowlist: no brackets, no port */
	char hostport[300];    /* cep_cp_host: host[:port] as in the url */
	atomic_bool cancelled; /* cep_cp_cancel: calls in flight end */
	bool token_cred;       /* token_file is a systemd credential */
	/* clientCert/clientKey read once at cep_cp_new and handed to curl in
	 * memory (o.cert_pem/o.key_pem point here): the file checked is the
	 * file used, and curl never opens the key by name */
	char *cert_buf;
	cep_secret key;
	cep_http_client *http; /* connections and TLS sessions kept */
};

void cep_cp_cancel(cep_cp *cp)
{
	if (cp != NULL)
		atomic_store(&cp->cancelled, true);
}

void cep_cp_opts_defaults(cep_cp_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout_ms = 10000;
	o->poll_wait_ms = 20000;
	o->spool_max_bytes = 64LL * 1024 * 1024;
}

/* The CA and the certificate: readable now (curl reads the CA later). */
static int check_file(const char *path, const char *what, cep_err *err)
{
	if (access(path, R_OK) != 0)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "controlPlane.%s %s: %s", what, path, strerror(errno));
	return CEP_OK;
}

/* A file of the section that cep_cp_new cannot use is the
 * configuration's fault: FAILED_PRECONDITION, named by its key. */
static int misconfigured(cep_err *err, const char *key)
{
	cep_err_wrap(err, "controlPlane.%s", key);
	if (err != NULL)
		err->code = CEP_FAILED_PRECONDITION;
	return CEP_FAILED_PRECONDITION;
}

static int read_token(const char *path, bool trusted, char *buf, cep_err *err);

/* The client identity into memory; the token read once to check it. */
static int load_secrets(cep_cp *cp, bool key_cred, cep_err *err)
{
	cep_cp_opts *o = &cp->o;
	int rc = CEP_OK;
	if (o->key_file[0] != '\0' && o->key_pem == NULL) {
		/* key_cred: a systemd credential (lib/base/cred.h) */
		const cep_secret_opts so = {CP_TOKEN_MAX, key_cred, false,
		    "the client key"};
		size_t len;
		if (cep_secret_read(o->key_file, &so, &cp->key, err) != CEP_OK)
			rc = misconfigured(err, "clientKey");
		else if (cep_files_read(o->cert_file, CP_TOKEN_MAX,
		             &cp->cert_buf, &len, err) != CEP_OK)
			rc = misconfigured(err, "clientCert");
		o->cert_pem = cp->cert_buf;
		o->key_pem = cp->key.data;
	}
	if (rc == CEP_OK && o->token_file[0] != '\0') {
		char *tok = calloc(1, CP_TOKEN_MAX);
		rc = tok == NULL ?
		    cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory") :
		    read_token(o->token_file, cp->token_cred, tok, err);
		if (tok != NULL)
			cep_secret_wipe(tok, CP_TOKEN_MAX);
		free(tok);
		if (rc != CEP_OK)
			rc = misconfigured(err, "tokenFile");
	}
	return rc;
}

/* Each configured file through the unit's credentials when systemd loaded
 * it (so relay and delegate each read their own copy), then checked. */
static int resolve_files(cep_cp *cp, cep_err *err)
{
	cep_cp_opts *o = &cp->o;
	struct {
		char *path;
		size_t len;
		const char *what;
		bool secret;
	} f[] = {
	    {o->ca_file, sizeof(o->ca_file), "caFile", false},
	    {o->cert_file, sizeof(o->cert_file), "clientCert", false},
	    {o->key_file, sizeof(o->key_file), "clientKey", true},
	    {o->token_file, sizeof(o->token_file), "tokenFile", true},
	};
	bool key_cred = false;
	int rc = CEP_OK;
	for (size_t i = 0; rc == CEP_OK && i < sizeof(f) / sizeof(f[0]); i++) {
		if (f[i].path[0] == '\0')
			continue;
		bool cred = cep_cred_path(f[i].path, f[i].path, f[i].len);
		if (cred)
			cep_log_debug(NULL,
			    "controlPlane.%s: systemd credential "
			    "%s",
			    f[i].what, f[i].path);
		if (f[i].path == o->token_file)
			cp->token_cred = cred;
		if (f[i].path == o->key_file)
			key_cred = cred;
		if (!f[i].secret)
			rc = check_file(f[i].path, f[i].what, err);
	}
	return rc == CEP_OK ? load_secrets(cp, key_cred, err) : rc;
}

static int refuse(const char *host, cep_err *err)
{
	cep_log_warn(NULL,
	    "control plane: upstream host not allowed: %s "
	    "(controlPlane.allow)",
	    host);
	return cep_err_set(err, CEP_PERMISSION_DENIED,
	    "upstream host %s not "
	    "allowed (controlPlane.allow)",
	    host);
}

static int make_client(cep_cp *cp, cep_err *err);

int cep_cp_new(const cep_cp_opts *o, cep_cp **out, cep_err *err)
{
	*out = NULL;
	if (cep_http_global_init(err) != CEP_OK)
		return err ? err->code : CEP_INTERNAL;
	cep_cp *cp = calloc(1, sizeof(*cp));
	if (cp == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	cp->o = *o;
	if (cp->o.timeout_ms <= 0)
		cp->o.timeout_ms = 10000;
	char ph[256], php[300];
	int rc = cep_http_url_parts(o->url, "https", "controlPlane.url",
	    cp->hostname, sizeof(cp->hostname), cp->hostport,
	    sizeof(cp->hostport), err);
	if (rc == CEP_OK && o->proxy[0] != '\0')
		rc = cep_http_url_parts(o->proxy, "http", "controlPlane.proxy",
		    ph, sizeof(ph), php, sizeof(php), err);
	if (rc == CEP_OK &&
	    (o->cert_file[0] != '\0') != (o->key_file[0] != '\0'))
		rc = cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "controlPlane."
		    "clientCert and clientKey go together");
	if (rc == CEP_OK && o->cert_file[0] != '\0' && o->token_file[0] != '\0')
		rc = cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "controlPlane."
		    "tokenFile and clientCert exclude each other");
	if (rc == CEP_OK)
		rc = resolve_files(cp, err);
	if (rc == CEP_OK && !cep_cp_allowed(cp, cp->hostname))
		rc = refuse(cp->hostname, err);
	if (rc == CEP_OK)
		rc = make_client(cp, err);
	if (rc != CEP_OK) {
		cep_cp_free(cp);
		return rc;
	}
	size_t n = strlen(o->url);
	while (n > 0 && o->url[n - 1] == '/')
		n--;
	snprintf(cp->base, sizeof(cp->base), "%.*s", (int)n, o->url);
	*out = cp;
	return CEP_OK;
}

void cep_cp_free(cep_cp *cp)
{
	if (cp == NULL)
		return;
	cep_http_client_free(cp->http);
	cep_secret_free(&cp->key);
	free(cp->cert_buf);
	free(cp);
}

const char *cep_cp_host(const cep_cp *cp)
{
	return cp->hostport;
}

static bool host_match(const char *host, const char *pat)
{
	size_t hl = strlen(host), pl = strlen(pat);
	if (pl == 0)
		return false;
	if (pat[0] != '.')
		return strcasecmp(host, pat) == 0;
	/* ".example.net": a.example.net and a.b.example.net, not the apex */
	return hl > pl && strcasecmp(host + hl - pl, pat) == 0;
}

bool cep_cp_allowed(const cep_cp *cp, const char *host)
{
	char h[256];
	size_t n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	while (n > 0 && host[n - 1] == '.') /* "a.example." is a.example */
		n--;
	if (n == 0 || n >= sizeof(h))
		return false;
	memcpy(h, host, n);
	h[n] = '\0';
	if (cp->o.n_allow == 0)
		return strcasecmp(h, cp->hostname) == 0;
	for (size_t i = 0; i < cp->o.n_allow && i < CEP_CP_MAX_ALLOW; i++)
		if (host_match(h, cp->o.allow[i]))
			return true;
	return false;
}

/* ---- one call ------------------------------------------------------------- */

/* The token file, read now (rotation needs no restart) through the one
 * secret reader: refused (FAILED_PRECONDITION) when group or others may
 * read it; trailing whitespace stripped. buf is CP_TOKEN_MAX bytes; the
 * caller wipes it. */
static int read_token(const char *path, bool trusted, char *buf, cep_err *err)
{
	const cep_secret_opts o = {CP_TOKEN_MAX - 2, trusted, false,
	    "the control plane token"};
	cep_secret s;
	int rc = cep_secret_read(path, &o, &s, err);
	if (rc == CEP_PERMISSION_DENIED)
		return err != NULL ? (err->code = CEP_FAILED_PRECONDITION) :
		                     CEP_FAILED_PRECONDITION;
	if (rc != CEP_OK) {
		char why[CEP_ERR_MSG_MAX];
		snprintf(why, sizeof(why), "%s", err != NULL ? err->msg : path);
		return cep_err_set(err, CEP_UNAUTHENTICATED, "token file %s",
		    why);
	}
	size_t len = s.len;
	while (len > 0 &&
	    (s.data[len - 1] == '\n' || s.data[len - 1] == '\r' ||
	        s.data[len - 1] == ' ' || s.data[len - 1] == '\t'))
		len--;
	if (len == 0 || memchr(s.data, '\0', len) != NULL)
		rc = cep_err_set(err, CEP_UNAUTHENTICATED,
		    "token file %s is "
		    "empty or not text",
		    path);
	else
		memcpy(buf, s.data, len);
	buf[len] = '\0';
	cep_secret_free(&s);
	return rc;
}

/* The client: one per control plane, kept for the handle's life, so
 * calls reuse connections and TLS sessions. */
static int make_client(cep_cp *cp, cep_err *err)
{
	const char *cert = cp->o.cert_pem, *key = cp->o.key_pem;
	bool tls_id = cert != NULL && key != NULL;
	/* "" = direct, and no_proxy always set: the environment never
	 * decides (see the top of this file) */
	cep_http_client_opts ho = {.ca_file = cp->o.ca_file,
	    .cert = {cert, tls_id ? strlen(cert) : 0},
	    .key = {key, tls_id ? strlen(key) : 0},
	    .proxy = cp->o.proxy,
	    .no_proxy = cp->o.no_proxy,
	    .proxy_tunnel = true,
	    .connect_timeout_ms = CP_CONNECT_MAX_MS};
	cp->http = cep_http_client_new(&ho);
	if (cp->http == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "control "
		    "plane: cannot set up its HTTP client");
	return CEP_OK;
}

struct xfer {
	const char *url;
	const uint8_t *body;
	size_t blen;
	const char *token;  /* "" = none */
	const char *header; /* one more request header, or NULL */
	int64_t tmo;
	cep_http_resp r;
	cep_http_result res;
};

/* One HTTP exchange; its outcome in x->res. */
static void perform(cep_cp *cp, struct xfer *x)
{
	const char *hdrs[] = {"Content-Type: application/x-protobuf",
	    "Accept: application/x-protobuf",
	    "Expect:" /* no 100-continue round trip */, x->header, NULL};
	cep_http_request rq = {.method = "POST",
	    .url = x->url,
	    .headers = hdrs,
	    .body = x->blen ? (const char *)x->body : "",
	    .blen = x->blen,
	    .bearer = x->token,
	    .timeout_ms = x->tmo,
	    .resp = &x->r,
	    .stop = &cp->cancelled};
	cep_http_client_do(cp->http, &rq, &x->res);
}

/* The transfer's outcome -> reply or error. */
static int outcome(const cep_cp *cp, const char *method, struct xfer *x,
    const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **reply,
    cep_err *err)
{
	const char *host = cp->hostport;
	char what[400];
	snprintf(what, sizeof(what), "control plane %s: %s", host, method);
	int cc = x->res.code;
	long http = x->res.status;
	cep_http_fail f = cep_http_fail_of(cc);
	if (cc == CEP_HTTP_NO_HANDLE)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "%s: "
		    "curl_easy_init failed",
		    what);
	if (x->r.over && http == 200)
		return cep_err_set(err, CEP_DATA_LOSS,
		    "%s: reply larger than "
		    "%u MiB (transfer aborted)",
		    what, CEP_CP_MAX_REPLY >> 20);
	if (x->r.oom)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "%s: out of "
		    "memory reading the reply",
		    what);
	if (f == CEP_HTTP_FAIL_PARTIAL && http == 200)
		return cep_err_set(err, CEP_DATA_LOSS,
		    "%s: reply truncated "
		    "(%zu bytes received, connection closed early)",
		    what, x->r.len);
	/* an error status is worth reporting even if its body was cut */
	bool status_known = http >= 300 &&
	    (f == CEP_HTTP_FAIL_NONE || f == CEP_HTTP_FAIL_PARTIAL ||
	        x->r.over);
	if (f != CEP_HTTP_FAIL_NONE && !status_known) {
		if (f == CEP_HTTP_FAIL_CANCELLED)
			return cep_err_set(err, CEP_CANCELLED,
			    "%s: cancelled "
			    "(stopping)",
			    what);
		if (f == CEP_HTTP_FAIL_TIMEOUT)
			return cep_err_set(err, CEP_DEADLINE_EXCEEDED,
			    "%s: no "
			    "answer within %lld ms",
			    what, (long long)x->tmo);
		return cep_http_curl_err(err, cc, what, x->res.error, x->tmo);
	}
	cep_cp_answer a = {.http = http,
	    .ctype = x->res.ctype[0] ? x->res.ctype : NULL,
	    .body = (const uint8_t *)x->r.buf,
	    .len = x->r.len};
	return cep_cp_reply_decode(method, host, &a, rdesc, reply, err);
}

static bool valid_method(const char *m)
{
	size_t n = strlen(m);
	return n > 0 && n < CP_METHOD_MAX &&
	    strspn(m,
	        "abcdefghijklmnopqrstuv"
	        "wxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == n;
}

int cep_cp_call(cep_cp *cp, const char *method, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **reply,
    int timeout_ms, int64_t *retry_after_ms, cep_err *err)
{
	cep_err scratch;
	if (err == NULL)
		err = &scratch;
	*reply = NULL;
	if (retry_after_ms != NULL)
		*retry_after_ms = 0;
	if (!valid_method(method))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "control plane: "
		    "bad method name");
	/* checked again here, not only in cep_cp_new: this is the one gate
	 * every byte to the plane passes */
	if (!cep_cp_allowed(cp, cp->hostname))
		return refuse(cp->hostname, err);
	struct xfer x = {.tmo = timeout_ms > 0 ? timeout_ms : cp->o.timeout_ms,
	    .r = {.max = CEP_CP_MAX_REPLY, .retry_after_ms = -1}};
	char url[700];
	if (cep_files_path(url, sizeof(url), err,
	        "%s/v1/cep.v1.ControlPlane/%s", cp->base, method) != CEP_OK)
		return err->code;
	x.url = url;
	size_t blen = protobuf_c_message_get_packed_size(req);
	uint8_t *body = malloc(blen ? blen : 1);
	char *tok = calloc(1, CP_TOKEN_MAX);
	int rc = CEP_OK;
	if (body == NULL || tok == NULL)
		rc = cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory");
	else if (cp->o.token_file[0] != '\0')
		rc = read_token(cp->o.token_file, cp->token_cred, tok, err);
	if (rc == CEP_OK) {
		protobuf_c_message_pack(req, body);
		x.body = body;
		x.blen = blen;
		x.token = tok;
		perform(cp, &x);
		rc = outcome(cp, method, &x, rdesc, reply, err);
		/* the plane may echo what it got; never let the token out */
		if (rc != CEP_OK)
			cep_http_scrub(err->msg, sizeof(err->msg), tok);
		if (rc != CEP_OK && retry_after_ms != NULL &&
		    x.r.retry_after_ms > 0)
			*retry_after_ms = x.r.retry_after_ms;
	}
	if (tok != NULL) {
		explicit_bzero(tok, CP_TOKEN_MAX);
		free(tok);
	}
	free(body);
	free(x.r.buf);
	return rc;
}

/* ---- the runner's tunnel ------------------------------------------------- */

/* "cep.v1.Runner/Prove": a package-qualified service and a method, nothing
 * that could change the path's meaning. */
static bool valid_full_method(const char *m)
{
	const char *slash = strchr(m, '/');
	size_t n = strlen(m);
	return slash != NULL && slash != m && n < 128 &&
	    strspn(m,
	        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	        "0123456789./") == n &&
	    strchr(slash + 1, '/') == NULL && valid_method(slash + 1) &&
	    strstr(m, "..") == NULL;
}

int cep_cp_tunnel(cep_cp *cp, const cep_cp_tunnel_req *req, uint8_t **out,
    size_t *out_len, cep_err *err)
{
	const char *method = req->method, *session = req->session;
	cep_err scratch;
	if (err == NULL)
		err = &scratch;
	*out = NULL;
	*out_len = 0;
	if (!valid_full_method(method) || strlen(session) > 64 ||
	    strspn(session, "0123456789abcdef") != strlen(session))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "tunnel: bad "
		    "method or session");
	if (!cep_cp_allowed(cp, cp->hostname))
		return refuse(cp->hostname, err);
	char url[700], hdr[100];
	if (cep_files_path(url, sizeof(url), err, "%s/v1/tunnel/%s", cp->base,
	        method) != CEP_OK)
		return err->code;
	snprintf(hdr, sizeof(hdr), "X-Cep-Tunnel-Session: %s", session);
	int tmo = req->timeout_ms > 0 ? req->timeout_ms : cp->o.timeout_ms;
	struct xfer x = {.url = url,
	    .body = req->frame,
	    .blen = req->len,
	    .token = "",
	    .header = hdr,
	    .tmo = tmo,
	    .r = {.max = CEP_CP_MAX_REPLY, .retry_after_ms = -1}};
	perform(cp, &x);
	ProtobufCMessage *unused = NULL;
	int rc = outcome(cp, method, &x, NULL, &unused, err);
	if (rc == CEP_OK) {
		*out = (uint8_t *)x.r.buf; /* the reply Envelope, raw */
		*out_len = x.r.len;
		return CEP_OK;
	}
	free(x.r.buf);
	return rc;
}
