/*
 * fault_cpu_hog.c - `cpu-hog`: `workers` child processes that burn CPU at
 * `load` percent (duty cycle over 100 ms periods). With a target (`pid`
 * or `cgroup`) the workers are moved into the target's cgroups before they
 * start burning, so the target's cpu.stat shows the load. Reverted by
 * SIGKILL + waitpid of every worker; nothing else is touched (a cgroup
 * keeps no trace of a process that left it).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "fault_target.h"
#include "params.h"

#define HOG_COMM "cep-cpu-hog"
#define PERIOD_NS 100000000LL
#define MAX_WORKERS 256

typedef struct cpu_hog {
	char cg[512]; /* node targets: the cgroup made for the workers */
	size_t n;
	pid_t pids[];
} cpu_hog;

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Child: async-signal-safe calls only (clock_gettime, nanosleep). */
static void cpu_body(const void *arg)
{
	int64_t busy = PERIOD_NS * *(const int *)arg / 100;
	volatile uint64_t spin = 0;
	for (;;) {
		int64_t start = mono_ns();
		while (mono_ns() - start < busy)
			spin++;
		int64_t rest = PERIOD_NS - (mono_ns() - start);
		if (rest > 0) {
			struct timespec ts = {.tv_sec = 0, .tv_nsec = rest};
			nanosleep(&ts, NULL);
		}
	}
}

static int read_params(const cep_exp_item *it, int *workers, int *load,
    cep_err *err)
{
	int64_t w = runner_param_int(it, "workers", 1);
	int64_t l = (int64_t)runner_param_num(it, "load", 100);
	if (w < 1 || w > MAX_WORKERS)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "cpu-hog: workers %lld out of range 1..%d", (long long)w,
		    MAX_WORKERS);
	if (l < 1 || l > 100)
		return cep_err_set(err, CEP_INVALID_ARGUMENT,
		    "cpu-hog: load %lld%% out of range 1..100", (long long)l);
	*workers = (int)w;
	*load = (int)l;
	return CEP_OK;
}

static int cpu_describe(const cep_exp_item *it, char *target, size_t tlen,
    json_t **undo, cep_err *err)
{
	int workers = 0, load = 0;
	int rc = read_params(it, &workers, &load, err);
	if (rc != CEP_OK)
		return rc;
	char what[64];
	snprintf(what, sizeof(what), "%d worker(s) at %d%%", workers, load);
	return runner_fault_hog_describe(it, "cpu-hog", HOG_COMM, what, target,
	    tlen, undo, err);
}

static int cpu_inject(const cep_exp_item *it, const cep_fault_ctx *ctx,
    void **state, cep_err *err)
{
	int workers = 0, load = 0;
	int rc = read_params(it, &workers, &load, err);
	if (rc != CEP_OK)
		return rc;
	cep_target *t;
	if ((rc = runner_fault_target_open(it, "cpu-hog", &t, err)) != CEP_OK)
		return rc;
	cpu_hog *h = calloc(1, sizeof(*h) + (size_t)workers * sizeof(pid_t));
	if (h == NULL) {
		cep_target_free(t);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "cpu-hog: no memory");
	}
	(void)runner_fault_node_cgroup(it, h->cg, sizeof(h->cg), NULL);
	for (int i = 0; i < workers; i++) {
		rc = runner_fault_spawn_in(t, HOG_COMM, cpu_body, &load,
		    &h->pids[h->n], err);
		if (rc != CEP_OK) {
			runner_fault_kill_workers(h->pids, h->n, NULL);
			(void)runner_fault_node_remove(h->cg, NULL);
			cep_target_free(t);
			free(h);
			return rc;
		}
		h->n++;
	}
	cep_target_free(t);
	runner_emit_log(ctx->sink, "%s: %d cpu-hog worker(s) at %d%%",
	    ctx->fault_id, workers, load);
	*state = h;
	return CEP_OK;
}

static int cpu_revert(void *state, cep_err *err)
{
	cpu_hog *h = state;
	int rc = runner_fault_kill_workers(h->pids, h->n, err);
	if (rc == CEP_OK)
		rc = runner_fault_node_remove(h->cg, err);
	free(h);
	return rc;
}

const cep_fault_ops runner_fault_cpu_hog = {
    .type = "cpu-hog",
    .mechanism = "child-process",
    .mechanism_of = runner_fault_hog_mechanism,
    .describe = cpu_describe,
    .inject = cpu_inject,
    .revert = cpu_revert,
};
