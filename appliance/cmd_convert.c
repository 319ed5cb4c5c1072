/*
 * cmd_convert.c - `cepctl convert FILE`: a LitmusChaos ChaosEngine printed
 * as the native cep experiment it runs as (docs/litmus.md). The output is
 * what `cepctl validate` and `cepctl run` accept; the conversion itself is
 * lib/model/litmus.c, the same code every other path uses.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "cmd_common.h"
#include "files.h"
#include "litmus.h"

int cepctl_cmd_convert(const cepctl_opts *o0, int argc, char **argv)
{
	cepctl_opts o = *o0;
	const char *path = NULL;
	if (cepctl_one_arg(&o, argc, argv, "cepctl convert FILE", &path) != 0)
		return CEPCTL_ERROR;
	char *text = NULL, *native = NULL;
	size_t len = 0;
	cep_err err;
	if (cep_files_read(path, 1u << 20, &text, &len, &err) != CEP_OK) {
		fprintf(stderr, "cepctl convert: %s\n", err.msg);
		return CEPCTL_ERROR;
	}
	cep_exp_diags d = {0};
	int rv = cep_litmus_convert(text, len, path, &native, &d, &err);
	free(text);
	if (rv != CEP_OK) {
		for (size_t i = 0; i < d.n; i++)
			fprintf(stderr, "%s\n", d.msgs[i]);
		if (d.n == 0)
			fprintf(stderr, "%s\n", err.msg);
		if (d.dropped > 0)
			fprintf(stderr, "%s: ... and %zu more problems\n", path,
			    d.dropped);
		return rv == CEP_INVALID_ARGUMENT ? CEPCTL_FAIL : CEPCTL_ERROR;
	}
	int out = fputs(native, stdout) == EOF || fflush(stdout) != 0 ?
	    CEPCTL_ERROR :
	    CEPCTL_OK;
	free(native);
	return out;
}
