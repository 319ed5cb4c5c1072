/* runproc.c - the processes of a run (see runproc.h). */
#define _GNU_SOURCE
#include "runproc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "run_id.h"

#define CMDLINE_MAX (32 * 1024)

bool cep_runproc_parse(const char *buf, size_t n, cep_run_id *run_id,
    bool *cleanup)
{
	bool saw_runner = false, found = false;
	const char *p = buf, *end = buf + n;
	*cleanup = false;
	cep_run_id_clear(run_id);
	while (p < end) {
		size_t l = strnlen(p, (size_t)(end - p));
		const char *next = p + l + 1;
		const char *base = strrchr(p, '/');
		base = base ? base + 1 : p;
		if (!saw_runner && strcmp(base, "cep-runner") == 0)
			saw_runner = true;
		else if (saw_runner && strcmp(p, "--cleanup") == 0)
			*cleanup = true;
		/* buf is NUL-terminated after n, so strcmp stays inside. */
		else if (saw_runner && !found && strcmp(p, "--run-id") == 0 &&
		    next < end) {
			found = true; /* the first --run-id names the run */
			if (!cep_run_id_parse(run_id, next))
				return false;
		}
		p = next;
	}
	return found;
}

/* pid's command line into buf (NUL after it); its length, 0 if none. */
static size_t read_cmdline(int pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return (size_t)n;
}

bool cep_runproc_identity(int pid, char *out, size_t len)
{
	static __thread char buf[CMDLINE_MAX];
	size_t n = read_cmdline(pid, buf, sizeof(buf));
	for (const char *p = buf; n > 0 && p < buf + n; p += strlen(p) + 1)
		if (strcmp(p, "--identity") == 0 &&
		    p + strlen(p) + 1 < buf + n) {
			snprintf(out, len, "%s", p + strlen(p) + 1);
			return true;
		}
	return false;
}

/* The run id of pid's command line ("" if not a runner's). */
bool cep_runproc_run_of(int pid, cep_run_id *run_id, bool *cleanup)
{
	static __thread char buf[CMDLINE_MAX];
	size_t n = read_cmdline(pid, buf, sizeof(buf));
	return n > 0 && cep_runproc_parse(buf, n, run_id, cleanup);
}

static bool wanted(int pid, const char *run_id, unsigned which)
{
	cep_run_id id;
	bool cleanup;
	if (!cep_runproc_run_of(pid, &id, &cleanup) ||
	    !cep_run_id_is(&id, run_id))
		return false;
	return (which & (cleanup ? CEP_RUNPROC_CLEANUP : CEP_RUNPROC_RUNNER)) !=
	    0;
}

/* The pids in /proc, other than ours and init: fn returns false to stop. */
static int each_pid(bool (*fn)(int pid, void *arg), void *arg)
{
	DIR *dir = opendir("/proc");
	if (dir == NULL)
		return -1;
	int self = (int)getpid();
	struct dirent *de;
	while ((de = readdir(dir)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end != '\0' || pid <= 1 || pid == self)
			continue;
		if (!fn((int)pid, arg))
			break;
	}
	closedir(dir);
	return 0;
}

struct scan {
	const char *run_id;
	unsigned which;
	int sig, count, *first;
};

static bool scan_one(int pid, void *arg)
{
	struct scan *s = arg;
	if (!wanted(pid, s->run_id, s->which))
		return true;
	if (s->count++ == 0 && s->first != NULL)
		*s->first = pid;
	if (s->sig != 0)
		kill((pid_t)pid, s->sig);
	return true;
}

int cep_runproc_scan(const char *run_id, unsigned which, int sig, int *first)
{
	struct scan s = {run_id, which, sig, 0, first};
	if (run_id == NULL || run_id[0] == '\0')
		return 0;
	return each_pid(scan_one, &s) < 0 ? -1 : s.count;
}

static int parent_of(int pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "pid (comm) S ppid ...": comm may hold anything but ends at the
	 * last ')' */
	const char *p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ' || p[2] == '\0' || p[3] != ' ')
		return 0;
	return (int)strtol(p + 4, NULL, 10);
}

struct each {
	cep_runproc_fn fn;
	void *arg;
};

static bool each_one(int pid, void *arg)
{
	struct each *e = arg;
	cep_run_id id, pid_id;
	bool cleanup, pcleanup;
	if (!cep_runproc_run_of(pid, &id, &cleanup) || cleanup)
		return true;
	int ppid = parent_of(pid);
	if (ppid > 1 && cep_runproc_run_of(ppid, &pid_id, &pcleanup) &&
	    cep_run_id_is(&pid_id, id.s))
		return true; /* a fault worker of the runner */
	e->fn(pid, id.s, e->arg);
	return true;
}

int cep_runproc_each_runner(cep_runproc_fn fn, void *arg)
{
	struct each e = {fn, arg};
	return each_pid(each_one, &e);
}

static bool set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

void cep_runproc_argv(const cep_runproc_args *a, char **argv)
{
	int n = 0;
	argv[n++] = (char *)a->bin;
	argv[n++] = (char *)"--relay";
	argv[n++] = (char *)a->relay_url;
	argv[n++] = (char *)"--identity";
	argv[n++] = (char *)a->identity_dir;
	argv[n++] = (char *)"--run-id";
	argv[n++] = (char *)a->run_id;
	if (set(a->server_name)) {
		argv[n++] = (char *)"--server-name";
		argv[n++] = (char *)a->server_name;
	}
	/* the runner's way round an unreachable relay: the plane, through
	 * the same proxy the appliance uses (docs/runner.md, "Tunnel") */
	if (set(a->cp_url)) {
		argv[n++] = (char *)"--cp-url";
		argv[n++] = (char *)a->cp_url;
		if (set(a->cp_ca_file)) {
			argv[n++] = (char *)"--cp-ca";
			argv[n++] = (char *)a->cp_ca_file;
		}
		if (set(a->cp_proxy)) {
			argv[n++] = (char *)"--cp-proxy";
			argv[n++] = (char *)a->cp_proxy;
		}
	}
	argv[n] = NULL;
}

int cep_runproc_kill(const char *run_id, int tries, cep_err *err)
{
	int left = 0, first = 0;
	for (int i = 0; i < tries; i++) {
		left = cep_runproc_scan(run_id, CEP_RUNPROC_RUNNER, SIGKILL,
		    &first);
		if (left < 0)
			return cep_err_errno(err, errno, "reading /proc");
		if (left == 0)
			return CEP_OK;
		cep_clock_sleep_ms(100);
	}
	return cep_err_set(err, CEP_UNAVAILABLE,
	    "%d process(es) of run %s still present after SIGKILL (pid %d)",
	    left, run_id, first);
}
