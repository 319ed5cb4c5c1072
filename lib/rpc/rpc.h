/*
 * rpc.h - "gRPC-style" unary calls over nng req/rep.
 *
 * One Envelope (proto/cep.proto) per message: method, call id, relative
 * timeout, status code, error text, body. A server owns one rep socket with
 * a pool of contexts that grows while calls are held, so one socket serves
 * many calls in flight, and long-poll calls (the way a server pushes) do not
 * starve others. Handlers run on the server's worker threads, never on
 * nng's callback threads, so a handler may block (e.g. forward a call).
 * A handler that parks a call replies later from any thread.
 *
 * Transports: ipc:// (trust = file permissions) and tls+tcp:// with mutual
 * TLS (cep_rpc_tls). Messages over CEP_RPC_MAX_MSG get RESOURCE_EXHAUSTED
 * (up to 2 * CEP_RPC_MAX_MSG; larger frames are dropped by nng itself, which
 * closes the pipe, so that peer sees its connection reset instead);
 * undecodable envelopes or bodies get INVALID_ARGUMENT ("malformed
 * envelope", with call_id 0, or "malformed <method> request"); unknown
 * methods UNIMPLEMENTED ("unknown method <name>"). Nothing a peer sends can
 * crash the server.
 *
 * With mbedTLS 2.28 (Debian 12) a client checks server_name against the
 * certificate's DNS SANs only, not IP SANs: dial tls+tcp://127.0.0.1:N with
 * server_name "localhost" (or another DNS SAN), not "127.0.0.1".
 */
#ifndef CEP_RPC_H
#define CEP_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"

#define CEP_RPC_MAX_MSG (4u * 1024u * 1024u)

/* TLS material, PEM text (not file names: keys are never re-read from
 * world-readable places). For a server: own cert+key, CA to verify clients,
 * require_client_cert. For a client: own cert+key (may be NULL), CA to verify
 * the server, server_name to check against the server certificate. */
typedef struct cep_rpc_tls {
	const char *cert_pem;
	const char *key_pem;
	const char *ca_pem;
	const char *server_name;
	/* server only: peers without a verified client certificate are still
	 * admitted, but marked unverified (cep_rpc_call_peer_verified) so the
	 * caller can refuse them with a reason it logs. */
	bool client_cert_optional;
} cep_rpc_tls;

/* ---------------------------------------------------------------- server */
typedef struct cep_rpc_server cep_rpc_server;
typedef struct cep_rpc_call cep_rpc_call;

/* Identifies the nng pipe (connection) a call came on. A struct so it is
 * not confused with other integers. id 0 = none. */
typedef struct cep_pipe_id {
	uint32_t id;
} cep_pipe_id;

typedef void (*cep_rpc_handler)(cep_rpc_call *call, void *arg);

typedef struct cep_rpc_method {
	const char *name;                      /* "cep.v1.Runner/Prove" */
	const ProtobufCMessageDescriptor *req; /* body decoded with this */
	cep_rpc_handler fn;
} cep_rpc_method;

/* Pipe events, e.g. to forget a runner's identity when its pipe closes.
 * Runs on an nng thread: must not block, must not free the server. */
typedef void (*cep_rpc_pipe_cb)(cep_pipe_id pipe, bool added, bool verified,
    const char *peer, void *arg);

/* A handled call was answered (reply or fail) with code; method is the
 * table's name. For metrics. Any thread: must not block. */
typedef void (*cep_rpc_done_cb)(const char *method, int code, void *arg);

/* Limits of a server's tls+tcp listener against hostile peers (docs/
 * configuration.md, relay.limits). 0 = no such limit. nng 1.5.2 accepts
 * and handshakes inside its transport, so the connection limits are
 * enforced by a gate beside it (rpc_gate.c) that looks at the listener's
 * accepted sockets every GATE_PERIOD (100 ms) and shuts down those over a
 * limit: first connections that have not completed TLS + SP negotiation
 * (the oldest first), then negotiated ones (the newest first). */
typedef struct cep_rpc_limits {
	int max_conns;            /* connections at once, all peers */
	int max_conns_per_peer;   /* connections at once from one IP address */
	int max_handshakes;       /* connections not negotiated yet, at once */
	int handshake_timeout_ms; /* not negotiated after this: closed */
	/* calls per second per identity (cep_rpc_call_bind_identity: the
	 * relay binds a runner's run to its connection at Prove, and all
	 * the connections of one run share its bucket), per connection
	 * before that: a token bucket of call_burst tokens (0 =
	 * calls_per_sec); a call without a token is answered
	 * RESOURCE_EXHAUSTED at once, before any handler. */
	int calls_per_sec;
	int call_burst;
	int log_interval_ms; /* one log line per peer per interval; 0 = 10 s */
} cep_rpc_limits;

/* Why the gate or the call limiter refused: index of cep_rpc_stats.limited
 * and of cep_rpc_limit_names ("connections", "per_peer", "handshakes",
 * "handshake_timeout", "call_rate"). */
enum cep_rpc_limit {
	CEP_RPC_LIMIT_CONNS,
	CEP_RPC_LIMIT_PER_PEER,
	CEP_RPC_LIMIT_HANDSHAKES,
	CEP_RPC_LIMIT_HANDSHAKE_TIMEOUT,
	CEP_RPC_LIMIT_CALL_RATE,
	CEP_RPC_LIMIT_N
};
extern const char *const cep_rpc_limit_names[CEP_RPC_LIMIT_N];

typedef struct cep_rpc_server_opts {
	const char *name;        /* for logs: "relay-runners" */
	int workers;             /* handler threads; 0 = 4 */
	int max_inflight;        /* cap on contexts; 0 = 4096 */
	cep_rpc_pipe_cb pipe_cb; /* optional */
	void *pipe_cb_arg;
	cep_rpc_done_cb done_cb;      /* optional; arg is the server's arg */
	const cep_rpc_limits *limits; /* optional (copied); tls+tcp only */
} cep_rpc_server_opts;

/* table must outlive the server. arg is passed to every handler. Do not
 * free the server from a handler or a pipe callback. */
int cep_rpc_server_new(cep_rpc_server **out, const cep_rpc_method *table,
    size_t n, void *arg, const cep_rpc_server_opts *opts, cep_err *err);
/* url: ipc:///path or tls+tcp://host:port (nothing else). tls NULL for ipc.
 * For ipc the socket file is created mode 0660 (before clients can
 * connect); a stale file (nothing accepting) is removed first, a live one
 * is ALREADY_EXISTS. TLS: client certificates REQUIRED, or OPTIONAL with
 * tls->client_cert_optional. Can be called more than once. */
int cep_rpc_server_listen(cep_rpc_server *s, const char *url,
    const cep_rpc_tls *tls, cep_err *err);
/* For tls+tcp://127.0.0.1:0: the port the kernel chose. */
int cep_rpc_server_port(cep_rpc_server *s);
/* Stops: waits for running handlers, answers UNAVAILABLE to calls still
 * held (parked) - their holders must forget them and not reply after
 * this - gives replies up to 1 s to leave, closes, frees. NULL-safe. */
void cep_rpc_server_free(cep_rpc_server *s);
/* Closes one pipe (a refused peer). Virtual pipes are ignored. */
void cep_rpc_server_close_pipe(cep_rpc_server *s, cep_pipe_id pipe);

/* Calls that did not come over nng (the relay's HTTPS tunnel, relay/
 * tunnel.c): frames in, reply frames out through a callback.
 *
 * A virtual pipe id has CEP_RPC_VIRTUAL_PIPE set, so it never equals an
 * nng pipe id (nng's are below 2^31); the caller picks and owns it (no
 * pipe_cb events are made for it). frame is one Envelope as a peer would
 * send it: it is decoded exactly like an nng frame (size cap, malformed
 * envelope, unknown method, malformed body), then the handler runs on a
 * worker with cep_rpc_call_pipe() == pipe and the given peer/verified.
 * out is called exactly once with the reply Envelope's bytes (not kept
 * after it returns): at once from this thread for a refused frame or a
 * closing server, else from whatever thread replies - also from
 * cep_rpc_server_free (UNAVAILABLE) for a call still held then. It must
 * not block for long and must not call back into the server. */
#define CEP_RPC_VIRTUAL_PIPE 0x80000000u
typedef void (*cep_rpc_out_fn)(const uint8_t *frame, size_t len, void *arg);
void cep_rpc_server_dispatch(cep_rpc_server *s, cep_pipe_id pipe, bool verified,
    const char *peer, const uint8_t *frame, size_t len, cep_rpc_out_fn out,
    void *arg);

typedef struct cep_rpc_stats {
	uint64_t calls;      /* frames received, good or bad */
	uint64_t ok, failed; /* handler replies / handler failures */
	uint64_t malformed, oversized, unknown_method; /* refused frames */
	uint32_t pipes;                                /* connections now */
	uint64_t listener_restarts; /* ipc listeners re-created (rpc_guard.c)
	                             * and wedged TLS ones (rpc_gate.c) */
	uint64_t limited[CEP_RPC_LIMIT_N]; /* refusals by the limits */
	uint32_t handshaking; /* tcp connections not negotiated (last sweep) */
} cep_rpc_stats;
void cep_rpc_server_stats(cep_rpc_server *s, cep_rpc_stats *out);

/* In a handler: */
const ProtobufCMessage *cep_rpc_call_request(cep_rpc_call *c);
const char *cep_rpc_call_method(cep_rpc_call *c);
cep_pipe_id cep_rpc_call_pipe(cep_rpc_call *c);
/* From now on the calls of c's pipe draw on identity's call rate (the
 * bucket every pipe bound to identity shares; limits.calls_per_sec), not
 * on the pipe's own. For a pipe whose peer proved who it is. */
void cep_rpc_call_bind_identity(cep_rpc_call *c, const char *identity);
bool cep_rpc_call_peer_verified(cep_rpc_call *c); /* TLS client cert ok */
const char *cep_rpc_call_peer(cep_rpc_call *c);   /* "10.0.0.5:41000", "ipc" */
/* Monotonic ms by which the caller wants an answer (its timeout, capped). */
int64_t cep_rpc_call_deadline(cep_rpc_call *c);
/* Exactly one of these, once, from any thread; then c is gone.
 * reply may be NULL (empty body). A reply over CEP_RPC_MAX_MSG is turned
 * into RESOURCE_EXHAUSTED. A fail with code CEP_OK is sent as UNKNOWN. */
void cep_rpc_call_reply(cep_rpc_call *c, const ProtobufCMessage *reply);
void cep_rpc_call_fail(cep_rpc_call *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The gate (rpc_gate.c): the connection limits of any TCP listener of
 * this process, enforced from beside it. A thread lists the process's
 * sockets accepted on port (/proc/self/fd) every 100 ms, tells
 * negotiated ones (peers() lists their "ip:port") from the rest, and
 * shuts down (shutdown(2), never close: the listener's owner closes the
 * descriptor when it sees the end) those over a limit. cep_rpc_server
 * makes one for its tls+tcp listener; lib/metrics for its HTTP one. */
typedef struct cep_rpc_gate cep_rpc_gate;
/* Copies the "ip:port" of each negotiated connection (as the gate
 * formats a peer: "1.2.3.4:5", "[::1]:5") into out, at most max;
 * returns how many there are (more than max: called again with room). */
typedef size_t (*cep_rpc_gate_peers_fn)(char (*out)[64], size_t max, void *arg);
/* peers NULL: no connection is ever negotiated, so handshake_timeout_ms
 * is the most any connection lives (a request timeout for HTTP). The
 * call rate of lim is not the gate's (cep_rpc_server applies it). */
int cep_rpc_gate_new(cep_rpc_gate **out, const char *name, int port,
    const cep_rpc_limits *lim, cep_rpc_gate_peers_fn peers, void *arg,
    cep_err *err);
/* Counts a refusal and logs it at most once per peer address per
 * interval (with the refusals the interval held). peer is "ip:port",
 * "[ip6]:port" or an address alone. NULL-safe. */
void cep_rpc_gate_note(cep_rpc_gate *g, enum cep_rpc_limit why,
    const char *peer);
/* The wedge watch: nng 1.5.2 can stop turning a TLS listener's
 * connections into pipes (seen after a runner was killed while it
 * connected): TLS and the SP header exchange complete, the client sends
 * its first call, nothing ever reads it. fn(arg) runs on the gate's
 * thread when a connection has waited CEP_RPC_WEDGE_MS unnegotiated
 * with data unread in its socket while no connection at all became
 * negotiated, at most once per 2 * CEP_RPC_WEDGE_MS. A listener that
 * merely works through a storm of handshakes keeps negotiating some, so
 * it is not taken for wedged; nor is one whose process stood still
 * (the gate's sweeps more than a second apart: the interval starts
 * again). Set before connections arrive; only with
 * a limit in lim (the gate's thread runs then). NULL-safe. */
#define CEP_RPC_WEDGE_MS 5000
typedef void (*cep_rpc_gate_wedge_fn)(int waiting, void *arg);
void cep_rpc_gate_on_wedge(cep_rpc_gate *g, cep_rpc_gate_wedge_fn fn,
    void *arg);
/* Fills out->limited[] and out->handshaking (nothing else). NULL-safe. */
void cep_rpc_gate_stats(cep_rpc_gate *g, cep_rpc_stats *out);
void cep_rpc_gate_free(cep_rpc_gate *g); /* NULL-safe */

/* ---------------------------------------------------------------- client */
typedef struct cep_rpc_client cep_rpc_client;

/* Dials in the background and keeps redialing (nng reconnect with backoff):
 * creating a client never fails because the server is not up yet.
 *
 * The watchdog: libnng 1.5.2's dialer can stop redialing for good after a
 * reconnect storm (a connect attempt it never completes; docs/
 * performance.md). When calls have been waiting to be sent for
 * watchdog_ms with none leaving, the client abandons that socket and
 * dials on a new one; the waiting calls go out on it (they had not left
 * the process: nothing is lost or sent twice). After sockets on which
 * nothing left the bound grows (up to 8x, with jitter). */
typedef struct cep_rpc_client_opts {
	int watchdog_ms; /* 0 = 5000; < 0 = no watchdog */
} cep_rpc_client_opts;
int cep_rpc_client_new(cep_rpc_client **out, const char *url,
    const cep_rpc_tls *tls, cep_err *err);
/* opts may be NULL (the defaults, as cep_rpc_client_new). */
int cep_rpc_client_new_opts(cep_rpc_client **out, const char *url,
    const cep_rpc_tls *tls, const cep_rpc_client_opts *opts, cep_err *err);
/* NULL-safe. No call may be in flight on c any more. Waits at most 2 s
 * for nng to close the socket (a stuck one is left to a background
 * thread, logged). */
void cep_rpc_client_free(cep_rpc_client *c);
/* Sockets the watchdog replaced so far (metrics, tests). */
uint64_t cep_rpc_client_redials(cep_rpc_client *c);
/* Ends the client's use: calls in flight (a parked long-poll too) are
 * cancelled and return at once with an error, later calls fail. The
 * client stays valid until cep_rpc_client_free, so threads blocked in a
 * call can be joined before it is freed. */
void cep_rpc_client_shutdown(cep_rpc_client *c);

/* One unary call; thread-safe, many in flight per client (one nng context
 * each). Returns the status code: CEP_OK and *reply set (free with
 * protobuf_c_message_free_unpacked(*reply, NULL)), or an error code with
 * err filled: the server's status and text (err->msg is the server's text
 * as sent), or DEADLINE_EXCEEDED / UNAVAILABLE from the transport.
 * reply_desc may be NULL to ignore the body. timeout_ms <= 0 means 30 s.
 * Requests over CEP_RPC_MAX_MSG are refused here (RESOURCE_EXHAUSTED).
 * (Named _invoke: cep_rpc_call is the server-side call type.)
 *
 * No transparent resend: if the connection dies while a call is out, the
 * call fails UNAVAILABLE (or DEADLINE_EXCEEDED) and the caller decides
 * whether to retry (cep_rpc_retryable, cep_rpc_backoff_ms). */
int cep_rpc_invoke(cep_rpc_client *c, const char *method,
    const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
    ProtobufCMessage **reply, int timeout_ms, cep_err *err);

/* The Envelope of a call as bytes, for transports other than nng (the
 * runner's HTTPS tunnel): malloc'd *out, refused over CEP_RPC_MAX_MSG. */
int cep_rpc_request_pack(const char *method, uint64_t call_id, int timeout_ms,
    const ProtobufCMessage *req, uint8_t **out, size_t *len, cep_err *err);
/* A reply Envelope read back: the server's status (err->msg its text),
 * INTERNAL for a malformed envelope, a call id other than call_id or an
 * undecodable body; else CEP_OK and *reply (if reply_desc and reply). */
int cep_rpc_reply_unpack(const uint8_t *buf, size_t len, uint64_t call_id,
    const char *method, const ProtobufCMessageDescriptor *reply_desc,
    ProtobufCMessage **reply, cep_err *err);

/* A deep, independently owned copy of any message (pack + unpack: the
 * generated code does every byte), or NULL when out of memory. Free with
 * protobuf_c_message_free_unpacked. */
ProtobufCMessage *cep_rpc_msg_dup(const ProtobufCMessage *m);

/* false if m (or a message inside it) holds what protobuf-c reads but would
 * not read back once written: an unknown field number 0 (rpc_wire.c). The
 * decoders of this module refuse such messages as malformed. */
bool cep_rpc_msg_wellformed(const ProtobufCMessage *m);

/* True for codes worth retrying (UNAVAILABLE, DEADLINE_EXCEEDED,
 * RESOURCE_EXHAUSTED, ABORTED). */
bool cep_rpc_retryable(int code);
/* Backoff with full jitter: attempt 0,1,2.. -> ms in [base, min(cap, base*2^n)] */
int cep_rpc_backoff_ms(int attempt, int base_ms, int cap_ms);

/* nng's error rv as a status a caller retries or gives up on (timeouts
 * DEADLINE_EXCEEDED, refused/reset UNAVAILABLE, peer auth
 * UNAUTHENTICATED...), the message "what: nng's text". */
int cep_rpc_err_nng(cep_err *err, int nng_rv, const char *what);

#endif
