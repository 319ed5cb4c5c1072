/* forkexec.c - starting a runner process (see forkexec.h). */
#define _GNU_SOURCE
#include "forkexec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procfs.h"

static void child(const cep_forkexec_opts *o, int logfd, int nullfd)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	setsid();
	if (dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
		_exit(126);
	if (o->pre_exec != NULL && o->pre_exec(o->arg) != 0)
		_exit(126);
	close_range(3, ~0U, 0);
	execv(o->argv[0], o->argv);
	_exit(127);
}

int cep_forkexec_run(const cep_forkexec_opts *o, pid_t *pid, int64_t *start,
    cep_err *err)
{
	if (access(o->argv[0], X_OK) != 0)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "runner binary %s is not executable: %s", o->argv[0],
		    strerror(errno));
	int logfd = open(o->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	    0600);
	if (logfd < 0)
		return cep_err_errno(err, errno, o->log_path);
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nullfd < 0) {
		close(logfd);
		return cep_err_errno(err, errno, "/dev/null");
	}
	pid_t p = fork();
	if (p == 0)
		child(o, logfd, nullfd);
	int saved = errno;
	close(logfd);
	close(nullfd);
	if (p < 0)
		return cep_err_errno(err, saved, "fork");
	*pid = p;
	*start = cep_procfs_start_time(p);
	return CEP_OK;
}

void cep_forkexec_describe(int st, char *what, size_t len)
{
	if (WIFEXITED(st))
		snprintf(what, len, "status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(what, len, "signal %d", WTERMSIG(st));
	else
		snprintf(what, len, "wait status 0x%x", (unsigned)st);
}
