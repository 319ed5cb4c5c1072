/*
 * cepctl - the operator's CLI for a cep appliance.
 *
 * main.c only parses the global options and dispatches; each command lives
 * in its own file (cmd_*.c, demo.c).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "log.h"

static const char usage[] =
    "usage: cepctl [--home DIR] [--output text|json|junit] [--quiet] COMMAND [ARGS]\n"
    "\n"
    "  init [--appliance NAME] [--relay-listen URL] [--relay-advertise URL]\n"
    "       [--control-plane URL [--control-plane-ca FILE]\n"
    "        [--control-plane-token FILE] [--control-plane-proxy URL]]\n"
    "       [--force | --first-boot] [--replace-config-keys]\n"
    "                       create config, CA and certificates in the home;\n"
    "                       with a control plane, take tasks from it\n"
    "                       (docs/control-plane-api.md). An existing CA is\n"
    "                       refused unless --force (new CA and relay cert)\n"
    "                       or settings are given (the CA is kept);\n"
    "                       --first-boot does nothing if a CA exists.\n"
    "                       An existing cep.yaml gets the settings it lacks;\n"
    "                       one it has otherwise is refused (file:line:col)\n"
    "                       unless --replace-config-keys\n"
    "  seed DIR             configure from a seed folder (the VM image's\n"
    "                       CEPSEED drive, docs/images.md): cep.yaml, the\n"
    "                       control plane, connectors, ssh keys\n"
    "  demo [--kubernetes]  run the demo experiment (no root, no cluster);\n"
    "                       --kubernetes: pod-delete against the Kubernetes\n"
    "                       API test server (root, no cluster)\n"
    "  validate FILE...     check experiment files; errors as file:line:col\n"
    "                       (a Litmus ChaosEngine is accepted as it is)\n"
    "  convert FILE         print a Litmus ChaosEngine as the native\n"
    "                       experiment it runs as (docs/litmus.md)\n"
    "  run FILE [--report HTML]\n"
    "                       submit an experiment, follow it, print a report\n"
    "                       (exit 0 pass, 1 fail, 2 error); --report: also\n"
    "                       write the HTML report (docs/report.md)\n"
    "  runs                 list runs\n"
    "  show RUN             a run's state, faults and probe results\n"
    "  logs RUN [--follow]  a run's events\n"
    "  report RUN [--html FILE|-]\n"
    "                       a past run's report, read from its journal\n"
    "                       (RUN: a run id or a run's folder); --html: one\n"
    "                       self-contained HTML page (docs/report.md)\n"
    "  report --events FILE [--spec FILE] [--html FILE|-]\n"
    "                       the same from a run's events alone (one\n"
    "                       cep.v1.EventBatch), as a control plane has them\n"
    "  abort RUN            abort a run; its faults are reverted at once\n"
    "  status               delegate and relay status\n"
    "\n"
    "Kubernetes (connectors.d/, docs/connectors.md):\n"
    "  connectors           each connector: server, reachable, version\n"
    "                       (exit 1 if one is unreachable)\n"
    "  rbac CONNECTOR --namespace NS [--faults TYPE,...] [--who delegate|runner|both]\n"
    "                       print the RBAC manifests cep needs there\n"
    "  check CONNECTOR [--namespace NS] [--faults TYPE,...]\n"
    "                       verify the delegate's permissions by\n"
    "                       SelfSubjectAccessReview (exit 1 if one is missing)\n"
    "\n"
    "The home is --home DIR, else $CEP_HOME, else /etc/cep + /var/lib/cep + /run/cep.\n";

struct command {
	const char *name;
	int (*fn)(const cepctl_opts *, int, char **);
};

static const struct command commands[] = {
    {"init", cepctl_cmd_init},
    {"demo", cepctl_cmd_demo},
    {"validate", cepctl_cmd_validate},
    {"convert", cepctl_cmd_convert},
    {"run", cepctl_cmd_run},
    {"runs", cepctl_cmd_runs},
    {"show", cepctl_cmd_show},
    {"logs", cepctl_cmd_logs},
    {"report", cepctl_cmd_report},
    {"abort", cepctl_cmd_abort},
    {"status", cepctl_cmd_status},
    {"seed", cepctl_cmd_seed},
    {"connectors", cepctl_cmd_connectors},
    {"rbac", cepctl_cmd_rbac},
    {"check", cepctl_cmd_check},
};

static int parse_output(const char *s, enum cepctl_output *out)
{
	if (strcmp(s, "text") == 0)
		*out = CEPCTL_OUT_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = CEPCTL_OUT_JSON;
	else if (strcmp(s, "junit") == 0)
		*out = CEPCTL_OUT_JUNIT;
	else
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	/* hidden: the demo's web service and its supervisor are this binary */
	if (argc > 1 && strcmp(argv[1], "_demo-web") == 0)
		return cepctl_cmd_demo_web(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "_demo-supervise") == 0)
		return cepctl_cmd_demo_supervise(argc - 1, argv + 1);
	/* hidden: the build writes the packages' /etc/cep/cep.yaml with it */
	if (argc == 2 && strcmp(argv[1], "_default-config") == 0)
		return fputs(cep_config_default_yaml(), stdout) == EOF ||
		        fflush(stdout) != 0 ?
		    CEPCTL_ERROR :
		    CEPCTL_OK;

	/* a reader that goes away (cepctl ... | head) is a write error to
	 * handle, not a reason to die without cleaning up */
	signal(SIGPIPE, SIG_IGN);
	cep_log_init("cepctl");
	cep_log_set_level(CEP_LOG_WARN);
	cepctl_opts o = {.home = NULL, .output = CEPCTL_OUT_TEXT};
	o.color = isatty(STDOUT_FILENO);
	static const struct option longopts[] = {
	    {"home", required_argument, NULL, 'H'},
	    {"output", required_argument, NULL, 'o'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;
	/* "+" stops at the command: its own options are its business */
	while ((c = getopt_long(argc, argv, "+H:o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'H': o.home = optarg; break;
		case 'o':
			if (parse_output(optarg, &o.output) != 0) {
				fprintf(stderr,
				    "cepctl: --output must be text, json "
				    "or junit, not \"%s\"\n",
				    optarg);
				return CEPCTL_ERROR;
			}
			break;
		case 'q': o.quiet = true; break;
		case 'h': fputs(usage, stdout); return CEPCTL_OK;
		default: fputs(usage, stderr); return CEPCTL_ERROR;
		}
	}
	if (optind >= argc) {
		fputs(usage, stderr);
		return CEPCTL_ERROR;
	}
	const char *cmd = argv[optind];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].fn(&o, argc - optind, argv + optind);
	}
	fprintf(stderr, "cepctl: unknown command \"%s\"\n\n%s", cmd, usage);
	return CEPCTL_ERROR;
}
