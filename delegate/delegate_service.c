/*
 * delegate_service.c - the Delegate service on <run>/delegate.sock, called
 * by the relay for authenticated runners: RunnerConnected, RunnerEvents,
 * RecordFault, FaultReverted.
 *
 * Everything in a request came from a runner, the least trusted party:
 * ids are checked for shape, strings for length, events are journaled only
 * as seq == last + 1 (duplicates acknowledged, never journaled twice, never
 * past a gap), and a fault is journaled with fsync before it is
 * acknowledged - no ack, no injection.
 */
#define _GNU_SOURCE
#include "delegate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "run_id.h"

#define MAX_BATCH 4096
#define DELEGATE_SERVICE_WORKERS 16

static bool str_ok(const char *s, size_t max)
{
	return s != NULL && strnlen(s, max + 1) <= max;
}

/* Finds an open run for a runner call, or fails the call. d->mu held. */
static cep_run *open_run(cep_delegate *d, cep_rpc_call *c, const char *id)
{
	if (!cep_run_id_valid(id)) {
		cep_rpc_call_fail(c, CEP_INVALID_ARGUMENT, "malformed run id");
		return NULL;
	}
	cep_run *r = delegate_run_find(d, id);
	if (r == NULL) {
		cep_rpc_call_fail(c, CEP_NOT_FOUND, "unknown run %s", id);
		return NULL;
	}
	if (cep_runstate_final(r->state) || r->j == NULL) {
		cep_rpc_call_fail(c, CEP_FAILED_PRECONDITION,
		    "run %s finished (%s)", id, cep_runstate_name(r->state));
		return NULL;
	}
	return r;
}

static void reply_ack(cep_rpc_call *c, bool recorded)
{
	Cep__V1__FaultAck ack = CEP__V1__FAULT_ACK__INIT;
	ack.recorded = recorded;
	cep_rpc_call_reply(c, &ack.base);
}

/* Waits until the run's journal is on disk up to end (group commit with
 * the other calls being answered), drops the hold on j; false when that
 * fsync failed, and c is failed. */
static bool synced(cep_rpc_call *c, cep_journal *j, uint64_t end)
{
	cep_err err = {0};
	int rv = cep_journal_sync(j, end, &err);
	cep_journal_close(j);
	if (rv != CEP_OK)
		cep_rpc_call_fail(c, CEP_UNAVAILABLE, "journal: %s", err.msg);
	return rv == CEP_OK;
}

/* The state change is journalled under d->mu, its fsync after (group
 * commit with the other runs' batches): the ack waits for it. */
static void on_connected(cep_rpc_call *c, void *arg)
{
	cep_delegate *d = arg;
	const Cep__V1__RunnerSeen *req = (const Cep__V1__RunnerSeen *)
	    cep_rpc_call_request(c);
	pthread_mutex_lock(&d->mu);
	cep_run *r = open_run(d, c, req->run_id);
	if (r == NULL) {
		pthread_mutex_unlock(&d->mu);
		return;
	}
	if (r->state == CEP__V1__RUN_STATE__RUN_LAUNCHING) {
		char why[320];
		snprintf(why, sizeof(why), "runner connected from %.256s",
		    str_ok(req->peer, 256) ? req->peer : "?");
		delegate_run_set_state_nosync(d, r,
		    CEP__V1__RUN_STATE__RUN_RUNNING, why);
	}
	cep_journal *j = r->j; /* RUNNING is not final: still open */
	uint64_t end = cep_journal_end(j);
	cep_journal_hold(j);
	pthread_mutex_unlock(&d->mu);
	if (synced(c, j, end))
		reply_ack(c, true);
}

/* Is ev one of run_id's and within the bounds a runner is held to? */
static bool event_ok(const Cep__V1__Event *ev, const char *run_id)
{
	if (ev == NULL || ev->run_id == NULL || strcmp(ev->run_id, run_id) != 0)
		return false;
	if (!str_ok(ev->text, CEP_EVENT_MAX_TEXT) || !str_ok(ev->phase, 256))
		return false;
	return cep__v1__event__get_packed_size(ev) <= CEP_EVENT_MAX_BYTES;
}

/* Index of the last event of the batch that extends the journal without
 * a gap, -1 if none. */
static long last_new(const cep_run *r, const Cep__V1__EventBatch *b)
{
	uint64_t expect = r->last_seq + 1;
	long last = -1;
	for (size_t i = 0; i < b->n_events; i++) {
		if (b->events[i]->seq < expect)
			continue;
		if (b->events[i]->seq != expect)
			break;
		last = (long)i;
		expect++;
	}
	return last;
}

/* How many of evs[0..count) fit in the run's caps; d->mu held. */
static size_t events_room(const cep_run *r, Cep__V1__Event *const *evs,
    size_t count)
{
	size_t k = 0, bytes = r->event_bytes;
	while (k < count && r->nevents + k < CEP_RUN_MAX_EVENTS &&
	    bytes < CEP_RUN_MAX_EVENT_BYTES)
		bytes += cep__v1__event__get_packed_size(evs[k++]);
	return k;
}

/* Journals the new events of a batch (seq == last + 1, in order) in one
 * write, without fsync: the caller syncs after d->mu is released (group
 * commit); d->mu held. */
static int journal_events(cep_delegate *d, cep_run *r,
    const Cep__V1__EventBatch *b, cep_err *err)
{
	long last = last_new(r, b);
	if (last < 0)
		return CEP_OK;
	Cep__V1__Event **evs = malloc((size_t)(last + 1) * sizeof(*evs));
	if (evs == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	size_t count = 0;
	uint64_t expect = r->last_seq + 1;
	for (long i = 0; i <= last; i++)
		if (b->events[i]->seq == expect) {
			evs[count++] = b->events[i];
			expect++;
		}
	size_t k = events_room(r, evs, count);
	/* room for the batch and still the run's reserve, or none of it */
	size_t bytes = 0;
	for (size_t i = 0; i < k; i++)
		bytes += cep__v1__event__get_packed_size(evs[i]) + 32;
	int rv = k == 0 ? CEP_OK : delegate_disk_reserve(d, r, bytes, err);
	if (rv == CEP_OK && k > 0)
		rv = delegate_run_journal_events(d, r, evs, k, err);
	free(evs);
	if (rv == CEP_OK && k < count)
		rv = cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "run %s has %zu events (%zu bytes), the most a run may have",
		    r->id.s, r->nevents, r->event_bytes);
	return rv;
}

static void on_events(cep_rpc_call *c, void *arg)
{
	cep_delegate *d = arg;
	const Cep__V1__EventBatch *b = (const Cep__V1__EventBatch *)
	    cep_rpc_call_request(c);
	if (b->n_events > MAX_BATCH) {
		cep_rpc_call_fail(c, CEP_INVALID_ARGUMENT,
		    "batch of %zu events, at most %d", b->n_events, MAX_BATCH);
		return;
	}
	for (size_t i = 0; i < b->n_events; i++)
		if (!event_ok(b->events[i], b->run_id)) {
			cep_rpc_call_fail(c, CEP_INVALID_ARGUMENT,
			    "event %zu: wrong run id or oversized", i);
			return;
		}
	pthread_mutex_lock(&d->mu);
	cep_run *r = open_run(d, c, b->run_id);
	if (r == NULL) {
		pthread_mutex_unlock(&d->mu);
		return;
	}
	uint64_t before = r->last_seq;
	cep_err err = {0};
	int rv = journal_events(d, r, b, &err);
	if (r->last_seq != before)
		delegate_events_added(d);
	cep_metrics_add(d->m_events, (double)(r->last_seq - before), NULL);
	uint64_t acked = r->last_seq;
	/* The ack covers seqs up to last_seq, some perhaps written by a call
	 * still syncing: wait for the file up to its end now. */
	cep_journal *j = r->j;
	uint64_t end = cep_journal_end(j);
	cep_journal_hold(j);
	pthread_mutex_unlock(&d->mu);
	if (rv != CEP_OK && acked == before) {
		cep_journal_close(j);
		cep_rpc_call_fail(c, rv, "%s", err.msg);
		return;
	}
	if (!synced(c, j, end))
		return;
	Cep__V1__EventAck ack = CEP__V1__EVENT_ACK__INIT;
	ack.acked_seq = acked;
	cep_rpc_call_reply(c, &ack.base);
}

static bool fault_ok(const Cep__V1__FaultRecord *f)
{
	return f->fault_id != NULL && f->fault_id[0] != '\0' &&
	    str_ok(f->fault_id, 256) && str_ok(f->type, 64) &&
	    str_ok(f->target, 1024) && str_ok(f->mechanism, 64) &&
	    str_ok(f->undo, 16384);
}

static void record_fault(cep_delegate *d, cep_rpc_call *c, cep_run *r,
    const Cep__V1__FaultRecord *f)
{
	if (r->aborting || r->state == CEP__V1__RUN_STATE__RUN_CLEANUP) {
		cep_rpc_call_fail(c, CEP_FAILED_PRECONDITION,
		    "run %s is %s; no new faults", r->id.s,
		    r->aborting ? "aborting" : "cleaning up");
		return;
	}
	if (r->nfaults >= CEP_RUN_MAX_FAULTS) {
		cep_rpc_call_fail(c, CEP_RESOURCE_EXHAUSTED,
		    "run %s has %d faults, the most a run may have", r->id.s,
		    CEP_RUN_MAX_FAULTS);
		return;
	}
	Cep__V1__JournalRecord rec = CEP__V1__JOURNAL_RECORD__INIT;
	rec.rec_case = CEP__V1__JOURNAL_RECORD__REC_FAULT;
	rec.fault = (Cep__V1__FaultRecord *)f;
	cep_err err = {0};
	/* a fault is injected only with room left to journal its revert */
	if (delegate_disk_reserve(d, r,
	        cep__v1__fault_record__get_packed_size(f) + 32,
	        &err) != CEP_OK) {
		cep_rpc_call_fail(c, err.code,
		    "no room to journal the fault: %s", err.msg);
		return;
	}
	if (delegate_run_journal(d, r, &rec, true, &err) != CEP_OK) {
		cep_rpc_call_fail(c, CEP_INTERNAL, "journaling the fault: %s",
		    err.msg);
		return;
	}
	if (delegate_run_add_fault(r, f, rec.time_ms) ==
	    CEP_RUN_FAULT_NO_ROOM) {
		cep_rpc_call_fail(c, CEP_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	cep_log_info(r->id.s, "fault %s recorded: %s on %s", f->fault_id,
	    f->type ? f->type : "?", f->target ? f->target : "?");
	delegate_changed(d);
	reply_ack(c, true);
}

static cep_run_fault *find_fault(cep_run *r, const char *fault_id)
{
	for (size_t i = 0; i < r->nfaults; i++)
		if (strcmp(r->faults[i].rec->fault_id, fault_id) == 0)
			return &r->faults[i];
	return NULL;
}

static void record_or_ack(cep_delegate *d, cep_rpc_call *c, cep_run *r,
    const Cep__V1__FaultRecord *f)
{
	if (find_fault(r, f->fault_id) != NULL)
		reply_ack(c, true); /* a retry: already on disk */
	else
		record_fault(d, c, r, f);
}

typedef void (*fault_fn)(cep_delegate *d, cep_rpc_call *c, cep_run *r,
    const Cep__V1__FaultRecord *f);

/* RecordFault and FaultReverted: the record is checked, its run found
 * and authorized (open_run answers the call if not), then fn runs under
 * the delegate's lock. */
static void fault_call(cep_rpc_call *c, cep_delegate *d, fault_fn fn)
{
	const Cep__V1__FaultRecord *f = (const Cep__V1__FaultRecord *)
	    cep_rpc_call_request(c);
	if (!fault_ok(f)) {
		cep_rpc_call_fail(c, CEP_INVALID_ARGUMENT,
		    "fault record: missing fault_id or oversized field");
		return;
	}
	pthread_mutex_lock(&d->mu);
	cep_run *r = open_run(d, c, f->run_id);
	if (r != NULL)
		fn(d, c, r, f);
	pthread_mutex_unlock(&d->mu);
}

static void on_record_fault(cep_rpc_call *c, void *arg)
{
	fault_call(c, arg, record_or_ack);
}

static void fault_reverted(cep_delegate *d, cep_rpc_call *c, cep_run *r,
    const Cep__V1__FaultRecord *f)
{
	cep_run_fault *known = find_fault(r, f->fault_id);
	if (known == NULL) {
		cep_rpc_call_fail(c, CEP_NOT_FOUND, "run %s has no fault %s",
		    r->id.s, f->fault_id);
		return;
	}
	if (known->reverted_ms == 0) {
		Cep__V1__JournalRecord rec = CEP__V1__JOURNAL_RECORD__INIT;
		rec.rec_case = CEP__V1__JOURNAL_RECORD__REC_REVERTED;
		rec.reverted = (Cep__V1__FaultRecord *)f;
		rec.text = (char *)"runner";
		cep_err err = {0};
		if (delegate_run_journal(d, r, &rec, true, &err) != CEP_OK) {
			cep_rpc_call_fail(c, CEP_INTERNAL, "journaling: %s",
			    err.msg);
			return;
		}
		delegate_run_mark_reverted(r, f->fault_id, rec.time_ms,
		    "runner");
		cep_log_info(r->id.s, "fault %s reverted by the runner",
		    f->fault_id);
		delegate_changed(d);
	}
	reply_ack(c, true);
}

static void on_fault_reverted(cep_rpc_call *c, void *arg)
{
	fault_call(c, arg, fault_reverted);
}

/* A control-plane command, relayed by cep-relay (docs/control-plane-api.md):
 * the same abort path as `cepctl abort`, so the runner hears it on its open
 * WatchCommands long-poll at once. Unknown or finished runs are answered
 * ok=false, not an error: the plane may abort what already ended. */
/* The run an ABORT_RUN names: by its run id when it carries one (a
 * malformed one names no run), else by its task id. d->mu held. */
static cep_run *abort_target(cep_delegate *d, const Cep__V1__CpCommand *cmd)
{
	if (str_ok(cmd->run_id, 23) && cmd->run_id[0] != '\0') {
		cep_run_id id;
		if (cep_run_id_parse(&id, cmd->run_id))
			return delegate_run_find(d, id.s);
		cep_log_warn(NULL,
		    "control plane: abort of a malformed run id "
		    "ignored");
		return NULL;
	}
	return str_ok(cmd->task_id, 63) ?
	    delegate_run_find_task(d, cmd->task_id) :
	    NULL;
}

static void on_control_command(cep_rpc_call *c, void *arg)
{
	cep_delegate *d = arg;
	const Cep__V1__CpCommand *cmd = (const Cep__V1__CpCommand *)
	    cep_rpc_call_request(c);
	char reason[256];
	snprintf(reason, sizeof(reason), "aborted by the control plane%s%.200s",
	    str_ok(cmd->reason, 200) && cmd->reason[0] ? ": " : "",
	    str_ok(cmd->reason, 200) ? cmd->reason : "");
	size_t n = 0;
	pthread_mutex_lock(&d->mu);
	if (cmd->kind == CEP__V1__CP_COMMAND__KIND__ABORT_ALL) {
		for (cep_run *r = d->runs; r != NULL; r = r->next) {
			if (cep_runstate_final(r->state))
				continue;
			delegate_run_request_abort(d, r, reason);
			n++;
		}
		cep_log_info(NULL, "control plane: abort all (%zu run(s))", n);
	} else if (cmd->kind == CEP__V1__CP_COMMAND__KIND__ABORT_RUN) {
		cep_run *r = abort_target(d, cmd);
		if (r != NULL && !cep_runstate_final(r->state)) {
			delegate_run_request_abort(d, r, reason);
			n = 1;
		}
		cep_log_info(r != NULL ? r->id.s : NULL,
		    "control plane: abort run %s%s",
		    r != NULL ? r->id.s : "(unknown)",
		    n ? "" : " - nothing to abort");
	} else {
		pthread_mutex_unlock(&d->mu);
		cep_rpc_call_fail(c, CEP_INVALID_ARGUMENT,
		    "unknown control command kind %d", (int)cmd->kind);
		return;
	}
	pthread_mutex_unlock(&d->mu);
	Cep__V1__CpAck ack = CEP__V1__CP_ACK__INIT;
	ack.ok = n > 0;
	cep_rpc_call_reply(c, &ack.base);
}

static const cep_rpc_method delegate_methods[] = {
    {"cep.v1.Delegate/ControlCommand", &cep__v1__cp_command__descriptor,
        on_control_command},
    {"cep.v1.Delegate/RunnerConnected", &cep__v1__runner_seen__descriptor,
        on_connected},
    {"cep.v1.Delegate/RunnerEvents", &cep__v1__event_batch__descriptor,
        on_events},
    {"cep.v1.Delegate/RecordFault", &cep__v1__fault_record__descriptor,
        on_record_fault},
    {"cep.v1.Delegate/FaultReverted", &cep__v1__fault_record__descriptor,
        on_fault_reverted},
};

int delegate_service_start(cep_delegate *d, cep_err *err)
{
	char url[4200];
	/* Batches of different runs sync their journals in parallel (and the
	 * file system commits them together): as many workers as the relay
	 * forwards at once, not the default 4. */
	cep_rpc_server_opts opts = {.name = "delegate",
	    .workers = DELEGATE_SERVICE_WORKERS};
	int rv = cep_paths_url(&d->paths, "delegate.sock", url, sizeof(url),
	    err);
	if (rv == CEP_OK)
		rv = cep_rpc_server_new(&d->deleg_srv, delegate_methods,
		    sizeof(delegate_methods) / sizeof(delegate_methods[0]), d,
		    &opts, err);
	if (rv == CEP_OK)
		rv = cep_rpc_server_listen(d->deleg_srv, url, NULL, err);
	return rv;
}
