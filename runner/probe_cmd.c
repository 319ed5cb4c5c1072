/*
 * probe_cmd.c - `cmd` probe: run `command` (argv, no shell), capture stdout
 * up to OUT_MAX, and pass when the exit status is expectExit and stdout
 * contains outputMatch (if set). The child gets its own process group so
 * that a timeout (or abort) kills it and whatever it started.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "params.h"
#include "probe.h"
#include "clock.h"

#define OUT_MAX (64u * 1024u)
#define MAX_ARGS 256

extern char **environ;

typedef struct cmd_run {
	pid_t pid;
	int fd;    /* read end of stdout */
	char *out; /* OUT_MAX + 1 */
	size_t len;
	int status;
	bool reaped, eof, timed_out, cancelled;
} cmd_run;

static int spawn(const cep_exp_item *it, cmd_run *r, char *detail, size_t dlen)
{
	size_t argc = cep_exp_list_len(it, "command");
	const char *argv[MAX_ARGS + 1];
	if (argc == 0 || argc > MAX_ARGS) {
		snprintf(detail, dlen, "command has %zu arguments", argc);
		return -1;
	}
	for (size_t i = 0; i < argc; i++)
		argv[i] = cep_exp_list_at(it, "command", i);
	argv[argc] = NULL;
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0) {
		snprintf(detail, dlen, "pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawnattr_init(&at);
	sigset_t none, def;
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGPIPE);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at,
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
	        POSIX_SPAWN_SETPGROUP);
	int rc = posix_spawnp(&r->pid, argv[0], &fa, &at, (char *const *)argv,
	    environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		snprintf(detail, dlen, "cannot run %.64s: %s", argv[0],
		    strerror(rc));
		return -1;
	}
	r->fd = p[0];
	return 0;
}

static void read_some(cmd_run *r)
{
	char buf[4096];
	ssize_t n = read(r->fd, buf, sizeof(buf));
	if (n <= 0) {
		if (n == 0 || errno != EINTR)
			r->eof = true;
		return;
	}
	size_t take = (size_t)n;
	if (take > OUT_MAX - r->len)
		take = OUT_MAX - r->len;
	memcpy(r->out + r->len, buf, take);
	r->len += take;
	r->out[r->len] = '\0';
}

/* Reads output and waits for exit until the deadline; kills the group on
 * timeout or cancel. After exit, output still open (a background
 * grandchild) gets a short grace, not the whole timeout. */
static void wait_child(cmd_run *r, const cep_probe_env *env, int64_t deadline)
{
	int64_t grace = 0;
	while (!(r->reaped && r->eof)) {
		int64_t now = cep_clock_mono_ms();
		if (r->reaped && grace == 0)
			grace = now + 100;
		if (runner_probe_cancelled(env))
			r->cancelled = true;
		if (r->cancelled || now >= deadline ||
		    (grace && now >= grace)) {
			r->timed_out = !r->reaped;
			break;
		}
		struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
		if (!r->eof && poll(&pfd, 1, 20) > 0)
			read_some(r);
		else if (r->eof)
			cep_clock_sleep_ms(10);
		if (!r->reaped &&
		    waitpid(r->pid, &r->status, WNOHANG) == r->pid)
			r->reaped = true;
	}
	/* the group: whatever the command started. Only while something of
	 * it is left (child unreaped or pipe held), so the id is still ours. */
	if (!r->reaped || !r->eof)
		kill(-r->pid, SIGKILL);
	if (!r->reaped)
		while (waitpid(r->pid, &r->status, 0) < 0 && errno == EINTR)
			;
	close(r->fd);
}

static bool judge(const cep_exp_item *it, const cmd_run *r, char *detail,
    size_t dlen)
{
	int64_t want = runner_param_int(it, "expectExit", 0);
	const char *match = runner_param_str(it, "outputMatch", NULL);
	if (r->cancelled)
		return snprintf(detail, dlen, "cancelled"), false;
	if (r->timed_out)
		return snprintf(detail, dlen, "timed out, killed"), false;
	if (WIFSIGNALED(r->status))
		return snprintf(detail, dlen, "killed by signal %d",
		           WTERMSIG(r->status)),
		       false;
	int code = WEXITSTATUS(r->status);
	if (code != want)
		return snprintf(detail, dlen, "exit %d, want %lld", code,
		           (long long)want),
		       false;
	if (match != NULL && strstr(r->out, match) == NULL)
		return snprintf(detail, dlen,
		           "exit %d, output (%zu bytes) lacks \"%.64s\"", code,
		           r->len, match),
		       false;
	snprintf(detail, dlen, "exit %d", code);
	return true;
}

static bool cmd_try(const cep_exp_item *it, const cep_probe_env *env,
    char *detail, size_t dlen, uint32_t *latency_ms)
{
	cmd_run r = {.fd = -1};
	r.out = calloc(1, OUT_MAX + 1);
	if (r.out == NULL) {
		snprintf(detail, dlen, "no memory");
		return false;
	}
	int64_t start = cep_clock_mono_ms();
	bool ok = false;
	if (spawn(it, &r, detail, dlen) == 0) {
		wait_child(&r, env,
		    start + runner_param_ms(it, "timeout", 2000));
		ok = judge(it, &r, detail, dlen);
	}
	*latency_ms = (uint32_t)(cep_clock_mono_ms() - start);
	free(r.out);
	return ok;
}

const cep_probe_ops runner_probe_cmd = {
    .type = "cmd",
    .try_once = cmd_try,
};
