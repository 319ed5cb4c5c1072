/* fuzz_litmus.c - libFuzzer target: cep_litmus_convert on arbitrary bytes
 * (the ChaosEngine reader, lib/model/litmus*.c); on success the native
 * text it wrote is read back with cep_exp_parse. Must never crash or
 * leak; a failure must come with at least one message. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exp.h"
#include "litmus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *native = NULL;
	cep_exp_diags d;
	cep_err err;
	if (cep_litmus_convert((const char *)data, size, "fuzz.yaml", &native,
	        &d, &err) != CEP_OK) {
		if (native != NULL || d.n == 0 || err.msg[0] == '\0')
			__builtin_trap();
		return 0;
	}
	cep_exp *e = NULL;
	if (cep_exp_parse(native, strlen(native), "converted", &e, &d, &err) !=
	    CEP_OK) {
		if (d.n == 0 || err.msg[0] == '\0')
			__builtin_trap();
	} else {
		volatile size_t sink = strlen(cep_exp_name(e)) +
		    cep_exp_nfaults(e) + cep_exp_nprobes(e);
		(void)sink;
	}
	cep_exp_free(e);
	free(native);
	return 0;
}
