/* test_util.c - durations, files. (Run ids: test_runid.c.) */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "clock.h"
#include "files.h"
#include "procfs.h"

Test(util, durations)
{
	int64_t ms;
	cr_assert(cep_clock_parse_duration_ms("250ms", &ms) && ms == 250);
	cr_assert(cep_clock_parse_duration_ms("2s", &ms) && ms == 2000);
	cr_assert(cep_clock_parse_duration_ms("1m30s", &ms) && ms == 90000);
	cr_assert(cep_clock_parse_duration_ms("1.5s", &ms) && ms == 1500);
	cr_assert(cep_clock_parse_duration_ms("1h", &ms) && ms == 3600000);
	cr_assert(!cep_clock_parse_duration_ms("", &ms));
	cr_assert(!cep_clock_parse_duration_ms("10", &ms));
	cr_assert(!cep_clock_parse_duration_ms("-1s", &ms));
	cr_assert(!cep_clock_parse_duration_ms("1x", &ms));
	cr_assert(!cep_clock_parse_duration_ms("99999999999h", &ms));
	char buf[32];
	cep_clock_format_duration(90500, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1m30.5s");
	cep_clock_format_duration(120000, buf, sizeof(buf));
	cr_assert_str_eq(buf, "2m");
	cep_clock_format_duration(3600000, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1h");
	cep_clock_format_duration(3660000, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1h1m");
	cep_clock_format_duration(250, buf, sizeof(buf));
	cr_assert_str_eq(buf, "250ms");
}

Test(util, files)
{
	char *dir = cep_test_tmpdir("util");
	char path[512];
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	cr_assert_eq(cep_files_mkdirs(path, 0700, NULL), CEP_OK);
	snprintf(path, sizeof(path), "%s/a/b/c/f", dir);
	cr_assert_eq(cep_files_write(path, "hello", 5, 0600, NULL), CEP_OK);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	char *data;
	size_t len;
	cr_assert_eq(cep_files_read(path, 100, &data, &len, NULL), CEP_OK);
	cr_assert_eq(len, 5);
	cr_assert_str_eq(data, "hello");
	free(data);
	cep_err err;
	cr_assert_eq(cep_files_read(path, 3, &data, &len, &err),
	    CEP_RESOURCE_EXHAUSTED);
	cr_assert(strstr(err.msg, "limit") != NULL);
	cep_test_rmdir(dir);
}

Test(util, proc_stat)
{
	cr_assert(cep_procfs_start_time(getpid()) > 0);
	char st = cep_procfs_state(getpid());
	cr_assert(st == 'R' || st == 'S', "state %c", st);
	pid_t child = fork();
	if (child == 0)
		_exit(0);
	waitpid(child, NULL, 0);
	cr_assert_eq(cep_procfs_state(child), 0);
	cr_assert(!cep_procfs_info(child, NULL, 0, NULL));
	char comm[32], want[32];
	int ppid = 0;
	cr_assert(cep_procfs_info(getpid(), comm, sizeof(comm), &ppid));
	cr_assert_eq(ppid, getppid());
	FILE *f = fopen("/proc/self/comm", "r");
	cr_assert(f != NULL && fgets(want, sizeof(want), f) != NULL);
	fclose(f);
	want[strcspn(want, "\n")] = '\0';
	cr_assert_str_eq(comm, want);
	cr_assert_eq(cep_procfs_start_time(child), 0);
}
