/* test_policy.c - every policy rule refuses with its message (naming the
 * cep.yaml key); an allowed spec passes. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exp.h"
#include "policy.h"
#include "testutil.h"
#include "clock.h"

static cep_policy pol;

static void base_policy(void)
{
	memset(&pol, 0, sizeof(pol));
	pol.max_duration_ms = 30 * 60 * 1000;
	pol.max_concurrent_runs = 10;
	pol.max_cpu_workers = 4;
	pol.max_memory_mib = 1024;
	pol.n_deny = 2;
	snprintf(pol.deny[0], sizeof(pol.deny[0]), "sshd");
	snprintf(pol.deny[1], sizeof(pol.deny[1]), "systemd*");
	pol.n_ns_deny = 1;
	snprintf(pol.ns_deny[0], sizeof(pol.ns_deny[0]), "kube-system");
}

TestSuite(policy, .init = base_policy);

/* A host experiment with one fault given as YAML lines (6 spaces in). */
static cep_exp *host_exp(const char *duration, const char *fault)
{
	char *y = NULL;
	int n = asprintf(&y,
	    "apiVersion: cep.io/v1\n"
	    "kind: Experiment\n"
	    "metadata:\n"
	    "  name: t\n"
	    "spec:\n"
	    "  target:\n"
	    "    kind: host\n"
	    "  duration: %s\n"
	    "  faults:\n"
	    "    - name: f1\n"
	    "%s",
	    duration, fault);
	cr_assert(n > 0);
	cep_exp *e = NULL;
	cep_err err = {0};
	int rv = cep_exp_parse(y, strlen(y), "t.yaml", &e, NULL, &err);
	cr_assert_eq(rv, CEP_OK, "spec did not parse: %s\n%s", err.msg, y);
	free(y);
	return e;
}

static void refused(cep_exp *e, size_t active, const char *want)
{
	cep_err err = {0};
	int rv = delegate_policy_check(&pol, e, active, &err);
	cr_assert_eq(rv, CEP_FAILED_PRECONDITION, "not refused (want: %s)",
	    want);
	cr_assert_eq(err.code, CEP_FAILED_PRECONDITION);
	cr_assert(strstr(err.msg, want) != NULL, "message \"%s\" lacks \"%s\"",
	    err.msg, want);
	cep_exp_free(e);
}

Test(policy, allowed_spec_passes)
{
	cep_exp *e = host_exp("30s",
	    "      type: process-kill\n"
	    "      process: demo-web\n");
	cep_err err = {0};
	cr_assert_eq(delegate_policy_check(&pol, e, 0, &err), CEP_OK, "%s",
	    err.msg);
	cep_exp_free(e);
}

Test(policy, duration)
{
	refused(host_exp("2h", "      type: cpu-hog\n"), 0,
	    "policy: duration 2h exceeds policy.maxDuration 30m");
}

Test(policy, concurrency)
{
	refused(host_exp("10s", "      type: cpu-hog\n"), 10,
	    "policy: 10 runs active, policy.maxConcurrentRuns is 10");
}

Test(policy, denied_process)
{
	refused(host_exp("10s",
	            "      type: process-kill\n"
	            "      process: sshd\n"),
	    0,
	    "policy: fault \"f1\" targets process \"sshd\", denied by "
	    "policy.targets.deny \"sshd\"");
}

Test(policy, denied_by_glob)
{
	refused(host_exp("10s",
	            "      type: process-kill\n"
	            "      process: systemd-journald\n"),
	    0, "denied by policy.targets.deny \"systemd*\"");
}

Test(policy, wildcard_target_cannot_pass_a_deny)
{
	refused(host_exp("10s",
	            "      type: process-kill\n"
	            "      process: \"*\"\n"),
	    0, "denied by policy.targets.deny");
}

Test(policy, not_in_allow_list)
{
	pol.n_allow = 1;
	snprintf(pol.allow[0], sizeof(pol.allow[0]), "demo-*");
	refused(host_exp("10s",
	            "      type: process-kill\n"
	            "      process: nginx\n"),
	    0,
	    "policy: fault \"f1\" targets process \"nginx\", not allowed by "
	    "policy.targets.allow");
	cep_exp *ok = host_exp("10s",
	    "      type: process-kill\n"
	    "      process: demo-web\n");
	cep_err err = {0};
	cr_assert_eq(delegate_policy_check(&pol, ok, 0, &err), CEP_OK, "%s",
	    err.msg);
	cep_exp_free(ok);
}

Test(policy, denied_cgroup)
{
	/* However the cgroup is written, patterns see it relative to
	 * /sys/fs/cgroup. */
	snprintf(pol.deny[1], sizeof(pol.deny[1]), "system.slice/*");
	refused(host_exp("10s",
	            "      type: process-kill\n"
	            "      cgroup: /sys/fs/cgroup/system.slice/ssh.service\n"),
	    0,
	    "targets cgroup \"system.slice/ssh.service\", denied by "
	    "policy.targets.deny \"system.slice/*\"");
}

Test(policy, memory)
{
	refused(host_exp("10s", "      type: memory-hog\n      mib: 2048\n"), 0,
	    "asks mib 2048, exceeds policy.maxMemoryMiB 1024");
}

Test(policy, cpu_workers)
{
	refused(host_exp("10s", "      type: cpu-hog\n      workers: 8\n"), 0,
	    "asks workers 8, exceeds policy.maxCpuWorkers 4");
}

Test(policy, own_pid)
{
	char f[128];
	snprintf(f, sizeof(f), "      type: process-kill\n      pid: %d\n",
	    (int)getpid());
	refused(host_exp("10s", f), 0, "the appliance's own process");
}

Test(policy, missing_pid)
{
	/* pid_max is at most 4194304; the schema allows up to that. */
	refused(host_exp("10s",
	            "      type: process-kill\n      pid: 4194304\n"),
	    0, "no such process");
}

Test(policy, pid_checked_by_comm)
{
	pid_t child = fork();
	cr_assert(child >= 0);
	if (child == 0) {
		execlp("sleep", "sleep", "30", (char *)NULL);
		_exit(127);
	}
	/* wait until the child is sleep, not our fork */
	char path[64], comm[64] = "";
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)child);
	for (int i = 0; i < 100 && strncmp(comm, "sleep", 5) != 0; i++) {
		FILE *f = fopen(path, "r");
		if (f != NULL) {
			if (fgets(comm, sizeof(comm), f) == NULL)
				comm[0] = '\0';
			fclose(f);
		}
		cep_clock_sleep_ms(20);
	}
	snprintf(pol.deny[1], sizeof(pol.deny[1]), "sleep");
	char fy[128];
	snprintf(fy, sizeof(fy), "      type: process-kill\n      pid: %d\n",
	    (int)child);
	cep_exp *e = host_exp("10s", fy);
	cep_err err = {0};
	int rv = delegate_policy_check(&pol, e, 0, &err);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	cep_exp_free(e);
	cr_assert_eq(rv, CEP_FAILED_PRECONDITION);
	cr_assert(strstr(err.msg,
	              "process \"sleep\", denied by "
	              "policy.targets.deny \"sleep\"") != NULL,
	    "%s", err.msg);
}

static cep_exp *kube_exp(const char *ns)
{
	char *y = NULL;
	int n = asprintf(&y,
	    "apiVersion: cep.io/v1\nkind: Experiment\nmetadata:\n  name: k\n"
	    "spec:\n  target:\n    kind: kubernetes\n    connector: prod\n"
	    "    namespace: %s\n  duration: 10s\n",
	    ns);
	cr_assert(n > 0);
	cep_exp *e = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_exp_parse(y, strlen(y), "k.yaml", &e, NULL, &err),
	    CEP_OK, "%s", err.msg);
	free(y);
	return e;
}

Test(policy, kubernetes_has_no_connector)
{
	refused(kube_exp("shop"), 0, "policy: no connector \"prod\"");
}

Test(policy, namespace_denied)
{
	refused(kube_exp("kube-system"), 0,
	    "policy: namespace \"kube-system\" denied by policy.namespaces.deny "
	    "\"kube-system\"");
}
