/*
 * client.c - a client per endpoint that keeps connections and TLS
 * sessions; see http.h.
 *
 * Why a pool of easy handles and not one shared connection cache: libcurl
 * documents CURL_LOCK_DATA_CONNECT as unsafe between concurrent threads,
 * and the delegate calls one connector from several threads. An easy
 * handle keeps its live connections across curl_easy_reset, so a handle
 * taken from the pool usually finds its connection open (no handshake);
 * TLS sessions and DNS answers are shared through a CURLSH (safe with the
 * lock callbacks), so a handle that must connect resumes a session.
 *
 * Secrets: the bearer token goes to libcurl as CURLOPT_XOAUTH2_BEARER and
 * certificates and keys as NOCOPY blobs; CURLOPT_VERBOSE is never set.
 */
#define _GNU_SOURCE
#include "http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

#define POOL_DEFAULT 8
#define STREAM_POLL_MS 200

struct cep_http_client {
	cep_http_client_opts o; /* strings below, blobs borrowed */
	char *protocols, *ca_file, *proxy, *no_proxy;
	struct curl_slist *connect_to;
	CURLSH *share;
	pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
	pthread_mutex_t mu;   /* the pool and the counters */
	pthread_cond_t freed; /* a pooled handle came back */
	CURL **idle;
	unsigned nidle;
	unsigned busy; /* pooled handles in use (streams not counted) */
	uint64_t calls, connects;
};

/* every client's calls and connections, for cep_http_totals */
static _Atomic uint64_t all_calls, all_connects;

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *arg)
{
	(void)h, (void)a;
	cep_http_client *c = arg;
	pthread_mutex_lock(&c->share_mu[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *arg)
{
	(void)h;
	cep_http_client *c = arg;
	pthread_mutex_unlock(&c->share_mu[d]);
}

static bool dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	return src == NULL || (*dst = strdup(src)) != NULL;
}

static bool setup_share(cep_http_client *c)
{
	c->share = curl_share_init();
	if (c->share == NULL)
		return false;
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE,
	    CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	return true;
}

cep_http_client *cep_http_client_new(const cep_http_client_opts *o)
{
	if (cep_http_global_init(NULL) != CEP_OK)
		return NULL;
	cep_http_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->o = *o;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->freed, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_mu[i], NULL);
	unsigned max = o->pool_max ? o->pool_max : POOL_DEFAULT;
	c->o.pool_max = max;
	bool ok = dup_opt(&c->protocols,
	              o->protocols ? o->protocols : "https") &&
	    dup_opt(&c->ca_file, o->ca_file) && dup_opt(&c->proxy, o->proxy) &&
	    dup_opt(&c->no_proxy, o->no_proxy) &&
	    (c->idle = calloc(max, sizeof(*c->idle))) != NULL && setup_share(c);
	if (ok && o->connect_to != NULL)
		ok = (c->connect_to = curl_slist_append(NULL, o->connect_to)) !=
		    NULL;
	if (!ok) {
		cep_http_client_free(c);
		return NULL;
	}
	return c;
}

void cep_http_client_free(cep_http_client *c)
{
	if (c == NULL)
		return;
	for (unsigned i = 0; i < c->nidle; i++)
		curl_easy_cleanup(c->idle[i]);
	free(c->idle);
	if (c->share != NULL)
		curl_share_cleanup(c->share);
	curl_slist_free_all(c->connect_to);
	free(c->protocols);
	free(c->ca_file);
	free(c->proxy);
	free(c->no_proxy);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_mu[i]);
	pthread_cond_destroy(&c->freed);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void cep_http_client_stats(cep_http_client *c, uint64_t *calls,
    uint64_t *connects)
{
	pthread_mutex_lock(&c->mu);
	if (calls != NULL)
		*calls = c->calls;
	if (connects != NULL)
		*connects = c->connects;
	pthread_mutex_unlock(&c->mu);
}

void cep_http_totals(uint64_t *calls, uint64_t *connects)
{
	*calls = atomic_load(&all_calls);
	*connects = atomic_load(&all_connects);
}

/* ---- the pool ------------------------------------------------------------ */

/* A stream gets a handle of its own: its connection ends with it (in the
 * stream's multi handle), and a pooled handle would come back without
 * the connection it had. Other requests share at most pool_max handles:
 * one more waits for a handle to come back rather than open a connection
 * (a TLS handshake, and an SSL_CTX libcurl builds per connection) that
 * the pool could not keep afterwards. A request holds one handle at a
 * time and never waits while holding one, so the wait ends. */
static CURL *take(cep_http_client *c, bool stream)
{
	CURL *h = NULL;
	pthread_mutex_lock(&c->mu);
	if (!stream) {
		while (c->nidle == 0 && c->busy >= c->o.pool_max)
			pthread_cond_wait(&c->freed, &c->mu);
		if (c->nidle > 0)
			h = c->idle[--c->nidle];
		c->busy++;
	}
	pthread_mutex_unlock(&c->mu);
	if (h == NULL && (h = curl_easy_init()) == NULL && !stream) {
		pthread_mutex_lock(&c->mu);
		c->busy--;
		pthread_cond_signal(&c->freed);
		pthread_mutex_unlock(&c->mu);
	}
	return h;
}

/* Back to the pool with its options cleared (its connections kept); a
 * stream's handle is closed. */
static void give_back(cep_http_client *c, CURL *h, long connects, bool stream)
{
	curl_easy_reset(h);
	pthread_mutex_lock(&c->mu);
	uint64_t n = (uint64_t)(connects > 0 ? connects : 0);
	c->calls++;
	c->connects += n;
	atomic_fetch_add(&all_calls, 1);
	atomic_fetch_add(&all_connects, n);
	if (!stream) {
		c->busy--;
		c->idle[c->nidle++] = h; /* busy + nidle <= pool_max */
		h = NULL;
		pthread_cond_signal(&c->freed);
	}
	pthread_mutex_unlock(&c->mu);
	if (h != NULL)
		curl_easy_cleanup(h);
}

/* ---- one request ----------------------------------------------------------- */

static void set_blob(CURL *h, CURLoption opt, const cep_http_blob *b)
{
	struct curl_blob blob = {.data = (void *)b->data,
	    .len = b->len,
	    .flags = CURL_BLOB_NOCOPY};
	curl_easy_setopt(h, opt, &blob);
}

static void set_tls(const cep_http_client *c, CURL *h)
{
	const cep_http_client_opts *o = &c->o;
	if (o->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (o->ca.len > 0) {
		set_blob(h, CURLOPT_CAINFO_BLOB, &o->ca);
	} else if (c->ca_file != NULL && c->ca_file[0] != '\0') {
		/* this CA only: not also the system's */
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
		curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	}
	if (o->cert.len > 0 && o->key.len > 0) {
		curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
		set_blob(h, CURLOPT_SSLCERT_BLOB, &o->cert);
		curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
		set_blob(h, CURLOPT_SSLKEY_BLOB, &o->key);
	}
}

static void set_route(const cep_http_client *c, CURL *h)
{
	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, c->protocols);
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, c->protocols);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	if (c->proxy != NULL)
		curl_easy_setopt(h, CURLOPT_PROXY, c->proxy);
	if (c->no_proxy != NULL)
		curl_easy_setopt(h, CURLOPT_NOPROXY, c->no_proxy);
	if (c->o.proxy_tunnel)
		curl_easy_setopt(h, CURLOPT_HTTPPROXYTUNNEL, 1L);
	if (c->connect_to != NULL)
		curl_easy_setopt(h, CURLOPT_CONNECT_TO, c->connect_to);
	if (c->o.accept_encoding)
		curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_USERAGENT, "cep/" CEP_VERSION);
	if (c->o.connect_timeout_ms > 0)
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
		    (long)c->o.connect_timeout_ms);
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t d,
    curl_off_t e)
{
	(void)a, (void)b, (void)d, (void)e;
	return atomic_load((const atomic_bool *)arg) ? 1 : 0;
}

static void set_body(const cep_http_request *r, CURL *h, const char *m)
{
	if (r->body != NULL) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->blen ? r->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)r->blen);
	}
	if (strcmp(m, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	else if (strcmp(m, r->body != NULL ? "POST" : "GET") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
}

static void set_request(const cep_http_request *r, CURL *h,
    struct curl_slist *hl, cep_http_result *res)
{
	curl_easy_setopt(h, CURLOPT_URL, r->url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, res->error);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	set_body(r, h, r->method != NULL ? r->method : "GET");
	if (r->bearer != NULL && r->bearer[0] != '\0') {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, r->bearer);
	}
	if (r->timeout_ms > 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
	if (r->connect_timeout_ms > 0)
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
		    (long)r->connect_timeout_ms);
	bool buffer = r->resp != NULL;
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION,
	    buffer ? cep_http_on_body : r->on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA,
	    buffer ? (void *)r->resp : r->arg);
	if (buffer || r->on_header != NULL) {
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION,
		    buffer ? cep_http_on_header : r->on_header);
		curl_easy_setopt(h, CURLOPT_HEADERDATA,
		    buffer ? (void *)r->resp : r->arg);
	}
	if (r->low_speed_time_s > 0) {
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
		    r->low_speed_time_s);
	}
	if (buffer && r->stop != NULL) {
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)r->stop);
	}
}

/* A stream: driven by a multi handle of its own, so the stop flag and the
 * deadline are looked at every STREAM_POLL_MS however quiet the stream. */
static int run_stream(CURL *h, const cep_http_request *r)
{
	CURLM *m = curl_multi_init();
	if (m == NULL)
		return CURLE_OUT_OF_MEMORY;
	curl_multi_add_handle(m, h);
	int running = 1, rc = CURLE_OK;
	while (running) {
		if (curl_multi_perform(m, &running) != CURLM_OK) {
			rc = CURLE_SEND_ERROR;
			break;
		}
		if (!running)
			break;
		if (r->stop != NULL && atomic_load(r->stop)) {
			rc = CEP_HTTP_STOPPED;
			break;
		}
		int64_t left = r->deadline_ms > 0 ?
		    r->deadline_ms - cep_clock_mono_ms() :
		    STREAM_POLL_MS;
		if (left <= 0) {
			rc = CEP_HTTP_DEADLINE;
			break;
		}
		curl_multi_poll(m, NULL, 0,
		    (int)(left < STREAM_POLL_MS ? left : STREAM_POLL_MS), NULL);
	}
	int q;
	CURLMsg *msg;
	while (rc == CURLE_OK && (msg = curl_multi_info_read(m, &q)) != NULL)
		if (msg->msg == CURLMSG_DONE)
			rc = (int)msg->data.result;
	curl_multi_remove_handle(m, h);
	curl_multi_cleanup(m);
	return rc;
}

static struct curl_slist *header_list(const char *const *hdrs)
{
	struct curl_slist *l = NULL, *l2;
	for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL; i++)
		if ((l2 = curl_slist_append(l, hdrs[i])) != NULL)
			l = l2;
	return l;
}

int cep_http_client_do(cep_http_client *c, const cep_http_request *r,
    cep_http_result *res)
{
	*res = (cep_http_result){0};
	bool stream = r->resp == NULL;
	CURL *h = take(c, stream);
	if (h == NULL) {
		snprintf(res->error, sizeof(res->error),
		    "curl_easy_init failed");
		return res->code = CEP_HTTP_NO_HANDLE;
	}
	struct curl_slist *hl = header_list(r->headers);
	set_route(c, h);
	set_tls(c, h);
	set_request(r, h, hl, res);
	if (!stream) {
		res->code = (int)curl_easy_perform(h);
		if (res->code == CURLE_ABORTED_BY_CALLBACK && r->stop != NULL &&
		    atomic_load(r->stop))
			res->code = CEP_HTTP_STOPPED;
	} else {
		res->code = run_stream(h, r);
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
	char *ct = NULL;
	if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK &&
	    ct != NULL)
		snprintf(res->ctype, sizeof(res->ctype), "%s", ct);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &res->connects);
	give_back(c, h, res->connects, stream);
	curl_slist_free_all(hl);
	return res->code;
}

cep_http_fail cep_http_fail_of(int code)
{
	switch (code) {
	case CURLE_OK: return CEP_HTTP_FAIL_NONE;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY: return CEP_HTTP_FAIL_CONNECT;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SSL_CONNECT_ERROR: return CEP_HTTP_FAIL_IO;
	case CURLE_PARTIAL_FILE: return CEP_HTTP_FAIL_PARTIAL;
	case CURLE_OPERATION_TIMEDOUT: return CEP_HTTP_FAIL_TIMEOUT;
	case CURLE_ABORTED_BY_CALLBACK:
	case CEP_HTTP_STOPPED: return CEP_HTTP_FAIL_CANCELLED;
	case CEP_HTTP_DEADLINE: return CEP_HTTP_FAIL_DEADLINE;
	default: return CEP_HTTP_FAIL_OTHER;
	}
}
