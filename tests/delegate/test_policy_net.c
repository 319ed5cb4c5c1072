/* test_policy_net.c - network faults never target the host's or the
 * appliance's own network namespace, however it is named (pid 1, a
 * /proc path, our own pid); a namespace of its own passes. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exp.h"
#include "policy.h"

static cep_policy pol;

static void base_policy(void)
{
	memset(&pol, 0, sizeof(pol));
	pol.max_duration_ms = 30 * 60 * 1000;
	pol.max_concurrent_runs = 10;
	pol.max_cpu_workers = 4;
	pol.max_memory_mib = 1024;
}

TestSuite(policy_net, .init = base_policy);

/* ip netns add|del name (test setup: fork/exec, no shell). */
static int ipns(const char *verb, const char *name)
{
	pid_t c = fork();
	if (c == 0) {
		int dn = open("/dev/null", O_WRONLY);
		if (dn >= 0)
			dup2(dn, 2);
		execlp("ip", "ip", "netns", verb, name, (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(c, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int check(const char *fault, char *msg, size_t len)
{
	char y[1024];
	snprintf(y, sizeof(y), "apiVersion: cep.io/v1\nkind: Experiment\n"
	    "metadata:\n  name: t\nspec:\n  target:\n    kind: host\n"
	    "  duration: 10s\n  faults:\n    - name: f1\n%s", fault);
	cep_exp *e = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_exp_parse(y, strlen(y), "t.yaml", &e, NULL, &err),
	    CEP_OK, "%s", err.msg);
	int rv = cep_policy_check(&pol, e, 0, &err);
	snprintf(msg, len, "%s", err.msg);
	cep_exp_free(e);
	return rv;
}

Test(policy_net, host_netns_refused_by_every_name)
{
	char msg[512];
	cr_assert_eq(check("      type: network-loss\n      netns: "
	    "/proc/1/ns/net\n      percent: 10\n", msg, sizeof(msg)),
	    CEP_FAILED_PRECONDITION);
	/* refused as the host's, or as unreadable (no ptrace over init) */
	cr_expect(strstr(msg, "never allowed") || strstr(msg, "/proc/1/ns/net"),
	    "%s", msg);
	cr_assert_eq(check("      type: network-partition\n      netns: "
	    "/proc/self/ns/net\n      cidrs: [10.0.0.0/8]\n", msg,
	    sizeof(msg)), CEP_FAILED_PRECONDITION);
	cr_expect(strstr(msg, "never allowed"), "%s", msg);
	/* a pid in the host namespace (a child of ours, not cep-named) */
	pid_t c = fork();
	if (c == 0) {
		pause();
		_exit(0);
	}
	char f[256];
	snprintf(f, sizeof(f), "      type: dns-error\n      pid: %d\n"
	    "      names: [a.example]\n", (int)c);
	int rv = check(f, msg, sizeof(msg));
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	cr_assert_eq(rv, CEP_FAILED_PRECONDITION);
	cr_expect(strstr(msg, "never allowed"), "%s", msg);
}

Test(policy_net, missing_netns_refused)
{
	char msg[512];
	cr_assert_eq(check("      type: network-latency\n      netns: "
	    "cep-no-such-ns\n      delay: 10ms\n", msg, sizeof(msg)),
	    CEP_FAILED_PRECONDITION);
	cr_expect(strstr(msg, "target network namespace"), "%s", msg);
}

Test(policy_net, own_netns_allowed)
{
	char msg[512];
	ipns("del", "cep-policy-net-t");
	cr_assert_eq(ipns("add", "cep-policy-net-t"), 0);
	int rv = check("      type: network-loss\n      netns: "
	    "cep-policy-net-t\n      percent: 10\n", msg, sizeof(msg));
	int st = ipns("del", "cep-policy-net-t");
	cr_assert_eq(rv, CEP_OK, "%s", msg);
	cr_assert_eq(st, 0);
}
