/* engine.c - the experiment timeline (see engine.h). */
#define _GNU_SOURCE
#include "engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "fault_target.h"
#include "kube_target.h"
#include "log.h"
#include "params.h"
#include "pod_select.h"
#include "probes.h"
#include "clock.h"

typedef struct fault_rt {
	const cep_exp_item *it;
	const cep_fault_ops *ops;
	char id[256];
	char target[300];
	void *state;
	bool injected;
	/* labelSelector: the fault has max-targets slots, one per pod chosen
	 * at injection (pod_select.h); pod "" = a slot not used */
	bool sel, sel_first;
	char pod[254];
	int64_t end; /* monotonic: own duration ends; 0 = with chaos */
} fault_rt;

typedef struct run {
	const cep_exp *e;
	cep_runner_sink *sink;
	cep_runner_ctl *ctl;
	cep_runner_probes *probes;
	size_t nf;
	fault_rt *f;
	bool error;
	char error_reason[512];
} run;

static void set_error(run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_error(run *r, const char *fmt, ...)
{
	if (r->error)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->error_reason, sizeof(r->error_reason), fmt, ap);
	va_end(ap);
	r->error = true;
}

static void fault_record(fault_rt *f, const char *undo,
    Cep__V1__FaultRecord *rec)
{
	cep__v1__fault_record__init(rec);
	rec->fault_id = f->id;
	rec->type = (char *)f->ops->type;
	rec->target = f->target;
	rec->mechanism = (char *)(f->ops->mechanism_of != NULL ?
	        f->ops->mechanism_of(f->it) :
	        f->ops->mechanism);
	rec->undo = (char *)undo;
}

/* describe -> record (blocks until acknowledged) -> inject. */
static int inject_one(run *r, fault_rt *f)
{
	cep_err err = {0};
	json_t *undo = NULL;
	runner_fault_use_pod(f->pod);
	int rc = f->ops->describe(f->it, f->target, sizeof(f->target), &undo,
	    &err);
	if (rc != CEP_OK) {
		set_error(r, "fault %s: %s", f->id, err.msg);
		return rc;
	}
	runner_fault_pod_undo(undo);
	char *undo_s = json_dumps(undo, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(undo);
	Cep__V1__FaultRecord rec;
	fault_record(f, undo_s ? undo_s : "{}", &rec);
	rc = runner_sink_record_fault(r->sink, &rec, &err);
	if (rc != CEP_OK) {
		free(undo_s);
		set_error(r, "fault %s could not be recorded, not injected: %s",
		    f->id, err.msg);
		runner_emit_fault(r->sink, f->id, f->ops->type, "failed",
		    r->error_reason);
		return rc;
	}
	cep_fault_ctx ctx = {.sink = r->sink, .fault_id = f->id};
	rc = f->ops->inject(f->it, &ctx, &f->state, &err);
	if (rc != CEP_OK) {
		set_error(r, "fault %s could not be injected: %s", f->id,
		    err.msg);
		runner_emit_fault(r->sink, f->id, f->ops->type, "failed",
		    r->error_reason);
		/* recorded but nothing left behind: tell the journal */
		runner_sink_fault_reverted(r->sink, &rec, NULL);
	} else {
		f->injected = true;
		runner_emit_fault(r->sink, f->id, f->ops->type, "injected",
		    f->target);
	}
	free(undo_s);
	return rc;
}

/* Undoes one fault; true if the undo is confirmed. Reporting it is a
 * separate step, so that a slow relay never delays the next undo. */
static bool undo_one(run *r, fault_rt *f)
{
	if (!f->injected)
		return false;
	f->injected = false;
	cep_err err = {0};
	runner_fault_use_pod(f->pod);
	int rc = f->ops->revert(f->state, &err);
	f->state = NULL;
	if (rc != CEP_OK) {
		set_error(r, "fault %s could not be reverted: %s", f->id,
		    err.msg);
		runner_emit_fault(r->sink, f->id, f->ops->type, "failed",
		    r->error_reason);
		return false; /* not reported reverted: the delegate undoes it */
	}
	runner_emit_fault(r->sink, f->id, f->ops->type, "reverted", f->target);
	return true;
}

static void report_reverted(run *r, fault_rt *f)
{
	cep_err err = {0};
	Cep__V1__FaultRecord rec;
	runner_fault_use_pod(f->pod);
	fault_record(f, "{}", &rec);
	if (runner_sink_fault_reverted(r->sink, &rec, &err) != CEP_OK)
		cep_log_warn(runner_sink_run_id(r->sink),
		    "fault %s reverted, but not acknowledged: %s", f->id,
		    err.msg);
}

static void revert_one(run *r, fault_rt *f)
{
	if (undo_one(r, f))
		report_reverted(r, f);
}

/* A node-level fault with labelSelector: it takes one slot per pod it may
 * act on (policy.kubernetes.maxTargets), every other fault one. */
static bool selects(const cep_exp_item *it)
{
	const cep_exp_type_spec *ts = cep_exp_fault_spec(cep_exp_item_type(it));
	return ts != NULL && ts->pod_target && cep_exp_has(it, "labelSelector");
}

static size_t slots_of(const cep_exp_item *it)
{
	uint32_t m = runner_kube_target_max();
	return selects(it) && m > 0 ? m : 1;
}

static bool setup_faults(run *r)
{
	size_t n = cep_exp_nfaults(r->e), slots = 0;
	for (size_t i = 0; i < n; i++)
		slots += slots_of(cep_exp_fault(r->e, i));
	runner_fault_set_run(runner_sink_run_id(r->sink),
	    runner_ctl_deadline(r->ctl));
	r->f = calloc(slots ? slots : 1, sizeof(*r->f));
	if (r->f == NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		fault_rt *f = &r->f[r->nf];
		f->it = cep_exp_fault(r->e, i);
		f->ops = runner_fault_find(cep_exp_item_type(f->it));
		snprintf(f->id, sizeof(f->id), "%s", cep_exp_item_name(f->it));
		for (size_t j = 0; j < r->nf; j++)
			if (strcmp(r->f[j].id, f->id) == 0)
				snprintf(f->id, sizeof(f->id), "%s#%zu",
				    cep_exp_item_name(f->it), i + 1);
		if (f->ops == NULL) {
			set_error(r,
			    "fault %s: type \"%s\" is not supported by "
			    "this runner",
			    f->id, cep_exp_item_type(f->it));
			return false;
		}
		size_t k = slots_of(f->it);
		f->sel = f->sel_first = selects(f->it);
		for (size_t j = 1; j < k; j++) {
			fault_rt *s = &r->f[r->nf + j];
			*s = (fault_rt){.it = f->it,
			    .ops = f->ops,
			    .sel = true};
			memcpy(s->id, f->id, sizeof(s->id));
		}
		r->nf += k;
	}
	return true;
}

/* The node this runner runs on (a Pod runner: the downward API's
 * spec.nodeName), NULL elsewhere: a node-level fault works on the pods of
 * its own node only. */
static const char *own_node(void)
{
	const char *node = getenv("CEP_NODE_NAME");
	return node != NULL && node[0] != '\0' ? node : NULL;
}

/* A fault with labelSelector at injection: its pods chosen now, one slot
 * each, the fault id "<id>/<pod>". Unused slots keep pod "". */
static int choose_pods(run *r, size_t first)
{
	fault_rt *f = &r->f[first];
	size_t k = 1;
	while (first + k < r->nf && r->f[first + k].sel &&
	    !r->f[first + k].sel_first && r->f[first + k].it == f->it)
		k++;
	char(*pods)[254] = calloc(k, sizeof(*pods));
	size_t n = 0, matching = 0;
	bool capped = false;
	cep_err err = {0};
	int rc = pods == NULL ?
	    cep_err_set(&err, CEP_RESOURCE_EXHAUSTED, "no memory") :
	    runner_podsel_choose(cep_exp_str(f->it, "labelSelector"),
	        cep_exp_int(f->it, "count"), cep_exp_int(f->it, "percentage"),
	        own_node(), pods, k, &n, &matching, &capped, &err);
	if (rc != CEP_OK) {
		set_error(r, "fault %s: %s", f->id, err.msg);
		runner_emit_fault(r->sink, f->id, f->ops->type, "failed",
		    r->error_reason);
		free(pods);
		return rc;
	}
	runner_emit_log(r->sink,
	    "%s: chose %zu of %zu Running pods matching %s%s", f->id, n,
	    matching, cep_exp_str(f->it, "labelSelector"),
	    capped ? " (capped by policy.kubernetes.maxTargets)" : "");
	char base[sizeof(f->id)];
	snprintf(base, sizeof(base), "%s", f->id);
	for (size_t i = 0; i < n; i++) {
		fault_rt *s = &r->f[first + i];
		snprintf(s->pod, sizeof(s->pod), "%s", pods[i]);
		snprintf(s->id, sizeof(s->id), "%.120s/%s", base, pods[i]);
	}
	free(pods);
	return CEP_OK;
}

/* Earliest thing the chaos loop must do (tick, a fault's own end). */
static int64_t next_event(run *r, int64_t chaos_end)
{
	int64_t t = chaos_end;
	for (size_t i = 0; i < r->nf; i++) {
		fault_rt *f = &r->f[i];
		if (!f->injected)
			continue;
		if (f->end > 0 && f->end < t)
			t = f->end;
		if (f->ops->next_tick != NULL) {
			int64_t k = f->ops->next_tick(f->state);
			if (k < t)
				t = k;
		}
	}
	return t;
}

/* A fault's tick cannot go on (cep_fault_ctx.fail): the run's error,
 * and chaos ends so that everything is reverted now. */
static void tick_failed(void *arg, const char *reason)
{
	run *r = arg;
	set_error(r, "%s", reason);
	runner_emit_log(r->sink, "%s: ending chaos", reason);
	runner_ctl_stop_chaos(r->ctl);
}

static void chaos_loop(run *r, int64_t chaos_end)
{
	for (;;) {
		int64_t now = cep_clock_mono_ms();
		for (size_t i = 0; i < r->nf; i++) {
			fault_rt *f = &r->f[i];
			if (f->injected && f->end > 0 && now >= f->end) {
				runner_emit_log(r->sink, "%s: duration over",
				    f->id);
				revert_one(r, f);
			}
			if (f->injected && f->ops->next_tick != NULL &&
			    f->ops->next_tick(f->state) <= now) {
				cep_fault_ctx ctx = {.sink = r->sink,
				    .fault_id = f->id,
				    .fail = tick_failed,
				    .fail_arg = r};
				f->ops->tick(f->state, &ctx);
			}
		}
		if (now >= chaos_end)
			return;
		if (runner_ctl_wait(r->ctl, next_event(r, chaos_end), true))
			return; /* abort or stop-chaos */
	}
}

static void chaos(run *r)
{
	int64_t start = cep_clock_mono_ms();
	int64_t chaos_end = start + cep_exp_duration_ms(r->e);
	runner_emit_phase(r->sink, "chaos");
	for (size_t i = 0; i < r->nf; i++) {
		if (runner_ctl_aborted(r->ctl, NULL, 0) ||
		    runner_ctl_chaos_stopped(r->ctl))
			break;
		if (r->f[i].sel_first && choose_pods(r, i) != CEP_OK)
			break;
		if (r->f[i].sel && r->f[i].pod[0] == '\0')
			continue; /* a slot no pod was chosen for */
		if (inject_one(r, &r->f[i]) != CEP_OK)
			break;
		int64_t d = runner_param_ms(r->f[i].it, "duration", 0);
		if (d > 0 && cep_clock_mono_ms() + d < chaos_end)
			r->f[i].end = cep_clock_mono_ms() + d;
	}
	/* on-chaos probes start once the faults are in */
	runner_probes_set_chaos(r->probes, true);
	if (!r->error)
		chaos_loop(r, chaos_end);
	runner_probes_set_chaos(r->probes, false);
}

/* Every undo first, in reverse order, then the reports. */
static void revert_all(run *r)
{
	runner_emit_phase(r->sink, "revert");
	bool *undone = calloc(r->nf ? r->nf : 1, sizeof(*undone));
	for (size_t i = r->nf; i-- > 0;) {
		bool u = undo_one(r, &r->f[i]);
		if (undone != NULL)
			undone[i] = u;
		else if (u)
			report_reverted(r, &r->f[i]);
	}
	for (size_t i = r->nf; undone != NULL && i-- > 0;)
		if (undone[i])
			report_reverted(r, &r->f[i]);
	free(undone);
}

static void verdict(run *r, cep_runner_result *res)
{
	bool all;
	char why[256];
	runner_emit_phase(r->sink, "verdict");
	runner_probes_finish(r->probes, &all, &res->score);
	if (runner_ctl_aborted(r->ctl, why, sizeof(why))) {
		snprintf(res->verdict, sizeof(res->verdict), "Aborted");
		snprintf(res->reason, sizeof(res->reason), "%s", why);
	} else if (r->error) {
		snprintf(res->verdict, sizeof(res->verdict), "Error");
		snprintf(res->reason, sizeof(res->reason), "%s",
		    r->error_reason);
	} else {
		snprintf(res->verdict, sizeof(res->verdict), "%s",
		    all ? "Pass" : "Fail");
		snprintf(res->reason, sizeof(res->reason), "%s",
		    all ? "every probe passed" : "a probe failed");
	}
	runner_emit_verdict(r->sink, res->verdict, res->score, res->reason);
}

void runner_engine_run(const cep_exp *e, cep_runner_sink *sink,
    cep_runner_result *res)
{
	run r = {.e = e, .sink = sink, .ctl = runner_sink_ctl(sink)};
	memset(res, 0, sizeof(*res));
	runner_emit_phase(sink, "setup");
	r.probes = runner_probes_new(e, sink);
	bool ok = r.probes != NULL && setup_faults(&r);
	if (!ok && !r.error)
		set_error(&r, "out of memory setting up the run");
	if (ok) {
		runner_emit_phase(sink, "steady-state");
		runner_probes_start(r.probes);
		runner_probes_oneshot(r.probes, false);
		if (runner_ctl_aborted(r.ctl, NULL, 0))
			;
		else if (runner_ctl_chaos_stopped(r.ctl))
			runner_emit_log(sink,
			    "chaos skipped: a stopOnFailure "
			    "probe failed in steady-state");
		else
			chaos(&r);
	}
	revert_all(&r);
	if (ok && !runner_ctl_aborted(r.ctl, NULL, 0)) {
		runner_emit_phase(sink, "post-chaos");
		runner_probes_oneshot(r.probes, true);
	}
	if (r.probes != NULL) {
		runner_probes_stop(r.probes);
		verdict(&r, res);
	} else {
		snprintf(res->verdict, sizeof(res->verdict), "Error");
		snprintf(res->reason, sizeof(res->reason), "%s",
		    r.error_reason);
		runner_emit_verdict(sink, res->verdict, 0, res->reason);
	}
	runner_probes_free(r.probes);
	free(r.f);
}
