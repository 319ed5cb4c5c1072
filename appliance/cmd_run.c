/*
 * cmd_run.c - `cepctl run FILE`, `cepctl logs RUN`, and the follow loop
 * they share: Admin/Follow long-polls, progress lines, the final report.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_common.h"
#include "exp.h"
#include "report.h"
#include "clock.h"
#include "files.h"
#include "run_id.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int send_abort(cepctl_admin *a, const char *run_id, const char *why)
{
	Cep__V1__AbortRequest req = CEP__V1__ABORT_REQUEST__INIT;
	req.run_id = (char *)run_id;
	req.reason = (char *)why;
	ProtobufCMessage *reply = NULL;
	cep_err err;
	int rv = cepctl_admin_call(a, "Abort", &req.base,
	    &cep__v1__run_info__descriptor, &reply, 5000, &err);
	if (rv != CEP_OK)
		fprintf(stderr, "cepctl: abort %s: %s\n", run_id, err.msg);
	if (reply != NULL)
		protobuf_c_message_free_unpacked(reply, NULL);
	return rv;
}

int cepctl_follow_once(cepctl_admin *a, const char *run_id, cepctl_report *r,
    FILE *progress, int64_t *t0, int *state, int timeout_ms, cep_err *err)
{
	Cep__V1__FollowRequest req = CEP__V1__FOLLOW_REQUEST__INIT;
	req.run_id = (char *)run_id;
	req.after_seq = cepctl_report_last_seq(r);
	req.max = 500;
	Cep__V1__FollowReply *rep = NULL;
	int rv = cepctl_admin_call(a, "Follow", &req.base,
	    &cep__v1__follow_reply__descriptor, (ProtobufCMessage **)&rep,
	    timeout_ms, err);
	if (rv != CEP_OK)
		return rv;
	for (size_t i = 0; i < rep->n_events; i++) {
		const Cep__V1__Event *ev = rep->events[i];
		if (ev->seq <= cepctl_report_last_seq(r))
			continue;
		if (*t0 == 0)
			*t0 = ev->time_ms;
		if (progress != NULL)
			cepctl_progress_event(ev, *t0, progress);
		cepctl_report_add(r, ev);
	}
	if (rep->run != NULL) {
		cepctl_report_set_run(r, rep->run);
		*state = rep->run->state;
	}
	protobuf_c_message_free_unpacked(&rep->base, NULL);
	return CEP_OK;
}

int cepctl_follow_and_report(const cepctl_opts *o, cepctl_admin *a,
    const char *run_id, FILE *progress)
{
	struct sigaction sa = {.sa_handler = on_sigint};
	sigaction(SIGINT, &sa, NULL);
	cepctl_report *r = cepctl_report_new();
	int64_t t0 = 0;
	int state = 0, failures = 0;
	bool aborted = false;
	cep_err err;
	while (!cep_runstate_final(state)) {
		if (interrupted && !aborted) {
			if (progress)
				fprintf(progress,
				    "interrupted: aborting run %s "
				    "(faults are reverted)\n",
				    run_id);
			send_abort(a, run_id, "aborted by operator (Ctrl-C)");
			aborted = true;
		}
		int rv = cepctl_follow_once(a, run_id, r, progress, &t0, &state,
		    10000, &err);
		if (rv == CEP_OK) {
			failures = 0;
			continue;
		}
		if (rv == CEP_NOT_FOUND || ++failures > 20) {
			fprintf(stderr, "cepctl: following %s: %s\n", run_id,
			    err.msg);
			cepctl_report_free(r);
			return CEPCTL_ERROR;
		}
		cep_clock_sleep_ms(cep_rpc_backoff_ms(failures, 100, 1000));
	}
	/* the final answer may arrive before the last events: drain them */
	int drained = 0;
	uint64_t before;
	do {
		before = cepctl_report_last_seq(r);
		cepctl_follow_once(a, run_id, r, progress, &t0, &state, 2000,
		    &err);
	} while (cepctl_report_last_seq(r) != before && ++drained < 100);
	cepctl_report_render(r, o->output, stdout);
	if (o->report_html != NULL) {
		cepctl_report_set_spec(r, o->spec_yaml);
		if (cepctl_report_write_html(r, o->report_html, &err) !=
		    CEP_OK) {
			fprintf(stderr, "cepctl: %s\n", err.msg);
			cepctl_report_free(r);
			return CEPCTL_ERROR;
		}
	}
	cepctl_report_free(r);
	return cepctl_exit_for_state(state);
}

int cepctl_cmd_run(const cepctl_opts *o0, int argc, char **argv)
{
	cepctl_opts o = *o0;
	const char *pos[1];
	int npos;
	const cepctl_flag flags[] = {{"--report", &o.report_html},
	    {NULL, NULL}};
	if (cepctl_parse_args(&o, argc, argv, flags, pos, 1, &npos) != 0)
		return CEPCTL_ERROR;
	if (npos != 1) {
		fputs("usage: cepctl run FILE [--output text|json|junit] "
		      "[--report HTML]\n",
		    stderr);
		return CEPCTL_ERROR;
	}
	char *text = NULL;
	size_t len = 0;
	cep_err err;
	if (cep_files_read(pos[0], 1u << 20, &text, &len, &err) != CEP_OK) {
		fprintf(stderr, "cepctl run: %s\n", err.msg);
		return CEPCTL_ERROR;
	}
	/* validate here first: errors with positions, no round trip */
	cep_exp_diags diags = {0};
	cep_exp *e = NULL;
	if (cep_exp_parse(text, len, pos[0], &e, &diags, &err) != CEP_OK) {
		for (size_t i = 0; i < diags.n; i++)
			fprintf(stderr, "%s\n", diags.msgs[i]);
		if (diags.n == 0)
			fprintf(stderr, "%s\n", err.msg);
		free(text);
		return CEPCTL_ERROR;
	}
	cep_exp_free(e);
	cepctl_admin *a = NULL;
	if (cepctl_admin_open(&o, &a, &err) != CEP_OK) {
		fprintf(stderr, "cepctl run: %s\n", err.msg);
		free(text);
		return CEPCTL_ERROR;
	}
	cep_run_id run_id;
	int rv = cepctl_admin_submit(a, text, pos[0], &run_id, &err);
	o.spec_yaml = text;
	if (rv != CEP_OK) {
		fprintf(stderr, "cepctl run: refused: %s\n", err.msg);
		cepctl_admin_close(a);
		free(text);
		return CEPCTL_ERROR;
	}
	/* progress goes to stderr when stdout carries a machine report */
	FILE *progress = o.quiet        ? NULL :
	    o.output == CEPCTL_OUT_TEXT ? stdout :
	                                  stderr;
	if (progress != NULL)
		fprintf(progress, "run %s submitted (%s)\n", run_id.s, pos[0]);
	rv = cepctl_follow_and_report(&o, a, run_id.s, progress);
	cepctl_admin_close(a);
	free(text);
	return rv;
}

/* `cepctl logs RUN [--follow]`: the run's events as progress lines. */
int cepctl_cmd_logs(const cepctl_opts *o0, int argc, char **argv)
{
	cepctl_opts o = *o0;
	const char *pos[1];
	cepctl_admin *a = NULL;
	if (cepctl_one_run(&o, argc, argv, "cepctl logs RUN [--follow]",
	        &pos[0], &a) != 0)
		return CEPCTL_ERROR;
	cep_err err;
	cepctl_report *r = cepctl_report_new();
	int64_t t0 = 0;
	int state = 0, rv = CEPCTL_OK;
	for (;;) {
		uint64_t before = cepctl_report_last_seq(r);
		/* without --follow: what is there now; a long-poll that finds
		 * nothing new ends the listing */
		int got = cepctl_follow_once(a, pos[0], r, stdout, &t0, &state,
		    o.follow ? 10000 : 1000, &err);
		if (got == CEP_DEADLINE_EXCEEDED && !o.follow)
			break;
		if (got != CEP_OK) {
			fprintf(stderr, "cepctl logs: %s\n", err.msg);
			rv = CEPCTL_ERROR;
			break;
		}
		bool more = cepctl_report_last_seq(r) != before;
		if (!more && (!o.follow || cep_runstate_final(state)))
			break;
	}
	cepctl_report_free(r);
	cepctl_admin_close(a);
	return rv;
}
