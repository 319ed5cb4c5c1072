/*
 * main.c - cep-relay: arguments, signals, readiness. The relay itself is
 * relay.c (relay_new/free), which tests run in-process.
 *
 *   cep-relay [--home DIR]      (else $CEP_HOME, else the installed layout)
 *
 * SIGTERM/SIGINT are blocked before any thread exists (every thread the
 * relay starts inherits the mask) and waited for (lib/base/daemon.h), so
 * no work happens in a signal handler.
 */
#define _GNU_SOURCE
#include <stdio.h>

#include "config.h"
#include "daemon.h"
#include "metrics.h"
#include "log.h"
#include "relay.h"
#include "sdnotify.h"
#include "err.h"

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: cep-relay [--home DIR]\n"
	    "  --home DIR   appliance home (default: $CEP_HOME, else /etc/cep,\n"
	    "               /var/lib/cep, /run/cep)\n"
	    "  --version    print the version\n");
}

static uint64_t sd_tick(void *arg)
{
	return relay_ticks(arg);
}

static void sd_status(void *arg, char *buf, size_t len)
{
	relay_describe(arg, buf, len);
}

/* Well under systemd's TimeoutStopSec (90 s by default) */
#define CEP_RELAY_STOP_GRACE_MS 15000

int main(int argc, char **argv)
{
	cep_daemon_args args = {0};
	int a = cep_daemon_parse_args("cep-relay", argc, argv, false, usage,
	    &args);
	if (a != 0)
		return a == 1 ? 0 : 2;
	cep_paths paths;
	cep_config cfg;
	cep_relay *relay = NULL;
	cep_err err = {0};
	if (cep_daemon_init("relay", false, &err) != CEP_OK) {
		cep_log_error(NULL, "cannot set up signal handling: %s",
		    err.msg);
		return 1;
	}
	if (cep_paths_resolve(args.home, &paths, &err) != CEP_OK ||
	    cep_config_load(&paths, &cfg, &err) != CEP_OK ||
	    relay_new(&paths, &cfg, &relay, &err) != CEP_OK) {
		cep_log_error(NULL, "cannot start: %s", err.msg);
		return 1;
	}
	/* relay.metrics: not fatal, the relay carries runners' reverts and
	 * dead-man traffic, which matter more than an observer's view */
	cep_metrics_server *metrics = cep_metrics_start_daemon(relay_metrics(
	                                                           relay),
	    cfg.relay_metrics, paths.run, "relay");
	/* READY=1 only now: both listeners are bound, so units ordered
	 * after the relay find relay.sock */
	const cep_sd_ops sdo = {.tick = sd_tick,
	    .status = sd_status,
	    .arg = relay};
	cep_sd *sd = cep_daemon_ready(&sdo);
	cep_daemon_wait_stop(sd, "stopping: answering parked calls");
	/* the spool is on disk at every moment: a stop bounded in time is
	 * safe, and nng's close can hang behind broken pipes */
	cep_daemon_stop_guard(CEP_RELAY_STOP_GRACE_MS);
	cep_sdnotify_free(sd);
	cep_metrics_stop(metrics);
	relay_free(relay);
	cep_log_info(NULL, "stopped");
	return 0;
}
