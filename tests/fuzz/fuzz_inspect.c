/*
 * fuzz_inspect.c - libFuzzer target for cep-launcher's Inspect request:
 * whatever bytes the delegate's socket delivers, decoding them as a
 * LauncherInspect and checking every field (launcher_check_inspect)
 * must answer OK or a refusal naming why, without crashing or reading out
 * of bounds; a request that passes is answered (launcher_inspect
 * only reads: /proc, O_PATH descriptors, fstatvfs), and its facts must
 * be packable, with a comm or an error string that is text.
 *
 * Build: CC=clang cmake -DCEP_FUZZ=ON ...; run: ./fuzz_inspect -max_len=8192
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cep.pb-c.h"
#include "launcher.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Cep__V1__LauncherInspect *q = cep__v1__launcher_inspect__unpack(NULL,
	    size, data);
	if (q == NULL)
		return 0;
	cep_err err = {0};
	int rv = launcher_check_inspect(q, &err);
	if (rv != CEP_OK && err.msg[0] == '\0')
		abort(); /* a refusal always says why */
	if (rv == CEP_OK) {
		/* what passed is text of bounded length */
		if (memchr(q->path.data, '\0', q->path.len) != NULL ||
		    q->path.len > CEP_LAUNCHER_MAX_PATH ||
		    (q->path.len > 0 && q->path.data[0] != '/'))
			abort();
		static cep_launcher_facts f;
		launcher_inspect(q, &f);
		if (strnlen(f.comm, sizeof(f.comm)) == sizeof(f.comm) ||
		    strnlen(f.netns_error, sizeof(f.netns_error)) ==
		        sizeof(f.netns_error))
			abort();
		size_t n = protobuf_c_message_get_packed_size(&f.rep.base);
		uint8_t *buf = malloc(n + 1);
		if (buf == NULL ||
		    protobuf_c_message_pack(&f.rep.base, buf) != n)
			abort();
		free(buf);
	}
	cep__v1__launcher_inspect__free_unpacked(q, NULL);
	return 0;
}
