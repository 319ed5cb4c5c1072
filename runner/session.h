/*
 * session.h - the runner's link to the relay: identity, proof, assignment,
 * and the sink ops over RPC.
 *
 * open(): loads the identity directory (ca.crt, runner.crt, runner.key;
 * the key refused if group or others can read it), dials the relay with
 * mutual TLS, proves possession of the key (Challenge/Prove) and fetches
 * the Assignment. start(): an event sender thread (batches of up to 64
 * events or 200 ms, PushEvents, resend of what is not acknowledged) that
 * also watches the dead-man interval and the deadline, and a command
 * thread holding one WatchCommands long-poll open (ABORT -> abort).
 * Every call that gets UNAUTHENTICATED proves again and retries once.
 *
 * Transport: the relay over nng, or - when cp_url is given and the relay
 * has not answered for a while (fallback_ms) - the control-plane tunnel
 * (tunnel.h). The path in use is switched, never both at once: when the
 * one in use has been silent for fallback_ms the other is tried. A new
 * path is a new (virtual) pipe, so the next call proves again. The
 * dead-man counts answers from either path.
 */
#ifndef CEP_RUNNER_SESSION_H
#define CEP_RUNNER_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "cep.pb-c.h"
#include "ctl.h"
#include "err.h"
#include "sink.h"

typedef struct cep_runner_session cep_runner_session;

typedef struct cep_runner_session_opts {
	const char *relay_url; /* tls+tcp://host:port */
	const char *identity_dir;
	const char *run_id;
	const char *server_name; /* NULL: the URL's host */
	int64_t connect_ms;      /* give up connecting after this; 0 = 30 s */
	/* control-plane fallback (all optional; cp_url NULL/"" = none) */
	const char *cp_url;     /* https://plane[:port] */
	const char *cp_ca_file; /* the plane's CA */
	const char *cp_proxy;   /* http://proxy:port, the site's proxy */
} cep_runner_session_opts;

/* Errors: INVALID_ARGUMENT / NOT_FOUND / PERMISSION_DENIED for the
 * identity (exit 2), UNAUTHENTICATED / PERMISSION_DENIED when the relay
 * refuses the proof (exit 2), UNAVAILABLE when the relay cannot be
 * reached in time (exit 3). */
int runner_session_open(cep_runner_session **out,
    const cep_runner_session_opts *o, cep_err *err);
/* Valid while the session lives. */
const Cep__V1__Assignment *runner_session_assignment(
    const cep_runner_session *s);
/* Starts the sender and command threads; arms the deadline in ctl. */
int runner_session_start(cep_runner_session *s, cep_runner_ctl *ctl,
    cep_err *err);
/* The dead-man interval of the assignment (10 s if it names none). */
int64_t runner_session_deadman_ms(const cep_runner_session *s);
/* Ops for runner_sink_new, with the session as impl. */
const cep_runner_sink_ops *runner_session_ops(void);
/* Stops the sender, the dead-man check and the command watcher (its
 * parked long-poll is cut by closing the connection) and wipes the key.
 * Idempotent. */
void runner_session_close(cep_runner_session *s);
/* Closes (if not yet) and frees. NULL-safe. */
void runner_session_free(cep_runner_session *s);

#endif
