/*
 * probe.h - probe mechanisms behind one interface, and a registry by type.
 *
 * A backend performs one try and says whether it passed, with a short
 * detail ("status 503, want 200", "latency 812ms > 500ms") and the
 * latency. runner_probe_check adds `attempts`: a check passes if any try
 * does. Backends: probe_http.c (libcurl), probe_cmd.c (a child process),
 * probe_k8s.c (the Kubernetes API), probe_prometheus.c (a PromQL query).
 * When and how often probes run is probes.c's business, not theirs.
 */
#ifndef CEP_PROBE_H
#define CEP_PROBE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl.h"
#include "exp.h"

#define CEP_PROBE_DETAIL_MAX 256

/* What a running try watches to stop early: the run's abort, and the
 * scheduler's own stop flag (may be NULL). */
typedef struct cep_probe_env {
	cep_runner_ctl *ctl;
	const atomic_bool *stop;
} cep_probe_env;

typedef struct cep_probe_ops {
	const char *type;
	bool (*try_once)(const cep_exp_item *it, const cep_probe_env *env,
	    char *detail, size_t dlen, uint32_t *latency_ms);
} cep_probe_ops;

const cep_probe_ops *runner_probe_find(const char *type);
extern const cep_probe_ops runner_probe_http;
extern const cep_probe_ops runner_probe_cmd;
extern const cep_probe_ops runner_probe_k8s;        /* probe_k8s.c */
extern const cep_probe_ops runner_probe_prometheus; /* probe_prometheus.c */

/* One check of a probe: up to `attempts` tries, `interval` apart. */
bool runner_probe_check(const cep_exp_item *it, const cep_probe_env *env,
    char *detail, size_t dlen, uint32_t *latency_ms);

bool runner_probe_cancelled(const cep_probe_env *env);
/* Sleeps ms in short slices; false if cancelled meanwhile. */
bool runner_probe_sleep(const cep_probe_env *env, int64_t ms);

#endif
