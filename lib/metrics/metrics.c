/*
 * metrics.c - the metrics registry (families, series, updates) and its
 * rendering to the Prometheus text format 0.0.4. The HTTP endpoint is in
 * metrics_http.c.
 *
 * Values are doubles under one mutex: counts here are of calls, events
 * and runs, a few thousand a second at most, so a lock costs nothing
 * measurable and keeps gauges (set, not only added) and new series simple.
 */
#define _GNU_SOURCE
#include "metrics.h"

#include <inttypes.h>
#include <math.h> /* isnan, isinf: macros, no libm */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

typedef struct series {
	char **values; /* nlabels strings */
	double v;
} series;

struct cep_metric {
	cep_metrics *m;
	char *name, *help;
	bool counter;
	size_t nlabels;
	char *labels[CEP_METRICS_MAX_LABELS];
	series *s; /* sorted by values */
	size_t n, cap;
	bool full_logged;
	struct cep_metric *next;
};

struct cep_metrics {
	pthread_mutex_t mu;
	cep_metric *head, *tail;
	cep_metrics_collect_fn collect;
	void *collect_arg;
};

int cep_metrics_new(cep_metrics **out, cep_err *err)
{
	cep_metrics *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "metrics: out of memory");
	pthread_mutex_init(&m->mu, NULL);
	*out = m;
	return CEP_OK;
}

static void family_free(cep_metric *f)
{
	for (size_t i = 0; i < f->n; i++) {
		for (size_t j = 0; j < f->nlabels; j++)
			free(f->s[i].values[j]);
		free(f->s[i].values);
	}
	for (size_t j = 0; j < f->nlabels; j++)
		free(f->labels[j]);
	free(f->s);
	free(f->name);
	free(f->help);
	free(f);
}

void cep_metrics_free(cep_metrics *m)
{
	if (m == NULL)
		return;
	for (cep_metric *f = m->head, *nx; f != NULL; f = nx) {
		nx = f->next;
		family_free(f);
	}
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* ---- registration ---- */

static bool valid_name(const char *s, bool colon)
{
	if (s == NULL || s[0] == '\0' || strlen(s) > 200)
		return false;
	for (size_t i = 0; s[i] != '\0'; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '_' || (colon && c == ':') ||
		    (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return colon || strncmp(s, "__", 2) != 0; /* __ is reserved */
}

static cep_metric *family_new(cep_metrics *m, const char *name,
    const char *help, const char *const *labels, bool counter)
{
	size_t nl = 0;
	while (labels != NULL && labels[nl] != NULL) {
		if (nl == CEP_METRICS_MAX_LABELS ||
		    !valid_name(labels[nl], false))
			break;
		nl++;
	}
	if (m == NULL || !valid_name(name, true) ||
	    (labels != NULL && labels[nl] != NULL)) {
		cep_log_error(NULL, "metrics: bad family %s (name or labels)",
		    name ? name : "(null)");
		return NULL;
	}
	cep_metric *f = calloc(1, sizeof(*f));
	bool ok = f != NULL && (f->name = strdup(name)) != NULL &&
	    (f->help = strdup(help ? help : "")) != NULL;
	for (size_t i = 0; ok && i < nl; i++)
		ok = (f->labels[f->nlabels++] = strdup(labels[i])) != NULL;
	if (!ok) {
		if (f != NULL)
			family_free(f);
		cep_log_error(NULL, "metrics: out of memory registering %s",
		    name);
		return NULL;
	}
	f->m = m;
	f->counter = counter;
	pthread_mutex_lock(&m->mu);
	if (m->tail != NULL)
		m->tail->next = f;
	else
		m->head = f;
	m->tail = f;
	pthread_mutex_unlock(&m->mu);
	return f;
}

cep_metric *cep_metrics_counter(cep_metrics *m, const char *name,
    const char *help, const char *const *labels)
{
	return family_new(m, name, help, labels, true);
}

cep_metric *cep_metrics_gauge(cep_metrics *m, const char *name,
    const char *help, const char *const *labels)
{
	return family_new(m, name, help, labels, false);
}

void cep_metrics_on_collect(cep_metrics *m, cep_metrics_collect_fn fn,
    void *arg)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	m->collect = fn;
	m->collect_arg = arg;
	pthread_mutex_unlock(&m->mu);
}

/* ---- series ---- */

static const char *val_at(const char *const *values, size_t i)
{
	return values != NULL && values[i] != NULL ? values[i] : "";
}

static int cmp_values(const cep_metric *f, const series *s,
    const char *const *values)
{
	for (size_t i = 0; i < f->nlabels; i++) {
		int c = strcmp(s->values[i], val_at(values, i));
		if (c != 0)
			return c;
	}
	return 0;
}

/* Binary search: the series' index, or where it would go (*found false). */
static size_t find(const cep_metric *f, const char *const *values, bool *found)
{
	size_t lo = 0, hi = f->n;
	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_values(f, &f->s[mid], values);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Room for one more series; false when the family is at its cap or out
 * of memory. f->m->mu held. */
static bool grow(cep_metric *f)
{
	if (f->n == CEP_METRICS_MAX_SERIES)
		return false;
	if (f->n < f->cap)
		return true;
	size_t cap = f->cap ? f->cap * 2 : 8;
	series *s = realloc(f->s, cap * sizeof(*s));
	if (s == NULL)
		return false;
	f->s = s;
	f->cap = cap;
	return true;
}

/* The series for values, created if new. f->m->mu held. NULL: the family
 * is full or out of memory (logged once). */
static series *get_series(cep_metric *f, const char *const *values)
{
	bool found;
	size_t at = find(f, values, &found);
	if (found)
		return &f->s[at];
	char **vals = grow(f) ? calloc(f->nlabels + 1, sizeof(char *)) : NULL;
	bool ok = vals != NULL;
	for (size_t i = 0; ok && i < f->nlabels; i++)
		ok = (vals[i] = strdup(val_at(values, i))) != NULL;
	if (!ok) {
		for (size_t i = 0; vals != NULL && i < f->nlabels; i++)
			free(vals[i]);
		free(vals);
		if (!f->full_logged)
			cep_log_warn(NULL,
			    "metrics: %s: no room for another "
			    "series (at most %d); not counted",
			    f->name, CEP_METRICS_MAX_SERIES);
		f->full_logged = true;
		return NULL;
	}
	memmove(&f->s[at + 1], &f->s[at], (f->n - at) * sizeof(*f->s));
	f->s[at] = (series){.values = vals, .v = 0};
	f->n++;
	return &f->s[at];
}

static void update(cep_metric *f, double v, const char *const *values, bool set)
{
	if (f == NULL || (f->counter && (set || !(v >= 0))))
		return; /* counters only go up (and never by NaN) */
	pthread_mutex_lock(&f->m->mu);
	series *s = get_series(f, values);
	if (s != NULL)
		s->v = set ? v : s->v + v;
	pthread_mutex_unlock(&f->m->mu);
}

void cep_metrics_add(cep_metric *f, double delta, const char *const *values)
{
	update(f, delta, values, false);
}

void cep_metrics_set(cep_metric *f, double v, const char *const *values)
{
	update(f, v, values, true);
}

void cep_metrics_inc(cep_metric *f)
{
	update(f, 1, NULL, false);
}

void cep_metrics_inc1(cep_metric *f, const char *v1)
{
	const char *v[] = {v1, NULL};
	update(f, 1, v, false);
}

void cep_metrics_inc2(cep_metric *f, const char *v1, const char *v2)
{
	const char *v[] = {v1, v2, NULL};
	update(f, 1, v, false);
}

double cep_metrics_value(cep_metric *f, const char *const *values)
{
	if (f == NULL)
		return 0;
	bool found;
	pthread_mutex_lock(&f->m->mu);
	size_t at = find(f, values, &found);
	double v = found ? f->s[at].v : 0;
	pthread_mutex_unlock(&f->m->mu);
	return v;
}

/* ---- rendering ---- */

typedef struct buf {
	char *p;
	size_t len, cap;
	bool oom;
} buf;

static void put(buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* HELP text escapes \ and newline; label values also ". */
static void put_escaped(buf *b, const char *s, bool quote)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			puts_(b, "\\\\");
		else if (*s == '\n')
			puts_(b, "\\n");
		else if (quote && *s == '"')
			puts_(b, "\\\"");
		else
			put(b, s, 1);
	}
}

static void put_value(buf *b, double v)
{
	char num[64];
	if (isnan(v))
		snprintf(num, sizeof(num), "NaN");
	else if (isinf(v))
		snprintf(num, sizeof(num), "%s", v > 0 ? "+Inf" : "-Inf");
	else if (v > -9.0e15 && v < 9.0e15 && v == (double)(int64_t)v)
		snprintf(num, sizeof(num), "%" PRId64, (int64_t)v);
	else
		snprintf(num, sizeof(num), "%.17g", v);
	puts_(b, num);
}

static void render_family(buf *b, const cep_metric *f)
{
	puts_(b, "# HELP ");
	puts_(b, f->name);
	puts_(b, " ");
	put_escaped(b, f->help, false);
	puts_(b, "\n# TYPE ");
	puts_(b, f->name);
	puts_(b, f->counter ? " counter\n" : " gauge\n");
	/* a family without labels always shows its one series, even at 0,
	 * so that rate() and absent() see it from the first scrape */
	if (f->nlabels == 0 && f->n == 0) {
		puts_(b, f->name);
		puts_(b, " 0\n");
	}
	for (size_t i = 0; i < f->n; i++) {
		puts_(b, f->name);
		for (size_t j = 0; j < f->nlabels; j++) {
			puts_(b, j == 0 ? "{" : ",");
			puts_(b, f->labels[j]);
			puts_(b, "=\"");
			put_escaped(b, f->s[i].values[j], true);
			puts_(b, "\"");
		}
		puts_(b, f->nlabels > 0 ? "} " : " ");
		put_value(b, f->s[i].v);
		puts_(b, "\n");
	}
}

int cep_metrics_render(cep_metrics *m, char **out, size_t *len, cep_err *err)
{
	*out = NULL;
	*len = 0;
	pthread_mutex_lock(&m->mu);
	cep_metrics_collect_fn fn = m->collect;
	void *arg = m->collect_arg;
	pthread_mutex_unlock(&m->mu);
	if (fn != NULL)
		fn(m, arg);
	buf b = {0};
	puts_(&b, "");
	pthread_mutex_lock(&m->mu);
	for (const cep_metric *f = m->head; f != NULL; f = f->next)
		render_family(&b, f);
	pthread_mutex_unlock(&m->mu);
	if (b.oom) {
		free(b.p);
		return cep_err_set(err, CEP_RESOURCE_EXHAUSTED,
		    "metrics: out of memory rendering");
	}
	*out = b.p;
	*len = b.len;
	return CEP_OK;
}
