/* sink.c - seq/time assignment and event builders over a sink's ops. */
#define _GNU_SOURCE
#include "sink.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "clock.h"
#include "run_id.h"

struct cep_runner_sink {
	const cep_runner_sink_ops *ops;
	void *impl;
	cep_runner_ctl *ctl;
	pthread_mutex_t mtx; /* seq order == push order */
	uint64_t seq;
	cep_run_id run_id;
};

cep_runner_sink *runner_sink_new(const char *run_id,
    const cep_runner_sink_ops *ops, void *impl, cep_runner_ctl *ctl)
{
	cep_run_id id;
	if (!cep_run_id_parse(&id, run_id))
		return NULL;
	cep_runner_sink *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->run_id = id;
	s->ops = ops;
	s->impl = impl;
	s->ctl = ctl;
	pthread_mutex_init(&s->mtx, NULL);
	return s;
}

void runner_sink_free(cep_runner_sink *s)
{
	if (s == NULL)
		return;
	pthread_mutex_destroy(&s->mtx);
	free(s);
}

const char *runner_sink_run_id(const cep_runner_sink *s)
{
	return s->run_id.s;
}

cep_runner_ctl *runner_sink_ctl(const cep_runner_sink *s)
{
	return s->ctl;
}

uint64_t runner_sink_emit(cep_runner_sink *s, Cep__V1__Event *ev)
{
	pthread_mutex_lock(&s->mtx);
	ev->run_id = s->run_id.s;
	ev->seq = ++s->seq;
	ev->time_ms = cep_clock_now_ms();
	s->ops->push(s->impl, ev);
	uint64_t seq = ev->seq;
	pthread_mutex_unlock(&s->mtx);
	return seq;
}

void runner_emit_phase(cep_runner_sink *s, const char *phase)
{
	Cep__V1__Event ev = CEP__V1__EVENT__INIT;
	ev.type = CEP__V1__EVENT_TYPE__EVENT_PHASE;
	ev.phase = (char *)phase;
	cep_log_info(s->run_id.s, "phase %s", phase);
	runner_sink_emit(s, &ev);
}

void runner_emit_log(cep_runner_sink *s, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	Cep__V1__Event ev = CEP__V1__EVENT__INIT;
	ev.type = CEP__V1__EVENT_TYPE__EVENT_LOG;
	ev.text = text;
	cep_log_info(s->run_id.s, "%s", text);
	runner_sink_emit(s, &ev);
}

void runner_emit_probe(cep_runner_sink *s, const char *name, const char *mode,
    bool ok, const char *detail, uint32_t latency_ms, bool final)
{
	Cep__V1__ProbeResult pr = CEP__V1__PROBE_RESULT__INIT;
	pr.name = (char *)name;
	pr.mode = (char *)mode;
	pr.ok = ok;
	pr.detail = (char *)detail;
	pr.latency_ms = latency_ms;
	pr.final = final;
	Cep__V1__Event ev = CEP__V1__EVENT__INIT;
	ev.type = CEP__V1__EVENT_TYPE__EVENT_PROBE;
	ev.probe = &pr;
	cep_log_write(final || !ok ? CEP_LOG_INFO : CEP_LOG_DEBUG, s->run_id.s,
	    "probe %s%s: %s (%s)", name, final ? " result" : "",
	    ok ? "ok" : "failed", detail);
	runner_sink_emit(s, &ev);
}

void runner_emit_fault(cep_runner_sink *s, const char *fault_id,
    const char *type, const char *state, const char *detail)
{
	Cep__V1__FaultState fs = CEP__V1__FAULT_STATE__INIT;
	fs.fault_id = (char *)fault_id;
	fs.type = (char *)type;
	fs.state = (char *)state;
	fs.detail = (char *)detail;
	Cep__V1__Event ev = CEP__V1__EVENT__INIT;
	ev.type = CEP__V1__EVENT_TYPE__EVENT_FAULT;
	ev.fault = &fs;
	cep_log_info(s->run_id.s, "fault %s (%s) %s: %s", fault_id, type, state,
	    detail);
	runner_sink_emit(s, &ev);
}

void runner_emit_verdict(cep_runner_sink *s, const char *verdict, double score,
    const char *reason)
{
	Cep__V1__Verdict v = CEP__V1__VERDICT__INIT;
	v.verdict = (char *)verdict;
	v.score = score;
	v.reason = (char *)reason;
	Cep__V1__Event ev = CEP__V1__EVENT__INIT;
	ev.type = CEP__V1__EVENT_TYPE__EVENT_VERDICT;
	ev.verdict = &v;
	cep_log_info(s->run_id.s, "verdict %s score %.1f: %s", verdict, score,
	    reason);
	runner_sink_emit(s, &ev);
}

int runner_sink_record_fault(cep_runner_sink *s, Cep__V1__FaultRecord *rec,
    cep_err *err)
{
	rec->run_id = s->run_id.s;
	rec->time_ms = cep_clock_now_ms();
	return s->ops->record_fault(s->impl, rec, err);
}

int runner_sink_fault_reverted(cep_runner_sink *s, Cep__V1__FaultRecord *rec,
    cep_err *err)
{
	rec->run_id = s->run_id.s;
	rec->time_ms = cep_clock_now_ms();
	return s->ops->fault_reverted(s->impl, rec, err);
}

bool runner_sink_flush(cep_runner_sink *s, int64_t timeout_ms)
{
	return s->ops->flush(s->impl, timeout_ms);
}
