/*
 * relay_api.c - the Relay service: what the delegate tells the relay
 * (over ipc <run>/relay.sock, trusted by file permissions).
 *
 * SyncRuns replaces the active set; runs that leave it lose their pipes'
 * bindings and their parked long-polls are answered. SendCommand queues a
 * command and wakes the run's long-polls. Stats reports the counters.
 */
#define _GNU_SOURCE
#include "relay_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static void reply_sync(cep_rpc_call *c, uint32_t active)
{
	Cep__V1__SyncReply rep = CEP__V1__SYNC_REPLY__INIT;
	rep.active = active;
	cep_rpc_call_reply(c, &rep.base);
}

static void h_sync_runs(cep_rpc_call *c, void *arg)
{
	cep_relay *r = arg;
	const Cep__V1__RunGrants *g = (const Cep__V1__RunGrants *)
	    cep_rpc_call_request(c);
	cep_run_id *left = NULL;
	size_t nleft = 0, added = 0, *unbound = NULL;
	cep_err err = {0};

	pthread_mutex_lock(&r->mu);
	int rv = relay_registry_sync(r->reg, g, &left, &nleft, &added, &err);
	if (rv == CEP_OK && nleft > 0)
		unbound = calloc(nleft, sizeof(*unbound));
	for (size_t i = 0; rv == CEP_OK && i < nleft; i++) {
		size_t n = relay_pipes_unbind_run(r->pipes, left[i].s);
		if (unbound != NULL)
			unbound[i] = n;
	}
	uint32_t active = (uint32_t)relay_registry_count(r->reg);
	pthread_mutex_unlock(&r->mu);

	if (rv != CEP_OK) {
		cep_log_warn(NULL, "SyncRuns refused: %s", err.msg);
		cep_rpc_call_fail(c, rv, "%s", err.msg);
		return;
	}
	for (size_t i = 0; i < nleft; i++) {
		relay_wake_run(r, left[i].s, true);
		cep_log_info(left[i].s,
		    "run left the registry; %zu connection(s) "
		    "unbound",
		    unbound != NULL ? unbound[i] : 0);
	}
	if (added > 0 || nleft > 0)
		cep_log_info(NULL,
		    "runs synced: %" PRIu32 " active (+%zu -%zu)", active,
		    added, nleft);
	free(unbound);
	free(left);
	reply_sync(c, active);
}

static void h_send_command(cep_rpc_call *c, void *arg)
{
	cep_relay *r = arg;
	const Cep__V1__CommandForRun *req = (const Cep__V1__CommandForRun *)
	    cep_rpc_call_request(c);
	if (req->command == NULL) {
		cep_rpc_call_fail(c, CEP_INVALID_ARGUMENT,
		    "SendCommand: command missing");
		return;
	}
	bool queued = false;
	cep_err err = {0};
	pthread_mutex_lock(&r->mu);
	int rv = relay_registry_add_command(r->reg, req->run_id, req->command,
	    &queued, &err);
	uint32_t active = (uint32_t)relay_registry_count(r->reg);
	pthread_mutex_unlock(&r->mu);
	if (rv != CEP_OK) {
		cep_rpc_call_fail(c, rv, "%s", err.msg);
		return;
	}
	if (queued) {
		const ProtobufCEnumValue *k =
		    protobuf_c_enum_descriptor_get_value(
		        &cep__v1__command__kind__descriptor,
		        (int)req->command->kind);
		cep_log_info(req->run_id,
		    "command %s seq=%" PRIu64 " queued: %s",
		    k != NULL ? k->name : "?", req->command->seq,
		    req->command->reason);
		relay_wake_run(r, req->run_id, false);
	}
	reply_sync(c, active);
}

/* Counters as of now; the map lists only reasons that happened. */
static void h_stats(cep_rpc_call *c, void *arg)
{
	cep_relay *r = arg;
	Cep__V1__RelayStats st = CEP__V1__RELAY_STATS__INIT;
	Cep__V1__RelayStats__RefusalsByReasonEntry ent[CEP_REFUSE_N];
	Cep__V1__RelayStats__RefusalsByReasonEntry *ptr[CEP_REFUSE_N];
	size_t n = 0;

	pthread_mutex_lock(&r->mu);
	st.runners_connected = relay_pipes_bound(r->pipes);
	st.calls = r->calls;
	st.refused = r->refused;
	st.events_in = r->events_in;
	for (size_t i = 0; i < CEP_REFUSE_N; i++) {
		if (r->by_reason[i] == 0)
			continue;
		cep__v1__relay_stats__refusals_by_reason_entry__init(&ent[n]);
		ent[n].key = (char *)relay_refusal_names[i];
		ent[n].value = r->by_reason[i];
		ptr[n] = &ent[n];
		n++;
	}
	pthread_mutex_unlock(&r->mu);
	st.n_refusals_by_reason = n;
	st.refusals_by_reason = ptr;
	cep_rpc_call_reply(c, &st.base);
}

const cep_rpc_method relay_ipc_methods[] = {
    {"cep.v1.Relay/SyncRuns", &cep__v1__run_grants__descriptor, h_sync_runs},
    {"cep.v1.Relay/SendCommand", &cep__v1__command_for_run__descriptor,
        h_send_command},
    {"cep.v1.Relay/Stats", &cep__v1__stats_request__descriptor, h_stats},
};
const size_t relay_ipc_nmethods = sizeof(relay_ipc_methods) /
    sizeof(relay_ipc_methods[0]);
