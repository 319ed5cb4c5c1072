/* test_policy_net.c - network faults target the host's network
 * namespace, however it is named (pid 1, a /proc path, our own pid), only
 * with policy.network.allowHostNetns, and the refusal names that key; a
 * namespace of its own passes. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
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
	snprintf(y, sizeof(y),
	    "apiVersion: cep.io/v1\nkind: Experiment\n"
	    "metadata:\n  name: t\nspec:\n  target:\n    kind: host\n"
	    "  duration: 10s\n  faults:\n    - name: f1\n%s",
	    fault);
	cep_exp *e = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_exp_parse(y, strlen(y), "t.yaml", &e, NULL, &err),
	    CEP_OK, "%s", err.msg);
	int rv = delegate_policy_check(&pol, e, 0, &err);
	snprintf(msg, len, "%s", err.msg);
	cep_exp_free(e);
	return rv;
}

/* A child of ours in the host namespace (not cep-named): a pid target. */
static pid_t host_child(void)
{
	pid_t c = fork();
	if (c == 0) {
		pause();
		_exit(0);
	}
	cr_assert_gt(c, 0);
	return c;
}

static int check_pid_target(pid_t c, char *msg, size_t len)
{
	char f[256];
	snprintf(f, sizeof(f),
	    "      type: dns-error\n      pid: %d\n"
	    "      names: [a.example]\n",
	    (int)c);
	int rv = check(f, msg, len);
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	return rv;
}

#define HOST_KEY "policy.network.allowHostNetns is false"

Test(policy_net, host_netns_refused_by_every_name)
{
	char msg[512];
	cr_assert_eq(check("      type: network-loss\n      netns: "
	                   "/proc/1/ns/net\n      percent: 10\n",
	                 msg, sizeof(msg)),
	    CEP_FAILED_PRECONDITION);
	/* refused as the host's, naming the rule and its key (or as
	 * unreadable where root has no ptrace over init) */
	cr_expect((strstr(msg, "targets the host's network namespace") &&
	              strstr(msg, HOST_KEY)) ||
	        strstr(msg, "/proc/1/ns/net"),
	    "%s", msg);
	cr_expect(strncmp(msg, "policy: fault \"f1\" (network-loss)", 33) == 0,
	    "%s", msg);
	/* the appliance's own namespace is the host's here: same rule */
	cr_assert_eq(check("      type: network-partition\n      netns: "
	                   "/proc/self/ns/net\n      cidrs: [10.0.0.0/8]\n",
	                 msg, sizeof(msg)),
	    CEP_FAILED_PRECONDITION);
	cr_expect(strstr(msg, HOST_KEY), "%s", msg);
	cr_assert_eq(check_pid_target(host_child(), msg, sizeof(msg)),
	    CEP_FAILED_PRECONDITION);
	cr_expect(strstr(msg, HOST_KEY), "%s", msg);
}

Test(policy_net, host_netns_allowed_with_the_switch)
{
	char msg[512] = "";
	pol.allow_host_netns = true;
	if (access("/proc/1/ns/net", R_OK) == 0)
		cr_assert_eq(check("      type: network-loss\n      netns: "
		                   "/proc/1/ns/net\n      percent: 10\n",
		                 msg, sizeof(msg)),
		    CEP_OK, "%s", msg);
	cr_assert_eq(check("      type: network-latency\n      netns: "
	                   "/proc/self/ns/net\n      delay: 10ms\n",
	                 msg, sizeof(msg)),
	    CEP_OK, "%s", msg);
	cr_assert_eq(check_pid_target(host_child(), msg, sizeof(msg)), CEP_OK,
	    "%s", msg);
	/* the switch opens the namespace rule only: the other rules stay */
	pol.max_duration_ms = 1000;
	cr_assert_eq(check("      type: network-loss\n      netns: "
	                   "/proc/self/ns/net\n      percent: 10\n",
	                 msg, sizeof(msg)),
	    CEP_FAILED_PRECONDITION);
	cr_expect(strstr(msg, "policy.maxDuration"), "%s", msg);
}

/* The decision alone, by namespace identity: the host's (here the
 * appliance's own; pid 1's is unreadable without ptrace over init) by
 * the switch; any other namespace passes. */
Test(policy_net, decision_by_identity)
{
	struct stat st;
	cr_assert_eq(stat("/proc/self/ns/net", &st), 0);
	cep_netns_id host = {(uint64_t)st.st_dev, (uint64_t)st.st_ino};
	cep_netns_id other = {(uint64_t)st.st_dev, (uint64_t)st.st_ino + 7};
	cep_err err = {0};
	cr_assert_eq(delegate_policy_check_netns_id(&pol, "x", "network-loss",
	                 &host, &err),
	    CEP_FAILED_PRECONDITION);
	cr_expect(strstr(err.msg, HOST_KEY), "%s", err.msg);
	cr_assert_eq(delegate_policy_check_netns_id(&pol, "x", "network-loss",
	                 &other, &err),
	    CEP_OK);
	pol.allow_host_netns = true;
	cr_assert_eq(delegate_policy_check_netns_id(&pol, "x", "network-loss",
	                 &host, &err),
	    CEP_OK, "%s", err.msg);
}

Test(policy_net, missing_netns_refused)
{
	char msg[512];
	cr_assert_eq(check("      type: network-latency\n      netns: "
	                   "cep-no-such-ns\n      delay: 10ms\n",
	                 msg, sizeof(msg)),
	    CEP_FAILED_PRECONDITION);
	cr_expect(strstr(msg, "target network namespace"), "%s", msg);
}

Test(policy_net, own_netns_allowed)
{
	char msg[512];
	ipns("del", "cep-policy-net-t");
	cr_assert_eq(ipns("add", "cep-policy-net-t"), 0);
	int rv = check("      type: network-loss\n      netns: "
	               "cep-policy-net-t\n      percent: 10\n",
	    msg, sizeof(msg));
	int st = ipns("del", "cep-policy-net-t");
	cr_assert_eq(rv, CEP_OK, "%s", msg);
	cr_assert_eq(st, 0);
}
