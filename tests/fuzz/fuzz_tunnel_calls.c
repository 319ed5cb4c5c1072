/* fuzz_tunnel_calls.c - libFuzzer target: a TunnelPoll answer as the
 * relay's tunnel takes it from the control plane (relay/tunnel.c): the
 * body decoded as CpTunnelCalls (cep_cp_reply_decode), each call's run id and
 * session checked, its Envelope dispatched to a Runner server on the
 * session's virtual pipe. Invariants: every call gets exactly one reply
 * carrying the call's id (none lost, none made up), each reply is a
 * decodable Envelope, a call with a bad run id or session is refused
 * with INVALID_ARGUMENT before any handler runs, every handled call runs
 * on a virtual pipe, one pipe per (run id, session), and the session
 * table stays bounded. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cep.pb-c.h"
#include "cp_int.h"
#include "log.h"
#include "rpc.h"
#include "tunnel_int.h"
#include "clock.h"
#include "run_id.h"

#define WAIT_MS 5000

static void trap_unless(int ok)
{
	if (!ok)
		__builtin_trap();
}

/* Every handled call lands here: it must be on a virtual pipe. */
static void answer(cep_rpc_call *c, void *arg)
{
	(void)arg;
	trap_unless((cep_rpc_call_pipe(c).id & CEP_RPC_VIRTUAL_PIPE) != 0);
	trap_unless(cep_rpc_call_peer_verified(c));
	trap_unless(strncmp(cep_rpc_call_peer(c), "cp-tunnel/", 10) == 0);
	if (strcmp(cep_rpc_call_method(c), "cep.v1.Runner/Challenge") == 0)
		cep_rpc_call_fail(c, CEP_PERMISSION_DENIED, "fuzz");
	else
		cep_rpc_call_reply(c, NULL);
}

/* The relay's Runner methods (relay/runner_api.c) with one handler. */
static const cep_rpc_method table[] = {
    {"cep.v1.Runner/Challenge", &cep__v1__challenge_request__descriptor,
        answer},
    {"cep.v1.Runner/Prove", &cep__v1__prove_request__descriptor, answer},
    {"cep.v1.Runner/GetAssignment", &cep__v1__assignment_request__descriptor,
        answer},
    {"cep.v1.Runner/PushEvents", &cep__v1__event_batch__descriptor, answer},
    {"cep.v1.Runner/RecordFault", &cep__v1__fault_record__descriptor, answer},
};

static void gone(cep_pipe_id pipe, void *arg)
{
	(void)pipe;
	(void)arg;
}

static cep_rpc_server *server(void)
{
	static cep_rpc_server *s;
	if (s == NULL) {
		cep_log_set_level(CEP_LOG_ERROR); /* refusals are expected */
		cep_rpc_server_opts o = {.name = "fuzz-runners", .workers = 2};
		cep_err err;
		trap_unless(cep_rpc_server_new(&s, table,
		                sizeof(table) / sizeof(table[0]), NULL, &o,
		                &err) == CEP_OK);
	}
	return s;
}

static bool session_ok(const char *s)
{
	size_t n = strlen(s);
	return n >= 16 && n <= 64 && strspn(s, "0123456789abcdef") == n;
}

static bool call_ok(const Cep__V1__CpTunnelCall *c)
{
	return cep_run_id_valid(c->run_id) && session_ok(c->session);
}

/* The call not answered yet that a reply with this id can be for (ids
 * may repeat): a refusal goes to a refused call first, anything else
 * only to a call that passed the checks. n when there is none. */
static size_t match(const Cep__V1__CpTunnelCalls *calls, const bool *answered,
    uint64_t id, bool refusal)
{
	size_t n = calls->n_calls;
	for (int pass = refusal ? 0 : 1; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			const Cep__V1__CpTunnelCall *c = calls->calls[i];
			if (!answered[i] && c->id == id &&
			    call_ok(c) == (pass == 1))
				return i;
		}
	return n;
}

/* Takes the n replies, matching each to one call not answered yet; a
 * reply missing after WAIT_MS is a lost one. */
static void collect(cep_tunnel *t, const Cep__V1__CpTunnelCalls *calls,
    bool *answered)
{
	size_t n = calls->n_calls, got = 0;
	int64_t end = cep_clock_mono_ms() + WAIT_MS;
	while (got < n) {
		uint64_t id;
		uint8_t *buf;
		size_t len;
		if (!relay_tunnel_reply_pop(t, &id, &buf, &len)) {
			trap_unless(cep_clock_mono_ms() < end);
			cep_clock_sleep_ms(1);
			continue;
		}
		Cep__V1__Envelope *e = cep__v1__envelope__unpack(NULL, len,
		    buf);
		trap_unless(e != NULL);
		size_t i = match(calls, answered, id,
		    e->code == CEP_INVALID_ARGUMENT);
		trap_unless(i < n); /* a reply to no call, or a second one */
		answered[i] = true;
		cep__v1__envelope__free_unpacked(e, NULL);
		free(buf);
		got++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ProtobufCMessage *m = NULL;
	cep_err err = {0};
	cep_cp_answer a = {.http = 200,
	    .ctype = "application/x-protobuf",
	    .body = data,
	    .len = size};
	if (cep_cp_reply_decode("TunnelPoll", "plane.test:443", &a,
	        &cep__v1__cp_tunnel_calls__descriptor, &m, &err) != CEP_OK) {
		trap_unless(m == NULL && strstr(err.msg, "TunnelPoll") != NULL);
		return 0;
	}
	const Cep__V1__CpTunnelCalls *calls = (const Cep__V1__CpTunnelCalls *)m;
	if (calls->n_calls > REPLY_QUEUE_MAX) { /* replies would be dropped */
		protobuf_c_message_free_unpacked(m, NULL);
		return 0;
	}
	cep_tunnel *t = relay_tunnel_alloc("fuzz", server(), gone, NULL);
	bool *answered = calloc(calls->n_calls + 1, sizeof(bool));
	trap_unless(t != NULL && answered != NULL);
	relay_tunnel_take_calls(t, calls);
	collect(t, calls, answered);
	trap_unless(relay_tunnel_sessions(t) <= SESSION_MAX &&
	    relay_tunnel_sessions(t) <= calls->n_calls);
	free(answered);
	relay_tunnel_free(t);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}
