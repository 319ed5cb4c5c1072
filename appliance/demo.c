/*
 * demo.c - `cepctl demo`: the whole appliance on one machine, no root, no
 * cluster, no control plane. It builds a temporary home, starts cep-relay
 * and cep-delegate in it, starts a small web service under a supervisor,
 * and runs a real experiment: kill the service repeatedly while an HTTP
 * probe measures its availability. Then it stops everything it started.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "cmd_common.h"
#include "demo_kube.h"
#include "clock.h"
#include "files.h"
#include "run_id.h"

/* The demo experiment. Only the port is filled in; the document itself is
 * fixed text, kept here so the demo needs no file from the source tree. */
#define DEMO_YAML                                                                  \
	"# The cep demo: kill a supervised web service every 2 seconds while an\n" \
	"# HTTP probe measures its availability.\n"                                \
	"apiVersion: cep.io/v1\n"                                                  \
	"kind: Experiment\n"                                                       \
	"metadata:\n"                                                              \
	"  name: demo-web-availability\n"                                          \
	"spec:\n"                                                                  \
	"  target:\n"                                                              \
	"    kind: host\n"                                                         \
	"  duration: 10s\n"                                                        \
	"  deadman: 5s\n"                                                          \
	"  faults:\n"                                                              \
	"    - name: kill-demo-web\n"                                              \
	"      type: process-kill\n"                                               \
	"      process: demo-web\n"                                                \
	"      signal: SIGKILL\n"                                                  \
	"      interval: 2s\n"                                                     \
	"      count: 5\n"                                                         \
	"  probes:\n"                                                              \
	"    - name: web-ready\n"                                                  \
	"      type: http\n"                                                       \
	"      mode: start-of-test\n"                                              \
	"      url: http://127.0.0.1:%d/\n"                                        \
	"      bodyMatch: ok\n"                                                    \
	"    - name: web-availability\n"                                           \
	"      type: http\n"                                                       \
	"      mode: continuous\n"                                                 \
	"      url: http://127.0.0.1:%d/\n"                                        \
	"      interval: 100ms\n"                                                  \
	"      timeout: 500ms\n"                                                   \
	"      latencyBudget: 250ms\n"                                             \
	"      minSuccess: 80%%\n"                                                 \
	"    - name: web-recovered\n"                                              \
	"      type: http\n"                                                       \
	"      mode: end-of-test\n"                                                \
	"      url: http://127.0.0.1:%d/\n"                                        \
	"      attempts: 10\n"                                                     \
	"      interval: 200ms\n"

struct child {
	const char *name;
	pid_t pid;
};

int cepctl_demo_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t l = sizeof(a);
	int port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &l) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

int cepctl_demo_init_home(const char *home, char *url, size_t len)
{
	snprintf(url, len, "tls+tcp://127.0.0.1:%d", cepctl_demo_free_port());
	/* a demo must not take (or fail on) the appliance's metrics ports;
	 * it owns its home: a kept one (--keep) gets this run's relay port */
	cepctl_init_opts io = {.appliance = "demo",
	    .listen = url,
	    .advertise = url,
	    .relay_metrics = "",
	    .delegate_metrics = "",
	    .ca = CEPCTL_CA_KEEP,
	    .replace_config_keys = true};
	cep_err err;
	if (cepctl_init_home(home, &io, &err) != CEP_OK) {
		fprintf(stderr, "demo: init: %s\n", err.msg);
		return -1;
	}
	char path[4200];
	snprintf(path, sizeof(path), "%s/log", home);
	cep_files_mkdirs(path, 0700, NULL);
	return 0;
}

static bool port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Starts bindir/prog with args (argv[0] is prog), output appended to
 * home/log/<logname>.log. */
static pid_t spawn(const char *bindir, const char *prog, const char *home,
    const char *logname, char *const extra[])
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", bindir, prog);
	char *argv[8] = {(char *)prog};
	int n = 1;
	for (; extra[n - 1] != NULL && n < 7; n++)
		argv[n] = extra[n - 1];
	argv[n] = NULL;
	return cepctl_demo_spawn(path, argv, home, logname);
}

static void stop_children(struct child *c, size_t n)
{
	for (size_t i = n; i-- > 0;)
		if (c[i].pid > 0)
			kill(c[i].pid, SIGTERM);
	int64_t until = cep_clock_mono_ms() + 8000;
	for (size_t i = n; i-- > 0;) {
		while (c[i].pid > 0) {
			pid_t w = waitpid(c[i].pid, NULL, WNOHANG);
			if (w == c[i].pid || (w < 0 && errno == ECHILD))
				break;
			if (cep_clock_mono_ms() > until) {
				fprintf(stderr,
				    "demo: %s did not stop; killing it\n",
				    c[i].name);
				kill(c[i].pid, SIGKILL);
				waitpid(c[i].pid, NULL, 0);
				break;
			}
			cep_clock_sleep_ms(50);
		}
		c[i].pid = 0;
	}
}

int cepctl_demo_submit_follow(cepctl_opts *o, cepctl_admin *a, const char *yaml,
    const char *name, int wait_ms)
{
	cep_run_id run_id;
	cep_err err;
	if (cepctl_admin_wait_relay(a, wait_ms, &err) != CEP_OK) {
		fprintf(stderr, "demo: %s\n", err.msg);
		return CEPCTL_ERROR;
	}
	if (cepctl_admin_submit(a, yaml, name, &run_id, &err) != CEP_OK) {
		fprintf(stderr, "demo: submit refused: %s\n", err.msg);
		return CEPCTL_ERROR;
	}
	printf("run %s submitted\n", run_id.s);
	fflush(stdout);
	return cepctl_follow_and_report(o, a, run_id.s,
	    o->quiet ? NULL : stdout);
}

static int run_demo(cepctl_opts *o, const char *home, const char *bindir,
    struct child *kids, size_t *nkids)
{
	char url[64], ports[16], yaml[sizeof(DEMO_YAML) + 64], path[4200];
	if (cepctl_demo_init_home(home, url, sizeof(url)) != 0)
		return CEPCTL_ERROR;
	int web_port = cepctl_demo_free_port();
	snprintf(ports, sizeof(ports), "%d", web_port);
	cep_err err;
	snprintf(yaml, sizeof(yaml), DEMO_YAML, web_port, web_port, web_port);
	snprintf(path, sizeof(path), "%s/demo.yaml", home);
	cep_files_write(path, yaml, strlen(yaml), 0644, NULL);

	char *home_args[] = {"--home", (char *)home, NULL};
	char *web_args[] = {"_demo-supervise", "--port", ports, NULL};
	kids[(*nkids)++] = (struct child){"cep-relay",
	    spawn(bindir, "cep-relay", home, "relay", home_args)};
	kids[(*nkids)++] = (struct child){"cep-delegate",
	    spawn(bindir, "cep-delegate", home, "delegate", home_args)};
	kids[(*nkids)++] = (struct child){"demo-supervisor",
	    spawn(bindir, "cepctl", home, "demo-web", web_args)};

	printf("cep demo: appliance home %s\n"
	       "  relay on %s, delegate and admin API on %s/run/*.sock\n"
	       "  victim: demo-web on http://127.0.0.1:%d/, restarted by a "
	       "supervisor when it dies\n"
	       "  experiment: %s (kill demo-web every 2s, 5 times; HTTP probe "
	       "every 100ms)\n\n",
	    home, url, home, web_port, path);
	fflush(stdout);
	cepctl_admin *a = NULL;
	o->home = home;
	if (cepctl_admin_open(o, &a, &err) != CEP_OK) {
		fprintf(stderr, "demo: %s\n", err.msg);
		return CEPCTL_ERROR;
	}
	int rv = CEPCTL_ERROR;
	for (int i = 0; i < 100 && !port_open(web_port); i++)
		cep_clock_sleep_ms(50);
	if (!port_open(web_port))
		fprintf(stderr, "demo: the web service did not come up\n");
	else
		rv = cepctl_demo_submit_follow(o, a, yaml, "demo.yaml", 10000);
	cepctl_admin_close(a);
	return rv;
}

int cepctl_cmd_demo(const cepctl_opts *o0, int argc, char **argv)
{
	cepctl_opts o = *o0;
	const char *keep = NULL;
	const cepctl_flag flags[] = {{"--keep", &keep}, {NULL, NULL}};
	const char *pos[1];
	int npos;
	/* --kubernetes takes no value: take it out before the common parser */
	bool kube = false;
	char *args[64];
	int nargs = 0;
	for (int i = 0; i < argc && nargs < 63; i++) {
		if (i > 0 && strcmp(argv[i], "--kubernetes") == 0)
			kube = true;
		else
			args[nargs++] = argv[i];
	}
	args[nargs] = NULL;
	if (cepctl_parse_args(&o, nargs, args, flags, pos, 0, &npos) != 0)
		return CEPCTL_ERROR;
	char bindir[4096];
	cep_err err;
	if (kube && cepctl_demo_kube_ready(bindir, sizeof(bindir)) != 0)
		return CEPCTL_ERROR; /* before a home is made for nothing */
	if (cepctl_bindir(bindir, sizeof(bindir), &err) != CEP_OK) {
		fprintf(stderr, "demo: %s\n", err.msg);
		return CEPCTL_ERROR;
	}
	/* --keep DIR: use (and keep) DIR as the home, for a look afterwards */
	char home[4096];
	if (keep != NULL) {
		snprintf(home, sizeof(home), "%s", keep);
		cep_files_mkdirs(home, 0700, NULL);
	} else {
		const char *tmp = getenv("TMPDIR");
		snprintf(home, sizeof(home), "%s/cep-demo-XXXXXX",
		    tmp ? tmp : "/tmp");
		if (mkdtemp(home) == NULL) {
			fprintf(stderr, "demo: mkdtemp %s: %s\n", home,
			    strerror(errno));
			return CEPCTL_ERROR;
		}
	}
	int rv;
	if (kube) {
		rv = cepctl_demo_kube(&o, home, bindir);
	} else {
		struct child kids[4];
		size_t nkids = 0;
		rv = run_demo(&o, home, bindir, kids, &nkids);
		stop_children(kids, nkids);
	}
	if (rv == CEPCTL_ERROR)
		fprintf(stderr, "demo: logs are in %s/log (kept)\n", home);
	else if (keep == NULL)
		cep_files_rmtree(home, NULL);
	if (!kube)
		printf("demo: stopped relay, delegate and web service%s\n",
		    keep ? "; home kept" : "");
	return rv;
}
