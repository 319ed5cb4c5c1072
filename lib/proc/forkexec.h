/*
 * forkexec.h - starting a runner process (the local executor, the launcher,
 * their cleanup runners): fork, then in the child only async-signal-safe
 * calls (the parent is threaded): an empty signal mask and default
 * dispositions, its own session (a terminal's ^C reaches the parent
 * only; the runner outlives a parent crash), stdin /dev/null, stdout and
 * stderr appended to a log file, an optional hook (the launcher sets the
 * capabilities there), every other descriptor closed, execv.
 */
#ifndef CEP_FORKEXEC_H
#define CEP_FORKEXEC_H

#include <stdint.h>
#include <sys/types.h>

#include "err.h"

typedef struct cep_forkexec_opts {
	char *const *argv;    /* argv[0]: the program (a path) */
	const char *log_path; /* created 0600 if missing, appended to */
	/* In the child before execv: async-signal-safe only; nonzero =
	 * _exit(126) (the parent sees "status 126"). May be NULL. */
	int (*pre_exec)(void *arg);
	void *arg;
} cep_forkexec_opts;

/* *pid and *start (/proc start time, cep_procfs_start_time) of the child. */
int cep_forkexec_run(const cep_forkexec_opts *o, pid_t *pid, int64_t *start,
    cep_err *err);

/* "status 3", "signal 9" for a waitpid status. */
void cep_forkexec_describe(int wstatus, char *what, size_t len);

#endif
