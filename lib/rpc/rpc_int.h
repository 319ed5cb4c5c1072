/*
 * rpc_int.h - private to lib/rpc/rpc_*.c (and the RPC tests and fuzzer):
 * rpc_wire.c (framing, the frame decoder) and rpc_tls.c (TLS
 * configurations, ipc socket files, pipe identities).
 */
#ifndef CEP_RPC_INT_H
#define CEP_RPC_INT_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "cep.pb-c.h"
#include "rpc.h"

#define CEP_RPC_DEFAULT_TIMEOUT_MS 30000       /* envelope timeout 0 */
#define CEP_RPC_MAX_TIMEOUT_MS (5 * 60 * 1000) /* cap on any deadline */
/* nng drops (and closes the pipe for) frames above this; between
 * CEP_RPC_MAX_MSG and this the peer still gets RESOURCE_EXHAUSTED. */
#define CEP_RPC_RECV_MAX ((size_t)2 * CEP_RPC_MAX_MSG)

/* What the server makes of one received frame, before any handler runs.
 * code != CEP_OK: the status it replies with (error holds the text);
 * call_id is 0 when the envelope itself did not decode.
 * code == CEP_OK: method found and body decoded (free with
 * cep_rpc_frame_clear), or method == &cep_rpc_ping_method and no body. */
typedef struct cep_rpc_frame {
	int code;
	char error[256];
	uint64_t call_id;
	uint32_t timeout_ms;
	const cep_rpc_method *method;
	ProtobufCMessage *body;
} cep_rpc_frame;

/* Every server answers this method itself (OK, empty body), before its
 * table: the ipc listener guard uses it to see that a listener accepts. */
#define CEP_RPC_PING_METHOD "cep.rpc/Ping"
extern const cep_rpc_method cep_rpc_ping_method;

/* Pure: no I/O, no globals. Safe on any bytes (the fuzzer's entry). */
void cep_rpc_decode_frame(const cep_rpc_method *table, size_t n,
    const uint8_t *buf, size_t len, cep_rpc_frame *out);
void cep_rpc_frame_clear(cep_rpc_frame *f);

/* rpc_gate.c: the call rate's bucket of one identity, shared by every
 * pipe bound to it (cep_rpc_call_bind_identity). */
typedef struct cep_rpc_bucket cep_rpc_bucket;

/* What the server knows of the peer on a pipe. */
typedef struct cep_rpc_pipe_info {
	uint32_t id;
	bool verified;     /* ipc, or a TLS client certificate that verified */
	char peer[64];     /* "10.0.0.5:41000", "[::1]:41000", "ipc" */
	double tokens;     /* server: the call rate's bucket (limits) */
	int64_t refill_ms; /* when tokens were last refilled */
	/* server: its identity's bucket once bound, used instead of
	 * tokens; only dereferenced under the server's lock */
	cep_rpc_bucket *bucket;
} cep_rpc_pipe_info;
void cep_rpc_pipe_query(nng_pipe p, cep_rpc_pipe_info *pi);

/* rpc_tls.c: TLS configurations from PEM text. host is the default server
 * name for a client (the URL's host) when tls->server_name is NULL. */
int cep_rpc_tls_server_config(nng_tls_config **out, const cep_rpc_tls *tls,
    cep_err *err);
int cep_rpc_tls_client_config(nng_tls_config **out, const cep_rpc_tls *tls,
    const char *host, cep_err *err);

/* "ipc:///x" -> "/x", NULL for other schemes. */
const char *cep_rpc_ipc_path(const char *url);
bool cep_rpc_url_is_tls(const char *url);
/* Creates and starts a listener: ipc:// (stale socket file removed, mode
 * 0660 before the first client can connect) or tls+tcp:// (REQUIRED client
 * certificates, or OPTIONAL with tls->client_cert_optional). */
int cep_rpc_listen(nng_socket sock, const char *url, const cep_rpc_tls *tls,
    nng_listener *out, cep_err *err);
/* Removes a stale socket file (nothing accepts on it); refuses to touch
 * a live socket or a file that is not a socket. */
int cep_rpc_ipc_prepare(const char *path, cep_err *err);

/* rpc_guard.c: nng 1.5.2's ipc transport stops accepting for good when a
 * peer closes during the SP handshake (its listener passes NNG_ECLOSED up,
 * which the socket core takes for "listener closed"; fixed in later nng).
 * The guard pings each ipc listener of a server through a fresh
 * connection twice a second and re-creates a listener that no longer
 * answers, logging it. */
typedef struct cep_rpc_guard cep_rpc_guard;
int cep_rpc_guard_new(cep_rpc_guard **out, nng_socket sock, const char *name,
    cep_err *err);
/* Watches url (ipc:// only; other schemes are ignored); l is its listener. */
int cep_rpc_guard_watch(cep_rpc_guard *g, const char *url, nng_listener l,
    cep_err *err);
uint64_t cep_rpc_guard_restarts(cep_rpc_guard *g);
void cep_rpc_guard_free(cep_rpc_guard *g); /* before the socket closes */

/* The call rate: takes a token of pi's bucket (its identity's once
 * bound, else the pipe's own; pi in the server's pipe table, under its
 * lock); false = over the rate. Always true for ipc peers and without a
 * rate (g NULL too). */
bool cep_rpc_gate_take(cep_rpc_gate *g, cep_rpc_pipe_info *pi, int64_t now);
/* Under the server's lock: pi now draws on identity's bucket (made full
 * for a new identity, shared with the pipes already bound to it); the
 * bucket it had is let go. unbind: at the pipe's end. No-ops without a
 * rate (g NULL too); out of memory keeps the pipe's own. */
void cep_rpc_gate_bind(cep_rpc_gate *g, cep_rpc_pipe_info *pi,
    const char *identity);
void cep_rpc_gate_unbind(cep_rpc_gate *g, cep_rpc_pipe_info *pi);

/* rpc_server.c: what the gate's wedge watch does (cep_rpc_gate_on_wedge):
 * closes the tls+tcp listener, with every pipe it made, and makes it
 * again on the same port. For the tests, which cannot wedge nng. */
void cep_rpc_server_relisten(cep_rpc_server *s);

/* rpc_link.c: one connection of a client, an nng req0 socket and its
 * dialer (tls NULL for ipc; the dialer takes its own reference). */
typedef struct cep_rpc_link cep_rpc_link;
int cep_rpc_link_new(cep_rpc_link **out, const char *url, nng_tls_config *tls,
    cep_err *err);
nng_socket cep_rpc_link_socket(const cep_rpc_link *l);
/* Closes and frees l. wait_ms < 0: on this thread, however long nng
 * takes; else on a detached thread, waited for at most wait_ms, or not
 * at all while an earlier close is still running (a socket nng cannot
 * close is left to that thread). True when closed. */
bool cep_rpc_link_close(cep_rpc_link *l, int wait_ms);

/* rpc_close.c: nng_close(sock) on a detached thread, waited for at most
 * wait_ms (wait_ms < 0: on this thread, however long nng takes). True
 * when closed; false leaves the close to that thread (nng 1.5.2 closes
 * that never end: everything nng was given must then stay allocated). */
bool cep_rpc_close_bounded(nng_socket sock, int wait_ms);
/* True while some bounded close still runs on its thread. */
bool cep_rpc_close_pending(void);

/* Serializes msg into body (malloc'd; free body->data), refusing more than
 * CEP_RPC_MAX_MSG bytes with RESOURCE_EXHAUSTED. */
int cep_rpc_pack_body(const ProtobufCMessage *msg, ProtobufCBinaryData *body,
    const char *what, cep_err *err);
/* An Envelope as one nng message, refusing frames over CEP_RPC_MAX_MSG. */
int cep_rpc_envelope_msg(nng_msg **out, const Cep__V1__Envelope *env,
    cep_err *err);

/* An Envelope as malloc'd bytes, refusing frames over CEP_RPC_MAX_MSG. */
int cep_rpc_envelope_bytes(const Cep__V1__Envelope *env, uint8_t **out,
    size_t *len, cep_err *err);

#endif
