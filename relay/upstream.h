/*
 * upstream.h - the relay's side of the control plane (docs/relay.md,
 * "Upstream"): store-and-forward of runner events, and the command watch.
 *
 * When controlPlane.url is set, every batch the delegate has journalled is
 * written to the spool (fsync) before the runner gets its ack, and an
 * uploader thread delivers the spool in order with UploadEvents. A full
 * spool refuses new batches (RESOURCE_EXHAUSTED: the runner keeps them and
 * retries later - backpressure, never a drop). A second thread long-polls
 * WatchCommands and hands each command to the delegate
 * (Delegate/ControlCommand).
 */
#ifndef CEP_RELAY_UPSTREAM_H
#define CEP_RELAY_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "cep.pb-c.h"
#include "config.h"
#include "err.h"
#include "metrics.h"
#include "rpc.h"

typedef struct cep_upstream cep_upstream;

/* NULL *out (and CEP_OK) when no control plane is configured. dir: the
 * spool folder; delegate: the client the commands go to. */
int relay_upstream_start(const cep_config *cfg, const char *dir,
    cep_rpc_client *delegate, cep_metrics *m, cep_upstream **out, cep_err *err);
void relay_upstream_stop(cep_upstream *u);
/* Sets the spool gauges; the relay's metrics collector calls it. */
void relay_upstream_collect(cep_upstream *u);
/* Undelivered bytes in the spool (0 for NULL: no control plane). */
int64_t relay_upstream_spool_bytes(cep_upstream *u);

/* Whether a batch can be taken now; false: the spool is full (counted,
 * logged once per episode), *err says so. */
bool relay_upstream_room(cep_upstream *u, cep_err *err);
/* Spools the events of b with seq <= acked_seq (what the delegate holds),
 * durably. An error means the runner must not be acknowledged. */
int relay_upstream_spool(cep_upstream *u, const Cep__V1__EventBatch *b,
    uint64_t acked_seq, cep_err *err);

#endif
