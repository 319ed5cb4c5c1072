/*
 * admin.c - the Admin service on <run>/admin.sock (cepctl, and the
 * control-plane connector later): Submit, List, Get, Follow, Abort, Status.
 *
 * Follow is a long-poll: a call with nothing to say yet is parked here and
 * answered by follow_kick - a listener of the run table, told of every
 * change and of each monitor turn (for deadlines that near) - so no handler thread is held while a
 * client waits.
 */
#define _GNU_SOURCE
#include "delegate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "clock.h"
#include "run_id.h"

#define FOLLOW_DEFAULT_MAX 256
#define FOLLOW_MAX 1000
#define FOLLOW_MAX_BYTES (3u * 1024u * 1024u)
#define FOLLOW_EARLY_MS 500 /* answered this long before the deadline */
#define STATUS_TIMEOUT_MS 500

/* Finds a run by id, or fails the call; d->mu held. */
static cep_run *admin_run(cep_delegate *d, cep_rpc_call *c, const char *id)
{
	cep_run *r = cep_run_id_valid(id) ? delegate_run_find(d, id) : NULL;
	if (r == NULL)
		cep_rpc_call_fail(c, CEP_NOT_FOUND, "no run %.40s", id);
	return r;
}

static void on_submit(cep_rpc_call *c, void *arg)
{
	cep_delegate *d = arg;
	const Cep__V1__SubmitRequest *req = (const Cep__V1__SubmitRequest *)
	    cep_rpc_call_request(c);
	cep_run_id id;
	char name[256];
	cep_err err = {0};
	snprintf(name, sizeof(name), "%s",
	    req->spec_name ? req->spec_name : "");
	const char *y = req->spec_yaml ? req->spec_yaml : "";
	if (delegate_submit(d, y, strlen(y), name, NULL, &id, &err) != CEP_OK) {
		cep_rpc_call_fail(c, err.code, "%s", err.msg);
		return;
	}
	Cep__V1__SubmitReply rep = CEP__V1__SUBMIT_REPLY__INIT;
	rep.run_id = id.s;
	cep_rpc_call_reply(c, &rep.base);
}

static void on_list(cep_rpc_call *c, void *arg)
{
	cep_delegate *d = arg;
	const Cep__V1__ListRequest *req = (const Cep__V1__ListRequest *)
	    cep_rpc_call_request(c);
	pthread_mutex_lock(&d->mu);
	size_t n = d->nruns;
	if (req->limit > 0 && req->limit < n)
		n = req->limit;
	cep_run_view *v = calloc(n + 1, sizeof(*v));
	Cep__V1__RunInfo **ip = calloc(n + 1, sizeof(*ip));
	if (v == NULL || ip == NULL) {
		cep_rpc_call_fail(c, CEP_RESOURCE_EXHAUSTED, "out of memory");
	} else {
		size_t k = 0;
		for (cep_run *r = d->runs; r != NULL && k < n;
		     r = r->next, k++) {
			delegate_run_view_init(&v[k], r);
			ip[k] = &v[k].info;
		}
		Cep__V1__RunList rep = CEP__V1__RUN_LIST__INIT;
		rep.n_runs = k;
		rep.runs = ip;
		cep_rpc_call_reply(c, &rep.base);
		for (size_t i = 0; i < k; i++)
			delegate_run_view_fini(&v[i]);
	}
	pthread_mutex_unlock(&d->mu);
	free(v);
	free(ip);
}

static void reply_run(cep_rpc_call *c, const cep_run *r)
{
	cep_run_view v;
	delegate_run_view_init(&v, r);
	cep_rpc_call_reply(c, &v.info.base);
	delegate_run_view_fini(&v);
}

static void on_get(cep_rpc_call *c, void *arg)
{
	cep_delegate *d = arg;
	const Cep__V1__GetRequest *req = (const Cep__V1__GetRequest *)
	    cep_rpc_call_request(c);
	pthread_mutex_lock(&d->mu);
	cep_run *r = admin_run(d, c, req->run_id);
	if (r != NULL)
		reply_run(c, r);
	pthread_mutex_unlock(&d->mu);
}

static void on_abort(cep_rpc_call *c, void *arg)
{
	cep_delegate *d = arg;
	const Cep__V1__AbortRequest *req = (const Cep__V1__AbortRequest *)
	    cep_rpc_call_request(c);
	char reason[256];
	snprintf(reason, sizeof(reason), "%s",
	    req->reason && req->reason[0] ? req->reason :
	                                    "aborted by operator");
	pthread_mutex_lock(&d->mu);
	cep_run *r = admin_run(d, c, req->run_id);
	if (r != NULL && cep_runstate_final(r->state)) {
		cep_rpc_call_fail(c, CEP_FAILED_PRECONDITION,
		    "run %s already finished (%s)", r->id.s,
		    cep_runstate_name(r->state));
	} else if (r != NULL) {
		delegate_run_request_abort(d, r, reason);
		reply_run(c, r);
	}
	pthread_mutex_unlock(&d->mu);
}

/* -------------------------------------------------------------- Follow */

/* Answers a Follow: events after after_seq (at most max, and a size cap)
 * and the run. d->mu held. */
static void follow_reply(cep_rpc_call *c, const cep_run *r, uint64_t after,
    uint32_t max)
{
	size_t first = after < r->nevents ? (size_t)after : r->nevents;
	size_t n = r->nevents - first, bytes = 0;
	if (n > max)
		n = max;
	for (size_t i = 0; i < n; i++) {
		bytes += cep__v1__event__get_packed_size(r->events[first + i]);
		if (bytes > FOLLOW_MAX_BYTES && i > 0) {
			n = i;
			break;
		}
	}
	cep_run_view v;
	delegate_run_view_init(&v, r);
	Cep__V1__FollowReply rep = CEP__V1__FOLLOW_REPLY__INIT;
	rep.n_events = n;
	rep.events = n ? &r->events[first] : NULL;
	rep.run = &v.info;
	cep_rpc_call_reply(c, &rep.base);
	delegate_run_view_fini(&v);
}

static bool follow_ready(const cep_run *r, uint64_t after)
{
	return r->nevents > after || cep_runstate_final(r->state);
}

static void follow_kick(cep_delegate *d, enum cep_run_news news, void *arg)
{
	(void)news;
	(void)arg;
	int64_t now = cep_clock_mono_ms();
	cep_parked **pp = &d->parked;
	while (*pp != NULL) {
		cep_parked *p = *pp;
		cep_run *r = delegate_run_find(d, p->run_id.s);
		if (r != NULL && !follow_ready(r, p->after_seq) &&
		    now < p->reply_by_mono) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		if (r != NULL)
			follow_reply(p->call, r, p->after_seq, p->max);
		else
			cep_rpc_call_fail(p->call, CEP_NOT_FOUND, "no run");
		free(p);
	}
}

static void on_follow(cep_rpc_call *c, void *arg)
{
	cep_delegate *d = arg;
	const Cep__V1__FollowRequest *req = (const Cep__V1__FollowRequest *)
	    cep_rpc_call_request(c);
	uint32_t max = req->max ? req->max : FOLLOW_DEFAULT_MAX;
	if (max > FOLLOW_MAX)
		max = FOLLOW_MAX;
	int64_t reply_by = cep_rpc_call_deadline(c) - FOLLOW_EARLY_MS;
	pthread_mutex_lock(&d->mu);
	cep_run *r = admin_run(d, c, req->run_id);
	cep_parked *p = NULL;
	if (r != NULL && !follow_ready(r, req->after_seq) &&
	    reply_by > cep_clock_mono_ms() && !d->stopping &&
	    (p = calloc(1, sizeof(*p))) != NULL) {
		p->call = c;
		p->run_id = r->id;
		p->after_seq = req->after_seq;
		p->max = max;
		p->reply_by_mono = reply_by;
		p->next = d->parked;
		d->parked = p;
	} else if (r != NULL) {
		follow_reply(c, r, req->after_seq, max);
	}
	pthread_mutex_unlock(&d->mu);
}

/* -------------------------------------------------------------- Status */

static void on_status(cep_rpc_call *c, void *arg)
{
	cep_delegate *d = arg;
	Cep__V1__StatsRequest sreq = CEP__V1__STATS_REQUEST__INIT;
	ProtobufCMessage *stats = NULL;
	cep_err err = {0};
	int rv = cep_rpc_invoke(d->relay, "cep.v1.Relay/Stats", &sreq.base,
	    &cep__v1__relay_stats__descriptor, &stats, STATUS_TIMEOUT_MS, &err);
	Cep__V1__StatusReply rep = CEP__V1__STATUS_REPLY__INIT;
	pthread_mutex_lock(&d->mu);
	rep.appliance = d->cfg.appliance;
	rep.version = (char *)CEP_VERSION;
	rep.active_runs = (uint32_t)delegate_run_active_count(d);
	rep.total_runs = d->nruns;
	rep.started_ms = d->started_ms;
	rep.relay_ok = rv == CEP_OK;
	rep.relay = rv == CEP_OK ? (Cep__V1__RelayStats *)stats : NULL;
	Cep__V1__ControlPlaneStatus cps;
	delegate_cp_link_status(d, &cps);
	if (d->cpl != NULL)
		rep.control_plane = &cps;
	cep_rpc_call_reply(c, &rep.base);
	pthread_mutex_unlock(&d->mu);
	if (stats != NULL)
		protobuf_c_message_free_unpacked(stats, NULL);
}

static const cep_rpc_method admin_methods[] = {
    {"cep.v1.Admin/Submit", &cep__v1__submit_request__descriptor, on_submit},
    {"cep.v1.Admin/List", &cep__v1__list_request__descriptor, on_list},
    {"cep.v1.Admin/Get", &cep__v1__get_request__descriptor, on_get},
    {"cep.v1.Admin/Follow", &cep__v1__follow_request__descriptor, on_follow},
    {"cep.v1.Admin/Abort", &cep__v1__abort_request__descriptor, on_abort},
    {"cep.v1.Admin/Status", &cep__v1__status_request__descriptor, on_status},
};

int delegate_admin_start(cep_delegate *d, cep_err *err)
{
	char url[4200];
	cep_rpc_server_opts opts = {.name = "admin"};
	int rv = delegate_run_subscribe(d, follow_kick, NULL, err);
	if (rv == CEP_OK)
		rv = cep_paths_url(&d->paths, "admin.sock", url, sizeof(url),
		    err);
	if (rv == CEP_OK)
		rv = cep_rpc_server_new(&d->admin_srv, admin_methods,
		    sizeof(admin_methods) / sizeof(admin_methods[0]), d, &opts,
		    err);
	if (rv == CEP_OK)
		rv = cep_rpc_server_listen(d->admin_srv, url, NULL, err);
	return rv;
}
