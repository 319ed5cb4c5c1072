/*
 * main.c - cep-runner: one experiment's faults and probes, then exit.
 *
 *   cep-runner --relay URL --identity DIR --run-id ID [--server-name NAME]
 *       [--cp-url URL [--cp-ca FILE] [--cp-proxy URL]]
 *
 * (or CEP_RELAY, CEP_IDENTITY_DIR, CEP_RUN_ID, CEP_CP_URL, CEP_CP_CA_FILE,
 * CEP_CP_PROXY in the environment, as a pod gets them). --cp-*: the
 * control-plane fallback when the relay cannot be reached (session.h). Exit: 0 verdict delivered, 3 verdict not delivered (relay
 * gone), 2 usage or identity error. SIGTERM/SIGINT abort the run (revert
 * everything) - received by a thread with sigwait, never in a handler.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "cleanup.h"
#include "daemon.h"
#include "undo_node.h"
#include "fault_net.h"
#include "kube_target.h"
#include "log.h"
#include "rpc.h"
#include "session.h"
#include "clock.h"
#include "run_id.h"

#define EXIT_DELIVERED 0
#define EXIT_USAGE 2
#define EXIT_UNDELIVERED 3

/* Everything is reverted and the verdict sent (or given up on) when this
 * is armed: nothing left may keep a runner alive. Closing the bus was
 * seen to hang once in ~15 runs with the relay gone (inside nng's close
 * of a dialer that keeps redialing, as far as the logs tell), so a
 * runner that has not left TEARDOWN_MS later exits with its status. */
#define TEARDOWN_MS 8000 /* above a sender call in flight (CALL_MS 5 s) */

typedef struct teardown {
	cep_run_id run_id;
	int code;
} teardown;

static void *teardown_watch(void *arg)
{
	teardown *t = arg;
	cep_clock_sleep_ms(TEARDOWN_MS);
	cep_log_error(t->run_id.s,
	    "closing the connections took more than %d "
	    "ms; exiting with status %d anyway",
	    TEARDOWN_MS, t->code);
	_exit(t->code);
	return NULL;
}

static void guard_teardown(const char *run_id, int code)
{
	static teardown t; /* the thread outlives this frame */
	cep_run_id_parse(&t.run_id, run_id); /* checked at start */
	t.code = code;
	pthread_t th;
	if (pthread_create(&th, NULL, teardown_watch, &t) == 0)
		pthread_detach(th);
}

/* Kept reachable to the end: the signal thread, which is never joined,
 * uses it until the process exits. */
static cep_runner_ctl *live_ctl;

typedef struct args {
	const char *relay, *identity, *run_id, *server_name;
	const char *cp_url, *cp_ca, *cp_proxy;
	const char *cleanup, *report; /* cleanup mode (cleanup.h) */
	cep_run_id id;                /* run_id, parsed */
} args;

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: cep-runner --relay URL --identity DIR --run-id ID "
	    "[--server-name NAME]\n"
	    "       [--cp-url URL [--cp-ca FILE] [--cp-proxy URL]]\n"
	    "       cep-runner --cleanup FILE --run-id ID [--report PATH]\n"
	    "  environment: CEP_RELAY, CEP_IDENTITY_DIR, CEP_RUN_ID, "
	    "CEP_CP_URL, CEP_CP_CA_FILE, CEP_CP_PROXY\n"
	    "  exit: 0 verdict delivered, 3 not delivered, 2 usage/identity\n");
}

static int parse_args(int argc, char **argv, args *a)
{
	static const struct option opts[] = {
	    {"relay", required_argument, NULL, 'r'},
	    {"identity", required_argument, NULL, 'i'},
	    {"run-id", required_argument, NULL, 'n'},
	    {"server-name", required_argument, NULL, 's'},
	    {"cp-url", required_argument, NULL, 'u'},
	    {"cp-ca", required_argument, NULL, 'c'},
	    {"cp-proxy", required_argument, NULL, 'p'},
	    {"cleanup", required_argument, NULL, 'C'},
	    {"report", required_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	a->relay = getenv("CEP_RELAY");
	a->identity = getenv("CEP_IDENTITY_DIR");
	a->run_id = getenv("CEP_RUN_ID");
	a->cp_url = getenv("CEP_CP_URL");
	a->cp_ca = getenv("CEP_CP_CA_FILE");
	a->cp_proxy = getenv("CEP_CP_PROXY");
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': a->relay = optarg; break;
		case 'i': a->identity = optarg; break;
		case 'n': a->run_id = optarg; break;
		case 's': a->server_name = optarg; break;
		case 'u': a->cp_url = optarg; break;
		case 'c': a->cp_ca = optarg; break;
		case 'p': a->cp_proxy = optarg; break;
		case 'C': a->cleanup = optarg; break;
		case 'R': a->report = optarg; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("cep-runner %s\n", CEP_VERSION); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc || a->run_id == NULL ||
	    (a->cleanup == NULL && (a->relay == NULL || a->identity == NULL))) {
		usage(stderr);
		return -1;
	}
	if (!cep_run_id_parse(&a->id, a->run_id)) {
		fprintf(stderr,
		    "cep-runner: invalid run id (expected r- and 16 "
		    "hex digits)\n");
		return -1;
	}
	a->run_id = a->id.s; /* from here on, the checked copy */
	return 0;
}

/* SIGTERM/SIGINT -> abort; the only place signals are taken. */
static void *signal_thread(void *arg)
{
	cep_runner_ctl *ctl = arg;
	for (;;) {
		int sig = cep_daemon_wait_signal();
		runner_ctl_abort(ctl, "terminated by %s",
		    sig == SIGTERM ? "SIGTERM" : "SIGINT");
	}
	return NULL;
}

static void start_signals(cep_runner_ctl *ctl)
{
	cep_err err = {0};
	if (cep_daemon_block_signals(&err) != CEP_OK)
		cep_log_error(NULL, "%s", err.msg);
	pthread_t t;
	if (pthread_create(&t, NULL, signal_thread, ctl) == 0)
		pthread_detach(t);
}

/* The experiment did not parse: the run still ends with a verdict. */
static void spec_error(cep_runner_sink *sink, const cep_err *err)
{
	runner_emit_phase(sink, "verdict");
	char reason[600];
	snprintf(reason, sizeof(reason), "assignment does not parse: %s",
	    err->msg);
	runner_emit_verdict(sink, "Error", 0, reason);
}

static int run(const args *a, cep_runner_ctl *ctl)
{
	cep_runner_session_opts so = {.relay_url = a->relay,
	    .identity_dir = a->identity,
	    .run_id = a->run_id,
	    .server_name = a->server_name,
	    .cp_url = a->cp_url,
	    .cp_ca_file = a->cp_ca,
	    .cp_proxy = a->cp_proxy};
	cep_runner_session *s = NULL;
	cep_err err = {0};
	int rc = runner_session_open(&s, &so, &err);
	if (rc != CEP_OK) {
		cep_log_error(a->run_id, "cannot start: %s", err.msg);
		return cep_rpc_retryable(rc) ? EXIT_UNDELIVERED : EXIT_USAGE;
	}
	const Cep__V1__Assignment *asg = runner_session_assignment(s);
	cep_runner_sink *sink = runner_sink_new(a->run_id, runner_session_ops(),
	    s, ctl);
	if (sink == NULL || runner_session_start(s, ctl, &err) != CEP_OK) {
		cep_log_error(a->run_id, "cannot start: %s", err.msg);
		runner_sink_free(sink);
		runner_session_free(s);
		return EXIT_UNDELIVERED;
	}
	cep_exp *e = NULL;
	if (cep_exp_parse(asg->spec_yaml, strlen(asg->spec_yaml),
	        asg->spec_name[0] ? asg->spec_name : "assignment", &e, NULL,
	        &err) != CEP_OK) {
		spec_error(sink, &err);
	} else {
		cep_runner_result res;
		cep_log_info(a->run_id, "running %s", cep_exp_name(e));
		/* Kubernetes faults act only in the assignment's namespace and
		 * on at most max_targets objects (kube_target.h) */
		if (strcmp(cep_exp_target_kind(e), "kubernetes") == 0)
			runner_kube_target_configure(asg->namespace_ != NULL &&
			            asg->namespace_[0] != '\0' ?
			        asg->namespace_ :
			        cep_exp_namespace(e),
			    asg->max_targets);
		/* network faults: the host's netns only when the policy
		 * allowed it; the relay's port is never cut (fault_net.h) */
		runner_net_configure(asg->allow_host_netns, a->relay);
		runner_engine_run(e, sink, &res);
		runner_kube_target_reset();
		cep_exp_free(e);
	}
	/* the relay gets one more dead-man interval (2..10 s) to take the
	 * verdict: long enough for a relay restart, short enough to exit */
	int64_t flush_ms = runner_session_deadman_ms(s);
	flush_ms = flush_ms < 2000 ? 2000 : flush_ms > 10000 ? 10000 : flush_ms;
	bool delivered = runner_sink_flush(sink, flush_ms);
	if (!delivered)
		cep_log_error(a->run_id, "verdict not delivered to the relay");
	guard_teardown(a->run_id,
	    delivered ? EXIT_DELIVERED : EXIT_UNDELIVERED);
	runner_session_close(s);
	runner_sink_free(sink);
	runner_session_free(s);
	return delivered ? EXIT_DELIVERED : EXIT_UNDELIVERED;
}

int main(int argc, char **argv)
{
	args a = {0};
	if (parse_args(argc, argv, &a) != 0)
		return EXIT_USAGE;
	cep_log_init("runner");
	/* every line of this process is about that run (CEP_RUN_ID) */
	cep_log_set_run(a.run_id);
	cep_undo_node_register(); /* lib/undo/undo.c's node mechanisms */
	if (a.cleanup != NULL) {
		/* no relay, no signals to take: undo the records and report */
		cep_log_info(a.run_id, "cep-runner %s: cleanup of %s",
		    CEP_VERSION, a.cleanup);
		return runner_cleanup(a.run_id, a.cleanup,
		    a.report ? a.report : "/dev/termination-log");
	}
	cep_runner_ctl *ctl = live_ctl = runner_ctl_new();
	if (ctl == NULL)
		return EXIT_USAGE;
	start_signals(ctl);
	cep_log_info(a.run_id, "cep-runner %s starting, relay %s%s%s",
	    CEP_VERSION, a.relay,
	    a.cp_url && a.cp_url[0] ? ", control-plane fallback " : "",
	    a.cp_url && a.cp_url[0] ? a.cp_url : "");
	int code = run(&a, ctl);
	cep_log_info(a.run_id, "exiting with status %d", code);
	return code;
}
