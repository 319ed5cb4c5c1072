/*
 * executor_local.c - the local executor: the runner is a child process of
 * the delegate on the appliance itself (host targets, demos, tests).
 *
 * A runner is named by (pid, /proc start time) so a reused pid is never
 * mistaken for it. Children are reaped with waitpid(WNOHANG) from the
 * monitor's poll (no SIGCHLD handler: the delegate is threaded and a
 * polled reap needs no async-signal care). Runners adopted after a restart
 * are not our children: they are polled by pid + start time (+ zombie).
 *
 * Undo does not trust the runner's bookkeeping: every process whose command
 * line is a cep-runner with "--run-id <id>" (the runner and the fault
 * workers it forked, which inherit its command line) is SIGKILLed, and the
 * undo succeeds only when /proc shows none left.
 */
#define _GNU_SOURCE
#include "executor.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define UNDO_TRIES 30          /* x 100 ms that SIGKILLed ones may linger */
#define CMDLINE_MAX (32 * 1024)

typedef struct local_exec {
	char bin[4096];
} local_exec;

/* Child side of fork: async-signal-safe calls only, then exec. */
static void child_exec(char *const argv[], int logfd, int nullfd)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	/* Own session: a terminal's ^C reaches the delegate only, which then
	 * aborts the run properly; the runner outlives a delegate crash. */
	setsid();
	if (dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
		_exit(126);
	close_range(3, ~0U, 0);
	execv(argv[0], argv);
	_exit(127);
}

static int local_launch(void *impl, const cep_exec_launch *l,
    cep_exec_handle *h, cep_err *err)
{
	local_exec *lx = impl;
	if (access(lx->bin, X_OK) != 0)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "runner binary %s is not executable: %s", lx->bin,
		    strerror(errno));
	int logfd = open(l->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	    0600);
	if (logfd < 0)
		return cep_err_errno(err, errno, l->log_path);
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nullfd < 0) {
		close(logfd);
		return cep_err_errno(err, errno, "/dev/null");
	}
	char *argv[20];
	int n = 0;
	argv[n++] = lx->bin;
	argv[n++] = (char *)"--relay";
	argv[n++] = (char *)l->relay_url;
	argv[n++] = (char *)"--identity";
	argv[n++] = (char *)l->identity_dir;
	argv[n++] = (char *)"--run-id";
	argv[n++] = (char *)l->run_id;
	if (l->server_name != NULL && l->server_name[0] != '\0') {
		argv[n++] = (char *)"--server-name";
		argv[n++] = (char *)l->server_name;
	}
	/* the runner's way round an unreachable relay: the plane, through
	 * the same proxy the appliance uses (docs/runner.md, "Tunnel") */
	if (l->cp_url != NULL && l->cp_url[0] != '\0') {
		argv[n++] = (char *)"--cp-url";
		argv[n++] = (char *)l->cp_url;
		if (l->cp_ca_file != NULL && l->cp_ca_file[0] != '\0') {
			argv[n++] = (char *)"--cp-ca";
			argv[n++] = (char *)l->cp_ca_file;
		}
		if (l->cp_proxy != NULL && l->cp_proxy[0] != '\0') {
			argv[n++] = (char *)"--cp-proxy";
			argv[n++] = (char *)l->cp_proxy;
		}
	}
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid == 0)
		child_exec(argv, logfd, nullfd);
	int saved = errno;
	close(logfd);
	close(nullfd);
	if (pid < 0)
		return cep_err_errno(err, saved, "fork");
	h->pid = pid;
	h->child = true;
	h->start = cep_proc_start_time(pid);
	return CEP_OK;
}

static void describe_wait(int st, char *what, size_t len)
{
	if (WIFEXITED(st))
		snprintf(what, len, "status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(what, len, "signal %d", WTERMSIG(st));
	else
		snprintf(what, len, "wait status 0x%x", (unsigned)st);
}

static enum cep_exec_status local_poll(void *impl, const cep_exec_handle *h,
    char *what, size_t len)
{
	(void)impl;
	int st = 0;
	pid_t r = waitpid(h->pid, &st, WNOHANG);
	if (r == h->pid) {
		describe_wait(st, what, len);
		return CEP_EXEC_EXITED;
	}
	if (r == 0 && h->child)
		return CEP_EXEC_ALIVE;
	/* Not (or no longer) our child: an adopted runner. */
	if (cep_proc_start_time(h->pid) != h->start || cep_proc_state(h->pid) == 'Z') {
		snprintf(what, len, "status unknown (not a child of this delegate)");
		return CEP_EXEC_EXITED;
	}
	return CEP_EXEC_ALIVE;
}

static void local_kill(void *impl, const cep_exec_handle *h)
{
	(void)impl;
	if (h->pid <= 1 || cep_proc_start_time(h->pid) != h->start)
		return;
	if (getpgid(h->pid) == h->pid)
		kill(-h->pid, SIGKILL);
	kill(h->pid, SIGKILL);
}

/* Does this NUL-separated command line belong to run_id's runner? */
static int cmdline_matches(const char *buf, size_t n, const char *run_id)
{
	int saw_runner = 0;
	const char *p = buf, *end = buf + n;
	while (p < end) {
		size_t l = strnlen(p, (size_t)(end - p));
		const char *next = p + l + 1;
		const char *base = strrchr(p, '/');
		base = base ? base + 1 : p;
		if (strcmp(base, "cep-runner") == 0)
			saw_runner = 1;
		/* buf is NUL-terminated after n, so strcmp stays inside. */
		if (saw_runner && strcmp(p, "--run-id") == 0 && next < end &&
		    strcmp(next, run_id) == 0)
			return 1;
		p = next;
	}
	return 0;
}

static int pid_matches(int pid, const char *run_id)
{
	char path[64];
	static __thread char buf[CMDLINE_MAX];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return cmdline_matches(buf, (size_t)n, run_id);
}

/* Visits every process of the run; sig 0 only counts. Returns the count
 * and the first pid seen. */
static int scan_run(const char *run_id, int sig, int *first)
{
	DIR *dir = opendir("/proc");
	if (dir == NULL)
		return -1;
	int count = 0, self = (int)getpid();
	struct dirent *de;
	while ((de = readdir(dir)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end != '\0' || pid <= 1 || pid == self)
			continue;
		if (!pid_matches((int)pid, run_id))
			continue;
		if (count++ == 0 && first != NULL)
			*first = (int)pid;
		if (sig != 0)
			kill((pid_t)pid, sig);
	}
	closedir(dir);
	return count;
}

int cep_executor_local_count(const char *run_id)
{
	return scan_run(run_id, 0, NULL);
}

static int local_undo(void *impl, const char *run_id, cep_err *err)
{
	(void)impl;
	int left = 0, first = 0;
	for (int i = 0; i < UNDO_TRIES; i++) {
		left = scan_run(run_id, SIGKILL, &first);
		if (left < 0)
			return cep_err_errno(err, errno, "reading /proc");
		if (left == 0)
			return CEP_OK;
		cep_sleep_ms(100);
	}
	return cep_err_set(err, CEP_INTERNAL,
	    "%d process(es) of run %s still present after SIGKILL (pid %d)",
	    left, run_id, first);
}

static void local_free(void *impl)
{
	free(impl);
}

static const cep_executor_ops local_ops = {
	.name = "local",
	.launch = local_launch,
	.poll = local_poll,
	.kill = local_kill,
	.undo = local_undo,
	.free = local_free,
};

int cep_executor_local_new(const char *runner_bin, cep_executor **out,
    cep_err *err)
{
	local_exec *lx = calloc(1, sizeof(*lx));
	if (lx == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory");
	if (strlen(runner_bin) >= sizeof(lx->bin)) {
		free(lx);
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "runner binary path too long");
	}
	snprintf(lx->bin, sizeof(lx->bin), "%s", runner_bin);
	*out = cep_executor_wrap(&local_ops, lx);
	if (*out == NULL) {
		free(lx);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED, "out of memory");
	}
	return CEP_OK;
}
