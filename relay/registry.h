/*
 * registry.h - the relay's view of the active runs.
 *
 * The delegate owns the truth: each Relay/SyncRuns carries the whole active
 * set, and the registry is replaced by it as a whole (a run kept across two
 * syncs keeps its command queue). Run ids named as `finished` are remembered
 * in a bounded ring so that a late runner hears "run finished" rather than
 * "unknown run". Commands (ABORT...) wait here per run until the runner's
 * WatchCommands shows, by its after_seq, that it has them.
 *
 * Plain data: no locks, no I/O. The relay serialises access with its mutex.
 */
#ifndef CEP_RELAY_REGISTRY_H
#define CEP_RELAY_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cep.pb-c.h"
#include "err.h"
#include "run_id.h"

#define CEP_REGISTRY_MAX_RUNS 4096 /* grants in one SyncRuns */
#define CEP_REGISTRY_FINISHED 4096 /* finished ids remembered */
#define CEP_REGISTRY_MAX_CMDS 64   /* queued commands per run */
#define CEP_REGISTRY_URI_MAX 256

typedef struct cep_registry cep_registry;

typedef struct cep_relay_run {
	cep_run_id run_id;
	char uri[CEP_REGISTRY_URI_MAX];
	int64_t not_after_ms;            /* unix ms: grant expiry */
	Cep__V1__Assignment *assignment; /* owned copy, never NULL */
	Cep__V1__Command
	    *cmds[CEP_REGISTRY_MAX_CMDS]; /* owned, seq ascending */
	size_t ncmds;
} cep_relay_run;

int relay_registry_new(cep_registry **out, cep_err *err);
void relay_registry_free(cep_registry *reg);

/* NULL if run_id is not active. The pointer is valid until the next sync. */
cep_relay_run *relay_registry_find(cep_registry *reg, const char *run_id);
bool relay_registry_is_finished(const cep_registry *reg, const char *run_id);
size_t relay_registry_count(const cep_registry *reg);

/* Replaces the active set with g (validated first: nothing changes when g
 * is refused). *left (caller frees) lists the runs that were active and
 * are not any more; *added counts runs that are new. */
int relay_registry_sync(cep_registry *reg, const Cep__V1__RunGrants *g,
    cep_run_id **left, size_t *nleft, size_t *added, cep_err *err);

/* Queues cmd for run_id. *queued is false for a duplicate seq (ignored,
 * CEP_OK). NOT_FOUND for an inactive run, RESOURCE_EXHAUSTED when the
 * queue is full, INVALID_ARGUMENT for seq 0. */
int relay_registry_add_command(cep_registry *reg, const char *run_id,
    const Cep__V1__Command *cmd, bool *queued, cep_err *err);

/* Drops commands with seq <= after_seq: the runner has them. */
void relay_registry_trim(cep_relay_run *run, uint64_t after_seq);
/* An owned batch of the commands with seq > after_seq (free with
 * protobuf_c_message_free_unpacked), or NULL when there are none. */
Cep__V1__CommandBatch *relay_registry_pending(const cep_relay_run *run,
    uint64_t after_seq);

#endif
