/*
 * cp_link.c - the delegate's side of the control plane
 * (docs/control-plane-api.md), when controlPlane.url is set.
 *
 * Two threads, so that a long-poll never delays a heartbeat (a late
 * heartbeat costs the leases of every running task):
 *   beat  Register (again after a 404), Heartbeat every heartbeat_ms with
 *         the tasks held (renews their leases; runs of lost leases are
 *         aborted), and ReportRun for every state change of a task's run,
 *         woken by each change so reports are prompt.
 *   poll  PollTasks while there are free run slots; each task goes through
 *         the same Submit path as `cepctl run` (policy included) and is
 *         acknowledged with its run id or the refusal.
 * Connector health for Register/Heartbeat is probed by the poll thread
 * between polls, never by the beat thread: a dead API server must not
 * make this appliance miss its heartbeats.
 *
 * Nothing here is persistent: task ids live in the run journals, and what
 * was reported is re-reported after a restart (ReportRun is idempotent).
 */
#define _GNU_SOURCE
#include "delegate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cp.h"
#include "log.h"
#include "clock.h"
#include "run_id.h"

#define MAX_HELD 256 /* task ids in one heartbeat */
#define HEALTH_EVERY_MS 30000
#define REREPORT_MS (60 * 60 * 1000) /* final runs reported after a restart */

struct cep_cp_link {
	cep_delegate *d;
	cep_cp *cp;
	pthread_t beat, poll;
	bool beat_started, poll_started;
	/* d->mu guards the rest */
	bool registered;
	uint32_t heartbeat_ms, lease_ms;
	Cep__V1__CpConnector *conns; /* last probe */
	size_t nconns;
	int64_t health_mono;
	int64_t last_ok_ms; /* for cepctl status */
	char last_error[CEP_ERR_MSG_MAX];
};

/* The outcome of a call, for cepctl status (d->mu taken here). */
static void outcome(struct cep_cp_link *l, int rv, const cep_err *err)
{
	pthread_mutex_lock(&l->d->mu);
	if (rv == CEP_OK) {
		l->last_ok_ms = cep_clock_now_ms();
		l->last_error[0] = '\0';
	} else {
		snprintf(l->last_error, sizeof(l->last_error), "%s", err->msg);
	}
	pthread_mutex_unlock(&l->d->mu);
}

void delegate_cp_link_status(cep_delegate *d, Cep__V1__ControlPlaneStatus *st)
{
	struct cep_cp_link *l = d->cpl;
	cep__v1__control_plane_status__init(st);
	if (l == NULL)
		return;
	st->url = d->cfg.cp.url;
	st->registered = l->registered;
	st->last_ok_ms = l->last_ok_ms;
	st->last_error = l->last_error;
	for (cep_run *r = d->runs; r != NULL; r = r->next)
		st->tasks_held += r->task_id[0] != '\0' &&
		    !cep_runstate_final(r->state);
}

/* Whether the plane may take the same call later: it is down, slow, busy
 * or answered garbage. A refusal (409 lease lost, 400, 403, 404) is final
 * for that call, and retrying it would block the ones behind it. */
static bool retryable(int code)
{
	return code == CEP_UNAVAILABLE || code == CEP_DEADLINE_EXCEEDED ||
	    code == CEP_RESOURCE_EXHAUSTED || code == CEP_DATA_LOSS ||
	    code == CEP_UNAUTHENTICATED || code == CEP_INTERNAL ||
	    code == CEP_UNKNOWN || code == CEP_CANCELLED;
}

static int64_t backoff(int *attempt, int64_t retry_after)
{
	int ms = cep_rpc_backoff_ms((*attempt)++, 200, 10000);
	return retry_after > ms ? retry_after : ms;
}

static void free_conns(Cep__V1__CpConnector *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].server_version);
		free(v[i].error);
	}
	free(v);
}

/* Probes every connector (GET /version), outside d->mu. */
static void probe_health(struct cep_cp_link *l)
{
	cep_delegate *d = l->d;
	size_t n = cep_connector_list_count(d->conns);
	Cep__V1__CpConnector *v = calloc(n ? n : 1, sizeof(*v));
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		const cep_connector *c = cep_connector_list_at(d->conns, i);
		cep__v1__cp_connector__init(&v[i]);
		v[i].name = strdup(c->name);
		char ver[128] = "";
		cep_kube *k = NULL;
		cep_err err = {0};
		int rv = delegate_executor_kube_client(d->kex, c->name, &k,
		    &err);
		if (rv == CEP_OK)
			rv = cep_kube_version(k, ver, sizeof(ver), &err);
		v[i].reachable = rv == CEP_OK;
		v[i].server_version = strdup(ver);
		v[i].error = strdup(rv == CEP_OK ? "" : err.msg);
	}
	pthread_mutex_lock(&d->mu);
	free_conns(l->conns, l->nconns);
	l->conns = v;
	l->nconns = n;
	l->health_mono = cep_clock_mono_ms();
	pthread_mutex_unlock(&d->mu);
}

/* ---------------------------------------------------------------- beat */

/* msg with the last connector probe attached (set_conns), packed and
 * unpacked into a copy under d->mu: the probe is replaced by the poll
 * thread, and the call must run unlocked. */
static ProtobufCMessage *with_conns(struct cep_cp_link *l,
    ProtobufCMessage *msg, size_t *n, Cep__V1__CpConnector ***field)
{
	pthread_mutex_lock(&l->d->mu);
	Cep__V1__CpConnector **v = calloc(l->nconns ? l->nconns : 1,
	    sizeof(*v));
	for (size_t i = 0; v != NULL && i < l->nconns; i++)
		v[i] = &l->conns[i];
	*n = v != NULL ? l->nconns : 0;
	*field = v;
	ProtobufCMessage *copy = cep_rpc_msg_dup(msg);
	pthread_mutex_unlock(&l->d->mu);
	free(v);
	*n = 0;
	*field = NULL;
	return copy;
}

/* method called with msg and the last connector probe attached
 * (with_conns); *rep is the unpacked reply on CEP_OK. */
static int call_with_conns(struct cep_cp_link *l, const char *method,
    ProtobufCMessage *msg, size_t *n, Cep__V1__CpConnector ***field,
    const ProtobufCMessageDescriptor *reply, ProtobufCMessage **rep,
    int64_t *retry, cep_err *err)
{
	ProtobufCMessage *copy = with_conns(l, msg, n, field);
	if (copy == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	int rv = cep_cp_call(l->cp, method, copy, reply, rep, 0, retry, err);
	protobuf_c_message_free_unpacked(copy, NULL);
	return rv;
}

static int do_register(struct cep_cp_link *l, int64_t *retry, cep_err *err)
{
	cep_delegate *d = l->d;
	Cep__V1__CpRegister req = CEP__V1__CP_REGISTER__INIT;
	req.appliance = d->cfg.appliance;
	req.version = (char *)CEP_VERSION;
	req.started_ms = d->started_ms;
	/* the plane checks runners' tunnel certificates against it */
	req.ca_pem = (char *)delegate_signer_ca_pem(d->signer);
	ProtobufCMessage *rep = NULL;
	int rv = call_with_conns(l, "Register", &req.base, &req.n_connectors,
	    &req.connectors, &cep__v1__cp_registered__descriptor, &rep, retry,
	    err);
	if (rv != CEP_OK)
		return rv;
	const Cep__V1__CpRegistered *r = (const Cep__V1__CpRegistered *)rep;
	pthread_mutex_lock(&d->mu);
	l->registered = true;
	l->heartbeat_ms = r->heartbeat_ms >= 200 && r->heartbeat_ms <= 60000 ?
	    r->heartbeat_ms :
	    5000;
	l->lease_ms = r->lease_ms;
	pthread_mutex_unlock(&d->mu);
	protobuf_c_message_free_unpacked(rep, NULL);
	cep_log_info(NULL,
	    "control plane %s: registered as %s (heartbeat %ums, "
	    "lease %ums)",
	    cep_cp_host(l->cp), d->cfg.appliance, l->heartbeat_ms, l->lease_ms);
	return CEP_OK;
}

/* The heartbeat: held tasks are the task runs not final. */
static int do_heartbeat(struct cep_cp_link *l, int64_t *retry, cep_err *err)
{
	cep_delegate *d = l->d;
	char held[MAX_HELD][64];
	char *ids[MAX_HELD];
	size_t n = 0;
	Cep__V1__CpHeartbeat req = CEP__V1__CP_HEARTBEAT__INIT;
	req.appliance = d->cfg.appliance;
	pthread_mutex_lock(&d->mu);
	for (cep_run *r = d->runs; r != NULL && n < MAX_HELD; r = r->next) {
		if (r->task_id[0] == '\0' || cep_runstate_final(r->state))
			continue;
		snprintf(held[n], sizeof(held[n]), "%s", r->task_id);
		ids[n] = held[n];
		n++;
	}
	req.active_runs = (uint32_t)delegate_run_active_count(d);
	pthread_mutex_unlock(&d->mu);
	req.task_ids = ids;
	req.n_task_ids = n;
	ProtobufCMessage *rep = NULL;
	int rv = call_with_conns(l, "Heartbeat", &req.base, &req.n_connectors,
	    &req.connectors, &cep__v1__cp_heartbeat_reply__descriptor, &rep,
	    retry, err);
	if (rv != CEP_OK)
		return rv;
	const Cep__V1__CpHeartbeatReply *hr =
	    (const Cep__V1__CpHeartbeatReply *)rep;
	pthread_mutex_lock(&d->mu);
	for (size_t i = 0; i < hr->n_lost_task_ids; i++) {
		cep_run *r = delegate_run_find_task(d, hr->lost_task_ids[i]);
		if (r != NULL && !cep_runstate_final(r->state))
			delegate_run_request_abort(d, r,
			    "the control plane's lease on "
			    "its task was lost");
	}
	pthread_mutex_unlock(&d->mu);
	protobuf_c_message_free_unpacked(rep, NULL);
	return CEP_OK;
}

/* One unreported state change of a task's run, if any: copied out under
 * d->mu, sent without it. Returns false when there is none. */
static bool next_report(cep_delegate *d, Cep__V1__CpRunReport *rep,
    cep_run_id *run_id, char task[64], char reason[512], char verdict[16])
{
	for (cep_run *r = d->runs; r != NULL; r = r->next) {
		if (r->task_id[0] == '\0' || r->reported_state == r->state)
			continue;
		cep__v1__cp_run_report__init(rep);
		*run_id = r->id;
		snprintf(task, 64, "%s", r->task_id);
		snprintf(reason, 512, "%s", r->reason);
		snprintf(verdict, 16, "%s", r->verdict);
		rep->appliance = d->cfg.appliance;
		rep->task_id = task;
		rep->run_id = run_id->s;
		rep->state = r->state;
		rep->reason = reason;
		rep->verdict = verdict;
		rep->score = r->score;
		rep->time_ms = cep_clock_now_ms();
		return true;
	}
	return false;
}

static int send_reports(struct cep_cp_link *l, int64_t *retry, cep_err *err)
{
	cep_delegate *d = l->d;
	cep_run_id rid;
	const char *run_id = rid.s;
	char task[64], reason[512], verdict[16];
	Cep__V1__CpRunReport rep;
	for (;;) {
		pthread_mutex_lock(&d->mu);
		bool any = !d->stopping &&
		    next_report(d, &rep, &rid, task, reason, verdict);
		pthread_mutex_unlock(&d->mu);
		if (!any)
			return CEP_OK;
		ProtobufCMessage *ack = NULL;
		int rv = cep_cp_call(l->cp, "ReportRun", &rep.base,
		    &cep__v1__cp_ack__descriptor, &ack, 0, retry, err);
		if (rv != CEP_OK && retryable(rv))
			return rv;
		if (rv != CEP_OK) /* the plane will never take it: not again */
			cep_log_warn(run_id,
			    "the control plane refused the %s "
			    "report of task %s: %s",
			    cep_runstate_name(rep.state), task, err->msg);
		else
			protobuf_c_message_free_unpacked(ack, NULL);
		pthread_mutex_lock(&d->mu);
		cep_run *r = delegate_run_find(d, run_id);
		if (r != NULL)
			r->reported_state = rep.state;
		pthread_mutex_unlock(&d->mu);
		if (rv == CEP_OK)
			cep_log_info(run_id,
			    "reported %s of task %s to the "
			    "control plane",
			    cep_runstate_name(rep.state), task);
	}
}

static void *beat_main(void *arg)
{
	struct cep_cp_link *l = arg;
	cep_delegate *d = l->d;
	int attempt = 0;
	int64_t next_beat = 0;
	for (;;) {
		pthread_mutex_lock(&d->mu);
		bool stop = d->stopping, reg = l->registered;
		pthread_mutex_unlock(&d->mu);
		if (stop)
			break;
		cep_err err = {0};
		int64_t retry = 0;
		int rv = CEP_OK;
		if (!reg) {
			rv = do_register(l, &retry, &err);
			next_beat = 0;
		} else if (cep_clock_mono_ms() >= next_beat) {
			rv = do_heartbeat(l, &retry, &err);
			if (rv == CEP_NOT_FOUND) { /* the plane forgot us */
				pthread_mutex_lock(&d->mu);
				l->registered = false;
				pthread_mutex_unlock(&d->mu);
			}
			if (rv == CEP_OK)
				next_beat = cep_clock_mono_ms() +
				    l->heartbeat_ms;
		}
		if (rv == CEP_OK && reg)
			rv = send_reports(l, &retry, &err);
		outcome(l, rv, &err);
		int64_t wait = 0;
		if (rv != CEP_OK) {
			wait = backoff(&attempt, retry);
			cep_log_warn(NULL,
			    "control plane: %s (retry in %lldms)", err.msg,
			    (long long)wait);
		} else {
			attempt = 0;
			wait = next_beat - cep_clock_mono_ms();
			if (wait < 50)
				wait = 50;
		}
		pthread_mutex_lock(&d->mu);
		if (!d->stopping)
			cep_clock_cond_wait_ms(&d->relay_cv, &d->mu, wait);
		pthread_mutex_unlock(&d->mu);
	}
	return NULL;
}

/* ---------------------------------------------------------------- poll */

static void ack_task(struct cep_cp_link *l, const char *task_id, int rv,
    const char *run_id, const cep_err *serr)
{
	cep_delegate *d = l->d;
	Cep__V1__CpTaskAck a = CEP__V1__CP_TASK_ACK__INIT;
	a.appliance = d->cfg.appliance;
	a.task_id = (char *)task_id;
	a.accepted = rv == CEP_OK;
	a.run_id = (char *)(rv == CEP_OK ? run_id : "");
	a.error = (char *)(rv == CEP_OK ? "" : serr->msg);
	/* The plane leased the task to us: keep acknowledging until it
	 * hears us (the lease is renewed meanwhile by the heartbeat, since
	 * the run exists), or we stop. */
	for (int attempt = 0;;) {
		cep_err err = {0};
		int64_t retry = 0;
		ProtobufCMessage *rep = NULL;
		int crv = cep_cp_call(l->cp, "AckTask", &a.base,
		    &cep__v1__cp_ack__descriptor, &rep, 0, &retry, &err);
		if (crv == CEP_OK) {
			protobuf_c_message_free_unpacked(rep, NULL);
			return;
		}
		if (!retryable(crv)) {
			/* The lease is gone (expired, re-leased): the run must
			 * not go on without it. */
			cep_log_warn(rv == CEP_OK ? run_id : NULL,
			    "control plane refused the ack of task %s: %s",
			    task_id, err.msg);
			pthread_mutex_lock(&d->mu);
			cep_run *r = rv == CEP_OK ?
			    delegate_run_find(d, run_id) :
			    NULL;
			if (r != NULL)
				delegate_run_request_abort(d, r,
				    "the control plane "
				    "refused the task's acknowledgement");
			pthread_mutex_unlock(&d->mu);
			return;
		}
		int64_t wait = backoff(&attempt, retry);
		cep_log_warn(NULL,
		    "control plane: ack of task %s: %s (retry in "
		    "%lldms)",
		    task_id, err.msg, (long long)wait);
		pthread_mutex_lock(&d->mu);
		bool stop = d->stopping;
		if (!stop)
			cep_clock_cond_wait_ms(&d->relay_cv, &d->mu, wait);
		pthread_mutex_unlock(&d->mu);
		if (stop)
			return;
	}
}

static void take_task(struct cep_cp_link *l, const Cep__V1__CpTask *t)
{
	cep_run_id rid = {""};
	const char *run_id = rid.s;
	cep_err err = {0};
	const char *name = t->spec_name && t->spec_name[0] ? t->spec_name :
	                                                     t->task_id;
	int rv = delegate_submit(l->d, t->spec_yaml ? t->spec_yaml : "",
	    t->spec_yaml ? strlen(t->spec_yaml) : 0, name, t->task_id, &rid,
	    &err);
	if (rv == CEP_OK)
		cep_log_info(run_id,
		    "task %s (attempt %u) from the control plane", t->task_id,
		    t->attempt);
	else
		cep_log_warn(NULL, "task %s refused: %s", t->task_id, err.msg);
	ack_task(l, t->task_id, rv, run_id, &err);
}

/* The Lease lost while the poll was out: the task is left to expire at
 * the plane (requeued there for the holder), never run by two replicas. */
static bool lease_allows(struct cep_cp_link *l, const Cep__V1__CpTask *t)
{
	pthread_mutex_lock(&l->d->mu);
	bool ok = delegate_lease_may_take(l->d);
	pthread_mutex_unlock(&l->d->mu);
	if (!ok)
		cep_log_warn(NULL,
		    "task %s not taken: the Lease is no longer "
		    "ours",
		    t->task_id);
	return ok;
}

static void *poll_main(void *arg)
{
	struct cep_cp_link *l = arg;
	cep_delegate *d = l->d;
	int attempt = 0;
	for (;;) {
		if (cep_clock_mono_ms() - l->health_mono >= HEALTH_EVERY_MS ||
		    l->health_mono == 0)
			probe_health(l);
		pthread_mutex_lock(&d->mu);
		bool stop = d->stopping;
		size_t active = delegate_run_active_count(d);
		size_t max = (size_t)d->cfg.policy.max_concurrent_runs;
		bool ready = l->registered && !d->draining && active < max &&
		    delegate_lease_may_take(d);
		int64_t wait_ms = delegate_lease_cap_wait(d,
		    d->cfg.cp.poll_wait_ms);
		if (!stop && !ready)
			cep_clock_cond_wait_ms(&d->relay_cv, &d->mu, 500);
		pthread_mutex_unlock(&d->mu);
		if (stop)
			break;
		if (!ready)
			continue;
		Cep__V1__CpPoll req = CEP__V1__CP_POLL__INIT;
		req.appliance = d->cfg.appliance;
		req.wait_ms = (uint32_t)wait_ms;
		req.max = (uint32_t)(max - active);
		cep_err err = {0};
		int64_t retry = 0;
		ProtobufCMessage *rep = NULL;
		int rv = cep_cp_call(l->cp, "PollTasks", &req.base,
		    &cep__v1__cp_tasks__descriptor, &rep,
		    d->cfg.cp.timeout_ms + d->cfg.cp.poll_wait_ms, &retry,
		    &err);
		if (rv != CEP_OK) {
			int64_t wait = backoff(&attempt, retry);
			cep_log_warn(NULL,
			    "control plane: %s (retry in %lldms)", err.msg,
			    (long long)wait);
			pthread_mutex_lock(&d->mu);
			if (!d->stopping)
				cep_clock_cond_wait_ms(&d->relay_cv, &d->mu,
				    wait);
			pthread_mutex_unlock(&d->mu);
			continue;
		}
		attempt = 0;
		const Cep__V1__CpTasks *ts = (const Cep__V1__CpTasks *)rep;
		for (size_t i = 0; i < ts->n_tasks; i++)
			if (lease_allows(l, ts->tasks[i]))
				take_task(l, ts->tasks[i]);
		protobuf_c_message_free_unpacked(rep, NULL);
	}
	return NULL;
}

/* -------------------------------------------------------------- public */

int delegate_cp_link_start(cep_delegate *d, cep_err *err)
{
	if (d->cfg.cp.url[0] == '\0')
		return CEP_OK;
	struct cep_cp_link *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	l->d = d;
	l->heartbeat_ms = 5000;
	int rv = cep_cp_new(&d->cfg.cp, &l->cp, err);
	if (rv != CEP_OK) {
		free(l);
		return cep_err_wrap(err, "control plane");
	}
	/* Runs that ended long ago were reported by an earlier life (or the
	 * plane has long failed their task by lease): only recent ones are
	 * reported again after a restart. */
	pthread_mutex_lock(&d->mu);
	int64_t old = cep_clock_now_ms() - REREPORT_MS;
	for (cep_run *r = d->runs; r != NULL; r = r->next)
		if (cep_runstate_final(r->state) && r->ended_ms < old)
			r->reported_state = r->state;
	pthread_mutex_unlock(&d->mu);
	d->cpl = l;
	if (pthread_create(&l->beat, NULL, beat_main, l) != 0)
		return cep_err_set(err, CEP_INTERNAL,
		    "starting a thread failed");
	l->beat_started = true;
	if (pthread_create(&l->poll, NULL, poll_main, l) != 0)
		return cep_err_set(err, CEP_INTERNAL,
		    "starting a thread failed");
	l->poll_started = true;
	cep_log_info(NULL, "control plane %s: taking tasks",
	    cep_cp_host(l->cp));
	return CEP_OK;
}

void delegate_cp_link_join(cep_delegate *d)
{
	struct cep_cp_link *l = d->cpl;
	if (l == NULL)
		return;
	cep_cp_cancel(l->cp); /* a long-poll in flight ends now */
	if (l->beat_started)
		pthread_join(l->beat, NULL);
	if (l->poll_started)
		pthread_join(l->poll, NULL);
	cep_cp_free(l->cp);
	free_conns(l->conns, l->nconns);
	free(l);
	d->cpl = NULL;
}
