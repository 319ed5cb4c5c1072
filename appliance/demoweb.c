/*
 * demoweb.c - the demo's victim: a tiny web service (nng's HTTP server)
 * and a supervisor that restarts it when it dies, as systemd or a kubelet
 * would. Both are hidden cepctl commands so the demo needs nothing else.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"

static volatile sig_atomic_t stop_flag;

static void on_term(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int parse_port(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--port") != 0)
			continue;
		char *end = NULL;
		long p = strtol(argv[i + 1], &end, 10);
		if (end != NULL && *end == '\0' && p > 0 && p < 65536)
			return (int)p;
	}
	fputs("usage: cepctl _demo-web|_demo-supervise --port N\n", stderr);
	return -1;
}

int cepctl_cmd_demo_web(int argc, char **argv)
{
	int port = parse_port(argc, argv);
	if (port < 0)
		return CEPCTL_ERROR;
	/* process-kill selects by this name (/proc/PID/comm) */
	prctl(PR_SET_NAME, "demo-web");
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	struct sigaction sa = {.sa_handler = on_term};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	nng_url *u = NULL;
	nng_http_server *srv = NULL;
	nng_http_handler *h = NULL;
	static const char body[] = "ok\n";
	int rv = nng_url_parse(&u, url);
	if (rv == 0)
		rv = nng_http_server_hold(&srv, u);
	if (rv == 0)
		rv = nng_http_handler_alloc_static(&h, "/", body,
		    sizeof(body) - 1, "text/plain");
	if (rv == 0)
		rv = nng_http_server_add_handler(srv, h);
	if (rv == 0)
		rv = nng_http_server_start(srv);
	if (rv != 0) {
		fprintf(stderr, "demo-web: %s: %s\n", url, nng_strerror(rv));
		return CEPCTL_ERROR;
	}
	while (!stop_flag)
		pause();
	nng_http_server_stop(srv);
	nng_http_server_release(srv);
	nng_url_free(u);
	return CEPCTL_OK;
}

static pid_t start_web(const char *self, const char *port)
{
	pid_t pid = fork();
	if (pid == 0) {
		execl(self, "cepctl", "_demo-web", "--port", port,
		    (char *)NULL);
		_exit(127);
	}
	return pid;
}

int cepctl_cmd_demo_supervise(int argc, char **argv)
{
	int port = parse_port(argc, argv);
	if (port < 0)
		return CEPCTL_ERROR;
	prctl(PR_SET_NAME, "demo-supervisor");
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	struct sigaction sa = {.sa_handler = on_term};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return CEPCTL_ERROR;
	self[n] = '\0';
	char portbuf[16];
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	int restarts = 0;
	pid_t child = start_web(self, portbuf);
	while (!stop_flag) {
		int status;
		pid_t w = waitpid(child, &status, 0);
		if (w < 0 && errno == EINTR)
			continue;
		if (stop_flag)
			break;
		restarts++;
		fprintf(stderr,
		    "demo-supervisor: demo-web (pid %d) %s %d; "
		    "restart #%d\n",
		    (int)child,
		    WIFSIGNALED(status) ? "killed by signal" : "exited with",
		    WIFSIGNALED(status) ? WTERMSIG(status) :
		                          WEXITSTATUS(status),
		    restarts);
		cep_clock_sleep_ms(100); /* a supervisor's restart delay */
		child = start_web(self, portbuf);
	}
	kill(child, SIGTERM);
	waitpid(child, NULL, 0);
	return CEPCTL_OK;
}
