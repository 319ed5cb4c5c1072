/*
 * monitor_undo.c - the monitor's undo of what a runner left: every fault
 * recorded and not reverted, through lib/undo/undo.c (the code the runner
 * reverts with), node-level ones by a cleanup runner on the node through
 * the run's executor; each undone fault journaled as reverted. Split
 * from monitor.c, which calls it when a run finishes (finish()).
 */
#define _GNU_SOURCE
#include "delegate_int.h"
#include "undo.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "clock.h"

/* lib/undo/undo.c's resolver for Kubernetes faults (k8s-scale, k8s-cordon):
 * the run's connector client and namespace. Called from undo_faults,
 * which runs the undo without d->mu: taken here for the lookup only. */
static cep_kube *undo_kube(const char *run_id, char *ns, size_t nslen,
    void *arg)
{
	cep_delegate *d = arg;
	char conn[64] = "";
	cep_executor *ex = NULL;
	pthread_mutex_lock(&d->mu);
	cep_run *r = delegate_run_find(d, run_id);
	if (r != NULL) {
		ex = delegate_run_executor(d, r);
		snprintf(conn, sizeof(conn), "%s", r->connector);
		snprintf(ns, nslen, "%s", r->ns);
	}
	pthread_mutex_unlock(&d->mu);
	cep_kube *k = NULL;
	cep_err err = {0};
	/* a run whose executor has no cluster client has no such faults */
	if (ex == NULL ||
	    delegate_executor_kube_client(ex, conn, &k, &err) != CEP_OK) {
		if (ex == NULL || err.code == CEP_FAILED_PRECONDITION)
			return NULL;
		cep_log_warn(run_id, "undo: %s", err.msg);
		return NULL;
	}
	return k;
}

/* Copies of the run's faults not reverted yet (d->mu held): the undo
 * then runs on the copies without the lock. NULL with *n > 0: no memory. */
static Cep__V1__FaultRecord **unreverted(cep_run *r, size_t *n)
{
	*n = 0;
	for (size_t i = 0; i < r->nfaults; i++)
		*n += r->faults[i].reverted_ms == 0;
	if (*n == 0)
		return NULL;
	Cep__V1__FaultRecord **v = calloc(*n, sizeof(*v));
	for (size_t i = 0, j = 0; v != NULL && i < r->nfaults; i++) {
		if (r->faults[i].reverted_ms != 0)
			continue;
		size_t len = cep__v1__fault_record__get_packed_size(
		    r->faults[i].rec);
		uint8_t *buf = malloc(len ? len : 1);
		if (buf != NULL) {
			cep__v1__fault_record__pack(r->faults[i].rec, buf);
			v[j] = cep__v1__fault_record__unpack(NULL, len, buf);
		}
		free(buf);
		if (v[j++] == NULL) {
			for (size_t k = 0; k < j; k++)
				if (v[k] != NULL)
					cep__v1__fault_record__free_unpacked(
					    v[k], NULL);
			free(v);
			return NULL;
		}
	}
	return v;
}

/* The records whose state is on the runner's node (lib/undo/undo.h
 * cep_undo_on_node) go to a cleanup runner there, through the executor
 * (a Pod on the node; a child or the launcher's on the appliance: the
 * delegate never undoes them itself); done[i] is set for those it
 * reported undone. Called with
 * "[]" too, so the executor forgets the run's placement. d->mu held: the
 * executor only starts or polls its cleanup thread. */
static enum cep_exec_state node_faults(cep_delegate *d, cep_run *r,
    Cep__V1__FaultRecord **recs, size_t n, bool *node, bool *done,
    cep_err *uerr)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		node[i] = cep_undo_on_node(recs[i]->mechanism);
		if (node[i])
			json_array_append_new(arr,
			    json_pack("{s:s, s:s, s:s, s:s, "
			              "s:s, s:s}",
			        "run_id", r->id.s, "fault_id",
			        recs[i]->fault_id, "type", recs[i]->type,
			        "target", recs[i]->target, "mechanism",
			        recs[i]->mechanism, "undo", recs[i]->undo));
	}
	char *js = json_dumps(arr, JSON_COMPACT), *undone = NULL;
	json_decref(arr);
	if (js == NULL)
		return delegate_exec_state_of(
		    cep_err_set(uerr, CEP_RESOURCE_EXHAUSTED, "no memory"));
	enum cep_exec_state rv =
	    delegate_executor_node_undo(delegate_run_executor(d, r), r->id.s,
	        js, &undone, uerr);
	free(js);
	json_t *ids = undone ? json_loads(undone, 0, NULL) : NULL;
	free(undone);
	size_t k;
	json_t *v;
	json_array_foreach(ids, k, v) for (size_t i = 0; i < n;
	                                   i++) if (node[i] &&
	    json_is_string(v) &&
	    strcmp(json_string_value(v), recs[i]->fault_id) == 0)
	    done[i] = true;
	json_decref(ids);
	if (rv != CEP_EXEC_FAILED)
		return rv;
	/* name what is left first: the error may be about the pod */
	char left[256] = "";
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(left);
		if (node[i] && !done[i] && l < sizeof(left) - 1)
			snprintf(left + l, sizeof(left) - l, "%s%.64s (%.32s)",
			    l ? ", " : "", recs[i]->fault_id, recs[i]->type);
	}
	if (left[0] != '\0')
		cep_err_wrap(uerr, "left on the node: %s", left);
	return rv;
}

static void free_recs(Cep__V1__FaultRecord **recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cep__v1__fault_record__free_unpacked(recs[i], NULL);
	free(recs);
}

/* Undoes each fault recorded but not reverted (lib/undo/undo.c, the same code
 * the runner reverts with) and journals it; a fault whose undo fails stays
 * unreverted and its error is returned. d->mu held on entry and exit but
 * dropped while undoing: a Kubernetes undo is an API call, and a dead API
 * server must not stall the monitor (every other run) for its timeout.
 * Node-level faults are undone by a cleanup runner first, through the
 * run's executor (PENDING while it runs: call again on the next tick);
 * FAILED: *uerr names the first fault left. */
enum cep_exec_state delegate_undo_faults(cep_delegate *d, cep_run *r,
    cep_err *uerr)
{
	size_t n;
	Cep__V1__FaultRecord **recs = unreverted(r, &n);
	if (n > 0 && recs == NULL)
		return delegate_exec_state_of(
		    cep_err_set(uerr, CEP_RESOURCE_EXHAUSTED,
		        "no memory for the undo of %zu "
		        "fault(s)",
		        n));
	bool *done = calloc(n + 1, sizeof(*done));
	bool *node = calloc(n + 1, sizeof(*node));
	enum cep_exec_state rv = CEP_EXEC_DONE;
	if (done == NULL || node == NULL)
		rv = delegate_exec_state_of(
		    cep_err_set(uerr, CEP_RESOURCE_EXHAUSTED, "no memory"));
	else
		rv = node_faults(d, r, recs, n, node, done, uerr);
	if (rv == CEP_EXEC_PENDING) {
		free_recs(recs, n);
		free(done);
		free(node);
		return rv;
	}
	cep_run_id rid = r->id;
	const char *id = rid.s;
	cep_undo_ctx uctx = {.kube = undo_kube, .kube_arg = d};
	pthread_mutex_unlock(&d->mu);
	for (size_t i = 0; i < n && done != NULL && node != NULL; i++) {
		cep_err err = {0};
		if (node[i])
			continue; /* the cleanup runner's (above) */
		done[i] = cep_undo_apply(&uctx, recs[i], &err) == CEP_OK;
		if (done[i])
			continue;
		cep_log_error(id, "fault %s: undo failed: %s",
		    recs[i]->fault_id, err.msg);
		if (rv == CEP_EXEC_DONE)
			*uerr = err;
		rv = CEP_EXEC_FAILED;
	}
	pthread_mutex_lock(&d->mu);
	int64_t now = cep_clock_now_ms();
	for (size_t i = 0; i < n && done != NULL && node != NULL; i++) {
		const char *who = node[i] ? "cleanup runner" : "delegate";
		if (!done[i]) {
			if (node[i])
				cep_log_error(id,
				    "fault %s: not undone by the "
				    "cleanup runner",
				    recs[i]->fault_id);
			continue;
		}
		cep_err err = {0};
		Cep__V1__JournalRecord rec = CEP__V1__JOURNAL_RECORD__INIT;
		rec.rec_case = CEP__V1__JOURNAL_RECORD__REC_REVERTED;
		rec.reverted = recs[i];
		rec.text = (char *)who;
		(void)delegate_run_journal(d, r, &rec, true, &err);
		delegate_run_mark_reverted(r, recs[i]->fault_id, now, who);
		cep_log_info(id, "fault %s undone by the %s", recs[i]->fault_id,
		    who);
	}
	free_recs(recs, n);
	free(done);
	free(node);
	return rv;
}
