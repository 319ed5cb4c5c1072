/*
 * fuzz_envelope.c - libFuzzer target for the RPC server's frame decoder:
 * whatever bytes a peer sends, cep_rpc_decode_frame must answer with a
 * status (or a decoded request) without crashing, leaking or reading out
 * of bounds. The method table mirrors the relay's runner socket: the
 * bodies a hostile runner can reach.
 *
 * Build: CC=clang cmake -DCEP_FUZZ=ON ...; run: ./fuzz_envelope -max_len=65536
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cep.pb-c.h"
#include "rpc_int.h"

static void no_handler(cep_rpc_call *c, void *arg)
{
	(void)c;
	(void)arg;
}

static const cep_rpc_method table[] = {
    {"cep.v1.Runner/Challenge", &cep__v1__challenge_request__descriptor,
        no_handler},
    {"cep.v1.Runner/Prove", &cep__v1__prove_request__descriptor, no_handler},
    {"cep.v1.Runner/GetAssignment", &cep__v1__assignment_request__descriptor,
        no_handler},
    {"cep.v1.Runner/PushEvents", &cep__v1__event_batch__descriptor, no_handler},
    {"cep.v1.Runner/WatchCommands", &cep__v1__watch_request__descriptor,
        no_handler},
    {"cep.v1.Runner/RecordFault", &cep__v1__fault_record__descriptor,
        no_handler},
    {"cep.v1.Relay/SyncRuns", &cep__v1__run_grants__descriptor, no_handler},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cep_rpc_frame f;
	cep_rpc_decode_frame(table, sizeof(table) / sizeof(table[0]), data,
	    size, &f);
	/* the contract: a status with a text, or a body and a method, or the
	 * built-in ping (the server answers it; no body) */
	if (f.code != 0 && (f.error[0] == '\0' || f.body != NULL))
		abort();
	if (f.code == 0 && f.method == &cep_rpc_ping_method) {
		if (f.body != NULL)
			abort();
	} else if (f.code == 0 && (f.body == NULL || f.method == NULL)) {
		abort();
	}
	cep_rpc_frame_clear(&f);
	return 0;
}
