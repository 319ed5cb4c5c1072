/* test_target.c - host targets (lib/target/target.c) on their own, not
 * only through the runner's faults: what is refused before anything is
 * touched, and this test's own process as a pid target. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "target.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))

Test(target, exactly_one_of_pid_and_cgroup)
{
	cep_target *t = (cep_target *)1;
	cep_err err = {0};
	cr_assert_eq(cep_target_resolve(0, NULL, &t, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_null(t);
	assert_contains(err.msg, "exactly one of pid and cgroup");
	cr_assert_eq(cep_target_resolve(getpid(), "x", &t, &err),
	    CEP_INVALID_ARGUMENT);
	cr_assert_null(t);
	cr_assert_eq(cep_target_resolve(0x80000000LL, NULL, &t, &err),
	    CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "out of range");
}

Test(target, cgroup_paths_stay_under_the_root)
{
	char root[4096];
	cep_err err = {0};
	cep_target *t = NULL;
	if (cep_target_cgroup2_root(root, sizeof(root), &err) != CEP_OK) {
		/* a v1-only host refuses every cgroup target */
		cr_assert_neq(cep_target_resolve(0, "x", &t, &err), CEP_OK);
		cr_assert_null(t);
		return;
	}
	const char *bad[] = {"..", "../etc", "a/../../etc", "./x", "a/./b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(cep_target_resolve(0, bad[i], &t, &err),
		    CEP_INVALID_ARGUMENT, "%s accepted", bad[i]);
		cr_assert_null(t);
		assert_contains(err.msg, "must not contain");
	}
	cr_assert_eq(cep_target_resolve(0, "cep-test-no-such-cgroup", &t, &err),
	    CEP_NOT_FOUND);
	cr_assert_null(t);
}

Test(target, own_pid)
{
	cep_target *t = NULL;
	cep_err err = {0};
	cr_assert_eq(cep_target_resolve(getpid(), NULL, &t, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(cep_target_pid(t), getpid());
	char name[64];
	snprintf(name, sizeof(name), "pid %d", (int)getpid());
	cr_assert_str_eq(cep_target_name(t), name);
	/* its own mount namespace, the one /proc/self/ns/mnt names */
	cr_assert(cep_target_mntns_is_self(t));
	cr_assert_geq(cep_target_mntns_fd(t), 0);
	struct stat st;
	cr_assert_eq(stat("/proc/self/ns/mnt", &st), 0);
	cr_assert_eq(cep_target_mntns_ino(t), (uint64_t)st.st_ino);
	/* its v2 cgroup, when the host has one, is a directory we can see */
	const char *cg = cep_target_cgroup(t);
	if (cg[0] != '\0') {
		cr_assert_eq(stat(cg, &st), 0, "%s", cg);
		cr_assert_eq(cep_target_cgroup_ino(t), (uint64_t)st.st_ino);
	}
	cep_target_free(t);
	cep_target_free(NULL);
}

Test(target, gone_pid)
{
	cep_target *t = NULL;
	cep_err err = {0};
	/* above the kernel's pid_max (at most 2^22) */
	cr_assert_eq(cep_target_resolve(0x7fff0000, NULL, &t, &err),
	    CEP_NOT_FOUND);
	cr_assert_null(t);
}
