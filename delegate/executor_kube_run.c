/*
 * executor_kube_run.c - the helpers every file of the kubernetes executor
 * shares (executor_kube_int.h): a connector's client made on first use,
 * the end of a run as the executor saw it, the stop flag, a JSON field.
 * The bottom of the backend: it calls none of the other executor_kube
 * files.
 */
#define _GNU_SOURCE
#include "executor_kube_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

int delegate_kx_client(kconn *kc, cep_kube **out, cep_err *err)
{
	pthread_mutex_lock(&kc->mu);
	int rv = CEP_OK;
	if (kc->k == NULL)
		rv = cep_connector_client(kc->c, &kc->k, err);
	*out = kc->k;
	pthread_mutex_unlock(&kc->mu);
	return rv;
}

/* The runner is over, as far as this executor can tell; first word wins. */
void delegate_kx_ended(krun *kr, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&kr->kx->mu);
	bool first = kr->phase != KP_ENDED;
	if (first) {
		kr->phase = KP_ENDED;
		snprintf(kr->what, sizeof(kr->what), "%s", what);
	}
	pthread_mutex_unlock(&kr->kx->mu);
	if (first)
		cep_log_conn(CEP_LOG_INFO, kr->id.s, kr->conn,
		    "runner pod %s/%s: %s", kr->ns, kr->pod, what);
}

bool delegate_kx_stop_asked(krun *kr)
{
	return atomic_load(&kr->stop) || atomic_load(&kr->kx->stopping);
}

const char *delegate_kx_obj_str(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(json_object_get(o, a), b);
	return json_is_string(v) ? json_string_value(v) : NULL;
}
