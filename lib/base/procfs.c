/* procfs.c - what /proc/<pid>/stat says about a process. */
#define _GNU_SOURCE
#include "procfs.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The fields of /proc/<pid>/stat after "pid (comm)": comm may hold
 * spaces and ')', so they start after the last ')'. NULL if gone. */
static const char *proc_stat_fields(int pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return (p != NULL && p[1] == ' ') ? p + 1 : NULL;
}

bool cep_procfs_info(int pid, char *comm, size_t clen, int *ppid)
{
	char buf[1024];
	const char *p = proc_stat_fields(pid, buf, sizeof(buf));
	const char *open = strchr(buf, '(');
	if (p == NULL || open == NULL || open > p)
		return false;
	if (comm != NULL)
		snprintf(comm, clen, "%.*s", (int)(p - open - 2), open + 1);
	/* p: " S ppid ..." */
	if (ppid != NULL) {
		char *end;
		*ppid = (int)strtol(p + 3, &end, 10);
		if (end == p + 3)
			return false;
	}
	return true;
}

int64_t cep_procfs_start_time(int pid)
{
	char buf[1024];
	const char *p = proc_stat_fields(pid, buf, sizeof(buf));
	if (p == NULL)
		return 0;
	/* p points at the space before field 3; the start time is field 22 */
	int field = 2;
	for (; *p != '\0'; p++) {
		if (*p != ' ')
			continue;
		if (++field == 22)
			return strtoll(p + 1, NULL, 10);
	}
	return 0;
}

char cep_procfs_state(int pid)
{
	char buf[1024];
	const char *p = proc_stat_fields(pid, buf, sizeof(buf));
	return p != NULL ? p[1] : 0;
}
