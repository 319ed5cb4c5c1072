/*
 * daemon.h - what every cep daemon's main() does around its own work:
 * the log, the stop signals, systemd's READY=1 and the stop (cep-relay,
 * cep-delegate, cep-signer, cep-launcher; cep-runner takes the signal
 * part only). Arguments, the service itself and its teardown order stay
 * in each main.c.
 *
 * SIGTERM and SIGINT are blocked before any thread exists: every thread
 * started later inherits the mask, so the signals are taken only by a
 * synchronous wait here, never in a handler. SIGPIPE is ignored (a peer
 * that went away is an error return, not a death).
 */
#ifndef CEP_DAEMON_H
#define CEP_DAEMON_H

#include <stdbool.h>
#include <stdio.h>

#include "err.h"
#include "sdnotify.h"

/* The flags every daemon takes (its own ones are its main.c's). */
typedef struct cep_daemon_args {
	const char *home; /* --home DIR; NULL: $CEP_HOME, else installed */
	bool debug;       /* --debug, where the daemon has it */
} cep_daemon_args;

enum cep_daemon_arg {
	CEP_DAEMON_ARG_OTHER, /* not one of them: the daemon's own, or bad */
	CEP_DAEMON_ARG_TAKEN, /* taken into a (*i moved past a value) */
	CEP_DAEMON_ARG_EXIT   /* --version or --help printed: exit 0 */
};

/* Looks at argv[*i]: --home DIR, --debug (only with debug_flag),
 * --version ("<prog> <version>") and --help/-h (usage(stdout)). */
enum cep_daemon_arg cep_daemon_arg(const char *prog, int argc, char **argv,
    int *i, bool debug_flag, void (*usage)(FILE *), cep_daemon_args *a);
/* All of argv for a daemon with no flag of its own: 0 go on, 1 exit 0
 * (printed), 2 a usage error (said on stderr, then usage). */
int cep_daemon_parse_args(const char *prog, int argc, char **argv,
    bool debug_flag, void (*usage)(FILE *), cep_daemon_args *a);

/* Logs as comp (debug: from debug level up) and blocks the stop signals.
 * Call first in main(), before any thread. */
int cep_daemon_init(const char *comp, bool debug, cep_err *err);
/* Blocks SIGTERM/SIGINT in the calling thread and ignores SIGPIPE. */
int cep_daemon_block_signals(cep_err *err);
/* Waits until SIGTERM or SIGINT (blocked) is pending; returns it. */
int cep_daemon_wait_signal(void);

/* READY=1 through cep_sdnotify_start (ops copied). A systemd that cannot be
 * told is logged, not fatal: the service is up. May return NULL, which
 * the cep_sd_* calls take. */
cep_sd *cep_daemon_ready(const cep_sd_ops *ops);
/* Waits for a stop signal, then logs "signal N: <what>" and sends
 * STOPPING=1 with STATUS=<what> (NULL: "stopping"). Returns the signal.
 * The caller then stops its work, frees sd (before what its ops read)
 * and logs "stopped". */
int cep_daemon_wait_stop(cep_sd *sd, const char *what);
/* Bounds the shutdown that follows: if the process still runs ms from now,
 * it logs why and _exit(0)s. For a daemon whose state is on disk at every
 * moment (the relay: spool fsynced, nothing held in memory only), where a
 * library's close that never returns (nng 1.5.2 with a thousand broken
 * pipes, docs/performance.md) must not keep the service from stopping. */
void cep_daemon_stop_guard(int ms);

#endif
