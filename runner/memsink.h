/*
 * memsink.h - a sink that keeps everything in memory: the engine's tests
 * use it in place of the relay, and it can be told to refuse fault records
 * (to check that an unrecorded fault is never injected).
 */
#ifndef CEP_RUNNER_MEMSINK_H
#define CEP_RUNNER_MEMSINK_H

#include <stdbool.h>
#include <stddef.h>

#include "sink.h"

typedef struct cep_runner_memsink cep_runner_memsink;

cep_runner_memsink *runner_memsink_new(void);
void runner_memsink_free(cep_runner_memsink *m);
/* The ops to pass to runner_sink_new with m as impl. */
const cep_runner_sink_ops *runner_memsink_ops(void);

/* Make record_fault fail (UNAVAILABLE) from now on. */
void runner_memsink_refuse_records(cep_runner_memsink *m, bool refuse);

/* Copies, valid until m is freed; thread-safe against concurrent pushes
 * (the array may grow: call again rather than keeping the pointer). */
size_t runner_memsink_nevents(cep_runner_memsink *m);
Cep__V1__Event *runner_memsink_event(cep_runner_memsink *m, size_t i);
size_t runner_memsink_nrecords(cep_runner_memsink *m);
size_t runner_memsink_nreverted(cep_runner_memsink *m);

#endif
