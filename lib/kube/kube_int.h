/*
 * kube_int.h - what the lib/kube/kube_*.c files share, and the internal entry
 * points the tests and fuzzers call. Not a public contract: connectors,
 * executors and the runner use kube.h only.
 */
#ifndef CEP_KUBE_INT_H
#define CEP_KUBE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "http.h"
#include "kube.h"

#define KUBE_MAX_BODY (64u * 1024u * 1024u) /* any non-watch response */
#define KUBE_MAX_WATCH_LINE (1024u * 1024u) /* one watch event */
#define KUBE_MAX_FILE (1024u * 1024u)       /* kubeconfig, CA, cert, key */
#define KUBE_PATH_MAX 2048
#define KUBE_BACKOFF_MIN_MS 200
#define KUBE_BACKOFF_MAX_MS 5000

/* A PEM (or any) blob handed to libcurl in memory. */
typedef struct kube_blob {
	char *data;
	size_t len;
} kube_blob;

struct cep_kube {
	char server[1024]; /* https://host:port[/prefix], no '/' end */
	char host[256];    /* as in a URL: IPv6 in brackets */
	int port;
	char prefix[512]; /* path before /api, "" or "/x/y" */
	char ns[254];
	char tls_server_name[256]; /* "" = the server's host */
	char proxy[1024];          /* "" = no proxy at all */
	bool insecure;
	kube_blob ca, cert, key; /* ca.len 0 = the system CAs */

	/* Bearer token: static, or re-read from token_file when its
	 * mtime/size/inode change (projected tokens rotate). */
	pthread_mutex_t mu;
	char *token;           /* NULL = none; wiped on free */
	char token_file[1024]; /* "" = static token */
	struct timespec tok_mtime;
	off_t tok_size;
	ino_t tok_ino;

	_Atomic int64_t timeout_ms;
	atomic_int attempts;
	cep_http_client *http; /* under mu; made at the first call */
};

/* kube.c */
cep_kube *cep_kube_alloc(void);
void cep_kube_blob_free(kube_blob *b);
/* Copies the current token into buf (buf NULL: only (re)load it),
 * re-reading a token file that changed. "" when the handle has none. */
int cep_kube_token(cep_kube *k, char *buf, size_t len, cep_err *err);
/* Replaces every occurrence of the handle's token in s by "[redacted]":
 * the last line of defence for messages built from server text. */
void cep_kube_scrub(cep_kube *k, char *s, size_t len);
/* Percent-encodes s (RFC 3986 unreserved kept) and appends "key=value"
 * (with '&' when buf is not empty). */
int cep_kube_query_add(char *buf, size_t len, const char *key, const char *val,
    cep_err *err);
/* Backoff for attempt n (0-based): 200 ms doubling to 5 s, +-25% jitter. */
int64_t cep_kube_backoff_ms(int n);
/* The handle's HTTP client, made at the first call (NULL with err set
 * without memory). */
cep_http_client *cep_kube_client(cep_kube *k, cep_err *err);
/* The current bearer token ("" none) in a buffer for one request; NULL
 * with err set. Wiped and freed by cep_kube_bearer_free. */
char *cep_kube_bearer(cep_kube *k, cep_err *err);
void cep_kube_bearer_free(char *tok);
/* The request headers every call sends (Accept; Host with
 * tls-server-name, its line in host): NULL-terminated in hdrs. */
void cep_kube_headers(const cep_kube *k, const char *hdrs[3], char host[300]);
int cep_kube_url(cep_kube *k, const char *path, const char *query, char *buf,
    size_t len, cep_err *err);
/* kube_status.c. */
/* Sets err from a non-2xx response body (any bytes). */
int cep_kube_http_err(cep_kube *k, cep_err *err, long http, const char *body,
    size_t len, const char *what);

/* kube_config.c */
int cep_kube_from_kubeconfig_text(const char *text, size_t len,
    const char *fname, const char *dir, const char *context,
    bool allow_insecure, cep_kube **out, cep_err *err);
/* cep_kube_in_cluster with the service-account folder as a parameter:
 * tests point it at a temp dir. */
int cep_kube_in_cluster_dir(const char *sa_dir, cep_kube **out, cep_err *err);
/* base64 (standard alphabet, padding optional, whitespace ignored). */
int cep_kube_b64_decode(const char *in, kube_blob *out);

/* kube_watch.c: one watch stream line -> type and object. Returns 0 and
 * sets *type ("ADDED"...) and *obj (borrowed from *ev, which the caller
 * json_decref's), or an INVALID_ARGUMENT error. */
int cep_kube_watch_event_parse(const char *line, size_t len, json_t **ev,
    const char **type, json_t **obj, cep_err *err);

/* One watch: what it asks for, the objects it has seen, and the stream
 * in progress (kube_watch.c). */
struct watch {
	cep_kube *k;
	const cep_kube_res *r;
	const char *ns;
	const cep_kube_list_opts *o;
	cep_kube_watch_fn fn;
	void *arg;
	const char *what;
	json_t *known; /* "ns/name" -> last object seen */
	char rv[128];
	/* one stream */
	char *line;
	size_t len, cap;
	char *ebody; /* a non-200 answer's body */
	size_t elen;
	long http;
	int events;
	bool stop_fn, relist, failed;
	cep_err serr; /* why the stream was aborted */
};
/* The stream's CURLOPT_WRITEFUNCTION (arg: a struct watch): splits the
 * bytes into lines and handles each event; a non-200 answer's body is
 * kept (bounded) for the message. 0 aborts the stream. */
size_t cep_kube_watch_on_stream(char *p, size_t sz, size_t n, void *arg);
/* A list page's items appended to all, each given the kind and
 * apiVersion of r when it has none. */
void cep_kube_list_append_items(json_t *all, json_t *page,
    const cep_kube_res *r);

#endif
