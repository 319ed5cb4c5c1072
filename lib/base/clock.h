/*
 * clock.h - wall and monotonic clocks, sleeps, timed waits on a
 * CLOCK_MONOTONIC condition variable, and durations ("1m30s") both ways.
 * (Named clock.h, not time.h: with -I lib/base that would shadow <time.h>.)
 */
#ifndef CEP_CLOCK_H
#define CEP_CLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int64_t cep_clock_now_ms(void);  /* CLOCK_REALTIME, unix ms */
int64_t cep_clock_mono_ms(void); /* CLOCK_MONOTONIC ms */
void cep_clock_sleep_ms(int64_t ms);

/* "250ms", "2s", "1m30s", "1h" -> milliseconds. Returns false on bad input. */
bool cep_clock_parse_duration_ms(const char *s, int64_t *out_ms);
/* 90500 -> "1m30.5s" */
void cep_clock_format_duration(int64_t ms, char *buf, size_t len);

/* pthread_cond_init on CLOCK_MONOTONIC, what cep_clock_cond_wait_ms
 * expects. Returns pthread_cond_init's result. */
int cep_clock_cond_init(pthread_cond_t *cv);
/* pthread_cond_timedwait for ms milliseconds on a condition variable
 * created with CLOCK_MONOTONIC (pthread_condattr_setclock), mu held:
 * wall-clock steps must not stretch or cut a daemon's waits. */
void cep_clock_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu,
    int64_t ms);

#endif
