/*
 * kube.c - the Kubernetes client's transport: the handle, one libcurl easy
 * handle per call, bearer tokens (rotating token files), the request loop
 * with its deadline and retries (429/5xx/transport, backoff or the
 * server's Retry-After).
 *
 * Not here: kubeconfig/in-cluster loading (kube_config.c), Status and
 * curl failures -> cep_err (kube_status.c), resource paths and the typed
 * verbs (kube_res.c), list and watch (kube_watch.c).
 *
 * Secrets: the token goes to libcurl as CURLOPT_XOAUTH2_BEARER, so no
 * Authorization header string of ours exists to be logged; CURLOPT_VERBOSE
 * is never set; every message built from server text is scrubbed of the
 * token before it leaves (cep_kube_scrub).
 */
#define _GNU_SOURCE
#include "kube_int.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "http.h"
#include "log.h"
#include "util.h"

#define KUBE_TOKEN_MAX (64 * 1024)

cep_kube *kube_alloc(void)
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

void kube_blob_free(kube_blob *b)
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
	kube_blob_free(&k->ca);
	kube_blob_free(&k->cert);
	kube_blob_free(&k->key);
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
	if (cep_read_file(k->token_file, KUBE_TOKEN_MAX, &data, &len, err) !=
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

int kube_token(cep_kube *k, char *buf, size_t len, cep_err *err)
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
	cep_random(&r, sizeof(r), NULL);
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
	return cep_path(buf, len, err, "https://%s:%d%s%s%s%s", host, k->port,
	    k->prefix, path, q ? "?" : "", q ? query : "");
}

/* ---- curl ----------------------------------------------------------------- */

static void set_blob(CURL *c, CURLoption opt, const kube_blob *b)
{
	/* NOCOPY: the handle outlives every transfer, and a key copied by
	 * libcurl would be freed without being wiped. */
	struct curl_blob blob = {.data = b->data,
	    .len = b->len,
	    .flags = CURL_BLOB_NOCOPY};
	curl_easy_setopt(c, opt, &blob);
}

static int set_tls(cep_kube *k, CURL *c, cep_err *err)
{
	if (k->insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (k->ca.len > 0) {
		set_blob(c, CURLOPT_CAINFO_BLOB, &k->ca);
	}
	if (k->cert.len > 0) {
		curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
		set_blob(c, CURLOPT_SSLCERT_BLOB, &k->cert);
		curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
		set_blob(c, CURLOPT_SSLKEY_BLOB, &k->key);
	}
	if (k->tls_server_name[0] != '\0') {
		/* The URL names tls-server-name (SNI and certificate check);
		 * CONNECT_TO sends the connection to the real address. */
		char map[600];
		if (cep_path(map, sizeof(map), err, "%s:%d:%s:%d",
		        k->tls_server_name, k->port, k->host,
		        k->port) != CEP_OK)
			return err->code;
		struct curl_slist *l = curl_slist_append(NULL, map);
		if (l == NULL)
			return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
			    "out of memory");
		curl_easy_setopt(c, CURLOPT_CONNECT_TO, l);
		/* freed with the header list by the caller: stash it there */
		curl_easy_setopt(c, CURLOPT_PRIVATE, l);
	}
	return CEP_OK;
}

/* The bearer token, if any, straight from the handle into libcurl (which
 * keeps its own copy); ours is wiped at once. */
static int set_token(cep_kube *k, CURL *c, cep_err *err)
{
	char *tok = malloc(KUBE_TOKEN_MAX);
	if (tok == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	int rc = kube_token(k, tok, KUBE_TOKEN_MAX, err);
	if (rc == CEP_OK && tok[0] != '\0') {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, tok);
	}
	explicit_bzero(tok, KUBE_TOKEN_MAX);
	free(tok);
	return rc;
}

void *cep_kube_easy(cep_kube *k, const char *url, struct curl_slist **hdrs,
    cep_err *err)
{
	*hdrs = NULL;
	CURL *c = curl_easy_init();
	if (c == NULL) {
		cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "curl_easy_init failed");
		return NULL;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	/* "" = no proxy, even if https_proxy is in the environment: the
	 * route to a cluster is the connector's decision (proxy-url). */
	curl_easy_setopt(c, CURLOPT_PROXY, k->proxy);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "cep/" CEP_VERSION);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	if (set_tls(k, c, err) != CEP_OK || set_token(k, c, err) != CEP_OK) {
		cep_kube_easy_done(c, NULL);
		return NULL;
	}
	struct curl_slist *h = curl_slist_append(NULL,
	    "Accept: application/json");
	if (h != NULL && k->tls_server_name[0] != '\0') {
		char host[300];
		snprintf(host, sizeof(host), "Host: %s:%d", k->host, k->port);
		struct curl_slist *h2 = curl_slist_append(h, host);
		h = h2 ? h2 : h;
	}
	*hdrs = h;
	return c;
}

void cep_kube_easy_done(void *easy, struct curl_slist *hdrs)
{
	CURL *c = easy;
	void *connect_to = NULL;
	curl_easy_getinfo(c, CURLINFO_PRIVATE, (char **)&connect_to);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	curl_slist_free_all(connect_to);
}

/* ---- one attempt ---------------------------------------------------------- */

struct call {
	cep_kube *k;
	const char *method, *url, *body, *ctype, *what;
	size_t blen;
};

/* One HTTP exchange. Returns CURLcode; fills *http and r. */
static int attempt(const struct call *c, int64_t tmo, long *http,
    cep_http_resp *r, char *ebuf, cep_err *err)
{
	struct curl_slist *h = NULL;
	CURL *e = cep_kube_easy(c->k, c->url, &h, err);
	if (e == NULL)
		return -1;
	if (c->body != NULL) {
		char ct[128];
		snprintf(ct, sizeof(ct), "Content-Type: %s", c->ctype);
		struct curl_slist *h2 = curl_slist_append(h, ct);
		h = h2 ? h2 : h;
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)c->blen);
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->method);
	if (strcmp(c->method, "HEAD") == 0)
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(tmo > 0 ? tmo : 1));
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, cep_http_on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, cep_http_on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ebuf);
	CURLcode cc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, http);
	cep_kube_easy_done(e, h);
	return (int)cc;
}

static bool transport_retryable(int cc, const char *method)
{
	if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
	    cc == CURLE_COULDNT_RESOLVE_PROXY)
		return true;
	/* the request may have been applied: only retry what is safe to
	 * repeat (a repeated create would turn into 409) */
	if (strcmp(method, "POST") == 0)
		return false;
	return cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR ||
	    cc == CURLE_GOT_NOTHING || cc == CURLE_SSL_CONNECT_ERROR ||
	    cc == CURLE_PARTIAL_FILE;
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
	char ebuf[CURL_ERROR_SIZE] = "";
	*http = 0;
	int cc = attempt(c, tmo, http, &r, ebuf, err);
	int rc;
	*retry = false;
	*ra_ms = r.retry_after_ms;
	if (cc < 0) {
		rc = err->code;
	} else if (r.over) {
		rc = cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "%s: response larger than %u MiB", c->what,
		    KUBE_MAX_BODY >> 20);
	} else if (cc != CURLE_OK) {
		rc = cep_http_curl_err(err, cc, c->what, ebuf, tmo);
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
	int64_t deadline = cep_mono_ms() + tmo;
	long code = 0;
	bool unsure = false; /* an earlier create attempt may have landed */
	int rc;
	for (int n = 0;; n++) {
		bool retry;
		int64_t ra, left = deadline - cep_mono_ms();
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
		if (cep_mono_ms() + wait >= deadline)
			break; /* the last error says more than a timeout */
		cep_log_debug(NULL,
		    "kube: %s: attempt %d failed (%s), retrying "
		    "in %lld ms",
		    what, n + 1, err->msg, (long long)wait);
		cep_sleep_ms(wait);
	}
	free(txt);
	if (http != NULL)
		*http = code;
	return rc;
}
