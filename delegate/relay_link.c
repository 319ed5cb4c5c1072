/*
 * relay_link.c - the delegate's side of the relay.
 *
 * Outbound (client of <run>/relay.sock), one thread: Relay/SyncRuns with
 * the whole active set and the recently finished ids, on every change and
 * at least every second (a relay that restarted is whole again within a
 * second); Relay/SendCommand ABORT for aborting runs, re-sent every 2 s
 * while the run is live (the command keeps seq 1, so a relay or runner
 * that already has it sees nothing new).
 *
 * Inbound (server on <run>/delegate.sock): the Delegate service the relay
 * calls on behalf of authenticated runners. The relay has checked who the
 * runner is; the content is still the runner's and treated as hostile:
 * lengths are bounded, events are journaled exactly once and in order.
 */
#define _GNU_SOURCE
#include "delegate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "clock.h"
#include "run_id.h"

#define RELAY_TIMEOUT_MS 1000
#define RELAY_WAKE_MS 200

/* ------------------------------------------------------------ outbound */

/* max_targets: policy.kubernetes.maxTargets, the runner's cap on the
 * objects one Kubernetes fault acts on; namespace: the only one it acts
 * in (docs/faults-kubernetes.md). allow_host_netns: the policy's
 * policy.network.allowHostNetns, for the runner's second check of a
 * host-netns target (docs/faults-network.md). */
static void grant_of(cep_delegate *d, cep_run *r, const cep_policy *pol,
    Cep__V1__RunGrant *g, Cep__V1__Assignment *a)
{
	cep_exec_grant eg = {.ns = r->ns,
	    .max_targets = (uint32_t)pol->kube_max_targets,
	    .allow_host_netns = pol->allow_host_netns};
	delegate_executor_grant(delegate_run_executor(d, r), &eg);
	cep__v1__run_grant__init(g);
	cep__v1__assignment__init(a);
	a->run_id = (char *)r->id.s;
	a->spec_yaml = r->spec_yaml ? r->spec_yaml : (char *)"";
	a->spec_name = (char *)r->spec_name;
	a->deadline_ms = r->deadline_ms;
	a->deadman_ms = (uint32_t)r->deadman_ms;
	if (eg.ns != NULL)
		a->namespace_ = (char *)eg.ns;
	a->max_targets = eg.max_targets;
	a->allow_host_netns = eg.allow_host_netns;
	g->run_id = (char *)r->id.s;
	g->identity_uri = (char *)r->identity_uri;
	g->not_after_ms = r->not_after_ms;
	g->assignment = a;
}

static bool granted(const cep_run *r)
{
	return (r->state == CEP__V1__RUN_STATE__RUN_LAUNCHING ||
	           r->state == CEP__V1__RUN_STATE__RUN_RUNNING) &&
	    r->identity_uri[0] != '\0';
}

/* An owned copy of the current RunGrants; d->mu held. */
static Cep__V1__RunGrants *build_grants(cep_delegate *d)
{
	size_t n = 0;
	for (cep_run *r = d->runs; r != NULL; r = r->next)
		n += granted(r);
	Cep__V1__RunGrant *g = calloc(n + 1, sizeof(*g));
	Cep__V1__Assignment *a = calloc(n + 1, sizeof(*a));
	Cep__V1__RunGrant **gp = calloc(n + 1, sizeof(*gp));
	char **fin = calloc(d->nfinished + 1, sizeof(*fin));
	Cep__V1__RunGrants *copy = NULL;
	if (g != NULL && a != NULL && gp != NULL && fin != NULL) {
		Cep__V1__RunGrants msg = CEP__V1__RUN_GRANTS__INIT;
		size_t k = 0;
		for (cep_run *r = d->runs; r != NULL; r = r->next)
			if (granted(r)) {
				grant_of(d, r, &d->cfg.policy, &g[k], &a[k]);
				gp[k] = &g[k];
				k++;
			}
		for (size_t i = 0; i < d->nfinished; i++)
			fin[i] = d->finished[i];
		msg.n_grants = n;
		msg.grants = gp;
		msg.n_finished = d->nfinished;
		msg.finished = fin;
		copy = (Cep__V1__RunGrants *)cep_rpc_msg_dup(&msg.base);
	}
	free(g);
	free(a);
	free(gp);
	free(fin);
	return copy;
}

static void sync_runs(cep_delegate *d)
{
	uint64_t gen = d->sync_gen;
	Cep__V1__RunGrants *msg = build_grants(d);
	if (msg == NULL)
		return;
	pthread_mutex_unlock(&d->mu);
	cep_err err = {0};
	int rv = cep_rpc_invoke(d->relay, "cep.v1.Relay/SyncRuns", &msg->base,
	    &cep__v1__sync_reply__descriptor, NULL, RELAY_TIMEOUT_MS, &err);
	cep__v1__run_grants__free_unpacked(msg, NULL);
	pthread_mutex_lock(&d->mu);
	if (rv == CEP_OK) {
		if (!d->relay_ok)
			cep_log_info(NULL, "relay reachable; %zu run(s) active",
			    delegate_run_active_count(d));
		d->relay_ok = true;
		if (gen > d->synced_gen)
			d->synced_gen = gen;
		pthread_cond_broadcast(&d->relay_cv);
	} else {
		if (d->relay_ok)
			cep_log_warn(NULL, "relay SyncRuns failed: %s",
			    err.msg);
		d->relay_ok = false;
	}
}

static void send_abort(cep_delegate *d, const char *id, const char *reason)
{
	Cep__V1__Command cmd = CEP__V1__COMMAND__INIT;
	Cep__V1__CommandForRun req = CEP__V1__COMMAND_FOR_RUN__INIT;
	cmd.seq = 1;
	cmd.kind = CEP__V1__COMMAND__KIND__ABORT;
	cmd.reason = (char *)reason;
	req.run_id = (char *)id;
	req.command = &cmd;
	cep_err err = {0};
	int rv = cep_rpc_invoke(d->relay, "cep.v1.Relay/SendCommand", &req.base,
	    &cep__v1__sync_reply__descriptor, NULL, RELAY_TIMEOUT_MS, &err);
	if (rv != CEP_OK)
		cep_log_warn(id, "sending ABORT to the relay: %s (will retry)",
		    err.msg);
	else
		cep_log_info(id, "ABORT sent to the runner: %s", reason);
}

/* Sends the ABORTs that are due, one per run; d->mu held. */
static void send_aborts(cep_delegate *d)
{
	for (cep_run *r = d->runs; r != NULL; r = r->next) {
		int64_t now = cep_clock_mono_ms();
		if (!r->aborting || cep_runstate_final(r->state) ||
		    !r->has_runner ||
		    (r->abort_sent_mono != 0 &&
		        now - r->abort_sent_mono < CEP_ABORT_RESEND_MS))
			continue;
		r->abort_sent_mono = now;
		cep_run_id id = r->id;
		char reason[256];
		snprintf(reason, sizeof(reason), "%s", r->abort_reason);
		pthread_mutex_unlock(&d->mu);
		send_abort(d, id.s, reason);
		pthread_mutex_lock(&d->mu);
	}
}

static void *relay_main(void *arg)
{
	cep_delegate *d = arg;
	uint64_t sent_gen = 0;
	int64_t last_sync = 0;
	pthread_mutex_lock(&d->mu);
	while (!d->stopping) {
		int64_t now = cep_clock_mono_ms();
		if (d->sync_gen != sent_gen ||
		    now - last_sync >= CEP_SYNC_EVERY_MS) {
			sent_gen = d->sync_gen;
			last_sync = now;
			sync_runs(d);
		}
		if (!d->stopping)
			send_aborts(d);
		if (!d->stopping && d->sync_gen == sent_gen)
			cep_clock_cond_wait_ms(&d->relay_cv, &d->mu,
			    RELAY_WAKE_MS);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

bool delegate_relay_wait_synced(cep_delegate *d, uint64_t gen,
    int64_t timeout_ms)
{
	int64_t end = cep_clock_mono_ms() + timeout_ms;
	while (d->synced_gen < gen && !d->stopping) {
		int64_t left = end - cep_clock_mono_ms();
		if (left <= 0)
			return false;
		cep_clock_cond_wait_ms(&d->relay_cv, &d->mu,
		    left < 100 ? left : 100);
	}
	return d->synced_gen >= gen;
}

/* Every change of the run table wakes the links waiting on relay_cv: this
 * one (to sync the relay) and the control-plane link (cp_link.c: reports,
 * room for tasks). */
static void relay_news(cep_delegate *d, enum cep_run_news news, void *arg)
{
	(void)arg;
	if (news == CEP_RUN_NEWS_CHANGED)
		pthread_cond_broadcast(&d->relay_cv);
}

int delegate_relay_link_start(cep_delegate *d, cep_err *err)
{
	char url[4200];
	int rv = delegate_run_subscribe(d, relay_news, NULL, err);
	if (rv == CEP_OK)
		rv = cep_paths_url(&d->paths, "relay.sock", url, sizeof(url),
		    err);
	if (rv == CEP_OK)
		rv = cep_rpc_client_new(&d->relay, url, NULL, err);
	if (rv != CEP_OK)
		return rv;
	rv = pthread_create(&d->relay_thr, NULL, relay_main, d);
	if (rv != 0)
		return cep_err_errno(err, rv, "starting the relay thread");
	d->relay_started = true;
	return CEP_OK;
}

void delegate_relay_link_join(cep_delegate *d)
{
	if (d->relay_started)
		pthread_join(d->relay_thr, NULL);
	d->relay_started = false;
}
