/*
 * delegate.h - the orchestrator core, as one object.
 *
 * delegate_new loads the CA, replays every run journal (adopting live
 * runners, cleaning up after dead ones), listens on <run>/delegate.sock
 * (the Delegate service the relay calls) and <run>/admin.sock (the Admin
 * service cepctl calls), dials <run>/relay.sock, and starts the monitor
 * (launch, reap, deadline, abort) and relay-link threads.
 *
 * delegate_stop is the graceful end: active runs are aborted and given
 * the abort grace period to revert, then killed and undone. delegate_free
 * alone leaves runners running and journals as they are - what kill -9 would
 * leave - so a later delegate_new on the same home recovers them.
 */
#ifndef CEP_DELEGATE_H
#define CEP_DELEGATE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

typedef struct cep_delegate cep_delegate;

int delegate_new(const cep_paths *paths, const cep_config *cfg,
    cep_delegate **out, cep_err *err);
/* Aborts every active run and waits (up to the grace period plus the
 * cleanup) until each has a final state. */
void delegate_stop(cep_delegate *d);
/* Stops serving and frees; runners and journals are left as they are. */
void delegate_free(cep_delegate *d);

/* For tests and Status. */
size_t delegate_active_runs(cep_delegate *d);
/* Liveness for the systemd watchdog (lib/base/sdnotify.h): advances with each
 * turn of the monitor thread (every 100 ms while it is not stuck). */
uint64_t delegate_ticks(cep_delegate *d);
/* One line for systemd's STATUS=: active runs, control-plane link. */
void delegate_describe(cep_delegate *d, char *buf, size_t len);
/* The delegate's Prometheus registry (docs/metrics.md), for main.c to
 * serve with cep_metrics_start; owned by the delegate. */
struct cep_metrics *delegate_metrics(cep_delegate *d);

#endif
