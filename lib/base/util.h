/*
 * util.h - small shared helpers: clocks, ids, files, durations.
 * Nothing here knows about runs or the network.
 */
#ifndef CEP_UTIL_H
#define CEP_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "runid.h" /* the run id type: most users came here for it */

int64_t cep_now_ms(void);  /* CLOCK_REALTIME, unix ms */
int64_t cep_mono_ms(void); /* CLOCK_MONOTONIC ms */
void cep_sleep_ms(int64_t ms);

/* Random bytes from the kernel. */
int cep_random(void *buf, size_t len, cep_err *err);

/* "250ms", "2s", "1m30s", "1h" -> milliseconds. Returns false on bad input. */
bool cep_parse_duration_ms(const char *s, int64_t *out_ms);
/* 90500 -> "1m30.5s" */
void cep_format_duration(int64_t ms, char *buf, size_t len);

/* mkdir -p with mode for every created component. (Secret files: secret.h.) */
int cep_mkdirs(const char *path, unsigned mode, cep_err *err);
/* Reads a whole file, refusing files larger than max. Adds a NUL after the
 * data (not counted in *len). Caller frees. */
int cep_read_file(const char *path, size_t max, char **data, size_t *len,
    cep_err *err);
/* Writes atomically (tmp + fsync + rename + fsync dir) with mode. */
int cep_write_file(const char *path, const void *data, size_t len,
    unsigned mode, cep_err *err);
/* snprintf that reports truncation as an error instead of hiding it. */
int cep_path(char *buf, size_t len, cep_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Removes a directory tree (files and dirs only; symlinks unlinked, not followed). */
int cep_rmtree(const char *path, cep_err *err);

/* /proc/<pid>/stat field 22: start time in clock ticks, 0 if gone.
 * (pid, start) names a process without the risk of pid reuse. */
int64_t cep_proc_start_time(int pid);
/* Command name (/proc/<pid>/stat "(comm)", which may hold spaces and ')')
 * and parent pid; either may be NULL. false if the process is gone. */
bool cep_proc_info(int pid, char *comm, size_t clen, int *ppid);
/* /proc/<pid>/stat state letter ('R', 'S', 'Z', ...), 0 if gone. */
char cep_proc_state(int pid);

/* pthread_cond_timedwait for ms milliseconds on a condition variable
 * created with CLOCK_MONOTONIC (pthread_condattr_setclock), mu held:
 * wall-clock steps must not stretch or cut a daemon's waits. */
void cep_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms);

#endif
