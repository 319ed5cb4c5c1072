/* cmd_misc.c - cepctl validate, runs, show, abort, status. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_common.h"
#include "exp.h"
#include "report.h"
#include "files.h"

int cepctl_cmd_validate(const cepctl_opts *o0, int argc, char **argv)
{
	cepctl_opts o = *o0;
	const char *pos[64];
	int npos;
	if (cepctl_parse_args(&o, argc, argv, NULL, pos, 64, &npos) != 0)
		return CEPCTL_ERROR;
	if (npos == 0) {
		fputs("usage: cepctl validate FILE...\n", stderr);
		return CEPCTL_ERROR;
	}
	int worst = CEPCTL_OK;
	for (int i = 0; i < npos; i++) {
		char *text = NULL;
		size_t len = 0;
		cep_err err;
		if (cep_files_read(pos[i], 1u << 20, &text, &len, &err) !=
		    CEP_OK) {
			fprintf(stderr, "%s\n", err.msg);
			worst = CEPCTL_ERROR;
			continue;
		}
		cep_exp_diags d = {0};
		cep_exp *e = NULL;
		if (cep_exp_parse(text, len, pos[i], &e, &d, &err) == CEP_OK) {
			printf(
			    "%s: valid: experiment \"%s\", %zu fault(s), %zu "
			    "probe(s)\n",
			    pos[i], cep_exp_name(e), cep_exp_nfaults(e),
			    cep_exp_nprobes(e));
			cep_exp_free(e);
		} else {
			for (size_t k = 0; k < d.n; k++)
				printf("%s\n", d.msgs[k]);
			if (d.n == 0)
				printf("%s\n", err.msg);
			if (d.dropped > 0)
				printf("%s: ... and %zu more problems\n",
				    pos[i], d.dropped);
			if (worst == CEPCTL_OK)
				worst = CEPCTL_FAIL;
		}
		free(text);
	}
	return worst;
}

static int open_admin(const cepctl_opts *o, const char *cmd, cepctl_admin **a)
{
	cep_err err;
	if (cepctl_admin_open(o, a, &err) != CEP_OK) {
		fprintf(stderr, "cepctl %s: %s\n", cmd, err.msg);
		return -1;
	}
	return 0;
}

/* A run split across nodes (docs/kubernetes.md, "Pods by label
 * selector"): the parent lists its children, a child names its parent
 * and node. */
static void split_json(json_t *j, const Cep__V1__RunInfo *r)
{
	if (r->parent_run_id != NULL && r->parent_run_id[0] != '\0')
		json_object_set_new(j, "parent_run_id",
		    json_string(r->parent_run_id));
	if (r->node != NULL && r->node[0] != '\0')
		json_object_set_new(j, "node", json_string(r->node));
	if (r->n_children == 0)
		return;
	json_t *kids = json_array();
	for (size_t i = 0; i < r->n_children; i++)
		json_array_append_new(kids,
		    json_pack("{s:s, s:s, s:i}", "run_id",
		        r->children[i]->run_id, "node", r->children[i]->node,
		        "count", (int)r->children[i]->count));
	json_object_set_new(j, "children", kids);
}

static json_t *run_json(const Cep__V1__RunInfo *r)
{
	json_t *j =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:I, s:I, s:I, s:s}",
	        "run_id", r->run_id, "name", r->name, "state",
	        cep_runstate_name(r->state), "reason", r->reason, "verdict",
	        r->verdict, "score", r->score, "created_ms",
	        (json_int_t)r->created_ms, "ended_ms", (json_int_t)r->ended_ms,
	        "events", (json_int_t)r->events, "task_id",
	        r->task_id != NULL ? r->task_id : "");
	if (j != NULL)
		split_json(j, r);
	return j;
}

/* Under a parent's row in `cepctl runs`: one line per child. */
static void print_children(const Cep__V1__RunInfo *r)
{
	for (size_t i = 0; i < r->n_children; i++)
		printf("  child %-20s on %s, %u pod(s)\n",
		    r->children[i]->run_id, r->children[i]->node,
		    r->children[i]->count);
	if (r->parent_run_id != NULL && r->parent_run_id[0] != '\0')
		printf("  parent %s, on %s\n", r->parent_run_id, r->node);
}

int cepctl_cmd_runs(const cepctl_opts *o0, int argc, char **argv)
{
	cepctl_opts o = *o0;
	const char *pos[1];
	int npos;
	cepctl_admin *a = NULL;
	if (cepctl_parse_args(&o, argc, argv, NULL, pos, 0, &npos) != 0 ||
	    open_admin(&o, "runs", &a) != 0)
		return CEPCTL_ERROR;
	Cep__V1__ListRequest req = CEP__V1__LIST_REQUEST__INIT;
	req.limit = 100;
	Cep__V1__RunList *list = NULL;
	cep_err err;
	int rv = cepctl_admin_call(a, "List", &req.base,
	    &cep__v1__run_list__descriptor, (ProtobufCMessage **)&list, 5000,
	    &err);
	cepctl_admin_close(a);
	if (rv != CEP_OK) {
		fprintf(stderr, "cepctl runs: %s\n", err.msg);
		return CEPCTL_ERROR;
	}
	if (o.output == CEPCTL_OUT_JSON) {
		json_t *arr = json_array();
		for (size_t i = 0; i < list->n_runs; i++)
			json_array_append_new(arr, run_json(list->runs[i]));
		json_dumpf(arr, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(arr);
	} else {
		printf("%-20s %-24s %-10s %-8s %6s  %s\n", "RUN", "NAME",
		    "STATE", "VERDICT", "SCORE", "CREATED");
		for (size_t i = 0; i < list->n_runs; i++) {
			const Cep__V1__RunInfo *r = list->runs[i];
			char t[32];
			cepctl_fmt_time(r->created_ms, CEPCTL_TIME_DATE, t,
			    sizeof(t));
			printf("%-20s %-24s %-10s %-8s %6.1f  %s\n", r->run_id,
			    r->name, cep_runstate_name(r->state),
			    r->verdict[0] ? r->verdict : "-", r->score, t);
			print_children(r);
		}
	}
	protobuf_c_message_free_unpacked(&list->base, NULL);
	return CEPCTL_OK;
}

/* `show` renders the same report as `run`, from the journaled events. */
int cepctl_cmd_show(const cepctl_opts *o0, int argc, char **argv)
{
	cepctl_opts o = *o0;
	const char *pos[1];
	cepctl_admin *a = NULL;
	if (cepctl_one_run(&o, argc, argv, "cepctl show RUN", &pos[0], &a) != 0)
		return CEPCTL_ERROR;
	cepctl_report *r = cepctl_report_new();
	int rv = CEPCTL_OK, state = 0;
	int64_t t0 = 0;
	for (;;) {
		/* short timeout: show what is there now, do not wait for more */
		uint64_t before = cepctl_report_last_seq(r);
		cep_err err;
		int got = cepctl_follow_once(a, pos[0], r, NULL, &t0, &state,
		    1500, &err);
		if (got == CEP_DEADLINE_EXCEEDED)
			break;
		if (got != CEP_OK) {
			fprintf(stderr, "cepctl show: %s\n", err.msg);
			rv = CEPCTL_ERROR;
			break;
		}
		if (cepctl_report_last_seq(r) == before)
			break;
	}
	if (rv == CEPCTL_OK)
		cepctl_report_render(r, o.output, stdout);
	cepctl_report_free(r);
	cepctl_admin_close(a);
	return rv;
}

int cepctl_cmd_abort(const cepctl_opts *o0, int argc, char **argv)
{
	cepctl_opts o = *o0;
	const char *pos[1];
	cepctl_admin *a = NULL;
	if (cepctl_one_run(&o, argc, argv, "cepctl abort RUN", &pos[0], &a) !=
	    0)
		return CEPCTL_ERROR;
	Cep__V1__AbortRequest req = CEP__V1__ABORT_REQUEST__INIT;
	req.run_id = (char *)pos[0];
	req.reason = "aborted by operator (cepctl abort)";
	Cep__V1__RunInfo *info = NULL;
	cep_err err;
	int rv = cepctl_admin_call(a, "Abort", &req.base,
	    &cep__v1__run_info__descriptor, (ProtobufCMessage **)&info, 5000,
	    &err);
	cepctl_admin_close(a);
	if (rv != CEP_OK) {
		fprintf(stderr, "cepctl abort: %s\n", err.msg);
		return CEPCTL_ERROR;
	}
	printf("run %s: abort sent (state %s)\n", info->run_id,
	    cep_runstate_name(info->state));
	protobuf_c_message_free_unpacked(&info->base, NULL);
	return CEPCTL_OK;
}

int cepctl_cmd_status(const cepctl_opts *o0, int argc, char **argv)
{
	cepctl_opts o = *o0;
	const char *pos[1];
	int npos;
	cepctl_admin *a = NULL;
	if (cepctl_parse_args(&o, argc, argv, NULL, pos, 0, &npos) != 0 ||
	    open_admin(&o, "status", &a) != 0)
		return CEPCTL_ERROR;
	Cep__V1__StatusRequest req = CEP__V1__STATUS_REQUEST__INIT;
	Cep__V1__StatusReply *st = NULL;
	cep_err err;
	int rv = cepctl_admin_call(a, "Status", &req.base,
	    &cep__v1__status_reply__descriptor, (ProtobufCMessage **)&st, 5000,
	    &err);
	cepctl_admin_close(a);
	if (rv != CEP_OK) {
		fprintf(stderr, "cepctl status: %s\n", err.msg);
		return CEPCTL_ERROR;
	}
	const Cep__V1__RelayStats *rs = st->relay;
	if (o.output == CEPCTL_OUT_JSON) {
		json_t *j = json_pack("{s:s, s:s, s:i, s:I, s:b}", "appliance",
		    st->appliance, "version", st->version, "active_runs",
		    (int)st->active_runs, "total_runs",
		    (json_int_t)st->total_runs, "relay_ok", st->relay_ok);
		if (rs != NULL)
			json_object_set_new(j, "relay",
			    json_pack("{s:i, s:I, s:I, s:I}",
			        "runners_connected", (int)rs->runners_connected,
			        "calls", (json_int_t)rs->calls, "refused",
			        (json_int_t)rs->refused, "events_in",
			        (json_int_t)rs->events_in));
		const Cep__V1__ControlPlaneStatus *cp = st->control_plane;
		if (cp != NULL)
			json_object_set_new(j, "control_plane",
			    json_pack("{s:s, s:b, s:I, s:s, s:i}", "url",
			        cp->url, "registered", cp->registered,
			        "last_ok_ms", (json_int_t)cp->last_ok_ms,
			        "last_error", cp->last_error, "tasks_held",
			        (int)cp->tasks_held));
		json_dumpf(j, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(j);
	} else {
		char t[32];
		cepctl_fmt_time(st->started_ms, CEPCTL_TIME_DATE, t, sizeof(t));
		printf("appliance   %s (cep %s)\ndelegate    up since %s\n"
		       "runs        %u active, %llu total\nrelay       %s\n",
		    st->appliance, st->version, t, st->active_runs,
		    (unsigned long long)st->total_runs,
		    st->relay_ok ? "reachable" : "NOT reachable");
		if (rs != NULL)
			printf(
			    "            %u runners connected, %llu calls, %llu "
			    "refused, %llu events in\n",
			    rs->runners_connected,
			    (unsigned long long)rs->calls,
			    (unsigned long long)rs->refused,
			    (unsigned long long)rs->events_in);
		const Cep__V1__ControlPlaneStatus *cp = st->control_plane;
		if (cp != NULL) {
			char ok[32];
			cepctl_fmt_time(cp->last_ok_ms, CEPCTL_TIME_DATE, ok,
			    sizeof(ok));
			printf("control     %s: %s, last answer %s, %u task(s) "
			       "held\n",
			    cp->url,
			    cp->registered ? "registered" : "NOT registered",
			    ok, cp->tasks_held);
			if (cp->last_error[0] != '\0')
				printf("            last error: %s\n",
				    cp->last_error);
		}
	}
	protobuf_c_message_free_unpacked(&st->base, NULL);
	return CEPCTL_OK;
}
