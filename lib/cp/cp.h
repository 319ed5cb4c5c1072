/*
 * cp.h - the appliance's client of the control plane: protobuf calls over
 * HTTPS (libcurl), outbound only, through the site's proxy if it has one,
 * to allowlisted hosts only (docs/control-plane-api.md).
 *
 * One cep_cp is one control plane with one identity (client certificate or
 * bearer token). It is safe to use from several threads at once: each call
 * takes its own curl easy handle, so the delegate's long-poll for tasks
 * does not hold up its heartbeat, nor the relay's upload its command watch.
 *
 * A call is
 *     POST <url>/v1/cep.v1.ControlPlane/<Method>
 *     Content-Type: application/x-protobuf
 * answered 200 with the reply message. Nothing is retried inside a call:
 * the caller owns its retry loop (it knows whether waiting is right) and
 * gets the server's Retry-After with the error.
 *
 * Errors: HTTP 400 INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403
 * PERMISSION_DENIED, 404 NOT_FOUND, 409 ABORTED, 413 RESOURCE_EXHAUSTED,
 * 429 RESOURCE_EXHAUSTED, 5xx / connect / TLS / proxy failures UNAVAILABLE,
 * timeouts DEADLINE_EXCEEDED; a 200 whose body is not the reply message
 * (wrong content type, truncated, undecodable, over the size cap) is
 * DATA_LOSS. The message names the method, the host and what was wrong;
 * it never holds the token. A host outside the allowlist is refused
 * PERMISSION_DENIED before anything is sent, and logged.
 */
#ifndef CEP_CP_H
#define CEP_CP_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CEP_CP_MAX_ALLOW 16
#define CEP_CP_MAX_REPLY (8u * 1024u * 1024u) /* bytes of one reply */

typedef struct cep_cp cep_cp;

/* The control-plane section of cep.yaml (docs/configuration.md). */
typedef struct cep_cp_opts {
	char url[512];         /* https://host[:port][/prefix]; "" = none */
	char ca_file[4096];    /* the plane's CA bundle; "" = system CAs */
	char cert_file[4096];  /* client certificate (PEM) ... */
	char key_file[4096];   /* ... and its key, or: */
	char token_file[4096]; /* bearer token, re-read at each call */
	char proxy[512];    /* http://host:port of the site proxy; "" direct */
	char no_proxy[512]; /* comma-separated hosts reached directly */
	size_t n_allow;     /* 0: the url's host only */
	char allow[CEP_CP_MAX_ALLOW][256];
	int timeout_ms;          /* per call, long-polls add their wait */
	int poll_wait_ms;        /* long-poll wait asked of the plane */
	int64_t spool_max_bytes; /* the relay's spool bound */
	/* In-memory client identity (PEM), instead of cert_file/key_file:
	 * the runner's per-run identity for the tunnel. Not copied: must
	 * outlive every call. Never set from cep.yaml. */
	const char *cert_pem, *key_pem;
} cep_cp_opts;

void cep_cp_opts_defaults(cep_cp_opts *o);

/* Checks the options (https URL, files readable, key and token files
 * secrets by lib/base/secret.h's rule, url host in the allowlist) and
 * prepares the client; the client key and certificate are read here, once,
 * and go to libcurl from memory. */
int cep_cp_new(const cep_cp_opts *o, cep_cp **out, cep_err *err);
void cep_cp_free(cep_cp *cp);

/* method is the bare name ("Heartbeat"). *reply is unpacked with rdesc
 * and is the caller's to free with protobuf_c_message_free_unpacked.
 * timeout_ms 0 = the client's default. On failure *retry_after_ms (if not
 * NULL) holds the server's Retry-After, 0 if it sent none. */
int cep_cp_call(cep_cp *cp, const char *method, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **reply,
    int timeout_ms, int64_t *retry_after_ms, cep_err *err);

/* The runner's fallback transport (docs/runner.md, "Tunnel"): one RPC
 * Envelope (frame, len) as
 *     POST <url>/v1/tunnel/<method>      (method: "cep.v1.Runner/Prove")
 *     X-Cep-Tunnel-Session: <session>
 * answered 200 with the reply Envelope, returned in *out (malloc'd, the
 * caller frees; at most CEP_CP_MAX_REPLY bytes). Errors as cep_cp_call:
 * they come from the plane or the path to it, never from the relay. */
typedef struct cep_cp_tunnel_req {
	const char *method;   /* "cep.v1.Runner/Prove" */
	const char *session;  /* lowercase hex, at most 64 */
	const uint8_t *frame; /* the Envelope */
	size_t len;
	int timeout_ms; /* <= 0: the client's */
} cep_cp_tunnel_req;
int cep_cp_tunnel(cep_cp *cp, const cep_cp_tunnel_req *req, uint8_t **out,
    size_t *out_len, cep_err *err);

/* Ends every call in flight and every later one with CANCELLED: the
 * owner is stopping and must not wait out a long-poll. */
void cep_cp_cancel(cep_cp *cp);

/* The host[:port] calls go to, for logs and metrics. */
const char *cep_cp_host(const cep_cp *cp);

/* Whether host may be contacted (exact, case-insensitive, or a pattern
 * ".suffix" matching any subdomain). Exposed for tests and cepctl. */
bool cep_cp_allowed(const cep_cp *cp, const char *host);

#endif
