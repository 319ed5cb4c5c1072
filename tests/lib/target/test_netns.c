/* test_netns.c - network namespaces as targets (lib/target/netns.c) on
 * their own, with this process's namespace: what a target may be, identity
 * and finding a namespace again by it, work on a thread inside it (setns:
 * root, as the suite runs; test_tc too). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netns.h"

#define assert_contains(s, sub) \
	cr_assert(strstr((s), (sub)) != NULL, "\"%s\" lacks \"%s\"", (s), (sub))

Test(netns, what_a_target_may_be)
{
	int fd = -1;
	cep_netns_id id;
	cep_err err = {0};
	const char *bad[] = {NULL, "", "a/b", "../x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(cep_netns_open(0, bad[i], &fd, &id, NULL, 0, &err),
		    CEP_INVALID_ARGUMENT, "%s accepted",
		    bad[i] != NULL ? bad[i] : "NULL");
		cr_assert_eq(fd, -1);
	}
	cr_assert_eq(cep_netns_open(0x80000000LL, NULL, &fd, &id, NULL, 0,
	                 &err),
	    CEP_INVALID_ARGUMENT);
	/* an nsfs file of another type is not a network namespace */
	cr_assert_eq(cep_netns_open(0, "/proc/self/ns/mnt", &fd, &id, NULL, 0,
	                 &err),
	    CEP_INVALID_ARGUMENT);
	assert_contains(err.msg, "is not a network namespace");
	cr_assert_neq(cep_netns_open(0, "cep-test-no-such-netns", &fd, &id,
	                  NULL, 0, &err),
	    CEP_OK);
	cr_assert_eq(fd, -1);
}

Test(netns, own_namespace_by_pid_and_identity)
{
	int fd = -1, again = -1;
	cep_netns_id id, id2;
	char path[128];
	cep_err err = {0};
	cr_assert_eq(cep_netns_open(getpid(), NULL, &fd, &id, path,
	                 sizeof(path), &err),
	    CEP_OK, "%s", err.msg);
	char want[64];
	snprintf(want, sizeof(want), "/proc/%d/ns/net", (int)getpid());
	cr_assert_str_eq(path, want);
	struct stat st;
	cr_assert_eq(stat("/proc/self/ns/net", &st), 0);
	cr_assert_eq(id.ino, (uint64_t)st.st_ino);
	cr_assert_eq(cep_netns_id_of(fd, &id2, &err), CEP_OK);
	cr_assert(id2.dev == id.dev && id2.ino == id.ino);
	/* the appliance's own namespace is never an ordinary target */
	cr_assert(cep_netns_is_host(&id));
	/* found again by identity, from a stale hint too */
	cr_assert_eq(cep_netns_find(&id, "/nonexistent", &again, &err), CEP_OK,
	    "%s", err.msg);
	cr_assert_eq(cep_netns_id_of(again, &id2, &err), CEP_OK);
	cr_assert(id2.dev == id.dev && id2.ino == id.ino);
	close(again);
	close(fd);
	/* an identity nothing holds is gone */
	cep_netns_id none = {.dev = id.dev, .ino = 1};
	cr_assert(!cep_netns_is_host(&none));
	cr_assert_eq(cep_netns_find(&none, NULL, &again, &err), CEP_NOT_FOUND);
	assert_contains(err.msg, "is gone");
}

static int in_ns(void *arg, cep_err *err)
{
	(void)err;
	struct stat st;
	if (stat("/proc/thread-self/ns/net", &st) != 0)
		return CEP_INTERNAL;
	*(uint64_t *)arg = (uint64_t)st.st_ino;
	return CEP_OK;
}

static int fails(void *arg, cep_err *err)
{
	(void)arg;
	return cep_err_set(err, CEP_FAILED_PRECONDITION, "told to fail");
}

Test(netns, run_on_a_thread_inside)
{
	int fd = -1;
	cep_netns_id id;
	cep_err err = {0};
	cr_assert_eq(cep_netns_open(getpid(), NULL, &fd, &id, NULL, 0, &err),
	    CEP_OK, "%s", err.msg);
	uint64_t ino = 0;
	cr_assert_eq(cep_netns_run(fd, in_ns, &ino, &err), CEP_OK, "%s",
	    err.msg);
	cr_assert_eq(ino, id.ino);
	/* fn's status and message come back */
	cr_assert_eq(cep_netns_run(fd, fails, NULL, &err),
	    CEP_FAILED_PRECONDITION);
	assert_contains(err.msg, "told to fail");
	close(fd);
}
