/* test_runs.c - the delegate core in-process (tests/delegate/fixture.h):
 * Submit refusals, a run's whole lifecycle, Follow, Abort, List/Status and
 * runner calls that must be refused. */
#define _GNU_SOURCE
#include "delegate_int.h"
#include "fixture.h"

TestSuite(runs, .init = setup, .fini = teardown, .timeout = 60);

/* ----------------------------------------------------------------- tests */

Test(runs, bad_spec_is_invalid_argument_with_position)
{
	char id[24];
	cep_err err = {0};
	int rv = submit("apiVersion: cep.io/v1\nkind: Experiment\nmetadata:\n"
	                "  name: x\nspec:\n  duration: soon\n",
	    id, &err);
	cr_assert_eq(rv, CEP_INVALID_ARGUMENT, "%d %s", rv, err.msg);
	cr_assert(strstr(err.msg, "x.yaml:6:") != NULL, "no line:col: %s",
	    err.msg);
}

Test(runs, policy_refusal_creates_nothing)
{
	char id[24];
	cep_err err = {0};
	const char *y =
	    "apiVersion: cep.io/v1\nkind: Experiment\nmetadata:\n"
	    "  name: x\nspec:\n  duration: 10s\n  faults:\n    - name: k\n"
	    "      type: process-kill\n      process: sshd\n";
	int rv = submit(y, id, &err);
	cr_assert_eq(rv, CEP_FAILED_PRECONDITION, "%d %s", rv, err.msg);
	cr_assert(strstr(err.msg, "policy.targets.deny") != NULL, "%s",
	    err.msg);
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/runs", paths.state);
	DIR *d = opendir(dir);
	cr_assert(d != NULL);
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	cr_assert_eq(n, 0, "a refused run left %d entries in %s", n, dir);
}

/* The policy runs outside the delegate's lock (its host facts may ask
 * cep-launcher); maxConcurrentRuns is checked again under it, so
 * submissions racing for the last slots cannot all win. A stand-in
 * launcher answers Inspect slowly, so that every submission has passed
 * the policy with 0 runs active before the first is created; its Launch
 * holds on, so no run ends (and frees its slot) meanwhile. */
static void on_slow_inspect(cep_rpc_call *c, void *arg)
{
	(void)arg;
	cep_clock_sleep_ms(300);
	Cep__V1__LauncherFacts f = CEP__V1__LAUNCHER_FACTS__INIT;
	f.f_blocks = 1000;
	f.f_bavail = 900;
	f.f_frsize = 4096;
	cep_rpc_call_reply(c, &f.base);
}

static void on_slow_launch(cep_rpc_call *c, void *arg)
{
	(void)arg;
	cep_clock_sleep_ms(3000);
	cep_rpc_call_fail(c, CEP_UNAVAILABLE, "a stand-in launcher");
}

static const cep_rpc_method slow_launcher[] = {
    {"cep.v1.Launcher/Inspect", &cep__v1__launcher_inspect__descriptor,
        on_slow_inspect},
    {"cep.v1.Launcher/Launch", &cep__v1__launch_request__descriptor,
        on_slow_launch},
};

typedef struct racer {
	int rv;
	char id[24];
	cep_err err;
	const char *spec;
} racer;

static void *race_submit(void *arg)
{
	racer *r = arg;
	r->rv = submit(r->spec, r->id, &r->err);
	return NULL;
}

Test(runs, racing_submissions_never_exceed_max_concurrent_runs)
{
	delegate_stop(dg);
	delegate_free(dg);
	cep_rpc_server *lx = NULL;
	cep_err err = {0};
	snprintf(cfg.launcher_url, sizeof(cfg.launcher_url),
	    "ipc://%s/launcher.sock", home);
	cr_assert_eq(cep_rpc_server_new(&lx, slow_launcher, 2, NULL, NULL,
	                 &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_eq(cep_rpc_server_listen(lx, cfg.launcher_url, NULL, &err),
	    CEP_OK, "%s", err.msg);
	cfg.policy.max_concurrent_runs = 2;
	start_delegate();
	char spec[4600];
	snprintf(spec, sizeof(spec),
	    "apiVersion: cep.io/v1\nkind: Experiment\n"
	    "metadata:\n  name: race\nspec:\n  target:\n    kind: host\n"
	    "  duration: 20s\n  faults:\n    - name: fill\n"
	    "      type: disk-fill\n      path: %s\n      mib: 1\n",
	    home);
	racer r[6];
	pthread_t t[6];
	memset(r, 0, sizeof(r));
	for (int i = 0; i < 6; i++) {
		r[i].spec = spec;
		cr_assert_eq(pthread_create(&t[i], NULL, race_submit, &r[i]),
		    0);
	}
	int ok = 0;
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		if (r[i].rv == CEP_OK) {
			ok++;
			continue;
		}
		cr_expect_eq(r[i].rv, CEP_FAILED_PRECONDITION, "%s",
		    r[i].err.msg);
		cr_expect(strstr(r[i].err.msg,
		              "runs active, "
		              "policy.maxConcurrentRuns is 2") != NULL,
		    "%s", r[i].err.msg);
	}
	cr_expect_eq(ok, 2, "%d submissions accepted, at most 2 may be", ok);
	delegate_stop(dg);
	delegate_free(dg);
	dg = NULL;
	cep_rpc_server_free(lx);
}

static void check_identity(const char *id)
{
	char p[4200];
	struct stat st;
	snprintf(p, sizeof(p), "%s/runs/%s/identity", paths.state, id);
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0700);
	snprintf(p, sizeof(p), "%s/runs/%s/identity/runner.key", paths.state,
	    id);
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
}

Test(runs, full_lifecycle_to_passed)
{
	char id[24], uri[256] = "", want[256], reason[512];
	launched_run(id);
	snprintf(want, sizeof(want), "cep://test/local/host/%s", id);
	for (int t = 0; t < 3000 && !relay_granted(id, uri, sizeof(uri));
	     t += 50)
		cep_clock_sleep_ms(50);
	cr_assert_str_eq(uri, want);
	check_identity(id);
	jsum s;
	journal_of(id, &s);
	/* runner_pid is journaled just after fork returns: the runner may be
	 * seen in /proc a moment earlier */
	for (int t = 0; t < 3000 && s.pid == 0; t += 50) {
		cep_clock_sleep_ms(50);
		journal_of(id, &s);
	}
	cr_assert(
	    s.created == 1 && s.spec == 1 && s.deadline == 1 && s.pid == 1);
	cr_assert(has_state(&s, CEP__V1__RUN_STATE__RUN_PENDING));
	cr_assert(has_state(&s, CEP__V1__RUN_STATE__RUN_LAUNCHING));

	runner_connected(id);
	cr_assert_eq(run_state(id, NULL, 0), CEP__V1__RUN_STATE__RUN_RUNNING);
	cr_assert_eq(push(id, 1, 5, NULL), 5);
	cr_assert_eq(push(id, 3, 5, NULL), 5); /* duplicates */
	cr_assert_eq(push(id, 7, 7, NULL), 5); /* a gap: not journaled */
	fault("cep.v1.Delegate/RecordFault", id, "hog");
	fault("cep.v1.Delegate/RecordFault", id, "hog"); /* a retry */
	fault("cep.v1.Delegate/FaultReverted", id, "hog");
	fault("cep.v1.Delegate/RecordFault", id, "hog#2");
	cr_assert_eq(push(id, 6, 6, "Pass"), 6);

	runner_exit(id);
	cr_assert_eq(wait_state(id, CEP__V1__RUN_STATE__RUN_PASSED, 10000,
	                 reason, sizeof(reason)),
	    CEP__V1__RUN_STATE__RUN_PASSED, "%s", reason);
	cr_assert_eq(procs_of(id), 0);
	journal_of(id, &s);
	cr_assert_eq(s.nevents, 6);
	for (int i = 0; i < 6; i++)
		cr_assert_eq(s.seqs[i], (uint64_t)i + 1);
	cr_assert_eq(s.faults, 2);
	cr_assert_eq(s.reverted_by_delegate, 1, "hog#2 not undone by delegate");
	cr_assert_eq(s.states[s.nstates - 1], CEP__V1__RUN_STATE__RUN_PASSED);
	cr_assert(has_state(&s, CEP__V1__RUN_STATE__RUN_CLEANUP));
	char p[4200];
	snprintf(p, sizeof(p), "%s/runs/%s/identity", paths.state, id);
	cr_assert(!file_exists(p), "identity/ left behind");
	for (int t = 0; t < 3000 && !relay_finished(id); t += 50)
		cep_clock_sleep_ms(50);
	cr_assert(relay_finished(id));
	cr_assert(!relay_granted(id, NULL, 0));

	Cep__V1__RunInfo *ri = get_run(id);
	cr_assert_eq(ri->n_faults, 2);
	cr_assert_str_eq(ri->faults[0]->reverted_by, "runner");
	cr_assert_str_eq(ri->faults[1]->reverted_by, "delegate");
	cr_assert_str_eq(ri->verdict, "Pass");
	cr_assert_str_eq(ri->reason, "the runner's reason");
	cr_assert_eq(ri->events, 6);
	cep__v1__run_info__free_unpacked(ri, NULL);
}

typedef struct follow_arg {
	char id[24];
	uint64_t after;
	size_t got;
	int rv;
} follow_arg;

static void *follow_thread(void *p)
{
	follow_arg *a = p;
	Cep__V1__FollowRequest req = CEP__V1__FOLLOW_REQUEST__INIT;
	req.run_id = a->id;
	req.after_seq = a->after;
	ProtobufCMessage *rep = NULL;
	cep_err err = {0};
	a->rv = cep_rpc_invoke(admin, "cep.v1.Admin/Follow", &req.base,
	    &cep__v1__follow_reply__descriptor, &rep, 20000, &err);
	if (a->rv == CEP_OK) {
		a->got = ((Cep__V1__FollowReply *)rep)->n_events;
		protobuf_c_message_free_unpacked(rep, NULL);
	}
	return NULL;
}

Test(runs, follow_parks_until_an_event)
{
	char id[24];
	launched_run(id);
	runner_connected(id);
	follow_arg a = {.after = 0};
	snprintf(a.id, sizeof(a.id), "%s", id);
	pthread_t t;
	pthread_create(&t, NULL, follow_thread, &a);
	cep_clock_sleep_ms(300);
	cr_assert_eq(a.got, 0);
	cr_assert_eq(push(id, 1, 2, NULL), 2);
	pthread_join(t, NULL);
	cr_assert_eq(a.rv, CEP_OK);
	cr_assert_eq(a.got, 2);
}

Test(runs, abort_kills_after_grace)
{
	char id[24], reason[512];
	launched_run(id);
	runner_connected(id);
	Cep__V1__AbortRequest req = CEP__V1__ABORT_REQUEST__INIT;
	req.run_id = id;
	req.reason = (char *)"test abort";
	cep_err err = {0};
	int64_t t0 = cep_clock_mono_ms();
	cr_assert_eq(cep_rpc_invoke(admin, "cep.v1.Admin/Abort", &req.base,
	                 &cep__v1__run_info__descriptor, NULL, 5000, &err),
	    CEP_OK, "%s", err.msg);
	for (int t = 0; t < 3000 && !relay_got_abort(id); t += 50)
		cep_clock_sleep_ms(50);
	cr_assert(relay_got_abort(id), "relay saw no ABORT");
	/* The fake runner ignores the abort: it must be killed, not earlier
	 * than the grace period. */
	cep_clock_sleep_ms(t0 + 3000 - cep_clock_mono_ms());
	int n = procs_of(id);
	if (cep_clock_mono_ms() - t0 < 4500)
		cr_assert_eq(n, 2, "killed before the grace period");
	cr_assert_eq(wait_state(id, CEP__V1__RUN_STATE__RUN_ABORTED, 12000,
	                 reason, sizeof(reason)),
	    CEP__V1__RUN_STATE__RUN_ABORTED);
	cr_assert_str_eq(reason, "test abort");
	cr_assert_eq(procs_of(id), 0);
}

Test(runs, list_and_status)
{
	char a[24], b[24];
	launched_run(a);
	launched_run(b);
	Cep__V1__ListRequest req = CEP__V1__LIST_REQUEST__INIT;
	req.limit = 1;
	ProtobufCMessage *rep = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_rpc_invoke(admin, "cep.v1.Admin/List", &req.base,
	                 &cep__v1__run_list__descriptor, &rep, 5000, &err),
	    CEP_OK);
	Cep__V1__RunList *l = (Cep__V1__RunList *)rep;
	cr_assert_eq(l->n_runs, 1);
	cr_assert_str_eq(l->runs[0]->run_id, b, "newest first");
	protobuf_c_message_free_unpacked(rep, NULL);
	Cep__V1__StatusRequest sreq = CEP__V1__STATUS_REQUEST__INIT;
	cr_assert_eq(cep_rpc_invoke(admin, "cep.v1.Admin/Status", &sreq.base,
	                 &cep__v1__status_reply__descriptor, &rep, 5000, &err),
	    CEP_OK);
	Cep__V1__StatusReply *s = (Cep__V1__StatusReply *)rep;
	cr_assert_eq(s->active_runs, 2);
	cr_assert_eq(s->total_runs, 2);
	cr_assert(s->relay_ok);
	cr_assert_str_eq(s->appliance, "test");
	protobuf_c_message_free_unpacked(rep, NULL);
}

Test(runs, runner_calls_for_unknown_or_finished_runs_are_refused)
{
	char id[24], reason[512];
	cep_err err = {0};
	Cep__V1__RunnerSeen seen = CEP__V1__RUNNER_SEEN__INIT;
	seen.run_id = (char *)"r-0000000000000000";
	cr_assert_eq(call_delegate("cep.v1.Delegate/RunnerConnected",
	                 &seen.base, NULL, NULL, &err),
	    CEP_NOT_FOUND);
	seen.run_id = (char *)"../../etc";
	cr_assert_eq(call_delegate("cep.v1.Delegate/RunnerConnected",
	                 &seen.base, NULL, NULL, &err),
	    CEP_INVALID_ARGUMENT);
	launched_run(id);
	runner_connected(id);
	/* an event claiming another run inside this run's batch */
	Cep__V1__Event ev = CEP__V1__EVENT__INIT;
	Cep__V1__Event *evp = &ev;
	ev.run_id = (char *)"r-0000000000000000";
	ev.seq = 1;
	Cep__V1__EventBatch b = CEP__V1__EVENT_BATCH__INIT;
	b.run_id = id;
	b.n_events = 1;
	b.events = &evp;
	cr_assert_eq(call_delegate("cep.v1.Delegate/RunnerEvents", &b.base,
	                 NULL, NULL, &err),
	    CEP_INVALID_ARGUMENT);
	runner_exit(id);
	cr_assert_eq(wait_state(id, CEP__V1__RUN_STATE__RUN_ERROR, 10000,
	                 reason, sizeof(reason)),
	    CEP__V1__RUN_STATE__RUN_ERROR);
	cr_assert_str_eq(reason,
	    "runner exited with status 0 before a verdict");
	Cep__V1__FaultRecord f = CEP__V1__FAULT_RECORD__INIT;
	f.run_id = id;
	f.fault_id = (char *)"late";
	cr_assert_eq(call_delegate("cep.v1.Delegate/RecordFault", &f.base, NULL,
	                 NULL, &err),
	    CEP_FAILED_PRECONDITION, "%s", err.msg);
}

Test(runs, refuses_a_ca_key_others_can_read)
{
	char p[4200];
	delegate_free(dg);
	dg = NULL;
	snprintf(p, sizeof(p), "%s/ca.key", paths.pki);
	cr_assert_eq(chmod(p, 0644), 0);
	cep_err err = {0};
	cep_delegate *d2 = NULL;
	int rv = delegate_new(&paths, &cfg, &d2, &err);
	cr_assert_eq(rv, CEP_PERMISSION_DENIED, "%d %s", rv, err.msg);
	cr_assert(strstr(err.msg, "ca.key") != NULL, "%s", err.msg);
	cr_assert_null(d2);
}

/* A parent split across nodes takes the worst of its children's final
 * states (runs_split.c): FAILED over ABORTED and ERROR over PASSED, the
 * first child of the worst rank deciding. */
Test(runs_split, the_worst_child_decides)
{
	const Cep__V1__RunState P = CEP__V1__RUN_STATE__RUN_PASSED,
	                        F = CEP__V1__RUN_STATE__RUN_FAILED,
	                        A = CEP__V1__RUN_STATE__RUN_ABORTED,
	                        E = CEP__V1__RUN_STATE__RUN_ERROR;
	cr_assert_eq(delegate_split_worst((Cep__V1__RunState[]){P, P}, 2), 0);
	cr_assert_eq(delegate_split_worst((Cep__V1__RunState[]){P, E}, 2), 1);
	cr_assert_eq(delegate_split_worst((Cep__V1__RunState[]){A, P}, 2), 0);
	cr_assert_eq(delegate_split_worst((Cep__V1__RunState[]){E, F, A}, 3),
	    1);
	cr_assert_eq(delegate_split_worst((Cep__V1__RunState[]){P, A, E}, 3),
	    1);
	cr_assert_eq(delegate_split_worst((Cep__V1__RunState[]){P, P, F}, 3),
	    2);
}
