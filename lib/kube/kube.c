/*
 * kube.c - the Kubernetes client's transport: the handle, its lib/http
 * client (connections and TLS sessions kept across calls), bearer tokens (rotating token files), the request loop
 * with its deadline and retries (429/5xx/transport, backoff or the
 * server's Retry-After).
 *
 * Not here: kubeconfig/in-cluster loading (kube_config.c), Status and
 * curl failures -> cep_err (kube_status.c), resource paths and the typed
 * verbs (kube_res.c), list and watch (kube_watch.c).
 *
 * Secrets: the token goes to lib/http as a bearer (libcurl's
 * CURLOPT_XOAUTH2_BEARER), so no Authorization header string of ours
 * exists to be logged; every message built from server text is scrubbed of the
 * token before it leaves (cep_kube_scrub).
 */
#define _GNU_SOURCE
#include "kube_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "http.h"
#include "log.h"
#include "clock.h"
#include "files.h"
#include "util.h"

#define KUBE_TOKEN_MAX (64 * 1024)

cep_kube *cep_kube_alloc(void)
{
	if (cep_http_global_init(NULL) != CEP_OK)
		return NULL;
	cep_kube *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return NULL;
	pthread_mutex_init(&k->mu, NULL);
	atomic_store(&k->timeout_ms, 10000);
	atomic_store(&k->attempts, 5);
	return k;
}

void cep_kube_blob_free(kube_blob *b)
{
	if (b->data != NULL) {
		explicit_bzero(b->data, b->len);
		free(b->data);
	}
	b->data = NULL;
	b->len = 0;
}

void cep_kube_free(cep_kube *k)
{
	if (k == NULL)
		return;
	cep_kube_blob_free(&k->ca);
	cep_kube_blob_free(&k->cert);
	cep_kube_blob_free(&k->key);
	cep_http_client_free(k->http);
	if (k->token != NULL) {
		explicit_bzero(k->token, strlen(k->token));
		free(k->token);
	}
	pthread_mutex_destroy(&k->mu);
	free(k);
}

void cep_kube_set_timeout(cep_kube *k, int64_t ms)
{
	atomic_store(&k->timeout_ms, ms > 0 ? ms : 10000);
}

void cep_kube_set_retries(cep_kube *k, int attempts)
{
	atomic_store(&k->attempts, attempts > 0 ? attempts : 1);
}

const char *cep_kube_server(const cep_kube *k)
{
	return k->server;
}

const char *cep_kube_namespace(const cep_kube *k)
{
	return k->ns;
}

/* ---- tokens ---------------------------------------------------------- */

static bool tok_changed(const cep_kube *k, const struct stat *st)
{
	return k->token == NULL || st->st_ino != k->tok_ino ||
	    st->st_size != k->tok_size ||
	    st->st_mtim.tv_sec != k->tok_mtime.tv_sec ||
	    st->st_mtim.tv_nsec != k->tok_mtime.tv_nsec;
}

/* Called with k->mu held. A file that vanished or became unreadable
 * keeps the last good token: kubelet swaps projected tokens by symlink
 * rename, and a request with the old token beats no request. */
static int tok_reload(cep_kube *k, cep_err *err)
{
	struct stat st;
	if (stat(k->token_file, &st) != 0) {
		if (k->token != NULL)
			return CEP_OK;
		return cep_err_errno(err, errno, k->token_file);
	}
	if (!tok_changed(k, &st))
		return CEP_OK;
	char *data = NULL;
	size_t len = 0;
	if (cep_files_read(k->token_file, KUBE_TOKEN_MAX, &data, &len, err) !=
	    CEP_OK)
		return k->token != NULL ? CEP_OK : err->code;
	while (len > 0 && isspace((unsigned char)data[len - 1]))
		data[--len] = '\0';
	if (len == 0 || strlen(data) != len) {
		explicit_bzero(data, len);
		free(data);
		return cep_err_set(err, CEP_UNAUTHENTICATED,
		    "token file %s is empty or not text", k->token_file);
	}
	if (k->token != NULL) {
		explicit_bzero(k->token, strlen(k->token));
		free(k->token);
	}
	k->token = data;
	k->tok_ino = st.st_ino;
	k->tok_size = st.st_size;
	k->tok_mtime = st.st_mtim;
	return CEP_OK;
}

int cep_kube_token(cep_kube *k, char *buf, size_t len, cep_err *err)
{
	int rc = CEP_OK;
	pthread_mutex_lock(&k->mu);
	if (k->token_file[0] != '\0')
		rc = tok_reload(k, err);
	if (rc == CEP_OK && buf != NULL) {
		size_t n = k->token ? strlen(k->token) : 0;
		if (n >= len)
			rc = cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "bearer token longer than %zu bytes", len - 1);
		else if (n > 0)
			memcpy(buf, k->token, n + 1);
		else
			buf[0] = '\0';
	}
	pthread_mutex_unlock(&k->mu);
	return rc;
}

void cep_kube_scrub(cep_kube *k, char *s, size_t len)
{
	if (k == NULL || s == NULL)
		return;
	pthread_mutex_lock(&k->mu);
	cep_http_scrub(s, len, k->token);
	pthread_mutex_unlock(&k->mu);
}

/* ---- small helpers ---------------------------------------------------- */

int cep_kube_query_add(char *buf, size_t len, const char *key, const char *val,
    cep_err *err)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(buf);
	size_t need = n + strlen(key) + 2 + 3 * strlen(val) + 1;
	if (need > len)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "query parameter %s too long", key);
	if (n > 0)
		buf[n++] = '&';
	size_t kl = strlen(key);
	memcpy(buf + n, key, kl);
	n += kl;
	buf[n++] = '=';
	for (const unsigned char *p = (const unsigned char *)val; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' ||
		    *p == '~') {
			buf[n++] = (char)*p;
		} else {
			buf[n++] = '%';
			buf[n++] = hex[*p >> 4];
			buf[n++] = hex[*p & 15];
		}
	}
	buf[n] = '\0';
	return CEP_OK;
}

int64_t cep_kube_backoff_ms(int n)
{
	int64_t ms = KUBE_BACKOFF_MIN_MS;
	for (int i = 0; i < n && ms < KUBE_BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > KUBE_BACKOFF_MAX_MS)
		ms = KUBE_BACKOFF_MAX_MS;
	uint32_t r = 0;
	cep_util_random(&r, sizeof(r), NULL);
	/* +-25%: clients that failed together must not retry together */
	return ms * 3 / 4 + (int64_t)(r % (uint32_t)(ms / 2 + 1));
}

int cep_kube_url(cep_kube *k, const char *path, const char *query, char *buf,
    size_t len, cep_err *err)
{
	if (path == NULL || path[0] != '/')
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "request path must start with '/'");
	const char *host = k->tls_server_name[0] ? k->tls_server_name : k->host;
	bool q = query != NULL && query[0] != '\0';
	return cep_files_path(buf, len, err, "https://%s:%d%s%s%s%s", host,
	    k->port, k->prefix, path, q ? "?" : "", q ? query : "");
}

/* ---- the HTTP client ------------------------------------------------------ */

/* Made at the first request (the loaders fill the handle field by field)
 * and kept for the handle's life: connections and TLS sessions are
 * reused across calls to this cluster. */
cep_http_client *cep_kube_client(cep_kube *k, cep_err *err)
{
	pthread_mutex_lock(&k->mu);
	if (k->http == NULL) {
		char map[600] = "";
		/* The URL names tls-server-name (SNI and certificate check);
		 * CONNECT_TO sends the connection to the real address. */
		if (k->tls_server_name[0] != '\0')
			snprintf(map, sizeof(map), "%s:%d:%s:%d",
			    k->tls_server_name, k->port, k->host, k->port);
		/* proxy "" = none, even if https_proxy is in the environment:
		 * the route to a cluster is the connector's decision */
		cep_http_client_opts o = {.insecure = k->insecure,
		    .ca = {k->ca.data, k->ca.len},
		    .cert = {k->cert.data, k->cert.len},
		    .key = {k->key.data, k->key.len},
		    .proxy = k->proxy,
		    .connect_to = map[0] ? map : NULL,
		    .accept_encoding = true};
		k->http = cep_http_client_new(&o);
	}
	cep_http_client *c = k->http;
	pthread_mutex_unlock(&k->mu);
	if (c == NULL)
		cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory");
	return c;
}

void cep_kube_http_stats(cep_kube *k, uint64_t *calls, uint64_t *connects)
{
	*calls = *connects = 0;
	pthread_mutex_lock(&k->mu);
	cep_http_client *c = k->http;
	pthread_mutex_unlock(&k->mu);
	if (c != NULL)
		cep_http_client_stats(c, calls, connects);
}

/* The bearer token, if any, for one request (""), in a buffer the caller
 * wipes and frees with cep_kube_bearer_free. */
char *cep_kube_bearer(cep_kube *k, cep_err *err)
{
	char *tok = malloc(KUBE_TOKEN_MAX);
	if (tok == NULL) {
		cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory");
		return NULL;
	}
	if (cep_kube_token(k, tok, KUBE_TOKEN_MAX, err) != CEP_OK) {
		cep_kube_bearer_free(tok);
		return NULL;
	}
	return tok;
}

void cep_kube_bearer_free(char *tok)
{
	if (tok == NULL)
		return;
	explicit_bzero(tok, KUBE_TOKEN_MAX);
	free(tok);
}

/* Accept, and Host when tls-server-name stands in the URL (host holds
 * the line). NULL-terminated. */
void cep_kube_headers(const cep_kube *k, const char *hdrs[3], char host[300])
{
	hdrs[0] = "Accept: application/json";
	hdrs[1] = hdrs[2] = NULL;
	if (k->tls_server_name[0] != '\0') {
		snprintf(host, 300, "Host: %s:%d", k->host, k->port);
		hdrs[1] = host;
	}
}

/* ---- one attempt ---------------------------------------------------------- */

struct call {
	cep_kube *k;
	const char *method, *url, *body, *ctype, *what;
	size_t blen;
};

/* One HTTP exchange; its outcome in *res (code -1 with err set when it
 * could not be made). */
static void attempt(const struct call *c, int64_t tmo, cep_http_resp *r,
    cep_http_result *res, cep_err *err)
{
	*res = (cep_http_result){.code = CEP_HTTP_NO_HANDLE};
	cep_http_client *hc = cep_kube_client(c->k, err);
	char *tok = hc != NULL ? cep_kube_bearer(c->k, err) : NULL;
	if (tok == NULL)
		return;
	const char *hdrs[4];
	char host[300], ct[128];
	cep_kube_headers(c->k, hdrs, host);
	if (c->body != NULL) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", c->ctype);
		hdrs[hdrs[1] != NULL ? 2 : 1] = ct;
	}
	hdrs[3] = NULL;
	cep_http_request rq = {.method = c->method,
	    .url = c->url,
	    .headers = hdrs,
	    .body = c->body,
	    .blen = c->blen,
	    .bearer = tok,
	    .timeout_ms = tmo > 0 ? tmo : 1,
	    .resp = r};
	cep_http_client_do(hc, &rq, res);
	cep_kube_bearer_free(tok);
	if (res->code == CEP_HTTP_NO_HANDLE)
		cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "curl_easy_init failed");
}

static bool transport_retryable(int cc, const char *method)
{
	cep_http_fail f = cep_http_fail_of(cc);
	if (f == CEP_HTTP_FAIL_CONNECT)
		return true;
	/* the request may have been applied: only retry what is safe to
	 * repeat (a repeated create would turn into 409) */
	if (strcmp(method, "POST") == 0)
		return false;
	return f == CEP_HTTP_FAIL_IO || f == CEP_HTTP_FAIL_PARTIAL;
}

static bool http_retryable(long http)
{
	return http == 429 || http == 500 || http == 502 || http == 503 ||
	    http == 504;
}

/* Runs one attempt and classifies it: CEP_OK with a decoded body, or an
 * error in err with *retry telling whether another attempt may help. */
static int one(const struct call *c, int64_t tmo, long *http, json_t **out,
    bool *retry, int64_t *ra_ms, cep_err *err)
{
	cep_http_resp r = {.max = KUBE_MAX_BODY, .retry_after_ms = -1};
	cep_http_result res;
	attempt(c, tmo, &r, &res, err);
	int cc = res.code, rc;
	*http = res.status;
	*retry = false;
	*ra_ms = r.retry_after_ms;
	if (cc == CEP_HTTP_NO_HANDLE) {
		rc = err->code;
	} else if (r.over) {
		rc = cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "%s: response larger than %u MiB", c->what,
		    KUBE_MAX_BODY >> 20);
	} else if (cc != 0) {
		rc = cep_http_curl_err(err, cc, c->what, res.error, tmo);
		*retry = transport_retryable(cc, c->method);
	} else if (*http < 200 || *http > 299) {
		rc = cep_kube_http_err(c->k, err, *http, r.buf, r.len, c->what);
		*retry = http_retryable(*http);
	} else {
		rc = CEP_OK;
		if (out != NULL) {
			json_error_t je;
			*out = r.len ? json_loadb(r.buf, r.len, 0, &je) :
			               json_object();
			if (*out == NULL)
				rc = cep_err_set(err, CEP_UNAVAILABLE,
				    "%s: %ld answer is not JSON: %s", c->what,
				    *http, je.text);
		}
	}
	free(r.buf);
	return rc;
}

int cep_kube_request(cep_kube *k, const cep_kube_req *req, long *http,
    json_t **out, cep_err *err)
{
	char url[KUBE_PATH_MAX + 1024];
	cep_err scratch;
	if (err == NULL)
		err = &scratch;
	if (out != NULL)
		*out = NULL;
	const char *what = req->what ? req->what : req->path;
	if (cep_kube_url(k, req->path, req->query, url, sizeof(url), err) !=
	    CEP_OK)
		return cep_err_wrap(err, "%s", what);
	const char *ctype = req->content_type;
	struct call c = {.k = k,
	    .method = req->method,
	    .url = url,
	    .what = what,
	    .ctype = ctype ? ctype : "application/json"};
	char *txt = NULL;
	if (req->body != NULL) {
		txt = json_dumps(req->body, JSON_COMPACT);
		if (txt == NULL)
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "%s: body cannot be encoded as JSON", what);
		c.body = txt;
		c.blen = strlen(txt);
	}
	int64_t tmo = atomic_load(&k->timeout_ms);
	int attempts = atomic_load(&k->attempts);
	int64_t deadline = cep_clock_mono_ms() + tmo;
	long code = 0;
	bool unsure = false; /* an earlier create attempt may have landed */
	int rc;
	for (int n = 0;; n++) {
		bool retry;
		int64_t ra, left = deadline - cep_clock_mono_ms();
		if (left <= 0) {
			rc = cep_err_set(err, CEP_DEADLINE_EXCEEDED,
			    "%s: no answer within %lld ms", what,
			    (long long)tmo);
			break;
		}
		rc = one(&c, left, &code, out, &retry, &ra, err);
		if (rc == CEP_ALREADY_EXISTS && unsure) {
			size_t l = strlen(err->msg);
			snprintf(err->msg + l, sizeof(err->msg) - l,
			    " (an "
			    "earlier attempt that met a server error may have "
			    "created it)");
		}
		if (rc == CEP_OK || !retry || n + 1 >= attempts)
			break;
		unsure = unsure ||
		    (strcmp(req->method, "POST") == 0 && code >= 500);
		int64_t wait = ra >= 0 ? ra : cep_kube_backoff_ms(n);
		if (cep_clock_mono_ms() + wait >= deadline)
			break; /* the last error says more than a timeout */
		cep_log_debug(NULL,
		    "kube: %s: attempt %d failed (%s), retrying "
		    "in %lld ms",
		    what, n + 1, err->msg, (long long)wait);
		cep_clock_sleep_ms(wait);
	}
	free(txt);
	if (http != NULL)
		*http = code;
	return rc;
}
