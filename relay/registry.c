/*
 * registry.c - active runs, recently finished run ids, command queues.
 *
 * Runs are kept in an array sorted by run id (bsearch on every runner
 * call). A sync builds the new array from the grants, moving each kept run
 * (and its queued commands) over, so replacing the set never loses an ABORT
 * that is still on its way to a runner.
 */
#define _GNU_SOURCE
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "run_id.h"

struct cep_registry {
	cep_relay_run **runs; /* sorted by run_id */
	size_t nruns;
	/* ring of finished ids, oldest overwritten first */
	cep_run_id *finished;
	size_t fin_head, fin_n;
};

int relay_registry_new(cep_registry **out, cep_err *err)
{
	cep_registry *reg = calloc(1, sizeof(*reg));
	if (reg != NULL)
		reg->finished = calloc(CEP_REGISTRY_FINISHED,
		    sizeof(cep_run_id));
	if (reg == NULL || reg->finished == NULL) {
		free(reg);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "registry: out of memory");
	}
	*out = reg;
	return CEP_OK;
}

static void run_free(cep_relay_run *run)
{
	if (run == NULL)
		return;
	for (size_t i = 0; i < run->ncmds; i++)
		protobuf_c_message_free_unpacked(&run->cmds[i]->base, NULL);
	if (run->assignment != NULL)
		protobuf_c_message_free_unpacked(&run->assignment->base, NULL);
	free(run);
}

void relay_registry_free(cep_registry *reg)
{
	if (reg == NULL)
		return;
	for (size_t i = 0; i < reg->nruns; i++)
		run_free(reg->runs[i]);
	free(reg->runs);
	free(reg->finished);
	free(reg);
}

static int cmp_run(const void *a, const void *b)
{
	const cep_relay_run *const *x = a, *const *y = b;
	return strcmp((*x)->run_id.s, (*y)->run_id.s);
}

static int cmp_key(const void *key, const void *elem)
{
	const cep_relay_run *const *r = elem;
	return strcmp(key, (*r)->run_id.s);
}

cep_relay_run *relay_registry_find(cep_registry *reg, const char *run_id)
{
	if (reg->nruns == 0 || run_id == NULL)
		return NULL;
	cep_relay_run **hit = bsearch(run_id, reg->runs, reg->nruns,
	    sizeof(*reg->runs), cmp_key);
	return hit != NULL ? *hit : NULL;
}

size_t relay_registry_count(const cep_registry *reg)
{
	return reg->nruns;
}

bool relay_registry_is_finished(const cep_registry *reg, const char *run_id)
{
	for (size_t i = 0; i < reg->fin_n; i++)
		if (strcmp(reg->finished[i].s, run_id) == 0)
			return true;
	return false;
}

static void finished_add(cep_registry *reg, const char *run_id)
{
	if (relay_registry_is_finished(reg, run_id))
		return;
	cep_run_id_parse(&reg->finished[reg->fin_head], run_id);
	reg->fin_head = (reg->fin_head + 1) % CEP_REGISTRY_FINISHED;
	if (reg->fin_n < CEP_REGISTRY_FINISHED)
		reg->fin_n++;
}

/* Everything a grant must satisfy before the registry changes at all. */
static int grants_check(const Cep__V1__RunGrants *g, cep_err *err)
{
	if (g->n_grants > CEP_REGISTRY_MAX_RUNS)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "SyncRuns: %zu grants, at most %d", g->n_grants,
		    CEP_REGISTRY_MAX_RUNS);
	for (size_t i = 0; i < g->n_grants; i++) {
		const Cep__V1__RunGrant *gr = g->grants[i];
		if (!cep_run_id_valid(gr->run_id))
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "SyncRuns: grant %zu: invalid run id", i);
		size_t ulen = strlen(gr->identity_uri);
		if (ulen == 0 || ulen >= CEP_REGISTRY_URI_MAX)
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "SyncRuns: grant %zu (%s): identity uri empty or "
			    "longer than %d",
			    i, gr->run_id, CEP_REGISTRY_URI_MAX - 1);
	}
	for (size_t i = 0; i < g->n_finished; i++)
		if (!cep_run_id_valid(g->finished[i]))
			return cep_err_set(err, CEP_INVALID_ARGUMENT,
			    "SyncRuns: finished[%zu]: invalid run id", i);
	return CEP_OK;
}

/* The run for grant gr: the old one (commands kept) or a new one. */
static cep_relay_run *run_from_grant(cep_registry *reg,
    const Cep__V1__RunGrant *gr, bool *is_new)
{
	Cep__V1__Assignment empty = CEP__V1__ASSIGNMENT__INIT;
	const Cep__V1__Assignment *src = gr->assignment ? gr->assignment :
	                                                  &empty;
	Cep__V1__Assignment *asg = (Cep__V1__Assignment *)cep_rpc_msg_dup(
	    &src->base);
	if (asg == NULL)
		return NULL;
	cep_relay_run *run = relay_registry_find(reg, gr->run_id);
	*is_new = run == NULL;
	if (run == NULL && (run = calloc(1, sizeof(*run))) == NULL) {
		protobuf_c_message_free_unpacked(&asg->base, NULL);
		return NULL;
	}
	cep_run_id_parse(&run->run_id, gr->run_id); /* validated */
	snprintf(run->uri, sizeof(run->uri), "%s", gr->identity_uri);
	run->not_after_ms = gr->not_after_ms;
	if (run->assignment != NULL)
		protobuf_c_message_free_unpacked(&run->assignment->base, NULL);
	run->assignment = asg;
	return run;
}

/* A SyncRuns' grants sorted by run id, the first of equal ids first: a
 * repeated grant is next to the one that counts, and "is it granted" is a
 * bsearch. (Linear scans made a SyncRuns of N runs O(N^2), under the
 * relay's lock: a million strcmp at N = 1,000, docs/performance.md.) */
typedef struct grant_ref {
	const Cep__V1__RunGrant *g;
	size_t i; /* its place in the request */
} grant_ref;

static int cmp_grant(const void *a, const void *b)
{
	const grant_ref *x = a, *y = b;
	int c = strcmp(x->g->run_id, y->g->run_id);
	return c != 0 ? c : (x->i > y->i) - (x->i < y->i);
}

static int cmp_grant_key(const void *key, const void *elem)
{
	return strcmp(key, ((const grant_ref *)elem)->g->run_id);
}

static grant_ref *sorted_grants(const Cep__V1__RunGrants *g)
{
	grant_ref *s = calloc(g->n_grants + 1, sizeof(*s));
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < g->n_grants; i++)
		s[i] = (grant_ref){.g = g->grants[i], .i = i};
	qsort(s, g->n_grants, sizeof(*s), cmp_grant);
	return s;
}

static bool in_grants(const grant_ref *sorted, size_t n, const char *run_id)
{
	return bsearch(run_id, sorted, n, sizeof(*sorted), cmp_grant_key) !=
	    NULL;
}

/* Moves runs that are not granted any more to *left and frees them. */
static int collect_left(cep_registry *reg, const grant_ref *sorted, size_t n,
    cep_run_id **left, size_t *nleft)
{
	*left = calloc(reg->nruns + 1, sizeof(**left));
	*nleft = 0;
	if (*left == NULL)
		return -1;
	for (size_t i = 0; i < reg->nruns; i++) {
		if (in_grants(sorted, n, reg->runs[i]->run_id.s))
			continue;
		(*left)[(*nleft)++] = reg->runs[i]->run_id;
		run_free(reg->runs[i]);
		reg->runs[i] = NULL;
	}
	return 0;
}

/* A sync that fails half way (out of memory): frees the runs it created
 * (the ones not in the registry) and the array. The set stays the old one;
 * runs already updated in place keep their newer grant. */
static void drop_new(cep_registry *reg, cep_relay_run **next, size_t n)
{
	for (size_t j = 0; j < n; j++)
		if (relay_registry_find(reg, next[j]->run_id.s) != next[j])
			run_free(next[j]);
	free(next);
}

int relay_registry_sync(cep_registry *reg, const Cep__V1__RunGrants *g,
    cep_run_id **left, size_t *nleft, size_t *added, cep_err *err)
{
	*left = NULL;
	*nleft = *added = 0;
	int rv = grants_check(g, err);
	if (rv != CEP_OK)
		return rv;
	cep_relay_run **next = calloc(g->n_grants + 1, sizeof(*next));
	grant_ref *sorted = sorted_grants(g);
	size_t n = 0;
	if (next == NULL || sorted == NULL) {
		free(next);
		free(sorted);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "SyncRuns: out of memory");
	}
	for (size_t i = 0; i < g->n_grants; i++) {
		bool is_new = false;
		if (i > 0 &&
		    strcmp(sorted[i].g->run_id, sorted[i - 1].g->run_id) == 0)
			continue; /* a repeated grant: the first one counts */
		/* updates an existing run in place: fine even if we fail later,
		 * since the grant is the newer truth */
		cep_relay_run *run = run_from_grant(reg, sorted[i].g, &is_new);
		if (run == NULL) {
			drop_new(reg, next, n);
			free(sorted);
			return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
			    "SyncRuns: out of memory");
		}
		next[n++] = run;
		*added += is_new;
	}
	rv = collect_left(reg, sorted, g->n_grants, left, nleft);
	free(sorted);
	if (rv != 0) {
		/* cannot report who left: keep the old set, free new runs */
		drop_new(reg, next, n);
		*added = 0;
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "SyncRuns: out of memory");
	}
	free(reg->runs);
	qsort(next, n, sizeof(*next), cmp_run);
	reg->runs = next;
	reg->nruns = n;
	/* only the newest ids fit the ring: skip the rest without scanning */
	size_t fin0 = g->n_finished > CEP_REGISTRY_FINISHED ?
	    g->n_finished - CEP_REGISTRY_FINISHED :
	    0;
	for (size_t i = fin0; i < g->n_finished; i++)
		if (relay_registry_find(reg, g->finished[i]) == NULL)
			finished_add(reg, g->finished[i]);
	for (size_t i = 0; i < *nleft; i++)
		finished_add(reg, (*left)[i].s);
	return CEP_OK;
}

int relay_registry_add_command(cep_registry *reg, const char *run_id,
    const Cep__V1__Command *cmd, bool *queued, cep_err *err)
{
	*queued = false;
	if (cmd->seq == 0)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "SendCommand: command seq must be > 0");
	cep_relay_run *run = relay_registry_find(reg, run_id);
	if (run == NULL)
		return cep_err_set(err, CEP_NOT_FOUND, "SendCommand: %s",
		    relay_registry_is_finished(reg, run_id) ? "run finished" :
		                                              "unknown run");
	size_t pos = run->ncmds;
	for (size_t i = 0; i < run->ncmds; i++) {
		if (run->cmds[i]->seq == cmd->seq)
			return CEP_OK; /* re-sent: already queued */
		if (run->cmds[i]->seq > cmd->seq && pos == run->ncmds)
			pos = i;
	}
	if (run->ncmds == CEP_REGISTRY_MAX_CMDS)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "SendCommand: %d commands queued and not yet fetched",
		    CEP_REGISTRY_MAX_CMDS);
	Cep__V1__Command *copy = (Cep__V1__Command *)cep_rpc_msg_dup(
	    &cmd->base);
	if (copy == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "SendCommand: out of memory");
	memmove(&run->cmds[pos + 1], &run->cmds[pos],
	    (run->ncmds - pos) * sizeof(run->cmds[0]));
	run->cmds[pos] = copy;
	run->ncmds++;
	*queued = true;
	return CEP_OK;
}

void relay_registry_trim(cep_relay_run *run, uint64_t after_seq)
{
	size_t drop = 0;
	while (drop < run->ncmds && run->cmds[drop]->seq <= after_seq)
		protobuf_c_message_free_unpacked(&run->cmds[drop++]->base,
		    NULL);
	memmove(&run->cmds[0], &run->cmds[drop],
	    (run->ncmds - drop) * sizeof(run->cmds[0]));
	run->ncmds -= drop;
}

Cep__V1__CommandBatch *relay_registry_pending(const cep_relay_run *run,
    uint64_t after_seq)
{
	size_t first = 0;
	while (first < run->ncmds && run->cmds[first]->seq <= after_seq)
		first++;
	if (first == run->ncmds)
		return NULL;
	/* a view on the queue, then an owned copy of it: the reply is sent
	 * after the lock is released */
	Cep__V1__CommandBatch view = CEP__V1__COMMAND_BATCH__INIT;
	view.n_commands = run->ncmds - first;
	view.commands = (Cep__V1__Command **)&run->cmds[first];
	return (Cep__V1__CommandBatch *)cep_rpc_msg_dup(&view.base);
}
