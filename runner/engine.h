/*
 * engine.h - one experiment, start to verdict, in the runner.
 *
 * setup -> steady-state -> chaos -> revert -> post-chaos -> verdict, each
 * reported as EVENT_PHASE (docs/internals.md, "Experiment timeline").
 * Every fault is recorded through the sink before it is injected; every
 * injected fault is reverted, in reverse order, whatever ends chaos:
 * its duration, a stopOnFailure probe, abort, deadline, dead-man, signal.
 * The engine runs in the calling thread (fault workers' PDEATHSIG is tied
 * to it) and does not return before everything it injected is reverted.
 */
#ifndef CEP_RUNNER_ENGINE_H
#define CEP_RUNNER_ENGINE_H

#include "exp.h"
#include "sink.h"

typedef struct cep_runner_result {
	char verdict[16]; /* Pass, Fail, Aborted, Error */
	double score;
	char reason[512];
} cep_runner_result;

/* Runs e and emits the final EVENT_VERDICT. Does not flush the sink. */
void runner_engine_run(const cep_exp *e, cep_runner_sink *sink,
    cep_runner_result *res);

#endif
