/* test_policy_hostfaults.c - the policy rules of the host-resource
 * faults: disk-fill share (policy.maxDiskFillPercent, also for a mib fill
 * measured against the filesystem now), system paths
 * (policy.diskFillDeny), cgroup targets against policy.targets also in the
 * hybrid /sys/fs/cgroup/unified spelling. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "exp.h"
#include "policy.h"
#include "testutil.h"

static cep_policy pol;
static char *dir;

static void setup(void)
{
	memset(&pol, 0, sizeof(pol));
	pol.max_duration_ms = 30 * 60 * 1000;
	pol.max_concurrent_runs = 10;
	pol.max_cpu_workers = 4;
	pol.max_memory_mib = 1024;
	pol.max_disk_fill_percent = 90;
	pol.n_deny = 1;
	snprintf(pol.deny[0], sizeof(pol.deny[0]), "system.slice/*");
	pol.n_allow = 1;
	snprintf(pol.allow[0], sizeof(pol.allow[0]), "*");
	pol.n_fill_deny = 2;
	snprintf(pol.fill_deny[0], sizeof(pol.fill_deny[0]), "/");
	snprintf(pol.fill_deny[1], sizeof(pol.fill_deny[1]), "/etc*");
	dir = cep_test_tmpdir("polfill");
}

static void teardown(void)
{
	cep_test_rmdir(dir);
}

TestSuite(policy_host, .init = setup, .fini = teardown);

static int check(const char *fault, cep_err *err)
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
	int rv = delegate_policy_check(&pol, e, 0, err);
	cep_exp_free(e);
	return rv;
}

static void fill(const char *what, int expect, const char *msg)
{
	char f[1024];
	cep_err err = {0};
	snprintf(f, sizeof(f),
	    "      type: disk-fill\n      path: %s\n"
	    "      %s\n",
	    dir, what);
	cr_expect_eq(check(f, &err), expect, "%s: %s", what, err.msg);
	if (msg != NULL)
		cr_expect(strstr(err.msg, msg) != NULL, "%s", err.msg);
}

Test(policy_host, disk_fill_share)
{
	fill("percent: 80", CEP_OK, NULL);
	fill("percent: 91", CEP_FAILED_PRECONDITION,
	    "exceeds policy.maxDiskFillPercent 90");
	fill("mib: 1", CEP_OK, NULL);
	/* a mib fill that would take the filesystem past the share */
	struct statvfs sv;
	cr_assert_eq(statvfs(dir, &sv), 0);
	char big[64];
	snprintf(big, sizeof(big), "mib: %llu",
	    (unsigned long long)((double)sv.f_blocks * sv.f_frsize /
	        1048576.0));
	fill(big, CEP_FAILED_PRECONDITION, "policy.maxDiskFillPercent");
}

Test(policy_host, disk_fill_system_paths)
{
	cep_err err = {0};
	cr_expect_eq(check("      type: disk-fill\n      path: /etc/ssl\n"
	                   "      percent: 10\n",
	                 &err),
	    CEP_FAILED_PRECONDITION);
	cr_expect(strstr(err.msg, "policy.diskFillDeny \"/etc*\"") != NULL,
	    "%s", err.msg);
	cr_expect_eq(check("      type: disk-fill\n      path: /\n"
	                   "      percent: 10\n",
	                 &err),
	    CEP_FAILED_PRECONDITION);
	pol.n_fill_deny = 0; /* allowed by the operator */
	cr_expect_eq(check("      type: disk-fill\n      path: /etc\n"
	                   "      percent: 10\n",
	                 &err),
	    CEP_OK, "%s", err.msg);
}

Test(policy_host, cgroup_targets_of_hogs)
{
	cep_err err = {0};
	cr_expect_eq(check("      type: cpu-hog\n      cgroup: "
	                   "/sys/fs/cgroup/unified/system.slice/x.service\n",
	                 &err),
	    CEP_FAILED_PRECONDITION);
	cr_expect(strstr(err.msg, "policy.targets.deny") != NULL, "%s",
	    err.msg);
	cr_expect_eq(
	    check("      type: memory-hog\n      mib: 8\n      cgroup: "
	          "system.slice/x.service\n",
	        &err),
	    CEP_FAILED_PRECONDITION);
	cr_expect_eq(check("      type: io-stress\n      cgroup: "
	                   "user.slice/app\n",
	                 &err),
	    CEP_OK, "%s", err.msg);
	/* a disk-fill mib is not memory: no maxMemoryMiB check */
	pol.max_memory_mib = 1;
	fill("mib: 2", CEP_OK, NULL);
}
