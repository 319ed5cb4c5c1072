/*
 * undo.h - undoing a recorded fault without the runner that injected it.
 *
 * A runner records every fault before injecting it (FaultRecord: type,
 * target, mechanism, undo JSON). Reverting it is the runner's job; when the
 * runner is gone (kill -9, lost node), the delegate calls cep_undo_apply on
 * each fault recorded but not reverted. One table maps a mechanism to its
 * undo function, so the runner's own revert and the delegate's cleanup use
 * the same code (lib/), and adding a mechanism is one line here.
 *
 * An undo function is idempotent and returns CEP_OK only when the resource
 * that held the fault is clean or truly gone (a network namespace that no
 * longer exists holds no rule); anything else is an error naming what is
 * left.
 */
#ifndef CEP_UNDO_H
#define CEP_UNDO_H

#include "cep.pb-c.h"
#include "err.h"

typedef int (*cep_undo_fn)(const char *run_id, const char *undo_json,
    cep_err *err);

/* Dispatches on rec->mechanism. Unknown mechanisms are an error (a fault
 * nobody knows how to undo must not be reported as undone). */
int cep_undo_apply(const Cep__V1__FaultRecord *rec, cep_err *err);

/* Mechanisms whose effect ends with the runner's processes (signals to a
 * target, worker processes with PDEATHSIG): the executor's process cleanup
 * is their undo. */
int cep_undo_none(const char *run_id, const char *undo_json, cep_err *err);

#endif
