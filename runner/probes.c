/* probes.c - probe scheduling and per-probe results (see probes.h). */
#define _GNU_SOURCE
#include "probes.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "params.h"
#include "probe.h"
#include "clock.h"

enum { NOT_RUN = -1, FAILED = 0, PASSED = 1 };

typedef struct probe_rt {
	const cep_exp_item *it;
	enum cep_probe_mode mode;
	int64_t interval, delay, next; /* next: monotonic, 0 = not armed */
	double min_success, weight;
	bool stop_on_failure;
	int checks, passed; /* periodic modes */
	int pre, post;      /* one-shot modes */
} probe_rt;

struct cep_runner_probes {
	cep_runner_sink *sink;
	cep_runner_ctl *ctl;
	size_t n;
	probe_rt *p;
	pthread_t thr;
	bool running;
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	atomic_bool stop;
	bool chaos;
};

cep_runner_probes *runner_probes_new(const cep_exp *e, cep_runner_sink *sink)
{
	cep_runner_probes *p = calloc(1, sizeof(*p));
	size_t n = cep_exp_nprobes(e);
	if (p == NULL || (p->p = calloc(n ? n : 1, sizeof(*p->p))) == NULL) {
		free(p);
		return NULL;
	}
	p->sink = sink;
	p->ctl = runner_sink_ctl(sink);
	p->n = n;
	for (size_t i = 0; i < n; i++) {
		probe_rt *r = &p->p[i];
		r->it = cep_exp_probe(e, i);
		r->mode = cep_exp_probe_mode(r->it);
		r->interval = runner_param_ms(r->it, "interval", 1000);
		r->delay = runner_param_ms(r->it, "initialDelay", 0);
		r->min_success = runner_param_num(r->it, "minSuccess", 100);
		r->weight = runner_param_num(r->it, "weight", 1);
		r->stop_on_failure = cep_exp_bool(r->it, "stopOnFailure");
		r->pre = r->post = NOT_RUN;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&p->mtx, NULL);
	atomic_init(&p->stop, false);
	return p;
}

void runner_probes_free(cep_runner_probes *p)
{
	if (p == NULL)
		return;
	runner_probes_stop(p);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->mtx);
	free(p->p);
	free(p);
}

/* One check, its event, and stopOnFailure. */
static bool run_check(cep_runner_probes *p, probe_rt *r,
    const atomic_bool *stop)
{
	cep_probe_env env = {.ctl = p->ctl, .stop = stop};
	char detail[CEP_PROBE_DETAIL_MAX];
	uint32_t lat = 0;
	bool ok = runner_probe_check(r->it, &env, detail, sizeof(detail), &lat);
	if (!ok && runner_probe_cancelled(&env))
		return false; /* not a verdict on the target */
	runner_emit_probe(p->sink, cep_exp_item_name(r->it),
	    cep_exp_probe_mode_name(r->mode), ok, detail, lat, false);
	if (!ok && r->stop_on_failure) {
		runner_emit_log(p->sink,
		    "probe %s failed with stopOnFailure: "
		    "ending chaos",
		    cep_exp_item_name(r->it));
		runner_ctl_stop_chaos(p->ctl);
	}
	return ok;
}

void runner_probes_oneshot(cep_runner_probes *p, bool post)
{
	enum cep_probe_mode own = post ? CEP_PROBE_EOT : CEP_PROBE_SOT;
	for (size_t i = 0; i < p->n; i++) {
		probe_rt *r = &p->p[i];
		if (r->mode != own && r->mode != CEP_PROBE_EDGE)
			continue;
		/* initialDelay: a wait that an abort cuts short */
		if (r->delay > 0)
			runner_ctl_wait(p->ctl, cep_clock_mono_ms() + r->delay,
			    false);
		if (runner_ctl_aborted(p->ctl, NULL, 0))
			return;
		int res = run_check(p, r, NULL) ? PASSED : FAILED;
		if (post)
			r->post = res;
		else
			r->pre = res;
	}
}

static bool periodic_active(const cep_runner_probes *p, const probe_rt *r)
{
	return r->next > 0 &&
	    (r->mode == CEP_PROBE_CONTINUOUS ||
	        (r->mode == CEP_PROBE_ONCHAOS && p->chaos));
}

/* With p->mtx held: the due probe, or NULL and *wake = next due time. */
static probe_rt *next_due(cep_runner_probes *p, int64_t now, int64_t *wake)
{
	*wake = now + 1000;
	for (size_t i = 0; i < p->n; i++) {
		probe_rt *r = &p->p[i];
		if (!periodic_active(p, r))
			continue;
		if (r->next <= now)
			return r;
		if (r->next < *wake)
			*wake = r->next;
	}
	return NULL;
}

static void *scheduler(void *arg)
{
	cep_runner_probes *p = arg;
	pthread_mutex_lock(&p->mtx);
	while (!atomic_load(&p->stop)) {
		int64_t now = cep_clock_mono_ms(), wake;
		probe_rt *r = next_due(p, now, &wake);
		if (r == NULL) {
			struct timespec ts = {.tv_sec = wake / 1000,
			    .tv_nsec = (wake % 1000) * 1000000};
			pthread_cond_timedwait(&p->cond, &p->mtx, &ts);
			continue;
		}
		pthread_mutex_unlock(&p->mtx);
		bool ok = run_check(p, r, &p->stop);
		bool counted = ok || !atomic_load(&p->stop);
		pthread_mutex_lock(&p->mtx);
		if (counted && !runner_ctl_aborted(p->ctl, NULL, 0)) {
			r->checks++;
			r->passed += ok;
		}
		/* fixed rate, but never a burst to catch up */
		r->next += r->interval;
		if (r->next < cep_clock_mono_ms())
			r->next = cep_clock_mono_ms() + r->interval;
	}
	pthread_mutex_unlock(&p->mtx);
	return NULL;
}

void runner_probes_start(cep_runner_probes *p)
{
	int64_t now = cep_clock_mono_ms();
	pthread_mutex_lock(&p->mtx);
	for (size_t i = 0; i < p->n; i++)
		if (p->p[i].mode == CEP_PROBE_CONTINUOUS)
			p->p[i].next = now + p->p[i].delay;
	pthread_mutex_unlock(&p->mtx);
	if (!p->running && pthread_create(&p->thr, NULL, scheduler, p) == 0)
		p->running = true;
}

void runner_probes_set_chaos(cep_runner_probes *p, bool on)
{
	int64_t now = cep_clock_mono_ms();
	pthread_mutex_lock(&p->mtx);
	p->chaos = on;
	for (size_t i = 0; i < p->n && on; i++)
		if (p->p[i].mode == CEP_PROBE_ONCHAOS)
			p->p[i].next = now + p->p[i].delay;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mtx);
}

void runner_probes_stop(cep_runner_probes *p)
{
	pthread_mutex_lock(&p->mtx);
	atomic_store(&p->stop, true);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mtx);
	if (p->running)
		pthread_join(p->thr, NULL);
	p->running = false;
}

/* A probe's overall result and a detail for its final event. */
static bool probe_passed(const probe_rt *r, char *detail, size_t dlen)
{
	static const char *const words[] = {"not run", "failed", "passed"};
	switch (r->mode) {
	case CEP_PROBE_SOT:
		snprintf(detail, dlen, "%s", words[r->pre + 1]);
		return r->pre == PASSED;
	case CEP_PROBE_EOT:
		snprintf(detail, dlen, "%s", words[r->post + 1]);
		return r->post == PASSED;
	case CEP_PROBE_EDGE:
		snprintf(detail, dlen, "before chaos %s, after chaos %s",
		    words[r->pre + 1], words[r->post + 1]);
		return r->pre == PASSED && r->post == PASSED;
	default: break;
	}
	double share = r->checks ? 100.0 * r->passed / r->checks : 0;
	snprintf(detail, dlen, "%d/%d checks passed (%.0f%%, need %.0f%%)",
	    r->passed, r->checks, share, r->min_success);
	return r->checks > 0 && share >= r->min_success;
}

void runner_probes_finish(cep_runner_probes *p, bool *all_passed, double *score)
{
	double total = 0, won = 0;
	*all_passed = true;
	for (size_t i = 0; i < p->n; i++) {
		probe_rt *r = &p->p[i];
		char detail[CEP_PROBE_DETAIL_MAX];
		bool ok = probe_passed(r, detail, sizeof(detail));
		runner_emit_probe(p->sink, cep_exp_item_name(r->it),
		    cep_exp_probe_mode_name(r->mode), ok, detail, 0, true);
		total += r->weight;
		won += ok ? r->weight : 0;
		*all_passed = *all_passed && ok;
	}
	*score = total > 0 ? 100.0 * won / total : 100.0;
}
