/*
 * test_executor_launcher.c - the delegate's launcher backend
 * (executor_launcher.c) against the real cep-launcher binary, which runs
 * a stand-in cep-runner (a shell script of that name): launch with the
 * run's fault types, poll, kill, undo, node_undo through a cleanup
 * runner; and with no launcher at all: /proc for poll, "try again" for
 * undo.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor.h"
#include "testutil.h"
#include "clock.h"
#include "files.h"
#include "procfs.h"
#include "run_id.h"

#define RUN "r-0123456789abcdef"

static const char fake_runner[] =
    "#!/bin/sh\n"
    "if [ \"$1\" = --cleanup ]; then\n"
    "  printf '{\"undone\":[\"f1\"],\"failed\":{}}' > \"$6\"\n"
    "  exit 0\n"
    "fi\n"
    "trap 'exit 0' TERM\n"
    "sleep 30 &\n"
    "wait\n";

static char *dir;
static char url[4200];
static pid_t launcher;
static cep_executor *ex;

static void write_file(const char *name, const char *text, unsigned mode)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cep_err err = {0};
	cr_assert_eq(cep_files_write(path, text, strlen(text), mode, &err),
	    CEP_OK, "%s", err.msg);
}

static void start_launcher(void)
{
	char runner[4200], runs[4200], uid[16];
	snprintf(runner, sizeof(runner), "%s/cep-runner", dir);
	snprintf(runs, sizeof(runs), "%s/runs", dir);
	snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
	char *bin = cep_test_bin("cep-launcher");
	launcher = fork();
	cr_assert_geq(launcher, 0);
	if (launcher == 0) {
		char *argv[] = {bin, "--home", dir, "--listen", url, "--runner",
		    runner, "--runs", runs, "--allow-uid", uid, NULL};
		execv(bin, argv);
		_exit(127);
	}
	free(bin);
}

static void setup(void)
{
	dir = cep_test_tmpdir("lxexec");
	snprintf(url, sizeof(url), "ipc://%s/launcher.sock", dir);
	write_file("cep-runner", fake_runner, 0755);
	cep_err err = {0};
	cr_assert_eq(delegate_executor_launcher_new(url, &ex, &err), CEP_OK,
	    "%s", err.msg);
}

static void teardown(void)
{
	delegate_executor_free(ex);
	if (launcher > 0) {
		kill(launcher, SIGTERM);
		waitpid(launcher, NULL, 0);
		launcher = 0;
	}
	cep_test_rmdir(dir);
}

TestSuite(executor_launcher, .init = setup, .fini = teardown, .timeout = 90);

static int launch(cep_exec_handle *h, cep_err *err)
{
	char id[4200];
	snprintf(id, sizeof(id), "%s/identity", dir);
	cep_err e = {0};
	cr_assert_eq(cep_files_mkdirs(id, 0700, &e), CEP_OK);
	static const char pem[] = "-----BEGIN X-----\nAA\n-----END X-----\n";
	write_file("identity/ca.crt", pem, 0600);
	write_file("identity/runner.crt", pem, 0600);
	write_file("identity/runner.key", pem, 0600);
	const char *types[] = {"network-loss", "cpu-hog"};
	cep_exec_launch l = {.run_id = RUN,
	    .identity_dir = id,
	    .relay_url = "tls+tcp://127.0.0.1:7443",
	    .server_name = "localhost",
	    .not_after_ms = cep_clock_now_ms() + 60000,
	    .fault_types = types,
	    .nfault_types = 2};
	return delegate_executor_launch(ex, &l, h, err);
}

static enum cep_exec_status wait_exit(const cep_exec_handle *h, char *what,
    size_t len)
{
	enum cep_exec_status st = CEP_EXEC_ALIVE;
	for (int i = 0; i < 200 && st == CEP_EXEC_ALIVE; i++) {
		st = delegate_executor_poll(ex, h, what, len);
		if (st == CEP_EXEC_ALIVE)
			cep_clock_sleep_ms(25);
	}
	return st;
}

Test(executor_launcher, launch_poll_kill_undo_through_the_launcher)
{
	start_launcher();
	cep_exec_handle h = {0};
	cep_err err = {0};
	int rv = CEP_UNAVAILABLE;
	for (int i = 0; i < 3 && rv != CEP_OK; i++) /* while it starts */
		rv = launch(&h, &err);
	cr_assert_eq(rv, CEP_OK, "%s", err.msg);
	cr_assert_str_eq(h.run_id.s, RUN);
	cr_assert_gt(h.pid, 1);
	cr_assert_eq(h.start, cep_procfs_start_time(h.pid));
	char what[256];
	cr_assert_eq(delegate_executor_poll(ex, &h, what, sizeof(what)),
	    CEP_EXEC_ALIVE);
	delegate_executor_kill(ex, &h);
	cr_assert_eq(wait_exit(&h, what, sizeof(what)), CEP_EXEC_EXITED);
	cr_assert_str_eq(what, "signal 9");
	cr_assert_eq(delegate_executor_undo(ex, RUN, &err), CEP_EXEC_DONE, "%s",
	    err.msg);
}

Test(executor_launcher, node_undo_runs_a_cleanup_runner)
{
	start_launcher();
	char *undone = NULL;
	cep_err err = {0};
	cr_assert_eq(delegate_executor_node_undo(ex, RUN, "[]", &undone, &err),
	    CEP_EXEC_DONE, "nothing to undo needs no launcher");
	cr_assert_null(undone);
	const char *recs =
	    "[{\"run_id\":\"" RUN "\",\"fault_id\":\"f1\","
	    "\"type\":\"network-loss\",\"target\":\"x\",\"mechanism\":"
	    "\"nftables\",\"undo\":\"{}\"}]";
	enum cep_exec_state rv = CEP_EXEC_PENDING;
	for (int i = 0; i < 400 && rv == CEP_EXEC_PENDING; i++) {
		rv = delegate_executor_node_undo(ex, RUN, recs, &undone, &err);
		if (rv == CEP_EXEC_PENDING) {
			cr_assert_null(undone);
			cep_clock_sleep_ms(25);
		}
	}
	cr_assert_eq(rv, CEP_EXEC_DONE, "%d %s", rv, err.msg);
	cr_assert_str_eq(undone, "[\"f1\"]");
	free(undone);
	/* a mechanism no cleanup runner undoes: refused, named */
	const char *bad =
	    "[{\"run_id\":\"" RUN "\",\"fault_id\":\"f2\","
	    "\"type\":\"x\",\"target\":\"x\",\"mechanism\":\"k8s-scale\","
	    "\"undo\":\"{}\"}]";
	for (int i = 0; i < 40; i++) {
		rv = delegate_executor_node_undo(ex, RUN, bad, &undone, &err);
		if (rv != CEP_EXEC_PENDING)
			break;
		cep_clock_sleep_ms(25);
	}
	cr_assert_eq(rv, CEP_EXEC_FAILED, "%d %s", rv, err.msg);
	cr_assert_eq(err.code, CEP_NOT_FOUND, "%d %s", err.code, err.msg);
	cr_assert(strstr(err.msg, "k8s-scale") != NULL, "%s", err.msg);
}

Test(executor_launcher, without_a_launcher_poll_reads_proc_and_undo_waits)
{
	/* no launcher started: poll answers from /proc by pid + start */
	cep_exec_handle self = {.pid = (int)getpid(),
	    .start = cep_procfs_start_time((int)getpid())};
	cr_assert(cep_run_id_parse(&self.run_id, RUN));
	char what[256];
	cr_assert_eq(delegate_executor_poll(ex, &self, what, sizeof(what)),
	    CEP_EXEC_ALIVE);
	self.start++;
	cr_assert_eq(delegate_executor_poll(ex, &self, what, sizeof(what)),
	    CEP_EXEC_EXITED);
	cr_assert(strstr(what, "launcher") != NULL, "%s", what);
	/* undo: "try again" while the launcher may be restarting */
	cep_err err = {0};
	cr_assert_eq(delegate_executor_undo(ex, RUN, &err), CEP_EXEC_PENDING,
	    "%s", err.msg);
}
