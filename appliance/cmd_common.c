/* cmd_common.c - option parsing shared by cepctl's commands, exit codes. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd_common.h"

/* Commands accept the global options after their name too
 * (`cepctl run x.yaml --output json`), plus the flags in `extra`. */
int cepctl_parse_args(cepctl_opts *o, int argc, char **argv,
    const cepctl_flag *extra, const char **pos, int max_pos, int *npos)
{
	*npos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = (i + 1 < argc) ? argv[i + 1] : NULL;
		if (strcmp(a, "--output") == 0 || strcmp(a, "-o") == 0) {
			if (val == NULL)
				goto missing;
			if (strcmp(val, "text") == 0)
				o->output = CEPCTL_OUT_TEXT;
			else if (strcmp(val, "json") == 0)
				o->output = CEPCTL_OUT_JSON;
			else if (strcmp(val, "junit") == 0)
				o->output = CEPCTL_OUT_JUNIT;
			else {
				fprintf(stderr,
				    "cepctl %s: --output must be text, "
				    "json or junit, not \"%s\"\n",
				    argv[0], val);
				return -1;
			}
			i++;
			continue;
		}
		if (strcmp(a, "--home") == 0) {
			if (val == NULL)
				goto missing;
			o->home = val;
			i++;
			continue;
		}
		if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
			o->quiet = true;
			continue;
		}
		if (strcmp(a, "--follow") == 0 || strcmp(a, "-f") == 0) {
			o->follow = true;
			continue;
		}
		const cepctl_flag *f = extra;
		for (; f != NULL && f->name != NULL; f++)
			if (strcmp(a, f->name) == 0)
				break;
		if (f != NULL && f->name != NULL) {
			if (val == NULL)
				goto missing;
			*f->value = val;
			i++;
			continue;
		}
		if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "cepctl %s: unknown option %s\n",
			    argv[0], a);
			return -1;
		}
		if (*npos >= max_pos) {
			fprintf(stderr,
			    "cepctl %s: unexpected argument \"%s\"\n", argv[0],
			    a);
			return -1;
		}
		pos[(*npos)++] = a;
		continue;
	missing:
		fprintf(stderr, "cepctl %s: %s needs a value\n", argv[0], a);
		return -1;
	}
	return 0;
}

int cepctl_exit_for_state(int state)
{
	switch (state) {
	case CEP__V1__RUN_STATE__RUN_PASSED: return CEPCTL_OK;
	case CEP__V1__RUN_STATE__RUN_FAILED: return CEPCTL_FAIL;
	default: return CEPCTL_ERROR;
	}
}

int cepctl_one_arg(cepctl_opts *o, int argc, char **argv, const char *usage,
    const char **arg)
{
	const char *pos[1];
	int npos;
	if (cepctl_parse_args(o, argc, argv, NULL, pos, 1, &npos) != 0)
		return -1;
	if (npos != 1) {
		fprintf(stderr, "usage: %s\n", usage);
		return -1;
	}
	*arg = pos[0];
	return 0;
}

int cepctl_one_run(cepctl_opts *o, int argc, char **argv, const char *usage,
    const char **run, cepctl_admin **a)
{
	const char *pos = NULL;
	if (cepctl_one_arg(o, argc, argv, usage, &pos) != 0)
		return -1;
	cep_err err;
	if (cepctl_admin_open(o, a, &err) != CEP_OK) {
		fprintf(stderr, "cepctl %s: %s\n", argv[0], err.msg);
		return -1;
	}
	*run = pos;
	return 0;
}
