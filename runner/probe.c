/* probe.c - probe registry, attempts, cancellation. */
#include "probe.h"

#include <stdio.h>
#include <string.h>

#include "params.h"
#include "registry.h"
#include "clock.h"

static const cep_probe_ops *const registry[] = {
    &runner_probe_http,
    &runner_probe_cmd,
    &runner_probe_k8s,
    &runner_probe_prometheus,
};

CEP_RUNNER_REGISTRY_FIND(runner_probe_find, cep_probe_ops, registry)

bool runner_probe_cancelled(const cep_probe_env *env)
{
	if (env == NULL)
		return false;
	if (env->stop != NULL && atomic_load(env->stop))
		return true;
	return env->ctl != NULL && runner_ctl_aborted(env->ctl, NULL, 0);
}

bool runner_probe_sleep(const cep_probe_env *env, int64_t ms)
{
	int64_t until = cep_clock_mono_ms() + ms;
	for (;;) {
		if (runner_probe_cancelled(env))
			return false;
		int64_t left = until - cep_clock_mono_ms();
		if (left <= 0)
			return true;
		cep_clock_sleep_ms(left < 50 ? left : 50);
	}
}

bool runner_probe_check(const cep_exp_item *it, const cep_probe_env *env,
    char *detail, size_t dlen, uint32_t *latency_ms)
{
	const cep_probe_ops *ops = runner_probe_find(cep_exp_item_type(it));
	*latency_ms = 0;
	if (ops == NULL) {
		snprintf(detail, dlen, "unknown probe type \"%.32s\"",
		    cep_exp_item_type(it));
		return false;
	}
	int64_t attempts = runner_param_int(it, "attempts", 1);
	int64_t gap = runner_param_ms(it, "interval", 1000);
	for (int64_t i = 0; i < attempts; i++) {
		if (i > 0 && !runner_probe_sleep(env, gap))
			break;
		if (ops->try_once(it, env, detail, dlen, latency_ms))
			return true;
		if (runner_probe_cancelled(env))
			break;
	}
	return false;
}
