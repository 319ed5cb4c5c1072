/*
 * test_hostview.c - the policy's host facts through both host views
 * (delegate/hostview.h): direct, and cep-launcher's Inspect (a real
 * launcher core over ipc). One list of cases, run through each view: a
 * pid's command name against the target lists, a missing pid, the host's
 * network namespace, a missing namespace, a disk-fill's share, a missing
 * path (also under a pid's root) and a symlink into a denied directory.
 * Each case must give the same code and byte for byte the same message
 * from both views - the policy's words do not depend on who looked.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exp.h"
#include "hostview.h"
#include "launcher.h"
#include "policy.h"
#include "testutil.h"
#include "clock.h"
#include "files.h"
#include "procfs.h"

static cep_policy pol;
static char *dir;
static char url[4200];
static cep_launcher *L;
static cep_hostview *views[2];
static pid_t sleeper;

static void start_launcher(void)
{
	char bin[4200], runs[4200];
	snprintf(bin, sizeof(bin), "%s/cep-runner", dir);
	snprintf(runs, sizeof(runs), "%s/runs", dir);
	snprintf(url, sizeof(url), "ipc://%s/launcher.sock", dir);
	cep_err err = {0};
	cr_assert_eq(cep_files_write(bin, "#!/bin/sh\n", 10, 0755, &err),
	    CEP_OK);
	cep_launcher_opts o = {.url = url,
	    .runner_bin = bin,
	    .runs_dir = runs,
	    .allow_uid = getuid(),
	    .stop_wait_ms = 1000};
	cr_assert_eq(launcher_new(&o, &L, &err), CEP_OK, "%s", err.msg);
	cr_assert_eq(delegate_hostview_launcher_new(url, &views[1], &err),
	    CEP_OK, "%s", err.msg);
	views[0] = delegate_hostview_direct();
}

static void start_sleeper(void)
{
	sleeper = fork();
	cr_assert_geq(sleeper, 0);
	if (sleeper == 0) {
		execlp("sleep", "sleep", "60", (char *)NULL);
		_exit(127);
	}
	char comm[64] = "";
	for (int i = 0; i < 100 && strcmp(comm, "sleep") != 0; i++) {
		if (!cep_procfs_info(sleeper, comm, sizeof(comm), NULL))
			comm[0] = '\0';
		cep_clock_sleep_ms(10);
	}
}

static void setup(void)
{
	memset(&pol, 0, sizeof(pol));
	pol.max_duration_ms = 30 * 60 * 1000;
	pol.max_concurrent_runs = 10;
	pol.max_cpu_workers = 4;
	pol.max_memory_mib = 1024;
	pol.max_disk_fill_percent = 90;
	pol.n_deny = 1;
	snprintf(pol.deny[0], sizeof(pol.deny[0]), "sle*");
	pol.n_fill_deny = 1;
	snprintf(pol.fill_deny[0], sizeof(pol.fill_deny[0]), "/etc*");
	dir = cep_test_tmpdir("hostview");
	start_launcher();
	start_sleeper();
}

static void teardown(void)
{
	kill(sleeper, SIGKILL);
	waitpid(sleeper, NULL, 0);
	delegate_hostview_free(views[1]);
	delegate_hostview_free(views[0]); /* the shared direct view: ignored */
	launcher_free(L);
	cep_test_rmdir(dir);
}

TestSuite(hostview, .init = setup, .fini = teardown, .timeout = 60);

static int check(cep_hostview *hv, const char *fault, cep_err *err)
{
	char *y = NULL;
	cr_assert(
	    asprintf(&y,
	        "apiVersion: cep.io/v1\nkind: Experiment\n"
	        "metadata:\n  name: t\nspec:\n  duration: 10s\n  faults:\n"
	        "    - name: f1\n%s",
	        fault) > 0);
	cep_exp *e = NULL;
	cr_assert_eq(cep_exp_parse(y, strlen(y), "t.yaml", &e, NULL, err),
	    CEP_OK, "%s\n%s", err->msg, y);
	free(y);
	int rv = delegate_policy_check_host(&pol, NULL, hv, e, 0, err);
	cep_exp_free(e);
	return rv;
}

/* The fault through both views: the same code, the same message, and
 * want in it (NULL: accepted). */
static void both(const char *fault, const char *want)
{
	cep_err e[2] = {{0}, {0}};
	int rv[2];
	for (int i = 0; i < 2; i++)
		rv[i] = check(views[i], fault, &e[i]);
	cr_expect_eq(rv[0], rv[1], "direct %d, launcher %d: %s | %s", rv[0],
	    rv[1], e[0].msg, e[1].msg);
	cr_expect_str_eq(e[0].msg, e[1].msg, "the views disagree");
	if (want == NULL) {
		cr_expect_eq(rv[1], CEP_OK, "%s", e[1].msg);
		return;
	}
	cr_expect_eq(rv[1], CEP_FAILED_PRECONDITION);
	cr_expect(strstr(e[1].msg, want) != NULL, "\"%s\" not in \"%s\"", want,
	    e[1].msg);
}

Test(hostview, a_pid_by_its_command_name)
{
	char f[256], want[256];
	snprintf(f, sizeof(f), "      type: process-kill\n      pid: %d\n",
	    (int)sleeper);
	snprintf(want, sizeof(want),
	    "policy: fault \"f1\" targets pid %d, "
	    "process \"sleep\", denied by policy.targets.deny \"sle*\"",
	    (int)sleeper);
	both(f, want);
	snprintf(pol.deny[0], sizeof(pol.deny[0]), "sshd");
	both(f, NULL);
	both("      type: process-kill\n      pid: 4194304\n",
	    "policy: fault \"f1\" targets pid 4194304: no such process");
}

Test(hostview, network_namespaces)
{
	char f[256];
	snprintf(pol.deny[0], sizeof(pol.deny[0]), "sshd");
	snprintf(f, sizeof(f),
	    "      type: network-loss\n      pid: %d\n"
	    "      percent: 10\n",
	    (int)sleeper);
	both(f,
	    "targets the host's network namespace (pid 1's or the "
	    "appliance's own), refused while policy.network.allowHostNetns "
	    "is false");
	pol.allow_host_netns = true;
	both(f, NULL);
	both("      type: network-loss\n      netns: cep-hv-no-such-ns\n"
	     "      percent: 10\n",
	    "policy: fault \"f1\" (network-loss): target "
	    "network namespace: /run/netns/cep-hv-no-such-ns");
}

Test(hostview, disk_fill)
{
	char f[4400], want[4400], link[4200];
	snprintf(f, sizeof(f),
	    "      type: disk-fill\n      path: %s\n"
	    "      percent: 50\n",
	    dir);
	both(f, NULL);
	snprintf(f, sizeof(f),
	    "      type: disk-fill\n      path: %s\n"
	    "      percent: 95\n",
	    dir);
	snprintf(want, sizeof(want),
	    "policy: fault \"f1\" would fill %s to "
	    "95%%, exceeds policy.maxDiskFillPercent 90",
	    dir);
	both(f, want);
	snprintf(f, sizeof(f),
	    "      type: disk-fill\n      path: %s/none\n"
	    "      mib: 1\n",
	    dir);
	snprintf(want, sizeof(want),
	    "policy: fault \"f1\" (disk-fill): cannot "
	    "check %s/none against policy.maxDiskFillPercent: No such file or "
	    "directory",
	    dir);
	both(f, want);
	/* under a pid's root: named as /proc shows it */
	snprintf(f, sizeof(f),
	    "      type: disk-fill\n      pid: %d\n"
	    "      path: %s/none\n      mib: 1\n",
	    (int)sleeper, dir);
	snprintf(want, sizeof(want),
	    "cannot check /proc/%d/root%s/none against", (int)sleeper, dir);
	both(f, want);
	/* a symlink into a denied directory: resolved on the host */
	snprintf(link, sizeof(link), "%s/to-etc", dir);
	cr_assert_eq(symlink("/etc", link), 0);
	snprintf(f, sizeof(f),
	    "      type: disk-fill\n      path: %s\n"
	    "      mib: 1\n",
	    link);
	snprintf(want, sizeof(want),
	    "policy: fault \"f1\" fills %s, denied by "
	    "policy.diskFillDeny \"/etc*\"",
	    link);
	both(f, want);
}

/* A launcher that does not answer: the fault is refused, naming it. */
Test(hostview, an_unreachable_launcher_refuses_by_name)
{
	char gone[4300];
	snprintf(gone, sizeof(gone), "ipc://%s/gone.sock", dir);
	cep_hostview *hv = NULL;
	cep_err err = {0};
	cr_assert_eq(delegate_hostview_launcher_new(gone, &hv, &err), CEP_OK);
	cr_expect_str_eq(delegate_hostview_name(hv), "launcher");
	char f[256], want[4400];
	snprintf(f, sizeof(f), "      type: process-kill\n      pid: %d\n",
	    (int)sleeper);
	cr_expect_eq(check(hv, f, &err), CEP_FAILED_PRECONDITION);
	snprintf(want, sizeof(want),
	    "targets pid %d: cannot check it: asking "
	    "cep-launcher at %s",
	    (int)sleeper, gone);
	cr_expect(strstr(err.msg, want) != NULL, "%s", err.msg);
	delegate_hostview_free(hv);
}
