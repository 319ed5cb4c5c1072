/*
 * runproc.h - the processes of a run, found by their command line.
 *
 * Executors do not trust a runner's bookkeeping: every process whose
 * command line is a cep-runner with "--run-id <id>" belongs to that run
 * (the runner and the fault workers it forked, which inherit its command
 * line). Cleanup runners (`cep-runner --cleanup FILE --run-id <id>`) are
 * told apart, so that killing a run's runner never kills the cleanup that
 * undoes what it left. Used by the local executor (delegate/) and the
 * launcher (launcher/), which both start runners on this machine.
 */
#ifndef CEP_RUNPROC_H
#define CEP_RUNPROC_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "run_id.h"

#define CEP_RUNPROC_RUNNER 1u  /* the runner and its fault workers */
#define CEP_RUNPROC_CLEANUP 2u /* its cleanup runners */

/* Visits every process of run_id of the kinds in which (other than this
 * process); sig != 0 sends it to each. Returns how many, and the first
 * pid seen (may be NULL); -1 when /proc cannot be read (errno). */
int cep_runproc_scan(const char *run_id, unsigned which, int sig, int *first);

/* SIGKILLs every runner process of run_id (its runner and workers, never
 * its cleanup runner) and waits, bounded (tries x 100 ms), until /proc
 * shows none left: CEP_OK only then. Sleeps: call it with no lock held. */
int cep_runproc_kill(const char *run_id, int tries, cep_err *err);

/* For each runner (not cleanup) process of any run whose parent is not a
 * process of the same run (a run's top process: the runner itself, not a
 * worker): fn(pid, run_id, arg). For a restarted launcher. */
typedef void (*cep_runproc_fn)(int pid, const char *run_id, void *arg);
int cep_runproc_each_runner(cep_runproc_fn fn, void *arg);

/* pid's run, if its command line is a runner's: *run_id, *cleanup. */
bool cep_runproc_run_of(int pid, cep_run_id *run_id, bool *cleanup);

/* The --identity argument of pid's runner command line into buf; false
 * if it has none. (A launcher adopts only runners whose identity lies in
 * its own directory.) */
bool cep_runproc_identity(int pid, char *buf, size_t len);

/* Parses a NUL-separated command line (buf[n] must be NUL): is it a
 * cep-runner's with --run-id and a valid run id after it? *run_id gets
 * the id, *cleanup whether it has --cleanup. For tests too. */
bool cep_runproc_parse(const char *buf, size_t n, cep_run_id *run_id,
    bool *cleanup);

/* The runner's command line (docs/internals.md: `cep-runner --relay URL
 * --identity DIR --run-id ID [--server-name N] [--cp-url U [--cp-ca F]
 * [--cp-proxy P]]`), one place for every executor that starts one.
 * NULL or "" leaves an optional flag out. argv: CEP_RUNPROC_ARGV_MAX. */
typedef struct cep_runproc_args {
	const char *bin, *relay_url, *identity_dir, *run_id, *server_name;
	const char *cp_url, *cp_ca_file, *cp_proxy;
} cep_runproc_args;
#define CEP_RUNPROC_ARGV_MAX 16
void cep_runproc_argv(const cep_runproc_args *a, char **argv);

#endif
