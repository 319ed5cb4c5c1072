/*
 * http.h - the only libcurl setup. What every libcurl client shares (the
 * Kubernetes client, the control-plane client): curl_global_init once, a
 * response body with a size cap, Retry-After, server text made safe for
 * logs, and a libcurl failure as a cep_err; the clients keep their own
 * protocol logic. Every request goes through a client (client.c), which
 * keeps connections and TLS sessions per endpoint. A client with no
 * protocol of its own (the runner's http and prometheus probes) makes its
 * one request with cep_http_fetch (fetch.c). No file outside lib/http
 * includes <curl/curl.h> (scripts/checksrc.sh). libcurl is loaded on first
 * use (curl_lazy.c); when it cannot be, cep_http_global_init says why.
 */
#ifndef CEP_HTTP_H
#define CEP_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* curl_global_init, once per process (it is not thread-safe itself). */
int cep_http_global_init(cep_err *err);

/* A response being received. Set max (bytes) and retry_after_ms = -1
 * before the transfer; hand the struct to both callbacks below. */
typedef struct cep_http_resp {
	char *buf; /* NUL-terminated; the caller frees */
	size_t len, cap, max;
	/* past max: false, the transfer is aborted (over); true, the first
	 * max bytes are kept and the rest read and dropped */
	bool truncate;
	bool over; /* the body passed max: transfer aborted */
	bool oom;
	int64_t retry_after_ms; /* Retry-After in seconds, as ms; -1 none */
} cep_http_resp;

/* CURLOPT_WRITEFUNCTION: appends, aborting the transfer past max. */
size_t cep_http_on_body(char *p, size_t sz, size_t n, void *arg);
/* CURLOPT_HEADERFUNCTION: reads Retry-After (delta-seconds, <= 1 h). */
size_t cep_http_on_header(char *p, size_t sz, size_t n, void *arg);

/* Copies at most n bytes of src (stops at NUL) with control characters
 * blanked: server text reaches logs and terminals. */
void cep_http_clean(char *dst, size_t len, const char *src, size_t n);

/* Replaces every occurrence of secret (>= 4 bytes) in s (a buffer of len
 * bytes) by "[redacted]": the last line of defence for messages built
 * from server text, which may echo a token back. */
void cep_http_scrub(char *s, size_t len, const char *secret);

/* A transfer failure (CURLcode) as a cep error prefixed by what; detail
 * is curl's error buffer ("" = curl_easy_strerror). */
int cep_http_curl_err(cep_err *err, int code, const char *what,
    const char *detail, int64_t timeout_ms);

/* One plain request (fetch.c): http/https only, redirects not followed
 * (a 302 is an answer), no proxy for loopback, no signals. */
typedef struct cep_http_fetch_opts {
	const char *url;
	const char *method;     /* NULL or "GET", "HEAD", "POST", or custom */
	const char *body;       /* POST's body (NULL: empty) */
	const char *user_agent; /* NULL: none */
	int64_t timeout_ms;     /* the whole exchange */
	size_t max;             /* body bytes kept */
	bool truncate;          /* as in cep_http_resp */
	/* polled during the transfer (NULL: never): true aborts it */
	bool (*cancelled)(const void *arg);
	const void *arg;
} cep_http_fetch_opts;

#define CEP_HTTP_ERROR_MAX 256

typedef struct cep_http_reply {
	long status;         /* the HTTP status; 0 without an answer */
	uint32_t latency_ms; /* the whole exchange, as far as it went */
	cep_http_resp body;  /* body.buf is never NULL after a fetch */
	/* why the transfer failed: libcurl's specific message, else its
	 * generic one. Server text is not in it. */
	char error[CEP_HTTP_ERROR_MAX];
} cep_http_reply;

/* CEP_OK with an answer (whatever its status) in *r, else CEP_UNAVAILABLE
 * (CEP_RESOURCE_EXHAUSTED without memory) with r->error set and
 * r->body.over if the body passed max. Free r with cep_http_reply_free
 * in every case. */
int cep_http_fetch(const cep_http_fetch_opts *o, cep_http_reply *r);
void cep_http_reply_free(cep_http_reply *r);

/* s percent-encoded for a URL's query (all but A-Z a-z 0-9 - . _ ~);
 * NULL without memory. free() it. */
char *cep_http_escape(const char *s);

/* ---- a client per endpoint (client.c) ------------------------------------
 * Keeps connections and TLS sessions for reuse across requests: a small
 * pool of libcurl easy handles (each keeps its own live connections; one
 * handle is used by one request at a time, so calls from several threads
 * are safe; past the pool's size a call waits for a handle rather than
 * open a connection the pool could not keep) over one share of TLS sessions and DNS answers (a new
 * connection resumes the session). HTTP/2 when the server offers it. */
typedef struct cep_http_client cep_http_client;

/* Bytes in memory (PEM), borrowed: they must outlive the client, and
 * libcurl reads them in place (no second copy of a key in its heap). */
typedef struct cep_http_blob {
	const void *data;
	size_t len;
} cep_http_blob;

typedef struct cep_http_client_opts {
	const char *protocols;      /* NULL: "https" */
	bool insecure;              /* no certificate or host check */
	cep_http_blob ca;           /* len 0: ca_file, else the system CAs */
	const char *ca_file;        /* NULL/"": none; set: this CA only */
	cep_http_blob cert, key;    /* client certificate and key (PEM) */
	const char *proxy;          /* NULL: libcurl's default; "": direct */
	const char *no_proxy;       /* NULL: not set */
	bool proxy_tunnel;          /* CONNECT through the proxy */
	const char *connect_to;     /* "host:port:host2:port2" or NULL */
	bool accept_encoding;       /* ask for any encoding libcurl decodes */
	int64_t connect_timeout_ms; /* 0: libcurl's */
	/* handles kept, and requests at once (streams apart): one more
	 * waits for a handle to come back; 0: 8 */
	unsigned pool_max;
} cep_http_client_opts;

/* Copies the strings of o (not the blobs). NULL without memory, or when
 * curl_global_init failed. */
cep_http_client *cep_http_client_new(const cep_http_client_opts *o);
void cep_http_client_free(cep_http_client *c);

typedef size_t (*cep_http_data_fn)(char *p, size_t sz, size_t n, void *arg);

typedef struct cep_http_request {
	const char *method; /* NULL: GET; HEAD sends no body back */
	const char *url;
	const char *const *headers; /* NULL-terminated, or NULL */
	const char *body;           /* NULL: none */
	size_t blen;
	const char *bearer;         /* NULL/"": no Authorization */
	int64_t timeout_ms;         /* the whole exchange; 0: none */
	int64_t connect_timeout_ms; /* 0: the client's */
	/* buffer mode: body and Retry-After into resp */
	cep_http_resp *resp;
	/* stream mode (resp NULL): bytes and header lines to these, the
	 * transfer driven until stop, deadline or its end */
	cep_http_data_fn on_data, on_header;
	void *arg;
	long low_speed_time_s;   /* stream: no byte for this long ends it */
	int64_t deadline_ms;     /* stream: cep_clock_mono_ms() limit; 0 none */
	const atomic_bool *stop; /* set: the transfer ends (cancelled) */
} cep_http_request;

#define CEP_HTTP_NO_HANDLE (-1) /* result.code: no handle (memory) */
#define CEP_HTTP_STOPPED (-2)   /* result.code: stop was set */
#define CEP_HTTP_DEADLINE (-3)  /* result.code: stream deadline passed */

typedef struct cep_http_result {
	int code;                       /* 0, a libcurl code, or CEP_HTTP_* */
	long status;                    /* the HTTP status; 0 without one */
	char ctype[128];                /* Content-Type; "" none */
	long connects;                  /* new connections (TLS handshakes) */
	char error[CEP_HTTP_ERROR_MAX]; /* libcurl's message for code */
} cep_http_result;

/* Runs one request; returns res->code (0: an answer, whatever its
 * status). */
int cep_http_client_do(cep_http_client *c, const cep_http_request *r,
    cep_http_result *res);

/* Requests made and new connections opened (each a TLS handshake) over
 * the client's life. */
void cep_http_client_stats(cep_http_client *c, uint64_t *calls,
    uint64_t *connects);

/* The same, summed over every client of the process (benchmarks). */
void cep_http_totals(uint64_t *calls, uint64_t *connects);

/* What a failed result.code means to a caller deciding on a retry. */
typedef enum cep_http_fail {
	CEP_HTTP_FAIL_NONE,    /* 0 */
	CEP_HTTP_FAIL_CONNECT, /* nothing sent: resolve/connect failed */
	CEP_HTTP_FAIL_IO,      /* send/receive/TLS setup broke */
	CEP_HTTP_FAIL_PARTIAL, /* the answer ended early */
	CEP_HTTP_FAIL_TIMEOUT,
	CEP_HTTP_FAIL_CANCELLED, /* stop set (a callback aborted) */
	CEP_HTTP_FAIL_DEADLINE,  /* CEP_HTTP_DEADLINE */
	CEP_HTTP_FAIL_OTHER,
} cep_http_fail;
cep_http_fail cep_http_fail_of(int code);

/* Splits an http(s) URL with libcurl's own parser, so that what is
 * checked is what libcurl connects to: host (no brackets) and host[:port]
 * as written. scheme must match ("http" also takes https). No user name
 * or password allowed. Messages start with what. */
int cep_http_url_parts(const char *url, const char *scheme, const char *what,
    char *host, size_t hlen, char *hostport, size_t hplen, cep_err *err);

#endif
