/*
 * probes.h - when probes run, and what each probe's overall result is.
 *
 * One-shot modes run in the caller's thread: start-of-test and edge
 * before chaos, end-of-test and edge after revert. Periodic modes run on
 * one scheduler thread: continuous from start() to stop() (steady-state to
 * the end of post-chaos), on-chaos while set_chaos(true). Each check emits
 * an EVENT_PROBE; finish() emits each probe's final result and the score.
 * A failing check of a stopOnFailure probe ends chaos (cep_runner_ctl).
 */
#ifndef CEP_RUNNER_PROBES_H
#define CEP_RUNNER_PROBES_H

#include <stdbool.h>

#include "exp.h"
#include "sink.h"

typedef struct cep_runner_probes cep_runner_probes;

cep_runner_probes *runner_probes_new(const cep_exp *e, cep_runner_sink *sink);
/* Stops the scheduler thread if still running, frees. NULL-safe. */
void runner_probes_free(cep_runner_probes *p);

/* post=false: start-of-test + edge; post=true: end-of-test + edge. */
void runner_probes_oneshot(cep_runner_probes *p, bool post);
void runner_probes_start(cep_runner_probes *p);
void runner_probes_set_chaos(cep_runner_probes *p, bool on);
/* Ends periodic checks (a check in progress is cancelled) and joins. */
void runner_probes_stop(cep_runner_probes *p);

/* Emits the final result of every probe; all_passed is true with no
 * probes, score = 100 * passed weight / total weight (100 with none). */
void runner_probes_finish(cep_runner_probes *p, bool *all_passed,
    double *score);

#endif
