/*
 * main.c - cep-delegate: the orchestrator daemon.
 *
 *   cep-delegate [--home DIR]      (or $CEP_HOME; else the installed layout)
 *
 * Loads cep.yaml and the appliance CA, recovers runs from their journals,
 * serves Admin and Delegate, and runs until SIGTERM/SIGINT. A graceful stop
 * aborts every active run, gives runners the abort grace period (5 s) to
 * revert, then kills and undoes what is left, so a stopped appliance leaves
 * nothing behind. (kill -9 leaves runners running; the next start adopts
 * or cleans them up from the journals.)
 */
#define _GNU_SOURCE
#include <stdio.h>

#include "config.h"
#include "daemon.h"
#include "delegate.h"
#include "log.h"
#include "metrics.h"
#include "sdnotify.h"
#include "err.h"

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: cep-delegate [--home DIR] [--debug]\n"
	    "  --home DIR  appliance home (default $CEP_HOME, else /etc/cep,\n"
	    "              /var/lib/cep, /run/cep)\n");
}

static uint64_t sd_tick(void *arg)
{
	return delegate_ticks(arg);
}

static void sd_status(void *arg, char *buf, size_t len)
{
	delegate_describe(arg, buf, len);
}

int main(int argc, char **argv)
{
	cep_daemon_args args = {0};
	int a = cep_daemon_parse_args("cep-delegate", argc, argv, true, usage,
	    &args);
	if (a != 0)
		return a == 1 ? 0 : 2;
	cep_paths paths;
	cep_config cfg;
	cep_err err = {0};
	cep_delegate *d = NULL;
	/* the stop signals blocked before any thread exists, so only the
	 * wait below sees them; runners get an empty mask (executor_local.c) */
	if (cep_daemon_init("delegate", args.debug, &err) != CEP_OK ||
	    cep_paths_resolve(args.home, &paths, &err) != CEP_OK ||
	    cep_config_load(&paths, &cfg, &err) != CEP_OK ||
	    delegate_new(&paths, &cfg, &d, &err) != CEP_OK) {
		cep_log_error(NULL, "%s", err.msg);
		return 1;
	}
	/* delegate.metrics: not fatal, a delegate that does not start cannot
	 * revert what its runs left */
	cep_metrics_server *metrics = cep_metrics_start_daemon(delegate_metrics(
	                                                           d),
	    cfg.delegate_metrics, paths.run, "delegate");
	/* The watchdog follows the monitor thread, which launches, reaps
	 * and aborts runs: if it hangs, systemd restarts the delegate and
	 * recovery (recover.c) takes the runs over. */
	const cep_sd_ops sdo = {.tick = sd_tick, .status = sd_status, .arg = d};
	cep_sd *sd = cep_daemon_ready(&sdo);
	cep_daemon_wait_stop(sd, "stopping: aborting active runs");
	delegate_stop(d);
	cep_sdnotify_free(sd);
	cep_metrics_stop(metrics);
	delegate_free(d);
	cep_log_info(NULL, "stopped");
	return 0;
}
