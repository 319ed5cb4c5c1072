/*
 * daemon.c - log, stop signals, readiness and stop of a cep daemon
 * (daemon.h).
 */
#define _GNU_SOURCE
#include "daemon.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

enum cep_daemon_arg cep_daemon_arg(const char *prog, int argc, char **argv,
    int *i, bool debug_flag, void (*usage)(FILE *), cep_daemon_args *a)
{
	const char *o = argv[*i];
	if (strcmp(o, "--home") == 0 && *i + 1 < argc) {
		a->home = argv[++*i];
	} else if (debug_flag && strcmp(o, "--debug") == 0) {
		a->debug = true;
	} else if (strcmp(o, "--version") == 0) {
		printf("%s %s\n", prog, CEP_VERSION);
		return CEP_DAEMON_ARG_EXIT;
	} else if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
		usage(stdout);
		return CEP_DAEMON_ARG_EXIT;
	} else {
		return CEP_DAEMON_ARG_OTHER;
	}
	return CEP_DAEMON_ARG_TAKEN;
}

int cep_daemon_parse_args(const char *prog, int argc, char **argv,
    bool debug_flag, void (*usage)(FILE *), cep_daemon_args *a)
{
	for (int i = 1; i < argc; i++) {
		enum cep_daemon_arg t = cep_daemon_arg(prog, argc, argv, &i,
		    debug_flag, usage, a);
		if (t == CEP_DAEMON_ARG_EXIT)
			return 1;
		if (t == CEP_DAEMON_ARG_OTHER) {
			fprintf(stderr, "%s: unknown argument '%s'\n", prog,
			    argv[i]);
			usage(stderr);
			return 2;
		}
	}
	return 0;
}

static void stop_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
}

int cep_daemon_block_signals(cep_err *err)
{
	sigset_t set;
	stop_set(&set);
	signal(SIGPIPE, SIG_IGN);
	int rv = pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (rv != 0)
		return cep_err_errno(err, rv, "blocking SIGTERM/SIGINT");
	return CEP_OK;
}

int cep_daemon_init(const char *comp, bool debug, cep_err *err)
{
	cep_log_init(comp);
	if (debug)
		cep_log_set_level(CEP_LOG_DEBUG);
	return cep_daemon_block_signals(err);
}

int cep_daemon_wait_signal(void)
{
	sigset_t set;
	stop_set(&set);
	int sig = 0;
	while (sigwait(&set, &sig) != 0)
		;
	return sig;
}

cep_sd *cep_daemon_ready(const cep_sd_ops *ops)
{
	cep_sd *sd = NULL;
	cep_err err = {0};
	if (cep_sdnotify_start(ops, &sd, &err) != CEP_OK)
		cep_log_error(NULL, "systemd notification: %s", err.msg);
	return sd;
}

static void *stop_guard_main(void *arg)
{
	int ms = (int)(intptr_t)arg;
	struct timespec ts = {.tv_sec = ms / 1000,
	    .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	cep_log_warn(NULL,
	    "shutdown did not end within %d ms (a close that never returned); "
	    "exiting now: what is on disk is complete",
	    ms);
	_exit(0);
	return NULL;
}

void cep_daemon_stop_guard(int ms)
{
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, stop_guard_main, (void *)(intptr_t)ms) != 0)
		cep_log_warn(NULL, "no shutdown guard: thread not started");
	pthread_attr_destroy(&a);
}

int cep_daemon_wait_stop(cep_sd *sd, const char *what)
{
	int sig = cep_daemon_wait_signal();
	cep_log_info(NULL, "signal %d: %s", sig, what ? what : "stopping");
	cep_sdnotify_stopping(sd, what);
	return sig;
}
