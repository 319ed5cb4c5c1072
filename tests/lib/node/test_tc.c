/* test_tc.c - netem support is detected, not assumed: the probe agrees
 * with tc(8) in a scratch namespace, and leaves no namespace behind. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tc.h"

static int run(const char *const *argv)
{
	pid_t c = fork();
	if (c == 0) {
		int dn = open("/dev/null", O_WRONLY);
		if (dn >= 0) {
			dup2(dn, 1);
			dup2(dn, 2);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st;
	waitpid(c, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define RUN(...) run((const char *const[]){__VA_ARGS__, NULL})

Test(tc, netem_probe_agrees_with_tc)
{
	char ns[32];
	snprintf(ns, sizeof(ns), "cep-tc-probe-%d", (int)getpid());
	cr_assert_eq(RUN("ip", "netns", "add", ns), 0);
	int tc = RUN("tc", "-n", ns, "qdisc", "add", "dev", "lo", "root",
	    "netem", "delay", "1ms");
	RUN("ip", "netns", "del", ns);
	bool ok = false;
	cep_err err = {0};
	cr_assert_eq(cep_tc_kind_available("netem", &ok, &err), CEP_OK, "%s",
	    err.msg);
	cr_expect_eq(ok, tc == 0, "probe says %d, tc(8) exit %d", ok, tc);
}

Test(tc, undo_of_a_gone_namespace_is_clean)
{
	cep_err err = {0};
	cr_assert_eq(
	    cep_tc_undo("r-0123456789abcdef",
	        "{\"netns_dev\": 4, "
	        "\"netns_inode\": 1, \"netns_path\": \"\", \"ifindexes\": [2], "
	        "\"major\": 52736}",
	        &err),
	    CEP_OK, "%s", err.msg);
	cr_assert_neq(cep_tc_undo("r-0123456789abcdef", "{\"major\": 1}", &err),
	    CEP_OK);
}
