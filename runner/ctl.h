/*
 * ctl.h - the runner's control state: abort (with who asked), "stop chaos
 * early" (a stopOnFailure probe failed), and the run deadline.
 *
 * Every wait the engine does is a runner_ctl_wait: a condition variable
 * on CLOCK_MONOTONIC that an abort signals at once, so an abort from the
 * command thread, the dead-man check or a signal is obeyed within
 * milliseconds, not at the end of a sleep. Thread-safe throughout.
 */
#ifndef CEP_RUNNER_CTL_H
#define CEP_RUNNER_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cep_runner_ctl cep_runner_ctl;

cep_runner_ctl *runner_ctl_new(void);
void runner_ctl_free(cep_runner_ctl *c);

/* Raises abort. The first reason wins ("aborted by operator", "deadline",
 * "dead-man: relay unreachable for 12s"); later calls only wake waiters. */
void runner_ctl_abort(cep_runner_ctl *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* True once aborted; copies the reason when reason is not NULL. */
bool runner_ctl_aborted(cep_runner_ctl *c, char *reason, size_t len);

/* A probe with stopOnFailure failed: chaos ends early, the run goes on to
 * revert. Not an abort: post-chaos probes and the verdict still happen. */
void runner_ctl_stop_chaos(cep_runner_ctl *c);
bool runner_ctl_chaos_stopped(cep_runner_ctl *c);

/* Monotonic ms at which the run must be over; waits past it raise abort
 * "deadline". 0 = none. */
void runner_ctl_set_deadline(cep_runner_ctl *c, int64_t mono_ms);

/* Sleeps until mono_ms (monotonic), or until abort (always), or until
 * stop-chaos (when wake_on_stop). Returns true if woken by one of those. */
/* The deadline set above (monotonic ms), 0 = none. */
int64_t runner_ctl_deadline(cep_runner_ctl *c);

bool runner_ctl_wait(cep_runner_ctl *c, int64_t mono_ms, bool wake_on_stop);

#endif
