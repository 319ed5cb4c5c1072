/*
 * cmd_report.c - `cepctl report RUN [--html FILE]`: a past run's report
 * read from its journal (report_journal.c), not from the delegate: it
 * works with the delegate stopped, and on a journal copied elsewhere.
 * RUN is a run id (its journal in the home's state/runs/) or the path of
 * a run's folder (anything with a '/').
 *
 * `cepctl report --events FILE [--spec FILE]` renders the same page from
 * a run's events alone, as a control plane stores them (one serialized
 * cep.v1.EventBatch): how the reference control plane answers
 * GET /admin/report (docs/report.md), with this one renderer.
 * `--html -` writes the page to stdout.
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

static int load(const cepctl_opts *o, const char *run, const char *events,
    const char *spec, cepctl_report **r, cep_err *err)
{
	if (events != NULL)
		return cepctl_report_from_events(events, spec, r, err);
	char dir[4096];
	int rv = run_dir(o, run, dir, sizeof(dir), err);
	return rv == CEP_OK ? cepctl_report_from_journal(dir, r, err) : rv;
}

static int write_html(const cepctl_report *r, const char *html, cep_err *err)
{
	if (strcmp(html, "-") != 0)
		return cepctl_report_write_html(r, html, err);
	cepctl_report_render_html(r, stdout);
	if (ferror(stdout))
		return cep_err_set(err, CEP_UNAVAILABLE,
		    "writing stdout failed");
	return CEP_OK;
}

int cepctl_cmd_report(const cepctl_opts *o0, int argc, char **argv)
{
	cepctl_opts o = *o0;
	const char *html = NULL, *events = NULL, *spec = NULL, *pos[1];
	const cepctl_flag flags[] = {{"--html", &html}, {"--events", &events},
	    {"--spec", &spec}, {NULL, NULL}};
	int npos;
	if (cepctl_parse_args(&o, argc, argv, flags, pos, 1, &npos) != 0)
		return CEPCTL_ERROR;
	if (npos != (events == NULL ? 1 : 0) ||
	    (spec != NULL && events == NULL)) {
		fputs("usage: cepctl report RUN [--html FILE|-] "
		      "[--output text|json|junit]\n"
		      "       cepctl report --events FILE [--spec FILE] "
		      "[--html FILE|-] [--output ...]\n",
		    stderr);
		return CEPCTL_ERROR;
	}
	cep_err err;
	cepctl_report *r = NULL;
	if (load(&o, npos ? pos[0] : NULL, events, spec, &r, &err) != CEP_OK ||
	    (html != NULL && write_html(r, html, &err) != CEP_OK)) {
		fprintf(stderr, "cepctl report: %s\n", err.msg);
		cepctl_report_free(r);
		return CEPCTL_ERROR;
	}
	if (html == NULL)
		cepctl_report_render(r, o.output, stdout);
	else if (!o.quiet && strcmp(html, "-") != 0)
		printf("report of %s written to %s\n", npos ? pos[0] : events,
		    html);
	cepctl_report_free(r);
	return CEPCTL_OK;
}
