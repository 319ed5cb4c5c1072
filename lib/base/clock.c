/* clock.c - wall and monotonic clocks, sleeps, timed waits, durations. */
#define _GNU_SOURCE
#include "clock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t cep_clock_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cep_clock_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cep_clock_sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = {.tv_sec = ms / 1000,
	    .tv_nsec = (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Units in the order they may appear: "1h2m3s4ms". */
bool cep_clock_parse_duration_ms(const char *s, int64_t *out_ms)
{
	static const struct {
		const char *u;
		int64_t ms;
	} units[] = {
	    {"ms", 1},
	    {"h", 3600000},
	    {"m", 60000},
	    {"s", 1000},
	};
	if (s == NULL || *s == '\0')
		return false;
	int64_t total = 0;
	const char *p = s;
	while (*p != '\0') {
		if (*p < '0' || *p > '9')
			return false;
		int64_t whole = 0, frac = 0, fdiv = 1;
		while (*p >= '0' && *p <= '9') {
			whole = whole * 10 + (*p++ - '0');
			if (whole > 1000000000)
				return false;
		}
		if (*p == '.') {
			p++;
			if (*p < '0' || *p > '9')
				return false;
			while (*p >= '0' && *p <= '9') {
				if (fdiv < 1000000) {
					frac = frac * 10 + (*p - '0');
					fdiv *= 10;
				}
				p++;
			}
		}
		size_t i;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t ul = strlen(units[i].u);
			if (strncmp(p, units[i].u, ul) == 0) {
				/* "m" must not swallow the "m" of "ms" */
				if (units[i].u[0] == 'm' && ul == 1 &&
				    p[1] == 's')
					continue;
				p += ul;
				break;
			}
		}
		if (i == sizeof(units) / sizeof(units[0]))
			return false;
		total += whole * units[i].ms + frac * units[i].ms / fdiv;
		if (total > (int64_t)366 * 24 * 3600000)
			return false;
	}
	*out_ms = total;
	return true;
}

void cep_clock_format_duration(int64_t ms, char *buf, size_t len)
{
	if (ms < 1000) {
		snprintf(buf, len, "%lldms", (long long)ms);
		return;
	}
	long long h = ms / 3600000, m = (ms / 60000) % 60;
	long long s = (ms / 1000) % 60, r = ms % 1000;
	char sec[32];
	if (r != 0)
		snprintf(sec, sizeof(sec), "%lld.%03llds", s, r);
	else
		snprintf(sec, sizeof(sec), "%llds", s);
	/* trim trailing zeros of the fraction: 1.500s -> 1.5s */
	char *dot = strchr(sec, '.');
	if (dot != NULL) {
		size_t l = strlen(sec) - 1; /* before 's' */
		while (l > 0 && sec[l - 1] == '0')
			sec[--l] = 's', sec[l + 1] = '\0';
	}
	if (s == 0 && r == 0)
		sec[0] = '\0'; /* "2m", not "2m0s" */
	if (h > 0 && m == 0 && sec[0] == '\0')
		snprintf(buf, len, "%lldh", h);
	else if (h > 0)
		snprintf(buf, len, "%lldh%lldm%s", h, m, sec);
	else if (m > 0)
		snprintf(buf, len, "%lldm%s", m, sec);
	else
		snprintf(buf, len, "%s", sec);
}

int cep_clock_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
	return rc;
}

void cep_clock_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(cv, mu, &ts);
}
