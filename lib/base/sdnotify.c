/*
 * sdnotify.c - READY/STATUS/WATCHDOG/STOPPING for Type=notify units
 * (sdnotify.h). The watchdog pings only when the daemon's liveness counter
 * moved: a hung loop means no ping, and systemd restarts the service.
 */
#define _GNU_SOURCE
#include "sdnotify.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "clock.h"

#define STATUS_MAX 256

struct cep_sd {
	cep_sd_ops ops;
	bool active;          /* NOTIFY_SOCKET set: talk to systemd */
	uint64_t interval_us; /* ping period, 0: no watchdog */
	uint64_t last_tick;
	pthread_t thr;
	bool thr_started;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	bool stop;
};

uint64_t cep_sdnotify_watchdog_interval_us(void)
{
	uint64_t usec = 0;
	/* > 0 only when WATCHDOG_USEC is set and meant for this pid */
	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec / 2;
}

static void status_line(cep_sd *sd, char *buf, size_t len)
{
	buf[0] = '\0';
	if (sd->ops.status != NULL)
		sd->ops.status(sd->ops.arg, buf, len);
	/* STATUS= is one line: a newline would start a new assignment */
	for (char *p = buf; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

/* One period: STATUS= always, WATCHDOG=1 only when the loop ticked. */
static void beat(cep_sd *sd)
{
	char st[STATUS_MAX];
	status_line(sd, st, sizeof(st));
	bool alive = false;
	if (sd->interval_us > 0 && sd->ops.tick != NULL) {
		uint64_t t = sd->ops.tick(sd->ops.arg);
		alive = t != sd->last_tick;
		sd->last_tick = t;
	}
	if (alive)
		sd_notifyf(0, "WATCHDOG=1%s%s", st[0] ? "\nSTATUS=" : "", st);
	else if (st[0] != '\0')
		sd_notifyf(0, "STATUS=%s", st);
	if (!alive && sd->interval_us > 0 && sd->ops.tick != NULL)
		cep_log_warn(NULL,
		    "main loop did not tick for %llu ms: no "
		    "watchdog ping",
		    (unsigned long long)(sd->interval_us / 1000));
}

static void *sd_main(void *arg)
{
	cep_sd *sd = arg;
	int64_t period_ms = CEP_SD_STATUS_MS;
	if (sd->interval_us > 0 &&
	    (int64_t)(sd->interval_us / 1000) < period_ms)
		period_ms = (int64_t)(sd->interval_us / 1000);
	if (period_ms < 1)
		period_ms = 1;
	pthread_mutex_lock(&sd->mu);
	while (!sd->stop) {
		cep_clock_cond_wait_ms(&sd->cv, &sd->mu, period_ms);
		if (sd->stop)
			break;
		pthread_mutex_unlock(&sd->mu);
		beat(sd);
		pthread_mutex_lock(&sd->mu);
	}
	pthread_mutex_unlock(&sd->mu);
	return NULL;
}

static int start_thread(cep_sd *sd, cep_err *err)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sd->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&sd->mu, NULL);
	int rv = pthread_create(&sd->thr, NULL, sd_main, sd);
	if (rv != 0)
		return cep_err_errno(err, rv,
		    "starting the systemd notify thread");
	sd->thr_started = true;
	return CEP_OK;
}

int cep_sdnotify_start(const cep_sd_ops *ops, cep_sd **out, cep_err *err)
{
	*out = NULL;
	cep_sd *sd = calloc(1, sizeof(*sd));
	if (sd == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "out of memory");
	sd->ops = *ops;
	const char *ns = getenv("NOTIFY_SOCKET");
	sd->active = ns != NULL && ns[0] != '\0';
	if (!sd->active) {
		*out = sd;
		return CEP_OK;
	}
	sd->interval_us = cep_sdnotify_watchdog_interval_us();
	if (sd->ops.tick != NULL)
		sd->last_tick = sd->ops.tick(sd->ops.arg);
	char st[STATUS_MAX];
	status_line(sd, st, sizeof(st));
	sd_notifyf(0, "READY=1%s%s", st[0] ? "\nSTATUS=" : "", st);
	int rv = start_thread(sd, err);
	if (rv != CEP_OK) {
		cep_sdnotify_free(sd);
		return rv;
	}
	*out = sd;
	return CEP_OK;
}

void cep_sdnotify_stopping(cep_sd *sd, const char *status)
{
	if (sd == NULL || !sd->active)
		return;
	sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status ? status : "stopping");
}

void cep_sdnotify_free(cep_sd *sd)
{
	if (sd == NULL)
		return;
	if (sd->thr_started) {
		pthread_mutex_lock(&sd->mu);
		sd->stop = true;
		pthread_cond_signal(&sd->cv);
		pthread_mutex_unlock(&sd->mu);
		pthread_join(sd->thr, NULL);
		pthread_cond_destroy(&sd->cv);
		pthread_mutex_destroy(&sd->mu);
	}
	free(sd);
}
