/*
 * fault.h - fault mechanisms behind one interface, and a registry by type.
 *
 * The engine drives every fault the same way: describe (target text and
 * undo JSON for the FaultRecord, before anything is touched), record it
 * through the sink, inject, tick while chaos lasts (periodic faults such as
 * process-kill rounds), revert. Backends: fault_process_kill.c,
 * fault_cpu_hog.c, fault_memory_hog.c, ..., and the Kubernetes ones
 * fault_kube_*.c (kube_target.h). Adding a fault type = a schema entry in
 * lib/exp and one backend file here.
 */
#ifndef CEP_FAULT_H
#define CEP_FAULT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "exp.h"
#include "sink.h"

typedef struct cep_fault_ctx {
	cep_runner_sink *sink; /* LOG events about the fault */
	const char *fault_id;
	/* A tick that meets an error the fault cannot go on with (its
	 * permission was taken away mid-run: 403) reports it here; the
	 * engine ends chaos and the verdict is Error with this reason. NULL
	 * outside the chaos loop. */
	void (*fail)(void *arg, const char *reason);
	void *fail_arg;
} cep_fault_ctx;

typedef struct cep_fault_ops {
	const char *type;      /* the experiment's fault type */
	const char *mechanism; /* FaultRecord.mechanism */
	/* Optional: the mechanism for this item when the backend chooses
	 * between several (network-latency: tc netem where the kernel has
	 * it, else NFQUEUE). Called after describe. */
	const char *(*mechanism_of)(const cep_exp_item *it);
	/* Target text and undo object (new reference) for the record. Pure:
	 * nothing is done to the system yet. Fails on a parameter the backend
	 * cannot act on. */
	int (*describe)(const cep_exp_item *it, char *target, size_t tlen,
	    json_t **undo, cep_err *err);
	int (*inject)(const cep_exp_item *it, const cep_fault_ctx *ctx,
	    void **state, cep_err *err);
	/* Monotonic ms of the next tick, INT64_MAX if none. NULL = never. */
	int64_t (*next_tick)(void *state);
	void (*tick)(void *state, const cep_fault_ctx *ctx);
	/* Undoes and frees state (always). Succeeds only when the undo is
	 * confirmed (e.g. waitpid saw every worker die). */
	int (*revert)(void *state, cep_err *err);
} cep_fault_ops;

/* The run the faults belong to, set by the engine before the first
 * describe: network faults name their nftables tables after the run id and
 * arm their rules to expire at the deadline (monotonic ms, 0 = none). */
void runner_fault_set_run(const char *run_id, int64_t deadline_mono_ms);
const char *runner_fault_run_id(void); /* "" before set */
int64_t runner_fault_deadline_mono(void);

/* NULL for an unknown type. */
const cep_fault_ops *runner_fault_find(const char *type);

extern const cep_fault_ops runner_fault_process_kill;
/* container-kill: process-kill's rounds on a pod's container */
extern const cep_fault_ops runner_fault_container_kill;
extern const cep_fault_ops runner_fault_cpu_hog;
extern const cep_fault_ops runner_fault_memory_hog;
extern const cep_fault_ops runner_fault_io_stress; /* fault_io_stress.c */
extern const cep_fault_ops runner_fault_disk_fill; /* fault_disk_fill.c */
/* Kubernetes (kube_target.h: the client, namespace and target cap) */
extern const cep_fault_ops runner_fault_kube_pod_delete; /* pod-delete */
extern const cep_fault_ops runner_fault_kube_scale;      /* deployment-scale */
extern const cep_fault_ops runner_fault_kube_cordon;     /* node-cordon */
extern const cep_fault_ops runner_fault_kube_taint;      /* node-taint */
extern const cep_fault_ops runner_fault_kube_drain;      /* node-drain */

/* Worker processes (fault_child.c). A worker is forked from the runner,
 * so its command line carries the runner's --run-id (how the delegate
 * finds it if the runner dies); it dies with the runner (PDEATHSIG
 * SIGKILL, tied to the forking thread: fork from the engine thread) and
 * names itself comm. body runs in the child and must only use
 * async-signal-safe calls; it never returns. */
int runner_fault_spawn_worker(const char *comm, void (*body)(const void *),
    const void *arg, pid_t *pid, cep_err *err);
/* SIGKILL and reap each pid; ok only if waitpid confirmed every one. */
int runner_fault_kill_workers(const pid_t *pids, size_t n, cep_err *err);

#endif
