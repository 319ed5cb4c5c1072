/* test_recover.c - the delegate core in-process (tests/delegate/fixture.h):
 * restart recovery (adopt a live runner, clean up after a gone one, torn
 * and corrupt journals), the deadline watchdog, and the graceful stop. */
#define _GNU_SOURCE
#include "fixture.h"

TestSuite(recover, .init = setup, .fini = teardown, .timeout = 60);

Test(recover, restart_adopts_live_runner)
{
	char id[24], reason[512];
	launched_run(id);
	runner_connected(id);
	fault("cep.v1.Delegate/RecordFault", id, "hog");
	delegate_free(dg); /* like kill -9: nothing cleaned */
	dg = NULL;
	cr_assert_eq(procs_of(id), 2);
	start_delegate();
	cr_assert_eq(run_state(id, NULL, 0), CEP__V1__RUN_STATE__RUN_RUNNING);
	for (int t = 0; t < 3000 && !relay_granted(id, NULL, 0); t += 50)
		cep_clock_sleep_ms(50);
	cr_assert(relay_granted(id, NULL, 0), "adopted run not re-granted");
	runner_exit(id);
	cr_assert_eq(wait_state(id, CEP__V1__RUN_STATE__RUN_ERROR, 10000,
	                 reason, sizeof(reason)),
	    CEP__V1__RUN_STATE__RUN_ERROR);
	cr_assert(strstr(reason, "before a verdict") != NULL, "%s", reason);
	cr_assert_eq(wait_procs(id, 0, 3000), 0);
	jsum s;
	journal_of(id, &s);
	cr_assert_eq(s.reverted_by_delegate, 1);
}

Test(recover, restart_cleans_up_gone_runner)
{
	char id[24], reason[512];
	launched_run(id);
	runner_connected(id);
	delegate_free(dg);
	dg = NULL;
	runner_exit(id); /* the runner dies while no delegate is there */
	cr_assert_eq(wait_procs(id, 0, 5000), 0);
	/* The runner was started by this process: reap it for good, as init
	 * would for a real delegate that died. */
	while (waitpid(-1, NULL, 0) > 0)
		;
	start_delegate();
	cr_assert_eq(wait_state(id, CEP__V1__RUN_STATE__RUN_ERROR, 10000,
	                 reason, sizeof(reason)),
	    CEP__V1__RUN_STATE__RUN_ERROR);
	cr_assert_str_eq(reason, "delegate restarted; runner gone");
}

Test(recover, graceful_stop_aborts_and_cleans_up)
{
	char id[24];
	launched_run(id);
	runner_connected(id);
	delegate_stop(dg); /* the fake runner ignores ABORT: killed */
	cr_assert_eq(procs_of(id), 0, "runner left after a graceful stop");
	cr_assert_eq(delegate_active_runs(dg), 0);
	char reason[512];
	cr_assert_eq(run_state(id, reason, sizeof(reason)),
	    CEP__V1__RUN_STATE__RUN_ABORTED);
	cr_assert_str_eq(reason, "delegate stopping");
	char y[24];
	cep_err err = {0};
	cr_assert_eq(submit(GOOD_SPEC, y, &err), CEP_UNAVAILABLE);
}

Test(recover, recovery_uses_torn_journal_and_skips_corrupt_one)
{
	char id[24], p[4200], reason[512];
	launched_run(id);
	runner_connected(id);
	delegate_free(dg);
	dg = NULL;
	/* half a record at the end of the live run's journal */
	snprintf(p, sizeof(p), "%s/runs/%s/journal", paths.state, id);
	int fd = open(p, O_WRONLY | O_APPEND);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "\x40\x00\x00\x00\x12\x34", 6), 6);
	close(fd);
	/* a journal that is garbage from the start */
	const char *bad = "r-00112233445566ff";
	snprintf(p, sizeof(p), "%s/runs/%s", paths.state, bad);
	cr_assert_eq(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/runs/%s/journal", paths.state, bad);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "garbage!garbage!", 16), 16);
	close(fd);

	start_delegate();
	cr_assert_eq(run_state(id, NULL, 0), CEP__V1__RUN_STATE__RUN_RUNNING);
	cr_assert(file_exists(p), "corrupt journal deleted");
	Cep__V1__GetRequest req = CEP__V1__GET_REQUEST__INIT;
	req.run_id = (char *)bad;
	cep_err err = {0};
	cr_assert_eq(cep_rpc_invoke(admin, "cep.v1.Admin/Get", &req.base,
	                 &cep__v1__run_info__descriptor, NULL, 5000, &err),
	    CEP_NOT_FOUND);
	cr_assert_eq(push(id, 1, 1, "Fail"), 1);
	runner_exit(id);
	cr_assert_eq(wait_state(id, CEP__V1__RUN_STATE__RUN_FAILED, 10000,
	                 reason, sizeof(reason)),
	    CEP__V1__RUN_STATE__RUN_FAILED, "%s", reason);
	jsum s;
	journal_of(id, &s); /* whole again: the torn tail was cut */
	cr_assert_eq(s.nevents, 1);
	cr_assert_eq(s.states[s.nstates - 1], CEP__V1__RUN_STATE__RUN_FAILED);
}

/* The deadline watchdog, without waiting a whole run: the journal of an
 * adopted run gets a deadline in the past (as if the run had outlived it
 * while the delegate was down). ABORT goes out at once; the fake runner
 * ignores it and is killed after the grace period. */
Test(recover, deadline_aborts_then_kills)
{
	char id[24], dir[4200], reason[512];
	launched_run(id);
	runner_connected(id);
	delegate_free(dg);
	dg = NULL;
	snprintf(dir, sizeof(dir), "%s/runs/%s", paths.state, id);
	cep_journal *j = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_journal_open(dir, &j, &err), CEP_OK, "%s", err.msg);
	Cep__V1__JournalRecord rec = CEP__V1__JOURNAL_RECORD__INIT;
	rec.rec_case = CEP__V1__JOURNAL_RECORD__REC_DEADLINE_MS;
	rec.deadline_ms = cep_clock_now_ms() - 1000;
	cr_assert_eq(cep_journal_append(j, &rec, true, &err), CEP_OK);
	cep_journal_close(j);

	start_delegate();
	for (int t = 0; t < 3000 && !relay_got_abort(id); t += 50)
		cep_clock_sleep_ms(50);
	cr_assert(relay_got_abort(id), "no ABORT at the deadline");
	cr_assert_eq(procs_of(id), 2, "killed without the grace period");
	cr_assert_eq(wait_state(id, CEP__V1__RUN_STATE__RUN_ABORTED, 12000,
	                 reason, sizeof(reason)),
	    CEP__V1__RUN_STATE__RUN_ABORTED);
	cr_assert_str_eq(reason, "deadline exceeded");
	cr_assert_eq(procs_of(id), 0);
}
