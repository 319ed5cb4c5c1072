/* memsink.c - the in-memory sink (see memsink.h). */
#include "memsink.h"

#include <pthread.h>
#include <stdlib.h>

struct cep_runner_memsink {
	pthread_mutex_t mtx;
	Cep__V1__Event **ev;
	size_t n, cap;
	size_t records, reverted;
	bool refuse;
};

cep_runner_memsink *runner_memsink_new(void)
{
	cep_runner_memsink *m = calloc(1, sizeof(*m));
	if (m != NULL)
		pthread_mutex_init(&m->mtx, NULL);
	return m;
}

void runner_memsink_free(cep_runner_memsink *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		cep__v1__event__free_unpacked(m->ev[i], NULL);
	free(m->ev);
	pthread_mutex_destroy(&m->mtx);
	free(m);
}

/* Deep copy through the wire form: the only copy that cannot go stale. */
static void mem_push(void *impl, const Cep__V1__Event *ev)
{
	cep_runner_memsink *m = impl;
	size_t len = cep__v1__event__get_packed_size(ev);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		return;
	cep__v1__event__pack(ev, buf);
	Cep__V1__Event *copy = cep__v1__event__unpack(NULL, len, buf);
	free(buf);
	pthread_mutex_lock(&m->mtx);
	if (copy != NULL && m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		Cep__V1__Event **n = realloc(m->ev, cap * sizeof(*n));
		if (n != NULL) {
			m->ev = n;
			m->cap = cap;
		}
	}
	if (copy != NULL && m->n < m->cap)
		m->ev[m->n++] = copy;
	else if (copy != NULL)
		cep__v1__event__free_unpacked(copy, NULL);
	pthread_mutex_unlock(&m->mtx);
}

static int mem_record(void *impl, const Cep__V1__FaultRecord *rec, cep_err *err)
{
	cep_runner_memsink *m = impl;
	pthread_mutex_lock(&m->mtx);
	bool refuse = m->refuse;
	if (!refuse)
		m->records++;
	pthread_mutex_unlock(&m->mtx);
	if (refuse)
		return cep_err_set(err, CEP_UNAVAILABLE,
		    "record of %s refused (test sink)", rec->fault_id);
	return CEP_OK;
}

static int mem_reverted(void *impl, const Cep__V1__FaultRecord *rec,
    cep_err *err)
{
	(void)rec, (void)err;
	cep_runner_memsink *m = impl;
	pthread_mutex_lock(&m->mtx);
	m->reverted++;
	pthread_mutex_unlock(&m->mtx);
	return CEP_OK;
}

static bool mem_flush(void *impl, int64_t timeout_ms)
{
	(void)impl, (void)timeout_ms;
	return true;
}

static const cep_runner_sink_ops mem_ops = {
    .push = mem_push,
    .record_fault = mem_record,
    .fault_reverted = mem_reverted,
    .flush = mem_flush,
};

const cep_runner_sink_ops *runner_memsink_ops(void)
{
	return &mem_ops;
}

void runner_memsink_refuse_records(cep_runner_memsink *m, bool refuse)
{
	pthread_mutex_lock(&m->mtx);
	m->refuse = refuse;
	pthread_mutex_unlock(&m->mtx);
}

size_t runner_memsink_nevents(cep_runner_memsink *m)
{
	pthread_mutex_lock(&m->mtx);
	size_t n = m->n;
	pthread_mutex_unlock(&m->mtx);
	return n;
}

Cep__V1__Event *runner_memsink_event(cep_runner_memsink *m, size_t i)
{
	pthread_mutex_lock(&m->mtx);
	Cep__V1__Event *e = i < m->n ? m->ev[i] : NULL;
	pthread_mutex_unlock(&m->mtx);
	return e;
}

size_t runner_memsink_nrecords(cep_runner_memsink *m)
{
	pthread_mutex_lock(&m->mtx);
	size_t n = m->records;
	pthread_mutex_unlock(&m->mtx);
	return n;
}

size_t runner_memsink_nreverted(cep_runner_memsink *m)
{
	pthread_mutex_lock(&m->mtx);
	size_t n = m->reverted;
	pthread_mutex_unlock(&m->mtx);
	return n;
}
