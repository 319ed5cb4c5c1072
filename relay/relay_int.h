/*
 * relay_int.h - what the relay's files share; not for other modules.
 *
 * relay.c      wiring: lifecycle, TLS material, listeners, metrics
 * calls.c      call helpers: refusals, delayed closes, parked long-polls,
 *              the ticker that answers and closes them when due
 * runner_api.c the Runner service (runners over tls+tcp)
 * relay_api.c  the Relay service (the delegate over ipc)
 * registry.c   active runs and their command queues
 * pipes.c      per-connection identity (nonce, binding)
 * tunnel.c     runner calls through the control plane (virtual pipes)
 *
 * Locking: one mutex (mu) guards registry, pipes, parked calls, pending
 * closes and counters. Nothing that can block or re-enter the RPC layer
 * (reply, fail, close_pipe, calls to the delegate, mbedTLS work) runs with
 * mu held: the RPC layer calls back into us (pipe events) under its own
 * locks, so holding ours across its calls could deadlock.
 */
#ifndef CEP_RELAY_INT_H
#define CEP_RELAY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cep.pb-c.h"
#include "config.h"
#include "metrics.h"
#include "pipes.h"
#include "registry.h"
#include "relay.h"
#include "tunnel.h"
#include "upstream.h"
#include "rpc.h"

/* Why a runner call was refused; the name is the key in
 * RelayStats.refusals_by_reason and in the log line. */
enum cep_refusal {
	CEP_REFUSE_TLS_UNVERIFIED, /* TLS client cert missing/unverified */
	CEP_REFUSE_CERT_EXPIRED,   /* cep_pki_verify_der: expired / not yet */
	CEP_REFUSE_CERT_UNTRUSTED, /* cep_pki_verify_der: chain, parse... */
	CEP_REFUSE_CERT_RUN_MISMATCH, /* URI SAN names another run */
	CEP_REFUSE_UNKNOWN_RUN,
	CEP_REFUSE_RUN_FINISHED,
	CEP_REFUSE_IDENTITY_MISMATCH, /* registry URI != certificate URI */
	CEP_REFUSE_NO_CHALLENGE,      /* no nonce, used or expired */
	CEP_REFUSE_BAD_SIGNATURE,
	CEP_REFUSE_NOT_AUTHENTICATED, /* call before Prove */
	CEP_REFUSE_WRONG_RUN,         /* bound to A, asks for B */
	CEP_REFUSE_RUN_ENDED,         /* bound run left the registry */
	CEP_REFUSE_IDENTITY_EXPIRED,  /* bound identity past not_after */
	CEP_REFUSE_BAD_REQUEST,       /* e.g. a batch over the cap */
	CEP_REFUSE_N
};
extern const char *const relay_refusal_names[CEP_REFUSE_N];

#define CEP_RELAY_MAX_BATCH 1000
#define CEP_RELAY_FORWARD_MS 5000
/* Workers of the runner service. Each forwards a batch with a blocking
 * call to the delegate, so this is the most batches in flight to it: twice
 * the delegate's 16 service workers, so that it always has the next batch
 * while a worker here answers the runner (bench_relay, docs/
 * performance.md "Profiling"). */
#define CEP_RELAY_RUNNER_WORKERS 32
#define CEP_RELAY_WATCH_MARGIN_MS 500
#define CEP_RELAY_PARKED_PER_RUN 8
#define CEP_RELAY_CLOSE_DELAY_MS 250
#define CEP_RELAY_MAX_CLOSES 256

typedef struct cep_parked {
	cep_rpc_call *call;
	uint32_t pipe;
	cep_run_id run_id;
	uint64_t after_seq;
	int64_t wake_mono; /* answer empty by then */
	struct cep_parked *next;
} cep_parked;

struct cep_relay {
	cep_paths paths;
	cep_config cfg;
	char *ca_pem;
	cep_rpc_server *runners, *ipc;
	cep_rpc_client *delegate;

	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC: wakes the ticker */
	pthread_t ticker;
	bool ticker_running;
	bool stopping;
	_Atomic uint64_t ticks; /* ticker turns: the watchdog's liveness */

	cep_registry *reg;
	cep_pipes *pipes;
	cep_parked *parked;
	struct {
		uint32_t pipe;
		int64_t at;
	} closes[CEP_RELAY_MAX_CLOSES];
	size_t nclose;

	uint64_t calls, refused, events_in;
	uint64_t by_reason[CEP_REFUSE_N];

	/* Prometheus (docs/metrics.md); served by main.c */
	cep_metrics *metrics;
	cep_metric *m_runners, *m_calls, *m_refusals, *m_events_in,
	    *m_events_out;
	/* the runners' port limits (cep_rpc_limits): counted by lib/rpc,
	 * copied at scrape time; limited_seen is what was copied so far */
	cep_metric *m_limited, *m_handshaking;
	uint64_t limited_seen[CEP_RPC_LIMIT_N];
	struct cep_lograte *refuse_log; /* relay_refuse's lines per peer */

	cep_upstream *up;   /* NULL without a control plane */
	cep_tunnel *tunnel; /* NULL without a control plane */
};

/* calls.c */
/* Logs one warn line, counts, and fails the call with code. bound and
 * requested may be NULL or hostile (they are sanitised for the log). */
/* relay_refuse logs a peer's refusals as they come up to a burst of
 * REFUSE_LOG_BURST per relay.limits.logInterval, then holds them back
 * (counted: *held is told with its next line); all are counted. */
bool relay_refuse_log_due(cep_relay *r, const char *peer, uint64_t *held);
void relay_refuse(cep_relay *r, cep_rpc_call *call, enum cep_refusal why,
    int code, const char *bound, const char *requested, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
/* Closes pipe after a short delay, so the refusal reply gets out first. */
void relay_close_later(cep_relay *r, uint32_t pipe);
/* WatchCommands after authorisation: drops commands the runner has
 * (seq <= after_seq) and either returns true with *batch to answer now
 * (NULL = empty batch: nothing pending and the deadline is near, the run
 * is gone, or the relay is stopping), or parks the call (false) until a
 * command comes, the run leaves, the pipe closes, or the deadline nears.
 * One lock around check and park, so no command slips between them. */
bool relay_watch(cep_relay *r, cep_rpc_call *call, const char *run_id,
    uint64_t after_seq, Cep__V1__CommandBatch **batch);
/* The pipe is gone: answer its parked calls now, freeing their contexts. */
void relay_forget_pipe_calls(cep_relay *r, uint32_t pipe);
/* Answers parked calls of run_id that now have commands; with gone, all
 * of them (empty batch: the run left the registry). Takes mu. */
void relay_wake_run(cep_relay *r, const char *run_id, bool gone);
/* Counts an answered call (both servers' done_cb). */
void relay_call_done(const char *method, int code, void *arg);
/* Printable, bounded copy of untrusted text for log lines. */
void relay_safe(char *dst, size_t n, const char *src);
/* An empty CommandBatch as the reply of c. */
void relay_reply_empty(cep_rpc_call *c);
/* The ticker thread (arg: the relay): answers parked calls before their
 * deadline and closes refused pipes when due, until stopping. */
void *relay_ticker_main(void *arg);
/* Sets stopping: every parked call is answered now (empty), pending
 * closes are dropped, no call parks any more, the ticker ends. */
void relay_calls_stop(cep_relay *r);

/* runner_api.c */
extern const cep_rpc_method relay_runner_methods[];
extern const size_t relay_runner_nmethods;
void relay_pipe_event(cep_pipe_id pipe, bool added, bool verified,
    const char *peer, void *arg);

/* relay_api.c */
extern const cep_rpc_method relay_ipc_methods[];
extern const size_t relay_ipc_nmethods;

#endif
