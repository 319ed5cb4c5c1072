/*
 * cleanup.h - the runner's cleanup mode (`cep-runner --cleanup FILE`):
 * a Pod the delegate launches on a pod target's node after the run's
 * runner died with node-level faults recorded and not reverted. It undoes
 * exactly the given fault records through lib/undo/undo.c (the code every
 * revert uses), injects nothing, talks to no relay, and reports which
 * undos are done in its termination message, which the delegate reads.
 *
 * FILE: a JSON array of {"run_id", "fault_id", "type", "target",
 * "mechanism", "undo"} (the FaultRecord fields). Report (JSON, at most
 * 4 KiB, the Kubernetes limit): {"undone": [fault ids], "failed":
 * {fault id: error}}. A record of another run than run_id is refused.
 */
#ifndef CEP_RUNNER_CLEANUP_H
#define CEP_RUNNER_CLEANUP_H

#include <stddef.h>

/* 0 when every record was undone, 1 when some failed, 2 for a bad file.
 * The report goes to report_path (and stdout). */
int runner_cleanup(const char *run_id, const char *file,
    const char *report_path);

/* The report for recs_json (testable without a file); malloc'd. */
char *runner_cleanup_json(const char *run_id, const char *recs_json, size_t len,
    int *status);

#endif
