/*
 * main.c - cep-launcher: starts host runners with exactly their faults'
 * capabilities, for the delegate only (docs/privsep.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "launcher.h"
#include "log.h"
#include "files.h"

#define DELEGATE_USER "cep-delegate"

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: cep-launcher [--home DIR] [--allow-uid UID] [--runner PATH]\n"
	    "                    [--listen URL] [--runs DIR] [--stop-wait SECONDS]\n"
	    "                    [--debug]\n"
	    "\n"
	    "The appliance's privileged launcher (docs/privsep.md). Runs as root\n"
	    "with a bounded capability set and serves the Launcher service to the\n"
	    "delegate only: it starts each host runner as uid 0 with exactly the\n"
	    "capabilities of the run's faults (one table, lib/proc/caps.c; an\n"
	    "unknown fault type is refused), no other capability in its bounding\n"
	    "set and no_new_privs; it polls, signals and kills runners and runs\n"
	    "cleanup runners (cep-runner --cleanup) for what a dead runner left.\n"
	    "\n"
	    "  --home DIR     appliance home (default $CEP_HOME, else the installed\n"
	    "                 layout). Listens on privsep.launcher of cep.yaml; in a\n"
	    "                 home where that is \"\", on ipc://DIR/run/launcher.sock.\n"
	    "                 Runs' identities and logs: DIR/run/launcher/<run-id>/\n"
	    "                 (installed: /run/cep-launcher/runs/<run-id>/), 0700.\n"
	    "  --allow-uid N  the one peer uid served (default: installed, the uid\n"
	    "                 of user " DELEGATE_USER
	    "; in a home, the launcher's\n"
	    "                 own uid). Calls from any other uid: PERMISSION_DENIED.\n"
	    "  --runner PATH  the cep-runner to start (default: beside this program).\n"
	    "                 Never taken from a request.\n"
	    "  --listen URL   an ipc:// URL instead of the configured one.\n"
	    "  --runs DIR     the runs' directory instead of the layout's: runners\n"
	    "                 hold no DAC_OVERRIDE unless a fault needs it, so it\n"
	    "                 must be reachable by root as its owner (a home owned\n"
	    "                 by another user is not).\n"
	    "  --stop-wait S  on SIGTERM, how long runners get to revert after their\n"
	    "                 own SIGTERM before SIGKILL (default 10).\n"
	    "\n"
	    "Signals: SIGTERM/SIGINT stop it (runners are told to revert first).\n"
	    "A restarted launcher finds the runners it started in /proc and polls\n"
	    "them by pid and start time. Logs go to stderr or the journal.\n");
}

typedef struct args {
	cep_daemon_args d; /* --home, --debug */
	const char *runner, *listen, *runs;
	long allow_uid; /* -1: default */
	long stop_wait;
} args;

static long number(const char *s, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	return errno == 0 && *end == '\0' && end != s && v >= 0 && v <= max ?
	    v :
	    -1;
}

static int parse_args(int argc, char **argv, args *a)
{
	*a = (args){.allow_uid = -1, .stop_wait = 10};
	for (int i = 1; i < argc; i++) {
		enum cep_daemon_arg t = cep_daemon_arg("cep-launcher", argc,
		    argv, &i, true, usage, &a->d);
		if (t == CEP_DAEMON_ARG_EXIT)
			return 1;
		if (t == CEP_DAEMON_ARG_TAKEN)
			continue;
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL)
			goto bad;
		i++;
		if (strcmp(o, "--runner") == 0)
			a->runner = v;
		else if (strcmp(o, "--listen") == 0)
			a->listen = v;
		else if (strcmp(o, "--runs") == 0 && v[0] == '/')
			a->runs = v;
		else if (strcmp(o, "--allow-uid") == 0 &&
		    (a->allow_uid = number(v, 0x7fffffff)) >= 0)
			continue;
		else if (strcmp(o, "--stop-wait") == 0 &&
		    (a->stop_wait = number(v, 3600)) >= 0)
			continue;
		else
			goto bad;
	}
	return 0;
bad:
	usage(stderr);
	return 2;
}

static int allowed_uid(const args *a, const cep_paths *p, uid_t *uid,
    cep_err *err)
{
	if (a->allow_uid >= 0) {
		*uid = (uid_t)a->allow_uid;
		return CEP_OK;
	}
	if (!p->installed) {
		*uid = getuid();
		return CEP_OK;
	}
	struct passwd *pw = getpwnam(DELEGATE_USER);
	if (pw == NULL)
		return cep_err_set(err, CEP_FAILED_PRECONDITION,
		    "no user %s to "
		    "serve (give --allow-uid)",
		    DELEGATE_USER);
	*uid = pw->pw_uid;
	return CEP_OK;
}

/* The socket (and a listener the rpc guard re-creates) must be openable
 * by the allowed uid: the launcher's effective gid becomes that user's
 * primary group, so ipc sockets are created root:<its group> 0660 - the
 * delegate can connect, the relay (another user) cannot even open it.
 * Runners are set back to gid 0 (privs.c). */
static int socket_group(uid_t allow, cep_err *err)
{
	struct passwd *pw = getpwuid(allow);
	if (pw == NULL || pw->pw_gid == getegid())
		return CEP_OK;
	if (setegid(pw->pw_gid) != 0)
		return cep_err_errno(err, errno,
		    "setegid to the allowed user's "
		    "group");
	return CEP_OK;
}

static int runner_path(const args *a, char *buf, size_t len, cep_err *err)
{
	if (a->runner != NULL)
		return cep_files_path(buf, len, err, "%s", a->runner);
	return cep_paths_beside_self("cep-runner", buf, len, err);
}

/* Listen URL and runs directory of the layout. */
static int where(const args *a, const cep_paths *p, const cep_config *cfg,
    char *url, size_t ulen, char *runs, size_t rlen, cep_err *err)
{
	int rv;
	if (a->listen != NULL)
		rv = cep_files_path(url, ulen, err, "%s", a->listen);
	else if (cfg->launcher_url[0] != '\0')
		rv = cep_files_path(url, ulen, err, "%s", cfg->launcher_url);
	else
		rv = cep_paths_url(p, "launcher.sock", url, ulen, err);
	if (rv != CEP_OK)
		return rv;
	if (a->runs != NULL)
		return cep_files_path(runs, rlen, err, "%s", a->runs);
	if (p->installed)
		return cep_files_path(runs, rlen, err,
		    "/run/cep-launcher/runs");
	return cep_files_path(runs, rlen, err, "%s/launcher", p->run);
}

static int setup(const args *a, cep_launcher **l, cep_err *err)
{
	cep_paths paths;
	cep_config cfg;
	char url[4200], runs[4200], bin[4200];
	cep_launcher_opts o = {.url = url,
	    .runs_dir = runs,
	    .runner_bin = bin,
	    .stop_wait_ms = a->stop_wait * 1000,
	    .set_caps = geteuid() == 0};
	int rv = cep_paths_resolve(a->d.home, &paths, err);
	if (rv == CEP_OK)
		rv = cep_config_load(&paths, &cfg, err);
	if (rv == CEP_OK)
		rv = where(a, &paths, &cfg, url, sizeof(url), runs,
		    sizeof(runs), err);
	if (rv == CEP_OK)
		rv = runner_path(a, bin, sizeof(bin), err);
	if (rv == CEP_OK)
		rv = allowed_uid(a, &paths, &o.allow_uid, err);
	if (rv == CEP_OK && o.allow_uid != geteuid())
		rv = socket_group(o.allow_uid, err);
	if (rv == CEP_OK && !paths.installed)
		rv = cep_files_mkdirs(paths.run, 0750, err);
	if (rv == CEP_OK)
		rv = launcher_new(&o, l, err);
	if (rv == CEP_OK)
		cep_log_info(NULL,
		    "launcher up on %s: runner %s, serving uid %u%s", url, bin,
		    (unsigned)o.allow_uid,
		    o.set_caps ? "" : " (not root: runners get no capability)");
	return rv;
}

static void sd_status(void *arg, char *buf, size_t len)
{
	(void)arg;
	snprintf(buf, len, "serving the delegate");
}

int main(int argc, char **argv)
{
	args a;
	int pa = parse_args(argc, argv, &a);
	if (pa != 0)
		return pa == 1 ? 0 : 2;
	cep_launcher *l = NULL;
	cep_err err = {0};
	umask(077);
	/* only the wait below sees the stop signals; runners get an empty
	 * mask (forkexec.c) */
	if (cep_daemon_init("launcher", a.d.debug, &err) != CEP_OK ||
	    setup(&a, &l, &err) != CEP_OK) {
		cep_log_error(NULL, "%s", err.msg);
		return 1;
	}
	/* no watchdog (no tick): the unit sets no WatchdogSec */
	const cep_sd_ops sdo = {.status = sd_status};
	cep_sd *sd = cep_daemon_ready(&sdo);
	cep_daemon_wait_stop(sd, "stopping: runners revert");
	launcher_stop(l);
	cep_sdnotify_free(sd);
	launcher_free(l);
	cep_log_info(NULL, "stopped");
	return 0;
}
