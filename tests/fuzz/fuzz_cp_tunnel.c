/* fuzz_cp_tunnel.c - libFuzzer target: the runner's end of the
 * control-plane tunnel (runner/tunnel.c): what the plane answers to a
 * tunnelled call, read as the runner reads it - cep_cp_reply_decode with no
 * reply type (the body is the relay's reply Envelope, raw), then
 * cep_rpc_reply_unpack for the call's id and method. fuzz_cp_reply covers
 * the plane's own replies; this is the relayed Envelope the plane could
 * forge. The first byte picks the HTTP status, the second the
 * Content-Type, the third the method (and reply type), the fourth the
 * call id; the rest is the body. Invariants: only a 200 protobuf answer
 * yields an Envelope; a reply is decoded only from an Envelope with the
 * call's id and status 0, and then packs to bytes that decode to the
 * same bytes again (round trip); every error names the method and holds
 * no control characters (it reaches logs). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cep.pb-c.h"
#include "cp_int.h"
#include "rpc.h"

static void trap_unless(int ok)
{
	if (!ok)
		__builtin_trap();
}

static void clean_text(const char *s)
{
	for (; *s; s++)
		trap_unless((unsigned char)*s >= 0x20 && *s != 0x7f);
}

/* pack(m) == pack(unpack(pack(m))) */
static void round_trip(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *a = malloc(n + 1), *b = malloc(n + 1);
	trap_unless(a != NULL && b != NULL);
	trap_unless(protobuf_c_message_pack(m, a) == n);
	ProtobufCMessage *again = protobuf_c_message_unpack(m->descriptor, NULL,
	    n, a);
	trap_unless(again != NULL);
	trap_unless(protobuf_c_message_get_packed_size(again) == n);
	trap_unless(protobuf_c_message_pack(again, b) == n);
	trap_unless(memcmp(a, b, n) == 0);
	protobuf_c_message_free_unpacked(again, NULL);
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = {"application/x-protobuf",
	    "application/x-protobuf; charset=binary", "text/plain", NULL};
	static const struct {
		const char *method;
		const ProtobufCMessageDescriptor *reply;
	} calls[] = {
	    {"cep.v1.Runner/Challenge", &cep__v1__challenge_reply__descriptor},
	    {"cep.v1.Runner/Prove", &cep__v1__prove_reply__descriptor},
	    {"cep.v1.Runner/GetAssignment", &cep__v1__assignment__descriptor},
	    {"cep.v1.Runner/PushEvents", &cep__v1__event_ack__descriptor},
	    {"cep.v1.Runner/WatchCommands",
	        &cep__v1__command_batch__descriptor},
	    {"cep.v1.Runner/RecordFault", &cep__v1__fault_ack__descriptor},
	};
	if (size < 4)
		return 0;
	/* 200, or 100..608 in steps of 4 (504 = 0xca) */
	long http = data[0] & 1 ? 200 : 100 + (long)(data[0] >> 1) * 4;
	const char *ct = types[data[1] % 4];
	size_t pick = data[2] % (sizeof(calls) / sizeof(calls[0]));
	const char *method = calls[pick].method;
	uint64_t id = data[3];
	const uint8_t *body = data + 4;
	size_t len = size - 4;

	ProtobufCMessage *none = NULL;
	cep_err err = {0};
	cep_cp_answer a = {.http = http, .ctype = ct, .body = body, .len = len};
	int rc = cep_cp_reply_decode(method, "plane.test:443", &a, NULL, &none,
	    &err);
	trap_unless(none == NULL);
	if (rc != CEP_OK) {
		trap_unless(strstr(err.msg, method) != NULL);
		clean_text(err.msg);
		return 0;
	}
	trap_unless(http == 200 && ct != NULL &&
	    strncmp(ct, "application/x-protobuf", 22) == 0);

	ProtobufCMessage *reply = NULL;
	rc = cep_rpc_reply_unpack(body, len, id, method, calls[pick].reply,
	    &reply, &err);
	Cep__V1__Envelope *env = cep__v1__envelope__unpack(NULL, len, body);
	if (rc == CEP_OK) {
		trap_unless(reply != NULL && env != NULL);
		trap_unless(env->call_id == id && env->code == 0);
		round_trip(reply);
		protobuf_c_message_free_unpacked(reply, NULL);
	} else {
		trap_unless(reply == NULL);
		trap_unless(rc > CEP_OK && rc <= CEP_UNAUTHENTICATED);
		/* the relay's own text for its status, else one naming the call */
		if (env == NULL || env->call_id != id || env->code == 0)
			trap_unless(strstr(err.msg, method) != NULL);
		clean_text(err.msg);
	}
	if (env != NULL)
		cep__v1__envelope__free_unpacked(env, NULL);
	return 0;
}
