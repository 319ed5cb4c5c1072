/*
 * cleanrun.h - a cleanup runner as a local process: `cep-runner --cleanup
 * DIR/cleanup.json --run-id ID --report DIR/cleanup-report.json`, the
 * same contract as the Kubernetes cleanup runner Pod (runner/cleanup.h):
 * it undoes exactly the given fault records and reports, per fault, which
 * are undone. Only what it reports undone counts as undone.
 *
 * Used where the delegate must not undo node-level faults itself: the
 * local executor (a home without a launcher) and the launcher, which runs
 * it with the capabilities of the records' mechanisms (pre_exec).
 * Asynchronous: start, then poll while it is RUNNING. The caller reaps
 * nothing else with waitpid(-1).
 */
#ifndef CEP_CLEANRUN_H
#define CEP_CLEANRUN_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* What cep_cleanrun_poll found: a result, not an error code (as the
 * delegate's enum cep_exec_state). */
enum cep_cleanrun_state {
	CEP_CLEANRUN_DONE,    /* ended, every record undone */
	CEP_CLEANRUN_RUNNING, /* still running: poll again later */
	CEP_CLEANRUN_FAILED,  /* ended otherwise: err (its code) says how */
};

typedef struct cep_cleanrun cep_cleanrun;

typedef struct cep_cleanrun_opts {
	const char *runner_bin;
	const char *dir; /* exists; the files go there (0600) */
	const char *run_id;
	const char *recs_json;      /* a JSON array of fault records */
	int64_t limit_ms;           /* then SIGKILL and an error; 0 = 60 s */
	int (*pre_exec)(void *arg); /* forkexec.h; may be NULL */
	void *arg;
} cep_cleanrun_opts;

int cep_cleanrun_start(const cep_cleanrun_opts *o, cep_cleanrun **out,
    cep_err *err);
/* RUNNING, or the end: DONE when every record was undone, FAILED with err
 * naming the first failure (err->code: why) otherwise. *undone (malloc'd
 * JSON array of fault ids, or NULL) whatever the result. */
enum cep_cleanrun_state cep_cleanrun_poll(cep_cleanrun *c, char **undone,
    cep_err *err);
/* Is the child still running (not reaped, not a zombie)? Reaps nothing:
 * its report stays for cep_cleanrun_poll. */
bool cep_cleanrun_running(const cep_cleanrun *c);
/* The child's pid (0 once reaped). */
int cep_cleanrun_pid(const cep_cleanrun *c);
/* Kills a child still running, reaps it, removes the files. NULL-safe. */
void cep_cleanrun_free(cep_cleanrun *c);

#endif
