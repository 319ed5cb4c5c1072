/* test_runproc.c - a run's processes by command line (lib/proc/runproc.h),
 * the runner's argv, and a cleanup runner child (lib/proc/cleanrun.h). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanrun.h"
#include "runproc.h"
#include "testutil.h"
#include "clock.h"
#include "files.h"
#include "run_id.h"

#define RUN "r-0123456789abcdef"
#define SLOW_RUN "r-5105000000000000" /* the stand-in sleeps for it */

static bool parse(const char *const *argv, cep_run_id *id, bool *cleanup)
{
	char buf[1024];
	size_t n = 0;
	for (size_t i = 0; argv[i] != NULL; i++) {
		size_t l = strlen(argv[i]) + 1;
		memcpy(buf + n, argv[i], l);
		n += l;
	}
	buf[n] = '\0';
	return cep_runproc_parse(buf, n, id, cleanup);
}

Test(runproc, parses_runner_command_lines)
{
	cep_run_id id;
	bool cl;
	const char *runner[] = {"/usr/bin/cep-runner", "--relay", "x",
	    "--run-id", RUN, NULL};
	cr_assert(parse(runner, &id, &cl));
	cr_assert_str_eq(id.s, RUN);
	cr_assert(!cl);
	const char *cleanup[] = {"/usr/bin/cep-runner", "--cleanup", "f",
	    "--run-id", RUN, "--report", "r", NULL};
	cr_assert(parse(cleanup, &id, &cl));
	cr_assert(cl);
	/* a script named cep-runner run by its interpreter */
	const char *script[] = {"/bin/sh", "/tmp/x/cep-runner", "--run-id", RUN,
	    NULL};
	cr_assert(parse(script, &id, &cl));
	const char *other[] = {"/usr/bin/sleep", "--run-id", RUN, NULL};
	cr_assert(!parse(other, &id, &cl), "not a runner");
	const char *noid[] = {"cep-runner", "--run-id", NULL};
	cr_assert(!parse(noid, &id, &cl), "--run-id without a value");
	const char *before[] = {"--run-id", RUN, "cep-runner", NULL};
	cr_assert(!parse(before, &id, &cl), "--run-id before the program");
	const char *bad[] = {"cep-runner", "--run-id", "r-../../x", NULL};
	cr_assert(!parse(bad, &id, &cl), "a run id that is not one");
	cr_assert_str_eq(id.s, "");
}

/* A stand-in runner of KILL_RUN (its command line names cep-runner and
 * the run); cep_runproc_kill SIGKILLs it and returns once /proc shows it
 * gone; with nothing left of the run it returns CEP_OK at once. */
#define KILL_RUN "r-4b11000000000000"
Test(runproc, kill_leaves_no_runner_process)
{
	/* sh waits in a builtin read on a pipe that is never written:
	 * no child of its own, so one process of the run */
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(fds[0], 0);
		close(fds[1]);
		execl("/bin/sh", "/bin/sh", "-c", "read x", "cep-runner",
		    "--run-id", KILL_RUN, (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	int n = 0;
	for (int i = 0; i < 100 && n < 1; i++) {
		n = cep_runproc_scan(KILL_RUN, CEP_RUNPROC_RUNNER, 0, NULL);
		if (n < 1)
			cep_clock_sleep_ms(20);
	}
	cep_err err = {0};
	int rv = cep_runproc_kill(KILL_RUN, 30, &err);
	close(fds[1]); /* EOF ends the read if the kill did not */
	int st = 0;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert_eq(n, 1);
	cr_assert_eq(rv, CEP_OK, "%s", err.msg);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	cr_assert_eq(cep_runproc_kill(KILL_RUN, 1, &err), CEP_OK);
}

Test(runproc, argv_has_the_local_executors_flags)
{
	char *argv[CEP_RUNPROC_ARGV_MAX];
	cep_runproc_args a = {.bin = "/b/cep-runner",
	    .relay_url = "tls+tcp://r:1",
	    .identity_dir = "/i",
	    .run_id = RUN};
	cep_runproc_argv(&a, argv);
	const char *want[] = {"/b/cep-runner", "--relay", "tls+tcp://r:1",
	    "--identity", "/i", "--run-id", RUN, NULL};
	for (size_t i = 0; want[i] != NULL; i++)
		cr_assert_str_eq(argv[i], want[i]);
	cr_assert_null(argv[7]);
	a.server_name = "localhost";
	a.cp_ca_file = "/ca"; /* without a cp_url: left out */
	cep_runproc_argv(&a, argv);
	cr_assert_str_eq(argv[7], "--server-name");
	cr_assert_null(argv[9]);
	a.cp_url = "https://plane";
	a.cp_proxy = "http://p:3128";
	cep_runproc_argv(&a, argv);
	cr_assert_str_eq(argv[9], "--cp-url");
	cr_assert_str_eq(argv[11], "--cp-ca");
	cr_assert_str_eq(argv[13], "--cp-proxy");
	cr_assert_null(argv[15]);
}

/* A stand-in runner: cleanup mode writes a report ($6), reading back
 * its records' file ($2) to prove it was given them. */
static const char fake[] =
    "#!/bin/sh\n"
    "[ \"$1\" = --cleanup ] || exec sleep 30\n"
    "grep -q '\"fault_id\":\"f1\"' \"$2\" || exit 3\n"
    "case \"$4\" in r-5105*) sleep 30;; esac\n"
    "printf '{\"undone\":[\"f1\"],\"failed\":{\"f2\":\"still there\"}}' > \"$6\"\n";

/* The end's code: CEP_OK for DONE, err->code for FAILED (never 0). */
static int wait_result(cep_cleanrun *c, char **undone, cep_err *err)
{
	for (int i = 0; i < 500; i++) {
		enum cep_cleanrun_state st = cep_cleanrun_poll(c, undone, err);
		if (st == CEP_CLEANRUN_DONE)
			return CEP_OK;
		if (st == CEP_CLEANRUN_FAILED) {
			cr_assert_neq(err->code, CEP_OK, "FAILED, no code");
			return err->code;
		}
		cep_clock_sleep_ms(10);
	}
	return -1; /* still running after 5 s */
}

Test(cleanrun, runs_the_cleanup_runner_and_reads_its_report)
{
	char *dir = cep_test_tmpdir("cleanrun"), bin[4096];
	snprintf(bin, sizeof(bin), "%s/cep-runner", dir);
	cep_err err = {0};
	cr_assert_eq(cep_files_write(bin, fake, strlen(fake), 0755, &err),
	    CEP_OK);
	cep_cleanrun_opts o = {.runner_bin = bin,
	    .dir = dir,
	    .run_id = RUN,
	    .recs_json = "[{\"fault_id\":\"f1\"},{\"fault_id\":\"f2\"}]"};
	cep_cleanrun *c = NULL;
	cr_assert_eq(cep_cleanrun_start(&o, &c, &err), CEP_OK, "%s", err.msg);
	cr_assert_gt(cep_cleanrun_pid(c), 0);
	char *undone = NULL;
	int rv = wait_result(c, &undone, &err);
	cr_assert_eq(rv, CEP_FAILED_PRECONDITION, "%d %s", rv, err.msg);
	cr_assert(strstr(err.msg, "f2") && strstr(err.msg, "still there"), "%s",
	    err.msg);
	cr_assert_str_eq(undone, "[\"f1\"]");
	free(undone);
	cep_cleanrun_free(c);
	cep_test_rmdir(dir);
}

Test(cleanrun, no_report_and_time_limit_are_errors)
{
	char *dir = cep_test_tmpdir("cleanrun"), bin[4096];
	snprintf(bin, sizeof(bin), "%s/cep-runner", dir);
	cep_err err = {0};
	cr_assert_eq(cep_files_write(bin, fake, strlen(fake), 0755, &err),
	    CEP_OK);
	/* records without f1: the stand-in exits 3 without a report */
	cep_cleanrun_opts o = {.runner_bin = bin,
	    .dir = dir,
	    .run_id = RUN,
	    .recs_json = "[]"};
	cep_cleanrun *c = NULL;
	cr_assert_eq(cep_cleanrun_start(&o, &c, &err), CEP_OK, "%s", err.msg);
	char *undone = NULL;
	cr_assert_eq(wait_result(c, &undone, &err), CEP_DATA_LOSS, "%s",
	    err.msg);
	cr_assert_null(undone);
	cep_cleanrun_free(c);
	/* a run id the stand-in takes for slow: killed at the limit */
	o.run_id = SLOW_RUN;
	o.recs_json = "[{\"fault_id\":\"f1\"}]";
	o.limit_ms = 300;
	cr_assert_eq(cep_cleanrun_start(&o, &c, &err), CEP_OK, "%s", err.msg);
	int64_t t0 = cep_clock_mono_ms();
	cr_assert_eq(wait_result(c, &undone, &err), CEP_DATA_LOSS, "%s",
	    err.msg);
	cr_assert(strstr(err.msg, "time limit") != NULL, "%s", err.msg);
	cr_assert_lt(cep_clock_mono_ms() - t0, 5000);
	cep_cleanrun_free(c);
	cep_test_rmdir(dir);
}

Test(cleanrun, refuses_what_is_not_a_run_id)
{
	char *dir = cep_test_tmpdir("cleanrun");
	cep_err err = {0};
	cep_cleanrun_opts o = {.runner_bin = "/bin/false",
	    .dir = dir,
	    .run_id = "r-../../etc",
	    .recs_json = "[]"};
	cep_cleanrun *c = NULL;
	cr_assert_eq(cep_cleanrun_start(&o, &c, &err), CEP_INVALID_ARGUMENT);
	cr_assert_null(c);
	cr_assert(strstr(err.msg, "not a run id") != NULL, "%s", err.msg);
	cep_test_rmdir(dir);
}
