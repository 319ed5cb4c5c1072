/*
 * sink.h - where the experiment engine's output goes.
 *
 * The engine never talks to the network. It emits events (the sink gives
 * them seq 1, 2, 3... and the time), records each fault *before* injecting
 * it (a failed record means the fault is not injected), and reports faults
 * reverted. The implementation behind it is a set of ops: session.c speaks
 * RPC to the relay; tests use a fake that keeps events in memory.
 */
#ifndef CEP_RUNNER_SINK_H
#define CEP_RUNNER_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include "cep.pb-c.h"
#include "ctl.h"
#include "err.h"

typedef struct cep_runner_sink_ops {
	/* Takes a copy of ev (seq, time and run id already set). Must not
	 * block for long: it is called from the engine and probe threads. */
	void (*push)(void *impl, const Cep__V1__Event *ev);
	/* Blocks until the record is durably acknowledged (CEP_OK) or it
	 * cannot be (error, err filled); must give up when the run aborts. */
	int (*record_fault)(void *impl, const Cep__V1__FaultRecord *rec,
	    cep_err *err);
	int (*fault_reverted)(void *impl, const Cep__V1__FaultRecord *rec,
	    cep_err *err);
	/* Waits up to timeout_ms for every pushed event to be acknowledged;
	 * true if all were. */
	bool (*flush)(void *impl, int64_t timeout_ms);
} cep_runner_sink_ops;

typedef struct cep_runner_sink cep_runner_sink;

/* ops and impl must outlive the sink; ctl is the run's control state.
 * NULL when run_id is not a run id (or out of memory). */
cep_runner_sink *runner_sink_new(const char *run_id,
    const cep_runner_sink_ops *ops, void *impl, cep_runner_ctl *ctl);
void runner_sink_free(cep_runner_sink *s);
const char *runner_sink_run_id(const cep_runner_sink *s);
cep_runner_ctl *runner_sink_ctl(const cep_runner_sink *s);

/* Sets run id, seq and time_ms on ev and hands it on; returns the seq. */
uint64_t runner_sink_emit(cep_runner_sink *s, Cep__V1__Event *ev);

/* Builders for each event type; each also logs the event locally. */
void runner_emit_phase(cep_runner_sink *s, const char *phase);
void runner_emit_log(cep_runner_sink *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void runner_emit_probe(cep_runner_sink *s, const char *name, const char *mode,
    bool ok, const char *detail, uint32_t latency_ms, bool final);
void runner_emit_fault(cep_runner_sink *s, const char *fault_id,
    const char *type, const char *state, const char *detail);
void runner_emit_verdict(cep_runner_sink *s, const char *verdict, double score,
    const char *reason);

/* Fill run_id and time_ms, then call the ops. */
int runner_sink_record_fault(cep_runner_sink *s, Cep__V1__FaultRecord *rec,
    cep_err *err);
int runner_sink_fault_reverted(cep_runner_sink *s, Cep__V1__FaultRecord *rec,
    cep_err *err);
bool runner_sink_flush(cep_runner_sink *s, int64_t timeout_ms);

#endif
