/* ctl.c - abort / stop-chaos / deadline state and the one way to wait. */
#define _GNU_SOURCE
#include "ctl.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"

struct cep_runner_ctl {
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	bool aborted;
	bool stop_chaos;
	int64_t deadline; /* monotonic ms, 0 = none */
	char reason[256];
};

cep_runner_ctl *runner_ctl_new(void)
{
	cep_runner_ctl *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&c->mtx, NULL);
	return c;
}

void runner_ctl_free(cep_runner_ctl *c)
{
	if (c == NULL)
		return;
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->mtx);
	free(c);
}

/* Every change is one a waiter (runner_ctl_wait) may be waiting for:
 * wake them all, then let go of the lock taken for the change. */
static void wake_unlock(cep_runner_ctl *c)
{
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->mtx);
}

void runner_ctl_abort(cep_runner_ctl *c, const char *fmt, ...)
{
	pthread_mutex_lock(&c->mtx);
	if (!c->aborted) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
		va_end(ap);
		c->aborted = true;
	}
	wake_unlock(c);
}

/* Deadline check with the mutex held: passing it is an abort. */
static void check_deadline_locked(cep_runner_ctl *c)
{
	if (!c->aborted && c->deadline > 0 &&
	    cep_clock_mono_ms() >= c->deadline) {
		snprintf(c->reason, sizeof(c->reason), "deadline");
		c->aborted = true;
		pthread_cond_broadcast(&c->cond);
	}
}

bool runner_ctl_aborted(cep_runner_ctl *c, char *reason, size_t len)
{
	pthread_mutex_lock(&c->mtx);
	check_deadline_locked(c);
	bool a = c->aborted;
	if (a && reason != NULL && len > 0)
		snprintf(reason, len, "%s", c->reason);
	pthread_mutex_unlock(&c->mtx);
	return a;
}

void runner_ctl_stop_chaos(cep_runner_ctl *c)
{
	pthread_mutex_lock(&c->mtx);
	c->stop_chaos = true;
	wake_unlock(c);
}

bool runner_ctl_chaos_stopped(cep_runner_ctl *c)
{
	pthread_mutex_lock(&c->mtx);
	bool s = c->stop_chaos;
	pthread_mutex_unlock(&c->mtx);
	return s;
}

void runner_ctl_set_deadline(cep_runner_ctl *c, int64_t mono_ms)
{
	pthread_mutex_lock(&c->mtx);
	c->deadline = mono_ms;
	wake_unlock(c);
}

int64_t runner_ctl_deadline(cep_runner_ctl *c)
{
	pthread_mutex_lock(&c->mtx);
	int64_t d = c->deadline;
	pthread_mutex_unlock(&c->mtx);
	return d;
}

bool runner_ctl_wait(cep_runner_ctl *c, int64_t mono_ms, bool wake_on_stop)
{
	pthread_mutex_lock(&c->mtx);
	for (;;) {
		check_deadline_locked(c);
		if (c->aborted || (wake_on_stop && c->stop_chaos))
			break;
		int64_t until = mono_ms;
		if (c->deadline > 0 && c->deadline < until)
			until = c->deadline;
		if (cep_clock_mono_ms() >= until) {
			pthread_mutex_unlock(&c->mtx);
			return false;
		}
		struct timespec ts = {.tv_sec = until / 1000,
		    .tv_nsec = (until % 1000) * 1000000};
		pthread_cond_timedwait(&c->cond, &c->mtx, &ts);
	}
	pthread_mutex_unlock(&c->mtx);
	return true;
}
