/*
 * cmd_report.c - `cepctl report RUN [--html FILE]`: a past run's report
 * read from its journal (report_journal.c), not from the delegate: it
 * works with the delegate stopped, and on a journal copied elsewhere.
 * RUN is a run id (its journal in the home's state/runs/) or the path of
 * a run's folder (anything with a '/').
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd_common.h"
#include "files.h"
#include "paths.h"
#include "report.h"
#include "run_id.h"

static int run_dir(const cepctl_opts *o, const char *run, char *dir, size_t len,
    cep_err *err)
{
	if (strchr(run, '/') != NULL)
		return cep_files_path(dir, len, err, "%s", run);
	if (!cep_run_id_valid(run))
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "\"%s\" is neither a run id (r-<16 hex digits>) nor a "
		    "run's folder",
		    run);
	cep_paths p;
	int rv = cep_paths_resolve(o->home, &p, err);
	if (rv != CEP_OK)
		return rv;
	return cep_files_path(dir, len, err, "%s/runs/%s", p.state, run);
}

int cepctl_cmd_report(const cepctl_opts *o0, int argc, char **argv)
{
	cepctl_opts o = *o0;
	const char *html = NULL, *pos[1];
	const cepctl_flag flags[] = {{"--html", &html}, {NULL, NULL}};
	int npos;
	if (cepctl_parse_args(&o, argc, argv, flags, pos, 1, &npos) != 0)
		return CEPCTL_ERROR;
	if (npos != 1) {
		fputs("usage: cepctl report RUN [--html FILE] "
		      "[--output text|json|junit]\n",
		    stderr);
		return CEPCTL_ERROR;
	}
	char dir[4096];
	cep_err err;
	cepctl_report *r = NULL;
	if (run_dir(&o, pos[0], dir, sizeof(dir), &err) != CEP_OK ||
	    cepctl_report_from_journal(dir, &r, &err) != CEP_OK ||
	    (html != NULL &&
	        cepctl_report_write_html(r, html, &err) != CEP_OK)) {
		fprintf(stderr, "cepctl report: %s\n", err.msg);
		cepctl_report_free(r);
		return CEPCTL_ERROR;
	}
	if (html == NULL)
		cepctl_report_render(r, o.output, stdout);
	else if (!o.quiet)
		printf("report of %s written to %s\n", pos[0], html);
	cepctl_report_free(r);
	return CEPCTL_OK;
}
